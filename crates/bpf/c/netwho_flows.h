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

/* One uid's use of nw_flows, made when it is first needed. */
static __always_inline struct netwho_uid_use *uid_use(__u32 uid)
{
	struct netwho_uid_use *u = bpf_map_lookup_elem(&nw_uid, &uid);

	if (!u) {
		struct netwho_uid_use zero = {};

		bpf_map_update_elem(&nw_uid, &uid, &zero, BPF_NOEXIST);
		u = bpf_map_lookup_elem(&nw_uid, &uid);
	}
	return u;
}

/* An entry of `uid`'s was deleted by the kernel side (a flow entry, or a
 * wire entry). */
static __always_inline void uid_freed(__u32 uid, bool wire)
{
	struct netwho_uid_use *u = bpf_map_lookup_elem(&nw_uid, &uid);

	if (u)
		__sync_fetch_and_add(wire ? &u->wire_freed : &u->freed, 1);
}

/* Whether `uid` holds its share of nw_flows (or of nw_wire) already: then
 * its new flows are counted on their sockets (its new remotes get no wire
 * entry), so that no uid can take the maps from others. */
static __always_inline bool over_share(struct netwho_uid_use *u, __u32 uid, bool wire)
{
	__u32 zero = 0;
	struct netwho_limits *l = bpf_map_lookup_elem(&nw_limits, &zero);
	struct netwho_uid_freed *by_user;
	__s64 held;

	if (!l || !l->flows_per_uid || !u)
		return false;
	held = wire ? (__s64)(u->wire_made - u->wire_freed) : (__s64)(u->made - u->freed);
	if (held < (__s64)l->flows_per_uid)
		return false; /* under it even before what userspace freed */
	by_user = bpf_map_lookup_elem(&nw_uid_freed, &uid);
	if (by_user)
		held -= (__s64)(wire ? by_user->wire : by_user->flows);
	return held >= (__s64)l->flows_per_uid;
}

/*
 * The bytes a TCP socket's application took from its receive queue, by
 * any path: recv() (counted by the payload hooks too), but also splice(),
 * TCP_ZEROCOPY_RECEIVE and the like, which bypass sock_recvmsg. The data
 * received in order, less what is still unread (copied_seq trails rcv_nxt
 * by it). A received FIN (SOCK_DONE, set by tcp_fin only) is one unit of
 * sequence space in bytes_received and, once read, in copied_seq: it is
 * taken out of both. (u64)-1 if not a TCP socket read by its application
 * (a ULP such as kTLS or an MPTCP subflow reads it for the application,
 * whose reads the payload hooks count).
 */
#define NETWHO_SOCK_DONE 1 /* enum sock_flags: SOCK_DEAD 0, SOCK_DONE 1 */
#define NETWHO_NO_APP ((__u64)-1)

/* Linux 6.13 moved sk_flags into sock_common (skc_flags): older kernels' layout. */
struct sock___flags_in_sock {
	unsigned long sk_flags;
} __attribute__((preserve_access_index));

static __always_inline unsigned long sock_flags_of(struct sock *sk)
{
	if (bpf_core_field_exists(sk->__sk_common.skc_flags))
		return BPF_CORE_READ(sk, __sk_common.skc_flags);
	return BPF_CORE_READ((struct sock___flags_in_sock *)sk, sk_flags);
}

/* One load the compiler may not merge or repeat. */
#define NETWHO_READ_ONCE(x) (*(const volatile typeof(x) *)&(x))

/*
 * The receive stream's base, rcv_nxt - bytes_received: constant for a
 * connection (the receive path moves both by the same amount). Learnt where
 * the connection is quiescent: at ESTABLISHED, under its lock.
 */
static __always_inline void learn_rcv_base(struct sock *sk, struct netwho_sk_info *info)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	if (!tp)
		return;
	info->rcv_base = tp->rcv_nxt - (__u32)tp->bytes_received;
	__sync_fetch_and_or(&info->flags, NETWHO_SK_RCV_BASE);
}

