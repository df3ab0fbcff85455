//! Addresses, protocols and TCP states, decoded from the kernel's numbers.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address and port as this host sees them. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) are stored as IPv4: a dual-stack socket talking to an
/// IPv4 peer is an IPv4 flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// The address (IPv4-mapped IPv6 stored as IPv4).
    pub addr: IpAddr,
    /// The port (0 where there is none).
    pub port: u16,
}

impl Endpoint {
    /// An endpoint (the address normalized).
    pub fn new(addr: IpAddr, port: u16) -> Self {
        Endpoint {
            addr: normalize(addr),
            port,
        }
    }

    /// From the kernel's 16-byte form (IPv4 stored mapped).
    pub fn from_kernel(addr: [u8; 16], port: u16) -> Self {
        Endpoint::new(IpAddr::V6(Ipv6Addr::from(addr)), port)
    }

    /// No address and no port: unknown.
    pub fn unspecified() -> Self {
        Endpoint::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    }

    /// The 16-byte kernel form, IPv4 mapped.
    pub fn addr_bytes(&self) -> [u8; 16] {
        match self.addr {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        }
    }

    /// IPv4 or IPv6.
    pub fn family(&self) -> Family {
        match self.addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Whether the address is unspecified (`0.0.0.0`, `::`).
    pub fn is_unspecified(&self) -> bool {
        self.addr.is_unspecified()
    }
}

/// An address as `IpAddr`'s `Display` writes it; IPv4 (most records have
/// two) without fmt.
pub fn ip_string(a: IpAddr) -> String {
    let IpAddr::V4(v4) = a else {
        return a.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(itoa::Buffer::new().format(o));
    }
    s
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

fn normalize(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Address family as records name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// AF_PACKET: link-layer frames, no IP addresses.
    Packet,
}

impl Family {
    /// `ipv4` or `ipv6`, as records say it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
            Family::Packet => "packet",
        }
    }
}

const AF_PACKET: u16 = 17;
const SOCK_RAW: u16 = 3;

/// Transport protocol of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// UDP-Lite.
    UdpLite,
    /// ICMP (ping sockets).
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// SCTP.
    Sctp,
    /// MPTCP.
    Mptcp,
    /// A raw IP socket (SOCK_RAW) for another protocol number.
    Raw(u16),
    /// Another protocol on a non-raw socket (named `ip-N`).
    Other(u16),
    /// AF_PACKET frames.
    Packet,
    /// Counters arrived for a flow whose open event was lost.
    #[default]
    Unknown,
}

/// The protocols netwho names: name, the socket's protocol number, variant.
/// The one table: socket decoding, record names, the filter's values, the
/// kernel scope's numbers and the history's codes all come from it.
pub const NAMED_PROTOS: &[(&str, u16, Proto)] = &[
    ("tcp", 6, Proto::Tcp),
    ("udp", 17, Proto::Udp),
    ("udplite", 136, Proto::UdpLite),
    ("icmp", 1, Proto::Icmp),
    ("icmpv6", 58, Proto::Icmpv6),
    ("sctp", 132, Proto::Sctp),
    ("mptcp", 262, Proto::Mptcp),
];

/// Every protocol name a record can carry for a filter to match (the
/// named ones, then raw sockets and AF_PACKET; `ip-N` is matched by
/// number). A test checks it against [`NAMED_PROTOS`].
pub const PROTO_NAMES: &[&str] = &[
    "tcp", "udp", "udplite", "icmp", "icmpv6", "sctp", "mptcp", "raw", "packet",
];

impl Proto {
    /// From the socket's family, type and protocol number.
    pub fn from_socket(family: u16, sock_type: u16, protocol: u16) -> Self {
        if family == AF_PACKET {
            return Proto::Packet;
        }
        match Proto::from_number(protocol) {
            Some(p) => p,
            None if sock_type == SOCK_RAW => Proto::Raw(protocol),
            None => Proto::Other(protocol),
        }
    }

    /// A named protocol by its socket protocol number.
    pub fn from_number(n: u16) -> Option<Proto> {
        NAMED_PROTOS
            .iter()
            .find(|(_, num, _)| *num == n)
            .map(|(_, _, p)| *p)
    }

    /// A protocol by its name (`packet` included).
    pub fn from_name(name: &str) -> Option<Proto> {
        if name == "packet" {
            return Some(Proto::Packet);
        }
        NAMED_PROTOS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, p)| *p)
    }

    /// The socket protocol number of a named protocol.
    pub fn number(self) -> Option<u16> {
        NAMED_PROTOS
            .iter()
            .find(|(_, _, p)| *p == self)
            .map(|(_, n, _)| *n)
    }

    /// The name records carry (`tcp`, ..., `ip-N`, `unknown`).
    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Proto::Raw(_) => "raw",
            Proto::Other(n) => return Cow::Owned(format!("ip-{n}")),
            Proto::Packet => "packet",
            Proto::Unknown => "unknown",
            named => NAMED_PROTOS
                .iter()
                .find(|(_, _, p)| *p == named)
                .map_or("unknown", |(n, _, _)| n),
        })
    }

    /// IANA's protocol number, as flow records carry it (MPTCP is TCP on
    /// the wire); None for AF_PACKET frames (other hosts' traffic).
    pub fn ip_number(self) -> Option<u8> {
        Some(match self {
            // on the wire
            Proto::Mptcp => 6,
            Proto::Raw(n) | Proto::Other(n) => u8::try_from(n).unwrap_or(255),
            Proto::Unknown => 0,
            Proto::Packet => return None,
            named => named
                .number()
                .and_then(|n| u8::try_from(n).ok())
                .unwrap_or(0),
        })
    }

    /// From an IANA protocol number (a flow record's).
    pub fn from_ip_number(n: u8) -> Self {
        match n {
            0 => Proto::Unknown,
            n => Proto::from_socket(0, 0, u16::from(n)),
        }
    }

    /// TCP-like: the flow has a state machine and ends at TCP_CLOSE.
    pub fn is_stream(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Mptcp)
    }
}

