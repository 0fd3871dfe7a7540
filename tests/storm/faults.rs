//! Runtime faults while ctrace runs (issue 16, item 5): dockerd crashes (SIGKILL) and comes
//! back, containerd is restarted (SIGTERM, then started again). Throughout, processes of the
//! containers are attributed to the right container with the right names (from the runtimes'
//! state on disk while a daemon is down), the Docker feed reconnects, and each outage is
//! reported once, with its end.
//!
//! It stops the lab's daemons, so it is a storm test (never beside the main suite) and a
//! [`Lab`] guard starts them again, the way they were started (their own command line, read
//! from /proc, in a session of their own, logging where `cargo xtask lab-up` logs), even when
//! the test fails half-way.

use std::{
    fs::OpenOptions,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use ctrace_tests::{
    get, require, require_containerd, require_docker, require_runc, Bounded as _, CtrContainer,
    DockerContainer, RuncContainer, Watch,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// Docker's runc state root with the lab's dockerd, and containerd's for namespace `default`:
/// `runc exec` there reaches their containers with no daemon at all.
const DOCKER_RUNC_ROOT: &str = "/run/docker/runtime-runc/moby";
const CONTAINERD_RUNC_ROOT: &str = "/run/containerd/runc/default";

/// A lab daemon: its command line as it runs now, to start it again the same way.
struct Daemon {
    comm: &'static str,
    argv: Vec<String>,
    log: &'static str,
}

/// The pid and command line of the live process whose comm is `comm` (the lab runs one of
/// each). A zombie (a killed daemon its parent has not reaped yet) is not running.
fn find(comm: &str) -> Option<(i32, Vec<String>)> {
    procfs::process::all_processes()
        .ok()?
        .flatten()
        .find_map(|p| {
            let stat = p.stat().ok()?;
            (stat.comm == comm && stat.state != 'Z').then(|| Some((p.pid, p.cmdline().ok()?)))?
        })
}

/// dockerd refuses to start while the pid in its pid file exists, a zombie included: remove
/// the file when that process is not a running dockerd (as `cargo xtask lab-up` does).
fn remove_stale_pidfile() {
    const PIDFILE: &str = "/var/run/docker.pid";
    let Ok(pid) = std::fs::read_to_string(PIDFILE) else {
        return;
    };
    let running = pid
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(ctrace_tests::process)
        .and_then(|p| p.stat().ok())
        .is_some_and(|s| s.comm == "dockerd" && s.state != 'Z');
    if !running {
        let _ = std::fs::remove_file(PIDFILE);
    }
}

impl Daemon {
    fn capture(comm: &'static str, log: &'static str) -> Self {
        let (_, argv) = find(comm).unwrap_or_else(|| panic!("no {comm} is running (lab-up)"));
        assert!(!argv.is_empty(), "{comm} has a command line");
        Self { comm, argv, log }
    }

    /// Send `sig` and wait until the process is gone.
    fn stop(&self, sig: i32) {
        let (pid, _) = find(self.comm).unwrap_or_else(|| panic!("{} is not running", self.comm));
        // SAFETY: kill(2) on the daemon's pid, found just above.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        ctrace_tests::eventually(&format!("{} gone", self.comm), WAIT, || {
            ctrace_tests::process(pid as u32)
                .and_then(|p| p.stat().ok())
                .is_none_or(|s| s.state == 'Z')
                .then_some(())
        });
    }

    /// Start it again, as `cargo xtask lab-up` does: `setsid ARGV >>LOG 2>&1 </dev/null`.
    fn start(&self) {
        if self.comm == "dockerd" {
            remove_stale_pidfile();
        }
        let log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log)
                .expect("daemon log")
        };
        // --fork: setsid returns at once and the daemon is not this test's child (nor its
        // zombie when it is stopped again).
        let st = Command::new("setsid")
            .arg("--fork")
            .args(&self.argv)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log())
            .stderr(log())
            .status_bounded()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.comm));
        assert!(st.success(), "setsid {}: {st}", self.comm);
    }
}

fn answers(cmd: &[&str]) -> bool {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status_bounded()
        .is_ok_and(|s| s.success())
}

fn containerd_answers() -> bool {
    answers(&["ctr", "--connect-timeout", "2s", "version"])
}

fn docker_answers() -> bool {
    answers(&["docker", "info"])
}

/// The lab's containerd and dockerd, started again on drop if they are not running.
struct Lab {
    containerd: Daemon,
    dockerd: Daemon,
}

impl Lab {
    fn capture() -> Self {
        Self {
            containerd: Daemon::capture("containerd", "/var/log/containerd.log"),
            dockerd: Daemon::capture("dockerd", "/var/log/dockerd.log"),
        }
    }

    fn ensure_up(&self) {
        if find("containerd").is_none() {
            self.containerd.start();
        }
        ctrace_tests::eventually("containerd answering", WAIT, || {
            containerd_answers().then_some(())
        });
        if find("dockerd").is_none() {
            self.dockerd.start();
        }
        ctrace_tests::eventually("dockerd answering", WAIT, || docker_answers().then_some(()));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A second panic here would abort before the first is shown: report, go on.
            if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.ensure_up();
            })) {
                eprintln!("restoring the lab's daemons failed too: {e:?}");
            }
        } else {
            self.ensure_up();
        }
    }
}

