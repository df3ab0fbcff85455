//! Writing: observations of flows (cumulative counters at a time) become
//! raw rows and rollup deltas, one transaction per batch.

use super::dims::{Counters, PeerDim, ProcDim, proto_code};
use super::{CACHE_MAX, History, HistoryError, Open};
use rusqlite::{OptionalExtension, Transaction, params};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// One observation of a flow: its totals so far at `at_ns`.
#[derive(Clone, Debug)]
pub struct Obs {
    /// The flow id (stable for the flow's life, unique across boots).
    pub fid: u64,
    /// The process's attributes.
    pub proc: Arc<ProcDim>,
    /// The peer's attributes.
    pub peer: PeerDim,
    /// The local port.
    pub lport: u16,
    /// The remote port.
    pub rport: u16,
    /// Unix ns.
    pub opened_ns: i64,
    /// When it was observed, Unix ns.
    pub at_ns: i64,
    /// Its totals so far.
    pub totals: Counters,
    /// Unix ns and the reason, once it closed.
    pub closed: Option<(i64, &'static str)>,
    /// How its owner was found.
    pub attribution: &'static str,
}

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Observations stored.
    pub observations: u64,
    /// Flows new to the database.
    pub new_flows: u64,
    /// Flows closed.
    pub closed_flows: u64,
    /// Rollup rows written.
    pub rollup_rows: u64,
    /// Flows whose id was another flow's (64-bit ids do collide, rarely):
    /// each got a row of its own under the next free id.
    pub id_collisions: u64,
}

/// Who a flow is, as far as its row goes: (boot row, tgid, start ticks,
/// remote address, local port, remote port). The process's other details
/// and the peer's direction may be found anew after a restart; these may
/// not change for the same flow.
pub(crate) type Ident = (i64, u32, u64, u128, u16, u16);

