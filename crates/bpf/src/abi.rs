//! Rust mirror of `include/netwho_abi.h`.
//!
//! Every struct is `#[repr(C)]` plain old data: all bit patterns are valid,
//! so decoding a ring-buffer record is a length check plus an unaligned copy
//! (`bytemuck::try_pod_read_unaligned`), never a transmute into an enum.
//! Kinds and codes stay integers here; the sensor converts them with
//! `TryFrom` and rejects unknown values. The tests below parse the header and
//! check that every size and constant agrees with it. Each item's doc is its
//! comment in the header.

use bytemuck::{Pod, Zeroable};

/// Bytes of an address (IPv4 stored IPv4-mapped).
pub const ADDR_LEN: usize = 16;
/// Bytes of a command name.
pub const COMM_LEN: usize = 16;
/// Bytes of a path kept.
pub const PATH_LEN: usize = 256;
/// Bytes of argv kept.
pub const ARGS_LEN: usize = 1024;

/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_FLOW_OPEN: u32 = 1;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_SOCK_STATE: u32 = 2;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_INBOUND: u32 = 3;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_EXEC: u32 = 4;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_FORK: u32 = 5;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_EXIT: u32 = 6;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_SOCK_CLOSE: u32 = 7;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_CGROUP_MKDIR: u32 = 8;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_CAPTURE: u32 = 9;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_PACKET: u32 = 10;
/// Ring buffer event kinds (netwho_event_header.kind).
pub const EV_NAME: u32 = 11;

/// Names (`netwho_capture_cfg.names`): DNS answers received from port 53.
pub const NAMES_DNS: u32 = 0x1;
/// Names: the first bytes of a TCP stream a socket sends, if TLS.
pub const NAMES_TLS: u32 = 0x2;
/// Names: the first long-header datagrams a UDP socket sends to port 443.
pub const NAMES_QUIC: u32 = 0x4;
/// Names: payload bytes kept of one packet (and of a TLS stream's start).
pub const NAME_SNAP: usize = 2048;
/// Names: bytes of a TCP DNS stream read at most.
pub const NAME_TCP_DNS: u32 = 16384;
/// `netwho_name.what`: a DNS answer.
pub const NAME_DNS: u8 = 1;
/// `netwho_name.what`: bytes of a TLS stream's start.
pub const NAME_TLS: u8 = 2;
/// `netwho_name.what`: a QUIC long-header datagram.
pub const NAME_QUIC: u8 = 3;

/// Payload capture (`-s SNAPLEN`): bytes per ring record, records per packet at most, hence the largest snap length.
pub const CAPTURE_CHUNK: usize = 512;
/// Payload capture (`-s SNAPLEN`): bytes per ring record, records per packet at most, hence the largest snap length.
pub const CAPTURE_CHUNKS: usize = 32;
/// Payload capture (`-s SNAPLEN`): bytes per ring record, records per packet at most, hence the largest snap length.
pub const SNAPLEN_MAX: u32 = 16384;

/// Flows a socket remembers, so that its close event can carry their final counters (more than this: userspace reads the rest itself).
pub const MAX_OWNERS: usize = 4;

/// `netwho_flow_open.origin`: what created the flow entry.
pub const ORIGIN_SEND: u8 = 1;
/// `netwho_flow_open.origin`: what created the flow entry.
pub const ORIGIN_RECV: u8 = 2;
/// `netwho_flow_open.origin`: what created the flow entry.
pub const ORIGIN_CONNECT: u8 = 3;

/// Direction of a flow: who initiated it.
pub const DIR_UNKNOWN: u8 = 0;
/// Direction of a flow: who initiated it.
pub const DIR_OUTBOUND: u8 = 1;
/// Direction of a flow: who initiated it.
pub const DIR_INBOUND: u8 = 2;

/// `netwho_sock_state.new_state` beyond the kernel's TCP states (1..12).
pub const STATE_RELEASED: u8 = 255;

/// Storage created at cgroup/sock_create.
pub const SK_HOOKED: u32 = 0x1;
/// TCP: this socket called connect().
pub const SK_OUTBOUND: u32 = 0x2;
/// TCP: child of a listener.
pub const SK_INBOUND: u32 = 0x4;
/// `TCP_CLOSE` reached or socket released.
pub const SK_CLOSED: u32 = 0x8;
/// At least one flow entry exists or existed.
pub const SK_FLOW_SEEN: u32 = 0x10;
/// `last_raddr/last_rport` are valid.
pub const SK_LAST_REMOTE: u32 = 0x20;
/// More flows than owners[] holds.
pub const SK_OWNERS_FULL: u32 = 0x40;
/// Outside the scope: nothing is counted.
pub const SK_SCOPE_OUT: u32 = 0x80;
/// The scope decision was made.
pub const SK_SCOPED: u32 = 0x100;
/// TCP: `consumed` counts from a known point.
pub const SK_APP_BASE: u32 = 0x200;
/// TCP: `rcv_base` is known.
pub const SK_RCV_BASE: u32 = 0x400;
/// names: nothing more of what it sends is read.
pub const SK_NAMES_DONE: u32 = 0x800;
/// names: one QUIC datagram of it was read.
pub const SK_NAMES_ONE: u32 = 0x1000;
/// TCP: a caller is setting `consumed`'s base (one is elected).
pub const SK_APP_STARTING: u32 = 0x2000;

