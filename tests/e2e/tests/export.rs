//! Flow export end to end: connections between two network namespaces
//! (both ends on this host, the client as a test user), `netwho export`
//! to IPFIX over UDP and TCP, NetFlow v9 and JSON lines at once; the
//! messages decoded by two independent decoders (netflow_parser, and
//! Wireshark's tshark from a capture of the loopback), every process
//! field checked against the ground truth.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The elements the test asks for (every process element, the 5-tuple,
/// counters, and netwho's own that are never empty here; netflow_parser
/// drops a record with an empty variable-length text, which RFC 7011
/// allows and a test process's unit would be).
const TEMPLATE: &[&str] = &[
    "IPV4_SRC_ADDR",
    "IPV4_DST_ADDR",
    "IPV6_SRC_ADDR",
    "IPV6_DST_ADDR",
    "L4_SRC_PORT",
    "L4_DST_PORT",
    "PROTOCOL",
    "IN_BYTES",
    "IN_PKTS",
    "OUT_BYTES",
    "OUT_PKTS",
    "FLOW_START_MILLISECONDS",
    "FLOW_END_MILLISECONDS",
    "FLOW_END_REASON",
    "DIRECTION",
    "SRC_PROC_PID",
    "SRC_PROC_NAME",
    "SRC_PROC_USER_NAME",
    "SRC_FATHER_PROC_PID",
    "SRC_FATHER_PROC_NAME",
    "SRC_PROC_ACTUAL_MEMORY",
    "SRC_PROC_PEAK_MEMORY",
    "SRC_PROC_AVERAGE_CPU_LOAD",
    "SRC_PROC_NUM_PAGE_FAULTS",
    "SRC_PROC_PCTG_IOWAIT",
    "DST_PROC_PID",
    "DST_PROC_NAME",
    "DST_PROC_USER_NAME",
    "DST_FATHER_PROC_PID",
    "DST_FATHER_PROC_NAME",
    "DST_PROC_ACTUAL_MEMORY",
    "DST_PROC_PEAK_MEMORY",
    "DST_PROC_AVERAGE_CPU_LOAD",
    "DST_PROC_NUM_PAGE_FAULTS",
    "DST_PROC_PCTG_IOWAIT",
    "NETWHO_UID",
    "NETWHO_CMDLINE",
    "NETWHO_ATTRIBUTION",
    "NETWHO_IN_PAYLOAD_BYTES",
    "NETWHO_OUT_PAYLOAD_BYTES",
    "NETWHO_COMMUNITY_ID",
];

fn is_text(name: &str) -> bool {
    ["NAME", "CMDLINE", "ATTRIBUTION", "COMMUNITY_ID"]
        .iter()
        .any(|t| name.ends_with(t))
}

/// One decoded record: element name → value (numbers as numbers, text
/// and addresses as strings).
type Rec = BTreeMap<String, Value>;

/// Datagrams (or a stream's messages) received by a test collector.
struct Collector {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Vec<u8>>>>,
    port: u16,
}

