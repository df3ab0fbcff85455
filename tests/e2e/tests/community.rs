//! Community ID v1 on every flow record, checked against an independent
//! implementation: corelight's `communityid` Python package (the spec's
//! reference), given each record's own protocol, addresses and ports.

use netwho_e2e::*;
use serde_json::{Value, json};
use std::process::Command;

#[test]
fn every_record_carries_the_id_the_reference_computes() {
    if !require_root() {
        return;
    }
    let Some(py) = communityid_python() else {
        return;
    };
    let _s = serial();
    let ns = Netns::pair("cid", 44);
    let nw = Netwho::start("cid", &["--community-id-seed", "7"]);
    // TCP over IPv6 and IPv4 (the second to a dual-stack listener), UDP
    let (tcp_server, port) = server(
        &ns.b,
        "tcp-server --bind :: --conns 2 --expect 300 --reply 400",
    );
    let mut truth = Vec::new();
    for to in [ns.b6.to_string(), ns.b4.to_string()] {
        truth.extend(run_gen(
            &ns.a,
            &format!("tcp-client --to {to} --port {port} --send 300 --expect 400"),
        ));
    }
    let (udp_server, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 23000 --count 5", ns.b4),
    );
    truth.extend(run_gen(
        &ns.a,
        &format!(
            "udp-oneshot --to {} --port-base 23000 --count 5 --size 100 --src {}",
            ns.b4, ns.a4
        ),
    ));
    truth.extend(udp_server.finish());
    truth.extend(tcp_server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "ebpf");
    let ours = in_netns(&records, &[Netns::inode(&ns.a), Netns::inode(&ns.b)]);
    // 2 TCP connections and 5 datagrams, both ends of each, open and close
    assert_eq!(ours.len(), 4 * 7, "{ours:#?}");
    let tuples: Vec<Value> = ours
        .iter()
        .map(|r| {
            json!({
                "proto": r["proto"], "src": r["laddr"], "dst": r["raddr"],
                "sport": r["lport"], "dport": r["rport"],
            })
        })
        .collect();
    let want = communityid_reference(&py, 7, &tuples);
    assert_eq!(want.len(), ours.len());
    for (r, id) in ours.iter().zip(&want) {
        assert_eq!(r["community_id"], id.as_str(), "{r}");
    }
    // both ends of a connection carry one id: 7 flows, 7 ids
    let distinct: std::collections::HashSet<&String> = want.iter().collect();
    assert_eq!(distinct.len(), 7, "{want:?}");
    // the seed is in them: seed 0 gives other ids
    let unseeded = communityid_reference(&py, 0, &tuples);
    assert!(unseeded.iter().zip(&want).all(|(a, b)| a != b));
}

/// A ping socket's flow (`SOCK_DGRAM`, `IPPROTO_ICMP`/`ICMPV6`: its echo
/// requests and their replies) has the id the reference gives an echo
/// request from its address to the pinged one.
#[test]
fn a_ping_sockets_flow_is_named_as_its_echo_requests() {
    if !require_root() {
        return;
    }
    let Some(py) = communityid_python() else {
        return;
    };
    let _s = serial();
    let ns = Netns::pair("cidp", 45);
    // (ping sockets are for the groups in this namespace's range: root's)
    run(Command::new("ip")
        .args(["netns", "exec", &ns.a, "sysctl", "-q", "-w"])
        .arg("net.ipv4.ping_group_range=0 0"));
    let nw = Netwho::start("cidp", &[]);
    const PING: &str = r#"
import socket, struct, sys
for family, proto, kind, dst in ((socket.AF_INET, socket.IPPROTO_ICMP, 8, sys.argv[1]),
                                 (socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, sys.argv[2])):
    s = socket.socket(family, socket.SOCK_DGRAM, proto)
    s.settimeout(5)
    for seq in range(3):
        # (the kernel sets the identifier and the checksum)
        s.sendto(struct.pack("!BBHHH", kind, 0, 0, 0, seq) + b"netwho", (dst, 0))
        s.recv(100)
    s.close()
"#;
    run(Command::new("ip")
        .args(["netns", "exec", &ns.a, "python3", "-c", PING])
        .arg(ns.b4.to_string())
        .arg(ns.b6.to_string()));
    let mut nw = nw;
    let a = Netns::inode(&ns.a);
    let pings = |recs: &[Value]| -> Vec<Value> {
        in_netns(recs, &[a])
            .into_iter()
            .filter(|r| {
                r["event"] == "close" && r["proto"].as_str().is_some_and(|p| p.starts_with("icmp"))
            })
            .collect()
    };
    nw.wait_until(
        "the ping sockets' closes",
        std::time::Duration::from_secs(20),
        |r| pings(r).len() >= 2,
    );
    let (status, records) = nw.stop();
    assert!(status.success());
    let closes = pings(&records);
    assert_eq!(closes.len(), 2, "{closes:#?}");
    let tuples: Vec<Value> = closes
        .iter()
        .map(|r| {
            let echo = if r["proto"] == "icmp" { 8 } else { 128 };
            json!({"proto": r["proto"], "src": r["laddr"], "dst": r["raddr"], "sport": echo, "dport": 0})
        })
        .collect();
    let want = communityid_reference(&py, 0, &tuples);
    for (r, id) in closes.iter().zip(&want) {
        assert_eq!(r["community_id"], id.as_str(), "{r}");
        assert_eq!(r["bytes_sent"], 3 * 14, "{r}");
    }
}
