//! FlowTable rules, driven by hand-written sensor events and a fake clock.

use super::*;
use crate::capture::{CaptureDir, CapturePiece};
use crate::event::ProcExec;
use crate::proc::ProcSource;
use std::net::{IpAddr, Ipv4Addr};

const MS: u64 = 1_000_000;

fn ep(last: u8, port: u16) -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 231, 0, last)), port)
}

fn proc_key(tgid: u32, start: u64) -> ProcKey {
    ProcKey::from_start_ticks(tgid, start)
}

fn tuple(proto: Proto, local: Endpoint, remote: Endpoint) -> SocketTuple {
    SocketTuple {
        proto,
        local,
        remote,
        tcp_state: if proto == Proto::Tcp {
            Some(TcpState::Established)
        } else {
            None
        },
        netns: 4026531840,
        packet: false,
    }
}

fn open(p: ProcKey, cookie: u64, t: SocketTuple, dir: Direction, at: u64) -> SensorEvent {
    SensorEvent::FlowOpen(FlowOpen {
        key: KernelKey {
            tgid: p.tgid,
            cookie: SockCookie(cookie),
            remote: t.remote,
        },
        proc: p,
        at: MonoNs(at),
        tuple: t,
        direction: dir,
        comm: format!("p{}", p.tgid),
        uid: 1000,
        gid: 1000,
        cgroup_id: 1,
        attribution: Attribution::Ebpf,
        untracked: false,
    })
}

/// An open the kernel counted on its socket (its uid held its share).
fn untracked_open(p: ProcKey, cookie: u64, t: SocketTuple, at: u64) -> SensorEvent {
    let SensorEvent::FlowOpen(mut o) = open(p, cookie, t, Direction::Outbound, at) else {
        unreachable!("open makes FlowOpen")
    };
    o.untracked = true;
    SensorEvent::FlowOpen(o)
}

fn counters(tgid: u32, cookie: u64, remote: Endpoint, sent: u64, recv: u64) -> SensorEvent {
    SensorEvent::Counters {
        key: KernelKey {
            tgid,
            cookie: SockCookie(cookie),
            remote,
        },
        payload: Payload {
            bytes_sent: sent,
            bytes_recv: recv,
        },
        hint: CounterHint::default(),
    }
}

fn wire(cookie: u64, remote: Endpoint, local: Endpoint, sent: u64, recv: u64) -> SensorEvent {
    SensorEvent::Wire {
        key: WireKey {
            cookie: SockCookie(cookie),
            remote,
        },
        wire: Wire {
            bytes_sent: sent,
            bytes_recv: recv,
            packets_sent: sent / 100,
            packets_recv: recv / 100,
        },
        local,
    }
}

fn exec(p: ProcKey, comm: &str) -> SensorEvent {
    SensorEvent::Exec(ProcExec {
        proc: p,
        ppid: 1,
        parent: None,
        comm: comm.into(),
        exe: format!("/usr/bin/{comm}"),
        cmdline: vec![comm.into()],
        uid: 1000,
        gid: 1000,
        cgroup_id: 1,
        at: MonoNs(0),
        args_truncated: false,
        login_uid: None,
        session: None,
        exe_file: None,
        exe_ino: 0,
    })
}

/// A table and a fake clock, collecting what the table emits.
struct Harness {
    t: FlowTable,
    now: u64,
    out: Vec<FlowEvent>,
}

impl Harness {
    fn new() -> Self {
        Self::with(TableConfig::default())
    }

    fn with(cfg: TableConfig) -> Self {
        Harness {
            t: FlowTable::new(cfg),
            now: 1_000 * MS,
            out: Vec::new(),
        }
    }

    fn at(&mut self, ms: u64) -> &mut Self {
        self.now = ms * MS;
        self
    }

    fn apply(&mut self, ev: SensorEvent) -> &mut Self {
        self.t.apply(ev, MonoNs(self.now), &mut self.out);
        self
    }

    fn tick(&mut self) -> &mut Self {
        self.t.tick(MonoNs(self.now), &mut self.out);
        self
    }

    fn take(&mut self) -> Vec<FlowEvent> {
        std::mem::take(&mut self.out)
    }
}

