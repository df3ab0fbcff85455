//! The schema and its migrations. `PRAGMA user_version` holds the version;
//! each migration runs in its own transaction, so a database is always at
//! one version or the next.

use super::HistoryError;
use rusqlite::Connection;
use std::path::Path;

/// The rollup tables share one shape.
fn rollup(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
            t INTEGER NOT NULL,
            proc INTEGER NOT NULL,
            peer INTEGER NOT NULL,
            sent INTEGER NOT NULL, recv INTEGER NOT NULL,
            wire_sent INTEGER NOT NULL, wire_recv INTEGER NOT NULL,
            packets_sent INTEGER NOT NULL, packets_recv INTEGER NOT NULL,
            flows INTEGER NOT NULL,
            PRIMARY KEY (t, proc, peer)
        ) WITHOUT ROWID;"
    )
}

/// The peer table: as first made, or with names (version 4 on).
fn peer_table(name: &str, names: bool) -> String {
    let (cols, key) = if names {
        (
            "\n            name TEXT NOT NULL DEFAULT '',\n            name_from INTEGER NOT NULL DEFAULT 0,",
            ", name, name_from",
        )
    } else {
        ("", "")
    };
    format!(
        "CREATE TABLE {name} (
            id INTEGER PRIMARY KEY,
            proto INTEGER NOT NULL,
            direction TEXT NOT NULL,
            laddr TEXT NOT NULL,
            raddr TEXT NOT NULL,
            port INTEGER NOT NULL,
            netns INTEGER NOT NULL,{cols}
            UNIQUE (proto, direction, laddr, raddr, port, netns{key})
         );"
    )
}

/// Migration `i` takes the database from version `i` to `i + 1`.
fn migrations() -> Vec<String> {
    vec![
        first(),
        // 2: the names of remote addresses (reverse DNS, /etc/hosts) as
        // last resolved; a property of the address, not of a rollup key,
        // since names come after the traffic and can change
        "CREATE TABLE rname (
            addr TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            resolved_ns INTEGER NOT NULL
         ) WITHOUT ROWID;"
            .to_string(),
        // 3: first-seen alerts (`[alerts]`, docs/specs/alerts.md): each
        // program's baseline (the hashes its executable has had, the
        // destinations it has used) and the alerts raised
        "CREATE TABLE alert_prog (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            first_ns INTEGER NOT NULL
         );
         CREATE TABLE alert_hash (
            prog INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            first_ns INTEGER NOT NULL,
            PRIMARY KEY (prog, sha256)
         ) WITHOUT ROWID;
         CREATE TABLE alert_dest (
            prog INTEGER NOT NULL,
            proto INTEGER NOT NULL,
            name TEXT NOT NULL,
            port INTEGER NOT NULL,
            first_ns INTEGER NOT NULL,
            PRIMARY KEY (prog, proto, name, port)
         ) WITHOUT ROWID;
         CREATE TABLE alert (
            id INTEGER PRIMARY KEY,
            ts_ns INTEGER NOT NULL,
            uid INTEGER NOT NULL,
            kind TEXT NOT NULL,
            record TEXT NOT NULL,
            acked_ns INTEGER
         );"
        .to_string(),
        // 4: names as each process saw them (docs/specs/names.md): a peer
        // is also the name the flow's process resolved to the address
        // (`rname`, set when the flow opened and never changed) and whose
        // answer it was, so rollups keep them; SQLite changes a UNIQUE
        // constraint by rebuilding the table (ids kept)
        format!(
            "{}
         INSERT INTO peer_v4 (id, proto, direction, laddr, raddr, port, netns)
            SELECT id, proto, direction, laddr, raddr, port, netns FROM peer;
         DROP TABLE peer;
         ALTER TABLE peer_v4 RENAME TO peer;",
            peer_table("peer_v4", true)
        ),
    ]
}

/// The first version whose peers carry names.
pub const PEER_NAMES: i64 = 4;

