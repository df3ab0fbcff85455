//! The proc connector: the kernel's notices of fork, exec and exit
//! (`NETLINK_CONNECTOR`, `CN_IDX_PROC`), for the sock_diag sensor, which
//! has no tracepoints. Opening it needs CAP_NET_ADMIN in the initial
//! namespaces; reading it needs nothing.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_DONE: u16 = 3;
/// `struct cn_msg` before its data.
const CN_MSG_LEN: usize = 20;
/// `struct proc_event` before its union: what, cpu, timestamp_ns.
const EVENT_HEAD: usize = 16;
const PROC_EVENT_FORK: u32 = 0x1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// One notice about a process (thread notices are left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcNotice {
    /// A new process (not a thread): its pid and its parent's.
    Fork {
        /// The parent's tgid.
        parent: u32,
        /// The child's tgid.
        child: u32,
    },
    /// A process called execve().
    Exec {
        /// Its tgid.
        tgid: u32,
    },
    /// A process's main thread exited.
    Exit {
        /// Its tgid.
        tgid: u32,
    },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
}

/// Parse one buffer from the connector (any number of netlink messages;
/// short or malformed ones end it). Pure.
pub fn parse(buf: &[u8], out: &mut Vec<ProcNotice>) {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let Some(len) = u32_at(buf, at).map(|l| l as usize) else {
            return;
        };
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return;
        }
        let msg = &buf[at + NLMSG_HDRLEN..at + len];
        if u32_at(msg, 0) == Some(CN_IDX_PROC) && u32_at(msg, 4) == Some(CN_VAL_PROC) {
            let ev = &msg[CN_MSG_LEN.min(msg.len())..];
            let data = |i: usize| u32_at(ev, EVENT_HEAD + 4 * i);
            let notice = match u32_at(ev, 0) {
                // fork: parent pid, parent tgid, child pid, child tgid;
                // a new thread has child pid != child tgid
                Some(PROC_EVENT_FORK) => match (data(1), data(2), data(3)) {
                    (Some(parent), Some(pid), Some(child)) if pid == child => {
                        Some(ProcNotice::Fork { parent, child })
                    }
                    _ => None,
                },
                Some(PROC_EVENT_EXEC) => data(1).map(|tgid| ProcNotice::Exec { tgid }),
                // exit: pid, tgid; the main thread's is the process's
                Some(PROC_EVENT_EXIT) => match (data(0), data(1)) {
                    (Some(pid), Some(tgid)) if pid == tgid => Some(ProcNotice::Exit { tgid }),
                    _ => None,
                },
                _ => None,
            };
            out.extend(notice);
        }
        at += (len + 3) & !3;
    }
}

/// The subscription message.
fn listen_msg() -> Vec<u8> {
    let len = NLMSG_HDRLEN + CN_MSG_LEN + 4;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    b.extend_from_slice(&0u16.to_ne_bytes()); // flags
    b.extend_from_slice(&0u32.to_ne_bytes()); // seq
    b.extend_from_slice(&std::process::id().to_ne_bytes());
    b.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    b.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // seq
    b.extend_from_slice(&0u32.to_ne_bytes()); // ack
    b.extend_from_slice(&4u16.to_ne_bytes()); // len
    b.extend_from_slice(&0u16.to_ne_bytes()); // flags
    b.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    b
}

/// A subscribed proc connector socket (non-blocking).
#[derive(Debug)]
pub struct ProcConnector(OwnedFd);

/// What one read found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Read {
    /// The kernel dropped notices: the buffer was full.
    pub overrun: bool,
}

impl ProcConnector {
    /// Open and subscribe.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                NETLINK_CONNECTOR,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        crate::fallback::sock_diag::force_rcvbuf(fd.as_raw_fd(), 4 << 20);
        crate::fallback::sock_diag::bind_netlink(fd.as_raw_fd(), CN_IDX_PROC)?;
        let msg = listen_msg();
        // SAFETY: msg is valid for its length.
        let r = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ProcConnector(fd))
    }

    /// Its descriptor, to wait on.
    pub fn fd(&self) -> libc::c_int {
        self.0.as_raw_fd()
    }

    /// Read up to `max_reads` buffers of what is waiting.
    pub fn read(
        &self,
        buf: &mut [u8],
        max_reads: usize,
        out: &mut Vec<ProcNotice>,
    ) -> io::Result<Read> {
        let mut read = Read::default();
        for _ in 0..max_reads {
            // SAFETY: buf is valid for writes of its length.
            let n = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                parse(&buf[..n as usize], out);
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => break,
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) => read.overrun = true,
                _ => return Err(e),
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(what: u32, data: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&[0u8; 12]);
        for d in data {
            ev.extend_from_slice(&d.to_ne_bytes());
        }
        let mut cn = Vec::new();
        cn.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        cn.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        cn.extend_from_slice(&[0u8; 8]);
        cn.extend_from_slice(&(ev.len() as u16).to_ne_bytes());
        cn.extend_from_slice(&[0u8; 2]);
        cn.extend(ev);
        let mut b = Vec::new();
        b.extend_from_slice(&((NLMSG_HDRLEN + cn.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        b.extend_from_slice(&[0u8; 10]);
        b.extend(cn);
        b
    }

    #[test]
    fn notices_parse_and_threads_are_left_out() {
        let mut buf = msg(PROC_EVENT_FORK, &[10, 10, 11, 11]);
        buf.extend(msg(PROC_EVENT_FORK, &[10, 10, 12, 10])); // a thread
        buf.extend(msg(PROC_EVENT_EXEC, &[11, 11]));
        buf.extend(msg(PROC_EVENT_EXIT, &[13, 11, 0, 17])); // a thread
        buf.extend(msg(PROC_EVENT_EXIT, &[11, 11, 0, 17]));
        buf.extend(msg(0x4, &[1, 1])); // uid change: not wanted
        let mut out = Vec::new();
        parse(&buf, &mut out);
        assert_eq!(
            out,
            vec![
                ProcNotice::Fork {
                    parent: 10,
                    child: 11
                },
                ProcNotice::Exec { tgid: 11 },
                ProcNotice::Exit { tgid: 11 },
            ]
        );
    }

    #[test]
    fn hostile_lengths_end_the_walk() {
        let mut out = Vec::new();
        let good = msg(PROC_EVENT_EXIT, &[5, 5]);
        // cut anywhere: never a panic, never a notice from a partial event
        for cut in 0..good.len() {
            let mut b = good[..cut].to_vec();
            if b.len() >= 4 {
                b[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            }
            parse(&b, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        let mut huge = good.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        parse(&huge, &mut out);
        let mut zero = good;
        zero[..4].copy_from_slice(&0u32.to_ne_bytes());
        parse(&zero, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn the_subscription_is_laid_out_as_the_kernel_reads_it() {
        let m = listen_msg();
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u32_at(&m, 16), Some(CN_IDX_PROC));
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
    }
}
