//! Reports over a recording (`netwho report`): the sysdig network chisels
//! (top processes, connections, server ports, remotes, bytes per process,
//! a per-PID time chart, everything one endpoint did) and per-user /
//! per-unit accounting, optionally of Internet traffic only
//! (`--exclude-local`) and per interval.
//!
//! Pure: items in (with their recorded times), a [`Table`] out. Bytes are
//! payload bytes, counted as the differences between a flow's successive
//! cumulative counters, each at the time it was recorded: a window
//! (`--since/--until`) or an interval gets exactly the bytes recorded in
//! it, at the recording's resolution. The filter is checked at every
//! record of a flow, as `netwho log` checks it.

#![warn(missing_docs)]

pub mod history;
pub mod local;
pub mod request;
pub mod source;
pub mod summary;
pub mod table;

pub use request::SourceReport;
pub use source::{HistorySource, RecordingSource, ReportSource, report};

use local::LocalNets;
use netwho_model::record::Context;
use netwho_model::time::{WallClock, rfc3339_from_unix_ns};
use netwho_model::{CaptureDir, Direction, Flow, FlowKey, ProcKey};
use netwho_query::Filter;
use netwho_sink::subject::FlowSubject;
use netwho_store::recording::{EventKind, FlowItem, FlowRef, Item, Visit};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use table::{Cell, ColKind, Table};

/// The reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// Processes by bytes.
    TopProcs,
    /// Connections by bytes.
    TopConns,
    /// Server ports by bytes: ports served here, and remote servers' ports.
    TopPorts,
    /// Remote addresses by bytes.
    TopRemotes,
    /// Remotes by the name their processes knew them by (`rname`, else
    /// the TLS server name; flows with neither by address), by bytes.
    TopNames,
    /// Users by bytes.
    ByUser,
    /// Bytes per systemd unit (else container, else cgroup).
    ByUnit,
    /// Bytes of every process, and the total.
    Bytes,
    /// One process's bytes per interval.
    Timeline,
    /// The flows of one endpoint, with their payload when it was recorded.
    Spy,
    /// Destinations (protocol, remote, port of outbound flows) by how
    /// seldom they were used, least first, with the programs and users
    /// that used them (stacking: the rare destination stands out).
    Rare,
}

impl ReportKind {
    /// Every report, in the order `--help` lists them.
    pub const ALL: [ReportKind; 11] = [
        ReportKind::TopProcs,
        ReportKind::TopConns,
        ReportKind::TopPorts,
        ReportKind::TopRemotes,
        ReportKind::TopNames,
        ReportKind::ByUser,
        ReportKind::ByUnit,
        ReportKind::Bytes,
        ReportKind::Timeline,
        ReportKind::Spy,
        ReportKind::Rare,
    ];

    /// The one named `s` (see [`name`](ReportKind::name)).
    pub fn from_name(s: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The name on the command line and in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::TopProcs => "top-procs",
            ReportKind::TopConns => "top-conns",
            ReportKind::TopPorts => "top-ports",
            ReportKind::TopRemotes => "top-remotes",
            ReportKind::TopNames => "top-names",
            ReportKind::ByUser => "by-user",
            ReportKind::ByUnit => "by-unit",
            ReportKind::Bytes => "bytes",
            ReportKind::Timeline => "timeline",
            ReportKind::Spy => "spy",
            ReportKind::Rare => "rare",
        }
    }
}

/// `spy`: the endpoint whose flows to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spy {
    /// Flows with this address at either end.
    Ip(IpAddr),
    /// Flows with this port at either end.
    Port(u16),
}

#[derive(Clone, Debug, Default)]
/// What a report counts and shows.
pub struct ReportConfig {
    /// Only flows that match.
    pub filter: Option<Filter>,
    /// Only bytes recorded in [since, until) (Unix ns).
    pub since: Option<i128>,
    /// See `since`.
    pub until: Option<i128>,
    /// Rows (per interval); None: all.
    pub limit: Option<usize>,
    /// Rows per interval of this many ns (UTC multiples).
    pub interval_ns: Option<u64>,
    /// Only traffic with remotes outside these networks.
    pub exclude_local: Option<LocalNets>,
    /// `timeline`: the process id.
    pub pid: Option<u32>,
    /// `spy`: the endpoint whose flows to list.
    pub spy: Option<Spy>,
    /// `spy`: the recording kept payload (`record -s`): show it.
    pub payload: bool,
    /// Items come from several hosts ([`Reporter::counted_on`]): per
    /// process and per connection rows name their HOST, other rows list
    /// the HOSTS they merge.
    pub hosts: bool,
    /// The data's own resolution in ns (history rollups: a minute, an
    /// hour or a day). A timeline's rows are never finer unless
    /// `interval_ns` asks, and then a note says what the rows mean.
    pub resolution_ns: Option<u64>,
    /// The seed of the connections' Community IDs (`top-conns`, `spy`).
    pub community_seed: u16,
    /// `rare`: only destinations used fewer than this many times.
    pub below: Option<u64>,
}

/// Most rows a report holds and prints: more are left out with a note
/// that says how many (a filter, `--limit` or a shorter window narrows
/// it). Bounds what a report over a large history or a crafted
/// recording costs in memory and output.
pub const MAX_ROWS: usize = 100_000;

