//! The sock_diag sensor's memory of the sockets it has seen, and the events
//! each new look at them means. Pure: dumps, destroy notices, owners and
//! the time come in; sensor events go out.
//!
//! A socket is counted from its `tcp_info` counters (payload only):
//! * sent = `bytes_sent − bytes_retrans + notsent_bytes` (what the process
//!   wrote: transmitted once, or still queued; a queued FIN left out),
//! * received = `bytes_received − rqueue` (what its readers took), less
//!   the peer's FIN once a reader took it (the FIN is a sequence number,
//!   not a byte).
//!
//! The kernel reads a socket's state before its counters, without holding
//! it still: a FIN that comes (or is queued) between the two is in the
//! counters though the state does not show it yet, one byte too many. So a
//! look's count in a state before a FIN is *doubtful* by that byte until
//! the next look at the socket settles it (its state, read after those
//! counters, still before the FIN: the count was exact; else the count
//! was exact only if the next one grew past it, the FIN being last).
//! Until then it counts one byte less.
//!
//! Each socket is owned by the first process found holding it (lowest
//! pid); a socket nobody holds yet (an accepted connection still in its
//! listener's queue) is owned once somebody does. A socket that ends
//! before any look found its owner is *missed*: counted with its bytes,
//! never silent. UDP has no counters in sock_diag: its connected sockets
//! are flows without bytes.

use crate::fallback::sock_diag::DiagSocket;
use crate::fallback::{direction_of, flow_kind, listening_ports};
use netwho_model::{
    Attribution, CounterHint, FlowOpen, KernelKey, MonoNs, Payload, ProcKey, Proto, SensorEvent,
    SockCookie, SocketTuple, TcpState,
};
use std::collections::{HashMap, HashSet};

const TCP: u8 = libc::IPPROTO_TCP as u8;

/// Who holds a socket, as `/proc` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The process.
    pub proc: ProcKey,
    /// Its command name.
    pub comm: String,
    /// Its effective uid.
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
}

/// What the tracker lost, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackStats {
    /// Sockets that opened and ended between two looks: nobody to
    /// attribute them to.
    pub missed_sockets: u64,
    /// Their payload, and payload moved on sockets while nobody owned them.
    pub missed_bytes: u64,
    /// Sockets not tracked because `max` were.
    pub over_limit: u64,
    /// Sockets tracked now.
    pub tracked: u64,
}

#[derive(Clone, Debug)]
struct Entry {
    netns: u32,
    /// The look that last saw it.
    seen: u64,
    proto: Proto,
    /// Payload so far, as far as the looks are sure of it.
    total: Payload,
    /// The last look's counts, while a FIN may be in them.
    doubt: Option<Doubt>,
    /// Where the current owner's count starts.
    base: Payload,
    owner: Option<KernelKey>,
    /// What its owner's flow was last told.
    emitted: Payload,
    /// It predates the sensor, or an owner had it: not missed if it ends
    /// unowned.
    excused: bool,
}

/// The sockets seen so far (bounded by `max`).
#[derive(Debug)]
pub struct Tracker {
    socks: HashMap<u64, Entry>,
    look: u64,
    max: usize,
    stats: TrackStats,
}

/// The payload a socket's counters say its processes moved.
pub fn payload_of(s: &DiagSocket) -> Option<Payload> {
    reading_of(s).map(|r| r.payload)
}

/// One look at a socket's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reading {
    /// What they say its processes moved.
    payload: Payload,
    /// `bytes_received` as read.
    raw_recv: u64,
    /// Sent as read, a queued FIN included.
    raw_sent: u64,
    /// The state (read before the counters) says no FIN came from the
    /// peer: one may have come since, and be in `bytes_received`.
    before_peer_fin: bool,
    /// The state says this end queued no FIN: one may have been queued
    /// since, and be in `notsent`.
    before_our_fin: bool,
    /// Something was queued, not yet sent (`notsent` > 0).
    queued: bool,
}

