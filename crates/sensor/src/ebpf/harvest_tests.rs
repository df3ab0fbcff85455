//! Harvester rules against fake kernel maps.

use super::*;
use bytemuck::Zeroable;
use std::collections::HashMap;

const MS: u64 = 1_000_000;
const GRACE: u64 = 100 * MS;
const IDLE: u64 = 10_000 * MS;

/// Kernel maps in memory; `calls` counts the syscalls a real map would cost.
#[derive(Default)]
struct FakeMaps {
    flows: HashMap<abi::FlowKey, abi::FlowCounters>,
    wire: HashMap<abi::WireKey, abi::WireCounters>,
    fail: bool,
    calls: u32,
}

impl KernelMaps for FakeMaps {
    fn take_flow(&mut self, k: &abi::FlowKey) -> io::Result<Option<abi::FlowCounters>> {
        self.calls += 1;
        if self.fail {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(self.flows.remove(k))
    }
    fn take_wire(&mut self, k: &abi::WireKey) -> io::Result<Option<abi::WireCounters>> {
        self.calls += 1;
        Ok(self.wire.remove(k))
    }
    fn peek_wire(&mut self, k: &abi::WireKey) -> io::Result<Option<abi::WireCounters>> {
        self.calls += 1;
        Ok(self.wire.get(k).copied())
    }
    fn all_flows(&mut self, out: &mut Vec<(abi::FlowKey, abi::FlowCounters)>) -> io::Result<()> {
        let mut v: Vec<_> = self.flows.iter().map(|(k, c)| (*k, *c)).collect();
        v.sort_by_key(|(k, _)| (k.cookie, k.tgid, k.rport));
        out.extend(v);
        Ok(())
    }
    fn all_wire(&mut self, out: &mut Vec<(abi::WireKey, abi::WireCounters)>) -> io::Result<()> {
        let mut v: Vec<_> = self.wire.iter().map(|(k, c)| (*k, *c)).collect();
        v.sort_by_key(|(k, _)| (k.cookie, k.rport));
        out.extend(v);
        Ok(())
    }
}

fn key(tgid: u32, cookie: u64, rport: u16) -> abi::FlowKey {
    abi::FlowKey {
        cookie,
        tgid,
        rport,
        _pad: 0,
        raddr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 231, 0, 2],
    }
}

fn counters(sent: u64, last_ms: u64) -> abi::FlowCounters {
    abi::FlowCounters {
        bytes_sent: sent,
        created_ns: last_ms * MS,
        ..abi::FlowCounters::zeroed()
    }
}

fn wire(sent: u64, last_ms: u64) -> abi::WireCounters {
    abi::WireCounters {
        bytes_sent: sent,
        packets_sent: 1,
        created_ns: last_ms * MS,
        ..abi::WireCounters::zeroed()
    }
}

fn names(evs: &[SensorEvent]) -> Vec<&'static str> {
    evs.iter()
        .map(|e| match e {
            SensorEvent::Counters { .. } => "counters",
            SensorEvent::Wire { .. } => "wire",
            SensorEvent::SockClosed { .. } => "closed",
            SensorEvent::Exit { .. } => "exit",
            SensorEvent::FlowIdle { .. } => "idle",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_closed_socket_is_finalized_after_the_grace() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    let k = key(10, 1, 80);
    m.flows.insert(k, counters(1000, 1));
    m.wire.insert(flow_wire_key(&k), wire(1100, 1));
    h.on_open(k, true, MonoNs(MS));
    h.on_close(1, MonoNs(5 * MS), Finals::default());
    let mut out = Vec::new();
    h.run_due(MonoNs(5 * MS + GRACE - 1), &mut m, &mut out);
    assert!(out.is_empty(), "still in grace");
    h.run_due(MonoNs(5 * MS + GRACE), &mut m, &mut out);
    assert_eq!(names(&out), ["wire", "counters", "closed"]);
    assert!(matches!(out[2], SensorEvent::SockClosed { at, .. } if at == MonoNs(5 * MS)));
    assert!(
        m.flows.is_empty() && m.wire.is_empty(),
        "kernel entries deleted"
    );
    assert!(h.is_empty());
}

fn close_event(
    cookie: u64,
    flows: &[(abi::FlowKey, u64)],
    wire_sent: Option<u64>,
) -> abi::SockClose {
    let mut ev = abi::SockClose::zeroed();
    ev.cookie = cookie;
    for (i, (k, sent)) in flows.iter().enumerate() {
        ev.flows[i] = abi::FinalFlow {
            tgid: k.tgid,
            rport: k.rport,
            found: 1,
            raddr: k.raddr,
            bytes_sent: *sent,
            bytes_recv: 0,
        };
    }
    if let Some((k, _)) = flows.first() {
        ev.wires[0] = abi::FinalWire {
            rport: k.rport,
            found: u16::from(wire_sent.is_some()),
            raddr: k.raddr,
            bytes_sent: wire_sent.unwrap_or(0),
            packets_sent: 1,
            ..abi::FinalWire::zeroed()
        };
    }
    ev
}

#[test]
fn the_close_event_carries_the_finals_so_no_map_call_is_needed() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    let k = key(10, 1, 80);
    h.on_open(k, true, MonoNs(MS));
    let ev = close_event(1, &[(k, 1000)], Some(1100));
    h.on_close(1, MonoNs(5 * MS), Finals::from_event(&ev));
    let mut out = Vec::new();
    h.run_due(MonoNs(5 * MS + GRACE), &mut m, &mut out);
    assert_eq!(names(&out), ["wire", "counters", "closed"]);
    assert!(matches!(&out[1], SensorEvent::Counters { payload, .. } if payload.bytes_sent == 1000));
    assert_eq!(m.calls, 0);
    assert!(h.is_empty());
}

