//! Harness for netwho's privileged end-to-end tests.
//!
//! Tests create their own network namespaces (10.231.N.0/24 and
//! fd00:231::N:0/112), run `netwho log --json`, drive the traffic generator
//! (whose ground truth is the sum of send()/recv() return values), and
//! compare record by record. Everything a test creates is removed by name
//! when it ends. Tests run one at a time (a lock file), since each netwho
//! sees the whole host. Without root they are skipped, unless `CI` is set:
//! then a missing privilege fails them.

#![warn(missing_docs)]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a failure is a test failure"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "the harness waits with real deadlines"
)]

use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// True if the test can run; false (skip) without root unless CI is set.
/// The payload the traffic generator sends: byte `i` of a stream is
/// `i mod 251` xor the role's seed ([`SEED_CLIENT`], [`SEED_SERVER`]), so
/// that a byte at a wrong offset shows (251 is prime: no power-of-two
/// segment or chunk size lines up with it).
pub fn pattern(seed: u8, from: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((from + i) % 251) as u8 ^ seed)
        .collect()
}

/// Bytes as lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The seed of the client's byte pattern (`pattern`).
pub const SEED_CLIENT: u8 = 0x00;
/// The seed of the server's.
pub const SEED_SERVER: u8 = 0x5a;

/// Root, or (outside CI) a note and false: the test returns.
pub fn require_root() -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "end-to-end tests need root (CI is set, so this is a failure, not a skip)"
        );
        eprintln!("skipped: end-to-end tests need root");
    }
    root
}

/// Held for the whole test: one end-to-end test at a time, across test
/// binaries and runners.
#[derive(Debug)]
pub struct Serial(#[expect(dead_code, reason = "held for its lock")] File);

/// The lock that runs the tests one at a time (held while it lives).
pub fn serial() -> Serial {
    let f = File::create("/tmp/netwho-e2e.lock").expect("lock file");
    // SAFETY: flock on a file we own; blocks until the other test is done.
    let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock");
    Serial(f)
}

/// Run a command to success; its standard output.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Two network namespaces joined by a veth pair. Deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// The first namespace's name.
    pub a: String,
    /// The second's.
    pub b: String,
    /// The first's IPv4 address.
    pub a4: Ipv4Addr,
    /// The second's.
    pub b4: Ipv4Addr,
    /// The first's IPv6 address.
    pub a6: Ipv6Addr,
    /// The second's.
    pub b6: Ipv6Addr,
}

impl Netns {
    /// `subnet` picks 10.231.subnet.0/24 and fd00:231::subnet:0/112.
    pub fn pair(tag: &str, subnet: u8) -> Self {
        let id = std::process::id() % 100_000;
        let a = format!("nwt{id}{tag}a");
        let b = format!("nwt{id}{tag}b");
        let ns = Netns {
            a4: Ipv4Addr::new(10, 231, subnet, 1),
            b4: Ipv4Addr::new(10, 231, subnet, 2),
            a6: format!("fd00:231::{subnet:x}:1").parse().unwrap(),
            b6: format!("fd00:231::{subnet:x}:2").parse().unwrap(),
            a,
            b,
        };
        ns.destroy(); // leftovers of a killed run
        ip(&["netns", "add", &ns.a]);
        ip(&["netns", "add", &ns.b]);
        let (va, vb) = (format!("v{id}{tag}a"), format!("v{id}{tag}b"));
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &va, "netns", &ns.a]);
        ip(&["link", "set", &vb, "netns", &ns.b]);
        for (n, dev, v4, v6) in [(&ns.a, &va, ns.a4, ns.a6), (&ns.b, &vb, ns.b4, ns.b6)] {
            ip(&["-n", n, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{v6}/112"),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", n, "link", "set", dev, "up"]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        ns
    }

    fn destroy(&self) {
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Ready `a` for a connection storm from it: its TIME_WAIT sockets
    /// must not exhaust its ports (`tcp_tw_reuse`, a wide port range;
    /// the namespace's own settings).
    pub fn for_storms(&self) {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.a,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.tcp_tw_reuse=1",
            "net.ipv4.ip_local_port_range=1024 65535",
        ]));
    }

    /// The namespace's inode: the `netns` field of its records.
    pub fn inode(name: &str) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/{name}"))
            .unwrap()
            .ino()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// A system user for the test, removed on drop.
#[derive(Debug)]
pub struct TestUser {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
}

