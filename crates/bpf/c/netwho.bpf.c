// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * netwho's kernel sensor.
 *
 * The kernel side aggregates; userspace never sees a per-packet event.
 *   - nw_flows: exact payload per (process, socket, remote), from the
 *     sock_{send,recv}_length tracepoints, which run in the caller's context.
 *   - nw_wire: L3 bytes and packets per (socket, remote), from cgroup_skb.
 *   - nw_events: one ring buffer for lifecycle events only (flow opened,
 *     TCP established/closed, socket released, exec, fork, exit).
 *   - nw_stats: per-CPU counters of everything we could not record.
 *
 * Every hook below states its kernel contract: prototype, first kernel
 * version, and what netwho does when it is missing (the loader refuses to
 * run without the core hooks; see crates/sensor/src/ebpf/hooks.rs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "netwho_abi.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define MSG_PEEK 0x2
#define MSG_ERRQUEUE 0x2000
#define EEXIST 17

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct netwho_sk_info);
} nw_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 131072);
	__type(key, struct netwho_flow_key);
	__type(value, struct netwho_flow_counters);
} nw_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 131072);
	__type(key, struct netwho_wire_key);
	__type(value, struct netwho_wire_counters);
} nw_wire SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} nw_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NETWHO_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} nw_stats SEC(".maps");

/* Keyed by pid_tgid (the thread): at most one datagram in flight per thread. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct netwho_stash);
} nw_send_stash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct netwho_stash);
} nw_recv_stash SEC(".maps");

/*
 * Userspace drains the ring on a short timer; waking it for every event
 * would cost a context switch per connection. Wake it only when the ring
 * is filling up.
 */
#define NETWHO_WAKEUP_BYTES (1 << 20)

static __always_inline __u64 wakeup(void)
{
	return bpf_ringbuf_query(&nw_events, BPF_RB_AVAIL_DATA) > NETWHO_WAKEUP_BYTES ?
		       BPF_RB_FORCE_WAKEUP :
		       BPF_RB_NO_WAKEUP;
}

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&nw_stats, &idx);

	if (v)
		*v += n;
}

/* ::ffff:a.b.c.d from an IPv4 address in network byte order. */
static __always_inline void addr_from_v4(__u8 *dst, __u32 be_addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &be_addr, 4);
}

static __always_inline bool datagram_family(__u16 family)
{
	return family == AF_INET || family == AF_INET6;
}

static __always_inline bool portless(__u16 protocol)
{
	return protocol != IPPROTO_TCP && protocol != IPPROTO_UDP && protocol != IPPROTO_UDPLITE;
}

/* 16 bytes of an in6_addr, as four direct (BTF) loads. */
static __always_inline void copy_v6(__u8 *dst, const __u32 *src)
{
	__u32 w;

	w = src[0];
	__builtin_memcpy(dst, &w, 4);
	w = src[1];
	__builtin_memcpy(dst + 4, &w, 4);
	w = src[2];
	__builtin_memcpy(dst + 8, &w, 4);
	w = src[3];
	__builtin_memcpy(dst + 12, &w, 4);
}

/* The connected remote of a socket (zero if it has none). */
static __always_inline void remote_of_sock(struct sock *sk, __u16 family, __u8 *raddr, __u16 *rport)
{
	*rport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == AF_INET)
		addr_from_v4(raddr, sk->__sk_common.skc_daddr);
	else
		copy_v6(raddr, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32);
}

/* Fill a tuple from a kernel socket (tracing context: BTF pointer). */
static __always_inline void tuple_from_sock(struct sock *sk, struct netwho_tuple *t)
{
	__u16 family = sk->__sk_common.skc_family;

	t->family = family;
	t->sock_type = sk->sk_type;
	t->state = sk->__sk_common.skc_state;
	t->netns = sk->__sk_common.skc_net.net->ns.inum;
	if (family == AF_PACKET) {
		t->protocol = 0;
		return;
	}
	t->protocol = sk->sk_protocol;
	t->lport = sk->__sk_common.skc_num;
	remote_of_sock(sk, family, t->raddr, &t->rport);
	if (family == AF_INET) {
		addr_from_v4(t->laddr, sk->__sk_common.skc_rcv_saddr);
	} else {
		copy_v6(t->laddr, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
	}
}

static __always_inline bool addr_is_zero(const __u8 *a)
{
	__u64 hi, lo;

	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&lo, a + 8, 8);
	/* :: and ::ffff:0.0.0.0 are both "unspecified" */
	return hi == 0 && (lo == 0 || lo == 0x00000000ffff0000ULL);
}

/* The process context of the caller, for flow open events. */
static __always_inline void fill_owner(struct netwho_flow_open *ev)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_struct *leader = task->group_leader;

	ev->proc_start_ns = leader->start_boottime;
	ev->uid = task->cred->euid.val;
	ev->gid = task->cred->egid.val;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	bpf_probe_read_kernel_str(ev->comm, sizeof(ev->comm), leader->comm);
}

