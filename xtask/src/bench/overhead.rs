//! Overhead: what tracing costs a fork/exec storm and a signal storm, under each tracer, in
//! one interleaved run; and what each BPF program costs per run, from the kernel's own stats.

use std::{collections::BTreeMap, thread, time::Duration};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::{
    bpf,
    stats::{self, Figure},
    tracer::{self, Config, Env, Output},
    workload, Plan,
};
use crate::util::say;

/// After a storm, what is measured still runs this long: a tracer drains its ring buffer after
/// the storm ends, and that CPU time is its cost too. The same for every configuration.
const TAIL: Duration = Duration::from_millis(500);
/// Between a tracer saying it traces and the storm.
const SETTLE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Storm {
    Exec,
    Signal,
}

impl Storm {
    pub fn key(self) -> &'static str {
        match self {
            Storm::Exec => "exec_storm",
            Storm::Signal => "signal_storm",
        }
    }

    fn run(self, plan: &Plan) -> Result<workload::Ran> {
        match self {
            Storm::Exec => workload::exec_storm(plan.execs),
            Storm::Signal => workload::signal_storm(plan.signals),
        }
    }

    fn size(self, plan: &Plan) -> u32 {
        match self {
            Storm::Exec => plan.execs,
            Storm::Signal => plan.signals,
        }
    }
}

const STORMS: [Storm; 2] = [Storm::Exec, Storm::Signal];

/// One storm measured once.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    wall: f64,
    /// Whole-machine busy CPU seconds over the storm and [`TAIL`].
    machine_cpu: f64,
    /// The tracer's own CPU seconds over the same span.
    tracer_cpu: f64,
    /// The storm's own processes' CPU seconds (the programs run in their context).
    workload_cpu: f64,
}

/// What one configuration measured over the rounds.
#[derive(Default)]
struct Series {
    samples: BTreeMap<Storm, Vec<Sample>>,
    rss_kib: Figure,
    startup_ms: Figure,
    delivered: Figure,
    lost: Figure,
    metrics_bytes: Figure,
    output_bytes: Figure,
}

/// GET /metrics: the size of the answer.
fn scrape(addr: &str) -> Result<usize> {
    Ok(tracer::metrics_text(addr)?.len())
}

/// Runs both storms under every configuration, interleaved round by round (the order rotates
/// each round so that no configuration always follows another), and reports per-round ratios to
/// the untraced run of the same round.
pub fn run(plan: &Plan, env: &Env<'_>) -> Result<Value> {
    let mut configs = vec![
        Config::Baseline,
        Config::Watch,
        Config::WatchUnfolded,
        Config::Agent,
        Config::Floor,
    ];
    if crate::util::which("bpftrace").is_some() {
        configs.push(Config::Bpftrace);
    } else {
        say!("bench: bpftrace is not installed (apt-get install bpftrace): no bpftrace column");
    }
    say!(
        "bench: overhead: {} rounds of {} fork+exec and {} SIGTERMs under {} configurations",
        plan.rounds,
        plan.execs,
        plan.signals,
        configs.len()
    );
    let mut series: BTreeMap<&str, Series> = BTreeMap::new();
    for round in 0..plan.rounds {
        for k in 0..configs.len() {
            let config = configs[(k + round as usize) % configs.len()];
            let s = series.entry(config.key()).or_default();
            run_config(config, plan, env, s)
                .with_context(|| format!("round {}, {}", round + 1, config.describe()))?;
            let last = |storm| s.samples[&storm].last().copied().unwrap_or_default();
            say!(
                "bench: round {}/{}: {:<9} exec storm {:>6.3} s ({:.2} cpu-s), signal storm {:>6.3} s ({:.2} cpu-s)",
                round + 1,
                plan.rounds,
                config.key(),
                last(Storm::Exec).wall,
                last(Storm::Exec).machine_cpu,
                last(Storm::Signal).wall,
                last(Storm::Signal).machine_cpu,
            );
        }
    }
    Ok(report(plan, &configs, &series))
}

