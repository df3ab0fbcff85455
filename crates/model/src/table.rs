//! `FlowTable::apply(event, now)`: sensor events in, flow events out.

use crate::addr::{Endpoint, Proto, TcpState};
use crate::capture::{Capture, CapturePiece};
use crate::event::{
    CounterHint, ExistingSocket, FlowOpen, Inbound, SensorEvent, SockState, SocketTuple,
};
use crate::flow::{Attribution, CloseReason, Direction, Flow, FlowEvent, Payload, Wire};
use crate::ids::{FlowId, FlowKey, KernelKey, MonoNs, ProcKey, SockCookie, WireKey};
use crate::names::{NameKind, NamePiece, NameStats, NamesConfig, RemoteName, RnameSource};
use crate::proc::{FlowUsage, ProcInfo, ProcTable};
use crate::wire;
use netwho_names::{Hello, NameBook};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Tunables of the model. Times in nanoseconds.
#[derive(Clone, Debug)]
pub struct TableConfig {
    /// Mixed into every flow id (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: [u8; 16],
    /// How long an open may wait for its local address and port (an
    /// outbound TCP connect has no source port yet) or for its open event
    /// (counters can overtake it) before it is announced as it is.
    pub hold_incomplete_ns: u64,
    /// Emit `Updated` for flows whose counters changed, on each `tick`.
    pub emit_updates: bool,
    /// How long an exited process's details are kept.
    pub proc_retention_ns: u64,
    /// Most processes kept (the oldest exited ones go first).
    pub max_procs: usize,
    /// Inbound connections not yet claimed by any process.
    pub max_pending_inbound: usize,
    /// Names of remotes as their processes knew them (off: `None`).
    pub names: Option<NamesConfig>,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            boot_id: [0; 16],
            hold_incomplete_ns: 500_000_000,
            emit_updates: false,
            proc_retention_ns: 120_000_000_000,
            max_procs: 262_144,
            max_pending_inbound: 65_536,
            names: None,
        }
    }
}

/// What the model itself counts (shown in status records).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Flows open now.
    pub flows_open: u64,
    /// Flows opened since the start.
    pub flows_opened: u64,
    /// Flows closed since the start.
    pub flows_closed: u64,
    /// Counters arrived for a flow whose open event never came (a lost
    /// ring-buffer event): the flow is kept, its details are partial.
    pub opens_missing: u64,
    /// Flows whose process was unknown when they opened.
    pub procs_unknown: u64,
    /// Inbound connections closed without any process touching them,
    /// attributed to the listener's creator.
    pub inbound_unclaimed: u64,
    /// Unclaimed inbound connections let go (too many held).
    pub inbound_evicted: u64,
    /// Processes tracked now.
    pub procs_tracked: u64,
    /// Processes let go (over `max_procs`).
    pub procs_evicted: u64,
    /// Flows the kernel counted on their socket, not per flow (their uid
    /// held its share of the flow map, or it was full).
    pub untracked: u64,
    /// What the names book did (names on).
    pub names: NameStats,
    /// Name pieces of sockets no flow was seen on in time, or over the
    /// bound of pieces waiting (names on).
    pub names_orphaned: u64,
}

#[derive(Debug)]
struct Slot {
    flow: Flow,
    /// `Opened` has been emitted.
    announced: bool,
    /// Announce at this time even if still incomplete.
    hold_until: MonoNs,
    /// Made from counters that came before the flow's open: only the open
    /// (or the hold running out, or the close) announces it, so that what
    /// the open knows (who initiated it, its namespace) is in its record.
    placeholder: bool,
}

#[derive(Debug, Default)]
struct SocketWire {
    total: Wire,
    /// Shares of flows that closed while the socket stayed open.
    frozen: Wire,
    /// Payload kept of this (socket, remote): every flow on it shows it.
    capture: Option<Arc<Capture>>,
    /// The ClientHello read of it (names on).
    hello: Option<Arc<Hello>>,
}

/// The flows of one socket: almost always one (kept inline, without an
/// allocation per socket).
type CookieFlows = smallvec::SmallVec<[FlowKey; 1]>;

/// All open flows, the processes they belong to, and the rules that turn
/// kernel events into flow events.
#[derive(Debug)]
pub struct FlowTable {
    cfg: TableConfig,
    flows: FxHashMap<FlowKey, Slot>,
    by_kernel: FxHashMap<KernelKey, FlowKey>,
    by_cookie: FxHashMap<SockCookie, CookieFlows>,
    /// Ordered (a process's flows close in a reproducible order) and a set
    /// (a busy server's flows come and go without scanning the rest).
    by_proc: FxHashMap<ProcKey, BTreeSet<FlowKey>>,
    wire: FxHashMap<WireKey, SocketWire>,
    /// The remotes each socket has wire entries for (to drop them at close).
    wire_remotes: FxHashMap<SockCookie, Vec<Endpoint>>,
    pending_inbound: FxHashMap<SockCookie, Inbound>,
    /// Flows not yet announced, by when they must be.
    held: BTreeSet<(MonoNs, FlowKey)>,
    /// Announced flows whose counters changed since their last `Updated`.
    dirty: BTreeSet<FlowKey>,
    procs: ProcTable,
    stats: ModelStats,
    /// IP bytes attributed to flows, by network namespace, since the start
    /// (coverage: what the interfaces carried that some flow was given).
    wire_by_netns: FxHashMap<u32, u64>,
    /// Names (on when `cfg.names` is set).
    names: Option<NameBook<ProcKey>>,
    /// Name pieces waiting for a flow of their socket, with when they came.
    names_pending: FxHashMap<SockCookie, (MonoNs, Vec<NamePiece>)>,
}

