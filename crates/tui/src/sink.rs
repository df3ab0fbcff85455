//! The collector's side: a pipeline [`Sink`] that gathers flow events and
//! hands the view one [`Batch`] per interval over a bounded channel.
//!
//! Nothing is lost when the view falls behind: while the channel is full
//! the batch waits and later events merge into it (a flow's latest state
//! replaces the one before; counters are cumulative), so memory stays
//! bounded by the number of flows, not by time.

use crate::state::{Batch, FlowUpdate};
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, FlowKey, MonoNs, ProcKey, nanos};
use netwho_sink::status::StatusRecord;
use netwho_sink::{RecordRef, Sink, SinkControl};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

/// Batches waiting for the view at most.
const QUEUE: usize = 4;

#[derive(Debug)]
/// The view's sink: flow events folded into one `Batch` per interval, handed to the view over a bounded channel (merged, never dropped, when the view is behind).
pub struct TuiSink {
    tx: SyncSender<Batch>,
    interval: Duration,
    next: Option<MonoNs>,
    flows: FxHashMap<FlowKey, FlowUpdate>,
    exits: Vec<(ProcKey, MonoNs)>,
    status: Option<StatusRecord>,
    restart: bool,
    /// Processes with flows (only their exits matter to the view).
    procs: FxHashSet<ProcKey>,
}

impl TuiSink {
    /// The sink and the view's end of its channel.
    pub fn new(interval: Duration) -> (TuiSink, Receiver<Batch>) {
        let (tx, rx) = sync_channel(QUEUE);
        let sink = TuiSink {
            tx,
            interval,
            next: None,
            flows: FxHashMap::default(),
            exits: Vec::new(),
            status: None,
            restart: false,
            procs: FxHashSet::default(),
        };
        (sink, rx)
    }

    /// Send what was gathered; false if the view is gone.
    fn send(&mut self, now: MonoNs, wall: WallClock) -> bool {
        let b = Batch {
            now,
            wall,
            flows: self.flows.drain().map(|(_, u)| u).collect(),
            exits: std::mem::take(&mut self.exits),
            status: self.status.take(),
            restart: std::mem::take(&mut self.restart),
        };
        match self.tx.try_send(b) {
            Ok(()) => true,
            Err(TrySendError::Full(b)) => {
                // keep it for the next turn; newer events win
                for u in b.flows {
                    self.flows.entry(u.flow.key).or_insert(u);
                }
                self.exits.splice(0..0, b.exits);
                if self.status.is_none() {
                    self.status = b.status;
                }
                self.restart |= b.restart;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

impl Sink for TuiSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        let flow = ev.flow();
        self.procs.insert(flow.key.proc);
        let ctx = rec.context().clone();
        let closed = matches!(ev, FlowEvent::Closed(_));
        self.flows.insert(
            flow.key,
            FlowUpdate {
                flow: flow.clone(),
                ctx,
                closed,
            },
        );
    }

    fn status(&mut self, st: &StatusRecord) {
        self.status = Some(st.clone());
    }

    fn proc_exit(&mut self, proc: ProcKey, at: MonoNs) {
        if self.procs.remove(&proc) {
            self.exits.push((proc, at));
        }
    }

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        let due = self.next.is_none_or(|n| now >= n);
        if !due {
            return SinkControl::Continue;
        }
        self.next = Some(now.add_ns(nanos(self.interval)));
        if self.send(now, wall) {
            SinkControl::Continue
        } else {
            SinkControl::Closed
        }
    }

    fn reset(&mut self) {
        self.flows.clear();
        self.exits.clear();
        self.procs.clear();
        self.next = None;
        self.restart = true;
    }

    fn updates_every(&self) -> Option<Duration> {
        Some(self.interval)
    }
}
