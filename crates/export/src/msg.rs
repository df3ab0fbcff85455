//! Flow records to IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) messages.
//! Pure: records and times in, bytes out; the caller sends them.

use crate::ie::{Ie, Kind, Owner, ProcWhat, Side, What};
use std::net::IpAddr;

/// IPFIX or NetFlow v9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// IPFIX (RFC 7011).
    Ipfix,
    /// NetFlow v9 (RFC 3954).
    V9,
}

/// A process at one end of a flow, as nProbe's plugin describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proc {
    /// Its pid.
    pub pid: u32,
    /// When it started, clock ticks since boot (with the pid, its
    /// identity; not exported over IPFIX).
    pub start_ticks: u64,
    /// Its command name.
    pub name: String,
    /// Its user's name.
    pub user: String,
    /// Its parent's pid.
    pub father_pid: u32,
    /// Its parent's command name.
    pub father_name: String,
    /// Resident memory now and at its peak, bytes.
    pub actual_memory: u64,
    /// See `actual_memory`.
    pub peak_memory: u64,
    /// CPU load over the flow's life, percent × 100.
    pub cpu_load: u32,
    /// Major page faults.
    pub page_faults: u64,
    /// Time waiting for I/O, percent × 100.
    pub iowait: u32,
}

/// One exported flow record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The initiator's address.
    pub src: IpAddr,
    /// The responder's.
    pub dst: IpAddr,
    /// SRC's port.
    pub src_port: u16,
    /// DST's port.
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// Wire (IP-level) bytes and packets from SRC to DST, since the
    /// flow's previous record.
    pub octets: u64,
    /// See `octets`.
    pub packets: u64,
    /// ... and from DST to SRC.
    pub rev_octets: u64,
    /// See `rev_octets`.
    pub rev_packets: u64,
    /// Payload bytes from SRC to DST and back, since the previous record.
    pub payload: u64,
    /// See `payload`.
    pub rev_payload: u64,
    /// Unix milliseconds.
    pub start_ms: u64,
    /// See `start_ms`.
    pub end_ms: u64,
    /// IANA flowEndReason: 1 idle timeout, 2 active timeout, 3 end of
    /// flow, 4 forced end.
    pub end_reason: u8,
    /// IANA flowDirection: 0 ingress, 1 egress (seen from this host).
    pub direction: u8,
    /// The initiator's process, when it is on this host.
    pub src_proc: Option<Proc>,
    /// The responder's, when it is on this host.
    pub dst_proc: Option<Proc>,
    /// The owner's (the initiator's when both ends are local) own fields.
    pub own: Own,
    /// The responder's own fields, when both ends are local.
    pub dst_own: Option<Own>,
}

/// netwho's own fields of a flow's local process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Own {
    /// Its uid.
    pub uid: u32,
    /// Its systemd unit.
    pub unit: String,
    /// Its container id.
    pub container: String,
    /// Its command line.
    pub cmdline: String,
    /// Its executable's SHA-256 (hex).
    pub exe_sha256: String,
    /// How it was attributed.
    pub attribution: String,
    /// The flow's Community ID v1 (empty where it has none).
    pub community_id: String,
    /// The name its process resolved to the remote (empty: none).
    pub rname: String,
    /// `dns`, `shared`, `none`, or empty.
    pub rname_source: String,
    /// The server name of its ClientHello (empty: none).
    pub sni: String,
    /// The protocols it offered (empty: none).
    pub alpn: String,
}

/// Builds messages for one template, keeping the sequence numbers.
#[derive(Debug)]
pub struct Encoder {
    version: Version,
    fields: Vec<&'static Ie>,
    template_id: u16,
    pen: u32,
    domain: u32,
    /// IPFIX: data records sent; v9: messages sent.
    sequence: u32,
    /// Text values cut so that their record fits a message.
    pub truncated: u64,
}

/// The one template's id (the first a data set may use).
pub const TEMPLATE_ID: u16 = 256;

