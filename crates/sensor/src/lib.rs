//! Sensors: where netwho's events come from.
//!
//! Place in the pipeline: the source. A [`Sensor`] turns what the kernel
//! does into [`SensorEvent`]s for the model. [`ebpf::EbpfSensor`] is the
//! real one (kernel programs from the `bpf` crate, loaded with aya);
//! [`fallback`] finds, once at start-up, the sockets that existed before it
//! (sock_diag dumps in every network namespace plus a `/proc/*/fd` scan).
//! This crate owns the clock it reads ([`clock`]); the model never does.

pub mod clock;
pub mod ebpf;
pub mod fallback;

use netwho_model::SensorEvent;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

pub use netwho_model;

/// Why a sensor could not start or run. Every variant says what to do.
#[derive(Debug, Error)]
pub enum SensorError {
    #[error(
        "missing {missing}: netwho loads kernel programs and needs CAP_BPF, CAP_PERFMON and \
         CAP_NET_ADMIN; run it as root (sudo netwho ...) or grant them with \
         'setcap cap_bpf,cap_perfmon,cap_net_admin,cap_sys_ptrace,cap_dac_read_search+ep \
         $(command -v netwho)'"
    )]
    Privilege { missing: String },
    #[error(
        "the kernel has no BTF type information ({path} is missing); netwho needs a kernel built \
         with CONFIG_DEBUG_INFO_BTF=y (most distributions enable it), Linux 6.5 or later"
    )]
    NoBtf { path: PathBuf },
    #[error("could not read the kernel's BTF: {detail}")]
    Btf { detail: String },
    #[error(
        "cgroup v2 is not mounted (no cgroup2 line in /proc/self/mountinfo); netwho attaches its \
         socket hooks to the cgroup v2 root. Mount it, e.g. 'mkdir -p /sys/fs/cgroup/unified && \
         mount -t cgroup2 none /sys/fs/cgroup/unified'"
    )]
    NoCgroup2,
    #[error("could not load netwho's BPF object: {detail}")]
    Load { detail: String },
    #[error("could not attach hook {hook}: {detail}")]
    Hook { hook: &'static str, detail: String },
    #[error("BPF map {name}: {detail}")]
    Map { name: &'static str, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// How a sensor attributes traffic, and what it runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorInfo {
    /// `ebpf`, `sock_diag`, ... (the `attribution` of its records).
    pub attribution: &'static str,
    pub hooks: Vec<&'static str>,
    /// Hooks or features that are missing, each in a sentence.
    pub degradations: Vec<String>,
}

/// Everything a sensor lost or could not attribute, and how busy it is.
/// Counters only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SensorStats {
    /// Kernel events lost because the ring buffer was full.
    pub ringbuf_drops: u64,
    /// Flows not tracked because the kernel flow map was full...
    pub flows_map_full: u64,
    /// ...and the payload bytes that went uncounted with them.
    pub bytes_lost: u64,
    pub wire_map_full: u64,
    /// Datagrams whose remote address could not be found.
    pub remote_unknown: u64,
    /// Socket storage that could not be allocated.
    pub storage_fail: u64,
    /// Packets without a full socket (time-wait, request sockets).
    pub wire_no_socket: u64,
    /// Packets on a socket after it was finalized.
    pub wire_after_close: u64,
    /// Packets on listening sockets (handshakes; not attributed).
    pub wire_handshake: u64,
    /// Ring records that did not decode.
    pub decode_errors: u64,
    /// Failed reads or deletes on kernel maps.
    pub map_errors: u64,
    pub late_opens: u64,
    /// Kernel flow entries whose open event never arrived.
    pub unannounced: u64,
    /// Wire counters of sockets no process claimed, dropped.
    pub wire_orphaned: u64,
    /// send/recv calls with payload, and packets, seen by the kernel side.
    pub payload_calls: u64,
    pub packets: u64,
    /// Sockets (and datagram flows) outside the kernel scope, not counted.
    pub scoped_out: u64,
    /// Payload capture records the ring had no room for (`record -s`).
    pub capture_lost: u64,
    /// Kernel flow entries alive now.
    pub flows_tracked: u64,
    /// Of `ringbuf_drops`: flow opens (and inbound handshakes), socket
    /// closes, process events (exec, fork, exit).
    pub ringbuf_open: u64,
    pub ringbuf_close: u64,
    pub ringbuf_proc: u64,
    /// Flows counted on their socket (their uid held its share of the flow
    /// map, or it was full): present, bytes per socket.
    pub untracked: u64,
    /// Lost closes and exits the kernel had no room left to keep.
    pub lost_full: u64,
    /// Packets of (socket, remote)s over their uid's share of the wire map.
    pub wire_untracked: u64,
    /// Lost closes and exits the kernel kept, finished from its maps.
    pub lost_recovered: u64,
    /// TCP bytes applications took past recv() (splice, zero-copy).
    pub bypass_recv: u64,
}

/// Uids shown as having hit their share of the kernel maps (the most).
pub const UIDS_LIMITED_SHOWN: usize = 10;

/// A uid that went over its share of the kernel maps, and how often.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UidLimit {
    pub uid: u32,
    /// New flows counted on their socket instead of their own entry.
    pub flows_refused: u64,
    /// Packets of (socket, remote)s that got no wire entry.
    pub wire_refused: u64,
}

/// A source of sensor events.
pub trait Sensor {
    fn info(&self) -> SensorInfo;

    /// Start-up: events already waiting, then the sockets that predate the
    /// sensor. Call once, after the process table is filled.
    fn startup(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError>;

    /// Wait up to `timeout` for kernel events and append what happened.
    fn poll(&mut self, timeout: Duration, out: &mut Vec<SensorEvent>) -> Result<(), SensorError>;

    /// Read every counter now; finalize idle flows.
    fn scan(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError>;

    /// Shutting down: drain pending events and read every counter.
    fn finish(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError>;

    fn stats(&mut self) -> SensorStats;

    /// Uids that went over their share of the kernel maps, most first.
    fn limited(&mut self) -> Vec<UidLimit> {
        Vec::new()
    }
}
