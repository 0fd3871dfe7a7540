//! signal_generate: sender and target of kill(2) between two test processes.

use std::{process::Command, time::Duration};

use ctrace_tests::{get, require, unique_binary, TempDir, Watch};

const WAIT: Duration = Duration::from_secs(15);

fn kill_between_processes(sig: &str, signo: i64, name: &str) {
    let Some(bin) = require() else { return };
    let dir = TempDir::new(name);
    let target = unique_binary(&dir, "/bin/sleep", &format!("cttgt_{name}"));
    let sender = unique_binary(&dir, "/bin/sh", &format!("ctsnd_{name}"));
    let w = Watch::start(&bin, &["--events", "signal,exit", "--host"]);
    let mut victim = Command::new(&target)
        .arg("30")
        .spawn()
        .expect("spawn target");
    let vpid = victim.id();
    ctrace_tests::wait_comm(vpid, &format!("cttgt_{name}"));
    let mut killer = Command::new(&sender)
        .args(["-c", &format!("kill -{sig} {vpid}")])
        .spawn()
        .expect("spawn sender");
    let kpid = killer.id();
    assert!(killer.wait().expect("wait sender").success());
    victim.wait().expect("wait target");

    let s = w.wait_for(&format!("{sig} to the target"), WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == vpid && v["signo"] == signo
    });
    assert_eq!(get(&s, "process.pid"), kpid, "sender is the shell: {s}");
    assert_eq!(get(&s, "process.comm"), format!("ctsnd_{name}").as_str());
    assert_eq!(get(&s, "target.comm"), format!("cttgt_{name}").as_str());
    assert_eq!(s["signal"], format!("SIG{sig}").as_str());
    assert_eq!(s["result"], "delivered");
    assert_eq!(s["origin"], "user", "kill(2) is SI_USER");
    // Read from the target task in the kernel (BTF-typed tracepoint).
    assert_eq!(get(&s, "target.tgid"), vpid);
    let own = ctrace_tests::cgroup_id_of(std::process::id()).expect("own cgroup");
    assert_eq!(get(&s, "target.cgroup_id"), own);
    let exit = w.wait_for("exit of the target", WAIT, |v| {
        v["type"] == "exit" && get(v, "process.pid") == vpid
    });
    assert_eq!(exit["exit_code"], 128 + signo);
    w.stop();
}

#[test]
fn kill_term_between_two_processes() {
    kill_between_processes("TERM", 15, "term");
}

#[test]
fn kill_9_between_two_processes() {
    kill_between_processes("KILL", 9, "kill");
}

#[test]
fn opt_in_signals_are_filtered_in_the_kernel_unless_asked_for() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("usr1");
    let target = unique_binary(&dir, "/bin/sleep", "cttgt_usr1");
    // Without --signals USR1: SIGUSR1 is not reported, SIGKILL is.
    let w = Watch::start(&bin, &["--events", "signal", "--host"]);
    let mut victim = Command::new(&target).arg("30").spawn().expect("spawn");
    let vpid = victim.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(vpid, libc::SIGUSR1) };
    victim.wait().expect("wait");
    let mut victim2 = Command::new(&target).arg("30").spawn().expect("spawn");
    let v2 = victim2.id();
    victim2.kill().expect("kill");
    victim2.wait().expect("wait");
    w.wait_for("SIGKILL", WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == v2
    });
    let (records, _) = w.stop();
    assert!(
        !records
            .iter()
            .any(|v| v["type"] == "signal" && get(v, "target.pid") == vpid),
        "SIGUSR1 must be filtered by default"
    );
    // With --signals USR1 it is.
    let w = Watch::start(&bin, &["--events", "signal", "--signals", "USR1", "--host"]);
    let mut victim = Command::new(&target).arg("30").spawn().expect("spawn");
    let vpid = victim.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(vpid, libc::SIGUSR1) };
    victim.wait().expect("wait");
    let s = w.wait_for("SIGUSR1", WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == vpid
    });
    assert_eq!(s["signal"], "SIGUSR1");
    w.stop();
}
