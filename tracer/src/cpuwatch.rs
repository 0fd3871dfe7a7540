//! CPU throttling of every live container: the CFS counters sampled each interval, fed to a
//! per-container detector together with the kernel's run-queue delay of the container's
//! cgroup. Shared by `watch` (incidents) and `top` (the live table).

use std::{collections::HashMap, sync::Arc};

use tracer_common::RunqHist;

use crate::{
    recorder,
    resolve::Container,
    runq::{RunqDelta, RunqTracker},
    throttle::{
        self, CpuPaths, CpuSample, DetectorConfig, IntervalStats, RunqueueDelay, ThrottleDetector,
        ThrottleEvent,
    },
};

struct State {
    paths: Option<CpuPaths>,
    detector: ThrottleDetector,
    seen: bool,
}

/// What one tick found for one container.
#[derive(Debug, Clone)]
pub struct Report {
    pub container: Arc<Container>,
    pub cgroup_id: Option<u64>,
    /// A throttling transition to report.
    pub event: Option<ThrottleEvent>,
    /// The interval's figures (for `top`); `None` until two samples were taken.
    pub stats: Option<IntervalStats>,
    pub runq: Option<RunqDelta>,
    /// The cgroup's cumulative CPU counters as read at this tick (for metrics).
    pub sample: Option<CpuSample>,
}

pub struct CpuWatch {
    config: DetectorConfig,
    states: HashMap<String, State>,
    runq: RunqTracker,
}

impl CpuWatch {
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
            states: HashMap::new(),
            runq: RunqTracker::default(),
        }
    }

    /// Sample every container once. `runq`: the kernel's cumulative histograms, when the
    /// run-queue programs are attached.
    pub fn tick(
        &mut self,
        containers: &[(Arc<Container>, Option<u64>)],
        runq: Option<HashMap<u64, RunqHist>>,
    ) -> Vec<Report> {
        let runq = runq.map(|h| self.runq.advance(h));
        for s in self.states.values_mut() {
            s.seen = false;
        }
        let now = throttle::monotonic_now();
        let mut out = Vec::new();
        for (c, cgroup_id) in containers {
            let key = recorder::key(c);
            let config = self.config;
            let state = self.states.entry(key).or_insert_with(|| State {
                paths: c.cgroup_path_for("cpu").and_then(CpuPaths::for_cgroup),
                detector: ThrottleDetector::new(config),
                seen: true,
            });
            state.seen = true;
            let Some(paths) = &state.paths else { continue };
            let Ok(sample) = throttle::read_sample(paths, now) else {
                continue;
            };
            let delta = cgroup_id
                .and_then(|id| runq.as_ref().and_then(|r| r.get(&id)))
                .cloned();
            let delay = delta.as_ref().and_then(|d| {
                Some(RunqueueDelay {
                    p50_ns: d.quantile_ns(0.5)?,
                    p99_ns: d.quantile_ns(0.99)?,
                })
            });
            let event = state.detector.observe(&sample, delay);
            out.push(Report {
                container: Arc::clone(c),
                cgroup_id: *cgroup_id,
                event,
                stats: state.detector.last_interval(),
                runq: delta,
                sample: Some(sample),
            });
        }
        self.states.retain(|_, s| s.seen);
        out
    }
}

/// `slow (docker)`: how throttling explanations name a container.
pub fn label(c: &Container) -> String {
    format!("{} ({})", c.display(), c.runtime)
}