static __always_inline __u64 app_received(void *sk, struct netwho_sk_info *info)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	__u64 got, got2;
	__u32 nxt, nxt2, copied, unread, base;
	bool fin;
	int try;

	if (!tp || tp->inet_conn.icsk_ulp_ops)
		return NETWHO_NO_APP;
	/*
	 * Read without the socket's lock: the receive path may move
	 * bytes_received and rcv_nxt (in that order), then set SOCK_DONE for a
	 * FIN, while we read. SOCK_DONE first, then the counters twice: the
	 * same both times, they and copied_seq are one state (a FIN that came
	 * meanwhile changed rcv_nxt). Never settled: unknown this time.
	 */
	for (try = 0; try < 3; try++) {
		fin = (sock_flags_of((struct sock *)tp) >> NETWHO_SOCK_DONE) & 1;
		got = NETWHO_READ_ONCE(tp->bytes_received);
		nxt = NETWHO_READ_ONCE(tp->rcv_nxt);
		copied = NETWHO_READ_ONCE(tp->copied_seq);
		got2 = NETWHO_READ_ONCE(tp->bytes_received);
		nxt2 = NETWHO_READ_ONCE(tp->rcv_nxt);
		if (got == got2 && nxt == nxt2)
			break;
	}
	if (got != got2 || nxt != nxt2)
		return NETWHO_NO_APP;
	/*
	 * The receive path moves bytes_received, then rcv_nxt: both reads can
	 * fall between the two, and the pair then counts a segment (or the
	 * FIN) as taken that is not. The base tells: mid-update, it is off.
	 * A socket not seen established learns the base two reads agree on
	 * (as does one whose base was learnt wrong).
	 */
	base = nxt - (__u32)got;
	if (!(info->flags & NETWHO_SK_RCV_BASE) || base != info->rcv_base) {
		if (base != info->base_cand) {
			info->base_cand = base;
			return NETWHO_NO_APP;
		}
		info->rcv_base = base;
		if (!(info->flags & NETWHO_SK_RCV_BASE))
			__sync_fetch_and_or(&info->flags, NETWHO_SK_RCV_BASE);
	}
	unread = nxt - copied;
	if (fin) {
		/* the FIN is the last unit received: unread if anything is */
		got = got ? got - 1 : 0;
		unread = unread ? unread - 1 : 0;
	}
	return got > unread ? got - unread : 0;
}

/* start_base's answers */
#define NETWHO_START_NOW 0    /* the base is now, the caller's read included */
#define NETWHO_START_SEEDED 1 /* count from the base: claim */
#define NETWHO_START_BUSY 2   /* another caller is setting the base: nothing now */

/*
 * A socket's first count: where it starts. A socket found at start (see
 * nw_start_taken) starts where its readers were then; any other, now.
 *
 * One caller sets the base, elected by the STARTING flag: a recv() on one
 * CPU and an ACK on another may both get here first. Electing by the
 * compare-and-swap of `consumed` alone lost bytes: a seed of 0 makes the
 * seeded base equal to `consumed`, so the seeded start changed nothing a
 * racing start "from now" (which found the seed already deleted) could
 * see, and that one moved the base past the reader's bytes. The loser
 * counts nothing now: what it would have counted stays unclaimed, for the
 * next read, ACK or the close. The base before the APP_BASE flag: whoever
 * sees the flag sees the base.
 */
static __always_inline int start_base(__u64 cookie, struct netwho_sk_info *info, __u64 app)
{
	__u64 *at_start;
	int i;

	if (__sync_fetch_and_or(&info->flags, NETWHO_SK_APP_STARTING) & NETWHO_SK_APP_STARTING)
		return NETWHO_START_BUSY;
	at_start = bpf_map_lookup_elem(&nw_start_taken, &cookie);
	/* until the base is known, consumed sums the reads counted without it
	 * (app_received learns a socket's receive base over two reads): those
	 * are past the start seed, and counted already; such a read may still
	 * add to it meanwhile, hence the atomic updates */
	if (at_start) {
		__u64 seed = *at_start;

		bpf_map_delete_elem(&nw_start_taken, &cookie);
		if (seed + NETWHO_READ_ONCE(info->consumed) <= app) {
			__sync_fetch_and_add(&info->consumed, seed);
			__sync_fetch_and_or(&info->flags, NETWHO_SK_APP_BASE);
			return NETWHO_START_SEEDED;
		}
	}
	for (i = 0; i < 4; i++) {
		__u64 old = NETWHO_READ_ONCE(info->consumed);

		if (old >= app || __sync_val_compare_and_swap(&info->consumed, old, app) == old)
			break;
	}
	__sync_fetch_and_or(&info->flags, NETWHO_SK_APP_BASE);
	return NETWHO_START_NOW;
}

