//! The history database at scale (not a test): ingest N flows spread over
//! 30 days, then time the reports a user asks of months of history.
//!
//!   history_bench DIR [FLOWS]      (FLOWS: 10,000,000 by default)
//!
//! The flows are shaped like a busy server's: 600 processes (60 programs,
//! 40 users, 30 units), each talking to its own 12 peers out of 8,000
//! remote addresses; flows open and close within their minute. Ratios are
//! against scanning the raw flow table once (what a store without rollups
//! must do for any month-long question), measured in the same run.
#![expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
#![expect(clippy::expect_used, reason = "a benchmark")]

use netwho_query::Filter;
use netwho_report::history::report;
use netwho_report::{ReportConfig, ReportKind};
use netwho_store::history::{Counters, History, Obs, PeerDim, ProcDim};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

const S: i64 = 1_000_000_000;
/// 2026-10-24T00:00:00Z: 30 days before 2026-11-23.
const START: i64 = 1_792_800_000;
const DAYS: i64 = 30;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: history_bench DIR [FLOWS]"));
    let n: u64 = args
        .next()
        .map_or(10_000_000, |s| s.parse().expect("FLOWS is a number"));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("history.db");
    // NETWHO_BENCH_REUSE=1: time the reports on the database of a former run
    let reuse = std::env::var_os("NETWHO_BENCH_REUSE").is_some() && path.exists();
    if !reuse {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    let mut db = History::create(&path).expect("create");

    let procs: Vec<Arc<ProcDim>> = (0..600u32)
        .map(|i| {
            let prog = i % 60;
            Arc::new(ProcDim {
                boot: "bench".into(),
                tgid: 10_000 + i,
                start_ticks: u64::from(i) * 100,
                start_ns: START * S,
                comm: format!("prog{prog}"),
                exe: format!("/usr/bin/prog{prog}"),
                cmdline: vec![format!("prog{prog}"), format!("--worker={i}")],
                uid: 2000 + i % 40,
                user: format!("user{}", i % 40),
                unit: format!("svc{}.service", i % 30),
                ..ProcDim::default()
            })
        })
        .collect();
    let peer = |p: u32, k: u32| {
        let r = (p * 13 + k * 677) % 8000;
        PeerDim {
            proto: netwho_model::Proto::Tcp,
            direction: "outbound",
            laddr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            raddr: IpAddr::V4(Ipv4Addr::new(10, 1, (r / 250) as u8, (r % 250) as u8 + 1)),
            port: [443, 80, 5432, 6379][(k % 4) as usize],
            netns: 1,
            // the names its processes resolved (one per remote)
            name: format!("svc{r}.example"),
            name_from: 1,
        }
    };

    // ingest: batches of one commit interval's flows, in time order
    let batch = 10_000u64;
    let span_ns = DAYS * 86_400 * S;
    let t0 = Instant::now();
    let mut done = 0u64;
    let mut last_note = Instant::now();
    if reuse {
        done = n;
    }
    while done < n {
        let m = batch.min(n - done);
        let obs: Vec<Obs> = (done..done + m)
            .map(|i| {
                let at = START * S + (i128::from(i) * i128::from(span_ns) / i128::from(n)) as i64;
                let p = (i.wrapping_mul(2_654_435_761) % 600) as u32;
                let k = ((i / 7) % 12) as u32;
                Obs {
                    fid: i + 1,
                    proc: Arc::clone(&procs[p as usize]),
                    peer: peer(p, k),
                    lport: 30_000 + (i % 30_000) as u16,
                    rport: 443,
                    opened_ns: at,
                    at_ns: at,
                    totals: Counters {
                        payload: netwho_model::Payload {
                            bytes_sent: 200 + i % 5000,
                            bytes_recv: 1000 + i % 50_000,
                        },
                        ..Counters::default()
                    },
                    closed: Some((at, "socket_closed")),
                    attribution: "ebpf",
                }
            })
            .collect();
        db.ingest(&obs).expect("ingest");
        done += m;
        if last_note.elapsed().as_secs() >= 10 {
            last_note = Instant::now();
            eprintln!(
                "history_bench: {done} flows ingested ({:.0} flows/s)",
                done as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    let ingest_s = t0.elapsed().as_secs_f64();
    let rate = n as f64 / ingest_s;
    drop(db);
    let db = History::open_read(&path).expect("reader");
    let size = db.disk_bytes();

    // the baseline: one pass over the raw flows
    let t = Instant::now();
    let mut raw_sum = 0u64;
    db.flows_in(START, START + DAYS * 86_400, &mut |f| {
        raw_sum += f.window.payload.bytes_sent;
        Ok(())
    })
    .expect("raw scan");
    let raw_s = t.elapsed().as_secs_f64();

    println!(
        "history: {n} flows over {DAYS} days, {:.1} GiB on disk",
        size as f64 / (1u64 << 30) as f64
    );
    if !reuse {
        println!(
            "ingest: {rate:.0} flows/s ({:.1}x the 5,000 conn/s the daemon must keep up with)",
            rate / 5000.0
        );
    }
    println!("baseline: one scan of the raw flows (top-conns over the month): {raw_s:.3} s");
    println!(
        "{:<44} {:>9} {:>12} {:>10}",
        "report over the month", "time", "rows read", "vs scan"
    );
    let month = || ReportConfig {
        since: Some(i128::from(START) * 1_000_000_000),
        until: Some(i128::from(START + DAYS * 86_400) * 1_000_000_000),
        limit: Some(10),
        ..ReportConfig::default()
    };
    let cases: Vec<(&str, ReportKind, ReportConfig)> = vec![
        ("top-procs", ReportKind::TopProcs, month()),
        ("by-user", ReportKind::ByUser, month()),
        ("by-unit", ReportKind::ByUnit, month()),
        ("top-remotes", ReportKind::TopRemotes, month()),
        ("top-ports", ReportKind::TopPorts, month()),
        (
            "by-user, one user (filter)",
            ReportKind::ByUser,
            ReportConfig {
                filter: Some(Filter::parse("user.name = user7").expect("filter")),
                ..month()
            },
        ),
        (
            "by-unit per day (--interval 1d)",
            ReportKind::ByUnit,
            ReportConfig {
                interval_ns: Some(86_400 * 1_000_000_000),
                ..month()
            },
        ),
        (
            "top-procs, 12 days from 13:37 (edges)",
            ReportKind::TopProcs,
            ReportConfig {
                since: Some(i128::from(START + 3 * 86_400 + 49_020) * 1_000_000_000),
                until: Some(i128::from(START + 15 * 86_400 + 49_020) * 1_000_000_000),
                limit: Some(10),
                ..ReportConfig::default()
            },
        ),
    ];
    for (name, kind, cfg) in cases {
        let t = Instant::now();
        let r = report(&db, kind, cfg, HashSet::new()).expect("report");
        let s = t.elapsed().as_secs_f64();
        println!(
            "{name:<44} {:>7.3} s {:>12} {:>9.3}x",
            s,
            r.rows_read,
            s / raw_s
        );
    }
}
