//! What is known of each process, by [`ProcKey`], with bounded memory.

use crate::ids::{FileId, MonoNs, ProcKey};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// A process called execve().
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcExec {
    /// The process.
    pub proc: ProcKey,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its parent, if known.
    pub parent: Option<ProcKey>,
    /// Its command name.
    pub comm: String,
    /// The executable.
    pub exe: String,
    /// argv.
    pub cmdline: Vec<String>,
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Cgroup id.
    pub cgroup_id: u64,
    /// When (boot time).
    pub at: MonoNs,
    /// The kernel's copy of argv was cut short.
    pub args_truncated: bool,
    /// Audit login uid and session id, when set.
    pub login_uid: Option<u32>,
    /// See `login_uid`.
    pub session: Option<u32>,
    /// Identity of the executable (filled in from /proc while it runs).
    pub exe_file: Option<FileId>,
    /// Inode number of the executed file, as the kernel saw it.
    pub exe_ino: u64,
}

/// A new process (not a thread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcFork {
    /// The parent.
    pub parent: ProcKey,
    /// The child.
    pub child: ProcKey,
    /// The child's command name.
    pub comm: String,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// When.
    pub at: MonoNs,
}

/// Where a process's details came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcSource {
    /// Captured by the kernel at execve().
    Exec,
    /// A forked child that has not exec'd: the parent's image.
    Fork,
    /// Read from /proc (the process predates netwho).
    Procfs,
    /// Nothing known beyond what a flow event carried.
    Unknown,
}

/// One ancestor of a process as it was when the process appeared, linked
/// to its own parent. Chains share their nodes, so a thousand children of
/// one shell hold one copy of the shell's chain.
#[derive(Debug, PartialEq, Eq)]
pub struct Ancestor {
    /// The ancestor.
    pub key: ProcKey,
    /// Its command name.
    pub comm: String,
    /// Its executable.
    pub exe: String,
    /// Its own parent.
    pub up: Option<Arc<Ancestor>>,
}

/// Longest chain walked (a guard; real trees are far shallower).
pub const MAX_ANCESTORS: usize = 64;

/// Ancestors from the parent up to the first process netwho knows nothing
/// above (PID 1, normally).
pub fn ancestors(first: Option<&Arc<Ancestor>>) -> impl Iterator<Item = &Ancestor> {
    std::iter::successors(first.map(|a| &**a), |a| a.up.as_deref()).take(MAX_ANCESTORS)
}

/// Resource use of a process at one moment (from /proc, or from the kernel
/// at exit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used so far, user + system, all threads.
    pub cpu_ns: u64,
    /// Resident memory.
    pub rss_bytes: u64,
    /// The largest resident size so far.
    pub rss_peak_bytes: u64,
    /// Major page faults so far.
    pub major_faults: u64,
    /// Time blocked on block I/O (needs kernel delay accounting).
    pub iowait_ns: Option<u64>,
}

/// A flow's process's resource figures, for its records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowUsage {
    /// Resident memory at the latest sample.
    pub rss_bytes: u64,
    /// The largest resident size so far.
    pub rss_peak_bytes: u64,
    /// Average CPU % (100 = one core) over the flow's life.
    pub cpu_pct: Option<f64>,
    /// Major page faults so far.
    pub major_faults: u64,
    /// Time blocked on block I/O (needs kernel delay accounting).
    pub iowait_ns: Option<u64>,
}

/// What is known of a process's resource use: the latest sample, the one
/// before, and the peak over all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageTrack {
    /// The latest sample.
    pub last: Usage,
    /// When it was taken.
    pub at: MonoNs,
    /// The sample before: (when, CPU ns).
    pub prev: Option<(MonoNs, u64)>,
    /// The process has exited: `last` is final.
    pub exited: bool,
}

impl UsageTrack {
    /// CPU % (100 = one core) between the last two samples.
    pub fn recent_cpu_pct(&self) -> Option<f64> {
        let (t0, c0) = self.prev?;
        let dt = self.at.since(t0);
        (dt > 0).then(|| 100.0 * self.last.cpu_ns.saturating_sub(c0) as f64 / dt as f64)
    }
}

