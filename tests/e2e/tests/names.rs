//! Names as each process saw them (issue 27, `docs/specs/names.md`): a
//! real DNS server (dnsmasq) and a real TLS server (openssl s_server) in a
//! test namespace; clients that resolve with libc, over TCP DNS, through a
//! caching resolver behind a Unix socket, not at all, with QUIC (aioquic),
//! and against a hostile DNS server.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SUBNET: u8 = 49;

fn script() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/names_client.py"))
}

/// Runs a client mode in `ns` with `py`, and its JSON line.
fn client(py: &Path, ns: &str, args: &[&str]) -> Value {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(py)
        .arg(script())
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The outbound records of `pid` to `port`.
fn flows_of<'a>(records: &'a [Value], pid: &Value, port: u16) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["event"] != "status" && r["pid"] == *pid && r["rport"] == port)
        .collect()
}

/// Removes `/etc/netns/NAME` (the resolv.conf `ip netns exec` mounts).
struct EtcNetns(std::path::PathBuf);

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn each_flow_carries_the_name_its_process_resolved_and_asked_for() {
    if !require_root() {
        return;
    }
    let Some(py) = aioquic_python() else {
        return;
    };
    let _s = serial();
    let ns = Netns::pair("nm", SUBNET);
    let dir = TempDir::new("names-servers");
    let srv = ns.b4.to_string();
    let hostile_addr = format!("10.231.{SUBNET}.3");
    run(Command::new("ip").args([
        "-n",
        &ns.b,
        "addr",
        "add",
        &format!("{hostile_addr}/24"),
        "dev",
        &format!("v{}nmb", std::process::id() % 100_000),
    ]));
    // the client namespace resolves with the test's dnsmasq (ip netns exec
    // mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf)
    let etc = EtcNetns(Path::new("/etc/netns").join(&ns.a));
    std::fs::create_dir_all(&etc.0).unwrap();
    std::fs::write(etc.0.join("resolv.conf"), format!("nameserver {srv}\n")).unwrap();
    // dnsmasq: two names for one address, a CNAME chain, nothing upstream
    let _dns = Running::start(
        Command::new("ip").args(["netns", "exec", &ns.b]).args([
            "dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--log-facility=-",
            "--log-queries",
            &format!("--listen-address={srv}"),
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            &format!("--address=/a.example/{srv}"),
            &format!("--address=/b.example/{srv}"),
            &format!("--host-record=edge.example,{srv}"),
            &format!("--host-record=t.example,{srv}"),
            "--cname=www.c.example,edge.example",
            "--local-ttl=600",
        ]),
        &dir.0.join("dnsmasq.err"),
        "started",
    );
    // a local stub on the client namespace's loopback, where
    // systemd-resolved listens (127.0.0.53)
    let _stub = Running::start(
        Command::new("ip").args(["netns", "exec", &ns.a]).args([
            "dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--log-facility=-",
            "--listen-address=127.0.0.53",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            &format!("--address=/stub.example/{srv}"),
        ]),
        &dir.0.join("stub.err"),
        "started",
    );
    // a TLS server and a plain TCP server on the same address
    let key = dir.0.join("key.pem");
    let cert = dir.0.join("cert.pem");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=a.example",
            "-days",
            "1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    let _tls = Running::start(
        Command::new("ip")
            .args([
                "netns", "exec", &ns.b, "openssl", "s_server", "-accept", "4433", "-www", "-quiet",
                "-cert",
            ])
            .arg(&cert)
            .arg("-key")
            .arg(&key),
        &dir.0.join("s_server.err"),
        "",
    );
    let (plain, plain_port) = server(
        &ns.b,
        &format!("tcp-server --bind {srv} --conns 2 --expect 6 --reply 3"),
    );
    let _hostile = Running::start(
        Command::new("ip")
            .args(["netns", "exec", &ns.b])
            .arg(&py)
            .arg(script())
            .args(["hostile", &hostile_addr, &srv]),
        &dir.0.join("hostile.err"),
        "",
    );
    let sock = dir.0.join("resolver.sock");
    let _resolver = Running::start(
        Command::new("ip")
            .args(["netns", "exec", &ns.a])
            .arg(&py)
            .arg(script())
            .arg("resolver")
            .arg(&sock),
        &dir.0.join("resolver.err"),
        "",
    );
    poll(10, "the resolver's socket", || {
        if sock.exists() {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    poll(10, "the TLS server", || {
        let ok = Command::new("ip")
            .args(["netns", "exec", &ns.b, "ss", "-ltn", "sport = :4433"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("4433"));
        if ok.unwrap_or(false) {
            Ok(())
        } else {
            Err("not listening".to_string())
        }
    });

    // the daemon's history and flow export see the same run (a filter of
    // ports: the kernel scope must keep port 53 for the names)
    let daemon_dir = TempDir::new("names-daemon");
    let daemon = Daemon::start(&daemon_dir.0, "fd.rport = 4433");
    let exported = dir.0.join("export.jsonl");
    let mut export = Running::start(
        Command::new(netwho_bin())
            .args([
                "-v",
                "export",
                "--names-local",
                "none",
                "--join-wait",
                "0.2",
                "--jsonl",
            ])
            .arg(&exported)
            .args(["-f", "fd.rport = 4433"]),
        &dir.0.join("export.err"),
        "attached:",
    );
    let rec = dir.0.join("names.nwr");
    let nw = Netwho::start(
        "names",
        &["--names-local", "none", "--record", rec.to_str().unwrap()],
    );
    let pp = plain_port.to_string();
    let a = client(&py, &ns.a, &["tls", "a.example", "4433"]);
    let b = client(&py, &ns.a, &["tls", "b.example", "4433"]);
    let t = client(&py, &ns.a, &["tcpdns", &srv, "t.example", &pp]);
    let via = client(
        &py,
        &ns.a,
        &["via", &sock.to_string_lossy(), "www.c.example", &pp],
    );
    // an address no answer named (the TLS server listens on every address)
    let bare = client(&py, &ns.a, &["bare", &hostile_addr, "4433"]);
    let quic = client(&py, &ns.a, &["quic", &srv, "quic.example"]);
    let evil = client(
        &py,
        &ns.a,
        &["udpdns", &hostile_addr, "evil.example", "4433", &srv],
    );
    let junk = client(
        &py,
        &ns.a,
        &["udpdns", &hostile_addr, "junk.example", "4433", &srv],
    );
    let stub = client(
        &py,
        &ns.a,
        &["udpdns", "127.0.0.53", "stub.example", "4433", &srv],
    );
    assert_eq!(bare["addr"], hostile_addr.as_str());
    for c in [&a, &b, &t, &via, &evil, &junk, &stub] {
        assert_eq!(c["addr"], srv.as_str(), "{c}");
    }
    let pids: Vec<Value> = [&a, &b, &t, &via, &bare, &quic, &evil, &junk, &stub]
        .iter()
        .map(|c| c["pid"].clone())
        .collect();
    let mut nw = nw;
    nw.wait_until("the clients' closes", Duration::from_secs(20), |recs| {
        pids.iter().all(|p| {
            recs.iter()
                .any(|r| r["event"] == "close" && r["pid"] == *p && r["rport"] != 53)
        })
    });
    let (_, records) = nw.stop();
    drop(plain);
    // let the daemon commit and the export flush, then stop both
    std::thread::sleep(Duration::from_secs(2));
    assert!(sigint(&mut export).success(), "netwho export failed");
    daemon.stop();

    let one = |c: &Value, port: u16, what: &str| -> Value {
        let fl = flows_of(&records, &c["pid"], port);
        let close = fl
            .iter()
            .find(|r| r["event"] == "close")
            .unwrap_or_else(|| panic!("{what}: no close among {fl:#?}"));
        (*close).clone()
    };
    // two processes, one address, each its own name and server name
    let ra = one(&a, 4433, "a.example");
    let rb = one(&b, 4433, "b.example");
    assert_eq!(ra["raddr"], rb["raddr"]);
    assert_eq!(
        (&ra["rname"], &ra["rname_source"], &ra["sni"], &ra["alpn"]),
        (
            &Value::from("a.example"),
            &Value::from("dns"),
            &Value::from("a.example"),
            &Value::from("h2,http/1.1")
        ),
        "{ra}"
    );
    assert_eq!(
        (&rb["rname"], &rb["rname_source"], &rb["sni"]),
        (
            &Value::from("b.example"),
            &Value::from("dns"),
            &Value::from("b.example")
        ),
        "{rb}"
    );
    // the open record (made at connect, before the ClientHello) has the
    // name already
    let open_a = flows_of(&records, &a["pid"], 4433)
        .into_iter()
        .find(|r| r["event"] == "open")
        .unwrap();
    assert_eq!(open_a["rname"], "a.example", "{open_a}");
    // an answer over TCP
    let rt = one(&t, plain_port, "t.example");
    assert_eq!(
        (&rt["rname"], &rt["rname_source"]),
        (&Value::from("t.example"), &Value::from("dns")),
        "{rt}"
    );
    assert!(rt.get("sni").is_none(), "{rt}");
    // through the caching resolver: the name it was told, shared; the
    // question's name, not the CNAME's target
    let rv = one(&via, plain_port, "via the resolver");
    assert_eq!(
        (&rv["rname"], &rv["rname_source"]),
        (&Value::from("www.c.example"), &Value::from("shared")),
        "{rv}"
    );
    // never resolved: marked
    let rbare = one(&bare, 4433, "bare");
    assert_eq!(rbare["rname_source"], "none", "{rbare}");
    assert!(rbare.get("rname").is_none(), "{rbare}");
    // QUIC: the Initial's server name and protocol
    let rq = one(&quic, 443, "quic");
    assert_eq!(
        (&rq["sni"], &rq["alpn"]),
        (&Value::from("quic.example"), &Value::from("h3")),
        "{rq}"
    );
    assert_ne!(rq["rname_source"], "none", "a server name is a name: {rq}");
    // hostile answers: a name with an escape sequence stays one printable
    // value; garbage is counted and names nothing
    let re = one(&evil, 4433, "evil");
    assert_eq!(re["rname"], "x\\027\\09131mred\\010line.example", "{re}");
    // garbage named nothing for its process: the address has the name the
    // namespace's latest answer gave it
    let rj = one(&junk, 4433, "junk");
    assert_eq!(
        (&rj["rname"], &rj["rname_source"]),
        (&re["rname"], &Value::from("shared")),
        "{rj}"
    );
    // an answer from the local stub on the loopback names the flow too
    let rs = one(&stub, 4433, "stub");
    assert_eq!(
        (&rs["rname"], &rs["rname_source"]),
        (&Value::from("stub.example"), &Value::from("dns")),
        "{rs}"
    );
    let st = last_status(&records);
    let n = &st["names"];
    assert!(n["dns_answers"].as_u64().unwrap() >= 5, "{n}");
    assert!(n["dns_unreadable"].as_u64().unwrap() >= 1, "{n}");
    assert!(n["hellos"].as_u64().unwrap() >= 3, "{n}");
    assert_eq!(n["kernel_lost"], 0, "{n}");
    // the recording keeps the names: top-names over it groups the flows of
    // the two TLS clients under their own names though they share an
    // address, and the bare connection under its address
    let doc = report_json([
        OsStr::new("top-names"),
        OsStr::new("-r"),
        rec.as_os_str(),
        OsStr::new("--limit"),
        OsStr::new("100"),
        OsStr::new("fd.rport"),
        OsStr::new("="),
        OsStr::new("4433"),
    ]);
    let rows = doc["rows"].as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {doc:#}"))
    };
    assert_eq!(row("a.example")["from"], "dns", "{doc:#}");
    assert_eq!(row("b.example")["from"], "dns", "{doc:#}");
    assert_eq!(row(&hostile_addr)["from"], "none", "{doc:#}");
    assert_eq!(
        row("a.example")["addresses"],
        serde_json::json!([srv]),
        "{doc:#}"
    );
    // the history keeps each process's name with its rollups
    let db = daemon_dir.0.join("h.db");
    let doc = report_json([
        OsStr::new("top-names"),
        OsStr::new("--db"),
        db.as_os_str(),
        OsStr::new("--limit"),
        OsStr::new("100"),
    ]);
    let names: Vec<(&str, &str)> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["from"].as_str().unwrap()))
        .collect();
    for want in [("a.example", "dns"), ("b.example", "dns")] {
        assert!(names.contains(&want), "{want:?} in {doc:#}");
    }
    // flow export: nProbe's DNS_QUERY and TLS_SERVER_NAME
    let ex = read_records(&exported);
    let of = |pid: &Value| {
        ex.iter()
            .find(|r| r["src_proc_pid"] == *pid)
            .unwrap_or_else(|| panic!("no export of {pid} in {ex:#?}"))
    };
    assert_eq!(of(&a["pid"])["dns_query"], "a.example");
    assert_eq!(of(&a["pid"])["tls_server_name"], "a.example");
    assert_eq!(of(&b["pid"])["dns_query"], "b.example");
    assert_eq!(of(&bare["pid"])["netwho_rname_source"], "none");
    // the server's side names nothing it never resolved
    let inbound: Vec<&Value> = records
        .iter()
        .filter(|r| r["direction"] == "inbound" && r["rport"] != 53)
        .filter(|r| r["netns"] == Netns::inode(&ns.b))
        .collect();
    assert!(!inbound.is_empty());
    assert!(
        inbound.iter().all(|r| r.get("rname_source").is_none()),
        "{inbound:#?}"
    );
}
