//! The reduced sensor, for kernels where the kernel programs cannot run
//! (no BTF, BPF features missing, lockdown): `--sensor sock-diag`, or what
//! `--sensor auto` falls back to.
//!
//! Every `interval` it looks at every TCP and UDP socket of every network
//! namespace through sock_diag (the `tcp_info` byte counters, as `ss -ti`
//! shows them) and at `/proc/*/fd` for the processes holding them
//! ([`track`] turns the looks into flows). Between looks it listens:
//! sock_diag's destroy notices carry each ending TCP socket's final
//! counters, and the proc connector says when a process exits (its flows'
//! counters are read first, then the exit is reported). Every record says
//! `attribution: "sock_diag"`; what it cannot see is counted in the status
//! record (`kernel.missed_sockets`, `kernel.missed_bytes`,
//! `drops.notices_lost`) and listed in its degradations.

pub mod proc_cn;
pub mod track;

use crate::fallback::{in_netns_at, in_netns_of, procfd, sock_diag};
use crate::{Sensor, SensorError, SensorInfo, SensorStats, clock::boot_now};
use netwho_enrich::procfs::Procfs;
use netwho_model::{MonoNs, ProcExec, ProcKey, SensorEvent};
use proc_cn::{ProcConnector, ProcNotice};
use sock_diag::{DestroyListener, DiagSocket};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;
use track::{Owner, Tracker};

/// How the reduced sensor runs.
#[derive(Clone, Debug)]
pub struct DiagConfig {
    /// Time between two looks at every socket.
    pub interval: Duration,
    /// Sockets tracked at most (`--max-flows`).
    pub max_sockets: usize,
    /// Why the kernel programs are not used (for the degradations), if
    /// they were tried.
    pub why: Option<String>,
}

impl Default for DiagConfig {
    fn default() -> Self {
        DiagConfig {
            interval: Duration::from_millis(250),
            max_sockets: 65_536,
            why: None,
        }
    }
}

/// The hooks a status record lists for this sensor.
pub const HOOKS: [&str; 3] = ["sock_diag dump", "sock_diag destroy", "proc connector"];

/// Reads per wake-up from each notice socket (a read is one notice), so a
/// storm cannot hold the loop; what is left is read at the next wake-up.
const MAX_READS: usize = 8192;
/// At the end: read until nothing is left (bounded all the same).
const FINAL_READS: usize = 1 << 20;
/// Every this many looks, the processes it knows are checked for exits
/// whose notice was lost.
const SWEEP_EVERY: u64 = 40;

/// What the reduced sensor cannot do, each in a sentence (as its status
/// records and `netwho doctor` list them).
pub fn degradations(cfg: &DiagConfig) -> Vec<String> {
    vec![
        format!(
            "reduced mode (sock_diag){}: sockets are looked at every {} ms; a connection \
             that opens and closes between two looks is not attributed (counted in \
             drops.missed_sockets and drops.missed_bytes)",
            cfg.why
                .as_ref()
                .map(|w| format!(", the kernel programs could not run: {w}"))
                .unwrap_or_default(),
            cfg.interval.as_millis()
        ),
        "TCP bytes come from each socket's tcp_info: a socket several processes hold is \
         counted to the first that held it; no wire counters, no packet or payload capture, \
         no kernel scope"
            .into(),
        "UDP: connected sockets are listed without bytes; unconnected datagrams are not seen"
            .into(),
    ]
}

/// Whether the reduced sensor can run here: its notice sockets open (the
/// sock_diag destroy groups and the proc connector need CAP_NET_ADMIN).
pub fn probe() -> std::io::Result<()> {
    DestroyListener::open()?;
    ProcConnector::open()?;
    Ok(())
}

/// The process holding a socket, if `tgid` is still the process whose
/// descriptors were listed.
fn owner(procfs: &Procfs, tgid: u32, start_ticks: u64) -> Option<Owner> {
    let st = procfs.stat(tgid).ok()?;
    if st.start_ticks != start_ticks {
        return None;
    }
    let (uid, gid) = std::fs::read(format!("/proc/{tgid}/status"))
        .ok()
        .and_then(|b| netwho_enrich::procfs::parse_status_ids(&b))
        .unwrap_or((u32::MAX, u32::MAX));
    Some(Owner {
        proc: ProcKey::from_start_ticks(tgid, start_ticks),
        comm: st.comm,
        uid,
        gid,
    })
}

