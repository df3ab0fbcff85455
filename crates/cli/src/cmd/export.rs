//! `netwho export` and the daemon's export sinks: where records go and in
//! which shape, from the command line or the `[export]` section.

use anyhow::Context as _;
use netwho_export::flows::Timeouts;
use netwho_export::ie::{DEFAULT_TEMPLATE, parse_template};
use netwho_export::net::{Collector, Delivery, Tcp, Udp};
use netwho_export::sink::{ExportConfig, ExportSink, Format};
use netwho_pipeline::Sink;
use netwho_sink::output::Output;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the daemon publishes to the fleet, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetPlan {
    pub fleet: netwho_fleet::publish::FleetConfig,
    pub timeouts: Timeouts,
}

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Ipfix(Collector),
    V9(Collector),
    /// A file, or `-` for standard output.
    Jsonl(PathBuf),
    /// An OpenTelemetry collector (OTLP/HTTP).
    Otlp(netwho_export::otlp::http::Endpoint),
}

/// What every target shares.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub template: Option<String>,
    pub pen: u32,
    pub domain: u32,
    pub timeouts: Timeouts,
    pub template_every: Duration,
    pub max_message: usize,
    /// Export netwho's own flows too.
    pub include_self: bool,
    /// Which flow events go to OTLP as log records.
    pub otlp_events: netwho_export::otlp::Events,
    /// OTLP metrics this often (`None`: none).
    pub otlp_metrics_every: Option<Duration>,
}

/// netwho's own process (its flows are not exported unless asked).
fn own_process() -> Option<netwho_model::ProcKey> {
    let st = netwho_enrich::procfs::Procfs::default()
        .stat(std::process::id())
        .ok()?;
    Some(netwho_model::ProcKey::from_start_ticks(
        st.pid,
        st.start_ticks,
    ))
}

impl Plan {
    pub fn from_args(a: &crate::args::ExportArgs) -> anyhow::Result<Plan> {
        let targets = targets(
            ("--ipfix", &a.ipfix),
            ("--netflow-v9", &a.netflow_v9),
            &a.jsonl,
            ("--otlp", &a.otlp),
        )?;
        if targets.is_empty() {
            anyhow::bail!(
                "say where to export: --ipfix HOST:PORT, --netflow-v9 HOST:PORT, --otlp http://HOST:4318 or --jsonl FILE (- for standard output)"
            );
        }
        Ok(Plan {
            targets,
            template: a.template.clone(),
            pen: a.pen,
            domain: a.domain,
            timeouts: Timeouts {
                active: a.active_timeout,
                idle: a.idle_timeout,
                join_wait: a.join_wait,
                ..Timeouts::default()
            },
            template_every: a.template_refresh,
            max_message: usize::from(a.max_message),
            include_self: a.include_self,
            otlp_events: a
                .otlp_events
                .parse()
                .map_err(|e| anyhow::anyhow!("--otlp-events: {e}"))?,
            otlp_metrics_every: metrics_every(&a.otlp_metrics_every)
                .map_err(|e| anyhow::anyhow!("--otlp-metrics-every: {e}"))?,
        })
    }

    /// One sink per target (each connects, or opens its file, now).
    pub fn sinks(&self) -> anyhow::Result<Vec<Box<dyn Sink>>> {
        let spec = self.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
        let template = parse_template(spec).context("the export template")?;
        let mut out: Vec<Box<dyn Sink>> = Vec::new();
        for t in &self.targets {
            let delivery = Arc::new(Delivery::default());
            let (format, output) = match t {
                Target::Ipfix(c) | Target::V9(c) => {
                    let format = if matches!(t, Target::Ipfix(_)) {
                        Format::Ipfix
                    } else {
                        Format::V9
                    };
                    let need = netwho_export::msg::v9_min_message(&template);
                    if format == Format::V9 && need > self.max_message {
                        anyhow::bail!(
                            "--max-message {} is smaller than one NetFlow v9 record of this template ({need} bytes with its headers): raise it, or export fewer elements",
                            self.max_message
                        );
                    }
                    let dest: Box<dyn netwho_sink::output::Destination> = if c.tcp {
                        Box::new(Tcp::new(c.clone(), Arc::clone(&delivery)))
                    } else {
                        Box::new(
                            Udp::connect(c, Arc::clone(&delivery))
                                .with_context(|| format!("export to {}", c.host_port))?,
                        )
                    };
                    (format, Output::spawn_to(dest))
                }
                Target::Jsonl(p) => (Format::Jsonl, jsonl_output(p)?),
                Target::Otlp(to) => {
                    out.push(self.otlp_sink(to.clone()));
                    continue;
                }
            };
            let mut cfg = ExportConfig::new(format, template.clone());
            cfg.pen = self.pen;
            cfg.domain = self.domain;
            cfg.timeouts = self.timeouts;
            cfg.template_every = self.template_every;
            cfg.max_message = self.max_message;
            cfg.skip_proc = (!self.include_self).then(own_process).flatten();
            log::info!("exporting {format:?} to {}", describe(t));
            out.push(Box::new(ExportSink::new(cfg, output, delivery)));
        }
        Ok(out)
    }
}

