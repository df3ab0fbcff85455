/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * netwho_abi.h: every structure shared between the BPF programs and Rust.
 *
 * The Rust mirror is crates/bpf/src/abi.rs; both sides assert the sizes below.
 * Change a struct here and there in the same commit, and rebuild the object
 * with scripts/build-bpf. All integers are host byte order unless a field
 * says otherwise; addresses are 16 bytes, IPv4 stored IPv4-mapped
 * (::ffff:a.b.c.d) so that a dual-stack socket and a plain IPv4 socket give
 * the same key. Every type is prefixed netwho_ (vmlinux.h has `struct key`).
 */
#ifndef NETWHO_ABI_H
#define NETWHO_ABI_H

#define NETWHO_ADDR_LEN 16
#define NETWHO_COMM_LEN 16
#define NETWHO_PATH_LEN 256
#define NETWHO_ARGS_LEN 1024

/* Ring buffer event kinds (netwho_event_header.kind). */
#define NETWHO_EV_FLOW_OPEN 1
#define NETWHO_EV_SOCK_STATE 2
#define NETWHO_EV_INBOUND 3
#define NETWHO_EV_EXEC 4
#define NETWHO_EV_FORK 5
#define NETWHO_EV_EXIT 6
#define NETWHO_EV_SOCK_CLOSE 7
#define NETWHO_EV_CGROUP_MKDIR 8
#define NETWHO_EV_CAPTURE 9
#define NETWHO_EV_PACKET 10
#define NETWHO_EV_NAME 11

/* Payload capture (`-s SNAPLEN`): bytes per ring record, records per packet
 * at most, hence the largest snap length. */
#define NETWHO_CAPTURE_CHUNK 512
#define NETWHO_CAPTURE_CHUNKS 32
#define NETWHO_SNAPLEN_MAX 16384
_Static_assert(NETWHO_SNAPLEN_MAX == NETWHO_CAPTURE_CHUNK * NETWHO_CAPTURE_CHUNKS,
	       "snap length and chunks disagree");

/* Names (netwho_capture_cfg.names): what of a flow's first bytes is read
 * for the names its process used. DNS: answers received from port 53 (UDP,
 * and TCP up to NETWHO_NAME_TCP_DNS bytes of the stream); TLS: the first
 * NETWHO_NAME_SNAP bytes a TCP socket sends if they start a TLS record;
 * QUIC: the first two long-header datagrams a UDP socket sends to port 443.
 * A record holds one packet's payload, cut at NETWHO_NAME_SNAP. */
#define NETWHO_NAMES_DNS 0x1
#define NETWHO_NAMES_TLS 0x2
#define NETWHO_NAMES_QUIC 0x4
#define NETWHO_NAME_SNAP 2048
#define NETWHO_NAME_TCP_DNS 16384
/* netwho_name.what */
#define NETWHO_NAME_DNS 1
#define NETWHO_NAME_TLS 2
#define NETWHO_NAME_QUIC 3

/* Flows a socket remembers, so that its close event can carry their final
 * counters (more than this: userspace reads the rest itself). */
#define NETWHO_MAX_OWNERS 4

/* netwho_flow_open.origin: what created the flow entry. */
#define NETWHO_ORIGIN_SEND 1
#define NETWHO_ORIGIN_RECV 2
#define NETWHO_ORIGIN_CONNECT 3

/* Direction of a flow: who initiated it. */
#define NETWHO_DIR_UNKNOWN 0
#define NETWHO_DIR_OUTBOUND 1
#define NETWHO_DIR_INBOUND 2

/* netwho_sock_state.new_state beyond the kernel's TCP states (1..12). */
#define NETWHO_STATE_RELEASED 255