impl Reading {
    /// The peer's FIN may be in the received count.
    fn recv_doubt(&self) -> bool {
        self.before_peer_fin && self.payload.bytes_recv > 0
    }

    /// Our FIN may be in the sent count (only a queued one is counted).
    fn sent_doubt(&self) -> bool {
        self.before_our_fin && self.queued
    }

    /// What it is sure of: a doubtful count less its byte.
    fn sure(&self) -> Payload {
        Payload {
            bytes_sent: self
                .payload
                .bytes_sent
                .saturating_sub(u64::from(self.sent_doubt())),
            bytes_recv: self
                .payload
                .bytes_recv
                .saturating_sub(u64::from(self.recv_doubt())),
        }
    }
}

/// A look's counts that may hold a FIN, until the next look settles them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Doubt {
    reading: Reading,
    /// They mark where the owner's count starts (the look at start, of a
    /// socket older than the sensor): settled, the start moves with them.
    base: bool,
}

impl Doubt {
    /// What the doubtful look counted, now that `next` (a later look, or
    /// the final counters) tells whether a FIN was in it.
    fn settle(&self, next: &Reading) -> Payload {
        let r = &self.reading;
        let mut p = r.sure();
        if r.recv_doubt() && (next.before_peer_fin || next.raw_recv > r.raw_recv) {
            p.bytes_recv = r.payload.bytes_recv;
        }
        if r.sent_doubt() && (next.before_our_fin || next.raw_sent > r.raw_sent) {
            p.bytes_sent = r.payload.bytes_sent;
        }
        p
    }
}

fn reading_of(s: &DiagSocket) -> Option<Reading> {
    let c = s.counters?;
    let state = TcpState::try_from(s.state).ok();
    let mut notsent = u64::from(c.notsent);
    if notsent > 0
        && matches!(
            state,
            Some(TcpState::FinWait1 | TcpState::LastAck | TcpState::Closing)
        )
    {
        notsent -= 1; // the FIN, queued behind the data
    }
    // the peer's FIN was received and read when nothing is left unread in
    // a state after it (CLOSE: after a reset there was none; then the
    // count is one short, never over)
    let fin_taken = c.bytes_received > 0
        && c.rqueue == 0
        && matches!(
            state,
            Some(
                TcpState::CloseWait
                    | TcpState::LastAck
                    | TcpState::Closing
                    | TcpState::TimeWait
                    | TcpState::Close
            )
        );
    let sent = c.bytes_sent.saturating_sub(c.bytes_retrans);
    Some(Reading {
        payload: Payload {
            bytes_sent: sent + notsent,
            bytes_recv: c
                .bytes_received
                .saturating_sub(u64::from(c.rqueue))
                .saturating_sub(u64::from(fin_taken)),
        },
        raw_recv: c.bytes_received,
        raw_sent: sent + u64::from(c.notsent),
        before_peer_fin: matches!(
            state,
            Some(
                TcpState::SynSent
                    | TcpState::SynRecv
                    | TcpState::Established
                    | TcpState::FinWait1
                    | TcpState::FinWait2
            )
        ),
        before_our_fin: matches!(
            state,
            Some(
                TcpState::SynSent | TcpState::SynRecv | TcpState::Established | TcpState::CloseWait
            )
        ),
        queued: c.notsent > 0,
    })
}

fn max_payload(a: Payload, b: Payload) -> Payload {
    Payload {
        bytes_sent: a.bytes_sent.max(b.bytes_sent),
        bytes_recv: a.bytes_recv.max(b.bytes_recv),
    }
}

fn bytes(p: Payload) -> u64 {
    p.bytes_sent + p.bytes_recv
}

/// A socket that can be a flow: TCP with a peer, or connected UDP.
fn is_flow(s: &DiagSocket) -> bool {
    flow_kind(s).is_some()
}

impl Tracker {
    /// Track at most `max` sockets.
    pub fn new(max: usize) -> Self {
        Tracker {
            socks: HashMap::new(),
            look: 0,
            max: max.max(1),
            stats: TrackStats::default(),
        }
    }