fn ip_bits(a: std::net::IpAddr) -> u128 {
    match a {
        std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Where a flow whose id is taken by another flow looks next (an odd
/// step: the probe visits distinct ids).
const PROBE_STEP: u64 = 0x9e37_79b9_7f4a_7c15;
/// Ids tried before a flow is stored under the last one anyway.
const PROBES: u64 = 64;

/// What the writer remembered of each flow before a batch (restored if
/// the batch fails).
type Undo = Vec<(u64, Option<Open>)>;

const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// Deltas of one batch, summed before they are written.
#[derive(Debug, Default)]
struct Sums {
    /// (minute, flow row) → delta
    flow_min: FxHashMap<(i64, i64), Counters>,
    /// (tier, bucket, proc, peer) → (delta, new flows)
    roll: FxHashMap<(usize, i64, i64, i64), (Counters, u64)>,
}

impl History {
    /// Writes a batch in one transaction: all of it or (on error) none.
    pub fn ingest(&mut self, batch: &[Obs]) -> Result<IngestStats, HistoryError> {
        let path = self.path.clone();
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        if self.procs.len() > CACHE_MAX {
            self.procs.clear();
        }
        if self.peers.len() > CACHE_MAX {
            self.peers.clear();
        }
        let tx = self.conn.transaction().map_err(sql)?;
        let mut st = IngestStats::default();
        let mut sums = Sums::default();
        let mut undo = Vec::new();
        let r = ingest_tx(
            &tx,
            batch,
            &mut st,
            &mut sums,
            &mut self.procs,
            &mut self.peers,
            (&mut self.flows, &mut undo),
            &mut self.boot,
        )
        .and_then(|()| write_sums(&tx, &sums, &mut st))
        .and_then(|()| tx.commit());
        if let Err(e) = r {
            // the rows were rolled back: so is what the writer remembers
            // of the flows (the batch can be given again as it was); the
            // caches may name rows that no longer exist
            for (fid, before) in undo.into_iter().rev() {
                match before {
                    Some(o) => self.flows.insert(fid, o),
                    None => self.flows.remove(&fid),
                };
            }
            self.procs.clear();
            self.peers.clear();
            self.boot = None;
            return Err(sql(e));
        }
        Ok(st)
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the writer's state, split for borrows"
)]
fn ingest_tx(
    tx: &Transaction<'_>,
    batch: &[Obs],
    st: &mut IngestStats,
    sums: &mut Sums,
    procs: &mut FxHashMap<Arc<ProcDim>, i64>,
    peers: &mut FxHashMap<PeerDim, i64>,
    (flows, undo): (&mut FxHashMap<u64, Open>, &mut Undo),
    boot: &mut Option<i64>,
) -> rusqlite::Result<()> {
    for o in batch {
        st.observations += 1;
        let proc = match procs.get(&o.proc) {
            Some(id) => *id,
            None => {
                let id = proc_id(tx, &o.proc, boot)?;
                procs.insert(Arc::clone(&o.proc), id);
                id
            }
        };
        let peer = match peers.get(&o.peer) {
            Some(id) => *id,
            None => {
                let id = peer_id(tx, &o.peer)?;
                peers.insert(o.peer.clone(), id);
                id
            }
        };
        let ident: Ident = (
            boot.unwrap_or(0),
            o.proc.tgid,
            o.proc.start_ticks,
            ip_bits(o.peer.raddr),
            o.lport,
            o.rport,
        );
        // the flow's own id, or (if another flow holds it) the next free
        let mut fid = o.fid;
        let mut found = None;
        for i in 0..PROBES {
            fid = o.fid.wrapping_add(i.wrapping_mul(PROBE_STEP));
            if let Some(open) = flows.get(&fid) {
                if open.ident == ident {
                    found = Some(Ok(*open));
                    break;
                }
                continue;
            }
            match flow_row(tx, o, fid, (proc, peer), ident)? {
                Some(r) => {
                    found = Some(Err(r));
                    break;
                }
                None => continue,
            }
        }
        if fid != o.fid {
            st.id_collisions += 1;
        }
        let before = flows.get(&fid).copied();
        let (row, last, base, new) = match found {
            Some(Ok(open)) => (open.row, open.last, open.base, false),
            Some(Err((row, base, new))) => (row, Counters::default(), base, new),
            // (64 distinct flows on one id: not in this universe's lifetime)
            None => continue,
        };
        undo.push((fid, before));
        let delta = o.totals.saturating_sub(last);
        let minute = o.at_ns.div_euclid(1_000_000_000).div_euclid(MIN) * MIN;
        if new {
            st.new_flows += 1;
        }
        if new || !delta.is_zero() {
            sums.flow_min.entry((minute, row)).or_default().add(delta);
            for (tier, size) in [MIN, HOUR, DAY].into_iter().enumerate() {
                let e = sums
                    .roll
                    .entry((tier, minute.div_euclid(size) * size, proc, peer))
                    .or_default();
                e.0.add(delta);
                e.1 += u64::from(new);
            }
        }
        let mut total = base;
        total.add(o.totals);
        let totals = total.sql();
        let mut upd = tx.prepare_cached(
            "UPDATE flow SET last_ns = ?2, closed_ns = ?3, close_reason = ?4, sent = ?5, \
             recv = ?6, wire_sent = ?7, wire_recv = ?8, packets_sent = ?9, packets_recv = ?10 \
             WHERE id = ?1",
        )?;
        upd.execute(params![
            row,
            o.at_ns,
            o.closed.map(|c| c.0),
            o.closed.map(|c| c.1),
            totals[0],
            totals[1],
            totals[2],
            totals[3],
            totals[4],
            totals[5]
        ])?;
        if o.closed.is_some() {
            st.closed_flows += 1;
            flows.remove(&fid);
        } else {
            flows.insert(
                fid,
                Open {
                    row,
                    last: o.totals,
                    base,
                    seen_ns: o.at_ns,
                    ident,
                },
            );
        }
    }
    Ok(())
}

fn proc_id(tx: &Transaction<'_>, p: &ProcDim, boot: &mut Option<i64>) -> rusqlite::Result<i64> {
    let boot_row = match *boot {
        Some(b) => b,
        None => {
            tx.execute(
                "INSERT OR IGNORE INTO boot (boot_id) VALUES (?1)",
                [&p.boot],
            )?;
            let b = tx.query_row("SELECT id FROM boot WHERE boot_id = ?1", [&p.boot], |r| {
                r.get(0)
            })?;
            *boot = Some(b);
            b
        }
    };
    let fp = p.fingerprint();
    let ticks = i64::try_from(p.start_ticks).unwrap_or(i64::MAX);
    let found: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM proc WHERE boot = ?1 AND tgid = ?2 AND start_ticks = ?3 AND fp = ?4",
        )?
        .query_row(params![boot_row, p.tgid, ticks, fp], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    let cmdline = json_array_of(&p.cmdline);
    tx.prepare_cached(
        "INSERT INTO proc (boot, tgid, start_ticks, fp, start_ns, ppid, comm, parent_comm, \
         exe, cmdline, program, uid, gid, login_uid, user, grp, unit, cgroup, container, \
         exe_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
         ?15, ?16, ?17, ?18, ?19, ?20)",
    )?
    .execute(params![
        boot_row,
        p.tgid,
        ticks,
        fp,
        p.start_ns,
        p.ppid,
        p.comm,
        p.parent_comm,
        p.exe,
        cmdline,
        p.program(),
        p.uid,
        p.gid,
        p.login_uid,
        p.user,
        p.group,
        p.unit,
        p.cgroup,
        p.container,
        p.exe_sha256
    ])?;
    Ok(tx.last_insert_rowid())
}

fn peer_id(tx: &Transaction<'_>, p: &PeerDim) -> rusqlite::Result<i64> {
    let (laddr, raddr) = (p.laddr.to_string(), p.raddr.to_string());
    let args = params![
        proto_code(p.proto),
        p.direction,
        laddr,
        raddr,
        p.port,
        p.netns,
        p.name,
        p.name_from
    ];
    tx.prepare_cached(
        "INSERT OR IGNORE INTO peer (proto, direction, laddr, raddr, port, netns, name, name_from) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(args)?;
    tx.prepare_cached(
        "SELECT id FROM peer WHERE proto = ?1 AND direction = ?2 AND laddr = ?3 AND raddr = ?4 \
         AND port = ?5 AND netns = ?6 AND name = ?7 AND name_from = ?8",
    )?
    .query_row(args, |r| r.get(0))
}

/// The flow's row, its totals as stored, and whether it is new. A flow
/// already stored (the daemon restarted while it was open) goes on from
/// the totals stored, its new counters (which count from the restart)
/// added to them.
///
/// The row is `fid`'s only if it is the same flow (`ident`: process and
/// peer rows, ports); a row of another flow under that id is None (the
/// caller tries the next id).
fn flow_row(
    tx: &Transaction<'_>,
    o: &Obs,
    fid: u64,
    (proc, peer): (i64, i64),
    ident: Ident,
) -> rusqlite::Result<Option<(i64, Counters, bool)>> {
    let fid = fid as i64;
    let found = tx
        .prepare_cached(
            "SELECT f.id, f.sent, f.recv, f.wire_sent, f.wire_recv, f.packets_sent, \
             f.packets_recv, p.boot, p.tgid, p.start_ticks, q.raddr, f.lport, f.rport \
             FROM flow f JOIN proc p ON p.id = f.proc JOIN peer q ON q.id = f.peer \
             WHERE f.fid = ?1",
        )?
        .query_row([fid], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Counters::from_sql([
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ]),
                (
                    r.get::<_, i64>(7)?,
                    u32::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
                    u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
                    r.get::<_, String>(10)?
                        .parse::<std::net::IpAddr>()
                        .map_or(0, ip_bits),
                    u16::try_from(r.get::<_, i64>(11)?).unwrap_or(0),
                    u16::try_from(r.get::<_, i64>(12)?).unwrap_or(0),
                ),
            ))
        })
        .optional()?;
    if let Some((row, last, theirs)) = found {
        return Ok((theirs == ident).then_some((row, last, false)));
    }
    tx.prepare_cached(
        "INSERT INTO flow (fid, proc, peer, lport, rport, opened_ns, last_ns, attribution, \
         sent, recv, wire_sent, wire_recv, packets_sent, packets_recv) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, 0, 0, 0, 0)",
    )?
    .execute(params![
        fid,
        proc,
        peer,
        o.lport,
        o.rport,
        o.opened_ns,
        o.at_ns,
        o.attribution
    ])?;
    Ok(Some((tx.last_insert_rowid(), Counters::default(), true)))
}

