//! The export sink: the pipeline's flow events into [`Flows`], due
//! records encoded (IPFIX, NetFlow v9 or JSON lines) and handed to an
//! [`Output`] whose writer thread sends them.

use crate::flows::{Flows, Own, Seen, Timeouts, Touch, end};
use crate::ie::Ie;
use crate::msg::{Encoder, Proc, Record, Value, Version, value};
use crate::net::{DATA, Delivery, TEMPLATE, put_frame};
use netwho_model::time::WallClock;
use netwho_model::{CloseReason, FlowEvent, MonoNs, ProcKey, Usage};
use netwho_sink::output::Output;
use netwho_sink::status::StatusRecord;
use netwho_sink::{RecordRef, Sink, SinkControl};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// IPFIX (RFC 7011).
    Ipfix,
    /// NetFlow v9.
    V9,
    /// One JSON object per record and line, keyed by the template's
    /// element names in lower case.
    Jsonl,
    /// The fleet's JSON lines ([`crate::fleet`]): every field, the
    /// template ignored.
    Fleet,
}

#[derive(Clone, Debug)]
/// What the export sink writes, and how.
pub struct ExportConfig {
    /// The message format.
    pub format: Format,
    /// The elements of each record.
    pub template: Vec<&'static Ie>,
    /// netwho's own elements' enterprise number.
    pub pen: u32,
    /// IPFIX observation domain / v9 source id.
    pub domain: u32,
    /// When records are due.
    pub timeouts: Timeouts,
    /// The template is sent again this often (UDP; over TCP it is sent
    /// once per connection).
    pub template_every: Duration,
    /// Largest message, bytes.
    pub max_message: usize,
    /// Flows of this process are left out (netwho's own: the datagrams it
    /// sends to the collectors would otherwise be exported in turn).
    pub skip_proc: Option<ProcKey>,
}

impl ExportConfig {
    /// `format` with `template` and the defaults.
    pub fn new(format: Format, template: Vec<&'static Ie>) -> Self {
        ExportConfig {
            format,
            template,
            pen: crate::ie::DEFAULT_NETWHO_PEN,
            domain: 0,
            timeouts: Timeouts::default(),
            template_every: Duration::from_secs(60),
            max_message: 1400,
            skip_proc: None,
        }
    }
}

/// How often due records are looked for.
const SWEEP_EVERY_MS: u64 = 1_000;

#[derive(Debug)]
/// The export sink: flow events → due records (`flows`) → messages (`msg`) or JSON lines, into an `Output`.
pub struct ExportSink {
    cfg: ExportConfig,
    flows: Flows,
    enc: Option<Encoder>,
    out: Output,
    delivery: Arc<Delivery>,
    /// Unix ms of the last sweep and template; when the sink started.
    swept_ms: u64,
    template_ms: Option<u64>,
    started_ms: Option<u64>,
    now_ms: u64,
    /// Records made.
    pub records: u64,
    /// Fleet records whose strings were cut to fit a line.
    truncated: u64,
    /// Events of netwho's own flows left out (`skip_proc`).
    pub own_left_out: u64,
}

fn unix_ms(wall: WallClock, t: MonoNs) -> u64 {
    u64::try_from(wall.unix_ns(t) / 1_000_000).unwrap_or(0)
}

fn end_reason(f: &netwho_model::Flow) -> u8 {
    match f.close_reason {
        Some(CloseReason::Idle) => end::IDLE,
        _ => end::END_OF_FLOW,
    }
}

impl ExportSink {
    /// `delivery`: what the output's destination counts (sent, lost).
    pub fn new(cfg: ExportConfig, out: Output, delivery: Arc<Delivery>) -> Self {
        let enc = match cfg.format {
            Format::Ipfix => Some(Version::Ipfix),
            Format::V9 => Some(Version::V9),
            Format::Jsonl | Format::Fleet => None,
        }
        .map(|v| Encoder::new(v, cfg.template.clone(), cfg.pen, cfg.domain));
        ExportSink {
            flows: Flows::new(cfg.timeouts),
            cfg,
            enc,
            out,
            delivery,
            swept_ms: 0,
            template_ms: None,
            started_ms: None,
            now_ms: 0,
            records: 0,
            truncated: 0,
            own_left_out: 0,
        }
    }

