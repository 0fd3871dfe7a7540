//! `ctrace agent --metrics-addr`: the exposition passes `promtool check metrics`, and a real
//! Prometheus scraping the agent sees a container's OOM kill and a throttled container's
//! ratio through its query API.

use std::{
    io::Write as _,
    process::{Child, Command, Stdio},
    time::Duration,
};

use ctrace_tests::{
    eventually, free_port, http_get, require, require_docker, run, Bounded as _, DockerContainer,
    TempDir, Watch,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A Prometheus server of the test's own, on 127.0.0.1, scraping `target` every second;
/// killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = TempDir::new("prometheus");
        let config = dir.0.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: ctrace\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.0.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian package prometheus; cargo xtask lab-up installs it)");
        let p = Self {
            child,
            addr,
            _dir: dir,
        };
        eventually("Prometheus to be ready", WAIT, || {
            http_get(&p.addr, "/-/ready").map(|_| ())
        });
        p
    }

    /// The value of an instant query's only (or summed) result, when it has one.
    fn query(&self, promql: &str) -> Option<f64> {
        let body = http_get(
            &self.addr,
            &format!("/api/v1/query?query={}", percent_encode(promql)),
        )?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        let mut sum = None;
        for r in result {
            let x: f64 = r["value"][1].as_str()?.parse().ok()?;
            sum = Some(sum.unwrap_or(0.0) + x);
        }
        sum
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent, without a journal, writing to `output` and serving metrics on a free port; and
/// that address.
fn start_agent(bin: &std::path::Path, output: &std::path::Path) -> (Watch, String) {
    start_agent_with_env(bin, output, &[])
}

fn start_agent_with_env(
    bin: &std::path::Path,
    output: &std::path::Path,
    env: &[(&str, &std::path::Path)],
) -> (Watch, String) {
    let w = Watch::start_agent_with_env(
        bin,
        &[
            "--no-journal",
            "--output",
            output.to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        env,
    );
    let addr = metrics_addr(&w);
    (w, addr)
}

/// The address the agent serves metrics on, from its start line.
fn metrics_addr(w: &Watch) -> String {
    let stderr = w.stderr();
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("ctrace agent: metrics at http://")?
                .strip_suffix("/metrics")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no metrics address in:\n{stderr}"))
}

#[test]
fn prometheus_sees_an_oom_kill_and_a_throttled_ratio() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("metrics");
    let output = dir.0.join("out.ndjson");
    let oom_name = "ctrace-it-metrics-oom";
    let slow_name = "ctrace-it-metrics-slow";
    // A child is OOM-killed in this one, on cue, while its init lives on.
    let oomed = DockerContainer::run(oom_name, &["-m", "32m"], &["sleep", "300"]);
    let _slow = DockerContainer::run(
        slow_name,
        &["--cpus", "0.01"],
        &["sh", "-c", "while :; do :; done"],
    );
    let (w, addr) = start_agent(&bin, &output);

    // The exposition itself follows Prometheus's conventions.
    let text = eventually("the container series", WAIT, || {
        http_get(&addr, "/metrics").filter(|t| t.contains(slow_name) && t.contains(oom_name))
    });
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = ctrace_tests::output_within(promtool, Duration::from_secs(60), "promtool").unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for family in [
        "# TYPE ctrace_container_runqueue_delay_seconds histogram",
        "# TYPE ctrace_enrichment_failures_total counter",
        "# TYPE ctrace_records_lost_total counter",
        "# TYPE ctrace_build_info gauge",
        "# TYPE ctrace_ring_fill_ratio gauge",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    let fill: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ctrace_ring_fill_ratio "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ring fill sample:\n{text}"));
    assert!((0.0..=1.0).contains(&fill), "ring fill {fill}");

    let prom = Prometheus::start(&addr);
    let oom_series = format!("ctrace_container_oom_kills_total{{container=\"{oom_name}\"}}");
    // Prometheus has the OOM counter at 0 before the kill, so its increase is the kill.
    eventually(
        "Prometheus to have scraped the OOM counter at 0",
        WAIT,
        || prom.query(&oom_series).filter(|v| *v == 0.0),
    );
    let st = Command::new("docker")
        .args(["exec", &oomed.id, "tail", "/dev/zero"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status_bounded()
        .unwrap();
    assert_eq!(st.code(), Some(137), "the child was OOM-killed");
    let increase = format!("sum(increase({oom_series}[1m]))");
    let scoped = format!(
        "ctrace_container_oom_kills_total{{container=\"{oom_name}\",scope=\"container_limit\"}}"
    );
    eventually("the OOM kill in Prometheus", WAIT, || {
        prom.query(&scoped).filter(|v| *v == 1.0)
    });
    let inc = eventually("an increase over the last minute", WAIT, || {
        prom.query(&increase).filter(|v| *v > 0.0)
    });
    eprintln!("prometheus: {increase} = {inc}");
    assert_eq!(
        inc.round(),
        1.0,
        "{increase} = {inc} (extrapolated by Prometheus)"
    );

    // The throttled ratio of a --cpus 0.01 busy loop, from the cgroup's own counters.
    let ratio = format!(
        "rate(ctrace_container_cpu_throttled_periods_total{{container=\"{slow_name}\"}}[20s]) / \
         rate(ctrace_container_cpu_periods_total{{container=\"{slow_name}\"}}[20s])"
    );
    let r = eventually("the throttled ratio", WAIT, || {
        prom.query(&ratio).filter(|r| r.is_finite())
    });
    eprintln!("prometheus: {ratio} = {r}");
    assert!(r > 0.8, "{ratio} = {r}");
    drop(prom);
    w.stop_with(libc::SIGTERM);
}

/// One sample of the exposition: the first of `family` whose labels include `label` (all of
/// them when it is empty).
fn sample(text: &str, family: &str, label: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(family)?;
        let (labels, value) = rest.rsplit_once(' ')?;
        let bare = labels.is_empty() || labels.starts_with('{');
        (bare && labels.contains(label)).then(|| value.parse().ok())?
    })
}