/// The shortest `--interval` (recordings count per second, history per
/// minute: finer intervals only make empty rows).
pub const MIN_INTERVAL_NS: u64 = 1_000_000_000;

/// Why a report cannot be made from what was read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "a timeline of {span} in intervals of {interval} would have {rows} rows, more than the \
         {MAX_ROWS} a report holds: give --interval {suggest} or more, or a shorter \
         --since/--until"
    )]
    /// A timeline that would hold more rows than a report may.
    TooManyIntervals {
        /// The rows it would have.
        rows: u128,
        /// The window, for people.
        span: String,
        /// The interval asked for.
        interval: String,
        /// An interval that fits.
        suggest: String,
    },
    /// Reading the history failed (or was stopped).
    #[error(transparent)]
    History(#[from] netwho_store::history::HistoryError),
    /// Reading a recording failed.
    #[error(transparent)]
    Recording(#[from] netwho_store::StoreError),
    /// Stopped before the report was made.
    #[error("interrupted; no report")]
    Interrupted,

    /// Another source failed (the fleet's database).
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

/// Most distinct values a row remembers (ports, peers, processes); more
/// are shown as "N+".
const DISTINCT_MAX: usize = 1000;
/// `timeline` without `--interval` aims at about this many rows.
const TIMELINE_ROWS: u64 = 60;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Distinct {
    /// Each value, with where in the data it was first seen.
    items: BTreeMap<String, u64>,
    more: bool,
}

impl Distinct {
    fn add(&mut self, s: &str, seq: u64) {
        // (most calls repeat a value: no allocation for those)
        if self.items.contains_key(s) {
            return;
        }
        if self.items.len() < DISTINCT_MAX {
            self.items.insert(s.to_owned(), seq);
        } else {
            self.more = true;
        }
    }

    /// Both parts' values: the first [`DISTINCT_MAX`] seen in the data,
    /// as one reading would have kept (each part kept its own first ones,
    /// and a value among the data's first is among its part's first).
    fn merge(&mut self, other: Distinct) {
        self.more |= other.more;
        for (k, q) in other.items {
            let e = self.items.entry(k).or_insert(q);
            *e = (*e).min(q);
        }
        if self.items.len() > DISTINCT_MAX {
            let mut by_seq: Vec<(u64, String)> = std::mem::take(&mut self.items)
                .into_iter()
                .map(|(k, q)| (q, k))
                .collect();
            by_seq.sort_unstable();
            by_seq.truncate(DISTINCT_MAX);
            self.items = by_seq.into_iter().map(|(q, k)| (k, q)).collect();
            self.more = true;
        }
    }

    /// How many (at least, when more were seen than kept).
    fn count(&self) -> Cell {
        Cell::Many(self.items.len() as u64, self.more)
    }

    /// All that were kept (a text table shows the first few).
    fn list(&self) -> Cell {
        Cell::List(self.items.keys().cloned().collect(), self.more)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    /// (host, process)
    Proc(Arc<str>, ProcKey),
    User(u32),
    Unit(String),
    Remote(IpAddr),
    /// (name, where it came from)
    Name(String, &'static str),
    /// (protocol, port, the server is this host)
    Port(String, u16, bool),
    /// (protocol, remote address, remote port) of outbound flows
    Dest(String, IpAddr, u16),
    Time,
}

/// (Serialized as a recording's summary keeps it: [`summary`].)
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Acc {
    /// Where in the data its first flow was (its labels are that flow's).
    first: u64,
    sent: u64,
    recv: u64,
    flows: u64,
    labels: Vec<String>,
    /// The process's command line (process reports).
    cmdline: Vec<String>,
    a: Distinct,
    b: Distinct,
    /// (Fleet reports only: not in a summary.)
    #[serde(skip)]
    hosts: Distinct,
}

impl Acc {
    fn total(&self) -> u64 {
        self.sent.saturating_add(self.recv)
    }

    /// The same group of another part: its figures added, the labels of
    /// whichever flow came first in the data.
    fn merge(&mut self, other: Acc) {
        if other.first < self.first {
            self.first = other.first;
            self.labels = other.labels;
            self.cmdline = other.cmdline;
        }
        self.sent = self.sent.saturating_add(other.sent);
        self.recv = self.recv.saturating_add(other.recv);
        self.flows = self.flows.saturating_add(other.flows);
        self.a.merge(other.a);
        self.b.merge(other.b);
        self.hosts.merge(other.hosts);
    }
}

/// A flow being followed.
#[derive(Debug, Default)]
struct FlowState {
    /// Payload counters last seen.
    sent: u64,
    recv: u64,
    /// Bytes that passed (per-flow reports).
    win_sent: u64,
    win_recv: u64,
    /// The group bucket it was last counted in (flows per row).
    bucket: Option<i128>,
    passed: bool,
    /// Per-flow reports: the latest record (for a flow the files never
    /// close).
    latest: Option<Box<FlowItem>>,
    host: Arc<str>,
}

/// Totals of everything the report counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Payload bytes sent.
    pub sent: u64,
    /// Payload bytes received.
    pub recv: u64,
    /// Flows counted.
    pub flows: u64,
}

/// A row of a per-flow report, ordered by total bytes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FlowRow {
    total: u64,
    opened: i128,
    cells: Vec<CellKey>,
}

/// `Cell` with an order (for the heap).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum CellKey {
    Num(u64),
    Text(String),
    Data(Vec<u8>),
    Secs(Option<u64>),
}

/// Folds items into one report.
#[derive(Debug)]
pub struct Reporter {
    kind: ReportKind,
    cfg: ReportConfig,
    local: HashSet<IpAddr>,
    wall: WallClock,
    /// The host of the item being counted (fleet reports).
    host: Arc<str>,
    flows: FxHashMap<FlowKey, FlowState>,
    groups: FxHashMap<(i128, Key), Acc>,
    /// Per-flow reports: the biggest (min-heap of the kept ones), or all
    /// (at most [`MAX_ROWS`]).
    rows: BinaryHeap<std::cmp::Reverse<FlowRow>>,
    /// Rows left out for [`MAX_ROWS`].
    rows_cut: u64,
    /// What the rows add up to.
    pub totals: Totals,
    /// Recorded time covered (Unix ns).
    pub first: Option<i128>,
    /// See `first`.
    pub last: Option<i128>,
    /// Groups and the distinct values they remember, so far (what a
    /// recorder's summary holds: [`summary`]).
    held: u64,
}

impl Reporter {
    /// `local`: the recorded host's addresses (`fd.is_local`).
    pub fn new(
        kind: ReportKind,
        cfg: ReportConfig,
        wall: WallClock,
        local: HashSet<IpAddr>,
    ) -> Self {
        Reporter {
            kind,
            cfg,
            local,
            wall,
            host: Arc::from(""),
            rows_cut: 0,
            flows: FxHashMap::default(),
            groups: FxHashMap::default(),
            rows: BinaryHeap::new(),
            totals: Totals::default(),
            first: None,
            last: None,
            held: 0,
        }
    }

    /// Fold one recorded item in.
    pub fn item(&mut self, it: &Item) {
        match it {
            Item::Clock(c) => self.wall = *c,
            Item::Flow(fi) => {
                self.flow(fi.as_flow_ref(), 1);
            }
            Item::Status { .. } | Item::End { .. } => {}
        }
    }

    fn in_window(&self, t: i128) -> bool {
        self.cfg.since.is_none_or(|s| t >= s) && self.cfg.until.is_none_or(|u| t < u)
    }

    /// The report's own selection and the filter.
    fn selected(&self, fi: FlowRef<'_>) -> bool {
        let f = fi.flow;
        if let Some(nets) = &self.cfg.exclude_local
            && (f.packet || f.remote.is_unspecified() || nets.contains(f.remote.addr))
        {
            return false;
        }
        if self.kind == ReportKind::Timeline && self.cfg.pid.is_some_and(|p| p != f.key.proc.tgid) {
            return false;
        }
        match self.cfg.spy {
            Some(Spy::Ip(ip)) if f.remote.addr != ip && f.local.addr != ip => return false,
            Some(Spy::Port(p)) if f.remote.port != p && f.local.port != p => return false,
            _ => {}
        }
        match &self.cfg.filter {
            Some(filter) => filter.matches(&FlowSubject {
                flow: f,
                ctx: fi.ctx,
                now: fi.at,
                local: &self.local,
            }),
            None => true,
        }
    }

    fn bucket(&self, t: i128) -> i128 {
        let every = match (self.cfg.interval_ns, self.kind) {
            (Some(i), _) => i,
            // a fine grid, merged into rows at the end
            (None, ReportKind::Timeline) => 1_000_000_000,
            (None, _) => return 0,
        };
        let every = i128::from(every.max(1));
        t.div_euclid(every) * every
    }

    /// A flow item that stands for `flows` flows (a history rollup row:
    /// the flows first stored in its bucket). Whether it passed the window
    /// and the filter (what a scoped caller may be told was read).
    pub fn counted(&mut self, fi: &FlowItem, flows: u64) -> bool {
        self.flow(fi.as_flow_ref(), flows)
    }

    /// `counted`, for an item of `host`'s (fleet reports).
    pub fn counted_on(&mut self, host: &Arc<str>, fi: &FlowItem, flows: u64) -> bool {
        if !Arc::ptr_eq(&self.host, host) {
            self.host = Arc::clone(host);
        }
        self.flow(fi.as_flow_ref(), flows)
    }

    /// One event of a recording read by [`netwho_store::recording::Reader::visit_frame`]
    /// (flows borrowed: nothing copied unless a per-flow report keeps it).
    pub fn visit(&mut self, v: Visit<'_>) {
        match v {
            Visit::Flow(r) => {
                self.flow(r, 1);
            }
            Visit::Item(it) => self.item(&it),
        }
    }

    fn flow(&mut self, fi: FlowRef<'_>, n: u64) -> bool {
        let f = fi.flow;
        let t = self.wall.unix_ns(fi.at);
        let closing = fi.is_final || fi.kind == EventKind::Closed;
        let passes = self.in_window(t) && self.selected(fi);
        let bucket = self.bucket(t);
        let st = self.flows.entry(f.key).or_insert_with(|| FlowState {
            host: Arc::clone(&self.host),
            ..FlowState::default()
        });
        let ds = f.payload.bytes_sent.saturating_sub(st.sent);
        let dr = f.payload.bytes_recv.saturating_sub(st.recv);
        st.sent = st.sent.max(f.payload.bytes_sent);
        st.recv = st.recv.max(f.payload.bytes_recv);
        if passes {
            self.first = Some(self.first.map_or(t, |x| x.min(t)));
            self.last = Some(self.last.map_or(t, |x| x.max(t)));
            // (a crafted history or recording may hold any counter:
            // totals saturate rather than wrap)
            self.totals.sent = self.totals.sent.saturating_add(ds);
            self.totals.recv = self.totals.recv.saturating_add(dr);
            if !st.passed {
                self.totals.flows = self.totals.flows.saturating_add(n);
            }
            st.passed = true;
            st.win_sent = st.win_sent.saturating_add(ds);
            st.win_recv = st.win_recv.saturating_add(dr);
            let new_in_bucket = st.bucket != Some(bucket);
            st.bucket = Some(bucket);
            if matches!(self.kind, ReportKind::TopConns | ReportKind::Spy) && !closing {
                st.latest = Some(Box::new(fi.to_item()));
            }
            if let Some(key) = self.key(f, fi.ctx) {
                let kind = self.kind;
                let groups = self.groups.len();
                let acc = self.groups.entry((bucket, key)).or_insert_with(|| Acc {
                    first: fi.seq,
                    labels: labels(kind, f, fi.ctx),
                    cmdline: if kind == ReportKind::TopProcs {
                        f.proc.cmdline.clone()
                    } else {
                        Vec::new()
                    },
                    ..Acc::default()
                });
                acc.sent = acc.sent.saturating_add(ds);
                acc.recv = acc.recv.saturating_add(dr);
                if new_in_bucket {
                    acc.flows = acc.flows.saturating_add(n);
                }
                if self.cfg.hosts {
                    acc.hosts.add(&self.host, fi.seq);
                }
                let had = acc.a.items.len() + acc.b.items.len();
                distinct(kind, acc, f, fi.ctx, fi.seq);
                let now = acc.a.items.len() + acc.b.items.len();
                let new_group = u64::from(self.groups.len() > groups);
                self.held += new_group + now.saturating_sub(had) as u64;
            }
        }
        if closing && let Some(st) = self.flows.remove(&f.key) {
            self.flow_done(&st, fi);
        }
        passes
    }

    fn key(&self, f: &Flow, ctx: &Context) -> Option<Key> {
        Some(match self.kind {
            ReportKind::TopProcs | ReportKind::Bytes => {
                Key::Proc(Arc::clone(&self.host), f.key.proc)
            }
            ReportKind::ByUser => Key::User(f.uid),
            ReportKind::ByUnit => Key::Unit(unit_of(ctx)),
            ReportKind::TopRemotes => Key::Remote(f.remote.addr),
            ReportKind::TopNames => {
                let (name, how) = name_of(f);
                Key::Name(name, how)
            }
            ReportKind::TopPorts => match f.direction {
                Direction::Inbound => Key::Port(f.proto.name().into_owned(), f.local.port, true),
                Direction::Outbound => Key::Port(f.proto.name().into_owned(), f.remote.port, false),
                Direction::Unknown => return None,
            },
            ReportKind::Timeline => Key::Time,
            ReportKind::Rare => match f.direction {
                Direction::Outbound if !f.remote.is_unspecified() => {
                    Key::Dest(f.proto.name().into_owned(), f.remote.addr, f.remote.port)
                }
                _ => return None,
            },
            ReportKind::TopConns | ReportKind::Spy => return None,
        })
    }

    /// A flow ended (or the recording did): per-flow reports keep its row.
    fn flow_done(&mut self, st: &FlowState, fi: FlowRef<'_>) {
        let (f, ctx) = (fi.flow, fi.ctx);
        if !st.passed || !matches!(self.kind, ReportKind::TopConns | ReportKind::Spy) {
            return;
        }
        let opened = self.wall.unix_ns(f.opened);
        let duration = CellKey::Secs(f.closed.map(|c| c.since(f.opened)));
        let total = st.win_sent.saturating_add(st.win_recv);
        let arrow = match f.direction {
            Direction::Outbound => "->",
            Direction::Inbound => "<-",
            Direction::Unknown => "--",
        };
        use CellKey::{Num, Text};
        let mut cells = match self.kind {
            ReportKind::Spy => {
                let mut v = vec![
                    Text(short_time(opened, 3)),
                    Text(f.proto.name().into_owned()),
                    Text(f.local.to_string()),
                    Text(arrow.into()),
                    Text(f.remote.to_string()),
                    Num(f.key.proc.tgid.into()),
                    Text(ctx.names.user.clone()),
                    Text(f.comm.clone()),
                    Num(st.win_sent),
                    Num(st.win_recv),
                    duration,
                    Text(f.close_reason.map_or("-", |r| r.name()).into()),
                    Text(community_id(f, self.cfg.community_seed)),
                ];
                if self.cfg.payload {
                    let stream = |dir| {
                        f.capture
                            .as_ref()
                            .map_or_else(Vec::new, |c| c.stream(dir).data)
                    };
                    v.push(CellKey::Data(stream(CaptureDir::Sent)));
                    v.push(CellKey::Data(stream(CaptureDir::Recv)));
                }
                v
            }
            _ => vec![
                Text(f.proto.name().into_owned()),
                Text(f.local.to_string()),
                Text(arrow.into()),
                Text(f.remote.to_string()),
                Num(f.key.proc.tgid.into()),
                Text(f.comm.clone()),
                Num(st.win_sent),
                Num(st.win_recv),
                Num(total),
                duration,
                Text(community_id(f, self.cfg.community_seed)),
            ],
        };
        if self.cfg.hosts {
            cells.insert(0, Text(st.host.to_string()));
        }
        self.push_row(FlowRow {
            total: if self.kind == ReportKind::Spy {
                0
            } else {
                total
            },
            // spy lists in time order: the heap keeps the latest last
            opened: -opened,
            cells,
        });
    }

    /// Keep a per-flow report's row (the biggest, or at most [`MAX_ROWS`]).
    fn push_row(&mut self, row: FlowRow) {
        self.rows.push(std::cmp::Reverse(row));
        let keep = match (self.kind, self.cfg.limit) {
            (ReportKind::TopConns, Some(limit)) => limit.min(MAX_ROWS),
            _ => MAX_ROWS,
        };
        if self.rows.len() > keep {
            self.rows.pop();
            if keep == MAX_ROWS {
                self.rows_cut += 1;
            }
        }
    }

    /// Flows the data never closes count with what was recorded of them.
    fn settle(&mut self) {
        let open: Vec<FlowState> = self.flows.drain().map(|(_, st)| st).collect();
        for st in open {
            if let Some(fi) = &st.latest {
                self.flow_done(&st, fi.as_flow_ref());
            }
        }
    }

    /// Fold in the report another part of the same data made (each part
    /// given every event of its own flows, in order: see
    /// `netwho_store::recording::Reader::visit_parts`): this one is then the
    /// report one reading of all of it makes.
    pub fn merge(&mut self, mut other: Reporter) {
        self.settle();
        other.settle();
        self.totals.sent = self.totals.sent.saturating_add(other.totals.sent);
        self.totals.recv = self.totals.recv.saturating_add(other.totals.recv);
        self.totals.flows = self.totals.flows.saturating_add(other.totals.flows);
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(other.last);
        for (k, acc) in other.groups {
            match self.groups.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(acc),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(acc);
                }
            }
        }
        self.rows_cut = self.rows_cut.saturating_add(other.rows_cut);
        for std::cmp::Reverse(row) in other.rows {
            self.push_row(row);
        }
    }

    /// The report. Flows the files never close count with what was
    /// recorded of them.
    pub fn finish(mut self) -> Result<Table, ReportError> {
        self.settle();
        let cut = self.rows_cut;
        let mut t = self.table()?;
        let cut = cut + t.rows.len().saturating_sub(MAX_ROWS) as u64;
        t.rows.truncate(MAX_ROWS);
        if cut > 0 {
            t.notes.push(format!(
                "{cut} more rows are not shown (a report holds {MAX_ROWS}): narrow it with a filter, --limit or --since/--until"
            ));
        }
        Ok(t)
    }

    fn columns(&self) -> Vec<(&'static str, ColKind)> {
        use ColKind::{Bytes, Count, Text};
        let mut c = Vec::new();
        if self.cfg.interval_ns.is_some() || self.kind == ReportKind::Timeline {
            c.push(("TIME", Text));
        }
        c.extend(match self.kind {
            ReportKind::TopProcs => vec![
                ("PID", Count),
                ("USER", Text),
                ("COMM", Text),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("TOTAL", Bytes),
                ("FLOWS", Count),
                ("CMDLINE", ColKind::Args),
            ],
            ReportKind::Bytes => vec![
                ("PID", Count),
                ("COMM", Text),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("TOTAL", Bytes),
            ],
            ReportKind::ByUser => vec![
                ("USER", Text),
                ("UID", Count),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("TOTAL", Bytes),
                ("FLOWS", Count),
                ("PROCS", ColKind::List),
            ],
            ReportKind::ByUnit => vec![
                ("UNIT", Text),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("TOTAL", Bytes),
                ("FLOWS", Count),
                ("PROCS", ColKind::List),
            ],
            ReportKind::TopRemotes => vec![
                ("REMOTE", Text),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("TOTAL", Bytes),
                ("FLOWS", Count),
                ("PORTS", ColKind::List),
                ("PROCS", ColKind::List),
            ],
            ReportKind::TopNames => vec![
                ("NAME", Text),
                ("FROM", Text),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("TOTAL", Bytes),
                ("FLOWS", Count),
                ("ADDRESSES", ColKind::List),
                ("PROCS", ColKind::List),
            ],
            ReportKind::TopPorts => vec![
                ("PORT", Count),
                ("PROTO", Text),
                ("SERVER", Text),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("TOTAL", Bytes),
                ("CONNS", Count),
                ("PEERS", ColKind::Many),
                ("PROCS", Text),
            ],
            ReportKind::Timeline => {
                vec![("SENT", Bytes), ("RECV", Bytes), ("CHART", ColKind::Chart)]
            }
            ReportKind::Rare => vec![
                ("FLOWS", Count),
                ("PROTO", Text),
                ("REMOTE", Text),
                ("PORT", Count),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("PROGRAMS", ColKind::List),
                ("USERS", ColKind::List),
            ],
            ReportKind::TopConns => vec![
                ("PROTO", Text),
                ("LOCAL", Text),
                ("DIR", Text),
                ("REMOTE", Text),
                ("PID", Count),
                ("COMM", Text),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("TOTAL", Bytes),
                ("DURATION", ColKind::Secs),
                ("COMMUNITY_ID", ColKind::Id),
            ],
            ReportKind::Spy => vec![
                ("OPENED", Text),
                ("PROTO", Text),
                ("LOCAL", Text),
                ("DIR", Text),
                ("REMOTE", Text),
                ("PID", Count),
                ("USER", Text),
                ("COMM", Text),
                ("SENT", Bytes),
                ("RECV", Bytes),
                ("DURATION", ColKind::Secs),
                ("END", Text),
                ("COMMUNITY_ID", ColKind::Id),
            ],
        });
        if self.kind == ReportKind::Spy && self.cfg.payload {
            c.extend([("SENT DATA", ColKind::Data), ("RECV DATA", ColKind::Data)]);
        }
        if self.cfg.hosts {
            match self.kind {
                ReportKind::Timeline => {}
                k if per_host(k) => {
                    c.insert(usize::from(self.cfg.interval_ns.is_some()), ("HOST", Text))
                }
                _ => c.push(("HOSTS", ColKind::List)),
            }
        }
        c
    }

    fn table(mut self) -> Result<Table, ReportError> {
        let mut t = Table::new(String::new(), self.columns());
        match self.kind {
            ReportKind::TopConns | ReportKind::Spy => {
                let mut rows: Vec<FlowRow> = self.rows.drain().map(|r| r.0).collect();
                rows.sort_by(|a, b| b.cmp(a));
                for r in rows {
                    t.rows.push(
                        r.cells
                            .into_iter()
                            .map(|c| match c {
                                CellKey::Num(n) => Cell::Num(n),
                                CellKey::Text(s) => Cell::Text(s),
                                CellKey::Data(b) => Cell::Data(b),
                                CellKey::Secs(ns) => Cell::Secs(ns),
                            })
                            .collect(),
                    );
                }
            }
            ReportKind::Timeline => self.timeline_rows(&mut t)?,
            _ => self.group_rows(&mut t),
        }
        Ok(t)
    }

    fn group_rows(&mut self, t: &mut Table) {
        let timed = self.cfg.interval_ns.is_some();
        let mut groups: Vec<((i128, Key), Acc)> = self.groups.drain().collect();
        if let (ReportKind::Rare, Some(below)) = (self.kind, self.cfg.below) {
            groups.retain(|(_, a)| a.flows < below);
        }
        let rare = self.kind == ReportKind::Rare;
        groups.sort_by(|(ka, a), (kb, b)| {
            let most = if rare {
                // the least used first
                a.flows.cmp(&b.flows)
            } else {
                b.total().cmp(&a.total())
            };
            ka.0.cmp(&kb.0).then(most).then(ka.1.cmp(&kb.1))
        });
        let mut in_bucket = 0;
        let mut bucket = None;
        for ((b, _), acc) in groups {
            if bucket != Some(b) {
                bucket = Some(b);
                in_bucket = 0;
            }
            in_bucket += 1;
            if self.cfg.limit.is_some_and(|l| in_bucket > l) {
                continue;
            }
            let mut row = Vec::new();
            if timed {
                row.push(Cell::Text(short_time(b, 0)));
            }
            row.extend(self.group_cells(acc));
            t.rows.push(row);
        }
    }

    fn group_cells(&self, acc: Acc) -> Vec<Cell> {
        let text = |i: usize| Cell::Text(acc.labels.get(i).cloned().unwrap_or_default());
        let num = |i: usize| {
            Cell::Num(
                acc.labels
                    .get(i)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_default(),
            )
        };
        let (sent, recv, total) = (
            Cell::Num(acc.sent),
            Cell::Num(acc.recv),
            Cell::Num(acc.total()),
        );
        let hosts = self.cfg.hosts.then(|| {
            if per_host(self.kind) {
                Cell::Text(acc.hosts.items.keys().next().cloned().unwrap_or_default())
            } else {
                acc.hosts.list()
            }
        });
        let mut cells = match self.kind {
            ReportKind::TopProcs => vec![
                num(0),
                text(1),
                text(2),
                sent,
                recv,
                total,
                Cell::Num(acc.flows),
                Cell::Args(acc.cmdline),
            ],
            ReportKind::Bytes => vec![num(0), text(2), sent, recv, total],
            ReportKind::ByUser => vec![
                text(1),
                num(0),
                sent,
                recv,
                total,
                Cell::Num(acc.flows),
                acc.b.list(),
            ],
            ReportKind::ByUnit => vec![
                text(0),
                sent,
                recv,
                total,
                Cell::Num(acc.flows),
                acc.b.list(),
            ],
            ReportKind::TopRemotes | ReportKind::TopNames => {
                // top-names: the name, then where it came from
                let mut v = vec![text(0)];
                if self.kind == ReportKind::TopNames {
                    v.push(text(1));
                }
                v.extend([
                    sent,
                    recv,
                    total,
                    Cell::Num(acc.flows),
                    acc.a.list(),
                    acc.b.list(),
                ]);
                v
            }
            ReportKind::TopPorts => vec![
                num(0),
                text(1),
                text(2),
                sent,
                recv,
                total,
                Cell::Num(acc.flows),
                acc.a.count(),
                acc.b.list(),
            ],
            ReportKind::Rare => vec![
                Cell::Num(acc.flows),
                text(0),
                text(1),
                num(2),
                sent,
                recv,
                acc.a.list(),
                acc.b.list(),
            ],
            _ => Vec::new(),
        };
        match hosts {
            Some(h) if per_host(self.kind) => cells.insert(0, h),
            Some(h) => cells.push(h),
            None => {}
        }
        cells
    }

    /// One row per interval from the first to the last byte (empty ones
    /// too: a chart has no gaps), with a bar for people.
    fn timeline_rows(&mut self, t: &mut Table) -> Result<(), ReportError> {
        let mut per: Vec<(i128, u64, u64)> = self
            .groups
            .drain()
            .map(|((b, _), a)| (b, a.sent, a.recv))
            .collect();
        per.sort_unstable();
        let (Some(first), Some(last)) = (per.first().map(|p| p.0), per.last().map(|p| p.0)) else {
            return Ok(());
        };
        let span = u128::try_from(last - first).unwrap_or(u128::MAX);
        let every: i128 = match self.cfg.interval_ns {
            Some(i) => i128::from(i.max(1)),
            // about TIMELINE_ROWS rows, never more than MAX_ROWS however
            // long the data claims to be
            None => {
                const DAY: u128 = 86_400 * 1_000_000_000;
                let target = span / u128::from(TIMELINE_ROWS);
                if target > DAY {
                    i128::try_from(target.div_ceil(DAY) * DAY).unwrap_or(i128::MAX)
                } else {
                    i128::from(nice_interval(u64::try_from(target).unwrap_or(u64::MAX)))
                }
            }
        };
        let res = self.cfg.resolution_ns.map_or(1, |r| i128::from(r.max(1)));
        let every = match self.cfg.interval_ns {
            // rows follow the data's resolution: a spike and 29 empty
            // rows per minute say nothing the minute's row does not
            None => (every.max(res) + res - 1) / res * res,
            Some(_) => {
                if every < res {
                    t.notes.push(format!(
                        "rows are {} apart, but the history holds {} rollups here: each {}'s bytes are in its first row",
                        human_ns(every),
                        human_ns(res),
                        human_ns(res)
                    ));
                }
                every
            }
        };
        let start = first.div_euclid(every) * every;
        let rows_wanted = u128::try_from((last - start) / every).unwrap_or(u128::MAX) + 1;
        if rows_wanted > MAX_ROWS as u128 {
            let secs = |ns: u128| format!("{}s", ns / 1_000_000_000);
            let need = span / (MAX_ROWS as u128 - 1) + 1;
            return Err(ReportError::TooManyIntervals {
                rows: rows_wanted,
                span: secs(span),
                interval: human_ns(every),
                suggest: secs(need.div_ceil(1_000_000_000) * 1_000_000_000),
            });
        }
        let n = usize::try_from(rows_wanted).unwrap_or(0);
        let mut rows = vec![(0u64, 0u64); n];
        for (b, s, r) in per {
            let i = usize::try_from((b - start) / every).unwrap_or(0);
            if let Some(row) = rows.get_mut(i) {
                row.0 += s;
                row.1 += r;
            }
        }
        let max = rows.iter().map(|r| r.0.max(r.1)).max().unwrap_or(0).max(1);
        for (i, (s, r)) in rows.into_iter().enumerate() {
            let at = start + every * i as i128;
            let bar = |v: u64, c: char| c.to_string().repeat(((v * 30).div_ceil(max)) as usize);
            t.rows.push(vec![
                Cell::Text(short_time(at, 0)),
                Cell::Num(s),
                Cell::Num(r),
                Cell::Text(format!("{:<30}|{}", bar(s, '>'), bar(r, '<'))),
            ]);
        }
        Ok(())
    }
}

