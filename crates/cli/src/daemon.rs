//! Wiring of `netwho daemon`: the configuration, the history sink.

use crate::args::{DaemonArgs, SelectArgs};
use crate::config::{self, Config};
use crate::{Failure, cannot_start};
use anyhow::Context as _;
use netwho_pipeline::Sink;
use netwho_pipeline::histsink::{HistoryConfig, HistorySink};
use netwho_store::history::History;
use std::time::Duration;

/// What the daemon runs with.
#[derive(Debug)]
pub struct Daemon {
    pub config: Config,
    /// The filter: the command line's, else the file's.
    pub select: SelectArgs,
}

/// The configuration in effect: the file (or the defaults), then the
/// command line's overrides. `--print-config` prints it here.
pub fn configure(d: &DaemonArgs) -> Result<Option<Daemon>, Failure> {
    let (mut cfg, from) = config::load(d.config.as_deref()).map_err(cannot_start)?;
    if let Some(db) = &d.db {
        cfg.history.db = db.clone();
    }
    if let Some(every) = d.commit_every {
        cfg.history.commit_every = format!("{}ms", every.as_millis());
    }
    if d.print_config {
        if let Some(p) = from {
            println!("# {} with the defaults filled in", p.display());
        }
        print!("{}", cfg.to_toml());
        return Ok(None);
    }
    let mut select = d.select.clone();
    if select.expression().ok().flatten().is_none() && !cfg.filter.is_empty() {
        select.filter = Some(cfg.filter.clone());
    }
    match from {
        Some(p) => log::info!("configuration: {}", p.display()),
        None => log::info!(
            "configuration: the defaults ({} not found)",
            config::DEFAULT_PATH
        ),
    }
    Ok(Some(Daemon {
        config: cfg,
        select,
    }))
}

/// The history sink on its database (created, with its directory, when
/// missing).
pub fn sinks(d: &Daemon) -> Result<Vec<Box<dyn Sink>>, Failure> {
    let h = &d.config.history;
    if let Some(dir) = h.db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {}", dir.display()))
            .map_err(cannot_start)?;
    }
    let db = History::create(&h.db).map_err(cannot_start)?;
    let commit_every = config::duration(&h.commit_every)
        .map_err(|e| cannot_start(anyhow::anyhow!("history.commit_every: {e}")))?;
    let sink = HistorySink::new(
        db,
        HistoryConfig {
            commit_every,
            retention: d.config.retention(),
            prune_every: Duration::from_secs(3600),
            boot_id: netwho_pipeline::chain::hex(&netwho_enrich::boot_id()),
        },
    )
    .context("starting the history writer")
    .map_err(cannot_start)?;
    log::info!(
        "history: {} (a batch every {commit_every:?})",
        h.db.display()
    );
    Ok(vec![Box::new(sink)])
}
