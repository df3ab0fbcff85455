//! The view model: [`model::Model`] holds what the collector said,
//! [`ui::Ui`] what the user asked for (view, sort, selection, filter), and
//! [`screen::build`] turns both into the [`screen::ViewState`] that the
//! view draws. No terminal here: tests drive it with batches and keys.

pub mod columns;
pub mod hist;
pub mod model;
pub mod screen;
pub mod ui;

use netwho_model::record::Context;
use netwho_model::time::WallClock;
use netwho_model::{Flow, FlowKey, MonoNs, ProcKey, Proto};
use netwho_sink::status::StatusRecord;
use std::net::IpAddr;
use std::sync::Arc;

/// The views, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViewKind {
    /// One row per process.
    Processes,
    /// One row per executable.
    Programs,
    /// One row per user.
    Users,
    /// One row per systemd unit (or container, or cgroup).
    Units,
    /// One row per remote address.
    Remotes,
    /// One row per connection.
    Connections,
    /// One row per local server port.
    Ports,
}

impl ViewKind {
    /// Every view, in the order of the tabs.
    pub const ALL: [ViewKind; 7] = [
        ViewKind::Processes,
        ViewKind::Programs,
        ViewKind::Users,
        ViewKind::Units,
        ViewKind::Remotes,
        ViewKind::Connections,
        ViewKind::Ports,
    ];

    /// Its position among the tabs.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its tab's title.
    pub fn title(self) -> &'static str {
        match self {
            ViewKind::Processes => "Processes",
            ViewKind::Programs => "Programs",
            ViewKind::Users => "Users",
            ViewKind::Units => "Units",
            ViewKind::Remotes => "Remotes",
            ViewKind::Connections => "Connections",
            ViewKind::Ports => "Ports",
        }
    }

    /// For narrow terminals.
    pub fn short(self) -> &'static str {
        match self {
            ViewKind::Processes => "Procs",
            ViewKind::Programs => "Progs",
            ViewKind::Connections => "Conns",
            v => v.title(),
        }
    }
}

/// One row of a view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// A process.
    Proc(ProcKey),
    /// The executable (or the comm when the exe is unknown).
    Program(Arc<str>),
    /// A user.
    User(u32),
    /// The systemd unit, else the container, else the cgroup path.
    Unit(Arc<str>),
    /// A remote address.
    Remote(IpAddr),
    /// A local port remote peers connected to.
    Port(Proto, u16),
    /// A connection.
    Flow(FlowKey),
}

/// One flow's latest state, as the collector sends it.
#[derive(Clone, Debug)]
pub struct FlowUpdate {
    /// The flow.
    pub flow: Flow,
    /// Its names, hash and resources.
    pub ctx: Context,
    /// It has closed.
    pub closed: bool,
}

/// What the collector tells the view at each interval.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The interval's end (boot time).
    pub now: MonoNs,
    /// The boot-to-Unix offset then.
    pub wall: WallClock,
    /// Flows that changed, each once with its latest state.
    pub flows: Vec<FlowUpdate>,
    /// Processes that exited.
    pub exits: Vec<(ProcKey, MonoNs)>,
    /// The status record of the interval, if any.
    pub status: Option<StatusRecord>,
    /// A replay went back: start over.
    pub restart: bool,
}

/// Fold a later batch into an earlier one (the later state of a flow wins).
pub fn merge_into(first: &mut Batch, later: Batch) {
    if later.restart {
        *first = later;
        return;
    }
    let mut at: rustc_hash::FxHashMap<FlowKey, usize> = first
        .flows
        .iter()
        .enumerate()
        .map(|(i, u)| (u.flow.key, i))
        .collect();
    for u in later.flows {
        match at.get(&u.flow.key) {
            Some(&i) => first.flows[i] = u,
            None => {
                at.insert(u.flow.key, first.flows.len());
                first.flows.push(u);
            }
        }
    }
    first.exits.extend(later.exits);
    first.now = later.now;
    first.wall = later.wall;
    if later.status.is_some() {
        first.status = later.status;
    }
}
