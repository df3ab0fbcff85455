//! Replaying a recording into the sinks (`netwho log -r`, `netwho top -r`).
//!
//! The recording holds what the live sinks were given: each flow event
//! with its context and time. Replay hands the same to the same sinks,
//! through the same filter, with the recorded time as `now`, so a log
//! printed from a recording is the log the live run would have printed
//! with that filter. Pacing is optional: as fast as possible, or at a
//! multiple of the recorded speed (the clock and the sleep are injected).

use crate::fanout::FanOut;
use crate::{PipelineError, RecordRef, Sink, SinkControl, Stopped};
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, MonoNs};
use netwho_query::Filter;
use netwho_sink::status::StatusRecord;
use netwho_store::StoreError;
use netwho_store::recording::{FlowItem, Item, Reader};
use std::collections::HashSet;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Sinks are ticked at least this often in recorded time.
const TICK_NS: u64 = 100_000_000;

#[derive(Debug, Default)]
/// What a replay passes on, and how fast.
pub struct ReplayConfig {
    /// Only flow events that match reach the sinks.
    pub filter: Option<Filter>,
    /// Only items in [since, until) (Unix ns) reach the sinks.
    pub since: Option<i128>,
    /// See `since`.
    pub until: Option<i128>,
    /// Recorded seconds per real second; None: as fast as possible.
    pub speed: Option<f64>,
    /// The source is live (a daemon's stream): its status records move
    /// the time on even before any flow, so views tick while nothing
    /// they may see happens. In a file, the time starts with the first flow.
    pub live: bool,
}

pub use netwho_sink::replay::{ReplayCmd, ReplayPos};

/// A replay under a viewer's control: commands in, the position out, and
/// the recording opened again from its start to seek back.
#[expect(missing_debug_implementations, reason = "holds closures")]
pub struct Controls<R: Read> {
    /// The viewer's commands.
    pub cmds: std::sync::mpsc::Receiver<ReplayCmd>,
    /// The recording from its start again (to seek back).
    pub reopen: Box<dyn FnMut() -> Result<Reader<R>, StoreError>>,
    /// Where the replay stands, told to the viewer.
    pub show: Box<dyn FnMut(ReplayPos)>,
}

/// Slowest and fastest speeds the controls go to.
const SPEED_MIN: f64 = 1.0 / 16.0;
const SPEED_MAX: f64 = 1024.0;
/// While paused or pacing, commands are looked at this often.
const CONTROL_STEP: Duration = Duration::from_millis(50);

/// The replay's position in recorded and real time.
#[derive(Debug, Default)]
struct Cursor {
    now: MonoNs,
    last_tick: Option<MonoNs>,
    /// (recorded, real) time pacing counts from.
    start: Option<(MonoNs, MonoNs)>,
    /// Seeking: items before this recorded time are fed without pacing or
    /// ticks.
    skip_until: Option<MonoNs>,
    paused: bool,
    /// The recording ended; the viewer is still looking.
    ended: bool,
}

/// What the commands did to the replay.
#[derive(Debug, PartialEq)]
enum Effect {
    None,
    /// The reader starts over: the item in hand is from the old one.
    Restarted,
    Quit,
}

/// Real time for pacing: a clock and a sleep (tests pass manual ones).
#[expect(missing_debug_implementations, reason = "holds closures")]
pub struct Pacer {
    /// Real time now.
    pub now: Box<dyn FnMut() -> MonoNs>,
    /// Wait this long.
    pub sleep: Box<dyn FnMut(Duration)>,
}

#[expect(missing_debug_implementations, reason = "holds sinks and a reader")]
/// A recording fed into sinks through the same fan-out and filter as a live run, with the recorded time as `now`.
pub struct Replay<R: Read> {
    reader: Reader<R>,
    out: FanOut,
    cfg: ReplayConfig,
    pacer: Option<Pacer>,
    wall: WallClock,
    local: HashSet<IpAddr>,
    controls: Option<Controls<R>>,
}

