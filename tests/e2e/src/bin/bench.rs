//! netwho-bench: what netwho costs, as ratios against a baseline taken in
//! the same run (never a wall-clock threshold).
//!
//! Three workloads between two network namespaces, each run without and
//! with `netwho log --json -o FILE` (its main job, records encoded and
//! written), interleaved over several rounds; medians are reported:
//!
//! * paced: a fixed rate of short TCP connections (default 500/s, 100 B
//!   each way): netwho's CPU % of one core, and the kernel programs' own
//!   time per connection (BPF run statistics, switched on for this
//!   workload only: they cost time themselves);
//! * unpaced: connections as fast as one client can make them: the ratio
//!   of connections per second;
//! * bulk: one TCP stream as fast as possible: the ratio of throughput;
//! * unpaced under nethogs (`nethogs -t` in the client's namespace), the
//!   peer anchor: its ratio against the same round without a monitor, and
//!   its CPU;
//! * paced and bulk under `netwho pcap -s 128` (every packet of every
//!   socket, its first 128 bytes, into a pcapng file): netwho's CPU, the
//!   kernel time per connection, the bulk ratio against the same round
//!   without netwho, and the file's bytes per connection;
//! * paced, scoped: the paced workload again with netwho given a filter
//!   whose kernel scope matches none of it (`user.uid = 4242`): what
//!   traffic outside a scope still costs (netwho's CPU, kernel time per
//!   connection).
//! * names: 1,000 DNS lookups a second (each a fresh UDP socket, as libc
//!   makes, then a connection to the answer), with names on (the default)
//!   and with `--names off` in the same round: netwho's CPU and the kernel
//!   time per lookup, and how many of the connections got their `rname`.
//! * paced, recorded: `log --record` (the log and a recording), and
//!   `netwho record` alone keeping its summary (`FILE.sum`) and with
//!   `--no-summary`, in the same round: netwho's CPU.
//!
//! Run it with `bench/run` (release build, as root).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark tool: fail loudly"
)]
#![expect(clippy::disallowed_methods, reason = "a benchmark measures time")]

use clap::Parser;
use netwho_e2e::{Gen, Netns, Netwho, Running, TempDir, netwho_bin, require_root, server, sigint};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// Seconds per measurement
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Rounds of (without, with); medians are reported
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Connections per second of the paced workload
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Where to write the results as JSON
    #[arg(long, default_value = "bench/out/results.json")]
    out: PathBuf,
}