/* netwho_sk_info.flags */
#define NETWHO_SK_HOOKED 0x1      /* storage created at cgroup/sock_create */
#define NETWHO_SK_OUTBOUND 0x2    /* TCP: this socket called connect() */
#define NETWHO_SK_INBOUND 0x4     /* TCP: child of a listener */
#define NETWHO_SK_CLOSED 0x8      /* TCP_CLOSE reached or socket released */
#define NETWHO_SK_FLOW_SEEN 0x10  /* at least one flow entry exists or existed */
#define NETWHO_SK_LAST_REMOTE 0x20 /* last_raddr/last_rport are valid */
#define NETWHO_SK_OWNERS_FULL 0x40 /* more flows than owners[] holds */
#define NETWHO_SK_SCOPE_OUT 0x80  /* outside the scope: nothing is counted */
#define NETWHO_SK_SCOPED 0x100    /* the scope decision was made */
#define NETWHO_SK_APP_BASE 0x200  /* TCP: `consumed` counts from a known point */
#define NETWHO_SK_RCV_BASE 0x400  /* TCP: rcv_base is known */
#define NETWHO_SK_NAMES_DONE 0x800 /* names: nothing more of what it sends is read */
#define NETWHO_SK_NAMES_ONE 0x1000 /* names: one QUIC datagram of it was read */
#define NETWHO_SK_APP_STARTING 0x2000 /* TCP: a caller is setting `consumed`'s base */

/* netwho_scope.active: the dimensions that restrict the scope. A socket is
 * in scope when it meets every active one. */
#define NETWHO_SCOPE_UID 0x1      /* creator's uid in nw_scope_uid */
#define NETWHO_SCOPE_GID 0x2      /* creator's gid in nw_scope_gid */
#define NETWHO_SCOPE_CGROUP 0x4   /* creator's cgroup or an ancestor in nw_scope_cgroup */
#define NETWHO_SCOPE_PID 0x8      /* creator's tgid in nw_scope_pid */
#define NETWHO_SCOPE_PROTO 0x10   /* protocol bit set in protos */
#define NETWHO_SCOPE_PORT 0x20    /* local or remote port in nw_scope_port */
#define NETWHO_SCOPE_TASK_MASK 0xf
#define NETWHO_CGROUP_LEVELS 16   /* ancestors checked for the cgroup scope */
#define NETWHO_NAME_LEN 128       /* cgroup names hashed by the mkdir hook */

/* netwho_exit.flags */
#define NETWHO_EXIT_BLKIO 0x1     /* blkio_ns is valid (delay accounting on) */

/* Per-CPU statistics (index into nw_stats). */
#define NETWHO_STAT_RINGBUF_DROPS 0
#define NETWHO_STAT_FLOWS_FULL 1
#define NETWHO_STAT_BYTES_LOST 2
#define NETWHO_STAT_WIRE_FULL 3
#define NETWHO_STAT_REMOTE_UNKNOWN 4
#define NETWHO_STAT_WIRE_NO_SOCK 5
#define NETWHO_STAT_STORAGE_FAIL 6
#define NETWHO_STAT_PAYLOAD_CALLS 7
#define NETWHO_STAT_PACKETS 8
#define NETWHO_STAT_WIRE_AFTER_CLOSE 9
#define NETWHO_STAT_WIRE_HANDSHAKE 10
#define NETWHO_STAT_SCOPED_OUT 11
#define NETWHO_STAT_CAPTURE_LOST 12 /* payload records the ring had no room for */
#define NETWHO_STAT_RB_DROP_OPEN 13   /* of RINGBUF_DROPS: flow opens */
#define NETWHO_STAT_RB_DROP_CLOSE 14  /* of RINGBUF_DROPS: socket closes */
#define NETWHO_STAT_RB_DROP_PROC 15   /* of RINGBUF_DROPS: exec, fork, exit */
#define NETWHO_STAT_UNTRACKED 16      /* flows counted on their socket, not in nw_flows */
#define NETWHO_STAT_LOST_FULL 17      /* lost closes/exits nw_lost had no room for */
#define NETWHO_STAT_WIRE_UNTRACKED 18 /* packets of (socket, remote)s over their uid's share of nw_wire */
#define NETWHO_STAT_BYPASS_RECV 19    /* TCP bytes read past recv() (splice, zero-copy), credited to flows */
#define NETWHO_STAT_BYPASS_UNDONE 20  /* of those: bytes an ACK credited while a recv() was taking them */
#define NETWHO_STAT_PACKETS_CAPTURED 21 /* packets given to the ring whole (`netwho pcap`) */
#define NETWHO_STAT_PACKETS_LOST 22     /* packets the ring had no room for, or cut short */
#define NETWHO_STAT_NAMES 23         /* names: records given to the ring */
#define NETWHO_STAT_NAMES_LOST 24    /* names: records the ring had no room for */
#define NETWHO_STAT_MAX 26

