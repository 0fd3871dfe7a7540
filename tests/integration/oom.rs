//! oom:mark_victim for a memory-limited container, with its SIGKILL and exit.

use std::time::Duration;

use ctrace_tests::{get, require, require_docker, DockerContainer, Watch};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn container_memory_limit_oom_reports_victim_kill_and_exit() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let w = Watch::start(&bin, &["--events", "oom,signal,exit"]);
    // Asked for OOM kills only: no signal records, but the victim is still attributed.
    let only_oom = Watch::start(&bin, &["--events", "oom"]);
    let c = DockerContainer::run("ctrace-it-oom", &["-m", "32m"], &["tail", "/dev/zero"]);
    assert_eq!(c.wait(WAIT), 137);
    assert_eq!(c.inspect("{{.State.OOMKilled}}"), "true");
    // Other tests OOM-kill their own containers at the same time: look at ours only.
    let ours = |v: &serde_json::Value| get(v, "victim.container.name") == "ctrace-it-oom";
    let oom = w.wait_for("mark_victim", WAIT, |v| {
        v["type"] == "oom_victim" && ours(v)
    });
    let victim = get(&oom, "victim.pid").as_u64().unwrap();
    assert_eq!(get(&oom, "victim.comm"), "tail");
    assert!(oom["anon_rss_kb"].as_u64().unwrap() > 1024, "{oom}");
    assert!(oom["anon_rss_kb"].as_u64().unwrap() <= 32 * 1024, "{oom}");
    let kill = w.wait_for("the OOM killer's SIGKILL", WAIT, |v| {
        v["type"] == "signal" && get(v, "target.pid") == victim && v["signal"] == "SIGKILL"
    });
    assert_eq!(kill["origin"], "kernel", "{kill}");
    let exit = w.wait_for("exit of the victim", WAIT, |v| {
        v["type"] == "exit" && get(v, "process.pid") == victim
    });
    assert_eq!(exit["signal"], "SIGKILL");
    assert_eq!(exit["exit_code"], 137);
    assert_eq!(
        exit["cgroup_id"], oom["cgroup_id"],
        "trigger and victim share the container cgroup"
    );
    assert_eq!(get(&kill, "target.cgroup_id"), &exit["cgroup_id"], "{kill}");
    assert_eq!(get(&oom, "victim.cgroup_id"), &exit["cgroup_id"], "{oom}");
    assert_eq!(get(&oom, "victim.tgid"), victim);
    w.stop();
    let alone = only_oom.wait_for("mark_victim (oom only)", WAIT, |v| {
        v["type"] == "oom_victim" && ours(v)
    });
    assert_eq!(
        get(&alone, "victim.cgroup_id"),
        &exit["cgroup_id"],
        "{alone}"
    );
    let (records, _) = only_oom.stop();
    assert!(
        records.iter().all(|v| v["type"] != "signal"),
        "signals were not asked for"
    );
}
