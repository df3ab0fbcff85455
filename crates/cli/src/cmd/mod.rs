//! The commands, one file each, and the dispatch from the command line to
//! them (signals first). Commands that read the kernel share one wiring,
//! [`crate::live`]; those that read recordings share [`replay`].

pub mod collect;
pub mod completions;
pub mod connect;
pub mod daemon;
pub mod doctor;
pub mod export;
pub mod log;
pub mod man;
pub mod pcap;
pub mod record;
pub mod replay;
pub mod report;
pub mod top;

use crate::args::{Cli, Command, TopArgs};
use crate::failure::{Failure, cannot_start};
use anyhow::Context as _;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The signal that stopped the command (0: none yet).
static LAST_SIGNAL: std::sync::LazyLock<Arc<std::sync::atomic::AtomicUsize>> =
    std::sync::LazyLock::new(|| Arc::new(std::sync::atomic::AtomicUsize::new(0)));

/// Why a command stopped, in words: `on SIGTERM`, `on SIGINT`, ...
pub fn stop_reason(why: netwho_pipeline::Stopped) -> String {
    use netwho_pipeline::Stopped;
    match why {
        Stopped::Signal => match LAST_SIGNAL.load(std::sync::atomic::Ordering::Relaxed) as i32 {
            signal_hook::consts::SIGTERM => "on SIGTERM".into(),
            signal_hook::consts::SIGINT => "on SIGINT".into(),
            signal_hook::consts::SIGHUP => "on SIGHUP".into(),
            _ => "on a signal".into(),
        },
        Stopped::Done => "with its work done".into(),
        Stopped::OutputClosed => "as its output was closed".into(),
    }
}

/// Run the command the line asked for (`top` if none).
pub fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Some(Command::Completions(c)) => {
            return crate::failure::output(completions::print(c.shell));
        }
        Some(Command::Man(m)) => return man::write_all(&m.dir),
        Some(Command::Doctor(d)) => return doctor::doctor(d, cli.sensor.payload_hooks.path()),
        _ => {}
    }
    if let Some(Command::Log(l)) = &cli.command
        && !l.verify.is_empty()
    {
        return log::verify(l);
    }
    let stop = Arc::new(AtomicBool::new(false));
    // SIGHUP never kills without the final records and commit: the daemon
    // ignores it (restart it to change its configuration); a command that
    // writes records stops cleanly, as at SIGTERM (its terminal went away);
    // the interactive view has nothing to write to a terminal that is gone
    // and ends as SIGHUP ends any program
    let interactive = match &cli.command {
        Some(Command::Top(t)) => crate::view::wanted(t),
        None => crate::view::wanted(&TopArgs::default()),
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
            .and_then(|_| {
                signal_hook::flag::register_usize(sig, Arc::clone(&LAST_SIGNAL), sig as usize)
            })
            .context("installing signal handlers")
            .map_err(cannot_start)?;
    }

    let command = cli.command.unwrap_or(Command::Top(TopArgs::default()));
    let daemon = match &command {
        Command::Daemon(d) => match daemon::configure(d, cli.community_id_seed)? {
            Some(d) => Some(d),
            None => return Ok(()),
        },
        _ => None,
    };
    let target =
        |c: &crate::args::ConnectArgs| c.target().map_err(|e| cannot_start(anyhow::anyhow!(e)));
    match &command {
        Command::Report(r) => {
            return match target(&r.connect)? {
                Some(t) => connect::report(r, t),
                None => report::report(r, cli.community_id_seed, &stop),
            };
        }
        Command::Top(t) if t.connect.connect.is_some() => {
            if let Some(tg) = target(&t.connect)? {
                return connect::top(t, tg, &stop);
            }
        }
        Command::Collect(c) => return collect::collect(c, &stop),
        Command::Log(l) if l.read.is_some() => {
            return log::replay(l, cli.community_id_seed, &stop);
        }
        Command::Top(t) if t.read.is_some() => {
            return top::replay(t, cli.community_id_seed, &stop);
        }
        _ => {}
    }
    crate::live::run(&cli.sensor, cli.community_id_seed, &command, daemon, &stop)
}
