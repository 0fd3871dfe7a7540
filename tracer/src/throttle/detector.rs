//! Per-container throttling state machine (pure): fed consecutive [`CpuSample`]s, it
//! computes counter deltas and says when throttling starts, persists (rate-limited) and
//! stops.
//!
//! Rules:
//! - An interval is *throttled* when the cgroup has a quota, at least one period elapsed,
//!   at least one was throttled, and `throttled / periods >= threshold`.
//! - [`ThrottleKind::Start`] on the first throttled interval.
//! - [`ThrottleKind::Ongoing`] while it persists, at most once per `repeat_every` (or at
//!   once when the quota changes), summing every interval since the last event.
//! - [`ThrottleKind::Stop`] after `stop_after` consecutive intervals below the threshold
//!   (summing those intervals), or at once when the quota is removed.
//! - A cgroup without a quota is never reported as throttled, whatever its counters say.
//! - A counter going backwards (the container restarted and its cgroup was recreated)
//!   resets the baseline; that interval emits nothing. So does an interval with missing
//!   counters (at either end), and neither counts towards `stop_after`.

use std::time::Duration;

use crate::cgroup::{CpuSample, Quota};

/// Run-queue delay percentiles of the cgroup's tasks over the interval (from the kernel
/// side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunqueueDelay {
    /// Median wait of runnable tasks before running, in ns.
    pub p50_ns: u64,
    /// 99th percentile, in ns.
    pub p99_ns: u64,
}

/// Tuning of a [`ThrottleDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Throttled share of periods from which an interval counts as throttled (0.10).
    pub threshold: f64,
    /// Least time between two events of one episode (10 s).
    pub repeat_every: Duration,
    /// Consecutive intervals below the threshold that end an episode (2; 0 acts as 1).
    pub stop_after: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            threshold: 0.10,
            repeat_every: Duration::from_secs(10),
            stop_after: 2,
        }
    }
}

/// Which transition an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ThrottleKind {
    /// Throttling began.
    Start,
    /// Throttling persists.
    Ongoing,
    /// Throttling ended.
    Stop,
}

impl ThrottleKind {
    /// `start`, `ongoing`, `stop`.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleKind::Start => "start",
            ThrottleKind::Ongoing => "ongoing",
            ThrottleKind::Stop => "stop",
        }
    }
}

/// A throttling transition, with the numbers over the window it covers (`interval`): the
/// last interval for `Start`, the intervals since the previous event for `Ongoing`, the
/// below-threshold intervals for `Stop`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThrottleEvent {
    /// Transition.
    pub kind: ThrottleKind,
    /// `nr_throttled / nr_periods` over the window (0 when no period elapsed).
    pub ratio: f64,
    /// Throttled time over the window, in ns (summed over CPUs by the kernel).
    pub throttled_ns: u64,
    /// Length of the window (sum of the observed intervals).
    pub interval: Duration,
    /// The quota in CPUs (`quota_us / period_us`); for a `Stop` after the quota was
    /// removed, the last quota seen.
    pub quota_cpus: f64,
    /// Quota per period, in µs.
    pub quota_us: u64,
    /// Period, in µs.
    pub period_us: u64,
    /// CPU used over the window, in CPUs; `None` without usage counters.
    pub usage_cpus: Option<f64>,
    /// Periods elapsed in the window.
    pub nr_periods: u64,
    /// Throttled periods in the window.
    pub nr_throttled: u64,
    /// PSI `some` stall time over the window, in µs, when known.
    pub pressure_some_us: Option<u64>,
    /// Run-queue delay percentiles, as passed with the latest sample.
    pub runqueue: Option<RunqueueDelay>,
    /// `Stop` only: the episode ended because the quota was removed.
    pub quota_removed: bool,
}

/// Counter deltas over one or more intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    duration: Duration,
    periods: u64,
    throttled: u64,
    throttled_ns: u64,
    /// `None` as soon as one interval lacks usage.
    usage_ns: Option<u64>,
    pressure_us: Option<u64>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            duration: Duration::ZERO,
            periods: 0,
            throttled: 0,
            throttled_ns: 0,
            usage_ns: Some(0),
            pressure_us: Some(0),
        }
    }
}