static __always_inline __u8 tcp_direction(const struct netwho_sk_info *info)
{
	if (!info)
		return NETWHO_DIR_UNKNOWN;
	if (info->flags & NETWHO_SK_INBOUND)
		return NETWHO_DIR_INBOUND;
	if (info->flags & NETWHO_SK_OUTBOUND)
		return NETWHO_DIR_OUTBOUND;
	return NETWHO_DIR_UNKNOWN;
}

static __always_inline bool same_remote(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;

	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

/*
 * Note a new flow of this socket in its storage, so the close event can
 * carry its final counters. Two CPUs racing for a slot can lose one: that
 * flow is then finalized by userspace, which reads what the event lacks.
 */
static __always_inline void remember_owner(struct netwho_sk_info *info,
					   const struct netwho_flow_key *key)
{
	int i;

	for (i = 0; i < NETWHO_MAX_OWNERS; i++) {
		struct netwho_owner *o = &info->owners[i];

		if (o->tgid == 0) {
			o->rport = key->rport;
			__builtin_memcpy(o->raddr, key->raddr, NETWHO_ADDR_LEN);
			o->tgid = key->tgid;
			return;
		}
		if (o->tgid == key->tgid && o->rport == key->rport && same_remote(o->raddr, key->raddr))
			return;
	}
	if (!(info->flags & NETWHO_SK_OWNERS_FULL))
		__sync_fetch_and_or(&info->flags, NETWHO_SK_OWNERS_FULL);
}

/*
 * The socket is gone: emit its close event with the final counters of the
 * flows it remembers, taking their entries out of the maps. The event is
 * reserved first, so an entry re-created by a straggling send after we
 * took it out is announced after this event, and userspace finalizes it.
 */
static __always_inline void close_socket(__u64 cookie, struct netwho_sk_info *info,
					 int oldstate, int newstate)
{
	struct netwho_sock_close *ev;
	int i, j;

	__sync_fetch_and_or(&info->flags, NETWHO_SK_CLOSED);
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		/* userspace never hears of the close: the entries stay until
		 * their process exits or a scan finds them idle */
		stat_add(NETWHO_STAT_RINGBUF_DROPS, 1);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->hdr.kind = NETWHO_EV_SOCK_CLOSE;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->cookie = cookie;
	ev->old_state = oldstate;
	ev->new_state = newstate;
	ev->overflow = (info->flags & NETWHO_SK_OWNERS_FULL) ? 1 : 0;

	for (i = 0; i < NETWHO_MAX_OWNERS; i++) {
		struct netwho_owner *o = &info->owners[i];
		struct netwho_final_flow *f = &ev->flows[i];
		struct netwho_final_wire *w = &ev->wires[i];
		struct netwho_flow_key key = {};
		struct netwho_wire_key wkey = {};
		struct netwho_flow_counters *c;
		struct netwho_wire_counters *wc;
		bool dup = false;

		if (o->tgid == 0)
			break;
		key.cookie = cookie;
		key.tgid = o->tgid;
		key.rport = o->rport;
		__builtin_memcpy(key.raddr, o->raddr, NETWHO_ADDR_LEN);
		f->tgid = o->tgid;
		f->rport = o->rport;
		__builtin_memcpy(f->raddr, o->raddr, NETWHO_ADDR_LEN);
		c = bpf_map_lookup_elem(&nw_flows, &key);
		if (c) {
			f->bytes_sent = c->bytes_sent;
			f->bytes_recv = c->bytes_recv;
			f->found = 1;
			bpf_map_delete_elem(&nw_flows, &key);
		}

		/* the wire counters of this remote, if no earlier owner had it */
		for (j = 0; j < i; j++) {
			if (info->owners[j].rport == o->rport &&
			    same_remote(info->owners[j].raddr, o->raddr))
				dup = true;
		}
		if (dup)
			continue;
		wkey.cookie = cookie;
		wkey.rport = o->rport;
		__builtin_memcpy(wkey.raddr, o->raddr, NETWHO_ADDR_LEN);
		w->rport = o->rport;
		__builtin_memcpy(w->raddr, o->raddr, NETWHO_ADDR_LEN);
		wc = bpf_map_lookup_elem(&nw_wire, &wkey);
		if (wc) {
			w->bytes_sent = wc->bytes_sent;
			w->bytes_recv = wc->bytes_recv;
			w->packets_sent = wc->packets_sent;
			w->packets_recv = wc->packets_recv;
			__builtin_memcpy(w->laddr, wc->laddr, NETWHO_ADDR_LEN);
			w->lport = wc->lport;
			w->found = 1;
			bpf_map_delete_elem(&nw_wire, &wkey);
		}
	}
	bpf_ringbuf_submit(ev, wakeup());
}

static __always_inline void add_payload(struct netwho_flow_counters *c, __u64 sent, __u64 recv)
{
	if (sent) {
		__sync_fetch_and_add(&c->bytes_sent, sent);
		__sync_fetch_and_add(&c->sends, 1);
	}
	if (recv) {
		__sync_fetch_and_add(&c->bytes_recv, recv);
		__sync_fetch_and_add(&c->recvs, 1);
	}
}

/*
 * Create the (current process, socket, remote) entry with its first
 * payload and emit FLOW_OPEN; if another CPU created it first, add to it.
 * Process context only: the owner is the current task.
 */
static __always_inline void open_flow(struct netwho_flow_key *key, struct netwho_tuple *t,
				      struct netwho_sk_info *info, __u64 sent, __u64 recv,
				      __u8 origin)
{
	struct netwho_flow_counters *c, fresh = {};
	struct netwho_flow_open *ev;
	__u64 now = bpf_ktime_get_boot_ns();
	long err;

	fresh.bytes_sent = sent;
	fresh.bytes_recv = recv;
	fresh.sends = sent ? 1 : 0;
	fresh.recvs = recv ? 1 : 0;
	fresh.created_ns = now;
	err = bpf_map_update_elem(&nw_flows, key, &fresh, BPF_NOEXIST);
	if (err == -EEXIST) {
		c = bpf_map_lookup_elem(&nw_flows, key);
		if (c)
			add_payload(c, sent, recv);
		else
			stat_add(NETWHO_STAT_BYTES_LOST, sent + recv);
		return;
	}
	if (err) {
		stat_add(NETWHO_STAT_FLOWS_FULL, 1);
		stat_add(NETWHO_STAT_BYTES_LOST, sent + recv);
		return;
	}
	if (info) {
		__sync_fetch_and_or(&info->flags, NETWHO_SK_FLOW_SEEN);
		remember_owner(info, key);
	}

	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		stat_add(NETWHO_STAT_RINGBUF_DROPS, 1);
		return;
	}
	ev->hdr.kind = NETWHO_EV_FLOW_OPEN;
	ev->hdr._pad = 0;
	ev->hdr.ts_ns = now;
	ev->key = *key;
	ev->tuple = *t;
	ev->origin = origin;
	if (t->sock_type == SOCK_STREAM)
		ev->direction = tcp_direction(info);
	else
		ev->direction = origin == NETWHO_ORIGIN_RECV ? NETWHO_DIR_INBOUND : NETWHO_DIR_OUTBOUND;
	ev->sk_flags = info ? (__u8)info->flags : 0;
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	fill_owner(ev);
	bpf_ringbuf_submit(ev, wakeup());
}

