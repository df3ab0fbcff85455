//! First-seen alerts (`netwho daemon`, `[alerts]`): what each program
//! normally talks to, learned from the traffic and the history, and an
//! alert when that changes (`docs/specs/alerts.md`).
//!
//! Place: an output of the pipeline, beside the history. [`engine`] is the
//! pure model (baselines, learning, the decision; time is an argument);
//! [`sink`] feeds it flow events and sends what it raises to the
//! [`board`] (which the API, the web page and `/metrics` read), the alert
//! log, the journal and the [`webhook`], and what it learned to the
//! history database.

#![warn(missing_docs)]

pub mod board;
pub mod engine;
pub mod sink;
pub mod webhook;

pub use board::Board;
pub use engine::{Kind, Limits};
pub use sink::{AlertConfig, AlertError, AlertSink};
