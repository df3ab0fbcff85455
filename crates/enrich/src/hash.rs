//! SHA-256 of executables, computed off the hot path.
//!
//! A hash is asked for by the file's identity (device, inode, mtime) with
//! the paths it may be opened by (`/proc/PID/exe` first: it reaches the
//! file even if it was replaced or deleted since). One worker thread reads
//! and hashes; requests go through a bounded queue (a full queue drops the
//! request, counted, and the next flow of that binary asks again). A file
//! whose identity no longer matches what was asked for is not hashed: the
//! hash always belongs to the file that ran.

use crate::procfs::file_id;
use netwho_model::FileId;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

const QUEUE: usize = 256;
const MAX_CACHED: usize = 16_384;
/// Larger files are not hashed (counted as failures).
const MAX_BYTES: u64 = 1 << 30;

struct Job {
    id: FileId,
    paths: Vec<PathBuf>,
}

type Done = (FileId, Option<String>);

#[derive(Debug)]
/// Executables' SHA-256, made by one worker thread behind a bounded queue,
/// cached by file identity.
pub struct ExeHashes {
    tx: Option<SyncSender<Job>>,
    rx: Receiver<Done>,
    /// The worker's ends of the channels until its thread starts, at the
    /// first request (so that it starts with the privileges the process
    /// has by then, not with those it had at start-up).
    idle: Option<(Receiver<Job>, SyncSender<Done>)>,
    done: HashMap<FileId, Arc<str>>,
    /// Asked for and not done, with the path the process ran it by.
    pending: HashMap<FileId, Option<Arc<str>>>,
    failed: HashSet<FileId>,
    /// Files that could not be read or no longer matched.
    pub failures: u64,
    /// Requests dropped because the queue was full.
    pub dropped: u64,
    /// Hashes made since [`ExeHashes::take_fresh`] last took them (at most
    /// [`MAX_FRESH`]; past that they are only in the cache).
    fresh: Vec<FreshHash>,
}

/// A hash made after it was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreshHash {
    /// The file.
    pub file: FileId,
    /// Its SHA-256 (hex).
    pub sha256: Arc<str>,
    /// The path a process ran it by (not `/proc/PID/exe`), when known.
    pub exe: Option<Arc<str>>,
}

/// Fresh hashes kept for [`ExeHashes::take_fresh`].
pub const MAX_FRESH: usize = 4_096;

impl Default for ExeHashes {
    fn default() -> Self {
        Self::new()
    }
}

/// Hash the first of `paths` that is the file `id` names.
pub fn hash_file(id: FileId, paths: &[PathBuf]) -> Option<String> {
    for p in paths {
        let Ok(mut f) = std::fs::File::open(p) else {
            continue;
        };
        let Ok(m) = f.metadata() else { continue };
        if file_id(&m) != id || m.len() > MAX_BYTES {
            continue;
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        // the file must not have changed while we read it
        if f.metadata().map(|m| file_id(&m)).ok() != Some(id) {
            return None;
        }
        let digest = h.finalize();
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push_str(&format!("{b:02x}"));
        }
        return Some(hex);
    }
    None
}

impl ExeHashes {
    /// A hasher; its worker thread starts at the first request.
    pub fn new() -> Self {
        let (tx, jobs) = sync_channel::<Job>(QUEUE);
        let (results, rx) = sync_channel::<Done>(QUEUE);
        ExeHashes {
            tx: Some(tx),
            rx,
            idle: Some((jobs, results)),
            done: HashMap::new(),
            pending: HashMap::new(),
            failed: HashSet::new(),
            failures: 0,
            dropped: 0,
            fresh: Vec::new(),
        }
    }

