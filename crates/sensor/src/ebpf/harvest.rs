//! Knowing which kernel entries exist, and when to take them out.
//!
//! The kernel keeps counters until userspace deletes them. A socket that
//! closed (TCP_CLOSE, or release of a datagram socket) or a process that
//! exited can take no more payload, but a send or receive already under way
//! on another CPU may still land for a moment. So the harvester waits a
//! grace period after the close, then reads and deletes each entry in one
//! atomic step, delivers the final counters, and only then tells the model
//! the socket or process is gone. Datagram flows that go quiet are taken
//! out after an idle timeout. Everything here talks to the kernel through
//! [`KernelMaps`], which tests fake.

use super::decode;
use netwho_bpf::abi;
use netwho_model::{
    Endpoint, MonoNs, Payload, ProcKey, Proto, SensorEvent, SockCookie, Usage, Wire, WireKey,
};
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::io;

/// Access to the kernel's counter maps.
pub trait KernelMaps {
    /// Read and delete a flow entry.
    fn take_flow(&mut self, k: &abi::FlowKey) -> io::Result<Option<abi::FlowCounters>>;
    /// Read and delete a wire entry.
    fn take_wire(&mut self, k: &abi::WireKey) -> io::Result<Option<abi::WireCounters>>;
    /// Read a wire entry, leaving it.
    fn peek_wire(&mut self, k: &abi::WireKey) -> io::Result<Option<abi::WireCounters>>;
    /// Every flow entry.
    fn all_flows(&mut self, out: &mut Vec<(abi::FlowKey, abi::FlowCounters)>) -> io::Result<()>;
    /// Every wire entry.
    fn all_wire(&mut self, out: &mut Vec<(abi::WireKey, abi::WireCounters)>) -> io::Result<()>;
    /// Closes and exits whose ring record was lost, taken out of the map.
    fn take_lost(&mut self, out: &mut Vec<(abi::LostKey, abi::Lost)>) -> io::Result<()> {
        let _ = out;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
/// What the harvester could not do, and what it found (status records).
pub struct HarvestStats {
    /// Failed map reads/deletes (the entry is kept and retried later).
    pub map_errors: u64,
    /// Flow entries that appeared after their socket was finalized.
    pub late_opens: u64,
    /// Kernel entries found by a scan that no open event announced.
    pub unannounced: u64,
    /// Wire entries of sockets with no flow, reclaimed by a scan.
    pub wire_orphaned: u64,
    /// Closes and exits the ring lost that the kernel kept for us (and we
    /// finished from the maps).
    pub lost_recovered: u64,
    /// TCP bytes the application took by splice or zero-copy (not through
    /// recv), added to their flows at close.
    pub bypass_recv: u64,
}

/// A socket's own bytes: its untracked flows' (and what was read past
/// recv() that no flow got).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketOwn {
    /// The first process with an untracked flow on it.
    pub tgid: u32,
    /// Payload bytes sent.
    pub sent: u64,
    /// Payload bytes received.
    pub recv: u64,
    /// The remote, when every untracked flow was that process's to that
    /// remote (the bytes are then exactly one flow's).
    pub remote: Option<Endpoint>,
}

impl SocketOwn {
    fn new(
        tgid: u32,
        sent: u64,
        recv: u64,
        known: u8,
        many: u8,
        raddr: [u8; 16],
        rport: u16,
    ) -> Self {
        SocketOwn {
            tgid,
            sent,
            recv,
            remote: (known == 1 && many == 0).then(|| Endpoint::from_kernel(raddr, rport)),
        }
    }
}

/// A socket's flow entries: almost always one (inline, no allocation per
/// socket).
type SocketKeys = SmallVec<[abi::FlowKey; 1]>;

/// Final counters the kernel took out of its maps when a socket closed
/// (the close event carries them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finals {
    /// The flows' final counters (key, counters).
    pub flows: SmallVec<[(abi::FlowKey, abi::FlowCounters); 2]>,
    /// Wire keys the kernel looked at (found or not).
    pub wires: SmallVec<[(abi::WireKey, Option<abi::WireCounters>); 2]>,
    /// Payload of the socket's untracked flows (counted on the socket):
    /// the first process that had one, sent, received.
    pub untracked: Option<SocketOwn>,
    /// TCP: bytes the application took past recv() (splice, zero-copy)
    /// that no flow was credited with yet.
    pub recv_left: u64,
    /// The process the socket's own bytes go to: the first with an
    /// untracked flow, else its creator.
    pub tgid: u32,
    /// The socket's protocol.
    pub proto: Proto,
}