    /// Its counts.
    pub fn stats(&self) -> TrackStats {
        TrackStats {
            tracked: self.socks.len() as u64,
            ..self.stats
        }
    }

    /// The processes owning sockets now.
    pub fn owners(&self) -> HashSet<u32> {
        self.socks
            .values()
            .filter_map(|e| e.owner.map(|k| k.tgid))
            .collect()
    }

    /// Whether a look would ask who holds this socket: a flow nobody owns
    /// yet that some process holds (it has an inode).
    pub fn needs_owner(&self, s: &DiagSocket) -> bool {
        s.inode != 0
            && is_flow(s)
            && match self.socks.get(&s.cookie) {
                Some(e) => e.owner.is_none(),
                None => self.socks.len() < self.max,
            }
    }

    /// Start a new look at every namespace.
    pub fn begin(&mut self) {
        self.look += 1;
    }

    /// The sockets of one namespace, as a dump listed them. `startup`: the
    /// first look, whose sockets predate the sensor (counted from now).
    /// `owner_of` names the process holding a socket inode, if any.
    pub fn netns(
        &mut self,
        netns: u32,
        sockets: &[DiagSocket],
        owner_of: &mut dyn FnMut(u32) -> Option<Owner>,
        startup: bool,
        at: MonoNs,
        out: &mut Vec<SensorEvent>,
    ) {
        let listening = listening_ports(sockets);
        for s in sockets {
            let reading = reading_of(s);
            let known = self.socks.contains_key(&s.cookie);
            if !known {
                let Some((proto, _)) = flow_kind(s) else {
                    continue;
                };
                if self.socks.len() >= self.max {
                    self.stats.over_limit += 1;
                    continue;
                }
                self.socks.insert(
                    s.cookie,
                    Entry {
                        netns,
                        seen: self.look,
                        proto,
                        total: Payload::default(),
                        doubt: None,
                        base: Payload::default(),
                        owner: None,
                        emitted: Payload::default(),
                        excused: startup,
                    },
                );
            }
            let Some(e) = self.socks.get_mut(&s.cookie) else {
                continue;
            };
            if s.protocol == TCP && reading.is_none() {
                // a TIME_WAIT minisocket: the full socket is gone
                continue;
            }
            e.seen = self.look;
            if let Some(r) = reading {
                // a socket older than the sensor counts from this look
                let start = startup && !known;
                Self::read(e, r, start);
                if start {
                    e.base = e.total;
                }
            }
            if e.owner.is_none()
                && s.inode != 0
                && let Some((_, tcp_state)) = flow_kind(s)
                && let Some(o) = owner_of(s.inode)
            {
                let key = KernelKey {
                    tgid: o.proc.tgid,
                    cookie: SockCookie(s.cookie),
                    remote: s.remote,
                };
                e.owner = Some(key);
                e.excused = true;
                e.emitted = Payload::default();
                out.push(SensorEvent::FlowOpen(FlowOpen {
                    key,
                    proc: o.proc,
                    at,
                    tuple: SocketTuple {
                        proto: e.proto,
                        local: s.local,
                        remote: s.remote,
                        tcp_state,
                        netns,
                        packet: false,
                    },
                    direction: direction_of(s, &listening),
                    comm: o.comm,
                    uid: o.uid,
                    gid: o.gid,
                    cgroup_id: 0,
                    attribution: Attribution::SockDiag,
                    untracked: false,
                }));
            }
            Self::report(e, out);
        }
    }

    /// A new look's counts: they settle the last look's doubt, and may
    /// leave one of their own. `base`: they mark where the count starts.
    fn read(e: &mut Entry, r: Reading, base: bool) {
        if let Some(d) = e.doubt.take() {
            let settled = d.settle(&r);
            e.total = max_payload(e.total, settled);
            if d.base {
                e.base = max_payload(e.base, settled);
            }
        }
        e.total = max_payload(e.total, r.sure());
        if r.recv_doubt() || r.sent_doubt() {
            e.doubt = Some(Doubt { reading: r, base });
        }
    }

