//! `ctrace top`: a live per-container table of CPU use against quota, throttling, run-queue
//! delay, memory against limit and OOM kills, refreshed in place on a terminal; `--json`
//! prints one snapshot (one object per container) and exits.
//!
//! Every figure keeps "no data" (`-` in the table, `null` in JSON) apart from zero and from
//! "no limit" (`none` in the table).

use std::{
    collections::{HashMap, VecDeque},
    io::{self, IsTerminal as _},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::mpsc,
};
use tracer_common::{kind, kind_bit};

use tracer::{
    cgroup::{Limit, MemoryDir, Mounts},
    container::{short_id, Runtime},
    cpuwatch::Report,
    event::{Body, Event},
    explain::Incident,
    probe::{Options, Probe},
    recorder,
    resolve::{self, Attrs, Container, Update},
    select::Selector,
    session::{self, Control, CpuTick, Next, Session, Sink},
    sink::{
        escape::terminal,
        filter::{self, Filter},
        json::line,
        Context, Loss,
    },
    throttle::ThrottleEvent,
    units::{bytes, format_cpus, ms_or_us},
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
    /// Only this container: name, id or id prefix (3+ characters), pod name, `NAMESPACE/NAME`
    /// or `RUNTIME/ID`; every container it matches; repeatable (as `watch --container`).
    #[arg(long, value_name = "NAME|ID", value_parser = Selector::parse)]
    pub container: Vec<Selector>,
    /// Only containers of this runtime (docker, containerd, runc, crio, podman); repeatable.
    #[arg(long, value_name = "RUNTIME", value_parser = filter::parse_runtime)]
    pub runtime: Vec<Runtime>,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct TopRow {
    /// CPU figures; `stats: None` until two samples were read (or when they cannot be).
    pub report: Report,
    pub memory_usage: Option<u64>,
    /// `None`: not known (unlike [`Limit::Unlimited`]). The lowest limit from the container's
    /// cgroup up: a pod's or a parent's when lower than its own.
    pub memory_limit: Option<Limit>,
    /// How many cgroup levels above the container's that limit is set (0: its own).
    pub memory_limit_depth: u32,
    /// `None`: neither the cgroup's counter nor OOM events are available.
    pub oom_kills: Option<OomKills>,
    /// Memory usage at each refresh of the last minute, oldest first.
    pub memory_trend: Vec<u64>,
}

/// Characters of the last minute's memory sparkline.
const TREND_CHARS: usize = 20;
/// The memory trend covers this long.
const TREND_SPAN: Duration = Duration::from_secs(60);

/// `▁▂▄▆█` of the last minute's memory usage, scaled to the limit when it is known and not
/// exceeded, else to the highest usage; `-` with no sample yet.
pub fn trend(r: &TopRow) -> String {
    let max = r.memory_trend.iter().copied().max().unwrap_or(0);
    if r.memory_trend.is_empty() {
        return "-".to_owned();
    }
    let top = match r.memory_limit {
        Some(Limit::Bytes(l)) if l >= max => l,
        _ => max,
    };
    tracer::chart::sparkline(
        &tracer::chart::downsample(&r.memory_trend, TREND_CHARS),
        top,
    )
}

/// Where an OOM kill count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomSource {
    /// The cgroup's own counter: every kill since the container's cgroup was created.
    Cgroup,
    /// OOM events seen since `top` started (the kernel has no counter to read).
    Events,
}

impl OomSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cgroup => "cgroup",
            Self::Events => "events",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OomKills {
    pub count: u64,
    pub source: OomSource,
}

/// The cgroup's counter when it could be read, else the events seen (`None` when the OOM
/// tracepoint is not attached: no data, not zero).
pub fn oom_kills(cgroup: Option<u64>, seen: Option<u64>) -> Option<OomKills> {
    cgroup
        .map(|count| OomKills {
            count,
            source: OomSource::Cgroup,
        })
        .or_else(|| {
            seen.map(|count| OomKills {
                count,
                source: OomSource::Events,
            })
        })
}

