//! The daemon's on-disk spool: every batch of fleet records is written
//! here first and removed only once NATS JetStream has acknowledged it.
//! While the server is unreachable batches wait here (across restarts of
//! the daemon, too) up to a bound in bytes; beyond it the oldest batch is
//! dropped and its records counted as lost.
//!
//! A batch is one file, `ORDER.batch` (ORDER: 16 hex digits, increasing):
//! a header line `netwho-spool 1 MSG-ID RECORDS` and the records, one
//! JSON line each. It is written as `.tmp` and renamed, so a crash leaves
//! whole batches only. MSG-ID is the batch's JetStream message id (the
//! server drops a repeat within its duplicate window; the collector's
//! primary key drops any later one).

use crate::FleetError;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAGIC: &str = "netwho-spool 1";

/// One spooled batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Its place in the spool (batches leave in this order).
    pub order: u64,
    /// Its message id (JetStream drops a repeat).
    pub msg_id: String,
    /// Records in it.
    pub records: u32,
    /// JSON lines.
    pub payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    /// order -> (bytes on disk, records)
    files: BTreeMap<u64, (u64, u32)>,
    bytes: u64,
    next_order: u64,
    next_seq: u64,
    /// Records dropped because the spool was full.
    lost: u64,
}

#[derive(Debug)]
/// The daemon's on-disk queue of batches for NATS: one file per batch, written and renamed, bounded in bytes, kept across restarts.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// This run's prefix of message ids.
    instance: String,
    state: Mutex<State>,
}

fn name(order: u64) -> String {
    format!("{order:016x}.batch")
}

/// Header and payload of a batch file (None: not one).
fn parse(order: u64, data: Vec<u8>) -> Option<Batch> {
    let nl = data.iter().position(|b| *b == b'\n')?;
    let head = std::str::from_utf8(data.get(..nl)?).ok()?;
    let rest = head.strip_prefix(MAGIC)?.trim_start();
    let (msg_id, records) = rest.split_once(' ')?;
    Some(Batch {
        order,
        msg_id: msg_id.to_string(),
        records: records.parse().ok()?,
        payload: data.get(nl + 1..)?.to_vec(),
    })
}

impl Spool {
    /// Opens (creates) the spool in `dir`, keeping what an earlier run
    /// left. `instance` starts this run's message ids (unique per run).
    pub fn open(dir: &Path, max_bytes: u64, instance: String) -> Result<Spool, FleetError> {
        let err = |e: io::Error| FleetError::Spool(dir.to_path_buf(), e);
        // the spool is netwho's own directory: 0750, batches 0600
        netwho_store::private::own_dir(dir, None).map_err(err)?;
        let mut st = State::default();
        for entry in fs::read_dir(dir).map_err(err)? {
            let path = entry.map_err(err)?.path();
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file.ends_with(".tmp") {
                // a batch whose writing a crash interrupted: never spooled
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(order) = file
                .strip_suffix(".batch")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            else {
                continue;
            };
            let data = fs::read(&path).map_err(err)?;
            let size = data.len() as u64;
            match parse(order, data) {
                Some(b) => {
                    st.files.insert(order, (size, b.records));
                    st.bytes += size;
                    st.next_order = st.next_order.max(order + 1);
                }
                None => {
                    log::warn!(
                        "fleet spool: {} is not a spooled batch; renamed to .bad and left alone",
                        path.display()
                    );
                    let _ = fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            instance,
            state: Mutex::new(st),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // (no code panics while holding it; a poisoned lock is still valid)
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Spools a batch of `records` JSON lines. Returns the records dropped
    /// to keep within the bound (the oldest batches; never this one).
    pub fn push(&self, payload: &[u8], records: u32) -> io::Result<u64> {
        let mut st = self.state();
        let order = st.next_order;
        let msg_id = format!("{}-{}", self.instance, st.next_seq);
        let path = self.dir.join(name(order));
        let tmp = path.with_extension("tmp");
        // 0600: the records name every user's processes; synced before
        // the rename and the rename synced, so a power loss leaves the
        // whole batch or none (never a renamed file with a hole)
        let mut f =
            netwho_store::private::create(&tmp, netwho_store::private::Access::OWNER, true)?;
        f.write_all(format!("{MAGIC} {msg_id} {records}\n").as_bytes())?;
        f.write_all(payload)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir).and_then(|d| d.sync_all())?;
        let size = fs::metadata(&path).map_or(payload.len() as u64, |m| m.len());
        st.next_order += 1;
        st.next_seq += 1;
        st.files.insert(order, (size, records));
        st.bytes += size;
        let mut lost = 0u64;
        while st.bytes > self.max_bytes && st.files.len() > 1 {
            let Some((old, (sz, n))) = st.files.pop_first() else {
                break;
            };
            let _ = fs::remove_file(self.dir.join(name(old)));
            st.bytes -= sz;
            lost += u64::from(n);
        }
        st.lost += lost;
        Ok(lost)
    }

    /// The oldest batch after `after` (all: None), read from disk.
    pub fn next_after(&self, after: Option<u64>) -> io::Result<Option<Batch>> {
        let order = {
            let st = self.state();
            let from = after.map_or(0, |a| a.saturating_add(1));
            match st.files.range(from..).next() {
                Some((o, _)) => *o,
                None => return Ok(None),
            }
        };
        let data = match fs::read(self.dir.join(name(order))) {
            Ok(d) => d,
            // dropped for room meanwhile: the next one
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.next_after(Some(order)),
            Err(e) => return Err(e),
        };
        parse(order, data).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} changed", name(order)),
            )
        })
    }

