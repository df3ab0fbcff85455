use super::query::plan;
use super::*;
use netwho_model::{Payload, Proto};
use rusqlite::Connection;
use std::net::{IpAddr, Ipv4Addr};

const S: i64 = 1_000_000_000;
/// 2026-11-23T00:00:00Z
const DAY0: i64 = 1_795_392_000;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netwho-hist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join("history.db")
}

fn proc(tgid: u32, user: &str, unit: &str) -> Arc<ProcDim> {
    Arc::new(ProcDim {
        boot: "b00t".into(),
        tgid,
        start_ticks: u64::from(tgid) * 10,
        start_ns: DAY0 * S,
        comm: format!("p{tgid}"),
        exe: format!("/usr/bin/p{tgid}"),
        cmdline: vec![format!("p{tgid}"), "--id=7".into()],
        uid: 1000 + tgid,
        user: user.into(),
        unit: unit.into(),
        ..ProcDim::default()
    })
}

fn peer(last: u8, port: u16) -> PeerDim {
    PeerDim {
        proto: Proto::Tcp,
        direction: "outbound",
        laddr: IpAddr::V4(Ipv4Addr::new(10, 231, 0, 1)),
        raddr: IpAddr::V4(Ipv4Addr::new(10, 231, 0, last)),
        port,
        netns: 1,
        name: String::new(),
        name_from: 0,
    }
}

fn obs(fid: u64, p: &Arc<ProcDim>, at_s: i64, sent: u64, recv: u64, closed: bool) -> Obs {
    Obs {
        fid,
        proc: Arc::clone(p),
        peer: peer(2, 443),
        lport: 40000,
        rport: 443,
        opened_ns: DAY0 * S,
        at_ns: at_s * S,
        totals: Counters {
            payload: Payload {
                bytes_sent: sent,
                bytes_recv: recv,
            },
            ..Counters::default()
        },
        closed: closed.then_some((at_s * S, "fin")),
        attribution: "ebpf",
    }
}

/// Sums of a tier over everything: (sent, recv, flows).
fn tier_sums(h: &History, tier: Tier) -> (u64, u64, u64) {
    let p = Plan {
        parts: vec![(tier, i64::MIN / 2, i64::MAX / 2)],
    };
    let mut out = (0, 0, 0);
    h.combos(&p, &mut |c| {
        out.0 += c.counters.payload.bytes_sent;
        out.1 += c.counters.payload.bytes_recv;
        out.2 += c.flows;
        Ok(())
    })
    .expect("combos");
    out
}

#[test]
fn deltas_land_in_their_minute_and_every_tier_agrees() {
    let path = tmp("deltas");
    let mut h = History::create(&path).expect("create");
    let a = proc(1, "alice", "a.service");
    let b = proc(2, "bob", "b.service");
    h.ingest(&[
        obs(1, &a, DAY0 + 10, 100, 10, false),
        obs(2, &b, DAY0 + 20, 5, 0, false),
    ])
    .expect("batch 1");
    // a second minute: cumulative counters become deltas
    let st = h
        .ingest(&[
            obs(1, &a, DAY0 + 70, 250, 30, true),
            obs(2, &b, DAY0 + 3700, 5, 9, true),
        ])
        .expect("batch 2");
    assert_eq!(st.closed_flows, 2);
    assert_eq!(st.new_flows, 0);
    for tier in Tier::ALL {
        assert_eq!(tier_sums(&h, tier), (255, 39, 2), "{tier:?}");
    }
    let mut mins = Vec::new();
    let (p, _) = h.plan(DAY0, DAY0 + 7200, Tier::Minute).expect("plan");
    h.combos(&p, &mut |c| {
        mins.push((
            c.t - DAY0,
            c.counters.payload.bytes_sent,
            c.counters.payload.bytes_recv,
        ));
        Ok(())
    })
    .expect("combos");
    mins.sort_unstable();
    assert_eq!(
        mins,
        vec![(0, 5, 0), (0, 100, 10), (60, 150, 20), (3660, 0, 9)]
    );
    // raw flows in the first minute only
    let mut raw = Vec::new();
    h.flows_in(DAY0, DAY0 + 60, &mut |f| {
        raw.push((f.fid, f.window.payload.bytes_sent));
        Ok(())
    })
    .expect("flows");
    raw.sort_unstable();
    assert_eq!(raw, vec![(1, 100), (2, 5)]);
    let dim = h.proc_dim(1).expect("proc 1");
    assert_eq!(*dim, *a);
    assert_eq!(h.peer_dim(1).expect("peer"), peer(2, 443));
}

