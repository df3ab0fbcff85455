//! Reports over hand-made items: bytes as counter differences at their
//! times, windows, intervals, Internet-only accounting, the chisels.

use super::local::LocalNets;
use super::table::Cell;
use super::*;
use netwho_model::record::Names;
use netwho_model::{
    Capture, CaptureDir, CapturePiece, CloseReason, Endpoint, FlowEvent, MonoNs, ProcKey,
};
use netwho_store::history::History;
use std::sync::Arc;

const S: u64 = 1_000_000_000;
/// Unix time of boot time 0 (2023-11-14T22:13:20Z).
const BOOT: i128 = 1_700_000_000 * S as i128;

fn ctx(user: &str, unit: &str) -> Context {
    Context {
        names: Arc::new(Names {
            user: user.into(),
            unit: unit.into(),
            ..Names::default()
        }),
        ..Context::default()
    }
}

/// alice's curl to 93.184.216.34:443 and root's sshd serving 10.0.0.5.
fn items() -> Vec<Item> {
    let mut v = Vec::new();
    let mut push = |ev: FlowEvent, c: &Context, at: f64, is_final: bool| {
        v.push(Item::Flow(Box::new(FlowItem {
            ev,
            ctx: c.clone(),
            at: MonoNs((at * S as f64) as u64),
            is_final,
        })));
    };
    let alice = ctx("alice", "session-2.scope");
    let root = ctx("root", "ssh.service");
    let mut a = Flow::example(10, 1, Endpoint::new([93, 184, 216, 34].into(), 443));
    let mut b = Flow::example(11, 2, Endpoint::new([10, 0, 0, 5].into(), 50000));
    b.key.proc = ProcKey::from_start_ticks(11, 7);
    b.direction = Direction::Inbound;
    b.local.port = 22;
    b.comm = "sshd".into();
    b.uid = 0;
    push(FlowEvent::Opened(a.clone()), &alice, 1.0, false);
    push(FlowEvent::Opened(b.clone()), &root, 1.0, false);
    a.payload.bytes_sent = 100;
    push(FlowEvent::Updated(a.clone()), &alice, 2.5, false);
    a.payload.bytes_sent = 300;
    a.payload.bytes_recv = 50;
    a.closed = Some(MonoNs(8 * S));
    a.close_reason = Some(CloseReason::SocketClosed);
    let mut cap = Capture::default();
    for (dir, offset, data) in [
        (CaptureDir::Sent, 4, &b"/ HTTP/1.1\r\n\x01"[..]),
        (CaptureDir::Sent, 0, b"GET "),
        (CaptureDir::Recv, 0, b"HTTP/1.1 200 OK\r\n"),
    ] {
        cap.add(CapturePiece {
            dir,
            offset,
            data: data.to_vec(),
        });
    }
    a.capture = Some(Arc::new(cap));
    push(FlowEvent::Closed(a), &alice, 4.5, false);
    b.payload.bytes_recv = 1000;
    push(FlowEvent::Updated(b), &root, 5.0, true);
    v
}

/// A reporter over items recorded on a host booted at `BOOT`.
fn reporter(kind: ReportKind, cfg: ReportConfig) -> Reporter {
    Reporter::new(
        kind,
        cfg,
        WallClock {
            boot_to_unix_ns: BOOT,
        },
        HashSet::new(),
    )
}

/// `kind` over `items`: its table and totals.
fn run_items(kind: ReportKind, cfg: ReportConfig, items: &[Item]) -> (Table, Totals) {
    let mut r = reporter(kind, cfg);
    for it in items {
        r.item(it);
    }
    let totals = r.totals;
    (r.finish().unwrap(), totals)
}

fn run(kind: ReportKind, cfg: ReportConfig) -> (Table, Totals) {
    run_items(kind, cfg, &items())
}

fn col(t: &Table, name: &str) -> Vec<Cell> {
    let i = t.columns.iter().position(|c| c.0 == name).unwrap();
    t.rows.iter().map(|r| r[i].clone()).collect()
}

fn nums(t: &Table, name: &str) -> Vec<u64> {
    col(t, name)
        .into_iter()
        .map(|c| match c {
            Cell::Num(n) => n,
            other => panic!("{name} is not a number: {other:?}"),
        })
        .collect()
}

/// A column as a text table shows it (payload as it is).
fn texts(t: &Table, name: &str) -> Vec<String> {
    let i = t.columns.iter().position(|c| c.0 == name).unwrap();
    col(t, name)
        .into_iter()
        .map(|c| match c {
            Cell::Num(n) => n.to_string(),
            Cell::Data(b) => String::from_utf8_lossy(&b).into_owned(),
            c => t.text_cell(i, &c),
        })
        .collect()
}

#[test]
fn top_procs_orders_by_total_bytes() {
    let (t, totals) = run(ReportKind::TopProcs, ReportConfig::default());
    assert_eq!(nums(&t, "PID"), vec![11, 10]);
    assert_eq!(nums(&t, "TOTAL"), vec![1000, 350]);
    assert_eq!(nums(&t, "FLOWS"), vec![1, 1]);
    assert_eq!(texts(&t, "COMM"), vec!["sshd", "curl"]);
    assert_eq!(
        totals,
        Totals {
            sent: 300,
            recv: 1050,
            flows: 2
        }
    );
}

