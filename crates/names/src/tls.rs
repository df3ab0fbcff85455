//! TLS ClientHellos: the server name (SNI) and the application protocols
//! (ALPN) a client asked for. Read from the first bytes a TCP socket sent
//! (records of type 22) or from the CRYPTO frames of a QUIC Initial (the
//! handshake message alone). A hello cut short is read as far as it goes.

use crate::book::Hello;

/// ALPN protocols kept at most (the rest are not read).
pub const MAX_ALPN: usize = 8;

/// What the bytes so far say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse {
    /// The whole ClientHello was read.
    Done(Hello),
    /// The bytes end inside it: what they hold so far.
    Partial(Hello),
    /// Not a ClientHello.
    NotHello,
}

/// Read a TLS stream's first bytes: handshake records (type 22), whose
/// payloads together hold the ClientHello.
pub fn from_records(stream: &[u8]) -> Parse {
    let mut hs = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        if stream[at] != 22 {
            if hs.is_empty() {
                return Parse::NotHello;
            }
            break;
        }
        if stream.len() < at + 5 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([stream[at + 3], stream[at + 4]]));
        let end = at + 5 + len;
        let have = end.min(stream.len());
        hs.extend_from_slice(&stream[at + 5..have]);
        if have < end || hello_len(&hs).is_some_and(|n| hs.len() >= n) {
            break;
        }
        at = end;
    }
    if hs.is_empty() {
        return Parse::Partial(Hello::default());
    }
    handshake(&hs)
}

/// The handshake message's whole length, once its header is there.
fn hello_len(hs: &[u8]) -> Option<usize> {
    (hs.len() >= 4)
        .then(|| 4 + (usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3])))
}

/// A cursor that reports running out instead of panicking.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|s| usize::from(s[0]))
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
    }
    /// A length-prefixed run, as much of it as there is.
    fn vec16_partial(&mut self) -> Option<(&'a [u8], bool)> {
        let n = self.u16()?;
        let start = self.at;
        let end = (start + n).min(self.b.len());
        self.at = end;
        Some((&self.b[start..end], end - start == n))
    }
}

/// Read a ClientHello handshake message (type 1), whole or its start.
pub fn handshake(hs: &[u8]) -> Parse {
    if hs.first().is_some_and(|&t| t != 1) {
        return Parse::NotHello;
    }
    let Some(total) = hello_len(hs) else {
        return Parse::Partial(Hello::default());
    };
    let whole = hs.len() >= total;
    let mut c = Cur {
        b: &hs[4..total.min(hs.len())],
        at: 0,
    };
    let mut hello = Hello::default();
    let done = read_hello(&mut c, &mut hello).is_some();
    if done && whole {
        Parse::Done(hello)
    } else if whole {
        // the message is all there and does not parse
        if hello == Hello::default() {
            Parse::NotHello
        } else {
            Parse::Done(hello)
        }
    } else {
        Parse::Partial(hello)
    }
}

fn read_hello(c: &mut Cur<'_>, hello: &mut Hello) -> Option<()> {
    let version = c.u16()?;
    if !(0x0300..=0x0304).contains(&version) {
        return None;
    }
    c.take(32)?; // random
    let sid = c.u8()?;
    c.take(sid)?;
    let suites = c.u16()?;
    c.take(suites)?;
    let comp = c.u8()?;
    c.take(comp)?;
    let (exts, _) = c.vec16_partial()?;
    let mut e = Cur { b: exts, at: 0 };
    loop {
        if e.at == e.b.len() {
            return Some(());
        }
        let ty = e.u16()?;
        let (data, _) = e.vec16_partial()?;
        match ty {
            0 => hello.sni = server_name(data),
            16 => hello.alpn = alpn(data),
            _ => {}
        }
    }
}

fn server_name(data: &[u8]) -> Option<String> {
    let mut c = Cur { b: data, at: 0 };
    let (list, _) = c.vec16_partial()?;
    let mut l = Cur { b: list, at: 0 };
    while l.at < l.b.len() {
        let ty = l.u8()?;
        let (name, whole) = l.vec16_partial()?;
        if ty == 0 && whole && !name.is_empty() {
            return Some(crate::printable_dotted(name));
        }
    }
    None
}

fn alpn(data: &[u8]) -> Option<String> {
    let mut c = Cur { b: data, at: 0 };
    let (list, _) = c.vec16_partial()?;
    let mut l = Cur { b: list, at: 0 };
    let mut out: Vec<String> = Vec::new();
    while l.at < l.b.len() && out.len() < MAX_ALPN {
        let n = l.u8()?;
        let p = l.take(n)?;
        out.push(crate::printable_token(p));
    }
    (!out.is_empty()).then(|| out.join(","))
}

