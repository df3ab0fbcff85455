//! The HTTP server: its listeners (a Unix socket, and TCP with a token when
//! asked), the access check in front of every route, and the routes.
//! It runs on its own thread with a single-threaded tokio runtime; history
//! reports run on tokio's blocking threads (SQLite is synchronous).

use crate::access::{Access, Caller, Policy, request_token, token_matches};
use crate::error::{ApiError, StartError};
use crate::live::{FlowView, Live, ProcView};
use crate::params::Params;
use axum::Router;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use netwho_model::MonoNs;
use netwho_model::record::{FlowRecord, RecordKind};
use netwho_model::time::{WallClock, rfc3339_from_unix_ns};
use netwho_pipeline::report::ReportKind;
use netwho_pipeline::report::request::{Format, Printed, ReportRequest, TimeArg};
use netwho_pipeline::subject::FlowSubject;
use netwho_query::Filter;
use netwho_store::history::History;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Where and how the API is served.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The Unix socket (None: not served there).
    pub socket: Option<PathBuf>,
    /// A TCP address (with `token`).
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    /// Where the token is kept (for messages).
    pub token_file: Option<PathBuf>,
    pub policy: Policy,
    /// The history database reports read.
    pub history: Option<PathBuf>,
    /// `/metrics` is served.
    pub metrics: bool,
    pub host: String,
    pub boot_id: [u8; 16],
    /// This host's addresses (`fd.is_local`).
    pub local: HashSet<IpAddr>,
    /// Unix ns when the daemon started.
    pub started_unix_ns: i128,
}

/// The routes, for the OpenAPI check and `--help`.
pub const ROUTES: &[&str] = &[
    "/api/v1/status",
    "/api/v1/flows",
    "/api/v1/processes",
    "/api/v1/events",
    "/api/v1/stream",
    "/api/v1/reports/{report}",
    "/api/v1/openapi.json",
    "/metrics",
];

pub(crate) struct Inner {
    pub live: Arc<Live>,
    pub cfg: ApiConfig,
    registry: Registry,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("cfg", &self.cfg).finish()
    }
}

pub(crate) type AppState = Arc<Inner>;

/// The running server.
#[derive(Debug)]
pub struct Server {
    live: Arc<Live>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    socket: Option<PathBuf>,
}

impl Server {
    /// Stop serving (open streams end) and remove the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // streams end cleanly first, then the server stops
        self.live.close();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("api: the server thread panicked");
        }
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
/// later) and serve on a thread of its own.
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
    let inner = Arc::new(Inner {
        registry: crate::metrics::registry(&live),
        live: Arc::clone(&live),
        cfg,
    });
    let app = router(Arc::clone(&inner));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_name("netwho-api")
        .build()
        .map_err(StartError::Runtime)?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("netwho-api".into())
        .spawn(move || rt.block_on(serve(app, unix, tcp, stop_rx)))
        .map_err(StartError::Runtime)?;
    Ok(Server {
        live,
        stop: Some(stop_tx),
        thread: Some(thread),
        socket,
    })
}

async fn serve(
    app: Router,
    unix: Option<std::os::unix::net::UnixListener>,
    tcp: Option<std::net::TcpListener>,
    stop: oneshot::Receiver<()>,
) {
    let (done_tx, _) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(l) = unix {
        match tokio::net::UnixListener::from_std(l) {
            Ok(l) => tasks.push(spawn_server(
                l,
                app.clone(),
                done_tx.subscribe(),
                "Unix socket",
            )),
            Err(e) => log::error!("api: cannot serve the Unix socket: {e}"),
        }
    }
    if let Some(l) = tcp {
        match tokio::net::TcpListener::from_std(l) {
            Ok(l) => tasks.push(spawn_server(l, app, done_tx.subscribe(), "TCP")),
            Err(e) => log::error!("api: cannot serve TCP: {e}"),
        }
    }
    let _ = stop.await;
    let _ = done_tx.send(true);
    // open streams would hold a graceful shutdown forever: give them a moment
    let all = futures_util::future::join_all(tasks);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), all).await;
}