/// Time a process has spent on a CPU, in seconds, summed over its threads
/// (`/proc/PID/task/*/schedstat` counts nanoseconds; `stat` only 10 ms
/// ticks, too coarse for a process that uses 1 % of a core).
fn cpu_secs(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten();
    let ns: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// Total run time (ns) and runs of the BPF programs a process holds.
fn bpf_time(pid: u32) -> (u64, u64) {
    let mut ns = 0;
    let mut runs = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if !text.contains("prog_id:") || text.contains("link_id:") {
            continue;
        }
        for line in text.lines() {
            let num = |p: &str| {
                line.strip_prefix(p)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            if let Some(v) = num("run_time_ns:") {
                ns += v;
            }
            if let Some(v) = num("run_cnt:") {
                runs += v;
            }
        }
    }
    (ns, runs)
}

/// One workload's numbers.
#[derive(Clone, Copy, Default)]
struct Sample {
    value: f64,
    netwho_cpu: f64,
    bpf_ns: f64,
    units: f64,
}

fn measure(ns: &Netns, nw: Option<&Netwho>, args: &str, key: &str, units_key: &str) -> Sample {
    measure_pid(ns, nw.map(Netwho::pid), args, key, units_key)
}

/// [`measure`] with any monitor process (`netwho pcap`).
fn measure_pid(ns: &Netns, pid: Option<u32>, args: &str, key: &str, units_key: &str) -> Sample {
    let cpu0 = pid.map_or(0.0, cpu_secs);
    let bpf0 = pid.map_or((0, 0), bpf_time);
    let t0 = std::time::Instant::now();
    let mut g = Gen::spawn(Some(&ns.a), args);
    let done = g.wait_for("done");
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = pid.map_or(0.0, cpu_secs);
    let bpf1 = pid.map_or((0, 0), bpf_time);
    let units = done[units_key].as_f64().unwrap_or(0.0);
    Sample {
        value: done[key].as_f64().unwrap_or(0.0),
        netwho_cpu: (cpu1 - cpu0) / wall * 100.0,
        bpf_ns: (bpf1.0 - bpf0.0) as f64,
        units,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

fn sysctl_bpf_stats(on: bool) -> bool {
    let path = "/proc/sys/kernel/bpf_stats_enabled";
    let was = std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1");
    let _ = std::fs::write(path, if on { "1" } else { "0" });
    was
}

/// A filter whose kernel scope matches none of the benchmark's traffic.
const SCOPE_NOTHING: &str = "user.uid = 4242";

fn main() {
    let args = Args::parse();
    if !require_root() {
        std::process::exit(2);
    }
    let ns = Netns::pair("bench", 200);
    let stats_were_on = sysctl_bpf_stats(false);
    let (echo, echo_port) = server(&ns.b, &format!("bench-server --bind {} --size 100", ns.b4));
    let (sink, sink_port) = server(&ns.b, &format!("bench-server --bind {} --sink", ns.b4));
    let (to, secs) = (ns.b4, args.secs);
    let paced = format!(
        "rate-client --to {to} --port {echo_port} --rate {} --secs {secs}",
        args.rate
    );
    let unpaced = format!("rate-client --to {to} --port {echo_port} --rate 0 --secs {secs}");
    let bulk = format!("bulk-client --to {to} --port {sink_port} --secs {secs}");
    let (dns, _) = server(&ns.b, &format!("dns-server --bind {to} --answer {to}"));
    let lookups = format!("dns-client --to {to} --port {echo_port} --rate 1000 --secs {secs}");
    let mut named: Vec<[(Sample, f64); 2]> = Vec::new();

    let names = ["paced", "unpaced", "bulk"];
    let mut runs: Vec<[[Sample; 3]; 2]> = Vec::new();
    let mut drops = 0u64;
    let mut scoped: Vec<Sample> = Vec::new();
    let mut chained: Vec<Sample> = Vec::new();
    let mut recorded: Vec<(Sample, f64)> = Vec::new();
    let mut summaries: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
    let mut reduced: Vec<(Sample, f64)> = Vec::new();
    let mut captured: Vec<(Sample, f64, f64)> = Vec::new();
    let mut hogs: Vec<(Sample, f64)> = Vec::new();
    let have_nethogs = std::process::Command::new("nethogs")
        .arg("-V")
        .output()
        .is_ok();
    if !have_nethogs {
        eprintln!("nethogs is not installed (apt-get install nethogs): its row is left out");
    }
    for round in 0..args.rounds {
        let mut pair = [[Sample::default(); 3]; 2];
        for (w, with) in [false, true].into_iter().enumerate() {
            let nw = with.then(|| Netwho::start(&format!("bench{round}"), &[]));
            eprintln!(
                "round {}/{}: {} netwho",
                round + 1,
                args.rounds,
                if with { "with" } else { "without" }
            );
            sysctl_bpf_stats(true);
            pair[w][0] = measure(&ns, nw.as_ref(), &paced, "rate", "conns");
            sysctl_bpf_stats(false);
            pair[w][1] = measure(&ns, nw.as_ref(), &unpaced, "rate", "conns");
            pair[w][2] = measure(&ns, nw.as_ref(), &bulk, "bytes_per_s", "bytes");
            if let Some(nw) = nw {
                let (status, records) = nw.stop();
                assert!(status.success());
                let last: &Value = records.last().expect("records");
                drops += last["drops"]["ringbuf"].as_u64().unwrap_or(0)
                    + last["drops"]["output"].as_u64().unwrap_or(0)
                    + last["drops"]["flow_map_full"].as_u64().unwrap_or(0);
            }
        }
        runs.push(pair);
        if have_nethogs {
            // the peer anchor: nethogs watching the client's namespace
            eprintln!("round {}/{}: nethogs", round + 1, args.rounds);
            let mut hog = std::process::Command::new("ip")
                .args(["netns", "exec", &ns.a, "nethogs", "-t", "-d", "1"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start nethogs");
            // it opens its captures and reads /proc first
            std::thread::sleep(std::time::Duration::from_secs(1));
            let s = measure_pid(&ns, Some(hog.id()), &unpaced, "rate", "conns");
            let _ = hog.kill();
            let _ = hog.wait();
            hogs.push((s, s.value / runs[round][0][1].value.max(f64::MIN_POSITIVE)));
        }
        let nw = Netwho::start(&format!("benchscope{round}"), &["-f", SCOPE_NOTHING]);
        eprintln!(
            "round {}/{}: netwho scoped to nothing",
            round + 1,
            args.rounds
        );
        sysctl_bpf_stats(true);
        scoped.push(measure(&ns, Some(&nw), &paced, "rate", "conns"));
        sysctl_bpf_stats(false);
        let (status, records) = nw.stop();
        assert!(status.success());
        let last: &Value = records.last().expect("records");
        assert!(
            last["kernel"]["scoped_out"].as_u64().unwrap_or(0) > 0,
            "the scope excluded nothing: {last}"
        );
        // the audit log's tamper evidence: a hash per record, in the writer
        let nw = Netwho::start(&format!("benchchain{round}"), &["--chain"]);
        eprintln!("round {}/{}: netwho log --chain", round + 1, args.rounds);
        chained.push(measure(&ns, Some(&nw), &paced, "rate", "conns"));
        let (status, _) = nw.stop();
        assert!(status.success());
        // the log plus a recording of the same flows (log --record)
        let dir = TempDir::new(&format!("benchrecfile{round}"));
        let rec = dir.0.join("bench.nwr");
        let nw = Netwho::start(
            &format!("benchrec{round}"),
            &["--record", rec.to_str().expect("path")],
        );
        eprintln!("round {}/{}: netwho log --record", round + 1, args.rounds);
        let sample = measure(&ns, Some(&nw), &paced, "rate", "conns");
        let (status, records) = nw.stop();
        assert!(status.success());
        let flows = records
            .last()
            .and_then(|l| l["flows_opened"].as_u64())
            .unwrap_or(0)
            .max(1);
        let size = std::fs::metadata(&rec).map_or(0, |m| m.len());
        recorded.push((sample, size as f64 / flows as f64));
        // the recorder alone, keeping its summary (FILE.sum) and not
        for (i, keep) in [true, false].into_iter().enumerate() {
            let file = dir.0.join(format!("alone{i}.nwr"));
            let mut cmd = std::process::Command::new(netwho_bin());
            cmd.args(["-v", "record", "-q", "-w"]).arg(&file);
            if !keep {
                cmd.arg("--no-summary");
            }
            let mut rec =
                Running::start(&mut cmd, &dir.0.join(format!("alone{i}.err")), "attached:");
            eprintln!(
                "round {}/{}: netwho record{}",
                round + 1,
                args.rounds,
                if keep { "" } else { " --no-summary" }
            );
            let sample = measure_pid(&ns, Some(rec.0.id()), &paced, "rate", "conns");
            assert!(sigint(&mut rec).success());
            let sum = dir.0.join(format!("alone{i}.nwr.sum"));
            assert_eq!(sum.exists(), keep, "{}", sum.display());
            summaries[i].push(sample);
        }
        // the reduced sensor (kernels that refuse the programs): its cost,
        // and how many of the paced connections' sockets a look caught
        let nw = Netwho::start(&format!("benchdiag{round}"), &["--sensor", "sock-diag"]);
        eprintln!(
            "round {}/{}: netwho --sensor sock-diag",
            round + 1,
            args.rounds
        );
        let sample = measure(&ns, Some(&nw), &paced, "rate", "conns");
        let (status, records) = nw.stop();
        assert!(status.success());
        let last: &Value = records.last().expect("records");
        let opened = last["flows_opened"].as_f64().unwrap_or(0.0);
        let missed = last["drops"]["missed_sockets"].as_f64().unwrap_or(0.0);
        reduced.push((sample, opened / (opened + missed).max(1.0)));
        // packet capture: every packet's first 128 bytes into a pcapng file
        // (one capture for the paced connections, one for the bulk stream)
        let dir = TempDir::new(&format!("benchpcap{round}"));
        let capture = |what: &str, work: &str, key: &str, units: &str, stats: bool| {
            let file = dir.0.join(format!("{what}.pcapng"));
            let mut cap = Running::start(
                std::process::Command::new(netwho_bin())
                    .args(["-v", "pcap", "-s", "128", "-w"])
                    .arg(&file),
                &dir.0.join(format!("{what}.err")),
                "attached:",
            );
            sysctl_bpf_stats(stats);
            let s = measure_pid(&ns, Some(cap.0.id()), work, key, units);
            sysctl_bpf_stats(false);
            assert!(sigint(&mut cap).success(), "netwho pcap failed");
            (s, std::fs::metadata(&file).map_or(0, |m| m.len()))
        };
        eprintln!("round {}/{}: netwho pcap -s 128", round + 1, args.rounds);
        let (paced_s, size) = capture("paced", &paced, "rate", "conns", true);
        let (bulk_s, _) = capture("bulk", &bulk, "bytes_per_s", "bytes", false);
        let bulk_ratio = bulk_s.value / runs[round][0][2].value.max(f64::MIN_POSITIVE);
        captured.push((paced_s, bulk_ratio, size as f64 / paced_s.units.max(1.0)));
        // names: the same lookups with names on and off
        let mut pair = [(Sample::default(), 0.0); 2];
        for (i, extra) in [&[][..], &["--names", "off"][..]].into_iter().enumerate() {
            let nw = Netwho::start(&format!("benchnames{round}{i}"), extra);
            eprintln!(
                "round {}/{}: 1,000 lookups/s, names {}",
                round + 1,
                args.rounds,
                if i == 0 { "on" } else { "off" }
            );
            sysctl_bpf_stats(true);
            let sample = measure(&ns, Some(&nw), &lookups, "rate", "lookups");
            sysctl_bpf_stats(false);
            let (status, records) = nw.stop();
            assert!(status.success());
            let conns: Vec<&Value> = records
                .iter()
                .filter(|r| {
                    r["event"] == "close" && r["rport"] == echo_port && r["direction"] == "outbound"
                })
                .collect();
            let with_name = conns.iter().filter(|r| r.get("rname").is_some()).count();
            pair[i] = (sample, with_name as f64 / conns.len().max(1) as f64);
        }
        named.push(pair);
    }
    drop(dns);
    drop(echo);
    drop(sink);
    sysctl_bpf_stats(stats_were_on);

    let med = |w: usize, k: usize, f: fn(&Sample) -> f64| {
        median(runs.iter().map(|r| f(&r[w][k])).collect())
    };
    let mut results = serde_json::Map::new();
    println!(
        "netwho benchmark: {} rounds of {} s per measurement, medians; {} events or records lost",
        args.rounds, args.secs, drops
    );
    println!(
        "{:<34} {:>16} {:>16} {:>8}",
        "workload", "without netwho", "with netwho", "ratio"
    );
    for (k, name) in names.iter().enumerate() {
        let base = med(0, k, |x| x.value);
        let with = med(1, k, |x| x.value);
        let cpu = med(1, k, |x| x.netwho_cpu);
        let per_unit = median(
            runs.iter()
                .map(|r| r[1][k].bpf_ns / r[1][k].units.max(1.0))
                .collect(),
        );
        let (label, unit, scale) = match *name {
            "paced" => (
                format!("paced {} conn/s, 100 B each way", args.rate),
                "conn/s",
                1.0,
            ),
            "unpaced" => (
                "unpaced connections, 100 B each way".to_string(),
                "conn/s",
                1.0,
            ),
            _ => ("bulk TCP stream over veth".to_string(), "MB/s", 1e-6),
        };
        let ratio = if base > 0.0 { with / base } else { 0.0 };
        println!(
            "{label:<34} {:>9.1} {unit:<6} {:>9.1} {unit:<6} {ratio:>8.3}",
            base * scale,
            with * scale
        );
        let ratios: Vec<f64> = runs
            .iter()
            .map(|r| r[1][k].value / r[0][k].value.max(f64::MIN_POSITIVE))
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut detail = format!(
            "{:<34} netwho CPU {cpu:.2} % of a core; ratio per round {lo:.3}..{hi:.3}",
            ""
        );
        if *name == "paced" {
            detail.push_str(&format!(
                "; kernel programs {:.2} µs per connection",
                per_unit / 1000.0
            ));
        }
        println!("{detail}");
        results.insert(
            name.to_string(),
            json!({"without": base, "with": with, "ratio": ratio, "unit": unit,
                   "ratio_per_round": ratios, "netwho_cpu_pct_of_core": cpu,
                   "kernel_ns_per_unit": if *name == "paced" { per_unit } else { 0.0 }}),
        );
    }
    if !hogs.is_empty() {
        // (as the table's ratios: medians over the rounds, against the
        // same rounds without a monitor)
        let base = med(0, 1, |x| x.value).max(f64::MIN_POSITIVE);
        let h_rate = median(hogs.iter().map(|x| x.0.value).collect());
        let h_ratio = h_rate / base;
        let n_ratio = med(1, 1, |x| x.value) / base;
        let h_cpu = median(hogs.iter().map(|x| x.0.netwho_cpu).collect());
        let lo = hogs.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        let hi = hogs.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
        println!(
            "unpaced, nethogs -t (peer anchor)   {h_rate:>9.1} conn/s; ratio {h_ratio:.3} \
             (rounds {lo:.3}..{hi:.3}; netwho {n_ratio:.3}); nethogs CPU {h_cpu:.2} % of a core \
             (netwho {:.2} %)",
            med(1, 1, |x| x.netwho_cpu)
        );
        results.insert(
            "unpaced_nethogs".into(),
            json!({"rate": h_rate, "ratio_vs_none": h_ratio, "cpu_pct_of_core": h_cpu,
                   "ratio_per_round": hogs.iter().map(|x| x.1).collect::<Vec<f64>>(),
                   "netwho_ratio_vs_none": n_ratio}),
        );
    }
    let s_cpu = median(scoped.iter().map(|x| x.netwho_cpu).collect());
    let s_rate = median(scoped.iter().map(|x| x.value).collect());
    let s_per = median(scoped.iter().map(|x| x.bpf_ns / x.units.max(1.0)).collect());
    let cpu = med(1, 0, |x| x.netwho_cpu);
    let per = median(
        runs.iter()
            .map(|r| r[1][0].bpf_ns / r[1][0].units.max(1.0))
            .collect(),
    );
    println!(
        "paced, kernel scope matching none   {s_rate:>9.1} conn/s; netwho CPU {s_cpu:.2} % of a core \
         (unscoped {cpu:.2} %); kernel programs {:.2} µs per connection (unscoped {:.2})",
        s_per / 1000.0,
        per / 1000.0
    );
    results.insert(
        "paced_scoped_to_nothing".into(),
        json!({"filter": SCOPE_NOTHING, "rate": s_rate, "netwho_cpu_pct_of_core": s_cpu,
               "unscoped_netwho_cpu_pct_of_core": cpu, "kernel_ns_per_unit": s_per,
               "unscoped_kernel_ns_per_unit": per}),
    );
    let c_cpu = median(chained.iter().map(|x| x.netwho_cpu).collect());
    let c_rate = median(chained.iter().map(|x| x.value).collect());
    println!(
        "paced, chained log (--chain)        {c_rate:>9.1} conn/s; netwho CPU {c_cpu:.2} % of a core \
         (unchained {cpu:.2} %)"
    );
    results.insert(
        "paced_chained_log".into(),
        json!({"rate": c_rate, "netwho_cpu_pct_of_core": c_cpu,
               "unchained_netwho_cpu_pct_of_core": cpu}),
    );
    let r_cpu = median(recorded.iter().map(|x| x.0.netwho_cpu).collect());
    let r_rate = median(recorded.iter().map(|x| x.0.value).collect());
    let r_bpf = median(recorded.iter().map(|x| x.1).collect());
    println!(
        "paced, log and recording (--record) {r_rate:>9.1} conn/s; netwho CPU {r_cpu:.2} % of a core \
         (log only {cpu:.2} %); recording {r_bpf:.1} bytes per flow"
    );
    results.insert(
        "paced_recorded".into(),
        json!({"rate": r_rate, "netwho_cpu_pct_of_core": r_cpu,
               "log_only_netwho_cpu_pct_of_core": cpu, "recording_bytes_per_flow": r_bpf}),
    );
    let [with_sum, without_sum] =
        summaries.map(|v| median(v.iter().map(|x| x.netwho_cpu).collect()));
    println!(
        "paced, record -w (summary kept)     netwho CPU {with_sum:.2} % of a core \
         (--no-summary {without_sum:.2} %)"
    );
    results.insert(
        "paced_record_summary".into(),
        json!({"netwho_cpu_pct_of_core": with_sum,
               "no_summary_netwho_cpu_pct_of_core": without_sum}),
    );
    let d_cpu = median(reduced.iter().map(|x| x.0.netwho_cpu).collect());
    let d_rate = median(reduced.iter().map(|x| x.0.value).collect());
    let d_seen = median(reduced.iter().map(|x| x.1).collect());
    println!(
        "paced, reduced sensor (sock-diag)   {d_rate:>9.1} conn/s; netwho CPU {d_cpu:.2} % of a core \
         (ebpf {cpu:.2} %); {:.1} % of the sockets attributed, the rest counted missed",
        d_seen * 100.0
    );
    results.insert(
        "paced_reduced_sensor".into(),
        json!({"rate": d_rate, "netwho_cpu_pct_of_core": d_cpu,
               "ebpf_netwho_cpu_pct_of_core": cpu, "sockets_attributed_fraction": d_seen}),
    );
    let p_cpu = median(captured.iter().map(|x| x.0.netwho_cpu).collect());
    let p_rate = median(captured.iter().map(|x| x.0.value).collect());
    let p_per = median(
        captured
            .iter()
            .map(|x| x.0.bpf_ns / x.0.units.max(1.0))
            .collect(),
    );
    let p_bulk = median(captured.iter().map(|x| x.1).collect());
    let p_file = median(captured.iter().map(|x| x.2).collect());
    println!(
        "paced, netwho pcap -s 128           {p_rate:>9.1} conn/s; netwho CPU {p_cpu:.2} % of a core \
         (log {cpu:.2} %); kernel programs {:.2} µs per connection (log {:.2}); bulk ratio {p_bulk:.3}; \
         {p_file:.0} file bytes per connection",
        p_per / 1000.0,
        per / 1000.0
    );
    results.insert(
        "pcap".into(),
        json!({"snaplen": 128, "paced_rate": p_rate, "netwho_cpu_pct_of_core": p_cpu,
               "kernel_ns_per_unit": p_per, "bulk_ratio_vs_none": p_bulk, "file_bytes_per_conn": p_file,
               "log_netwho_cpu_pct_of_core": cpu, "log_kernel_ns_per_unit": per}),
    );
    let n_med =
        |i: usize, f: fn(&(Sample, f64)) -> f64| median(named.iter().map(|p| f(&p[i])).collect());
    let (on_cpu, off_cpu) = (n_med(0, |x| x.0.netwho_cpu), n_med(1, |x| x.0.netwho_cpu));
    let per_lookup = |x: &(Sample, f64)| x.0.bpf_ns / x.0.units.max(1.0);
    let (on_k, off_k) = (n_med(0, per_lookup), n_med(1, per_lookup));
    let (on_rate, named_share) = (n_med(0, |x| x.0.value), n_med(0, |x| x.1));
    let off_share = n_med(1, |x| x.1);
    println!(
        "1,000 DNS lookups/s + a connection  {on_rate:>9.1} lookups/s; names on: netwho CPU {on_cpu:.2} % \
         of a core, kernel {:.2} µs per lookup; --names off: {off_cpu:.2} %, {:.2} µs; \
         connections named {:.1} % (off: {:.1} %)",
        on_k / 1000.0,
        off_k / 1000.0,
        named_share * 100.0,
        off_share * 100.0
    );
    results.insert(
        "names".into(),
        json!({"lookups_per_s": on_rate, "netwho_cpu_pct_of_core": on_cpu,
               "names_off_netwho_cpu_pct_of_core": off_cpu, "kernel_ns_per_lookup": on_k,
               "names_off_kernel_ns_per_lookup": off_k, "connections_named_fraction": named_share}),
    );
    results.insert("lost".into(), json!(drops));
    results.insert("secs".into(), json!(args.secs));
    results.insert("rounds".into(), json!(args.rounds));
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(
        &args.out,
        serde_json::to_vec_pretty(&Value::Object(results)).unwrap(),
    )
    .expect("write results");
    eprintln!("results written to {}", args.out.display());
}