    /// Whether some socket one of `tgids` owns counted a byte its next
    /// look must settle (the caller looks once more before the owners'
    /// flows end). One pass over the sockets for a whole batch of exits.
    pub fn unsettled(&self, tgids: &[u32]) -> bool {
        if tgids.is_empty() {
            return false;
        }
        let gone: HashSet<u32> = tgids.iter().copied().collect();
        self.socks
            .values()
            .any(|e| e.doubt.is_some() && e.owner.is_some_and(|k| gone.contains(&k.tgid)))
    }

    /// Tell the owner's flow what moved since its count started, if more.
    fn report(e: &mut Entry, out: &mut Vec<SensorEvent>) {
        let Some(key) = e.owner else {
            return;
        };
        let now = e.total.saturating_sub(e.base);
        let next = max_payload(now, e.emitted);
        if next != e.emitted {
            e.emitted = next;
            out.push(SensorEvent::Counters {
                key,
                payload: next,
                hint: CounterHint {
                    proto: e.proto,
                    uid: None,
                },
            });
        }
    }

    /// The socket ended: its final counters, then its close.
    fn end(&mut self, cookie: u64, at: MonoNs, out: &mut Vec<SensorEvent>) {
        let Some(mut e) = self.socks.remove(&cookie) else {
            return;
        };
        match e.owner {
            Some(_) => {
                Self::report(&mut e, out);
                out.push(SensorEvent::SockClosed {
                    cookie: SockCookie(cookie),
                    at,
                });
            }
            None => {
                self.stats.missed_sockets += u64::from(!e.excused);
                self.stats.missed_bytes += bytes(e.total.saturating_sub(e.base));
            }
        }
    }

    /// The look is over: sockets the last two looks did not see ended
    /// without a destroy notice (which the kernel sends a moment after the
    /// socket leaves the dumps: one look of grace lets it bring the final
    /// counters). Namespaces whose dump failed are left as they were.
    pub fn end_look(&mut self, failed: &HashSet<u32>, at: MonoNs, out: &mut Vec<SensorEvent>) {
        let gone: Vec<u64> = self
            .socks
            .iter()
            .filter(|(_, e)| e.seen + 1 < self.look && !failed.contains(&e.netns))
            .map(|(c, _)| *c)
            .collect();
        for c in gone {
            self.end(c, at, out);
        }
    }

    /// The kernel destroyed a socket: its final counters came with the
    /// notice. A socket no look saw is missed, with its bytes.
    pub fn destroyed(&mut self, s: &DiagSocket, at: MonoNs, out: &mut Vec<SensorEvent>) {
        let reading = reading_of(s);
        match self.socks.get_mut(&s.cookie) {
            Some(e) => {
                if let Some(r) = reading {
                    Self::read(e, r, false);
                }
                self.end(s.cookie, at, out);
            }
            None => {
                // a socket no look saw: missed if it had a peer (not a
                // listener, not an unconnected datagram socket) or payload
                let moved = reading.map(|r| bytes(r.payload)).unwrap_or(0);
                if moved > 0 || !s.remote.addr.is_unspecified() {
                    self.stats.missed_sockets += 1;
                    self.stats.missed_bytes += moved;
                }
            }
        }
    }

