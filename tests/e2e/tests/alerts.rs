//! First-seen alerts (`[alerts]` of the daemon) end to end: a daemon that
//! learns for a few seconds, then alerts exactly once for a new
//! destination, a new program and a changed executable, never for a known
//! or allowed destination; to the alert log, the journal, a webhook, the
//! API (each user sees their own) and `/metrics`; and remembers across a
//! restart.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A webhook receiver on the loopback: the bodies it was POSTed.
fn webhook() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let g = Arc::clone(&g);
            std::thread::spawn(move || {
                let mut r = BufReader::new(s);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    g.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).to_string());
                    let _ = r
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    (port, got)
}

/// A query on the history database (Python's sqlite3: the test reads what
/// the daemon wrote, not through netwho).
fn sql(db: &Path, query: &str) -> Vec<Vec<Value>> {
    let py = format!(
        "import sqlite3,json,sys\nc=sqlite3.connect('file:{}?mode=ro',uri=True)\nprint(json.dumps([list(r) for r in c.execute(sys.argv[1])]))",
        db.display()
    );
    let out = Command::new("python3")
        .args(["-c", &py, query])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Flows of `exe` to `port` the history holds.
fn flows_of(db: &Path, exe: &Path, port: u16) -> i64 {
    let rows = sql(
        db,
        &format!(
            "SELECT COUNT(*) FROM flow f JOIN proc p ON p.id = f.proc WHERE p.exe = '{}' AND f.rport = {port}",
            exe.display().to_string().replace('\'', "''")
        ),
    );
    rows[0][0].as_i64().unwrap()
}

/// A request over the API's socket as `user` (by a Python one-liner, so
/// the kernel sees that user's credentials): (status, body).
fn api_as(user: &TestUser, sock: &Path, method: &str, path: &str) -> (u16, String) {
    let py = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect({sock:?})\ns.sendall(b'{method} {path} HTTP/1.0\\r\\nHost: x\\r\\nContent-Length: 0\\r\\n\\r\\n')\nb=b''\nwhile True:\n  d=s.recv(65536)\n  if not d: break\n  b+=d\nsys.stdout.write(b.decode())\n",
        sock = sock.display().to_string()
    );
    let (ok, out, err) = as_user(user, Path::new("/usr/bin/env"), &["python3", "-c", &py]);
    assert!(ok, "{err}");
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (
        head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

/// The alerts' event stream from `after`, read until it has carried `n`
/// alert events (bounded): their records.
fn stream_alerts(sock: &Path, after: i64, n: usize) -> Vec<Value> {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        format!("GET /api/v1/alerts/stream?after={after} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let events: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect();
        if events.len() >= n {
            return events;
        }
        let got = s.read(&mut buf).unwrap_or(0);
        assert!(got > 0, "the stream ended with {text:?}");
        text.push_str(&String::from_utf8_lossy(&buf[..got]));
    }
}

fn root_api(sock: &Path, path: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The alerts the API lists to root.
fn listed(sock: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&root_api(sock, "/api/v1/alerts")).unwrap();
    v["alerts"].as_array().unwrap().clone()
}

/// Dropped in this order: servers, namespaces, user, files, the lock.
struct World {
    /// Servers on the fixed ports, in the second namespace.
    servers: Vec<Gen>,
    ns: Netns,
    user: TestUser,
    dir: TempDir,
    _serial: Serial,
}

const KNOWN: u16 = 7101;
const NEW: u16 = 7102;
const ALLOWED: u16 = 7103;

impl World {
    /// `conns` connections of `prog` (run as the test user) to `port`.
    fn connect(&self, prog: &Path, port: u16, conns: u32) {
        self.client(prog, port, conns, &[]).finish();
    }

    /// The client of [`World::connect`], running (`extra`: more options).
    fn client(&self, prog: &Path, port: u16, conns: u32, extra: &[&str]) -> Gen {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns.a]).arg(prog).args([
            "tcp-client",
            "--to",
            &self.ns.b4.to_string(),
            "--port",
            &port.to_string(),
            "--conns",
            &conns.to_string(),
            "--send",
            "100",
            "--expect",
            "10",
            "--as-user",
            &self.user.name,
        ]);
        c.args(extra);
        Gen::spawn_cmd(c)
    }

    fn prog(&self, name: &str) -> PathBuf {
        let p = self.dir.0.join(name);
        std::fs::copy(trafficgen(), &p).unwrap();
        p
    }
}

