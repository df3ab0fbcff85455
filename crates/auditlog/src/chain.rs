//! Tamper evidence for JSON-lines logs (`netwho log --chain`).
//!
//! Every line of a chained log is a JSON object whose last member is
//! `"prev_hash"`: the SHA-256 (or, with a key, HMAC-SHA-256) of the bytes
//! of the line before it, without its newline. Each file starts with a
//! `{"event":"chain",...}` record naming the host, the hash algorithm, the
//! key's id (never the key), the file's segment number and why it starts
//! (`start`, `rotate`, `restart`); its `prev_hash` continues the chain from
//! the last line of the previous file. A restart after a crash appends a
//! `chain` record with `"reason":"restart"` to the same file, carrying the
//! bytes of a line the crash tore (`torn_tail`), so nothing is thrown
//! away. A clean stop ends with `{"event":"chain_end",...}`, which also
//! covers the record before it.
//!
//! Changing, removing, inserting or reordering any record breaks the chain
//! at the next record; [`verify`] names the first place it breaks. Only
//! the last record of a log that is still being written has no successor
//! yet (status records every few seconds keep that window short). Without
//! a key, a forger who rewrites the whole tail of a log can recompute the
//! hashes; with `--chain-key`, they also need the key.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The format version of chain records.
pub const VERSION: u32 = 1;
/// The `prev_hash` of the very first record of a chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// How lines are hashed: SHA-256, or HMAC-SHA-256 with a secret key.
#[derive(Clone, Default)]
pub struct ChainKey {
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never print the key
        f.debug_struct("ChainKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

#[derive(Debug, Error)]
/// Why a chain key could not be used.
pub enum KeyError {
    #[error("cannot read the chain key file {path}: {source}")]
    /// The key file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: io::Error,
    },
    #[error(
        "the chain key file {0} is empty: put at least 32 random bytes in it \
         (head -c 32 /dev/urandom > FILE)"
    )]
    /// The key file is empty.
    Empty(PathBuf),
}

impl ChainKey {
    /// Plain SHA-256: anyone can verify, anyone who rewrites a whole tail
    /// can recompute it.
    pub fn unkeyed() -> Self {
        ChainKey { key: None }
    }

    /// A key from its bytes (HMAC-SHA256).
    pub fn from_bytes(key: Vec<u8>) -> Self {
        ChainKey { key: Some(key) }
    }

    /// The key is the file's bytes, as they are.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let key = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        if key.is_empty() {
            return Err(KeyError::Empty(path.to_owned()));
        }
        Ok(ChainKey::from_bytes(key))
    }

    /// The chain's algorithm: `sha256`, or `hmac-sha256` with a key.
    pub fn alg(&self) -> &'static str {
        if self.key.is_some() {
            "hmac-sha256"
        } else {
            "sha256"
        }
    }

    /// A name for the key that does not reveal it: 16 hex digits of
    /// SHA-256("netwho chain key" ‖ key).
    pub fn key_id(&self) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut h = Sha256::new();
        h.update(b"netwho chain key");
        h.update(key);
        Some(hex(&h.finalize()[..8]))
    }

    /// The hash of one line (without its newline).
    pub fn hash(&self, line: &[u8]) -> [u8; 32] {
        match &self.key {
            None => Sha256::digest(line).into(),
            Some(k) => match Hmac::<Sha256>::new_from_slice(k) {
                Ok(mut m) => {
                    m.update(line);
                    m.finalize().into_bytes().into()
                }
                // HMAC takes keys of any length
                Err(_) => Sha256::digest(line).into(),
            },
        }
    }
}

/// Bytes as lowercase hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Why a chain segment starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// A new chain.
    Start,
    /// The previous file was rotated; this file continues the chain.
    Rotate,
    /// netwho started again and continues the chain of an existing log.
    Restart,
}

/// The `chain` record: the first line of each file, and a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainRecord {
    /// Always `chain`.
    pub event: String,
    /// Why the record is there (start, rotation, restart).
    pub reason: Reason,
    /// The chain format's version.
    pub version: u32,
    /// When (RFC 3339).
    pub ts: String,
    /// The host that wrote the log.
    pub host: String,
    /// Its boot.
    pub boot_id: String,
    /// netwho's version.
    pub netwho: String,
    /// The hash algorithm.
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The key's id, when keyed.
    pub key_id: Option<String>,
    /// The file's place in the chain (0 first).
    pub segment: u64,
    /// On restart: did the previous run end with `chain_end`?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_end: Option<String>,
    /// On restart: the bytes of a line the crash left incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_tail: Option<String>,
}

