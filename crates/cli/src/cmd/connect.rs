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
        let (sink, shown) = crate::view::start(t, filter, local, None, stop)?;
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