fn run_config(config: Config, plan: &Plan, env: &Env<'_>, s: &mut Series) -> Result<()> {
    let tracer = tracer::start(config, env, Output::Discard, &[])?;
    if let Some(t) = &tracer {
        s.startup_ms.push(t.startup.as_secs_f64() * 1e3);
    }
    for storm in STORMS {
        thread::sleep(SETTLE);
        let tracer_before = tracer
            .as_ref()
            .map(|t| stats::cpu_time(t.pid()))
            .transpose()?;
        let busy_before = stats::machine_busy_secs()?;
        let ran = storm.run(plan)?;
        thread::sleep(TAIL);
        let machine_cpu = stats::machine_busy_secs()? - busy_before;
        let tracer_cpu = match (&tracer, tracer_before) {
            (Some(t), Some(before)) => stats::cpu_time(t.pid())?
                .saturating_sub(before)
                .as_secs_f64(),
            _ => 0.0,
        };
        s.samples.entry(storm).or_default().push(Sample {
            wall: ran.wall.as_secs_f64(),
            machine_cpu,
            tracer_cpu,
            workload_cpu: ran.cpu_s,
        });
    }
    if let Some(t) = tracer {
        if let Some(addr) = &t.metrics_addr {
            // One scrape, as Prometheus would make: the endpoint must answer under load.
            s.metrics_bytes.push(scrape(addr)? as f64);
        }
        if let Some(f) = &t.output_file {
            s.output_bytes
                .push(std::fs::metadata(f).map_or(0, |m| m.len()) as f64);
        }
        s.rss_kib.push(stats::rss_kib(t.pid())?.1 as f64);
        let stderr = t.stop()?;
        if let Some((d, l)) = tracer::parse_totals(&stderr) {
            s.delivered.push(d as f64);
            s.lost.push(l as f64);
        }
    }
    Ok(())
}

fn report(plan: &Plan, configs: &[Config], series: &BTreeMap<&str, Series>) -> Value {
    let base = &series[Config::Baseline.key()];
    let mut out = serde_json::Map::new();
    println!();
    println!(
        "overhead: median [min..max] of {} interleaved rounds; ratios to the untraced run of the same round",
        plan.rounds
    );
    for storm in STORMS {
        let n = storm.size(plan);
        println!(
            "{} ({n} {}):",
            storm.key(),
            if storm == Storm::Exec {
                "fork+exec of /bin/true"
            } else {
                "SIGTERMs to a process that ignores them"
            }
        );
        println!(
            "  {:<14} {:>24} {:>24} {:>24} {:>24} {:>22}",
            "config",
            "wall ratio",
            "machine cpu ratio",
            "workload cpu ratio",
            "tracer cpu s",
            "extra cpu us/event"
        );
        let base_samples = &base.samples[&storm];
        let mut per_storm = serde_json::Map::new();
        for &c in configs {
            let s = &series[c.key()];
            let samples = &s.samples[&storm];
            let (mut wall, mut cpu, mut wall_ratio, mut cpu_ratio, mut tracer_cpu, mut extra) = (
                Figure::default(),
                Figure::default(),
                Figure::default(),
                Figure::default(),
                Figure::default(),
                Figure::default(),
            );
            let (mut workload_cpu, mut workload_ratio) = (Figure::default(), Figure::default());
            for (x, b) in samples.iter().zip(base_samples) {
                workload_cpu.push(x.workload_cpu);
                workload_ratio.push(x.workload_cpu / b.workload_cpu);
                wall.push(x.wall);
                cpu.push(x.machine_cpu);
                wall_ratio.push(x.wall / b.wall);
                cpu_ratio.push(x.machine_cpu / b.machine_cpu);
                tracer_cpu.push(x.tracer_cpu);
                extra.push((x.machine_cpu - b.machine_cpu) / f64::from(n) * 1e6);
            }
            println!(
                "  {:<14} {:>24} {:>24} {:>24} {:>24} {:>22}",
                c.key(),
                wall_ratio.show(3),
                cpu_ratio.show(3),
                workload_ratio.show(3),
                if c == Config::Baseline {
                    "-".to_owned()
                } else {
                    tracer_cpu.show(3)
                },
                if c == Config::Baseline {
                    "-".to_owned()
                } else {
                    extra.show(2)
                },
            );
            per_storm.insert(
                c.key().to_owned(),
                json!({
                    "wall_s": wall.json("s"),
                    "machine_cpu_s": cpu.json("s"),
                    "wall_ratio": wall_ratio.json("x baseline"),
                    "machine_cpu_ratio": cpu_ratio.json("x baseline"),
                    "workload_cpu_s": workload_cpu.json("s"),
                    "workload_cpu_ratio": workload_ratio.json("x baseline"),
                    "tracer_cpu_s": tracer_cpu.json("s"),
                    "extra_machine_cpu_us_per_event": extra.json("us"),
                }),
            );
        }
        out.insert(
            storm.key().to_owned(),
            json!({ "events": n, "configs": per_storm }),
        );
    }
    let mut tracers = serde_json::Map::new();
    for &c in configs.iter().filter(|&&c| c != Config::Baseline) {
        let s = &series[c.key()];
        println!(
            "  {:<14} startup {} ms, peak RSS {} KiB, delivered {}, lost {}",
            c.key(),
            s.startup_ms.show(0),
            s.rss_kib.show(0),
            s.delivered.show(0),
            s.lost.show(0)
        );
        tracers.insert(
            c.key().to_owned(),
            json!({
                "describe": c.describe(),
                "startup_ms": s.startup_ms.json("ms"),
                "peak_rss_kib": s.rss_kib.json("KiB"),
                "records_delivered": s.delivered.json("records (both storms)"),
                "records_lost": s.lost.json("records (both storms)"),
                "output_bytes": s.output_bytes.json("bytes written to --output or -o (both storms)"),
                "metrics_scrape_bytes": s.metrics_bytes.json("bytes"),
            }),
        );
    }
    out.insert("tracers".to_owned(), Value::Object(tracers));
    out.insert(
        "method".to_owned(),
        json!(format!(
            "{} rounds; each round runs every configuration once, in an order rotated per round; \
             a configuration starts its tracer, waits {} ms, runs the exec storm, waits, runs the \
             signal storm, stops the tracer. Wall time is the storm's; machine CPU is the busy \
             time of /proc/stat over the storm and {} ms after it.",
            plan.rounds,
            SETTLE.as_millis(),
            TAIL.as_millis()
        )),
    );
    Value::Object(out)
}