/* netwho_flow_open.flow_flags: the flow has no entry of its own in nw_flows
 * (its uid holds its share of the map, or the map is full); its payload is
 * counted on its socket (netwho_sk_info.ovf_*) and reported at close. */
#define NETWHO_FLOW_UNTRACKED_QUOTA 0x1
#define NETWHO_FLOW_UNTRACKED_FULL 0x2

/* netwho_lost.kind: an event the ring had no room for, kept for userspace. */
#define NETWHO_LOST_CLOSE 1
#define NETWHO_LOST_EXIT 2

/* Key of nw_flows: one entry per (process, socket, remote). */
struct netwho_flow_key {
	__u64 cookie;                 /* bpf_get_socket_cookie() */
	__u32 tgid;                   /* owner: the process that sent/received */
	__u16 rport;                  /* 0 for ICMP, raw and packet sockets */
	__u16 _pad;
	__u8 raddr[NETWHO_ADDR_LEN];
};

/* Value of nw_flows: exact payload, the sum of send()/recv() returns. */
struct netwho_flow_counters {
	__u64 bytes_sent;
	__u64 bytes_recv;
	__u64 sends;                  /* successful send calls */
	__u64 recvs;                  /* successful recv calls */
	__u64 created_ns;             /* CLOCK_BOOTTIME when the entry was made */
	__u32 uid;                    /* whose share of the map the entry takes */
	__u16 protocol;               /* the socket's, for a flow whose open is */
	__u8 sock_type;               /* lost: IPPROTO_*, SOCK_*, and 1 for */
	__u8 packet;                  /* AF_PACKET */
};

/* nw_uid: one uid's use of nw_flows and nw_wire. Entries it holds: made -
 * freed - (what userspace freed, in nw_uid_freed). */
struct netwho_uid_use {
	__u64 made;                   /* nw_flows entries created (BPF) */
	__u64 freed;                  /* ... deleted by BPF (socket close) */
	__u64 refused;                /* flows over its share, counted on their socket */
	__u64 wire_made;              /* nw_wire entries, likewise */
	__u64 wire_freed;
	__u64 wire_refused;           /* packets of (socket, remote)s over its share */
};

/* nw_uid_freed: entries userspace deleted, per uid (only userspace writes). */
struct netwho_uid_freed {
	__u64 flows;
	__u64 wire;
};

/* nw_limits[0]: what one uid may hold (userspace writes it before attaching). */
struct netwho_limits {
	__u32 flows_per_uid;          /* entries of nw_flows (and of nw_wire) one uid may hold; 0: no limit */
	__u32 _pad;
};

/* nw_lost: an event the ring buffer had no room for: userspace finds it
 * there and finishes what the event would have (closing the socket's
 * flows, ending the process). */
struct netwho_lost_key {
	__u64 id;                     /* the socket's cookie, or the process's tgid */
	__u32 kind;                   /* NETWHO_LOST_* */
	__u32 _pad;
};

struct netwho_lost {
	__u64 ts_ns;                  /* CLOCK_BOOTTIME */
	__u64 start_ns;               /* LOST_EXIT: the process's start_boottime */
	__u64 sent;                   /* LOST_CLOSE: the socket's own bytes (its */
	__u64 recv;                   /* untracked flows', and received past */
	__u32 tgid;                   /* recv()), and whose they are */
	__u16 protocol;               /* LOST_CLOSE: the socket's IPPROTO_* */
	__u8 sock_type;               /* and SOCK_* */
	__u8 _pad;
	__u8 raddr[NETWHO_ADDR_LEN];  /* as netwho_sock_close's ovf_* */
	__u16 rport;
	__u8 many;
	__u8 known;
	__u8 _pad2[4];
};

