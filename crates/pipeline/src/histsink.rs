//! The history sink (`netwho daemon`): flow events into the history
//! database (`netwho_store::history`).
//!
//! The pipeline's thread turns each event into an observation (the flow's
//! totals so far, with its process and peer) and keeps the latest per
//! flow; every `commit_every` the batch goes to the writer thread over a
//! bounded channel (2 batches). When the writer is behind, observations
//! keep merging into the next batch (the totals are cumulative, so the
//! latest holds everything; only the minute the bytes land in moves):
//! nothing is dropped and memory is bounded by the number of flows. A
//! batch the database refuses (disk full) is kept and retried with the
//! next one, up to [`RETRY_MAX`] observations (the oldest go first past
//! that, counted as lost); every failure is counted (the status's
//! `partial.storage_failures`) and logged. A database deleted or replaced
//! while the daemon runs is noticed at the next batch: it is reported and
//! the writer goes on in a new database at the path.

use crate::{RecordRef, Sink, SinkControl};
use netwho_model::time::WallClock;
use netwho_model::{Direction, Flow, FlowEvent, MonoNs, ProcKey, nanos};
use netwho_query::canonical;
use netwho_sink::status::StatusRecord;
use netwho_store::history::{Counters, History, Obs, PeerDim, ProcDim, Retention};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Debug)]
/// How the history is kept.
pub struct HistoryConfig {
    /// How often a batch is committed (and counters read).
    pub commit_every: Duration,
    /// How long each tier of the history is kept.
    pub retention: Retention,
    /// How often old data is pruned.
    pub prune_every: Duration,
    /// `/proc/sys/kernel/random/boot_id` (processes are keyed by boot).
    pub boot_id: String,
    /// Look up the names of remote addresses (the system's resolver:
    /// /etc/hosts, then reverse DNS) and keep them with the history.
    pub remote_names: bool,
}

/// Addresses asked about at most before the set starts over (asking again
/// only refreshes a name).
const ASKED_MAX: usize = 100_000;

/// Observations kept for a database that refuses them (one per flow:
/// each holds its flow's totals); past this the oldest are let go.
pub const RETRY_MAX: usize = 200_000;

/// What the writer counts, read by the pipeline's thread for the status.
#[derive(Debug, Default)]
pub struct WriterCounts {
    /// Batches the database refused.
    pub failures: AtomicU64,
    /// Observations let go (the database refused them too long).
    pub lost: AtomicU64,
}

enum Msg {
    Batch {
        obs: Vec<Obs>,
        /// (address, name) resolved since the last batch.
        names: Vec<(String, String)>,
        now_ns: i64,
    },
}

#[derive(Debug)]
/// The daemon's history: observations batched to a writer thread that owns the database (`docs/specs/history.md`).
pub struct HistorySink {
    cfg: HistoryConfig,
    tx: Option<SyncSender<Msg>>,
    writer: Option<JoinHandle<()>>,
    pending: FxHashMap<u64, Obs>,
    procs: FxHashMap<ProcKey, Arc<ProcDim>>,
    /// Batches the database refused (counted by the writer; each is
    /// kept and retried), and observations let go.
    counts: Arc<WriterCounts>,
    /// Batches that waited for a slow writer and merged into the next.
    merged: u64,
    /// (failures, merged) as last reported.
    reported: (u64, u64),
    last_sent: Option<MonoNs>,
    now: MonoNs,
    wall: WallClock,
    resolver: Option<netwho_enrich::dns::Resolver>,
    asked: rustc_hash::FxHashSet<std::net::IpAddr>,
    names: Vec<(String, String)>,
}

impl HistorySink {
    /// Starts the writer thread on an open database.
    pub fn new(db: History, cfg: HistoryConfig) -> std::io::Result<Self> {
        let counts = Arc::new(WriterCounts::default());
        let (tx, rx) = sync_channel(2);
        let st = Arc::clone(&counts);
        let (retention, prune_every) = (cfg.retention, cfg.prune_every);
        let writer = std::thread::Builder::new()
            .name("netwho-history".into())
            .spawn(move || {
                // the database is its owner's (root): no privilege needed
                netwho_enrich::caps::drop_all_here("the history writer");
                write_loop(db, &rx, &st, retention, prune_every);
            })?;
        let resolver = if cfg.remote_names {
            Some(netwho_enrich::dns::Resolver::spawn()?)
        } else {
            None
        };
        Ok(HistorySink {
            resolver,
            asked: rustc_hash::FxHashSet::default(),
            names: Vec::new(),
            cfg,
            tx: Some(tx),
            writer: Some(writer),
            pending: FxHashMap::default(),
            procs: FxHashMap::default(),
            counts,
            merged: 0,
            reported: (0, 0),
            last_sent: None,
            now: MonoNs(0),
            wall: WallClock::default(),
        })
    }

