//! What this machine offers the sensor, each piece checked on its own
//! without stopping at the first that fails: `netwho doctor`. It changes
//! nothing: the programs it loads to probe the hooks are detached (their
//! links closed) before [`diagnose`] returns.

use super::attach::{self, HookProbe, PayloadPath};
use super::prereq;
use aya::Btf;
use std::path::Path;

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fine.
    Ok,
    /// netwho runs, but something is slower, degraded or unknown.
    Warn,
    /// netwho cannot run as things are.
    Fail,
}

impl Verdict {
    /// As printed: `ok`, `warn`, `FAIL`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One check: its name, its verdict and a sentence (for a failure: what to
/// do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Short name (`privileges`, `btf`, ...).
    pub name: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was found; for a warning or failure, what to do.
    pub detail: String,
}

fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name,
        verdict,
        detail: detail.into(),
    }
}

/// The sensor path with the payload tracepoints (6.5 and later).
pub const PATH_TRACEPOINTS: &str = "ebpf: payload tracepoints (tp_btf/sock_send_length, \
     tp_btf/sock_recv_length), cgroup socket hooks, process tracepoints";

/// The sensor path without them: fexit on the socket operations.
pub const PATH_FEXIT: &str = "ebpf: payload from fexit on inet/inet6 sendmsg, recvmsg and \
     sendpage (no payload tracepoints in this kernel), cgroup socket hooks, process tracepoints";

/// The sentence for a payload path.
pub fn path_name(p: PayloadPath) -> &'static str {
    match p {
        PayloadPath::Fexit => PATH_FEXIT,
        _ => PATH_TRACEPOINTS,
    }
}

/// Everything `netwho doctor` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// `uname -r`.
    pub kernel: String,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Every hook, if the programs were loaded (empty otherwise).
    pub hooks: Vec<HookProbe>,
    /// Why the hooks were not probed, if they were not.
    pub hooks_not_probed: Option<String>,
    /// The sensor path netwho would use, if it can run.
    pub sensor_path: Option<&'static str>,
    /// What a running netwho would report as degraded.
    pub degradations: Vec<String>,
    /// The kernel programs cannot run here, but the reduced sock_diag
    /// sensor can (what `--sensor auto` falls back to).
    pub reduced: bool,
}

impl Diagnosis {
    /// The kernel programs can run here: no check failed and the hooks
    /// were probed.
    pub fn ebpf_can_run(&self) -> bool {
        self.sensor_path.is_some() && self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    /// netwho can run here: with the kernel programs, or reduced.
    pub fn can_run(&self) -> bool {
        self.ebpf_can_run() || self.reduced
    }
}

/// The sensor path where the kernel programs cannot run.
pub const PATH_SOCK_DIAG: &str = "sock_diag (reduced): sockets looked at every --look-interval (250 ms) through \
     sock_diag with tcp_info byte counters, owners from /proc/*/fd, closes from sock_diag \
     destroy notices, exits from the proc connector";

/// Kernel configuration options netwho's sensor relies on.
const CONFIG: &[(&str, &str)] = &[
    ("CONFIG_BPF_SYSCALL", "the bpf() system call"),
    ("CONFIG_BPF_JIT", "compiled BPF programs"),
    ("CONFIG_CGROUP_BPF", "the cgroup socket hooks"),
    ("CONFIG_DEBUG_INFO_BTF", "BTF type information"),
    ("CONFIG_BPF_EVENTS", "BPF programs on tracepoints"),
];

/// The options netwho relies on (BPF syscall, JIT, cgroup BPF, BTF, BPF events) not set to `y` in a kernel configuration
/// file's text.
pub fn config_missing(config: &str) -> Vec<&'static str> {
    CONFIG
        .iter()
        .filter(|(opt, _)| {
            !config
                .lines()
                .any(|l| l.strip_prefix(opt).is_some_and(|rest| rest == "=y"))
        })
        .map(|(opt, _)| *opt)
        .collect()
}

/// The mode in `/sys/kernel/security/lockdown` (`none [integrity]
/// confidentiality`: the one in brackets).
pub fn lockdown_mode(text: &str) -> Option<&str> {
    let start = text.find('[')?;
    let end = text[start..].find(']')?;
    Some(&text[start + 1..start + end])
}

