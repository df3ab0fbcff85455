//! The interactive view, driven through tmux like a person would: real
//! traffic between two namespaces, the process shows up with its bytes,
//! the filter bar narrows to it, the drill-down shows its parent, `q`
//! exits and the terminal is as it was.

#![expect(clippy::disallowed_methods, reason = "tests wait with real deadlines")]

use netwho_e2e::*;
use std::process::Command;

/// The row of `pid` on the screen.
fn row_of(screen: &str, pid: u64) -> Option<String> {
    screen
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
        .map(str::to_string)
}

#[test]
fn the_view_shows_the_traffic_filters_drills_down_and_restores_the_terminal() {
    if !require_tmux() {
        return;
    }
    let _s = serial();
    let ns = Netns::pair("tui", 26);
    let tmux = Tmux::start(&format!(
        "{} top --interval 0.5 --no-color; echo EXIT=$?; stty -a; sleep 30",
        netwho_bin().display()
    ));
    // ready: the status line names the attribution
    tmux.wait_for("ebpf │");
    let (server, port) = server(
        &ns.b,
        &format!(
            "tcp-server --bind {} --conns 3 --expect 70000 --reply 9000",
            ns.b4
        ),
    );
    // a shell stays the client's parent (`; true` keeps it from exec'ing)
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!(
        "ip netns exec {} {} tcp-client --to {} --port {port} --conns 3 --send 70000 --expect 9000; true",
        ns.a,
        trafficgen().display(),
        ns.b4
    ));
    let client = Gen::spawn_cmd(sh);
    let sh_pid = client.pid();
    let truth = client.finish();
    server.finish();
    let pid = truth[0]["pid"].as_u64().unwrap();

    // 3 × 70,000 B sent = 205.1 KiB, 3 × 9,000 B received = 26.4 KiB
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let row = loop {
        let s = tmux.screen();
        if let Some(r) = row_of(&s, pid).filter(|r| r.contains("0/3")) {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no row for pid {pid} with 3 closed flows:\n{s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(row.contains("netwho-trafficg"), "{row}");
    assert!(row.contains(" 205KiB "), "sent: {row}");
    assert!(row.contains(" 26.4KiB "), "received: {row}");

    // the filter bar narrows the view to the client
    tmux.keys(&["/"]);
    tmux.wait_for("Enter applies");
    tmux.keys(&["-l", &format!("proc.pid = {pid}")]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("filter: proc.pid");
    assert!(s.contains("  1 process,"), "only the client is left:\n{s}");
    assert!(row_of(&s, pid).is_some(), "the client is listed:\n{s}");

    // Enter on it: the drill-down names the shell as its parent
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("parents");
    let parents = s.lines().find(|l| l.contains("parents")).unwrap();
    assert!(parents.contains(&format!("sh[{sh_pid}]")), "{parents}");
    assert!(s.contains("cmdline  "), "{s}");

    // q: exit 0 and a terminal in cooked mode with echo again
    tmux.keys(&["q"]);
    let s = tmux.wait_for("EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
    let stty = tmux.wait_for(" icanon");
    assert!(!stty.contains("-icanon"), "still raw:\n{stty}");
    assert!(!stty.contains(" -echo "), "echo is off:\n{stty}");
}

#[test]
fn sigterm_ends_the_view_and_restores_the_terminal() {
    if !require_tmux() {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("tui-term");
    let pid_file = dir.0.join("pid");
    // the shell writes its pid, then becomes netwho
    let tmux = Tmux::start(&format!(
        "sh -c 'echo $$ > {}; exec {} top'; echo EXIT=$?; stty -a; sleep 30",
        pid_file.display(),
        netwho_bin().display()
    ));
    tmux.wait_for("ebpf │");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the netwho this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let s = tmux.wait_for("EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
    let stty = tmux.wait_for(" icanon");
    assert!(!stty.contains("-icanon"), "still raw:\n{stty}");
    assert!(!stty.contains(" -echo "), "echo is off:\n{stty}");
}
