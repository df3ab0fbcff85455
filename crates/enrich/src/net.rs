//! This host's addresses (for `fd.is_local`), from getifaddrs(3).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every address of every interface in netwho's network namespace.
pub fn local_addrs() -> HashSet<IpAddr> {
    let mut out = HashSet::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says its type.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: an AF_INET sockaddr is a sockaddr_in.
                let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                out.insert(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: an AF_INET6 sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                out.insert(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// One interface's counters from `/proc/net/dev`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfCounters {
    /// The interface's name.
    pub name: String,
    /// Bytes received and sent.
    pub bytes: u64,
    /// Packets received and sent.
    pub packets: u64,
}

/// Parse `/proc/net/dev` (rx and tx added up). Lines that do not parse are
/// skipped.
pub fn parse_net_dev(text: &[u8]) -> Vec<IfCounters> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            if v.len() < 10 {
                return None;
            }
            Some(IfCounters {
                name: name.trim().to_string(),
                bytes: v[0].saturating_add(v[8]),
                packets: v[1].saturating_add(v[9]),
            })
        })
        .collect()
}

/// Link-layer header bytes per packet: Ethernet and loopback devices (14),
/// others (tunnels, WireGuard: 0). The device type is asked of the kernel
/// in this thread's network namespace (`SIOCGIFHWADDR`), which `/sys`
/// need not show.
fn l2_header(name: &str) -> u64 {
    const ARPHRD_ETHER: u16 = 1;
    const ARPHRD_LOOPBACK: u16 = 772;
    let bytes = name.as_bytes();
    // SAFETY: a plain zeroed C struct.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= req.ifr_name.len() || bytes.contains(&0) {
        return 0;
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: socket(2) with constant arguments; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return 0;
    }
    // SAFETY: SIOCGIFHWADDR reads the NUL-terminated name in `req` and
    // writes its hardware address into it; `req` is ours and large enough.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    // SAFETY: closing the descriptor we opened.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return 0;
    }
    // SAFETY: the kernel filled the address member of the union.
    let family = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    match family {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => 14,
        _ => 0,
    }
}

/// Interfaces whose link-layer header size is remembered.
const L2_KEPT: usize = 4096;

/// IP bytes through this network namespace's interfaces so far:
/// interfaces count link-layer frames, flows count IP packets, so the
/// Ethernet header (14 bytes a packet, loopback too) is taken off. `l2`
/// remembers each interface's header size (read once).
pub fn interface_ip_bytes(l2: &mut std::collections::HashMap<String, u64>) -> Option<u64> {
    let text = std::fs::read("/proc/net/dev").ok()?;
    let mut sum = 0u64;
    for c in parse_net_dev(&text) {
        let h = match l2.get(&c.name) {
            Some(h) => *h,
            None => {
                let h = l2_header(&c.name);
                if l2.len() < L2_KEPT {
                    l2.insert(c.name.clone(), h);
                }
                h
            }
        };
        sum = sum.saturating_add(c.bytes.saturating_sub(c.packets.saturating_mul(h)));
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_local() {
        let a = super::local_addrs();
        assert!(a.contains(&"127.0.0.1".parse().unwrap()), "{a:?}");
    }

    #[test]
    fn net_dev_adds_receive_and_transmit() {
        let t = b"Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo: 1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
eth0: 5000 20 0 0 0 0 0 0 700 7 0 0 0 0 0 0\n  \
bad: 1 2 3\n";
        let c = super::parse_net_dev(t);
        assert_eq!(
            c,
            [
                super::IfCounters {
                    name: "lo".into(),
                    bytes: 2000,
                    packets: 20
                },
                super::IfCounters {
                    name: "eth0".into(),
                    bytes: 5700,
                    packets: 27
                },
            ]
        );
    }

    #[test]
    fn loopback_has_an_ethernet_sized_header() {
        assert_eq!(super::l2_header("lo"), 14);
        assert_eq!(super::l2_header("no-such-if0"), 0);
        assert_eq!(super::l2_header("a-name-far-too-long-for-ifreq"), 0);
    }
}