/// The flows of the close events in `evs`.
fn closed_flows(evs: &[FlowEvent]) -> Vec<&Flow> {
    evs.iter()
        .filter_map(|e| match e {
            FlowEvent::Closed(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn kinds(evs: &[FlowEvent]) -> Vec<&'static str> {
    evs.iter()
        .map(|e| match e {
            FlowEvent::Opened(_) => "open",
            FlowEvent::Updated(_) => "update",
            FlowEvent::Closed(_) => "close",
        })
        .collect()
}

#[test]
fn outbound_tcp_waits_for_its_source_port_then_closes_with_final_counters() {
    let mut h = Harness::new();
    let p = proc_key(100, 5);
    h.apply(exec(p, "curl"));
    let syn_sent = SocketTuple {
        tcp_state: Some(TcpState::SynSent),
        ..tuple(Proto::Tcp, ep(1, 0), ep(2, 80))
    };
    h.at(1000)
        .apply(open(p, 7, syn_sent, Direction::Outbound, 1000 * MS));
    assert!(h.take().is_empty(), "no source port yet: held");

    h.at(1001).apply(SensorEvent::SockState(SockState {
        cookie: SockCookie(7),
        tuple: tuple(Proto::Tcp, ep(1, 40000), ep(2, 80)),
        state: TcpState::Established,
        at: MonoNs(1001 * MS),
    }));
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open"]);
    let f = evs[0].flow();
    assert_eq!(f.local, ep(1, 40000));
    assert_eq!(f.proc.exe, "/usr/bin/curl");
    assert_eq!(f.state_name(), "ESTABLISHED");

    h.apply(counters(100, 7, ep(2, 80), 1000, 2000));
    h.at(1004)
        .apply(counters(100, 7, ep(2, 80), 1500, 2500))
        .apply(SensorEvent::SockClosed {
            cookie: SockCookie(7),
            at: MonoNs(1003 * MS),
        });
    let evs = h.take();
    assert_eq!(kinds(&evs), ["close"]);
    let f = evs[0].flow();
    assert_eq!(
        f.payload,
        Payload {
            bytes_sent: 1500,
            bytes_recv: 2500
        }
    );
    assert_eq!(f.closed, Some(MonoNs(1003 * MS)));
    assert_eq!(f.close_reason, Some(CloseReason::SocketClosed));
    assert_eq!(f.state_name(), "CLOSE");
    assert_eq!(h.t.stats().flows_open, 0);
}

#[test]
fn an_incomplete_open_is_announced_when_the_hold_expires() {
    let mut h = Harness::new();
    let p = proc_key(100, 5);
    h.apply(open(
        p,
        7,
        tuple(Proto::Tcp, ep(1, 0), ep(2, 80)),
        Direction::Outbound,
        0,
    ));
    h.at(1400).tick();
    assert!(h.take().is_empty());
    h.at(1500).tick();
    assert_eq!(kinds(&h.take()), ["open"]);
    h.at(2000).tick();
    assert!(h.take().is_empty(), "announced once");
}

#[test]
fn pid_reuse_keeps_two_processes_apart() {
    let mut h = Harness::new();
    let old = proc_key(300, 10);
    let new = proc_key(300, 99);
    h.apply(exec(old, "old")).apply(exec(new, "new"));
    h.apply(open(
        old,
        1,
        tuple(Proto::Udp, ep(1, 5000), ep(2, 53)),
        Direction::Outbound,
        0,
    ))
    .apply(open(
        new,
        2,
        tuple(Proto::Udp, ep(1, 5001), ep(2, 53)),
        Direction::Outbound,
        0,
    ));
    assert_eq!(kinds(&h.take()), ["open", "open"]);

    h.apply(SensorEvent::Exit {
        proc: old,
        at: MonoNs(1_100 * MS),
        usage: None,
    });
    let evs = h.take();
    assert_eq!(kinds(&evs), ["close"]);
    assert_eq!(evs[0].flow().key.proc, old);
    assert_eq!(evs[0].flow().proc.comm, "old");
    assert_eq!(evs[0].flow().close_reason, Some(CloseReason::ProcessExit));

    // counters for tgid 300 now belong to the new process's flow
    h.apply(counters(300, 2, ep(2, 53), 64, 0))
        .apply(SensorEvent::SockClosed {
            cookie: SockCookie(2),
            at: MonoNs(1_200 * MS),
        });
    let evs = h.take();
    assert_eq!(evs[0].flow().key.proc, new);
    assert_eq!(evs[0].flow().payload.bytes_sent, 64);
}

#[test]
fn a_socket_shared_after_fork_gives_each_process_its_own_bytes() {
    let mut h = Harness::new();
    let parent = proc_key(400, 1);
    let child = proc_key(401, 2);
    let t = tuple(Proto::Tcp, ep(1, 41000), ep(2, 80));
    h.apply(exec(parent, "parent"));
    h.apply(open(parent, 9, t.clone(), Direction::Outbound, 0))
        .apply(counters(400, 9, ep(2, 80), 9_000, 0))
        .apply(wire(9, ep(2, 80), ep(1, 41000), 9_500, 300));
    h.apply(SensorEvent::Fork(crate::event::ProcFork {
        parent,
        child,
        comm: "renamed".into(),
        uid: 1000,
        gid: 1000,
        at: MonoNs(0),
    }));
    h.apply(open(child, 9, t, Direction::Outbound, 0))
        .apply(counters(401, 9, ep(2, 80), 1_000, 4_000))
        .apply(wire(9, ep(2, 80), ep(1, 41000), 10_600, 4_400));
    assert_eq!(kinds(&h.take()), ["open", "open"]);

    // the parent exits: its flow closes with its own bytes and a wire share
    h.apply(SensorEvent::Exit {
        proc: parent,
        at: MonoNs(1_500 * MS),
        usage: None,
    });
    let evs = h.take();
    let pf = evs[0].flow().clone();
    assert_eq!(pf.key.proc, parent);
    assert_eq!(
        pf.payload,
        Payload {
            bytes_sent: 9_000,
            bytes_recv: 0
        }
    );
    assert_eq!(pf.wire.bytes_sent, 9_540, "9/10 of the sent wire bytes");
    assert_eq!(pf.wire.bytes_recv, 0, "it received nothing");

    // later packets go to the child; everything adds up
    h.apply(counters(401, 9, ep(2, 80), 2_000, 5_000))
        .apply(wire(9, ep(2, 80), ep(1, 41000), 11_700, 5_500))
        .apply(SensorEvent::SockClosed {
            cookie: SockCookie(9),
            at: MonoNs(2_000 * MS),
        });
    let cf = h.take()[0].flow().clone();
    assert_eq!(h.t.index_sizes(), [0; 9], "nothing left behind");
    assert_eq!(cf.key.proc, child);
    assert_eq!(cf.comm, "p401");
    assert_eq!(cf.proc.parent_comm, "parent");
    assert_eq!(
        cf.payload,
        Payload {
            bytes_sent: 2_000,
            bytes_recv: 5_000
        }
    );
    assert_eq!(pf.wire.bytes_sent + cf.wire.bytes_sent, 11_700);
    assert_eq!(pf.wire.bytes_recv + cf.wire.bytes_recv, 5_500);
}

#[test]
fn counters_before_their_open_are_kept_and_merged() {
    let mut h = Harness::new();
    let p = proc_key(500, 3);
    h.apply(exec(p, "fast"));
    h.apply(counters(500, 11, ep(2, 9), 512, 0));
    assert!(h.take().is_empty(), "placeholder held");
    h.apply(open(
        p,
        11,
        tuple(Proto::Udp, ep(1, 6000), ep(2, 9)),
        Direction::Outbound,
        900 * MS,
    ));
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open"]);
    let f = evs[0].flow();
    assert_eq!(f.proto, Proto::Udp);
    assert_eq!(f.payload.bytes_sent, 512);
    assert_eq!(f.opened, MonoNs(900 * MS));
    let s = h.t.stats();
    assert_eq!((s.flows_opened, s.opens_missing), (1, 0));
}

/// Under load an accepted connection's counters and its state change can
/// both come before its open: the state event completes the placeholder's
/// address, but only the open announces it, with what the open knows (who
/// initiated it, its network namespace). (Seen on a slow kernel: the flow
/// was announced as "unknown" in namespace 0 and its open was lost.)
#[test]
fn a_placeholder_completed_by_a_state_change_waits_for_its_open() {
    let mut h = Harness::new();
    let p = proc_key(502, 3);
    h.apply(exec(p, "server"));
    let mut c = counters(502, 13, ep(2, 41000), 0, 1000);
    if let SensorEvent::Counters { hint, .. } = &mut c {
        hint.proto = Proto::Tcp;
    }
    h.apply(c);
    h.apply(SensorEvent::SockState(SockState {
        cookie: SockCookie(13),
        tuple: tuple(Proto::Tcp, ep(1, 8080), ep(2, 41000)),
        state: TcpState::Established,
        at: MonoNs(5 * MS),
    }));
    assert!(h.take().is_empty(), "the placeholder waits for its open");
    h.apply(open(
        p,
        13,
        tuple(Proto::Tcp, ep(1, 8080), ep(2, 41000)),
        Direction::Inbound,
        4 * MS,
    ));
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open"]);
    let f = evs[0].flow();
    assert_eq!(f.direction, Direction::Inbound);
    assert_eq!(f.netns, 4026531840);
    assert_eq!(f.payload.bytes_recv, 1000);
    assert_eq!(h.t.stats().opens_missing, 0);
}

#[test]
fn counters_whose_open_was_lost_still_report_their_bytes() {
    let mut h = Harness::new();
    h.apply(exec(proc_key(501, 3), "lossy"));
    h.apply(counters(501, 12, ep(2, 9), 100, 0));
    h.at(2000).tick();
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open"]);
    assert_eq!(evs[0].flow().proto, Proto::Unknown);
    assert_eq!(evs[0].flow().proc.comm, "lossy");
    assert_eq!(h.t.stats().opens_missing, 1);
}

/// A stalled reader loses a short-lived process's opens, then learns of
/// its exit before the scan finds its entries: they are still its flows,
/// with the protocol the entry recorded.
#[test]
fn counters_of_an_exited_process_whose_open_was_lost_name_it() {
    let mut h = Harness::new();
    h.apply(exec(proc_key(502, 3), "gone"));
    h.apply(SensorEvent::Exit {
        proc: proc_key(502, 3),
        at: MonoNs(10 * MS),
        usage: None,
    });
    h.apply(SensorEvent::Counters {
        key: KernelKey {
            tgid: 502,
            cookie: SockCookie(13),
            remote: ep(2, 9),
        },
        payload: Payload {
            bytes_sent: 20,
            bytes_recv: 0,
        },
        hint: CounterHint {
            proto: Proto::Udp,
            uid: Some(1000),
        },
    });
    h.at(2000).tick();
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open"]);
    let f = evs[0].flow();
    assert_eq!((f.proto, f.proc.comm.as_str()), (Proto::Udp, "gone"));
    assert_eq!(f.proc.key, proc_key(502, 3));
    assert_eq!(h.t.stats().procs_unknown, 0);
}

#[test]
fn a_socket_found_by_sock_diag_is_not_opened_twice() {
    let mut h = Harness::new();
    let p = proc_key(600, 1);
    h.apply(SensorEvent::ProcSnapshot(ProcInfo {
        source: ProcSource::Procfs,
        exe: "/usr/sbin/sshd".into(),
        ..ProcInfo::unknown(p, "sshd", 0, 0)
    }));
    h.apply(SensorEvent::Existing(ExistingSocket {
        taken: None,
        cookie: SockCookie(20),
        tuple: tuple(Proto::Tcp, ep(1, 22), ep(2, 50000)),
        holders: vec![600, 601],
        direction: Direction::Inbound,
        at: MonoNs(0),
    }));
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open"], "601 is not a known live process");
    assert_eq!(evs[0].flow().attribution, Attribution::SockDiag);
    assert_eq!(evs[0].flow().proc.exe, "/usr/sbin/sshd");
    assert_eq!(h.t.stats().procs_unknown, 1);

    let mut o = open(
        p,
        20,
        tuple(Proto::Tcp, ep(1, 22), ep(2, 50000)),
        Direction::Unknown,
        0,
    );
    if let SensorEvent::FlowOpen(o) = &mut o {
        o.attribution = Attribution::SockDiag;
    }
    h.apply(o).apply(counters(600, 20, ep(2, 50000), 10, 20));
    assert!(h.take().is_empty());
    let flows: Vec<_> = h.t.flows().collect();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].payload.bytes_recv, 20);
}

#[test]
fn an_old_socket_that_talks_before_the_scan_lands_still_gets_its_direction() {
    let mut h = Harness::new();
    let p = proc_key(620, 1);
    h.apply(exec(p, "server"));
    let t = tuple(Proto::Tcp, ep(1, 22), ep(2, 50000));
    let mut o = open(p, 22, t.clone(), Direction::Unknown, 0);
    if let SensorEvent::FlowOpen(o) = &mut o {
        o.attribution = Attribution::SockDiag;
    }
    h.apply(o);
    h.apply(SensorEvent::Existing(ExistingSocket {
        taken: None,
        cookie: SockCookie(22),
        tuple: t,
        holders: vec![620],
        direction: Direction::Inbound,
        at: MonoNs(0),
    }));
    let flows: Vec<_> = h.t.flows().collect();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].direction, Direction::Inbound);
    assert_eq!(flows[0].attribution, Attribution::SockDiag);
}