#[test]
fn a_straggler_after_the_close_event_is_added_to_the_finals() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    let k = key(10, 1, 80);
    h.on_open(k, true, MonoNs(MS));
    let ev = close_event(1, &[(k, 1000)], Some(1100));
    h.on_close(1, MonoNs(5 * MS), Finals::from_event(&ev));
    // a send that completed on another CPU re-created the entry
    m.flows.insert(k, counters(24, 6));
    h.on_open(k, true, MonoNs(6 * MS));
    let mut out = Vec::new();
    h.run_due(MonoNs(5 * MS + GRACE), &mut m, &mut out);
    assert_eq!(names(&out), ["wire", "counters", "closed"]);
    assert!(matches!(&out[1], SensorEvent::Counters { payload, .. } if payload.bytes_sent == 1024));
    assert!(m.flows.is_empty());
}

#[test]
fn flows_the_event_could_not_carry_are_read_from_the_maps() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    let ks: Vec<_> = (0..6).map(|i| key(10 + i, 1, 80)).collect();
    for k in &ks {
        h.on_open(*k, true, MonoNs(MS));
        m.flows.insert(*k, counters(7, 1));
    }
    let carried: Vec<_> = ks[..4].iter().map(|k| (*k, 7)).collect();
    for k in &ks[..4] {
        m.flows.remove(k); // the kernel took these out
    }
    let ev = close_event(1, &carried, Some(99));
    h.on_close(1, MonoNs(0), Finals::from_event(&ev));
    let mut out = Vec::new();
    h.run_due(MonoNs(GRACE), &mut m, &mut out);
    let counters = out
        .iter()
        .filter(|e| matches!(e, SensorEvent::Counters { .. }))
        .count();
    assert_eq!(counters, 6);
    assert_eq!(m.calls, 2, "only the two flows beyond the event's four");
    assert!(m.flows.is_empty());
}

#[test]
fn an_exit_takes_the_process_entries_but_leaves_the_socket() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    let parent = key(10, 1, 80);
    let child = key(11, 1, 80);
    for k in [parent, child] {
        m.flows.insert(k, counters(10, 1));
        h.on_open(k, true, MonoNs(MS));
    }
    m.wire.insert(flow_wire_key(&parent), wire(50, 1));
    h.on_exit(ProcKey::from_start_ticks(10, 3), MonoNs(2 * MS), None);
    let mut out = Vec::new();
    h.run_due(MonoNs(2 * MS + GRACE), &mut m, &mut out);
    assert_eq!(names(&out), ["wire", "counters", "exit"]);
    assert!(m.flows.contains_key(&child) && !m.flows.contains_key(&parent));
    assert_eq!(m.wire.len(), 1, "the child still uses the socket");
    assert_eq!(h.len(), 1);
}

/// A process that exits with its socket open: the exit event comes first,
/// then the socket's release takes the counters out and carries them. The
/// exit must report them, once, before the process's flows close.
#[test]
fn an_exit_before_its_socket_release_keeps_the_counters() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    let k = key(10, 1, 9);
    h.on_open(k, false, MonoNs(MS));
    h.on_exit(ProcKey::from_start_ticks(10, 3), MonoNs(2 * MS), None);
    // the kernel already took the entries out when the socket was released
    let ev = close_event(1, &[(k, 55)], Some(83));
    h.on_close(1, MonoNs(3 * MS), Finals::from_event(&ev));
    let mut out = Vec::new();
    h.run_due(MonoNs(2 * MS + GRACE), &mut m, &mut out);
    assert_eq!(names(&out), ["wire", "counters", "exit"]);
    assert!(matches!(out[1], SensorEvent::Counters { payload, .. } if payload.bytes_sent == 55));
    out.clear();
    h.run_due(MonoNs(3 * MS + GRACE), &mut m, &mut out);
    assert_eq!(
        names(&out),
        ["wire", "closed"],
        "no second copy of the counters"
    );
    assert!(h.is_empty());
}