impl Window {
    fn add(&mut self, other: &Window) {
        self.duration = self.duration.saturating_add(other.duration);
        self.periods = self.periods.saturating_add(other.periods);
        self.throttled = self.throttled.saturating_add(other.throttled);
        self.throttled_ns = self.throttled_ns.saturating_add(other.throttled_ns);
        self.usage_ns = self
            .usage_ns
            .zip(other.usage_ns)
            .map(|(a, b)| a.saturating_add(b));
        self.pressure_us = self
            .pressure_us
            .zip(other.pressure_us)
            .map(|(a, b)| a.saturating_add(b));
    }

    fn ratio(&self) -> f64 {
        if self.periods == 0 {
            0.0
        } else {
            (self.throttled as f64 / self.periods as f64).min(1.0)
        }
    }

    fn event(
        &self,
        kind: ThrottleKind,
        quota: Quota,
        runqueue: Option<RunqueueDelay>,
        quota_removed: bool,
    ) -> ThrottleEvent {
        let secs = self.duration.as_secs_f64();
        ThrottleEvent {
            kind,
            ratio: self.ratio(),
            throttled_ns: self.throttled_ns,
            interval: self.duration,
            quota_cpus: quota.cpus(),
            quota_us: quota.quota_us,
            period_us: quota.period_us,
            usage_cpus: self
                .usage_ns
                .filter(|_| secs > 0.0)
                .map(|ns| ns as f64 / 1e9 / secs),
            nr_periods: self.periods,
            nr_throttled: self.throttled,
            pressure_some_us: self.pressure_us,
            runqueue,
            quota_removed,
        }
    }
}

enum Delta {
    Value(u64),
    Missing,
    Backwards,
}

fn delta(prev: Option<u64>, cur: Option<u64>) -> Delta {
    match (prev, cur) {
        (Some(p), Some(c)) if c >= p => Delta::Value(c - p),
        (Some(_), Some(_)) => Delta::Backwards,
        _ => Delta::Missing,
    }
}

/// What one interval between two samples showed.
enum Interval {
    /// Counters went backwards, or time did not advance.
    Reset,
    /// The throttling counters are not there.
    Missing,
    /// Deltas.
    Counted(Window),
}

fn interval(prev: &CpuSample, cur: &CpuSample) -> Interval {
    let Some(duration) = cur.at.checked_sub(prev.at).filter(|d| !d.is_zero()) else {
        return Interval::Reset;
    };
    let deltas = [
        delta(prev.nr_periods, cur.nr_periods),
        delta(prev.nr_throttled, cur.nr_throttled),
        delta(prev.throttled_ns, cur.throttled_ns),
        delta(prev.usage_ns, cur.usage_ns),
        delta(prev.pressure_some_total_us, cur.pressure_some_total_us),
    ];
    if deltas.iter().any(|d| matches!(d, Delta::Backwards)) {
        return Interval::Reset;
    }
    let value = |d: &Delta| match d {
        Delta::Value(v) => Some(*v),
        _ => None,
    };
    let [periods, throttled, throttled_ns, usage, pressure] = deltas.each_ref().map(value);
    let (Some(periods), Some(throttled), Some(throttled_ns)) = (periods, throttled, throttled_ns)
    else {
        return Interval::Missing;
    };
    Interval::Counted(Window {
        duration,
        periods,
        throttled,
        throttled_ns,
        usage_ns: usage,
        pressure_us: pressure,
    })
}

/// An episode in progress.
#[derive(Debug, Clone, Copy)]
struct Episode {
    /// Everything since the last event.
    since_event: Window,
    /// The current run of below-threshold intervals.
    below: Window,
    below_count: u32,
    last_event_at: Duration,
    quota: Quota,
}