#[test]
fn a_new_socket_mistaken_for_an_old_one_takes_the_kernels_view_of_its_owner() {
    let mut h = Harness::new();
    let p = proc_key(610, 1);
    // /proc was read while the process was still the launcher, as root
    h.apply(SensorEvent::ProcSnapshot(ProcInfo {
        source: ProcSource::Procfs,
        ..ProcInfo::unknown(p, "ip", 0, 0)
    }));
    let t = tuple(Proto::Tcp, ep(1, 40000), ep(2, 80));
    h.apply(SensorEvent::Existing(ExistingSocket {
        taken: None,
        cookie: SockCookie(21),
        tuple: t.clone(),
        holders: vec![610],
        direction: Direction::Outbound,
        at: MonoNs(0),
    }));
    h.apply(exec(p, "client"));
    h.apply(open(p, 21, t, Direction::Outbound, 0));
    let f = h.t.flows().next().unwrap().clone();
    assert_eq!(f.attribution, Attribution::Ebpf);
    assert_eq!((f.comm.as_str(), f.uid), ("p610", 1000));
    assert_eq!(f.proc.comm, "client");
}

#[test]
fn an_inbound_connection_belongs_to_the_process_that_touches_it() {
    let mut h = Harness::new();
    let listener_owner = proc_key(700, 1);
    let worker = proc_key(701, 2);
    h.apply(exec(listener_owner, "master"))
        .apply(exec(worker, "worker"));
    let t = tuple(Proto::Tcp, ep(1, 80), ep(2, 51000));
    let inbound = |cookie| {
        SensorEvent::Inbound(Inbound {
            cookie: SockCookie(cookie),
            tuple: t.clone(),
            owner_tgid: 700,
            owner_uid: 0,
            owner_gid: 0,
            owner_cgroup: 1,
            at: MonoNs(0),
        })
    };
    // claimed by the worker: one flow, the worker's
    h.apply(inbound(30))
        .apply(open(worker, 30, t.clone(), Direction::Inbound, 0))
        .apply(SensorEvent::SockClosed {
            cookie: SockCookie(30),
            at: MonoNs(1),
        });
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open", "close"]);
    assert_eq!(evs[1].flow().key.proc, worker);

    // never touched: still logged, attributed to the listener's creator
    h.apply(inbound(31))
        .apply(wire(31, ep(2, 51000), ep(1, 80), 0, 120));
    assert!(h.take().is_empty());
    h.apply(SensorEvent::SockClosed {
        cookie: SockCookie(31),
        at: MonoNs(2),
    });
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open", "close"]);
    let f = evs[1].flow();
    assert_eq!(
        (f.key.proc, f.direction),
        (listener_owner, Direction::Inbound)
    );
    assert_eq!(f.wire.bytes_recv, 120);
    assert_eq!(h.t.stats().inbound_unclaimed, 1);
    assert_eq!(h.t.index_sizes(), [0; 9], "nothing left behind");
}

