//! The fleet's record (`docs/specs/fleet.md`): one flow record as a JSON
//! line, every field, each local end's process in full. A daemon
//! publishes these (`netwho daemon --fleet`); the collector reads them
//! back with the same type.

use crate::msg::{Own, Proc, Record};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One flow record (a connection over one period), as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRecord {
    /// Unix milliseconds of the period's first and last traffic.
    pub start_ms: u64,
    /// See `start_ms`.
    pub end_ms: u64,
    /// IANA flowEndReason: 1 idle, 2 active timeout, 3 end of flow, 4
    /// forced (the daemon stopped).
    pub end_reason: u8,
    /// IANA protocol number.
    pub protocol: u8,
    /// SRC is the initiator.
    pub src: IpAddr,
    /// SRC's port.
    pub src_port: u16,
    /// The responder.
    pub dst: IpAddr,
    /// DST's port.
    pub dst_port: u16,
    /// 1: SRC is on this host (it called out), 0: DST is.
    pub direction: u8,
    /// Wire bytes and packets SRC to DST, and back; payload each way.
    pub octets: u64,
    /// See `octets`.
    pub packets: u64,
    /// See `octets`.
    pub rev_octets: u64,
    /// See `octets`.
    pub rev_packets: u64,
    /// See `octets`.
    pub payload: u64,
    /// See `octets`.
    pub rev_payload: u64,
    /// The process at each end that is on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_proc: Option<FleetProc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// See `src_proc`.
    pub dst_proc: Option<FleetProc>,
    /// The connection's Community ID v1 (absent where it has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub community_id: String,
}

/// A local end's process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetProc {
    /// Its pid.
    pub pid: u32,
    /// With the pid, the process's identity (clock ticks since boot).
    pub start_ticks: u64,
    /// Its command name.
    pub name: String,
    /// Its user's name.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its parent's command name.
    pub parent: String,
    /// Its command line.
    pub cmdline: String,
    /// Its systemd unit.
    pub unit: String,
    /// Its container id.
    pub container: String,
    /// Its executable's SHA-256 (hex).
    pub exe_sha256: String,
    /// How it was attributed.
    pub attribution: String,
    /// Bytes.
    pub memory: u64,
    /// See `memory`.
    pub peak_memory: u64,
    /// Percent × 100.
    pub cpu_load: u32,
    /// Major page faults.
    pub page_faults: u64,
    /// Time waiting for I/O, percent × 100.
    pub iowait: u32,
    /// The name this process resolved to the other end (`rname`; since
    /// names, absent in older hosts' records).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rname: String,
    /// `dns`, `shared` or `none` (`rname_source`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rname_source: String,
    /// The server name of its ClientHello (`sni`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sni: String,
    /// The protocols it offered (`alpn`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub alpn: String,
}

impl FleetProc {
    fn new(p: &Proc, own: Option<&Own>) -> Self {
        let own = own.cloned().unwrap_or_default();
        FleetProc {
            pid: p.pid,
            start_ticks: p.start_ticks,
            name: p.name.clone(),
            user: p.user.clone(),
            uid: own.uid,
            ppid: p.father_pid,
            parent: p.father_name.clone(),
            cmdline: own.cmdline,
            unit: own.unit,
            container: own.container,
            exe_sha256: own.exe_sha256,
            attribution: own.attribution,
            memory: p.actual_memory,
            peak_memory: p.peak_memory,
            cpu_load: p.cpu_load,
            page_faults: p.page_faults,
            iowait: p.iowait,
            rname: own.rname,
            rname_source: own.rname_source,
            sni: own.sni,
            alpn: own.alpn,
        }
    }
}

