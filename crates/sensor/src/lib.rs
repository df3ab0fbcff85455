//! Sensors: where netwho's events come from.
//!
//! Place in the pipeline: the source. A [`Sensor`] turns what the kernel
//! does into [`SensorEvent`]s for the model. [`ebpf::EbpfSensor`] is the
//! real one (kernel programs from the `bpf` crate, loaded with aya);
//! [`diag`] is the reduced one for kernels where those cannot run
//! (sock_diag looks, destroy notices, the proc connector);
//! [`fallback`] finds, once at start-up, the sockets that existed before it
//! (sock_diag dumps in every network namespace plus a `/proc/*/fd` scan).
//! The clock it reads is the host's ([`clock`], from `enrich`); the model
//! never reads one. What a sensor reports about itself ([`SensorInfo`],
//! [`SensorStats`]) is plain data in the model, so outputs need no sensor.

#![warn(missing_docs)]

pub use netwho_enrich::clock;
pub mod diag;
pub mod ebpf;
pub mod fallback;

use netwho_model::SensorEvent;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

pub use netwho_model;
pub use netwho_model::collector::{SensorInfo, SensorStats, UIDS_LIMITED_SHOWN, UidLimit};

/// Why a sensor could not start or run. Every variant says what to do.
#[derive(Debug, Error)]
pub enum SensorError {
    #[error(
        "missing {missing}: netwho loads kernel programs and needs CAP_BPF, CAP_PERFMON and \
         CAP_NET_ADMIN; run it as root (sudo netwho ...) or grant them with \
         'setcap cap_bpf,cap_perfmon,cap_net_admin,cap_sys_ptrace,cap_dac_read_search+ep \
         $(command -v netwho)'"
    )]
    /// The capabilities are missing.
    Privilege {
        /// The capabilities missing.
        missing: String,
    },
    #[error(
        "the kernel has no BTF type information ({path} is missing); netwho needs a kernel built \
         with CONFIG_DEBUG_INFO_BTF=y (most distributions enable it); 'netwho doctor' says \
         what else this machine lacks"
    )]
    /// The kernel has no BTF.
    NoBtf {
        /// Where it was looked for.
        path: PathBuf,
    },
    #[error("could not read the kernel's BTF: {detail}")]
    /// The BTF could not be read.
    Btf {
        /// Why.
        detail: String,
    },
    #[error(
        "cgroup v2 is not mounted (no cgroup2 line in /proc/self/mountinfo); netwho attaches its \
         socket hooks to the cgroup v2 root. Mount it, e.g. 'mkdir -p /sys/fs/cgroup/unified && \
         mount -t cgroup2 none /sys/fs/cgroup/unified'"
    )]
    /// cgroup v2 is not mounted.
    NoCgroup2,
    #[error("could not load netwho's BPF object: {detail}")]
    /// The BPF object did not load.
    Load {
        /// Why.
        detail: String,
    },
    #[error("could not attach hook {hook}: {detail}")]
    /// A required hook did not attach.
    Hook {
        /// The hook.
        hook: &'static str,
        /// Why.
        detail: String,
    },
    #[error("BPF map {name}: {detail}")]
    /// A BPF map operation failed.
    Map {
        /// The map.
        name: &'static str,
        /// What failed.
        detail: String,
    },
    #[error("{what}: {source}")]
    /// A file or system call failed.
    Io {
        /// What was being done.
        what: String,
        #[source]
        /// Why.
        source: std::io::Error,
    },
}

/// A source of sensor events.
pub trait Sensor {
    /// How it attributes traffic, and what it runs on.
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

    /// Its losses and counters so far.
    fn stats(&mut self) -> SensorStats;

    /// Uids that went over their share of the kernel maps, most first.
    fn limited(&mut self) -> Vec<UidLimit> {
        Vec::new()
    }
}

impl<S: Sensor + ?Sized> Sensor for Box<S> {
    fn info(&self) -> SensorInfo {
        (**self).info()
    }
    fn startup(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        (**self).startup(out)
    }
    fn poll(&mut self, timeout: Duration, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        (**self).poll(timeout, out)
    }
    fn scan(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        (**self).scan(out)
    }
    fn finish(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        (**self).finish(out)
    }
    fn stats(&mut self) -> SensorStats {
        (**self).stats()
    }
    fn limited(&mut self) -> Vec<UidLimit> {
        (**self).limited()
    }
}