impl TestUser {
    /// Create the user (removed when this is dropped).
    pub fn create(name: &str) -> Self {
        let _ = Command::new("userdel")
            .arg(name)
            .stderr(Stdio::null())
            .status();
        run(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            name,
        ]));
        let id = |flag: &str| {
            run(Command::new("id").args([flag, name]))
                .trim()
                .parse()
                .unwrap()
        };
        TestUser {
            name: name.to_string(),
            uid: id("-u"),
            gid: id("-g"),
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// A binary of this build: beside the running executable (the benchmark,
/// in `target/<profile>/`) or one directory up (tests, in
/// `target/<profile>/deps/`).
fn built(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let candidates = [dir.join(name), dir.parent().unwrap().join(name)];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{} missing: run 'cargo build --workspace' first (scripts/test does)",
                candidates[1].display()
            )
        })
}

/// The traffic generator's binary.
pub fn trafficgen() -> PathBuf {
    built("netwho-trafficgen", "NETWHO_TRAFFICGEN")
}

/// The netwho binary of this build.
pub fn netwho_bin() -> PathBuf {
    built("netwho", "NETWHO_BIN")
}

/// `netwho report --json ARGS...`, which must succeed: its document. The
/// arguments follow `--json` (a filter's trailing words end the line).
pub fn report_json<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Value {
    let mut cmd = Command::new(netwho_bin());
    cmd.args(["report", "--json"]).args(args);
    let out = cmd.output().expect("run netwho report");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report's JSON")
}

/// The release build's netwho and traffic generator, for tests whose
/// load only an optimized build sustains (a connection storm, the soak):
/// `scripts/test` builds them. None (with a note) when they are missing
/// outside CI; in CI a missing build fails the test.
pub fn release_bins() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release");
    let (nw, tg) = (dir.join("netwho"), dir.join("netwho-trafficgen"));
    if nw.exists() && tg.exists() {
        return Some((nw, tg));
    }
    let msg = "needs the release build: cargo build --release -p netwho -p netwho-e2e";
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("skipped: {msg}");
    None
}

/// The cgroup v2 mount (`/sys/fs/cgroup` or, on hybrid hosts, `.../unified`).
pub fn cgroup2_root() -> PathBuf {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .find_map(|l| {
            let (a, b) = l.split_once(" - ")?;
            b.starts_with("cgroup2 ")
                .then(|| a.split(' ').nth(4).map(PathBuf::from))?
        })
        .expect("a cgroup v2 mount (netwho needs one)")
}

/// A cgroup `netwho-e2e.slice/NAME` the test creates (after netwho started,
/// if it wants the kernel to see it born) and removes.
#[derive(Debug)]
pub struct TestCgroup {
    /// Its directory.
    pub dir: PathBuf,
    /// Relative to the cgroup v2 root, as records show it.
    pub path: String,
}

impl TestCgroup {
    /// Create the cgroup (removed when this is dropped).
    pub fn create(name: &str) -> Self {
        let rel = format!("netwho-e2e.slice/{name}");
        let dir = cgroup2_root().join(&rel);
        std::fs::create_dir_all(&dir).unwrap();
        TestCgroup {
            dir,
            path: format!("/{rel}"),
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // empty once its processes exited; the slice goes if nothing else is in it
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(slice) = self.dir.parent() {
            let _ = std::fs::remove_dir(slice);
        }
    }
}

/// A traffic generator process, its stdout read line by line.
#[derive(Debug)]
pub struct Gen {
    child: Child,
    lines: Receiver<Value>,
    /// Its standard input, when asked for.
    pub stdin: Option<std::process::ChildStdin>,
}

impl Gen {
    /// Run `netwho-trafficgen ARGS` in namespace `ns` (or here if None);
    /// `args` is split on white space (no argument contains any).
    pub fn spawn(ns: Option<&str>, args: &str) -> Self {
        let mut cmd = match ns {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n]).arg(trafficgen());
                c
            }
            None => Command::new(trafficgen()),
        };
        cmd.args(args.split_whitespace());
        Self::start(cmd)
    }

    /// As [`Gen::spawn`], but in cgroup `cg` from its first instruction
    /// (a shell moves itself there, then becomes the generator).
    pub fn spawn_in(cg: &TestCgroup, ns: &str, args: &str) -> Self {
        let procs = cg.dir.join("cgroup.procs");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "echo $$ > {} && exec ip netns exec {ns} {} {args}",
            procs.display(),
            trafficgen().display()
        ));
        Self::start(cmd)
    }

    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Gen {
            stdin: child.stdin.take(),
            child,
            lines: rx,
        }
    }

    /// The next line that has `key` (e.g. "ready", "paused").
    pub fn wait_for(&mut self, key: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("trafficgen never printed {key}"));
            if v.get(key).is_some() {
                return v;
            }
        }
    }

    /// Wait for the process to end; its ground-truth lines.
    pub fn finish(mut self) -> Vec<Value> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("trafficgen did not finish in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "trafficgen failed: {status}");
        let mut truths: Vec<Value> = Vec::new();
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(2)) {
            if v.get("role").is_some() {
                truths.push(v);
            }
        }
        truths
    }
}