impl Plan {
    fn otlp_sink(&self, to: netwho_export::otlp::http::Endpoint) -> Box<dyn Sink> {
        use netwho_export::otlp::{OtlpConfig, OtlpSink, encode::Resource, http::OtlpHttp};
        let delivery = Arc::new(Delivery::default());
        let resource = Resource {
            host_name: host_name(),
            host_id: machine_id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let cfg = OtlpConfig {
            events: self.otlp_events,
            update_every: self.timeouts.active,
            metrics_every: self.otlp_metrics_every,
            skip_proc: (!self.include_self).then(own_process).flatten(),
            resource: resource.clone(),
            ..OtlpConfig::default()
        };
        log::info!(
            "exporting OTLP to {to} (log records: {}; metrics: {})",
            self.otlp_events,
            self.otlp_metrics_every
                .map_or("off".to_string(), |d| format!("every {d:?}"))
        );
        let dest = OtlpHttp::new(
            to,
            netwho_export::otlp::encode::resource(&resource),
            resource.version,
            Arc::clone(&delivery),
        );
        Box::new(OtlpSink::new(
            cfg,
            Output::spawn_to(Box::new(dest)),
            delivery,
        ))
    }
}

/// `off` (or 0): no metrics; else how often.
pub fn metrics_every(s: &str) -> Result<Option<Duration>, String> {
    match s.trim() {
        "off" | "0" | "0s" => Ok(None),
        d => crate::config::duration(d).map(Some),
    }
}

/// This host's name (`host.name`), from the kernel.
fn host_name() -> String {
    read_small("/proc/sys/kernel/hostname")
}

/// The machine id (`host.id`): stable across boots, unlike the boot id.
/// Empty (and left out) when the file is missing or is not 32 hex digits.
fn machine_id() -> String {
    for p in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        let id = read_small(p);
        if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return id;
        }
    }
    String::new()
}

/// The first line of a small file (at most 256 bytes read), or empty.
fn read_small(path: &str) -> String {
    use std::io::Read as _;
    let mut buf = Vec::new();
    let _ = std::fs::File::open(path).and_then(|f| f.take(256).read_to_end(&mut buf));
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

fn describe(t: &Target) -> String {
    match t {
        Target::Ipfix(c) | Target::V9(c) => {
            format!("{}://{}", if c.tcp { "tcp" } else { "udp" }, c.host_port)
        }
        Target::Jsonl(p) => p.display().to_string(),
        Target::Otlp(e) => e.to_string(),
    }
}

/// The targets of the IPFIX collectors, NetFlow v9 collectors and files
/// given (each collector list with the name errors are to quote).
pub fn targets(
    ipfix: (&str, &[String]),
    v9: (&str, &[String]),
    jsonl: &[PathBuf],
    otlp: (&str, &[String]),
) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    for c in ipfix.1 {
        out.push(Target::Ipfix(collector(ipfix.0, c)?));
    }
    for c in v9.1 {
        out.push(Target::V9(v9_collector(v9.0, c)?));
    }
    out.extend(jsonl.iter().cloned().map(Target::Jsonl));
    for u in otlp.1 {
        out.push(Target::Otlp(
            u.parse().map_err(|e| anyhow::anyhow!("{}: {e}", otlp.0))?,
        ));
    }
    Ok(out)
}

fn collector(what: &str, s: &str) -> anyhow::Result<Collector> {
    s.parse::<Collector>()
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// NetFlow v9 is UDP only (RFC 3954 defines no stream transport).
fn v9_collector(what: &str, s: &str) -> anyhow::Result<Collector> {
    let c = collector(what, s)?;
    if c.tcp {
        anyhow::bail!("{what}: NetFlow v9 goes over UDP only; for TCP use --ipfix tcp://HOST:PORT");
    }
    Ok(c)
}

fn jsonl_output(p: &Path) -> anyhow::Result<Output> {
    if p == Path::new("-") {
        return Ok(Output::stdout());
    }
    let f = netwho_store::private::open_append(p, netwho_store::private::Access::GROUP_READ)
        .with_context(|| format!("opening {} for the exported records", p.display()))?;
    Ok(Output::spawn(Box::new(f)))
}

/// The daemon's fleet sink: every record, as the fleet's JSON lines,
/// spooled and published to NATS JetStream.
pub fn fleet_sink(plan: FleetPlan) -> anyhow::Result<Box<dyn Sink>> {
    let delivery = Arc::new(Delivery::default());
    let spool = plan.fleet.spool_dir.clone();
    let (url, host) = (plan.fleet.url.clone(), plan.fleet.host.clone());
    let dest = netwho_fleet::publish::FleetDestination::start(plan.fleet, Arc::clone(&delivery))?;
    let mut cfg = ExportConfig::new(Format::Fleet, Vec::new());
    cfg.timeouts = plan.timeouts;
    // (its own connection to NATS is no host's traffic worth a record)
    cfg.skip_proc = own_process();
    log::info!(
        "fleet: records to {url} as host '{host}' (spool {}, a record at least every {:?})",
        spool.display(),
        plan.timeouts.active
    );
    Ok(Box::new(ExportSink::new(
        cfg,
        Output::spawn_to(Box::new(dest)),
        delivery,
    )))
}