/// A process as netwho knows it. Shared by `Arc`: each flow keeps the
/// version that was current when it opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// The process.
    pub key: ProcKey,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its parent, if known.
    pub parent: Option<ProcKey>,
    /// Its parent's command name.
    pub parent_comm: String,
    /// Its command name.
    pub comm: String,
    /// The executable.
    pub exe: String,
    /// argv (capped; see `--max-cmdline`).
    pub cmdline: Vec<String>,
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Cgroup id.
    pub cgroup_id: u64,
    /// Where these details came from.
    pub source: ProcSource,
    /// The parent and its ancestors (filled in by the table).
    pub parents: Option<Arc<Ancestor>>,
    /// Audit login uid and session, when set.
    pub login_uid: Option<u32>,
    /// See `login_uid`.
    pub session: Option<u32>,
    /// The executable file's identity (for its hash).
    pub exe_file: Option<FileId>,
}

impl ProcInfo {
    /// A process we know only by key (and maybe a comm).
    pub fn unknown(key: ProcKey, comm: &str, uid: u32, gid: u32) -> Self {
        ProcInfo {
            key,
            ppid: 0,
            parent: None,
            parent_comm: String::new(),
            comm: comm.to_string(),
            exe: String::new(),
            cmdline: Vec::new(),
            uid,
            gid,
            cgroup_id: 0,
            source: ProcSource::Unknown,
            parents: None,
            login_uid: None,
            session: None,
            exe_file: None,
        }
    }

    /// Its ancestors, parent first.
    pub fn ancestors(&self) -> impl Iterator<Item = &Ancestor> {
        ancestors(self.parents.as_ref())
    }
}

#[derive(Debug)]
struct Entry {
    info: Arc<ProcInfo>,
    /// This process as its children's ancestor.
    node: Arc<Ancestor>,
    exited: Option<MonoNs>,
    usage: Option<UsageTrack>,
}

/// Processes by identity, plus which one currently holds each tgid.
///
/// Exited processes stay for `retention_ns` (late events may still name
/// them), then go. If more than `max_entries` are tracked, the oldest exited
/// ones go first; live ones are never evicted but counted.
#[derive(Debug)]
pub struct ProcTable {
    procs: FxHashMap<ProcKey, Entry>,
    live: FxHashMap<u32, ProcKey>,
    /// The last process that held each tgid, once it exited (while the
    /// table still has it).
    last_exited: FxHashMap<u32, ProcKey>,
    exited: VecDeque<(MonoNs, ProcKey)>,
    retention_ns: u64,
    max_entries: usize,
    /// Exited processes dropped early because the table was full.
    pub evicted: u64,
    /// Forks whose parent was unknown (child's exe and cmdline are empty).
    pub unknown_parents: u64,
}

impl ProcTable {
    /// A table keeping exited processes `retention_ns`, at most `max_entries` processes.
    pub fn new(retention_ns: u64, max_entries: usize) -> Self {
        ProcTable {
            procs: FxHashMap::default(),
            live: FxHashMap::default(),
            last_exited: FxHashMap::default(),
            exited: VecDeque::new(),
            retention_ns,
            max_entries,
            evicted: 0,
            unknown_parents: 0,
        }
    }

    /// Processes held.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// A process's details.
    pub fn get(&self, key: ProcKey) -> Option<&Arc<ProcInfo>> {
        self.procs.get(&key).map(|e| &e.info)
    }

    /// Whether it holds the process.
    pub fn contains(&self, key: ProcKey) -> bool {
        self.procs.contains_key(&key)
    }

    /// The process currently holding `tgid`, if it is alive.
    pub fn live(&self, tgid: u32) -> Option<&Arc<ProcInfo>> {
        self.live.get(&tgid).and_then(|k| self.get(*k))
    }

    /// The process holding `tgid`, or else the last one that did (it
    /// exited; late counters of its flows still name it by tgid).
    pub fn latest(&self, tgid: u32) -> Option<&Arc<ProcInfo>> {
        self.live(tgid)
            .or_else(|| self.last_exited.get(&tgid).and_then(|k| self.get(*k)))
    }

    fn insert(&mut self, mut info: ProcInfo) -> Arc<ProcInfo> {
        let key = info.key;
        let old = self.procs.get(&key);
        if info.parents.is_none() {
            // the parent's chain; or, if it is gone from the table, the
            // chain this process had before (a re-exec)
            info.parents = info
                .parent
                .and_then(|p| self.procs.get(&p))
                .map(|e| Arc::clone(&e.node))
                .or_else(|| old.and_then(|e| e.info.parents.clone()));
        }
        let usage = old.and_then(|e| e.usage);
        let node = Arc::new(Ancestor {
            key,
            comm: info.comm.clone(),
            exe: info.exe.clone(),
            up: info.parents.clone(),
        });
        let info = Arc::new(info);
        if let Some(old) = self.live.insert(key.tgid, key)
            && old != key
        {
            // its pid was reused, so it is gone even if its exit event was
            // lost: it ended before this one started
            self.retire(old, key.start());
        }
        self.procs.insert(
            key,
            Entry {
                info: Arc::clone(&info),
                node,
                exited: None,
                usage,
            },
        );
        info
    }