impl Finals {
    /// What a close event carries.
    pub fn from_event(ev: &abi::SockClose) -> Self {
        let mut f = Finals::default();
        for ff in ev.flows.iter().filter(|ff| ff.tgid != 0) {
            if ff.found != 0 {
                let key = abi::FlowKey {
                    cookie: ev.cookie,
                    tgid: ff.tgid,
                    rport: ff.rport,
                    _pad: 0,
                    raddr: ff.raddr,
                };
                let c = abi::FlowCounters {
                    bytes_sent: ff.bytes_sent,
                    bytes_recv: ff.bytes_recv,
                    ..abi::FlowCounters::default()
                };
                f.flows.push((key, c));
            }
        }
        for (w, ff) in ev.wires.iter().zip(&ev.flows) {
            if ff.tgid == 0 || (w.found == 0 && w.raddr != ff.raddr) {
                // unused slot, or a remote already covered by an earlier one
                continue;
            }
            let key = wire_key(ev.cookie, w.rport, w.raddr);
            let counters = (w.found != 0).then(|| abi::WireCounters {
                bytes_sent: w.bytes_sent,
                bytes_recv: w.bytes_recv,
                packets_sent: w.packets_sent,
                packets_recv: w.packets_recv,
                laddr: w.laddr,
                lport: w.lport,
                ..abi::WireCounters::default()
            });
            f.wires.push((key, counters));
        }
        if ev.ovf_sent > 0 || ev.ovf_recv > 0 {
            f.untracked = Some(SocketOwn::new(
                ev.ovf_tgid,
                ev.ovf_sent,
                ev.ovf_recv,
                ev.ovf_known,
                ev.ovf_many,
                ev.ovf_raddr,
                ev.ovf_rport,
            ));
        }
        f.recv_left = ev.recv_left;
        f.tgid = ev.ovf_tgid;
        f.proto = socket_proto(ev.protocol, ev.sock_type);
        f
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Socket {
        cookie: u64,
        at: MonoNs,
    },
    Exit {
        proc: ProcKey,
        at: MonoNs,
        usage: Option<Usage>,
    },
}

/// Index of live kernel flow entries, and the queue of finalizations.
#[derive(Debug)]
pub struct Harvester {
    grace_ns: u64,
    idle_ns: u64,
    closed_memory_ns: u64,
    /// Live kernel keys; `true` for stream (TCP) sockets, which never idle.
    keys: FxHashMap<abi::FlowKey, bool>,
    by_cookie: FxHashMap<u64, SocketKeys>,
    /// A busy server has many flows in their grace period: a set, not a
    /// list, so that taking one out does not scan the rest.
    by_tgid: FxHashMap<u32, FxHashSet<abi::FlowKey>>,
    due: VecDeque<(MonoNs, Action)>,
    /// Sockets whose close event arrived, waiting out the grace period,
    /// with the finals the kernel sent.
    closing: FxHashMap<u64, Finals>,
    /// Entries re-created after their socket's close event took them out.
    reopened: FxHashSet<abi::FlowKey>,
    closed: FxHashSet<u64>,
    closed_order: VecDeque<(MonoNs, u64)>,
    /// What the last scan saw of each entry, and when it last changed
    /// (the kernel does not timestamp every packet: activity is a change).
    seen_flows: FxHashMap<abi::FlowKey, ((u64, u64), MonoNs)>,
    seen_wire: FxHashMap<abi::WireKey, (abi::WireCounters, MonoNs)>,
    /// What it could not do, and found.
    pub stats: HarvestStats,
}

fn wire_key(cookie: u64, rport: u16, raddr: [u8; 16]) -> abi::WireKey {
    abi::WireKey {
        cookie,
        rport,
        _pad: [0; 3],
        raddr,
    }
}

fn flow_wire_key(k: &abi::FlowKey) -> abi::WireKey {
    wire_key(k.cookie, k.rport, k.raddr)
}

/// A socket's protocol from its kernel numbers (0, 0: unknown).
fn socket_proto(protocol: u16, sock_type: u8) -> Proto {
    if sock_type == 0 {
        Proto::Unknown
    } else {
        Proto::from_socket(0, u16::from(sock_type), protocol)
    }
}

fn counters_event(k: &abi::FlowKey, c: &abi::FlowCounters) -> SensorEvent {
    SensorEvent::Counters {
        key: decode::kernel_key(k),
        payload: Payload {
            bytes_sent: c.bytes_sent,
            bytes_recv: c.bytes_recv,
        },
        hint: decode::counter_hint(c),
    }
}

/// A wire entry's counters as the model's event.
pub fn wire_event(k: &abi::WireKey, w: &abi::WireCounters) -> SensorEvent {
    SensorEvent::Wire {
        key: WireKey {
            cookie: SockCookie(k.cookie),
            remote: Endpoint::from_kernel(k.raddr, k.rport),
        },
        wire: Wire {
            bytes_sent: w.bytes_sent,
            bytes_recv: w.bytes_recv,
            packets_sent: w.packets_sent,
            packets_recv: w.packets_recv,
        },
        local: Endpoint::from_kernel(w.laddr, w.lport),
    }
}

fn remove_key<K: std::hash::Hash + Eq>(
    map: &mut FxHashMap<K, SocketKeys>,
    k: K,
    key: &abi::FlowKey,
) {
    if let Some(v) = map.get_mut(&k) {
        v.retain(|x| x != key);
        if v.is_empty() {
            map.remove(&k);
        }
    }
}

impl Harvester {
    /// A harvester: counters final `grace_ns` after a close or exit; datagram flows idle after `idle_ns`.
    pub fn new(grace_ns: u64, idle_ns: u64) -> Self {
        Harvester {
            grace_ns,
            idle_ns,
            closed_memory_ns: 60_000_000_000,
            keys: FxHashMap::default(),
            by_cookie: FxHashMap::default(),
            by_tgid: FxHashMap::default(),
            due: VecDeque::new(),
            closing: FxHashMap::default(),
            reopened: FxHashSet::default(),
            closed: FxHashSet::default(),
            closed_order: VecDeque::new(),
            seen_flows: FxHashMap::default(),
            seen_wire: FxHashMap::default(),
            stats: HarvestStats::default(),
        }
    }

