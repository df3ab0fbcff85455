//! Rust mirror of `include/netwho_abi.h`.
//!
//! Every struct is `#[repr(C)]` plain old data: all bit patterns are valid,
//! so decoding a ring-buffer record is a length check plus an unaligned copy
//! (`bytemuck::try_pod_read_unaligned`), never a transmute into an enum.
//! Kinds and codes stay integers here; the sensor converts them with
//! `TryFrom` and rejects unknown values. The tests below parse the header and
//! check that every size and constant agrees with it.

use bytemuck::{Pod, Zeroable};

pub const ADDR_LEN: usize = 16;
pub const COMM_LEN: usize = 16;
pub const PATH_LEN: usize = 256;
pub const ARGS_LEN: usize = 1024;

pub const EV_FLOW_OPEN: u32 = 1;
pub const EV_SOCK_STATE: u32 = 2;
pub const EV_INBOUND: u32 = 3;
pub const EV_EXEC: u32 = 4;
pub const EV_FORK: u32 = 5;
pub const EV_EXIT: u32 = 6;
pub const EV_SOCK_CLOSE: u32 = 7;
pub const EV_CGROUP_MKDIR: u32 = 8;
pub const EV_CAPTURE: u32 = 9;

pub const CAPTURE_CHUNK: usize = 512;
pub const CAPTURE_CHUNKS: usize = 32;
pub const SNAPLEN_MAX: u32 = 16384;

pub const MAX_OWNERS: usize = 4;

pub const ORIGIN_SEND: u8 = 1;
pub const ORIGIN_RECV: u8 = 2;
pub const ORIGIN_CONNECT: u8 = 3;

pub const DIR_UNKNOWN: u8 = 0;
pub const DIR_OUTBOUND: u8 = 1;
pub const DIR_INBOUND: u8 = 2;

pub const STATE_RELEASED: u8 = 255;

pub const SK_HOOKED: u32 = 0x1;
pub const SK_OUTBOUND: u32 = 0x2;
pub const SK_INBOUND: u32 = 0x4;
pub const SK_CLOSED: u32 = 0x8;
pub const SK_FLOW_SEEN: u32 = 0x10;
pub const SK_LAST_REMOTE: u32 = 0x20;
pub const SK_OWNERS_FULL: u32 = 0x40;
pub const SK_SCOPE_OUT: u32 = 0x80;
pub const SK_SCOPED: u32 = 0x100;
pub const SK_APP_BASE: u32 = 0x200;

pub const SCOPE_UID: u32 = 0x1;
pub const SCOPE_GID: u32 = 0x2;
pub const SCOPE_CGROUP: u32 = 0x4;
pub const SCOPE_PID: u32 = 0x8;
pub const SCOPE_PROTO: u32 = 0x10;
pub const SCOPE_PORT: u32 = 0x20;
pub const SCOPE_TASK_MASK: u32 = 0xf;
pub const CGROUP_LEVELS: u32 = 16;
pub const NAME_LEN: usize = 128;

pub const EXIT_BLKIO: u32 = 0x1;

pub const STAT_RINGBUF_DROPS: u32 = 0;
pub const STAT_FLOWS_FULL: u32 = 1;
pub const STAT_BYTES_LOST: u32 = 2;
pub const STAT_WIRE_FULL: u32 = 3;
pub const STAT_REMOTE_UNKNOWN: u32 = 4;
pub const STAT_WIRE_NO_SOCK: u32 = 5;
pub const STAT_STORAGE_FAIL: u32 = 6;
pub const STAT_PAYLOAD_CALLS: u32 = 7;
pub const STAT_PACKETS: u32 = 8;
pub const STAT_WIRE_AFTER_CLOSE: u32 = 9;
pub const STAT_WIRE_HANDSHAKE: u32 = 10;
pub const STAT_SCOPED_OUT: u32 = 11;
pub const STAT_CAPTURE_LOST: u32 = 12;
pub const STAT_RB_DROP_OPEN: u32 = 13;
pub const STAT_RB_DROP_CLOSE: u32 = 14;
pub const STAT_RB_DROP_PROC: u32 = 15;
pub const STAT_UNTRACKED: u32 = 16;
pub const STAT_LOST_FULL: u32 = 17;
pub const STAT_WIRE_UNTRACKED: u32 = 18;
pub const STAT_BYPASS_RECV: u32 = 19;
pub const STAT_BYPASS_UNDONE: u32 = 20;
pub const STAT_MAX: u32 = 24;

