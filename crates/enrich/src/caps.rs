//! Least privilege, thread by thread.
//!
//! Linux keeps capabilities and user ids per thread, and a new thread
//! starts with its creator's. netwho needs its privileges to load and
//! attach its kernel programs; after that each part keeps only what it
//! still uses (README "Security"):
//!
//! | who | keeps | why |
//! |---|---|---|
//! | the collector (main thread) and the executable hasher | `CAP_DAC_READ_SEARCH`, `CAP_SYS_PTRACE` ([`COLLECTOR_KEEPS`]) | reading other users' `/proc/PID/{exe,cmdline,stat,cgroup}` and hashing their executables; the BPF maps it reads are already open |
//! | the same, with the reduced sock_diag sensor (`--sensor sock-diag`) | also `CAP_NET_ADMIN`, `CAP_SYS_ADMIN` ([`DIAG_COLLECTOR_KEEPS`]) | entering network namespaces created after start (`setns`) to list their sockets and hear their closes |
//! | writers (log files, the history, recordings, exports, the spool's publisher), name lookups, report workers, the view | nothing ([`drop_all`]) | they write to files they opened or own (uid 0 stays their owner) and to sockets |
//! | the daemon's API | nothing, and another uid ([`become_user`], `nobody` by default) | it parses what any local user sends |
//!
//! The calls here change the calling thread only (raw `capset`,
//! `setresuid`, ... system calls, not the C library's process-wide
//! wrappers), so each thread applies its own policy when it starts.

use std::io;

/// `CAP_DAC_READ_SEARCH`: read other users' `/proc/PID/*` files.
pub const CAP_DAC_READ_SEARCH: u32 = 2;
/// `CAP_SETPCAP`: needed to drop from the bounding set.
const CAP_SETPCAP: u32 = 8;
/// `CAP_SYS_PTRACE`: `/proc/PID/exe` and other ptrace-guarded entries of
/// other users' processes.
pub const CAP_SYS_PTRACE: u32 = 19;
/// What the collector keeps after attaching: reading other users' `/proc`.
pub const COLLECTOR_KEEPS: [u32; 2] = [CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE];
/// `CAP_NET_ADMIN`: sock_diag's destroy notices.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SYS_ADMIN`: `setns()` into another network namespace.
pub const CAP_SYS_ADMIN: u32 = 21;
/// What the reduced (sock_diag) sensor's collector keeps: `/proc`, and
/// entering network namespaces created after it started to list their
/// sockets and hear their closes.
pub const DIAG_COLLECTOR_KEEPS: [u32; 4] = [
    CAP_DAC_READ_SEARCH,
    CAP_SYS_PTRACE,
    CAP_NET_ADMIN,
    CAP_SYS_ADMIN,
];

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The calling thread's effective capabilities, as a bit mask.
pub fn effective() -> io::Result<u64> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: the header and two data words are the v3 layout capget
    // fills; both live for the call
    let r = unsafe { libc::syscall(libc::SYS_capget, &raw mut hdr, data.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(data[0].effective) | u64::from(data[1].effective) << 32)
}

