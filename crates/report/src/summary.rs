//! Reports kept with a recording: the recorder feeds every frame it writes
//! through the same decoder and [`Reporter`]s a report would use, and at
//! the clean end saves their groups as the recording's summary
//! (`netwho_store::recording::summary`). A report of a summarized kind with
//! no filter, window, interval or `--exclude-local` then starts from those
//! groups instead of decoding the recording: the same state a full reading
//! reaches, so the same answer.
//!
//! `top-procs` and `bytes` share one state (their groups and labels are
//! the same; `bytes` shows no command line); `by-user` and `by-unit` have
//! their own. Rather than hold more than [`MAX_HELD`] groups, distinct
//! values and open flows, the recorder gives up the report holding most
//! (then the next), and says so.

use crate::{Acc, Distinct, Key, ReportConfig, ReportKind, Reporter, Totals};
use netwho_model::ProcKey;
use netwho_model::time::WallClock;
use netwho_store::recording::{Decoder, Header, ReadStats, Summarizer, Visit};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// The kinds a summary keeps (`bytes` is read from `top-procs`' state).
const KEPT: [ReportKind; 3] = [ReportKind::TopProcs, ReportKind::ByUser, ReportKind::ByUnit];

/// Most groups, distinct values and open flows the recorder's reports hold
/// together before it gives up the summary (~100 MB at most).
pub const MAX_HELD: u64 = 1_000_000;

/// The summary's own version (its body; the envelope has its own).
const BODY_VERSION: u32 = 1;

/// Whether a report of `kind` with `cfg` can be made from a summary: a
/// kept kind over the whole recording, unfiltered.
pub fn covers(kind: ReportKind, cfg: &ReportConfig) -> bool {
    matches!(
        kind,
        ReportKind::TopProcs | ReportKind::Bytes | ReportKind::ByUser | ReportKind::ByUnit
    ) && cfg.filter.is_none()
        && cfg.since.is_none()
        && cfg.until.is_none()
        && cfg.interval_ns.is_none()
        && cfg.exclude_local.is_none()
        && !cfg.hosts
}

/// The recorder's side: every frame written, decoded into the kept
/// reports.
#[derive(Debug)]
pub struct RecordingSummarizer {
    decoder: Decoder,
    stats: ReadStats,
    reps: Vec<Reporter>,
    gave_up: Option<String>,
    /// Reports given up (their kind, why).
    left_out: Vec<(String, String)>,
    /// See [`MAX_HELD`].
    max_held: u64,
}

impl RecordingSummarizer {
    /// For the recording that starts with `header` (its clock and this
    /// host's addresses, as a reader takes them).
    pub fn new(header: &Header) -> Self {
        let local: HashSet<IpAddr> = header.local_addrs.iter().copied().collect();
        let reps = KEPT
            .iter()
            .map(|&k| Reporter::new(k, ReportConfig::default(), header.clock(), local.clone()))
            .collect();
        RecordingSummarizer {
            decoder: Decoder::new(),
            stats: ReadStats::default(),
            reps,
            gave_up: None,
            left_out: Vec::new(),
            max_held: MAX_HELD,
        }
    }

    /// Give up past `n` groups, values and open flows (at most
    /// [`MAX_HELD`]).
    #[must_use]
    pub fn held_at_most(mut self, n: u64) -> Self {
        self.max_held = n.min(MAX_HELD);
        self
    }
}

impl Summarizer for RecordingSummarizer {
    fn frame(&mut self, raw: &[u8]) {
        if self.gave_up.is_some() {
            return;
        }
        // (a reader counts a frame as it reads it, then decodes it)
        self.stats.frames += 1;
        let reps = &mut self.reps;
        self.decoder
            .frame_visit(raw, &mut self.stats, &mut |v| match v {
                Visit::Flow(r) => {
                    for rep in reps.iter_mut() {
                        rep.visit(Visit::Flow(r));
                    }
                }
                Visit::Item(it) => {
                    for rep in reps.iter_mut() {
                        rep.item(&it);
                    }
                }
            });
        // over the bound: the report holding most goes, the others stay
        // (many processes need not cost the by-user summary)
        let held = |r: &Reporter| r.held.saturating_add(r.flows.len() as u64);
        while self.reps.iter().map(held).sum::<u64>() > self.max_held {
            let Some((i, _)) = self.reps.iter().enumerate().max_by_key(|(_, r)| held(r)) else {
                break;
            };
            let r = self.reps.remove(i);
            self.left_out.push((
                r.kind.name().to_owned(),
                format!(
                    "the recorder gave it up: the reports would hold more than {} groups, \
                     values and open flows",
                    self.max_held
                ),
            ));
        }
        if self.reps.is_empty() {
            self.gave_up = Some(format!(
                "the reports would hold more than {} groups, values and open flows",
                self.max_held
            ));
            self.decoder = Decoder::new();
        }
    }

    fn left_out(&self) -> Vec<String> {
        self.left_out
            .iter()
            .map(|(kind, why)| format!("the summary keeps no {kind} report ({why})"))
            .collect()
    }

