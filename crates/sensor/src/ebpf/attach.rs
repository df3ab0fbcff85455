//! Loading the object and attaching every hook, through bpf links owned by
//! this process: exit, a crash or SIGKILL closes them and detaches
//! everything. Nothing is pinned.

use super::scope::KernelScope;
use crate::SensorError;
use aya::programs::{
    BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr,
    FExit, Program, ProgramError, ProgramType,
};
use aya::{Btf, Ebpf, EbpfLoader};
use aya_obj::btf::BtfKind;
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
    /// An fexit program on a kernel function, by name.
    FExit(&'static str),
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

/// Every hook but the payload ones, in attach order. The payload hooks
/// ([`PayloadPath`]) come last: by the time they count, the hooks that name
/// sockets and processes are in place.
const COMMON: &[Hook] = &[
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
];

/// The payload hooks where the kernel has the payload tracepoints (6.5+).
const TRACEPOINT_PAYLOAD: &[Hook] = &[
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

/// The payload hooks where it has not: fexit on the IPv4 and IPv6 socket
/// operations the tracepoints sit behind.
const FEXIT_PAYLOAD: &[Hook] = &[
    hook(
        programs::FX_RECV4,
        "fexit/inet_recvmsg",
        Attach::FExit("inet_recvmsg"),
    ),
    hook(
        programs::FX_RECV6,
        "fexit/inet6_recvmsg",
        Attach::FExit("inet6_recvmsg"),
    ),
    hook(
        programs::FX_SEND4,
        "fexit/inet_sendmsg",
        Attach::FExit("inet_sendmsg"),
    ),
    hook(
        programs::FX_SEND6,
        "fexit/inet6_sendmsg",
        Attach::FExit("inet6_sendmsg"),
    ),
    optional(
        programs::FX_SENDPAGE,
        "fexit/inet_sendpage",
        Attach::FExit("inet_sendpage"),
        "sendfile() and splice() to a socket are not counted",
    ),
];

/// What the fexit path does not see, whatever attaches.
const FEXIT_LOSES: &str = "payload hooks: fexit on inet/inet6 socket operations (this kernel has no \
     sock_send_length/sock_recv_length tracepoints), so AF_PACKET sockets' payload is not counted";

/// Which hooks count payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadPath {
    /// The tracepoints if the kernel has them, else fexit (decided from
    /// the kernel's BTF, not its version).
    #[default]
    Auto,
    /// `tp_btf/sock_send_length` and `sock_recv_length` (6.5+).
    Tracepoints,
    /// fexit on `inet_sendmsg`, `inet6_sendmsg`, `inet_recvmsg`,
    /// `inet6_recvmsg` (and `inet_sendpage` where it exists).
    Fexit,
}

impl PayloadPath {
    /// As status records and `netwho doctor` name it.
    pub fn name(self) -> &'static str {
        match self {
            PayloadPath::Auto => "auto",
            PayloadPath::Tracepoints => "tracepoints",
            PayloadPath::Fexit => "fexit",
        }
    }

    /// Auto resolved for a kernel whose BTF has (or lacks) the payload
    /// tracepoints.
    pub fn resolve(self, has_tracepoints: bool) -> PayloadPath {
        match self {
            PayloadPath::Auto if has_tracepoints => PayloadPath::Tracepoints,
            PayloadPath::Auto => PayloadPath::Fexit,
            p => p,
        }
    }

    fn hooks(self) -> impl Iterator<Item = &'static Hook> {
        let payload = match self {
            PayloadPath::Fexit => FEXIT_PAYLOAD,
            _ => TRACEPOINT_PAYLOAD,
        };
        COMMON.iter().chain(payload)
    }
}

/// The kernel's BTF has both payload tracepoints.
pub fn has_payload_tracepoints(btf: &Btf) -> bool {
    ["btf_trace_sock_send_length", "btf_trace_sock_recv_length"]
        .iter()
        .all(|t| btf.id_by_type_name_kind(t, BtfKind::Typedef).is_ok())
}

/// cgroup_skb programs may call `bpf_get_current_pid_tgid()` on this kernel.
fn skb_may_ask_task() -> bool {
    aya::sys::is_helper_supported(
        ProgramType::CgroupSkb,
        aya::sys::BpfHelper::BPF_FUNC_get_current_pid_tgid,
    )
    .unwrap_or(false)
}

const SKB_NO_TASK: &str = "cgroup_skb programs cannot ask for the current task on this kernel, so \
     bytes a process takes past recv() (splice) while it holds the socket are credited to the \
     socket's last reader";