/// The reduced sensor: sock_diag, `/proc` and the proc connector.
#[derive(Debug)]
pub struct DiagSensor {
    cfg: DiagConfig,
    tracker: Tracker,
    procfs: Procfs,
    procs: Option<ProcConnector>,
    listeners: HashMap<u32, DestroyListener>,
    /// The collector's own network namespace (entered without setns).
    own: u32,
    /// Processes the model may know (running at start, or owners), by pid.
    known: HashMap<u32, ProcKey>,
    next_look: MonoNs,
    looks: u64,
    buf: Vec<u8>,
    notices_lost: u64,
    decode_errors: u64,
    degradations: Vec<String>,
}

impl DiagSensor {
    /// Open the notice sockets. Needs CAP_NET_ADMIN (the notices), and to
    /// look into other network namespaces CAP_SYS_ADMIN; reading every
    /// process's descriptors needs CAP_SYS_PTRACE.
    pub fn start(cfg: DiagConfig) -> Result<Self, SensorError> {
        let mut degradations = degradations(&cfg);
        let procs = match ProcConnector::open() {
            Ok(p) => Some(p),
            Err(e) => {
                degradations.push(format!(
                    "process exits are noticed at the next look: the proc connector could not \
                     be opened ({e})"
                ));
                None
            }
        };
        let listener = DestroyListener::open().map_err(|source| SensorError::Io {
            what: "listening for sock_diag destroy notices (needs CAP_NET_ADMIN)".into(),
            source,
        })?;
        let own = procfd::netns_of("self").map_err(|source| SensorError::Io {
            what: "reading /proc/self/ns/net".into(),
            source,
        })?;
        Ok(DiagSensor {
            tracker: Tracker::new(cfg.max_sockets),
            cfg,
            procfs: Procfs::default(),
            procs,
            listeners: [(own, listener)].into_iter().collect(),
            own,
            known: HashMap::new(),
            next_look: boot_now(),
            looks: 0,
            buf: vec![0u8; 64 * 1024],
            notices_lost: 0,
            decode_errors: 0,
            degradations,
        })
    }

    /// One look at every socket of every namespace, then at the owners
    /// that are gone.
    fn look(&mut self, startup: bool, out: &mut Vec<SensorEvent>) {
        self.look_at_sockets(startup, true, out);
        self.looks += 1;
        let gone = if self.looks.is_multiple_of(SWEEP_EVERY) {
            self.gone(|_| true)
        } else {
            // owners are checked at every look: their flows end with them
            let owners = self.tracker.owners();
            self.gone(|tgid| owners.contains(&tgid))
        };
        self.exit_all(gone, out);
        self.next_look = boot_now().add_ns(self.cfg.interval.as_nanos() as u64);
    }