fn config(dir: &Path, webhook: u16, learn: &str, listen: &str) -> String {
    format!(
        "listen = \"{listen}\"\ntoken_file = \"{}\"\nkeep_closed = \"5m\"\n[metrics]\nenabled = true\n[alerts]\nenabled = true\nlearn = \"{learn}\"\nallow = [\"fd.rport = {ALLOWED}\"]\nlog = \"{}\"\njournal = \"{}\"\nwebhook = \"http://127.0.0.1:{webhook}/hook\"\n",
        dir.join("token").display(),
        dir.join("alerts.jsonl").display(),
        dir.join("journal.sock").display(),
    )
}

/// The web page lists the alerts, and acknowledges the new program's with
/// a click (over TCP with the token, as root sees it).
fn web_page(listen: &str, token_file: &Path, alerts: &[Value]) {
    let token = std::fs::read_to_string(token_file)
        .unwrap()
        .trim()
        .to_string();
    let b = Browser::start();
    b.goto(&format!("http://{listen}/#token={token}"));
    let shown = b.wait_text(
        "the alerts on the web page",
        "const b = document.querySelector('#alerts-box'); return b && !b.hidden ? document.querySelector('#alerts tbody').innerText : ''",
        &["new_destination", "new_program", "exe_changed"],
    );
    // the one its user acknowledged over the API has no button
    assert_eq!(
        b.js("return document.querySelectorAll('#alerts button.ack').length"),
        Value::from(2),
        "{shown}"
    );
    let np = alerts.iter().find(|a| a["kind"] == "new_program").unwrap();
    let id = np["id"].as_i64().unwrap();
    b.click(
        "the new program's acknowledge button",
        &format!("//table[@id='alerts']//tr[@data-id='{id}']//button"),
    );
    b.wait_text(
        "the new program's alert acknowledged",
        &format!("const r = document.querySelector(\"#alerts tr[data-id='{id}']\"); return r ? r.innerText : ''"),
        &["acknowledged 20"],
    );
    b.screenshot("web-page-alerts.png");
}