/// What attaching gave: the hooks in place, and one sentence per optional
/// hook that is not (what is lost, and the kernel's reason).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Attached {
    /// The payload path.
    pub path: PayloadPath,
    /// The hooks attached.
    pub hooks: Vec<&'static str>,
    /// The optional hooks that are not, each in a sentence.
    pub degradations: Vec<String>,
}

/// Attach every hook with `try_attach`, applying the policy: a required
/// hook that fails stops netwho (its error names it); an optional one
/// becomes a degradation every status record shows.
fn attach_all<'h>(
    hooks: impl Iterator<Item = &'h Hook>,
    mut try_attach: impl FnMut(&Hook) -> Result<(), SensorError>,
) -> Result<Attached, SensorError> {
    let mut out = Attached::default();
    for h in hooks {
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

/// The oldest kernel netwho is tested on (Debian 12's 6.1, under QEMU:
/// scripts/vmtest): there the payload hooks are fexit programs, as the
/// tracepoints (sock_send_length/sock_recv_length) only came in 6.5.
pub const MIN_KERNEL: &str = "6.1";

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
        " (netwho is tested on Linux {MIN_KERNEL} and later, with BTF; this kernel is {})",
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
    capture: netwho_bpf::abi::CaptureCfg,
    path: PayloadPath,
) -> Result<(Ebpf, Attached), SensorError> {
    let path = path.resolve(has_payload_tracepoints(btf));
    let skb_task = skb_may_ask_task();
    let mut ebpf = load_object(btf, sizes, scope, capture, skb_task)?;
    let cgroup = open_cgroup(cgroup_root)?;
    let mut attached = attach_all(path.hooks(), |h| {
        let program = ebpf.program_mut(h.program).ok_or(SensorError::Hook {
            hook: h.name,
            detail: format!("program {} is missing from the BPF object", h.program),
        })?;
        attach_one(program, h.attach, btf, &cgroup).map_err(|e| hook_error(h.name, e))
    })?;
    attached.path = path;
    let egress = attached.hooks.contains(&"cgroup_skb/egress");
    attached
        .degradations
        .extend(path_losses(path, skb_task, egress));
    Ok((ebpf, attached))
}

/// What a path loses whatever attaches, each in a sentence: one list for a
/// start and for `netwho doctor`'s probe, so that they agree.
fn path_losses(path: PayloadPath, skb_task: bool, egress: bool) -> Vec<String> {
    let mut v = Vec::new();
    if path == PayloadPath::Fexit {
        v.push(FEXIT_LOSES.to_string());
    }
    if !skb_task && egress {
        v.push(SKB_NO_TASK.to_string());
    }
    v
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
pub fn probe_hooks(
    btf: &Btf,
    cgroup_root: &Path,
    path: PayloadPath,
) -> Result<Probed, SensorError> {
    let small = MapSizes {
        ring_bytes: 1 << 20,
        flows: 1024,
        wire: 1024,
        flows_per_uid: 0,
    };
    let path = path.resolve(has_payload_tracepoints(btf));
    let skb_task = skb_may_ask_task();
    let mut ebpf = load_object(
        btf,
        small,
        &KernelScope::default(),
        netwho_bpf::abi::CaptureCfg::default(),
        skb_task,
    )?;
    let cgroup = open_cgroup(cgroup_root)?;
    let mut out = Vec::new();
    for h in path.hooks() {
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
    let egress = out
        .iter()
        .any(|h| h.hook == "cgroup_skb/egress" && h.error.is_none());
    Ok(Probed {
        path,
        notes: path_losses(path, skb_task, egress),
        hooks: out,
    })
}

/// What `netwho doctor`'s probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    /// The payload path a start would take.
    pub path: PayloadPath,
    /// Every hook of that path.
    pub hooks: Vec<HookProbe>,
    /// What the path loses whatever attaches, each in a sentence.
    pub notes: Vec<String>,
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
    capture: netwho_bpf::abi::CaptureCfg,
    skb_task: bool,
) -> Result<Ebpf, SensorError> {
    let skb_task = u32::from(skb_task);
    let ebpf = EbpfLoader::new()
        .override_global(netwho_bpf::globals::SKB_TASK, &skb_task, true)
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
    super::scope::install_capture(&ebpf, capture)?;
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
        Attach::FExit(function) => {
            let p: &mut FExit = program.try_into()?;
            p.load(function, btf)?;
            p.attach()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> impl Iterator<Item = &'static Hook> {
        COMMON.iter().chain(TRACEPOINT_PAYLOAD).chain(FEXIT_PAYLOAD)
    }

    #[test]
    fn every_program_in_the_object_has_a_hook() {
        let text = String::from_utf8_lossy(netwho_bpf::OBJECT);
        for h in all() {
            assert!(text.contains(h.program), "{}", h.program);
            // the ELF section names the hook
            let section = h.name.split_once('/').map_or(h.name, |(s, _)| s);
            assert!(text.contains(section), "{}", h.name);
            if let Attach::FExit(f) = h.attach {
                assert!(text.contains(&format!("fexit/{f}")), "{}", h.name);
            }
        }
        assert_eq!(PayloadPath::Tracepoints.hooks().count(), 16);
        assert_eq!(PayloadPath::Fexit.hooks().count(), 19);
        assert_eq!(all().count(), 21);
    }

    #[test]
    fn the_path_follows_the_kernel_unless_forced() {
        assert_eq!(PayloadPath::Auto.resolve(true), PayloadPath::Tracepoints);
        assert_eq!(PayloadPath::Auto.resolve(false), PayloadPath::Fexit);
        assert_eq!(PayloadPath::Fexit.resolve(true), PayloadPath::Fexit);
        assert_eq!(
            PayloadPath::Tracepoints.resolve(false),
            PayloadPath::Tracepoints,
            "forced: the kernel's refusal then names the missing tracepoint"
        );
        let tail: Vec<&str> = PayloadPath::Fexit
            .hooks()
            .skip(14)
            .map(|h| h.name)
            .collect();
        assert_eq!(
            tail,
            [
                "fexit/inet_recvmsg",
                "fexit/inet6_recvmsg",
                "fexit/inet_sendmsg",
                "fexit/inet6_sendmsg",
                "fexit/inet_sendpage"
            ],
            "the payload hooks come last, after the ones that name sockets"
        );
    }

    fn fail(h: &Hook) -> SensorError {
        SensorError::Hook {
            hook: h.name,
            detail: "the kernel refused the program: Invalid argument".into(),
        }
    }

    #[test]
    fn an_optional_hook_that_fails_is_a_degradation() {
        let a = attach_all(PayloadPath::Tracepoints.hooks(), |h| {
            if h.name == "cgroup/recvmsg4" {
                Err(fail(h))
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(a.hooks.len(), 15);
        assert!(!a.hooks.contains(&"cgroup/recvmsg4"));
        assert_eq!(
            a.degradations,
            [
                "cgroup/recvmsg4 did not attach, so unconnected UDP receives are counted without \
              their remote: the kernel refused the program: Invalid argument"
            ]
        );
        // on the fexit path, a kernel without ->sendpage (6.5+) loses sendfile
        let a = attach_all(PayloadPath::Fexit.hooks(), |h| {
            if h.name == "fexit/inet_sendpage" {
                Err(fail(h))
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(a.hooks.len(), 18);
        assert!(
            a.degradations[0].contains("sendfile()"),
            "{:?}",
            a.degradations
        );
    }

    #[test]
    fn a_required_hook_that_fails_stops_netwho_and_is_named() {
        for (path, payload) in [
            (PayloadPath::Tracepoints, "tp_btf/sock_recv_length"),
            (PayloadPath::Fexit, "fexit/inet6_sendmsg"),
        ] {
            let mut tried = Vec::new();
            let e = attach_all(path.hooks(), |h| {
                tried.push(h.name);
                if h.name == payload {
                    Err(fail(h))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
            assert!(
                matches!(e, SensorError::Hook { hook, .. } if hook == payload),
                "{e}"
            );
            assert_eq!(tried.last(), Some(&payload));
        }
        let required = |p: PayloadPath| p.hooks().filter(|h| h.without.is_none()).count();
        assert_eq!(
            required(PayloadPath::Tracepoints),
            7,
            "sock_create, exec, fork, exit, set_state, recv, send"
        );
        assert_eq!(
            required(PayloadPath::Fexit),
            9,
            "... and recv, send for each family"
        );
    }

    #[test]
    fn verifier_logs_are_cut_to_their_end() {
        let log = "1: r1 = 0\n\n2: exit\nR0 !read_ok\nprocessed 3 insns\n";
        assert_eq!(log_tail(log, 2), "R0 !read_ok\nprocessed 3 insns");
        assert_eq!(log_tail("", 5), "");
    }
}
