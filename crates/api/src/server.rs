//! The HTTP server: its listeners (a Unix socket, and TCP with a token when
//! asked), the access check in front of every route, and the routes.
//!
//! It runs on its own thread with a single-threaded tokio runtime, as an
//! unprivileged user ([`ApiConfig::run_as`], `nobody` by default) from
//! the moment it starts serving: the code that reads what any local user
//! sends holds no privilege. History reports run on the report threads
//! ([`crate::pool`]). Connections, reports and streams are counted per
//! caller ([`crate::limits`]); a connection that sends no complete request
//! header within the header timeout (an idle one too) is closed, and
//! request headers are bounded in size.

use crate::access::{Access, Caller, request_token, token_matches};
pub use crate::config::{ApiConfig, RunAs};
use crate::error::{ApiError, StartError};
use crate::limits::{Quotas, Who};
use crate::live::{FlowView, Live};
use crate::params::Params;
use crate::pool::{Pool, StopOnDrop};
use crate::state::{AppState, Inner};
use crate::view::{filter, flow_json, procs_json, visible};
use crate::wire::{AccessDoc, FlowsDoc, HistoryDoc, LiveDoc, ProcessesDoc, StatusDoc};
use axum::Router;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use netwho_model::time::rfc3339_from_unix_ns;
use netwho_report::HistorySource;
use netwho_report::ReportKind;
use netwho_report::request::{Format, ReportRequest, TimeArg};
use netwho_store::history::History;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The routes, for the OpenAPI check and `--help`.
pub const ROUTES: &[&str] = &[
    "/api/v1/status",
    "/api/v1/flows",
    "/api/v1/processes",
    "/api/v1/events",
    "/api/v1/stream",
    "/api/v1/reports/{report}",
    "/api/v1/alerts",
    "/api/v1/alerts/stream",
    "/api/v1/alerts/{id}/ack",
    "/api/v1/openapi.json",
    "/metrics",
];

/// The running server.
#[derive(Debug)]
pub struct Server {
    inner: Arc<Inner>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    socket: Option<PathBuf>,
}

impl Server {
    /// Stop serving (open streams end, running reports stop) and remove
    /// the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // streams end cleanly first, reports stop, then the server stops
        self.inner.live.close();
        self.inner.pool.cancel_all();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("api: the server thread panicked");
        }
        self.inner.pool.stop();
        if let Some(p) = self.socket.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Bind the listeners (so that a busy socket or port is an error now, not
/// later), start the report threads, and serve on a thread of its own,
/// which first becomes [`ApiConfig::run_as`].
pub fn start(cfg: ApiConfig, live: Arc<Live>) -> Result<Server, StartError> {
    if cfg.listen.is_some() && cfg.token.is_none() {
        return Err(StartError::NoToken);
    }
    let unix = match &cfg.socket {
        Some(p) => Some(bind_unix(p)?),
        None => None,
    };
    let tcp = match cfg.listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|source| StartError::Tcp { addr, source })?,
        ),
        None => None,
    };
    let socket = cfg.socket.clone();
    let run_as = cfg.run_as;
    let pool = Pool::start(cfg.limits.report_workers).map_err(StartError::Runtime)?;
    let quotas = Arc::new(Quotas::new(&cfg.limits));
    let inner = Arc::new(Inner {
        registry: crate::metrics::registry(&live, Some(Arc::clone(&quotas)), cfg.alerts.clone()),
        live: Arc::clone(&live),
        quotas,
        pool,
        cfg,
    });
    let app = router(Arc::clone(&inner));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("netwho-api")
        .build()
        .map_err(StartError::Runtime)?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), std::io::Error>>(1);
    let shared = Arc::clone(&inner);
    let thread = std::thread::Builder::new()
        .name("netwho-api".into())
        .spawn(move || {
            // before anything a caller sends is read
            let became = match run_as {
                Some(r) => netwho_enrich::caps::become_user(r.uid, r.gid),
                None => netwho_enrich::caps::drop_all(),
            };
            let ok = became.is_ok();
            let _ = ready_tx.send(became);
            if ok {
                rt.block_on(serve(app, shared, unix, tcp, stop_rx));
                rt.shutdown_timeout(std::time::Duration::from_secs(1));
            }
        })
        .map_err(StartError::Runtime)?;
    let became = ready_rx
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the API thread ended")));
    let mut server = Server {
        inner,
        stop: Some(stop_tx),
        thread: Some(thread),
        socket,
    };
    if let Err(source) = became {
        server.shutdown();
        return Err(StartError::Identity { run_as, source });
    }
    Ok(server)
}

