//! Flow export under load (not a test): flows through the export sink into
//! IPFIX messages sent over UDP to a collector on the loopback (a thread of
//! this program that counts what arrives), and into JSON lines to
//! /dev/null. Reports flows exported per second, the export sink's cost
//! per flow event on the collector thread against a sink that only takes
//! the event's context (same run), and netwho's CPU per flow (every thread
//! of this program but the collector's).
//!
//!   export_bench [FLOWS]     (200,000 by default: open, update, close each)
#![expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
#![expect(clippy::expect_used, reason = "a benchmark")]

use netwho_export::ie::{DEFAULT_TEMPLATE, parse_template};
use netwho_export::net::{Collector, Delivery, Udp};
use netwho_export::sink::{ExportConfig, ExportSink, Format};
use netwho_model::record::Context;
use netwho_model::{FlowEvent, MonoNs};
use netwho_sink::Sink;
use netwho_sink::benchkit::{Baseline, WALL, context, cpu_seconds as cpu, events, feed};
use netwho_sink::output::Output;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Seconds the collector thread spends feeding every event (ticking and
/// flushing every 100 ms of the events' time), then finishing.
fn run(sink: &mut dyn Sink, evs: &[(FlowEvent, MonoNs)], ctx: &Context) -> f64 {
    let start = Instant::now();
    feed(sink, evs, ctx, Duration::from_millis(100));
    let last = evs.last().map_or(MonoNs(0), |e| e.1);
    // past the join wait: every record is due
    sink.tick(last.add_ns(5_000_000_000), WALL);
    sink.flush();
    sink.finish().expect("finish");
    start.elapsed().as_secs_f64()
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(200_000, |s| s.parse().expect("FLOWS is a number"));
    let evs = events(n);
    let ctx = context();
    let template = parse_template(DEFAULT_TEMPLATE).expect("template");
    println!(
        "flow export: {n} flows ({} events: open, update, close each), every element of the default template",
        evs.len()
    );
    let base = (0..3)
        .map(|_| run(&mut Baseline(0), &evs, &ctx))
        .fold(f64::MAX, f64::min);
    let per = |s: f64| s * 1e9 / evs.len() as f64;
    println!(
        "  baseline (context only)        {:>8.0} ns/event",
        per(base)
    );

    // IPFIX over UDP to a collector thread on the loopback
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    // a large receive buffer (as root), so the collector is not what drops
    {
        use std::os::fd::AsRawFd as _;
        let size: libc::c_int = 64 << 20;
        // SAFETY: setsockopt reads an int of the given size
        unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    let to: Collector = rx
        .local_addr()
        .expect("addr")
        .to_string()
        .parse()
        .expect("collector");
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
    let collector = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while !s.load(Ordering::Relaxed) {
            if rx.recv(&mut buf).is_ok_and(|n| n >= 16) {
                g.fetch_add(1, Ordering::Relaxed);
            }
        }
        cpu(libc::RUSAGE_THREAD)
    });
    let delivery = Arc::new(Delivery::default());
    let udp = Udp::connect(&to, Arc::clone(&delivery)).expect("udp");
    let mut sink = ExportSink::new(
        ExportConfig::new(Format::Ipfix, template.clone()),
        Output::spawn_to(Box::new(udp)),
        Arc::clone(&delivery),
    );
    let cpu0 = cpu(libc::RUSAGE_SELF);
    let t = run(&mut sink, &evs, &ctx);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let collector_cpu = collector.join().expect("collector");
    let netwho_cpu = cpu(libc::RUSAGE_SELF) - cpu0 - collector_cpu;
    let sent = delivery.sent.load(Ordering::Relaxed);
    println!(
        "  IPFIX/UDP sink                 {:>8.0} ns/event  ({:.1}x the baseline)",
        per(t),
        t / base
    );
    println!(
        "    {} records in {sent} messages ({} arrived, {} lost, {} dropped): {:.0} flows/s; netwho's CPU {:.2} us per flow ({:.2}% of a core at 5,000 conn/s)",
        sink.records,
        got.load(Ordering::Relaxed),
        delivery.lost.load(Ordering::Relaxed),
        sink.dropped(),
        n as f64 / t,
        netwho_cpu * 1e6 / n as f64,
        netwho_cpu / n as f64 * 5000.0 * 100.0
    );

    // JSON lines to /dev/null
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let mut sink = ExportSink::new(
        ExportConfig::new(Format::Jsonl, template),
        Output::spawn(Box::new(null)),
        Arc::new(Delivery::default()),
    );
    let t = run(&mut sink, &evs, &ctx);
    println!(
        "  JSON-lines sink                {:>8.0} ns/event  ({:.1}x the baseline): {:.0} flows/s",
        per(t),
        t / base,
        n as f64 / t
    );
}
