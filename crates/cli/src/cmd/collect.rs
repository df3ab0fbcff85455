//! `netwho collect`: the fleet's records from NATS into PostgreSQL.

use crate::failure::{EXIT_RUNTIME, Failure, cannot_start};
use anyhow::Context as _;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// `netwho collect`: the fleet's records into PostgreSQL.
pub fn collect(c: &crate::args::CollectArgs, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let cfg = netwho_fleet::collect::CollectConfig {
        nats: netwho_fleet::nats_url(&c.nats)
            .context("--nats")
            .map_err(cannot_start)?,
        postgres: c.postgres.clone(),
        consumer: c.consumer.clone(),
        drain: c.drain,
    };
    let s = netwho_fleet::collect::collect(&cfg, stop).map_err(|e| Failure {
        code: EXIT_RUNTIME,
        error: anyhow::Error::new(e).context("collecting"),
    })?;
    log::info!(
        "collect: done: {} records stored ({} were there already, {} rejected, {} messages in netwho_dead_letters) from {} messages",
        s.stored,
        s.records - s.stored,
        s.rejected,
        s.dead,
        s.messages
    );
    Ok(())
}
