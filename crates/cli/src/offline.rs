//! Wiring of the commands that read a recording instead of the kernel:
//! `netwho report`, `netwho log -r`, `netwho top -r`; and of the recorder.

use crate::args::{LogArgs, RecordArgs, ReportArgs, TimeArg, TopArgs};
use crate::{Failure, cannot_start, read_filter};
use anyhow::Context as _;
use netwho_pipeline::recsink::{RecordConfig, RecordSink};
use netwho_pipeline::replay::{Controls, Pacer, Replay, ReplayConfig, ReplayError, ReplayPos};
use netwho_pipeline::{PipelineError, Sink, Stopped};
use netwho_report::request::{Printed, read_json};
use netwho_report::{ReportConfig, ReportKind, Reporter};
use netwho_store::history::{History, HistoryError};
use netwho_store::recording::{Header, Reader, RecordingFile};
use serde_json::json;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The recorder sink for `netwho record`, its file created and headed.
pub fn record_sink(
    r: &RecordArgs,
    filter: Option<String>,
    scope: Option<String>,
) -> Result<Box<dyn Sink>, Failure> {
    let cfg = RecordConfig {
        resolution: r.resolution,
        duration: r.duration,
        count: r.count,
        progress: !r.quiet,
    };
    let snaplen = r.snaplen.unwrap_or(0);
    recorder(&r.write, r.rotate, r.overwrite, snaplen, cfg, filter, scope)
}

/// `netwho log --record FILE`: the recorder beside the log, quietly, at
/// the default resolution, until the log stops.
pub fn log_record_sink(
    path: &Path,
    filter: Option<String>,
    scope: Option<String>,
) -> Result<Box<dyn Sink>, Failure> {
    let cfg = RecordConfig {
        resolution: Duration::from_secs(1),
        duration: None,
        count: None,
        progress: false,
    };
    recorder(path, None, false, 0, cfg, filter, scope)
}

/// A recording at `path` (segments of `rotate` bytes, payload up to
/// `snaplen` bytes per flow and direction), headed with this host, boot,
/// clock and the filter it passes, and the sink that writes it.
fn recorder(
    path: &Path,
    rotate: Option<u64>,
    overwrite: bool,
    snaplen: u32,
    cfg: RecordConfig,
    filter: Option<String>,
    scope: Option<String>,
) -> Result<Box<dyn Sink>, Failure> {
    let origin = netwho_auditlog::chain::Origin::here();
    let header = Header {
        created_unix_ns: netwho_enrich::clock::unix_now_ns(),
        host: origin.host,
        boot_id: netwho_enrich::boot_id(),
        netwho_version: env!("CARGO_PKG_VERSION").into(),
        resolution_ns: netwho_model::nanos(cfg.resolution),
        snaplen,
        filter,
        scope,
        boot_to_unix_ns: netwho_enrich::clock::wall_clock().boot_to_unix_ns,
        local_addrs: netwho_enrich::net::local_addrs().into_iter().collect(),
        segment: 0,
        attribution: "ebpf".into(),
    };
    if overwrite {
        for p in netwho_store::recording::segments_of(path) {
            if p != path && p.exists() {
                std::fs::remove_file(&p)
                    .with_context(|| format!("removing {}", p.display()))
                    .map_err(cannot_start)?;
            }
        }
    }
    let file = RecordingFile::create(path, header, rotate, overwrite).map_err(cannot_start)?;
    if cfg.progress {
        let payload = match snaplen {
            0 => String::new(),
            n => format!(", the first {n} bytes of payload per flow and direction"),
        };
        eprintln!(
            "netwho record: writing {} (counters every {:?}{payload}); stop with Ctrl-C",
            path.display(),
            cfg.resolution
        );
    }
    Ok(Box::new(RecordSink::new(file, cfg)))
}

fn open(paths: &[std::path::PathBuf]) -> Result<Reader, Failure> {
    Reader::open(paths).map_err(cannot_start)
}

/// Warnings about what the recording lacked, on stderr.
fn warn(reader: &Reader) {
    for w in reader.warnings() {
        eprintln!("netwho: warning: {w}");
    }
}

