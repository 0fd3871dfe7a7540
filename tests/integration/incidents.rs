//! Incidents as the lab reproduces them: kills from the host, OOM kills (of the init and of a
//! child), capability denials and allowances, for Docker, containerd and plain runc.

use std::{process::Command, time::Duration};

use ctrace_tests::{
    get, require, require_containerd, require_docker, require_runc, Bounded as _, CtrContainer,
    DockerContainer, RuncContainer, Watch,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn kill9_from_host(pid: u32) {
    // A host shell, as an operator would.
    let st = Command::new("/bin/sh")
        .args(["-c", &format!("kill -9 {pid}")])
        .status_bounded()
        .unwrap();
    assert!(st.success());
}

fn assert_kill_from_host(w: &Watch, name: &str, runtime: &str, init: u32) {
    let n = name.to_owned();
    let kill = w.wait_for(&format!("kill incident for {name}"), WAIT, move |v| {
        v["type"] == "kill" && get(v, "container.name") == n.as_str()
    });
    assert_eq!(kill["signal"], "SIGKILL", "{kill}");
    assert_eq!(get(&kill, "target.pid"), init);
    assert_eq!(get(&kill, "container.runtime"), runtime);
    assert!(
        get(&kill, "sender.container").is_null(),
        "sent from the host: {kill}"
    );
    assert_eq!(get(&kill, "sender.comm"), "sh");
    assert_eq!(get(&kill, "target_exit.exit_code"), 137);
    assert_eq!(kill["container_stopped"], true);
    let expl = kill["explanation"].as_str().unwrap();
    assert!(
        expl.contains(&format!(
            "in {name}, {runtime}) killed by SIGKILL from sh (pid"
        )),
        "{expl}"
    );
    assert!(
        expl.ends_with(&format!("{name} exited with 137 (SIGKILL)")),
        "{expl}"
    );
    let n = name.to_owned();
    let stop = w.wait_for(&format!("container_stop of {name}"), WAIT, move |v| {
        v["type"] == "container_stop" && get(v, "container.name") == n.as_str()
    });
    assert_eq!(get(&stop, "exit.exit_code"), 137);
    assert_eq!(stop["reason"], "killed");
    assert_eq!(get(&stop, "by.comm"), "sh");
    assert!(stop["ts"].as_str() >= kill["ts"].as_str());
}

#[test]
fn kill_9_of_a_docker_containers_init_from_a_host_shell() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let c = DockerContainer::run("ctrace-it-inc-kill", &[], &["sleep", "300"]);
    let w = Watch::start(&bin, &[]);
    let init = c.init_pid();
    kill9_from_host(init);
    assert_eq!(c.wait(WAIT), 137);
    assert_kill_from_host(&w, "ctrace-it-inc-kill", "docker", init);
    w.stop();
}

#[test]
fn kill_9_of_a_ctr_and_a_runc_containers_init() {
    let Some(bin) = require() else { return };
    if !(require_containerd() && require_runc()) {
        return;
    }
    let c = CtrContainer::run("default", "ctrace-it-inc-ctrkill", &[], &["sleep", "300"]);
    let r = RuncContainer::run(None, "ctrace-it-inc-runckill", &["sleep", "300"]);
    let w = Watch::start(&bin, &[]);
    let (ci, ri) = (c.init_pid(), r.init_pid());
    kill9_from_host(ci);
    kill9_from_host(ri);
    assert_kill_from_host(&w, "ctrace-it-inc-ctrkill", "containerd", ci);
    assert_kill_from_host(&w, "ctrace-it-inc-runckill", "runc", ri);
    w.stop();
}