/// Who writes: the host and boot, stamped on every chain record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// This host's name.
    pub host: String,
    /// This boot's id.
    pub boot_id: String,
}

impl Origin {
    /// This host's name and boot id.
    pub fn here() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Origin {
            host,
            boot_id: hex(&netwho_enrich::boot_id()),
        }
    }
}

/// Appends `prev_hash` to lines and keeps the chain's state.
#[derive(Debug)]
pub struct Chainer {
    key: ChainKey,
    origin: Origin,
    prev: [u8; 32],
    /// The segment being written.
    pub segment: u64,
    /// Records chained by this writer.
    pub records: u64,
}

impl Chainer {
    /// A chain continuing after `prev` in `segment`.
    pub fn new(key: ChainKey, origin: Origin, prev: [u8; 32], segment: u64) -> Self {
        Chainer {
            key,
            origin,
            prev,
            segment,
            records: 0,
        }
    }

    /// The key chaining the records.
    pub fn key(&self) -> &ChainKey {
        &self.key
    }

    /// Append `line` (a JSON object, no newline) with its `prev_hash` and a
    /// newline to `out`. A line that is not an object is wrapped as
    /// `{"event":"raw","line":...}` so the log stays JSON lines.
    pub fn push(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let body = line.trim_ascii_end();
        if body.len() >= 2 && body.first() == Some(&b'{') && body.last() == Some(&b'}') {
            out.extend_from_slice(&body[..body.len() - 1]);
            if body.len() > 2 {
                out.push(b',');
            }
        } else {
            let raw = String::from_utf8_lossy(line);
            let quoted = serde_json::to_string(&raw).unwrap_or_else(|_| "\"\"".into());
            out.extend_from_slice(b"{\"event\":\"raw\",\"line\":");
            out.extend_from_slice(quoted.as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"\"prev_hash\":\"");
        out.extend_from_slice(hex(&self.prev).as_bytes());
        out.extend_from_slice(b"\"}");
        self.prev = self.key.hash(&out[start..]);
        out.push(b'\n');
        self.records += 1;
    }

    /// A chain record for the start of a file or a restart.
    pub fn chain_record(
        &mut self,
        reason: Reason,
        ts: String,
        previous_end: Option<&str>,
        torn_tail: Option<String>,
        out: &mut Vec<u8>,
    ) {
        let rec = ChainRecord {
            event: "chain".into(),
            reason,
            version: VERSION,
            ts,
            host: self.origin.host.clone(),
            boot_id: self.origin.boot_id.clone(),
            netwho: env!("CARGO_PKG_VERSION").into(),
            alg: self.key.alg().into(),
            key_id: self.key.key_id(),
            segment: self.segment,
            previous_end: previous_end.map(str::to_owned),
            torn_tail,
        };
        if let Ok(line) = serde_json::to_vec(&rec) {
            self.push(&line, out);
        }
    }

    /// The record that says `records` records were lost here, before the
    /// writer (its queue was full): the hole is part of the chain.
    pub fn gap_record(&mut self, records: u64, ts: String, out: &mut Vec<u8>) {
        let line = serde_json::json!({
            "event": "gap",
            "ts": ts,
            "lost_records": records,
        });
        if let Ok(line) = serde_json::to_vec(&line) {
            self.push(&line, out);
        }
    }

    /// The record that ends a chain cleanly.
    pub fn end_record(&mut self, ts: String, out: &mut Vec<u8>) {
        let line = serde_json::json!({
            "event": "chain_end",
            "ts": ts,
            "records": self.records,
        });
        if let Ok(line) = serde_json::to_vec(&line) {
            self.push(&line, out);
        }
    }
}

/// The fields of a chained line that the chain itself needs.
#[derive(Debug, Deserialize)]
struct Link {
    #[serde(default)]
    event: String,
    prev_hash: Option<String>,
    #[serde(default)]
    reason: Option<Reason>,
    #[serde(default)]
    segment: Option<u64>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    previous_end: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    /// A `gap` record: records lost before the writer.
    #[serde(default)]
    lost_records: Option<u64>,
}

/// What `--verify` found in an intact chain.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// (file, segment, records) in chain order.
    pub files: Vec<(PathBuf, u64, u64)>,
    /// Records checked.
    pub records: u64,
    /// Restarts: file, line, whether the run before ended cleanly.
    pub restarts: Vec<(PathBuf, u64, bool)>,
    /// The first file continues a chain whose earlier files were not given
    /// (or whose beginning was cut off at a restart record): its first
    /// link cannot be checked. The segment it starts at.
    pub starts_mid_chain: Option<u64>,
    /// `gap` records: (file, line, records lost before the writer there).
    pub gaps: Vec<(PathBuf, u64, u64)>,
    /// The last line was incomplete (the writer was killed mid-write and
    /// has not restarted since): it is not part of the chain.
    pub torn_last_line: bool,
    /// The last record is `chain_end`: the writer stopped cleanly.
    pub ended_cleanly: bool,
    /// The chain's algorithm.
    pub alg: String,
    /// Its key id, when keyed.
    pub key_id: Option<String>,
    /// The host that wrote it.
    pub host: String,
}

