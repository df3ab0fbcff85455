//! Enrichment: names for the numbers the kernel gives.
//!
//! Place in the pipeline: beside the model. The pipeline asks this crate
//! for process details the kernel events did not carry (processes older
//! than netwho, exe paths, long command lines), for user and group names,
//! and for the cgroup path, systemd unit and container of a cgroup id.
//! Parsers take bytes (`parse_stat(&[u8])`); thin wrappers read the files,
//! so tests feed fixtures. A lookup that fails leaves a field empty and is
//! counted, never guessed.

#![warn(missing_docs)]

pub mod caps;
pub mod cgroup;
pub mod clock;
pub mod dns;
pub mod hash;
pub mod net;
pub mod procfs;
pub mod users;

use std::path::Path;

/// `/proc/sys/kernel/random/boot_id` (a UUID) as 16 bytes.
pub fn parse_boot_id(text: &[u8]) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// This boot's id, or zeros if the kernel does not say (flow ids then stay
/// unique within the boot only).
pub fn boot_id() -> [u8; 16] {
    std::fs::read(Path::new("/proc/sys/kernel/random/boot_id"))
        .ok()
        .and_then(|b| parse_boot_id(&b))
        .unwrap_or([0; 16])
}

#[cfg(test)]
mod tests {
    #[test]
    fn boot_id_parses() {
        let id = super::parse_boot_id(b"3f0d1e2c-1b2a-4c3d-9e8f-0123456789ab\n").unwrap();
        assert_eq!(id[0], 0x3f);
        assert_eq!(id[15], 0xab);
        assert!(super::parse_boot_id(b"nope").is_none());
        assert_ne!(super::boot_id(), [0; 16]);
    }
}
