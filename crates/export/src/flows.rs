//! From netwho's flows to exported flow records: when a record is due
//! (end of flow, active and idle timeouts) and what it holds (deltas since
//! the flow's previous record; both ends of a local connection in one
//! record). Pure: what was seen and the time in, records out.
//!
//! A netwho flow is one end's socket talking to one remote. When both ends
//! are on this host (loopback, or two network namespaces), netwho sees two
//! flows with mirrored endpoints; the exporter makes one record of them,
//! as nProbe does: SRC is the initiator, DST the responder, each with its
//! process. The initiator's side owns the record (its counters cover both
//! directions); the responder's only lends its process. Ends are joined
//! whichever closes first: a record waits `join_wait` after its flow ends
//! for the other end to show up, and an ended flow is remembered for
//! `linger` to lend its process.

pub use crate::msg::Own;
use crate::msg::{Proc, Record};
use netwho_model::{Direction, Payload, Wire};
use rustc_hash::FxHashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// IANA flowEndReason values.
pub mod end {
    /// No traffic for the idle timeout.
    pub const IDLE: u8 = 1;
    /// The active timeout passed while it lasts.
    pub const ACTIVE: u8 = 2;
    /// The flow ended.
    pub const END_OF_FLOW: u8 = 3;
    /// netwho stopped.
    pub const FORCED: u8 = 4;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// When a flow's record is due.
pub struct Timeouts {
    /// A flow that lasts is exported at least this often.
    pub active: Duration,
    /// A flow with traffic not yet exported that has been quiet this long
    /// is exported (its next traffic starts its next record).
    pub idle: Duration,
    /// How long an ended flow's record waits for the other end of a local
    /// connection.
    pub join_wait: Duration,
    /// How long an ended flow is remembered to lend its process.
    pub linger: Duration,
}

impl Default for Timeouts {
    /// nProbe's defaults (`-t 120 -d 30`).
    fn default() -> Self {
        Timeouts {
            active: Duration::from_secs(120),
            idle: Duration::from_secs(30),
            join_wait: Duration::from_secs(1),
            linger: Duration::from_secs(10),
        }
    }
}

/// One end's flow as netwho sees it now (totals since it opened).
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// The flow's id.
    pub id: u64,
    /// IP protocol number.
    pub protocol: u8,
    /// This host's end.
    pub local: SocketAddr,
    /// The other end.
    pub remote: SocketAddr,
    /// Who initiated.
    pub direction: Direction,
    /// The local process.
    pub proc: Proc,
    /// netwho's own fields of it.
    pub own: Own,
    /// IP bytes and packets.
    pub wire: Wire,
    /// Payload bytes.
    pub payload: Payload,
    /// Unix ms.
    pub opened_ms: u64,
}

/// What moves while a flow lives: its counters and its process's
/// resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touch {
    /// IP bytes and packets so far.
    pub wire: Wire,
    /// Payload bytes so far.
    pub payload: Payload,
    /// Resident memory now, bytes.
    pub actual_memory: u64,
    /// Peak resident memory, bytes.
    pub peak_memory: u64,
    /// CPU load, percent × 100.
    pub cpu_load: u32,
    /// Major page faults.
    pub page_faults: u64,
    /// Time waiting for I/O, percent × 100.
    pub iowait: u32,
}

type Tuple = (u8, SocketAddr, SocketAddr);

#[derive(Debug)]
struct Entry {
    seen: Seen,
    /// Totals already exported (by this flow's records, or by the other
    /// end's when it owned them).
    done_wire: Wire,
    done_payload: Payload,
    /// Whether any record covered this flow yet.
    exported: bool,
    /// Start of the next record, Unix ms.
    period_ms: u64,
    /// When the counters last moved.
    changed_ms: u64,
    /// Ended: when, and the end reason.
    closed: Option<(u64, u8)>,
    /// The final record was made (or the other end's will carry it).
    finished: bool,
}

impl Entry {
    fn tuple(&self) -> Tuple {
        (self.seen.protocol, self.seen.local, self.seen.remote)
    }

    fn pending(&self) -> bool {
        self.seen.wire != self.done_wire || self.seen.payload != self.done_payload
    }

    fn mark_done(&mut self, now_ms: u64) {
        self.done_wire = self.seen.wire;
        self.done_payload = self.seen.payload;
        self.period_ms = now_ms;
        self.exported = true;
    }
}