pub const FLOW_UNTRACKED_QUOTA: u8 = 0x1;
pub const FLOW_UNTRACKED_FULL: u8 = 0x2;

pub const LOST_CLOSE: u32 = 1;
pub const LOST_EXIT: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct FlowKey {
    pub cookie: u64,
    pub tgid: u32,
    pub rport: u16,
    pub _pad: u16,
    pub raddr: [u8; ADDR_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FlowCounters {
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub sends: u64,
    pub recvs: u64,
    pub created_ns: u64,
    pub uid: u32,
    pub protocol: u16,
    pub sock_type: u8,
    pub packet: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct UidUse {
    pub made: u64,
    pub freed: u64,
    pub refused: u64,
    pub wire_made: u64,
    pub wire_freed: u64,
    pub wire_refused: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct UidFreed {
    pub flows: u64,
    pub wire: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Limits {
    pub flows_per_uid: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct LostKey {
    pub id: u64,
    pub kind: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Lost {
    pub ts_ns: u64,
    pub start_ns: u64,
    pub sent: u64,
    pub recv: u64,
    pub tgid: u32,
    pub protocol: u16,
    pub sock_type: u8,
    pub _pad: u8,
    pub raddr: [u8; ADDR_LEN],
    pub rport: u16,
    pub many: u8,
    pub known: u8,
    pub _pad2: [u8; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct WireKey {
    pub cookie: u64,
    pub rport: u16,
    pub _pad: [u16; 3],
    pub raddr: [u8; ADDR_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct WireCounters {
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub created_ns: u64,
    pub laddr: [u8; ADDR_LEN],
    pub lport: u16,
    pub _pad: u16,
    pub cap_sent: u32,
    pub cap_recv: u32,
    pub uid: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Owner {
    pub tgid: u32,
    pub rport: u16,
    pub _pad: u16,
    pub raddr: [u8; ADDR_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SkInfo {
    pub owner_tgid: u32,
    pub owner_uid: u32,
    pub owner_gid: u32,
    pub flags: u32,
    pub owner_cgroup: u64,
    pub created_ns: u64,
    pub last_raddr: [u8; ADDR_LEN],
    pub last_rport: u16,
    pub _pad: [u16; 3],
    pub owners: [Owner; MAX_OWNERS],
    pub ovf_sent: u64,
    pub ovf_recv: u64,
    pub ovf_tgid: u32,
    /// TCP: the last process whose read was counted (bypass bytes go to it).
    pub reader_tgid: u32,
    pub ovf_raddr: [u8; ADDR_LEN],
    pub ovf_rport: u16,
    pub ovf_many: u8,
    pub _pad3: [u8; 5],
    pub consumed: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FinalFlow {
    pub tgid: u32,
    pub rport: u16,
    pub found: u16,
    pub raddr: [u8; ADDR_LEN],
    pub bytes_sent: u64,
    pub bytes_recv: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FinalWire {
    pub rport: u16,
    pub lport: u16,
    pub found: u16,
    pub _pad: u16,
    pub raddr: [u8; ADDR_LEN],
    pub laddr: [u8; ADDR_LEN],
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SockClose {
    pub hdr: EventHeader,
    pub cookie: u64,
    pub old_state: u8,
    pub new_state: u8,
    pub overflow: u8,
    pub sock_type: u8,
    pub protocol: u16,
    pub _pad: [u8; 2],
    pub flows: [FinalFlow; MAX_OWNERS],
    pub wires: [FinalWire; MAX_OWNERS],
    pub ovf_sent: u64,
    pub ovf_recv: u64,
    pub ovf_tgid: u32,
    /// TCP: the last process whose read was counted (bypass bytes go to it).
    pub reader_tgid: u32,
    pub ovf_raddr: [u8; ADDR_LEN],
    pub ovf_rport: u16,
    pub ovf_many: u8,
    pub ovf_known: u8,
    pub _pad3: [u8; 4],
    /// TCP: bytes the application took past recv() that no flow was
    /// credited with yet.
    pub recv_left: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Stash {
    pub cookie: u64,
    pub raddr: [u8; ADDR_LEN],
    pub laddr: [u8; ADDR_LEN],
    pub rport: u16,
    pub lport: u16,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Tuple {
    pub laddr: [u8; ADDR_LEN],
    pub raddr: [u8; ADDR_LEN],
    pub lport: u16,
    pub rport: u16,
    pub family: u16,
    pub protocol: u16,
    pub sock_type: u16,
    pub state: u8,
    pub _pad: u8,
    pub netns: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct EventHeader {
    pub kind: u32,
    pub _pad: u32,
    pub ts_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FlowOpen {
    pub hdr: EventHeader,
    pub key: FlowKey,
    pub tuple: Tuple,
    pub proc_start_ns: u64,
    pub cgroup_id: u64,
    pub uid: u32,
    pub gid: u32,
    pub origin: u8,
    pub direction: u8,
    pub sk_flags: u8,
    pub flow_flags: u8,
    pub _pad: [u8; 4],
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SockState {
    pub hdr: EventHeader,
    pub cookie: u64,
    pub tuple: Tuple,
    pub old_state: u8,
    pub new_state: u8,
    pub _pad: [u8; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Inbound {
    pub hdr: EventHeader,
    pub cookie: u64,
    pub tuple: Tuple,
    pub owner_tgid: u32,
    pub owner_uid: u32,
    pub owner_gid: u32,
    pub _pad: u32,
    pub owner_cgroup: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Exec {
    pub hdr: EventHeader,
    pub tgid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub start_ns: u64,
    pub parent_start_ns: u64,
    pub cgroup_id: u64,
    pub filename_len: u32,
    pub args_len: u32,
    pub args_truncated: u32,
    pub login_uid: u32,
    pub session: u32,
    pub _pad: u32,
    pub exe_ino: u64,
    pub comm: [u8; COMM_LEN],
    pub filename: [u8; PATH_LEN],
    pub args: [u8; ARGS_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Fork {
    pub hdr: EventHeader,
    pub parent_tgid: u32,
    pub child_tgid: u32,
    pub parent_start_ns: u64,
    pub child_start_ns: u64,
    pub uid: u32,
    pub gid: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Exit {
    pub hdr: EventHeader,
    pub tgid: u32,
    pub exit_code: u32,
    pub start_ns: u64,
    pub cpu_ns: u64,
    pub maj_flt: u64,
    pub rss_pages: u64,
    pub peak_pages: u64,
    pub blkio_ns: u64,
    pub flags: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct CgroupMkdir {
    pub hdr: EventHeader,
    pub id: u64,
    pub level: u32,
    pub path_len: u32,
    pub path: [u8; PATH_LEN],
}

/// `nw_scope[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Scope {
    pub active: u32,
    pub follow: u32,
    pub protos: [u64; 4],
}

/// `nw_capture[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CaptureCfg {
    pub snaplen: u32,
    pub _pad: u32,
}

/// Payload bytes of one (socket, remote) and direction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Capture {
    pub hdr: EventHeader,
    pub cookie: u64,
    pub offset: u32,
    pub len: u16,
    pub rport: u16,
    pub raddr: [u8; ADDR_LEN],
    /// 1 sent, 2 received.
    pub direction: u8,
    pub protocol: u8,
    pub _pad: [u8; 6],
    pub data: [u8; CAPTURE_CHUNK],
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
    assert!(size_of::<SkInfo>() == 208);
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
    assert!(size_of::<CaptureCfg>() == 8);
    assert!(size_of::<Capture>() == 568);
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
        let rust: [(&str, u64); 70] = [
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
