//! Command-line behaviour: errors, help, clean detach.

use std::process::Command;

use ctrace_tests::{require, run, Watch};

#[test]
fn bad_arguments_fail_with_a_clear_message_and_code_2() {
    let Some(bin) = require() else { return };
    let out = Command::new(&bin)
        .args(["watch", "--events", "exec,bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ctrace: error: unknown event kind \"bogus\""),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line, no backtrace: {err}");
}

#[test]
fn not_root_is_one_line_and_exit_2() {
    let Some(bin) = require() else { return };
    // Run as nobody (uid 65534) through setpriv from util-linux.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .arg("watch")
        .output()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "ctrace: error: ctrace must run as root to load eBPF programs (try: sudo ctrace ...)"
    );
    assert!(!err.contains("panicked"));
}

/// After Ctrl-C no program this ctrace loaded is left in the kernel.
#[test]
fn sigint_detaches_every_program() {
    let Some(bin) = require() else { return };
    let w = Watch::start(&bin, &["--events", "all"]);
    let ours = prog_ids_held_by(w.pid());
    assert_eq!(ours.len(), 9, "one program per tracepoint: {ours:?}");
    let (records, stderr) = w.stop();
    assert_eq!(
        records.last().map(|r| r["type"].clone()),
        Some("stats".into()),
        "{stderr}"
    );
    let left: Vec<u64> = programs()
        .iter()
        .filter_map(|p| p["id"].as_u64())
        .filter(|id| ours.contains(id))
        .collect();
    assert!(left.is_empty(), "programs left after exit: {left:?}");
}

/// Ids of the BPF programs a process holds open (`prog_id:` in its fds' fdinfo).
fn prog_ids_held_by(pid: u32) -> Vec<u64> {
    let mut ids = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .expect("fdinfo")
        .flatten()
    {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        ids.extend(
            info.lines()
                .filter_map(|l| l.strip_prefix("prog_id:")?.trim().parse::<u64>().ok()),
        );
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Loaded BPF programs as bpftool reports them.
fn programs() -> Vec<serde_json::Value> {
    let out = run(Command::new("bpftool").args(["prog", "show", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool json");
    v.as_array().cloned().unwrap_or_default()
}

#[test]
fn help_lists_watch() {
    let Some(bin) = require() else { return };
    let out = run(Command::new(&bin).arg("--help"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("watch"), "{text}");
}
