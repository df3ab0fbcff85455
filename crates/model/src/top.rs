//! Per-process totals and rates, folded from flow events: the table behind
//! `netwho top`. Pure: the interval is measured between `snapshot` calls
//! with the times the caller passes.

use crate::flow::{FlowEvent, Payload};
use crate::ids::{FlowKey, MonoNs, ProcKey};
use crate::proc::UsageTrack;
use rustc_hash::FxHashMap;

/// One process in the table.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcRow {
    /// The process.
    pub proc: ProcKey,
    /// Its pid.
    pub pid: u32,
    /// Its uid.
    pub uid: u32,
    /// Its command name.
    pub comm: String,
    /// Payload bytes per second over the last interval.
    pub sent_rate: f64,
    /// See `sent_rate`.
    pub recv_rate: f64,
    /// Payload bytes since netwho started.
    pub bytes_sent: u64,
    /// See `bytes_sent`.
    pub bytes_recv: u64,
    /// Flows open now.
    pub flows_open: u64,
    /// Flows since netwho saw it first.
    pub flows_total: u64,
    /// The process has no open flow left.
    pub idle: bool,
    /// Resident memory and CPU % (100 = one core) from the latest samples.
    pub rss_bytes: Option<u64>,
    /// See `rss_bytes`.
    pub cpu_pct: Option<f64>,
    /// Parent first: (process, comm).
    pub ancestors: Vec<(ProcKey, String)>,
}

impl ProcRow {
    /// Bytes sent and received.
    pub fn total(&self) -> u64 {
        self.bytes_sent.saturating_add(self.bytes_recv)
    }
}

#[derive(Debug)]
struct Acc {
    uid: u32,
    comm: String,
    total: Payload,
    interval: Payload,
    flows_open: u64,
    flows_total: u64,
    last_active: MonoNs,
    usage: Option<UsageTrack>,
    ancestors: Vec<(ProcKey, String)>,
}

/// Folds flow events into per-process rows.
#[derive(Debug)]
pub struct TopTable {
    seen: FxHashMap<FlowKey, Payload>,
    procs: FxHashMap<ProcKey, Acc>,
    last: Option<MonoNs>,
    /// Rows of processes with no open flow are dropped after this long.
    idle_keep_ns: u64,
}

impl TopTable {
    /// A table keeping idle processes `idle_keep_ns`.
    pub fn new(idle_keep_ns: u64) -> Self {
        TopTable {
            seen: FxHashMap::default(),
            procs: FxHashMap::default(),
            last: None,
            idle_keep_ns,
        }
    }

    /// Fold a flow event in; `usage` is its process's latest samples.
    pub fn observe(&mut self, ev: &FlowEvent, now: MonoNs, usage: Option<&UsageTrack>) {
        let f = ev.flow();
        let acc = self.procs.entry(f.key.proc).or_insert_with(|| Acc {
            usage: None,
            ancestors: f
                .proc
                .ancestors()
                .map(|a| (a.key, a.comm.clone()))
                .collect(),
            uid: f.uid,
            comm: f.comm.clone(),
            total: Payload::default(),
            interval: Payload::default(),
            flows_open: 0,
            flows_total: 0,
            last_active: now,
        });
        // The first event of a flow counts it, whatever its kind: a
        // recording or a stream that starts while the flow is open, or a
        // flow that opened and closed between two batches, begins with an
        // update or a close. Every event leaves the counters it carried, so
        // each byte is counted once.
        let prev = match ev {
            FlowEvent::Closed(_) => self.seen.remove(&f.key),
            _ => self.seen.insert(f.key, f.payload),
        };
        match (prev.is_some(), ev) {
            (false, FlowEvent::Closed(_)) => acc.flows_total += 1,
            (false, _) => {
                acc.flows_open += 1;
                acc.flows_total += 1;
            }
            (true, FlowEvent::Closed(_)) => {
                acc.flows_open = acc.flows_open.saturating_sub(1);
            }
            (true, _) => {}
        }
        let d = f.payload.saturating_sub(prev.unwrap_or_default());
        acc.total = acc.total.saturating_add(d);
        acc.interval = acc.interval.saturating_add(d);
        acc.comm.clone_from(&f.comm);
        acc.last_active = now;
        if let Some(u) = usage {
            acc.usage = Some(*u);
        }
    }