#[derive(Debug, thiserror::Error)]
/// Why a replay stopped early.
pub enum ReplayError {
    #[error(transparent)]
    /// The recording could not be read.
    Store(#[from] StoreError),
    #[error(transparent)]
    /// A sink failed.
    Pipeline(#[from] PipelineError),
}

impl<R: Read> Replay<R> {
    /// A replay of `reader` into `sinks`; `pacer` paces it (None: as fast as it reads).
    pub fn new(
        reader: Reader<R>,
        sinks: Vec<Box<dyn Sink>>,
        mut cfg: ReplayConfig,
        pacer: Option<Pacer>,
    ) -> Self {
        let local = reader.header().local_addrs.iter().copied().collect();
        Replay {
            wall: reader.start_clock(),
            reader,
            out: FanOut::new(sinks, cfg.filter.take()),
            cfg,
            pacer,
            local,
            controls: None,
        }
    }

    /// Let a viewer pause, change speed and seek (the pauses and the
    /// steps between commands go through the pacer's sleep).
    pub fn with_controls(mut self, c: Controls<R>) -> Self {
        self.controls = Some(c);
        self
    }

    fn position(&self, cur: &Cursor) -> ReplayPos {
        // started over: nothing read yet, so where it is going
        let at = match (cur.now, cur.skip_until) {
            (MonoNs(0), Some(target)) => target,
            (now, _) => now,
        };
        ReplayPos {
            at_unix_ns: self.wall.unix_ns(at),
            speed: self.cfg.speed,
            paused: cur.paused,
            seeking: cur.skip_until.map(|t| self.wall.unix_ns(t)),
            ended: cur.ended,
        }
    }

    fn show(&mut self, cur: &Cursor) {
        let pos = self.position(cur);
        if let Some(c) = &mut self.controls {
            (c.show)(pos);
        }
    }

    /// Apply the commands waiting, and wait out a pause.
    fn control(&mut self, cur: &mut Cursor, stop: &AtomicBool) -> Result<Effect, ReplayError> {
        let mut effect = Effect::None;
        loop {
            let Some(c) = &mut self.controls else {
                return Ok(effect);
            };
            let cmd = match c.cmds.try_recv() {
                Ok(cmd) => cmd,
                // the viewer is gone: nobody to replay to
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return Ok(Effect::Quit),
                Err(_) if cur.paused && !stop.load(Ordering::Relaxed) => {
                    match &mut self.pacer {
                        Some(p) => (p.sleep)(CONTROL_STEP),
                        None => std::thread::sleep(CONTROL_STEP),
                    }
                    continue;
                }
                Err(_) => return Ok(effect),
            };
            match cmd {
                ReplayCmd::Quit => return Ok(Effect::Quit),
                ReplayCmd::Pause => cur.paused = !cur.paused,
                ReplayCmd::Faster => {
                    self.cfg.speed = self.cfg.speed.map(|s| (s * 2.0).min(SPEED_MAX));
                }
                ReplayCmd::Slower => {
                    self.cfg.speed = Some(
                        self.cfg
                            .speed
                            .map_or(SPEED_MAX, |s| (s / 2.0).max(SPEED_MIN)),
                    );
                }
                ReplayCmd::Seek(d) if d >= 0 => {
                    let from = cur.skip_until.unwrap_or(cur.now);
                    cur.skip_until = Some(from.add_ns(d.unsigned_abs()));
                }
                ReplayCmd::Seek(d) => {
                    // back: from the start again, quietly up to the target
                    let from = cur.skip_until.unwrap_or(cur.now);
                    let target = MonoNs(from.0.saturating_sub(d.unsigned_abs()));
                    // (the wall clock stays: the file's own Clock entries
                    // correct it as they come)
                    self.reader = (c.reopen)()?;
                    self.out.reset();
                    *cur = Cursor {
                        skip_until: Some(target),
                        paused: cur.paused,
                        ..Cursor::default()
                    };
                    effect = Effect::Restarted;
                }
            }
            // pacing counts again from here and now (from the next item,
            // it would jump to it at once)
            cur.start = match (&mut self.pacer, cur.now) {
                (Some(p), now) if now.0 > 0 => Some((now, (p.now)())),
                _ => None,
            };
            self.show(cur);
        }
    }

    /// The end of the recording with a viewer: the view stays, showing
    /// where the replay stands (a seek past the end arrives here, not at
    /// its target), and the viewer may still seek back, or quit.
    fn at_end(&mut self, cur: &mut Cursor, stop: &AtomicBool) -> Result<Effect, ReplayError> {
        cur.skip_until = None;
        cur.ended = true;
        cur.last_tick = Some(cur.now);
        if self.tick(cur.now) == SinkControl::Closed {
            return Ok(Effect::Quit);
        }
        self.show(cur);
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(Effect::Quit);
            }
            match self.control(cur, stop)? {
                Effect::None => {}
                e => return Ok(e),
            }
            // forward: there is nothing after the end
            if cur.skip_until.take().is_some() {
                self.show(cur);
            }
            match &mut self.pacer {
                Some(p) => (p.sleep)(CONTROL_STEP),
                None => std::thread::sleep(CONTROL_STEP),
            }
        }
    }

