//! The daemon end to end: traffic of several users in network namespaces,
//! the history's reports equal to the ground truth, and a daemon killed
//! with SIGKILL under load that restarts with its history intact and its
//! tiers consistent with the raw flows.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `netwho daemon` on a database.
struct Daemon {
    child: Child,
    err: std::path::PathBuf,
}

impl Daemon {
    fn start(dir: &Path, filter: &str) -> Daemon {
        let cfg = dir.join("netwho.toml");
        std::fs::write(
            &cfg,
            format!(
                "filter = \"{filter}\"\n[history]\ndb = \"{}\"\ncommit_every = \"500ms\"\n",
                dir.join("h.db").display()
            ),
        )
        .unwrap();
        let err = dir.join(format!("daemon-{}.err", std::process::id()));
        let child = Command::new(netwho_bin())
            .args(["daemon", "-v", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, err };
        d.wait_log("attached:");
        d
    }

    fn wait_log(&self, what: &str) {
        #[expect(
            clippy::disallowed_methods,
            reason = "a bound on waiting, not a measurement"
        )]
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.err).unwrap_or_default();
            if log.contains(what) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {what:?} in {log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// (thread name, CapEff, CapPrm, CapBnd) of every thread.
    fn caps(&self) -> Vec<(String, String, String, String)> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut out = Vec::new();
        for t in std::fs::read_dir(tasks).unwrap() {
            let status = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap()
                    .trim()
                    .to_string()
            };
            out.push((
                field("Name:"),
                field("CapEff:"),
                field("CapPrm:"),
                field("CapBnd:"),
            ));
        }
        out
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn stop(mut self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: signalling our own child
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let st = self.child.wait().unwrap();
        assert!(st.success(), "daemon exit {st}");
    }
}

fn report(db: &Path, args: &[&str]) -> Value {
    let out = Command::new(netwho_bin())
        .args(["report", "--json", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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
    #[expect(
        clippy::disallowed_methods,
        reason = "a bound on waiting, not a measurement"
    )]
    let start = Instant::now();
    loop {
        if db.exists() {
            let r = report(db, args);
            if done(&r) {
                return r;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("the history never showed it: {r:#}");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn history_equals_the_truth_per_user_and_survives_sigkill() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let alice = TestUser::create("nwthista");
    let bob = TestUser::create("nwthistb");
    let ns = Netns::pair("hist", 27);
    let dir = TempDir::new("daemon");
    let db = dir.0.join("h.db");
    let [a, b, c, _] = ns.b4.octets();
    let filter = format!("fd.rnet = {a}.{b}.{c}.0/24");
    let d = Daemon::start(&dir.0, &filter);
    let (srv, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 5 --expect 40000 --reply 7000",
            ns.b4
        ),
    );
    let mut truth = Vec::new();
    for (u, conns) in [(&alice, 2), (&bob, 3)] {
        truth.extend(run_gen(
            &ns.a,
            &format!(
                "tcp-client --to {} --port {port} --conns {conns} --send 40000 --expect 7000 --as-user {}",
                ns.b4, u.name
            ),
        ));
    }
    srv.finish();
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
    // every thread (the history writer and the hasher included) kept
    // CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19) only
    let caps = d.caps();
    assert!(caps.len() >= 2, "{caps:?}");
    let only = "0000000000080004".to_string();
    for (name, eff, prm, bnd) in &caps {
        assert_eq!(
            (eff, prm, bnd),
            (&only, &only, &only),
            "thread {name}: {caps:?}"
        );
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
    let d = Daemon::start(&dir.0, &filter);
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
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("db = \"/x/h.db\""), "{text}");
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
