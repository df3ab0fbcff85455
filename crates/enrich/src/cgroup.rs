//! Cgroup ids to paths, and paths to systemd units and container ids.
//!
//! The kernel records a cgroup v2 id (`bpf_get_current_cgroup_id`), which
//! is the inode number of the cgroup's directory. Walking the cgroup v2
//! mount maps ids to paths; the walk is repeated (at most once a second)
//! when an unknown id shows up. A cgroup removed before we saw it stays
//! unresolved and is counted.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const RESCAN_NS: u64 = 1_000_000_000;
const MAX_DEPTH: usize = 32;
/// Cgroups remembered beyond the last walk (created since, maybe gone).
const MAX_LEARNT: usize = 1 << 20;

#[derive(Debug)]
/// Cgroup ids to their paths under the cgroup v2 root, learnt by walking
/// it (bounded).
pub struct Cgroups {
    root: Option<PathBuf>,
    paths: HashMap<u64, String>,
    last_scan: Option<u64>,
    /// Ids that no walk could find.
    pub misses: u64,
}

impl Cgroups {
    /// `root` is the cgroup v2 mount point (`None`: every lookup misses).
    pub fn new(root: Option<PathBuf>) -> Self {
        let mut c = Cgroups {
            root,
            paths: HashMap::new(),
            last_scan: None,
            misses: 0,
        };
        c.scan();
        c
    }

    fn scan(&mut self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        // ids are never reused: keep what we learnt, add what exists
        walk(&root, &root, 0, &mut self.paths);
        if self.paths.len() > MAX_LEARNT {
            self.paths.clear();
            walk(&root, &root, 0, &mut self.paths);
        }
    }

    /// The path of cgroup `id` relative to the v2 root (`/` for the root).
    /// `now_ns` paces rescans.
    pub fn path(&mut self, id: u64, now_ns: u64) -> Option<&str> {
        if id == 0 {
            return None;
        }
        if !self.paths.contains_key(&id) {
            let due = self
                .last_scan
                .is_none_or(|t| now_ns.saturating_sub(t) >= RESCAN_NS);
            if due {
                self.last_scan = Some(now_ns);
                self.scan();
            }
            if !self.paths.contains_key(&id) {
                self.misses += 1;
                return None;
            }
        }
        self.paths.get(&id).map(String::as_str)
    }

    /// A cgroup the kernel saw created (its path is relative to the root).
    pub fn learn(&mut self, id: u64, path: &str) {
        if self.paths.len() < MAX_LEARNT {
            self.paths.insert(id, path.to_string());
        }
    }

    /// Ids of every cgroup now present whose directory is named `name`.
    pub fn ids_named(&mut self, name: &str) -> Vec<u64> {
        self.scan();
        self.paths
            .iter()
            .filter(|(_, p)| p.rsplit('/').next() == Some(name))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The id of a cgroup path (as in `/proc/PID/cgroup`).
    pub fn id_of(&self, path: &str) -> Option<u64> {
        let root = self.root.as_ref()?;
        let rel = path.trim_start_matches('/');
        std::fs::metadata(root.join(rel)).ok().map(|m| m.ino())
    }
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut HashMap<u64, String>) {
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    out.insert(meta.ino(), format!("/{}", rel.display()));
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &e.path(), depth + 1, out);
        }
    }
}

const UNIT_SUFFIXES: [&str; 4] = [".service", ".scope", ".socket", ".mount"];

/// The systemd unit a cgroup path belongs to: the innermost component that
/// names a service or scope (`/system.slice/nginx.service` → `nginx.service`,
/// `/user.slice/user-1000.slice/user@1000.service/app.slice/x.service` →
/// `x.service`). Slices alone are not units a process runs in.
pub fn unit_of(path: &str) -> Option<&str> {
    path.rsplit('/')
        .find(|c| UNIT_SUFFIXES.iter().any(|s| c.ends_with(s)))
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A container id (64 hex digits) in a cgroup path, in the forms docker,
/// podman, containerd and Kubernetes use: `docker-<id>.scope`,
/// `libpod-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`,
/// or a bare `<id>` component.
pub fn container_of(path: &str) -> Option<&str> {
    path.rsplit('/').find_map(|c| {
        let c = c.strip_suffix(".scope").unwrap_or(c);
        let id = c.rsplit('-').next().unwrap_or(c);
        is_container_id(id).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn units() {
        assert_eq!(
            unit_of("/system.slice/nginx.service"),
            Some("nginx.service")
        );
        assert_eq!(
            unit_of("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service"),
            Some("x.service")
        );
        assert_eq!(
            unit_of("/user.slice/user-1000.slice/session-2.scope"),
            Some("session-2.scope")
        );
        assert_eq!(unit_of("/"), None);
        assert_eq!(unit_of("/user.slice"), None);
    }

    #[test]
    fn containers() {
        assert_eq!(
            container_of(&format!("/system.slice/docker-{ID}.scope")),
            Some(ID)
        );
        assert_eq!(
            container_of(&format!(
                "/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope"
            )),
            Some(ID)
        );
        assert_eq!(container_of(&format!("/docker/{ID}")), Some(ID));
        assert_eq!(container_of("/system.slice/ssh.service"), None);
    }

    #[test]
    fn the_root_cgroup_resolves() {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let Some(root) = mi.lines().find_map(|l| {
            let (a, b) = l.split_once(" - ")?;
            b.starts_with("cgroup2 ")
                .then(|| a.split(' ').nth(4).map(PathBuf::from))?
        }) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI machines have cgroup v2"
            );
            return; // a developer machine without cgroup v2: nothing to resolve
        };
        let mut c = Cgroups::new(Some(root.clone()));
        let id = std::fs::metadata(&root).unwrap().ino();
        assert_eq!(c.path(id, 0), Some("/"));
        assert_eq!(c.id_of("/"), Some(id));
        assert_eq!(c.path(u64::MAX, 0), None);
        assert_eq!(c.misses, 1);
    }
}
