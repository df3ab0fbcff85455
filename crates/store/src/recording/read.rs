//! Reading a recording's frames: the header first, then frame after frame.
//! A frame whose header, checksum or compression is damaged is skipped and
//! counted, and reading goes on at the next frame magic; a file that ends
//! inside a frame (the writer was killed) ends with a warning, never an
//! error. Only a file that is not a recording, or one of an unknown major
//! version, is refused.

use super::format::{
    FILE_MAGIC, FRAME_HEADER_LEN, FRAME_MAGIC, Header, MAJOR, MAX_FRAME_RAW, MAX_HEADER_LEN,
};
use crate::StoreError;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// What reading found besides the data.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadStats {
    /// Frames read.
    pub frames: u64,
    /// Damaged frames skipped, and the bytes skipped with them.
    pub frames_corrupt: u64,
    /// See `frames_corrupt`.
    pub bytes_skipped: u64,
    /// Bytes of an incomplete last frame (the writer stopped mid-frame).
    pub truncated_bytes: u64,
    /// Entries read; entries of a kind this reader does not know (a newer
    /// minor version) skipped.
    pub entries: u64,
    /// See `entries`.
    pub entries_unknown: u64,
    /// Entries that refer to a flow, process or name this reader never saw
    /// (their definition was in a damaged or missing frame).
    pub orphans: u64,
    /// The recording ended with its end marker (the recorder stopped
    /// cleanly).
    pub clean_end: bool,
}

impl ReadStats {
    /// Warnings for people, one sentence each; empty when all is well.
    pub fn warnings(&self, what: &str) -> Vec<String> {
        let mut w = Vec::new();
        if self.truncated_bytes > 0 {
            w.push(format!(
                "{what} ends inside a frame ({} bytes cut off: the recorder was stopped \
                 abruptly); read up to the last whole frame",
                self.truncated_bytes
            ));
        } else if !self.clean_end && self.frames > 0 {
            w.push(format!(
                "{what} has no end marker: the recorder did not stop cleanly (or is still \
                 running); read everything it wrote"
            ));
        }
        if self.frames_corrupt > 0 {
            w.push(format!(
                "{what}: {} damaged frame(s) skipped ({} bytes); the records in them are missing",
                self.frames_corrupt, self.bytes_skipped
            ));
        }
        if self.entries_unknown > 0 {
            w.push(format!(
                "{what}: {} entries of a kind this netwho does not know were skipped (written \
                 by a newer netwho)",
                self.entries_unknown
            ));
        }
        if self.orphans > 0 {
            w.push(format!(
                "{what}: {} entries refer to flows whose start is not in the files read (an \
                 earlier segment or a damaged frame); they are left out",
                self.orphans
            ));
        }
        w
    }
}

/// Parse a file header from the start of `b`: the header and its length.
pub fn parse_header(b: &[u8], path: &Path) -> Result<(Header, usize), StoreError> {
    let not_rec = || StoreError::NotARecording {
        path: path.to_path_buf(),
    };
    if b.len() < FILE_MAGIC.len() || b[..FILE_MAGIC.len()] != FILE_MAGIC {
        return Err(not_rec());
    }
    let fixed = FILE_MAGIC.len() + 8;
    if b.len() < fixed {
        return Err(StoreError::HeaderCorrupt {
            path: path.to_path_buf(),
            why: "the file ends inside its header".into(),
        });
    }
    let major = u16::from_le_bytes([b[8], b[9]]);
    let minor = u16::from_le_bytes([b[10], b[11]]);
    if major != MAJOR {
        return Err(StoreError::Version {
            path: path.to_path_buf(),
            major,
            minor,
        });
    }
    let len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]) as usize;
    if len > MAX_HEADER_LEN {
        return Err(StoreError::HeaderCorrupt {
            path: path.to_path_buf(),
            why: format!("its header claims {len} bytes"),
        });
    }
    let end = fixed + len + 4;
    if b.len() < end {
        return Err(StoreError::HeaderCorrupt {
            path: path.to_path_buf(),
            why: "the file ends inside its header".into(),
        });
    }
    let body = &b[fixed..fixed + len];
    let crc = u32::from_le_bytes([b[end - 4], b[end - 3], b[end - 2], b[end - 1]]);
    if crc32fast::hash(body) != crc {
        return Err(StoreError::HeaderCorrupt {
            path: path.to_path_buf(),
            why: "its header checksum does not match".into(),
        });
    }
    // a newer minor version may append fields: postcard reads the ones it
    // knows from the front and ignores the rest
    let (h, _rest) =
        postcard::take_from_bytes::<Header>(body).map_err(|e| StoreError::HeaderCorrupt {
            path: path.to_path_buf(),
            why: format!("its header does not decode ({e})"),
        })?;
    Ok((h, end))
}

/// Reads frames from any byte stream.
#[expect(
    missing_debug_implementations,
    reason = "holds a reader and a zstd context"
)]
pub struct FrameReader<R: Read> {
    r: R,
    path: PathBuf,
    buf: Vec<u8>,
    /// Start of unread bytes in `buf`.
    pos: usize,
    eof: bool,
    header: Header,
    zstd: zstd::bulk::Decompressor<'static>,
    /// What reading found.
    pub stats: ReadStats,
}