/// What a row shows of a container's memory cgroup; all `None` without one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryFigures {
    pub usage: Option<u64>,
    pub limit: Option<Limit>,
    /// The cgroup's OOM kill counter (v1 `memory.oom_control`, v2 `memory.events`).
    pub oom_kills: Option<u64>,
}

pub fn memory_figures(dir: Option<&MemoryDir>) -> MemoryFigures {
    let Some(dir) = dir else {
        return MemoryFigures::default();
    };
    let m = dir.read();
    MemoryFigures {
        usage: m.usage_bytes,
        limit: dir.read_limit(),
        oom_kills: m.oom_kills,
    }
}

/// One NDJSON object of `top --json`; `lost`: events lost since `top` started (not per
/// container: the kernel counts losses per kind).
pub fn json_row(r: &TopRow, lost: u64) -> serde_json::Value {
    let c = &r.report.container;
    let s = r.report.stats;
    json!({
        "schema": tracer::sink::json::SCHEMA,
        "type": "top",
        "container": tracer::sink::json::container(&resolve::Attribution::Container(std::sync::Arc::clone(c))),
        "interval_ns": s.map(|s| u64::try_from(s.duration.as_nanos()).unwrap_or(u64::MAX)),
        "cpu_usage_cpus": s.and_then(|s| s.usage_cpus),
        "cpu_quota_cpus": s.and_then(|s| s.quota).map(|q| q.cpus()),
        "cpu_quota_set": s.map(|s| s.quota.is_some()),
        "throttled_ratio": s.and_then(|s| s.throttled_ratio),
        "throttled_ns": s.map(|s| s.throttled_ns),
        "runqueue_p50_ns": r.report.runq.as_ref().and_then(|d| d.quantile_ns(0.5)),
        "runqueue_p99_ns": r.report.runq.as_ref().and_then(|d| d.quantile_ns(0.99)),
        "memory_usage_bytes": r.memory_usage,
        "memory_limit_bytes": r.memory_limit.and_then(Limit::bytes),
        "memory_limit_set": r.memory_limit.map(|l| l != Limit::Unlimited),
        "memory_limit_depth": matches!(r.memory_limit, Some(Limit::Bytes(_))).then_some(r.memory_limit_depth),
        "oom_kills": r.oom_kills.map(|o| o.count),
        "oom_kills_source": r.oom_kills.map(|o| o.source.as_str()),
        "lost": lost,
    })
}

/// The table's columns.
const HEAD: [&str; 11] = [
    "NAME",
    "RUNTIME",
    "ID",
    "CPU",
    "QUOTA",
    "THROTTLED",
    "RUNQ p99",
    "MEMORY",
    "LIMIT",
    "LAST MINUTE",
    "OOM KILLS",
];

