//! Container attribution across Docker, containerd (two namespaces) and plain runc (default
//! and custom roots), and `ctrace ps` listing them all.

use std::{path::Path, process::Command, time::Duration};

use ctrace_tests::{
    ctrace, get, require, require_containerd, require_docker, require_runc, Bounded as _,
    CtrContainer, DockerContainer, RuncContainer, TempDir, Watch,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// `exec` of `true` whose container has this name and runtime; its exit is attributed the
/// same way.
fn exec_in(w: &Watch, what: &str, name: &str, runtime: &str) -> Value {
    let (n, r) = (name.to_owned(), runtime.to_owned());
    let exec = w.wait_for(what, WAIT, move |v| {
        v["type"] == "exec"
            && get(v, "process.comm") == "true"
            && get(v, "container.name") == n.as_str()
            && get(v, "container.runtime") == r.as_str()
    });
    let pid = get(&exec, "process.pid").clone();
    let exit = w.wait_for(&format!("exit of {what}"), WAIT, move |v| {
        v["type"] == "exit" && get(v, "process.pid") == &pid
    });
    assert_eq!(get(&exit, "container.name"), name, "{exit}");
    assert_eq!(get(&exit, "container.runtime"), runtime, "{exit}");
    assert_eq!(exit["exit_code"], 0, "{exit}");
    exec
}

#[test]
fn docker_containerd_and_runc_containers_are_named_in_events_and_ps() {
    let Some(bin) = require() else { return };
    if !(require_docker() && require_containerd() && require_runc()) {
        return;
    }
    let custom_root = TempDir::new("runc-root");
    let d = DockerContainer::run("ctrace-it-att-docker", &[], &["sleep", "300"]);
    let c1 = CtrContainer::run("default", "ctrace-it-att-ctr1", &[], &["sleep", "300"]);
    let c2 = CtrContainer::run("other", "ctrace-it-att-ctr2", &[], &["sleep", "300"]);
    let r1 = RuncContainer::run(None, "ctrace-it-att-runc1", &["sleep", "300"]);
    let r2 = RuncContainer::run(
        Some(&custom_root.0),
        "ctrace-it-att-runc2",
        &["sleep", "300"],
    );

    let root = custom_root.0.to_str().unwrap();
    let w = Watch::start(&bin, &["--events", "exec,exit", "--runc-root", root]);
    assert!(Command::new("docker")
        .args(["exec", &d.id, "true"])
        .status_bounded()
        .unwrap()
        .success());
    assert!(c1.exec("t1", &["true"]).success());
    assert!(c2.exec("t2", &["true"]).success());
    assert!(r1.exec(&["true"]).success());
    assert!(r2.exec(&["true"]).success());

    let e = exec_in(
        &w,
        "exec in the docker container",
        "ctrace-it-att-docker",
        "docker",
    );
    assert_eq!(get(&e, "container.id"), d.id.as_str());
    assert_eq!(get(&e, "container.image"), "busybox:local");
    let e = exec_in(
        &w,
        "exec in ctr default",
        "ctrace-it-att-ctr1",
        "containerd",
    );
    assert_eq!(get(&e, "container.namespace"), "default");
    let e = exec_in(&w, "exec in ctr other", "ctrace-it-att-ctr2", "containerd");
    assert_eq!(get(&e, "container.namespace"), "other");
    exec_in(
        &w,
        "exec in runc (default root)",
        "ctrace-it-att-runc1",
        "runc",
    );
    exec_in(
        &w,
        "exec in runc (custom root)",
        "ctrace-it-att-runc2",
        "runc",
    );
    let (records, _) = w.stop();
    // Never a wrong name: every record naming one of ours carries its own id.
    for v in &records {
        if let Some(name) = get(v, "container.name").as_str() {
            if name == "ctrace-it-att-docker" {
                assert_eq!(get(v, "container.id"), d.id.as_str(), "{v}");
            }
        }
    }

    let ps = ctrace(&bin, &["ps", "--json", "--runc-root", root]);
    let rows: Vec<Value> = ps
        .lines()
        .map(|l| serde_json::from_str(l).expect("ps json"))
        .collect();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from ctrace ps: {ps}"))
            .clone()
    };
    let rd = row("ctrace-it-att-docker");
    assert_eq!(
        (rd["runtime"].clone(), rd["state"].clone()),
        ("docker".into(), "running".into())
    );
    assert_eq!(rd["init_pid"], d.init_pid());
    assert_eq!(rd["image"], "busybox:local");
    let r = row("ctrace-it-att-ctr1");
    assert_eq!(
        (r["runtime"].clone(), r["namespace"].clone()),
        ("containerd".into(), "default".into())
    );
    assert_eq!(r["init_pid"], c1.init_pid());
    assert_eq!(r["image"], CtrContainer::IMAGE);
    assert_eq!(row("ctrace-it-att-ctr2")["namespace"], "other");
    assert_eq!(row("ctrace-it-att-runc1")["init_pid"], r1.init_pid());
    assert_eq!(row("ctrace-it-att-runc2")["runtime"], "runc");
    // The human table has them too.
    let table = ctrace(&bin, &["ps", "--runc-root", root]);
    for name in [
        "ctrace-it-att-docker",
        "ctrace-it-att-ctr1",
        "ctrace-it-att-ctr2",
        "ctrace-it-att-runc1",
        "ctrace-it-att-runc2",
    ] {
        assert!(table.contains(name), "{name} not in:\n{table}");
    }
    assert!(table.starts_with("RUNTIME"), "{table}");
    drop((d, c1, c2, r1, r2));
}

