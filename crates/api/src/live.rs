//! The daemon's live state: a pipeline [`Sink`] ([`LiveSink`]) folds flow
//! events into the flows open now (and those closed in the last few
//! seconds), per-process totals and the metrics' series, and publishes
//! them once per interval: into [`Live`]'s shared state (what `GET
//! /api/v1/flows` and `/processes` read) and as one [`LiveBatch`] on a
//! bounded broadcast channel (what event streams and `top --connect`
//! follow).
//!
//! The sink never waits for a reader: the state is behind a mutex held
//! for one publish at a time, and a reader that falls more than
//! [`BATCHES`] intervals behind is told so and dropped (counted in
//! `lagged`), never slowing the collector.

use netwho_model::record::{Context, Names};
use netwho_model::time::WallClock;
use netwho_model::{Flow, FlowEvent, FlowKey, MonoNs, Payload, ProcInfo, ProcKey, Wire, nanos};
use netwho_sink::series::{Series, Slot};
use netwho_sink::status::StatusRecord;
use netwho_sink::{RecordRef, Sink, SinkControl};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;

/// Batches a reader may fall behind before it is dropped.
pub const BATCHES: usize = 64;

/// How the live state is kept.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Batches are published this often.
    pub interval: Duration,
    /// Closed flows and exited processes stay visible this long.
    pub keep_closed: Duration,
    /// Closed flows kept at most (the oldest go first; counted).
    pub max_closed: usize,
    /// Metric series (label sets) at most; later ones are summed in `other`.
    pub max_series: usize,
    /// Series one uid's processes may create (its share of `max_series`).
    pub max_series_per_uid: usize,
    /// Which labels the metrics carry (`unit`, `user`, `exe`).
    pub labels: netwho_sink::series::Labels,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            interval: Duration::from_secs(1),
            keep_closed: Duration::from_secs(10),
            max_closed: 10_000,
            max_series: 200,
            max_series_per_uid: netwho_sink::series::default_per_uid(200),
            labels: netwho_sink::series::Labels::default(),
        }
    }
}

/// A flow as last seen.
#[derive(Clone, Debug)]
pub struct FlowView {
    /// The flow.
    pub flow: Flow,
    /// Its names, hash and resources.
    pub ctx: Context,
    /// It has closed.
    pub closed: bool,
    /// When it was last updated (boot time).
    pub at: MonoNs,
    /// The flow as it was announced, if that was in this batch's interval
    /// (a live recording begins it with its open, as a local run does).
    pub open: Option<Arc<Opened>>,
}

/// A flow at its announcement: what an `open` record says.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The flow then.
    pub flow: Flow,
    /// Its context then.
    pub ctx: Context,
    /// When (boot time).
    pub at: MonoNs,
}

/// A process with traffic, as `top` shows it.
#[derive(Clone, Debug)]
pub struct ProcView {
    /// The process.
    pub key: ProcKey,
    /// What it runs.
    pub info: Arc<ProcInfo>,
    /// Its names.
    pub names: Arc<Names>,
    /// Its effective uid.
    pub uid: u32,
    /// Totals since netwho first saw its traffic.
    pub payload: Payload,
    /// Their IP bytes.
    pub wire: Wire,
    /// Open flows now.
    pub flows_open: u64,
    /// Flows since netwho first saw it.
    pub flows_total: u64,
    /// Payload bytes per second over the last interval.
    pub rate_sent: f64,
    /// See `rate_sent`.
    pub rate_recv: f64,
    /// Its last traffic (boot time).
    pub last_active: MonoNs,
    /// When it exited.
    pub exited: Option<MonoNs>,
    /// Totals at the last publish (for the rates).
    prev: Payload,
    /// Its metric series, and the names it was found for.
    slot: Option<(Slot, Arc<Names>)>,
}

