//! The information elements netwho exports: IANA's for the flow itself,
//! ntop's (PEN 35632, the numbers of nProbe's process plugin) for the
//! processes at either end, and netwho's own under a configurable PEN.
//! `docs/specs/ipfix.md` lists them; a test checks the list against this
//! table.

/// ntop's private enterprise number (nProbe's process plugin).
pub const NTOP_PEN: u32 = 35632;
/// NetFlow v9 field types of ntop's elements are this plus the IPFIX id.
pub const NTOP_V9_BASE: u16 = 57472;
/// The enterprise number of netwho's own elements until it has one of its
/// own: 32473 is IANA's number for documentation (RFC 5612). `--pen`
/// changes it.
pub const DEFAULT_NETWHO_PEN: u32 = 32473;
/// NetFlow v9 field types of netwho's own elements start here (a range
/// ntop's do not use).
pub const NETWHO_V9_BASE: u16 = 60000;

/// Who defines an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// IANA.
    Iana,
    /// ntop (PEN 35632), as nProbe's process plugin numbers them.
    Ntop,
    /// netwho (the exporter's PEN).
    Netwho,
}

/// How a value is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Unsigned, big-endian, this many bytes.
    Unsigned(u16),
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// UTF-8 text: variable length in IPFIX; in NetFlow v9 (which has no
    /// variable length) this many bytes, cut at a character boundary and
    /// padded with NULs.
    Text(u16),
}

/// What a value is: the field of a flow record it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum What {
    /// Wire bytes and packets from SRC to DST (IN_) and back (OUT_).
    Octets,
    /// See `Octets`.
    Packets,
    /// See `Octets`.
    RevOctets,
    /// See `Octets`.
    RevPackets,
    /// Payload bytes (exact, netwho's own) from SRC to DST and back.
    Payload,
    /// See `Payload`.
    RevPayload,
    /// IP protocol number.
    Protocol,
    /// SRC's port.
    SrcPort,
    /// DST's port.
    DstPort,
    /// SRC's IPv4 address.
    SrcIpv4,
    /// DST's IPv4 address.
    DstIpv4,
    /// SRC's IPv6 address.
    SrcIpv6,
    /// DST's IPv6 address.
    DstIpv6,
    /// First traffic, Unix ms.
    StartMs,
    /// Last traffic, Unix ms.
    EndMs,
    /// IANA flowEndReason.
    EndReason,
    /// IANA flowDirection.
    Direction,
    /// A process at one end (`Side`) of the flow.
    Proc(Side, ProcWhat),
    /// The local process's uid.
    Uid,
    /// Its systemd unit.
    Unit,
    /// Its container id.
    Container,
    /// Its command line.
    Cmdline,
    /// Its executable's SHA-256.
    ExeSha256,
    /// How it was attributed.
    Attribution,
    /// The flow's Community ID v1.
    CommunityId,
    /// The name the local process resolved to the remote (`rname`).
    Rname,
    /// Whose answer it was (`rname_source`).
    RnameSource,
    /// The server name of its TLS/QUIC ClientHello (`sni`).
    Sni,
    /// The protocols it offered (`alpn`).
    Alpn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// Which end of a flow.
pub enum Side {
    /// The initiator.
    Src,
    /// The responder.
    Dst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// A process element (nProbe's process plugin).
pub enum ProcWhat {
    /// Its pid.
    Pid,
    /// Its command name.
    Name,
    /// Its user's name.
    UserName,
    /// Its parent's pid.
    FatherPid,
    /// Its parent's command name.
    FatherName,
    /// Resident memory now.
    ActualMemory,
    /// Peak resident memory.
    PeakMemory,
    /// CPU load.
    AverageCpuLoad,
    /// Major page faults.
    NumPageFaults,
    /// Time waiting for I/O.
    PctgIowait,
}

/// One information element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ie {
    /// nProbe's template name (`%NAME`) for the ones it has.
    pub name: &'static str,
    /// Who defines it.
    pub owner: Owner,
    /// The IPFIX element id (within its enterprise).
    pub id: u16,
    /// How its value is encoded.
    pub kind: Kind,
    /// What its value is.
    pub what: What,
}

