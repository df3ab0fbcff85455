//! The run loop.

use crate::coverage::CoverageMeter;
use crate::enricher::Enricher;
use crate::fanout::FanOut;
use crate::{RecordRef, Sink, SinkControl};
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, FlowTable, MonoNs, SensorEvent, TableConfig, nanos};
use netwho_query::Filter;
use netwho_sensor::{Sensor, SensorError, SensorInfo};
use netwho_sink::status::{Coverage, Selection, StatusInput, StatusRecord};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use thiserror::Error;

/// Sensor and flow events whose room a turn keeps for the next.
const EVENTS_KEEP: usize = 4096;

#[derive(Debug, Error)]
/// Why a run failed.
pub enum PipelineError {
    #[error(transparent)]
    /// The sensor failed (its message says what to do).
    Sensor(#[from] SensorError),
    #[error("writing output: {0}")]
    /// An output could not be written.
    Output(#[source] std::io::Error),
}

/// Why the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// SIGINT/SIGTERM (the stop flag).
    Signal,
    /// A sink finished its job.
    Done,
    /// The output was closed by its reader.
    OutputClosed,
}

#[derive(Clone, Debug)]
/// How the run loop turns.
pub struct PipelineConfig {
    /// Longest wait for kernel events in one turn of the loop (the kernel
    /// wakes us sooner only when a lot is waiting). Longer turns batch more
    /// work per wake-up: 250 ms cost a quarter less CPU than 100 ms at 500
    /// connections/s, for records that appear up to 0.25 s later.
    pub tick: Duration,
    /// How often all counters are read (sinks that want updates may ask
    /// for more often).
    pub scan_every: Duration,
    /// How often a status record is emitted.
    pub status_every: Duration,
    /// The flow table's settings (its boot id, idle times, bounds).
    pub table: TableConfig,
    /// Only flow events that match go to the sinks.
    pub filter: Option<Filter>,
    /// The kernel scope in effect, as status records describe it.
    pub scope: Option<String>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            tick: Duration::from_millis(250),
            scan_every: Duration::from_secs(10),
            status_every: Duration::from_secs(10),
            table: TableConfig::default(),
            filter: None,
            scope: None,
        }
    }
}

/// The clocks the loop reads: boot time (the kernel's clock) and the
/// offset to wall time. Tests pass manual ones.
#[expect(missing_debug_implementations, reason = "holds closures")]
pub struct Clocks {
    /// Boot time now (the kernel's clock).
    pub boot: Box<dyn FnMut() -> MonoNs>,
    /// The boot-to-Unix offset now.
    pub wall: Box<dyn FnMut() -> WallClock>,
}

impl Clocks {
    /// The system clocks. The boot-to-wall offset is measured each turn
    /// but only replaced when it moved by more than a millisecond (the wall
    /// clock was stepped): measurement jitter must not make one flow's
    /// timestamps differ between its records.
    pub fn system() -> Self {
        let mut offset = netwho_enrich::clock::wall_clock();
        Clocks {
            boot: Box::new(netwho_enrich::clock::boot_now),
            wall: Box::new(move || {
                let now = netwho_enrich::clock::wall_clock();
                if (now.boot_to_unix_ns - offset.boot_to_unix_ns).abs() > 1_000_000 {
                    offset = now;
                }
                offset
            }),
        }
    }
}

#[expect(missing_debug_implementations, reason = "holds sinks and clocks")]
/// The run loop: sensor → enricher → flow table → fan-out, with status records and counted losses (`run`).
pub struct Pipeline<S: Sensor> {
    sensor: S,
    info: SensorInfo,
    table: FlowTable,
    enricher: Enricher,
    out: FanOut,
    cfg: PipelineConfig,
    clocks: Clocks,
    started: MonoNs,
    wall: WallClock,
    events: Vec<SensorEvent>,
    flow_events: Vec<FlowEvent>,
    degradations: Vec<String>,
    /// Output drops the last status record reported, and when it was.
    reported_output_drops: u64,
    last_status: MonoNs,
    coverage: Option<CoverageMeter>,
    last_coverage: Option<Coverage>,
}

/// After output was lost, the status record that says so comes at most
/// this soon after the previous one (not only at the next interval).
const LOSS_STATUS_AFTER: Duration = Duration::from_secs(1);

/// A status record is due at its interval, or soon after output was lost
/// that no status record has reported yet.
fn status_due(
    now: MonoNs,
    next_status: MonoNs,
    last_status: MonoNs,
    output_drops: u64,
    reported_drops: u64,
) -> bool {
    now >= next_status
        || (output_drops > reported_drops && now >= last_status.add_ns(nanos(LOSS_STATUS_AFTER)))
}