/*
 * Payload of one send or recv call. The key is built from a few direct
 * loads; an existing entry takes the bytes at once (the common case).
 * Only a new flow pays for the full tuple, the socket storage and an event.
 *
 * For connected sockets the remote is on the socket; for unconnected
 * datagram sockets it comes from the per-thread stash left by the hook
 * that saw the address (cgroup/sendmsg*, cgroup/recvmsg*,
 * skb_copy_datagram_iovec) or, for raw and ICMP sends, from the last
 * packet the socket sent.
 */
static __always_inline void on_payload(struct sock *sk, int ret, bool is_send)
{
	struct netwho_flow_key key = {};
	struct netwho_flow_counters *c;
	struct netwho_stash stash = {};
	struct netwho_sk_info *info = NULL;
	struct netwho_tuple t = {};
	bool datagram, connected, have_stash = false;
	__u16 family, sock_type, protocol;
	__u64 id;

	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6 && family != AF_PACKET)
		return;
	sock_type = sk->sk_type;
	datagram = family != AF_PACKET && sock_type != SOCK_STREAM;
	connected = sk->__sk_common.skc_state == TCP_ESTABLISHED;
	id = bpf_get_current_pid_tgid();
	key.cookie = bpf_get_socket_cookie(sk);
	key.tgid = id >> 32;

	if (datagram) {
		/* always consume this thread's stash, so it never goes stale */
		void *stash_map = is_send ? (void *)&nw_send_stash : (void *)&nw_recv_stash;
		struct netwho_stash *st = bpf_map_lookup_elem(stash_map, &id);

		if (st) {
			stash = *st;
			have_stash = stash.cookie == 0 || stash.cookie == key.cookie;
			bpf_map_delete_elem(stash_map, &id);
		}
	}

	if (ret <= 0) {
		/*
		 * No payload. An accepted TCP socket that the server reads only
		 * to find EOF (or EAGAIN) still tells us who accepted it: open
		 * its flow once, with zero bytes.
		 */
		if (is_send || sock_type != SOCK_STREAM || family == AF_PACKET)
			return;
		info = bpf_sk_storage_get(&nw_sk, sk, 0, 0);
		if (!info || !(info->flags & NETWHO_SK_INBOUND) || (info->flags & NETWHO_SK_FLOW_SEEN))
			return;
		tuple_from_sock(sk, &t);
		__builtin_memcpy(key.raddr, t.raddr, NETWHO_ADDR_LEN);
		key.rport = t.rport;
		open_flow(&key, &t, info, 0, 0, NETWHO_ORIGIN_RECV);
		return;
	}
	stat_add(NETWHO_STAT_PAYLOAD_CALLS, 1);

	protocol = family == AF_PACKET ? 0 : sk->sk_protocol;
	if (family == AF_PACKET) {
		/* no remote */
	} else if (!datagram || connected) {
		remote_of_sock(sk, family, key.raddr, &key.rport);
	} else if (have_stash) {
		__builtin_memcpy(key.raddr, stash.raddr, NETWHO_ADDR_LEN);
		key.rport = stash.rport;
	} else if (is_send && (info = bpf_sk_storage_get(&nw_sk, sk, 0, 0)) &&
		   (info->flags & NETWHO_SK_LAST_REMOTE)) {
		__builtin_memcpy(key.raddr, info->last_raddr, NETWHO_ADDR_LEN);
		key.rport = info->last_rport;
	} else {
		stat_add(NETWHO_STAT_REMOTE_UNKNOWN, 1);
	}
	if (family == AF_PACKET || portless(protocol))
		key.rport = 0;

	c = bpf_map_lookup_elem(&nw_flows, &key);
	if (c) {
		add_payload(c, is_send ? (__u64)ret : 0, is_send ? 0 : (__u64)ret);
		return;
	}

	/* a new flow */
	tuple_from_sock(sk, &t);
	__builtin_memcpy(t.raddr, key.raddr, NETWHO_ADDR_LEN);
	t.rport = key.rport;
	if (have_stash && datagram && !connected) {
		if (addr_is_zero(t.laddr) && !addr_is_zero(stash.laddr))
			__builtin_memcpy(t.laddr, stash.laddr, NETWHO_ADDR_LEN);
		if (stash.lport)
			t.lport = stash.lport;
	}
	info = bpf_sk_storage_get(&nw_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!info)
		stat_add(NETWHO_STAT_STORAGE_FAIL, 1);
	open_flow(&key, &t, info, is_send ? (__u64)ret : 0, is_send ? 0 : (__u64)ret,
		  is_send ? NETWHO_ORIGIN_SEND : NETWHO_ORIGIN_RECV);
}