/// Network namespaces whose attributed bytes are kept (namespaces beyond
/// are not counted: coverage is reported for the collector's own).
const NETNS_COUNTED: usize = 1024;

impl FlowTable {
    /// An empty table.
    pub fn new(cfg: TableConfig) -> Self {
        let procs = ProcTable::new(cfg.proc_retention_ns, cfg.max_procs);
        let names = cfg.names.as_ref().map(|n| NameBook::new(n.limits));
        FlowTable {
            cfg,
            flows: FxHashMap::default(),
            by_kernel: FxHashMap::default(),
            by_cookie: FxHashMap::default(),
            by_proc: FxHashMap::default(),
            wire: FxHashMap::default(),
            wire_remotes: FxHashMap::default(),
            pending_inbound: FxHashMap::default(),
            held: BTreeSet::new(),
            dirty: BTreeSet::new(),
            procs,
            stats: ModelStats::default(),
            wire_by_netns: FxHashMap::default(),
            names,
            names_pending: FxHashMap::default(),
        }
    }

    /// IP bytes (headers and payload, both directions) attributed to flows
    /// in network namespace `netns` since the table started.
    pub fn wire_attributed(&self, netns: u32) -> u64 {
        self.wire_by_netns.get(&netns).copied().unwrap_or(0)
    }

    /// The process table.
    pub fn procs(&self) -> &ProcTable {
        &self.procs
    }

    /// Sizes of every internal index (tests check that nothing leaks).
    #[cfg(test)]
    fn index_sizes(&self) -> [usize; 9] {
        [
            self.flows.len(),
            self.by_kernel.len(),
            self.by_cookie.len(),
            self.by_proc.len(),
            self.wire.len(),
            self.wire_remotes.len(),
            self.pending_inbound.len(),
            self.held.len(),
            self.dirty.len(),
        ]
    }

    /// Its counters now.
    pub fn stats(&self) -> ModelStats {
        ModelStats {
            flows_open: self.flows.len() as u64,
            procs_tracked: self.procs.len() as u64,
            procs_evicted: self.procs.evicted,
            names: self.names.as_ref().map(NameBook::stats).unwrap_or_default(),
            ..self.stats
        }
    }

    /// The open flows (announced or not), in no particular order.
    pub fn flows(&self) -> impl Iterator<Item = &Flow> {
        self.flows.values().map(|s| &s.flow)
    }

    /// Apply one sensor event at time `now`, pushing what it means to `out`.
    pub fn apply(&mut self, ev: SensorEvent, now: MonoNs, out: &mut Vec<FlowEvent>) {
        match ev {
            SensorEvent::FlowOpen(o) => self.open(o, now, out),
            SensorEvent::SockState(s) => self.sock_state(&s, out),
            SensorEvent::Inbound(i) => self.inbound(i),
            SensorEvent::SockClosed { cookie, at } => self.sock_closed(cookie, at, now, out),
            SensorEvent::Counters { key, payload, hint } => {
                self.counters(key, payload, hint, now, out)
            }
            SensorEvent::SocketBytes {
                cookie,
                tgid,
                proto,
                remote,
                payload,
            } => self.socket_bytes(cookie, tgid, (proto, remote), payload, now, out),
            SensorEvent::Wire { key, wire, local } => self.wire_update(key, wire, local, out),
            SensorEvent::Captured { key, piece } => self.captured(key, piece),
            SensorEvent::Name(piece) => self.name_piece(*piece, now),
            SensorEvent::FlowIdle { key, at } => {
                if let Some(fk) = self.by_kernel.get(&key).copied() {
                    self.close(fk, CloseReason::Idle, at, out);
                }
                let wk = WireKey {
                    cookie: key.cookie,
                    remote: key.remote,
                };
                if self.flows_on(wk).is_empty() {
                    self.drop_wire(wk);
                }
            }
            SensorEvent::Exec(e) => {
                self.procs.exec(&e);
            }
            SensorEvent::Fork(f) => {
                self.procs.fork(&f);
            }
            SensorEvent::ProcSample { proc, usage, at } => {
                self.procs.sample(proc, usage, at, false);
            }
            SensorEvent::Exit { proc, at, usage } => {
                if let Some(u) = usage {
                    self.procs.sample(proc, u, at, true);
                }
                let fks: Vec<FlowKey> = self
                    .by_proc
                    .get(&proc)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                for fk in fks {
                    self.close(fk, CloseReason::ProcessExit, at, out);
                }
                self.procs.exit(proc, at);
            }
            SensorEvent::ProcSnapshot(p) => {
                self.procs.snapshot(p);
            }
            SensorEvent::Existing(x) => self.existing(x, now, out),
            SensorEvent::CgroupCreated { .. } | SensorEvent::Packet(_) => {}
        }
    }

