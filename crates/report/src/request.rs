//! A report as asked for (on the command line or over the API), checked
//! and turned into a [`ReportConfig`], and a finished report printed as
//! text, CSV or JSON. `netwho report` and the daemon's
//! `/api/v1/reports/{report}` share both halves, so a report reads the
//! same whichever way it was asked for.

use super::local::LocalNets;
use super::table::Table;
use super::{ReportConfig, ReportKind, Spy, Totals};
use netwho_model::time::rfc3339_from_unix_ns as ts;
use netwho_query::Filter;
use netwho_store::recording::ReadStats;
use serde_json::json;
use std::net::IpAddr;

/// A point in time as a user gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeArg {
    /// Unix nanoseconds.
    At(i128),
    /// Nanoseconds after the start of the data.
    FromStart(u64),
    /// Nanoseconds before now.
    Ago(u64),
    /// Midnight (UTC) this many days before today's.
    DaysAgo(i64),
}

impl TimeArg {
    /// Unix nanoseconds, given the start of the data and now.
    pub fn resolve(self, start_unix_ns: i128, now_unix_ns: i128) -> i128 {
        const DAY: i128 = 86_400 * 1_000_000_000;
        match self {
            TimeArg::At(t) => t,
            TimeArg::FromStart(d) => start_unix_ns + i128::from(d),
            TimeArg::Ago(d) => now_unix_ns - i128::from(d),
            TimeArg::DaysAgo(n) => (now_unix_ns.div_euclid(DAY) - i128::from(n)) * DAY,
        }
    }

    /// The text [`parse`](TimeArg::parse) reads back as this time.
    pub fn param(self) -> String {
        match self {
            TimeArg::At(t) => ts(t),
            TimeArg::FromStart(d) => format!("+{d}ns"),
            TimeArg::Ago(d) => format!("-{d}ns"),
            TimeArg::DaysAgo(0) => "today".into(),
            TimeArg::DaysAgo(1) => "yesterday".into(),
            TimeArg::DaysAgo(n) => format!("-{n}d"),
        }
    }

    /// RFC 3339, `+DURATION` (from the start), `-DURATION` (before now),
    /// `today` or `yesterday`.
    pub fn parse(s: &str) -> Result<TimeArg, String> {
        match s {
            "today" => return Ok(TimeArg::DaysAgo(0)),
            "yesterday" => return Ok(TimeArg::DaysAgo(1)),
            _ => {}
        }
        if let Some(d) = s.strip_prefix('-') {
            return netwho_query::parse_duration_ns(d)
                .map(TimeArg::Ago)
                .ok_or_else(|| format!("'{d}' is not a duration (like 90s, 10m, 1h, 7d)"));
        }
        if let Some(d) = s.strip_prefix('+') {
            return netwho_query::parse_duration_ns(d)
                .map(TimeArg::FromStart)
                .ok_or_else(|| format!("'{d}' is not a duration (like 90s, 10m, 1h)"));
        }
        netwho_model::time::unix_ns_from_rfc3339(s)
            .map(TimeArg::At)
            .ok_or_else(|| {
                format!(
                    "'{s}' is not a time: give an RFC 3339 time (2026-11-23T10:00:00Z), +DURATION from the start of the data (+90s), -DURATION before now (-7d), today or yesterday"
                )
            })
    }
}

/// What a report was asked to do, before it is checked.
#[derive(Clone, Debug, Default)]
pub struct ReportRequest {
    /// Rows (per interval) at most.
    pub limit: Option<usize>,
    /// Rows per interval of this many ns.
    pub interval_ns: Option<u64>,
    /// Leave out traffic with local remotes.
    pub exclude_local: bool,
    /// The networks `exclude_local` leaves out (`+LIST` adds to the default).
    pub local_nets: Option<String>,
    /// `timeline`: the process.
    pub pid: Option<u32>,
    /// `spy`: the address.
    pub ip: Option<IpAddr>,
    /// `spy`: the port.
    pub port: Option<u16>,
    /// The seed of the connections' Community IDs.
    pub community_seed: u16,
    /// `rare`: only destinations used fewer than this many times.
    pub below: Option<u64>,
}

