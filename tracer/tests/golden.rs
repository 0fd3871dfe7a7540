//! Golden captures: `tracer/tests/captures/*.capture` were recorded in the lab by
//! `ctrace record` (the integration test `replay::a_replayed_capture_prints_what_the_live_session_printed`
//! with `CTRACE_UPDATE_CAPTURES=1`: OOM kill, kills under Docker, containerd and runc, CPU
//! throttling, capability denials). Replaying one must print, byte for byte, the NDJSON the
//! live session printed (`.ndjson`) and the console lines kept beside it (`.txt`). These run
//! without root, a kernel or a container runtime.

use std::{path::Path, process::Command};

fn replay(capture: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("replay")
        .arg(capture)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running ctrace replay");
    assert!(
        out.status.success(),
        "ctrace replay {}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("did not match") && !stderr.contains("cut short"),
        "{stderr}"
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The first line that differs, for a readable failure.
fn assert_same(what: &str, got: &str, want: &str) {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{what}: line {} differs", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{what}: as many lines"
    );
    assert_eq!(got, want, "{what}");
}

fn captures() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/captures");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "capture"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no captures in {}", dir.display());
    v
}

#[test]
fn replayed_ndjson_is_what_the_live_session_printed() {
    for c in captures() {
        let want = std::fs::read_to_string(c.with_extension("ndjson")).unwrap();
        let got = replay(&c, &["--json", "--host"]);
        assert_same(&c.display().to_string(), &got, &want);
        // And it holds the incidents the capture was made for.
        for ty in [
            "\"type\":\"oom_kill\"",
            "\"type\":\"kill\"",
            "\"type\":\"cpu_throttle\"",
        ] {
            assert!(got.contains(ty), "{}: no {ty}", c.display());
        }
    }
}

#[test]
fn replayed_console_lines_are_the_golden_ones() {
    for c in captures() {
        let want = std::fs::read_to_string(c.with_extension("txt")).unwrap();
        let got = replay(&c, &["--color", "never", "--host"]);
        assert_same(&c.display().to_string(), &got, &want);
    }
}

#[test]
fn a_replay_can_show_one_container_only() {
    for c in captures() {
        let got = replay(&c, &["--json", "--container", "ctrace-it-replay-runc"]);
        let lines: Vec<serde_json::Value> = got
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.iter().any(|v| v["type"] == "kill"), "{got}");
        // Every record touches it: as the process's container, or as a signal's target.
        for v in &lines {
            let names = [&v["container"]["name"], &v["target"]["container"]["name"]];
            assert!(
                v["type"] == "stats" || names.iter().any(|n| *n == "ctrace-it-replay-runc"),
                "{v}"
            );
        }
    }
}
