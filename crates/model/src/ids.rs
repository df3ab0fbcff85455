//! Stable, typed identities: time, sockets, processes, flows.

use crate::addr::Endpoint;
use std::fmt;
use std::time::Duration;

/// A duration in nanoseconds, for arithmetic with [`MonoNs`] (saturating:
/// a duration past 584 years is "forever").
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// CLOCK_BOOTTIME in nanoseconds: the clock of every kernel timestamp and of
/// the `now` argument. It never jumps (unlike wall time) and keeps counting
/// through suspend (unlike CLOCK_MONOTONIC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonoNs(pub u64);

impl MonoNs {
    /// Nanoseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn since(self, earlier: MonoNs) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This time plus `ns` (saturating).
    pub fn add_ns(self, ns: u64) -> MonoNs {
        MonoNs(self.0.saturating_add(ns))
    }
}

/// The kernel's socket cookie (`bpf_get_socket_cookie`, the same value
/// sock_diag reports): unique for the life of a boot, never reused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SockCookie(pub u64);

/// USER_HZ, the unit of process start times in `/proc/PID/stat` (fixed at
/// 100 by the Linux ABI on every architecture).
pub const USER_HZ: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

/// Identity of a file's content as far as the filesystem says: device,
/// inode and modification time. Hashes of executables are cached by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Modification time (ns).
    pub mtime_ns: i64,
}

/// A process identity: thread-group id plus start time. A pid alone is not
/// an identity: pids are reused, start times are not (for the same pid).
///
/// The start time is kept in USER_HZ ticks since boot, the resolution of
/// `/proc/PID/stat`, so a process seen first by the kernel sensor
/// (nanoseconds) and one read from /proc compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcKey {
    /// Thread-group id (the pid).
    pub tgid: u32,
    /// Start time, USER_HZ ticks since boot.
    pub start_ticks: u64,
}

impl ProcKey {
    /// From the kernel's `start_boottime` (nanoseconds since boot).
    pub fn from_start_ns(tgid: u32, start_boot_ns: u64) -> Self {
        ProcKey {
            tgid,
            start_ticks: start_boot_ns / NS_PER_TICK,
        }
    }

    /// From field 22 of `/proc/PID/stat`.
    pub fn from_start_ticks(tgid: u32, start_ticks: u64) -> Self {
        ProcKey { tgid, start_ticks }
    }

    /// The start time as CLOCK_BOOTTIME, to tick resolution.
    pub fn start(self) -> MonoNs {
        MonoNs(self.start_ticks.saturating_mul(NS_PER_TICK))
    }
}

impl fmt::Display for ProcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.tgid, self.start_ticks)
    }
}

/// The key of a flow in the kernel's counter map: (tgid, socket, remote).
/// The kernel does not know start times; the model maps each kernel key to
/// the [`FlowKey`] of the open flow that has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelKey {
    /// The process (tgid) that sent or received.
    pub tgid: u32,
    /// The socket.
    pub cookie: SockCookie,
    /// The remote.
    pub remote: Endpoint,
}

/// A flow: one (process, socket, remote).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// The process.
    pub proc: ProcKey,
    /// The socket.
    pub cookie: SockCookie,
    /// The remote.
    pub remote: Endpoint,
}

impl FlowKey {
    /// The kernel's key of this flow.
    pub fn kernel(&self) -> KernelKey {
        KernelKey {
            tgid: self.proc.tgid,
            cookie: self.cookie,
            remote: self.remote,
        }
    }
}

/// The key of wire counters: (socket, remote). Packets are seen in softirq,
/// where the process is unknown; the model shares them out among the flows
/// of the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WireKey {
    /// The socket.
    pub cookie: SockCookie,
    /// The remote.
    pub remote: Endpoint,
}

/// A flow's public identifier: stable for its life, unique across boots
/// (the boot id is part of the hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId(pub u64);

impl FlowId {
    /// FNV-1a over the boot id and the flow key: cheap, stable across
    /// versions and platforms (unlike `std`'s hasher).
    pub fn derive(boot_id: &[u8; 16], key: &FlowKey) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(boot_id);
        eat(&key.proc.tgid.to_le_bytes());
        eat(&key.proc.start_ticks.to_le_bytes());
        eat(&key.cookie.0.to_le_bytes());
        eat(&key.remote.addr_bytes());
        eat(&key.remote.port.to_le_bytes());
        FlowId(h)
    }
}

impl FlowId {
    /// Its 16 lower-case hex digits, as `Display` writes it (without fmt:
    /// every record has one).
    pub fn hex(self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut b = [0u8; 16];
        for (i, c) in b.iter_mut().enumerate() {
            *c = HEX[((self.0 >> (60 - 4 * i)) & 0xF) as usize];
        }
        // hex digits only: always valid
        String::from_utf8(b.to_vec()).unwrap_or_default()
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn kernel_ns_and_proc_ticks_give_the_same_key() {
        // /proc/PID/stat says 12345 ticks; the kernel said 123.456789 s
        let from_proc = ProcKey::from_start_ticks(42, 12345);
        let from_bpf = ProcKey::from_start_ns(42, 123_456_789_000);
        assert_eq!(from_proc, from_bpf);
        assert_ne!(from_bpf, ProcKey::from_start_ns(42, 123_460_000_000));
    }

    #[test]
    fn flow_id_is_stable_and_depends_on_every_part() {
        let boot = [7u8; 16];
        let key = FlowKey {
            proc: ProcKey::from_start_ticks(10, 20),
            cookie: SockCookie(30),
            remote: Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 231, 0, 2)), 80),
        };
        let id = FlowId::derive(&boot, &key);
        assert_eq!(id, FlowId::derive(&boot, &key));
        assert_eq!(id.to_string().len(), 16);
        let mut other = key;
        other.proc.start_ticks = 21;
        assert_ne!(id, FlowId::derive(&boot, &other));
        let mut other = key;
        other.remote.port = 81;
        assert_ne!(id, FlowId::derive(&boot, &other));
        assert_ne!(id, FlowId::derive(&[8u8; 16], &key));
    }

    proptest::proptest! {
        #[test]
        fn a_flow_ids_hex_is_what_display_writes(v in proptest::prelude::any::<u64>()) {
            proptest::prop_assert_eq!(FlowId(v).hex(), FlowId(v).to_string());
        }
    }

    #[test]
    fn flow_id_hex_at_the_edges() {
        for v in [0, 1, 0xF, 0x10, u64::MAX, 1 << 63, 0x0123_4567_89ab_cdef] {
            assert_eq!(FlowId(v).hex(), format!("{v:016x}"));
        }
    }
}
