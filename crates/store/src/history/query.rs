//! Reading: which tier answers which part of a time range, the rollup
//! rows of a range, the raw flows of a range, and the processes and peers
//! they refer to.

use super::dims::{Counters, PeerDim, ProcDim, proto_from_code};
use super::ingest::json_array;
use super::{History, HistoryError};
use rusqlite::{OptionalExtension, params};
use std::net::IpAddr;
use std::sync::Arc;

/// A rollup tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Minute rollups.
    Minute,
    /// Hour rollups.
    Hour,
    /// Day rollups.
    Day,
}

impl Tier {
    /// Every tier, finest first.
    pub const ALL: [Tier; 3] = [Tier::Minute, Tier::Hour, Tier::Day];

    /// Its bucket, in seconds.
    pub fn secs(self) -> i64 {
        match self {
            Tier::Minute => 60,
            Tier::Hour => 3600,
            Tier::Day => 86_400,
        }
    }

    /// Its table.
    pub fn table(self) -> &'static str {
        match self {
            Tier::Minute => "roll_m",
            Tier::Hour => "roll_h",
            Tier::Day => "roll_d",
        }
    }

    /// Its name, for people.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Minute => "minute",
            Tier::Hour => "hour",
            Tier::Day => "day",
        }
    }

    /// The coarsest tier whose buckets fit in `interval_s` buckets
    /// (a per-hour report cannot use days).
    pub fn coarsest_for(interval_s: Option<i64>) -> Tier {
        match interval_s {
            None => Tier::Day,
            Some(i) => Tier::ALL
                .into_iter()
                .rev()
                .find(|t| i >= t.secs() && i % t.secs() == 0)
                .unwrap_or(Tier::Minute),
        }
    }
}

/// Which tier answers which part of a range (Unix seconds, `[from, to)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// (tier, from, to) parts, in order.
    pub parts: Vec<(Tier, i64, i64)>,
}

/// The range a plan covers: the range asked for, widened to whole
/// minutes, and to whole hours or days where the finer tiers were
/// already pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Covered {
    /// Start, Unix seconds.
    pub from: i64,
    /// End, Unix seconds.
    pub to: i64,
    /// The coarsest tier the plan had to use where a finer one was asked
    /// for (the report's times are rounded to it there).
    pub rounded_to: Option<Tier>,
}

/// One rollup row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Combo {
    /// The bucket's start, Unix seconds.
    pub t: i64,
    /// The process (its row id).
    pub proc: i64,
    /// The peer (its row id).
    pub peer: i64,
    /// Its bytes and packets.
    pub counters: Counters,
    /// Flows first stored in this bucket.
    pub flows: u64,
}

/// One raw flow with its bytes in a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRow {
    /// The flow's id.
    pub fid: u64,
    /// The process (its row id).
    pub proc: i64,
    /// The peer (its row id).
    pub peer: i64,
    /// The local port.
    pub lport: u16,
    /// The remote port.
    pub rport: u16,
    /// When it opened, Unix ns.
    pub opened_ns: i64,
    /// When it closed, Unix ns.
    pub closed_ns: Option<i64>,
    /// Why it closed.
    pub close_reason: Option<String>,
    /// How its owner was found.
    pub attribution: String,
    /// The first and last minute of the range with a row of this flow.
    pub first_t: i64,
    /// See `first_t`.
    pub last_t: i64,
    /// Its bytes in the range.
    pub window: Counters,
}

fn floor(t: i64, size: i64) -> i64 {
    t.div_euclid(size) * size
}

/// The greedy plan: at each point the coarsest tier (no coarser than
/// `max`) whose bucket starts there and ends inside the range, else the
/// finest tier that still holds data there. Neighbouring buckets of a tier
/// merge into one part.
pub fn plan(from_s: i64, to_s: i64, max: Tier, complete_from: &[i64; 3]) -> (Plan, Covered) {
    let mut t = floor(from_s, 60);
    let to = floor(to_s + 59, 60);
    let mut p = Plan::default();
    let mut rounded_to = None;
    let mut first = None;
    while t < to {
        let fits = Tier::ALL
            .into_iter()
            .rev()
            .filter(|tier| *tier <= max)
            .find(|tier| {
                let s = tier.secs();
                t % s == 0 && t + s <= to && t >= complete_from[*tier as usize]
            });
        let (tier, start) = match fits {
            Some(tier) => (tier, t),
            None => {
                // the finer data is pruned here: the bucket around t
                let tier = Tier::ALL
                    .into_iter()
                    .find(|tier| t >= complete_from[*tier as usize] || *tier == Tier::Day)
                    .unwrap_or(Tier::Day);
                if tier > Tier::Minute {
                    rounded_to = rounded_to.max(Some(tier));
                }
                (tier, floor(t, tier.secs()))
            }
        };
        let end = start + tier.secs();
        first.get_or_insert(start);
        match p.parts.last_mut() {
            Some(last) if last.0 == tier && last.2 == start => last.2 = end,
            _ => p.parts.push((tier, start, end)),
        }
        t = end;
    }
    let cov = Covered {
        from: first.unwrap_or(t),
        to: t.max(to),
        rounded_to,
    };
    (p, cov)
}

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

