//! The flow record: the contract every output shares (`docs/specs/flow-record.md`;
//! why: `docs/design.md` §4). Field names are used verbatim by `--json`
//! output, JSON-lines logs and the API.

use crate::flow::{Flow, FlowEvent};
use crate::ids::MonoNs;
use crate::proc::{FlowUsage, UsageTrack};
use crate::time::WallClock;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// Lifecycle point of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// The flow started.
    Open,
    /// Totals so far of a flow still open.
    Update,
    /// The flow ended.
    Close,
}

impl RecordKind {
    /// Its name in records (`open`, `update`, `close`).
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Open => "open",
            RecordKind::Update => "update",
            RecordKind::Close => "close",
        }
    }

    /// The kind of record a flow event makes.
    pub fn of(ev: &FlowEvent) -> Self {
        match ev {
            FlowEvent::Opened(_) => RecordKind::Open,
            FlowEvent::Updated(_) => RecordKind::Update,
            FlowEvent::Closed(_) => RecordKind::Close,
        }
    }
}

/// Names resolved outside the model (user database, cgroup filesystem).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Names {
    /// The user's name.
    pub user: String,
    /// The group's name.
    pub group: String,
    /// The cgroup v2 path.
    pub cgroup: String,
    /// The systemd unit in it.
    pub unit: String,
    /// A container id in it.
    pub container_id: String,
}

/// What a record needs beyond the flow: names shared by many flows, and
/// what is known of this flow's process right now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    /// User, group, cgroup, unit and container names.
    pub names: Arc<Names>,
    /// The executable's SHA-256, once known.
    pub exe_sha256: Option<Arc<str>>,
    /// The process's resource figures over the flow's life.
    pub usage: Option<FlowUsage>,
    /// The process's latest resource samples.
    pub track: Option<UsageTrack>,
    /// The seed of the record's `community_id` (0 unless the site chose
    /// another: `--community-id-seed`).
    pub community_seed: u16,
}

/// One ancestor in a record's `parents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent<'a> {
    /// Its pid.
    pub pid: u32,
    /// Its command name.
    pub comm: Cow<'a, str>,
    /// Its executable.
    pub exe: Cow<'a, str>,
}

