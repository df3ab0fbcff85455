//! What one caller may hold at once, so that no local user can take the
//! API from everyone else (and no request can hold the daemon).
//!
//! Anyone on the host may connect to the API's socket. Each caller is
//! counted by who the kernel says it is ([`Who`]: its uid over the Unix
//! socket, its address over TCP): connections, running reports and open
//! streams each have a limit per caller and one for all callers of its
//! kind together; root (uid 0) has a pool of its own, so that however
//! much other users hold, root is still served. What is refused is
//! answered at once (a connection is closed; a request gets 429 or 503
//! with a sentence) and counted in `/api/v1/status` and `/metrics`.

use crate::access::Caller;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The API's limits (`[api]` in the daemon's configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections of one uid (or one TCP client address).
    pub conns_per_caller: usize,
    /// Connections of all non-root local users together, and of all TCP
    /// clients together; root has as many of its own.
    pub conns_total: usize,
    /// A connection that sends no complete request header in this long
    /// (an idle keep-alive connection too) is closed.
    pub header_timeout: Duration,
    /// Most bytes of a request's line and headers.
    pub max_header_bytes: usize,
    /// Reports one caller may have running (or waiting) at once.
    pub reports_per_caller: usize,
    /// Threads that run reports; non-root callers together may use all
    /// but one, which stays free for root.
    pub report_workers: usize,
    /// A report that takes longer is stopped and the client told so.
    pub report_timeout: Duration,
    /// Event streams and live recordings one caller may follow at once.
    pub streams_per_caller: usize,
    /// Streams of all non-root callers together.
    pub streams_total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            conns_per_caller: 32,
            conns_total: 256,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            reports_per_caller: 1,
            report_workers: 4,
            report_timeout: Duration::from_secs(60),
            streams_per_caller: 4,
            streams_total: 64,
        }
    }
}

/// Who a limit counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    /// uid 0 over the Unix socket: a pool of its own.
    Root,
    /// Another local user.
    Uid(u32),
    /// A TCP client (by address; it proves itself with the token later).
    Tcp(IpAddr),
    /// A Unix peer whose credentials could not be read.
    Unknown,
}

impl Who {
    /// The caller a connection comes from.
    pub fn of(c: &Caller) -> Who {
        match c {
            Caller::Unix { uid: 0, .. } => Who::Root,
            Caller::Unix { uid, .. } => Who::Uid(*uid),
            Caller::Tcp(a) => Who::Tcp(a.ip()),
            Caller::UnixUnknown => Who::Unknown,
        }
    }

    /// The pool it shares with callers of its kind.
    fn pool(&self) -> usize {
        match self {
            Who::Root => 0,
            Who::Uid(_) | Who::Unknown => 1,
            Who::Tcp(_) => 2,
        }
    }
}

/// One kind of thing callers hold (connections, reports, streams), with a
/// limit per caller and per pool.
#[derive(Debug)]
pub struct Quota {
    what: &'static str,
    per_caller: usize,
    /// Limits of the pools: root, local users, TCP clients.
    pools: [usize; 3],
    held: Mutex<(HashMap<Who, usize>, [usize; 3])>,
    /// Refused so far.
    pub refused: AtomicU64,
}

/// Why a caller may not hold one more.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The caller holds its share.
    Caller {
        /// What it holds (connections, reports, streams).
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// Callers of its kind hold their pool.
    Pool {
        /// What it holds (connections, reports, streams).
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Caller { what, limit } => write!(
                f,
                "you already have {limit} {what} open at the daemon, the most one user may: wait for one to finish"
            ),
            Refused::Pool { what, limit } => write!(
                f,
                "the daemon is serving {limit} {what} for other users, the most it serves at once: try again shortly"
            ),
        }
    }
}

/// One thing held; given back when dropped.
#[derive(Debug)]
pub struct Held {
    quota: Arc<Quota>,
    who: Who,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut h = self.quota.lock();
        let (map, pools) = &mut *h;
        if let Some(n) = map.get_mut(&self.who) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.who);
            }
        }
        let p = self.who.pool();
        pools[p] = pools[p].saturating_sub(1);
    }
}