    /// Live kernel flow entries we know of.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it tracks no entry.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The socket's close event arrived and its grace period runs.
    pub fn is_closing(&self, cookie: u64) -> bool {
        self.closing.contains_key(&cookie)
    }

    /// When the next finalization is due.
    #[cfg(test)]
    pub fn next_due(&self) -> Option<MonoNs> {
        self.due.front().map(|(t, _)| *t)
    }

    fn index(&mut self, key: abi::FlowKey, stream: bool) -> bool {
        if self.keys.insert(key, stream).is_some() {
            return false;
        }
        self.by_cookie.entry(key.cookie).or_default().push(key);
        self.by_tgid.entry(key.tgid).or_default().insert(key);
        true
    }

    fn unindex(&mut self, key: &abi::FlowKey) {
        if self.keys.remove(key).is_some() {
            remove_key(&mut self.by_cookie, key.cookie, key);
            if let Some(set) = self.by_tgid.get_mut(&key.tgid) {
                set.remove(key);
                if set.is_empty() {
                    self.by_tgid.remove(&key.tgid);
                }
            }
        }
        self.seen_flows.remove(key);
    }

    fn schedule(&mut self, at: MonoNs, action: Action) {
        // kernel times are in order per CPU, not globally: keep the queue sorted
        let due = at.add_ns(self.grace_ns);
        let pos = self.due.partition_point(|(t, _)| *t <= due);
        self.due.insert(pos, (due, action));
    }