    /// The counters and resources of the flow now.
    fn touch(ev: &FlowEvent, rec: &mut RecordRef<'_>) -> Touch {
        let f = ev.flow();
        let life_ns = rec.now().since(f.opened).max(1);
        let usage = rec.context().usage;
        Touch {
            wire: f.wire,
            payload: f.payload,
            actual_memory: usage.map_or(0, |u| u.rss_bytes),
            peak_memory: usage.map_or(0, |u| u.rss_peak_bytes),
            cpu_load: usage.and_then(|u| u.cpu_pct).map_or(0, |c| {
                (c * 100.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
            }),
            page_faults: usage.map_or(0, |u| u.major_faults),
            iowait: usage.and_then(|u| u.iowait_ns).map_or(0, |n| {
                u32::try_from(u128::from(n) * 10_000 / u128::from(life_ns)).unwrap_or(u32::MAX)
            }),
        }
    }

    fn seen(ev: &FlowEvent, rec: &mut RecordRef<'_>) -> Option<Seen> {
        let f = ev.flow();
        let protocol = f.proto.ip_number()?;
        let t = Self::touch(ev, rec);
        let wall = rec.wall();
        let ctx = rec.context();
        let proc = Proc {
            pid: f.key.proc.tgid,
            start_ticks: f.key.proc.start_ticks,
            name: f.comm.clone(),
            user: ctx.names.user.clone(),
            father_pid: f.proc.ppid,
            father_name: f.proc.parent_comm.clone(),
            actual_memory: t.actual_memory,
            peak_memory: t.peak_memory,
            cpu_load: t.cpu_load,
            page_faults: t.page_faults,
            iowait: t.iowait,
        };
        let names = f.remote_name.as_deref().map_or([""; 4], names_of);
        let own = Own {
            uid: f.uid,
            unit: ctx.names.unit.clone(),
            container: ctx.names.container_id.clone(),
            cmdline: f.proc.cmdline.join(" "),
            exe_sha256: ctx.exe_sha256.as_deref().unwrap_or("").to_string(),
            attribution: f.attribution.name().to_string(),
            community_id: netwho_model::community::of_flow(f, ctx.community_seed)
                .unwrap_or_default(),
            rname: names[0].to_string(),
            rname_source: names[1].to_string(),
            sni: names[2].to_string(),
            alpn: names[3].to_string(),
        };
        Some(Seen {
            id: f.id.0,
            protocol,
            local: SocketAddr::new(f.local.addr, f.local.port),
            remote: SocketAddr::new(f.remote.addr, f.remote.port),
            direction: f.direction,
            proc,
            own,
            wire: f.wire,
            payload: f.payload,
            opened_ms: unix_ms(wall, f.opened),
        })
    }

    fn take(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        let now_ms = unix_ms(rec.wall(), rec.now());
        self.now_ms = self.now_ms.max(now_ms);
        let id = ev.flow().id.0;
        if !matches!(ev, FlowEvent::Opened(_))
            && let Some(rn) = ev.flow().remote_name.as_deref()
        {
            self.flows.rename(id, names_of(rn));
        }
        // a flow already known: only what moves (no text copied)
        match ev {
            FlowEvent::Opened(_) => {}
            FlowEvent::Updated(_) => {
                if self.flows.touch(id, Self::touch(ev, rec), now_ms) {
                    return;
                }
            }
            FlowEvent::Closed(f) => {
                let at = f.closed.map_or(now_ms, |c| unix_ms(rec.wall(), c));
                if self
                    .flows
                    .touch_close(id, Self::touch(ev, rec), at, end_reason(f))
                {
                    return;
                }
            }
        }
        let Some(s) = Self::seen(ev, rec) else {
            return;
        };
        match ev {
            FlowEvent::Closed(f) => {
                let at = f.closed.map_or(now_ms, |c| unix_ms(rec.wall(), c));
                self.flows.close(s, at, end_reason(f));
            }
            _ => self.flows.update(s, now_ms),
        }
    }

    /// Encodes `records` (and the template when due) into the output.
    fn emit(&mut self, records: &[Record]) {
        self.records += records.len() as u64;
        let now_ms = self.now_ms;
        let started = *self.started_ms.get_or_insert(now_ms);
        let export_s = u32::try_from(now_ms / 1_000).unwrap_or(u32::MAX);
        let uptime = u32::try_from(now_ms.saturating_sub(started)).unwrap_or(u32::MAX);
        let every = u64::try_from(self.cfg.template_every.as_millis()).unwrap_or(u64::MAX);
        let max = self.cfg.max_message;
        let Some(enc) = self.enc.as_mut() else {
            for r in records {
                match self.cfg.format {
                    Format::Fleet => {
                        if crate::fleet::write_line(r, self.out.buf()) {
                            self.truncated += 1;
                        }
                    }
                    _ => write_json(r, &self.cfg.template, self.out.buf()),
                }
                self.out.record_done();
            }
            return;
        };
        if self
            .template_ms
            .is_none_or(|t| now_ms >= t.saturating_add(every))
        {
            self.template_ms = Some(now_ms);
            for m in enc.messages(&[], true, export_s, uptime, max) {
                put_frame(self.out.buf(), TEMPLATE, 0, &m);
            }
        }
        if records.is_empty() {
            return;
        }
        for (m, n) in enc.counted(records, false, export_s, uptime, max) {
            put_frame(self.out.buf(), DATA, u32::from(n), &m);
            for _ in 0..n {
                self.out.record_done();
            }
        }
    }
}

/// One record as a JSON line: the template's elements in lower case, the
/// other family's addresses and an absent process's fields left out.
pub fn write_json(r: &Record, template: &[&'static Ie], out: &mut Vec<u8>) {
    use crate::ie::{Side, What};
    use std::io::Write as _;
    let v4 = !matches!(r.src, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none());
    out.push(b'{');
    let mut first = true;
    for ie in template {
        let skip = match ie.what {
            What::SrcIpv4 | What::DstIpv4 => !v4,
            What::SrcIpv6 | What::DstIpv6 => v4,
            What::Proc(Side::Src, _) => r.src_proc.is_none(),
            What::Proc(Side::Dst, _) => r.dst_proc.is_none(),
            _ => false,
        };
        if skip {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // (element names are ASCII letters, digits and underscores)
        out.push(b'"');
        out.extend(ie.name.bytes().map(|b| b.to_ascii_lowercase()));
        out.extend_from_slice(b"\":");
        let _ = match value(r, ie.what) {
            Value::Num(n) => write!(out, "{n}"),
            Value::Addr(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => write!(out, "\"{v4}\""),
                None => write!(out, "\"{v6}\""),
            },
            Value::Addr(a) => write!(out, "\"{a}\""),
            Value::Text(t) => serde_json::to_writer(&mut *out, t).map_err(std::io::Error::other),
        };
    }
    out.extend_from_slice(b"}\n");
}

impl Sink for ExportSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        if self.cfg.skip_proc == Some(ev.flow().key.proc) {
            self.own_left_out += 1;
            return;
        }
        self.take(ev, rec);
    }

    fn status(&mut self, _st: &StatusRecord) {}

    fn proc_final(&mut self, proc: ProcKey, usage: &Usage) {
        self.flows.process_final(
            proc.tgid,
            proc.start_ticks,
            usage.rss_bytes,
            usage.rss_peak_bytes,
            usage.major_faults,
        );
    }

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        let now_ms = unix_ms(wall, now);
        self.now_ms = self.now_ms.max(now_ms);
        if self.started_ms.is_none() {
            // the template goes out at once (collectors learn it first)
            self.emit(&[]);
        }
        if self.now_ms >= self.swept_ms.saturating_add(SWEEP_EVERY_MS) {
            self.swept_ms = self.now_ms;
            let due = self.flows.sweep(self.now_ms);
            self.emit(&due);
        }
        SinkControl::Continue
    }