    fn start_worker(&mut self) {
        let Some((jobs, results)) = self.idle.take() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("netwho-hash".into())
            .spawn(move || {
                // it reads other users' executables (through /proc/PID/exe)
                if let Err(e) = crate::caps::keep_only(&crate::caps::COLLECTOR_KEEPS) {
                    log::warn!("the executable hasher: cannot drop capabilities: {e}");
                }
                for job in jobs {
                    let h = hash_file(job.id, &job.paths);
                    if results.send((job.id, h)).is_err() {
                        break;
                    }
                }
            });
        if spawned.is_err() {
            // no thread (out of resources): every request fails, counted
            self.tx = None;
        }
    }

    fn finish(&mut self, id: FileId, h: Option<String>) {
        let exe = self.pending.remove(&id).flatten();
        match h {
            Some(h) => {
                if self.done.len() >= MAX_CACHED {
                    self.done.clear();
                }
                let h: Arc<str> = Arc::from(h);
                if self.fresh.len() < MAX_FRESH {
                    self.fresh.push(FreshHash {
                        file: id,
                        sha256: Arc::clone(&h),
                        exe,
                    });
                }
                self.done.insert(id, h);
            }
            None => {
                self.failures += 1;
                if self.failed.len() >= MAX_CACHED {
                    self.failed.clear();
                }
                self.failed.insert(id);
            }
        }
    }

    fn collect(&mut self) {
        while let Ok((id, h)) = self.rx.try_recv() {
            self.finish(id, h);
        }
    }

    /// The hashes made since the last call (for those who asked before
    /// they were known).
    pub fn take_fresh(&mut self) -> Vec<FreshHash> {
        self.collect();
        std::mem::take(&mut self.fresh)
    }

    /// The hash of `id` if known; otherwise ask for it (once).
    pub fn get(&mut self, id: FileId, paths: impl FnOnce() -> Vec<PathBuf>) -> Option<Arc<str>> {
        self.collect();
        if let Some(h) = self.done.get(&id) {
            return Some(Arc::clone(h));
        }
        if self.pending.contains_key(&id) || self.failed.contains(&id) {
            return None;
        }
        self.start_worker();
        let Some(tx) = &self.tx else {
            self.failures += 1;
            self.failed.insert(id);
            return None;
        };
        let paths = paths();
        let exe = paths
            .iter()
            .rev()
            .find(|p| !p.starts_with("/proc/"))
            .map(|p| Arc::from(p.to_string_lossy()));
        match tx.try_send(Job { id, paths }) {
            Ok(()) => {
                self.pending.insert(id, exe);
            }
            Err(TrySendError::Full(_)) => self.dropped += 1,
            Err(TrySendError::Disconnected(_)) => {
                self.failures += 1;
                self.tx = None;
            }
        }
        None
    }

    /// Wait (up to `timeout`) for the pending hashes: tests, and shutdown.
    pub fn settle(&mut self, timeout: std::time::Duration) {
        let mut left = timeout;
        let step = std::time::Duration::from_millis(5);
        while !self.pending.is_empty() && !left.is_zero() {
            if let Ok((id, h)) = self.rx.recv_timeout(step) {
                self.finish(id, h);
            }
            left = left.saturating_sub(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_the_file_that_was_asked_for() {
        let dir = std::env::temp_dir().join(format!("netwho-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bin");
        std::fs::write(&p, b"abc").unwrap();
        let id = file_id(&std::fs::metadata(&p).unwrap());
        // SHA-256("abc")
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            hash_file(id, std::slice::from_ref(&p)).as_deref(),
            Some(abc)
        );
        let mut h = ExeHashes::new();
        assert_eq!(h.get(id, || vec![p.clone()]), None, "asked, not yet done");
        h.settle(std::time::Duration::from_secs(10));
        assert_eq!(h.get(id, Vec::new).as_deref(), Some(abc));
        // another identity (a replaced binary) is not hashed from this file
        let other = FileId {
            ino: id.ino + 1,
            ..id
        };
        assert_eq!(hash_file(other, std::slice::from_ref(&p)), None);
        assert_eq!(h.get(other, || vec![p.clone()]), None);
        h.settle(std::time::Duration::from_secs(10));
        assert_eq!(h.get(other, Vec::new), None);
        assert_eq!(h.failures, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