/// Creator's uid in nw_scope_uid.
pub const SCOPE_UID: u32 = 0x1;
/// Creator's gid in nw_scope_gid.
pub const SCOPE_GID: u32 = 0x2;
/// Creator's cgroup or an ancestor in nw_scope_cgroup.
pub const SCOPE_CGROUP: u32 = 0x4;
/// Creator's tgid in nw_scope_pid.
pub const SCOPE_PID: u32 = 0x8;
/// Protocol bit set in protos.
pub const SCOPE_PROTO: u32 = 0x10;
/// Local or remote port in nw_scope_port.
pub const SCOPE_PORT: u32 = 0x20;
/// The dimensions the socket's creator decides (uid, gid, cgroup, pid).
pub const SCOPE_TASK_MASK: u32 = 0xf;
/// Ancestors checked for the cgroup scope.
pub const CGROUP_LEVELS: u32 = 16;
/// Cgroup names hashed by the mkdir hook.
pub const NAME_LEN: usize = 128;

/// `blkio_ns` is valid (delay accounting on).
pub const EXIT_BLKIO: u32 = 0x1;

/// Per-CPU statistics (index into nw_stats).
pub const STAT_RINGBUF_DROPS: u32 = 0;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_FLOWS_FULL: u32 = 1;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_BYTES_LOST: u32 = 2;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_WIRE_FULL: u32 = 3;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_REMOTE_UNKNOWN: u32 = 4;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_WIRE_NO_SOCK: u32 = 5;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_STORAGE_FAIL: u32 = 6;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_PAYLOAD_CALLS: u32 = 7;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_PACKETS: u32 = 8;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_WIRE_AFTER_CLOSE: u32 = 9;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_WIRE_HANDSHAKE: u32 = 10;
/// Per-CPU statistics (index into nw_stats).
pub const STAT_SCOPED_OUT: u32 = 11;
/// Payload records the ring had no room for.
pub const STAT_CAPTURE_LOST: u32 = 12;
/// Of RINGBUF_DROPS: flow opens.
pub const STAT_RB_DROP_OPEN: u32 = 13;
/// Of RINGBUF_DROPS: socket closes.
pub const STAT_RB_DROP_CLOSE: u32 = 14;
/// Of RINGBUF_DROPS: exec, fork, exit.
pub const STAT_RB_DROP_PROC: u32 = 15;
/// Flows counted on their socket, not in nw_flows.
pub const STAT_UNTRACKED: u32 = 16;
/// Lost closes/exits nw_lost had no room for.
pub const STAT_LOST_FULL: u32 = 17;
/// Packets of (socket, remote)s over their uid's share of nw_wire.
pub const STAT_WIRE_UNTRACKED: u32 = 18;
/// TCP bytes read past recv() (splice, zero-copy), credited to flows.
pub const STAT_BYPASS_RECV: u32 = 19;
/// Of those: bytes an ACK credited while a recv() was taking them.
pub const STAT_BYPASS_UNDONE: u32 = 20;
/// Packets given to the ring whole (`netwho pcap`); also each CPU's packet ids.
pub const STAT_PACKETS_CAPTURED: u32 = 21;
/// Packets the ring had no room for, or cut short.
pub const STAT_PACKETS_LOST: u32 = 22;
/// Names: records given to the ring.
pub const STAT_NAMES: u32 = 23;
/// Names: records the ring had no room for.
pub const STAT_NAMES_LOST: u32 = 24;
/// Slots of nw_stats.
pub const STAT_MAX: u32 = 26;

/// `netwho_flow_open.flow_flags`: the flow has no entry of its own in nw_flows (its uid holds its share of the map, or the map is full); its payload is counted on its socket (netwho_sk_info.ovf_*) and reported at close.
pub const FLOW_UNTRACKED_QUOTA: u8 = 0x1;
/// `netwho_flow_open.flow_flags`: the flow has no entry of its own in nw_flows (its uid holds its share of the map, or the map is full); its payload is counted on its socket (netwho_sk_info.ovf_*) and reported at close.
pub const FLOW_UNTRACKED_FULL: u8 = 0x2;

/// `netwho_lost.kind`: an event the ring had no room for, kept for userspace.
pub const LOST_CLOSE: u32 = 1;
/// `netwho_lost.kind`: an event the ring had no room for, kept for userspace.
pub const LOST_EXIT: u32 = 2;

/// Key of nw_flows: one entry per (process, socket, remote).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct FlowKey {
    /// `bpf_get_socket_cookie()`.
    pub cookie: u64,
    /// Owner: the process that sent/received.
    pub tgid: u32,
    /// 0 for ICMP, raw and packet sockets.
    pub rport: u16,
    /// Padding (zero).
    pub _pad: u16,
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
}

