//! Wiring of `netwho daemon`: the configuration, the history sink, the
//! live state and its API.

use crate::args::{DaemonArgs, SelectArgs};
use crate::config::{self, Config};
use crate::failure::{Failure, cannot_start};
use anyhow::Context as _;
use netwho_api::{ApiConfig, Live, LiveConfig, LiveSink};
use netwho_pipeline::Sink;
use netwho_pipeline::histsink::{HistoryConfig, HistorySink};
use netwho_store::history::History;
use std::time::Duration;

/// What the daemon runs with.
#[derive(Debug)]
pub struct Daemon {
    pub config: Config,
    /// The filter: the command line's, else the file's.
    pub select: SelectArgs,
}

/// The configuration in effect: the file (or the defaults), then the
/// command line's overrides. `--print-config` prints it here.
pub fn configure(d: &DaemonArgs, community_seed: u16) -> Result<Option<Daemon>, Failure> {
    let (mut cfg, from) = config::load(d.config.as_deref()).map_err(cannot_start)?;
    if community_seed != 0 {
        cfg.community_id_seed = community_seed;
    }
    if let Some(db) = &d.db {
        cfg.history.db = db.clone();
    }
    if let Some(url) = &d.fleet {
        cfg.fleet.nats = url.clone();
    }
    if let Some(every) = d.commit_every {
        let ms = every.as_millis();
        cfg.history.commit_every = if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        };
    }
    if d.alerts_audit {
        cfg.alerts.audit = true;
    }
    if d.print_config {
        if let Some(p) = from {
            println!("# {} with the defaults filled in", p.display());
        }
        print!("{}", cfg.to_toml());
        return Ok(None);
    }
    let mut select = d.select.clone();
    if select.expression().ok().flatten().is_none() && !cfg.filter.is_empty() {
        select.filter = Some(cfg.filter.clone());
    }
    match from {
        Some(p) => log::info!("configuration: {}", p.display()),
        None => log::info!(
            "configuration: the defaults ({} not found)",
            config::DEFAULT_PATH
        ),
    }
    Ok(Some(Daemon {
        config: cfg,
        select,
    }))
}

/// What the daemon runs beside the pipeline.
pub struct Running {
    pub sinks: Vec<Box<dyn Sink>>,
    /// The API server (stopped when dropped).
    pub api: Option<netwho_api::Server>,
    /// The database's lock, held while the daemon runs.
    pub lock: std::fs::File,
    /// Where it keeps and serves things, in words (its start line).
    pub summary: String,
}

/// The history sink on its database (created, with its directory, when
/// missing), the live state and the API serving both.
pub fn start(d: &Daemon) -> Result<Running, Failure> {
    let h = &d.config.history;
    make_parent(&h.db)?;
    // one daemon per database; and a start that fails (a busy socket)
    // leaves no new database behind: the API binds first
    let lock = lock_db(&h.db)?;
    raise_nofile();
    let board = netwho_alerts::Board::new();
    let (live_sink, api, api_summary) = api(d, &board)?;
    // members of the API's group see everything through the API: they
    // may read the database too (0640); with no such group only root
    let group = netwho_enrich::users::gid_of(&d.config.api.group);
    let access = netwho_store::private::Access::group(group);
    let db = History::create_with(&h.db, access).map_err(cannot_start)?;
    let commit_every = h.commit_every().map_err(config_error)?;
    let history = HistorySink::new(
        db,
        HistoryConfig {
            commit_every,
            retention: d.config.retention(),
            prune_every: Duration::from_secs(3600),
            boot_id: netwho_auditlog::chain::hex(&netwho_enrich::boot_id()),
            remote_names: h.remote_names,
        },
    )
    .context("starting the history writer")
    .map_err(cannot_start)?;
    log::info!(
        "history: {} (a batch every {commit_every:?})",
        h.db.display()
    );
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(history), Box::new(live_sink)];
    if let Some(cfg) = d.config.alerts.plan(&h.db, access).map_err(config_error)? {
        sinks.push(Box::new(
            netwho_alerts::AlertSink::start(cfg, board)
                .context("starting the alerts")
                .map_err(cannot_start)?,
        ));
    }
    if let Some(plan) = d.config.export.plan().map_err(config_error)? {
        sinks.extend(plan.sinks().map_err(cannot_start)?);
    }
    if let Some(plan) = d.config.fleet.plan().map_err(config_error)? {
        sinks.push(crate::cmd::export::fleet_sink(plan).map_err(cannot_start)?);
    }
    let summary = format!("history {}, {api_summary}", h.db.display());
    Ok(Running {
        sinks,
        api,
        lock,
        summary,
    })
}