impl History {
    /// Where each tier's data is complete (Unix seconds): what pruning
    /// has not removed.
    pub fn complete_from(&self) -> Result<[i64; 3], HistoryError> {
        let mut out = [i64::MIN; 3];
        for tier in Tier::ALL {
            let v: Option<String> = self
                .conn
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [format!("pruned.{}", tier.table())],
                    |r| r.get(0),
                )
                .optional()
                .map_err(self.err())?;
            if let Some(v) = v.and_then(|v| v.parse().ok()) {
                out[tier as usize] = v;
            }
        }
        Ok(out)
    }

    /// Where raw flows are complete (Unix seconds).
    pub fn raw_complete_from(&self) -> Result<i64, HistoryError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'pruned.flow'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(i64::MIN))
    }

    /// The plan for `[from_s, to_s)` with buckets no coarser than `max`,
    /// over the part of it the history holds data for (the walk costs what
    /// the data spans, whatever range is asked).
    pub fn plan(&self, from_s: i64, to_s: i64, max: Tier) -> Result<(Plan, Covered), HistoryError> {
        // (whole days around the data: the coarsest buckets still fit)
        let (lo, hi) = self.span()?.map_or((from_s, from_s), |(a, b)| {
            let day = Tier::Day.secs();
            (floor(a, day), floor(b.saturating_add(day - 1), day))
        });
        let (from, to) = (from_s.clamp(lo, hi), to_s.clamp(lo, hi));
        let (p, mut cov) = plan(from, to.max(from), max, &self.complete_from()?);
        if from == to {
            cov = Covered {
                from: floor(from_s.clamp(lo, hi), 60),
                to: floor(from_s.clamp(lo, hi), 60),
                rounded_to: None,
            };
        }
        Ok((p, cov))
    }

    /// Every rollup row of the plan, in time order within each part; an
    /// error from `f` stops the reading and is returned.
    pub fn combos(
        &self,
        p: &Plan,
        f: &mut dyn FnMut(Combo) -> Result<(), HistoryError>,
    ) -> Result<(), HistoryError> {
        for (tier, a, b) in &p.parts {
            let mut stmt = self
                .conn
                .prepare_cached(&format!(
                    "SELECT t, proc, peer, sent, recv, wire_sent, wire_recv, packets_sent, \
                     packets_recv, flows FROM {} WHERE t >= ?1 AND t < ?2",
                    tier.table()
                ))
                .map_err(self.err())?;
            let mut rows = stmt.query(params![a, b]).map_err(self.err())?;
            while let Some(r) = rows.next().map_err(self.err())? {
                let get = |i| r.get::<_, i64>(i);
                let row = (|| {
                    Ok::<_, rusqlite::Error>(Combo {
                        t: get(0)?,
                        proc: get(1)?,
                        peer: get(2)?,
                        counters: Counters::from_sql([
                            get(3)?,
                            get(4)?,
                            get(5)?,
                            get(6)?,
                            get(7)?,
                            get(8)?,
                        ]),
                        flows: u64::try_from(get(9)?).unwrap_or(0),
                    })
                })()
                .map_err(self.err())?;
                self.check_stop()?;
                f(row)?;
            }
        }
        Ok(())
    }

    /// Every raw flow with bytes (or its first record) in `[from_s, to_s)`
    /// (whole minutes), with its bytes in that range.
    pub fn flows_in(
        &self,
        from_s: i64,
        to_s: i64,
        f: &mut dyn FnMut(FlowRow) -> Result<(), HistoryError>,
    ) -> Result<(), HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT f.fid, f.proc, f.peer, f.lport, f.rport, f.opened_ns, f.closed_ns, \
                 f.close_reason, f.attribution, min(m.t), max(m.t), sum(m.sent), sum(m.recv), \
                 sum(m.wire_sent), sum(m.wire_recv), sum(m.packets_sent), sum(m.packets_recv) \
                 FROM flow_min m JOIN flow f ON f.id = m.flow \
                 WHERE m.t >= ?1 AND m.t < ?2 GROUP BY m.flow",
            )
            .map_err(self.err())?;
        let mut rows = stmt
            .query(params![floor(from_s, 60), floor(to_s + 59, 60)])
            .map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let row = (|| {
                let n = |i| r.get::<_, i64>(i);
                Ok::<_, rusqlite::Error>(FlowRow {
                    fid: n(0)? as u64,
                    proc: n(1)?,
                    peer: n(2)?,
                    lport: u16::try_from(n(3)?).unwrap_or(0),
                    rport: u16::try_from(n(4)?).unwrap_or(0),
                    opened_ns: n(5)?,
                    closed_ns: r.get(6)?,
                    close_reason: r.get(7)?,
                    attribution: r.get(8)?,
                    first_t: n(9)?,
                    last_t: n(10)?,
                    window: Counters::from_sql([n(11)?, n(12)?, n(13)?, n(14)?, n(15)?, n(16)?]),
                })
            })()
            .map_err(self.err())?;
            self.check_stop()?;
            f(row)?;
        }
        Ok(())
    }

    /// A process row.
    pub fn proc_dim(&self, id: i64) -> Result<Arc<ProcDim>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT b.boot_id, p.tgid, p.start_ticks, p.start_ns, p.ppid, p.comm, \
                 p.parent_comm, p.exe, p.cmdline, p.uid, p.gid, p.login_uid, p.user, p.grp, \
                 p.unit, p.cgroup, p.container, p.exe_sha256 \
                 FROM proc p JOIN boot b ON b.id = p.boot WHERE p.id = ?1",
            )
            .map_err(self.err())?;
        let p = stmt
            .query_row([id], |r| {
                Ok(ProcDim {
                    boot: r.get(0)?,
                    tgid: r.get(1)?,
                    start_ticks: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    start_ns: r.get(3)?,
                    ppid: r.get(4)?,
                    comm: r.get(5)?,
                    parent_comm: r.get(6)?,
                    exe: r.get(7)?,
                    cmdline: json_array(&r.get::<_, String>(8)?),
                    uid: r.get(9)?,
                    gid: r.get(10)?,
                    login_uid: r.get(11)?,
                    user: r.get(12)?,
                    group: r.get(13)?,
                    unit: r.get(14)?,
                    cgroup: r.get(15)?,
                    container: r.get(16)?,
                    exe_sha256: r.get(17)?,
                })
            })
            .map_err(self.err())?;
        Ok(Arc::new(p))
    }

    /// A peer row.
    pub fn peer_dim(&self, id: i64) -> Result<PeerDim, HistoryError> {
        // (a reader may open a database the daemon has not migrated yet:
        // its peers have no names)
        let sql = if super::schema::version_of(&self.conn) >= super::schema::PEER_NAMES {
            "SELECT proto, direction, laddr, raddr, port, netns, name, name_from FROM peer WHERE id = ?1"
        } else {
            "SELECT proto, direction, laddr, raddr, port, netns, '', 0 FROM peer WHERE id = ?1"
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.err())?;
        stmt.query_row([id], |r| {
            let dir: String = r.get(1)?;
            Ok(PeerDim {
                proto: proto_from_code(r.get(0)?),
                direction: match dir.as_str() {
                    "outbound" => "outbound",
                    "inbound" => "inbound",
                    _ => "unknown",
                },
                laddr: ip(&r.get::<_, String>(2)?),
                raddr: ip(&r.get::<_, String>(3)?),
                port: r.get(4)?,
                netns: r.get(5)?,
                name: r.get(6)?,
                name_from: r.get(7)?,
            })
        })
        .map_err(self.err())
    }

    /// The span of time the history holds (Unix seconds), if any: from
    /// the finest tier, widened where only coarser tiers reach further
    /// back (the finer ones were pruned there).
    pub fn span(&self) -> Result<Option<(i64, i64)>, HistoryError> {
        let mut span: Option<(i64, i64)> = None;
        for tier in Tier::ALL {
            // (one aggregate per query: SQLite reads min and max of the
            // key from the index only when asked alone)
            let ends = |f: &str| -> Result<Option<i64>, HistoryError> {
                self.conn
                    .query_row(&format!("SELECT {f}(t) FROM {}", tier.table()), [], |r| {
                        r.get(0)
                    })
                    .map_err(self.err())
            };
            let (a, b) = (ends("min")?, ends("max")?);
            let (Some(a), Some(b)) = (a, b) else { continue };
            let end = b + tier.secs();
            span = Some(match span {
                None => (a, end),
                Some((lo, hi)) => (
                    if a < floor(lo, tier.secs()) { a } else { lo },
                    if end > floor(hi + tier.secs() - 1, tier.secs()) {
                        end
                    } else {
                        hi
                    },
                ),
            });
        }
        Ok(span)
    }
}
