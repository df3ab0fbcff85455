//! Log throughput: records per second and CPU per record that `netwho log`
//! sustains into a file, for each output format, against a baseline taken
//! in the same run (the same bytes, pre-encoded, written through the same
//! writer: the cost of the disk alone). Not a test: run by `bench/run`, or
//!
//!     cargo run --release -p netwho-pipeline --example log_throughput -- [RECORDS]
//!
//! Prints a table and one JSON line with the figures.

use netwho_auditlog::chain::{ChainKey, Origin};
use netwho_auditlog::logfile::{LogFile, LogFileConfig};
use netwho_auditlog::logsink::{LogFormat, LogSink, On};
use netwho_auditlog::template::{CONNTRACK_LOGGER, Template};
use netwho_auditlog::tsformat::TsFormat;
use netwho_model::record::{FlowRecord, RecordKind};
use netwho_sink::Sink;
use netwho_sink::output::{Destination, Output};
use std::path::{Path, PathBuf};

/// Process CPU time (all threads: the encoder and the writer), seconds.
fn cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn wall_s() -> f64 {
    netwho_enrich::clock::boot_now().0 as f64 / 1e9
}

/// Records that differ the way real ones do (ids, ports, counters).
fn records(n: usize) -> Vec<FlowRecord<'static>> {
    let base = FlowRecord::example();
    (0..n)
        .map(|i| {
            let mut r = base.clone();
            r.event = if i % 2 == 0 {
                RecordKind::Open
            } else {
                RecordKind::Close
            };
            r.flow_id = format!("{:x}-{i}", 0x7f3a_u32 + (i as u32 % 97));
            r.lport = 32_768 + (i % 28_000) as u16;
            r.pid = 1000 + (i % 5000) as u32;
            r.bytes_sent = (i as u64) * 13;
            r.bytes_recv = (i as u64) * 101;
            r
        })
        .collect()
}

struct Result {
    name: &'static str,
    records_per_s: f64,
    cpu_us_per_record: f64,
    bytes_per_record: f64,
}

fn file_output(path: &Path, chain: Option<ChainKey>) -> Output {
    let _ = std::fs::remove_file(path);
    let file = LogFile::open(LogFileConfig {
        path: path.to_owned(),
        chain,
        origin: Origin::default(),
        ..LogFileConfig::default()
    });
    match file {
        Ok(f) => Output::spawn_to(Box::new(f)),
        Err(e) => {
            eprintln!("cannot open {}: {e}", path.display());
            std::process::exit(2);
        }
    }
}

