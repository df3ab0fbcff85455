//! One fan-out for live runs and replays: filter → sinks → tick → flush →
//! finish. [`Pipeline`](crate::Pipeline) and [`Replay`](crate::replay::Replay)
//! both hand their flow events, status records and time to a [`FanOut`], so
//! "a replay feeds the same sinks through the same filter" holds by
//! construction.

use crate::PipelineError;
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, MonoNs, ProcKey, Usage};
use netwho_query::{Field, Filter};
use netwho_sink::status::StatusRecord;
use netwho_sink::subject::FlowSubject;
use netwho_sink::{RecordRef, Sink, SinkControl};
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

/// The sinks of a run and the filter in front of them.
#[expect(missing_debug_implementations, reason = "holds sinks")]
pub struct FanOut {
    sinks: Vec<Box<dyn Sink>>,
    filter: Option<Filter>,
    filtered_out: u64,
}

impl FanOut {
    /// `sinks` behind `filter` (None: every flow event passes).
    pub fn new(sinks: Vec<Box<dyn Sink>>, filter: Option<Filter>) -> Self {
        FanOut {
            sinks,
            filter,
            filtered_out: 0,
        }
    }

    /// The filter in front of the sinks.
    pub fn filter(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }

    /// The filter asks whether an address is this host's (`fd.is_local`):
    /// the caller must pass the host's addresses.
    pub fn wants_local(&self) -> bool {
        self.filter.as_ref().is_some_and(|f| f.uses(Field::IsLocal))
    }

    /// Flow events the filter kept from the sinks.
    pub fn filtered_out(&self) -> u64 {
        self.filtered_out
    }

    /// A flow event at `now`: through the filter, then to every sink.
    /// `last`: the totals of a flow still open when the run ends. Whether
    /// it passed.
    pub fn deliver(
        &mut self,
        ev: &FlowEvent,
        rec: &mut RecordRef<'_>,
        now: MonoNs,
        local: &HashSet<IpAddr>,
        last: bool,
    ) -> bool {
        if let Some(filter) = &self.filter {
            let subject = FlowSubject {
                flow: ev.flow(),
                ctx: rec.context(),
                now,
                local,
            };
            if !filter.matches(&subject) {
                self.filtered_out += 1;
                return false;
            }
        }
        for s in &mut self.sinks {
            if last {
                s.final_update(ev, rec);
            } else {
                s.event(ev, rec);
            }
        }
        true
    }

    /// A process's last thread exited (after its flows' closes), with its
    /// final resource figures when known.
    pub fn proc_exit(&mut self, proc: ProcKey, at: MonoNs, usage: Option<&Usage>) {
        for s in &mut self.sinks {
            s.proc_exit(proc, at);
            if let Some(u) = usage {
                s.proc_final(proc, u);
            }
        }
    }

    /// A chunk of a captured packet to every sink (they join it to the
    /// flows the filter passed them).
    pub fn packet(&mut self, chunk: &netwho_model::capture::PacketChunk) {
        for s in &mut self.sinks {
            s.packet(chunk);
        }
    }

    /// An executable's hash, made after its flows were handed on.
    pub fn exe_hash(&mut self, file: netwho_model::FileId, exe: Option<&str>, sha256: &str) {
        for s in &mut self.sinks {
            s.exe_hash(file, exe, sha256);
        }
    }

    /// A status record to every sink.
    pub fn status(&mut self, st: &StatusRecord) {
        for s in &mut self.sinks {
            s.status(st);
        }
    }

    /// Every sink's turn; `Done` if one of them has done its job.
    pub fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        let mut ctl = SinkControl::Continue;
        for s in &mut self.sinks {
            if s.tick(now, wall) == SinkControl::Done {
                ctl = SinkControl::Done;
            }
        }
        ctl
    }

    /// Hand buffered output on; `Closed` if a destination is gone.
    pub fn flush(&mut self) -> SinkControl {
        let mut ctl = SinkControl::Continue;
        for s in &mut self.sinks {
            if s.flush() == SinkControl::Closed {
                ctl = SinkControl::Closed;
            }
        }
        ctl
    }

    /// A replay starts over: every sink forgets what it folded.
    pub fn reset(&mut self) {
        for s in &mut self.sinks {
            s.reset();
        }
    }

    /// Finish every sink (each one, even after another failed); the first
    /// error.
    pub fn finish(&mut self) -> Result<(), PipelineError> {
        let mut first_err = None;
        for s in &mut self.sinks {
            if let Err(e) = s.finish()
                && first_err.is_none()
            {
                first_err = Some(e);
            }
        }
        match first_err {
            Some(e) => Err(PipelineError::Output(e)),
            None => Ok(()),
        }
    }

    /// Records lost to slow destinations.
    pub fn dropped(&self) -> u64 {
        self.sinks.iter().map(|s| s.dropped()).sum()
    }

    /// Values cut to fit their format.
    pub fn truncated(&self) -> u64 {
        self.sinks.iter().map(|s| s.truncated()).sum()
    }

    /// Writes a store refused.
    pub fn storage_failures(&self) -> u64 {
        self.sinks.iter().map(|s| s.storage_failures()).sum()
    }

    /// How often the most eager sink wants `Updated` events, if any does.
    pub fn updates_every(&self) -> Option<Duration> {
        self.sinks.iter().filter_map(|s| s.updates_every()).min()
    }
}