    fn finish(&mut self) -> Result<Vec<u8>, String> {
        if let Some(why) = &self.gave_up {
            return Err(why.clone());
        }
        let s = &self.stats;
        let body = Body {
            version: BODY_VERSION,
            stats: [
                s.frames,
                s.frames_corrupt,
                s.bytes_skipped,
                s.truncated_bytes,
                s.entries,
                s.entries_unknown,
                s.orphans,
            ],
            clean_end: s.clean_end,
            reports: self.reps.iter().map(saved).collect(),
            left_out: self.left_out.clone(),
        };
        postcard::to_allocvec(&body).map_err(|e| format!("encoding the summary: {e}"))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Body {
    version: u32,
    /// `ReadStats`' counts, in their order.
    stats: [u64; 7],
    clean_end: bool,
    reports: Vec<SavedReport>,
    /// Reports the recorder gave up: kind, why.
    left_out: Vec<(String, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedReport {
    kind: String,
    totals: [u64; 3],
    first: Option<i128>,
    last: Option<i128>,
    groups: Vec<SavedGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
enum SavedKey {
    Proc(u32, u64),
    User(u32),
    Unit(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedGroup {
    key: SavedKey,
    first: u64,
    sent: u64,
    recv: u64,
    flows: u64,
    labels: Vec<String>,
    cmdline: Vec<String>,
    a: (Vec<(String, u64)>, bool),
    b: (Vec<(String, u64)>, bool),
}

fn saved(r: &Reporter) -> SavedReport {
    let d = |d: &Distinct| {
        (
            d.items.iter().map(|(k, q)| (k.clone(), *q)).collect(),
            d.more,
        )
    };
    SavedReport {
        kind: r.kind.name().to_owned(),
        totals: [r.totals.sent, r.totals.recv, r.totals.flows],
        first: r.first,
        last: r.last,
        groups: r
            .groups
            .iter()
            .filter_map(|((_, key), acc)| {
                let key = match key {
                    Key::Proc(_, p) => SavedKey::Proc(p.tgid, p.start_ticks),
                    Key::User(u) => SavedKey::User(*u),
                    Key::Unit(u) => SavedKey::Unit(u.clone()),
                    // (not a kept kind's key)
                    _ => return None,
                };
                Some(SavedGroup {
                    key,
                    first: acc.first,
                    sent: acc.sent,
                    recv: acc.recv,
                    flows: acc.flows,
                    labels: acc.labels.clone(),
                    cmdline: acc.cmdline.clone(),
                    a: d(&acc.a),
                    b: d(&acc.b),
                })
            })
            .collect(),
    }
}

/// The report of `kind` with `cfg` (for which [`covers`] holds) that the
/// summary `body` keeps, ready to finish, and what reading the recording
/// would have counted; or why it cannot be made from it.
pub fn reporter(
    body: &[u8],
    kind: ReportKind,
    cfg: ReportConfig,
    wall: WallClock,
    local: HashSet<IpAddr>,
) -> Result<(Reporter, ReadStats), String> {
    let body: Body =
        postcard::from_bytes(body).map_err(|e| format!("the summary does not decode: {e}"))?;
    if body.version != BODY_VERSION {
        return Err(format!("the summary is of version {}", body.version));
    }
    let kept = if kind == ReportKind::Bytes {
        ReportKind::TopProcs
    } else {
        kind
    };
    if let Some((_, why)) = body.left_out.iter().find(|(k, _)| k == kept.name()) {
        return Err(format!(
            "the summary keeps no {} report ({why})",
            kept.name()
        ));
    }
    let saved = body
        .reports
        .into_iter()
        .find(|r| r.kind == kept.name())
        .ok_or_else(|| format!("the summary keeps no {} report", kept.name()))?;
    if saved.groups.len() as u64 > MAX_HELD {
        return Err("the summary holds too many groups".into());
    }
    let mut rep = Reporter::new(kind, cfg, wall, local);
    let host: Arc<str> = Arc::clone(&rep.host);
    for g in saved.groups {
        let key = match (kept, g.key) {
            (ReportKind::TopProcs, SavedKey::Proc(tgid, start_ticks)) => {
                Key::Proc(Arc::clone(&host), ProcKey { tgid, start_ticks })
            }
            (ReportKind::ByUser, SavedKey::User(u)) => Key::User(u),
            (ReportKind::ByUnit, SavedKey::Unit(u)) => Key::Unit(u),
            _ => {
                return Err(format!(
                    "the summary's {} groups are of another kind",
                    kept.name()
                ));
            }
        };
        let acc = Acc {
            first: g.first,
            sent: g.sent,
            recv: g.recv,
            flows: g.flows,
            labels: g.labels,
            cmdline: if kind == ReportKind::TopProcs {
                g.cmdline
            } else {
                Vec::new()
            },
            a: distinct(g.a)?,
            b: distinct(g.b)?,
            hosts: Distinct::default(),
        };
        if rep.groups.insert((0, key), acc).is_some() {
            return Err("the summary repeats a group".into());
        }
    }
    let [sent, recv, flows] = saved.totals;
    rep.totals = Totals { sent, recv, flows };
    rep.first = saved.first;
    rep.last = saved.last;
    let [
        frames,
        frames_corrupt,
        bytes_skipped,
        truncated_bytes,
        entries,
        entries_unknown,
        orphans,
    ] = body.stats;
    let stats = ReadStats {
        frames,
        frames_corrupt,
        bytes_skipped,
        truncated_bytes,
        entries,
        entries_unknown,
        orphans,
        clean_end: body.clean_end,
    };
    Ok((rep, stats))
}

fn distinct((items, more): (Vec<(String, u64)>, bool)) -> Result<Distinct, String> {
    if items.len() > crate::DISTINCT_MAX {
        return Err("the summary lists more values than a report keeps".into());
    }
    Ok(Distinct {
        items: items.into_iter().collect::<BTreeMap<_, _>>(),
        more,
    })
}