async fn serve(
    app: Router,
    inner: AppState,
    unix: Option<std::os::unix::net::UnixListener>,
    tcp: Option<std::net::TcpListener>,
    stop: oneshot::Receiver<()>,
) {
    let (done_tx, _) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(l) = unix {
        match tokio::net::UnixListener::from_std(l) {
            Ok(l) => tasks.push(tokio::spawn(accept_unix(
                l,
                app.clone(),
                Arc::clone(&inner),
                done_tx.subscribe(),
            ))),
            Err(e) => log::error!("api: cannot serve the Unix socket: {e}"),
        }
    }
    if let Some(l) = tcp {
        match tokio::net::TcpListener::from_std(l) {
            Ok(l) => tasks.push(tokio::spawn(accept_tcp(
                l,
                app,
                Arc::clone(&inner),
                done_tx.subscribe(),
            ))),
            Err(e) => log::error!("api: cannot serve TCP: {e}"),
        }
    }
    let _ = stop.await;
    let _ = done_tx.send(true);
    let _ = futures_util::future::join_all(tasks).await;
    // connections finish what they are answering, for a moment
    for _ in 0..40 {
        if inner.quotas.conns.held() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Accepts Unix connections until `done`, each named by the kernel.
async fn accept_unix(
    l: tokio::net::UnixListener,
    app: Router,
    inner: AppState,
    mut done: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = done.changed() => return,
            r = l.accept() => r,
        };
        match accepted {
            Ok((io, _)) => {
                let caller = crate::access::unix_caller(&io);
                admit(io, caller, &app, &inner, &done);
            }
            Err(e) => accept_failed("Unix socket", &e).await,
        }
    }
}

/// Accepts TCP connections until `done`.
async fn accept_tcp(
    l: tokio::net::TcpListener,
    app: Router,
    inner: AppState,
    mut done: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = done.changed() => return,
            r = l.accept() => r,
        };
        match accepted {
            Ok((io, addr)) => admit(io, Caller::Tcp(addr), &app, &inner, &done),
            Err(e) => accept_failed("TCP", &e).await,
        }
    }
}

/// Out of descriptors or memory: wait a moment rather than spin (the
/// limits keep the API far below the descriptor limit; this is the last
/// line).
async fn accept_failed(what: &str, e: &std::io::Error) {
    log::warn!("api: accepting on the {what} failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// Serves one connection if its caller may hold one more; otherwise it is
/// closed at once (counted).
fn admit<S>(
    io: S,
    caller: Caller,
    app: &Router,
    inner: &AppState,
    done: &tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let held = match inner.quotas.conns.take(&Who::of(&caller)) {
        Ok(h) => h,
        Err(why) => {
            log::debug!("api: a connection of {caller:?} refused: {why}");
            return;
        }
    };
    let app = app.clone();
    let limits = inner.cfg.limits;
    let mut done = done.clone();
    tokio::spawn(async move {
        let _held = held;
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(caller.clone()));
                let mut app = app.clone();
                async move { tower_service::Service::call(&mut app, req).await }
            });
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192));
        let conn = b.serve_connection(hyper_util::rt::TokioIo::new(io), svc);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    log::debug!("api: a connection ended: {e}");
                }
            }
            _ = done.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn).await;
            }
        }
    });
}

