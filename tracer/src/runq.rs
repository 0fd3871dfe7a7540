//! Run-queue delay: turning the kernel's cumulative per-cgroup log2 histograms into per-interval
//! figures (count, mean, percentiles).

use std::collections::HashMap;

use tracer_common::{RunqHist, RUNQ_BUCKETS};

/// Run-queue delay of one cgroup over one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunqDelta {
    pub count: u64,
    pub sum_ns: u64,
    pub buckets: [u64; RUNQ_BUCKETS],
}

impl RunqDelta {
    /// `now - before`; a histogram that went backwards (the LRU map evicted and restarted
    /// the slot) counts from zero.
    pub fn between(before: Option<&RunqHist>, now: &RunqHist) -> Self {
        let base = match before {
            Some(b) if b.count <= now.count => *b,
            _ => RunqHist::ZERO,
        };
        let mut buckets = [0; RUNQ_BUCKETS];
        for (i, slot) in buckets.iter_mut().enumerate() {
            *slot = now.buckets[i].saturating_sub(base.buckets[i]);
        }
        Self {
            count: now.count - base.count,
            sum_ns: now.sum_ns.saturating_sub(base.sum_ns),
            buckets,
        }
    }

    pub fn mean_ns(&self) -> Option<u64> {
        (self.count > 0).then(|| self.sum_ns / self.count)
    }

    /// Upper bound, in ns, of the bucket holding quantile `q` (0..=1): the log2 histogram
    /// cannot be more precise than a factor of two.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some((1u64 << (i + 1)) * 1000);
            }
        }
        None
    }
}

/// Keeps the previous cumulative histograms to compute deltas per interval.
#[derive(Debug, Default)]
pub struct RunqTracker {
    last: HashMap<u64, RunqHist>,
}

impl RunqTracker {
    /// Deltas since the previous call, per cgroup id.
    pub fn advance(&mut self, now: HashMap<u64, RunqHist>) -> HashMap<u64, RunqDelta> {
        let out = now
            .iter()
            .map(|(cg, h)| (*cg, RunqDelta::between(self.last.get(cg), h)))
            .collect();
        self.last = now;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(usize, u64)]) -> RunqHist {
        let mut h = RunqHist::ZERO;
        for &(b, n) in pairs {
            h.buckets[b] += n;
            h.count += n;
            h.sum_ns += n * (1 << b) * 1000;
        }
        h
    }

    #[test]
    fn quantiles_from_buckets() {
        // 98 short waits (< 2 µs) and 2 of ~64 ms.
        let d = RunqDelta::between(None, &hist(&[(0, 98), (16, 2)]));
        assert_eq!(d.count, 100);
        assert_eq!(d.quantile_ns(0.5), Some(2_000));
        assert_eq!(d.quantile_ns(0.98), Some(2_000));
        assert_eq!(d.quantile_ns(0.99), Some((1 << 17) * 1000));
        let empty = RunqDelta::between(None, &RunqHist::ZERO);
        assert_eq!((empty.quantile_ns(0.5), empty.mean_ns()), (None, None));
    }

    #[test]
    fn deltas_and_resets() {
        let mut t = RunqTracker::default();
        let first = t.advance(HashMap::from([(7, hist(&[(3, 10)]))]));
        assert_eq!(first[&7].count, 10);
        let second = t.advance(HashMap::from([(7, hist(&[(3, 10), (5, 4)]))]));
        assert_eq!(second[&7].count, 4);
        assert_eq!(second[&7].buckets[5], 4);
        assert_eq!(second[&7].buckets[3], 0);
        // Evicted and restarted: counts from zero.
        let third = t.advance(HashMap::from([(7, hist(&[(1, 2)]))]));
        assert_eq!(third[&7].count, 2);
    }
}
