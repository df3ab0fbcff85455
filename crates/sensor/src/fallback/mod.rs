//! Sockets that existed before the sensor started.
//!
//! Kernel hooks see sockets from the moment they attach. A connection that
//! was already open is found once, at start-up: a sock_diag dump in every
//! network namespace names it (with the same cookie the kernel programs
//! use), and a scan of `/proc/*/fd` says which processes hold it. Those
//! flows are labelled `attribution: "sock_diag"` and counted from then on.

pub mod procfd;
pub mod sock_diag;

use crate::SensorError;
use netwho_model::{Direction, ExistingSocket, MonoNs, Proto, SockCookie, SocketTuple, TcpState};
use sock_diag::DiagSocket;
use std::collections::{HashMap, HashSet};
use std::path::Path;

const TCP: u8 = libc::IPPROTO_TCP as u8;

/// TCP states of a socket that has a peer (not LISTEN, not CLOSE, and not
/// the minisockets of TIME_WAIT/SYN_RECV, which no process holds).
pub(crate) fn has_peer(state: TcpState) -> bool {
    matches!(
        state,
        TcpState::Established
            | TcpState::SynSent
            | TcpState::FinWait1
            | TcpState::FinWait2
            | TcpState::CloseWait
            | TcpState::LastAck
            | TcpState::Closing
    )
}

/// Whether a socket of a dump can be a flow, and as what: TCP with a peer
/// (with its state), or connected UDP. Unconnected UDP is not: its flows
/// appear when it talks.
pub(crate) fn flow_kind(s: &DiagSocket) -> Option<(Proto, Option<TcpState>)> {
    let state = TcpState::try_from(s.state).ok();
    if s.protocol == TCP {
        state
            .filter(|st| has_peer(*st))
            .map(|st| (Proto::Tcp, Some(st)))
    } else {
        (state == Some(TcpState::Established)).then_some((Proto::Udp, None))
    }
}

/// The local ports TCP listens on in one namespace's dump.
pub(crate) fn listening_ports(sockets: &[DiagSocket]) -> HashSet<u16> {
    sockets
        .iter()
        .filter(|s| s.protocol == TCP && TcpState::try_from(s.state) == Ok(TcpState::Listen))
        .map(|s| s.local.port)
        .collect()
}

/// Who initiated a flow, as far as a dump tells: a TCP connection on a
/// listening port was accepted; anything else went out.
pub(crate) fn direction_of(s: &DiagSocket, listening: &HashSet<u16>) -> Direction {
    if s.protocol == TCP && listening.contains(&s.local.port) {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}

/// Turn the sockets of one namespace into existing flows. Pure.
pub fn existing_in_netns(
    netns: u32,
    sockets: &[DiagSocket],
    holders: &HashMap<u32, Vec<u32>>,
    at: MonoNs,
) -> Vec<ExistingSocket> {
    let listening = listening_ports(sockets);
    let mut out = Vec::new();
    for s in sockets {
        let Some((proto, tcp_state)) = flow_kind(s) else {
            continue;
        };
        let direction = direction_of(s, &listening);
        let Some(h) = holders.get(&s.inode).filter(|h| !h.is_empty()) else {
            continue;
        };
        out.push(ExistingSocket {
            taken: s.taken,
            cookie: SockCookie(s.cookie),
            tuple: SocketTuple {
                proto,
                local: s.local,
                remote: s.remote,
                tcp_state,
                netns,
                packet: false,
            },
            holders: h.clone(),
            direction,
            at,
        });
    }
    out
}

/// Run `f` in the network namespace of `pid`, on a thread of its own (a
/// thread's namespace can change without touching the rest of the process).
pub(crate) fn in_netns_of<T: Send>(
    pid: u32,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    in_netns_at(Path::new(&format!("/proc/{pid}/ns/net")), f)
}

/// Run `f` in the network namespace whose file is `path` (`/proc/PID/ns/net`
/// or a bind mount like `/run/netns/NAME`), on a thread of its own.
pub(crate) fn in_netns_at<T: Send>(
    path: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let ns = std::fs::File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a namespace fd we opened; it changes only this
            // thread, which ends when f returns.
            let r =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("netns scan thread panicked")))
    })
}

/// Every pre-existing connection on the host, in every network namespace
/// a process is in.
pub fn existing_sockets(at: MonoNs) -> Result<Vec<ExistingSocket>, SensorError> {
    let proc = Path::new("/proc");
    let holders = procfd::socket_holders(proc);
    let own = procfd::netns_of("self").map_err(|source| SensorError::Io {
        what: "reading /proc/self/ns/net".into(),
        source,
    })?;
    let mut out = Vec::new();
    for (netns, pids) in procfd::namespaces(proc) {
        let mut sockets = Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        if netns == own {
            sockets = sock_diag::dump();
        } else {
            // enter through any of its processes: some may have exited
            for pid in pids {
                sockets = in_netns_of(pid, sock_diag::dump);
                if sockets.is_ok() {
                    break;
                }
            }
        }
        match sockets {
            Ok(s) => out.extend(existing_in_netns(netns, &s, &holders, at)),
            // every process of it left, taking the namespace with them
            Err(e) => log::warn!("could not list the sockets of network namespace {netns}: {e}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::Endpoint;
    use std::net::{IpAddr, Ipv4Addr};

    fn sock(protocol: u8, state: u8, lport: u16, rport: u16, inode: u32) -> DiagSocket {
        let a = |last| IpAddr::V4(Ipv4Addr::new(10, 231, 0, last));
        DiagSocket {
            protocol,
            taken: None,
            counters: None,
            state,
            local: Endpoint::new(a(1), lport),
            remote: Endpoint::new(a(2), rport),
            cookie: u64::from(inode) * 10,
            uid: 0,
            inode,
        }
    }

    #[test]
    fn connections_become_flows_with_a_direction() {
        let sockets = [
            sock(TCP, 10, 22, 0, 1),     // LISTEN: not a flow
            sock(TCP, 1, 22, 50000, 2),  // accepted: inbound
            sock(TCP, 1, 41000, 443, 3), // connected out
            sock(TCP, 8, 41001, 443, 4), // CLOSE_WAIT still has a peer
            sock(TCP, 6, 41002, 443, 0), // TIME_WAIT: nobody holds it
            sock(17, 7, 5353, 0, 5),     // unconnected UDP
            sock(17, 1, 40000, 53, 6),   // connected UDP
            sock(TCP, 1, 41003, 80, 7),  // nobody holds it (kernel socket)
        ];
        let holders: HashMap<u32, Vec<u32>> = [
            (2, vec![100]),
            (3, vec![101, 102]),
            (4, vec![103]),
            (6, vec![104]),
        ]
        .into_iter()
        .collect();
        let flows = existing_in_netns(4026531840, &sockets, &holders, MonoNs(5));
        let summary: Vec<_> = flows
            .iter()
            .map(|x| (x.cookie.0, x.tuple.proto, x.direction, x.holders.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (20, Proto::Tcp, Direction::Inbound, vec![100]),
                (30, Proto::Tcp, Direction::Outbound, vec![101, 102]),
                (40, Proto::Tcp, Direction::Outbound, vec![103]),
                (60, Proto::Udp, Direction::Outbound, vec![104]),
            ]
        );
        assert!(flows.iter().all(|f| f.tuple.netns == 4026531840));
    }
}