/// One flow record. Text fields borrow from the flow and the names they
/// were built from (writing a record allocates only what it must format);
/// records read back from JSON own their text (`FlowRecord<'static>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord<'a> {
    /// `open`, `update` or `close`: the lifecycle point of this record.
    pub event: RecordKind,
    /// Stable for the life of the flow; unique across boots.
    pub flow_id: String,
    /// When the flow started (kernel time of its first event).
    pub ts_open: String,
    /// `close` only: when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_close: Option<String>,
    /// When this record was made.
    pub ts: String,
    /// `close` only: `ts_close - ts_open`, microsecond resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// The flow's Community ID v1 (`1:` and a base64 SHA-1 of its
    /// addresses, protocol and ports), as Zeek, Suricata and Elastic
    /// compute it; absent where the packets' tuple is not known
    /// (`docs/specs/flow-record.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
    /// The protocol's name (`tcp`, `udp`, ..., `raw`, `packet`, `ip-N`).
    pub proto: Cow<'a, str>,
    /// `ipv4`, `ipv6` or `packet` (IPv4-mapped IPv6 addresses are IPv4).
    pub family: Cow<'a, str>,
    /// Local address and port as this host sees them (for an unbound socket:
    /// the source address its packets carried).
    pub laddr: String,
    /// See `laddr`.
    pub lport: u16,
    /// Remote address and port; ports are 0 for ICMP, raw and packet sockets.
    pub raddr: String,
    /// See `raddr`.
    pub rport: u16,
    /// The name this process resolved to `raddr` most recently before the
    /// flow opened, within the answer's TTL (names on; absent if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rname: Option<Cow<'a, str>>,
    /// Whose DNS answer gave `rname`: `dns` (the process's own), `shared`
    /// (another process of its network namespace: nscd, a caching
    /// resolver), or `none`: an outbound flow to a public address its
    /// process never resolved, with no TLS server name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rname_source: Option<Cow<'a, str>>,
    /// The server name the process's TLS or QUIC ClientHello asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<Cow<'a, str>>,
    /// The application protocols it offered (ALPN), comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<Cow<'a, str>>,
    /// Who initiated: `outbound` (this host), `inbound` (the remote) or `unknown`.
    pub direction: Cow<'a, str>,
    /// TCP: the kernel's state name at this record; other protocols: the protocol's name.
    pub state: Cow<'a, str>,
    /// Thread-group id of the process and of its parent (as seen from the initial pid namespace).
    pub pid: u32,
    /// See `pid`.
    pub ppid: u32,
    /// Process start time, to 10 ms (USER_HZ).
    pub proc_start: String,
    /// The process name when the flow opened (renames later do not change it).
    pub comm: Cow<'a, str>,
    /// The executable (`/proc/PID/exe` when readable at exec, else the path given to `execve`).
    pub exe: Cow<'a, str>,
    /// argv as captured at exec, up to `--max-cmdline` bytes.
    pub cmdline: Cow<'a, [String]>,
    /// The parent's name.
    pub parent_comm: Cow<'a, str>,
    /// Parent first, up to PID 1 (or the first ancestor netwho never saw).
    #[serde(default)]
    pub parents: Vec<Parent<'a>>,
    /// SHA-256 of the executable that ran; absent until computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_sha256: Option<Cow<'a, str>>,
    /// Audit login uid and session id; absent when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_uid: Option<u32>,
    /// See `login_uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u32>,
    /// Effective uid and gid of the process when the flow opened.
    pub uid: u32,
    /// Their names (via NSS); empty if unknown (counted in status).
    pub user: Cow<'a, str>,
    /// See `uid`.
    pub gid: u32,
    /// See `user`.
    pub group: Cow<'a, str>,
    /// Cgroup v2 path of the process (`/system.slice/nginx.service`); empty if unresolved.
    pub cgroup: Cow<'a, str>,
    /// The systemd unit in that path (`nginx.service`, `session-2.scope`), or empty.
    pub unit: Cow<'a, str>,
    /// A 64-hex container id in that path (docker, podman, containerd, CRI-O), or empty.
    pub container_id: Cow<'a, str>,
    /// Network namespace inode of the socket.
    pub netns: u32,
    /// Exact payload sent: the sum of what the send calls returned on this socket in this process.
    pub bytes_sent: u64,
    /// Exact payload received, likewise.
    pub bytes_recv: u64,
    /// L3 bytes (IP and transport headers included), GSO/GRO super-packets
    /// counted as the segments they stand for.
    pub wire_bytes_sent: u64,
    /// See `wire_bytes_sent`.
    pub wire_bytes_recv: u64,
    /// Packets (segments), same rules.
    pub packets_sent: u64,
    /// See `packets_sent`.
    pub packets_recv: u64,
    /// False when the kernel counted this flow's payload on its socket
    /// together with others (its uid held its share of the flow map, or
    /// the map was full): the flow is real, its bytes are in its socket's
    /// aggregate record (remote unspecified). Absent when true.
    #[serde(default = "complete", skip_serializing_if = "is_complete")]
    pub bytes_complete: bool,
    /// How the owner was found: `ebpf` (exact), `sock_diag` (the socket predates
    /// netwho), ... (`docs/specs/flow-record.md`).
    pub attribution: Cow<'a, str>,
    /// `close` only: `socket_closed`, `process_exit` (the socket may live on in another process), `idle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<Cow<'a, str>>,
    /// The process's resources (close and update records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// See `rss_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_peak_bytes: Option<u64>,
    /// `close` and `update` only: the process's average CPU over the flow's
    /// life, 100 = one core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pct: Option<f64>,
    /// `close` and `update` only: major page faults of the process so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major_faults: Option<u64>,
    /// `close` and `update` only, when kernel delay accounting is on: time the process waited for block I/O.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iowait_ms: Option<f64>,
}

