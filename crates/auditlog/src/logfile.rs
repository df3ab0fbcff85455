//! `netwho log -o FILE`: an append-only log file that survives crashes,
//! rotates by size or time, compresses what it rotated, and (with
//! `--chain`) keeps a hash chain across all of it.
//!
//! * Records are written whole, in chunks of whole lines. A line torn by a
//!   crash (the writer killed inside a write) is cut off at the next start
//!   and kept: in the chain's restart record (`torn_tail`), or, without a
//!   chain, in `FILE.torn`. The log itself always parses.
//! * Rotation renames `FILE` to `FILE.000001` (`.000002`, ... in order) at a
//!   record boundary once FILE reaches `--rotate-size`, or at each multiple
//!   of `--rotate-every` (UTC), and opens a new FILE. Rotated files are
//!   compressed to `FILE.NNNNNN.zst` by a thread of their own (write to
//!   `.zst.tmp`, sync, rename, then remove the original: a crash at any
//!   point leaves one complete copy, finished at the next start).
//! * `--rotate-keep N` removes all but the newest N rotated files.

use crate::chain::{ChainKey, ChainRecord, Chainer, GENESIS, Origin, Reason};
use netwho_model::time::rfc3339_from_unix_ns;
use netwho_sink::output::Destination;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;

/// Flow logs name users and their command lines: not for everyone.
/// zstd level for rotated files (fast, and about 10× on flow records).
const ZSTD_LEVEL: i32 = 3;

#[derive(Clone, Debug, Default)]
/// Where and how a log file is written.
pub struct LogFileConfig {
    /// The file.
    pub path: PathBuf,
    /// Rotate when it holds this many bytes.
    pub rotate_size: Option<u64>,
    /// Rotate this often.
    pub rotate_every: Option<Duration>,
    /// Rotated files to keep (None: all).
    pub keep: Option<usize>,
    /// Compress rotated files (zstd).
    pub compress: bool,
    /// Chain records (JSON lines only).
    pub chain: Option<ChainKey>,
    /// This host and boot, for the chain records.
    pub origin: Origin,
    /// The wall clock (None: the system's).
    pub clock: Option<Clock>,
}

#[derive(Debug, Error)]
/// Why a log file could not be opened or written.
pub enum LogFileError {
    #[error("{what} {}: {source}", path.display())]
    /// An operation on a file failed.
    Io {
        /// What was done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: io::Error,
    },
    #[error(
        "{} already holds records without a hash chain (written without --chain): \
         give --chain a new file, or move this one away", .0.display()
    )]
    /// The file holds records without a chain.
    NotChained(PathBuf),
    #[error(
        "{} is chained with {log}, but this run would use {ours}: use the same \
         --chain-key (or none) as the run that started it, or a new file", path.display()
    )]
    /// The file is chained with another key.
    KeyMismatch {
        /// The file.
        path: PathBuf,
        /// The log's key id.
        log: String,
        /// This run's.
        ours: String,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogFileError + 'a {
    move |source| LogFileError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Unix nanoseconds now.
pub type Clock = fn() -> i128;

/// Logs are read by the owner and the file's group (0640, whatever the
/// umask; a looser existing file is tightened, with a warning).
const ACCESS: netwho_store::private::Access = netwho_store::private::Access::GROUP_READ;

fn open_append(path: &Path) -> io::Result<File> {
    netwho_store::private::open_append(path, ACCESS)
}

/// Make a rename durable.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A rotated file: `NAME.NNNNNN` or `NAME.NNNNNN.zst`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rotated {
    n: u64,
    compressed: bool,
    path: PathBuf,
}

