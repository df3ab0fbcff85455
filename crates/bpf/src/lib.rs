//! netwho's kernel programs, as data.
//!
//! Place in the pipeline: the bottom. `c/netwho.bpf.c` is compiled by
//! `scripts/build-bpf` (pinned clang) into `netwho.bpf.o`, which is committed
//! and embedded here, so `cargo build` needs neither clang nor root. The
//! `sensor` crate loads [`OBJECT`] with aya and decodes what the programs
//! write with the types in [`abi`], which mirror `include/netwho_abi.h`
//! field for field (sizes asserted on both sides).

#![warn(missing_docs)]

pub mod abi;

/// Bytes aligned to 8, as the ELF parser wants them.
#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);

static OBJECT_ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!("../netwho.bpf.o"));

/// The stripped BPF object (ELF, with BTF and BTF.ext for CO-RE).
pub static OBJECT: &[u8] = &OBJECT_ALIGNED.0;

/// Names of the programs in [`OBJECT`] and the hook each attaches to.
pub mod programs {
    /// `tp_btf/sock_send_length`: payload sent, in the sender's context.
    pub const SOCK_SEND: &str = "nw_sock_send";
    /// `tp_btf/sock_recv_length`: payload received, in the reader's context.
    pub const SOCK_RECV: &str = "nw_sock_recv";
    /// `tp_btf/skb_copy_datagram_iovec`: a received datagram's source.
    pub const DGRAM_COPY: &str = "nw_dgram_copy";
    /// `tp_btf/inet_sock_set_state`: TCP connections' lives.
    pub const SET_STATE: &str = "nw_set_state";
    /// `cgroup/sock_create`: who creates each socket.
    pub const SOCK_CREATE: &str = "nw_sock_create";
    /// `cgroup/sock_release`: the end of a UDP, ICMP or raw socket.
    pub const SOCK_RELEASE: &str = "nw_sock_release";
    /// `cgroup/sendmsg4`: an unconnected UDP send's remote.
    pub const SENDMSG4: &str = "nw_sendmsg4";
    /// `cgroup/sendmsg6`: likewise for IPv6.
    pub const SENDMSG6: &str = "nw_sendmsg6";
    /// `cgroup/recvmsg4`: an unconnected UDP receive's remote.
    pub const RECVMSG4: &str = "nw_recvmsg4";
    /// `cgroup/recvmsg6`: likewise for IPv6.
    pub const RECVMSG6: &str = "nw_recvmsg6";
    /// `cgroup_skb/egress`: IP bytes and packets out.
    pub const SKB_EGRESS: &str = "nw_skb_egress";
    /// `cgroup_skb/ingress`: IP bytes and packets in.
    pub const SKB_INGRESS: &str = "nw_skb_ingress";
    /// `tp_btf/sched_process_exec`: a process's name, executable and argv.
    pub const EXEC: &str = "nw_exec";
    /// `tp_btf/sched_process_fork`: new processes.
    pub const FORK: &str = "nw_fork";
    /// `tp_btf/sched_process_exit`: a process's end and final figures.
    pub const EXIT: &str = "nw_exit";
    /// `tp_btf/cgroup_mkdir`: new cgroups (units started later).
    pub const CGROUP_MKDIR: &str = "nw_cgroup_mkdir";
    /// `fexit/inet_sendmsg`: payload sent on IPv4 sockets, where the
    /// payload tracepoints are missing (before 6.5).
    pub const FX_SEND4: &str = "nw_fx_send4";
    /// `fexit/inet6_sendmsg`: likewise for IPv6 sockets.
    pub const FX_SEND6: &str = "nw_fx_send6";
    /// `fexit/inet_sendpage`: sendfile()/splice() to a socket (before 6.5).
    pub const FX_SENDPAGE: &str = "nw_fx_sendpage";
    /// `fexit/inet_recvmsg`: payload received on IPv4 sockets.
    pub const FX_RECV4: &str = "nw_fx_recv4";
    /// `fexit/inet6_recvmsg`: likewise for IPv6 sockets.
    pub const FX_RECV6: &str = "nw_fx_recv6";
}