impl<S: Sensor> Pipeline<S> {
    /// The pipeline of `sensor` into `sinks`; updates are asked of the sensor as often as the most eager sink wants them.
    pub fn new(
        sensor: S,
        enricher: Enricher,
        sinks: Vec<Box<dyn Sink>>,
        mut cfg: PipelineConfig,
        mut clocks: Clocks,
    ) -> Self {
        let out = FanOut::new(sinks, cfg.filter.take());
        let updates = out.updates_every();
        cfg.table.emit_updates = updates.is_some();
        if let Some(every) = updates {
            cfg.scan_every = cfg.scan_every.min(every);
        }
        let started = (clocks.boot)();
        let wall = (clocks.wall)();
        let mut degradations = Vec::new();
        if !enricher.delayacct() {
            degradations.push(
                "iowait is not measured: kernel delay accounting is off \
                 (sysctl kernel.task_delayacct=1 turns it on)"
                    .to_string(),
            );
        }
        let info = sensor.info();
        // coverage compares the wire bytes the sensor attributed with the
        // interfaces' counters: a sensor without wire counters has none
        let coverage = (info.attribution == "ebpf")
            .then(|| netwho_sensor::fallback::procfd::netns_of("self").ok())
            .flatten()
            .map(CoverageMeter::new);
        Pipeline {
            info,
            sensor,
            table: FlowTable::new(cfg.table.clone()),
            enricher,
            out,
            cfg,
            clocks,
            started,
            wall,
            events: Vec::new(),
            flow_events: Vec::new(),
            degradations,
            reported_output_drops: 0,
            last_status: started,
            coverage,
            last_coverage: None,
        }
    }

    /// Apply the sensor events collected so far and dispatch what they mean.
    fn apply(&mut self, now: MonoNs, final_phase: bool) {
        // (drained in place: the room stays for the next turn's events,
        // which would otherwise grow it afresh, copying, every turn)
        let mut events = std::mem::take(&mut self.events);
        let mut before = Vec::new();
        let mut exits = Vec::new();
        for mut ev in events.drain(..) {
            if let SensorEvent::Packet(p) = &ev {
                // (no flow table state: straight to the sinks that join them)
                self.out.packet(p);
                continue;
            }
            self.enricher.prepare(&mut ev, &self.table, &mut before);
            for b in before.drain(..) {
                self.table.apply(b, now, &mut self.flow_events);
            }
            if let SensorEvent::Exit { proc, at, .. } = ev {
                exits.push((proc, at));
            }
            self.table.apply(ev, now, &mut self.flow_events);
        }
        // (a burst's room is given back)
        events.shrink_to(EVENTS_KEEP);
        self.events = events;
        self.dispatch(now, final_phase);
        for h in self.enricher.fresh_hashes() {
            self.out.exe_hash(h.file, h.exe.as_deref(), &h.sha256);
        }
        // after the closes they caused
        for (proc, at) in exits {
            // (the exit's own figures, else the last sample)
            let usage = self.table.procs().usage(proc).map(|t| t.last);
            self.out.proc_exit(proc, at, usage.as_ref());
        }
    }

    fn dispatch(&mut self, now: MonoNs, final_phase: bool) {
        if self.flow_events.is_empty() {
            return;
        }
        self.enricher.settle_hashes();
        let wall = self.wall;
        let local = if self.out.wants_local() {
            self.enricher.local_addrs(now)
        } else {
            Default::default()
        };
        let (enricher, table) = (&mut self.enricher, &self.table);
        let mut lookup = |ev: &FlowEvent| enricher.context(ev.flow(), table, now);
        netwho_model::order_by_time(&mut self.flow_events, now);
        for ev in self.flow_events.drain(..) {
            let mut rec = RecordRef::new(&ev, now, wall, &mut lookup);
            let last = final_phase && matches!(ev, FlowEvent::Updated(_));
            self.out.deliver(&ev, &mut rec, now, &local, last);
        }
        self.flow_events.shrink_to(EVENTS_KEEP);
    }

    /// Resource samples of processes with open flows.
    fn sample(&mut self, now: MonoNs) {
        let mut samples = Vec::new();
        self.enricher.sample(&self.table, now, &mut samples);
        for s in samples {
            self.table.apply(s, now, &mut self.flow_events);
        }
    }

    fn output_drops(&self) -> u64 {
        self.out.dropped()
    }

