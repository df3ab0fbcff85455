//! `netwho report`: top talkers, timelines and summaries from recordings,
//! the history database (`--db`) or the fleet's PostgreSQL (`--postgres`);
//! `--connect` asks a daemon instead (`cmd/connect.rs`).

use crate::args::ReportArgs;
use crate::failure::{Failure, cannot_start};
use crate::select::read_filter;
use netwho_report::request::{Printed, read_json};
use netwho_report::{ReportConfig, ReportKind, Reporter};
use netwho_store::history::{History, HistoryError};
use netwho_store::recording::Reader;
use serde_json::json;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn usage(msg: &str) -> Failure {
    cannot_start(anyhow::anyhow!("{msg}"))
}

/// `netwho report REPORT -r FILE`.
/// `netwho report`: from a recording, or (`--db`) from the history.
/// `netwho report` from recordings, the history database or PostgreSQL.
pub fn report(a: &ReportArgs, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let (kind, cfg) = report_config(a)?;
    let filter_text = cfg.filter.as_ref().map(ToString::to_string);
    if let Some(db) = &a.db {
        return report_db(a, db, kind, cfg, filter_text, stop);
    }
    if let Some(pg) = &a.postgres {
        return report_postgres(a, pg, kind, cfg, filter_text);
    }
    let mut reader = crate::cmd::replay::open(&a.read)?;
    let header = reader.header().clone();
    let (since, until) = crate::cmd::replay::window(a.since, a.until, &header);
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
                code: crate::failure::EXIT_RUNTIME,
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
                    code: crate::failure::EXIT_RUNTIME,
                    error: e.into(),
                });
            }
        }
    }
    progress.done();
    crate::cmd::replay::warn(&reader);
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
            code: crate::failure::EXIT_RUNTIME,
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
        code: crate::failure::EXIT_RUNTIME,
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
        code: crate::failure::EXIT_RUNTIME,
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
            code: crate::failure::EXIT_RUNTIME,
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
