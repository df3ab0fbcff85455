//! The metrics' series: which label sets get a series of their own (within
//! `max_series`, and a share per uid), and what each has counted. The API's
//! live state fills them for `/metrics`; the OTLP exporter for its metrics.

use netwho_model::Payload;
use netwho_model::record::Names;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Which labels the traffic series carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Labels {
    /// Series by systemd unit (else container, else cgroup).
    pub unit: bool,
    /// Series by user.
    pub user: bool,
    /// Series by executable.
    pub exe: bool,
}

impl Default for Labels {
    fn default() -> Self {
        Labels {
            unit: true,
            user: true,
            exe: true,
        }
    }
}

impl Labels {
    /// From names like `["unit", "user"]`; an unknown name is an error
    /// that lists the known ones.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Labels, String> {
        let mut l = Labels {
            unit: false,
            user: false,
            exe: false,
        };
        for n in names {
            match n.as_ref() {
                "unit" => l.unit = true,
                "user" => l.user = true,
                "exe" => l.exe = true,
                other => {
                    return Err(format!(
                        "'{other}' is not a metric label: use unit, user and exe"
                    ));
                }
            }
        }
        Ok(l)
    }
}

/// A series' label values: unit (or container, or the cgroup), user, exe.
pub type Key = (Arc<str>, Arc<str>, Arc<str>);

/// What one series counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vals {
    /// Payload bytes sent.
    pub sent: u64,
    /// Payload bytes received.
    pub recv: u64,
    /// Flows opened.
    pub conns: u64,
}

/// Traffic per label set, bounded.
#[derive(Clone, Debug, Default)]
pub struct Series {
    max: usize,
    /// Series one uid's processes may create.
    per_uid: usize,
    labels: Labels,
    index: FxHashMap<Key, usize>,
    series: Vec<(Key, Vals)>,
    /// Series created for each uid.
    owned: FxHashMap<u32, usize>,
    other: Vals,
    /// Label sets that went to `other`.
    pub overflowed: u64,
    /// Of those, the ones refused because their uid had its share.
    pub overflowed_share: u64,
}

/// Where a process's traffic is counted (found once per process, so that
/// counting an event costs no lookup by label values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Its own series.
    Series(usize),
    /// The `other` series.
    Other,
}

/// A uid's share of the series when the configuration names none: a
/// quarter (so at least four users' processes are always named).
pub fn default_per_uid(max: usize) -> usize {
    (max / 4).max(1)
}

impl Series {
    /// At most `max` series, at most `per_uid` created for one uid.
    pub fn new(max: usize, per_uid: usize, labels: Labels) -> Series {
        Series {
            max,
            per_uid,
            labels,
            ..Series::default()
        }
    }

    fn key(&self, names: &Names, exe: &str) -> Key {
        let unit = if !names.unit.is_empty() {
            names.unit.as_str()
        } else if !names.container_id.is_empty() {
            names.container_id.as_str()
        } else {
            names.cgroup.as_str()
        };
        let pick =
            |on: bool, v: &str| -> Arc<str> { if on { Arc::from(v) } else { Arc::from("") } };
        (
            pick(self.labels.unit, unit),
            pick(self.labels.user, &names.user),
            pick(self.labels.exe, exe),
        )
    }

    /// The slot of a process of `uid` with these names and executable: its
    /// label set's series (made while fewer than `max` exist and `uid` has
    /// made fewer than its share), else `other`.
    pub fn slot(&mut self, uid: u32, names: &Names, exe: &str) -> Slot {
        let key = self.key(names, exe);
        if let Some(i) = self.index.get(&key) {
            return Slot::Series(*i);
        }
        let owned = self.owned.get(&uid).copied().unwrap_or(0);
        if self.series.len() >= self.max || owned >= self.per_uid {
            self.overflowed += 1;
            if owned >= self.per_uid {
                self.overflowed_share += 1;
            }
            return Slot::Other;
        }
        *self.owned.entry(uid).or_insert(0) += 1;
        let i = self.series.len();
        self.index.insert(key.clone(), i);
        self.series.push((key, Vals::default()));
        Slot::Series(i)
    }

    /// Count payload moved and connections opened in `slot`.
    pub fn add_at(&mut self, slot: Slot, d: Payload, conns: u64) {
        let v = match slot {
            Slot::Series(i) => match self.series.get_mut(i) {
                Some((_, v)) => v,
                None => &mut self.other,
            },
            Slot::Other => &mut self.other,
        };
        v.sent = v.sent.saturating_add(d.bytes_sent);
        v.recv = v.recv.saturating_add(d.bytes_recv);
        v.conns = v.conns.saturating_add(conns);
    }

    /// Count what a process of `uid` with these names and executable moved.
    pub fn add(&mut self, uid: u32, names: &Names, exe: &str, d: Payload, conns: u64) {
        let slot = self.slot(uid, names, exe);
        self.add_at(slot, d, conns);
    }

    /// Label sets with a series of their own (`other` not counted).
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// No label set has a series of its own yet.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Sent, received and connections over every series.
    pub fn total(&self) -> (u64, u64, u64) {
        self.series
            .iter()
            .map(|(_, v)| v)
            .chain(std::iter::once(&self.other))
            .fold((0, 0, 0), |(s, r, c), v| {
                (s + v.sent, r + v.recv, c + v.conns)
            })
    }

    /// Every series by its labels, then `other` (labelled `other`) if it
    /// counted anything.
    pub fn rows(&self) -> Vec<(Key, Vals)> {
        let mut v: Vec<(Key, Vals)> = self.series.clone();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        if self.other != Vals::default() {
            let o: Arc<str> = Arc::from("other");
            v.push(((o.clone(), o.clone(), o), self.other));
        }
        v
    }
}
