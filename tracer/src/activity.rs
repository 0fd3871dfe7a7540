//! Which live containers may have changed since the last tick, from the kernel's run-queue
//! counts. A container none of whose threads was switched in since the last tick used no CPU,
//! allocated nothing and was not throttled: its cgroup files (CPU counters, memory usage)
//! read the same as last time, so the samplers skip them. An idle host of 100 sleeping
//! containers then costs almost what an empty one does.
//!
//! Limits, and what covers them:
//! - a thread running alone on a CPU is not switched in again while it runs: the run-queue
//!   program also notes what each CPU switched to last, and a container found running on a
//!   CPU at this tick or the last one counts as stirred. Where that is not known, every
//!   [`QUIET_CHECK_EVERY`] ticks a quiet container's CPU time (one file) is compared with what
//!   it was, and a container whose CPU time moved is read again;
//! - a quiet container's figures can still move without it running (the host reclaims its
//!   page cache; `docker update` changes a limit): it is read in full every
//!   [`QUIET_READ_EVERY`] ticks;
//! - a tick's reading can race the end of a burst: a container is read once more on the
//!   first quiet tick after activity, so its last figures are the settled ones;
//! - without run-queue counts (programs not attached, map unreadable) every container is
//!   read every tick.

use std::collections::{HashMap, HashSet};

use crate::runq::RunqDelta;

/// A quiet container's CPU time is checked every this many ticks.
pub const QUIET_CHECK_EVERY: u32 = 10;
/// A quiet container is read in full anyway every this many ticks.
pub const QUIET_READ_EVERY: u32 = 300;

#[derive(Debug, Clone, Copy)]
struct Quiet {
    /// Ticks since a thread of the container was last switched in (0: in this interval).
    ticks: u32,
    /// Its CPU time when it was last read.
    usage: Option<u64>,
}

/// Per live container (by the cgroup id its threads are counted under), how long it has been
/// quiet.
#[derive(Debug, Default)]
pub struct Activity {
    state: HashMap<u64, Quiet>,
    /// The containers to skip this tick.
    quiet: HashSet<u64>,
    /// The containers on their first quiet tick: to be read in full whatever the reader's own
    /// cadence, so that the figures that then stand are the settled ones.
    settling: HashSet<u64>,
    /// The cgroup ids running on the CPUs at the last tick, when known.
    last_running: Vec<u64>,
}

impl Activity {
    /// One tick. `live`: the cgroup ids of the live containers; `deltas`: the run-queue counts
    /// since the previous tick, `None` when they could not be read (then nothing is skipped);
    /// `running`: the cgroup ids each CPU last switched to, read after `deltas`, `None` when
    /// not known (then quiet containers' CPU time is checked with `usage`); `owner`: the live
    /// container's id for a cgroup below it (a container with its own cgroup tree), `None` for
    /// the host's; `usage`: a container's CPU time now.
    pub fn tick(
        &mut self,
        live: impl IntoIterator<Item = u64>,
        deltas: Option<&HashMap<u64, RunqDelta>>,
        running: Option<&[u64]>,
        owner: impl Fn(u64) -> Option<u64>,
        mut usage: impl FnMut(u64) -> Option<u64>,
    ) {
        self.quiet.clear();
        self.settling.clear();
        let last_running = std::mem::take(&mut self.last_running);
        let Some(deltas) = deltas else {
            self.state.clear();
            return;
        };
        let mut next = HashMap::with_capacity(self.state.len());
        for id in live {
            // New containers start stirred: there is nothing to compare with yet.
            let q = self.state.get(&id).map_or(
                Quiet {
                    ticks: 0,
                    usage: None,
                },
                |q| Quiet {
                    ticks: q.ticks.saturating_add(1),
                    ..*q
                },
            );
            next.insert(id, q);
        }
        let mut stir = |id: u64| {
            let id = if next.contains_key(&id) {
                Some(id)
            } else {
                owner(id)
            };
            if let Some(q) = id.and_then(|id| next.get_mut(&id)) {
                q.ticks = 0;
            }
        };
        for (id, d) in deltas {
            if d.count > 0 {
                stir(*id);
            }
        }
        // Whatever ran on a CPU across the last tick or runs on one now, switched in or not:
        // at the last tick it ran on after that reading; now, it came since.
        for &id in running.unwrap_or_default().iter().chain(&last_running) {
            stir(id);
        }
        for (&id, q) in &mut next {
            match q.ticks {
                0 => {}
                // The first quiet tick: read once more, and note the CPU time to compare with.
                1 => {
                    if running.is_none() {
                        q.usage = usage(id);
                    }
                    self.settling.insert(id);
                }
                n => {
                    if running.is_none() && n % QUIET_CHECK_EVERY == 0 {
                        let now = usage(id);
                        if now.is_none() || now != q.usage {
                            // It ran unseen: read it from now on as if it had been seen.
                            q.ticks = 0;
                            continue;
                        }
                    }
                    if n % QUIET_READ_EVERY != 0 {
                        self.quiet.insert(id);
                    }
                }
            }
        }
        self.state = next;
        if let Some(running) = running {
            self.last_running = running.to_vec();
        }
    }

