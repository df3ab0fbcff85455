//! Floods: one user holding the flow map, a connection storm, a stalled
//! reader, and bytes that bypass recv(). Under pressure netwho loses
//! precision (per-remote bytes), never presence, and never because of one
//! user; every loss is counted.

#![expect(clippy::disallowed_methods, reason = "tests wait with real deadlines")]

use netwho_e2e::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `trafficgen ARGS` in namespace `ns` as `user`.
fn gen_as(user: &TestUser, ns: &str, args: &str) -> Gen {
    gen_with(&trafficgen(), user, ns, args)
}

/// The same with another build of the traffic generator.
fn gen_with(bin: &Path, user: &TestUser, ns: &str, args: &str) -> Gen {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]);
    c.arg("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--clear-groups")
        .arg(bin)
        .args(args.split_whitespace());
    Gen::spawn_cmd(c)
}

fn finals_of<'a>(records: &'a [Value], pids: &[u64]) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["event"] == "close" || r["event"] == "update")
        .filter(|r| pids.contains(&r["pid"].as_u64().unwrap_or(0)))
        .collect()
}

fn sum(recs: &[&Value], field: &str) -> u64 {
    recs.iter().map(|r| r[field].as_u64().unwrap_or(0)).sum()
}

/// Poll the log until a status record says the kernel tracks at most
/// `most` flows (the map drained), bounded.
fn wait_tracked_at_most(nw: &mut Netwho, most: u64) {
    nw.wait_until(
        &format!("a status with at most {most} tracked flows"),
        Duration::from_secs(40),
        |recs| {
            recs.iter()
                .rev()
                .find(|r| r["event"] == "status")
                .and_then(|s| s["kernel"]["flows_tracked"].as_u64())
                .is_some_and(|n| n <= most)
        },
    );
}

/// The attack: with a small flow map, one user holds 4,000 UDP
/// flows open; another user's 500 connections and 200 datagrams are all
/// there, exact. The flooder's flows are all present too (its bytes
/// exact in total, per remote where its share allowed); the status names
/// the flooder; the map drains back afterwards.
#[test]
fn a_map_flood_by_one_user_hides_no_other_user() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("mflood", 33);
    let flooder = TestUser::create("nwflood1");
    let victim = TestUser::create("nwvictim1");
    let mut nw = Netwho::start("mflood", &["--max-flows", "2048", "--status-interval", "1"]);
    let baseline = last_status(&nw.records())["kernel"]["flows_tracked"]
        .as_u64()
        .unwrap();

    // the flood: one socket, one datagram to each of 4,000 ports, twice,
    // 2 s apart; the victim starts once the first round has taken the
    // flooder's share
    let mut spray = gen_as(
        &flooder,
        &ns.a,
        &format!(
            "udp-spray --to {} --src {} --port-base 20000 --count 4000 --size 20 --rounds 2 --every-ms 2000",
            ns.b4, ns.a4
        ),
    );
    spray.wait_for("round");

    let (tcp_server, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 500 --expect 100 --reply 300",
            ns.b4
        ),
    );
    let (udp_server, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 31000 --count 200", ns.b4),
    );
    let tcp = gen_as(
        &victim,
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 500 --send 100 --expect 300",
            ns.b4
        ),
    );
    let udp = gen_as(
        &victim,
        &ns.a,
        &format!(
            "udp-oneshot --to {} --src {} --port-base 31000 --count 200 --size 30",
            ns.b4, ns.a4
        ),
    );
    let mut truth = tcp.finish();
    truth.extend(udp.finish());
    truth.extend(tcp_server.finish());
    truth.extend(udp_server.finish());
    let flood_pid = u64::from(spray.pid());
    let flood = spray.finish();
    assert_eq!(truth.len(), 1400);
    assert_eq!(flood.len(), 4000);

    let want = truth.len();
    let p = pids(&truth);
    nw.wait_until("the victim's closes", Duration::from_secs(30), |recs| {
        closes_for(recs, &p) >= want
    });
    // the flooder's socket is closed, its flows end; the map drains
    wait_tracked_at_most(&mut nw, baseline + 16);
    let (status, records) = nw.stop();
    assert!(status.success(), "netwho exited with {status}");

    // every flow of the victim (and of its servers): right process, exact
    assert_matches(&truth, &records, "ebpf");

    // every remote of the flooder is present, and its bytes add up
    let opened: BTreeSet<u64> = records
        .iter()
        .filter(|r| r["event"] == "open" && r["pid"] == flood_pid)
        .filter_map(|r| r["rport"].as_u64())
        .collect();
    let want_ports: BTreeSet<u64> = flood.iter().filter_map(|t| t["rport"].as_u64()).collect();
    let missing: Vec<&u64> = want_ports.difference(&opened).collect();
    assert!(
        missing.is_empty(),
        "{} of the flooder's 4,000 remotes have no open record (first: {:?})",
        missing.len(),
        missing.first()
    );
    let finals = finals_of(&records, &[flood_pid]);
    assert_eq!(sum(&finals, "bytes_sent"), 4000 * 2 * 20);
    let incomplete = finals
        .iter()
        .filter(|r| r["bytes_complete"] == false)
        .count();
    assert!(incomplete > 0, "the flooder went past its share");

    let st = last_status(&records);
    let limited = st["limits"].as_array().unwrap();
    let named = limited
        .iter()
        .find(|l| l["uid"] == flooder.uid)
        .unwrap_or_else(|| panic!("the flooder is not named in {st}"));
    assert!(named["flows_refused"].as_u64().unwrap() > 0, "{st}");
    assert!(
        limited.iter().all(|l| l["uid"] != victim.uid),
        "the victim was limited: {st}"
    );
    assert!(st["partial"]["untracked"].as_u64().unwrap() >= 3000, "{st}");
    assert_eq!(st["drops"]["flow_map_full"], 0, "{st}");
    assert_eq!(st["drops"]["bytes_lost"], 0, "{st}");
}

