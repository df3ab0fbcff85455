//! The eBPF sensor: exact attribution from kernel hooks.
//!
//! `EbpfSensor::start` checks privileges, BTF and cgroup v2, loads the
//! object from the `bpf` crate and attaches every hook (or fails naming the
//! one that did not load and the kernel's reason). `poll` drains the ring
//! buffer and runs the finalizations that are due; `scan` reads counters.

pub mod attach;
pub mod decode;
pub mod doctor;
pub mod harvest;
pub mod prereq;
pub mod scope;
pub mod sys;

use crate::clock::boot_now;
use crate::{Sensor, SensorError, SensorInfo, SensorStats, fallback};
use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use aya::{Btf, Ebpf};
use harvest::{Harvester, KernelMaps};
use netwho_bpf::abi;
use netwho_model::{MonoNs, ProcKey, Proto, SensorEvent, TcpState, nanos};
use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use attach::{MapSizes, PayloadPath};
pub use scope::KernelScope;

/// Tunables of the eBPF sensor.
#[derive(Clone, Debug)]
pub struct EbpfConfig {
    /// The kernel maps' sizes.
    pub sizes: MapSizes,
    /// How long after a socket closes (or a process exits) its counters are
    /// final: in-flight sends and receives on other CPUs land by then.
    pub grace: Duration,
    /// Datagram flows with no traffic for this long are closed.
    pub idle: Duration,
    /// What the kernel counts at all.
    pub scope: KernelScope,
    /// Payload bytes kept per (socket, remote) and direction (0: none; at
    /// most `netwho_bpf::abi::SNAPLEN_MAX`).
    pub snaplen: u32,
    /// Bytes kept of each packet of an in-scope socket, from its IP header
    /// (`netwho pcap`; 0: none; at most `netwho_bpf::abi::SNAPLEN_MAX`).
    pub packet_snaplen: u32,
    /// Which hooks count payload.
    pub payload: PayloadPath,
    /// What is read for names (`netwho_bpf::abi::NAMES_*`; 0: nothing).
    pub names: u32,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        EbpfConfig {
            sizes: MapSizes::default(),
            grace: Duration::from_millis(100),
            idle: Duration::from_secs(120),
            scope: KernelScope::default(),
            snaplen: 0,
            packet_snaplen: 0,
            payload: PayloadPath::Auto,
            names: 0,
        }
    }
}

/// The kernel's flow and wire maps, through raw map syscalls.
struct LiveMaps {
    flows: MapData,
    wire: MapData,
    /// Each uid's use of them, and what userspace freed of it.
    uid: MapData,
    uid_freed: MapData,
    lost: MapData,
    /// Entries this side deleted, per uid (the kernel's side reads them
    /// from `uid_freed` to know what each uid holds), and the uids whose
    /// count changed since it was last written.
    freed: rustc_hash::FxHashMap<u32, abi::UidFreed>,
    freed_dirty: rustc_hash::FxHashSet<u32>,
}

impl LiveMaps {
    /// Tell the kernel side what this side deleted of each uid's entries.
    fn flush_freed(&mut self) -> io::Result<()> {
        for uid in self.freed_dirty.drain() {
            if let Some(v) = self.freed.get(&uid) {
                sys::update(self.uid_freed.fd().as_fd(), &uid, v)?;
            }
        }
        Ok(())
    }

    /// Uids that went over their share, with how many flows and (socket,
    /// remote)s were refused, most first.
    fn limited(&self) -> io::Result<Vec<(u32, u64, u64)>> {
        let mut all: Vec<(u32, abi::UidUse)> = Vec::new();
        sys::lookup_all(self.uid.fd().as_fd(), &mut all)?;
        let mut v: Vec<(u32, u64, u64)> = all
            .into_iter()
            .filter(|(_, u)| u.refused > 0 || u.wire_refused > 0)
            .map(|(uid, u)| (uid, u.refused, u.wire_refused))
            .collect();
        v.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
        Ok(v)
    }
}