    /// The cgroup ids of the containers to skip this tick.
    pub fn quiet(&self) -> &HashSet<u64> {
        &self.quiet
    }

    /// Whether a container is on its first quiet tick: readers that read less often than every
    /// tick read it now, since its figures will stand from here.
    pub fn settling(&self, cgroup_id: Option<u64>) -> bool {
        cgroup_id.is_some_and(|id| self.settling.contains(&id))
    }

    /// Whether a container is to be read this tick: not known quiet (an unknown cgroup id is
    /// always read).
    pub fn stirred(&self, cgroup_id: Option<u64>) -> bool {
        cgroup_id.is_none_or(|id| !self.quiet.contains(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(ids: &[u64]) -> HashMap<u64, RunqDelta> {
        ids.iter()
            .map(|&id| {
                let mut d = RunqDelta::between(None, &tracer_common::RunqHist::ZERO);
                d.count = 1;
                (id, d)
            })
            .collect()
    }

    fn none() -> HashMap<u64, RunqDelta> {
        // A cgroup in the map with no switch-in in this interval.
        HashMap::from([(7, RunqDelta::between(None, &tracer_common::RunqHist::ZERO))])
    }

    fn still(_: u64) -> Option<u64> {
        Some(5)
    }

    #[test]
    fn a_container_that_never_runs_is_read_twice_then_only_at_the_full_refresh() {
        let mut a = Activity::default();
        let mut reads = Vec::new();
        let mut checks = 0;
        for t in 0..=QUIET_READ_EVERY * 2 {
            a.tick(
                [7],
                Some(&none()),
                None,
                |_| None,
                |_| {
                    checks += 1;
                    Some(5)
                },
            );
            if a.stirred(Some(7)) {
                reads.push(t);
            }
        }
        assert_eq!(reads, [0, 1, QUIET_READ_EVERY, QUIET_READ_EVERY * 2]);
        // The baseline at tick 1, then one check every QUIET_CHECK_EVERY ticks.
        assert_eq!(checks, 1 + 2 * QUIET_READ_EVERY / QUIET_CHECK_EVERY);
    }

    #[test]
    fn a_running_container_is_read_every_tick_and_once_more_after() {
        let mut a = Activity::default();
        for _ in 0..5 {
            a.tick([7], Some(&none()), None, |_| None, still);
        }
        assert!(!a.stirred(Some(7)));
        a.tick([7], Some(&ran(&[7])), None, |_| None, still);
        assert!(a.stirred(Some(7)));
        a.tick([7], Some(&ran(&[7])), None, |_| None, still);
        assert!(a.stirred(Some(7)));
        assert!(!a.settling(Some(7)));
        // Stopped running: one more look at the settled figures, then quiet.
        a.tick([7], Some(&HashMap::new()), None, |_| None, still);
        assert!(a.stirred(Some(7)) && a.settling(Some(7)));
        a.tick([7], Some(&HashMap::new()), None, |_| None, still);
        assert!(!a.stirred(Some(7)) && !a.settling(Some(7)));
        assert_eq!(a.quiet(), &HashSet::from([7]));
    }

    #[test]
    fn cpu_time_that_moved_unseen_stirs_a_quiet_container_at_the_next_check() {
        let mut a = Activity::default();
        let mut usage = 5;
        let mut reads = Vec::new();
        for t in 0..40 {
            // A thread that spins alone on a CPU from tick 15 on: never switched in again.
            if t >= 15 {
                usage += 1;
            }
            a.tick([7], Some(&HashMap::new()), None, |_| None, |_| Some(usage));
            if a.stirred(Some(7)) {
                reads.push(t);
            }
        }
        // Read at 0 and 1, checked at 10 (same time), 20 (moved: read, and again at 21 with a
        // new baseline), then checked every 10 ticks from there, each time moved.
        assert_eq!(reads, [0, 1, 20, 21, 30, 31]);
    }

    #[test]
    fn a_container_found_running_on_a_cpu_is_stirred_without_reading_its_cpu_time() {
        let mut a = Activity::default();
        let mut reads = Vec::new();
        for t in 0..40u32 {
            // A thread of container 7, in a cgroup (70) below it, spins alone on a CPU from
            // tick 15 to tick 24: never switched in again after the first time (counted at 15).
            let running: &[u64] = if (15..25).contains(&t) {
                &[70, 1]
            } else {
                &[1]
            };
            let deltas = if t == 15 { ran(&[70]) } else { HashMap::new() };
            a.tick(
                [7],
                Some(&deltas),
                Some(running),
                |id| (id == 70).then_some(7),
                |_| panic!("no CPU time is read while what runs is known"),
            );
            if a.stirred(Some(7)) {
                reads.push(t);
            }
        }
        // First looks at 0 and 1; from 15 while it runs; 25, as it ran on after the reading
        // of 24; 26, the settled figures; then quiet.
        let want: Vec<u32> = [0, 1].into_iter().chain(15..=26).collect();
        assert_eq!(reads, want);
    }

    #[test]
    fn threads_in_a_cgroup_below_the_container_stir_it() {
        let mut a = Activity::default();
        for _ in 0..3 {
            a.tick([7, 8], Some(&HashMap::new()), None, |_| None, still);
        }
        assert!(!a.stirred(Some(7)) && !a.stirred(Some(8)));
        // 70 lies below container 7; 99 is the host's.
        a.tick(
            [7, 8],
            Some(&ran(&[70, 99])),
            None,
            |id| (id == 70).then_some(7),
            still,
        );
        assert!(a.stirred(Some(7)));
        assert!(!a.stirred(Some(8)));
    }

    #[test]
    fn without_run_queue_counts_everything_is_read() {
        let mut a = Activity::default();
        for _ in 0..3 {
            a.tick([7], Some(&HashMap::new()), None, |_| None, still);
        }
        assert!(!a.stirred(Some(7)));
        a.tick([7], None, None, |_| None, still);
        assert!(a.stirred(Some(7)));
        // And the count starts again from a first look.
        a.tick([7], Some(&HashMap::new()), None, |_| None, still);
        assert!(a.stirred(Some(7)));
        // A container without a cgroup id is always read.
        assert!(a.stirred(None));
    }

    #[test]
    fn unreadable_cpu_time_reads_the_container() {
        let mut a = Activity::default();
        let mut reads = 0;
        for _ in 0..=QUIET_CHECK_EVERY {
            a.tick([7], Some(&HashMap::new()), None, |_| None, |_| None);
            reads += usize::from(a.stirred(Some(7)));
        }
        assert_eq!(
            reads, 3,
            "read at 0, 1 and at the check that could not compare"
        );
    }

    #[test]
    fn containers_gone_are_forgotten() {
        let mut a = Activity::default();
        for _ in 0..3 {
            a.tick([7, 8], Some(&HashMap::new()), None, |_| None, still);
        }
        a.tick([8], Some(&HashMap::new()), None, |_| None, still);
        assert_eq!(a.quiet(), &HashSet::from([8]));
        assert_eq!(a.state.len(), 1);
    }
}