    /// Time passes: announce flows held too long, emit `Updated` for
    /// changed flows (if configured), forget old processes.
    pub fn tick(&mut self, now: MonoNs, out: &mut Vec<FlowEvent>) {
        while let Some(&(until, fk)) = self.held.first() {
            if until > now {
                break;
            }
            self.announce(fk, out);
        }
        for fk in std::mem::take(&mut self.dirty) {
            if let Some(slot) = self.flows.get(&fk) {
                out.push(FlowEvent::Updated(slot.flow.clone()));
            }
        }
        self.procs.gc(now);
        if !self.names_pending.is_empty() {
            let mut dropped = 0;
            self.names_pending.retain(|_, (at, pieces)| {
                let keep = now.since(*at) < crate::names::PENDING_NS;
                if !keep {
                    dropped += pieces.len() as u64;
                }
                keep
            });
            self.stats.names_orphaned += dropped;
        }
    }

    /// Emit `Opened` for a flow not yet announced.
    fn announce(&mut self, fk: FlowKey, out: &mut Vec<FlowEvent>) {
        if let Some(slot) = self.flows.get_mut(&fk)
            && !slot.announced
        {
            slot.announced = true;
            self.held.remove(&(slot.hold_until, fk));
            out.push(FlowEvent::Opened(slot.flow.clone()));
        }
    }

    /// Counters of an announced flow changed: it owes an `Updated`.
    fn touch(&mut self, fk: FlowKey) {
        if self.cfg.emit_updates && self.flows.get(&fk).is_some_and(|s| s.announced) {
            self.dirty.insert(fk);
        }
    }

    /// Shutting down: announce everything and emit `Updated` with the totals
    /// of every flow still open.
    pub fn drain(&mut self, out: &mut Vec<FlowEvent>) {
        let mut keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        keys.sort_unstable();
        for fk in keys {
            self.announce(fk, out);
            if let Some(slot) = self.flows.get(&fk) {
                out.push(FlowEvent::Updated(slot.flow.clone()));
            }
        }
        self.dirty.clear();
    }

    // ---- opening -------------------------------------------------------

    fn open(&mut self, o: FlowOpen, now: MonoNs, out: &mut Vec<FlowEvent>) {
        self.pending_inbound.remove(&o.key.cookie);
        if let Some(fk) = self.by_kernel.get(&o.key).copied() {
            self.merge_open(fk, o, now, out);
            return;
        }
        let flow = self.flow_from_open(o);
        self.insert(flow, now, out);
    }

    /// The flow an open event describes.
    fn flow_from_open(&mut self, o: FlowOpen) -> Flow {
        let proc = self.proc_for(o.proc, &o.comm, o.uid, o.gid);
        let untracked = o.untracked;
        if untracked {
            self.stats.untracked += 1;
        }
        let mut f = self.new_flow(
            FlowKey {
                proc: o.proc,
                cookie: o.key.cookie,
                remote: o.key.remote,
            },
            &o.tuple,
            o.direction,
            o.at,
            o.comm,
            (o.uid, o.gid, o.cgroup_id),
            proc,
            o.attribution,
        );
        f.bytes_complete = !untracked;
        f
    }