impl ReportRequest {
    /// The configuration of report `kind` with `filter`, or what is wrong
    /// with the request (a sentence that says what to give instead).
    pub fn config(&self, kind: ReportKind, filter: Option<Filter>) -> Result<ReportConfig, String> {
        let spy = match (kind, self.ip, self.port) {
            (ReportKind::Spy, Some(ip), _) => Some(Spy::Ip(ip)),
            (ReportKind::Spy, None, Some(p)) => Some(Spy::Port(p)),
            (ReportKind::Spy, None, None) => {
                return Err("spy needs the endpoint: --ip ADDR or --port PORT".into());
            }
            (_, None, None) => None,
            _ => return Err("--ip and --port are for the spy report".into()),
        };
        match (kind, self.pid) {
            (ReportKind::Timeline, None) => {
                return Err("timeline needs the process: --pid N (top-procs lists them)".into());
            }
            (ReportKind::Timeline, Some(_)) | (_, None) => {}
            _ => return Err("--pid is for the timeline report (filter with proc.pid = N)".into()),
        }
        let exclude_local = match (&self.local_nets, self.exclude_local) {
            (Some(spec), true) => Some(LocalNets::parse(spec)?),
            (Some(_), false) => return Err("--local-nets needs --exclude-local".into()),
            (None, true) => Some(LocalNets::default()),
            (None, false) => None,
        };
        if let Some(i) = self.interval_ns
            && i < super::MIN_INTERVAL_NS
        {
            return Err(format!(
                "interval: {i}ns is shorter than 1s, the finest interval a report has (recordings count per second, history per minute)"
            ));
        }
        match (kind, self.below) {
            (ReportKind::Rare, Some(0)) => {
                return Err("--below: a destination is used at least once: give 1 or more".into());
            }
            (ReportKind::Rare, _) | (_, None) => {}
            _ => return Err("--below is for the rare report".into()),
        }
        let top = matches!(
            kind,
            ReportKind::TopProcs
                | ReportKind::TopConns
                | ReportKind::TopPorts
                | ReportKind::TopRemotes
                | ReportKind::TopNames
                | ReportKind::Rare
        );
        Ok(ReportConfig {
            filter,
            limit: self.limit.or(top.then_some(10)),
            interval_ns: self.interval_ns,
            exclude_local,
            pid: self.pid,
            spy,
            community_seed: self.community_seed,
            below: self.below,
            ..ReportConfig::default()
        })
    }
}

/// How a report is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    /// Aligned columns for people.
    Text,
    /// Comma-separated values.
    Csv,
    /// One JSON document (exact numbers).
    Json,
}

impl Format {
    /// The format named `s` (`text`, `csv`, `json`).
    pub fn from_name(s: &str) -> Option<Format> {
        [Format::Text, Format::Csv, Format::Json]
            .into_iter()
            .find(|f| f.name() == s)
    }