#[test]
fn a_restarted_writer_goes_on_from_the_stored_totals() {
    let path = tmp("restart");
    let a = proc(1, "alice", "");
    {
        let mut h = History::create(&path).expect("create");
        h.ingest(&[obs(7, &a, DAY0 + 1, 1000, 0, false)])
            .expect("first");
        // dropped without closing, as after kill -9
    }
    let mut h = History::create(&path).expect("reopen");
    // a restarted netwho counts the socket it finds from zero
    h.ingest(&[obs(7, &a, DAY0 + 61, 300, 0, false)])
        .expect("second");
    let st = h
        .ingest(&[obs(7, &a, DAY0 + 62, 500, 0, true)])
        .expect("third");
    assert_eq!(st.new_flows, 0, "the flow was stored already");
    assert_eq!(tier_sums(&h, Tier::Day), (1500, 0, 1));
    let mut raw = Vec::new();
    h.flows_in(DAY0, DAY0 + 120, &mut |f| {
        raw.push(f.window.payload.bytes_sent);
        Ok(())
    })
    .expect("flows");
    assert_eq!(raw, vec![1500]);
    assert_eq!(h.counts().expect("counts")[5], ("proc", 1));
}

#[test]
fn plans_use_the_coarsest_tier_that_fits_and_round_where_pruned() {
    let all = [i64::MIN; 3];
    // 23:58 on day 0 to 01:02 on day 2: minutes, hour, day, hour, minutes
    let (p, cov) = plan(DAY0 + 86_280, DAY0 + 2 * 86_400 + 3720, Tier::Day, &all);
    assert_eq!(
        p.parts,
        vec![
            (Tier::Minute, DAY0 + 86_280, DAY0 + 86_400),
            (Tier::Day, DAY0 + 86_400, DAY0 + 2 * 86_400),
            (Tier::Hour, DAY0 + 2 * 86_400, DAY0 + 2 * 86_400 + 3600),
            (
                Tier::Minute,
                DAY0 + 2 * 86_400 + 3600,
                DAY0 + 2 * 86_400 + 3720
            ),
        ]
    );
    assert_eq!(cov.rounded_to, None);
    // seconds widen to whole minutes
    let (p, _) = plan(DAY0 + 30, DAY0 + 90, Tier::Day, &all);
    assert_eq!(p.parts, vec![(Tier::Minute, DAY0, DAY0 + 120)]);
    // per-hour buckets never use days
    let (p, _) = plan(DAY0, DAY0 + 2 * 86_400, Tier::Hour, &all);
    assert_eq!(p.parts, vec![(Tier::Hour, DAY0, DAY0 + 2 * 86_400)]);
    // minutes pruned before day 1: the first part rounds to its hour
    let pruned = [DAY0 + 86_400, i64::MIN, i64::MIN];
    let (p, cov) = plan(DAY0 + 600, DAY0 + 3600 * 2, Tier::Day, &pruned);
    assert_eq!(p.parts, vec![(Tier::Hour, DAY0, DAY0 + 7200)]);
    assert_eq!(
        (cov.from, cov.to, cov.rounded_to),
        (DAY0, DAY0 + 7200, Some(Tier::Hour))
    );
}

#[test]
fn pruning_keeps_each_tier_for_its_time_and_readers_know_it() {
    let path = tmp("prune");
    let mut h = History::create(&path).expect("create");
    let a = proc(1, "alice", "");
    h.ingest(&[obs(1, &a, DAY0 + 10, 10, 0, true)])
        .expect("old");
    let b = proc(2, "bob", "");
    h.ingest(&[obs(2, &b, DAY0 + 3 * 86_400, 20, 0, true)])
        .expect("new");
    let keep = Retention {
        raw_s: 86_400,
        minute_s: 86_400,
        hour_s: 2 * 86_400,
        day_s: 30 * 86_400,
    };
    h.prune((DAY0 + 3 * 86_400 + 100) * S, &keep)
        .expect("prune");
    assert_eq!(tier_sums(&h, Tier::Minute), (20, 0, 1));
    assert_eq!(tier_sums(&h, Tier::Day), (30, 0, 2));
    let counts: Vec<i64> = h.counts().expect("counts").iter().map(|c| c.1).collect();
    // flow, flow_min, roll_m, roll_h, roll_d, proc, peer
    assert_eq!(counts, vec![1, 1, 1, 1, 2, 2, 1]);
    let r = History::open_read(&path).expect("reader");
    let from = r.complete_from().expect("complete");
    assert_eq!(from[0], DAY0 + 2 * 86_400 + 100);
    // a month's report: days where minutes are gone
    let (p, cov) = r.plan(DAY0, DAY0 + 4 * 86_400, Tier::Day).expect("plan");
    assert_eq!(p.parts, vec![(Tier::Day, DAY0, DAY0 + 4 * 86_400)]);
    assert_eq!(cov.rounded_to, None);
}