/// The rotated files of `name` in `dir`, oldest first; leftovers of an
/// interrupted compression are cleaned up on the way.
fn rotated(dir: &Path, name: &str) -> Vec<Rotated> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let prefix = format!("{name}.");
    for e in rd.flatten() {
        let fname = e.file_name();
        let Some(rest) = fname.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        if rest.ends_with(".zst.tmp") {
            // a compression that did not finish: the original is still there
            let _ = std::fs::remove_file(e.path());
            continue;
        }
        let (num, compressed) = match rest.strip_suffix(".zst") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        if num.len() == 6
            && let Ok(n) = num.parse::<u64>()
        {
            out.push(Rotated {
                n,
                compressed,
                path: e.path(),
            });
        }
    }
    out.sort();
    // both copies: the compressed one was finished (renamed after sync)
    let mut i = 0;
    while i + 1 < out.len() {
        if out[i].n == out[i + 1].n && !out[i].compressed {
            let _ = std::fs::remove_file(&out[i].path);
            out.remove(i);
        } else {
            i += 1;
        }
    }
    out
}

/// Compress a rotated file to `.zst` and remove it.
fn compress(path: &Path) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".zst.tmp");
    let tmp = PathBuf::from(tmp);
    let mut done = path.as_os_str().to_owned();
    done.push(".zst");
    let done = PathBuf::from(done);
    let mut src = File::open(path)?;
    let dst = netwho_store::private::create(&tmp, ACCESS, true)?;
    let mut enc = zstd::stream::write::Encoder::new(dst, ZSTD_LEVEL)?;
    io::copy(&mut src, &mut enc)?;
    let dst = enc.finish()?;
    dst.sync_all()?;
    std::fs::rename(&tmp, &done)?;
    std::fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// Remove all but the newest `keep` rotated files.
fn retain(dir: &Path, name: &str, keep: usize) {
    let old = rotated(dir, name);
    let excess = old.len().saturating_sub(keep);
    for r in &old[..excess] {
        if let Err(e) = std::fs::remove_file(&r.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            log::warn!("removing {} (--rotate-keep): {e}", r.path.display());
        }
    }
}

/// Compress every rotated file not compressed yet, oldest first, then
/// apply `--rotate-keep`. One thread does both, so that retention never
/// removes a file under the compressor and the compressor never brings
/// back a file retention removed; a file it could not compress stays as
/// it is and the next sweep (the next rotation, or the next start) tries
/// again.
fn sweep(dir: &Path, name: &str, keep: Option<usize>) {
    for r in rotated(dir, name).iter().filter(|r| !r.compressed) {
        if let Err(e) = compress(&r.path) {
            log::warn!("compressing {}: {e}", r.path.display());
        }
    }
    if let Some(keep) = keep {
        retain(dir, name, keep);
    }
}

/// The thread that compresses rotated files and applies retention.
#[derive(Debug)]
struct Compressor {
    tx: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Compressor {
    fn start(dir: PathBuf, name: String, keep: Option<usize>) -> Self {
        // one wake-up waiting is enough: a sweep sees every file
        let (tx, rx): (SyncSender<()>, Receiver<()>) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("netwho-compress".into())
            .spawn(move || {
                netwho_enrich::caps::drop_all_here("the log compressor");
                for () in rx {
                    sweep(&dir, &name, keep);
                }
            })
            .ok();
        Compressor {
            tx: Some(tx),
            thread,
        }
    }

    /// A file was rotated: sweep (soon; now if the thread is idle).
    fn wake(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(());
        }
    }

    fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The last whole line of `f` (without its newline) and where the whole
/// lines end; bytes after that are a torn line.
fn tail(f: &mut File, len: u64) -> io::Result<(Vec<u8>, u64)> {
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        Read::by_ref(f).take(len - start).read_to_end(&mut buf)?;
        // where the whole lines end
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            if start == 0 {
                return Ok((Vec::new(), 0));
            }
            window *= 4;
            continue;
        };
        let line_start = buf[..end].iter().rposition(|b| *b == b'\n').map(|i| i + 1);
        match line_start {
            Some(s) => return Ok((buf[s..end].to_vec(), start + end as u64 + 1)),
            None if start == 0 => return Ok((buf[..end].to_vec(), end as u64 + 1)),
            None => window *= 4,
        }
    }
}