    /// The name `from_name` reads (and the API's `format=` takes).
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// The HTTP content type of the output.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// A finished table and what its source says of itself.
#[derive(Debug)]
pub struct SourceReport {
    /// The rows.
    pub table: Table,
    /// What the rows add up to.
    pub totals: Totals,
    /// Unix ns of the first and last bytes counted.
    pub first: Option<i128>,
    /// See `first`.
    pub last: Option<i128>,
    /// The source's key in the JSON document, and what it says there.
    pub source_json: (&'static str, serde_json::Value),
    /// The source in the text header.
    pub source_text: String,
    /// Things the reader should know (rounded times, ...).
    pub notes: Vec<String>,
    /// What reading a recording found (frames, damage).
    pub read: Option<serde_json::Value>,
}

/// A finished report and where it came from, to print.
#[derive(Debug)]
pub struct Printed {
    /// The report.
    pub kind: ReportKind,
    /// The window asked for (Unix ns).
    pub since: Option<i128>,
    /// See `since`.
    pub until: Option<i128>,
    /// The filter (its canonical text).
    pub filter: Option<String>,
    /// The table and what its source says of itself.
    pub source: SourceReport,
}

impl Printed {
    /// The report as `format` prints it; `printable`: payload as text.
    pub fn render(self, format: Format, printable: bool) -> String {
        let mut r = self.source;
        r.table.printable = printable;
        let totals = r.totals;
        match format {
            Format::Json => {
                let mut doc = json!({
                    "report": self.kind.name(),
                    "filter": self.filter,
                    "since": self.since.map(ts),
                    "until": self.until.map(ts),
                    "first": r.first.map(ts),
                    "last": r.last.map(ts),
                    "totals": {"sent": totals.sent, "recv": totals.recv, "flows": totals.flows},
                    "notes": r.notes,
                    "rows": r.table.json_rows(),
                });
                doc[r.source_json.0] = r.source_json.1;
                if let Some(read) = r.read {
                    doc["read"] = read;
                }
                let mut out = doc.to_string();
                out.push('\n');
                out
            }
            Format::Csv => r.table.csv(),
            Format::Text => {
                let span = match (r.first, r.last) {
                    (Some(f), Some(l)) => format!("{} .. {}", ts(f), ts(l)),
                    _ => "no matching traffic".into(),
                };
                let mut out = format!("# {} of {}: {span}\n", self.kind.name(), r.source_text);
                if let Some(f) = &self.filter {
                    out.push_str(&format!("# filter: {f}\n"));
                }
                for n in &r.notes {
                    out.push_str(&format!("# note: {n}\n"));
                }
                out.push_str(&r.table.text());
                out.push_str(&format!(
                    "# total: sent {}, received {}, {}\n",
                    netwho_sink::fmt::bytes(totals.sent),
                    netwho_sink::fmt::bytes(totals.recv),
                    netwho_sink::fmt::count(totals.flows, "flow", "flows")
                ));
                out
            }
        }
    }
}

/// What reading a recording found, for the JSON document.
pub fn read_json(s: &ReadStats) -> serde_json::Value {
    json!({
        "frames": s.frames,
        "frames_corrupt": s.frames_corrupt,
        "bytes_skipped": s.bytes_skipped,
        "truncated_bytes": s.truncated_bytes,
        "entries": s.entries,
        "entries_unknown": s.entries_unknown,
        "orphans": s.orphans,
        "clean_end": s.clean_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_resolve() {
        let day = 86_400 * 1_000_000_000i128;
        assert_eq!(TimeArg::FromStart(5).resolve(10, 0), 15);
        assert_eq!(TimeArg::parse("-90s"), Ok(TimeArg::Ago(90_000_000_000)));
        assert_eq!(
            TimeArg::parse("yesterday").map(|t| t.resolve(0, 3 * day + 5)),
            Ok(2 * day)
        );
        assert!(TimeArg::parse("-soon").is_err());
        assert!(TimeArg::parse("noon").is_err());
        for t in [
            TimeArg::At(1_700_000_000_123_456_789),
            TimeArg::FromStart(5),
            TimeArg::Ago(7),
            TimeArg::DaysAgo(0),
            TimeArg::DaysAgo(1),
        ] {
            assert_eq!(TimeArg::parse(&t.param()), Ok(t));
        }
    }

    #[test]
    fn a_request_is_checked_against_its_report() {
        let r = ReportRequest::default();
        assert!(r.config(ReportKind::Spy, None).is_err());
        assert!(r.config(ReportKind::Timeline, None).is_err());
        assert_eq!(
            r.config(ReportKind::TopProcs, None).map(|c| c.limit),
            Ok(Some(10))
        );
        let with_pid = ReportRequest {
            pid: Some(7),
            ..ReportRequest::default()
        };
        assert!(with_pid.config(ReportKind::ByUser, None).is_err());
        let nets = ReportRequest {
            local_nets: Some("10.0.0.0/8".into()),
            ..ReportRequest::default()
        };
        assert!(nets.config(ReportKind::ByUser, None).is_err());
    }
}
