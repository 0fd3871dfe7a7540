//! The kernel matrix's facts on this host: capability records have the shape `cargo xtask
//! vm-test` requires of 6.1 and 6.12 guests (fexit or kprobes there, whatever hook serves them
//! here), checked by the same code (`ctrace_tests::expect`), and `watch` names its hook.

use std::time::Duration;

use ctrace_tests::{expect, require, require_docker, DockerContainer, Watch};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn capability_records_have_the_shape_every_kernel_gives() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let w = Watch::start(&bin, &["--events", "capability:all,exec"]);
    let denied = DockerContainer::run(
        "ctrace-it-kernels-deny",
        &["--cap-drop", "CHOWN"],
        &["chown", "1", "/tmp"],
    );
    assert_eq!(
        denied.wait(Duration::from_secs(30)),
        1,
        "chown without CAP_CHOWN"
    );
    let allowed = DockerContainer::run("ctrace-it-kernels-allow", &[], &["chown", "1", "/tmp"]);
    assert_eq!(
        allowed.wait(Duration::from_secs(30)),
        0,
        "chown with CAP_CHOWN"
    );
    let in_container = |v: &serde_json::Value, c: &DockerContainer, verdict: &str| {
        v["type"] == "capability"
            && v["capability"] == "CAP_CHOWN"
            && v["verdict"] == verdict
            && v["process"]["comm"] == "chown"
            && v["container"]["id"] == c.id.as_str()
    };
    let d = w.wait_for("denied CAP_CHOWN", WAIT, |v| {
        in_container(v, &denied, "denied")
    });
    let a = w.wait_for("allowed CAP_CHOWN", WAIT, |v| {
        in_container(v, &allowed, "allowed")
    });
    expect::capability_record(&d, "CAP_CHOWN", 0, "denied", "chown").unwrap();
    expect::capability_record(&a, "CAP_CHOWN", 0, "allowed", "chown").unwrap();
    let (records, stderr) = w.stop();
    let stats = records
        .iter()
        .rev()
        .find(|v| v["type"] == "stats")
        .expect("a closing stats record");
    let mechanism = expect::capability_mechanism(stats).unwrap();
    assert!(
        stderr.contains(expect::capability_start_line(mechanism)),
        "watch names the hook it uses ({mechanism}) at start: {stderr}"
    );
    // The hook named is one whose program ran: listed among the attached programs.
    let programs = stats["programs"].as_array().expect("programs");
    assert!(
        programs.iter().any(|p| p["hook"] == mechanism
            && p["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("cap_capable"))),
        "{stats}"
    );
    denied.remove();
    allowed.remove();
}

/// Without the tracepoint and with no other hook allowed, capability events are off with a
/// warning that says what was tried, and nothing claims to serve them.
#[test]
fn capability_checks_without_a_usable_hook_are_disabled_loudly() {
    let Some(bin) = require() else { return };
    let w = Watch::start_with_env(
        &bin,
        &["--events", "capability,exec"],
        &[("CTRACE_CAP_HOOKS", std::path::Path::new(""))],
    );
    let (records, stderr) = w.stop();
    assert!(
        stderr.contains("capability events disabled: tracepoint not tried"),
        "{stderr}"
    );
    assert!(!stderr.contains("capability checks via"), "{stderr}");
    let stats = records
        .iter()
        .rev()
        .find(|v| v["type"] == "stats")
        .expect("a closing stats record");
    assert!(expect::capability_mechanism(stats).is_err(), "{stats}");
}
