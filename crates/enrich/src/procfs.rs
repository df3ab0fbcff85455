//! Processes from `/proc`: parsers on bytes, and readers that check the
//! process is still the one we mean (same start time) before trusting what
//! they read.

use netwho_model::{FileId, ProcInfo, ProcKey, ProcSource, Usage};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
/// What was wrong with a `/proc` file's text.
pub enum ParseError {
    #[error("/proc/PID/stat: no ')' closing the command name")]
    /// No `)` closes the command name.
    NoComm,
    #[error("/proc/PID/stat: field {field} missing or not a number")]
    /// A field netwho needs is missing or not a number.
    Field {
        /// Its number (1-based, as proc(5) counts).
        field: usize,
    },
}

#[derive(Debug, Error)]
/// Why a process could not be read from `/proc`.
pub enum ProcError {
    #[error("process {tgid} is gone")]
    /// The process exited.
    Gone {
        /// The process.
        tgid: u32,
    },
    #[error("pid {tgid} now belongs to another process")]
    /// The pid was reused by another process (its start time differs).
    Reused {
        /// The pid.
        tgid: u32,
    },
    #[error("reading {path}: {source}")]
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    /// A file did not parse.
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: ParseError,
    },
}

/// The fields of `/proc/PID/stat` netwho uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The process id (tgid).
    pub pid: u32,
    /// The command name (up to 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// The state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// The parent's pid.
    pub ppid: u32,
    /// Start time in clock ticks since boot (field 22).
    pub start_ticks: u64,
    /// Major page faults (field 12).
    pub majflt: u64,
    /// User and system CPU time in clock ticks, all threads (14, 15).
    pub utime: u64,
    /// See `utime`.
    pub stime: u64,
    /// Block I/O delay in clock ticks (field 42; 0 without delay accounting).
    pub blkio_ticks: u64,
}

/// A file's identity (device, inode, mtime) from its metadata.
pub fn file_id(m: &std::fs::Metadata) -> FileId {
    FileId {
        dev: m.dev(),
        ino: m.ino(),
        mtime_ns: m
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.mtime_nsec()),
    }
}

/// USER_HZ: the unit of /proc/PID/stat times (fixed by the ABI).
const TICK_NS: u64 = 10_000_000;

/// Parse `/proc/PID/stat`. The command name is in parentheses and may hold
/// spaces and parentheses itself, so the fields after it are found from the
/// last `)`.
pub fn parse_stat(b: &[u8]) -> Result<Stat, ParseError> {
    let open = b
        .iter()
        .position(|c| *c == b'(')
        .ok_or(ParseError::NoComm)?;
    let close = b
        .iter()
        .rposition(|c| *c == b')')
        .ok_or(ParseError::NoComm)?;
    if close < open {
        return Err(ParseError::NoComm);
    }
    let pid = std::str::from_utf8(&b[..open])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(ParseError::Field { field: 1 })?;
    let comm = String::from_utf8_lossy(&b[open + 1..close]).into_owned();
    let rest = String::from_utf8_lossy(&b[close + 1..]);
    // rest starts at field 3 (state)
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| -> Result<&str, ParseError> {
        fields
            .get(n - 3)
            .copied()
            .ok_or(ParseError::Field { field: n })
    };
    let num = |n: usize| -> Result<u64, ParseError> {
        field(n)?
            .parse()
            .map_err(|_| ParseError::Field { field: n })
    };
    Ok(Stat {
        pid,
        comm,
        state: field(3)?.chars().next().unwrap_or('?'),
        ppid: u32::try_from(num(4)?).map_err(|_| ParseError::Field { field: 4 })?,
        start_ticks: num(22)?,
        majflt: num(12)?,
        utime: num(14)?,
        stime: num(15)?,
        // older kernels end earlier
        blkio_ticks: num(42).unwrap_or(0),
    })
}

/// `VmRSS` and `VmHWM` (current and peak resident size) from
/// `/proc/PID/status`, in bytes. Kernel threads have neither.
pub fn parse_status_memory(b: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(b).ok()?;
    let kb = |prefix: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(prefix))?;
        line[prefix.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((kb("VmRSS:")? * 1024, kb("VmHWM:")? * 1024))
}

