//! Hostile local users against a real daemon: nothing an unprivileged
//! user does can crash it, starve root of it, read others' data through it
//! or forge what it says. Every attack runs as a test user (`mallory`);
//! after each, the daemon is alive, root is served, scoping holds, and
//! what was refused is counted.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The attacker's tools, one Python file: every subcommand prints one
/// JSON line when done, then (when it holds something open) waits until
/// its standard input closes.
const TOOLS: &str = r#"
import json, os, socket, sys, threading, time

def say(x):
    sys.stdout.write(json.dumps(x) + "\n"); sys.stdout.flush()

def hold():
    sys.stdin.read()

cmd = sys.argv[1]
if cmd == "conns":
    # as many connections as the daemon lets in, nothing sent on them
    sock, n = sys.argv[2], int(sys.argv[3])
    held, failed = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        try:
            s.connect(sock)
            held.append(s)
        except OSError:
            failed += 1
            s.close()
    say({"opened": len(held), "failed": failed})
    hold()
elif cmd == "streams":
    # event streams, each on its own connection: the first line of each
    sock, n = sys.argv[2], int(sys.argv[3])
    held, lines = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        lines.append(f.readline().decode().strip())
        held.append((s, f))
    say({"status": lines})
    hold()
elif cmd == "reports":
    # the same report, n at once
    sock, n, path = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    out = [None] * n
    def one(i):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(120)
        s.connect(sock)
        s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
        out[i] = s.makefile("rb").readline().decode().split()[1]
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    say({"status": out})
elif cmd == "client":
    # a connection to the test's server, then (given a uid) another as that uid
    port, send = int(sys.argv[2]), int(sys.argv[3])
    def talk(n):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"x" * n)
        c.shutdown(socket.SHUT_WR)
        while c.recv(65536):
            pass
        c.close()
    talk(send)
    if len(sys.argv) > 6:
        os.setgid(int(sys.argv[5])); os.setuid(int(sys.argv[4]))
        talk(int(sys.argv[6]))
    say({"pid": os.getpid()})
    hold()
elif cmd == "readdb":
    try:
        open(sys.argv[2], "rb").read(1)
        say({"read": True})
    except PermissionError as e:
        say({"read": False, "error": str(e)})
elif cmd == "server":
    # as many connections as come: read to the end, answer "ok"
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", 0)); l.listen(512)
    say({"port": l.getsockname()[1]})
    def serve(c):
        while c.recv(65536):
            pass
        c.sendall(b"ok"); c.close()
    while True:
        c, _ = l.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// The attacker's tools in `dir` (readable by everyone).
fn tools(dir: &Path) -> PathBuf {
    let p = dir.join("tools.py");
    std::fs::write(&p, TOOLS).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

/// A tool running (as `user`, or root), its first line read.
struct Tool {
    _child: Proc,
    first: Value,
}

impl Tool {
    fn start(mut cmd: Command) -> Tool {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let first = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        Tool {
            _child: Proc(child),
            first,
        }
    }
}

/// Debian's Python (which every user may run).
const PYTHON: &str = "/usr/bin/python3";

fn python(tools: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(PYTHON);
    c.arg(tools).args(args);
    c
}

fn python_as(user: &TestUser, tools: &Path, args: &[&str]) -> Command {
    let mut c = setpriv(user);
    c.arg(PYTHON).arg(tools).args(args);
    c
}

/// A GET over the socket as root: (status, body).
fn root_get(sock: &Path, path: &str) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn status(sock: &Path) -> Value {
    let (st, body) = root_get(sock, "/api/v1/status");
    assert_eq!(st, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The daemon, a test user and a server everyone's traffic goes to.
struct Scene {
    d: Daemon,
    mallory: TestUser,
    dir: TempDir,
    sock: PathBuf,
    db: PathBuf,
    tools: PathBuf,
    port: u16,
    tcp: String,
    _server: Tool,
    _serial: Serial,
}

impl Scene {
    fn new(tag: &str, user: &str) -> Scene {
        let serial = serial();
        let dir = TempDir::new(tag);
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tools = tools(&dir.0);
        let server = Tool::start(python(&tools, &["server"]));
        let port = server.first["port"].as_u64().unwrap() as u16;
        let tcp = format!("127.0.0.1:{}", free_port());
        let db = dir.0.join("h.db");
        let d = Daemon::configured(
            &dir.0,
            &format!("fd.port = {port}"),
            "remote_names = false\n",
            &format!(
                "listen = \"{tcp}\"\ntoken_file = \"{}\"\n",
                dir.0.join("token").display()
            ),
        );
        Scene {
            mallory: TestUser::create(user),
            sock: dir.0.join("api.sock"),
            d,
            db,
            dir,
            tools,
            port,
            tcp,
            _server: server,
            _serial: serial,
        }
    }

    /// Still alive, and root is served.
    fn alive(&mut self) {
        assert!(
            self.d.child.try_wait().unwrap().is_none(),
            "the daemon died: {}",
            std::fs::read_to_string(&self.d.err).unwrap_or_default()
        );
        assert_eq!(status(&self.sock)["api"], "v1");
    }

    fn as_mallory(&self, path: &str) -> (u16, String) {
        unix_get_as(&self.mallory, &self.sock, path)
    }

    fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.d.child.id()))
            .unwrap()
            .count()
    }
}

