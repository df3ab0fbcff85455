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
        let prev = match ev {
            FlowEvent::Opened(_) => {
                acc.flows_open += 1;
                acc.flows_total += 1;
                self.seen.insert(f.key, Payload::default());
                Payload::default()
            }
            FlowEvent::Updated(_) => self.seen.get(&f.key).copied().unwrap_or_default(),
            FlowEvent::Closed(_) => {
                acc.flows_open = acc.flows_open.saturating_sub(1);
                self.seen.remove(&f.key).unwrap_or_default()
            }
        };
        let d = f.payload.saturating_sub(prev);
        acc.total = acc.total.saturating_add(d);
        acc.interval = acc.interval.saturating_add(d);
        acc.comm.clone_from(&f.comm);
        acc.last_active = now;
        if let Some(u) = usage {
            acc.usage = Some(*u);
        }
        if let FlowEvent::Updated(_) = ev
            && let Some(p) = self.seen.get_mut(&f.key)
        {
            *p = f.payload;
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