/// The API's limits keep its connections far below the usual 1,024
/// descriptors, but the collector needs its own headroom whatever callers
/// do: the soft limit goes up to the hard one (at most 65,536).
fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut r) == 0 {
            let want = r.rlim_max.min(65_536);
            if want > r.rlim_cur {
                r.rlim_cur = want;
                libc::setrlimit(libc::RLIMIT_NOFILE, &raw const r);
            }
        }
    }
}

/// An exclusive lock on `DB.lock` (0600), held while the daemon runs: a
/// second daemon on the same database is refused, naming the first.
fn lock_db(db: &std::path::Path) -> Result<std::fs::File, Failure> {
    use std::io::{Read as _, Seek as _, Write as _};
    use std::os::fd::AsRawFd as _;
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let mut f = netwho_store::private::open_append(&path, netwho_store::private::Access::OWNER)
        .with_context(|| format!("opening {}", path.display()))
        .map_err(cannot_start)?;
    // SAFETY: flock on a descriptor this function owns
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut pid = String::new();
        let _ = f.read_to_string(&mut pid);
        return Err(cannot_start(anyhow::anyhow!(
            "another netwho daemon{} is using the history database {}: stop it first, or give this one another history.db",
            match pid.trim() {
                "" => String::new(),
                p => format!(" (pid {p})"),
            },
            db.display()
        )));
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = writeln!(f, "{}", std::process::id());
    Ok(f)
}

/// The live state's sink and the server (`api` and `metrics`).
fn api(
    d: &Daemon,
    board: &std::sync::Arc<netwho_alerts::Board>,
) -> Result<(LiveSink, Option<netwho_api::Server>, String), Failure> {
    let a = &d.config.api;
    let m = &d.config.metrics;
    let keep_closed = a.keep_closed().map_err(config_error)?;
    let labels = m.label_set().map_err(config_error)?;
    let live = Live::new(LiveConfig {
        keep_closed,
        max_series: m.max_series,
        max_series_per_uid: match m.max_series_per_uid {
            0 => netwho_api::metrics::default_per_uid(m.max_series),
            n => n,
        },
        labels,
        ..LiveConfig::default()
    });
    let sink = LiveSink::new(std::sync::Arc::clone(&live));
    let socket = (!a.socket.as_os_str().is_empty()).then(|| a.socket.clone());
    let listen = a.listen_addr().map_err(config_error)?;
    if socket.is_none() && listen.is_none() {
        log::info!("api: off (neither api.socket nor api.listen is set)");
        return Ok((sink, None, "api off".into()));
    }
    let token = match listen {
        Some(_) => Some(token(&a.token_file)?),
        None => None,
    };
    let group = netwho_enrich::users::gid_of(&a.group);
    if group.is_none() {
        log::warn!(
            "api: there is no group '{0}': over the socket only root sees everyone's traffic \
             ('groupadd --system {0}', then 'usermod -aG {0} USER')",
            a.group
        );
    }
    let origin = netwho_auditlog::chain::Origin::here();
    let limits = a.limits().map_err(config_error)?;
    let run_as = run_as(&a.user)?;
    if let Some(l) = listen
        && !l.ip().is_loopback()
    {
        log::warn!(
            "api: listening on {l}, which other hosts can reach, in plain HTTP: put TLS in front of it"
        );
    }
    let cfg = ApiConfig {
        socket: socket.clone(),
        listen,
        token,
        token_file: listen.map(|_| a.token_file.clone()),
        policy: netwho_api::access::Policy { group },
        history: Some(d.config.history.db.clone()),
        metrics: m.enabled,
        host: origin.host,
        boot_id: netwho_enrich::boot_id(),
        local: netwho_enrich::net::local_addrs(),
        started_unix_ns: netwho_enrich::clock::unix_now_ns(),
        limits,
        run_as,
        community_seed: d.config.community_id_seed,
        alerts: d
            .config
            .alerts
            .enabled
            .then(|| std::sync::Arc::clone(board)),
    };
    let server = netwho_api::start(cfg, live).map_err(cannot_start)?;
    let mut said = Vec::new();
    if let Some(p) = &socket {
        said.push(match group {
            Some(_) => format!("api {} (group {} sees everything)", p.display(), a.group),
            None => format!(
                "api {} (no group {}: only root sees everything)",
                p.display(),
                a.group
            ),
        });
    }
    if let Some(l) = listen {
        said.push(format!(
            "api http://{l}/ (token in {})",
            a.token_file.display()
        ));
    }
    for s in &said {
        // (as "api: ..." with -v)
        log::info!("api: {}", s.trim_start_matches("api "));
    }
    if m.enabled {
        said.push("metrics at /metrics".into());
    }
    Ok((sink, Some(server), said.join(", ")))
}