/// `runc --root ROOT exec ID CMD...`: no daemon involved.
fn runc_exec(root: &str, id: &str, cmd: &[&str]) {
    let st = Command::new("runc")
        .args(["--root", root, "exec", id])
        .args(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status_bounded()
        .expect("runc exec");
    assert!(st.success(), "runc exec {id} {cmd:?}");
}

/// Wait for the exec of `filename` in container `name`; returns it.
fn exec_in(w: &Watch, name: &str, filename: &str, why: &str) -> Value {
    let (n, f) = (name.to_owned(), filename.to_owned());
    w.wait_for(
        &format!("exec of {filename} in {name} ({why})"),
        WAIT,
        move |v| {
            v["type"] == "exec"
                && get(v, "container.name") == n.as_str()
                && v["filename"] == f.as_str()
        },
    )
}

fn warnings_with(stderr: &str, text: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.starts_with("ctrace: warning:") && l.contains(text))
        .count()
}

#[test]
fn dockerd_and_containerd_restarts_keep_attribution_and_are_reported_once() {
    let Some(bin) = require() else { return };
    if !(require_docker() && require_containerd() && require_runc()) {
        return;
    }
    let _storm = ctrace_tests::storm();
    if !Path::new(DOCKER_RUNC_ROOT).is_dir() || !Path::new(CONTAINERD_RUNC_ROOT).is_dir() {
        ctrace_tests::unavailable("the lab's runc state roots are not where expected");
        return;
    }
    let d1 = DockerContainer::run("ctrace-storm-fault-d1", &[], &["sleep", "300"]);
    let c1 = CtrContainer::run("default", "ctrace-storm-fault-c1", &[], &["sleep", "300"]);
    // Declared after the containers so that it is dropped before them: they need the daemons
    // to be removed.
    let lab = Lab::capture();
    let w = Watch::start(&bin, &["--events", "exec,exit"]);
    let d1_exec = |cmd: &[&str]| runc_exec(DOCKER_RUNC_ROOT, &d1.id, cmd);
    d1_exec(&["/bin/id"]);
    let e = exec_in(&w, &d1.name, "/bin/id", "before the faults");
    assert_eq!(get(&e, "container.runtime"), "docker", "{e}");

    // dockerd crashes: its containers go on (containerd keeps them), and are named from
    // /var/lib/docker.
    lab.dockerd.stop(libc::SIGKILL);
    d1_exec(&["/bin/echo", "dockerd down"]);
    let e = exec_in(&w, &d1.name, "/bin/echo", "dockerd down");
    assert_eq!(get(&e, "container.id"), d1.id.as_str(), "{e}");
    assert_eq!(get(&e, "container.image"), "busybox:local", "{e}");
    // A container started while dockerd is down (plain runc) is attributed too.
    let r1 = RuncContainer::run(None, "ctrace-storm-fault-r1", &["sleep", "300"]);
    r1.exec(&["/bin/echo", "dockerd down"]);
    let e = exec_in(
        &w,
        "ctrace-storm-fault-r1",
        "/bin/echo",
        "new runc container",
    );
    assert_eq!(get(&e, "container.runtime"), "runc", "{e}");
    ctrace_tests::eventually("the outage's warning", WAIT, || {
        (warnings_with(&w.stderr(), "Docker API unreachable") > 0).then_some(())
    });

    // dockerd is back (without live-restore it stops d1 as it starts); the feed reconnects.
    lab.dockerd.start();
    ctrace_tests::eventually("dockerd answering", WAIT, || docker_answers().then_some(()));
    ctrace_tests::eventually("the feed reconnected", WAIT, || {
        (warnings_with(&w.stderr(), "answers again") > 0).then_some(())
    });
    let d2 = DockerContainer::run("ctrace-storm-fault-d2", &[], &["sleep", "300"]);
    let st = Command::new("docker")
        .args(["exec", &d2.name, "/bin/id"])
        .stdout(Stdio::null())
        .status_bounded()
        .unwrap();
    assert!(st.success());
    let e = exec_in(&w, &d2.name, "/bin/id", "after dockerd's restart");
    assert_eq!(get(&e, "container.id"), d2.id.as_str(), "{e}");

    // containerd restarts: its containers and Docker's go on, named from disk meanwhile.
    lab.containerd.stop(libc::SIGTERM);
    runc_exec(
        CONTAINERD_RUNC_ROOT,
        &c1.id,
        &["/bin/echo", "containerd down"],
    );
    let e = exec_in(&w, &c1.id, "/bin/echo", "containerd down");
    assert_eq!(get(&e, "container.runtime"), "containerd", "{e}");
    assert_eq!(get(&e, "container.namespace"), "default", "{e}");
    runc_exec(DOCKER_RUNC_ROOT, &d2.id, &["/bin/echo", "containerd down"]);
    exec_in(&w, &d2.name, "/bin/echo", "containerd down");
    lab.containerd.start();
    lab.ensure_up();
    assert_eq!(c1.exec("ctfault1", &["/bin/ls", "/"]).code(), Some(0));
    exec_in(&w, &c1.id, "/bin/ls", "after containerd's restart");
    let st = Command::new("docker")
        .args(["exec", &d2.name, "/bin/ls", "/"])
        .stdout(Stdio::null())
        .status_bounded()
        .unwrap();
    assert!(st.success());
    exec_in(&w, &d2.name, "/bin/ls", "after containerd's restart");

    let (records, stderr) = w.stop();
    // Nothing attributed to a wrong container: every exec of our containers' names has its id.
    for (name, id) in [(&d1.name, &d1.id), (&d2.name, &d2.id)] {
        for v in records
            .iter()
            .filter(|v| get(v, "container.name") == name.as_str())
        {
            assert_eq!(get(v, "container.id"), id.as_str(), "{v}");
        }
    }
    assert_eq!(
        warnings_with(&stderr, "Docker API unreachable"),
        1,
        "one outage, one warning:\n{stderr}"
    );
    assert_eq!(
        warnings_with(&stderr, "answers again"),
        1,
        "its end, once:\n{stderr}"
    );
    let mut lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ctrace: warning:"))
        .collect();
    let all = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), all, "no warning said twice:\n{stderr}");
}
