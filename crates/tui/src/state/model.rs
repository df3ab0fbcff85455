//! What the view knows: every flow it was told of (open ones, and closed
//! ones for the keep time) and, per view, one row per group (process,
//! program, user, unit, remote, server port) with totals since start and
//! since a reset, the rate over the last interval and a ten-minute history.
//!
//! Pure: batches and the time come in as arguments. Rows are folded as
//! flow counters move, only for flows the filter passes; a new filter
//! folds the rows again from the flows still held (their histories too).

use super::hist::Hist;
use super::{Batch, FlowUpdate, GroupKey, ViewKind};
use netwho_model::UsageTrack;
use netwho_model::record::{Context, Names};
use netwho_model::time::WallClock;
use netwho_model::{CloseReason, Flow, FlowKey, MonoNs, Payload, ProcInfo, ProcKey};
use netwho_query::Filter;
use netwho_sink::status::StatusRecord;
use netwho_sink::subject::FlowSubject;
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// Process exits remembered for a new filter (they are let go after the
/// keep time, with the flows of their processes); past this many, an exit
/// marks only the row it has now.
const EXITS_MAX: usize = 65_536;

/// Members (processes of a user, clients of a port, ...) kept per row;
/// past this, more are counted but not told apart.
const MEMBERS_MAX: usize = 256;

/// Who or what a row is, from the first flow that made it.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The process.
    pub proc: Arc<ProcInfo>,
    /// Its names.
    pub names: Arc<Names>,
    /// The latest comm.
    pub comm: String,
    /// Its uid.
    pub uid: u32,
}

/// One member of a row and its bytes (sent + received).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Its bytes.
    pub bytes: u64,
}

/// One row's figures.
#[derive(Clone, Debug)]
pub struct Agg {
    /// Who or what the row is.
    pub sample: Sample,
    /// Bytes since it appeared.
    pub total: Payload,
    /// Bytes since the totals were reset.
    pub since_reset: Payload,
    interval: Payload,
    /// Bytes per second over the last interval.
    pub sent_rate: f64,
    /// See `sent_rate`.
    pub recv_rate: f64,
    /// Its rates over the last ten minutes.
    pub hist: Hist,
    /// Flows open now.
    pub flows_open: u64,
    /// Flows since it appeared.
    pub flows_total: u64,
    /// Processes (of a user, unit, program, remote) or clients (of a port).
    pub members: FxHashMap<u64, Member>,
    /// More members than are kept.
    pub members_more: bool,
    /// Remote ports seen (remotes view), sorted, at most 16.
    pub ports: Vec<u16>,
    /// Names its processes knew the remote by (remotes view: each flow's
    /// `rname`, else its `sni`), first seen first, at most 4.
    pub rnames: Vec<Arc<str>>,
    /// Its last traffic (boot time).
    pub last_active: MonoNs,
    /// The process exited (processes view), or every process did.
    pub exited: Option<MonoNs>,
    /// The process's resource samples.
    pub track: Option<UsageTrack>,
}

/// Names a remote row keeps.
pub const RNAMES_KEPT: usize = 4;

/// The name a flow's process knew its remote by: the name it resolved,
/// else the server name its ClientHello asked for.
pub fn flow_name(f: &Flow) -> Option<&str> {
    let rn = f.remote_name.as_deref()?;
    rn.rname.as_deref().or(rn.sni.as_deref())
}

impl Agg {
    fn new(sample: Sample, now: MonoNs) -> Self {
        Agg {
            sample,
            total: Payload::default(),
            since_reset: Payload::default(),
            interval: Payload::default(),
            sent_rate: 0.0,
            recv_rate: 0.0,
            rnames: Vec::new(),
            hist: Hist::default(),
            flows_open: 0,
            flows_total: 0,
            members: FxHashMap::default(),
            members_more: false,
            ports: Vec::new(),
            last_active: now,
            exited: None,
            track: None,
        }
    }

    fn add(&mut self, d: Payload, at: MonoNs) {
        for p in [&mut self.total, &mut self.since_reset, &mut self.interval] {
            *p = p.saturating_add(d);
        }
        if d != Payload::default() {
            self.hist.add(at, d.bytes_sent, d.bytes_recv);
        }
    }

