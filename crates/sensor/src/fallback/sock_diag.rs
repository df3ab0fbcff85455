//! NETLINK_SOCK_DIAG dumps of TCP and UDP sockets (`ss` uses the same).
//! The cookie it reports is the one `bpf_get_socket_cookie` returns.

use netwho_model::Endpoint;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
const INET_DIAG_MSG_LEN: usize = 72;

/// One socket from a dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagSocket {
    /// IP protocol number.
    pub protocol: u8,
    /// TCP state (the kernel's number).
    pub state: u8,
    /// Local address.
    pub local: Endpoint,
    /// Remote address.
    pub remote: Endpoint,
    /// Socket cookie (the one the programs see).
    pub cookie: u64,
    /// Owner's uid.
    pub uid: u32,
    /// Inode (to find its processes in `/proc/*/fd`).
    pub inode: u32,
    /// TCP, not listening: payload its readers have taken (tcp_info's
    /// bytes_received minus what is unread in its receive queue).
    pub taken: Option<u64>,
    /// TCP, not listening, on Linux 4.19 and later: its byte counters.
    pub counters: Option<TcpCounters>,
}

/// A TCP socket's byte counters from `tcp_info` and the diag message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// `tcpi_bytes_sent`: payload transmitted, retransmissions included.
    pub bytes_sent: u64,
    /// `tcpi_bytes_retrans`: payload retransmitted.
    pub bytes_retrans: u64,
    /// `tcpi_notsent_bytes`: written, not yet transmitted (a queued FIN
    /// included).
    pub notsent: u32,
    /// `tcpi_bytes_received`: payload received (a received FIN included).
    pub bytes_received: u64,
    /// `idiag_rqueue`: received, not yet read (a FIN not yet read included).
    pub rqueue: u32,
}

#[derive(Debug, Error, PartialEq, Eq)]
/// A sock_diag answer that could not be read.
pub enum DiagError {
    #[error("netlink message truncated at byte {at}")]
    /// The message ends early.
    Truncated {
        /// Where.
        at: usize,
    },
    #[error("the kernel answered the sock_diag dump with error {errno}")]
    /// The kernel answered with an error.
    Kernel {
        /// The error number.
        errno: i32,
    },
}

/// The request: every socket of `family`/`protocol`, in every state.
pub fn request(family: u8, protocol: u8, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + 56;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    // struct inet_diag_req_v2; TCP: with tcp_info (INET_DIAG_INFO)
    let ext = if protocol == libc::IPPROTO_TCP as u8 {
        1 << (INET_DIAG_INFO - 1)
    } else {
        0
    };
    b.extend_from_slice(&[family, protocol, ext, 0]);
    b.extend_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states: all
    b.extend_from_slice(&[0u8; 48]); // struct inet_diag_sockid: any
    b
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, DiagError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or(DiagError::Truncated { at })
}

fn addr(family: u8, bytes: &[u8]) -> IpAddr {
    if family == libc::AF_INET as u8 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&bytes[..4]);
        IpAddr::V4(Ipv4Addr::from(a))
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&bytes[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    }
}

/// The `INET_DIAG_INFO` attribute: `struct tcp_info`.
const INET_DIAG_INFO: u8 = 2;
/// `tcp_info.tcpi_bytes_received` (u64, Linux 4.1+).
const TCPI_BYTES_RECEIVED: usize = 128;
/// `tcp_info.tcpi_notsent_bytes` (u32, Linux 4.6+).
const TCPI_NOTSENT: usize = 144;
/// `tcp_info.tcpi_bytes_sent` (u64, Linux 4.19+).
const TCPI_BYTES_SENT: usize = 200;
/// `tcp_info.tcpi_bytes_retrans` (u64, Linux 4.19+).
const TCPI_BYTES_RETRANS: usize = 208;
/// The `INET_DIAG_PROTOCOL` attribute (u8), in destroy notices.
const INET_DIAG_PROTOCOL: u16 = 10;
/// TCP_LISTEN: its queue counts connections, not bytes.
const TCP_LISTEN: u8 = 10;

