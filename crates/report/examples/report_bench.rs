//! Report benchmark: `netwho report` over a synthetic recording of many
//! flows (10 million by default), time and peak memory, against the
//! `sort | uniq -c` and `awk` answers an administrator would get from the
//! same flows as a JSON-lines log (`netwho log --json --on close`), all in
//! the same run; each report from the recording's summary (`FILE.sum`, as
//! `netwho record` writes it) and decoded in full (`--no-summary`), with
//! the same answer. Also the recorder's encoding speed, bytes per flow and
//! the cost of keeping the summary.
//! Not a test: run by `bench/run`, or
//!
//!     cargo build --release -p netwho
//!     cargo run --release -p netwho-pipeline --example report_bench -- \
//!         target/release/netwho [FLOWS] [DIR]
//!
//! Prints a table; writes nothing but its two input files into DIR
//! (default bench/out/report), which it deletes at the end (unless
//! NETWHO_BENCH_KEEP is set).

#![expect(
    clippy::expect_used,
    reason = "a benchmark: a failed write ends it, with the reason"
)]

use netwho_model::record::{Context, FlowRecord, Names, RecordKind};
use netwho_model::time::WallClock;
use netwho_model::{CloseReason, Endpoint, Flow, MonoNs};
use netwho_report::summary::RecordingSummarizer;
use netwho_store::recording::{Encoder, Header, Kind, RecordingFile, Summarizer};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The recorder's summarizer, timed.
struct Timed(RecordingSummarizer, Arc<std::sync::atomic::AtomicU64>);

/// `f`, its time added to `total` (ns).
fn timed<T>(total: &std::sync::atomic::AtomicU64, f: impl FnOnce() -> T) -> T {
    let t0 = netwho_enrich::clock::boot_now().0;
    let r = f();
    let ns = netwho_enrich::clock::boot_now().0.saturating_sub(t0);
    total.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    r
}

impl Summarizer for Timed {
    fn frame(&mut self, raw: &[u8]) {
        let Timed(s, total) = self;
        timed(total, || s.frame(raw));
    }

    fn finish(&mut self) -> Result<Vec<u8>, String> {
        let Timed(s, total) = self;
        timed(total, || s.finish())
    }

    fn left_out(&self) -> Vec<String> {
        self.0.left_out()
    }
}

fn wall_s() -> f64 {
    netwho_enrich::clock::boot_now().0 as f64 / 1e9
}