fn complete() -> bool {
    true
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if signature"
)]
fn is_complete(b: &bool) -> bool {
    *b
}

impl FlowRecord<'static> {
    /// A close record with every field set (curl fetching a page), for
    /// documentation, tests and benchmarks.
    pub fn example() -> FlowRecord<'static> {
        FlowRecord {
            event: RecordKind::Close,
            flow_id: "7f3a-19".into(),
            ts_open: "2026-11-23T10:15:15.123456789Z".into(),
            ts_close: Some("2026-11-23T10:15:15.340478000Z".into()),
            ts: "2026-11-23T10:15:15.340500000Z".into(),
            duration_ms: Some(217.021),
            community_id: crate::community::of_endpoints(
                6,
                crate::Endpoint::new(std::net::Ipv4Addr::new(10, 0, 0, 5).into(), 40412),
                crate::Endpoint::new(std::net::Ipv4Addr::new(93, 184, 216, 34).into(), 443),
                true,
                0,
            ),
            proto: "tcp".into(),
            family: "ipv4".into(),
            laddr: "10.0.0.5".into(),
            lport: 40412,
            raddr: "93.184.216.34".into(),
            rport: 443,
            rname: Some("example.org".into()),
            rname_source: Some("dns".into()),
            sni: Some("example.org".into()),
            alpn: Some("h2,http/1.1".into()),
            direction: "outbound".into(),
            state: "CLOSE".into(),
            pid: 4242,
            ppid: 812,
            proc_start: "2026-11-23T10:15:14.900000000Z".into(),
            comm: "curl".into(),
            exe: "/usr/bin/curl".into(),
            cmdline: vec!["curl".into(), "-s".into(), "https://example.org".into()].into(),
            parent_comm: "bash".into(),
            parents: vec![
                Parent {
                    pid: 812,
                    comm: "bash".into(),
                    exe: "/usr/bin/bash".into(),
                },
                Parent {
                    pid: 1,
                    comm: "systemd".into(),
                    exe: "/usr/lib/systemd/systemd".into(),
                },
            ],
            exe_sha256: Some("ab12".into()),
            login_uid: Some(1000),
            session: Some(2),
            uid: 1000,
            user: "alice".into(),
            gid: 100,
            group: "users".into(),
            cgroup: "/user.slice/user-1000.slice/session-2.scope".into(),
            unit: "session-2.scope".into(),
            container_id: "".into(),
            netns: 4_026_531_840,
            bytes_sent: 79,
            bytes_recv: 1256,
            wire_bytes_sent: 431,
            wire_bytes_recv: 1_708,
            packets_sent: 7,
            packets_recv: 6,
            bytes_complete: true,
            attribution: "ebpf".into(),
            close_reason: Some("closed".into()),
            rss_bytes: Some(9_437_184),
            rss_peak_bytes: Some(10_485_760),
            cpu_pct: Some(3.25),
            major_faults: Some(2),
            iowait_ms: None,
        }
    }
}

impl<'a> FlowRecord<'a> {
    /// The record of a flow event at `now`.
    pub fn from_event(ev: &'a FlowEvent, now: MonoNs, clock: WallClock, ctx: &'a Context) -> Self {
        Self::made(RecordKind::of(ev), ev.flow(), now, clock, ctx, true)
    }

    /// The record of `ev`, but for the two process fields that take
    /// work to make: `parents` and `proc_start` are left empty. For a
    /// writer that has this process's fields already (see
    /// [`crate::json::ProcJsonCache::kept`]): never a record to write on
    /// its own.
    pub fn from_event_without_proc(
        ev: &'a FlowEvent,
        now: MonoNs,
        clock: WallClock,
        ctx: &'a Context,
    ) -> Self {
        Self::made(RecordKind::of(ev), ev.flow(), now, clock, ctx, false)
    }

    /// The record of kind `kind` of flow `f`.
    pub fn build(
        kind: RecordKind,
        f: &'a Flow,
        now: MonoNs,
        clock: WallClock,
        ctx: &'a Context,
    ) -> Self {
        Self::made(kind, f, now, clock, ctx, true)
    }

