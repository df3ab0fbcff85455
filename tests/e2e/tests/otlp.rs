//! OpenTelemetry export end to end: connections between two network
//! namespaces (IPv4 and IPv6, the clients as a test user), `netwho export
//! --otlp` to a receiver that decodes with the OpenTelemetry project's own
//! protobuf definitions (the `opentelemetry-proto` Python package) and
//! answers the first request 503: every flow's open and close arrive once,
//! with the process, the ports and the exact payload bytes of the ground
//! truth, and the metrics sum the same bytes per executable and user.

use netwho_e2e::*;
use serde_json::Value;
use std::process::Command;

fn close_of<'a>(logs: &'a [&Value], t: &Value) -> Vec<&'a Value> {
    logs.iter()
        .copied()
        .filter(|r| {
            let a = &r["attributes"];
            r["event_name"] == "netwho.flow.close"
                && a["process.pid"] == t["pid"]
                && a["network.local.port"] == t["lport"]
                && a["network.peer.port"] == t["rport"]
        })
        .collect()
}

#[test]
fn otlp_logs_and_metrics_carry_every_flow_exactly() {
    if !require_root() {
        return;
    }
    let Some(py) = otlp_python() else {
        return;
    };
    let _s = serial();
    let ns = Netns::pair("otlp", 46);
    let user = TestUser::create("nwtotlp");
    let dir = TempDir::new("otlp");
    let mut receiver = OtlpReceiver::start(&py, &dir.0, 1);
    let nw_err = dir.0.join("netwho.err");
    let mut nw = Running::start(
        Command::new(netwho_bin())
            .args(["-v", "export", "--otlp", &receiver.url()])
            .args(["--otlp-metrics-every", "1s", "--active-timeout", "1h"])
            .args([
                "-f",
                "fd.rnet = 10.231.46.0/24 or fd.rnet = fd00:231::2e:0/112",
            ]),
        &nw_err,
        "attached:",
    );

    // three IPv4 connections and one IPv6, clients as the test user
    let mut truth = Vec::new();
    for (to, conns) in [(ns.b4.to_string(), 3), (ns.b6.to_string(), 1)] {
        let (srv, p) = server(
            &ns.b,
            &format!("tcp-server --bind {to} --conns {conns} --expect 3001 --reply 7013"),
        );
        let cli = Gen::spawn(
            Some(&ns.a),
            &format!(
                "tcp-client --to {to} --port {p} --conns {conns} --send 3001 --expect 7013 --as-user {}",
                user.name
            ),
        );
        truth.extend(cli.finish());
        truth.extend(srv.finish());
    }
    assert_eq!(truth.len(), 8);
    poll(60, "a close record for each end of each connection", || {
        let got = receiver.received();
        let logs: Vec<&Value> = got.iter().filter(|r| r["signal"] == "log").collect();
        let missing = truth
            .iter()
            .filter(|t| close_of(&logs, t).is_empty())
            .count();
        if missing == 0 {
            Ok(())
        } else {
            Err(format!("{missing} missing of {}", truth.len()))
        }
    });
    assert!(sigint(&mut nw).success(), "netwho export failed");
    receiver.stop();
    let got = receiver.received();
    let logs: Vec<&Value> = got.iter().filter(|r| r["signal"] == "log").collect();
    let nw_log = std::fs::read_to_string(&nw_err).unwrap();
    assert!(
        nw_log.contains("answered 503"),
        "the refused first request was reported: {nw_log}"
    );

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for t in &truth {
        let closes = close_of(&logs, t);
        assert_eq!(closes.len(), 1, "exactly one close for {t}: {closes:#?}");
        let c = closes[0];
        let a = &c["attributes"];
        assert_eq!(a["netwho.payload.bytes_sent"], t["bytes_sent"], "{t}");
        assert_eq!(a["netwho.payload.bytes_received"], t["bytes_recv"], "{t}");
        assert_eq!(a["network.local.address"], t["laddr"], "{t}");
        assert_eq!(a["network.peer.address"], t["raddr"], "{t}");
        assert_eq!(a["network.transport"], "tcp");
        let v6 = t["laddr"].as_str().unwrap().contains(':');
        assert_eq!(a["network.type"], if v6 { "ipv6" } else { "ipv4" });
        assert_eq!(a["process.user.id"], t["uid"], "{t}");
        let owner = if t["role"] == "client" {
            user.name.as_str()
        } else {
            "root"
        };
        assert_eq!(a["process.owner"], owner, "{t}");
        assert_eq!(a["process.parent_pid"], t["ppid"], "{t}");
        assert_eq!(a["netwho.attribution"], "ebpf");
        let direction = if t["role"] == "client" {
            "outbound"
        } else {
            "inbound"
        };
        assert_eq!(a["netwho.flow.direction"], direction, "{t}");
        assert!(
            a["process.executable.path"]
                .as_str()
                .unwrap()
                .ends_with("netwho-trafficgen"),
            "{a}"
        );
        assert_eq!(a["process.executable.name"], "netwho-trafficgen");
        assert!(a["netwho.community_id"].as_str().unwrap().starts_with("1:"));
        assert_eq!(c["severity"], 9);
        assert!(c["time"].as_u64().unwrap() > 1_700_000_000_000_000_000);
        // its open, once, with the same flow id
        let id = &a["netwho.flow.id"];
        let opens = logs
            .iter()
            .filter(|r| {
                r["event_name"] == "netwho.flow.open" && r["attributes"]["netwho.flow.id"] == *id
            })
            .count();
        assert_eq!(opens, 1, "the open of {t}");
        // who reports
        let res = &c["resource"];
        assert_eq!(res["service.name"], "netwho");
        assert_eq!(res["host.name"], host.trim());
        assert_eq!(c["path"], "/v1/logs");
    }
    // nothing but these flows (the filter), and no record twice
    let ids: std::collections::BTreeSet<String> = logs
        .iter()
        .map(|r| format!("{}/{}", r["event_name"], r["attributes"]["netwho.flow.id"]))
        .collect();
    assert_eq!(ids.len(), logs.len(), "a record sent twice");
    assert_eq!(logs.len(), 16, "an open and a close per end: {logs:#?}");

    // the last metrics: the clients' bytes in the test user's series
    let points: Vec<&Value> = got
        .iter()
        .filter(|r| r["signal"] == "metric" && r["name"] == "process.network.io")
        .collect();
    let last = points
        .iter()
        .map(|p| p["time"].as_u64().unwrap())
        .max()
        .unwrap();
    let sum = |owner: &str, dir: &str| -> u64 {
        points
            .iter()
            .filter(|p| p["time"].as_u64() == Some(last))
            .filter(|p| p["attributes"]["process.owner"] == owner)
            .filter(|p| p["attributes"]["network.io.direction"] == dir)
            .map(|p| p["value"].as_u64().unwrap())
            .sum()
    };
    let truth_sum = |role: &str, field: &str| -> u64 {
        truth
            .iter()
            .filter(|t| t["role"] == role)
            .map(|t| t[field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        sum(&user.name, "transmit"),
        truth_sum("client", "bytes_sent")
    );
    assert_eq!(
        sum(&user.name, "receive"),
        truth_sum("client", "bytes_recv")
    );
    assert_eq!(sum("root", "transmit"), truth_sum("server", "bytes_sent"));
    for p in &points {
        assert_eq!(p["unit"], "By");
        assert_eq!(p["temporality"], 2, "cumulative");
        assert_eq!(p["monotonic"], true);
        assert_eq!(p["path"], "/v1/metrics");
    }
}