const READ_CHUNK: usize = 1 << 20;

impl<R: Read> FrameReader<R> {
    /// Read and check the header.
    pub fn new(r: R, path: &Path) -> Result<Self, StoreError> {
        let mut fr = FrameReader {
            r,
            path: path.to_path_buf(),
            buf: Vec::new(),
            pos: 0,
            eof: false,
            header: Header::default(),
            zstd: zstd::bulk::Decompressor::new()
                .map_err(|e| super::write::io_err(path, "starting zstd for", e))?,
            stats: ReadStats::default(),
        };
        fr.fill(FILE_MAGIC.len() + 8)?;
        let fixed_ok = fr.avail() >= FILE_MAGIC.len() + 8;
        if fixed_ok {
            let len = u32::from_le_bytes([fr.buf[12], fr.buf[13], fr.buf[14], fr.buf[15]]);
            let want = (FILE_MAGIC.len() + 12).saturating_add(len as usize);
            fr.fill(want.min(MAX_HEADER_LEN + 32))?;
        }
        let (h, used) = parse_header(&fr.buf[fr.pos..], path)?;
        fr.header = h;
        fr.pos += used;
        Ok(fr)
    }

    /// The recording's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn avail(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Make at least `n` unread bytes available, unless the input ends.
    fn fill(&mut self, n: usize) -> Result<(), StoreError> {
        if self.avail() >= n || self.eof {
            return Ok(());
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        while self.buf.len() < n && !self.eof {
            let old = self.buf.len();
            let want = (n - old).max(READ_CHUNK);
            self.buf.resize(old + want, 0);
            match self.r.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.eof = true;
                }
                Ok(k) => self.buf.truncate(old + k),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(super::write::io_err(&self.path, "reading", e));
                }
            }
        }
        Ok(())
    }

    /// Skip one byte and everything up to the next frame magic (or the
    /// end), counting it.
    fn resync(&mut self) -> Result<(), StoreError> {
        self.stats.frames_corrupt += 1;
        self.pos += 1;
        self.stats.bytes_skipped += 1;
        loop {
            self.fill(FRAME_MAGIC.len())?;
            let hay = &self.buf[self.pos..];
            if let Some(i) = hay
                .windows(FRAME_MAGIC.len())
                .position(|w| w == FRAME_MAGIC)
            {
                self.pos += i;
                self.stats.bytes_skipped += i as u64;
                return Ok(());
            }
            // keep the last bytes: the magic may straddle the next read
            let keep = hay.len().min(FRAME_MAGIC.len() - 1);
            let skip = hay.len() - keep;
            self.pos += skip;
            self.stats.bytes_skipped += skip as u64;
            if self.eof {
                self.stats.bytes_skipped += keep as u64;
                self.pos = self.buf.len();
                return Ok(());
            }
            self.fill(READ_CHUNK)?;
        }
    }

    /// The next frame's entries (decompressed), or None at the end.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let mut raw = Vec::new();
        Ok(self.next_frame_into(&mut raw)?.then_some(raw))
    }

    /// The next frame's entries, decompressed into `raw` (its allocation
    /// is reused from frame to frame); false at the end.
    pub fn next_frame_into(&mut self, raw: &mut Vec<u8>) -> Result<bool, StoreError> {
        loop {
            self.fill(FRAME_HEADER_LEN)?;
            let n = self.avail();
            if n == 0 {
                return Ok(false);
            }
            let b = &self.buf[self.pos..];
            if n < FRAME_HEADER_LEN {
                if b[..n.min(4)] == FRAME_MAGIC[..n.min(4)] {
                    self.stats.truncated_bytes += n as u64;
                    self.pos += n;
                    return Ok(false);
                }
                self.resync()?;
                continue;
            }
            let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            let (clen, rlen, crc) = (word(4) as usize, word(8) as usize, word(12));
            if b[..4] != FRAME_MAGIC || clen > MAX_FRAME_RAW || rlen > MAX_FRAME_RAW {
                self.resync()?;
                continue;
            }
            self.fill(FRAME_HEADER_LEN + clen)?;
            if self.avail() < FRAME_HEADER_LEN + clen {
                // the file ends inside this frame: a killed writer, unless
                // a whole frame follows (then this frame's length is bad)
                let rest = self.avail() as u64;
                let before = self.stats.clone();
                self.resync()?;
                if self.avail() == 0 {
                    self.stats = before;
                    self.stats.truncated_bytes += rest;
                    self.pos = self.buf.len();
                    return Ok(false);
                }
                continue;
            }
            let z = &self.buf[self.pos + FRAME_HEADER_LEN..self.pos + FRAME_HEADER_LEN + clen];
            if crc32fast::hash(z) != crc {
                self.resync()?;
                continue;
            }
            raw.clear();
            raw.reserve(rlen);
            match self.zstd.decompress_to_buffer(z, raw) {
                Ok(n) if n == rlen => {
                    self.pos += FRAME_HEADER_LEN + clen;
                    self.stats.frames += 1;
                    return Ok(true);
                }
                _ => {
                    self.resync()?;
                    continue;
                }
            }
        }
    }
}
