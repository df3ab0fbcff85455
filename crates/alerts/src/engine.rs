//! The baselines and the decision: pure, time is an argument.
//!
//! A **program** is an executable path (or, with `program = "unit"`, the
//! systemd unit, falling back to the path). Its baseline is the hashes its
//! executable has had and the **destinations** it has used: (protocol,
//! remote name, remote port) of its outbound flows, the name being the
//! remote's address until names are known. Inbound flows make a program
//! seen but add no destination (a server's clients are not its choice).
//!
//! Until the learning period ends everything is learned silently. After
//! it, a program not seen before raises `new_program` (naming its first
//! destination), a known program with a destination not seen before
//! raises `new_destination`, and a known program whose executable has a
//! hash not seen before raises `exe_changed`. What raised an alert joins
//! the baseline at once, so each is raised once. Flows an allow rule
//! matches never raise (they still learn).
//!
//! Memory is bounded (programs, destinations per program and in all,
//! hashes per program). A program or destination that does not fit is not
//! learned: it fails closed (it raises, after learning; counted as
//! `unlearned`), and the alerts' rate is bounded (the rest counted as
//! `suppressed`), so a local user who makes many programs or destinations
//! can neither hide a new one nor flood the alerts' readers.

use netwho_model::Proto;
use netwho_store::history::{BaselineChange, BaselineProgram};
use rustc_hash::{FxHashMap, FxHashSet};

/// What an alert says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A known program used a destination it never used.
    NewDestination,
    /// A program never seen on the network did network I/O.
    NewProgram,
    /// A known program's executable has a hash never seen.
    ExeChanged,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::NewDestination, Kind::NewProgram, Kind::ExeChanged];

    /// The name records carry.
    pub fn name(self) -> &'static str {
        match self {
            Kind::NewDestination => "new_destination",
            Kind::NewProgram => "new_program",
            Kind::ExeChanged => "exe_changed",
        }
    }

    /// Its index in [`Kind::ALL`].
    pub fn index(self) -> usize {
        match self {
            Kind::NewDestination => 0,
            Kind::NewProgram => 1,
            Kind::ExeChanged => 2,
        }
    }
}

/// A destination: protocol, the remote's name (its address until names
/// are known) and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dest {
    /// The protocol.
    pub proto: Proto,
    /// The remote's name or address.
    pub name: Box<str>,
    /// The remote port.
    pub port: u16,
}

/// One flow event as the baselines see it.
#[derive(Clone, Debug)]
pub struct Seen<'a> {
    /// The program (executable path or unit).
    pub program: &'a str,
    /// Its executable's SHA-256 (hex), when known yet.
    pub sha256: Option<&'a str>,
    /// Its destination, for an outbound flow.
    pub dest: Option<Dest>,
    /// An allow rule matches the flow.
    pub allowed: bool,
}

/// An alert the engine raised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raised {
    /// What happened.
    pub kind: Kind,
    /// For `exe_changed`: the hashes known before (the newest last).
    pub known: Vec<String>,
    /// It did not fit in the baseline: it may be raised again.
    pub unlearned: bool,
}

/// Bounds on memory and on the alerts' rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Programs in the baseline.
    pub programs: usize,
    /// Destinations of one program.
    pub dests_per_program: usize,
    /// Destinations in all.
    pub dests: usize,
    /// Hashes one program keeps (the oldest go).
    pub hashes_per_program: usize,
    /// Alerts raised per minute at most (the rest are counted).
    pub per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            programs: 10_000,
            dests_per_program: 4_096,
            dests: 262_144,
            hashes_per_program: 16,
            per_minute: 120,
        }
    }
}

/// What the engine counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Alerts raised, by [`Kind::index`].
    pub raised: [u64; 3],
    /// Flows an allow rule kept from raising.
    pub allowed: u64,
    /// Alerts over the rate bound (their cause was learned).
    pub suppressed: u64,
    /// Programs, destinations or hashes that did not fit.
    pub unlearned: u64,
}

#[derive(Debug, Default)]
struct Prog {
    hashes: Vec<Box<str>>,
    dests: FxHashSet<Dest>,
}

/// The baselines and what they decide.
#[derive(Debug)]
pub struct Engine {
    programs: FxHashMap<Box<str>, Prog>,
    dests: usize,
    limits: Limits,
    learn_until_ns: i64,
    changes: Vec<BaselineChange>,
    counts: Counts,
    /// (minute it counts, alerts raised in it).
    window: (i64, u32),
}

const MINUTE_NS: i64 = 60_000_000_000;