/// With classic tracepoints only (kernels where BTF-typed ones cannot load), the kernel side
/// does not read a signal's target task: ctrace places it from its process table. Both kinds
/// of target are checked: a container's init older than ctrace (read from /proc at start) and
/// a process started in the container afterwards (learnt from its records).
#[test]
fn classic_tracepoints_place_kill_targets_from_the_process_table() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let name = "ctrace-it-inc-classic";
    let c = DockerContainer::run(name, &[], &["sleep", "300"]);
    let init = c.init_pid();
    let cgroup = ctrace_tests::cgroup_id_of(init).expect("container cgroup");
    let w = Watch::start(&bin, &["--no-tp-btf"]);
    let st = Command::new("docker")
        .args(["exec", "-d", name, "sleep", "302"])
        .status_bounded()
        .unwrap();
    assert!(st.success());
    let exec = w.wait_for("exec of sleep 302 in the container", WAIT, |v| {
        v["type"] == "exec"
            && get(v, "container.name") == name
            && v["filename"].as_str().is_some_and(|f| f.ends_with("sleep"))
    });
    let child = exec["process"]["pid"].as_u64().unwrap() as u32;
    kill9_from_host(child);
    let s = w.wait_for("SIGKILL to the exec'd process", WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == child
    });
    // Not read in the kernel (the classic tracepoint has only pid and comm) but placed.
    assert_eq!(get(&s, "target.cgroup_id"), cgroup, "{s}");
    assert_eq!(get(&s, "target.container.name"), name, "{s}");
    let k = w.wait_for("kill incident of the exec'd process", WAIT, |v| {
        v["type"] == "kill" && get(v, "target.pid") == child
    });
    assert_eq!(get(&k, "container.name"), name, "{k}");
    assert_eq!(k["container_stopped"], false, "{k}");
    kill9_from_host(init);
    assert_eq!(c.wait(WAIT), 137);
    let k = w.wait_for("kill incident of the init", WAIT, |v| {
        v["type"] == "kill" && get(v, "target.pid") == init
    });
    assert_eq!(get(&k, "container.name"), name, "{k}");
    assert_eq!(get(&k, "target.cgroup_id"), cgroup, "{k}");
    assert_eq!(k["container_stopped"], true, "{k}");
    assert_eq!(get(&k, "target_exit.exit_code"), 137, "{k}");
    assert!(get(&k, "sender.container").is_null(), "{k}");
    let (_, stderr) = w.stop();
    assert!(
        stderr.contains("run-queue delay needs BTF-typed tracepoints"),
        "{stderr}"
    );
}

/// Whether `oom:mark_victim` passes the task (6.8+: its format has `uid`), so the kernel side
/// reads the victim's cgroup and memory counter itself.
fn mark_victim_passes_the_task() -> bool {
    std::fs::read_to_string("/sys/kernel/tracing/events/oom/mark_victim/format")
        .is_ok_and(|f| f.contains(" uid;"))
}

/// A cgroup made for one test, removed (with what Docker made beside it in other hierarchies)
/// when dropped.
struct ParentCgroup(Vec<std::path::PathBuf>);

impl Drop for ParentCgroup {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A limit on a cgroup above the container, as a Kubernetes pod's: the OOM names that limit,
/// how far up it is, and the figures at the kill, not the container's own (higher) limit.
#[test]
fn a_limit_above_the_container_is_named_with_its_level() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let parent = "ctrace-it-par";
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory");
    let (memdir, limit_file) = if v1.join("memory.limit_in_bytes").exists() {
        (v1.join(parent), "memory.limit_in_bytes")
    } else {
        (ctrace_tests::cgroup2_root().join(parent), "memory.max")
    };
    // Docker makes the parent in every other hierarchy too; all are removed at the end.
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join(parent))
        .collect();
    dirs.push(memdir.clone());
    let _cleanup = ParentCgroup(dirs);
    std::fs::create_dir_all(&memdir).unwrap();
    std::fs::write(memdir.join(limit_file), (48u64 << 20).to_string()).unwrap();
    let w = Watch::start(&bin, &["--events", "oom"]);
    let c = DockerContainer::run(
        "ctrace-it-inc-podlimit",
        &["-m", "100m", "--cgroup-parent", &format!("/{parent}")],
        &["tail", "/dev/zero"],
    );
    assert_eq!(c.wait(WAIT), 137);
    let oom = oom_of(&w, "ctrace-it-inc-podlimit");
    c.remove();
    drop(c);
    w.stop();
    assert_eq!(oom["scope"], "container_limit", "{oom}");
    // Before 6.8 the figures come from the cgroup files, found by the same walk up the tree.
    let source = if mark_victim_passes_the_task() {
        "kernel"
    } else {
        "cgroupfs"
    };
    assert_eq!(get(&oom, "memory.source"), source, "{oom}");
    assert_eq!(get(&oom, "memory.limit_bytes"), 48u64 << 20, "{oom}");
    assert_eq!(get(&oom, "memory.limit_depth"), 1, "{oom}");
    let peak = get(&oom, "memory.peak_bytes").as_u64().unwrap();
    assert!(peak >= 95 * (48 << 20) / 100, "peak at the OOM: {oom}");
    let expl = oom["explanation"].as_str().unwrap();
    assert!(
        expl.contains(
            "ctrace-it-inc-podlimit hit a memory limit of 48 MiB set one cgroup level above its own"
        ),
        "{expl}"
    );
}