/// The throttling state of one container. Feed it every sample with [`observe`].
///
/// [`observe`]: ThrottleDetector::observe
#[derive(Debug, Clone)]
pub struct ThrottleDetector {
    config: DetectorConfig,
    baseline: Option<CpuSample>,
    episode: Option<Episode>,
    last: Option<IntervalStats>,
}

/// What the last observed interval showed, for live views (`ctrace top`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalStats {
    pub duration: Duration,
    /// `None` without a quota: "not throttled" stays distinct from "no data".
    pub throttled_ratio: Option<f64>,
    pub throttled_ns: u64,
    pub usage_cpus: Option<f64>,
    pub quota: Option<Quota>,
}

impl ThrottleDetector {
    /// A detector with no baseline yet.
    pub fn new(config: DetectorConfig) -> Self {
        ThrottleDetector {
            config,
            baseline: None,
            episode: None,
            last: None,
        }
    }

    /// Whether an episode is in progress (a `Start` was emitted and no `Stop` yet).
    pub fn is_throttled(&self) -> bool {
        self.episode.is_some()
    }

    /// The last counted interval, if any.
    pub fn last_interval(&self) -> Option<IntervalStats> {
        self.last
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Whether a throttling episode is open (its end is still to be seen).
    pub fn in_episode(&self) -> bool {
        self.episode.is_some()
    }

    /// Takes the next sample (with the kernel's run-queue delay over the same interval,
    /// when known) and returns the transition it causes, if any.
    pub fn observe(
        &mut self,
        sample: &CpuSample,
        runqueue: Option<RunqueueDelay>,
    ) -> Option<ThrottleEvent> {
        let prev = self.baseline.replace(*sample)?;
        let window = match interval(&prev, sample) {
            Interval::Reset | Interval::Missing => {
                self.last = None;
                return None;
            }
            Interval::Counted(window) => window,
        };
        let secs = window.duration.as_secs_f64();
        self.last = Some(IntervalStats {
            duration: window.duration,
            throttled_ratio: sample.quota.map(|_| window.ratio()),
            throttled_ns: window.throttled_ns,
            usage_cpus: window
                .usage_ns
                .filter(|_| secs > 0.0)
                .map(|ns| ns as f64 / 1e9 / secs),
            quota: sample.quota,
        });

        let Some(quota) = sample.quota else {
            // No quota: never throttled. End an episode at once.
            let episode = self.episode.take()?;
            return Some(window.event(ThrottleKind::Stop, episode.quota, runqueue, true));
        };

        let throttled =
            window.periods > 0 && window.throttled >= 1 && window.ratio() >= self.config.threshold;

        let Some(episode) = self.episode.as_mut() else {
            if !throttled {
                return None;
            }
            self.episode = Some(Episode {
                since_event: Window::default(),
                below: Window::default(),
                below_count: 0,
                last_event_at: sample.at,
                quota,
            });
            return Some(window.event(ThrottleKind::Start, quota, runqueue, false));
        };

        episode.since_event.add(&window);
        if throttled {
            episode.below = Window::default();
            episode.below_count = 0;
            let due = sample.at.saturating_sub(episode.last_event_at) >= self.config.repeat_every;
            if !due && quota == episode.quota {
                return None;
            }
            let event = episode
                .since_event
                .event(ThrottleKind::Ongoing, quota, runqueue, false);
            episode.since_event = Window::default();
            episode.last_event_at = sample.at;
            episode.quota = quota;
            return Some(event);
        }

        episode.below.add(&window);
        episode.below_count += 1;
        if episode.below_count < self.config.stop_after.max(1) {
            return None;
        }
        let event = episode
            .below
            .event(ThrottleKind::Stop, quota, runqueue, false);
        self.episode = None;
        Some(event)
    }
}

impl Default for ThrottleDetector {
    fn default() -> Self {
        ThrottleDetector::new(DetectorConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::cpu::{parse_v1_cpu_stat, parse_v1_cpuacct_usage, parse_v1_quota};

    const Q: Quota = Quota {
        quota_us: 1000,
        period_us: 100_000,
    };
    const SEC: u64 = 1_000_000_000;

    /// Cumulative counters of a cgroup, advanced one interval at a time.
    #[derive(Clone, Copy)]
    struct Cg {
        at_ms: u64,
        quota: Option<Quota>,
        periods: u64,
        throttled: u64,
        throttled_ns: u64,
        usage_ns: u64,
    }

    impl Cg {
        fn new(quota: Option<Quota>) -> Self {
            Cg {
                at_ms: 1_000,
                quota,
                periods: 100,
                throttled: 50,
                throttled_ns: 7 * SEC,
                usage_ns: 3 * SEC,
            }
        }

        /// One second with `periods` periods, `throttled` of them throttled.
        fn tick(&mut self, periods: u64, throttled: u64) -> CpuSample {
            self.at_ms += 1_000;
            self.periods += periods;
            self.throttled += throttled;
            self.throttled_ns += throttled * 99_000_000;
            self.usage_ns += 10_000_000;
            self.sample()
        }

        fn sample(&self) -> CpuSample {
            CpuSample {
                at: Duration::from_millis(self.at_ms),
                quota: self.quota,
                nr_periods: Some(self.periods),
                nr_throttled: Some(self.throttled),
                throttled_ns: Some(self.throttled_ns),
                usage_ns: Some(self.usage_ns),
                pressure_some_total_us: None,
            }
        }
    }

    fn kinds(d: &mut ThrottleDetector, samples: &[CpuSample]) -> Vec<Option<ThrottleKind>> {
        samples
            .iter()
            .map(|s| d.observe(s, None).map(|e| e.kind))
            .collect()
    }

    #[test]
    fn real_v1_fixture_interval_starts() {
        let fx = |stat: &str, usage: &str, at: u64| CpuSample {
            at: Duration::from_secs(at),
            quota: parse_v1_quota(
                include_str!("../../tests/fixtures/throttle/v1-6.18-cpus0.01-cpu.cfs_quota_us"),
                Some(include_str!(
                    "../../tests/fixtures/throttle/v1-6.18-cpu.cfs_period_us"
                )),
            )
            .unwrap(),
            ..CpuSample::from_v1(
                Duration::ZERO,
                None,
                Some(&parse_v1_cpu_stat(stat).unwrap()),
                Some(parse_v1_cpuacct_usage(usage).unwrap()),
                None,
            )
        };
        let a = fx(
            include_str!("../../tests/fixtures/throttle/v1-6.18-cpus0.01-cpu.stat.a"),
            include_str!("../../tests/fixtures/throttle/v1-6.18-cpus0.01-cpuacct.usage.a"),
            100,
        );
        let b = fx(
            include_str!("../../tests/fixtures/throttle/v1-6.18-cpus0.01-cpu.stat.b"),
            include_str!("../../tests/fixtures/throttle/v1-6.18-cpus0.01-cpuacct.usage.b"),
            101,
        );
        let mut d = ThrottleDetector::default();
        assert_eq!(d.observe(&a, None), None);
        let e = d.observe(&b, None).unwrap();
        assert_eq!(e.kind, ThrottleKind::Start);
        assert_eq!((e.nr_periods, e.nr_throttled), (10, 10));
        assert_eq!(e.ratio, 1.0);
        assert_eq!(e.throttled_ns, 1_184_647_591);
        assert_eq!(e.interval, Duration::from_secs(1));
        assert_eq!((e.quota_us, e.period_us), (1000, 100_000));
        assert!((e.quota_cpus - 0.01).abs() < 1e-12);
        let usage = e.usage_cpus.unwrap();
        assert!((usage - 0.010_456_983).abs() < 1e-6, "{usage}");
        assert!(d.is_throttled());
    }

    #[test]
    fn real_v2_fixture_interval_starts() {
        use crate::cgroup::cpu::{parse_v2_cpu_max, parse_v2_cpu_stat};
        let quota = parse_v2_cpu_max(include_str!(
            "../../tests/fixtures/throttle/v2-6.1-cpumax1000-cpu.max"
        ))
        .unwrap();
        let fx = |stat: &str, at| {
            CpuSample::from_v2(at, quota, Some(&parse_v2_cpu_stat(stat).unwrap()), None)
        };
        let a = fx(
            include_str!("../../tests/fixtures/throttle/v2-6.1-cpumax1000-cpu.stat.a"),
            Duration::from_secs(3),
        );
        let b = fx(
            include_str!("../../tests/fixtures/throttle/v2-6.1-cpumax1000-cpu.stat.b"),
            Duration::from_secs(4),
        );
        let mut d = ThrottleDetector::default();
        d.observe(&a, None);
        let e = d.observe(&b, None).unwrap();
        assert_eq!(e.kind, ThrottleKind::Start);
        assert_eq!((e.nr_periods, e.nr_throttled), (11, 11));
        assert_eq!(e.throttled_ns, 1_088_327_000);
    }

    #[test]
    fn no_quota_never_throttled() {
        let mut cg = Cg::new(None);
        let mut d = ThrottleDetector::default();
        let samples: Vec<_> = std::iter::once(cg.sample())
            .chain((0..30).map(|_| cg.tick(10, 10)))
            .collect();
        assert!(kinds(&mut d, &samples).iter().all(Option::is_none));
        assert!(!d.is_throttled());
    }

    #[test]
    fn threshold_and_minimum_one_throttled_period() {
        // 1 of 20 periods = 5% < 10%.
        let mut cg = Cg::new(Some(Q));
        let mut d = ThrottleDetector::default();
        d.observe(&cg.sample(), None);
        assert_eq!(d.observe(&cg.tick(20, 1), None), None);
        // Idle: no periods at all.
        assert_eq!(d.observe(&cg.tick(0, 0), None), None);
        // Exactly 10% starts.
        assert_eq!(
            d.observe(&cg.tick(10, 1), None).map(|e| e.kind),
            Some(ThrottleKind::Start)
        );

        // A zero threshold still needs a throttled period.
        let mut d = ThrottleDetector::new(DetectorConfig {
            threshold: 0.0,
            ..DetectorConfig::default()
        });
        let mut cg = Cg::new(Some(Q));
        d.observe(&cg.sample(), None);
        assert_eq!(d.observe(&cg.tick(10, 0), None), None);
        assert!(d.observe(&cg.tick(10, 1), None).is_some());
    }

    #[test]
    fn start_ongoing_rate_limited_then_stop() {
        let mut cg = Cg::new(Some(Q));
        let mut d = ThrottleDetector::default();
        assert_eq!(d.observe(&cg.sample(), None), None);
        let start = d.observe(&cg.tick(10, 10), None).unwrap();
        assert_eq!(start.kind, ThrottleKind::Start);
        assert_eq!(start.interval, Duration::from_secs(1));
        // Nine more throttled seconds: silent.
        for _ in 0..9 {
            assert_eq!(d.observe(&cg.tick(10, 9), None), None);
        }
        // Ten seconds after the start: one Ongoing covering those ten seconds.
        let on = d.observe(&cg.tick(10, 10), None).unwrap();
        assert_eq!(on.kind, ThrottleKind::Ongoing);
        assert_eq!(on.interval, Duration::from_secs(10));
        assert_eq!((on.nr_periods, on.nr_throttled), (100, 91));
        assert!((on.ratio - 0.91).abs() < 1e-12);
        assert_eq!(on.throttled_ns, 91 * 99_000_000);
        assert!((on.usage_cpus.unwrap() - 0.01).abs() < 1e-9);
        for _ in 0..9 {
            assert_eq!(d.observe(&cg.tick(10, 10), None), None);
        }
        assert_eq!(
            d.observe(&cg.tick(10, 10), None).map(|e| e.kind),
            Some(ThrottleKind::Ongoing)
        );
        // One interval below the threshold is not enough to stop.
        assert_eq!(d.observe(&cg.tick(10, 0), None), None);
        // Throttled again: the below-threshold run starts over.
        assert_eq!(d.observe(&cg.tick(10, 5), None), None);
        assert_eq!(d.observe(&cg.tick(30, 1), None), None);
        let stop = d.observe(&cg.tick(70, 0), None).unwrap();
        assert_eq!(stop.kind, ThrottleKind::Stop);
        assert!(!stop.quota_removed);
        // Stop sums the two below-threshold intervals.
        assert_eq!(stop.interval, Duration::from_secs(2));
        assert_eq!((stop.nr_periods, stop.nr_throttled), (100, 1));
        assert!((stop.ratio - 0.01).abs() < 1e-12);
        assert!(!d.is_throttled());
        // Quiet afterwards; a new episode starts with a new Start.
        assert_eq!(d.observe(&cg.tick(10, 0), None), None);
        assert_eq!(
            d.observe(&cg.tick(10, 10), None).map(|e| e.kind),
            Some(ThrottleKind::Start)
        );
    }

    #[test]
    fn stop_after_configurable() {
        for (stop_after, expected_at) in [(0, 0), (1, 0), (3, 2)] {
            let mut d = ThrottleDetector::new(DetectorConfig {
                stop_after,
                ..DetectorConfig::default()
            });
            let mut cg = Cg::new(Some(Q));
            d.observe(&cg.sample(), None);
            d.observe(&cg.tick(10, 10), None).unwrap();
            let got: Vec<_> = (0..4).map(|_| d.observe(&cg.tick(10, 0), None)).collect();
            let first = got.iter().position(Option::is_some);
            assert_eq!(first, Some(expected_at), "stop_after {stop_after}");
        }
    }

    #[test]
    fn repeat_every_configurable() {
        let mut d = ThrottleDetector::new(DetectorConfig {
            repeat_every: Duration::from_secs(2),
            ..DetectorConfig::default()
        });
        let mut cg = Cg::new(Some(Q));
        let samples: Vec<_> = std::iter::once(cg.sample())
            .chain((0..5).map(|_| cg.tick(10, 10)))
            .collect();
        use ThrottleKind::*;
        assert_eq!(
            kinds(&mut d, &samples),
            [None, Some(Start), None, Some(Ongoing), None, Some(Ongoing)]
        );
    }

    #[test]
    fn counter_reset_rebaselines_silently() {
        let cg = Cg::new(Some(Q));
        let mut d = ThrottleDetector::default();
        d.observe(&cg.sample(), None);
        // Container restarted: its new cgroup counts from zero (still throttled).
        let mut fresh = Cg {
            at_ms: cg.at_ms,
            periods: 0,
            throttled: 0,
            throttled_ns: 0,
            usage_ns: 0,
            ..cg
        };
        assert_eq!(d.observe(&fresh.tick(10, 10), None), None);
        assert!(!d.is_throttled());
        // The next interval is measured from the new baseline.
        let e = d.observe(&fresh.tick(10, 10), None).unwrap();
        assert_eq!(
            (e.kind, e.nr_periods, e.nr_throttled),
            (ThrottleKind::Start, 10, 10)
        );

        // A reset during an episode neither stops it nor counts towards stopping.
        fresh.periods = 0;
        fresh.throttled = 0;
        assert_eq!(d.observe(&fresh.tick(10, 10), None), None);
        assert!(d.is_throttled());
        assert_eq!(d.observe(&fresh.tick(10, 0), None), None);
        assert!(d.is_throttled());

        // Usage alone going backwards is a reset too.
        let mut d = ThrottleDetector::default();
        let mut cg2 = Cg::new(Some(Q));
        d.observe(&cg2.sample(), None);
        let mut s = cg2.tick(10, 10);
        s.usage_ns = Some(0);
        assert_eq!(d.observe(&s, None), None);
    }

    #[test]
    fn time_not_advancing_is_a_reset() {
        let mut cg = Cg::new(Some(Q));
        let mut d = ThrottleDetector::default();
        d.observe(&cg.sample(), None);
        let mut s = cg.tick(10, 10);
        s.at = Duration::from_millis(1_000);
        assert_eq!(d.observe(&s, None), None);
        assert_eq!(d.observe(&s, None), None);
    }

    #[test]
    fn missing_counters_emit_nothing_and_do_not_stop() {
        let mut cg = Cg::new(Some(Q));
        let mut d = ThrottleDetector::default();
        d.observe(&cg.sample(), None);
        d.observe(&cg.tick(10, 10), None).unwrap();
        let mut gap = cg.tick(10, 0);
        gap.nr_throttled = None;
        assert_eq!(d.observe(&gap, None), None);
        let mut gap = cg.tick(10, 0);
        gap.throttled_ns = None;
        assert_eq!(d.observe(&gap, None), None);
        assert!(d.is_throttled());
        // Back: this sample is only a new baseline (the previous one lacked a counter),
        // then two below-threshold intervals are still needed.
        assert_eq!(d.observe(&cg.tick(10, 0), None), None);
        assert_eq!(d.observe(&cg.tick(10, 0), None), None);
        assert!(d.is_throttled());
        assert_eq!(
            d.observe(&cg.tick(10, 0), None).map(|e| e.kind),
            Some(ThrottleKind::Stop)
        );

        // Without usage counters the event has no usage but is still reported.
        let mut d = ThrottleDetector::default();
        let mut a = cg.sample();
        a.usage_ns = None;
        let mut b = cg.tick(10, 10);
        b.usage_ns = None;
        d.observe(&a, None);
        let e = d.observe(&b, None).unwrap();
        assert_eq!(e.usage_cpus, None);
        assert_eq!(e.pressure_some_us, None);
    }

    #[test]
    fn quota_change_reports_at_once_and_removal_stops() {
        let mut cg = Cg::new(Some(Q));
        let mut d = ThrottleDetector::default();
        d.observe(&cg.sample(), None);
        d.observe(&cg.tick(10, 10), None).unwrap();
        assert_eq!(d.observe(&cg.tick(10, 10), None), None);
        cg.quota = Some(Quota {
            quota_us: 5_000,
            period_us: 100_000,
        });
        let e = d.observe(&cg.tick(10, 8), None).unwrap();
        assert_eq!(e.kind, ThrottleKind::Ongoing);
        assert_eq!(e.quota_us, 5_000);
        assert!((e.quota_cpus - 0.05).abs() < 1e-12);
        assert_eq!(e.interval, Duration::from_secs(2));
        // Same quota again: rate limited.
        assert_eq!(d.observe(&cg.tick(10, 8), None), None);

        // `docker update --cpus 0`: quota gone, counters still move. Stop at once.
        cg.quota = None;
        let stop = d.observe(&cg.tick(10, 10), None).unwrap();
        assert_eq!(stop.kind, ThrottleKind::Stop);
        assert!(stop.quota_removed);
        assert_eq!(stop.quota_us, 5_000);
        assert!(!d.is_throttled());
        assert_eq!(d.observe(&cg.tick(10, 10), None), None);
    }

    #[test]
    fn runqueue_and_pressure_pass_through() {
        let mut cg = Cg::new(Some(Q));
        let mut d = ThrottleDetector::default();
        let mut a = cg.sample();
        a.pressure_some_total_us = Some(1_000);
        let mut b = cg.tick(10, 10);
        b.pressure_some_total_us = Some(981_000);
        let rq = RunqueueDelay {
            p50_ns: 40_000_000,
            p99_ns: 95_000_000,
        };
        d.observe(&a, Some(rq));
        let e = d.observe(&b, Some(rq)).unwrap();
        assert_eq!(e.runqueue, Some(rq));
        assert_eq!(e.pressure_some_us, Some(980_000));
    }

    #[test]
    fn ratio_is_capped() {
        // Inconsistent counters (more throttled than periods) never exceed 100%.
        let mut cg = Cg::new(Some(Q));
        let mut d = ThrottleDetector::default();
        d.observe(&cg.sample(), None);
        let e = d.observe(&cg.tick(5, 7), None).unwrap();
        assert_eq!(e.ratio, 1.0);
        assert_eq!(ThrottleKind::Ongoing.as_str(), "ongoing");
        assert_eq!(d.config().stop_after, 2);
    }
}