#[test]
fn one_udp_socket_to_many_remotes_is_one_flow_per_remote() {
    let mut h = Harness::new();
    let p = proc_key(800, 1);
    for port in 0..5u16 {
        h.apply(open(
            p,
            40,
            tuple(Proto::Udp, ep(1, 7000), ep(2, 9000 + port)),
            Direction::Outbound,
            0,
        ));
        h.apply(counters(
            800,
            40,
            ep(2, 9000 + port),
            100 + u64::from(port),
            0,
        ));
    }
    assert_eq!(h.take().len(), 5);
    h.apply(SensorEvent::SockClosed {
        cookie: SockCookie(40),
        at: MonoNs(5),
    });
    let evs = h.take();
    assert_eq!(kinds(&evs), ["close"; 5]);
    assert_eq!(h.t.index_sizes(), [0; 9], "nothing left behind");
    let total: u64 = evs.iter().map(|e| e.flow().payload.bytes_sent).sum();
    assert_eq!(total, 510);
}

#[test]
fn an_unbound_udp_send_learns_its_source_address_from_the_packets() {
    let mut h = Harness::new();
    let p = proc_key(850, 1);
    let unbound = tuple(
        Proto::Udp,
        Endpoint::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7001),
        ep(2, 53),
    );
    h.apply(open(p, 41, unbound, Direction::Outbound, 0));
    assert!(h.take().is_empty());
    h.apply(wire(41, ep(2, 53), ep(1, 7001), 540, 0));
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open"]);
    assert_eq!(evs[0].flow().local, ep(1, 7001));
    assert_eq!(evs[0].flow().wire.bytes_sent, 540);
}

