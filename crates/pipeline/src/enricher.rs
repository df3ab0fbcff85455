//! The pipeline's I/O around the pure model: completing kernel events with
//! what only /proc knows, naming uids, gids and cgroups, hashing
//! executables, and sampling the resource use of processes with open flows.

use netwho_enrich::cgroup::{self, Cgroups};
use netwho_enrich::hash::ExeHashes;
use netwho_enrich::procfs::{ProcError, Procfs};
use netwho_enrich::users::Users;
use netwho_model::record::{Context, Names};
use netwho_model::{Flow, FlowTable, MonoNs, ProcInfo, ProcKey, SensorEvent};
use netwho_sink::status::EnrichCounts;
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Most flows share a handful of (uid, gid, cgroup): their names are
/// resolved once and shared.
const NAMES_CACHED: usize = 4096;
/// A process with open flows is sampled this often.
const SAMPLE_EVERY_NS: u64 = 1_000_000_000;
/// At most this many processes are sampled per turn of the loop (the rest
/// wait for the next turn: the oldest samples go first).
const SAMPLES_PER_TURN: usize = 256;
/// Longest wait per turn for executables being hashed.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
/// Interface addresses are re-read this often.
const LOCAL_ADDRS_EVERY_NS: u64 = 10_000_000_000;

#[derive(Debug)]
/// What only `/proc` and the host know, added to the sensor's events: process details for processes netwho has not seen start, names, cgroups, executable hashes, resource samples.
pub struct Enricher {
    procfs: Procfs,
    users: Users,
    cgroups: Cgroups,
    hashes: ExeHashes,
    names: FxHashMap<(u32, u32, u64), Arc<Names>>,
    sampled: FxHashMap<ProcKey, MonoNs>,
    delayacct: bool,
    local: Arc<HashSet<IpAddr>>,
    local_read: Option<MonoNs>,
    proc_lookup_failures: u64,
    sample_failures: u64,
    community_seed: u16,
}

impl Enricher {
    /// `cgroup_root`: the cgroup v2 mount (from the sensor).
    pub fn new(procfs: Procfs, cgroup_root: Option<PathBuf>) -> Self {
        Enricher {
            procfs,
            users: Users::default(),
            cgroups: Cgroups::new(cgroup_root),
            hashes: ExeHashes::new(),
            names: FxHashMap::default(),
            sampled: FxHashMap::default(),
            delayacct: std::fs::read("/proc/sys/kernel/task_delayacct")
                .is_ok_and(|b| b.first() == Some(&b'1')),
            local: Arc::default(),
            local_read: None,
            proc_lookup_failures: 0,
            sample_failures: 0,
            community_seed: 0,
        }
    }

    /// Its failures so far (status records).
    pub fn counts(&self) -> EnrichCounts {
        EnrichCounts {
            proc_lookup_failures: self.proc_lookup_failures,
            name_lookup_failures: self.users.misses,
            cgroup_lookup_failures: self.cgroups.misses,
            hash_failures: self.hashes.failures,
            hash_dropped: self.hashes.dropped,
            sample_failures: self.sample_failures,
            strings_capped: self.procfs.capped(),
        }
    }

    /// Whether block I/O waits are measured (kernel delay accounting).
    pub fn delayacct(&self) -> bool {
        self.delayacct
    }

    /// The cgroup paths it knows (the kernel scope resolves units with them).
    pub fn cgroups(&mut self) -> &mut Cgroups {
        &mut self.cgroups
    }

    /// The `/proc` it reads.
    pub fn procfs(&self) -> &Procfs {
        &self.procfs
    }

    /// Every running process, for the table at start-up.
    pub fn snapshot(&mut self) -> Vec<ProcInfo> {
        let cg = &self.cgroups;
        self.procfs.all(&|p| cg.id_of(p))
    }

    /// Complete an event before the model sees it: an exec's real
    /// executable, its identity and full argv while the process still
    /// runs; a process the table does not know, read from /proc before its
    /// first flow; a new cgroup's name. Extra events to apply first are
    /// pushed to `before`.
    pub fn prepare(
        &mut self,
        ev: &mut SensorEvent,
        table: &FlowTable,
        before: &mut Vec<SensorEvent>,
    ) {
        match ev {
            SensorEvent::Exec(e) => {
                // the kernel gave the path passed to execve (maybe relative,
                // or a script); /proc/PID/exe is the file that runs, unless
                // the process has exec'd again since (its comm tells)
                let same_image = self.procfs.comm(e.proc.tgid).is_ok_and(|c| c == e.comm);
                if same_image && let Ok(exe) = self.procfs.exe(e.proc) {
                    e.exe = exe;
                    e.exe_file = self.procfs.exe_file(e.proc.tgid);
                    if let Some(id) = e.exe_file {
                        let paths = exe_paths(&self.procfs, e.proc.tgid, &e.exe);
                        self.hashes.get(id, || paths);
                    }
                }
                if e.exe_file.is_none() {
                    // gone (or exec'd again; or it went between the reads
                    // above): the file the kernel named is it if its inode
                    // is the one the kernel saw run
                    e.exe_file = self.procfs.file_if_inode(&e.exe, e.exe_ino);
                    if let Some(id) = e.exe_file {
                        self.hashes.get(id, || vec![PathBuf::from(&e.exe)]);
                    }
                }
                if e.args_truncated
                    && let Ok(full) = self.procfs.cmdline(e.proc)
                {
                    e.cmdline = full;
                }
            }
            SensorEvent::FlowOpen(o) if !table.procs().contains(o.proc) => {
                let cg = &self.cgroups;
                match self.procfs.info(o.proc.tgid, &|p| cg.id_of(p)) {
                    Ok(info) if info.key == o.proc => {
                        before.push(SensorEvent::ProcSnapshot(info));
                    }
                    _ => self.proc_lookup_failures += 1,
                }
            }
            SensorEvent::CgroupCreated { id, path, .. } => self.cgroups.learn(*id, path),
            _ => {}
        }
    }

