//! What the sinks' benchmarks share (`examples/*_bench.rs` of the crates
//! with sinks): synthetic flow events, the baseline sink, and a feeder
//! that drives a sink as the pipeline does. Not used by netwho itself.
#![expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]

use crate::status::StatusRecord;
use crate::{RecordRef, Sink};
use netwho_model::record::{Context, Names};
use netwho_model::time::WallClock;
use netwho_model::{Endpoint, Flow, FlowEvent, MonoNs};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Takes each event's context, as every sink that keeps anything must:
/// the least any sink pays, the baseline of the sinks' benchmarks.
#[derive(Debug, Default)]
pub struct Baseline(pub u64);

impl Sink for Baseline {
    fn event(&mut self, _: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.0 += rec.context().names.user.len() as u64;
    }
    fn status(&mut self, _: &StatusRecord) {}
}

/// `n` flows (500 processes, distinct remotes and local ports), each
/// opened, updated and closed 10 µs later, a flow every 20 µs.
pub fn events(n: u64) -> Vec<(FlowEvent, MonoNs)> {
    let mut v = Vec::with_capacity(n as usize * 3);
    for i in 0..n {
        let remote = Endpoint::new(IpAddr::from([10, 231, (i >> 8) as u8, i as u8]), 443);
        let mut f = Flow::example(1000 + (i % 500) as u32, i, remote);
        f.local.port = 1024 + (i % 60_000) as u16;
        let t = MonoNs(1_000_000_000 + i * 20_000);
        f.opened = t;
        v.push((FlowEvent::Opened(f.clone()), t));
        f.payload.bytes_sent = 500;
        f.payload.bytes_recv = 20_000;
        f.wire.bytes_sent = 800;
        f.wire.packets_sent = 6;
        v.push((FlowEvent::Updated(f.clone()), t.add_ns(5_000)));
        f.payload.bytes_recv = 40_000;
        f.wire.bytes_recv = 41_000;
        f.wire.packets_recv = 30;
        f.closed = Some(t.add_ns(10_000));
        v.push((FlowEvent::Closed(f), t.add_ns(10_000)));
    }
    v
}

/// The context every synthetic event gets (a user and a unit).
pub fn context() -> Context {
    Context {
        names: Arc::new(Names {
            user: "alice".into(),
            unit: "web.service".into(),
            ..Names::default()
        }),
        ..Context::default()
    }
}

/// A wall clock in 2026.
pub const WALL: WallClock = WallClock {
    boot_to_unix_ns: 1_795_000_000_000_000_000,
};

/// Seconds to feed every event to `sink`, ticking and flushing it every
/// `tick` of the events' time, as the pipeline does.
pub fn feed(
    sink: &mut dyn Sink,
    evs: &[(FlowEvent, MonoNs)],
    ctx: &Context,
    tick: Duration,
) -> f64 {
    let mut next_tick = MonoNs(0);
    let step = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
    let start = Instant::now();
    for (ev, at) in evs {
        let mut lookup = |_: &FlowEvent| ctx.clone();
        let mut rec = RecordRef::new(ev, *at, WALL, &mut lookup);
        sink.event(ev, &mut rec);
        if *at >= next_tick {
            sink.tick(*at, WALL);
            sink.flush();
            next_tick = at.add_ns(step);
        }
    }
    start.elapsed().as_secs_f64()
}

/// CPU seconds (user and system) of `who`: `libc::RUSAGE_SELF` (the
/// process) or `libc::RUSAGE_THREAD` (the calling thread).
pub fn cpu_seconds(who: i32) -> f64 {
    // SAFETY: getrusage fills the struct it is given
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
