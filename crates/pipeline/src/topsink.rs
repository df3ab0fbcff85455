//! `netwho top --text` and `--json`: a per-process table every interval
//! (pid, user, comm, sent/received rate, totals since start, flows), sorted
//! by total bytes, for scripts and as the base of the TUI.

use netwho_model::time::WallClock;
use netwho_model::top::{ProcRow, TopTable};
use netwho_model::{FlowEvent, MonoNs, nanos};
use netwho_sink::output::Output;
use netwho_sink::status::StatusRecord;
use netwho_sink::{RecordRef, Sink, SinkControl, fmt};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// How `top` prints its table.
pub enum TopFormat {
    /// A table for people.
    Text,
    /// One JSON document per interval.
    Json,
}

#[derive(Clone, Debug)]
/// What `top --text`/`--json` prints.
pub struct TopConfig {
    /// Text or JSON.
    pub format: TopFormat,
    /// How often a table is printed.
    pub interval: Duration,
    /// Stop after this many tables.
    pub count: Option<u64>,
    /// Text: rows shown per table (JSON lists every process).
    pub limit: usize,
    /// Rates in bit/s instead of B/s.
    pub bits: bool,
    /// Text: processes as a tree under their ancestors.
    pub tree: bool,
    /// Rows by total bytes instead of by rate (the view's `<`/`>` too).
    pub by_total: bool,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    pid: u32,
    proc_start: String,
    comm: &'a str,
    uid: u32,
    user: &'a str,
    sent_bps: f64,
    recv_bps: f64,
    bytes_sent: u64,
    bytes_recv: u64,
    flows_open: u64,
    flows_total: u64,
    ppid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_pct: Option<f64>,
}

#[derive(Serialize)]
struct JsonTable<'a> {
    event: &'static str,
    ts: String,
    interval_s: f64,
    drops: u64,
    procs: Vec<JsonRow<'a>>,
}

/// User names kept (uids are few; a bound all the same).
const MAX_USERS: usize = 4096;

#[derive(Debug)]
/// `top`'s tables: processes with their rates and totals, every interval.
pub struct TopSink {
    cfg: TopConfig,
    out: Output,
    table: TopTable,
    next: Option<MonoNs>,
    printed: u64,
    last_drops: u64,
    users: HashMap<u32, String>,
}

impl TopSink {
    /// A top sink printing into `out`.
    pub fn new(cfg: TopConfig, out: Output) -> Self {
        TopSink {
            cfg,
            out,
            table: Self::fresh_table(),
            next: None,
            printed: 0,
            last_drops: 0,
            users: HashMap::new(),
        }
    }

    fn fresh_table() -> TopTable {
        // processes with no open flow stay listed for a minute
        TopTable::new(60_000_000_000)
    }

    /// The user's name as the flows' records gave it (its number if none did).
    fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    fn render_text(&mut self, rows: &[ProcRow], ts: &str) -> String {
        let bits = self.cfg.bits;
        let open: u64 = rows.iter().map(|r| r.flows_open).sum();
        let mut s = format!(
            "netwho top  {ts}  {}, {}, interval {:.1}s{}\n",
            fmt::count(rows.len() as u64, "process", "processes"),
            fmt::count(open, "open flow", "open flows"),
            self.cfg.interval.as_secs_f64(),
            if self.last_drops > 0 {
                format!(", {} events LOST", self.last_drops)
            } else {
                String::new()
            }
        );
        if self.cfg.tree {
            // the names last, as `ps f` has them: indented, never cut
            s.push_str(&format!(
                "{:>8} {:<10} {:>12} {:>12} {:>10} {:>10} {:>9} {:>8} {:>6}  {}\n",
                "PID", "USER", "SENT/s", "RECV/s", "SENT", "RECV", "FLOWS", "RSS", "CPU%", "COMM"
            ));
            self.render_tree(rows, &mut s);
            s.push('\n');
            return s;
        }
        s.push_str(&format!(
            "{:>8} {:<10} {:<16} {:>12} {:>12} {:>10} {:>10} {:>9} {:>8} {:>6}\n",
            "PID", "USER", "COMM", "SENT/s", "RECV/s", "SENT", "RECV", "FLOWS", "RSS", "CPU%"
        ));
        for r in rows.iter().take(self.cfg.limit) {
            let user = self.user(r.uid);
            let user = if user.is_empty() {
                r.uid.to_string()
            } else {
                user
            };
            s.push_str(&format!(
                "{:>8} {} {} {:>12} {:>12} {:>10} {:>10} {:>9} {:>8} {:>6}\n",
                r.pid,
                fmt::column(&user, 10),
                fmt::column(&r.comm, 16),
                fmt::rate(r.sent_rate, bits),
                fmt::rate(r.recv_rate, bits),
                fmt::bytes(r.bytes_sent),
                fmt::bytes(r.bytes_recv),
                format!("{}/{}", r.flows_open, r.flows_total),
                r.rss_bytes.map(fmt::bytes).unwrap_or_default(),
                r.cpu_pct.map(|c| format!("{c:.1}")).unwrap_or_default(),
            ));
        }
        if rows.len() > self.cfg.limit {
            s.push_str(&format!("   ... {} more\n", rows.len() - self.cfg.limit));
        }
        s.push('\n');
        s
    }

