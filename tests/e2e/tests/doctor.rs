//! `netwho doctor` on the real kernel: as root every hook is probed and
//! netwho can run; as an unprivileged user nothing is loaded, the missing
//! privileges are named and the exit status says netwho cannot run.

#![expect(
    clippy::expect_used,
    reason = "a test: a failure is a panic with its reason"
)]

use netwho_e2e::*;
use serde_json::Value;
use std::process::Command;

fn doctor(user: Option<&TestUser>, args: &[&str]) -> (i32, String) {
    let mut c = match user {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={}", u.uid),
                &format!("--regid={}", u.gid),
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(netwho_bin());
            c
        }
        None => Command::new(netwho_bin()),
    };
    let out = c
        .arg("doctor")
        .args(args)
        .output()
        .expect("netwho doctor runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn as_root_every_hook_is_probed_and_netwho_can_run() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let (code, out) = doctor(None, &["--json"]);
    let d: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(code, 0, "{out}");
    assert_eq!(d["can_run"], true);
    assert_eq!(d["hooks_probed"], true);
    let hooks = d["hooks"].as_array().expect("hooks");
    assert_eq!(hooks.len(), 16, "{out}");
    for h in hooks {
        assert_eq!(
            h["attached"], true,
            "on this kernel every hook attaches: {h}"
        );
    }
    assert!(
        d["sensor_path"]
            .as_str()
            .is_some_and(|p| p.contains("sock_send_length")),
        "{out}"
    );
    assert_eq!(d["degradations"], serde_json::json!([]));
    let names: Vec<&str> = d["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for want in [
        "privileges",
        "btf",
        "cgroup2",
        "lockdown",
        "bpf_jit",
        "hooks",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }

    // the text says the same, and the programs it loaded are gone: a
    // second run attaches every hook again
    let (code, text) = doctor(None, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("verdict: netwho can run here"), "{text}");
    assert!(text.contains("16 of 16 attached"), "{text}");
}

#[test]
fn an_unprivileged_user_is_told_what_is_missing_and_nothing_is_loaded() {
    if !require_root() {
        return;
    }
    let _s = serial();
    let u = TestUser::create("nwdoctor");
    let (code, out) = doctor(Some(&u), &["--json"]);
    assert_eq!(code, 1, "netwho cannot run as this user: {out}");
    let d: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(d["can_run"], false);
    assert_eq!(d["hooks_probed"], false);
    assert_eq!(d["hooks"], serde_json::json!([]));
    let privileges = d["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "privileges")
        .expect("a privileges check");
    assert_eq!(privileges["verdict"], "fail");
    let detail = privileges["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("CAP_BPF") && detail.contains("setcap"),
        "{detail}"
    );
    assert!(d["sensor_path"].is_null());
}
