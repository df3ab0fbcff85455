//! The pipeline's I/O around the pure model: completing kernel events with
//! what only /proc knows, and naming uids, gids and cgroups for records.

use crate::status::EnrichCounts;
use netwho_enrich::cgroup::{self, Cgroups};
use netwho_enrich::procfs::Procfs;
use netwho_enrich::users::Users;
use netwho_model::record::Names;
use netwho_model::{Flow, FlowTable, MonoNs, ProcInfo, SensorEvent};
use rustc_hash::FxHashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Most flows share a handful of (uid, gid, cgroup): their names are
/// resolved once and shared.
const NAMES_CACHED: usize = 4096;

#[derive(Debug)]
pub struct Enricher {
    procfs: Procfs,
    users: Users,
    cgroups: Cgroups,
    names: FxHashMap<(u32, u32, u64), Arc<Names>>,
    proc_lookup_failures: u64,
}

impl Enricher {
    /// `cgroup_root`: the cgroup v2 mount (from the sensor).
    pub fn new(procfs: Procfs, cgroup_root: Option<PathBuf>) -> Self {
        Enricher {
            procfs,
            users: Users::default(),
            cgroups: Cgroups::new(cgroup_root),
            names: FxHashMap::default(),
            proc_lookup_failures: 0,
        }
    }

    pub fn counts(&self) -> EnrichCounts {
        EnrichCounts {
            proc_lookup_failures: self.proc_lookup_failures,
            name_lookup_failures: self.users.misses,
            cgroup_lookup_failures: self.cgroups.misses,
        }
    }

    /// Every running process, for the table at start-up.
    pub fn snapshot(&mut self) -> Vec<ProcInfo> {
        let cg = &self.cgroups;
        self.procfs.all(&|p| cg.id_of(p))
    }

    /// Complete an event before the model sees it: an exec's real
    /// executable and full argv while the process still runs; a process
    /// the table does not know, read from /proc before its first flow.
    /// Extra events to apply first are pushed to `before`.
    pub fn prepare(
        &mut self,
        ev: &mut SensorEvent,
        table: &FlowTable,
        before: &mut Vec<SensorEvent>,
    ) {
        match ev {
            SensorEvent::Exec(e) => {
                // the kernel gave the path passed to execve (maybe relative,
                // or a script); /proc/PID/exe is the file that runs
                if let Ok(exe) = self.procfs.exe(e.proc) {
                    e.exe = exe;
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
            _ => {}
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

    pub fn user_name(&mut self, uid: u32) -> String {
        self.users.user(uid).to_string()
    }
}