impl Report {
    /// Records the log says were lost before its writer.
    pub fn lost_records(&self) -> u64 {
        self.gaps.iter().map(|g| g.2).sum()
    }

    /// Unbroken, yet not the whole story: records were lost, or (unless
    /// `missing_start_ok`: retention removed it) the beginning is missing.
    pub fn incomplete(&self, missing_start_ok: bool) -> bool {
        !self.gaps.is_empty() || (self.starts_mid_chain.is_some() && !missing_start_ok)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.files.first().map_or(0, |x| x.1);
        let last = self.files.last().map_or(0, |x| x.1);
        let state = if !self.gaps.is_empty() {
            format!(
                "chain unbroken but INCOMPLETE ({} records lost before the writer)",
                self.lost_records()
            )
        } else if self.starts_mid_chain.is_some() {
            "chain unbroken from where it starts, but its BEGINNING IS MISSING".to_string()
        } else {
            "chain intact".to_string()
        };
        writeln!(
            f,
            "{state}: {} records in {} file(s), segments {first}-{last}, host {}, {}{}",
            self.records,
            self.files.len(),
            if self.host.is_empty() {
                "?"
            } else {
                &self.host
            },
            self.alg,
            self.key_id
                .as_ref()
                .map(|k| format!(" (key id {k})"))
                .unwrap_or_default(),
        )?;
        for (p, seg, n) in &self.files {
            writeln!(f, "  segment {seg}: {} ({n} records)", p.display())?;
        }
        for (p, line, clean) in &self.restarts {
            writeln!(
                f,
                "  restart at {}:{line} (the run before {})",
                p.display(),
                if *clean {
                    "stopped cleanly"
                } else {
                    "was killed or crashed"
                }
            )?;
        }
        for (p, line, n) in &self.gaps {
            writeln!(
                f,
                "  {n} records lost before line {line} of {} (the writer could not keep up; \
                 see drops.output in the status records)",
                p.display()
            )?;
        }
        if let Some(seg) = self.starts_mid_chain {
            writeln!(
                f,
                "  the chain starts at segment {seg} without its start record: the earlier part \
                 was not given, was removed (--rotate-keep), or was cut off; its first link is \
                 not checked (--missing-start-ok if retention removed it)"
            )?;
        }
        if self.torn_last_line {
            writeln!(
                f,
                "  note: the last line is incomplete (netwho was killed while writing it); \
                 it is not part of the chain"
            )?;
        }
        if self.ended_cleanly {
            write!(f, "  the log ends with chain_end: netwho stopped cleanly")
        } else {
            write!(
                f,
                "  the log does not end with chain_end (still being written, or netwho was \
                 killed): its last record has no successor to vouch for it yet"
            )
        }
    }
}

