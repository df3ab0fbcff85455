//! The sink contract: what every output of netwho implements and receives.
//!
//! Place: between the pipeline and the outputs. A [`Sink`] is given each
//! flow event with its record built on demand ([`RecordRef`]), the status
//! records ([`status::StatusRecord`]) and the time; it writes through an
//! [`output::Output`], a bounded queue whose overflow is counted, to a
//! [`output::Destination`]. The filter's view of a flow is
//! [`subject::FlowSubject`]; a viewer steers a replay with
//! [`replay::ReplayCmd`]. Nothing here reads a clock or touches the
//! kernel: outputs (the view, the API, the exporters, the fleet) depend on
//! this crate, never on the sensor.

#![warn(missing_docs)]

pub mod benchkit;
pub mod fmt;
pub mod output;
pub mod replay;
pub mod series;
pub mod status;
pub mod subject;

use netwho_model::record::{Context, FlowRecord};
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, MonoNs, ProcKey, Usage};
use status::StatusRecord;
use std::time::Duration;

/// A flow event's record, built only if a sink asks for it.
#[expect(missing_debug_implementations, reason = "holds a closure")]
pub struct RecordRef<'a> {
    ev: &'a FlowEvent,
    now: MonoNs,
    wall: WallClock,
    lookup: &'a mut dyn FnMut(&FlowEvent) -> Context,
    ctx: Option<Context>,
}

impl<'a> RecordRef<'a> {
    /// The record of `ev` at `now`; `lookup` finds its context (names,
    /// hash, resources) if a sink asks.
    pub fn new(
        ev: &'a FlowEvent,
        now: MonoNs,
        wall: WallClock,
        lookup: &'a mut dyn FnMut(&FlowEvent) -> Context,
    ) -> Self {
        RecordRef {
            ev,
            now,
            wall,
            lookup,
            ctx: None,
        }
    }

    /// When the event happened (boot time), and the wall clock then.
    pub fn now(&self) -> MonoNs {
        self.now
    }

    /// The wall clock in effect (boot time to Unix time).
    pub fn wall(&self) -> WallClock {
        self.wall
    }

    /// Names, hash and resources of the flow (looked up once, on first use).
    pub fn context(&mut self) -> &Context {
        let (ev, lookup) = (self.ev, &mut self.lookup);
        self.ctx.get_or_insert_with(|| (lookup)(ev))
    }

    /// The record.
    pub fn get(&mut self) -> FlowRecord<'_> {
        let (ev, now, wall) = (self.ev, self.now, self.wall);
        FlowRecord::from_event(ev, now, wall, self.context())
    }

    /// The event and its context: what a record is built from (for a
    /// sink that keeps what records of a process share, see
    /// [`netwho_model::json::ProcJsonCache`]).
    pub fn source(&mut self) -> (&'a FlowEvent, &Context) {
        let ev = self.ev;
        (ev, self.context())
    }
}

/// Whether the run goes on after a sink's turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkControl {
    /// Go on.
    Continue,
    /// The sink has done its job (`top --count N`).
    Done,
    /// The sink's destination is gone (a closed pipe).
    Closed,
}

/// An output: config + pure encoder + the part that does I/O.
pub trait Sink {
    /// A live flow event.
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>);

    /// Totals of a flow still open when netwho stops.
    fn final_update(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.event(ev, rec);
    }

    /// A status record: losses, degradations, coverage (when the hooks
    /// are attached, every status interval, and at exit).
    fn status(&mut self, st: &StatusRecord);

    /// A chunk of a packet of an in-scope socket (`netwho pcap`), before
    /// any filter: a sink that writes packets keeps those of the flows the
    /// filter passed to it (the others never reach `event`).
    fn packet(&mut self, _chunk: &netwho_model::capture::PacketChunk) {}

    /// An executable's SHA-256, made after flows of it were handed on
    /// without it (hashing is off the hot path): for sinks that judge by
    /// the hash. `exe`: the path a process ran it by, when known (a flow
    /// whose process was gone before its file was identified has only
    /// that).
    fn exe_hash(&mut self, _file: netwho_model::FileId, _exe: Option<&str>, _sha256: &str) {}

    /// The last thread of a process exited (its flows' closes came
    /// before, with the process's final counters).
    fn proc_exit(&mut self, _proc: ProcKey, _at: MonoNs) {}

    /// A process's final resource figures, right after its exit (for sinks
    /// whose records of its flows are still to be made: a process that
    /// lived less than a turn of the loop was never sampled, and its flows'
    /// closes may have come a turn before its exit).
    fn proc_final(&mut self, _proc: ProcKey, _usage: &Usage) {}

    /// Called on every turn of the loop.
    fn tick(&mut self, _now: MonoNs, _wall: WallClock) -> SinkControl {
        SinkControl::Continue
    }

    /// Hand buffered output to the writer (sinks that write nothing
    /// themselves have nothing to hand on).
    fn flush(&mut self) -> SinkControl {
        SinkControl::Continue
    }

    /// Flush everything and wait for the writer.
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// Records lost to a slow destination.
    fn dropped(&self) -> u64 {
        0
    }

    /// Values this sink cut to fit its format's bounds (counted in the
    /// status's `partial.values_truncated`).
    fn truncated(&self) -> u64 {
        0
    }

    /// Writes its store refused (the history database: batches kept and
    /// retried), counted in the status's `drops.storage_fail`.
    fn storage_failures(&self) -> u64 {
        0
    }

    /// A replay went back in time and starts over: forget what was folded
    /// so far (sinks that only pass records on keep nothing).
    fn reset(&mut self) {}

    /// This sink wants `Updated` events (and counters read this often).
    fn updates_every(&self) -> Option<Duration> {
        None
    }
}
