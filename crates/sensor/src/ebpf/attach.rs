//! Loading the object and attaching every hook, through bpf links owned by
//! this process: exit, a crash or SIGKILL closes them and detaches
//! everything. Nothing is pinned.

use super::scope::KernelScope;
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

/// One hook: its program, its name as users see it, how it attaches, and
/// what netwho loses without it (`None`: netwho cannot work without it and
/// refuses to start).
#[derive(Clone, Copy, Debug)]
struct Hook {
    program: &'static str,
    name: &'static str,
    attach: Attach,
    without: Option<&'static str>,
}

const fn hook(program: &'static str, name: &'static str, attach: Attach) -> Hook {
    Hook {
        program,
        name,
        attach,
        without: None,
    }
}

const fn optional(
    program: &'static str,
    name: &'static str,
    attach: Attach,
    without: &'static str,
) -> Hook {
    Hook {
        program,
        name,
        attach,
        without: Some(without),
    }
}

const UDP_SEND: &str = "unconnected UDP sends are counted without their remote";
const UDP_RECV: &str = "unconnected UDP receives are counted without their remote";
const NO_WIRE: &str = "wire bytes and packets are not counted";

/// Every hook, in attach order. The payload hooks come last: by the time
/// they count, the hooks that name sockets and processes are in place.
const HOOKS: &[Hook] = &[
    hook(
        programs::SOCK_CREATE,
        "cgroup/sock_create",
        Attach::CgroupSock,
    ),
    optional(
        programs::SOCK_RELEASE,
        "cgroup/sock_release",
        Attach::CgroupSock,
        "UDP, ICMP and raw flows end at process exit or idle timeout, not at close",
    ),
    optional(
        programs::SENDMSG4,
        "cgroup/sendmsg4",
        Attach::CgroupSockAddr,
        UDP_SEND,
    ),
    optional(
        programs::SENDMSG6,
        "cgroup/sendmsg6",
        Attach::CgroupSockAddr,
        UDP_SEND,
    ),
    optional(
        programs::RECVMSG4,
        "cgroup/recvmsg4",
        Attach::CgroupSockAddr,
        UDP_RECV,
    ),
    optional(
        programs::RECVMSG6,
        "cgroup/recvmsg6",
        Attach::CgroupSockAddr,
        UDP_RECV,
    ),
    optional(
        programs::SKB_EGRESS,
        "cgroup_skb/egress",
        Attach::CgroupSkb(CgroupSkbAttachType::Egress),
        NO_WIRE,
    ),
    optional(
        programs::SKB_INGRESS,
        "cgroup_skb/ingress",
        Attach::CgroupSkb(CgroupSkbAttachType::Ingress),
        NO_WIRE,
    ),
    optional(
        programs::CGROUP_MKDIR,
        "tp_btf/cgroup_mkdir",
        Attach::Tracepoint("cgroup_mkdir"),
        "cgroups removed before netwho looks are not named, and units started later are \
         not in the kernel scope",
    ),
    hook(
        programs::EXEC,
        "tp_btf/sched_process_exec",
        Attach::Tracepoint("sched_process_exec"),
    ),
    hook(
        programs::FORK,
        "tp_btf/sched_process_fork",
        Attach::Tracepoint("sched_process_fork"),
    ),
    hook(
        programs::EXIT,
        "tp_btf/sched_process_exit",
        Attach::Tracepoint("sched_process_exit"),
    ),
    hook(
        programs::SET_STATE,
        "tp_btf/inet_sock_set_state",
        Attach::Tracepoint("inet_sock_set_state"),
    ),
    optional(
        programs::DGRAM_COPY,
        "tp_btf/skb_copy_datagram_iovec",
        Attach::Tracepoint("skb_copy_datagram_iovec"),
        "ICMP and raw receives are counted without their remote",
    ),
    hook(
        programs::SOCK_RECV,
        "tp_btf/sock_recv_length",
        Attach::Tracepoint("sock_recv_length"),
    ),
    hook(
        programs::SOCK_SEND,
        "tp_btf/sock_send_length",
        Attach::Tracepoint("sock_send_length"),
    ),
];

