//! The terminal: raw mode and the alternate screen (restored on drop,
//! on panic and when the stop flag is set by SIGTERM/SIGINT), the loop
//! that folds batches into the model, reads keys and redraws.

use crate::input::{Mode, action};
use crate::state::model::Model;
use crate::state::screen::{self, Body};
use crate::state::ui::{Effect, Ui};
use crate::state::{Batch, GroupKey, ViewKind};
use netwho_enrich::dns::Resolver;
use netwho_query::Filter;
use netwho_sink::replay::ReplayCmd;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::execute;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::Duration;

/// How the view starts.
#[derive(Debug)]
pub struct TuiConfig {
    /// Closed flows and rows without open flows stay this long.
    pub keep: Duration,
    /// Colors (off with --no-color or NO_COLOR).
    pub color: bool,
    /// Rates in bits per second.
    pub bits: bool,
    /// Mouse wheel and clicks.
    pub mouse: bool,
    /// The filter the bar starts with (`--filter`).
    pub filter: Option<Filter>,
    /// This host's addresses (`fd.is_local`).
    pub local: HashSet<IpAddr>,
    /// Look up names of remote addresses.
    pub dns: bool,
    /// Rows by total bytes first (`--sort total`) instead of by rate.
    pub by_total: bool,
    /// What the daemon's alerts name, as it changes (`top --connect`):
    /// those rows are marked.
    pub alerts: Option<Receiver<crate::Alerted>>,
}

/// Remote addresses asked about at most (then no more lookups).
const DNS_ASKED_MAX: usize = 65_536;

/// Names for the remotes view, looked up on the resolver's thread.
struct Names {
    resolver: Resolver,
    asked: HashSet<IpAddr>,
}

impl Names {
    /// Ask for remotes not asked about yet; take the answers in.
    fn update(&mut self, model: &mut Model) -> bool {
        for key in model.rows(ViewKind::Remotes).keys() {
            if let GroupKey::Remote(ip) = key
                && self.asked.len() < DNS_ASKED_MAX
                && !self.asked.contains(ip)
                && self.resolver.ask(*ip)
            {
                self.asked.insert(*ip);
            }
        }
        let mut got = false;
        while let Ok((ip, name)) = self.resolver.answers.try_recv() {
            if let Some(n) = name {
                model.dns.insert(ip, n);
                got = true;
            }
        }
        got
    }
}

/// A replay's controls, when the view steers one.
#[derive(Debug)]
pub struct ReplayLink {
    /// Commands to the replay.
    pub cmds: SyncSender<ReplayCmd>,
    /// Where the replay stands, as the status line says it.
    pub position: Receiver<String>,
}

/// Batches held while the display is frozen, at most (older ones are
/// merged into the oldest held, so nothing is lost).
const HELD_MAX: usize = 600;

/// Raw mode, the alternate screen and the mouse, undone on drop.
struct TermGuard {
    mouse: bool,
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        if self.mouse {
            let _ = execute!(std::io::stdout(), DisableMouseCapture);
        }
        ratatui::restore();
    }
}

/// Run the view until `q`, the stop flag, or the collector's end.
pub fn run(
    cfg: TuiConfig,
    rx: Receiver<Batch>,
    stop: Arc<AtomicBool>,
    replay: Option<ReplayLink>,
) -> std::io::Result<()> {
    // ratatui's init also restores the terminal before a panic is printed
    let mut terminal = ratatui::try_init()?;
    let _guard = TermGuard { mouse: cfg.mouse };
    if cfg.mouse {
        execute!(std::io::stdout(), EnableMouseCapture)?;
    }
    let res = main_loop(&mut terminal, cfg, &rx, &stop, replay.as_ref());
    // the collector stops with the view
    stop.store(true, Ordering::Relaxed);
    if let Some(r) = &replay {
        let _ = r.cmds.try_send(ReplayCmd::Quit);
    }
    res
}

