//! Least privilege (issue 16, item 8): `watch` runs as uid 0 with exactly CAP_BPF and
//! CAP_PERFMON (everything else dropped from the bounding set, so an exec'd root process has
//! no other), and fails with one line naming the capability when either is dropped. `ps`,
//! `inspect`, `postmortem` and `history` load no BPF: they run with neither.

use std::process::Command;

use ctrace_tests::{require, Bounded as _};

/// Run `ctrace ARGS` as uid 0 limited to `caps` (setpriv syntax: `+bpf,+perfmon`, or ``).
fn with_caps(bin: &std::path::Path, caps: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!(
        "--bounding-set=-all{}{caps}",
        if caps.is_empty() { "" } else { "," }
    ))
    .args(["--inh-caps=-all", "--"])
    .arg(bin)
    .args(args);
    cmd
}

#[test]
fn watch_runs_with_exactly_bpf_and_perfmon() {
    let Some(bin) = require() else { return };
    // --duration: a bounded run that must reach tracing and stop cleanly on its own.
    let out = with_caps(
        &bin,
        "+bpf,+perfmon",
        &[
            "watch",
            "--json",
            "--no-journal",
            "--host",
            "--events",
            "exec,signal,oom",
            "--duration",
            "1",
        ],
    )
    .output_bounded()
    .expect("setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(err.contains("ctrace: tracing"), "{err}");
    assert!(!err.contains("warning"), "nothing degraded: {err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stats: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a stats record")).unwrap();
    assert_eq!(stats["type"], "stats", "{stdout}");
    let programs = stats["programs"].as_array().expect("programs");
    assert!(
        programs.len() >= 3 && programs.iter().all(|p| p["id"].as_u64().is_some()),
        "every program loaded and attached: {stats}"
    );
}

#[test]
fn watch_names_the_capability_it_lacks() {
    let Some(bin) = require() else { return };
    for (caps, lacks) in [
        ("+bpf", "CAP_PERFMON"),
        ("+perfmon", "CAP_BPF"),
        ("", "CAP_BPF and CAP_PERFMON"),
    ] {
        let out = with_caps(&bin, caps, &["watch", "--no-journal"])
            .output_bounded()
            .expect("setpriv");
        assert_eq!(out.status.code(), Some(2), "{caps}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with(&format!(
                "ctrace: error: ctrace needs CAP_BPF and CAP_PERFMON to load its eBPF programs; \
                 this process lacks {lacks} ("
            )),
            "{caps}: {err}"
        );
    }
}

#[test]
fn ps_and_history_need_no_capability() {
    let Some(bin) = require() else { return };
    if !ctrace_tests::require_docker() {
        return;
    }
    // A container for postmortem to tell, known to the journal.
    let c = ctrace_tests::DockerContainer::run("ctrace-it-priv-pm", &[], &["sleep", "300"]);
    let dir = ctrace_tests::TempDir::new("privjournal");
    let journal = dir.0.join("journal.db");
    let journal = journal.to_str().unwrap();
    // A journal to read, written with full privileges.
    let st = Command::new(&bin)
        .args(["watch", "--journal", journal, "--duration", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status_bounded()
        .unwrap();
    assert!(st.success());
    for args in [
        vec!["ps"],
        vec!["history", "--journal", journal, "--since", "1h"],
        vec!["postmortem", &c.name, "--journal", journal],
    ] {
        let out = with_caps(&bin, "", &args)
            .output_bounded()
            .expect("setpriv");
        assert!(
            out.status.success(),
            "{args:?} without capabilities: {out:?}"
        );
    }
}

/// `inspect` needs CAP_SYS_PTRACE, no BPF: without it the namespaces of the container's init
/// cannot be read and it says so (exit 1); with it alone it is complete.
#[test]
fn inspect_needs_sys_ptrace_only() {
    let Some(bin) = require() else { return };
    if !ctrace_tests::require_docker() {
        return;
    }
    let c = ctrace_tests::DockerContainer::run("ctrace-it-priv-inspect", &[], &["sleep", "300"]);
    let out = with_caps(&bin, "", &["inspect", &c.name])
        .output_bounded()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr.contains("/ns: permission denied"),
        "names what it could not read: {stderr}"
    );
    let out = with_caps(&bin, "+sys_ptrace", &["inspect", &c.name])
        .output_bounded()
        .expect("setpriv");
    assert!(out.status.success(), "with CAP_SYS_PTRACE: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("namespaces"), "{stdout}");
}
