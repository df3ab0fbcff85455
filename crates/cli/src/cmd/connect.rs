//! `netwho top --connect` and `netwho report --connect`: the same views
//! and reports, from a running daemon's API instead of the kernel or a
//! file, with no privileges. The daemon decides what the caller sees.

use crate::args::{ReportArgs, TopArgs};
use crate::failure::{Failure, cannot_start};
use crate::select::read_filter;
use netwho_api::client::{Client, ClientError, Target};
use netwho_pipeline::Stopped;
use netwho_pipeline::replay::{Replay, ReplayConfig};
use netwho_store::recording::{FrameReader, Reader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn client(t: Target) -> Result<Client, Failure> {
    Client::new(t).map_err(cannot_start)
}

fn failed(e: ClientError) -> Failure {
    match e {
        // the daemon is there but said no: a request problem; or nothing
        // answers: the command could not start (exit 2, like a missing
        // file), not a failure while it ran
        ClientError::Refused(_) | ClientError::Connect { .. } => cannot_start(e),
        _ => Failure {
            code: crate::failure::EXIT_RUNTIME,
            error: e.into(),
        },
    }
}

/// `netwho top --connect`: the daemon's live stream (a recording of what
/// this caller may see), replayed as it arrives into the view or the
/// text tables.
pub fn top(t: &TopArgs, target: Target, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let filter = read_filter(&t.select, None)?;
    let view = crate::view::wanted(t);
    // the interactive view filters itself (its bar can change the filter)
    let q: Vec<(&str, String)> = match (&filter, view) {
        (Some(f), false) => vec![("q", f.to_string())],
        _ => Vec::new(),
    };
    let c = client(target)?;
    let reply = c
        .get("/api/v1/stream", &q)
        .and_then(netwho_api::client::Reply::ok)
        .map_err(failed)?;
    let name = PathBuf::from(format!("daemon at {}", c.target()));
    let ended = Arc::new(AtomicBool::new(false));
    let body = Watched {
        inner: reply.body,
        ended: Arc::clone(&ended),
    };
    let fr = FrameReader::new(body, Path::new(&name)).map_err(cannot_start)?;
    let reader = Reader::from_readers(vec![(name, fr)]).map_err(cannot_start)?;
    let cfg = ReplayConfig {
        filter: None,
        since: None,
        until: None,
        speed: None,
        live: true,
    };
    if view {
        let local = reader.header().local_addrs.iter().copied().collect();
        let alerts = watch_alerts(c.target().clone(), Arc::clone(stop));
        let (sink, shown) = crate::view::start(t, filter, local, None, Some(alerts), stop)?;
        let res = run(Replay::new(reader, vec![sink], cfg, None), stop, &ended);
        stop.store(true, Ordering::Relaxed);
        let shown = shown.join();
        return res.and(shown);
    }
    run(
        Replay::new(reader, crate::cmd::top::sinks(t), cfg, None),
        stop,
        &ended,
    )
}

/// How often the view asks the daemon for its alerts.
const ALERTS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The alerts the daemon shows this caller (`GET /api/v1/alerts`), as the
/// rows the view marks, asked for every few seconds on a thread of its own
/// until `stop`; nothing when the daemon has alerts off (or answers
/// otherwise: the marker is a help, the view runs without it).
fn watch_alerts(
    target: Target,
    stop: Arc<AtomicBool>,
) -> std::sync::mpsc::Receiver<netwho_tui::Alerted> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let _ = std::thread::Builder::new()
        .name("netwho-alerts".into())
        .spawn(move || {
            let Ok(c) = Client::new(target) else { return };
            while !stop.load(Ordering::Relaxed) {
                let doc = c
                    .get("/api/v1/alerts", &[("limit", "1000".into())])
                    .and_then(netwho_api::client::Reply::ok)
                    .ok()
                    .and_then(|r| r.text().ok())
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
                let Some(doc) = doc else { return };
                // a full channel: the view has not taken the last one yet
                let _ = tx.try_send(marks(&doc));
                for _ in 0..ALERTS_EVERY.as_millis() / 100 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        });
    rx
}

/// The processes and programs of the alerts not acknowledged.
pub fn marks(doc: &serde_json::Value) -> netwho_tui::Alerted {
    let mut m = netwho_tui::Alerted::default();
    for a in doc["alerts"].as_array().into_iter().flatten() {
        if !a["acked"].is_null() {
            continue;
        }
        let pid = a["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
        if let (Some(pid), Some(ticks)) = (pid, a["start_ticks"].as_u64()) {
            m.procs
                .insert(netwho_model::ProcKey::from_start_ticks(pid, ticks));
        }
        if let Some(p) = a["program"].as_str() {
            m.programs.insert(Arc::from(p));
        }
    }
    m
}

/// A reader that notes when its stream ended (the daemon closed it).
struct Watched<R> {
    inner: R,
    ended: Arc<AtomicBool>,
}

impl<R: std::io::Read> std::io::Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        if matches!(r, Ok(0) | Err(_)) && !buf.is_empty() {
            self.ended.store(true, Ordering::Relaxed);
        }
        r
    }
}

