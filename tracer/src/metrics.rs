//! Prometheus metrics of a session: per container (OOM kills by scope, kills by signal and
//! sender, capability denials, CFS periods and throttling, run-queue delay, memory, restarts)
//! and ctrace's own health (records produced, delivered and lost per kind, the journal,
//! containers known), served in the Prometheus text format over HTTP.
//!
//! Cardinality is bounded: a container's series go away [`MetricsConfig::expire_after`] after
//! it is gone, and at most [`MetricsConfig::max_containers`] containers have series at once;
//! what did not fit is counted in `ctrace_metrics_containers_refused_total`.
//!
//! Counters that the kernel or a cgroup keeps (CFS periods, throttled time) are exported as
//! they are read, so `rate()` over them is exact; counters of incidents count what this
//! agent saw since it started.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, NoLabelSet},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType},
    registry::Registry,
};
use tracer_common::{kind, RUNQ_BUCKETS};

use crate::{
    cgroup::{Limit, Mounts},
    event::{kind_name, Body, Event},
    explain::{Incident, OomScope},
    journal::WriterStatus,
    names::{capability_name, signal_name},
    probe::KindCounters,
    recorder,
    resolve::{Attribution, Attrs, Container, Update},
    runq::RunqDelta,
    session::{CpuTick, Sink, Status},
    sink::{Context, Loss},
    throttle::{CpuSample, ThrottleEvent},
};

/// Bounds of the per-container series.
#[derive(Debug, Clone, Copy)]
pub struct MetricsConfig {
    /// A gone container's series are dropped this long after it was last seen.
    pub expire_after: Duration,
    /// Containers with series at once; more are refused (and counted).
    pub max_containers: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            expire_after: Duration::from_secs(300),
            max_containers: 2000,
        }
    }
}

/// The figures, shared by the session's sink ([`MetricsSink`]) and the HTTP endpoint.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Mutex<State>>);

#[derive(Debug)]
struct State {
    config: MetricsConfig,
    /// By container key (`runtime/id`).
    containers: BTreeMap<String, Series>,
    /// CPU samplings so far: a series stamped with the current one is of a live container.
    samplings: u64,
    refused: u64,
    health: Health,
}