/// The socket at `path`, made for everyone to connect to (what each caller
/// sees is decided by its credentials). A socket left by a daemon that
/// died is replaced; one that answers is another daemon's.
fn bind_unix(path: &std::path::Path) -> Result<std::os::unix::net::UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StartError::SocketDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if let Ok(m) = std::fs::symlink_metadata(path)
        && m.file_type().is_socket()
    {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(StartError::SocketInUse(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let err = |source| StartError::Socket {
        path: path.to_path_buf(),
        source,
    };
    let l = std::os::unix::net::UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

pub(crate) fn router(inner: AppState) -> Router {
    Router::new()
        .route("/", get(crate::web::page))
        .route("/api/v1/status", get(status))
        .route("/api/v1/flows", get(flows))
        .route("/api/v1/processes", get(processes))
        .route("/api/v1/events", get(crate::stream::events))
        .route("/api/v1/stream", get(crate::stream::recording))
        .route("/api/v1/reports/{report}", get(report))
        .route("/api/v1/alerts", get(crate::alerts::list))
        .route("/api/v1/alerts/stream", get(crate::alerts::stream))
        .route(
            "/api/v1/alerts/{id}/ack",
            axum::routing::post(crate::alerts::ack),
        )
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint: see /api/v1/openapi.json for the ones there are",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint takes GET only (the API is read-only but for POST /api/v1/alerts/ID/ack)",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&inner),
            authorize,
        ))
        .with_state(inner)
}

/// Decides what the request may see and puts it in the request's
/// extensions; refuses those that may see nothing.
async fn authorize(
    State(s): State<AppState>,
    ConnectInfo(caller): ConnectInfo<Caller>,
    mut req: Request,
    next: Next,
) -> Response {
    let access = match &caller {
        Caller::Tcp(_) => {
            let Some(token) = &s.cfg.token else {
                return ApiError::new(StatusCode::FORBIDDEN, "no token is configured")
                    .into_response();
            };
            // the web page itself holds no data: it is served to anyone,
            // and sends the token (from /#token=T, kept in the tab's
            // session storage, never in a cookie that every service on
            // this host would be sent) with each request it makes
            if req.uri().path() == "/" {
                return next.run(req).await;
            }
            match request_token(req.headers()) {
                Some(t) if token_matches(&t, token) => Access::All,
                given => {
                    let file = s
                        .cfg
                        .token_file
                        .as_ref()
                        .map(|p| format!(" (it is in {})", p.display()))
                        .unwrap_or_default();
                    let what = if given.is_some() {
                        "a wrong token"
                    } else {
                        "no token"
                    };
                    return ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        format!(
                            "{what}: send 'Authorization: Bearer TOKEN'{file}, or open /#token=TOKEN in a browser"
                        ),
                    )
                    .into_response();
                }
            }
        }
        unix => match s.cfg.policy.unix(unix) {
            Some(a) => a,
            None => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "the caller's credentials could not be read",
                )
                .into_response();
            }
        },
    };
    req.extensions_mut().insert(access);
    next.run(req).await
}

fn access_doc(access: Access, caller: &Caller) -> AccessDoc {
    let uid = match caller {
        Caller::Unix { uid, .. } => Some(*uid),
        _ => None,
    };
    AccessDoc {
        sees: access.name().into(),
        uid,
    }
}

async fn status(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    ConnectInfo(caller): ConnectInfo<Caller>,
) -> Response {
    let snap = s.live.snapshot(access != Access::All);
    let (flows, evicted, open) = {
        let st = s.live.state();
        let open = st
            .flows
            .values()
            .filter(|v| {
                !v.closed
                    && match access {
                        Access::All => true,
                        Access::Uid(u) => v.flow.uid == u,
                    }
            })
            .count() as u64;
        (st.flows.len(), st.closed_evicted, open)
    };
    let (seq, now, wall) = (snap.seq, snap.now, snap.wall);
    let st_json = snap
        .status
        .as_ref()
        .map(|r| crate::stream::status_json(r, access, &snap.flows));
    // a caller who sees only their own traffic is not told everyone's
    let (flows, evicted) = match access {
        Access::All => (Some(flows), Some(evicted)),
        Access::Uid(_) => (None, None),
    };
    let history = s.cfg.history.as_ref().map(|p| HistoryDoc {
        database: p.clone(),
        bytes: std::fs::metadata(p).map(|m| m.len()).ok(),
    });
    let doc = StatusDoc {
        netwho_version: env!("CARGO_PKG_VERSION").into(),
        api: "v1".into(),
        host: s.cfg.host.clone(),
        boot_id: netwho_auditlog::chain::hex(&s.cfg.boot_id),
        started: rfc3339_from_unix_ns(s.cfg.started_unix_ns),
        ts: (seq > 0).then(|| rfc3339_from_unix_ns(wall.unix_ns(now))),
        batch: seq,
        interval_s: s.live.cfg.interval.as_secs_f64(),
        access: access_doc(access, &caller),
        live: LiveDoc {
            flows_open: open,
            flows_held: flows,
            closed_evicted: evicted,
            readers: s.live.subscribers(),
            readers_lagged: s.live.lagged.load(std::sync::atomic::Ordering::Relaxed),
        },
        callers: s.quotas.json(),
        history,
        metrics: s.cfg.metrics,
        status: st_json,
    };
    axum::Json(doc).into_response()
}