/// The kernel's TCP states (include/net/tcp_states.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// `ESTABLISHED`.
    Established,
    /// `SYN_SENT`.
    SynSent,
    /// `SYN_RECV`.
    SynRecv,
    /// `FIN_WAIT1`.
    FinWait1,
    /// `FIN_WAIT2`.
    FinWait2,
    /// `TIME_WAIT`.
    TimeWait,
    /// `CLOSE`.
    Close,
    /// `CLOSE_WAIT`.
    CloseWait,
    /// `LAST_ACK`.
    LastAck,
    /// `LISTEN`.
    Listen,
    /// `CLOSING`.
    Closing,
    /// `NEW_SYN_RECV`.
    NewSynRecv,
}

impl TryFrom<u8> for TcpState {
    type Error = u8;

    fn try_from(v: u8) -> Result<Self, u8> {
        Ok(match v {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            other => return Err(other),
        })
    }
}

impl TcpState {
    /// The name `ss` and the kernel use.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_table_is_one() {
        for (name, num, p) in NAMED_PROTOS {
            assert_eq!(p.name(), *name);
            assert_eq!(Proto::from_name(name), Some(*p));
            assert_eq!(Proto::from_number(*num), Some(*p));
            assert_eq!(Proto::from_socket(2, 1, *num), *p);
            assert!(PROTO_NAMES.contains(name), "{name} is not a filter value");
        }
        let named = NAMED_PROTOS.len();
        assert_eq!(PROTO_NAMES.len(), named + 2, "and raw, packet");
        assert_eq!(PROTO_NAMES[named..], ["raw", "packet"]);
        assert_eq!(Proto::from_socket(2, 3, 89), Proto::Raw(89));
        assert_eq!(Proto::from_socket(2, 2, 89), Proto::Other(89));
        assert_eq!(Proto::from_name("packet"), Some(Proto::Packet));
        assert_eq!(Proto::from_name("ip-89"), None);
    }

    #[test]
    fn ip_numbers_go_both_ways() {
        for p in [
            Proto::Tcp,
            Proto::Udp,
            Proto::UdpLite,
            Proto::Icmp,
            Proto::Icmpv6,
            Proto::Sctp,
            Proto::Other(47),
            Proto::Unknown,
        ] {
            assert_eq!(Proto::from_ip_number(p.ip_number().unwrap()), p);
        }
        assert_eq!(Proto::Mptcp.ip_number(), Some(6));
        assert_eq!(Proto::Packet.ip_number(), None);
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let mut b = [0u8; 16];
        b[10] = 0xff;
        b[11] = 0xff;
        b[12..].copy_from_slice(&[10, 231, 0, 1]);
        let e = Endpoint::from_kernel(b, 80);
        assert_eq!(e.addr, IpAddr::V4(Ipv4Addr::new(10, 231, 0, 1)));
        assert_eq!(e.family(), Family::Ipv4);
        assert_eq!(e.addr_bytes(), b);
        assert_eq!(e.to_string(), "10.231.0.1:80");
    }

    #[test]
    fn ipv6_stays_ipv6() {
        let a: Ipv6Addr = "fd00:231::2".parse().unwrap();
        let e = Endpoint::from_kernel(a.octets(), 443);
        assert_eq!(e.family(), Family::Ipv6);
        assert_eq!(e.to_string(), "[fd00:231::2]:443");
    }

    #[test]
    fn unspecified_in_both_forms() {
        assert!(Endpoint::from_kernel([0; 16], 0).is_unspecified());
        let mut mapped_zero = [0u8; 16];
        mapped_zero[10] = 0xff;
        mapped_zero[11] = 0xff;
        assert!(Endpoint::from_kernel(mapped_zero, 0).is_unspecified());
    }

    #[test]
    fn protocols_and_states_decode() {
        assert_eq!(Proto::from_socket(2, 1, 6), Proto::Tcp);
        assert_eq!(Proto::from_socket(10, 2, 17), Proto::Udp);
        assert_eq!(Proto::from_socket(2, 2, 1), Proto::Icmp);
        assert_eq!(Proto::from_socket(2, 3, 253).name(), "raw");
        assert_eq!(Proto::from_socket(17, 3, 0x0300), Proto::Packet);
        assert_eq!(TcpState::try_from(1), Ok(TcpState::Established));
        assert_eq!(TcpState::try_from(7).map(TcpState::name), Ok("CLOSE"));
        assert_eq!(TcpState::try_from(99), Err(99));
    }

    proptest::proptest! {
        #[test]
        fn an_address_is_written_as_display_writes_it(
            v4 in proptest::prelude::any::<u32>(),
            v6 in proptest::prelude::any::<u128>(),
        ) {
            let a = IpAddr::V4(Ipv4Addr::from(v4));
            proptest::prop_assert_eq!(ip_string(a), a.to_string());
            let b = IpAddr::V6(Ipv6Addr::from(v6));
            proptest::prop_assert_eq!(ip_string(b), b.to_string());
        }
    }

    #[test]
    fn addresses_at_the_edges_are_written_as_display_writes_them() {
        for a in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.5",
            "1.20.100.200",
            "::",
            "::ffff:10.0.0.1",
        ] {
            let a: IpAddr = a.parse().expect("an address");
            assert_eq!(ip_string(a), a.to_string());
        }
    }
}
