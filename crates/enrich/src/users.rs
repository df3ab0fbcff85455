//! uid → user name and gid → group name, through the C library so that
//! NSS sources (LDAP, sssd, systemd-userdb) answer too. Cached, bounded;
//! a name that cannot be found stays empty and is counted.

use std::collections::HashMap;
use std::ffi::CStr;

const MAX_CACHED: usize = 65_536;

#[derive(Debug, Default)]
/// User and group names by id (NSS through libc), cached (bounded); an
/// id without a name gives an empty name (callers show the number).
pub struct Users {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
    /// Lookups that found no name.
    pub misses: u64,
}

fn name_from(ptr: *const libc::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: the C library returned a NUL-terminated string inside the
    // buffer we passed, which outlives this call.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// The NSS entries [`nss`] fills: C structs of integers and pointers, for
/// which all-zero bytes are a valid value.
trait NssEntry {}
impl NssEntry for libc::passwd {}
impl NssEntry for libc::group {}

/// One reentrant NSS lookup (`get*_r`): `call(entry, buf, result)` with a
/// buffer grown while the library says it is too small; `read` takes what
/// it needs from the entry while the buffer it points into is alive.
fn nss<T: NssEntry, R>(
    mut call: impl FnMut(&mut T, &mut [libc::c_char], &mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> R,
) -> Option<R> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: T is an NssEntry (passwd or group): all-zero is a valid
        // out-parameter.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut result: *mut T = std::ptr::null_mut();
        let r = call(&mut entry, &mut buf, &mut result);
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return (r == 0 && !result.is_null()).then(|| read(&entry));
    }
}

fn lookup_user(uid: u32) -> Option<String> {
    nss(
        // SAFETY: all pointers are valid for the sizes passed.
        |pw, buf, res| unsafe { libc::getpwuid_r(uid, pw, buf.as_mut_ptr(), buf.len(), res) },
        |pw: &libc::passwd| name_from(pw.pw_name),
    )
}

fn lookup_group(gid: u32) -> Option<String> {
    nss(
        // SAFETY: all pointers are valid for the sizes passed.
        |gr, buf, res| unsafe { libc::getgrgid_r(gid, gr, buf.as_mut_ptr(), buf.len(), res) },
        |gr: &libc::group| name_from(gr.gr_name),
    )
}

/// The uid of a user name (NSS).
pub fn uid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    nss(
        // SAFETY: all pointers are valid for the sizes passed; `c` is NUL-terminated.
        |pw, buf, res| unsafe {
            libc::getpwnam_r(c.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), res)
        },
        |pw: &libc::passwd| pw.pw_uid,
    )
}

/// The uid and primary gid of a user name (NSS).
pub fn ids_of(name: &str) -> Option<(u32, u32)> {
    let c = std::ffi::CString::new(name).ok()?;
    nss(
        // SAFETY: all pointers are valid for the sizes passed; `c` is NUL-terminated.
        |pw, buf, res| unsafe {
            libc::getpwnam_r(c.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), res)
        },
        |pw: &libc::passwd| (pw.pw_uid, pw.pw_gid),
    )
}

/// The gid of a group name (NSS).
pub fn gid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    nss(
        // SAFETY: all pointers are valid for the sizes passed; `c` is NUL-terminated.
        |gr, buf, res| unsafe {
            libc::getgrnam_r(c.as_ptr(), gr, buf.as_mut_ptr(), buf.len(), res)
        },
        |gr: &libc::group| gr.gr_gid,
    )
}

impl Users {
    /// The user's name (empty if it has none).
    pub fn user(&mut self, uid: u32) -> &str {
        if !self.users.contains_key(&uid) {
            if self.users.len() >= MAX_CACHED {
                self.users.clear();
            }
            let name = lookup_user(uid).unwrap_or_else(|| {
                self.misses += 1;
                String::new()
            });
            self.users.insert(uid, name);
        }
        self.users.get(&uid).map_or("", String::as_str)
    }

    /// The group's name (empty if it has none).
    pub fn group(&mut self, gid: u32) -> &str {
        if !self.groups.contains_key(&gid) {
            if self.groups.len() >= MAX_CACHED {
                self.groups.clear();
            }
            let name = lookup_group(gid).unwrap_or_else(|| {
                self.misses += 1;
                String::new()
            });
            self.groups.insert(gid, name);
        }
        self.groups.get(&gid).map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_nobody() {
        let mut u = Users::default();
        assert_eq!(u.user(0), "root");
        assert_eq!(u.group(0), "root");
        assert_eq!(u.user(4_000_000_000), "");
        assert_eq!(u.misses, 1);
        assert_eq!(u.user(4_000_000_000), "", "cached, not looked up again");
        assert_eq!(u.misses, 1);
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(uid_of("no-such-user-netwho"), None);
    }
}
