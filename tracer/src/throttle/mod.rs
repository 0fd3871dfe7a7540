//! CPU throttling explained per container.
//!
//! - the samples come from [`crate::cgroup::cpu`]: a normalized [`CpuSample`] read by
//!   [`CpuPaths::for_cgroup`] and [`read_sample`].
//! - [`detector`]: the per-container state machine that turns consecutive samples into
//!   [`ThrottleEvent`]s (start, ongoing, stop).
//! - [`explain`](mod@explain): the one-line explanation of an event ([`explain()`]).
//!
//! Typical loop, once a second per container with a quota:
//! `read_sample` → `ThrottleDetector::observe` → `explain`.

pub mod detector;
pub mod explain;

use std::time::Duration;

pub use crate::cgroup::{
    monotonic_now, read_quota, read_sample, CpuPaths, CpuSample, ParseError, Quota, SampleError,
};

pub use self::{
    detector::{
        DetectorConfig, IntervalStats, RunqueueDelay, ThrottleDetector, ThrottleEvent, ThrottleKind,
    },
    explain::explain,
};

/// What [`live_check`] saw.
#[derive(Debug, Clone)]
pub struct LiveCheck {
    /// Where the files were read.
    pub paths: CpuPaths,
    /// The first sample.
    pub first: CpuSample,
    /// The second sample.
    pub second: CpuSample,
    /// The detector's event for the interval between them.
    pub event: ThrottleEvent,
    /// Its explanation.
    pub explanation: String,
}

/// Real-I/O check for integration tests (needs a running, CPU-bound container with a
/// quota, e.g. `docker run -d --cpus=0.01 busybox sh -c 'while :; do :; done'`).
/// Reads the cgroup at `cgroup_path` (`/docker/<id>`) twice, `wait` apart, through
/// [`CpuPaths::for_cgroup`] and [`read_sample`], and checks that the quota is
/// `expected_cpus` and that the detector reports a `Start`. The error says what differed.
pub fn live_check(
    cgroup_path: &str,
    label: &str,
    expected_cpus: f64,
    wait: Duration,
) -> Result<LiveCheck, String> {
    let paths = CpuPaths::for_cgroup(cgroup_path)
        .ok_or_else(|| format!("no cgroup hierarchy with the cpu controller for {cgroup_path}"))?;
    let first = read_sample(&paths, monotonic_now()).map_err(|e| e.to_string())?;
    std::thread::sleep(wait);
    let second = read_sample(&paths, monotonic_now()).map_err(|e| e.to_string())?;

    let quota = second
        .quota
        .ok_or_else(|| format!("no CPU quota read from {paths:?}: {second:?}"))?;
    if (quota.cpus() - expected_cpus).abs() > 1e-9 {
        return Err(format!(
            "quota is {} CPUs, expected {expected_cpus}: {quota:?}",
            quota.cpus()
        ));
    }
    for (name, value) in [
        ("nr_periods", second.nr_periods),
        ("nr_throttled", second.nr_throttled),
        ("throttled_ns", second.throttled_ns),
        ("usage_ns", second.usage_ns),
    ] {
        if value.is_none() {
            return Err(format!("{name} missing in {second:?} (from {paths:?})"));
        }
    }

    let mut detector = ThrottleDetector::default();
    detector.observe(&first, None);
    let event = detector
        .observe(&second, None)
        .ok_or_else(|| format!("no throttling detected between {first:?} and {second:?}"))?;
    if event.kind != ThrottleKind::Start {
        return Err(format!("expected a start event, got {event:?}"));
    }
    let explanation = explain(label, &event);
    Ok(LiveCheck {
        paths,
        first,
        second,
        event,
        explanation,
    })
}