    /// Processes under their ancestors; rates and totals are the subtree's.
    fn render_tree(&mut self, rows: &[ProcRow], s: &mut String) {
        let bits = self.cfg.bits;
        let lines = crate::toptree::tree(rows);
        for l in lines.iter().take(self.cfg.limit) {
            let name = format!(
                "{}{}",
                "  ".repeat(l.depth.min(8)),
                netwho_model::text::visible(l.comm)
            );
            let (user, flows, rss, cpu) = match l.row {
                Some(r) => {
                    let u = self.user(r.uid);
                    (
                        if u.is_empty() { r.uid.to_string() } else { u },
                        format!("{}/{}", l.flows_open, r.flows_total),
                        r.rss_bytes.map(fmt::bytes).unwrap_or_default(),
                        r.cpu_pct.map(|c| format!("{c:.1}")).unwrap_or_default(),
                    )
                }
                None => (
                    String::new(),
                    l.flows_open.to_string(),
                    String::new(),
                    String::new(),
                ),
            };
            s.push_str(&format!(
                "{:>8} {} {:>12} {:>12} {:>10} {:>10} {:>9} {:>8} {:>6}  {name}\n",
                l.key.tgid,
                fmt::column(&user, 10),
                fmt::rate(l.sent_rate, bits),
                fmt::rate(l.recv_rate, bits),
                fmt::bytes(l.bytes_sent),
                fmt::bytes(l.bytes_recv),
                flows,
                rss,
                cpu,
            ));
        }
        if lines.len() > self.cfg.limit {
            s.push_str(&format!("   ... {} more\n", lines.len() - self.cfg.limit));
        }
    }

    fn render_json(&mut self, rows: &[ProcRow], ts: String, wall: WallClock) -> Option<String> {
        let names: Vec<String> = rows.iter().map(|r| self.user(r.uid)).collect();
        let table = JsonTable {
            event: "top",
            ts,
            interval_s: self.cfg.interval.as_secs_f64(),
            drops: self.last_drops,
            procs: rows
                .iter()
                .zip(&names)
                .map(|(r, user)| JsonRow {
                    pid: r.pid,
                    proc_start: wall.rfc3339(r.proc.start()),
                    comm: &r.comm,
                    uid: r.uid,
                    user,
                    sent_bps: (r.sent_rate * 10.0).round() / 10.0,
                    recv_bps: (r.recv_rate * 10.0).round() / 10.0,
                    bytes_sent: r.bytes_sent,
                    bytes_recv: r.bytes_recv,
                    flows_open: r.flows_open,
                    flows_total: r.flows_total,
                    ppid: r.ancestors.first().map_or(0, |a| a.0.tgid),
                    rss_bytes: r.rss_bytes,
                    cpu_pct: r.cpu_pct.map(|c| (c * 10.0).round() / 10.0),
                })
                .collect(),
        };
        serde_json::to_string(&table).ok()
    }
}

