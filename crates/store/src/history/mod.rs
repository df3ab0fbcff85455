//! The history database (`netwho daemon`, `netwho report --db`): months of
//! traffic per process, user, unit and remote in one SQLite file
//! (`docs/specs/history.md`).
//!
//! Two kinds of data:
//!
//! * **raw flows**: one row per flow (`flow`: who, with whom, when, the
//!   totals) and its bytes per minute (`flow_min`), for per-connection
//!   reports;
//! * **rollups** per minute, hour and day (`roll_m`, `roll_h`, `roll_d`):
//!   bytes, packets and new flows per (process, peer), where a process is
//!   one process instance with its user and unit (`proc`) and a peer is
//!   (protocol, direction, local address, remote address, service port)
//!   (`peer`). Every report by process, program, user, unit, remote or
//!   port is a range scan of the coarsest tier that fits.
//!
//! Each tier has its own retention. Every delta goes into the raw rows and
//! all three tiers in the same transaction, so the tiers agree with each
//! other and with the raw flows at every commit; WAL mode makes a commit
//! durable against a killed process. Pure with respect to time: every time
//! comes from the caller.

mod alerts;
mod dims;
mod ingest;
mod query;
mod schema;
#[cfg(test)]
mod tests;

pub use alerts::{BaselineChange, BaselineProgram, StoredAlert};
pub use dims::{Counters, PeerDim, ProcDim, proto_code, proto_from_code};
pub use ingest::{IngestStats, Obs};
pub use query::{Combo, Covered, FlowRow, Plan, Tier};

use rusqlite::Connection;
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Why the history could not be opened, written or read.
#[derive(Debug, Error)]
pub enum HistoryError {
    #[error(
        "cannot open the history database {path}: {source}; check the path and its \
         permissions (the daemon creates it; readers need read access to the file and its \
         directory)",
        path = path.display()
    )]
    /// The database could not be opened.
    Open {
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: rusqlite::Error,
    },
    #[error(
        "{path} is not a netwho history database ({why}); point --db at the daemon's \
         database (see 'netwho daemon --help'), or move the file away and let the daemon \
         create a new one",
        path = path.display()
    )]
    /// The file is not a history database.
    NotHistory {
        /// The file.
        path: PathBuf,
        /// What shows it.
        why: String,
    },
    #[error(
        "{path} has history schema version {found}; this netwho knows versions up to \
         {known}: use a newer netwho to read it",
        path = path.display()
    )]
    /// The database was made by a newer netwho.
    TooNew {
        /// The file.
        path: PathBuf,
        /// The schema version found.
        found: i64,
        /// The newest this netwho knows.
        known: i64,
    },
    #[error("{path} does not exist; start 'netwho daemon' to create it", path = path.display())]
    /// The database does not exist.
    Missing {
        /// The file.
        path: PathBuf,
    },
    #[error(
        "you may not read {path}: the history holds every user's traffic, so only root and \
         the members of the daemon's group (api.group) may read it; ask the daemon, which \
         shows you your own processes' traffic: netwho report REPORT --connect",
        path = path.display()
    )]
    /// The database may not be read by this user.
    Denied {
        /// The file.
        path: PathBuf,
    },
    #[error(
        "cannot make the history database {path} private: {source}",
        path = path.display()
    )]
    /// Its file mode could not be made private.
    Private {
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: std::io::Error,
    },
    #[error("the report was stopped before it finished")]
    /// A report's cancel check said stop.
    Cancelled,
    #[error("history database {path}: {source}", path = path.display())]
    /// A statement failed.
    Sql {
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: rusqlite::Error,
    },
}

/// How long each kind of data is kept, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Seconds raw flows are kept.
    pub raw_s: i64,
    /// Seconds minute rollups are kept.
    pub minute_s: i64,
    /// Seconds hour rollups are kept.
    pub hour_s: i64,
    /// Seconds day rollups are kept.
    pub day_s: i64,
}

const DAY: i64 = 86_400;

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw_s: 7 * DAY,
            minute_s: 14 * DAY,
            hour_s: 400 * DAY,
            day_s: 3650 * DAY,
        }
    }
}

/// A flow the writer has seen (in this run) and not yet seen close.
#[derive(Clone, Copy, Debug)]
struct Open {
    row: i64,
    /// Its counters as last observed. Counters count from the start of a
    /// run: from the flow's start, or from when a restarted netwho found
    /// the socket.
    last: Counters,
    /// What the row held before this run (a flow that outlived a daemon).
    base: Counters,
    seen_ns: i64,
    /// Who the row is (see `ingest::Ident`): two flows whose 64-bit ids
    /// collide never share a row.
    ident: ingest::Ident,
}

