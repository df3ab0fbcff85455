//! `netwho log`: one record per flow event, as JSON lines (`docs/specs/flow-record.md`),
//! as one readable line each, or as lines from a `--format` template.
//!
//! JSON: the first line is the `ready` status record; then an `open`
//! record when a flow starts and/or a `close` record with final counters
//! when it ends (`--on`); a status record every status interval (and soon
//! after output was lost); at exit, if closes are logged, an `update`
//! record with the totals of every flow still open, then a final status.
//! Text and templates: the same events, one line each; status goes to
//! stderr when something was lost, and as a summary at the start and the
//! end.

use crate::template::Template;
use crate::tsformat::TsFormat;
use netwho_model::json::ProcJsonCache;
use netwho_model::record::{FlowRecord, RecordKind};
use netwho_model::time::unix_ns_from_rfc3339;
use netwho_model::{FlowEvent, MonoNs, ProcKey};
use netwho_sink::output::Output;
use netwho_sink::status::StatusRecord;
use netwho_sink::{RecordRef, Sink, SinkControl, fmt};
use std::io::Write;

#[derive(Clone, Debug)]
/// How a record is written.
pub enum LogFormat {
    /// One JSON object per line (`docs/specs/flow-record.md`).
    Json,
    /// netwho's readable line, timestamps in this format, command lines
    /// cut at this many characters ([`TEXT_CMDLINE`] by default).
    Text(TsFormat, usize),
    /// A `--format` template.
    Template(Template),
}

impl LogFormat {
    fn is_json(&self) -> bool {
        matches!(self, LogFormat::Json)
    }

    /// Append the record's line (no newline) to `out`.
    pub fn write_line(&self, r: &FlowRecord<'_>, out: &mut String) {
        match self {
            LogFormat::Json => {
                let mut j = Vec::new();
                r.write_json(&mut j);
                out.push_str(&String::from_utf8_lossy(&j));
            }
            LogFormat::Text(ts, cmd) => out.push_str(&text_line(r, ts, *cmd)),
            LogFormat::Template(t) => t.write(r, out),
        }
    }
}

/// Which lifecycle points of a flow are logged (`--on`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum On {
    /// One record per new flow.
    #[default]
    Open,
    /// One record per ended flow, with its final counters (and, at exit,
    /// one with the totals of each flow still open).
    Close,
    /// Both.
    Both,
}

impl On {
    fn closes(self) -> bool {
        self != On::Open
    }

    /// Whether a flow event makes a record (updates never do; the totals of
    /// flows still open come at exit, see [`On::wants_final`]).
    pub fn wants(self, ev: &FlowEvent) -> bool {
        match ev {
            FlowEvent::Opened(_) => self != On::Close,
            FlowEvent::Closed(_) => self.closes(),
            FlowEvent::Updated(_) => false,
        }
    }

    /// Whether the totals of flows still open at exit make records.
    pub fn wants_final(self) -> bool {
        self.closes()
    }
}

/// When a non-JSON log tells its reader about status: once when netwho is
/// ready, whenever more was lost, and at exit.
#[derive(Debug, Default)]
pub struct Announcer {
    announced: bool,
    last_loss: u64,
}

impl Announcer {
    /// Whether this status record is to be told.
    pub fn due(&mut self, st: &StatusRecord) -> bool {
        let loss = st.drops.total();
        let first = !std::mem::replace(&mut self.announced, true);
        let due = first || st.is_final || loss > self.last_loss;
        self.last_loss = loss;
        due
    }
}

#[derive(Debug)]
/// `netwho log`: one record per flow event (as `On` says) and the status records, written through an `Output`.
pub struct LogSink {
    format: LogFormat,
    on: On,
    line: String,
    out: Output,
    /// Text mode: status lines go here (stderr).
    notes: Option<Output>,
    announce: Announcer,
    /// JSON: each process's fields, written once.
    procs: ProcJsonCache,
}

impl LogSink {
    /// A log sink writing `format` into `out`.
    pub fn new(format: LogFormat, on: On, out: Output) -> Self {
        let notes = (!format.is_json()).then(Output::stderr);
        LogSink {
            format,
            on,
            line: String::new(),
            out,
            notes,
            announce: Announcer::default(),
            procs: ProcJsonCache::default(),
        }
    }

