//! Reports over hand-made items: bytes as counter differences at their
//! times, windows, intervals, Internet-only accounting, the chisels.

use super::local::LocalNets;
use super::table::Cell;
use super::*;
use netwho_model::record::Names;
use netwho_model::{Capture, CaptureDir, CapturePiece, CloseReason, Endpoint, MonoNs, ProcKey};
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

fn run(kind: ReportKind, cfg: ReportConfig) -> (Table, Totals) {
    let mut r = Reporter::new(
        kind,
        cfg,
        WallClock {
            boot_to_unix_ns: BOOT,
        },
        HashSet::new(),
    );
    for it in items() {
        r.item(&it);
    }
    let totals = r.totals;
    (r.finish(), totals)
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

fn texts(t: &Table, name: &str) -> Vec<String> {
    col(t, name)
        .into_iter()
        .map(|c| match c {
            Cell::Text(s) => s,
            Cell::Num(n) => n.to_string(),
            Cell::Data(b) => String::from_utf8_lossy(&b).into_owned(),
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
    use crate::histsink::{HistoryConfig, HistorySink};
    use crate::{RecordRef, Sink};
    use netwho_store::history::{History, Retention};
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
    for it in items() {
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
    let db = History::open_read(&path).unwrap();
    let r = history::report(&db, kind, cfg, HashSet::new()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (r.table, r.totals)
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
    ] {
        let (want, want_totals) = run(kind, ReportConfig::default());
        let (mut got, got_totals) = run_db(kind, ReportConfig::default(), kind.name());
        if kind == ReportKind::TopRemotes {
            // the history adds the remotes' names (none resolved here)
            assert_eq!(got.columns[1].0, "NAME");
            for row in &mut got.rows {
                assert_eq!(
                    row.remove(1),
                    crate::report::table::Cell::Text(String::new())
                );
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

/// The same items from hosts "a" and "b" (the same pids on both).
fn run_hosts(kind: ReportKind) -> (Table, Totals) {
    let cfg = ReportConfig {
        hosts: true,
        ..ReportConfig::default()
    };
    let mut r = Reporter::new(
        kind,
        cfg,
        WallClock {
            boot_to_unix_ns: BOOT,
        },
        HashSet::new(),
    );
    for host in ["a", "b"] {
        let host: Arc<str> = Arc::from(host);
        for it in items() {
            if let Item::Flow(fi) = it {
                r.counted_on(&host, &fi, 1);
            }
        }
    }
    let totals = r.totals;
    (r.finish(), totals)
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
