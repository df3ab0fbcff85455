//! Writing a recording: the file header, then one compressed frame per
//! chunk of entries. Frames are appended whole and flushed, so a writer
//! killed at any moment leaves a file that reads up to its last frame.

use super::format::{FILE_MAGIC, FRAME_HEADER_LEN, FRAME_MAGIC, Header, MAJOR, MINOR};
use super::summary::{self, Summarizer, Tally};
use crate::StoreError;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// zstd level of frames: level 3 (zstd's default) compresses flow entries
/// about 4:1 at a few hundred MB/s.
const LEVEL: i32 = 3;

/// The file header's bytes: magic, major, minor, length, postcard header,
/// CRC-32 of the postcard header.
pub fn header_bytes(h: &Header) -> Result<Vec<u8>, StoreError> {
    let body = postcard::to_allocvec(h).map_err(|e| StoreError::Encode {
        what: "the recording header",
        detail: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(body.len() + 20);
    out.extend_from_slice(&FILE_MAGIC);
    out.extend_from_slice(&MAJOR.to_le_bytes());
    out.extend_from_slice(&MINOR.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    Ok(out)
}

/// Compresses chunks of entries into frames.
#[expect(missing_debug_implementations, reason = "holds a zstd context")]
pub struct FrameEncoder {
    zstd: zstd::bulk::Compressor<'static>,
}

impl FrameEncoder {
    /// An encoder (zstd).
    pub fn new() -> io::Result<Self> {
        Ok(FrameEncoder {
            zstd: zstd::bulk::Compressor::new(LEVEL)?,
        })
    }

    /// One frame (header and compressed entries) for `raw`.
    pub fn frame(&mut self, raw: &[u8]) -> io::Result<Vec<u8>> {
        let z = self.zstd.compress(raw)?;
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + z.len());
        out.extend_from_slice(&FRAME_MAGIC);
        out.extend_from_slice(&(z.len() as u32).to_le_bytes());
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&z).to_le_bytes());
        out.extend_from_slice(&z);
        Ok(out)
    }
}

/// A recording on disk, rotated by size: `FILE` is always the newest
/// segment; a full one is renamed `FILE.N` (N its segment number, from 0).
#[expect(missing_debug_implementations, reason = "holds a zstd context")]
pub struct RecordingFile {
    path: PathBuf,
    header: Header,
    file: BufWriter<File>,
    frames: FrameEncoder,
    /// Bytes in the current segment.
    pub segment_bytes: u64,
    /// Bytes in all segments.
    pub total_bytes: u64,
    rotate_bytes: Option<u64>,
    /// The bytes of the current segment, for its summary.
    tally: Tally,
    summarizer: Option<Box<dyn Summarizer>>,
    /// Why the summary was given up (a rotation, a failed write).
    no_summary: Option<String>,
}

/// The name of a rotated segment.
pub fn segment_path(path: &Path, segment: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{segment}"));
    PathBuf::from(s)
}

impl RecordingFile {
    /// Create `path` (refusing to overwrite a recording) and write the
    /// header of segment 0.
    pub fn create(
        path: &Path,
        header: Header,
        rotate_bytes: Option<u64>,
        overwrite: bool,
    ) -> Result<Self, StoreError> {
        if !overwrite {
            for p in [path.to_path_buf(), segment_path(path, 0)] {
                if p.exists() {
                    return Err(StoreError::Exists { path: p });
                }
            }
        }
        let mut header = header;
        header.segment = 0;
        let file = open_new(path, overwrite)?;
        let mut rf = RecordingFile {
            path: path.to_path_buf(),
            header,
            file: BufWriter::with_capacity(1 << 20, file),
            frames: FrameEncoder::new().map_err(|e| io_err(path, "starting zstd", e))?,
            segment_bytes: 0,
            total_bytes: 0,
            rotate_bytes,
            tally: Tally::default(),
            summarizer: None,
            no_summary: None,
        };
        summary::remove_stale(path);
        rf.write_header()?;
        Ok(rf)
    }