/// The payload of attribute `want` among the attributes after an
/// `inet_diag_msg` (bounded walk; a short or malformed attribute ends it).
fn attribute(attrs: &[u8], want: u16) -> Option<&[u8]> {
    let mut at = 0;
    while at + 4 <= attrs.len() {
        let len = usize::from(u16::from_ne_bytes([attrs[at], attrs[at + 1]]));
        let kind = u16::from_ne_bytes([attrs[at + 2], attrs[at + 3]]);
        if len < 4 || at + len > attrs.len() {
            return None;
        }
        if kind == want {
            return Some(&attrs[at + 4..at + len]);
        }
        at += (len + 3) & !3;
    }
    None
}

fn u64_in(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_ne_bytes)
}

/// `tcpi_bytes_received` from the attributes after an `inet_diag_msg`.
fn bytes_received(attrs: &[u8]) -> Option<u64> {
    u64_in(
        attribute(attrs, u16::from(INET_DIAG_INFO))?,
        TCPI_BYTES_RECEIVED,
    )
}

/// The byte counters of a TCP socket's `tcp_info` (None before 4.19).
fn tcp_counters(attrs: &[u8], rqueue: u32) -> Option<TcpCounters> {
    let info = attribute(attrs, u16::from(INET_DIAG_INFO))?;
    Some(TcpCounters {
        bytes_sent: u64_in(info, TCPI_BYTES_SENT)?,
        bytes_retrans: u64_in(info, TCPI_BYTES_RETRANS)?,
        notsent: u32::from_ne_bytes(info.get(TCPI_NOTSENT..TCPI_NOTSENT + 4)?.try_into().ok()?),
        bytes_received: u64_in(info, TCPI_BYTES_RECEIVED)?,
        rqueue,
    })
}

/// Parse one `inet_diag_msg`.
pub fn parse_msg(m: &[u8], protocol: u8) -> Result<DiagSocket, DiagError> {
    if m.len() < INET_DIAG_MSG_LEN {
        return Err(DiagError::Truncated { at: m.len() });
    }
    let family = m[0];
    let port = |at: usize| u16::from_be_bytes([m[at], m[at + 1]]);
    let cookie = u64::from(u32_at(m, 44)?) | (u64::from(u32_at(m, 48)?) << 32);
    let attrs = &m[INET_DIAG_MSG_LEN..];
    let (taken, counters) = if protocol == libc::IPPROTO_TCP as u8 && m[1] != TCP_LISTEN {
        let unread = u32_at(m, 56)?;
        (
            bytes_received(attrs).map(|got| got.saturating_sub(u64::from(unread))),
            tcp_counters(attrs, unread),
        )
    } else {
        (None, None)
    };
    Ok(DiagSocket {
        taken,
        counters,
        protocol,
        state: m[1],
        local: Endpoint::new(addr(family, &m[8..24]), port(4)),
        remote: Endpoint::new(addr(family, &m[24..40]), port(6)),
        cookie,
        uid: u32_at(m, 64)?,
        inode: u32_at(m, 68)?,
    })
}

/// Parse one buffer of a dump reply. Returns the sockets and whether the
/// dump is complete (NLMSG_DONE seen).
pub fn parse(buf: &[u8], protocol: u8, out: &mut Vec<DiagSocket>) -> Result<bool, DiagError> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at)? as usize;
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(DiagError::Truncated { at });
        }
        let body = &buf[at + NLMSG_HDRLEN..at + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(body, 0)? as i32;
                return Err(DiagError::Kernel { errno: -errno });
            }
            SOCK_DIAG_BY_FAMILY => out.push(parse_msg(body, protocol)?),
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Ok(false)
}

/// Parse one buffer of destroy notices (each names its protocol in an
/// attribute; notices of other protocols are skipped).
pub fn parse_notices(buf: &[u8], out: &mut Vec<DiagSocket>) -> Result<(), DiagError> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at)? as usize;
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(DiagError::Truncated { at });
        }
        let body = &buf[at + NLMSG_HDRLEN..at + len];
        if kind == SOCK_DIAG_BY_FAMILY && body.len() >= INET_DIAG_MSG_LEN {
            let protocol = attribute(&body[INET_DIAG_MSG_LEN..], INET_DIAG_PROTOCOL)
                .and_then(|p| p.first().copied());
            if let Some(p @ (6 | 17)) = protocol {
                out.push(parse_msg(body, p)?);
            }
        }
        at += (len + 3) & !3;
    }
    Ok(())
}

