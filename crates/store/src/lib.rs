//! netwho's data that lasts.
//!
//! Place in the pipeline: below the sinks that keep data: the recording
//! format ([`recording`]), which the recorder sink writes and `netwho
//! report`, `log -r` and `top -r` read back, and the history database
//! ([`history`]) the daemon keeps and `report --db` and the API read. No clock is read
//! here: every time comes from the data or the caller.

pub mod history;
pub mod private;
pub mod recording;

use std::path::PathBuf;
use thiserror::Error;

/// Why a recording could not be written or read. Each message says what to
/// do.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{what} {path}: {source}", path = path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} already exists; netwho does not overwrite a recording: choose another name, \
         remove it, or pass --overwrite",
        path = path.display()
    )]
    Exists { path: PathBuf },
    #[error(
        "{path} is not a netwho recording (it does not start with netwho's recording magic); \
         record one with 'netwho record -w FILE'",
        path = path.display()
    )]
    NotARecording { path: PathBuf },
    #[error(
        "{path} is a recording of format version {major}.{minor}; this netwho reads version \
         {supported}.x only: read it with a netwho of that version (or a newer one)",
        path = path.display(),
        supported = recording::format::MAJOR
    )]
    Version {
        path: PathBuf,
        major: u16,
        minor: u16,
    },
    #[error("{path}: the recording header is damaged: {why}", path = path.display())]
    HeaderCorrupt { path: PathBuf, why: String },
    #[error("encoding {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error("no recording to read")]
    NoInput,
}