/// One container's series.
#[derive(Debug, Default)]
struct Series {
    labels: Vec<(&'static str, String)>,
    /// The container the labels were made from. The resolver makes a new one on every
    /// change, so the labels are made again only when this is not the one it has now.
    labelled: Option<Arc<Container>>,
    /// The CPU sampling at which the container was last live.
    live_at: u64,
    oom_kills: BTreeMap<&'static str, u64>,
    /// By (signal, sender kind).
    kills: BTreeMap<(String, &'static str), u64>,
    cap_denials: BTreeMap<String, u64>,
    cpu: Option<CpuSample>,
    runq: Option<RunqCumulative>,
    memory_usage: Option<u64>,
    memory_limit: Option<u64>,
    memory_peak: Option<u64>,
    restarts: Option<u64>,
    /// When it was first seen gone; `None` while live.
    gone_since: Option<Instant>,
}

/// A cumulative run-queue delay histogram, from the kernel's per-interval deltas.
#[derive(Debug, Clone)]
struct RunqCumulative {
    count: u64,
    sum_ns: u64,
    buckets: [u64; RUNQ_BUCKETS],
}

#[derive(Debug, Default)]
struct Health {
    counters: Option<[KindCounters; kind::COUNT]>,
    delivered: [u64; kind::COUNT],
    decode_errors: [u64; kind::COUNT],
    journal: Option<WriterStatus>,
    live: usize,
    gone: usize,
    quiet: usize,
    enrichment_failures: u64,
    ring_fill: Option<f64>,
}

/// The labels of a container's series: `container` (its name, else its short id), `runtime`,
/// `namespace` (containerd's, or the pod's), `pod` and `image` (empty when unknown).
fn container_labels(c: &Container) -> Vec<(&'static str, String)> {
    let pod = c.pod.as_ref();
    vec![
        ("container", c.display().to_owned()),
        ("runtime", c.runtime.to_string()),
        (
            "namespace",
            pod.map(|p| p.namespace.clone())
                .or_else(|| c.namespace.clone())
                .unwrap_or_default(),
        ),
        ("pod", pod.map(|p| p.name.clone()).unwrap_or_default()),
        ("image", c.image.clone().unwrap_or_default()),
    ]
}

/// The `scope` label values of `ctrace_container_oom_kills_total`.
const OOM_SCOPES: [&str; 5] = [
    "container_limit",
    "parent_limit",
    "host",
    "unknown",
    "userspace",
];

/// How the sender of a kill is counted: `kernel` (`SI_KERNEL`, the OOM killer's SIGKILL),
/// `host`, `container` (another container or the same), `unknown`.
fn sender_kind(from_kernel: bool, a: &Attribution) -> &'static str {
    match (from_kernel, a) {
        (true, _) => "kernel",
        (false, Attribution::Host) => "host",
        (false, Attribution::Container(_)) => "container",
        (false, Attribution::Unknown) => "unknown",
    }
}

impl Metrics {
    pub fn new(config: MetricsConfig) -> Self {
        Self(Arc::new(Mutex::new(State {
            config,
            containers: BTreeMap::new(),
            samplings: 0,
            refused: 0,
            health: Health::default(),
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }

    /// Series of container `c`, created if the bound allows; `None` when refused.
    fn series<'a>(st: &'a mut State, c: &Arc<Container>) -> Option<&'a mut Series> {
        let key = recorder::key(c);
        if !st.containers.contains_key(&key) {
            if st.containers.len() >= st.config.max_containers {
                st.refused += 1;
                return None;
            }
            // Every scope starts at 0, so that `increase()` sees a container's first OOM kill
            // (a series that appears at 1 has not increased, to Prometheus).
            let oom_kills = OOM_SCOPES.iter().map(|s| (*s, 0)).collect();
            st.containers.insert(
                key.clone(),
                Series {
                    oom_kills,
                    ..Series::default()
                },
            );
        }
        let s = st.containers.get_mut(&key)?;
        if !s.labelled.as_ref().is_some_and(|l| Arc::ptr_eq(l, c)) {
            s.labels = container_labels(c);
            s.labelled = Some(Arc::clone(c));
        }
        Some(s)
    }

    /// An incident seen.
    pub fn incident(&self, i: &Incident) {
        self.with(|st| match i {
            Incident::Kill(k) => {
                if let Some(c) = k.target.attribution.container() {
                    let sender = sender_kind(k.from_kernel, &k.sender.attribution);
                    let signal = signal_name(i64::from(k.signo));
                    if let Some(s) = Self::series(st, c) {
                        *s.kills.entry((signal, sender)).or_default() += 1;
                    }
                }
            }
            Incident::Oom(o) => {
                if let Some(c) = o.victim.attribution.container() {
                    let parent = o
                        .memory
                        .as_ref()
                        .is_some_and(|m| m.limit_depth.unwrap_or(0) > 0);
                    let scope = match o.scope {
                        OomScope::ContainerLimit if parent => "parent_limit",
                        OomScope::ContainerLimit => "container_limit",
                        OomScope::Host => "host",
                        OomScope::Unknown => "unknown",
                        OomScope::Userspace => "userspace",
                    };
                    if let Some(s) = Self::series(st, c) {
                        *s.oom_kills.entry(scope).or_default() += 1;
                    }
                }
            }
            Incident::ContainerStart { .. }
            | Incident::ContainerStop { .. }
            | Incident::RestartLoop(_) => {}
        });
    }

    /// An event seen: denied capability checks count, by capability.
    pub fn event(&self, ev: &Event, attrs: &Attrs) {
        let Body::Capability(cap) = &ev.body else {
            return;
        };
        if cap.allowed() {
            return;
        }
        let Some(c) = attrs.process.container() else {
            return;
        };
        self.with(|st| {
            if let Some(s) = Self::series(st, c) {
                *s.cap_denials.entry(capability_name(cap.cap)).or_default() += cap.count.max(1);
            }
        });
    }

    /// One CPU sampling of the live containers, at `now`: CFS counters, run-queue delay,
    /// memory (read by `memory` for each container), restarts; containers no longer live are
    /// marked gone, and those gone longer than the bound dropped.
    pub fn cpu(
        &self,
        tick: &CpuTick<'_>,
        memory: impl Fn(&Container, Look) -> (Option<u64>, Option<u64>, Option<u64>),
        now: Instant,
    ) {
        self.with(|st| {
            st.samplings += 1;
            let now_live = st.samplings;
            for (c, id) in tick.live {
                let look = match (tick.activity.stirred(*id), tick.activity.settling(*id)) {
                    (false, _) => Look::Quiet,
                    (true, false) => Look::Due,
                    (true, true) => Look::Now,
                };
                let (usage, limit, peak) = memory(c, look);
                let Some(s) = Self::series(st, c) else {
                    continue;
                };
                s.live_at = now_live;
                s.gone_since = None;
                s.memory_usage = usage;
                s.memory_limit = limit;
                s.memory_peak = peak;
                s.restarts = c.restart_count;
            }
            for r in tick.reports {
                let Some(s) = st.containers.get_mut(&recorder::key(&r.container)) else {
                    continue;
                };
                s.cpu = r.sample;
                if let Some(d) = &r.runq {
                    s.runq = Some(accumulate(s.runq.take(), d));
                }
            }
            let expire = st.config.expire_after;
            st.containers.retain(|_, s| {
                if s.live_at == now_live {
                    return true;
                }
                let since = *s.gone_since.get_or_insert(now);
                now.saturating_duration_since(since) < expire
            });
        });
    }

    /// The session's health, once a second.
    pub fn status(&self, st: &Status) {
        self.with(|state| {
            state.health = Health {
                counters: st.counters,
                delivered: st.delivered_by_kind,
                decode_errors: st.decode_errors_by_kind,
                journal: st.journal.clone(),
                live: st.live_containers,
                gone: st.gone_containers,
                quiet: st.quiet_containers,
                enrichment_failures: st.enrichment_failures,
                ring_fill: st.ring_fill,
            };
        });
    }
}

fn accumulate(prev: Option<RunqCumulative>, d: &RunqDelta) -> RunqCumulative {
    let mut h = prev.unwrap_or(RunqCumulative {
        count: 0,
        sum_ns: 0,
        buckets: [0; RUNQ_BUCKETS],
    });
    h.count += d.count;
    h.sum_ns += d.sum_ns;
    for (b, n) in h.buckets.iter_mut().zip(d.buckets) {
        *b += n;
    }
    h
}

/// Writes one metric family: its descriptor, then one sample per label set.
fn family<L, M>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error>
where
    L: prometheus_client::encoding::EncodeLabelSet,
    M: prometheus_client::encoding::EncodeMetric,
{
    let mut m = enc.encode_descriptor(name, help, None, ty)?;
    for (labels, metric) in samples {
        metric.encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

type Labels = Vec<(&'static str, String)>;

/// The label set of a series that has none.
const NO_LABELS: [(&str, &str); 0] = [];

fn with_label(base: &Labels, key: &'static str, value: &str) -> Labels {
    let mut l = base.clone();
    l.push((key, value.to_owned()));
    l
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let st = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let series: Vec<&Series> = st.containers.values().collect();
        encode_incidents(&mut enc, &series)?;
        encode_cpu(&mut enc, &series)?;
        encode_memory(&mut enc, &series)?;
        encode_health(&mut enc, &st)
    }
}

/// Per container: OOM kills, kills, capability denials.
fn encode_incidents(
    enc: &mut DescriptorEncoder,
    series: &[&Series],
) -> Result<(), std::fmt::Error> {
    let counter = MetricType::Counter;
    family(
        enc,
        "ctrace_container_oom_kills",
        "OOM kills of a container's processes seen by ctrace, by scope: container_limit, \
             parent_limit (a pod's or a parent cgroup's lower limit), host, unknown.",
        counter,
        series.iter().flat_map(|s| {
            s.oom_kills
                .iter()
                .map(|(scope, n)| (with_label(&s.labels, "scope", scope), ConstCounter::new(*n)))
        }),
    )?;
    family(
        enc,
        "ctrace_container_kills",
        "Signals that killed a container's processes, by signal and sender kind (host, \
             container, kernel).",
        counter,
        series.iter().flat_map(|s| {
            s.kills.iter().map(|((signal, sender), n)| {
                let mut l = with_label(&s.labels, "signal", signal);
                l.push(("sender", (*sender).to_owned()));
                (l, ConstCounter::new(*n))
            })
        }),
    )?;
    family(
        enc,
        "ctrace_container_capability_denials",
        "Capability checks denied to a container's processes, by capability.",
        counter,
        series.iter().flat_map(|s| {
            s.cap_denials.iter().map(|(cap, n)| {
                (
                    with_label(&s.labels, "capability", cap),
                    ConstCounter::new(*n),
                )
            })
        }),
    )?;
    Ok(())
}

/// Per container: the cgroup's CFS counters, its quota, run-queue delay.
fn encode_cpu(enc: &mut DescriptorEncoder, series: &[&Series]) -> Result<(), std::fmt::Error> {
    let counter = MetricType::Counter;
    let gauge = MetricType::Gauge;
    let cpu = |f: fn(&CpuSample) -> Option<u64>| {
        series
            .iter()
            .filter_map(move |s| Some((s.labels.clone(), f(s.cpu.as_ref()?)?)))
    };
    family(
        enc,
        "ctrace_container_cpu_periods",
        "CFS enforcement periods of the container's cgroup (cpu.stat nr_periods).",
        counter,
        cpu(|c| c.nr_periods).map(|(l, v)| (l, ConstCounter::new(v))),
    )?;
    family(
        enc,
        "ctrace_container_cpu_throttled_periods",
        "CFS periods in which the container's cgroup was throttled (cpu.stat nr_throttled); \
             divided by ctrace_container_cpu_periods_total it gives the throttled ratio.",
        counter,
        cpu(|c| c.nr_throttled).map(|(l, v)| (l, ConstCounter::new(v))),
    )?;
    family(
        enc,
        "ctrace_container_cpu_throttled_seconds",
        "Time the container's cgroup spent throttled by its CFS quota.",
        counter,
        cpu(|c| c.throttled_ns).map(|(l, v)| (l, ConstCounter::new(v as f64 / 1e9))),
    )?;
    family(
        enc,
        "ctrace_container_cpu_usage_seconds",
        "CPU time used by the container's cgroup.",
        counter,
        cpu(|c| c.usage_ns).map(|(l, v)| (l, ConstCounter::new(v as f64 / 1e9))),
    )?;
    family(
        enc,
        "ctrace_container_cpu_quota_cpus",
        "The container's CFS quota, in CPUs (absent without a quota).",
        gauge,
        series.iter().filter_map(|s| {
            let q = s.cpu.as_ref()?.quota?;
            Some((s.labels.clone(), ConstGauge::new(q.cpus())))
        }),
    )?;
    {
        let mut m = enc.encode_descriptor(
            "ctrace_container_runqueue_delay_seconds",
            "Time the container's tasks waited on a run queue before running, measured in \
                 the kernel (from being queued to sched_switch).",
            None,
            MetricType::Histogram,
        )?;
        for s in series {
            let Some(h) = &s.runq else { continue };
            // Per-bucket counts: the encoder makes them cumulative and adds `+Inf`. Bucket
            // i holds waits below 2^(i+1) µs (see `RunqDelta::quantile_ns`).
            let buckets: Vec<(f64, u64)> = h
                .buckets
                .iter()
                .enumerate()
                .map(|(i, n)| ((1u64 << (i + 1)) as f64 * 1e-6, *n))
                .collect();
            m.encode_family(&s.labels)?.encode_histogram::<NoLabelSet>(
                h.sum_ns as f64 / 1e9,
                h.count,
                &buckets,
                None,
            )?;
        }
    }
    Ok(())
}

/// Per container: memory figures and restarts.
fn encode_memory(enc: &mut DescriptorEncoder, series: &[&Series]) -> Result<(), std::fmt::Error> {
    let counter = MetricType::Counter;
    let gauge = MetricType::Gauge;
    let mem = |f: fn(&Series) -> Option<u64>| {
        series
            .iter()
            .filter_map(move |s| Some((s.labels.clone(), ConstGauge::new(f(s)? as f64))))
    };
    family(
        enc,
        "ctrace_container_memory_usage_bytes",
        "Memory charged to the container's cgroup.",
        gauge,
        mem(|s| s.memory_usage),
    )?;
    family(
        enc,
        "ctrace_container_memory_limit_bytes",
        "The container cgroup's own memory limit (absent when unlimited).",
        gauge,
        mem(|s| s.memory_limit),
    )?;
    family(
        enc,
        "ctrace_container_memory_peak_bytes",
        "Highest memory usage of the container's cgroup.",
        gauge,
        mem(|s| s.memory_peak),
    )?;
    family(
        enc,
        "ctrace_container_restarts",
        "Restarts of the container by its runtime's restart policy (Docker).",
        counter,
        series
            .iter()
            .filter_map(|s| Some((s.labels.clone(), ConstCounter::new(s.restarts?)))),
    )?;

    Ok(())
}

/// ctrace's own health: records, the journal, containers, the series bound, build.
fn encode_health(enc: &mut DescriptorEncoder, st: &State) -> Result<(), std::fmt::Error> {
    let counter = MetricType::Counter;
    let gauge = MetricType::Gauge;
    let h = &st.health;
    let kinds = || (1..kind::COUNT).map(|k| (k, kind_name(k as u16)));
    if let Some(c) = &h.counters {
        family(
            enc,
            "ctrace_records_produced",
            "Records the eBPF programs tried to submit, by kind.",
            counter,
            kinds().map(|(k, n)| (vec![("kind", n)], ConstCounter::new(c[k].attempts))),
        )?;
        family(
            enc,
            "ctrace_records_lost",
            "Records lost, by kind and where: kernel_ringbuf_full, userspace_decode.",
            counter,
            kinds().flat_map(|(k, n)| {
                [
                    (
                        vec![("kind", n), ("site", "kernel_ringbuf_full")],
                        ConstCounter::new(c[k].lost_ringbuf_full),
                    ),
                    (
                        vec![("kind", n), ("site", "userspace_decode")],
                        ConstCounter::new(h.decode_errors[k]),
                    ),
                ]
            }),
        )?;
        family(
            enc,
            "ctrace_records_filtered_in_kernel",
            "Records the eBPF programs dropped by design (signals not asked for, folded \
                 capability checks and ignored signals), by kind.",
            counter,
            kinds().map(|(k, n)| (vec![("kind", n)], ConstCounter::new(c[k].filtered))),
        )?;
    }
    family(
        enc,
        "ctrace_records_delivered",
        "Records decoded and handled by ctrace, by kind.",
        counter,
        kinds().map(|(k, n)| (vec![("kind", n)], ConstCounter::new(h.delivered[k]))),
    )?;
    if let Some(j) = &h.journal {
        family(
            enc,
            "ctrace_journal_writes",
            "Entries committed to the journal.",
            counter,
            [(NO_LABELS, ConstCounter::new(j.written))],
        )?;
        family(
            enc,
            "ctrace_journal_drops",
            "Entries not written to the journal (queue full, failed batch, disabled).",
            counter,
            [(NO_LABELS, ConstCounter::new(j.dropped))],
        )?;
    }
    if let Some(fill) = h.ring_fill {
        family(
            enc,
            "ctrace_ring_fill_ratio",
            "The fullest the ring buffer was found at a read during the last second, as a \
             fraction of its size; near 1, records are about to be lost.",
            gauge,
            [(NO_LABELS, ConstGauge::new(fill))],
        )?;
    }
    family(
        enc,
        "ctrace_enrichment_failures",
        "Requests to container runtimes (Docker's API, ctr) that failed; names and images then \
         come from the runtimes' state on disk only.",
        counter,
        [(NO_LABELS, ConstCounter::new(h.enrichment_failures))],
    )?;
    family(
        enc,
        "ctrace_containers",
        "Containers ctrace knows, by state: live, gone (kept for post-mortems).",
        gauge,
        [
            ([("state", "live")], ConstGauge::new(h.live as i64)),
            ([("state", "gone")], ConstGauge::new(h.gone as i64)),
        ],
    )?;
    family(
        enc,
        "ctrace_containers_quiet",
        "Live containers in which no thread ran since the last sampling tick: their cgroup files \
         are not read again until one does (their figures stand).",
        gauge,
        [(NO_LABELS, ConstGauge::new(h.quiet as i64))],
    )?;
    family(
        enc,
        "ctrace_metrics_containers",
        "Containers that have per-container series now.",
        gauge,
        [(NO_LABELS, ConstGauge::new(st.containers.len() as i64))],
    )?;
    family(
        enc,
        "ctrace_metrics_containers_refused",
        "Containers given no series because the bound on containers was reached.",
        counter,
        [(NO_LABELS, ConstCounter::new(st.refused))],
    )?;
    family(
        enc,
        "ctrace_build_info",
        "The running ctrace's version.",
        gauge,
        [(
            [("version", env!("CARGO_PKG_VERSION"))],
            ConstGauge::new(1i64),
        )],
    )?;
    Ok(())
}

/// A session sink that keeps the metrics: pair it with the output sink (see
/// [`crate::session::Both`]).
pub struct MetricsSink {
    pub metrics: Metrics,
    mounts: Mounts,
    /// Each container's memory figures and when they were read (see [`MEMORY_EVERY`]).
    memory: RefCell<HashMap<String, MemoryRead>>,
    /// CPU samplings so far: an entry of `memory` not stamped with the current one is of a
    /// container no longer live.
    samplings: std::cell::Cell<u64>,
}

/// A container's memory figures, when they were read, and the CPU sampling that last asked.
#[derive(Debug, Clone, Copy)]
struct MemoryRead {
    at: Instant,
    figures: MemoryFigures,
    asked: u64,
}

/// Usage, limit and peak of a container's memory cgroup.
type MemoryFigures = (Option<u64>, Option<u64>, Option<u64>);

/// How often a container's memory figures are read for the metrics: three files per
/// container, where scrapes come every 15 to 60 s; reading them every CPU tick was most of an
/// idle agent's reads.
const MEMORY_EVERY: Duration = Duration::from_secs(5);

/// Whether a container's memory figures are read at a tick (see [`crate::activity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Nothing of it ran: the figures stand.
    Quiet,
    /// It ran: read when the figures are older than [`MEMORY_EVERY`].
    Due,
    /// It has just stopped running: read now, the figures that then stand are these.
    Now,
}

impl MetricsSink {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            mounts: Mounts::current(),
            memory: RefCell::default(),
            samplings: std::cell::Cell::new(0),
        }
    }

    /// `c`'s memory figures: those read last, or read again as `look` says.
    fn memory_of(&self, c: &Container, look: Look, now: Instant) -> MemoryFigures {
        let asked = self.samplings.get();
        let key = recorder::key(c);
        let mut cache = self.memory.borrow_mut();
        if let Some(read) = cache.get_mut(&key) {
            let fresh = now.duration_since(read.at) < MEMORY_EVERY;
            if look == Look::Quiet || (look == Look::Due && fresh) {
                read.asked = asked;
                return read.figures;
            }
        }
        let figures = match c
            .cgroup_path_for("memory")
            .and_then(|p| self.mounts.memory(p))
        {
            Some(dir) => (
                dir.read_usage(),
                dir.read_limit().and_then(Limit::bytes),
                dir.read_peak(),
            ),
            None => (None, None, None),
        };
        cache.insert(
            key,
            MemoryRead {
                at: now,
                figures,
                asked,
            },
        );
        figures
    }
}

impl Sink for MetricsSink {
    fn event(&mut self, ev: &Event, attrs: &Attrs, _: &Context) {
        self.metrics.event(ev, attrs);
    }
    fn incident(&mut self, i: &Incident, _: &Context) {
        self.metrics.incident(i);
    }
    fn throttle(&mut self, _: &Arc<Container>, _: &ThrottleEvent, _: u64, _: &Context) {}
    fn update(&mut self, _: &Update, _: &Context) {}
    fn loss(&mut self, _: &Loss, _: u64, _: &Context) {}
    fn warning(&mut self, _: &str) {}
    fn status(&mut self, s: &Status) {
        self.metrics.status(s);
    }
    fn cpu(&mut self, tick: &CpuTick<'_>) {
        let now = Instant::now();
        let sampling = self.samplings.get() + 1;
        self.samplings.set(sampling);
        self.metrics
            .cpu(tick, |c, look| self.memory_of(c, look, now), now);
        // Forget containers no longer live: every live one was asked for just now.
        self.memory.borrow_mut().retain(|_, r| r.asked == sampling);
    }
}

/// Serves `GET /metrics` on `addr` until the task is dropped. Binding happens before this
/// returns, so a port in use is an error at start.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, std::convert::Infallible>(respond(&req, &metrics)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                // A scrape that takes longer than this is abandoned.
                let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
            });
        }
    });
    Ok((local, task))
}

