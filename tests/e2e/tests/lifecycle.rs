//! netwho's life: start-up errors a user can act on, clean shutdown with
//! final records, no trace left after SIGKILL, and the other outputs
//! (`top --json`, the text log) on real traffic.

#![expect(clippy::unwrap_used, reason = "tests")]
#![expect(clippy::disallowed_methods, reason = "tests wait with real deadlines")]

use netwho_e2e::*;
use serde_json::Value;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run netwho with `cmd` set up by `f`; its exit code and stderr.
fn run_netwho(f: impl FnOnce(&mut Command)) -> (i32, String) {
    let mut cmd = Command::new(netwho_bin());
    cmd.args(["log", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    f(&mut cmd);
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_privileges_netwho_says_what_it_needs_and_exits_2() {
    if !require_root() {
        return;
    }
    let (code, err) = run_netwho(|c| {
        c.uid(65534).gid(65534);
    });
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CAP_BPF") && err.contains("root"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

/// Run `netwho ARGS` in a private mount namespace after `setup` (shell)
/// hid something from it; the host is untouched. Its exit code, standard
/// output and standard error.
fn in_private_mounts(setup: &str, args: &str) -> (i32, String, String) {
    let script = format!("{setup} && exec \"$0\" {args}");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(netwho_bin())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HIDE_BTF: &str = "mount -t tmpfs none /sys/kernel/btf";

#[test]
fn a_kernel_without_btf_gets_a_clear_error() {
    if !require_root() {
        return;
    }
    let (code, _, err) = in_private_mounts(HIDE_BTF, "log --json --sensor ebpf");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("BTF") && err.contains("CONFIG_DEBUG_INFO_BTF"),
        "{err}"
    );
}

/// Without BTF netwho runs in the reduced mode (`--sensor auto`, the
/// default), says why, and `netwho doctor` says it can run, reduced.
#[test]
fn a_kernel_without_btf_runs_in_the_reduced_mode() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let (code, out, err) = in_private_mounts(
        HIDE_BTF,
        "log --json --on both & p=$!; sleep 3; kill -TERM $p; wait $p",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the kernel programs cannot run here (the kernel has no BTF"),
        "{err}"
    );
    let last: Value = out
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["event"] == "status")
        .unwrap_or_else(|| panic!("no status record: {out}\n{err}"));
    assert_eq!(last["final"], true, "{last}");
    assert_eq!(last["attribution"], "sock_diag", "{last}");
    assert!(
        last["degradations"][0]
            .as_str()
            .unwrap()
            .contains("the kernel programs could not run: the kernel has no BTF"),
        "{last}"
    );
    let (code, out, err) = in_private_mounts(HIDE_BTF, "doctor");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("FAIL  btf"), "{out}");
    assert!(
        out.contains("verdict: netwho can run here, reduced"),
        "{out}"
    );
}

#[test]
fn a_host_without_cgroup_v2_gets_a_clear_error() {
    if !require_root() {
        return;
    }
    // unmount every cgroup2 mount, deepest first, inside the namespace only
    let (code, _, err) = in_private_mounts(
        "for m in $(awk '$9 == \"cgroup2\" {print $5}' /proc/self/mountinfo | sort -r); do umount -l \"$m\"; done",
        "log --json --sensor ebpf",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cgroup v2 is not mounted") && err.contains("mount -t cgroup2"),
        "{err}"
    );
}

/// The BPF program ids a process holds (from /proc/PID/fdinfo).
fn prog_ids(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("prog_id:") {
                ids.push(v.trim().parse().unwrap());
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Does the kernel still have program `id`? (BPF_PROG_GET_FD_BY_ID)
fn prog_exists(id: u32) -> bool {
    #[repr(C)]
    struct Attr {
        id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let mut attr = Attr {
        id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: BPF_PROG_GET_FD_BY_ID (13) reads this attr; we close the fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            13,
            std::ptr::from_mut(&mut attr),
            size_of::<Attr>() as u32,
        )
    };
    if fd >= 0 {
        // SAFETY: closing the fd we were just given.
        unsafe { libc::close(fd as i32) };
    }
    fd >= 0
}

#[test]
fn sigkill_leaves_no_program_attached() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let nw = Netwho::start("kill", &[]);
    let pid = nw.pid();
    let ids = prog_ids(pid);
    assert_eq!(ids.len(), 16, "one program per hook: {ids:?}");
    assert!(ids.iter().all(|id| prog_exists(*id)));
    // SAFETY: killing our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    drop(nw);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = ids.iter().copied().filter(|id| prog_exists(*id)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "programs still loaded after SIGKILL: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_writes_the_totals_of_open_flows_and_exits_0() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("term", 9);
    let mut nw = Netwho::start("term", &["--status-interval", "0.3"]);
    let (server, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --skip 12345 --expect 1 --reply 1",
            ns.b4
        ),
    );
    let mut client = Gen::spawn(
        Some(&ns.a),
        &format!(
            "tcp-client --to {} --port {port} --pause-after 12345 --send 1 --expect 1",
            ns.b4
        ),
    );
    client.wait_for("paused");
    // the server has read the 12,345 bytes once netwho counted them
    nw.wait_until("two status records", Duration::from_secs(10), |recs| {
        recs.iter().filter(|r| r["event"] == "status").count() >= 3
    });
    let client_pid = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let recs = nw.records();
            if let Some(r) = recs.iter().find(|r| {
                r["event"] == "open" && r["direction"] == "outbound" && r["raddr"] == a(ns.b4)
            }) {
                break r["pid"].clone();
            }
            assert!(Instant::now() < deadline, "no open record for the client");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let pid = nw.pid();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    // (no second signal: while it shuts down, one would end it at once)
    let (status, records) = nw.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    assert!(
        records
            .last()
            .is_some_and(|r| r["event"] == "status" && r["final"] == true),
        "a final status after SIGTERM"
    );
    let updates: Vec<&Value> = records.iter().filter(|r| r["event"] == "update").collect();
    let client_update = updates
        .iter()
        .find(|r| r["pid"] == client_pid)
        .expect("update for the client");
    assert_eq!(client_update["bytes_sent"], 12_345);
    let server_update = updates
        .iter()
        .find(|r| r["direction"] == "inbound" && r["laddr"] == a(ns.b4))
        .expect("update for the server");
    assert_eq!(server_update["bytes_recv"], 12_345);
    assert!(
        client_update.get("ts_close").is_none(),
        "an update is not a close"
    );
    // let the generators finish
    let stdin = client.stdin.as_mut().unwrap();
    stdin.write_all(b"go\n").unwrap();
    client.finish();
    server.finish();
}

#[test]
fn top_json_totals_match_the_traffic() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("top", 10);
    let dir = TempDir::new("top");
    let out_path = dir.0.join("top.jsonl");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut top = Command::new(netwho_bin())
        .args(["top", "--json", "--interval", "0.2"])
        .stdout(out)
        .spawn()
        .unwrap();
    let first_table = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&out_path)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < first_table, "no table from netwho top");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (server, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 3 --expect 70000 --reply 9000",
            ns.b4
        ),
    );
    let truth = run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 3 --send 70000 --expect 9000",
            ns.b4
        ),
    );
    server.finish();
    let pid = truth[0]["pid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        let last: Option<Value> = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok());
        let row = last.and_then(|t| {
            t["procs"]
                .as_array()?
                .iter()
                .find(|p| p["pid"] == pid)
                .cloned()
        });
        if let Some(r) = row.filter(|r| r["flows_open"] == 0 && r["flows_total"] == 3) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the client never showed up with 3 closed flows"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(row["bytes_sent"], 3 * 70_000);
    assert_eq!(row["bytes_recv"], 3 * 9_000);
    assert_eq!(row["comm"], "netwho-trafficg");
    assert_eq!(row["user"], "root");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(top.id() as i32, libc::SIGINT) };
    assert!(top.wait().unwrap().success());
}

