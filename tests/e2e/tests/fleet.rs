//! The fleet end to end: three "hosts" (network namespaces, each watched
//! by its own `netwho daemon --fleet`) publish to a NATS JetStream server;
//! `netwho collect` stores into PostgreSQL; `netwho report --postgres`
//! must equal the sum of the hosts' ground truths. NATS is killed mid-run
//! and started again on the same store: nothing may be lost or counted
//! twice. Both servers come from Debian's packages and run on loopback.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A free port on the loopback (the servers bind it just after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn postgres_bin(name: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

/// A PostgreSQL cluster of its own, run as `postgres` (it refuses root).
struct Postgres {
    server: Running,
    port: u16,
}

impl Postgres {
    fn start(dir: &Path) -> Postgres {
        let data = dir.join("pgdata");
        run(Command::new("install")
            .args(["-d", "-o", "postgres", "-m", "0700"])
            .arg(&data));
        let as_postgres = |bin: &str| {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--reset-env",
            ])
            .arg(postgres_bin(bin).unwrap());
            c
        };
        run(as_postgres("initdb")
            .args(["--auth=trust", "-U", "postgres", "-D"])
            .arg(&data));
        let port = free_port();
        let server = Running::start(
            as_postgres("postgres")
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-k"])
                .arg(&data)
                .args(["-c", "listen_addresses=127.0.0.1"]),
            &dir.join("postgres.err"),
            "ready to accept connections",
        );
        Postgres { server, port }
    }

    fn conn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// One value of a query, as text (psql).
    fn value(&self, sql: &str) -> String {
        run(Command::new(postgres_bin("psql").unwrap())
            .args(["-At", "-c", sql])
            .arg(self.conn()))
        .trim()
        .to_string()
    }
}

/// Publishes `payload` to `subject` in NATS's own text protocol (what
/// anyone who can reach the server can do).
fn publish_raw(port: u16, subject: &str, payload: &[u8]) {
    use std::io::{BufRead as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO"), "{line}");
    write!(
        s,
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nPUB {subject} {}\r\n",
        payload.len()
    )
    .unwrap();
    s.write_all(payload).unwrap();
    s.write_all(b"\r\nPING\r\n").unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(!line.starts_with("-ERR"), "{line}");
        if line.starts_with("PONG") {
            break;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // a fast shutdown, by PID
        let _ = sigint(&mut self.server);
    }
}

/// NATS with JetStream, its store in `dir` (kept across restarts).
fn nats(dir: &Path, port: u16, n: u32) -> Running {
    Running::start(
        Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.join("jetstream")),
        &dir.join(format!("nats{n}.err")),
        "Server is ready",
    )
}

struct Host {
    name: &'static str,
    daemon: Running,
    spool: PathBuf,
}

fn daemon(dir: &Path, name: &'static str, filter: &str, nats_port: u16) -> Host {
    let spool = dir.join(format!("{name}.spool"));
    let conf = dir.join(format!("{name}.toml"));
    std::fs::write(
        &conf,
        format!(
            "filter = \"{filter}\"\n[history]\ndb = \"{d}/{name}.db\"\n[api]\nsocket = \"{d}/{name}.sock\"\n\
             [fleet]\nhost = \"{name}\"\nspool = \"{s}\"\n",
            d = dir.display(),
            s = spool.display()
        ),
    )
    .unwrap();
    let daemon = Running::start(
        Command::new(netwho_bin())
            .args(["-v", "daemon", "-c"])
            .arg(&conf)
            .arg(format!("--fleet=nats://127.0.0.1:{nats_port}")),
        &dir.join(format!("{name}.err")),
        "fleet: publishing to",
    );
    Host {
        name,
        daemon,
        spool,
    }
}

fn spooled(h: &Host) -> usize {
    std::fs::read_dir(&h.spool)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "batch"))
            })
            .count()
        })
        .unwrap_or(0)
}

