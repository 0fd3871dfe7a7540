//! signal_generate: sender and target of kill(2) between two test processes.

use std::{os::unix::process::CommandExt as _, process::Command, time::Duration};

use ctrace_tests::{get, require, unique_binary, wait_comm, TempDir, Watch};

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

/// Signals outside `--signals` are dropped by the eBPF program itself: the kernel's
/// `filtered_in_kernel` counter grows by at least the number sent, and nothing of them reaches
/// userspace. (A userspace filter would also hide the records, but not move that counter.)
#[test]
fn opt_in_signals_are_filtered_in_the_kernel_unless_asked_for() {
    /// SIGUSR1s sent to one target: more than anything else on the host sends in that time.
    const N: usize = 200;
    let Some(bin) = require() else { return };
    let dir = TempDir::new("usr1");
    let target = unique_binary(&dir, "/bin/sleep", "cttgt_usr1");
    // A target that ignores SIGUSR1 (SIG_IGN survives exec), so it lives through all N. The
    // kernel still generates each signal, and the tracepoint fires with result "ignored".
    let spawn_ignoring = || {
        let mut cmd = Command::new(&target);
        cmd.arg("30");
        // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGUSR1, libc::SIG_IGN);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn");
        wait_comm(child.id(), "cttgt_usr1");
        child
    };
    let send_usr1 = |pid: u32| {
        for _ in 0..N {
            // SAFETY: signalling our own child.
            assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGUSR1) }, 0);
        }
    };
    // Without --signals USR1: SIGUSR1 is not reported, SIGKILL is.
    let w = Watch::start(&bin, &["--events", "signal", "--host"]);
    let mut victim = spawn_ignoring();
    let vpid = victim.id();
    send_usr1(vpid);
    // The marker: SIGKILL to the same target, sent after every SIGUSR1.
    victim.kill().expect("kill");
    victim.wait().expect("wait");
    w.wait_for("SIGKILL after the SIGUSR1s", WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == vpid && v["signo"] == 9
    });
    let (records, stderr) = w.stop();
    assert!(
        !records
            .iter()
            .any(|v| v["type"] == "signal" && get(v, "target.pid") == vpid && v["signo"] == 10),
        "SIGUSR1 must be filtered by default"
    );
    let stats = records.last().expect("records");
    assert_eq!(stats["type"], "stats", "{stderr}");
    let filtered = get(stats, "kinds.signal.filtered_in_kernel")
        .as_u64()
        .unwrap_or_else(|| panic!("no signal counters: {stats}"));
    assert!(
        filtered >= N as u64,
        "{N} SIGUSR1 sent, only {filtered} filtered in the kernel: {stats}"
    );
    // With --signals USR1 it is reported, each one.
    let w = Watch::start(&bin, &["--events", "signal", "--signals", "USR1", "--host"]);
    let mut victim = spawn_ignoring();
    let vpid = victim.id();
    send_usr1(vpid);
    victim.kill().expect("kill");
    victim.wait().expect("wait");
    w.wait_for("SIGKILL after the SIGUSR1s", WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == vpid && v["signo"] == 9
    });
    let (records, _) = w.stop();
    let usr1: Vec<_> = records
        .iter()
        .filter(|v| v["type"] == "signal" && get(v, "target.pid") == vpid && v["signo"] == 10)
        .collect();
    assert_eq!(usr1.len(), N, "every SIGUSR1 reported once");
    assert_eq!(usr1[0]["signal"], "SIGUSR1");
}