impl Quota {
    /// `per_caller` each (root: unlimited within its pool), `pool` for
    /// each of local users and TCP clients, `root` for root.
    pub fn new(what: &'static str, per_caller: usize, pool: usize, root: usize) -> Arc<Quota> {
        Arc::new(Quota {
            what,
            per_caller,
            pools: [root, pool, pool],
            held: Mutex::new((HashMap::new(), [0; 3])),
            refused: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<Who, usize>, [usize; 3])> {
        // (plain counters: a poisoned lock still holds valid ones)
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One more for `who`, if its share and its pool allow.
    pub fn take(self: &Arc<Self>, who: &Who) -> Result<Held, Refused> {
        let mut h = self.lock();
        let (map, pools) = &mut *h;
        let p = who.pool();
        let mine = map.get(who).copied().unwrap_or(0);
        let refused = if *who != Who::Root && mine >= self.per_caller {
            Some(Refused::Caller {
                what: self.what,
                limit: self.per_caller,
            })
        } else if pools[p] >= self.pools[p] {
            Some(Refused::Pool {
                what: self.what,
                limit: self.pools[p],
            })
        } else {
            None
        };
        if let Some(r) = refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(r);
        }
        *map.entry(who.clone()).or_insert(0) += 1;
        pools[p] += 1;
        Ok(Held {
            quota: Arc::clone(self),
            who: who.clone(),
        })
    }

    /// Held now, by everyone.
    pub fn held(&self) -> usize {
        self.lock().1.iter().sum()
    }
}

/// What callers hold: connections, reports, streams.
#[derive(Debug)]
pub struct Quotas {
    /// Connections held.
    pub conns: Arc<Quota>,
    /// Reports running or queued.
    pub reports: Arc<Quota>,
    /// Event and recording streams.
    pub streams: Arc<Quota>,
}

impl Quotas {
    /// What is held now and what was refused (status, metrics).
    pub fn json(&self) -> Value {
        let q = |q: &Quota| {
            json!({
                "held": q.held(),
                "refused": q.refused.load(Ordering::Relaxed),
            })
        };
        json!({
            "connections": q(&self.conns),
            "reports": q(&self.reports),
            "streams": q(&self.streams),
        })
    }

    /// Refused so far: connections, reports, streams.
    pub fn refused(&self) -> [(&'static str, u64); 3] {
        let r = |q: &Quota| q.refused.load(Ordering::Relaxed);
        [
            ("connections", r(&self.conns)),
            ("reports", r(&self.reports)),
            ("streams", r(&self.streams)),
        ]
    }

    /// Quotas with the limits `l`.
    pub fn new(l: &Limits) -> Quotas {
        Quotas {
            conns: Quota::new(
                "connections",
                l.conns_per_caller,
                l.conns_total,
                l.conns_total,
            ),
            // all report threads but one for others; root may queue
            reports: Quota::new(
                "reports",
                l.reports_per_caller,
                l.report_workers.saturating_sub(1).max(1),
                l.report_workers + 8,
            ),
            streams: Quota::new(
                "streams",
                l.streams_per_caller,
                l.streams_total,
                l.streams_total,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_its_share_others_theirs_and_root_its_own_pool() {
        let q = Quota::new("connections", 2, 3, 2);
        let alice = Who::Uid(1000);
        let a1 = q.take(&alice).unwrap();
        let _a2 = q.take(&alice).unwrap();
        assert!(matches!(q.take(&alice), Err(Refused::Caller { .. })));
        let _b1 = q.take(&Who::Uid(1001)).unwrap();
        // the users' pool is full: a third user waits, root does not
        assert!(matches!(
            q.take(&Who::Uid(1002)),
            Err(Refused::Pool { limit: 3, .. })
        ));
        let _r1 = q.take(&Who::Root).unwrap();
        let _r2 = q.take(&Who::Root).unwrap();
        assert!(q.take(&Who::Root).is_err());
        // TCP clients have their own pool
        let _t = q.take(&Who::Tcp("127.0.0.1".parse().unwrap())).unwrap();
        assert_eq!(q.refused.load(Ordering::Relaxed), 3);
        drop(a1);
        assert!(q.take(&Who::Uid(1002)).is_ok(), "given back when dropped");
        assert_eq!(q.held(), 5);
    }
}
