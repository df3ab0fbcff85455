//! The audit log: conntrack-logger's job without its misses. Every short
//! connection and one-shot datagram gets its line from a `--format`
//! template; a chained log survives kill -9 during a storm and still
//! verifies; a flipped byte is found and named; an independently written
//! chain of 100,000 records verifies.

#![expect(clippy::unwrap_used, reason = "tests")]
#![expect(clippy::disallowed_methods, reason = "tests wait with real deadlines")]

use netwho_e2e::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `netwho ARGS`, started; returns once its first stderr line (text logs:
/// the ready summary) or first ready status (JSON) is out.
fn start_netwho(args: &[&str], ready: impl Fn() -> bool) -> Child {
    let mut child = Command::new(netwho_bin())
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("netwho: {line}");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ready() || rx.try_recv().is_ok_and(|l| l.starts_with("netwho: ebpf")) {
            return child;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("netwho exited ({s}) before it was ready");
        }
        assert!(Instant::now() < deadline, "netwho was not ready in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn interrupt(mut child: Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success(), "netwho exited with {s}");
            return;
        }
        assert!(Instant::now() < deadline, "netwho did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (bounded) until `done` holds of the file's complete lines.
fn wait_lines(path: &Path, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |e| &text[..e]);
        let lines: Vec<String> = complete.lines().map(str::to_owned).collect();
        if done(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not appear in {} within 30 s ({} lines)",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const TEMPLATE: &str = "{event}|{proto}|{direction}|{src}|{sport}|{dst}|{dport}|{lport}|\
{pid}|{uid}:{gid}|{comm}|{cmdline}|{bytes_sent}|{bytes_recv}";

/// One template line, split.
struct Line {
    event: String,
    proto: String,
    direction: String,
    src: String,
    sport: u64,
    dst: String,
    dport: u64,
    lport: u64,
    pid: u64,
    ids: String,
    comm: String,
    cmdline: String,
    sent: u64,
    recv: u64,
}

fn parse(l: &str) -> Line {
    let f: Vec<&str> = l.split('|').collect();
    assert_eq!(f.len(), 14, "{l}");
    let n = |i: usize| f[i].parse::<u64>().unwrap_or_else(|_| panic!("{l}"));
    Line {
        event: f[0].into(),
        proto: f[1].into(),
        direction: f[2].into(),
        src: f[3].into(),
        sport: n(4),
        dst: f[5].into(),
        dport: n(6),
        lport: n(7),
        pid: n(8),
        ids: f[9].into(),
        comm: f[10].into(),
        cmdline: f[11].into(),
        sent: n(12),
        recv: n(13),
    }
}

#[test]
fn every_short_connection_and_datagram_gets_its_formatted_line() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("audit", 14);
    let user = TestUser::create("nwtaudit");
    let dir = TempDir::new("audit");
    let out = dir.0.join("log.txt");
    let [a, b, c, _] = ns.a4.octets();
    let filter = format!("fd.rnet = {a}.{b}.{c}.0/24");
    let nw = start_netwho(
        &[
            "log",
            "--on",
            "both",
            "--format",
            TEMPLATE,
            "-o",
            out.to_str().unwrap(),
            "-f",
            &filter,
        ],
        || false,
    );
    // 500 short TCP connections from one process
    let (tcp_server, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 500 --expect 1000 --reply 1000",
            ns.b4
        ),
    );
    let client_args = format!(
        "tcp-client --to {} --port {port} --conns 500 --send 1000 --expect 1000",
        ns.b4
    );
    let mut truth = run_gen(&ns.a, &client_args);
    truth.extend(tcp_server.finish());
    // 200 processes, each sending one datagram as the test user and exiting
    let (udp_server, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 24000 --count 200", ns.b4),
    );
    let udp = run_gen(
        &ns.a,
        &format!(
            "spawn-udp --to {} --port-base 24000 --count 200 --size 321 --src {} --as-user {}",
            ns.b4, ns.a4, user.name
        ),
    );
    truth.extend(udp_server.finish());
    assert_eq!(truth.len(), 1200);
    assert_eq!(udp.len(), 200);

    let want_closes = truth.len() + udp.len();
    let lines = wait_lines(&out, "every close line", |lines| {
        lines.iter().filter(|l| l.starts_with("close|")).count() >= want_closes
    });
    interrupt(nw);
    let lines: Vec<Line> = lines.iter().map(|l| parse(l)).collect();
    let tg = trafficgen();

    // TCP: exactly 500 open lines from the client, with its identity
    let client = truth.iter().find(|t| t["role"] == "client").unwrap()["pid"]
        .as_u64()
        .unwrap();
    let opens: Vec<&Line> = lines
        .iter()
        .filter(|l| l.event == "open" && l.pid == client)
        .collect();
    assert_eq!(opens.len(), 500);
    let cmd = format!("{} {client_args}", tg.display());
    for l in &opens {
        assert_eq!(
            (l.proto.as_str(), l.direction.as_str()),
            ("tcp", "outbound")
        );
        assert_eq!(
            (l.src.as_str(), l.dst.as_str()),
            (&*ns.a4.to_string(), &*ns.b4.to_string())
        );
        assert_eq!(l.dport, u64::from(port));
        assert_eq!(l.ids, "0:0");
        assert_eq!(l.comm, "netwho-trafficg");
        assert_eq!(l.cmdline, cmd);
    }
    // the server's side: 500 inbound opens, the client still the source
    let server_pid = truth.iter().find(|t| t["role"] == "server").unwrap()["pid"].as_u64();
    let inbound: Vec<&Line> = lines
        .iter()
        .filter(|l| l.event == "open" && Some(l.pid) == server_pid)
        .collect();
    assert_eq!(inbound.len(), 500);
    assert!(inbound.iter().all(|l| l.direction == "inbound"
        && l.src == ns.a4.to_string()
        && l.dport == u64::from(port)));

    // UDP: one open line per process, 200 processes, each as the test user
    let ids = format!("{}:{}", user.uid, user.gid);
    for t in &udp {
        let pid = t["pid"].as_u64().unwrap();
        let mine: Vec<&Line> = lines.iter().filter(|l| l.pid == pid).collect();
        let open: Vec<&&Line> = mine.iter().filter(|l| l.event == "open").collect();
        assert_eq!(open.len(), 1, "pid {pid}: {} open lines", open.len());
        let o = open[0];
        assert_eq!(o.proto, "udp");
        assert_eq!(o.ids, ids, "pid {pid}");
        assert_eq!(o.comm, "netwho-trafficg");
        let rport = t["rport"].as_u64().unwrap();
        assert_eq!(o.dport, rport);
        assert_eq!(
            o.cmdline,
            format!(
                "{} udp-oneshot --count 1 --to {} --src {} --port-base {rport} --size 321",
                tg.display(),
                ns.b4,
                ns.a4
            )
        );
        let close: Vec<&&Line> = mine.iter().filter(|l| l.event == "close").collect();
        assert_eq!(close.len(), 1, "pid {pid}");
        assert_eq!((close[0].sent, close[0].recv), (321, 0), "pid {pid}");
    }
    // every TCP flow's close line carries its exact payload both ways
    for t in truth.iter().filter(|t| t["proto"] == "tcp") {
        let (pid, lport) = (t["pid"].as_u64(), t["lport"].as_u64());
        let remote_port = |l: &Line| {
            if l.direction == "outbound" {
                l.dport
            } else {
                l.sport
            }
        };
        let c: Vec<&Line> = lines
            .iter()
            .filter(|l| {
                l.event == "close"
                    && Some(l.pid) == pid
                    && Some(l.lport) == lport
                    && t["rport"].as_u64() == Some(remote_port(l))
            })
            .collect();
        assert_eq!(c.len(), 1, "{t}");
        assert_eq!(
            (Some(c[0].sent), Some(c[0].recv)),
            (t["bytes_sent"].as_u64(), t["bytes_recv"].as_u64()),
            "{t}"
        );
    }
}

/// Every file of a log directory.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Wait (at most `secs`) until `dir` holds `n` files; else fail saying `what`.
fn wait_for_files(dir: &Path, n: usize, secs: u64, what: &str) {
    poll(secs, what, || {
        let now = files(dir);
        if now.len() >= n {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    });
}

/// `netwho log --verify FILES...`: exit code, stdout, stderr.
fn verify(files: &[PathBuf], extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(netwho_bin())
        .args(["log", "--verify"])
        .args(files)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A file of the log, decompressed if it is `.zst` (empty if it went
/// away: the compressor replaces files while netwho runs).
fn read_any(p: &Path) -> String {
    let Ok(bytes) = std::fs::read(p) else {
        return String::new();
    };
    if p.to_string_lossy().ends_with(".zst") {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(
            &mut zstd::stream::read::Decoder::new(&bytes[..]).unwrap(),
            &mut s,
        );
        s
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The whole log in chain order: rotated files by number, then the live one.
fn log_text(dir: &Path) -> String {
    let mut all = files(dir);
    all.retain(|p| !p.to_string_lossy().ends_with(".tmp"));
    // "flows.jsonl" sorts first; it is the newest
    if !all.is_empty() {
        all.rotate_left(1);
    }
    all.iter().map(|p| read_any(p)).collect()
}

#[test]
fn a_chained_log_survives_kill_9_in_a_storm_and_finds_a_flipped_byte() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("chain", 15);
    let dir = TempDir::new("chain");
    let logdir = dir.0.join("log");
    std::fs::create_dir_all(&logdir).unwrap();
    let live = logdir.join("flows.jsonl");
    let key = dir.0.join("key");
    std::fs::write(&key, b"a key of thirty-two bytes, no more").unwrap();
    let args = [
        "log",
        "--chain-key",
        key.to_str().unwrap(),
        "--on",
        "both",
        "--status-interval",
        "1",
        "--rotate-size",
        "4MiB",
        "-o",
        live.to_str().unwrap(),
    ];
    // ready: a ready status after the last chain (start or restart) record
    let ready = || {
        let text = log_text(&logdir);
        let Some(at) = text
            .rfind("\"reason\":\"restart\"")
            .or(text.rfind("\"reason\":\"start\""))
        else {
            return false;
        };
        text[at..].contains("\"ready\":true")
    };
    let mut first = start_netwho(&args, ready);
    let (echo, port) = server(&ns.b, &format!("bench-server --bind {} --size 100", ns.b4));
    // (the storm lasts until the restarted netwho has rotated too: on a slow
    // machine the first rotation can come late in a fixed storm)
    let storm = Gen::spawn(
        Some(&ns.a),
        &format!(
            "rate-client --to {} --port {port} --rate 1000 --secs 60",
            ns.b4
        ),
    );
    // kill -9 in the middle of the storm, once it has filled a file
    wait_for_files(&logdir, 2, 20, "the storm rotating the log");
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap();
    first.wait().unwrap();
    // restart at once, still in the storm
    let second = start_netwho(&args, || {
        log_text(&logdir).contains("\"reason\":\"restart\"") && ready()
    });
    wait_for_files(&logdir, 3, 40, "the restarted netwho rotating the log");
    // (dropped: stopped by its pid; rate-client prints no ground truth)
    drop(storm);
    drop(echo);
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(second);

    let all = files(&logdir);
    assert!(all.len() >= 3, "the storm filled several files: {all:?}");
    assert!(
        all[1..]
            .iter()
            .all(|p| p.to_string_lossy().ends_with(".zst")),
        "rotated files are compressed: {all:?}"
    );
    // no partial line anywhere: every line of every file is whole JSON
    let text = log_text(&logdir);
    assert!(text.ends_with('\n'));
    let mut opens = 0;
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        opens += usize::from(v["event"] == "open");
    }
    assert!(
        opens > 1000,
        "{opens} open records for a storm at 1000 conn/s"
    );
    let k = format!("--chain-key={}", key.display());
    let (code, stdout, stderr) = verify(&all, &[&k]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("chain intact"), "{stdout}");
    assert!(stdout.contains("was killed or crashed"), "{stdout}");
    assert!(stdout.contains("netwho stopped cleanly"), "{stdout}");
    // without the key: refused, and says which key it needs
    let (code, _, stderr) = verify(&all, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--chain-key"), "{stderr}");

    // flip one byte in the middle of a rotated file (stored uncompressed in
    // its place: --verify reads either)
    let victim = all[1].clone();
    let plain = PathBuf::from(victim.to_string_lossy().trim_end_matches(".zst"));
    let content = read_any(&victim);
    let lines: Vec<&str> = content.lines().collect();
    let target = lines.len() / 2;
    assert!(target > 10, "{} lines", lines.len());
    let offset: usize = lines[..target].iter().map(|l| l.len() + 1).sum::<usize>() + 5;
    let mut bytes = content.clone().into_bytes();
    bytes[offset] ^= 0x20;
    std::fs::remove_file(&victim).unwrap();
    std::fs::write(&plain, &bytes).unwrap();
    let mut given = all.clone();
    given[1] = plain.clone();
    let (code, _, stderr) = verify(&given, &[&k]);
    assert_eq!(code, 1, "{stderr}");
    let name = plain.file_name().unwrap().to_string_lossy().into_owned();
    let named = [target + 1, target + 2]
        .iter()
        .any(|n| stderr.contains(&format!("{name}:{n}:")));
    assert!(named, "line {} of {name} altered: {stderr}", target + 1);
    assert!(stderr.contains("CHAIN BROKEN"), "{stderr}");
}

/// A chain written by this test's own code, from the format as documented
/// (docs/specs/audit-log.md): netwho verifies 100,000 records of it and
/// names the record after a flipped byte.
#[test]
fn an_independently_written_chain_of_100000_records_verifies() {
    let dir = TempDir::new("chain100k");
    let path = dir.0.join("big.jsonl");
    let mut out = Vec::with_capacity(30 << 20);
    let mut prev = [0u8; 32];
    let mut push = |body: String, out: &mut Vec<u8>| {
        let line = format!(
            "{},\"prev_hash\":\"{}\"}}",
            &body[..body.len() - 1],
            hex(&prev)
        );
        prev = Sha256::digest(line.as_bytes()).into();
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    };
    push(
        r#"{"event":"chain","reason":"start","version":1,"ts":"2026-11-23T00:00:00Z","host":"t","boot_id":"0","netwho":"test","alg":"sha256","segment":1}"#.into(),
        &mut out,
    );
    for i in 0..100_000u64 {
        push(
            format!(
                r#"{{"event":"open","flow_id":"{i:x}","pid":{},"comm":"c{i}","bytes_sent":{}}}"#,
                1000 + i % 977,
                i * 7
            ),
            &mut out,
        );
    }
    std::fs::write(&path, &out).unwrap();
    let (code, stdout, stderr) = verify(std::slice::from_ref(&path), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("100001 records"), "{stdout}");

    // flip a byte of record 50,000 (line 50,001)
    let start: usize = out
        .split(|b| *b == b'\n')
        .take(50_000)
        .map(|l| l.len() + 1)
        .sum();
    let mut bad = out.clone();
    bad[start + 30] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let (code, _, stderr) = verify(&[path], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("big.jsonl:50001:") || stderr.contains("big.jsonl:50002:"),
        "{stderr}"
    );
}

/// `--journal=SOCKET`: journald's native protocol, every field as
/// NETWHO_<FIELD>; the test plays journald on a socket of its own.
#[test]
fn the_journal_gets_structured_fields() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("journal", 16);
    let dir = TempDir::new("journal");
    let sock_path = dir.0.join("journal.sock");
    let journal = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let nw = Command::new(netwho_bin())
        .args(["log", "--on", "both", "-p", "tcp"])
        .arg(format!("--journal={}", sock_path.display()))
        .spawn()
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut next = || -> Vec<(String, String)> {
        let n = journal.recv(&mut buf).unwrap();
        parse_journal(&buf[..n])
    };
    // netwho says it is ready first
    let ready = next();
    assert!(
        ready.contains(&("NETWHO_EVENT".into(), "status".into())),
        "{ready:?}"
    );
    let (server_gen, port) = server(
        &ns.b,
        &format!("tcp-server --bind {} --expect 777 --reply 99", ns.b4),
    );
    let truth = run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --send 777 --expect 99",
            ns.b4
        ),
    );
    server_gen.finish();
    let pid = truth[0]["pid"].to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let close = loop {
        assert!(Instant::now() < deadline, "no close entry for pid {pid}");
        let e = next();
        let get = |k: &str| e.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        if get("NETWHO_PID") == Some(pid.clone()) && get("NETWHO_EVENT").as_deref() == Some("close")
        {
            break e;
        }
    };
    let get = |k: &str| {
        close
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{k} missing: {close:?}"))
    };
    assert_eq!(get("SYSLOG_IDENTIFIER"), "netwho");
    assert_eq!(get("NETWHO_BYTES_SENT"), "777");
    assert_eq!(get("NETWHO_BYTES_RECV"), "99");
    assert_eq!(get("NETWHO_RPORT"), port.to_string());
    assert_eq!(get("NETWHO_RADDR"), ns.b4.to_string());
    assert_eq!(get("NETWHO_COMM"), "netwho-trafficg");
    assert_eq!(get("NETWHO_USER"), "root");
    assert!(get("MESSAGE").contains(&format!(":: {pid} root(0):root(0)")));
    interrupt(nw);
}

/// journald's native format: KEY=VALUE lines, or KEY\n<u64 LE length>VALUE\n.
fn parse_journal(mut b: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(nl) = b.iter().position(|c| *c == b'\n') {
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|c| *c == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            b = &b[nl + 1..];
        } else {
            let len = u64::from_le_bytes(b[nl + 1..nl + 9].try_into().unwrap()) as usize;
            out.push((
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(&b[nl + 9..nl + 9 + len]).into_owned(),
            ));
            b = &b[nl + 10 + len..];
        }
    }
    out
}