/// Wall seconds, CPU seconds and peak RSS (MiB) of a command, from its
/// own rusage (the largest process of a pipeline, for `sh -c`).
#[expect(
    clippy::zombie_processes,
    reason = "reaped by wait4, which also gives its rusage"
)]
fn measure(cmd: &mut Command) -> (f64, f64, f64, String) {
    let t0 = wall_s();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut o) = child.stdout {
            let _ = std::io::Read::read_to_string(&mut o, &mut s);
        }
        s
    });
    // SAFETY: wait4 fills the status and the rusage we own, for our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    // SAFETY: as above.
    unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = wall_s() - t0;
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    let text = out.join().unwrap_or_default();
    assert!(status == 0, "{cmd:?} failed ({status})");
    (
        wall,
        t(ru.ru_utime) + t(ru.ru_stime),
        ru.ru_maxrss as f64 / 1024.0,
        text,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let netwho = PathBuf::from(args.get(1).map_or("target/release/netwho", String::as_str));
    let flows: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let dir = PathBuf::from(args.get(3).map_or("bench/out/report", String::as_str));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("output directory");
    let rec = dir.join("flows.nwr");
    let log = dir.join("flows.jsonl");

    // 2,000 processes of 20 users talking to 100,000 remotes
    let names: Vec<Arc<Names>> = (0..20)
        .map(|u| {
            Arc::new(Names {
                user: format!("user{u}"),
                group: "users".into(),
                cgroup: format!("/system.slice/app{u}.service"),
                unit: format!("app{u}.service"),
                container_id: String::new(),
            })
        })
        .collect();
    let procs: Vec<Flow> = (0..2000u32)
        .map(|p| {
            let mut f = Flow::example(10_000 + p, 0, Endpoint::unspecified());
            f.comm = format!("app{}", p % 50);
            f.uid = 1000 + p % 20;
            f
        })
        .collect();
    let wall = WallClock {
        boot_to_unix_ns: 1_795_000_000_000_000_000,
    };
    let header = Header {
        boot_to_unix_ns: wall.boot_to_unix_ns,
        resolution_ns: 1_000_000_000,
        ..Header::default()
    };
    let summarizer = RecordingSummarizer::new(&header);
    let mut file = RecordingFile::create(&rec, header, None, true).expect("recording");
    let sum_ns = Arc::new(std::sync::atomic::AtomicU64::new(0));
    file.summarize(Box::new(Timed(summarizer, Arc::clone(&sum_ns))));
    let mut jsonl = BufWriter::with_capacity(1 << 20, std::fs::File::create(&log).expect("log"));
    let mut enc = Encoder::new();
    let mut raw = Vec::with_capacity(2 << 20);
    let (mut enc_s, mut json_s) = (0.0, 0.0);
    let mut truth_top: (u32, u64) = (0, 0);
    let mut per_pid = vec![0u64; procs.len()];
    for i in 0..flows {
        let p = (i.wrapping_mul(2_654_435_761) % procs.len() as u64) as usize;
        let mut f = procs[p].clone();
        f.key.cookie.0 = i + 1;
        let r = (i.wrapping_mul(40_503) % 100_000) as u32;
        f.remote = Endpoint::new(
            std::net::IpAddr::from((0x5d00_0000u32 + r).to_be_bytes()),
            [443, 80, 53, 22][(i % 4) as usize],
        );
        f.key.remote = f.remote;
        f.local.port = 32_768 + (i % 28_000) as u16;
        f.id.0 = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let t = MonoNs(5_000_000_000 + i * 360_000); // 10M flows in an hour
        f.opened = t;
        let ctx = Context {
            names: Arc::clone(&names[f.uid as usize % 20]),
            ..Context::default()
        };
        let t0 = wall_s();
        enc.flow(&mut raw, Kind::Open, &f, &ctx, t);
        f.payload.bytes_sent = 100 + i % 1000;
        f.payload.bytes_recv = 1000 + i % 10_000;
        f.wire.bytes_sent = f.payload.bytes_sent + 320;
        f.wire.bytes_recv = f.payload.bytes_recv + 480;
        f.wire.packets_sent = 6;
        f.wire.packets_recv = 8;
        f.closed = Some(t.add_ns(200_000_000));
        f.close_reason = Some(CloseReason::SocketClosed);
        let close_at = t.add_ns(200_000_000);
        enc.flow(&mut raw, Kind::Close, &f, &ctx, close_at);
        if raw.len() >= 1 << 20 {
            enc.seal();
            file.write_frame(&raw).expect("write");
            raw.clear();
        }
        let t1 = wall_s();
        let r = FlowRecord::build(RecordKind::Close, &f, close_at, wall, &ctx);
        serde_json::to_writer(&mut jsonl, &r).expect("json");
        jsonl.write_all(b"\n").expect("json");
        json_s += wall_s() - t1;
        enc_s += t1 - t0;
        per_pid[p] += f.payload.bytes_sent + f.payload.bytes_recv;
    }
    enc.end(&mut raw, MonoNs(5_000_000_000 + flows * 360_000));
    file.write_frame(&raw).expect("write");
    let t0 = wall_s();
    let notes = file.finish().expect("finish");
    assert!(notes.is_empty(), "the summary: {notes:?}");
    enc_s += wall_s() - t0;
    let sum_s = sum_ns.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9;
    let sum_bytes =
        std::fs::metadata(netwho_store::recording::summary_path(&rec)).map_or(0, |m| m.len());
    jsonl.flush().expect("json");
    for (p, b) in per_pid.iter().enumerate() {
        if *b > truth_top.1 {
            truth_top = (10_000 + p as u32, *b);
        }
    }
    let rec_bytes = std::fs::metadata(&rec).map_or(0, |m| m.len());
    let log_bytes = std::fs::metadata(&log).map_or(0, |m| m.len());

    let report = |what: &str, summary: bool| {
        let mut c = Command::new(&netwho);
        c.args(["report", what, "-r"]).arg(&rec).arg("--csv");
        if !summary {
            c.arg("--no-summary");
        }
        measure(&mut c)
    };
    let sh = |script: String| {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script).env("LC_ALL", "C");
        measure(&mut c)
    };
    let l = log.display();
    let top = report("top-procs", true);
    let top_full = report("top-procs", false);
    let users = report("by-user", true);
    let users_full = report("by-user", false);
    assert!(top.3 == top_full.3, "top-procs differs from its summary");
    assert!(users.3 == users_full.3, "by-user differs from its summary");
    // (the record's own pid is the one followed by "ppid"; parents have pids too)
    let uniq = sh(format!(
        "grep -o '\"pid\":[0-9]*,\"ppid\"' {l} | sort | uniq -c | sort -rn | head -10"
    ));
    let awk = sh(format!(
        "awk '{{ match($0, /\"pid\":[0-9]+/); p = substr($0, RSTART + 6, RLENGTH - 6); \
         match($0, /\"bytes_sent\":[0-9]+/); s = substr($0, RSTART + 13, RLENGTH - 13); \
         match($0, /\"bytes_recv\":[0-9]+/); r = substr($0, RSTART + 13, RLENGTH - 13); \
         b[p] += s + r }} END {{ for (k in b) print b[k], k }}' {l} | sort -rn | head -10"
    ));
    // the answers agree with the truth
    let top_line = top.3.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        top_line.starts_with(&format!("{},", truth_top.0)),
        "report's top process {top_line} is not {truth_top:?}"
    );
    let awk_top = awk.3.lines().next().unwrap_or_default().to_string();
    assert!(
        awk_top == format!("{} {}", truth_top.1, truth_top.0),
        "awk's top {awk_top} is not {truth_top:?}"
    );

    let n = flows as f64;
    println!(
        "report benchmark: {flows} synthetic flows (2,000 processes, 20 users, 100,000 remotes; \
         open + close each)"
    );
    println!(
        "  recording: {:.1} MiB = {:.1} B/flow, encoded at {:.2} us/flow ({:.0} flows/s)",
        rec_bytes as f64 / 1048576.0,
        rec_bytes as f64 / n,
        enc_s * 1e6 / n,
        n / enc_s.max(1e-9)
    );
    println!(
        "  JSON log (close records only): {:.1} MiB = {:.0} B/flow, encoded at {:.2} us/flow",
        log_bytes as f64 / 1048576.0,
        log_bytes as f64 / n,
        json_s * 1e6 / n
    );
    println!(
        "  summary (top-procs/bytes, by-user, by-unit): {:.1} KiB, kept at {:.2} us/flow \
         ({:.0} % of encoding and writing)",
        sum_bytes as f64 / 1024.0,
        sum_s * 1e6 / n,
        100.0 * sum_s / enc_s.max(1e-9)
    );
    println!(
        "  {:<54} {:>8} {:>8} {:>9} {:>8}",
        "", "wall s", "CPU s", "max RSS", "vs uniq"
    );
    for (name, m) in [
        ("netwho report top-procs -r flows.nwr", &top),
        (
            "netwho report top-procs -r flows.nwr --no-summary",
            &top_full,
        ),
        ("netwho report by-user -r flows.nwr", &users),
        (
            "netwho report by-user -r flows.nwr --no-summary",
            &users_full,
        ),
        (
            "grep -o pid log | sort | uniq -c | sort -rn  (flows)",
            &uniq,
        ),
        ("awk bytes per pid log | sort -rn  (bytes)", &awk),
    ] {
        println!(
            "  {name:<54} {:>8.2} {:>8.2} {:>6.0} MiB {:>7.2}x",
            m.0,
            m.1,
            m.2,
            m.0 / uniq.0.max(1e-9)
        );
    }
    println!(
        "  (ratios: wall time against the sort | uniq -c baseline in this run; the answers \
         agree: top process {} with {} bytes)",
        truth_top.0, truth_top.1
    );
    // (NETWHO_BENCH_KEEP=1 keeps them, to profile a report over them)
    if std::env::var_os("NETWHO_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(Path::new(&dir));
    }
}