impl KernelMaps for LiveMaps {
    fn take_flow(&mut self, k: &abi::FlowKey) -> io::Result<Option<abi::FlowCounters>> {
        let c: Option<abi::FlowCounters> = sys::lookup_and_delete(self.flows.fd().as_fd(), k)?;
        if let Some(c) = &c {
            self.freed.entry(c.uid).or_default().flows += 1;
            self.freed_dirty.insert(c.uid);
        }
        Ok(c)
    }
    fn take_wire(&mut self, k: &abi::WireKey) -> io::Result<Option<abi::WireCounters>> {
        let w: Option<abi::WireCounters> = sys::lookup_and_delete(self.wire.fd().as_fd(), k)?;
        if let Some(w) = &w {
            self.freed.entry(w.uid).or_default().wire += 1;
            self.freed_dirty.insert(w.uid);
        }
        Ok(w)
    }
    fn take_lost(&mut self, out: &mut Vec<(abi::LostKey, abi::Lost)>) -> io::Result<()> {
        let mut all = Vec::new();
        sys::lookup_all(self.lost.fd().as_fd(), &mut all)?;
        for (k, v) in all {
            // (taken one by one: the kernel may add more meanwhile)
            let _: Option<abi::Lost> = sys::lookup_and_delete(self.lost.fd().as_fd(), &k)?;
            out.push((k, v));
        }
        Ok(())
    }
    fn peek_wire(&mut self, k: &abi::WireKey) -> io::Result<Option<abi::WireCounters>> {
        sys::lookup(self.wire.fd().as_fd(), k)
    }
    fn all_flows(&mut self, out: &mut Vec<(abi::FlowKey, abi::FlowCounters)>) -> io::Result<()> {
        sys::lookup_all(self.flows.fd().as_fd(), out)
    }
    fn all_wire(&mut self, out: &mut Vec<(abi::WireKey, abi::WireCounters)>) -> io::Result<()> {
        sys::lookup_all(self.wire.fd().as_fd(), out)
    }
}

/// The eBPF sensor: the programs attached, their maps, the ring buffer and the harvester that turns them into events. Dropping it detaches everything.
pub struct EbpfSensor {
    // owns the programs and their links: dropping it detaches everything
    _ebpf: Ebpf,
    ring: RingBuf<MapData>,
    maps: LiveMaps,
    stats: PerCpuArray<MapData, u64>,
    harvester: Harvester,
    attached: attach::Attached,
    decode_errors: u64,
    /// The ring's records of one drain, decoded (kept: its room serves
    /// the next drain).
    drained: Vec<Result<decode::Record, decode::DecodeError>>,
    /// Sockets the kernel showed were born after attach, during start-up
    /// (the scan must not call them old); `None` after start-up.
    seen_at_start: Option<HashSet<u64>>,
    /// Sockets older than the sensor, found while it still had the
    /// privilege to enter every network namespace (start-up reports them).
    existing: Option<Vec<netwho_model::ExistingSocket>>,
    cgroup_root: PathBuf,
    page_size: u64,
    /// Kernel delay accounting is on (block I/O waits are measured).
    delayacct: bool,
}

/// Decoded records whose room a drain keeps for the next.
const DRAINED_KEEP: usize = 1024;

fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant; no pointers involved.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).unwrap_or(4096)
}

impl std::fmt::Debug for EbpfSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EbpfSensor")
            .field("hooks", &self.attached.hooks)
            .field("cgroup_root", &self.cgroup_root)
            .finish_non_exhaustive()
    }
}