    /// For tests: text notes go to the given output.
    pub fn with_notes(format: LogFormat, on: On, out: Output, notes: Output) -> Self {
        LogSink {
            format,
            on,
            line: String::new(),
            out,
            notes: Some(notes),
            announce: Announcer::default(),
            procs: ProcJsonCache::default(),
        }
    }

    /// Write one record as this sink formats it (benchmarks and tools
    /// that have records rather than flow events).
    pub fn write_record(&mut self, rec: &FlowRecord<'_>) {
        self.write(rec);
    }

    /// Hand what is buffered to the writer (false once the output closed).
    pub fn flush_output(&mut self) -> bool {
        self.out.flush()
    }

    fn write(&mut self, rec: &FlowRecord<'_>) {
        let buf = self.out.buf();
        match &self.format {
            LogFormat::Json => {
                rec.write_json(buf);
                buf.push(b'\n');
            }
            text => {
                self.line.clear();
                text.write_line(rec, &mut self.line);
                buf.extend_from_slice(self.line.as_bytes());
                buf.push(b'\n');
            }
        }
        self.out.record_done();
    }

    /// Write a flow event's record: in JSON, its process fields as the
    /// last record of the same process wrote them.
    fn write_event(&mut self, rec: &mut RecordRef<'_>) {
        if !self.format.is_json() {
            return self.write(&rec.get());
        }
        let (now, wall) = (rec.now(), rec.wall());
        let (ev, ctx) = rec.source();
        let f = ev.flow();
        let buf = self.out.buf();
        // a process's fields kept from its earlier record: the record is
        // made without them (its ancestors and start time are work)
        match self.procs.kept(f, ctx, wall) {
            Some(json) => FlowRecord::from_event_without_proc(ev, now, wall, ctx)
                .write_json_with_proc(buf, json),
            None => {
                let r = FlowRecord::from_event(ev, now, wall, ctx);
                self.procs.write(&r, f, ctx, wall, buf);
            }
        }
        buf.push(b'\n');
        self.out.record_done();
    }
}

fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn who(name: &str, id: u32) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        format!("{}({id})", netwho_model::text::visible(name))
    }
}

/// What a text line says of the remote's names: ` (rname)`, ` (shared
/// rname)`, ` (unresolved)`, and ` sni=NAME` where the ClientHello named
/// another server; empty with names off.
pub fn remote_names(r: &FlowRecord<'_>) -> String {
    use netwho_model::text::visible;
    let mut s = String::new();
    match (r.rname.as_deref(), r.rname_source.as_deref()) {
        (Some(n), Some("shared")) => s.push_str(&format!(" (shared {})", visible(n))),
        (Some(n), _) => s.push_str(&format!(" ({})", visible(n))),
        (None, Some("none")) => s.push_str(" (unresolved)"),
        _ => {}
    }
    if let Some(sni) = r.sni.as_deref()
        && r.rname.as_deref() != Some(sni)
    {
        s.push_str(&format!(" sni={}", visible(sni)));
    }
    s
}

/// Characters of a command line a text line shows (`--full-cmdline`
/// lifts it): a cut never splits an escape or a quoted argument's quote,
/// and ends in `…`.
pub const TEXT_CMDLINE: usize = 120;

/// One readable line, in the spirit of conntrack-logger:
/// `TS EVENT proto/family local -> remote :: pid user:group unit :: cmdline`
/// and, for update and close, the byte counts.
pub fn text_line(r: &FlowRecord<'_>, ts: &TsFormat, cmdline_max: usize) -> String {
    // the event's own time: when the flow started or ended (`ts`, when
    // the record was made, for totals)
    let when = match (r.event, &r.ts_close) {
        (RecordKind::Open, _) => &r.ts_open,
        (RecordKind::Close, Some(c)) => c,
        _ => &r.ts,
    };
    let ts = unix_ns_from_rfc3339(when).map_or_else(|| when.to_string(), |ns| ts.format(ns));
    let kind = match r.event {
        RecordKind::Open => "open ",
        RecordKind::Update => "total",
        RecordKind::Close => "close",
    };
    let arrow = if r.direction == "inbound" { "<-" } else { "->" };
    let place: &str = if !r.unit.is_empty() {
        &r.unit
    } else if !r.cgroup.is_empty() {
        &r.cgroup
    } else {
        "-"
    };
    let place = netwho_model::text::visible(place);
    let cmd = if r.cmdline.is_empty() {
        format!("[{}]", netwho_model::text::visible(&r.comm))
    } else {
        fmt::cmdline(&r.cmdline, cmdline_max)
    };
    let mut remote = endpoint(&r.raddr, r.rport);
    remote.push_str(&remote_names(r));
    let mut line = format!(
        "{ts} {kind} {}/{} {} {arrow} {} :: {} {}:{} {place} :: {cmd}",
        r.proto,
        r.family,
        endpoint(&r.laddr, r.lport),
        remote,
        r.pid,
        who(&r.user, r.uid),
        who(&r.group, r.gid),
    );
    if r.event != RecordKind::Open {
        line.push_str(&format!(" :: sent {} recv {}", r.bytes_sent, r.bytes_recv));
        if let Some(ms) = r.duration_ms {
            line.push_str(&format!(" in {ms:.3} ms"));
        }
    }
    if r.attribution != "ebpf" {
        line.push_str(&format!(" [{}]", r.attribution));
    }
    line
}

