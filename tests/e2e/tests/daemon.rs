//! The daemon end to end: traffic of several users in network namespaces,
//! the history's reports equal to the ground truth, and a daemon killed
//! with SIGKILL under load that restarts with its history intact and its
//! tiers consistent with the raw flows.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn report(db: &Path, args: &[&str]) -> Value {
    let mut v = vec![std::ffi::OsStr::new("--db"), db.as_os_str()];
    v.extend(args.iter().map(std::ffi::OsStr::new));
    report_json(v)
}

/// (sent, recv) per user in a by-user report.
fn per_user(r: &Value) -> Vec<(String, u64, u64, u64)> {
    let mut v: Vec<(String, u64, u64, u64)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["user"].as_str().unwrap().to_string(),
                row["sent"].as_u64().unwrap(),
                row["recv"].as_u64().unwrap(),
                row["flows"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Waits until `done` holds for the report (the daemon commits in
/// batches), or fails with the last report.
fn wait_report(db: &Path, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
    poll(30, "the history shows it", || {
        if !db.exists() {
            return Err(format!("no {}", db.display()));
        }
        let r = report(db, args);
        if done(&r) {
            Ok(r)
        } else {
            Err(format!("{r:#}"))
        }
    })
}

/// Two test users, a pair of network namespaces, a directory, and the
/// filter that keeps the traffic between the namespaces (the serial lock
/// held while they live).
struct World {
    alice: TestUser,
    bob: TestUser,
    ns: Netns,
    dir: TempDir,
    filter: String,
    /// Last: released after the rest is cleaned up.
    _serial: Serial,
}

impl World {
    fn new(tag: &str, subnet: u8, users: [&str; 2]) -> World {
        let serial = serial();
        let ns = Netns::pair(tag, subnet);
        let [a, b, c, _] = ns.b4.octets();
        World {
            _serial: serial,
            alice: TestUser::create(users[0]),
            bob: TestUser::create(users[1]),
            filter: format!("fd.rnet = {a}.{b}.{c}.0/24"),
            ns,
            dir: TempDir::new(tag),
        }
    }

    /// `conns` connections per user to a server (root) in the second
    /// namespace, each sending `send` bytes and getting `reply`: the
    /// clients' records.
    fn traffic(&self, users: &[(&TestUser, u32)], send: u64, reply: u64) -> Vec<Value> {
        let total: u32 = users.iter().map(|(_, c)| c).sum();
        let (srv, port) = server(
            &self.ns.b,
            &format!(
                "tcp-server --bind {} --conns {total} --expect {send} --reply {reply}",
                self.ns.b4
            ),
        );
        let mut truth = Vec::new();
        for (u, conns) in users {
            truth.extend(run_gen(
                &self.ns.a,
                &format!(
                    "tcp-client --to {} --port {port} --conns {conns} --send {send} --expect {reply} --as-user {}",
                    self.ns.b4, u.name
                ),
            ));
        }
        srv.finish();
        truth
    }
}

#[test]
fn history_equals_the_truth_per_user_and_survives_sigkill() {
    if !require_root() {
        return;
    }
    let w = World::new("hist", 27, ["nwthista", "nwthistb"]);
    let (alice, bob, ns, filter) = (&w.alice, &w.bob, &w.ns, &w.filter);
    let dir = &w.dir;
    let db = dir.0.join("h.db");
    let d = Daemon::start(&dir.0, filter);
    let truth = w.traffic(&[(alice, 2), (bob, 3)], 40_000, 7_000);
    let sum = |uid: u32, key: &str| -> u64 {
        truth
            .iter()
            .filter(|t| t["uid"] == uid)
            .map(|t| t[key].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum(alice.uid, "bytes_sent"), 80_000);
    let want = vec![
        ("nwthista".to_string(), 80_000, 14_000, 2),
        ("nwthistb".to_string(), 120_000, 21_000, 3),
        ("root".to_string(), 35_000, 200_000, 5),
    ];
    let r = wait_report(&db, &["by-user"], |r| per_user(r) == want);
    assert_eq!(r["history"]["read"], "rollups", "{r:#}");
    // the collector (and the hasher, which reads other users'
    // executables) kept CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19)
    // only; every other thread (the history writer, the report threads,
    // the API) keeps nothing, and the API serves as nobody
    let caps = d.caps();
    assert!(caps.len() >= 4, "{caps:?}");
    let only = "0000000000080004".to_string();
    let none = "0000000000000000".to_string();
    for (name, eff, prm, bnd, uid) in &caps {
        let want = match name.as_str() {
            "netwho" | "netwho-hash" => (&only, &only, &only),
            _ => (&none, &none, &none),
        };
        assert_eq!((eff, prm, bnd), want, "thread {name}: {caps:?}");
        let want_uid = if name == "netwho-api" { "65534" } else { "0" };
        assert_eq!(uid, want_uid, "thread {name}: {caps:?}");
    }
    for t in ["netwho-api", "netwho-report", "netwho-history"] {
        assert!(caps.iter().any(|c| c.0 == t), "no thread {t}: {caps:?}");
    }

    // a connection in flight when the daemon is killed: the restarted
    // daemon finds the socket and adds what it counts to what was stored
    let (srv, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --skip 0 --expect 90000 --reply 5000",
            ns.b4
        ),
    );
    let mut client = Gen::spawn(
        Some(&ns.a),
        &format!(
            "tcp-client --to {} --port {port} --pause-after 30000 --send 60000 --expect 5000 --as-user {}",
            ns.b4, alice.name
        ),
    );
    client.wait_for("paused");
    // both ends' 30,000 bytes committed
    wait_report(&db, &["top-conns", "--limit", "100"], |r| {
        let rows = r["rows"].as_array().unwrap();
        rows.iter().any(|row| row["sent"] == 30_000) && rows.iter().any(|row| row["recv"] == 30_000)
    });
    d.kill9();
    let d = Daemon::start(&dir.0, filter);
    // (wait for the daemon to find the socket: its first commit)
    std::thread::sleep(Duration::from_secs(2));
    {
        let stdin = client.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }
    client.finish();
    srv.finish();
    let want = vec![
        ("nwthista".to_string(), 170_000, 19_000, 3),
        ("nwthistb".to_string(), 120_000, 21_000, 3),
        ("root".to_string(), 40_000, 290_000, 6),
    ];
    wait_report(&db, &["by-user"], |r| per_user(r) == want);
    d.stop();

    // the tiers and the raw flows tell the same story
    let conns = report(&db, &["top-conns", "--limit", "1000"]);
    let users = report(&db, &["by-user"]);
    let hourly = report(&db, &["by-user", "--interval", "1h"]);
    for r in [&users, &hourly] {
        assert_eq!(r["totals"]["sent"], conns["totals"]["sent"], "{r:#}");
        assert_eq!(r["totals"]["recv"], conns["totals"]["recv"], "{r:#}");
        assert_eq!(r["totals"]["flows"], conns["totals"]["flows"], "{r:#}");
    }
    assert_eq!(conns["totals"]["flows"], 12);
    // a filter over history
    let only = report(&db, &["top-procs", "user.name", "=", "nwthistb"]);
    assert_eq!(only["totals"]["sent"], 120_000, "{only:#}");
}

#[test]
fn a_bad_config_or_database_says_what_to_do() {
    let dir = TempDir::new("daemon-cfg");
    let cfg = dir.0.join("bad.toml");
    std::fs::write(&cfg, "[history]\nkeep_raw = \"forever\"\n").unwrap();
    let out = Command::new(netwho_bin())
        .args(["daemon", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("history.keep_raw: 'forever' is not a duration"),
        "{err}"
    );
    // the defaults, printed
    let out = Command::new(netwho_bin())
        .args(["daemon", "--print-config", "--db", "/x/h.db"])
        .args(["--commit-every", "5s"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("db = \"/x/h.db\""), "{text}");
    assert!(text.contains("commit_every = \"5s\""), "as given: {text}");
    assert!(text.contains("keep_minutes = \"14d\""), "{text}");
    // a report from something that is not a history
    let junk = dir.0.join("junk.db");
    std::fs::write(&junk, "not a database ".repeat(100)).unwrap();
    let out = Command::new(netwho_bin())
        .args(["report", "by-user", "--db"])
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a netwho history database"), "{err}");
}

/// Sums of a process list per user: (user, sent, recv).
fn procs_per_user(doc: &Value) -> Vec<(String, u64, u64)> {
    let mut m = std::collections::BTreeMap::<String, (u64, u64)>::new();
    for p in doc["processes"].as_array().unwrap() {
        let e = m
            .entry(p["user"].as_str().unwrap().to_string())
            .or_default();
        e.0 += p["bytes_sent"].as_u64().unwrap();
        e.1 += p["bytes_recv"].as_u64().unwrap();
    }
    m.into_iter().map(|(u, (s, r))| (u, s, r)).collect()
}

/// Payload bytes per (user, direction) in a metrics exposition.
fn metric_sums(text: &str) -> std::collections::BTreeMap<(String, String), u64> {
    let mut m = std::collections::BTreeMap::new();
    for l in text
        .lines()
        .filter(|l| l.starts_with("netwho_payload_bytes_total{"))
    {
        let field = |k: &str| {
            let at = l.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
            l[at..].split('"').next().unwrap().to_string()
        };
        let v: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        *m.entry((field("user"), field("direction"))).or_default() += v;
    }
    m
}

#[test]
fn the_api_metrics_and_web_page_show_the_truth_to_whom_may_see_it() {
    if !require_root() {
        return;
    }
    let w = World::new("api", 28, ["nwtapia", "nwtapib"]);
    let (alice, bob, dir) = (&w.alice, &w.bob, &w.dir);
    // the users reach the socket and a copy of the binary
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let nw = dir.0.join("netwho");
    std::fs::copy(netwho_bin(), &nw).unwrap();
    std::fs::set_permissions(&nw, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = dir.0.join("api.sock");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // alice's own group is the one that sees everything
    let d = Daemon::start_with(
        &dir.0,
        &w.filter,
        &format!(
            "listen = \"{addr}\"\ntoken_file = \"{}\"\ngroup = \"nwtapia\"\nkeep_closed = \"5m\"\n[metrics]\nmax_series = 50\n",
            dir.0.join("token").display()
        ),
    );
    d.wait_log("api: http://");
    let token = std::fs::read_to_string(dir.0.join("token"))
        .unwrap()
        .trim()
        .to_string();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    w.traffic(&[(alice, 2), (bob, 3)], 40_000, 7_000);
    let mut truth = vec![
        ("nwtapia".to_string(), 80_000, 14_000),
        ("nwtapib".to_string(), 120_000, 21_000),
        ("root".to_string(), 35_000, 200_000),
    ];

    // live processes over TCP with the token: exactly the truth
    let procs = poll(30, "live processes equal to the truth", || {
        let (st, body) = http("GET", &addr, "/api/v1/processes", &auth, None);
        let doc: Value = serde_json::from_str(&body).map_err(|e| format!("{st} {e}: {body}"))?;
        let got = procs_per_user(&doc);
        if got == truth {
            Ok(doc)
        } else {
            Err(format!("{got:?}"))
        }
    });
    assert_eq!(procs["access"], "all");
    // without the token, or with a wrong one: refused, saying why
    let (st, body) = http("GET", &addr, "/api/v1/processes", &[], None);
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("no token"), "{body}");
    let (st, _) = http(
        "GET",
        &addr,
        "/api/v1/flows",
        &[("Authorization", "Bearer nope")],
        None,
    );
    assert_eq!(st, 401);
    // another method: a JSON error like every other, not an empty 405
    let (st, body) = http("POST", &addr, "/api/v1/flows", &auth, Some("{}"));
    assert_eq!(st, 405, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("read-only"),
        "{body}"
    );
    // a filter over the live flows, and a malformed one
    let q = "/api/v1/flows?q=user.name%20%3D%20nwtapib&state=closed";
    let (st, body) = http("GET", &addr, q, &auth, None);
    assert_eq!(st, 200, "{body}");
    let flows: Value = serde_json::from_str(&body).unwrap();
    let sent: u64 = flows["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["bytes_sent"].as_u64().unwrap())
        .sum();
    assert_eq!(
        (flows["matched"].as_u64(), sent),
        (Some(3), 120_000),
        "{flows:#}"
    );
    let (st, body) = http("GET", &addr, "/api/v1/flows?q=user.nmae%3D1", &auth, None);
    assert_eq!(st, 400);
    assert!(body.contains("unknown field 'user.nmae'"), "{body}");

    // over the socket: bob sees his own traffic only, alice (in the
    // group) everyone's, in live data and in history reports
    let (st, body) = unix_get_as(bob, &sock, "/api/v1/processes");
    assert_eq!(st, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["access"], "own");
    assert_eq!(
        procs_per_user(&doc),
        vec![("nwtapib".to_string(), 120_000, 21_000)]
    );
    let (st, body) = unix_get_as(bob, &sock, "/metrics");
    assert_eq!(st, 403, "{body}");
    let (st, body) = unix_get_as(alice, &sock, "/api/v1/processes");
    assert_eq!(st, 200, "{body}");
    assert_eq!(procs_per_user(&serde_json::from_str(&body).unwrap()), truth);
    let sockarg = format!("--connect={}", sock.display());
    let by_user = |u: &TestUser| -> Result<Vec<(String, u64, u64, u64)>, String> {
        let (ok, out, err) = as_user(u, &nw, &["report", &sockarg, "--json", "by-user"]);
        if !ok {
            return Err(err);
        }
        let v: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        Ok(per_user(&v))
    };
    let want_all = vec![
        ("nwtapia".to_string(), 80_000, 14_000, 2),
        ("nwtapib".to_string(), 120_000, 21_000, 3),
        ("root".to_string(), 35_000, 200_000, 5),
    ];
    poll(30, "alice's report through the daemon", || {
        let got = by_user(alice)?;
        if got == want_all {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });
    assert_eq!(
        by_user(bob).unwrap(),
        vec![("nwtapib".to_string(), 120_000, 21_000, 3)]
    );
    // the live view through the daemon, as bob, while both users send:
    // his processes only, with his bytes
    let top = setpriv(bob)
        .arg(&nw)
        .args(["top", &sockarg, "--json", "-n", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // and the interactive view, as bob, on a terminal
    let view = require_tmux().then(|| {
        Tmux::start(&format!(
            "setpriv --reuid={} --regid={} --clear-groups {} top {sockarg} --no-dns",
            bob.uid,
            bob.gid,
            nw.display()
        ))
    });
    std::thread::sleep(Duration::from_millis(1500));
    w.traffic(&[(alice, 1), (bob, 1)], 10_000, 100);
    let out = top.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bob_sent = 0;
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let t: Value = serde_json::from_str(l).unwrap();
        for p in t["procs"].as_array().unwrap() {
            assert_eq!(p["user"], "nwtapib", "{t:#}");
            bob_sent = bob_sent.max(p["bytes_sent"].as_u64().unwrap());
        }
    }
    assert_eq!(bob_sent, 10_000);
    if let Some(v) = view {
        let screen = v.wait_for("nwtapib");
        assert!(!screen.contains("nwtapia"), "{screen}");
        v.keys(&["q"]);
    }

    // metrics: the same numbers (with the last round), and a real
    // Prometheus scraping them
    for (t, (s, r)) in truth
        .iter_mut()
        .zip([(10_000, 100), (10_000, 100), (200, 20_000)])
    {
        t.1 += s;
        t.2 += r;
    }
    let (st, text) = http("GET", &addr, "/metrics", &auth, None);
    assert_eq!(st, 200, "{text}");
    let m = metric_sums(&text);
    for (u, s, r) in &truth {
        assert_eq!(m.get(&(u.clone(), "sent".into())), Some(s), "{text}");
        assert_eq!(m.get(&(u.clone(), "received".into())), Some(r), "{text}");
    }
    assert!(
        text.contains("netwho_drops_total{kind=\"ringbuf\"} 0"),
        "{text}"
    );
    prometheus_scrapes(&dir.0, &addr, &truth);

    web_page(&addr, &token);
    d.stop();
    assert!(!sock.exists(), "the socket is removed at exit");
}

/// Prometheus (Debian's) scrapes the daemon with the token until its
/// query API returns the truth per user.
fn prometheus_scrapes(dir: &Path, target: &str, truth: &[(String, u64, u64)]) {
    let tsdb = dir.join("prometheus");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netwho\n    authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['{target}']\n",
            dir.join("token").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let web = format!("127.0.0.1:{port}");
    let _prom = Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus (scripts/test installs Debian's package): {e}")),
    );
    let query = "/api/v1/query?query=sum%20by%20(user)%20(netwho_payload_bytes_total%7Bdirection%3D%22sent%22%7D)";
    poll(60, "Prometheus shows the bytes sent per user", || {
        let (st, body) = try_http("GET", &web, query, &[], None)?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{st} {e}"))?;
        let mut got: Vec<(String, u64)> = v["data"]["result"]
            .as_array()
            .ok_or(body.clone())?
            .iter()
            .map(|r| {
                (
                    r["metric"]["user"].as_str().unwrap_or("").to_string(),
                    r["value"][1].as_str().unwrap_or("0").parse().unwrap_or(0),
                )
            })
            .collect();
        got.sort();
        let want: Vec<(String, u64)> = truth.iter().map(|(u, s, _)| (u.clone(), *s)).collect();
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });
}

/// The web page in headless Chromium (Debian's, driven by chromedriver):
/// the live table shows the test's users, a click opens the process, the
/// history chart has a legend; a screenshot is kept.
fn web_page(addr: &str, token: &str) {
    let b = Browser::start();
    b.goto(&format!("http://{addr}/#token={token}"));
    b.wait_text(
        "the live table lists both users",
        "return document.querySelector('#procs tbody').innerText",
        &["nwtapia", "nwtapib"],
    );
    // the token is in no cookie (every port of this host would be sent
    // it) and no longer in the address bar
    assert_eq!(b.js("return document.cookie"), Value::from(""));
    let href = b.js("return location.href");
    assert!(!href.to_string().contains(token), "{href}");
    // with alerts off, their section stays hidden
    assert_eq!(
        b.js("return document.querySelector('#alerts-box').hidden"),
        Value::from(true)
    );
    // drill down into one of alice's processes (the table is redrawn every
    // second: a row found just before a redraw is gone, so find it again)
    b.click(
        "a click on alice's process",
        "//table[@id='procs']//tr[td[text()='nwtapia']]",
    );
    b.wait_text(
        "the drill-down shows the process",
        "return document.querySelector('#drill').hidden ? '' : document.querySelector('#drill-title').innerText",
        &["nwtapia"],
    );
    poll(30, "the process's history is drawn", || {
        let n = b.js("return Number(document.querySelector('#drill-chart').dataset.bars || 0)");
        if n.as_u64().unwrap_or(0) > 0 {
            Ok(())
        } else {
            Err(n.to_string())
        }
    });
    b.wait_text(
        "the history chart's legend names the users",
        "return document.querySelector('#legend').innerText",
        &["nwtapia", "nwtapib"],
    );
    b.wait_text(
        "the top remotes table has the server",
        "return document.querySelector('#remotes tbody').innerText",
        &["10.231.28."],
    );
    // (nothing here resolved a name: the remote is its address, from -)
    b.wait_text(
        "the top names table has the server by its address",
        "return document.querySelector('#names tbody').innerText",
        &["10.231.28.", "-"],
    );
    b.screenshot("web-page.png");
}

#[test]
fn the_history_keeps_the_names_of_remotes() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("names");
    // loopback only: its name comes from /etc/hosts, no DNS server is asked
    let mut srv = Gen::spawn(
        None,
        "tcp-server --bind 127.0.0.1 --conns 1 --expect 3000 --reply 300",
    );
    let port = srv.wait_for("ready")["port"].as_u64().unwrap();
    let filter = format!("fd.rip = 127.0.0.1 and fd.port = {port}");
    let d = Daemon::configured(&dir.0, &filter, "", "");
    Gen::spawn(
        None,
        &format!("tcp-client --to 127.0.0.1 --port {port} --conns 1 --send 3000 --expect 300"),
    )
    .finish();
    srv.finish();
    let want = netwho_enrich_reverse_localhost();
    let r = wait_report(&dir.0.join("h.db"), &["top-remotes"], |r| {
        r["rows"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|row| row["name"] == want.as_str()))
    });
    let row = &r["rows"][0];
    assert_eq!(
        (row["remote"].as_str(), row["name"].as_str()),
        (Some("127.0.0.1"), Some(want.as_str())),
        "{r:#}"
    );
    d.stop();
}

/// What the system's resolver calls 127.0.0.1 (/etc/hosts: usually
/// `localhost`), read the way the daemon reads it.
fn netwho_enrich_reverse_localhost() -> String {
    let out = Command::new("getent")
        .args(["hosts", "127.0.0.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .nth(1)
        .unwrap_or("localhost")
        .to_string()
}

/// Without `-v`, the daemon says in one line where it keeps and serves
/// things, warns that nobody but root sees everything when its API group
/// is missing, and says which signal stopped it.
#[test]
fn the_daemon_says_it_started_and_what_stopped_it() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("dsay");
    let cfg = dir.0.join("netwho.toml");
    let db = dir.0.join("h.db");
    let sock = dir.0.join("api.sock");
    std::fs::write(
        &cfg,
        format!(
            "[history]\ndb = \"{}\"\nremote_names = false\n[api]\nsocket = \"{}\"\ngroup = \"nwt-nogroup\"\n",
            db.display(),
            sock.display()
        ),
    )
    .unwrap();
    let err = dir.0.join("daemon.err");
    let mut child = Command::new(netwho_bin())
        .args(["daemon", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let log = poll(30, "the daemon's start line", || {
        let log = std::fs::read_to_string(&err).unwrap_or_default();
        if log.contains("daemon started:") {
            Ok(log)
        } else {
            Err(log)
        }
    });
    let start = log
        .lines()
        .find(|l| l.starts_with("netwho: daemon started: "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        start.contains(&format!("history {}", db.display())),
        "{start}"
    );
    assert!(
        start.contains(&format!("api {}", sock.display())),
        "{start}"
    );
    assert!(start.contains("no group nwt-nogroup"), "{start}");
    assert!(start.contains("sensor ebpf"), "{start}");
    assert!(
        log.contains("netwho: warn: api: there is no group 'nwt-nogroup'"),
        "{log}"
    );
    assert!(
        !log.contains("netwho: info:"),
        "no -v, no info lines: {log}"
    );
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(&err).unwrap();
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l == "netwho: daemon stopped on SIGTERM, final records written"),
        "{log}"
    );
}

/// Every process's last row in `top --json` output: pid → (sent, received,
/// flows in all).
fn top_totals(out: &str) -> std::collections::BTreeMap<u64, (u64, u64, u64)> {
    let mut last = std::collections::BTreeMap::new();
    for l in out.lines() {
        let t: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        for p in t["procs"].as_array().unwrap() {
            last.insert(
                p["pid"].as_u64().unwrap(),
                (
                    p["bytes_sent"].as_u64().unwrap(),
                    p["bytes_recv"].as_u64().unwrap(),
                    p["flows_total"].as_u64().unwrap(),
                ),
            );
        }
    }
    last
}

/// `GET path` over the daemon's socket as root: the body.
fn root_get(sock: &Path, path: &str) -> String {
    use std::io::Read as _;
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The daemon's live recording (`/api/v1/stream`), read raw over its
/// socket until `stop` is set; the body.
fn save_stream(
    sock: &Path,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<u8>> {
    use std::io::Read as _;
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(b"GET /api/v1/stream HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        let at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        assert!(got.starts_with(b"HTTP/1.0 200") || got.starts_with(b"HTTP/1.1 200"));
        got.split_off(at + 4)
    })
}

/// `top --connect` shows the numbers a local `top` shows, for flows that
/// open and close between two of the daemon's batches and for one that
/// grows over several; and the live stream, saved and replayed with
/// `log -r`, holds every flow's open and close with its exact bytes, in
/// the order a local log has them.
#[test]
fn top_through_the_daemon_shows_what_a_local_run_shows() {
    if !require_root() {
        return;
    }
    let w = World::new("conn", 43, ["nwtcona", "nwtconb"]);
    let dir = &w.dir.0;
    let d = Daemon::start(dir, &w.filter);
    let sock = dir.join("api.sock");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saver = save_stream(&sock, std::sync::Arc::clone(&stop));
    let top = |extra: &[&str]| {
        Command::new(netwho_bin())
            .args(["top", "--json", "--no-dns", "-n", "12"])
            .args(extra)
            .arg(&w.filter)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let sockarg = format!("--connect={}", sock.display());
    let remote = top(&[&sockarg]);
    let local = top(&[]);
    let log = Netwho::start("connlog", &[&w.filter]);
    std::thread::sleep(Duration::from_millis(2500));

    // a download that pauses (its first bytes in one batch, the rest
    // seconds later) and short connections that each open and close
    // within one batch
    let (srv, port) = server(
        &w.ns.b,
        &format!(
            "tcp-server --bind {} --skip 300000 --expect 1 --reply 2000000",
            w.ns.b4
        ),
    );
    let mut client = Gen::spawn(
        Some(&w.ns.a),
        &format!(
            "tcp-client --to {} --port {port} --pause-after 300000 --send 1 --expect 2000000",
            w.ns.b4
        ),
    );
    client.wait_for("paused");
    std::thread::sleep(Duration::from_millis(2500));
    // the web page's header: the open flows as the live tables have them
    // now (the status record's figure is as of its last interval)
    let st: Value = serde_json::from_str(&root_get(&sock, "/api/v1/status")).unwrap();
    assert_eq!(st["live"]["flows_open"], 2, "{st:#}");
    {
        let stdin = client.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }
    let mut truth = client.finish();
    truth.extend(srv.finish());
    truth.extend(w.traffic(&[(&w.alice, 2), (&w.bob, 3)], 1_000, 1_005));

    let remote = remote.wait_with_output().unwrap();
    let local = local.wait_with_output().unwrap();
    for o in [&remote, &local] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let got = top_totals(&String::from_utf8_lossy(&remote.stdout));
    let want = top_totals(&String::from_utf8_lossy(&local.stdout));
    assert_eq!(want.len(), 5, "the processes of the traffic: {want:?}");
    assert_eq!(got, want, "top --connect against a local top");

    let records = stop_when_closed(log, &truth, &[&w.ns.a, &w.ns.b]);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let body = saver.join().unwrap();
    d.stop();
    let saved = dir.join("stream.nwr");
    std::fs::write(&saved, &body).unwrap();
    let out = Command::new(netwho_bin())
        .args(["log", "--json", "--on", "both", "-r"])
        .arg(&saved)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let inodes = [Netns::inode(&w.ns.a), Netns::inode(&w.ns.b)];
    let replayed = in_netns(&replayed, &inodes);
    // every flow of the truth opens and closes, with its bytes (the
    // paused client's first bytes are no ground truth: left out)
    let exact: Vec<Value> = truth
        .iter()
        .filter(|t| t["bytes_recv"] != 2_000_000 && t["bytes_sent"] != 2_000_000)
        .cloned()
        .collect();
    assert_matches(&exact, &replayed, "ebpf");
    // the same open and close records as a local log (two sensors may
    // notice two events in different turns: compared as sets)
    let key = |r: &Value| {
        (
            r["event"].as_str().unwrap_or("").to_string(),
            r["pid"].as_u64(),
            r["lport"].as_u64(),
            r["rport"].as_u64(),
            r["bytes_sent"].as_u64(),
            r["bytes_recv"].as_u64(),
        )
    };
    let flows = |recs: &[Value]| -> Vec<_> {
        let mut v: Vec<_> = recs
            .iter()
            .filter(|r| r["event"] == "open" || r["event"] == "close")
            .map(key)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        flows(&replayed),
        flows(&records),
        "log -r of the stream against a local log"
    );
}
