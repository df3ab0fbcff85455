//! The daemon's alert sink: flow events through the baselines
//! ([`Engine`]), the alerts out to the board (API, web page, metrics), the
//! alert log, the journal and the webhook; the baselines and alerts into
//! the history database.
//!
//! The pipeline's thread decides (a map lookup per event) and hands what
//! was learned and raised to a writer thread over a bounded channel: a slow
//! database merges batches, and what a refusing database cannot take is
//! kept and retried (bounded, the rest counted).

use crate::board::{BOARD_MAX, Board, Posted};
use crate::engine::{Dest, Engine, Kind, Limits, Raised, Seen};
use crate::webhook::{Url, Webhook};
use netwho_model::time::{WallClock, rfc3339_from_unix_ns};
use netwho_model::{Direction, FlowEvent, MonoNs};
use netwho_query::{Filter, canonical};
use netwho_sink::status::StatusRecord;
use netwho_sink::subject::FlowSubject;
use netwho_sink::{RecordRef, Sink, SinkControl};
use netwho_store::history::{BaselineChange, History, HistoryError};
use netwho_store::private::Access;
use std::collections::HashSet;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Baseline changes kept for a database that refuses them (then the
/// oldest go, counted).
const RETRY_CHANGES: usize = 100_000;
/// Alerts kept for a database that refuses them (they are in the log,
/// the journal and the API already; then the oldest go, counted).
const RETRY_ALERTS: usize = 10_000;

/// How alerts are raised and where they go.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// The history database (baselines and alerts live there).
    pub db: PathBuf,
    /// Who may read it.
    pub access: Access,
    /// The learning period, from the first start with alerts.
    pub learn: Duration,
    /// A program is its systemd unit (its executable when it has none).
    pub by_unit: bool,
    /// Flows these match never alert (they still learn).
    pub allow: Vec<Filter>,
    /// Only log what would alert (the alert log and the daemon's log).
    pub audit: bool,
    /// The alert log (JSON lines, 0600), if any.
    pub log: Option<PathBuf>,
    /// journald's native socket, if alerts go there.
    pub journal: Option<PathBuf>,
    /// The webhook, if any.
    pub webhook: Option<Url>,
    /// Bounds.
    pub limits: Limits,
}

/// Why the alerts could not start.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The database.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The alert log.
    #[error("alerts.log: cannot open {path}: {source}", path = path.display())]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A thread.
    #[error("alerts: cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// One alert on its way out.
#[derive(Debug)]
struct Out {
    id: i64,
    ts_ns: i64,
    uid: u32,
    kind: Kind,
    record: Arc<str>,
    message: String,
    /// Audit mode: only logged.
    audit: bool,
}

enum Msg {
    Put {
        changes: Vec<BaselineChange>,
        alerts: Vec<Out>,
    },
    Ack(Vec<(i64, i64)>),
}

/// The alert sink (`[alerts]` of the daemon).
#[derive(Debug)]
pub struct AlertSink {
    engine: Engine,
    allow: Vec<Filter>,
    by_unit: bool,
    audit: bool,
    board: Arc<Board>,
    tx: Option<SyncSender<Msg>>,
    writer: Option<JoinHandle<()>>,
    changes: Vec<BaselineChange>,
    alerts: Vec<Out>,
    next_id: i64,
    self_pid: u32,
    local: HashSet<IpAddr>,
    said_learned: bool,
    wall: WallClock,
    now: MonoNs,
    last_sent: Option<MonoNs>,
    /// Flows handed on before their executable's hash was known, by the
    /// file: judged when the hash comes ([`Sink::exe_hash`]).
    waiting: rustc_hash::FxHashMap<WaitKey, Waiting>,
    /// Flows whose hash never came (not judged by hash).
    unhashed: u64,
}

/// Flows waiting for their executable's hash at most (the rest are not
/// judged by hash, counted as unlearned).
const WAITING_MAX: usize = 4_096;
/// How long a flow waits for its hash.
const WAITING_NS: i64 = 60_000_000_000;

/// What a flow waits for: its executable's file, or (a process gone
/// before its file was identified) the path it ran.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum WaitKey {
    File(netwho_model::FileId),
    Exe(Box<str>),
}

/// A flow waiting for its executable's hash.
#[derive(Debug)]
struct Waiting {
    program: String,
    allowed: bool,
    partial: Partial,
    at_ns: i64,
}

