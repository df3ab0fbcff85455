//! `netwho pcap` end to end: connections between two network namespaces,
//! two of them (IPv4 and IPv6) by a test user's client and one by root's,
//! and datagrams from short-lived processes of the test user, captured with
//! a filter on the test user: Wireshark's tshark reads the file, every
//! connection and datagram of the test user's processes is there with its
//! process on every packet, no other process's packet is, and the TCP
//! payload tshark reassembles is exactly what the generator sent each way.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};

/// tshark's fields of every packet: one line of tab-separated values.
fn fields(file: &std::path::Path, names: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "occurrence=f"]);
    for n in names {
        cmd.args(["-e", n]);
    }
    let out = cmd.stderr(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "tshark -r failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The bytes tshark's TCP reassembly gives each way of stream `n`:
/// (from the side that sent the first packet, from the other).
fn followed(file: &std::path::Path, n: u32) -> (usize, usize) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-q", "-z", &format!("follow,tcp,raw,{n}")])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut ways = (0, 0);
    // after "Node 1: ...", up to the closing line of '='
    let data = text
        .lines()
        .skip_while(|l| !l.starts_with("Node 1"))
        .skip(1)
        .take_while(|l| !l.starts_with("===="));
    for line in data {
        if let Some(hex) = line.strip_prefix('\t') {
            ways.1 += hex.trim().len() / 2;
        } else if !line.trim().is_empty() {
            ways.0 += line.trim().len() / 2;
        }
    }
    ways
}

#[test]
fn a_capture_of_one_users_flows_has_them_all_and_nothing_else() {
    if !require_root() {
        return;
    }
    if Command::new("tshark").arg("-v").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "tshark is missing");
        return;
    }
    let _s = serial();
    let ns = Netns::pair("pcap", 47);
    let user = TestUser::create("nwtpcap");
    let dir = TempDir::new("pcap");
    let file = dir.0.join("cap.pcapng");
    let err = dir.0.join("netwho.err");
    let mut nw = Running::start(
        Command::new(netwho_bin())
            .args(["-v", "pcap", "-w"])
            .arg(&file)
            .args(["-f", &format!("user.uid = {}", user.uid)]),
        &err,
        "attached:",
    );

    let mut truth: Vec<Value> = Vec::new();
    for (to, mine, roots) in [(ns.b4.to_string(), 1, 1), (ns.b6.to_string(), 1, 0)] {
        let (srv, port) = server(
            &ns.b,
            &format!(
                "tcp-server --bind {to} --conns {} --expect 3001 --reply 7013",
                mine + roots
            ),
        );
        truth.extend(run_gen(
            &ns.a,
            &format!(
                "tcp-client --to {to} --port {port} --conns {mine} --send 3001 --expect 7013 --as-user {}",
                user.name
            ),
        ));
        if roots > 0 {
            truth.extend(run_gen(
                &ns.a,
                &format!(
                    "tcp-client --to {to} --port {port} --conns {roots} --send 3001 --expect 7013"
                ),
            ));
        }
        truth.extend(srv.finish());
    }
    // three processes of the test user, a datagram each, gone at once
    let (udp_server, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 24700 --count 3", ns.b4),
    );
    let udp = run_gen(
        &ns.a,
        &format!(
            "spawn-udp --to {} --port-base 24700 --count 3 --size 333 --src {} --as-user {}",
            ns.b4, ns.a4, user.name
        ),
    );
    assert_eq!(udp.len(), 3);
    truth.extend(udp_server.finish());
    // (packets wait for their flow's first event, up to 2 s)
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(sigint(&mut nw).success(), "netwho pcap failed");
    let log = std::fs::read_to_string(&err).unwrap();
    assert!(log.contains("packets written"), "{log}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the capture is root's only");

    let mine: Vec<&Value> = truth
        .iter()
        .filter(|t| t["role"] == "client" && t["uid"] == user.uid)
        .collect();
    let others: BTreeSet<u64> = truth
        .iter()
        .filter(|t| !(t["role"] == "client" && t["uid"] == user.uid))
        .map(|t| t["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(mine.len(), 2);
    // every packet is the test user's (root's client and both servers
    // moved packets all along, on sockets the filter did not select)
    for r in fields(&file, &["frame.comment"]) {
        assert!(r[0].contains(&format!(" uid={} ", user.uid)), "{r:?}");
    }
    // each datagram, once, from its own process, with its payload
    let dgrams = fields(
        &file,
        &[
            "frame.comment",
            "udp.srcport",
            "udp.length",
            "frame.p2p_dir",
        ],
    );
    let dgrams: Vec<&Vec<String>> = dgrams.iter().filter(|r| !r[1].is_empty()).collect();
    assert_eq!(dgrams.len(), udp.len(), "{dgrams:?}");
    for t in &udp {
        let r = dgrams
            .iter()
            .find(|r| r[1].parse::<u64>().ok() == t["lport"].as_u64())
            .unwrap_or_else(|| panic!("no datagram of {t}: {dgrams:?}"));
        assert!(r[0].contains(&format!("pid={} ", t["pid"])), "{r:?}");
        assert_eq!(r[2], "341", "8 bytes of UDP header and 333 of payload");
        assert_eq!(r[3], "0", "sent");
    }
    let rows = fields(
        &file,
        &[
            "frame.comment",
            "tcp.stream",
            "tcp.srcport",
            "tcp.dstport",
            "frame.interface_name",
            "frame.p2p_dir",
        ],
    );
    let rows: Vec<&Vec<String>> = rows.iter().filter(|r| !r[1].is_empty()).collect();
    assert!(!rows.is_empty(), "no TCP packet");
    let mut streams: BTreeMap<u64, u32> = BTreeMap::new();
    for r in &rows {
        let comment = &r[0];
        let pid: u64 = comment
            .split(' ')
            .find_map(|w| w.strip_prefix("pid="))
            .unwrap_or_else(|| panic!("no pid in {comment:?}"))
            .parse()
            .unwrap();
        assert!(!others.contains(&pid), "another process's packet: {r:?}");
        assert!(
            comment.contains(&format!(" user={} uid={}", user.name, user.uid)),
            "{comment}"
        );
        assert!(comment.contains(" comm=netwho-trafficg"), "{comment}");
        // the client's port, whichever way the packet went
        let (sport, dport): (u64, u64) = (r[2].parse().unwrap(), r[3].parse().unwrap());
        let lport = if r[5] == "0" { sport } else { dport };
        let t = mine
            .iter()
            .find(|t| t["lport"] == lport)
            .unwrap_or_else(|| panic!("a packet of no test-user connection: {r:?}"));
        assert_eq!(t["pid"].as_u64(), Some(pid), "{r:?}");
        streams.insert(lport, r[1].parse().unwrap());
        assert!(r[4].starts_with("if") && r[4].contains("@netns"), "{r:?}");
    }
    for t in &mine {
        let lport = t["lport"].as_u64().unwrap();
        let stream = *streams
            .get(&lport)
            .unwrap_or_else(|| panic!("no packet of {t}"));
        // the client sent the SYN: tshark's first node
        let (sent, recv) = followed(&file, stream);
        assert_eq!(sent as u64, t["bytes_sent"].as_u64().unwrap(), "{t}");
        assert_eq!(recv as u64, t["bytes_recv"].as_u64().unwrap(), "{t}");
    }
}
