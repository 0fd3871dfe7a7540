//! One-line explanations of [`ThrottleEvent`]s, and the number formatting they use (pure).
//!
//! ```text
//! slow (docker) throttled in 98% of CFS periods: quota 0.01 CPU (1ms/100ms); 0.99 s throttled in the last 1 s; runnable tasks waited p99 ≤ 95 ms (log2 histogram bound)
//! slow (docker) no longer throttled (3% of periods over the last 2 s)
//! ```

use std::time::Duration;

use super::detector::{ThrottleEvent, ThrottleKind};

const UNITS: [(f64, &str); 4] = [(1.0, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")];

/// `v` with at most `decimals` decimals, trailing zeros removed (`0.50` → `0.5`, `1.0` → `1`).
fn trimmed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Index in [`UNITS`] of the largest unit that `ns` fills at least once.
fn unit_index(ns: f64) -> usize {
    UNITS
        .iter()
        .rposition(|(scale, _)| ns >= *scale)
        .unwrap_or(0)
}

/// Decimals for about three significant digits.
fn decimals_for(v: f64) -> usize {
    if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    }
}

fn format_scaled(ns: f64, sep: &str, coarse: bool) -> String {
    let mut unit = unit_index(ns);
    loop {
        let (scale, name) = UNITS[unit];
        let v = ns / scale;
        let decimals = if coarse {
            usize::from(v < 10.0)
        } else {
            decimals_for(v)
        };
        let text = trimmed(v, decimals);
        // 999.7 µs rounds to "1000": say 1 ms instead.
        if unit + 1 < UNITS.len()
            && text
                .parse::<f64>()
                .is_ok_and(|r| r * scale >= UNITS[unit + 1].0)
        {
            unit += 1;
            continue;
        }
        return format!("{text}{sep}{name}");
    }
}

/// A duration in ns for people: `850 ns`, `950 µs`, `1.25 ms`, `95 ms`, `0.99 s` is
/// written `990 ms`, `12.3 s`, `600 s` (about three significant digits).
pub fn format_ns(ns: u64) -> String {
    format_scaled(ns as f64, " ", false)
}

/// [`format_ns`] of a [`Duration`].
pub fn format_duration(d: Duration) -> String {
    format_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A window length, coarser: one decimal below 10 units, none above (`1 s` for 1.007 s).
pub fn format_window(d: Duration) -> String {
    format_scaled(d.as_nanos() as f64, " ", true)
}

/// `ns` in the unit of `reference` (with two decimals) when it is at least a tenth of that
/// unit, so that amounts read against a window compare at a glance: 990 ms against 1 s is
/// `0.99 s`; otherwise as [`format_ns`].
pub fn format_ns_against(ns: u64, reference: Duration) -> String {
    let ref_unit = unit_index(reference.as_nanos() as f64);
    let (scale, name) = UNITS[ref_unit];
    let v = ns as f64 / scale;
    if unit_index(ns as f64) < ref_unit && v >= 0.1 {
        format!("{} {name}", trimmed(v, 2))
    } else {
        format_ns(ns)
    }
}

/// A µs amount without a space, as in a quota: `1ms`, `12.5ms`, `100ms`, `500µs`, `1s`.
pub fn format_us_compact(us: u64) -> String {
    format_scaled(us as f64 * 1e3, "", false)
}

/// A number of CPUs: `0.01`, `0.5`, `1`, `2.5`, `0.125` (up to three decimals; `<0.001`
/// for smaller positive amounts).
pub fn format_cpus(cpus: f64) -> String {
    if !cpus.is_finite() || cpus <= 0.0 {
        return "0".to_owned();
    }
    let text = trimmed(cpus, 3);
    if text == "0" {
        "<0.001".to_owned()
    } else {
        text
    }
}

/// `CPU` up to one, `CPUs` above (`0.5 CPU`, `2 CPUs`).
pub fn cpu_noun(cpus: f64) -> &'static str {
    if cpus > 1.0 {
        "CPUs"
    } else {
        "CPU"
    }
}

/// A share as a whole percentage that never rounds to a false extreme: `<1%` for a tiny
/// non-zero share, `>99%` for almost all, `0%` and `100%` only when exact.
pub fn format_percent(ratio: f64) -> String {
    let ratio = if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pct = (ratio * 100.0).round();
    if ratio > 0.0 && pct < 1.0 {
        "<1%".to_owned()
    } else if ratio < 1.0 && pct >= 100.0 {
        ">99%".to_owned()
    } else {
        format!("{pct:.0}%")
    }
}

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
                "{label} {still}throttled in {pct} of CFS periods: quota {cpus} {noun} ({q}/{p}); \
                 {thr} throttled{summed} in the last {window}",
                pct = format_percent(event.ratio),
                cpus = format_cpus(event.quota_cpus),
                noun = cpu_noun(event.quota_cpus),
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

    #[test]
    fn cpus() {
        assert_eq!(format_cpus(0.01), "0.01");
        assert_eq!(format_cpus(0.5), "0.5");
        assert_eq!(format_cpus(1.0), "1");
        assert_eq!(format_cpus(2.5), "2.5");
        assert_eq!(format_cpus(0.125), "0.125");
        assert_eq!(format_cpus(1.0 / 3.0), "0.333");
        assert_eq!(format_cpus(0.001), "0.001");
        assert_eq!(format_cpus(0.0004), "<0.001");
        assert_eq!(format_cpus(0.0), "0");
        assert_eq!(format_cpus(f64::NAN), "0");
        assert_eq!(format_cpus(16.0), "16");
        assert_eq!(cpu_noun(0.01), "CPU");
        assert_eq!(cpu_noun(1.0), "CPU");
        assert_eq!(cpu_noun(1.5), "CPUs");
    }

    #[test]
    fn durations() {
        assert_eq!(format_ns(0), "0 ns");
        assert_eq!(format_ns(850), "850 ns");
        assert_eq!(format_ns(950_000), "950 µs");
        assert_eq!(format_ns(1_000_000), "1 ms");
        assert_eq!(format_ns(1_250_000), "1.25 ms");
        assert_eq!(format_ns(95_000_000), "95 ms");
        assert_eq!(format_ns(95_440_000), "95.4 ms");
        assert_eq!(format_ns(990_000_000), "990 ms");
        assert_eq!(format_ns(999_700), "1 ms");
        assert_eq!(format_ns(999_999_999), "1 s");
        assert_eq!(format_ns(12_345_000_000), "12.3 s");
        assert_eq!(format_ns(600_000_000_000), "600 s");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5 ms");
        assert_eq!(format_window(Duration::from_millis(1_007)), "1 s");
        assert_eq!(format_window(Duration::from_millis(2_460)), "2.5 s");
        assert_eq!(format_window(Duration::from_millis(10_040)), "10 s");
        assert_eq!(format_window(Duration::from_millis(500)), "500 ms");
        assert_eq!(
            format_ns_against(990_000_000, Duration::from_secs(1)),
            "0.99 s"
        );
        assert_eq!(
            format_ns_against(150_000_000, Duration::from_secs(1)),
            "0.15 s"
        );
        assert_eq!(format_ns_against(5_000_000, Duration::from_secs(1)), "5 ms");
        assert_eq!(
            format_ns_against(2_500_000_000, Duration::from_secs(1)),
            "2.5 s"
        );
        assert_eq!(
            format_ns_against(900_000, Duration::from_millis(5)),
            "0.9 ms"
        );
        assert_eq!(format_us_compact(1_000), "1ms");
        assert_eq!(format_us_compact(100_000), "100ms");
        assert_eq!(format_us_compact(12_500), "12.5ms");
        assert_eq!(format_us_compact(500), "500µs");
        assert_eq!(format_us_compact(1_000_000), "1s");
    }

    #[test]
    fn percentages() {
        assert_eq!(format_percent(0.98), "98%");
        assert_eq!(format_percent(1.0), "100%");
        assert_eq!(format_percent(1489.0 / 1490.0), ">99%");
        assert_eq!(format_percent(0.0), "0%");
        assert_eq!(format_percent(0.001), "<1%");
        assert_eq!(format_percent(0.105), "11%");
        assert_eq!(format_percent(2.0), "100%");
        assert_eq!(format_percent(f64::NAN), "0%");
    }
}