/*
 * Claim what the application took since the last claim, [consumed, app),
 * exactly once: a reader's recv() on one CPU and an ACK that credits the
 * same bytes on another (credit_bypass) race for it; the one whose
 * compare-and-swap moves `consumed` counts those bytes, the other counts
 * what is left (bounded retries: under a storm of claims, what is not
 * claimed now is claimed by the next one, or at close).
 */
static __always_inline __u64 claim(struct netwho_sk_info *info, __u64 app)
{
	int i;

	for (i = 0; i < 4; i++) {
		__u64 old = NETWHO_READ_ONCE(info->consumed);

		if (app <= old)
			return 0;
		if (__sync_val_compare_and_swap(&info->consumed, old, app) == old)
			return app - old;
	}
	return 0;
}

/*
 * What a recv() of `ret` bytes on a TCP socket counts: everything the
 * application took since the socket's flows were last credited. Usually
 * `ret`; more if it spliced since (those bytes are its own too); less if
 * an ACK sent during this very read credited part of it already (see
 * credit_bypass). A socket first seen now starts counting here.
 */
static __always_inline __u64 recv_counts(struct sock *sk, struct netwho_sk_info *info, __u64 ret)
{
	__u64 app = app_received(sk, info), n;

	if (app == NETWHO_NO_APP) {
		/* not known this time: these bytes are credited all the same,
		 * and counted as taken (see start_base) */
		__sync_fetch_and_add(&info->consumed, ret);
		return ret;
	}
	info->reader_tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	if (!(info->flags & NETWHO_SK_APP_BASE)) {
		int start = start_base(bpf_get_socket_cookie(sk), info, app);

		if (start == NETWHO_START_NOW)
			return ret;
		if (start == NETWHO_START_BUSY)
			return 0;
	}
	n = claim(info, app);
	if (n > ret)
		stat_add(NETWHO_STAT_BYPASS_RECV, n - ret);
	else if (n < ret)
		stat_add(NETWHO_STAT_BYPASS_UNDONE, ret - n);
	return n;
}

/* The socket's lock is held by a process: the ACK being sent is that
 * process's, from its read (recv, splice) or its send. */
static __always_inline bool sock_owned_by_task(void *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	return tp && tp->inet_conn.icsk_inet.sk.sk_lock.owned;
}

/*
 * A TCP socket's bytes taken past recv() since its flows were last
 * credited (splice, zero-copy), credited as the socket sends, which it
 * does (ACKs) as its reader takes data. To whom:
 *  - the socket's lock is held: the holder is taking the data (or sending):
 *    its own flow if it has one; none yet (a reader that just inherited the
 *    socket, in its first recv()) — nothing now, its recv() counts it;
 *  - softirq (the current task is anyone): the socket's last reader, which
 *    has its flow; no reader yet — nothing now.
 * Never the socket's first owner by default: a forked child reading its
 * parent's socket gets its bytes, not the parent. Left over: the close event.
 */
static __always_inline void credit_bypass(void *sk, __u64 cookie, struct netwho_sk_info *info)
{
	struct netwho_flow_key key = { .cookie = cookie };
	struct netwho_flow_counters *c;
	__u64 app = app_received(sk, info), n;
	__u32 who;
	bool owned;
	int i;

	if (app == NETWHO_NO_APP)
		return;
	if (!(info->flags & NETWHO_SK_APP_BASE) &&
	    start_base(cookie, info, app) != NETWHO_START_SEEDED)
		return;
	if (app <= info->consumed)
		return;
	owned = sock_owned_by_task(sk);
	/* the task holding the socket's lock is the one reading it; kernels
	 * such as 6.1 do not let cgroup_skb programs ask
	 * which task that is (the loader probes it): the last reader then */
	who = owned && nw_cfg_skb_task ? (__u32)(bpf_get_current_pid_tgid() >> 32)
					       : info->reader_tgid;
	if (!who)
		return;
	for (i = 0; i < NETWHO_MAX_OWNERS; i++) {
		struct netwho_owner *o = &info->owners[i];

		if (o->tgid != who)
			continue;
		key.tgid = o->tgid;
		key.rport = o->rport;
		__builtin_memcpy(key.raddr, o->raddr, NETWHO_ADDR_LEN);
		c = bpf_map_lookup_elem(&nw_flows, &key);
		if (!c)
			continue;
		n = claim(info, app);
		if (n) {
			__sync_fetch_and_add(&c->bytes_recv, n);
			stat_add(NETWHO_STAT_BYPASS_RECV, n);
		}
		info->reader_tgid = who;
		return;
	}
}

