//! Every screen, rendered by ratatui's TestBackend at 80×24 and 200×50,
//! from a fake collector with a manual clock: flow events go through the
//! real sink, its batches through the real model and UI state.
#![expect(
    clippy::expect_used,
    reason = "a test fails loudly on a broken fixture"
)]

use netwho_model::record::{Context, Names};
use netwho_model::time::WallClock;
use netwho_model::{
    CloseReason, Direction, Endpoint, Flow, FlowEvent, FlowKey, MonoNs, ProcInfo, ProcKey, Proto,
    TcpState,
};
use netwho_sink::{RecordRef, Sink};
use netwho_tui::TuiSink;
use netwho_tui::state::model::Model;
use netwho_tui::state::screen::{self, Body};
use netwho_tui::state::ui::{Action, Ui};
use netwho_tui::state::{Batch, ViewKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

const S: u64 = 1_000_000_000;

/// A collector that says what the test tells it, at the test's time.
struct Fake {
    sink: TuiSink,
    rx: Receiver<Batch>,
    model: Model,
    ui: Ui,
    now: MonoNs,
    wall: WallClock,
    names: HashMap<u32, Arc<Names>>,
    flows: HashMap<u64, Flow>,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a test address")
}

fn ep(s: &str, port: u16) -> Endpoint {
    Endpoint::new(ip(s), port)
}

fn names(user: &str, unit: &str) -> Arc<Names> {
    Arc::new(Names {
        user: user.into(),
        group: user.into(),
        cgroup: format!("/system.slice/{unit}"),
        unit: unit.into(),
        container_id: String::new(),
    })
}

impl Fake {
    fn new() -> Self {
        let (sink, rx) = TuiSink::new(Duration::from_secs(1));
        let mut f = Fake {
            sink,
            rx,
            model: Model::new(60 * S, None, Default::default()),
            ui: Ui::new(true, false),
            now: MonoNs(1000 * S),
            // 2026-11-23T10:00:00Z at boot + 1000 s
            wall: WallClock {
                boot_to_unix_ns: 1_795_428_000 * i128::from(S) - 1000 * i128::from(S),
            },
            names: HashMap::new(),
            flows: HashMap::new(),
        };
        f.names.insert(0, names("root", "ssh.service"));
        f.names.insert(33, names("www-data", "nginx.service"));
        f.names.insert(1000, names("alice", "session-3.scope"));
        f.names
            .insert(101, names("systemd-resolve", "systemd-resolved.service"));
        f
    }

    fn proc(
        &self,
        pid: u32,
        comm: &str,
        exe: &str,
        args: &[&str],
        uid: u32,
        parent: &Flow,
    ) -> Arc<ProcInfo> {
        let mut p = (*parent.proc).clone();
        p.key = ProcKey::from_start_ticks(pid, u64::from(pid) * 10);
        p.comm = comm.into();
        p.exe = exe.into();
        p.cmdline = args.iter().map(|s| (*s).to_string()).collect();
        p.uid = uid;
        Arc::new(p)
    }

    /// Open flow `id` of `proc` from `local` to `remote`.
    fn open(
        &mut self,
        id: u64,
        proc: Arc<ProcInfo>,
        local: Endpoint,
        remote: Endpoint,
        dir: Direction,
        proto: Proto,
    ) {
        let mut f = Flow::example(proc.key.tgid, id, remote);
        f.key = FlowKey {
            proc: proc.key,
            cookie: netwho_model::SockCookie(id),
            remote,
        };
        f.comm = proc.comm.clone();
        f.uid = proc.uid;
        f.proc = proc;
        f.local = local;
        f.direction = dir;
        f.proto = proto;
        f.tcp_state = (proto == Proto::Tcp).then_some(TcpState::Established);
        f.opened = self.now;
        self.send(FlowEvent::Opened(f.clone()));
        self.flows.insert(id, f);
    }

    fn bytes(&mut self, id: u64, sent: u64, recv: u64) {
        let Some(f) = self.flows.get_mut(&id) else {
            return;
        };
        f.payload.bytes_sent += sent;
        f.payload.bytes_recv += recv;
        f.wire.bytes_sent += sent + 52;
        f.wire.bytes_recv += recv + 52;
        let ev = FlowEvent::Updated(f.clone());
        self.send(ev);
    }

    fn close(&mut self, id: u64, reason: CloseReason) {
        let Some(mut f) = self.flows.remove(&id) else {
            return;
        };
        f.closed = Some(self.now);
        f.close_reason = Some(reason);
        self.send(FlowEvent::Closed(f));
    }

    fn send(&mut self, ev: FlowEvent) {
        let names = self.names.get(&ev.flow().uid).cloned().unwrap_or_default();
        let mut lookup = |_: &FlowEvent| Context {
            names: names.clone(),
            ..Context::default()
        };
        let mut rec = RecordRef::new(&ev, self.now, self.wall, &mut lookup);
        self.sink.event(&ev, &mut rec);
    }

    /// Time passes: the sink hands over its batch, the model folds it.
    fn tick(&mut self, secs: u64) {
        self.now = self.now.add_ns(secs * S);
        self.sink.tick(self.now, self.wall);
        while let Ok(b) = self.rx.try_recv() {
            self.model.apply(b);
        }
    }

    fn act(&mut self, a: Action) {
        self.ui.act(a, &mut self.model);
    }

    /// Render the current screen at `w`×`h`.
    fn screen(&mut self, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("a test terminal");
        // twice: the first frame tells the UI state which rows it shows
        for _ in 0..2 {
            let vs = screen::build(&self.model, &self.ui);
            let keys = match &vs.body {
                Body::Table(tv) => tv.keys.clone(),
                Body::Detail(_) => self.ui.shown.clone(),
            };
            let rows = match &vs.body {
                Body::Detail(d) => d.flows.keys.len(),
                Body::Table(_) => 0,
            };
            self.ui.page = netwho_tui::view::body_rows(h, vs.bar.is_some(), None);
            self.ui.shown(keys, rows);
            t.draw(|f| netwho_tui::view::render(f, &vs)).expect("drawn");
        }
        t
    }
}

/// A few minutes of a small server: alice's curl downloads, nginx serves
/// two clients, sshd has a session, a short-lived wget exits, the resolver
/// answers over UDP.
fn scenario() -> Fake {
    let mut f = Fake::new();
    let base = Flow::example(1, 1, ep("192.0.2.1", 1));
    let curl = f.proc(
        4242,
        "curl",
        "/usr/bin/curl",
        &["curl", "-sO", "https://mirror.example/big.iso"],
        1000,
        &base,
    );
    let nginx = f.proc(
        900,
        "nginx",
        "/usr/sbin/nginx",
        &["nginx: worker process"],
        33,
        &base,
    );
    let sshd = f.proc(
        700,
        "sshd",
        "/usr/sbin/sshd",
        &["sshd: alice [priv]"],
        0,
        &base,
    );
    let wget = f.proc(
        5151,
        "wget",
        "/usr/bin/wget",
        &["wget", "-q", "http://192.0.2.80/x"],
        1000,
        &base,
    );
    let resolved = f.proc(
        400,
        "systemd-resolve",
        "/usr/lib/systemd/systemd-resolved",
        &["/usr/lib/systemd/systemd-resolved"],
        101,
        &base,
    );
    let me = "192.0.2.10";
    f.open(
        1,
        curl.clone(),
        ep(me, 40000),
        ep("203.0.113.7", 443),
        Direction::Outbound,
        Proto::Tcp,
    );
    f.open(
        2,
        nginx.clone(),
        ep(me, 80),
        ep("198.51.100.20", 51000),
        Direction::Inbound,
        Proto::Tcp,
    );
    f.open(
        3,
        nginx.clone(),
        ep(me, 80),
        ep("198.51.100.21", 52000),
        Direction::Inbound,
        Proto::Tcp,
    );
    f.open(
        4,
        sshd.clone(),
        ep(me, 22),
        ep("198.51.100.20", 60000),
        Direction::Inbound,
        Proto::Tcp,
    );
    f.open(
        5,
        resolved.clone(),
        ep(me, 53),
        ep("2001:db8::53", 53),
        Direction::Outbound,
        Proto::Udp,
    );
    f.open(
        6,
        wget.clone(),
        ep(me, 41000),
        ep("192.0.2.80", 80),
        Direction::Outbound,
        Proto::Tcp,
    );
    f.model
        .dns
        .insert(ip("203.0.113.7"), "mirror.example".into());
    f.tick(1);
    for i in 0..60u64 {
        f.bytes(1, 200, 2_000_000 + i * 10_000);
        f.bytes(2, 50_000, 400);
        if i % 3 == 0 {
            f.bytes(3, 120_000, 800);
        }
        f.bytes(4, 300, 40);
        if i % 10 == 0 {
            f.bytes(5, 90, 300);
        }
        if i == 5 {
            f.bytes(6, 150, 48_000);
            f.close(6, CloseReason::ProcessExit);
        }
        f.tick(1);
    }
    f
}

fn snap(f: &mut Fake, name: &str) {
    for (w, h) in [(80, 24), (200, 50)] {
        let t = f.screen(w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

#[test]
fn every_view_at_both_sizes() {
    let mut f = scenario();
    for v in ViewKind::ALL {
        f.act(Action::View(v));
        snap(&mut f, &format!("view_{}", v.title().to_lowercase()));
    }
}

#[test]
fn drill_down_shows_the_process_its_parents_and_connections() {
    let mut f = scenario();
    f.screen(80, 24);
    // curl leads by rate; Enter opens it
    f.act(Action::Enter);
    let vs = screen::build(&f.model, &f.ui);
    let Body::Detail(d) = &vs.body else {
        panic!("a drill-down")
    };
    assert_eq!(d.title, "curl [4242]");
    let parents = d
        .facts
        .iter()
        .find(|(k, _)| *k == "parents")
        .map(|(_, v)| v.as_str());
    assert_eq!(parents, Some("bash[812] ← init[1]"));
    snap(&mut f, "detail_process");
    f.act(Action::Back);
    f.act(Action::View(ViewKind::Remotes));
    f.screen(80, 24);
    f.act(Action::Enter);
    snap(&mut f, "detail_remote");
}

#[test]
fn the_filter_bar_shows_errors_inline_and_narrows_the_rows() {
    let mut f = scenario();
    f.act(Action::OpenFilter);
    for c in "proc.nme = nginx".chars() {
        f.act(Action::Char(c));
    }
    snap(&mut f, "filter_error");
    let bar = f.ui.bar.clone().expect("the bar stays open");
    let (start, end, msg) = bar.error.expect("an unknown field");
    assert_eq!((start, end), (0, 8), "under `proc.nme`: {msg}");
    // mend it
    f.act(Action::LineStart);
    for _ in 0.."proc.n".len() {
        f.act(Action::Right);
    }
    f.act(Action::Char('a'));
    assert_eq!(f.ui.bar.as_ref().map(|b| b.error.is_none()), Some(true));
    f.act(Action::Apply);
    assert!(f.ui.bar.is_none(), "a valid filter closes the bar");
    let vs = screen::build(&f.model, &f.ui);
    let Body::Table(t) = &vs.body else {
        panic!("a table")
    };
    assert_eq!(t.rows.len(), 1, "only nginx is left");
    snap(&mut f, "filtered");
    // totals of the rows folded again from the flows held: nginx's bytes
    let a = f
        .model
        .rows(ViewKind::Processes)
        .values()
        .next()
        .expect("nginx");
    assert_eq!(a.total.bytes_sent, 60 * 50_000 + 20 * 120_000);
}

#[test]
fn exited_processes_stay_dimmed_then_go() {
    let mut f = scenario();
    let vs = screen::build(&f.model, &f.ui);
    let Body::Table(t) = &vs.body else {
        panic!("a table")
    };
    let wget = t
        .rows
        .iter()
        .find(|r| matches!(&r.cells[2], screen::Cell::Text(s) if s == "wget (exited)"))
        .expect("wget is still listed 55 s after it exited");
    assert!(wget.dim);
    f.tick(10);
    let vs = screen::build(&f.model, &f.ui);
    let Body::Table(t) = &vs.body else {
        panic!("a table")
    };
    assert_eq!(t.rows.len(), 4, "wget is gone after the keep time");
}

/// A new filter folds the rows again from the flows held: an exited
/// process stays marked and dimmed, and goes when it would have gone (a
/// new filter does not keep it another keep time).
#[test]
fn a_new_filter_keeps_exits_and_their_time() {
    let mut f = scenario();
    f.act(Action::OpenFilter);
    for c in "proc.name != sshd".chars() {
        f.act(Action::Char(c));
    }
    f.act(Action::Apply);
    assert!(f.ui.bar.is_none(), "a valid filter closes the bar");
    let wget = |f: &Fake| {
        let vs = screen::build(&f.model, &f.ui);
        let Body::Table(t) = &vs.body else {
            panic!("a table")
        };
        t.rows
            .iter()
            .find(|r| matches!(&r.cells[2], screen::Cell::Text(s) if s.starts_with("wget")))
            .map(|r| (r.cells[2].clone(), r.dim))
    };
    assert_eq!(
        wget(&f),
        Some((screen::Cell::Text("wget (exited)".into()), true)),
        "still marked after the new filter"
    );
    f.tick(10);
    assert_eq!(
        wget(&f),
        None,
        "gone after the keep time, as without the filter"
    );
}

#[test]
fn help_overlay_and_reset_columns() {
    let mut f = scenario();
    f.act(Action::Help);
    snap(&mut f, "help");
    f.act(Action::Down); // closes the help
    f.act(Action::Reset);
    f.tick(2);
    f.act(Action::Bits);
    snap(&mut f, "reset_bits");
}

/// A process names itself with terminal escapes and newlines, and its
/// unit too: every view and the drill-down show them escaped, never raw.
#[test]
fn hostile_names_are_shown_escaped_never_raw() {
    let mut f = Fake::new();
    let base = Flow::example(1, 1, ep("192.0.2.1", 1));
    f.names.insert(
        1000,
        names("alice", "x\u{1b}]0;pwned\u{7}\u{1b}[2J.service"),
    );
    let evil = f.proc(
        6666,
        "\u{1b}[31mroot\nsshd",
        "/tmp/\u{1b}[1Aevil",
        &["sh", "-c", "\u{1b}[H\u{1b}[2Jfake root login\r\n"],
        1000,
        &base,
    );
    f.open(
        1,
        evil,
        ep("192.0.2.10", 41000),
        ep("203.0.113.9", 443),
        Direction::Outbound,
        Proto::Tcp,
    );
    f.bytes(1, 100, 200);
    f.tick(1);
    let mut seen = 0;
    for view in ViewKind::ALL {
        f.act(Action::View(view));
        for drill in [false, true] {
            if drill {
                f.act(Action::Enter);
            }
            let t = f.screen(200, 50);
            let text: String = t
                .backend()
                .buffer()
                .content()
                .iter()
                .map(|c| c.symbol())
                .collect();
            assert!(
                !text.chars().any(|c| c.is_control()),
                "view {view:?}, drill-down {drill}: a control character on screen"
            );
            seen += usize::from(text.contains("\\u{1b}"));
            if drill {
                f.act(Action::Back);
            }
        }
    }
    assert!(seen >= 7, "the escapes are shown visibly ({seen} screens)");
}

/// Rows of what the daemon's alerts name (`top --connect`) are marked:
/// the process by its pid and start (another process with the same pid is
/// not), and its program's row.
#[test]
fn rows_that_alerted_are_marked() {
    let mut f = scenario();
    let names = |f: &mut Fake, view: ViewKind| {
        f.act(Action::View(view));
        let vs = screen::build(&f.model, &f.ui);
        let Body::Table(t) = &vs.body else {
            panic!("a table")
        };
        let i = t
            .columns
            .iter()
            .position(|c| c.title == "PROCESS" || c.title == "PROGRAM")
            .expect("a name column");
        t.rows
            .iter()
            .filter_map(|r| match &r.cells[i] {
                screen::Cell::Text(s) => Some(s.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(
        names(&mut f, ViewKind::Processes)
            .iter()
            .all(|n| !n.starts_with("! "))
    );
    f.model
        .alerted
        .procs
        .insert(ProcKey::from_start_ticks(4242, 42_420));
    // nginx's pid, another process (another start): not marked
    f.model
        .alerted
        .procs
        .insert(ProcKey::from_start_ticks(900, 1));
    f.model.alerted.programs.insert(Arc::from("/usr/bin/curl"));
    let procs = names(&mut f, ViewKind::Processes);
    assert_eq!(
        procs
            .iter()
            .filter(|n| n.starts_with("! "))
            .collect::<Vec<_>>(),
        vec!["! curl"],
        "{procs:?}"
    );
    let progs = names(&mut f, ViewKind::Programs);
    assert_eq!(
        progs
            .iter()
            .filter(|n| n.starts_with("! "))
            .collect::<Vec<_>>(),
        vec!["! /usr/bin/curl"],
        "{progs:?}"
    );
}
