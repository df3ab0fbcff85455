//! Live updates: server-sent events (`/api/v1/events`, JSON, for web pages
//! and scripts) and a live recording (`/api/v1/stream`: the recording
//! format of `docs/specs/recording.md` over HTTP, which `netwho top
//! --connect` replays into the same view as `top -r`).
//!
//! Both start from the state at the moment of connecting and then follow
//! the batches, each filtered for the caller. A reader more than
//! [`BATCHES`](crate::live::BATCHES) intervals behind gets a last event
//! saying so and the stream ends (counted in `readers_lagged`).

use crate::access::{Access, Caller};
use crate::error::ApiError;
use crate::limits::Who;
use crate::live::{FlowView, LiveBatch};
use crate::params::Params;
use crate::state::AppState;
use crate::view::{filter, flow_json, procs_json, visible};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use futures_util::stream::{self, Stream};
use netwho_model::time::{WallClock, rfc3339_from_unix_ns};
use netwho_query::Filter;
use netwho_store::recording::encode::{Encoder, Kind};
use netwho_store::recording::write::header_bytes;
use netwho_store::recording::{FrameEncoder, Header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

/// The batches after a reader's first answer, each turned into what the
/// reader is sent by `step` (None: nothing for it in this batch). The
/// stream ends when the daemon stops, or, after `lagged`, when the reader
/// fell more than [`BATCHES`](crate::live::BATCHES) behind (counted).
fn follow<S, T>(
    s: AppState,
    rx: Receiver<Arc<LiveBatch>>,
    state: S,
    step: impl FnMut(&AppState, &mut S, &LiveBatch) -> Option<T> + Send + 'static,
    lagged: Option<T>,
) -> impl Stream<Item = T>
where
    S: Send + 'static,
    T: Send + 'static,
{
    let init = (s, rx, state, step, lagged, false);
    stream::unfold(
        init,
        |(s, mut rx, mut state, mut step, mut lagged, done)| async move {
            if done {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(b) => {
                        if let Some(t) = step(&s, &mut state, &b) {
                            return Some((t, (s, rx, state, step, lagged, false)));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        s.live.note_lagged();
                        log::warn!("api: a reader fell {n} batches behind and was dropped");
                        let last = lagged.take()?;
                        return Some((last, (s, rx, state, step, None, true)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    )
}

/// A batch as the caller may see it; `held`: the flows held now (for a
/// filter over processes).
fn batch_json(
    s: &AppState,
    held: &[Arc<FlowView>],
    b: &LiveBatch,
    access: Access,
    f: Option<&Filter>,
) -> Value {
    let flows: Vec<Value> = b
        .flows
        .iter()
        .filter(|v| visible(v, access, f, &s.cfg.local))
        .map(|v| flow_json(v, b.wall))
        .collect();
    json!({
        "seq": b.seq,
        "ts": rfc3339_from_unix_ns(b.wall.unix_ns(b.now)),
        "processes": procs_json(held, &b.procs, b.wall, access, f, &s.cfg.local),
        "flows": flows,
        "status": b.status.as_ref().map(|r| status_json(r, access, held)),
    })
}

/// A status record as `access` may see it (with the flows `held` now).
pub(crate) fn status_json(
    r: &netwho_sink::status::StatusRecord,
    access: Access,
    held: &[Arc<FlowView>],
) -> Value {
    let v = match access {
        Access::All => serde_json::to_value(r),
        Access::Uid(u) => {
            let own = held.iter().filter(|v| !v.closed && v.flow.uid == u).count() as u64;
            serde_json::to_value(r.scoped(u, own))
        }
    };
    v.unwrap_or(Value::Null)
}

/// One more stream for `caller` (held while the stream lives), or 429.
fn take_stream(s: &AppState, caller: &Caller) -> Result<crate::limits::Held, ApiError> {
    s.quotas
        .streams
        .take(&Who::of(caller))
        .map_err(|why| ApiError::new(StatusCode::TOO_MANY_REQUESTS, why.to_string()))
}

/// `GET /api/v1/events`: one `batch` event per interval (the first one
/// holds every flow held now), `lagged` before a stream that fell behind
/// ends.
pub async fn events(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    ConnectInfo(caller): ConnectInfo<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let p = Params::new(q);
    p.only(&["q"])?;
    let f = filter(access, p.str("q"))?;
    let held = take_stream(&s, &caller)?;
    let (snap, rx) = {
        let (st, rx) = s.live.subscribe();
        (st.snapshot(true), rx)
    };
    let b = LiveBatch {
        seq: snap.seq,
        now: snap.now,
        wall: snap.wall,
        flows: snap.flows,
        procs: snap.procs,
        status: snap.status,
    };
    let first = batch_json(&s, &b.flows, &b, access, f.as_ref());
    let first = Event::default().event("batch").data(first.to_string());
    let rest = follow(
        s,
        rx,
        (f, access, held),
        |s, (f, access, _), b| {
            let held = s.live.snapshot(f.is_some()).flows;
            let doc = batch_json(s, &held, b, *access, f.as_ref());
            Some(Ok(Event::default().event("batch").data(doc.to_string())))
        },
        Some(Ok(Event::default().event("lagged").data(
            r#"{"error":"this reader fell behind and was dropped: reconnect"}"#,
        ))),
    );
    let all = stream::once(async move { Ok(first) }).chain(rest);
    Ok(Sse::new(all).keep_alive(KeepAlive::default()))
}

/// Encodes what one caller may see as recording frames.
struct Recorder {
    enc: Encoder,
    frames: FrameEncoder,
    buf: Vec<u8>,
    wall: WallClock,
    status: Option<String>,
    access: Access,
    /// The open flows this caller was sent (its status's `flows_open`).
    open: std::collections::HashSet<netwho_model::FlowKey>,
    own_open: u64,
}

impl Recorder {
    fn flows<'a>(
        &mut self,
        flows: impl Iterator<Item = &'a Arc<FlowView>>,
        keep: impl Fn(&FlowView) -> bool,
    ) {
        for v in flows.filter(|v| keep(v)) {
            if v.closed {
                self.open.remove(&v.flow.key);
            } else {
                self.open.insert(v.flow.key);
            }
            self.own_open = self.open.len() as u64;
            let kind = if v.closed { Kind::Close } else { Kind::Update };
            self.enc.flow(&mut self.buf, kind, &v.flow, &v.ctx, v.at);
        }
    }

    /// The frame of one batch: a clock change, the flows, and a status
    /// record at the batch's time (which moves the viewer's clock on
    /// even when nothing it may see happened).
    fn frame(&mut self, b: &LiveBatch) -> Option<Bytes> {
        if b.wall != self.wall {
            self.wall = b.wall;
            self.enc.clock(&mut self.buf, b.wall.boot_to_unix_ns);
        }
        if let Some(st) = &b.status {
            let st = match self.access {
                Access::All => (**st).clone(),
                Access::Uid(u) => st.scoped(u, self.own_open),
            };
            self.status = serde_json::to_string(&st).ok();
        }
        if let Some(json) = &self.status {
            self.enc.status(&mut self.buf, json.clone(), b.now);
        }
        self.enc.seal();
        if self.buf.is_empty() {
            return None;
        }
        let out = self.frames.frame(&self.buf);
        self.buf.clear();
        match out {
            Ok(f) => Some(Bytes::from(f)),
            Err(e) => {
                log::warn!("api: compressing a stream frame failed: {e}");
                None
            }
        }
    }
}

/// `GET /api/v1/stream`: a live recording of what the caller may see.
pub async fn recording(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    ConnectInfo(caller): ConnectInfo<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(q);
    p.only(&["q"])?;
    let f = filter(access, p.str("q"))?;
    let held = take_stream(&s, &caller)?;
    let frames =
        FrameEncoder::new().map_err(|e| ApiError::internal(format!("starting zstd: {e}")))?;
    let (st, rx) = {
        let (st, rx) = s.live.subscribe();
        (st.snapshot(true), rx)
    };
    let header = Header {
        created_unix_ns: st.wall.unix_ns(st.now),
        host: s.cfg.host.clone(),
        boot_id: s.cfg.boot_id,
        netwho_version: env!("CARGO_PKG_VERSION").into(),
        resolution_ns: netwho_model::nanos(s.live.cfg.interval),
        snaplen: 0,
        filter: f.as_ref().map(ToString::to_string),
        scope: None,
        boot_to_unix_ns: st.wall.boot_to_unix_ns,
        local_addrs: s.cfg.local.iter().copied().collect(),
        segment: 0,
        attribution: "ebpf".into(),
    };
    let head = header_bytes(&header).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut rec = Recorder {
        enc: Encoder::new(),
        frames,
        buf: Vec::new(),
        wall: st.wall,
        status: None,
        access,
        open: std::collections::HashSet::new(),
        own_open: 0,
    };
    // open flows first: the closed ones held are history to a new viewer
    let local = &s.cfg.local;
    rec.flows(st.flows.iter(), |v| {
        !v.closed && visible(v, access, f.as_ref(), local)
    });
    let b = LiveBatch {
        seq: st.seq,
        now: st.now,
        wall: st.wall,
        flows: Vec::new(),
        procs: st.procs,
        status: st.status,
    };
    let first = rec.frame(&b);
    let rest = follow(
        s,
        rx,
        (f, access, rec, held),
        |s, (f, access, rec, _), b| {
            let (access, local) = (*access, &s.cfg.local);
            rec.flows(b.flows.iter(), |v| visible(v, access, f.as_ref(), local));
            rec.frame(b).map(Ok::<Bytes, Infallible>)
        },
        None,
    );
    let start = stream::iter(
        std::iter::once(Bytes::from(head))
            .chain(first)
            .map(Ok::<Bytes, Infallible>),
    );
    let body = Body::from_stream(start.chain(rest));
    Ok((
        [(header::CONTENT_TYPE, "application/x-netwho-recording")],
        body,
    )
        .into_response())
}