fn run<R: std::io::Read>(
    mut r: Replay<R>,
    stop: &Arc<AtomicBool>,
    ended: &AtomicBool,
) -> Result<(), Failure> {
    let res = r.run(stop);
    match res {
        Ok(Stopped::Done) if ended.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) => {
            Err(Failure {
                code: crate::failure::EXIT_RUNTIME,
                error: anyhow::anyhow!(
                    "the daemon ended the stream (it stopped, or this viewer fell too far behind)"
                ),
            })
        }
        Ok(_) => Ok(()),
        Err(e) => Err(crate::cmd::replay::failure(e)),
    }
}

/// `netwho report --connect`: the daemon runs the report on its history
/// and prints it as this command would.
pub fn report(a: &ReportArgs, target: Target) -> Result<(), Failure> {
    // checked here first, so mistakes read as they do without --connect
    let filter = read_filter(&a.select, None)?;
    a.request()
        .config(a.report, None)
        .map_err(|e| cannot_start(anyhow::anyhow!("{e}")))?;
    if a.printable {
        return Err(cannot_start(anyhow::anyhow!(
            "-A shows payload, which the history does not keep"
        )));
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    let mut put = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            q.push((k, v));
        }
    };
    put("q", filter.map(|f| f.to_string()));
    put("since", a.since.map(|t| t.param()));
    put("until", a.until.map(|t| t.param()));
    put("limit", a.limit.map(|n| n.to_string()));
    put(
        "interval",
        a.interval.map(|d| format!("{}ns", d.as_nanos())),
    );
    put("exclude_local", a.exclude_local.then(|| "true".into()));
    put("local_nets", a.local_nets.clone());
    put("pid", a.pid.map(|p| p.to_string()));
    put("ip", a.ip.map(|i| i.to_string()));
    put("port", a.port.map(|p| p.to_string()));
    put("below", a.below.map(|n| n.to_string()));
    put("format", Some(a.format().name().into()));
    let c = client(target)?;
    let path = format!("/api/v1/reports/{}", a.report.name());
    let text = c
        .get(&path, &q)
        .and_then(netwho_api::client::Reply::ok)
        .map_err(failed)?
        .text()
        .map_err(|e| Failure {
            code: crate::failure::EXIT_RUNTIME,
            error: anyhow::Error::new(e).context("reading the report"),
        })?;
    crate::cmd::report::print_report(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only alerts not acknowledged mark rows; whatever else the answer
    /// holds (missing or out-of-range fields, not a list) marks nothing.
    #[test]
    fn marks_come_from_unacknowledged_alerts_only() {
        let doc = serde_json::json!({"alerts": [
            {"pid": 10, "start_ticks": 7, "program": "/usr/bin/curl", "acked": null},
            {"pid": 11, "start_ticks": 8, "program": "/usr/bin/wget", "acked": "2026-12-06T10:00:00Z"},
            {"pid": 99_999_999_999u64, "start_ticks": 1, "acked": null},
            {"pid": "x", "program": 5},
        ]});
        let m = marks(&doc);
        assert_eq!(
            m.procs.into_iter().collect::<Vec<_>>(),
            vec![netwho_model::ProcKey::from_start_ticks(10, 7)]
        );
        assert_eq!(
            m.programs.into_iter().collect::<Vec<_>>(),
            vec![Arc::<str>::from("/usr/bin/curl")]
        );
        assert_eq!(
            marks(&serde_json::json!({"alerts": 3})),
            netwho_tui::Alerted::default()
        );
    }
}
