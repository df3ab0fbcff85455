//! netwho's flow model.
//!
//! Place in the pipeline: the middle, and pure. A sensor (eBPF, a fallback,
//! or the replay of a recording) produces [`SensorEvent`]s; the pipeline
//! passes each one with the current time to [`FlowTable::apply`], which
//! answers with [`FlowEvent`]s (`Opened`, `Updated`, `Closed`) for the sinks.
//! Nothing here does I/O, reads a clock or starts a thread: time is always
//! an argument ([`MonoNs`], CLOCK_BOOTTIME nanoseconds), so a replayed
//! recording yields exactly the flows of the live run, and every rule can be
//! unit-tested with a fake clock.
//!
//! Identities are typed: a process is a [`ProcKey`] (tgid and start time),
//! never a bare pid; a socket is a [`SockCookie`]; a flow is one
//! (process, socket, remote) [`FlowKey`].

#![warn(missing_docs)]

mod addr;
pub mod capture;
pub mod collector;
pub mod community;
mod event;
mod flow;
mod ids;
pub mod json;
pub mod names;
mod proc;
pub mod record;
mod table;
pub mod text;
pub mod time;
pub mod top;
mod wire;

pub use addr::{Endpoint, Family, NAMED_PROTOS, PROTO_NAMES, Proto, TcpState};
pub use capture::{CAPTURE_LIMIT, Capture, CaptureDir, CapturePiece, CaptureStream};
pub use event::{
    CounterHint, ExistingSocket, FlowOpen, Inbound, ProcExec, ProcFork, SensorEvent, SockState,
    SocketTuple,
};
pub use flow::{
    Attribution, CloseReason, Direction, Flow, FlowEvent, Payload, Wire, order_by_time,
};
pub use ids::{FileId, FlowId, FlowKey, KernelKey, MonoNs, ProcKey, SockCookie, WireKey, nanos};
pub use proc::{
    Ancestor, FlowUsage, MAX_ANCESTORS, ProcInfo, ProcSource, ProcTable, Usage, UsageTrack,
    ancestors,
};
pub use table::{FlowTable, ModelStats, TableConfig};