#[test]
fn an_entry_that_appears_after_finalization_is_taken_too() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    h.on_close(7, MonoNs(0), Finals::default());
    let mut out = Vec::new();
    h.run_due(MonoNs(GRACE), &mut m, &mut out);
    assert_eq!(names(&out), ["closed"]);
    let late = key(12, 7, 53);
    m.flows.insert(late, counters(3, 1));
    h.on_open(late, false, MonoNs(GRACE + MS));
    assert_eq!(h.stats.late_opens, 1);
    out.clear();
    h.run_due(MonoNs(2 * GRACE + MS), &mut m, &mut out);
    assert_eq!(names(&out), ["counters", "closed"]);
    assert!(m.flows.is_empty());
}

#[test]
fn finalizations_run_in_time_order_whatever_order_they_arrive_in() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    h.on_close(2, MonoNs(20 * MS), Finals::default());
    h.on_close(1, MonoNs(10 * MS), Finals::default());
    assert_eq!(h.next_due(), Some(MonoNs(10 * MS + GRACE)));
    let mut out = Vec::new();
    h.run_due(MonoNs(15 * MS + GRACE), &mut m, &mut out);
    assert!(matches!(
        out[..],
        [SensorEvent::SockClosed {
            cookie: SockCookie(1),
            ..
        }]
    ));
}

#[test]
fn a_scan_reports_changes_once_and_retires_idle_datagram_flows() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    let tcp = key(10, 1, 80);
    let dns = key(10, 2, 53);
    m.flows.insert(tcp, counters(5, 1));
    m.flows.insert(dns, counters(64, 1));
    m.wire.insert(flow_wire_key(&dns), wire(92, 1));
    h.on_open(tcp, true, MonoNs(MS));
    h.on_open(dns, false, MonoNs(MS));

    let mut out = Vec::new();
    h.scan(MonoNs(2 * MS), &mut m, &mut out);
    assert_eq!(names(&out), ["counters", "counters", "wire"]);
    out.clear();
    h.scan(MonoNs(3 * MS), &mut m, &mut out);
    assert!(out.is_empty(), "nothing changed");

    h.scan(MonoNs(IDLE + 2 * MS), &mut m, &mut out);
    assert_eq!(names(&out), ["wire", "counters", "idle"]);
    assert!(m.flows.contains_key(&tcp), "TCP never idles out");
    assert!(!m.flows.contains_key(&dns) && m.wire.is_empty());
}

#[test]
fn a_scan_finds_entries_whose_open_was_lost_and_reclaims_orphan_wire() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps::default();
    let k = key(10, 3, 80);
    m.flows.insert(k, counters(9, 1));
    let orphan = abi::WireKey {
        cookie: 99,
        ..flow_wire_key(&k)
    };
    m.wire.insert(orphan, wire(100, 1));
    h.on_close(99, MonoNs(0), Finals::default());
    let mut out = Vec::new();
    h.run_due(MonoNs(GRACE), &mut m, &mut out);
    out.clear();
    h.scan(MonoNs(GRACE + MS), &mut m, &mut out);
    assert_eq!(names(&out), ["counters"]);
    assert_eq!(h.stats.unannounced, 1);
    assert_eq!(h.stats.wire_orphaned, 1);
    assert!(m.wire.is_empty());
    // and it is finalized with its socket like any other
    h.on_close(3, MonoNs(GRACE + MS), Finals::default());
    out.clear();
    h.run_due(MonoNs(2 * GRACE + MS), &mut m, &mut out);
    assert_eq!(names(&out), ["counters", "closed"]);
}

#[test]
fn a_map_error_keeps_the_entry_for_later() {
    let mut h = Harvester::new(GRACE, IDLE);
    let mut m = FakeMaps {
        fail: true,
        ..FakeMaps::default()
    };
    let k = key(10, 1, 80);
    m.flows.insert(k, counters(1, 1));
    h.on_open(k, true, MonoNs(0));
    h.on_exit(ProcKey::from_start_ticks(10, 0), MonoNs(0), None);
    let mut out = Vec::new();
    h.run_due(MonoNs(GRACE), &mut m, &mut out);
    assert_eq!(h.stats.map_errors, 1);
    assert_eq!(h.len(), 1, "still indexed");
}