/// What changed in one interval.
#[derive(Debug)]
pub struct LiveBatch {
    /// The batch's number.
    pub seq: u64,
    /// Its time (boot time).
    pub now: MonoNs,
    /// The boot-to-Unix offset then.
    pub wall: WallClock,
    /// Flows updated, opened or closed in the interval (latest state).
    pub flows: Vec<Arc<FlowView>>,
    /// Every process with traffic now (rates over this interval).
    pub procs: Arc<Vec<ProcView>>,
    /// The status record emitted in the interval, if any.
    pub status: Option<Arc<StatusRecord>>,
}

/// The shared state readers see.
#[derive(Debug, Default)]
pub struct LiveState {
    /// The last batch's number.
    pub seq: u64,
    /// Its time.
    pub now: MonoNs,
    /// The boot-to-Unix offset then.
    pub wall: WallClock,
    /// Flows held (open, and closed in the last seconds).
    pub flows: FxHashMap<FlowKey, Arc<FlowView>>,
    /// Processes with traffic.
    pub procs: Arc<Vec<ProcView>>,
    /// The latest status record.
    pub status: Option<Arc<StatusRecord>>,
    /// As of the last publish.
    pub series: Series,
    /// Flow events seen, closed flows let go early (over `max_closed`).
    pub events: u64,
    /// See `events`.
    pub closed_evicted: u64,
}

impl LiveState {
    /// See [`Live::snapshot`].
    pub fn snapshot(&self, flows: bool) -> Snapshot {
        Snapshot {
            seq: self.seq,
            now: self.now,
            wall: self.wall,
            flows: if flows {
                self.flows.values().cloned().collect()
            } else {
                Vec::new()
            },
            procs: Arc::clone(&self.procs),
            status: self.status.clone(),
        }
    }
}

/// The live state at one publish.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The batch's number.
    pub seq: u64,
    /// Its time.
    pub now: MonoNs,
    /// The boot-to-Unix offset then.
    pub wall: WallClock,
    /// The flows (when asked for).
    pub flows: Vec<Arc<FlowView>>,
    /// Processes with traffic.
    pub procs: Arc<Vec<ProcView>>,
    /// The latest status record.
    pub status: Option<Arc<StatusRecord>>,
}

/// The live state and the channel its batches go out on.
#[derive(Debug)]
pub struct Live {
    state: Mutex<LiveState>,
    /// None once closed: readers' streams end.
    tx: Mutex<Option<broadcast::Sender<Arc<LiveBatch>>>>,
    /// How it folds and publishes.
    pub cfg: LiveConfig,
    /// Readers dropped for falling behind.
    pub lagged: AtomicU64,
}

impl Live {
    /// An empty live state.
    pub fn new(cfg: LiveConfig) -> Arc<Live> {
        let (tx, _) = broadcast::channel(BATCHES);
        let state = LiveState {
            series: Series::new(cfg.max_series, cfg.max_series_per_uid, cfg.labels),
            ..LiveState::default()
        };
        Arc::new(Live {
            state: Mutex::new(state),
            tx: Mutex::new(Some(tx)),
            cfg,
            lagged: AtomicU64::new(0),
        })
    }

    /// The state (a poisoned lock still holds consistent data: every
    /// update under it is a plain assignment).
    pub fn state(&self) -> MutexGuard<'_, LiveState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state now and every batch after it, with nothing between
    /// (taken under the lock the publisher holds).
    pub fn subscribe(
        &self,
    ) -> (
        MutexGuard<'_, LiveState>,
        broadcast::Receiver<Arc<LiveBatch>>,
    ) {
        let st = self.state();
        let rx = match &*self.sender() {
            Some(tx) => tx.subscribe(),
            // closed: a channel that ends at once
            None => broadcast::channel(1).1,
        };
        (st, rx)
    }

    fn sender(&self) -> MutexGuard<'_, Option<broadcast::Sender<Arc<LiveBatch>>>> {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// No more batches: every reader's stream ends after what it has.
    pub fn close(&self) {
        self.sender().take();
    }

