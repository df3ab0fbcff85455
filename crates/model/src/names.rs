//! Names of remotes as their processes knew them (`rname`, `sni`, `alpn`;
//! `docs/specs/names.md`): what the sensor hands over, what a flow
//! carries, and how the flow table is told to look.

use crate::ids::{MonoNs, WireKey};
pub use netwho_names::NAME_MAX;
pub use netwho_names::book::{Limits as NameLimits, NameStats, RnameSource};
use std::net::IpAddr;
use std::sync::Arc;

/// What a [`NamePiece`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A DNS answer the socket received (UDP: one message; TCP: stream
    /// bytes at `offset`).
    Dns,
    /// Bytes a TCP socket sent from `offset` on (its TLS ClientHello).
    Tls,
    /// A long-header datagram a UDP socket sent to port 443 (a QUIC
    /// Initial).
    Quic,
}

/// One packet's payload the sensor read for names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePiece {
    /// The (socket, remote).
    pub key: WireKey,
    /// When the kernel saw it.
    pub at: MonoNs,
    /// What it is.
    pub kind: NameKind,
    /// TCP: its stream offset; datagrams: 0.
    pub offset: u32,
    /// TCP rather than a datagram.
    pub tcp: bool,
    /// The payload was longer than `data` (the kernel keeps 2 KiB).
    pub cut: bool,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A flow's remote as its process knew it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteName {
    /// The name the process resolved to this address most recently before
    /// the flow opened (within the answer's TTL).
    pub rname: Option<Arc<str>>,
    /// Whose answer gave it, or `None` (connected without resolving).
    pub source: Option<RnameSource>,
    /// The server name its TLS or QUIC ClientHello asked for.
    pub sni: Option<Arc<str>>,
    /// The protocols it offered (ALPN), comma-separated.
    pub alpn: Option<Arc<str>>,
}

/// The flow table's names settings (`TableConfig::names`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamesConfig {
    /// Networks a flow to which is not marked "connected without
    /// resolving" (private networks by default).
    pub local: Vec<(IpAddr, u8)>,
    /// The book's bounds.
    pub limits: NameLimits,
}

impl Default for NamesConfig {
    fn default() -> Self {
        NamesConfig {
            local: netwho_names::book::private_nets(),
            limits: NameLimits::default(),
        }
    }
}

/// Pieces that came before any flow of their socket (a DNS answer can
/// overtake the open of the query's flow on another CPU) wait this long.
pub const PENDING_NS: u64 = 2_000_000_000;
/// Sockets whose pieces wait at most, and pieces per socket.
pub const PENDING_SOCKETS: usize = 1024;
/// See [`PENDING_SOCKETS`].
pub const PENDING_PIECES: usize = 8;