#[test]
fn a_window_counts_the_bytes_recorded_in_it() {
    let cfg = ReportConfig {
        since: Some(BOOT + 3 * S as i128),
        ..ReportConfig::default()
    };
    let (t, _) = run(ReportKind::ByUser, cfg);
    assert_eq!(texts(&t, "USER"), vec!["root", "alice"]);
    // alice: the 200 sent and 50 received recorded at 4.5 s, not the 100 at 2.5 s
    assert_eq!(nums(&t, "SENT"), vec![0, 200]);
    assert_eq!(nums(&t, "RECV"), vec![1000, 50]);
    let cfg = ReportConfig {
        until: Some(BOOT + 3 * S as i128),
        ..ReportConfig::default()
    };
    let (t, totals) = run(ReportKind::ByUser, cfg);
    assert_eq!(nums(&t, "SENT"), vec![100, 0]);
    assert_eq!(totals.sent + totals.recv, 100);
}

#[test]
fn internet_accounting_per_user_and_interval() {
    let cfg = ReportConfig {
        exclude_local: Some(LocalNets::default()),
        interval_ns: Some(2 * S),
        ..ReportConfig::default()
    };
    let (t, totals) = run(ReportKind::ByUser, cfg);
    // root's sshd peer 10.0.0.5 is local: only alice, per 2 s interval
    assert_eq!(texts(&t, "USER"), vec!["alice", "alice", "alice"]);
    assert_eq!(
        texts(&t, "TIME"),
        vec![
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:22Z",
            "2023-11-14T22:13:24Z"
        ]
    );
    assert_eq!(nums(&t, "SENT"), vec![0, 100, 200]);
    assert_eq!(nums(&t, "RECV"), vec![0, 0, 50]);
    assert_eq!(totals.recv, 50);
    // a list that calls 10.0.0.0/8 remote counts root too
    let cfg = ReportConfig {
        exclude_local: Some(LocalNets::parse("127.0.0.0/8").unwrap()),
        ..ReportConfig::default()
    };
    assert_eq!(run(ReportKind::ByUser, cfg).1.recv, 1050);
}

#[test]
fn server_ports_are_local_for_inbound_and_remote_for_outbound() {
    let (t, _) = run(ReportKind::TopPorts, ReportConfig::default());
    assert_eq!(nums(&t, "PORT"), vec![22, 443]);
    assert_eq!(texts(&t, "SERVER"), vec!["here", "remote"]);
    assert_eq!(texts(&t, "PEERS"), vec!["1", "1"]);
    assert_eq!(nums(&t, "CONNS"), vec![1, 1]);
}

#[test]
fn units_remotes_and_bytes() {
    let (t, _) = run(ReportKind::ByUnit, ReportConfig::default());
    assert_eq!(texts(&t, "UNIT"), vec!["ssh.service", "session-2.scope"]);
    let (t, _) = run(ReportKind::TopRemotes, ReportConfig::default());
    assert_eq!(texts(&t, "REMOTE"), vec!["10.0.0.5", "93.184.216.34"]);
    // the service ports: sshd's 22 for its client, not the client's port
    assert_eq!(texts(&t, "PORTS"), vec!["22", "443"]);
    let (t, _) = run(ReportKind::Bytes, ReportConfig::default());
    assert_eq!(nums(&t, "TOTAL"), vec![1000, 350]);
}

/// Stacking: destinations by how seldom they were used, least first, with
/// who used them; inbound flows are no destination; `below` cuts.
#[test]
fn rare_lists_the_least_used_destinations_first_with_who_used_them() {
    let mut r = reporter(ReportKind::Rare, ReportConfig::default());
    let alice = ctx("alice", "");
    let bob = ctx("bob", "");
    let mut cookie = 0;
    let mut flow = |pid: u32, exe: &str, to: Endpoint, c: &Context, at: u64| {
        cookie += 1;
        let mut f = Flow::example(pid, cookie, to);
        if let Some(p) = Arc::get_mut(&mut f.proc) {
            p.exe = exe.into();
        }
        f.payload.bytes_sent = 10;
        f.closed = Some(MonoNs(at * S));
        r.item(&Item::Flow(Box::new(FlowItem {
            ev: FlowEvent::Closed(f),
            ctx: c.clone(),
            at: MonoNs(at * S),
            is_final: false,
        })));
    };
    let web = Endpoint::new([93, 184, 216, 34].into(), 443);
    for i in 0..3 {
        flow(10 + i, "/usr/bin/curl", web, &alice, 1 + u64::from(i));
    }
    flow(20, "/usr/bin/wget", web, &bob, 5);
    flow(
        30,
        "/tmp/.x",
        Endpoint::new([203, 0, 113, 9].into(), 4444),
        &bob,
        6,
    );
    let mut inbound = Flow::example(40, 99, Endpoint::new([10, 0, 0, 5].into(), 50000));
    inbound.direction = Direction::Inbound;
    r.item(&Item::Flow(Box::new(FlowItem {
        ev: FlowEvent::Closed(inbound),
        ctx: alice.clone(),
        at: MonoNs(7 * S),
        is_final: false,
    })));
    let t = r.finish().unwrap();
    assert_eq!(nums(&t, "FLOWS"), vec![1, 4]);
    assert_eq!(texts(&t, "REMOTE"), vec!["203.0.113.9", "93.184.216.34"]);
    assert_eq!(nums(&t, "PORT"), vec![4444, 443]);
    assert_eq!(
        col(&t, "PROGRAMS"),
        vec![
            Cell::List(vec!["/tmp/.x".into()], false),
            Cell::List(vec!["/usr/bin/curl".into(), "/usr/bin/wget".into()], false),
        ]
    );
    assert_eq!(
        col(&t, "USERS"),
        vec![
            Cell::List(vec!["bob".into()], false),
            Cell::List(vec!["alice".into(), "bob".into()], false),
        ]
    );
    // --below 2: only what was used once
    let req = request::ReportRequest {
        below: Some(2),
        ..request::ReportRequest::default()
    };
    let cfg = req.config(ReportKind::Rare, None).unwrap();
    assert_eq!(cfg.below, Some(2));
    assert!(req.config(ReportKind::TopProcs, None).is_err());
}