/* Key of nw_wire: one entry per (socket, remote). */
struct netwho_wire_key {
	__u64 cookie;
	__u16 rport;
	__u16 _pad[3];
	__u8 raddr[NETWHO_ADDR_LEN];
};

/* Value of nw_wire: L3 bytes and packets seen by cgroup_skb. */
struct netwho_wire_counters {
	__u64 bytes_sent;
	__u64 bytes_recv;
	__u64 packets_sent;
	__u64 packets_recv;
	__u64 created_ns;             /* CLOCK_BOOTTIME when the entry was made */
	__u8 laddr[NETWHO_ADDR_LEN];  /* local address seen on the packets */
	__u16 lport;
	__u16 _pad;
	__u32 cap_sent;               /* datagram payload bytes seen, up to the */
	__u32 cap_recv;               /* snap length (payload capture only) */
	__u32 uid;                    /* the socket's owner: whose share it takes */
};

/* One flow of a socket: its (tgid, remote) part of the flow key. */
struct netwho_owner {
	__u32 tgid;                   /* 0: free slot */
	__u16 rport;
	__u16 _pad;
	__u8 raddr[NETWHO_ADDR_LEN];
};

/* SK_STORAGE value: who created the socket, and what we learnt of it. */
struct netwho_sk_info {
	__u32 owner_tgid;             /* creator at sock_create, 0 if unknown */
	__u32 owner_uid;
	__u32 owner_gid;
	__u32 flags;                  /* NETWHO_SK_* */
	__u64 owner_cgroup;
	__u64 created_ns;
	__u8 last_raddr[NETWHO_ADDR_LEN]; /* datagram sockets: last egress remote */
	__u16 last_rport;
	__u16 _pad[3];
	struct netwho_owner owners[NETWHO_MAX_OWNERS];
	__u64 ovf_sent;               /* payload of this socket's untracked flows */
	__u64 ovf_recv;
	__u32 ovf_tgid;               /* the first process with an untracked flow here */
	__u32 reader_tgid;            /* TCP: the last process whose read was counted */
	__u8 ovf_raddr[NETWHO_ADDR_LEN]; /* and its remote */
	__u16 ovf_rport;
	__u8 ovf_many;                /* 1: untracked flows of another process or remote too */
	__u8 _pad3[5];
	__u64 consumed;               /* TCP: bytes of the receive stream the
	                               * application took that flows were credited
	                               * with (by recv(), or as bypass) */
	__u32 rcv_base;               /* TCP: rcv_nxt - bytes_received, constant for
	                               * a connection (a read that disagrees caught
	                               * the two mid-update) */
	__u32 base_cand;              /* a base two reads must agree on before it
	                               * is taken (sockets not seen established) */
};

/* Per-thread stash of a datagram's remote between the hook that knows it
 * (cgroup/sendmsg*, skb_copy_datagram_iovec) and sock_{send,recv}_length. */
struct netwho_stash {
	__u64 cookie;                 /* 0: any socket */
	__u8 raddr[NETWHO_ADDR_LEN];
	__u8 laddr[NETWHO_ADDR_LEN];
	__u16 rport;
	__u16 lport;
	__u32 _pad;
};

/* Addresses of a socket as this host sees them. */
struct netwho_tuple {
	__u8 laddr[NETWHO_ADDR_LEN];
	__u8 raddr[NETWHO_ADDR_LEN];
	__u16 lport;
	__u16 rport;
	__u16 family;                 /* AF_INET, AF_INET6, AF_PACKET */
	__u16 protocol;               /* IPPROTO_* (packet sockets: 0) */
	__u16 sock_type;              /* SOCK_STREAM, SOCK_DGRAM, SOCK_RAW */
	__u8 state;                   /* sk_state */
	__u8 _pad;
	__u32 netns;                  /* network namespace inode */
};

