//! `netwho log`: one record per flow event, as JSON lines (DESIGN.md §4)
//! or as one readable line each.
//!
//! JSON: the first line is the `ready` status record; then an `open`
//! record when a flow starts and a `close` record with final counters when
//! it ends; a status record every status interval; at exit, an `update`
//! record with the totals of every flow still open, then a final status.
//! Text: the same events, one line each; status goes to stderr when
//! something was lost, and as a summary at the start and the end.

use crate::output::Output;
use crate::status::StatusRecord;
use crate::{RecordRef, Sink, SinkControl, fmt};
use netwho_model::FlowEvent;
use netwho_model::record::{FlowRecord, RecordKind};
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug)]
pub struct LogSink {
    format: LogFormat,
    out: Output,
    /// Text mode: status lines go here (stderr).
    notes: Option<Output>,
    last_drops: u64,
    announced: bool,
}

impl LogSink {
    pub fn new(format: LogFormat, out: Output) -> Self {
        let notes = (format == LogFormat::Text).then(Output::stderr);
        LogSink {
            format,
            out,
            notes,
            last_drops: 0,
            announced: false,
        }
    }

    /// For tests: text notes go to the given output.
    pub fn with_notes(format: LogFormat, out: Output, notes: Output) -> Self {
        LogSink {
            format,
            out,
            notes: Some(notes),
            last_drops: 0,
            announced: false,
        }
    }

    fn write(&mut self, rec: &FlowRecord<'_>) {
        let buf = self.out.buf();
        match self.format {
            LogFormat::Json => {
                // a record always serializes; if it did not, write nothing
                // rather than half a line
                let start = buf.len();
                if serde_json::to_writer(&mut *buf, rec).is_err() {
                    buf.truncate(start);
                    return;
                }
                buf.push(b'\n');
            }
            LogFormat::Text => {
                buf.extend_from_slice(text_line(rec).as_bytes());
                buf.push(b'\n');
            }
        }
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
        format!("{name}({id})")
    }
}

/// One readable line, in the spirit of conntrack-logger:
/// `TS EVENT proto/family local -> remote :: pid user:group unit :: cmdline`
/// and, for update and close, the byte counts.
pub fn text_line(r: &FlowRecord<'_>) -> String {
    let ts = r.ts.get(..23).map_or(r.ts.clone(), |s| format!("{s}Z"));
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
    let cmd = if r.cmdline.is_empty() {
        format!("[{}]", r.comm)
    } else {
        fmt::cmdline(&r.cmdline, 120)
    };
    let mut line = format!(
        "{ts} {kind} {}/{} {} {arrow} {} :: {} {}:{} {place} :: {cmd}",
        r.proto,
        r.family,
        endpoint(&r.laddr, r.lport),
        endpoint(&r.raddr, r.rport),
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
        // a log has opens and closes; totals of open flows come at exit
        if matches!(ev, FlowEvent::Updated(_)) {
            return;
        }
        self.write(&rec.get());
    }

    fn final_update(&mut self, _ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.write(&rec.get());
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
            LogFormat::Text => {
                let drops = st.drops.total();
                let first = !std::mem::replace(&mut self.announced, true);
                if first || st.is_final || drops > self.last_drops {
                    self.last_drops = drops;
                    if let Some(n) = &mut self.notes {
                        let _ = writeln!(n.buf(), "{}", st.summary());
                        n.record_done();
                        n.flush();
                    }
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