/// A duration for people: `1d`, `2h`, `5min`, `30s`, `250ms`.
fn human_ns(ns: i128) -> String {
    const S: i128 = 1_000_000_000;
    for (unit, name) in [
        (86_400 * S, "d"),
        (3_600 * S, "h"),
        (60 * S, "min"),
        (S, "s"),
    ] {
        if ns >= unit && ns % unit == 0 {
            return format!("{}{name}", ns / unit);
        }
    }
    if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{ns}ns")
    }
}

/// RFC 3339 in UTC with `digits` decimals of the second (0, 3, 6 or 9).
pub fn short_time(unix_ns: i128, digits: usize) -> String {
    let full = rfc3339_from_unix_ns(unix_ns);
    // "2026-11-23T10:15:15.123456789Z": the fraction starts at byte 19
    match full.get(..19) {
        Some(head) if digits == 0 => format!("{head}Z"),
        Some(_) => format!("{}Z", full.get(..20 + digits.min(9)).unwrap_or(&full)),
        None => full,
    }
}

/// The smallest of 1 s, 2 s, 5 s, 10 s, 15 s, 30 s, 1 min, 2, 5, 10, 15,
/// 30 min, 1 h, 2, 6, 12 h, 1 d that is at least `ns`.
pub fn nice_interval(ns: u64) -> u64 {
    const S: u64 = 1_000_000_000;
    [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400,
    ]
    .into_iter()
    .map(|x| x * S)
    .find(|x| *x >= ns)
    .unwrap_or(86_400 * S)
}

