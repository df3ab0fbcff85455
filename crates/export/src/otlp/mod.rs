//! OpenTelemetry export (`netwho export --otlp URL`, `[export] otlp`):
//! every flow record as an OTLP log record, and the traffic per
//! executable, user and unit as OTLP metrics, sent over OTLP/HTTP with
//! protobuf (`docs/specs/otlp.md`).
//!
//! Place: an output of the pipeline, like the IPFIX exporter. The sink
//! ([`OtlpSink`]) turns flow events into records ([`encode`], pure) and
//! hands them to an [`Output`] whose writer thread batches, compresses and
//! sends them ([`http`]).

pub mod encode;
pub mod http;
pub mod pb;

use crate::net::{Delivery, put_frame};
use encode::Attrs;
use netwho_model::record::RecordKind;
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, FlowId, MonoNs, ProcKey};
use netwho_sink::output::Output;
use netwho_sink::series::{Labels, Series, Slot};
use netwho_sink::status::StatusRecord;
use netwho_sink::{RecordRef, Sink, SinkControl};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Which flow events become log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Events {
    /// When a flow opens.
    pub open: bool,
    /// Every `update_every` while it lasts (its totals so far).
    pub update: bool,
    /// When it ends (its totals).
    pub close: bool,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            open: true,
            update: true,
            close: true,
        }
    }
}

impl std::fmt::Display for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on: Vec<&str> = [
            (self.open, "open"),
            (self.update, "update"),
            (self.close, "close"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

impl std::str::FromStr for Events {
    type Err = String;
    /// `open,update,close` in any order and subset, or `none`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut e = Events {
            open: false,
            update: false,
            close: false,
        };
        if s.trim() == "none" {
            return Ok(e);
        }
        for w in s.split(',').map(str::trim) {
            match w {
                "open" => e.open = true,
                "update" => e.update = true,
                "close" => e.close = true,
                other => {
                    return Err(format!(
                        "'{other}' is not a flow event: give open, update and close joined by commas (or none)"
                    ));
                }
            }
        }
        Ok(e)
    }
}

/// What the OTLP sink sends, and how often.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// Flow events sent as log records.
    pub events: Events,
    /// A lasting flow's `update` record comes this often.
    pub update_every: Duration,
    /// Metrics are sent this often (`None`: no metrics).
    pub metrics_every: Option<Duration>,
    /// Series of the metrics: most label sets, a uid's share, labels.
    pub max_series: usize,
    /// A uid's share of `max_series`.
    pub max_series_per_uid: usize,
    /// Which labels the series carry.
    pub labels: Labels,
    /// Flows of this process are left out (netwho's own).
    pub skip_proc: Option<ProcKey>,
    /// Who reports.
    pub resource: encode::Resource,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            events: Events::default(),
            update_every: Duration::from_secs(60),
            metrics_every: Some(Duration::from_secs(60)),
            max_series: 200,
            max_series_per_uid: netwho_sink::series::default_per_uid(200),
            labels: Labels::default(),
            skip_proc: None,
            resource: encode::Resource::default(),
        }
    }
}

/// What the sink remembers of a live flow.
#[derive(Clone, Copy, Debug)]
struct Live {
    slot: Slot,
    sent: u64,
    recv: u64,
    /// Unix ns of its last log record.
    logged_ns: u64,
}

/// Most live flows remembered (a flow past it is still logged; its bytes
/// go to the metrics' `other` series and it is counted).
const MAX_LIVE: usize = 1 << 20;

/// The OTLP sink (see the module's documentation).
#[derive(Debug)]
pub struct OtlpSink {
    cfg: OtlpConfig,
    out: Output,
    delivery: Arc<Delivery>,
    resource: Vec<u8>,
    live: FxHashMap<FlowId, Live>,
    series: Series,
    attrs: Attrs,
    /// Unix ns: the first event or tick, the last metrics, the latest time.
    start_ns: Option<u64>,
    metrics_ns: u64,
    now_ns: u64,
    /// Log records made.
    pub records: u64,
    /// Events of netwho's own flows left out.
    pub own_left_out: u64,
    /// Flows past the most the sink remembers (their bytes go to `other`).
    pub untracked: u64,
}

fn unix_ns(wall: WallClock, t: MonoNs) -> u64 {
    u64::try_from(wall.unix_ns(t)).unwrap_or(0)
}

impl OtlpSink {
    /// A sink writing into `out` (an [`http::OtlpHttp`] destination, or a
    /// test's), counting with `delivery`.
    pub fn new(cfg: OtlpConfig, out: Output, delivery: Arc<Delivery>) -> Self {
        OtlpSink {
            resource: encode::resource(&cfg.resource),
            series: Series::new(cfg.max_series, cfg.max_series_per_uid, cfg.labels),
            cfg,
            out,
            delivery,
            live: FxHashMap::default(),
            attrs: Attrs::default(),
            start_ns: None,
            metrics_ns: 0,
            now_ns: 0,
            records: 0,
            own_left_out: 0,
            untracked: 0,
        }
    }

