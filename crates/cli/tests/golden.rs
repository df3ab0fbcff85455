//! The command line as people see it: `--help` of every command and the
//! main error messages, compared with golden files, so what the README
//! quotes stays true and a change to them is a reviewed change.
//! `NETWHO_BLESS=1 cargo test -p netwho --test golden` rewrites the files.
//! None of these starts the sensor: they need no privilege.

#![expect(
    clippy::expect_used,
    reason = "a test: a failure is a panic with its reason"
)]

use std::path::PathBuf;
use std::process::Command;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Run netwho with `args`; its exit code, stdout and stderr as one text.
fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_netwho"))
        .args(args)
        .env("COLUMNS", "100")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .expect("netwho runs");
    format!(
        "$ netwho {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    )
}

fn check(name: &str, args: &[&str]) -> Option<String> {
    let got = run(args);
    let path = golden_dir().join(format!("{name}.txt"));
    if std::env::var_os("NETWHO_BLESS").is_some() {
        std::fs::write(&path, &got).expect("writing the golden file");
        return None;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    (got != want).then(|| {
        format!(
            "{name}: `netwho {}` differs from {} (NETWHO_BLESS=1 rewrites it):\n{got}",
            args.join(" "),
            path.display()
        )
    })
}

fn check_all(cases: &[(&str, &[&str])]) {
    let diffs: Vec<String> = cases
        .iter()
        .filter_map(|(name, args)| check(name, args))
        .collect();
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
}

#[test]
fn help_of_every_command() {
    check_all(&[
        ("help", &["--help"]),
        ("help-top", &["top", "--help"]),
        ("help-log", &["log", "--help"]),
        ("help-record", &["record", "--help"]),
        ("help-report", &["report", "--help"]),
        ("help-daemon", &["daemon", "--help"]),
        ("help-export", &["export", "--help"]),
        ("help-collect", &["collect", "--help"]),
        ("help-doctor", &["doctor", "--help"]),
        ("help-completions", &["completions", "--help"]),
    ]);
}

#[test]
fn errors_say_what_is_wrong_and_exit_2() {
    check_all(&[
        ("error-filter", &["log", "-f", "proc.name = "]),
        (
            "error-filter-column",
            &["log", "-f", "proc.name = curl and fd.rport = 99999"],
        ),
        ("error-format-ts", &["log", "--format-ts", "%Q"]),
        ("error-format", &["log", "--format", "{no_such_field}"]),
        (
            "error-report-missing",
            &["report", "-r", "/nonexistent/netwho.nwr", "top-procs"],
        ),
        (
            "error-report-kind",
            &["report", "-r", "x.nwr", "top-nothing"],
        ),
        ("error-unknown-command", &["frobnicate"]),
        ("error-completions-shell", &["completions", "tcsh"]),
        (
            "error-connect-and-read",
            &["top", "--connect", "-r", "x.nwr"],
        ),
        ("error-report-no-source", &["report", "top-procs"]),
        (
            "error-connect-no-daemon",
            &["report", "top-procs", "--connect=/nonexistent/netwho.sock"],
        ),
    ]);
}

/// The goldens say what they say: a nonzero exit for every error, and
/// `Usage` in every help (a blessed file that recorded a crash would fail).
#[test]
fn the_golden_files_are_sane() {
    let mut n = 0;
    for e in std::fs::read_dir(golden_dir()).expect("the golden directory") {
        let path = e.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a golden file");
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        if name.starts_with("help") {
            assert!(
                text.contains("exit: 0\n") && text.contains("Usage:"),
                "{name}"
            );
        } else {
            assert!(!text.contains("exit: 0\n"), "{name} exits 0");
            assert!(!text.contains("panicked"), "{name}");
        }
        n += 1;
    }
    assert_eq!(n, 21, "every case has its golden file");
}