#[test]
fn the_text_log_has_one_readable_line_per_event() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("text", 11);
    let dir = TempDir::new("text");
    let out_path = dir.0.join("log.txt");
    let mut log = Command::new(netwho_bin())
        .args(["log", "--on", "both", "-o"])
        .arg(&out_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the text log says on stderr when it is ready
    let mut err = std::io::BufReader::new(log.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert!(line.starts_with("netwho: ebpf (16 hooks)"), "{line}");
    let (server, port) = server(
        &ns.b,
        &format!("tcp-server --bind {} --expect 100 --reply 200", ns.b4),
    );
    let truth = run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --send 100 --expect 200",
            ns.b4
        ),
    );
    server.finish();
    let t = &truth[0];
    let open = format!(
        "open  tcp/ipv4 {}:{} -> {}:{} :: {} root(0):root(0)",
        ns.a4, t["lport"], ns.b4, port, t["pid"]
    );
    let close = format!(
        "{}:{} -> {}:{} :: {} ",
        ns.a4, t["lport"], ns.b4, port, t["pid"]
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        let has_open = text
            .lines()
            .any(|l| l.contains(&open) && l.contains("netwho-trafficgen tcp-client"));
        let has_close = text.lines().any(|l| {
            l.contains(" close tcp/ipv4 ")
                && l.contains(&close)
                && l.contains(":: sent 100 recv 200 in ")
        });
        if has_open && has_close {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing lines in:\n{text}\nwanted {open:?} and a close"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(log.id() as i32, libc::SIGINT) };
    assert!(log.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(rest.contains("nothing lost"), "{rest}");
}
