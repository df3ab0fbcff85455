//! Files netwho writes are private.
//!
//! What netwho writes holds every user's command lines, executables,
//! remotes and (with `record -s`) payload: the history database and its
//! WAL and shared-memory files, recordings, logs, exported records, the
//! fleet's spool, the API token. Each is created with an explicit mode
//! ([`Access`]: 0600, or 0640 when a group's members should read it), set
//! with `fchmod` after creation so that no umask can widen it, and a file
//! that already exists with a looser mode is tightened when netwho opens
//! it, with a warning that says so. Directories netwho makes are 0750.
//! A directory that already exists is left alone unless it is netwho's
//! own ([`own_dir`]: the spool, the state directory), because narrowing
//! someone else's directory (`/var/log`, `/tmp`) would break their system.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::os::unix::fs::{PermissionsExt as _, fchown};
use std::path::Path;

/// Who may read a file netwho writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Permission bits: 0o600 or 0o640.
    pub mode: u32,
    /// The group whose members read it (with 0o640); None: left as created.
    pub group: Option<u32>,
}

impl Access {
    /// Only the owner (root) reads and writes.
    pub const OWNER: Access = Access {
        mode: 0o600,
        group: None,
    };
    /// The owner, and the members of the file's group read.
    pub const GROUP_READ: Access = Access {
        mode: 0o640,
        group: None,
    };

    /// Readable by the members of `group` (0640), or by the owner only
    /// when there is no such group.
    pub fn group(group: Option<u32>) -> Access {
        match group {
            Some(g) => Access {
                mode: 0o640,
                group: Some(g),
            },
            None => Access::OWNER,
        }
    }
}

/// Mode bits directories netwho creates get.
pub const DIR_MODE: u32 = 0o750;

/// Sets `f`'s mode and group to `a` if they differ (fchmod, fchown: the
/// umask plays no part). Returns whether anything changed. Only a regular
/// file is changed: `-o /dev/null`, a FIFO or a terminal is the system's
/// or the user's, and making `/dev/null` 0640 would break every other
/// user's programs.
pub fn apply(f: &File, a: Access) -> io::Result<bool> {
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        return Ok(false);
    }
    let mut changed = false;
    if let Some(g) = a.group
        && m.gid() != g
    {
        fchown(f, None, Some(g))?;
        changed = true;
    }
    if m.mode() & 0o7777 != a.mode {
        f.set_permissions(std::fs::Permissions::from_mode(a.mode))?;
        changed = true;
    }
    Ok(changed)
}

/// `apply`, with a warning when an existing file was looser than `a`
/// (another user may have read it until now).
pub fn tighten(f: &File, path: &Path, a: Access) -> io::Result<()> {
    let before = f.metadata()?.mode() & 0o7777;
    if apply(f, a)? && before & !a.mode != 0 {
        log::warn!(
            "{} was mode {before:04o}: now {:04o} (it holds other users' data)",
            path.display(),
            a.mode
        );
    }
    Ok(())
}

/// Opens `path` for appending (created when missing) with access `a`.
pub fn open_append(path: &Path, a: Access) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(a.mode)
        .open(path)?;
    tighten(&f, path, a)?;
    Ok(f)
}

/// Creates `path`, which must not exist (or is replaced with `replace`),
/// with access `a`.
pub fn create(path: &Path, a: Access, replace: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).mode(a.mode);
    if replace {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let f = o.open(path)?;
    apply(&f, a)?;
    Ok(f)
}

/// Tightens an existing file at `path` to `a`; nothing when it is missing.
pub fn tighten_path(path: &Path, a: Access) -> io::Result<()> {
    match File::open(path) {
        Ok(f) => tighten(&f, path, a),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `dir` and its missing parents with mode 0750 (an existing
/// directory is left as it is).
pub fn make_dirs(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    // the umask may have narrowed it further; never widen beyond 0750
    Ok(())
}

/// A directory that is netwho's own (the fleet spool, the daemon's state
/// directory): created 0750, or tightened to at most 0750 (group `group`
/// when given, so that its members can reach the files in it).
pub fn own_dir(dir: &Path, group: Option<u32>) -> io::Result<()> {
    make_dirs(dir)?;
    let m = std::fs::metadata(dir)?;
    let mode = m.mode() & 0o7777;
    let want = mode & DIR_MODE;
    if want != mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(want))?;
        log::warn!(
            "{} was mode {mode:04o}: now {want:04o} (it holds other users' data)",
            dir.display()
        );
    }
    if let Some(g) = group
        && m.gid() != g
    {
        std::os::unix::fs::chown(dir, None, Some(g))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    fn temp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("netwho-private-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn files_are_created_private_whatever_the_umask() {
        let d = temp("umask");
        make_dirs(&d.join("a/b")).unwrap();
        // SAFETY: umask only changes this process's file creation mask
        let old = unsafe { libc_umask(0) };
        let f = d.join("a/b/f");
        create(&f, Access::OWNER, false).unwrap();
        let g = d.join("a/b/g");
        open_append(&g, Access::GROUP_READ).unwrap();
        // SAFETY: as above, restoring it
        unsafe { libc_umask(old) };
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(&g), 0o640);
        assert_eq!(mode(&d.join("a")), 0o750);
        assert!(create(&f, Access::OWNER, false).is_err(), "never replaced");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn loose_files_and_own_directories_are_tightened() {
        let d = temp("loose");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let f = d.join("h.db");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        tighten_path(&f, Access::OWNER).unwrap();
        assert_eq!(mode(&f), 0o600);
        tighten_path(&d.join("missing"), Access::OWNER).unwrap();
        own_dir(&d, None).unwrap();
        assert_eq!(mode(&d), 0o750);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn what_is_not_a_regular_file_is_left_alone() {
        // `-o /dev/null`, a FIFO, a terminal: not netwho's to narrow (a
        // FIFO stands in for /dev/null, which a failing test would break)
        let d = temp("fifo");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("pipe");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path we own.
        assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o666) }, 0);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let f = open_append(&p, Access::OWNER).unwrap();
        assert!(!apply(&f, Access::OWNER).unwrap());
        tighten_path(&p, Access::OWNER).unwrap();
        assert_eq!(mode(&p), 0o666);
        let _ = std::fs::remove_dir_all(&d);
    }

    unsafe extern "C" {
        #[link_name = "umask"]
        fn libc_umask(mask: u32) -> u32;
        #[link_name = "mkfifo"]
        fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
    }
}
