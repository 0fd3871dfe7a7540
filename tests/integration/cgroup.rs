//! cgroup mkdir/attach/rmdir as Docker creates and removes a container.

use std::time::Duration;

use ctrace_tests::{get, require, require_docker, DockerContainer, Watch};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn docker_run_and_rm_produce_cgroup_mkdir_attach_and_rmdir() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let w = Watch::start(&bin, &["--events", "cgroup"]);
    let c = DockerContainer::run("ctrace-it-cgroup", &[], &["sleep", "60"]);
    let suffix = format!("/docker/{}", c.id);
    let ends = |v: &serde_json::Value| {
        get(v, "cgroup.path")
            .as_str()
            .is_some_and(|p| p.ends_with(&suffix))
    };
    let mk = w.wait_for("cgroup_mkdir of the container", WAIT, |v| {
        v["type"] == "cgroup_mkdir" && ends(v)
    });
    assert!(get(&mk, "cgroup.id").as_u64().unwrap() > 0);
    // runc moves its own bootstrap process (runc:[0:PARENT]) into the cgroup before it
    // clones the container's init, which inherits it: the attached pid is runc's, not init's.
    let attach = w.wait_for("a task attached to the container's v2 cgroup", WAIT, |v| {
        v["type"] == "cgroup_attach" && ends(v)
    });
    assert_eq!(
        get(&attach, "cgroup.hierarchy"),
        0,
        "only v2 attaches are streamed"
    );
    assert!(attach["pid"].as_u64().unwrap() > 0);
    // The attach carries the id the container's processes report as their cgroup id.
    let init_cgroup = ctrace_tests::cgroup_id_of(c.init_pid()).expect("init's cgroup id");
    assert_eq!(get(&attach, "cgroup.id"), init_cgroup);
    c.remove();
    let rm = w.wait_for("cgroup_rmdir of the container", WAIT, |v| {
        v["type"] == "cgroup_rmdir" && ends(v)
    });
    assert!(rm["ts"].as_str() > mk["ts"].as_str());
    w.stop();
}