/// A test user runs a connection storm (four threads aiming at 10,000
/// connections/s in all, for 3 s) while a second user makes 100
/// connections and sends 100 datagrams: the second user's flows are all
/// there, exact; every storm connection is accounted on both ends: logged,
/// or counted as lost (opened == logged + losses). Release builds: a debug
/// netwho cannot keep up with 10,000 connections/s on two cores.
#[test]
fn a_connection_storm_hides_nobody() {
    if !require_root() {
        return;
    }
    let Some((netwho, tg)) = release_bins() else {
        return;
    };
    let _s = serial();
    let ns = Netns::pair("storm", 34);
    ns.for_storms();
    let stormer = TestUser::create("nwstorm1");
    let victim = TestUser::create("nwvictim2");
    let mut nw = Netwho::start_bin(&netwho, "storm", &["--status-interval", "1"]);

    let mut storm_server = gen_with(
        &tg,
        &stormer,
        &ns.b,
        &format!("storm-server --bind {} --threads 2", ns.b4),
    );
    let sport = storm_server.wait_for("ready")["port"].as_u64().unwrap();
    let mut storm = gen_with(
        &tg,
        &stormer,
        &ns.a,
        &format!(
            "storm-client --to {} --port {sport} --threads 4 --rate 10000 --secs 3 --size 10",
            ns.b4
        ),
    );
    storm.wait_for("storming");
    let storm_pid = u64::from(storm.pid());
    let server_pid = u64::from(storm_server.pid());

    let mut tcp_server = Gen::spawn_cmd({
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.b]).arg(&tg).args(
            format!(
                "tcp-server --bind {} --conns 100 --expect 1000 --reply 2000",
                ns.b4
            )
            .split_whitespace(),
        );
        c
    });
    let port = tcp_server.wait_for("ready")["port"].as_u64().unwrap();
    let mut udp_server = Gen::spawn_cmd({
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.b]).arg(&tg).args(
            format!("udp-server --bind {} --port-base 32000 --count 100", ns.b4).split_whitespace(),
        );
        c
    });
    udp_server.wait_for("ready");
    let tcp = gen_with(
        &tg,
        &victim,
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 100 --send 1000 --expect 2000",
            ns.b4
        ),
    );
    let udp = gen_with(
        &tg,
        &victim,
        &ns.a,
        &format!(
            "udp-oneshot --to {} --src {} --port-base 32000 --count 100 --size 30",
            ns.b4, ns.a4
        ),
    );
    let t0 = Instant::now();
    let mut truth = tcp.finish();
    truth.extend(udp.finish());
    truth.extend(tcp_server.finish());
    truth.extend(udp_server.finish());
    eprintln!("storm: victim done after {:?}", t0.elapsed());
    let done = storm.wait_for("done");
    drop(storm.finish());
    let conns = done["conns"].as_u64().unwrap();
    eprintln!("storm: {conns} connections at {:.0}/s", done["rate"]);
    assert!(
        conns > 1000,
        "the storm did not happen ({conns} connections)"
    );

    // every connection has ended: once the log is quiet, all is written
    // (flows still open at the stop get their final records then)
    nw.wait_quiet(Duration::from_secs(60));
    eprintln!("storm: quiet after {:?}", t0.elapsed());
    drop(storm_server);
    let (status, records) = nw.stop();
    assert!(status.success(), "netwho exited with {status}");
    eprintln!("storm: stopped after {:?}", t0.elapsed());
    assert_matches(&truth, &records, "ebpf");
    eprintln!("storm: compared after {:?}", t0.elapsed());

    // opened == logged + counted losses, on both ends of the storm
    let st = last_status(&records);
    let lost = st["drops"]["lost_full"].as_u64().unwrap();
    let client = finals_of(&records, &[storm_pid]);
    let server = finals_of(&records, &[server_pid]);
    eprintln!(
        "storm: {} client and {} server flows logged; drops {}, partial {}",
        client.len(),
        server.len(),
        st["drops"],
        st["partial"]
    );
    for (end, flows) in [("client", &client), ("server", &server)] {
        let logged = flows.len() as u64;
        assert!(
            logged <= conns && logged + lost >= conns,
            "{logged} {end} flows logged for {conns} connections, {lost} lost: {st}"
        );
        assert_eq!(
            sum(
                flows,
                if end == "client" {
                    "bytes_sent"
                } else {
                    "bytes_recv"
                }
            ),
            10 * logged,
            "the storm's {end} bytes"
        );
    }
    assert_eq!(st["drops"]["bytes_lost"], 0, "{st}");
}

