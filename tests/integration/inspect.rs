//! `ctrace inspect`: capability sets, namespaces and process trees of Docker, containerd and
//! runc containers, checked against `/proc/<pid>/status` and `readlink /proc/<pid>/ns/*` read
//! here; `--diff`; `--pid host` reported as shared with the host; bad names.

use std::{collections::BTreeMap, process::Command, time::Duration};

use ctrace_tests::{
    ctrace, eventually, require, require_containerd, require_docker, require_runc, Bounded as _,
    CtrContainer, DockerContainer, RuncContainer, TempDir,
};
use serde_json::Value;

/// The kernel's capability names by number (include/uapi/linux/capability.h), written out
/// here independently of ctrace's table.
const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn decode(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAPS.get(b)
                .map_or_else(|| format!("CAP_{b}"), |n| (*n).to_owned())
        })
        .collect()
}

/// `CapInh`.. `CapAmb` of `/proc/<pid>/status`, by the names `inspect --json` uses.
fn status_caps(pid: u32) -> BTreeMap<&'static str, u64> {
    let s = ctrace_tests::process(pid)
        .expect("process")
        .status()
        .expect("status");
    BTreeMap::from([
        ("inheritable", s.capinh),
        ("permitted", s.capprm),
        ("effective", s.capeff),
        ("bounding", s.capbnd.expect("CapBnd")),
        ("ambient", s.capamb.expect("CapAmb")),
    ])
}

/// The inodes behind `/proc/<pid>/ns/*` (as `readlink` shows them): type → inode, without
/// the `*_for_children` links.
fn readlink_ns(pid: u32) -> BTreeMap<String, u64> {
    let ns = ctrace_tests::process(pid)
        .expect("process")
        .namespaces()
        .expect("ns");
    ns.0.into_iter()
        .filter_map(|(t, n)| Some((t.into_string().ok()?, n.identifier)))
        .filter(|(t, _)| !t.ends_with("_for_children"))
        .collect()
}

fn inspect_json(bin: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["inspect", "--json", "--no-journal"];
    all.extend_from_slice(args);
    let out = ctrace(bin, &all);
    assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|n| n.as_str().expect("name").to_owned())
        .collect()
}

/// The decoded sets of the report match `/proc/<pid>/status` read here.
fn check_caps(report: &Value, pid: u32) {
    let caps = &report["capabilities"];
    assert_eq!(caps["pid"], pid, "{report}");
    for (set, mask) in status_caps(pid) {
        assert_eq!(caps[set]["hex"], format!("{mask:016x}"), "{set}: {caps}");
        assert_eq!(names(&caps[set]["names"]), decode(mask), "{set}: {caps}");
    }
}

/// The namespaces of the report match `/proc/<pid>/ns/*` read here.
fn check_ns(report: &Value, pid: u32) {
    let links = readlink_ns(pid);
    assert!(
        links.contains_key("pid") && links.contains_key("net"),
        "{links:?}"
    );
    let ns = &report["namespaces"];
    assert_eq!(ns["pid"], pid);
    for (t, inode) in &links {
        assert_eq!(ns["inodes"][t], *inode, "{t}: {ns}");
        let entry = ns["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["ns_type"] == t.as_str())
            .unwrap_or_else(|| panic!("no {t} in {ns}"));
        assert_eq!(entry["inode"], *inode);
    }
}

fn ns_entry<'a>(report: &'a Value, t: &str) -> &'a Value {
    report["namespaces"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ns_type"] == t)
        .unwrap_or_else(|| panic!("no {t} namespace in {report}"))
}