    /// Processes that owned sockets exited: their flows' final counters
    /// (the caller looked first). A socket that lives on (another process
    /// holds it) is owned afresh by whoever holds it at the next look,
    /// counted from here. One pass over the sockets for a whole batch of
    /// exits: a user who holds many sockets and ends many processes costs
    /// sockets + exits, not their product.
    pub fn owners_exited(&mut self, tgids: &[u32], out: &mut Vec<SensorEvent>) {
        if tgids.is_empty() {
            return;
        }
        let gone: HashSet<u32> = tgids.iter().copied().collect();
        for e in self.socks.values_mut() {
            if e.owner.is_some_and(|k| gone.contains(&k.tgid)) {
                Self::report(e, out);
                e.owner = None;
                e.base = e.total;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fallback::sock_diag::TcpCounters;
    use netwho_model::Direction;
    use netwho_model::Endpoint;
    use std::net::{IpAddr, Ipv4Addr};

    const EST: u8 = 1;
    const LISTEN: u8 = 10;
    const CLOSE_WAIT: u8 = 8;

    fn sock(cookie: u64, state: u8, lport: u16, rport: u16, inode: u32) -> DiagSocket {
        let a = |last| IpAddr::V4(Ipv4Addr::new(10, 231, 0, last));
        DiagSocket {
            protocol: TCP,
            state,
            local: Endpoint::new(a(1), lport),
            remote: Endpoint::new(a(2), rport),
            cookie,
            uid: 1000,
            inode,
            taken: None,
            counters: (state != LISTEN).then_some(TcpCounters::default()),
        }
    }

    fn with(mut s: DiagSocket, sent: u64, received: u64, rqueue: u32) -> DiagSocket {
        s.counters = Some(TcpCounters {
            bytes_sent: sent,
            bytes_received: received,
            rqueue,
            ..TcpCounters::default()
        });
        s
    }

    fn owner(tgid: u32) -> Owner {
        Owner {
            proc: ProcKey::from_start_ticks(tgid, 77),
            comm: format!("p{tgid}"),
            uid: 1000,
            gid: 1000,
        }
    }

    /// inode N is held by process N + 1000.
    fn owners(inode: u32) -> Option<Owner> {
        (inode != 0).then(|| owner(inode + 1000))
    }

    fn look(t: &mut Tracker, socks: &[DiagSocket], startup: bool) -> Vec<SensorEvent> {
        let mut out = Vec::new();
        t.begin();
        t.netns(1, socks, &mut owners, startup, MonoNs(5), &mut out);
        t.end_look(&HashSet::new(), MonoNs(6), &mut out);
        out
    }

    fn counters(out: &[SensorEvent]) -> Vec<(u32, u64, u64)> {
        out.iter()
            .filter_map(|e| match e {
                SensorEvent::Counters { key, payload, .. } => {
                    Some((key.tgid, payload.bytes_sent, payload.bytes_recv))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn counters_come_from_tcp_info_without_retransmissions_or_fins() {
        let mut s = with(sock(1, EST, 40000, 80, 1), 1500, 700, 100);
        s.counters.as_mut().unwrap().bytes_retrans = 500;
        s.counters.as_mut().unwrap().notsent = 20;
        let p = payload_of(&s).unwrap();
        assert_eq!((p.bytes_sent, p.bytes_recv), (1020, 600));
        // the peer's FIN: unread (in rqueue), then read
        let unread = with(sock(1, CLOSE_WAIT, 40000, 80, 1), 0, 1001, 1);
        assert_eq!(payload_of(&unread).unwrap().bytes_recv, 1000);
        let read = with(sock(1, CLOSE_WAIT, 40000, 80, 1), 0, 1001, 0);
        assert_eq!(payload_of(&read).unwrap().bytes_recv, 1000);
        // our FIN queued behind data in FIN_WAIT1 is not a byte
        let mut fw1 = with(sock(1, 4, 40000, 80, 1), 100, 0, 0);
        fw1.counters.as_mut().unwrap().notsent = 11;
        assert_eq!(payload_of(&fw1).unwrap().bytes_sent, 110);
        let mut udp = sock(1, EST, 1, 2, 1);
        udp.protocol = 17;
        udp.counters = None;
        assert_eq!(payload_of(&udp), None);
    }

    const FIN_WAIT1: u8 = 4;
    const FIN_WAIT2: u8 = 5;
    const CLOSE: u8 = 7;

    fn with_notsent(mut s: DiagSocket, notsent: u32) -> DiagSocket {
        s.counters.as_mut().unwrap().notsent = notsent;
        s
    }

    fn destroy(t: &mut Tracker, s: DiagSocket) -> Vec<SensorEvent> {
        let mut out = Vec::new();
        t.destroyed(&s, MonoNs(9), &mut out);
        out
    }

    #[test]
    fn a_fin_that_came_while_the_kernel_read_the_socket_is_not_a_byte() {
        // the state was read before the peer's FIN came, the counters
        // after: 1,000 bytes and the FIN, all read
        let mut t = Tracker::new(100);
        let out = look(
            &mut t,
            &[with(sock(1, EST, 40000, 80, 1), 0, 1001, 0)],
            false,
        );
        assert_eq!(
            counters(&out),
            vec![(1001, 0, 1000)],
            "the doubtful byte waits"
        );
        assert!(t.unsettled(&[7, 1001]));
        assert!(!t.unsettled(&[7]) && !t.unsettled(&[]));
        let out = destroy(&mut t, with(sock(1, CLOSE, 40000, 80, 0), 0, 1001, 0));
        assert_eq!(counters(&out), vec![], "the FIN was the byte: nothing more");
        assert!(matches!(out.last(), Some(SensorEvent::SockClosed { .. })));
    }

    #[test]
    fn a_doubtful_count_is_settled_by_the_next_look() {
        let mut t = Tracker::new(100);
        let s = || with(sock(1, EST, 40000, 80, 1), 0, 1000, 0);
        let out = look(&mut t, &[s()], false);
        assert_eq!(counters(&out), vec![(1001, 0, 999)]);
        // still established, read after those counters: no FIN was in them
        let out = look(&mut t, &[s()], false);
        assert_eq!(counters(&out), vec![(1001, 0, 1000)]);
        // grown past it: the FIN (last) was not in it either
        let mut t = Tracker::new(100);
        look(&mut t, &[s()], false);
        let out = destroy(&mut t, with(sock(1, CLOSE, 40000, 80, 0), 0, 1001, 0));
        assert_eq!(counters(&out), vec![(1001, 0, 1000)]);
        // the peer's FIN shown by the state, the same count: it was in it
        let mut t = Tracker::new(100);
        look(
            &mut t,
            &[with(sock(2, EST, 40001, 80, 2), 0, 501, 0)],
            false,
        );
        let out = look(
            &mut t,
            &[with(sock(2, CLOSE_WAIT, 40001, 80, 2), 0, 501, 0)],
            false,
        );
        assert_eq!(counters(&out), vec![], "500, told already");
        assert!(!t.unsettled(&[1002]), "after the FIN nothing is doubtful");
    }

    #[test]
    fn our_fin_queued_while_the_kernel_read_the_socket_is_not_a_byte() {
        // close() queued the FIN behind 10 unsent bytes between the state
        // and the counters: notsent 11, of which 1 is the FIN
        let mut t = Tracker::new(100);
        let out = look(
            &mut t,
            &[with_notsent(
                with(sock(1, EST, 40000, 80, 1), 100, 0, 0),
                11,
            )],
            false,
        );
        assert_eq!(counters(&out), vec![(1001, 110, 0)]);
        let out = look(
            &mut t,
            &[with(sock(1, FIN_WAIT2, 40000, 80, 1), 110, 0, 0)],
            false,
        );
        assert_eq!(counters(&out), vec![], "110, told already");
        // the same first look without a FIN in it: the next shows the FIN
        // queued after it, one more than it counted
        let mut t = Tracker::new(100);
        look(
            &mut t,
            &[with_notsent(
                with(sock(2, EST, 40001, 80, 2), 100, 0, 0),
                11,
            )],
            false,
        );
        let out = look(
            &mut t,
            &[with_notsent(
                with(sock(2, FIN_WAIT1, 40001, 80, 2), 100, 0, 0),
                12,
            )],
            false,
        );
        assert_eq!(counters(&out), vec![(1002, 111, 0)]);
    }

    #[test]
    fn a_doubtful_start_moves_the_start_when_settled() {
        // a socket older than the sensor: 11,111 received before it
        let mut t = Tracker::new(100);
        look(
            &mut t,
            &[with(sock(1, EST, 40000, 80, 1), 0, 11_111, 0)],
            true,
        );
        let out = look(
            &mut t,
            &[with(sock(1, EST, 40000, 80, 1), 0, 11_111 + 22_222, 0)],
            false,
        );
        // the start settled at 11,111; the last byte of now waits
        assert_eq!(counters(&out), vec![(1001, 0, 22_221)]);
        let out = destroy(
            &mut t,
            with(sock(1, CLOSE, 40000, 80, 0), 0, 11_111 + 22_222 + 1, 0),
        );
        assert_eq!(counters(&out), vec![(1001, 0, 22_222)]);
    }

    #[test]
    fn older_sockets_count_from_the_first_look_newer_from_zero() {
        let mut t = Tracker::new(100);
        let out = look(
            &mut t,
            &[with(sock(1, EST, 40000, 80, 1), 500, 300, 0)],
            true,
        );
        assert!(matches!(&out[0], SensorEvent::FlowOpen(o)
            if o.key.tgid == 1001 && o.attribution == Attribution::SockDiag
            && o.direction == Direction::Outbound));
        assert_eq!(counters(&out), vec![], "nothing moved since start");
        let socks = [
            with(sock(1, EST, 40000, 80, 1), 800, 300, 0),
            sock(2, LISTEN, 22, 0, 2),
            with(sock(3, EST, 22, 50000, 3), 10, 20, 0),
        ];
        let out = look(&mut t, &socks, false);
        // the last byte received waits for the next look (see
        // a_doubtful_count_is_settled_by_the_next_look)
        assert_eq!(counters(&out), vec![(1001, 300, 0), (1003, 10, 19)]);
        assert!(out.iter().any(|e| matches!(e, SensorEvent::FlowOpen(o)
            if o.key.tgid == 1003 && o.direction == Direction::Inbound)));
        assert_eq!(counters(&look(&mut t, &socks, false)), vec![(1003, 10, 20)]);
        // nothing new: nothing said
        assert!(look(&mut t, &socks, false).is_empty());
    }

    #[test]
    fn an_accepted_connection_is_owned_once_accepted() {
        let mut t = Tracker::new(100);
        // in the listener's queue: no inode yet, data already waiting
        let out = look(
            &mut t,
            &[with(sock(9, EST, 22, 50000, 0), 0, 40, 40)],
            false,
        );
        assert!(out.is_empty());
        let read = || with(sock(9, EST, 22, 50000, 9), 0, 40, 0);
        let out = look(&mut t, &[read()], false);
        // (its last byte once the next look settles it)
        assert_eq!(counters(&out), vec![(1009, 0, 39)]);
        let out = look(&mut t, &[read()], false);
        assert_eq!(
            counters(&out),
            vec![(1009, 0, 40)],
            "all of it is the reader's"
        );
        assert_eq!(t.stats().missed_sockets, 0);
    }

    #[test]
    fn a_socket_that_ends_gets_its_final_counters_then_its_close() {
        let mut t = Tracker::new(100);
        look(&mut t, &[with(sock(4, EST, 40000, 80, 4), 10, 0, 0)], false);
        let mut out = Vec::new();
        let mut last = with(sock(4, 7, 40000, 80, 0), 5000, 9, 0);
        last.counters.as_mut().unwrap().bytes_received = 10; // FIN read
        t.destroyed(&last, MonoNs(9), &mut out);
        assert_eq!(counters(&out), vec![(1004, 5000, 9)]);
        assert!(
            matches!(out.last(), Some(SensorEvent::SockClosed { cookie, .. }) if cookie.0 == 4)
        );
        // a socket no look saw: missed, counted with its bytes
        t.destroyed(
            &with(sock(5, 7, 40001, 80, 0), 100, 23, 0),
            MonoNs(9),
            &mut out,
        );
        let st = t.stats();
        assert_eq!((st.missed_sockets, st.missed_bytes), (1, 122));
        // gone between looks without a notice: closed with what it had,
        // after one look of grace
        look(&mut t, &[with(sock(6, EST, 40002, 80, 6), 1, 1, 0)], false);
        assert!(look(&mut t, &[], false).is_empty());
        let out = look(&mut t, &[], false);
        assert!(
            matches!(out.last(), Some(SensorEvent::SockClosed { cookie, .. }) if cookie.0 == 6)
        );
        assert_eq!(t.stats().tracked, 0);
    }

    #[test]
    fn an_exited_owner_hands_a_shared_socket_on() {
        let mut t = Tracker::new(100);
        look(
            &mut t,
            &[with(sock(1, EST, 40000, 80, 1), 100, 0, 0)],
            false,
        );
        let mut out = Vec::new();
        t.owners_exited(&[1001], &mut out);
        assert!(t.owners().is_empty());
        // now held by another process (inode 2's holder in this test)
        let mut s = with(sock(1, EST, 40000, 80, 2), 150, 0, 0);
        s.inode = 2;
        let out = look(&mut t, &[s], false);
        assert_eq!(counters(&out), vec![(1002, 50, 0)], "counted from the exit");
    }

    #[test]
    fn a_batch_of_exits_ends_exactly_the_exited_owners_sockets() {
        let mut t = Tracker::new(100);
        let socks: Vec<_> = (1..=4)
            .map(|i| with(sock(i, EST, 40000 + i as u16, 80, i as u32), 10 * i, 0, 0))
            .collect();
        look(&mut t, &socks, false);
        assert_eq!(t.owners(), (1001..=1004).collect());
        // counters moved since the last look: each exited owner's flow is told
        let moved: Vec<_> = (1..=4)
            .map(|i| {
                with(
                    sock(i, EST, 40000 + i as u16, 80, i as u32),
                    10 * i + 5,
                    0,
                    0,
                )
            })
            .collect();
        look(&mut t, &moved, false);
        let mut out = Vec::new();
        t.owners_exited(&[1001, 1003, 1003, 9999], &mut out);
        assert!(counters(&out).is_empty(), "told at the look: {out:?}");
        assert_eq!(t.owners(), [1002, 1004].into_iter().collect());
        t.owners_exited(&[], &mut out);
        assert_eq!(t.owners(), [1002, 1004].into_iter().collect());
        // the others' flows go on counting; the exited ones' sockets wait
        // for a new holder (none in this test)
        let later: Vec<_> = [2u64, 4]
            .into_iter()
            .map(|i| {
                with(
                    sock(i, EST, 40000 + i as u16, 80, i as u32),
                    10 * i + 9,
                    0,
                    0,
                )
            })
            .collect();
        let out = look(&mut t, &later, false);
        let mut got = counters(&out);
        got.sort_unstable();
        assert_eq!(got, vec![(1002, 29, 0), (1004, 49, 0)]);
    }

    #[test]
    fn the_limit_is_counted_and_a_dump_that_failed_closes_nothing() {
        let mut t = Tracker::new(2);
        let socks: Vec<_> = (1..=3)
            .map(|i| with(sock(i, EST, 40000 + i as u16, 80, i as u32), 1, 1, 0))
            .collect();
        look(&mut t, &socks, false);
        assert_eq!((t.stats().tracked, t.stats().over_limit), (2, 1));
        let mut out = Vec::new();
        for _ in 0..3 {
            t.begin();
            t.end_look(&[1].into_iter().collect(), MonoNs(7), &mut out);
        }
        assert!(out.is_empty(), "namespace 1's dump failed: {out:?}");
        // once it works again and they are gone, they close
        look(&mut t, &[], false);
        assert_eq!(t.stats().tracked, 0);
    }
}
