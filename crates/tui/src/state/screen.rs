//! [`ViewState`]: everything one frame shows, built from the model and
//! the UI state. The view only lays it out and formats numbers.

pub use super::columns::{ColKind, Column, columns};
use super::hist::SLOTS;
use super::model::{Agg, FlowEntry, Model, unit_name};
use super::ui::{FilterBar, SortKey, Ui};
use super::{GroupKey, ViewKind};
use ColKind as K;
use netwho_model::{Flow, MonoNs, ProcKey};
use std::cmp::Ordering;

/// A cell's value; the view formats it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Text, left-aligned.
    Text(String),
    /// A number.
    Num(u64),
    /// Bytes, in units for people.
    Bytes(u64),
    /// Bytes per second (or bits, as set).
    Rate(f64),
    /// A percentage, when known.
    Pct(Option<f64>),
    /// Seconds.
    Age(u64),
    /// Bytes per history slot, oldest first.
    Spark(Vec<u64>),
}

#[derive(Clone, Debug, PartialEq)]
/// One row, formatted.
pub struct RowView {
    /// Which row.
    pub key: GroupKey,
    /// Its cells, a column each.
    pub cells: Vec<Cell>,
    /// No open flow (a process that exited, a closed connection).
    pub dim: bool,
}

#[derive(Clone, Debug, PartialEq)]
/// A table, as much of it as fits.
pub struct TableView {
    /// The columns that fit.
    pub columns: Vec<Column>,
    /// The rows shown: `keys[offset..]`, as many as fit.
    pub rows: Vec<RowView>,
    /// Every row, in order.
    pub keys: Vec<GroupKey>,
    /// Of all rows.
    pub selected: Option<usize>,
    /// First row shown.
    pub offset: usize,
    /// The sort key.
    pub sort: SortKey,
    /// Smallest first.
    pub reverse: bool,
}

/// A drill-down: facts, a time chart and the row's flows.
#[derive(Clone, Debug, PartialEq)]
pub struct DetailView {
    /// What it is.
    pub title: String,
    /// Its process has exited (shown dimmed).
    pub dim: bool,
    /// Facts, as (name, value).
    pub facts: Vec<(&'static str, String)>,
    /// [sent, recv] bytes per slot over the last ten minutes.
    pub chart: Vec<[u64; 2]>,
    /// Seconds per chart slot.
    pub slot_s: u64,
    /// Its flows.
    pub flows: TableView,
}

#[derive(Clone, Debug, PartialEq)]
/// What the body shows.
pub enum Body {
    /// A view's table.
    Table(TableView),
    /// A row's detail.
    Detail(DetailView),
}

/// The status line's facts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusLine {
    /// How flows are attributed.
    pub attribution: String,
    /// Events lost.
    pub drops: u64,
    /// What does not work here.
    pub degradations: Vec<String>,
    /// Share of interface bytes attributed, when known.
    pub coverage: Option<f64>,
    /// The filter in effect.
    pub filter: Option<String>,
    /// The display is frozen.
    pub frozen: bool,
    /// A replay's position.
    pub replay: Option<String>,
    /// A passing message (a filter error, ...).
    pub message: Option<String>,
}

/// One frame.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewState {
    /// The view shown.
    pub view: ViewKind,
    /// When (RFC 3339, seconds) and a summary of the whole view.
    pub clock: String,
    /// See `clock`.
    pub summary: String,
    /// The table or the detail.
    pub body: Body,
    /// The status line.
    pub status: StatusLine,
    /// The filter bar, when open.
    pub bar: Option<FilterBar>,
    /// The help is shown.
    pub help: bool,
    /// Rates in bits.
    pub bits: bool,
    /// Colors.
    pub color: bool,
}

fn user_of(a: &Agg) -> String {
    if a.sample.names.user.is_empty() {
        a.sample.uid.to_string()
    } else {
        a.sample.names.user.clone()
    }
}

