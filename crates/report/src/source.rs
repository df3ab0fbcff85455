//! Where a report's data comes from, behind one interface: a recording
//! ([`RecordingSource`]), the history database ([`HistorySource`]), the
//! fleet's PostgreSQL (`netwho_fleet::report::FleetSource`). [`report`] is
//! the one function every caller uses — `netwho report`, the daemon's
//! `/api/v1/reports/{report}` (which `report --connect` prints), the fleet —
//! so a report's window, table and header are made in one place whichever
//! way it was asked for.

use crate::request::{Printed, SourceReport, TimeArg, read_json};
use crate::{ReportConfig, ReportError, ReportKind, Reporter};
use netwho_model::time::rfc3339_from_unix_ns as ts;
use netwho_store::history::{History, Tier};
use netwho_store::recording::{ReadStats, Reader, files_of, summary};
use serde_json::json;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Data a report can be made of.
pub trait ReportSource {
    /// The window's times against this source's data: `+90s` counts from
    /// its start, `-1h` from `now_unix_ns`.
    fn window(
        &mut self,
        since: Option<TimeArg>,
        until: Option<TimeArg>,
        now_unix_ns: i128,
    ) -> Result<(Option<i128>, Option<i128>), ReportError>;

    /// Report `kind` over the data in `cfg`'s window.
    fn run(&mut self, kind: ReportKind, cfg: ReportConfig) -> Result<SourceReport, ReportError>;
}

/// Report `kind` with `cfg` (its window given as `since`/`until`) from
/// `source`, ready to print.
pub fn report(
    source: &mut dyn ReportSource,
    kind: ReportKind,
    cfg: ReportConfig,
    since: Option<TimeArg>,
    until: Option<TimeArg>,
    now_unix_ns: i128,
) -> Result<Printed, ReportError> {
    let filter = cfg.filter.as_ref().map(ToString::to_string);
    let (since, until) = source.window(since, until, now_unix_ns)?;
    let r = source.run(
        kind,
        ReportConfig {
            since,
            until,
            ..cfg
        },
    )?;
    Ok(Printed {
        kind,
        since,
        until,
        filter,
        source: r,
    })
}

/// The history database (`netwho report --db`, the daemon's API).
#[derive(Debug)]
pub struct HistorySource {
    db: History,
    shown: String,
    local: HashSet<IpAddr>,
}

impl HistorySource {
    /// Report from `db`, named `shown` in the header; `local`: this host's
    /// addresses (`--exclude-local`, `fd.is_local`).
    pub fn new(db: History, shown: String, local: HashSet<IpAddr>) -> Self {
        HistorySource { db, shown, local }
    }
}

impl ReportSource for HistorySource {
    fn window(
        &mut self,
        since: Option<TimeArg>,
        until: Option<TimeArg>,
        now_unix_ns: i128,
    ) -> Result<(Option<i128>, Option<i128>), ReportError> {
        Ok(crate::history::window(&self.db, since, until, now_unix_ns)?)
    }

    fn run(&mut self, kind: ReportKind, cfg: ReportConfig) -> Result<SourceReport, ReportError> {
        let local = std::mem::take(&mut self.local);
        let r = crate::history::report(&self.db, kind, cfg, local)?;
        let at = |s: i64| ts(i128::from(s) * 1_000_000_000);
        let mut notes = Vec::new();
        if let Some(t) = r.covered.rounded_to {
            notes.push(format!(
                "the finer history of part of this range was pruned: times there are rounded to the {}",
                t.name()
            ));
        }
        let path = &self.shown;
        Ok(SourceReport {
            source_json: (
                "history",
                json!({
                    "database": path,
                    "read": r.source,
                    "rows_read": r.rows_read,
                    "covered_from": at(r.covered.from),
                    "covered_until": at(r.covered.to),
                    "rounded_to": r.covered.rounded_to.map(Tier::name),
                }),
            ),
            source_text: format!(
                "{path} ({}, {} .. {})",
                r.source,
                at(r.covered.from),
                at(r.covered.to)
            ),
            table: r.table,
            totals: r.totals,
            first: r.first,
            last: r.last,
            notes,
            read: None,
        })
    }
}

/// One or more recording files read in order (`netwho report -r`).
#[expect(missing_debug_implementations, reason = "holds a callback")]
pub struct RecordingSource {
    reader: Reader,
    files: Vec<PathBuf>,
    stop: Option<Arc<AtomicBool>>,
    progress: Option<Progress>,
    parts: usize,
    /// Read the recording's summary where it answers the report.
    summary: bool,
    /// How the last report was read (`-v`).
    how: Option<String>,
}

/// At most this many threads decode a recording for a report (each holds
/// its own groups: memory grows with them).
pub const MAX_PARTS: usize = 8;

/// Told of each item read (a progress line).
pub type Progress = Box<dyn FnMut(&Reader)>;

impl RecordingSource {
    /// Report from `reader` (opened on `files`). Frames are read and
    /// parsed on a thread of their own while this one builds the report.
    pub fn new(mut reader: Reader, files: Vec<PathBuf>) -> Self {
        reader.read_ahead();
        RecordingSource {
            reader,
            files,
            stop: None,
            progress: None,
            parts: std::thread::available_parallelism()
                .map_or(1, std::num::NonZero::get)
                .clamp(1, MAX_PARTS),
            summary: true,
            how: None,
        }
    }