    /// The kernel announced a new flow entry.
    pub fn on_open(&mut self, key: abi::FlowKey, stream: bool, now: MonoNs) {
        self.index(key, stream);
        if self.closing.contains_key(&key.cookie) {
            // a straggler after the close event took the entries out
            self.reopened.insert(key);
        } else if self.closed.contains(&key.cookie) {
            // the socket was already finalized: take this entry out too
            self.stats.late_opens += 1;
            self.schedule(
                now,
                Action::Socket {
                    cookie: key.cookie,
                    at: now,
                },
            );
        }
    }

    /// A socket closed; `finals` are the counters its close event carried.
    pub fn on_close(&mut self, cookie: u64, at: MonoNs, finals: Finals) {
        self.closing.insert(cookie, finals);
        self.schedule(at, Action::Socket { cookie, at });
    }

    /// A process's last thread exited: its flows are finished after the grace period.
    pub fn on_exit(&mut self, proc: ProcKey, at: MonoNs, usage: Option<Usage>) {
        self.schedule(at, Action::Exit { proc, at, usage });
    }

    /// Run the finalizations that are due at `now`.
    pub fn run_due(&mut self, now: MonoNs, maps: &mut impl KernelMaps, out: &mut Vec<SensorEvent>) {
        while let Some(&(due, action)) = self.due.front() {
            if due > now {
                break;
            }
            self.due.pop_front();
            match action {
                Action::Socket { cookie, at } => self.finish_socket(cookie, at, now, maps, out),
                Action::Exit { proc, at, usage } => self.finish_process(proc, at, usage, maps, out),
            }
        }
        while let Some(&(t, cookie)) = self.closed_order.front() {
            if now.since(t) < self.closed_memory_ns {
                break;
            }
            self.closed_order.pop_front();
            self.closed.remove(&cookie);
        }
    }

    /// Take one flow entry out; on a map error keep it for a later try.
    fn take_flow(
        &mut self,
        key: &abi::FlowKey,
        maps: &mut impl KernelMaps,
        out: &mut Vec<SensorEvent>,
    ) {
        match maps.take_flow(key) {
            Ok(Some(c)) => out.push(counters_event(key, &c)),
            Ok(None) => {}
            Err(_) => {
                self.stats.map_errors += 1;
                return;
            }
        }
        self.unindex(key);
    }

    fn take_wire(
        &mut self,
        wk: &abi::WireKey,
        maps: &mut impl KernelMaps,
        out: &mut Vec<SensorEvent>,
    ) {
        match maps.take_wire(wk) {
            Ok(Some(w)) => out.push(wire_event(wk, &w)),
            Ok(None) => {}
            Err(_) => self.stats.map_errors += 1,
        }
        self.seen_wire.remove(wk);
    }

