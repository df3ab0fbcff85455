//! The alerts (`[alerts]` of the daemon): `GET /api/v1/alerts` lists the
//! newest, `GET /api/v1/alerts/stream` follows them (server-sent events),
//! `POST /api/v1/alerts/{id}/ack` acknowledges one. A caller who sees
//! only their own processes sees, follows and acknowledges only the
//! alerts about them.

use crate::access::{Access, Caller};
use crate::error::ApiError;
use crate::limits::Who;
use crate::params::Params;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use netwho_alerts::board::{AckError, Board, Posted};
use netwho_model::time::rfc3339_from_unix_ns;
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Most alerts one answer holds.
const MAX_LIMIT: usize = 1_000;
/// How often a stream looks for new alerts.
const POLL: Duration = Duration::from_millis(500);

fn board(s: &AppState) -> Result<&Arc<Board>, ApiError> {
    s.cfg.alerts.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "alerts are off: set [alerts] enabled = true in the daemon's configuration",
        )
    })
}

fn uid_of(access: Access) -> Option<u32> {
    match access {
        Access::All => None,
        Access::Uid(u) => Some(u),
    }
}

/// An alert's record with its acknowledgement.
fn alert_json(a: &Posted) -> Value {
    let mut v: Value = serde_json::from_str(&a.record).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "acked".into(),
            a.acked_ns
                .map_or(Value::Null, |t| rfc3339_from_unix_ns(i128::from(t)).into()),
        );
    }
    v
}

/// `GET /api/v1/alerts?after=ID&limit=N`: the newest alerts (at most
/// `limit`, 100 unless given) with an id above `after`, oldest first.
pub async fn list(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let b = board(&s)?;
    let p = Params::new(q);
    p.only(&["after", "limit"])?;
    let after = p.value::<i64>("after")?.unwrap_or(0);
    let limit = p.value::<usize>("limit")?.unwrap_or(100).min(MAX_LIMIT);
    let alerts: Vec<Value> = b
        .list(uid_of(access), after, limit)
        .iter()
        .map(alert_json)
        .collect();
    let until = b.learn_until_ns.load(Ordering::Relaxed);
    let now = netwho_enrich::clock::unix_now_ns();
    Ok(axum::Json(serde_json::json!({
        "learning": now < i128::from(until),
        "learn_until": rfc3339_from_unix_ns(i128::from(until)),
        "alerts": alerts,
    }))
    .into_response())
}

/// `POST /api/v1/alerts/{id}/ack`: the alert, acknowledged.
pub async fn ack(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let b = board(&s)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad("the alert id is a whole number (its \"id\")"))?;
    let now = i64::try_from(netwho_enrich::clock::unix_now_ns()).unwrap_or(i64::MAX);
    match b.ack(id, uid_of(access), now) {
        Ok(a) => Ok(axum::Json(alert_json(&a)).into_response()),
        Err(AckError::NotFound) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no alert {id} that you may see among the newest {}",
                netwho_alerts::board::BOARD_MAX
            ),
        )),
    }
}

/// `GET /api/v1/alerts/stream?after=ID`: an `alert` event for each alert
/// with an id above `after` (none: from now on), as it is raised.
pub async fn stream(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    ConnectInfo(caller): ConnectInfo<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let b = Arc::clone(board(&s)?);
    let p = Params::new(q);
    p.only(&["after"])?;
    let after = match p.value::<i64>("after")? {
        Some(a) => a,
        None => b.list(None, 0, 1).last().map_or(0, |a| a.id),
    };
    let held = s
        .quotas
        .streams
        .take(&Who::of(&caller))
        .map_err(|why| ApiError::new(StatusCode::TOO_MANY_REQUESTS, why.to_string()))?;
    let uid = uid_of(access);
    let events = stream::unfold(
        (b, after, Vec::<Posted>::new(), held),
        move |(b, mut after, mut queue, held)| async move {
            loop {
                if let Some(a) = queue.pop() {
                    let ev = Event::default()
                        .event("alert")
                        .id(a.id.to_string())
                        .data(alert_json(&a).to_string());
                    return Some((Ok(ev), (b, after, queue, held)));
                }
                let new = b.list(uid, after, MAX_LIMIT);
                if let Some(last) = new.last() {
                    after = last.id;
                    queue = new;
                    queue.reverse();
                    continue;
                }
                tokio::time::sleep(POLL).await;
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
