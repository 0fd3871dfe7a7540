//! Amounts for people and from the command line (pure): bytes ([`bytes`], [`parse_size`]),
//! CPUs ([`format_cpus`], [`cpus_with_noun`]), durations ([`format_ns`], [`short_duration`],
//! [`parse_duration`], ...) and shares ([`format_percent`]). Every explanation, table and
//! report formats its amounts here, so the same amount reads the same everywhere.
//!
//! ```text
//! 100 MiB   2.1 MiB   1.5 KiB   512 B        bytes
//! 0.01 CPU  0.5 CPU   2.5 CPUs               cpus_with_noun
//! 95 ms     0.99 s    12.3 s                 format_ns, format_ns_against
//! 850ms     12.5s     3m20s                  short_duration
//! ```

use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Bytes.

const BYTE_UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// Binary units, one decimal unless within 0.05 of a whole number: `512 B`, `1.5 KiB`,
/// `100 MiB`, `98.5 MiB`, `2 MiB` for 2.04 MiB; an amount that rounds to 1024 of a unit is
/// one of the next (`1 MiB`, not `1024 KiB`). `u64::MAX` is `16 EiB`.
pub fn bytes(b: u64) -> String {
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < BYTE_UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else if (v - v.round()).abs() < 0.05 {
        if v.round() >= 1024.0 && u < BYTE_UNITS.len() - 1 {
            format!("1 {}", BYTE_UNITS[u + 1])
        } else {
            format!("{v:.0} {}", BYTE_UNITS[u])
        }
    } else {
        format!("{v:.1} {}", BYTE_UNITS[u])
    }
}

/// One unit for a series of byte counts whose largest is `max`: (divisor, name), at most
/// GiB. Pair with [`short_number`].
pub fn bytes_series_unit(max: u64) -> (f64, &'static str) {
    match max {
        m if m >= 1 << 30 => ((1u64 << 30) as f64, "GiB"),
        m if m >= 1 << 20 => ((1u64 << 20) as f64, "MiB"),
        m if m >= 1 << 10 => (1024.0, "KiB"),
        _ => (1.0, "B"),
    }
}

