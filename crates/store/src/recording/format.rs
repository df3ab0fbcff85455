//! The recording's bytes: file header, frames, entries
//! (`docs/specs/recording.md` is the normative description).
//!
//! Everything here is a plain serde type encoded with postcard (varints,
//! no field names). The model's types are converted at the edge
//! ([`super::encode`], [`super::decode`]) so that the format changes only
//! on purpose: a new entry kind or field is a minor version, anything a
//! reader of the same major version could misread is a new major version.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The first eight bytes of every recording.
pub const FILE_MAGIC: [u8; 8] = *b"NETWHO\x00R";
/// Readers accept recordings of this major version, any minor version.
pub const MAJOR: u16 = 1;
/// 1.1 added `Capture` entries (payload bytes, `record -s`); 1.2 added
/// `Completeness` (flows whose bytes the kernel counted per socket); 1.3
/// added `Named` (a flow's remote as its process knew it).
pub const MINOR: u16 = 3;
/// The first four bytes of every frame; a reader that meets a corrupt
/// frame looks for the next one by this.
pub const FRAME_MAGIC: [u8; 4] = *b"NWF1";
/// Frame header: magic, compressed length, raw length, CRC-32 of the
/// compressed bytes (all little-endian u32).
pub const FRAME_HEADER_LEN: usize = 16;
/// A frame holds at most this much before compression (writers seal well
/// before; readers refuse more, so a corrupt length cannot make them
/// allocate gigabytes).
pub const MAX_FRAME_RAW: usize = 64 << 20;
/// A file header's encoded size is at most this.
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// What the whole recording says about itself (after the magic and the
/// version).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Wall time the file was started (Unix ns).
    pub created_unix_ns: i128,
    /// This host's name.
    pub host: String,
    /// The recorded machine's boot id (flow ids are unique with it).
    pub boot_id: [u8; 16],
    /// The netwho that wrote it.
    pub netwho_version: String,
    /// How often counters were read: the time resolution of updates.
    pub resolution_ns: u64,
    /// Bytes of payload kept per flow and direction (0: none).
    pub snaplen: u32,
    /// The filter the recording was made with, and its kernel scope.
    pub filter: Option<String>,
    /// The kernel part of the filter.
    pub scope: Option<String>,
    /// Unix time = boot time + this, when the file was started (later
    /// changes come as `Clock` entries).
    pub boot_to_unix_ns: i128,
    /// The host's own addresses when the file was started (`fd.is_local`).
    pub local_addrs: Vec<IpAddr>,
    /// 0 for the first file of a recording, then one more per rotation.
    pub segment: u32,
    /// How the recorder attributed traffic (`ebpf`, ...).
    pub attribution: String,
}

impl Header {
    /// The wall clock when the file was started.
    pub fn clock(&self) -> netwho_model::time::WallClock {
        netwho_model::time::WallClock {
            boot_to_unix_ns: self.boot_to_unix_ns,
        }
    }
}

/// One entry of a frame. Entries are length-prefixed in the frame, so a
/// reader skips (and counts) a kind it does not know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// A process as flows of this frame refer to it (defined once per
    /// frame, so that every frame can be read on its own).
    Proc(ProcRec),
    /// User, group and cgroup names (once per frame).
    Names(NamesRec),
    /// An executable's SHA-256 (once per frame).
    Sha {
        /// Its id in the recording.
        id: u32,
        /// The hash (hex).
        hex: String,
    },
    /// A flow opened (`announced`: the live run showed it as opened; a
    /// flow first seen at an update, because a filter passed only that,
    /// is defined silently).
    Open(OpenRec),
    /// Counters of an open flow changed (cumulative values).
    Update(CountRec),
    /// A flow's totals when the recording ended with it still open.
    Final(CountRec),
    /// A flow closed, with its final counters.
    Close(CountRec),
    /// A status record, as JSON (the flow-record contract's status type).
    Status {
        /// Boot time, as `OpenRec::dt_ns` is.
        dt_ns: i64,
        /// The record (JSON).
        json: String,
    },
    /// The wall clock moved relative to boot time.
    Clock {
        /// Unix ns minus boot ns.
        boot_to_unix_ns: i128,
    },
    /// The recording ended cleanly here.
    End {
        /// Boot time, as `OpenRec::dt_ns` is.
        dt_ns: i64,
    },
    /// Payload bytes of an open flow (since 1.1; only with a snap length).
    Capture(CaptureRec),
    /// Whether a flow's payload is its own from here on (since 1.2;
    /// written when it changes: a flow starts complete).
    Completeness {
        /// The flow (its id in the recording).
        flow: u64,
        /// Whether its bytes are all its own.
        complete: bool,
    },
    /// A flow's remote as its process knew it (since 1.3): written just
    /// before the flow's `Open` (its number not defined yet: the `Open`
    /// takes it), and again before any later entry of the flow when it
    /// changes (a ClientHello read after the open).
    Named(NamedRec),
}

/// `rname`, `rname_source`, `sni`, `alpn` of one flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRec {
    /// The flow (its id in the recording).
    pub flow: u64,
    /// The name its process resolved.
    pub rname: Option<String>,
    /// 1 dns, 2 shared, 3 none (0: absent).
    pub source: u8,
    /// The TLS/QUIC server name.
    pub sni: Option<String>,
    /// The ALPN protocols.
    pub alpn: Option<String>,
}

/// A run of payload bytes of one flow and direction at its stream offset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRec {
    /// The flow (its id in the recording).
    pub flow: u64,
    /// false: sent by the flow's process; true: received.
    pub recv: bool,
    /// Where in the direction's stream it starts.
    pub offset: u32,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A process identity: (tgid, start time in USER_HZ ticks since boot).
