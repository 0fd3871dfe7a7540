//! `cargo xtask bench`: what tracing costs the traced, measured in one run, side by side.
//!
//! The workload is a fork/exec storm (a shell running `/bin/true` N times), the worst case for
//! a tracer that streams exec and exit records. Each configuration (no tracer, `ctrace watch`
//! printing NDJSON for every host process, `ctrace agent` writing its journal, and bpftrace
//! printing the same exec/exit facts when it is installed) runs the storm several times,
//! interleaved so that drift of the machine hits them alike; the medians are compared with the
//! untraced one as ratios. The tracer's own CPU time, peak RSS and delivered/lost records are
//! printed beside them.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::util::{self, say};

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Execs per storm.
    #[arg(long, default_value_t = 3000)]
    pub execs: u32,
    /// Storms per configuration (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
}

/// One way of running the storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    Baseline,
    Watch,
    Agent,
    Bpftrace,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::Baseline => "no tracer",
            Config::Watch => "ctrace watch --json --host",
            Config::Agent => "ctrace agent (journal)",
            Config::Bpftrace => "bpftrace printf exec/exit",
        }
    }
}

/// What one storm under one configuration measured.
#[derive(Debug, Clone, Default)]
struct Sample {
    storm: Duration,
    tracer_cpu: Duration,
    tracer_rss_kib: u64,
    /// `ctrace: N records delivered, M lost, ...` at exit.
    delivered: Option<u64>,
    lost: Option<u64>,
}

pub fn bench(args: &BenchArgs) -> Result<()> {
    util::become_root("bench")?;
    if args.execs == 0 || args.rounds == 0 {
        bail!("--execs and --rounds must be at least 1");
    }
    let bin = crate::build(true)?;
    let scratch = util::TempDir::new("ctrace-bench")?;
    let mut configs = vec![Config::Baseline, Config::Watch, Config::Agent];
    match util::which("bpftrace") {
        Some(_) => configs.push(Config::Bpftrace),
        None => say!("bench: bpftrace is not installed: comparing ctrace with no tracer only"),
    }
    say!(
        "bench: {} rounds of a storm of {} fork+exec of /bin/true under {} configurations",
        args.rounds,
        args.execs,
        configs.len()
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); configs.len()];
    for round in 1..=args.rounds {
        for (i, &c) in configs.iter().enumerate() {
            let s = run_once(c, &bin, scratch.path(), args.execs)
                .with_context(|| format!("round {round}, {}", c.name()))?;
            say!(
                "bench: round {round}/{}: {:<28} storm {:>6.3} s",
                args.rounds,
                c.name(),
                s.storm.as_secs_f64()
            );
            samples[i].push(s);
        }
    }
    println!();
    println!(
        "fork/exec storm: {} x /bin/true, median of {} rounds (same run, interleaved)",
        args.execs, args.rounds
    );
    println!(
        "{:<28} {:>9} {:>7} {:>11} {:>10} {:>10} {:>8}",
        "configuration", "storm s", "ratio", "tracer cpu", "tracer rss", "delivered", "lost"
    );
    let base = median(samples[0].iter().map(|s| s.storm.as_secs_f64()));
    for (c, s) in configs.iter().zip(&samples) {
        let storm = median(s.iter().map(|s| s.storm.as_secs_f64()));
        let cpu = median(s.iter().map(|s| s.tracer_cpu.as_secs_f64()));
        let rss = s.iter().map(|s| s.tracer_rss_kib).max().unwrap_or(0);
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let (delivered, lost) = s
            .last()
            .map_or((None, None), |last| (last.delivered, last.lost));
        let tracer = *c != Config::Baseline;
        println!(
            "{:<28} {:>9.3} {:>6.2}x {:>11} {:>10} {:>10} {:>8}",
            c.name(),
            storm,
            storm / base,
            if tracer {
                format!("{cpu:.3} s")
            } else {
                "-".to_owned()
            },
            if tracer {
                format!("{} MiB", rss.div_ceil(1024))
            } else {
                "-".to_owned()
            },
            opt(delivered),
            opt(lost),
        );
    }
    Ok(())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Start the tracer of `config` (none for the baseline), wait until it traces, run the storm,