struct netwho_event_header {
	__u32 kind;                   /* NETWHO_EV_* */
	__u32 _pad;
	__u64 ts_ns;                  /* CLOCK_BOOTTIME */
};

/* A flow entry was created in nw_flows (process context: the owner is
 * the current task). */
struct netwho_flow_open {
	struct netwho_event_header hdr;
	struct netwho_flow_key key;
	struct netwho_tuple tuple;
	__u64 proc_start_ns;          /* group leader's start_boottime */
	__u64 cgroup_id;
	__u32 uid;                    /* effective uid/gid of the caller */
	__u32 gid;
	__u8 origin;                  /* NETWHO_ORIGIN_* */
	__u8 direction;               /* NETWHO_DIR_* */
	__u8 sk_flags;                /* low byte of netwho_sk_info.flags, 0 if none */
	__u8 flow_flags;              /* NETWHO_FLOW_* */
	__u8 _pad[4];
	char comm[NETWHO_COMM_LEN];   /* group leader's comm */
};

/* A TCP state change worth knowing (ESTABLISHED, CLOSE) or the release of
 * a non-TCP socket (new_state = NETWHO_STATE_RELEASED). */
struct netwho_sock_state {
	struct netwho_event_header hdr;
	__u64 cookie;
	struct netwho_tuple tuple;
	__u8 old_state;
	__u8 new_state;
	__u8 _pad[6];
};

/* An inbound TCP connection reached ESTABLISHED (softirq: no process yet).
 * The owner fields come from the listener's storage. */
struct netwho_inbound {
	struct netwho_event_header hdr;
	__u64 cookie;
	struct netwho_tuple tuple;
	__u32 owner_tgid;
	__u32 owner_uid;
	__u32 owner_gid;
	__u32 _pad;
	__u64 owner_cgroup;
};

/* Final counters of one flow, taken out of nw_flows at close. */
struct netwho_final_flow {
	__u32 tgid;                   /* 0: unused slot */
	__u16 rport;
	__u16 found;                  /* 1 if the entry was there */
	__u8 raddr[NETWHO_ADDR_LEN];
	__u64 bytes_sent;
	__u64 bytes_recv;
};

/* Final wire counters of one (socket, remote), taken out of nw_wire. */
struct netwho_final_wire {
	__u16 rport;
	__u16 lport;
	__u16 found;                  /* 1 if the entry was there */
	__u16 _pad;
	__u8 raddr[NETWHO_ADDR_LEN];
	__u8 laddr[NETWHO_ADDR_LEN];
	__u64 bytes_sent;
	__u64 bytes_recv;
	__u64 packets_sent;
	__u64 packets_recv;
};

/* A socket ended (TCP_CLOSE, or release of a datagram socket), with the
 * final counters of the flows it remembered. Reserved before the entries
 * are taken out, so anything re-created afterwards comes later in the ring. */
struct netwho_sock_close {
	struct netwho_event_header hdr;
	__u64 cookie;
	__u8 old_state;
	__u8 new_state;               /* TCP_CLOSE (7) or NETWHO_STATE_RELEASED */
	__u8 overflow;                /* 1: more flows than listed */
	__u8 sock_type;               /* SOCK_* */
	__u16 protocol;               /* IPPROTO_* */
	__u8 _pad[2];
	struct netwho_final_flow flows[NETWHO_MAX_OWNERS];
	struct netwho_final_wire wires[NETWHO_MAX_OWNERS]; /* wires[i]: the remote of flows[i], once */
	__u64 ovf_sent;               /* payload of the socket's untracked flows */
	__u64 ovf_recv;
	__u32 ovf_tgid;               /* whose the socket's own bytes are: the first
	                               * process with an untracked flow, else the creator */
	__u32 _pad2;
	__u8 ovf_raddr[NETWHO_ADDR_LEN]; /* the remote of its untracked flows */
	__u16 ovf_rport;
	__u8 ovf_many;                /* 1: more than one (process, remote): no single flow */
	__u8 ovf_known;               /* 1: ovf_raddr/ovf_rport are set */
	__u8 _pad3[4];
	__u64 recv_left;              /* TCP: bytes the application took past
	                               * recv() (splice, zero-copy) that no flow
	                               * was credited with yet */
};

