//! The one place a command meets the kernel: the command line's filter,
//! the kernel scope it resolves to, the sensor with its map sizes, the
//! command's sinks, and the pipeline that joins them; capabilities are
//! dropped once the programs are attached.

use crate::args::{Command, SensorArgs, SensorKind};
use crate::cmd::daemon::Daemon;
use crate::failure::{EXIT_RUNTIME, Failure, cannot_start};
use anyhow::Context as _;
use netwho_enrich::procfs::Procfs;
use netwho_model::TableConfig;
use netwho_pipeline::enricher::Enricher;
use netwho_pipeline::{Clocks, Pipeline, PipelineConfig, PipelineError};
use netwho_sensor::diag::{DiagConfig, DiagSensor};
use netwho_sensor::ebpf::{EbpfConfig, EbpfSensor, KernelScope, MapSizes};
use netwho_sensor::{Sensor, SensorError};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A command that reads the kernel: its filter, the kernel scope it
/// resolves to, the sensor, the sinks, the pipeline, until it stops.
pub fn run(
    sensor_args: &SensorArgs,
    community_seed: u16,
    command: &Command,
    daemon: Option<Daemon>,
    stop: &Arc<AtomicBool>,
) -> Result<(), Failure> {
    // `top` on a terminal: the interactive view (its sink is added below)
    let view = matches!(&command, Command::Top(t) if crate::view::wanted(t));
    let (mut sinks, mut cfg, select, protos) = match command {
        Command::Top(t) => {
            let sinks = if view {
                Vec::new()
            } else {
                crate::cmd::top::sinks(t)
            };
            (sinks, PipelineConfig::default(), &t.select, None)
        }
        Command::Log(l) => {
            let (s, c) = crate::cmd::log::sinks(l)?;
            (s, c, &l.select, crate::select::protos_filter(&l.protos))
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
        Command::Pcap(p) => (
            vec![crate::cmd::pcap::sink(p)?],
            PipelineConfig::default(),
            &p.select,
            None,
        ),
        Command::Export(e) => {
            let plan = crate::cmd::export::Plan::from_args(e).map_err(cannot_start)?;
            let sinks = plan.sinks().map_err(cannot_start)?;
            (sinks, PipelineConfig::default(), &e.select, None)
        }
        Command::Report(_)
        | Command::Collect(_)
        | Command::Doctor(_)
        | Command::Completions(_)
        | Command::Man(_) => return Ok(()),
        // (its sinks start after the capabilities are dropped, below)
        Command::Daemon(_) => match &daemon {
            Some(d) => (Vec::new(), PipelineConfig::default(), &d.select, None),
            None => return Ok(()),
        },
    };
    let mut filter = crate::select::read_filter(select, protos)?;
    let mut enricher = Enricher::new(
        Procfs::default().with_cmdline_cap(sensor_args.max_cmdline),
        prereq_cgroup_root(),
    );
    // (the daemon's comes from its configuration, which the option overrides)
    enricher.set_community_seed(
        daemon
            .as_ref()
            .map_or(community_seed, |d| d.config.community_id_seed),
    );
    // (the sensor finds the same mount, or refuses to start and says why)
    // The view filters itself (its bar can widen the filter): no kernel scope.
    let scope = match filter.as_ref().filter(|_| !view) {
        Some(f) => {
            let s = f.scope();
            let k = netwho_pipeline::scope::resolve(&s, &Procfs::default(), enricher.cgroups())
                .context("resolving the filter's kernel scope")
                .map_err(cannot_start)?;
            let mut k = k;
            if sensor_args.names_mask() & netwho_bpf::abi::NAMES_DNS != 0 {
                keep_dns_in_scope(&mut k);
            }
            if !k.is_empty() {
                cfg.scope = Some(s.to_string());
                log::info!("kernel scope: {s}");
            }
            k
        }
        None => KernelScope::default(),
    };
    let text = filter.as_ref().map(ToString::to_string);
    match command {
        Command::Record(r) => sinks.push(crate::cmd::record::sink(r, text, cfg.scope.clone())?),
        Command::Log(l) => {
            if let Some(path) = &l.record {
                sinks.push(crate::cmd::record::log_sink(path, text, cfg.scope.clone())?);
            }
        }
        _ => {}
    }
    // the interactive view filters itself (its bar can widen the filter)
    let view_filter = if view { filter.take() } else { None };
    cfg.filter = filter;

    let sensor = start_sensor(sensor_args, command, scope).map_err(|e| {
        let recording = match command {
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
    let reduced = sensor.info().attribution == "sock_diag";
    if reduced && matches!(command, Command::Pcap(_)) {
        return Err(cannot_start(anyhow::anyhow!(
            "netwho pcap needs the kernel programs (packets are taken where they know their socket); this machine runs the reduced sock_diag sensor: see 'netwho doctor'"
        )));
    }
    log::info!("attached: {}", sensor.info().hooks.join(", "));
    let mut api = None;
    let mut _db_lock = None;
    if let Some(d) = &daemon {
        // (its threads drop what they do not need as they start; the API's
        // takes another uid, for which it still needs the privilege)
        let r = crate::cmd::daemon::start(d)?;
        let info = sensor.info();
        crate::logger::notice(&format!(
            "daemon started: {}; sensor {} ({} hooks{})",
            r.summary,
            info.attribution,
            info.hooks.len(),
            if info.degradations.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} degradations: see 'netwho doctor'",
                    info.degradations.len()
                )
            }
        ));
        sinks.extend(r.sinks);
        api = r.api;
        _db_lock = Some(r.lock);
    }
    // the programs are attached: the collector keeps only what it still
    // uses (threads started from here on inherit it; those started before
    // dropped everything when they started)
    let keeps: &[u32] = if reduced {
        &netwho_enrich::caps::DIAG_COLLECTOR_KEEPS
    } else {
        &netwho_enrich::caps::COLLECTOR_KEEPS
    };
    netwho_enrich::caps::keep_only(keeps)
        .context("dropping the capabilities netwho no longer needs")
        .map_err(cannot_start)?;
    log::info!(
        "capabilities: kept CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE only{}",
        if reduced {
            ", and CAP_SYS_ADMIN and CAP_NET_ADMIN to look into network namespaces created later"
        } else {
            ""
        }
    );

    cfg.table = TableConfig {
        boot_id: netwho_enrich::boot_id(),
        // the reduced sensor reads no payload: nothing to name with
        names: if reduced {
            None
        } else {
            sensor_args.names_config()
        },
        ..TableConfig::default()
    };
    let mut shown = None;
    if let Command::Top(t) = &command
        && view
    {
        let local = netwho_enrich::net::local_addrs().into_iter().collect();
        let (sink, v) = crate::view::start(t, view_filter, local, None, None, stop)?;
        sinks.push(sink);
        shown = Some(v);
    }
    let mut pipeline = Pipeline::new(sensor, enricher, sinks, cfg, Clocks::system());
    let res = pipeline.run(stop);
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
            let how = crate::cmd::stop_reason(why);
            if daemon.is_some() {
                crate::logger::notice(&format!("daemon stopped {how}, final records written"));
            } else {
                log::info!("stopped {how}");
            }
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

/// Names read DNS answers on the sockets that receive them: a kernel
/// scope of ports keeps port 53 too (and, with ports, UDP and TCP), so the
/// filter's flows still get their `rname`; the filter still decides which
/// records are written. A scope of protocols alone that leaves out UDP
/// loses the names of lookups over UDP: said once.
fn keep_dns_in_scope(k: &mut KernelScope) {
    if let Some(ports) = &mut k.ports {
        if !ports.contains(&53) {
            ports.push(53);
        }
        if let Some(protos) = &mut k.protos {
            for p in [6u8, 17] {
                if !protos.contains(&p) {
                    protos.push(p);
                }
            }
        }
    } else if k.protos.as_ref().is_some_and(|p| !p.contains(&17)) {
        log::warn!(
            "names: the filter's kernel scope leaves out UDP sockets, so DNS answers over UDP \
             are not read and its flows get no rname (name a port too, like 'fd.rport = 443', \
             to keep port 53 in scope)"
        );
    }
}

/// The sensor `--sensor` asks for: the kernel programs, the reduced
/// sock_diag sensor, or (auto) the programs and the reduced sensor where
/// this kernel refuses them (no BTF, no cgroup v2, a program or hook
/// refused). Missing privileges are not a reason to fall back: the reduced
/// sensor needs them too.
fn start_sensor(
    args: &SensorArgs,
    command: &Command,
    scope: KernelScope,
) -> Result<Box<dyn Sensor>, SensorError> {
    let scoped = !scope.is_empty();
    let diag = |why: Option<String>| -> Result<Box<dyn Sensor>, SensorError> {
        if scoped {
            log::warn!(
                "the sock-diag sensor has no kernel scope: the filter applies to its output"
            );
        }
        Ok(Box::new(DiagSensor::start(DiagConfig {
            interval: args.look_interval,
            max_sockets: args.max_flows as usize,
            why,
        })?))
    };
    if args.sensor == SensorKind::SockDiag {
        return diag(None);
    }
    let started = EbpfSensor::start(EbpfConfig {
        sizes: MapSizes {
            ring_bytes: args
                .ring_mib
                .map_or_else(|| MapSizes::ring_for(args.max_flows), |m| m << 20),
            flows: args.max_flows,
            wire: args.max_flows,
            flows_per_uid: match args.flows_per_uid {
                0 => (args.max_flows / 4).max(1),
                n => n,
            },
        },
        idle: args.udp_idle,
        payload: args.payload_hooks.path(),
        scope,
        snaplen: match command {
            Command::Record(r) => r.snaplen.unwrap_or(0),
            _ => 0,
        },
        packet_snaplen: match command {
            Command::Pcap(p) => p.snaplen,
            _ => 0,
        },
        names: args.names_mask(),
        ..EbpfConfig::default()
    });
    match started {
        Ok(s) => Ok(Box::new(s)),
        Err(
            e @ (SensorError::NoBtf { .. }
            | SensorError::Btf { .. }
            | SensorError::NoCgroup2
            | SensorError::Load { .. }
            | SensorError::Hook { .. }),
        ) if args.sensor == SensorKind::Auto => {
            log::warn!(
                "the kernel programs cannot run here ({e}); falling back to the reduced \
                 sock_diag sensor (see 'netwho doctor'; --sensor ebpf refuses instead)"
            );
            diag(Some(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// The cgroup v2 mount, if there is one (the sensor refuses to start
/// without it and says why).
fn prereq_cgroup_root() -> Option<std::path::PathBuf> {
    netwho_sensor::ebpf::prereq::cgroup2_root().ok()
}