    fn member(&mut self, id: u64, name: impl FnOnce() -> String, bytes: u64) {
        let n = self.members.len();
        match self.members.entry(id) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().bytes += bytes,
            std::collections::hash_map::Entry::Vacant(e) => {
                if n < MEMBERS_MAX {
                    e.insert(Member {
                        name: name(),
                        bytes,
                    });
                } else {
                    self.members_more = true;
                }
            }
        }
    }

    /// Bytes sent and received.
    pub fn total_bytes(&self) -> u64 {
        self.total.total()
    }

    /// No open flow: shown dimmed until it is retired.
    pub fn idle(&self) -> bool {
        self.flows_open == 0
    }
}

/// A flow as the view holds it.
#[derive(Clone, Debug)]
pub struct FlowEntry {
    /// The flow.
    pub flow: Flow,
    /// Its names, hash and resources.
    pub ctx: Context,
    /// Its own row (connections view).
    pub agg: Agg,
    /// The counters already folded into rows.
    seen: Payload,
    /// The filter passes it (its bytes are in the rows).
    counted: bool,
    /// Counted as open in the rows.
    open: bool,
    /// Wire bytes (both ways) already added to `wire`.
    wire_seen: u64,
    /// When it closed.
    pub closed_at: Option<MonoNs>,
}

impl FlowEntry {
    /// The filter passes it: its bytes are in the rows.
    pub fn counted(&self) -> bool {
        self.counted
    }
}

/// Everything the view shows, folded from the collector's batches.
#[derive(Debug)]
pub struct Model {
    /// Every flow held.
    pub flows: FxHashMap<FlowKey, FlowEntry>,
    groups: [FxHashMap<GroupKey, Agg>; ViewKind::ALL.len()],
    filter: Option<Filter>,
    /// This host's addresses (`fd.is_local`).
    local: HashSet<IpAddr>,
    /// Closed flows and rows without open flows stay this long.
    keep_ns: u64,
    last_sample: Option<MonoNs>,
    /// When the totals were last reset.
    pub reset_at: Option<MonoNs>,
    /// Now (boot time).
    pub now: MonoNs,
    /// The boot-to-Unix offset.
    pub wall: WallClock,
    /// The latest status record.
    pub status: Option<StatusRecord>,
    /// Reverse names of remote addresses, as they are resolved.
    pub dns: FxHashMap<IpAddr, String>,
    /// Wire bytes of all flows (filter or not) per network namespace.
    wire: FxHashMap<u32, u64>,
    /// When processes exited (for rows a new filter folds again).
    exits: FxHashMap<ProcKey, MonoNs>,
    /// Processes and programs with alerts not acknowledged (`top
    /// --connect` to a daemon with `[alerts]`): their rows are marked.
    pub alerted: Alerted,
}

/// What the daemon's alerts name, for the marker on rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alerted {
    /// Processes (pid and start, as the daemon keys them).
    pub procs: rustc_hash::FxHashSet<ProcKey>,
    /// Programs (executable paths).
    pub programs: rustc_hash::FxHashSet<Arc<str>>,
}

impl Alerted {
    /// Whether `key`'s row is about something that alerted.
    pub fn marks(&self, key: &GroupKey) -> bool {
        match key {
            GroupKey::Proc(p) => self.procs.contains(p),
            GroupKey::Program(p) => self.programs.contains(p),
            _ => false,
        }
    }
}

/// The process a flow belongs to, as a member id.
fn proc_id(k: ProcKey) -> u64 {
    (u64::from(k.tgid) << 40) ^ k.start_ticks
}

fn ip_id(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64) ^ (1 << 63)
        }
    }
}

fn proc_name(f: &Flow) -> String {
    format!("{}[{}]", f.comm, f.key.proc.tgid)
}

impl Model {
    /// An empty model keeping closed rows `keep_ns`, with the bar's filter and this host's addresses.
    pub fn new(keep_ns: u64, filter: Option<Filter>, local: HashSet<IpAddr>) -> Self {
        Model {
            flows: FxHashMap::default(),
            groups: Default::default(),
            filter,
            local,
            keep_ns,
            last_sample: None,
            reset_at: None,
            now: MonoNs(0),
            wall: WallClock::default(),
            status: None,
            dns: FxHashMap::default(),
            wire: FxHashMap::default(),
            exits: FxHashMap::default(),
            alerted: Alerted::default(),
        }
    }

    /// The bar's filter.
    pub fn filter(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }

    /// A view's rows.
    pub fn rows(&self, view: ViewKind) -> &FxHashMap<GroupKey, Agg> {
        &self.groups[view.index()]
    }

    /// One row of a view.
    pub fn row(&self, view: ViewKind, key: &GroupKey) -> Option<&Agg> {
        match key {
            GroupKey::Flow(k) => self.flows.get(k).map(|e| &e.agg),
            k => self.groups[view.index()].get(k),
        }
    }