/// The table, widest columns first-fitted.
pub fn table(rows: &[TopRow], lost: u64) -> String {
    let mut lines: Vec<[String; 11]> = vec![HEAD.map(str::to_owned)];
    for r in rows {
        let c = &r.report.container;
        let s = r.report.stats;
        let dash = || "-".to_owned();
        lines.push([
            terminal(c.display()),
            c.runtime.to_string(),
            terminal(short_id(&c.id)),
            s.and_then(|s| s.usage_cpus).map_or_else(dash, format_cpus),
            match s {
                None => dash(),
                Some(s) => s
                    .quota
                    .map_or_else(|| "none".into(), |q| format_cpus(q.cpus())),
            },
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
                .map_or_else(dash, |ns| format!("<={}", ms_or_us(ns))),
            r.memory_usage.map_or_else(dash, bytes),
            match (r.memory_limit, r.memory_limit_depth) {
                (None, _) => dash(),
                (Some(Limit::Unlimited), _) => "none".into(),
                (Some(Limit::Bytes(b)), 0) => bytes(b),
                (Some(Limit::Bytes(b)), 1) => format!("{} (parent)", bytes(b)),
                (Some(Limit::Bytes(b)), n) => format!("{} ({n} up)", bytes(b)),
            },
            trend(r),
            r.oom_kills.map_or_else(dash, |o| o.count.to_string()),
        ]);
    }
    let mut out = super::render_columns(&lines);
    let noun = if rows.len() == 1 {
        "container"
    } else {
        "containers"
    };
    out.push_str(&format!("{} {noun}, {lost} events lost\n", rows.len()));
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
    Probe::check_privileges()?;
    let config = session::Config {
        probe: Options {
            kinds: session::kernel_kinds(kind_bit(kind::OOM_VICTIM)),
            signals: 1 << 9,
            runq: true,
            ..Options::default()
        },
        resolver: resolve::Config {
            extra_state_roots: args.runc_root.clone(),
            ..resolve::Config::default()
        },
        docker_socket: None,
        throttle_interval: args.interval,
        ..session::Config::default()
    };
    let mut session = Session::start(config, None).await?;
    for w in session.take_warnings() {
        eprintln!("ctrace: warning: {}", terminal(&w));
    }
    let tty = io::stdout().is_terminal() && !args.json;
    let mut table = Table {
        filter: Filter {
            containers: args.container.clone(),
            runtimes: args.runtime.clone(),
            include_host: false,
        },
        // Without the OOM tracepoint, a container with no readable counter has no OOM figure.
        oom_events: session.active_kinds() & kind_bit(kind::OOM_VICTIM) != 0,
        ooms: HashMap::new(),
        mounts: Mounts::current(),
        json: args.json,
        tty,
        // A snapshot needs two samples: the first one is the baseline.
        baseline: true,
        left: args.iterations.unwrap_or(if tty { u32::MAX } else { 1 }),
        done: None,
        trends: HashMap::new(),
        trend_len: trend_len(args.interval),
    };
    let (control, controls) = mpsc::channel(1);
    tokio::spawn(async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        let _ = control.send(Control::Stop).await;
    });
    session
        .run(&mut table, controls)
        .await
        .context("waiting on the ring buffer")?;
    table.done.unwrap_or(Ok(()))
}

/// `top` as a session's sink: OOM kills counted per container from the records, a table (or
/// NDJSON rows) printed at each CPU sampling.
struct Table {
    /// Which containers have rows (`--container`, `--runtime`).
    filter: Filter,
    oom_events: bool,
    ooms: HashMap<String, u64>,
    mounts: Mounts,
    json: bool,
    tty: bool,
    /// The next CPU sampling is the baseline (nothing to print yet).
    baseline: bool,
    /// Snapshots still to print.
    left: u32,
    /// Set when printing failed, or `Ok` once every snapshot was printed.
    done: Option<anyhow::Result<()>>,
    /// Memory usage of each container at the last refreshes (the last minute's).
    trends: HashMap<String, VecDeque<u64>>,
    /// Refreshes in a minute.
    trend_len: usize,
}

impl Sink for Table {
    fn event(&mut self, ev: &Event, attrs: &Attrs, _: &Context) {
        if let (Body::OomVictim(_), Some(resolve::Attribution::Container(c))) =
            (&ev.body, &attrs.other)
        {
            *self.ooms.entry(recorder::key(c)).or_default() += 1;
        }
    }
    fn incident(&mut self, _: &Incident, _: &Context) {}
    fn throttle(&mut self, _: &Arc<Container>, _: &ThrottleEvent, _: u64, _: &Context) {}
    fn update(&mut self, _: &Update, _: &Context) {}
    fn loss(&mut self, _: &Loss, _: u64, _: &Context) {}
    fn warning(&mut self, w: &str) {
        eprintln!("ctrace: warning: {}", terminal(w));
    }

