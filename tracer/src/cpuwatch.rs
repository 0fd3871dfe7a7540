//! CPU throttling of every live container: the CFS counters sampled each interval, fed to a
//! per-container detector together with the kernel's run-queue delay of the container's
//! cgroup. Shared by `watch` (incidents) and `top` (the live table).

use std::{collections::HashMap, sync::Arc};

use tracer_common::RunqHist;

use crate::{
    activity::Activity,
    cgroup::CpuHierarchy,
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
    /// The last full sample, and the ticks since it was read.
    last: Option<CpuSample>,
    since_full: u32,
}

/// What one tick read of a container.
#[derive(Debug, PartialEq)]
enum Read {
    /// No cgroup to read, or it is gone.
    Nothing,
    /// Still no quota, or nothing ran in the container since the last tick: the last full
    /// sample stands.
    QuotaOnly,
    Full(CpuSample),
}

impl State {
    /// Reads the full figures, or only the quota file when the last full sample found no
    /// quota (nothing to detect until one is set) and full figures are not due yet, or nothing
    /// when `quiet` (nothing of the container ran since the last tick: see
    /// [`crate::activity`]) and no throttling episode is open. `settle`: it has just stopped
    /// running; read in full, since these figures will stand.
    fn read(
        &mut self,
        full_every: u32,
        quiet: bool,
        settle: bool,
        now: std::time::Duration,
    ) -> Read {
        let Some(paths) = &self.paths else {
            return Read::Nothing;
        };
        if quiet && self.last.is_some() && !self.detector.in_episode() {
            self.since_full = self.since_full.saturating_add(1);
            return Read::QuotaOnly;
        }
        let unlimited = self.last.as_ref().is_some_and(|s| s.quota.is_none());
        if unlimited
            && !settle
            && self.since_full + 1 < full_every
            && matches!(throttle::read_quota(paths), Ok(None))
        {
            self.since_full += 1;
            return Read::QuotaOnly;
        }
        let Ok(sample) = throttle::read_sample(paths, now) else {
            return Read::Nothing;
        };
        self.last = Some(sample);
        self.since_full = 0;
        Read::Full(sample)
    }
}

/// How often a container without a quota has its full CPU figures read (`cpu.stat`, usage,
/// PSI), in ticks, when the consumer does not want them every tick: a quota cannot throttle
/// what it does not limit, so in between only the quota file is read.
pub const UNLIMITED_FULL_EVERY: u32 = 10;

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
    /// Where the `cpu` controller is, read once.
    hierarchy: CpuHierarchy,
    states: HashMap<String, State>,
    runq: RunqTracker,
    /// Ticks between full reads of a container without a quota (1: every tick).
    full_every: u32,
}