    /// The server has the batch: forget it.
    pub fn remove(&self, order: u64) -> io::Result<()> {
        let mut st = self.state();
        if let Some((sz, _)) = st.files.remove(&order) {
            st.bytes -= sz;
            match fs::remove_file(self.dir.join(name(order))) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Batches, records and bytes waiting.
    pub fn pending(&self) -> (usize, u64, u64) {
        let st = self.state();
        let records = st.files.values().map(|(_, n)| u64::from(*n)).sum();
        (st.files.len(), records, st.bytes)
    }

    /// Records dropped for room since the spool was opened.
    pub fn lost(&self) -> u64 {
        self.state().lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("netwho-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn batches_survive_a_restart_in_order_with_their_ids() {
        let d = dir("restart");
        let s = Spool::open(&d, 1 << 20, "run1".into()).unwrap();
        s.push(b"{\"a\":1}\n", 1).unwrap();
        s.push(b"{\"a\":2}\n{\"a\":3}\n", 2).unwrap();
        let first = s.next_after(None).unwrap().unwrap();
        assert_eq!((first.msg_id.as_str(), first.records), ("run1-0", 1));
        s.remove(first.order).unwrap();
        // a crash mid-write leaves a .tmp, which is not a batch
        fs::write(d.join("0000000000000007.tmp"), b"half").unwrap();
        fs::write(d.join("0000000000000008.batch"), b"garbage").unwrap();
        drop(s);
        let s = Spool::open(&d, 1 << 20, "run2".into()).unwrap();
        assert_eq!(s.pending().1, 2);
        let b = s.next_after(None).unwrap().unwrap();
        assert_eq!((b.msg_id.as_str(), b.records), ("run1-1", 2));
        assert_eq!(b.payload, b"{\"a\":2}\n{\"a\":3}\n");
        assert!(s.next_after(Some(b.order)).unwrap().is_none());
        // new batches come after the old ones, with this run's ids
        s.push(b"{}\n", 1).unwrap();
        let c = s.next_after(Some(b.order)).unwrap().unwrap();
        assert!(c.order > b.order && c.msg_id == "run2-0");
        assert!(d.join("0000000000000008.bad").exists());
        assert!(!d.join("0000000000000007.tmp").exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them() {
        let d = dir("full");
        let line = vec![b'x'; 1000];
        let s = Spool::open(&d, 3500, "r".into()).unwrap();
        let mut lost = 0;
        for _ in 0..5 {
            lost += s.push(&line, 10).unwrap();
        }
        let (batches, records, bytes) = s.pending();
        assert!(bytes <= 3500, "{bytes}");
        assert_eq!((batches as u64 * 10, lost), (records, 50 - records));
        assert_eq!(s.lost(), lost);
        // the newest are kept
        let b = s.next_after(None).unwrap().unwrap();
        assert_eq!(b.msg_id, format!("r-{}", 5 - batches));
        fs::remove_dir_all(&d).unwrap();
    }
}
