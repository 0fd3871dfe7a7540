//! `ctrace top`: a live per-container table of CPU use against quota, throttling, run-queue
//! delay, memory against limit and OOM kills, refreshed in place on a terminal; `--json`
//! prints one snapshot (one object per container) and exits.

use std::{
    collections::HashMap,
    io::{self, IsTerminal as _},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};
use tracer_common::{kind, kind_bit};

use crate::{
    cgroupfs::Mounts,
    container::short_id,
    cpuwatch::{CpuWatch, Report},
    event::Body,
    explain::bytes,
    pipeline::Pipeline,
    probe::{Options, Probe},
    recorder,
    resolve::{self, Resolver},
    sink::{escape::terminal, json::line, LossTracker},
    throttle::{explain::format_cpus, DetectorConfig},
};

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Refresh interval (e.g. 1s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = super::parse_duration)]
    pub interval: Duration,
    /// Print one snapshot as NDJSON (one object per container) and exit.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many refreshes (default: until Ctrl-C on a terminal, 1 otherwise).
    #[arg(long, value_name = "N")]
    pub iterations: Option<u32>,
    /// Also scan this runc state root; repeatable.
    #[arg(long, value_name = "DIR")]
    pub runc_root: Vec<PathBuf>,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct TopRow {
    pub report: Report,
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    pub oom_kills: u64,
}

fn json_row(r: &TopRow) -> serde_json::Value {
    let c = &r.report.container;
    let s = r.report.stats;
    json!({
        "schema": crate::sink::json::SCHEMA,
        "type": "top",
        "container": crate::sink::json::container(&resolve::Attribution::Container(std::sync::Arc::clone(c))),
        "cpu_usage_cpus": s.and_then(|s| s.usage_cpus),
        "cpu_quota_cpus": s.and_then(|s| s.quota).map(|q| q.cpus()),
        "throttled_ratio": s.and_then(|s| s.throttled_ratio),
        "throttled_ns": s.map(|s| s.throttled_ns),
        "runqueue_p50_ns": r.report.runq.as_ref().and_then(|d| d.quantile_ns(0.5)),
        "runqueue_p99_ns": r.report.runq.as_ref().and_then(|d| d.quantile_ns(0.99)),
        "memory_usage_bytes": r.memory_usage,
        "memory_limit_bytes": r.memory_limit,
        "oom_kills": r.oom_kills,
    })
}

fn ms(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}us", ns / 1000)
    }
}

/// The table, widest columns first-fitted.
pub fn table(rows: &[TopRow], lost: u64) -> String {
    let head = [
        "NAME",
        "RUNTIME",
        "ID",
        "CPU",
        "QUOTA",
        "THROTTLED",
        "RUNQ p99",
        "MEMORY",
        "LIMIT",
        "OOM",
    ];
    let mut lines: Vec<[String; 10]> = vec![head.map(str::to_owned)];
    for r in rows {
        let c = &r.report.container;
        let s = r.report.stats;
        let dash = || "-".to_owned();
        lines.push([
            terminal(c.display()),
            c.runtime.to_string(),
            terminal(short_id(&c.id)),
            s.and_then(|s| s.usage_cpus).map_or_else(dash, format_cpus),
            s.and_then(|s| s.quota)
                .map_or_else(|| "none".into(), |q| format_cpus(q.cpus())),
            match s {
                None => dash(),
                Some(s) => s
                    .throttled_ratio
                    .map_or_else(|| "n/a".into(), |r| format!("{:.0}%", r * 100.0)),
            },
            r.report
                .runq
                .as_ref()
                .and_then(|d| d.quantile_ns(0.99))
                .map_or_else(dash, |ns| format!("<={}", ms(ns))),
            r.memory_usage.map_or_else(dash, bytes),
            r.memory_limit.map_or_else(|| "none".into(), bytes),
            r.oom_kills.to_string(),
        ]);
    }
    let mut out = super::render_columns(&lines);
    out.push_str(&format!("{} containers, {lost} events lost\n", rows.len()));
    out
}

