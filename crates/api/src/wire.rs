//! The API's documents as types, shared by the server (which writes them)
//! and the client (which reads them): `/status`, `/flows`, `/processes`,
//! and the error body every refusal carries. Field names and order are the
//! wire format (`docs/specs/api.md`); flows and processes inside are flow
//! records and process rows as `docs/specs/flow-record.md` has them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// Every refusal: `{"error": "..."}`, a sentence that says what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The sentence.
    pub error: String,
}

/// What the caller may see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDoc {
    /// `all`, or `own` (their own processes' traffic only).
    pub sees: String,
    /// The caller's uid over the Unix socket (none over TCP).
    pub uid: Option<u32>,
}

/// The live state the API holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDoc {
    /// Flows open at the last batch that the caller may see (their own,
    /// for a caller who sees only their own): what the live tables show.
    #[serde(default)]
    pub flows_open: u64,
    /// Flows held (absent for a caller who sees only their own).
    pub flows_held: Option<usize>,
    /// Closed flows let go of early (absent likewise).
    pub closed_evicted: Option<u64>,
    /// Readers following the live batches.
    pub readers: usize,
    /// Readers dropped for falling behind.
    pub readers_lagged: u64,
}

/// The history database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDoc {
    /// Its path.
    pub database: PathBuf,
    /// Its size, if it could be read.
    pub bytes: Option<u64>,
}

/// `GET /api/v1/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// The daemon's version.
    pub netwho_version: String,
    /// `v1`.
    pub api: String,
    /// This host's name.
    pub host: String,
    /// This boot (hex).
    pub boot_id: String,
    /// When the daemon started (RFC 3339).
    pub started: String,
    /// The latest batch's time (none before the first).
    pub ts: Option<String>,
    /// The latest batch's number.
    pub batch: u64,
    /// Seconds between batches.
    pub interval_s: f64,
    /// What the caller may see.
    pub access: AccessDoc,
    /// The live state.
    pub live: LiveDoc,
    /// Callers' connections, reports and streams: held and refused.
    pub callers: Value,
    /// The history database, if kept.
    pub history: Option<HistoryDoc>,
    /// Whether `/metrics` is served.
    pub metrics: bool,
    /// The collector's latest status record (scoped for the caller).
    pub status: Option<Value>,
}

/// `GET /api/v1/flows`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowsDoc {
    /// The live state's time.
    pub ts: String,
    /// `all` or `own`.
    pub access: String,
    /// The filter applied (the caller's, and their uid for `own`).
    pub filter: Option<String>,
    /// Flows that matched (before `limit`).
    pub matched: usize,
    /// Their records.
    pub flows: Vec<Value>,
}

/// `GET /api/v1/processes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessesDoc {
    /// The live state's time.
    pub ts: String,
    /// `all` or `own`.
    pub access: String,
    /// The filter applied.
    pub filter: Option<String>,
    /// The process rows.
    pub processes: Vec<Value>,
}