    /// Rows sorted by total bytes (largest first), with rates over the time
    /// since the previous snapshot; starts a new interval.
    pub fn snapshot(&mut self, now: MonoNs) -> Vec<ProcRow> {
        let secs = self.last.map_or(0.0, |l| now.since(l) as f64 / 1e9);
        self.last = Some(now);
        let keep = self.idle_keep_ns;
        self.procs
            .retain(|_, a| a.flows_open > 0 || now.since(a.last_active) < keep);
        let mut rows: Vec<ProcRow> = self
            .procs
            .iter_mut()
            .map(|(k, a)| {
                let rate = |b: u64| if secs > 0.0 { b as f64 / secs } else { 0.0 };
                let row = ProcRow {
                    proc: *k,
                    pid: k.tgid,
                    uid: a.uid,
                    comm: a.comm.clone(),
                    sent_rate: rate(a.interval.bytes_sent),
                    recv_rate: rate(a.interval.bytes_recv),
                    bytes_sent: a.total.bytes_sent,
                    bytes_recv: a.total.bytes_recv,
                    flows_open: a.flows_open,
                    flows_total: a.flows_total,
                    idle: a.flows_open == 0,
                    rss_bytes: a.usage.map(|u| u.last.rss_bytes),
                    cpu_pct: a.usage.and_then(|u| u.recent_cpu_pct()),
                    ancestors: a.ancestors.clone(),
                };
                a.interval = Payload::default();
                row
            })
            .collect();
        rows.sort_by(|a, b| b.total().cmp(&a.total()).then(a.proc.cmp(&b.proc)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Endpoint;
    use crate::flow::Flow;

    fn flow(cookie: u64, sent: u64, recv: u64) -> Flow {
        let mut f = Flow::example(4242, cookie, Endpoint::new([10, 231, 0, 2].into(), 80));
        f.payload.bytes_sent = sent;
        f.payload.bytes_recv = recv;
        f
    }

    fn row(t: &mut TopTable, at: u64) -> (u64, u64, u64, u64) {
        let rows = t.snapshot(MonoNs(at));
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        (r.bytes_sent, r.bytes_recv, r.flows_open, r.flows_total)
    }

    /// What a live stream or a recording started mid-flow hands the view:
    /// flows first seen by an update or a close. Each byte once, each
    /// flow once.
    #[test]
    fn flows_first_seen_late_count_once() {
        let mut t = TopTable::new(60_000_000_000);
        // a download seen only through its updates, growing
        for (i, sent) in [3_800, 5_700, 9_500].into_iter().enumerate() {
            t.observe(
                &FlowEvent::Updated(flow(1, sent, 10)),
                MonoNs(i as u64),
                None,
            );
        }
        assert_eq!(row(&mut t, 10), (9_500, 10, 1, 1));
        // a flow that opened and closed between two batches
        t.observe(&FlowEvent::Closed(flow(2, 1_000, 0)), MonoNs(11), None);
        t.observe(&FlowEvent::Closed(flow(1, 9_500, 10)), MonoNs(12), None);
        assert_eq!(row(&mut t, 20), (10_500, 10, 0, 2));
    }

    /// An open that already carries bytes (counters overtake the
    /// announcement), then the same counters again: not counted twice.
    #[test]
    fn an_open_with_bytes_is_counted_once() {
        let mut t = TopTable::new(60_000_000_000);
        t.observe(&FlowEvent::Opened(flow(1, 500, 5)), MonoNs(1), None);
        t.observe(&FlowEvent::Updated(flow(1, 500, 5)), MonoNs(2), None);
        t.observe(&FlowEvent::Updated(flow(1, 700, 5)), MonoNs(3), None);
        t.observe(&FlowEvent::Closed(flow(1, 1_005, 5)), MonoNs(4), None);
        assert_eq!(row(&mut t, 10), (1_005, 5, 0, 1));
    }
}
