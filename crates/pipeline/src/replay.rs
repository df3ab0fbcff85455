//! Replaying a recording into the sinks (`netwho log -r`, `netwho top -r`).
//!
//! The recording holds what the live sinks were given: each flow event
//! with its context and time. Replay hands the same to the same sinks,
//! through the same filter, with the recorded time as `now`, so a log
//! printed from a recording is the log the live run would have printed
//! with that filter. Pacing is optional: as fast as possible, or at a
//! multiple of the recorded speed (the clock and the sleep are injected).

use crate::status::StatusRecord;
use crate::subject::FlowSubject;
use crate::{PipelineError, RecordRef, Sink, SinkControl, Stopped};
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, MonoNs};
use netwho_query::Filter;
use netwho_store::StoreError;
use netwho_store::recording::{FlowItem, Item, Reader};
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Sinks are ticked at least this often in recorded time.
const TICK_NS: u64 = 100_000_000;

#[derive(Debug, Default)]
pub struct ReplayConfig {
    pub filter: Option<Filter>,
    /// Only items in [since, until) (Unix ns) reach the sinks.
    pub since: Option<i128>,
    pub until: Option<i128>,
    /// Recorded seconds per real second; None: as fast as possible.
    pub speed: Option<f64>,
}

/// Real time for pacing: a clock and a sleep (tests pass manual ones).
#[expect(missing_debug_implementations, reason = "holds closures")]
pub struct Pacer {
    pub now: Box<dyn FnMut() -> MonoNs>,
    pub sleep: Box<dyn FnMut(Duration)>,
}

#[expect(missing_debug_implementations, reason = "holds sinks and a reader")]
pub struct Replay<R: Read> {
    reader: Reader<R>,
    sinks: Vec<Box<dyn Sink>>,
    cfg: ReplayConfig,
    pacer: Option<Pacer>,
    wall: WallClock,
    local: HashSet<IpAddr>,
    users: FxHashMap<u32, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl<R: Read> Replay<R> {
    pub fn new(
        reader: Reader<R>,
        sinks: Vec<Box<dyn Sink>>,
        cfg: ReplayConfig,
        pacer: Option<Pacer>,
    ) -> Self {
        let local = reader.header().local_addrs.iter().copied().collect();
        Replay {
            wall: reader.start_clock(),
            reader,
            sinks,
            cfg,
            pacer,
            local,
            users: FxHashMap::default(),
        }
    }

    pub fn reader(&self) -> &Reader<R> {
        &self.reader
    }

    fn in_window(&self, at: MonoNs) -> bool {
        let t = self.wall.unix_ns(at);
        self.cfg.since.is_none_or(|s| t >= s) && self.cfg.until.is_none_or(|u| t < u)
    }

    fn flow(&mut self, it: &FlowItem) {
        if !self.in_window(it.at) {
            return;
        }
        let f = it.ev.flow();
        self.users
            .entry(f.uid)
            .or_insert_with(|| it.ctx.names.user.clone());
        if let Some(filter) = &self.cfg.filter {
            let subject = FlowSubject {
                flow: f,
                ctx: &it.ctx,
                now: it.at,
                local: &self.local,
            };
            if !filter.matches(&subject) {
                return;
            }
        }
        // the context is cloned once, if a sink asks for it
        let mut lookup = |_: &FlowEvent| it.ctx.clone();
        let mut rec = RecordRef::new(&it.ev, it.at, self.wall, &mut lookup);
        for s in &mut self.sinks {
            if it.is_final {
                s.final_update(&it.ev, &mut rec);
            } else {
                s.event(&it.ev, &mut rec);
            }
        }
    }

    fn tick(&mut self, now: MonoNs) -> SinkControl {
        let users = &self.users;
        let mut names = |uid: u32| users.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
        let mut ctl = SinkControl::Continue;
        for s in &mut self.sinks {
            if s.tick(now, self.wall, &mut names) == SinkControl::Done {
                ctl = SinkControl::Done;
            }
        }
        for s in &mut self.sinks {
            if s.flush() == SinkControl::Closed {
                ctl = SinkControl::Closed;
            }
        }
        ctl
    }

    /// Wait until recorded time `at` is due in real time.
    fn pace(&mut self, at: MonoNs, start: &mut Option<(MonoNs, MonoNs)>) {
        let (Some(p), Some(speed)) = (&mut self.pacer, self.cfg.speed) else {
            return;
        };
        let real = (p.now)();
        if let Some(d) = pace_wait(at, real, speed, start) {
            (p.sleep)(d);
        }
    }

    /// Replay everything (or until `stop`, or a sink is done).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Stopped, ReplayError> {
        let mut last_tick: Option<MonoNs> = None;
        let mut now = MonoNs(0);
        let mut start = None;
        let stopped = loop {
            if stop.load(Ordering::Relaxed) {
                break Stopped::Signal;
            }
            let Some(item) = self.reader.next_item()? else {
                break Stopped::Done;
            };
            // flows set the pace; status and end records follow them
            match &item {
                Item::Flow(it) => {
                    self.pace(it.at, &mut start);
                    now = now.max(it.at);
                }
                Item::Status { at, .. } | Item::End { at } if now.0 > 0 => {
                    now = now.max(*at);
                }
                _ => {}
            }
            match item {
                Item::Flow(it) => self.flow(&it),
                Item::Status { json, at } => {
                    if self.in_window(at)
                        && let Ok(st) = serde_json::from_str::<StatusRecord>(&json)
                    {
                        for s in &mut self.sinks {
                            s.status(&st);
                        }
                    }
                }
                Item::Clock(c) => self.wall = c,
                Item::End { .. } => {}
            }
            if now.0 > 0 && last_tick.is_none_or(|t| now.since(t) >= TICK_NS) {
                last_tick = Some(now);
                match self.tick(now) {
                    SinkControl::Continue => {}
                    SinkControl::Done => break Stopped::Done,
                    SinkControl::Closed => break Stopped::OutputClosed,
                }
            }
        };
        if stopped != Stopped::OutputClosed {
            self.tick(now);
        }
        crate::run::finish_all(&mut self.sinks)?;
        Ok(stopped)
    }
}