/*
 * tp_btf/sock_send_length(struct sock *sk, int ret, int flags): absent in
 * Linux 6.2, present in 6.5 (DepSurf's survey of distribution kernels).
 * Fires in sock_sendmsg_nosec() after every protocol sendmsg, in the
 * caller's context: write(), send*(), sendmmsg (per message), io_uring,
 * sendfile/splice. Missing: netwho refuses to start (no exact payload).
 */
SEC("tp_btf/sock_send_length")
int BPF_PROG(nw_sock_send, struct sock *sk, int ret, int flags)
{
	if (sk)
		on_payload(sk, ret, true);
	return 0;
}

/*
 * tp_btf/sock_recv_length(struct sock *sk, int ret, int flags), as above.
 * Same place on the receive side. MSG_PEEK reads are not consumption and
 * MSG_ERRQUEUE reads are ICMP errors, not payload: both skipped.
 */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(nw_sock_recv, struct sock *sk, int ret, int flags)
{
	if (!sk)
		return 0;
	if (flags & (MSG_PEEK | MSG_ERRQUEUE)) {
		__u64 id = bpf_get_current_pid_tgid();

		bpf_map_delete_elem(&nw_recv_stash, &id);
		return 0;
	}
	on_payload(sk, ret, false);
	return 0;
}

/*
 * tp_btf/skb_copy_datagram_iovec(const struct sk_buff *skb, int len), 5.5+.
 * Fires when a datagram is copied to the reader, in the reader's context,
 * just before sock_recv_length. Gives the source of a datagram read with
 * recv()/read() (no address asked for). Missing: unconnected datagram
 * receives are counted with an unknown remote (stat REMOTE_UNKNOWN).
 */
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(nw_dgram_copy, const struct sk_buff *skb, int len)
{
	struct netwho_stash st = {};
	struct sock *sk = skb->sk;
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u16 th = skb->transport_header;
	__u8 first = 0, protocol = 0;
	__u16 ports[2] = {};
	__u64 id;

	if (sk && sk->sk_type == SOCK_STREAM)
		return 0;
	if (bpf_probe_read_kernel(&first, 1, head + nh))
		return 0;
	if ((first >> 4) == 4) {
		struct iphdr iph;

		if (bpf_probe_read_kernel(&iph, sizeof(iph), head + nh))
			return 0;
		addr_from_v4(st.raddr, iph.saddr);
		addr_from_v4(st.laddr, iph.daddr);
		protocol = iph.protocol;
	} else if ((first >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return 0;
		__builtin_memcpy(st.raddr, &ip6.saddr, NETWHO_ADDR_LEN);
		__builtin_memcpy(st.laddr, &ip6.daddr, NETWHO_ADDR_LEN);
		protocol = ip6.nexthdr;
	} else {
		return 0;
	}
	/* TCP receive-queue skbs need not carry skb->sk: the protocol tells */
	if (protocol == IPPROTO_TCP)
		return 0;
	if (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE) {
		if (bpf_probe_read_kernel(ports, sizeof(ports), head + th))
			return 0;
		st.rport = bpf_ntohs(ports[0]);
		st.lport = bpf_ntohs(ports[1]);
	}
	id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&nw_recv_stash, &id, &st, BPF_ANY);
	return 0;
}

