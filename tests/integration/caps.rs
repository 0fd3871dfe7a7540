//! `ctrace caps`: the least-privilege proposal for a container traced by a watch with its
//! default options (issue 17, "a capability advisor").

use std::{collections::BTreeSet, process::Command, time::Duration};

use ctrace_tests::{
    ctrace, eventually, get, require, require_docker, run, DockerContainer, TempDir, Watch,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Needs CAP_CHOWN (`chown` of a root-owned file to another owner, on tmpfs so that no
/// overlayfs credentials act for it) and CAP_NET_BIND_SERVICE (`httpd` binds port 80 on
/// loopback; Docker lets any process bind low ports in a container's network namespace, so
/// the sysctl puts the privileged-port check back).
const WORK: &str =
    "touch /dev/shm/f && chown 1:1 /dev/shm/f && httpd -p 127.0.0.1:80 && echo ready";
const SYSCTL: [&str; 2] = ["--sysctl", "net.ipv4.ip_unprivileged_port_start=1024"];

/// Capabilities denied to the container's own programs (the runtime's setup set apart).
fn denials(records: &[Value], container_id: &str) -> BTreeSet<String> {
    records
        .iter()
        .filter(|v| {
            v["type"] == "capability"
                && v["verdict"] == "denied"
                && get(v, "container.id") == container_id
                && !tracer::advise::is_runtime_setup(get(v, "process.comm").as_str().unwrap_or(""))
        })
        .map(|v| v["capability"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn caps_proposes_exactly_chown_and_net_bind_service_and_they_suffice() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("caps-advisor");
    let journal = dir.0.join("journal.db");
    let journal = journal.to_str().unwrap();
    // A watch with its defaults (and its own journal).
    let w = Watch::start(&bin, &["--journal", journal]);
    let name = "ctrace-it-caps";
    let script = format!("{WORK}; exec sleep 3600");
    let c = DockerContainer::run(name, &SYSCTL, &["sh", "-c", &script]);
    eventually("the container's work to be done", WAIT, || {
        let out = run(Command::new("docker").args(["logs", &c.id]));
        String::from_utf8_lossy(&out.stdout)
            .contains("ready")
            .then_some(())
    });
    // The init is `sleep` by now: the watch has seen the container's checks up to here.
    let (records, _) = w.stop();
    let first_denials = denials(&records, &c.id);

    // Live: what it holds comes from its init.
    let text = ctrace(&bin, &["caps", name, "--journal", journal]);
    println!("{text}");
    let v: Value = serde_json::from_str(&ctrace(
        &bin,
        &["caps", name, "--journal", journal, "--json"],
    ))
    .expect("caps --json is JSON");
    assert_eq!(
        v["proposal"]["add"],
        serde_json::json!(["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]),
        "{text}"
    );
    assert_eq!(v["held"]["known"], true, "{v}");
    let used: Vec<&str> = v["used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["capability"].as_str().unwrap())
        .collect();
    assert_eq!(used, ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]);
    let programs = |cap: usize| v["used"][cap]["allowed_to"].clone();
    assert_eq!(programs(0), serde_json::json!(["chown"]));
    assert_eq!(programs(1), serde_json::json!(["httpd"]));
    assert_eq!(
        v["unused"].as_array().unwrap().len(),
        12,
        "the 14 default capabilities but two: {v}"
    );
    let docker = v["proposal"]["docker"].as_str().unwrap().to_owned();
    assert_eq!(
        docker,
        "--cap-drop ALL --cap-add CHOWN --cap-add NET_BIND_SERVICE"
    );
    assert!(text.contains(&format!("docker run {docker}")), "{text}");
    assert!(text.contains("drop: [\"ALL\"]"), "{text}");
    c.remove();

    // Gone: the proposal still stands, from the journal alone.
    let gone: Value = serde_json::from_str(&ctrace(
        &bin,
        &["caps", name, "--journal", journal, "--json"],
    ))
    .expect("caps --json is JSON");
    assert_eq!(gone["proposal"]["add"], v["proposal"]["add"], "{gone}");

    // The advised flags suffice: the work succeeds and no new capability is denied.
    let w = Watch::start(&bin, &[]);
    let mut extra: Vec<&str> = docker.split_whitespace().collect();
    extra.extend(SYSCTL);
    let again = DockerContainer::run("ctrace-it-caps-advised", &extra, &["sh", "-c", WORK]);
    assert_eq!(again.wait(WAIT), 0, "the work fails with the advised flags");
    let (records, _) = w.stop();
    let new: Vec<String> = denials(&records, &again.id)
        .difference(&first_denials)
        .cloned()
        .collect();
    assert!(new.is_empty(), "new denials with {docker}: {new:?}");
}