pub type ProcId = (u32, u64);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// One ancestor of a process.
pub struct AncestorRec {
    /// The ancestor.
    pub proc: ProcId,
    /// Command name.
    pub comm: String,
    /// The executable.
    pub exe: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// A process, once per frame where a flow needs it.
pub struct ProcRec {
    /// Number of this definition within the frame.
    pub id: u32,
    /// The process.
    pub proc: ProcId,
    /// The parent's pid.
    pub ppid: u32,
    /// The parent.
    pub parent: Option<ProcId>,
    /// The parent's command name.
    pub parent_comm: String,
    /// Command name.
    pub comm: String,
    /// The executable.
    pub exe: String,
    /// argv.
    pub cmdline: Vec<String>,
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Cgroup id.
    pub cgroup_id: u64,
    /// 0 exec, 1 fork, 2 procfs, 3 unknown.
    pub source: u8,
    /// Parent first.
    pub parents: Vec<AncestorRec>,
    /// Audit login uid, when set.
    pub login_uid: Option<u32>,
    /// Audit session id, when set.
    pub session: Option<u32>,
    /// (device, inode, mtime ns) of the executable.
    pub exe_file: Option<(u64, u64, i64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// A flow's names, once per frame where a flow needs them.
pub struct NamesRec {
    /// Its id in the recording.
    pub id: u32,
    /// The user's name.
    pub user: String,
    /// The group's name.
    pub group: String,
    /// The cgroup v2 path.
    pub cgroup: String,
    /// The systemd unit.
    pub unit: String,
    /// The container id.
    pub container_id: String,
}

/// A flow's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtoRec {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// UDP-Lite.
    UdpLite,
    /// ICMP.
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// SCTP.
    Sctp,
    /// MPTCP.
    Mptcp,
    /// A raw IP socket of this protocol.
    Raw(u16),
    /// Another protocol.
    Other(u16),
    /// `AF_PACKET`.
    Packet,
    /// Not known.
    Unknown,
}

/// Resource figures as a flow's records show them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowUsageRec {
    /// Resident memory.
    pub rss_bytes: u64,
    /// Peak resident memory.
    pub rss_peak_bytes: u64,
    /// Average CPU % over the flow's life.
    pub cpu_pct: Option<f64>,
    /// Major page faults.
    pub major_faults: u64,
    /// Time blocked on block I/O.
    pub iowait_ns: Option<u64>,
}

/// A process's latest resource samples (what `top` shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRec {
    /// CPU time so far.
    pub cpu_ns: u64,
    /// Resident memory.
    pub rss_bytes: u64,
    /// Peak resident memory.
    pub rss_peak_bytes: u64,
    /// Major page faults.
    pub major_faults: u64,
    /// Time blocked on block I/O.
    pub iowait_ns: Option<u64>,
    /// Boot time of the sample.
    pub at_ns: u64,
    /// The sample before: (boot time, CPU ns).
    pub prev: Option<(u64, u64)>,
    /// The process has exited.
    pub exited: bool,
}

/// Payload and wire counters: bytes sent, bytes received; wire bytes sent,
/// received, packets sent, received.
pub type Counters = ([u64; 2], [u64; 4]);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// A flow's open (or its first appearance in a segment).
pub struct OpenRec {
    /// The recording's number for this flow (its later entries use it).
    pub flow: u64,
    /// Boot time of the entry, as the difference to the previous entry's
    /// time in this frame (the first: to 0).
    pub dt_ns: i64,
    /// Its open was emitted.
    pub announced: bool,
    /// Its flow id (stable, unique across boots).
    pub flow_id: u64,
    /// The socket's cookie.
    pub cookie: u64,
    /// `Proc` and `Names` definitions of this frame.
    pub proc: u32,
    /// Its names (their id in the recording).
    pub names: u32,
    /// Its executable's hash (its id in the recording).
    pub sha: Option<u32>,
    /// The protocol.
    pub proto: ProtoRec,
    /// This host's end.
    pub local: (IpAddr, u16),
    /// The other end.
    pub remote: (IpAddr, u16),
    /// An `AF_PACKET` socket.
    pub packet: bool,
    /// The network namespace (inode).
    pub netns: u32,
    /// 0 outbound, 1 inbound, 2 unknown.
    pub direction: u8,
    /// The kernel's TCP state number.
    pub tcp_state: Option<u8>,
    /// Boot time the flow opened.
    pub opened_ns: u64,
    /// Command name.
    pub comm: String,
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Cgroup id.
    pub cgroup_id: u64,
    /// 0 ebpf, 1 sock_diag, 2 procfs, 3 conntrack, 4 unknown.
    pub attribution: u8,
    /// Its bytes and packets.
    pub counters: Counters,
    /// The process's (sample time, CPU ns) when the flow opened.
    pub cpu_base: Option<(u64, u64)>,
    /// The process's resource samples.
    pub track: Option<TrackRec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// A flow's counters changed (or it closed).
pub struct CountRec {
    /// The flow (its id in the recording).
    pub flow: u64,
    /// Boot time, as `OpenRec::dt_ns` is.
    pub dt_ns: i64,
    /// Its bytes and packets.
    pub counters: Counters,
    /// TCP: its state.
    pub tcp_state: Option<u8>,
    /// Close: boot time the flow closed, and why (0 socket closed, 1
    /// process exit, 2 idle).
    pub closed: Option<(u64, Option<u8>)>,
    /// The executable's hash, when it became known after the open.
    pub sha: Option<u32>,
    /// The process's resource figures.
    pub usage: Option<FlowUsageRec>,
    /// The process's resource samples.
    pub track: Option<TrackRec>,
}