fn window(
    since: Option<TimeArg>,
    until: Option<TimeArg>,
    h: &Header,
) -> (Option<i128>, Option<i128>) {
    let start = h.created_unix_ns;
    let now = netwho_enrich::clock::unix_now_ns();
    (
        since.map(|t| t.resolve(start, now)),
        until.map(|t| t.resolve(start, now)),
    )
}

fn replay(
    reader: Reader,
    sinks: Vec<Box<dyn Sink>>,
    cfg: ReplayConfig,
    controls: Option<Controls<std::io::BufReader<std::fs::File>>>,
    stop: &Arc<AtomicBool>,
) -> Result<(), Failure> {
    let flag = Arc::clone(stop);
    let pacer = Pacer {
        now: Box::new(netwho_enrich::clock::boot_now),
        // in short steps, so that Ctrl-C is not held up by a quiet stretch
        sleep: Box::new(move |d| {
            let mut left = d;
            while !left.is_zero() && !flag.load(Ordering::Relaxed) {
                let step = left.min(Duration::from_millis(100));
                std::thread::sleep(step);
                left -= step;
            }
        }),
    };
    let mut r = Replay::new(reader, sinks, cfg, Some(pacer));
    if let Some(c) = controls {
        r = r.with_controls(c);
    }
    let res = r.run(stop);
    warn(r.reader());
    match res {
        Ok(Stopped::Signal | Stopped::Done | Stopped::OutputClosed) => Ok(()),
        Err(e) => Err(replay_failure(e)),
    }
}

/// A replay that failed (reading its source, or writing output).
pub fn replay_failure(e: ReplayError) -> Failure {
    let error = match e {
        ReplayError::Pipeline(PipelineError::Output(e)) => {
            anyhow::Error::new(e).context("writing output")
        }
        e => e.into(),
    };
    Failure {
        code: crate::EXIT_RUNTIME,
        error,
    }
}

/// `netwho log -r FILE`.
pub fn log(l: &LogArgs, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let Some(path) = &l.read else {
        return Ok(());
    };
    let reader = open(std::slice::from_ref(path))?;
    let filter = read_filter(&l.select, crate::protos_filter(&l.protos))?;
    let (sinks, _) = crate::log_sinks(l)?;
    let (since, until) = window(l.since, l.until, reader.header());
    let cfg = ReplayConfig {
        filter,
        since,
        until,
        speed: None,
        live: false,
    };
    replay(reader, sinks, cfg, None, stop)
}

/// `netwho top -r FILE`.
pub fn top(t: &TopArgs, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let Some(path) = &t.read else {
        return Ok(());
    };
    let reader = open(std::slice::from_ref(path))?;
    let filter = read_filter(&t.select, None)?;
    let speed = (t.speed > 0.0).then_some(t.speed);
    if crate::tui::wanted(t) {
        // the view filters (its bar can change it), so the replay passes all
        let local = reader.header().local_addrs.iter().copied().collect();
        let (link, cmds, show) = crate::tui::replay_link();
        let (sink, view) = crate::tui::start(t, filter, local, Some(link), false, stop)?;
        let paths = vec![path.clone()];
        let controls = Controls {
            cmds,
            reopen: Box::new(move || Reader::open(&paths)),
            show,
        };
        let cfg = ReplayConfig {
            filter: None,
            since: None,
            until: None,
            speed,
            live: false,
        };
        let res = replay(reader, vec![sink], cfg, Some(controls), stop);
        if res.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let shown = view.join();
        return res.and(shown);
    }
    let cfg = ReplayConfig {
        filter,
        since: None,
        until: None,
        speed,
        live: false,
    };
    // on a terminal: keys pause, change the speed and seek
    let term = crate::keys::TermGuard::raw_keys();
    let controls = term.as_ref().map(|_| {
        eprintln!("netwho top -r: {}", crate::keys::HELP);
        let paths = vec![path.clone()];
        Controls {
            cmds: crate::keys::spawn_reader(),
            reopen: Box::new(move || Reader::open(&paths)),
            show: Box::new(|p: ReplayPos| eprintln!("netwho top -r: {}", position(&p))),
        }
    });
    let res = replay(reader, crate::top_sinks(t), cfg, controls, stop);
    drop(term);
    res
}