/// The first and last whole lines of a rotated (maybe compressed) file.
fn ends_of(r: &Rotated) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let f = File::open(&r.path)?;
    let mut rd: Box<dyn BufRead> = if r.compressed {
        Box::new(io::BufReader::new(zstd::stream::read::Decoder::new(f)?))
    } else {
        Box::new(io::BufReader::new(f))
    };
    let (mut first, mut last, mut line) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        line.clear();
        if rd.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            break;
        }
        line.pop();
        if first.is_empty() {
            first = line.clone();
        }
        std::mem::swap(&mut last, &mut line);
    }
    Ok((first, last))
}

/// The chain record of a file's first line, if it is one.
fn chain_head(first: &[u8]) -> Option<ChainRecord> {
    serde_json::from_slice::<ChainRecord>(first)
        .ok()
        .filter(|h| h.event == "chain")
}

#[derive(Debug)]
/// A log file that rotates, compresses, repairs a torn last line and keeps its hash chain: a `Destination` run by the writer thread.
pub struct LogFile {
    cfg: LogFileConfig,
    dir: PathBuf,
    name: String,
    file: File,
    size: u64,
    /// Lines in the current file beyond its chain record (a chunk of whole
    /// lines written at once counts as one: only whether there are any
    /// matters).
    lines: u64,
    next_number: u64,
    next_time: Option<i128>,
    chain: Option<Chainer>,
    compressor: Option<Compressor>,
    buf: Vec<u8>,
    now_ns: Clock,
}

impl LogFile {
    /// Open (or create) the log, repair a torn tail, continue its chain.
    pub fn open(cfg: LogFileConfig) -> Result<LogFile, LogFileError> {
        let path = cfg.path.clone();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = rotated(&dir, &name);
        let mut file = open_append(&path).map_err(io_err("cannot open", &path))?;
        let len = file.metadata().map_err(io_err("cannot read", &path))?.len();
        let (last, whole) = tail(&mut file, len).map_err(io_err("cannot read", &path))?;
        let torn = if whole < len {
            file.seek(SeekFrom::Start(whole))
                .map_err(io_err("cannot read", &path))?;
            let mut t = Vec::new();
            file.read_to_end(&mut t)
                .map_err(io_err("cannot read", &path))?;
            file.set_len(whole)
                .map_err(io_err("cannot repair the torn last line of", &path))?;
            log::warn!(
                "{}: the last line was incomplete ({} bytes, netwho was killed while \
                 writing it); it is kept {}",
                path.display(),
                t.len(),
                if cfg.chain.is_some() {
                    "in the chain's restart record"
                } else {
                    "in FILE.torn"
                }
            );
            Some(t)
        } else {
            None
        };
        let mut lf = LogFile {
            dir,
            name,
            file,
            size: whole,
            lines: 0,
            next_number: old.last().map_or(1, |r| r.n + 1),
            next_time: None,
            chain: None,
            compressor: None,
            buf: Vec::new(),
            now_ns: cfg.clock.unwrap_or(netwho_enrich::clock::unix_now_ns),
            cfg,
        };
        lf.next_time = lf.boundary_after((lf.now_ns)());
        match lf.cfg.chain.clone() {
            Some(key) => lf.resume_chain(key, whole, &last, old.last(), torn)?,
            None => {
                if let Some(t) = torn {
                    let mut side = path.as_os_str().to_owned();
                    side.push(".torn");
                    let side = PathBuf::from(side);
                    let mut f = open_append(&side).map_err(io_err("cannot open", &side))?;
                    f.write_all(&t)
                        .and_then(|()| f.write_all(b"\n"))
                        .map_err(io_err("cannot write", &side))?;
                }
                lf.lines = u64::from(whole > 0);
            }
        }
        // (after the chain was resumed from the newest rotated file: from
        // here on, only the compressor touches rotated files)
        if lf.cfg.compress {
            let c = Compressor::start(lf.dir.clone(), lf.name.clone(), lf.cfg.keep);
            c.wake();
            lf.compressor = Some(c);
        }
        Ok(lf)
    }