impl Engine {
    /// Empty baselines; learning until `learn_until_ns` (Unix ns).
    pub fn new(limits: Limits, learn_until_ns: i64) -> Engine {
        Engine {
            programs: FxHashMap::default(),
            dests: 0,
            limits,
            learn_until_ns,
            changes: Vec::new(),
            counts: Counts::default(),
            window: (0, 0),
        }
    }

    /// The baselines as stored (bounded like everything learned; nothing
    /// to write back).
    pub fn load(&mut self, stored: Vec<BaselineProgram>) {
        let l = self.limits;
        for p in stored {
            if self.program(&p.key).is_none() {
                break;
            }
            let mut total = self.dests;
            if let Some(prog) = self.programs.get_mut(p.key.as_str()) {
                for h in p.hashes {
                    add_hash(prog, &h, l.hashes_per_program);
                }
                for (proto, name, port) in p.dests {
                    if prog.dests.len() >= l.dests_per_program || total >= l.dests {
                        break;
                    }
                    if prog.dests.insert(Dest {
                        proto,
                        name: name.into(),
                        port,
                    }) {
                        total += 1;
                    }
                }
            }
            self.dests = total;
        }
    }

    /// Learns `changes` (what the history already holds) silently; they
    /// are written to the baseline with the engine's next changes.
    pub fn seed(&mut self, changes: Vec<BaselineChange>) {
        for c in changes {
            let ok = match &c {
                BaselineChange::Program { key, .. } => self.program(key).is_some(),
                BaselineChange::Hash { key, sha256, .. } => {
                    let max = self.limits.hashes_per_program;
                    self.program(key).is_some_and(|p| add_hash(p, sha256, max))
                }
                BaselineChange::Dest {
                    key,
                    proto,
                    name,
                    port,
                    ..
                } => {
                    let d = Dest {
                        proto: *proto,
                        name: name.as_str().into(),
                        port: *port,
                    };
                    self.learn_dest(key, d) == Some(true)
                }
            };
            if ok {
                self.changes.push(c);
            }
        }
    }

    /// The program's baseline, made if it fits.
    fn program(&mut self, key: &str) -> Option<&mut Prog> {
        if !self.programs.contains_key(key) {
            if self.programs.len() >= self.limits.programs {
                return None;
            }
            self.programs.insert(key.into(), Prog::default());
        }
        self.programs.get_mut(key)
    }

    /// Adds a destination: Some(true) if new and learned, Some(false) if
    /// known, None if it did not fit.
    fn learn_dest(&mut self, key: &str, d: Dest) -> Option<bool> {
        let (max_per, max_all, total) =
            (self.limits.dests_per_program, self.limits.dests, self.dests);
        let p = self.program(key)?;
        if p.dests.contains(&d) {
            return Some(false);
        }
        if p.dests.len() >= max_per || total >= max_all {
            return None;
        }
        p.dests.insert(d);
        self.dests += 1;
        Some(true)
    }

    /// Whether `program` is known and `sha256` is not among its hashes
    /// (a hash that came after a flow's open: worth judging).
    pub fn hash_is_new(&self, program: &str, sha256: &str) -> bool {
        self.programs
            .get(program)
            .is_some_and(|p| !p.hashes.iter().any(|k| &**k == sha256))
    }

    /// Whether `now_ns` is still in the learning period.
    pub fn learning(&self, now_ns: i64) -> bool {
        now_ns < self.learn_until_ns
    }

    /// When learning ends (Unix ns).
    pub fn learn_until_ns(&self) -> i64 {
        self.learn_until_ns
    }

    /// Programs and destinations known.
    pub fn size(&self) -> (usize, usize) {
        (self.programs.len(), self.dests)
    }

    /// What was counted so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// What was learned since the last call, to be written.
    pub fn take_changes(&mut self) -> Vec<BaselineChange> {
        std::mem::take(&mut self.changes)
    }

