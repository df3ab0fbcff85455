//! First-seen alerts under load (not a test): the cost per flow event of
//! the alert sink (what `[alerts]` adds to the daemon's collector thread),
//! against a sink that only takes the event's context (the least any sink
//! pays), measured in the same run: while every destination is new (each
//! learned and written to the database) and in the steady state (every
//! destination known), with the process's CPU (the writer thread's SQLite
//! work included) per flow.
//!
//!   alerts_bench [FLOWS]     (200,000 by default: open, update, close each)
#![expect(clippy::expect_used, reason = "a benchmark")]

use netwho_alerts::{AlertConfig, AlertSink, Board, Limits};
use netwho_model::FlowEvent;
use netwho_model::MonoNs;
use netwho_sink::Sink;
use netwho_sink::benchkit::{Baseline, context, cpu_seconds, events, feed};
use std::time::Duration;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(200_000, |s| s.parse().expect("FLOWS is a number"));
    let evs: Vec<(FlowEvent, MonoNs)> = events(n);
    let ctx = context();
    let tick = Duration::from_secs(1);
    let dir = std::env::temp_dir().join(format!("netwho-alerts-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let mut best = [f64::MAX; 5];
    for round in 0..3 {
        let base = feed(&mut Baseline(0), &evs, &ctx, tick);
        let db = dir.join(format!("h{round}.db"));
        let cfg = AlertConfig {
            db,
            access: netwho_store::private::Access::OWNER,
            // the events' clock is in 2026: learning all along (nothing
            // raised, everything learned and written)
            learn: Duration::from_secs(10 * 365 * 86_400),
            by_unit: false,
            allow: Vec::new(),
            audit: false,
            log: None,
            journal: None,
            webhook: None,
            limits: Limits {
                dests_per_program: 1 << 22,
                dests: 1 << 22,
                ..Limits::default()
            },
        };
        let mut sink = AlertSink::start(cfg, Board::new()).expect("the alert sink");
        let cpu0 = cpu_seconds(libc::RUSAGE_SELF);
        let new = feed(&mut sink, &evs, &ctx, tick);
        let known = feed(&mut sink, &evs, &ctx, tick);
        sink.finish().expect("the writer");
        let cpu = cpu_seconds(libc::RUSAGE_SELF) - cpu0;
        let b2 = feed(&mut Baseline(0), &evs, &ctx, tick);
        best = [
            best[0].min(base.min(b2)),
            best[1].min(new),
            best[2].min(known),
            best[3].min(cpu),
            best[4].min(new + known),
        ];
    }
    let _ = std::fs::remove_dir_all(&dir);
    let per = |s: f64| s * 1e9 / evs.len() as f64;
    println!(
        "alert sink: {} flow events ({n} flows: open, update, close), one program",
        evs.len()
    );
    println!(
        "  baseline (context only)        {:>8.0} ns/event",
        per(best[0])
    );
    println!(
        "  alerts, every destination new  {:>8.0} ns/event  ({:.1}x the baseline)",
        per(best[1]),
        best[1] / best[0]
    );
    println!(
        "  alerts, destinations known     {:>8.0} ns/event  ({:.1}x the baseline)",
        per(best[2]),
        best[2] / best[0]
    );
    println!(
        "  process CPU, both passes with the writer's SQLite: {:.2} µs per flow (wall {:.2} µs)",
        best[3] * 1e6 / (2.0 * n as f64),
        best[4] * 1e6 / (2.0 * n as f64)
    );
}