fn read(path: &str) -> Option<String> {
    // the files read here are small kernel files; a bound all the same
    use std::io::Read as _;
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Check everything; with `load`, also load the kernel programs and try
/// every hook (needs the privileges). Where they cannot run (and that was
/// tried, or a prerequisite failed), whether the reduced sensor can.
pub fn diagnose(load: bool, payload: PayloadPath) -> Diagnosis {
    let mut d = diagnose_ebpf(load, payload);
    let tried = load || d.checks.iter().any(|c| c.verdict == Verdict::Fail);
    let privileged = d
        .checks
        .iter()
        .any(|c| c.name == "privileges" && c.verdict == Verdict::Ok);
    if !d.ebpf_can_run() && tried && privileged {
        match crate::diag::probe() {
            Ok(()) => {
                d.reduced = true;
                d.sensor_path = Some(PATH_SOCK_DIAG);
                d.degradations = crate::diag::degradations(&crate::diag::DiagConfig::default());
            }
            Err(e) => d.checks.push(check(
                "sock_diag",
                Verdict::Fail,
                format!("the reduced sensor cannot run either: {e}"),
            )),
        }
    }
    d
}

fn diagnose_ebpf(load: bool, payload: PayloadPath) -> Diagnosis {
    let kernel = read("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut d = Diagnosis {
        kernel: kernel.clone(),
        ..Diagnosis::default()
    };

    let caps = std::fs::read("/proc/self/status")
        .ok()
        .and_then(|s| prereq::parse_cap_eff(&s))
        .unwrap_or(0);
    let missing = prereq::missing_caps(caps);
    let privileged = missing.is_empty();
    d.checks.push(if privileged {
        check(
            "privileges",
            Verdict::Ok,
            "CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN are held",
        )
    } else {
        check(
            "privileges",
            Verdict::Fail,
            format!(
                "missing {}: run netwho (and this check) as root, or grant them with 'setcap \
                 cap_bpf,cap_perfmon,cap_net_admin,cap_sys_ptrace,cap_dac_read_search+ep \
                 $(command -v netwho)'",
                missing.join(", ")
            ),
        )
    });

    let btf_ok = Path::new(prereq::BTF_PATH).exists();
    d.checks.push(if btf_ok {
        check("btf", Verdict::Ok, prereq::BTF_PATH)
    } else {
        check(
            "btf",
            Verdict::Fail,
            format!(
                "{} is missing: the kernel was built without CONFIG_DEBUG_INFO_BTF=y; use a \
                 distribution kernel that has it (Debian, Ubuntu, Fedora and RHEL do)",
                prereq::BTF_PATH
            ),
        )
    });

    let cgroup = prereq::cgroup2_root().ok();
    d.checks.push(match &cgroup {
        Some(p) => check("cgroup2", Verdict::Ok, p.display().to_string()),
        None => check(
            "cgroup2",
            Verdict::Fail,
            "cgroup v2 is not mounted: mount it ('mount -t cgroup2 none /sys/fs/cgroup/unified') \
             or boot with systemd.unified_cgroup_hierarchy=1",
        ),
    });

    d.checks.push(match read("/sys/kernel/security/lockdown") {
        None => check("lockdown", Verdict::Ok, "no lockdown (no lockdown LSM)"),
        Some(t) => match lockdown_mode(&t) {
            Some("confidentiality") => check(
                "lockdown",
                Verdict::Fail,
                "lockdown=confidentiality forbids BPF programs to read kernel memory: boot with \
                 lockdown=integrity (or none), or turn off Secure Boot's lockdown",
            ),
            Some(m) => check("lockdown", Verdict::Ok, format!("lockdown={m}")),
            None => check(
                "lockdown",
                Verdict::Warn,
                format!("unreadable: {}", t.trim()),
            ),
        },
    });

    d.checks
        .push(match read("/proc/sys/net/core/bpf_jit_enable") {
            Some(v) if v.trim() == "0" => check(
                "bpf_jit",
                Verdict::Warn,
                "the BPF JIT is off: programs run interpreted, several times slower \
             (sysctl net.core.bpf_jit_enable=1)",
            ),
            Some(v) => check("bpf_jit", Verdict::Ok, format!("on ({})", v.trim())),
            None => check("bpf_jit", Verdict::Ok, "always on"),
        });

    let config_path = format!("/boot/config-{kernel}");
    d.checks.push(match read(&config_path) {
        Some(text) => {
            let missing = config_missing(&text);
            if missing.is_empty() {
                check(
                    "kernel_config",
                    Verdict::Ok,
                    format!(
                        "{config_path}: {}",
                        CONFIG.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
                    ),
                )
            } else {
                check(
                    "kernel_config",
                    Verdict::Warn,
                    format!("{config_path} does not set {}", missing.join(", ")),
                )
            }
        }
        None => check(
            "kernel_config",
            Verdict::Ok,
            format!("{config_path} not found (the hooks below are the real test)"),
        ),
    });

    if !load {
        d.hooks_not_probed = Some("--no-load: the kernel programs were not loaded".into());
        return d;
    }
    let why_not = if !privileged {
        Some("without the privileges above the kernel programs cannot be loaded")
    } else if !btf_ok {
        Some("without BTF the programs cannot be loaded")
    } else if cgroup.is_none() {
        Some("without cgroup v2 the socket hooks cannot be attached")
    } else {
        None
    };
    if let Some(w) = why_not {
        d.hooks_not_probed = Some(w.into());
        return d;
    }
    prereq::raise_memlock();
    let probed = Btf::from_sys_fs()
        .map_err(|e| e.to_string())
        .and_then(|btf| {
            attach::probe_hooks(&btf, cgroup.as_deref().unwrap_or(Path::new("/")), payload)
                .map_err(|e| e.to_string())
        });
    match probed {
        Err(e) => {
            d.checks.push(check(
                "load",
                Verdict::Fail,
                format!("netwho's BPF object did not load: {e}"),
            ));
        }
        Ok(probed) => {
            let hooks = probed.hooks;
            let required_failed: Vec<&str> = hooks
                .iter()
                .filter(|h| h.required && h.error.is_some())
                .map(|h| h.hook)
                .collect();
            d.degradations = hooks
                .iter()
                .filter_map(|h| {
                    let (without, err) = (h.without?, h.error.as_ref()?);
                    Some(format!("{} did not attach, so {without}: {err}", h.hook))
                })
                .chain(probed.notes)
                .collect();
            if required_failed.is_empty() {
                d.checks.push(check(
                    "hooks",
                    if d.degradations.is_empty() {
                        Verdict::Ok
                    } else {
                        Verdict::Warn
                    },
                    format!(
                        "{} of {} attached",
                        hooks.iter().filter(|h| h.error.is_none()).count(),
                        hooks.len()
                    ),
                ));
                d.sensor_path = Some(path_name(probed.path));
            } else {
                d.checks.push(check(
                    "hooks",
                    Verdict::Fail,
                    format!(
                        "required hooks did not attach: {} (netwho is tested on Linux {} and \
                         later, with BTF; this kernel is {kernel})",
                        required_failed.join(", "),
                        attach::MIN_KERNEL
                    ),
                ));
            }
            d.hooks = hooks;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_modes() {
        assert_eq!(
            lockdown_mode("none [integrity] confidentiality\n"),
            Some("integrity")
        );
        assert_eq!(
            lockdown_mode("[none] integrity confidentiality"),
            Some("none")
        );
        assert_eq!(lockdown_mode("none integrity"), None);
        assert_eq!(lockdown_mode("[unterminated"), None);
    }

    #[test]
    fn kernel_config_options() {
        let all = "CONFIG_BPF_SYSCALL=y\nCONFIG_BPF_JIT=y\nCONFIG_CGROUP_BPF=y\n\
                   CONFIG_DEBUG_INFO_BTF=y\nCONFIG_BPF_EVENTS=y\n";
        assert!(config_missing(all).is_empty());
        let some = "CONFIG_BPF_SYSCALL=y\n# CONFIG_DEBUG_INFO_BTF is not set\n\
                    CONFIG_BPF_JIT=m\nCONFIG_CGROUP_BPF=y\nCONFIG_BPF_EVENTS=y\n\
                    CONFIG_DEBUG_INFO_BTF_MODULES=y\n";
        assert_eq!(
            config_missing(some),
            ["CONFIG_BPF_JIT", "CONFIG_DEBUG_INFO_BTF"],
            "=m is not =y, and a longer option's name is not the option"
        );
    }

    #[test]
    fn netwho_runs_only_when_nothing_failed_and_the_hooks_were_probed() {
        let mut d = Diagnosis {
            sensor_path: Some(PATH_TRACEPOINTS),
            checks: vec![check("bpf_jit", Verdict::Warn, "off")],
            ..Diagnosis::default()
        };
        assert!(d.can_run(), "a warning does not stop netwho");
        d.checks.push(check("lockdown", Verdict::Fail, "x"));
        assert!(!d.can_run());
        let unprobed = Diagnosis::default();
        assert!(!unprobed.can_run(), "not known to run is not 'can run'");
    }
}