impl Ie {
    /// The NetFlow v9 field type.
    pub fn v9_type(&self) -> u16 {
        match self.owner {
            Owner::Iana => self.id,
            Owner::Ntop => NTOP_V9_BASE + self.id,
            Owner::Netwho => NETWHO_V9_BASE + self.id,
        }
    }
}

const fn iana(name: &'static str, id: u16, kind: Kind, what: What) -> Ie {
    Ie {
        name,
        owner: Owner::Iana,
        id,
        kind,
        what,
    }
}

const fn ntop(name: &'static str, id: u16, kind: Kind, side: Side, w: ProcWhat) -> Ie {
    Ie {
        name,
        owner: Owner::Ntop,
        id,
        kind,
        what: What::Proc(side, w),
    }
}

/// One of ntop's flow elements (not a process's).
const fn ntop_flow(name: &'static str, id: u16, kind: Kind, what: What) -> Ie {
    Ie {
        name,
        owner: Owner::Ntop,
        id,
        kind,
        what,
    }
}

const fn own(name: &'static str, id: u16, kind: Kind, what: What) -> Ie {
    Ie {
        name,
        owner: Owner::Netwho,
        id,
        kind,
        what,
    }
}

use Kind::{Ipv4, Ipv6, Text, Unsigned};
use ProcWhat as P;
use Side::{Dst, Src};

/// Every element netwho can export.
pub const ALL: &[Ie] = &[
    iana("IN_BYTES", 1, Unsigned(8), What::Octets),
    iana("IN_PKTS", 2, Unsigned(8), What::Packets),
    iana("OUT_BYTES", 23, Unsigned(8), What::RevOctets),
    iana("OUT_PKTS", 24, Unsigned(8), What::RevPackets),
    iana("PROTOCOL", 4, Unsigned(1), What::Protocol),
    iana("L4_SRC_PORT", 7, Unsigned(2), What::SrcPort),
    iana("IPV4_SRC_ADDR", 8, Ipv4, What::SrcIpv4),
    iana("L4_DST_PORT", 11, Unsigned(2), What::DstPort),
    iana("IPV4_DST_ADDR", 12, Ipv4, What::DstIpv4),
    iana("IPV6_SRC_ADDR", 27, Ipv6, What::SrcIpv6),
    iana("IPV6_DST_ADDR", 28, Ipv6, What::DstIpv6),
    iana("DIRECTION", 61, Unsigned(1), What::Direction),
    iana("FLOW_END_REASON", 136, Unsigned(1), What::EndReason),
    iana("FLOW_START_MILLISECONDS", 152, Unsigned(8), What::StartMs),
    iana("FLOW_END_MILLISECONDS", 153, Unsigned(8), What::EndMs),
    ntop("SRC_PROC_PID", 168, Unsigned(4), Src, P::Pid),
    ntop("SRC_PROC_NAME", 169, Text(16), Src, P::Name),
    ntop("SRC_PROC_USER_NAME", 372, Text(16), Src, P::UserName),
    ntop("SRC_FATHER_PROC_PID", 373, Unsigned(4), Src, P::FatherPid),
    ntop("SRC_FATHER_PROC_NAME", 374, Text(16), Src, P::FatherName),
    ntop("DST_PROC_PID", 375, Unsigned(4), Dst, P::Pid),
    ntop("DST_PROC_NAME", 376, Text(16), Dst, P::Name),
    ntop("DST_PROC_USER_NAME", 377, Text(16), Dst, P::UserName),
    ntop("DST_FATHER_PROC_PID", 378, Unsigned(4), Dst, P::FatherPid),
    ntop("DST_FATHER_PROC_NAME", 379, Text(16), Dst, P::FatherName),
    ntop(
        "SRC_PROC_ACTUAL_MEMORY",
        383,
        Unsigned(4),
        Src,
        P::ActualMemory,
    ),
    ntop("SRC_PROC_PEAK_MEMORY", 384, Unsigned(4), Src, P::PeakMemory),
    ntop(
        "SRC_PROC_AVERAGE_CPU_LOAD",
        385,
        Unsigned(4),
        Src,
        P::AverageCpuLoad,
    ),
    ntop(
        "SRC_PROC_NUM_PAGE_FAULTS",
        386,
        Unsigned(4),
        Src,
        P::NumPageFaults,
    ),
    ntop(
        "DST_PROC_ACTUAL_MEMORY",
        387,
        Unsigned(4),
        Dst,
        P::ActualMemory,
    ),
    ntop("DST_PROC_PEAK_MEMORY", 388, Unsigned(4), Dst, P::PeakMemory),
    ntop(
        "DST_PROC_AVERAGE_CPU_LOAD",
        389,
        Unsigned(4),
        Dst,
        P::AverageCpuLoad,
    ),
    ntop(
        "DST_PROC_NUM_PAGE_FAULTS",
        390,
        Unsigned(4),
        Dst,
        P::NumPageFaults,
    ),
    ntop("SRC_PROC_PCTG_IOWAIT", 393, Unsigned(4), Src, P::PctgIowait),
    ntop("DST_PROC_PCTG_IOWAIT", 394, Unsigned(4), Dst, P::PctgIowait),
    own("NETWHO_UID", 1, Unsigned(4), What::Uid),
    own("NETWHO_UNIT", 2, Text(64), What::Unit),
    own("NETWHO_CONTAINER_ID", 3, Text(64), What::Container),
    own("NETWHO_CMDLINE", 4, Text(128), What::Cmdline),
    own("NETWHO_EXE_SHA256", 5, Text(64), What::ExeSha256),
    own("NETWHO_ATTRIBUTION", 6, Text(8), What::Attribution),
    own("NETWHO_IN_PAYLOAD_BYTES", 7, Unsigned(8), What::Payload),
    own("NETWHO_OUT_PAYLOAD_BYTES", 8, Unsigned(8), What::RevPayload),
    own("NETWHO_COMMUNITY_ID", 9, Text(32), What::CommunityId),
    ntop_flow("DNS_QUERY", 205, Text(64), What::Rname),
    ntop_flow("TLS_SERVER_NAME", 188, Text(48), What::Sni),
    own("NETWHO_RNAME_SOURCE", 10, Text(8), What::RnameSource),
    own("NETWHO_ALPN", 11, Text(32), What::Alpn),
];

