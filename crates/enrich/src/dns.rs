//! Names of remote addresses, by the system's resolver (`getnameinfo`:
//! /etc/hosts, then reverse DNS as nsswitch.conf says). A lookup can
//! take seconds when a DNS server does not answer, so [`Resolver`] runs
//! them on its own thread, behind a bounded queue: addresses that do not
//! fit are not looked up (and counted), the caller never waits.

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Lookups waiting at most.
const QUEUE: usize = 256;

/// The name of `ip`, if it has one.
pub fn reverse(ip: IpAddr) -> Option<String> {
    let sa: libc::sockaddr_storage = sockaddr(ip);
    let len = match ip {
        IpAddr::V4(_) => size_of::<libc::sockaddr_in>(),
        IpAddr::V6(_) => size_of::<libc::sockaddr_in6>(),
    };
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `sa` is a valid sockaddr of `len` bytes; `host` is a writable
    // buffer of the size passed; no service is asked for.
    let rc = unsafe {
        libc::getnameinfo(
            std::ptr::from_ref(&sa).cast(),
            len as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn sockaddr(ip: IpAddr) -> libc::sockaddr_storage {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let sa = SocketAddr::new(ip, 0);
    match sa {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and aligned for it.
            unsafe { std::ptr::write(std::ptr::from_mut(&mut ss).cast(), sin) };
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and aligned for it.
            unsafe { std::ptr::write(std::ptr::from_mut(&mut ss).cast(), sin6) };
        }
    }
    ss
}

/// Reverse lookups on a thread of their own.
#[derive(Debug)]
pub struct Resolver {
    ask: SyncSender<IpAddr>,
    /// (address, name or None if it has none).
    pub answers: Receiver<(IpAddr, Option<String>)>,
    /// Addresses not looked up because the queue was full.
    pub skipped: u64,
}

impl Resolver {
    /// Start the resolver's thread.
    pub fn spawn() -> std::io::Result<Resolver> {
        let (ask, asked) = sync_channel::<IpAddr>(QUEUE);
        let (tell, answers) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("netwho-dns".into())
            .spawn(move || {
                crate::caps::drop_all_here("the name resolver");
                for ip in asked {
                    if tell.send((ip, reverse(ip))).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Resolver {
            ask,
            answers,
            skipped: 0,
        })
    }

    /// Ask for the name of `ip`; false if it could not be queued.
    pub fn ask(&mut self, ip: IpAddr) -> bool {
        match self.ask.try_send(ip) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.skipped += 1;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_a_name_from_the_hosts_file() {
        // every Linux /etc/hosts names 127.0.0.1 (localhost)
        let n = reverse(IpAddr::from([127, 0, 0, 1]));
        assert!(n.is_some_and(|n| !n.is_empty()));
    }
}