    /// Counts what the flow moved since its last event into its series;
    /// `true` if its log record is due (by `update_every`).
    fn account(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>, now_ns: u64) -> bool {
        let f = ev.flow();
        let id = f.id;
        let (sent, recv) = (f.payload.bytes_sent, f.payload.bytes_recv);
        let every = u64::try_from(self.cfg.update_every.as_nanos()).unwrap_or(u64::MAX);
        let closed = matches!(ev, FlowEvent::Closed(_));
        let (slot, d_sent, d_recv, conns, due) = match self.live.get_mut(&id) {
            Some(l) => {
                let d = (sent.saturating_sub(l.sent), recv.saturating_sub(l.recv));
                l.sent = l.sent.max(sent);
                l.recv = l.recv.max(recv);
                let due = now_ns >= l.logged_ns.saturating_add(every);
                (l.slot, d.0, d.1, 0, due)
            }
            None => {
                let ctx = rec.context();
                let slot = self.series.slot(f.uid, &ctx.names, &f.proc.exe);
                if !closed {
                    if self.live.len() < MAX_LIVE {
                        self.live.insert(
                            id,
                            Live {
                                slot,
                                sent,
                                recv,
                                logged_ns: now_ns,
                            },
                        );
                    } else {
                        self.untracked += 1;
                    }
                }
                (slot, sent, recv, 1, true)
            }
        };
        self.series.add_at(
            slot,
            netwho_model::Payload {
                bytes_sent: d_sent,
                bytes_recv: d_recv,
            },
            conns,
        );
        if closed {
            self.live.remove(&id);
        }
        due
    }

    fn log(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>, kind: RecordKind, now_ns: u64) {
        let f = ev.flow();
        let wall = rec.wall();
        let time_ns = match kind {
            RecordKind::Open => unix_ns(wall, f.opened),
            RecordKind::Close => f.closed.map_or(now_ns, |c| unix_ns(wall, c)),
            RecordKind::Update => now_ns,
        };
        let r = rec.get();
        // the frame's length is patched in once the record is written
        let buf = self.out.buf();
        put_frame(buf, http::LOG, 1, &[]);
        let start = buf.len();
        encode::log_record_into(buf, &r, time_ns, now_ns, &mut self.attrs);
        let len = u32::try_from(buf.len() - start).unwrap_or(u32::MAX);
        buf[start - 4..start].copy_from_slice(&len.to_be_bytes());
        self.out.record_done();
        self.records += 1;
    }

    fn metrics(&mut self) {
        let Some(start) = self.start_ns else {
            return;
        };
        let rows = self.series.rows();
        let req = encode::metrics_request(
            &self.resource,
            &self.cfg.resource.version,
            &rows,
            start,
            self.now_ns.max(start),
            &mut self.attrs,
        );
        put_frame(self.out.buf(), http::METRICS, 0, &req);
        self.metrics_ns = self.now_ns;
    }
}

impl Sink for OtlpSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        let f = ev.flow();
        if self.cfg.skip_proc == Some(f.key.proc) {
            self.own_left_out += 1;
            return;
        }
        let now_ns = unix_ns(rec.wall(), rec.now());
        self.now_ns = self.now_ns.max(now_ns);
        self.start_ns.get_or_insert(now_ns);
        let due = self.account(ev, rec, now_ns);
        let e = self.cfg.events;
        let kind = match ev {
            FlowEvent::Opened(_) if e.open => RecordKind::Open,
            FlowEvent::Updated(_) if e.update && due => RecordKind::Update,
            FlowEvent::Closed(_) if e.close => RecordKind::Close,
            _ => return,
        };
        if kind == RecordKind::Update
            && let Some(l) = self.live.get_mut(&f.id)
        {
            l.logged_ns = now_ns;
        }
        self.log(ev, rec, kind, now_ns);
    }

    fn final_update(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        // a flow open at exit: its totals now, as an update
        if self.cfg.skip_proc == Some(ev.flow().key.proc) {
            return;
        }
        let now_ns = unix_ns(rec.wall(), rec.now());
        self.now_ns = self.now_ns.max(now_ns);
        self.account(ev, rec, now_ns);
        if self.cfg.events.update || self.cfg.events.close {
            self.log(ev, rec, RecordKind::Update, now_ns);
        }
    }

    fn status(&mut self, _st: &StatusRecord) {}

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        let now_ns = unix_ns(wall, now);
        self.now_ns = self.now_ns.max(now_ns);
        let start = *self.start_ns.get_or_insert(now_ns);
        if let Some(every) = self.cfg.metrics_every {
            let every = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
            if self.now_ns >= self.metrics_ns.max(start).saturating_add(every) {
                self.metrics();
            }
        }
        SinkControl::Continue
    }

    fn flush(&mut self) -> SinkControl {
        self.out.flush_control()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        // the last figures (unless the last tick just sent them: two
        // points of a series with one time would read as a reset)
        if self.cfg.metrics_every.is_some()
            && (self.metrics_ns < self.now_ns || self.metrics_ns == 0)
        {
            self.metrics();
        }
        if self.untracked > 0 {
            log::warn!(
                "export: {} flows were past the OTLP exporter's memory; their bytes are in the metrics' 'other' series",
                self.untracked
            );
        }
        self.out.finish()
    }

    fn truncated(&self) -> u64 {
        self.attrs.truncated
    }

    fn dropped(&self) -> u64 {
        self.out.dropped_records + self.delivery.lost.load(Ordering::Relaxed)
    }

    fn reset(&mut self) {
        self.live.clear();
    }

    fn updates_every(&self) -> Option<Duration> {
        let mut every = None;
        if self.cfg.events.update {
            every = Some(self.cfg.update_every);
        }
        if let Some(m) = self.cfg.metrics_every {
            every = Some(every.map_or(m, |e: Duration| e.min(m)));
        }
        every.map(|e| (e / 2).max(Duration::from_secs(1)))
    }
}

#[cfg(test)]
mod tests;