impl Drop for Gen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gen {
    /// Run a command whose output is a traffic generator's (e.g. a shell
    /// that stays the generator's parent).
    pub fn spawn_cmd(cmd: Command) -> Self {
        Self::start(cmd)
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Root and tmux (in CI a missing tmux fails the test).
pub fn require_tmux() -> bool {
    if !require_root() {
        return false;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "tmux is missing");
        return false;
    }
    true
}

/// A tmux session running one command on a 200×50 terminal, killed on drop.
#[derive(Debug)]
pub struct Tmux(String);

impl Tmux {
    /// Start `cmd` in a detached tmux session (killed when this is dropped).
    pub fn start(cmd: &str) -> Tmux {
        let name = format!("netwho-e2e-{}", std::process::id());
        run(Command::new("tmux").args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "200",
            "-y",
            "50",
            cmd,
        ]));
        Tmux(name)
    }
    /// `tmux send-keys` (key names, or `-l` and literal text).
    pub fn keys(&self, keys: &[&str]) {
        run(Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys));
    }
    /// The pane and its scrollback.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-S", "-200", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// Wait (bounded) until the screen holds `what`; the screen.
    pub fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "no {what:?} on the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// Start a traffic-generator server in `ns`: it and the port it listens on.
pub fn server(ns: &str, args: &str) -> (Gen, u16) {
    let mut g = Gen::spawn(Some(ns), args);
    let port = g.wait_for("ready")["port"].as_u64().expect("port");
    (g, u16::try_from(port).expect("port"))
}

/// Run a traffic-generator role in `ns` to the end: its ground truth.
pub fn run_gen(ns: &str, args: &str) -> Vec<Value> {
    Gen::spawn(Some(ns), args).finish()
}

/// A TCP server in B and one client process in A (`tcp-server` and
/// `tcp-client` arguments after their addresses); the truth of both.
pub fn tcp_exchange(ns: &Netns, server_args: &str, client_args: &str) -> Vec<Value> {
    let (server, port) = server(&ns.b, &format!("tcp-server --bind {} {server_args}", ns.b4));
    let mut truth = run_gen(
        &ns.a,
        &format!("tcp-client --to {} --port {port} {client_args}", ns.b4),
    );
    truth.extend(server.finish());
    truth
}

/// A connection that moved 11,111 bytes before `start` started netwho,
/// then 22,222 and 33,333 more: netwho, and the truth of what it should
/// count (the later bytes only).
pub fn older_connection(ns: &Netns, start: impl FnOnce() -> Netwho) -> (Netwho, Vec<Value>) {
    older_connections(ns, 1, 33_333, start)
}

/// `n` connections (one client process each) that moved 11,111 bytes
/// before `start` started netwho (their server waits for them longer than
/// for an ordinary peer), then, all at once, 22,222 from each
/// client and `reply` back: netwho, and the truth of what it should count
/// (the later bytes only). Each client had read nothing before netwho: its
/// start seed is 0, and its first counted read races the ACKs its socket
/// sends from softirq as the reply streams in.
pub fn older_connections(
    ns: &Netns,
    n: u32,
    reply: u64,
    start: impl FnOnce() -> Netwho,
) -> (Netwho, Vec<Value>) {
    const BEFORE: u64 = 11_111;
    let (server, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns {n} --skip {BEFORE} --expect 22222 --reply {reply}",
            ns.b4
        ),
    );
    let mut clients: Vec<Gen> = (0..n)
        .map(|_| {
            Gen::spawn(
                Some(&ns.a),
                &format!(
                    "tcp-client --to {} --port {port} --pause-after {BEFORE} --send 22222 \
                     --expect {reply}",
                    ns.b4
                ),
            )
        })
        .collect();
    for c in &mut clients {
        c.wait_for("paused");
    }
    let nw = start();
    for c in &mut clients {
        let stdin = c.stdin.as_mut().expect("the client's stdin");
        stdin
            .write_all(b"go\n")
            .expect("telling the client to go on");
        stdin.flush().expect("telling the client to go on");
    }
    let mut truth: Vec<Value> = clients.into_iter().flat_map(Gen::finish).collect();
    truth.extend(server.finish());
    (nw, truth)
}

/// A running `netwho log --json -o FILE`.
#[derive(Debug)]
pub struct Netwho {
    child: Option<Child>,
    /// The log file.
    pub out: PathBuf,
    _dir: TempDir,
}