    /// Fold one batch in, then close the interval at its time (rates).
    pub fn apply(&mut self, b: Batch) {
        if b.restart {
            self.restart();
        }
        self.now = self.now.max(b.now);
        self.wall = b.wall;
        for u in b.flows {
            self.update(u, b.now);
        }
        for (proc, at) in b.exits {
            if let Some(a) = self.groups[ViewKind::Processes.index()].get_mut(&GroupKey::Proc(proc))
            {
                a.exited = Some(at);
            }
            if self.exits.len() < EXITS_MAX {
                self.exits.insert(proc, at);
            }
        }
        if let Some(s) = b.status {
            self.status = Some(s);
        }
        self.sample(b.now);
    }

    fn matches(&self, e: &FlowEntry) -> bool {
        self.filter.as_ref().is_none_or(|f| {
            f.matches(&FlowSubject {
                flow: &e.flow,
                ctx: &e.ctx,
                now: self.now,
                local: &self.local,
            })
        })
    }

    fn update(&mut self, u: FlowUpdate, now: MonoNs) {
        let key = u.flow.key;
        let mut e = match self.flows.remove(&key) {
            Some(mut e) => {
                e.flow = u.flow;
                e.ctx = u.ctx;
                e
            }
            None => {
                let sample = Sample {
                    proc: u.flow.proc.clone(),
                    names: u.ctx.names.clone(),
                    comm: u.flow.comm.clone(),
                    uid: u.flow.uid,
                };
                FlowEntry {
                    agg: Agg::new(sample, now),
                    flow: u.flow,
                    ctx: u.ctx,
                    seen: Payload::default(),
                    counted: false,
                    open: false,
                    wire_seen: 0,
                    closed_at: None,
                }
            }
        };
        if u.closed && e.closed_at.is_none() {
            e.closed_at = Some(now);
        }
        self.fold(&mut e, now);
        self.flows.insert(key, e);
    }

    /// IP bytes of every flow seen in network namespace `netns`.
    pub fn wire_bytes(&self, netns: u32) -> u64 {
        self.wire.get(&netns).copied().unwrap_or(0)
    }

    /// Bring the rows up to this flow's counters and state.
    fn fold(&mut self, e: &mut FlowEntry, now: MonoNs) {
        let w = e
            .flow
            .wire
            .bytes_sent
            .saturating_add(e.flow.wire.bytes_recv);
        *self.wire.entry(e.flow.netns).or_default() += w.saturating_sub(e.wire_seen);
        e.wire_seen = e.wire_seen.max(w);
        let pass = self.matches(e);
        let p = e.flow.payload;
        let d = p.saturating_sub(e.seen);
        let first = !e.counted && pass;
        let open_now = pass && e.closed_at.is_none();
        let opened = open_now && !e.open;
        let closed = e.open && !open_now;
        if pass {
            e.counted = true;
            e.seen = p;
        }
        e.open = open_now;
        // the flow's own row counts whatever the filter says
        let own = p.saturating_sub(e.agg.total);
        e.agg.add(own, now);
        e.agg.sample.comm.clone_from(&e.flow.comm);
        e.agg.flows_open = u64::from(e.closed_at.is_none());
        e.agg.flows_total = 1;
        e.agg.last_active = now;
        if !pass {
            return;
        }
        let exit = e.flow.close_reason == Some(CloseReason::ProcessExit);
        let bytes = d.total();
        for (view, key) in group_keys(&e.flow, &e.ctx.names) {
            let a = self.groups[view.index()]
                .entry(key)
                .or_insert_with(|| Agg::new(e.agg.sample.clone(), now));
            a.add(d, now);
            a.sample.comm.clone_from(&e.flow.comm);
            a.last_active = now;
            if first {
                a.flows_total += 1;
            }
            if opened {
                a.flows_open += 1;
            }
            if closed {
                a.flows_open = a.flows_open.saturating_sub(1);
            }
            if let Some(t) = e.ctx.track {
                a.track = Some(t);
            }
            let f = &e.flow;
            match view {
                ViewKind::Processes => {
                    if exit {
                        a.exited.get_or_insert(now);
                    }
                }
                ViewKind::Ports => {
                    a.member(ip_id(f.remote.addr), || f.remote.addr.to_string(), bytes);
                }
                ViewKind::Programs => {
                    a.member(proc_id(f.key.proc), || proc_name(f), bytes);
                }
                ViewKind::Remotes => {
                    a.member(proc_id(f.key.proc), || proc_name(f), bytes);
                    if let Err(i) = a.ports.binary_search(&f.remote.port)
                        && a.ports.len() < 16
                    {
                        a.ports.insert(i, f.remote.port);
                    }
                    if let Some(n) = flow_name(f)
                        && a.rnames.len() < RNAMES_KEPT
                        && !a.rnames.iter().any(|x| **x == *n)
                    {
                        a.rnames.push(Arc::from(n));
                    }
                }
                ViewKind::Users | ViewKind::Units => {
                    a.member(proc_id(f.key.proc), || proc_name(f), bytes);
                }
                ViewKind::Connections => {}
            }
        }
    }