static __always_inline void emit_state(struct sock *sk, int oldstate, int newstate)
{
	struct netwho_sock_state *ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);

	if (!ev) {
		stat_add(NETWHO_STAT_RINGBUF_DROPS, 1);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->hdr.kind = NETWHO_EV_SOCK_STATE;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->cookie = bpf_get_socket_cookie(sk);
	tuple_from_sock(sk, &ev->tuple);
	ev->tuple.state = newstate;
	ev->old_state = oldstate;
	ev->new_state = newstate;
	bpf_ringbuf_submit(ev, wakeup());
}

/*
 * tp_btf/inet_sock_set_state(const struct sock *sk, int oldstate,
 * int newstate), Linux 4.16+. TCP lifecycle:
 *   SYN_SENT (connect(), process context): the connecting process owns the
 *     outbound flow, opened now even if it never sends a byte;
 *   SYN_RECV -> ESTABLISHED (softirq): an inbound connection; its owner is
 *     whoever reads or writes it first (see on_payload), else the listener;
 *   -> CLOSE: finalize. Not sock_release: data and FIN flow after close().
 * Missing: netwho refuses to start.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(nw_set_state, struct sock *sk, int oldstate, int newstate)
{
	struct netwho_flow_key key = {};
	struct netwho_sk_info *info;
	struct netwho_tuple t = {};

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;

	if (newstate == TCP_SYN_SENT) {
		info = bpf_sk_storage_get(&nw_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!info) {
			stat_add(NETWHO_STAT_STORAGE_FAIL, 1);
		} else {
			__sync_fetch_and_and(&info->flags, ~NETWHO_SK_INBOUND);
			__sync_fetch_and_or(&info->flags, NETWHO_SK_OUTBOUND);
		}
		tuple_from_sock(sk, &t);
		t.state = newstate; /* sk_state still holds the old state here */
		key.cookie = bpf_get_socket_cookie(sk);
		key.tgid = bpf_get_current_pid_tgid() >> 32;
		key.rport = t.rport;
		__builtin_memcpy(key.raddr, t.raddr, NETWHO_ADDR_LEN);
		open_flow(&key, &t, info, 0, 0, NETWHO_ORIGIN_CONNECT);
		return 0;
	}

	if (newstate == TCP_ESTABLISHED) {
		info = bpf_sk_storage_get(&nw_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!info) {
			stat_add(NETWHO_STAT_STORAGE_FAIL, 1);
			return 0;
		}
		if (oldstate == TCP_SYN_RECV) {
			struct netwho_inbound *ev;

			/* the storage was cloned from the listener's (BPF_F_CLONE) */
			info->flags = (info->flags & NETWHO_SK_HOOKED) | NETWHO_SK_INBOUND;
			ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
			if (!ev) {
				stat_add(NETWHO_STAT_RINGBUF_DROPS, 1);
				return 0;
			}
			__builtin_memset(ev, 0, sizeof(*ev));
			ev->hdr.kind = NETWHO_EV_INBOUND;
			ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
			ev->cookie = bpf_get_socket_cookie(sk);
			tuple_from_sock(sk, &ev->tuple);
			ev->tuple.state = newstate;
			ev->owner_tgid = info->owner_tgid;
			ev->owner_uid = info->owner_uid;
			ev->owner_gid = info->owner_gid;
			ev->owner_cgroup = info->owner_cgroup;
			bpf_ringbuf_submit(ev, wakeup());
			return 0;
		}
		/* outbound handshake done: the local port is now final */
		emit_state(sk, oldstate, newstate);
		return 0;
	}

	if (newstate == TCP_CLOSE) {
		info = bpf_sk_storage_get(&nw_sk, sk, 0, 0);
		if (!info)
			return 0; /* never seen traffic on it: nothing to finalize */
		close_socket(bpf_get_socket_cookie(sk), info, oldstate, newstate);
	}
	return 0;
}

/*
 * cgroup/sock_create (struct bpf_sock *), Linux 4.10+ (storage 5.2+).
 * Runs in the creating process for every AF_INET/AF_INET6 socket: records
 * the creator. Attached at the cgroup v2 root, so it covers every process.
 * Missing: netwho refuses to start.
 */
