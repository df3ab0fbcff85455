//! Reports from the history database (`netwho report --db`): the same
//! reports as from a recording, over any time range the history holds.
//!
//! Reports by process, user, unit, remote, port and the timeline read
//! rollup rows (the coarsest tier that fits the range and `--interval`);
//! per-connection reports (`top-conns`, `spy`) read the raw flows and their
//! bytes per minute. Each row becomes a flow item for the one
//! [`Reporter`], so columns, filters, `--exclude-local` and limits mean
//! what they mean for a recording. History keeps whole minutes: a window
//! widens to whole minutes (and to whole hours or days where finer tiers
//! were pruned; [`DbReport::covered`] says so).

use super::request::TimeArg;
use super::{ReportConfig, ReportError, ReportKind, Reporter, Totals};
use crate::table::Table;
use netwho_model::record::{Context, Names};
use netwho_model::time::WallClock;
use netwho_model::{
    Attribution, CloseReason, Direction, Endpoint, Flow, FlowEvent, FlowId, FlowKey, MonoNs,
    ProcInfo, ProcKey, ProcSource, Proto, SockCookie,
};
use netwho_store::history::{
    Combo, Counters, Covered, FlowRow, History, HistoryError, PeerDim, ProcDim, Tier,
};
use netwho_store::recording::FlowItem;
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// A report and what it covered.
#[derive(Debug)]
pub struct DbReport {
    /// The rows.
    pub table: Table,
    /// What they add up to.
    pub totals: Totals,
    /// Unix ns of the first and last bytes counted.
    pub first: Option<i128>,
    /// See `first`.
    pub last: Option<i128>,
    /// The range read, Unix seconds (whole minutes or coarser).
    pub covered: Covered,
    /// `"rollups"` or `"raw flows"`.
    pub source: &'static str,
    /// Rows of the database the report is made of (that passed the
    /// window and the filter: a caller who sees only their own traffic is
    /// never told how much everyone else's is).
    pub rows_read: u64,
}

const NS: i128 = 1_000_000_000;

/// `since` and `until` as Unix ns: `+DURATION` counts from the start of
/// the history, `-DURATION` and days back from `now_unix_ns`.
pub fn window(
    db: &History,
    since: Option<TimeArg>,
    until: Option<TimeArg>,
    now_unix_ns: i128,
) -> Result<(Option<i128>, Option<i128>), HistoryError> {
    if since.is_none() && until.is_none() {
        return Ok((None, None));
    }
    let start = db.span()?.map_or(0, |s| i128::from(s.0) * NS);
    let at = |t: TimeArg| t.resolve(start, now_unix_ns);
    Ok((since.map(at), until.map(at)))
}