    /// An open for a kernel key we already have: either counters overtook
    /// the open event (the slot is a placeholder), or sock_diag found the
    /// socket first. Fill in what the open knows.
    fn merge_open(&mut self, fk: FlowKey, o: FlowOpen, now: MonoNs, out: &mut Vec<FlowEvent>) {
        let Some(slot) = self.flows.get(&fk) else {
            return;
        };
        if !slot.announced && (slot.placeholder || slot.flow.proto == Proto::Unknown) {
            // placeholder from counters: rebuild it from the open, keep counts
            let Some(old) = self.remove(fk) else {
                return;
            };
            let mut flow = self.flow_from_open(o);
            flow.opened = flow.opened.min(old.flow.opened);
            flow.payload = old.flow.payload;
            self.stats.opens_missing = self.stats.opens_missing.saturating_sub(1);
            self.stats.flows_opened = self.stats.flows_opened.saturating_sub(1);
            self.insert(flow, now, out);
            return;
        }
        let upgrade = self.flows.get(&fk).is_some_and(|s| {
            s.flow.attribution == Attribution::SockDiag && o.attribution == Attribution::Ebpf
        });
        let proc = upgrade.then(|| self.proc_for(o.proc, &o.comm, o.uid, o.gid));
        if let Some(slot) = self.flows.get_mut(&fk) {
            if o.untracked {
                // part of its payload is counted on its socket from now on
                slot.flow.bytes_complete = false;
            }
            if let Some(proc) = proc {
                // sock_diag saw it first, but the kernel says the socket is
                // new: its own view of the caller is the one to keep
                let f = &mut slot.flow;
                f.attribution = Attribution::Ebpf;
                f.proc = proc;
                f.comm = o.comm;
                (f.uid, f.gid, f.cgroup_id) = (o.uid, o.gid, o.cgroup_id);
                if f.direction == Direction::Unknown {
                    f.direction = o.direction;
                }
            }
            complete_local(&mut slot.flow, &o.tuple.local);
        }
        self.maybe_announce(fk, out);
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one constructor for three kinds of open"
    )]
    fn new_flow(
        &self,
        key: FlowKey,
        tuple: &SocketTuple,
        direction: Direction,
        at: MonoNs,
        comm: String,
        (uid, gid, cgroup_id): (u32, u32, u64),
        proc: Arc<ProcInfo>,
        attribution: Attribution,
    ) -> Flow {
        Flow {
            key,
            id: FlowId::derive(&self.cfg.boot_id, &key),
            proto: tuple.proto,
            local: tuple.local,
            remote: key.remote,
            packet: tuple.packet,
            netns: tuple.netns,
            direction,
            tcp_state: tuple.tcp_state,
            opened: at,
            closed: None,
            close_reason: None,
            comm,
            uid,
            gid,
            cgroup_id,
            proc,
            payload: Payload::default(),
            wire: Wire::default(),
            attribution,
            cpu_base: self.procs.usage(key.proc).map(|u| (u.at, u.last.cpu_ns)),
            capture: None,
            remote_name: None,
            bytes_complete: true,
        }
    }

    /// Processes with open flows (the ones worth a resource sample).
    pub fn procs_with_flows(&self) -> impl Iterator<Item = ProcKey> + '_ {
        self.by_proc.keys().copied()
    }

    /// The resource figures of a flow's process: the latest sample, and
    /// its average CPU over the flow's life (from the sample before the
    /// flow opened, or the process's start, to the latest sample).
    pub fn usage_of(&self, f: &Flow) -> Option<FlowUsage> {
        let t = self.procs.usage(f.key.proc)?;
        let (t0, c0) = f.cpu_base.unwrap_or((f.key.proc.start(), 0));
        let dt = t.at.since(t0);
        Some(FlowUsage {
            rss_bytes: t.last.rss_bytes,
            rss_peak_bytes: t.last.rss_peak_bytes,
            cpu_pct: (dt > 0).then(|| 100.0 * t.last.cpu_ns.saturating_sub(c0) as f64 / dt as f64),
            major_faults: t.last.major_faults,
            iowait_ns: t.last.iowait_ns,
        })
    }

    fn proc_for(&mut self, key: ProcKey, comm: &str, uid: u32, gid: u32) -> Arc<ProcInfo> {
        if !self.procs.contains(key) {
            self.stats.procs_unknown += 1;
        }
        self.procs.get_or_unknown(key, comm, uid, gid)
    }

    fn insert(&mut self, flow: Flow, now: MonoNs, out: &mut Vec<FlowEvent>) {
        let fk = flow.key;
        self.by_kernel.insert(fk.kernel(), fk);
        self.by_cookie.entry(fk.cookie).or_default().push(fk);
        self.by_proc.entry(fk.proc).or_default().insert(fk);
        let hold_until = now.add_ns(self.cfg.hold_incomplete_ns);
        self.flows.insert(
            fk,
            Slot {
                flow,
                announced: false,
                hold_until,
                placeholder: false,
            },
        );
        self.stats.flows_opened += 1;
        let wk = WireKey {
            cookie: fk.cookie,
            remote: fk.remote,
        };
        if let Some(sw) = self.wire.get(&wk) {
            if let (Some(c), Some(slot)) = (&sw.capture, self.flows.get_mut(&fk)) {
                slot.flow.capture = Some(Arc::clone(c));
            }
            self.reshare(wk);
        }
        if self.names.is_some() {
            self.name_flow(fk);
            if let Some((_, pieces)) = self.names_pending.remove(&fk.cookie) {
                for p in pieces {
                    self.name_piece(p, now);
                }
            }
        }
        self.maybe_announce(fk, out);
        // held only if it could not be announced yet (most flows are
        // complete from their open on)
        if let Some(slot) = self.flows.get(&fk)
            && !slot.announced
        {
            self.held.insert((hold_until, fk));
        }
    }

    /// Announce a flow once it is complete.
    fn maybe_announce(&mut self, fk: FlowKey, out: &mut Vec<FlowEvent>) {
        if self
            .flows
            .get(&fk)
            .is_some_and(|s| !s.placeholder && is_complete(&s.flow))
        {
            self.announce(fk, out);
        }
    }

    fn existing(&mut self, x: ExistingSocket, now: MonoNs, out: &mut Vec<FlowEvent>) {
        for tgid in x.holders {
            let key = KernelKey {
                tgid,
                cookie: x.cookie,
                remote: x.tuple.remote,
            };
            if let Some(fk) = self.by_kernel.get(&key).copied() {
                // the socket's own events got here first: add what the scan
                // knows (who initiated it, its local address)
                if let Some(slot) = self.flows.get_mut(&fk) {
                    if slot.flow.direction == Direction::Unknown {
                        slot.flow.direction = x.direction;
                    }
                    complete_local(&mut slot.flow, &x.tuple.local);
                }
                self.maybe_announce(fk, out);
                continue;
            }
            let Some(proc) = self.procs.live(tgid).cloned() else {
                // the holder exited between the scans: nobody to attribute to
                self.stats.procs_unknown += 1;
                continue;
            };
            let flow = self.new_flow(
                FlowKey {
                    proc: proc.key,
                    cookie: x.cookie,
                    remote: x.tuple.remote,
                },
                &x.tuple,
                x.direction,
                x.at,
                proc.comm.clone(),
                (proc.uid, proc.gid, proc.cgroup_id),
                proc,
                Attribution::SockDiag,
            );
            self.insert(flow, now, out);
        }
    }

    fn inbound(&mut self, i: Inbound) {
        if self.by_cookie.contains_key(&i.cookie) {
            return; // already claimed by a process
        }
        if self.pending_inbound.len() >= self.cfg.max_pending_inbound {
            self.stats.inbound_evicted += 1;
            return;
        }
        self.pending_inbound.insert(i.cookie, i);
    }

    // ---- updating ------------------------------------------------------

    fn sock_state(&mut self, s: &SockState, out: &mut Vec<FlowEvent>) {
        for fk in self.by_cookie.get(&s.cookie).cloned().unwrap_or_default() {
            if let Some(slot) = self.flows.get_mut(&fk) {
                if slot.flow.proto.is_stream() {
                    slot.flow.tcp_state = Some(s.state);
                }
                complete_local(&mut slot.flow, &s.tuple.local);
            }
            self.maybe_announce(fk, out);
        }
    }

    fn counters(
        &mut self,
        key: KernelKey,
        payload: Payload,
        hint: CounterHint,
        now: MonoNs,
        out: &mut Vec<FlowEvent>,
    ) {
        let fk = match self.by_kernel.get(&key) {
            Some(fk) => *fk,
            None => {
                // the open event was lost (or is still in flight): keep the
                // bytes on a placeholder, held until the open can fill it in
                self.stats.opens_missing += 1;
                // the process holding the tgid, or the last that did (the
                // entry outlived it: its exit came first)
                let proc = match self.procs.latest(key.tgid) {
                    Some(p) => Arc::clone(p),
                    None => self.proc_for(
                        ProcKey::from_start_ticks(key.tgid, 0),
                        "",
                        hint.uid.unwrap_or(u32::MAX),
                        u32::MAX,
                    ),
                };
                let tuple = SocketTuple {
                    proto: hint.proto,
                    local: Endpoint::unspecified(),
                    remote: key.remote,
                    tcp_state: None,
                    netns: 0,
                    packet: false,
                };
                let fk = FlowKey {
                    proc: proc.key,
                    cookie: key.cookie,
                    remote: key.remote,
                };
                let ids = (proc.uid, proc.gid, proc.cgroup_id);
                let flow = self.new_flow(
                    fk,
                    &tuple,
                    Direction::Unknown,
                    now,
                    proc.comm.clone(),
                    ids,
                    proc,
                    Attribution::Ebpf,
                );
                self.insert(flow, now, out);
                if let Some(slot) = self.flows.get_mut(&fk) {
                    slot.placeholder = true;
                }
                fk
            }
        };
        if let Some(slot) = self.flows.get_mut(&fk) {
            let p = &mut slot.flow.payload;
            // counters only grow while the kernel entry lives
            let next = Payload {
                bytes_sent: p.bytes_sent.max(payload.bytes_sent),
                bytes_recv: p.bytes_recv.max(payload.bytes_recv),
            };
            if next != *p {
                *p = next;
                self.touch(fk);
            }
        }
        self.reshare(WireKey {
            cookie: fk.cookie,
            remote: fk.remote,
        });
    }

    /// What a socket's untracked flows moved, counted on the socket (its
    /// close is next). One untracked flow: the bytes are its own, and
    /// exact. More: they go on the socket's aggregate flow (remote
    /// unspecified, `bytes_complete: false`); each untracked flow is there
    /// with what it had of its own.
    fn socket_bytes(
        &mut self,
        cookie: SockCookie,
        tgid: u32,
        (proto, remote): (Proto, Option<Endpoint>),
        payload: Payload,
        now: MonoNs,
        out: &mut Vec<FlowEvent>,
    ) {
        let untracked: Vec<FlowKey> = self
            .by_cookie
            .get(&cookie)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|fk| self.flows.get(fk).is_some_and(|s| !s.flow.bytes_complete))
                    .collect()
            })
            .unwrap_or_default();
        if let [only] = untracked[..]
            && let Some(slot) = self.flows.get_mut(&only)
        {
            let f = &mut slot.flow;
            f.payload = f.payload.saturating_add(payload);
            f.bytes_complete = true;
            self.touch(only);
            return;
        }
        let like = untracked
            .first()
            .and_then(|fk| self.flows.get(fk))
            .map(|s| s.flow.clone());
        let proc = match (self.procs.latest(tgid), &like) {
            (Some(p), _) => Arc::clone(p),
            (None, Some(f)) => Arc::clone(&f.proc),
            (None, None) => {
                self.proc_for(ProcKey::from_start_ticks(tgid, 0), "", u32::MAX, u32::MAX)
            }
        };
        // none of its untracked flows is known (their opens were lost):
        // if they were all one (process, remote), the bytes are that
        // flow's, exactly; else the socket's aggregate
        let one = remote.filter(|_| untracked.is_empty());
        let fk = FlowKey {
            proc: proc.key,
            cookie,
            remote: one.unwrap_or_else(Endpoint::unspecified),
        };
        if let Some(slot) = self.flows.get_mut(&fk) {
            slot.flow.payload = slot.flow.payload.saturating_add(payload);
            self.touch(fk);
            return;
        }
        let tuple = SocketTuple {
            proto: like.as_ref().map_or(proto, |f| f.proto),
            local: like.as_ref().map_or(Endpoint::unspecified(), |f| f.local),
            remote: fk.remote,
            tcp_state: None,
            netns: like.as_ref().map_or(0, |f| f.netns),
            packet: false,
        };
        let ids = (proc.uid, proc.gid, proc.cgroup_id);
        let mut flow = self.new_flow(
            fk,
            &tuple,
            like.as_ref().map_or(Direction::Unknown, |f| f.direction),
            now,
            proc.comm.clone(),
            ids,
            Arc::clone(&proc),
            Attribution::Ebpf,
        );
        flow.payload = payload;
        flow.bytes_complete = one.is_some();
        self.insert(flow, now, out);
        self.announce(fk, out);
    }

    /// The wire entry of `wk`, made (and remembered for the socket's close)
    /// if it is new.
    fn socket_wire(&mut self, wk: WireKey) -> &mut SocketWire {
        self.wire.entry(wk).or_insert_with(|| {
            self.wire_remotes
                .entry(wk.cookie)
                .or_default()
                .push(wk.remote);
            SocketWire::default()
        })
    }

    /// Payload bytes of a (socket, remote). They often come before the
    /// flow (a datagram's packet leaves before its send returns; a server
    /// receives before it reads): kept with the socket's wire entry, which
    /// goes when the socket closes, and given to every flow on it.
    fn captured(&mut self, wk: WireKey, piece: CapturePiece) {
        let cap = self
            .socket_wire(wk)
            .capture
            .get_or_insert_with(Arc::default);
        if !Arc::make_mut(cap).add(piece) {
            return;
        }
        let cap = Arc::clone(cap);
        for fk in self.flows_on(wk) {
            if let Some(slot) = self.flows.get_mut(&fk) {
                slot.flow.capture = Some(Arc::clone(&cap));
                self.touch(fk);
            }
        }
    }

    fn wire_update(&mut self, wk: WireKey, total: Wire, local: Endpoint, out: &mut Vec<FlowEvent>) {
        let fks = self.flows_on(wk);
        if fks.is_empty() && !self.pending_inbound.contains_key(&wk.cookie) {
            // nobody to give them to (yet): totals are cumulative, so the
            // next report carries these bytes too
            return;
        }
        let netns = fks
            .first()
            .and_then(|fk| self.flows.get(fk))
            .map(|s| s.flow.netns)
            .or_else(|| self.pending_inbound.get(&wk.cookie).map(|i| i.tuple.netns));
        let sw = self.socket_wire(wk);
        let before = sw.total.bytes_sent.saturating_add(sw.total.bytes_recv);
        sw.total = total;
        let grew = total
            .bytes_sent
            .saturating_add(total.bytes_recv)
            .saturating_sub(before);
        if let Some(ns) = netns
            && grew > 0
            && (self.wire_by_netns.len() < NETNS_COUNTED || self.wire_by_netns.contains_key(&ns))
        {
            let n = self.wire_by_netns.entry(ns).or_default();
            *n = n.saturating_add(grew);
        }
        for fk in &fks {
            if let Some(slot) = self.flows.get_mut(fk) {
                complete_local(&mut slot.flow, &local);
            }
        }
        self.reshare(wk);
        for fk in fks {
            self.maybe_announce(fk, out);
        }
    }

    /// Open flows on one (socket, remote), oldest first.
    fn flows_on(&self, wk: WireKey) -> Vec<FlowKey> {
        self.on(wk).collect()
    }

    /// [`flows_on`](Self::flows_on), without collecting them.
    fn on(&self, wk: WireKey) -> impl Iterator<Item = FlowKey> + '_ {
        self.by_cookie
            .get(&wk.cookie)
            .into_iter()
            .flatten()
            .filter(move |fk| fk.remote == wk.remote)
            .copied()
    }

    fn reshare(&mut self, wk: WireKey) {
        let Some(sw) = self.wire.get(&wk) else {
            return;
        };
        let remaining = sw.total.saturating_sub(sw.frozen);
        // almost always one flow on a (socket, remote): it has it all
        // (what `wire::share` gives one flow), without the lists
        let only = {
            let mut on = self.on(wk);
            match (on.next(), on.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        };
        if let Some(only) = only {
            if let Some(slot) = self.flows.get_mut(&only)
                && slot.flow.wire != remaining
            {
                slot.flow.wire = remaining;
                self.touch(only);
            }
            return;
        }
        let fks = self.flows_on(wk);
        let weights: Vec<(u64, u64)> = fks
            .iter()
            .map(|fk| {
                self.flows.get(fk).map_or((0, 0), |s| {
                    (s.flow.payload.bytes_sent, s.flow.payload.bytes_recv)
                })
            })
            .collect();
        for (fk, w) in fks.iter().zip(wire::share(remaining, &weights)) {
            if let Some(slot) = self.flows.get_mut(fk)
                && slot.flow.wire != w
            {
                slot.flow.wire = w;
                self.touch(*fk);
            }
        }
    }

    // ---- closing -------------------------------------------------------

    fn sock_closed(
        &mut self,
        cookie: SockCookie,
        at: MonoNs,
        now: MonoNs,
        out: &mut Vec<FlowEvent>,
    ) {
        if let Some(i) = self.pending_inbound.remove(&cookie)
            && !self.by_cookie.contains_key(&cookie)
        {
            self.unclaimed_inbound(i, now, out);
        }
        for fk in self.by_cookie.get(&cookie).cloned().unwrap_or_default() {
            self.close(fk, CloseReason::SocketClosed, at, out);
        }
        for remote in self.wire_remotes.remove(&cookie).unwrap_or_default() {
            self.wire.remove(&WireKey { cookie, remote });
        }
        if let Some(b) = &mut self.names {
            b.socket_closed(cookie.0);
            if let Some((_, p)) = self.names_pending.remove(&cookie) {
                self.stats.names_orphaned += p.len() as u64;
            }
        }
    }

    // ---- names ---------------------------------------------------------

    /// A packet's payload read for names: a DNS answer goes to the book of
    /// the process that received it, a ClientHello to the flows of its
    /// (socket, remote).
    fn name_piece(&mut self, p: NamePiece, now: MonoNs) {
        if self.names.is_none() {
            return;
        }
        match p.kind {
            NameKind::Tls | NameKind::Quic => {
                let Some(book) = &mut self.names else { return };
                let hello = match p.kind {
                    NameKind::Tls => book.tls(p.key.cookie.0, p.offset, &p.data),
                    _ => book.quic(p.key.cookie.0, &p.data),
                };
                if let Some(h) = hello {
                    self.hello(p.key, Arc::new(h));
                }
            }
            NameKind::Dns => {
                // the process that received it: a flow on the socket
                let owner = self
                    .flows_on(p.key)
                    .first()
                    .copied()
                    .or_else(|| {
                        self.by_cookie
                            .get(&p.key.cookie)
                            .and_then(|v| v.first().copied())
                    })
                    .and_then(|fk| self.flows.get(&fk))
                    .map(|s| (s.flow.key.proc, s.flow.uid, s.flow.netns));
                let Some((proc, uid, netns)) = owner else {
                    self.pend(p, now);
                    return;
                };
                let Some(book) = &mut self.names else { return };
                if p.tcp {
                    book.dns_tcp(p.key.cookie.0, proc, uid, netns, p.at.0, p.offset, &p.data);
                } else {
                    book.dns(proc, uid, netns, p.at.0, &p.data, !p.cut);
                }
            }
        }
    }

    /// Keep a piece until a flow of its socket shows up (bounded).
    fn pend(&mut self, p: NamePiece, now: MonoNs) {
        let full = self.names_pending.len() >= crate::names::PENDING_SOCKETS;
        match self.names_pending.get_mut(&p.key.cookie) {
            Some((_, v)) if v.len() < crate::names::PENDING_PIECES => v.push(p),
            None if !full => {
                self.names_pending.insert(p.key.cookie, (now, vec![p]));
            }
            _ => self.stats.names_orphaned += 1,
        }
    }

    /// A ClientHello of a (socket, remote): its flows carry what it asked
    /// for, and so will flows opened on it later.
    fn hello(&mut self, wk: WireKey, h: Arc<Hello>) {
        self.socket_wire(wk).hello = Some(Arc::clone(&h));
        for fk in self.flows_on(wk) {
            if let Some(slot) = self.flows.get_mut(&fk) {
                let mut rn = slot
                    .flow
                    .remote_name
                    .as_deref()
                    .cloned()
                    .unwrap_or_default();
                rn.sni = h.sni.as_deref().map(Arc::from);
                rn.alpn = h.alpn.as_deref().map(Arc::from);
                if rn.source == Some(RnameSource::None) && rn.sni.is_some() {
                    rn.source = None;
                }
                slot.flow.remote_name = Some(Arc::new(rn));
                self.touch(fk);
            }
        }
    }

    /// A new flow's remote by the names its process was told, or marked
    /// as connected without resolving.
    fn name_flow(&mut self, fk: FlowKey) {
        let (Some(book), Some(cfg)) = (&self.names, &self.cfg.names) else {
            return;
        };
        let wk = WireKey {
            cookie: fk.cookie,
            remote: fk.remote,
        };
        let hello = self.wire.get(&wk).and_then(|sw| sw.hello.clone());
        let Some(slot) = self.flows.get_mut(&fk) else {
            return;
        };
        let f = &mut slot.flow;
        let found = book.lookup(fk.proc, f.netns, f.remote.addr, f.opened.0);
        let source = found.as_ref().map(|l| l.source).or_else(|| {
            (hello.as_ref().is_none_or(|h| h.sni.is_none())
                && f.direction == Direction::Outbound
                && f.remote.port != 53
                && !f.packet
                && netwho_names::book::is_unresolved_worthy(f.remote.addr, &cfg.local))
            .then_some(RnameSource::None)
        });
        if found.is_none() && source.is_none() && hello.is_none() {
            return;
        }
        f.remote_name = Some(Arc::new(RemoteName {
            rname: found.map(|l| l.name),
            source,
            sni: hello.as_ref().and_then(|h| h.sni.as_deref().map(Arc::from)),
            alpn: hello
                .as_ref()
                .and_then(|h| h.alpn.as_deref().map(Arc::from)),
        }));
    }

    /// An inbound connection nobody read or wrote: it still happened; it
    /// belongs to whoever created the listener.
    fn unclaimed_inbound(&mut self, i: Inbound, now: MonoNs, out: &mut Vec<FlowEvent>) {
        self.stats.inbound_unclaimed += 1;
        let proc = match self.procs.live(i.owner_tgid) {
            Some(p) => Arc::clone(p),
            None => self.proc_for(
                ProcKey::from_start_ticks(i.owner_tgid, 0),
                "",
                i.owner_uid,
                i.owner_gid,
            ),
        };
        let fk = FlowKey {
            proc: proc.key,
            cookie: i.cookie,
            remote: i.tuple.remote,
        };
        let comm = proc.comm.clone();
        let flow = self.new_flow(
            fk,
            &i.tuple,
            Direction::Inbound,
            i.at,
            comm,
            (i.owner_uid, i.owner_gid, i.owner_cgroup),
            proc,
            Attribution::Ebpf,
        );
        self.insert(flow, now, out);
        self.reshare(WireKey {
            cookie: i.cookie,
            remote: i.tuple.remote,
        });
    }

    fn drop_wire(&mut self, wk: WireKey) {
        if self.wire.remove(&wk).is_some()
            && let Some(v) = self.wire_remotes.get_mut(&wk.cookie)
        {
            v.retain(|r| *r != wk.remote);
            if v.is_empty() {
                self.wire_remotes.remove(&wk.cookie);
            }
        }
    }

    fn remove(&mut self, fk: FlowKey) -> Option<Slot> {
        let slot = self.flows.remove(&fk)?;
        self.held.remove(&(slot.hold_until, fk));
        self.dirty.remove(&fk);
        if self.by_kernel.get(&fk.kernel()) == Some(&fk) {
            self.by_kernel.remove(&fk.kernel());
        }
        remove_from(&mut self.by_cookie, fk.cookie, fk);
        if let Some(set) = self.by_proc.get_mut(&fk.proc) {
            set.remove(&fk);
            if set.is_empty() {
                self.by_proc.remove(&fk.proc);
            }
        }
        Some(slot)
    }

    fn close(&mut self, fk: FlowKey, reason: CloseReason, at: MonoNs, out: &mut Vec<FlowEvent>) {
        let Some(mut slot) = self.remove(fk) else {
            return;
        };
        let wk = WireKey {
            cookie: fk.cookie,
            remote: fk.remote,
        };
        if let Some(sw) = self.wire.get_mut(&wk) {
            sw.frozen = sw.frozen.saturating_add(slot.flow.wire);
        }
        if !slot.announced {
            out.push(FlowEvent::Opened(slot.flow.clone()));
        }
        let f = &mut slot.flow;
        f.closed = Some(at.max(f.opened));
        f.close_reason = Some(reason);
        if reason == CloseReason::SocketClosed && f.proto.is_stream() {
            f.tcp_state = Some(TcpState::Close);
        }
        self.stats.flows_closed += 1;
        out.push(FlowEvent::Closed(slot.flow));
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;

fn remove_from<K: std::hash::Hash + Eq>(map: &mut FxHashMap<K, CookieFlows>, k: K, fk: FlowKey) {
    if let Some(v) = map.get_mut(&k) {
        v.retain(|x| *x != fk);
        if v.is_empty() {
            map.remove(&k);
        }
    }
}

fn has_ports(p: Proto) -> bool {
    matches!(p, Proto::Tcp | Proto::Udp | Proto::UdpLite | Proto::Mptcp)
}

/// A flow is ready to announce when its local side is known.
fn is_complete(f: &Flow) -> bool {
    if f.proto == Proto::Unknown {
        return false;
    }
    if f.packet {
        return true;
    }
    let port_missing = has_ports(f.proto) && f.local.port == 0;
    !(f.local.is_unspecified() || port_missing)
}

/// Fill the unknown parts of a flow's local endpoint.
fn complete_local(f: &mut Flow, local: &Endpoint) {
    if f.local.is_unspecified() && !local.is_unspecified() {
        f.local.addr = local.addr;
    }
    if f.local.port == 0 && local.port != 0 {
        f.local.port = local.port;
    }
}
