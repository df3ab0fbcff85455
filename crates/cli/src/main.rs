//! The `netwho` binary: flags, wiring, signals, exit codes. Nothing else.

mod args;
mod logger;

use anyhow::Context;
use args::{Cli, Command, LogArgs, SelectArgs, TopArgs};
use clap::Parser;
use netwho_enrich::procfs::Procfs;
use netwho_model::TableConfig;
use netwho_pipeline::enricher::Enricher;
use netwho_pipeline::logsink::{LogFormat, LogSink};
use netwho_pipeline::output::Output;
use netwho_pipeline::topsink::{TopConfig, TopFormat, TopSink};
use netwho_pipeline::{Clocks, Pipeline, PipelineConfig, PipelineError, Sink};
use netwho_query::{Filter, Options};
use netwho_sensor::Sensor;
use netwho_sensor::ebpf::{EbpfConfig, EbpfSensor, KernelScope, MapSizes};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Cannot start: privileges, kernel support, arguments. Nothing was recorded.
const EXIT_CANNOT_START: u8 = 2;
/// Failed while running (output error).
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logger::init(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("netwho: error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(code)
        }
    }
}

struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn cannot_start(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_CANNOT_START,
        error: error.into(),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // a second signal while shutting down exits at once
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .context("installing signal handlers")
            .map_err(cannot_start)?;
    }

    let command = cli.command.unwrap_or(Command::Top(TopArgs::default()));
    let (sinks, mut cfg, select) = match &command {
        Command::Top(t) => (top_sinks(t), PipelineConfig::default(), &t.select),
        Command::Log(l) => {
            let (s, c) = log_sinks(l)?;
            (s, c, &l.select)
        }
    };
    let filter = read_filter(select)?;
    let mut enricher = Enricher::new(Procfs::default(), prereq_cgroup_root());
    // (the sensor finds the same mount, or refuses to start and says why)
    let scope = match &filter {
        Some(f) => {
            let s = f.scope();
            let k = netwho_pipeline::scope::resolve(&s, &Procfs::default(), enricher.cgroups())
                .context("resolving the filter's kernel scope")
                .map_err(cannot_start)?;
            if !k.is_empty() {
                cfg.scope = Some(s.to_string());
                log::info!("kernel scope: {s}");
            }
            k
        }
        None => KernelScope::default(),
    };
    cfg.filter = filter;

    let sensor = EbpfSensor::start(EbpfConfig {
        sizes: MapSizes {
            ring_bytes: cli.sensor.ring_mib << 20,
            flows: cli.sensor.max_flows,
            wire: cli.sensor.max_flows,
        },
        idle: cli.sensor.udp_idle,
        scope,
        ..EbpfConfig::default()
    })
    .map_err(cannot_start)?;
    log::info!("attached: {}", sensor.info().hooks.join(", "));

    cfg.table = TableConfig {
        boot_id: netwho_enrich::boot_id(),
        ..TableConfig::default()
    };
    let mut pipeline = Pipeline::new(sensor, enricher, sinks, cfg, Clocks::system());
    match pipeline.run(&stop) {
        Ok(why) => {
            log::info!("stopped: {why:?}");
            Ok(())
        }
        Err(PipelineError::Output(e)) => Err(Failure {
            code: EXIT_RUNTIME,
            error: anyhow::Error::new(e).context("writing output"),
        }),
        Err(e) => Err(Failure {
            code: EXIT_RUNTIME,
            error: e.into(),
        }),
    }
}

/// The cgroup v2 mount, if there is one (the sensor refuses to start
/// without it and says why).
fn prereq_cgroup_root() -> Option<std::path::PathBuf> {
    netwho_sensor::ebpf::prereq::cgroup2_root().ok()
}

/// The filter of a command: parsed and checked before anything starts, so
/// a bad one exits 2 with the expression and a caret under the problem.
fn read_filter(select: &SelectArgs) -> Result<Option<Filter>, Failure> {
    let Some(src) = select
        .expression()
        .map_err(|e| cannot_start(anyhow::anyhow!(e)))?
    else {
        return Ok(None);
    };
    let opts = Options {
        follow_children: select.follow_children,
    };
    Filter::with_options(&src, opts)
        .map(Some)
        .map_err(|e| cannot_start(anyhow::anyhow!("{}", e.render(&src))))
}

fn top_sinks(t: &TopArgs) -> Vec<Box<dyn Sink>> {
    let sink = TopSink::new(
        TopConfig {
            format: if t.json {
                TopFormat::Json
            } else {
                TopFormat::Text
            },
            interval: t.interval,
            count: t.count,
            limit: t.limit,
            bits: t.bits,
            tree: t.tree,
        },
        Output::stdout(),
    );
    vec![Box::new(sink)]
}

fn log_sinks(l: &LogArgs) -> Result<(Vec<Box<dyn Sink>>, PipelineConfig), Failure> {
    let out = match &l.output {
        Some(path) => Output::file(path)
            .with_context(|| format!("cannot open {} for appending", path.display()))
            .map_err(cannot_start)?,
        None => Output::stdout(),
    };
    let format = if l.json {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    let cfg = PipelineConfig {
        status_every: l.status_interval,
        ..PipelineConfig::default()
    };
    Ok((vec![Box::new(LogSink::new(format, out))], cfg))
}