/// Fleet reports whose rows are one host's (the others merge hosts).
fn per_host(kind: ReportKind) -> bool {
    matches!(
        kind,
        ReportKind::TopProcs | ReportKind::Bytes | ReportKind::TopConns | ReportKind::Spy
    )
}

/// The unit a flow's traffic is accounted to: its systemd unit, else its
/// container, else its cgroup path, else "-".
fn unit_of(ctx: &Context) -> String {
    let n = &ctx.names;
    for s in [&n.unit, &n.container_id, &n.cgroup] {
        if !s.is_empty() {
            return s.clone();
        }
    }
    "-".into()
}

/// The fixed labels of a group row, from its first flow.
fn labels(kind: ReportKind, f: &Flow, ctx: &Context) -> Vec<String> {
    match kind {
        ReportKind::TopProcs | ReportKind::Bytes => vec![
            f.key.proc.tgid.to_string(),
            ctx.names.user.clone(),
            f.comm.clone(),
        ],
        ReportKind::ByUser => {
            let user = if ctx.names.user.is_empty() {
                f.uid.to_string()
            } else {
                ctx.names.user.clone()
            };
            vec![f.uid.to_string(), user]
        }
        ReportKind::ByUnit => vec![unit_of(ctx)],
        ReportKind::TopRemotes => vec![f.remote.addr.to_string()],
        ReportKind::TopNames => {
            let (name, how) = name_of(f);
            vec![name, how.to_string()]
        }
        ReportKind::Rare => vec![
            f.proto.name().into_owned(),
            netwho_query::canonical(f.remote.addr).to_string(),
            f.remote.port.to_string(),
        ],
        ReportKind::TopPorts => {
            let (port, here) = match f.direction {
                Direction::Inbound => (f.local.port, "here"),
                _ => (f.remote.port, "remote"),
            };
            vec![port.to_string(), f.proto.name().into_owned(), here.into()]
        }
        _ => Vec::new(),
    }
}

