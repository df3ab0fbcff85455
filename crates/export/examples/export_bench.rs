//! Flow export under load (not a test): flows through the export sink into
//! IPFIX messages sent over UDP to a collector on the loopback (a thread of
//! this program that counts what arrives), into JSON lines to /dev/null,
//! and through the OTLP sink to an OTLP/HTTP collector thread on the
//! loopback (gzip, one log record per event, metrics every second). Reports flows exported per second, the export sink's cost
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
    otlp(&evs, &ctx, n, base);
}

/// An OTLP/HTTP collector thread on the loopback: answers every request
/// 200 at once; counts the requests and their bytes; its CPU at the end.
fn http_collector(
    stop: Arc<AtomicBool>,
    got: Arc<AtomicU64>,
) -> (u16, std::thread::JoinHandle<f64>) {
    use std::io::{BufRead as _, Read as _, Write as _};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let port = l.local_addr().expect("addr").port();
    let t = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            s.set_nonblocking(false).expect("blocking");
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
            let mut w = s;
            while !stop.load(Ordering::Relaxed) {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(_) => continue,
                }
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    break;
                }
                got.fetch_add(1, Ordering::Relaxed);
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        }
        cpu(libc::RUSAGE_THREAD)
    });
    (port, t)
}

fn otlp(evs: &[(FlowEvent, MonoNs)], ctx: &Context, n: u64, base: f64) {
    use netwho_export::otlp::{OtlpConfig, OtlpSink, encode, http::OtlpHttp};
    let per = |s: f64| s * 1e9 / evs.len() as f64;
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let (port, collector) = http_collector(Arc::clone(&stop), Arc::clone(&got));
    let delivery = Arc::new(Delivery::default());
    let res = encode::Resource {
        host_name: "bench".into(),
        host_id: "0".repeat(32),
        version: "0".into(),
    };
    let dest = OtlpHttp::new(
        format!("http://127.0.0.1:{port}")
            .parse()
            .expect("endpoint"),
        encode::resource(&res),
        res.version.clone(),
        Arc::clone(&delivery),
    );
    let cfg = OtlpConfig {
        // every event a record (the updates of the workload too)
        update_every: Duration::ZERO,
        metrics_every: Some(Duration::from_secs(1)),
        resource: res,
        ..OtlpConfig::default()
    };
    let mut sink = OtlpSink::new(cfg, Output::spawn_to(Box::new(dest)), Arc::clone(&delivery));
    let cpu0 = cpu(libc::RUSAGE_SELF);
    let t = run(&mut sink, evs, ctx);
    stop.store(true, Ordering::Relaxed);
    let collector_cpu = collector.join().expect("collector");
    let netwho_cpu = cpu(libc::RUSAGE_SELF) - cpu0 - collector_cpu;
    println!(
        "  OTLP/HTTP sink (gzip)          {:>8.0} ns/event  ({:.1}x the baseline)",
        per(t),
        t / base
    );
    println!(
        "    {} log records in {} requests ({} arrived, {} dropped): {:.0} flows/s; netwho's CPU {:.2} us per flow ({:.2} us per record; {:.2}% of a core at 5,000 conn/s)",
        sink.records,
        delivery.sent.load(Ordering::Relaxed),
        got.load(Ordering::Relaxed),
        sink.dropped(),
        n as f64 / t,
        netwho_cpu * 1e6 / n as f64,
        netwho_cpu * 1e6 / sink.records.max(1) as f64,
        netwho_cpu / n as f64 * 5000.0 * 100.0
    );
}
