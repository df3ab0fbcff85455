//! Community ID v1 (corelight/community-id-spec): one string that names a
//! flow the same way in Zeek, Suricata, Elastic, Arkime and netwho.
//! `docs/specs/flow-record.md` ("community_id") says what netwho hashes
//! for each kind of socket.
//!
//! The hash input, all in network byte order: the seed (2 bytes), the
//! smaller endpoint's address, the other's address (4 or 16 bytes each),
//! the IP protocol number (1 byte), a zero byte, and for port protocols
//! the smaller endpoint's port and the other's (2 bytes each). "Smaller":
//! the address decides, then the port. The id is `1:` and the base64 of
//! the input's SHA-1.

use crate::addr::{Endpoint, Proto};
use crate::flow::Flow;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use std::net::IpAddr;

/// IP protocol numbers the spec gives ports to (ICMP's are its type and
/// the type of the answer, or its code).
const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const SCTP: u8 = 132;

/// What is hashed: the protocol, both ends, and whether the order is
/// fixed (a one-way ICMP message) or the smaller end goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    /// The IP protocol number.
    pub proto: u8,
    /// The source end (its port: the ICMP type, for ICMP).
    pub src: IpAddr,
    /// The destination end.
    pub dst: IpAddr,
    /// Ports (source, destination), for protocols that have them.
    pub ports: Option<(u16, u16)>,
}

impl Tuple {
    /// A tuple as a packet of this protocol shows it. ICMP and ICMPv6
    /// take the message type and code in `ports`, mapped as Zeek maps
    /// them: a request and its answer are one flow.
    pub fn new(proto: u8, src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>) -> Self {
        Tuple {
            proto,
            src,
            dst,
            ports,
        }
    }

    /// The Community ID v1 of this tuple with `seed` (0 unless a site
    /// chose another); None when the two addresses are of different
    /// families.
    pub fn community_id(&self, seed: u16) -> Option<String> {
        let mut ports = self.ports;
        let mut one_way = false;
        if let Some((t, c)) = ports {
            let answer = match self.proto {
                ICMP => icmp_answer(t),
                ICMPV6 => icmpv6_answer(t),
                _ => Some(c),
            };
            if matches!(self.proto, ICMP | ICMPV6) {
                one_way = answer.is_none();
                ports = Some((t, answer.unwrap_or(c)));
            }
        }
        // (on the stack: an id is made for every record)
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        let n = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                a[..4].copy_from_slice(&s.octets());
                b[..4].copy_from_slice(&d.octets());
                4
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                (a, b) = (s.octets(), d.octets());
                16
            }
            _ => return None,
        };
        let (a, b) = (&a[..n], &b[..n]);
        let in_order = one_way
            || a < b
            || (a == b && ports.is_some_and(|(s, d)| s.to_be_bytes() < d.to_be_bytes()));
        let (first, second, ports) = if in_order {
            (a, b, ports)
        } else {
            (b, a, ports.map(|(s, d)| (d, s)))
        };
        let mut h = Sha1::new();
        h.update(seed.to_be_bytes());
        h.update(first);
        h.update(second);
        h.update([self.proto, 0]);
        if let Some((s, d)) = ports {
            h.update(s.to_be_bytes());
            h.update(d.to_be_bytes());
        }
        let mut id = String::with_capacity(30);
        id.push_str("1:");
        base64::engine::general_purpose::STANDARD.encode_string(h.finalize(), &mut id);
        Some(id)
    }
}