    /// Close the interval: rates over the time since the last sample;
    /// retire closed flows and idle rows older than the keep time.
    pub fn sample(&mut self, now: MonoNs) {
        let secs = self.last_sample.map_or(0.0, |l| now.since(l) as f64 / 1e9);
        if self.last_sample.is_some_and(|l| now <= l) {
            return;
        }
        self.last_sample = Some(now);
        let keep = self.keep_ns;
        let rate = |b: u64| if secs > 0.0 { b as f64 / secs } else { 0.0 };
        let roll = |a: &mut Agg| {
            a.sent_rate = rate(a.interval.bytes_sent);
            a.recv_rate = rate(a.interval.bytes_recv);
            a.interval = Payload::default();
        };
        self.flows
            .retain(|_, e| e.closed_at.is_none_or(|c| now.since(c) < keep));
        self.exits.retain(|_, at| now.since(*at) < keep);
        for e in self.flows.values_mut() {
            roll(&mut e.agg);
        }
        for g in &mut self.groups {
            g.retain(|_, a| a.flows_open > 0 || now.since(a.last_active) < keep);
            for a in g.values_mut() {
                roll(a);
            }
        }
    }

    /// Forget every flow and row (a replay went back in time).
    fn restart(&mut self) {
        let filter = self.filter.take();
        let local = std::mem::take(&mut self.local);
        let dns = std::mem::take(&mut self.dns);
        *self = Model::new(self.keep_ns, filter, local);
        self.dns = dns;
    }

    /// Start the "since reset" totals from zero.
    pub fn reset(&mut self, now: MonoNs) {
        self.reset_at = Some(now);
        for a in self.groups.iter_mut().flat_map(|g| g.values_mut()) {
            a.since_reset = Payload::default();
        }
        for e in self.flows.values_mut() {
            e.agg.since_reset = Payload::default();
        }
    }

    /// Show only flows `filter` passes (None: all). The rows are folded
    /// again from the flows held now: totals of flows already retired are
    /// not in them.
    pub fn set_filter(&mut self, filter: Option<Filter>) {
        self.filter = filter;
        for g in &mut self.groups {
            g.clear();
        }
        let now = self.now;
        let mut flows = std::mem::take(&mut self.flows);
        for e in flows.values_mut() {
            let saved = (
                e.agg.hist.clone(),
                e.agg.since_reset,
                e.agg.sent_rate,
                e.agg.recv_rate,
                e.agg.last_active,
            );
            e.seen = Payload::default();
            e.counted = false;
            e.open = false;
            e.agg.total = Payload::default();
            self.fold(e, now);
            // the flow's own row is what it was
            (
                e.agg.hist,
                e.agg.since_reset,
                e.agg.sent_rate,
                e.agg.recv_rate,
                e.agg.last_active,
            ) = saved;
            e.agg.interval = Payload::default();
        }
        // histories, rates, "since reset" and the last traffic: the
        // members' own (a row is not kept longer for being folded again);
        // exits as they happened
        for a in self.groups.iter_mut().flat_map(|g| g.values_mut()) {
            a.hist = Hist::default();
            a.since_reset = Payload::default();
            a.interval = Payload::default();
            (a.sent_rate, a.recv_rate) = (0.0, 0.0);
            a.last_active = MonoNs(0);
            a.exited = None;
        }
        for e in flows.values().filter(|e| e.counted) {
            for (view, key) in group_keys(&e.flow, &e.ctx.names) {
                if let Some(a) = self.groups[view.index()].get_mut(&key) {
                    a.hist.merge(&e.agg.hist, now);
                    a.sent_rate += e.agg.sent_rate;
                    a.recv_rate += e.agg.recv_rate;
                    a.since_reset = a.since_reset.saturating_add(e.agg.since_reset);
                    a.last_active = a.last_active.max(e.agg.last_active);
                    if view == ViewKind::Processes
                        && e.flow.close_reason == Some(CloseReason::ProcessExit)
                    {
                        a.exited = a.exited.or(e.closed_at);
                    }
                }
            }
        }
        for (k, a) in &mut self.groups[ViewKind::Processes.index()] {
            if let GroupKey::Proc(p) = k
                && let Some(at) = self.exits.get(p)
            {
                a.exited = Some(*at);
            }
        }
        self.flows = flows;
    }

