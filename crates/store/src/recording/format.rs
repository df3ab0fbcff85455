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
/// `Completeness` (flows whose bytes the kernel counted per socket).
pub const MINOR: u16 = 2;
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
    pub host: String,
    /// The recorded machine's boot id (flow ids are unique with it).
    pub boot_id: [u8; 16],
    pub netwho_version: String,
    /// How often counters were read: the time resolution of updates.
    pub resolution_ns: u64,
    /// Bytes of payload kept per flow and direction (0: none).
    pub snaplen: u32,
    /// The filter the recording was made with, and its kernel scope.
    pub filter: Option<String>,
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
    Sha { id: u32, hex: String },
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
    Status { dt_ns: i64, json: String },
    /// The wall clock moved relative to boot time.
    Clock { boot_to_unix_ns: i128 },
    /// The recording ended cleanly here.
    End { dt_ns: i64 },
    /// Payload bytes of an open flow (since 1.1; only with a snap length).
    Capture(CaptureRec),
    /// Whether a flow's payload is its own from here on (since 1.2;
    /// written when it changes: a flow starts complete).
    Completeness { flow: u64, complete: bool },
}

/// A run of payload bytes of one flow and direction at its stream offset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRec {
    pub flow: u64,
    /// false: sent by the flow's process; true: received.
    pub recv: bool,
    pub offset: u32,
    pub data: Vec<u8>,
}

/// A process identity: (tgid, start time in USER_HZ ticks since boot).
pub type ProcId = (u32, u64);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AncestorRec {
    pub proc: ProcId,
    pub comm: String,
    pub exe: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRec {
    /// Number of this definition within the frame.
    pub id: u32,
    pub proc: ProcId,
    pub ppid: u32,
    pub parent: Option<ProcId>,
    pub parent_comm: String,
    pub comm: String,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub cgroup_id: u64,
    /// 0 exec, 1 fork, 2 procfs, 3 unknown.
    pub source: u8,
    /// Parent first.
    pub parents: Vec<AncestorRec>,
    pub login_uid: Option<u32>,
    pub session: Option<u32>,
    /// (device, inode, mtime ns) of the executable.
    pub exe_file: Option<(u64, u64, i64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamesRec {
    pub id: u32,
    pub user: String,
    pub group: String,
    pub cgroup: String,
    pub unit: String,
    pub container_id: String,
}

/// A flow's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtoRec {
    Tcp,
    Udp,
    UdpLite,
    Icmp,
    Icmpv6,
    Sctp,
    Mptcp,
    Raw(u16),
    Other(u16),
    Packet,
    Unknown,
}

/// Resource figures as a flow's records show them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowUsageRec {
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
    pub cpu_pct: Option<f64>,
    pub major_faults: u64,
    pub iowait_ns: Option<u64>,
}

/// A process's latest resource samples (what `top` shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRec {
    pub cpu_ns: u64,
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
    pub major_faults: u64,
    pub iowait_ns: Option<u64>,
    /// Boot time of the sample.
    pub at_ns: u64,
    /// The sample before: (boot time, CPU ns).
    pub prev: Option<(u64, u64)>,
    pub exited: bool,
}

/// Payload and wire counters: bytes sent, bytes received; wire bytes sent,
/// received, packets sent, received.
pub type Counters = ([u64; 2], [u64; 4]);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenRec {
    /// The recording's number for this flow (its later entries use it).
    pub flow: u64,
    /// Boot time of the entry, as the difference to the previous entry's
    /// time in this frame (the first: to 0).
    pub dt_ns: i64,
    pub announced: bool,
    pub flow_id: u64,
    pub cookie: u64,
    /// `Proc` and `Names` definitions of this frame.
    pub proc: u32,
    pub names: u32,
    pub sha: Option<u32>,
    pub proto: ProtoRec,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub packet: bool,
    pub netns: u32,
    /// 0 outbound, 1 inbound, 2 unknown.
    pub direction: u8,
    /// The kernel's TCP state number.
    pub tcp_state: Option<u8>,
    /// Boot time the flow opened.
    pub opened_ns: u64,
    pub comm: String,
    pub uid: u32,
    pub gid: u32,
    pub cgroup_id: u64,
    /// 0 ebpf, 1 sock_diag, 2 procfs, 3 conntrack, 4 unknown.
    pub attribution: u8,
    pub counters: Counters,
    pub cpu_base: Option<(u64, u64)>,
    pub track: Option<TrackRec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountRec {
    pub flow: u64,
    pub dt_ns: i64,
    pub counters: Counters,
    pub tcp_state: Option<u8>,
    /// Close: boot time the flow closed, and why (0 socket closed, 1
    /// process exit, 2 idle).
    pub closed: Option<(u64, Option<u8>)>,
    /// The executable's hash, when it became known after the open.
    pub sha: Option<u32>,
    pub usage: Option<FlowUsageRec>,
    pub track: Option<TrackRec>,
}