#[test]
fn idle_datagram_flows_close_and_forget_their_wire() {
    let mut h = Harness::new();
    let p = proc_key(900, 1);
    h.apply(open(
        p,
        50,
        tuple(Proto::Udp, ep(1, 7000), ep(2, 53)),
        Direction::Outbound,
        0,
    ))
    .apply(wire(50, ep(2, 53), ep(1, 7000), 100, 0));
    h.take();
    h.apply(SensorEvent::FlowIdle {
        key: KernelKey {
            tgid: 900,
            cookie: SockCookie(50),
            remote: ep(2, 53),
        },
        at: MonoNs(9),
    });
    let evs = h.take();
    assert_eq!(evs[0].flow().close_reason, Some(CloseReason::Idle));
    // traffic resumes: a new flow, whose wire starts from the new counters
    h.apply(open(
        p,
        50,
        tuple(Proto::Udp, ep(1, 7000), ep(2, 53)),
        Direction::Outbound,
        0,
    ))
    .apply(wire(50, ep(2, 53), ep(1, 7000), 40, 0));
    assert_eq!(kinds(&h.take()), ["open"]);
    let flows: Vec<_> = h.t.flows().collect();
    assert_eq!(
        flows[0].wire.bytes_sent, 40,
        "not 140: the old counters went with the old flow"
    );
}

#[test]
fn updates_are_emitted_only_for_changed_flows_and_drain_reports_all() {
    let mut h = Harness::with(TableConfig {
        emit_updates: true,
        ..TableConfig::default()
    });
    let p = proc_key(950, 1);
    h.apply(open(
        p,
        60,
        tuple(Proto::Udp, ep(1, 7000), ep(2, 53)),
        Direction::Outbound,
        0,
    ))
    .apply(open(
        p,
        61,
        tuple(Proto::Udp, ep(1, 7001), ep(2, 53)),
        Direction::Outbound,
        0,
    ));
    h.take();
    h.apply(counters(950, 60, ep(2, 53), 10, 0)).tick();
    let evs = h.take();
    assert_eq!(kinds(&evs), ["update"]);
    assert_eq!(evs[0].flow().key.cookie, SockCookie(60));
    h.tick();
    assert!(h.take().is_empty(), "nothing changed");
    h.t.drain(&mut h.out);
    assert_eq!(kinds(&h.take()), ["update", "update"]);
}