impl Encoder {
    /// `pen`: the enterprise number of netwho's own elements; `domain`:
    /// the observation domain (IPFIX) or source id (v9).
    pub fn new(version: Version, fields: Vec<&'static Ie>, pen: u32, domain: u32) -> Encoder {
        Encoder {
            version,
            fields,
            template_id: TEMPLATE_ID,
            pen,
            domain,
            sequence: 0,
            truncated: 0,
        }
    }

    /// IPFIX: the most bytes one text value may take so that a record,
    /// however long its process's strings (a command line of megabytes),
    /// fits a message of `max_len` bytes whose lengths all stay within 16
    /// bits: what the fixed-size fields leave, shared by the text fields.
    fn text_budget(&self, max_len: usize) -> usize {
        let texts = self
            .fields
            .iter()
            .filter(|ie| matches!(ie.kind, Kind::Text(_)))
            .count();
        if texts == 0 {
            return 0;
        }
        let fixed: usize = self
            .fields
            .iter()
            .map(|ie| match ie.kind {
                // the longest length prefix
                Kind::Text(_) => 3,
                k => usize::from(v9_len(k)),
            })
            .sum();
        let room = max_len.min(65_535).saturating_sub(16 + 4 + fixed);
        room / texts
    }

    fn pen_of(&self, ie: &Ie) -> Option<u32> {
        match ie.owner {
            Owner::Iana => None,
            Owner::Ntop => Some(crate::ie::NTOP_PEN),
            Owner::Netwho => Some(self.pen),
        }
    }

    /// The template set (IPFIX set 2, v9 flowset 0).
    pub fn template_set(&self) -> Vec<u8> {
        let mut b = Vec::new();
        let set_id: u16 = match self.version {
            Version::Ipfix => 2,
            Version::V9 => 0,
        };
        put16(&mut b, set_id);
        put16(&mut b, 0); // length, below
        put16(&mut b, self.template_id);
        put16(&mut b, self.fields.len() as u16);
        for ie in &self.fields {
            match self.version {
                Version::Ipfix => {
                    let pen = self.pen_of(ie);
                    put16(&mut b, ie.id | if pen.is_some() { 0x8000 } else { 0 });
                    put16(&mut b, ipfix_len(ie.kind));
                    if let Some(p) = pen {
                        put32(&mut b, p);
                    }
                }
                Version::V9 => {
                    put16(&mut b, ie.v9_type());
                    put16(&mut b, v9_len(ie.kind));
                }
            }
        }
        set_len(&mut b);
        b
    }

    /// One record's bytes; an IPFIX text longer than `text_max` is cut.
    fn record(&mut self, r: &Record, out: &mut Vec<u8>, text_max: usize) {
        for ie in &self.fields {
            let v = value(r, ie.what);
            match (ie.kind, v) {
                (Kind::Unsigned(n), Value::Num(x)) => {
                    let bytes = x.to_be_bytes();
                    let n = usize::from(n).min(8);
                    // values too large for the field saturate
                    if n < 8 && x >> (n * 8) != 0 {
                        out.extend(std::iter::repeat_n(0xff, n));
                    } else {
                        out.extend_from_slice(&bytes[8 - n..]);
                    }
                }
                (Kind::Ipv4, Value::Addr(a)) => out.extend_from_slice(&match a {
                    IpAddr::V4(v4) => v4.octets(),
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or([0; 4], |v4| v4.octets()),
                }),
                (Kind::Ipv6, Value::Addr(a)) => out.extend_from_slice(&match a {
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => v6.octets(),
                    _ => [0; 16],
                }),
                (Kind::Text(n), Value::Text(t)) => match self.version {
                    Version::Ipfix => {
                        let t0 = t;
                        let t = cut(t, text_max.min(65_535));
                        if t.len() < t0.len() {
                            self.truncated += 1;
                        }
                        if t.len() < 255 {
                            out.push(t.len() as u8);
                        } else {
                            out.push(255);
                            put16(out, t.len() as u16);
                        }
                        out.extend_from_slice(t.as_bytes());
                    }
                    Version::V9 => {
                        // (v9 fields have the template's fixed size)
                        let t = cut(t, usize::from(n));
                        out.extend_from_slice(t.as_bytes());
                        out.extend(std::iter::repeat_n(0, usize::from(n) - t.len()));
                    }
                },
                // a mismatch cannot come from the table; keep the length right
                (kind, _) => out.extend(std::iter::repeat_n(0, usize::from(v9_len(kind)))),
            }
        }
    }