#[test]
fn the_filter_is_the_filter_language() {
    let cfg = ReportConfig {
        filter: Some(Filter::parse("proc.name = curl and fd.rport = 443").unwrap()),
        ..ReportConfig::default()
    };
    let (t, totals) = run(ReportKind::TopProcs, cfg);
    assert_eq!(nums(&t, "PID"), vec![10]);
    assert_eq!(totals.flows, 1);
}

#[test]
fn top_conns_keeps_the_biggest_and_spy_lists_in_time_order() {
    let cfg = ReportConfig {
        limit: Some(1),
        ..ReportConfig::default()
    };
    let (t, _) = run(ReportKind::TopConns, cfg);
    assert_eq!(nums(&t, "PID"), vec![11]);
    // the recording ended with sshd's connection open
    assert_eq!(texts(&t, "DURATION"), vec!["open"]);
    let cfg = ReportConfig {
        spy: Some(Spy::Port(443)),
        ..ReportConfig::default()
    };
    let (t, _) = run(ReportKind::Spy, cfg);
    assert_eq!(nums(&t, "PID"), vec![10]);
    assert_eq!(nums(&t, "SENT"), vec![300]);
    assert_eq!(texts(&t, "DURATION"), vec!["3.000s"]);
    assert_eq!(texts(&t, "END"), vec!["socket_closed"]);
    let cfg = ReportConfig {
        spy: Some(Spy::Ip("10.0.0.5".parse().unwrap())),
        ..ReportConfig::default()
    };
    assert_eq!(nums(&run(ReportKind::Spy, cfg).0, "PID"), vec![11]);
}

