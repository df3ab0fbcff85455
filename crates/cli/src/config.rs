//! The daemon's configuration file (TOML). Every key is optional; the
//! defaults are what `netwho daemon --print-config` prints.

use crate::cmd::export::{self, FleetPlan, Plan};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the daemon looks when no --config is given.
pub const DEFAULT_PATH: &str = "/etc/netwho/netwho.toml";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Only flows matching this filter expression are kept (empty: all).
    pub filter: String,
    /// The seed of every record's Community ID (0 unless the site's Zeek
    /// or Suricata seeds theirs; --community-id-seed sets it).
    pub community_id_seed: u16,
    pub history: HistorySection,
    pub api: ApiSection,
    pub metrics: MetricsSection,
    pub export: ExportSection,
    pub fleet: FleetSection,
    pub alerts: AlertsSection,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsSection {
    /// Learn what each program talks to and alert when that changes
    /// (docs/specs/alerts.md).
    pub enabled: bool,
    /// Only learn for this long from the first start with alerts.
    pub learn: String,
    /// What a program is: "exe" (its executable's path) or "unit" (its
    /// systemd unit, else its executable).
    pub program: String,
    /// Filter expressions: matching flows never alert (they still learn).
    pub allow: Vec<String>,
    /// Only log what would alert (--alerts-audit sets it).
    pub audit: bool,
    /// The alert log, JSON lines (empty: none).
    pub log: PathBuf,
    /// journald's native socket (empty: not to the journal).
    pub journal: PathBuf,
    /// POST each alert here as JSON: `http://HOST[:PORT]/PATH` (empty: none).
    pub webhook: String,
    /// Most alerts raised per minute (the rest are counted).
    pub max_per_minute: u32,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            enabled: false,
            learn: "7d".into(),
            program: "exe".into(),
            allow: Vec::new(),
            audit: false,
            log: PathBuf::from("/var/log/netwho/alerts.jsonl"),
            journal: PathBuf::from(netwho_auditlog::journal::JOURNAL_SOCKET),
            webhook: String::new(),
            max_per_minute: 120,
        }
    }
}