    /// One flow event at `now_ns`: learns it; after learning, what it
    /// raises (at most two alerts: a new program, or a changed executable
    /// and a new destination).
    pub fn observe(&mut self, s: &Seen<'_>, now_ns: i64) -> Vec<Raised> {
        // the steady state first: a known program, its hash and
        // destination known (one lookup, nothing allocated)
        if let Some(p) = self.programs.get(s.program)
            && s.sha256.is_none_or(|h| p.hashes.iter().any(|k| &**k == h))
            && s.dest.as_ref().is_none_or(|d| p.dests.contains(d))
        {
            return Vec::new();
        }
        let judging = !self.learning(now_ns);
        let mut would: Vec<Raised> = Vec::new();
        let known = self.programs.contains_key(s.program);
        if !known {
            let fits = self.program(s.program).is_some();
            if fits {
                self.changes.push(BaselineChange::Program {
                    key: s.program.to_owned(),
                    first_ns: now_ns,
                });
                self.learn_hash(s, now_ns);
                if let Some(d) = &s.dest
                    && self.learn_dest(s.program, d.clone()) == Some(true)
                {
                    self.push_dest(s.program, d, now_ns);
                }
            } else {
                self.counts.unlearned += 1;
            }
            would.push(Raised {
                kind: Kind::NewProgram,
                known: Vec::new(),
                unlearned: !fits,
            });
        } else {
            if let Some(h) = s.sha256 {
                let before: Vec<String> = self
                    .programs
                    .get(s.program)
                    .map(|p| p.hashes.iter().map(|h| h.to_string()).collect())
                    .unwrap_or_default();
                if !before.iter().any(|b| b == h) {
                    self.learn_hash(s, now_ns);
                    // the first hash a program shows is learned, not judged
                    if !before.is_empty() {
                        would.push(Raised {
                            kind: Kind::ExeChanged,
                            known: before,
                            unlearned: false,
                        });
                    }
                }
            }
            if let Some(d) = &s.dest {
                match self.learn_dest(s.program, d.clone()) {
                    Some(false) => {}
                    Some(true) => {
                        self.push_dest(s.program, d, now_ns);
                        would.push(Raised {
                            kind: Kind::NewDestination,
                            known: Vec::new(),
                            unlearned: false,
                        });
                    }
                    None => {
                        self.counts.unlearned += 1;
                        would.push(Raised {
                            kind: Kind::NewDestination,
                            known: Vec::new(),
                            unlearned: true,
                        });
                    }
                }
            }
        }
        if !judging || would.is_empty() {
            return Vec::new();
        }
        if s.allowed {
            self.counts.allowed += 1;
            return Vec::new();
        }
        let minute = now_ns.div_euclid(MINUTE_NS);
        if self.window.0 != minute {
            self.window = (minute, 0);
        }
        let mut out = Vec::with_capacity(would.len());
        for r in would {
            if self.window.1 >= self.limits.per_minute {
                self.counts.suppressed += 1;
                continue;
            }
            self.window.1 += 1;
            self.counts.raised[r.kind.index()] += 1;
            out.push(r);
        }
        out
    }

    fn learn_hash(&mut self, s: &Seen<'_>, now_ns: i64) {
        let Some(h) = s.sha256 else { return };
        let max = self.limits.hashes_per_program;
        if let Some(p) = self.programs.get_mut(s.program)
            && add_hash(p, h, max)
        {
            self.changes.push(BaselineChange::Hash {
                key: s.program.to_owned(),
                sha256: h.to_owned(),
                first_ns: now_ns,
            });
        }
    }

    fn push_dest(&mut self, key: &str, d: &Dest, now_ns: i64) {
        self.changes.push(BaselineChange::Dest {
            key: key.to_owned(),
            proto: d.proto,
            name: d.name.to_string(),
            port: d.port,
            first_ns: now_ns,
        });
    }
}