    fn flush(&mut self) -> SinkControl {
        self.out.flush_control()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if self.own_left_out > 0 {
            log::info!(
                "export: {} events of netwho's own flows left out (include_self exports them)",
                self.own_left_out
            );
        }
        let rest = self.flows.finish(self.now_ms);
        self.emit(&rest);
        self.out.finish()
    }

    fn truncated(&self) -> u64 {
        self.enc.as_ref().map_or(0, |e| e.truncated) + self.truncated
    }

    fn dropped(&self) -> u64 {
        self.out.dropped_records + self.delivery.lost.load(Ordering::Relaxed)
    }

    fn reset(&mut self) {
        self.flows = Flows::new(self.cfg.timeouts);
    }

    fn updates_every(&self) -> Option<Duration> {
        // counters often enough to see a flow go quiet
        let t = self.cfg.timeouts;
        Some((t.idle.min(t.active) / 2).max(Duration::from_secs(1)))
    }
}

/// A flow's names as export fields: rname, rname_source, sni, alpn (empty
/// where absent).
fn names_of(rn: &netwho_model::names::RemoteName) -> [&str; 4] {
    [
        rn.rname.as_deref().unwrap_or_default(),
        rn.source.map_or("", |s| s.name()),
        rn.sni.as_deref().unwrap_or_default(),
        rn.alpn.as_deref().unwrap_or_default(),
    ]
}