/// What an alert about a flow says, before its kind.
#[derive(Debug, Clone)]
struct Partial {
    fields: serde_json::Map<String, serde_json::Value>,
    uid: u32,
    /// The line's words after the kind.
    line: String,
}

impl AlertSink {
    /// Opens the baselines (learned from the history the first time),
    /// the alert log and the journal, and starts the writer (and the
    /// webhook).
    pub fn start(cfg: AlertConfig, board: Arc<Board>) -> Result<AlertSink, AlertError> {
        let mut db = History::create_with(&cfg.db, cfg.access)?;
        let now = i64::try_from(netwho_enrich::clock::unix_now_ns()).unwrap_or(i64::MAX);
        let since = db.alerts_learn_since(now)?;
        let learn = i64::try_from(cfg.learn.as_nanos()).unwrap_or(i64::MAX);
        let mut engine = Engine::new(cfg.limits, since.saturating_add(learn));
        let stored = db.alerts_baseline(cfg.limits.programs, cfg.limits.dests_per_program)?;
        let mut seeded = 0;
        if stored.is_empty() {
            let seed = db.alerts_seed(cfg.by_unit, cfg.limits.dests)?;
            seeded = seed.len();
            engine.seed(seed);
        } else {
            engine.load(stored);
        }
        board
            .learn_until_ns
            .store(engine.learn_until_ns(), Ordering::Relaxed);
        for a in db.alerts_recent(BOARD_MAX)? {
            board.post(Posted {
                id: a.id,
                uid: a.uid,
                kind: a.kind,
                ts_ns: a.ts_ns,
                record: Arc::from(a.record),
                acked_ns: a.acked_ns,
            });
        }
        let next_id = db.alerts_last_id()? + 1;
        let log = match &cfg.log {
            Some(p) => Some(
                netwho_store::private::open_append(p, Access::OWNER).map_err(|source| {
                    AlertError::Log {
                        path: p.clone(),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        let journal = cfg.journal.as_ref().and_then(|p| {
            let s = UnixDatagram::unbound().ok()?;
            match s.connect(p) {
                Ok(()) => {
                    let _ = s.set_nonblocking(true);
                    Some(s)
                }
                Err(e) => {
                    log::info!(
                        "alerts: not to the journal ({}: {e}); set alerts.journal = \"\" to say so",
                        p.display()
                    );
                    None
                }
            }
        });
        let webhook = match cfg.webhook.clone() {
            Some(u) => Some(Webhook::start(u, Arc::clone(&board)).map_err(AlertError::Thread)?),
            None => None,
        };
        let (programs, dests) = engine.size();
        let learning = engine.learning(now);
        log::info!(
            "alerts: {} ({programs} programs, {dests} destinations known{}){}",
            if learning {
                format!(
                    "learning until {}",
                    rfc3339_from_unix_ns(i128::from(engine.learn_until_ns()))
                )
            } else {
                "on".to_string()
            },
            if seeded > 0 {
                format!(", learned from the history's {seeded} rows")
            } else {
                String::new()
            },
            if cfg.audit {
                ", audit mode: what would alert is only logged"
            } else {
                ""
            }
        );
        let (tx, rx) = sync_channel(4);
        let b = Arc::clone(&board);
        let writer = std::thread::Builder::new()
            .name("netwho-alerts".into())
            .spawn(move || {
                netwho_enrich::caps::drop_all_here("the alerts' writer");
                write_loop(db, &rx, &b, log, journal, webhook);
            })
            .map_err(AlertError::Thread)?;
        Ok(AlertSink {
            engine,
            allow: cfg.allow,
            by_unit: cfg.by_unit,
            audit: cfg.audit,
            board,
            tx: Some(tx),
            writer: Some(writer),
            changes: Vec::new(),
            alerts: Vec::new(),
            next_id,
            self_pid: std::process::id(),
            local: netwho_enrich::net::local_addrs(),
            said_learned: !learning,
            wall: WallClock::default(),
            now: MonoNs(0),
            last_sent: None,
            waiting: rustc_hash::FxHashMap::default(),
            unhashed: 0,
        })
    }

    fn observe(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        // a flow's program and destination are what they were at its
        // open (every flow is opened before it is updated or closed); a
        // hash known only later is judged with a later event of the flow,
        // or through `exe_hash`
        let f = ev.flow();
        let opened = matches!(ev, FlowEvent::Opened(_));
        // the daemon's own flows (its webhook, API, exports) are not judged
        if f.key.proc.tgid == self.self_pid {
            return;
        }
        let (now, wall) = (rec.now(), rec.wall());
        self.now = self.now.max(now);
        self.wall = wall;
        let now_ns = i64::try_from(wall.unix_ns(now)).unwrap_or(i64::MAX);
        let ctx = rec.context();
        let unit = ctx.names.unit.as_str();
        let program: std::borrow::Cow<'_, str> = if self.by_unit && !unit.is_empty() {
            unit.to_owned().into()
        } else if f.proc.exe.is_empty() {
            format!("[{}]", f.comm).into()
        } else {
            f.proc.exe.as_str().into()
        };
        if !opened
            && !ctx
                .exe_sha256
                .as_deref()
                .is_some_and(|h| self.engine.hash_is_new(&program, h))
        {
            return;
        }
        let allowed = !self.allow.is_empty() && {
            let subject = FlowSubject {
                flow: f,
                ctx,
                now,
                local: &self.local,
            };
            self.allow.iter().any(|a| a.matches(&subject))
        };
        let dest = (opened
            && f.direction == Direction::Outbound
            && !f.remote.addr.is_unspecified())
        .then(|| Dest {
            proto: f.proto,
            name: canonical(f.remote.addr).to_string().into(),
            port: f.remote.port,
        });
        let sha = ctx.exe_sha256.clone();
        let file = f.proc.exe_file;
        let raised = self.engine.observe(
            &Seen {
                program: &program,
                sha256: sha.as_deref(),
                dest,
                allowed,
            },
            now_ns,
        );
        self.changes.extend(self.engine.take_changes());
        let key = match file {
            Some(id) => Some(WaitKey::File(id)),
            None if !f.proc.exe.is_empty() => Some(WaitKey::Exe(f.proc.exe.as_str().into())),
            None => None,
        };
        let wait = sha.is_none()
            && key
                .as_ref()
                .is_some_and(|k| !self.waiting.contains_key(k) && self.waiting.len() < WAITING_MAX);
        if raised.is_empty() && !wait {
            return;
        }
        let partial = partial(&program, f.key.proc.start_ticks, rec);
        for r in raised {
            self.emit(&r, &partial, now_ns);
        }
        if let (true, Some(k)) = (wait, key) {
            self.waiting.insert(
                k,
                Waiting {
                    program: program.into_owned(),
                    allowed,
                    partial,
                    at_ns: now_ns,
                },
            );
        }
    }

    /// Raises an alert: to the board (unless auditing), then to the writer.
    fn emit(&mut self, r: &Raised, p: &Partial, now_ns: i64) {
        let id = self.next_id;
        self.next_id += 1;
        let mut m = serde_json::Map::new();
        m.insert("event".into(), "alert".into());
        m.insert("id".into(), id.into());
        m.insert("kind".into(), r.kind.name().into());
        m.insert("ts".into(), rfc3339_from_unix_ns(i128::from(now_ns)).into());
        m.extend(p.fields.clone());
        if r.kind == Kind::ExeChanged {
            m.insert("known_sha256".into(), r.known.clone().into());
        }
        if r.unlearned {
            // did not fit the baseline: it may alert again
            m.insert("unlearned".into(), true.into());
        }
        if self.audit {
            m.insert("audit".into(), true.into());
        }
        let a = Out {
            id,
            ts_ns: now_ns,
            uid: p.uid,
            kind: r.kind,
            record: Arc::from(serde_json::Value::Object(m).to_string()),
            message: format!("{}: {}", r.kind.name(), p.line),
            audit: self.audit,
        };
        if a.audit {
            log::info!("alerts (audit): would alert {}", a.message);
        } else {
            log::info!("alert {}", a.message);
            self.board.raised(a.kind);
            self.board.post(Posted {
                id: a.id,
                uid: a.uid,
                kind: a.kind.name().to_string(),
                ts_ns: a.ts_ns,
                record: Arc::clone(&a.record),
                acked_ns: None,
            });
        }
        self.alerts.push(a);
    }

    /// Hands what was learned and raised to the writer (every turn when
    /// there are alerts, else every second).
    fn send(&mut self, force: bool) {
        let due = !self.alerts.is_empty()
            || self
                .last_sent
                .is_none_or(|t| self.now.since(t) >= 1_000_000_000);
        if !(force || due) {
            return;
        }
        let acks = self.board.take_acks();
        if self.changes.is_empty() && self.alerts.is_empty() && acks.is_empty() {
            return;
        }
        self.last_sent = Some(self.now);
        let Some(tx) = &self.tx else { return };
        if !acks.is_empty() {
            // acknowledgements are small and rare; a full queue keeps
            // them for the next turn
            let sent = if force {
                tx.send(Msg::Ack(acks)).map_err(|e| e.0)
            } else {
                tx.try_send(Msg::Ack(acks)).map_err(|e| match e {
                    TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
                })
            };
            if let Err(Msg::Ack(a)) = sent {
                self.board.return_acks(a);
            }
        }
        let msg = Msg::Put {
            changes: std::mem::take(&mut self.changes),
            alerts: std::mem::take(&mut self.alerts),
        };
        let back = if force {
            tx.send(msg).err().map(|e| e.0)
        } else {
            match tx.try_send(msg) {
                Ok(()) => None,
                Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => Some(m),
            }
        };
        if let Some(Msg::Put { changes, alerts }) = back {
            // the writer is behind: merged into the next batch; alerts
            // already went to the board, only their writing waits
            self.changes = changes;
            self.alerts = alerts;
            let excess = self.changes.len().saturating_sub(RETRY_CHANGES);
            if excess > 0 {
                self.changes.drain(..excess);
                self.board
                    .counts
                    .storage_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What an alert about this flow says (its record's fields and line).
fn partial(program: &str, start_ticks: u64, rec: &mut RecordRef<'_>) -> Partial {
    let fr = rec.get();
    let v = serde_json::json!({
        "program": program,
        "exe": fr.exe,
        "exe_sha256": fr.exe_sha256,
        "pid": fr.pid,
        "start_ticks": start_ticks,
        "comm": fr.comm,
        "user": fr.user,
        "uid": fr.uid,
        "unit": fr.unit,
        "container_id": fr.container_id,
        "proto": fr.proto,
        "direction": fr.direction,
        "raddr": fr.raddr,
        "rport": fr.rport,
        "flow_id": fr.flow_id,
    });
    let mut fields = match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    if let Some(c) = &fr.community_id {
        fields.insert("community_id".into(), c.as_str().into());
    }
    let line = format!(
        "{} (pid {}, user {}) {} {}:{} {}",
        netwho_model::text::visible_cut(program, 200),
        fr.pid,
        netwho_model::text::visible_cut(&fr.user, 64),
        fr.proto,
        fr.raddr,
        fr.rport,
        fr.direction,
    );
    Partial {
        fields,
        uid: fr.uid,
        line,
    }
}

/// The writer: the database first, then the alert log, the journal and the
/// webhook.
fn write_loop(
    mut db: History,
    rx: &Receiver<Msg>,
    board: &Board,
    mut log: Option<std::fs::File>,
    journal: Option<UnixDatagram>,
    mut webhook: Option<Webhook>,
) {
    let mut retry: Vec<BaselineChange> = Vec::new();
    let mut rows: Vec<(i64, i64, u32, &'static str, String)> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Ack(acks) => {
                if let Err(e) = db.alerts_ack(&acks) {
                    board
                        .counts
                        .storage_failures
                        .fetch_add(1, Ordering::Relaxed);
                    log::error!("alerts: acknowledgements not stored: {e}");
                }
            }
            Msg::Put { changes, alerts } => {
                retry.extend(changes);
                // audit mode stores the baselines, not the alerts
                rows.extend(
                    alerts
                        .iter()
                        .filter(|a| !a.audit)
                        .map(|a| (a.id, a.ts_ns, a.uid, a.kind.name(), a.record.to_string())),
                );
                match db.alerts_put(&retry, &rows) {
                    Ok(_) => {
                        retry.clear();
                        rows.clear();
                    }
                    Err(e) => {
                        board
                            .counts
                            .storage_failures
                            .fetch_add(1, Ordering::Relaxed);
                        log::error!("alerts: the database refused a batch (kept and retried): {e}");
                        let excess = retry.len().saturating_sub(RETRY_CHANGES);
                        retry.drain(..excess);
                        // (rows are written by id: a retry never doubles one)
                        let excess = rows.len().saturating_sub(RETRY_ALERTS);
                        rows.drain(..excess);
                    }
                }
                for a in &alerts {
                    if let Some(f) = &mut log {
                        let line = format!("{}\n", a.record);
                        if let Err(e) = f.write_all(line.as_bytes()) {
                            board
                                .counts
                                .storage_failures
                                .fetch_add(1, Ordering::Relaxed);
                            log::error!("alerts: writing the alert log: {e}");
                        }
                    }
                    if a.audit {
                        continue;
                    }
                    if let Some(j) = &journal {
                        buf.clear();
                        journal_entry(a, &mut buf);
                        // a full journal queue drops it (the alert is in
                        // the log, the database and the API)
                        let _ = j.send(&buf);
                    }
                    if let Some(w) = &webhook {
                        w.send(Arc::clone(&a.record));
                    }
                }
            }
        }
    }
    if let Some(w) = &mut webhook {
        w.finish();
    }
}

/// The journal entry: warning priority, the line as its message, the
/// record's fields as `NETWHO_ALERT_*`.
fn journal_entry(a: &Out, out: &mut Vec<u8>) {
    use netwho_auditlog::journal::field;
    field(out, "MESSAGE", &format!("netwho alert {}", a.message));
    field(out, "PRIORITY", "4");
    field(out, "SYSLOG_IDENTIFIER", "netwho");
    field(out, "NETWHO_ALERT_KIND", a.kind.name());
    field(out, "NETWHO_ALERT_ID", &a.id.to_string());
    field(out, "NETWHO_ALERT", &a.record);
}

impl Sink for AlertSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.observe(ev, rec);
    }

    fn status(&mut self, _st: &StatusRecord) {}

    fn flush(&mut self) -> SinkControl {
        let c = self.engine.counts();
        let b = &self.board.counts;
        b.allowed.store(c.allowed, Ordering::Relaxed);
        b.suppressed.store(c.suppressed, Ordering::Relaxed);
        b.unlearned
            .store(c.unlearned + self.unhashed, Ordering::Relaxed);
        self.send(false);
        SinkControl::Continue
    }

    /// A hash that came after the flows of its executable: judged now
    /// (a changed executable alerts with the flow that waited for it).
    fn exe_hash(&mut self, file: netwho_model::FileId, exe: Option<&str>, sha256: &str) {
        let by_file = self.waiting.remove(&WaitKey::File(file));
        let by_exe = exe.and_then(|e| self.waiting.remove(&WaitKey::Exe(e.into())));
        let now_ns = i64::try_from(self.wall.unix_ns(self.now)).unwrap_or(i64::MAX);
        for mut w in by_file.into_iter().chain(by_exe) {
            let raised = self.engine.observe(
                &Seen {
                    program: &w.program,
                    sha256: Some(sha256),
                    dest: None,
                    allowed: w.allowed,
                },
                now_ns,
            );
            self.changes.extend(self.engine.take_changes());
            w.partial.fields.insert("exe_sha256".into(), sha256.into());
            for r in raised {
                self.emit(&r, &w.partial, now_ns);
            }
        }
    }

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        self.now = self.now.max(now);
        self.wall = wall;
        if !self.waiting.is_empty() {
            let now_ns = i64::try_from(wall.unix_ns(now)).unwrap_or(i64::MAX);
            let before = self.waiting.len();
            self.waiting.retain(|_, w| now_ns - w.at_ns < WAITING_NS);
            let gone = (before - self.waiting.len()) as u64;
            if gone > 0 {
                // their executables could not be hashed: not judged by hash
                self.unhashed += gone;
            }
        }
        if !self.said_learned {
            let now_ns = i64::try_from(wall.unix_ns(now)).unwrap_or(i64::MAX);
            if !self.engine.learning(now_ns) {
                self.said_learned = true;
                let (p, d) = self.engine.size();
                log::info!(
                    "alerts: learning ended with {p} programs and {d} destinations; new ones alert from now on"
                );
            }
        }
        SinkControl::Continue
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.send(true);
        self.tx = None;
        if let Some(w) = self.writer.take() {
            w.join()
                .map_err(|_| std::io::Error::other("the alerts' writer panicked"))?;
        }
        Ok(())
    }

    fn storage_failures(&self) -> u64 {
        self.board.counts.storage_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::record::Context;
    use netwho_model::{Endpoint, Flow};

    struct Setup {
        dir: PathBuf,
        board: Arc<Board>,
    }

    impl Setup {
        fn new(tag: &str) -> Setup {
            let dir =
                std::env::temp_dir().join(format!("netwho-alertsink-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Setup {
                dir,
                board: Board::new(),
            }
        }

        fn config(&self, audit: bool, allow: &[&str]) -> AlertConfig {
            AlertConfig {
                db: self.dir.join("h.db"),
                access: Access::OWNER,
                learn: Duration::ZERO,
                by_unit: false,
                allow: allow.iter().map(|a| Filter::parse(a).unwrap()).collect(),
                audit,
                log: Some(self.dir.join("alerts.jsonl")),
                journal: None,
                webhook: None,
                limits: Limits::default(),
            }
        }

        fn log(&self) -> Vec<serde_json::Value> {
            std::fs::read_to_string(self.dir.join("alerts.jsonl"))
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// One opened flow of `exe` (pid 4242) to 10.231.0.2:`port` at `at_s`.
    fn feed(sink: &mut AlertSink, exe: &str, port: u16, cookie: u64, at_s: u64) {
        feed_with(sink, exe, port, cookie, at_s, None, None, true);
    }

    /// An event of a flow of `exe` with its file and hash (`opened`: its
    /// open, else its close).
    #[expect(clippy::too_many_arguments, reason = "a test's one feeder")]
    fn feed_with(
        sink: &mut AlertSink,
        exe: &str,
        port: u16,
        cookie: u64,
        at_s: u64,
        file: Option<netwho_model::FileId>,
        sha: Option<&str>,
        opened: bool,
    ) {
        let mut f = Flow::example(4242, cookie, Endpoint::new([10, 231, 0, 2].into(), port));
        if let Some(p) = Arc::get_mut(&mut f.proc) {
            p.exe = exe.into();
            p.exe_file = file;
        }
        let ev = if opened {
            FlowEvent::Opened(f)
        } else {
            FlowEvent::Closed(f)
        };
        let ctx = Context {
            exe_sha256: sha.map(Arc::from),
            ..Context::default()
        };
        // (after the learning period, which started at the sink's start)
        let wall = WallClock {
            boot_to_unix_ns: netwho_enrich::clock::unix_now_ns() + 1_000_000_000,
        };
        let mut lookup = |_: &FlowEvent| ctx.clone();
        let now = MonoNs(at_s * 1_000_000_000);
        let mut rec = RecordRef::new(&ev, now, wall, &mut lookup);
        sink.event(&ev, &mut rec);
        sink.tick(now, wall);
        sink.flush();
    }

    #[test]
    fn allowed_flows_learn_silently_and_the_rest_alert_once() {
        let s = Setup::new("allow");
        let mut sink =
            AlertSink::start(s.config(false, &["fd.rport = 443"]), Arc::clone(&s.board)).unwrap();
        // learning is over at once: a new program alerts
        feed(&mut sink, "/usr/bin/curl", 80, 1, 10);
        feed(&mut sink, "/usr/bin/curl", 443, 2, 11);
        feed(&mut sink, "/usr/bin/curl", 8080, 3, 12);
        feed(&mut sink, "/usr/bin/curl", 8080, 4, 13);
        sink.finish().unwrap();
        let kinds: Vec<String> = s
            .log()
            .iter()
            .map(|a| a["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, vec!["new_program", "new_destination"]);
        assert_eq!(s.board.list(None, 0, 10).len(), 2);
        assert_eq!(s.board.counts.allowed.load(Ordering::Relaxed), 1);
        // the allowed destination was learned
        let h = History::open_read(&s.dir.join("h.db")).unwrap();
        let b = h.alerts_baseline(10, 10).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].dests.len(), 3, "{b:?}");
        assert_eq!(h.alerts_recent(10).unwrap().len(), 2);
    }

    /// A binary replaced at a known path is judged whenever its hash
    /// becomes known: with a later event of the flow, or (a process gone
    /// before its hash was made) when the pipeline hands the hash on.
    #[test]
    fn a_changed_binary_alerts_once_when_its_hash_comes() {
        let s = Setup::new("late");
        let mut sink = AlertSink::start(s.config(false, &[]), Arc::clone(&s.board)).unwrap();
        let old = netwho_model::FileId {
            dev: 1,
            ino: 2,
            mtime_ns: 3,
        };
        let new = netwho_model::FileId { ino: 9, ..old };
        // known, with its hash (a new program: one alert)
        feed_with(
            &mut sink,
            "/usr/bin/x",
            80,
            1,
            10,
            Some(old),
            Some("aa"),
            true,
        );
        // the new binary's open, before its hash: nothing yet
        feed_with(&mut sink, "/usr/bin/x", 80, 2, 11, Some(new), None, true);
        assert_eq!(s.board.list(None, 0, 10).len(), 1);
        // its close with the hash: exe_changed
        feed_with(
            &mut sink,
            "/usr/bin/x",
            80,
            2,
            12,
            Some(new),
            Some("bb"),
            false,
        );
        // and the late hash of the same file: already judged, no second
        sink.exe_hash(new, Some("/usr/bin/x"), "bb");
        // another binary whose hash only comes through the pipeline
        let third = netwho_model::FileId { ino: 10, ..old };
        feed_with(&mut sink, "/usr/bin/x", 80, 3, 13, Some(third), None, true);
        sink.exe_hash(third, None, "cc");
        // a process gone before its file was identified: its flow waits by
        // the path it ran, and the hash of the file made by that path comes
        feed_with(&mut sink, "/usr/bin/x", 80, 4, 14, None, None, true);
        sink.exe_hash(
            netwho_model::FileId { ino: 11, ..old },
            Some("/usr/bin/x"),
            "dd",
        );
        sink.flush();
        sink.finish().unwrap();
        let kinds: Vec<(String, String)> = s
            .log()
            .iter()
            .map(|a| {
                (
                    a["kind"].as_str().unwrap().to_string(),
                    a["exe_sha256"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("new_program".to_string(), "aa".to_string()),
                ("exe_changed".to_string(), "bb".to_string()),
                ("exe_changed".to_string(), "cc".to_string()),
                ("exe_changed".to_string(), "dd".to_string()),
            ]
        );
    }

    /// An acknowledgement made between two batches is written with the
    /// next one, never lost to a turn that had nothing due.
    #[test]
    fn acknowledgements_reach_the_database() {
        let s = Setup::new("ack");
        let mut sink = AlertSink::start(s.config(false, &[]), Arc::clone(&s.board)).unwrap();
        feed(&mut sink, "/usr/bin/curl", 80, 1, 10);
        feed(&mut sink, "/usr/bin/curl", 81, 2, 10);
        let ids: Vec<i64> = s.board.list(None, 0, 10).iter().map(|a| a.id).collect();
        s.board.ack(ids[0], None, 77).unwrap();
        s.board.ack(ids[1], None, 88).unwrap();
        // a turn with nothing due, then one a second later
        sink.flush();
        let wall = sink.wall;
        sink.tick(MonoNs(12 * 1_000_000_000), wall);
        sink.flush();
        sink.finish().unwrap();
        let h = History::open_read(&s.dir.join("h.db")).unwrap();
        // each at its own time
        let acked: Vec<Option<i64>> = h
            .alerts_recent(10)
            .unwrap()
            .iter()
            .map(|a| a.acked_ns)
            .collect();
        assert_eq!(acked, vec![Some(77), Some(88)]);
    }

    /// Audit mode: what would alert is in the alert log, marked, and
    /// nowhere else (no board, no stored alert), while the baseline learns.
    #[test]
    fn audit_mode_only_logs() {
        let s = Setup::new("audit");
        let mut sink = AlertSink::start(s.config(true, &[]), Arc::clone(&s.board)).unwrap();
        feed(&mut sink, "/usr/bin/curl", 80, 1, 10);
        sink.finish().unwrap();
        let log = s.log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["audit"], true);
        assert!(s.board.list(None, 0, 10).is_empty());
        assert_eq!(s.board.raised_by_kind()[1].1, 0);
        let h = History::open_read(&s.dir.join("h.db")).unwrap();
        assert!(h.alerts_recent(10).unwrap().is_empty());
        assert_eq!(h.alerts_baseline(10, 10).unwrap().len(), 1);
    }

    /// A path with quotes, a newline and an escape sequence stays one JSON
    /// line, read back exactly; the log file is private.
    #[test]
    fn hostile_names_stay_one_escaped_line() {
        let s = Setup::new("hostile");
        let mut sink = AlertSink::start(s.config(false, &[]), Arc::clone(&s.board)).unwrap();
        let evil = "/tmp/a\"b\n{\"kind\":\"forged\"}\u{1b}[2J";
        feed(&mut sink, evil, 80, 1, 10);
        sink.finish().unwrap();
        let text = std::fs::read_to_string(s.dir.join("alerts.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let log = s.log();
        assert_eq!(log[0]["exe"], evil);
        assert_eq!(log[0]["kind"], "new_program");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(s.dir.join("alerts.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