/// Runs a report over `[since, until)` (Unix ns; the history's span when
/// not given). `local`: this host's addresses (`fd.is_local`).
pub fn report(
    db: &History,
    kind: ReportKind,
    mut cfg: ReportConfig,
    local: HashSet<IpAddr>,
) -> Result<DbReport, ReportError> {
    // the window is clamped to the time the history holds data for: a
    // window of a million years costs what the data costs, no more
    let (lo, hi) = db.span()?.unwrap_or((0, 0));
    let (lo, hi) = (i128::from(lo), i128::from(hi));
    let want_from = cfg.since.map_or(lo, |t| t.div_euclid(NS));
    let want_to = cfg
        .until
        .map_or(hi, |t| t.saturating_add(NS - 1).div_euclid(NS));
    let clamp = |t: i128| i64::try_from(t.clamp(lo, hi)).unwrap_or(0);
    let (from, to) = (clamp(want_from), clamp(want_to));
    let to = to.max(from);
    // the history has done the windowing: the reporter takes every row
    cfg.since = None;
    cfg.until = None;
    let interval_s = cfg
        .interval_ns
        .map(|i| i64::try_from(i / 1_000_000_000).unwrap_or(i64::MAX));
    // rollups are read in the coarsest tier that fits each piece of the
    // window: a timeline's rows are never finer than the tier read
    let plan = match kind {
        ReportKind::TopConns | ReportKind::Spy => None,
        _ => {
            let planned = db.plan(from, to, Tier::coarsest_for(interval_s))?;
            let coarsest = planned.0.parts.iter().map(|p| p.0).max();
            cfg.resolution_ns = coarsest.map(|t| t.secs() as u64 * 1_000_000_000);
            Some(planned)
        }
    };
    let mut rep = Reporter::new(kind, cfg, WallClock::default(), local);
    let mut dims = Dims::new(db);
    let mut rows_read = 0u64;
    let (covered, source) = match plan {
        None => {
            let complete = db.raw_complete_from()?;
            let covered = Covered {
                from: from.max(complete).div_euclid(60) * 60,
                to: (to + 59).div_euclid(60) * 60,
                rounded_to: None,
            };
            db.flows_in(covered.from, covered.to, &mut |row| {
                rows_read += u64::from(rep.counted(&dims.flow_item(&row)?, 1));
                Ok(())
            })?;
            (covered, "raw flows")
        }
        Some((plan, covered)) => {
            db.combos(&plan, &mut |c| {
                rows_read += u64::from(rep.counted(&dims.combo_item(&c)?, c.flows));
                Ok(())
            })?;
            (covered, "rollups")
        }
    };
    let (totals, first, last) = (rep.totals, rep.first, rep.last);
    let mut table = rep.finish()?;
    if kind == ReportKind::TopRemotes {
        with_names(db, &mut table)?;
    }
    Ok(DbReport {
        table,
        totals,
        first,
        last,
        covered,
        source,
        rows_read,
    })
}

/// A NAME column after REMOTE: the address's name as last resolved by
/// the daemon (empty when it has none, or names are off).
fn with_names(db: &History, table: &mut Table) -> Result<(), HistoryError> {
    use super::table::{Cell, ColKind};
    let Some(at) = table.columns.iter().position(|(n, _)| *n == "REMOTE") else {
        return Ok(());
    };
    table.columns.insert(at + 1, ("NAME", ColKind::Text));
    for row in &mut table.rows {
        let name = match row.get(at) {
            Some(Cell::Text(addr)) => db.name_of(addr)?.unwrap_or_default(),
            _ => String::new(),
        };
        row.insert(at + 1, Cell::Text(name));
    }
    Ok(())
}

/// Processes and peers by id, read once each.
struct Dims<'a> {
    db: &'a History,
    procs: FxHashMap<i64, (Arc<ProcInfo>, Context, String)>,
    peers: FxHashMap<i64, PeerDim>,
    /// Unique keys for the items (each is final: the reporter forgets it).
    next: u64,
}

impl<'a> Dims<'a> {
    fn new(db: &'a History) -> Self {
        Dims {
            db,
            procs: FxHashMap::default(),
            peers: FxHashMap::default(),
            next: 0,
        }
    }

    fn proc(&mut self, id: i64) -> Result<(Arc<ProcInfo>, Context, String), HistoryError> {
        if let Some(p) = self.procs.get(&id) {
            return Ok(p.clone());
        }
        let d = self.db.proc_dim(id)?;
        let p = (Arc::new(proc_info(&d)), context(&d), d.comm.clone());
        self.procs.insert(id, p.clone());
        Ok(p)
    }

    fn peer(&mut self, id: i64) -> Result<PeerDim, HistoryError> {
        if let Some(p) = self.peers.get(&id) {
            return Ok(p.clone());
        }
        let p = self.db.peer_dim(id)?;
        self.peers.insert(id, p.clone());
        Ok(p)
    }