#[derive(Debug)]
/// A temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory for `tag`.
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("netwho-e2e-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The last status record of a log.
pub fn last_status(records: &[Value]) -> &Value {
    records
        .iter()
        .rev()
        .find(|r| r["event"] == "status")
        .expect("a status record")
}

/// The complete records in a JSON-lines file. While netwho runs, the last
/// line may still be being written: only lines ended by a newline count
/// (every complete line must parse).
pub fn read_records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

impl Netwho {
    /// Start netwho and wait until it says every hook is attached.
    pub fn start(tag: &str, extra: &[&str]) -> Self {
        Netwho::start_bin(&netwho_bin(), tag, extra)
    }

    /// [`Netwho::start`] with another build of netwho.
    pub fn start_bin(bin: &Path, tag: &str, extra: &[&str]) -> Self {
        Netwho::start_cmd(Command::new(bin), tag, extra)
    }

    /// [`Netwho::start`] in network namespace `ns` (only the network
    /// namespace: mounts, `/sys` and cgroups stay the host's).
    pub fn start_in_netns(ns: &str, tag: &str, extra: &[&str]) -> Self {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{ns}")).arg(netwho_bin());
        Netwho::start_cmd(cmd, tag, extra)
    }

    fn start_cmd(mut cmd: Command, tag: &str, extra: &[&str]) -> Self {
        let dir = TempDir::new(tag);
        let out = dir.0.join("flows.jsonl");
        let child = cmd
            .args(["log", "--json", "--on", "both", "-o"])
            .arg(&out)
            .args(extra)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut n = Netwho {
            child: Some(child),
            out,
            _dir: dir,
        };
        n.wait_until("the ready status", Duration::from_secs(30), |recs| {
            // (a chained log starts with its chain record)
            recs.iter()
                .find(|r| r["event"] == "status")
                .is_some_and(|r| r["ready"] == true)
        });
        n
    }

    /// The complete records so far.
    pub fn records(&self) -> Vec<Value> {
        read_records(&self.out)
    }

    /// netwho's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Poll the output until `done` holds (bounded).
    pub fn wait_until(&mut self, what: &str, limit: Duration, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.records()) {
                return;
            }
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("netwho exited ({s}) before {what}");
            }
            assert!(
                Instant::now() < deadline,
                "netwho did not write {what} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the log has not grown for a second (bounded): for runs
    /// whose records are too many to parse on every poll.
    pub fn wait_quiet(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let (mut last, mut since) = (0u64, Instant::now());
        loop {
            let len = std::fs::metadata(&self.out).map_or(0, |m| m.len());
            if len != last {
                (last, since) = (len, Instant::now());
            } else if since.elapsed() >= Duration::from_secs(1) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the log kept growing for {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait (bounded) for it to exit by itself (after a signal the test
    /// sent: a second one would make it exit at once, with 130); the exit
    /// status and every record.
    pub fn wait_exit(mut self, limit: Duration) -> (ExitStatus, Vec<Value>) {
        let status = self.exit_within(limit, "within the time given");
        (status, read_records(&self.out))
    }

    /// Wait (at most `limit`) for netwho to exit; its status. (If it does
    /// not, the test fails and dropping `self` kills it.)
    fn exit_within(&mut self, limit: Duration, what: &str) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                break s;
            }
            assert!(Instant::now() < deadline, "netwho did not exit {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, wait for exit; the exit status and every record.
    pub fn stop(mut self) -> (ExitStatus, Vec<Value>) {
        let status = self.interrupt();
        (status, read_records(&self.out))
    }

    /// SIGINT, wait for exit; the exit status (the records are not read).
    pub fn stop_quietly(mut self) -> ExitStatus {
        self.interrupt()
    }

    fn interrupt(&mut self) -> ExitStatus {
        let pid = self.pid();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        self.exit_within(Duration::from_secs(30), "after SIGINT")
    }
}

impl Drop for Netwho {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Records of flows in the given network namespaces.
pub fn in_netns(records: &[Value], inodes: &[u64]) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["event"] != "status" && inodes.contains(&r["netns"].as_u64().unwrap_or(0)))
        .cloned()
        .collect()
}

/// Number of close records for flows of these pids.
pub fn closes_for(records: &[Value], pids: &[u64]) -> usize {
    records
        .iter()
        .filter(|r| r["event"] == "close" && pids.contains(&r["pid"].as_u64().unwrap_or(0)))
        .count()
}

/// The pids of the ground truth's records.
pub fn pids(truth: &[Value]) -> Vec<u64> {
    let mut v: Vec<u64> = truth.iter().filter_map(|t| t["pid"].as_u64()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Compare ground truth with netwho's records, flow by flow: each truth
/// flow must have exactly one open record and one final record (close, or
/// the update written at exit) with the right process and exact bytes, and
/// the generator's processes must have no other flows. Returns every
/// mismatch.
pub fn compare(truth: &[Value], records: &[Value], attribution: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let gen_pids = pids(truth);
    let finals: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "close" || r["event"] == "update")
        .filter(|r| gen_pids.contains(&r["pid"].as_u64().unwrap_or(0)))
        .collect();
    let mut used = vec![false; finals.len()];
    let mut open_count: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for o in records.iter().filter(|o| o["event"] == "open") {
        *open_count.entry(o["flow_id"].to_string()).or_default() += 1;
    }
    for t in truth {
        let matches: Vec<usize> = finals
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r["pid"] == t["pid"]
                    && r["proto"] == t["proto"]
                    && r["lport"] == t["lport"]
                    && r["raddr"] == t["raddr"]
                    && r["rport"] == t["rport"]
            })
            .map(|(i, _)| i)
            .collect();
        let desc = format!(
            "{} {} pid {} {}:{} -> {}:{}",
            t["role"], t["proto"], t["pid"], t["laddr"], t["lport"], t["raddr"], t["rport"]
        );
        match matches.as_slice() {
            [] => {
                errors.push(format!("{desc}: no record"));
                continue;
            }
            [i] => used[*i] = true,
            many => {
                errors.push(format!("{desc}: {} final records", many.len()));
                continue;
            }
        }
        let r = finals[matches[0]];
        for field in ["laddr", "comm", "uid", "gid", "bytes_sent", "bytes_recv"] {
            if r[field] != t[field] {
                errors.push(format!(
                    "{desc}: {field} is {} in the record, {} in truth",
                    r[field], t[field]
                ));
            }
        }
        if r["attribution"] != attribution {
            errors.push(format!(
                "{desc}: attribution {} (want {attribution})",
                r["attribution"]
            ));
        }
        let family = if t["raddr"].as_str().unwrap_or("").contains(':') {
            "ipv6"
        } else {
            "ipv4"
        };
        if r["family"] != family {
            errors.push(format!("{desc}: family {} (want {family})", r["family"]));
        }
        let opens = open_count
            .get(&r["flow_id"].to_string())
            .copied()
            .unwrap_or(0);
        if opens != 1 {
            errors.push(format!("{desc}: {opens} open records"));
        }
    }
    for (i, r) in finals.iter().enumerate() {
        if !used[i] {
            errors.push(format!(
                "extra flow for pid {}: {} {}:{} -> {}:{} sent {} recv {}",
                r["pid"],
                r["proto"],
                r["laddr"],
                r["lport"],
                r["raddr"],
                r["rport"],
                r["bytes_sent"],
                r["bytes_recv"]
            ));
        }
    }
    errors
}

/// Keep what a failing test compared, for the person who reads the log.
fn save_evidence(truth: &[Value], records: &[Value]) -> PathBuf {
    let dir = std::env::temp_dir().join("netwho-e2e-failures");
    let _ = std::fs::create_dir_all(&dir);
    let name = std::thread::current()
        .name()
        .unwrap_or("test")
        .replace("::", "-");
    let path = dir.join(format!("{name}.json"));
    let doc = serde_json::json!({"truth": truth, "records": records});
    let _ = std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap_or_default());
    path
}

/// Every ground-truth flow has its record, with its bytes and attribution;
/// on a difference, panics with them all and keeps the evidence.
pub fn assert_matches(truth: &[Value], records: &[Value], attribution: &str) {
    assert!(
        !truth.is_empty(),
        "no ground truth: the generator did nothing"
    );
    let errors = compare(truth, records, attribution);
    if !errors.is_empty() {
        let path = save_evidence(truth, records);
        // the records of the truth's processes, in the message too: under
        // the kernel matrix the evidence file is in a guest that is gone
        let p = pids(truth);
        let theirs: Vec<String> = records
            .iter()
            .filter(|r| r["pid"].as_u64().is_some_and(|x| p.contains(&x)))
            .take(60)
            .map(Value::to_string)
            .collect();
        panic!(
            "{} problems with {} flows (truth and records kept in {}):\n  {}\ntruth:\n  {}\ntheir processes' records:\n  {}",
            errors.len(),
            truth.len(),
            path.display(),
            errors.join("\n  "),
            truth
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n  "),
            theirs.join("\n  ")
        );
    }
}

/// `ADDR` formatted for trafficgen arguments.
pub fn a(addr: impl Into<IpAddr>) -> String {
    addr.into().to_string()
}

/// Wait until netwho has closed every truth flow of `pids`, stop it, check
/// it exited 0 with a final status, and return the records of `netns`.
pub fn stop_when_closed(nw: Netwho, truth: &[Value], ns: &[&str]) -> Vec<Value> {
    let records = stop_all(nw, truth);
    let inodes: Vec<u64> = ns.iter().map(|n| Netns::inode(n)).collect();
    in_netns(&records, &inodes)
}

/// As [`stop_when_closed`], but every record, status records included.
pub fn stop_all(mut nw: Netwho, truth: &[Value]) -> Vec<Value> {
    let p = pids(truth);
    let want = truth.len();
    nw.wait_until("the close records", Duration::from_secs(20), |recs| {
        closes_for(recs, &p) >= want
    });
    let (status, records) = nw.stop();
    assert!(status.success(), "netwho exited with {status}");
    let last = records.last().unwrap();
    // (shown with a failing test's output: the counters say what was lost)
    eprintln!("netwho's final status: {last}");
    assert_eq!(last["event"], "status");
    assert_eq!(last["final"], true);
    assert_eq!(last["drops"]["ringbuf"], 0, "kernel events lost: {last}");
    records
}

/// One HTTP/1.1 request to `addr` (`Connection: close`): the status and
/// the body (chunked bodies decoded). For talking to the daemon's API,
/// Prometheus and chromedriver in tests.
pub fn http(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    try_http(method, addr, path, headers, body).unwrap()
}

/// [`http`], with failures to connect or read as errors (for polling a
/// server that is starting).
pub fn try_http(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String), String> {
    use std::io::{Read as _, Write as _};
    let e = |e: std::io::Error| format!("{addr}{path}: {e}");
    let mut s = std::net::TcpStream::connect(addr).map_err(e)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(e)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).map_err(e)?;
    // read until the body is complete (some servers keep the connection)
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).map_err(e)?;
        if n == 0 {
            return Err(format!("{addr}{path}: closed before the headers ended"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let lower = head.to_ascii_lowercase();
    let length: Option<usize> = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    loop {
        let have = raw.len() - split - 4;
        let done = match length {
            Some(n) => have >= n,
            None if lower.contains("transfer-encoding: chunked") => raw.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).map_err(e)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let mut rest = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut b = &rest[..];
        while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
            b = &b[eol + 2 + n + 2..];
        }
        rest = out;
    }
    Ok((status, String::from_utf8_lossy(&rest).to_string()))
}

/// A TCP port on 127.0.0.1 free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Standard base64 (for chromedriver's screenshots).
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Calls `f` every 300 ms until it returns Ok, for at most `secs`
/// seconds; then fails with `what` and the last error.
pub fn poll<T>(secs: u64, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    #[expect(
        clippy::disallowed_methods,
        reason = "a bound on waiting, not a measurement"
    )]
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() > Duration::from_secs(secs) => {
                panic!("{what}: never happened; last: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// A process the test started and kills when it goes (tshark, netwho,
/// servers).
#[derive(Debug)]
pub struct Running(pub Child);

impl Running {
    /// Starts `cmd` with its standard error in `err`, and waits until it
    /// writes `ready` there.
    pub fn start(cmd: &mut Command, err: &Path, ready: &str) -> Running {
        let r = Running(
            cmd.stdout(Stdio::null())
                .stderr(File::create(err).unwrap())
                .spawn()
                .unwrap(),
        );
        poll(30, &format!("{ready:?} from {cmd:?}"), || {
            let e = std::fs::read_to_string(err).unwrap_or_default();
            if e.contains(ready) { Ok(()) } else { Err(e) }
        });
        r
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGINT, and its exit status.
pub fn sigint(c: &mut Running) -> ExitStatus {
    let pid = i32::try_from(c.0.id()).unwrap();
    // SAFETY: signalling our own child
    unsafe { libc::kill(pid, libc::SIGINT) };
    c.0.wait().unwrap()
}

/// A running `netwho daemon` on a database.
#[derive(Debug)]
pub struct Daemon {
    /// The daemon.
    pub child: Child,
    /// Its standard error (its log).
    pub err: PathBuf,
}

impl Daemon {
    /// A daemon on `dir` with `filter`.
    pub fn start(dir: &Path, filter: &str) -> Daemon {
        Daemon::start_with(dir, filter, "")
    }

    /// With more of the `[api]` section (its socket is in `dir`) and more
    /// sections after it. Names of remotes are not looked up (a reverse
    /// lookup of a test address would ask the system's DNS server).
    pub fn start_with(dir: &Path, filter: &str, api: &str) -> Daemon {
        Daemon::configured(dir, filter, "remote_names = false\n", api)
    }

    /// A daemon with history, API and further configuration.
    pub fn configured(dir: &Path, filter: &str, history: &str, api: &str) -> Daemon {
        let cfg = dir.join("netwho.toml");
        std::fs::write(
            &cfg,
            format!(
                "filter = \"{filter}\"\n[history]\ndb = \"{}\"\ncommit_every = \"500ms\"\n{history}[api]\nsocket = \"{}\"\n{api}",
                dir.join("h.db").display(),
                dir.join("api.sock").display()
            ),
        )
        .unwrap();
        let err = dir.join(format!("daemon-{}.err", std::process::id()));
        let child = Command::new(netwho_bin())
            .args(["daemon", "-v", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, err };
        d.wait_log("attached:");
        d
    }

    /// Wait (bounded) until its log says `what`.
    pub fn wait_log(&self, what: &str) {
        poll(30, &format!("{what:?} in the daemon's log"), || {
            let log = std::fs::read_to_string(&self.err).unwrap_or_default();
            if log.contains(what) { Ok(()) } else { Err(log) }
        });
    }

    /// (thread name, CapEff, CapPrm, CapBnd, effective uid) of every
    /// thread.
    pub fn caps(&self) -> Vec<(String, String, String, String, String)> {
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
                field("Uid:")
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        out
    }

    /// SIGKILL, and wait.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: signalling our own child
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let st = self.child.wait().unwrap();
        assert!(st.success(), "daemon exit {st}");
    }
}

impl Drop for Daemon {
    /// A test that failed leaves no daemon behind (after `stop` or
    /// `kill9` the child is gone and this does nothing).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `setpriv` set to run what follows as `user`, with no supplementary
/// groups.
pub fn setpriv(user: &TestUser) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--clear-groups");
    c
}

/// `args` run as `user` (no supplementary groups): its stdout, or the
/// failure with stderr.
pub fn as_user(user: &TestUser, prog: &Path, args: &[&str]) -> (bool, String, String) {
    let out = setpriv(user).arg(prog).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A GET over the daemon's Unix socket as `user`, by a Python one-liner
/// (so the kernel sees that user's credentials): (status, body).
pub fn unix_get_as(user: &TestUser, sock: &Path, path: &str) -> (u16, String) {
    let py = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect({sock:?})\ns.sendall(b'GET {path} HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')\nb=b''\nwhile True:\n  d=s.recv(65536)\n  if not d: break\n  b+=d\nsys.stdout.write(b.decode())\n",
        sock = sock.display().to_string()
    );
    let (ok, out, err) = as_user(user, Path::new("/usr/bin/env"), &["python3", "-c", &py]);
    assert!(ok, "{err}");
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// A process of this test, stopped by PID when dropped.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Python that has the `communityid` package (`scripts/test` makes it
/// in `target/py`); None (with a note) when it is missing outside CI, a
/// failure in CI.
pub fn communityid_python() -> Option<PathBuf> {
    reference_python("communityid", "the communityid Python package")
}

/// The Python in `target/py` if it has OpenTelemetry's protobuf
/// definitions (`opentelemetry-proto`, which scripts/test installs);
/// None (with a note) otherwise, and in CI a failed test.
pub fn otlp_python() -> Option<PathBuf> {
    reference_python(
        "opentelemetry.proto.collector.logs.v1.logs_service_pb2",
        "the opentelemetry-proto Python package",
    )
}

/// A test OTLP/HTTP receiver (`tests/e2e/otlp_receiver.py`, decoding with
/// `opentelemetry-proto`) on the loopback, writing what it gets to a file
/// of JSON lines.
#[derive(Debug)]
pub struct OtlpReceiver {
    /// The receiver, stopped when dropped.
    pub proc: Running,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// One line per log record or metric point.
    pub out: PathBuf,
}

impl OtlpReceiver {
    /// Starts one with `py` ([`otlp_python`]), its files in `dir`; the
    /// first `fail_first` requests are answered 503.
    pub fn start(py: &Path, dir: &Path, fail_first: u32) -> OtlpReceiver {
        let out = dir.join("otlp-received.jsonl");
        let err = dir.join("otlp-receiver.err");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("otlp_receiver.py");
        let proc = Running::start(
            Command::new(py)
                .arg(&script)
                .arg("--out")
                .arg(&out)
                .args(["--fail-first", &fail_first.to_string()]),
            &err,
            "listening on",
        );
        let port = std::fs::read_to_string(&err)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("listening on "))
            .and_then(|p| p.trim().parse().ok())
            .expect("the receiver's port");
        OtlpReceiver { proc, port, out }
    }

    /// Stops it (SIGKILL: it writes each request's lines before it
    /// answers, so nothing is lost; SIGINT would not do, as a Python
    /// started from a backgrounded shell, as CI runs, inherits SIGINT
    /// ignored and never sees it).
    pub fn stop(&mut self) {
        let _ = self.proc.0.kill();
        let _ = self.proc.0.wait();
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it got so far.
    pub fn received(&self) -> Vec<Value> {
        read_records(&self.out)
    }
}

fn reference_python(module: &str, what: &str) -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py/bin/python");
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    let msg = format!("needs {what} in target/py (scripts/test installs it)");
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("skipped: {msg}");
    None
}

/// What the reference computes for each `{proto, src, dst, sport,
/// dport}` (`proto`: `tcp`, `udp`, `icmp` or `icmpv6`, whose "ports" are
/// the message's type and code) with `seed`.
pub fn communityid_reference(py: &Path, seed: u16, tuples: &[Value]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys, communityid
cid = communityid.CommunityID(seed=int(sys.argv[1]))
protos = {"tcp": communityid.PROTO_TCP, "udp": communityid.PROTO_UDP,
          "icmp": communityid.PROTO_ICMP, "icmpv6": communityid.PROTO_ICMP6}
for line in sys.stdin:
    t = json.loads(line)
    ft = communityid.FlowTuple(protos[t["proto"]], t["src"], t["dst"], t["sport"], t["dport"])
    print(cid.calc(ft))
"#;
    let mut child = Command::new(py)
        .args(["-c", SCRIPT, &seed.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for t in tuples {
        input.push_str(&t.to_string());
        input.push('\n');
    }
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Headless Chromium (Debian's) driven by chromedriver over WebDriver:
/// the browser and the driver end when this is dropped.
#[derive(Debug)]
pub struct Browser {
    /// The driver's address.
    drv: String,
    /// The session.
    id: String,
    _driver: Proc,
}

impl Browser {
    /// A new browser session.
    pub fn start() -> Browser {
        let port = free_port();
        let drv = format!("127.0.0.1:{port}");
        let driver = Proc(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("chromedriver (scripts/test installs Debian's chromium-driver): {e}")
                }),
        );
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-background-networking",
                     "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1800"]
        }}}});
        let (_, body) = poll(30, "chromedriver starts a session", || {
            try_http("POST", &drv, "/session", &[], Some(&caps.to_string()))
                .and_then(|(st, b)| if st == 200 { Ok((st, b)) } else { Err(b) })
        });
        let sess: Value = serde_json::from_str(&body).unwrap();
        let id = sess["value"]["sessionId"].as_str().unwrap().to_string();
        Browser {
            drv,
            id,
            _driver: driver,
        }
    }

    /// A WebDriver command on the session (it must succeed): its value.
    pub fn cmd(&self, path: &str, body: Value) -> Value {
        let (st, b) = http(
            "POST",
            &self.drv,
            &format!("/session/{}{path}", self.id),
            &[],
            Some(&body.to_string()),
        );
        assert_eq!(st, 200, "{path}: {b}");
        serde_json::from_str::<Value>(&b).unwrap()["value"].clone()
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.cmd("/url", serde_json::json!({ "url": url }));
    }

    /// What `script` returns.
    pub fn js(&self, script: &str) -> Value {
        self.cmd(
            "/execute/sync",
            serde_json::json!({"script": script, "args": []}),
        )
    }

    /// Waits (bounded) until the text `script` returns holds every one of
    /// `wants`; that text.
    pub fn wait_text(&self, what: &str, script: &str, wants: &[&str]) -> String {
        poll(30, what, || {
            let t = self.js(script).as_str().unwrap_or("").to_string();
            if wants.iter().all(|w| t.contains(w)) {
                Ok(t)
            } else {
                Err(t)
            }
        })
    }

    /// Clicks the element at `xpath`, found again on each try (pages
    /// redraw their tables).
    pub fn click(&self, what: &str, xpath: &str) {
        poll(30, what, || {
            let el = self.cmd(
                "/element",
                serde_json::json!({"using": "xpath", "value": xpath}),
            );
            let eid = el
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .ok_or(format!("no element: {el}"))?
                .to_string();
            let (st, b) = try_http(
                "POST",
                &self.drv,
                &format!("/session/{}/element/{eid}/click", self.id),
                &[],
                Some("{}"),
            )?;
            if st == 200 { Ok(()) } else { Err(b) }
        });
    }

    /// A screenshot (PNG) kept in `target/e2e-artifacts/NAME`: its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let (st, shot) = http(
            "GET",
            &self.drv,
            &format!("/session/{}/screenshot", self.id),
            &[],
            None,
        );
        assert_eq!(st, 200);
        let v: Value = serde_json::from_str(&shot).unwrap();
        let png = base64_decode(v["value"].as_str().unwrap());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let dir = netwho_bin()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("e2e-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    /// Ends the browser even when an assertion failed (before the driver
    /// goes).
    fn drop(&mut self) {
        let _ = try_http(
            "DELETE",
            &self.drv,
            &format!("/session/{}", self.id),
            &[],
            None,
        );
    }
}

/// The Python in `target/py` if it has aioquic (a real QUIC client; see
/// [`communityid_python`] for when it is missing).
pub fn aioquic_python() -> Option<PathBuf> {
    reference_python("aioquic", "the aioquic Python package")
}
