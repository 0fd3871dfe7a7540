//! The container image (`cargo xtask image`, `ctrace:local`): `ctrace agent` running *inside a
//! Docker container*, with the host's pid and cgroup namespaces, read-only mounts and only the
//! capabilities it needs, attributes and explains a kill and an OOM kill in other containers;
//! its NDJSON is `docker logs` and its metrics are scraped on 127.0.0.1.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ctrace_tests::{
    eventually, free_port, get, http_get, is_root, require_docker, run, unavailable, Bounded as _,
    DockerContainer, TempDir,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);
const AGENT: &str = "ctrace-it-image-agent";

/// The image `cargo xtask test` built (`CTRACE_IMAGE`), when it is in Docker.
fn require_image() -> Option<String> {
    if !is_root() {
        unavailable("the agent's container loads eBPF programs: run as root");
        return None;
    }
    if !require_docker() {
        return None;
    }
    let Ok(image) = std::env::var("CTRACE_IMAGE") else {
        unavailable(
            "no CTRACE_IMAGE: `cargo xtask image` builds ctrace:local (`cargo xtask test` sets it)",
        );
        return None;
    };
    let present = Command::new("docker")
        .args(["image", "inspect", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status_bounded()
        .is_ok_and(|s| s.success());
    if !present {
        unavailable(&format!(
            "docker has no image {image} (`cargo xtask image` builds ctrace:local)"
        ));
        return None;
    }
    Some(image)
}

/// The agent's container, removed (`docker rm -f`) on drop; its stderr is printed then if the
/// test failed.
struct Agent {
    name: String,
}

impl Agent {
    /// `docker run -d` of the image as docs/deploy.md shows it. Docker releases older than 23
    /// know neither `CAP_BPF` nor `CAP_PERFMON` (`invalid CapAdd: unknown capability`): there
    /// the agent gets `CAP_SYS_ADMIN`, which the kernel accepts in their place.
    fn start(
        image: &str,
        journal: &TempDir,
        metrics_addr: &str,
    ) -> (Self, &'static [&'static str]) {
        let _ = Command::new("docker")
            .args(["rm", "-f", AGENT])
            .output_bounded();
        let mut last = String::new();
        for caps in [
            &["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"][..],
            &["SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"][..],
        ] {
            let mut cmd = Command::new("docker");
            cmd.args(["run", "-d", "--name", AGENT])
                .args(["--pid", "host", "--cgroupns", "host", "--network", "host"])
                .args(["--uts", "host", "--cap-drop", "ALL"]);
            for cap in caps {
                cmd.args(["--cap-add", cap]);
            }
            cmd.args(["--security-opt", "seccomp=unconfined"]).args([
                "--security-opt",
                "apparmor=unconfined",
                "--read-only",
            ]);
            for (host, ctr) in [
                ("/sys/kernel/btf", "/sys/kernel/btf"),
                ("/sys/fs/cgroup", "/sys/fs/cgroup"),
                ("/sys/kernel/tracing", "/sys/kernel/tracing"),
                ("/run/containerd", "/run/containerd"),
                ("/run/docker", "/run/docker"),
                ("/run/runc", "/run/runc"),
                ("/var/lib/docker/containers", "/var/lib/docker/containers"),
                ("/var/run/docker.sock", "/run/docker.sock"),
            ] {
                cmd.arg("-v").arg(format!("{host}:{ctr}:ro"));
            }
            cmd.arg("-v")
                .arg(format!("{}:/var/lib/ctrace", journal.0.display()))
                .arg(image)
                .args([
                    "agent",
                    "--docker-socket",
                    "/run/docker.sock",
                    "--output",
                    "-",
                ])
                .args(["--metrics-addr", metrics_addr]);
            eprintln!("image: {cmd:?}");
            let out = cmd.output_bounded().expect("docker run");
            if out.status.success() {
                let agent = Self {
                    name: AGENT.to_owned(),
                };
                return (agent, caps);
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            let _ = Command::new("docker")
                .args(["rm", "-f", AGENT])
                .output_bounded();
            if !last.contains("unknown capability") {
                break;
            }
        }
        panic!("docker run of the agent failed: {last}");
    }

    /// (stdout, stderr) of `docker logs`: the NDJSON and the agent's messages.
    fn logs(&self) -> (String, String) {
        let out = run(Command::new("docker").args(["logs", &self.name]));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn records(&self) -> Vec<Value> {
        let (stdout, stderr) = self.logs();
        stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("the agent printed a line that is not JSON ({e}): {l}\n{stderr}")
                })
            })
            .collect()
    }

    fn inspect(&self, format: &str) -> String {
        let out = run(Command::new("docker").args(["inspect", "-f", format, &self.name]));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The first record `pred` accepts, within [`WAIT`].
    fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(what, WAIT, || self.records().into_iter().find(&pred))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let (_, stderr) = self.logs();
            eprintln!("--- {} stderr ---\n{stderr}", self.name);
        }
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output_bounded();
    }
}

/// utime + stime of a process, in seconds, and its RSS in KiB (through procfs).
fn cpu_and_rss(pid: u32) -> (f64, u64) {
    let p = ctrace_tests::process(pid).expect("the agent's process");
    let stat = p.stat().expect("agent's stat");
    let ticks = stat.utime + stat.stime;
    let rss = p.status().expect("agent's status").vmrss.unwrap_or(0);
    (ticks as f64 / procfs::ticks_per_second() as f64, rss)
}