#[test]
fn replaying_the_same_events_gives_the_same_flows() {
    let script = |h: &mut Harness| {
        let p = proc_key(1000, 1);
        h.apply(exec(p, "a"));
        for c in 0..20u64 {
            h.apply(open(
                p,
                c,
                tuple(Proto::Tcp, ep(1, 1000), ep(2, 80)),
                Direction::Outbound,
                c,
            ))
            .apply(counters(1000, c, ep(2, 80), c * 3, c * 5))
            .apply(SensorEvent::SockClosed {
                cookie: SockCookie(c),
                at: MonoNs(c),
            });
        }
        h.take()
    };
    assert_eq!(script(&mut Harness::new()), script(&mut Harness::new()));
}

fn captured(
    cookie: u64,
    remote: Endpoint,
    dir: CaptureDir,
    offset: u32,
    data: &[u8],
) -> SensorEvent {
    SensorEvent::Captured {
        key: WireKey {
            cookie: SockCookie(cookie),
            remote,
        },
        piece: CapturePiece {
            dir,
            offset,
            data: data.to_vec(),
        },
    }
}

#[test]
fn payload_bytes_reach_every_flow_of_their_socket_even_before_the_flow_opens() {
    let mut h = Harness::with(TableConfig {
        emit_updates: true,
        ..TableConfig::default()
    });
    let (a, b) = (proc_key(800, 1), proc_key(801, 2));
    let t = tuple(Proto::Udp, ep(1, 5353), ep(2, 53));
    // the datagram leaves before its send returns: bytes first, then the open
    h.apply(captured(40, ep(2, 53), CaptureDir::Sent, 0, b"query"))
        .apply(open(a, 40, t.clone(), Direction::Outbound, 0))
        .tick();
    let evs = h.take();
    assert_eq!(kinds(&evs), ["open"]);
    let cap = evs[0]
        .flow()
        .capture
        .clone()
        .expect("capture attached at open");
    assert_eq!(cap.stream(CaptureDir::Sent).data, b"query");

    // a second process on the same socket, then the answer: both see it
    h.apply(open(b, 40, t.clone(), Direction::Outbound, 0))
        .apply(captured(40, ep(2, 53), CaptureDir::Recv, 0, b"answer"))
        .tick();
    let evs = h.take();
    let updated: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e, FlowEvent::Updated(_)))
        .map(|e| (e.flow().key.proc, e.flow().capture.clone()))
        .collect();
    assert_eq!(updated.len(), 2, "{:?}", kinds(&evs));
    for (_, c) in &updated {
        let c = c.as_ref().expect("capture");
        assert_eq!(c.stream(CaptureDir::Recv).data, b"answer");
        assert_eq!(c.stream(CaptureDir::Sent).data, b"query");
    }

    // a retransmitted piece changes nothing, so nothing is re-emitted
    h.apply(captured(40, ep(2, 53), CaptureDir::Recv, 0, b"answer"))
        .tick();
    assert!(h.take().is_empty());

    // bytes of another remote stay with that remote
    h.apply(captured(40, ep(3, 53), CaptureDir::Sent, 0, b"other"));
    assert!(h.take().is_empty());

    h.apply(SensorEvent::SockClosed {
        cookie: SockCookie(40),
        at: MonoNs(5),
    });
    let evs = h.take();
    assert_eq!(kinds(&evs), ["close", "close"]);
    assert!(evs.iter().all(|e| e.flow().capture.is_some()));
    assert_eq!(h.t.index_sizes(), [0; 9], "nothing left behind");
}

/// Untracked flows are present (opened, closed, their process known);
/// the bytes the socket counted for them land on the only one exactly, or
/// on the socket's aggregate flow when there are several.
/// A socket's own bytes (its untracked flows'), then its close.
fn own_bytes_then_close(
    t: &mut FlowTable,
    (p, cookie): (ProcKey, u64),
    (proto, remote): (Proto, Option<Endpoint>),
    (sent, recv): (u64, u64),
    at: u64,
    out: &mut Vec<FlowEvent>,
) {
    t.apply(
        SensorEvent::SocketBytes {
            cookie: SockCookie(cookie),
            tgid: p.tgid,
            proto,
            remote,
            payload: Payload {
                bytes_sent: sent,
                bytes_recv: recv,
            },
        },
        MonoNs(at),
        out,
    );
    t.apply(
        SensorEvent::SockClosed {
            cookie: SockCookie(cookie),
            at: MonoNs(at),
        },
        MonoNs(at),
        out,
    );
}

