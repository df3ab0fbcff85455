//! The audit log: `netwho log` and the daemon's log.
//!
//! Place: an output. [`logsink::LogSink`] turns flow events into lines (JSON,
//! text, or a user's [`template`] with its [`tsformat`] time formats);
//! [`logfile::LogFile`] writes them to files it rotates, keeps private and
//! links into a hash [`chain`] that `netwho log --verify` checks;
//! [`journal`] sends them to journald or syslog instead. The format is
//! specified in `docs/specs/audit-log.md`.

#![warn(missing_docs)]

pub mod chain;
pub mod journal;
pub mod logfile;
pub mod logsink;
pub mod template;
pub mod tsformat;