SEC("cgroup/sock_create")
int nw_sock_create(struct bpf_sock *ctx)
{
	struct netwho_sk_info *info;
	__u64 ug;

	if (ctx->family != AF_INET && ctx->family != AF_INET6)
		return 1;
	info = bpf_sk_storage_get(&nw_sk, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!info) {
		stat_add(NETWHO_STAT_STORAGE_FAIL, 1);
		return 1;
	}
	ug = bpf_get_current_uid_gid();
	info->owner_tgid = bpf_get_current_pid_tgid() >> 32;
	info->owner_uid = (__u32)ug;
	info->owner_gid = ug >> 32;
	info->owner_cgroup = bpf_get_current_cgroup_id();
	info->created_ns = bpf_ktime_get_boot_ns();
	info->flags = NETWHO_SK_HOOKED;
	return 1;
}

/*
 * cgroup/sock_release (struct bpf_sock *), Linux 5.9+. The end of a UDP,
 * ICMP or raw socket (TCP ends at TCP_CLOSE instead). Missing: those flows
 * end at process exit or idle timeout.
 */
SEC("cgroup/sock_release")
int nw_sock_release(struct bpf_sock *ctx)
{
	struct netwho_sk_info *info;

	if (ctx->family != AF_INET && ctx->family != AF_INET6)
		return 1;
	if (ctx->protocol == IPPROTO_TCP)
		return 1;
	info = bpf_sk_storage_get(&nw_sk, ctx, 0, 0);
	if (!info)
		return 1;
	close_socket(bpf_get_socket_cookie(ctx), info, ctx->state, NETWHO_STATE_RELEASED);
	return 1;
}

/* Stash the remote a UDP sendmsg/recvmsg hook sees, for this thread's
 * sock_{send,recv}_length a moment later. */
static __always_inline int stash_remote(struct bpf_sock_addr *ctx, void *map, bool v6, bool with_src)
{
	struct netwho_stash st = {};
	__u64 id = bpf_get_current_pid_tgid();

	st.cookie = bpf_get_socket_cookie(ctx);
	if (v6) {
		__u32 w[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2],
			      ctx->user_ip6[3]};

		__builtin_memcpy(st.raddr, w, NETWHO_ADDR_LEN);
	} else {
		addr_from_v4(st.raddr, ctx->user_ip4);
		if (with_src && ctx->msg_src_ip4)
			addr_from_v4(st.laddr, ctx->msg_src_ip4);
	}
	st.rport = bpf_ntohs((__u16)ctx->user_port);
	bpf_map_update_elem(map, &id, &st, BPF_ANY);
	return 1;
}

/*
 * cgroup/sendmsg4 and cgroup/sendmsg6 (struct bpf_sock_addr *), Linux
 * 4.18+. Run inside udp_sendmsg() when the caller names a destination
 * (sendto/sendmsg on an unconnected socket): the remote of the datagram
 * that sock_send_length will count a moment later on this thread.
 * Missing: unconnected UDP sends are counted with an unknown remote.
 */
SEC("cgroup/sendmsg4")
int nw_sendmsg4(struct bpf_sock_addr *ctx)
{
	return stash_remote(ctx, &nw_send_stash, false, true);
}

SEC("cgroup/sendmsg6")
int nw_sendmsg6(struct bpf_sock_addr *ctx)
{
	return stash_remote(ctx, &nw_send_stash, true, false);
}

/*
 * cgroup/recvmsg4 and cgroup/recvmsg6 (struct bpf_sock_addr *), Linux
 * 5.2+. Run inside udp_recvmsg() when the reader asks for the sender's
 * address (recvfrom/recvmsg, what every UDP server does): the source of the
 * datagram sock_recv_length will count a moment later on this thread.
 * (Linear UDP skbs are copied without skb_copy_datagram_iovec, so that hook
 * alone misses them.) Missing: unconnected UDP receives are counted with an
 * unknown remote.
 */
SEC("cgroup/recvmsg4")
int nw_recvmsg4(struct bpf_sock_addr *ctx)
{
	return stash_remote(ctx, &nw_recv_stash, false, false);
}

SEC("cgroup/recvmsg6")
int nw_recvmsg6(struct bpf_sock_addr *ctx)
{
	return stash_remote(ctx, &nw_recv_stash, true, false);
}

/*
 * cgroup_skb/egress and cgroup_skb/ingress (struct __sk_buff *), Linux
 * 4.10+. Wire bytes (L3 header + payload, GSO super-packets counted as the
 * segments they stand for) and packets per (socket, remote). Softirq on
 * ingress: never the current task here, only the socket. Missing: wire
 * bytes and packets stay zero and status says so.
 */