struct netwho_exec {
	struct netwho_event_header hdr;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u64 start_ns;
	__u64 parent_start_ns;
	__u64 cgroup_id;
	__u32 filename_len;           /* bytes copied, including the NUL */
	__u32 args_len;               /* bytes of argv copied (NUL separated) */
	__u32 args_truncated;         /* 1 if argv was longer than NETWHO_ARGS_LEN - 1 */
	__u32 login_uid;              /* audit loginuid, (u32)-1 if unset */
	__u32 session;                /* audit session id, (u32)-1 if unset */
	__u32 _pad;
	__u64 exe_ino;                /* inode number of the executed file */
	char comm[NETWHO_COMM_LEN];
	char filename[NETWHO_PATH_LEN];
	char args[NETWHO_ARGS_LEN];
};

struct netwho_fork {
	struct netwho_event_header hdr;
	__u32 parent_tgid;
	__u32 child_tgid;
	__u64 parent_start_ns;
	__u64 child_start_ns;
	__u32 uid;
	__u32 gid;
	char comm[NETWHO_COMM_LEN];
};

/* The last thread of a process exited, with the process's final figures. */
struct netwho_exit {
	struct netwho_event_header hdr;
	__u32 tgid;
	__u32 exit_code;
	__u64 start_ns;
	__u64 cpu_ns;                 /* run time of every thread, ever */
	__u64 maj_flt;                /* major page faults, every thread */
	__u64 rss_pages;              /* resident pages now (0 if mm is gone) */
	__u64 peak_pages;             /* high-water resident pages */
	__u64 blkio_ns;               /* time waiting for block I/O */
	__u32 flags;                  /* NETWHO_EXIT_* */
	__u32 _pad;
};

/* A cgroup v2 directory was created: its id (the directory's inode) and
 * path, so that cgroups gone before userspace looked are still named. */
struct netwho_cgroup_mkdir {
	struct netwho_event_header hdr;
	__u64 id;
	__u32 level;
	__u32 path_len;               /* bytes copied, including the NUL */
	char path[NETWHO_PATH_LEN];
};

/* nw_scope[0]: which dimensions restrict what the kernel counts. */
struct netwho_scope {
	__u32 active;                 /* NETWHO_SCOPE_* */
	__u32 follow;                 /* 1: a fork of a scoped pid joins nw_scope_pid */
	__u64 protos[4];              /* bit n: IPPROTO n (0 stands for AF_PACKET) */
};

/* nw_capture[0]: payload capture settings. */
struct netwho_capture_cfg {
	__u32 snaplen;                /* bytes kept per flow and direction, 0: off */
	__u32 packet_snaplen;         /* `netwho pcap`: bytes kept per packet, 0: off */
	__u32 names;                  /* NETWHO_NAMES_*, 0: off */
	__u32 _pad;
};

/* Payload bytes of one (socket, remote) and direction: data[0..len] is the
 * stream's bytes from `offset` on (TCP: sequence space from the first data
 * byte; datagrams: the payloads one after another). A packet gives as many
 * records as it has bytes below the snap length. */
struct netwho_capture {
	struct netwho_event_header hdr;
	__u64 cookie;
	__u32 offset;
	__u16 len;
	__u16 rport;
	__u8 raddr[NETWHO_ADDR_LEN];
	__u8 direction;               /* 1 sent, 2 received */
	__u8 protocol;                /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE */
	__u8 _pad[6];
	__u8 data[NETWHO_CAPTURE_CHUNK];
};

/* A packet of an in-scope socket (`netwho pcap`): its IP header on, the
 * first caplen bytes of its len, as records of up to NETWHO_CAPTURE_CHUNK
 * bytes; `id` (the CPU and its count of captured packets) ties them
 * together, `offset` places each. */
