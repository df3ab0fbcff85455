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
mod fast;
pub mod format;
pub mod read;
pub mod summary;
pub mod write;

pub use decode::{Decoder, Entries, EventKind, FlowItem, FlowRef, Item, Visit};
pub use encode::{Encoder, Kind};
pub use format::Header;
pub use read::{FrameReader, ReadStats};
pub use summary::{Summarizer, summary_path};
pub use write::{FrameEncoder, RecordingFile, segment_path};

use crate::StoreError;
use netwho_model::time::WallClock;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

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

/// The files [`Reader::open`] reads for `paths`: each one's segments
/// ([`segments_of`]), each file once.
pub fn files_of(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for p in paths {
        for s in segments_of(p) {
            if !all.contains(&s) {
                all.push(s);
            }
        }
    }
    all
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
    /// Frames read and decompressed on a thread of their own
    /// ([`Reader::read_ahead`]); `files` is empty then.
    ahead: Option<Ahead>,
}

/// Decompressed frames waiting between the read-ahead thread and the
/// reader, at most (each at most `MAX_FRAME_RAW`; writers make ~1 MiB).
const AHEAD_QUEUE: usize = 2;

/// What the read-ahead thread hands over.
enum AheadMsg {
    /// A frame, decompressed, with the file's counts after it.
    Frame { raw: Vec<u8>, stats: ReadStats },
    /// A file was read to its end: its name, its counts and the clock of
    /// the next file's header.
    FileEnd {
        name: String,
        stats: ReadStats,
        next: Option<WallClock>,
    },
    /// Reading failed (the thread stops).
    Failed(StoreError),
}

struct Ahead {
    rx: Option<Receiver<AheadMsg>>,
    /// Frame buffers going back to the thread to be filled again.
    back: SyncSender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
    /// The current file's counts: what the thread counted, and what
    /// applying entries found (entries, orphans, the end marker).
    stats: ReadStats,
    done: bool,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        // the thread stops at its next hand-over once nobody listens
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Reader<BufReader<File>> {
    /// Open the recording at each path (with its rotated segments), in
    /// segment order.
    pub fn open(paths: &[PathBuf]) -> Result<Self, StoreError> {
        let mut readers = Vec::new();
        for p in files_of(paths) {
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
            clock: first.clock(),
            first,
            files: readers.into(),
            decoder: Decoder::new(),
            pending: VecDeque::new(),
            buf: Vec::new(),
            raw: Vec::new(),
            done_warnings: Vec::new(),
            done_stats: ReadStats::default(),
            ahead: None,
        })
    }

    /// Records of the flows read carry Community IDs with this seed.
    pub fn set_community_seed(&mut self, seed: u16) {
        self.decoder.set_community_seed(seed);
    }

    /// The first segment's header.
    pub fn header(&self) -> &Header {
        &self.first
    }

    /// The wall clock at the start of the recording.
    pub fn start_clock(&self) -> WallClock {
        self.first.clock()
    }

    /// The next item, or None when every file is read.
    pub fn next_item(&mut self) -> Result<Option<Item>, StoreError> {
        loop {
            if let Some(it) = self.pending.pop_front() {
                return Ok(Some(it));
            }
            let mut buf = std::mem::take(&mut self.buf);
            let more = self.step(&mut |v| buf.push(v.into_item()));
            self.pending.extend(buf.drain(..));
            self.buf = buf;
            if !more? && self.pending.is_empty() {
                return Ok(None);
            }
        }
    }

