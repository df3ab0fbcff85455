//! A flow and what the model says about it.

use crate::addr::{Endpoint, Proto, TcpState};
use crate::capture::Capture;
use crate::ids::{FlowId, FlowKey, MonoNs};
use crate::proc::ProcInfo;
use std::borrow::Cow;
use std::sync::Arc;

/// Exact application payload: the sum of what send()/recv() returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Payload {
    /// Payload bytes sent by this host's process.
    pub bytes_sent: u64,
    /// Payload bytes it received.
    pub bytes_recv: u64,
}

impl Payload {
    /// What moved since `earlier` (counters are cumulative).
    pub fn saturating_sub(self, earlier: Payload) -> Payload {
        Payload {
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            bytes_recv: self.bytes_recv.saturating_sub(earlier.bytes_recv),
        }
    }

    /// Both counters added.
    pub fn saturating_add(self, o: Payload) -> Payload {
        Payload {
            bytes_sent: self.bytes_sent.saturating_add(o.bytes_sent),
            bytes_recv: self.bytes_recv.saturating_add(o.bytes_recv),
        }
    }

    /// Both directions.
    pub fn total(self) -> u64 {
        self.bytes_sent.saturating_add(self.bytes_recv)
    }
}

/// L3 bytes and packets (IP and transport headers included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wire {
    /// IP bytes sent.
    pub bytes_sent: u64,
    /// IP bytes received.
    pub bytes_recv: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received.
    pub packets_recv: u64,
}

impl Wire {
    /// What moved since `o` (counters are cumulative).
    pub fn saturating_sub(self, o: Wire) -> Wire {
        Wire {
            bytes_sent: self.bytes_sent.saturating_sub(o.bytes_sent),
            bytes_recv: self.bytes_recv.saturating_sub(o.bytes_recv),
            packets_sent: self.packets_sent.saturating_sub(o.packets_sent),
            packets_recv: self.packets_recv.saturating_sub(o.packets_recv),
        }
    }

    /// Both counters added.
    pub fn saturating_add(self, o: Wire) -> Wire {
        Wire {
            bytes_sent: self.bytes_sent.saturating_add(o.bytes_sent),
            bytes_recv: self.bytes_recv.saturating_add(o.bytes_recv),
            packets_sent: self.packets_sent.saturating_add(o.packets_sent),
            packets_recv: self.packets_recv.saturating_add(o.packets_recv),
        }
    }
}

/// How the owner of a flow was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attribution {
    /// Kernel hooks in the caller's context: exact.
    Ebpf,
    /// The socket predates netwho: found by sock_diag and /proc/*/fd.
    SockDiag,
    /// From `/proc` alone.
    Procfs,
    /// From conntrack.
    Conntrack,
    /// Not known.
    Unknown,
}

impl Attribution {
    /// The one whose [`name`](Attribution::name) this is.
    pub fn from_name(s: &str) -> Option<Attribution> {
        [
            Attribution::Ebpf,
            Attribution::SockDiag,
            Attribution::Procfs,
            Attribution::Conntrack,
            Attribution::Unknown,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }

    /// The name records carry.
    pub fn name(self) -> &'static str {
        match self {
            Attribution::Ebpf => "ebpf",
            Attribution::SockDiag => "sock_diag",
            Attribution::Procfs => "procfs",
            Attribution::Conntrack => "conntrack",
            Attribution::Unknown => "unknown",
        }
    }
}

/// Who initiated the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// This host's process initiated it.
    Outbound,
    /// The remote initiated it.
    Inbound,
    /// Not known.
    Unknown,
}

impl Direction {
    /// The one whose [`name`](Direction::name) this is.
    pub fn from_name(s: &str) -> Option<Direction> {
        [Direction::Outbound, Direction::Inbound, Direction::Unknown]
            .into_iter()
            .find(|v| v.name() == s)
    }

    /// The name records carry.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::Unknown => "unknown",
        }
    }
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// TCP_CLOSE or the release of a datagram socket.
    SocketClosed,
    /// The owning process exited (the socket may live on in another).
    ProcessExit,
    /// A datagram flow saw no traffic for the idle timeout.
    Idle,
}

impl CloseReason {
    /// The one whose [`name`](CloseReason::name) this is.
    pub fn from_name(s: &str) -> Option<CloseReason> {
        [
            CloseReason::SocketClosed,
            CloseReason::ProcessExit,
            CloseReason::Idle,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }

    /// The name records carry.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::SocketClosed => "socket_closed",
            CloseReason::ProcessExit => "process_exit",
            CloseReason::Idle => "idle",
        }
    }
}