/// A number in a series: one decimal below 10 when it has a fraction, none otherwise
/// (`2.2`, `42`, `7`).
pub fn short_number(v: f64) -> String {
    if v < 10.0 && v.fract() != 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// `512MiB`, `2GiB`, `100M`, `4096` (bytes); units are binary and case-blind (`k`, `KB`,
/// `KiB` all mean 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => {
            return Err(format!(
                "unknown size unit {u:?} in {s:?} (use KiB, MiB, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

// ---------------------------------------------------------------------------------------
// CPUs.

/// `v` with at most `decimals` decimals, trailing zeros removed (`0.50` → `0.5`, `1.0` → `1`).
fn trimmed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A number of CPUs: `0.01`, `0.5`, `1`, `2.5`, `0.125` (up to three decimals; `<0.001`
/// for smaller positive amounts; `0` for none, negative or not a number).
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

/// [`format_cpus`] and its noun, `CPU` up to one and `CPUs` above: `0.01 CPU`, `1 CPU`,
/// `2.5 CPUs` (and `1 CPU` for 1.0004, which reads as one).
pub fn cpus_with_noun(cpus: f64) -> String {
    let text = format_cpus(cpus);
    let noun = if cpus > 1.0 && text != "1" {
        "CPUs"
    } else {
        "CPU"
    };
    format!("{text} {noun}")
}

// ---------------------------------------------------------------------------------------
// Durations.

const TIME_UNITS: [(f64, &str); 4] = [(1.0, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")];

/// Index in [`TIME_UNITS`] of the largest unit that `ns` fills at least once.
fn unit_index(ns: f64) -> usize {
    TIME_UNITS
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
        let (scale, name) = TIME_UNITS[unit];
        let v = ns / scale;
        let decimals = if coarse {
            usize::from(v < 10.0)
        } else {
            decimals_for(v)
        };
        let text = trimmed(v, decimals);
        // 999.7 µs rounds to "1000": say 1 ms instead.
        if unit + 1 < TIME_UNITS.len()
            && text
                .parse::<f64>()
                .is_ok_and(|r| r * scale >= TIME_UNITS[unit + 1].0)
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
    let (scale, name) = TIME_UNITS[ref_unit];
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

/// A span in a note, compact: `850ms`, `5s`, `12.5s` (tenths truncated), `3m20s`.
pub fn short_duration(ns: u64) -> String {
    let ms = ns / 1_000_000;
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => {
            let tenths = ms / 100;
            if tenths.is_multiple_of(10) {
                format!("{}s", tenths / 10)
            } else {
                format!("{}.{}s", tenths / 10, tenths % 10)
            }
        }
        _ => format!("{}m{}s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// Seconds with one decimal unless within 0.05 of a whole number: `8.5 s`, `80 s`, `-1 s`.
pub fn seconds(ns: i64) -> String {
    let s = ns as f64 / 1e9;
    if (s - s.round()).abs() < 0.05 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// A table cell: whole milliseconds from 1 ms (`12ms`), whole microseconds below (`500us`).
pub fn ms_or_us(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}us", ns / 1000)
    }
}

/// `7d`, `12h`, `30m`, `45s`, `500ms`, `1.5h`, `2w`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 7d, 12h, 30m, 45s)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        "w" => n * 7.0 * 86400.0,
        u => {
            return Err(format!(
                "unknown duration unit {u:?} in {s:?} (use ms, s, m, h, d, w)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a duration"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is too long"))
}

// ---------------------------------------------------------------------------------------
// Shares.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_amounts() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1), "1 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1025), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(512 << 10), "512 KiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1 MiB");
        assert_eq!(bytes((1 << 20) - 60), "1023.9 KiB");
        assert_eq!(bytes(100 << 20), "100 MiB");
        assert_eq!(bytes((100 << 20) - (100 << 10)), "99.9 MiB");
        assert_eq!(bytes(2_202_009), "2.1 MiB");
        assert_eq!(bytes(2_516_582), "2.4 MiB");
        // Within 0.05 of a whole number: whole.
        assert_eq!(bytes((2 << 20) + (40 << 10)), "2 MiB");
        assert_eq!(bytes((1 << 20) * 98 + (1 << 19)), "98.5 MiB");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(1536 << 20), "1.5 GiB");
        assert_eq!(bytes(1 << 40), "1 TiB");
        assert_eq!(bytes(1 << 50), "1 PiB");
        assert_eq!(bytes(1 << 60), "1 EiB");
        assert_eq!(bytes(u64::MAX), "16 EiB");
    }

    #[test]
    fn byte_series() {
        assert_eq!(bytes_series_unit(0), (1.0, "B"));
        assert_eq!(bytes_series_unit(1023), (1.0, "B"));
        assert_eq!(bytes_series_unit(1024), (1024.0, "KiB"));
        assert_eq!(bytes_series_unit(100 << 20), ((1 << 20) as f64, "MiB"));
        assert_eq!(bytes_series_unit(u64::MAX), ((1 << 30) as f64, "GiB"));
        assert_eq!(short_number(2.25), "2.2");
        assert_eq!(short_number(42.4), "42");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(7.0), "7");
        assert_eq!(short_number(9.96), "10.0");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size(" 1 kb "), Ok(1024));
        assert_eq!(parse_size("1023b"), Ok(1023));
        assert_eq!(parse_size("3TiB"), Ok(3 << 40));
        assert_eq!(parse_size(&u64::MAX.to_string()), Ok(u64::MAX));
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("16777216T").is_err(), "overflows u64");
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
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
        assert_eq!(format_cpus(-0.5), "0");
        assert_eq!(format_cpus(f64::NAN), "0");
        assert_eq!(format_cpus(f64::INFINITY), "0");
        assert_eq!(format_cpus(16.0), "16");
        assert_eq!(format_cpus(1.9999), "2");
        assert_eq!(cpus_with_noun(0.01), "0.01 CPU");
        assert_eq!(cpus_with_noun(0.5), "0.5 CPU");
        assert_eq!(cpus_with_noun(1.0), "1 CPU");
        assert_eq!(cpus_with_noun(1.5), "1.5 CPUs");
        assert_eq!(cpus_with_noun(2.0), "2 CPUs");
        assert_eq!(cpus_with_noun(1.0004), "1 CPU");
        assert_eq!(cpus_with_noun(1.0006), "1.001 CPUs");
        assert_eq!(cpus_with_noun(0.0), "0 CPU");
        assert_eq!(cpus_with_noun(0.0001), "<0.001 CPU");
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
        assert_eq!(format_ns(u64::MAX), "18446744074 s");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5 ms");
        assert_eq!(format_duration(Duration::MAX), "18446744074 s");
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
    fn compact_durations() {
        assert_eq!(short_duration(0), "0ms");
        assert_eq!(short_duration(850_000_000), "850ms");
        assert_eq!(short_duration(999_999_999), "999ms");
        assert_eq!(short_duration(1_000_000_000), "1s");
        assert_eq!(short_duration(5_000_000_000), "5s");
        assert_eq!(short_duration(12_599_000_000), "12.5s");
        assert_eq!(short_duration(59_999_000_000), "59.9s");
        assert_eq!(short_duration(200_000_000_000), "3m20s");
        assert_eq!(short_duration(u64::MAX), "307445734m33s");
        assert_eq!(seconds(0), "0 s");
        assert_eq!(seconds(8_500_000_000), "8.5 s");
        assert_eq!(seconds(80_020_000_000), "80 s");
        assert_eq!(seconds(-1_000_000_000), "-1 s");
        assert_eq!(ms_or_us(0), "0us");
        assert_eq!(ms_or_us(999_999), "999us");
        assert_eq!(ms_or_us(1_000_000), "1ms");
        assert_eq!(ms_or_us(12_900_000), "12ms");
    }

    #[test]
    fn duration_arguments() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("30min"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 45 s "), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("7 fortnights").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e400").is_err());
        assert!(parse_duration(&format!("{}w", u64::MAX)).is_err());
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
