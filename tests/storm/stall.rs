//! A consumer stall (issue 16, item 4): ctrace is stopped (SIGSTOP) for 10 s while a shell
//! forks and execs without pause and two containers start (Docker, plain runc), then continued
//! (SIGCONT). It does not crash; what the ring could not hold is counted, per kind, and shown
//! as `lost` records; every task's records come out in the order the kernel stamped them; and
//! the containers started while it was stopped are named afterwards, from the runtimes' state.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use ctrace_tests::{
    get, require, require_docker, require_runc, Bounded as _, DockerContainer, RuncContainer,
    TempDir, Watch,
};
use serde_json::Value;

/// The record kinds traced, counted and checked.
const KINDS: [&str; 3] = ["exec", "exit", "fork"];
/// How long ctrace stays stopped: the figure.
const STALL: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(60);

/// A shell running `/bin/true` until its stop file appears; stopped on drop, so a failing test
/// leaves no loop loading the machine.
struct Busy {
    child: Child,
    stop: PathBuf,
}

impl Busy {
    fn start(dir: &TempDir) -> Self {
        let stop = dir.0.join("stop");
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "while [ ! -e '{}' ]; do /bin/true; done",
                stop.display()
            ))
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the busy loop");
        Self { child, stop }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, b"");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first exec of `filename` in a container `pred` picks (`pred` sees its `container`).
fn exec_in(w: &Watch, what: &str, filename: &str, pred: impl Fn(&Value) -> bool) -> Value {
    w.wait_for(what, WAIT, |v| {
        v["type"] == "exec" && v["filename"] == filename && pred(&v["container"])
    })
}

#[test]
fn a_ten_second_stall_is_counted_keeps_each_tasks_order_and_names_containers_started_in_it() {
    let Some(bin) = require() else { return };
    if !require_docker() || !require_runc() {
        return;
    }
    let _storm = ctrace_tests::storm();
    let events = KINDS.join(",");
    let w = Watch::start(&bin, &["--events", &events, "--host"]);
    let dir = TempDir::new("stall");
    let busy = Busy::start(&dir);
    // The loop's first execs, read live: activity is under way before the stall.
    w.wait_for("an exec of the busy loop", WAIT, |v| {
        v["type"] == "exec" && v["filename"] == "/bin/true"
    });

    // SAFETY: signalling our own child.
    unsafe { libc::kill(w.pid() as i32, libc::SIGSTOP) };
    let stopped = Instant::now();
    let docker = DockerContainer::run("ctrace-st-stall", &[], &["sleep", "300"]);
    let runc = RuncContainer::run(None, "ctrace-st-stall-runc", &["sleep", "300"]);
    thread::sleep(STALL.saturating_sub(stopped.elapsed()));
    // SAFETY: as above.
    unsafe { libc::kill(w.pid() as i32, libc::SIGCONT) };

    // Processes of both containers, run after the stall, carry their container's name: ctrace
    // saw neither start live, so it learnt them from the runtimes' state.
    assert!(Command::new("docker")
        .args(["exec", &docker.name, "/bin/cat", "/proc/self/stat"])
        .stdout(Stdio::null())
        .status_bounded()
        .expect("docker exec")
        .success());
    assert!(runc.exec(&["/bin/cat", "/proc/self/stat"]).success());
    let in_docker = exec_in(&w, "the docker exec after the stall", "/bin/cat", |c| {
        c["id"] == docker.id.as_str()
    });
    assert_eq!(
        in_docker["container"]["name"], "ctrace-st-stall",
        "{in_docker}"
    );
    assert_eq!(in_docker["container"]["runtime"], "docker", "{in_docker}");
    let in_runc = exec_in(&w, "the runc exec after the stall", "/bin/cat", |c| {
        c["id"] == "ctrace-st-stall-runc"
    });
    assert_eq!(in_runc["container"]["runtime"], "runc", "{in_runc}");
    drop(busy);
    drop(runc);
    drop(docker);

    // No crash: a clean exit (`stop` checks it), its closing `stats` last; the books balance,
    // and every loss is in the output.
    let (records, _) = w.stop();
    let books = ctrace_tests::assert_books_balance(&records, &KINDS);
    for (kind, (produced, delivered, lost)) in KINDS.iter().zip(books) {
        eprintln!("stall: {kind}: produced {produced}, delivered {delivered}, lost {lost}");
    }

    // Each thread's records keep the kernel's order: the stall did not restamp or reorder what
    // waited in the ring. (Across CPUs, records are in the order they were reserved, which
    // may differ from their stamps by the time between the two.) `ts` has a fixed width, so
    // its text sorts as its time.
    let mut last: HashMap<u64, &str> = HashMap::new();
    let mut checked = 0;
    for v in &records {
        if !KINDS.contains(&v["type"].as_str().unwrap_or_default()) {
            continue;
        }
        let tid = get(v, "process.tid").as_u64().expect("tid");
        let ts = v["ts"].as_str().expect("ts");
        assert_eq!(ts.len(), "2026-01-01T00:00:00.000000000Z".len(), "{v}");
        if let Some(prev) = last.insert(tid, ts) {
            assert!(prev <= ts, "thread {tid}: {ts} after {prev}: {v}");
            checked += 1;
        }
    }
    eprintln!("stall: {checked} records checked against their thread's previous one");
    assert!(checked > 0, "no thread had two records");
}