#[test]
fn untracked_flows_are_present_and_their_socket_bytes_are_accounted() {
    let mut t = FlowTable::new(TableConfig::default());
    let p = proc_key(300, 30);
    let mut out = Vec::new();
    t.apply(exec(p, "flood"), MonoNs(1), &mut out);
    // one TCP connection counted on its socket
    t.apply(
        untracked_open(p, 1, tuple(Proto::Tcp, ep(1, 40000), ep(2, 80)), 10),
        MonoNs(10),
        &mut out,
    );
    own_bytes_then_close(
        &mut t,
        (p, 1),
        (Proto::Tcp, Some(ep(2, 80))),
        (500, 7000),
        20,
        &mut out,
    );
    let closed = closed_flows(&out);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].payload.bytes_recv, 7000);
    assert!(
        closed[0].bytes_complete,
        "the only flow of its socket: exact"
    );
    // a datagram socket to three remotes, all untracked: each is there,
    // the socket's bytes on one aggregate flow
    out.clear();
    for port in [5001, 5002, 5003] {
        t.apply(
            untracked_open(p, 2, tuple(Proto::Udp, ep(1, 40001), ep(2, port)), 30),
            MonoNs(30),
            &mut out,
        );
    }
    own_bytes_then_close(&mut t, (p, 2), (Proto::Udp, None), (300, 0), 40, &mut out);
    let closed = closed_flows(&out);
    assert_eq!(closed.len(), 4, "three remotes and the aggregate");
    assert!(closed.iter().all(|f| !f.bytes_complete));
    let total: u64 = closed.iter().map(|f| f.payload.bytes_sent).sum();
    assert_eq!(total, 300);
    assert_eq!(
        closed
            .iter()
            .filter(|f| f.remote.is_unspecified() && f.payload.bytes_sent == 300)
            .count(),
        1
    );
    assert_eq!(t.stats().untracked, 4);
    // a socket whose open the ring lost, recovered with its close: it is
    // there, as its process's, with the protocol the kernel kept
    out.clear();
    own_bytes_then_close(&mut t, (p, 3), (Proto::Udp, None), (20, 0), 50, &mut out);
    let closed = closed_flows(&out);
    assert_eq!(closed.len(), 1);
    let f = closed[0];
    assert_eq!(
        (f.proto, f.proc.key, f.payload.bytes_sent),
        (Proto::Udp, p, 20)
    );
    assert!(!f.bytes_complete, "its remote is not known");
    // the same, but the kernel saw one remote only: that flow, exact
    out.clear();
    own_bytes_then_close(
        &mut t,
        (p, 4),
        (Proto::Udp, Some(ep(2, 53))),
        (30, 90),
        60,
        &mut out,
    );
    let closed = closed_flows(&out);
    assert_eq!(closed.len(), 1);
    let f = closed[0];
    assert_eq!((f.remote, f.payload.bytes_recv), (ep(2, 53), 90));
    assert!(f.bytes_complete);
}

#[test]
fn attributed_wire_bytes_are_counted_per_network_namespace_once() {
    let mut h = Harness::new();
    let p = proc_key(900, 1);
    let t = tuple(Proto::Tcp, ep(1, 40000), ep(2, 443));
    h.apply(open(p, 50, t, Direction::Outbound, 0));
    // cumulative totals: each report adds only what grew
    h.apply(wire(50, ep(2, 443), ep(1, 40000), 1000, 3000));
    h.apply(wire(50, ep(2, 443), ep(1, 40000), 1500, 3000));
    h.apply(wire(50, ep(2, 443), ep(1, 40000), 1500, 3000));
    assert_eq!(h.t.wire_attributed(4026531840), 4500);
    assert_eq!(h.t.wire_attributed(1), 0, "another namespace");
    // bytes of a socket nobody holds are nobody's
    h.apply(wire(51, ep(2, 443), ep(1, 40001), 700, 0));
    assert_eq!(h.t.wire_attributed(4026531840), 4500);
}

// ---- names -------------------------------------------------------------

fn named() -> Harness {
    Harness::with(TableConfig {
        emit_updates: true,
        names: Some(NamesConfig::default()),
        ..TableConfig::default()
    })
}

fn name_piece(
    kind: NameKind,
    cookie: u64,
    remote: Endpoint,
    at_ms: u64,
    data: Vec<u8>,
) -> SensorEvent {
    SensorEvent::Name(Box::new(NamePiece {
        key: WireKey {
            cookie: SockCookie(cookie),
            remote,
        },
        at: MonoNs(at_ms * MS),
        kind,
        offset: 0,
        tcp: kind == NameKind::Tls,
        cut: false,
        data,
    }))
}

fn answer(name: &str, addr: &str) -> Vec<u8> {
    netwho_names::dns::example_answer(name, &[(name, 1, addr)], 300)
}

fn public(last: u8, port: u16) -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port)
}

fn remote_name(f: &Flow) -> (Option<&str>, Option<&str>, Option<&str>) {
    let rn = f.remote_name.as_deref();
    (
        rn.and_then(|n| n.rname.as_deref()),
        rn.and_then(|n| n.source).map(RnameSource::name),
        rn.and_then(|n| n.sni.as_deref()),
    )
}

