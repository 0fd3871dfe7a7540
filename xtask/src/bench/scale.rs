//! Scale with containers: the agent's memory, idle CPU and start-up time with 0, 100 and 500
//! running containers (busybox sleepers the bench creates, in parallel batches, and removes).

use std::{
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{
    stats::{self, Figure},
    tracer::{self, Config, Env, Output},
    Plan,
};
use crate::{
    lab,
    util::{self, say},
};

/// The label every container of the bench carries, so that they can all be found and removed.
pub(super) const LABEL: &str = "org.ctrace.bench=1";
/// After "tracing", before the idle CPU is measured, at least: the agent's first passes over
/// the containers (cgroups, first memory samples, journal rows) and what the runtime's API
/// then tells of them (names, images: each a new container for the resolver, written again)
/// are start-up, not idling. With 500 containers that took 3 to 5 s here (the agent's CPU
/// in 5 s steps after "tracing": 0.70, then 0.01–0.02 s each).
const SETTLE: Duration = Duration::from_secs(10);
/// The longest wait for the agent to find every live container quiet (see [`settle`]).
const SETTLE_MAX: Duration = Duration::from_secs(60);

/// The bench's containers: removed when dropped, whatever happened.
pub(super) struct Sleepers {
    count: usize,
}

impl Sleepers {
    pub(super) fn new() -> Result<Self> {
        remove_all()?;
        Ok(Self { count: 0 })
    }

    /// Start containers until `n` run, `batch` `docker run`s at a time.
    pub(super) fn grow_to(&mut self, n: usize, batch: usize) -> Result<()> {
        while self.count < n {
            let take = batch.min(n - self.count);
            let mut children = Vec::new();
            for i in self.count..self.count + take {
                children.push(
                    Command::new("docker")
                        .args(["run", "-d", "--network", "none", "--label", LABEL])
                        .arg("--name")
                        .arg(format!("ctrace-bench-{i}"))
                        .args([lab::DOCKER_IMAGE, "sleep", "1000000"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .context("starting docker run")?,
                );
            }
            for c in children {
                let out = c.wait_with_output()?;
                if !out.status.success() {
                    bail!(
                        "docker run failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            self.count += take;
            if self.count % 100 < take || self.count == n {
                say!("bench: scale: {} containers running", self.count);
            }
        }
        Ok(())
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        if let Err(e) = remove_all() {
            say!("bench: scale: removing the bench's containers failed: {e:#}");
        }
    }
}

/// `docker rm -f` every container with [`LABEL`], 50 at a time.
fn remove_all() -> Result<()> {
    let ids = util::capture(Command::new("docker").args([
        "ps",
        "-aq",
        "--filter",
        &format!("label={LABEL}"),
    ]))?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        say!("bench: scale: removing {} containers", ids.len());
    }
    for chunk in ids.chunks(50) {
        util::capture(Command::new("docker").args(["rm", "-f"]).args(chunk))?;
    }
    Ok(())
}

/// Waits until the agent's metrics say every live container is quiet (its first full reads
/// done, nothing of it read again until it runs: what an idle host costs from then on), at
/// least [`SETTLE`] after "tracing", at most [`SETTLE_MAX`]. Returns the time waited and
/// whether it settled.
fn settle(t: &tracer::Running) -> Result<(Duration, bool)> {
    let addr = t
        .metrics_addr
        .as_deref()
        .context("the agent serves no metrics")?;
    let start = std::time::Instant::now();
    thread::sleep(SETTLE);
    loop {
        let text = tracer::metrics_text(addr)?;
        let live = tracer::metric(&text, "ctrace_containers{state=\"live\"}");
        let quiet = tracer::metric(&text, "ctrace_containers_quiet");
        if let (Some(live), Some(quiet)) = (live, quiet) {
            if quiet >= live {
                return Ok((start.elapsed(), true));
            }
        }
        if start.elapsed() >= SETTLE_MAX {
            return Ok((start.elapsed(), false));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

#[derive(Default)]
struct Point {
    startup_ms: Figure,
    settle_s: Figure,
    startup_cpu_s: Figure,
    rss_mib: Figure,
    hwm_mib: Figure,
    idle_cpu_s_per_min: Figure,
}

pub fn run(plan: &Plan, env: &Env<'_>) -> Result<Value> {
    lab::lab_up().context("the scale section needs the lab (dockerd, busybox:local)")?;
    let mut counts = plan.containers.clone();
    counts.sort_unstable();
    counts.dedup();
    say!(
        "bench: scale: agent with {counts:?} containers, {} rounds, {} s idle each",
        plan.rounds,
        plan.idle.as_secs()
    );
    let mut sleepers = Sleepers::new()?;
    let mut points = Vec::new();
    for &n in &counts {
        let need_mib = n as u64 * 16 + 512;
        let avail = stats::mem_available_mib()?;
        if avail < need_mib {
            say!("bench: scale: skipping {n} containers: {avail} MiB available, about {need_mib} MiB needed");
            continue;
        }
        sleepers.grow_to(n, plan.batch)?;
        let mut p = Point::default();
        for round in 0..plan.rounds {
            let t = tracer::start(Config::Agent, env, Output::Discard, &[])?
                .context("the agent is a tracer")?;
            p.startup_ms.push(t.startup.as_secs_f64() * 1e3);
            let (waited, settled) = settle(&t)?;
            if !settled {
                say!(
                    "bench: scale: {n} containers: the agent did not find every container quiet within {} s; measuring anyway",
                    SETTLE_MAX.as_secs()
                );
            }
            let before = stats::cpu_time(t.pid())?;
            p.settle_s.push(waited.as_secs_f64());
            p.startup_cpu_s.push(before.as_secs_f64());
            thread::sleep(plan.idle);
            let used = stats::cpu_time(t.pid())?.saturating_sub(before);
            let (rss, hwm) = stats::rss_kib(t.pid())?;
            t.stop()?;
            p.idle_cpu_s_per_min
                .push(used.as_secs_f64() * 60.0 / plan.idle.as_secs_f64());
            p.rss_mib.push(rss as f64 / 1024.0);
            p.hwm_mib.push(hwm as f64 / 1024.0);
            say!(
                "bench: scale: {n} containers, round {}/{}: start-up {:.0} ms, settled after {:.1} s ({:.2} CPU-s since launch), RSS {:.1} MiB, idle {:.3} CPU-s/min",
                round + 1,
                plan.rounds,
                p.startup_ms.values.last().unwrap_or(&0.0),
                waited.as_secs_f64(),
                before.as_secs_f64(),
                rss as f64 / 1024.0,
                p.idle_cpu_s_per_min.values.last().unwrap_or(&0.0)
            );
        }
        points.push((n, p));
    }
    drop(sleepers);
    println!();
    println!(
        "scale with containers (agent, defaults + --output + --metrics-addr), median [min..max] of {} rounds",
        plan.rounds
    );
    println!(
        "  {:>10} {:>24} {:>24} {:>24} {:>24} {:>26}",
        "containers",
        "start-up ms",
        "settled s (CPU-s)",
        "RSS MiB",
        "peak RSS MiB",
        "idle CPU s/min"
    );
    let mut list = Vec::new();
    for (n, p) in &points {
        println!(
            "  {n:>10} {:>24} {:>24} {:>24} {:>24} {:>26}",
            p.startup_ms.show(0),
            format!("{} ({})", p.settle_s.show(1), p.startup_cpu_s.show(2)),
            p.rss_mib.show(1),
            p.hwm_mib.show(1),
            p.idle_cpu_s_per_min.show(3)
        );
        list.push(json!({
            "containers": n,
            "startup_ms": p.startup_ms.json("ms, launch to \"tracing\""),
            "settle_s": p.settle_s.json("s, \"tracing\" to every live container quiet"),
            "startup_cpu_s": p.startup_cpu_s.json("CPU seconds, launch to settled"),
            "rss_mib": p.rss_mib.json("MiB (VmRSS after the idle period)"),
            "peak_rss_mib": p.hwm_mib.json("MiB (VmHWM)"),
            "idle_cpu_s_per_min": p.idle_cpu_s_per_min.json("CPU seconds per minute"),
            "idle_cpu_percent_of_core": {
                "median": p.idle_cpu_s_per_min.median() / 60.0 * 100.0,
            },
        }));
    }
    // Growth per container between consecutive counts, from the medians.
    let mut growth = Vec::new();
    for w in points.windows(2) {
        let ((n0, a), (n1, b)) = (&w[0], &w[1]);
        let dn = (*n1 - *n0) as f64;
        let per = |f: &dyn Fn(&Point) -> f64| (f(b) - f(a)) / dn;
        let g = json!({
            "from": n0, "to": n1,
            "rss_kib_per_container": per(&|p| p.rss_mib.median()) * 1024.0,
            "startup_ms_per_container": per(&|p| p.startup_ms.median()),
            "idle_cpu_ms_per_min_per_container": per(&|p| p.idle_cpu_s_per_min.median()) * 1e3,
        });
        println!(
            "  {n0} -> {n1}: {:.1} KiB RSS, {:.2} ms start-up, {:.2} ms idle CPU per minute, per container",
            g["rss_kib_per_container"].as_f64().unwrap_or(f64::NAN),
            g["startup_ms_per_container"].as_f64().unwrap_or(f64::NAN),
            g["idle_cpu_ms_per_min_per_container"].as_f64().unwrap_or(f64::NAN)
        );
        growth.push(g);
    }
    Ok(json!({
        "points": list,
        "growth": growth,
        "idle_seconds": plan.idle.as_secs_f64(),
        "method": format!(
            "busybox `sleep` containers (docker run -d --network none, {} at a time) created \
             before and removed after; per count and round the agent is started (--output, \
             --metrics-addr, journal on), start-up is launch to its \"tracing\" line, then it \
             settles: at least {} s, until its metrics find every live container quiet (at \
             most {} s; the CPU it used until then is startup_cpu_s), then its CPU time over {} s \
             of idling scaled to a minute, and VmRSS/VmHWM at the end.",
            plan.batch,
            SETTLE.as_secs(),
            SETTLE_MAX.as_secs(),
            plan.idle.as_secs()
        ),
    }))
}