    /// Continue the chain of the file (or of the newest rotated file), or
    /// start one; write its chain record.
    fn resume_chain(
        &mut self,
        key: ChainKey,
        whole: u64,
        last: &[u8],
        newest: Option<&Rotated>,
        torn: Option<Vec<u8>>,
    ) -> Result<(), LogFileError> {
        let path = self.cfg.path.clone();
        let torn = torn.map(|t| String::from_utf8_lossy(&t).into_owned());
        // (first line, last line, segment offset) of what the chain continues
        let found = if whole > 0 {
            self.file
                .seek(SeekFrom::Start(0))
                .map_err(io_err("cannot read", &path))?;
            let mut first = Vec::new();
            io::BufReader::new(&self.file)
                .read_until(b'\n', &mut first)
                .map_err(io_err("cannot read", &path))?;
            first.pop();
            Some((first, last.to_vec(), 0, path.clone()))
        } else if let Some(r) = newest {
            let (first, last) = ends_of(r).map_err(io_err("cannot read", &r.path))?;
            Some((first, last, 1, r.path.clone()))
        } else {
            None
        };
        let ts = rfc3339_from_unix_ns((self.now_ns)());
        let mut out = Vec::new();
        let chainer = match found {
            Some((first, last, bump, from)) if !last.is_empty() => {
                let head =
                    chain_head(&first).ok_or_else(|| LogFileError::NotChained(from.clone()))?;
                let ours = key.key_id();
                if head.key_id != ours || head.alg != key.alg() {
                    let name = |alg: &str, id: &Option<String>| match id {
                        Some(id) => format!("{alg} key id {id}"),
                        None => alg.to_owned(),
                    };
                    return Err(LogFileError::KeyMismatch {
                        path: from,
                        log: name(&head.alg, &head.key_id),
                        ours: name(key.alg(), &ours),
                    });
                }
                let clean = serde_json::from_slice::<serde_json::Value>(&last)
                    .ok()
                    .is_some_and(|v| v["event"] == "chain_end");
                let prev = key.hash(&last);
                let mut c = Chainer::new(key, self.cfg.origin.clone(), prev, head.segment + bump);
                c.chain_record(
                    Reason::Restart,
                    ts,
                    Some(if clean { "clean" } else { "unclean" }),
                    torn,
                    &mut out,
                );
                c
            }
            _ => {
                let mut c = Chainer::new(key, self.cfg.origin.clone(), GENESIS, 1);
                c.chain_record(Reason::Start, ts, None, torn, &mut out);
                c
            }
        };
        self.chain = Some(chainer);
        self.write_raw(&out)
            .map_err(io_err("cannot write", &path))?;
        self.file
            .sync_data()
            .map_err(io_err("cannot write", &path))?;
        Ok(())
    }

    /// The next multiple of `--rotate-every` after `ns` (Unix time).
    fn boundary_after(&self, ns: i128) -> Option<i128> {
        let every = self.cfg.rotate_every?.as_nanos() as i128;
        (every > 0).then(|| (ns.div_euclid(every) + 1) * every)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Write what is buffered.
    fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let r = self.write_raw(&buf);
        self.buf = buf;
        self.buf.clear();
        r
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.file.sync_data()?;
        let target = self
            .dir
            .join(format!("{}.{:06}", self.name, self.next_number));
        self.next_number += 1;
        std::fs::rename(&self.cfg.path, &target)?;
        self.file = open_append(&self.cfg.path)?;
        self.size = 0;
        self.lines = 0;
        sync_dir(&self.dir);
        if let Some(c) = &mut self.chain {
            c.segment += 1;
            let mut out = Vec::new();
            c.chain_record(
                Reason::Rotate,
                rfc3339_from_unix_ns((self.now_ns)()),
                None,
                None,
                &mut out,
            );
            self.write_raw(&out)?;
        }
        match (&self.compressor, self.cfg.keep) {
            (Some(c), _) => c.wake(),
            (None, Some(keep)) => retain(&self.dir, &self.name, keep),
            (None, None) => {}
        }
        Ok(())
    }