impl Sink for TopSink {
    fn reset(&mut self) {
        self.table = Self::fresh_table();
        self.next = None;
        self.last_drops = 0;
    }

    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        // `now` only ages idle rows; the flow's own time is close enough
        let at = ev.flow().closed.unwrap_or(ev.flow().opened);
        let track = rec.context().track;
        self.table.observe(ev, at, track.as_ref());
        let uid = ev.flow().uid;
        if !self.users.contains_key(&uid) && self.users.len() < MAX_USERS {
            let name = &rec.context().names.user;
            if !name.is_empty() {
                self.users.insert(uid, name.clone());
            }
        }
    }

    fn status(&mut self, st: &StatusRecord) {
        self.last_drops = st.drops.total();
    }

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        let interval = nanos(self.cfg.interval);
        let Some(next) = self.next else {
            // the first interval starts now
            self.next = Some(now.add_ns(interval));
            self.table.snapshot(now);
            return SinkControl::Continue;
        };
        if now < next {
            return SinkControl::Continue;
        }
        self.next = Some(next.add_ns(interval).max(now));
        let mut rows = self.table.snapshot(now);
        if !self.cfg.by_total {
            // the busiest now first, as the interactive view (stable: ties
            // stay in total order)
            rows.sort_by(|a, b| {
                (b.sent_rate + b.recv_rate).total_cmp(&(a.sent_rate + a.recv_rate))
            });
        }
        let ts = wall.rfc3339(now);
        let text = match self.cfg.format {
            TopFormat::Text => {
                // seconds are enough for people
                let short = format!("{}Z", ts.get(..19).unwrap_or(&ts));
                Some(self.render_text(&rows, &short))
            }
            TopFormat::Json => self.render_json(&rows, ts, wall).map(|mut s| {
                s.push('\n');
                s
            }),
        };
        if let Some(t) = text {
            self.out.buf().extend_from_slice(t.as_bytes());
            self.out.record_done();
        }
        self.printed += 1;
        if self.cfg.count.is_some_and(|c| self.printed >= c) {
            SinkControl::Done
        } else {
            SinkControl::Continue
        }
    }

    fn flush(&mut self) -> SinkControl {
        self.out.flush_control()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.finish()
    }

    fn dropped(&self) -> u64 {
        self.out.dropped_records
    }

    fn updates_every(&self) -> Option<Duration> {
        Some(self.cfg.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::record::{Context, Names};
    use netwho_model::{Endpoint, Flow};
    use std::sync::Arc;

    fn json_cfg(by_total: bool) -> TopConfig {
        TopConfig {
            format: TopFormat::Json,
            interval: Duration::from_secs(1),
            count: None,
            limit: 10,
            bits: false,
            tree: false,
            by_total,
        }
    }

    /// A user who runs processes under many uids (user namespaces make
    /// that cheap) cannot make the table of names grow without bound: past
    /// the bound, rows show the uid's number.
    #[test]
    fn user_names_are_bounded_and_fall_back_to_the_number() {
        let cfg = json_cfg(true);
        let mut sink = TopSink::new(cfg, Output::spawn(Box::new(std::io::sink())));
        let n = MAX_USERS as u32 + 100;
        for uid in 0..n {
            let mut f = Flow::example(
                1000 + uid,
                u64::from(uid),
                Endpoint::new([10, 231, 1, 9].into(), 80),
            );
            f.uid = uid;
            let ev = FlowEvent::Opened(f);
            let ctx = Context {
                names: Arc::new(Names {
                    user: format!("user\u{1b}[31m{uid}"),
                    ..Names::default()
                }),
                ..Context::default()
            };
            let mut lookup = |_: &FlowEvent| ctx.clone();
            let mut rec = RecordRef::new(&ev, MonoNs(1), WallClock::default(), &mut lookup);
            sink.event(&ev, &mut rec);
        }
        assert_eq!(sink.users.len(), MAX_USERS);
        assert_eq!(sink.user(1), "user\u{1b}[31m1");
        assert_eq!(sink.user(n - 1), (n - 1).to_string());
    }

    type Buf = netwho_sink::output::MemoryOutput;

    /// The pids of the last JSON table, in its order, when a process with
    /// more bytes in all is quiet now and another is busy now.
    fn order(by_total: bool) -> Vec<u64> {
        let cfg = json_cfg(by_total);
        let buf = Buf::default();
        let mut sink = TopSink::new(cfg, Output::spawn(Box::new(buf.clone())));
        let remote = Endpoint::new([10, 231, 1, 9].into(), 80);
        let mut big = Flow::example(100, 1, remote);
        let mut busy = Flow::example(200, 2, remote);
        let s = 1_000_000_000;
        let feed = |sink: &mut TopSink, ev: FlowEvent, at: u64| {
            let mut lookup = |_: &FlowEvent| Context::default();
            let mut rec = RecordRef::new(&ev, MonoNs(at), WallClock::default(), &mut lookup);
            sink.event(&ev, &mut rec);
            sink.tick(MonoNs(at), WallClock::default());
        };
        big.payload.bytes_sent = 1_000_000;
        feed(&mut sink, FlowEvent::Opened(big.clone()), s);
        feed(&mut sink, FlowEvent::Opened(busy.clone()), s);
        feed(&mut sink, FlowEvent::Updated(big.clone()), 2 * s + 1);
        busy.payload.bytes_sent = 5_000;
        feed(&mut sink, FlowEvent::Updated(busy.clone()), 3 * s + 2);
        sink.finish().unwrap();
        let text = String::from_utf8(buf.bytes()).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        last["procs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pid"].as_u64().unwrap())
            .collect()
    }

    /// `top --text/--json` order rows as the view does by default (the
    /// busiest now first); `--sort total` by bytes since start.
    #[test]
    fn rows_come_busiest_first_unless_sorted_by_total() {
        assert_eq!(order(false), [200, 100]);
        assert_eq!(order(true), [100, 200]);
    }
}