    /// The recording's reader (its warnings and read statistics).
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
        // the context is cloned once, if a sink asks for it
        let mut lookup = |_: &FlowEvent| it.ctx.clone();
        let mut rec = RecordRef::new(&it.ev, it.at, self.wall, &mut lookup);
        self.out
            .deliver(&it.ev, &mut rec, it.at, &self.local, it.is_final);
    }

    fn tick(&mut self, now: MonoNs) -> SinkControl {
        let ctl = self.out.tick(now, self.wall);
        match self.out.flush() {
            SinkControl::Closed => SinkControl::Closed,
            _ => ctl,
        }
    }

    /// Wait until recorded time `at` is due in real time; with controls,
    /// in steps, applying commands between them.
    fn pace(
        &mut self,
        at: MonoNs,
        cur: &mut Cursor,
        stop: &AtomicBool,
    ) -> Result<Effect, ReplayError> {
        loop {
            if cur.skip_until.is_some() || stop.load(Ordering::Relaxed) {
                return Ok(Effect::None);
            }
            let (Some(p), Some(speed)) = (&mut self.pacer, self.cfg.speed) else {
                return Ok(Effect::None);
            };
            let real = (p.now)();
            let Some(d) = pace_wait(at, real, speed, &mut cur.start) else {
                return Ok(Effect::None);
            };
            if self.controls.is_none() {
                (p.sleep)(d);
                return Ok(Effect::None);
            }
            (p.sleep)(d.min(CONTROL_STEP));
            let e = self.control(cur, stop)?;
            if e != Effect::None {
                return Ok(e);
            }
        }
    }

    /// Replay everything (or until `stop`, or a sink is done).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Stopped, ReplayError> {
        let mut cur = Cursor::default();
        let stopped = loop {
            if stop.load(Ordering::Relaxed) {
                break Stopped::Signal;
            }
            if self.control(&mut cur, stop)? == Effect::Quit {
                break Stopped::Done;
            }
            let Some(item) = self.reader.next_item()? else {
                if self.controls.is_some() && self.at_end(&mut cur, stop)? == Effect::Restarted {
                    continue;
                }
                break Stopped::Done;
            };
            // flows set the pace; status and end records follow them
            match &item {
                Item::Flow(it) => {
                    match self.pace(it.at, &mut cur, stop)? {
                        Effect::Quit => break Stopped::Done,
                        Effect::Restarted => continue,
                        Effect::None => {}
                    }
                    cur.now = cur.now.max(it.at);
                }
                Item::Status { at, .. } | Item::End { at } if cur.now.0 > 0 || self.cfg.live => {
                    cur.now = cur.now.max(*at);
                }
                _ => {}
            }
            let now = cur.now;
            if cur.skip_until.is_some_and(|t| now >= t) {
                // arrived: pace from here, and say so
                cur.skip_until = None;
                cur.start = None;
                cur.last_tick = None;
                self.show(&cur);
            }
            match item {
                Item::Flow(it) => self.flow(&it),
                Item::Status { json, at } => {
                    if self.in_window(at)
                        && let Ok(st) = serde_json::from_str::<StatusRecord>(&json)
                    {
                        self.out.status(&st);
                    }
                }
                Item::Clock(c) => self.wall = c,
                Item::End { .. } => {}
            }
            if now.0 > 0
                && cur.skip_until.is_none()
                && cur.last_tick.is_none_or(|t| now.since(t) >= TICK_NS)
            {
                cur.last_tick = Some(now);
                match self.tick(now) {
                    SinkControl::Continue => {}
                    SinkControl::Done => break Stopped::Done,
                    SinkControl::Closed => break Stopped::OutputClosed,
                }
            }
        };
        if stopped != Stopped::OutputClosed {
            self.tick(cur.now);
        }
        self.out.finish()?;
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
    use crate::recsink::{RecordConfig, RecordSink};
    use netwho_auditlog::logsink::{LogFormat, LogSink, On};
    use netwho_model::record::{Context, Names};
    use netwho_model::{Endpoint, Flow};
    use netwho_sink::output::Output;
    use netwho_store::recording::{Header, RecordingFile};
    use std::sync::{Arc, Mutex};

    type Shared = netwho_sink::output::MemoryOutput;

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
                s.tick(now, wall);
                s.flush();
            }
        }
        for s in sinks.iter_mut() {
            s.finish().unwrap();
        }
    }

    /// A fresh directory, the recording's path in it, and its recorder.
    fn recorder(tag: &str) -> (std::path::PathBuf, std::path::PathBuf, RecordSink) {
        let dir = std::env::temp_dir().join(format!("netwho-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.nwr");
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
        (dir, path, rec)
    }

    #[test]
    fn a_replayed_recording_gives_the_sinks_what_the_live_run_gave() {
        let (dir, path, rec) = recorder("replay");
        let live = Shared::default();
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
        let (a, b) = (live.bytes(), replayed.bytes());
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
        let text = String::from_utf8(filtered.bytes()).unwrap();
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

    /// What a sink saw: the recorded time of each tick, the events since
    /// the last reset, and how often it was reset.
    #[derive(Default)]
    struct Seen {
        ticks: Vec<MonoNs>,
        events: u64,
        resets: u64,
    }

    struct Watch(Arc<Mutex<Seen>>);

    impl Sink for Watch {
        fn event(&mut self, _: &FlowEvent, _: &mut RecordRef<'_>) {
            self.0.lock().unwrap().events += 1;
        }
        fn status(&mut self, _: &StatusRecord) {}
        fn tick(&mut self, now: MonoNs, _: WallClock) -> SinkControl {
            self.0.lock().unwrap().ticks.push(now);
            SinkControl::Continue
        }
        fn reset(&mut self) {
            let mut s = self.0.lock().unwrap();
            s.events = 0;
            s.resets += 1;
        }
    }

    #[test]
    fn a_viewer_pauses_speeds_up_and_seeks_both_ways() {
        let (dir, path, rec) = recorder("ctl");
        // 30 recorded seconds, boot time 5 s to 35 s
        drive(&mut [Box::new(rec) as Box<dyn Sink>]);
        const S: u64 = 1_000_000_000;
        let all = Arc::new(Mutex::new(Seen::default()));
        let reader = Reader::open(std::slice::from_ref(&path)).unwrap();
        Replay::new(
            reader,
            vec![Box::new(Watch(Arc::clone(&all)))],
            ReplayConfig::default(),
            None,
        )
        .run(&AtomicBool::new(false))
        .unwrap();
        let all_events = all.lock().unwrap().events;

        // a manual real clock; the viewer's keys come at real times
        let real = Arc::new(Mutex::new(0u64));
        let (tx, rx) = std::sync::mpsc::channel();
        let script: Vec<(u64, ReplayCmd)> = vec![
            (2 * S, ReplayCmd::Pause),
            (5 * S, ReplayCmd::Pause),
            (6 * S, ReplayCmd::Seek(10 * S as i64)),
            (7 * S, ReplayCmd::Faster),
            (8 * S, ReplayCmd::Seek(-(15 * S as i64))),
            // at the end (about real 21 s): past it, then back from it
            (40 * S, ReplayCmd::Seek(100 * S as i64)),
            (41 * S, ReplayCmd::Seek(-(4 * S as i64))),
            (60 * S, ReplayCmd::Quit),
        ];
        let clock = Arc::clone(&real);
        let sleeper = Arc::clone(&real);
        let mut script = script.into_iter().peekable();
        let pacer = Pacer {
            now: Box::new(move || MonoNs(*clock.lock().unwrap())),
            sleep: Box::new(move |d| {
                let mut t = sleeper.lock().unwrap();
                *t += d.as_nanos() as u64;
                while let Some((at, cmd)) = script.next_if(|(at, _)| *at <= *t) {
                    let _ = at;
                    tx.send(cmd).unwrap();
                }
            }),
        };
        let shown = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let reopen_path = path.clone();
        let shown_by = Arc::clone(&shown);
        let reader = Reader::open(std::slice::from_ref(&path)).unwrap();
        let mut r = Replay::new(
            reader,
            vec![Box::new(Watch(Arc::clone(&seen)))],
            ReplayConfig {
                speed: Some(1.0),
                ..ReplayConfig::default()
            },
            Some(pacer),
        )
        .with_controls(Controls {
            cmds: rx,
            reopen: Box::new(move || Reader::open(std::slice::from_ref(&reopen_path))),
            show: Box::new(move |p| shown_by.lock().unwrap().push(p)),
        });
        assert_eq!(r.run(&AtomicBool::new(false)).unwrap(), Stopped::Done);

        let seen = seen.lock().unwrap();
        let shown = shown.lock().unwrap();
        let boot = |ns: u64| 1_700_000_000_000_000_000 + i128::from(ns);
        // paused at real 2 s (recorded 7 s), went on at real 5 s
        assert!(shown[0].paused && !shown[1].paused, "{shown:?}");
        let paused_at = shown[0].at_unix_ns;
        assert!(
            (boot(6 * S)..=boot(7 * S)).contains(&paused_at),
            "{shown:?}"
        );
        assert_eq!(shown[1].at_unix_ns, paused_at, "nothing moved while paused");
        // real 6 s: recorded ~8 s; +10 s: arrives at ~18 s with no tick between
        assert_eq!(shown[2].seeking, Some(shown[2].at_unix_ns + 10 * S as i128));
        let arrived = shown[3];
        assert_eq!(arrived.seeking, None);
        assert!(arrived.at_unix_ns >= shown[2].at_unix_ns + 10 * S as i128);
        // (the ticks before the seek back)
        let ticks: Vec<u64> = seen
            .ticks
            .iter()
            .map(|t| t.0)
            .scan(0, |last, t| {
                let going_on = t >= *last;
                *last = t;
                going_on.then_some(t)
            })
            .collect();
        let jump_from = (shown[2].at_unix_ns - boot(0)) as u64;
        let jump_to = (arrived.at_unix_ns - boot(0)) as u64;
        assert!(
            !ticks
                .iter()
                .any(|t| *t > jump_from + TICK_NS && *t < jump_to),
            "a tick while seeking: {ticks:?}"
        );
        // faster: 2x
        assert_eq!(shown[4].speed, Some(2.0));
        // back 15 s: from the start again, the sink reset, quietly to the target
        // (and once more from the end, below)
        assert_eq!(seen.resets, 2);
        let back = shown[5];
        assert_eq!(back.seeking, Some(back.at_unix_ns));
        // (from ~2 s of 2x after the speed change: 15 s back lands more than
        // 10 s before it, inside the file)
        assert!(
            back.at_unix_ns <= shown[4].at_unix_ns - 10 * S as i128,
            "{shown:?}"
        );
        assert!(back.at_unix_ns >= boot(5 * S), "{shown:?}");
        // arrived (the file's own clock, 7 ms off the one the target was
        // taken with, names the place)
        let arrived = shown[6];
        assert!(arrived.seeking.is_none(), "{shown:?}");
        assert!(
            (arrived.at_unix_ns - back.at_unix_ns).abs() < 10_000_000,
            "{shown:?}"
        );
        // it plays to the end, and says so: the last recorded time
        let end = shown[7];
        assert!(end.ended && end.seeking.is_none(), "{shown:?}");
        assert!(end.at_unix_ns >= boot(34 * S), "{shown:?}");
        // past the end: the status shows the end, not the target
        assert_eq!(shown[8].seeking, Some(end.at_unix_ns + 100 * S as i128));
        assert_eq!(
            (shown[9].ended, shown[9].seeking, shown[9].at_unix_ns),
            (true, None, end.at_unix_ns),
            "{shown:?}"
        );
        // back from the end works: 4 s before it, then to the end again
        let back = shown[10];
        assert!(!back.ended, "{shown:?}");
        assert_eq!(back.seeking, Some(end.at_unix_ns - 4 * S as i128));
        let last = shown.last().unwrap();
        assert!(last.ended && last.at_unix_ns == end.at_unix_ns, "{shown:?}");
        // and every event of the file after the last reset
        assert_eq!(seen.events, all_events);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
