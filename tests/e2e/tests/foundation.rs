//! The foundation's ground-truth scenarios: every flow attributed to the
//! right process (pid, comm, uid:gid) with exact payload in both directions.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::time::Duration;

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// Wait until netwho has closed every truth flow of `pids`, stop it, check
/// it exited 0 with a final status, and return the records of `netns`.
fn stop_when_closed(mut nw: Netwho, truth: &[Value], ns: &[&str]) -> Vec<Value> {
    let p = pids(truth);
    let want = truth.len();
    nw.wait_until("the close records", Duration::from_secs(20), |recs| {
        closes_for(recs, &p) >= want
    });
    let (status, records) = nw.stop();
    assert!(status.success(), "netwho exited with {status}");
    let last = records.last().unwrap();
    assert_eq!(last["event"], "status");
    assert_eq!(last["final"], true);
    assert_eq!(last["drops"]["ringbuf"], 0, "kernel events lost: {last}");
    let inodes: Vec<u64> = ns.iter().map(|n| Netns::inode(n)).collect();
    in_netns(&records, &inodes)
}

#[test]
fn bulk_tcp_both_ways_is_exact() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("bulk", 1);
    let nw = Netwho::start("bulk", &[]);
    const MB: u64 = 1 << 20;
    let mut server = Gen::spawn(
        Some(&ns.b),
        &[
            s("tcp-server"),
            s("--bind"),
            a(ns.b4),
            s("--expect"),
            s(40 * MB),
            s("--reply"),
            s(24 * MB),
        ],
    );
    let port = server.wait_for("ready")["port"].to_string();
    let client = Gen::spawn(
        Some(&ns.a),
        &[
            s("tcp-client"),
            s("--to"),
            a(ns.b4),
            s("--port"),
            port,
            s("--send"),
            s(40 * MB),
            s("--expect"),
            s(24 * MB),
        ],
    );
    let mut truth = client.finish();
    truth.extend(server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "ebpf");
    // wire bytes: at least the payload plus a header per packet
    let client_close = records
        .iter()
        .find(|r| r["event"] == "close" && r["direction"] == "outbound")
        .unwrap();
    let wire = client_close["wire_bytes_sent"].as_u64().unwrap();
    let pkts = client_close["packets_sent"].as_u64().unwrap();
    assert!(
        wire >= 40 * MB + 40 * pkts,
        "wire {wire} for 40 MiB in {pkts} packets"
    );
    assert!(
        wire < 40 * MB + 40 * MB / 10,
        "wire {wire} is implausibly large"
    );
}

#[test]
fn a_burst_of_500_short_connections_is_all_there() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("burst", 2);
    let nw = Netwho::start("burst", &[]);
    let mut server = Gen::spawn(
        Some(&ns.b),
        &[
            s("tcp-server"),
            s("--bind"),
            a(ns.b4),
            s("--conns"),
            s(500),
            s("--expect"),
            s(1000),
            s("--reply"),
            s(1000),
        ],
    );
    let port = server.wait_for("ready")["port"].to_string();
    let client = Gen::spawn(
        Some(&ns.a),
        &[
            s("tcp-client"),
            s("--to"),
            a(ns.b4),
            s("--port"),
            port,
            s("--conns"),
            s(500),
            s("--send"),
            s(1000),
            s("--expect"),
            s(1000),
        ],
    );
    let mut truth = client.finish();
    truth.extend(server.finish());
    assert_eq!(truth.len(), 1000);
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "ebpf");
    let outbound = records
        .iter()
        .filter(|r| r["event"] == "open" && r["direction"] == "outbound")
        .count();
    let inbound = records
        .iter()
        .filter(|r| r["event"] == "open" && r["direction"] == "inbound")
        .count();
    assert_eq!((outbound, inbound), (500, 500));
}

#[test]
fn two_hundred_one_shot_udp_datagrams_from_fresh_sockets() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("udp", 3);
    let nw = Netwho::start("udp", &[]);
    let mut server = Gen::spawn(
        Some(&ns.b),
        &[
            s("udp-server"),
            s("--bind"),
            a(ns.b4),
            s("--port-base"),
            s(20000),
            s("--count"),
            s(200),
        ],
    );
    server.wait_for("ready");
    let client = Gen::spawn(
        Some(&ns.a),
        &[
            s("udp-oneshot"),
            s("--to"),
            a(ns.b4),
            s("--port-base"),
            s(20000),
            s("--count"),
            s(200),
            s("--size"),
            s(512),
            s("--src"),
            a(ns.a4),
        ],
    );
    let mut truth = client.finish();
    truth.extend(server.finish());
    assert_eq!(truth.len(), 400);
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "ebpf");
}

