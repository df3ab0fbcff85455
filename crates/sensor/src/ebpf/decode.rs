//! Ring-buffer records to model events. Pure: bytes in, values out.
//!
//! A record is checked for its length against its kind before it is copied
//! out (`bytemuck::try_pod_read_unaligned`); kinds and codes are converted
//! with `TryFrom`, never transmuted. Anything malformed is an error the
//! caller counts.

use netwho_bpf::abi;
use netwho_model::{
    Attribution, CaptureDir, CapturePiece, CounterHint, Direction, Endpoint, FlowOpen, Inbound,
    KernelKey, MonoNs, ProcExec, ProcFork, ProcKey, Proto, SensorEvent, SockCookie, SockState,
    SocketTuple, TcpState, Usage, WireKey,
};
use thiserror::Error;

const AF_PACKET: u16 = 17;

#[derive(Debug, Error, PartialEq, Eq)]
/// A ring record that does not decode (counted in `drops.decode_errors`).
pub enum DecodeError {
    #[error("ring record of {len} bytes is too short for its header")]
    /// A record shorter than its header.
    Short {
        /// Its length.
        len: usize,
    },
    #[error("ring record of kind {kind} has {len} bytes, expected {expected}")]
    /// A record whose length is not its kind's.
    Length {
        /// Its kind.
        kind: u32,
        /// Its length.
        len: usize,
        /// Its kind's length.
        expected: usize,
    },
    #[error("unknown ring record kind {kind}")]
    /// A record of a kind this netwho does not know.
    Kind {
        /// The kind.
        kind: u32,
    },
}

/// A ring-buffer record, decoded into its ABI struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A flow entry was made.
    FlowOpen(abi::FlowOpen),
    /// A TCP socket changed state.
    SockState(abi::SockState),
    /// An inbound connection completed its handshake.
    Inbound(abi::Inbound),
    /// A socket closed, with its flows' final counters.
    SockClose(Box<abi::SockClose>),
    /// A process called execve().
    Exec(Box<abi::Exec>),
    /// A process forked.
    Fork(abi::Fork),
    /// A process's last thread exited.
    Exit(abi::Exit),
    /// A cgroup was made.
    CgroupMkdir(Box<abi::CgroupMkdir>),
    /// Payload bytes kept for `record -s`.
    Capture(Box<abi::Capture>),
    /// A chunk of a packet, for `netwho pcap`.
    Packet(Box<abi::Packet>),
    /// A packet's payload read for names.
    Name(Box<abi::Name>),
}

fn read<T: bytemuck::Pod>(kind: u32, bytes: &[u8]) -> Result<T, DecodeError> {
    // the kernel rounds records up to 8 bytes; extra bytes are padding
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Length {
            kind,
            len: bytes.len(),
            expected: size_of::<T>(),
        });
    }
    bytemuck::try_pod_read_unaligned(&bytes[..size_of::<T>()]).map_err(|_| DecodeError::Length {
        kind,
        len: bytes.len(),
        expected: size_of::<T>(),
    })
}

/// One ring record from its bytes (length checked against its kind).
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let hdr: abi::EventHeader = bytes
        .get(..size_of::<abi::EventHeader>())
        .and_then(|b| bytemuck::try_pod_read_unaligned(b).ok())
        .ok_or(DecodeError::Short { len: bytes.len() })?;
    Ok(match hdr.kind {
        abi::EV_FLOW_OPEN => Record::FlowOpen(read(hdr.kind, bytes)?),
        abi::EV_SOCK_STATE => Record::SockState(read(hdr.kind, bytes)?),
        abi::EV_INBOUND => Record::Inbound(read(hdr.kind, bytes)?),
        abi::EV_SOCK_CLOSE => Record::SockClose(Box::new(read(hdr.kind, bytes)?)),
        abi::EV_EXEC => Record::Exec(Box::new(read(hdr.kind, bytes)?)),
        abi::EV_FORK => Record::Fork(read(hdr.kind, bytes)?),
        abi::EV_EXIT => Record::Exit(read(hdr.kind, bytes)?),
        abi::EV_CGROUP_MKDIR => Record::CgroupMkdir(Box::new(read(hdr.kind, bytes)?)),
        abi::EV_CAPTURE => Record::Capture(Box::new(read(hdr.kind, bytes)?)),
        abi::EV_PACKET => Record::Packet(Box::new(read(hdr.kind, bytes)?)),
        abi::EV_NAME => Record::Name(Box::new(read(hdr.kind, bytes)?)),
        kind => return Err(DecodeError::Kind { kind }),
    })
}