#[test]
fn a_container_started_after_ctrace_is_attributed_from_its_first_event() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    // With --host, an event of the container that was not attributed to it would show too.
    let w = Watch::start(&bin, &["--events", "exec,exit", "--host"]);
    let c = DockerContainer::run("ctrace-it-att-late", &[], &["sh", "-c", "sleep 1; exit 5"]);
    assert_eq!(c.wait(Duration::from_secs(30)), 5);
    let stop = w.wait_for("container_stop", WAIT, |v| {
        v["type"] == "container_stop" && get(v, "container.name") == "ctrace-it-att-late"
    });
    assert_eq!(get(&stop, "exit.exit_code"), 5);
    assert_eq!(stop["reason"], "exited");
    let (records, _) = w.stop();
    let ours: Vec<&Value> = records
        .iter()
        .filter(|v| get(v, "container.id") == c.id.as_str())
        .collect();
    assert!(!ours.is_empty());
    // The first event of the container is attributed to it (by id at least), and its init's
    // exec carries the name.
    let init_exec = ours
        .iter()
        .find(|v| v["type"] == "exec" && v["filename"] == "/bin/sh")
        .expect("exec of the init");
    assert_eq!(
        get(init_exec, "container.name"),
        "ctrace-it-att-late",
        "{init_exec}"
    );
    // Every event from the container's cgroup, the first ones included, names it.
    let cgroup = &init_exec["cgroup_id"];
    for v in records.iter().filter(|v| &v["cgroup_id"] == cgroup) {
        assert_eq!(get(v, "container.id"), c.id.as_str(), "{v}");
    }
    let start = records
        .iter()
        .find(|v| v["type"] == "container_start" && get(v, "container.id") == c.id.as_str())
        .expect("container_start");
    assert_eq!(start["filename"], "/bin/sh");
}

#[test]
fn after_docker_rm_late_events_still_name_the_container() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let c = DockerContainer::run("ctrace-it-att-gone", &[], &["sleep", "300"]);
    let w = Watch::start(&bin, &["--events", "exit,cgroup"]);
    c.remove();
    // The init's exit and the cgroup removal come after Docker forgot the container.
    let exit = w.wait_for("exit of the removed container's init", WAIT, |v| {
        v["type"] == "exit" && get(v, "container.id") == c.id.as_str()
    });
    assert_eq!(get(&exit, "container.name"), "ctrace-it-att-gone");
    let rm = w.wait_for("cgroup_rmdir", WAIT, |v| {
        v["type"] == "cgroup_rmdir"
            && get(v, "cgroup.hierarchy") == 0
            && get(v, "cgroup.path")
                .as_str()
                .is_some_and(|p| p.ends_with(&c.id))
    });
    assert_eq!(
        get(&rm, "cgroup.container.name"),
        "ctrace-it-att-gone",
        "{rm}"
    );
    w.stop();
    assert!(
        !Path::new(&format!("/var/lib/docker/containers/{}", c.id)).exists(),
        "docker really forgot it"
    );
}