#[test]
fn bad_files_get_errors_that_say_what_to_do() {
    let path = tmp("bad");
    let e = History::open_read(&path).expect_err("missing");
    assert!(e.to_string().contains("start 'netwho daemon'"), "{e}");
    std::fs::write(
        &path,
        b"this is not SQLite at all, just some text\n".repeat(200),
    )
    .expect("write");
    let e = History::create(&path).expect_err("garbage");
    assert!(
        e.to_string().contains("is not a netwho history database"),
        "{e}"
    );
    let e = History::open_read(&path).expect_err("garbage");
    assert!(
        e.to_string().contains("is not a netwho history database"),
        "{e}"
    );
    // a database from a newer netwho
    let newer = tmp("newer");
    {
        let c = Connection::open(&newer).expect("sqlite");
        c.pragma_update(None, "user_version", 99).expect("version");
    }
    let e = History::create(&newer).expect_err("newer");
    assert!(e.to_string().contains("use a newer netwho"), "{e}");
}

#[test]
fn names_of_remotes_are_kept_and_an_older_database_is_migrated() {
    let path = tmp("names");
    {
        // a database as version 1 left it
        let h = History::create(&path).expect("create");
        h.conn
            .execute_batch(
                "DROP TABLE rname; DROP TABLE alert_prog; DROP TABLE alert_hash;
                 DROP TABLE alert_dest; DROP TABLE alert; PRAGMA user_version = 1;",
            )
            .expect("downgrade");
    }
    let old = History::open_read(&path).expect("v1 reads");
    assert_eq!(old.name_of("10.231.0.9").expect("no table, no name"), None);
    drop(old);
    let mut h = History::create(&path).expect("migrates");
    assert_eq!(schema::version_of(&h.conn), schema::current());
    h.put_names(&[("10.231.0.9".into(), "db.example".into())], 5)
        .expect("names");
    h.put_names(&[("10.231.0.9".into(), "db2.example".into())], 6)
        .expect("renamed");
    let r = History::open_read(&path).expect("read");
    assert_eq!(
        r.name_of("10.231.0.9").expect("name").as_deref(),
        Some("db2.example")
    );
    assert_eq!(r.name_of("10.231.0.8").expect("none"), None);
}

#[test]
fn the_database_and_its_wal_are_private_and_loose_ones_are_tightened() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let path = tmp("modes");
    let mode = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::fs::metadata(PathBuf::from(p))
            .map(|m| m.mode() & 0o777)
            .ok()
    };
    {
        let mut h = History::create(&path).unwrap();
        let p = proc(1, "alice", "a.service");
        h.ingest(&[obs(1, &p, DAY0 + 5, 100, 10, false)]).unwrap();
        assert_eq!(mode(""), Some(0o600));
        assert_eq!(
            mode("-wal"),
            Some(0o600),
            "SQLite gives the WAL the database's mode"
        );
        assert_eq!(mode("-shm"), Some(0o600));
    }
    // a database left readable by everyone (an older netwho, a copy)
    for f in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(f);
        let _ = std::fs::set_permissions(PathBuf::from(p), std::fs::Permissions::from_mode(0o644));
    }
    let gid = std::fs::metadata(&path).unwrap().gid();
    let access = crate::private::Access {
        mode: 0o640,
        group: Some(gid),
    };
    let _h = History::create_with(&path, access).unwrap();
    assert_eq!(mode(""), Some(0o640));
    assert!(matches!(mode("-wal"), None | Some(0o640)));
    assert!(matches!(mode("-shm"), None | Some(0o640)));
}