/// Memory the writer keeps between batches is bounded: caches are dropped
/// past this many entries (and rebuilt from the database).
const CACHE_MAX: usize = 200_000;

/// The history database, for writing (one writer: the daemon) or reading.
pub struct History {
    conn: Connection,
    path: PathBuf,
    boot: Option<i64>,
    procs: FxHashMap<Arc<ProcDim>, i64>,
    peers: FxHashMap<PeerDim, i64>,
    flows: FxHashMap<u64, Open>,
    /// Reading stops when this says so.
    stop: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    /// The writer's file: (device, inode) and how it was made private.
    file: Option<((u64, u64), crate::private::Access)>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("path", &self.path).finish()
    }
}

impl History {
    /// Opens (creating it and its schema if needed) the database for the
    /// writer; only its owner may read it.
    pub fn create(path: &Path) -> Result<History, HistoryError> {
        History::create_with(path, crate::private::Access::OWNER)
    }

    /// [`History::create`], the file (and its WAL and shared-memory files,
    /// which SQLite creates with the database's mode and owner) with
    /// `access`; an existing file with looser modes is tightened.
    pub fn create_with(
        path: &Path,
        access: crate::private::Access,
    ) -> Result<History, HistoryError> {
        use crate::private;
        let private = |source| HistoryError::Private {
            path: path.to_owned(),
            source,
        };
        match private::create(path, access, false) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                private::tighten_path(path, access).map_err(private)?;
            }
            Err(e) => return Err(private(e)),
        }
        for side in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(side);
            private::tighten_path(Path::new(&p), access).map_err(private)?;
        }
        let conn = Connection::open(path).map_err(|source| HistoryError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut h = History::with(conn, path);
        h.pragmas(true)?;
        schema::migrate(&mut h.conn, path)?;
        if let Ok(m) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt as _;
            h.file = Some(((m.dev(), m.ino()), access));
        }
        Ok(h)
    }

    /// Opens an existing database for reading (reports, the API). Readers
    /// do not block the writer (WAL).
    pub fn open_read(path: &Path) -> Result<History, HistoryError> {
        match std::fs::File::open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HistoryError::Missing {
                    path: path.to_owned(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(HistoryError::Denied {
                    path: path.to_owned(),
                });
            }
            // SQLite says what else is wrong
            Err(_) => {}
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| HistoryError::Open {
                path: path.to_owned(),
                source,
            })?;
        let mut h = History::with(conn, path);
        h.pragmas(false)?;
        schema::check(&h.conn, path)?;
        Ok(h)
    }

    fn with(conn: Connection, path: &Path) -> History {
        History {
            conn,
            path: path.to_owned(),
            boot: None,
            procs: FxHashMap::default(),
            peers: FxHashMap::default(),
            flows: FxHashMap::default(),
            stop: None,
            file: None,
        }
    }

    /// The writer's database file is no longer the one at its path (it
    /// was deleted or replaced while netwho ran): what happened, if so.
    pub fn replaced(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt as _;
        let (id, _) = self.file?;
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == id => None,
            Ok(_) => Some(format!(
                "{} was replaced by another file",
                self.path.display()
            )),
            Err(_) => Some(format!("{} was deleted", self.path.display())),
        }
    }

    /// The writer again on whatever is at its path now (a new database if
    /// there is none), made private as before.
    pub fn reopen(&self) -> Result<History, HistoryError> {
        let access = self.file.map_or(crate::private::Access::OWNER, |(_, a)| a);
        History::create_with(&self.path, access)
    }

    fn pragmas(&mut self, writer: bool) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let sql = |e: rusqlite::Error| HistoryError::NotHistory {
            path: path.clone(),
            why: e.to_string(),
        };
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        if writer {
            // WAL: a commit is durable against a killed process, readers
            // never block the writer; NORMAL: fsync at checkpoints, not at
            // every commit (a power cut may lose the last commits, never
            // the database).
            self.conn
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(sql)?;
            self.conn
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(sql)?;
        }
        Ok(())
    }

    /// Remember the names of remote addresses (address, name), resolved
    /// at `now_ns`: the latest name of an address replaces the one before.
    pub fn put_names(
        &mut self,
        names: &[(String, String)],
        now_ns: i64,
    ) -> Result<(), HistoryError> {
        if names.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO rname (addr, name, resolved_ns) VALUES (?1, ?2, ?3)
                     ON CONFLICT (addr) DO UPDATE SET name = ?2, resolved_ns = ?3",
                )
                .map_err(sql)?;
            for (addr, name) in names {
                st.execute(rusqlite::params![addr, name, now_ns])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// The name of a remote address, if one was resolved (a database of
    /// version 1, not yet migrated by its daemon, has none).
    pub fn name_of(&self, addr: &str) -> Result<Option<String>, HistoryError> {
        use rusqlite::OptionalExtension as _;
        if schema::version_of(&self.conn) < 2 {
            return Ok(None);
        }
        self.conn
            .prepare_cached("SELECT name FROM rname WHERE addr = ?1")
            .and_then(|mut st| st.query_row([addr], |r| r.get(0)).optional())
            .map_err(|source| HistoryError::Sql {
                path: self.path.clone(),
                source,
            })
    }

    /// The database's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
        |source| {
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
                return HistoryError::Cancelled;
            }
            HistoryError::Sql {
                path: self.path.clone(),
                source,
            }
        }
    }

    /// Reading stops with [`HistoryError::Cancelled`] as soon as `stop`
    /// says so: checked by SQLite every thousand steps of a query (so one
    /// long query is interrupted too) and between the rows handed out.
    /// A reader that a client has left, a deadline or a signal stops
    /// costs nothing more.
    pub fn cancel_when(&mut self, stop: Arc<dyn Fn() -> bool + Send + Sync>) {
        let s = Arc::clone(&stop);
        self.conn.progress_handler(1000, Some(move || s()));
        self.stop = Some(stop);
    }

    /// Cancelled already (see [`History::cancel_when`]).
    pub(crate) fn check_stop(&self) -> Result<(), HistoryError> {
        match &self.stop {
            Some(s) if s() => Err(HistoryError::Cancelled),
            _ => Ok(()),
        }
    }

    /// Rows in each table (status, `--db` summaries).
    pub fn counts(&self) -> Result<Vec<(&'static str, i64)>, HistoryError> {
        let mut out = Vec::new();
        for t in [
            "flow", "flow_min", "roll_m", "roll_h", "roll_d", "proc", "peer",
        ] {
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .map_err(self.err())?;
            out.push((t, n));
        }
        Ok(out)
    }

    /// Size of the database file (and its WAL) on disk.
    pub fn disk_bytes(&self) -> u64 {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        [self.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Deletes what is older than each tier's retention (`now_ns`: Unix
    /// ns), then the processes and peers nothing refers to any more.
    /// Returns the rows deleted.
    pub fn prune(&mut self, now_ns: i64, keep: &Retention) -> Result<u64, HistoryError> {
        let now_s = now_ns.div_euclid(1_000_000_000);
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|source| HistoryError::Sql {
                path: path.clone(),
                source,
            })?;
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        let mut n = 0u64;
        let mut del = |q: &str, arg: i64| -> Result<(), HistoryError> {
            n += tx.execute(q, [arg]).map_err(sql)? as u64;
            Ok(())
        };
        let cut = [
            ("flow", now_s - keep.raw_s),
            ("roll_m", now_s - keep.minute_s),
            ("roll_h", now_s - keep.hour_s),
            ("roll_d", now_s - keep.day_s),
        ];
        for (table, before) in cut {
            if table == "flow" {
                del("DELETE FROM flow_min WHERE t < ?1", before)?;
                del(
                    "DELETE FROM flow WHERE last_ns < ?1",
                    before.saturating_mul(1_000_000_000),
                )?;
            } else {
                del(&format!("DELETE FROM {table} WHERE t < ?1"), before)?;
            }
            // readers know from where each tier is complete
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), \
                 CAST(excluded.value AS INTEGER))",
                rusqlite::params![format!("pruned.{table}"), before.to_string()],
            )
            .map_err(sql)?;
        }
        for (dim, col) in [("proc", "proc"), ("peer", "peer")] {
            let q = format!(
                "DELETE FROM {dim} WHERE id NOT IN (SELECT {col} FROM roll_d UNION \
                 SELECT {col} FROM roll_h UNION SELECT {col} FROM roll_m UNION \
                 SELECT {col} FROM flow)"
            );
            n += tx.execute(&q, []).map_err(sql)? as u64;
        }
        tx.commit().map_err(sql)?;
        // ids may be gone: the caches are rebuilt on demand
        self.procs.clear();
        self.peers.clear();
        let stale = now_ns - keep.raw_s.saturating_mul(1_000_000_000);
        self.flows.retain(|_, o| o.seen_ns >= stale);
        Ok(n)
    }
}