/// What attaching gave: the hooks in place, and one sentence per optional
/// hook that is not (what is lost, and the kernel's reason).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Attached {
    /// The hooks attached.
    pub hooks: Vec<&'static str>,
    /// The optional hooks that are not, each in a sentence.
    pub degradations: Vec<String>,
}

/// Attach every hook with `try_attach`, applying the policy: a required
/// hook that fails stops netwho (its error names it); an optional one
/// becomes a degradation every status record shows.
fn attach_all(
    mut try_attach: impl FnMut(&Hook) -> Result<(), SensorError>,
) -> Result<Attached, SensorError> {
    let mut out = Attached::default();
    for h in HOOKS {
        match (try_attach(h), h.without) {
            (Ok(()), _) => out.hooks.push(h.name),
            (Err(e), None) => return Err(e),
            (Err(e), Some(without)) => {
                let reason = match e {
                    SensorError::Hook { detail, .. } => detail,
                    other => other.to_string(),
                };
                out.degradations
                    .push(format!("{} did not attach, so {without}: {reason}", h.name));
            }
        }
    }
    Ok(out)
}

/// Sizes of the kernel maps.
#[derive(Clone, Copy, Debug)]
pub struct MapSizes {
    /// The ring buffer's size in bytes (a power of two).
    pub ring_bytes: u32,
    /// Entries of the flow map.
    pub flows: u32,
    /// Entries of the wire map.
    pub wire: u32,
    /// Entries of the flow and wire maps one uid may hold (0: no limit).
    pub flows_per_uid: u32,
}

impl Default for MapSizes {
    fn default() -> Self {
        MapSizes {
            ring_bytes: 8 << 20,
            flows: 131_072,
            wire: 131_072,
            flows_per_uid: 131_072 / 4,
        }
    }
}

impl MapSizes {
    /// The ring for `flows` flows: 64 bytes a flow (an open and a close
    /// of a busy map, between two drains), at least 8 MiB, at most 256 MiB,
    /// a power of two.
    pub fn ring_for(flows: u32) -> u32 {
        let want = u64::from(flows)
            .saturating_mul(64)
            .clamp(8 << 20, 256 << 20);
        u32::try_from(want.next_power_of_two().min(256 << 20)).unwrap_or(256 << 20)
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
    scope: &KernelScope,
    snaplen: u32,
) -> Result<(Ebpf, Attached), SensorError> {
    let mut ebpf = load_object(btf, sizes, scope, snaplen)?;
    let cgroup = open_cgroup(cgroup_root)?;
    let attached = attach_all(|h| {
        let program = ebpf.program_mut(h.program).ok_or(SensorError::Hook {
            hook: h.name,
            detail: format!("program {} is missing from the BPF object", h.program),
        })?;
        attach_one(program, h.attach, btf, &cgroup).map_err(|e| hook_error(h.name, e))
    })?;
    Ok((ebpf, attached))
}

/// One hook as `netwho doctor` found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookProbe {
    /// The hook, as status records name it.
    pub hook: &'static str,
    /// netwho refuses to start without it.
    pub required: bool,
    /// What is lost without it (`None` for a required hook).
    pub without: Option<&'static str>,
    /// `None` if it attached, else the kernel's reason.
    pub error: Option<String>,
}

/// Load the object and try every hook, without stopping at the first that
/// fails (unlike [`load_and_attach`]): what `netwho doctor` shows. The
/// programs are detached when this returns.
pub fn probe_hooks(btf: &Btf, cgroup_root: &Path) -> Result<Vec<HookProbe>, SensorError> {
    let small = MapSizes {
        ring_bytes: 1 << 20,
        flows: 1024,
        wire: 1024,
        flows_per_uid: 0,
    };
    let mut ebpf = load_object(btf, small, &KernelScope::default(), 0)?;
    let cgroup = open_cgroup(cgroup_root)?;
    let mut out = Vec::with_capacity(HOOKS.len());
    for h in HOOKS {
        let error = match ebpf.program_mut(h.program) {
            None => Some(format!(
                "program {} is missing from the BPF object",
                h.program
            )),
            Some(program) => attach_one(program, h.attach, btf, &cgroup).err().map(|e| {
                match hook_error(h.name, e) {
                    SensorError::Hook { detail, .. } => detail,
                    other => other.to_string(),
                }
            }),
        };
        out.push(HookProbe {
            hook: h.name,
            required: h.without.is_none(),
            without: h.without,
            error,
        });
    }
    Ok(out)
}

