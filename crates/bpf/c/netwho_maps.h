/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * netwho_maps.h: the maps of netwho's kernel sensor, and the helpers every
 * program uses to report to userspace (ring buffer wake-ups, statistics).
 * Included once, by netwho.bpf.c.
 */
#ifndef NETWHO_MAPS_H
#define NETWHO_MAPS_H

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

/* Each uid's use of nw_flows (see netwho_uid_use), and what userspace
 * freed of it (written only by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct netwho_uid_use);
} nw_uid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct netwho_uid_freed);
} nw_uid_freed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netwho_limits);
} nw_limits SEC(".maps");

/* Flows counted on their socket whose open was announced (an LRU: only
 * for not announcing one twice; an evicted one is announced again). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct netwho_flow_key);
	__type(value, __u8);
} nw_untracked SEC(".maps");

/* Closes and exits whose ring record was lost (netwho_lost); userspace
 * sizes it to nw_flows (every lost close holds a flow entry). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct netwho_lost_key);
	__type(value, struct netwho_lost);
} nw_lost SEC(".maps");

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

/* Payload capture settings (userspace writes them before attaching). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netwho_capture_cfg);
} nw_capture SEC(".maps");

/* TCP sockets older than netwho: what their readers had taken when
 * userspace found them (sock_diag), by cookie. A socket's counting starts
 * from there, so a read that was in progress at start counts in full even
 * where no hook saw it return (fexit misses calls entered before attach).
 * Taken out at the socket's first count; bounded, a socket left out starts
 * at its first count instead. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} nw_start_taken SEC(".maps");

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

/* The scope (see netwho_scope in the ABI header); userspace fills these
 * before attaching. Empty and inactive: everything is in scope. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netwho_scope);
} nw_scope SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} nw_scope_uid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} nw_scope_gid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} nw_scope_cgroup SEC(".maps");

/* FNV-1a 64 hashes of cgroup directory names (systemd units) whose new
 * cgroups join nw_scope_cgroup when they are created. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} nw_scope_name SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} nw_scope_pid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} nw_scope_port SEC(".maps");

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

/* A ring record of `kind` (a NETWHO_STAT_RB_DROP_* index, or 0) found no room. */
static __always_inline void ring_drop(__u32 kind)
{
	stat_add(NETWHO_STAT_RINGBUF_DROPS, 1);
	if (kind)
		stat_add(kind, 1);
}

/* Keep an event the ring had no room for where userspace will find it;
 * false if there is no room there either. */
static __always_inline bool keep_lost(__u64 id, __u32 kind, struct netwho_lost *v)
{
	struct netwho_lost_key k = { .id = id, .kind = kind };

	v->ts_ns = bpf_ktime_get_boot_ns();
	if (bpf_map_update_elem(&nw_lost, &k, v, BPF_ANY)) {
		stat_add(NETWHO_STAT_LOST_FULL, 1);
		return false;
	}
	return true;
}

#endif /* NETWHO_MAPS_H */

/*
 * Read-only settings the loader writes before the programs load (the map
 * is frozen, so the verifier sees constants and skips what they turn off).
 * nw_cfg_skb_task: cgroup_skb programs may call bpf_get_current_pid_tgid()
 * (the loader probes the kernel; 0 on 6.1).
 */
const volatile __u32 nw_cfg_skb_task = 1;
