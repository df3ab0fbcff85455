//! The reduced sensor (`--sensor sock-diag`), forced on the host kernel:
//! what a kernel without BTF gets. Connections that live across a look are
//! attributed with exact TCP payload; those that do not are counted as
//! missed, with their bytes; an owner's exit (the proc connector) hands a
//! shared socket on to the process still holding it.

use netwho_e2e::*;
use serde_json::Value;

fn reduced(tag: &str, interval: &str) -> Netwho {
    Netwho::start(tag, &["--sensor", "sock-diag", "--look-interval", interval])
}

#[test]
fn held_connections_are_exact_and_the_status_says_what_runs() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("rbulk", 39);
    let nw = reduced("rbulk", "0.05");
    const MB: u64 = 1 << 20;
    let truth = tcp_exchange(
        &ns,
        &format!("--expect {} --reply {}", 200 * MB, 120 * MB),
        &format!("--send {} --expect {}", 200 * MB, 120 * MB),
    );
    let all = stop_all(nw, &truth);
    let inodes = [Netns::inode(&ns.a), Netns::inode(&ns.b)];
    assert_matches(&truth, &in_netns(&all, &inodes), "sock_diag");
    let st = last_status(&all);
    assert_eq!(st["attribution"], "sock_diag", "{st}");
    assert_eq!(
        st["hooks"],
        serde_json::json!(["sock_diag dump", "sock_diag destroy", "proc connector"])
    );
    let degradations = st["degradations"].to_string();
    assert!(degradations.contains("reduced mode (sock_diag)"), "{st}");
    assert!(degradations.contains("UDP"), "{st}");
    assert!(
        st.get("coverage").is_none(),
        "no wire counters, no coverage: {st}"
    );
    assert_eq!(st["drops"]["notices_lost"], 0, "{st}");
}

#[test]
fn a_connection_older_than_netwho_is_counted_from_its_first_look() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("rold", 40);
    let (nw, truth) = older_connection(&ns, || reduced("rold", "0.05"));
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "sock_diag");
}

#[test]
fn short_connections_are_attributed_or_counted_as_missed() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("rshort", 41);
    let nw = reduced("rshort", "0.25");
    const CONNS: usize = 300;
    let truth = tcp_exchange(
        &ns,
        &format!("--conns {CONNS} --expect 1000 --reply 1000"),
        &format!("--conns {CONNS} --send 1000 --expect 1000"),
    );
    assert_eq!(truth.len(), 2 * CONNS);
    // nothing more to wait for than the looks that follow
    std::thread::sleep(std::time::Duration::from_millis(800));
    let (status, all) = nw.stop();
    assert!(status.success());
    let inodes = [Netns::inode(&ns.a), Netns::inode(&ns.b)];
    let records = in_netns(&all, &inodes);
    // every connection a look saw is exact; the others are counted
    let mut attributed = 0u64;
    for t in &truth {
        let found: Vec<&Value> = records
            .iter()
            .filter(|r| {
                r["event"] == "close"
                    && r["pid"] == t["pid"]
                    && r["lport"] == t["lport"]
                    && r["rport"] == t["rport"]
            })
            .collect();
        match found.as_slice() {
            [] => {}
            [r] => {
                attributed += 1;
                assert_eq!(
                    (&r["bytes_sent"], &r["bytes_recv"], &r["comm"]),
                    (&t["bytes_sent"], &t["bytes_recv"], &t["comm"]),
                    "{r}\n{t}"
                );
                assert_eq!(r["attribution"], "sock_diag");
            }
            many => panic!("{} records for {t}", many.len()),
        }
    }
    let st = last_status(&all);
    let missed = st["drops"]["missed_sockets"].as_u64().unwrap();
    let missed_bytes = st["drops"]["missed_bytes"].as_u64().unwrap();
    let unattributed = truth.len() as u64 - attributed;
    // (other processes of this machine may have been missed too)
    assert!(
        missed >= unattributed,
        "{unattributed} sockets unattributed, {missed} counted missed: {st}"
    );
    assert!(
        missed_bytes >= unattributed * 2000,
        "{unattributed} sockets of 2000 bytes each, {missed_bytes} missed bytes"
    );
    eprintln!(
        "reduced mode, {CONNS} sequential 1000+1000-byte connections, looks every 250 ms: \
         {attributed} of {} sockets attributed ({:.1} %), {missed} counted missed",
        truth.len(),
        100.0 * attributed as f64 / truth.len() as f64
    );
}

#[test]
fn an_exited_owner_hands_the_connection_to_its_child() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("rfork", 42);
    let nw = reduced("rfork", "0.1");
    let (server, port) = server(
        &ns.b,
        &format!("tcp-server --bind {} --expect 80000 --reply 400000", ns.b4),
    );
    let mut truth = run_gen(
        &ns.a,
        &format!(
            "handoff --to {} --port {port} --parent-send 30000 --child-send 50000 \
             --child-expect 400000 --child-name nwt-heir --hold-ms 700 --parent-exits",
            ns.b4
        ),
    );
    assert_eq!(truth.len(), 2, "{truth:?}");
    truth.extend(server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "sock_diag");
    let parent = truth.iter().find(|t| t["role"] == "parent").unwrap();
    let closed = records
        .iter()
        .find(|r| r["event"] == "close" && r["pid"] == parent["pid"])
        .unwrap();
    assert_eq!(closed["close_reason"], "process_exit", "{closed}");
}

#[test]
fn auto_uses_the_kernel_programs_where_they_run() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let nw = Netwho::start("rauto", &["--sensor", "auto"]);
    let (status, all) = nw.stop();
    assert!(status.success());
    assert_eq!(last_status(&all)["attribution"], "ebpf");
}

/// Where the kernel refuses a required hook (fexit is refused on the CI
/// machines' kernel; on a kernel that allows it, the programs run), `auto`
/// falls back to the reduced sensor and says why, `ebpf` refuses, and
/// `netwho doctor` says netwho can run, reduced.
#[test]
fn a_refused_hook_falls_back_to_the_reduced_sensor() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let doctor = std::process::Command::new(netwho_bin())
        .args(["doctor", "--json", "--payload-hooks", "fexit"])
        .output()
        .unwrap();
    assert!(doctor.status.success(), "{doctor:?}");
    let d: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let refused = d["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["required"] == true && h["attached"] == false);
    assert_eq!(d["reduced"], refused, "{d}");
    let nw = Netwho::start("rfall", &["--payload-hooks", "fexit"]);
    let (status, all) = nw.stop();
    assert!(status.success());
    let st = last_status(&all);
    if refused {
        assert_eq!(st["attribution"], "sock_diag", "{st}");
        assert!(
            st["degradations"][0]
                .as_str()
                .unwrap()
                .contains("the kernel programs could not run: could not attach hook fexit/"),
            "{st}"
        );
        let strict = std::process::Command::new(netwho_bin())
            .args([
                "log",
                "--json",
                "--sensor",
                "ebpf",
                "--payload-hooks",
                "fexit",
            ])
            .output()
            .unwrap();
        assert_eq!(strict.status.code(), Some(2), "{strict:?}");
        let err = String::from_utf8_lossy(&strict.stderr);
        assert!(err.contains("could not attach hook fexit/"), "{err}");
    } else {
        assert_eq!(st["attribution"], "ebpf", "{st}");
    }
}