/// How long to wait before recorded time `at` is due, at `speed`
/// recorded seconds per real second; `start` pairs the first recorded
/// time with the real time it was replayed at.
fn pace_wait(
    at: MonoNs,
    real: MonoNs,
    speed: f64,
    start: &mut Option<(MonoNs, MonoNs)>,
) -> Option<Duration> {
    let (rec0, real0) = *start.get_or_insert((at, real));
    let due = real0.add_ns((at.since(rec0) as f64 / speed) as u64);
    (due > real).then(|| Duration::from_nanos(due.since(real)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logsink::{LogFormat, LogSink, On};
    use crate::output::Output;
    use crate::recsink::{RecordConfig, RecordSink};
    use netwho_model::record::{Context, Names};
    use netwho_model::{Endpoint, Flow};
    use netwho_store::recording::{Header, RecordingFile};
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_sink(buf: &Shared) -> LogSink {
        LogSink::new(
            LogFormat::Json,
            On::Both,
            Output::spawn(Box::new(buf.clone())),
        )
    }

    /// What a live run hands its sinks: 50 flows opening, updating and
    /// closing over 30 s, across many frames, with a clock step.
    fn drive(sinks: &mut [Box<dyn Sink>]) {
        let ctx = Context {
            names: Arc::new(Names {
                user: "alice".into(),
                ..Names::default()
            }),
            ..Context::default()
        };
        let mut flows: Vec<Flow> = (0..50)
            .map(|i| {
                Flow::example(
                    100 + i,
                    u64::from(i),
                    Endpoint::new([10, 231, 1, 9].into(), 80),
                )
            })
            .collect();
        let mut wall = WallClock {
            boot_to_unix_ns: 1_700_000_000_000_000_000,
        };
        let mut users = |uid: u32| uid.to_string();
        for step in 0..300u64 {
            let now = MonoNs(5_000_000_000 + step * 100_000_000);
            if step == 150 {
                wall.boot_to_unix_ns += 7_000_000;
            }
            let i = (step % 50) as usize;
            let f = &mut flows[i];
            let ev = match step / 50 {
                0 => FlowEvent::Opened(f.clone()),
                1..=4 => {
                    f.payload.bytes_sent += step;
                    FlowEvent::Updated(f.clone())
                }
                _ => {
                    f.payload.bytes_recv = 1000 + step;
                    f.closed = Some(now);
                    FlowEvent::Closed(f.clone())
                }
            };
            let c = ctx.clone();
            let mut lookup = move |_: &FlowEvent| c.clone();
            let mut rec = RecordRef::new(&ev, now, wall, &mut lookup);
            for s in sinks.iter_mut() {
                s.event(&ev, &mut rec);
                s.tick(now, wall, &mut users);
                s.flush();
            }
        }
        for s in sinks.iter_mut() {
            s.finish().unwrap();
        }
    }

    #[test]
    fn a_replayed_recording_gives_the_sinks_what_the_live_run_gave() {
        let dir = std::env::temp_dir().join(format!("netwho-replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.nwr");
        let live = Shared::default();
        let file = RecordingFile::create(&path, Header::default(), None, false).unwrap();
        let rec = RecordSink::new(
            file,
            RecordConfig {
                resolution: Duration::from_secs(1),
                duration: None,
                count: None,
                progress: false,
            },
        );
        let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(log_sink(&live)), Box::new(rec)];
        drive(&mut sinks);

        let replayed = Shared::default();
        let reader = Reader::open(std::slice::from_ref(&path)).unwrap();
        let mut r = Replay::new(
            reader,
            vec![Box::new(log_sink(&replayed))],
            ReplayConfig::default(),
            None,
        );
        assert_eq!(r.run(&AtomicBool::new(false)).unwrap(), Stopped::Done);
        let (a, b) = (live.0.lock().unwrap(), replayed.0.lock().unwrap());
        assert_eq!(String::from_utf8_lossy(&a).lines().count(), 100);
        assert!(*a == *b, "replay differs from live");
        assert!(r.reader().stats().frames >= 25, "{:?}", r.reader().stats());
        assert!(r.reader().warnings().is_empty());

        // a filter and a window, as the live run would have applied them
        let filtered = Shared::default();
        let reader = Reader::open(std::slice::from_ref(&path)).unwrap();
        // boot time 30 s, in the wall time the recorder was given
        let start = 1_700_000_000_000_000_000 + 30_000_000_000;
        let mut r = Replay::new(
            reader,
            vec![Box::new(log_sink(&filtered))],
            ReplayConfig {
                filter: Some(Filter::parse("proc.pid < 110").unwrap()),
                since: Some(start),
                ..ReplayConfig::default()
            },
            None,
        );
        r.run(&AtomicBool::new(false)).unwrap();
        let text = String::from_utf8(filtered.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 10, "{text}");
        assert!(text.lines().all(|l| l.contains("\"event\":\"close\"")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pacing_follows_the_recorded_time_at_the_given_speed() {
        let sec = |x: f64| MonoNs((x * 1e9) as u64);
        let mut start = None;
        // the first item is due at once
        assert_eq!(pace_wait(sec(100.0), sec(7.0), 4.0, &mut start), None);
        // 20 recorded seconds later, at 4x: 5 s after the start
        assert_eq!(
            pace_wait(sec(120.0), sec(8.0), 4.0, &mut start),
            Some(Duration::from_secs(4))
        );
        // late (the output was slow): no wait, no catching up by skipping
        assert_eq!(pace_wait(sec(120.0), sec(13.0), 4.0, &mut start), None);
        let mut start = None;
        pace_wait(sec(0.0), sec(0.0), 0.5, &mut start);
        assert_eq!(
            pace_wait(sec(1.0), sec(0.0), 0.5, &mut start),
            Some(Duration::from_secs(2))
        );
    }
}