/// stop the tracer and read what it used.
fn run_once(config: Config, bin: &Path, scratch: &Path, execs: u32) -> Result<Sample> {
    let tracer = match config {
        Config::Baseline => None,
        Config::Watch => Some(Tracer::start(
            Command::new(bin).args([
                "watch",
                "--json",
                "--host",
                "--no-journal",
                "--events",
                "exec,exit,signal",
            ]),
            "ctrace: tracing",
        )?),
        Config::Agent => {
            let journal = scratch.join("journal.db");
            Some(Tracer::start(
                Command::new(bin)
                    .args(["agent", "--journal"])
                    .arg(&journal)
                    .args(["--status-interval", "3600s"]),
                "ctrace agent: tracing",
            )?)
        }
        Config::Bpftrace => Some(Tracer::start(
            Command::new("bpftrace").args([
                "-e",
                "BEGIN { printf(\"ready\\n\"); } \
                 tracepoint:sched:sched_process_exec { printf(\"exec %d %s %s\\n\", pid, comm, str(args->filename)); } \
                 tracepoint:sched:sched_process_exit { printf(\"exit %d %s\\n\", pid, comm); }",
            ]),
            "ready",
        )?),
    };
    let cpu_before = tracer.as_ref().map(|t| cpu_time(t.pid())).transpose()?;
    let start = Instant::now();
    let st = Command::new("/bin/sh")
        .args([
            "-c",
            &format!("i=0; while [ $i -lt {execs} ]; do /bin/true; i=$((i+1)); done"),
        ])
        .status()
        .context("running the storm")?;
    let storm = start.elapsed();
    if !st.success() {
        bail!("the storm failed: {st}");
    }
    let mut sample = Sample {
        storm,
        ..Sample::default()
    };
    if let Some(t) = tracer {
        // Let the tracer read what the storm left in its buffer before it is measured.
        thread::sleep(Duration::from_millis(500));
        sample.tracer_cpu = cpu_time(t.pid())?.saturating_sub(cpu_before.unwrap_or_default());
        sample.tracer_rss_kib = peak_rss_kib(t.pid())?;
        let stderr = t.stop()?;
        if let Some((d, l)) = stderr.lines().find_map(parse_totals) {
            sample.delivered = Some(d);
            sample.lost = Some(l);
        }
    }
    Ok(sample)
}

/// `ctrace: N records delivered, M lost, K produced by the kernel`.
fn parse_totals(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("ctrace: ")?;
    let (delivered, rest) = rest.split_once(" records delivered, ")?;
    let (lost, _) = rest.split_once(" lost")?;
    Some((delivered.parse().ok()?, lost.parse().ok()?))
}

/// A process of the benchmark, through procfs.
fn process(pid: u32) -> Result<procfs::process::Process> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    procfs::process::Process::new(pid).with_context(|| format!("reading /proc/{pid}"))
}

/// utime + stime of a process, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = process(pid)?
        .stat()
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let hz = procfs::ticks_per_second().max(1);
    let total = stat.utime + stat.stime;
    Ok(Duration::from_millis(total * 1000 / hz))
}

/// VmHWM of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    process(pid)?
        .status()
        .with_context(|| format!("reading /proc/{pid}/status"))?
        .vmhwm
        .context("no VmHWM in /proc/PID/status")
}

/// A tracer running beside the storm: stdout thrown away as it comes, stderr kept.
struct Tracer {
    child: Child,
    stderr: thread::JoinHandle<String>,
}

impl Tracer {
    fn start(cmd: &mut Command, ready: &'static str) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", util::show(cmd)))?;
        let (tx, rx) = mpsc::channel();
        // Both streams are read to the end, so a full pipe never slows the tracer down; the
        // ready line comes on stdout (bpftrace) or stderr (ctrace).
        let out = child.stdout.take().context("piped stdout")?;
        let tx_out = tx.clone();
        thread::spawn(move || {
            let mut first = true;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if first && line.starts_with(ready) {
                    let _ = tx_out.send(());
                    first = false;
                }
            }
        });
        let err = child.stderr.take().context("piped stderr")?;
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if line.starts_with(ready) {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut t = Self { child, stderr };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = t.child.kill();
            let _ = t.child.wait();
            let err = t.stderr.join().unwrap_or_default();
            bail!("the tracer did not start within 60 s; stderr:\n{err}");
        }
        Ok(t)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT, wait, return stderr.
    fn stop(mut self) -> Result<String> {
        let st = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .context("kill -INT")?;
        if !st.success() {
            bail!("could not signal the tracer");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait()? {
                let err = self.stderr.join().unwrap_or_default();
                if !st.success() {
                    bail!("the tracer exited with {st}; stderr:\n{err}");
                }
                return Ok(err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the tracer did not exit within 30 s of SIGINT");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_line() {
        assert_eq!(
            parse_totals("ctrace: 6000 records delivered, 12 lost, 6012 produced by the kernel"),
            Some((6000, 12))
        );
        assert_eq!(parse_totals("ctrace: tracing exec"), None);
    }

    #[test]
    fn own_cpu_time_and_rss() {
        let me = std::process::id();
        assert!(cpu_time(me).is_ok());
        assert!(peak_rss_kib(me).unwrap() > 0);
        assert!((median([3.0, 1.0, 2.0].into_iter()) - 2.0).abs() < 1e-9);
    }
}
