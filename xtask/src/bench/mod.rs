//! `cargo xtask bench`: what ctrace costs and how it scales, measured, written to
//! `target/bench/report.json`.
//!
//! Sections (`--sections`, all by default):
//! - `overhead`: a fork/exec storm and a signal storm with no tracer, under `ctrace watch`,
//!   `ctrace agent` and bpftrace, interleaved round by round; wall time and whole-machine CPU
//!   time (`/proc/stat`) as ratios to the untraced run of the same round.
//! - `bpf`: ns per run of each BPF program, from the kernel's run-time statistics.
//! - `pipeline`: the userspace pipeline alone on a recorded capture, records/s on one core
//!   (`cargo bench -p tracer --bench pipeline`).
//! - `latency`: kernel timestamp to NDJSON line, SIGKILLs and execs, idle and under a storm.
//! - `scale`: the agent with 0, 100 and 500 containers: RSS, idle CPU, start-up.
//! - `rate`: the highest loss-free record rate, and the loss at twice it.
//! - `journal`: bytes the agent writes and keeps on disk with idle containers and per
//!   incident, and a day's size against `--journal-max-size`.
//!
//! Every figure is reported as min, median and max over the rounds. Nothing here asserts a
//! time: a benchmark reports, the test suite checks behaviour.

mod bpf;
mod journal;
mod latency;
mod overhead;
mod rate;
mod scale;
mod stats;
mod tracer;
mod workload;

use std::{fs, path::PathBuf, process::Command, time::Duration};

use anyhow::{bail, Context, Result};
use procfs::Current as _;
use serde_json::{json, Value};

use crate::util::{self, say};

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Small workloads and short waits, to check the harness (figures are then rough).
    #[arg(long)]
    pub quick: bool,
    /// Sections to run, comma-separated: overhead, bpf, pipeline, latency, scale, rate,
    /// journal (default: all).
    #[arg(long, value_delimiter = ',')]
    pub sections: Vec<Section>,
    /// Rounds per figure (min, median and max are reported) [default: 5].
    #[arg(long)]
    pub rounds: Option<u32>,
    /// fork+exec per storm [default: 3000; quick: 1000].
    #[arg(long)]
    pub execs: Option<u32>,
    /// SIGTERMs per signal storm [default: 500000; quick: 100000].
    #[arg(long)]
    pub signals: Option<u32>,
    /// Container counts for `scale`, comma-separated [default: 0,100,500; quick: 0,20].
    #[arg(long, value_delimiter = ',')]
    pub containers: Vec<usize>,
    /// Seconds the agent idles per `scale` measurement [default: 60; quick: 5].
    #[arg(long)]
    pub idle_secs: Option<u64>,
    /// Seconds the agent idles for `journal` [default: 600; quick: 30].
    #[arg(long)]
    pub journal_secs: Option<u64>,
    /// Containers running for `journal` [default: 100; quick: 20].
    #[arg(long)]
    pub journal_containers: Option<usize>,
    /// Seconds per `rate` trial [default: 10; quick: 2].
    #[arg(long)]
    pub rate_secs: Option<f64>,
    /// The report to write (sections already in it and not run now are kept).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Use this ctrace binary instead of building the release one.
    #[arg(long)]
    pub ctrace: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    Overhead,
    Bpf,
    Pipeline,
    Latency,
    Scale,
    Rate,
    Journal,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Overhead,
        Section::Bpf,
        Section::Pipeline,
        Section::Latency,
        Section::Scale,
        Section::Rate,
        Section::Journal,
    ];

    fn key(self) -> &'static str {
        match self {
            Section::Overhead => "overhead",
            Section::Bpf => "bpf",
            Section::Pipeline => "pipeline",
            Section::Latency => "latency",
            Section::Scale => "scale",
            Section::Rate => "rate",
            Section::Journal => "journal",
        }
    }
}

/// The sizes of a run, from the options.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub rounds: u32,
    pub execs: u32,
    pub signals: u32,
    pub kills: u32,
    pub containers: Vec<usize>,
    /// `docker run`s at once.
    pub batch: usize,
    /// How long the agent idles per measurement.
    pub idle: Duration,
    pub rate_start: u64,
    pub rate_secs: f64,
    pub bisect: u32,
    /// Seconds of replay per round (pipeline).
    pub replay_secs: f64,
    /// How long the agent idles for the journal's figures.
    pub journal: Duration,
    pub journal_containers: usize,
}

impl Plan {
    fn new(args: &BenchArgs) -> Result<Self> {
        let q = args.quick;
        let plan = Self {
            quick: q,
            rounds: args.rounds.unwrap_or(5),
            execs: args.execs.unwrap_or(if q { 1000 } else { 3000 }),
            signals: args.signals.unwrap_or(if q { 100_000 } else { 500_000 }),
            kills: if q { 20 } else { 100 },
            containers: if args.containers.is_empty() {
                if q {
                    vec![0, 20]
                } else {
                    vec![0, 100, 500]
                }
            } else {
                args.containers.clone()
            },
            batch: 10,
            idle: Duration::from_secs(args.idle_secs.unwrap_or(if q { 5 } else { 60 }).max(1)),
            rate_start: 5_000,
            rate_secs: args
                .rate_secs
                .unwrap_or(if q { 2.0 } else { 10.0 })
                .max(0.5),
            bisect: if q { 2 } else { 4 },
            replay_secs: if q { 0.5 } else { 3.0 },
            journal: Duration::from_secs(
                args.journal_secs.unwrap_or(if q { 30 } else { 600 }).max(5),
            ),
            journal_containers: args.journal_containers.unwrap_or(if q { 20 } else { 100 }),
        };
        if plan.rounds == 0 || plan.execs == 0 || plan.signals == 0 {
            bail!("--rounds, --execs and --signals must be at least 1");
        }
        Ok(plan)
    }
}

