//! A recording's summary (`FILE.sum`): what a reader of the whole recording
//! would find, kept by the recorder as it writes, so that a report over a
//! finished recording need not decode it again (`docs/specs/recording.md`,
//! "Summary").
//!
//! The recorder hands every frame it writes, raw, to a [`Summarizer`] (the
//! reports' own code, given by the caller: this crate knows no report). At
//! the clean end the summarizer's bytes are written beside the recording,
//! with the size and CRC-32 of every byte of the file they describe. A
//! reader trusts a summary only when the recording is exactly those bytes,
//! and only when the summary belongs to the recording's owner and nobody
//! else may write it ([`load`]); anything else is a reason to read the
//! recording in full, never an error.

use crate::private::{self, Access};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The summary file's first bytes.
const MAGIC: &[u8; 10] = b"NWSUMMARY\n";
/// Its format (a reader refuses another).
const VERSION: u32 = 1;
/// Largest summary a reader loads (its groups are bounded by the
/// summarizer; a bigger file is not one netwho wrote).
pub const MAX_SUMMARY_BYTES: u64 = 256 << 20;

/// Keeps what a reader of the recording would find, frame by frame.
pub trait Summarizer: Send {
    /// The entries of one frame, raw (as a reader decompresses it), in the
    /// order they are written.
    fn frame(&mut self, raw: &[u8]);
    /// What it kept, or why it kept nothing (it gave up: too much to hold).
    fn finish(&mut self) -> Result<Vec<u8>, String>;
    /// What the summary leaves out that readers might expect (one
    /// sentence each).
    fn left_out(&self) -> Vec<String> {
        Vec::new()
    }
}

/// One file a summary describes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct FileSum {
    segment: u32,
    bytes: u64,
    crc32: u32,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Envelope {
    files: Vec<FileSum>,
    body: Vec<u8>,
}

/// The summary of the recording at `path`.
pub fn summary_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sum");
    PathBuf::from(s)
}

/// Counts the bytes of the file being written, for its summary.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, b: &[u8]) {
        self.crc.update(b);
        self.bytes += b.len() as u64;
    }
}

/// Write `body` as the summary of segment 0 of `path` (counted by `tally`):
/// a private temporary file (never one that exists, never through a link),
/// synced, renamed over `FILE.sum`.
pub(crate) fn write(path: &Path, tally: &Tally, body: Vec<u8>) -> io::Result<()> {
    let env = Envelope {
        files: vec![FileSum {
            segment: 0,
            bytes: tally.bytes,
            crc32: tally.crc.clone().finalize(),
        }],
        body,
    };
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&postcard::to_allocvec(&env).map_err(io::Error::other)?);
    out.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
    let dest = summary_path(path);
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    // (create_new: O_EXCL, which neither follows nor reuses a planted link)
    let mut f = private::create(&tmp, Access::OWNER, false)?;
    let done = f
        .write_all(&out)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &dest));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Remove a summary left by an earlier recording at `path` (it would not
/// match the new one anyway: this saves readers the check).
pub(crate) fn remove_stale(path: &Path) {
    let _ = std::fs::remove_file(summary_path(path));
}

/// The summary of the recording read from `files` (the files a reader
/// opens, in order): its path and the summarizer's bytes; or why a reader
/// must read the recording in full.
pub fn load(files: &[PathBuf]) -> Result<(PathBuf, Vec<u8>), String> {
    let [file] = files else {
        return Err(format!(
            "{} files are read; a summary covers one unrotated recording",
            files.len()
        ));
    };
    let sum = summary_path(file);
    let shown = sum.display();
    let meta = match std::fs::symlink_metadata(&sum) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "{shown} does not exist (the recorder was stopped abruptly, is still running, \
                 rotated its file, or was run with --no-summary)"
            ));
        }
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    let rec = std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if !rec.is_file() {
        return Err(format!("{} is not a regular file", file.display()));
    }
    if !meta.file_type().is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.uid() != rec.uid() || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{shown} is not the recording owner's own private file (owner {}, mode {:o})",
            meta.uid(),
            meta.mode() & 0o7777
        ));
    }
    if meta.len() > MAX_SUMMARY_BYTES {
        return Err(format!("{shown} is too big ({} bytes)", meta.len()));
    }
    let mut raw = Vec::new();
    File::open(&sum)
        .and_then(|f| f.take(MAX_SUMMARY_BYTES + 1).read_to_end(&mut raw))
        .map_err(|e| format!("{shown}: {e}"))?;
    let env = parse(&raw).ok_or_else(|| format!("{shown} is damaged or of another version"))?;
    let [only] = env.files.as_slice() else {
        return Err(format!("{shown} describes {} files", env.files.len()));
    };
    let now = tally_file(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if only.segment != 0 || only.bytes != now.0 || only.crc32 != now.1 {
        return Err(format!(
            "{} changed since {shown} was written (size or checksum differs)",
            file.display()
        ));
    }
    Ok((sum, env.body))
}

/// The envelope in `raw`, if it is whole and of this version.
fn parse(raw: &[u8]) -> Option<Envelope> {
    let (data, crc) = raw.split_at_checked(raw.len().checked_sub(4)?)?;
    if u32::from_le_bytes(crc.try_into().ok()?) != crc32fast::hash(data) {
        return None;
    }
    let rest = data.strip_prefix(MAGIC.as_slice())?;
    let (ver, body) = rest.split_at_checked(4)?;
    if u32::from_le_bytes(ver.try_into().ok()?) != VERSION {
        return None;
    }
    postcard::from_bytes(body).ok()
}

/// Size and CRC-32 of the file at `path`.
fn tally_file(path: &Path) -> io::Result<(u64, u32)> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut t = Tally::default();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((t.bytes, t.crc.finalize()));
        }
        t.add(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_or_foreign_envelope_is_refused() {
        let env = Envelope {
            files: vec![FileSum {
                segment: 0,
                bytes: 5,
                crc32: 7,
            }],
            body: b"body".to_vec(),
        };
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&postcard::to_allocvec(&env).unwrap());
        out.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
        assert_eq!(parse(&out).unwrap().body, b"body");
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            assert!(parse(&bad).is_none(), "byte {i} flipped");
        }
        for n in 0..out.len() {
            assert!(parse(&out[..n]).is_none(), "cut at {n}");
        }
        // a body that claims more than it holds
        let mut big = MAGIC.to_vec();
        big.extend_from_slice(&VERSION.to_le_bytes());
        big.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        big.extend_from_slice(&crc32fast::hash(&big).to_le_bytes());
        assert!(parse(&big).is_none());
    }
}