/// The element nProbe's template names `name` (with or without `%`).
pub fn by_name(name: &str) -> Option<&'static Ie> {
    let n = name.strip_prefix('%').unwrap_or(name);
    ALL.iter().find(|ie| ie.name.eq_ignore_ascii_case(n))
}

/// The default template: the 5-tuple, counters and times, both ends'
/// processes as nProbe's plugin exports them, and netwho's own fields.
pub const DEFAULT_TEMPLATE: &str = "%IPV4_SRC_ADDR %IPV4_DST_ADDR %IPV6_SRC_ADDR %IPV6_DST_ADDR \
%L4_SRC_PORT %L4_DST_PORT %PROTOCOL %IN_BYTES %IN_PKTS %OUT_BYTES %OUT_PKTS \
%FLOW_START_MILLISECONDS \
%FLOW_END_MILLISECONDS %FLOW_END_REASON %DIRECTION \
%SRC_PROC_PID %SRC_PROC_NAME %SRC_PROC_USER_NAME %SRC_FATHER_PROC_PID %SRC_FATHER_PROC_NAME \
%SRC_PROC_ACTUAL_MEMORY %SRC_PROC_PEAK_MEMORY %SRC_PROC_AVERAGE_CPU_LOAD \
%SRC_PROC_NUM_PAGE_FAULTS %SRC_PROC_PCTG_IOWAIT \
%DST_PROC_PID %DST_PROC_NAME %DST_PROC_USER_NAME %DST_FATHER_PROC_PID %DST_FATHER_PROC_NAME \
%DST_PROC_ACTUAL_MEMORY %DST_PROC_PEAK_MEMORY %DST_PROC_AVERAGE_CPU_LOAD \
%DST_PROC_NUM_PAGE_FAULTS %DST_PROC_PCTG_IOWAIT \
%NETWHO_UID %NETWHO_UNIT %NETWHO_CONTAINER_ID %NETWHO_CMDLINE %NETWHO_EXE_SHA256 %NETWHO_ATTRIBUTION \
%NETWHO_IN_PAYLOAD_BYTES %NETWHO_OUT_PAYLOAD_BYTES %NETWHO_COMMUNITY_ID \
%DNS_QUERY %TLS_SERVER_NAME %NETWHO_RNAME_SOURCE %NETWHO_ALPN";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
/// A `--template` that cannot be used.
pub enum TemplateError {
    #[error("'{0}' is not an element netwho exports (docs/specs/ipfix.md lists them)")]
    /// An element netwho does not export.
    Unknown(String),
    #[error("'{0}' is in the template twice")]
    /// An element given twice.
    Twice(&'static str),
    #[error("the template is empty")]
    /// No element.
    Empty,
}

/// A template as nProbe's `-T` takes it: element names separated by
/// spaces, each with or without `%`.
pub fn parse_template(spec: &str) -> Result<Vec<&'static Ie>, TemplateError> {
    let mut out: Vec<&'static Ie> = Vec::new();
    for word in spec.split_whitespace() {
        let ie = by_name(word).ok_or_else(|| TemplateError::Unknown(word.to_string()))?;
        if out.iter().any(|o| o.name == ie.name) {
            return Err(TemplateError::Twice(ie.name));
        }
        out.push(ie);
    }
    if out.is_empty() {
        return Err(TemplateError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ntop_numbers_are_nprobes() {
        // from nProbe's process plugin documentation ([NFv9 N][IPFIX 35632.M])
        for (name, v9, id) in [
            ("SRC_PROC_PID", 57640, 168),
            ("SRC_PROC_NAME", 57641, 169),
            ("SRC_PROC_USER_NAME", 57844, 372),
            ("SRC_FATHER_PROC_PID", 57845, 373),
            ("SRC_FATHER_PROC_NAME", 57846, 374),
            ("SRC_PROC_ACTUAL_MEMORY", 57855, 383),
            ("SRC_PROC_PEAK_MEMORY", 57856, 384),
            ("SRC_PROC_AVERAGE_CPU_LOAD", 57857, 385),
            ("SRC_PROC_NUM_PAGE_FAULTS", 57858, 386),
            ("SRC_PROC_PCTG_IOWAIT", 57865, 393),
            ("DST_PROC_PID", 57847, 375),
            ("DST_PROC_NAME", 57848, 376),
            ("DST_PROC_USER_NAME", 57849, 377),
            ("DST_FATHER_PROC_PID", 57850, 378),
            ("DST_FATHER_PROC_NAME", 57851, 379),
            ("DST_PROC_ACTUAL_MEMORY", 57859, 387),
            ("DST_PROC_PEAK_MEMORY", 57860, 388),
            ("DST_PROC_AVERAGE_CPU_LOAD", 57861, 389),
            ("DST_PROC_NUM_PAGE_FAULTS", 57862, 390),
            ("DST_PROC_PCTG_IOWAIT", 57866, 394),
            // and from nProbe's own element list (`nprobe -H`)
            ("DNS_QUERY", 57677, 205),
            ("TLS_SERVER_NAME", 57660, 188),
        ] {
            let ie = by_name(name).unwrap();
            assert_eq!(
                (ie.owner, ie.id, ie.v9_type()),
                (Owner::Ntop, id, v9),
                "{name}"
            );
        }
    }

    #[test]
    fn templates_parse_and_mistakes_are_named() {
        let t = parse_template(DEFAULT_TEMPLATE).unwrap();
        assert_eq!(t.len(), ALL.len());
        let t = parse_template("%IPV4_SRC_ADDR l4_dst_port").unwrap();
        assert_eq!(t[1].id, 11);
        assert_eq!(
            parse_template("%IPV4_SRC_ADR"),
            Err(TemplateError::Unknown("%IPV4_SRC_ADR".into()))
        );
        assert_eq!(
            parse_template("%IN_BYTES %IN_BYTES"),
            Err(TemplateError::Twice("IN_BYTES"))
        );
        assert_eq!(parse_template(" "), Err(TemplateError::Empty));
        // every name is unique, and so is every (owner, id)
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!((a.owner, a.id), (b.owner, b.id), "{}", a.name);
            }
        }
    }
}