/// One (process, socket, remote) and everything known about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// The flow's identity (process, socket, remote).
    pub key: FlowKey,
    /// Its id, stable for its life.
    pub id: FlowId,
    /// Its protocol.
    pub proto: Proto,
    /// This host's end.
    pub local: Endpoint,
    /// The other end.
    pub remote: Endpoint,
    /// An `AF_PACKET` socket (no addresses).
    pub packet: bool,
    /// Its network namespace (inode).
    pub netns: u32,
    /// Who initiated it.
    pub direction: Direction,
    /// TCP: its state.
    pub tcp_state: Option<TcpState>,
    /// When it opened (boot time).
    pub opened: MonoNs,
    /// When it closed.
    pub closed: Option<MonoNs>,
    /// Why it closed.
    pub close_reason: Option<CloseReason>,
    /// comm when the flow opened.
    pub comm: String,
    /// Effective uid of its process.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Its process's cgroup id.
    pub cgroup_id: u64,
    /// The process as it was when the flow opened.
    pub proc: Arc<ProcInfo>,
    /// Payload bytes, exact.
    pub payload: Payload,
    /// IP bytes and packets (its share of its socket's).
    pub wire: Wire,
    /// How its owner was found.
    pub attribution: Attribution,
    /// The process's (sample time, CPU ns) when the flow opened, if it had
    /// been sampled; otherwise its start (CPU 0) is the base.
    pub cpu_base: Option<(MonoNs, u64)>,
    /// Payload bytes kept of it (`record -s SNAPLEN`), shared by the
    /// events that carry the flow.
    pub capture: Option<Arc<Capture>>,
    /// Its remote as its process knew it (names on).
    pub remote_name: Option<Arc<crate::names::RemoteName>>,
    /// Its payload is its own. False for a flow the kernel counted on its
    /// socket (untracked: its uid held its share of the flow map, or the
    /// map was full) together with the socket's other untracked flows:
    /// the flow is there (presence is never lost), its bytes are in the
    /// socket's aggregate flow.
    pub bytes_complete: bool,
}

impl Flow {
    /// An outbound TCP flow of `curl` (pid `tgid`, started by bash, uid
    /// 1000) from 10.231.1.2:40000 to `remote`, opened at boot time 5 s,
    /// with no bytes yet: for tests, benchmarks and documentation.
    pub fn example(tgid: u32, cookie: u64, remote: Endpoint) -> Flow {
        use crate::ids::{ProcKey, SockCookie};
        use crate::proc::{Ancestor, ProcSource};
        let init = Arc::new(Ancestor {
            key: ProcKey::from_start_ticks(1, 1),
            comm: "init".into(),
            exe: "/sbin/init".into(),
            up: None,
        });
        let bash = Arc::new(Ancestor {
            key: ProcKey::from_start_ticks(812, 500),
            comm: "bash".into(),
            exe: "/usr/bin/bash".into(),
            up: Some(init),
        });
        let proc = Arc::new(ProcInfo {
            key: ProcKey::from_start_ticks(tgid, 400),
            ppid: 812,
            parent: Some(ProcKey::from_start_ticks(812, 500)),
            parent_comm: "bash".into(),
            comm: "curl".into(),
            exe: "/usr/bin/curl".into(),
            cmdline: vec!["curl".into(), "-s".into(), "http://x".into()],
            uid: 1000,
            gid: 100,
            cgroup_id: 77,
            source: ProcSource::Exec,
            parents: Some(bash),
            login_uid: Some(1000),
            session: Some(3),
            exe_file: None,
        });
        Flow {
            key: FlowKey {
                proc: proc.key,
                cookie: SockCookie(cookie),
                remote,
            },
            id: FlowId(cookie.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            proto: Proto::Tcp,
            local: Endpoint::new(std::net::IpAddr::from([10, 231, 1, 2]), 40000),
            remote,
            packet: false,
            netns: 4_026_531_840,
            direction: Direction::Outbound,
            tcp_state: Some(TcpState::Established),
            opened: MonoNs(5_000_000_000),
            closed: None,
            close_reason: None,
            comm: "curl".into(),
            uid: 1000,
            gid: 100,
            cgroup_id: 77,
            proc,
            payload: Payload::default(),
            wire: Wire::default(),
            attribution: Attribution::Ebpf,
            cpu_base: Some((MonoNs(4_000_000_000), 1234)),
            bytes_complete: true,
            capture: None,
            remote_name: None,
        }
    }

    /// The address family records report: the remote's (IPv4-mapped is
    /// IPv4), the local one's if there is no remote, or packet.
    pub fn family(&self) -> crate::addr::Family {
        if self.packet {
            crate::addr::Family::Packet
        } else if self.remote.is_unspecified() {
            self.local.family()
        } else {
            self.remote.family()
        }
    }

    /// The state a record shows: the TCP state name, else the protocol.
    pub fn state_name(&self) -> Cow<'static, str> {
        match (self.closed, self.tcp_state) {
            (Some(_), Some(_)) => Cow::Borrowed(TcpState::Close.name()),
            (_, Some(s)) => Cow::Borrowed(s.name()),
            (_, None) => self.proto.name(),
        }
    }
}

