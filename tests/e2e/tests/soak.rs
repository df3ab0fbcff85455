//! The soak: netwho under steady churn (short connections, datagrams to
//! many ports from fresh sockets, short-lived processes) must stay flat:
//! its memory after warm-up, the kernel's flow map, its own tables. Three
//! minutes here (CI); `bench/soak` runs it for an hour
//! (`NETWHO_SOAK_SECS`), and writes its samples to `bench/out/soak.txt`
//! when `NETWHO_SOAK_OUT` names a file.

#![expect(
    clippy::disallowed_methods,
    reason = "a soak paces itself with the clock"
)]

use netwho_e2e::*;
use serde_json::Value;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::process::Command;
use std::time::{Duration, Instant};

/// The last status record of the log, read from its last 2 MiB only (the
/// log is large; a status record comes every 0.2 s).
fn tail_status(path: &std::path::Path) -> Option<Value> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(2 << 20))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let complete = &text[..text.rfind('\n')?];
    complete
        .lines()
        .rev()
        .filter(|l| l.contains("\"event\":\"status\""))
        .find_map(|l| serde_json::from_str(l).ok())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Processes and threads the machine has started since it booted
/// (`/proc/stat`'s `processes`).
fn forks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("processes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("/proc/stat has no processes line"))
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: u64,
    rss_kib: u64,
    flows_tracked: u64,
    flows_open: u64,
    procs_tracked: u64,
    flows_opened: u64,
}

fn sample(nw_pid: u32, log: &std::path::Path, at_s: u64) -> Option<Sample> {
    let st = tail_status(log)?;
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    Some(Sample {
        at_s,
        rss_kib: rss_kib(nw_pid),
        flows_tracked: n(&st["kernel"]["flows_tracked"]),
        flows_open: n(&st["flows_open"]),
        procs_tracked: n(&st["procs_tracked"]),
        flows_opened: n(&st["flows_opened"]),
    })
}

#[test]
fn steady_churn_leaves_netwho_flat() {
    if !require_root() {
        return;
    }
    let Some((netwho, tg)) = release_bins() else {
        return;
    };
    let secs: u64 = std::env::var("NETWHO_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let _s = serial();
    let ns = Netns::pair("soak", 37);
    ns.for_storms();
    let user = TestUser::create("nwsoak1");
    let nw = Netwho::start_bin(
        &netwho,
        "soak",
        &[
            "--status-interval",
            "0.2",
            "--rotate-size",
            "64MiB",
            "--rotate-keep",
            "1",
            "--no-compress",
        ],
    );
    let log = nw.out.clone();
    let pid = nw.pid();
    std::thread::sleep(Duration::from_secs(2));
    let base = sample(pid, &log, 0).unwrap();

    let in_ns = |ns: &str, args: String| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns])
            .arg("setpriv")
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .arg("--clear-groups")
            .arg(&tg)
            .args(args.split_whitespace().map(str::to_string));
        Gen::spawn_cmd(c)
    };
    let mut server = in_ns(&ns.b, format!("storm-server --bind {} --threads 2", ns.b4));
    let port = server.wait_for("ready")["port"].as_u64().unwrap();
    // short connections all along: 300/s
    let conns = in_ns(
        &ns.a,
        format!(
            "storm-client --to {} --port {port} --threads 2 --rate 300 --secs {secs} --size 200",
            ns.b4
        ),
    );

    let start = Instant::now();
    let mut samples = vec![base];
    let mut round = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        // every 5 s: 300 datagrams from fresh sockets to 300 ports (a new
        // range each time), one socket to 500 ports, and 20 processes that
        // fork, send one datagram and exit
        let base_port = 20_000 + (round % 40) * 1000;
        let mut bursts = vec![
            in_ns(
                &ns.a,
                format!(
                    "udp-oneshot --to {} --src {} --port-base {base_port} --count 300 --size 50",
                    ns.b4, ns.a4
                ),
            ),
            in_ns(
                &ns.a,
                format!(
                    "udp-spray --to {} --src {} --port-base {} --count 500 --size 30",
                    ns.b4,
                    ns.a4,
                    base_port + 300
                ),
            ),
            in_ns(
                &ns.a,
                format!(
                    "spawn-udp --to {} --src {} --port-base {} --count 20 --size 10",
                    ns.b4,
                    ns.a4,
                    base_port + 900
                ),
            ),
        ];
        for g in bursts.drain(..) {
            drop(g.finish());
        }
        round += 1;
        std::thread::sleep(Duration::from_secs(5));
        if let Some(s) = sample(pid, &log, start.elapsed().as_secs()) {
            samples.push(s);
        }
    }
    drop(conns.finish());
    drop(server);

    // after the churn: the flow map and the tables go back to where they
    // were (UDP flows end at their socket's close; exited processes are
    // kept for 120 s). netwho tracks every process of the machine, so the
    // processes started since the churn ended by anything else (cron, an
    // agent; the test starts none) are allowed for: a leak of the churn's
    // hundreds of exited processes still fails on a quiet machine.
    let settle = Instant::now();
    let forks_at_end = forks();
    let settled = loop {
        let s = sample(pid, &log, start.elapsed().as_secs()).unwrap();
        let others = forks().saturating_sub(forks_at_end);
        if s.flows_tracked <= base.flows_tracked + 8
            && s.flows_open <= base.flows_open + 8
            && s.procs_tracked <= base.procs_tracked + 8 + others
        {
            break s;
        }
        assert!(
            settle.elapsed() < Duration::from_secs(200),
            "netwho did not settle back: {s:?}, at start {base:?} \
             ({others} processes and threads started elsewhere since the churn)"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    samples.push(settled);
    // the log is large: stop without parsing it
    assert!(nw.stop_quietly().success());

    let report: Vec<String> = samples
        .iter()
        .map(|s| {
            format!(
                "{:>6} s  rss {:>7} KiB  kernel flows {:>6}  open {:>6}  procs {:>6}  opened {:>9}",
                s.at_s, s.rss_kib, s.flows_tracked, s.flows_open, s.procs_tracked, s.flows_opened
            )
        })
        .collect();
    eprintln!("soak:\n{}", report.join("\n"));
    if let Some(out) = std::env::var_os("NETWHO_SOAK_OUT") {
        std::fs::write(out, report.join("\n") + "\n").unwrap();
    }

    // memory flat after warm-up: the last third peaks no higher than the
    // middle third (plus 10 % and 4 MiB of allocator slack)
    let churn: Vec<&Sample> = samples[1..samples.len() - 1].iter().collect();
    assert!(churn.len() >= 6, "too few samples: {}", churn.len());
    let third = churn.len() / 3;
    let peak = |v: &[&Sample]| v.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let (middle, last) = (peak(&churn[third..2 * third]), peak(&churn[2 * third..]));
    assert!(
        last <= middle + middle / 10 + 4096,
        "netwho's memory grew: peak {middle} KiB in the middle third, {last} KiB in the last"
    );
    assert!(
        settled.flows_opened > base.flows_opened + secs * 300,
        "the churn did not happen"
    );
}
