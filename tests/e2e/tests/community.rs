//! Community ID v1 on every flow record, checked against an independent
//! implementation: corelight's `communityid` Python package (the spec's
//! reference), given each record's own protocol, addresses and ports.

use netwho_e2e::*;
use serde_json::{Value, json};

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