/// Value of nw_flows: exact payload, the sum of send()/recv() returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FlowCounters {
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_recv: u64,
    /// Successful send calls.
    pub sends: u64,
    /// Successful recv calls.
    pub recvs: u64,
    /// `CLOCK_BOOTTIME` when the entry was made.
    pub created_ns: u64,
    /// Whose share of the map the entry takes.
    pub uid: u32,
    /// The socket's protocol (`IPPROTO_*`), for a flow whose open is lost.
    pub protocol: u16,
    /// The socket's type (`SOCK_*`), likewise.
    pub sock_type: u8,
    /// 1 for an `AF_PACKET` socket, likewise.
    pub packet: u8,
}

/// `nw_uid`: one uid's use of nw_flows and nw_wire. Entries it holds: made - freed - (what userspace freed, in nw_uid_freed).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct UidUse {
    /// `nw_flows` entries created (BPF).
    pub made: u64,
    /// ... deleted by BPF (socket close).
    pub freed: u64,
    /// Flows over its share, counted on their socket.
    pub refused: u64,
    /// `nw_wire` entries, likewise.
    pub wire_made: u64,
    /// ... and nw_wire entries deleted by BPF.
    pub wire_freed: u64,
    /// Packets of (socket, remote)s over its share.
    pub wire_refused: u64,
}

/// `nw_uid_freed`: entries userspace deleted, per uid (only userspace writes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct UidFreed {
    /// nw_flows entries userspace deleted.
    pub flows: u64,
    /// nw_wire entries userspace deleted.
    pub wire: u64,
}

/// `nw_limits[0]`: what one uid may hold (userspace writes it before attaching).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Limits {
    /// Entries of nw_flows (and of nw_wire) one uid may hold; 0: no limit.
    pub flows_per_uid: u32,
    /// Padding (zero).
    pub _pad: u32,
}

/// `nw_lost`: an event the ring buffer had no room for: userspace finds it there and finishes what the event would have (closing the socket's flows, ending the process).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct LostKey {
    /// The socket's cookie, or the process's tgid.
    pub id: u64,
    /// `NETWHO_LOST_*`.
    pub kind: u32,
    /// Padding (zero).
    pub _pad: u32,
}

/// A close or exit the ring buffer had no room for, kept in nw_lost for userspace to finish.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Lost {
    /// `CLOCK_BOOTTIME`.
    pub ts_ns: u64,
    /// `LOST_EXIT`: the process's start_boottime.
    pub start_ns: u64,
    /// `LOST_CLOSE`: the socket's own bytes sent (its untracked flows').
    pub sent: u64,
    /// ... and received (with what was taken past recv()).
    pub recv: u64,
    /// ... and whose they are.
    pub tgid: u32,
    /// `LOST_CLOSE`: the socket's `IPPROTO_*`.
    pub protocol: u16,
    /// ... and its `SOCK_*`.
    pub sock_type: u8,
    /// Padding (zero).
    pub _pad: u8,
    /// As netwho_sock_close's ovf_*.
    pub raddr: [u8; ADDR_LEN],
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// 1: more than one (process, remote).
    pub many: u8,
    /// 1: `raddr`/`rport` are set.
    pub known: u8,
    /// Padding (zero).
    pub _pad2: [u8; 4],
}

/// Key of nw_wire: one entry per (socket, remote).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct WireKey {
    /// The socket's cookie (`bpf_get_socket_cookie`).
    pub cookie: u64,
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// Padding (zero).
    pub _pad: [u16; 3],
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
}

/// Value of nw_wire: L3 bytes and packets seen by cgroup_skb.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct WireCounters {
    /// IP bytes sent.
    pub bytes_sent: u64,
    /// IP bytes received.
    pub bytes_recv: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received.
    pub packets_recv: u64,
    /// `CLOCK_BOOTTIME` when the entry was made.
    pub created_ns: u64,
    /// Local address seen on the packets.
    pub laddr: [u8; ADDR_LEN],
    /// Local port (host order).
    pub lport: u16,
    /// Padding (zero).
    pub _pad: u16,
    /// Datagram payload bytes captured sent, up to the snap length
    /// (payload capture only).
    pub cap_sent: u32,
    /// ... and received.
    pub cap_recv: u32,
    /// The socket's owner: whose share it takes.
    pub uid: u32,
}

/// One flow of a socket: its (tgid, remote) part of the flow key.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Owner {
    /// 0: free slot.
    pub tgid: u32,
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// Padding (zero).
    pub _pad: u16,
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
}