    /// A resource sample of a process (at exit: its final figures).
    pub fn sample(&mut self, key: ProcKey, usage: Usage, at: MonoNs, exited: bool) {
        let Some(e) = self.procs.get_mut(&key) else {
            return;
        };
        let track = match e.usage {
            Some(t) if t.exited || at < t.at => return,
            Some(t) => UsageTrack {
                last: Usage {
                    rss_peak_bytes: usage.rss_peak_bytes.max(t.last.rss_peak_bytes),
                    ..usage
                },
                at,
                prev: Some((t.at, t.last.cpu_ns)),
                exited,
            },
            None => UsageTrack {
                last: usage,
                at,
                prev: None,
                exited,
            },
        };
        e.usage = Some(track);
    }

    /// A process's resource use.
    pub fn usage(&self, key: ProcKey) -> Option<&UsageTrack> {
        self.procs.get(&key).and_then(|e| e.usage.as_ref())
    }

    /// Whether `key` has exited (or was retired).
    pub fn has_exited(&self, key: ProcKey) -> bool {
        self.procs.get(&key).is_some_and(|e| e.exited.is_some())
    }

    fn comm_of(&self, key: Option<ProcKey>) -> String {
        key.and_then(|k| self.get(k))
            .map(|p| p.comm.clone())
            .unwrap_or_default()
    }

    /// A process called execve(): its details replace the old ones.
    pub fn exec(&mut self, e: &ProcExec) -> Arc<ProcInfo> {
        let parent_comm = self.comm_of(e.parent);
        self.insert(ProcInfo {
            key: e.proc,
            ppid: e.ppid,
            parent: e.parent,
            parent_comm,
            comm: e.comm.clone(),
            exe: e.exe.clone(),
            cmdline: e.cmdline.clone(),
            uid: e.uid,
            gid: e.gid,
            cgroup_id: e.cgroup_id,
            source: ProcSource::Exec,
            parents: None,
            login_uid: e.login_uid,
            session: e.session,
            exe_file: e.exe_file,
        })
    }

    /// A process forked: the child starts as a copy of its parent.
    pub fn fork(&mut self, f: &ProcFork) -> Arc<ProcInfo> {
        let child = match self.get(f.parent) {
            Some(p) => ProcInfo {
                key: f.child,
                ppid: f.parent.tgid,
                parent: Some(f.parent),
                parent_comm: p.comm.clone(),
                comm: f.comm.clone(),
                exe: p.exe.clone(),
                cmdline: p.cmdline.clone(),
                uid: f.uid,
                gid: f.gid,
                cgroup_id: p.cgroup_id,
                source: ProcSource::Fork,
                parents: None,
                login_uid: p.login_uid,
                session: p.session,
                exe_file: p.exe_file,
            },
            None => {
                self.unknown_parents += 1;
                ProcInfo {
                    ppid: f.parent.tgid,
                    parent: Some(f.parent),
                    ..ProcInfo::unknown(f.child, &f.comm, f.uid, f.gid)
                }
            }
        };
        self.insert(child)
    }

    /// A process read from /proc. An entry built from kernel events wins:
    /// it was captured at the moment, /proc is read later.
    pub fn snapshot(&mut self, info: ProcInfo) -> Arc<ProcInfo> {
        if let Some(e) = self.procs.get(&info.key)
            && e.info.source != ProcSource::Unknown
        {
            return Arc::clone(&e.info);
        }
        let parent_comm = if info.parent_comm.is_empty() {
            self.comm_of(info.parent)
        } else {
            info.parent_comm.clone()
        };
        self.insert(ProcInfo {
            parent_comm,
            ..info
        })
    }

    /// The entry for `key`, creating an `Unknown` one if there is none.
    pub fn get_or_unknown(
        &mut self,
        key: ProcKey,
        comm: &str,
        uid: u32,
        gid: u32,
    ) -> Arc<ProcInfo> {
        if let Some(p) = self.get(key) {
            return Arc::clone(p);
        }
        self.insert(ProcInfo::unknown(key, comm, uid, gid))
    }

