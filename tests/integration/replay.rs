//! `ctrace record` and `ctrace replay`: a capture of a live session, replayed offline by an
//! unprivileged user, gives the same NDJSON, record for record, as the live run printed.

use std::{
    os::unix::fs::PermissionsExt as _,
    process::{Command, Stdio},
    time::Duration,
};

use ctrace_tests::{
    get, require, require_containerd, require_docker, require_runc, Bounded as _, CtrContainer,
    DockerContainer, RuncContainer, TempDir, Watch,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn replay(bin: &std::path::Path, capture: &std::path::Path, args: &[&str]) -> (String, String) {
    // As nobody: a replay needs no root, no kernel and no runtime.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin)
        .arg("replay")
        .arg(capture)
        .args(args)
        // A replay out of step names the answer it wanted and the frame it found.
        .env("CTRACE_LOG", "warn,tracer::capture=debug")
        .stdin(Stdio::null())
        .output_bounded()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay failed: {stderr}");
    (stdout, stderr)
}

#[test]
fn a_replayed_capture_prints_what_the_live_session_printed() {
    let Some(bin) = require() else { return };
    if !require_docker() || !require_containerd() || !require_runc() {
        return;
    }
    let dir = TempDir::new("replay");
    let capture = dir.0.join("lab.capture");
    let w = Watch::start_record(&bin, &capture, &["--host"]);
    let oom = DockerContainer::run("ctrace-it-replay-oom", &["-m", "32m"], &["sleep", "300"]);
    let victim = DockerContainer::run("ctrace-it-replay-kill", &[], &["sleep", "300"]);
    let _slow = DockerContainer::run(
        "ctrace-it-replay-slow",
        &["--cpus", "0.01"],
        &["sh", "-c", "while :; do :; done"],
    );
    let denied = DockerContainer::run(
        "ctrace-it-replay-cap",
        &["--cap-drop", "ALL"],
        &["chown", "1", "/tmp"],
    );
    let st = Command::new("docker")
        .args(["exec", &oom.id, "tail", "/dev/zero"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status_bounded()
        .unwrap();
    assert_eq!(st.code(), Some(137), "the child was OOM-killed");
    let ctr = CtrContainer::run("default", "ctrace-it-replay-ctr", &[], &["sleep", "300"]);
    let runc = RuncContainer::run(None, "ctrace-it-replay-runc", &["sleep", "300"]);
    for init in [victim.init_pid(), ctr.init_pid(), runc.init_pid()] {
        assert!(Command::new("/bin/sh")
            .args(["-c", &format!("kill -9 {init}")])
            .status_bounded()
            .unwrap()
            .success());
    }
    for (what, ty, name) in [
        ("the kill under containerd", "kill", "ctrace-it-replay-ctr"),
        ("the kill under runc", "kill", "ctrace-it-replay-runc"),
        ("the OOM kill", "oom_kill", "ctrace-it-replay-oom"),
        ("the kill", "kill", "ctrace-it-replay-kill"),
        ("the throttling", "cpu_throttle", "ctrace-it-replay-slow"),
        ("the denied chown", "capability", "ctrace-it-replay-cap"),
    ] {
        w.wait_for(what, WAIT, |v| {
            v["type"] == ty && get(v, "container.name") == name
        });
    }
    drop(denied);
    let (live, stderr) = w.stop();
    assert!(
        stderr.contains(&format!("ctrace: capture {}: ", capture.display())),
        "{stderr}"
    );
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&capture, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (json, stderr) = replay(&bin, &capture, &["--json", "--host"]);
    assert!(
        !stderr.contains("did not match") && !stderr.contains("cut short"),
        "{stderr}"
    );
    let replayed: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(live.len() > 10, "{} live records", live.len());
    for (i, (a, b)) in live.iter().zip(&replayed).enumerate() {
        assert_eq!(a, b, "record {i} differs");
    }
    assert_eq!(live.len(), replayed.len(), "as many records");
    assert_eq!(replayed.last().unwrap()["type"], "stats");

    // The lines for people tell the same incidents.
    let (console, _) = replay(&bin, &capture, &["--container", "ctrace-it-replay-kill"]);
    assert!(console.contains("killed by SIGKILL from sh"), "{console}");
    assert!(!console.contains("ctrace-it-replay-oom"), "{console}");

    // `CTRACE_UPDATE_CAPTURES=1`: this run becomes the golden capture of `tracer/tests`
    // (the live NDJSON and the console lines of its replay beside it).
    if std::env::var_os("CTRACE_UPDATE_CAPTURES").is_some() {
        let golden =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tracer/tests/captures");
        std::fs::create_dir_all(&golden).unwrap();
        std::fs::copy(&capture, golden.join("lab.capture")).unwrap();
        let (console, _) = replay(&bin, &capture, &["--color", "never", "--host"]);
        std::fs::write(golden.join("lab.txt"), console).unwrap();
        std::fs::write(golden.join("lab.ndjson"), &json).unwrap();
        eprintln!("golden capture written to {}", golden.display());
    }
}

#[test]
fn a_file_that_is_not_a_capture_is_refused_with_its_name() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("replay-bad");
    let f = dir.0.join("journal.ndjson");
    std::fs::write(&f, "{\"type\":\"exec\"}\n").unwrap();
    let out = Command::new(&bin)
        .arg("replay")
        .arg(&f)
        .output_bounded()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a ctrace capture") && stderr.contains("journal.ndjson"),
        "{stderr}"
    );
}