/// "curl 1.2 KiB, wget 300 B, +3": members by bytes.
fn top_members(a: &Agg, n: usize) -> String {
    let mut m: Vec<_> = a.members.values().collect();
    m.sort_by(|x, y| y.bytes.cmp(&x.bytes).then(x.name.cmp(&y.name)));
    let mut s: Vec<String> = m
        .iter()
        .take(n)
        .map(|m| format!("{} {}", m.name, netwho_sink::fmt::bytes(m.bytes)))
        .collect();
    let more = m.len().saturating_sub(n);
    if more > 0 || a.members_more {
        s.push(format!("+{more}{}", if a.members_more { "…" } else { "" }));
    }
    s.join(", ")
}

fn ports_text(p: &[u16]) -> String {
    let mut s: Vec<String> = p.iter().take(3).map(u16::to_string).collect();
    if p.len() > 3 {
        s.push(format!("+{}", p.len() - 3));
    }
    s.join(",")
}

fn state_name(e: &FlowEntry) -> String {
    if e.closed_at.is_some() {
        return "closed".into();
    }
    match e.flow.tcp_state {
        Some(s) => s.name().to_lowercase(),
        None => e.flow.proto.name().into_owned(),
    }
}

fn spark(a: &Agg, now: MonoNs) -> Cell {
    Cell::Spark(
        a.hist
            .last(SLOTS / 2, now)
            .iter()
            .map(|s| s[0].saturating_add(s[1]))
            .collect(),
    )
}

fn name_cell(key: &GroupKey, a: &Agg) -> String {
    match key {
        GroupKey::Proc(_) | GroupKey::Flow(_) => {
            let mut s = a.sample.comm.clone();
            if a.exited.is_some() {
                s.push_str(" (exited)");
            }
            s
        }
        GroupKey::Program(p) => p.to_string(),
        GroupKey::User(_) => user_of(a),
        GroupKey::Unit(u) => u.to_string(),
        GroupKey::Remote(ip) => ip.to_string(),
        GroupKey::Port(proto, port) => format!("{}/{port}", proto.name()),
    }
}

fn flow_of<'a>(m: &'a Model, key: &GroupKey) -> Option<&'a FlowEntry> {
    match key {
        GroupKey::Flow(k) => m.flows.get(k),
        _ => None,
    }
}

fn cell(kind: ColKind, key: &GroupKey, a: &Agg, m: &Model) -> Cell {
    let flow = || flow_of(m, key).map(|e| &e.flow);
    let dns = |ip: &std::net::IpAddr| m.dns.get(&netwho_query::canonical(*ip)).cloned();
    match kind {
        K::Pid => Cell::Num(a.sample.proc.key.tgid.into()),
        K::User => Cell::Text(user_of(a)),
        K::Name if m.alerted.marks(key) => Cell::Text(format!("! {}", name_cell(key, a))),
        K::Name => Cell::Text(name_cell(key, a)),
        K::Uid => Cell::Num(a.sample.uid.into()),
        K::Members => Cell::Num(a.members.len() as u64),
        K::Owner => Cell::Text(format!("{}[{}]", a.sample.comm, a.sample.proc.key.tgid)),
        K::Top => Cell::Text(top_members(a, 4)),
        K::Cmdline => Cell::Text(netwho_sink::fmt::cmdline(&a.sample.proc.cmdline, 300)),
        // the names the processes knew; reverse DNS only where they knew
        // none, marked with `~` (it names the address's owner, the same
        // for every process)
        K::DnsName => Cell::Text(match key {
            GroupKey::Remote(_) if !a.rnames.is_empty() => {
                netwho_model::text::visible(&a.rnames.join(",")).into_owned()
            }
            GroupKey::Remote(ip) => dns(ip).map(|n| format!("~{n}")).unwrap_or_default(),
            _ => match flow() {
                Some(f) => match crate::state::model::flow_name(f) {
                    Some(n) => netwho_model::text::visible(n).into_owned(),
                    None => dns(&f.remote.addr)
                        .map(|n| format!("~{n}"))
                        .unwrap_or_default(),
                },
                None => String::new(),
            },
        }),
        K::Ports => Cell::Text(ports_text(&a.ports)),
        K::Proto => Cell::Text(
            flow()
                .map(|f| f.proto.name().into_owned())
                .unwrap_or_default(),
        ),
        K::Local => Cell::Text(flow().map(|f| f.local.to_string()).unwrap_or_default()),
        K::Remote => Cell::Text(flow().map(|f| f.remote.to_string()).unwrap_or_default()),
        K::State => Cell::Text(flow_of(m, key).map(state_name).unwrap_or_default()),
        K::Age => Cell::Age(
            flow()
                .map(|f: &Flow| f.closed.unwrap_or(m.now).since(f.opened) / 1_000_000_000)
                .unwrap_or(0),
        ),
        K::SentRate => Cell::Rate(a.sent_rate),
        K::RecvRate => Cell::Rate(a.recv_rate),
        K::Sent => Cell::Bytes(a.total.bytes_sent),
        K::Recv => Cell::Bytes(a.total.bytes_recv),
        K::SentReset => Cell::Bytes(a.since_reset.bytes_sent),
        K::RecvReset => Cell::Bytes(a.since_reset.bytes_recv),
        K::Flows => Cell::Text(format!("{}/{}", a.flows_open, a.flows_total)),
        K::Cpu => Cell::Pct(a.track.and_then(|t| t.recent_cpu_pct())),
        K::Rss => match a.track {
            Some(t) => Cell::Bytes(t.last.rss_bytes),
            None => Cell::Text("-".into()),
        },
        K::History => spark(a, m.now),
    }
}