async fn flows(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(q);
    p.only(&["q", "state", "limit"])?;
    let f = filter(access, p.str("q"))?;
    let state = p.str("state").unwrap_or("all");
    let want: fn(&FlowView) -> bool = match state {
        "all" => |_| true,
        "open" => |v| !v.closed,
        "closed" => |v| v.closed,
        other => {
            return Err(ApiError::bad(format!(
                "state: '{other}' is not open, closed or all"
            )));
        }
    };
    let limit = p.value::<usize>("limit")?;
    let st = s.live.snapshot(true);
    let mut rows: Vec<&Arc<FlowView>> = st
        .flows
        .iter()
        .filter(|v| want(v) && visible(v, access, f.as_ref(), &s.cfg.local))
        .collect();
    rows.sort_by(|a, b| {
        b.flow
            .payload
            .total()
            .cmp(&a.flow.payload.total())
            .then(a.flow.id.0.cmp(&b.flow.id.0))
    });
    let total = rows.len();
    let flows: Vec<Value> = rows
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|v| flow_json(v, st.wall))
        .collect();
    let doc = FlowsDoc {
        ts: rfc3339_from_unix_ns(st.wall.unix_ns(st.now)),
        access: access.name().into(),
        filter: f.as_ref().map(ToString::to_string),
        matched: total,
        flows,
    };
    Ok(axum::Json(doc).into_response())
}

async fn processes(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(q);
    p.only(&["q", "limit"])?;
    let f = filter(access, p.str("q"))?;
    let limit = p.value::<usize>("limit")?;
    let st = s.live.snapshot(f.is_some());
    let mut rows = procs_json(
        &st.flows,
        &st.procs,
        st.wall,
        access,
        f.as_ref(),
        &s.cfg.local,
    );
    rows.truncate(limit.unwrap_or(usize::MAX));
    let doc = ProcessesDoc {
        ts: rfc3339_from_unix_ns(st.wall.unix_ns(st.now)),
        access: access.name().into(),
        filter: f.as_ref().map(ToString::to_string),
        processes: rows,
    };
    Ok(axum::Json(doc).into_response())
}

/// The report parameters (`netwho report`'s options, by the same names).
pub const REPORT_PARAMS: &[&str] = &[
    "q",
    "since",
    "until",
    "limit",
    "interval",
    "exclude_local",
    "local_nets",
    "pid",
    "ip",
    "port",
    "below",
    "format",
];