    /// Readers following the batches.
    pub fn subscribers(&self) -> usize {
        self.sender()
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// What readers need of the state, copied (pointers only) under the
    /// lock so that their work happens after it is released: the
    /// collector never waits for a reader. `flows`: whether to copy the
    /// flows held.
    pub fn snapshot(&self, flows: bool) -> Snapshot {
        let st = self.state();
        st.snapshot(flows)
    }

    /// A reader was dropped for falling behind.
    pub fn note_lagged(&self) {
        self.lagged.fetch_add(1, Ordering::Relaxed);
    }
}

/// The collector's side.
#[derive(Debug)]
pub struct LiveSink {
    live: Arc<Live>,
    next: Option<MonoNs>,
    /// Updated since the last publish.
    pending: FxHashMap<FlowKey, Arc<FlowView>>,
    /// Last counters of each open flow (for deltas).
    last: FxHashMap<FlowKey, (Payload, Wire)>,
    /// Per process and the uid its flows ran as: a process that changed
    /// its uid (a server that drops privileges, `su`) is one row per uid,
    /// so that each uid's caller sees only the traffic made under it.
    procs: FxHashMap<(ProcKey, u32), ProcView>,
    status: Option<Arc<StatusRecord>>,
    last_publish: Option<MonoNs>,
    events: u64,
    /// The metric series, copied into the shared state at each publish
    /// (so that counting an event takes no lock).
    series: Series,
}

impl LiveSink {
    /// A sink folding flow events into `live`.
    pub fn new(live: Arc<Live>) -> LiveSink {
        let series = Series::new(
            live.cfg.max_series,
            live.cfg.max_series_per_uid,
            live.cfg.labels,
        );
        LiveSink {
            series,
            live,
            next: None,
            pending: FxHashMap::default(),
            last: FxHashMap::default(),
            procs: FxHashMap::default(),
            status: None,
            last_publish: None,
            events: 0,
        }
    }

