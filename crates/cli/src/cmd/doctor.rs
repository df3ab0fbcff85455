//! `netwho doctor`: whether netwho can run on this machine, what it would
//! run with and what would be degraded, each with the reason and what to do.

use crate::args::DoctorArgs;
use crate::failure::{EXIT_RUNTIME, Failure};
use netwho_sensor::ebpf::doctor::{self, Check, Diagnosis, Verdict};
use std::fmt::Write as _;

/// The daemon's API group (`api.group`) exists; without it only root sees
/// everyone's traffic over the API.
fn api_group() -> Check {
    match netwho_enrich::users::gid_of("netwho") {
        Some(gid) => Check {
            name: "api_group",
            verdict: Verdict::Ok,
            detail: format!("group netwho ({gid}): its members see everything over the API"),
        },
        None => Check {
            name: "api_group",
            verdict: Verdict::Warn,
            detail: "no group netwho: over the daemon's API only root sees every user's traffic \
                     ('groupadd --system netwho', then 'usermod -aG netwho USER')"
                .into(),
        },
    }
}

/// The findings as text.
pub fn text(d: &Diagnosis) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "netwho doctor: Linux {}", d.kernel);
    for c in &d.checks {
        let _ = writeln!(s, "  {:<5} {:<14} {}", c.verdict.word(), c.name, c.detail);
    }
    if let Some(why) = &d.hooks_not_probed {
        let _ = writeln!(s, "hooks: not probed ({why})");
    } else if !d.hooks.is_empty() {
        let _ = writeln!(s, "hooks:");
        for h in &d.hooks {
            let kind = if h.required { "required" } else { "optional" };
            match &h.error {
                None => {
                    let _ = writeln!(s, "  ok    {:<30} {kind}", h.hook);
                }
                Some(e) => {
                    let word = if h.required { "FAIL" } else { "warn" };
                    let first = e.lines().next().unwrap_or("");
                    let _ = writeln!(s, "  {word:<5} {:<30} {kind}: {first}", h.hook);
                    for l in e.lines().skip(1) {
                        let _ = writeln!(s, "        {l}");
                    }
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "sensor path: {}",
        d.sensor_path.unwrap_or("none (netwho cannot start)")
    );
    if d.sensor_path.is_some() {
        if d.degradations.is_empty() {
            let _ = writeln!(s, "degraded: nothing");
        } else {
            let _ = writeln!(s, "degraded:");
            for g in &d.degradations {
                let _ = writeln!(s, "  {g}");
            }
        }
    }
    let _ = writeln!(
        s,
        "{}",
        if d.ebpf_can_run() {
            "verdict: netwho can run here"
        } else if d.reduced {
            "verdict: netwho can run here, reduced: the kernel programs cannot (see FAIL above), \
             the sock_diag sensor can ('--sensor auto' falls back to it)"
        } else {
            "verdict: netwho cannot run here as things are (see FAIL above)"
        }
    );
    s
}

/// The findings as one JSON object.
pub fn json(d: &Diagnosis) -> serde_json::Value {
    serde_json::json!({
        "kernel": d.kernel,
        "can_run": d.can_run(),
        "reduced": d.reduced,
        "sensor_path": d.sensor_path,
        "checks": d.checks.iter().map(|c| serde_json::json!({
            "name": c.name, "verdict": c.verdict.word().to_ascii_lowercase(), "detail": c.detail,
        })).collect::<Vec<_>>(),
        "hooks_probed": d.hooks_not_probed.is_none(),
        "hooks_not_probed": d.hooks_not_probed,
        "hooks": d.hooks.iter().map(|h| serde_json::json!({
            "hook": h.hook, "required": h.required, "attached": h.error.is_none(),
            "error": h.error, "without": h.without,
        })).collect::<Vec<_>>(),
        "degradations": d.degradations,
    })
}

/// Run the checks and print them; exit 1 if netwho cannot run here.
pub fn doctor(a: &DoctorArgs, payload: netwho_sensor::ebpf::PayloadPath) -> Result<(), Failure> {
    let mut d = doctor::diagnose(!a.no_load, payload);
    d.checks.push(api_group());
    let out = if a.json {
        let mut j = json(&d).to_string();
        j.push('\n');
        j
    } else {
        text(&d)
    };
    crate::failure::output(std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        out.as_bytes(),
    ))?;
    if d.can_run() {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_RUNTIME,
            error: anyhow::anyhow!(
                "netwho cannot run on this machine as it is; each FAIL above says what to do"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnosis(reduced: bool) -> Diagnosis {
        Diagnosis {
            kernel: "5.10.0-nobtf".into(),
            checks: vec![Check {
                name: "btf",
                verdict: Verdict::Fail,
                detail: "/sys/kernel/btf/vmlinux is missing".into(),
            }],
            sensor_path: reduced.then_some(doctor::PATH_SOCK_DIAG),
            reduced,
            degradations: if reduced {
                netwho_sensor::diag::degradations(&Default::default())
            } else {
                Vec::new()
            },
            ..Diagnosis::default()
        }
    }

    #[test]
    fn without_the_kernel_programs_the_reduced_sensor_is_the_verdict() {
        let d = diagnosis(true);
        assert!(d.can_run() && !d.ebpf_can_run());
        let t = text(&d);
        assert!(t.contains("sensor path: sock_diag (reduced)"), "{t}");
        assert!(t.contains("verdict: netwho can run here, reduced"), "{t}");
        assert!(t.contains("reduced mode (sock_diag)"), "{t}");
        let j = json(&d);
        assert_eq!(
            (j["can_run"].clone(), j["reduced"].clone()),
            (true.into(), true.into())
        );
        // nor that: nothing runs
        let d = diagnosis(false);
        assert!(!d.can_run());
        let t = text(&d);
        assert!(t.contains("verdict: netwho cannot run here"), "{t}");
        assert!(t.contains("sensor path: none"), "{t}");
    }
}
