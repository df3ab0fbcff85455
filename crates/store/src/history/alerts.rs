//! First-seen alerts' part of the history database (schema version 3,
//! `docs/specs/alerts.md`): every program's baseline and the alerts
//! raised. The daemon's alert writer owns these tables; readers (the API,
//! reports) only read them.

use super::{History, HistoryError, proto_code, proto_from_code};
use netwho_model::Proto;
use rusqlite::{OptionalExtension as _, params};

/// The meta key holding when learning started (Unix ns).
const LEARN_SINCE: &str = "alerts.learn_since";

/// Alerts kept in the database; past this the oldest go.
pub const ALERTS_KEPT: i64 = 100_000;

/// What a baseline learned, to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaselineChange {
    /// A program seen on the network for the first time.
    Program {
        /// The program (its executable path, or its unit).
        key: String,
        /// When (Unix ns).
        first_ns: i64,
    },
    /// A hash its executable had.
    Hash {
        /// The program.
        key: String,
        /// SHA-256, hex.
        sha256: String,
        /// When (Unix ns).
        first_ns: i64,
    },
    /// A destination it used.
    Dest {
        /// The program.
        key: String,
        /// The protocol.
        proto: Proto,
        /// The remote's name (its address until names are known).
        name: String,
        /// The remote port.
        port: u16,
        /// When (Unix ns).
        first_ns: i64,
    },
}

/// One program's baseline as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaselineProgram {
    /// The program.
    pub key: String,
    /// When it was first seen (Unix ns).
    pub first_ns: i64,
    /// The hashes its executable has had.
    pub hashes: Vec<String>,
    /// (protocol, name, port) of the destinations it has used.
    pub dests: Vec<(Proto, String, u16)>,
}

/// An alert as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAlert {
    /// Its id (increasing).
    pub id: i64,
    /// When it was raised (Unix ns).
    pub ts_ns: i64,
    /// The uid of the process it is about.
    pub uid: u32,
    /// Its kind (`new_destination`, ...).
    pub kind: String,
    /// The alert record (JSON).
    pub record: String,
    /// When it was acknowledged (Unix ns).
    pub acked_ns: Option<i64>,
}