/// Connections carry their Community ID in CSV and JSON (for pivoting to
/// Zeek or Suricata), with the report's seed; text tables leave it out.
#[test]
fn connections_carry_their_community_id_for_programs() {
    let ids = |kind, seed| {
        let cfg = ReportConfig {
            community_seed: seed,
            spy: (kind == ReportKind::Spy).then_some(Spy::Port(443)),
            ..ReportConfig::default()
        };
        let (t, _) = run(kind, cfg);
        assert!(!t.text().contains("COMMUNITY"), "{}", t.text());
        assert!(
            t.csv()
                .lines()
                .next()
                .unwrap_or("")
                .ends_with(",community_id")
        );
        t.json_rows()
            .iter()
            .map(|r| r["community_id"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    // curl's 10.231.1.2:40000 -> 93.184.216.34:443 (corelight's
    // communityid package gives this) and sshd's connection
    let conns = ids(ReportKind::TopConns, 0);
    assert_eq!(conns.len(), 2);
    assert!(
        conns.contains(&"1:alLrAbJo37YntXBpRxpRPaoafoQ=".to_string()),
        "{conns:?}"
    );
    assert!(conns.iter().all(|c| c.starts_with("1:") && c.len() == 30));
    assert_eq!(
        ids(ReportKind::Spy, 0),
        vec!["1:alLrAbJo37YntXBpRxpRPaoafoQ="]
    );
    let seeded = ids(ReportKind::TopConns, 5);
    assert!(seeded.iter().all(|s| !conns.contains(s)), "{seeded:?}");
}

#[test]
fn a_timeline_has_a_row_per_interval_without_gaps() {
    let cfg = ReportConfig {
        pid: Some(10),
        ..ReportConfig::default()
    };
    let (t, totals) = run(ReportKind::Timeline, cfg);
    assert_eq!(nums(&t, "SENT"), vec![0, 100, 0, 200]);
    assert_eq!(nums(&t, "RECV"), vec![0, 0, 0, 50]);
    assert_eq!(totals.sent, 300);
    assert!(texts(&t, "CHART")[3].starts_with(&">".repeat(30)));
    assert_eq!(nice_interval(7 * S), 10 * S);
    assert_eq!(nice_interval(0), S);
    assert_eq!(
        short_time(BOOT + 1_234_567_891, 3),
        "2023-11-14T22:13:21.234Z"
    );
}

/// Over rollups a timeline's rows follow their resolution (not a spike
/// and empty rows per rollup); a finer --interval is kept, with a note
/// that says what its rows mean.
#[test]
fn a_timeline_follows_the_datas_resolution() {
    let cfg = ReportConfig {
        pid: Some(10),
        resolution_ns: Some(2 * S),
        ..ReportConfig::default()
    };
    let (t, _) = run(ReportKind::Timeline, cfg);
    assert_eq!(nums(&t, "SENT"), vec![0, 100, 200]);
    assert!(t.notes.is_empty(), "{:?}", t.notes);
    let cfg = ReportConfig {
        pid: Some(10),
        resolution_ns: Some(2 * S),
        interval_ns: Some(S),
        ..ReportConfig::default()
    };
    let (t, _) = run(ReportKind::Timeline, cfg);
    assert_eq!(nums(&t, "SENT"), vec![0, 100, 0, 200]);
    assert_eq!(
        t.notes,
        [
            "rows are 1s apart, but the history holds 2s rollups here: each 2s's bytes are in its first row"
        ]
    );
}

/// A timeline never asks for more rows than a report holds: with an
/// interval it says which interval would do; without one it picks a
/// coarser one, however far apart a crafted recording's times are.
#[test]
fn timelines_are_bounded_however_long_the_span() {
    let far = |secs: f64, ns: u64| {
        let mut r = Reporter::new(
            ReportKind::Timeline,
            ReportConfig {
                pid: Some(10),
                interval_ns: (ns > 0).then_some(ns),
                ..ReportConfig::default()
            },
            WallClock { boot_to_unix_ns: 0 },
            HashSet::new(),
        );
        let mut f = Flow::example(10, 1, Endpoint::new([10, 231, 0, 1].into(), 80));
        for (i, at) in [0.0, secs].into_iter().enumerate() {
            f.payload.bytes_sent = 100 * (i as u64 + 1);
            r.item(&Item::Flow(Box::new(FlowItem {
                ev: FlowEvent::Updated(f.clone()),
                ctx: ctx("alice", "a.scope"),
                at: MonoNs((at * S as f64) as u64),
                is_final: false,
            })));
        }
        r.finish()
    };
    // 36 s in 1 ns intervals would be 36 billion rows (36 GB)
    let e = far(36.0, 1).unwrap_err().to_string();
    assert!(e.contains("give --interval 1s or more"), "{e}");
    let e = far(3.0e7, S).unwrap_err().to_string();
    assert!(e.contains("--interval 301s or more"), "{e}");
    // no interval: ~60 rows, even over 500 years
    let t = far(1.6e10, 0).unwrap();
    assert!(t.rows.len() <= 61, "{}", t.rows.len());
    assert_eq!(nums(&t, "SENT").iter().sum::<u64>(), 200);
    // the request itself refuses sub-second intervals
    let req = request::ReportRequest {
        interval_ns: Some(1),
        pid: Some(1),
        ..Default::default()
    };
    let e = req.config(ReportKind::Timeline, None).unwrap_err();
    assert!(e.contains("shorter than 1s"), "{e}");
}

#[test]
fn spy_shows_the_payload_in_place_as_hex_or_printable_text() {
    let cfg = || ReportConfig {
        spy: Some(Spy::Port(443)),
        payload: true,
        ..ReportConfig::default()
    };
    let (mut t, _) = run(ReportKind::Spy, cfg());
    assert_eq!(texts(&t, "SENT DATA"), vec!["GET / HTTP/1.1\r\n\x01"]);
    assert_eq!(texts(&t, "RECV DATA"), vec!["HTTP/1.1 200 OK\r\n"]);
    let text = t.text();
    assert!(
        text.contains(
            "    sent data (17 B):\n      0000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  GET / HTTP/1.1..\n      0010  01                                                .\n"
        ),
        "{text}"
    );
    assert!(
        t.csv().contains(",474554202f20485454502f312e310d0a01,"),
        "{}",
        t.csv()
    );
    t.printable = true;
    let text = t.text();
    assert!(
        text.contains("    sent data (17 B):\n      GET / HTTP/1.1\n      .\n"),
        "{text}"
    );
    assert_eq!(t.json_rows()[0]["recv_data"], "HTTP/1.1 200 OK\n");
    // a recording without payload: no data columns
    let (t, _) = run(
        ReportKind::Spy,
        ReportConfig {
            payload: false,
            ..cfg()
        },
    );
    assert!(t.columns.iter().all(|c| c.1 != ColKind::Data));
}

/// The items through the history sink into a database, and a report of it.
fn run_db(kind: ReportKind, cfg: ReportConfig, name: &str) -> (Table, Totals) {
    let (dir, path) = fill_db(name);
    let db = History::open_read(&path).unwrap();
    let r = history::report(&db, kind, cfg, HashSet::new()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (r.table, r.totals)
}

/// A database in a directory of its own holding the items.
fn fill_db(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    fill_db_with(name, items())
}

/// A database in a directory of its own holding `items`.
fn fill_db_with(name: &str, items: Vec<Item>) -> (std::path::PathBuf, std::path::PathBuf) {
    use netwho_pipeline::histsink::{HistoryConfig, HistorySink};
    use netwho_sink::{RecordRef, Sink};
    use netwho_store::history::Retention;
    let dir = std::env::temp_dir().join(format!("netwho-rep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.db");
    let mut sink = HistorySink::new(
        History::create(&path).unwrap(),
        HistoryConfig {
            commit_every: std::time::Duration::from_secs(1),
            retention: Retention::default(),
            prune_every: std::time::Duration::from_secs(3600),
            boot_id: "b".into(),
            remote_names: false,
        },
    )
    .unwrap();
    let wall = WallClock {
        boot_to_unix_ns: BOOT,
    };
    for it in items {
        let Item::Flow(fi) = it else { continue };
        let mut lookup = |_: &FlowEvent| fi.ctx.clone();
        let mut rec = RecordRef::new(&fi.ev, fi.at, wall, &mut lookup);
        if fi.is_final {
            sink.final_update(&fi.ev, &mut rec);
        } else {
            sink.event(&fi.ev, &mut rec);
        }
        sink.flush();
    }
    sink.finish().unwrap();
    (dir, path)
}

#[test]
fn the_history_answers_what_the_recording_answers() {
    for kind in [
        ReportKind::TopProcs,
        ReportKind::Bytes,
        ReportKind::ByUser,
        ReportKind::ByUnit,
        ReportKind::TopRemotes,
        ReportKind::TopPorts,
        ReportKind::TopConns,
        ReportKind::Rare,
    ] {
        let (want, want_totals) = run(kind, ReportConfig::default());
        let (mut got, got_totals) = run_db(kind, ReportConfig::default(), kind.name());
        if kind == ReportKind::TopRemotes {
            // the history adds the remotes' names (none resolved here)
            assert_eq!(got.columns[1].0, "NAME");
            for row in &mut got.rows {
                assert_eq!(row.remove(1), crate::table::Cell::Text(String::new()));
            }
        }
        assert_eq!(got.rows, want.rows, "{}", kind.name());
        assert_eq!(got_totals, want_totals, "{}", kind.name());
    }
    // and with a filter on what rollups keep
    let cfg = || ReportConfig {
        filter: Some(Filter::parse("user.name = root and fd.lport = 22").unwrap()),
        ..ReportConfig::default()
    };
    let (want, _) = run(ReportKind::TopProcs, cfg());
    let (got, _) = run_db(ReportKind::TopProcs, cfg(), "filtered");
    assert_eq!(got.rows, want.rows);
    assert_eq!(nums(&got, "PID"), vec![11]);
}

/// A window of a hundred million years at one-minute intervals reads what
/// the history holds, no more (it walked the window minute by minute:
/// 32 hours of CPU); a cancelled report stops with `Cancelled`.
#[test]
fn history_windows_are_clamped_to_the_data_and_reports_can_be_cancelled() {
    let cfg = || ReportConfig {
        since: Some(0),
        until: Some(i128::from(i64::MAX) * 1_000_000_000),
        interval_ns: Some(60 * S),
        ..ReportConfig::default()
    };
    let (t, totals) = run_db(ReportKind::ByUser, cfg(), "clamped");
    let (_, want) = run(ReportKind::ByUser, ReportConfig::default());
    assert_eq!(totals, want);
    assert!(!t.rows.is_empty());
    // stopped: no report, a typed error
    let (dir, path) = fill_db("cancel");
    let mut db = History::open_read(&path).unwrap();
    db.cancel_when(Arc::new(|| true));
    let e = history::report(&db, ReportKind::ByUser, cfg(), HashSet::new()).unwrap_err();
    assert!(
        matches!(
            e,
            ReportError::History(netwho_store::history::HistoryError::Cancelled)
        ),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same items from hosts "a" and "b" (the same pids on both).
fn run_hosts(kind: ReportKind) -> (Table, Totals) {
    let cfg = ReportConfig {
        hosts: true,
        ..ReportConfig::default()
    };
    let mut r = reporter(kind, cfg);
    for host in ["a", "b"] {
        let host: Arc<str> = Arc::from(host);
        for it in items() {
            if let Item::Flow(fi) = it {
                r.counted_on(&host, &fi, 1);
            }
        }
    }
    let totals = r.totals;
    (r.finish().unwrap(), totals)
}

#[test]
fn fleet_reports_keep_processes_apart_by_host_and_merge_the_rest() {
    let (t, totals) = run_hosts(ReportKind::TopProcs);
    assert_eq!(t.columns[0].0, "HOST");
    assert_eq!(nums(&t, "PID"), vec![11, 11, 10, 10]);
    assert_eq!(texts(&t, "HOST"), vec!["a", "b", "a", "b"]);
    assert_eq!(nums(&t, "TOTAL"), vec![1000, 1000, 350, 350]);
    assert_eq!((totals.sent, totals.recv, totals.flows), (600, 2100, 4));
    let (t, _) = run_hosts(ReportKind::ByUser);
    assert_eq!(texts(&t, "USER"), vec!["root", "alice"]);
    assert_eq!(nums(&t, "TOTAL"), vec![2000, 700]);
    assert_eq!(texts(&t, "HOSTS"), vec!["a,b", "a,b"]);
    let (t, _) = run_hosts(ReportKind::TopConns);
    assert_eq!(t.columns[0].0, "HOST");
    let mut hosts = texts(&t, "HOST");
    hosts.sort();
    assert_eq!(hosts, vec!["a", "a", "b", "b"]);
}

/// `top-names`: remotes by the name each process knew them by; one
/// address under two names is two rows; the history answers from the
/// names it keeps.
#[test]
fn top_names_groups_by_the_names_processes_resolved() {
    use netwho_model::names::{RemoteName, RnameSource};
    let mut items = Vec::new();
    let alice = ctx("alice", "session-2.scope");
    let named = |pid: u32, last: u8, rname: Option<&str>, sni: Option<&str>, source| {
        let mut f = Flow::example(
            pid,
            u64::from(pid),
            Endpoint::new([192, 0, 2, last].into(), 443),
        );
        f.key.proc = ProcKey::from_start_ticks(pid, 1);
        f.remote_name = Some(Arc::new(RemoteName {
            rname: rname.map(Into::into),
            source,
            sni: sni.map(Into::into),
            alpn: None,
        }));
        f.payload.bytes_sent = 100 * u64::from(pid);
        f.closed = Some(MonoNs(3 * S));
        f.close_reason = Some(CloseReason::SocketClosed);
        f
    };
    for f in [
        named(1, 7, Some("a.example"), None, Some(RnameSource::Dns)),
        named(2, 7, Some("b.example"), None, Some(RnameSource::Dns)),
        named(
            3,
            8,
            Some("a.example"),
            Some("a.example"),
            Some(RnameSource::Shared),
        ),
        named(4, 9, None, Some("quic.example"), None),
        named(5, 10, None, None, Some(RnameSource::None)),
    ] {
        items.push(Item::Flow(Box::new(FlowItem {
            ev: FlowEvent::Closed(f),
            ctx: alice.clone(),
            at: MonoNs(3 * S),
            is_final: false,
        })));
    }
    let (t, _) = run_items(ReportKind::TopNames, ReportConfig::default(), &items);
    assert_eq!(
        texts(&t, "NAME"),
        vec![
            "192.0.2.10",
            "quic.example",
            "a.example",
            "b.example",
            "a.example"
        ]
    );
    assert_eq!(
        texts(&t, "FROM"),
        vec!["none", "sni", "shared", "dns", "dns"]
    );
    assert_eq!(nums(&t, "TOTAL"), vec![500, 400, 300, 200, 100]);
    // the history keeps the names with its rollups, not the "none" mark:
    // that flow is its address there
    let (dir, path) = fill_db_with("names", items);
    let db = History::open_read(&path).unwrap();
    let h = history::report(
        &db,
        ReportKind::TopNames,
        ReportConfig::default(),
        HashSet::new(),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        texts(&h.table, "NAME"),
        vec![
            "192.0.2.10",
            "quic.example",
            "a.example",
            "b.example",
            "a.example"
        ]
    );
    assert_eq!(
        texts(&h.table, "FROM"),
        vec!["-", "sni", "shared", "dns", "dns"]
    );
    assert_eq!(nums(&h.table, "TOTAL"), vec![500, 400, 300, 200, 100]);
}

/// A recording of many flows over many frames: 1,200 processes of
/// alice's, each with a command name of its own (more than a row lists),
/// and bob's; a process whose name changes between its flows (a row keeps
/// its first flow's); flows updated and closed frames after they opened,
/// some still open at the end.
fn many_flows_recording(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (dir, path, _) = recording_with_summary(name, None);
    (dir, path)
}

/// [`many_flows_recording`], its summary kept by a summarizer that holds
/// at most `held` (None: no summary), and what the recorder said of it.
fn recording_with_summary(
    name: &str,
    held: Option<u64>,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    use netwho_store::recording::{Encoder, Header, Kind, RecordingFile};
    let dir = std::env::temp_dir().join(format!("netwho-rep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("many.nwr");
    let header = Header {
        host: "h".into(),
        boot_to_unix_ns: BOOT,
        resolution_ns: S,
        ..Header::default()
    };
    let summarizer = summary::RecordingSummarizer::new(&header);
    let mut file = RecordingFile::create(&path, header, None, true).unwrap();
    if let Some(n) = held {
        file.summarize(Box::new(summarizer.held_at_most(n)));
    }
    let mut enc = Encoder::new();
    let mut raw = Vec::new();
    let (alice, bob) = (ctx("alice", "a.service"), ctx("bob", "b.service"));
    let mut open: Vec<(Flow, Context)> = Vec::new();
    for i in 0..4000u64 {
        let pid = 1000 + (i % 1300) as u32;
        let remote = Endpoint::new(
            IpAddr::from([10, 231, (i % 7) as u8, (i % 200) as u8]),
            [443, 80, 53][(i % 3) as usize],
        );
        let mut f = Flow::example(pid, i + 1, remote);
        let c = if pid < 2200 && i % 13 != 0 {
            alice.clone()
        } else {
            bob.clone()
        };
        f.comm = if pid == 1001 {
            format!("renamed{}", i / 1300)
        } else {
            format!("prog{pid}")
        };
        f.uid = if c.names.user == "alice" { 1000 } else { 1001 };
        let at = MonoNs(S + i * 3_000_000);
        f.opened = at;
        enc.flow(&mut raw, Kind::Open, &f, &c, at);
        open.push((f, c));
        if open.len() > 40 {
            let (mut g, c) = open.remove(0);
            g.payload.bytes_sent = 100 + i;
            enc.flow(&mut raw, Kind::Update, &g, &c, at.add_ns(1));
            g.payload.bytes_recv = 1000 + 3 * i;
            g.closed = Some(at.add_ns(2));
            g.close_reason = Some(CloseReason::SocketClosed);
            enc.flow(&mut raw, Kind::Close, &g, &c, at.add_ns(2));
        }
        if i % 97 == 96 {
            enc.seal();
            file.write_frame(&raw).unwrap();
            raw.clear();
        }
    }
    let end = MonoNs(S + 4000 * 3_000_000);
    for (mut g, c) in open {
        g.payload.bytes_sent += 5;
        enc.flow(&mut raw, Kind::Final, &g, &c, end);
    }
    enc.end(&mut raw, end.add_ns(1));
    file.write_frame(&raw).unwrap();
    let notes = file.finish().unwrap();
    (dir, path, notes)
}

/// A recording's report made by several threads, each decoding its share
/// of the flows into a report of its own, is the report one thread makes:
/// every kind, with windows, a filter, a limit and intervals; lists of
/// more values than a row keeps keep the same first ones.
#[test]
fn reports_made_in_parts_equal_reports_made_in_one() {
    use crate::source::{RecordingSource, ReportSource};
    let (dir, path) = many_flows_recording("parts");
    let run_parts = |kind: ReportKind, cfg: &ReportConfig, parts: usize| {
        let reader = netwho_store::recording::Reader::open(std::slice::from_ref(&path)).unwrap();
        let mut src = RecordingSource::new(reader, vec![path.clone()]).parts(parts);
        let r = src.run(kind, cfg.clone()).unwrap();
        (r.table, r.totals, r.first, r.last, r.read)
    };
    let configs = [
        ReportConfig::default(),
        ReportConfig {
            limit: Some(5),
            interval_ns: Some(3 * S),
            ..ReportConfig::default()
        },
        ReportConfig {
            since: Some(BOOT + 4 * i128::from(S)),
            until: Some(BOOT + 9 * i128::from(S)),
            filter: Some(Filter::parse("fd.rport = 443 or user.name = bob").unwrap()),
            ..ReportConfig::default()
        },
        ReportConfig {
            spy: Some(Spy::Port(80)),
            pid: Some(1001),
            ..ReportConfig::default()
        },
    ];
    for kind in ReportKind::ALL {
        for cfg in &configs {
            let one = run_parts(kind, cfg, 1);
            for parts in [2, 3] {
                assert_eq!(
                    run_parts(kind, cfg, parts),
                    one,
                    "{} in {parts} parts, {cfg:?}",
                    kind.name()
                );
            }
        }
    }
    // the data is what the test says: alice's processes list more command
    // names than a row keeps, and process 1001 kept its first name
    let (t, ..) = run_parts(ReportKind::ByUser, &ReportConfig::default(), 2);
    assert!(
        col(&t, "PROCS")
            .iter()
            .any(|c| matches!(c, Cell::List(v, true) if v.len() == DISTINCT_MAX)),
        "{:?}",
        t.columns
    );
    let (t, ..) = run_parts(
        ReportKind::TopProcs,
        &ReportConfig {
            limit: None,
            ..ReportConfig::default()
        },
        2,
    );
    assert!(texts(&t, "COMM").contains(&"renamed0".to_string()));
    assert!(
        !texts(&t, "COMM")
            .iter()
            .any(|c| c.starts_with("renamed") && c != "renamed0")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a report over a recording gave: table, totals, first and last
/// times, and the read counts.
type Got = (
    Table,
    Totals,
    Option<i128>,
    Option<i128>,
    Option<serde_json::Value>,
);

/// Runs `kind` over the recording at `path`: the report, and how it was
/// read.
fn run_recording(
    path: &std::path::Path,
    kind: ReportKind,
    cfg: &ReportConfig,
    summary: bool,
) -> (Got, String) {
    use crate::source::{RecordingSource, ReportSource};
    let paths = vec![path.to_path_buf()];
    let reader = netwho_store::recording::Reader::open(&paths).unwrap();
    let mut src = RecordingSource::new(reader, paths);
    if !summary {
        src = src.without_summary();
    }
    let r = src.run(kind, cfg.clone()).unwrap();
    let how = src.how().unwrap_or_default().to_owned();
    ((r.table, r.totals, r.first, r.last, r.read), how)
}

/// The reports a recording's summary keeps are the reports a full reading
/// makes (the same table, totals, times and read counts), with or without
/// a limit; other reports, and kept ones with a filter, window or
/// interval, read the recording in full.
#[test]
fn a_summary_answers_as_a_full_reading_does() {
    let (dir, path, notes) = recording_with_summary("summary", Some(summary::MAX_HELD));
    assert!(notes.is_empty(), "{notes:?}");
    let sum = netwho_store::recording::summary_path(&path);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sum).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let limited = ReportConfig {
        limit: Some(3),
        ..ReportConfig::default()
    };
    for kind in [
        ReportKind::TopProcs,
        ReportKind::Bytes,
        ReportKind::ByUser,
        ReportKind::ByUnit,
    ] {
        for cfg in [&ReportConfig::default(), &limited] {
            let (full, how) = run_recording(&path, kind, cfg, false);
            assert!(how.contains("in full (no summary: --no-summary)"), "{how}");
            let (quick, how) = run_recording(&path, kind, cfg, true);
            assert!(
                how.starts_with("read from the recording's summary"),
                "{how}"
            );
            assert_eq!(quick, full, "{} {cfg:?}", kind.name());
            assert!(full.1.flows > 3000, "{:?}", full.1);
        }
    }
    // not answered by the summary
    let filtered = ReportConfig {
        filter: Some(Filter::parse("user.name = bob").unwrap()),
        ..ReportConfig::default()
    };
    let hourly = ReportConfig {
        interval_ns: Some(3 * S),
        ..ReportConfig::default()
    };
    for (kind, cfg) in [
        (ReportKind::TopProcs, &filtered),
        (ReportKind::ByUser, &hourly),
        (ReportKind::TopRemotes, &ReportConfig::default()),
    ] {
        let (_, how) = run_recording(&path, kind, cfg, true);
        assert!(how.starts_with("read the recording in full"), "{how}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A summary that does not belong to the recording's very bytes, or that
/// someone else could have written, is not read: the report reads the
/// recording in full, with the full answer, and says why.
#[test]
fn a_stale_damaged_or_foreign_summary_is_not_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let (dir, path, _) = recording_with_summary("stale", Some(summary::MAX_HELD));
    let sum = netwho_store::recording::summary_path(&path);
    let good = std::fs::read(&sum).unwrap();
    let kind = ReportKind::TopProcs;
    let cfg = ReportConfig::default();
    let (full, _) = run_recording(&path, kind, &cfg, false);
    let check = |what: &str, expect: &str| {
        let (r, how) = run_recording(&path, kind, &cfg, true);
        assert!(how.contains(expect), "{what}: {how}");
        assert!(
            how.starts_with("read the recording in full"),
            "{what}: {how}"
        );
        assert_eq!(r, full, "{what}");
    };
    // others may write it
    std::fs::set_permissions(&sum, std::fs::Permissions::from_mode(0o666)).unwrap();
    check("mode 0666", "not the recording owner's own private file");
    std::fs::set_permissions(&sum, std::fs::Permissions::from_mode(0o600)).unwrap();
    // a byte of the summary changed (a checksum guards it), or cut short
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(&sum, &bad).unwrap();
    check("flipped", "damaged");
    std::fs::write(&sum, &good[..good.len() - 9]).unwrap();
    check("cut", "damaged");
    std::fs::write(&sum, b"").unwrap();
    check("empty", "damaged");
    // a link, even to the good summary
    let elsewhere = dir.join("elsewhere.sum");
    std::fs::write(&elsewhere, &good).unwrap();
    std::fs::remove_file(&sum).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &sum).unwrap();
    check("symlink", "not a regular file");
    std::fs::remove_file(&sum).unwrap();
    // a byte of the recording changed since
    std::fs::write(&sum, &good).unwrap();
    std::fs::set_permissions(&sum, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut rec = std::fs::read(&path).unwrap();
    let last = rec.len() - 3;
    rec[last] ^= 0x20;
    std::fs::write(&path, &rec).unwrap();
    let (changed, how) = run_recording(&path, kind, &cfg, true);
    assert!(how.contains("changed since"), "{how}");
    let (changed_full, _) = run_recording(&path, kind, &cfg, false);
    assert_eq!(changed, changed_full);
    // none at all
    std::fs::remove_file(&sum).unwrap();
    let (_, how) = run_recording(&path, kind, &cfg, true);
    assert!(how.contains("does not exist"), "{how}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A recorder whose reports would hold more than it allows gives up the
/// report holding most (and says which), keeping the others; past that,
/// the whole summary. A report given up reads the recording in full, with
/// the full answer.
#[test]
fn a_summary_that_would_hold_too_much_is_given_up() {
    let kinds = [
        ReportKind::TopProcs,
        ReportKind::Bytes,
        ReportKind::ByUser,
        ReportKind::ByUnit,
    ];
    let cfg = ReportConfig::default();
    // each report holds about 1,300 groups and values here
    let (dir, path, notes) = recording_with_summary("too-much", Some(3000));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("the recorder gave it up"), "{notes:?}");
    let mut quick = 0;
    for kind in kinds {
        let (got, how) = run_recording(&path, kind, &cfg, true);
        let (full, _) = run_recording(&path, kind, &cfg, false);
        assert_eq!(got, full, "{}", kind.name());
        if how.starts_with("read from the recording's summary") {
            quick += 1;
        } else {
            assert!(how.contains("the recorder gave it up"), "{how}");
        }
    }
    // two of the three kept reports (top-procs serves bytes too)
    assert!(quick == 2 || quick == 3, "{quick}");
    let _ = std::fs::remove_dir_all(&dir);
    let (dir, path, notes) = recording_with_summary("too-much", Some(500));
    assert!(
        notes.iter().any(|n| n.contains("no summary written")),
        "{notes:?}"
    );
    assert!(!netwho_store::recording::summary_path(&path).exists());
    let (_, how) = run_recording(&path, ReportKind::ByUser, &cfg, true);
    assert!(how.contains("does not exist"), "{how}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A recording of `ops`, its summary kept: 0 opens a flow of process
/// `p` (three users, two units), 1 counts `n` bytes on the oldest open
/// flow, 2 closes it, 3 seals a frame; the flows still open end with
/// their final records.
fn recording_of_ops(dir: &std::path::Path, ops: &[(u8, u32, u64)]) -> std::path::PathBuf {
    use netwho_store::recording::{Encoder, Header, Kind, RecordingFile};
    let path = dir.join("ops.nwr");
    let header = Header {
        boot_to_unix_ns: BOOT,
        resolution_ns: S,
        ..Header::default()
    };
    let summarizer = summary::RecordingSummarizer::new(&header);
    let mut file = RecordingFile::create(&path, header, None, true).unwrap();
    file.summarize(Box::new(summarizer));
    let mut enc = Encoder::new();
    let mut raw = Vec::new();
    let users = [
        ctx("alice", "a.service"),
        ctx("bob", "b.service"),
        ctx("carol", "a.service"),
    ];
    let mut open: std::collections::VecDeque<(Flow, Context)> = Default::default();
    let mut at = MonoNs(S);
    for (i, &(op, p, n)) in ops.iter().enumerate() {
        at = at.add_ns(S / 10);
        match op {
            0 => {
                let mut f = Flow::example(
                    2000 + p,
                    i as u64 + 1,
                    Endpoint::new(IpAddr::from([10, 231, 9, p as u8]), 443),
                );
                f.comm = format!("prog{}", p % 5);
                f.uid = 1000 + p % 3;
                f.opened = at;
                let c = users[(p % 3) as usize].clone();
                enc.flow(&mut raw, Kind::Open, &f, &c, at);
                open.push_back((f, c));
            }
            1 | 2 => {
                if let Some((mut f, c)) = open.pop_front() {
                    f.payload.bytes_sent += n;
                    f.payload.bytes_recv += n / 3;
                    if op == 2 {
                        f.closed = Some(at);
                        f.close_reason = Some(CloseReason::SocketClosed);
                        enc.flow(&mut raw, Kind::Close, &f, &c, at);
                    } else {
                        enc.flow(&mut raw, Kind::Update, &f, &c, at);
                        open.push_back((f, c));
                    }
                }
            }
            _ => {
                enc.seal();
                file.write_frame(&raw).unwrap();
                raw.clear();
            }
        }
    }
    for (f, c) in open {
        enc.flow(&mut raw, Kind::Final, &f, &c, at);
    }
    enc.end(&mut raw, at.add_ns(1));
    file.write_frame(&raw).unwrap();
    assert!(file.finish().unwrap().is_empty());
    path
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Over any recording (flows crossing frames, updated, closed or still
    /// open at the end), each report a summary keeps is the report a full
    /// reading makes.
    #[test]
    fn a_summary_equals_a_full_reading_of_any_recording(
        ops in proptest::collection::vec((0u8..4, 0u32..12, 0u64..5000), 1..200)
    ) {
        let dir = std::env::temp_dir().join(format!("netwho-rep-{}-ops", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = recording_of_ops(&dir, &ops);
        for kind in [ReportKind::TopProcs, ReportKind::Bytes, ReportKind::ByUser, ReportKind::ByUnit] {
            let cfg = ReportConfig::default();
            let (full, _) = run_recording(&path, kind, &cfg, false);
            let (quick, how) = run_recording(&path, kind, &cfg, true);
            proptest::prop_assert!(how.starts_with("read from the recording's summary"), "{}", how);
            proptest::prop_assert_eq!(quick, full, "{}", kind.name());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