    fn write_header(&mut self) -> Result<(), StoreError> {
        let h = header_bytes(&self.header)?;
        self.file
            .write_all(&h)
            .and_then(|()| self.file.flush())
            .map_err(|e| io_err(&self.path, "writing", e))?;
        self.segment_bytes = h.len() as u64;
        self.total_bytes += h.len() as u64;
        self.tally = Tally::default();
        self.tally.add(&h);
        Ok(())
    }

    /// Append one frame of entries and flush it to the file; rotate when
    /// the segment is full.
    pub fn write_frame(&mut self, raw: &[u8]) -> Result<(), StoreError> {
        if raw.is_empty() {
            return Ok(());
        }
        let frame = self
            .frames
            .frame(raw)
            .map_err(|e| io_err(&self.path, "compressing", e))?;
        if let Err(e) = self.file.write_all(&frame).and_then(|()| self.file.flush()) {
            self.give_up_summary("writing the recording failed");
            return Err(io_err(&self.path, "writing", e));
        }
        self.tally.add(&frame);
        if let Some(s) = &mut self.summarizer {
            s.frame(raw);
        }
        self.segment_bytes += frame.len() as u64;
        self.total_bytes += frame.len() as u64;
        if self
            .rotate_bytes
            .is_some_and(|max| self.segment_bytes >= max)
        {
            self.rotate()?;
        }
        Ok(())
    }

    /// Close this segment as `FILE.N` and start the next in `FILE`.
    pub fn rotate(&mut self) -> Result<(), StoreError> {
        self.give_up_summary("the recording was rotated");
        self.sync()?;
        let done = segment_path(&self.path, self.header.segment);
        std::fs::rename(&self.path, &done).map_err(|e| io_err(&done, "renaming to", e))?;
        self.header.segment += 1;
        self.file = BufWriter::with_capacity(1 << 20, open_new(&self.path, false)?);
        self.write_header()
    }

    /// Keep a summary of what is written with `s` (reports read it
    /// instead of the recording: [`super::summary`]), written by
    /// [`finish`](Self::finish).
    pub fn summarize(&mut self, s: Box<dyn Summarizer>) {
        self.summarizer = Some(s);
    }

    fn give_up_summary(&mut self, why: &str) {
        if self.summarizer.take().is_some() {
            self.no_summary = Some(why.to_owned());
        }
    }

    /// The recording is complete (its end marker written): sync it and
    /// write its summary. Returns what people should know about the
    /// summary (one sentence each; none when all went well): why none was
    /// written when one was asked for (the recording itself is whole
    /// then), or what it leaves out.
    pub fn finish(&mut self) -> Result<Vec<String>, StoreError> {
        self.sync()?;
        let Some(mut s) = self.summarizer.take() else {
            return Ok(self.no_summary.take().map(no_summary).into_iter().collect());
        };
        let why = match s.finish() {
            Ok(body) => match summary::write(&self.path, &self.tally, body) {
                Ok(()) => return Ok(s.left_out()),
                Err(e) => format!(
                    "writing {}: {e}",
                    summary::summary_path(&self.path).display()
                ),
            },
            Err(why) => why,
        };
        Ok(vec![no_summary(why)])
    }

    /// Flush and sync to disk.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.file
            .flush()
            .and_then(|()| self.file.get_ref().sync_all())
            .map_err(|e| io_err(&self.path, "syncing", e))
    }
}

fn no_summary(why: String) -> String {
    format!("no summary written ({why}); reports decode the whole recording")
}

/// A recording holds every user's flows (and payload with `record -s`):
/// only its owner reads it (0600, whatever the umask).
fn open_new(path: &Path, overwrite: bool) -> Result<File, StoreError> {
    crate::private::create(path, crate::private::Access::OWNER, overwrite).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            StoreError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io_err(path, "creating", e)
        }
    })
}

pub(crate) fn io_err(path: &Path, what: &'static str, source: io::Error) -> StoreError {
    StoreError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}
