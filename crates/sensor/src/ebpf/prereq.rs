//! What the kernel sensor needs before it loads anything, each checked up
//! front so that a missing piece gets a message that says what to do rather
//! than an errno from deep inside the loader.

use crate::SensorError;
use std::path::{Path, PathBuf};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set from `/proc/self/status`.
pub fn parse_cap_eff(status: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// Capabilities the sensor lacks. CAP_SYS_ADMIN stands in for CAP_BPF and
/// CAP_PERFMON (as on kernels before 5.8).
pub fn missing_caps(cap_eff: u64) -> Vec<&'static str> {
    let has = |c: u32| cap_eff & (1u64 << c) != 0;
    let admin = has(CAP_SYS_ADMIN);
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !admin {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !admin {
        missing.push("CAP_PERFMON");
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    missing
}

/// CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN are held (the error names what is missing).
pub fn check_privileges() -> Result<(), SensorError> {
    let status = std::fs::read("/proc/self/status").map_err(|source| SensorError::Io {
        what: "reading /proc/self/status".into(),
        source,
    })?;
    let caps = parse_cap_eff(&status).unwrap_or(0);
    let missing = missing_caps(caps);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SensorError::Privilege {
            missing: missing.join(", "),
        })
    }
}

/// Where the kernel's BTF is.
pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// The kernel's BTF is there and readable.
pub fn check_btf(path: &Path) -> Result<(), SensorError> {
    if path.exists() {
        Ok(())
    } else {
        Err(SensorError::NoBtf {
            path: path.to_path_buf(),
        })
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount point of the cgroup v2 hierarchy from `/proc/self/mountinfo`:
/// `/sys/fs/cgroup` on unified hosts, `/sys/fs/cgroup/unified` on hybrid
/// ones. Only a mount of the hierarchy's root counts (a container may see a
/// subtree mounted, whose programs would not cover the host).
pub fn find_cgroup2(mountinfo: &[u8]) -> Option<PathBuf> {
    let text = String::from_utf8_lossy(mountinfo);
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let fstype = after.split(' ').next().unwrap_or("");
        if fstype == "cgroup2" && fields.len() >= 5 && fields[3] == "/" {
            return Some(PathBuf::from(unescape(fields[4])));
        }
    }
    None
}

/// The cgroup v2 mount, from `/proc/self/mountinfo`.
pub fn cgroup2_root() -> Result<PathBuf, SensorError> {
    let mi = std::fs::read("/proc/self/mountinfo").map_err(|source| SensorError::Io {
        what: "reading /proc/self/mountinfo".into(),
        source,
    })?;
    find_cgroup2(&mi).ok_or(SensorError::NoCgroup2)
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it. Later
/// kernels use memory cgroups and ignore it, so failure is not an error.
pub fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct; no memory is retained.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_status() {
        let root = b"Name:\tnetwho\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(root), Some(0x1ff_ffff_ffff));
        assert!(missing_caps(0x1ff_ffff_ffff).is_empty());
        assert_eq!(missing_caps(0), ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]);
        // CAP_SYS_ADMIN covers BPF and PERFMON, not NET_ADMIN
        assert_eq!(missing_caps(1 << CAP_SYS_ADMIN), ["CAP_NET_ADMIN"]);
        let exact = (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_NET_ADMIN);
        assert!(missing_caps(exact).is_empty());
        assert_eq!(parse_cap_eff(b"Name:\tx\n"), None);
    }

    #[test]
    fn cgroup2_on_unified_and_hybrid_hosts() {
        let unified = b"25 30 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(find_cgroup2(unified), Some(PathBuf::from("/sys/fs/cgroup")));
        let hybrid = b"30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n\
            31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
            32 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(
            find_cgroup2(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1_only = b"32 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(find_cgroup2(v1_only), None);
        let subtree = b"40 1 0:22 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            find_cgroup2(subtree),
            None,
            "a subtree does not cover the host"
        );
        let escaped = b"41 1 0:22 / /mnt/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(find_cgroup2(escaped), Some(PathBuf::from("/mnt/my cg")));
    }
}