/// A replay's position as the status line says it.
pub fn position(p: &ReplayPos) -> String {
    let at = netwho_model::time::rfc3339_from_unix_ns(p.at_unix_ns);
    let speed = match p.speed {
        Some(s) if s >= 1.0 => format!("{s}x"),
        Some(s) => format!("1/{}x", (1.0 / s).round()),
        None => "as fast as it reads".into(),
    };
    match (p.seeking, p.paused) {
        (Some(to), _) => format!(
            "seeking to {}",
            netwho_model::time::rfc3339_from_unix_ns(to)
        ),
        (None, true) => format!("paused at {at} (space goes on)"),
        (None, false) => format!("at {at}, speed {speed}"),
    }
}

fn usage(msg: &str) -> Failure {
    cannot_start(anyhow::anyhow!("{msg}"))
}

/// `netwho report REPORT -r FILE`.
/// `netwho report`: from a recording, or (`--db`) from the history.
pub fn report(a: &ReportArgs, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let (kind, cfg) = report_config(a)?;
    let filter_text = cfg.filter.as_ref().map(ToString::to_string);
    if let Some(db) = &a.db {
        return report_db(a, db, kind, cfg, filter_text, stop);
    }
    if let Some(pg) = &a.postgres {
        return report_postgres(a, pg, kind, cfg, filter_text);
    }
    let mut reader = open(&a.read)?;
    let header = reader.header().clone();
    let (since, until) = window(a.since, a.until, &header);
    let cfg = ReportConfig {
        since,
        until,
        payload: header.snaplen > 0,
        ..cfg
    };
    if a.printable && header.snaplen == 0 {
        eprintln!(
            "netwho: warning: the recording kept no payload (record it with -s SNAPLEN); -A shows nothing"
        );
    }
    let mut rep = Reporter::new(
        kind,
        cfg,
        reader.start_clock(),
        header.local_addrs.iter().copied().collect(),
    );
    let mut progress = Progress::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Failure {
                code: crate::EXIT_RUNTIME,
                error: anyhow::anyhow!("interrupted; no report"),
            });
        }
        match reader.next_item() {
            Ok(Some(it)) => {
                rep.item(&it);
                progress.tick(&reader);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Failure {
                    code: crate::EXIT_RUNTIME,
                    error: e.into(),
                });
            }
        }
    }
    progress.done();
    warn(&reader);
    let stats = reader.stats();
    let (first, last, totals) = (rep.first, rep.last, rep.totals);
    let files = a
        .read
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Printed {
        kind,
        table: rep.finish().map_err(|e| Failure {
            code: crate::EXIT_RUNTIME,
            error: e.into(),
        })?,
        totals,
        first,
        last,
        since,
        until,
        filter: filter_text,
        source_json: (
            "recording",
            json!({
                "files": a.read,
                "host": header.host,
                "started": netwho_model::time::rfc3339_from_unix_ns(header.created_unix_ns),
                "resolution_s": header.resolution_ns as f64 / 1e9,
                "snaplen": header.snaplen,
                "filter": header.filter,
            }),
        ),
        source_text: format!("{files} (host {})", header.host),
        notes: Vec::new(),
        read: Some(read_json(&stats)),
    };
    print(a, out)
}

/// The report, its configuration and checks shared by both sources.
fn report_config(a: &ReportArgs) -> Result<(ReportKind, ReportConfig), Failure> {
    let filter = read_filter(&a.select, None)?;
    let cfg = a
        .request()
        .config(a.report, filter)
        .map_err(|e| usage(&e))?;
    Ok((a.report, cfg))
}