/// One configuration's whole cost on one storm, per round (see `bpf_costs`).
#[derive(Default)]
struct Totals {
    bpf_us: Figure,
    tracer_us: Figure,
    ratio: Figure,
}

impl Totals {
    fn push(&mut self, bpf_s: f64, tracer_cpu_s: f64, storm_cpu_s: f64, events: u32) {
        let per_event = 1e6 / f64::from(events.max(1));
        self.bpf_us.push(bpf_s * per_event);
        self.tracer_us.push(tracer_cpu_s * per_event);
        let untraced = storm_cpu_s - bpf_s;
        if untraced > 0.0 {
            self.ratio.push((storm_cpu_s + tracer_cpu_s) / untraced);
        }
    }
}

/// Per BPF program: run count and ns per run over each storm, with the kernel's run-time
/// statistics on only while a storm runs. Under ctrace (`watch`, defaults; and with no signal
/// folded) and bpftrace.
pub fn bpf_costs(plan: &Plan, env: &Env<'_>) -> Result<Value> {
    let mut configs = vec![
        Config::Watch,
        Config::WatchUnfolded,
        Config::Floor,
        Config::Empty,
    ];
    if crate::util::which("bpftrace").is_some() {
        configs.push(Config::Bpftrace);
    }
    say!("bench: bpf: per-program cost, {} rounds", plan.rounds);
    // (config, storm, program) -> (ns per run, runs per event)
    let mut figures: BTreeMap<(&str, Storm, String), (Figure, Figure)> = BTreeMap::new();
    // (config, storm) -> the whole tracer's cost in the same run (see `Totals`)
    let mut totals: BTreeMap<(&str, Storm), Totals> = BTreeMap::new();
    for round in 0..plan.rounds {
        for &config in &configs {
            let before_start = bpf::programs()?;
            let tracer =
                tracer::start(config, env, Output::Discard, &[])?.context("a tracer is needed")?;
            let after_start = bpf::programs()?;
            // The tracer's programs: those that appeared while it started.
            let ids: Vec<u64> = after_start
                .keys()
                .filter(|id| !before_start.contains_key(id))
                .copied()
                .collect();
            for storm in STORMS {
                thread::sleep(SETTLE);
                let on = bpf::enable()?;
                let before = bpf::programs()?;
                let tracer_before = stats::cpu_time(tracer.pid())?;
                let ran = storm.run(plan)?;
                let after = bpf::programs()?;
                drop(on);
                thread::sleep(TAIL);
                let tracer_cpu = stats::cpu_time(tracer.pid())?
                    .saturating_sub(tracer_before)
                    .as_secs_f64();
                let deltas = bpf::delta(&ids, &before, &after);
                let bpf_s = deltas.iter().map(|d| d.2).sum::<u64>() as f64 / 1e9;
                totals.entry((config.key(), storm)).or_default().push(
                    bpf_s,
                    tracer_cpu,
                    ran.cpu_s,
                    storm.size(plan),
                );
                for (name, runs, ns) in deltas {
                    let f = figures.entry((config.key(), storm, name)).or_default();
                    if runs > 0 {
                        f.0.push(ns as f64 / runs as f64);
                    }
                    f.1.push(runs as f64 / f64::from(storm.size(plan)));
                }
            }
            tracer.stop()?;
        }
        say!("bench: bpf: round {}/{} done", round + 1, plan.rounds);
    }
    println!();
    println!("BPF programs: ns per run and runs per storm event, median [min..max]");
    let mut out = serde_json::Map::new();
    for ((config, storm, name), (ns, runs)) in &figures {
        if runs.median() == 0.0 {
            continue;
        }
        println!(
            "  {config:<9} {:<13} {name:<20} {:>26} ns/run {:>22} runs/event",
            storm.key(),
            ns.show(0),
            runs.show(2)
        );
        let c = out.entry((*config).to_owned()).or_insert_with(|| json!({}));
        c.as_object_mut()
            .map(|c| c.entry(storm.key()).or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
            .map(|s| {
                s.insert(
                    name.clone(),
                    json!({
                        "ns_per_run": ns.json("ns"),
                        "runs_per_event": runs.json("runs"),
                    }),
                )
            });
    }
    println!();
    println!(
        "The whole tracer per storm event, same runs, median [min..max]: its programs' time \
         (in the storm's own tasks), its process's CPU, and the CPU ratio they imply"
    );
    for ((config, storm), t) in &totals {
        println!(
            "  {config:<9} {:<13} bpf {:>22} us/event   process {:>22} us/event   \
             est. cpu ratio {:>24}",
            storm.key(),
            t.bpf_us.show(2),
            t.tracer_us.show(2),
            t.ratio.show(4)
        );
        if let Some(s) = out
            .get_mut(*config)
            .and_then(Value::as_object_mut)
            .and_then(|c| c.get_mut(storm.key()))
            .and_then(Value::as_object_mut)
        {
            s.insert(
                "total".to_owned(),
                json!({
                    "bpf_us_per_event": t.bpf_us.json("us"),
                    "tracer_cpu_us_per_event": t.tracer_us.json("us"),
                    "estimated_cpu_ratio": t.ratio.json("ratio"),
                }),
            );
        }
    }
    out.insert(
        "method".to_owned(),
        json!(
            "BPF run-time statistics (bpf(BPF_ENABLE_STATS), the switch behind \
             kernel.bpf_stats_enabled) on only while a storm runs; run_time_ns and run_cnt \
             of each program the tracer loaded, from `bpftool prog show --json`, before and \
             after the storm. The statistics add a clock read to each run: these runs are not \
             the ones the overhead section times. `total`: per storm event, the sum of all the \
             tracer's programs' run time, the tracer process's CPU over the storm and the \
             500 ms after it, and the CPU ratio they imply, (storm CPU + tracer CPU) / (storm \
             CPU - BPF time), where the storm's CPU is its own tasks' (the programs run in \
             them): a same-run estimate that leaves out what the statistics cannot see (the \
             tracepoint's own dispatch, caches the programs evict)."
        ),
    );
    Ok(Value::Object(out))
}
