//! Payload bytes kept of a flow (`record -s SNAPLEN`).
//!
//! The sensor hands over pieces: a run of bytes at its offset in one
//! direction's stream (TCP: sequence space from the first data byte;
//! datagrams: the payloads one after another). Pieces arrive in packet
//! order, which is not stream order when a segment is retransmitted or
//! reordered; [`Capture::stream`] puts them in place.

/// Which way payload went, seen from the flow's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaptureDir {
    /// From this host's process.
    Sent,
    /// To it.
    Recv,
}

impl CaptureDir {
    /// `sent` or `recv`.
    pub fn name(self) -> &'static str {
        match self {
            CaptureDir::Sent => "sent",
            CaptureDir::Recv => "recv",
        }
    }
}

/// A run of payload bytes at its offset in one direction's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturePiece {
    /// Which direction.
    pub dir: CaptureDir,
    /// Where in the direction's stream it starts.
    pub offset: u32,
    /// The bytes.
    pub data: Vec<u8>,
}

impl CapturePiece {
    fn end(&self) -> u64 {
        u64::from(self.offset) + self.data.len() as u64
    }
}

/// A chunk of one captured packet (`netwho pcap`): the sensor's chunks of
/// a packet share `id`; `offset` places `data` in its first `caplen` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketChunk {
    /// The (socket, remote) it belongs to.
    pub key: crate::WireKey,
    /// Ties the chunks of one packet.
    pub id: u64,
    /// When the kernel saw it.
    pub at: crate::MonoNs,
    /// The packet's length (a GSO packet: all of it), from its IP header.
    pub len: u32,
    /// Bytes captured of it in all.
    pub caplen: u16,
    /// Where `data` starts.
    pub offset: u16,
    /// The interface, in the socket's network namespace (0: unknown).
    pub ifindex: u32,
    /// Which way, seen from the socket's process.
    pub dir: CaptureDir,
    /// GSO segments (1: an ordinary packet).
    pub segs: u16,
    /// The bytes.
    pub data: Vec<u8>,
}

/// No stream offset beyond this is kept: the kernel stops at its snap
/// length (16 KiB at most); a recording that claims more is corrupt, and
/// must not make a reader allocate for it.
pub const CAPTURE_LIMIT: u64 = 1 << 20;

/// Pieces one flow keeps at most. The kernel sends a handful per
/// direction (its snap length is 16 KiB at most); a recording that claims
/// more is crafted, and must not make a reader slow.
pub const CAPTURE_PIECES: usize = 4096;

/// The pieces of one flow, in arrival order. A piece whose bytes are all
/// held already (a retransmission) is not kept, so a flow holds at most
/// about twice its snap length. What is held is kept as merged ranges per
/// direction, so adding a piece costs a lookup, never a pass over every
/// piece (a crafted recording of a million pieces stays linear).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    pieces: Vec<CapturePiece>,
    /// Per direction (sent, received): start → end of the ranges held,
    /// merged, disjoint.
    held: [std::collections::BTreeMap<u64, u64>; 2],
}

fn slot(dir: CaptureDir) -> usize {
    match dir {
        CaptureDir::Sent => 0,
        CaptureDir::Recv => 1,
    }
}

/// One direction's bytes from stream offset 0 on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStream {
    /// Bytes in stream order; a byte no piece held is 0.
    pub data: Vec<u8>,
    /// How many bytes of `data` no piece held.
    pub missing: usize,
}

