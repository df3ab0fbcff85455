/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * netwho_flows.h: sockets and flows. Addresses and tuples read from kernel
 * sockets, the flows a socket remembers, opening a flow (its entry and its
 * event), counting a send or receive, and finalizing a socket into its
 * close event. Included once, by netwho.bpf.c, after netwho_maps.h.
 */
#ifndef NETWHO_FLOWS_H
#define NETWHO_FLOWS_H

/* ::ffff:a.b.c.d from an IPv4 address in network byte order. */
static __always_inline void addr_from_v4(__u8 *dst, __u32 be_addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &be_addr, 4);
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
		if (sk_out_decide(info, IPPROTO_TCP))
			return;
		tuple_from_sock(sk, &t);
		__builtin_memcpy(key.raddr, t.raddr, NETWHO_ADDR_LEN);
		key.rport = t.rport;
		open_flow(&key, &t, info, 0, 0, NETWHO_ORIGIN_RECV);
		return;
	}
	if (scope_get()) {
		/* out of scope: one storage lookup, nothing counted */
		info = bpf_sk_storage_get(&nw_sk, sk, 0, 0);
		if (sk_out(info))
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
	/* a socket older than netwho is decided by its first user */
	if (sk_out_decide(info, protocol))
		return;
	/* a datagram socket's other remotes may still be in scope */
	if (ports_out(datagram ? NULL : info, t.lport, t.rport))
		return;
	open_flow(&key, &t, info, is_send ? (__u64)ret : 0, is_send ? 0 : (__u64)ret,
		  is_send ? NETWHO_ORIGIN_SEND : NETWHO_ORIGIN_RECV);
}

#endif /* NETWHO_FLOWS_H */
