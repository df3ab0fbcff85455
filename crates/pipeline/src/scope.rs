//! A filter's kernel scope, resolved to the ids the kernel compares: user
//! and group names to ids, units and cgroup paths to cgroup ids, a process
//! tree to its pids.

use netwho_enrich::cgroup::Cgroups;
use netwho_enrich::procfs::Procfs;
use netwho_enrich::users;
use netwho_model::Proto;
use netwho_query::Scope;
use netwho_sensor::ebpf::KernelScope;
use std::collections::{BTreeSet, HashMap};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
/// Why a filter's kernel part could not be resolved.
pub enum ScopeError {
    #[error("user.name: no user named '{0}' on this host")]
    /// A user name with no uid.
    NoUser(String),
    #[error("group.name: no group named '{0}' on this host")]
    /// A group name with no gid.
    NoGroup(String),
    #[error(
        "cgroup: {0} does not exist under the cgroup v2 root (create it first, or filter by \
         unit = NAME, which also catches cgroups created later)"
    )]
    /// A cgroup path that does not exist.
    NoCgroup(String),
}

/// The protocol number the kernel compares (`packet`: 0; MPTCP sockets
/// are not scoped by protocol).
fn proto_number(name: &str) -> Option<u8> {
    match Proto::from_name(name)? {
        Proto::Packet => Some(0),
        Proto::Mptcp => None,
        p => p.ip_number(),
    }
}

/// Every process now running whose ancestors include one of `roots`.
fn descendants(procfs: &Procfs, roots: &BTreeSet<u32>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in procfs.tgids() {
        if let Ok(st) = procfs.stat(pid) {
            children.entry(st.ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo: Vec<u32> = roots.iter().copied().collect();
    while let Some(p) = todo.pop() {
        for c in children.get(&p).into_iter().flatten() {
            out.push(*c);
            todo.push(*c);
        }
    }
    out
}

/// Resolve `s` against this host now.
pub fn resolve(
    s: &Scope,
    procfs: &Procfs,
    cgroups: &mut Cgroups,
) -> Result<KernelScope, ScopeError> {
    let mut k = KernelScope::default();
    if s.by_uid() {
        let mut v: Vec<u32> = s.uids.iter().flatten().copied().collect();
        for n in &s.user_names {
            v.push(users::uid_of(n).ok_or_else(|| ScopeError::NoUser(n.clone()))?);
        }
        k.uids = Some(v);
    }
    if s.by_gid() {
        let mut v: Vec<u32> = s.gids.iter().flatten().copied().collect();
        for n in &s.group_names {
            v.push(users::gid_of(n).ok_or_else(|| ScopeError::NoGroup(n.clone()))?);
        }
        k.gids = Some(v);
    }
    if s.by_cgroup() {
        let mut ids = Vec::new();
        for u in s.units.iter().flatten() {
            ids.extend(cgroups.ids_named(u));
            k.cgroup_names.push(u.clone());
        }
        for p in &s.cgroups {
            ids.push(
                cgroups
                    .id_of(p)
                    .ok_or_else(|| ScopeError::NoCgroup(p.clone()))?,
            );
        }
        k.cgroups = Some(ids);
    }
    if let Some(pids) = &s.pids {
        let mut v: Vec<u32> = pids.iter().copied().collect();
        if s.descendants {
            v.extend(descendants(procfs, pids));
            k.follow_children = true;
        }
        k.pids = Some(v);
    }
    if let Some(protos) = &s.protos {
        // "raw" sockets carry any protocol number: not restricted then
        let nums: Option<Vec<u8>> = protos.iter().map(|p| proto_number(p)).collect();
        k.protos = nums;
    }
    k.ports = s.ports.as_ref().map(|p| p.iter().copied().collect());
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_query::Filter;

    fn scope(f: &str) -> Result<KernelScope, ScopeError> {
        let s = Filter::parse(f).unwrap().scope();
        resolve(&s, &Procfs::default(), &mut Cgroups::new(None))
    }

    #[test]
    fn names_resolve_or_fail_pointedly() {
        let k = scope("user.name = root and fd.proto in (tcp, udp) and fd.rport = 53").unwrap();
        assert_eq!(k.uids, Some(vec![0]));
        assert_eq!(k.protos, Some(vec![6, 17]));
        assert_eq!(k.ports, Some(vec![53]));
        assert_eq!(
            scope("user.name = no-such-user-netwho"),
            Err(ScopeError::NoUser("no-such-user-netwho".into()))
        );
        assert!(scope("fd.proto = raw").unwrap().protos.is_none());
        assert!(scope("cgroup = /nope").is_err());
        let k = scope("unit = x.service").unwrap();
        assert_eq!(k.cgroups, Some(vec![]), "none yet: the kernel adds them");
        assert_eq!(k.cgroup_names, ["x.service"]);
    }

    #[test]
    fn a_process_tree_includes_its_descendants() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let k = scope(&format!("proc.apid = {me}")).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let pids = k.pids.unwrap();
        assert!(pids.contains(&me) && pids.contains(&child.id()), "{pids:?}");
        assert!(k.follow_children);
    }
}