/// Containers in which nothing runs are not read again (the kernel's run-queue counts say
/// so), and one that runs again has its figures read again.
#[test]
fn a_quiet_container_is_skipped_until_it_runs_again() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("metrics-quiet");
    let output = dir.0.join("out.ndjson");
    let name = "ctrace-it-metrics-quiet";
    let sleeper = DockerContainer::run(name, &["-m", "64m"], &["sleep", "300"]);
    let (_agent, addr) = start_agent(&bin, &output);
    let usage = "ctrace_container_memory_usage_bytes";
    let label = format!("container=\"{name}\"");
    // The sleeper has been read once (its series exist), then found quiet.
    let before = eventually("a quiet container and the sleeper's usage", WAIT, || {
        let text = http_get(&addr, "/metrics")?;
        let quiet = sample(&text, "ctrace_containers_quiet", "")?;
        let usage = sample(&text, usage, &label)?;
        (quiet >= 1.0).then_some(usage)
    });
    // It runs again: 16 MiB written to its /dev/shm are charged to it, and seen.
    run(Command::new("docker").args([
        "exec",
        &sleeper.id,
        "sh",
        "-c",
        "head -c 16777216 /dev/zero > /dev/shm/fill",
    ]));
    // The 16 MiB are charged, less what the container's other pages lose meanwhile (the exec
    // frees some: 16,642,048 bytes more in a run by hand): 12 MiB more is the write seen.
    let after = eventually("the usage to follow the write", WAIT, || {
        let text = http_get(&addr, "/metrics")?;
        sample(&text, usage, &label).filter(|u| *u >= before + 12.0 * 1024.0 * 1024.0)
    });
    eprintln!("usage of the quiet container: {before} then {after} bytes");
}