/// The flows being exported.
#[derive(Debug)]
pub struct Flows {
    t: Timeouts,
    entries: FxHashMap<u64, Entry>,
    by_tuple: FxHashMap<Tuple, u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Rank for who owns a local connection's record: the initiator.
fn rank(d: Direction) -> u8 {
    match d {
        Direction::Outbound => 0,
        Direction::Unknown => 1,
        Direction::Inbound => 2,
    }
}

impl Flows {
    /// Flows with timeouts `t`.
    pub fn new(t: Timeouts) -> Flows {
        Flows {
            t,
            entries: FxHashMap::default(),
            by_tuple: FxHashMap::default(),
        }
    }

    /// Flows held (open, or ended and remembered).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no flow.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A flow opened or its counters moved, at `now_ms`.
    pub fn update(&mut self, s: Seen, now_ms: u64) {
        let tuple = (s.protocol, s.local, s.remote);
        match self.entries.get_mut(&s.id) {
            Some(e) => {
                if e.seen.wire != s.wire || e.seen.payload != s.payload {
                    e.changed_ms = now_ms;
                }
                e.seen = s;
            }
            None => {
                let id = s.id;
                let opened = s.opened_ms;
                self.entries.insert(
                    id,
                    Entry {
                        seen: s,
                        done_wire: Wire::default(),
                        done_payload: Payload::default(),
                        exported: false,
                        period_ms: opened,
                        changed_ms: now_ms,
                        closed: None,
                        finished: false,
                    },
                );
                self.by_tuple.insert(tuple, id);
            }
        }
    }

    /// The counters and resources of a flow already known moved: the
    /// cheap path for updates (no text is copied). False if the flow is
    /// not known (give all of it to [`update`](Self::update)).
    pub fn touch(&mut self, id: u64, t: Touch, now_ms: u64) -> bool {
        let Some(e) = self.entries.get_mut(&id) else {
            return false;
        };
        if e.seen.wire != t.wire || e.seen.payload != t.payload {
            e.changed_ms = now_ms;
        }
        e.seen.wire = t.wire;
        e.seen.payload = t.payload;
        let p = &mut e.seen.proc;
        p.actual_memory = t.actual_memory;
        p.peak_memory = t.peak_memory;
        p.cpu_load = t.cpu_load;
        p.page_faults = t.page_faults;
        p.iowait = t.iowait;
        true
    }

    /// A known flow's names now (a ClientHello read after it opened adds
    /// its server name): its next records carry them. Copies text only
    /// when they changed.
    pub fn rename(&mut self, id: u64, names: [&str; 4]) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        let o = &mut e.seen.own;
        let now = [
            o.rname.as_str(),
            o.rname_source.as_str(),
            o.sni.as_str(),
            o.alpn.as_str(),
        ];
        if now != names {
            let [rname, source, sni, alpn] = names;
            o.rname = rname.to_string();
            o.rname_source = source.to_string();
            o.sni = sni.to_string();
            o.alpn = alpn.to_string();
        }
    }

    /// A known flow ended (see [`touch`](Self::touch)); false if unknown.
    pub fn touch_close(&mut self, id: u64, t: Touch, now_ms: u64, reason: u8) -> bool {
        if !self.touch(id, t, now_ms) {
            return false;
        }
        if let Some(e) = self.entries.get_mut(&id)
            && e.closed.is_none()
        {
            e.closed = Some((now_ms, reason));
        }
        true
    }

    /// A process exited with these figures: its flows whose records are
    /// still to be made and that have none (it was never sampled) take them.
    pub fn process_final(&mut self, pid: u32, start_ticks: u64, rss: u64, peak: u64, faults: u64) {
        for e in self.entries.values_mut() {
            let p = &mut e.seen.proc;
            if e.finished || p.pid != pid || p.start_ticks != start_ticks {
                continue;
            }
            if p.actual_memory == 0 && p.peak_memory == 0 {
                p.actual_memory = rss;
                p.peak_memory = peak.max(rss);
            }
            if p.page_faults == 0 {
                p.page_faults = faults;
            }
        }
    }

    /// A flow ended, with its final counters.
    pub fn close(&mut self, s: Seen, now_ms: u64, reason: u8) {
        let id = s.id;
        self.update(s, now_ms);
        if let Some(e) = self.entries.get_mut(&id)
            && e.closed.is_none()
        {
            e.closed = Some((now_ms, reason));
        }
    }