/// The container's init and its shim above it.
fn check_tree(report: &Value, pid: u32, parent_cmd: &str) {
    let tree = &report["processes"];
    let nodes = tree["nodes"].as_array().expect("nodes");
    let init = nodes
        .iter()
        .find(|n| n["pid"] == pid)
        .unwrap_or_else(|| panic!("init {pid} not in {tree}"));
    assert_eq!(init["in_container"], true);
    let ppid = init["ppid"].as_u64().unwrap();
    let parent = tree["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["pid"] == ppid)
        .unwrap_or_else(|| panic!("no parent {ppid} above init in {tree}"));
    assert!(
        parent["cmdline"].as_str().unwrap().contains(parent_cmd),
        "{parent}"
    );
}

#[test]
fn docker_capabilities_namespaces_and_diff() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let admin = DockerContainer::run(
        "ctrace-it-insp-admin",
        &["--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN"],
        &["sleep", "300"],
    );
    let dropall = DockerContainer::run(
        "ctrace-it-insp-dropall",
        &["--cap-drop", "ALL", "--memory", "64m", "--pids-limit", "50"],
        &["sh", "-c", "sleep 300 & sleep 301 & wait"],
    );
    let pidhost = DockerContainer::run(
        "ctrace-it-insp-pidhost",
        &["--pid", "host"],
        &["sleep", "300"],
    );

    // --cap-add SYS_ADMIN --cap-add NET_ADMIN
    let pid = admin.init_pid();
    let r = inspect_json(&bin, &[&admin.name]);
    assert_eq!(r["state"], "running");
    let id = &r["identity"];
    assert_eq!(id["runtime"], "docker");
    assert_eq!(id["id"], admin.id.as_str());
    assert_eq!(id["name"], admin.name.as_str());
    assert_eq!(id["image"], "busybox:local");
    assert_eq!(id["init_pid"], pid);
    assert!(
        id["init_pid_source"]
            .as_str()
            .unwrap()
            .contains("state.json"),
        "{id}"
    );
    assert!(
        id["state_root"].as_str().unwrap().contains("runtime-runc"),
        "{id}"
    );
    assert!(id["bundle"].as_str().unwrap().contains(&admin.id), "{id}");
    assert!(id["created"].as_str().unwrap().ends_with('Z'), "{id}");
    check_caps(&r, pid);
    check_ns(&r, pid);
    check_tree(&r, pid, "containerd-shim-runc-v2");
    let vs = &r["capabilities"]["vs_default"]["effective"];
    assert_eq!(
        names(&vs["added"]),
        ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"],
        "{vs}"
    );
    assert_eq!(names(&vs["dropped"]), Vec::<String>::new());
    assert_eq!(r["capabilities"]["seccomp"], "filter");
    assert_eq!(r["capabilities"]["no_new_privs"], false);
    let p = ns_entry(&r, "pid");
    assert_eq!(p["shared_with_host"], false, "{p}");

    // --cap-drop ALL, with limits and two children.
    let pid = dropall.init_pid();
    let r = eventually("both sleeps in the tree", Duration::from_secs(10), || {
        let r = inspect_json(&bin, &[&dropall.id[..12]]);
        (r["processes"]["nodes"].as_array().map_or(0, Vec::len) == 3).then_some(r)
    });
    assert_eq!(r["identity"]["name"], dropall.name.as_str());
    check_caps(&r, pid);
    check_ns(&r, pid);
    check_tree(&r, pid, "containerd-shim-runc-v2");
    for set in [
        "effective",
        "permitted",
        "bounding",
        "inheritable",
        "ambient",
    ] {
        assert_eq!(r["capabilities"][set]["hex"], "0000000000000000", "{set}");
    }
    assert_eq!(
        names(&r["capabilities"]["vs_default"]["effective"]["dropped"]).len(),
        14
    );
    assert_eq!(r["resources"]["memory_limit_bytes"], 64 << 20);
    assert_eq!(r["resources"]["pids_limit"], 50);

    // --pid host: the pid namespace is the host's.
    let pid = pidhost.init_pid();
    let r = inspect_json(&bin, &[&pidhost.name]);
    check_caps(&r, pid);
    check_ns(&r, pid);
    let p = ns_entry(&r, "pid");
    assert_eq!(p["shared_with_host"], true, "{p}");
    assert_eq!(p["inode"], readlink_ns(std::process::id())["pid"]);
    let text = ctrace(&bin, &["inspect", "--no-journal", &pidhost.name]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("pid "))
        .unwrap_or_else(|| panic!("no pid namespace line:\n{text}"));
    assert!(
        line.contains(" host") && line.contains("--pid host"),
        "{line}"
    );
    for section in [
        "identity",
        "processes",
        "namespaces",
        "capabilities",
        "resources",
    ] {
        assert!(text.contains(&format!("\n{section}")), "{section}:\n{text}");
    }
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");

    // --diff names the added capabilities (pidhost has Docker's default set).
    let side = ctrace(&bin, &["inspect", "--diff", &admin.name, &pidhost.name]);
    assert!(
        side.contains(
            "ctrace-it-insp-admin relative to ctrace-it-insp-pidhost, effective, permitted and \
             bounding capabilities: adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing"
        ),
        "{side}"
    );
    assert!(side.contains("pid namespace"), "{side}");
    let d = inspect_json(&bin, &["--diff", &admin.name, &dropall.name]);
    let eff = d["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["set"] == "effective")
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(names(&eff["only_a"]).len(), 16, "{eff}");
    assert!(names(&eff["only_a"]).contains(&"CAP_SYS_ADMIN".to_owned()));
    assert_eq!(names(&eff["only_b"]), Vec::<String>::new());
    assert!(
        d["differences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["field"] == "memory limit" && r["b"] == "64 MiB"),
        "{d}"
    );
}

#[test]
fn containerd_and_runc_containers() {
    let Some(bin) = require() else { return };
    if !(require_containerd() && require_runc()) {
        return;
    }
    let root = TempDir::new("insp-runc-root");
    let c = CtrContainer::run("default", "ctrace-it-insp-ctr", &[], &["sleep", "300"]);
    let twin = CtrContainer::run("other", "ctrace-it-insp-ctr", &[], &["sleep", "300"]);
    let r = RuncContainer::run(Some(&root.0), "ctrace-it-insp-runc", &["sleep", "300"]);
    let root_arg = root.0.to_str().unwrap();

    // The same id in two containerd namespaces: ambiguous (exit 2), listed.
    let out = Command::new(&bin)
        .args(["inspect", "--no-journal", "ctrace-it-insp-ctr"])
        .output_bounded()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("containerd/default/ctrace-it-insp-ctr")
            && err.contains("containerd/other/ctrace-it-insp-ctr"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let pid = c.init_pid();
    let rep = inspect_json(&bin, &["default/ctrace-it-insp-ctr"]);
    assert_eq!(rep["identity"]["runtime"], "containerd");
    assert_eq!(rep["identity"]["namespace"], "default");
    assert_eq!(rep["identity"]["init_pid"], pid);
    check_caps(&rep, pid);
    check_ns(&rep, pid);
    check_tree(&rep, pid, "containerd-shim-runc-v2");
    assert_eq!(
        rep["capabilities"]["vs_default"]["effective"]["summary"],
        "adds nothing; drops nothing"
    );
    let twin_rep = inspect_json(&bin, &["containerd/other/ctrace-it-insp-ctr"]);
    assert_eq!(twin_rep["identity"]["init_pid"], twin.init_pid());

    let pid = r.init_pid();
    let rep = inspect_json(&bin, &["--runc-root", root_arg, "ctrace-it-insp-runc"]);
    assert_eq!(rep["identity"]["runtime"], "runc");
    assert_eq!(rep["identity"]["state_root"], root_arg);
    assert_eq!(rep["identity"]["init_pid"], pid);
    check_caps(&rep, pid);
    check_ns(&rep, pid);
    // `runc run -d` leaves init to be reaped by pid 1 (or a subreaper): its parent shows.
    assert_eq!(rep["processes"]["nodes"][0]["pid"], pid);
    assert_eq!(
        rep["processes"]["ancestors"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        rep["capabilities"]["vs_default"]["effective"]["summary"], "adds nothing; drops nothing",
        "the runc spec default set: {}",
        rep["capabilities"]
    );
    // The test bundle has no network namespace of its own.
    assert_eq!(ns_entry(&rep, "net")["shared_with_host"], true);
    assert_eq!(ns_entry(&rep, "pid")["shared_with_host"], false);
    // Without its root, the runc container is unknown: exit 1.
    let out = Command::new(&bin)
        .args(["inspect", "ctrace-it-insp-runc"])
        .output_bounded()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn unknown_name_is_exit_1_with_one_line() {
    let Some(bin) = require() else { return };
    let out = Command::new(&bin)
        .args(["inspect", "ctrace-it-insp-no-such-container"])
        .output_bounded()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ctrace: error: no container matches \"ctrace-it-insp-no-such-container\""),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"));
    // --diff with one unknown side: the same.
    let out = Command::new(&bin)
        .args([
            "inspect",
            "--diff",
            "ctrace-it-insp-nope-a",
            "ctrace-it-insp-nope-b",
        ])
        .output_bounded()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// A namespace shared with another container is named (`--pid container:X`), the capability
/// sets are compared with the host's, and recent incidents come from the journal a watch wrote.
#[test]
fn shared_namespaces_host_comparison_and_journal_incidents() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("insp-journal");
    let journal = dir.0.join("journal.db");
    let j = journal.to_str().unwrap();
    let base = DockerContainer::run("ctrace-it-insp-base", &[], &["sleep", "300"]);
    let w = ctrace_tests::Watch::start(&bin, &["--journal", j]);
    let side = DockerContainer::run(
        "ctrace-it-insp-side",
        &[
            "--pid",
            "container:ctrace-it-insp-base",
            "--cap-drop",
            "CHOWN",
        ],
        &["sh", "-c", "chown 1 /tmp; sleep 300"],
    );
    w.wait_for(
        "the denied chown in the side container",
        Duration::from_secs(30),
        |v| {
            v["type"] == "capability"
                && v["verdict"] == "denied"
                && ctrace_tests::get(v, "container.name") == "ctrace-it-insp-side"
        },
    );
    w.stop();

    let out = ctrace(&bin, &["inspect", "--json", "--journal", j, &side.name]);
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let p = ns_entry(&r, "pid");
    assert_eq!(p["shared_with_host"], false, "{p}");
    assert!(
        names(&p["shared_with"]).contains(&base.name),
        "the pid namespace is the base container's: {p}"
    );
    assert_eq!(p["inode"], readlink_ns(base.init_pid())["pid"]);
    // Dropped from Docker's default set, and so from the host's full set too.
    let vs_default = &r["capabilities"]["vs_default"]["effective"];
    assert_eq!(names(&vs_default["dropped"]), ["CAP_CHOWN"], "{vs_default}");
    let vs_host = &r["capabilities"]["vs_host"]["effective"];
    assert!(
        names(&vs_host["dropped"]).contains(&"CAP_CHOWN".to_owned()),
        "{vs_host}"
    );
    assert!(names(&vs_host["added"]).is_empty(), "{vs_host}");
    let inc = &r["incidents"];
    assert_eq!(inc["status"], "ok", "{inc}");
    let records = inc["records"].as_array().unwrap();
    assert!(
        records.iter().any(|i| i["type"] == "capability"
            && i["explanation"]
                .as_str()
                .is_some_and(|e| e.contains("was denied CAP_CHOWN"))),
        "{inc}"
    );
    assert!(
        records.iter().any(|i| i["type"] == "container_start"),
        "{inc}"
    );
    let text = ctrace(&bin, &["inspect", "--journal", j, &side.name]);
    assert!(text.contains("\nrecent incidents  (journal "), "{text}");
    assert!(text.contains("was denied CAP_CHOWN"), "{text}");
    drop((side, base));
}

/// Docker's rules for naming one container: an exact id wins over a longer id it prefixes, a
/// unique prefix names its container, and an ambiguous prefix is refused (exit 2) with every
/// candidate listed on one line.
#[test]
fn ambiguous_prefix_is_exit_2_and_lists_the_candidates() {
    let Some(bin) = require() else { return };
    if !require_runc() {
        return;
    }
    let root = TempDir::new("insp-select-root");
    let root_arg = root.0.to_str().unwrap();
    let short = RuncContainer::run(Some(&root.0), "ctrace-it-sel-a", &["sleep", "300"]);
    let long = RuncContainer::run(Some(&root.0), "ctrace-it-sel-ab", &["sleep", "300"]);

    let out = Command::new(&bin)
        .args([
            "inspect",
            "--no-journal",
            "--runc-root",
            root_arg,
            "ctrace-it-sel",
        ])
        .output_bounded()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ctrace: error: \"ctrace-it-sel\" matches 2 containers: "),
        "{err}"
    );
    for id in ["ctrace-it-sel-a", "ctrace-it-sel-ab"] {
        assert!(
            err.contains(&format!("(id {id}, runc, key runc/{id})")),
            "{err}"
        );
    }
    assert_eq!(err.lines().count(), 1, "{err}");

    // The exact id wins over the container whose id it prefixes; a unique prefix names one.
    let rep = inspect_json(&bin, &["--runc-root", root_arg, "ctrace-it-sel-a"]);
    assert_eq!(rep["identity"]["id"], "ctrace-it-sel-a");
    assert_eq!(rep["identity"]["init_pid"], short.init_pid());
    let rep = inspect_json(&bin, &["--runc-root", root_arg, "ctrace-it-sel-ab"]);
    assert_eq!(rep["identity"]["init_pid"], long.init_pid());
    let rep = inspect_json(&bin, &["--runc-root", root_arg, "runc/ctrace-it-sel-ab"]);
    assert_eq!(rep["identity"]["id"], "ctrace-it-sel-ab");
    drop((short, long));
}