fn cmp_cells(a: &Cell, b: &Cell) -> Ordering {
    match (a, b) {
        (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
        (Cell::Num(x), Cell::Num(y))
        | (Cell::Bytes(x), Cell::Bytes(y))
        | (Cell::Age(x), Cell::Age(y)) => x.cmp(y),
        (Cell::Rate(x), Cell::Rate(y)) => x.total_cmp(y),
        (Cell::Pct(x), Cell::Pct(y)) => x.unwrap_or(-1.0).total_cmp(&y.unwrap_or(-1.0)),
        (Cell::Spark(x), Cell::Spark(y)) => x.iter().sum::<u64>().cmp(&y.iter().sum()),
        _ => Ordering::Equal,
    }
}

/// Which rows a table shows: the selection (by key, else by index) and
/// the first row and number of rows that fit.
#[derive(Clone, Debug)]
pub struct Window<'a> {
    /// The selected row's key.
    pub key: Option<&'a GroupKey>,
    /// Else its index.
    pub index: usize,
    /// The first row shown.
    pub offset: usize,
    /// Rows that fit.
    pub page: usize,
}

/// Rows of a table view, sorted: largest first unless reversed (text
/// columns: A to Z first); ties by key order so the order is stable.
/// Only the rows in the window are formatted, so a frame costs the same
/// with ten or ten thousand rows (apart from the sort).
pub fn table(
    m: &Model,
    view: ViewKind,
    rows: Vec<(GroupKey, &Agg)>,
    sort: SortKey,
    reverse: bool,
    w: &Window<'_>,
) -> TableView {
    let columns = columns(view, m.reset_at.is_some());
    let sort_col = match sort {
        SortKey::Col(k) => columns.iter().find(|c| c.kind == k).map(|c| c.kind),
        _ => None,
    };
    let mut keyed: Vec<(GroupKey, &Agg, Option<Cell>)> = rows
        .into_iter()
        .map(|(key, a)| {
            let c = sort_col.map(|k| cell(k, &key, a, m));
            (key, a, c)
        })
        .collect();
    keyed.sort_by(|(ka, a, ca), (kb, b, cb)| {
        let o = match (sort, ca, cb) {
            (SortKey::Rate, ..) => (b.sent_rate + b.recv_rate)
                .total_cmp(&(a.sent_rate + a.recv_rate))
                .then(b.total_bytes().cmp(&a.total_bytes())),
            (SortKey::Total, ..) => b.total_bytes().cmp(&a.total_bytes()),
            (SortKey::Col(_), Some(x), Some(y)) => {
                let o = cmp_cells(x, y);
                if matches!(x, Cell::Text(_)) {
                    o
                } else {
                    o.reverse()
                }
            }
            (SortKey::Col(_), ..) => Ordering::Equal,
        };
        let o = if reverse { o.reverse() } else { o };
        o.then_with(|| cmp_keys(ka, kb))
    });
    let n = keyed.len();
    let selected = w
        .key
        .and_then(|k| keyed.iter().position(|(x, ..)| x == k))
        .unwrap_or(w.index.min(n.saturating_sub(1)));
    let page = w.page.max(1);
    let offset = super::ui::scroll(w.offset.min(selected), selected, page);
    let shown = keyed
        .iter()
        .skip(offset)
        .take(page)
        .map(|(key, a, _)| RowView {
            cells: columns.iter().map(|c| cell(c.kind, key, a, m)).collect(),
            key: key.clone(),
            dim: a.idle(),
        })
        .collect();
    TableView {
        columns,
        rows: shown,
        keys: keyed.into_iter().map(|(k, ..)| k).collect(),
        selected: (n > 0).then_some(selected),
        offset,
        sort,
        reverse,
    }
}