/// `SK_STORAGE` value: who created the socket, and what we learnt of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SkInfo {
    /// Creator at sock_create, 0 if unknown.
    pub owner_tgid: u32,
    /// Creator's uid.
    pub owner_uid: u32,
    /// Creator's gid.
    pub owner_gid: u32,
    /// `NETWHO_SK_*`.
    pub flags: u32,
    /// Creator's cgroup id.
    pub owner_cgroup: u64,
    /// `CLOCK_BOOTTIME` when the socket was created.
    pub created_ns: u64,
    /// Datagram sockets: last egress remote.
    pub last_raddr: [u8; ADDR_LEN],
    /// ... and port.
    pub last_rport: u16,
    /// Padding (zero).
    pub _pad: [u16; 3],
    /// The flows this socket remembers, for its close event.
    pub owners: [Owner; MAX_OWNERS],
    /// Payload of this socket's untracked flows.
    pub ovf_sent: u64,
    /// ... received.
    pub ovf_recv: u64,
    /// The first process with an untracked flow here.
    pub ovf_tgid: u32,
    /// TCP: the last process whose read was counted (bypass bytes go to it).
    pub reader_tgid: u32,
    /// And its remote.
    pub ovf_raddr: [u8; ADDR_LEN],
    /// ... and its remote port.
    pub ovf_rport: u16,
    /// 1: untracked flows of another process or remote too.
    pub ovf_many: u8,
    /// Padding (zero).
    pub _pad3: [u8; 5],
    /// TCP: bytes of the receive stream the application took that flows were credited with (by recv(), or as bypass).
    pub consumed: u64,
    /// TCP: `rcv_nxt - bytes_received`, constant for a connection (a read
    /// that disagrees caught the two mid-update).
    pub rcv_base: u32,
    /// A base two reads must agree on before it is taken (sockets not seen
    /// established).
    pub base_cand: u32,
}

/// Final counters of one flow, taken out of nw_flows at close.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FinalFlow {
    /// 0: unused slot.
    pub tgid: u32,
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// 1 if the entry was there.
    pub found: u16,
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_recv: u64,
}

/// Final wire counters of one (socket, remote), taken out of nw_wire.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FinalWire {
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// Local port (host order).
    pub lport: u16,
    /// 1 if the entry was there.
    pub found: u16,
    /// Padding (zero).
    pub _pad: u16,
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
    /// Local address (IPv4-mapped for IPv4).
    pub laddr: [u8; ADDR_LEN],
    /// IP bytes sent.
    pub bytes_sent: u64,
    /// IP bytes received.
    pub bytes_recv: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received.
    pub packets_recv: u64,
}

/// A socket ended (TCP_CLOSE, or release of a datagram socket), with the final counters of the flows it remembered. Reserved before the entries are taken out, so anything re-created afterwards comes later in the ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SockClose {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// The socket's cookie (`bpf_get_socket_cookie`).
    pub cookie: u64,
    /// The TCP state before.
    pub old_state: u8,
    /// `TCP_CLOSE` (7) or NETWHO_STATE_RELEASED.
    pub new_state: u8,
    /// 1: more flows than listed.
    pub overflow: u8,
    /// `SOCK_*`.
    pub sock_type: u8,
    /// `IPPROTO_*`.
    pub protocol: u16,
    /// Padding (zero).
    pub _pad: [u8; 2],
    /// The flows' final counters.
    pub flows: [FinalFlow; MAX_OWNERS],
    /// `wires[i]`: the remote of `flows[i]`, once.
    pub wires: [FinalWire; MAX_OWNERS],
    /// Payload of the socket's untracked flows.
    pub ovf_sent: u64,
    /// ... received.
    pub ovf_recv: u64,
    /// Whose the socket's own bytes are: the first process with an untracked flow, else the creator.
    pub ovf_tgid: u32,
    /// TCP: the last process whose read was counted (bypass bytes go to it).
    pub reader_tgid: u32,
    /// The remote of its untracked flows.
    pub ovf_raddr: [u8; ADDR_LEN],
    /// ... and its remote port.
    pub ovf_rport: u16,
    /// 1: more than one (process, remote): no single flow.
    pub ovf_many: u8,
    /// 1: ovf_raddr/ovf_rport are set.
    pub ovf_known: u8,
    /// Padding (zero).
    pub _pad3: [u8; 4],
    /// TCP: bytes the application took past recv() that no flow was
    /// credited with yet.
    pub recv_left: u64,
}

/// Per-thread stash of a datagram's remote between the hook that knows it (cgroup/sendmsg*, skb_copy_datagram_iovec) and sock_{send,recv}_length.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Stash {
    /// 0: any socket.
    pub cookie: u64,
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
    /// Local address (IPv4-mapped for IPv4).
    pub laddr: [u8; ADDR_LEN],
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// Local port (host order).
    pub lport: u16,
    /// Padding (zero).
    pub _pad: u32,
}

/// Addresses of a socket as this host sees them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Tuple {
    /// Local address (IPv4-mapped for IPv4).
    pub laddr: [u8; ADDR_LEN],
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
    /// Local port (host order).
    pub lport: u16,
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// `AF_INET`, AF_INET6, AF_PACKET.
    pub family: u16,
    /// `IPPROTO_*` (packet sockets: 0).
    pub protocol: u16,
    /// `SOCK_STREAM`, SOCK_DGRAM, SOCK_RAW.
    pub sock_type: u16,
    /// `sk_state`.
    pub state: u8,
    /// Padding (zero).
    pub _pad: u8,
    /// Network namespace inode.
    pub netns: u32,
}

