//! The kernel matrix's facts on this host: capability records have the shape `cargo xtask
//! vm-test` requires of 6.1 and 6.12 guests (fexit or kprobes there, whatever hook serves them
//! here), checked by the same code (`ctrace_tests::expect`), and `watch` names its hook;
//! `ctrace doctor` reports the mechanisms the VMs assert for their kernels, here for this one.

use std::time::Duration;

use ctrace_tests::{expect, require, require_docker, Bounded as _, DockerContainer, Watch};

const WAIT: Duration = Duration::from_secs(20);

/// Whichever program serves the tracepoint: the BTF-typed one by default, the classic one with
/// `--no-tp-btf` (what kernels whose BTF-typed program cannot load get).
#[test]
fn capability_records_have_the_shape_every_kernel_gives() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    for (args, want) in [(&[][..], "tp_btf"), (&["--no-tp-btf"][..], "tracepoint")] {
        capability_records_of(&bin, args, want);
    }
}

fn capability_records_of(bin: &std::path::Path, args: &[&str], want: &str) {
    let mut argv = vec!["--events", "capability:all,exec"];
    argv.extend_from_slice(args);
    let w = Watch::start(bin, &argv);
    let denied = DockerContainer::run(
        "ctrace-it-kernels-deny",
        &["--cap-drop", "CHOWN"],
        &["chown", "1", "/tmp"],
    );
    assert_eq!(
        denied.wait(Duration::from_secs(30)),
        1,
        "chown without CAP_CHOWN"
    );
    let allowed = DockerContainer::run("ctrace-it-kernels-allow", &[], &["chown", "1", "/tmp"]);
    assert_eq!(
        allowed.wait(Duration::from_secs(30)),
        0,
        "chown with CAP_CHOWN"
    );
    let in_container = |v: &serde_json::Value, c: &DockerContainer, verdict: &str| {
        v["type"] == "capability"
            && v["capability"] == "CAP_CHOWN"
            && v["verdict"] == verdict
            && v["process"]["comm"] == "chown"
            && v["container"]["id"] == c.id.as_str()
    };
    let d = w.wait_for("denied CAP_CHOWN", WAIT, |v| {
        in_container(v, &denied, "denied")
    });
    let a = w.wait_for("allowed CAP_CHOWN", WAIT, |v| {
        in_container(v, &allowed, "allowed")
    });
    expect::capability_record(&d, "CAP_CHOWN", 0, "denied", "chown").unwrap();
    expect::capability_record(&a, "CAP_CHOWN", 0, "allowed", "chown").unwrap();
    let (records, stderr) = w.stop();
    let stats = records
        .iter()
        .rev()
        .find(|v| v["type"] == "stats")
        .expect("a closing stats record");
    let mechanism = expect::capability_mechanism(stats).unwrap();
    assert_eq!(mechanism, want, "{args:?}: {stats}");
    assert!(
        stderr.contains(expect::capability_start_line(mechanism)),
        "watch names the hook it uses ({mechanism}) at start: {stderr}"
    );
    // The hook named is one whose program ran: listed among the attached programs.
    let programs = stats["programs"].as_array().expect("programs");
    assert!(
        programs.iter().any(|p| p["hook"] == mechanism
            && p["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("cap_capable"))),
        "{stats}"
    );
    denied.remove();
    allowed.remove();
}

/// Without the tracepoint and with no other hook allowed, capability events are off with a
/// warning that says what was tried, and nothing claims to serve them.
#[test]
fn capability_checks_without_a_usable_hook_are_disabled_loudly() {
    let Some(bin) = require() else { return };
    let w = Watch::start_with_env(
        &bin,
        &["--events", "capability,exec"],
        &[("CTRACE_CAP_HOOKS", std::path::Path::new(""))],
    );
    let (records, stderr) = w.stop();
    assert!(
        stderr.contains("capability events disabled: tracepoint not tried"),
        "{stderr}"
    );
    assert!(!stderr.contains("capability checks via"), "{stderr}");
    let stats = records
        .iter()
        .rev()
        .find(|v| v["type"] == "stats")
        .expect("a closing stats record");
    assert!(expect::capability_mechanism(stats).is_err(), "{stats}");
}

/// `ctrace doctor --json` on this host: a report that holds together, every core feature on
/// (exit 0), and the mechanisms this kernel (6.18, the CI machines' kind) gives: capability
/// checks through the BTF-typed program on the tracepoint, the same hook `watch` reports in
/// its stats record.
#[test]
fn doctor_reports_this_kernels_mechanisms() {
    let Some(bin) = require() else { return };
    let doctor = |args: &[&str], env: &[(&str, &str)]| {
        std::process::Command::new(&bin)
            .arg("doctor")
            .args(args)
            .envs(env.iter().copied())
            .output_bounded()
            .expect("ctrace doctor runs")
    };
    let out = doctor(&["--json"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("doctor --json is JSON");
    expect::doctor_report(&v).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "every core feature on: {stdout}"
    );
    assert_eq!(expect::doctor_hook(&v, "capability"), Ok("tp_btf"));
    assert_eq!(expect::doctor_hook(&v, "exec_exit"), Ok("tracepoint"));
    assert_eq!(expect::doctor_hook(&v, "oom"), Ok("tracepoint"));
    // fentry is refused here (EPERM): the OOM killer's context is not read, and doctor says
    // why with the errno; the figures come from the BTF-typed mark_victim instead.
    let fentry = expect::doctor_hook_status(&v, "fentry", "oom_kill_process").expect("tried");
    if fentry["status"] == "refused" {
        assert!(fentry["errno"].as_i64().is_some(), "{fentry}");
        assert_ne!(
            expect::doctor_hook(&v, "oom_kernel_figures"),
            Ok("fentry"),
            "{v}"
        );
    }
    // The fallbacks are reported as not needed, not as failures.
    let fexit = expect::doctor_hook_status(&v, "fexit", "cap_capable").expect("listed");
    assert_eq!(fexit["status"], "not_tried", "{fexit}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(v["kernel"]["release"], release.trim());

    // For people: the same facts, and the verdict.
    let out = doctor(&[], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>()[..].starts_with(&[
                "capability",
                "on",
                "tp_btf",
                "cap_capable"
            ])
        ),
        "{text}"
    );
    assert!(text.ends_with("every core feature is on\n"), "{text}");
}

/// A core feature off (capability checks, with every hook forbidden) makes doctor exit 1 and
/// say which, with why.
#[test]
fn doctor_exits_non_zero_when_a_core_feature_is_off() {
    let Some(bin) = require() else { return };
    let doctor = |args: &[&str]| {
        std::process::Command::new(&bin)
            .arg("doctor")
            .args(args)
            .env("CTRACE_CAP_HOOKS", "")
            .output_bounded()
            .expect("ctrace doctor runs")
    };
    let out = doctor(&["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    expect::doctor_report(&v).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["ok"], false);
    let err = expect::doctor_hook(&v, "capability").unwrap_err();
    assert!(err.contains("not allowed by CTRACE_CAP_HOOKS"), "{err}");
    let out = doctor(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.ends_with("core feature(s) off: capability\n"),
        "{text}"
    );
}

/// Not root: doctor cannot load the programs to check the kernel side. It still prints what it
/// can (the kernel, cgroups, runtimes), every eBPF feature off with the reason, one error line,
/// and exits 2, not 1: nothing was found off, it could not look.
#[test]
fn doctor_without_root_reports_what_it_can_and_exits_2() {
    let Some(bin) = require() else { return };
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["doctor", "--json"])
        .output_bounded()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    expect::doctor_report(&v).unwrap();
    assert!(
        v["load_error"]
            .as_str()
            .is_some_and(|e| e.contains("must run as root")),
        "{v}"
    );
    let why = expect::doctor_hook(&v, "capability").unwrap_err();
    assert!(why.contains("no eBPF programs"), "{why}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ctrace: error: "), "{err}");
}

/// Fork and exec records name the child (pid and comm), the parent and the file executed,
/// whichever program serves them: the BTF-typed ones by default (they read the tasks and the
/// exec's `linux_binprm`), the classic ones with `--no-tp-btf` (they read the tracepoints'
/// records).
#[test]
fn fork_and_exec_records_are_the_same_from_either_program() {
    let Some(bin) = require() else { return };
    let sleep = std::fs::canonicalize("/bin/sleep").expect("sleep");
    for (args, programs, hook) in [
        (
            &[][..],
            ["sched_process_fork_btf", "sched_process_exec_btf"],
            "tp_btf",
        ),
        (
            &["--no-tp-btf"][..],
            ["sched_process_fork", "sched_process_exec"],
            "tracepoint",
        ),
    ] {
        let mut argv = vec!["--host", "--events", "fork,exec"];
        argv.extend_from_slice(args);
        let w = Watch::start(&bin, &argv);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{} 0.1 & echo $$ $!; wait", sleep.display()))
            .output_bounded()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let pids: Vec<u64> = text
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let [shell, child] = pids[..] else {
            panic!("the shell printed {text:?}")
        };
        let fork = w.wait_for("the shell's fork", WAIT, |v| {
            v["type"] == "fork" && v["child"]["pid"] == child
        });
        assert_eq!(fork["process"]["pid"], shell, "{args:?}: {fork}");
        // The child is a copy of the shell until it executes sleep.
        assert_eq!(fork["child"]["comm"], "sh", "{args:?}: {fork}");
        let exec = w.wait_for("the child's exec", WAIT, |v| {
            v["type"] == "exec" && v["process"]["pid"] == child
        });
        assert_eq!(
            exec["filename"],
            sleep.to_str().unwrap(),
            "{args:?}: {exec}"
        );
        assert_eq!(exec["old_pid"], child, "{args:?}: {exec}");
        assert_eq!(exec["process"]["comm"], "sleep", "{args:?}: {exec}");
        let (records, _) = w.stop();
        let stats = records
            .iter()
            .rev()
            .find(|v| v["type"] == "stats")
            .expect("a closing stats record");
        for program in programs {
            assert!(
                stats["programs"]
                    .as_array()
                    .expect("programs")
                    .iter()
                    .any(|p| p["name"] == program && p["hook"] == hook),
                "{args:?}: {program} ({hook}) serves its tracepoint: {stats}"
            );
        }
    }
}
