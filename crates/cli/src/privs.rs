//! Dropping the capabilities netwho no longer needs once its kernel
//! programs are attached (DESIGN.md §7).
//!
//! Capabilities belong to threads: this runs on the main thread before any
//! other thread is started, so every thread netwho starts afterwards
//! inherits the reduced sets.

use std::io;

/// `CAP_DAC_READ_SEARCH`: read other users' `/proc/PID/*` files.
const CAP_DAC_READ_SEARCH: u32 = 2;
/// `CAP_SYS_PTRACE`: `/proc/PID/exe`, `fd/` and `environ`-guarded entries
/// of other users' processes.
const CAP_SYS_PTRACE: u32 = 19;
/// What the collector keeps after attaching: reading other users' `/proc`.
pub const COLLECTOR_KEEPS: [u32; 2] = [CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE];

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

/// Keeps only `keep` (in the permitted and effective sets), empties the
/// inheritable and ambient sets, and drops everything else from the
/// bounding set, so that nothing this process runs can get them back.
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
    for cap in 0..=last_cap() {
        if !keep.contains(&cap) {
            // SAFETY: prctl with integer arguments only; EINVAL for a
            // capability this kernel does not have is harmless
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
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
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
