//! The daemon's live state under load (not a test): the cost per flow
//! event of the live sink (what `netwho daemon` adds on its collector
//! thread for the API), against a sink that only takes the event's context
//! (the least any sink pays), measured in the same run; then the cost of
//! one publish and of answering `/api/v1/flows` with many flows held.
//!
//!   live_bench [FLOWS]     (200,000 by default: open, update, close each)
#![expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
#![expect(clippy::expect_used, reason = "a benchmark")]

use netwho_api::{Live, LiveConfig, LiveSink};
use netwho_model::record::Context;
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, MonoNs};
use netwho_sink::Sink;
use netwho_sink::benchkit::{Baseline, context, events, feed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds to feed every event (and tick every simulated second).
fn run(sink: &mut dyn Sink, evs: &[(FlowEvent, MonoNs)], ctx: &Context) -> f64 {
    feed(sink, evs, ctx, Duration::from_secs(1))
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(200_000, |s| s.parse().expect("FLOWS is a number"));
    let evs = events(n);
    let ctx = context();
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let base = run(&mut Baseline(0), &evs, &ctx);
        let live = Live::new(LiveConfig {
            keep_closed: Duration::from_secs(10),
            ..LiveConfig::default()
        });
        let mut sink = LiveSink::new(live);
        let t = run(&mut sink, &evs, &ctx);
        best = (best.0.min(base), best.1.min(t));
    }
    let per = |s: f64| s * 1e9 / evs.len() as f64;
    println!(
        "live sink: {} flow events ({n} flows: open, update, close)",
        evs.len()
    );
    println!("  baseline (context only)  {:>8.0} ns/event", per(best.0));
    println!(
        "  live sink                {:>8.0} ns/event  ({:.1}x the baseline; {:.2}% of a core at 5,000 conn/s)",
        per(best.1),
        best.1 / best.0,
        per(best.1) * 3.0 * 5000.0 / 1e9 * 100.0
    );

    // answering /api/v1/flows-like queries with many flows held
    for held in [1_000u64, 10_000, 100_000] {
        let live = Live::new(LiveConfig::default());
        let mut sink = LiveSink::new(Arc::clone(&live));
        let opens: Vec<(FlowEvent, MonoNs)> = events(held)
            .into_iter()
            .filter(|(e, _)| matches!(e, FlowEvent::Opened(_)))
            .collect();
        run(&mut sink, &opens, &ctx);
        let last = opens.last().map_or(MonoNs(0), |e| e.1);
        let t0 = Instant::now();
        sink.tick(last.add_ns(2_000_000_000), WallClock::default());
        let publish = t0.elapsed();
        let t0 = Instant::now();
        let st = live.state();
        let json: usize = st
            .flows
            .values()
            .map(|v| {
                serde_json::to_string(&netwho_model::record::FlowRecord::build(
                    netwho_model::record::RecordKind::Update,
                    &v.flow,
                    v.at,
                    st.wall,
                    &v.ctx,
                ))
                .map_or(0, |s| s.len())
            })
            .sum();
        let answer = t0.elapsed();
        println!(
            "  {held:>7} flows held: publish {:>7.2} ms, all as flow records {:>7.1} ms ({} KiB)",
            publish.as_secs_f64() * 1e3,
            answer.as_secs_f64() * 1e3,
            json / 1024
        );
    }
}