#[expect(clippy::expect_used, reason = "examples take literal input")]
/// A ClientHello handshake message naming `sni` and offering `alpn`,
/// with `pad` bytes of another extension before them; for tests,
/// benchmarks and documentation.
pub fn example_hello(sni: &[u8], alpn: &[&str], pad: usize) -> Vec<u8> {
    let mut ext = Vec::new();
    ext.extend_from_slice(&21u16.to_be_bytes()); // padding extension
    ext.extend_from_slice(&u16::try_from(pad).expect("example input").to_be_bytes());
    ext.extend(std::iter::repeat_n(0u8, pad));
    let mut names = vec![0u8];
    names.extend_from_slice(
        &u16::try_from(sni.len())
            .expect("example input")
            .to_be_bytes(),
    );
    names.extend_from_slice(sni);
    ext.extend_from_slice(&0u16.to_be_bytes());
    ext.extend_from_slice(
        &u16::try_from(names.len() + 2)
            .expect("example input")
            .to_be_bytes(),
    );
    ext.extend_from_slice(
        &u16::try_from(names.len())
            .expect("example input")
            .to_be_bytes(),
    );
    ext.extend_from_slice(&names);
    if !alpn.is_empty() {
        let mut l = Vec::new();
        for p in alpn {
            l.push(u8::try_from(p.len()).expect("example input"));
            l.extend_from_slice(p.as_bytes());
        }
        ext.extend_from_slice(&16u16.to_be_bytes());
        ext.extend_from_slice(
            &u16::try_from(l.len() + 2)
                .expect("example input")
                .to_be_bytes(),
        );
        ext.extend_from_slice(&u16::try_from(l.len()).expect("example input").to_be_bytes());
        ext.extend_from_slice(&l);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(32);
    body.extend_from_slice(&[9; 32]);
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02, 1, 0]);
    body.extend_from_slice(
        &u16::try_from(ext.len())
            .expect("example input")
            .to_be_bytes(),
    );
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(
        &u32::try_from(body.len())
            .expect("example input")
            .to_be_bytes()[1..],
    );
    hs.extend_from_slice(&body);
    hs
}

#[expect(clippy::expect_used, reason = "examples take literal input")]
/// `hs` in TLS records of at most `max` bytes each (see [`example_hello`]).
pub fn example_records(hs: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in hs.chunks(max) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(
            &u16::try_from(chunk.len())
                .expect("example input")
                .to_be_bytes(),
        );
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn done(sni: &str, alpn: Option<&str>) -> Parse {
        Parse::Done(Hello {
            sni: Some(sni.into()),
            alpn: alpn.map(Into::into),
        })
    }

    #[test]
    fn a_hello_gives_its_server_name_and_protocols() {
        let s = example_records(
            &example_hello(b"A.Example.ORG", &["h2", "http/1.1"], 10),
            16384,
        );
        assert_eq!(from_records(&s), done("a.example.org", Some("h2,http/1.1")));
    }

    #[test]
    fn a_hello_over_several_records_and_cut_anywhere() {
        let hs = example_hello(b"split.example", &["h2"], 1500);
        let s = example_records(&hs, 700);
        assert_eq!(from_records(&s), done("split.example", Some("h2")));
        for cut in [0, 3, 5, 40, 700, 1400, s.len() - 1] {
            match from_records(&s[..cut]) {
                Parse::Partial(_) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        // the name sits before the cut: it is read
        let front = example_hello(b"front.example", &["h2"], 0);
        let mut s2 = example_records(&front, 16384);
        s2.truncate(s2.len() - 1);
        assert!(
            matches!(from_records(&s2), Parse::Partial(h) if h.sni.as_deref() == Some("front.example"))
        );
    }

    #[test]
    fn not_tls_and_hostile_names() {
        assert_eq!(from_records(b"GET / HTTP/1.1\r\n"), Parse::NotHello);
        assert_eq!(handshake(&[2, 0, 0, 1, 0]), Parse::NotHello);
        let evil = example_records(
            &example_hello(b"x\"\n\x1b]0;pwn\x07.example", &["\n"], 0),
            16384,
        );
        let Parse::Done(h) = from_records(&evil) else {
            panic!()
        };
        assert_eq!(
            h.sni.as_deref(),
            Some("x\\034\\010\\027\\0930\\059pwn\\007.example")
        );
        assert_eq!(h.alpn.as_deref(), Some("\\010"));
        // a name length that runs past the extension: not taken
        let mut bad = example_hello(b"abc.example", &[], 0);
        let at = bad.windows(11).position(|w| w == b"abc.example").unwrap();
        bad[at - 1] = 200;
        assert!(matches!(
            handshake(&bad),
            Parse::Done(Hello { sni: None, .. }) | Parse::NotHello
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..800)) {
            let _ = from_records(&bytes);
            let _ = handshake(&bytes);
        }
    }
}
