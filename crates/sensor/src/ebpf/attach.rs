//! Loading the object and attaching every hook, through bpf links owned by
//! this process: exit, a crash or SIGKILL closes them and detaches
//! everything. Nothing is pinned.

use crate::SensorError;
use aya::programs::{
    BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr,
    Program, ProgramError,
};
use aya::{Btf, Ebpf, EbpfLoader};
use netwho_bpf::{maps, programs};
use std::fs::File;
use std::path::Path;

/// How one program attaches.
#[derive(Clone, Copy, Debug)]
enum Attach {
    /// A BTF-enabled tracepoint, by name.
    Tracepoint(&'static str),
    /// A cgroup program; the attach type comes from the ELF section.
    CgroupSock,
    CgroupSockAddr,
    CgroupSkb(CgroupSkbAttachType),
}

/// Every hook: (program, the hook's name as users see it, how to attach).
const HOOKS: &[(&str, &str, Attach)] = &[
    (
        programs::SOCK_CREATE,
        "cgroup/sock_create",
        Attach::CgroupSock,
    ),
    (
        programs::SOCK_RELEASE,
        "cgroup/sock_release",
        Attach::CgroupSock,
    ),
    (
        programs::SENDMSG4,
        "cgroup/sendmsg4",
        Attach::CgroupSockAddr,
    ),
    (
        programs::SENDMSG6,
        "cgroup/sendmsg6",
        Attach::CgroupSockAddr,
    ),
    (
        programs::RECVMSG4,
        "cgroup/recvmsg4",
        Attach::CgroupSockAddr,
    ),
    (
        programs::RECVMSG6,
        "cgroup/recvmsg6",
        Attach::CgroupSockAddr,
    ),
    (
        programs::SKB_EGRESS,
        "cgroup_skb/egress",
        Attach::CgroupSkb(CgroupSkbAttachType::Egress),
    ),
    (
        programs::SKB_INGRESS,
        "cgroup_skb/ingress",
        Attach::CgroupSkb(CgroupSkbAttachType::Ingress),
    ),
    (
        programs::EXEC,
        "tp_btf/sched_process_exec",
        Attach::Tracepoint("sched_process_exec"),
    ),
    (
        programs::FORK,
        "tp_btf/sched_process_fork",
        Attach::Tracepoint("sched_process_fork"),
    ),
    (
        programs::EXIT,
        "tp_btf/sched_process_exit",
        Attach::Tracepoint("sched_process_exit"),
    ),
    (
        programs::SET_STATE,
        "tp_btf/inet_sock_set_state",
        Attach::Tracepoint("inet_sock_set_state"),
    ),
    (
        programs::DGRAM_COPY,
        "tp_btf/skb_copy_datagram_iovec",
        Attach::Tracepoint("skb_copy_datagram_iovec"),
    ),
    // payload last: by the time it counts, the hooks that name sockets and
    // processes are in place
    (
        programs::SOCK_RECV,
        "tp_btf/sock_recv_length",
        Attach::Tracepoint("sock_recv_length"),
    ),
    (
        programs::SOCK_SEND,
        "tp_btf/sock_send_length",
        Attach::Tracepoint("sock_send_length"),
    ),
];

/// Sizes of the kernel maps.
#[derive(Clone, Copy, Debug)]
pub struct MapSizes {
    pub ring_bytes: u32,
    pub flows: u32,
    pub wire: u32,
}

impl Default for MapSizes {
    fn default() -> Self {
        MapSizes {
            ring_bytes: 8 << 20,
            flows: 131_072,
            wire: 131_072,
        }
    }
}

/// The last lines of a verifier log: where it gave up is at the end.
fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The oldest kernel netwho is known to work on: the payload tracepoints
/// (sock_send_length/sock_recv_length) are absent in 6.2, present in 6.5.
pub const MIN_KERNEL: &str = "6.5";

fn hook_error(hook: &'static str, e: ProgramError) -> SensorError {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut detail = match &e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let tail = log_tail(&verifier_log.to_string(), 12);
            if tail.is_empty() {
                format!("the kernel refused the program: {io_error}")
            } else {
                format!("the kernel refused the program: {io_error}\nverifier said:\n{tail}")
            }
        }
        other => other.to_string(),
    };
    detail.push_str(&format!(
        " (netwho needs Linux {MIN_KERNEL} or later with BTF; this kernel is {})",
        release.trim()
    ));
    SensorError::Hook { hook, detail }
}

/// Load the embedded object, then load and attach every hook.
pub fn load_and_attach(
    btf: &Btf,
    cgroup_root: &Path,
    sizes: MapSizes,
) -> Result<(Ebpf, Vec<&'static str>), SensorError> {
    let mut ebpf = EbpfLoader::new()
        .btf(Some(btf))
        .map_max_entries(maps::EVENTS, sizes.ring_bytes)
        .map_max_entries(maps::FLOWS, sizes.flows)
        .map_max_entries(maps::WIRE, sizes.wire)
        .load(netwho_bpf::OBJECT)
        .map_err(|e| SensorError::Load {
            detail: e.to_string(),
        })?;
    let cgroup = File::open(cgroup_root).map_err(|source| SensorError::Io {
        what: format!("opening the cgroup v2 root {}", cgroup_root.display()),
        source,
    })?;

    let mut attached = Vec::with_capacity(HOOKS.len());
    for &(name, hook, how) in HOOKS {
        let program = ebpf.program_mut(name).ok_or(SensorError::Hook {
            hook,
            detail: format!("program {name} is missing from the BPF object"),
        })?;
        attach_one(program, how, btf, &cgroup).map_err(|e| hook_error(hook, e))?;
        attached.push(hook);
    }
    Ok((ebpf, attached))
}

fn attach_one(
    program: &mut Program,
    how: Attach,
    btf: &Btf,
    cgroup: &File,
) -> Result<(), ProgramError> {
    match how {
        Attach::Tracepoint(tp) => {
            let p: &mut BtfTracePoint = program.try_into()?;
            p.load(tp, btf)?;
            p.attach()?;
        }
        Attach::CgroupSock => {
            let p: &mut CgroupSock = program.try_into()?;
            p.load()?;
            p.attach(cgroup, CgroupAttachMode::Single)?;
        }
        Attach::CgroupSockAddr => {
            let p: &mut CgroupSockAddr = program.try_into()?;
            p.load()?;
            p.attach(cgroup, CgroupAttachMode::Single)?;
        }
        Attach::CgroupSkb(kind) => {
            let p: &mut CgroupSkb = program.try_into()?;
            p.load()?;
            p.attach(cgroup, kind, CgroupAttachMode::Single)?;
        }
    }
    Ok(())
}

/// The hooks netwho attaches, for status output.
pub fn hook_names() -> impl Iterator<Item = &'static str> {
    HOOKS.iter().map(|(_, hook, _)| *hook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_in_the_object_has_a_hook() {
        let text = String::from_utf8_lossy(netwho_bpf::OBJECT);
        for (name, hook, _) in HOOKS {
            assert!(text.contains(name), "{name}");
            // the ELF section names the hook
            let section = hook.split_once('/').map_or(*hook, |(s, _)| s);
            assert!(text.contains(section), "{hook}");
        }
        assert_eq!(HOOKS.len(), 15);
    }

    #[test]
    fn verifier_logs_are_cut_to_their_end() {
        let log = "1: r1 = 0\n\n2: exit\nR0 !read_ok\nprocessed 3 insns\n";
        assert_eq!(log_tail(log, 2), "R0 !read_ok\nprocessed 3 insns");
        assert_eq!(log_tail("", 5), "");
    }
}