/// Write every record through a log sink into `path`; flush every 2,000
/// records, as the pipeline does about every tick.
fn run(
    name: &'static str,
    recs: &[FlowRecord<'_>],
    format: LogFormat,
    chain: Option<ChainKey>,
    path: &Path,
) -> Result {
    let (c0, w0) = (cpu_s(), wall_s());
    let mut sink = LogSink::with_notes(
        format,
        On::Both,
        file_output(path, chain),
        Output::spawn(Box::new(std::io::sink())),
    );
    for (i, r) in recs.iter().enumerate() {
        sink.write_record(r);
        if i % 2_000 == 1_999 {
            sink.flush_output();
        }
    }
    if let Err(e) = sink.finish() {
        eprintln!("{name}: {e}");
    }
    let lost = sink.dropped();
    if lost > 0 {
        eprintln!("{name}: {lost} records dropped (the writer fell behind)");
    }
    finish(name, recs.len(), c0, w0, path)
}

fn finish(name: &'static str, n: usize, c0: f64, w0: f64, path: &Path) -> Result {
    let (cpu, wall) = (cpu_s() - c0, wall_s() - w0);
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(path);
    Result {
        name,
        records_per_s: n as f64 / wall,
        cpu_us_per_record: cpu * 1e6 / n as f64,
        bytes_per_record: bytes as f64 / n as f64,
    }
}

const ROUNDS: usize = 3;

/// The baseline: pre-encoded lines in chunks, straight into a log file.
fn baseline(pre: &[u8], n: usize, path: &Path) -> Result {
    let _ = std::fs::remove_file(path);
    let (c0, w0) = (cpu_s(), wall_s());
    let mut raw = match LogFile::open(LogFileConfig {
        path: path.to_owned(),
        ..LogFileConfig::default()
    }) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let per_chunk = pre.len() / (n / 2_000).max(1);
    let mut at = 0;
    while at < pre.len() {
        let end = pre[at..]
            .iter()
            .skip(per_chunk)
            .position(|b| *b == b'\n')
            .map_or(pre.len(), |p| at + per_chunk + p + 1);
        if let Err(e) = raw.write_chunk(&pre[at..end]) {
            eprintln!("{e}");
        }
        at = end;
    }
    let _ = raw.close();
    finish("baseline: pre-encoded JSON, written", n, c0, w0, path)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("netwho-logbench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("{}: {e}", dir.display());
        std::process::exit(2);
    }
    let path: PathBuf = dir.join("flows.log");
    let recs = records(n);

    // baseline: the JSON lines, encoded beforehand, through the same file
    // writer (no chain): what the disk and the writer thread cost
    let mut pre = Vec::new();
    for r in &recs {
        if serde_json::to_writer(&mut pre, r).is_ok() {
            pre.push(b'\n');
        }
    }
    let ts = TsFormat::default();
    let key = ChainKey::from_bytes(b"benchmark key, thirty-two bytes!".to_vec());
    let conntrack = match Template::new(CONNTRACK_LOGGER, ts.clone()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // rounds interleave the formats, so that page-cache and frequency
    // effects fall on all of them alike; medians are reported
    let mut rounds: Vec<Vec<Result>> = Vec::new();
    for _ in 0..ROUNDS {
        rounds.push(vec![
            baseline(&pre, n, &path),
            run("json", &recs, LogFormat::Json, None, &path),
            run(
                "text",
                &recs,
                LogFormat::Text(ts.clone(), netwho_auditlog::logsink::TEXT_CMDLINE),
                None,
                &path,
            ),
            run(
                "--format (conntrack-logger's)",
                &recs,
                LogFormat::Template(conntrack.clone()),
                None,
                &path,
            ),
            run(
                "json --chain",
                &recs,
                LogFormat::Json,
                Some(ChainKey::unkeyed()),
                &path,
            ),
            run(
                "json --chain-key",
                &recs,
                LogFormat::Json,
                Some(key.clone()),
                &path,
            ),
        ]);
    }
    let median = |i: usize, f: fn(&Result) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(|r| f(&r[i])).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let results: Vec<Result> = (0..rounds[0].len())
        .map(|i| Result {
            name: rounds[0][i].name,
            records_per_s: median(i, |r| r.records_per_s),
            cpu_us_per_record: median(i, |r| r.cpu_us_per_record),
            bytes_per_record: median(i, |r| r.bytes_per_record),
        })
        .collect();
    let baseline = &results[0];
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "{n} records per format, written to a file, median of {ROUNDS} rounds (CPU: the \
         encoder thread plus the writer thread)"
    );
    println!(
        "{:<34} {:>12} {:>11} {:>10} {:>14}",
        "format", "records/s", "CPU µs/rec", "bytes/rec", "CPU vs baseline"
    );
    let mut json = serde_json::Map::new();
    for r in &results {
        println!(
            "{:<34} {:>12.0} {:>11.2} {:>10.0} {:>14.2}",
            r.name,
            r.records_per_s,
            r.cpu_us_per_record,
            r.bytes_per_record,
            r.cpu_us_per_record / baseline.cpu_us_per_record
        );
        json.insert(
            r.name.to_owned(),
            serde_json::json!({
                "records_per_s": r.records_per_s,
                "cpu_us_per_record": r.cpu_us_per_record,
                "bytes_per_record": r.bytes_per_record,
            }),
        );
    }
    println!("{}", serde_json::Value::Object(json));
}