#[test]
fn each_new_destination_program_and_binary_alerts_once_everywhere_and_survives_a_restart() {
    if !require_tmux() {
        return;
    }
    let serial = serial();
    let ns = Netns::pair("alerts", 48);
    let mut w = World {
        user: TestUser::create("nwalerta"),
        dir: TempDir::new("alerts"),
        servers: Vec::new(),
        ns,
        _serial: serial,
    };
    let other = TestUser::create("nwalertb");
    for port in [KNOWN, NEW, ALLOWED] {
        let (g, _) = server(
            &w.ns.b,
            &format!(
                "tcp-server --bind {} --port {port} --conns 100 --expect 100 --reply 10",
                w.ns.b4
            ),
        );
        w.servers.push(g);
    }
    let dir = w.dir.0.clone();
    let db = dir.join("h.db");
    let sock = dir.join("api.sock");
    let journal = UnixDatagram::bind(dir.join("journal.sock")).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (hook, posted) = webhook();
    let known = w.prog("known");
    let changing = w.prog("changing");
    // a hostile name: quotes, a newline, an escape sequence
    let evil = w.prog("new \"prog\"\n\u{1b}[31mx");
    let [a, b, c, _] = w.ns.b4.octets();
    let filter = format!("fd.rnet = {a}.{b}.{c}.0/24");
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = config(&dir, hook, "10s", &listen);
    let d = Daemon::configured(&dir, &filter, "remote_names = false\n", &cfg);
    d.wait_log("alerts: learning until");
    d.wait_log(&format!("api: {}", sock.display()));

    // learning: the known program to its port, the changing one too
    w.connect(&known, KNOWN, 2);
    w.connect(&changing, KNOWN, 3);
    poll(20, "the changing program's hash in the baseline", || {
        let rows = sql(
            &db,
            &format!(
                "SELECT h.sha256 FROM alert_hash h JOIN alert_prog p ON p.id = h.prog WHERE p.key = '{}'",
                changing.display()
            ),
        );
        if rows.len() == 1 {
            Ok(())
        } else {
            Err(format!(
                "{rows:?}; programs {:?}; hashes {:?}; procs {:?}",
                sql(&db, "SELECT * FROM alert_prog"),
                sql(&db, "SELECT * FROM alert_hash"),
                sql(&db, "SELECT exe, exe_sha256 FROM proc")
            ))
        }
    });
    assert!(listed(&sock).is_empty(), "nothing alerts while learning");
    d.wait_log("alerts: learning ended");

    // after learning
    w.connect(&known, KNOWN, 1);
    w.connect(&known, ALLOWED, 1);
    w.connect(&known, NEW, 2);
    // the new program holds its connection open (until the interactive
    // view has shown it)
    let mut evil_client = w.client(&evil, KNOWN, 1, &["--pause-after", "50"]);
    evil_client.wait_for("paused");
    {
        // a new binary at the same path
        let mut bytes = std::fs::read(trafficgen()).unwrap();
        bytes.extend_from_slice(b"a different build");
        let tmp = dir.join("changing.new");
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::rename(&tmp, &changing).unwrap();
    }
    w.connect(&changing, KNOWN, 3);
    poll(20, "the flows in the history", || {
        let n = (
            flows_of(&db, &known, ALLOWED),
            flows_of(&db, &known, NEW),
            flows_of(&db, &changing, KNOWN),
        );
        if n == (1, 2, 6) {
            Ok(())
        } else {
            Err(format!("{n:?}"))
        }
    });
    let alerts = poll(20, "three alerts on the API", || {
        let l = listed(&sock);
        if l.len() >= 3 {
            Ok(l)
        } else {
            Err(format!("{l:?}"))
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let alerts = {
        let again = listed(&sock);
        assert_eq!(again.len(), 3, "exactly three: {again:#?}");
        assert_eq!(again.len(), alerts.len());
        again
    };
    let by_kind: BTreeMap<String, &Value> = alerts
        .iter()
        .map(|a| (a["kind"].as_str().unwrap().to_string(), a))
        .collect();
    let nd = by_kind["new_destination"];
    assert_eq!(nd["exe"], known.display().to_string());
    assert_eq!(nd["rport"], NEW);
    assert_eq!(nd["raddr"], w.ns.b4.to_string());
    assert_eq!(nd["proto"], "tcp");
    let np = by_kind["new_program"];
    assert_eq!(np["exe"], evil.display().to_string());
    assert_eq!(np["rport"], KNOWN, "it names its first destination");
    let ec = by_kind["exe_changed"];
    assert_eq!(ec["exe"], changing.display().to_string());
    assert_eq!(ec["known_sha256"].as_array().map(Vec::len), Some(1));
    assert_ne!(ec["exe_sha256"], ec["known_sha256"][0]);
    assert!(ec["exe_sha256"].as_str().is_some_and(|h| h.len() == 64));
    for a in &alerts {
        assert_eq!(a["event"], "alert");
        assert_eq!(a["user"], w.user.name);
        assert_eq!(a["uid"], w.user.uid);
        assert!(a["pid"].as_u64().is_some_and(|p| p > 0));
        assert!(a["flow_id"].as_str().is_some());
        assert!(a["acked"].is_null());
    }

    // the interactive view from the daemon marks the row of the process
    // that alerted and still runs, and its program's row
    {
        let t = Tmux::start(&format!(
            "{} top --connect={} --no-dns",
            netwho_bin().display(),
            sock.display()
        ));
        t.wait_for("! new \"prog\"");
        t.keys(&["2"]);
        t.wait_for(&format!("! {}", dir.join("new").display()));
        t.keys(&["q"]);
    }
    evil_client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"\n")
        .unwrap();
    evil_client.finish();
    // the event stream: every alert from the start, as the list has them
    let streamed = stream_alerts(&sock, 0, 3);
    assert_eq!(
        streamed.iter().map(|a| a["id"].clone()).collect::<Vec<_>>(),
        alerts.iter().map(|a| a["id"].clone()).collect::<Vec<_>>()
    );
    // the alert log: one JSON line per alert, private
    let log_path = dir.join("alerts.jsonl");
    let logged = read_records(&log_path);
    assert_eq!(
        logged.iter().map(|a| a["id"].clone()).collect::<Vec<_>>(),
        alerts.iter().map(|a| a["id"].clone()).collect::<Vec<_>>()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&log_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&log_path).unwrap().lines().count(),
        3,
        "the hostile name did not break a line"
    );
    // the journal: warning priority, the record in a field
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = journal.recv(&mut buf) {
        entries.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert_eq!(entries.len(), 3, "{entries:?}");
    for e in &entries {
        assert!(e.contains("\nPRIORITY=4\n"), "{e}");
        assert!(e.contains("NETWHO_ALERT_KIND="), "{e}");
        let message = e.lines().next().unwrap();
        assert!(message.starts_with("MESSAGE=netwho alert "), "{message}");
        assert!(!message.contains('\u{1b}'), "control characters escaped");
    }
    // the webhook: each alert once
    let hooked = poll(20, "three alerts at the webhook", || {
        let p = posted.lock().unwrap().clone();
        if p.len() >= 3 {
            Ok(p)
        } else {
            Err(format!("{p:?}"))
        }
    });
    let mut ids: Vec<i64> = hooked
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    let mut want: Vec<i64> = alerts.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    // metrics
    let m = root_api(&sock, "/metrics");
    for kind in ["new_destination", "new_program", "exe_changed"] {
        assert!(
            m.contains(&format!("netwho_alerts_total{{kind=\"{kind}\"}} 1\n")),
            "{kind}: {m}"
        );
    }
    assert!(m.contains("netwho_alerts_allowed_total 1\n"), "{m}");
    // the API: each user sees and acknowledges only their own
    let (st, body) = api_as(&other, &sock, "GET", "/api/v1/alerts");
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(0), "{body}");
    let id = nd["id"].as_i64().unwrap();
    let (st, body) = api_as(&other, &sock, "POST", &format!("/api/v1/alerts/{id}/ack"));
    assert_eq!(st, 404, "{body}");
    let (st, body) = api_as(&w.user, &sock, "GET", "/api/v1/alerts");
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(v["learning"], false);
    let (st, body) = api_as(&w.user, &sock, "POST", &format!("/api/v1/alerts/{id}/ack"));
    assert_eq!(st, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["acked"].is_string());
    // let the acknowledgement reach the database
    web_page(&listen, &dir.join("token"), &alerts);
    poll(20, "the acknowledgements stored", || {
        let r = sql(
            &db,
            "SELECT id FROM alert WHERE acked_ns IS NOT NULL ORDER BY id",
        );
        if r.len() == 2 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    d.stop();

    // a restart: the baselines and the alerts are remembered
    let d = Daemon::configured(&dir, &filter, "remote_names = false\n", &cfg);
    d.wait_log("alerts: on");
    // (the alerts are on before the API serves: CI once connected in
    // between and was refused)
    d.wait_log(&format!("api: {}", sock.display()));
    let after = listed(&sock);
    assert_eq!(after.len(), 3, "{after:#?}");
    assert!(
        after
            .iter()
            .find(|a| a["id"] == id)
            .is_some_and(|a| a["acked"].is_string())
    );
    assert_eq!(
        after.iter().filter(|a| a["acked"].is_string()).count(),
        2,
        "{after:#?}"
    );
    w.connect(&known, NEW, 1);
    w.connect(&evil, KNOWN, 1);
    poll(20, "the flows after the restart in the history", || {
        let n = (flows_of(&db, &known, NEW), flows_of(&db, &evil, KNOWN));
        if n == (3, 2) {
            Ok(())
        } else {
            Err(format!("{n:?}"))
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(listed(&sock).len(), 3, "no second alert after a restart");
    d.stop();
    assert_eq!(read_records(&log_path).len(), 3);

    // stacking over the same history: the least used destination first,
    // with the program and user that used it
    let user = format!("user.name = {}", w.user.name);
    let rare = report_json([
        OsStr::new("rare"),
        OsStr::new("--db"),
        db.as_os_str(),
        OsStr::new(&user),
    ]);
    let rows: Vec<(u64, u64, Vec<String>)> = rare["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["flows"].as_u64().unwrap(),
                r["port"].as_u64().unwrap(),
                r["programs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let k = known.display().to_string();
    assert_eq!(
        rows,
        vec![
            (1, u64::from(ALLOWED), vec![k.clone()]),
            (3, u64::from(NEW), vec![k.clone()]),
            (
                2 + 1 + 6 + 2,
                u64::from(KNOWN),
                vec![
                    changing.display().to_string(),
                    k,
                    evil.display().to_string()
                ]
            ),
        ],
        "{rare:#}"
    );
    assert!(
        rare["rows"][0]["users"]
            .as_array()
            .is_some_and(|u| u == &vec![Value::from(w.user.name.clone())])
    );
    drop(other);
}