#[test]
fn four_users_at_once_are_told_apart() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let users: Vec<TestUser> = (1..=4)
        .map(|i| TestUser::create(&format!("nwtuser{i}")))
        .collect();
    let ns = Netns::pair("users", 4);
    let nw = Netwho::start("users", &[]);
    let mut server = Gen::spawn(
        Some(&ns.b),
        &[
            s("tcp-server"),
            s("--bind"),
            a(ns.b4),
            s("--conns"),
            s(4),
            s("--expect"),
            s(300_000),
            s("--reply"),
            s(200_000),
        ],
    );
    let port = server.wait_for("ready")["port"].to_string();
    let clients: Vec<Gen> = users
        .iter()
        .map(|u| {
            Gen::spawn(
                Some(&ns.a),
                &[
                    s("tcp-client"),
                    s("--to"),
                    a(ns.b4),
                    s("--port"),
                    port.clone(),
                    s("--send"),
                    s(300_000),
                    s("--expect"),
                    s(200_000),
                    s("--as-user"),
                    u.name.clone(),
                ],
            )
        })
        .collect();
    let mut truth: Vec<Value> = clients.into_iter().flat_map(Gen::finish).collect();
    let uids: Vec<u64> = truth.iter().map(|t| t["uid"].as_u64().unwrap()).collect();
    for u in &users {
        assert!(
            uids.contains(&u64::from(u.uid)),
            "user {} did not run",
            u.name
        );
    }
    truth.extend(server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "ebpf");
    for u in &users {
        let r = records
            .iter()
            .find(|r| r["event"] == "close" && r["uid"] == u.uid)
            .unwrap();
        assert_eq!(r["user"], u.name.as_str());
        assert_eq!(r["group"], u.name.as_str());
    }
}

#[test]
fn ipv6_tcp_udp_and_a_mapped_ipv4_peer() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("v6", 5);
    let nw = Netwho::start("v6", &[]);
    // a dual-stack listener on :: takes one IPv6 and one IPv4 client
    let mut server = Gen::spawn(
        Some(&ns.b),
        &[
            s("tcp-server"),
            s("--bind"),
            s("::"),
            s("--conns"),
            s(2),
            s("--expect"),
            s(5000),
            s("--reply"),
            s(7000),
        ],
    );
    let port = server.wait_for("ready")["port"].to_string();
    let mut truth = Vec::new();
    for to in [a(ns.b6), a(ns.b4)] {
        let c = Gen::spawn(
            Some(&ns.a),
            &[
                s("tcp-client"),
                s("--to"),
                to,
                s("--port"),
                port.clone(),
                s("--send"),
                s(5000),
                s("--expect"),
                s(7000),
            ],
        );
        truth.extend(c.finish());
    }
    let mut udp_server = Gen::spawn(
        Some(&ns.b),
        &[
            s("udp-server"),
            s("--bind"),
            a(ns.b6),
            s("--port-base"),
            s(21000),
            s("--count"),
            s(20),
        ],
    );
    udp_server.wait_for("ready");
    let udp = Gen::spawn(
        Some(&ns.a),
        &[
            s("udp-oneshot"),
            s("--to"),
            a(ns.b6),
            s("--port-base"),
            s(21000),
            s("--count"),
            s(20),
            s("--size"),
            s(700),
            s("--src"),
            a(ns.a6),
        ],
    );
    truth.extend(udp.finish());
    truth.extend(udp_server.finish());
    truth.extend(server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "ebpf");
    // the server's IPv4 connection arrived on an IPv6 socket: reported as IPv4
    let mapped = records
        .iter()
        .find(|r| r["event"] == "close" && r["direction"] == "inbound" && r["raddr"] == a(ns.a4))
        .expect("the IPv4 connection to the dual-stack listener");
    assert_eq!(mapped["family"], "ipv4");
    assert_eq!(mapped["laddr"], a(ns.b4));
}