fn first() -> String {
    format!(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE boot (id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL UNIQUE);
         CREATE TABLE proc (
            id INTEGER PRIMARY KEY,
            boot INTEGER NOT NULL,
            tgid INTEGER NOT NULL,
            start_ticks INTEGER NOT NULL,
            fp INTEGER NOT NULL,
            start_ns INTEGER NOT NULL,
            ppid INTEGER NOT NULL,
            comm TEXT NOT NULL,
            parent_comm TEXT NOT NULL,
            exe TEXT NOT NULL,
            cmdline TEXT NOT NULL,
            program TEXT NOT NULL,
            uid INTEGER NOT NULL,
            gid INTEGER NOT NULL,
            login_uid INTEGER,
            user TEXT NOT NULL,
            grp TEXT NOT NULL,
            unit TEXT NOT NULL,
            cgroup TEXT NOT NULL,
            container TEXT NOT NULL,
            exe_sha256 TEXT,
            UNIQUE (boot, tgid, start_ticks, fp)
         );
         {peer}
         CREATE TABLE flow (
            id INTEGER PRIMARY KEY,
            fid INTEGER NOT NULL UNIQUE,
            proc INTEGER NOT NULL,
            peer INTEGER NOT NULL,
            lport INTEGER NOT NULL,
            rport INTEGER NOT NULL,
            opened_ns INTEGER NOT NULL,
            closed_ns INTEGER,
            last_ns INTEGER NOT NULL,
            close_reason TEXT,
            attribution TEXT NOT NULL,
            sent INTEGER NOT NULL, recv INTEGER NOT NULL,
            wire_sent INTEGER NOT NULL, wire_recv INTEGER NOT NULL,
            packets_sent INTEGER NOT NULL, packets_recv INTEGER NOT NULL
         );
         CREATE INDEX flow_last ON flow (last_ns);
         CREATE TABLE flow_min (
            flow INTEGER NOT NULL,
            t INTEGER NOT NULL,
            sent INTEGER NOT NULL, recv INTEGER NOT NULL,
            wire_sent INTEGER NOT NULL, wire_recv INTEGER NOT NULL,
            packets_sent INTEGER NOT NULL, packets_recv INTEGER NOT NULL,
            PRIMARY KEY (t, flow)
         ) WITHOUT ROWID;
         {}
         {}
         {}",
        rollup("roll_m"),
        rollup("roll_h"),
        rollup("roll_d"),
        peer = peer_table("peer", false)
    )
}

/// The version this netwho writes.
pub fn current() -> i64 {
    migrations().len() as i64
}

fn version(conn: &Connection, path: &Path) -> Result<i64, HistoryError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| HistoryError::NotHistory {
            path: path.to_owned(),
            why: e.to_string(),
        })
}

/// The schema version of an open database (0 if unreadable).
pub fn version_of(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap_or(0)
}

/// Brings the database to the current version.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let found = version(conn, path)?;
    let all = migrations();
    if found > current() {
        return Err(HistoryError::TooNew {
            path: path.to_owned(),
            found,
            known: current(),
        });
    }
    let sql = |source| HistoryError::Sql {
        path: path.to_owned(),
        source,
    };
    for (i, m) in all
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(m).map_err(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}

/// A reader accepts the current version only (an older database is
/// migrated by the daemon when it opens it).
pub fn check(conn: &Connection, path: &Path) -> Result<(), HistoryError> {
    let found = version(conn, path)?;
    if found > current() {
        return Err(HistoryError::TooNew {
            path: path.to_owned(),
            found,
            known: current(),
        });
    }
    if found == 0 {
        return Err(HistoryError::NotHistory {
            path: path.to_owned(),
            why: "it has no netwho tables".into(),
        });
    }
    // a file SQLite cannot read fails here rather than at the first query
    conn.query_row("SELECT count(*) FROM meta", [], |r| r.get::<_, i64>(0))
        .map_err(|e| HistoryError::NotHistory {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    Ok(())
}