/// Who the API serves as: `api.user` (its uid and primary group), when
/// the daemon is root and the name is not empty.
fn run_as(user: &str) -> Result<Option<netwho_api::server::RunAs>, Failure> {
    // SAFETY: geteuid has no preconditions
    if user.is_empty() || unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    match netwho_enrich::users::ids_of(user) {
        Some((uid, gid)) => {
            log::info!("api: serves as {user} (uid {uid}, gid {gid}), without privileges");
            Ok(Some(netwho_api::server::RunAs { uid, gid }))
        }
        None => Err(config_error(format!(
            "api.user: there is no user '{user}' to serve the API as: name an existing unprivileged user (nobody), or \"\" to serve as the daemon's own"
        ))),
    }
}

/// The TCP token: read from `path`, or made and written there (0600).
fn token(path: &std::path::Path) -> Result<String, Failure> {
    use std::io::Write as _;
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(cannot_start(anyhow::anyhow!(
                "the API token file {} is mode {mode:04o}: whoever can read it has the API's full access; \
                 'chmod 600 {}' if nobody else has read it, or remove it (a new token is made)",
                path.display(),
                path.display()
            )));
        }
    }
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {
            return Err(cannot_start(anyhow::anyhow!(
                "the API token file {} is empty: remove it (a new token is made) or put a token in it",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(cannot_start(
                anyhow::Error::new(e).context(format!("reading {}", path.display())),
            ));
        }
    }
    let t = netwho_api::access::new_token()
        .context("making an API token")
        .map_err(cannot_start)?;
    make_parent(path)?;
    netwho_store::private::create(path, netwho_store::private::Access::OWNER, false)
        .and_then(|mut f| writeln!(f, "{t}"))
        .with_context(|| format!("writing the API token to {}", path.display()))
        .map_err(cannot_start)?;
    log::info!("api: made a token in {}", path.display());
    Ok(t)
}

/// The directory `path` goes in, created (0750) if missing.
fn make_parent(path: &std::path::Path) -> Result<(), Failure> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => netwho_store::private::make_dirs(dir)
            .with_context(|| format!("creating {}", dir.display()))
            .map_err(cannot_start),
        None => Ok(()),
    }
}

/// A value of the configuration that is wrong (the message names its key).
fn config_error(msg: String) -> Failure {
    cannot_start(anyhow::anyhow!(msg))
}