    fn finish_socket(
        &mut self,
        cookie: u64,
        at: MonoNs,
        now: MonoNs,
        maps: &mut impl KernelMaps,
        out: &mut Vec<SensorEvent>,
    ) {
        let finals = self.closing.remove(&cookie).unwrap_or_default();
        let keys = self.by_cookie.get(&cookie).cloned().unwrap_or_default();

        // wire first: the model shares it by payload, which follows
        let mut wires: SmallVec<[abi::WireKey; 2]> = keys.iter().map(flow_wire_key).collect();
        wires.sort_by_key(|w| (w.rport, w.raddr));
        wires.dedup();
        for (wk, w) in &finals.wires {
            if let Some(w) = w {
                out.push(wire_event(wk, w));
            }
            self.seen_wire.remove(wk);
        }
        for wk in wires
            .iter()
            .filter(|wk| !finals.wires.iter().any(|(k, _)| k == *wk))
        {
            self.take_wire(wk, maps, out);
        }

        // the kernel's finals, plus anything re-created after them
        let mut last: SmallVec<[(abi::FlowKey, abi::FlowCounters); 2]> = SmallVec::new();
        for (k, c) in &finals.flows {
            let mut c = *c;
            if self.reopened.remove(k) {
                match maps.take_flow(k) {
                    Ok(Some(more)) => {
                        c.bytes_sent += more.bytes_sent;
                        c.bytes_recv += more.bytes_recv;
                    }
                    Ok(None) => {}
                    Err(_) => self.stats.map_errors += 1,
                }
            }
            last.push((*k, c));
            self.unindex(k);
        }
        // flows the event could not carry (more than it holds, or a slot
        // lost to a race): read them here
        for k in &keys {
            if !finals.flows.iter().any(|(f, _)| f == k) {
                self.reopened.remove(k);
                match maps.take_flow(k) {
                    Ok(Some(c)) => last.push((*k, c)),
                    Ok(None) => {}
                    Err(_) => {
                        self.stats.map_errors += 1;
                        continue;
                    }
                }
                self.unindex(k);
            }
        }
        // what the application took past recv() (splice, zero-copy) since
        // the kernel last credited a flow with it: the socket's reader gets
        // it (its biggest, if several), else the socket's untracked bytes
        let mut untracked = finals.untracked;
        if finals.recv_left > 0 {
            self.stats.bypass_recv += finals.recv_left;
            match last.iter_mut().max_by_key(|(_, c)| c.bytes_recv) {
                Some((_, c)) => c.bytes_recv = c.bytes_recv.saturating_add(finals.recv_left),
                None => {
                    let u = untracked.get_or_insert(SocketOwn {
                        tgid: finals.tgid,
                        ..SocketOwn::default()
                    });
                    u.recv = u.recv.saturating_add(finals.recv_left);
                }
            }
        }
        for (k, c) in &last {
            out.push(counters_event(k, c));
        }
        if let Some(u) = untracked {
            out.push(SensorEvent::SocketBytes {
                cookie: SockCookie(cookie),
                tgid: u.tgid,
                proto: finals.proto,
                remote: u.remote,
                payload: Payload {
                    bytes_sent: u.sent,
                    bytes_recv: u.recv,
                },
            });
        }
        out.push(SensorEvent::SockClosed {
            cookie: SockCookie(cookie),
            at,
        });
        if self.closed.insert(cookie) {
            self.closed_order.push_back((now, cookie));
        }
    }

    fn finish_process(
        &mut self,
        proc: ProcKey,
        at: MonoNs,
        usage: Option<Usage>,
        maps: &mut impl KernelMaps,
        out: &mut Vec<SensorEvent>,
    ) {
        let keys: Vec<abi::FlowKey> = self
            .by_tgid
            .get(&proc.tgid)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for k in keys {
            let wk = flow_wire_key(&k);
            // the process's exit closed the socket, and the close event,
            // already here, took the counters out of the kernel's maps:
            // they are final now (the socket's close reports the rest)
            if let Some(f) = self.closing.get_mut(&k.cookie)
                && let Some(i) = f.flows.iter().position(|(fk, _)| *fk == k)
            {
                let (_, c) = f.flows.remove(i);
                if let Some((_, Some(w))) = f.wires.iter().find(|(w, _)| *w == wk) {
                    out.push(wire_event(&wk, w));
                }
                out.push(counters_event(&k, &c));
                self.unindex(&k);
                continue;
            }
            // the socket may live on in another process: read its wire, keep it
            match maps.peek_wire(&wk) {
                Ok(Some(w)) => out.push(wire_event(&wk, &w)),
                Ok(None) => {}
                Err(_) => self.stats.map_errors += 1,
            }
            self.take_flow(&k, maps, out);
        }
        out.push(SensorEvent::Exit { proc, at, usage });
    }