/// The header of every ring record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct EventHeader {
    /// `NETWHO_EV_*`.
    pub kind: u32,
    /// Padding (zero).
    pub _pad: u32,
    /// `CLOCK_BOOTTIME`.
    pub ts_ns: u64,
}

/// A flow entry was created in nw_flows (process context: the owner is the current task).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FlowOpen {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// The flow entry's key.
    pub key: FlowKey,
    /// The socket's addresses.
    pub tuple: Tuple,
    /// Group leader's start_boottime.
    pub proc_start_ns: u64,
    /// Cgroup id.
    pub cgroup_id: u64,
    /// Effective uid/gid of the caller.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// `NETWHO_ORIGIN_*`.
    pub origin: u8,
    /// `NETWHO_DIR_*`.
    pub direction: u8,
    /// Low byte of netwho_sk_info.flags, 0 if none.
    pub sk_flags: u8,
    /// `NETWHO_FLOW_*`.
    pub flow_flags: u8,
    /// Padding (zero).
    pub _pad: [u8; 4],
    /// Group leader's comm.
    pub comm: [u8; COMM_LEN],
}

/// A TCP state change worth knowing (ESTABLISHED, CLOSE) or the release of a non-TCP socket (new_state = NETWHO_STATE_RELEASED).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SockState {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// The socket's cookie (`bpf_get_socket_cookie`).
    pub cookie: u64,
    /// The socket's addresses.
    pub tuple: Tuple,
    /// The TCP state before.
    pub old_state: u8,
    /// The TCP state after.
    pub new_state: u8,
    /// Padding (zero).
    pub _pad: [u8; 6],
}

/// An inbound TCP connection reached ESTABLISHED (softirq: no process yet). The owner fields come from the listener's storage.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Inbound {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// The socket's cookie (`bpf_get_socket_cookie`).
    pub cookie: u64,
    /// The socket's addresses.
    pub tuple: Tuple,
    /// Creator's tgid.
    pub owner_tgid: u32,
    /// Creator's uid.
    pub owner_uid: u32,
    /// Creator's gid.
    pub owner_gid: u32,
    /// Padding (zero).
    pub _pad: u32,
    /// Creator's cgroup id.
    pub owner_cgroup: u64,
}

/// A process called execve(): who it is and what it runs.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Exec {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// Process (tgid).
    pub tgid: u32,
    /// Parent's tgid.
    pub ppid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// The process's start time (`start_boottime`).
    pub start_ns: u64,
    /// The parent's start time.
    pub parent_start_ns: u64,
    /// Cgroup id.
    pub cgroup_id: u64,
    /// Bytes copied, including the NUL.
    pub filename_len: u32,
    /// Bytes of argv copied (NUL separated).
    pub args_len: u32,
    /// 1 if argv was longer than NETWHO_ARGS_LEN - 1.
    pub args_truncated: u32,
    /// Audit loginuid, (u32)-1 if unset.
    pub login_uid: u32,
    /// Audit session id, (u32)-1 if unset.
    pub session: u32,
    /// Padding (zero).
    pub _pad: u32,
    /// Inode number of the executed file.
    pub exe_ino: u64,
    /// Command name (NUL-padded).
    pub comm: [u8; COMM_LEN],
    /// The executed file's path (NUL-terminated).
    pub filename: [u8; PATH_LEN],
    /// argv, NUL-separated.
    pub args: [u8; ARGS_LEN],
}

/// A process forked a new process (not a thread).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Fork {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// The parent's tgid.
    pub parent_tgid: u32,
    /// The child's tgid.
    pub child_tgid: u32,
    /// The parent's start time.
    pub parent_start_ns: u64,
    /// The child's start time.
    pub child_start_ns: u64,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Command name (NUL-padded).
    pub comm: [u8; COMM_LEN],
}

/// The last thread of a process exited, with the process's final figures.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Exit {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// Process (tgid).
    pub tgid: u32,
    /// The exit code.
    pub exit_code: u32,
    /// The process's start time (`start_boottime`).
    pub start_ns: u64,
    /// Run time of every thread, ever.
    pub cpu_ns: u64,
    /// Major page faults, every thread.
    pub maj_flt: u64,
    /// Resident pages now (0 if mm is gone).
    pub rss_pages: u64,
    /// High-water resident pages.
    pub peak_pages: u64,
    /// Time waiting for block I/O.
    pub blkio_ns: u64,
    /// `NETWHO_EXIT_*`.
    pub flags: u32,
    /// Padding (zero).
    pub _pad: u32,
}

/// A cgroup v2 directory was created: its id (the directory's inode) and path, so that cgroups gone before userspace looked are still named.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct CgroupMkdir {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// Its id.
    pub id: u64,
    /// Its depth in the cgroup tree.
    pub level: u32,
    /// Bytes copied, including the NUL.
    pub path_len: u32,
    /// The path (NUL-terminated).
    pub path: [u8; PATH_LEN],
}

/// `nw_scope[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Scope {
    /// `NETWHO_SCOPE_*`.
    pub active: u32,
    /// 1: a fork of a scoped pid joins nw_scope_pid.
    pub follow: u32,
    /// Bit n: IPPROTO n (0 stands for AF_PACKET).
    pub protos: [u64; 4],
}

