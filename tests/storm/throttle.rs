//! CPU throttling explained per container: the lab's --cpus=0.01 container against a
//! --cpus=1 one, both running a busy loop.

use std::time::Duration;

use ctrace_tests::{get, require, require_docker, Bounded as _, DockerContainer, Watch};

#[test]
fn a_tiny_cpu_quota_is_reported_with_its_quota_and_a_big_one_is_not() {
    let Some(bin) = require() else { return };
    let _storm = ctrace_tests::storm();
    if !require_docker() {
        return;
    }
    let busy = ["sh", "-c", "while :; do :; done"];
    let slow = DockerContainer::run("ctrace-it-thr-slow", &["--cpus", "0.01"], &busy);
    let fast = DockerContainer::run("ctrace-it-thr-fast", &["--cpus", "1"], &busy);
    let w = Watch::start(&bin, &["--events", "cpu_throttle"]);
    let ev = w.wait_for(
        "cpu_throttle of the slow container",
        Duration::from_secs(20),
        |v| v["type"] == "cpu_throttle" && get(v, "container.name") == "ctrace-it-thr-slow",
    );
    assert_eq!(ev["phase"], "start");
    assert_eq!(get(&ev, "quota.cpus"), 0.01);
    assert_eq!(get(&ev, "quota.quota_us"), 1000);
    assert_eq!(get(&ev, "quota.period_us"), 100_000);
    // At 0.01 CPU a busy loop is throttled in (nearly) every 100 ms period.
    assert!(ev["throttled_ratio"].as_f64().unwrap() >= 0.8, "{ev}");
    // Throttled time runs from the moment the quota is spent to the next refill, so it is
    // not a fixed share of the interval: on a loaded machine the loop waits its turn on the
    // run queue before it has spent its 1 ms, and is throttled for less of each period (a
    // CI run saw 0.39 s in 1 s, with all 10 periods throttled). What must hold is that it is
    // there, and no more than the interval on each CPU.
    let throttled_ns = ev["throttled_ns"].as_u64().unwrap();
    let interval_ns = ev["interval_ns"].as_u64().unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert!(
        throttled_ns > 0 && throttled_ns <= interval_ns * cpus,
        "{ev}"
    );
    assert!(ev["usage_cpus"].as_f64().unwrap() < 0.05, "{ev}");
    let expl = ev["explanation"].as_str().unwrap();
    assert!(
        expl.starts_with("ctrace-it-thr-slow (docker) throttled in")
            && expl.contains("quota 0.01 CPU (1ms/100ms)"),
        "{expl}"
    );
    // The run-queue delay comes from the kernel's per-cgroup histograms.
    assert!(
        get(&ev, "runqueue.p99_ns").as_u64().unwrap() >= 1_000_000,
        "{ev}"
    );
    // While it lasts, it is reported again (rate-limited: every 10 s).
    let ongoing = w.wait_for(
        "cpu_throttle ongoing of the slow container",
        Duration::from_secs(25),
        |v| {
            v["type"] == "cpu_throttle"
                && get(v, "container.name") == "ctrace-it-thr-slow"
                && v["phase"] == "ongoing"
        },
    );
    assert!(
        ongoing["throttled_ratio"].as_f64().unwrap() >= 0.8,
        "{ongoing}"
    );
    assert!(ongoing["ts"].as_str() > ev["ts"].as_str(), "{ongoing}");
    // Raise its quota: the throttling stops, and ctrace says so with the new quota.
    let st = std::process::Command::new("docker")
        .args(["update", "--cpus", "2", "ctrace-it-thr-slow"])
        .stdout(std::process::Stdio::null())
        .status_bounded()
        .unwrap();
    assert!(st.success());
    let stop = w.wait_for(
        "cpu_throttle stop of the slow container",
        Duration::from_secs(20),
        |v| {
            v["type"] == "cpu_throttle"
                && get(v, "container.name") == "ctrace-it-thr-slow"
                && v["phase"] == "stop"
        },
    );
    assert_eq!(get(&stop, "quota.cpus"), 2.0, "{stop}");
    assert!(stop["throttled_ratio"].as_f64().unwrap() < 0.1, "{stop}");
    assert!(
        stop["explanation"]
            .as_str()
            .unwrap()
            .starts_with("ctrace-it-thr-slow (docker) no longer throttled"),
        "{stop}"
    );
    // Give the fast one time to show throttling if it had any, counted in the detector's own
    // intervals rather than in seconds: throttle the slow one again and let it go again. Its
    // new start and stop can only come from intervals after the stop above (at least three:
    // one throttled, two below the threshold), and every interval looks at the fast one too.
    throttle_cycle(&w, "ctrace-it-thr-slow", stop["ts"].as_str().unwrap());
    let (records, _) = w.stop();
    // On this 2-core machine a busy loop under a 1-CPU quota can be throttled now and then
    // (the loop may run on both CPUs within one period), so it may cross the 10 % threshold
    // in a rare interval: the bound is on the ratio, at 0.5, far below the slow one's 0.8 and
    // above anything a 1-CPU loop under a 1-CPU quota reaches. No record at all is the
    // common case.
    for v in records
        .iter()
        .filter(|v| get(v, "container.name") == "ctrace-it-thr-fast")
    {
        assert!(
            v["throttled_ratio"].as_f64().unwrap() < 0.5,
            "fast container throttled: {v}"
        );
    }
    drop((slow, fast));
}