/// The type that answers an ICMP message of type `t` (echo, timestamp,
/// information, router solicitation and address mask, both ways); None:
/// a one-way message, whose code is its second "port".
fn icmp_answer(t: u16) -> Option<u16> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        9 => 10,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// The same for ICMPv6: echo, multicast listener query and report,
/// router and neighbor solicitation and advertisement, who-are-you and
/// home agent address discovery.
fn icmpv6_answer(t: u16) -> Option<u16> {
    Some(match t {
        128 => 129,
        129 => 128,
        130 => 131,
        131 => 130,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

/// The tuple of a flow as its packets show it, from its own end; None
/// where the packets' tuple is not known: an `AF_PACKET` socket, a raw
/// socket of a protocol with ports or of ICMP (which message types it
/// sends is not known), a socket's aggregate of many remotes (remote
/// unspecified), a flow whose protocol was lost.
///
/// A ping socket sends echo requests (ICMP type 8, ICMPv6 128) and gets
/// echo replies. MPTCP travels as TCP. UDP-Lite, and raw sockets of other
/// protocols, are hashed as "other IP protocols": addresses and protocol,
/// no ports.
pub fn flow_tuple(f: &Flow) -> Option<Tuple> {
    if f.packet || f.remote.addr.is_unspecified() || f.local.addr.is_unspecified() {
        return None;
    }
    // (the protocol on the wire: MPTCP is TCP; None for AF_PACKET)
    let n = f.proto.ip_number()?;
    let (l, r) = (f.local, f.remote);
    let ports = match f.proto {
        Proto::Unknown => return None,
        Proto::Raw(m) | Proto::Other(m)
            if u8::try_from(m).is_err() || matches!(n, ICMP | TCP | UDP | ICMPV6 | SCTP) =>
        {
            return None;
        }
        Proto::Icmp => Some((8, 0)),
        Proto::Icmpv6 => Some((128, 0)),
        _ if matches!(n, TCP | UDP | SCTP) => Some((l.port, r.port)),
        _ => None,
    };
    Some(Tuple::new(n, l.addr, r.addr, ports))
}

/// A flow's Community ID with `seed` (see [`flow_tuple`] for the flows
/// that have none).
pub fn of_flow(f: &Flow, seed: u16) -> Option<String> {
    flow_tuple(f)?.community_id(seed)
}

/// Both ends of a flow, for callers that hold endpoints rather than a
/// flow (`ports`: whether the protocol's ports are hashed).
pub fn of_endpoints(proto: u8, a: Endpoint, b: Endpoint, ports: bool, seed: u16) -> Option<String> {
    Tuple::new(proto, a.addr, b.addr, ports.then_some((a.port, b.port))).community_id(seed)
}

/// Whether `s` is a Community ID v1 as netwho writes it: `1:` and the 28
/// characters of a SHA-1 in standard base64 (27, then `=`). A fleet
/// collector checks what publishers send with this.
pub fn is_well_formed(s: &str) -> bool {
    let Some(b64) = s.strip_prefix("1:") else {
        return false;
    };
    let b = b64.as_bytes();
    b.len() == 28
        && b[27] == b'='
        && b[..27]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Protocol, source, destination, ports (ICMP: type and code), the id
    /// with seed 0 and with seed 1.
    type Vector = (
        u8,
        &'static str,
        &'static str,
        Option<(u16, u16)>,
        &'static str,
        &'static str,
    );

    /// The reference data of corelight/community-id-spec
    /// (`baseline/baseline_deflt.json` and `baseline_seed1.json`).
    #[rustfmt::skip]
    const BASELINE: &[Vector] = &[
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", Some((135, 136)),
         "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", Some((136, 135)),
         "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", Some((135, 136)),
         "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", Some((136, 135)),
         "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
        (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", Some((3, 0)),
         "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
        (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", Some((1, 4)),
         "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
        (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", Some((128, 129)),
         "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
        (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", Some((129, 128)),
         "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
        (58, "fe80::200:86ff:fe05:80da", "ff02::2", Some((133, 134)),
         "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
        (58, "fe80::260:97ff:fe07:69ea", "ff02::1", Some((134, 133)),
         "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="),
        (1, "192.168.0.89", "192.168.0.1", Some((8, 0)),
         "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "192.168.0.1", "192.168.0.89", Some((0, 8)),
         "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "10.0.0.1", "10.0.0.2", Some((11, 0)),
         "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
        (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", Some((63943, 25)),
         "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", Some((25, 63943)),
         "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        (132, "192.168.170.8", "192.168.170.56", Some((7, 7)),
         "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        (132, "192.168.170.56", "192.168.170.8", Some((7, 7)),
         "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        (6, "128.232.110.120", "66.35.250.204", Some((34855, 80)),
         "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (6, "66.35.250.204", "128.232.110.120", Some((80, 34855)),
         "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (17, "192.168.1.52", "8.8.8.8", Some((54585, 53)),
         "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (17, "8.8.8.8", "192.168.1.52", Some((53, 54585)),
         "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (46, "10.1.12.1", "10.1.12.2", None,
         "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
        (46, "10.1.12.2", "10.1.12.1", None,
         "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    ];

    #[test]
    fn the_specs_reference_data() {
        for &(proto, src, dst, ports, seed0, seed1) in BASELINE {
            let t = Tuple::new(proto, ip(src), ip(dst), ports);
            assert_eq!(t.community_id(0).as_deref(), Some(seed0), "{t:?}");
            assert_eq!(t.community_id(1).as_deref(), Some(seed1), "{t:?} seed 1");
        }
    }

    #[test]
    fn flows_hash_as_their_packets() {
        let mut f = Flow::example(1, 1, Endpoint::new(ip("66.35.250.204"), 80));
        f.local = Endpoint::new(ip("128.232.110.120"), 34855);
        assert_eq!(
            of_flow(&f, 0).as_deref(),
            Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        );
        // MPTCP is TCP on the wire
        f.proto = Proto::Mptcp;
        assert_eq!(
            of_flow(&f, 0).as_deref(),
            Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        );
        // a ping socket's flow is its echo requests and replies
        f.proto = Proto::Icmp;
        f.local = Endpoint::new(ip("192.168.0.89"), 4711);
        f.remote = Endpoint::new(ip("192.168.0.1"), 0);
        assert_eq!(
            of_flow(&f, 0).as_deref(),
            Some("1:X0snYXpgwiv9TZtqg64sgzUn6Dk=")
        );
        // the tuple of these is not known
        for p in [Proto::Raw(1), Proto::Raw(6), Proto::Packet, Proto::Unknown] {
            f.proto = p;
            assert_eq!(of_flow(&f, 0), None, "{p:?}");
        }
        f.proto = Proto::Raw(46);
        f.local = Endpoint::new(ip("10.1.12.2"), 0);
        f.remote = Endpoint::new(ip("10.1.12.1"), 0);
        assert_eq!(
            of_flow(&f, 0).as_deref(),
            Some("1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=")
        );
        // UDP-Lite is hashed without ports; a protocol number past 255
        // is no IP protocol
        f.proto = Proto::UdpLite;
        let no_ports = Tuple::new(136, f.local.addr, f.remote.addr, None).community_id(0);
        assert!(no_ports.is_some());
        assert_eq!(of_flow(&f, 0), no_ports);
        f.proto = Proto::Other(300);
        assert_eq!(of_flow(&f, 0), None);
        // an aggregate of many remotes is not one flow
        f.proto = Proto::Udp;
        f.remote = Endpoint::new(ip("0.0.0.0"), 0);
        assert_eq!(of_flow(&f, 0), None);
    }

    #[test]
    fn what_is_well_formed() {
        for &(.., seed0, seed1) in BASELINE {
            assert!(is_well_formed(seed0) && is_well_formed(seed1), "{seed0}");
        }
        let good = BASELINE[0].4;
        for bad in [
            "",
            "1:",
            &good[..good.len() - 1],
            &format!("{good}A"),
            &good.replacen("1:", "2:", 1),
            &good.replacen('=', "A", 1),
            &good.replacen('G', "\0", 1),
            &good.replacen('G', "\n", 1),
            &good.replacen('G', "é", 1),
            "1:AAAAAAAAAAAAAAAAAAAAAAAAAAA-",
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn mixed_families_have_none() {
        let t = Tuple::new(6, ip("10.0.0.1"), ip("::1"), Some((1, 2)));
        assert_eq!(t.community_id(0), None);
    }
}