    /// Messages of at most `max_len` bytes (a record that does not fit
    /// alone gets a message of its own) holding `records`, the template
    /// first when `template` is set (or there are no records).
    /// `export_s`: Unix seconds now; `uptime_ms`: ms since the exporter
    /// started (v9's sysUptime).
    pub fn messages(
        &mut self,
        records: &[Record],
        template: bool,
        export_s: u32,
        uptime_ms: u32,
        max_len: usize,
    ) -> Vec<Vec<u8>> {
        self.counted(records, template, export_s, uptime_ms, max_len)
            .into_iter()
            .map(|(m, _)| m)
            .collect()
    }

    /// [`messages`](Self::messages), each with the number of data
    /// records it holds.
    pub fn counted(
        &mut self,
        records: &[Record],
        template: bool,
        export_s: u32,
        uptime_ms: u32,
        max_len: usize,
    ) -> Vec<(Vec<u8>, u16)> {
        let head_len = match self.version {
            Version::Ipfix => 16,
            Version::V9 => 20,
        };
        let mut out = Vec::new();
        let mut body: Vec<u8> = Vec::new();
        let mut count: u16 = 0;
        let mut data: Vec<u8> = Vec::new();
        let mut in_data: u16 = 0;
        if template {
            body = self.template_set();
            count = 1;
        }
        let text_max = self.text_budget(max_len);
        for r in records {
            let mut one = Vec::new();
            self.record(r, &mut one, text_max);
            let data_len = if data.is_empty() { 4 } else { data.len() };
            let would = head_len + body.len() + data_len + one.len() + 3;
            if (in_data > 0 || !body.is_empty()) && would > max_len {
                self.close_data(&mut body, &mut data);
                out.push((
                    self.finish(&body, count, in_data, export_s, uptime_ms),
                    in_data,
                ));
                body.clear();
                count = 0;
                in_data = 0;
            }
            if data.is_empty() {
                put16(&mut data, self.template_id);
                put16(&mut data, 0);
            }
            data.extend_from_slice(&one);
            in_data += 1;
            count += 1;
        }
        self.close_data(&mut body, &mut data);
        if !body.is_empty() {
            out.push((
                self.finish(&body, count, in_data, export_s, uptime_ms),
                in_data,
            ));
        }
        out
    }

    /// The data set in `data` (if any) closed (length, v9 padding) and
    /// appended to `body`.
    fn close_data(&self, body: &mut Vec<u8>, data: &mut Vec<u8>) {
        if data.is_empty() {
            return;
        }
        if self.version == Version::V9 {
            while !data.len().is_multiple_of(4) {
                data.push(0);
            }
        }
        set_len(data);
        body.append(data);
    }

    /// A message: the header and `body`. `count`: v9's record count
    /// (template and data records); IPFIX's sequence number counts the
    /// `data` records.
    fn finish(
        &mut self,
        body: &[u8],
        count: u16,
        data: u16,
        export_s: u32,
        uptime_ms: u32,
    ) -> Vec<u8> {
        let mut m = Vec::with_capacity(body.len() + 20);
        match self.version {
            Version::Ipfix => {
                put16(&mut m, 10);
                put16(&mut m, (16 + body.len()) as u16);
                put32(&mut m, export_s);
                put32(&mut m, self.sequence);
                put32(&mut m, self.domain);
                self.sequence = self.sequence.wrapping_add(u32::from(data));
            }
            Version::V9 => {
                put16(&mut m, 9);
                put16(&mut m, count);
                put32(&mut m, uptime_ms);
                put32(&mut m, export_s);
                put32(&mut m, self.sequence);
                put32(&mut m, self.domain);
                self.sequence = self.sequence.wrapping_add(1);
            }
        }
        m.extend_from_slice(body);
        m
    }
}

