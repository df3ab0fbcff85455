//! `netwho log`: the audit log, live or from a recording (`-r`), and
//! `--verify` of a chained log.

use crate::args::{LogArgs, OnArg};
use crate::failure::{EXIT_INCOMPLETE, EXIT_RUNTIME, Failure, cannot_start};
use crate::select::read_filter;
use netwho_auditlog::chain::{ChainKey, Origin};
use netwho_auditlog::logfile::{ChainedStream, LogFile, LogFileConfig};
use netwho_auditlog::logsink::{LogFormat, LogSink, On};
use netwho_auditlog::template::Template;
use netwho_auditlog::tsformat::TsFormat;
use netwho_pipeline::replay::ReplayConfig;
use netwho_pipeline::{PipelineConfig, Sink};
use netwho_sink::output::Output;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The log's sinks (standard output, a file, journald, syslog) and the
/// status interval it asks for.
pub fn sinks(l: &LogArgs) -> Result<(Vec<Box<dyn Sink>>, PipelineConfig), Failure> {
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
        LogFormat::Text(
            ts,
            if l.full_cmdline {
                usize::MAX
            } else {
                netwho_auditlog::logsink::TEXT_CMDLINE
            },
        )
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

/// `netwho log --verify FILE...`: 0 intact, 1 broken, 2 unreadable.
pub fn verify(l: &LogArgs) -> Result<(), Failure> {
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

/// `netwho log -r FILE`.
pub fn replay(l: &LogArgs, community_seed: u16, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let Some(path) = &l.read else {
        return Ok(());
    };
    let reader = crate::cmd::replay::open(std::slice::from_ref(path), community_seed)?;
    let filter = read_filter(&l.select, crate::select::protos_filter(&l.protos))?;
    let (sinks, _) = sinks(l)?;
    let (since, until) = crate::cmd::replay::window(l.since, l.until, reader.header());
    let cfg = ReplayConfig {
        filter,
        since,
        until,
        speed: None,
        live: false,
    };
    crate::cmd::replay::run(reader, sinks, cfg, None, stop)
}