    fn cpu_figures_every_tick(&self) -> bool {
        true
    }

    fn cpu(&mut self, tick: &CpuTick<'_>) {
        if std::mem::take(&mut self.baseline) || self.done.is_some() {
            return;
        }
        let rows = self.rows(tick);
        let lost = tick.lost.unwrap_or(0);
        let text = if self.json {
            rows.iter()
                .map(|r| format!("{}\n", line(&json_row(r, lost))))
                .collect::<String>()
        } else if self.tty {
            format!("\x1b[H\x1b[2J{}", table(&rows, lost))
        } else {
            table(&rows, lost)
        };
        if let Err(e) = super::print_stdout(&text) {
            self.done = Some(Err(e));
            return;
        }
        self.left = self.left.saturating_sub(1);
        if self.left == 0 {
            self.done = Some(Ok(()));
        }
    }

    fn flush(&mut self) -> Next {
        if self.done.is_some() {
            Next::Stop
        } else {
            Next::Continue
        }
    }
}

/// Refreshes every `interval` in [`TREND_SPAN`] (at least 2).
fn trend_len(interval: Duration) -> usize {
    let n = TREND_SPAN.as_nanos() / interval.as_nanos().max(1);
    usize::try_from(n).unwrap_or(usize::MAX).clamp(2, 600)
}

impl Table {
    /// The rows of one sampling, highest CPU use first.
    fn rows(&mut self, tick: &CpuTick<'_>) -> Vec<TopRow> {
        let mut reports = tick.reports.to_vec();
        // A container whose CPU counters cannot be read still has a row, of "no data".
        for (c, cgroup_id) in tick.live {
            let key = recorder::key(c);
            if !reports.iter().any(|r| recorder::key(&r.container) == key) {
                reports.push(Report {
                    container: Arc::clone(c),
                    cgroup_id: *cgroup_id,
                    event: None,
                    stats: None,
                    runq: None,
                    sample: None,
                });
            }
        }
        reports.retain(|r| self.filter.container(&r.container));
        let mut rows: Vec<TopRow> = reports
            .into_iter()
            .map(|report| {
                let path = report.container.cgroup_path_for("memory");
                let dir = path.and_then(|p| self.mounts.memory(p));
                let mem = memory_figures(dir.as_ref());
                // A parent's lower limit (a pod's) is the one the container can hit.
                let (memory_limit, memory_limit_depth) =
                    match path.and_then(|p| self.mounts.memory_bounding(p)) {
                        Some(b) if b.depth > 0 => (b.limit.map(Limit::Bytes), b.depth),
                        _ => (mem.limit, 0),
                    };
                let seen = self.oom_events.then(|| {
                    self.ooms
                        .get(&recorder::key(&report.container))
                        .copied()
                        .unwrap_or(0)
                });
                let key = recorder::key(&report.container);
                let history = self.trends.entry(key).or_default();
                if let Some(u) = mem.usage {
                    if history.len() == self.trend_len {
                        history.pop_front();
                    }
                    history.push_back(u);
                }
                TopRow {
                    memory_trend: history.iter().copied().collect(),
                    oom_kills: oom_kills(mem.oom_kills, seen),
                    memory_usage: mem.usage,
                    memory_limit,
                    memory_limit_depth,
                    report,
                }
            })
            .collect();
        // Containers gone from the table are forgotten.
        let shown: std::collections::HashSet<String> = rows
            .iter()
            .map(|r| recorder::key(&r.report.container))
            .collect();
        self.trends.retain(|k, _| shown.contains(k));
        rows.sort_by(|a, b| {
            let cpu = |r: &TopRow| r.report.stats.and_then(|s| s.usage_cpus).unwrap_or(0.0);
            cpu(b).total_cmp(&cpu(a)).then_with(|| {
                a.report
                    .container
                    .display()
                    .cmp(b.report.container.display())
            })
        });
        rows
    }
}

#[cfg(test)]
mod tests;