    /// A process's last thread exited: it is kept for the retention, then let go.
    pub fn exit(&mut self, key: ProcKey, at: MonoNs) {
        self.retire(key, at);
        if self.live.get(&key.tgid) == Some(&key) {
            self.live.remove(&key.tgid);
        }
    }

    /// Mark a process exited at `at` (once), for `gc` to forget later.
    fn retire(&mut self, key: ProcKey, at: MonoNs) {
        if let Some(e) = self.procs.get_mut(&key)
            && e.exited.is_none()
        {
            e.exited = Some(at);
            let newer = self
                .last_exited
                .get(&key.tgid)
                .and_then(|k| self.procs.get(k))
                .is_some_and(|o| o.info.key.start() > key.start());
            if !newer {
                self.last_exited.insert(key.tgid, key);
            }
            // keep the queue in time order: a late exit may be older
            let pos = self.exited.partition_point(|(t, _)| *t <= at);
            self.exited.insert(pos, (at, key));
        }
    }

    /// Forget exited processes past retention, and the oldest exited ones
    /// while over capacity.
    pub fn gc(&mut self, now: MonoNs) {
        while let Some(&(at, key)) = self.exited.front() {
            let expired = now.since(at) >= self.retention_ns;
            let over = self.procs.len() > self.max_entries;
            if !expired && !over {
                break;
            }
            self.exited.pop_front();
            self.procs.remove(&key);
            if self.last_exited.get(&key.tgid) == Some(&key) {
                self.last_exited.remove(&key.tgid);
            }
            if !expired {
                self.evicted += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(tgid: u32, start: u64, comm: &str, parent: Option<ProcKey>) -> ProcExec {
        ProcExec {
            proc: ProcKey::from_start_ticks(tgid, start),
            ppid: parent.map_or(0, |p| p.tgid),
            parent,
            comm: comm.into(),
            exe: format!("/usr/bin/{comm}"),
            cmdline: vec![comm.into(), "-x".into()],
            uid: 1000,
            gid: 1000,
            cgroup_id: 7,
            at: MonoNs(start * 10_000_000),
            args_truncated: false,
            login_uid: None,
            session: None,
            exe_file: None,
            exe_ino: 0,
        }
    }

    #[test]
    fn fork_inherits_the_image_and_exec_replaces_it() {
        let mut t = ProcTable::new(1_000, 100);
        let shell = t.exec(&exec(100, 1, "bash", None)).key;
        let child = ProcKey::from_start_ticks(101, 2);
        t.fork(&ProcFork {
            parent: shell,
            child,
            comm: "bash".into(),
            uid: 1000,
            gid: 1000,
            at: MonoNs(20_000_000),
        });
        let c = t.get(child).unwrap();
        assert_eq!(c.exe, "/usr/bin/bash");
        assert_eq!(c.parent_comm, "bash");
        assert_eq!(c.source, ProcSource::Fork);
        t.exec(&exec(101, 2, "curl", Some(shell)));
        let c = t.get(child).unwrap();
        assert_eq!((c.comm.as_str(), c.exe.as_str()), ("curl", "/usr/bin/curl"));
        assert_eq!(c.parent_comm, "bash");
        assert_eq!(t.live(101).unwrap().key, child);
    }

    #[test]
    fn a_grandchild_knows_its_whole_chain_even_after_its_elders_exit() {
        let mut t = ProcTable::new(1_000, 100);
        let init = t.exec(&exec(1, 0, "init", None)).key;
        let sshd = t.exec(&exec(50, 1, "sshd", Some(init))).key;
        let shell = t.exec(&exec(60, 2, "bash", Some(sshd))).key;
        let child = ProcKey::from_start_ticks(61, 3);
        t.fork(&ProcFork {
            parent: shell,
            child,
            comm: "bash".into(),
            uid: 0,
            gid: 0,
            at: MonoNs(30_000_000),
        });
        // the elders go away and are forgotten; the chain stays with the child
        t.exit(sshd, MonoNs(40_000_000));
        t.exit(shell, MonoNs(40_000_000));
        t.gc(MonoNs(50_000_000));
        assert!(t.get(shell).is_none());
        let g = t.exec(&exec(61, 3, "curl", Some(shell)));
        let chain: Vec<(u32, &str)> = g
            .ancestors()
            .map(|a| (a.key.tgid, a.comm.as_str()))
            .collect();
        assert_eq!(chain, [(60, "bash"), (50, "sshd"), (1, "init")]);
        assert_eq!(g.comm, "curl");
    }

    #[test]
    fn samples_keep_the_peak_and_the_exit_is_final() {
        let mut t = ProcTable::new(1_000, 100);
        let k = t.exec(&exec(70, 1, "app", None)).key;
        let u = |cpu, rss, peak| Usage {
            cpu_ns: cpu,
            rss_bytes: rss,
            rss_peak_bytes: peak,
            major_faults: 0,
            iowait_ns: None,
        };
        t.sample(k, u(100, 10, 50), MonoNs(1_000), false);
        t.sample(k, u(600, 20, 30), MonoNs(2_000), false);
        let tr = *t.usage(k).unwrap();
        assert_eq!(tr.last.rss_peak_bytes, 50, "the peak never goes down");
        assert_eq!(tr.recent_cpu_pct(), Some(50.0));
        t.sample(k, u(900, 0, 60), MonoNs(3_000), true);
        t.sample(k, u(9_999, 0, 0), MonoNs(4_000), false);
        assert_eq!(
            t.usage(k).unwrap().last.cpu_ns,
            900,
            "nothing after the exit"
        );
        t.sample(
            ProcKey::from_start_ticks(71, 1),
            u(1, 1, 1),
            MonoNs(1),
            false,
        );
        assert!(t.usage(ProcKey::from_start_ticks(71, 1)).is_none());
    }

    #[test]
    fn pid_reuse_gives_two_processes() {
        let mut t = ProcTable::new(1_000_000_000, 100);
        let old = t.exec(&exec(500, 10, "old", None)).key;
        t.exit(old, MonoNs(150_000_000));
        let new = t.exec(&exec(500, 90, "new", None)).key;
        assert_ne!(old, new);
        assert_eq!(t.get(old).unwrap().comm, "old");
        assert_eq!(t.live(500).unwrap().comm, "new");
        // the old one's late exit must not unseat the new one
        t.exit(old, MonoNs(160_000_000));
        assert_eq!(t.live(500).unwrap().key, new);
    }

    #[test]
    fn a_reused_pid_retires_the_old_process_even_without_its_exit() {
        let mut t = ProcTable::new(1_000, 100);
        let old = t.exec(&exec(600, 10, "old", None)).key;
        // its exit event was lost; the pid comes back 5 s later
        let new = t.exec(&exec(600, 510, "new", None)).key;
        assert_eq!(t.live(600).unwrap().key, new);
        t.gc(MonoNs(510 * 10_000_000 + 999));
        assert!(t.get(old).is_some(), "kept for the retention period");
        t.gc(MonoNs(510 * 10_000_000 + 1_000));
        assert!(t.get(old).is_none(), "then forgotten");
        assert!(t.get(new).is_some());
    }

    #[test]
    fn exited_processes_expire_and_capacity_is_bounded() {
        let mut t = ProcTable::new(100, 3);
        for i in 0..5u32 {
            let k = t.exec(&exec(i + 1, u64::from(i), "p", None)).key;
            t.exit(k, MonoNs(10));
        }
        t.gc(MonoNs(20));
        assert_eq!(t.len(), 3, "over capacity: oldest exited evicted");
        assert_eq!(t.evicted, 2);
        t.gc(MonoNs(200));
        assert!(t.is_empty(), "past retention: all gone");
    }

    #[test]
    fn snapshot_does_not_overwrite_kernel_data() {
        let mut t = ProcTable::new(100, 10);
        let k = t.exec(&exec(7, 1, "real", None)).key;
        t.snapshot(ProcInfo {
            source: ProcSource::Procfs,
            ..ProcInfo::unknown(k, "stale", 0, 0)
        });
        assert_eq!(t.get(k).unwrap().comm, "real");
        let u = ProcKey::from_start_ticks(8, 1);
        t.get_or_unknown(u, "x", 0, 0);
        t.snapshot(ProcInfo {
            exe: "/bin/x".into(),
            source: ProcSource::Procfs,
            ..ProcInfo::unknown(u, "x", 0, 0)
        });
        assert_eq!(
            t.get(u).unwrap().exe,
            "/bin/x",
            "an Unknown entry is upgraded"
        );
    }
}