    fn rotation_due(&self, ns: i128, adding: usize) -> bool {
        if self.lines == 0 {
            return false;
        }
        let by_size = self
            .cfg
            .rotate_size
            .is_some_and(|max| self.size + (self.buf.len() + adding) as u64 > max);
        let by_time = self.next_time.is_some_and(|t| ns >= t);
        by_size || by_time
    }
}

impl Destination for LogFile {
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        let ns = (self.now_ns)();
        // The common case: whole lines, no chain, and no rotation due even
        // after the whole chunk (sizes only grow within it, so no line of
        // it could be the one to rotate at): written as it is, without
        // copying it line by line.
        let fits = self
            .cfg
            .rotate_size
            .is_none_or(|max| self.size + (self.buf.len() + chunk.len()) as u64 <= max);
        if self.chain.is_none()
            && chunk.ends_with(b"\n")
            && fits
            && self.next_time.is_none_or(|t| ns < t)
        {
            self.flush_buf()?;
            self.lines += 1;
            return self.write_raw(chunk);
        }
        for line in chunk.split_inclusive(|b| *b == b'\n') {
            if self.rotation_due(ns, line.len()) {
                self.rotate()?;
                self.next_time = self.boundary_after(ns);
            }
            match &mut self.chain {
                Some(c) => c.push(
                    &line[..line.len() - usize::from(line.ends_with(b"\n"))],
                    &mut self.buf,
                ),
                None => {
                    self.buf.extend_from_slice(line);
                    if !line.ends_with(b"\n") {
                        self.buf.push(b'\n');
                    }
                }
            }
            self.lines += 1;
        }
        self.flush_buf()
    }

    fn lost(&mut self, records: u64) -> io::Result<()> {
        if let Some(c) = &mut self.chain {
            c.gap_record(
                records,
                rfc3339_from_unix_ns((self.now_ns)()),
                &mut self.buf,
            );
            self.lines += 1;
            self.flush_buf()?;
        }
        Ok(())
    }

    fn idle(&mut self) -> io::Result<()> {
        let ns = (self.now_ns)();
        if self.next_time.is_some_and(|t| ns >= t) {
            if self.lines > 0 {
                self.rotate()?;
            }
            self.next_time = self.boundary_after(ns);
        }
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some(c) = &mut self.chain {
            let mut out = Vec::new();
            c.end_record(rfc3339_from_unix_ns((self.now_ns)()), &mut out);
            self.write_raw(&out)?;
        }
        self.file.sync_data()?;
        if let Some(c) = &mut self.compressor {
            c.finish();
        }
        Ok(())
    }
}

/// A chain on a stream (standard output): no files to resume or rotate.
#[derive(Debug)]
pub struct ChainedStream<W: Write + Send> {
    out: W,
    chain: Chainer,
    buf: Vec<u8>,
    now_ns: Clock,
}

impl<W: Write + Send> ChainedStream<W> {
    /// A chain over `out` (standard output), keyed by `key`.
    pub fn new(out: W, key: ChainKey, origin: Origin, clock: Option<Clock>) -> Self {
        let now_ns = clock.unwrap_or(netwho_enrich::clock::unix_now_ns);
        let mut chain = Chainer::new(key, origin, GENESIS, 1);
        let mut buf = Vec::new();
        chain.chain_record(
            Reason::Start,
            rfc3339_from_unix_ns(now_ns()),
            None,
            None,
            &mut buf,
        );
        ChainedStream {
            out,
            chain,
            buf,
            now_ns,
        }
    }
}