pub fn bench(args: &BenchArgs) -> Result<()> {
    util::become_root("bench")?;
    let plan = Plan::new(args)?;
    let sections: Vec<Section> = if args.sections.is_empty() {
        Section::ALL.to_vec()
    } else {
        args.sections.clone()
    };
    let out = match &args.out {
        Some(p) => p.clone(),
        None => util::target_dir()?.join("bench/report.json"),
    };
    let needs_ctrace = sections.iter().any(|s| *s != Section::Pipeline);
    let bin = match (&args.ctrace, needs_ctrace) {
        (Some(b), _) => b.clone(),
        (None, true) => crate::build(true)?,
        (None, false) => PathBuf::new(),
    };
    let scratch = util::TempDir::new("ctrace-bench")?;
    let env = tracer::Env {
        bin: &bin,
        scratch: scratch.path(),
    };
    let mut report = fs::read_to_string(&out)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    say!(
        "bench: sections {}; {} rounds{}; report {}",
        sections
            .iter()
            .map(|s| s.key())
            .collect::<Vec<_>>()
            .join(","),
        plan.rounds,
        if plan.quick { " (quick)" } else { "" },
        out.display()
    );
    for section in sections {
        let machine = machine()?;
        let figures = match section {
            Section::Overhead => overhead::run(&plan, &env),
            Section::Bpf => overhead::bpf_costs(&plan, &env),
            Section::Pipeline => pipeline(&plan),
            Section::Latency => latency::run(&plan, &env),
            Section::Scale => scale::run(&plan, &env),
            Section::Rate => rate::run(&plan, &env),
            Section::Journal => journal::run(&plan, &env),
        }
        .with_context(|| format!("bench section {}", section.key()))?;
        report[section.key()] = json!({
            "machine": machine,
            "quick": plan.quick,
            "rounds": plan.rounds,
            "figures": figures,
        });
        // Written after each section: a long run interrupted keeps what it measured.
        write_report(&out, &report)?;
    }
    say!("bench: report written to {}", out.display());
    Ok(())
}

fn write_report(out: &std::path::Path, report: &Value) -> Result<()> {
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(report)?;
    fs::write(out, text + "\n").with_context(|| format!("writing {}", out.display()))
}

/// Where and when a section was measured: the figures mean little without it.
fn machine() -> Result<Value> {
    let load = procfs::LoadAverage::current().context("reading /proc/loadavg")?;
    let kernel = procfs::sys::kernel::Version::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.patch))
        .unwrap_or_default();
    let commit = util::capture(
        Command::new("git")
            .current_dir(util::workspace_root())
            .args(["rev-parse", "--short", "HEAD"]),
    )
    .map(|s| s.trim().to_owned())
    .unwrap_or_default();
    let dirty = util::capture(
        Command::new("git")
            .current_dir(util::workspace_root())
            .args(["status", "--porcelain", "--untracked-files=no"]),
    )
    .is_ok_and(|s| !s.trim().is_empty());
    Ok(json!({
        "at_unix_s": stats::real_ns() / 1_000_000_000,
        "kernel": kernel,
        "cpus": std::thread::available_parallelism().map(std::num::NonZero::get).unwrap_or(0),
        "loadavg_1m_at_start": load.one,
        "commit": commit,
        "worktree_dirty": dirty,
    }))
}

/// The pipeline alone: `cargo bench -p tracer --bench pipeline`, its JSON kept.
fn pipeline(plan: &Plan) -> Result<Value> {
    // tracer/build.rs builds the eBPF object too: bpf-linker and nightly must be there.
    crate::setup::setup()?;
    let json_out = util::target_dir()?.join("bench/pipeline.json");
    if let Some(dir) = json_out.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut cmd = util::cargo()?;
    cmd.args(["bench", "--package", "tracer", "--bench", "pipeline", "--"])
        .args(["--rounds", &plan.rounds.to_string()])
        .args(["--secs", &plan.replay_secs.to_string()])
        .arg("--json")
        .arg(&json_out);
    util::run(&mut cmd).context("the pipeline benchmark failed")?;
    let text =
        fs::read_to_string(&json_out).with_context(|| format!("reading {}", json_out.display()))?;
    let v: Value = serde_json::from_str(&text).context("the pipeline benchmark's JSON")?;
    println!();
    let f = |k: &str| {
        let x = &v[k];
        format!(
            "{:.0} [{:.0}..{:.0}]",
            x["median"].as_f64().unwrap_or(f64::NAN),
            x["min"].as_f64().unwrap_or(f64::NAN),
            x["max"].as_f64().unwrap_or(f64::NAN)
        )
    };
    println!(
        "pipeline alone, one core, replaying {}: {} records/s with NDJSON, {} without encoding",
        v["capture"].as_str().unwrap_or("?"),
        f("records_per_s"),
        f("records_per_s_no_encode")
    );
    Ok(v)
}