/// The reader stops (SIGSTOP) while a user makes 20,000 one-shot UDP
/// flows, far more than the ring holds: after SIGCONT the drops are
/// counted, and every flow still arrives with its process, remote and
/// bytes (the kernel kept the closes the ring lost, and the counters of
/// flows whose open was lost); whatever did not arrive is in bytes_lost.
#[test]
fn a_stalled_reader_loses_no_flow_and_no_byte() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("stall", 35);
    let user = TestUser::create("nwstall1");
    let mut nw = Netwho::start("stall", &["--max-flows", "8192", "--status-interval", "1"]);
    let baseline = last_status(&nw.records())["kernel"]["flows_tracked"]
        .as_u64()
        .unwrap();
    let pid = i32::try_from(nw.pid()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let oneshot = gen_as(
        &user,
        &ns.a,
        &format!(
            "udp-oneshot --to {} --src {} --port-base 20000 --count 20000 --size 20",
            ns.b4, ns.a4
        ),
    );
    let gpid = u64::from(oneshot.pid());
    let truth = oneshot.finish();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(truth.len(), 20_000);
    nw.wait_until("20,000 closes", Duration::from_secs(60), |recs| {
        closes_for(recs, &[gpid]) >= 20_000
    });
    wait_tracked_at_most(&mut nw, baseline + 16);
    let (status, records) = nw.stop();
    assert!(status.success(), "netwho exited with {status}");
    let st = last_status(&records);
    assert!(
        st["drops"]["ringbuf"].as_u64().unwrap() > 0,
        "the ring never overflowed: the test proves nothing ({st})"
    );
    assert!(
        st["partial"]["lost_recovered"].as_u64().unwrap() > 0,
        "{st}"
    );
    let lost = st["drops"]["bytes_lost"].as_u64().unwrap();
    let finals = finals_of(&records, &[gpid]);
    let logged = sum(&finals, "bytes_sent");
    assert_eq!(logged + lost, 20_000 * 20, "logged + bytes_lost: {st}");
    let ports: BTreeSet<u64> = finals.iter().filter_map(|r| r["rport"].as_u64()).collect();
    assert_eq!(ports.len(), 20_000, "every remote present: {st}");
    assert_eq!(lost, 0, "{st}");
    let wrong = finals
        .iter()
        .filter(|r| r["uid"] != user.uid || r["proto"] != "udp" || r["bytes_sent"] != 20)
        .count();
    assert_eq!(wrong, 0, "flows with the wrong user, protocol or bytes");
}

