//! Tests of the report: gathered from a scratch directory laid out like `/proc` and the
//! cgroup files, and rendered.

use std::{
    collections::BTreeMap,
    io,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde_json::json;

use super::{
    gather::{other_label, proc_error, same_process, Init},
    render::{host_change, some_names, WIDTH},
    *,
};
use crate::{
    cgroup::Mounts,
    clock::{parse_rfc3339, utc_seconds},
    container::{short_id, ContainerMeta, Runtime},
    journal::{Entry, Journal, JournalOptions, Record},
    resolve::Container,
    select::{SelectError, Selector},
};

/// A scratch directory laid out like /proc.
struct Fake(PathBuf);

impl Fake {
    fn new(tag: &str) -> Fake {
        let d = std::env::temp_dir().join(format!(
            "ctrace-inspect-report-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Fake(d)
    }

    fn stat(&self, pid: u32, ppid: u32, start: u64, comm: &str) {
        let d = self.0.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("stat"),
            format!(
                "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0"
            ),
        )
        .unwrap();
        std::fs::write(d.join("cmdline"), format!("{comm}\0")).unwrap();
    }

    fn status(&self, pid: u32, ppid: u32, caps: &str, nnp: u8, seccomp: u8) {
        let text = format!(
            "Name:\tx\nState:\tS (sleeping)\nPPid:\t{ppid}\nUid:\t0\t0\t0\t0\n\
             NSpid:\t{pid}\t1\nThreads:\t1\nCapInh:\t0000000000000000\nCapPrm:\t{caps}\n\
             CapEff:\t{caps}\nCapBnd:\t{caps}\nCapAmb:\t0000000000000000\n\
             NoNewPrivs:\t{nnp}\nSeccomp:\t{seccomp}\nSeccomp_filters:\t{}\n",
            u8::from(seccomp == 2)
        );
        std::fs::write(self.0.join(pid.to_string()).join("status"), text).unwrap();
    }

    /// A cgroup directory `<root>/cgroup/<rel>` with these files.
    fn cgroup(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = self.0.join("cgroup").join(rel);
        std::fs::create_dir_all(&d).unwrap();
        for (name, text) in files {
            std::fs::write(d.join(name), text).unwrap();
        }
        d
    }

    /// The v2 cgroup of container `id` (at `/ctr/<short id>`, see [`container`]): no
    /// limits, 1 MiB and 2 tasks in use.
    fn cgroup_unlimited(&self, id: &str) -> PathBuf {
        self.cgroup(
            &format!("v2/ctr/{}", short_id(id)),
            &[
                ("cgroup.controllers", "cpuset cpu io memory pids\n"),
                ("memory.max", "max\n"),
                ("memory.current", "1048576\n"),
                ("cpu.max", "max 100000\n"),
                ("pids.max", "max\n"),
                ("pids.current", "2\n"),
            ],
        )
    }

    fn ns(&self, pid: &str, inodes: &[(&str, u64)]) {
        let d = self.0.join(pid).join("ns");
        std::fs::create_dir_all(&d).unwrap();
        for (t, i) in inodes {
            symlink(format!("{t}:[{i}]"), d.join(t)).unwrap();
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const HOST_NS: [(&str, u64); 4] = [
    ("mnt", 4026531841),
    ("pid", 4026531836),
    ("net", 4026531840),
    ("user", 4026531837),
];

/// The host (pid 1, full capabilities), a shim (100) and two containers: `priv` (init
/// 101, child 102, `--cap-add SYS_ADMIN,NET_ADMIN`) and `other` (init 201) in priv's net
/// namespace and the host's pid namespace.
fn lab(tag: &str) -> Fake {
    let f = Fake::new(tag);
    f.stat(1, 0, 1, "init");
    f.status(1, 0, "000001ffffffffff", 0, 0);
    f.ns("1", &HOST_NS);
    f.stat(100, 1, 500, "containerd-shim");
    f.stat(101, 100, 600, "sh");
    f.status(101, 100, "00000000a82435fb", 0, 2);
    f.ns(
        "101",
        &[
            ("mnt", 4026532250),
            ("pid", 4026532253),
            ("net", 4026532254),
            ("user", 4026531837),
        ],
    );
    f.stat(102, 101, 700, "sleep");
    f.stat(201, 100, 800, "sleep");
    f.status(201, 100, "00000000a80425fb", 1, 0);
    f.ns(
        "201",
        &[
            ("mnt", 4026532300),
            ("pid", 4026531836),
            ("net", 4026532254),
            ("user", 4026531837),
        ],
    );
    f.cgroup_unlimited(ID);
    f.cgroup_unlimited(&"b".repeat(64));
    f
}

fn container(runtime: Runtime, id: &str, name: &str, init: Option<u32>) -> Arc<Container> {
    Arc::new(Container {
        image: Some("busybox:local".to_owned()),
        namespace: (runtime == Runtime::Containerd).then(|| "default".to_owned()),
        labels: BTreeMap::from([("team".to_owned(), "lab".to_owned())]),
        init_pid: init,
        cgroup_path: Some(format!("/ctr/{}", short_id(id))),
        ..Container::named(id, name, runtime)
    })
}

fn target(c: Arc<Container>, init_start: Option<u64>) -> Target {
    let meta = ContainerMeta {
        runtime: c.runtime,
        id: c.id.clone(),
        name: None,
        image: None,
        namespace: c.namespace.clone(),
        labels: BTreeMap::new(),
        pod: None,
        init_pid: c.init_pid,
        init_start,
        created: Some("2026-11-29T19:49:00.5+01:00".to_owned()),
        cgroup_path: None,
        cgroup_paths: BTreeMap::new(),
        cgroup_id: None,
        state_root: PathBuf::from("/run/docker/runtime-runc/moby"),
        bundle: Some(PathBuf::from("/bundles/x")),
    };
    Target {
        container: c,
        cgroup_id: Some(5440),
        meta: Some(meta),
    }
}

/// `f` as /proc, with a pure cgroup v2 host's hierarchy at `<f>/cgroup/v2`.
fn fake_env(f: &Fake) -> Env {
    env_with(
        f,
        Mounts {
            v2: Some(f.0.join("cgroup/v2")),
            v1: BTreeMap::new(),
        },
    )
}

fn env_with(f: &Fake, mounts: Mounts) -> Env {
    Env::at(&f.0, mounts, UserNames::parse("root:x:0:0::/:/x\n"), None)
}

const ID: &str = "1ed420fa5c1511425c7bf853c958814ba3a162f6f81dafaa9907f607a2eb2975";

#[test]
fn running_container_report_and_render() {
    let f = lab("running");
    let env = fake_env(&f);
    let t = target(container(Runtime::Docker, ID, "priv", Some(101)), Some(600));
    let o = target(
        container(Runtime::Docker, "b".repeat(64).as_str(), "other", Some(201)),
        Some(800),
    );
    let r = gather(&env, &t, &[&o]);
    assert_eq!(r.state, "running");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.unavailable.is_empty(), "{:?}", r.unavailable);
    assert_eq!(
        r.identity.created.as_deref(),
        Some("2026-11-29T18:49:00.500000000Z")
    );
    assert!(
        r.identity
            .init_pid_source
            .contains("state.json (start time matches"),
        "{}",
        r.identity.init_pid_source
    );
    let caps = r.capabilities.as_ref().unwrap();
    assert_eq!(
        caps.vs_default.effective.summary,
        "adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing"
    );
    assert_eq!(
        caps.vs_host.as_ref().unwrap().effective.added,
        CapSet::EMPTY
    );
    let ns = r.namespaces.as_ref().unwrap();
    let net = ns.list.iter().find(|s| s.ns_type == NsType::Net).unwrap();
    assert_eq!(net.shared_with, ["other"]);
    assert!(!net.shared_with_host);
    let user = ns.list.iter().find(|s| s.ns_type == NsType::User).unwrap();
    assert!(user.shared_with_host);
    let tree = r.processes.as_ref().unwrap();
    let pids: Vec<u32> = tree.nodes.iter().map(|n| n.pid).collect();
    assert_eq!(pids, [101, 102]);
    assert_eq!(tree.ancestors[0].pid, 100);

    let text = render(&r);
    for want in [
        "priv  (docker 1ed420fa5c15, running)\n",
        "  created      2026-11-29 18:49:00 UTC\n",
        "  bundle       /bundles/x\n",
        "  state root   /run/docker/runtime-runc/moby\n",
        "  cgroup       /ctr/1ed420fa5c15 (cgroup v2 id 5440)\n",
        "  labels       team=lab\n",
        "  100 ? S containerd-shim [outside]\n  └─ 101 ns:1 root S sh\n     └─ 102 ? S sleep\n",
        "  net   4026532254  shared with other\n",
        "  user  4026531837  host, shared with other\n",
        "  vs default    adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing\n",
        "                (against Docker's default set (14 capabilities))\n",
        "  vs host       adds nothing; drops 25 of the host's 41\n",
        "  no_new_privs  no\n",
        "  seccomp       filter (1 filter)\n",
        "  memory  limit unlimited, usage 1 MiB\n",
        "  cpu     no quota\n",
        "  pids    limit unlimited, 2 now\n",
        "recent incidents\n  not read (--no-journal)\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // Effective list wrapped within the width.
    assert!(text
        .lines()
        .all(|l| l.chars().count() <= WIDTH || l.contains("init pid")));

    // The other container: --pid host is named as unusual.
    let r2 = gather(&env, &o, &[&t]);
    let text = render(&r2);
    assert!(
        text.contains(
            "  pid   4026531836  host  (containers get their own by default: e.g. --pid host)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  no_new_privs  yes\n  seccomp       disabled\n"),
        "{text}"
    );

    // --diff of the two.
    let (la, lb) = diff_labels(&t.container, &o.container);
    let (va, vb) = (r.view(&la).unwrap(), r2.view(&lb).unwrap());
    let side = render_side_by_side(&va, &vb);
    assert!(
        side.contains("adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing"),
        "{side}"
    );
    assert!(side.contains("pid namespace"), "{side}");
    let j = diff_json(&r, &r2, &va, &vb);
    assert_eq!(j["capabilities"][0]["set"], "effective");
    assert_eq!(
        j["capabilities"][0]["only_a"],
        json!(["CAP_NET_ADMIN", "CAP_SYS_ADMIN"])
    );

    // JSON: hex and names of every set, namespace inodes as a map.
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["capabilities"]["effective"]["hex"], "00000000a82435fb");
    assert_eq!(v["capabilities"]["ambient"]["names"], json!([]));
    assert_eq!(v["namespaces"]["inodes"]["net"], 4026532254u64);
    assert_eq!(v["state"], "running");
    assert_eq!(v["identity"]["journal_key"], format!("docker/{ID}"));
}

/// Lines of the `resources` section.
fn resources_section(text: &str) -> String {
    let start = text.find("\nresources\n").expect("resources section") + 11;
    let end = text[start..]
        .find("\n\n")
        .map_or(text.len(), |e| start + e + 1);
    text[start..end].to_owned()
}

#[test]
fn resources_v2_limits_and_unreadable_files() {
    let f = lab("res-v2");
    let env = fake_env(&f);
    let d = f.cgroup(
        &format!("v2/ctr/{}", short_id(ID)),
        &[
            ("memory.max", "67108864\n"),
            ("memory.current", "2097152\n"),
            ("cpu.max", "50000 100000\n"),
            ("pids.max", "50\n"),
            ("pids.current", "3\n"),
        ],
    );
    let t = target(container(Runtime::Docker, ID, "lim", Some(101)), Some(600));
    let r = gather(&env, &t, &[]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.incomplete().is_none());
    assert_eq!(
        resources_section(&render(&r)),
        "  memory  limit 64 MiB, usage 2 MiB\n\
         \x20 cpu     quota 0.5 CPU (50000 µs every 100000 µs)\n\
         \x20 pids    limit 50, 3 now\n"
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        v["resources"],
        json!({
            "memory_limit_bytes": 64 << 20,
            "memory_usage_bytes": 2 << 20,
            "cpu_quota_cpus": 0.5,
            "cpu_quota_us": 50000,
            "cpu_period_us": 100000,
            "pids_limit": 50,
            "pids_current": 3,
            "memory_parent_limit": null,
            "unknown": {},
        })
    );

    // Garbage, a file that cannot be read (a directory in its place), a missing file.
    std::fs::write(d.join("memory.max"), "lots\n").unwrap();
    std::fs::remove_file(d.join("pids.max")).unwrap();
    std::fs::create_dir(d.join("pids.max")).unwrap();
    std::fs::remove_file(d.join("cpu.max")).unwrap();
    let r = gather(&env, &t, &[]);
    let p = |file: &str| d.join(file).display().to_string();
    let garbage = format!("{}: not a number: \"lots\"", p("memory.max"));
    let missing = format!("{} does not exist", p("cpu.max"));
    let section = resources_section(&render(&r));
    let lines: Vec<&str> = section.lines().collect();
    assert_eq!(
        lines[0],
        format!("  memory  limit unknown ({garbage}), usage 2 MiB")
    );
    assert_eq!(lines[1], format!("  cpu     quota unknown ({missing})"));
    assert!(
        lines[2].starts_with(&format!(
            "  pids    limit unknown (cannot read {}: ",
            p("pids.max")
        )),
        "{section}"
    );
    assert!(lines[2].ends_with("), 3 now"), "{section}");
    assert!(!section.contains("unlimited") && !section.contains("no quota"));
    // In the report's problems, so in the "incomplete" section and the exit code.
    assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
    assert_eq!(
        r.problems[0],
        format!("resources: memory limit unknown: {garbage}")
    );
    assert_eq!(
        r.problems[1],
        format!("resources: cpu quota unknown: {missing}")
    );
    assert!(r.problems[2].starts_with("resources: pids limit unknown: cannot read "));
    let text = render(&r);
    assert!(
        text.contains(&format!(
            "\nincomplete\n  resources: memory limit unknown: {garbage}\n"
        )),
        "{text}"
    );
    let msg = r.incomplete().unwrap();
    assert!(msg.contains(&garbage), "{msg}");
    // JSON: null, with the reason under `unknown` and in `problems`.
    let v = serde_json::to_value(&r).unwrap();
    let res = &v["resources"];
    for f in [
        "memory_limit_bytes",
        "cpu_quota_cpus",
        "cpu_quota_us",
        "cpu_period_us",
        "pids_limit",
    ] {
        assert!(res[f].is_null(), "{f}: {res}");
        assert!(res["unknown"][f].is_string(), "{f}: {res}");
    }
    assert_eq!(res["unknown"]["memory_limit_bytes"], garbage);
    assert_eq!(res["unknown"]["cpu_period_us"], missing);
    assert_eq!(res["memory_usage_bytes"], 2 << 20);
    assert_eq!(res["pids_current"], 3);
    assert_eq!(res["unknown"].as_object().unwrap().len(), 5);
    assert_eq!(
        v["problems"][0],
        format!("resources: memory limit unknown: {garbage}")
    );

    // --diff: an unknown limit is a difference, shown with its reason.
    let o = target(
        container(Runtime::Docker, "b".repeat(64).as_str(), "other", Some(201)),
        Some(800),
    );
    let r2 = gather(&env, &o, &[&t]);
    let (va, vb) = (r.view("lim").unwrap(), r2.view("other").unwrap());
    let rows = diff(&va, &vb);
    let mem = rows.iter().find(|x| x.field == "memory limit").unwrap();
    assert_eq!(mem.a, format!("unknown ({garbage})"));
    assert_eq!(mem.b, "unlimited");
    let j = diff_json(&r, &r2, &va, &vb);
    assert!(j["a"]["view"]["memory_limit"].is_null());
    assert_eq!(j["a"]["unknown"]["memory_limit_bytes"], garbage);
    assert_eq!(j["a"]["problems"].as_array().unwrap().len(), 3);
    assert_eq!(j["b"]["unknown"], json!({}));
}

#[test]
fn resources_v1_limits_and_unlimited() {
    let f = lab("res-v1");
    let root = f.0.join("cgroup");
    let env = env_with(
        &f,
        Mounts {
            v2: Some(root.join("unified")),
            v1: [
                ("memory", "memory"),
                ("cpu", "cpu,cpuacct"),
                ("cpuacct", "cpu,cpuacct"),
                ("pids", "pids"),
            ]
            .into_iter()
            .map(|(c, d)| (c.to_owned(), root.join(d)))
            .collect(),
        },
    );
    let rel = format!("ctr/{}", short_id(ID));
    let mem = f.cgroup(
        &format!("memory/{rel}"),
        &[
            ("memory.limit_in_bytes", "134217728\n"),
            ("memory.usage_in_bytes", "1536\n"),
        ],
    );
    let cpu = f.cgroup(
        &format!("cpu,cpuacct/{rel}"),
        &[
            ("cpu.cfs_quota_us", "150000\n"),
            ("cpu.cfs_period_us", "100000\n"),
        ],
    );
    let pids = f.cgroup(
        &format!("pids/{rel}"),
        &[("pids.max", "100\n"), ("pids.current", "4\n")],
    );
    let t = target(container(Runtime::Docker, ID, "v1", Some(101)), Some(600));
    let r = gather(&env, &t, &[]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        resources_section(&render(&r)),
        "  memory  limit 128 MiB, usage 1.5 KiB\n\
         \x20 cpu     quota 1.5 CPUs (150000 µs every 100000 µs)\n\
         \x20 pids    limit 100, 4 now\n"
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["resources"]["memory_limit_bytes"], 128 << 20);
    assert_eq!(v["resources"]["cpu_quota_cpus"], 1.5);
    assert_eq!(v["resources"]["cpu_quota_us"], 150000);
    assert_eq!(v["resources"]["cpu_period_us"], 100000);
    assert_eq!(v["resources"]["pids_limit"], 100);

    // No limits, as v1 writes them: the page-rounded i64::MAX, -1, max.
    std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
    std::fs::write(cpu.join("cpu.cfs_quota_us"), "-1\n").unwrap();
    std::fs::write(pids.join("pids.max"), "max\n").unwrap();
    let r = gather(&env, &t, &[]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        resources_section(&render(&r)),
        "  memory  limit unlimited, usage 1.5 KiB\n\
         \x20 cpu     no quota\n\
         \x20 pids    limit unlimited, 4 now\n"
    );
    let v = serde_json::to_value(&r).unwrap();
    let res = &v["resources"];
    for f in [
        "memory_limit_bytes",
        "cpu_quota_cpus",
        "cpu_quota_us",
        "cpu_period_us",
        "pids_limit",
    ] {
        assert!(res[f].is_null(), "{f}: {res}");
    }
    assert_eq!(res["unknown"], json!({}));

    // Missing files: unknown, not unlimited.
    std::fs::remove_file(mem.join("memory.limit_in_bytes")).unwrap();
    std::fs::remove_file(mem.join("memory.usage_in_bytes")).unwrap();
    std::fs::write(cpu.join("cpu.cfs_quota_us"), "20000\n").unwrap();
    std::fs::remove_file(cpu.join("cpu.cfs_period_us")).unwrap();
    std::fs::remove_dir_all(&pids).unwrap();
    let r = gather(&env, &t, &[]);
    let gone = |d: &Path, file: &str| format!("{} does not exist", d.join(file).display());
    let no_dir = format!("cgroup directory {} does not exist", pids.display());
    assert_eq!(
        resources_section(&render(&r)),
        format!(
            "  memory  limit unknown ({}), usage unknown ({})\n\
             \x20 cpu     quota unknown ({})\n\
             \x20 pids    limit and count unknown ({no_dir})\n",
            gone(&mem, "memory.limit_in_bytes"),
            gone(&mem, "memory.usage_in_bytes"),
            gone(&cpu, "cpu.cfs_period_us"),
        )
    );
    assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
    assert_eq!(
        r.problems[3],
        format!("resources: pids limit and pids count unknown: {no_dir}")
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["resources"]["unknown"]["pids_current"], no_dir);
    assert_eq!(
        v["resources"]["unknown"]["memory_usage_bytes"],
        gone(&mem, "memory.usage_in_bytes")
    );
    assert!(r.incomplete().is_some());
}

#[test]
fn resources_of_a_stopped_container_are_not_problems() {
    let f = lab("res-stopped");
    let env = fake_env(&f);
    let t = target(
        container(Runtime::Containerd, "c1", "c1", Some(4242)),
        Some(1),
    );
    let r = gather(&env, &t, &[]);
    assert_eq!(r.state, "stopped");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let why = format!(
        "cgroup directory {} does not exist",
        f.0.join("cgroup/v2/ctr/c1").display()
    );
    assert_eq!(
        resources_section(&render(&r)),
        format!(
            "  memory  limit and usage unknown ({why})\n\
             \x20 cpu     quota unknown ({why})\n\
             \x20 pids    limit and count unknown ({why})\n"
        )
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["resources"]["unknown"]["memory_limit_bytes"], why);
    assert!(v["resources"]["memory_limit_bytes"].is_null());
    // No cgroup path at all.
    let mut c = (*container(Runtime::Runc, "c3", "c3", None)).clone();
    c.cgroup_path = None;
    let r = gather(&env, &target(Arc::new(c), None), &[]);
    assert!(resources_section(&render(&r)).starts_with(
        "  memory  limit and usage unknown (the container's cgroup path is unknown)\n"
    ));
}

#[test]
fn stopped_and_reused_pids_are_not_running() {
    let f = lab("stopped");
    let env = fake_env(&f);
    // Init pid 4242 is gone.
    let t = target(
        container(Runtime::Containerd, "c1", "c1", Some(4242)),
        Some(1),
    );
    let r = gather(&env, &t, &[]);
    assert_eq!(r.state, "stopped");
    assert!(r.problems.is_empty());
    assert_eq!(
        r.unavailable["capabilities"],
        "not running (init pid 4242 has exited)"
    );
    assert!(r
        .identity
        .init_pid_source
        .ends_with("process 4242 no longer exists"));
    let text = render(&r);
    assert!(
        text.contains("\ncapabilities\n  not running (init pid 4242 has exited)\n"),
        "{text}"
    );
    assert!(r.incomplete().is_none());
    assert!(r.view("c1").is_err());
    // Pid 201 exists but started later than the container's init: pid reuse.
    let t = target(container(Runtime::Runc, "c2", "c2", Some(201)), Some(5));
    let r = gather(&env, &t, &[]);
    assert_eq!(r.state, "stopped");
    assert!(r.identity.init_pid_source.contains("start time differs"));
    assert!(r.capabilities.is_none() && r.processes.is_none());
    // No init pid at all and no cgroup.
    let t = target(container(Runtime::Runc, "c3", "c3", None), None);
    let r = gather(&env, &t, &[]);
    assert_eq!(r.state, "stopped");
    assert!(r.identity.init_pid.is_none());
}

#[test]
fn init_exiting_mid_inspect_is_reported_not_a_panic() {
    let f = lab("midway");
    // 301 has a stat (so it runs when found) but status and ns are gone, as when the
    // process exits between two reads.
    f.stat(301, 100, 900, "sleep");
    let env = fake_env(&f);
    let t = target(
        container(Runtime::Docker, ID, "dying", Some(301)),
        Some(900),
    );
    let r = gather(&env, &t, &[]);
    assert_eq!(r.state, "running");
    assert_eq!(
        r.problems,
        [
            "namespaces: process 301 exited while being inspected",
            "capabilities: process 301 exited while being inspected"
        ]
    );
    let msg = r.incomplete().unwrap();
    assert!(msg.starts_with("inspection of dying is incomplete: "));
    let text = render(&r);
    assert!(text.contains("\nincomplete\n"), "{text}");
    // Gone between the first look and the end: also reported.
    let f2 = lab("midway2");
    f2.stat(302, 100, 900, "sleep");
    let env2 = fake_env(&f2);
    std::fs::remove_dir_all(f2.0.join("302")).unwrap();
    let init = Init {
        pid: Some(302),
        source: String::new(),
        alive: true,
        start_time: Some(900),
    };
    assert!(!same_process(&env2.proc_root, 302, init.start_time));
}

#[test]
fn proc_errors_read_clearly() {
    let root = Path::new("/proc");
    let eacces = io::Error::from_raw_os_error(libc::EACCES);
    assert_eq!(
        proc_error(root, 7, "ns", &eacces),
        "cannot read /proc/7/ns: permission denied"
    );
    let esrch = io::Error::from_raw_os_error(libc::ESRCH);
    assert_eq!(
        proc_error(root, 7, "status", &esrch),
        "process 7 exited while being inspected"
    );
    let other = io::Error::from_raw_os_error(libc::EIO);
    assert!(proc_error(root, 7, "status", &other).starts_with("cannot read /proc/7/status: "));
}

#[test]
fn clashing_names_are_qualified() {
    let me = container(Runtime::Docker, ID, "me", Some(1));
    let a = container(Runtime::Containerd, "web", "web", Some(2));
    let mut b = (*container(Runtime::Containerd, "web", "web", Some(3))).clone();
    b.namespace = Some("other".to_owned());
    let d = container(Runtime::Runc, "db", "db", Some(4));
    let ts: Vec<Target> = [a, Arc::new(b), d]
        .into_iter()
        .map(|c| target(c, None))
        .collect();
    let others: Vec<&Target> = ts.iter().collect();
    assert_eq!(other_label(&ts[0].container, &me, &others), "default/web");
    assert_eq!(other_label(&ts[1].container, &me, &others), "other/web");
    assert_eq!(other_label(&ts[2].container, &me, &others), "db");
    let same = container(Runtime::Runc, "db2", "db", Some(5));
    assert_eq!(other_label(&ts[2].container, &same, &others), "runc/db");
}

#[test]
fn selection_rules() {
    let a = container(Runtime::Docker, ID, "web", Some(1));
    let b = container(Runtime::Containerd, "web", "web", Some(2));
    let mut c = (*container(Runtime::Containerd, "web", "web", Some(3))).clone();
    c.namespace = Some("other".to_owned());
    let d = container(Runtime::Runc, "1ed4-runc", "db", Some(4));
    let all: Vec<&Container> = vec![&a, &b, &c, &d];
    let select = |all: &[&Container], p: &str| match Selector::parse(p) {
        Ok(s) => s.best_indices(all).map(|(_, hits)| hits),
        Err(_) => None,
    };
    let one = |all: &[&Container], p: &str| Selector::parse(p).unwrap().resolve(all);
    assert_eq!(select(&all, "nope"), None);
    assert_eq!(select(&all, ""), None);
    // Three containers named "web" (ids of b and c are "web" too): the ids win.
    assert_eq!(select(&all, "web"), Some(vec![1, 2]));
    assert!(matches!(
        one(&all, "web"),
        Err(SelectError::Ambiguous { candidates, .. }) if candidates.len() == 2
    ));
    assert_eq!(one(&all, "other/web"), Ok(2));
    assert_eq!(one(&all, "containerd/default/web"), Ok(1));
    assert_eq!(one(&all, &format!("docker/{ID}")), Ok(0));
    assert_eq!(one(&all, "docker/web"), Ok(0));
    assert_eq!(one(&all, ID), Ok(0));
    assert_eq!(one(&all, "db"), Ok(3));
    // Prefixes: 3 characters or more; several hits are ambiguous.
    assert_eq!(one(&all, "1ed420"), Ok(0));
    assert_eq!(select(&all, "1ed"), Some(vec![0, 3]));
    assert_eq!(select(&all, "1e"), None);
    // An exact name wins over an id prefix.
    let e = container(Runtime::Runc, "dbx", "x", Some(5));
    assert_eq!(one(&[&d, &e], "db"), Ok(0));
}

/// Dates as runtimes write them are parsed by `clock` (tested there); what inspect adds is
/// refusing what is not one, and its own way of showing a time.
#[test]
fn rfc3339() {
    for bad in [
        "",
        "2026-11-29",
        "2026-13-01T00:00:00Z",
        "2026-11-29T18:38:13",
        "2026-11-29T18:38:13.Z",
        "2026-11-29T25:00:00Z",
        "2026-11-29T18:38:13+0100",
        "2026-11-29T18:38:13Zjunk",
        "２026-11-29T18:38:13Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
    assert_eq!(utc_seconds(0), "1970-01-01 00:00:00 UTC");
}

#[test]
fn defaults_and_formatting() {
    let (runc, what) = runtime_default(Runtime::Runc);
    assert_eq!(
        runc.names(),
        ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
    );
    assert_eq!(what, "the `runc spec` default set (3 capabilities)");
    assert_eq!(runtime_default(Runtime::Docker).0, OCI_DEFAULT_CAPS);
    let ch = Change::of(CapSet(0b0110), CapSet(0b1011));
    assert_eq!(
        host_change(&ch, CapSet(0b0110)),
        "adds CAP_DAC_READ_SEARCH; drops 2 of the host's 3"
    );
    let none = Change::of(CapSet(1), CapSet(1));
    assert_eq!(host_change(&none, CapSet(1)), "adds nothing; drops nothing");
    let names: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
    assert_eq!(some_names(&names), "c0, c1, c2, c3, c4 and 2 more");
    assert_eq!(some_names(&names[..2]), "c0, c1");
}

#[test]
fn untrusted_strings_are_escaped() {
    let f = lab("escape");
    let env = fake_env(&f);
    let mut c = (*container(Runtime::Runc, "evil", "evil\u{1b}[2J", Some(101))).clone();
    c.labels.insert("k\u{1b}".to_owned(), "v\n".to_owned());
    c.image = Some("img\u{7}".to_owned());
    let r = gather(&env, &target(Arc::new(c), Some(600)), &[]);
    let text = render(&r);
    assert!(
        !text.chars().any(|ch| ch.is_control() && ch != '\n'),
        "{text}"
    );
    assert!(text.contains("evil\\x1b[2J"));
    assert!(text.contains("k\\x1b=v\\n"));
}

#[test]
fn incidents_from_a_journal() {
    let dir = Fake::new("journal");
    let path = dir.0.join("j.db");
    assert_eq!(read_incidents(Some(&path), "docker/x").status, "no_journal");
    assert_eq!(read_incidents(None, "docker/x").status, "disabled");
    let mut j = Journal::open(&path, JournalOptions::default()).unwrap();
    let rec = |ts: i64, ty: &str, id: &str| {
        Entry::Record(Record::from_ndjson(
            ts,
            &json!({
                "type": ty,
                "container": {"id": id, "runtime": "docker", "name": "n", "resolved": true},
                "explanation": format!("{ty} of {id}"),
            }),
        ))
    };
    let mut entries = vec![
        rec(1_000_000_000, "oom_kill", "x"),
        rec(2_000_000_000, "container_update", "x"),
        rec(3_000_000_000, "kill", "y"),
    ];
    for i in 0..12 {
        entries.push(rec(10_000_000_000 + i, "signal", "x"));
    }
    j.write(&entries).unwrap();
    drop(j);
    let inc = read_incidents(Some(&path), "docker/x");
    assert_eq!(inc.status, "ok");
    assert_eq!(inc.records.len(), INCIDENT_LIMIT);
    assert!(inc.records.iter().all(|r| r.kind == "signal"));
    assert_eq!(inc.records[0].explanation.as_deref(), Some("signal of x"));
    assert!(inc.records[0].ts.starts_with("1970-01-01T00:00:10."));
    let y = read_incidents(Some(&path), "docker/y");
    assert_eq!(y.records.len(), 1);
    assert_eq!(y.records[0].kind, "kill");
    // Rendered in UTC.
    let f = lab("journal-render");
    let env = fake_env(&f);
    let mut r = gather(
        &env,
        &target(container(Runtime::Docker, ID, "x", Some(101)), Some(600)),
        &[],
    );
    r.incidents = y;
    let text = render(&r);
    assert!(
        text.contains("  1970-01-01 00:00:03  kill            kill of y\n"),
        "{text}"
    );
    // A file that is not a journal: an error in the section, not a failure.
    let bad = dir.0.join("bad.db");
    std::fs::write(&bad, "not sqlite").unwrap();
    let e = read_incidents(Some(&bad), "docker/x");
    assert_eq!(e.status, "error");
    assert!(e.error.is_some());
}
