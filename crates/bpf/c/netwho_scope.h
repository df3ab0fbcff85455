/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * netwho_scope.h: the kernel side of a filter's scope. A socket's scope is
 * decided once, in process context, when it is created (or, for a socket
 * that predates netwho, when it first carries payload), from the creating
 * task's uid, gid, tgid and cgroup and the socket's protocol; the result
 * is kept in its storage (NETWHO_SK_SCOPED, NETWHO_SK_SCOPE_OUT), so every
 * later hook skips an out-of-scope socket after one storage lookup. Ports
 * are checked when a flow starts. Included once, by netwho.bpf.c, after
 * netwho_maps.h.
 */
#ifndef NETWHO_SCOPE_H
#define NETWHO_SCOPE_H

static __always_inline struct netwho_scope *scope_get(void)
{
	__u32 zero = 0;
	struct netwho_scope *sc = bpf_map_lookup_elem(&nw_scope, &zero);

	return sc && sc->active ? sc : NULL;
}

/* The current task's uid, gid, tgid and cgroup meet the scope. */
static __always_inline bool task_in_scope(const struct netwho_scope *sc)
{
	__u32 active = sc->active;
	int i;

	if (active & (NETWHO_SCOPE_UID | NETWHO_SCOPE_GID)) {
		__u64 ug = bpf_get_current_uid_gid();
		__u32 uid = (__u32)ug, gid = ug >> 32;

		if ((active & NETWHO_SCOPE_UID) && !bpf_map_lookup_elem(&nw_scope_uid, &uid))
			return false;
		if ((active & NETWHO_SCOPE_GID) && !bpf_map_lookup_elem(&nw_scope_gid, &gid))
			return false;
	}
	if (active & NETWHO_SCOPE_PID) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		if (!bpf_map_lookup_elem(&nw_scope_pid, &tgid))
			return false;
	}
	if (active & NETWHO_SCOPE_CGROUP) {
		bool found = false;

		/* the cgroup or any ancestor: a unit's sub-cgroups belong to it */
		for (i = 0; i < NETWHO_CGROUP_LEVELS; i++) {
			__u64 id = bpf_get_current_ancestor_cgroup_id(i);

			if (id == 0)
				break;
			if (bpf_map_lookup_elem(&nw_scope_cgroup, &id)) {
				found = true;
				break;
			}
		}
		if (!found)
			return false;
	}
	return true;
}

static __always_inline bool proto_in_scope(const struct netwho_scope *sc, __u16 protocol)
{
	if (!(sc->active & NETWHO_SCOPE_PROTO))
		return true;
	return (sc->protos[(protocol >> 6) & 3] >> (protocol & 63)) & 1;
}

/* lport 0: not bound yet (a connect in progress): only rport can decide. */
static __always_inline bool ports_in_scope(const struct netwho_scope *sc, __u16 lport, __u16 rport)
{
	__u32 l = lport, r = rport;

	if (!(sc->active & NETWHO_SCOPE_PORT))
		return true;
	return lport == 0 || bpf_map_lookup_elem(&nw_scope_port, &l) ||
	       bpf_map_lookup_elem(&nw_scope_port, &r);
}

/*
 * Decide the scope of a socket in the creating (or first using) process's
 * context and remember it. Returns true if the socket is out of scope.
 */
static __always_inline bool scope_decide(struct netwho_sk_info *info, __u16 protocol)
{
	struct netwho_scope *sc = scope_get();
	bool out;

	if (!sc)
		return false;
	out = !task_in_scope(sc) || !proto_in_scope(sc, protocol);
	__sync_fetch_and_or(&info->flags, NETWHO_SK_SCOPED | (out ? NETWHO_SK_SCOPE_OUT : 0));
	if (out)
		stat_add(NETWHO_STAT_SCOPED_OUT, 1);
	return out;
}

/* A socket whose storage says it is out of scope. */
static __always_inline bool sk_out(const struct netwho_sk_info *info)
{
	return info && (info->flags & NETWHO_SK_SCOPE_OUT);
}

/* Out of scope by its storage, or undecided and now decided out. */
static __always_inline bool sk_out_decide(struct netwho_sk_info *info, __u16 protocol)
{
	if (!info)
		return false;
	if (info->flags & NETWHO_SK_SCOPED)
		return info->flags & NETWHO_SK_SCOPE_OUT;
	return scope_decide(info, protocol);
}

/* A TCP socket whose ports are now known and outside the scope: mark it. */
static __always_inline bool ports_out(struct netwho_sk_info *info, __u16 lport, __u16 rport)
{
	struct netwho_scope *sc = scope_get();

	if (!sc || ports_in_scope(sc, lport, rport))
		return false;
	if (info)
		__sync_fetch_and_or(&info->flags, NETWHO_SK_SCOPED | NETWHO_SK_SCOPE_OUT);
	stat_add(NETWHO_STAT_SCOPED_OUT, 1);
	return true;
}

/* Process events: only for tasks in scope (uid, gid, tgid, cgroup). */
static __always_inline bool task_out(void)
{
	struct netwho_scope *sc = scope_get();

	return sc && (sc->active & NETWHO_SCOPE_TASK_MASK) && !task_in_scope(sc);
}

/* FNV-1a 64 of a NUL-terminated name (userspace hashes the same way). */
static __always_inline __u64 name_hash(const char *name, int len)
{
	__u64 h = 0xcbf29ce484222325ULL;
	int i;

	for (i = 0; i < NETWHO_NAME_LEN; i++) {
		if (i >= len || !name[i])
			break;
		h ^= (__u8)name[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#endif /* NETWHO_SCOPE_H */
