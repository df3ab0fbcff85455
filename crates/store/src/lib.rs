//! netwho's data that lasts.
//!
//! Place in the pipeline: below the sinks that keep data: the recording
//! format ([`recording`]), which the recorder sink writes and `netwho
//! report`, `log -r` and `top -r` read back, and the history database
//! ([`history`]) the daemon keeps and `report --db` and the API read. No clock is read
//! here: every time comes from the data or the caller.

#![warn(missing_docs)]

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
    /// A file operation failed.
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: std::io::Error,
    },
    #[error(
        "{path} already exists; netwho does not overwrite a recording: choose another name, \
         remove it, or pass --overwrite",
        path = path.display()
    )]
    /// The recording exists (give --overwrite).
    Exists {
        /// The file.
        path: PathBuf,
    },
    #[error(
        "{path} is not a netwho recording (it does not start with netwho's recording magic); \
         record one with 'netwho record -w FILE'",
        path = path.display()
    )]
    /// The file is not a recording.
    NotARecording {
        /// The file.
        path: PathBuf,
    },
    #[error(
        "{path} is a recording of format version {major}.{minor}; this netwho reads version \
         {supported}.x only: read it with a netwho of that version (or a newer one)",
        path = path.display(),
        supported = recording::format::MAJOR
    )]
    /// A recording of a major version this netwho cannot read.
    Version {
        /// The file.
        path: PathBuf,
        /// Its major version.
        major: u16,
        /// Its minor version.
        minor: u16,
    },
    #[error("{path}: the recording header is damaged: {why}", path = path.display())]
    /// The header does not decode.
    HeaderCorrupt {
        /// The file.
        path: PathBuf,
        /// What shows it.
        why: String,
    },
    #[error("encoding {what}: {detail}")]
    /// A record could not be encoded.
    Encode {
        /// What was being done.
        what: &'static str,
        /// Why.
        detail: String,
    },
    #[error("reading the recording: {0}")]
    /// A thread that read part of a recording failed (a bug: said, not hidden).
    Thread(&'static str),
    #[error("no recording to read")]
    /// No file was given.
    NoInput,
}
