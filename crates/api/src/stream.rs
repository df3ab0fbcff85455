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
use netwho_model::record::Context;
use netwho_model::time::{WallClock, rfc3339_from_unix_ns};
use netwho_model::{Flow, MonoNs};
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
    fn new(frames: FrameEncoder, wall: WallClock, access: Access) -> Recorder {
        Recorder {
            enc: Encoder::new(),
            frames,
            buf: Vec::new(),
            wall,
            status: None,
            access,
            open: std::collections::HashSet::new(),
            own_open: 0,
        }
    }

    /// The entries of `flows` (those `keep` lets through), in the order
    /// a local run would have logged them: by the turn that noticed them,
    /// then by when they happened. A flow announced in this batch's
    /// interval begins with its open (as it was then), so that a saved
    /// stream replays like a recording of the daemon's own run; one the
    /// caller has not seen before (open when it connected, or out of its
    /// view until now) begins unannounced.
    fn flows<'a>(
        &mut self,
        flows: impl Iterator<Item = &'a Arc<FlowView>>,
        keep: impl Fn(&FlowView) -> bool,
    ) {
        type Entry<'b> = ((MonoNs, MonoNs), Kind, &'b Flow, &'b Context, MonoNs);
        let mut entries: Vec<Entry<'_>> = Vec::new();
        for v in flows.filter(|v| keep(v)) {
            let kind = if v.closed { Kind::Close } else { Kind::Update };
            let time = |f: &Flow, kind: Kind| match kind {
                Kind::Open => f.opened,
                Kind::Close => f.closed.unwrap_or(v.at),
                _ => v.at,
            };
            match &v.open {
                Some(o) if !self.open.contains(&v.flow.key) => {
                    let at = (o.at, time(&o.flow, Kind::Open).min(o.at));
                    entries.push((at, Kind::Open, &o.flow, &o.ctx, o.at));
                    let changed = v.at != o.at
                        || v.flow.payload != o.flow.payload
                        || v.flow.wire != o.flow.wire;
                    if v.closed || changed {
                        let at = (v.at, time(&v.flow, kind).min(v.at));
                        entries.push((at, kind, &v.flow, &v.ctx, v.at));
                    }
                }
                _ => {
                    let at = (v.at, time(&v.flow, kind).min(v.at));
                    entries.push((at, kind, &v.flow, &v.ctx, v.at));
                }
            }
            if v.closed {
                self.open.remove(&v.flow.key);
            } else {
                self.open.insert(v.flow.key);
            }
        }
        self.own_open = self.open.len() as u64;
        entries.sort_by_key(|e| e.0);
        for (_, kind, flow, ctx, at) in entries {
            self.enc.flow(&mut self.buf, kind, flow, ctx, at);
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
    let mut rec = Recorder::new(frames, st.wall, access);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{Live, LiveConfig, LiveSink};
    use netwho_model::record::Names;
    use netwho_model::{Endpoint, FlowEvent};
    use netwho_sink::{RecordRef, Sink as _};
    use netwho_store::recording::{Decoder, Item, ReadStats};

    /// What a reader of the stream replays, as (event, cookie, sent, at).
    fn replayed(rec: &mut Recorder, dec: &mut Decoder) -> Vec<(char, u64, u64, u64)> {
        let mut out = Vec::new();
        dec.frame(&rec.buf, &mut ReadStats::default(), &mut out);
        rec.buf.clear();
        rec.enc.seal();
        out.into_iter()
            .filter_map(|i| match i {
                Item::Flow(f) => {
                    let k = match f.ev {
                        FlowEvent::Opened(_) => 'o',
                        FlowEvent::Updated(_) => 'u',
                        FlowEvent::Closed(_) => 'c',
                    };
                    let fl = f.ev.flow();
                    Some((k, fl.key.cookie.0, fl.payload.bytes_sent, f.at.0))
                }
                _ => None,
            })
            .collect()
    }

    /// The stream is a faithful recording: a flow that opens and closes
    /// between two batches, or opens and grows, comes with its open (as
    /// it was, when it was), then its counters; events in the order they
    /// happened; flows open before the reader came begin unannounced.
    #[test]
    fn the_stream_carries_opens_in_the_order_things_happened() {
        let live = Live::new(LiveConfig::default());
        let mut rx = live.subscribe().1;
        let mut sink = LiveSink::new(Arc::clone(&live));
        let ctx = Context {
            names: Arc::new(Names::default()),
            ..Context::default()
        };
        let feed = |sink: &mut LiveSink, ev: FlowEvent, at: u64| {
            let c = ctx.clone();
            let mut lookup = move |_: &FlowEvent| c.clone();
            let mut rec = RecordRef::new(&ev, MonoNs(at), WallClock::default(), &mut lookup);
            sink.event(&ev, &mut rec);
        };
        let remote = Endpoint::new(std::net::IpAddr::from([10, 231, 9, 1]), 80);
        let mut a = Flow::example(100, 1, remote);
        let mut b = Flow::example(100, 2, remote);
        a.opened = MonoNs(30);
        b.opened = MonoNs(10);
        // the receiver's open is reported first, its sender's after
        feed(&mut sink, FlowEvent::Opened(a.clone()), 40);
        feed(&mut sink, FlowEvent::Opened(b.clone()), 40);
        b.payload.bytes_sent = 1_000;
        b.closed = Some(MonoNs(45));
        feed(&mut sink, FlowEvent::Closed(b.clone()), 50);
        a.payload.bytes_sent = 3_800;
        feed(&mut sink, FlowEvent::Updated(a.clone()), 50);
        sink.tick(MonoNs(1_000_000_000), WallClock::default());
        let batch = rx.try_recv().unwrap();

        let frames = FrameEncoder::new().unwrap();
        let mut rec = Recorder::new(frames, WallClock::default(), Access::All);
        let mut dec = Decoder::new();
        rec.flows(batch.flows.iter(), |_| true);
        assert_eq!(
            replayed(&mut rec, &mut dec),
            [
                ('o', 2, 0, 40),
                ('o', 1, 0, 40),
                ('c', 2, 1_000, 50),
                ('u', 1, 3_800, 50)
            ]
        );
        assert_eq!(rec.own_open, 1);
        // the next batch: only the counters
        a.payload.bytes_sent = 5_700;
        feed(&mut sink, FlowEvent::Updated(a.clone()), 2_000_000_000);
        sink.tick(MonoNs(2_000_000_000), WallClock::default());
        let batch = rx.try_recv().unwrap();
        rec.flows(batch.flows.iter(), |_| true);
        assert_eq!(
            replayed(&mut rec, &mut dec),
            [('u', 1, 5_700, 2_000_000_000)]
        );

        // a reader that comes now: the open flow, unannounced (an update)
        let held = live.snapshot(true).flows;
        let frames = FrameEncoder::new().unwrap();
        let mut late = Recorder::new(frames, WallClock::default(), Access::All);
        late.flows(held.iter(), |v| !v.closed);
        assert_eq!(
            replayed(&mut late, &mut Decoder::new()),
            [('u', 1, 5_700, 2_000_000_000)]
        );
    }
}