impl History {
    /// When learning started: the first call stores `now_ns`, later calls
    /// (later starts of the daemon) return what was stored.
    pub fn alerts_learn_since(&mut self, now_ns: i64) -> Result<i64, HistoryError> {
        let err = self.err();
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![LEARN_SINCE],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        if let Some(v) = found.and_then(|v| v.parse::<i64>().ok()) {
            return Ok(v);
        }
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![LEARN_SINCE, now_ns.to_string()],
            )
            .map_err(&err)?;
        Ok(now_ns)
    }

    /// Every program's stored baseline, at most `max_programs` programs
    /// and `max_dests` destinations each (the first seen).
    pub fn alerts_baseline(
        &self,
        max_programs: usize,
        max_dests: usize,
    ) -> Result<Vec<BaselineProgram>, HistoryError> {
        let err = self.err();
        let mut out: Vec<BaselineProgram> = Vec::new();
        let mut ids = rustc_hash::FxHashMap::default();
        let mut st = self
            .conn
            .prepare("SELECT id, key, first_ns FROM alert_prog ORDER BY id LIMIT ?1")
            .map_err(&err)?;
        let rows = st
            .query_map(params![max_programs as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (id, key, first_ns) = row.map_err(&err)?;
            ids.insert(id, out.len());
            out.push(BaselineProgram {
                key,
                first_ns,
                ..BaselineProgram::default()
            });
        }
        let mut st = self
            .conn
            .prepare("SELECT prog, sha256 FROM alert_hash ORDER BY first_ns")
            .map_err(&err)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(&err)?;
        for row in rows {
            let (id, sha) = row.map_err(&err)?;
            if let Some(p) = ids.get(&id).and_then(|i| out.get_mut(*i)) {
                p.hashes.push(sha);
            }
        }
        let mut st = self
            .conn
            .prepare("SELECT prog, proto, name, port FROM alert_dest ORDER BY first_ns")
            .map_err(&err)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (id, proto, name, port) = row.map_err(&err)?;
            if let Some(p) = ids.get(&id).and_then(|i| out.get_mut(*i))
                && p.dests.len() < max_dests
            {
                p.dests.push((
                    proto_from_code(proto),
                    name,
                    u16::try_from(port).unwrap_or(0),
                ));
            }
        }
        Ok(out)
    }

    /// What the history already knows, as baseline: every (program, hash)
    /// and every outbound (program, protocol, remote address, port) of
    /// the raw flows still kept, at most `max` rows. `by_unit`: a program
    /// is its unit (its executable when it has none).
    pub fn alerts_seed(
        &self,
        by_unit: bool,
        max: usize,
    ) -> Result<Vec<BaselineChange>, HistoryError> {
        let err = self.err();
        let key = if by_unit {
            "CASE WHEN p.unit <> '' THEN p.unit ELSE p.exe END"
        } else {
            "p.exe"
        };
        let mut out = Vec::new();
        let sql = format!(
            "SELECT {key}, MIN(f.opened_ns), p.exe_sha256 FROM flow f
             JOIN proc p ON p.id = f.proc
             WHERE p.exe <> '' GROUP BY 1, 3 LIMIT ?1"
        );
        let mut st = self.conn.prepare(&sql).map_err(&err)?;
        let rows = st
            .query_map(params![max as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (key, first_ns, sha) = row.map_err(&err)?;
            out.push(BaselineChange::Program {
                key: key.clone(),
                first_ns,
            });
            if let Some(sha256) = sha {
                out.push(BaselineChange::Hash {
                    key,
                    sha256,
                    first_ns,
                });
            }
        }
        let sql = format!(
            "SELECT {key}, e.proto, e.raddr, e.port, MIN(f.opened_ns) FROM flow f
             JOIN proc p ON p.id = f.proc JOIN peer e ON e.id = f.peer
             WHERE p.exe <> '' AND e.direction = 'outbound'
             GROUP BY 1, 2, 3, 4 LIMIT ?1"
        );
        let mut st = self.conn.prepare(&sql).map_err(&err)?;
        let rows = st
            .query_map(params![max as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (key, proto, name, port, first_ns) = row.map_err(&err)?;
            out.push(BaselineChange::Dest {
                key,
                proto: proto_from_code(proto),
                name,
                port: u16::try_from(port).unwrap_or(0),
                first_ns,
            });
        }
        Ok(out)
    }

    /// Writes what the baselines learned and the alerts raised (id, time,
    /// uid, kind, record), in one transaction; returns the alerts' ids. Alerts past
    /// 100,000 (`ALERTS_KEPT`) go, the oldest first.
    pub fn alerts_put(
        &mut self,
        changes: &[BaselineChange],
        alerts: &[(i64, i64, u32, &str, String)],
    ) -> Result<Vec<i64>, HistoryError> {
        let path = self.path.clone();
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let mut ids = Vec::with_capacity(alerts.len());
        {
            let mut prog = tx
                .prepare_cached(
                    "INSERT INTO alert_prog (key, first_ns) VALUES (?1, ?2)
                     ON CONFLICT (key) DO NOTHING",
                )
                .map_err(sql)?;
            let mut id_of = tx
                .prepare_cached("SELECT id FROM alert_prog WHERE key = ?1")
                .map_err(sql)?;
            let mut hash = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO alert_hash (prog, sha256, first_ns) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql)?;
            let mut dest = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO alert_dest (prog, proto, name, port, first_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            let mut prog_id = |key: &str, first_ns: i64| -> Result<i64, rusqlite::Error> {
                prog.execute(params![key, first_ns])?;
                id_of.query_row(params![key], |r| r.get(0))
            };
            for c in changes {
                match c {
                    BaselineChange::Program { key, first_ns } => {
                        prog_id(key, *first_ns).map_err(sql)?;
                    }
                    BaselineChange::Hash {
                        key,
                        sha256,
                        first_ns,
                    } => {
                        let p = prog_id(key, *first_ns).map_err(sql)?;
                        hash.execute(params![p, sha256, first_ns]).map_err(sql)?;
                    }
                    BaselineChange::Dest {
                        key,
                        proto,
                        name,
                        port,
                        first_ns,
                    } => {
                        let p = prog_id(key, *first_ns).map_err(sql)?;
                        dest.execute(params![p, proto_code(*proto), name, port, first_ns])
                            .map_err(sql)?;
                    }
                }
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO alert (id, ts_ns, uid, kind, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            for (id, ts, uid, kind, record) in alerts {
                put.execute(params![id, ts, uid, kind, record])
                    .map_err(sql)?;
                ids.push(*id);
            }
        }
        if !alerts.is_empty() {
            tx.execute(
                "DELETE FROM alert WHERE id <= (SELECT MAX(id) FROM alert) - ?1",
                params![ALERTS_KEPT],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(ids)
    }

    /// The newest `limit` alerts, newest last (a database of an older
    /// version, not yet migrated by its daemon, has none).
    pub fn alerts_recent(&self, limit: usize) -> Result<Vec<StoredAlert>, HistoryError> {
        if super::schema::version_of(&self.conn) < 3 {
            return Ok(Vec::new());
        }
        let err = self.err();
        let mut st = self
            .conn
            .prepare(
                "SELECT id, ts_ns, uid, kind, record, acked_ns FROM
                 (SELECT * FROM alert ORDER BY id DESC LIMIT ?1) ORDER BY id",
            )
            .map_err(&err)?;
        let rows = st
            .query_map(params![limit as i64], |r| {
                Ok(StoredAlert {
                    id: r.get(0)?,
                    ts_ns: r.get(1)?,
                    uid: r.get(2)?,
                    kind: r.get(3)?,
                    record: r.get(4)?,
                    acked_ns: r.get(5)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// The largest alert id stored (0 when none).
    pub fn alerts_last_id(&self) -> Result<i64, HistoryError> {
        let err = self.err();
        self.conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM alert", [], |r| r.get(0))
            .map_err(&err)
    }

    /// Marks alerts acknowledged, each (id, when) at its own time (those
    /// already acknowledged keep theirs).
    pub fn alerts_ack(&mut self, acks: &[(i64, i64)]) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut st = tx
                .prepare_cached("UPDATE alert SET acked_ns = ?2 WHERE id = ?1 AND acked_ns IS NULL")
                .map_err(sql)?;
            for (id, at) in acks {
                st.execute(params![id, at]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(tag: &str) -> (std::path::PathBuf, History) {
        let dir = std::env::temp_dir().join(format!("netwho-alerts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let h = History::create(&dir.join("h.db")).unwrap();
        (dir, h)
    }

    #[test]
    fn baselines_and_alerts_survive_a_reopen() {
        let (dir, mut h) = db("reopen");
        assert_eq!(h.alerts_learn_since(5).unwrap(), 5);
        assert_eq!(h.alerts_learn_since(9).unwrap(), 5);
        let changes = vec![
            BaselineChange::Program {
                key: "/usr/bin/curl".into(),
                first_ns: 1,
            },
            BaselineChange::Hash {
                key: "/usr/bin/curl".into(),
                sha256: "ab".into(),
                first_ns: 1,
            },
            BaselineChange::Dest {
                key: "/usr/bin/curl".into(),
                proto: Proto::Tcp,
                name: "10.231.0.2".into(),
                port: 443,
                first_ns: 2,
            },
            // twice: once is kept
            BaselineChange::Dest {
                key: "/usr/bin/curl".into(),
                proto: Proto::Tcp,
                name: "10.231.0.2".into(),
                port: 443,
                first_ns: 3,
            },
        ];
        let ids = h
            .alerts_put(&changes, &[(1, 7, 1000, "new_destination", "{}".into())])
            .unwrap();
        assert_eq!(ids.len(), 1);
        h.alerts_ack(&[(ids[0], 8)]).unwrap();
        drop(h);
        let h = History::open_read(&dir.join("h.db")).unwrap();
        let b = h.alerts_baseline(10, 10).unwrap();
        assert_eq!(
            b,
            vec![BaselineProgram {
                key: "/usr/bin/curl".into(),
                first_ns: 1,
                hashes: vec!["ab".into()],
                dests: vec![(Proto::Tcp, "10.231.0.2".into(), 443)],
            }]
        );
        let a = h.alerts_recent(10).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].uid, a[0].acked_ns), (1000, Some(8)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Loading is bounded by the caller's limits, whatever the file holds.
    #[test]
    fn loading_a_baseline_is_bounded() {
        let (dir, mut h) = db("bounded");
        let mut changes = Vec::new();
        for p in 0..20 {
            for d in 0..30u16 {
                changes.push(BaselineChange::Dest {
                    key: format!("/p{p}"),
                    proto: Proto::Udp,
                    name: "10.231.0.9".into(),
                    port: d,
                    first_ns: 1,
                });
            }
        }
        h.alerts_put(&changes, &[]).unwrap();
        let b = h.alerts_baseline(5, 7).unwrap();
        assert_eq!(b.len(), 5);
        assert!(b.iter().all(|p| p.dests.len() == 7));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
