//! `netwho record` and `netwho log --record`: the recorder sink, its file
//! created and headed with this host, boot, clock and filter.

use crate::args::RecordArgs;
use crate::failure::{Failure, cannot_start};
use anyhow::Context as _;
use netwho_pipeline::Sink;
use netwho_pipeline::recsink::{RecordConfig, RecordSink};
use netwho_report::summary::RecordingSummarizer;
use netwho_store::recording::{Header, RecordingFile};
use std::path::Path;
use std::time::Duration;

/// The recorder sink for `netwho record`, its file created and headed.
pub fn sink(
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
    let file = Target {
        path: &r.write,
        rotate: r.rotate,
        overwrite: r.overwrite,
        snaplen,
        summary: !r.no_summary,
    };
    recorder(&file, cfg, filter, scope)
}

/// `netwho log --record FILE`: the recorder beside the log, quietly, at
/// the default resolution, until the log stops.
pub fn log_sink(
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
    let file = Target {
        path,
        rotate: None,
        overwrite: false,
        snaplen: 0,
        summary: true,
    };
    recorder(&file, cfg, filter, scope)
}

/// Where and how a recording is written.
struct Target<'a> {
    path: &'a Path,
    /// Segments of this many bytes.
    rotate: Option<u64>,
    overwrite: bool,
    /// Payload up to this many bytes per flow and direction.
    snaplen: u32,
    /// Keep the reports' summary (`FILE.sum`).
    summary: bool,
}

/// A recording as `t` says, headed with this host, boot, clock and the
/// filter it passes, and the sink that writes it.
fn recorder(
    t: &Target<'_>,
    cfg: RecordConfig,
    filter: Option<String>,
    scope: Option<String>,
) -> Result<Box<dyn Sink>, Failure> {
    let (path, snaplen) = (t.path, t.snaplen);
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
    if t.overwrite {
        for p in netwho_store::recording::segments_of(path) {
            if p != path && p.exists() {
                std::fs::remove_file(&p)
                    .with_context(|| format!("removing {}", p.display()))
                    .map_err(cannot_start)?;
            }
        }
    }
    let summarizer = RecordingSummarizer::new(&header);
    let mut file =
        RecordingFile::create(path, header, t.rotate, t.overwrite).map_err(cannot_start)?;
    if t.summary {
        file.summarize(Box::new(summarizer));
    }
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
