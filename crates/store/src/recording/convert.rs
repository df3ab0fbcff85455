//! The model's types to the format's and back. Codes a reader does not
//! know (a newer minor version) become the model's "unknown" values.

use super::format::{AncestorRec, Counters, FlowUsageRec, ProcId, ProcRec, ProtoRec, TrackRec};
use netwho_model::{
    Ancestor, Attribution, CloseReason, Direction, FileId, Flow, FlowUsage, MonoNs, Payload,
    ProcInfo, ProcKey, ProcSource, Proto, TcpState, Usage, UsageTrack, Wire,
};
use std::sync::Arc;

pub fn proc_id(k: ProcKey) -> ProcId {
    (k.tgid, k.start_ticks)
}

pub fn proc_key(p: ProcId) -> ProcKey {
    ProcKey::from_start_ticks(p.0, p.1)
}

pub fn proto_rec(p: Proto) -> ProtoRec {
    match p {
        Proto::Tcp => ProtoRec::Tcp,
        Proto::Udp => ProtoRec::Udp,
        Proto::UdpLite => ProtoRec::UdpLite,
        Proto::Icmp => ProtoRec::Icmp,
        Proto::Icmpv6 => ProtoRec::Icmpv6,
        Proto::Sctp => ProtoRec::Sctp,
        Proto::Mptcp => ProtoRec::Mptcp,
        Proto::Raw(n) => ProtoRec::Raw(n),
        Proto::Other(n) => ProtoRec::Other(n),
        Proto::Packet => ProtoRec::Packet,
        Proto::Unknown => ProtoRec::Unknown,
    }
}

pub fn proto(p: ProtoRec) -> Proto {
    match p {
        ProtoRec::Tcp => Proto::Tcp,
        ProtoRec::Udp => Proto::Udp,
        ProtoRec::UdpLite => Proto::UdpLite,
        ProtoRec::Icmp => Proto::Icmp,
        ProtoRec::Icmpv6 => Proto::Icmpv6,
        ProtoRec::Sctp => Proto::Sctp,
        ProtoRec::Mptcp => Proto::Mptcp,
        ProtoRec::Raw(n) => Proto::Raw(n),
        ProtoRec::Other(n) => Proto::Other(n),
        ProtoRec::Packet => Proto::Packet,
        ProtoRec::Unknown => Proto::Unknown,
    }
}

pub fn direction_code(d: Direction) -> u8 {
    match d {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
        Direction::Unknown => 2,
    }
}

pub fn direction(c: u8) -> Direction {
    match c {
        0 => Direction::Outbound,
        1 => Direction::Inbound,
        _ => Direction::Unknown,
    }
}

pub fn attribution_code(a: Attribution) -> u8 {
    match a {
        Attribution::Ebpf => 0,
        Attribution::SockDiag => 1,
        Attribution::Procfs => 2,
        Attribution::Conntrack => 3,
        Attribution::Unknown => 4,
    }
}

pub fn attribution(c: u8) -> Attribution {
    match c {
        0 => Attribution::Ebpf,
        1 => Attribution::SockDiag,
        2 => Attribution::Procfs,
        3 => Attribution::Conntrack,
        _ => Attribution::Unknown,
    }
}

pub fn reason_code(r: CloseReason) -> u8 {
    match r {
        CloseReason::SocketClosed => 0,
        CloseReason::ProcessExit => 1,
        CloseReason::Idle => 2,
    }
}

pub fn reason(c: u8) -> Option<CloseReason> {
    match c {
        0 => Some(CloseReason::SocketClosed),
        1 => Some(CloseReason::ProcessExit),
        2 => Some(CloseReason::Idle),
        _ => None,
    }
}

/// The kernel's number of a TCP state (include/net/tcp_states.h).
pub fn tcp_code(s: TcpState) -> u8 {
    match s {
        TcpState::Established => 1,
        TcpState::SynSent => 2,
        TcpState::SynRecv => 3,
        TcpState::FinWait1 => 4,
        TcpState::FinWait2 => 5,
        TcpState::TimeWait => 6,
        TcpState::Close => 7,
        TcpState::CloseWait => 8,
        TcpState::LastAck => 9,
        TcpState::Listen => 10,
        TcpState::Closing => 11,
        TcpState::NewSynRecv => 12,
    }
}

fn source_code(s: ProcSource) -> u8 {
    match s {
        ProcSource::Exec => 0,
        ProcSource::Fork => 1,
        ProcSource::Procfs => 2,
        ProcSource::Unknown => 3,
    }
}

fn source(c: u8) -> ProcSource {
    match c {
        0 => ProcSource::Exec,
        1 => ProcSource::Fork,
        2 => ProcSource::Procfs,
        _ => ProcSource::Unknown,
    }
}

pub fn counters(f: &Flow) -> Counters {
    (
        [f.payload.bytes_sent, f.payload.bytes_recv],
        [
            f.wire.bytes_sent,
            f.wire.bytes_recv,
            f.wire.packets_sent,
            f.wire.packets_recv,
        ],
    )
}

