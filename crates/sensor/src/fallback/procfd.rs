//! Which processes hold which sockets, and which network namespaces exist,
//! from `/proc`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

/// `socket:[12345]` → 12345.
pub fn parse_socket_link(target: &[u8]) -> Option<u32> {
    let inner = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// `net:[4026531840]` → 4026531840.
pub fn parse_netns_link(target: &[u8]) -> Option<u32> {
    let inner = target.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

fn tgids(proc: &Path) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut v: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

fn readlink(p: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::read_link(p)
        .ok()
        .map(|t| t.as_os_str().as_bytes().to_vec())
}

/// The inodes of the sockets process `tgid` holds (None if its
/// descriptors cannot be listed: it vanished, or access was denied).
fn socket_inodes(proc: &Path, tgid: u32) -> Option<Vec<u32>> {
    let fds = std::fs::read_dir(proc.join(tgid.to_string()).join("fd")).ok()?;
    Some(
        fds.flatten()
            .filter_map(|fd| readlink(&fd.path()).as_deref().and_then(parse_socket_link))
            .collect(),
    )
}

/// Adds `holder` to each of `inodes`' holders (once per process).
fn add_holder<H: Copy + PartialEq>(
    holders: &mut HashMap<u32, Vec<H>>,
    inodes: Vec<u32>,
    holder: H,
) {
    for inode in inodes {
        let v = holders.entry(inode).or_default();
        if v.last() != Some(&holder) {
            v.push(holder);
        }
    }
}

/// Socket inode → the processes (tgids) holding a descriptor to it.
/// Processes that vanish or deny access during the scan are skipped.
pub fn socket_holders(proc: &Path) -> HashMap<u32, Vec<u32>> {
    let mut holders = HashMap::new();
    for tgid in tgids(proc) {
        if let Some(inodes) = socket_inodes(proc, tgid) {
            add_holder(&mut holders, inodes, tgid);
        }
    }
    holders
}

/// Socket inode → the processes holding it, each with its start time
/// (USER_HZ ticks) read before and after its descriptors were listed: a pid
/// reused meanwhile is left out, never mistaken for its predecessor.
pub fn socket_holders_keyed(proc: &Path) -> HashMap<u32, Vec<(u32, u64)>> {
    let procfs = netwho_enrich::procfs::Procfs::at(proc);
    let start = |tgid: u32| procfs.stat(tgid).ok().map(|st| st.start_ticks);
    let mut holders = HashMap::new();
    for tgid in tgids(proc) {
        let Some(before) = start(tgid) else {
            continue;
        };
        let Some(inodes) = socket_inodes(proc, tgid) else {
            continue;
        };
        if !inodes.is_empty() && start(tgid) == Some(before) {
            add_holder(&mut holders, inodes, (tgid, before));
        }
    }
    holders
}

/// The network namespace of a `/proc` entry (`self` or a pid).
pub fn netns_of(who: &str) -> io::Result<u32> {
    let link = std::fs::read_link(format!("/proc/{who}/ns/net"))?;
    use std::os::unix::ffi::OsStrExt;
    parse_netns_link(link.as_os_str().as_bytes())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected ns/net link"))
}

/// Every network namespace some process is in, with the processes in it
/// (any of them can be used to enter it; short-lived ones may be gone).
pub fn namespaces(proc: &Path) -> BTreeMap<u32, Vec<u32>> {
    let mut out: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for tgid in tgids(proc) {
        let link = proc.join(tgid.to_string()).join("ns").join("net");
        if let Some(ns) = readlink(&link).as_deref().and_then(parse_netns_link) {
            out.entry(ns).or_default().push(tgid);
        }
    }
    out
}

/// Where named network namespaces are kept (`ip netns`, Docker): they
/// exist before any process is in them.
pub const NAMED_NETNS_DIRS: [&str; 2] = ["/run/netns", "/run/docker/netns"];

/// At most this many named namespaces are read from each directory.
const NAMED_MAX: usize = 4096;

/// Named network namespaces: inode → the file to enter it by. Bounded.
pub fn named_namespaces(dirs: &[&str]) -> BTreeMap<u32, std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten().take(NAMED_MAX) {
            let path = e.path();
            // (an nsfs file: its inode is the namespace's)
            if let Ok(m) = std::fs::metadata(&path)
                && m.dev() != 0
                && let Ok(ino) = u32::try_from(m.ino())
                && path.is_file()
            {
                out.entry(ino).or_insert(path);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(b"pipe:[12345]"), None);
        assert_eq!(parse_socket_link(b"socket:[x]"), None);
        assert_eq!(parse_netns_link(b"net:[4026531840]"), Some(4026531840));
    }

    #[test]
    fn this_process_holds_its_own_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        use std::os::unix::ffi::OsStrExt;
        let inode = parse_socket_link(link.as_os_str().as_bytes()).unwrap();
        let holders = socket_holders(Path::new("/proc"));
        assert!(holders[&inode].contains(&std::process::id()));
        let keyed = socket_holders_keyed(Path::new("/proc"));
        let me = std::process::id();
        let ticks = netwho_enrich::procfs::parse_stat(&std::fs::read("/proc/self/stat").unwrap())
            .unwrap()
            .start_ticks;
        assert!(keyed[&inode].contains(&(me, ticks)));
        let ns = netns_of("self").unwrap();
        assert!(namespaces(Path::new("/proc")).contains_key(&ns));
    }
}