    /// Hand the next frame's events to `f` as they are decoded (flow
    /// events borrowed: no copy of each flow, as [`Reader::next_item`]
    /// makes); false when every file is read. Items `next_item` left
    /// waiting come first, one per call.
    pub fn visit_frame(&mut self, f: &mut dyn FnMut(Visit<'_>)) -> Result<bool, StoreError> {
        if let Some(it) = self.pending.pop_front() {
            match it {
                Item::Flow(fi) => f(Visit::Flow(fi.as_flow_ref())),
                other => f(Visit::Item(other)),
            }
            return Ok(true);
        }
        self.step(f)
    }

    /// Decode the next frame into `f`; items that come between
    /// files go to `pending`. False when every file is read.
    fn step(&mut self, f: &mut dyn FnMut(Visit<'_>)) -> Result<bool, StoreError> {
        if self.ahead.is_some() {
            return self.step_ahead(f);
        }
        loop {
            let Some((path, fr)) = self.files.front_mut() else {
                return Ok(false);
            };
            if fr.next_frame_into(&mut self.raw)? {
                self.decoder.frame_visit(&self.raw, &mut fr.stats, f);
                return Ok(true);
            }
            let name = path.display().to_string();
            if let Some((_, fr)) = self.files.pop_front() {
                let next = self.files.front().map(|(_, n)| n.header().clock());
                self.file_done(&name, &fr.stats, next);
            }
            if !self.pending.is_empty() {
                return Ok(true);
            }
        }
    }

    fn step_ahead(&mut self, f: &mut dyn FnMut(Visit<'_>)) -> Result<bool, StoreError> {
        let Some(a) = self.ahead.as_mut() else {
            return Ok(false);
        };
        if a.done {
            return Ok(false);
        }
        let msg = match a.rx.as_ref().map(Receiver::recv) {
            Some(Ok(m)) => m,
            // the thread read every file (or is gone)
            _ => {
                a.done = true;
                return Ok(false);
            }
        };
        match msg {
            AheadMsg::Frame { raw, stats } => {
                read_counts(&mut a.stats, &stats);
                self.decoder.frame_visit(&raw, &mut a.stats, f);
                // (the thread may have stopped: then the buffer goes)
                let _ = a.back.try_send(raw);
                Ok(true)
            }
            AheadMsg::FileEnd { name, stats, next } => {
                let mut s = std::mem::take(&mut a.stats);
                read_counts(&mut s, &stats);
                self.file_done(&name, &s, next);
                Ok(true)
            }
            AheadMsg::Failed(e) => {
                a.done = true;
                Err(e)
            }
        }
    }

    /// A file is read to its end: keep what it found, go on to the next
    /// (a clock change between them is an item of its own).
    fn file_done(&mut self, name: &str, stats: &ReadStats, next: Option<WallClock>) {
        self.done_warnings.extend(stats.warnings(name));
        add_stats(&mut self.done_stats, stats);
        if let Some(c) = next
            && c != self.clock
        {
            self.clock = c;
            self.pending.push_back(Item::Clock(c));
        }
    }

    /// Counts over the files read so far (all of them once `next_item`
    /// returned None).
    pub fn stats(&self) -> ReadStats {
        let mut s = self.done_stats.clone();
        if let Some(a) = &self.ahead {
            if !a.done {
                add_stats(&mut s, &a.stats);
            }
        } else if let Some((_, fr)) = self.files.front() {
            add_stats(&mut s, &fr.stats);
        }
        s
    }

    /// Warnings about the files read to their end.
    pub fn warnings(&self) -> &[String] {
        &self.done_warnings
    }
}

impl<R: Read + Send + 'static> Reader<R> {
    /// Read, check and decompress frames on a thread of their own from
    /// here on, while this one decodes them: a report over a long
    /// recording spends no time of its own waiting for the disk or zstd.
    /// What waits between the threads is bounded (two frames;
    /// their buffers are reused); the items and counts are the same as
    /// without.
    pub fn read_ahead(&mut self) {
        if self.ahead.is_some() || self.files.is_empty() {
            return;
        }
        let files = std::mem::take(&mut self.files);
        let (tx, rx) = sync_channel(AHEAD_QUEUE);
        let (back, back_rx) = sync_channel(AHEAD_QUEUE + 2);
        let spawned = std::thread::Builder::new()
            .name("netwho-read".into())
            .spawn(move || read_files(files, &tx, &back_rx));
        let (rx, thread, done) = match spawned {
            Ok(t) => (Some(rx), Some(t), false),
            Err(e) => {
                // the files went with the closure: nothing can be read
                self.done_warnings.push(format!(
                    "could not start a thread to read the recording: {e}"
                ));
                (None, None, true)
            }
        };
        self.ahead = Some(Ahead {
            rx,
            back,
            thread,
            stats: ReadStats::default(),
            done,
        });
    }
}

/// The read-ahead thread: every file's frames, decompressed, in order.
/// What a part's thread is given.
enum PartMsg {
    Frame(std::sync::Arc<Vec<u8>>),
    Item(Item),
    /// Send what you counted (a file ended).
    Counts(SyncSender<decode::PartCounts>),
}

impl<R: Read + Send + 'static> Reader<R> {
    /// Visit the recording in `states.len()` parts at once, one thread
    /// each (frames read and decompressed on one more): part `k` is given,
    /// in recording order, the events of the flows whose socket falls in
    /// it, and every status, clock change and end (see
    /// [`Decoder::part`]). `between` is called after each frame is handed
    /// out (a progress line); when it says false, reading stops and None
    /// is returned. The counts and warnings are the same as a reading in
    /// one piece.
    pub fn visit_parts<T: Send>(
        &mut self,
        mut states: Vec<T>,
        visit: fn(&mut T, Visit<'_>),
        between: &mut dyn FnMut(&Self) -> bool,
    ) -> Result<Option<Vec<T>>, StoreError> {
        let of = u32::try_from(states.len()).unwrap_or(u32::MAX);
        if of <= 1 {
            while self.visit_frame(&mut |v| {
                if let Some(st) = states.first_mut() {
                    visit(st, v);
                }
            })? {
                if !between(self) {
                    return Ok(None);
                }
            }
            return Ok(Some(states));
        }
        self.read_ahead();
        let decoders: Vec<Decoder> = (0..of)
            .map(|index| self.decoder.part(decode::Part { index, of }))
            .collect();
        std::thread::scope(|scope| {
            let mut txs = Vec::new();
            let mut joins = Vec::new();
            for (mut st, mut dec) in states.drain(..).zip(decoders) {
                let (tx, rx) = sync_channel::<PartMsg>(AHEAD_QUEUE);
                txs.push(tx);
                let spawned = std::thread::Builder::new()
                    .name("netwho-part".into())
                    .spawn_scoped(scope, move || {
                        let mut stats = ReadStats::default();
                        for msg in rx {
                            match msg {
                                PartMsg::Frame(raw) => {
                                    dec.frame_visit(&raw, &mut stats, &mut |v| visit(&mut st, v));
                                }
                                PartMsg::Item(Item::Flow(_)) => {}
                                PartMsg::Item(it) => visit(&mut st, Visit::Item(it)),
                                PartMsg::Counts(back) => {
                                    let _ = back.send(dec.take_part_counts(&mut stats));
                                }
                            }
                        }
                        st
                    });
                match spawned {
                    Ok(j) => joins.push(j),
                    Err(_) => return Err(StoreError::Thread("cannot start a thread")),
                }
            }
            let r = self.hand_out(&txs, between);
            drop(txs);
            let states: Vec<T> = joins.into_iter().filter_map(|j| j.join().ok()).collect();
            match r {
                Ok(true) if states.len() == of as usize => Ok(Some(states)),
                Ok(true) => Err(StoreError::Thread("a part's thread panicked")),
                Ok(false) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Hand the read-ahead thread's frames to every part (false: stopped).
    fn hand_out(
        &mut self,
        txs: &[SyncSender<PartMsg>],
        between: &mut dyn FnMut(&Self) -> bool,
    ) -> Result<bool, StoreError> {
        let send = |m: &dyn Fn() -> PartMsg| txs.iter().all(|t| t.send(m()).is_ok());
        loop {
            for it in std::mem::take(&mut self.pending) {
                send(&|| PartMsg::Item(it.clone()));
            }
            let Some(a) = self.ahead.as_mut() else {
                return Ok(true);
            };
            if a.done {
                return Ok(true);
            }
            let msg = match a.rx.as_ref().map(Receiver::recv) {
                Some(Ok(m)) => m,
                _ => {
                    a.done = true;
                    return Ok(true);
                }
            };
            match msg {
                AheadMsg::Frame { raw, stats } => {
                    read_counts(&mut a.stats, &stats);
                    let raw = std::sync::Arc::new(raw);
                    if !send(&|| PartMsg::Frame(std::sync::Arc::clone(&raw))) {
                        return Ok(true);
                    }
                    if !between(self) {
                        return Ok(false);
                    }
                }
                AheadMsg::FileEnd { name, stats, next } => {
                    // every part's counts of this file, then its warnings
                    let mut s = std::mem::take(&mut a.stats);
                    read_counts(&mut s, &stats);
                    let mut flow_entries = 0;
                    let mut owned = 0;
                    let mut clean = false;
                    for t in txs {
                        let (back, rx) = sync_channel(1);
                        if t.send(PartMsg::Counts(back)).is_err() {
                            continue;
                        }
                        if let Ok(c) = rx.recv() {
                            s.entries += c.stats.entries;
                            s.entries_unknown += c.stats.entries_unknown;
                            s.orphans += c.stats.orphans;
                            clean |= c.stats.clean_end;
                            flow_entries += c.flow_entries;
                            owned += c.owned;
                        }
                    }
                    s.orphans += flow_entries.saturating_sub(owned);
                    s.clean_end = clean;
                    self.file_done(&name, &s, next);
                }
                AheadMsg::Failed(e) => {
                    a.done = true;
                    return Err(e);
                }
            }
        }
    }
}

fn read_files<R: Read>(
    mut files: VecDeque<(PathBuf, FrameReader<R>)>,
    tx: &SyncSender<AheadMsg>,
    back: &Receiver<Vec<u8>>,
) {
    while let Some((path, mut fr)) = files.pop_front() {
        loop {
            let mut raw = back.try_recv().unwrap_or_default();
            match fr.next_frame_into(&mut raw) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let _ = tx.send(AheadMsg::Failed(e));
                    return;
                }
            }
            let msg = AheadMsg::Frame {
                raw,
                stats: fr.stats.clone(),
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
        let next = files.front().map(|(_, n)| n.header().clock());
        let msg = AheadMsg::FileEnd {
            name: path.display().to_string(),
            stats: fr.stats.clone(),
            next,
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// Take the counts only the reading side keeps (frames, damage) from
/// `from`, keeping what parsing and applying found (entries, orphans, the
/// end marker).
fn read_counts(to: &mut ReadStats, from: &ReadStats) {
    to.frames = from.frames;
    to.frames_corrupt = from.frames_corrupt;
    to.bytes_skipped = from.bytes_skipped;
    to.truncated_bytes = from.truncated_bytes;
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