    /// The record; with `proc` false, without `parents` and `proc_start`.
    fn made(
        kind: RecordKind,
        f: &'a Flow,
        now: MonoNs,
        clock: WallClock,
        ctx: &'a Context,
        proc: bool,
    ) -> Self {
        let names = &*ctx.names;
        let rn = f.remote_name.as_deref();
        let usage = if kind == RecordKind::Open {
            None
        } else {
            ctx.usage
        };
        let family = f.family();
        let closed = if kind == RecordKind::Close {
            f.closed
        } else {
            None
        };
        FlowRecord {
            event: kind,
            flow_id: f.id.hex(),
            ts_open: clock.rfc3339(f.opened),
            ts_close: closed.map(|c| clock.rfc3339(c)),
            ts: clock.rfc3339(now),
            duration_ms: closed.map(|c| {
                // microsecond resolution, in milliseconds
                (c.since(f.opened) / 1_000) as f64 / 1_000.0
            }),
            community_id: crate::community::of_flow(f, ctx.community_seed),
            proto: f.proto.name(),
            family: Cow::Borrowed(family.name()),
            laddr: crate::addr::ip_string(f.local.addr),
            lport: f.local.port,
            raddr: crate::addr::ip_string(f.remote.addr),
            rport: f.remote.port,
            rname: rn.and_then(|n| n.rname.as_deref()).map(Cow::Borrowed),
            rname_source: rn.and_then(|n| n.source).map(|s| Cow::Borrowed(s.name())),
            sni: rn.and_then(|n| n.sni.as_deref()).map(Cow::Borrowed),
            alpn: rn.and_then(|n| n.alpn.as_deref()).map(Cow::Borrowed),
            direction: Cow::Borrowed(f.direction.name()),
            state: f.state_name(),
            pid: f.key.proc.tgid,
            ppid: f.proc.ppid,
            proc_start: if proc {
                clock.rfc3339(f.key.proc.start())
            } else {
                String::new()
            },
            comm: Cow::Borrowed(&f.comm),
            exe: Cow::Borrowed(&f.proc.exe),
            cmdline: Cow::Borrowed(&f.proc.cmdline),
            parent_comm: Cow::Borrowed(&f.proc.parent_comm),
            parents: if proc {
                f.proc
                    .ancestors()
                    .map(|a| Parent {
                        pid: a.key.tgid,
                        comm: Cow::Borrowed(&a.comm),
                        exe: Cow::Borrowed(&a.exe),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            exe_sha256: ctx.exe_sha256.as_deref().map(Cow::Borrowed),
            login_uid: f.proc.login_uid,
            session: f.proc.session,
            uid: f.uid,
            user: Cow::Borrowed(&names.user),
            gid: f.gid,
            group: Cow::Borrowed(&names.group),
            cgroup: Cow::Borrowed(&names.cgroup),
            unit: Cow::Borrowed(&names.unit),
            container_id: Cow::Borrowed(&names.container_id),
            netns: f.netns,
            bytes_sent: f.payload.bytes_sent,
            bytes_recv: f.payload.bytes_recv,
            wire_bytes_sent: f.wire.bytes_sent,
            wire_bytes_recv: f.wire.bytes_recv,
            packets_sent: f.wire.packets_sent,
            packets_recv: f.wire.packets_recv,
            bytes_complete: f.bytes_complete,
            attribution: Cow::Borrowed(f.attribution.name()),
            close_reason: if kind == RecordKind::Close {
                f.close_reason.map(|r| Cow::Borrowed(r.name()))
            } else {
                None
            },
            rss_bytes: usage.map(|u| u.rss_bytes),
            rss_peak_bytes: usage.map(|u| u.rss_peak_bytes),
            cpu_pct: usage
                .and_then(|u| u.cpu_pct)
                .map(|c| (c * 100.0).round() / 100.0),
            major_faults: usage.map(|u| u.major_faults),
            iowait_ms: usage
                .and_then(|u| u.iowait_ns)
                .map(|n| (n / 1_000) as f64 / 1_000.0),
        }
    }
}