/// Adds a hash (the oldest goes past `max`); whether it was new.
fn add_hash(p: &mut Prog, h: &str, max: usize) -> bool {
    if p.hashes.iter().any(|k| &**k == h) {
        return false;
    }
    if p.hashes.len() >= max.max(1) {
        p.hashes.remove(0);
    }
    p.hashes.push(h.into());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn dest(port: u16) -> Option<Dest> {
        Some(Dest {
            proto: Proto::Tcp,
            name: "10.231.0.2".into(),
            port,
        })
    }

    fn seen<'a>(program: &'a str, sha: Option<&'a str>, port: Option<u16>) -> Seen<'a> {
        Seen {
            program,
            sha256: sha,
            dest: port.and_then(dest),
            allowed: false,
        }
    }

    fn kinds(r: &[Raised]) -> Vec<&'static str> {
        r.iter().map(|r| r.kind.name()).collect()
    }

    #[test]
    fn learning_is_silent_then_each_new_thing_alerts_once() {
        let mut e = Engine::new(Limits::default(), 100 * S);
        assert!(
            e.observe(&seen("/usr/bin/curl", Some("aa"), Some(443)), S)
                .is_empty()
        );
        assert!(
            e.observe(&seen("/usr/sbin/sshd", Some("bb"), None), 2 * S)
                .is_empty()
        );
        // after learning: known things say nothing
        assert!(
            e.observe(&seen("/usr/bin/curl", Some("aa"), Some(443)), 200 * S)
                .is_empty()
        );
        assert_eq!(
            kinds(&e.observe(&seen("/usr/bin/curl", Some("aa"), Some(8443)), 201 * S)),
            vec!["new_destination"]
        );
        assert!(
            e.observe(&seen("/usr/bin/curl", Some("aa"), Some(8443)), 202 * S)
                .is_empty()
        );
        // a new program: one alert, whatever else is new about it
        assert_eq!(
            kinds(&e.observe(&seen("/tmp/x", None, Some(9)), 203 * S)),
            vec!["new_program"]
        );
        assert!(
            e.observe(&seen("/tmp/x", None, Some(9)), 204 * S)
                .is_empty()
        );
        // its first hash (known late) is learned, not judged
        assert!(
            e.observe(&seen("/tmp/x", Some("cc"), Some(9)), 205 * S)
                .is_empty()
        );
        // a changed binary, with a new destination
        let r = e.observe(&seen("/usr/bin/curl", Some("dd"), Some(22)), 206 * S);
        assert_eq!(kinds(&r), vec!["exe_changed", "new_destination"]);
        assert_eq!(r[0].known, vec!["aa".to_string()]);
        assert!(
            e.observe(&seen("/usr/bin/curl", Some("dd"), Some(22)), 207 * S)
                .is_empty()
        );
        // the old binary back is known
        assert!(
            e.observe(&seen("/usr/bin/curl", Some("aa"), Some(22)), 208 * S)
                .is_empty()
        );
        assert_eq!(e.counts().raised, [2, 1, 1]);
    }

    #[test]
    fn allowed_flows_learn_but_do_not_alert() {
        let mut e = Engine::new(Limits::default(), 0);
        e.observe(&seen("/usr/bin/apt", Some("aa"), Some(80)), S);
        let mut s = seen("/usr/bin/apt", Some("aa"), Some(443));
        s.allowed = true;
        assert!(e.observe(&s, 2 * S).is_empty());
        assert_eq!(e.counts().allowed, 1);
        // learned: not an alert later either
        assert!(
            e.observe(&seen("/usr/bin/apt", Some("aa"), Some(443)), 3 * S)
                .is_empty()
        );
    }

    #[test]
    fn a_stored_baseline_and_a_seed_are_known() {
        let mut e = Engine::new(Limits::default(), 0);
        e.load(vec![BaselineProgram {
            key: "/a".into(),
            first_ns: 1,
            hashes: vec!["aa".into()],
            dests: vec![(Proto::Tcp, "10.231.0.2".into(), 80)],
        }]);
        e.seed(vec![BaselineChange::Dest {
            key: "/b".into(),
            proto: Proto::Tcp,
            name: "10.231.0.2".into(),
            port: 81,
            first_ns: 1,
        }]);
        assert_eq!(e.take_changes().len(), 1, "only the seed is written");
        assert!(e.observe(&seen("/a", Some("aa"), Some(80)), S).is_empty());
        assert!(e.observe(&seen("/b", None, Some(81)), S).is_empty());
        assert_eq!(
            kinds(&e.observe(&seen("/b", None, Some(82)), S)),
            vec!["new_destination"]
        );
        let c = e.take_changes();
        assert_eq!(c.len(), 1, "{c:?}");
    }

    /// A user who makes thousands of programs and destinations cannot
    /// grow the baseline past its bounds, nor hide what does not fit: it
    /// still alerts (at the bounded rate), counted.
    #[test]
    fn hostile_floods_are_bounded_fail_closed_and_counted() {
        let limits = Limits {
            programs: 10,
            dests_per_program: 5,
            dests: 20,
            hashes_per_program: 2,
            per_minute: 7,
        };
        let mut e = Engine::new(limits, 0);
        let mut raised = 0;
        for i in 0..1000u16 {
            let p = format!("/tmp/p{}", i % 50);
            raised += e.observe(&seen(&p, None, Some(i)), S).len();
        }
        let (progs, dests) = e.size();
        assert!(progs <= 10 && dests <= 20, "{progs} {dests}");
        assert_eq!(raised, 7, "the rate bound");
        let c = e.counts();
        assert!(c.unlearned > 900, "{c:?}");
        assert_eq!(c.suppressed + 7, 1000, "{c:?}");
        // the next minute alerts again: what did not fit is never silent
        let r = e.observe(&seen("/tmp/p49", None, Some(1)), 61 * S);
        assert_eq!(kinds(&r), vec!["new_program"]);
        assert!(r[0].unlearned);
        // hashes per program are bounded (the oldest go)
        for h in ["a", "b", "c", "d"] {
            e.observe(&seen("/tmp/p0", Some(h), None), 120 * S);
        }
        assert_eq!(e.programs.get("/tmp/p0").map(|p| p.hashes.len()), Some(2));
    }
}
