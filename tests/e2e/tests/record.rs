//! Record now, analyse later: a recording made during real traffic in
//! network namespaces replays into exactly the log the live run printed,
//! and every report's numbers equal the traffic generator's truth (per
//! process, per user, per port, per remote, per connection, per interval,
//! Internet-only). A recorder killed mid-storm leaves a readable file; a
//! damaged one reads around the damage; a future version is refused.

#![expect(clippy::unwrap_used, reason = "tests")]
#![expect(clippy::disallowed_methods, reason = "tests wait with real deadlines")]

use netwho_e2e::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn netwho(args: &[&str]) -> Output {
    Command::new(netwho_bin()).args(args).output().unwrap()
}

fn rows(doc: &Value) -> &Vec<Value> {
    doc["rows"].as_array().unwrap()
}

/// Sent and received bytes of truth flows, summed by `key`.
fn sums(truth: &[Value], key: impl Fn(&Value) -> String) -> BTreeMap<String, (u64, u64)> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in truth {
        let e = m.entry(key(t)).or_default();
        e.0 += t["bytes_sent"].as_u64().unwrap();
        e.1 += t["bytes_recv"].as_u64().unwrap();
    }
    m
}

/// A report's rows, sent and received by `key`.
fn got(doc: &Value, key: impl Fn(&Value) -> String) -> BTreeMap<String, (u64, u64)> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in rows(doc) {
        let e = m.entry(key(r)).or_default();
        e.0 += r["sent"].as_u64().unwrap();
        e.1 += r["recv"].as_u64().unwrap();
    }
    m
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "addr:port" as flow endpoints print ("[v6]:port").
fn ep(addr: &Value, port: &Value) -> String {
    let a = s(addr);
    if a.contains(':') {
        format!("[{a}]:{port}")
    } else {
        format!("{a}:{port}")
    }
}

