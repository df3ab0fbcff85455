//! The `netwho` binary: flags, wiring, signals, exit codes. Nothing else.

mod args;
mod config;
mod connect;
mod daemon;
mod export;
mod keys;
mod logger;
mod offline;
mod tui;

use anyhow::Context;
use args::{Cli, Command, LogArgs, OnArg, ProtoArg, SelectArgs, TopArgs};
use clap::Parser;
use netwho_auditlog::chain::{ChainKey, Origin};
use netwho_auditlog::logfile::{ChainedStream, LogFile, LogFileConfig};
use netwho_auditlog::logsink::{LogFormat, LogSink, On};
use netwho_auditlog::template::Template;
use netwho_auditlog::tsformat::TsFormat;
use netwho_enrich::procfs::Procfs;
use netwho_model::TableConfig;
use netwho_pipeline::enricher::Enricher;
use netwho_pipeline::topsink::{TopConfig, TopFormat, TopSink};
use netwho_pipeline::{Clocks, Pipeline, PipelineConfig, PipelineError, Sink};
use netwho_query::{Filter, Options};
use netwho_sensor::Sensor;
use netwho_sensor::ebpf::{EbpfConfig, EbpfSensor, KernelScope, MapSizes};
use netwho_sink::output::Output;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Cannot start: privileges, kernel support, arguments. Nothing was recorded.
const EXIT_CANNOT_START: u8 = 2;
/// Failed while running (output error); `--verify`: the chain is broken.
const EXIT_RUNTIME: u8 = 1;
/// `--verify`: the chain is unbroken, but records were lost or its
/// beginning is missing.
const EXIT_INCOMPLETE: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logger::init(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            let mut shown = error.to_string();
            eprintln!("netwho: error: {shown}");
            // a cause the message already quotes is not said twice
            for cause in error.chain().skip(1) {
                let c = cause.to_string();
                if !shown.contains(&c) {
                    eprintln!("  caused by: {c}");
                    shown.push_str(&c);
                }
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

/// `netwho collect`: the fleet's records into PostgreSQL.
fn collect(c: &args::CollectArgs, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let cfg = netwho_fleet::collect::CollectConfig {
        nats: netwho_fleet::nats_url(&c.nats)
            .context("--nats")
            .map_err(cannot_start)?,
        postgres: c.postgres.clone(),
        consumer: c.consumer.clone(),
        drain: c.drain,
    };
    let s = netwho_fleet::collect::collect(&cfg, stop).map_err(|e| Failure {
        code: EXIT_RUNTIME,
        error: anyhow::Error::new(e).context("collecting"),
    })?;
    log::info!(
        "collect: done: {} records stored ({} were there already, {} rejected, {} messages in netwho_dead_letters) from {} messages",
        s.stored,
        s.records - s.stored,
        s.rejected,
        s.dead,
        s.messages
    );
    Ok(())
}

fn run(cli: Cli) -> Result<(), Failure> {
    if let Some(Command::Log(l)) = &cli.command
        && !l.verify.is_empty()
    {
        return verify(l);
    }
    let stop = Arc::new(AtomicBool::new(false));
    // SIGHUP never kills without the final records and commit: the daemon
    // ignores it (restart it to change its configuration); a command that
    // writes records stops cleanly, as at SIGTERM (its terminal went away);
    // the interactive view has nothing to write to a terminal that is gone
    // and ends as SIGHUP ends any program
    let interactive = match &cli.command {
        Some(Command::Top(t)) => tui::wanted(t),
        None => tui::wanted(&TopArgs::default()),
        _ => false,
    };
    let mut stoppers = vec![signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];
    match &cli.command {
        Some(Command::Daemon(_)) => {
            signal_hook::flag::register(
                signal_hook::consts::SIGHUP,
                Arc::new(AtomicBool::new(false)),
            )
            .context("installing signal handlers")
            .map_err(cannot_start)?;
        }
        _ if interactive => {}
        _ => stoppers.push(signal_hook::consts::SIGHUP),
    }
    for sig in stoppers {
        // a second signal while shutting down exits at once
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .context("installing signal handlers")
            .map_err(cannot_start)?;
    }

    let command = cli.command.unwrap_or(Command::Top(TopArgs::default()));
    let daemon = match &command {
        Command::Daemon(d) => match daemon::configure(d)? {
            Some(d) => Some(d),
            None => return Ok(()),
        },
        _ => None,
    };
    let target = |c: &args::ConnectArgs| c.target().map_err(|e| cannot_start(anyhow::anyhow!(e)));
    match &command {
        Command::Report(r) => {
            return match target(&r.connect)? {
                Some(t) => connect::report(r, t),
                None => offline::report(r, &stop),
            };
        }
        Command::Top(t) if t.connect.connect.is_some() => {
            if let Some(tg) = target(&t.connect)? {
                return connect::top(t, tg, &stop);
            }
        }
        Command::Collect(c) => return collect(c, &stop),
        Command::Log(l) if l.read.is_some() => return offline::log(l, &stop),
        Command::Top(t) if t.read.is_some() => return offline::top(t, &stop),
        _ => {}
    }
    // `top` on a terminal: the interactive view (its sink is added below)
    let view = matches!(&command, Command::Top(t) if tui::wanted(t));
    let (mut sinks, mut cfg, select, protos) = match &command {
        Command::Top(t) => {
            let sinks = if view { Vec::new() } else { top_sinks(t) };
            (sinks, PipelineConfig::default(), &t.select, None)
        }
        Command::Log(l) => {
            let (s, c) = log_sinks(l)?;
            (s, c, &l.select, protos_filter(&l.protos))
        }
        Command::Record(r) => (
            Vec::new(),
            PipelineConfig {
                status_every: r.status_interval,
                ..PipelineConfig::default()
            },
            &r.select,
            None,
        ),
        Command::Export(e) => {
            let plan = export::Plan::from_args(e).map_err(cannot_start)?;
            let sinks = plan.sinks().map_err(cannot_start)?;
            (sinks, PipelineConfig::default(), &e.select, None)
        }
        Command::Report(_) | Command::Collect(_) => return Ok(()),
        // (its sinks start after the capabilities are dropped, below)
        Command::Daemon(_) => match &daemon {
            Some(d) => (Vec::new(), PipelineConfig::default(), &d.select, None),
            None => return Ok(()),
        },
    };
    let mut filter = read_filter(select, protos)?;
    let mut enricher = Enricher::new(
        Procfs::default().with_cmdline_cap(cli.sensor.max_cmdline),
        prereq_cgroup_root(),
    );
    // (the sensor finds the same mount, or refuses to start and says why)
    // The view filters itself (its bar can widen the filter): no kernel scope.
    let scope = match filter.as_ref().filter(|_| !view) {
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
    let text = filter.as_ref().map(ToString::to_string);
    match &command {
        Command::Record(r) => sinks.push(offline::record_sink(r, text, cfg.scope.clone())?),
        Command::Log(l) => {
            if let Some(path) = &l.record {
                sinks.push(offline::log_record_sink(path, text, cfg.scope.clone())?);
            }
        }
        _ => {}
    }
    // the interactive view filters itself (its bar can widen the filter)
    let view_filter = if view { filter.take() } else { None };
    cfg.filter = filter;

    let sensor = EbpfSensor::start(EbpfConfig {
        sizes: MapSizes {
            ring_bytes: cli
                .sensor
                .ring_mib
                .map_or_else(|| MapSizes::ring_for(cli.sensor.max_flows), |m| m << 20),
            flows: cli.sensor.max_flows,
            wire: cli.sensor.max_flows,
            flows_per_uid: match cli.sensor.flows_per_uid {
                0 => (cli.sensor.max_flows / 4).max(1),
                n => n,
            },
        },
        idle: cli.sensor.udp_idle,
        scope,
        snaplen: match &command {
            Command::Record(r) => r.snaplen.unwrap_or(0),
            _ => 0,
        },
        ..EbpfConfig::default()
    })
    .map_err(|e| {
        let recording = match &command {
            Command::Record(r) => Some(&r.write),
            Command::Log(l) => l.record.as_ref(),
            _ => None,
        };
        if let Some(path) = recording {
            // nothing was recorded: leave no empty recording behind
            drop(sinks.drain(..));
            let _ = std::fs::remove_file(path);
        }
        cannot_start(e)
    })?;
    log::info!("attached: {}", sensor.info().hooks.join(", "));
    let mut api = None;
    let mut _db_lock = None;
    if let Some(d) = &daemon {
        // (its threads drop what they do not need as they start; the API's
        // takes another uid, for which it still needs the privilege)
        let r = daemon::start(d)?;
        sinks.extend(r.sinks);
        api = r.api;
        _db_lock = Some(r.lock);
    }
    // the programs are attached: the collector keeps only what it still
    // uses (threads started from here on inherit it; those started before
    // dropped everything when they started)
    netwho_enrich::caps::keep_only(&netwho_enrich::caps::COLLECTOR_KEEPS)
        .context("dropping the capabilities netwho no longer needs")
        .map_err(cannot_start)?;
    log::info!("capabilities: kept CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE only");

    cfg.table = TableConfig {
        boot_id: netwho_enrich::boot_id(),
        ..TableConfig::default()
    };
    let mut shown = None;
    if let Command::Top(t) = &command
        && view
    {
        let local = netwho_enrich::net::local_addrs().into_iter().collect();
        let (sink, v) = tui::start(t, view_filter, local, None, true, &stop)?;
        sinks.push(sink);
        shown = Some(v);
    }
    let mut pipeline = Pipeline::new(sensor, enricher, sinks, cfg, Clocks::system());
    let res = pipeline.run(&stop);
    if let Some(server) = api.take() {
        server.stop();
    }
    if let Some(v) = shown {
        if res.is_err() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        drop(pipeline);
        v.join()?;
    }
    match res {
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

/// `-p tcp,udp` as a filter expression.
fn protos_filter(protos: &[ProtoArg]) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    for p in protos {
        match p {
            ProtoArg::Tcp => names.push("tcp"),
            ProtoArg::Udp => names.push("udp"),
            ProtoArg::Icmp => names.extend(["icmp", "icmpv6"]),
        }
    }
    names.dedup();
    (!names.is_empty()).then(|| format!("fd.proto in ({})", names.join(", ")))
}

/// The filter of a command: parsed and checked before anything starts, so
/// a bad one exits 2 with the expression and a caret under the problem.
/// `extra` (from options like `-p`) is joined to it with `and`.
fn read_filter(select: &SelectArgs, extra: Option<String>) -> Result<Option<Filter>, Failure> {
    let opts = Options {
        follow_children: select.follow_children,
    };
    let parse = |src: &str| {
        Filter::with_options(src, opts)
            .map_err(|e| cannot_start(anyhow::anyhow!("{}", e.render(src))))
    };
    let given = select
        .expression()
        .map_err(|e| cannot_start(anyhow::anyhow!(e)))?;
    Ok(match (given, extra) {
        (None, None) => None,
        (Some(g), None) => Some(parse(&g)?),
        (None, Some(x)) => Some(parse(&x)?),
        // each part checked alone, so the user's columns are its own
        (Some(g), Some(x)) => Some(parse(&x)?.and(parse(&g)?)),
    })
}

/// `netwho log --verify FILE...`: 0 intact, 1 broken, 2 unreadable.
fn verify(l: &LogArgs) -> Result<(), Failure> {
    let key = match &l.chain_key {
        Some(p) => Some(ChainKey::from_file(p).map_err(cannot_start)?),
        None => None,
    };
    match netwho_auditlog::chain::verify(&l.verify, key.as_ref()) {
        Ok(report) if report.incomplete(l.missing_start_ok) => {
            println!("{report}");
            Err(Failure {
                code: EXIT_INCOMPLETE,
                error: anyhow::anyhow!(
                    "the chain is unbroken but incomplete: {}",
                    if report.lost_records() > 0 {
                        format!(
                            "{} records were lost before the writer",
                            report.lost_records()
                        )
                    } else {
                        "its beginning is missing (--missing-start-ok if retention removed it)"
                            .to_string()
                    }
                ),
            })
        }
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(e @ netwho_auditlog::chain::VerifyError::Broken { .. }) => Err(Failure {
            code: EXIT_RUNTIME,
            error: e.into(),
        }),
        Err(e) => Err(cannot_start(e)),
    }
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
    let ts = match &l.format_ts {
        Some(f) => TsFormat::new(f, l.local_time)
            .map_err(|e| cannot_start(anyhow::anyhow!("{}", e.render_as(f, "--format-ts"))))?,
        None if l.local_time => TsFormat::new(netwho_auditlog::tsformat::DEFAULT, true)
            .map_err(|e| cannot_start(anyhow::anyhow!("{e}")))?,
        None => TsFormat::default(),
    };
    let key = match &l.chain_key {
        Some(p) => {
            warn_if_readable(p);
            Some(ChainKey::from_file(p).map_err(cannot_start)?)
        }
        None => l.chain.then(ChainKey::unkeyed),
    };
    let format = if l.json || key.is_some() {
        LogFormat::Json
    } else if let Some(t) = &l.format {
        LogFormat::Template(
            Template::new(t, ts)
                .map_err(|e| cannot_start(anyhow::anyhow!("{}", e.render_as(t, "--format"))))?,
        )
    } else {
        LogFormat::Text(ts)
    };
    let on = match l.on {
        OnArg::Open => On::Open,
        OnArg::Close => On::Close,
        OnArg::Both => On::Both,
    };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for (sock, proto) in [
        (&l.journal, netwho_auditlog::journal::Protocol::Journal),
        (&l.syslog, netwho_auditlog::journal::Protocol::Syslog),
    ] {
        if let Some(path) = sock {
            let j = netwho_auditlog::journal::JournalSink::connect(proto, path, on, format.clone())
                .map_err(cannot_start)?;
            sinks.push(Box::new(j));
        }
    }
    // the journal or syslog alone: nothing on standard output
    if l.output.is_none() && key.is_none() && !sinks.is_empty() {
        return Ok((sinks, cfg_for(l)));
    }
    let out = match (&l.output, key) {
        (Some(path), key) => {
            let file = LogFile::open(LogFileConfig {
                path: path.clone(),
                rotate_size: l.rotate_size,
                rotate_every: l.rotate_every,
                keep: l.rotate_keep,
                compress: !l.no_compress,
                chain: key,
                origin: Origin::here(),
                clock: None,
            })
            .map_err(cannot_start)?;
            Output::spawn_to(Box::new(file))
        }
        (None, Some(key)) => Output::spawn_to(Box::new(ChainedStream::new(
            std::io::stdout(),
            key,
            Origin::here(),
            None,
        ))),
        (None, None) => Output::stdout(),
    };
    sinks.push(Box::new(LogSink::new(format, on, out)));
    Ok((sinks, cfg_for(l)))
}

fn cfg_for(l: &LogArgs) -> PipelineConfig {
    PipelineConfig {
        status_every: l.status_interval,
        ..PipelineConfig::default()
    }
}

/// A chain key others can read protects nothing: say so.
fn warn_if_readable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(p)
        && m.permissions().mode() & 0o077 != 0
    {
        log::warn!(
            "the chain key {} can be read by others (mode {:o}): chmod 600 it",
            p.display(),
            m.permissions().mode() & 0o777
        );
    }
}