/// The records of a stopped watch before its closing `stats`, which must be there, last.
/// ctrace prints it only after it detached its programs, drained the ring and flushed every
/// incident still pending (a kill waits up to 5 s for its target's exit): anything it reports
/// about what happened before the stop is before this marker.
fn before_closing_stats(mut records: Vec<Value>) -> Vec<Value> {
    let last = records.pop();
    assert!(
        last.as_ref().is_some_and(|v| v["type"] == "stats"),
        "the closing stats record ends the stream: {last:?}"
    );
    records
}

fn oom_of(w: &Watch, name: &str) -> Value {
    let n = name.to_owned();
    w.wait_for(&format!("oom_kill in {name}"), WAIT, move |v| {
        v["type"] == "oom_kill" && get(v, "container.name") == n.as_str()
    })
}

#[test]
fn docker_memory_limit_oom_is_one_incident_with_limit_usage_and_victim() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let w = Watch::start(&bin, &[]);
    let c = DockerContainer::run(
        "ctrace-it-inc-lowmem100",
        &["-m", "100m"],
        &["tail", "/dev/zero"],
    );
    assert_eq!(c.wait(WAIT), 137);
    let oom = oom_of(&w, "ctrace-it-inc-lowmem100");
    assert_eq!(oom["scope"], "container_limit", "{oom}");
    assert_eq!(get(&oom, "memory.limit_bytes"), 100u64 << 20);
    let peak = get(&oom, "memory.peak_bytes").as_u64().unwrap();
    assert!(peak >= 95 * (100 << 20) / 100, "peak near the limit: {oom}");
    assert_eq!(get(&oom, "victim.comm"), "tail");
    assert!(
        get(&oom, "victim.rss_kb").as_u64().unwrap() > 50 * 1024,
        "{oom}"
    );
    assert_eq!(get(&oom, "victim_exit.exit_code"), 137);
    assert_eq!(oom["container_stopped"], true);
    if mark_victim_passes_the_task() {
        // Read by the kernel at the OOM, so not at the mercy of how fast the cgroup's files
        // are read afterwards (on a loaded machine the cgroup can be gone by then).
        assert_eq!(get(&oom, "memory.source"), "kernel", "{oom}");
        assert_eq!(get(&oom, "memory.limit_depth"), 0, "{oom}");
        let usage = get(&oom, "memory.usage_bytes").as_u64().unwrap();
        assert!(usage >= 95 * (100 << 20) / 100, "usage at the OOM: {oom}");
    }
    let expl = oom["explanation"].as_str().unwrap();
    assert!(
        expl.contains("was OOM-killed: ctrace-it-inc-lowmem100 hit its memory limit of 100 MiB"),
        "{expl}"
    );
    let stop = w.wait_for("container_stop", WAIT, |v| {
        v["type"] == "container_stop" && get(v, "container.name") == "ctrace-it-inc-lowmem100"
    });
    assert_eq!(stop["reason"], "oom_killed");
    // The OOM killer's SIGKILL and any repeated mark_victim come before the victim's exit,
    // so before the container_stop seen above; a kill incident made of that SIGKILL would
    // wait for its deadline, which the stop flushes. All of it is before the closing stats.
    let (records, _) = w.stop();
    let records = before_closing_stats(records);
    let ooms = records
        .iter()
        .filter(|v| {
            v["type"] == "oom_kill" && get(v, "container.name") == "ctrace-it-inc-lowmem100"
        })
        .count();
    assert_eq!(ooms, 1, "exactly one oom_kill");
    assert!(
        !records
            .iter()
            .any(|v| v["type"] == "kill" && get(v, "container.name") == "ctrace-it-inc-lowmem100"),
        "the OOM killer's SIGKILL is part of the OOM incident"
    );
}

