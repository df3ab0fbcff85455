//! DNS answers: the name a process asked for and the addresses it was
//! given, CNAME chains followed (`www.a.example` → `a.cdn.example` →
//! 192.0.2.7 names 192.0.2.7 `www.a.example`: what the process asked for).

use std::net::IpAddr;

/// Addresses taken from one answer at most (the rest are counted).
pub const MAX_ADDRS: usize = 64;
/// CNAME links followed at most.
pub const MAX_CHAIN: usize = 16;

/// Why an answer gave no addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// Shorter than a DNS header, or its counts claim more records than
    /// its bytes could hold.
    Malformed,
    /// A query, not an answer.
    NotAnswer,
    /// The answer was cut (the kernel kept its first 2 KiB, or the server
    /// set TC) and what remains does not parse.
    Truncated,
    /// An error code (NXDOMAIN, SERVFAIL, ...) or no question.
    Refused,
}

/// What one answer says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// The name asked for (printable, lowercase, no trailing dot).
    pub name: String,
    /// Each address the chain ends in, with its TTL in seconds.
    pub addrs: Vec<(IpAddr, u32)>,
    /// Addresses past [`MAX_ADDRS`], not taken.
    pub dropped: usize,
}

const HEADER: usize = 12;
/// The smallest question (root name, type, class) and resource record
/// (root name, type, class, TTL, length).
const MIN_QUESTION: usize = 5;
const MIN_RECORD: usize = 11;

/// Read a DNS message (its first bytes; `whole` false if it was cut).
pub fn answer(msg: &[u8], whole: bool) -> Result<Answer, DnsError> {
    if msg.len() < HEADER {
        return Err(DnsError::Malformed);
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([msg[i], msg[i + 1]]));
    if msg[2] & 0x80 == 0 {
        return Err(DnsError::NotAnswer);
    }
    let truncated = !whole || msg[2] & 0x02 != 0;
    // the parser allocates by the header's counts: refuse counts the bytes
    // cannot hold before it sees them
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    let need = HEADER + qd * MIN_QUESTION + (an + ns + ar) * MIN_RECORD;
    if qd != 1 || msg[3] & 0x0f != 0 {
        return Err(DnsError::Refused);
    }
    if need > msg.len() && !truncated {
        return Err(DnsError::Malformed);
    }
    let packet = match simple_dns::Packet::parse(msg) {
        Ok(p) => p,
        Err(_) if truncated => return answer_section_only(msg, qd, an),
        Err(_) => return Err(DnsError::Malformed),
    };
    let Some(q) = packet.questions.first() else {
        return Err(DnsError::Refused);
    };
    Ok(from_records(&q.qname, &packet.answers))
}

/// A cut message: parse again with only the question and answer sections
/// counted (what the cut kept of the answers is still good).
fn answer_section_only(msg: &[u8], qd: usize, an: usize) -> Result<Answer, DnsError> {
    let mut copy = msg.to_vec();
    copy[8..12].fill(0);
    // fewer answers each time, down to what the cut left whole
    let mut n = an.min((msg.len().saturating_sub(HEADER + qd * MIN_QUESTION)) / MIN_RECORD);
    loop {
        copy[6..8].copy_from_slice(&u16::try_from(n).unwrap_or(0).to_be_bytes());
        if let Ok(p) = simple_dns::Packet::parse(&copy) {
            let Some(q) = p.questions.first() else {
                return Err(DnsError::Truncated);
            };
            return Ok(from_records(&q.qname, &p.answers));
        }
        if n == 0 {
            return Err(DnsError::Truncated);
        }
        // halve rather than step: at most ~log2(n) tries
        n /= 2;
    }
}

fn same(a: &simple_dns::Name<'_>, b: &simple_dns::Name<'_>) -> bool {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(l), Some(m)) if l.eq_ignore_ascii_case(m) => {}
            _ => return false,
        }
    }
}

fn from_records(qname: &simple_dns::Name<'_>, rrs: &[simple_dns::ResourceRecord<'_>]) -> Answer {
    use simple_dns::rdata::RData;
    let mut chain: Vec<&simple_dns::Name<'_>> = vec![qname];
    // follow CNAMEs in any order the server wrote them, bounded
    for _ in 0..MAX_CHAIN {
        let before = chain.len();
        for rr in rrs {
            if let RData::CNAME(c) = &rr.rdata
                && chain.iter().any(|n| same(n, &rr.name))
                && !chain.iter().any(|n| same(n, &c.0))
                && chain.len() <= MAX_CHAIN
            {
                chain.push(&c.0);
            }
        }
        if chain.len() == before {
            break;
        }
    }
    let mut out = Answer {
        name: crate::printable(&mut qname.as_bytes()),
        ..Answer::default()
    };
    for rr in rrs {
        let addr: IpAddr = match &rr.rdata {
            RData::A(a) => std::net::Ipv4Addr::from(a.address).into(),
            RData::AAAA(a) => std::net::Ipv6Addr::from(a.address).into(),
            _ => continue,
        };
        if !chain.iter().any(|n| same(n, &rr.name)) {
            continue;
        }
        if out.addrs.len() >= MAX_ADDRS {
            out.dropped += 1;
            continue;
        }
        out.addrs.push((addr, rr.ttl));
    }
    out
}

/// Split a TCP DNS stream (2-byte length, message, ...) into its whole
/// messages; what is left is the start of one not yet complete.
pub fn tcp_messages(stream: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while stream.len() >= at + 2 {
        let n = usize::from(u16::from_be_bytes([stream[at], stream[at + 1]]));
        if stream.len() < at + 2 + n {
            break;
        }
        out.push(&stream[at + 2..at + 2 + n]);
        at += 2 + n;
    }
    (out, at)
}