    fn observe(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        let (now, wall) = (rec.now(), rec.wall());
        self.now = self.now.max(now);
        self.wall = wall;
        let f = ev.flow();
        if let Some(r) = &mut self.resolver
            && !f.remote.addr.is_unspecified()
            && !self.asked.contains(&f.remote.addr)
        {
            if self.asked.len() >= ASKED_MAX {
                self.asked.clear();
            }
            // a full queue skips it; it is asked again at its next flow
            if r.ask(f.remote.addr) {
                self.asked.insert(f.remote.addr);
            }
        }
        let proc = match self.procs.get(&f.key.proc) {
            Some(p) if p.uid == f.uid && p.comm == f.comm => Arc::clone(p),
            _ => {
                let p = Arc::new(proc_dim(f, rec, &self.cfg.boot_id));
                self.procs.insert(f.key.proc, Arc::clone(&p));
                p
            }
        };
        let unix = |t: MonoNs| i64::try_from(wall.unix_ns(t)).unwrap_or(i64::MAX);
        let o = Obs {
            fid: f.id.0,
            proc,
            peer: peer_dim(f),
            lport: f.local.port,
            rport: f.remote.port,
            opened_ns: unix(f.opened),
            at_ns: unix(now),
            totals: Counters {
                payload: f.payload,
                wire: f.wire,
            },
            closed: f
                .closed
                .map(|c| (unix(c), f.close_reason.map_or("closed", |r| r.name()))),
            attribution: f.attribution.name(),
        };
        self.pending.insert(o.fid, o);
    }

