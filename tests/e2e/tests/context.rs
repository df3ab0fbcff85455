//! Process context and the filter language, end to end: units and cgroups,
//! parent chains, resources, hashes, filters, and kernel scopes that drop
//! other traffic at the source while still catching 1 ms children.

#![expect(clippy::unwrap_used, reason = "tests")]

use netwho_e2e::*;
use serde_json::Value;
use std::process::Command;

fn final_status(records: &[Value]) -> &Value {
    records
        .iter()
        .rev()
        .find(|r| r["event"] == "status")
        .unwrap()
}

/// Flow records of the test's namespaces.
fn of_netns(records: &[Value], ns: &Netns) -> Vec<Value> {
    in_netns(records, &[Netns::inode(&ns.a), Netns::inode(&ns.b)])
}

/// No record at all for these processes.
fn assert_absent(records: &[Value], truth: &[Value]) {
    let p = pids(truth);
    let seen: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] != "status" && p.contains(&r["pid"].as_u64().unwrap_or(0)))
        .collect();
    assert!(seen.is_empty(), "flows outside the filter: {seen:?}");
}

#[test]
fn a_unit_scope_catches_its_short_lived_children_and_drops_the_rest() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("unit", 20);
    let unit = format!("netwho-e2e-{}.service", std::process::id());
    let nw = Netwho::start("unit", &["-f", &format!("unit = {unit}")]);
    // created after netwho started: the kernel names it and scopes it at birth
    let cg = TestCgroup::create(&unit);
    let (server, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 24000 --count 20", ns.b4),
    );
    // ten processes that live ~1 ms each, in the unit...
    let inside = Gen::spawn_in(
        &cg,
        &ns.a,
        &format!(
            "spawn-udp --to {} --port-base 24000 --count 10 --size 100 --src {}",
            ns.b4, ns.a4
        ),
    )
    .finish();
    // ...and ten outside it
    let outside = run_gen(
        &ns.a,
        &format!(
            "spawn-udp --to {} --port-base 24010 --count 10 --size 100 --src {}",
            ns.b4, ns.a4
        ),
    );
    assert_eq!(pids(&inside).len(), 10);
    let server_truth = server.finish();
    let all = stop_all(nw, &inside);
    let records = of_netns(&all, &ns);
    assert_matches(&inside, &records, "ebpf");
    assert_absent(&all, &outside);
    assert_absent(&all, &server_truth);
    for r in all.iter().filter(|r| r["event"] != "status") {
        assert_eq!(r["unit"], unit.as_str(), "{r}");
        assert_eq!(r["cgroup"], cg.path.as_str(), "{r}");
    }
    let st = final_status(&all);
    assert_eq!(st["scope"], format!("cgroup under ({unit})"), "{st}");
    assert!(st["kernel"]["scoped_out"].as_u64().unwrap() >= 10, "{st}");
}

#[test]
fn a_uid_scope_drops_other_users_at_the_source() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let user = TestUser::create("nwtscope");
    let ns = Netns::pair("uid", 21);
    let nw = Netwho::start("uid", &["-f", &format!("user.uid = {}", user.uid)]);
    let (server, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 24100 --count 16", ns.b4),
    );
    let theirs = run_gen(
        &ns.a,
        &format!(
            "spawn-udp --to {} --port-base 24100 --count 8 --size 64 --src {} --as-user {}",
            ns.b4, ns.a4, user.name
        ),
    );
    let roots = run_gen(
        &ns.a,
        &format!(
            "spawn-udp --to {} --port-base 24108 --count 8 --size 64 --src {}",
            ns.b4, ns.a4
        ),
    );
    assert!(theirs.iter().all(|t| t["uid"] == user.uid));
    let server_truth = server.finish();
    let all = stop_all(nw, &theirs);
    assert_matches(&theirs, &of_netns(&all, &ns), "ebpf");
    assert_absent(&all, &roots);
    assert_absent(&all, &server_truth);
    assert!(
        all.iter()
            .filter(|r| r["event"] != "status")
            .all(|r| r["uid"] == user.uid && r["user"] == user.name.as_str())
    );
    let st = final_status(&all);
    assert_eq!(st["scope"], format!("uid in ({})", user.uid), "{st}");
    assert!(st["kernel"]["scoped_out"].as_u64().unwrap() >= 8, "{st}");
}

fn sha256(path: &std::path::Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    out.split_whitespace().next().unwrap().to_string()
}