    /// Decode the recording even where its summary would answer
    /// (`report --no-summary`).
    #[must_use]
    pub fn without_summary(mut self) -> Self {
        self.summary = false;
        self
    }

    /// How the last report was read: from the recording's summary, or in
    /// full and why not from a summary (for `-v`).
    pub fn how(&self) -> Option<&str> {
        self.how.as_deref()
    }

    /// The report from the recording's summary, or why not.
    fn summarized(
        &self,
        kind: ReportKind,
        cfg: &ReportConfig,
        local: &HashSet<IpAddr>,
    ) -> Result<(Reporter, ReadStats, PathBuf), String> {
        if !self.summary {
            return Err("--no-summary".into());
        }
        if !crate::summary::covers(kind, cfg) {
            return Err(format!(
                "a summary answers top-procs, bytes, by-user and by-unit over the whole \
                 recording, unfiltered; this is {}{}",
                kind.name(),
                if crate::summary::covers(ReportKind::TopProcs, cfg) {
                    ""
                } else {
                    " with a filter, window, interval or --exclude-local"
                }
            ));
        }
        let (path, body) = summary::load(&files_of(&self.files))?;
        let (rep, stats) = crate::summary::reporter(
            &body,
            kind,
            cfg.clone(),
            self.reader.start_clock(),
            local.clone(),
        )?;
        Ok((rep, stats, path))
    }

    /// Decode with `n` threads (1: one; at most [`MAX_PARTS`]). By default
    /// one per CPU: each decodes the events of its share of the flows
    /// into a report of its own, and the reports are put together.
    #[must_use]
    pub fn parts(mut self, n: usize) -> Self {
        self.parts = n.clamp(1, MAX_PARTS);
        self
    }

    /// Stop (with [`ReportError::Interrupted`]) once `stop` is set.
    #[must_use]
    pub fn stop_when(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Called after each frame read (a progress line).
    #[must_use]
    pub fn on_progress(mut self, f: Progress) -> Self {
        self.progress = Some(f);
        self
    }

    /// The reader (its warnings, once the report is made).
    pub fn reader(&self) -> &Reader {
        &self.reader
    }
}

impl ReportSource for RecordingSource {
    fn window(
        &mut self,
        since: Option<TimeArg>,
        until: Option<TimeArg>,
        now_unix_ns: i128,
    ) -> Result<(Option<i128>, Option<i128>), ReportError> {
        let start = self.reader.header().created_unix_ns;
        let at = |t: TimeArg| t.resolve(start, now_unix_ns);
        Ok((since.map(at), until.map(at)))
    }

    fn run(&mut self, kind: ReportKind, cfg: ReportConfig) -> Result<SourceReport, ReportError> {
        let header = self.reader.header().clone();
        let cfg = ReportConfig {
            payload: header.snaplen > 0,
            ..cfg
        };
        let local: HashSet<IpAddr> = header.local_addrs.iter().copied().collect();
        let (rep, stats) = match self.summarized(kind, &cfg, &local) {
            Ok((rep, stats, path)) => {
                self.how = Some(format!(
                    "read from the recording's summary {}",
                    path.display()
                ));
                (rep, stats)
            }
            Err(why) => {
                self.how = Some(format!("read the recording in full (no summary: {why})"));
                (self.decode(kind, &cfg, &local)?, self.reader.stats())
            }
        };
        let (first, last, totals) = (rep.first, rep.last, rep.totals);
        let files = self
            .files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(SourceReport {
            table: rep.finish()?,
            totals,
            first,
            last,
            source_json: (
                "recording",
                json!({
                    "files": self.files,
                    "host": header.host,
                    "started": ts(header.created_unix_ns),
                    "resolution_s": header.resolution_ns as f64 / 1e9,
                    "snaplen": header.snaplen,
                    "filter": header.filter,
                }),
            ),
            source_text: format!("{files} (host {})", header.host),
            notes: Vec::new(),
            read: Some(read_json(&stats)),
        })
    }
}

impl RecordingSource {
    /// Decode the whole recording into one report (in parts, put
    /// together).
    fn decode(
        &mut self,
        kind: ReportKind,
        cfg: &ReportConfig,
        local: &HashSet<IpAddr>,
    ) -> Result<Reporter, ReportError> {
        let clock = self.reader.start_clock();
        let reps: Vec<Reporter> = (0..self.parts)
            .map(|_| Reporter::new(kind, cfg.clone(), clock, local.clone()))
            .collect();
        let stop = self.stop.clone();
        let mut progress = self.progress.take();
        // a frame at a time, its flows borrowed (not copied) on their way
        // into each part's report
        let parts = self
            .reader
            .visit_parts(reps, |r, v| r.visit(v), &mut |reader| {
                if let Some(p) = &mut progress {
                    p(reader);
                }
                !stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
            });
        self.progress = progress;
        let mut parts = parts?.ok_or(ReportError::Interrupted)?.into_iter();
        let Some(mut rep) = parts.next() else {
            return Err(ReportError::Interrupted);
        };
        for other in parts {
            rep.merge(other);
        }
        Ok(rep)
    }
}