/// A stable order between rows that sort the same.
fn cmp_keys(a: &GroupKey, b: &GroupKey) -> Ordering {
    use GroupKey as G;
    match (a, b) {
        (G::Proc(x), G::Proc(y)) => x.cmp(y),
        (G::Program(x), G::Program(y)) | (G::Unit(x), G::Unit(y)) => x.cmp(y),
        (G::User(x), G::User(y)) => x.cmp(y),
        (G::Remote(x), G::Remote(y)) => x.cmp(y),
        (G::Port(p, x), G::Port(q, y)) => x.cmp(y).then(p.name().cmp(&q.name())),
        (G::Flow(x), G::Flow(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// The rows of a view, unsorted.
fn view_rows(m: &Model, view: ViewKind) -> Vec<(GroupKey, &Agg)> {
    match view {
        ViewKind::Connections => m
            .flows
            .iter()
            .filter(|(_, e)| e.counted())
            .map(|(k, e)| (GroupKey::Flow(*k), &e.agg))
            .collect(),
        v => m.rows(v).iter().map(|(k, a)| (k.clone(), a)).collect(),
    }
}

fn clock(m: &Model) -> String {
    let t = m.wall.rfc3339(m.now);
    format!("{}Z", t.get(..19).unwrap_or(&t))
}

fn summary(m: &Model) -> String {
    // every open flow the filter passes is open in exactly one process row
    let procs = m.rows(ViewKind::Processes);
    let (s, r, open) = procs.values().fold((0.0, 0.0, 0), |(s, r, o), a| {
        (s + a.sent_rate, r + a.recv_rate, o + a.flows_open)
    });
    format!(
        "{}, {}, sending {}, receiving {}",
        netwho_sink::fmt::count(procs.len() as u64, "process", "processes"),
        netwho_sink::fmt::count(open, "open flow", "open flows"),
        netwho_sink::fmt::rate(s, false),
        netwho_sink::fmt::rate(r, false)
    )
}

fn status(m: &Model, ui: &Ui) -> StatusLine {
    let st = m.status.as_ref();
    StatusLine {
        attribution: st.map_or_else(|| "starting".into(), |s| s.attribution.to_string()),
        drops: st.map_or(0, |s| s.drops.total()),
        degradations: st.map(|s| s.degradations.clone()).unwrap_or_default(),
        coverage: ui.coverage,
        filter: m.filter().map(|f| f.to_string()),
        frozen: ui.frozen,
        replay: ui.replay.clone(),
        message: ui.message.clone(),
    }
}

fn proc_facts(m: &Model, p: ProcKey, a: &Agg) -> Vec<(&'static str, String)> {
    let info = &a.sample.proc;
    let n = &a.sample.names;
    let mut f = vec![
        (
            "exe",
            if info.exe.is_empty() {
                "-".into()
            } else {
                info.exe.clone()
            },
        ),
        ("cmdline", netwho_sink::fmt::cmdline(&info.cmdline, 400)),
        ("user", format!("{} ({})", user_of(a), a.sample.uid)),
        ("unit", unit_name(n).to_string()),
    ];
    let chain: Vec<String> = info
        .ancestors()
        .map(|x| format!("{}[{}]", x.comm, x.key.tgid))
        .collect();
    f.push((
        "parents",
        if chain.is_empty() {
            format!("{}[{}]", info.parent_comm, info.ppid)
        } else {
            chain.join(" ← ")
        },
    ));
    let kids: Vec<String> = m
        .children_of(p)
        .iter()
        .take(8)
        .map(|(k, c)| {
            format!(
                "{}[{}] {}",
                c.sample.comm,
                k.tgid,
                netwho_sink::fmt::bytes(c.total_bytes())
            )
        })
        .collect();
    f.push((
        "children",
        if kids.is_empty() {
            "-".into()
        } else {
            kids.join(", ")
        },
    ));
    let res = match a.track {
        Some(t) => format!(
            "rss {}, peak {}, cpu {}{}",
            netwho_sink::fmt::bytes(t.last.rss_bytes),
            netwho_sink::fmt::bytes(t.last.rss_peak_bytes),
            t.recent_cpu_pct()
                .map_or("-".into(), |c| format!("{c:.1}%")),
            if t.exited { " (final)" } else { "" }
        ),
        None => "-".into(),
    };
    f.push(("resources", res));
    f
}

fn totals_fact(a: &Agg) -> (&'static str, String) {
    (
        "traffic",
        format!(
            "sent {} ({}), received {} ({}), flows {} open / {} total",
            netwho_sink::fmt::bytes(a.total.bytes_sent),
            netwho_sink::fmt::rate(a.sent_rate, false),
            netwho_sink::fmt::bytes(a.total.bytes_recv),
            netwho_sink::fmt::rate(a.recv_rate, false),
            a.flows_open,
            a.flows_total
        ),
    )
}

fn remotes_fact(flows: &[&FlowEntry]) -> (&'static str, String) {
    let mut by: Vec<(std::net::IpAddr, u64)> = Vec::new();
    for e in flows {
        let ip = netwho_query::canonical(e.flow.remote.addr);
        let b = e.agg.total_bytes();
        match by.iter_mut().find(|(x, _)| *x == ip) {
            Some(x) => x.1 += b,
            None => by.push((ip, b)),
        }
    }
    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut s: Vec<String> = by
        .iter()
        .take(6)
        .map(|(ip, b)| format!("{ip} {}", netwho_sink::fmt::bytes(*b)))
        .collect();
    if by.len() > 6 {
        s.push(format!("+{}", by.len() - 6));
    }
    (
        "remotes",
        if s.is_empty() {
            "-".into()
        } else {
            s.join(", ")
        },
    )
}

fn detail(m: &Model, ui: &Ui, view: ViewKind, key: &GroupKey) -> Option<DetailView> {
    let a = m.row(view, key)?;
    let flows = m.flows_of(view, key);
    let title = match key {
        GroupKey::Proc(p) => format!("{} [{}]", a.sample.comm, p.tgid),
        GroupKey::Flow(_) => {
            let e = flow_of(m, key)?;
            format!(
                "{} {} → {}",
                e.flow.proto.name(),
                e.flow.local,
                e.flow.remote
            )
        }
        k => format!("{}: {}", view.title(), name_cell(k, a)),
    };
    let mut facts = match key {
        GroupKey::Proc(p) => proc_facts(m, *p, a),
        GroupKey::Flow(_) => {
            let e = flow_of(m, key)?;
            let f = &e.flow;
            vec![
                (
                    "process",
                    format!(
                        "{}[{}] {}",
                        f.comm,
                        f.key.proc.tgid,
                        netwho_sink::fmt::cmdline(&f.proc.cmdline, 200)
                    ),
                ),
                ("user", format!("{} ({})", user_of(a), f.uid)),
                ("direction", f.direction.name().into()),
                ("state", state_name(e)),
                ("attribution", f.attribution.name().into()),
                (
                    "wire",
                    format!(
                        "{} packets out, {} in",
                        f.wire.packets_sent, f.wire.packets_recv
                    ),
                ),
            ]
        }
        _ => vec![("members", top_members(a, 10))],
    };
    facts.push(totals_fact(a));
    if !matches!(key, GroupKey::Flow(_) | GroupKey::Remote(_)) {
        facts.push(remotes_fact(&flows));
    }
    let rows: Vec<(GroupKey, &Agg)> = flows
        .iter()
        .map(|e| (GroupKey::Flow(e.flow.key), &e.agg))
        .collect();
    let w = Window {
        key: None,
        index: ui.detail_sel,
        offset: ui.detail_offset,
        page: ui.page,
    };
    let t = table(m, ViewKind::Connections, rows, SortKey::Total, false, &w);
    Some(DetailView {
        title,
        dim: a.idle(),
        facts,
        chart: a.hist.last(SLOTS, m.now),
        slot_s: super::hist::SLOT_NS / 1_000_000_000,
        flows: t,
    })
}

/// One frame from the model and the UI state.
pub fn build(m: &Model, ui: &Ui) -> ViewState {
    let body = match &ui.detail {
        Some((view, key)) => match detail(m, ui, *view, key) {
            Some(d) => Body::Detail(d),
            None => Body::Table(list(m, ui)),
        },
        None => Body::Table(list(m, ui)),
    };
    ViewState {
        view: ui.view,
        clock: clock(m),
        summary: summary(m),
        body,
        status: status(m, ui),
        bar: ui.bar.clone(),
        help: ui.help,
        bits: ui.bits,
        color: ui.color,
    }
}

fn list(m: &Model, ui: &Ui) -> TableView {
    let v = ui.view;
    let (key, index) = ui.selection();
    let w = Window {
        key,
        index,
        offset: ui.offset[v.index()],
        page: ui.page,
    };
    table(
        m,
        v,
        view_rows(m, v),
        ui.sort[v.index()],
        ui.reverse[v.index()],
        &w,
    )
}

#[cfg(test)]
mod names_tests {
    use super::*;
    use crate::state::{Batch, FlowUpdate};
    use netwho_model::names::{RemoteName, RnameSource};
    use netwho_model::record::Context;
    use netwho_model::time::WallClock;
    use netwho_model::{Endpoint, FlowKey};
    use std::collections::HashSet;
    use std::sync::Arc;

    fn flow(pid: u32, name: Option<&str>) -> FlowUpdate {
        let mut f = Flow::example(
            pid,
            u64::from(pid),
            Endpoint::new([192, 0, 2, 7].into(), 443),
        );
        f.remote_name = name.map(|n| {
            Arc::new(RemoteName {
                rname: Some(n.into()),
                source: Some(RnameSource::Dns),
                ..RemoteName::default()
            })
        });
        FlowUpdate {
            flow: f,
            ctx: Context::default(),
            closed: false,
        }
    }

    fn text(c: Cell) -> String {
        match c {
            Cell::Text(t) => t,
            other => panic!("{other:?}"),
        }
    }

    /// The remotes view names an address by what its processes resolved
    /// (each name once); the connections view each flow by its own; a
    /// name only reverse DNS gave is marked.
    #[test]
    fn remotes_and_connections_are_named_as_their_processes_knew_them() {
        let mut m = Model::new(60_000_000_000, None, HashSet::new());
        m.dns
            .insert([192, 0, 2, 7].into(), "host.provider.example".into());
        m.apply(Batch {
            now: MonoNs(10),
            wall: WallClock::default(),
            flows: vec![
                flow(1, Some("a.example")),
                flow(2, Some("b.example")),
                flow(3, Some("a.example")),
                flow(4, None),
            ],
            exits: Vec::new(),
            status: None,
            restart: false,
        });
        let remote = GroupKey::Remote([192, 0, 2, 7].into());
        let a = &m.rows(ViewKind::Remotes)[&remote];
        assert_eq!(
            text(cell(K::DnsName, &remote, a, &m)),
            "a.example,b.example"
        );
        let conn = |pid: u32| {
            let fk: FlowKey = *m.flows.keys().find(|k| k.proc.tgid == pid).unwrap();
            let key = GroupKey::Flow(fk);
            let a = m.row(ViewKind::Connections, &key).unwrap();
            text(cell(K::DnsName, &key, a, &m))
        };
        assert_eq!(conn(2), "b.example");
        assert_eq!(conn(4), "~host.provider.example");
    }
}