#[derive(Debug, Error)]
/// Why a chain could not be verified (`Broken`: it was tampered with).
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: io::Error,
    },
    #[error(
        "{0} is not a chained netwho log (its first line is not a chain record; \
         was it written with --chain?)"
    )]
    /// A file without a chain record.
    NotChained(PathBuf),
    #[error("segment {segment} is given twice: {a} and {b}")]
    /// Two files claim the same segment.
    DuplicateSegment {
        /// The segment.
        segment: u64,
        /// One file.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    #[error("this log is keyed (hmac-sha256, key id {0}): give the key with --chain-key FILE")]
    /// The log is keyed and no key was given (its key id).
    KeyNeeded(String),
    #[error(
        "{path}: {why}; a log written with the key given is keyed in every segment, so this one \
         was not written with it, or was rewritten without it",
        path = path.display()
    )]
    /// A key was given for a log that is not keyed.
    NotKeyed {
        /// The file.
        path: PathBuf,
        /// How it shows it is not keyed.
        why: String,
    },
    #[error("the key given has id {given}, but this log was written with key id {log}")]
    /// The key given is not the log's.
    WrongKey {
        /// The given key's id.
        given: String,
        /// The log's.
        log: String,
    },
    #[error("CHAIN BROKEN at {}:{line}: {why}", path.display())]
    /// A record does not link to the one before: the log was changed.
    Broken {
        /// The file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// What did not match.
        why: String,
    },
}

/// Open a log file, decompressing `.zst` files.
fn open_lines(path: &Path) -> Result<Box<dyn BufRead>, VerifyError> {
    let read = |source| VerifyError::Read {
        path: path.to_owned(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read)?;
    if path.extension().is_some_and(|e| e == "zst") {
        let d = zstd::stream::read::Decoder::new(f).map_err(read)?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 16, d)))
    } else {
        Ok(Box::new(io::BufReader::with_capacity(1 << 16, f)))
    }
}

/// The first line of a file as a chain record (to order files).
fn first_link(path: &Path) -> Result<Link, VerifyError> {
    let mut r = open_lines(path)?;
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)
        .map_err(|source| VerifyError::Read {
            path: path.to_owned(),
            source,
        })?;
    serde_json::from_slice::<Link>(line.trim_ascii_end())
        .ok()
        .filter(|l| l.event == "chain" && l.prev_hash.is_some())
        .ok_or_else(|| VerifyError::NotChained(path.to_owned()))
}