impl Capture {
    /// The pieces kept, in order.
    pub fn pieces(&self) -> &[CapturePiece] {
        &self.pieces
    }

    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Keep a piece; false when it adds nothing (empty, beyond
    /// [`CAPTURE_LIMIT`], every byte of it already held) or the flow
    /// holds [`CAPTURE_PIECES`] already.
    pub fn add(&mut self, piece: CapturePiece) -> bool {
        if piece.data.is_empty()
            || piece.end() > CAPTURE_LIMIT
            || self.pieces.len() >= CAPTURE_PIECES
            || self.covers(&piece)
        {
            return false;
        }
        self.hold(piece.dir, u64::from(piece.offset), piece.end());
        self.pieces.push(piece);
        true
    }

    /// Every byte of `p` is held by earlier pieces of its direction.
    fn covers(&self, p: &CapturePiece) -> bool {
        let start = u64::from(p.offset);
        self.held[slot(p.dir)]
            .range(..=start)
            .next_back()
            .is_some_and(|(_, end)| *end >= p.end())
    }

    /// Marks `[start, end)` held, merging it with the ranges it touches.
    fn hold(&mut self, dir: CaptureDir, mut start: u64, mut end: u64) {
        let held = &mut self.held[slot(dir)];
        if let Some((s, e)) = held.range(..=start).next_back().map(|(s, e)| (*s, *e))
            && e >= start
        {
            start = s;
            end = end.max(e);
            held.remove(&s);
        }
        while let Some((s, e)) = held.range(start..=end).next().map(|(s, e)| (*s, *e)) {
            end = end.max(e);
            held.remove(&s);
        }
        held.insert(start, end);
    }

    /// The bytes of one direction, in place.
    pub fn stream(&self, dir: CaptureDir) -> CaptureStream {
        let pieces = || self.pieces.iter().filter(|p| p.dir == dir);
        let len = pieces().map(CapturePiece::end).max().unwrap_or(0);
        let len = usize::try_from(len.min(CAPTURE_LIMIT)).unwrap_or(0);
        let mut data = vec![0u8; len];
        let mut held = vec![false; len];
        for p in pieces() {
            let start = p.offset as usize;
            let end = start + p.data.len();
            data[start..end].copy_from_slice(&p.data);
            held[start..end].fill(true);
        }
        CaptureStream {
            missing: held.iter().filter(|h| !**h).count(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(dir: CaptureDir, offset: u32, data: &[u8]) -> CapturePiece {
        CapturePiece {
            dir,
            offset,
            data: data.to_vec(),
        }
    }

    #[test]
    fn pieces_land_in_place_whatever_their_order() {
        let mut c = Capture::default();
        assert!(c.add(piece(CaptureDir::Sent, 6, b"world")));
        assert!(c.add(piece(CaptureDir::Recv, 0, b"ok")));
        assert!(c.add(piece(CaptureDir::Sent, 0, b"hello ")));
        let s = c.stream(CaptureDir::Sent);
        assert_eq!(s.data, b"hello world");
        assert_eq!(s.missing, 0);
        assert_eq!(c.stream(CaptureDir::Recv).data, b"ok");
    }

    #[test]
    fn a_retransmission_is_not_kept_but_new_bytes_are() {
        let mut c = Capture::default();
        assert!(c.add(piece(CaptureDir::Sent, 0, b"abcd")));
        assert!(c.add(piece(CaptureDir::Sent, 4, b"efgh")));
        assert!(!c.add(piece(CaptureDir::Sent, 2, b"cdef")), "all held");
        assert!(!c.add(piece(CaptureDir::Sent, 0, b"")), "empty");
        // the other direction is its own stream
        assert!(c.add(piece(CaptureDir::Recv, 2, b"cd")));
        // overlapping, one byte new
        assert!(c.add(piece(CaptureDir::Sent, 6, b"ghi")));
        assert_eq!(c.pieces().len(), 4);
        assert_eq!(c.stream(CaptureDir::Sent).data, b"abcdefghi");
    }

    #[test]
    fn a_gap_is_zero_and_counted() {
        let mut c = Capture::default();
        c.add(piece(CaptureDir::Recv, 0, b"ab"));
        c.add(piece(CaptureDir::Recv, 5, b"f"));
        let s = c.stream(CaptureDir::Recv);
        assert_eq!(s.data, b"ab\0\0\0f");
        assert_eq!(s.missing, 3);
        assert_eq!(c.stream(CaptureDir::Sent), CaptureStream::default());
    }

    /// A crafted flow of 200,000 one-byte pieces (each new) is added in
    /// about linear time, keeps at most CAPTURE_PIECES, and its held
    /// ranges stay right.
    #[test]
    fn many_pieces_cost_a_lookup_each_and_are_bounded() {
        let mut c = Capture::default();
        // backwards, every other byte, then the gaps: worst for merging
        let mut kept = 0;
        for i in (0..100_000u32).rev() {
            kept += usize::from(c.add(piece(CaptureDir::Recv, i * 2, b"x")));
        }
        assert_eq!(kept, CAPTURE_PIECES);
        assert_eq!(c.pieces().len(), CAPTURE_PIECES);
        let mut small = Capture::default();
        for i in (0..1000u32).rev() {
            small.add(piece(CaptureDir::Sent, i * 2, b"a"));
        }
        for i in 0..1000u32 {
            assert!(small.add(piece(CaptureDir::Sent, i * 2 + 1, b"b")), "{i}");
        }
        assert!(
            !small.add(piece(CaptureDir::Sent, 0, &[b'z'; 2000])),
            "all held now"
        );
        assert_eq!(small.held[0].len(), 1, "one merged range");
        assert_eq!(small.stream(CaptureDir::Sent).missing, 0);
    }

    #[test]
    fn offsets_past_the_limit_are_refused() {
        let mut c = Capture::default();
        let at = u32::try_from(CAPTURE_LIMIT).unwrap();
        assert!(!c.add(piece(CaptureDir::Sent, at, b"x")));
        assert!(!c.add(piece(CaptureDir::Sent, u32::MAX, b"xy")));
        assert!(c.add(piece(CaptureDir::Sent, at - 1, b"x")));
        assert_eq!(
            c.stream(CaptureDir::Sent).data.len(),
            CAPTURE_LIMIT as usize
        );
    }
}