/// A netlink socket, closed on drop.
struct Netlink(std::os::fd::OwnedFd);

/// Asks for a receive buffer of `bytes` on `fd` (as root, past rmem_max);
/// a refusal leaves the default.
pub(crate) fn force_rcvbuf(fd: libc::c_int, bytes: libc::c_int) {
    // SAFETY: setsockopt with a pointer to a c_int and its size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::from_ref(&bytes).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// Binds netlink socket `fd` (the kernel picks its port id), joining the
/// multicast `groups` bitmask.
pub(crate) fn bind_netlink(fd: libc::c_int, groups: u32) -> io::Result<()> {
    // SAFETY: a zeroed sockaddr_nl is valid; family and groups set.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_groups = groups;
    // SAFETY: sa is valid for its size.
    let r = unsafe {
        libc::bind(
            fd,
            std::ptr::from_ref(&sa).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// sock_diag's multicast groups of destroyed sockets: `SKNLGRP_INET_TCP_DESTROY`,
/// `_INET_UDP_`, `_INET6_TCP_`, `_INET6_UDP_` (Linux 4.9+).
const DESTROY_GROUPS: [u32; 4] = [1, 2, 3, 4];
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;

impl Netlink {
    fn open() -> io::Result<Self> {
        Self::open_flags(0)
    }

    fn open_flags(flags: libc::c_int) -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | flags,
                NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Netlink(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    fn raw(&self) -> libc::c_int {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: a zeroed sockaddr_nl is valid; we set its family.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: msg and sa are valid for the lengths given.
        let r = unsafe {
            libc::sendto(
                self.raw(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                std::ptr::from_ref(&sa).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: buf is valid for writes of buf.len() bytes.
            let r = unsafe { libc::recv(self.raw(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// A socket that hears of every TCP and UDP socket destroyed in the
/// network namespace it was opened in, with its final `tcp_info` (needs
/// CAP_NET_ADMIN to open; none after). Non-blocking.
pub struct DestroyListener(Netlink);

impl std::fmt::Debug for DestroyListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DestroyListener({})", self.0.raw())
    }
}

/// What one read of a [`DestroyListener`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Heard {
    /// The kernel dropped notices: the socket's buffer was full.
    pub overrun: bool,
    /// Notices that did not parse.
    pub bad: u64,
}

impl DestroyListener {
    /// Listen in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let nl = Netlink::open_flags(libc::SOCK_NONBLOCK)?;
        // a big buffer: a storm of closes between two reads is kept
        force_rcvbuf(nl.raw(), 8 << 20);
        // bound first: an unbound socket joins the groups but is never sent
        // to
        bind_netlink(nl.raw(), 0)?;
        for group in DESTROY_GROUPS {
            // SAFETY: as above, with a u32 group number.
            let r = unsafe {
                libc::setsockopt(
                    nl.raw(),
                    SOL_NETLINK,
                    NETLINK_ADD_MEMBERSHIP,
                    std::ptr::from_ref(&group).cast(),
                    size_of::<u32>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(DestroyListener(nl))
    }

    /// Its descriptor, to wait on.
    pub fn fd(&self) -> libc::c_int {
        self.0.raw()
    }

    /// Read up to `max_reads` buffers of notices that are waiting.
    pub fn read(
        &self,
        buf: &mut [u8],
        max_reads: usize,
        out: &mut Vec<DiagSocket>,
    ) -> io::Result<Heard> {
        let mut heard = Heard::default();
        for _ in 0..max_reads {
            match self.0.recv(buf) {
                Ok(0) => break,
                Ok(n) => {
                    if parse_notices(&buf[..n], out).is_err() {
                        heard.bad += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => heard.overrun = true,
                Err(e) => return Err(e),
            }
        }
        Ok(heard)
    }
}

/// Dump every TCP and UDP socket (IPv4 and IPv6) of the calling thread's
/// network namespace.
pub fn dump() -> io::Result<Vec<DiagSocket>> {
    let nl = Netlink::open()?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut seq = 1;
    for protocol in [libc::IPPROTO_TCP as u8, libc::IPPROTO_UDP as u8] {
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            nl.send(&request(family, protocol, seq))?;
            seq += 1;
            loop {
                let n = nl.recv(&mut buf)?;
                if n == 0 {
                    break;
                }
                let done = parse(&buf[..n], protocol, &mut out)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if done {
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One reply message as the kernel lays it out.
    fn reply(family: u8, state: u8, src: &[u8], dst: &[u8], ports: (u16, u16)) -> Vec<u8> {
        let mut m = vec![0u8; INET_DIAG_MSG_LEN];
        m[0] = family;
        m[1] = state;
        m[4..6].copy_from_slice(&ports.0.to_be_bytes());
        m[6..8].copy_from_slice(&ports.1.to_be_bytes());
        m[8..8 + src.len()].copy_from_slice(src);
        m[24..24 + dst.len()].copy_from_slice(dst);
        m[44..48].copy_from_slice(&0x1122_3344u32.to_ne_bytes());
        m[48..52].copy_from_slice(&0x5u32.to_ne_bytes());
        m[64..68].copy_from_slice(&1000u32.to_ne_bytes());
        m[68..72].copy_from_slice(&777u32.to_ne_bytes());
        let mut b = Vec::new();
        b.extend_from_slice(&((NLMSG_HDRLEN + m.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        b.extend_from_slice(&[0u8; 10]);
        b.extend_from_slice(&m);
        b
    }

    fn done() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&20u32.to_ne_bytes());
        b.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        b.extend_from_slice(&[0u8; 14]);
        b
    }

    #[test]
    fn request_layout() {
        let r = request(2, 6, 9);
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!(&r[16..18], &[2, 6]);
        assert_eq!(&r[20..24], &[0xff; 4]);
    }

    #[test]
    fn a_dump_reply_parses_to_sockets() {
        let mut buf = reply(2, 1, &[10, 231, 0, 1], &[10, 231, 0, 2], (40000, 80));
        let v6: Ipv6Addr = "fd00:231::1".parse().unwrap();
        buf.extend(reply(10, 10, &v6.octets(), &[0; 16], (443, 0)));
        buf.extend(done());
        let mut out = Vec::new();
        assert_eq!(parse(&buf, 6, &mut out), Ok(true));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].local.to_string(), "10.231.0.1:40000");
        assert_eq!(out[0].remote.to_string(), "10.231.0.2:80");
        assert_eq!(out[0].cookie, 0x5_1122_3344);
        assert_eq!((out[0].uid, out[0].inode, out[0].state), (1000, 777, 1));
        assert_eq!(out[1].local.to_string(), "[fd00:231::1]:443");
    }

    /// A TCP reply with `rqueue` unread and a tcp_info whose
    /// bytes_received is `got` (`info_len` bytes of it).
    fn with_info(state: u8, rqueue: u32, got: u64, info_len: usize) -> Vec<u8> {
        let mut b = reply(2, state, &[10, 231, 0, 1], &[10, 231, 0, 2], (40000, 80));
        b[NLMSG_HDRLEN + 56..NLMSG_HDRLEN + 60].copy_from_slice(&rqueue.to_ne_bytes());
        // another attribute first, then INET_DIAG_INFO
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&[0u8; 4]);
        let mut info = vec![0u8; info_len];
        if info_len >= TCPI_BYTES_RECEIVED + 8 {
            info[TCPI_BYTES_RECEIVED..TCPI_BYTES_RECEIVED + 8].copy_from_slice(&got.to_ne_bytes());
        }
        b.extend_from_slice(&((4 + info_len) as u16).to_ne_bytes());
        b.extend_from_slice(&u16::from(INET_DIAG_INFO).to_ne_bytes());
        b.extend_from_slice(&info);
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        b
    }

    #[test]
    fn what_a_tcp_socket_s_readers_took_comes_from_tcp_info() {
        let mut out = Vec::new();
        parse(&with_info(1, 300, 11_411, 232), 6, &mut out).unwrap();
        assert_eq!(out[0].taken, Some(11_111), "received minus unread");
        out.clear();
        parse(&with_info(10, 5, 0, 232), 6, &mut out).unwrap();
        assert_eq!(out[0].taken, None, "a listener's queue is connections");
        out.clear();
        parse(&with_info(1, 0, 99, 100), 6, &mut out).unwrap();
        assert_eq!(out[0].taken, None, "a tcp_info too short for the field");
        out.clear();
        parse(&with_info(1, 0, 99, 232), 17, &mut out).unwrap();
        assert_eq!(out[0].taken, None, "UDP has none");
        // hostile attribute lengths end the walk, never read past the message
        assert_eq!(bytes_received(&[3, 0, 2, 0]), None);
        assert_eq!(bytes_received(&[200, 0, 2, 0, 1, 2]), None);
        assert_eq!(bytes_received(&[]), None);
        let r = request(2, 6, 1);
        assert_eq!(r[18], 1 << (INET_DIAG_INFO - 1), "TCP asks for tcp_info");
        assert_eq!(request(2, 17, 1)[18], 0);
    }

    /// A destroy notice as the kernel sends it: the message, then the
    /// protocol attribute, then tcp_info with the counters.
    fn notice(protocol: u8, sent: u64, got: u64) -> Vec<u8> {
        let mut b = reply(2, 7, &[10, 231, 0, 1], &[10, 231, 0, 2], (40000, 80));
        b.extend_from_slice(&5u16.to_ne_bytes());
        b.extend_from_slice(&INET_DIAG_PROTOCOL.to_ne_bytes());
        b.extend_from_slice(&[protocol, 0, 0, 0]);
        let mut info = vec![0u8; 232];
        info[TCPI_BYTES_RECEIVED..TCPI_BYTES_RECEIVED + 8].copy_from_slice(&got.to_ne_bytes());
        info[TCPI_BYTES_SENT..TCPI_BYTES_SENT + 8].copy_from_slice(&sent.to_ne_bytes());
        b.extend_from_slice(&((4 + info.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&u16::from(INET_DIAG_INFO).to_ne_bytes());
        b.extend_from_slice(&info);
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        b
    }

    #[test]
    fn destroy_notices_carry_their_protocol_and_final_counters() {
        let mut buf = notice(6, 5000, 10);
        buf.extend(notice(132, 1, 1)); // SCTP: not ours
        buf.extend(notice(17, 0, 0));
        let mut out = Vec::new();
        parse_notices(&buf, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let c = out[0].counters.unwrap();
        assert_eq!(
            (out[0].protocol, c.bytes_sent, c.bytes_received),
            (6, 5000, 10)
        );
        assert_eq!((out[1].protocol, out[1].counters), (17, None));
        // cut anywhere or lying about its length: an error or fewer
        // sockets, never a panic or a read past the buffer
        let one = notice(6, 1, 1);
        for cut in 0..one.len() {
            let mut out = Vec::new();
            let _ = parse_notices(&one[..cut], &mut out);
            assert!(out.len() <= 1);
        }
        let mut liar = one.clone();
        liar[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_notices(&liar, &mut Vec::new()).is_err());
        let mut zero = one;
        zero[0..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(parse_notices(&zero, &mut Vec::new()).is_err());
    }

    #[test]
    fn a_dual_stack_socket_with_a_mapped_peer_is_ipv4() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[10, 231, 0, 2]);
        let buf = reply(10, 1, &mapped, &mapped, (1, 2));
        let mut out = Vec::new();
        assert_eq!(parse(&buf, 6, &mut out), Ok(false));
        assert_eq!(out[0].remote.to_string(), "10.231.0.2:2");
    }

    #[test]
    fn truncation_and_kernel_errors_are_reported() {
        let buf = reply(2, 1, &[1, 2, 3, 4], &[5, 6, 7, 8], (1, 2));
        let mut out = Vec::new();
        assert!(matches!(
            parse(&buf[..50], 6, &mut out),
            Err(DiagError::Truncated { .. })
        ));
        let mut err = Vec::new();
        err.extend_from_slice(&20u32.to_ne_bytes());
        err.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err.extend_from_slice(&[0u8; 10]);
        err.extend_from_slice(&(-13i32).to_ne_bytes());
        assert_eq!(
            parse(&err, 6, &mut out),
            Err(DiagError::Kernel { errno: 13 })
        );
    }
}
