//! QUIC Initials (RFC 9000, 9001; version 2: RFC 9369): a client's first
//! packets are encrypted with keys anyone can derive from the packet's
//! destination connection id, so the ClientHello in their CRYPTO frames
//! can be read like a TCP one.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, quic::HeaderProtectionKey};
use ring::hkdf;

/// Why a datagram gave no CRYPTO data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuicError {
    /// Not a long-header Initial packet of a version known here.
    NotInitial,
    /// Its header or lengths run past the datagram.
    Malformed,
    /// It does not decrypt with its Initial keys (not a client's Initial,
    /// or damaged).
    Undecryptable,
}

const V1: u32 = 1;
const V2: u32 = 0x6b33_43cf;
const V1_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const V2_SALT: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// CRYPTO frames kept of one packet at most.
pub const MAX_FRAMES: usize = 64;

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// TLS 1.3's HKDF-Expand-Label with an empty context.
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Result<(), QuicError> {
    let n = u16::try_from(out.len()).map_err(|_| QuicError::Malformed)?;
    let full_len = u8::try_from(6 + label.len()).map_err(|_| QuicError::Malformed)?;
    let info: [&[u8]; 5] = [&n.to_be_bytes(), &[full_len], b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| QuicError::Malformed)
}

struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], QuicError> {
        let end = self.at.checked_add(n).ok_or(QuicError::Malformed)?;
        let s = self.b.get(self.at..end).ok_or(QuicError::Malformed)?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<usize, QuicError> {
        Ok(usize::from(self.take(1)?[0]))
    }
    /// A variable-length integer (RFC 9000 §16).
    fn varint(&mut self) -> Result<u64, QuicError> {
        let first = self.take(1)?[0];
        let n = 1usize << (first >> 6);
        let mut v = u64::from(first & 0x3f);
        for &b in self.take(n - 1)? {
            v = v << 8 | u64::from(b);
        }
        Ok(v)
    }
    fn len(&mut self) -> Result<usize, QuicError> {
        usize::try_from(self.varint()?).map_err(|_| QuicError::Malformed)
    }
}

/// The CRYPTO frames of the first packet of `datagram`, if it is a
/// client's Initial: (offset in the handshake stream, bytes).
pub fn initial_crypto(datagram: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, QuicError> {
    let mut c = Cur { b: datagram, at: 0 };
    let first = c.take(1)?[0];
    if first & 0xc0 != 0xc0 {
        return Err(QuicError::NotInitial);
    }
    let v = c.take(4)?;
    let version = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let (salt, labels, initial_type): (&[u8], [&[u8]; 3], u8) = match version {
        V1 => (&V1_SALT, [b"quic key", b"quic iv", b"quic hp"], 0),
        V2 => (&V2_SALT, [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"], 1),
        _ => return Err(QuicError::NotInitial),
    };
    if (first >> 4) & 3 != initial_type {
        return Err(QuicError::NotInitial);
    }
    let dcid_len = c.u8()?;
    if dcid_len > 20 {
        return Err(QuicError::Malformed);
    }
    let dcid = c.take(dcid_len)?;
    let scid_len = c.u8()?;
    if scid_len > 20 {
        return Err(QuicError::Malformed);
    }
    c.take(scid_len)?;
    let token = c.len()?;
    c.take(token)?;
    let length = c.len()?;
    let pn_at = c.at;
    if length < 20 || pn_at.checked_add(length).is_none_or(|e| e > datagram.len()) {
        return Err(QuicError::Malformed);
    }
    let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, b"client in", &mut client)?;
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &client);
    expand_label(&client, labels[0], &mut key)?;
    expand_label(&client, labels[1], &mut iv)?;
    expand_label(&client, labels[2], &mut hp)?;
    let sample = &datagram[pn_at + 4..pn_at + 20];
    let mask = HeaderProtectionKey::new(&aead::quic::AES_128, &hp)
        .and_then(|k| k.new_mask(sample))
        .map_err(|_| QuicError::Undecryptable)?;
    let first = first ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 3) + 1;
    let mut header = datagram[..pn_at + pn_len].to_vec();
    header[0] = first;
    let mut pn = 0u64;
    for i in 0..pn_len {
        header[pn_at + i] ^= mask[1 + i];
        pn = pn << 8 | u64::from(header[pn_at + i]);
    }
    for (n, p) in iv[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let mut payload = datagram[pn_at + pn_len..pn_at + length].to_vec();
    let key = UnboundKey::new(&aead::AES_128_GCM, &key).map_err(|_| QuicError::Undecryptable)?;
    let plain = LessSafeKey::new(key)
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(&header),
            &mut payload,
        )
        .map_err(|_| QuicError::Undecryptable)?;
    frames(plain)
}

/// The CRYPTO frames of a decrypted payload (padding, ping and ACK frames
/// skipped; reading stops at any other frame).
fn frames(plain: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, QuicError> {
    let mut c = Cur { b: plain, at: 0 };
    let mut out = Vec::new();
    while c.at < plain.len() && out.len() < MAX_FRAMES {
        match c.varint()? {
            0x00 | 0x01 => {}
            ty @ (0x02 | 0x03) => {
                c.varint()?; // largest acknowledged
                c.varint()?; // delay
                let ranges = c.varint()?;
                c.varint()?; // first range
                for _ in 0..ranges.min(256) {
                    c.varint()?;
                    c.varint()?;
                }
                if ty == 0x03 {
                    for _ in 0..3 {
                        c.varint()?;
                    }
                }
            }
            0x06 => {
                let offset = c.varint()?;
                let n = c.len()?;
                out.push((offset, c.take(n)?.to_vec()));
            }
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{Parse, handshake};

    /// A client Initial made by aioquic 1.7.2 (QUIC v1) for server name
    /// `quic.example.org` with ALPN `h3` (crates/names/tests/data).
    const AIOQUIC: &[u8] = include_bytes!("../tests/data/aioquic-initial.bin");

    fn hello_of(frames: &[(u64, Vec<u8>)]) -> Parse {
        let mut hs = Vec::new();
        let mut sorted = frames.to_vec();
        sorted.sort();
        for (off, d) in sorted {
            assert_eq!(off as usize, hs.len());
            hs.extend_from_slice(&d);
        }
        handshake(&hs)
    }

    #[test]
    fn a_real_clients_initial_gives_its_server_name() {
        let f = initial_crypto(AIOQUIC).unwrap();
        let Parse::Done(h) = hello_of(&f) else {
            panic!("{f:?}")
        };
        assert_eq!(h.sni.as_deref(), Some("quic.example.org"));
        assert_eq!(h.alpn.as_deref(), Some("h3"));
    }

    #[test]
    fn damaged_or_other_packets_are_refused() {
        let mut d = AIOQUIC.to_vec();
        d[200] ^= 1;
        assert_eq!(initial_crypto(&d), Err(QuicError::Undecryptable));
        let mut v = AIOQUIC.to_vec();
        v[4] = 9; // unknown version
        assert_eq!(initial_crypto(&v), Err(QuicError::NotInitial));
        assert_eq!(initial_crypto(&AIOQUIC[..60]), Err(QuicError::Malformed));
        assert_eq!(initial_crypto(&[0x40, 1, 2]), Err(QuicError::NotInitial));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(mut bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1400), at in 0usize..1400) {
            let _ = initial_crypto(&bytes);
            // and the real packet with one byte changed anywhere
            let mut d = AIOQUIC.to_vec();
            let i = at % d.len();
            d[i] = d[i].wrapping_add(bytes.pop().unwrap_or(1) | 1);
            let _ = initial_crypto(&d);
        }
    }
}
