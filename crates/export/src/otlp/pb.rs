//! The little of Protocol Buffers' wire format OTLP needs: writing
//! varints, fixed64s, strings and nested messages into a `Vec<u8>`, and
//! reading the fields of a message back (for the collector's answer, and
//! for tests). Encodings are the canonical ones (minimal varints, fields
//! in number order as the writer calls them), so any protobuf library
//! reads them.

/// Wire type of varints.
pub const VARINT: u8 = 0;
/// Wire type of 64-bit fixed-width values.
pub const I64: u8 = 1;
/// Wire type of length-delimited values (strings, bytes, messages).
pub const LEN: u8 = 2;
/// Wire type of 32-bit fixed-width values.
pub const I32: u8 = 5;

/// Append `v` as a varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes `v` takes as a varint.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Append a field's key.
pub fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// A varint field (int64 takes negative numbers as their two's complement).
pub fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

/// A `bool` field.
pub fn boolean(out: &mut Vec<u8>, field: u32, v: bool) {
    uint(out, field, u64::from(v));
}

/// A `fixed64`/`sfixed64` field.
pub fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A `double` field.
pub fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    fixed64(out, field, v.to_bits());
}

/// A `string` or `bytes` field.
pub fn bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
    key(out, field, LEN);
    varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// A nested message whose length is known: its key and length; the
/// caller appends exactly `len` bytes of fields.
pub fn message_head(out: &mut Vec<u8>, field: u32, len: usize) {
    key(out, field, LEN);
    varint(out, len as u64);
}

/// A nested message: `body` writes its fields, the length goes in front.
pub fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, field, LEN);
    let start = out.len();
    body(out);
    let len = out.len() - start;
    let mut head = Vec::with_capacity(10);
    varint(&mut head, len as u64);
    out.splice(start..start, head);
}

/// One field of a message as read: its number and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a> {
    /// A varint.
    Varint(u32, u64),
    /// A 64-bit fixed value.
    I64(u32, u64),
    /// A length-delimited value.
    Len(u32, &'a [u8]),
    /// A 32-bit fixed value.
    I32(u32, u32),
}

impl Field<'_> {
    /// The field's number.
    pub fn number(&self) -> u32 {
        match *self {
            Field::Varint(n, _) | Field::I64(n, _) | Field::Len(n, _) | Field::I32(n, _) => n,
        }
    }
}

/// Bytes that are not a protobuf message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a protocol buffers message: {0} at byte {1}")]
pub struct Malformed(pub &'static str, pub usize);

fn read_varint(b: &[u8], at: &mut usize) -> Result<u64, Malformed> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = b.get(*at) else {
            return Err(Malformed("a cut varint", *at));
        };
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(v);
        }
    }
    Err(Malformed("a varint longer than ten bytes", *at))
}

fn take<'a>(b: &'a [u8], at: &mut usize, n: u64) -> Result<&'a [u8], Malformed> {
    let n = usize::try_from(n).map_err(|_| Malformed("a length past the end", *at))?;
    let end = at
        .checked_add(n)
        .filter(|e| *e <= b.len())
        .ok_or(Malformed("a length past the end", *at))?;
    let s = &b[*at..end];
    *at = end;
    Ok(s)
}

/// The fields of one message, in order (no recursion: a nested message is
/// a `Len` field its reader parses in turn).
pub fn fields(b: &[u8]) -> Result<Vec<Field<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let k = read_varint(b, &mut at)?;
        let number = u32::try_from(k >> 3).map_err(|_| Malformed("a field number too big", at))?;
        if number == 0 {
            return Err(Malformed("field number 0", at));
        }
        out.push(match (k & 7) as u8 {
            VARINT => Field::Varint(number, read_varint(b, &mut at)?),
            I64 => {
                let s = take(b, &mut at, 8)?;
                Field::I64(number, u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
            }
            LEN => {
                let n = read_varint(b, &mut at)?;
                Field::Len(number, take(b, &mut at, n)?)
            }
            I32 => {
                let s = take(b, &mut at, 4)?;
                Field::I32(number, u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
            }
            _ => return Err(Malformed("a wire type OTLP does not use", at)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_minimal_and_read_back() {
        for (v, want) in [
            (0u64, vec![0u8]),
            (1, vec![1]),
            (127, vec![127]),
            (128, vec![0x80, 1]),
            (300, vec![0xac, 2]),
            (
                u64::MAX,
                vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1],
            ),
        ] {
            let mut b = Vec::new();
            varint(&mut b, v);
            assert_eq!(b, want, "{v}");
            assert_eq!(varint_len(v), b.len(), "{v}");
            assert_eq!(read_varint(&b, &mut 0), Ok(v));
        }
    }

    #[test]
    fn nested_messages_carry_their_length_in_front() {
        let mut b = Vec::new();
        message(&mut b, 1, |m| {
            bytes(m, 1, b"key");
            message(m, 2, |v| bytes(v, 1, &[b'x'; 200]));
        });
        let top = fields(&b).unwrap();
        let [Field::Len(1, kv)] = top[..] else {
            panic!("{top:?}")
        };
        let kv = fields(kv).unwrap();
        assert_eq!(kv[0], Field::Len(1, b"key"));
        let Field::Len(2, any) = kv[1] else {
            panic!("{kv:?}")
        };
        assert_eq!(fields(any).unwrap(), vec![Field::Len(1, &[b'x'; 200][..])]);
    }

    #[test]
    fn hostile_bytes_are_errors_never_panics() {
        for bad in [
            &[0x0a, 0x05, 1][..], // a length past the end
            &[0x08][..],          // a cut varint
            &[0x0b][..],          // wire type 3 (groups)
            &[0x00, 0x00][..],    // field 0
            &[0x09, 1, 2, 3][..], // a cut fixed64
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
        ] {
            assert!(fields(bad).is_err(), "{bad:?}");
        }
    }
}
