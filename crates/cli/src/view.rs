//! Wiring of the interactive view: the collector (live pipeline or a
//! replay) runs on this thread, the view on its own; they talk over the
//! view's bounded channel, and the stop flag ends both.

use crate::args::TopArgs;
use crate::failure::{Failure, cannot_start};
use netwho_pipeline::Sink;
use netwho_pipeline::replay::{ReplayCmd, ReplayPos};
use netwho_query::Filter;
use netwho_tui::{ReplayLink, TuiConfig, TuiSink};
use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// `netwho top` opens the interactive view when neither --text nor
/// --json asks otherwise and both ends are a terminal.
pub fn wanted(t: &TopArgs) -> bool {
    !t.text && !t.json && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// The view's thread, started.
pub struct View {
    handle: JoinHandle<std::io::Result<()>>,
}

/// The sink the collector feeds (live, or `replay`'s), and the view
/// running on its thread.
pub fn start(
    t: &TopArgs,
    filter: Option<Filter>,
    local: HashSet<IpAddr>,
    replay: Option<ReplayLink>,
    alerts: Option<Receiver<netwho_tui::Alerted>>,
    stop: &Arc<AtomicBool>,
) -> Result<(Box<dyn Sink>, View), Failure> {
    if t.tree {
        return Err(cannot_start(anyhow::anyhow!(
            "--tree draws the --text table; the interactive view has no tree (its drill-down, \
             Enter, shows a process's parents; keys 2-4 group by program, user and unit)"
        )));
    }
    let (sink, rx) = TuiSink::new(t.interval);
    let cfg = TuiConfig {
        keep: t.keep,
        color: !t.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        bits: t.bits,
        mouse: t.mouse,
        filter,
        local,
        dns: !t.no_dns,
        by_total: t.sort == crate::args::TopSort::Total,
        alerts,
    };
    let stop = Arc::clone(stop);
    let handle = std::thread::Builder::new()
        .name("netwho-view".into())
        .spawn(move || {
            netwho_enrich::caps::drop_all_here("the view");
            netwho_tui::run(cfg, rx, stop, replay)
        })
        .map_err(cannot_start)?;
    Ok((Box::new(sink), View { handle }))
}

impl View {
    /// Wait for the view to close (it has restored the terminal then).
    pub fn join(self) -> Result<(), Failure> {
        match self.handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure {
                code: crate::failure::EXIT_RUNTIME,
                error: anyhow::Error::new(e).context("the interactive view failed"),
            }),
            Err(_) => Err(Failure {
                code: crate::failure::EXIT_RUNTIME,
                error: anyhow::anyhow!("the interactive view panicked (the message is above)"),
            }),
        }
    }
}

/// Shows a replay's position.
type Show = Box<dyn FnMut(ReplayPos)>;

/// Keys of the view to the replay, and the replay's position to the view.
pub fn replay_link() -> (ReplayLink, Receiver<ReplayCmd>, Show) {
    let (cmd_tx, cmd_rx): (SyncSender<ReplayCmd>, _) = sync_channel(16);
    let (pos_tx, pos_rx) = sync_channel(4);
    let show = Box::new(move |p: ReplayPos| {
        // the view shows the latest; one missed while it is busy does not matter
        let _ = pos_tx.try_send(position(&p));
    });
    (
        ReplayLink {
            cmds: cmd_tx,
            position: pos_rx,
        },
        cmd_rx,
        show,
    )
}

/// A replay's position as the status line says it.
pub fn position(p: &ReplayPos) -> String {
    let at = netwho_model::time::rfc3339_from_unix_ns(p.at_unix_ns);
    let speed = match p.speed {
        Some(s) if s >= 1.0 => format!("{s}x"),
        Some(s) => format!("1/{}x", (1.0 / s).round()),
        None => "as fast as it reads".into(),
    };
    match (p.seeking, p.paused) {
        _ if p.ended => format!("at {at}: the end ([ {{ go back)"),
        (Some(to), _) => format!(
            "seeking to {}",
            netwho_model::time::rfc3339_from_unix_ns(to)
        ),
        (None, true) => format!("paused at {at} (space goes on)"),
        (None, false) => format!("at {at}, speed {speed}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status says where the replay is: the target while it seeks,
    /// the end once there (a seek past the end arrives at the end).
    #[test]
    fn the_status_shows_where_the_replay_is() {
        let mut p = ReplayPos {
            at_unix_ns: 1_700_000_000_000_000_000,
            speed: Some(1.0),
            paused: false,
            seeking: Some(1_700_000_100_000_000_000),
            ended: false,
        };
        assert_eq!(position(&p), "seeking to 2023-11-14T22:15:00.000000000Z");
        p.seeking = None;
        p.ended = true;
        assert_eq!(
            position(&p),
            "at 2023-11-14T22:13:20.000000000Z: the end ([ { go back)"
        );
    }
}
