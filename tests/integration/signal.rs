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
    let spawn_ignoring =
        || ctrace_tests::spawn_ignoring(&target, &["30"], libc::SIGUSR1, "cttgt_usr1");
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
    // With --signals USR1 it is reported, each one (no fold: `--signal-window 0`).
    let w = Watch::start(
        &bin,
        &[
            "--events",
            "signal",
            "--signals",
            "USR1",
            "--signal-window",
            "0",
            "--host",
        ],
    );
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

/// Repeated identical signals that change nothing (here SIGUSR1s to a process that ignores
/// them) are folded in the kernel: the first is a record at once, the rest come as counts,
/// and the counts add up to exactly what was sent, the tail included (read from the fold's
/// slot when ctrace stops). Signals that may kill are never folded: the SIGKILL is a record.
#[test]
fn ignored_signals_are_folded_into_exact_counts() {
    const N: u64 = 20_000;
    let Some(bin) = require() else { return };
    let dir = TempDir::new("fold");
    let target = unique_binary(&dir, "/bin/sleep", "cttgt_fold");
    let w = Watch::start(&bin, &["--events", "signal", "--signals", "USR1", "--host"]);
    let mut victim = ctrace_tests::spawn_ignoring(&target, &["60"], libc::SIGUSR1, "cttgt_fold");
    let vpid = victim.id();
    for _ in 0..N {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(vpid as i32, libc::SIGUSR1) }, 0);
    }
    // The first one is reported without waiting for the rest.
    let first = w.wait_for("the first SIGUSR1", WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == vpid && v["signo"] == 10
    });
    assert_eq!(first["result"], "ignored");
    assert!(
        first.get("count").is_none(),
        "the first stands for itself: {first}"
    );
    victim.kill().expect("kill");
    victim.wait().expect("wait");
    w.wait_for("SIGKILL after the SIGUSR1s", WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == vpid && v["signo"] == 9
    });
    let (records, stderr) = w.stop();
    let usr1: Vec<_> = records
        .iter()
        .filter(|v| v["type"] == "signal" && get(v, "target.pid") == vpid && v["signo"] == 10)
        .collect();
    let total: u64 = usr1
        .iter()
        .map(|v| v.get("count").map_or(1, |c| c.as_u64().expect("count")))
        .sum();
    assert_eq!(
        total,
        N,
        "every SIGUSR1 counted once, in {} records",
        usr1.len()
    );
    assert!(
        (usr1.len() as u64) < N / 10,
        "{} records for {N} identical ignored signals: not folded",
        usr1.len()
    );
    for v in &usr1 {
        assert_eq!(get(v, "process.pid"), std::process::id(), "sender: {v}");
        if let Some(c) = v.get("count") {
            assert!(
                c.as_u64() > Some(1),
                "a count is given only for more than one: {v}"
            );
            assert!(v["span_ns"].is_u64(), "a count comes with its span: {v}");
            let text = v["explanation"].as_str().unwrap_or("");
            assert!(
                text.contains(&format!("(x{c}")),
                "the explanation counts: {v}"
            );
        }
    }
    let stats = records.last().expect("records");
    assert_eq!(stats["type"], "stats", "{stderr}");
    let repeats = get(stats, "signal_folds.repeats_reported")
        .as_u64()
        .unwrap_or_else(|| panic!("no signal_folds in stats: {stats}"));
    assert!(
        repeats >= N - usr1.len() as u64,
        "stats count {repeats} folded repeats, the records {}",
        N - usr1.len() as u64
    );
    // Folded signals are filtered, not lost: the ring's books still balance.
    let k = &stats["kinds"]["signal"];
    assert_eq!(k["lost_ringbuf_full"], 0, "{k}");
    assert_eq!(k["produced"], k["delivered"], "{k}");
    assert!(
        k["filtered_in_kernel"].as_u64() >= Some(repeats),
        "each repeat counted as filtered in the kernel: {k}"
    );
}