#[test]
fn a_container_without_quota_is_never_reported_as_throttled() {
    let Some(bin) = require() else { return };
    let _storm = ctrace_tests::storm();
    if !require_docker() {
        return;
    }
    let free = DockerContainer::run(
        "ctrace-it-thr-free",
        &[],
        &["sh", "-c", "while :; do :; done"],
    );
    // The marker: a container throttled beside it. The detector looks at every container in
    // each interval, so by the marker's start and stop (at least three intervals: one
    // throttled, two below the threshold) it has looked at the free one as often.
    let marker = DockerContainer::run(
        "ctrace-it-thr-mark",
        &["--cpus", "0.01"],
        &["sh", "-c", "while :; do :; done"],
    );
    let w = Watch::start(
        &bin,
        &["--events", "cpu_throttle", "--throttle-interval", "500ms"],
    );
    throttle_cycle(&w, "ctrace-it-thr-mark", "");
    let (records, _) = w.stop();
    assert!(
        !records.iter().any(
            |v| v["type"] == "cpu_throttle" && get(v, "container.name") == "ctrace-it-thr-free"
        ),
        "no quota, no throttling"
    );
    drop((free, marker));
}

/// Take `name` (a busy loop in a Docker container) through one throttling episode whose
/// records come after `after` (a record's `ts`; "" for any): a 0.01 CPU quota until the
/// watch reports its `start`, then 2 CPUs until it reports its `stop`.
fn throttle_cycle(w: &Watch, name: &str, after: &str) {
    let mut since = after.to_owned();
    for (cpus, phase) in [("0.01", "start"), ("2", "stop")] {
        let st = std::process::Command::new("docker")
            .args(["update", "--cpus", cpus, name])
            .stdout(std::process::Stdio::null())
            .status_bounded()
            .expect("docker update");
        assert!(st.success(), "docker update --cpus {cpus} {name}: {st}");
        let ev = w.wait_for(
            &format!("cpu_throttle {phase} of {name} after {since:?}"),
            Duration::from_secs(20),
            |v| {
                v["type"] == "cpu_throttle"
                    && get(v, "container.name") == name
                    && v["phase"] == phase
                    && v["ts"].as_str().is_some_and(|t| t > since.as_str())
            },
        );
        since = ev["ts"].as_str().unwrap().to_owned();
    }
}

#[test]
fn top_snapshot_shows_quota_throttling_and_memory_per_container() {
    let Some(bin) = require() else { return };
    let _storm = ctrace_tests::storm();
    if !require_docker() {
        return;
    }
    let busy = ["sh", "-c", "while :; do :; done"];
    let slow = DockerContainer::run(
        "ctrace-it-top-slow",
        &["--cpus", "0.01", "-m", "64m"],
        &busy,
    );
    let free = DockerContainer::run("ctrace-it-top-free", &[], &["sleep", "300"]);
    // A container that had an OOM kill before top started: its cgroup's own counter says so.
    let oomed = DockerContainer::run("ctrace-it-top-oomed", &["-m", "32m"], &["sleep", "300"]);
    let st = std::process::Command::new("docker")
        .args(["exec", &oomed.id, "tail", "/dev/zero"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status_bounded()
        .unwrap();
    assert_eq!(st.code(), Some(137), "the child was OOM-killed");
    let out = ctrace_tests::ctrace(&bin, &["top", "--json", "--interval", "1s"]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |name: &str| {
        rows.iter()
            .find(|r| get(r, "container.name") == name)
            .unwrap_or_else(|| panic!("{name} not in top: {out}"))
            .clone()
    };
    let s = row("ctrace-it-top-slow");
    assert_eq!(s["cpu_quota_cpus"], 0.01);
    assert!(s["throttled_ratio"].as_f64().unwrap() >= 0.8, "{s}");
    assert_eq!(s["memory_limit_bytes"], 64u64 << 20);
    assert!(s["runqueue_p99_ns"].as_u64().is_some(), "{s}");
    let f = row("ctrace-it-top-free");
    assert!(
        f["cpu_quota_cpus"].is_null() && f["throttled_ratio"].is_null(),
        "no quota is not 0%: {f}"
    );
    assert!(f["memory_limit_bytes"].is_null());
    assert_eq!(
        f["memory_limit_set"], false,
        "no limit set, and that is known: {f}"
    );
    assert_eq!(f["cpu_quota_set"], false, "{f}");
    let o = row("ctrace-it-top-oomed");
    assert_eq!(o["oom_kills"], 1, "{o}");
    assert_eq!(o["oom_kills_source"], "cgroup", "{o}");
    assert_eq!(f["oom_kills"], 0, "{f}");
    // The table, as a person sees it (not a terminal: one refresh).
    let table = ctrace_tests::ctrace(&bin, &["top"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ctrace-it-top-slow") && l.contains("0.01")),
        "{table}"
    );
    drop((slow, free, oomed));
}