    /// Give hashes asked for this turn (new executables) a moment to
    /// finish, so that the first records of a new binary carry its hash.
    /// Bounded: a huge file is hashed in the background and only later
    /// records have it.
    pub fn settle_hashes(&mut self) {
        self.hashes.settle(HASH_WAIT);
    }

    /// Executables' hashes made since the last call (flows that were
    /// handed on before their hash was known).
    pub fn fresh_hashes(&mut self) -> Vec<netwho_enrich::hash::FreshHash> {
        self.hashes.take_fresh()
    }

    /// Resource samples of processes with open flows that have none from
    /// the last second.
    pub fn sample(&mut self, table: &FlowTable, now: MonoNs, out: &mut Vec<SensorEvent>) {
        let mut due: Vec<(MonoNs, ProcKey)> = table
            .procs_with_flows()
            .filter(|k| !table.procs().has_exited(*k))
            .filter_map(|k| {
                let last = self.sampled.get(&k).copied();
                let is_due = last.is_none_or(|t| now.since(t) >= SAMPLE_EVERY_NS);
                is_due.then_some((last.unwrap_or_default(), k))
            })
            .collect();
        due.sort_unstable();
        for (_, k) in due.into_iter().take(SAMPLES_PER_TURN) {
            self.sampled.insert(k, now);
            match self.procfs.usage(k, self.delayacct) {
                Ok(usage) => out.push(SensorEvent::ProcSample {
                    proc: k,
                    usage,
                    at: now,
                }),
                // gone: its exit event brings the final figures
                Err(ProcError::Gone { .. } | ProcError::Reused { .. }) => {}
                Err(_) => self.sample_failures += 1,
            }
        }
        if self.sampled.len() > 4 * SAMPLES_PER_TURN {
            let live: HashSet<ProcKey> = table.procs_with_flows().collect();
            self.sampled.retain(|k, _| live.contains(k));
        }
    }

    /// This host's addresses, re-read every few seconds (shared, not
    /// copied, with each turn's filter).
    pub fn local_addrs(&mut self, now: MonoNs) -> Arc<HashSet<IpAddr>> {
        if self
            .local_read
            .is_none_or(|t| now.since(t) >= LOCAL_ADDRS_EVERY_NS)
        {
            self.local = Arc::new(netwho_enrich::net::local_addrs());
            self.local_read = Some(now);
        }
        Arc::clone(&self.local)
    }

    /// Records carry Community IDs with this seed (`--community-id-seed`).
    pub fn set_community_seed(&mut self, seed: u16) {
        self.community_seed = seed;
    }

    /// Everything a flow's record needs beyond the flow.
    pub fn context(&mut self, f: &Flow, table: &FlowTable, now: MonoNs) -> Context {
        // (the paths are made only for a file not hashed yet: this runs
        // for every record)
        let procfs = &self.procfs;
        let exe_sha256 = f.proc.exe_file.and_then(|id| {
            self.hashes
                .get(id, || exe_paths(procfs, f.key.proc.tgid, &f.proc.exe))
        });
        Context {
            names: self.names(f, now),
            exe_sha256,
            usage: table.usage_of(f),
            track: table.procs().usage(f.key.proc).copied(),
            community_seed: self.community_seed,
        }
    }

    /// Names for a flow's record.
    pub fn names(&mut self, f: &Flow, now: MonoNs) -> Arc<Names> {
        let cgroup_id = if f.cgroup_id != 0 {
            f.cgroup_id
        } else {
            f.proc.cgroup_id
        };
        let key = (f.uid, f.gid, cgroup_id);
        if let Some(n) = self.names.get(&key) {
            return Arc::clone(n);
        }
        let path = self
            .cgroups
            .path(cgroup_id, now.0)
            .map(str::to_string)
            .unwrap_or_default();
        let names = Arc::new(Names {
            unit: cgroup::unit_of(&path).unwrap_or_default().to_string(),
            container_id: cgroup::container_of(&path).unwrap_or_default().to_string(),
            cgroup: path,
            user: self.users.user(f.uid).to_string(),
            group: self.users.group(f.gid).to_string(),
        });
        if names.cgroup.is_empty() && cgroup_id != 0 {
            // not resolved yet: do not remember the miss
            return names;
        }
        if self.names.len() >= NAMES_CACHED {
            self.names.clear();
        }
        self.names.insert(key, Arc::clone(&names));
        names
    }
}

/// Where a process's executable can be read for hashing: its
/// `/proc/PID/exe`, then the path it ran by.
fn exe_paths(procfs: &Procfs, tgid: u32, exe: &str) -> Vec<PathBuf> {
    let mut v = vec![procfs.file(tgid, "exe")];
    if exe.starts_with('/') {
        v.push(PathBuf::from(exe));
    }
    v
}