/// `/proc/PID/loginuid` or `sessionid`: a number, or unset (u32::MAX).
pub fn parse_audit_id(b: &[u8]) -> Option<u32> {
    let v: u32 = std::str::from_utf8(b).ok()?.trim().parse().ok()?;
    (v != u32::MAX).then_some(v)
}

/// Resource figures of a process from its stat and status.
pub fn usage_of(st: &Stat, status: &[u8], delayacct: bool) -> Usage {
    let (rss, peak) = parse_status_memory(status).unwrap_or((0, 0));
    Usage {
        cpu_ns: st.utime.saturating_add(st.stime).saturating_mul(TICK_NS),
        rss_bytes: rss,
        rss_peak_bytes: peak,
        major_faults: st.majflt,
        iowait_ns: delayacct.then(|| st.blkio_ticks.saturating_mul(TICK_NS)),
    }
}

/// Effective uid and gid from `/proc/PID/status`.
pub fn parse_status_ids(b: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(b).ok()?;
    let second = |prefix: &str| -> Option<u32> {
        let line = text.lines().find(|l| l.starts_with(prefix))?;
        line[prefix.len()..].split_whitespace().nth(1)?.parse().ok()
    };
    Some((second("Uid:")?, second("Gid:")?))
}

/// `/proc/PID/cmdline`: NUL-separated arguments.
pub fn parse_cmdline(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|c| *c == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The command line netwho keeps by default, in bytes (`--max-cmdline`).
pub const CMDLINE_CAP: usize = 4096;

/// A command line read boundedly: its first `cap` bytes as arguments and,
/// when it was longer, a last element that says so and keeps its full
/// length and the SHA-256 of all of it (NUL-separated, as the kernel
/// holds it), so that a process with a megabyte of arguments costs every
/// log line, history row and export record a bounded amount while the
/// whole can still be matched against what is seen elsewhere.
pub fn capped_cmdline(
    head: &[u8],
    total: u64,
    sha256: Option<[u8; 32]>,
    cap: usize,
) -> Vec<String> {
    let head = head.get(..cap.min(head.len())).unwrap_or(head);
    let mut args = parse_cmdline(head);
    if let Some(sha) = sha256.filter(|_| total > cap as u64) {
        let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
        args.push(format!(
            "[netwho: command line cut at {cap} of {total} bytes, sha256 {hex}]"
        ));
    }
    args
}

/// The cgroup v2 path from `/proc/PID/cgroup` (the `0::` line).
pub fn parse_cgroup_v2(b: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(b).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// Reads processes under a `/proc` root (a fixture directory in tests).
#[derive(Clone, Debug)]
pub struct Procfs {
    root: PathBuf,
    /// Command lines are kept up to this many bytes.
    cmdline_cap: usize,
    /// Command lines cut to the cap (shared by clones).
    capped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Procfs {
    fn default() -> Self {
        Procfs::at("/proc")
    }
}

impl Procfs {
    /// `/proc` mounted at `root` (tests pass a directory of fixtures).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Procfs {
            root: root.into(),
            cmdline_cap: CMDLINE_CAP,
            capped: std::sync::Arc::default(),
        }
    }

    /// Keep command lines up to `cap` bytes (see [`capped_cmdline`]).
    #[must_use]
    pub fn with_cmdline_cap(mut self, cap: usize) -> Self {
        self.cmdline_cap = cap;
        self
    }

    /// Command lines cut to the cap so far.
    pub fn capped(&self) -> u64 {
        self.capped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `/proc/PID/cmdline`, read in pieces: the first `cmdline_cap` bytes
    /// kept, the rest only counted and hashed (never held in memory).
    fn read_cmdline(&self, tgid: u32) -> Result<Vec<String>, ProcError> {
        use sha2::Digest as _;
        use std::io::Read as _;
        let path = self.path(tgid, "cmdline");
        let err = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ProcError::Gone { tgid }
            } else {
                ProcError::Read {
                    path: path.clone(),
                    source,
                }
            }
        };
        let mut f = std::fs::File::open(&path).map_err(err)?;
        let cap = self.cmdline_cap;
        let mut head = Vec::with_capacity(cap.min(4096) + 1);
        let mut sha = sha2::Sha256::new();
        let mut total: u64 = 0;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(err)?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or(&[]);
            if head.len() <= cap {
                let room = cap + 1 - head.len();
                head.extend_from_slice(chunk.get(..room.min(n)).unwrap_or(chunk));
            }
            sha.update(chunk);
            total += n as u64;
        }
        if total > cap as u64 {
            self.capped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(capped_cmdline(
                &head,
                total,
                Some(sha.finalize().into()),
                cap,
            ));
        }
        Ok(parse_cmdline(&head))
    }

    fn path(&self, tgid: u32, file: &str) -> PathBuf {
        self.root.join(tgid.to_string()).join(file)
    }

    fn read(&self, tgid: u32, file: &str) -> Result<Vec<u8>, ProcError> {
        let path = self.path(tgid, file);
        std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ProcError::Gone { tgid }
            } else {
                ProcError::Read { path, source }
            }
        })
    }

    /// `/proc/PID/stat` of process `tgid`.
    pub fn stat(&self, tgid: u32) -> Result<Stat, ProcError> {
        let b = self.read(tgid, "stat")?;
        parse_stat(&b).map_err(|source| ProcError::Parse {
            path: self.path(tgid, "stat"),
            source,
        })
    }

    /// Fail unless `key` still names the process at its pid.
    fn check(&self, key: ProcKey) -> Result<Stat, ProcError> {
        let st = self.stat(key.tgid)?;
        if st.start_ticks != key.start_ticks {
            return Err(ProcError::Reused { tgid: key.tgid });
        }
        Ok(st)
    }

    /// The executable of `key`, if it still runs.
    pub fn exe(&self, key: ProcKey) -> Result<String, ProcError> {
        self.check(key)?;
        let path = self.path(key.tgid, "exe");
        let target =
            std::fs::read_link(&path).map_err(|source| ProcError::Read { path, source })?;
        // re-check: the pid could have been reused between the two reads
        self.check(key)?;
        Ok(target.to_string_lossy().into_owned())
    }

    /// The command name a process has now (it changes at every exec).
    pub fn comm(&self, tgid: u32) -> Result<String, ProcError> {
        let b = self.read(tgid, "comm")?;
        Ok(String::from_utf8_lossy(&b)
            .trim_end_matches('\n')
            .to_string())
    }

    /// Resource figures of `key`, if it still runs.
    pub fn usage(&self, key: ProcKey, delayacct: bool) -> Result<Usage, ProcError> {
        let st = self.check(key)?;
        let status = self.read(key.tgid, "status")?;
        self.check(key)?;
        Ok(usage_of(&st, &status, delayacct))
    }

    /// The identity of the file `key` executes (`/proc/PID/exe` follows
    /// to the file even if it was deleted or replaced).
    pub fn exe_file(&self, tgid: u32) -> Option<FileId> {
        std::fs::metadata(self.path(tgid, "exe"))
            .ok()
            .map(|m| file_id(&m))
    }

    /// The identity of the file at `path` if it is absolute and its inode
    /// is `ino` (what the kernel saw executed).
    pub fn file_if_inode(&self, path: &str, ino: u64) -> Option<FileId> {
        if ino == 0 || !path.starts_with('/') {
            return None;
        }
        let m = std::fs::metadata(path).ok()?;
        (m.ino() == ino).then(|| file_id(&m))
    }

    /// Audit login uid and session of a process, when set.
    pub fn audit_ids(&self, tgid: u32) -> (Option<u32>, Option<u32>) {
        let id = |f| self.read(tgid, f).ok().and_then(|b| parse_audit_id(&b));
        (id("loginuid"), id("sessionid"))
    }

    /// The path of a process's file (`/proc/PID/exe`...).
    pub fn file(&self, tgid: u32, file: &str) -> PathBuf {
        self.path(tgid, file)
    }

    /// The full command line of `key`, if it still runs.
    pub fn cmdline(&self, key: ProcKey) -> Result<Vec<String>, ProcError> {
        self.check(key)?;
        let args = self.read_cmdline(key.tgid)?;
        self.check(key)?;
        Ok(args)
    }

    /// Everything about one process. `cgroup_id` resolves a cgroup path to
    /// its id (the kernel's id is the directory's inode).
    pub fn info(
        &self,
        tgid: u32,
        cgroup_id: &dyn Fn(&str) -> Option<u64>,
    ) -> Result<ProcInfo, ProcError> {
        let st = self.stat(tgid)?;
        let key = ProcKey::from_start_ticks(tgid, st.start_ticks);
        let status = self.read(tgid, "status")?;
        let (uid, gid) = parse_status_ids(&status).unwrap_or((u32::MAX, u32::MAX));
        // kernel threads have no exe and an empty cmdline: not errors
        let exe = std::fs::read_link(self.path(tgid, "exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cmdline = self.read_cmdline(tgid).unwrap_or_default();
        let cgroup = self
            .read(tgid, "cgroup")
            .ok()
            .and_then(|b| parse_cgroup_v2(&b))
            .and_then(|p| cgroup_id(&p))
            .unwrap_or(0);
        let parent = self
            .stat(st.ppid)
            .ok()
            .map(|p| ProcKey::from_start_ticks(st.ppid, p.start_ticks));
        let (login_uid, session) = self.audit_ids(tgid);
        let exe_file = self.exe_file(tgid);
        // what we read must still belong to the process we started with
        self.check(key)?;
        Ok(ProcInfo {
            key,
            ppid: st.ppid,
            parent,
            parent_comm: String::new(),
            comm: st.comm,
            exe,
            cmdline,
            uid,
            gid,
            cgroup_id: cgroup,
            source: ProcSource::Procfs,
            parents: None,
            login_uid,
            session,
            exe_file,
        })
    }

    /// The pids of every process now running, in order.
    pub fn tgids(&self) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut tgids: Vec<u32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        tgids.sort_unstable();
        tgids
    }

    /// Every process now running (those that vanish mid-scan are skipped),
    /// parents first so that parent names resolve.
    pub fn all(&self, cgroup_id: &dyn Fn(&str) -> Option<u64>) -> Vec<ProcInfo> {
        let mut procs: Vec<ProcInfo> = self
            .tgids()
            .into_iter()
            .filter_map(|t| self.info(t, cgroup_id).ok())
            .collect();
        procs.sort_by_key(|p| p.key.start_ticks);
        procs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &[u8] = b"4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
        5 3 0 0 20 0 1 0 123456 10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";

    /// A megabyte of arguments keeps the cap's worth and a last element
    /// with the full length and hash; what fits stays as it is.
    #[test]
    fn long_command_lines_are_capped_with_length_and_hash() {
        let dir = std::env::temp_dir().join(format!("netwho-cmdcap-{}", std::process::id()));
        let p = dir.join("77");
        std::fs::create_dir_all(&p).unwrap();
        let mut argv = b"python3\0-c\0".to_vec();
        argv.extend(std::iter::repeat_n(b'x', 1_900_000));
        argv.push(0);
        std::fs::write(p.join("cmdline"), &argv).unwrap();
        let fs = Procfs::at(&dir);
        let args = fs.read_cmdline(77).unwrap();
        assert_eq!(&args[..2], ["python3", "-c"]);
        let kept: usize = args[..args.len() - 1].iter().map(|a| a.len() + 1).sum();
        assert!(kept <= CMDLINE_CAP + 1, "{kept}");
        use sha2::Digest as _;
        let hex: String = sha2::Sha256::digest(&argv)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            args.last().unwrap(),
            &format!(
                "[netwho: command line cut at 4096 of {} bytes, sha256 {hex}]",
                argv.len()
            )
        );
        assert_eq!(fs.capped(), 1);
        std::fs::write(p.join("cmdline"), b"curl\0-s\0").unwrap();
        assert_eq!(fs.read_cmdline(77).unwrap(), ["curl", "-s"]);
        assert_eq!(fs.capped(), 1);
        let small = Procfs::at(&dir).with_cmdline_cap(3);
        assert_eq!(small.read_cmdline(77).unwrap()[0], "cur");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stat_with_a_nasty_comm() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "we (ird) name");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_ticks, 123_456);
        assert_eq!((s.majflt, s.utime, s.stime, s.blkio_ticks), (0, 5, 3, 0));
    }

    #[test]
    fn usage_from_stat_and_status() {
        let st = parse_stat(STAT).unwrap();
        let status = b"Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        let u = usage_of(&st, status, true);
        assert_eq!(u.cpu_ns, 80_000_000);
        assert_eq!((u.rss_bytes, u.rss_peak_bytes), (1 << 20, 2 << 20));
        assert_eq!(u.iowait_ns, Some(0));
        assert_eq!(usage_of(&st, b"", false).iowait_ns, None);
        assert_eq!(parse_audit_id(b"1000\n"), Some(1000));
        assert_eq!(parse_audit_id(b"4294967295"), None);
        assert_eq!(parse_audit_id(b"x"), None);
    }

    #[test]
    fn broken_stat_is_an_error_not_a_panic() {
        assert_eq!(parse_stat(b"12 no parens"), Err(ParseError::NoComm));
        assert_eq!(
            parse_stat(b"12 (x) S 1"),
            Err(ParseError::Field { field: 22 })
        );
        assert_eq!(
            parse_stat(b"x (y) S 1 2 3"),
            Err(ParseError::Field { field: 1 })
        );
        assert_eq!(parse_stat(b") ("), Err(ParseError::NoComm));
    }

    #[test]
    fn status_cmdline_cgroup() {
        let status = b"Name:\tcurl\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t101\t101\t101\n";
        assert_eq!(parse_status_ids(status), Some((1001, 101)));
        assert_eq!(
            parse_cmdline(b"curl\0-s\0http://x\0"),
            ["curl", "-s", "http://x"]
        );
        assert_eq!(parse_cmdline(b""), Vec::<String>::new());
        assert_eq!(
            parse_cgroup_v2(b"1:name=systemd:/\n0::/system.slice/ssh.service\n").as_deref(),
            Some("/system.slice/ssh.service")
        );
    }

    #[test]
    fn a_fixture_tree_is_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("netwho-procfs-{}", std::process::id()));
        let p = dir.join("4242");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("stat"), STAT).unwrap();
        std::fs::write(p.join("status"), b"Uid:\t0\t5\t5\t5\nGid:\t0\t6\t6\t6\n").unwrap();
        std::fs::write(p.join("cmdline"), b"weird\0--flag\0").unwrap();
        std::fs::write(p.join("cgroup"), b"0::/system.slice/x.service\n").unwrap();
        let fs = Procfs::at(&dir);
        let info = fs
            .info(4242, &|path| {
                (path == "/system.slice/x.service").then_some(77)
            })
            .unwrap();
        assert_eq!(info.key, ProcKey::from_start_ticks(4242, 123_456));
        assert_eq!((info.uid, info.gid, info.cgroup_id), (5, 6, 77));
        assert_eq!(info.cmdline, ["weird", "--flag"]);
        assert!(info.exe.is_empty(), "no exe link in the fixture");
        let stale = ProcKey::from_start_ticks(4242, 1);
        assert!(matches!(
            fs.cmdline(stale),
            Err(ProcError::Reused { tgid: 4242 })
        ));
        assert!(matches!(
            fs.stat(999_999),
            Err(ProcError::Gone { tgid: 999_999 })
        ));
        assert_eq!(fs.all(&|_| None).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn this_process_reads_back() {
        let fs = Procfs::default();
        let me = std::process::id();
        let info = fs.info(me, &|_| None).unwrap();
        assert_eq!(info.key.tgid, me);
        assert!(!info.exe.is_empty());
        assert_eq!(fs.exe(info.key).unwrap(), info.exe);
    }
}
