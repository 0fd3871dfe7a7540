//! Figures over rounds, and what the bench reads from the machine: whole-machine CPU time
//! from `/proc/stat`, a process's CPU time and memory, the boot-time and wall clocks.

use std::time::Duration;

use anyhow::{Context, Result};
use procfs::{Current as _, CurrentSI as _};
use serde_json::{json, Value};

/// One figure measured once per round: reported as min, median and max over the rounds.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    pub values: Vec<f64>,
}

impl Figure {
    pub fn push(&mut self, v: f64) {
        if v.is_finite() {
            self.values.push(v);
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// The middle value (the mean of the two middle ones for an even count).
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// `{min, median, max, rounds, unit, values}` for report.json.
    pub fn json(&self, unit: &str) -> Value {
        let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        json!({
            "min": num(self.min()),
            "median": num(self.median()),
            "max": num(self.max()),
            "rounds": self.values.len(),
            "unit": unit,
            "values": self.values,
        })
    }

    /// `median [min..max]` with `prec` decimals, for the console.
    pub fn show(&self, prec: usize) -> String {
        if self.values.is_empty() {
            return "-".to_owned();
        }
        format!(
            "{:.prec$} [{:.prec$}..{:.prec$}]",
            self.median(),
            self.min(),
            self.max()
        )
    }
}

/// The p-th percentile (0..=100) of `values`, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Whole-machine CPU time spent busy (everything but idle and iowait), in seconds, since boot.
pub fn machine_busy_secs() -> Result<f64> {
    let stat = procfs::KernelStats::current().context("reading /proc/stat")?;
    let t = &stat.total;
    let ticks = t.user
        + t.nice
        + t.system
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    Ok(ticks as f64 / procfs::ticks_per_second().max(1) as f64)
}

/// A process of the benchmark, through procfs.
pub fn process(pid: u32) -> Result<procfs::process::Process> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    procfs::process::Process::new(pid).with_context(|| format!("reading /proc/{pid}"))
}

/// CPU time of a process: the sum of its threads' run time in nanoseconds
/// (`/proc/PID/task/TID/schedstat`), else utime + stime from `/proc/PID/stat`, whose clock
/// ticks (10 ms) are too coarse for a tracer's share of a storm of a few seconds. Threads that
/// ended are not in the sum: callers subtract with `saturating_sub`.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let p = process(pid)?;
    // A thread that ends between the listing and its read is left out, like one that ended
    // before: one such thread must not send the whole reading back to clock ticks.
    let threads: Option<u64> = p.tasks().ok().map(|tasks| {
        tasks
            .filter_map(|t| t.ok()?.schedstat().ok())
            .map(|s| s.sum_exec_runtime)
            .sum()
    });
    if let Some(ns) = threads.filter(|&ns| ns > 0) {
        return Ok(Duration::from_nanos(ns));
    }
    let stat = p
        .stat()
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let hz = procfs::ticks_per_second().max(1);
    Ok(Duration::from_micros(
        (stat.utime + stat.stime) * 1_000_000 / hz,
    ))
}

/// (VmRSS, VmHWM) of a process, in KiB.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = process(pid)?
        .status()
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok((
        status.vmrss.context("no VmRSS in /proc/PID/status")?,
        status.vmhwm.context("no VmHWM in /proc/PID/status")?,
    ))
}

/// Memory the machine has available, in MiB (MemAvailable).
pub fn mem_available_mib() -> Result<u64> {
    let m = procfs::Meminfo::current().context("reading /proc/meminfo")?;
    Ok(m.mem_available.unwrap_or(m.mem_free) / (1024 * 1024))
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(clock, &raw mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// CLOCK_BOOTTIME, the clock of the kernel's record stamps (`bpf_ktime_get_boot_ns`).
pub fn boot_ns() -> i128 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

/// CLOCK_REALTIME, ns since the epoch.
pub fn real_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Wall clock at boot (realtime - boottime), read as a pair as close together as we can: the
/// offset ctrace adds to a record's boot-time stamp to write its `ts`. Of three readings, the
/// one with the shortest bracket wins.
pub fn realtime_at_boot_ns() -> i128 {
    let mut best = (i128::MAX, 0);
    for _ in 0..3 {
        let b0 = boot_ns();
        let r = real_ns();
        let b1 = boot_ns();
        if b1 - b0 < best.0 {
            best = (b1 - b0, r - (b0 + b1) / 2);
        }
    }
    best.1
}

/// `2026-12-03T00:45:21.802856211Z` (what ctrace writes as `ts`) as ns since the epoch.
pub fn parse_rfc3339_ns(s: &str) -> Option<i128> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(str::parse::<i64>);
    let (h, mi, se) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    let days = days_from_civil(y, mo, da);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the usual era arithmetic).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_and_percentiles() {
        let mut f = Figure::default();
        for v in [3.0, 1.0, 2.0, 10.0] {
            f.push(v);
        }
        f.push(f64::NAN);
        assert_eq!(f.values.len(), 4);
        assert!((f.median() - 2.5).abs() < 1e-9);
        assert!((f.min() - 1.0).abs() < 1e-9 && (f.max() - 10.0).abs() < 1e-9);
        assert_eq!(f.json("x")["rounds"], 4);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&v, 50.0) - 50.0).abs() < 1e-9);
        assert!((percentile(&v, 99.0) - 99.0).abs() < 1e-9);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("2026-12-03T00:45:21.802856211Z"),
            Some(1_796_258_721_802_856_211)
        );
        assert_eq!(
            parse_rfc3339_ns("2000-03-01T00:00:01.5Z"),
            Some(951_868_801_500_000_000)
        );
        assert_eq!(parse_rfc3339_ns("2026-12-03 00:45:21Z"), None);
    }

    #[test]
    fn own_process_and_machine() {
        let me = std::process::id();
        assert!(cpu_time(me).is_ok());
        assert!(rss_kib(me).unwrap().0 > 0);
        assert!(machine_busy_secs().unwrap() > 0.0);
        let off = realtime_at_boot_ns();
        assert!(off > 0 && off < real_ns());
    }
}