#[test]
fn oom_of_a_child_names_it_and_the_container_keeps_running() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let w = Watch::start(&bin, &[]);
    // The init only sleeps: it allocates nothing after the kill, so a second OOM (of the init,
    // while the victim's memory is still being reaped) cannot stop the container. The child is
    // started with `docker exec`.
    let name = "ctrace-it-inc-childoom";
    let c = DockerContainer::run(name, &["-m", "32m"], &["sleep", "300"]);
    let st = std::process::Command::new("docker")
        .args(["exec", &c.id, "tail", "/dev/zero"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status_bounded()
        .unwrap();
    assert_eq!(st.code(), Some(137), "the child was OOM-killed");
    let oom = oom_of(&w, name);
    assert_eq!(get(&oom, "victim.comm"), "tail");
    assert_ne!(
        get(&oom, "victim.pid"),
        c.init_pid(),
        "the victim is a child"
    );
    assert_eq!(oom["container_stopped"], false);
    assert_eq!(c.inspect("{{.State.Running}}"), "true");
    // ctrace reports a stop exactly when the container stopped. The marker: a `true` run in
    // the container now. Its exec is recorded after the victim's exit (docker exec returned
    // once the victim was reaped), whose handling is where a wrong stop would come from; and
    // Docker can exec there only while the init lives, so a real stop comes after the marker.
    let ours = |v: &Value| get(v, "container.name") == name;
    let marker = Command::new("docker")
        .args(["exec", &c.id, "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status_bounded()
        .expect("docker exec true");
    if marker.success() {
        let is_marker =
            |v: &Value| v["type"] == "exec" && get(v, "process.comm") == "true" && ours(v);
        w.wait_for(
            "exec of the marker `true` in the container",
            WAIT,
            is_marker,
        );
        let mut records = w.records();
        let at = records.iter().position(is_marker).expect("the marker");
        records.truncate(at);
        assert!(
            records.iter().any(|v| v["type"] == "oom_kill" && ours(v)),
            "the marker comes after the OOM kill"
        );
        let stops: Vec<&Value> = records
            .iter()
            .filter(|v| v["type"] == "container_stop" && ours(v))
            .collect();
        assert!(
            stops.is_empty(),
            "the container was not stopped: {stops:#?}"
        );
        w.stop();
    } else {
        // Rarely the kernel, still reaping the victim, OOM-kills the init too; then that stop
        // must be there, once, as an OOM (the stop drains the ring and flushes the rest).
        c.wait(WAIT);
        let (records, _) = w.stop();
        let mine: Vec<&Value> = records.iter().filter(|v| ours(v)).collect();
        let stops: Vec<&&Value> = mine
            .iter()
            .filter(|v| v["type"] == "container_stop")
            .collect();
        assert_eq!(stops.len(), 1, "{mine:#?}");
        assert_eq!(stops[0]["reason"], "oom_killed", "{mine:#?}");
    }
}

#[test]
fn ctr_memory_limit_oom() {
    let Some(bin) = require() else { return };
    if !require_containerd() {
        return;
    }
    let w = Watch::start(&bin, &[]);
    let c = CtrContainer::run(
        "default",
        "ctrace-it-inc-ctroom",
        &["--memory-limit", "67108864"],
        &["tail", "/dev/zero"],
    );
    let oom = oom_of(&w, "ctrace-it-inc-ctroom");
    assert_eq!(get(&oom, "container.runtime"), "containerd");
    assert_eq!(get(&oom, "memory.limit_bytes"), 64u64 << 20);
    assert_eq!(oom["scope"], "container_limit");
    assert_eq!(get(&oom, "victim.comm"), "tail");
    let peak = get(&oom, "memory.peak_bytes").as_u64().unwrap();
    assert!(peak >= 95 * (64 << 20) / 100, "peak near the limit: {oom}");
    assert_eq!(oom["container_stopped"], true, "{oom}");
    w.wait_for("container_stop", WAIT, |v| {
        v["type"] == "container_stop" && get(v, "container.name") == "ctrace-it-inc-ctroom"
    });
    // A repeated mark_victim comes before the victim's exit, so before the container_stop
    // seen above, and a pending incident is flushed by the stop: before the closing stats.
    let (records, _) = w.stop();
    let records = before_closing_stats(records);
    let ooms = records
        .iter()
        .filter(|v| v["type"] == "oom_kill" && get(v, "container.name") == "ctrace-it-inc-ctroom")
        .count();
    assert_eq!(ooms, 1, "exactly one oom_kill");
    drop(c);
}

/// A plain runc container whose child (started with `runc exec`) is OOM-killed: the incident
/// names the child and the container keeps running.
#[test]
fn runc_oom_of_a_child_keeps_the_container_running() {
    let Some(bin) = require() else { return };
    if !require_runc() {
        return;
    }
    let w = Watch::start(&bin, &[]);
    let id = "ctrace-it-inc-runcchildoom";
    let r = RuncContainer::run_with_spec(None, id, &["sleep", "300"], |spec| {
        spec["linux"]["resources"]["memory"] = serde_json::json!({ "limit": 32u64 << 20 });
    });
    let init = r.init_pid();
    let st = r.exec(&["tail", "/dev/zero"]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        None,
        "runc exec reports the child's death as an exit code"
    );
    assert_eq!(st.code(), Some(137), "the child was OOM-killed");
    let oom = oom_of(&w, id);
    assert_eq!(get(&oom, "container.runtime"), "runc");
    assert_eq!(get(&oom, "memory.limit_bytes"), 32u64 << 20);
    assert_eq!(get(&oom, "victim.comm"), "tail");
    assert_ne!(get(&oom, "victim.pid"), init, "the victim is a child");
    assert_eq!(oom["container_stopped"], false, "{oom}");
    assert!(ctrace_tests::process(init).is_some(), "the init still runs");
    w.stop();
    drop(r);
}

fn capability(w: &Watch, name: &str, verdict: &str) -> Value {
    let (n, v2) = (name.to_owned(), verdict.to_owned());
    w.wait_for(&format!("{verdict} CAP_CHOWN in {name}"), WAIT, move |v| {
        v["type"] == "capability"
            && v["capability"] == "CAP_CHOWN"
            && v["verdict"] == v2.as_str()
            && get(v, "container.name") == n.as_str()
    })
}

#[test]
fn capability_denied_without_it_and_allowed_with_it() {
    let Some(bin) = require() else { return };
    if !(require_docker() && require_containerd() && require_runc()) {
        return;
    }
    let w = Watch::start(&bin, &["--events", "capability:all"]);
    // --verbose shows allowed checks with the default events too; without it they are not.
    let verbose = Watch::start(&bin, &["--verbose"]);
    let quiet = Watch::start(&bin, &[]);
    let denied = DockerContainer::run(
        "ctrace-it-inc-capdrop",
        &["--cap-drop", "ALL"],
        &["chown", "1", "/tmp"],
    );
    let allowed = DockerContainer::run("ctrace-it-inc-capok", &[], &["chown", "1", "/tmp"]);
    assert_eq!(denied.wait(WAIT), 1);
    assert_eq!(allowed.wait(WAIT), 0);
    let d = capability(&w, "ctrace-it-inc-capdrop", "denied");
    assert_eq!(get(&d, "process.comm"), "chown");
    assert!(
        d["explanation"]
            .as_str()
            .unwrap()
            .contains("in ctrace-it-inc-capdrop")
            || d["explanation"]
                .as_str()
                .unwrap()
                .contains("ctrace-it-inc-capdrop, docker")
    );
    capability(&w, "ctrace-it-inc-capok", "allowed");
    capability(&verbose, "ctrace-it-inc-capok", "allowed");
    capability(&quiet, "ctrace-it-inc-capdrop", "denied");
    let (quiet_records, _) = quiet.stop();
    assert!(
        !quiet_records
            .iter()
            .any(|v| v["type"] == "capability" && v["verdict"] == "allowed"),
        "allowed checks only with --verbose or capability:all"
    );
    verbose.stop();
    // containerd (default capabilities) and runc (`runc spec` keeps only a few: no CAP_CHOWN).
    let c = CtrContainer::run("default", "ctrace-it-inc-capctr", &[], &["sleep", "300"]);
    assert!(c.exec("chown1", &["chown", "1", "/tmp"]).success());
    capability(&w, "ctrace-it-inc-capctr", "allowed");
    let r = RuncContainer::run(None, "ctrace-it-inc-capruncc", &["sleep", "300"]);
    assert!(!r.exec(&["chown", "1", "/tmp"]).success());
    capability(&w, "ctrace-it-inc-capruncc", "denied");
    w.stop();
}

/// Runs `cmd` in the container with `docker exec`; its exit code (137: OOM-killed).
fn docker_exec(c: &DockerContainer, cmd: &[&str]) -> Option<i32> {
    Command::new("docker")
        .args(["exec", &c.id])
        .args(cmd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status_bounded()
        .unwrap()
        .code()
}

#[test]
fn oom_breakdown_names_shmem_filling_dev_shm() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let w = Watch::start(&bin, &["--events", "oom"]);
    // tmpfs pages are charged to the cgroup but mapped by nobody: the victim's RSS is tiny,
    // the other 62 MiB are shmem, which the kill does not free.
    let name = "ctrace-it-inc-shmoom";
    let c = DockerContainer::run(
        name,
        &["-m", "64m", "--shm-size", "256m"],
        &["sleep", "300"],
    );
    let dd = [
        "dd",
        "if=/dev/zero",
        "of=/dev/shm/fill",
        "bs=1M",
        "count=200",
    ];
    assert_eq!(docker_exec(&c, &dd), Some(137), "dd was OOM-killed");
    let oom = oom_of(&w, name);
    assert_eq!(oom["scope"], "container_limit", "{oom}");
    let shmem = get(&oom, "memory.breakdown.shmem").as_u64().unwrap();
    assert!(
        shmem > 32 << 20,
        "more than half of the limit is shmem: {oom}"
    );
    let file = get(&oom, "memory.breakdown.file").as_u64().unwrap();
    assert!(file >= shmem, "file includes shmem: {oom}");
    let rss = get(&oom, "victim.rss_kb").as_u64().unwrap();
    assert!(rss < 16 * 1024, "not the victim's RSS: {oom}");
    let expl = oom["explanation"].as_str().unwrap();
    assert!(expl.contains(" MiB of 64 MiB (tmpfs, /dev/shm)"), "{expl}");
    assert!(expl.contains("; shmem "), "{expl}");
    eprintln!("{expl}\n{}", oom["memory"]);
    w.stop();
}

#[test]
fn oom_breakdown_names_anon_of_an_anon_hog() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let w = Watch::start(&bin, &["--events", "oom"]);
    // The init only sleeps, so the cgroup outlives the kill and is read after it, once the
    // victim's anonymous memory is freed.
    let name = "ctrace-it-inc-anonoom";
    let c = DockerContainer::run(name, &["-m", "32m"], &["sleep", "300"]);
    assert_eq!(
        docker_exec(&c, &["tail", "/dev/zero"]),
        Some(137),
        "tail was OOM-killed"
    );
    let oom = oom_of(&w, name);
    assert_eq!(get(&oom, "victim.comm"), "tail");
    let b = get(&oom, "memory.breakdown");
    assert!(b["anon"].is_u64(), "{oom}");
    assert!(b["sock"].is_null() || b["sock"].is_u64(), "{oom}");
    if !mark_victim_passes_the_task() {
        // Without the kernel's usage at the OOM nothing tells whether the files were read
        // before or after the victim's memory was freed.
        w.stop();
        return;
    }
    let anon = b["anon"].as_u64().unwrap();
    assert!(
        anon > 16 << 20,
        "more than half of the limit is anon: {oom}"
    );
    let shmem = b["shmem"].as_u64().unwrap_or(0);
    assert!(shmem < 16 << 20, "{oom}");
    // "anon A of U": U is the usage at the OOM, the limit or just below it (31.8 MiB seen:
    // the charge that failed was larger than what was left).
    let usage = get(&oom, "memory.usage_bytes").as_u64().unwrap();
    assert!(
        usage * 100 >= (32u64 << 20) * 95,
        "usage at the OOM near the limit: {oom}"
    );
    let expl = oom["explanation"].as_str().unwrap();
    let breakdown = expl.split_once("; anon ").map_or("", |(_, rest)| rest);
    assert!(
        breakdown.contains(" MiB of ") && breakdown.contains(" MiB; victim RSS"),
        "{expl}"
    );
    eprintln!("{expl}\n{}", oom["memory"]);
    w.stop();
}

/// `--restart on-failure:5 -m 32m … tail /dev/zero`: Docker brings the container back after
/// each OOM kill, with a growing backoff; from the third death on, each death is a
/// `restart_loop` naming every death's cause and the time to each restart.
#[test]
fn docker_restart_policy_oom_loop_is_one_restart_loop() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let name = "ctrace-it-inc-restart-loop";
    let w = Watch::start(&bin, &[]);
    let c = DockerContainer::run(
        name,
        &["--restart", "on-failure:5", "-m", "32m"],
        &["tail", "/dev/zero"],
    );
    // Five restarts: six deaths, the last one for good.
    let last = w.wait_for(
        "the restart_loop of the sixth death",
        Duration::from_secs(120),
        |v| v["type"] == "restart_loop" && get(v, "container.name") == name && v["count"] == 6,
    );
    assert_eq!(c.wait(WAIT), 137);
    let (records, _) = w.stop();
    let loops: Vec<&Value> = records
        .iter()
        .filter(|v| v["type"] == "restart_loop" && get(v, "container.name") == name)
        .collect();
    // The third, fourth, fifth and sixth deaths; one loop (one `since`).
    let counts: Vec<u64> = loops.iter().map(|v| v["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [3, 4, 5, 6], "{loops:?}");
    assert!(
        loops.iter().all(|v| v["since"] == last["since"]),
        "{loops:?}"
    );
    let deaths = last["deaths"].as_array().unwrap();
    assert_eq!(deaths.len(), 6, "{last}");
    for (i, d) in deaths.iter().enumerate() {
        assert_eq!(d["cause"], "oom_killed", "{last}");
        assert_eq!(get(d, "exit.exit_code"), 137, "{last}");
        assert_eq!(d["limit_bytes"], 32u64 << 20, "{last}");
        if i < 5 {
            // Docker's backoff before each restart: 100 ms, doubling.
            let after = d["restarted_after_s"]
                .as_f64()
                .unwrap_or_else(|| panic!("{last}"));
            assert!(after > 0.0, "{last}");
        } else {
            assert!(d["restarted_after_s"].is_null(), "never restarted: {last}");
        }
    }
    let expl = last["explanation"].as_str().unwrap();
    assert!(
        expl.starts_with(&format!(
            "{name} (docker) is in a restart loop: 6 deaths in "
        )) && expl.contains("each OOM-killed at its 32 MiB limit; restarted after "),
        "{expl}"
    );
    // Every death was also told on its own, as before.
    let stops = records
        .iter()
        .filter(|v| v["type"] == "container_stop" && get(v, "container.name") == name)
        .count();
    assert_eq!(stops, 6, "six container_stop records");
}

/// Who held the memory: an init holding 40 MiB (an awk string) and a child that allocates
/// until the 128 MiB limit. The child is the victim; the kernel's own report (`/dev/kmsg`)
/// lists both with their RSS, and the container goes on: not a restart.
#[test]
fn oom_kill_lists_the_tasks_that_held_the_memory() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let name = "ctrace-it-inc-oom-tasks";
    let w = Watch::start(&bin, &[]);
    let c = DockerContainer::run(
        name,
        &["-m", "128m"],
        &[
            "busybox",
            "awk",
            r#"BEGIN { s = sprintf("%40000000s", "x"); system("tail /dev/zero"); system("sleep 300") }"#,
        ],
    );
    let init = c.init_pid();
    let oom = oom_of(&w, name);
    let tasks = &oom["tasks"];
    assert_eq!(tasks["source"], "kmsg", "{oom}");
    assert_eq!(tasks["listed"], 2, "{oom}");
    let top = tasks["top"].as_array().unwrap();
    let victim = get(&oom, "victim.pid").as_u64().unwrap();
    assert_eq!(top[0]["pid"], victim, "the victim holds the most: {oom}");
    assert_eq!(top[0]["comm"], "tail", "{oom}");
    let holder = top
        .iter()
        .find(|t| t["pid"] == u64::from(init))
        .unwrap_or_else(|| panic!("the init is listed: {oom}"));
    let held = holder["rss_bytes"].as_u64().unwrap();
    assert!(held >= 38 << 20, "the init holds its 40 MB string: {oom}");
    assert_eq!(oom["container_stopped"], false, "{oom}");
    let expl = oom["explanation"].as_str().unwrap();
    assert!(
        expl.contains("; largest of its 2 tasks: tail (pid "),
        "{expl}"
    );
    assert!(
        expl.ends_with(&format!("{name} goes on (its init lives): not a restart")),
        "{expl}"
    );
    drop(c);
    w.stop();
}

/// A SIGKILL from a userspace OOM killer (a program named `earlyoom`) is an `oom_kill` with
/// `scope: userspace`, the killer named and the cgroup's memory pressure, not a kill.
#[test]
fn a_userspace_oom_killers_sigkill_is_an_oom_kill() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let name = "ctrace-it-inc-earlyoom";
    let dir = ctrace_tests::TempDir::new("earlyoom");
    // comm of a script is its file's name.
    let killer = dir.0.join("earlyoom");
    std::fs::write(&killer, "#!/bin/sh\nkill -9 \"$1\"\n").unwrap();
    let mut perms = std::fs::metadata(&killer).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&killer, perms).unwrap();
    let w = Watch::start(&bin, &[]);
    let c = DockerContainer::run(name, &["-m", "64m"], &["sleep", "300"]);
    let init = c.init_pid();
    let st = Command::new(&killer)
        .arg(init.to_string())
        .status_bounded()
        .unwrap();
    assert!(st.success());
    assert_eq!(c.wait(WAIT), 137);
    let oom = oom_of(&w, name);
    assert_eq!(oom["scope"], "userspace", "{oom}");
    assert_eq!(get(&oom, "trigger.comm"), "earlyoom", "{oom}");
    assert_eq!(get(&oom, "victim.pid"), u64::from(init), "{oom}");
    assert_eq!(oom["container_stopped"], true, "{oom}");
    assert_eq!(get(&oom, "memory.limit_bytes"), 64u64 << 20, "{oom}");
    // PSI of the container's cgroup (the unified tree's on a hybrid host).
    assert!(get(&oom, "memory.pressure.some").is_object(), "{oom}");
    let expl = oom["explanation"].as_str().unwrap();
    assert!(
        expl.contains("was OOM-killed: the userspace OOM killer earlyoom (pid ")
            && expl.contains("sent SIGKILL with the container's memory pressure (some avg10 "),
        "{expl}"
    );
    let (records, _) = w.stop();
    assert!(
        !records
            .iter()
            .any(|v| v["type"] == "kill" && get(v, "container.name") == name),
        "not a kill as well"
    );
    let stop = records
        .iter()
        .find(|v| v["type"] == "container_stop" && get(v, "container.name") == name)
        .expect("container_stop");
    assert_eq!(stop["reason"], "oom_killed", "{stop}");
}