/* At a TCP socket's close: what it took past recv() that no flow got. */
static __always_inline __u64 recv_left(struct sock *sk, struct netwho_sk_info *info)
{
	__u64 app = app_received(sk, info);

	/* a closing socket is quiet: a second look settles a receive base the
	 * first one only proposed (a socket older than netwho may never have
	 * had two looks before: its only reads were in flight at start) */
	if (app == NETWHO_NO_APP)
		app = app_received(sk, info);
	if (app == NETWHO_NO_APP)
		return 0;
	/* never counted since netwho started: from its start base, if any */
	if (!(info->flags & NETWHO_SK_APP_BASE) &&
	    start_base(bpf_get_socket_cookie(sk), info, app) != NETWHO_START_SEEDED)
		return 0;
	return claim(info, app);
}

/*
 * The socket is gone: emit its close event with the final counters of the
 * flows it remembers, taking their entries out of the maps, and what its
 * untracked flows moved. The event is reserved first, so an entry
 * re-created by a straggling send after we took it out is announced after
 * this event, and userspace finalizes it. `recv_left`: TCP bytes the
 * application took past recv() that no flow was credited with.
 */
static __always_inline void close_socket(__u64 cookie, struct netwho_sk_info *info,
					 int oldstate, int newstate, __u64 recv_left,
					 __u16 protocol, __u8 sock_type)
{
	struct netwho_sock_close *ev;
	int i, j;

	__sync_fetch_and_or(&info->flags, NETWHO_SK_CLOSED);
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		/* the entries stay; userspace finds the close in nw_lost and
		 * takes them out itself, with the socket's own bytes (no room
		 * there either: the entries wait for their process's exit or a
		 * scan that finds them idle; the socket's own bytes are lost,
		 * and counted) */
		struct netwho_lost lost = {
			.sent = info->ovf_sent,
			.recv = info->ovf_recv + recv_left,
			.tgid = info->ovf_tgid ? info->ovf_tgid : info->owner_tgid,
			.protocol = protocol,
			.sock_type = sock_type,
			.rport = info->ovf_rport,
			.many = info->ovf_many,
			.known = info->ovf_tgid != 0,
		};

		__builtin_memcpy(lost.raddr, info->ovf_raddr, NETWHO_ADDR_LEN);

		ring_drop(NETWHO_STAT_RB_DROP_CLOSE);
		if (!(info->flags & NETWHO_SK_FLOW_SEEN) && !lost.sent && !lost.recv)
			return; /* nothing of it is held (wire entries: a scan frees them) */
		if (!keep_lost(cookie, NETWHO_LOST_CLOSE, &lost))
			stat_add(NETWHO_STAT_BYTES_LOST, lost.sent + lost.recv);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->hdr.kind = NETWHO_EV_SOCK_CLOSE;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->cookie = cookie;
	ev->old_state = oldstate;
	ev->new_state = newstate;
	ev->overflow = (info->flags & NETWHO_SK_OWNERS_FULL) ? 1 : 0;
	ev->protocol = protocol;
	ev->sock_type = sock_type;
	ev->ovf_sent = info->ovf_sent;
	ev->ovf_recv = info->ovf_recv;
	ev->ovf_tgid = info->ovf_tgid ? info->ovf_tgid : info->owner_tgid;
	__builtin_memcpy(ev->ovf_raddr, info->ovf_raddr, NETWHO_ADDR_LEN);
	ev->ovf_rport = info->ovf_rport;
	ev->ovf_many = info->ovf_many;
	ev->ovf_known = info->ovf_tgid != 0;
	ev->recv_left = recv_left;

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
			if (!bpf_map_delete_elem(&nw_flows, &key))
				uid_freed(c->uid, false);
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
			if (!bpf_map_delete_elem(&nw_wire, &wkey))
				uid_freed(wc->uid, true);
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

/* The FLOW_OPEN event of a new flow (its presence), in the caller's context. */
static __always_inline void announce(struct netwho_flow_key *key, struct netwho_tuple *t,
				     struct netwho_sk_info *info, __u8 origin, __u8 flow_flags,
				     __u64 now)
{
	struct netwho_flow_open *ev;

	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		/* a tracked flow's bytes still arrive with a scan (opens_missing) */
		ring_drop(NETWHO_STAT_RB_DROP_OPEN);
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
	ev->flow_flags = flow_flags;
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	fill_owner(ev);
	bpf_ringbuf_submit(ev, wakeup());
}

/*
 * A flow with no entry of its own (its uid holds its share of nw_flows, or
 * the map is full): it is still announced, once (its presence is never
 * lost), and its payload is counted on its socket, which reports it at
 * close. Precision is what is lost: the socket's untracked bytes are not
 * split per remote.
 */
static __always_inline void untracked(struct netwho_flow_key *key, struct netwho_tuple *t,
				      struct netwho_sk_info *info, __u64 sent, __u64 recv,
				      __u8 origin, __u8 why, __u64 now)
{
	__u8 one = 1;

	if (info) {
		if (sent)
			__sync_fetch_and_add(&info->ovf_sent, sent);
		if (recv)
			__sync_fetch_and_add(&info->ovf_recv, recv);
		if (!info->ovf_tgid) {
			info->ovf_tgid = key->tgid;
			__builtin_memcpy(info->ovf_raddr, key->raddr, NETWHO_ADDR_LEN);
			info->ovf_rport = key->rport;
		} else if (!info->ovf_many && (info->ovf_tgid != key->tgid ||
						info->ovf_rport != key->rport ||
						!same_remote(info->ovf_raddr, key->raddr))) {
			info->ovf_many = 1;
		}
	} else {
		stat_add(NETWHO_STAT_BYTES_LOST, sent + recv);
	}
	if (bpf_map_update_elem(&nw_untracked, key, &one, BPF_NOEXIST))
		return; /* announced already */
	stat_add(NETWHO_STAT_UNTRACKED, 1);
	announce(key, t, info, origin, why, now);
}

/*
 * Create the (current process, socket, remote) entry with its first
 * payload and emit FLOW_OPEN; if another CPU created it first, add to it.
 * A uid that holds its share of the map, or a full map, makes an untracked
 * flow instead. Process context only: the owner is the current task.
 */
static __always_inline void open_flow(struct netwho_flow_key *key, struct netwho_tuple *t,
				      struct netwho_sk_info *info, __u64 sent, __u64 recv,
				      __u8 origin)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct netwho_flow_counters *c, fresh = {};
	struct netwho_uid_use *use;
	__u64 now = bpf_ktime_get_boot_ns();
	__u32 uid = task->cred->euid.val;
	long err;

	use = uid_use(uid);
	if (over_share(use, uid, false)) {
		if (use)
			__sync_fetch_and_add(&use->refused, 1);
		untracked(key, t, info, sent, recv, origin, NETWHO_FLOW_UNTRACKED_QUOTA, now);
		return;
	}
	fresh.bytes_sent = sent;
	fresh.bytes_recv = recv;
	fresh.sends = sent ? 1 : 0;
	fresh.recvs = recv ? 1 : 0;
	fresh.created_ns = now;
	fresh.uid = uid;
	fresh.protocol = t->protocol;
	fresh.sock_type = (__u8)t->sock_type;
	fresh.packet = t->family == AF_PACKET;
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
		untracked(key, t, info, sent, recv, origin, NETWHO_FLOW_UNTRACKED_FULL, now);
		return;
	}
	if (use)
		__sync_fetch_and_add(&use->made, 1);
	if (info) {
		__sync_fetch_and_or(&info->flags, NETWHO_SK_FLOW_SEEN);
		remember_owner(info, key);
	}
	announce(key, t, info, origin, 0, now);
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
	__u64 id, amount = ret > 0 ? (__u64)ret : 0;

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
	if (!is_send && sock_type == SOCK_STREAM && family != AF_PACKET) {
		/* a TCP read: with what was taken past recv() since. A socket
		 * older than netwho gets its storage here, at its first read,
		 * so that this read is counted from its start base, like every
		 * later one (not once as a bare read and again from the base) */
		if (!info)
			info = bpf_sk_storage_get(&nw_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (info)
			amount = recv_counts(sk, info, amount);
	}

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
		add_payload(c, is_send ? amount : 0, is_send ? 0 : amount);
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
	open_flow(&key, &t, info, is_send ? amount : 0, is_send ? 0 : amount,
		  is_send ? NETWHO_ORIGIN_SEND : NETWHO_ORIGIN_RECV);
}

#endif /* NETWHO_FLOWS_H */