fn take_data(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, SensorError> {
    ebpf.take_map(name).ok_or(SensorError::Map {
        name,
        detail: "missing from the BPF object".into(),
    })
}

/// Tell the kernel side where each TCP socket older than netwho starts
/// counting: what its readers had taken when it was found (see
/// `nw_start_taken`). Bounded by the map; a socket left out starts at its
/// first count instead, which loses only a read that was in progress at
/// start on the fexit path.
fn seed_start_taken(
    ebpf: &mut Ebpf,
    existing: &[netwho_model::ExistingSocket],
) -> Result<(), SensorError> {
    let name = netwho_bpf::maps::START_TAKEN;
    let Map::LruHashMap(data) = take_data(ebpf, name)? else {
        return Err(SensorError::Map {
            name,
            detail: "is not an LRU hash map".into(),
        });
    };
    let mut failed = 0u64;
    let mut last = None;
    for x in existing {
        log::debug!(
            "socket {:x} found at start, its readers had taken {:?}",
            x.cookie.0,
            x.taken
        );
        if let Some(taken) = x.taken
            && let Err(e) = sys::update(data.fd().as_fd(), &x.cookie.0, &taken)
        {
            failed += 1;
            last = Some(e);
        }
    }
    if let Some(e) = last {
        log::warn!(
            "{failed} sockets older than netwho start counting at their first read, not at \
             netwho's start ({name}: {e})"
        );
    }
    Ok(())
}

fn hash_map<K: bytemuck::Pod, V: bytemuck::Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<MapData, SensorError> {
    let Map::HashMap(data) = take_data(ebpf, name)? else {
        return Err(SensorError::Map {
            name,
            detail: "is not a hash map".into(),
        });
    };
    let info = data.info().map_err(|e| SensorError::Map {
        name,
        detail: e.to_string(),
    })?;
    if !sys::check_sizes::<K, V>(info.key_size(), info.value_size()) {
        return Err(SensorError::Map {
            name,
            detail: format!(
                "key/value sizes {}/{} do not match the ABI; rebuild with scripts/build-bpf",
                info.key_size(),
                info.value_size()
            ),
        });
    }
    Ok(data)
}

impl EbpfSensor {
    /// Check prerequisites, load and attach everything.
    pub fn start(cfg: EbpfConfig) -> Result<Self, SensorError> {
        prereq::check_privileges()?;
        prereq::check_btf(Path::new(prereq::BTF_PATH))?;
        let cgroup_root = prereq::cgroup2_root()?;
        prereq::raise_memlock();
        let btf = Btf::from_sys_fs().map_err(|e| SensorError::Btf {
            detail: e.to_string(),
        })?;
        let (mut ebpf, attached) = attach::load_and_attach(
            &btf,
            &cgroup_root,
            cfg.sizes,
            &cfg.scope,
            abi::CaptureCfg {
                snaplen: cfg.snaplen,
                packet_snaplen: cfg.packet_snaplen,
                names: cfg.names,
                _pad: 0,
            },
            cfg.payload,
        )?;
        for d in &attached.degradations {
            log::warn!("{d}");
        }

        let ring =
            RingBuf::try_from(take_data(&mut ebpf, netwho_bpf::maps::EVENTS)?).map_err(|e| {
                SensorError::Map {
                    name: netwho_bpf::maps::EVENTS,
                    detail: e.to_string(),
                }
            })?;
        let stats =
            PerCpuArray::try_from(take_data(&mut ebpf, netwho_bpf::maps::STATS)?).map_err(|e| {
                SensorError::Map {
                    name: netwho_bpf::maps::STATS,
                    detail: e.to_string(),
                }
            })?;
        let maps = LiveMaps {
            flows: hash_map::<abi::FlowKey, abi::FlowCounters>(&mut ebpf, netwho_bpf::maps::FLOWS)?,
            wire: hash_map::<abi::WireKey, abi::WireCounters>(&mut ebpf, netwho_bpf::maps::WIRE)?,
            uid: hash_map::<u32, abi::UidUse>(&mut ebpf, netwho_bpf::maps::UID)?,
            uid_freed: hash_map::<u32, abi::UidFreed>(&mut ebpf, netwho_bpf::maps::UID_FREED)?,
            lost: hash_map::<abi::LostKey, abi::Lost>(&mut ebpf, netwho_bpf::maps::LOST)?,
            freed: rustc_hash::FxHashMap::default(),
            freed_dirty: rustc_hash::FxHashSet::default(),
        };
        // now, while netwho may still enter other network namespaces (its
        // capabilities are dropped once it has started); the hooks are
        // attached, so a socket born from here on shows in the ring too
        let existing = fallback::existing_sockets(boot_now())?;
        seed_start_taken(&mut ebpf, &existing)?;
        Ok(EbpfSensor {
            _ebpf: ebpf,
            ring,
            maps,
            stats,
            harvester: Harvester::new(nanos(cfg.grace), nanos(cfg.idle)),
            attached,
            decode_errors: 0,
            drained: Vec::new(),
            seen_at_start: Some(HashSet::new()),
            existing: Some(existing),
            cgroup_root,
            page_size: page_size(),
            delayacct: std::fs::read("/proc/sys/kernel/task_delayacct")
                .is_ok_and(|b| b.first() == Some(&b'1')),
        })
    }

    /// The cgroup v2 mount the programs are attached at.
    pub fn cgroup_root(&self) -> &Path {
        &self.cgroup_root
    }

    /// Tell the kernel what was freed of each uid's share (a failure is
    /// counted; the share then looks fuller than it is until the next try).
    fn flush_freed(&mut self) {
        if self.maps.flush_freed().is_err() {
            self.harvester.stats.map_errors += 1;
        }
    }

    /// Remember a socket the kernel proved was born after the hooks
    /// attached (so the start-up scan must not call it old).
    fn note_born(&mut self, cookie: u64) {
        if let Some(seen) = &mut self.seen_at_start {
            seen.insert(cookie);
        }
    }

    /// Decode everything waiting in the ring buffer.
    fn drain(&mut self, out: &mut Vec<SensorEvent>) {
        let now = boot_now();
        let mut records = std::mem::take(&mut self.drained);
        while let Some(item) = self.ring.next() {
            records.push(decode::decode(&item));
        }
        let mut incomplete = Vec::new();
        for r in records.drain(..) {
            match r {
                Ok(r) => self.handle(r, now, out, &mut incomplete),
                Err(e) => {
                    self.decode_errors += 1;
                    log::debug!("{e}");
                }
            }
        }
        // (a burst's room is given back)
        records.shrink_to(DRAINED_KEEP);
        self.drained = records;
        // Opens whose local address or port was not known yet: the packets
        // know it. Not for sockets whose close is already in hand: their
        // close event carries the wire counters and addresses.
        for wk in incomplete {
            if !self.harvester.is_closing(wk.cookie)
                && let Ok(Some(w)) = self.maps.peek_wire(&wk)
            {
                out.push(harvest::wire_event(&wk, &w));
            }
        }
    }

    fn handle(
        &mut self,
        r: decode::Record,
        now: MonoNs,
        out: &mut Vec<SensorEvent>,
        incomplete: &mut Vec<abi::WireKey>,
    ) {
        match r {
            decode::Record::FlowOpen(o) => {
                let open = decode::flow_open(&o);
                if decode::born_watched(o.sk_flags) {
                    self.note_born(o.key.cookie);
                }
                self.harvester
                    .on_open(o.key, open.tuple.proto.is_stream(), now);
                let needs_local = !open.tuple.packet
                    && (open.tuple.local.is_unspecified() || open.tuple.local.port == 0)
                    && open.tuple.proto != Proto::Unknown;
                out.push(SensorEvent::FlowOpen(open));
                if needs_local {
                    incomplete.push(abi::WireKey {
                        cookie: o.key.cookie,
                        rport: o.key.rport,
                        _pad: [0; 3],
                        raddr: o.key.raddr,
                    });
                }
            }
            decode::Record::SockState(s) => {
                if TcpState::try_from(s.old_state) == Ok(TcpState::SynSent) {
                    // we saw its connect()
                    self.note_born(s.cookie);
                }
                if let Some(state) = decode::sock_state(&s) {
                    out.push(SensorEvent::SockState(state));
                }
            }
            decode::Record::SockClose(c) => {
                if TcpState::try_from(c.old_state) == Ok(TcpState::SynSent) {
                    self.note_born(c.cookie);
                }
                let finals = harvest::Finals::from_event(&c);
                self.harvester
                    .on_close(c.cookie, MonoNs(c.hdr.ts_ns), finals);
            }
            decode::Record::Inbound(i) => {
                self.note_born(i.cookie);
                out.push(SensorEvent::Inbound(decode::inbound(&i)));
            }
            decode::Record::Exec(e) => out.push(SensorEvent::Exec(decode::exec(&e))),
            decode::Record::Fork(f) => out.push(SensorEvent::Fork(decode::fork(&f))),
            decode::Record::Exit(x) => self.harvester.on_exit(
                ProcKey::from_start_ns(x.tgid, x.start_ns),
                MonoNs(x.hdr.ts_ns),
                Some(decode::exit_usage(&x, self.page_size, self.delayacct)),
            ),
            decode::Record::CgroupMkdir(c) => {
                let (id, path) = decode::cgroup_mkdir(&c);
                out.push(SensorEvent::CgroupCreated {
                    id,
                    path,
                    at: MonoNs(c.hdr.ts_ns),
                });
            }
            decode::Record::Capture(c) => match decode::captured(&c) {
                Some(ev) => out.push(ev),
                None => self.decode_errors += 1,
            },
            decode::Record::Packet(p) => match decode::packet(&p) {
                Some(ev) => out.push(ev),
                None => self.decode_errors += 1,
            },
            decode::Record::Name(n) => match decode::name(&n) {
                Some(ev) => out.push(ev),
                None => self.decode_errors += 1,
            },
        }
    }

    fn wait_readable(&self, timeout: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.ring.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd; the kernel writes only its revents. EINTR
        // (a signal) just ends the wait early, which is what we want.
        let _ = unsafe { libc::poll(&mut pfd, 1, ms) };
    }
}

impl Sensor for EbpfSensor {
    fn info(&self) -> SensorInfo {
        SensorInfo {
            attribution: "ebpf",
            hooks: self.attached.hooks.clone(),
            degradations: self.attached.degradations.clone(),
        }
    }

    fn startup(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        // A socket born after the hooks attached made the kernel emit an
        // event (connect, handshake, first payload) before it could show up
        // in the scan (made at start) with a process holding it. Drain: any
        // cookie seen by now is new, not old.
        self.drain(out);
        let existing = self.existing.take().unwrap_or_default();
        let seen = self.seen_at_start.take().unwrap_or_default();
        for x in existing.into_iter().filter(|x| !seen.contains(&x.cookie.0)) {
            out.push(SensorEvent::Existing(x));
        }
        Ok(())
    }

    fn poll(&mut self, timeout: Duration, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        // Finalizations wait for the next turn rather than waking us each:
        // at hundreds of closes a second, one wake-up per close would cost
        // more than everything else. A close is final within grace + timeout.
        self.wait_readable(timeout);
        self.drain(out);
        self.harvester.run_due(boot_now(), &mut self.maps, out);
        self.flush_freed();
        Ok(())
    }

    fn scan(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        // drain first so that entries found by the scan have been announced
        self.drain(out);
        self.harvester.scan(boot_now(), &mut self.maps, out);
        self.flush_freed();
        Ok(())
    }

    fn limited(&mut self) -> Vec<crate::UidLimit> {
        match self.maps.limited() {
            Ok(v) => v
                .into_iter()
                .take(crate::UIDS_LIMITED_SHOWN)
                .map(|(uid, flows, wire)| crate::UidLimit {
                    uid,
                    flows_refused: flows,
                    wire_refused: wire,
                })
                .collect(),
            Err(_) => {
                self.harvester.stats.map_errors += 1;
                Vec::new()
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        self.drain(out);
        // finalizations still in their grace period: run them now
        self.harvester
            .run_due(MonoNs(u64::MAX), &mut self.maps, out);
        self.harvester.read_all(&mut self.maps, out);
        Ok(())
    }

    fn stats(&mut self) -> SensorStats {
        let sum = |idx: u32| -> u64 {
            self.stats
                .get(&idx, 0)
                .map(|v| v.iter().copied().fold(0u64, u64::saturating_add))
                .unwrap_or(0)
        };
        let h = self.harvester.stats;
        SensorStats {
            ringbuf_drops: sum(abi::STAT_RINGBUF_DROPS),
            flows_map_full: sum(abi::STAT_FLOWS_FULL),
            bytes_lost: sum(abi::STAT_BYTES_LOST),
            wire_map_full: sum(abi::STAT_WIRE_FULL),
            remote_unknown: sum(abi::STAT_REMOTE_UNKNOWN),
            storage_fail: sum(abi::STAT_STORAGE_FAIL),
            wire_no_socket: sum(abi::STAT_WIRE_NO_SOCK),
            wire_after_close: sum(abi::STAT_WIRE_AFTER_CLOSE),
            wire_handshake: sum(abi::STAT_WIRE_HANDSHAKE),
            payload_calls: sum(abi::STAT_PAYLOAD_CALLS),
            packets: sum(abi::STAT_PACKETS),
            scoped_out: sum(abi::STAT_SCOPED_OUT),
            capture_lost: sum(abi::STAT_CAPTURE_LOST),
            packets_lost: sum(abi::STAT_PACKETS_LOST),
            names: sum(abi::STAT_NAMES),
            names_lost: sum(abi::STAT_NAMES_LOST),
            ringbuf_open: sum(abi::STAT_RB_DROP_OPEN),
            ringbuf_close: sum(abi::STAT_RB_DROP_CLOSE),
            ringbuf_proc: sum(abi::STAT_RB_DROP_PROC),
            untracked: sum(abi::STAT_UNTRACKED),
            lost_full: sum(abi::STAT_LOST_FULL),
            wire_untracked: sum(abi::STAT_WIRE_UNTRACKED),
            lost_recovered: h.lost_recovered,
            bypass_recv: (h.bypass_recv + sum(abi::STAT_BYPASS_RECV))
                .saturating_sub(sum(abi::STAT_BYPASS_UNDONE)),
            decode_errors: self.decode_errors,
            map_errors: h.map_errors,
            late_opens: h.late_opens,
            unannounced: h.unannounced,
            wire_orphaned: h.wire_orphaned,
            flows_tracked: self.harvester.len() as u64,
            missed_sockets: 0,
            missed_bytes: 0,
            notices_lost: 0,
        }
    }
}
