//! Names as each process saw them (`docs/specs/names.md`): the domain a
//! process resolved before it connected, and the server name its TLS or
//! QUIC client asked for.
//!
//! Pure and bounded: [`dns`] reads DNS answers, [`tls`] ClientHellos,
//! [`quic`] decrypts QUIC Initials (their keys are public: derived from the
//! connection id) to the ClientHello inside, and [`book::NameBook`] keeps
//! what each process was told, so the flow it opens next to one of those
//! addresses gets that name. Every input is hostile (a local user can send
//! itself any "DNS answer" or "ClientHello"): sizes, counts and the book's
//! entries are bounded, a malformed input is counted and never panics, and
//! names are kept in a printable form (bytes outside `[A-Za-z0-9._-]`
//! written as `\DDD`).

#![warn(missing_docs)]

pub mod book;
pub mod dns;
pub mod quic;
pub mod tls;

pub use book::{Hello, Lookup, NameBook, NameStats, RnameSource};

/// The longest name kept (a DNS name is at most 253 characters; a server
/// name in a ClientHello could be longer, and is cut here).
pub const NAME_MAX: usize = 253;

/// `bytes` as a printable name: ASCII letters (lowercased), digits, `-`,
/// `_` and `.` as they are, every other byte as `\DDD` (RFC 1035's
/// presentation format), cut at [`NAME_MAX`] characters on an escape's
/// boundary.
pub fn printable(labels: &mut dyn Iterator<Item = &[u8]>) -> String {
    let mut out = String::new();
    let mut first = true;
    'labels: for label in labels {
        if !first {
            if out.len() + 1 > NAME_MAX {
                break;
            }
            out.push('.');
        }
        first = false;
        for &b in label {
            let ok = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            let need = if ok { 1 } else { 4 };
            if out.len() + need > NAME_MAX {
                break 'labels;
            }
            if ok {
                out.push(char::from(b.to_ascii_lowercase()));
            } else {
                out.push_str(&format!("\\{b:03}"));
            }
        }
    }
    out
}

/// A name given as one string of bytes (a TLS server name): dots separate
/// labels, everything else as [`printable`] writes it.
pub fn printable_dotted(name: &[u8]) -> String {
    printable(&mut name.split(|&b| b == b'.'))
}

/// A protocol token (an ALPN id): printable ASCII as it is except `\\`,
/// `"` and `,` (the list's separator), every other byte as `\\DDD`, cut at
/// 64 characters.
pub fn printable_token(b: &[u8]) -> String {
    let mut out = String::new();
    for &c in b {
        let ok = c.is_ascii_graphic() && !matches!(c, b'\\' | b'"' | b',');
        if out.len() + if ok { 1 } else { 4 } > 64 {
            break;
        }
        if ok {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("\\{c:03}"));
        }
    }
    out
}

/// Every parser and the book over one input, as a hostile process could
/// hand it over: a UDP answer (whole and cut), TCP DNS stream bytes, a TLS
/// stream's start at two offsets, a QUIC datagram. The fuzz target's body
/// (`crates/names/fuzz`); the property tests run it on stable.
pub fn fuzz_input(data: &[u8]) {
    let _ = dns::answer(data, true);
    let _ = dns::answer(data, false);
    let _ = dns::tcp_messages(data);
    let _ = tls::from_records(data);
    let _ = tls::handshake(data);
    let _ = quic::initial_crypto(data);
    let mut b: NameBook<u32> = NameBook::new(book::Limits {
        own: 8,
        shared: 8,
        streams: 2,
    });
    b.dns(1, 1000, 1, 0, data, true);
    b.dns_tcp(1, 1, 1000, 1, 0, 0, data);
    let half = data.len() / 2;
    let _ = b.tls(2, u32::try_from(half).unwrap_or(0), &data[half..]);
    let _ = b.tls(2, 0, &data[..half]);
    let _ = b.quic(3, data);
    let _ = b.lookup(1, 1, std::net::Ipv4Addr::LOCALHOST.into(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_printable_and_bounded() {
        assert_eq!(printable_dotted(b"WWW.Example.ORG"), "www.example.org");
        assert_eq!(
            printable_dotted(b"a\nb\x1b[31m.c\"d"),
            "a\\010b\\027\\09131m.c\\034d"
        );
        let long = vec![b'a'; 400];
        assert_eq!(printable_dotted(&long).len(), NAME_MAX);
        let esc = vec![0u8; 400];
        let p = printable_dotted(&esc);
        assert!(
            p.len() <= NAME_MAX && p.len().is_multiple_of(4),
            "{}",
            p.len()
        );
        assert!(printable_dotted(&[0xff, b'x']).is_ascii());
    }

    /// A real dnsmasq answer (`shop.example` A 10.231.210.2) and a real
    /// aioquic Initial: each reads, and any mutation of either never panics.
    const DNSMASQ: &[u8] = include_bytes!("../tests/data/dnsmasq-answer.bin");
    const AIOQUIC: &[u8] = include_bytes!("../tests/data/aioquic-initial.bin");

    #[test]
    fn the_seed_inputs_read() {
        let a = dns::answer(DNSMASQ, true).unwrap();
        assert_eq!(a.name, "shop.example");
        assert_eq!(a.addrs, vec![("10.231.210.2".parse().unwrap(), 0)]);
        assert!(quic::initial_crypto(AIOQUIC).is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn mutated_seeds_never_panic(
            seed: bool,
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..8),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let mut d = if seed { DNSMASQ.to_vec() } else { AIOQUIC.to_vec() };
            for (at, v) in flips {
                let n = d.len();
                d[at % n] = v;
            }
            d.truncate(cut % (d.len() + 1));
            fuzz_input(&d);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2200)) {
            fuzz_input(&bytes);
        }
    }
}
