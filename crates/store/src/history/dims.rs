//! What history rows are keyed by: a process instance with its user and
//! unit, and a peer.

use netwho_model::{Payload, Proto, Wire};
use std::net::IpAddr;

/// One process instance as history keeps it. `boot`, `tgid` and
/// `start_ticks` make the identity; the rest is what it was when first
/// stored (a process that changes user or executable becomes a new row).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProcDim {
    /// `/proc/sys/kernel/random/boot_id`, hex.
    pub boot: String,
    /// The pid.
    pub tgid: u32,
    /// Start time, USER_HZ ticks since boot.
    pub start_ticks: u64,
    /// Process start, Unix ns.
    pub start_ns: i64,
    /// The parent's pid.
    pub ppid: u32,
    /// Command name.
    pub comm: String,
    /// The parent's command name.
    pub parent_comm: String,
    /// The executable.
    pub exe: String,
    /// argv.
    pub cmdline: Vec<String>,
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Audit login uid, when set.
    pub login_uid: Option<u32>,
    /// The user's name.
    pub user: String,
    /// The group's name.
    pub group: String,
    /// The systemd unit.
    pub unit: String,
    /// The cgroup v2 path.
    pub cgroup: String,
    /// The container id.
    pub container: String,
    /// The executable's SHA-256, once known.
    pub exe_sha256: Option<String>,
}

impl ProcDim {
    /// FNV-1a over every attribute: with (boot, tgid, start) the row's
    /// unique key. Stable across versions and platforms.
    pub fn fingerprint(&self) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for x in b.iter().chain(&[0xff]) {
                h ^= u64::from(*x);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for s in [
            &self.comm,
            &self.parent_comm,
            &self.exe,
            &self.user,
            &self.group,
            &self.unit,
            &self.cgroup,
            &self.container,
        ] {
            eat(s.as_bytes());
        }
        for a in &self.cmdline {
            eat(a.as_bytes());
        }
        eat(&self.ppid.to_le_bytes());
        eat(&self.uid.to_le_bytes());
        eat(&self.gid.to_le_bytes());
        eat(&self.login_uid.unwrap_or(u32::MAX).to_le_bytes());
        eat(self.exe_sha256.as_deref().unwrap_or("").as_bytes());
        h as i64
    }

    /// The program this process runs, for reports over months: the
    /// executable and its arguments with what changes from run to run
    /// (numbers, hex ids, temporary paths) replaced by `*`.
    pub fn program(&self) -> String {
        let exe = if self.exe.is_empty() {
            &self.comm
        } else {
            &self.exe
        };
        let mut out = exe.clone();
        for a in self.cmdline.iter().skip(1).take(8) {
            out.push(' ');
            out.push_str(&arg_pattern(a));
        }
        out
    }
}