#[test]
fn reports_over_a_recording_equal_the_truth_and_replay_equals_live() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("rec", 17);
    let user = TestUser::create("nwtrec");
    let dir = TempDir::new("recording");
    let rec = dir.0.join("act1.nwr");
    let filter = format!("fd.rnet = 10.231.17.0/24 or fd.rnet = {}/112", ns.a6);
    let nw = Netwho::start("rec", &["--record", rec.to_str().unwrap(), "-f", &filter]);

    // one dual-stack server; root connects over IPv4, the test user over IPv6
    let (srv, port) = server(
        &ns.b,
        "tcp-server --bind :: --conns 30 --expect 700 --reply 3000",
    );
    let mut truth = run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 20 --send 700 --expect 3000",
            ns.b4
        ),
    );
    truth.extend(run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 10 --send 700 --expect 3000 --as-user {}",
            ns.b6, user.name
        ),
    ));
    truth.extend(srv.finish());
    // 20 processes of the test user, one datagram each
    let (udp_srv, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 24100 --count 20", ns.b4),
    );
    truth.extend(run_gen(
        &ns.a,
        &format!(
            "spawn-udp --to {} --port-base 24100 --count 20 --size 321 --src {} --as-user {}",
            ns.b4, ns.a4, user.name
        ),
    ));
    truth.extend(udp_srv.finish());
    assert_eq!(truth.len(), 30 * 2 + 20 * 2);
    let live = stop_all(nw, &truth);
    let recs = rec.to_str().unwrap();

    // replay equals live: the same lines, byte for byte
    let out = netwho(&["log", "-r", recs, "--json", "--on", "both", "-f", &filter]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Vec<Value> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replayed.len(), live.len());
    for (i, (a, b)) in live.iter().zip(&replayed).enumerate() {
        assert_eq!(a, b, "record {i} differs between live and replay");
    }
    // and the replay through the filter language narrows the same way
    let out = netwho(&[
        "log",
        "-r",
        recs,
        "--json",
        "--on",
        "close",
        "fd.proto = udp",
    ]);
    let udp_closes = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        udp_closes
            .lines()
            .filter(|l| l.contains("\"close\""))
            .count(),
        40
    );

    let by_pid = |t: &Value| s(&t["pid"]);
    // top-procs and bytes: per process
    let doc = report_json(["top-procs", "-r", recs, "--limit", "100"]);
    assert_eq!(got(&doc, by_pid), sums(&truth, by_pid));
    assert_eq!(doc["read"]["clean_end"], true);
    assert_eq!(doc["read"]["frames_corrupt"], 0);
    let doc = report_json(["bytes", "-r", recs]);
    assert_eq!(got(&doc, by_pid), sums(&truth, by_pid));
    let total: (u64, u64) = sums(&truth, |_| String::new())[""];
    assert_eq!(
        (
            doc["totals"]["sent"].as_u64(),
            doc["totals"]["recv"].as_u64()
        ),
        (Some(total.0), Some(total.1))
    );
    assert_eq!(doc["totals"]["flows"], 100);

    // by-user: the test user's clients and datagrams, root's server and client
    let doc = report_json(["by-user", "-r", recs]);
    let by_uid = |t: &Value| s(&t["uid"]);
    assert_eq!(got(&doc, by_uid), sums(&truth, by_uid));
    assert!(rows(&doc).iter().any(|r| r["user"] == user.name.as_str()));
    // per hour: the same totals, split at most in two
    let doc = report_json(["by-user", "-r", recs, "--interval", "1h"]);
    assert_eq!(got(&doc, by_uid), sums(&truth, by_uid));

    // the reports above without a window came from the recording's
    // summary, written private at the clean end: decoding the recording
    // gives the same documents; a filter decodes it
    let sum = dir.0.join("act1.nwr.sum");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sum).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    for kind in ["top-procs", "bytes", "by-user", "by-unit"] {
        let quick = netwho(&["report", kind, "-r", recs, "--json", "-v"]);
        let how = String::from_utf8_lossy(&quick.stderr);
        assert!(
            how.contains("read from the recording's summary"),
            "{kind}: {how}"
        );
        let full = netwho(&["report", kind, "-r", recs, "--json", "--no-summary"]);
        assert!(quick.status.success() && full.status.success());
        assert_eq!(
            String::from_utf8_lossy(&quick.stdout),
            String::from_utf8_lossy(&full.stdout),
            "{kind}"
        );
    }
    let out = netwho(&["report", "top-procs", "-r", recs, "-v", "user.uid = 0"]);
    let how = String::from_utf8_lossy(&out.stderr);
    assert!(how.contains("read the recording in full"), "{how}");

    // Internet accounting: with 10.231.17.0/24 "local", only IPv6 counts:
    // the test user's 10 connections and the server's side of them
    let doc = report_json([
        "by-user",
        "-r",
        recs,
        "--exclude-local",
        "--local-nets",
        "10.231.17.0/24",
    ]);
    let v6: Vec<Value> = truth
        .iter()
        .filter(|t| s(&t["raddr"]).contains(':'))
        .cloned()
        .collect();
    assert_eq!(v6.len(), 20);
    assert_eq!(got(&doc, by_uid), sums(&v6, by_uid));
    // with the default list every test address is local
    let doc = report_json(["by-user", "-r", recs, "--exclude-local"]);
    assert!(rows(&doc).is_empty(), "{doc}");

    // top-conns: every connection with its exact bytes
    let doc = report_json(["top-conns", "-r", recs, "--limit", "1000"]);
    let conn = |l: String, r: String| format!("{l} {r}");
    let want = sums(&truth, |t| {
        conn(ep(&t["laddr"], &t["lport"]), ep(&t["raddr"], &t["rport"]))
    });
    let have = got(&doc, |r| conn(s(&r["local"]), s(&r["remote"])));
    assert_eq!(have, want);

    // top-ports: the server's port here, the clients' view of it remote
    let doc = report_json(["top-ports", "-r", recs, "fd.proto = tcp"]);
    let tcp: Vec<Value> = truth
        .iter()
        .filter(|t| t["proto"] == "tcp")
        .cloned()
        .collect();
    let here = sums(&tcp, |t| {
        if t["role"] == "server" {
            "here"
        } else {
            "remote"
        }
        .into()
    });
    let have = got(&doc, |r| {
        assert_eq!(r["port"], port);
        s(&r["server"])
    });
    assert_eq!(have, here);
    let served = rows(&doc).iter().find(|r| r["server"] == "here").unwrap();
    assert_eq!(served["conns"], 30);
    assert_eq!(served["peers"], 2);

    // top-remotes: by remote address
    let doc = report_json(["top-remotes", "-r", recs, "--limit", "100"]);
    let by_remote = |t: &Value| s(&t["raddr"]);
    assert_eq!(got(&doc, |r| s(&r["remote"])), sums(&truth, by_remote));

    // timeline of root's client: every byte in some interval
    let client = truth
        .iter()
        .find(|t| t["role"] == "client" && t["uid"] == 0)
        .unwrap();
    let pid = s(&client["pid"]);
    let doc = report_json(["timeline", "-r", recs, "--pid", &pid]);
    let sum = got(&doc, |_| String::new())[""];
    assert_eq!(sum, (20 * 700, 20 * 3000));
    let out = netwho(&["report", "timeline", "-r", recs, "--pid", &pid, "--csv"]);
    let csv = String::from_utf8(out.stdout).unwrap();
    // (numbers for programs: no chart)
    assert!(csv.starts_with("time,sent,recv\n"), "{csv}");

    // spy: everything one endpoint did
    let doc = report_json(["spy", "-r", recs, "--ip", &ns.a6.to_string()]);
    assert_eq!(rows(&doc).len(), 20);
    assert!(rows(&doc).iter().all(|r| r["end"] == "socket_closed"));
    let doc = report_json(["spy", "-r", recs, "--port", &port.to_string()]);
    assert_eq!(rows(&doc).len(), 60);
    let stamps: Vec<String> = rows(&doc).iter().map(|r| s(&r["opened"])).collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted, "spy lists flows in time order");

    // a window after everything: nothing
    let doc = report_json(["top-procs", "-r", recs, "--since", "+1h"]);
    assert!(rows(&doc).is_empty());

    // a reader that goes away (`| head -c 10`) ends the output quietly
    for args in [
        &["log", "-r", recs, "--json", "--on", "both"][..],
        &["log", "-r", recs, "--on", "both"],
        &["report", "top-conns", "-r", recs, "--csv"],
        &["top", "-r", recs, "--json", "--speed", "0"],
    ] {
        let mut child = Command::new(netwho_bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        use std::io::Read as _;
        let _ = child.stdout.take().unwrap().read(&mut first).unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(0) && !err.contains("panicked"),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}

/// Wait (bounded) for `path` to grow past `bytes`.
fn wait_size(path: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(path).map_or(0, |m| m.len()) < bytes {
        assert!(Instant::now() < deadline, "{} did not grow", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn recordings_survive_kill_damage_and_say_what_they_cannot_read() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("recd", 18);
    let dir = TempDir::new("recording-damage");
    let rec = dir.0.join("timed.nwr");
    let recs = rec.to_str().unwrap().to_string();
    let filter = "fd.rnet = 10.231.18.0/24";

    // --duration ends the recording by itself, cleanly
    let mut timed = Command::new(netwho_bin())
        .args(["record", "-w", &recs, "--duration", "6", "-q", "-f", filter])
        .spawn()
        .unwrap();
    wait_size(&rec, 64);
    std::thread::sleep(Duration::from_secs(2));
    let (srv, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 10 --expect 100 --reply 200",
            ns.b4
        ),
    );
    let mut truth = run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 10 --send 100 --expect 200",
            ns.b4
        ),
    );
    truth.extend(srv.finish());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = timed.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "record --duration did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    let doc = report_json(["bytes", "-r", &recs]);
    assert_eq!(doc["read"]["clean_end"], true);
    assert_eq!(doc["totals"]["sent"], 10 * 100 + 10 * 200);
    assert_eq!(doc["totals"]["flows"], 20);
    assert!(dir.0.join("timed.nwr.sum").exists());

    // the same file again: refused, nothing overwritten
    let out = netwho(&["record", "-w", &recs, "-q"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    // kill -9 in a storm: the file reads up to its last whole frame
    let killed = dir.0.join("killed.nwr");
    let mut rec_proc = Command::new(netwho_bin())
        .args(["record", "-w", killed.to_str().unwrap(), "-q", "-f", filter])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_size(&killed, 64);
    std::thread::sleep(Duration::from_secs(2));
    let (srv, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 400 --expect 100 --reply 100",
            ns.b4
        ),
    );
    let storm = run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 400 --send 100 --expect 100",
            ns.b4
        ),
    );
    srv.finish();
    std::thread::sleep(Duration::from_millis(1500));
    rec_proc.kill().unwrap();
    rec_proc.wait().unwrap();
    let out = netwho(&[
        "report",
        "top-conns",
        "-r",
        killed.to_str().unwrap(),
        "--limit",
        "1000",
        "--json",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not stop cleanly") || err.contains("ends inside a frame"),
        "{err}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["read"]["clean_end"], false);
    // no summary of a killed recorder's file: it is read in full
    assert!(!dir.0.join("killed.nwr.sum").exists());
    let out = netwho(&["report", "bytes", "-r", killed.to_str().unwrap(), "-v"]);
    let how = String::from_utf8_lossy(&out.stderr);
    assert!(how.contains("read the recording in full"), "{how}");
    // every connection the file closed has its exact bytes
    let closed: Vec<&Value> = rows(&doc)
        .iter()
        .filter(|r| !r["duration_s"].is_null())
        .collect();
    assert!(
        closed.len() >= 700,
        "only {} closed connections read",
        closed.len()
    );
    assert!(closed.iter().all(|r| r["sent"] == 100 && r["recv"] == 100));
    assert_eq!(storm.len(), 400);

    // damage: one flipped byte in the middle skips one frame, with a warning
    let bytes = std::fs::read(&killed).unwrap();
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    let damaged = dir.0.join("damaged.nwr");
    std::fs::write(&damaged, &bad).unwrap();
    let out = netwho(&["report", "bytes", "-r", damaged.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("damaged frame"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["read"]["frames_corrupt"], 1);

    // a future format and a file that is no recording: exit 2, and why
    let mut future = bytes.clone();
    future[8..10].copy_from_slice(&99u16.to_le_bytes());
    let fut = dir.0.join("future.nwr");
    std::fs::write(&fut, &future).unwrap();
    let out = netwho(&["report", "top-procs", "-r", fut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("format version 99."));
    let text = dir.0.join("log.jsonl");
    std::fs::write(&text, "{\"event\":\"open\"}\n").unwrap();
    let out = netwho(&["log", "-r", text.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a netwho recording"));
    drop(truth);
}

/// `netwho record` with its arguments, started; returns once the recorder
/// wrote its first frame (the ready status: every hook attached).
fn start_recorder(path: &Path, args: &[&str]) -> std::process::Child {
    let child = Command::new(netwho_bin())
        .args(["record", "-w", path.to_str().unwrap(), "-q"])
        .args(args)
        .spawn()
        .unwrap();
    wait_size(path, 1);
    let header = std::fs::metadata(path).unwrap().len();
    wait_size(path, header + 1);
    child
}

/// SIGINT, and a clean exit.
fn stop_recorder(mut child: std::process::Child) {
    let pid = child.id().to_string();
    run(Command::new("kill").args(["-INT", &pid]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success(), "record exited {s}");
            return;
        }
        assert!(Instant::now() < deadline, "record did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn payload_capture_keeps_the_first_bytes_of_each_direction_in_order() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("cap", 24);
    let dir = TempDir::new("recording-payload");
    let rec = dir.0.join("payload.nwr");
    let recs = rec.to_str().unwrap();
    let filter = format!("fd.rnet = 10.231.24.0/24 or fd.rnet = {}/112", ns.a6);
    const SNAP: usize = 2000;
    let nw = start_recorder(&rec, &["-s", &SNAP.to_string(), "-f", &filter]);

    // requests longer than the snap length (several segments and ring
    // records each), replies shorter; over IPv4 and IPv6; and datagrams
    let (srv, port) = server(
        &ns.b,
        "tcp-server --bind :: --conns 4 --expect 70000 --reply 300",
    );
    let mut truth = Vec::new();
    for to in [ns.b4.to_string(), ns.b6.to_string()] {
        truth.extend(run_gen(
            &ns.a,
            &format!("tcp-client --to {to} --port {port} --conns 2 --send 70000 --expect 300"),
        ));
    }
    truth.extend(srv.finish());
    let (udp_srv, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 24200 --count 3", ns.b4),
    );
    truth.extend(run_gen(
        &ns.a,
        &format!(
            "udp-oneshot --to {} --port-base 24200 --count 3 --size 321 --src {}",
            ns.b4, ns.a4
        ),
    ));
    truth.extend(udp_srv.finish());
    assert_eq!(truth.len(), 4 * 2 + 3 * 2);
    std::thread::sleep(Duration::from_secs(2));
    stop_recorder(nw);

    let request = pattern(SEED_CLIENT, 0, SNAP);
    let reply = pattern(SEED_SERVER, 0, 300);
    let datagram = pattern(SEED_CLIENT, 0, 321);
    for (ip, flows) in [(ns.b4.to_string(), 4 + 6), (ns.b6.to_string(), 4)] {
        let doc = report_json(["spy", "-r", recs, "--ip", &ip]);
        assert_eq!(doc["recording"]["snaplen"], SNAP);
        assert_eq!(rows(&doc).len(), flows, "{ip}: {doc}");
        for r in rows(&doc) {
            let what = format!("{ip}: {} {} {}", r["local"], r["dir"], r["remote"]);
            let (sent, recv) = match (s(&r["proto"]).as_str(), s(&r["dir"]).as_str()) {
                ("tcp", "->") => (&request, &reply),
                ("tcp", "<-") => (&reply, &request),
                ("udp", "->") => (&datagram, &Vec::new()),
                ("udp", _) => (&Vec::new(), &datagram),
                _ => panic!("{what}: unexpected flow"),
            };
            assert_eq!(r["sent_data"], hex(sent), "{what}: sent");
            assert_eq!(r["recv_data"], hex(recv), "{what}: received");
        }
    }

    // -A: printable text, the rest as dots; without -s no payload at all
    let out = netwho(&[
        "report",
        "spy",
        "-A",
        "-r",
        recs,
        "--port",
        &port.to_string(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        "{text}"
    );
    assert!(text.contains("sent data (2.0 KiB)"), "{text}");
    assert!(!text.contains("0000  "), "no hex dump with -A: {text}");
    let plain = dir.0.join("plain.nwr");
    let nw = start_recorder(&plain, &["-f", &filter]);
    let (srv, port) = server(
        &ns.b,
        "tcp-server --bind :: --conns 1 --expect 10 --reply 10",
    );
    run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 1 --send 10 --expect 10",
            ns.b4
        ),
    );
    srv.finish();
    std::thread::sleep(Duration::from_secs(2));
    stop_recorder(nw);
    let doc = report_json([
        "spy",
        "-r",
        plain.to_str().unwrap(),
        "--port",
        &port.to_string(),
    ]);
    assert_eq!(doc["recording"]["snaplen"], 0);
    assert_eq!(rows(&doc).len(), 2);
    assert!(rows(&doc).iter().all(|r| r.get("sent_data").is_none()));
    let out = netwho(&[
        "report",
        "spy",
        "-A",
        "-r",
        plain.to_str().unwrap(),
        "--port",
        "1",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept no payload"));
}

#[test]
fn top_replays_a_recording_with_pause_speed_and_seek_keys() {
    if !require_tmux() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("rkeys", 25);
    let dir = TempDir::new("recording-keys");
    let rec = dir.0.join("keys.nwr");
    let nw = start_recorder(&rec, &["-f", "fd.rnet = 10.231.25.0/24"]);
    // four connections 2 s apart: about 6 recorded seconds
    let (srv, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 4 --expect 100 --reply 100",
            ns.b4
        ),
    );
    for _ in 0..4 {
        run_gen(
            &ns.a,
            &format!(
                "tcp-client --to {} --port {port} --conns 1 --send 100 --expect 100",
                ns.b4
            ),
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    srv.finish();
    stop_recorder(nw);

    let cmd = format!(
        "{} top --text -r {} --speed 0.25; stty -a; sleep 30",
        netwho_bin().display(),
        rec.display()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("keys: space pause");
    t.wait_for("netwho top  ");
    // paused: no table comes while it is
    t.keys(&["Space"]);
    t.wait_for("paused at");
    std::thread::sleep(Duration::from_millis(500));
    let tables = |s: &str| s.matches("netwho top  ").count();
    let before = tables(&t.screen());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tables(&t.screen()), before, "a table while paused");
    t.keys(&["Space"]);
    t.wait_for("speed 1/4x");
    t.keys(&["+"]);
    t.wait_for("speed 1/2x");
    // seek back (from the start again, quietly to the place), then on:
    // each says where it goes. Paused first, so that a slow machine cannot
    // reach the end of the 6 s recording before the keys arrive (a paused
    // replay takes commands too)
    let shown = |what: &str, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while t.screen().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "no {what:?} #{n}:\n{}",
                t.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    t.keys(&["Space"]);
    shown("paused at", 2);
    t.keys(&["Left"]);
    shown("seeking to", 1);
    t.keys(&["Right"]);
    shown("seeking to", 2);
    // q ends it, and the terminal is as it was (canonical, echoing)
    t.keys(&["q"]);
    let s = t.wait_for("speed ");
    let s = if s.contains(" icanon") {
        s
    } else {
        t.wait_for(" icanon")
    };
    assert!(s.contains(" echo ") || s.contains(" echo\n"), "{s}");
    assert!(!s.contains("-icanon"), "{s}");
}