impl AlertsSection {
    /// The alerts' configuration, if on (every value checked).
    pub fn plan(
        &self,
        db: &Path,
        access: netwho_store::private::Access,
    ) -> Result<Option<netwho_alerts::AlertConfig>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let learn = match self.learn.trim() {
            "0" | "0s" => Duration::ZERO,
            v => duration(v).map_err(|e| format!("alerts.learn: {e}"))?,
        };
        let by_unit = match self.program.as_str() {
            "exe" => false,
            "unit" => true,
            other => {
                return Err(format!(
                    "alerts.program: '{other}' is neither \"exe\" (a program is its executable) nor \"unit\" (its systemd unit)"
                ));
            }
        };
        let mut allow = Vec::with_capacity(self.allow.len());
        for (i, a) in self.allow.iter().enumerate() {
            allow.push(
                netwho_query::Filter::parse(a)
                    .map_err(|e| format!("alerts.allow[{i}] ({a:?}): {e}"))?,
            );
        }
        let webhook = match self.webhook.trim() {
            "" => None,
            w => Some(w.parse()?),
        };
        if self.max_per_minute == 0 {
            return Err("alerts.max_per_minute: at least 1".into());
        }
        let path = |p: &Path| (!p.as_os_str().is_empty()).then(|| p.to_path_buf());
        Ok(Some(netwho_alerts::AlertConfig {
            db: db.to_path_buf(),
            access,
            learn,
            by_unit,
            allow,
            audit: self.audit,
            log: path(&self.log),
            journal: path(&self.journal),
            webhook,
            limits: netwho_alerts::Limits {
                per_minute: self.max_per_minute,
                ..netwho_alerts::Limits::default()
            },
        }))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetSection {
    /// Publish flow records to this NATS JetStream server,
    /// "nats://HOST:PORT" (empty: off; --fleet sets it).
    pub nats: String,
    /// This host's name in the fleet (empty: the kernel's host name).
    pub host: String,
    /// Where records wait until JetStream has them.
    pub spool: PathBuf,
    /// Most the spool holds while NATS is away (then the oldest go).
    pub spool_max: String,
    /// A lasting connection is published at least this often.
    pub active_timeout: String,
    /// A connection quiet this long is published.
    pub idle_timeout: String,
    /// At exit, how long to wait for the spool to drain.
    pub drain: String,
}

impl Default for FleetSection {
    fn default() -> Self {
        FleetSection {
            nats: String::new(),
            host: String::new(),
            spool: PathBuf::from("/var/lib/netwho/spool"),
            spool_max: "256MiB".into(),
            active_timeout: "60s".into(),
            idle_timeout: "30s".into(),
            drain: "10s".into(),
        }
    }
}

impl FleetSection {
    /// The fleet's configuration, if on (every value checked).
    pub fn plan(&self) -> Result<Option<FleetPlan>, String> {
        if self.nats.trim().is_empty() {
            return Ok(None);
        }
        let url =
            netwho_fleet::nats_url(self.nats.trim()).map_err(|e| format!("fleet.nats: {e}"))?;
        let d = |key: &str, v: &str| duration(v).map_err(|e| format!("fleet.{key}: {e}"));
        let spool_max = netwho_query::parse_bytes(&self.spool_max)
            .filter(|n| *n >= 1 << 20)
            .ok_or_else(|| {
                format!(
                    "fleet.spool_max: '{}' is not a size of at least 1MiB (like 256MiB or 2GiB)",
                    self.spool_max
                )
            })?;
        let host = match self.host.trim() {
            "" => netwho_auditlog::chain::Origin::here().host,
            h => h.to_string(),
        };
        if host.is_empty() {
            return Err("fleet.host: this host has no name; set one".into());
        }
        Ok(Some(FleetPlan {
            fleet: netwho_fleet::publish::FleetConfig {
                url,
                host,
                spool_dir: self.spool.clone(),
                spool_max,
                drain: d("drain", &self.drain)?,
            },
            timeouts: netwho_export::flows::Timeouts {
                active: d("active_timeout", &self.active_timeout)?,
                idle: d("idle_timeout", &self.idle_timeout)?,
                ..netwho_export::flows::Timeouts::default()
            },
        }))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportSection {
    /// IPFIX collectors: "HOST:PORT" (UDP), "udp://HOST:PORT", "tcp://HOST:PORT".
    pub ipfix: Vec<String>,
    /// NetFlow v9 collectors (UDP).
    pub netflow_v9: Vec<String>,
    /// JSON-lines files (appended).
    pub jsonl: Vec<PathBuf>,
    /// The elements, nProbe style (empty: all; docs/specs/ipfix.md).
    pub template: String,
    /// The enterprise number of netwho's own elements.
    pub pen: u32,
    /// The IPFIX observation domain / NetFlow v9 source id.
    pub domain: u32,
    pub active_timeout: String,
    pub idle_timeout: String,
    /// How long an ended flow waits for the other end of a local connection.
    pub join_wait: String,
    /// The template is sent again this often over UDP.
    pub template_refresh: String,
    /// Largest message, bytes.
    pub max_message: u16,
    /// Export the daemon's own flows too (its datagrams to the collectors,
    /// its API and NATS connections): left out by default.
    pub include_self: bool,
    /// OpenTelemetry collectors, OTLP/HTTP: "http://HOST:4318".
    pub otlp: Vec<String>,
    /// Flow events sent to OTLP as log records: "open,update,close" (or "none").
    pub otlp_events: String,
    /// OTLP metrics this often ("off": none).
    pub otlp_metrics_every: String,
}

impl Default for ExportSection {
    fn default() -> Self {
        ExportSection {
            ipfix: Vec::new(),
            netflow_v9: Vec::new(),
            jsonl: Vec::new(),
            template: String::new(),
            pen: netwho_export::ie::DEFAULT_NETWHO_PEN,
            domain: 0,
            active_timeout: "120s".into(),
            idle_timeout: "30s".into(),
            join_wait: "1s".into(),
            template_refresh: "60s".into(),
            max_message: 1400,
            include_self: false,
            otlp: Vec::new(),
            otlp_events: "open,update,close".into(),
            otlp_metrics_every: "60s".into(),
        }
    }
}

impl ExportSection {
    /// What to export, if anything (every value checked).
    pub fn plan(&self) -> Result<Option<Plan>, String> {
        let targets = export::targets(
            ("export.ipfix", &self.ipfix),
            ("export.netflow_v9", &self.netflow_v9),
            &self.jsonl,
            ("export.otlp", &self.otlp),
        )
        .map_err(|e| e.to_string())?;
        let template = (!self.template.trim().is_empty()).then(|| self.template.clone());
        if let Some(t) = &template {
            netwho_export::ie::parse_template(t).map_err(|e| format!("export.template: {e}"))?;
        }
        if self.max_message < 512 {
            return Err("export.max_message: at least 512 bytes".into());
        }
        let d = |key: &str, v: &str| duration(v).map_err(|e| format!("export.{key}: {e}"));
        let plan = Plan {
            targets,
            template,
            pen: self.pen,
            domain: self.domain,
            timeouts: netwho_export::flows::Timeouts {
                active: d("active_timeout", &self.active_timeout)?,
                idle: d("idle_timeout", &self.idle_timeout)?,
                join_wait: d("join_wait", &self.join_wait)?,
                ..netwho_export::flows::Timeouts::default()
            },
            template_every: d("template_refresh", &self.template_refresh)?,
            max_message: usize::from(self.max_message),
            include_self: self.include_self,
            otlp_events: self
                .otlp_events
                .parse()
                .map_err(|e| format!("export.otlp_events: {e}"))?,
            otlp_metrics_every: export::metrics_every(&self.otlp_metrics_every)
                .map_err(|e| format!("export.otlp_metrics_every: {e}"))?,
        };
        Ok((!plan.targets.is_empty()).then_some(plan))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// The Unix socket (empty: none). Anyone may connect; root and members
    /// of `group` see everything, other users their own processes' traffic.
    pub socket: PathBuf,
    /// Also listen on this TCP address (empty: not), e.g. "127.0.0.1:9797";
    /// every request must carry the token.
    pub listen: String,
    /// The token for `listen` (created, mode 0600, when missing).
    pub token_file: PathBuf,
    /// The group whose members see everything over the socket.
    pub group: String,
    /// How long closed flows and exited processes stay in the live view.
    pub keep_closed: String,
    /// The user the API serves as once the daemon has started (it parses
    /// what any local user sends, so it holds no privilege); empty: the
    /// daemon's own user.
    pub user: String,
    /// `listen` may be an address other hosts reach (the API speaks plain
    /// HTTP: put TLS in front of it).
    pub allow_remote: bool,
    /// Connections of all non-root users together (and of all TCP clients
    /// together); root has as many of its own.
    pub max_connections: usize,
    /// Connections of one user (or one TCP client address).
    pub connections_per_user: usize,
    /// Reports one user may have running at once.
    pub reports_per_user: usize,
    /// Live streams (events, recordings) one user may follow at once.
    pub streams_per_user: usize,
    /// A report that takes longer is stopped.
    pub report_timeout: String,
}

impl Default for ApiSection {
    fn default() -> Self {
        let l = netwho_api::limits::Limits::default();
        ApiSection {
            socket: PathBuf::from(netwho_api::DEFAULT_SOCKET),
            listen: String::new(),
            token_file: PathBuf::from("/var/lib/netwho/api.token"),
            group: "netwho".into(),
            keep_closed: "10s".into(),
            user: "nobody".into(),
            allow_remote: false,
            max_connections: l.conns_total,
            connections_per_user: l.conns_per_caller,
            reports_per_user: l.reports_per_caller,
            streams_per_user: l.streams_per_caller,
            report_timeout: "60s".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Serve Prometheus metrics at /metrics.
    pub enabled: bool,
    /// The labels traffic series carry (unit, user, exe).
    pub labels: Vec<String>,
    /// Series at most; further label sets are summed as "other".
    pub max_series: usize,
    /// Series one user's processes may create (0: a quarter of
    /// max_series), so that no user can take them all.
    pub max_series_per_uid: usize,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: true,
            labels: vec!["unit".into(), "user".into(), "exe".into()],
            max_series: 200,
            max_series_per_uid: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySection {
    /// The SQLite database.
    pub db: PathBuf,
    /// How often counters are read and a batch is committed.
    pub commit_every: String,
    /// How long each kind of data is kept.
    pub keep_raw: String,
    pub keep_minutes: String,
    pub keep_hours: String,
    pub keep_days: String,
    /// Look up the names of remote addresses (/etc/hosts, then reverse
    /// DNS through the system's resolver) and keep them.
    pub remote_names: bool,
}

impl Default for HistorySection {
    fn default() -> Self {
        HistorySection {
            db: PathBuf::from("/var/lib/netwho/history.db"),
            commit_every: "10s".into(),
            keep_raw: "7d".into(),
            keep_minutes: "14d".into(),
            keep_hours: "400d".into(),
            keep_days: "3650d".into(),
            remote_names: true,
        }
    }
}

/// A config the daemon can use, or why not.
pub fn load(path: Option<&Path>) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let (path, must) = match path {
        Some(p) => (p.to_owned(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    // a configuration is small; whatever is at the path is read boundedly
    const MAX: u64 = 1 << 20;
    let text = match std::fs::File::open(&path).and_then(|f| {
        use std::io::Read as _;
        let mut t = String::new();
        f.take(MAX + 1).read_to_string(&mut t)?;
        if t.len() as u64 > MAX {
            return Err(std::io::Error::other(format!(
                "it is larger than {MAX} bytes: is it really netwho's configuration?"
            )));
        }
        Ok(t)
    }) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must => {
            return Ok((Config::default(), None));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
        }
    };
    let cfg = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((cfg, Some(path)))
}

/// Parses and checks a config (durations).
pub fn parse(text: &str) -> Result<Config, String> {
    let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
    let h = &cfg.history;
    for (key, v) in [
        ("history.commit_every", &h.commit_every),
        ("history.keep_raw", &h.keep_raw),
        ("history.keep_minutes", &h.keep_minutes),
        ("history.keep_hours", &h.keep_hours),
        ("history.keep_days", &h.keep_days),
    ] {
        duration(v).map_err(|e| format!("{key}: {e}"))?;
    }
    cfg.api.keep_closed()?;
    cfg.api.listen_addr()?;
    cfg.api.limits()?;
    cfg.metrics.label_set()?;
    cfg.export.plan()?;
    cfg.fleet.plan()?;
    Ok(cfg)
}

impl HistorySection {
    pub fn commit_every(&self) -> Result<Duration, String> {
        duration(&self.commit_every).map_err(|e| format!("history.commit_every: {e}"))
    }
}

impl ApiSection {
    pub fn keep_closed(&self) -> Result<Duration, String> {
        duration(&self.keep_closed).map_err(|e| format!("api.keep_closed: {e}"))
    }

    /// The TCP address, if one is set; one that other hosts can reach
    /// only with `allow_remote`.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        let addr: std::net::SocketAddr = match self.listen.as_str() {
            "" => return Ok(None),
            s => s.parse().map_err(|_| {
                format!("api.listen: '{s}' is not an address and port (like 127.0.0.1:9797)")
            })?,
        };
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "api.listen: {addr} can be reached from other hosts, and the API is plain HTTP carrying \
                 every user's traffic and the token: listen on 127.0.0.1 and put a TLS proxy in front, \
                 or set api.allow_remote = true if the network is trusted"
            ));
        }
        Ok(Some(addr))
    }

    /// The API's limits.
    pub fn limits(&self) -> Result<netwho_api::limits::Limits, String> {
        let at_least_1 = |key: &str, n: usize| {
            if n == 0 {
                Err(format!("api.{key}: must be at least 1"))
            } else {
                Ok(n)
            }
        };
        Ok(netwho_api::limits::Limits {
            conns_total: at_least_1("max_connections", self.max_connections)?,
            conns_per_caller: at_least_1("connections_per_user", self.connections_per_user)?,
            reports_per_caller: at_least_1("reports_per_user", self.reports_per_user)?,
            streams_per_caller: at_least_1("streams_per_user", self.streams_per_user)?,
            report_timeout: duration(&self.report_timeout)
                .map_err(|e| format!("api.report_timeout: {e}"))?,
            ..netwho_api::limits::Limits::default()
        })
    }
}

impl MetricsSection {
    pub fn label_set(&self) -> Result<netwho_api::metrics::Labels, String> {
        netwho_api::metrics::Labels::from_names(&self.labels)
            .map_err(|e| format!("metrics.labels: {e}"))
    }
}

/// "10s", "7d", "90m".
pub fn duration(s: &str) -> Result<Duration, String> {
    match netwho_query::parse_duration_ns(s) {
        Some(n) if n > 0 => Ok(Duration::from_nanos(n)),
        _ => Err(format!(
            "'{s}' is not a duration: a number with a unit (s, m, h, d)"
        )),
    }
}

impl Config {
    /// The config as TOML (with the defaults filled in).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn retention(&self) -> netwho_store::history::Retention {
        let s = |v: &str| {
            duration(v)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        };
        let h = &self.history;
        netwho_store::history::Retention {
            raw_s: s(&h.keep_raw),
            minute_s: s(&h.keep_minutes),
            hour_s: s(&h.keep_hours),
            day_s: s(&h.keep_days),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_mistakes_are_named() {
        let d = Config::default();
        assert_eq!(parse(&d.to_toml()), Ok(d.clone()));
        assert_eq!(parse(""), Ok(d));
        let c = parse("[history]\ndb = \"/tmp/h.db\"\nkeep_raw = \"2d\"\n").unwrap();
        assert_eq!(c.history.db, PathBuf::from("/tmp/h.db"));
        assert_eq!(c.retention().raw_s, 2 * 86_400);
        let e = parse("[history]\nkeep_raw = \"soon\"\n").unwrap_err();
        assert!(
            e.contains("history.keep_raw: 'soon' is not a duration"),
            "{e}"
        );
        let e = parse("[api]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(e.starts_with("api.listen: 'localhost'"), "{e}");
        let e = parse("[metrics]\nlabels = [\"pid\"]\n").unwrap_err();
        assert!(e.starts_with("metrics.labels: 'pid'"), "{e}");
        let c = parse("[api]\nlisten = \"127.0.0.1:9797\"\n[metrics]\nmax_series = 5\n").unwrap();
        assert_eq!(
            (c.api.listen.as_str(), c.metrics.max_series),
            ("127.0.0.1:9797", 5)
        );
        let c = parse("[export]\nipfix = [\"tcp://127.0.0.1:4739\"]\nactive_timeout = \"1m\"\n")
            .unwrap();
        let plan = c.export.plan().unwrap().unwrap();
        assert_eq!(plan.targets.len(), 1);
        assert_eq!(plan.timeouts.active, Duration::from_secs(60));
        assert_eq!(Config::default().export.plan(), Ok(None));
        let e = parse("[export]\nnetflow_v9 = [\"tcp://h:1\"]\n").unwrap_err();
        assert!(
            e.starts_with("export.netflow_v9: NetFlow v9 goes over UDP only"),
            "{e}"
        );
        let c = parse("[export]\notlp = [\"http://127.0.0.1:4318\"]\notlp_events = \"close\"\notlp_metrics_every = \"off\"\n").unwrap();
        let plan = c.export.plan().unwrap().unwrap();
        assert_eq!(plan.otlp_events.to_string(), "close");
        assert_eq!(plan.otlp_metrics_every, None);
        assert!(matches!(plan.targets[..], [export::Target::Otlp(_)]));
        let e = parse("[export]\notlp = [\"https://c:4318\"]\n").unwrap_err();
        assert!(
            e.starts_with("export.otlp: 'https://c:4318': netwho sends OTLP over plain HTTP only"),
            "{e}"
        );
        let e =
            parse("[export]\notlp = [\"http://c\"]\notlp_metrics_every = \"soon\"\n").unwrap_err();
        assert!(
            e.starts_with("export.otlp_metrics_every: 'soon' is not a duration"),
            "{e}"
        );
        let e = parse("[export]\ntemplate = \"%IN_BYTE\"\n").unwrap_err();
        assert!(e.starts_with("export.template: '%IN_BYTE'"), "{e}");
        let e = parse("[histroy]\n").unwrap_err();
        assert!(e.contains("unknown field `histroy`"), "{e}");
    }
}