impl Sink for LogSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        if self.on.wants(ev) {
            self.write_event(rec);
        }
    }

    fn final_update(&mut self, _ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        if self.on.wants_final() {
            self.write_event(rec);
        }
    }

    fn proc_exit(&mut self, proc: ProcKey, _at: MonoNs) {
        self.procs.forget(proc);
    }

    fn status(&mut self, st: &StatusRecord) {
        match self.format {
            LogFormat::Json => {
                let buf = self.out.buf();
                let start = buf.len();
                if serde_json::to_writer(&mut *buf, st).is_err() {
                    buf.truncate(start);
                    return;
                }
                buf.push(b'\n');
                self.out.record_done();
            }
            LogFormat::Text(..) | LogFormat::Template(_) => {
                if self.announce.due(st)
                    && let Some(n) = &mut self.notes
                {
                    let _ = writeln!(n.buf(), "{}", st.summary());
                    n.record_done();
                    n.flush();
                }
            }
        }
    }

    fn flush(&mut self) -> SinkControl {
        self.out.flush_control()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if let Some(n) = &mut self.notes {
            let _ = n.finish();
        }
        self.out.finish()
    }

    fn dropped(&self) -> u64 {
        self.out.dropped_records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::record::FlowRecord;

    /// A process chooses its name, its command line and (in a delegated
    /// cgroup) its unit: none of them can add a line or reach the
    /// terminal as a control sequence.
    #[test]
    fn a_text_line_stays_one_line_whatever_the_process_chose() {
        let mut r = FlowRecord::example();
        r.comm = "py\n2026-11-23T10:15:15.340Z open  tcp/ipv4 root".into();
        r.cmdline = Vec::new().into();
        r.unit = "x\u{1b}[2K\rroot.service".into();
        r.user = "al\nice".into();
        let line = text_line(&r, &TsFormat::default(), TEXT_CMDLINE);
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(line.contains("[py\\n2026"), "{line}");
        assert!(line.contains("x\\u{1b}[2K\\rroot.service"), "{line}");
        assert!(line.contains("al\\nice(1000)"), "{line}");
    }

    /// The remote's names follow its address: the name resolved, whose
    /// answer it was, a server name that differs, or "unresolved"; a
    /// crafted name (from a recording or the fleet) stays on its line.
    #[test]
    fn a_text_line_names_the_remote_as_its_process_knew_it() {
        let mut r = FlowRecord::example();
        let line = text_line(&r, &TsFormat::default(), TEXT_CMDLINE);
        assert!(
            line.contains("-> 93.184.216.34:443 (example.org) ::"),
            "{line}"
        );
        r.rname_source = Some("shared".into());
        r.sni = Some("cdn.example".into());
        let line = text_line(&r, &TsFormat::default(), TEXT_CMDLINE);
        assert!(
            line.contains(":443 (shared example.org) sni=cdn.example ::"),
            "{line}"
        );
        r.rname = None;
        r.sni = Some("x\n\u{1b}[2K".into());
        r.rname_source = Some("none".into());
        let line = text_line(&r, &TsFormat::default(), TEXT_CMDLINE);
        assert!(line.contains(":443 (unresolved) sni=x"), "{line}");
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
    }

    /// A line says when its event happened: an open when the flow began,
    /// a close when it ended, not when the batch was written.
    #[test]
    fn a_text_line_shows_the_events_own_time() {
        let ts = TsFormat::default();
        let mut r = FlowRecord::example();
        r.ts = "2026-11-23T10:15:16.999000000Z".into();
        let close = text_line(&r, &ts, TEXT_CMDLINE);
        assert!(close.starts_with("2026-11-23T10:15:15.340Z"), "{close}");
        r.event = RecordKind::Open;
        r.ts_close = None;
        let open = text_line(&r, &ts, TEXT_CMDLINE);
        assert!(open.starts_with("2026-11-23T10:15:15.123Z"), "{open}");
        r.event = RecordKind::Update;
        let total = text_line(&r, &ts, TEXT_CMDLINE);
        assert!(total.starts_with("2026-11-23T10:15:16.999Z"), "{total}");
    }

    /// A long command line is cut at 120 characters, never inside an
    /// escape, and marked; `--full-cmdline` shows all of it.
    #[test]
    fn a_text_lines_command_line_cut_is_marked_and_can_be_lifted() {
        let mut r = FlowRecord::example();
        let arg = format!("{}\u{1b}[31m{}", "a".repeat(110), "b".repeat(200));
        r.cmdline = vec!["python3".to_string(), arg].into();
        let ts = TsFormat::default();
        let cut = text_line(&r, &ts, TEXT_CMDLINE);
        let cmd = cut.split(" :: ").nth(2).unwrap();
        assert!(cmd.chars().count() <= TEXT_CMDLINE, "{cmd}");
        assert!(cmd.ends_with('…'), "{cmd}");
        // the escape is whole or absent
        assert!(!cmd.contains("\\u{1b") || cmd.contains("\\u{1b}"), "{cmd}");
        let whole = text_line(&r, &ts, usize::MAX);
        assert!(whole.contains(&"b".repeat(200)), "{whole}");
        assert!(!whole.contains('\u{1b}'), "{whole}");
    }

    /// A JSON log copies a process's fields from its earlier record and
    /// makes the later records without them: every line is still the
    /// record written whole, ancestors and start time included, through
    /// hostile names and a change of what the fields are made of.
    #[test]
    fn json_lines_of_one_process_are_its_records_written_whole() {
        use netwho_model::record::Context;
        use netwho_model::time::WallClock;
        use netwho_model::{Endpoint, Flow, FlowId};
        use netwho_sink::output::MemoryOutput;
        use std::sync::Arc;
        let mem = MemoryOutput::default();
        let mut sink = LogSink::new(
            LogFormat::Json,
            On::Both,
            Output::spawn(Box::new(mem.clone())),
        );
        let wall = WallClock {
            boot_to_unix_ns: 1_765_000_000_000_000_000,
        };
        let remote = Endpoint::new(std::net::Ipv4Addr::new(10, 231, 9, 9).into(), 443);
        let mut f = Flow::example(4242, 1, remote);
        assert!(f.proc.ancestors().count() > 0, "the example has ancestors");
        let mut events = Vec::new();
        for i in 0..4u16 {
            let mut g = f.clone();
            g.id = FlowId(u64::from(i) + 7);
            g.local.port = 40_000 + i;
            g.comm = "py\"\n\u{1b}[2J".into();
            events.push(FlowEvent::Opened(g.clone()));
            g.closed = Some(MonoNs(9_000_000_000));
            events.push(FlowEvent::Closed(g));
        }
        // the same process, another command line (an exec): afresh
        let mut p = (*f.proc).clone();
        p.cmdline = vec!["/bin/sh".into(), "\"quoted\"\n".into()];
        f.proc = Arc::new(p);
        events.push(FlowEvent::Opened(f));
        let ctx = Context::default();
        let mut expected = String::new();
        for (i, ev) in events.iter().enumerate() {
            let now = MonoNs(8_000_000_000 + i as u64);
            let mut lookup = |_: &FlowEvent| ctx.clone();
            let mut rec = RecordRef::new(ev, now, wall, &mut lookup);
            sink.event(ev, &mut rec);
            let mut whole = Vec::new();
            FlowRecord::from_event(ev, now, wall, &ctx).write_json(&mut whole);
            expected.push_str(&String::from_utf8_lossy(&whole));
            expected.push('\n');
        }
        sink.flush();
        assert!(sink.out.finish().is_ok());
        assert_eq!(mem.text(), expected);
        assert_eq!(sink.procs.counts(), (7, 2), "copied for all but two");
    }
}