/* Read `len` bytes at `off` of the packet: directly when the linear part
 * holds them (the common case), else through the helper. */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (data + off + len <= end) {
		if (len == 40)
			__builtin_memcpy(to, data + off, 40);
		else if (len == 20)
			__builtin_memcpy(to, data + off, 20);
		else if (len == 4)
			__builtin_memcpy(to, data + off, 4);
		else if (len == 1)
			__builtin_memcpy(to, data + off, 1);
		else
			return bpf_skb_load_bytes(skb, off, to, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

static __always_inline int on_skb(struct __sk_buff *skb, bool egress)
{
	struct netwho_wire_key key = {};
	struct netwho_wire_counters *c, fresh = {};
	struct netwho_sk_info *info;
	struct bpf_sock *bsk = skb->sk;
	__u8 laddr[NETWHO_ADDR_LEN] = {};
	__u8 protocol = 0;
	__u32 l3len = 0, l4len = 0, segs;
	__u16 ports[2] = {};
	__u16 lport = 0;
	__u64 bytes;

	if (!bsk) {
		stat_add(NETWHO_STAT_WIRE_NO_SOCK, 1);
		return 1;
	}
	bsk = bpf_sk_fullsock(bsk);
	if (!bsk) {
		stat_add(NETWHO_STAT_WIRE_NO_SOCK, 1);
		return 1;
	}
	if (bsk->state == BPF_TCP_LISTEN) {
		/* handshakes on a listener: one entry per client would never be
		 * reclaimed; the child socket counts from ESTABLISHED on */
		stat_add(NETWHO_STAT_WIRE_HANDSHAKE, 1);
		return 1;
	}
	/*
	 * Only sockets we know: created under cgroup/sock_create, or older
	 * ones once a process moved payload through them. Kernel control
	 * sockets (TCP resets, ICMP replies) have no owner and no storage.
	 */
	info = bpf_sk_storage_get(&nw_sk, bsk, 0, 0);
	if (!info) {
		stat_add(NETWHO_STAT_WIRE_NO_SOCK, 1);
		return 1;
	}
	if (info->flags & NETWHO_SK_CLOSED) {
		stat_add(NETWHO_STAT_WIRE_AFTER_CLOSE, 1);
		return 1;
	}

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr iph;

		if (load(skb, 0, &iph, sizeof(iph)))
			return 1;
		l3len = iph.ihl * 4;
		protocol = iph.protocol;
		addr_from_v4(key.raddr, egress ? iph.daddr : iph.saddr);
		addr_from_v4(laddr, egress ? iph.saddr : iph.daddr);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (load(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		l3len = sizeof(ip6);
		protocol = ip6.nexthdr;
		__builtin_memcpy(key.raddr, egress ? (void *)&ip6.daddr : (void *)&ip6.saddr,
				 NETWHO_ADDR_LEN);
		__builtin_memcpy(laddr, egress ? (void *)&ip6.saddr : (void *)&ip6.daddr,
				 NETWHO_ADDR_LEN);
	} else {
		return 1;
	}
	if (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE) {
		if (load(skb, l3len, ports, sizeof(ports)))
			return 1;
		key.rport = bpf_ntohs(egress ? ports[1] : ports[0]);
		lport = bpf_ntohs(egress ? ports[0] : ports[1]);
		if (protocol == IPPROTO_TCP) {
			__u8 doff = 0;

			if (!load(skb, l3len + 12, &doff, 1))
				l4len = (doff >> 4) * 4;
		} else {
			l4len = 8;
		}
	}

	segs = skb->gso_segs;
	if (segs < 1)
		segs = 1;
	bytes = skb->len;
	if (segs > 1)
		bytes += (__u64)(segs - 1) * (l3len + l4len);
	key.cookie = bpf_get_socket_cookie(skb);
	stat_add(NETWHO_STAT_PACKETS, segs);

	if (egress && bsk->type != SOCK_STREAM) {
		__builtin_memcpy(info->last_raddr, key.raddr, NETWHO_ADDR_LEN);
		info->last_rport = portless(protocol) ? 0 : key.rport;
		if (!(info->flags & NETWHO_SK_LAST_REMOTE))
			__sync_fetch_and_or(&info->flags, NETWHO_SK_LAST_REMOTE);
	}

	c = bpf_map_lookup_elem(&nw_wire, &key);
	if (c) {
		if (egress) {
			__sync_fetch_and_add(&c->bytes_sent, bytes);
			__sync_fetch_and_add(&c->packets_sent, segs);
		} else {
			__sync_fetch_and_add(&c->bytes_recv, bytes);
			__sync_fetch_and_add(&c->packets_recv, segs);
		}
		return 1;
	}
	if (egress) {
		fresh.bytes_sent = bytes;
		fresh.packets_sent = segs;
	} else {
		fresh.bytes_recv = bytes;
		fresh.packets_recv = segs;
	}
	fresh.created_ns = bpf_ktime_get_boot_ns();
	__builtin_memcpy(fresh.laddr, laddr, NETWHO_ADDR_LEN);
	fresh.lport = lport;
	if (bpf_map_update_elem(&nw_wire, &key, &fresh, BPF_NOEXIST) == -EEXIST) {
		c = bpf_map_lookup_elem(&nw_wire, &key);
		if (c) {
			__sync_fetch_and_add(egress ? &c->bytes_sent : &c->bytes_recv, bytes);
			__sync_fetch_and_add(egress ? &c->packets_sent : &c->packets_recv, segs);
		}
	} else if (!bpf_map_lookup_elem(&nw_wire, &key)) {
		stat_add(NETWHO_STAT_WIRE_FULL, 1);
	}
	return 1;
}

SEC("cgroup_skb/egress")
int nw_skb_egress(struct __sk_buff *skb)
{
	return on_skb(skb, true);
}

SEC("cgroup_skb/ingress")
int nw_skb_ingress(struct __sk_buff *skb)
{
	return on_skb(skb, false);
}

/*
 * tp_btf/sched_process_exec(struct task_struct *p, pid_t old_pid,
 * struct linux_binprm *bprm), Linux 5.5+ (tp_btf). Captures comm, the
 * executed path and argv while the process exists, so a process that lives
 * 1 ms is still named. Missing: netwho refuses to start.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(nw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct netwho_exec *ev;
	struct mm_struct *mm;
	unsigned long arg_start, arg_end, len;
	long n;

	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		stat_add(NETWHO_STAT_RINGBUF_DROPS, 1);
		return 0;
	}
	ev->hdr.kind = NETWHO_EV_EXEC;
	ev->hdr._pad = 0;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->tgid = p->tgid;
	ev->ppid = p->real_parent->tgid;
	ev->uid = p->cred->euid.val;
	ev->gid = p->cred->egid.val;
	ev->start_ns = p->group_leader->start_boottime;
	ev->parent_start_ns = p->real_parent->group_leader->start_boottime;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->_pad = 0;
	bpf_probe_read_kernel_str(ev->comm, sizeof(ev->comm), p->comm);
	n = bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename), bprm->filename);
	ev->filename_len = n > 0 ? n : 0;

	mm = p->mm;
	arg_start = BPF_CORE_READ(mm, arg_start);
	arg_end = BPF_CORE_READ(mm, arg_end);
	len = arg_end > arg_start ? arg_end - arg_start : 0;
	ev->args_truncated = len > NETWHO_ARGS_LEN - 1;
	if (len > NETWHO_ARGS_LEN - 1)
		len = NETWHO_ARGS_LEN - 1;
	len &= NETWHO_ARGS_LEN - 1;
	if (len == 0 || bpf_probe_read_user(ev->args, len, (void *)arg_start))
		len = 0;
	ev->args_len = len;
	bpf_ringbuf_submit(ev, wakeup());
	return 0;
}

/*
 * tp_btf/sched_process_fork(struct task_struct *parent,
 * struct task_struct *child), Linux 5.5+ (tp_btf). New processes only (not
 * threads): the child inherits the parent's exe and argv until it execs.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(nw_fork, struct task_struct *parent, struct task_struct *child)
{
	struct netwho_fork *ev;

	if (child->pid != child->tgid)
		return 0;
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		stat_add(NETWHO_STAT_RINGBUF_DROPS, 1);
		return 0;
	}
	ev->hdr.kind = NETWHO_EV_FORK;
	ev->hdr._pad = 0;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->parent_tgid = parent->tgid;
	ev->child_tgid = child->tgid;
	ev->parent_start_ns = parent->group_leader->start_boottime;
	ev->child_start_ns = child->start_boottime;
	ev->uid = child->cred->euid.val;
	ev->gid = child->cred->egid.val;
	bpf_probe_read_kernel_str(ev->comm, sizeof(ev->comm), child->comm);
	bpf_ringbuf_submit(ev, wakeup());
	return 0;
}

/*
 * tp_btf/sched_process_exit(struct task_struct *p), Linux 5.5+ (tp_btf;
 * 6.16 added a group_dead argument, which we do not rely on: do_exit() has
 * already decremented signal->live when the tracepoint fires, so live == 0
 * means this is the last thread). The process is gone: its flows can take
 * no more bytes.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(nw_exit, struct task_struct *p)
{
	struct netwho_exit *ev;

	if (p->signal->live.counter != 0)
		return 0;
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		stat_add(NETWHO_STAT_RINGBUF_DROPS, 1);
		return 0;
	}
	ev->hdr.kind = NETWHO_EV_EXIT;
	ev->hdr._pad = 0;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->tgid = p->tgid;
	ev->exit_code = p->exit_code;
	ev->start_ns = p->group_leader->start_boottime;
	bpf_ringbuf_submit(ev, wakeup());
	return 0;
}