/// Connections from `client_ns` to a server in `server_ns`; the ground
/// truth of both ends, each tagged with the host it belongs to.
fn traffic(
    truth: &mut Vec<(&'static str, Value)>,
    (client_host, client_ns): (&'static str, &str),
    (server_host, server_ns, to): (&'static str, &str, String),
    conns: u32,
    send: u32,
) {
    let (srv, port) = server(
        server_ns,
        &format!("tcp-server --bind {to} --conns {conns} --expect {send} --reply 7000"),
    );
    let cli = Gen::spawn(
        Some(client_ns),
        &format!("tcp-client --to {to} --port {port} --conns {conns} --send {send} --expect 7000"),
    );
    truth.extend(cli.finish().into_iter().map(|t| (client_host, t)));
    truth.extend(srv.finish().into_iter().map(|t| (server_host, t)));
}

/// `netwho report KIND --postgres ... --json` (and more arguments): its
/// rows.
fn report(pg: &Postgres, kind: &str, more: &[&str]) -> Vec<Value> {
    let out = Command::new(netwho_bin())
        .args(["report", kind, "--json", "--postgres", &pg.conn()])
        .args(more)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["rows"].as_array().unwrap().clone()
}

/// (host, pid) → (sent, recv), from the report and from the truth.
type PerProc = BTreeMap<(String, u64), (u64, u64)>;

fn reported(pg: &Postgres) -> PerProc {
    report(pg, "bytes", &[])
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            let host = r["host"].as_str().unwrap().to_string();
            ((host, n("pid")), (n("sent"), n("recv")))
        })
        .collect()
}

fn expected(truth: &[(&'static str, Value)]) -> PerProc {
    let mut m = PerProc::new();
    for (host, t) in truth {
        let e = m
            .entry((host.to_string(), t["pid"].as_u64().unwrap()))
            .or_default();
        e.0 += t["bytes_sent"].as_u64().unwrap();
        e.1 += t["bytes_recv"].as_u64().unwrap();
    }
    m
}

fn collect_drain(pg: &Postgres, nats_port: u16, dir: &Path) {
    let out = Command::new(netwho_bin())
        .args(["-v", "collect", "--drain", "--nats"])
        .arg(format!("127.0.0.1:{nats_port}"))
        .args(["--postgres", &pg.conn()])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    std::fs::write(dir.join("collect-drain.err"), &out.stderr).unwrap();
    assert!(
        out.status.success(),
        "collect --drain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_fleet_report_is_the_sum_of_its_hosts_through_a_nats_restart() {
    if !require_root() {
        return;
    }
    let pg_bin = postgres_bin("postgres");
    let have_nats = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok();
    if pg_bin.is_none() || !have_nats {
        assert!(
            std::env::var_os("CI").is_none(),
            "nats-server or PostgreSQL is missing (scripts/test installs them)"
        );
        return;
    }
    let _s = serial();
    let dir = TempDir::new("fleet");
    run(Command::new("chmod").arg("0755").arg(&dir.0));
    let pg = Postgres::start(&dir.0);
    let nats_port = free_port();
    let mut nats_server = Some(nats(&dir.0, nats_port, 1));

    // hosts A and B (a veth between them), and C (two namespaces of its own)
    let ab = Netns::pair("fla", 31);
    let c = Netns::pair("flc", 32);
    let mut hosts = vec![
        daemon(&dir.0, "hosta", "fd.lip = 10.231.31.1", nats_port),
        daemon(&dir.0, "hostb", "fd.lip = 10.231.31.2", nats_port),
        daemon(&dir.0, "hostc", "fd.lnet = 10.231.32.0/24", nats_port),
    ];
    let mut collector = Running::start(
        Command::new(netwho_bin())
            .args(["-v", "collect", "--nats"])
            .arg(format!("nats://127.0.0.1:{nats_port}"))
            .args(["--postgres", &pg.conn()]),
        &dir.0.join("collect.err"),
        "collect: consuming",
    );
    let a_to_b = |truth: &mut Vec<(&'static str, Value)>, conns, send| {
        traffic(
            truth,
            ("hosta", &ab.a),
            ("hostb", &ab.b, ab.b4.to_string()),
            conns,
            send,
        );
    };
    let in_c = |truth: &mut Vec<(&'static str, Value)>, conns, send| {
        traffic(
            truth,
            ("hostc", &c.a),
            ("hostc", &c.b, c.b4.to_string()),
            conns,
            send,
        );
    };

    // 1: NATS up
    let mut truth = Vec::new();
    a_to_b(&mut truth, 2, 3000);
    in_c(&mut truth, 2, 5000);
    let want1 = expected(&truth);
    poll(60, "round 1 in PostgreSQL", || {
        let got = reported(&pg);
        if got == want1 {
            Ok(())
        } else {
            Err(format!("{got:?} != {want1:?}"))
        }
    });
    // every row names its connection, and host A's rows and host B's (the
    // two ends of the same connections) name the same ones
    let ids = |host: &str| {
        pg.value(&format!(
            "SELECT string_agg(DISTINCT community_id, ' ' ORDER BY community_id) \
             FROM netwho_flows WHERE host = '{host}'"
        ))
    };
    assert_eq!(
        pg.value("SELECT count(*) FROM netwho_flows WHERE community_id IS NULL"),
        "0"
    );
    let (a_ids, b_ids) = (ids("hosta"), ids("hostb"));
    assert_eq!(a_ids.split(' ').count(), 2, "{a_ids}");
    assert!(a_ids.split(' ').all(|i| i.starts_with("1:")), "{a_ids}");
    assert_eq!(a_ids, b_ids);
    // anyone who reaches NATS can publish: a line PostgreSQL would refuse
    // (a NUL in jsonb) or with a forged Community ID is skipped and
    // counted, and the good line beside it is stored
    let record = |src: &str, proc: &str, cid: &str| {
        format!(
            r#"{{"start_ms":1,"end_ms":2,"end_reason":3,"protocol":6,"src":"{src}","src_port":1,"dst":"10.231.31.8","dst_port":2,"direction":1,"octets":1,"packets":1,"rev_octets":1,"rev_packets":1,"payload":1,"rev_payload":1,"src_proc":{proc},"community_id":"{cid}"}}"#
        )
    };
    let nul = record("10.231.31.9", r#"{"pid":1,"cmdline":"a\u0000b"}"#, "");
    let forged = record("10.231.31.10", r#"{"pid":2}"#, "1:\\u001b[2Jforged");
    let fine = record("10.231.31.11", r#"{"pid":3}"#, "");
    publish_raw(
        nats_port,
        "netwho.flows.mallory",
        format!("{nul}\n{forged}\n{fine}\n").as_bytes(),
    );
    poll(30, "mallory's good line stored", || {
        match pg
            .value("SELECT string_agg(src::text || ' ' || line, ',' ORDER BY line) FROM netwho_flows WHERE host = 'mallory'")
            .as_str()
        {
            "10.231.31.11/32 2" => Ok(()),
            other => Err(other.to_string()),
        }
    });
    let err = std::fs::read_to_string(dir.0.join("collect.err")).unwrap_or_default();
    assert!(
        err.contains("line 1: not a fleet record (a process field holds a NUL"),
        "{err}"
    );
    assert!(
        err.contains("line 2: not a fleet record (community_id is not"),
        "{err}"
    );
    pg.value("DELETE FROM netwho_flows WHERE host = 'mallory'");
    // a message PostgreSQL still refuses for good (here a constraint a DBA
    // added) is kept aside and acknowledged, never holding the stream (the
    // rounds below still arrive)
    pg.value("ALTER TABLE netwho_flows ADD CONSTRAINT no_eve CHECK (host <> 'eve')");
    publish_raw(nats_port, "netwho.flows.eve", fine.as_bytes());
    poll(30, "eve's message in the dead letters", || {
        match pg
            .value("SELECT string_agg(host, ',') FROM netwho_dead_letters")
            .as_str()
        {
            "eve" => Ok(()),
            other => Err(format!(
                "{other}: {}",
                std::fs::read_to_string(dir.0.join("collect.err")).unwrap_or_default()
            )),
        }
    });

    // 2: NATS killed; the records wait in each host's spool
    drop(nats_server.take());
    a_to_b(&mut truth, 2, 4000);
    in_c(&mut truth, 1, 6000);
    poll(30, "every host spooling", || {
        let n: Vec<usize> = hosts.iter().map(spooled).collect();
        if n.iter().all(|x| *x > 0) {
            Ok(())
        } else {
            Err(format!("{n:?}"))
        }
    });

    // 3: NATS back on the same store; more traffic; the daemons stop
    nats_server = Some(nats(&dir.0, nats_port, 2));
    a_to_b(&mut truth, 1, 2000);
    in_c(&mut truth, 1, 1000);
    std::thread::sleep(Duration::from_secs(3));
    for h in &mut hosts {
        assert!(sigint(&mut h.daemon).success(), "{} failed", h.name);
        assert_eq!(spooled(h), 0, "{}: records left in the spool", h.name);
    }
    let want = expected(&truth);
    poll(60, "every round in PostgreSQL", || {
        let got = reported(&pg);
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?} != {want:?}"))
        }
    });
    assert!(sigint(&mut collector).success());
    // whatever is still pending is stored (and nothing is stored twice)
    collect_drain(&pg, nats_port, &dir.0);
    assert_eq!(reported(&pg), want, "after collect --drain");

    // every connection end once: A's clients, B's servers, both in C
    let conns = report(&pg, "top-conns", &["--limit", "100"]);
    let n = |h: &str| conns.iter().filter(|r| r["host"] == h).count();
    assert_eq!((n("hosta"), n("hostb"), n("hostc")), (5, 5, 8), "{conns:?}");
    // users merge across hosts: root's bytes are everyone's
    let users = report(&pg, "by-user", &[]);
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(
        users[0]["hosts"],
        serde_json::json!(["hosta", "hostb", "hostc"])
    );
    let total: u64 = want.values().map(|(s, r)| s + r).sum();
    assert_eq!(users[0]["total"].as_u64(), Some(total));
    // a window that holds everything (its start read from the table)
    let windowed = report(&pg, "bytes", &["--since", "2020-01-01T00:00:00Z"]);
    assert_eq!(windowed.len(), want.len(), "{windowed:?}");
    // one host alone
    let c_only = report(&pg, "bytes", &["--host", "hostc"]);
    assert!(
        !c_only.is_empty() && c_only.iter().all(|r| r["host"] == "hostc"),
        "{c_only:?}"
    );
    drop(nats_server);
}
