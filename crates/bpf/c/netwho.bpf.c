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
 * version, and what netwho does when it is missing: without a core hook it
 * refuses to start and names the hook; without an optional one it runs and
 * says in every status record what it loses (the policy is in
 * crates/sensor/src/ebpf/attach.rs). The maps are in netwho_maps.h; sockets
 * and flows in netwho_flows.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "netwho_abi.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#include "netwho_maps.h"
#include "netwho_scope.h"
#include "netwho_flows.h"

/*
 * tp_btf/sock_send_length(struct sock *sk, int ret, int flags): absent in
 * Linux 6.2, present in 6.5 (DepSurf's survey of distribution kernels).
 * Fires in sock_sendmsg_nosec() after every protocol sendmsg, in the
 * caller's context: write(), send*(), sendmmsg (per message), io_uring,
 * sendfile/splice. Missing: netwho refuses to start (no exact payload).
 */
static __always_inline void on_send(struct sock *sk, int ret)
{
	if (sk)
		on_payload(sk, ret, true);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(nw_sock_send, struct sock *sk, int ret, int flags)
{
	on_send(sk, ret);
	return 0;
}

static __always_inline void on_recv(struct sock *sk, int ret, int flags)
{
	if (!sk)
		return;
	if (flags & (MSG_PEEK | MSG_ERRQUEUE)) {
		__u64 id = bpf_get_current_pid_tgid();

		bpf_map_delete_elem(&nw_recv_stash, &id);
		return;
	}
	on_payload(sk, ret, false);
}

/*
 * tp_btf/sock_recv_length(struct sock *sk, int ret, int flags), as above.
 * Same place on the receive side. MSG_PEEK reads are not consumption and
 * MSG_ERRQUEUE reads are ICMP errors, not payload: both skipped.
 */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(nw_sock_recv, struct sock *sk, int ret, int flags)
{
	on_recv(sk, ret, flags);
	return 0;
}

/*
 * The same two hooks where the tracepoints are missing (before 6.5; the
 * loader picks this path when the kernel's BTF has no
 * btf_trace_sock_send_length): fexit on the protocol operations that
 * sock_sendmsg()/sock_recvmsg() call for IPv4 and IPv6 sockets (called
 * through ops pointers, so never inlined away), in the caller's context,
 * with the same return value the tracepoints see. sendfile()/splice() to a
 * socket go through ->sendpage before 6.5: inet_sendpage, optional (it is
 * gone, with the path, in 6.5). Not covered on this path: AF_PACKET
 * sockets (their operations are in a module); the loader says so in every
 * status record.
 */
SEC("fexit/inet_sendmsg")
int BPF_PROG(nw_fx_send4, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	on_send(sock->sk, ret);
	return 0;
}

SEC("fexit/inet6_sendmsg")
int BPF_PROG(nw_fx_send6, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	on_send(sock->sk, ret);
	return 0;
}

SEC("fexit/inet_sendpage")
int BPF_PROG(nw_fx_sendpage, struct socket *sock, struct page *page, int offset, size_t size,
	     int flags, long ret)
{
	on_send(sock->sk, (int)ret);
	return 0;
}

SEC("fexit/inet_recvmsg")
int BPF_PROG(nw_fx_recv4, struct socket *sock, struct msghdr *msg, size_t size, int flags,
	     int ret)
{
	on_recv(sock->sk, ret, flags);
	return 0;
}

SEC("fexit/inet6_recvmsg")
int BPF_PROG(nw_fx_recv6, struct socket *sock, struct msghdr *msg, size_t size, int flags,
	     int ret)
{
	on_recv(sock->sk, ret, flags);
	return 0;
}

/*
 * tp_btf/skb_copy_datagram_iovec(const struct sk_buff *skb, int len), 5.5+.
 * Fires when a non-linear datagram, or an ICMP or raw one, is copied to the
 * reader, in the reader's context, just before sock_recv_length: its
 * source, even when read with recv()/read(). Missing: ICMP and raw
 * receives are counted without their remote (stat REMOTE_UNKNOWN).
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
		ring_drop(NETWHO_STAT_RB_DROP_OPEN);
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
			if (sk_out_decide(info, IPPROTO_TCP))
				return 0;
			__sync_fetch_and_and(&info->flags, ~NETWHO_SK_INBOUND);
			__sync_fetch_and_or(&info->flags, NETWHO_SK_OUTBOUND);
		}
		tuple_from_sock(sk, &t);
		t.state = newstate; /* sk_state still holds the old state here */
		if (ports_out(info, t.lport, t.rport))
			return 0;
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

			/* the storage was cloned from the listener's (BPF_F_CLONE),
			 * and with it the listener's scope */
			info->flags = (info->flags & (NETWHO_SK_HOOKED | NETWHO_SK_SCOPED |
						      NETWHO_SK_SCOPE_OUT)) |
				      NETWHO_SK_INBOUND | NETWHO_SK_APP_BASE;
			info->consumed = 0;
			learn_rcv_base(sk, info);
			if (sk_out(info) || ports_out(info, sk->__sk_common.skc_num,
						      bpf_ntohs(sk->__sk_common.skc_dport)))
				return 0;
			ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
			if (!ev) {
				ring_drop(NETWHO_STAT_RB_DROP_OPEN);
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
		learn_rcv_base(sk, info);
		/* outbound handshake done: the local port is now final */
		if (!sk_out(info))
			emit_state(sk, oldstate, newstate);
		return 0;
	}

	if (newstate == TCP_CLOSE) {
		info = bpf_sk_storage_get(&nw_sk, sk, 0, 0);
		if (!info || sk_out(info))
			return 0; /* never counted: nothing to finalize */
		close_socket(bpf_get_socket_cookie(sk), info, oldstate, newstate, recv_left(sk, info),
			     IPPROTO_TCP, SOCK_STREAM);
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
	info->flags = NETWHO_SK_HOOKED | NETWHO_SK_APP_BASE; /* nothing read yet */
	scope_decide(info, ctx->protocol);
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
	if (!info || sk_out(info))
		return 1;
	close_socket(bpf_get_socket_cookie(ctx), info, ctx->state, NETWHO_STATE_RELEASED, 0,
		     ctx->protocol, ctx->type);
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

/*
 * Payload capture (`-s SNAPLEN`, off unless nw_capture says otherwise): the
 * first snaplen bytes of each direction of each (socket, remote), as ring
 * records of up to NETWHO_CAPTURE_CHUNK bytes with their stream offset.
 * Userspace puts them in place by offset, so a retransmission or a
 * reordered segment lands where it belongs.
 */
/*
 * Stream offset of a TCP segment's first payload byte, from the socket's
 * own RFC 4898 counters: the bytes received in order stand at rcv_nxt, the
 * bytes the peer acknowledged at snd_una. An active opener's bytes_acked
 * also counts its SYN (acknowledged in SYN_SENT); a passive child starts
 * at snd_una = ISN + 1 with nothing counted. -1: not placeable (no TCP
 * socket, a SYN: fast-open data is not captured).
 */
static __always_inline __s64 tcp_offset(struct __sk_buff *skb, struct bpf_sock *bsk,
					 const struct netwho_sk_info *info, __u32 l3len,
					 bool egress)
{
	struct bpf_tcp_sock *tp = bpf_tcp_sock(bsk);
	__u32 th[4] = {};	/* sequence, acknowledgement, offset and flags */
	__u32 seq;
	__s64 off;

	if (!tp)
		return -1;
	if (bpf_skb_load_bytes(skb, l3len + 4, th, 10))
		return -1;
	if (((__u8 *)th)[9] & 0x02)
		return -1;
	seq = bpf_ntohl(th[0]);
	if (!egress)
		return (__s64)tp->bytes_received + (__s32)(seq - tp->rcv_nxt);
	off = (__s64)tp->bytes_acked + (__s32)(seq - tp->snd_una);
	if (info->flags & NETWHO_SK_OUTBOUND)
		off -= 1;
	return off;
}

static __always_inline void capture(struct __sk_buff *skb, struct bpf_sock *bsk,
				    const struct netwho_sk_info *info,
				    const struct netwho_wire_key *key,
				    struct netwho_wire_counters *c, bool egress, __u8 protocol,
				    __u32 l3len, __u32 l4len, __u32 snaplen)
{
	__u32 hdrlen = l3len + l4len, plen, want, i;
	__s64 off;

	if (skb->len <= hdrlen)
		return;
	plen = skb->len - hdrlen;
	if (protocol == IPPROTO_TCP) {
		off = tcp_offset(skb, bsk, info, l3len, egress);
	} else {
		__u32 *seen;

		if (!c)
			return;
		seen = egress ? &c->cap_sent : &c->cap_recv;
		if (*seen >= snaplen)
			return;
		off = __sync_fetch_and_add(seen, plen);
	}
	if (off < 0 || off >= snaplen)
		return;
	want = snaplen - (__u32)off;
	if (want > plen)
		want = plen;
	for (i = 0; i < NETWHO_CAPTURE_CHUNKS; i++) {
		__u32 done = i * NETWHO_CAPTURE_CHUNK;
		__u64 n;
		struct netwho_capture *ev;

		if (done >= want)
			break;
		/* n - 1 bounded, then + 1: the verifier must see 1..CHUNK. The
		 * mask and the increment are done on the register the call
		 * uses: the 6.1 verifier does not carry a bound learnt on one
		 * register to a 32-bit copy of it (the mask is a no-op here) */
		n = want - done - 1;
		if (n > NETWHO_CAPTURE_CHUNK - 1)
			n = NETWHO_CAPTURE_CHUNK - 1;
		asm volatile("%[n] &= %[mask]\n\t%[n] += 1"
			     : [n] "+r"(n)
			     : [mask] "i"(NETWHO_CAPTURE_CHUNK - 1));
		ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
		if (!ev) {
			stat_add(NETWHO_STAT_CAPTURE_LOST, 1);
			return;
		}
		ev->hdr.kind = NETWHO_EV_CAPTURE;
		ev->hdr._pad = 0;
		ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
		ev->cookie = key->cookie;
		ev->offset = (__u32)off + done;
		ev->len = n;
		ev->rport = key->rport;
		__builtin_memcpy(ev->raddr, key->raddr, NETWHO_ADDR_LEN);
		ev->direction = egress ? 1 : 2;
		ev->protocol = protocol;
		__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
		if (bpf_skb_load_bytes(skb, hdrlen + done, ev->data, n)) {
			bpf_ringbuf_discard(ev, 0);
			stat_add(NETWHO_STAT_CAPTURE_LOST, 1);
			return;
		}
		bpf_ringbuf_submit(ev, 0);
	}
}

/*
 * Packet capture (`netwho pcap`, off unless nw_capture's packet_snaplen
 * says otherwise): each packet of an in-scope socket, from its IP header,
 * up to the snap length, as ring records of up to NETWHO_CAPTURE_CHUNK
 * bytes tied by an id (this CPU's count of captured packets, and the CPU).
 * Packets take at most half the ring (past it they are counted lost, not
 * taken); a packet the ring cannot take whole is counted lost too, and
 * userspace drops the records it has of it.
 */
static __always_inline void capture_packet(struct __sk_buff *skb, const struct netwho_wire_key *key,
					   bool egress, __u8 protocol, __u32 snaplen)
{
	__u32 zero = NETWHO_STAT_PACKETS_CAPTURED, want, i;
	__u64 *seq = bpf_map_lookup_elem(&nw_stats, &zero);
	__u64 id;

	if (!seq)
		return;
	/* packets may fill at most half the ring: the flow and process events
	 * that every record depends on keep the other half */
	if (bpf_ringbuf_query(&nw_events, BPF_RB_AVAIL_DATA) >
	    bpf_ringbuf_query(&nw_events, BPF_RB_RING_SIZE) / 2) {
		stat_add(NETWHO_STAT_PACKETS_LOST, 1);
		*seq += 1;
		return;
	}
	id = ((__u64)bpf_get_smp_processor_id() << 48) | (*seq & 0xffffffffffffULL);
	want = skb->len < snaplen ? skb->len : snaplen;
	if (want > NETWHO_SNAPLEN_MAX)
		want = NETWHO_SNAPLEN_MAX;
	for (i = 0; i < NETWHO_CAPTURE_CHUNKS; i++) {
		__u32 done = i * NETWHO_CAPTURE_CHUNK;
		__u64 n;
		struct netwho_packet *ev;

		if (done >= want)
			break;
		/* 1..CHUNK on the register the call uses (see capture) */
		n = want - done - 1;
		if (n > NETWHO_CAPTURE_CHUNK - 1)
			n = NETWHO_CAPTURE_CHUNK - 1;
		asm volatile("%[n] &= %[mask]\n\t%[n] += 1"
			     : [n] "+r"(n)
			     : [mask] "i"(NETWHO_CAPTURE_CHUNK - 1));
		ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
		if (!ev) {
			stat_add(NETWHO_STAT_PACKETS_LOST, 1);
			goto counted;
		}
		ev->hdr.kind = NETWHO_EV_PACKET;
		ev->hdr._pad = 0;
		ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
		ev->cookie = key->cookie;
		ev->id = id;
		ev->len = skb->len;
		ev->ifindex = skb->ifindex;
		ev->caplen = (__u16)want;
		ev->offset = (__u16)done;
		ev->n = (__u16)n;
		ev->rport = key->rport;
		__builtin_memcpy(ev->raddr, key->raddr, NETWHO_ADDR_LEN);
		ev->direction = egress ? 1 : 2;
		ev->protocol = protocol;
		ev->segs = skb->gso_segs > 1 ? (__u16)skb->gso_segs : 1;
		__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
		if (bpf_skb_load_bytes(skb, done, ev->data, n)) {
			bpf_ringbuf_discard(ev, 0);
			stat_add(NETWHO_STAT_PACKETS_LOST, 1);
			goto counted;
		}
		bpf_ringbuf_submit(ev, 0);
	}
counted:
	/* the id's count moves on whether or not the packet went whole (a
	 * per-CPU slot: nothing else writes it meanwhile) */
	*seq += 1;
}

/*
 * Names (nw_capture's `names`, off unless userspace says otherwise): the
 * payload of the packets that name a flow's remote as its process knew
 * it, one ring record per packet (cut at NETWHO_NAME_SNAP bytes): DNS
 * answers the socket receives from port 53, the first NETWHO_NAME_SNAP
 * bytes of a TCP stream it sends if they begin a TLS handshake record (a
 * ClientHello; offsets from the socket's counters, so a split or resent
 * one is put together in userspace), and the first two long-header
 * datagrams a UDP socket sends to port 443 (QUIC Initials). A socket whose
 * first bytes are not TLS, or that sent past them, is marked and costs one
 * flag test per packet from then on. Like packets, names may fill at most
 * half the ring.
 */
static __always_inline void sk_flag(struct netwho_sk_info *info, __u32 flag)
{
	if (!(info->flags & flag))
		__sync_fetch_and_or(&info->flags, flag);
}

static __always_inline void capture_name(struct __sk_buff *skb, struct bpf_sock *bsk,
					 struct netwho_sk_info *info,
					 const struct netwho_wire_key *key, bool egress,
					 __u8 protocol, __u32 l3len, __u32 l4len, __u32 names)
{
	__u32 hdrlen = l3len + l4len, plen, want;
	struct netwho_name *ev;
	__s64 off = 0;
	__u8 what, first = 0;
	__u64 n;

	if (skb->len <= hdrlen)
		return;
	plen = skb->len - hdrlen;
	if (!egress) {
		if (key->rport != 53 || !(names & NETWHO_NAMES_DNS))
			return;
		if (protocol == IPPROTO_TCP) {
			off = tcp_offset(skb, bsk, info, l3len, false);
			if (off < 0 || off >= NETWHO_NAME_TCP_DNS)
				return;
		} else if (protocol != IPPROTO_UDP) {
			return;
		}
		what = NETWHO_NAME_DNS;
	} else if (protocol == IPPROTO_TCP) {
		if (!(names & NETWHO_NAMES_TLS) || (info->flags & NETWHO_SK_NAMES_DONE))
			return;
		off = tcp_offset(skb, bsk, info, l3len, true);
		if (off < 0)
			return;
		if (off >= NETWHO_NAME_SNAP) {
			sk_flag(info, NETWHO_SK_NAMES_DONE);
			return;
		}
		/* a TLS stream starts with a handshake record (22) */
		if (off == 0 && (load(skb, hdrlen, &first, 1) || first != 22)) {
			sk_flag(info, NETWHO_SK_NAMES_DONE);
			return;
		}
		what = NETWHO_NAME_TLS;
	} else if (protocol == IPPROTO_UDP && key->rport == 443) {
		if (!(names & NETWHO_NAMES_QUIC) || (info->flags & NETWHO_SK_NAMES_DONE))
			return;
		/* a client's Initial is a long-header datagram of 1200 bytes or
		 * more; a short header means the handshake is over */
		if (load(skb, hdrlen, &first, 1))
			return;
		if ((first & 0xc0) != 0xc0) {
			sk_flag(info, NETWHO_SK_NAMES_DONE);
			return;
		}
		if (plen < 1200)
			return;
		sk_flag(info, (info->flags & NETWHO_SK_NAMES_ONE) ? NETWHO_SK_NAMES_DONE :
								     NETWHO_SK_NAMES_ONE);
		what = NETWHO_NAME_QUIC;
	} else {
		return;
	}
	if (bpf_ringbuf_query(&nw_events, BPF_RB_AVAIL_DATA) >
	    bpf_ringbuf_query(&nw_events, BPF_RB_RING_SIZE) / 2) {
		stat_add(NETWHO_STAT_NAMES_LOST, 1);
		return;
	}
	want = plen;
	if (what == NETWHO_NAME_TLS && want > NETWHO_NAME_SNAP - (__u32)off)
		want = NETWHO_NAME_SNAP - (__u32)off;
	/* 1..SNAP on the register the call uses (see capture) */
	n = want - 1;
	if (n > NETWHO_NAME_SNAP - 1)
		n = NETWHO_NAME_SNAP - 1;
	asm volatile("%[n] &= %[mask]\n\t%[n] += 1"
		     : [n] "+r"(n)
		     : [mask] "i"(NETWHO_NAME_SNAP - 1));
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		stat_add(NETWHO_STAT_NAMES_LOST, 1);
		return;
	}
	ev->hdr.kind = NETWHO_EV_NAME;
	ev->hdr._pad = 0;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->cookie = key->cookie;
	ev->offset = (__u32)off;
	ev->len = (__u16)n;
	ev->plen = plen > 0xffff ? 0xffff : (__u16)plen;
	ev->rport = key->rport;
	ev->direction = egress ? 1 : 2;
	ev->protocol = protocol;
	ev->what = what;
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	__builtin_memcpy(ev->raddr, key->raddr, NETWHO_ADDR_LEN);
	if (bpf_skb_load_bytes(skb, hdrlen, ev->data, n)) {
		bpf_ringbuf_discard(ev, 0);
		stat_add(NETWHO_STAT_NAMES_LOST, 1);
		return;
	}
	bpf_ringbuf_submit(ev, 0);
	stat_add(NETWHO_STAT_NAMES, 1);
}

static __always_inline struct netwho_capture_cfg *capture_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&nw_capture, &zero);
}