    /// Read every counter: `Counters`/`Wire` events for what changed since
    /// the last scan, idle datagram flows finalized, orphaned wire entries
    /// reclaimed.
    pub fn scan(&mut self, now: MonoNs, maps: &mut impl KernelMaps, out: &mut Vec<SensorEvent>) {
        let mut flows = Vec::new();
        if maps.all_flows(&mut flows).is_err() {
            self.stats.map_errors += 1;
        }
        let mut idle: FxHashMap<abi::WireKey, Vec<abi::FlowKey>> = FxHashMap::default();
        let mut busy: FxHashSet<abi::WireKey> = FxHashSet::default();
        for (k, c) in &flows {
            if !self.keys.contains_key(k) {
                // its open event was lost, or is still in the ring
                self.stats.unannounced += 1;
                self.index(*k, false);
            }
            let pair = (c.bytes_sent, c.bytes_recv);
            let changed = match self.seen_flows.get(k) {
                Some((p, at)) if *p == pair => *at,
                _ => {
                    self.seen_flows.insert(*k, (pair, now));
                    out.push(counters_event(k, c));
                    now
                }
            };
            let stream = self.keys.get(k).copied().unwrap_or(false);
            let wk = flow_wire_key(k);
            if !stream && now.since(changed) >= self.idle_ns {
                idle.entry(wk).or_default().push(*k);
            } else {
                busy.insert(wk);
            }
        }

        let mut wires = Vec::new();
        if maps.all_wire(&mut wires).is_err() {
            self.stats.map_errors += 1;
        }
        for (wk, w) in &wires {
            let has_flows = self
                .by_cookie
                .get(&wk.cookie)
                .is_some_and(|v| v.iter().any(|k| k.rport == wk.rport && k.raddr == wk.raddr));
            if !has_flows && self.closed.contains(&wk.cookie) {
                // the socket is gone and nobody claimed these bytes
                self.drop_orphan(wk, maps);
                continue;
            }
            let changed = match self.seen_wire.get(wk) {
                Some((seen, at)) if seen == w => *at,
                _ => {
                    self.seen_wire.insert(*wk, (*w, now));
                    out.push(wire_event(wk, w));
                    now
                }
            };
            if !has_flows && now.since(changed) >= self.idle_ns {
                self.drop_orphan(wk, maps);
            }
        }

        self.recover_lost(maps);

        for (wk, keys) in idle {
            if busy.contains(&wk) {
                continue; // another process still uses this remote
            }
            self.take_wire(&wk, maps, out);
            for k in &keys {
                self.take_flow(k, maps, out);
                out.push(SensorEvent::FlowIdle {
                    key: decode::kernel_key(k),
                    at: now,
                });
            }
        }
    }

    /// Closes and exits the ring had no room for, which the kernel kept
    /// aside: finished like the events would have been (after the scan
    /// that just indexed every entry, so the socket's flows are known).
    fn recover_lost(&mut self, maps: &mut impl KernelMaps) {
        let mut lost = Vec::new();
        if maps.take_lost(&mut lost).is_err() {
            self.stats.map_errors += 1;
            return;
        }
        for (k, v) in lost {
            self.stats.lost_recovered += 1;
            let at = MonoNs(v.ts_ns);
            match k.kind {
                abi::LOST_CLOSE => {
                    // the socket's own bytes (untracked flows, bytes read
                    // past recv()) came with it
                    let finals = Finals {
                        untracked: (v.sent > 0 || v.recv > 0).then(|| {
                            SocketOwn::new(
                                v.tgid, v.sent, v.recv, v.known, v.many, v.raddr, v.rport,
                            )
                        }),
                        tgid: v.tgid,
                        proto: socket_proto(v.protocol, v.sock_type),
                        ..Finals::default()
                    };
                    self.on_close(k.id, at, finals);
                }
                abi::LOST_EXIT => {
                    let tgid = u32::try_from(k.id).unwrap_or(0);
                    self.on_exit(ProcKey::from_start_ns(tgid, v.start_ns), at, None);
                }
                _ => {}
            }
        }
    }

    /// Wire counters no flow will ever claim: count them and let them go.
    fn drop_orphan(&mut self, wk: &abi::WireKey, maps: &mut impl KernelMaps) {
        if maps.take_wire(wk).is_ok() {
            self.stats.wire_orphaned += 1;
        }
        self.seen_wire.remove(wk);
    }

    /// Read every counter without changing anything (shutdown).
    pub fn read_all(&mut self, maps: &mut impl KernelMaps, out: &mut Vec<SensorEvent>) {
        let mut flows = Vec::new();
        if maps.all_flows(&mut flows).is_err() {
            self.stats.map_errors += 1;
        }
        for (k, c) in &flows {
            out.push(counters_event(k, c));
        }
        let mut wires = Vec::new();
        if maps.all_wire(&mut wires).is_err() {
            self.stats.map_errors += 1;
        }
        for (k, w) in &wires {
            out.push(wire_event(k, w));
        }
    }
}

#[cfg(test)]
#[path = "harvest_tests.rs"]
mod tests;
