//! exec and exit of host processes and of a process inside a Docker container.

use std::{process::Command, time::Duration};

use ctrace_tests::{
    cgroup_id_of, get, require, require_docker, unique_binary, Bounded as _, DockerContainer,
    TempDir, Watch,
};

const WAIT: Duration = Duration::from_secs(15);

/// Records carry the uid the process runs as when it acts, read from its credentials.
#[test]
fn records_carry_the_uid_of_the_process() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("uid");
    let sh = unique_binary(&dir, "/bin/sh", "ctsh_uid");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let w = Watch::start(&bin, &["--events", "exec,exit", "--host"]);
    let status = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&sh)
        .args(["-c", "exit 3"])
        .status_bounded()
        .expect("setpriv");
    assert_eq!(status.code(), Some(3));
    for ty in ["exec", "exit"] {
        let v = w.wait_for(&format!("{ty} of ctsh_uid"), WAIT, |v| {
            v["type"] == ty && get(v, "process.comm") == "ctsh_uid"
        });
        assert_eq!(get(&v, "process.uid"), 65534, "{v}");
    }
    // And root's own processes say 0.
    let exec = w.wait_for("an exec as root", WAIT, |v| {
        v["type"] == "exec" && get(v, "process.comm") == "setpriv"
    });
    assert_eq!(get(&exec, "process.uid"), 0, "{exec}");
    w.stop();
}

#[test]
fn exec_and_exit_of_host_processes_carry_pid_comm_and_exit_code() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("exec");
    let sh = unique_binary(&dir, "/bin/sh", "ctsh_exit7");
    let w = Watch::start(&bin, &["--events", "exec,exit", "--host"]);

    let mut child = Command::new(&sh)
        .args(["-c", "exit 7"])
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(7));

    let exec = w.wait_for("exec of ctsh_exit7", WAIT, |v| {
        v["type"] == "exec" && get(v, "process.pid") == pid
    });
    assert_eq!(get(&exec, "process.comm"), "ctsh_exit7");
    assert_eq!(exec["filename"], sh.to_str().unwrap());
    assert_eq!(
        get(&exec, "process.ppid"),
        std::process::id(),
        "parent is this test"
    );
    assert_eq!(exec["schema"], "ctrace.v1");
    assert!(exec["container"].is_null());

    let exit = w.wait_for("exit of ctsh_exit7", WAIT, |v| {
        v["type"] == "exit" && get(v, "process.pid") == pid
    });
    assert_eq!(get(&exit, "process.comm"), "ctsh_exit7");
    assert_eq!(exit["exit_code"], 7);
    assert!(exit["signal"].is_null());
    assert_eq!(exit["group_dead"], true);
    // The exec happened before the exit, and both carry the test's own cgroup.
    assert!(exec["ts"].as_str() < exit["ts"].as_str());
    let own = cgroup_id_of(std::process::id()).expect("own cgroup id");
    assert_eq!(exec["cgroup_id"], own);
    w.stop();
}

#[test]
fn exit_by_signal_reports_the_signal_and_128_plus_n() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("sigexit");
    let sleep = unique_binary(&dir, "/bin/sleep", "ctsleep_kill9");
    let w = Watch::start(&bin, &["--events", "exec,exit", "--host"]);
    let mut child = Command::new(&sleep).arg("30").spawn().expect("spawn");
    let pid = child.id();
    w.wait_for("exec of ctsleep_kill9", WAIT, |v| {
        v["type"] == "exec" && get(v, "process.pid") == pid
    });
    child.kill().expect("kill");
    child.wait().expect("wait");
    let exit = w.wait_for("exit of ctsleep_kill9", WAIT, |v| {
        v["type"] == "exit" && get(v, "process.pid") == pid
    });
    assert_eq!(exit["exit_code"], 137);
    assert_eq!(exit["signal"], "SIGKILL");
    assert_eq!(exit["status_raw"], 9);
    w.stop();
}

#[test]
fn exec_inside_a_docker_container_carries_the_container_cgroup() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let host = cgroup_id_of(std::process::id()).expect("own cgroup id");
    let w = Watch::start(&bin, &["--events", "exec,exit"]);
    let c = DockerContainer::run("ctrace-it-exec", &[], &["sh", "-c", "sleep 1; exit 3"]);
    assert_eq!(c.wait(Duration::from_secs(30)), 3);
    // The container's init: runc execs /bin/sh in the container's cgroup.
    let exec = w.wait_for("exec of the container's /bin/sh", WAIT, |v| {
        v["type"] == "exec" && v["filename"] == "/bin/sh" && v["cgroup_id"] != host
    });
    assert_eq!(get(&exec, "process.comm"), "sh");
    let exit = w.wait_for("exit of the container's init", WAIT, |v| {
        v["type"] == "exit" && get(v, "process.pid") == get(&exec, "process.pid")
    });
    assert_eq!(exit["exit_code"], 3);
    assert_eq!(exit["cgroup_id"], exec["cgroup_id"]);
    // busybox sh runs its applets through /proc/self/exe; the sleep's exit names it.
    w.wait_for("exit of sleep in the container", WAIT, |v| {
        v["type"] == "exit"
            && get(v, "process.comm") == "sleep"
            && v["cgroup_id"] == exec["cgroup_id"]
    });
    w.stop();
}

#[test]
fn cgroup_id_is_the_inode_of_a_running_containers_cgroup() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let c = DockerContainer::run("ctrace-it-cgid", &[], &["sleep", "60"]);
    let pid = c.init_pid();
    let expected = cgroup_id_of(pid).expect("container cgroup id from /proc");
    let w = Watch::start(&bin, &["--events", "exec"]);
    let out = Command::new("docker")
        .args(["exec", &c.id, "true"])
        .output_bounded()
        .expect("docker exec");
    assert!(out.status.success());
    // Other tests run `true` on the host at the same time: look only outside the host cgroup.
    let host = cgroup_id_of(std::process::id()).expect("own cgroup id");
    let exec = w.wait_for("exec of true in the container", WAIT, |v| {
        v["type"] == "exec" && get(v, "process.comm") == "true" && v["cgroup_id"] != host
    });
    assert_eq!(exec["cgroup_id"], expected, "{exec}");
    w.stop();
}
