//! The flow record: the contract every output shares (DESIGN.md §4,
//! `docs/specs/flow-record.md`). Field names are used verbatim by `--json`
//! output, JSON-lines logs and the API.

use crate::addr::Family;
use crate::flow::{Flow, FlowEvent};
use crate::ids::MonoNs;
use crate::time::WallClock;
use serde::{Deserialize, Serialize};

/// Lifecycle point of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Open,
    Update,
    Close,
}

/// Names resolved outside the model (user database, cgroup filesystem).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub user: String,
    pub group: String,
    pub cgroup: String,
    pub unit: String,
    pub container_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub event: RecordKind,
    pub flow_id: String,
    pub ts_open: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_close: Option<String>,
    pub ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    pub proto: String,
    pub family: String,
    pub laddr: String,
    pub lport: u16,
    pub raddr: String,
    pub rport: u16,
    pub direction: String,
    pub state: String,
    pub pid: u32,
    pub ppid: u32,
    pub proc_start: String,
    pub comm: String,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub parent_comm: String,
    pub uid: u32,
    pub user: String,
    pub gid: u32,
    pub group: String,
    pub cgroup: String,
    pub unit: String,
    pub container_id: String,
    pub netns: u32,
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub wire_bytes_sent: u64,
    pub wire_bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub attribution: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,
}

impl FlowRecord {
    pub fn from_event(ev: &FlowEvent, now: MonoNs, clock: WallClock, names: &Names) -> Self {
        let kind = match ev {
            FlowEvent::Opened(_) => RecordKind::Open,
            FlowEvent::Updated(_) => RecordKind::Update,
            FlowEvent::Closed(_) => RecordKind::Close,
        };
        Self::build(kind, ev.flow(), now, clock, names)
    }

    pub fn build(kind: RecordKind, f: &Flow, now: MonoNs, clock: WallClock, names: &Names) -> Self {
        let family = if f.packet {
            Family::Packet
        } else if f.remote.is_unspecified() {
            f.local.family()
        } else {
            f.remote.family()
        };
        let closed = if kind == RecordKind::Close {
            f.closed
        } else {
            None
        };
        FlowRecord {
            event: kind,
            flow_id: f.id.to_string(),
            ts_open: clock.rfc3339(f.opened),
            ts_close: closed.map(|c| clock.rfc3339(c)),
            ts: clock.rfc3339(now),
            duration_ms: closed.map(|c| {
                // microsecond resolution, in milliseconds
                (c.since(f.opened) / 1_000) as f64 / 1_000.0
            }),
            proto: f.proto.name(),
            family: family.name().to_string(),
            laddr: f.local.addr.to_string(),
            lport: f.local.port,
            raddr: f.remote.addr.to_string(),
            rport: f.remote.port,
            direction: f.direction.name().to_string(),
            state: f.state_name(),
            pid: f.key.proc.tgid,
            ppid: f.proc.ppid,
            proc_start: clock.rfc3339(f.key.proc.start()),
            comm: f.comm.clone(),
            exe: f.proc.exe.clone(),
            cmdline: f.proc.cmdline.clone(),
            parent_comm: f.proc.parent_comm.clone(),
            uid: f.uid,
            user: names.user.clone(),
            gid: f.gid,
            group: names.group.clone(),
            cgroup: names.cgroup.clone(),
            unit: names.unit.clone(),
            container_id: names.container_id.clone(),
            netns: f.netns,
            bytes_sent: f.payload.bytes_sent,
            bytes_recv: f.payload.bytes_recv,
            wire_bytes_sent: f.wire.bytes_sent,
            wire_bytes_recv: f.wire.bytes_recv,
            packets_sent: f.wire.packets_sent,
            packets_recv: f.wire.packets_recv,
            attribution: f.attribution.name().to_string(),
            close_reason: if kind == RecordKind::Close {
                f.close_reason.map(|r| r.name().to_string())
            } else {
                None
            },
        }
    }
}