    /// A flow for one row: bytes as its payload counters.
    fn flow(
        &mut self,
        proc: i64,
        peer: i64,
        ports: Option<(u16, u16)>,
        c: Counters,
    ) -> Result<(Flow, Context), HistoryError> {
        let (info, ctx, comm) = self.proc(proc)?;
        let peer = self.peer(peer)?;
        let direction = Direction::from_name(peer.direction).unwrap_or(Direction::Unknown);
        // rollups keep the service port only
        let (lport, rport) = ports.unwrap_or(match direction {
            Direction::Inbound => (peer.port, 0),
            _ => (0, peer.port),
        });
        self.next += 1;
        let remote = Endpoint::new(peer.raddr, rport);
        let f = Flow {
            key: FlowKey {
                proc: info.key,
                cookie: SockCookie(self.next),
                remote,
            },
            id: FlowId(self.next),
            proto: peer.proto,
            local: Endpoint::new(peer.laddr, lport),
            remote,
            packet: peer.proto == Proto::Packet,
            netns: peer.netns,
            direction,
            tcp_state: None,
            opened: MonoNs(0),
            closed: None,
            close_reason: None,
            comm,
            uid: info.uid,
            gid: info.gid,
            cgroup_id: 0,
            proc: info,
            payload: c.payload,
            wire: c.wire,
            attribution: Attribution::Unknown,
            cpu_base: None,
            bytes_complete: true,
            capture: None,
            // the name its process resolved, else its server name; what
            // the history does not keep (the "none" mark, ALPN) stays with
            // the recordings
            remote_name: (!peer.name.is_empty()).then(|| {
                use netwho_model::names::{RemoteName, RnameSource};
                let name: Arc<str> = peer.name.as_str().into();
                Arc::new(match peer.name_from {
                    4 => RemoteName {
                        sni: Some(name),
                        ..RemoteName::default()
                    },
                    from => RemoteName {
                        rname: Some(name),
                        source: Some(if from == 2 {
                            RnameSource::Shared
                        } else {
                            RnameSource::Dns
                        }),
                        ..RemoteName::default()
                    },
                })
            }),
        };
        Ok((f, ctx))
    }

    fn combo_item(&mut self, c: &Combo) -> Result<FlowItem, HistoryError> {
        let (mut f, ctx) = self.flow(c.proc, c.peer, None, c.counters)?;
        let at = mono(c.t);
        f.opened = at;
        Ok(FlowItem {
            ev: FlowEvent::Updated(f),
            ctx,
            at,
            is_final: true,
        })
    }

    fn flow_item(&mut self, r: &FlowRow) -> Result<FlowItem, HistoryError> {
        let (mut f, ctx) = self.flow(r.proc, r.peer, Some((r.lport, r.rport)), r.window)?;
        f.id = FlowId(r.fid);
        f.opened = mono_ns(r.opened_ns);
        f.closed = r.closed_ns.map(mono_ns);
        f.close_reason = r.close_reason.as_deref().and_then(CloseReason::from_name);
        f.attribution = Attribution::from_name(&r.attribution).unwrap_or(Attribution::Unknown);
        let at = mono(r.last_t);
        Ok(FlowItem {
            ev: if f.closed.is_some() {
                FlowEvent::Closed(f)
            } else {
                FlowEvent::Updated(f)
            },
            ctx,
            at,
            is_final: true,
        })
    }
}

/// Times as the reporter's clock (its wall clock is the identity).
fn mono(unix_s: i64) -> MonoNs {
    mono_ns(unix_s.saturating_mul(1_000_000_000))
}

fn mono_ns(unix_ns: i64) -> MonoNs {
    MonoNs(u64::try_from(unix_ns).unwrap_or(0))
}

fn proc_info(d: &ProcDim) -> ProcInfo {
    let mut p = ProcInfo::unknown(
        ProcKey::from_start_ticks(d.tgid, d.start_ticks),
        &d.comm,
        d.uid,
        d.gid,
    );
    p.ppid = d.ppid;
    p.parent_comm = d.parent_comm.clone();
    p.exe = d.exe.clone();
    p.cmdline = d.cmdline.clone();
    p.login_uid = d.login_uid;
    p.source = ProcSource::Exec;
    p
}

fn context(d: &ProcDim) -> Context {
    Context {
        names: Arc::new(Names {
            user: d.user.clone(),
            group: d.group.clone(),
            cgroup: d.cgroup.clone(),
            unit: d.unit.clone(),
            container_id: d.container.clone(),
        }),
        exe_sha256: d.exe_sha256.as_deref().map(Arc::from),
        usage: None,
        track: None,
        community_seed: 0,
    }
}
