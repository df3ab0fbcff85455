//! Recordings (`netwho record -w`): a versioned header, then zstd-compressed
//! frames of postcard entries: flows (open, counter updates at the
//! recording's resolution, close), the processes and names they refer to,
//! status records and clock changes. Format: `docs/specs/recording.md`.
//!
//! [`encode::Encoder`] (pure) turns what the recorder sink is given into
//! entries; [`write::RecordingFile`] compresses and appends them, rotating
//! by size. [`Reader`] reads one recording (every segment of it) back as
//! [`Item`]s: the flow events and contexts the live sinks saw, with their
//! recorded times.

mod convert;
pub mod decode;
pub mod encode;
pub mod format;
pub mod read;
pub mod write;

pub use decode::{Decoder, EventKind, FlowItem, FlowRef, Item, Visit};
pub use encode::{Encoder, Kind};
pub use format::Header;
pub use read::{FrameReader, ReadStats};
pub use write::{FrameEncoder, RecordingFile, segment_path};

use crate::StoreError;
use netwho_model::time::WallClock;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The files of the recording at `path`: its rotated segments (`FILE.0`,
/// `FILE.1`, ...) that exist, then `FILE` itself if it exists.
pub fn segments_of(path: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut n = 0;
    loop {
        let p = segment_path(path, n);
        if !p.exists() {
            break;
        }
        v.push(p);
        n += 1;
    }
    if path.exists() || v.is_empty() {
        v.push(path.to_path_buf());
    }
    v
}

/// Reads a recording, segment after segment, as items.
#[expect(missing_debug_implementations, reason = "holds readers")]
pub struct Reader<R: Read = BufReader<File>> {
    files: VecDeque<(PathBuf, FrameReader<R>)>,
    first: Header,
    clock: WallClock,
    decoder: Decoder,
    pending: VecDeque<Item>,
    buf: Vec<Item>,
    /// The current frame, decompressed (one allocation for every frame).
    raw: Vec<u8>,
    /// Warnings of files read to their end.
    done_warnings: Vec<String>,
    /// Counts over every file read so far.
    done_stats: ReadStats,
}

impl Reader<BufReader<File>> {
    /// Open the recording at each path (with its rotated segments), in
    /// segment order.
    pub fn open(paths: &[PathBuf]) -> Result<Self, StoreError> {
        let mut all = Vec::new();
        for p in paths {
            for s in segments_of(p) {
                if !all.contains(&s) {
                    all.push(s);
                }
            }
        }
        let mut readers = Vec::new();
        for p in all {
            let f = File::open(&p).map_err(|e| write::io_err(&p, "opening", e))?;
            readers.push((p.clone(), FrameReader::new(BufReader::new(f), &p)?));
        }
        Self::from_readers(readers)
    }
}

impl<R: Read> Reader<R> {
    /// Read from readers whose headers were read (sorted here by segment).
    pub fn from_readers(mut readers: Vec<(PathBuf, FrameReader<R>)>) -> Result<Self, StoreError> {
        readers.sort_by_key(|(_, r)| r.header().segment);
        let Some((_, r0)) = readers.first() else {
            return Err(StoreError::NoInput);
        };
        let first = r0.header().clone();
        Ok(Reader {
            clock: WallClock {
                boot_to_unix_ns: first.boot_to_unix_ns,
            },
            first,
            files: readers.into(),
            decoder: Decoder::new(),
            pending: VecDeque::new(),
            buf: Vec::new(),
            raw: Vec::new(),
            done_warnings: Vec::new(),
            done_stats: ReadStats::default(),
        })
    }

    /// The first segment's header.
    pub fn header(&self) -> &Header {
        &self.first
    }

    /// The wall clock at the start of the recording.
    pub fn start_clock(&self) -> WallClock {
        WallClock {
            boot_to_unix_ns: self.first.boot_to_unix_ns,
        }
    }

    /// The next item, or None when every file is read.
    pub fn next_item(&mut self) -> Result<Option<Item>, StoreError> {
        loop {
            if let Some(it) = self.pending.pop_front() {
                return Ok(Some(it));
            }
            let Some((path, fr)) = self.files.front_mut() else {
                return Ok(None);
            };
            match fr.next_frame_into(&mut self.raw)? {
                true => {
                    self.decoder.frame(&self.raw, &mut fr.stats, &mut self.buf);
                    self.pending.extend(self.buf.drain(..));
                }
                false => {
                    let name = path.display().to_string();
                    self.next_file(&name);
                }
            }
        }
    }

    /// Hand the next frame's events to `f` as they are decoded (flow
    /// events borrowed: no copy of each flow, as [`Reader::next_item`]
    /// makes); false when every file is read. Items `next_item` left
    /// waiting come first, one per call.
    pub fn visit_frame(&mut self, f: &mut dyn FnMut(Visit<'_>)) -> Result<bool, StoreError> {
        loop {
            if let Some(it) = self.pending.pop_front() {
                match it {
                    Item::Flow(fi) => f(Visit::Flow(fi.as_flow_ref())),
                    other => f(Visit::Item(other)),
                }
                return Ok(true);
            }
            let Some((path, fr)) = self.files.front_mut() else {
                return Ok(false);
            };
            if fr.next_frame_into(&mut self.raw)? {
                self.decoder.frame_visit(&self.raw, &mut fr.stats, f);
                return Ok(true);
            }
            let name = path.display().to_string();
            self.next_file(&name);
        }
    }

    /// The first file is read to its end: keep what it found, go on to the
    /// next (a clock change between them is an item of its own).
    fn next_file(&mut self, name: &str) {
        if let Some((_, fr)) = self.files.pop_front() {
            self.done_warnings.extend(fr.stats.warnings(name));
            add_stats(&mut self.done_stats, &fr.stats);
        }
        if let Some((_, next)) = self.files.front() {
            let c = WallClock {
                boot_to_unix_ns: next.header().boot_to_unix_ns,
            };
            if c != self.clock {
                self.clock = c;
                self.pending.push_back(Item::Clock(c));
            }
        }
    }

    /// Counts over the files read so far (all of them once `next_item`
    /// returned None).
    pub fn stats(&self) -> ReadStats {
        let mut s = self.done_stats.clone();
        if let Some((_, fr)) = self.files.front() {
            add_stats(&mut s, &fr.stats);
        }
        s
    }

    /// Warnings about the files read to their end.
    pub fn warnings(&self) -> &[String] {
        &self.done_warnings
    }
}

/// The fuzz target's body (`crates/store/fuzz`; the property tests run it
/// too): any bytes read as a recording give items and counts or a clean
/// error, never a panic, and the counts add up.
#[doc(hidden)]
pub fn fuzz_read(data: &[u8]) {
    let Ok(fr) = FrameReader::new(data, Path::new("fuzz")) else {
        return;
    };
    let Ok(mut r) = Reader::from_readers(vec![(PathBuf::from("fuzz"), fr)]) else {
        return;
    };
    let mut items = 0u64;
    while let Ok(Some(_)) = r.next_item() {
        items += 1;
    }
    let s = r.stats();
    assert!(s.entries >= s.entries_unknown + s.orphans, "{s:?}");
    assert!(
        s.bytes_skipped + s.truncated_bytes <= data.len() as u64,
        "{s:?}"
    );
    assert!(items <= s.entries + 16, "{items} items from {s:?}");
}

fn add_stats(to: &mut ReadStats, s: &ReadStats) {
    to.frames += s.frames;
    to.frames_corrupt += s.frames_corrupt;
    to.bytes_skipped += s.bytes_skipped;
    to.truncated_bytes += s.truncated_bytes;
    to.entries += s.entries;
    to.entries_unknown += s.entries_unknown;
    to.orphans += s.orphans;
    // clean when the last file read ended cleanly
    to.clean_end = s.clean_end;
}

#[cfg(test)]
mod tests;