#[test]
fn grandchildren_name_their_chain_and_a_hungry_process_its_peak() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("ctx", 22);
    let mut nw = Netwho::start("ctx", &[]);
    // a binary's hash is computed off the hot path: the first records of a
    // binary netwho has not seen before may lack it. Warm up until one has it.
    let want_hash = sha256(&trafficgen());
    let mut hashed = false;
    for _ in 0..20 {
        let probe = run_gen(
            &ns.a,
            &format!(
                "udp-oneshot --to {} --port-base 9 --count 1 --size 1 --src {}",
                ns.b4, ns.a4
            ),
        );
        let p = pids(&probe);
        nw.wait_until(
            "the probe's close",
            std::time::Duration::from_secs(20),
            |recs| closes_for(recs, &p) >= 1,
        );
        hashed = nw.records().iter().any(|r| {
            r["event"] == "close"
                && p.contains(&r["pid"].as_u64().unwrap_or(0))
                && r["exe_sha256"] == want_hash.as_str()
        });
        if hashed {
            break;
        }
    }
    assert!(hashed, "the generator's hash never appeared");
    let (server, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base 24200 --count 4", ns.b4),
    );
    // grandchildren of this test: test -> trafficgen -> udp-oneshot
    let mut truth = run_gen(
        &ns.a,
        &format!(
            "spawn-udp --to {} --port-base 24200 --count 3 --size 32 --src {}",
            ns.b4, ns.a4
        ),
    );
    let mut hungry = Gen::spawn(
        Some(&ns.a),
        &format!(
            "hungry --mib 64 --to {} --port-base 24203 --count 1 --size 32 --src {}",
            ns.b4, ns.a4
        ),
    );
    let allocated = hungry.wait_for("allocated")["allocated"].as_u64().unwrap();
    let hog = hungry.finish();
    truth.extend(hog.clone());
    truth.extend(server.finish());
    let records = stop_when_closed(nw, &truth, &[&ns.a, &ns.b]);
    assert_matches(&truth, &records, "ebpf");

    let me = u64::from(std::process::id());
    for t in truth.iter().filter(|t| t["role"] == "client").take(3) {
        let r = records
            .iter()
            .find(|r| r["event"] == "close" && r["pid"] == t["pid"])
            .unwrap();
        let parents = r["parents"].as_array().unwrap();
        assert_eq!(parents[0]["pid"], r["ppid"], "{r}");
        assert_eq!(parents[0]["comm"], "netwho-trafficg", "{r}");
        assert_eq!(
            parents[1]["pid"], me,
            "the test itself is the grandparent: {r}"
        );
        assert_eq!(parents.last().unwrap()["pid"], 1, "up to PID 1: {r}");
        assert_eq!(r["exe_sha256"], want_hash.as_str(), "{r}");
    }

    let r = records
        .iter()
        .find(|r| r["event"] == "close" && r["pid"] == hog[0]["pid"])
        .unwrap();
    let peak = r["rss_peak_bytes"].as_u64().unwrap();
    assert!(
        peak > allocated,
        "peak {peak} <= allocated {allocated}: {r}"
    );
    assert!(r["cpu_pct"].as_f64().is_some(), "{r}");
    assert!(r["major_faults"].as_u64().is_some(), "{r}");
}

/// Traffic of two kinds in namespace A: to B over the veth (10.231.23.0/24)
/// and over A's loopback. The truth of each.
fn two_kinds(ns: &Netns, port: u16) -> (Vec<Value>, Vec<Value>) {
    let (remote_srv, _) = server(
        &ns.b,
        &format!("udp-server --bind {} --port-base {port} --count 2", ns.b4),
    );
    let (local_srv, _) = server(
        &ns.a,
        &format!(
            "udp-server --bind 127.0.0.1 --port-base {} --count 2",
            port + 10
        ),
    );
    let mut remote = run_gen(
        &ns.a,
        &format!(
            "udp-oneshot --to {} --port-base {port} --count 2 --size 40 --src {}",
            ns.b4, ns.a4
        ),
    );
    let mut local = run_gen(
        &ns.a,
        &format!(
            "udp-oneshot --to 127.0.0.1 --port-base {} --count 2 --size 50 --src 127.0.0.1",
            port + 10
        ),
    );
    remote.extend(remote_srv.finish());
    local.extend(local_srv.finish());
    (remote, local)
}

#[test]
fn filters_select_exactly_the_flows_they_name() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("filter", 23);
    let cases = [
        ("fd.rnet = 10.231.23.0/24", true),
        ("not fd.is_local", true),
        ("proc.name =~ '^netwho-traf.*g$' and fd.is_local", false),
    ];
    for (i, (filter, wants_remote)) in cases.into_iter().enumerate() {
        let nw = Netwho::start("filter", &["-f", filter]);
        let port = 24300 + 20 * u16::try_from(i).unwrap();
        let (remote, local) = two_kinds(&ns, port);
        let (want, other) = if wants_remote {
            (remote, local)
        } else {
            (local, remote)
        };
        let all = stop_all(nw, &want);
        assert_matches(&want, &of_netns(&all, &ns), "ebpf");
        assert_absent(&all, &other);
        assert!(final_status(&all)["filter"].as_str().is_some());
    }
}

#[test]
fn bad_filters_exit_2_and_point_at_the_problem() {
    for (filter, says) in [
        ("proc.nam = curl", "did you mean proc.name?"),
        ("fd.rport = 70000", "is not a port"),
        ("proc.name = curl and", "the filter ends here"),
        (
            "user.name = no-such-user-netwho",
            "no user named 'no-such-user-netwho'",
        ),
    ] {
        let out = Command::new(netwho_bin())
            .args(["log", "--json", "-f", filter])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{filter}: {err}");
        assert!(err.contains(says), "{filter}: {err}");
        assert!(out.stdout.is_empty(), "nothing recorded: {filter}");
    }
    // the caret sits under the offending field
    let out = Command::new(netwho_bin())
        .args(["log", "proc.name", "=", "x", "and", "usr.name", "=", "y"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("  proc.name = x and usr.name = y\n                    ^^^^^^^^"),
        "{err}"
    );
}
