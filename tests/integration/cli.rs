//! Command-line behaviour: errors, help, clean detach.

use std::{process::Command, time::Duration};

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
    assert_eq!(
        ours.len(),
        13,
        "one per tracepoint, the BTF-typed mark_victim beside the classic one, three for \
         run-queue delay: {ours:?}"
    );
    let (records, stderr) = w.stop();
    assert_eq!(
        records.last().map(|r| r["type"].clone()),
        Some("stats".into()),
        "{stderr}"
    );
    // The kernel frees programs after their last reference goes, some (BTF-typed links on
    // scheduler tracepoints) after an RCU grace period: allow it a few seconds.
    let left = || -> Vec<u64> {
        programs()
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .filter(|id| ours.contains(id))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !left().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(left().is_empty(), "programs left after exit: {:?}", left());
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

#[test]
fn unwritable_output_fails_before_attaching() {
    let Some(bin) = require() else { return };
    let out = Command::new(&bin)
        .args([
            "watch",
            "--no-journal",
            "--output",
            "/nonexistent-dir/events.ndjson",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write --output") && err.contains("/nonexistent-dir/events.ndjson"),
        "{err}"
    );
    assert!(
        !err.contains("ctrace: tracing"),
        "nothing was attached: {err}"
    );
}

#[test]
fn a_closed_stdout_ends_watch_quietly_with_0() {
    let Some(bin) = require() else { return };
    // Like `ctrace watch --host | head -1`: read a little, then close the pipe.
    let mut child = Command::new(&bin)
        .args(["watch", "--no-journal", "--host", "--events", "exec,exit"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Make events, read one line's worth, then close the pipe.
    for _ in 0..20 {
        let _ = Command::new("/bin/true").status();
    }
    let mut buf = [0u8; 64];
    let _ = std::io::Read::read(&mut stdout, &mut buf);
    drop(stdout);
    for _ in 0..50 {
        let _ = Command::new("/bin/true").status();
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("error"), "quietly: {err}");
}

#[test]
fn container_filter_naming_nothing_warns_and_keeps_streaming() {
    let Some(bin) = require() else { return };
    let w = ctrace_tests::Watch::start(&bin, &["--container", "no-such-container-xyz", "--host"]);
    let (_, stderr) = w.stop();
    assert!(
        stderr.contains("no container matches \"no-such-container-xyz\" yet; watching for it"),
        "{stderr}"
    );
}

#[test]
fn a_file_that_is_not_a_journal_is_refused_and_left_alone() {
    let Some(bin) = require() else { return };
    let dir = ctrace_tests::TempDir::new("notjournal");
    let path = dir.0.join("journal.db");
    std::fs::write(&path, b"precious data, not SQLite\n").unwrap();
    let out = Command::new(&bin)
        .args(["watch", "--journal"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(path.to_str().unwrap()),
        "names the path: {err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"precious data, not SQLite\n"
    );
}

/// On a kernel without `capability:cap_capable` (6.12 and older), just that kind is disabled,
/// with one clear warning, and the rest traces as usual. Simulated by reading tracepoint
/// formats from a copy of tracefs's events directory that lacks it.
#[test]
fn a_missing_tracepoint_disables_only_its_kind_with_one_warning() {
    let Some(bin) = require() else { return };
    let events = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .into_iter()
    .map(std::path::Path::new)
    .find(|p| p.is_dir())
    .expect("tracefs events directory");
    let dir = ctrace_tests::TempDir::new("no-cap-capable");
    for tp in [
        "sched/sched_process_exec",
        "sched/sched_process_exit",
        "sched/sched_process_fork",
        "signal/signal_generate",
        "oom/mark_victim",
        "cgroup/cgroup_mkdir",
        "cgroup/cgroup_rmdir",
        "cgroup/cgroup_attach_task",
    ] {
        let to = dir.0.join(tp);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(events.join(tp).join("format"), to.join("format")).unwrap();
    }
    let w = Watch::start_with_env(
        &bin,
        &["--events", "exec,capability", "--host"],
        &[("CTRACE_TRACEFS_EVENTS", &dir.0)],
    );
    let prog = ctrace_tests::unique_binary(&dir, "/bin/true", "ctnocapexec");
    assert!(Command::new(&prog).status().unwrap().success());
    w.wait_for("exec traced as usual", Duration::from_secs(20), |v| {
        v["type"] == "exec" && ctrace_tests::get(v, "process.comm") == "ctnocapexec"
    });
    let (records, stderr) = w.stop();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cap_capable"))
        .collect();
    assert_eq!(
        warnings,
        [
            "ctrace: warning: tracepoint capability:cap_capable does not exist on this kernel: \
             capability events disabled"
        ],
        "{stderr}"
    );
    let tracing = stderr
        .lines()
        .find(|l| l.starts_with("ctrace: tracing "))
        .unwrap();
    assert!(!tracing.contains("capability"), "{tracing}");
    assert!(!records.iter().any(|v| v["type"] == "capability"));
}
