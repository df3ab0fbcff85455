//! Coverage, measured by the collector and carried in its status records:
//! netwho runs in a network namespace of its own, so what that namespace's
//! interface carried is known exactly; then traffic no process owns lowers
//! the share, as it must.

use netwho_e2e::*;

#[test]
fn coverage_is_what_the_namespace_carried_and_flows_were_given() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("cov", 38);
    let mut nw = Netwho::start_in_netns(&ns.a, "cov", &["--status-interval", "1"]);
    // 2 MiB out, 1 MiB back: every byte of it a process's in namespace a
    const MB: u64 = 1 << 20;
    let (server, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --expect {} --reply {}",
            ns.b4,
            2 * MB,
            MB
        ),
    );
    let truth = run_gen(
        &ns.a,
        &format!(
            "tcp-client --to {} --port {port} --send {} --expect {}",
            ns.b4,
            2 * MB,
            MB
        ),
    );
    server.finish();
    let pid = truth[0]["pid"].clone();
    nw.wait_until(
        "the close and a status after it",
        std::time::Duration::from_secs(20),
        |recs| {
            let close = recs
                .iter()
                .position(|r| r["event"] == "close" && r["pid"] == pid);
            close.is_some_and(|i| {
                recs[i..]
                    .iter()
                    .any(|r| r["event"] == "status" && r["coverage"]["share"].is_number())
            })
        },
    );
    let recs = nw.records();
    let c = &last_status(&recs)["coverage"];
    let share = c["share"].as_f64().unwrap();
    let iface = c["interface_bytes"].as_u64().unwrap();
    let given = c["attributed_bytes"].as_u64().unwrap();
    assert_eq!(c["netns"].as_u64().unwrap(), Netns::inode(&ns.a), "{c}");
    assert!(iface >= 3 * MB, "{c}");
    // the rest is the link's own chatter (neighbour discovery, ARP); above
    // 1 by a little: a virtual link counts a GSO packet's headers once,
    // netwho counts them per segment, as a real wire carries them
    assert!(share > 0.97 && share < 1.06, "{c}");

    // 1 MiB of datagrams into namespace a to a port nobody listens on:
    // the interface carries them, no process gets them
    run_gen(
        &ns.b,
        &format!(
            "udp-spray --to {} --port-base 9 --count 1 --size 1000 --src {} --rounds 1024",
            ns.a4, ns.b4
        ),
    );
    let (_, records) = nw.stop();
    let c = &last_status(&records)["coverage"];
    let share = c["share"].as_f64().unwrap();
    let iface2 = c["interface_bytes"].as_u64().unwrap();
    let given2 = c["attributed_bytes"].as_u64().unwrap();
    assert!(iface2 >= iface + 1024 * 1000, "{c}");
    assert!(
        given2 < given + 64 * 1024,
        "nobody's datagrams were given to a flow: {c}"
    );
    eprintln!("coverage after the datagrams: {c}");
    assert!(share > 0.6 && share < 0.9, "{c}");
}