fn write_sums(tx: &Transaction<'_>, sums: &Sums, st: &mut IngestStats) -> rusqlite::Result<()> {
    let mut fm = tx.prepare_cached(
        "INSERT INTO flow_min (t, flow, sent, recv, wire_sent, wire_recv, packets_sent, \
         packets_recv) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (t, flow) DO UPDATE SET sent = sent + excluded.sent, \
         recv = recv + excluded.recv, wire_sent = wire_sent + excluded.wire_sent, \
         wire_recv = wire_recv + excluded.wire_recv, \
         packets_sent = packets_sent + excluded.packets_sent, \
         packets_recv = packets_recv + excluded.packets_recv",
    )?;
    for ((t, flow), c) in &sums.flow_min {
        let v = c.sql();
        fm.execute(params![t, flow, v[0], v[1], v[2], v[3], v[4], v[5]])?;
    }
    let mut stmts = Vec::new();
    for table in ["roll_m", "roll_h", "roll_d"] {
        stmts.push(tx.prepare_cached(&format!(
            "INSERT INTO {table} (t, proc, peer, sent, recv, wire_sent, wire_recv, \
             packets_sent, packets_recv, flows) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (t, proc, peer) DO UPDATE SET sent = sent + excluded.sent, \
             recv = recv + excluded.recv, wire_sent = wire_sent + excluded.wire_sent, \
             wire_recv = wire_recv + excluded.wire_recv, \
             packets_sent = packets_sent + excluded.packets_sent, \
             packets_recv = packets_recv + excluded.packets_recv, flows = flows + excluded.flows"
        ))?);
    }
    for ((tier, t, proc, peer), (c, n)) in &sums.roll {
        let v = c.sql();
        if let Some(stmt) = stmts.get_mut(*tier) {
            stmt.execute(params![
                t,
                proc,
                peer,
                v[0],
                v[1],
                v[2],
                v[3],
                v[4],
                v[5],
                i64::try_from(*n).unwrap_or(i64::MAX)
            ])?;
            st.rollup_rows += 1;
        }
    }
    Ok(())
}

/// The cmdline column: a JSON array of strings.
fn json_array_of(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Reads the cmdline column back.
pub(crate) fn json_array(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}