impl<W: Write + Send> Destination for ChainedStream<W> {
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        for line in chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.chain.push(line, &mut self.buf);
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }

    fn lost(&mut self, records: u64) -> io::Result<()> {
        self.chain.gap_record(
            records,
            rfc3339_from_unix_ns((self.now_ns)()),
            &mut self.buf,
        );
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }

    fn close(&mut self) -> io::Result<()> {
        self.chain
            .end_record(rfc3339_from_unix_ns((self.now_ns)()), &mut self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::verify;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("netwho-logfile-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn cfg(dir: &Path) -> LogFileConfig {
        LogFileConfig {
            path: dir.join("flows.jsonl"),
            chain: Some(ChainKey::unkeyed()),
            origin: Origin {
                host: "h".into(),
                boot_id: "b".into(),
            },
            ..LogFileConfig::default()
        }
    }

    fn records(from: usize, n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for i in from..from + n {
            v.extend_from_slice(format!("{{\"event\":\"open\",\"n\":{i}}}\n").as_bytes());
        }
        v
    }

    /// Every file of the log, for --verify.
    fn all_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| !p.to_string_lossy().ends_with(".torn"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_chain_survives_restarts_torn_lines_and_rotation() {
        let d = tmp("chain");
        let mut f = LogFile::open(cfg(&d)).unwrap();
        f.write_chunk(&records(0, 10)).unwrap();
        f.close().unwrap();
        // a restart after a clean stop
        let mut f = LogFile::open(cfg(&d)).unwrap();
        f.write_chunk(&records(10, 10)).unwrap();
        drop(f); // killed: no chain_end
        // a torn line, as a kill inside a write leaves it
        let path = d.join("flows.jsonl");
        let mut raw = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        raw.write_all(b"{\"event\":\"open\",\"n\":20,\"prev_ha")
            .unwrap();
        drop(raw);
        let r = verify(&all_files(&d), None).unwrap();
        assert!(r.torn_last_line && !r.ended_cleanly);

        let mut f = LogFile::open(LogFileConfig {
            rotate_size: Some(2_000),
            compress: true,
            ..cfg(&d)
        })
        .unwrap();
        for i in 0..10 {
            f.write_chunk(&records(100 + i * 10, 10)).unwrap();
        }
        f.close().unwrap();
        let files = all_files(&d);
        assert!(files.len() >= 4, "{files:?}");
        assert!(
            files[1..]
                .iter()
                .all(|p| p.to_string_lossy().ends_with(".zst")),
            "rotated files are compressed: {files:?}"
        );
        let r = verify(&files, None).unwrap();
        assert_eq!(r.restarts.len(), 2, "{r}");
        assert!(r.restarts[0].2, "the first restart followed a clean stop");
        assert!(!r.restarts[1].2, "the second followed a kill");
        assert!(r.ended_cleanly && !r.torn_last_line);
        // a start, two restarts, a chain record per rotation, two ends
        // (runs 1 and 3 stopped cleanly), 120 records
        assert_eq!(r.records, 3 + (files.len() as u64 - 1) + 2 + 120, "{r}");
        // the torn bytes are kept in the restart record
        let text = {
            let mut s = String::new();
            let mut z = zstd::stream::read::Decoder::new(File::open(&files[1]).unwrap()).unwrap();
            z.read_to_string(&mut s).unwrap();
            s
        };
        assert!(
            text.contains("\"torn_tail\":\"{\\\"event\\\":\\\"open\\\",\\\"n\\\":20,\\\"prev_ha\""),
            "{text}"
        );
        // every line of every file is whole JSON
        for p in &files {
            let s = if p.to_string_lossy().ends_with(".zst") {
                let mut s = String::new();
                zstd::stream::read::Decoder::new(File::open(p).unwrap())
                    .unwrap()
                    .read_to_string(&mut s)
                    .unwrap();
                s
            } else {
                std::fs::read_to_string(p).unwrap()
            };
            for l in s.lines() {
                serde_json::from_str::<serde_json::Value>(l).unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Chunks written whole (no rotation due after them) and chunks split
    /// where a rotation falls: every record once, in order, each file under
    /// the size but for its last line, none starting mid-record; a chunk
    /// without its final newline still ends its line.
    #[test]
    fn whole_chunks_and_chunks_split_by_rotation_keep_every_line() {
        let d = tmp("chunks");
        let c = LogFileConfig {
            rotate_size: Some(300),
            chain: None,
            ..cfg(&d)
        };
        let mut f = LogFile::open(c).unwrap();
        let mut want = Vec::new();
        for i in 0..40 {
            let chunk = records(i * 7, 1 + i % 7);
            want.extend_from_slice(&chunk);
            f.write_chunk(&chunk).unwrap();
        }
        f.write_chunk(b"{\"event\":\"open\",\"n\":\"last\"}")
            .unwrap();
        want.extend_from_slice(b"{\"event\":\"open\",\"n\":\"last\"}\n");
        f.close().unwrap();
        // rotated files first (oldest number first), the live file last
        let mut files = all_files(&d);
        files.rotate_left(1);
        assert!(files.len() > 5, "{files:?}");
        let mut got = Vec::new();
        for p in &files {
            let b = std::fs::read(p).unwrap();
            assert!(b.starts_with(b"{\"event\""), "{p:?}");
            assert!(b.ends_with(b"}\n"), "{p:?}");
            let last_line = b[..b.len() - 1]
                .iter()
                .rposition(|c| *c == b'\n')
                .map_or(0, |i| i + 1);
            assert!(last_line <= 300, "{p:?}: {} bytes", b.len());
            got.extend_from_slice(&b);
        }
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotation_keeps_the_newest_and_a_crash_mid_compression_is_finished() {
        let d = tmp("keep");
        let c = LogFileConfig {
            rotate_size: Some(500),
            keep: Some(2),
            compress: false,
            chain: None,
            ..cfg(&d)
        };
        let mut f = LogFile::open(c.clone()).unwrap();
        for i in 0..20 {
            f.write_chunk(&records(i * 5, 5)).unwrap();
        }
        f.close().unwrap();
        let names: Vec<String> = all_files(&d)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names[1].starts_with("flows.jsonl.0000"), "{names:?}");
        // no record lost in what is kept, none split
        let live = std::fs::read_to_string(d.join("flows.jsonl")).unwrap();
        assert!(live.ends_with("\"n\":99}\n"), "{live}");
        // a crash mid-compression: a .zst.tmp and the original remain
        let orig = d.join(&names[1]);
        let mut tmp_name = orig.as_os_str().to_owned();
        tmp_name.push(".zst.tmp");
        std::fs::write(&tmp_name, b"partial").unwrap();
        let mut f = LogFile::open(LogFileConfig {
            compress: true,
            ..c
        })
        .unwrap();
        f.close().unwrap();
        let after: Vec<String> = all_files(&d)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            after,
            vec![
                "flows.jsonl".to_owned(),
                format!("{}.zst", names[1]),
                format!("{}.zst", names[2])
            ]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Fast rotation with compression and retention: the compressor and
    /// retention never race (a file removed under the compressor, a
    /// compressed copy brought back after retention): what is left is the
    /// newest N rotated files, every one compressed, and the chain holds.
    #[test]
    fn fast_rotation_with_compression_keeps_n_compressed_files() {
        let d = tmp("fastzst");
        let c = LogFileConfig {
            rotate_size: Some(300),
            keep: Some(3),
            compress: true,
            ..cfg(&d)
        };
        for round in 0..3 {
            let mut f = LogFile::open(c.clone()).unwrap();
            for i in 0..60 {
                f.write_chunk(&records(round * 1000 + i * 3, 3)).unwrap();
            }
            f.close().unwrap();
            let names: Vec<String> = all_files(&d)
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names.len(), 4, "{names:?}");
            assert_eq!(names[0], "flows.jsonl");
            assert!(
                names[1..]
                    .iter()
                    .all(|n| n.starts_with("flows.jsonl.") && n.ends_with(".zst")),
                "{names:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    fn manual() -> i128 {
        i128::from(NOW.load(std::sync::atomic::Ordering::Relaxed)) * 1_000_000_000
    }

    #[test]
    fn time_rotation_falls_on_multiples_of_the_period() {
        let d = tmp("time");
        let set = |s: i64| NOW.store(s, std::sync::atomic::Ordering::Relaxed);
        set(2 * 3600 - 10);
        let mut f = LogFile::open(LogFileConfig {
            rotate_every: Some(Duration::from_secs(3600)),
            compress: false,
            clock: Some(manual),
            ..cfg(&d)
        })
        .unwrap();
        f.write_chunk(&records(0, 3)).unwrap();
        f.idle().unwrap();
        assert_eq!(all_files(&d).len(), 1, "not yet");
        set(2 * 3600);
        f.idle().unwrap();
        assert_eq!(all_files(&d).len(), 2, "rotated at the hour");
        // a quiet hour makes no empty file
        set(3 * 3600 + 5);
        f.idle().unwrap();
        assert_eq!(all_files(&d).len(), 2);
        f.write_chunk(&records(3, 3)).unwrap();
        set(4 * 3600);
        f.write_chunk(&records(6, 1)).unwrap();
        f.close().unwrap();
        let files = all_files(&d);
        assert_eq!(files.len(), 3, "{files:?}");
        let r = verify(&files, None).unwrap();
        assert_eq!(
            r.files.iter().map(|f| f.1).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(r.ended_cleanly);
        // the chain records carry the manual clock's time
        let head = std::fs::read_to_string(&files[2]).unwrap();
        assert!(head.starts_with("{\"event\":\"chain\",\"reason\":\"rotate\",\"version\":1,\"ts\":\"1970-01-01T02:00:00"), "{head}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_line_of_a_plain_log_is_moved_aside() {
        let d = tmp("plain");
        let c = LogFileConfig {
            chain: None,
            ..cfg(&d)
        };
        std::fs::write(&c.path, b"{\"a\":1}\n{\"a\":2}\n{\"a\"").unwrap();
        let mut f = LogFile::open(c.clone()).unwrap();
        f.write_chunk(b"{\"a\":3}\n").unwrap();
        f.close().unwrap();
        assert_eq!(
            std::fs::read_to_string(&c.path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("flows.jsonl.torn")).unwrap(),
            "{\"a\"\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn chaining_onto_a_plain_log_or_with_another_key_is_refused() {
        let d = tmp("refuse");
        let c = cfg(&d);
        std::fs::write(&c.path, b"{\"event\":\"open\"}\n").unwrap();
        assert!(matches!(
            LogFile::open(c.clone()),
            Err(LogFileError::NotChained(_))
        ));
        std::fs::remove_file(&c.path).unwrap();
        LogFile::open(c.clone()).unwrap().close().unwrap();
        let keyed = LogFileConfig {
            chain: Some(ChainKey::from_bytes(b"k".to_vec())),
            ..c
        };
        let e = LogFile::open(keyed).unwrap_err();
        assert!(e.to_string().contains("--chain-key"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_stream_chain_verifies() {
        let d = tmp("stream");
        let mut buf = Vec::new();
        {
            let mut s = ChainedStream::new(&mut buf, ChainKey::unkeyed(), Origin::default(), None);
            s.write_chunk(&records(0, 5)).unwrap();
            s.close().unwrap();
        }
        let p = d.join("s.jsonl");
        std::fs::write(&p, &buf).unwrap();
        let r = verify(&[p], None).unwrap();
        assert_eq!(r.records, 7);
        assert!(r.ended_cleanly);
        let _ = std::fs::remove_dir_all(&d);
    }
}