/// What `top-names` groups a flow by: its `rname` and where it came from,
/// else its server name (`sni`), else its address (`none` where the flow
/// was marked connected-without-resolving, `-` where names were off or it
/// was not outbound).
fn name_of(f: &Flow) -> (String, &'static str) {
    let rn = f.remote_name.as_deref();
    if let Some(n) = rn.and_then(|n| n.rname.as_deref()) {
        let how = rn.and_then(|n| n.source).map_or("dns", |s| s.name());
        return (n.to_string(), how);
    }
    if let Some(n) = rn.and_then(|n| n.sni.as_deref()) {
        return (n.to_string(), "sni");
    }
    let how = match rn.and_then(|n| n.source) {
        Some(netwho_model::names::RnameSource::None) => "none",
        _ => "-",
    };
    (netwho_query::canonical(f.remote.addr).to_string(), how)
}

/// A connection's Community ID, empty where it has none.
fn community_id(f: &Flow, seed: u16) -> String {
    netwho_model::community::of_flow(f, seed).unwrap_or_default()
}

/// The distinct values a group row lists.
fn distinct(kind: ReportKind, acc: &mut Acc, f: &Flow, ctx: &Context, seq: u64) {
    match kind {
        ReportKind::Rare => {
            // a program is its executable (its name when that is unknown)
            acc.a.add(
                if f.proc.exe.is_empty() {
                    &f.comm
                } else {
                    &f.proc.exe
                },
                seq,
            );
            if ctx.names.user.is_empty() {
                acc.b.add(&f.uid.to_string(), seq);
            } else {
                acc.b.add(&ctx.names.user, seq);
            }
        }
        ReportKind::ByUser | ReportKind::ByUnit => acc.b.add(&f.comm, seq),
        ReportKind::TopNames => {
            acc.a
                .add(&netwho_query::canonical(f.remote.addr).to_string(), seq);
            acc.b.add(&f.comm, seq);
        }
        ReportKind::TopRemotes => {
            // the service: a client's port changes with every connection
            let port = match f.direction {
                Direction::Inbound => f.local.port,
                _ => f.remote.port,
            };
            acc.a.add(&port.to_string(), seq);
            acc.b.add(&f.comm, seq);
        }
        ReportKind::TopPorts => {
            match f.direction {
                Direction::Inbound => acc.a.add(&f.remote.addr.to_string(), seq),
                _ => acc.a.add(&f.local.addr.to_string(), seq),
            }
            acc.b.add(&f.comm, seq);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