static __always_inline int on_skb(struct __sk_buff *skb, bool egress)
{
	struct netwho_wire_key key = {};
	struct netwho_capture_cfg *cfg;
	struct netwho_wire_counters *c, fresh = {};
	struct netwho_uid_use *use;
	struct netwho_sk_info *info;
	struct netwho_scope *sc;
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
	if (sk_out(info))
		return 1;

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
		sc = scope_get();
		if (sc && !ports_in_scope(sc, lport, key.rport))
			return 1;
	}

	/* a TCP socket acknowledges as its reader takes data: what it took
	 * past recv() is credited to its flow now, not only at its close
	 * (pure ACKs only: a segment with payload is the sending side's) */
	if (egress && protocol == IPPROTO_TCP && skb->len <= l3len + l4len)
		credit_bypass(bsk, bpf_get_socket_cookie(skb), info);

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
	} else {
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
		fresh.uid = info->owner_uid;
		use = uid_use(fresh.uid);
		if (over_share(use, fresh.uid, true)) {
			/* wire bytes are precision, not presence: this (socket,
			 * remote) goes without them while its uid holds its share */
			if (use)
				__sync_fetch_and_add(&use->wire_refused, 1);
			stat_add(NETWHO_STAT_WIRE_UNTRACKED, 1);
		} else if (bpf_map_update_elem(&nw_wire, &key, &fresh, BPF_NOEXIST) == -EEXIST) {
			c = bpf_map_lookup_elem(&nw_wire, &key);
			if (c) {
				__sync_fetch_and_add(egress ? &c->bytes_sent : &c->bytes_recv, bytes);
				__sync_fetch_and_add(egress ? &c->packets_sent : &c->packets_recv, segs);
			}
		} else {
			c = bpf_map_lookup_elem(&nw_wire, &key);
			if (!c)
				stat_add(NETWHO_STAT_WIRE_FULL, 1);
			else if (use)
				__sync_fetch_and_add(&use->wire_made, 1);
		}
	}
	cfg = capture_cfg();
	if (!cfg)
		return 1;
	if (l4len) {
		if (cfg->names)
			capture_name(skb, bsk, info, &key, egress, protocol, l3len, l4len,
				     cfg->names);
		if (cfg->snaplen)
			capture(skb, bsk, info, &key, c, egress, protocol, l3len, l4len,
				cfg->snaplen);
	}
	if (cfg->packet_snaplen)
		capture_packet(skb, &key, egress, protocol, cfg->packet_snaplen);
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

	if (task_out())
		return 0;
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		ring_drop(NETWHO_STAT_RB_DROP_PROC);
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
	ev->login_uid = (__u32)-1;
	ev->session = (__u32)-1;
	if (bpf_core_field_exists(p->loginuid)) {
		ev->login_uid = BPF_CORE_READ(p, loginuid.val);
		ev->session = BPF_CORE_READ(p, sessionid);
	}
	ev->_pad = 0;
	ev->exe_ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
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
 * Missing: netwho refuses to start.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(nw_fork, struct task_struct *parent, struct task_struct *child)
{
	struct netwho_fork *ev;
	struct netwho_scope *sc;

	if (child->pid != child->tgid)
		return 0;
	sc = scope_get();
	if (sc && sc->follow && (sc->active & NETWHO_SCOPE_PID)) {
		__u32 ptgid = parent->tgid, ctgid = child->tgid;
		__u8 one = 1;

		/* --follow-children: the child of a scoped process is scoped */
		if (bpf_map_lookup_elem(&nw_scope_pid, &ptgid))
			bpf_map_update_elem(&nw_scope_pid, &ctgid, &one, BPF_ANY);
	}
	if (task_out())
		return 0;
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		ring_drop(NETWHO_STAT_RB_DROP_PROC);
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
 * tp_btf/cgroup_mkdir(struct cgroup *cgrp, const char *path), Linux 5.5+
 * (tp_btf; the tracepoint is 4.19+). A new cgroup v2 directory, before any
 * process runs in it: its id and path, so a short-lived unit's cgroup is
 * named even if it is gone when userspace looks; and, if the scope names
 * units, a new cgroup with such a name joins the scope before its first
 * process can open a socket. Missing: cgroups are named by walking the
 * cgroup filesystem, which misses those removed in between, and units that
 * start after netwho are not in a kernel scope (the filter still applies).
 */
SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(nw_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct netwho_cgroup_mkdir *ev;
	struct netwho_scope *sc;
	__u64 id;
	long n;

	/* cgroup v2 only: the hierarchy our own tasks' default cgroup is in */
	if (cgrp->root != task->cgroups->dfl_cgrp->root)
		return 0;
	id = cgrp->kn->id;
	sc = scope_get();
	if (sc && (sc->active & NETWHO_SCOPE_CGROUP)) {
		char name[NETWHO_NAME_LEN] = {};
		__u64 h;

		n = bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(cgrp, kn, name));
		h = name_hash(name, n);
		if (n > 0 && bpf_map_lookup_elem(&nw_scope_name, &h)) {
			__u8 one = 1;

			bpf_map_update_elem(&nw_scope_cgroup, &id, &one, BPF_ANY);
		}
	}
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		ring_drop(0);
		return 0;
	}
	ev->hdr.kind = NETWHO_EV_CGROUP_MKDIR;
	ev->hdr._pad = 0;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->id = id;
	ev->level = cgrp->level;
	n = bpf_probe_read_kernel_str(ev->path, sizeof(ev->path), path);
	ev->path_len = n > 0 ? n : 0;
	bpf_ringbuf_submit(ev, wakeup());
	return 0;
}