#[test]
fn a_test_user_cannot_crash_starve_or_read_the_daemon() {
    if !require_root() {
        return;
    }
    let mut s = Scene::new("hostile-api", "nwtmal1");
    let t = &s.tools.clone();
    // some traffic of root's and mallory's, so that there is a history
    drop(Tool::start(python(
        t,
        &["client", &s.port.to_string(), "3000"],
    )));
    drop(Tool::start(python_as(
        &s.mallory,
        t,
        &["client", &s.port.to_string(), "500"],
    )));

    // crash: filters nested ten thousand deep, and runs of `not`
    for q in ["(".repeat(10_000), "not+".repeat(4_000), "(".repeat(30_000)] {
        let (st, body) = s.as_mallory(&format!("/api/v1/flows?q={q}"));
        assert_eq!(st, 400, "{body}");
    }
    s.alive();

    // hang: a window of a hundred million years at one-minute intervals
    // answers from the data there is; sub-second intervals are an error
    let (st, body) = poll(30, "a report over the history", || {
        let (st, body) = s.as_mallory(
            "/api/v1/reports/top-procs?since=-1h&until=99999999-01-01T00:00:00Z&interval=1m",
        );
        if st == 200 && body.contains("\"rows\":[{") {
            Ok((st, body))
        } else {
            Err(format!("{st} {body}"))
        }
    });
    assert_eq!(st, 200, "{body}");
    let mine: Value = serde_json::from_str(&body).unwrap();
    let (st, body) = s.as_mallory("/api/v1/reports/timeline?pid=1&interval=1ns");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("shorter than 1s"), "{body}");
    // scoping covers read statistics: mallory is told of its own rows only
    let (_, all) = root_get(
        &s.sock,
        "/api/v1/reports/top-procs?since=-1h&until=99999999-01-01T00:00:00Z&interval=1m",
    );
    let all: Value = serde_json::from_str(&all).unwrap();
    assert!(
        mine["history"]["rows_read"].as_u64() < all["history"]["rows_read"].as_u64(),
        "{mine:#} {all:#}"
    );
    // four reports at once from one user: one runs, the rest are told to
    // wait; root's still run
    let r = Tool::start(python_as(
        &s.mallory,
        t,
        &[
            "reports",
            &s.sock.display().to_string(),
            "4",
            "/api/v1/reports/by-user",
        ],
    ));
    let codes: Vec<&str> = r.first["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        codes.iter().all(|c| *c == "200" || *c == "429"),
        "{codes:?}"
    );
    assert!(codes.contains(&"200"), "{codes:?}");
    assert_eq!(root_get(&s.sock, "/api/v1/reports/by-user").0, 200);

    // starve: 2,000 idle connections from one user
    let before = s.descriptors();
    let conns = Tool::start(python_as(
        &s.mallory,
        t,
        &["conns", &s.sock.display().to_string(), "2000"],
    ));
    assert!(
        conns.first["opened"].as_u64().unwrap() > 100,
        "{}",
        conns.first
    );
    let st = poll(30, "the refusals counted", || {
        let st = status(&s.sock);
        let c = &st["callers"]["connections"];
        if c["refused"].as_u64().unwrap_or(0) >= 1000 {
            Ok(st)
        } else {
            Err(format!("{c}"))
        }
    });
    // root is served while mallory holds what it may
    assert!(
        st["callers"]["connections"]["held"].as_u64().unwrap() <= 33,
        "{st:#}"
    );
    s.alive();
    let during = s.descriptors();
    eprintln!(
        "descriptors: {before} before, {during} while mallory held {}; {}",
        conns.first, st["callers"]
    );
    assert!(during < before + 64, "{before} descriptors, then {during}");
    drop(conns);

    // streams: four per user, the fifth is refused
    let streams = Tool::start(python_as(
        &s.mallory,
        t,
        &["streams", &s.sock.display().to_string(), "5"],
    ));
    let lines: Vec<String> = streams.first["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("HTTP/1.1 200"))
            .count(),
        4,
        "{lines:?}"
    );
    assert!(lines[4].starts_with("HTTP/1.1 429"), "{lines:?}");
    s.alive();
    drop(streams);

    // read: the history is private, and netwho says why
    for f in ["h.db", "h.db-wal", "h.db-shm", "h.db.lock", "token"] {
        let m = std::fs::metadata(s.dir.0.join(f)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
    }
    let tried = Tool::start(python_as(
        &s.mallory,
        t,
        &["readdb", &s.db.display().to_string()],
    ));
    assert_eq!(tried.first["read"], false, "{}", tried.first);
    let nw = s.dir.0.join("netwho");
    std::fs::copy(netwho_bin(), &nw).unwrap();
    std::fs::set_permissions(&nw, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, _, err) = as_user(
        &s.mallory,
        &nw,
        &["report", "by-user", "--db", &s.db.display().to_string()],
    );
    assert!(!ok);
    assert!(
        err.contains("you may not read") || err.contains("Permission denied"),
        "{err}"
    );

    // leak: the web page sets no cookie (the token would go to every
    // port of this host); it is served without the token, holding no data
    let (st, head) = raw_http(&s.tcp, "GET /?token=00 HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(st, 200, "{head}");
    assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");
    let (st, _) = raw_http(&s.tcp, "GET /api/v1/flows HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(st, 401);

    // SIGHUP does not kill it (it would have, losing what it had not
    // committed)
    let pid = i32::try_from(s.d.child.id()).unwrap();
    // SAFETY: signalling our own child
    unsafe { libc::kill(pid, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    s.alive();
    // a second daemon on the same database is refused, naming the first
    let cfg = s.dir.0.join("netwho.toml");
    let second = Command::new(netwho_bin())
        .args(["daemon", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("another netwho daemon (pid {pid})")),
        "{err}"
    );
    s.alive();

    // one SIGTERM stops it, with what it holds committed
    // SAFETY: signalling our own child
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let done = poll(30, "the daemon stops at one SIGTERM", || {
        s.d.child
            .try_wait()
            .unwrap()
            .ok_or_else(|| "still running".to_string())
    });
    assert!(done.success(), "{done}");
}

/// A raw HTTP exchange over TCP: (status, head).
fn raw_http(addr: &str, req: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
    let st = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (st, head)
}

#[test]
fn names_and_lengths_a_user_chooses_cannot_forge_or_flood() {
    if !require_root() {
        return;
    }
    let mut s = Scene::new("hostile-names", "nwtmal2");
    let port = s.port.to_string();
    // an executable whose path closes its metric label and adds a series
    let evil_dir = s.dir.0.join("x\"} 1\nnetwho_forged_total{a=\"b\\");
    std::fs::create_dir_all(&evil_dir).unwrap();
    std::fs::set_permissions(&s.dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&evil_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let real = std::fs::canonicalize(PYTHON).unwrap();
    let evil = evil_dir.join("py");
    std::fs::copy(&real, &evil).unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = setpriv(&s.mallory);
    cmd.arg(&evil).arg(&s.tools).args(["client", &port, "777"]);
    let forger = Tool::start(cmd);
    // a command line of 1.9 MB (in 20 arguments: one may hold 128 KiB),
    // on a connection of its own
    let big = Tool::start({
        let mut c = setpriv(&s.mallory);
        c.args([PYTHON, "-c"]).arg(format!(
            "import sys; sys.argv = ['t', 'client', '{port}', '100']; exec(open('{}').read())",
            s.tools.display()
        ));
        for _ in 0..20 {
            c.arg("A".repeat(95_000));
        }
        c
    });
    // a process that starts as root, then becomes mallory: mallory is
    // shown its own bytes only
    let switch = Tool::start(python(
        &s.tools,
        &[
            "client",
            &port,
            "5000",
            &s.mallory.uid.to_string(),
            &s.mallory.gid.to_string(),
            "700",
        ],
    ));
    let switch_pid = switch.first["pid"].as_u64().unwrap();
    let procs = poll(30, "mallory's processes", || {
        let (st, body) = s.as_mallory("/api/v1/processes");
        let doc: Value = serde_json::from_str(&body).map_err(|e| format!("{st} {e}"))?;
        let n = doc["processes"].as_array().map_or(0, Vec::len);
        if n >= 3 {
            Ok(doc)
        } else {
            Err(format!("{doc}"))
        }
    });
    for p in procs["processes"].as_array().unwrap() {
        assert_eq!(p["uid"], s.mallory.uid, "{p}");
        if p["pid"] == switch_pid {
            assert_eq!(
                p["bytes_sent"], 700,
                "root's 5000 bytes are not mallory's: {p}"
            );
        }
        // every command line is bounded, a long one says how long it was
        let cmdline: usize = p["cmdline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().len() + 1)
            .sum();
        assert!(cmdline < 4096 + 200, "{cmdline} bytes");
    }
    let big_pid = big.first["pid"].as_u64().unwrap();
    let big_row = procs["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == big_pid)
        .unwrap()
        .clone();
    let last = big_row["cmdline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        last.starts_with("[netwho: command line cut at 4096 of "),
        "{last}"
    );
    // the metrics: one scrape that a Prometheus parser reads, holding no
    // series the forger wrote
    let (st, text) = root_get(&s.sock, "/metrics");
    assert_eq!(st, 200);
    assert!(
        text.contains("nwtmal2"),
        "mallory's series is there: {text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("netwho_forged")),
        "{text}"
    );
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool (scripts/test installs prometheus): {e}"));
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 0: clean; 3: lint remarks (OpenMetrics names its help per family);
    // a label that broke the format is an error (1)
    assert!(
        matches!(out.status.code(), Some(0 | 3)) && !said.contains("error"),
        "{said}"
    );
    assert!(!said.contains("forged"), "{said}");
    drop((forger, big, switch));
    s.alive();
}