/// `nw_capture[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CaptureCfg {
    /// Bytes kept per flow and direction, 0: off.
    pub snaplen: u32,
    /// `netwho pcap`: bytes kept per packet, 0: off.
    pub packet_snaplen: u32,
    /// `NAMES_*`, 0: off.
    pub names: u32,
    /// Padding (zero).
    pub _pad: u32,
}

/// Payload bytes of one (socket, remote) and direction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Capture {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// The socket's cookie (`bpf_get_socket_cookie`).
    pub cookie: u64,
    /// Where in the direction's stream this chunk starts.
    pub offset: u32,
    /// Bytes of `data` used.
    pub len: u16,
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
    /// 1 sent, 2 received.
    pub direction: u8,
    /// `IPPROTO_TCP`, IPPROTO_UDP, IPPROTO_UDPLITE.
    pub protocol: u8,
    /// Padding (zero).
    pub _pad: [u8; 6],
    /// The bytes.
    pub data: [u8; CAPTURE_CHUNK],
}

/// A packet of an in-scope socket (`netwho pcap`): a chunk of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Packet {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// The socket's cookie.
    pub cookie: u64,
    /// Ties a packet's chunks: the CPU (top 16 bits) and its count.
    pub id: u64,
    /// The packet's length (a GSO packet: all of it).
    pub len: u32,
    /// The interface (`skb->ifindex`), in the socket's namespace.
    pub ifindex: u32,
    /// Bytes captured in all.
    pub caplen: u16,
    /// Where `data` starts in the packet.
    pub offset: u16,
    /// Bytes of `data` used.
    pub n: u16,
    /// Remote port (host order; 0 where there is none).
    pub rport: u16,
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
    /// 1 sent, 2 received.
    pub direction: u8,
    /// The IP protocol.
    pub protocol: u8,
    /// GSO segments (1: an ordinary packet).
    pub segs: u16,
    /// Padding (zero).
    pub _pad: [u8; 4],
    /// The bytes, from the IP header on.
    pub data: [u8; CAPTURE_CHUNK],
}

/// One packet's payload read for names: a DNS answer, the start of a TLS
/// stream, a QUIC Initial (`data[..len]`, cut at [`NAME_SNAP`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Name {
    /// The record's header (its kind and time).
    pub hdr: EventHeader,
    /// The socket's cookie.
    pub cookie: u64,
    /// TCP: stream offset of `data[0]`; datagrams: 0.
    pub offset: u32,
    /// Bytes of `data` used.
    pub len: u16,
    /// The payload's length in the packet.
    pub plen: u16,
    /// Remote port (host order).
    pub rport: u16,
    /// 1 sent, 2 received.
    pub direction: u8,
    /// The IP protocol.
    pub protocol: u8,
    /// `NAME_*`.
    pub what: u8,
    /// Padding (zero).
    pub _pad: [u8; 3],
    /// Remote address (IPv4-mapped for IPv4).
    pub raddr: [u8; ADDR_LEN],
    /// The payload.
    pub data: [u8; NAME_SNAP],
}