/// What the model tells the sinks.
#[derive(Clone, Debug, PartialEq)]
pub enum FlowEvent {
    /// A flow was seen for the first time.
    Opened(Flow),
    /// Its counters changed.
    Updated(Flow),
    /// It ended (final counters).
    Closed(Flow),
}

impl FlowEvent {
    /// The flow, whatever happened to it.
    pub fn flow(&self) -> &Flow {
        match self {
            FlowEvent::Opened(f) | FlowEvent::Updated(f) | FlowEvent::Closed(f) => f,
        }
    }

    /// When it happened: the flow's start for an open, its end for a
    /// close, `now` (when it was noticed) for an update. Outputs order
    /// the events of one turn by it, so that a log reads in the order
    /// things happened, not the order the kernel's reports arrived.
    pub fn time(&self, now: MonoNs) -> MonoNs {
        match self {
            FlowEvent::Opened(f) => f.opened.min(now),
            FlowEvent::Closed(f) => f.closed.unwrap_or(now).min(now),
            FlowEvent::Updated(_) => now,
        }
    }
}

/// Puts the events of one turn (noticed at `now`) in the order they
/// happened ([`FlowEvent::time`]), keeping each flow's own events in the
/// order they came (an update noticed now stays before the close that
/// followed it). Stable; costs nothing when they are in order already.
pub fn order_by_time(events: &mut Vec<FlowEvent>, now: MonoNs) {
    // in order already (the usual case): nothing to do, nothing allocated
    // (a flow's keys below only ever equal its times then)
    if events.windows(2).all(|w| w[0].time(now) <= w[1].time(now)) {
        return;
    }
    let mut last: rustc_hash::FxHashMap<FlowKey, MonoNs> = rustc_hash::FxHashMap::default();
    last.reserve(events.len());
    let mut order: Vec<(MonoNs, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, ev)| {
            let at = last.entry(ev.flow().key).or_insert(MonoNs(0));
            *at = (*at).max(ev.time(now));
            (*at, i)
        })
        .collect();
    // (stable: the index breaks ties) the keys are sorted, not the events:
    // each event is moved twice, not at every step of the sort
    order.sort_unstable();
    let mut slots: Vec<Option<FlowEvent>> = events.drain(..).map(Some).collect();
    events.extend(order.into_iter().filter_map(|(_, i)| slots[i].take()));
}

#[cfg(test)]
mod order_tests {
    use super::*;

    fn ev(kind: u8, cookie: u64, opened: u64, closed: Option<u64>) -> FlowEvent {
        let mut f = Flow::example(7, cookie, Endpoint::new([10, 231, 0, 2].into(), 80));
        f.opened = MonoNs(opened);
        f.closed = closed.map(MonoNs);
        match kind {
            0 => FlowEvent::Opened(f),
            1 => FlowEvent::Updated(f),
            _ => FlowEvent::Closed(f),
        }
    }

    fn names(evs: &[FlowEvent]) -> Vec<(char, u64)> {
        evs.iter()
            .map(|e| {
                let k = match e {
                    FlowEvent::Opened(_) => 'o',
                    FlowEvent::Updated(_) => 'u',
                    FlowEvent::Closed(_) => 'c',
                };
                (k, e.flow().key.cookie.0)
            })
            .collect()
    }

    /// A receiver's open reported before its sender's, an open after an
    /// earlier close: put in the order they happened.
    #[test]
    fn events_of_a_turn_come_in_the_order_they_happened() {
        let mut evs = vec![
            ev(0, 2, 300, None),
            ev(0, 1, 100, None),
            ev(2, 3, 50, Some(200)),
            ev(0, 4, 250, None),
        ];
        order_by_time(&mut evs, MonoNs(1_000));
        assert_eq!(names(&evs), [('o', 1), ('c', 3), ('o', 4), ('o', 2)]);
    }

    /// A flow's own events keep their order: the update noticed now stays
    /// before the close that came after it, though the close is dated
    /// earlier.
    #[test]
    fn a_flows_own_events_keep_their_order() {
        let mut evs = vec![
            ev(0, 1, 100, None),
            ev(1, 1, 100, None),
            ev(2, 1, 100, Some(400)),
            ev(0, 2, 300, None),
        ];
        order_by_time(&mut evs, MonoNs(1_000));
        assert_eq!(names(&evs), [('o', 1), ('o', 2), ('u', 1), ('c', 1)]);
    }
}