    fn status(&mut self, now: MonoNs, is_final: bool) {
        let output_drops = self.output_drops();
        self.reported_output_drops = output_drops;
        self.last_status = now;
        let coverage = self.last_coverage;
        let st = StatusRecord::build(StatusInput {
            ts: self.wall.rfc3339(now),
            uptime_s: now.since(self.started) as f64 / 1e9,
            is_final,
            info: &self.info,
            sensor: self.sensor.stats(),
            model: self.table.stats(),
            enrich: self.enricher.counts(),
            output_drops,
            output_truncated: self.out.truncated(),
            storage_failures: self.out.storage_failures(),
            limits: self
                .sensor
                .limited()
                .into_iter()
                .map(|l| netwho_sink::status::UidLimit {
                    uid: l.uid,
                    flows_refused: l.flows_refused,
                    wire_refused: l.wire_refused,
                })
                .collect(),
            coverage,
            selection: Selection {
                filter: self.out.filter().map(|f| f.to_string()),
                scope: self.cfg.scope.clone(),
                filtered_out: self.out.filtered_out(),
            },
            more_degradations: &self.degradations,
            names_on: self.cfg.table.names.is_some(),
        });
        self.out.status(&st);
    }

    fn flush(&mut self) -> SinkControl {
        self.out.flush()
    }

    /// Read the interfaces right after the counters were read, so both
    /// sides of the coverage are of the same moment.
    fn measure_coverage(&mut self) {
        if let Some(m) = &mut self.coverage {
            let attributed = self.table.wire_attributed(m.netns());
            if let Some(c) = m.measure(attributed) {
                self.last_coverage = Some(c);
            }
        }
    }

    /// Learn the world as it is (every running process, the sockets that
    /// predate the sensor), say we are ready, then report what we found.
    /// "Ready" means every hook is attached and every older connection is
    /// known: from then on nothing is missed. It is the first record.
    fn start(&mut self) -> Result<(), PipelineError> {
        let now = (self.clocks.boot)();
        for p in self.enricher.snapshot() {
            self.table
                .apply(SensorEvent::ProcSnapshot(p), now, &mut self.flow_events);
        }
        self.sensor.startup(&mut self.events)?;
        let now = (self.clocks.boot)();
        // the baseline of the coverage: the interfaces as the hooks start
        self.measure_coverage();
        self.status(now, false);
        self.flush();
        self.apply(now, false);
        self.flush();
        Ok(())
    }

    /// Run until `stop` is set, a sink is done, or the output closes; then
    /// report every open flow's totals and a final status.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Stopped, PipelineError> {
        self.start()?;
        let scan_every = nanos(self.cfg.scan_every);
        let status_every = nanos(self.cfg.status_every);
        let mut now = (self.clocks.boot)();
        let mut next_scan = now.add_ns(scan_every);
        let mut next_status = now.add_ns(status_every);
        let stopped = loop {
            if stop.load(Ordering::Relaxed) {
                break Stopped::Signal;
            }
            let wait = Duration::from_nanos(next_scan.since(now)).min(self.cfg.tick);
            self.sensor.poll(wait, &mut self.events)?;
            now = (self.clocks.boot)();
            self.wall = (self.clocks.wall)();
            let scanned = now >= next_scan;
            if scanned {
                self.sensor.scan(&mut self.events)?;
                next_scan = now.add_ns(scan_every);
            }
            self.apply(now, false);
            if scanned {
                self.measure_coverage();
            }
            self.sample(now);
            self.table.tick(now, &mut self.flow_events);
            self.dispatch(now, false);

            let ctl = self.out.tick(now, self.wall);
            if status_due(
                now,
                next_status,
                self.last_status,
                self.output_drops(),
                self.reported_output_drops,
            ) {
                self.status(now, false);
                next_status = now.add_ns(status_every);
            }
            if self.flush() == SinkControl::Closed {
                break Stopped::OutputClosed;
            }
            if ctl == SinkControl::Done {
                break Stopped::Done;
            }
        };
        self.shutdown(stopped)?;
        Ok(stopped)
    }

    fn shutdown(&mut self, why: Stopped) -> Result<(), PipelineError> {
        let now = (self.clocks.boot)();
        self.sensor.finish(&mut self.events)?;
        self.apply(now, false);
        self.measure_coverage();
        if why != Stopped::OutputClosed {
            self.table.drain(&mut self.flow_events);
            self.dispatch(now, true);
            self.status(now, true);
        }
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_loss_is_reported_within_a_second() {
        let s = |x: f64| MonoNs((x * 1e9) as u64);
        // nothing lost: only at the interval
        assert!(!status_due(s(105.0), s(110.0), s(100.0), 0, 0));
        assert!(status_due(s(110.0), s(110.0), s(100.0), 0, 0));
        // a loss: not in the same second as the last status...
        assert!(!status_due(s(100.5), s(110.0), s(100.0), 7, 0));
        // ...but a second after it, long before the interval
        assert!(status_due(s(101.0), s(110.0), s(100.0), 7, 0));
        // once reported, no more early records until more is lost
        assert!(!status_due(s(103.0), s(111.0), s(101.0), 7, 7));
        assert!(status_due(s(103.0), s(111.0), s(101.0), 9, 7));
    }
}
