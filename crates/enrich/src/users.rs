//! uid → user name and gid → group name, through the C library so that
//! NSS sources (LDAP, sssd, systemd-userdb) answer too. Cached, bounded;
//! a name that cannot be found stays empty and is counted.

use std::collections::HashMap;
use std::ffi::CStr;

const MAX_CACHED: usize = 65_536;

#[derive(Debug, Default)]
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

fn lookup_user(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes passed.
        let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) };
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if r != 0 || result.is_null() {
            return None;
        }
        return Some(name_from(pw.pw_name));
    }
}

fn lookup_group(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: a zeroed group is a valid out-parameter.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes passed.
        let r = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut result) };
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if r != 0 || result.is_null() {
            return None;
        }
        return Some(name_from(gr.gr_name));
    }
}

/// The uid of a user name (NSS), or a number given as a name.
pub fn uid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes passed; `c` is NUL-terminated.
        let r = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return (r == 0 && !result.is_null()).then_some(pw.pw_uid);
    }
}

/// The gid of a group name (NSS).
pub fn gid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: a zeroed group is a valid out-parameter.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes passed; `c` is NUL-terminated.
        let r = unsafe {
            libc::getgrnam_r(
                c.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return (r == 0 && !result.is_null()).then_some(gr.gr_gid);
    }
}

impl Users {
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