struct netwho_packet {
	struct netwho_event_header hdr;
	__u64 cookie;
	__u64 id;
	__u32 len;                    /* the packet's length (a GSO packet: all of it) */
	__u32 ifindex;
	__u16 caplen;                 /* bytes captured in all */
	__u16 offset;                 /* where data starts */
	__u16 n;                      /* bytes in data */
	__u16 rport;
	__u8 raddr[NETWHO_ADDR_LEN];
	__u8 direction;               /* 1 sent, 2 received */
	__u8 protocol;
	__u16 segs;                   /* GSO segments (1: an ordinary packet) */
	__u8 _pad[4];
	__u8 data[NETWHO_CAPTURE_CHUNK];
};

/* One packet's payload read for names (NETWHO_NAMES_*): a DNS answer, the
 * start of a TLS stream, a QUIC Initial. data[0..len] is the payload from
 * its start, cut at NETWHO_NAME_SNAP (plen: its whole length). */
struct netwho_name {
	struct netwho_event_header hdr;
	__u64 cookie;
	__u32 offset;                 /* TCP: stream offset of data[0]; datagrams: 0 */
	__u16 len;                    /* bytes of data used */
	__u16 plen;                   /* the payload's length in the packet */
	__u16 rport;
	__u8 direction;               /* 1 sent, 2 received */
	__u8 protocol;
	__u8 what;                    /* NETWHO_NAME_* */
	__u8 _pad[3];
	__u8 raddr[NETWHO_ADDR_LEN];
	__u8 data[NETWHO_NAME_SNAP];
};

#define NETWHO_ASSERT_SIZE(t, n) _Static_assert(sizeof(struct t) == (n), #t " size changed: update abi.rs")
NETWHO_ASSERT_SIZE(netwho_flow_key, 32);
NETWHO_ASSERT_SIZE(netwho_flow_counters, 48);
NETWHO_ASSERT_SIZE(netwho_uid_use, 48);
NETWHO_ASSERT_SIZE(netwho_uid_freed, 16);
NETWHO_ASSERT_SIZE(netwho_limits, 8);
NETWHO_ASSERT_SIZE(netwho_lost_key, 16);
NETWHO_ASSERT_SIZE(netwho_lost, 64);
NETWHO_ASSERT_SIZE(netwho_wire_key, 32);
NETWHO_ASSERT_SIZE(netwho_wire_counters, 72);
NETWHO_ASSERT_SIZE(netwho_owner, 24);
NETWHO_ASSERT_SIZE(netwho_sk_info, 216);
NETWHO_ASSERT_SIZE(netwho_final_flow, 40);
NETWHO_ASSERT_SIZE(netwho_final_wire, 72);
NETWHO_ASSERT_SIZE(netwho_sock_close, 536);
NETWHO_ASSERT_SIZE(netwho_stash, 48);
NETWHO_ASSERT_SIZE(netwho_tuple, 48);
NETWHO_ASSERT_SIZE(netwho_event_header, 16);
NETWHO_ASSERT_SIZE(netwho_flow_open, 144);
NETWHO_ASSERT_SIZE(netwho_sock_state, 80);
NETWHO_ASSERT_SIZE(netwho_inbound, 96);
NETWHO_ASSERT_SIZE(netwho_exec, 1384);
NETWHO_ASSERT_SIZE(netwho_fork, 64);
NETWHO_ASSERT_SIZE(netwho_exit, 80);
NETWHO_ASSERT_SIZE(netwho_cgroup_mkdir, 288);
NETWHO_ASSERT_SIZE(netwho_scope, 40);
NETWHO_ASSERT_SIZE(netwho_capture_cfg, 16);
NETWHO_ASSERT_SIZE(netwho_capture, 568);
NETWHO_ASSERT_SIZE(netwho_packet, 584);
NETWHO_ASSERT_SIZE(netwho_name, 2104);

#endif /* NETWHO_ABI_H */
