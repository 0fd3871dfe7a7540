//! One-line explanations of [`ThrottleEvent`]s (pure; amounts are formatted by
//! [`crate::units`]).
//!
//! ```text
//! slow (docker) throttled in 98% of CFS periods: quota 0.01 CPU (1ms/100ms); 0.99 s throttled in the last 1 s; runnable tasks waited p99 ≤ 95 ms (log2 histogram bound)
//! slow (docker) no longer throttled (3% of periods over the last 2 s)
//! ```

use super::detector::{ThrottleEvent, ThrottleKind};
use crate::units::{
    cpus_with_noun, format_ns, format_ns_against, format_percent, format_us_compact, format_window,
};

/// The one-line explanation of `event` for the container called `label` (e.g.
/// `slow (docker)`).
pub fn explain(label: &str, event: &ThrottleEvent) -> String {
    let window = format_window(event.interval);
    match event.kind {
        ThrottleKind::Start | ThrottleKind::Ongoing => {
            let still = if event.kind == ThrottleKind::Ongoing {
                "still "
            } else {
                ""
            };
            // The kernel sums throttled time over CPUs and books it at unthrottle, so it
            // can exceed the window a little through timing alone: flag clear excess only.
            let summed = if u128::from(event.throttled_ns) * 10 > event.interval.as_nanos() * 11 {
                " (summed over CPUs)"
            } else {
                ""
            };
            let mut line = format!(
                "{label} {still}throttled in {pct} of CFS periods: quota {cpus} ({q}/{p}); \
                 {thr} throttled{summed} in the last {window}",
                pct = format_percent(event.ratio),
                cpus = cpus_with_noun(event.quota_cpus),
                q = format_us_compact(event.quota_us),
                p = format_us_compact(event.period_us),
                thr = format_ns_against(event.throttled_ns, event.interval),
            );
            if let Some(rq) = event.runqueue {
                line.push_str("; runnable tasks waited p99 ≤ ");
                line.push_str(&format_ns(rq.p99_ns));
            }
            line
        }
        ThrottleKind::Stop if event.quota_removed => {
            format!("{label} no longer throttled (CPU quota removed)")
        }
        ThrottleKind::Stop if event.nr_periods == 0 => {
            format!("{label} no longer throttled (no CPU demand over the last {window})")
        }
        ThrottleKind::Stop => format!(
            "{label} no longer throttled ({} of periods over the last {window})",
            format_percent(event.ratio)
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::throttle::detector::RunqueueDelay;

    fn event(kind: ThrottleKind) -> ThrottleEvent {
        ThrottleEvent {
            kind,
            ratio: 0.98,
            throttled_ns: 990_000_000,
            interval: Duration::from_millis(1_007),
            quota_cpus: 0.01,
            quota_us: 1_000,
            period_us: 100_000,
            usage_cpus: Some(0.01),
            nr_periods: 50,
            nr_throttled: 49,
            pressure_some_us: None,
            runqueue: Some(RunqueueDelay {
                p50_ns: 40_000_000,
                p99_ns: 95_000_000,
            }),
            quota_removed: false,
        }
    }

    #[test]
    fn start_line_as_in_the_issue() {
        assert_eq!(
            explain("slow (docker)", &event(ThrottleKind::Start)),
            "slow (docker) throttled in 98% of CFS periods: quota 0.01 CPU (1ms/100ms); \
             0.99 s throttled in the last 1 s; runnable tasks waited p99 ≤ 95 ms"
        );
    }

    #[test]
    fn start_without_runqueue_and_ongoing() {
        let mut e = event(ThrottleKind::Ongoing);
        e.runqueue = None;
        e.interval = Duration::from_secs(10);
        e.throttled_ns = 9_700_000_000;
        e.ratio = 0.97;
        e.quota_cpus = 2.5;
        e.quota_us = 250_000;
        assert_eq!(
            explain("web (containerd)", &e),
            "web (containerd) still throttled in 97% of CFS periods: quota 2.5 CPUs \
             (250ms/100ms); 9.7 s throttled in the last 10 s"
        );
    }

    #[test]
    fn throttled_time_above_wall_time_is_flagged() {
        let mut e = event(ThrottleKind::Start);
        e.throttled_ns = 1_680_000_000;
        e.interval = Duration::from_secs(1);
        e.runqueue = None;
        assert!(
            explain("x", &e).ends_with("1.68 s throttled (summed over CPUs) in the last 1 s"),
            "{}",
            explain("x", &e)
        );
        e.throttled_ns = 10_030_000_000;
        e.interval = Duration::from_secs(10);
        assert!(
            explain("x", &e).ends_with("10 s throttled in the last 10 s"),
            "{}",
            explain("x", &e)
        );
    }

    #[test]
    fn stop_lines() {
        let mut e = event(ThrottleKind::Stop);
        e.ratio = 0.03;
        e.interval = Duration::from_secs(1);
        assert_eq!(
            explain("slow (docker)", &e),
            "slow (docker) no longer throttled (3% of periods over the last 1 s)"
        );
        e.interval = Duration::from_secs(2);
        e.ratio = 0.0;
        e.nr_periods = 0;
        assert_eq!(
            explain("slow (docker)", &e),
            "slow (docker) no longer throttled (no CPU demand over the last 2 s)"
        );
        e.quota_removed = true;
        assert_eq!(
            explain("slow (docker)", &e),
            "slow (docker) no longer throttled (CPU quota removed)"
        );
    }
}
