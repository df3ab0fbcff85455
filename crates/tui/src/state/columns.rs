//! The columns each table view shows, their widths and the order in which
//! a narrow terminal drops them.

use super::ViewKind;
use super::hist::SLOTS;

/// What a column shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColKind {
    /// Process id.
    Pid,
    /// User name.
    User,
    /// The row's own name: process, program, user, unit, remote, port.
    Name,
    /// User id.
    Uid,
    /// Distinct processes (or pids, or clients).
    Members,
    /// The largest members with their bytes.
    Top,
    /// The process that serves a port.
    Owner,
    /// Command line.
    Cmdline,
    /// The remote's reverse name.
    DnsName,
    /// Ports seen.
    Ports,
    /// Protocol.
    Proto,
    /// Local address and port.
    Local,
    /// Remote address and port.
    Remote,
    /// TCP state.
    State,
    /// Time since it opened.
    Age,
    /// Bytes per second sent.
    SentRate,
    /// Bytes per second received.
    RecvRate,
    /// Bytes sent.
    Sent,
    /// Bytes received.
    Recv,
    /// Bytes sent since the totals were reset.
    SentReset,
    /// Bytes received since then.
    RecvReset,
    /// Open flows (and all).
    Flows,
    /// CPU %.
    Cpu,
    /// Resident memory.
    Rss,
    /// The last ten minutes' rates, as a chart.
    History,
}

/// A column of a table view.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// What it shows.
    pub kind: ColKind,
    /// Its heading.
    pub title: &'static str,
    /// Narrowest width; flexible columns grow up to `max`.
    pub min: u16,
    /// Widest width.
    pub max: u16,
    /// Columns are dropped, highest first, when the terminal is narrow.
    pub drop_order: u8,
    /// Right-aligned.
    pub right: bool,
}

const fn col(kind: ColKind, title: &'static str, min: u16, max: u16, drop_order: u8) -> Column {
    let right = matches!(
        kind,
        ColKind::Pid
            | ColKind::Uid
            | ColKind::Members
            | ColKind::Age
            | ColKind::SentRate
            | ColKind::RecvRate
            | ColKind::Sent
            | ColKind::Recv
            | ColKind::SentReset
            | ColKind::RecvReset
            | ColKind::Flows
            | ColKind::Cpu
            | ColKind::Rss
    );
    Column {
        kind,
        title,
        min,
        max,
        drop_order,
        right,
    }
}

use ColKind as K;

/// The columns of a view (the reset columns only after a reset).
pub fn columns(view: ViewKind, reset: bool) -> Vec<Column> {
    let mut c = match view {
        ViewKind::Processes => vec![
            col(K::Pid, "PID", 7, 7, 0),
            col(K::User, "USER", 8, 10, 3),
            col(K::Name, "PROCESS", 12, 24, 0),
        ],
        ViewKind::Programs => vec![
            col(K::Name, "PROGRAM", 16, 40, 0),
            col(K::Members, "PIDS", 5, 5, 4),
        ],
        ViewKind::Users => vec![
            col(K::Name, "USER", 10, 16, 0),
            col(K::Uid, "UID", 6, 6, 4),
            col(K::Members, "PROCS", 5, 5, 4),
        ],
        ViewKind::Units => vec![
            col(K::Name, "UNIT / CONTAINER", 18, 48, 0),
            col(K::Members, "PROCS", 5, 5, 4),
        ],
        ViewKind::Remotes => vec![
            col(K::Name, "REMOTE", 15, 39, 0),
            col(K::DnsName, "NAME", 12, 32, 6),
            col(K::Ports, "PORTS", 9, 16, 5),
        ],
        ViewKind::Connections => vec![
            col(K::Pid, "PID", 7, 7, 3),
            col(K::Name, "PROCESS", 10, 16, 0),
            col(K::Proto, "PROTO", 5, 5, 4),
            col(K::Local, "LOCAL", 21, 47, 7),
            col(K::Remote, "REMOTE", 21, 47, 0),
            col(K::State, "STATE", 11, 11, 6),
            col(K::Age, "AGE", 6, 6, 5),
        ],
        ViewKind::Ports => vec![
            col(K::Name, "PORT", 9, 9, 0),
            col(K::Owner, "PROCESS", 12, 24, 2),
            col(K::Members, "CLIENTS", 7, 7, 3),
        ],
    };
    c.extend([
        col(K::SentRate, "SENT/s", 9, 9, 0),
        col(K::RecvRate, "RECV/s", 9, 9, 0),
        col(K::Sent, "SENT", 8, 8, 1),
        col(K::Recv, "RECV", 8, 8, 1),
    ]);
    if reset {
        c.extend([
            col(K::SentReset, "SENT(R)", 8, 8, 2),
            col(K::RecvReset, "RECV(R)", 8, 8, 2),
        ]);
    }
    if view != ViewKind::Connections {
        c.push(col(K::Flows, "FLOWS", 9, 9, 5));
    }
    if view == ViewKind::Processes {
        c.extend([col(K::Cpu, "CPU%", 5, 5, 6), col(K::Rss, "RSS", 8, 8, 6)]);
    }
    c.push(col(K::History, "HISTORY", 10, SLOTS as u16 / 2, 2));
    match view {
        ViewKind::Processes => c.push(col(K::Cmdline, "COMMAND", 20, 200, 8)),
        ViewKind::Programs | ViewKind::Users | ViewKind::Units => {
            c.push(col(K::Top, "TOP PROCESSES", 20, 200, 8))
        }
        ViewKind::Remotes => c.push(col(K::Top, "BY PROCESS", 20, 200, 8)),
        ViewKind::Ports => c.push(col(K::Top, "CLIENTS", 20, 200, 8)),
        ViewKind::Connections => c.push(col(K::DnsName, "REMOTE NAME", 12, 200, 8)),
    }
    c
}