/// Two flows whose 64-bit ids collide (forced here) never share a row:
/// each keeps its own counters, live and after a restart of the writer.
#[test]
fn flows_whose_ids_collide_keep_rows_of_their_own() {
    let path = tmp("collide");
    let (a, b) = (proc(1, "alice", "a.service"), proc(2, "bob", "b.service"));
    let mut h = History::create(&path).unwrap();
    let mut other = obs(7, &b, DAY0 + 5, 5, 0, false);
    other.peer = peer(9, 22);
    let st = h
        .ingest(&[obs(7, &a, DAY0 + 5, 100, 10, false), other.clone()])
        .unwrap();
    assert_eq!((st.new_flows, st.id_collisions), (2, 1));
    // later observations find their own rows again
    other.totals.payload.bytes_sent = 50;
    other.at_ns = (DAY0 + 65) * S;
    let st = h
        .ingest(&[obs(7, &a, DAY0 + 65, 300, 10, false), other.clone()])
        .unwrap();
    assert_eq!((st.new_flows, st.id_collisions), (0, 1));
    let rows = |h: &History| -> Vec<(i64, i64)> {
        h.conn
            .prepare("SELECT sent, recv FROM flow ORDER BY sent")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(rows(&h), vec![(50, 0), (300, 10)]);
    // and a restarted writer finds each flow's row by who it is (its
    // counters count from the restart, added to what was stored)
    drop(h);
    let mut h = History::create(&path).unwrap();
    other.totals.payload.bytes_sent = 1;
    other.at_ns = (DAY0 + 125) * S;
    let st = h.ingest(&[other]).unwrap();
    assert_eq!((st.new_flows, st.id_collisions), (0, 1));
    assert_eq!(rows(&h), vec![(51, 0), (300, 10)]);
    assert_eq!(tier_sums(&h, Tier::Minute), (351, 10, 2));
}

/// Peers carry the name their flow's process resolved (version 4): two
/// names for one address are two peers; a database of version 3 still
/// reads (its peers unnamed) and migrates with its peers' ids kept.
#[test]
fn peers_keep_the_names_processes_resolved() {
    let path = tmp("peernames");
    let a = proc(1, "alice", "a.service");
    let named = |fid: u64, name: &str, from: u8| {
        let mut o = obs(fid, &a, DAY0 + 10, 10, 0, true);
        o.peer.name = name.into();
        o.peer.name_from = from;
        o
    };
    let peers = |h: &History| {
        let mut ids = Vec::new();
        h.flows_in(i64::MIN / 2, i64::MAX / 2, &mut |r| {
            ids.push(r.peer);
            Ok(())
        })
        .expect("flows");
        ids.sort_unstable();
        ids.iter()
            .map(|id| {
                let p = h.peer_dim(*id).expect("peer");
                (*id, p.name, p.name_from)
            })
            .collect::<Vec<_>>()
    };
    {
        let mut h = History::create(&path).expect("create");
        h.ingest(&[obs(1, &a, DAY0 + 10, 10, 0, true)])
            .expect("unnamed");
        // a database as version 3 left it
        h.conn
            .execute_batch(
                "CREATE TABLE peer_v3 (id INTEGER PRIMARY KEY, proto INTEGER NOT NULL,
                    direction TEXT NOT NULL, laddr TEXT NOT NULL, raddr TEXT NOT NULL,
                    port INTEGER NOT NULL, netns INTEGER NOT NULL,
                    UNIQUE (proto, direction, laddr, raddr, port, netns));
                 INSERT INTO peer_v3 SELECT id, proto, direction, laddr, raddr, port, netns FROM peer;
                 DROP TABLE peer; ALTER TABLE peer_v3 RENAME TO peer;
                 PRAGMA user_version = 3;",
            )
            .expect("downgrade");
    }
    let old = History::open_read(&path).expect("v3 reads");
    let before = peers(&old);
    assert_eq!(before.len(), 1);
    assert_eq!((before[0].1.as_str(), before[0].2), ("", 0));
    drop(old);
    let mut h = History::create(&path).expect("migrates");
    assert_eq!(schema::version_of(&h.conn), schema::current());
    assert_eq!(peers(&h), before, "the peer keeps its id");
    h.ingest(&[
        named(2, "a.example", 1),
        named(3, "b.example", 2),
        named(4, "a.example", 1),
    ])
    .expect("named");
    let after = peers(&h);
    let names: Vec<(&str, u8)> = after.iter().map(|p| (p.1.as_str(), p.2)).collect();
    assert_eq!(
        names,
        [
            ("", 0),
            ("a.example", 1),
            ("a.example", 1),
            ("b.example", 2)
        ]
    );
    // the same name is the same peer; another name another peer
    assert_eq!(after[1].0, after[2].0);
    assert_ne!(after[1].0, after[3].0);
}
