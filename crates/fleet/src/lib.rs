//! netwho's fleet (`docs/specs/fleet.md`): each daemon publishes its flow
//! records ([`netwho_export::fleet::FleetRecord`], JSON lines) to a NATS
//! JetStream stream through an on-disk [`spool`]; `netwho collect` stores
//! them in PostgreSQL with the host as a dimension; `netwho report
//! --postgres` answers the reports fleet-wide.
//!
//! Delivery is exactly-once in effect: a batch leaves the daemon's spool
//! only when JetStream has acknowledged it, is sent again (with the same
//! message id) until it has, and the collector acknowledges a message only
//! after PostgreSQL has committed its records under a primary key of (host,
//! message id, line), so a batch delivered twice is stored once.

#![warn(missing_docs)]

pub mod collect;
pub mod pg;
pub mod publish;
pub mod report;
pub mod spool;

use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
/// What can fail in the fleet: the spool, NATS, PostgreSQL.
pub enum FleetError {
    #[error("fleet spool {0}: {1} (is the directory writable by the daemon?)")]
    /// The spool directory could not be used.
    Spool(PathBuf, #[source] std::io::Error),
    #[error("cannot start the fleet's runtime: {0}")]
    /// The async runtime could not start.
    Runtime(#[source] std::io::Error),
    #[error("NATS {0}: {1}")]
    /// A NATS operation failed (what, why).
    Nats(String, String),
    #[error("PostgreSQL: {0}")]
    /// A PostgreSQL operation failed.
    Postgres(#[from] tokio_postgres::Error),
    #[error(
        "PostgreSQL {0}: the table netwho_flows is missing (run 'netwho collect' against this database first)"
    )]
    /// The database has no `netwho_flows` table (no collector stored there yet).
    NoTable(String),
    #[error("{0}")]
    /// A server address that is not one.
    Url(String),
    #[error(transparent)]
    /// A report over the fleet's records failed.
    Report(#[from] netwho_report::ReportError),
}

/// The JetStream stream every daemon publishes to and the collector reads.
pub const STREAM: &str = "NETWHO_FLOWS";
/// Subjects: `netwho.flows.HOST`.
pub const SUBJECT_PREFIX: &str = "netwho.flows";
/// Headers of a batch.
pub const HOST_HEADER: &str = "Netwho-Host";
/// How many records a batch holds (a header of each message).
pub const RECORDS_HEADER: &str = "Netwho-Records";
/// How long JetStream remembers a message id to drop a repeat.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The stream, created by whichever of daemon and collector comes first.
pub fn stream_config() -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: STREAM.to_string(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        storage: async_nats::jetstream::stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// A NATS server's address: `nats://HOST:PORT` or `HOST:PORT`.
pub fn nats_url(s: &str) -> Result<String, FleetError> {
    let rest = match s.split_once("://") {
        Some(("nats", r)) => r,
        Some((other, _)) => {
            return Err(FleetError::Url(format!(
                "'{other}://' is not a NATS address: give nats://HOST:PORT"
            )));
        }
        None => s,
    };
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(format!("nats://{rest}"))
        }
        _ => Err(FleetError::Url(format!(
            "'{s}' is not a NATS address: give nats://HOST:PORT (e.g. nats://127.0.0.1:4222)"
        ))),
    }
}

/// The host name as a subject token (NATS tokens cannot hold '.', '*',
/// '>' or spaces).
pub fn subject_for(host: &str) -> String {
    let token: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{SUBJECT_PREFIX}.{token}")
}

/// A current-thread runtime for one of the fleet's jobs.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, FleetError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(FleetError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_addresses() {
        assert_eq!(nats_url("127.0.0.1:4222").unwrap(), "nats://127.0.0.1:4222");
        assert_eq!(nats_url("nats://n1:4222").unwrap(), "nats://n1:4222");
        assert!(nats_url("http://n1:4222").is_err());
        assert!(nats_url("n1").is_err());
        assert!(nats_url("nats://n1:0").is_err());
    }

    #[test]
    fn host_names_become_one_token() {
        assert_eq!(
            subject_for("web-1.example.org"),
            "netwho.flows.web-1_example_org"
        );
        assert_eq!(subject_for("a b>*"), "netwho.flows.a_b__");
    }
}
