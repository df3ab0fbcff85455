//! What a caller sees of the live state: a request's filter narrowed to
//! the caller's access, and flows and processes as the documents carry
//! them (flow records, process rows).

use crate::access::Access;
use crate::error::ApiError;
use crate::live::{FlowView, ProcView};
use netwho_model::MonoNs;
use netwho_model::record::{FlowRecord, RecordKind};
use netwho_model::time::{WallClock, rfc3339_from_unix_ns};
use netwho_query::Filter;
use netwho_sink::subject::FlowSubject;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// The filter of a request: its `q`, narrowed to what the caller may see.
pub(crate) fn filter(access: Access, q: Option<&str>) -> Result<Option<Filter>, ApiError> {
    let q = match q {
        Some(src) => {
            Some(Filter::parse(src).map_err(|e| ApiError::bad(format!("q: {}", e.render(src))))?)
        }
        None => None,
    };
    let scope = match access.filter_expr() {
        Some(a) => Some(Filter::parse(&a).map_err(|e| ApiError::internal(e.to_string()))?),
        None => None,
    };
    Ok(match (scope, q) {
        (None, q) => q,
        (Some(a), None) => Some(a),
        (Some(a), Some(q)) => Some(a.and(q)),
    })
}

/// Whether the caller may see flow `v` and it passes `filter`.
pub(crate) fn visible(
    v: &FlowView,
    access: Access,
    filter: Option<&Filter>,
    local: &HashSet<IpAddr>,
) -> bool {
    if !access.sees_uid(v.flow.uid) {
        return false;
    }
    filter.is_none_or(|f| {
        f.matches(&FlowSubject {
            flow: &v.flow,
            ctx: &v.ctx,
            now: v.at,
            local,
        })
    })
}

/// A flow as a flow record (`docs/specs/flow-record.md`).
pub(crate) fn flow_json(v: &FlowView, wall: WallClock) -> Value {
    let kind = if v.closed {
        RecordKind::Close
    } else {
        RecordKind::Update
    };
    serde_json::to_value(FlowRecord::build(kind, &v.flow, v.at, wall, &v.ctx))
        .unwrap_or(Value::Null)
}

pub(crate) fn proc_json(p: &ProcView, wall: WallClock) -> Value {
    let ts = |t: MonoNs| rfc3339_from_unix_ns(wall.unix_ns(t));
    json!({
        "id": format!("{}-{}", p.key.tgid, p.key.start_ticks),
        "pid": p.key.tgid,
        "comm": p.info.comm,
        "exe": p.info.exe,
        "cmdline": p.info.cmdline,
        "ppid": p.info.ppid,
        "uid": p.uid,
        "user": p.names.user,
        "unit": p.names.unit,
        "container_id": p.names.container_id,
        "cgroup": p.names.cgroup,
        "bytes_sent": p.payload.bytes_sent,
        "bytes_recv": p.payload.bytes_recv,
        "wire_bytes_sent": p.wire.bytes_sent,
        "wire_bytes_recv": p.wire.bytes_recv,
        "rate_sent": p.rate_sent,
        "rate_recv": p.rate_recv,
        "flows_open": p.flows_open,
        "flows_total": p.flows_total,
        "last_active": ts(p.last_active),
        "exited": p.exited.map(ts),
    })
}

/// The processes the caller may see; with a filter, those with a flow
/// held now (`flows`) that passes it.
pub(crate) fn procs_json(
    flows: &[Arc<FlowView>],
    procs: &[ProcView],
    wall: WallClock,
    access: Access,
    filter: Option<&Filter>,
    local: &HashSet<IpAddr>,
) -> Vec<Value> {
    let passing: Option<HashSet<netwho_model::ProcKey>> = filter.map(|_| {
        flows
            .iter()
            .filter(|v| visible(v, access, filter, local))
            .map(|v| v.flow.key.proc)
            .collect()
    });
    procs
        .iter()
        .filter(|p| access.sees_uid(p.uid))
        .filter(|p| passing.as_ref().is_none_or(|s| s.contains(&p.key)))
        .map(|p| proc_json(p, wall))
        .collect()
}
