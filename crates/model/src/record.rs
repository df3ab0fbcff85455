//! The flow record: the contract every output shares (DESIGN.md §4,
//! `docs/specs/flow-record.md`). Field names are used verbatim by `--json`
//! output, JSON-lines logs and the API.

use crate::addr::Family;
use crate::flow::{Flow, FlowEvent};
use crate::ids::MonoNs;
use crate::time::WallClock;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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

/// One flow record. Text fields borrow from the flow and the names they
/// were built from (writing a record allocates only what it must format);
/// records read back from JSON own their text (`FlowRecord<'static>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord<'a> {
    pub event: RecordKind,
    pub flow_id: String,
    pub ts_open: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_close: Option<String>,
    pub ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    pub proto: Cow<'a, str>,
    pub family: Cow<'a, str>,
    pub laddr: String,
    pub lport: u16,
    pub raddr: String,
    pub rport: u16,
    pub direction: Cow<'a, str>,
    pub state: Cow<'a, str>,
    pub pid: u32,
    pub ppid: u32,
    pub proc_start: String,
    pub comm: Cow<'a, str>,
    pub exe: Cow<'a, str>,
    pub cmdline: Cow<'a, [String]>,
    pub parent_comm: Cow<'a, str>,
    pub uid: u32,
    pub user: Cow<'a, str>,
    pub gid: u32,
    pub group: Cow<'a, str>,
    pub cgroup: Cow<'a, str>,
    pub unit: Cow<'a, str>,
    pub container_id: Cow<'a, str>,
    pub netns: u32,
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub wire_bytes_sent: u64,
    pub wire_bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub attribution: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<Cow<'a, str>>,
}

impl<'a> FlowRecord<'a> {
    pub fn from_event(ev: &'a FlowEvent, now: MonoNs, clock: WallClock, names: &'a Names) -> Self {
        let kind = match ev {
            FlowEvent::Opened(_) => RecordKind::Open,
            FlowEvent::Updated(_) => RecordKind::Update,
            FlowEvent::Closed(_) => RecordKind::Close,
        };
        Self::build(kind, ev.flow(), now, clock, names)
    }

    pub fn build(
        kind: RecordKind,
        f: &'a Flow,
        now: MonoNs,
        clock: WallClock,
        names: &'a Names,
    ) -> Self {
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
            family: Cow::Borrowed(family.name()),
            laddr: f.local.addr.to_string(),
            lport: f.local.port,
            raddr: f.remote.addr.to_string(),
            rport: f.remote.port,
            direction: Cow::Borrowed(f.direction.name()),
            state: f.state_name(),
            pid: f.key.proc.tgid,
            ppid: f.proc.ppid,
            proc_start: clock.rfc3339(f.key.proc.start()),
            comm: Cow::Borrowed(&f.comm),
            exe: Cow::Borrowed(&f.proc.exe),
            cmdline: Cow::Borrowed(&f.proc.cmdline),
            parent_comm: Cow::Borrowed(&f.proc.parent_comm),
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
            attribution: Cow::Borrowed(f.attribution.name()),
            close_reason: if kind == RecordKind::Close {
                f.close_reason.map(|r| Cow::Borrowed(r.name()))
            } else {
                None
            },
        }
    }
}