const _: () = {
    assert!(size_of::<FlowKey>() == 32);
    assert!(size_of::<FlowCounters>() == 48);
    assert!(size_of::<UidUse>() == 48);
    assert!(size_of::<UidFreed>() == 16);
    assert!(size_of::<Limits>() == 8);
    assert!(size_of::<LostKey>() == 16);
    assert!(size_of::<Lost>() == 64);
    assert!(size_of::<WireKey>() == 32);
    assert!(size_of::<WireCounters>() == 72);
    assert!(size_of::<Owner>() == 24);
    assert!(size_of::<SkInfo>() == 216);
    assert!(size_of::<FinalFlow>() == 40);
    assert!(size_of::<FinalWire>() == 72);
    assert!(size_of::<SockClose>() == 536);
    assert!(size_of::<Stash>() == 48);
    assert!(size_of::<Tuple>() == 48);
    assert!(size_of::<EventHeader>() == 16);
    assert!(size_of::<FlowOpen>() == 144);
    assert!(size_of::<SockState>() == 80);
    assert!(size_of::<Inbound>() == 96);
    assert!(size_of::<Exec>() == 1384);
    assert!(size_of::<Fork>() == 64);
    assert!(size_of::<Exit>() == 80);
    assert!(size_of::<CgroupMkdir>() == 288);
    assert!(size_of::<Scope>() == 40);
    assert!(size_of::<CaptureCfg>() == 16);
    assert!(size_of::<Capture>() == 568);
    assert!(size_of::<Packet>() == 584);
    assert!(size_of::<Name>() == 2104);
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const HEADER: &str = include_str!("../include/netwho_abi.h");

    fn header_sizes() -> HashMap<String, usize> {
        HEADER
            .lines()
            .filter_map(|l| l.strip_prefix("NETWHO_ASSERT_SIZE("))
            .map(|rest| {
                let (name, n) = rest.split_once(',').unwrap();
                let n = n.trim().trim_end_matches(");").trim();
                (name.trim().to_string(), n.parse().unwrap())
            })
            .collect()
    }

    fn header_defines() -> HashMap<String, u64> {
        HEADER
            .lines()
            .filter_map(|l| l.strip_prefix("#define NETWHO_"))
            .filter_map(|rest| {
                let mut it = rest.split_whitespace();
                let name = it.next()?;
                let value = it.next()?;
                let v = if let Some(hex) = value.strip_prefix("0x") {
                    u64::from_str_radix(hex, 16).ok()?
                } else {
                    value.parse().ok()?
                };
                Some((name.to_string(), v))
            })
            .collect()
    }

    #[test]
    fn sizes_match_the_c_header() {
        let sizes = header_sizes();
        let rust = [
            ("netwho_flow_key", size_of::<FlowKey>()),
            ("netwho_flow_counters", size_of::<FlowCounters>()),
            ("netwho_uid_use", size_of::<UidUse>()),
            ("netwho_uid_freed", size_of::<UidFreed>()),
            ("netwho_limits", size_of::<Limits>()),
            ("netwho_lost_key", size_of::<LostKey>()),
            ("netwho_lost", size_of::<Lost>()),
            ("netwho_wire_key", size_of::<WireKey>()),
            ("netwho_wire_counters", size_of::<WireCounters>()),
            ("netwho_owner", size_of::<Owner>()),
            ("netwho_sk_info", size_of::<SkInfo>()),
            ("netwho_final_flow", size_of::<FinalFlow>()),
            ("netwho_final_wire", size_of::<FinalWire>()),
            ("netwho_sock_close", size_of::<SockClose>()),
            ("netwho_stash", size_of::<Stash>()),
            ("netwho_tuple", size_of::<Tuple>()),
            ("netwho_event_header", size_of::<EventHeader>()),
            ("netwho_flow_open", size_of::<FlowOpen>()),
            ("netwho_sock_state", size_of::<SockState>()),
            ("netwho_inbound", size_of::<Inbound>()),
            ("netwho_exec", size_of::<Exec>()),
            ("netwho_fork", size_of::<Fork>()),
            ("netwho_exit", size_of::<Exit>()),
            ("netwho_cgroup_mkdir", size_of::<CgroupMkdir>()),
            ("netwho_scope", size_of::<Scope>()),
            ("netwho_capture_cfg", size_of::<CaptureCfg>()),
            ("netwho_capture", size_of::<Capture>()),
            ("netwho_packet", size_of::<Packet>()),
            ("netwho_name", size_of::<Name>()),
        ];
        assert_eq!(
            sizes.len(),
            rust.len(),
            "a struct is asserted on one side only"
        );
        for (name, size) in rust {
            assert_eq!(sizes.get(name), Some(&size), "{name}");
        }
    }

    #[test]
    fn constants_match_the_c_header() {
        let d = header_defines();
        let rust: [(&str, u64); 88] = [
            ("ADDR_LEN", ADDR_LEN as u64),
            ("COMM_LEN", COMM_LEN as u64),
            ("PATH_LEN", PATH_LEN as u64),
            ("ARGS_LEN", ARGS_LEN as u64),
            ("EV_FLOW_OPEN", EV_FLOW_OPEN.into()),
            ("EV_SOCK_STATE", EV_SOCK_STATE.into()),
            ("EV_INBOUND", EV_INBOUND.into()),
            ("EV_EXEC", EV_EXEC.into()),
            ("EV_FORK", EV_FORK.into()),
            ("EV_EXIT", EV_EXIT.into()),
            ("EV_SOCK_CLOSE", EV_SOCK_CLOSE.into()),
            ("EV_CGROUP_MKDIR", EV_CGROUP_MKDIR.into()),
            ("EV_CAPTURE", EV_CAPTURE.into()),
            ("EV_PACKET", EV_PACKET.into()),
            ("EV_NAME", EV_NAME.into()),
            ("NAMES_DNS", NAMES_DNS.into()),
            ("NAMES_TLS", NAMES_TLS.into()),
            ("NAMES_QUIC", NAMES_QUIC.into()),
            ("NAME_SNAP", NAME_SNAP as u64),
            ("NAME_TCP_DNS", NAME_TCP_DNS.into()),
            ("NAME_DNS", NAME_DNS.into()),
            ("NAME_TLS", NAME_TLS.into()),
            ("NAME_QUIC", NAME_QUIC.into()),
            ("SK_NAMES_DONE", SK_NAMES_DONE.into()),
            ("SK_NAMES_ONE", SK_NAMES_ONE.into()),
            ("SK_APP_STARTING", SK_APP_STARTING.into()),
            ("CAPTURE_CHUNK", CAPTURE_CHUNK as u64),
            ("CAPTURE_CHUNKS", CAPTURE_CHUNKS as u64),
            ("SNAPLEN_MAX", SNAPLEN_MAX.into()),
            ("MAX_OWNERS", MAX_OWNERS as u64),
            ("ORIGIN_SEND", ORIGIN_SEND.into()),
            ("ORIGIN_RECV", ORIGIN_RECV.into()),
            ("ORIGIN_CONNECT", ORIGIN_CONNECT.into()),
            ("DIR_UNKNOWN", DIR_UNKNOWN.into()),
            ("DIR_OUTBOUND", DIR_OUTBOUND.into()),
            ("DIR_INBOUND", DIR_INBOUND.into()),
            ("STATE_RELEASED", STATE_RELEASED.into()),
            ("SK_HOOKED", SK_HOOKED.into()),
            ("SK_OUTBOUND", SK_OUTBOUND.into()),
            ("SK_INBOUND", SK_INBOUND.into()),
            ("SK_CLOSED", SK_CLOSED.into()),
            ("SK_FLOW_SEEN", SK_FLOW_SEEN.into()),
            ("SK_LAST_REMOTE", SK_LAST_REMOTE.into()),
            ("SK_OWNERS_FULL", SK_OWNERS_FULL.into()),
            ("SK_SCOPE_OUT", SK_SCOPE_OUT.into()),
            ("SK_SCOPED", SK_SCOPED.into()),
            ("SK_APP_BASE", SK_APP_BASE.into()),
            ("SK_RCV_BASE", SK_RCV_BASE.into()),
            ("SCOPE_UID", SCOPE_UID.into()),
            ("SCOPE_GID", SCOPE_GID.into()),
            ("SCOPE_CGROUP", SCOPE_CGROUP.into()),
            ("SCOPE_PID", SCOPE_PID.into()),
            ("SCOPE_PROTO", SCOPE_PROTO.into()),
            ("SCOPE_PORT", SCOPE_PORT.into()),
            ("SCOPE_TASK_MASK", SCOPE_TASK_MASK.into()),
            ("CGROUP_LEVELS", CGROUP_LEVELS.into()),
            ("NAME_LEN", NAME_LEN as u64),
            ("EXIT_BLKIO", EXIT_BLKIO.into()),
            ("STAT_RINGBUF_DROPS", STAT_RINGBUF_DROPS.into()),
            ("STAT_FLOWS_FULL", STAT_FLOWS_FULL.into()),
            ("STAT_BYTES_LOST", STAT_BYTES_LOST.into()),
            ("STAT_WIRE_FULL", STAT_WIRE_FULL.into()),
            ("STAT_REMOTE_UNKNOWN", STAT_REMOTE_UNKNOWN.into()),
            ("STAT_WIRE_NO_SOCK", STAT_WIRE_NO_SOCK.into()),
            ("STAT_STORAGE_FAIL", STAT_STORAGE_FAIL.into()),
            ("STAT_PAYLOAD_CALLS", STAT_PAYLOAD_CALLS.into()),
            ("STAT_PACKETS", STAT_PACKETS.into()),
            ("STAT_WIRE_AFTER_CLOSE", STAT_WIRE_AFTER_CLOSE.into()),
            ("STAT_WIRE_HANDSHAKE", STAT_WIRE_HANDSHAKE.into()),
            ("STAT_SCOPED_OUT", STAT_SCOPED_OUT.into()),
            ("STAT_CAPTURE_LOST", STAT_CAPTURE_LOST.into()),
            ("STAT_RB_DROP_OPEN", STAT_RB_DROP_OPEN.into()),
            ("STAT_RB_DROP_CLOSE", STAT_RB_DROP_CLOSE.into()),
            ("STAT_RB_DROP_PROC", STAT_RB_DROP_PROC.into()),
            ("STAT_UNTRACKED", STAT_UNTRACKED.into()),
            ("STAT_LOST_FULL", STAT_LOST_FULL.into()),
            ("STAT_WIRE_UNTRACKED", STAT_WIRE_UNTRACKED.into()),
            ("STAT_BYPASS_RECV", STAT_BYPASS_RECV.into()),
            ("STAT_BYPASS_UNDONE", STAT_BYPASS_UNDONE.into()),
            ("STAT_PACKETS_CAPTURED", STAT_PACKETS_CAPTURED.into()),
            ("STAT_PACKETS_LOST", STAT_PACKETS_LOST.into()),
            ("STAT_NAMES", STAT_NAMES.into()),
            ("STAT_NAMES_LOST", STAT_NAMES_LOST.into()),
            ("STAT_MAX", STAT_MAX.into()),
            ("FLOW_UNTRACKED_QUOTA", FLOW_UNTRACKED_QUOTA.into()),
            ("FLOW_UNTRACKED_FULL", FLOW_UNTRACKED_FULL.into()),
            ("LOST_CLOSE", LOST_CLOSE.into()),
            ("LOST_EXIT", LOST_EXIT.into()),
        ];
        for (name, value) in rust {
            assert_eq!(d.get(name), Some(&value), "NETWHO_{name}");
        }
        let in_rust: std::collections::HashSet<&str> = rust.iter().map(|(n, _)| *n).collect();
        let only_c: Vec<_> = d.keys().filter(|k| !in_rust.contains(k.as_str())).collect();
        assert!(only_c.is_empty(), "constants missing in abi.rs: {only_c:?}");
    }
}