    /// Flows of one row, largest first.
    pub fn flows_of(&self, view: ViewKind, key: &GroupKey) -> Vec<&FlowEntry> {
        let mut v: Vec<&FlowEntry> = self
            .flows
            .values()
            .filter(|e| match key {
                GroupKey::Flow(k) => e.flow.key == *k,
                _ => e.counted && group_key(view, &e.flow, &e.ctx.names).as_ref() == Some(key),
            })
            .collect();
        v.sort_by(|a, b| {
            b.agg
                .total_bytes()
                .cmp(&a.agg.total_bytes())
                .then(a.flow.key.cmp(&b.flow.key))
        });
        v
    }

    /// Processes whose parent is `parent`, largest first.
    pub fn children_of(&self, parent: ProcKey) -> Vec<(ProcKey, &Agg)> {
        let mut v: Vec<(ProcKey, &Agg)> = self.groups[ViewKind::Processes.index()]
            .iter()
            .filter_map(|(k, a)| match k {
                GroupKey::Proc(p) if a.sample.proc.parent == Some(parent) => Some((*p, a)),
                _ => None,
            })
            .collect();
        v.sort_by(|a, b| {
            b.1.total_bytes()
                .cmp(&a.1.total_bytes())
                .then(a.0.cmp(&b.0))
        });
        v
    }
}

/// The row of `view` a flow counts in (a server port only for flows a
/// remote opened; connections are the flows themselves).
pub fn group_key(view: ViewKind, f: &Flow, names: &Names) -> Option<GroupKey> {
    Some(match view {
        ViewKind::Processes => GroupKey::Proc(f.key.proc),
        ViewKind::Programs => GroupKey::Program(Arc::from(if f.proc.exe.is_empty() {
            f.comm.as_str()
        } else {
            f.proc.exe.as_str()
        })),
        ViewKind::Users => GroupKey::User(f.uid),
        ViewKind::Units => GroupKey::Unit(Arc::from(unit_name(names))),
        ViewKind::Remotes => GroupKey::Remote(netwho_query::canonical(f.remote.addr)),
        ViewKind::Ports if f.direction == netwho_model::Direction::Inbound => {
            GroupKey::Port(f.proto, f.local.port)
        }
        ViewKind::Ports | ViewKind::Connections => return None,
    })
}

/// The rows a flow counts in: one per view that groups flows.
pub fn group_keys<'a>(
    f: &'a Flow,
    names: &'a Names,
) -> impl Iterator<Item = (ViewKind, GroupKey)> + 'a {
    ViewKind::ALL
        .into_iter()
        .filter_map(move |v| group_key(v, f, names).map(|k| (v, k)))
}

/// A unit, else a container, else the cgroup path.
pub fn unit_name(n: &Names) -> &str {
    if !n.unit.is_empty() {
        &n.unit
    } else if !n.container_id.is_empty() {
        &n.container_id
    } else if !n.cgroup.is_empty() {
        &n.cgroup
    } else {
        "-"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A storm of exits (thousands of processes with flows ending in one
    /// interval: a fork bomb) is remembered up to its bound, no further:
    /// the view's memory does not grow with it.
    #[test]
    fn exits_are_remembered_up_to_their_bound() {
        let mut m = Model::new(60_000_000_000, None, HashSet::new());
        let storm = |from: u32| {
            (from..from + 40_000)
                .map(|pid| (ProcKey::from_start_ticks(pid, 1), MonoNs(5)))
                .collect()
        };
        for (i, from) in [1u32, 40_001].into_iter().enumerate() {
            m.apply(Batch {
                now: MonoNs(10 + i as u64),
                wall: WallClock::default(),
                flows: Vec::new(),
                exits: storm(from),
                status: None,
                restart: false,
            });
        }
        assert_eq!(m.exits.len(), EXITS_MAX);
        // the first ones are kept (the bound refuses, it does not churn)
        assert!(m.exits.contains_key(&ProcKey::from_start_ticks(1, 1)));
    }
}