/// `--port=8080` → `--port=*`, `/tmp/tmp.x1y2` → `/tmp/*`, `a3f9…` → `*`.
fn arg_pattern(a: &str) -> String {
    if a.starts_with("/tmp/") || a.starts_with("/run/user/") {
        let dir = a.rfind('/').map_or(a, |i| &a[..=i]);
        return format!("{dir}*");
    }
    let mut out = String::with_capacity(a.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.chars().filter(char::is_ascii_digit).count();
        let hex = run.chars().all(|c| c.is_ascii_hexdigit());
        let varies = digits == run.len()
            || (digits > 0 && run.len() >= 8 && hex)
            || (digits > 0 && run.len() >= 16);
        if !run.is_empty() && varies {
            out.push('*');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in a.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The other end of a flow, as rollups keep it: for an outbound flow the
/// remote port is the service; for an inbound one the local port is (the
/// client's port changes with every connection and is not kept).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerDim {
    /// The protocol.
    pub proto: Proto,
    /// `"outbound"`, `"inbound"` or `"unknown"`.
    pub direction: &'static str,
    /// The local address.
    pub laddr: IpAddr,
    /// The remote address.
    pub raddr: IpAddr,
    /// The service port (see above); 0 when there is none.
    pub port: u16,
    /// The network namespace (inode).
    pub netns: u32,
    /// The name the flow's process resolved to `raddr` when the flow
    /// opened (`rname`), else its server name (`sni`); empty if none.
    pub name: String,
    /// Whose answer it was: 0 none, 1 its own (`dns`), 2 another
    /// process's of its namespace (`shared`); 4: no answer named it, the
    /// name is its ClientHello's server name (`sni`).
    pub name_from: u8,
}

/// Bytes and packets of the flow record: payload and wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Payload bytes.
    pub payload: Payload,
    /// IP bytes and packets.
    pub wire: Wire,
}

impl Counters {
    /// What moved since `o`.
    pub fn saturating_sub(self, o: Counters) -> Counters {
        Counters {
            payload: self.payload.saturating_sub(o.payload),
            wire: self.wire.saturating_sub(o.wire),
        }
    }

    /// Add `o`.
    pub fn add(&mut self, o: Counters) {
        *self = Counters {
            payload: self.payload.saturating_add(o.payload),
            wire: self.wire.saturating_add(o.wire),
        };
    }

    /// Whether nothing moved.
    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }

    /// As SQL integers, in the tables' column order (SQLite's integers
    /// are signed; counters saturate).
    pub(crate) fn sql(&self) -> [i64; 6] {
        let (p, w) = (self.payload, self.wire);
        [
            p.bytes_sent,
            p.bytes_recv,
            w.bytes_sent,
            w.bytes_recv,
            w.packets_sent,
            w.packets_recv,
        ]
        .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
    }

    pub(crate) fn from_sql(v: [i64; 6]) -> Counters {
        let [
            bytes_sent,
            bytes_recv,
            wire_sent,
            wire_recv,
            packets_sent,
            packets_recv,
        ] = v.map(|x| u64::try_from(x).unwrap_or(0));
        Counters {
            payload: Payload {
                bytes_sent,
                bytes_recv,
            },
            wire: Wire {
                bytes_sent: wire_sent,
                bytes_recv: wire_recv,
                packets_sent,
                packets_recv,
            },
        }
    }
}

/// A protocol as an SQL integer: the IP protocol number where there is
/// one.
pub fn proto_code(p: Proto) -> i64 {
    match p {
        Proto::Raw(n) => 1000 + i64::from(n),
        Proto::Other(n) => 100_000 + i64::from(n),
        Proto::Packet => -1,
        Proto::Unknown => -2,
        // a named protocol: its number (model's one table)
        named => named.number().map_or(-2, i64::from),
    }
}

/// A protocol from its code in the database.
pub fn proto_from_code(c: i64) -> Proto {
    match c {
        -1 => Proto::Packet,
        0..1000 => u16::try_from(c)
            .ok()
            .and_then(Proto::from_number)
            .unwrap_or(Proto::Unknown),
        1000..100_000 => Proto::Raw(u16::try_from(c - 1000).unwrap_or(0)),
        100_000.. => Proto::Other(u16::try_from(c - 100_000).unwrap_or(0)),
        _ => Proto::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_hide_what_changes_between_runs() {
        let p = |exe: &str, args: &[&str]| ProcDim {
            exe: exe.into(),
            cmdline: std::iter::once(exe)
                .chain(args.iter().copied())
                .map(String::from)
                .collect(),
            ..ProcDim::default()
        };
        assert_eq!(
            p("/usr/bin/curl", &["-s", "https://example.org/x"]).program(),
            "/usr/bin/curl -s https://example.org/x"
        );
        assert_eq!(
            p(
                "/usr/bin/python3",
                &["worker.py", "--id=4711", "/tmp/tmp.Ab12Cd"]
            )
            .program(),
            "/usr/bin/python3 worker.py --id=* /tmp/*"
        );
        assert_eq!(
            p("/bin/x", &["a3f9c0de12345678aa", "v2"]).program(),
            "/bin/x * v2"
        );
    }

    #[test]
    fn every_protocol_has_a_code_that_reads_back() {
        for p in [
            Proto::Tcp,
            Proto::Udp,
            Proto::UdpLite,
            Proto::Icmp,
            Proto::Icmpv6,
            Proto::Sctp,
            Proto::Mptcp,
            Proto::Raw(255),
            Proto::Other(99),
            Proto::Packet,
            Proto::Unknown,
        ] {
            assert_eq!(proto_from_code(proto_code(p)), p);
        }
    }
}