impl From<&Record> for FleetRecord {
    fn from(r: &Record) -> Self {
        // the owner is SRC when it called out, or when both ends are here
        let owner_is_src = r.direction == 1 || r.dst_own.is_some();
        let (src_own, dst_own) = if owner_is_src {
            (Some(&r.own), r.dst_own.as_ref())
        } else {
            (None, Some(&r.own))
        };
        FleetRecord {
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            end_reason: r.end_reason,
            protocol: r.protocol,
            src: plain(r.src),
            src_port: r.src_port,
            dst: plain(r.dst),
            dst_port: r.dst_port,
            direction: r.direction,
            octets: r.octets,
            packets: r.packets,
            rev_octets: r.rev_octets,
            rev_packets: r.rev_packets,
            payload: r.payload,
            rev_payload: r.rev_payload,
            src_proc: r.src_proc.as_ref().map(|p| FleetProc::new(p, src_own)),
            dst_proc: r.dst_proc.as_ref().map(|p| FleetProc::new(p, dst_own)),
            community_id: r.own.community_id.clone(),
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn plain(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

/// The longest record line: well within a NATS message (1 MiB by
/// default) and a batch, whatever its processes' strings hold.
pub const MAX_LINE: usize = 64 * 1024;

/// `s` cut to at most `n` bytes at a character boundary, marked.
fn cut_to(s: &mut String, n: usize) {
    if s.len() <= n {
        return;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

impl FleetProc {
    /// Every text field: what the line's bound cuts and what a collector
    /// checks (one list, so that a new field is in both).
    pub fn texts_mut(&mut self) -> [&mut String; 12] {
        [
            &mut self.name,
            &mut self.user,
            &mut self.parent,
            &mut self.cmdline,
            &mut self.unit,
            &mut self.container,
            &mut self.exe_sha256,
            &mut self.attribution,
            &mut self.rname,
            &mut self.rname_source,
            &mut self.sni,
            &mut self.alpn,
        ]
    }

    fn cut(&mut self, n: usize) {
        for s in self.texts_mut() {
            cut_to(s, n);
        }
    }
}

/// `r` as one JSON line of at most [`MAX_LINE`] bytes: a record whose
/// processes' strings would make it longer has them cut (each to the same
/// bound, halved until it fits). Returns whether it cut anything.
pub fn write_line(r: &Record, out: &mut Vec<u8>) -> bool {
    let mut rec = FleetRecord::from(r);
    let mut line = serde_json::to_vec(&rec).unwrap_or_default();
    let mut bound = 4096;
    let cut = line.len() > MAX_LINE;
    while line.len() > MAX_LINE && bound >= 16 {
        for p in [&mut rec.src_proc, &mut rec.dst_proc].into_iter().flatten() {
            p.cut(bound);
        }
        line = serde_json::to_vec(&rec).unwrap_or_default();
        bound /= 2;
    }
    if !line.is_empty() && line.len() <= MAX_LINE {
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{local, record};

    #[test]
    fn both_ends_keep_their_own_fields_and_read_back() {
        let mut r = local("127.0.0.1", "127.0.0.1");
        r.dst_own = Some(Own {
            uid: 33,
            unit: "nginx.service".into(),
            ..Own::default()
        });
        let mut line = Vec::new();
        write_line(&r, &mut line);
        assert_eq!(line.last(), Some(&b'\n'));
        let back: FleetRecord = serde_json::from_slice(&line).unwrap();
        let (s, d) = (
            back.src_proc.clone().unwrap(),
            back.dst_proc.clone().unwrap(),
        );
        assert_eq!((s.pid, s.uid, s.name.as_str()), (4242, 1000, "curl"));
        assert_eq!((d.pid, d.uid, d.unit.as_str()), (777, 33, "nginx.service"));
        assert_eq!((back.payload, back.rev_payload), (120_000, 650_000));
        assert_eq!(back, FleetRecord::from(&r));
    }

    /// Strings of any length (escaped six times over in JSON) still make
    /// a line within the bound, counted as cut.
    #[test]
    fn a_hostile_record_is_cut_to_a_bounded_line() {
        let mut r = local("127.0.0.1", "127.0.0.1");
        r.own.cmdline = "\u{1}".repeat(1_000_000);
        r.own.unit = "u".repeat(300_000);
        r.dst_own = Some(Own {
            cmdline: "x".repeat(2_000_000),
            ..Own::default()
        });
        let mut line = Vec::new();
        assert!(write_line(&r, &mut line));
        assert!(line.len() <= MAX_LINE + 1, "{}", line.len());
        let back: FleetRecord = serde_json::from_slice(&line).unwrap();
        assert!(back.src_proc.unwrap().cmdline.ends_with('…'));
        assert_eq!(back.payload, 120_000, "the numbers are whole");
        let mut plain = Vec::new();
        assert!(!write_line(&local("127.0.0.1", "127.0.0.1"), &mut plain));
    }

    #[test]
    fn an_inbound_record_gives_the_owner_to_dst() {
        let mut r = record("10.231.1.2", "::ffff:10.231.1.3");
        r.direction = 0;
        r.dst_proc = r.src_proc.take();
        let f = FleetRecord::from(&r);
        assert!(f.src_proc.is_none());
        assert_eq!(f.dst_proc.map(|p| p.uid), Some(1000));
        assert_eq!(f.dst.to_string(), "10.231.1.3");
        let mut line = Vec::new();
        write_line(&r, &mut line);
        assert!(!String::from_utf8(line).unwrap().contains("src_proc"));
    }
}