#[test]
fn the_agent_in_a_container_explains_a_kill_and_an_oom_and_is_scraped() {
    let Some(image) = require_image() else { return };
    let journal = TempDir::new("image-journal");
    let addr = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let (agent, caps) = Agent::start(&image, &journal, &addr);
    eprintln!("image: agent {image} running with capabilities {caps:?}");
    eventually("the agent in its container to trace", WAIT, || {
        let (_, stderr) = agent.logs();
        if agent.inspect("{{.State.Running}}") != "true" {
            panic!("the agent's container stopped:\n{stderr}");
        }
        stderr
            .lines()
            .any(|l| l.starts_with("ctrace agent: tracing"))
            .then_some(())
    });
    let pid: u32 = agent.inspect("{{.State.Pid}}").parse().expect("pid");
    let (cpu_at_start, rss_at_start) = cpu_and_rss(pid);
    let tracing_since = Instant::now();

    // A kill from a host shell, of another container's init.
    let kill_name = "ctrace-it-image-kill";
    let killed = DockerContainer::run(kill_name, &[], &["sleep", "300"]);
    let init = killed.init_pid();
    let st = Command::new("/bin/sh")
        .args(["-c", &format!("kill -9 {init}")])
        .status_bounded()
        .unwrap();
    assert!(st.success());
    assert_eq!(killed.wait(WAIT), 137);

    // An OOM kill of a child in a third container, under its 32 MiB limit.
    let oom_name = "ctrace-it-image-oom";
    let oomed = DockerContainer::run(oom_name, &["-m", "32m"], &["sleep", "300"]);
    let st = Command::new("docker")
        .args(["exec", &oomed.id, "tail", "/dev/zero"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status_bounded()
        .unwrap();
    assert_eq!(st.code(), Some(137), "the child was OOM-killed");

    let kill = agent.wait_for(&format!("kill incident for {kill_name}"), |v| {
        v["type"] == "kill" && get(v, "container.name") == kill_name
    });
    assert_eq!(kill["signal"], "SIGKILL", "{kill}");
    assert_eq!(get(&kill, "target.pid"), init, "host pids: {kill}");
    assert_eq!(get(&kill, "container.runtime"), "docker", "{kill}");
    assert_eq!(get(&kill, "container.image"), "busybox:local", "{kill}");
    assert!(
        get(&kill, "sender.container").is_null(),
        "from the host: {kill}"
    );
    assert_eq!(get(&kill, "sender.comm"), "sh", "{kill}");
    assert_eq!(get(&kill, "target_exit.exit_code"), 137, "{kill}");
    let expl = kill["explanation"].as_str().unwrap();
    assert!(
        expl.contains(&format!(
            "in {kill_name}, docker) killed by SIGKILL from sh (pid"
        )),
        "{expl}"
    );
    eprintln!("image: kill: {expl}");

    let oom = agent.wait_for(&format!("oom_kill in {oom_name}"), |v| {
        v["type"] == "oom_kill" && get(v, "container.name") == oom_name
    });
    assert_eq!(oom["scope"], "container_limit", "{oom}");
    assert_eq!(get(&oom, "memory.limit_bytes"), 32u64 << 20, "{oom}");
    assert_eq!(get(&oom, "victim.comm"), "tail", "{oom}");
    assert_eq!(oom["container_stopped"], false, "{oom}");
    let expl = oom["explanation"].as_str().unwrap();
    assert!(expl.contains(oom_name), "{expl}");
    eprintln!("image: oom_kill: {expl}");

    // The metrics, scraped on the host's loopback.
    let prefix = format!("ctrace_container_oom_kills_total{{container=\"{oom_name}\",");
    let series = eventually("the OOM kill in the metrics", WAIT, || {
        let text = http_get(&addr, "/metrics")?;
        text.lines()
            .find(|l| {
                l.starts_with(&prefix)
                    && l.contains("scope=\"container_limit\"}")
                    && l.ends_with(" 1")
            })
            .map(str::to_owned)
    });
    eprintln!("image: scraped http://{addr}/metrics: {series}");

    let (cpu, rss) = cpu_and_rss(pid);
    let window = tracing_since.elapsed().as_secs_f64();
    let stats = run(Command::new("docker").args([
        "stats",
        "--no-stream",
        "--format",
        "{{.CPUPerc}} CPU, {{.MemUsage}} memory (cgroup)",
        AGENT,
    ]));
    eprintln!(
        "image: agent footprint: RSS {rss_at_start} KiB once tracing, {rss} KiB at the end; \
         CPU {cpu_at_start:.2} s to start ({:.1} s from docker run), then {:.2} s over the \
         {window:.1} s of kill, OOM and scrapes ({:.1}% of a core); docker stats: {}",
        (tracing_since - started).as_secs_f64(),
        cpu - cpu_at_start,
        100.0 * (cpu - cpu_at_start) / window,
        String::from_utf8_lossy(&stats.stdout).trim()
    );
    let own = agent
        .records()
        .iter()
        .filter(|v| get(v, "container.name") == AGENT)
        .map(|v| v["type"].as_str().unwrap_or("?").to_owned())
        .collect::<Vec<_>>();
    eprintln!("image: records about the agent's own container: {own:?}");

    // SIGTERM (docker stop): a clean exit, its closing stats record last.
    run(Command::new("docker").args(["stop", "-t", "30", AGENT]));
    assert_eq!(agent.inspect("{{.State.ExitCode}}"), "0");
    let records = agent.records();
    assert_eq!(
        records.last().map(|v| v["type"].clone()),
        Some(Value::from("stats")),
        "the last record"
    );
    drop(oomed);
    drop(killed);
}
