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
}