/// `ctrace_container_runqueue_delay_seconds_sum` of container `name`, when the agent has it.
fn runqueue_delay_sum(addr: &str, name: &str) -> Option<f64> {
    let text = http_get(addr, "/metrics")?;
    let label = format!("container=\"{name}\"");
    text.lines()
        .filter(|l| l.starts_with("ctrace_container_runqueue_delay_seconds_sum{"))
        .find(|l| l.contains(&label))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// The run-queue delay the kernel itself accounted to these processes
/// (`/proc/PID/schedstat`, second field, ns), summed.
fn kernel_run_delay_ns(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|&pid| {
            ctrace_tests::process(pid)
                .and_then(|p| p.schedstat().ok())
                .unwrap_or_else(|| panic!("/proc/{pid}/schedstat"))
                .run_delay
        })
        .sum()
}

/// The next value of the container's run-queue delay sum that differs from `after`, read as
/// soon as the agent publishes it, with the kernel's own figure read right after.
fn next_runqueue_sample(addr: &str, name: &str, after: f64, pids: &[u32]) -> (f64, u64) {
    eventually("the agent's next run-queue sample", WAIT, || {
        let m = runqueue_delay_sum(addr, name).filter(|m| *m > after)?;
        Some((m, kernel_run_delay_ns(pids)))
    })
}

/// Two busy loops pinned to one CPU wait for each other: the run-queue delay the agent
/// exports for their container follows what the kernel accounted to them
/// (`/proc/PID/schedstat`), whichever source the programs read: the kernel's own stamp
/// (`sched_switch` alone, the default here) or the wakeups' stamps (the fallback, forced).
#[test]
fn runqueue_delay_follows_the_kernels_own_accounting() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let name = "ctrace-it-metrics-runq";
    let c = DockerContainer::run(
        name,
        &["--cpuset-cpus", "0"],
        &["sh", "-c", "(while :; do :; done) & while :; do :; done"],
    );
    let init = c.init_pid();
    let pids = eventually("the container's second loop", WAIT, || {
        let all = procfs::process::all_processes().ok()?;
        let mut pids: Vec<u32> = all
            .filter_map(Result::ok)
            .filter(|p| p.stat().is_ok_and(|s| s.ppid == init as i32))
            .map(|p| p.pid as u32)
            .collect();
        (!pids.is_empty()).then(|| {
            pids.push(init);
            pids
        })
    });
    let dir = TempDir::new("metrics-runq");
    for source in ["sched_info", "stamps"] {
        // The source asked for is the one loaded (`ctrace doctor` names the hooks).
        let doctor = Command::new(&bin)
            .arg("doctor")
            .env("CTRACE_RUNQ_SOURCE", source)
            .output_bounded()
            .unwrap();
        let doctor = String::from_utf8_lossy(&doctor.stdout).into_owned();
        let line = doctor
            .lines()
            .find(|l| l.trim_start().starts_with("runq_delay"))
            .unwrap_or_else(|| panic!("no runq_delay in ctrace doctor:\n{doctor}"));
        assert_eq!(line.contains("sched_wakeup"), source == "stamps", "{line}");
        let output = dir.0.join(format!("{source}.ndjson"));
        let (w, addr) = start_agent_with_env(
            &bin,
            &output,
            &[("CTRACE_RUNQ_SOURCE", std::path::Path::new(source))],
        );
        let doctor_line = w.stderr();
        let first = eventually("the container's run-queue delay", WAIT, || {
            runqueue_delay_sum(&addr, name)
        });
        let (m0, k0) = next_runqueue_sample(&addr, name, first, &pids);
        // Two loops sharing a CPU each wait about half the time: several seconds of waiting
        // make the samples' misalignment (a poll of the metrics) small beside them.
        let mut m1 = m0;
        let mut k1 = k0;
        while m1 - m0 < 6.0 {
            (m1, k1) = next_runqueue_sample(&addr, name, m1, &pids);
        }
        let ours = m1 - m0;
        let kernel = (k1 - k0) as f64 / 1e9;
        let ratio = ours / kernel;
        eprintln!("{source}: agent {ours:.3} s, kernel {kernel:.3} s of run-queue delay");
        assert!(
            (0.8..=1.2).contains(&ratio),
            "{source}: the agent counted {ours:.3} s of run-queue delay where the kernel \
             counted {kernel:.3} s ({ratio:.3}); agent said:\n{doctor_line}"
        );
        drop(w);
    }
}