pub fn run(args: &TopArgs) -> anyhow::Result<()> {
    if args.interval < Duration::from_millis(100) {
        anyhow::bail!("--interval must be at least 100ms");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(top(args))
}

async fn top(args: &TopArgs) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let opts = Options {
        kinds: kind_bit(kind::OOM_VICTIM)
            | kind_bit(kind::SIGNAL)
            | kind_bit(kind::CGROUP_MKDIR)
            | kind_bit(kind::CGROUP_RMDIR),
        signals: 1 << 9,
        runq: true,
        ..Options::default()
    };
    let mut probe = Probe::load(&opts)?;
    for w in &probe.warnings {
        eprintln!("ctrace: warning: {w}");
    }
    let mut ring = probe.take_ring()?;
    let mut resolver = Resolver::start(resolve::Config {
        extra_state_roots: args.runc_root.clone(),
        ..resolve::Config::default()
    });
    let mut pipeline = Pipeline::live();
    let mut cpu = CpuWatch::new(DetectorConfig::default());
    let mounts = Mounts::current();
    let mut ooms: HashMap<String, u64> = HashMap::new();
    let tty = io::stdout().is_terminal() && !args.json;
    // A snapshot needs two samples: the first one is the baseline.
    let iterations = args.iterations.unwrap_or(if tty { u32::MAX } else { 1 });
    let mut tick = tokio::time::interval(args.interval);
    tick.tick().await;
    let live = |resolver: &Resolver| -> Vec<_> {
        resolver
            .containers()
            .into_iter()
            .filter(|(_, _, gone)| !gone)
            .map(|(c, id, _)| (c, id))
            .collect()
    };
    cpu.tick(&live(&resolver), probe.runq().ok());
    let mut done = 0;
    while done < iterations {
        tokio::select! {
            _ = tick.tick() => {}
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
        while let Some(item) = ring.next() {
            if let Some(ev) = pipeline.ingest(&item) {
                let attrs = resolver.attribute(&ev);
                if let (Body::OomVictim(_), Some(resolve::Attribution::Container(c))) =
                    (&ev.body, &attrs.other)
                {
                    *ooms.entry(recorder::key(c)).or_default() += 1;
                }
            }
        }
        let runq = if probe.runq_active {
            probe.runq().ok()
        } else {
            None
        };
        let reports = cpu.tick(&live(&resolver), runq);
        let mut rows: Vec<TopRow> = reports
            .into_iter()
            .map(|report| {
                let mem = report
                    .container
                    .cgroup_path_for("memory")
                    .and_then(|p| mounts.memory(p))
                    .map(|m| m.read());
                TopRow {
                    oom_kills: ooms
                        .get(&recorder::key(&report.container))
                        .copied()
                        .unwrap_or(0),
                    memory_usage: mem.as_ref().and_then(|m| m.usage_bytes),
                    memory_limit: mem.as_ref().and_then(|m| m.limit_bytes),
                    report,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            let cpu = |r: &TopRow| r.report.stats.and_then(|s| s.usage_cpus).unwrap_or(0.0);
            cpu(b).total_cmp(&cpu(a)).then_with(|| {
                a.report
                    .container
                    .display()
                    .cmp(b.report.container.display())
            })
        });
        let lost = probe
            .counters()
            .map(|c| LossTracker::total(&c, pipeline.decode_errors))
            .unwrap_or(0);
        let text = if args.json {
            rows.iter()
                .map(|r| format!("{}\n", line(&json_row(r))))
                .collect::<String>()
        } else if tty {
            format!("\x1b[H\x1b[2J{}", table(&rows, lost))
        } else {
            table(&rows, lost)
        };
        super::print_stdout(&text)?;
        done += 1;
    }
    probe.detach();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc};

    use super::*;
    use crate::{
        container::Runtime,
        resolve::Container,
        throttle::{IntervalStats, Quota},
    };

    #[test]
    fn table_shows_no_data_and_no_quota_distinctly() {
        let c = Arc::new(Container {
            id: "a".repeat(64),
            name: Some("slow\u{1b}[2J".into()),
            runtime: Runtime::Docker,
            image: None,
            namespace: None,
            labels: BTreeMap::new(),
            pod: None,
            init_pid: Some(1),
            cgroup_path: None,
            cgroup_paths: BTreeMap::new(),
            gone: false,
        });
        let with = |stats| TopRow {
            report: Report {
                container: Arc::clone(&c),
                cgroup_id: None,
                event: None,
                stats,
                runq: None,
            },
            memory_usage: Some(100 << 20),
            memory_limit: None,
            oom_kills: 2,
        };
        let throttled = IntervalStats {
            duration: Duration::from_secs(1),
            throttled_ratio: Some(0.98),
            throttled_ns: 990_000_000,
            usage_cpus: Some(0.01),
            quota: Some(Quota {
                quota_us: 1000,
                period_us: 100_000,
            }),
        };
        let free = IntervalStats {
            throttled_ratio: None,
            quota: None,
            ..throttled
        };
        let t = table(&[with(Some(throttled)), with(Some(free)), with(None)], 3);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[1].contains("0.01") && lines[1].contains("98%"), "{t}");
        assert!(
            lines[2].contains("none") && lines[2].contains("n/a"),
            "no quota: {t}"
        );
        assert!(lines[3].contains(" - "), "no data yet: {t}");
        assert!(!t.contains('\u{1b}'), "names are escaped");
        assert!(t.ends_with("3 containers, 3 events lost\n"));
    }
}