    /// One look at every socket of every namespace. `ends`: sockets this
    /// look and the one before did not see have ended (a look that only
    /// settles counts comes too soon after the last one to say so: a
    /// socket's destroy notice may still be on its way).
    fn look_at_sockets(&mut self, startup: bool, ends: bool, out: &mut Vec<SensorEvent>) {
        let at = boot_now();
        let proc = Path::new("/proc");
        let namespaces = procfd::namespaces(proc);
        // named namespaces no process is in yet: listened to before their
        // first socket
        let named = procfd::named_namespaces(&procfd::NAMED_NETNS_DIRS);
        let own = self.own;
        let mut failed = HashSet::new();
        let mut dumps = Vec::with_capacity(namespaces.len());
        for (netns, pids) in &namespaces {
            let listen = !self.listeners.contains_key(netns);
            let work = || -> std::io::Result<(Vec<DiagSocket>, Option<DestroyListener>)> {
                let l = if listen {
                    Some(DestroyListener::open()?)
                } else {
                    None
                };
                Ok((sock_diag::dump()?, l))
            };
            let mut got = Err(std::io::Error::from(std::io::ErrorKind::NotFound));
            if *netns == own {
                got = work();
            } else {
                for pid in pids {
                    got = in_netns_of(*pid, work);
                    if got.is_ok() {
                        break;
                    }
                }
                if got.is_err()
                    && let Some(path) = named.get(netns)
                {
                    got = in_netns_at(path, work);
                }
            }
            let sockets = match got {
                Ok((s, l)) => {
                    if let Some(l) = l {
                        self.listeners.insert(*netns, l);
                    }
                    s
                }
                Err(e) => {
                    log::debug!("could not look at network namespace {netns}: {e}");
                    failed.insert(*netns);
                    continue;
                }
            };
            dumps.push((*netns, sockets));
        }
        // every process's descriptors are read only when a socket needs an
        // owner: a steady state of known sockets costs the dumps alone
        let needed = dumps
            .iter()
            .any(|(_, socks)| socks.iter().any(|s| self.tracker.needs_owner(s)));
        let holders = if needed {
            procfd::socket_holders_keyed(proc)
        } else {
            HashMap::new()
        };
        let mut owners: HashMap<(u32, u64), Option<Owner>> = HashMap::new();
        let first = out.len();
        if ends {
            self.tracker.begin();
        }
        for (netns, sockets) in &dumps {
            let procfs = &self.procfs;
            let mut owner_of = |inode: u32| {
                let (tgid, ticks) = *holders.get(&inode)?.first()?;
                owners
                    .entry((tgid, ticks))
                    .or_insert_with(|| owner(procfs, tgid, ticks))
                    .clone()
            };
            self.tracker
                .netns(*netns, sockets, &mut owner_of, startup, at, out);
        }
        for (netns, path) in &named {
            if namespaces.contains_key(netns) || self.listeners.contains_key(netns) {
                continue;
            }
            match in_netns_at(path, DestroyListener::open) {
                Ok(l) => {
                    self.listeners.insert(*netns, l);
                }
                Err(e) => log::debug!("could not listen in {}: {e}", path.display()),
            }
        }
        // notices that came while looking end their sockets with their final
        // counters before the look decides what ended without one
        self.hear(MAX_READS, out);
        if ends {
            self.tracker.end_look(&failed, at, out);
        }
        // namespaces nobody is in any more: their listeners go
        self.listeners
            .retain(|ns, _| namespaces.contains_key(ns) || named.contains_key(ns) || *ns == own);
        for ev in &out[first..] {
            if let SensorEvent::FlowOpen(o) = ev {
                self.known.insert(o.proc.tgid, o.proc);
            }
        }
    }

    /// The processes it knows, of those `check` picks, that are gone.
    fn gone(&self, check: impl Fn(u32) -> bool) -> Vec<u32> {
        self.known
            .iter()
            .filter(|(tgid, key)| {
                check(**tgid)
                    && self
                        .procfs
                        .stat(**tgid)
                        .map_or(true, |st| st.start_ticks != key.start_ticks)
            })
            .map(|(t, _)| *t)
            .collect()
    }

    /// Processes that exited: their flows' final counters, then their
    /// exits. A last look may have counted a FIN its socket's state did
    /// not show yet (see `track`): one more look settles that byte before
    /// the flows end with their owner.
    fn exit_all(&mut self, gone: Vec<u32>, out: &mut Vec<SensorEvent>) {
        if self.tracker.unsettled(&gone) {
            self.look_at_sockets(false, false, out);
        }
        let procs: Vec<_> = gone
            .iter()
            .filter_map(|tgid| self.known.remove(tgid))
            .collect();
        if procs.is_empty() {
            return;
        }
        let tgids: Vec<u32> = procs.iter().map(|p| p.tgid).collect();
        self.tracker.owners_exited(&tgids, out);
        let at = boot_now();
        out.extend(procs.into_iter().map(|proc| SensorEvent::Exit {
            proc,
            at,
            usage: None,
        }));
    }

