//! Fleet publishing under load (not a test): flows through the daemon's
//! fleet sink (records as JSON lines, into the on-disk spool, published to
//! NATS JetStream and removed once acknowledged) against a nats-server
//! this program starts on the loopback. Reports the cost per flow event
//! on the pipeline's thread against a sink that only takes the event's
//! context (same run), flows per second until JetStream has acknowledged
//! every one, and netwho's CPU per flow (this process; nats-server not
//! counted).
//!
//!   fleet_bench [FLOWS]     (100,000 by default: open, update, close each)
#![expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
#![expect(clippy::expect_used, reason = "a benchmark")]

use netwho_export::net::Delivery;
use netwho_export::sink::{ExportConfig, ExportSink, Format};
use netwho_fleet::publish::{FleetConfig, FleetDestination};
use netwho_model::MonoNs;
use netwho_sink::Sink;
use netwho_sink::benchkit::{Baseline, WALL, context, cpu_seconds, events, feed};
use netwho_sink::output::Output;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |s| s.parse().expect("FLOWS is a number"));
    let dir = std::env::temp_dir().join(format!("netwho-fleet-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let Ok(mut nats) = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("js"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        println!("fleet: nats-server is not installed (apt-get install nats-server); skipped");
        return;
    };
    std::thread::sleep(Duration::from_millis(500));

    let evs = events(n);
    let ctx = context();
    println!(
        "fleet publishing: {n} flows ({} events: open, update, close each), to JetStream on the loopback",
        evs.len()
    );
    let per = |s: f64| s * 1e9 / evs.len() as f64;
    let base = (0..3)
        .map(|_| {
            let t = Instant::now();
            feed(&mut Baseline(0), &evs, &ctx, Duration::from_millis(100));
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min);
    println!("  baseline (context only)   {:>8.0} ns/event", per(base));

    let delivery = Arc::new(Delivery::default());
    let dest = FleetDestination::start(
        FleetConfig {
            url: format!("nats://127.0.0.1:{port}"),
            host: "bench".into(),
            spool_dir: dir.join("spool"),
            spool_max: 4 << 30,
            drain: Duration::from_secs(600),
        },
        Arc::clone(&delivery),
    )
    .expect("fleet");
    let mut sink = ExportSink::new(
        ExportConfig::new(Format::Fleet, Vec::new()),
        Output::spawn_to(Box::new(dest)),
        Arc::clone(&delivery),
    );
    let cpu0 = cpu_seconds(libc::RUSAGE_SELF);
    let start = Instant::now();
    feed(&mut sink, &evs, &ctx, Duration::from_millis(100));
    let last = evs.last().map_or(MonoNs(0), |e| e.1);
    sink.tick(last.add_ns(5_000_000_000), WALL);
    sink.flush();
    let fed = start.elapsed().as_secs_f64();
    // finish: every record acknowledged (the spool drained)
    sink.finish().expect("finish");
    let total = start.elapsed().as_secs_f64();
    let used = cpu_seconds(libc::RUSAGE_SELF) - cpu0;
    let spooled = std::fs::read_dir(dir.join("spool")).map_or(0, |d| d.count());
    println!(
        "  fleet sink (pipeline)     {:>8.0} ns/event  ({:.1}x the baseline)",
        per(fed),
        fed / base
    );
    println!(
        "    {} records in {} acknowledged batches ({} lost, {spooled} left in the spool): {:.0} flows/s until acknowledged; netwho's CPU {:.2} us per flow ({:.2}% of a core at 5,000 conn/s)",
        sink.records,
        delivery.sent.load(Ordering::Relaxed),
        delivery.lost.load(Ordering::Relaxed),
        n as f64 / total,
        used * 1e6 / n as f64,
        used / n as f64 * 5000.0 * 100.0
    );
    let _ = nats.kill();
    let _ = nats.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