    /// The other end of `id`'s connection, if it is a flow of this host.
    fn mirror(&self, id: u64) -> Option<u64> {
        let e = self.entries.get(&id)?;
        let (p, l, r) = e.tuple();
        self.by_tuple.get(&(p, r, l)).copied().filter(|m| *m != id)
    }

    /// Whether `id`'s record carries its connection (not the other end's).
    fn owns(&self, id: u64, mirror: u64) -> bool {
        match (self.entries.get(&id), self.entries.get(&mirror)) {
            (Some(a), Some(b)) => {
                let key = |e: &Entry| (rank(e.seen.direction), e.seen.local);
                key(a) <= key(b)
            }
            _ => true,
        }
    }

    /// The records due at `now_ms`, and forgets flows ended long enough.
    pub fn sweep(&mut self, now_ms: u64) -> Vec<Record> {
        let mut out = Vec::new();
        let ids: Vec<u64> = self.entries.keys().copied().collect();
        for id in ids {
            self.consider(id, now_ms, false, &mut out);
        }
        let linger = ms(self.t.linger);
        let gone: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.finished
                    && e.closed
                        .is_some_and(|(c, _)| now_ms >= c.saturating_add(linger))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(e) = self.entries.remove(&id)
                && self.by_tuple.get(&e.tuple()) == Some(&id)
            {
                self.by_tuple.remove(&e.tuple());
            }
        }
        out
    }

    /// Every flow's last record (netwho stops): those still open end with
    /// "forced end".
    pub fn finish(&mut self, now_ms: u64) -> Vec<Record> {
        let mut out = Vec::new();
        let mut ids: Vec<u64> = self.entries.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.consider(id, now_ms, true, &mut out);
        }
        self.entries.clear();
        self.by_tuple.clear();
        out
    }

    fn consider(&mut self, id: u64, now_ms: u64, all: bool, out: &mut Vec<Record>) {
        let Some(e) = self.entries.get(&id) else {
            return;
        };
        if e.finished {
            return;
        }
        let mirror = self.mirror(id);
        let ended = e
            .closed
            .filter(|(c, _)| all || now_ms >= c.saturating_add(ms(self.t.join_wait)));
        if let Some(m) = mirror
            && !self.owns(id, m)
        {
            // the other end's record carries this connection
            if ended.is_some()
                && let Some(e) = self.entries.get_mut(&id)
            {
                e.finished = true;
            }
            return;
        }
        let reason = match ended {
            Some((_, r)) => Some(r),
            None if e.closed.is_some() => None,
            None if all => Some(end::FORCED),
            None if !e.pending() => None,
            None if now_ms >= e.period_ms.saturating_add(ms(self.t.active)) => Some(end::ACTIVE),
            None if now_ms >= e.changed_ms.saturating_add(ms(self.t.idle)) => Some(end::IDLE),
            None => None,
        };
        let Some(reason) = reason else {
            return;
        };
        let end_ms = match (e.closed, reason) {
            (Some((c, _)), _) => c,
            (None, end::IDLE) => e.changed_ms,
            _ => now_ms,
        };
        // an ended flow always has a record (if nothing did before);
        // otherwise a record only for traffic not yet exported
        if e.pending() || !e.exported {
            out.push(self.record(id, mirror, end_ms, reason));
        }
        if let Some(e) = self.entries.get_mut(&id) {
            e.mark_done(end_ms);
            e.finished = e.closed.is_some() || all;
        }
        if let Some(m) = mirror.and_then(|m| self.entries.get_mut(&m)) {
            m.mark_done(end_ms);
        }
    }

    fn record(&self, id: u64, mirror: Option<u64>, end_ms: u64, reason: u8) -> Record {
        let e = &self.entries[&id];
        let s = &e.seen;
        let m = mirror.and_then(|m| self.entries.get(&m));
        let wire = s.wire.saturating_sub(e.done_wire);
        let pay = s.payload.saturating_sub(e.done_payload);
        // the initiator is SRC: this end, unless the remote called it
        let local_first = m.is_some() || s.direction != Direction::Inbound;
        let (src, dst) = if local_first {
            (s.local, s.remote)
        } else {
            (s.remote, s.local)
        };
        let (fwd, back) = (
            (wire.bytes_sent, wire.packets_sent, pay.bytes_sent),
            (wire.bytes_recv, wire.packets_recv, pay.bytes_recv),
        );
        let (fwd, back) = if local_first {
            (fwd, back)
        } else {
            (back, fwd)
        };
        let me = Some(s.proc.clone());
        let other = m.map(|m| m.seen.proc.clone());
        let (src_proc, dst_proc) = if local_first {
            (me, other)
        } else {
            (other, me)
        };
        Record {
            src: src.ip(),
            dst: dst.ip(),
            src_port: src.port(),
            dst_port: dst.port(),
            protocol: s.protocol,
            octets: fwd.0,
            packets: fwd.1,
            payload: fwd.2,
            rev_octets: back.0,
            rev_packets: back.1,
            rev_payload: back.2,
            start_ms: e.period_ms,
            end_ms,
            end_reason: reason,
            direction: u8::from(s.direction != Direction::Inbound),
            src_proc,
            dst_proc,
            own: s.own.clone(),
            dst_own: m.map(|m| m.seen.own.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: u64, local: &str, remote: &str, d: Direction, pid: u32, sent: u64) -> Seen {
        Seen {
            id,
            protocol: 6,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            direction: d,
            proc: Proc {
                pid,
                name: format!("p{pid}"),
                ..Proc::default()
            },
            own: Own {
                uid: pid,
                ..Own::default()
            },
            wire: Wire {
                bytes_sent: sent,
                bytes_recv: sent / 2,
                packets_sent: sent / 100,
                packets_recv: sent / 200,
            },
            payload: Payload {
                bytes_sent: sent / 2,
                bytes_recv: sent / 4,
            },
            opened_ms: 1_000,
        }
    }

    const C: &str = "10.231.0.1:40000";
    const S: &str = "10.231.0.2:80";

    #[test]
    fn a_process_never_sampled_gets_its_final_figures_at_exit() {
        let mut f = Flows::new(Timeouts::default());
        let mut s = seen(
            1,
            "10.0.0.1:40000",
            "10.0.0.2:80",
            Direction::Outbound,
            42,
            100,
        );
        s.proc.start_ticks = 7;
        f.close(s, 1_000, end::END_OF_FLOW);
        // another process's exit, and a reused pid's: nothing changes
        f.process_final(43, 7, 5000, 6000, 1);
        f.process_final(42, 8, 5000, 6000, 1);
        f.process_final(42, 7, 4096, 8192, 3);
        let recs = f.finish(2_000);
        let p = recs[0].src_proc.as_ref().expect("the process");
        assert_eq!(
            (p.actual_memory, p.peak_memory, p.page_faults),
            (4096, 8192, 3)
        );
        // a sampled process keeps what its flow saw
        let mut f = Flows::new(Timeouts::default());
        let mut s = seen(
            2,
            "10.0.0.1:40001",
            "10.0.0.2:80",
            Direction::Outbound,
            42,
            100,
        );
        s.proc.actual_memory = 1;
        s.proc.peak_memory = 2;
        f.close(s, 1_000, end::END_OF_FLOW);
        f.process_final(42, 0, 4096, 8192, 3);
        let recs = f.finish(2_000);
        let p = recs[0].src_proc.as_ref().expect("the process");
        assert_eq!((p.actual_memory, p.peak_memory), (1, 2));
    }

    #[test]
    fn an_ended_flow_is_one_record_after_the_join_wait() {
        let mut f = Flows::new(Timeouts::default());
        f.update(seen(1, C, S, Direction::Outbound, 10, 0), 1_000);
        f.close(seen(1, C, S, Direction::Outbound, 10, 1_000), 1_500, 3);
        assert!(f.sweep(2_000).is_empty(), "waits for the other end");
        let r = f.sweep(2_500);
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(
            (r.src.to_string(), r.src_port),
            ("10.231.0.1".into(), 40000)
        );
        assert_eq!((r.octets, r.packets, r.payload), (1_000, 10, 500));
        assert_eq!((r.rev_octets, r.rev_packets, r.rev_payload), (500, 5, 250));
        assert_eq!((r.start_ms, r.end_ms, r.end_reason), (1_000, 1_500, 3));
        assert_eq!(r.src_proc.as_ref().map(|p| p.pid), Some(10));
        assert!(r.dst_proc.is_none());
        assert!(f.sweep(20_000).is_empty());
        assert!(f.is_empty(), "forgotten after the linger");
    }

    #[test]
    fn an_inbound_flow_has_the_remote_as_src() {
        let mut f = Flows::new(Timeouts::default());
        f.close(seen(1, S, C, Direction::Inbound, 20, 1_000), 1_500, 3);
        let r = f.sweep(3_000);
        let r = &r[0];
        assert_eq!(r.src.to_string(), "10.231.0.1");
        assert_eq!((r.octets, r.rev_octets), (500, 1_000));
        assert_eq!((r.payload, r.rev_payload), (250, 500));
        assert_eq!(r.dst_proc.as_ref().map(|p| p.pid), Some(20));
        assert!(r.src_proc.is_none());
        assert_eq!(r.direction, 0);
    }

    #[test]
    fn both_ends_of_a_local_connection_make_one_record_whichever_ends_first() {
        for server_first in [false, true] {
            let mut f = Flows::new(Timeouts::default());
            let client = seen(1, C, S, Direction::Outbound, 10, 1_000);
            let server = seen(2, S, C, Direction::Inbound, 20, 500);
            if server_first {
                f.close(server, 1_400, 3);
                assert!(f.sweep(1_450).is_empty());
                f.close(client, 1_500, 3);
            } else {
                f.close(client, 1_400, 3);
                // the server's flow shows up late (its open after the close)
                f.close(server, 1_500, 3);
            }
            let mut all = f.sweep(3_000);
            all.extend(f.sweep(30_000));
            assert_eq!(all.len(), 1, "{server_first}: {all:?}");
            let r = &all[0];
            assert_eq!(r.src_port, 40000);
            assert_eq!(r.src_proc.as_ref().map(|p| p.pid), Some(10));
            assert_eq!(r.dst_proc.as_ref().map(|p| p.pid), Some(20));
            // each end's own fields: the initiator's as the record's
            assert_eq!(
                (r.own.uid, r.dst_own.as_ref().map(|o| o.uid)),
                (10, Some(20))
            );
            assert_eq!((r.octets, r.rev_octets), (1_000, 500));
        }
    }

    #[test]
    fn active_and_idle_timeouts_export_deltas() {
        let t = Timeouts {
            active: Duration::from_secs(10),
            idle: Duration::from_secs(3),
            ..Timeouts::default()
        };
        let mut f = Flows::new(t);
        f.update(seen(1, C, S, Direction::Outbound, 10, 100), 1_000);
        for (at, sent) in [(2_000, 200), (5_000, 300), (9_000, 400)] {
            f.update(seen(1, C, S, Direction::Outbound, 10, sent), at);
            assert!(f.sweep(at).is_empty());
        }
        // active: 10 s after it opened, with traffic pending
        f.update(seen(1, C, S, Direction::Outbound, 10, 500), 11_000);
        let r = f.sweep(11_000);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].octets, r[0].end_reason), (500, end::ACTIVE));
        assert_eq!((r[0].start_ms, r[0].end_ms), (1_000, 11_000));
        // idle: traffic, then 3 s of quiet
        f.update(seen(1, C, S, Direction::Outbound, 10, 700), 12_000);
        assert!(f.sweep(14_000).is_empty());
        let r = f.sweep(15_000);
        assert_eq!((r[0].octets, r[0].end_reason), (200, end::IDLE));
        assert_eq!((r[0].start_ms, r[0].end_ms), (11_000, 12_000));
        // quiet and nothing pending: nothing
        assert!(f.sweep(60_000).is_empty());
        // the end: what is left, and the whole is the total
        f.close(seen(1, C, S, Direction::Outbound, 10, 750), 61_000, 3);
        let r = f.sweep(62_000);
        assert_eq!((r[0].octets, r[0].end_reason), (50, end::END_OF_FLOW));
    }

    #[test]
    fn a_stop_exports_every_flow_with_its_remainder() {
        let mut f = Flows::new(Timeouts::default());
        f.update(seen(1, C, S, Direction::Outbound, 10, 100), 1_000);
        f.update(seen(2, S, C, Direction::Inbound, 20, 50), 1_000);
        f.update(
            seen(3, "10.231.0.1:40001", S, Direction::Outbound, 11, 0),
            1_000,
        );
        let r = f.finish(5_000);
        // one joined record, one for the flow without traffic yet
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|r| r.end_reason == end::FORCED));
        assert!(f.is_empty());
    }
}