/// Keeps only `keep` (permitted and effective) in the calling thread,
/// empties its inheritable and ambient sets, and drops everything else
/// from its bounding set (while it still may), so that nothing it runs
/// can get them back. Threads it starts afterwards inherit this.
pub fn keep_only(keep: &[u32]) -> io::Result<()> {
    let mask = |caps: &[u32], word: u32| -> u32 {
        caps.iter()
            .filter(|c| **c / 32 == word)
            .fold(0, |m, c| m | 1 << (c % 32))
    };
    // SAFETY: prctl with integer arguments only
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    if effective().is_ok_and(|e| e & 1 << CAP_SETPCAP != 0) {
        for cap in 0..=last_cap() {
            if !keep.contains(&cap) {
                // SAFETY: prctl with integer arguments only; EINVAL for a
                // capability this kernel does not have is harmless
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            }
        }
    }
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [0u32, 1].map(|w| {
        let m = mask(keep, w);
        CapData {
            effective: m,
            permitted: m,
            inheritable: 0,
        }
    });
    // SAFETY: the header and two data words are the v3 layout capset
    // expects; both live for the call
    let r = unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) };
    if r != 0 {
        // asking for a capability the thread no longer has: keep what is
        // left of `keep` (dropping is always allowed)
        let held = effective()?;
        let left: Vec<u32> = keep
            .iter()
            .copied()
            .filter(|c| held & 1 << c != 0)
            .collect();
        if left.len() < keep.len() {
            return keep_only(&left);
        }
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Drops every capability of the calling thread (its uid stays).
pub fn drop_all() -> io::Result<()> {
    keep_only(&[])
}

/// [`drop_all`] at the start of a thread that needs no privilege; a
/// failure is logged (the thread still works, with more than it needs).
pub fn drop_all_here(what: &str) {
    if let Err(e) = drop_all() {
        log::warn!("{what}: cannot drop its capabilities: {e}");
    }
}

/// The calling thread becomes `uid`:`gid` with no supplementary groups and
/// no capabilities. Only a thread that may (root) can; others get EPERM.
pub fn become_user(uid: u32, gid: u32) -> io::Result<()> {
    drop_bounding();
    let empty: [libc::gid_t; 0] = [];
    let ok = |r: libc::c_long| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let (u, g) = (libc::c_long::from(uid), libc::c_long::from(gid));
    // SAFETY: raw system calls with integer arguments and an empty list:
    // each changes the calling thread's credentials only
    ok(unsafe { libc::syscall(libc::SYS_setgroups, 0usize, empty.as_ptr()) })?;
    // SAFETY: as above
    ok(unsafe { libc::syscall(libc::SYS_setresgid, g, g, g) })?;
    // SAFETY: as above
    ok(unsafe { libc::syscall(libc::SYS_setresuid, u, u, u) })?;
    // leaving uid 0 clears the capabilities; say so explicitly anyway
    drop_all()
}

/// Drops the whole bounding set while CAP_SETPCAP is still held.
fn drop_bounding() {
    if effective().is_ok_and(|e| e & 1 << CAP_SETPCAP != 0) {
        for cap in 0..=last_cap() {
            // SAFETY: prctl with integer arguments only
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        }
    }
}

/// The calling thread's real, effective and saved uid (from the kernel:
/// the C library's `getuid` is per process).
pub fn thread_uids() -> io::Result<[u32; 3]> {
    let (mut r, mut e, mut s) = (0u32, 0u32, 0u32);
    // SAFETY: getresuid writes three uid_t through valid pointers
    let rc = unsafe { libc::syscall(libc::SYS_getresuid, &raw mut r, &raw mut e, &raw mut s) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok([r, e, s])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_drops_its_own_capabilities_only() {
        let before = effective().unwrap();
        let child = std::thread::spawn(|| {
            drop_all().unwrap();
            effective().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(child, 0);
        assert_eq!(effective().unwrap(), before, "the caller keeps its own");
    }

    #[test]
    fn becoming_another_user_changes_one_thread() {
        // SAFETY: geteuid has no preconditions
        if unsafe { libc::geteuid() } != 0 {
            // only root may change its uid; the e2e tests run as root
            assert!(
                std::thread::spawn(|| become_user(65534, 65534))
                    .join()
                    .unwrap()
                    .is_err()
            );
            return;
        }
        let (uids, caps) = std::thread::spawn(|| {
            become_user(65534, 65534).unwrap();
            (thread_uids().unwrap(), effective().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(uids, [65534; 3]);
        assert_eq!(caps, 0);
        assert_eq!(
            thread_uids().unwrap()[1],
            0,
            "the rest of the process is still root"
        );
    }
}
