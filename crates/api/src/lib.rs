//! The daemon's API: what `netwho daemon` knows, over HTTP.
//!
//! Place: beside the pipeline in the daemon. [`live::LiveSink`] is a
//! pipeline sink that keeps the live state (flows, processes, metric
//! series) and publishes it once per interval; [`server::start`] serves
//! it with the history's reports, Prometheus metrics and the web page, on
//! a Unix socket (callers identified by the kernel, [`access`]) and,
//! when asked, on TCP with a token. [`client`] is the other end, used by
//! `netwho top --connect` and `netwho report --connect`. The contract is
//! `docs/specs/api.md` and `crates/api/openapi.json`.

#![warn(missing_docs)]

pub mod access;
mod alerts;
pub mod client;
pub mod config;
pub mod error;
pub mod limits;
pub mod live;
pub mod metrics;
mod params;
pub mod pool;

pub mod server;
mod state;
mod stream;
mod view;
mod web;
pub mod wire;

pub use error::{ApiError, StartError};
pub use live::{Live, LiveConfig, LiveSink};
pub use server::{ApiConfig, Server, start};

/// Where the daemon listens by default, and clients look.
pub const DEFAULT_SOCKET: &str = "/run/netwho/api.sock";