    /// Hands the batch to the writer if it is due (or `force`).
    fn send(&mut self, force: bool) {
        let due = self
            .last_sent
            .is_none_or(|t| self.now.since(t) >= nanos(self.cfg.commit_every));
        if !(due || force) {
            return;
        }
        // names come after the traffic: they go with the next batch, or
        // alone when there is no more traffic
        if let Some(r) = &self.resolver {
            for (ip, name) in r.answers.try_iter() {
                if let Some(n) = name {
                    self.names.push((ip.to_string(), n));
                }
            }
        }
        if self.pending.is_empty() && self.names.is_empty() {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let obs: Vec<Obs> = self.pending.drain().map(|(_, o)| o).collect();
        let names = std::mem::take(&mut self.names);
        let now_ns = i64::try_from(self.wall.unix_ns(self.now)).unwrap_or(i64::MAX);
        let msg = Msg::Batch { obs, names, now_ns };
        let back = if force {
            tx.send(msg).err().map(|e| e.0)
        } else {
            match tx.try_send(msg) {
                Ok(()) => None,
                Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => Some(m),
            }
        };
        self.last_sent = Some(self.now);
        if let Some(Msg::Batch { obs, names, .. }) = back {
            // the writer is behind: these merge into the next batch
            self.merged += 1;
            self.names.extend(names);
            for o in obs {
                self.pending.entry(o.fid).or_insert(o);
            }
        }
    }
}

fn write_loop(
    mut db: History,
    rx: &Receiver<Msg>,
    counts: &WriterCounts,
    retention: Retention,
    prune_every: Duration,
) {
    let mut retry: FxHashMap<u64, Obs> = FxHashMap::default();
    let mut last_prune: Option<i64> = None;
    while let Ok(Msg::Batch { obs, names, now_ns }) = rx.recv() {
        if let Some(what) = db.replaced() {
            // what is written to an unlinked file is lost at exit
            match db.reopen() {
                Ok(new) => {
                    log::error!(
                        "history: {what} while the daemon ran; a new database is written there from now on (what the old one held is gone with it)"
                    );
                    db = new;
                }
                Err(e) => {
                    counts.failures.fetch_add(1, Ordering::Relaxed);
                    log::error!("history: {what}, and a new one cannot be made: {e}");
                }
            }
        }
        if let Err(e) = db.put_names(&names, now_ns) {
            log::warn!("history: {} names of remotes not stored: {e}", names.len());
        }
        let batch: Vec<Obs> = if retry.is_empty() {
            obs
        } else {
            for o in obs {
                retry.insert(o.fid, o);
            }
            retry.drain().map(|(_, o)| o).collect()
        };
        // (a batch of names only has no observations)
        let stored = if batch.is_empty() {
            Ok(())
        } else {
            db.ingest(&batch).map(|_| ())
        };
        match stored {
            Ok(()) => {}
            Err(e) => {
                counts.failures.fetch_add(1, Ordering::Relaxed);
                log::error!("history: {e} (the batch is kept and retried)");
                retry.extend(batch.into_iter().map(|o| (o.fid, o)));
                let lost = bound_retry(&mut retry, RETRY_MAX);
                if lost > 0 {
                    counts.lost.fetch_add(lost, Ordering::Relaxed);
                    log::error!(
                        "history: the database has refused batches for long: {lost} observations (the flows seen least recently) are let go"
                    );
                }
            }
        }
        let every = i64::try_from(prune_every.as_nanos()).unwrap_or(i64::MAX);
        if last_prune.is_none_or(|t| now_ns - t >= every) {
            last_prune = Some(now_ns);
            match db.prune(now_ns, &retention) {
                Ok(n) if n > 0 => log::info!("history: pruned {n} rows"),
                Ok(_) => {}
                Err(e) => log::error!("history: pruning: {e}"),
            }
        }
    }
    if !retry.is_empty() {
        let batch: Vec<Obs> = retry.into_values().collect();
        if let Err(e) = db.ingest(&batch) {
            log::error!(
                "history: {} observations not stored at exit: {e}",
                batch.len()
            );
        }
    }
}

/// Keeps at most `max` observations, the most recent; returns how many
/// were let go.
fn bound_retry(retry: &mut FxHashMap<u64, Obs>, max: usize) -> u64 {
    if retry.len() <= max {
        return 0;
    }
    let mut by_age: Vec<(i64, u64)> = retry.iter().map(|(k, o)| (o.at_ns, *k)).collect();
    by_age.sort_unstable();
    let excess = retry.len() - max;
    for (_, k) in by_age.into_iter().take(excess) {
        retry.remove(&k);
    }
    excess as u64
}

fn proc_dim(f: &Flow, rec: &mut RecordRef<'_>, boot: &str) -> ProcDim {
    let wall = rec.wall();
    let ctx = rec.context();
    let n = &*ctx.names;
    let p = &f.proc;
    ProcDim {
        boot: boot.to_owned(),
        tgid: f.key.proc.tgid,
        start_ticks: f.key.proc.start_ticks,
        start_ns: i64::try_from(wall.unix_ns(f.key.proc.start())).unwrap_or(0),
        ppid: p.ppid,
        comm: f.comm.clone(),
        parent_comm: p.parent_comm.clone(),
        exe: p.exe.clone(),
        cmdline: p.cmdline.clone(),
        uid: f.uid,
        gid: f.gid,
        login_uid: p.login_uid,
        user: n.user.clone(),
        group: n.group.clone(),
        unit: n.unit.clone(),
        cgroup: n.cgroup.clone(),
        container: n.container_id.clone(),
        exe_sha256: ctx.exe_sha256.as_deref().map(str::to_owned),
    }
}

/// The peer: for an inbound flow the local port is the service.
fn peer_dim(f: &Flow) -> PeerDim {
    PeerDim {
        proto: f.proto,
        direction: f.direction.name(),
        laddr: canonical(f.local.addr),
        raddr: canonical(f.remote.addr),
        port: match f.direction {
            Direction::Inbound => f.local.port,
            _ => f.remote.port,
        },
        netns: f.netns,
        // the name its process resolved (known when the flow opened), else
        // the server name its ClientHello asked for (read a moment after:
        // a commit between the two puts the flow's first bytes under its
        // address)
        name: f
            .remote_name
            .as_deref()
            .and_then(|n| n.rname.as_deref().or(n.sni.as_deref()))
            .unwrap_or_default()
            .to_string(),
        name_from: match f.remote_name.as_deref() {
            Some(n) if n.rname.is_some() => match n.source {
                Some(netwho_model::names::RnameSource::Shared) => 2,
                _ => 1,
            },
            Some(n) if n.sni.is_some() => 4,
            _ => 0,
        },
    }
}

impl Sink for HistorySink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.observe(ev, rec);
    }

    /// At each status record: what the writer could not do on time.
    fn status(&mut self, _st: &StatusRecord) {
        let now = (self.counts.failures.load(Ordering::Relaxed), self.merged);
        if now != self.reported {
            self.reported = now;
            log::warn!(
                "history: so far {} batch(es) refused by the database (kept and retried), {} \
                 merged into the next because the writer was behind",
                now.0,
                now.1
            );
        }
    }

    fn proc_exit(&mut self, proc: ProcKey, _at: MonoNs) {
        self.procs.remove(&proc);
    }

    /// A slow writer gets bigger batches; only a database that refuses
    /// batches for long makes it let observations go.
    fn dropped(&self) -> u64 {
        self.counts.lost.load(Ordering::Relaxed)
    }

    fn storage_failures(&self) -> u64 {
        self.counts.failures.load(Ordering::Relaxed)
    }

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        self.now = self.now.max(now);
        self.wall = wall;
        SinkControl::Continue
    }

    fn flush(&mut self) -> SinkControl {
        self.send(false);
        SinkControl::Continue
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.send(true);
        self.tx = None;
        if let Some(w) = self.writer.take() {
            w.join()
                .map_err(|_| std::io::Error::other("the history writer panicked"))?;
        }
        Ok(())
    }

    fn updates_every(&self) -> Option<Duration> {
        Some(self.cfg.commit_every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::record::Context;
    use netwho_model::{Endpoint, Flow};

    fn obs(fid: u64, at_ns: i64) -> Obs {
        Obs {
            fid,
            proc: Arc::new(ProcDim::default()),
            peer: PeerDim {
                proto: netwho_model::Proto::Tcp,
                direction: "outbound",
                laddr: [10, 231, 0, 1].into(),
                raddr: [10, 231, 0, 2].into(),
                port: 80,
                netns: 1,
                name: String::new(),
                name_from: 0,
            },
            lport: 1,
            rport: 80,
            opened_ns: 0,
            at_ns,
            totals: Counters::default(),
            closed: None,
            attribution: "ebpf",
        }
    }

    #[test]
    fn a_refused_backlog_keeps_the_newest_and_counts_the_rest() {
        let mut retry: FxHashMap<u64, Obs> = (0..10).map(|i| (i, obs(i, i as i64))).collect();
        assert_eq!(bound_retry(&mut retry, 20), 0);
        assert_eq!(bound_retry(&mut retry, 4), 6);
        let mut kept: Vec<u64> = retry.keys().copied().collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![6, 7, 8, 9]);
    }

    /// A database deleted under the daemon is noticed at the next batch:
    /// the writer goes on in a new one at the path.
    #[test]
    fn a_deleted_database_is_noticed_and_made_again() {
        let dir = std::env::temp_dir().join(format!("netwho-histsink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.db");
        let mut sink = HistorySink::new(
            History::create(&path).unwrap(),
            HistoryConfig {
                commit_every: Duration::from_secs(1),
                retention: Retention::default(),
                prune_every: Duration::from_secs(3600),
                boot_id: "b".into(),
                remote_names: false,
            },
        )
        .unwrap();
        let wall = WallClock {
            boot_to_unix_ns: 1_795_392_000 * 1_000_000_000,
        };
        let feed = |sink: &mut HistorySink, cookie: u64, at_s: u64, sent: u64| {
            let mut f = Flow::example(100, cookie, Endpoint::new([10, 231, 0, 2].into(), 80));
            f.payload.bytes_sent = sent;
            f.closed = Some(MonoNs(at_s * 1_000_000_000));
            let ev = FlowEvent::Closed(f);
            let mut lookup = |_: &FlowEvent| Context::default();
            let mut rec = RecordRef::new(&ev, MonoNs(at_s * 1_000_000_000), wall, &mut lookup);
            sink.event(&ev, &mut rec);
            sink.flush();
        };
        feed(&mut sink, 1, 10, 100);
        // let the writer take the first batch before the file goes
        for _ in 0..200 {
            if History::open_read(&path)
                .ok()
                .and_then(|h| h.span().ok().flatten())
                .is_some()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::remove_file(&path).unwrap();
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("h.db{side}")));
        }
        feed(&mut sink, 2, 20, 7);
        sink.finish().unwrap();
        let h = History::open_read(&path).expect("a new database at the path");
        assert_eq!(
            h.counts()
                .unwrap()
                .iter()
                .find(|c| c.0 == "flow")
                .map(|c| c.1),
            Some(1)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