/// `netwho report --db`: the same report from the history database.
fn report_db(
    a: &ReportArgs,
    path: &Path,
    kind: ReportKind,
    cfg: ReportConfig,
    filter: Option<String>,
    stop: &Arc<AtomicBool>,
) -> Result<(), Failure> {
    if a.printable {
        return Err(usage("-A shows payload, which the history does not keep"));
    }
    let mut db = History::open_read(path).map_err(cannot_start)?;
    // the first Ctrl-C (or SIGTERM) stops the report, in SQLite too
    let flag = Arc::clone(stop);
    db.cancel_when(Arc::new(move || flag.load(Ordering::Relaxed)));
    let now = netwho_enrich::clock::unix_now_ns();
    let (since, until) =
        netwho_report::history::window(&db, a.since, a.until, now).map_err(cannot_start)?;
    let cfg = ReportConfig {
        since,
        until,
        ..cfg
    };
    let local = netwho_enrich::net::local_addrs().into_iter().collect();
    let r = netwho_report::history::report(&db, kind, cfg, local).map_err(|e| Failure {
        code: crate::EXIT_RUNTIME,
        error: match e {
            netwho_report::ReportError::History(HistoryError::Cancelled) => {
                anyhow::anyhow!("interrupted; no report")
            }
            e => e.into(),
        },
    })?;
    let shown = path.display().to_string();
    print(
        a,
        Printed::from_history(kind, &shown, r, since, until, filter),
    )
}

/// `netwho report --postgres`: the report over the fleet's records.
fn report_postgres(
    a: &ReportArgs,
    conn: &str,
    kind: ReportKind,
    cfg: ReportConfig,
    filter: Option<String>,
) -> Result<(), Failure> {
    if a.printable {
        return Err(usage("-A shows payload, which the fleet does not keep"));
    }
    let now = netwho_enrich::clock::unix_now_ns();
    let db = netwho_fleet::report::FleetDb::open(conn).map_err(cannot_start)?;
    let (since, until) = db
        .window(&a.hosts, a.since, a.until, now)
        .map_err(cannot_start)?;
    let cfg = ReportConfig {
        since,
        until,
        ..cfg
    };
    let r = db.report(kind, cfg, &a.hosts).map_err(|e| Failure {
        code: crate::EXIT_RUNTIME,
        error: e.into(),
    })?;
    let hosts = r.hosts.join(" ");
    let out = Printed {
        kind,
        table: r.table,
        totals: r.totals,
        first: r.first,
        last: r.last,
        since,
        until,
        filter,
        source_json: (
            "fleet",
            json!({
                "postgres": netwho_fleet::pg::describe(conn),
                "hosts": r.hosts,
                "records_read": r.rows_read,
            }),
        ),
        source_text: format!(
            "fleet database {} ({} records of {hosts})",
            netwho_fleet::pg::describe(conn),
            r.rows_read
        ),
        notes: Vec::new(),
        read: None,
    };
    print(a, out)
}

/// The report on stdout, as asked for.
fn print(a: &ReportArgs, p: Printed) -> Result<(), Failure> {
    print_report(&p.render(a.format(), a.printable))
}

/// A report's text on stdout (a reader that went away is not an error).
pub fn print_report(text: &str) -> Result<(), Failure> {
    let mut so = std::io::stdout().lock();
    match so.write_all(text.as_bytes()).and_then(|()| so.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure {
            code: crate::EXIT_RUNTIME,
            error: anyhow::Error::new(e).context("writing the report"),
        }),
        _ => Ok(()),
    }
}

/// A progress line on a terminal while a long recording is read.
struct Progress {
    show: bool,
    items: u64,
    started: std::time::Instant,
    next: Duration,
}

impl Progress {
    fn new() -> Self {
        use std::io::IsTerminal;
        Progress {
            show: std::io::stderr().is_terminal(),
            items: 0,
            #[expect(clippy::disallowed_methods, reason = "progress display in the binary")]
            started: std::time::Instant::now(),
            next: Duration::from_secs(1),
        }
    }

    fn tick(&mut self, r: &Reader) {
        self.items += 1;
        if !self.show || !self.items.is_multiple_of(4096) {
            return;
        }
        let el = self.started.elapsed();
        if el < self.next {
            return;
        }
        self.next = el + Duration::from_millis(500);
        let s = r.stats();
        eprint!(
            "\rnetwho: reading... {} frames, {} entries",
            s.frames, s.entries
        );
    }

    fn done(&self) {
        if self.show && self.started.elapsed() >= Duration::from_secs(1) {
            eprintln!();
        }
    }
}