#[test]
fn a_forked_child_gets_its_own_bytes() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("fork", 6);
    let nw = Netwho::start("fork", &[]);
    let mut server = Gen::spawn(
        Some(&ns.b),
        &[
            s("tcp-server"),
            s("--bind"),
            a(ns.b4),
            s("--expect"),
            s(30_000 + 50_000),
            s("--reply"),
            s(20_000),
        ],
    );
    let port = server.wait_for("ready")["port"].to_string();
    let client = Gen::spawn(
        Some(&ns.a),
        &[
            s("handoff"),
            s("--to"),
            a(ns.b4),
            s("--port"),
            port,
            s("--parent-send"),
            s(30_000),
            s("--child-send"),
            s(50_000),
            s("--child-expect"),
            s(20_000),
            s("--child-name"),
            s("nwt-renamed"),
        ],
    );
    let mut truth = client.finish();
    assert_eq!(truth.len(), 2);
    let child = truth.iter().find(|t| t["role"] == "child").unwrap().clone();
    assert_eq!(child["comm"], "nwt-renamed");
    truth.extend(server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "ebpf");
    let parent = truth.iter().find(|t| t["role"] == "parent").unwrap();
    let child_rec = records
        .iter()
        .find(|r| r["event"] == "close" && r["pid"] == child["pid"])
        .unwrap();
    assert_eq!(
        child_rec["ppid"], parent["pid"],
        "the child's parent is known"
    );
}

#[test]
fn a_connection_older_than_netwho_is_counted_from_then_on() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("old", 7);
    const BEFORE: u64 = 11_111;
    let mut server = Gen::spawn(
        Some(&ns.b),
        &[
            s("tcp-server"),
            s("--bind"),
            a(ns.b4),
            s("--skip"),
            s(BEFORE),
            s("--expect"),
            s(22_222),
            s("--reply"),
            s(33_333),
        ],
    );
    let port = server.wait_for("ready")["port"].to_string();
    let mut client = Gen::spawn(
        Some(&ns.a),
        &[
            s("tcp-client"),
            s("--to"),
            a(ns.b4),
            s("--port"),
            port,
            s("--pause-after"),
            s(BEFORE),
            s("--send"),
            s(22_222),
            s("--expect"),
            s(33_333),
        ],
    );
    client.wait_for("paused");
    let nw = Netwho::start("old", &[]);
    {
        use std::io::Write;
        let stdin = client.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }
    let mut truth = client.finish();
    truth.extend(server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "sock_diag");
    let dirs: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "open")
        .map(|r| &r["direction"])
        .collect();
    assert!(
        dirs.contains(&&Value::from("outbound")) && dirs.contains(&&Value::from("inbound")),
        "directions {dirs:?} in {records:#?}"
    );
}

#[test]
fn loopback_gives_each_end_its_own_direction() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("lo", 8);
    let nw = Netwho::start("lo", &[]);
    let mut server = Gen::spawn(
        Some(&ns.a),
        &[
            s("tcp-server"),
            s("--bind"),
            s("127.0.0.1"),
            s("--conns"),
            s(3),
            s("--expect"),
            s(4096),
            s("--reply"),
            s(1234),
        ],
    );
    let port = server.wait_for("ready")["port"].to_string();
    let client = Gen::spawn(
        Some(&ns.a),
        &[
            s("tcp-client"),
            s("--to"),
            s("127.0.0.1"),
            s("--port"),
            port,
            s("--conns"),
            s(3),
            s("--send"),
            s(4096),
            s("--expect"),
            s(1234),
        ],
    );
    let mut truth = client.finish();
    truth.extend(server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a]);
    assert_matches(&truth, &records, "ebpf");
    let closes: Vec<&Value> = records.iter().filter(|r| r["event"] == "close").collect();
    for c in &closes {
        let (sent, recv) = (
            c["bytes_sent"].as_u64().unwrap(),
            c["bytes_recv"].as_u64().unwrap(),
        );
        match c["direction"].as_str().unwrap() {
            "outbound" => assert_eq!((sent, recv), (4096, 1234)),
            "inbound" => assert_eq!((sent, recv), (1234, 4096)),
            d => panic!("direction {d}"),
        }
    }
    assert_eq!(closes.len(), 6);
}
