//! Who is asking and what they may see.
//!
//! Over the Unix socket the kernel tells who connected (`SO_PEERCRED`:
//! uid and gid; `SO_PEERGROUPS`: the supplementary groups), as they were
//! when the connection was made: root and members of the configured group
//! (`netwho` by default) see everything; anyone else sees only the
//! traffic of processes running as their own uid, and no metrics. Over
//! TCP a request must carry the token (`Authorization: Bearer TOKEN`;
//! the web page sends it too); with it, it sees everything.

use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use tokio::net::UnixStream;

/// The connection a request came on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A Unix socket peer, as the kernel saw it at connect time.
    Unix {
        /// Its effective uid.
        uid: u32,
        /// Its effective gid.
        gid: u32,
        /// Its supplementary groups.
        groups: Vec<u32>,
    },
    /// A Unix socket peer whose credentials could not be read.
    UnixUnknown,
    /// A TCP client (it proves itself with the token).
    Tcp(SocketAddr),
}

/// What a request may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Everything (root, the API group, a token).
    All,
    /// Only flows of processes with this effective uid.
    Uid(u32),
}

impl Access {
    /// `all` or `own`, as documents say it.
    pub fn name(self) -> &'static str {
        match self {
            Access::All => "all",
            Access::Uid(_) => "own",
        }
    }

    /// A filter expression that narrows what the caller may see, if any.
    pub fn filter_expr(self) -> Option<String> {
        match self {
            Access::All => None,
            Access::Uid(u) => Some(format!("user.uid = {u}")),
        }
    }

    /// Whether flows of processes running as `uid` may be seen.
    pub fn sees_uid(self, uid: u32) -> bool {
        match self {
            Access::All => true,
            Access::Uid(u) => u == uid,
        }
    }
}

/// The group whose members see everything (None: only root does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The group (gid).
    pub group: Option<u32>,
}

impl Policy {
    /// A Unix peer's access; None when its credentials are unknown.
    pub fn unix(&self, c: &Caller) -> Option<Access> {
        match c {
            Caller::Unix { uid, gid, groups } => {
                let member = self.group.is_some_and(|g| *gid == g || groups.contains(&g));
                Some(if *uid == 0 || member {
                    Access::All
                } else {
                    Access::Uid(*uid)
                })
            }
            _ => None,
        }
    }
}

/// `SO_PEERGROUPS` (asm-generic, as on x86-64 and arm64).
const SO_PEERGROUPS: libc::c_int = 59;

/// The supplementary groups of a Unix socket's peer at connect time.
fn peer_groups(fd: libc::c_int) -> Vec<u32> {
    let mut buf = vec![0u32; 64];
    loop {
        let mut len = (buf.len() * 4) as libc::socklen_t;
        // SAFETY: buf is valid for len bytes; the kernel writes at most
        // len bytes and sets len to what it wrote (or needs, on ERANGE).
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if r == 0 {
            buf.truncate(len as usize / 4);
            return buf;
        }
        let need = len as usize / 4;
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE)
            && need > buf.len()
            && need <= 65_536
        {
            buf.resize(need, 0);
            continue;
        }
        return Vec::new();
    }
}

/// A Unix peer, as the kernel saw it when it connected.
pub fn unix_caller(s: &UnixStream) -> Caller {
    match s.peer_cred() {
        Ok(c) => Caller::Unix {
            uid: c.uid(),
            gid: c.gid(),
            groups: peer_groups(s.as_raw_fd()),
        },
        Err(e) => {
            log::warn!("api: cannot read a Unix peer's credentials: {e}");
            Caller::UnixUnknown
        }
    }
}

/// Whether `given` is the token, compared in time independent of where
/// they differ.
pub fn token_matches(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries: `Authorization: Bearer T`. (Never a
/// cookie: browsers send a host's cookies to every port of it, so any
/// local user's web server would receive it.)
pub fn request_token(headers: &axum::http::HeaderMap) -> Option<String> {
    use axum::http::header::AUTHORIZATION;
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// A new random token (32 bytes from the kernel, hex).
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_the_group_and_root_see_all_others_their_own() {
        let p = Policy { group: Some(990) };
        let peer = |uid, gid, groups: &[u32]| Caller::Unix {
            uid,
            gid,
            groups: groups.to_vec(),
        };
        assert_eq!(p.unix(&peer(0, 0, &[])), Some(Access::All));
        assert_eq!(p.unix(&peer(1000, 990, &[])), Some(Access::All));
        assert_eq!(p.unix(&peer(1000, 100, &[5, 990])), Some(Access::All));
        assert_eq!(p.unix(&peer(1000, 100, &[5])), Some(Access::Uid(1000)));
        assert_eq!(p.unix(&Caller::UnixUnknown), None);
        let none = Policy { group: None };
        assert_eq!(none.unix(&peer(1000, 990, &[990])), Some(Access::Uid(1000)));
        assert_eq!(
            Access::Uid(7).filter_expr().as_deref(),
            Some("user.uid = 7")
        );
    }

    #[test]
    fn tokens_compare_whole_and_come_from_header_or_cookie() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert!(!token_matches("", ""));
        let mut h = axum::http::HeaderMap::new();
        h.insert("cookie", "a=b; netwho_token=t1".parse().unwrap());
        assert_eq!(request_token(&h), None, "a cookie is never a credential");
        h.insert("authorization", "Bearer t2".parse().unwrap());
        assert_eq!(request_token(&h).as_deref(), Some("t2"));
        let t = new_token().unwrap();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token().unwrap());
    }

    #[test]
    fn a_unix_peer_is_named_by_the_kernel() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mine = peer_groups(a.as_raw_fd());
        // SAFETY: getgroups with size 0 only returns the count.
        let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        assert_eq!(mine.len(), usize::try_from(n).unwrap());
    }
}