    fn publish(&mut self, now: MonoNs, wall: WallClock) {
        let cfg = &self.live.cfg;
        let keep = nanos(cfg.keep_closed);
        let secs = self
            .last_publish
            .map(|t| now.since(t) as f64 / 1e9)
            .filter(|s| *s > 0.0);
        self.last_publish = Some(now);
        self.procs.retain(|_, p| {
            p.exited
                .is_none_or(|t| p.flows_open > 0 || now.since(t) < keep)
        });
        let mut procs: Vec<ProcView> = Vec::with_capacity(self.procs.len());
        for p in self.procs.values_mut() {
            let d = p.payload.saturating_sub(p.prev);
            p.prev = p.payload;
            (p.rate_sent, p.rate_recv) = match secs {
                Some(s) => (d.bytes_sent as f64 / s, d.bytes_recv as f64 / s),
                None => (0.0, 0.0),
            };
            procs.push(p.clone());
        }
        procs.sort_by(|a, b| {
            let ra = a.rate_sent + a.rate_recv;
            let rb = b.rate_sent + b.rate_recv;
            rb.total_cmp(&ra)
                .then(b.payload.total().cmp(&a.payload.total()))
                .then(a.key.tgid.cmp(&b.key.tgid))
        });
        let procs = Arc::new(procs);
        let flows: Vec<Arc<FlowView>> = self.pending.drain().map(|(_, v)| v).collect();
        let status = self.status.take();
        let mut st = self.live.state();
        for v in &flows {
            // the state holds the flow as it is now; its announcement is
            // for this batch's readers only
            let held = if v.open.is_some() {
                Arc::new(FlowView {
                    open: None,
                    ..(**v).clone()
                })
            } else {
                Arc::clone(v)
            };
            st.flows.insert(v.flow.key, held);
        }
        st.flows.retain(|_, v| !v.closed || now.since(v.at) < keep);
        let closed = st.flows.values().filter(|v| v.closed).count();
        if closed > cfg.max_closed {
            let mut old: Vec<(MonoNs, FlowKey)> = st
                .flows
                .values()
                .filter(|v| v.closed)
                .map(|v| (v.at, v.flow.key))
                .collect();
            old.sort_unstable_by_key(|(at, _)| *at);
            for (_, k) in old.iter().take(closed - cfg.max_closed) {
                st.flows.remove(k);
            }
            st.closed_evicted += (closed - cfg.max_closed) as u64;
        }
        st.seq += 1;
        st.now = now;
        st.wall = wall;
        st.procs = Arc::clone(&procs);
        st.events = self.events;
        st.series.clone_from(&self.series);
        if let Some(s) = &status {
            st.status = Some(Arc::clone(s));
        }
        let batch = Arc::new(LiveBatch {
            seq: st.seq,
            now,
            wall,
            flows,
            procs,
            status,
        });
        // no reader is fine; the state is there for the next one
        if let Some(tx) = &*self.live.sender() {
            let _ = tx.send(batch);
        }
    }
}

impl Sink for LiveSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.events += 1;
        let f = ev.flow();
        let now = rec.now();
        let ctx = rec.context().clone();
        let closed = matches!(ev, FlowEvent::Closed(_));
        let prev = if closed {
            self.last.remove(&f.key)
        } else {
            self.last.insert(f.key, (f.payload, f.wire))
        };
        let is_new = prev.is_none();
        let (p0, w0) = prev.unwrap_or_default();
        let dp = f.payload.saturating_sub(p0);
        let dw = f.wire.saturating_sub(w0);
        let p = self
            .procs
            .entry((f.key.proc, f.uid))
            .or_insert_with(|| ProcView {
                key: f.key.proc,
                info: Arc::clone(&f.proc),
                names: Arc::clone(&ctx.names),
                uid: f.uid,
                payload: Payload::default(),
                wire: Wire::default(),
                flows_open: 0,
                flows_total: 0,
                rate_sent: 0.0,
                rate_recv: 0.0,
                last_active: now,
                exited: None,
                prev: Payload::default(),
                slot: None,
            });
        p.payload = p.payload.saturating_add(dp);
        p.wire = p.wire.saturating_add(dw);
        p.names = Arc::clone(&ctx.names);
        if dp.total() > 0 {
            p.last_active = now;
        }
        match (is_new, closed) {
            (true, false) => {
                p.flows_open += 1;
                p.flows_total += 1;
            }
            (true, true) => p.flows_total += 1,
            (false, true) => p.flows_open = p.flows_open.saturating_sub(1),
            (false, false) => {}
        }
        if dp.total() > 0 || is_new {
            // found once per process (again if its names changed)
            let slot = match p.slot {
                Some((slot, ref names)) if Arc::ptr_eq(names, &ctx.names) => slot,
                _ => {
                    let slot = self.series.slot(f.uid, &ctx.names, &f.proc.exe);
                    p.slot = Some((slot, Arc::clone(&ctx.names)));
                    slot
                }
            };
            self.series.add_at(slot, dp, u64::from(is_new));
        }
        let open = match ev {
            FlowEvent::Opened(_) => Some(Arc::new(Opened {
                flow: f.clone(),
                ctx: ctx.clone(),
                at: now,
            })),
            // opened earlier in this interval
            _ => self.pending.get(&f.key).and_then(|v| v.open.clone()),
        };
        self.pending.insert(
            f.key,
            Arc::new(FlowView {
                flow: f.clone(),
                ctx,
                closed,
                at: now,
                open,
            }),
        );
    }

    fn status(&mut self, st: &StatusRecord) {
        self.status = Some(Arc::new(st.clone()));
    }

    fn proc_exit(&mut self, proc: ProcKey, at: MonoNs) {
        for ((k, _), p) in &mut self.procs {
            if *k == proc {
                p.exited = Some(at);
            }
        }
    }

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        if self.next.is_none_or(|n| now >= n) {
            self.next = Some(now.add_ns(nanos(self.live.cfg.interval)));
            self.publish(now, wall);
        }
        SinkControl::Continue
    }

    fn updates_every(&self) -> Option<Duration> {
        Some(self.live.cfg.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::Endpoint;

    fn feed(sink: &mut LiveSink, ev: &FlowEvent, at: MonoNs, names: &Arc<Names>) {
        let ctx = Context {
            names: Arc::clone(names),
            ..Context::default()
        };
        let mut lookup = |_: &FlowEvent| ctx.clone();
        let mut rec = RecordRef::new(ev, at, WallClock::default(), &mut lookup);
        sink.event(ev, &mut rec);
    }

    fn tick(sink: &mut LiveSink, at: MonoNs) {
        sink.tick(at, WallClock::default());
    }

    #[test]
    fn processes_add_up_their_flows_and_batches_carry_what_changed() {
        let live = Live::new(LiveConfig::default());
        let (_, mut rx) = {
            let (st, rx) = live.subscribe();
            (st.seq, rx)
        };
        let mut sink = LiveSink::new(Arc::clone(&live));
        let names = Arc::new(Names {
            user: "alice".into(),
            unit: "web.service".into(),
            ..Names::default()
        });
        let remote = Endpoint::new(std::net::IpAddr::from([10, 231, 9, 1]), 80);
        let mut a = Flow::example(100, 1, remote);
        let mut b = Flow::example(100, 2, remote);
        feed(&mut sink, &FlowEvent::Opened(a.clone()), MonoNs(1), &names);
        feed(&mut sink, &FlowEvent::Opened(b.clone()), MonoNs(1), &names);
        a.payload.bytes_sent = 1000;
        b.payload.bytes_recv = 500;
        feed(&mut sink, &FlowEvent::Updated(a.clone()), MonoNs(2), &names);
        feed(&mut sink, &FlowEvent::Closed(b.clone()), MonoNs(2), &names);
        tick(&mut sink, MonoNs(1_000_000_000));
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.flows.len(), 2);
        assert_eq!(batch.procs.len(), 1);
        let p = &batch.procs[0];
        assert_eq!((p.payload.bytes_sent, p.payload.bytes_recv), (1000, 500));
        assert_eq!((p.flows_open, p.flows_total), (1, 2));
        // a later update adds only what moved since
        a.payload.bytes_sent = 1500;
        feed(
            &mut sink,
            &FlowEvent::Updated(a.clone()),
            MonoNs(1_500_000_000),
            &names,
        );
        tick(&mut sink, MonoNs(2_000_000_000));
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.flows.len(), 1);
        let p = &batch.procs[0];
        assert_eq!(p.payload.bytes_sent, 1500);
        assert!((p.rate_sent - 500.0).abs() < 1e-6, "{}", p.rate_sent);
        // the same process, now with a flow under root's uid: a row of its
        // own, so that uid 1000 is never shown root's bytes
        let mut c = Flow::example(100, 3, remote);
        c.uid = 0;
        c.payload.bytes_sent = 7_000;
        feed(
            &mut sink,
            &FlowEvent::Closed(c),
            MonoNs(2_100_000_000),
            &names,
        );
        tick(&mut sink, MonoNs(3_000_000_000));
        let batch = rx.try_recv().unwrap();
        let rows: Vec<(u32, u64)> = batch
            .procs
            .iter()
            .map(|p| (p.uid, p.payload.bytes_sent))
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows.contains(&(0, 7_000)) && rows.contains(&(a.uid, 1500)),
            "{rows:?}"
        );
        let st = live.state();
        assert_eq!(st.flows.len(), 3, "the closed flows stay a while");
        assert_eq!(st.series.total(), (8500, 500, 3));
    }

    #[test]
    fn closed_flows_go_after_their_time_and_over_the_cap() {
        let live = Live::new(LiveConfig {
            max_closed: 3,
            ..LiveConfig::default()
        });
        let mut sink = LiveSink::new(Arc::clone(&live));
        let names = Arc::new(Names::default());
        let remote = Endpoint::new(std::net::IpAddr::from([10, 231, 9, 1]), 80);
        for c in 0..5 {
            let f = Flow::example(100, c, remote);
            feed(&mut sink, &FlowEvent::Closed(f), MonoNs(c + 1), &names);
        }
        tick(&mut sink, MonoNs(1_000_000_000));
        {
            let st = live.state();
            assert_eq!(st.flows.len(), 3);
            assert_eq!(st.closed_evicted, 2);
            // the newest stay
            assert!(st.flows.keys().all(|k| k.cookie.0 >= 2));
        }
        tick(&mut sink, MonoNs(12_000_000_000));
        assert!(live.state().flows.is_empty());
    }
}