/// Serves `app` on `l` until `done` changes, naming each caller.
fn spawn_server<L>(
    l: L,
    app: Router,
    mut done: tokio::sync::watch::Receiver<bool>,
    what: &'static str,
) -> tokio::task::JoinHandle<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
    Caller: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let svc = app.into_make_service_with_connect_info::<Caller>();
    tokio::spawn(async move {
        let r = axum::serve(l, svc)
            .with_graceful_shutdown(async move {
                let _ = done.changed().await;
            })
            .await;
        if let Err(e) = r {
            log::error!("api: the {what} server failed: {e}");
        }
    })
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
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint: see /api/v1/openapi.json for the ones there are",
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
            // the web page's entry: /?token=T sets the cookie and goes on
            if req.uri().path() == "/"
                && let Some(q) = req.uri().query()
                && let Some(t) = q.split('&').find_map(|kv| kv.strip_prefix("token="))
                && token_matches(t, token)
            {
                let cookie = format!("netwho_token={token}; HttpOnly; SameSite=Strict; Path=/");
                let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                return r;
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
                            "{what}: send 'Authorization: Bearer TOKEN'{file}, or open /?token=TOKEN in a browser"
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

fn access_json(access: Access, caller: &Caller) -> Value {
    let uid = match caller {
        Caller::Unix { uid, .. } => Some(*uid),
        _ => None,
    };
    json!({"sees": access.name(), "uid": uid})
}

async fn status(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
    ConnectInfo(caller): ConnectInfo<Caller>,
) -> Response {
    let (st_json, seq, now, wall, flows, evicted) = {
        let st = s.live.state();
        (
            st.status
                .as_ref()
                .map(|r| serde_json::to_value(&**r).unwrap_or(Value::Null)),
            st.seq,
            st.now,
            st.wall,
            st.flows.len(),
            st.closed_evicted,
        )
    };
    let history = s.cfg.history.as_ref().map(|p| {
        let size = std::fs::metadata(p).map(|m| m.len()).ok();
        json!({"database": p, "bytes": size})
    });
    let doc = json!({
        "netwho_version": env!("CARGO_PKG_VERSION"),
        "api": "v1",
        "host": s.cfg.host,
        "boot_id": netwho_pipeline::chain::hex(&s.cfg.boot_id),
        "started": rfc3339_from_unix_ns(s.cfg.started_unix_ns),
        "ts": (seq > 0).then(|| rfc3339_from_unix_ns(wall.unix_ns(now))),
        "batch": seq,
        "interval_s": s.live.cfg.interval.as_secs_f64(),
        "access": access_json(access, &caller),
        "live": {
            "flows_held": flows,
            "closed_evicted": evicted,
            "readers": s.live.subscribers(),
            "readers_lagged": s.live.lagged.load(std::sync::atomic::Ordering::Relaxed),
        },
        "history": history,
        "metrics": s.cfg.metrics,
        "status": st_json,
    });
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
    let doc = json!({
        "ts": rfc3339_from_unix_ns(st.wall.unix_ns(st.now)),
        "access": access.name(),
        "filter": f.as_ref().map(ToString::to_string),
        "matched": total,
        "flows": flows,
    });
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
    let doc = json!({
        "ts": rfc3339_from_unix_ns(st.wall.unix_ns(st.now)),
        "access": access.name(),
        "filter": f.as_ref().map(ToString::to_string),
        "processes": rows,
    });
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
    "format",
];

async fn report(
    State(s): State<AppState>,
    axum::Extension(access): axum::Extension<Access>,
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
    };
    let format = p
        .parse("format", |v| {
            Format::from_name(v).ok_or_else(|| format!("'{v}' is not json, csv or text"))
        })?
        .unwrap_or(Format::Json);
    let since = p.parse("since", TimeArg::parse)?;
    let until = p.parse("until", TimeArg::parse)?;
    let f = filter(access, p.str("q"))?;
    let filter_text = f.as_ref().map(ToString::to_string);
    let cfg = req.config(kind, f).map_err(ApiError::bad)?;
    let Some(path) = s.cfg.history.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this daemon keeps no history",
        ));
    };
    let local = s.cfg.local.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let db = History::open_read(&path).map_err(|e| ApiError::internal(e.to_string()))?;
        let now = netwho_sensor::clock::unix_now_ns();
        let (since, until) = netwho_pipeline::report::history::window(&db, since, until, now)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let cfg = netwho_pipeline::report::ReportConfig {
            since,
            until,
            ..cfg
        };
        let r = netwho_pipeline::report::history::report(&db, kind, cfg, local)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let shown = path.display().to_string();
        Ok(Printed::from_history(kind, &shown, r, since, until, filter_text).render(format, false))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the report failed: {e}")))??;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
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
    use crate::client::{Client, Target};
    use crate::live::LiveConfig;

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
        let st: Value = serde_json::from_str(
            &c.get("/api/v1/status", &[])
                .unwrap()
                .ok()
                .unwrap()
                .text()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(st["api"], "v1");
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
}