/// The smallest message that holds one NetFlow v9 record of `template`
/// (v9 fields have fixed sizes: a message cannot be smaller).
pub fn v9_min_message(template: &[&Ie]) -> usize {
    let record: usize = template.iter().map(|ie| usize::from(v9_len(ie.kind))).sum();
    20 + 4 + record.next_multiple_of(4)
}

/// A field's length in an IPFIX template (65535: variable).
fn ipfix_len(k: Kind) -> u16 {
    match k {
        Kind::Text(_) => 65_535,
        k => v9_len(k),
    }
}

fn v9_len(k: Kind) -> u16 {
    match k {
        Kind::Unsigned(n) | Kind::Text(n) => n,
        Kind::Ipv4 => 4,
        Kind::Ipv6 => 16,
    }
}

/// One element's value in a record.
#[derive(Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Num(u64),
    Addr(IpAddr),
    Text(&'a str),
}

pub(crate) fn value(r: &Record, w: What) -> Value<'_> {
    let proc = |s: Side| match s {
        Side::Src => r.src_proc.as_ref(),
        Side::Dst => r.dst_proc.as_ref(),
    };
    match w {
        What::Octets => Value::Num(r.octets),
        What::Packets => Value::Num(r.packets),
        What::RevOctets => Value::Num(r.rev_octets),
        What::RevPackets => Value::Num(r.rev_packets),
        What::Payload => Value::Num(r.payload),
        What::RevPayload => Value::Num(r.rev_payload),
        What::Protocol => Value::Num(u64::from(r.protocol)),
        What::SrcPort => Value::Num(u64::from(r.src_port)),
        What::DstPort => Value::Num(u64::from(r.dst_port)),
        What::SrcIpv4 | What::SrcIpv6 => Value::Addr(r.src),
        What::DstIpv4 | What::DstIpv6 => Value::Addr(r.dst),
        What::StartMs => Value::Num(r.start_ms),
        What::EndMs => Value::Num(r.end_ms),
        What::EndReason => Value::Num(u64::from(r.end_reason)),
        What::Direction => Value::Num(u64::from(r.direction)),
        What::Proc(side, pw) => match (proc(side), pw) {
            (None, ProcWhat::Name | ProcWhat::UserName | ProcWhat::FatherName) => Value::Text(""),
            (None, _) => Value::Num(0),
            (Some(p), ProcWhat::Pid) => Value::Num(u64::from(p.pid)),
            (Some(p), ProcWhat::Name) => Value::Text(&p.name),
            (Some(p), ProcWhat::UserName) => Value::Text(&p.user),
            (Some(p), ProcWhat::FatherPid) => Value::Num(u64::from(p.father_pid)),
            (Some(p), ProcWhat::FatherName) => Value::Text(&p.father_name),
            (Some(p), ProcWhat::ActualMemory) => Value::Num(p.actual_memory),
            (Some(p), ProcWhat::PeakMemory) => Value::Num(p.peak_memory),
            (Some(p), ProcWhat::AverageCpuLoad) => Value::Num(u64::from(p.cpu_load)),
            (Some(p), ProcWhat::NumPageFaults) => Value::Num(p.page_faults),
            (Some(p), ProcWhat::PctgIowait) => Value::Num(u64::from(p.iowait)),
        },
        What::Uid => Value::Num(u64::from(r.own.uid)),
        What::Unit => Value::Text(&r.own.unit),
        What::Container => Value::Text(&r.own.container),
        What::Cmdline => Value::Text(&r.own.cmdline),
        What::ExeSha256 => Value::Text(&r.own.exe_sha256),
        What::Attribution => Value::Text(&r.own.attribution),
        What::CommunityId => Value::Text(&r.own.community_id),
        What::Rname => Value::Text(&r.own.rname),
        What::RnameSource => Value::Text(&r.own.rname_source),
        What::Sni => Value::Text(&r.own.sni),
        What::Alpn => Value::Text(&r.own.alpn),
    }
}

/// `s` cut to at most `n` bytes at a character boundary.
fn cut(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}

/// Writes a set's length (bytes 2..4) from its size.
fn set_len(b: &mut [u8]) {
    let len = (b.len() as u16).to_be_bytes();
    b[2] = len[0];
    b[3] = len[1];
}
