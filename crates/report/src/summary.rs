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

use crate::{Acc, DISTINCT_MAX, Key, ReportConfig, ReportKind, Reporter, Totals};
use netwho_model::ProcKey;
use netwho_model::time::WallClock;
use netwho_store::recording::{Decoder, Header, ReadStats, Summarizer, Visit};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
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
        let body = Body {
            version: BODY_VERSION,
            stats: self.stats.clone(),
            reports: self.reps.iter().map(saved).collect(),
            left_out: self.left_out.clone(),
        };
        postcard::to_allocvec(&body).map_err(|e| format!("encoding the summary: {e}"))
    }
}

/// The summary's body: `A` is `&Acc` when it is written, `Acc` when read
/// (the same bytes).
#[derive(Debug, Serialize, Deserialize)]
struct Body<A> {
    version: u32,
    /// What a reader of the recording counts.
    stats: ReadStats,
    reports: Vec<SavedReport<A>>,
    /// Reports the recorder gave up: kind, why.
    left_out: Vec<(String, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedReport<A> {
    kind: String,
    totals: [u64; 3],
    first: Option<i128>,
    last: Option<i128>,
    groups: Vec<(SavedKey, A)>,
}

#[derive(Debug, Serialize, Deserialize)]
enum SavedKey {
    Proc(u32, u64),
    User(u32),
    Unit(String),
}

fn saved(r: &Reporter) -> SavedReport<&Acc> {
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
                Some((key, acc))
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
    let body: Body<Acc> =
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
    for (key, mut acc) in saved.groups {
        let key = match (kept, key) {
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
        if acc.a.items.len() > DISTINCT_MAX || acc.b.items.len() > DISTINCT_MAX {
            return Err("the summary lists more values than a report keeps".into());
        }
        if kind == ReportKind::Bytes {
            acc.cmdline = Vec::new();
        }
        if rep.groups.insert((0, key), acc).is_some() {
            return Err("the summary repeats a group".into());
        }
    }
    let [sent, recv, flows] = saved.totals;
    rep.totals = Totals { sent, recv, flows };
    rep.first = saved.first;
    rep.last = saved.last;
    let stats = body.stats;
    Ok((rep, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(groups: Vec<(SavedKey, Acc)>, version: u32, left_out: &[&str]) -> Vec<u8> {
        let b = Body {
            version,
            stats: ReadStats::default(),
            reports: vec![SavedReport {
                kind: "by-user".to_owned(),
                totals: [1, 2, 3],
                first: Some(5),
                last: Some(9),
                groups,
            }],
            left_out: left_out
                .iter()
                .map(|k| ((*k).to_owned(), "too much".to_owned()))
                .collect(),
        };
        postcard::to_allocvec(&b).unwrap()
    }

    fn load(b: &[u8], kind: ReportKind) -> Result<Reporter, String> {
        let wall = WallClock { boot_to_unix_ns: 0 };
        reporter(b, kind, ReportConfig::default(), wall, HashSet::new()).map(|(r, _)| r)
    }

    /// A summary is input: groups of another kind, repeated groups, lists
    /// longer than a report keeps, another version, a report the recorder
    /// gave up, or bytes that are no summary are refused with a reason
    /// (the report then decodes the recording).
    #[test]
    fn a_crafted_summary_body_is_refused() {
        let user = |u| (SavedKey::User(u), Acc::default());
        let ok = body(vec![user(1), user(2)], BODY_VERSION, &[]);
        let r = load(&ok, ReportKind::ByUser).unwrap();
        assert_eq!((r.groups.len(), r.totals.flows, r.last), (2, 3, Some(9)));
        let refused = |b: &[u8], kind, why: &str| {
            let e = load(b, kind).unwrap_err();
            assert!(e.contains(why), "{e}");
        };
        refused(&ok, ReportKind::ByUnit, "keeps no by-unit");
        refused(&ok, ReportKind::TopProcs, "keeps no top-procs");
        let other = body(vec![(SavedKey::Unit("x".into()), Acc::default())], 1, &[]);
        refused(&other, ReportKind::ByUser, "another kind");
        refused(
            &body(vec![user(1), user(1)], 1, &[]),
            ReportKind::ByUser,
            "repeats",
        );
        let mut long = Acc::default();
        for i in 0..=DISTINCT_MAX {
            long.b.items.insert(i.to_string(), i as u64);
        }
        let long = body(vec![(SavedKey::User(1), long)], 1, &[]);
        refused(&long, ReportKind::ByUser, "more values");
        refused(
            &body(vec![user(1)], 2, &[]),
            ReportKind::ByUser,
            "version 2",
        );
        let given_up = body(vec![], 1, &["by-user"]);
        refused(&given_up, ReportKind::ByUser, "too much");
        refused(
            b"\xff\xff\xff\xff\xff",
            ReportKind::ByUser,
            "does not decode",
        );
        refused(&ok[..ok.len() / 2], ReportKind::ByUser, "does not decode");
    }
}