async fn report(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    ConnectInfo(caller): ConnectInfo<Caller>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let kind = ReportKind::from_name(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no report '{name}': the reports are {}",
                ReportKind::ALL.map(ReportKind::name).join(", ")
            ),
        )
    })?;
    let p = Params::new(q);
    p.only(REPORT_PARAMS)?;
    let req = ReportRequest {
        limit: p.value::<usize>("limit")?,
        interval_ns: p.parse("interval", |v| match netwho_query::parse_duration_ns(v) {
            Some(n) if n > 0 => Ok(n),
            _ => Err(format!("'{v}' is not a duration (like 10m, 1h, 1d)")),
        })?,
        exclude_local: p.flag("exclude_local")?,
        local_nets: p.str("local_nets").map(str::to_string),
        pid: p.value("pid")?,
        ip: p.value("ip")?,
        port: p.value("port")?,
        community_seed: s.cfg.community_seed,
        below: p.value("below")?,
    };
    let format = p
        .parse("format", |v| {
            Format::from_name(v).ok_or_else(|| format!("'{v}' is not json, csv or text"))
        })?
        .unwrap_or(Format::Json);
    let since = p.parse("since", TimeArg::parse)?;
    let until = p.parse("until", TimeArg::parse)?;
    let f = filter(access, p.str("q"))?;
    let cfg = req.config(kind, f).map_err(ApiError::bad)?;
    let Some(path) = s.cfg.history.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this daemon keeps no history",
        ));
    };
    let held = s
        .quotas
        .reports
        .take(&Who::of(&caller))
        .map_err(|why| ApiError::new(StatusCode::TOO_MANY_REQUESTS, why.to_string()))?;
    let local = s.cfg.local.clone();
    let now = netwho_enrich::clock::unix_now_ns();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // the client leaving (or the deadline) drops this: the report stops
    let _stop_on_drop = StopOnDrop(Arc::clone(&stop));
    let (tx, rx) = oneshot::channel();
    let job = Box::new(move |stopped: crate::pool::Stopped| {
        // held until the report really ends, not when its client leaves
        let _held = held;
        let r = (|| -> Result<String, ApiError> {
            let mut db =
                History::open_read(&path).map_err(|e| ApiError::internal(e.to_string()))?;
            db.cancel_when(stopped);
            let mut source = HistorySource::new(db, path.display().to_string(), local);
            let printed = netwho_report::report(&mut source, kind, cfg, since, until, now)
                .map_err(report_error)?;
            Ok(printed.render(format, false))
        })();
        let _ = tx.send(r);
    });
    s.pool.submit(job, stop).map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is running as many reports as it can: try again shortly",
        )
    })?;
    let limit = s.cfg.limits.report_timeout;
    let body = match tokio::time::timeout(limit, rx).await {
        Ok(Ok(r)) => r?,
        Ok(Err(_)) => return Err(ApiError::internal("the report thread ended")),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the report took longer than {}s and was stopped: narrow it (a shorter since/until, a filter, a coarser interval)",
                    limit.as_secs()
                ),
            ));
        }
    };
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// A report's failure as the client is told it.
fn report_error(e: impl Into<netwho_report::ReportError>) -> ApiError {
    use netwho_report::ReportError;
    use netwho_store::history::HistoryError;
    match e.into() {
        e @ ReportError::TooManyIntervals { .. } => ApiError::bad(e.to_string()),
        ReportError::History(HistoryError::Cancelled) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the report was stopped (the daemon is stopping, or it took too long)",
        ),
        e => ApiError::internal(e.to_string()),
    }
}