fn respond<B>(
    req: &hyper::Request<B>,
    metrics: &Metrics,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (
            hyper::StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        (&hyper::Method::GET, "/") => (
            hyper::StatusCode::OK,
            "text/plain; charset=utf-8",
            "ctrace agent: metrics at /metrics\n".to_owned(),
        ),
        _ => (
            hyper::StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
    };
    let mut resp = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{container::Runtime, cpuwatch::Report};

    fn container(id: &str, name: &str) -> Arc<Container> {
        Arc::new(Container::named(&id.repeat(64), name, Runtime::Docker))
    }

    fn live(cs: &[&Arc<Container>]) -> Vec<(Arc<Container>, Option<u64>)> {
        cs.iter().map(|c| (Arc::clone(c), Some(7))).collect()
    }

    fn tick(m: &Metrics, cs: &[&Arc<Container>], reports: &[Report], now: Instant) {
        let live = live(cs);
        m.cpu(
            &CpuTick {
                live: &live,
                reports,
                lost: Some(0),
                activity: &crate::activity::Activity::default(),
            },
            |_, _| (Some(10 << 20), Some(64 << 20), Some(20 << 20)),
            now,
        );
    }

    #[test]
    fn a_gone_containers_series_expire_after_the_delay() {
        let m = Metrics::new(MetricsConfig {
            expire_after: Duration::from_secs(60),
            max_containers: 10,
        });
        let (a, b) = (container("a", "web"), container("b", "db"));
        let t0 = Instant::now();
        tick(&m, &[&a, &b], &[], t0);
        assert!(m.render().contains("container=\"db\""));
        // b is gone from here on: kept for the delay, then dropped.
        tick(&m, &[&a], &[], t0 + Duration::from_secs(10));
        tick(&m, &[&a], &[], t0 + Duration::from_secs(69));
        assert!(m.render().contains("container=\"db\""));
        tick(&m, &[&a], &[], t0 + Duration::from_secs(71));
        let text = m.render();
        assert!(!text.contains("container=\"db\""), "{text}");
        assert!(text.contains("container=\"web\""));
        assert!(text.contains("ctrace_metrics_containers 1\n"), "{text}");
    }

    #[test]
    fn labels_follow_the_container_the_resolver_has_now() {
        let m = Metrics::new(MetricsConfig::default());
        let a = container("a", "web");
        let t0 = Instant::now();
        tick(&m, &[&a], &[], t0);
        tick(&m, &[&a], &[], t0 + Duration::from_secs(1));
        assert!(m.render().contains("container=\"web\""));
        // Renamed: the resolver holds a new container under the same key.
        let mut renamed = (*a).clone();
        renamed.name = Some("web-2".to_owned());
        renamed.image = Some("busybox:local".to_owned());
        let b = Arc::new(renamed);
        tick(&m, &[&b], &[], t0 + Duration::from_secs(2));
        let text = m.render();
        assert!(
            text.contains(
                r#"container="web-2",runtime="docker",namespace="",pod="",image="busybox:local""#
            ),
            "{text}"
        );
        assert!(!text.contains("container=\"web\""), "{text}");
        assert!(text.contains("ctrace_metrics_containers 1\n"), "{text}");
    }

    #[test]
    fn containers_beyond_the_bound_are_refused_and_counted() {
        let m = Metrics::new(MetricsConfig {
            expire_after: Duration::from_secs(60),
            max_containers: 1,
        });
        let (a, b) = (container("a", "web"), container("b", "db"));
        tick(&m, &[&a, &b], &[], Instant::now());
        let text = m.render();
        assert!(
            text.contains("ctrace_metrics_containers_refused_total 1\n"),
            "{text}"
        );
        assert!(text.contains("container=\"web\"") != text.contains("container=\"db\""));
    }

    #[test]
    fn series_carry_oom_scopes_at_zero_cfs_counters_memory_and_runq() {
        let m = Metrics::new(MetricsConfig::default());
        let a = container("a", "web");
        let mut buckets = [0; RUNQ_BUCKETS];
        buckets[0] = 3;
        buckets[4] = 1;
        let report = Report {
            container: Arc::clone(&a),
            cgroup_id: Some(7),
            event: None,
            stats: None,
            runq: Some(RunqDelta {
                count: 4,
                sum_ns: 40_000,
                buckets,
            }),
            sample: Some(CpuSample {
                nr_periods: Some(10),
                nr_throttled: Some(9),
                throttled_ns: Some(2_500_000_000),
                usage_ns: Some(100_000_000),
                ..CpuSample::default()
            }),
        };
        tick(&m, &[&a], &[report], Instant::now());
        let text = m.render();
        let labels = r#"container="web",runtime="docker",namespace="",pod="",image="""#;
        for want in [
            format!("ctrace_container_oom_kills_total{{{labels},scope=\"container_limit\"}} 0"),
            format!("ctrace_container_oom_kills_total{{{labels},scope=\"parent_limit\"}} 0"),
            format!("ctrace_container_cpu_periods_total{{{labels}}} 10"),
            format!("ctrace_container_cpu_throttled_periods_total{{{labels}}} 9"),
            format!("ctrace_container_cpu_throttled_seconds_total{{{labels}}} 2.5"),
            format!("ctrace_container_memory_limit_bytes{{{labels}}} 67108864"),
            format!("ctrace_container_runqueue_delay_seconds_count{{{labels}}} 4"),
            // Cumulative: 3 waits under 2 µs, the 4th under 32 µs.
            format!("ctrace_container_runqueue_delay_seconds_bucket{{{labels},le=\"2e-06\"}} 3"),
            format!("ctrace_container_runqueue_delay_seconds_bucket{{{labels},le=\"3.2e-05\"}} 4"),
            format!("ctrace_container_runqueue_delay_seconds_bucket{{{labels},le=\"+Inf\"}} 4"),
        ] {
            assert!(text.contains(&want), "{want}\nnot in:\n{text}");
        }
    }
}
