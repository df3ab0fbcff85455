//! `netwho report`: top talkers, timelines and summaries from recordings,
//! the history database (`--db`) or the fleet's PostgreSQL (`--postgres`);
//! `--connect` asks a daemon instead (`cmd/connect.rs`).

use crate::args::ReportArgs;
use crate::failure::{Failure, cannot_start};
use crate::select::read_filter;
use netwho_fleet::report::FleetSource;
use netwho_report::request::Printed;
use netwho_report::{HistorySource, RecordingSource, ReportError, ReportSource};
use netwho_store::history::{History, HistoryError};
use netwho_store::recording::Reader;
use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn usage(msg: &str) -> Failure {
    cannot_start(anyhow::anyhow!("{msg}"))
}

/// `netwho report` from recordings, the history database (`--db`) or the
/// fleet's PostgreSQL (`--postgres`): the source opened, then the one
/// report function every source shares.
pub fn report(a: &ReportArgs, community_seed: u16, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    if a.read.is_empty() && a.db.is_none() && a.postgres.is_none() {
        return Err(usage(
            "a report needs a source: -r FILE (a recording), --db PATH (the daemon's history), \
             --connect[=SOCKET] (a running daemon) or --postgres CONN (the fleet)",
        ));
    }
    let filter = read_filter(&a.select, None)?;
    let mut req = a.request();
    req.community_seed = community_seed;
    let cfg = req.config(a.report, filter).map_err(|e| usage(&e))?;
    let now = netwho_enrich::clock::unix_now_ns();
    let run = |source: &mut dyn ReportSource| {
        netwho_report::report(source, a.report, cfg, a.since, a.until, now).map_err(failed)
    };
    let printed = if let Some(path) = &a.db {
        if a.printable {
            return Err(usage("-A shows payload, which the history does not keep"));
        }
        let mut db = History::open_read(path).map_err(cannot_start)?;
        // the first Ctrl-C (or SIGTERM) stops the report, in SQLite too;
        // SQLite asks often, so a terminal also learns the report is alive
        let flag = Arc::clone(stop);
        let waiting = Arc::new(std::sync::Mutex::new(Progress::new()));
        let shown = Arc::clone(&waiting);
        db.cancel_when(Arc::new(move || {
            if let Ok(mut p) = shown.lock() {
                p.waiting("reading the history");
            }
            flag.load(Ordering::Relaxed)
        }));
        let local = netwho_enrich::net::local_addrs().into_iter().collect();
        let printed = run(&mut HistorySource::new(
            db,
            path.display().to_string(),
            local,
        ));
        if let Ok(p) = waiting.lock() {
            p.done();
        }
        printed?
    } else if let Some(conn) = &a.postgres {
        if a.printable {
            return Err(usage("-A shows payload, which the fleet does not keep"));
        }
        let mut source = FleetSource::open(conn, a.hosts.clone()).map_err(cannot_start)?;
        run(&mut source)?
    } else {
        let reader = crate::cmd::replay::open(&a.read, 0)?;
        if a.printable && reader.header().snaplen == 0 {
            eprintln!(
                "netwho: warning: the recording kept no payload (record it with -s SNAPLEN); -A shows nothing"
            );
        }
        let progress = Rc::new(RefCell::new(Progress::new()));
        let ticks = Rc::clone(&progress);
        let mut source = RecordingSource::new(reader, a.read.clone());
        if let Some(n) = a.threads {
            source = source.parts(usize::from(n));
        }
        if a.no_summary {
            source = source.without_summary();
        }
        let mut source = source
            .stop_when(Arc::clone(stop))
            .on_progress(Box::new(move |r| ticks.borrow_mut().tick(r)));
        let printed = run(&mut source);
        progress.borrow().done();
        if let Some(how) = source.how() {
            log::info!("{how}");
        }
        crate::cmd::replay::warn(source.reader());
        printed?
    };
    print(a, printed)
}

/// A report that failed once its source was open.
fn failed(e: ReportError) -> Failure {
    Failure {
        code: crate::failure::EXIT_RUNTIME,
        error: match e {
            ReportError::History(HistoryError::Cancelled) | ReportError::Interrupted => {
                anyhow::anyhow!("interrupted; no report")
            }
            e => e.into(),
        },
    }
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

    /// After each frame read.
    fn tick(&mut self, r: &Reader) {
        self.items += 1;
        if !self.show {
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

    /// A line that says the report is still at work (a source that
    /// cannot count what it has read), at most twice a second.
    fn waiting(&mut self, what: &str) {
        let el = self.started.elapsed();
        if !self.show || el < self.next {
            return;
        }
        self.next = el + Duration::from_millis(500);
        eprint!("\rnetwho: {what}... {} s", el.as_secs());
    }

    fn done(&self) {
        if self.show && self.started.elapsed() >= Duration::from_secs(1) {
            eprintln!();
        }
    }
}
