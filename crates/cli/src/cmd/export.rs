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
        )?;
        if targets.is_empty() {
            anyhow::bail!(
                "say where to export: --ipfix HOST:PORT, --netflow-v9 HOST:PORT or --jsonl FILE (- for standard output)"
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

fn describe(t: &Target) -> String {
    match t {
        Target::Ipfix(c) | Target::V9(c) => {
            format!("{}://{}", if c.tcp { "tcp" } else { "udp" }, c.host_port)
        }
        Target::Jsonl(p) => p.display().to_string(),
    }
}

/// The targets of the IPFIX collectors, NetFlow v9 collectors and files
/// given (each collector list with the name errors are to quote).
pub fn targets(
    ipfix: (&str, &[String]),
    v9: (&str, &[String]),
    jsonl: &[PathBuf],
) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    for c in ipfix.1 {
        out.push(Target::Ipfix(collector(ipfix.0, c)?));
    }
    for c in v9.1 {
        out.push(Target::V9(v9_collector(v9.0, c)?));
    }
    out.extend(jsonl.iter().cloned().map(Target::Jsonl));
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