impl Collector {
    fn udp() -> Collector {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        Collector::run(port, move |stop| {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    got.push(buf[..n].to_vec());
                }
            }
            got
        })
    }

    /// IPFIX over TCP: the stream cut into messages by their length field.
    fn tcp() -> Collector {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        Collector::run(port, move |stop| {
            let mut bytes = Vec::new();
            let mut conn = None;
            while !stop.load(Ordering::Relaxed) {
                if conn.is_none()
                    && let Ok((s, _)) = l.accept()
                {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                    conn = Some(s);
                }
                let mut buf = [0u8; 65_536];
                match conn.as_mut().map(|s| s.read(&mut buf)) {
                    Some(Ok(0)) => conn = None,
                    Some(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            let mut msgs = Vec::new();
            let mut rest = &bytes[..];
            while rest.len() >= 4 {
                let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                assert!(len >= 16 && len <= rest.len(), "a cut IPFIX stream");
                msgs.push(rest[..len].to_vec());
                rest = &rest[len..];
            }
            assert!(
                rest.is_empty(),
                "{} bytes after the last message",
                rest.len()
            );
            msgs
        })
    }

    fn run(port: u16, f: impl FnOnce(&AtomicBool) -> Vec<Vec<u8>> + Send + 'static) -> Collector {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        Collector {
            thread: Some(std::thread::spawn(move || f(&s))),
            stop,
            port,
        }
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// netflow_parser's reading of the messages, each record's fields named
/// by the template (data fields come in template order).
fn parse(msgs: &[Vec<u8>]) -> Vec<Rec> {
    let mut p = netflow_parser::NetflowParser::default();
    let mut out = Vec::new();
    for m in msgs {
        let r = p.parse_bytes(m);
        assert!(r.error.is_none(), "{:?}", r.error);
        let v = serde_json::to_value(&r.packets).unwrap();
        for pkt in v.as_array().unwrap() {
            let body = pkt.get("IPFix").or_else(|| pkt.get("V9")).unwrap();
            for set in body["flowsets"].as_array().unwrap() {
                let Some(data) = set["body"].get("Data") else {
                    continue;
                };
                for rec in data["fields"].as_array().unwrap() {
                    let fields = rec.as_array().unwrap();
                    assert_eq!(fields.len(), TEMPLATE.len(), "{rec}");
                    let mut row = Rec::new();
                    for (name, pair) in TEMPLATE.iter().zip(fields) {
                        row.insert(name.to_string(), value(name, &pair[1]));
                    }
                    out.push(row);
                }
            }
        }
    }
    out
}

fn value(name: &str, v: &Value) -> Value {
    if let Some(o) = v.as_object() {
        let (k, inner) = o.iter().next().unwrap();
        return match k.as_str() {
            "Ip4Addr" | "Ip6Addr" => inner.clone(),
            "DataNumber" => inner.as_object().unwrap().values().next().unwrap().clone(),
            "Vec" => {
                let b: Vec<u8> = inner
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| u8::try_from(x.as_u64().unwrap()).unwrap())
                    .collect();
                if is_text(name) {
                    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
                    Value::from(String::from_utf8(b[..end].to_vec()).unwrap())
                } else {
                    Value::from(b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
                }
            }
            // (times, protocol names, ...): what is inside
            _ => value(name, inner),
        };
    }
    v.clone()
}

/// tshark's (Wireshark's dissector) reading of a capture: the records of
/// messages to `port`, with the fields Wireshark names.
fn tshark(pcap: &std::path::Path, port: u16) -> Vec<Rec> {
    let fields = [
        ("L4_SRC_PORT", "cflow.srcport"),
        ("L4_DST_PORT", "cflow.dstport"),
        ("IN_BYTES", "cflow.octets"),
        ("SRC_PROC_PID", "cflow.pie.ntop.src_proc_id"),
        ("SRC_PROC_NAME", "cflow.pie.ntop.src_proc_name"),
        ("SRC_PROC_USER_NAME", "cflow.pie.ntop.src_proc_user_name"),
        ("SRC_FATHER_PROC_PID", "cflow.pie.ntop.src_father_proc_pid"),
        (
            "SRC_FATHER_PROC_NAME",
            "cflow.pie.ntop.src_father_proc_name",
        ),
        (
            "SRC_PROC_ACTUAL_MEMORY",
            "cflow.pie.ntop.src_proc_actual_memory",
        ),
        (
            "SRC_PROC_PEAK_MEMORY",
            "cflow.pie.ntop.src_proc_peak_memory",
        ),
        ("DST_PROC_PID", "cflow.pie.ntop.dst_proc_pid"),
        ("DST_PROC_NAME", "cflow.pie.ntop.dst_proc_name"),
        ("DST_PROC_USER_NAME", "cflow.pie.ntop.dst_proc_user_name"),
        ("DST_FATHER_PROC_PID", "cflow.pie.ntop.dst_father_proc_pid"),
        (
            "DST_FATHER_PROC_NAME",
            "cflow.pie.ntop.dst_father_proc_name",
        ),
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-d", &format!("udp.port=={port},cflow")])
        .args(["-Y", &format!("udp.dstport == {port} && cflow.srcport")])
        .args(["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]);
    for (_, f) in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.stderr(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "tshark -r failed");
    let mut recs = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let cols: Vec<Vec<&str>> = line.split('\t').map(|c| c.split('|').collect()).collect();
        let n = cols[0].len();
        for (i, c) in cols.iter().enumerate() {
            assert_eq!(c.len(), n, "{}: {line}", fields[i].0);
        }
        for k in 0..n {
            let mut row = Rec::new();
            for ((name, _), col) in fields.iter().zip(&cols) {
                let s = col[k];
                let v = if is_text(name) {
                    Value::from(s)
                } else {
                    Value::from(s.parse::<u64>().unwrap_or_else(|_| panic!("{name}: {s}")))
                };
                row.insert(name.to_string(), v);
            }
            recs.push(row);
        }
    }
    recs
}

/// A process's name as the kernel has it (what netwho reports).
fn comm_of(pid: u64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim_end()
        .to_string()
}

/// What a record must say about one connection: (element, value).
fn expected(client: &Value, server: &Value, user: &str, fathers: &BTreeMap<u64, String>) -> Rec {
    let mut r = Rec::new();
    let mut put = |k: &str, v: Value| {
        r.insert(k.to_string(), v);
    };
    put("L4_SRC_PORT", client["lport"].clone());
    put("L4_DST_PORT", client["rport"].clone());
    put("SRC_PROC_PID", client["pid"].clone());
    put("SRC_PROC_NAME", client["comm"].clone());
    put("SRC_PROC_USER_NAME", Value::from(user));
    put("SRC_FATHER_PROC_PID", client["ppid"].clone());
    put(
        "SRC_FATHER_PROC_NAME",
        Value::from(fathers[&client["ppid"].as_u64().unwrap()].as_str()),
    );
    put("DST_PROC_PID", server["pid"].clone());
    put("DST_PROC_NAME", server["comm"].clone());
    put("DST_PROC_USER_NAME", Value::from("root"));
    put("DST_FATHER_PROC_PID", server["ppid"].clone());
    put(
        "DST_FATHER_PROC_NAME",
        Value::from(fathers[&server["ppid"].as_u64().unwrap()].as_str()),
    );
    r
}

/// Checks `recs` (one decoder's view of one export) against the truth:
/// exactly one record per connection, every expected field equal.
fn check(what: &str, recs: &[Rec], want: &[(Rec, &Value)]) {
    let mine: Vec<&Rec> = recs
        .iter()
        .filter(|r| {
            want.iter()
                .any(|(w, _)| w["L4_SRC_PORT"] == r["L4_SRC_PORT"])
        })
        .collect();
    assert_eq!(mine.len(), want.len(), "{what}: {recs:#?}");
    for (w, client) in want {
        let r = mine
            .iter()
            .find(|r| r["L4_SRC_PORT"] == w["L4_SRC_PORT"])
            .unwrap_or_else(|| panic!("{what}: no record for {w:?}"));
        for (k, v) in w {
            // (tshark knows no names for netwho's own elements)
            if k.starts_with("NETWHO_") && what.contains("tshark") {
                continue;
            }
            assert_eq!(r.get(k), Some(v), "{what}: {k} of {w:?}");
        }
        // wire bytes: at least the payload and a header per packet
        let sent = client["bytes_sent"].as_u64().unwrap();
        let octets = r["IN_BYTES"].as_u64().unwrap();
        assert!(octets >= sent + 40, "{what}: {octets} octets for {sent} B");
        assert!(
            octets < sent + 100_000,
            "{what}: {octets} octets for {sent} B"
        );
        if r.contains_key("NETWHO_IN_PAYLOAD_BYTES") {
            assert_eq!(r["NETWHO_IN_PAYLOAD_BYTES"], client["bytes_sent"], "{what}");
            assert_eq!(
                r["NETWHO_OUT_PAYLOAD_BYTES"], client["bytes_recv"],
                "{what}"
            );
            // (netflow_parser names the value)
            let reason = &r["FLOW_END_REASON"];
            assert!(*reason == 3 || *reason == "EndOfFlow", "{what}: {reason}");
            assert_eq!(r["NETWHO_UID"], client["uid"], "{what}");
            assert_eq!(r["NETWHO_ATTRIBUTION"], "ebpf", "{what}");
            let pkts = r["IN_PKTS"].as_u64().unwrap();
            assert!(pkts >= 3, "{what}: {pkts} packets (SYN, data, FIN)");
            let (start, end) = (&r["FLOW_START_MILLISECONDS"], &r["FLOW_END_MILLISECONDS"]);
            if let (Some(s), Some(e)) = (start.as_u64(), end.as_u64()) {
                // (milliseconds, or seconds where the decoder made a duration)
                assert!(s <= e && s > 1_700_000_000, "{what}: {s}..{e}");
            }
        }
        let (act, peak) = (
            r["SRC_PROC_ACTUAL_MEMORY"].as_u64().unwrap(),
            r["SRC_PROC_PEAK_MEMORY"].as_u64().unwrap(),
        );
        assert!(act > 0 && peak >= act, "{what}: memory {act}, peak {peak}");
    }
}

#[test]
fn ipfix_v9_and_jsonl_carry_both_ends_processes_exactly() {
    if !require_root() {
        return;
    }
    if Command::new("tshark").arg("-v").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "tshark is missing");
        return;
    }
    let _s = serial();
    let ns = Netns::pair("exp", 29);
    let user = TestUser::create("nwtexpa");
    let dir = TempDir::new("export");
    let (ipfix, ipfix_tcp, v9) = (Collector::udp(), Collector::tcp(), Collector::udp());
    // Wireshark reads what goes over the loopback to the UDP collectors
    let pcap = dir.0.join("export.pcap");
    let err = dir.0.join("tshark.err");
    let mut cap = Running::start(
        Command::new("tshark")
            .args(["-i", "lo", "-f"])
            .arg(format!("udp port {} or udp port {}", ipfix.port, v9.port))
            .arg("-w")
            .arg(&pcap),
        &err,
        "Capturing on",
    );
    let jsonl = dir.0.join("flows.jsonl");
    let nw_err = dir.0.join("netwho.err");
    let template = TEMPLATE
        .iter()
        .map(|n| format!("%{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut nw = Running::start(
        Command::new(netwho_bin())
            .args(["-v", "export", "--template", &template])
            .arg(format!("--ipfix=127.0.0.1:{}", ipfix.port))
            .arg(format!("--ipfix=tcp://127.0.0.1:{}", ipfix_tcp.port))
            .arg(format!("--netflow-v9=127.0.0.1:{}", v9.port))
            .arg("--jsonl")
            .arg(&jsonl)
            .args([
                "-f",
                "fd.rnet = 10.231.29.0/24 or fd.rnet = fd00:231::1d:0/112",
            ]),
        &nw_err,
        "attached:",
    );

    // three IPv4 connections and one IPv6, client as the test user
    let mut truth = Vec::new();
    let mut fathers = BTreeMap::new();
    for (to, conns) in [(ns.b4.to_string(), 3), (ns.b6.to_string(), 1)] {
        let (srv, port) = server(
            &ns.b,
            &format!("tcp-server --bind {to} --conns {conns} --expect 3000 --reply 7000"),
        );
        let cli = Gen::spawn(
            Some(&ns.a),
            &format!(
                "tcp-client --to {to} --port {port} --conns {conns} --send 3000 --expect 7000 --as-user {}",
                user.name
            ),
        );
        let mut t = cli.finish();
        t.extend(srv.finish());
        for x in &t {
            let ppid = x["ppid"].as_u64().unwrap();
            fathers.entry(ppid).or_insert_with(|| comm_of(ppid));
        }
        truth.extend(t);
    }
    assert_eq!(truth.len(), 8);
    // each client connection and the server end of it
    let mut want = Vec::new();
    for c in truth.iter().filter(|t| t["role"] == "client") {
        let s = truth
            .iter()
            .find(|s| s["role"] == "server" && s["rport"] == c["lport"])
            .unwrap();
        want.push((expected(c, s, &user.name, &fathers), c));
    }
    // each record names its connection as Zeek would (the reference
    // computes it from the ground truth's addresses and ports)
    if let Some(py) = communityid_python() {
        let tuples: Vec<Value> = want
            .iter()
            .map(|(_, c)| {
                serde_json::json!({"proto": "tcp", "src": c["laddr"], "dst": c["raddr"],
                    "sport": c["lport"], "dport": c["rport"]})
            })
            .collect();
        let ids = communityid_reference(&py, 0, &tuples);
        for ((w, _), id) in want.iter_mut().zip(ids) {
            w.insert("NETWHO_COMMUNITY_ID".into(), Value::from(id));
        }
    }
    // the records come after the join wait; then netwho stops
    poll(30, "4 records in the JSON lines", || {
        let n = read_records(&jsonl).len();
        if n >= 4 { Ok(()) } else { Err(format!("{n}")) }
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(sigint(&mut nw).success());
    std::thread::sleep(Duration::from_millis(500));
    let _ = sigint(&mut cap);

    let upper = |r: &Value| -> Rec {
        r.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
            .collect()
    };
    let json: Vec<Rec> = read_records(&jsonl).iter().map(upper).collect();
    check("JSON lines", &json, &want);
    // the IPv6 connection's addresses
    let v6 = json
        .iter()
        .find(|r| r.contains_key("IPV6_SRC_ADDR"))
        .unwrap();
    assert_eq!(v6["IPV6_SRC_ADDR"], ns.a6.to_string());
    assert_eq!(v6["IPV6_DST_ADDR"], ns.b6.to_string());
    assert!(!v6.contains_key("IPV4_SRC_ADDR"));

    let (ipfix_port, v9_port) = (ipfix.port, v9.port);
    let (m_ipfix, m_tcp, m_v9) = (ipfix.finish(), ipfix_tcp.finish(), v9.finish());
    check("IPFIX/UDP (netflow_parser)", &parse(&m_ipfix), &want);
    check("IPFIX/TCP (netflow_parser)", &parse(&m_tcp), &want);
    check("NetFlow v9 (netflow_parser)", &parse(&m_v9), &want);
    check("IPFIX/UDP (tshark)", &tshark(&pcap, ipfix_port), &want);
    check("NetFlow v9 (tshark)", &tshark(&pcap, v9_port), &want);
    // each IPFIX message's sequence number counts the records before it
    for (i, m) in m_ipfix.iter().enumerate() {
        let seq = u32::from_be_bytes([m[8], m[9], m[10], m[11]]);
        assert_eq!(seq as usize, parse(&m_ipfix[..i]).len(), "message {i}");
    }
}

#[test]
fn the_daemon_exports_as_configured() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("expd", 30);
    let dir = TempDir::new("export-daemon");
    let jsonl = dir.0.join("flows.jsonl");
    // and OTLP, close records only
    let py = otlp_python();
    let otlp = py.as_ref().map(|py| OtlpReceiver::start(py, &dir.0, 0));
    let otlp_cfg = otlp.as_ref().map_or(String::new(), |o| {
        format!(
            "otlp = [\"{}\"]\notlp_events = \"close\"\notlp_metrics_every = \"off\"\n",
            o.url()
        )
    });
    let cfg = dir.0.join("netwho.toml");
    std::fs::write(
        &cfg,
        format!(
            "filter = \"fd.rnet = 10.231.30.0/24\"\n[history]\ndb = \"{}\"\nremote_names = false\n[api]\nsocket = \"{}\"\n[export]\njsonl = [\"{}\"]\ntemplate = \"%L4_SRC_PORT %SRC_PROC_PID %DST_PROC_PID %NETWHO_IN_PAYLOAD_BYTES %NETWHO_OUT_PAYLOAD_BYTES\"\n{otlp_cfg}",
            dir.0.join("h.db").display(),
            dir.0.join("api.sock").display(),
            jsonl.display()
        ),
    )
    .unwrap();
    let err = dir.0.join("daemon.err");
    let mut d = Running::start(
        Command::new(netwho_bin())
            .args(["daemon", "-v", "--config"])
            .arg(&cfg),
        &err,
        "attached:",
    );
    let (srv, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 2 --expect 1234 --reply 4321",
            ns.b4
        ),
    );
    let mut truth = run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --conns 2 --send 1234 --expect 4321",
            ns.b4
        ),
    );
    truth.extend(srv.finish());
    let recs = poll(30, "2 records", || {
        let r = read_records(&jsonl);
        if r.len() >= 2 {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    });
    let pid = |role: &str| truth.iter().find(|t| t["role"] == role).unwrap()["pid"].clone();
    for c in truth.iter().filter(|t| t["role"] == "client") {
        let r = recs
            .iter()
            .find(|r| r["l4_src_port"] == c["lport"])
            .unwrap_or_else(|| panic!("no record for {c}: {recs:?}"));
        assert_eq!(r["src_proc_pid"], pid("client"));
        assert_eq!(r["dst_proc_pid"], pid("server"));
        assert_eq!(r["netwho_in_payload_bytes"], 1234);
        assert_eq!(r["netwho_out_payload_bytes"], 4321);
        // only the template's elements
        assert_eq!(r.as_object().unwrap().len(), 5, "{r}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = i32::try_from(d.0.id()).unwrap();
    // SAFETY: signalling our own child
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(d.0.wait().unwrap().success());
    assert_eq!(read_records(&jsonl).len(), 2, "nothing more at exit");
    // OTLP: a close record for each end, with its exact bytes, nothing else
    if let Some(o) = otlp {
        let got = o.received();
        assert_eq!(got.len(), 4, "{got:#?}");
        for t in &truth {
            let r = got
                .iter()
                .find(|r| {
                    r["attributes"]["process.pid"] == t["pid"]
                        && r["attributes"]["network.local.port"] == t["lport"]
                })
                .unwrap_or_else(|| panic!("no OTLP record for {t}: {got:#?}"));
            assert_eq!(r["event_name"], "netwho.flow.close");
            assert_eq!(
                r["attributes"]["netwho.payload.bytes_sent"],
                t["bytes_sent"]
            );
            assert_eq!(
                r["attributes"]["netwho.payload.bytes_received"],
                t["bytes_recv"]
            );
        }
    }
}
