//! The recorder (`netwho record -w`): a sink that writes every flow event
//! it is given, with its context, into a recording
//! (`netwho_store::recording`, `docs/specs/recording.md`).
//!
//! Entries are encoded in the pipeline's thread into the output buffer;
//! about once a second (or every MiB) the buffer is sealed as one frame and
//! handed to the writer thread, which compresses and appends it. A frame
//! the bounded queue cannot take is dropped and its entries counted, like
//! any output. Frames define the processes and names they use, so each one
//! reads on its own.

use crate::{RecordRef, Sink, SinkControl};
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, MonoNs, nanos};
use netwho_sink::output::{Destination, Output};
use netwho_sink::status::StatusRecord;
use netwho_store::recording::{Encoder, Kind, RecordingFile};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A frame is sealed after this much time...
const FRAME_EVERY: Duration = Duration::from_secs(1);
/// ...or this many bytes of entries.
const FRAME_BYTES: usize = 1 << 20;

#[derive(Clone, Debug)]
/// How a recording is made.
pub struct RecordConfig {
    /// How often counters are read and changed flows recorded.
    pub resolution: Duration,
    /// Stop after this long...
    pub duration: Option<Duration>,
    /// ...or after this many flows.
    pub count: Option<u64>,
    /// Progress on stderr at each status record.
    pub progress: bool,
}

/// The writer thread's end: frames into the file.
struct FileDest {
    file: RecordingFile,
    bytes: Arc<AtomicU64>,
}

impl Destination for FileDest {
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_frame(chunk).map_err(io::Error::other)?;
        self.bytes.store(self.file.total_bytes, Ordering::Relaxed);
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        for note in self.file.finish().map_err(io::Error::other)? {
            eprintln!("netwho record: warning: {note}");
        }
        Ok(())
    }
}

#[derive(Debug)]
/// The recorder: flow events and status records encoded into frames, handed to a writer thread (`docs/specs/recording.md`).
pub struct RecordSink {
    enc: Encoder,
    out: Output,
    cfg: RecordConfig,
    /// Bytes on disk so far (written by the writer thread).
    bytes: Arc<AtomicU64>,
    started: Option<MonoNs>,
    now: MonoNs,
    frame_started: Option<MonoNs>,
    wall: Option<WallClock>,
    /// Status records given before the first time was known (the ready
    /// record comes before the loop's first turn), written at that time.
    early_status: Vec<String>,
}

impl RecordSink {
    /// A recorder writing into `file`.
    pub fn new(file: RecordingFile, cfg: RecordConfig) -> Self {
        let bytes = Arc::new(AtomicU64::new(file.total_bytes));
        let dest = FileDest {
            file,
            bytes: Arc::clone(&bytes),
        };
        RecordSink {
            enc: Encoder::new(),
            out: Output::spawn_to(Box::new(dest)),
            cfg,
            bytes,
            started: None,
            now: MonoNs(0),
            frame_started: None,
            wall: None,
            early_status: Vec::new(),
        }
    }

    fn at(&mut self, now: MonoNs, wall: WallClock) {
        self.now = self.now.max(now);
        self.started.get_or_insert(now);
        // the first: the header's offset was measured apart from the run's
        if self.wall != Some(wall) {
            self.enc.clock(self.out.buf(), wall.boot_to_unix_ns);
            self.out.record_done();
        }
        self.wall = Some(wall);
        if self.frame_started.is_none() {
            self.frame_started = Some(now);
        }
        for json in std::mem::take(&mut self.early_status) {
            self.enc.status(self.out.buf(), json, now);
            self.out.record_done();
        }
    }

    /// "1.2 MiB (34 B/flow)".
    fn size_note(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        match bytes.checked_div(self.enc.flows_recorded) {
            Some(per) => format!("{} ({per} B/flow)", netwho_sink::fmt::bytes(bytes)),
            None => netwho_sink::fmt::bytes(bytes),
        }
    }

    fn put(&mut self, kind: Kind, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.at(rec.now(), rec.wall());
        let now = rec.now();
        let ctx = rec.context();
        self.enc.flow(self.out.buf(), kind, ev.flow(), ctx, now);
        self.out.record_done();
    }
}

impl Sink for RecordSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        let kind = match ev {
            FlowEvent::Opened(_) => Kind::Open,
            FlowEvent::Updated(_) => Kind::Update,
            FlowEvent::Closed(_) => Kind::Close,
        };
        self.put(kind, ev, rec);
    }

    fn final_update(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.put(Kind::Final, ev, rec);
    }

    fn status(&mut self, st: &StatusRecord) {
        if let Ok(json) = serde_json::to_string(st) {
            if self.started.is_none() {
                self.early_status.push(json);
            } else {
                let now = self.now;
                self.enc.status(self.out.buf(), json, now);
                self.out.record_done();
            }
        }
        if self.cfg.progress {
            let lost = st.drops.total();
            eprintln!(
                "netwho record: {}, {} written, {} open; {}",
                netwho_sink::fmt::count(self.enc.flows_recorded, "flow", "flows"),
                self.size_note(),
                self.enc.flows_open(),
                if lost == 0 {
                    "nothing lost".to_string()
                } else {
                    format!("LOST {lost} events or records (see the status records)")
                }
            );
        }
    }

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        self.at(now, wall);
        let started = self.started.unwrap_or(now);
        let timed_out = self
            .cfg
            .duration
            .is_some_and(|d| now.since(started) >= nanos(d));
        let counted = self.cfg.count.is_some_and(|c| self.enc.flows_recorded >= c);
        if timed_out || counted {
            SinkControl::Done
        } else {
            SinkControl::Continue
        }
    }

    fn flush(&mut self) -> SinkControl {
        let old = self
            .frame_started
            .is_some_and(|t| self.now.since(t) >= nanos(FRAME_EVERY));
        if !self.out.buf().is_empty() && (old || self.out.buf().len() >= FRAME_BYTES) {
            self.enc.seal();
            self.frame_started = None;
            return self.out.flush_control();
        }
        if self.out.is_closed() {
            SinkControl::Closed
        } else {
            SinkControl::Continue
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        let now = self.now;
        self.enc.end(self.out.buf(), now);
        self.out.record_done();
        self.enc.seal();
        let r = self.out.finish();
        if self.cfg.progress && r.is_ok() {
            eprintln!(
                "netwho record: done: {}, {}",
                netwho_sink::fmt::count(self.enc.flows_recorded, "flow", "flows"),
                self.size_note()
            );
        }
        r
    }

    fn dropped(&self) -> u64 {
        self.out.dropped_records
    }

    fn updates_every(&self) -> Option<Duration> {
        Some(self.cfg.resolution)
    }
}