/// Names of the read-only settings the loader writes before loading.
pub mod globals {
    /// `u32`: cgroup_skb programs may call `bpf_get_current_pid_tgid()`.
    pub const SKB_TASK: &str = "nw_cfg_skb_task";
}

/// Names of the maps in [`OBJECT`].
pub mod maps {
    /// Socket storage: who created each socket, and what was learnt of it.
    pub const SK: &str = "nw_sk";
    /// Payload counters per (process, socket, remote).
    pub const FLOWS: &str = "nw_flows";
    /// IP counters per (socket, remote).
    pub const WIRE: &str = "nw_wire";
    /// The ring buffer.
    pub const EVENTS: &str = "nw_events";
    /// Per-CPU statistics (`abi::STAT_*`).
    pub const STATS: &str = "nw_stats";
    /// The kernel scope's settings.
    pub const SCOPE: &str = "nw_scope";
    /// The scope's uids.
    pub const SCOPE_UID: &str = "nw_scope_uid";
    /// The scope's gids.
    pub const SCOPE_GID: &str = "nw_scope_gid";
    /// The scope's cgroups.
    pub const SCOPE_CGROUP: &str = "nw_scope_cgroup";
    /// The scope's cgroup names (hashed), for cgroups made later.
    pub const SCOPE_NAME: &str = "nw_scope_name";
    /// The scope's processes.
    pub const SCOPE_PID: &str = "nw_scope_pid";
    /// The scope's ports.
    pub const SCOPE_PORT: &str = "nw_scope_port";
    /// Payload capture settings (`record -s`).
    pub const CAPTURE: &str = "nw_capture";
    /// Each uid's use of the flow and wire maps.
    pub const UID: &str = "nw_uid";
    /// Entries userspace deleted, per uid.
    pub const UID_FREED: &str = "nw_uid_freed";
    /// What one uid may hold.
    pub const LIMITS: &str = "nw_limits";
    /// Flows already announced without an entry of their own.
    pub const UNTRACKED: &str = "nw_untracked";
    /// Closes and exits the ring had no room for.
    pub const LOST: &str = "nw_lost";
    /// TCP sockets older than netwho: what their readers had taken then.
    pub const START_TAKEN: &str = "nw_start_taken";
}

/// FNV-1a 64, as the cgroup_mkdir program hashes cgroup names.
pub fn name_hash(name: &[u8]) -> u64 {
    name.iter()
        .take(abi::NAME_LEN)
        .take_while(|b| **b != 0)
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_an_aligned_bpf_elf() {
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        assert_eq!(OBJECT.as_ptr() as usize % 8, 0);
        // e_machine at offset 18: EM_BPF = 247, little endian
        assert_eq!(u16::from_le_bytes([OBJECT[18], OBJECT[19]]), 247);
    }

    #[test]
    fn object_names_every_program_and_map() {
        let text = String::from_utf8_lossy(OBJECT);
        for name in [
            programs::SOCK_SEND,
            programs::SOCK_RECV,
            programs::DGRAM_COPY,
            programs::SET_STATE,
            programs::SOCK_CREATE,
            programs::SOCK_RELEASE,
            programs::SENDMSG4,
            programs::SENDMSG6,
            programs::RECVMSG4,
            programs::RECVMSG6,
            programs::SKB_EGRESS,
            programs::SKB_INGRESS,
            programs::EXEC,
            programs::FORK,
            programs::EXIT,
            programs::CGROUP_MKDIR,
            maps::SK,
            maps::FLOWS,
            maps::WIRE,
            maps::EVENTS,
            maps::STATS,
            maps::SCOPE,
            maps::SCOPE_UID,
            maps::SCOPE_GID,
            maps::SCOPE_CGROUP,
            maps::SCOPE_NAME,
            maps::SCOPE_PID,
            maps::SCOPE_PORT,
            maps::CAPTURE,
        ] {
            assert!(text.contains(name), "{name} missing from the object");
        }
    }
}