/// A download read only with splice(2) (never recv()) is counted exactly:
/// while it runs (credited as the reader acknowledges) and at its end.
#[test]
fn a_download_read_with_splice_is_counted_exactly() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("splice", 36);
    let dir = TempDir::new("splice-top");
    let top_path = dir.0.join("top.jsonl");
    let mut top = Running(
        Command::new(netwho_bin())
            .args(["top", "--json", "--interval", "0.2", "--no-dns"])
            .stdout(std::fs::File::create(&top_path).unwrap())
            .spawn()
            .unwrap(),
    );
    poll(30, "a first table from netwho top", || {
        if let Ok(Some(st)) = top.0.try_wait() {
            panic!("netwho top exited: {st}");
        }
        let text = std::fs::read_to_string(&top_path).unwrap_or_default();
        if text.is_empty() { Err(text) } else { Ok(()) }
    });
    let nw = Netwho::start("splice", &[]);
    let mib = 1u64 << 20;
    let (server, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 1 --expect 100 --reply {}",
            ns.b4,
            8 * mib
        ),
    );
    let mut client = Gen::spawn(
        Some(&ns.a),
        &format!(
            "splice-client --to {} --port {port} --send 100 --expect {} --pause-at {}",
            ns.b4,
            8 * mib,
            4 * mib
        ),
    );
    let paused = client.wait_for("paused")["paused"].as_u64().unwrap();
    let cpid = u64::from(client.pid());
    // while it is paused, netwho top shows what it took so far
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let text = std::fs::read_to_string(&top_path).unwrap_or_default();
        let recv = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|t| {
                t["procs"]
                    .as_array()?
                    .iter()
                    .find(|p| p["pid"] == cpid)
                    .and_then(|p| p["bytes_recv"].as_u64())
            })
            .unwrap_or(0);
        if recv >= paused / 2 || Instant::now() > deadline {
            break recv;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        seen >= paused / 2 && seen <= paused,
        "mid-download, netwho top shows {seen} bytes received of {paused} spliced; its last table: {}",
        std::fs::read_to_string(&top_path)
            .unwrap_or_default()
            .lines()
            .last()
            .unwrap_or("")
    );
    let _ = client.stdin.as_mut().map(|s| {
        use std::io::Write as _;
        s.write_all(b"go\n")
    });
    let mut truth = client.finish();
    truth.extend(server.finish());
    assert_eq!(truth.len(), 2);
    let records = stop_all(nw, &truth);
    assert_matches(&truth, &records, "ebpf");
    let st = last_status(&records);
    assert!(
        st["kernel"]["bypass_recv"].as_u64().unwrap() >= 8 * mib - paused,
        "{st}"
    );
    assert!(sigint(&mut top).success());
}