#[test]
fn each_process_names_a_shared_address_by_its_own_answer() {
    use NameKind::Dns;
    let mut h = named();
    let (a, b, c) = (proc_key(900, 1), proc_key(901, 1), proc_key(902, 1));
    let resolver = ep(53, 53);
    let dns = tuple(Proto::Udp, ep(1, 40000), resolver);
    // a's answer overtakes the open of its query's flow: it waits for it
    h.apply(name_piece(
        Dns,
        70,
        resolver,
        1,
        answer("a.example", "192.0.2.7"),
    ))
    .apply(open(a, 70, dns.clone(), Direction::Outbound, MS))
    .apply(open(b, 71, dns.clone(), Direction::Outbound, MS))
    .apply(name_piece(
        Dns,
        71,
        resolver,
        2,
        answer("b.example", "192.0.2.7"),
    ));
    for (p, cookie) in [(a, 80), (b, 81), (c, 82)] {
        let t = tuple(Proto::Tcp, ep(1, 50000 + cookie as u16), public(7, 443));
        h.apply(open(p, cookie, t, Direction::Outbound, 5 * MS));
    }
    let evs = h.take();
    let name_of = |p: ProcKey| {
        evs.iter()
            .map(FlowEvent::flow)
            .find(|f| f.key.proc == p && f.remote.port == 443)
            .map(remote_name)
    };
    assert_eq!(name_of(a), Some((Some("a.example"), Some("dns"), None)));
    assert_eq!(name_of(b), Some((Some("b.example"), Some("dns"), None)));
    // c resolved nothing: the namespace's latest answer, shared
    assert_eq!(name_of(c), Some((Some("b.example"), Some("shared"), None)));
    // the flows to the resolver are not marked
    let to_dns: Vec<_> = evs
        .iter()
        .map(FlowEvent::flow)
        .filter(|f| f.remote.port == 53)
        .collect();
    assert!(to_dns.iter().all(|f| f.remote_name.is_none()), "{to_dns:?}");
}

#[test]
fn a_flow_nobody_resolved_is_marked_until_its_client_hello_names_it() {
    use NameKind::Tls;
    let mut h = named();
    let p = proc_key(910, 1);
    let remote = public(9, 443);
    h.apply(open(
        p,
        90,
        tuple(Proto::Tcp, ep(1, 50001), remote),
        Direction::Outbound,
        0,
    ))
    .tick();
    let evs = h.take();
    assert_eq!(remote_name(evs[0].flow()), (None, Some("none"), None));
    // the ClientHello, split in two and out of order
    let hello = netwho_names::tls::example_records(
        &netwho_names::tls::example_hello(b"svc.example", &["h2"], 300),
        16384,
    );
    let (x, y) = hello.split_at(200);
    let mut second = name_piece(Tls, 90, remote, 3, y.to_vec());
    if let SensorEvent::Name(n) = &mut second {
        n.offset = 200;
    }
    h.apply(second)
        .apply(name_piece(Tls, 90, remote, 3, x.to_vec()))
        .tick();
    let evs = h.take();
    assert_eq!(kinds(&evs), ["update"]);
    assert_eq!(
        remote_name(evs[0].flow()),
        (None, None, Some("svc.example"))
    );
    assert_eq!(h.t.stats().names.hellos, 1);
    // private, inbound and port-53 flows are never marked
    let q = proc_key(911, 1);
    h.apply(open(
        q,
        91,
        tuple(Proto::Tcp, ep(1, 50002), ep(7, 80)),
        Direction::Outbound,
        0,
    ))
    .apply(open(
        q,
        92,
        tuple(Proto::Tcp, ep(1, 80), public(8, 50000)),
        Direction::Inbound,
        0,
    ))
    .apply(open(
        q,
        93,
        tuple(Proto::Udp, ep(1, 50003), public(8, 53)),
        Direction::Outbound,
        0,
    ))
    .tick();
    assert!(h.take().iter().all(|e| e.flow().remote_name.is_none()));
}

#[test]
fn pieces_nobody_claims_are_bounded_and_counted() {
    use NameKind::Dns;
    let mut h = named();
    let n = crate::names::PENDING_SOCKETS + 10;
    for cookie in 0..n as u64 {
        h.apply(name_piece(
            Dns,
            1000 + cookie,
            ep(53, 53),
            1,
            answer("x.example", "192.0.2.1"),
        ));
    }
    assert_eq!(h.t.names_pending.len(), crate::names::PENDING_SOCKETS);
    assert_eq!(h.t.stats().names_orphaned, 10);
    h.at(1_000 + crate::names::PENDING_NS / MS + 1).tick();
    assert!(h.t.names_pending.is_empty());
    assert_eq!(h.t.stats().names_orphaned, n as u64);
    // garbage is counted, not kept
    let p = proc_key(920, 1);
    h.apply(open(
        p,
        5,
        tuple(Proto::Udp, ep(1, 40001), ep(53, 53)),
        Direction::Outbound,
        0,
    ))
    .apply(name_piece(Dns, 5, ep(53, 53), 2, vec![0xff; 40]));
    assert_eq!(h.t.stats().names.dns_unreadable, 1);
    assert_eq!(h.t.names.as_ref().map(|b| b.sizes().0), Some(0));
}