/// Check the chain across `paths` (any order: files are put in chain order
/// by their segment numbers). `key` must be given for a keyed log.
pub fn verify(paths: &[PathBuf], key: Option<&ChainKey>) -> Result<Report, VerifyError> {
    let mut files = Vec::new();
    for p in paths {
        let l = first_link(p)?;
        files.push((l.segment.unwrap_or(0), p.clone(), l));
    }
    files.sort_by_key(|f| f.0);
    for w in files.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(VerifyError::DuplicateSegment {
                segment: w[0].0,
                a: w[0].1.clone(),
                b: w[1].1.clone(),
            });
        }
    }
    let mut report = Report::default();
    let Some(head) = files.first() else {
        return Ok(report);
    };
    report.alg = head.2.alg.clone().unwrap_or_default();
    report.key_id = head.2.key_id.clone();
    let unkeyed = ChainKey::unkeyed();
    let key = match (&head.2.key_id, key) {
        (Some(log), None) => return Err(VerifyError::KeyNeeded(log.clone())),
        (Some(log), Some(k)) => {
            let given = k.key_id().unwrap_or_default();
            if &given != log {
                return Err(VerifyError::WrongKey {
                    given,
                    log: log.clone(),
                });
            }
            k
        }
        // a key was given: an unkeyed chain is a downgrade, not a pass
        (None, Some(_)) => {
            return Err(VerifyError::NotKeyed {
                path: head.1.clone(),
                why: format!(
                    "its chain record names no key (alg {})",
                    head.2.alg.as_deref().unwrap_or("none")
                ),
            });
        }
        (None, None) => &unkeyed,
    };

    let mut prev: Option<[u8; 32]> = None;
    let mut expected_segment: Option<u64> = None;
    let mut last_event = String::new();
    let count = files.len();
    for (i, (segment, path, _)) in files.iter().enumerate() {
        let mut r = open_lines(path)?;
        let mut line = Vec::with_capacity(1024);
        let mut n: u64 = 0;
        let mut in_file: u64 = 0;
        loop {
            line.clear();
            let got = r
                .read_until(b'\n', &mut line)
                .map_err(|source| VerifyError::Read {
                    path: path.clone(),
                    source,
                })?;
            if got == 0 {
                break;
            }
            n += 1;
            let broken = |why: String| VerifyError::Broken {
                path: path.clone(),
                line: n,
                why,
            };
            if line.last() != Some(&b'\n') {
                if i + 1 == count {
                    report.torn_last_line = true;
                    break;
                }
                return Err(broken(
                    "the line is incomplete, yet later files follow".into(),
                ));
            }
            let body = &line[..line.len() - 1];
            let link: Link = serde_json::from_slice(body).map_err(|e| {
                broken(format!(
                    "not a valid JSON record ({e}): the line was altered"
                ))
            })?;
            let Some(claimed) = link.prev_hash.as_deref() else {
                return Err(broken("the record has no prev_hash".into()));
            };
            if n == 1 && link.event != "chain" {
                return Err(broken(
                    "a file must start with a chain record; the first line was replaced".into(),
                ));
            }
            if link.event == "chain" {
                let want = match (n, link.reason) {
                    (1, Some(Reason::Start | Reason::Rotate | Reason::Restart)) => *segment,
                    (_, Some(Reason::Restart)) => *segment,
                    _ => {
                        return Err(broken(format!(
                            "unexpected chain record ({:?}) inside a file",
                            link.reason
                        )));
                    }
                };
                if link.segment != Some(want) {
                    return Err(broken(format!(
                        "the chain record says segment {:?}, expected {want}",
                        link.segment
                    )));
                }
                if n == 1 {
                    if let Some(e) = expected_segment
                        && e != *segment
                    {
                        return Err(broken(format!(
                            "segment {e} is missing: the chain jumps from segment {} to {segment}",
                            e - 1
                        )));
                    }
                    expected_segment = Some(segment + 1);
                }
                if link.key_id != report.key_id {
                    return Err(broken(
                        "this chain record names another key than the log's first".into(),
                    ));
                }
                // the hash is what the key says: an unkeyed chain cannot
                // claim to be an HMAC one (nor the other way round)
                if link.alg.as_deref() != Some(key.alg()) {
                    return Err(broken(format!(
                        "this chain record says alg {}, but the chain is hashed with {}",
                        link.alg.as_deref().unwrap_or("none"),
                        key.alg()
                    )));
                }
                if link.reason == Some(Reason::Restart) && prev.is_some() {
                    report.restarts.push((
                        path.clone(),
                        n,
                        link.previous_end.as_deref() == Some("clean"),
                    ));
                }
            }
            match prev {
                Some(p) => {
                    if claimed != hex(&p) {
                        let what = if n == 1 {
                            "the last record of the previous file".to_owned()
                        } else {
                            format!("line {}", n - 1)
                        };
                        return Err(broken(format!(
                            "prev_hash does not match the hash of {what}: that record was \
                             altered, or records were removed, inserted or reordered here \
                             (this record: event {}{})",
                            link.event,
                            link.ts.map(|t| format!(", ts {t}")).unwrap_or_default()
                        )));
                    }
                }
                None => {
                    // the first line given
                    if link.reason == Some(Reason::Start) {
                        if claimed != hex(&GENESIS) {
                            return Err(broken(
                                "the first record of a chain must have a zero prev_hash".into(),
                            ));
                        }
                    } else {
                        report.starts_mid_chain = Some(*segment);
                    }
                    report.host = serde_json::from_slice::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| v["host"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                }
            }
            if link.event == "gap" {
                report
                    .gaps
                    .push((path.clone(), n, link.lost_records.unwrap_or(0)));
            }
            prev = Some(key.hash(body));
            last_event = link.event;
            in_file += 1;
        }
        report.records += in_file;
        report.files.push((path.clone(), *segment, in_file));
    }
    report.ended_cleanly = last_event == "chain_end" && !report.torn_last_line;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            host: "testhost".into(),
            boot_id: "00".into(),
        }
    }

    /// A chained log of `n` records in one buffer.
    fn log(key: ChainKey, n: usize) -> Vec<u8> {
        let mut c = Chainer::new(key, origin(), GENESIS, 1);
        let mut out = Vec::new();
        c.chain_record(
            Reason::Start,
            "2026-11-23T00:00:00Z".into(),
            None,
            None,
            &mut out,
        );
        for i in 0..n {
            let rec = format!("{{\"event\":\"open\",\"flow_id\":\"f{i}\",\"bytes_sent\":{i}}}");
            c.push(rec.as_bytes(), &mut out);
        }
        c.end_record("2026-11-23T00:00:01Z".into(), &mut out);
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("netwho-chain-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn each_line_carries_the_hash_of_the_one_before() {
        let out = log(ChainKey::unkeyed(), 3);
        let lines: Vec<&[u8]> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 5);
        for w in lines.windows(2) {
            let v: serde_json::Value = serde_json::from_slice(w[1]).unwrap();
            assert_eq!(v["prev_hash"], hex(&Sha256::digest(w[0])));
        }
        let first: serde_json::Value = serde_json::from_slice(lines[0]).unwrap();
        assert_eq!(first["event"], "chain");
        assert_eq!(first["host"], "testhost");
        assert_eq!(first["alg"], "sha256");
        assert_eq!(first["prev_hash"], hex(&GENESIS));
        let end: serde_json::Value = serde_json::from_slice(lines[4]).unwrap();
        assert_eq!(end["event"], "chain_end");
        assert_eq!(end["records"], 4);
    }

    #[test]
    fn an_intact_log_verifies_and_every_flipped_byte_is_found() {
        let d = tmp("flip");
        let out = log(ChainKey::unkeyed(), 20);
        let p = write(&d, "a.jsonl", &out);
        let r = verify(std::slice::from_ref(&p), None).unwrap();
        assert_eq!(r.records, 22);
        assert!(r.ended_cleanly && !r.torn_last_line && r.starts_mid_chain.is_none());
        // flip each byte of line 10 in turn (not its newline): always caught,
        // at line 10 (it no longer parses or its own hash is off) or line 11
        let starts: Vec<usize> = std::iter::once(0)
            .chain(
                out.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        for i in starts[9]..starts[10] - 1 {
            let mut bad = out.clone();
            bad[i] ^= 0x01;
            let p = write(&d, "bad.jsonl", &bad);
            match verify(&[p], None) {
                Err(VerifyError::Broken { line, .. }) => {
                    assert!(line == 10 || line == 11, "byte {i}: line {line}")
                }
                other => panic!("byte {i}: {other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn removed_inserted_and_reordered_records_are_found() {
        let d = tmp("edit");
        let out = log(ChainKey::unkeyed(), 10);
        let lines: Vec<&[u8]> = out.split_inclusive(|b| *b == b'\n').collect();
        let join = |v: Vec<&[u8]>| v.concat();
        let mut removed = lines.clone();
        removed.remove(5);
        let mut swapped = lines.clone();
        swapped.swap(4, 5);
        let mut inserted = lines.clone();
        inserted.insert(3, lines[3]);
        for (what, bytes, line) in [
            ("removed", join(removed), 6),
            ("swapped", join(swapped), 5),
            ("inserted", join(inserted), 5),
        ] {
            let p = write(&d, "x.jsonl", &bytes);
            match verify(&[p], None) {
                Err(VerifyError::Broken { line: l, why, .. }) => {
                    assert_eq!(l, line, "{what}: {why}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// With a key, an unkeyed chain (rewritten by someone without the key)
    /// fails; an unkeyed chain cannot claim to be an HMAC one.
    #[test]
    fn a_key_cannot_be_downgraded_and_alg_cannot_lie() {
        let d = tmp("downgrade");
        let key = ChainKey::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
        let forged = write(&d, "f.jsonl", &log(ChainKey::unkeyed(), 5));
        match verify(std::slice::from_ref(&forged), Some(&key)) {
            Err(VerifyError::NotKeyed { why, .. }) => {
                assert!(why.contains("names no key"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        // an unkeyed chain whose chain record says hmac-sha256
        let text = String::from_utf8(log(ChainKey::unkeyed(), 3)).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        first["alg"] = "hmac-sha256".into();
        // rehash the whole chain so only the claim is wrong
        let mut prev = GENESIS;
        for (i, l) in lines.iter_mut().enumerate() {
            let mut v: serde_json::Value = if i == 0 {
                first.clone()
            } else {
                serde_json::from_str(l).unwrap()
            };
            v["prev_hash"] = hex(&prev).into();
            *l = serde_json::to_string(&v).unwrap();
            prev = ChainKey::unkeyed().hash(l.as_bytes());
        }
        let liar = write(&d, "l.jsonl", format!("{}\n", lines.join("\n")).as_bytes());
        match verify(&[liar], None) {
            Err(VerifyError::Broken { line: 1, why, .. }) => assert!(why.contains("alg"), "{why}"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A log cut off at a restart record verifies from there, but is
    /// incomplete; records lost before the writer are a gap in the chain.
    #[test]
    fn a_cut_start_and_lost_records_make_a_log_incomplete() {
        let d = tmp("cut");
        let mut c = Chainer::new(ChainKey::unkeyed(), origin(), GENESIS, 1);
        let mut out = Vec::new();
        c.chain_record(Reason::Start, "t0".into(), None, None, &mut out);
        c.push(br#"{"event":"open","flow_id":"a"}"#, &mut out);
        let cut_at = out.len();
        c.chain_record(
            Reason::Restart,
            "t1".into(),
            Some("unclean"),
            None,
            &mut out,
        );
        c.push(br#"{"event":"open","flow_id":"b"}"#, &mut out);
        c.gap_record(17, "t2".into(), &mut out);
        c.push(br#"{"event":"open","flow_id":"c"}"#, &mut out);
        c.end_record("t3".into(), &mut out);
        let whole = write(&d, "w.jsonl", &out);
        let r = verify(std::slice::from_ref(&whole), None).unwrap();
        assert_eq!(r.lost_records(), 17);
        assert_eq!(r.gaps, vec![(whole.clone(), 5, 17)]);
        assert!(r.incomplete(true), "a gap is never retention");
        let shown = r.to_string();
        assert!(
            shown.contains("INCOMPLETE") && !shown.contains("intact"),
            "{shown}"
        );
        assert!(shown.contains("17 records lost before line 5"), "{shown}");
        // the beginning cut off at the restart record
        let cut = write(&d, "c.jsonl", &out[cut_at..]);
        let r = verify(&[cut], None).unwrap();
        assert_eq!(r.starts_mid_chain, Some(1));
        assert!(r.incomplete(false));
        assert!(r.to_string().contains("without its start record"), "{r}");
        // a whole log without gaps is complete
        let ok = write(&d, "ok.jsonl", &log(ChainKey::unkeyed(), 3));
        assert!(!verify(&[ok], None).unwrap().incomplete(false));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_keyed_log_needs_its_key() {
        let d = tmp("key");
        let key = ChainKey::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
        let p = write(&d, "k.jsonl", &log(key.clone(), 5));
        assert!(matches!(
            verify(std::slice::from_ref(&p), None),
            Err(VerifyError::KeyNeeded(_))
        ));
        let other = ChainKey::from_bytes(b"another key".to_vec());
        assert!(matches!(
            verify(std::slice::from_ref(&p), Some(&other)),
            Err(VerifyError::WrongKey { .. })
        ));
        let r = verify(std::slice::from_ref(&p), Some(&key)).unwrap();
        assert_eq!(r.alg, "hmac-sha256");
        assert_eq!(r.records, 7);
        // a forger without the key recomputes plain SHA-256: caught at the
        // first link
        let mut forged = Vec::new();
        let mut c = Chainer::new(ChainKey::unkeyed(), origin(), GENESIS, 1);
        let text = std::fs::read_to_string(&p).unwrap();
        for l in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("prev_hash");
            c.push(serde_json::to_string(&v).unwrap().as_bytes(), &mut forged);
        }
        let f = write(&d, "forged.jsonl", &forged);
        assert!(matches!(
            verify(&[f], Some(&key)),
            Err(VerifyError::Broken { line: 2, .. })
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn not_chained_and_torn_lines() {
        let d = tmp("torn");
        let p = write(&d, "plain.jsonl", b"{\"event\":\"open\"}\n");
        assert!(matches!(
            verify(&[p], None),
            Err(VerifyError::NotChained(_))
        ));
        let mut out = log(ChainKey::unkeyed(), 3);
        out.extend_from_slice(b"{\"event\":\"open\",\"flo");
        let p = write(&d, "torn.jsonl", &out);
        let r = verify(&[p], None).unwrap();
        assert!(r.torn_last_line);
        assert!(!r.ended_cleanly);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_line_that_is_not_an_object_is_wrapped() {
        let mut c = Chainer::new(ChainKey::unkeyed(), origin(), GENESIS, 1);
        let mut out = Vec::new();
        c.push(b"plain text", &mut out);
        c.push(b"{}", &mut out);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(v["line"], "plain text");
        let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert!(v["prev_hash"].is_string());
    }
}