fn main_loop(
    terminal: &mut DefaultTerminal,
    cfg: TuiConfig,
    rx: &Receiver<Batch>,
    stop: &AtomicBool,
    replay: Option<&ReplayLink>,
) -> std::io::Result<()> {
    let mut model = Model::new(
        netwho_model::nanos(cfg.keep),
        cfg.filter.clone(),
        cfg.local.clone(),
    );
    let mut ui = Ui::new(cfg.color, cfg.bits);
    if cfg.by_total {
        ui.sort = [crate::state::ui::SortKey::Total; 7];
    }
    let mut names = match cfg.dns {
        true => Some(Names {
            resolver: Resolver::spawn()?,
            asked: HashSet::new(),
        }),
        false => None,
    };
    let mut held: Vec<Batch> = Vec::new();
    let mut dirty = true;
    let mut ended = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        loop {
            match rx.try_recv() {
                Ok(b) => {
                    dirty = true;
                    if ui.frozen {
                        hold(&mut held, b);
                    } else {
                        apply(&mut model, &mut ui, b);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if !ended {
                        ended = true;
                        dirty = true;
                        ui.message = Some(match replay {
                            Some(_) => "the recording ended; q quits".into(),
                            None => "the collector stopped; q quits".into(),
                        });
                    }
                    break;
                }
            }
        }
        if let Some(n) = &mut names
            && n.update(&mut model)
        {
            dirty = true;
        }
        if let Some(a) = &cfg.alerts
            && let Some(latest) = a.try_iter().last()
            && latest != model.alerted
        {
            model.alerted = latest;
            dirty = true;
        }
        if let Some(r) = replay {
            while let Ok(p) = r.position.try_recv() {
                ui.replay = Some(p);
                dirty = true;
            }
        }
        if dirty {
            let size = terminal.size()?;
            let vs = screen::build(&model, &ui);
            let (keys, detail_rows, detail) = match &vs.body {
                Body::Table(t) => (t.keys.clone(), 0, None),
                Body::Detail(d) => (ui.shown.clone(), d.flows.keys.len(), Some(d.facts.len())),
            };
            ui.page = crate::view::body_rows(size.height, ui.bar.is_some(), detail);
            ui.shown(keys, detail_rows);
            terminal.draw(|f| crate::view::render(f, &vs))?;
            dirty = false;
        }
        if !event::poll(Duration::from_millis(100))? {
            continue;
        }
        let ev = event::read()?;
        if let Event::Resize(..) = ev {
            dirty = true;
            continue;
        }
        let mode = Mode {
            bar: ui.bar.is_some(),
            replay: replay.is_some(),
        };
        let Some(a) = action(&ev, mode) else { continue };
        dirty = true;
        match ui.act(a, &mut model) {
            Effect::None => {}
            Effect::Quit => return Ok(()),
            Effect::Freeze(true) => {}
            Effect::Freeze(false) => {
                for b in held.drain(..) {
                    apply(&mut model, &mut ui, b);
                }
            }
            Effect::ReplayPause => send(replay, ReplayCmd::Pause),
            Effect::ReplaySpeed(faster) => send(
                replay,
                if faster {
                    ReplayCmd::Faster
                } else {
                    ReplayCmd::Slower
                },
            ),
            Effect::ReplaySeek(s) => send(replay, ReplayCmd::Seek(i64::from(s) * 1_000_000_000)),
        }
    }
}

fn send(replay: Option<&ReplayLink>, cmd: ReplayCmd) {
    if let Some(r) = replay {
        // a full queue: the replay is busy with earlier keys; this one goes
        let _ = r.cmds.try_send(cmd);
    }
}

/// A batch into the model; the coverage as the collector measured it
/// (carried in its status records).
fn apply(model: &mut Model, ui: &mut Ui, b: Batch) {
    if let Some(c) = b.status.as_ref().and_then(|st| st.coverage) {
        ui.coverage = c.share;
    }
    model.apply(b);
}

/// Keep a batch for later; past the limit, fold the oldest two into one.
fn hold(held: &mut Vec<Batch>, b: Batch) {
    held.push(b);
    if held.len() > HELD_MAX {
        let second = held.remove(1);
        crate::state::merge_into(&mut held[0], second);
    }
}
