//! What sensors tell the model. Every event carries the kernel time it
//! happened at; `FlowTable::apply` takes the current time separately.

use crate::addr::{Endpoint, Proto, TcpState};
use crate::capture::CapturePiece;
use crate::flow::{Attribution, Direction, Payload, Wire};
use crate::ids::{KernelKey, MonoNs, ProcKey, SockCookie, WireKey};
pub use crate::proc::{ProcExec, ProcFork};
use crate::proc::{ProcInfo, Usage};

/// A socket's kind and addresses, as the kernel reported them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketTuple {
    /// The protocol.
    pub proto: Proto,
    /// This host's end.
    pub local: Endpoint,
    /// The other end.
    pub remote: Endpoint,
    /// TCP only.
    pub tcp_state: Option<TcpState>,
    /// Network namespace inode.
    pub netns: u32,
    /// AF_PACKET socket (no IP addresses).
    pub packet: bool,
}

/// The kernel created a flow entry for (process, socket, remote): the first
/// payload in either direction, or a TCP connect().
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowOpen {
    /// The kernel's key of the flow.
    pub key: KernelKey,
    /// The process.
    pub proc: ProcKey,
    /// When (boot time).
    pub at: MonoNs,
    /// The socket's addresses.
    pub tuple: SocketTuple,
    /// Who initiated.
    pub direction: Direction,
    /// The process's comm when the flow opened (it can be renamed later).
    pub comm: String,
    /// Effective uid and gid of the caller.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// The caller's cgroup id.
    pub cgroup_id: u64,
    /// How the owner was found.
    pub attribution: Attribution,
    /// The kernel had no entry of its own for the flow (its uid held its
    /// share of the flow map, or the map was full): its payload is counted
    /// on its socket ([`SensorEvent::SocketBytes`] at close).
    pub untracked: bool,
}

/// A TCP socket changed state (the model uses ESTABLISHED: the local port
/// of an outbound connection is final then).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockState {
    /// The socket.
    pub cookie: SockCookie,
    /// Its addresses.
    pub tuple: SocketTuple,
    /// The new state.
    pub state: TcpState,
    /// When.
    pub at: MonoNs,
}

/// An inbound TCP connection completed its handshake. No process has
/// touched it yet; the owner fields are the listener's creator, used only if
/// no process ever reads or writes the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The socket.
    pub cookie: SockCookie,
    /// Its addresses.
    pub tuple: SocketTuple,
    /// The listener's creator.
    pub owner_tgid: u32,
    /// Its uid.
    pub owner_uid: u32,
    /// Its gid.
    pub owner_gid: u32,
    /// Its cgroup id.
    pub owner_cgroup: u64,
    /// When.
    pub at: MonoNs,
}

/// A socket that existed before netwho started, found by sock_diag, with
/// the processes holding a descriptor to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingSocket {
    /// The socket.
    pub cookie: SockCookie,
    /// Its addresses.
    pub tuple: SocketTuple,
    /// Processes holding a descriptor to it (tgids).
    pub holders: Vec<u32>,
    /// Who initiated, as far as its state tells.
    pub direction: Direction,
    /// When it was found.
    pub at: MonoNs,
    /// TCP: payload its readers had taken from it when it was found
    /// (received minus unread), the base its counting starts from.
    pub taken: Option<u64>,
}

/// What a kernel flow entry tells of its flow besides its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterHint {
    /// The socket's protocol (`Proto::Unknown` if not known).
    pub proto: Proto,
    /// Whose share of the flow map the entry took.
    pub uid: Option<u32>,
}

/// Everything a sensor reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SensorEvent {
    /// A flow entry was made.
    FlowOpen(FlowOpen),
    /// A TCP socket changed state.
    SockState(SockState),
    /// An inbound connection completed its handshake.
    Inbound(Inbound),
    /// A socket is gone (TCP_CLOSE, or release of a datagram socket) and the
    /// sensor has already delivered the final counters of its flows.
    SockClosed {
        /// The socket.
        cookie: SockCookie,
        /// When.
        at: MonoNs,
    },
    /// The payload a socket's untracked flows moved (counted on the
    /// socket, not per flow), delivered at its close before `SockClosed`.
    /// `tgid`: the first process with an untracked flow on it.
    SocketBytes {
        /// The socket.
        cookie: SockCookie,
        /// The first process with an untracked flow on it.
        tgid: u32,
        /// The socket's protocol (for a socket none of whose flows is known).
        proto: Proto,
        /// The one remote its untracked flows had (all of one process), if so.
        remote: Option<Endpoint>,
        /// What they moved.
        payload: Payload,
    },
    /// Cumulative payload of one kernel flow entry.
    Counters {
        /// The entry.
        key: KernelKey,
        /// Its payload so far.
        payload: Payload,
        /// What the kernel entry knows of its socket, for a flow whose
        /// open event never came.
        hint: CounterHint,
    },
    /// Cumulative wire counters of one (socket, remote), and the local
    /// address the packets carried.
    Wire {
        /// The (socket, remote).
        key: WireKey,
        /// Its counters so far.
        wire: Wire,
        /// The local address the packets carried.
        local: Endpoint,
    },
    /// A chunk of a packet of an in-scope socket (`netwho pcap`); the
    /// pipeline hands these to sinks, the flow table ignores them.
    Packet(Box<crate::capture::PacketChunk>),
    /// A packet's payload read for names (DNS answers, ClientHellos).
    Name(Box<crate::names::NamePiece>),
    /// Payload bytes of one (socket, remote) (`record -s SNAPLEN`).
    Captured {
        /// The (socket, remote).
        key: WireKey,
        /// The bytes.
        piece: CapturePiece,
    },
    /// A datagram flow idle past the timeout; its final counters were
    /// delivered. Traffic after this opens a new flow.
    FlowIdle {
        /// The entry.
        key: KernelKey,
        /// When.
        at: MonoNs,
    },
    /// A process called execve().
    Exec(ProcExec),
    /// A new process.
    Fork(ProcFork),
    /// The last thread of a process exited; the sensor has delivered the
    /// final counters of its flows.
    Exit {
        /// The process.
        proc: ProcKey,
        /// When.
        at: MonoNs,
        /// Final resource figures, when the kernel gave them.
        usage: Option<Usage>,
    },
    /// A resource sample of a running process.
    ProcSample {
        /// The process.
        proc: ProcKey,
        /// Its figures.
        usage: Usage,
        /// When.
        at: MonoNs,
    },
    /// A cgroup v2 directory was created (for naming cgroup ids; the model
    /// ignores it).
    CgroupCreated {
        /// The cgroup id (the directory's inode).
        id: u64,
        /// Its path under the cgroup v2 root.
        path: String,
        /// When.
        at: MonoNs,
    },
    /// A process read from /proc (it predates netwho, or an event was lost).
    ProcSnapshot(ProcInfo),
    /// A socket older than netwho, found at start-up.
    Existing(ExistingSocket),
}