pub(crate) const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn metrics(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
) -> Result<Response, ApiError> {
    if !s.cfg.metrics {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics are off: set metrics.enabled = true in the configuration",
        ));
    }
    if access != Access::All {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "metrics show every user's traffic: only root and members of the API's group (or a TCP client with the token) may read them",
        ));
    }
    let text = crate::metrics::encode(&s.registry)
        .map_err(|_| ApiError::internal("encoding the metrics failed"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Policy;
    use crate::client::{Client, Target};
    use crate::limits::Limits;
    use crate::live::LiveConfig;
    use std::collections::HashSet;

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let mut paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        paths.sort_unstable();
        let mut routes = ROUTES.to_vec();
        routes.sort_unstable();
        assert_eq!(paths, routes);
        let params: Vec<&str> = doc["paths"]["/api/v1/reports/{report}"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .filter(|n| *n != "report")
            .collect();
        assert_eq!(params, REPORT_PARAMS);
    }

    #[test]
    fn a_server_on_a_socket_answers_refuses_and_goes_away() {
        let dir = std::env::temp_dir().join(format!("netwho-api-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sock = dir.join("api.sock");
        let cfg = ApiConfig {
            socket: Some(sock.clone()),
            listen: None,
            token: None,
            token_file: None,
            policy: Policy { group: None },
            history: None,
            metrics: true,
            host: "h".into(),
            boot_id: [0; 16],
            local: HashSet::new(),
            started_unix_ns: 0,
            limits: Limits::default(),
            run_as: None,
            community_seed: 0,
            alerts: None,
        };
        let live = Live::new(LiveConfig::default());
        let server = start(cfg.clone(), Arc::clone(&live)).unwrap();
        // a second daemon on the same socket is refused
        let again = start(cfg.clone(), Live::new(LiveConfig::default()));
        assert!(
            matches!(again, Err(StartError::SocketInUse(_))),
            "{again:?}"
        );
        let c = Client::new(Target::Unix(sock.clone())).unwrap();
        // the document the server writes is the type the client reads
        let st = c.status().unwrap();
        assert_eq!(st.api, "v1");
        assert_eq!(st.access.sees, "all", "root sees everything");
        assert_eq!(st.netwho_version, env!("CARGO_PKG_VERSION"));
        let e = c
            .get("/api/v1/flows", &[("limt", "1".into())])
            .unwrap()
            .ok();
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("unknown parameter 'limt'"), "{msg}");
        let e = c.get("/api/v1/reports/by-user", &[]).unwrap().ok();
        assert!(e.unwrap_err().to_string().contains("keeps no history"));
        let e = c.get("/api/v1/reports/by-nothing", &[]).unwrap().ok();
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("the reports are top-procs")
        );
        // a filter nested 10,000 deep is a 400 on a thread with an
        // ordinary stack, and the server goes on
        // (sent as a hostile client would: the parentheses unencoded)
        for q in ["(".repeat(10_000), "not+".repeat(4_000), "(".repeat(30_000)] {
            use std::io::{Read as _, Write as _};
            let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            write!(
                s,
                "GET /api/v1/flows?q={q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
            assert!(
                answer.contains("deeper than 64") || answer.contains("at most 16384"),
                "{answer}"
            );
        }
        assert!(c.get("/api/v1/status", &[]).unwrap().ok().is_ok());
        // TCP without a token cannot start
        let tcp = ApiConfig {
            socket: None,
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..cfg
        };
        assert!(matches!(
            start(tcp, Arc::clone(&live)),
            Err(StartError::NoToken)
        ));
        server.stop();
        assert!(!sock.exists());
        let gone = Client::new(Target::Unix(sock))
            .unwrap()
            .get("/api/v1/status", &[]);
        assert!(
            gone.unwrap_err()
                .to_string()
                .contains("is 'netwho daemon' running?")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Connections beyond a caller's share are closed at once, a
    /// connection that says nothing is closed after the header timeout,
    /// and an oversized request header is refused.
    #[test]
    fn connections_are_limited_per_caller_and_idle_ones_closed() {
        use std::io::{Read as _, Write as _};
        let cfg = ApiConfig {
            socket: None,
            listen: Some("127.0.0.1:0".parse().unwrap()),
            token: Some("t".into()),
            token_file: None,
            policy: Policy { group: None },
            history: None,
            metrics: false,
            host: "h".into(),
            boot_id: [0; 16],
            local: HashSet::new(),
            started_unix_ns: 0,
            limits: Limits {
                conns_per_caller: 3,
                header_timeout: std::time::Duration::from_millis(300),
                ..Limits::default()
            },
            run_as: None,
            community_seed: 0,
            alerts: None,
        };
        // the port the listener got
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let server = start(
            ApiConfig {
                listen: Some(addr),
                ..cfg
            },
            Live::new(LiveConfig::default()),
        )
        .unwrap();
        let idle: Vec<std::net::TcpStream> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        // the fourth is closed without an answer
        let mut extra = std::net::TcpStream::connect(addr).unwrap();
        extra
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = extra.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut buf = Vec::new();
        let _ = extra.read_to_end(&mut buf);
        assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
        // the idle ones are closed by the header timeout...
        for mut s in idle {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut b = [0u8; 64];
            let n = s.read(&mut b).unwrap_or(0);
            assert!(n == 0 || b.starts_with(b"HTTP/1.1 408"), "{n}");
        }
        // ...and the caller is served again
        let c = Client::new(Target::Tcp {
            addr: addr.to_string(),
            token: "t".into(),
        })
        .unwrap();
        let st = poll_ok(|| c.get("/api/v1/status", &[]).map_err(|e| e.to_string()));
        assert!(st.ok().is_ok());
        // a request header over the bound: refused, not read without end
        let mut big = std::net::TcpStream::connect(addr).unwrap();
        big.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let huge = format!(
            "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(200_000)
        );
        let _ = big.write_all(huge.as_bytes());
        let mut b = Vec::new();
        let _ = big.read_to_end(&mut b);
        let head = String::from_utf8_lossy(&b);
        assert!(
            head.is_empty() || head.starts_with("HTTP/1.1 431"),
            "{head}"
        );
        server.stop();
    }

    /// The first Ok of `f` within ten seconds.
    fn poll_ok<T>(mut f: impl FnMut() -> Result<T, String>) -> T {
        let mut last = String::new();
        for _ in 0..100 {
            match f() {
                Ok(t) => return t,
                Err(e) => last = e,
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{last}")
    }
}
