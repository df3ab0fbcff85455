//! What the commands that read a recording share: opening it, its
//! warnings, the time window, and the paced replay into the sinks.

use crate::args::TimeArg;
use crate::failure::{Failure, cannot_start};
use netwho_pipeline::replay::{Controls, Pacer, Replay, ReplayConfig, ReplayError};
use netwho_pipeline::{PipelineError, Sink, Stopped};
use netwho_store::recording::{Header, Reader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Open a recording; its frames are read and decompressed on a thread of
/// their own while the command decodes and shows them, and its records
/// carry Community IDs with `community_seed`.
pub fn reader(
    paths: &[std::path::PathBuf],
    community_seed: u16,
) -> Result<Reader, netwho_store::StoreError> {
    let mut r = Reader::open(paths)?;
    r.read_ahead();
    r.set_community_seed(community_seed);
    Ok(r)
}

/// [`reader`], its failure said as a command's.
pub fn open(paths: &[std::path::PathBuf], community_seed: u16) -> Result<Reader, Failure> {
    reader(paths, community_seed).map_err(cannot_start)
}

/// Warnings about what the recording lacked, on stderr.
pub fn warn(reader: &Reader) {
    for w in reader.warnings() {
        eprintln!("netwho: warning: {w}");
    }
}

pub fn window(
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

pub fn run(
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
        Err(e) => Err(failure(e)),
    }
}

/// A replay that failed (reading its source, or writing output).
pub fn failure(e: ReplayError) -> Failure {
    let error = match e {
        ReplayError::Pipeline(PipelineError::Output(e)) => {
            anyhow::Error::new(e).context("writing output")
        }
        e => e.into(),
    };
    Failure {
        code: crate::failure::EXIT_RUNTIME,
        error,
    }
}