    /// Destroy notices waiting on every listener (at most `reads` each).
    fn hear(&mut self, reads: usize, out: &mut Vec<SensorEvent>) {
        let mut ended = Vec::new();
        for (ns, l) in &self.listeners {
            match l.read(&mut self.buf, reads, &mut ended) {
                Ok(h) => {
                    self.notices_lost += u64::from(h.overrun);
                    self.decode_errors += h.bad;
                }
                Err(e) => log::warn!("sock_diag destroy notices of namespace {ns}: {e}"),
            }
        }
        let at = boot_now();
        for s in &ended {
            self.tracker.destroyed(s, at, out);
        }
    }

    /// Process notices: exits of processes it knows (after a look, so
    /// their flows' final counters come first), execs of owners.
    fn notices(&mut self, out: &mut Vec<SensorEvent>) {
        let Some(p) = &self.procs else {
            return;
        };
        let mut notices = Vec::new();
        match p.read(&mut self.buf, MAX_READS, &mut notices) {
            Ok(r) => self.notices_lost += u64::from(r.overrun),
            Err(e) => log::warn!("proc connector: {e}"),
        }
        let owners = self.tracker.owners();
        let mut exits = Vec::new();
        for n in notices {
            match n {
                ProcNotice::Exit { tgid } if self.known.contains_key(&tgid) => exits.push(tgid),
                ProcNotice::Exec { tgid } if owners.contains(&tgid) => {
                    if let Some(e) = self.exec(tgid) {
                        out.push(SensorEvent::Exec(e));
                    }
                }
                _ => {}
            }
        }
        if exits.iter().any(|t| owners.contains(t)) {
            self.look_at_sockets(false, true, out);
        }
        self.exit_all(exits, out);
    }

    /// An owner's new image, from /proc.
    fn exec(&self, tgid: u32) -> Option<ProcExec> {
        let info = self.procfs.info(tgid, &|_| None).ok()?;
        Some(ProcExec {
            proc: info.key,
            ppid: info.ppid,
            parent: info.parent,
            comm: info.comm,
            exe: info.exe,
            cmdline: info.cmdline,
            uid: info.uid,
            gid: info.gid,
            cgroup_id: info.cgroup_id,
            at: boot_now(),
            args_truncated: false,
            login_uid: info.login_uid,
            session: info.session,
            exe_file: info.exe_file,
            exe_ino: 0,
        })
    }

    fn wait(&self, timeout: Duration) {
        let mut fds: Vec<libc::pollfd> = self
            .listeners
            .values()
            .map(DestroyListener::fd)
            .chain(self.procs.as_ref().map(ProcConnector::fd))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: fds is valid for its length; a failure (EINTR) just
        // returns early.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    }
}

impl Sensor for DiagSensor {
    fn info(&self) -> SensorInfo {
        SensorInfo {
            attribution: "sock_diag",
            hooks: if self.procs.is_some() {
                HOOKS.to_vec()
            } else {
                HOOKS[..2].to_vec()
            },
            degradations: self.degradations.clone(),
        }
    }

    fn startup(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        for tgid in self.procfs.tgids() {
            if let Ok(st) = self.procfs.stat(tgid) {
                self.known
                    .insert(tgid, ProcKey::from_start_ticks(tgid, st.start_ticks));
            }
        }
        self.look(true, out);
        Ok(())
    }

    fn poll(&mut self, timeout: Duration, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        let until_look = Duration::from_nanos(self.next_look.since(boot_now()));
        self.wait(timeout.min(until_look));
        self.hear(MAX_READS, out);
        self.notices(out);
        if boot_now() >= self.next_look {
            self.look(false, out);
        }
        Ok(())
    }

    fn scan(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        self.hear(MAX_READS, out);
        self.notices(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        self.hear(FINAL_READS, out);
        self.notices(out);
        self.look(false, out);
        Ok(())
    }

    fn stats(&mut self) -> SensorStats {
        let t = self.tracker.stats();
        SensorStats {
            flows_map_full: t.over_limit,
            flows_tracked: t.tracked,
            missed_sockets: t.missed_sockets,
            missed_bytes: t.missed_bytes,
            notices_lost: self.notices_lost,
            decode_errors: self.decode_errors,
            ..SensorStats::default()
        }
    }
}
