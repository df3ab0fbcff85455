//! How the API is served: where, for whom, with which limits, as which
//! user.

use crate::access::Policy;
use crate::limits::Limits;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Where and how the API is served.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The Unix socket (None: not served there).
    pub socket: Option<PathBuf>,
    /// A TCP address (with `token`).
    pub listen: Option<SocketAddr>,
    /// The API token (for TCP).
    pub token: Option<String>,
    /// Where the token is kept (for messages).
    pub token_file: Option<PathBuf>,
    /// Who sees everything over the Unix socket.
    pub policy: Policy,
    /// The history database reports read.
    pub history: Option<PathBuf>,
    /// `/metrics` is served.
    pub metrics: bool,
    /// This host's name.
    pub host: String,
    /// This boot's id.
    pub boot_id: [u8; 16],
    /// This host's addresses (`fd.is_local`).
    pub local: HashSet<IpAddr>,
    /// Unix ns when the daemon started.
    pub started_unix_ns: i128,
    /// What callers may hold at once.
    pub limits: Limits,
    /// The identity the API thread takes before it serves (None: it stays
    /// who the daemon is, e.g. when the daemon is not root).
    pub run_as: Option<RunAs>,
    /// The seed of the Community IDs reports give connections.
    pub community_seed: u16,
    /// The alerts' board (`[alerts]`), when alerts are on.
    pub alerts: Option<std::sync::Arc<netwho_alerts::Board>>,
}

/// A user and group id to serve as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}
