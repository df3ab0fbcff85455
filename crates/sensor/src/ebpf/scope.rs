//! The kernel scope: which sockets the programs count at all. The pipeline
//! resolves a filter's scope (user and unit names, process trees) into ids;
//! this writes them into the scope maps before any program is attached, so
//! no out-of-scope socket is ever counted, not even during start-up.

use super::sys;
use crate::SensorError;
use aya::Ebpf;
use aya::maps::{Map, MapData};
use netwho_bpf::{abi, maps, name_hash};
use std::os::fd::AsFd;

/// Resolved scope. `None` in a dimension: not restricted. An empty list
/// restricts to nothing (the kernel then counts no socket in that
/// dimension; the pipeline says so).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelScope {
    /// User ids.
    pub uids: Option<Vec<u32>>,
    /// Group ids.
    pub gids: Option<Vec<u32>>,
    /// Cgroup ids (the cgroup and everything below it).
    pub cgroups: Option<Vec<u64>>,
    /// Cgroup directory names (systemd units): cgroups created later with
    /// one of these names join `cgroups`.
    pub cgroup_names: Vec<String>,
    /// Processes (tgids).
    pub pids: Option<Vec<u32>>,
    /// A process forked by one in `pids` joins it.
    pub follow_children: bool,
    /// IP protocol numbers (0: AF_PACKET).
    pub protos: Option<Vec<u8>>,
    /// Local or remote port.
    pub ports: Option<Vec<u16>>,
}

impl KernelScope {
    /// Whether nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.abi().active == 0
    }

    /// The scope as the kernel's maps hold it.
    pub fn abi(&self) -> abi::Scope {
        let mut s = abi::Scope::default();
        let on = |v: bool, bit: u32| if v { bit } else { 0 };
        s.active = on(self.uids.is_some(), abi::SCOPE_UID)
            | on(self.gids.is_some(), abi::SCOPE_GID)
            | on(self.cgroups.is_some(), abi::SCOPE_CGROUP)
            | on(self.pids.is_some(), abi::SCOPE_PID)
            | on(self.protos.is_some(), abi::SCOPE_PROTO)
            | on(self.ports.is_some(), abi::SCOPE_PORT);
        s.follow = u32::from(self.follow_children);
        for p in self.protos.iter().flatten() {
            s.protos[usize::from(p >> 6)] |= 1 << (p & 63);
        }
        s
    }
}

fn map_err(name: &'static str, e: impl std::fmt::Display) -> SensorError {
    SensorError::Map {
        name,
        detail: e.to_string(),
    }
}

/// The data of a scope map (every one is a hash map or an array).
fn data<'a>(ebpf: &'a Ebpf, name: &'static str) -> Result<&'a MapData, SensorError> {
    match ebpf.map(name) {
        Some(Map::HashMap(d) | Map::Array(d)) => Ok(d),
        Some(_) => Err(map_err(name, "is not a hash map or an array")),
        None => Err(map_err(name, "missing from the BPF object")),
    }
}

fn fill<K: bytemuck::Pod>(
    ebpf: &Ebpf,
    name: &'static str,
    keys: impl IntoIterator<Item = K>,
) -> Result<(), SensorError> {
    let fd = data(ebpf, name)?.fd();
    for k in keys {
        sys::update(fd.as_fd(), &k, &1u8).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::E2BIG) {
                " (too many values for the kernel scope: narrow the filter)"
            } else {
                ""
            };
            map_err(name, format!("{e}{hint}"))
        })?;
    }
    Ok(())
}

/// Write the scope into the maps of a loaded, not yet attached object.
pub fn install(ebpf: &Ebpf, s: &KernelScope) -> Result<(), SensorError> {
    if s.is_empty() {
        return Ok(());
    }
    fill(ebpf, maps::SCOPE_UID, s.uids.iter().flatten().copied())?;
    fill(ebpf, maps::SCOPE_GID, s.gids.iter().flatten().copied())?;
    fill(
        ebpf,
        maps::SCOPE_CGROUP,
        s.cgroups.iter().flatten().copied(),
    )?;
    fill(
        ebpf,
        maps::SCOPE_NAME,
        s.cgroup_names.iter().map(|n| name_hash(n.as_bytes())),
    )?;
    fill(ebpf, maps::SCOPE_PID, s.pids.iter().flatten().copied())?;
    fill(
        ebpf,
        maps::SCOPE_PORT,
        s.ports.iter().flatten().map(|p| u32::from(*p)),
    )?;
    // last: the scope takes effect once every set is in place
    let name = maps::SCOPE;
    sys::update(data(ebpf, name)?.fd().as_fd(), &0u32, &s.abi()).map_err(|e| map_err(name, e))
}

/// Turn payload capture (`snaplen` bytes per flow and direction) and packet
/// capture (`packet_snaplen` bytes per packet) on in a loaded, not yet
/// attached object. Zeros leave them off.
pub fn install_capture(ebpf: &Ebpf, cfg: abi::CaptureCfg) -> Result<(), SensorError> {
    if cfg == abi::CaptureCfg::default() {
        return Ok(());
    }
    for (what, n) in [
        ("snap length", cfg.snaplen),
        ("packet snap length", cfg.packet_snaplen),
    ] {
        if n > abi::SNAPLEN_MAX {
            return Err(map_err(
                maps::CAPTURE,
                format!(
                    "{what} {n} is over the kernel program's {}",
                    abi::SNAPLEN_MAX
                ),
            ));
        }
    }
    let name = maps::CAPTURE;
    sys::update(data(ebpf, name)?.fd().as_fd(), &0u32, &cfg).map_err(|e| map_err(name, e))
}

/// What one uid may hold of the flow and wire maps (0: no limit).
pub fn install_limits(ebpf: &Ebpf, flows_per_uid: u32) -> Result<(), SensorError> {
    let cfg = abi::Limits {
        flows_per_uid,
        _pad: 0,
    };
    let name = maps::LIMITS;
    sys::update(data(ebpf, name)?.fd().as_fd(), &0u32, &cfg).map_err(|e| map_err(name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_become_bits() {
        assert!(KernelScope::default().is_empty());
        let s = KernelScope {
            uids: Some(vec![1000]),
            protos: Some(vec![6, 17, 0, 255]),
            follow_children: true,
            ..KernelScope::default()
        };
        let a = s.abi();
        assert_eq!(a.active, abi::SCOPE_UID | abi::SCOPE_PROTO);
        assert_eq!(a.follow, 1);
        assert_eq!(a.protos[0], (1 << 6) | (1 << 17) | 1);
        assert_eq!(a.protos[3], 1 << 63);
        // restricting to nothing is still a restriction
        let none = KernelScope {
            pids: Some(vec![]),
            ..KernelScope::default()
        };
        assert_eq!(none.abi().active, abi::SCOPE_PID);
    }

    #[test]
    fn names_hash_like_the_kernel_program() {
        // FNV-1a 64 test vectors
        assert_eq!(name_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(name_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(name_hash(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(name_hash(b"foobar\0junk"), name_hash(b"foobar"));
    }
}