pub fn set_counters(f: &mut Flow, c: &Counters) {
    f.payload = Payload {
        bytes_sent: c.0[0],
        bytes_recv: c.0[1],
    };
    f.wire = Wire {
        bytes_sent: c.1[0],
        bytes_recv: c.1[1],
        packets_sent: c.1[2],
        packets_recv: c.1[3],
    };
}

pub fn proc_rec(id: u32, p: &ProcInfo) -> ProcRec {
    ProcRec {
        id,
        proc: proc_id(p.key),
        ppid: p.ppid,
        parent: p.parent.map(proc_id),
        parent_comm: p.parent_comm.clone(),
        comm: p.comm.clone(),
        exe: p.exe.clone(),
        cmdline: p.cmdline.clone(),
        uid: p.uid,
        gid: p.gid,
        cgroup_id: p.cgroup_id,
        source: source_code(p.source),
        parents: p
            .ancestors()
            .map(|a| AncestorRec {
                proc: proc_id(a.key),
                comm: a.comm.clone(),
                exe: a.exe.clone(),
            })
            .collect(),
        login_uid: p.login_uid,
        session: p.session,
        exe_file: p.exe_file.map(|f| (f.dev, f.ino, f.mtime_ns)),
    }
}

pub fn proc_info(r: ProcRec) -> ProcInfo {
    // rebuild the ancestor chain from the top down
    let mut up: Option<Arc<Ancestor>> = None;
    for a in r.parents.into_iter().rev() {
        up = Some(Arc::new(Ancestor {
            key: proc_key(a.proc),
            comm: a.comm,
            exe: a.exe,
            up,
        }));
    }
    ProcInfo {
        key: proc_key(r.proc),
        ppid: r.ppid,
        parent: r.parent.map(proc_key),
        parent_comm: r.parent_comm,
        comm: r.comm,
        exe: r.exe,
        cmdline: r.cmdline,
        uid: r.uid,
        gid: r.gid,
        cgroup_id: r.cgroup_id,
        source: source(r.source),
        parents: up,
        login_uid: r.login_uid,
        session: r.session,
        exe_file: r
            .exe_file
            .map(|(dev, ino, mtime_ns)| FileId { dev, ino, mtime_ns }),
    }
}

pub fn usage_rec(u: &FlowUsage) -> FlowUsageRec {
    FlowUsageRec {
        rss_bytes: u.rss_bytes,
        rss_peak_bytes: u.rss_peak_bytes,
        cpu_pct: u.cpu_pct,
        major_faults: u.major_faults,
        iowait_ns: u.iowait_ns,
    }
}

pub fn usage(u: &FlowUsageRec) -> FlowUsage {
    FlowUsage {
        rss_bytes: u.rss_bytes,
        rss_peak_bytes: u.rss_peak_bytes,
        cpu_pct: u.cpu_pct,
        major_faults: u.major_faults,
        iowait_ns: u.iowait_ns,
    }
}

pub fn track_rec(t: &UsageTrack) -> TrackRec {
    TrackRec {
        cpu_ns: t.last.cpu_ns,
        rss_bytes: t.last.rss_bytes,
        rss_peak_bytes: t.last.rss_peak_bytes,
        major_faults: t.last.major_faults,
        iowait_ns: t.last.iowait_ns,
        at_ns: t.at.0,
        prev: t.prev.map(|(t, c)| (t.0, c)),
        exited: t.exited,
    }
}

pub fn track(t: &TrackRec) -> UsageTrack {
    UsageTrack {
        last: Usage {
            cpu_ns: t.cpu_ns,
            rss_bytes: t.rss_bytes,
            rss_peak_bytes: t.rss_peak_bytes,
            major_faults: t.major_faults,
            iowait_ns: t.iowait_ns,
        },
        at: MonoNs(t.at_ns),
        prev: t.prev.map(|(t, c)| (MonoNs(t), c)),
        exited: t.exited,
    }
}

/// `rname_source` as a `NamedRec` holds it (0: absent).
pub fn rname_source_code(s: Option<netwho_model::names::RnameSource>) -> u8 {
    use netwho_model::names::RnameSource;
    match s {
        None => 0,
        Some(RnameSource::Dns) => 1,
        Some(RnameSource::Shared) => 2,
        Some(RnameSource::None) => 3,
    }
}

/// A `NamedRec` source code (an unknown one: absent).
pub fn rname_source(code: u8) -> Option<netwho_model::names::RnameSource> {
    use netwho_model::names::RnameSource;
    match code {
        1 => Some(RnameSource::Dns),
        2 => Some(RnameSource::Shared),
        3 => Some(RnameSource::None),
        _ => None,
    }
}

/// A name read from a recording, cut to what netwho ever writes
/// (`netwho_model::names::NAME_MAX` bytes, on a character boundary): a crafted
/// recording cannot make every output carry megabytes.
pub fn bounded_name(mut s: String) -> Arc<str> {
    if s.len() > netwho_model::names::NAME_MAX {
        let mut end = netwho_model::names::NAME_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s.into()
}