/*
 * The resident pages of an mm, on both layouts of mm_struct.rss_stat: an
 * array of percpu_counter since 6.2 (.count is exact to a batch per CPU),
 * a struct mm_rss_stat of atomic_long_t before (6.1 and older). CO-RE picks
 * the branch at load time; the other one is dead code the verifier skips.
 */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

static __always_inline __s64 mm_rss(struct mm_struct *mm)
{
	if (bpf_core_type_exists(struct mm_rss_stat___old)) {
		struct mm_struct___old *old = (void *)mm;

		return BPF_CORE_READ(old, rss_stat.count[MM_FILEPAGES].counter) +
		       BPF_CORE_READ(old, rss_stat.count[MM_ANONPAGES].counter) +
		       BPF_CORE_READ(old, rss_stat.count[MM_SHMEMPAGES].counter);
	}
	return mm->rss_stat[MM_FILEPAGES].count + mm->rss_stat[MM_ANONPAGES].count +
	       mm->rss_stat[MM_SHMEMPAGES].count;
}

/*
 * tp_btf/sched_process_exit(struct task_struct *p), Linux 5.5+ (tp_btf;
 * 6.16 added a group_dead argument, which we do not rely on: do_exit() has
 * already decremented signal->live when the tracepoint fires, so live == 0
 * means this is the last thread). The process is gone: its flows can take
 * no more bytes. Missing: netwho refuses to start.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(nw_exit, struct task_struct *p)
{
	struct signal_struct *sig = p->signal;
	struct mm_struct *mm = p->mm;
	struct netwho_exit *ev;
	struct netwho_scope *sc;
	__u64 peak, maxrss;
	bool out;

	if (sig->live.counter != 0)
		return 0;
	out = task_out();
	sc = scope_get();
	if (sc && sc->follow) {
		__u32 tgid = p->tgid;

		bpf_map_delete_elem(&nw_scope_pid, &tgid);
	}
	if (out)
		return 0;
	ev = bpf_ringbuf_reserve(&nw_events, sizeof(*ev), 0);
	if (!ev) {
		/* userspace still learns the process ended (from nw_lost) */
		ring_drop(NETWHO_STAT_RB_DROP_PROC);
		struct netwho_lost lost = { .start_ns = p->group_leader->start_boottime };

		keep_lost(p->tgid, NETWHO_LOST_EXIT, &lost);
		return 0;
	}
	ev->hdr.kind = NETWHO_EV_EXIT;
	ev->hdr._pad = 0;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->tgid = p->tgid;
	ev->exit_code = p->exit_code;
	ev->start_ns = p->group_leader->start_boottime;
	/* threads that exited earlier added theirs to the signal struct */
	ev->cpu_ns = sig->sum_sched_runtime + p->se.sum_exec_runtime;
	ev->maj_flt = sig->maj_flt + p->maj_flt;
	ev->rss_pages = 0;
	peak = 0;
	if (mm) {
		__s64 rss = mm_rss(mm);

		ev->rss_pages = rss > 0 ? rss : 0;
		peak = mm->hiwater_rss;
	}
	maxrss = sig->maxrss; /* pages, updated before mm is released */
	if (maxrss > peak)
		peak = maxrss;
	if (ev->rss_pages > peak)
		peak = ev->rss_pages;
	ev->peak_pages = peak;
	ev->blkio_ns = 0;
	ev->flags = 0;
	ev->_pad = 0;
	if (p->delays) {
		ev->blkio_ns = p->delays->blkio_delay;
		ev->flags = NETWHO_EXIT_BLKIO;
	}
	bpf_ringbuf_submit(ev, wakeup());
	return 0;
}