#[expect(clippy::expect_used, reason = "examples take literal input")]
/// A DNS answer to a question for `qname` with `records`: (owner,
/// type, data) where type 1 is an IPv4 address, 28 IPv6, 5 a CNAME;
/// for tests, benchmarks and documentation (panics on bad input).
pub fn example_answer(qname: &str, records: &[(&str, u16, &str)], ttl: u32) -> Vec<u8> {
    fn name(out: &mut Vec<u8>, n: &str) {
        for l in n.split('.').filter(|l| !l.is_empty()) {
            out.push(u8::try_from(l.len()).expect("example input"));
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
    }
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1];
    m.extend_from_slice(
        &u16::try_from(records.len())
            .expect("example input")
            .to_be_bytes(),
    );
    m.extend_from_slice(&[0, 0, 0, 0]);
    name(&mut m, qname);
    m.extend_from_slice(&[0, 1, 0, 1]);
    for (owner, ty, data) in records {
        name(&mut m, owner);
        m.extend_from_slice(&ty.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&ttl.to_be_bytes());
        let rdata: Vec<u8> = match ty {
            1 => data
                .parse::<std::net::Ipv4Addr>()
                .expect("example input")
                .octets()
                .to_vec(),
            28 => data
                .parse::<std::net::Ipv6Addr>()
                .expect("example input")
                .octets()
                .to_vec(),
            _ => {
                let mut v = Vec::new();
                name(&mut v, data);
                v
            }
        };
        m.extend_from_slice(
            &u16::try_from(rdata.len())
                .expect("example input")
                .to_be_bytes(),
        );
        m.extend_from_slice(&rdata);
    }
    m
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_cname_chain_names_its_addresses_by_the_question() {
        let m = example_answer(
            "WWW.A.Example",
            &[
                ("a.cdn.example", 1, "192.0.2.7"),
                ("www.a.example", 5, "edge.example"),
                ("edge.example", 5, "a.cdn.example"),
                ("other.example", 1, "192.0.2.99"),
                ("a.cdn.example", 28, "2001:db8::7"),
            ],
            300,
        );
        let a = answer(&m, true).unwrap();
        assert_eq!(a.name, "www.a.example");
        assert_eq!(
            a.addrs,
            vec![(ip("192.0.2.7"), 300), (ip("2001:db8::7"), 300)]
        );
    }

    #[test]
    fn many_answers_are_bounded_and_counted() {
        let addrs: Vec<String> = (0..100)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
            .collect();
        let recs: Vec<(&str, u16, &str)> = addrs
            .iter()
            .map(|a| ("many.example", 1, a.as_str()))
            .collect();
        let a = answer(&example_answer("many.example", &recs, 60), true).unwrap();
        assert_eq!(a.addrs.len(), MAX_ADDRS);
        assert_eq!(a.dropped, 100 - MAX_ADDRS);
    }

    #[test]
    fn queries_errors_and_lies_are_refused() {
        let mut q = example_answer("x.example", &[], 1);
        q[2] = 0x01; // a query
        assert_eq!(answer(&q, true), Err(DnsError::NotAnswer));
        let mut nx = example_answer("x.example", &[], 1);
        nx[3] = 0x83; // NXDOMAIN
        assert_eq!(answer(&nx, true), Err(DnsError::Refused));
        // counts that claim 65535 records in 40 bytes
        let mut lie = example_answer("x.example", &[("x.example", 1, "192.0.2.1")], 1);
        lie[6] = 0xff;
        lie[7] = 0xff;
        lie[10] = 0xff;
        assert_eq!(answer(&lie, true), Err(DnsError::Malformed));
        assert_eq!(answer(&[0x80; 5], true), Err(DnsError::Malformed));
    }

    #[test]
    fn a_cut_answer_keeps_the_records_it_holds() {
        let recs: Vec<(String, u16, String)> = (0..10)
            .map(|i| ("cut.example".to_string(), 1, format!("192.0.2.{i}")))
            .collect();
        let r: Vec<(&str, u16, &str)> = recs
            .iter()
            .map(|(a, t, b)| (a.as_str(), *t, b.as_str()))
            .collect();
        let m = example_answer("cut.example", &r, 5);
        let cut = &m[..m.len() - 20];
        let a = answer(cut, false).unwrap();
        assert_eq!(a.name, "cut.example");
        assert!(!a.addrs.is_empty() && a.addrs.len() < 10, "{:?}", a.addrs);
    }

    #[test]
    fn compression_loops_and_hostile_labels_do_not_hang_or_leak() {
        // a question whose name points at itself
        let mut m = vec![
            0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1,
        ];
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4]);
        assert!(answer(&m, true).is_err());
        let evil = example_answer(
            "a\u{1b}b.example",
            &[("a\u{1b}b.example", 1, "192.0.2.1")],
            9,
        );
        let a = answer(&evil, true).unwrap();
        assert_eq!(a.name, "a\\027b.example");
    }

    #[test]
    fn tcp_streams_split_into_messages() {
        let m = example_answer("t.example", &[("t.example", 1, "192.0.2.3")], 9);
        let mut s = Vec::new();
        for _ in 0..2 {
            s.extend_from_slice(&u16::try_from(m.len()).unwrap().to_be_bytes());
            s.extend_from_slice(&m);
        }
        s.extend_from_slice(&[0, 200, 1]);
        let (msgs, used) = tcp_messages(&s);
        assert_eq!(msgs.len(), 2);
        assert_eq!(used, 2 * (m.len() + 2));
        assert_eq!(answer(msgs[1], true).unwrap().addrs[0].0, ip("192.0.2.3"));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600), whole: bool) {
            let _ = answer(&bytes, whole);
            let _ = tcp_messages(&bytes);
        }
    }
}