/// A C string in a fixed buffer: up to the first NUL, lossy UTF-8.
pub fn c_string(buf: &[u8]) -> String {
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// argv as the kernel lays it out: NUL-separated, last one NUL-terminated
/// (or cut short).
pub fn split_args(buf: &[u8]) -> Vec<String> {
    let buf = buf.strip_suffix(&[0]).unwrap_or(buf);
    if buf.is_empty() {
        return Vec::new();
    }
    buf.split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// A socket's addresses from their kernel form (IPv4-mapped addresses as IPv4).
pub fn tuple(t: &abi::Tuple) -> SocketTuple {
    let proto = Proto::from_socket(t.family, t.sock_type, t.protocol);
    let packet = t.family == AF_PACKET;
    let (local, remote) = if packet {
        (Endpoint::unspecified(), Endpoint::unspecified())
    } else {
        (
            Endpoint::from_kernel(t.laddr, t.lport),
            Endpoint::from_kernel(t.raddr, t.rport),
        )
    };
    SocketTuple {
        proto,
        local,
        remote,
        tcp_state: if proto.is_stream() {
            TcpState::try_from(t.state).ok()
        } else {
            None
        },
        netns: t.netns,
        packet,
    }
}

/// Payload bytes of a (socket, remote); `None` for a direction code the
/// kernel program never writes.
pub fn captured(c: &abi::Capture) -> Option<SensorEvent> {
    let dir = match c.direction {
        1 => CaptureDir::Sent,
        2 => CaptureDir::Recv,
        _ => return None,
    };
    let len = usize::from(c.len).min(c.data.len());
    Some(SensorEvent::Captured {
        key: WireKey {
            cookie: SockCookie(c.cookie),
            remote: Endpoint::from_kernel(c.raddr, c.rport),
        },
        piece: CapturePiece {
            dir,
            offset: c.offset,
            data: c.data[..len].to_vec(),
        },
    })
}

/// A packet's payload read for names; `None` for a kind or direction the
/// kernel program never writes.
pub fn name(n: &abi::Name) -> Option<SensorEvent> {
    use netwho_model::names::{NameKind, NamePiece};
    let kind = match (n.what, n.direction) {
        (abi::NAME_DNS, 2) => NameKind::Dns,
        (abi::NAME_TLS, 1) => NameKind::Tls,
        (abi::NAME_QUIC, 1) => NameKind::Quic,
        _ => return None,
    };
    let len = usize::from(n.len).min(n.data.len());
    Some(SensorEvent::Name(Box::new(NamePiece {
        key: WireKey {
            cookie: SockCookie(n.cookie),
            remote: Endpoint::from_kernel(n.raddr, n.rport),
        },
        at: MonoNs(n.hdr.ts_ns),
        kind,
        offset: n.offset,
        tcp: n.protocol == 6,
        cut: usize::from(n.plen) > len,
        data: n.data[..len].to_vec(),
    })))
}

/// A chunk of a captured packet; `None` for a direction code the kernel
/// program never writes, or a chunk that does not fit its packet.
pub fn packet(p: &abi::Packet) -> Option<SensorEvent> {
    let dir = match p.direction {
        1 => CaptureDir::Sent,
        2 => CaptureDir::Recv,
        _ => return None,
    };
    let n = usize::from(p.n).min(p.data.len());
    if usize::from(p.offset) + n > usize::from(p.caplen) {
        return None;
    }
    Some(SensorEvent::Packet(Box::new(
        netwho_model::capture::PacketChunk {
            key: WireKey {
                cookie: SockCookie(p.cookie),
                remote: Endpoint::from_kernel(p.raddr, p.rport),
            },
            id: p.id,
            at: MonoNs(p.hdr.ts_ns),
            len: p.len,
            caplen: p.caplen,
            offset: p.offset,
            ifindex: p.ifindex,
            dir,
            segs: p.segs.max(1),
            data: p.data[..n].to_vec(),
        },
    )))
}

/// What a flow entry knows of its socket (entries made before the kernel
/// side recorded it have protocol 0 and sock_type 0: unknown).
pub fn counter_hint(c: &abi::FlowCounters) -> CounterHint {
    let proto = if c.packet == 1 {
        Proto::Packet
    } else if c.sock_type == 0 {
        Proto::Unknown
    } else {
        Proto::from_socket(0, u16::from(c.sock_type), c.protocol)
    };
    CounterHint {
        proto,
        uid: Some(c.uid),
    }
}

/// A flow entry's key as the model keys flows.
pub fn kernel_key(k: &abi::FlowKey) -> KernelKey {
    KernelKey {
        tgid: k.tgid,
        cookie: SockCookie(k.cookie),
        remote: Endpoint::from_kernel(k.raddr, k.rport),
    }
}

/// The kernel's direction code.
pub fn direction(d: u8) -> Direction {
    match d {
        abi::DIR_OUTBOUND => Direction::Outbound,
        abi::DIR_INBOUND => Direction::Inbound,
        _ => Direction::Unknown,
    }
}

/// A socket born while netwho watched: created under cgroup/sock_create, or
/// a TCP connection whose handshake we saw. Others predate netwho.
pub fn born_watched(sk_flags: u8) -> bool {
    u32::from(sk_flags) & (abi::SK_HOOKED | abi::SK_INBOUND | abi::SK_OUTBOUND) != 0
}

/// A flow-open record as the model's event.
pub fn flow_open(o: &abi::FlowOpen) -> FlowOpen {
    let mut t = tuple(&o.tuple);
    if t.packet {
        // the kernel key for packet sockets has no remote either
        t.remote = Endpoint::from_kernel(o.key.raddr, o.key.rport);
    }
    FlowOpen {
        key: kernel_key(&o.key),
        proc: ProcKey::from_start_ns(o.key.tgid, o.proc_start_ns),
        at: MonoNs(o.hdr.ts_ns),
        tuple: t,
        direction: direction(o.direction),
        comm: c_string(&o.comm),
        uid: o.uid,
        gid: o.gid,
        cgroup_id: o.cgroup_id,
        attribution: if born_watched(o.sk_flags) {
            Attribution::Ebpf
        } else {
            Attribution::SockDiag
        },
        untracked: o.flow_flags != 0,
    }
}

/// A state-change record as the model's event.
pub fn sock_state(s: &abi::SockState) -> Option<SockState> {
    Some(SockState {
        cookie: SockCookie(s.cookie),
        tuple: tuple(&s.tuple),
        state: TcpState::try_from(s.new_state).ok()?,
        at: MonoNs(s.hdr.ts_ns),
    })
}

/// An inbound-connection record as the model's event.
pub fn inbound(i: &abi::Inbound) -> Inbound {
    Inbound {
        cookie: SockCookie(i.cookie),
        tuple: tuple(&i.tuple),
        owner_tgid: i.owner_tgid,
        owner_uid: i.owner_uid,
        owner_gid: i.owner_gid,
        owner_cgroup: i.owner_cgroup,
        at: MonoNs(i.hdr.ts_ns),
    }
}

/// An exec as the kernel saw it. `exe` is the path given to execve(); the
/// pipeline replaces it with /proc/PID/exe while the process still exists.
pub fn exec(e: &abi::Exec) -> ProcExec {
    let args_len = (e.args_len as usize).min(e.args.len());
    ProcExec {
        proc: ProcKey::from_start_ns(e.tgid, e.start_ns),
        ppid: e.ppid,
        parent: (e.ppid != 0).then(|| ProcKey::from_start_ns(e.ppid, e.parent_start_ns)),
        comm: c_string(&e.comm),
        exe: c_string(&e.filename),
        cmdline: split_args(&e.args[..args_len]),
        uid: e.uid,
        gid: e.gid,
        cgroup_id: e.cgroup_id,
        at: MonoNs(e.hdr.ts_ns),
        args_truncated: e.args_truncated != 0,
        login_uid: (e.login_uid != u32::MAX).then_some(e.login_uid),
        session: (e.session != u32::MAX).then_some(e.session),
        exe_file: None,
        exe_ino: e.exe_ino,
    }
}

/// A process's final figures from its exit event. `delayacct`: the
/// kernel's delay accounting is on (otherwise block I/O waits read 0 and
/// are not reported).
pub fn exit_usage(x: &abi::Exit, page_size: u64, delayacct: bool) -> Usage {
    Usage {
        cpu_ns: x.cpu_ns,
        rss_bytes: x.rss_pages.saturating_mul(page_size),
        rss_peak_bytes: x.peak_pages.saturating_mul(page_size),
        major_faults: x.maj_flt,
        iowait_ns: (delayacct && x.flags & abi::EXIT_BLKIO != 0).then_some(x.blkio_ns),
    }
}

/// A new cgroup's (id, path).
pub fn cgroup_mkdir(c: &abi::CgroupMkdir) -> (u64, String) {
    let len = (c.path_len as usize).min(c.path.len());
    (c.id, c_string(&c.path[..len]))
}

/// A fork record as the model's event.
pub fn fork(f: &abi::Fork) -> ProcFork {
    ProcFork {
        parent: ProcKey::from_start_ns(f.parent_tgid, f.parent_start_ns),
        child: ProcKey::from_start_ns(f.child_tgid, f.child_start_ns),
        comm: c_string(&f.comm),
        uid: f.uid,
        gid: f.gid,
        at: MonoNs(f.hdr.ts_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::Zeroable;
    use std::net::{IpAddr, Ipv4Addr};

    fn mapped(a: [u8; 4]) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[10] = 0xff;
        b[11] = 0xff;
        b[12..].copy_from_slice(&a);
        b
    }

    fn open_fixture() -> abi::FlowOpen {
        let mut o = abi::FlowOpen::zeroed();
        o.hdr.kind = abi::EV_FLOW_OPEN;
        o.hdr.ts_ns = 5_000_000_000;
        o.key.cookie = 77;
        o.key.tgid = 4242;
        o.key.rport = 8080;
        o.key.raddr = mapped([10, 231, 0, 2]);
        o.tuple.laddr = mapped([10, 231, 0, 1]);
        o.tuple.raddr = o.key.raddr;
        o.tuple.lport = 40000;
        o.tuple.rport = 8080;
        o.tuple.family = 10; // a dual-stack socket talking IPv4
        o.tuple.protocol = 6;
        o.tuple.sock_type = 1;
        o.tuple.state = 2;
        o.tuple.netns = 4026532000;
        o.proc_start_ns = 1_230_000_000;
        o.uid = 1001;
        o.gid = 1002;
        o.origin = abi::ORIGIN_CONNECT;
        o.direction = abi::DIR_OUTBOUND;
        o.sk_flags = (abi::SK_HOOKED | abi::SK_OUTBOUND) as u8;
        o.comm[..4].copy_from_slice(b"curl");
        o
    }

    #[test]
    fn a_flow_open_decodes_to_a_model_open() {
        let mut bytes = bytemuck::bytes_of(&open_fixture()).to_vec();
        bytes.extend_from_slice(&[0; 8]); // ring padding is ignored
        let Record::FlowOpen(raw) = decode(&bytes).unwrap() else {
            panic!("wrong kind")
        };
        let o = flow_open(&raw);
        assert_eq!(o.proc, ProcKey::from_start_ticks(4242, 123));
        assert_eq!(o.comm, "curl");
        assert_eq!(o.tuple.proto, Proto::Tcp);
        assert_eq!(o.tuple.tcp_state, Some(TcpState::SynSent));
        assert_eq!(
            o.tuple.local,
            Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 231, 0, 1)), 40000)
        );
        assert_eq!(o.key.remote.to_string(), "10.231.0.2:8080");
        assert_eq!(o.direction, Direction::Outbound);
        assert_eq!(o.attribution, Attribution::Ebpf);
        assert_eq!((o.uid, o.gid, o.at), (1001, 1002, MonoNs(5_000_000_000)));
    }

    #[test]
    fn a_socket_older_than_netwho_is_labelled_sock_diag() {
        let mut o = open_fixture();
        o.sk_flags = abi::SK_FLOW_SEEN as u8;
        assert_eq!(flow_open(&o).attribution, Attribution::SockDiag);
    }

    #[test]
    fn truncated_and_unknown_records_are_errors() {
        let bytes = bytemuck::bytes_of(&open_fixture()).to_vec();
        assert_eq!(
            decode(&bytes[..100]),
            Err(DecodeError::Length {
                kind: 1,
                len: 100,
                expected: 144
            })
        );
        assert_eq!(decode(&bytes[..3]), Err(DecodeError::Short { len: 3 }));
        let mut bad = bytes.clone();
        bad[0] = 99;
        assert_eq!(decode(&bad), Err(DecodeError::Kind { kind: 99 }));
    }

    #[test]
    fn payload_records_become_pieces_of_their_socket_and_remote() {
        let mut c = abi::Capture::zeroed();
        c.hdr.kind = abi::EV_CAPTURE;
        c.cookie = 77;
        c.offset = 512;
        c.len = 5;
        c.rport = 443;
        c.raddr[10] = 0xff;
        c.raddr[11] = 0xff;
        c.raddr[12..].copy_from_slice(&[10, 231, 0, 2]);
        c.direction = 2;
        c.data[..6].copy_from_slice(b"hello!");
        let Record::Capture(raw) = decode(bytemuck::bytes_of(&c)).unwrap() else {
            panic!("not a capture record")
        };
        let Some(SensorEvent::Captured { key, piece }) = captured(&raw) else {
            panic!("no capture event")
        };
        assert_eq!(
            (key.cookie, key.remote.to_string()),
            (SockCookie(77), "10.231.0.2:443".into())
        );
        assert_eq!((piece.dir, piece.offset), (CaptureDir::Recv, 512));
        assert_eq!(piece.data, b"hello", "only len bytes");
        // a length past the buffer is cut to it; an unknown direction is refused
        c.len = u16::MAX;
        assert!(matches!(
            captured(&c),
            Some(SensorEvent::Captured { piece, .. }) if piece.data.len() == abi::CAPTURE_CHUNK
        ));
        c.direction = 3;
        assert!(captured(&c).is_none());
    }

    #[test]
    fn exec_args_and_names() {
        let mut e = abi::Exec::zeroed();
        e.hdr.kind = abi::EV_EXEC;
        e.tgid = 10;
        e.ppid = 9;
        e.start_ns = 2_000_000_000;
        e.parent_start_ns = 1_000_000_000;
        let args = b"python3\0-c\0print(1)\0";
        e.args[..args.len()].copy_from_slice(args);
        e.args_len = args.len() as u32;
        e.filename[..15].copy_from_slice(b"/usr/bin/python");
        e.comm[..7].copy_from_slice(b"python3");
        let Record::Exec(raw) = decode(bytemuck::bytes_of(&e)).unwrap() else {
            panic!("wrong kind")
        };
        let x = exec(&raw);
        assert!(!x.args_truncated);
        assert_eq!(x.cmdline, ["python3", "-c", "print(1)"]);
        assert_eq!(x.exe, "/usr/bin/python");
        assert_eq!(x.parent, Some(ProcKey::from_start_ticks(9, 100)));
    }

    #[test]
    fn args_cut_mid_word_keep_the_fragment() {
        assert_eq!(split_args(b"a\0bc"), ["a", "bc"]);
        assert_eq!(split_args(b""), Vec::<String>::new());
        assert_eq!(c_string(b"abc\0def"), "abc");
        assert_eq!(c_string(b"abcd"), "abcd");
    }

    #[test]
    fn packet_chunks_are_checked_against_their_packet() {
        let mut p: abi::Packet = Zeroable::zeroed();
        p.hdr.kind = abi::EV_PACKET;
        p.cookie = 5;
        p.id = 9;
        p.len = 1500;
        p.caplen = 600;
        p.offset = 512;
        p.n = 88;
        p.direction = 1;
        p.raddr[10..12].copy_from_slice(&[0xff, 0xff]);
        p.raddr[12..].copy_from_slice(&[10, 231, 0, 2]);
        let Record::Packet(raw) = decode(bytemuck::bytes_of(&p)).unwrap() else {
            panic!("not a packet record")
        };
        let Some(SensorEvent::Packet(c)) = packet(&raw) else {
            panic!("no packet event")
        };
        assert_eq!((c.id, c.offset, c.data.len(), c.segs), (9, 512, 88, 1));
        assert_eq!(c.key.remote.to_string(), "10.231.0.2:0");
        // a chunk past its packet's captured length, or no direction: refused
        p.n = 89;
        assert!(packet(&p).is_none());
        p.n = 88;
        p.direction = 0;
        assert!(packet(&p).is_none());
        // a length past the buffer is cut to it (and then past caplen)
        p.direction = 2;
        p.offset = 0;
        p.caplen = 16384;
        p.n = u16::MAX;
        assert!(
            matches!(packet(&p), Some(SensorEvent::Packet(c)) if c.data.len() == abi::CAPTURE_CHUNK)
        );
    }
}
