//! What every request handler shares: the live state, the configuration,
//! the metrics registry, the report pool and the callers' quotas.

use crate::config::ApiConfig;
use crate::limits::Quotas;
use crate::live::Live;
use crate::pool::Pool;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The shared state behind every handler.
pub(crate) struct Inner {
    pub live: Arc<Live>,
    pub cfg: ApiConfig,
    pub registry: Registry,
    pub pool: Pool,
    pub quotas: Arc<Quotas>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("cfg", &self.cfg).finish()
    }
}

pub(crate) type AppState = Arc<Inner>;