fn open_cgroup(cgroup_root: &Path) -> Result<File, SensorError> {
    File::open(cgroup_root).map_err(|source| SensorError::Io {
        what: format!("opening the cgroup v2 root {}", cgroup_root.display()),
        source,
    })
}

/// The embedded object, loaded (maps created, scope written), no program
/// attached yet.
fn load_object(
    btf: &Btf,
    sizes: MapSizes,
    scope: &KernelScope,
    snaplen: u32,
) -> Result<Ebpf, SensorError> {
    let ebpf = EbpfLoader::new()
        .btf(Some(btf))
        .map_max_entries(maps::EVENTS, sizes.ring_bytes)
        .map_max_entries(maps::FLOWS, sizes.flows)
        .map_max_entries(maps::WIRE, sizes.wire)
        // a lost close keeps at least one flow entry: room for one per entry
        .map_max_entries(maps::LOST, sizes.flows.max(65_536))
        .load(netwho_bpf::OBJECT)
        .map_err(|e| SensorError::Load {
            detail: e.to_string(),
        })?;
    super::scope::install(&ebpf, scope)?;
    super::scope::install_capture(&ebpf, snaplen)?;
    super::scope::install_limits(&ebpf, sizes.flows_per_uid)?;
    Ok(ebpf)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_in_the_object_has_a_hook() {
        let text = String::from_utf8_lossy(netwho_bpf::OBJECT);
        for h in HOOKS {
            assert!(text.contains(h.program), "{}", h.program);
            // the ELF section names the hook
            let section = h.name.split_once('/').map_or(h.name, |(s, _)| s);
            assert!(text.contains(section), "{}", h.name);
        }
        assert_eq!(HOOKS.len(), 16);
    }

    fn fail(h: &Hook) -> SensorError {
        SensorError::Hook {
            hook: h.name,
            detail: "the kernel refused the program: Invalid argument".into(),
        }
    }

    #[test]
    fn an_optional_hook_that_fails_is_a_degradation() {
        let a = attach_all(|h| {
            if h.name == "cgroup/recvmsg4" {
                Err(fail(h))
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(a.hooks.len(), HOOKS.len() - 1);
        assert!(!a.hooks.contains(&"cgroup/recvmsg4"));
        assert_eq!(
            a.degradations,
            [
                "cgroup/recvmsg4 did not attach, so unconnected UDP receives are counted without \
              their remote: the kernel refused the program: Invalid argument"
            ]
        );
    }

    #[test]
    fn a_required_hook_that_fails_stops_netwho_and_is_named() {
        let mut tried = Vec::new();
        let e = attach_all(|h| {
            tried.push(h.name);
            if h.name == "tp_btf/sock_recv_length" {
                Err(fail(h))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(matches!(
            e,
            SensorError::Hook {
                hook: "tp_btf/sock_recv_length",
                ..
            }
        ));
        assert_eq!(tried.last(), Some(&"tp_btf/sock_recv_length"));
        let required = HOOKS.iter().filter(|h| h.without.is_none()).count();
        assert_eq!(
            required, 7,
            "sock_create, exec, fork, exit, set_state, recv, send"
        );
    }

    #[test]
    fn verifier_logs_are_cut_to_their_end() {
        let log = "1: r1 = 0\n\n2: exit\nR0 !read_ok\nprocessed 3 insns\n";
        assert_eq!(log_tail(log, 2), "R0 !read_ok\nprocessed 3 insns");
        assert_eq!(log_tail("", 5), "");
    }
}