impl CpuWatch {
    /// Full figures of every container every tick (what `top` shows); see
    /// [`CpuWatch::detection_only`].
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
            hierarchy: CpuHierarchy::current(),
            states: HashMap::new(),
            runq: RunqTracker::default(),
            full_every: 1,
        }
    }

    /// Containers without a quota read only their quota file on most ticks, their full
    /// figures every [`UNLIMITED_FULL_EVERY`] ticks: enough for throttling incidents and
    /// metrics, and a fifth of the reads per idle container.
    pub fn detection_only(&mut self, yes: bool) {
        self.full_every = if yes { UNLIMITED_FULL_EVERY } else { 1 };
    }

    /// The run-queue counts per cgroup since the previous call, from the kernel's cumulative
    /// histograms.
    pub fn runq_deltas(&mut self, runq: HashMap<u64, RunqHist>) -> HashMap<u64, RunqDelta> {
        self.runq.advance(runq)
    }

    /// The CPU time `c` has used, in ns: one file, for [`Activity`]'s check that nothing ran
    /// in a quiet container. `None` before its first tick or when it cannot be read.
    pub fn usage_of(&self, c: &Container) -> Option<u64> {
        let paths = self.states.get(&recorder::key(c))?.paths.as_ref()?;
        crate::cgroup::read_usage(paths).ok().flatten()
    }

    /// Sample every container once. `runq`: [`CpuWatch::runq_deltas`], when the run-queue
    /// programs are attached. Containers `activity` finds quiet are not read when only
    /// detection is wanted ([`CpuWatch::detection_only`]).
    pub fn tick(
        &mut self,
        containers: &[(Arc<Container>, Option<u64>)],
        runq: Option<&HashMap<u64, RunqDelta>>,
        activity: &Activity,
    ) -> Vec<Report> {
        let gate = self.full_every > 1;
        for s in self.states.values_mut() {
            s.seen = false;
        }
        let now = throttle::monotonic_now();
        let mut out = Vec::new();
        for (c, cgroup_id) in containers {
            let key = recorder::key(c);
            let config = self.config;
            let hierarchy = &self.hierarchy;
            let state = self.states.entry(key).or_insert_with(|| State {
                paths: c.cgroup_path_for("cpu").and_then(|p| hierarchy.paths(p)),
                detector: ThrottleDetector::new(config),
                seen: true,
                last: None,
                since_full: 0,
            });
            state.seen = true;
            let delta = cgroup_id
                .and_then(|id| runq.and_then(|r| r.get(&id)))
                .cloned();
            let quiet = gate && !activity.stirred(*cgroup_id);
            let settle = gate && activity.settling(*cgroup_id);
            let sample = match state.read(self.full_every, quiet, settle, now) {
                Read::Nothing => continue,
                Read::QuotaOnly => {
                    out.push(Report {
                        container: Arc::clone(c),
                        cgroup_id: *cgroup_id,
                        event: None,
                        stats: None,
                        runq: delta,
                        sample: state.last,
                    });
                    continue;
                }
                Read::Full(sample) => sample,
            };
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

#[cfg(test)]
mod tests {
    use std::{fs, time::Duration};

    use super::*;

    fn state(dir: &std::path::Path) -> State {
        State {
            paths: Some(CpuPaths::V2 {
                dir: dir.to_owned(),
            }),
            detector: ThrottleDetector::new(DetectorConfig::default()),
            seen: true,
            last: None,
            since_full: 0,
        }
    }

    fn write_stat(dir: &std::path::Path, usage_usec: u64) {
        let stat = format!(
            "usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\nnr_periods 0\n\
             nr_throttled 0\nthrottled_usec 0\n"
        );
        fs::write(dir.join("cpu.stat"), stat).unwrap();
    }

    fn usage(r: &Read) -> Option<u64> {
        match r {
            Read::Full(s) => s.usage_ns,
            _ => None,
        }
    }

    #[test]
    fn without_a_quota_only_every_tenth_tick_reads_the_full_figures() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cpu.max"), "max 100000\n").unwrap();
        write_stat(dir.path(), 1);
        let mut st = state(dir.path());
        let now = Duration::from_secs(1);
        assert_eq!(
            usage(&st.read(UNLIMITED_FULL_EVERY, false, false, now)),
            Some(1_000)
        );
        write_stat(dir.path(), 2);
        for _ in 1..UNLIMITED_FULL_EVERY {
            assert_eq!(
                st.read(UNLIMITED_FULL_EVERY, false, false, now),
                Read::QuotaOnly
            );
        }
        assert_eq!(
            usage(&st.read(UNLIMITED_FULL_EVERY, false, false, now)),
            Some(2_000)
        );
        // A container that has just stopped running is read in full at once.
        assert_eq!(
            st.read(UNLIMITED_FULL_EVERY, false, false, now),
            Read::QuotaOnly
        );
        write_stat(dir.path(), 4);
        assert_eq!(
            usage(&st.read(UNLIMITED_FULL_EVERY, false, true, now)),
            Some(4_000)
        );
        // A consumer that wants every tick gets every tick.
        write_stat(dir.path(), 3);
        assert_eq!(usage(&st.read(1, false, false, now)), Some(3_000));
    }

    #[test]
    fn a_quota_set_between_full_reads_is_read_in_full_at_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cpu.max"), "max 100000\n").unwrap();
        write_stat(dir.path(), 1);
        let mut st = state(dir.path());
        let now = Duration::from_secs(1);
        st.read(UNLIMITED_FULL_EVERY, false, false, now);
        assert_eq!(
            st.read(UNLIMITED_FULL_EVERY, false, false, now),
            Read::QuotaOnly
        );
        fs::write(dir.path().join("cpu.max"), "50000 100000\n").unwrap();
        let Read::Full(s) = st.read(UNLIMITED_FULL_EVERY, false, false, now) else {
            panic!("a new quota must be read in full");
        };
        assert_eq!(s.quota.map(|q| q.quota_us), Some(50_000));
        // With a quota, every tick is full.
        assert!(matches!(
            st.read(UNLIMITED_FULL_EVERY, false, false, now),
            Read::Full(_)
        ));
    }

    #[test]
    fn a_cgroup_removed_between_full_reads_reads_as_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("cg");
        fs::create_dir(&cg).unwrap();
        fs::write(cg.join("cpu.max"), "max 100000\n").unwrap();
        write_stat(&cg, 1);
        let mut st = state(&cg);
        let now = Duration::from_secs(1);
        st.read(UNLIMITED_FULL_EVERY, false, false, now);
        fs::remove_dir_all(&cg).unwrap();
        assert_eq!(
            st.read(UNLIMITED_FULL_EVERY, false, false, now),
            Read::Nothing
        );
    }

    #[test]
    fn a_quiet_container_is_not_read_unless_a_throttling_episode_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("cg");
        fs::create_dir(&cg).unwrap();
        fs::write(cg.join("cpu.max"), "50000 100000\n").unwrap();
        let stat = |periods: u64, throttled: u64, usage_usec: u64| {
            let text = format!(
                "usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\nnr_periods {periods}\n\
                 nr_throttled {throttled}\nthrottled_usec {}\n",
                throttled * 50_000
            );
            fs::write(cg.join("cpu.stat"), text).unwrap();
        };
        stat(0, 0, 0);
        let mut st = state(&cg);
        let at = |s| Duration::from_secs(s);
        let Read::Full(first) = st.read(UNLIMITED_FULL_EVERY, true, false, at(1)) else {
            panic!("the first look is always a read");
        };
        st.detector.observe(&first, None);
        // Quiet, not throttled: the files are not even looked at.
        fs::remove_file(cg.join("cpu.stat")).unwrap();
        assert_eq!(
            st.read(UNLIMITED_FULL_EVERY, true, false, at(2)),
            Read::QuotaOnly
        );
        // Throttled in every period: an episode opens, and while it is open every tick is
        // read, quiet or not (its end is seen from the figures).
        stat(10, 10, 500_000);
        let Read::Full(s) = st.read(UNLIMITED_FULL_EVERY, false, false, at(3)) else {
            panic!("a stirred container is read");
        };
        assert!(st.detector.observe(&s, None).is_some());
        assert!(st.detector.in_episode());
        stat(10, 10, 500_000);
        assert!(matches!(
            st.read(UNLIMITED_FULL_EVERY, true, false, at(4)),
            Read::Full(_)
        ));
    }
}
