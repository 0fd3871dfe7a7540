//! cgroup CPU files: pure parsers for cgroup v1 and v2, a normalized [`CpuSample`], and the
//! thin readers ([`read_sample`], [`CpuPaths::for_cgroup`]) that are this module's only I/O.
//!
//! | data             | cgroup v1 (`cpu`, `cpuacct`)                   | cgroup v2                   |
//! |------------------|------------------------------------------------|-----------------------------|
//! | quota            | `cpu.cfs_quota_us` (`-1` = none) + `cpu.cfs_period_us` | `cpu.max` (`max 100000` = none) |
//! | periods          | `cpu.stat` `nr_periods`, `nr_throttled`        | same keys in `cpu.stat`     |
//! | throttled time   | `cpu.stat` `throttled_time` (ns)               | `cpu.stat` `throttled_usec` |
//! | usage            | `cpuacct.usage` (ns)                           | `cpu.stat` `usage_usec`     |
//! | pressure (PSI)   | `cpu.pressure` of the same cgroup in the unified hierarchy (hybrid hosts) | `cpu.pressure` |
//!
//! Everything that can be missing is an `Option`: "no data" never turns into 0.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::Duration,
};

/// Longest piece of offending input kept in a [`ParseError`].
const MAX_QUOTED: usize = 60;

/// Why the content of a cgroup file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The file was empty (or only whitespace).
    #[error("empty file")]
    Empty,
    /// A value that should have been a number was not.
    #[error("not a number: {0:?}")]
    NotANumber(String),
    /// A number outside what the kernel writes (e.g. a zero period).
    #[error("invalid value {value:?}: {why}")]
    Invalid {
        /// The offending text.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A line that does not have the expected shape.
    #[error("line {line}: unexpected {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A key that appears twice.
    #[error("duplicate key {0:?}")]
    Duplicate(String),
    /// None of the keys this file must have.
    #[error("none of the expected keys")]
    NoKnownKeys,
}

fn quoted(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_QUOTED).collect();
    if s.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

fn parse_u64(s: &str) -> Result<u64, ParseError> {
    s.parse::<u64>()
        .map_err(|_| ParseError::NotANumber(quoted(s)))
}

fn single_token(text: &str) -> Result<&str, ParseError> {
    let mut tokens = text.split_whitespace();
    let first = tokens.next().ok_or(ParseError::Empty)?;
    if tokens.next().is_some() {
        return Err(ParseError::BadLine {
            line: 1,
            text: quoted(text.trim()),
        });
    }
    Ok(first)
}

/// A CFS bandwidth limit: the cgroup may run `quota_us` of CPU time every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// CPU time allowed per period, in µs.
    pub quota_us: u64,
    /// Length of a period, in µs (> 0).
    pub period_us: u64,
}

impl Quota {
    /// The limit in CPUs (`docker run --cpus`): `quota_us / period_us`, e.g. 0.01.
    pub fn cpus(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

fn checked_quota(quota_us: u64, period_us: u64, text: &str) -> Result<Quota, ParseError> {
    if period_us == 0 {
        return Err(ParseError::Invalid {
            value: quoted(text.trim()),
            why: "period is 0",
        });
    }
    if quota_us == 0 {
        return Err(ParseError::Invalid {
            value: quoted(text.trim()),
            why: "quota is 0",
        });
    }
    Ok(Quota {
        quota_us,
        period_us,
    })
}

/// v1 `cpu.cfs_quota_us`: `Some(µs)`, or `None` for `-1` (no quota).
pub fn parse_v1_cfs_quota_us(text: &str) -> Result<Option<u64>, ParseError> {
    let token = single_token(text)?;
    if token == "-1" {
        return Ok(None);
    }
    match token.parse::<i64>() {
        Ok(v) if v > 0 => Ok(Some(v.unsigned_abs())),
        Ok(_) => Err(ParseError::Invalid {
            value: quoted(token),
            why: "quota must be -1 or positive",
        }),
        Err(_) => Err(ParseError::NotANumber(quoted(token))),
    }
}

/// v1 `cpu.cfs_period_us`, in µs (> 0).
pub fn parse_v1_cfs_period_us(text: &str) -> Result<u64, ParseError> {
    let token = single_token(text)?;
    let period = parse_u64(token)?;
    if period == 0 {
        return Err(ParseError::Invalid {
            value: quoted(token),
            why: "period is 0",
        });
    }
    Ok(period)
}

/// v1 quota from the contents of `cpu.cfs_quota_us` and `cpu.cfs_period_us`; `None` when
/// there is no quota. The period is only needed (and only parsed) when a quota is set.
pub fn parse_v1_quota(
    cfs_quota_us: &str,
    cfs_period_us: Option<&str>,
) -> Result<Option<Quota>, ParseError> {
    let Some(quota_us) = parse_v1_cfs_quota_us(cfs_quota_us)? else {
        return Ok(None);
    };
    let period_text = cfs_period_us.ok_or(ParseError::Invalid {
        value: quoted(cfs_quota_us.trim()),
        why: "quota without cpu.cfs_period_us",
    })?;
    let period_us = parse_v1_cfs_period_us(period_text)?;
    checked_quota(quota_us, period_us, cfs_quota_us).map(Some)
}

/// v1 `cpuacct.usage`: total CPU time of the cgroup, in ns.
pub fn parse_v1_cpuacct_usage(text: &str) -> Result<u64, ParseError> {
    parse_u64(single_token(text)?)
}

/// v2 `cpu.max`: `max <period>` (or just `max`) means no quota, else `<quota> <period>`.
pub fn parse_v2_cpu_max(text: &str) -> Result<Option<Quota>, ParseError> {
    let mut tokens = text.split_whitespace();
    let quota = tokens.next().ok_or(ParseError::Empty)?;
    let period = tokens.next();
    if tokens.next().is_some() {
        return Err(ParseError::BadLine {
            line: 1,
            text: quoted(text.trim()),
        });
    }
    if quota == "max" {
        if let Some(p) = period {
            parse_u64(p)?;
        }
        return Ok(None);
    }
    let quota_us = parse_u64(quota)?;
    let period_us = parse_u64(period.ok_or(ParseError::Invalid {
        value: quoted(text.trim()),
        why: "quota without period",
    })?)?;
    checked_quota(quota_us, period_us, text).map(Some)
}

/// Parses a flat keyed file (`key value` per line). Known keys must carry exactly one
/// unsigned number and appear once; unknown keys are skipped whatever their value, so new
/// kernel keys do not break the parser. At least one known key must be present.
fn parse_flat_keyed<const N: usize>(
    text: &str,
    keys: [&str; N],
) -> Result<[Option<u64>; N], ParseError> {
    let mut out = [None; N];
    let mut found = false;
    for (i, line) in text.lines().enumerate() {
        let mut tokens = line.split_whitespace();
        let Some(key) = tokens.next() else { continue };
        let Some(slot) = keys.iter().position(|k| *k == key) else {
            continue;
        };
        let (Some(value), None) = (tokens.next(), tokens.next()) else {
            return Err(ParseError::BadLine {
                line: i + 1,
                text: quoted(line.trim()),
            });
        };
        if out[slot].is_some() {
            return Err(ParseError::Duplicate(key.to_owned()));
        }
        out[slot] = Some(parse_u64(value)?);
        found = true;
    }
    if !found {
        return Err(if text.trim().is_empty() {
            ParseError::Empty
        } else {
            ParseError::NoKnownKeys
        });
    }
    Ok(out)
}

/// v1 `cpu.stat` (`cpu` controller). Absent keys stay `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V1CpuStat {
    /// Enforcement periods that elapsed with runnable tasks.
    pub nr_periods: Option<u64>,
    /// Periods in which the cgroup ran out of quota.
    pub nr_throttled: Option<u64>,
    /// Total time the cgroup's run queues spent throttled, in ns (summed over CPUs).
    pub throttled_time_ns: Option<u64>,
    /// Periods in which burst was used (5.14+).
    pub nr_bursts: Option<u64>,
    /// Total burst time used, in ns (5.14+).
    pub burst_time_ns: Option<u64>,
}

/// Parses v1 `cpu.stat`.
pub fn parse_v1_cpu_stat(text: &str) -> Result<V1CpuStat, ParseError> {
    let [nr_periods, nr_throttled, throttled_time_ns, nr_bursts, burst_time_ns] = parse_flat_keyed(
        text,
        [
            "nr_periods",
            "nr_throttled",
            "throttled_time",
            "nr_bursts",
            "burst_time",
        ],
    )?;
    Ok(V1CpuStat {
        nr_periods,
        nr_throttled,
        throttled_time_ns,
        nr_bursts,
        burst_time_ns,
    })
}

/// v2 `cpu.stat`. The usage keys are always there; the bandwidth keys only when the `cpu`
/// controller is enabled for the cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V2CpuStat {
    /// Total CPU time, in µs.
    pub usage_usec: Option<u64>,
    /// User CPU time, in µs.
    pub user_usec: Option<u64>,
    /// System CPU time, in µs.
    pub system_usec: Option<u64>,
    /// Enforcement periods that elapsed with runnable tasks.
    pub nr_periods: Option<u64>,
    /// Periods in which the cgroup ran out of quota.
    pub nr_throttled: Option<u64>,
    /// Total time throttled, in µs.
    pub throttled_usec: Option<u64>,
    /// Periods in which burst was used.
    pub nr_bursts: Option<u64>,
    /// Total burst time used, in µs.
    pub burst_usec: Option<u64>,
}

/// Parses v2 `cpu.stat`.
pub fn parse_v2_cpu_stat(text: &str) -> Result<V2CpuStat, ParseError> {
    let [usage_usec, user_usec, system_usec, nr_periods, nr_throttled, throttled_usec, nr_bursts, burst_usec] =
        parse_flat_keyed(
            text,
            [
                "usage_usec",
                "user_usec",
                "system_usec",
                "nr_periods",
                "nr_throttled",
                "throttled_usec",
                "nr_bursts",
                "burst_usec",
            ],
        )?;
    Ok(V2CpuStat {
        usage_usec,
        user_usec,
        system_usec,
        nr_periods,
        nr_throttled,
        throttled_usec,
        nr_bursts,
        burst_usec,
    })
}

/// One line of a PSI file.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PressureLine {
    /// Share of wall time stalled over the last 10 s, in percent.
    pub avg10: Option<f64>,
    /// Same over 60 s.
    pub avg60: Option<f64>,
    /// Same over 300 s.
    pub avg300: Option<f64>,
    /// Total stall time, in µs.
    pub total_us: u64,
}

/// A PSI file (`cpu.pressure`): `some` always, `full` on 5.13+ kernels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    /// Some tasks of the cgroup were runnable but not running.
    pub some: PressureLine,
    /// All non-idle tasks were stalled at once.
    pub full: Option<PressureLine>,
}

fn parse_pressure_line(line_no: usize, rest: &str) -> Result<PressureLine, ParseError> {
    let mut line = PressureLine::default();
    let mut total = None;
    for field in rest.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            return Err(ParseError::BadLine {
                line: line_no,
                text: quoted(field),
            });
        };
        let avg = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| ParseError::NotANumber(quoted(value)))
        };
        match key {
            "avg10" => line.avg10 = Some(avg()?),
            "avg60" => line.avg60 = Some(avg()?),
            "avg300" => line.avg300 = Some(avg()?),
            "total" => total = Some(parse_u64(value)?),
            _ => {}
        }
    }
    line.total_us = total.ok_or(ParseError::BadLine {
        line: line_no,
        text: quoted(rest.trim()),
    })?;
    Ok(line)
}

/// Parses a PSI file such as `cpu.pressure`.
pub fn parse_pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut some = None;
    let mut full = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let slot = match kind {
            "some" => &mut some,
            "full" => &mut full,
            _ => {
                return Err(ParseError::BadLine {
                    line: i + 1,
                    text: quoted(line),
                })
            }
        };
        if slot.is_some() {
            return Err(ParseError::Duplicate(kind.to_owned()));
        }
        *slot = Some(parse_pressure_line(i + 1, rest)?);
    }
    match (some, full) {
        (Some(some), full) => Ok(Pressure { some, full }),
        (None, _) if text.trim().is_empty() => Err(ParseError::Empty),
        (None, _) => Err(ParseError::NoKnownKeys),
    }
}

/// Whether a `cgroup.controllers` file lists the `cpu` controller.
pub fn controllers_include_cpu(text: &str) -> bool {
    text.split_whitespace().any(|c| c == "cpu")
}

/// One CPU accounting snapshot of a cgroup, the same for v1 and v2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuSample {
    /// When it was taken (monotonic clock, see [`monotonic_now`]).
    pub at: Duration,
    /// The CFS quota; `None` when there is none (or it could not be read).
    pub quota: Option<Quota>,
    /// `nr_periods` (cumulative).
    pub nr_periods: Option<u64>,
    /// `nr_throttled` (cumulative).
    pub nr_throttled: Option<u64>,
    /// Throttled time, in ns (cumulative).
    pub throttled_ns: Option<u64>,
    /// CPU time used, in ns (cumulative).
    pub usage_ns: Option<u64>,
    /// PSI `some` total of `cpu.pressure`, in µs (cumulative).
    pub pressure_some_total_us: Option<u64>,
}

impl CpuSample {
    /// Builds a sample from parsed v1 files (any of them may be missing).
    pub fn from_v1(
        at: Duration,
        quota: Option<Quota>,
        stat: Option<&V1CpuStat>,
        usage_ns: Option<u64>,
        pressure: Option<&Pressure>,
    ) -> Self {
        CpuSample {
            at,
            quota,
            nr_periods: stat.and_then(|s| s.nr_periods),
            nr_throttled: stat.and_then(|s| s.nr_throttled),
            throttled_ns: stat.and_then(|s| s.throttled_time_ns),
            usage_ns,
            pressure_some_total_us: pressure.map(|p| p.some.total_us),
        }
    }

    /// Builds a sample from parsed v2 files (any of them may be missing).
    pub fn from_v2(
        at: Duration,
        quota: Option<Quota>,
        stat: Option<&V2CpuStat>,
        pressure: Option<&Pressure>,
    ) -> Self {
        let us_to_ns = |us: u64| us.saturating_mul(1_000);
        CpuSample {
            at,
            quota,
            nr_periods: stat.and_then(|s| s.nr_periods),
            nr_throttled: stat.and_then(|s| s.nr_throttled),
            throttled_ns: stat.and_then(|s| s.throttled_usec).map(us_to_ns),
            usage_ns: stat.and_then(|s| s.usage_usec).map(us_to_ns),
            pressure_some_total_us: pressure.map(|p| p.some.total_us),
        }
    }
}

/// The cgroup file systems of interest, as mounted (from `/proc/self/mounts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// Mount point of the v1 hierarchy with the `cpu` controller.
    pub v1_cpu: Option<PathBuf>,
    /// Mount point of the v1 hierarchy with `cpuacct` (the same as `v1_cpu` when combined).
    pub v1_cpuacct: Option<PathBuf>,
    /// Mount point of cgroup2 (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts).
    pub v2: Option<PathBuf>,
}

/// Finds the cgroup mounts in the text of `/proc/self/mounts` (see [`crate::cgroupfs::Mounts`]).
pub fn parse_cgroup_mounts(mounts: &str) -> CgroupMounts {
    let m = crate::cgroupfs::Mounts::parse(mounts);
    CgroupMounts {
        v1_cpu: m.v1.get("cpu").cloned(),
        v1_cpuacct: m.v1.get("cpuacct").cloned(),
        v2: m.v2,
    }
}

/// Where a cgroup's CPU files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuPaths {
    /// cgroup v1: the `cpu` controller's directory, the `cpuacct` one when mounted (the
    /// same directory when the controllers are co-mounted), and on hybrid hosts the same
    /// cgroup in the unified hierarchy, read for `cpu.pressure` (and for usage when there
    /// is no `cpuacct`).
    V1 {
        /// `<cpu mount>/<cgroup path>`.
        cpu_dir: PathBuf,
        /// `<cpuacct mount>/<cgroup path>`.
        cpuacct_dir: Option<PathBuf>,
        /// `<cgroup2 mount>/<cgroup path>` on hybrid hosts.
        unified_dir: Option<PathBuf>,
    },
    /// cgroup v2: the cgroup's directory.
    V2 {
        /// `<cgroup2 mount>/<cgroup path>`.
        dir: PathBuf,
    },
}

impl CpuPaths {
    /// Pure choice of paths for `cgroup_path` (as in `/proc/<pid>/cgroup`, e.g.
    /// `/docker/<id>`; the same path is assumed in every hierarchy, as runc does).
    /// The v1 `cpu` controller wins when mounted (on hybrid hosts it is bound to v1 and the
    /// unified hierarchy has no `cpu.max`); otherwise cgroup2 is used when
    /// `v2_controllers` (its root `cgroup.controllers`) lists `cpu`.
    pub fn from_mounts(
        mounts: &CgroupMounts,
        cgroup_path: &str,
        v2_controllers: Option<&str>,
    ) -> Option<CpuPaths> {
        if let Some(cpu_root) = &mounts.v1_cpu {
            let cpu_dir = crate::cgroupfs::join(cpu_root, cgroup_path)?;
            let cpuacct_dir = match &mounts.v1_cpuacct {
                Some(root) => Some(crate::cgroupfs::join(root, cgroup_path)?),
                None => None,
            };
            let unified_dir = match &mounts.v2 {
                Some(root) => Some(crate::cgroupfs::join(root, cgroup_path)?),
                None => None,
            };
            return Some(CpuPaths::V1 {
                cpu_dir,
                cpuacct_dir,
                unified_dir,
            });
        }
        let v2_root = mounts.v2.as_ref()?;
        if !v2_controllers.is_some_and(controllers_include_cpu) {
            return None;
        }
        Some(CpuPaths::V2 {
            dir: crate::cgroupfs::join(v2_root, cgroup_path)?,
        })
    }

    /// Paths for `cgroup_path` on this host: reads `/proc/self/mounts` and, when needed,
    /// the cgroup2 root's `cgroup.controllers`. `None` when no mounted hierarchy has the
    /// `cpu` controller or the path is malformed. Does not check that the cgroup exists.
    pub fn for_cgroup(cgroup_path: &str) -> Option<CpuPaths> {
        let mounts = parse_cgroup_mounts(&crate::host::proc::self_mounts().ok()?);
        let controllers = match (&mounts.v1_cpu, &mounts.v2) {
            (None, Some(v2)) => fs::read_to_string(v2.join("cgroup.controllers")).ok(),
            _ => None,
        };
        CpuPaths::from_mounts(&mounts, cgroup_path, controllers.as_deref())
    }

    /// The directory whose absence means the cgroup is gone.
    pub fn main_dir(&self) -> &Path {
        match self {
            CpuPaths::V1 { cpu_dir, .. } => cpu_dir,
            CpuPaths::V2 { dir } => dir,
        }
    }
}

/// Why [`read_sample`] produced no sample.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The cgroup directory does not exist (any more): the container is gone.
    #[error("cgroup {} is gone", .0.display())]
    Gone(PathBuf),
    /// A file exists but could not be read.
    #[error("reading {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file had content that is not what the kernel writes.
    #[error("{}: {source}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ParseError,
    },
}

/// Reads a file; `Ok(None)` when it does not exist or the kernel does not support it
/// (PSI disabled gives `EOPNOTSUPP`).
fn read_optional(path: &Path) -> Result<Option<String>, SampleError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENODEV)) =>
        {
            Ok(None)
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(SampleError::Parse {
            path: path.to_owned(),
            source: ParseError::NotANumber("<not UTF-8>".to_owned()),
        }),
        Err(source) => Err(SampleError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads and parses an optional file.
fn read_parsed<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Option<T>, SampleError> {
    read_optional(path)?
        .map(|text| {
            parse(&text).map_err(|source| SampleError::Parse {
                path: path.to_owned(),
                source,
            })
        })
        .transpose()
}

/// Reads one [`CpuSample`] of the cgroup at `paths`, stamped `now`. Missing files give
/// `None` fields; a missing cgroup directory gives [`SampleError::Gone`]; unreadable or
/// malformed files are errors (skip that sample).
pub fn read_sample(paths: &CpuPaths, now: Duration) -> Result<CpuSample, SampleError> {
    let main = paths.main_dir();
    if !main.is_dir() {
        return Err(SampleError::Gone(main.to_owned()));
    }
    let sample = match paths {
        CpuPaths::V1 {
            cpu_dir,
            cpuacct_dir,
            unified_dir,
        } => {
            let quota = match read_optional(&cpu_dir.join("cpu.cfs_quota_us"))? {
                None => None,
                Some(quota_text) => {
                    let period_path = cpu_dir.join("cpu.cfs_period_us");
                    let period_text = read_optional(&period_path)?;
                    parse_v1_quota(&quota_text, period_text.as_deref()).map_err(|source| {
                        SampleError::Parse {
                            path: cpu_dir.join("cpu.cfs_quota_us"),
                            source,
                        }
                    })?
                }
            };
            let stat = read_parsed(&cpu_dir.join("cpu.stat"), parse_v1_cpu_stat)?;
            let usage_ns = match (cpuacct_dir, unified_dir) {
                (Some(dir), _) => read_parsed(&dir.join("cpuacct.usage"), parse_v1_cpuacct_usage)?,
                (None, Some(dir)) => read_parsed(&dir.join("cpu.stat"), parse_v2_cpu_stat)?
                    .and_then(|s| s.usage_usec)
                    .map(|us| us.saturating_mul(1_000)),
                (None, None) => None,
            };
            let pressure = match unified_dir {
                Some(dir) => read_parsed(&dir.join("cpu.pressure"), parse_pressure)?,
                None => None,
            };
            CpuSample::from_v1(now, quota, stat.as_ref(), usage_ns, pressure.as_ref())
        }
        CpuPaths::V2 { dir } => {
            let quota = read_parsed(&dir.join("cpu.max"), parse_v2_cpu_max)?.flatten();
            let stat = read_parsed(&dir.join("cpu.stat"), parse_v2_cpu_stat)?;
            let pressure = read_parsed(&dir.join("cpu.pressure"), parse_pressure)?;
            CpuSample::from_v2(now, quota, stat.as_ref(), pressure.as_ref())
        }
    };
    // A container that exits while we read leaves missing files: say it is gone instead.
    if sample.nr_periods.is_none() && !main.is_dir() {
        return Err(SampleError::Gone(main.to_owned()));
    }
    Ok(sample)
}

/// Now on `CLOCK_MONOTONIC`, for [`CpuSample::at`].
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../tests/fixtures/throttle/", $name))
        };
    }

    const V1_QUOTA: &str = fixture!("v1-6.18-cpus0.01-cpu.cfs_quota_us");
    const V1_PERIOD: &str = fixture!("v1-6.18-cpu.cfs_period_us");
    const V1_NOQUOTA: &str = fixture!("v1-6.18-noquota-cpu.cfs_quota_us");
    const V1_STAT_A: &str = fixture!("v1-6.18-cpus0.01-cpu.stat.a");
    const V1_STAT_B: &str = fixture!("v1-6.18-cpus0.01-cpu.stat.b");
    const V1_USAGE_A: &str = fixture!("v1-6.18-cpus0.01-cpuacct.usage.a");
    const V1_USAGE_B: &str = fixture!("v1-6.18-cpus0.01-cpuacct.usage.b");
    const V1_NOQUOTA_STAT: &str = fixture!("v1-6.18-noquota-cpu.stat");
    const V2_MAX: &str = fixture!("v2-6.1-cpumax1000-cpu.max");
    const V2_NOQUOTA_MAX: &str = fixture!("v2-6.1-noquota-cpu.max");
    const V2_STAT_A: &str = fixture!("v2-6.1-cpumax1000-cpu.stat.a");
    const V2_STAT_B: &str = fixture!("v2-6.1-cpumax1000-cpu.stat.b");
    const V2_NOQUOTA_STAT: &str = fixture!("v2-6.1-noquota-cpu.stat");
    const V2_PRESSURE: &str = fixture!("v2-6.1-cpumax1000-cpu.pressure");
    const V2_ROOT_CONTROLLERS: &str = fixture!("v2-6.1-root-cgroup.controllers");
    const V2_CG_CONTROLLERS: &str = fixture!("v2-6.1-cpumax1000-cgroup.controllers");
    const HYBRID_CONTROLLERS: &str = fixture!("v2-hybrid-6.18-cgroup.controllers");
    const HYBRID_STAT: &str = fixture!("v2-hybrid-6.18-nocpu-cpu.stat");
    const HYBRID_PRESSURE: &str = fixture!("v2-hybrid-6.18-cpus0.01-cpu.pressure");
    const MOUNTS_HYBRID: &str = fixture!("mounts-hybrid-6.18");
    const MOUNTS_V2: &str = fixture!("mounts-v2-6.1");

    const ID: &str = "7ee9da4aa77429359f59c265039380a9680f12dea35ee7fc91646ad882df78eb";

    #[test]
    fn v1_quota_fixtures() {
        let q = parse_v1_quota(V1_QUOTA, Some(V1_PERIOD)).unwrap().unwrap();
        assert_eq!(
            q,
            Quota {
                quota_us: 1000,
                period_us: 100_000
            }
        );
        assert!((q.cpus() - 0.01).abs() < 1e-12);
        assert_eq!(parse_v1_quota(V1_NOQUOTA, Some(V1_PERIOD)), Ok(None));
        // The period does not matter (nor need to exist) without a quota.
        assert_eq!(parse_v1_quota("-1\n", None), Ok(None));
        assert_eq!(parse_v1_cfs_period_us(V1_PERIOD), Ok(100_000));
    }

    #[test]
    fn v1_quota_garbage() {
        assert_eq!(parse_v1_cfs_quota_us(""), Err(ParseError::Empty));
        assert_eq!(parse_v1_cfs_quota_us(" \n"), Err(ParseError::Empty));
        assert!(matches!(
            parse_v1_cfs_quota_us("abc"),
            Err(ParseError::NotANumber(_))
        ));
        assert!(matches!(
            parse_v1_cfs_quota_us("-5"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_v1_cfs_quota_us("0"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_v1_cfs_quota_us("1000 2"),
            Err(ParseError::BadLine { .. })
        ));
        assert!(matches!(
            parse_v1_cfs_period_us("0"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_v1_cfs_period_us("-1"),
            Err(ParseError::NotANumber(_))
        ));
        assert!(matches!(
            parse_v1_quota("1000", None),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_v1_quota("1000", Some("x")),
            Err(ParseError::NotANumber(_))
        ));
        assert!(parse_v1_cpuacct_usage("12 13").is_err());
        assert!(parse_v1_cpuacct_usage("-12").is_err());
        assert_eq!(parse_v1_cpuacct_usage(V1_USAGE_A), Ok(1_505_610_096));
    }

    #[test]
    fn v1_cpu_stat_fixtures() {
        let a = parse_v1_cpu_stat(V1_STAT_A).unwrap();
        assert_eq!(
            a,
            V1CpuStat {
                nr_periods: Some(1490),
                nr_throttled: Some(1489),
                throttled_time_ns: Some(146_125_733_840),
                nr_bursts: Some(0),
                burst_time_ns: Some(0),
            }
        );
        let none = parse_v1_cpu_stat(V1_NOQUOTA_STAT).unwrap();
        assert_eq!(none.nr_periods, Some(0));
        assert_eq!(none.nr_throttled, Some(0));
    }

    #[test]
    fn v1_cpu_stat_old_kernel_and_extra_keys() {
        // Before 5.14: no burst keys. Unknown future keys, even with odd values, are skipped.
        let s = parse_v1_cpu_stat(
            "nr_periods 7\nnr_throttled 2\nthrottled_time 300\nwait_sum 1 2\nfancy x\n\n",
        )
        .unwrap();
        assert_eq!(s.nr_periods, Some(7));
        assert_eq!(s.nr_throttled, Some(2));
        assert_eq!(s.throttled_time_ns, Some(300));
        assert_eq!(s.nr_bursts, None);
        assert_eq!(s.burst_time_ns, None);
        // Missing keys stay None, not 0.
        let s = parse_v1_cpu_stat("nr_periods 7\n").unwrap();
        assert_eq!(s.nr_throttled, None);
    }

    #[test]
    fn v1_cpu_stat_garbage() {
        assert_eq!(parse_v1_cpu_stat(""), Err(ParseError::Empty));
        assert_eq!(
            parse_v1_cpu_stat("hello world\n"),
            Err(ParseError::NoKnownKeys)
        );
        assert!(matches!(
            parse_v1_cpu_stat("nr_periods x\n"),
            Err(ParseError::NotANumber(_))
        ));
        assert!(matches!(
            parse_v1_cpu_stat("nr_periods -3\n"),
            Err(ParseError::NotANumber(_))
        ));
        assert!(matches!(
            parse_v1_cpu_stat("nr_periods\n"),
            Err(ParseError::BadLine { line: 1, .. })
        ));
        assert!(matches!(
            parse_v1_cpu_stat("nr_periods 1\nnr_throttled 1 2\n"),
            Err(ParseError::BadLine { line: 2, .. })
        ));
        assert_eq!(
            parse_v1_cpu_stat("nr_periods 1\nnr_periods 2\n"),
            Err(ParseError::Duplicate("nr_periods".into()))
        );
        // Long garbage is cut in the error.
        let long = format!("nr_periods {}", "9".repeat(500));
        let Err(ParseError::NotANumber(q)) = parse_v1_cpu_stat(&long) else {
            panic!("expected NotANumber");
        };
        assert!(q.chars().count() <= MAX_QUOTED + 1);
    }

    #[test]
    fn v2_cpu_max_fixtures_and_garbage() {
        assert_eq!(
            parse_v2_cpu_max(V2_MAX),
            Ok(Some(Quota {
                quota_us: 1000,
                period_us: 100_000
            }))
        );
        assert_eq!(parse_v2_cpu_max(V2_NOQUOTA_MAX), Ok(None));
        assert_eq!(parse_v2_cpu_max("max"), Ok(None));
        assert_eq!(
            parse_v2_cpu_max("250000 1000000\n")
                .unwrap()
                .unwrap()
                .cpus(),
            0.25
        );
        assert_eq!(parse_v2_cpu_max(""), Err(ParseError::Empty));
        assert!(matches!(
            parse_v2_cpu_max("1000"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_v2_cpu_max("1000 0"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_v2_cpu_max("0 100000"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_v2_cpu_max("max x"),
            Err(ParseError::NotANumber(_))
        ));
        assert!(matches!(
            parse_v2_cpu_max("lots 100000"),
            Err(ParseError::NotANumber(_))
        ));
        assert!(matches!(
            parse_v2_cpu_max("1 2 3"),
            Err(ParseError::BadLine { .. })
        ));
    }

    #[test]
    fn v2_cpu_stat_fixtures() {
        let b = parse_v2_cpu_stat(V2_STAT_B).unwrap();
        assert_eq!(
            b,
            V2CpuStat {
                usage_usec: Some(46_746),
                user_usec: Some(46_746),
                system_usec: Some(0),
                nr_periods: Some(47),
                nr_throttled: Some(45),
                throttled_usec: Some(4_144_097),
                nr_bursts: Some(0),
                burst_usec: Some(0),
            }
        );
        let free = parse_v2_cpu_stat(V2_NOQUOTA_STAT).unwrap();
        assert_eq!(free.nr_throttled, Some(0));
        // Hybrid host: the unified hierarchy has no cpu controller, so only usage keys
        // (6.18 adds nice_usec, which is skipped).
        let hybrid = parse_v2_cpu_stat(HYBRID_STAT).unwrap();
        assert_eq!(hybrid.usage_usec, Some(1_516_067));
        assert_eq!(hybrid.nr_periods, None);
        assert_eq!(hybrid.throttled_usec, None);
        // Kernels with core scheduling add another key.
        let core = parse_v2_cpu_stat(
            "usage_usec 5\nuser_usec 3\nsystem_usec 2\ncore_sched.force_idle_usec 0\n",
        )
        .unwrap();
        assert_eq!(core.usage_usec, Some(5));
        assert!(matches!(
            parse_v2_cpu_stat("usage_usec 1.5\n"),
            Err(ParseError::NotANumber(_))
        ));
        assert_eq!(
            parse_v2_cpu_stat(V1_STAT_A).map(|s| s.nr_periods),
            Ok(Some(1490))
        );
        assert_eq!(
            parse_v2_cpu_stat("\u{0}\u{1}garbage"),
            Err(ParseError::NoKnownKeys)
        );
    }

    #[test]
    fn pressure_fixtures_and_garbage() {
        let p = parse_pressure(V2_PRESSURE).unwrap();
        assert_eq!(p.some.total_us, 4_682_790);
        assert_eq!(p.some.avg10, Some(30.65));
        assert_eq!(p.full.map(|f| f.total_us), Some(4_682_790));
        let h = parse_pressure(HYBRID_PRESSURE).unwrap();
        assert_eq!(h.some.avg10, Some(98.03));
        assert_eq!(h.some.total_us, 139_855_613);
        // Before 5.13, cpu.pressure had no "full" line.
        let old = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert_eq!(old.full, None);
        assert_eq!(parse_pressure(""), Err(ParseError::Empty));
        assert!(parse_pressure("full avg10=0.00 total=1\n").is_err());
        assert!(parse_pressure("some avg10=0.00\n").is_err());
        assert!(parse_pressure("some total=x\n").is_err());
        assert!(parse_pressure("some avg10=nan total=1\n").is_err());
        assert!(parse_pressure("some total=1\nsome total=2\n").is_err());
        assert!(parse_pressure("other total=1\n").is_err());
        assert!(parse_pressure("some total\n").is_err());
    }

    #[test]
    fn controllers() {
        assert!(controllers_include_cpu(V2_ROOT_CONTROLLERS));
        assert!(controllers_include_cpu(V2_CG_CONTROLLERS));
        assert!(!controllers_include_cpu(HYBRID_CONTROLLERS));
        assert!(!controllers_include_cpu("cpuset io memory\n"));
    }

    #[test]
    fn samples_from_fixtures() {
        let quota = parse_v1_quota(V1_QUOTA, Some(V1_PERIOD)).unwrap();
        let s = CpuSample::from_v1(
            Duration::from_secs(5),
            quota,
            Some(&parse_v1_cpu_stat(V1_STAT_B).unwrap()),
            Some(parse_v1_cpuacct_usage(V1_USAGE_B).unwrap()),
            None,
        );
        assert_eq!(s.nr_periods, Some(1500));
        assert_eq!(s.throttled_ns, Some(147_310_381_431));
        assert_eq!(s.usage_ns, Some(1_516_067_079));
        assert_eq!(s.pressure_some_total_us, None);
        let v2 = CpuSample::from_v2(
            Duration::from_secs(5),
            parse_v2_cpu_max(V2_MAX).unwrap(),
            Some(&parse_v2_cpu_stat(V2_STAT_A).unwrap()),
            Some(&parse_pressure(V2_PRESSURE).unwrap()),
        );
        assert_eq!(v2.throttled_ns, Some(3_055_770_000));
        assert_eq!(v2.usage_ns, Some(35_583_000));
        assert_eq!(v2.pressure_some_total_us, Some(4_682_790));
        let bare = CpuSample::from_v2(Duration::ZERO, None, None, None);
        assert_eq!(bare.nr_periods, None);
        assert_eq!(bare.usage_ns, None);
    }

    #[test]
    fn mounts_hybrid() {
        let m = parse_cgroup_mounts(MOUNTS_HYBRID);
        assert_eq!(m.v1_cpu.as_deref(), Some(Path::new("/sys/fs/cgroup/cpu")));
        assert_eq!(
            m.v1_cpuacct.as_deref(),
            Some(Path::new("/sys/fs/cgroup/cpuacct"))
        );
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        let cg = format!("/docker/{ID}");
        // The v1 cpu controller wins even if someone claims cgroup2 has cpu.
        let p = CpuPaths::from_mounts(&m, &cg, Some("cpu")).unwrap();
        assert_eq!(
            p,
            CpuPaths::V1 {
                cpu_dir: PathBuf::from(format!("/sys/fs/cgroup/cpu/docker/{ID}")),
                cpuacct_dir: Some(PathBuf::from(format!("/sys/fs/cgroup/cpuacct/docker/{ID}"))),
                unified_dir: Some(PathBuf::from(format!("/sys/fs/cgroup/unified/docker/{ID}"))),
            }
        );
        assert_eq!(
            p.main_dir(),
            Path::new(&format!("/sys/fs/cgroup/cpu/docker/{ID}"))
        );
    }

    #[test]
    fn mounts_combined_v1() {
        let text = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0\n\
                    cgroup /sys/fs/cgroup/cpuset cgroup rw,nosuid,nodev,noexec,relatime,cpuset 0 0\n";
        let m = parse_cgroup_mounts(text);
        assert_eq!(m.v1_cpu, m.v1_cpuacct);
        assert_eq!(m.v2, None);
        let p = CpuPaths::from_mounts(&m, "docker/abc", None).unwrap();
        let CpuPaths::V1 {
            cpu_dir,
            cpuacct_dir,
            unified_dir,
        } = p
        else {
            panic!("expected v1")
        };
        assert_eq!(cpu_dir, Path::new("/sys/fs/cgroup/cpu,cpuacct/docker/abc"));
        assert_eq!(cpuacct_dir.as_deref(), Some(cpu_dir.as_path()));
        assert_eq!(unified_dir, None);
        // The cpuset controller alone is not cpu.
        let m = parse_cgroup_mounts("cgroup /c cgroup rw,cpuset 0 0\n");
        assert_eq!(m.v1_cpu, None);
        assert_eq!(CpuPaths::from_mounts(&m, "/x", Some("cpu")), None);
    }

    #[test]
    fn mounts_pure_v2() {
        let m = parse_cgroup_mounts(MOUNTS_V2);
        assert_eq!(m.v1_cpu, None);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert_eq!(
            CpuPaths::from_mounts(
                &m,
                "/system.slice/docker-abc.scope",
                Some(V2_ROOT_CONTROLLERS)
            ),
            Some(CpuPaths::V2 {
                dir: PathBuf::from("/sys/fs/cgroup/system.slice/docker-abc.scope")
            })
        );
        // Root cgroup.
        assert_eq!(
            CpuPaths::from_mounts(&m, "/", Some(V2_ROOT_CONTROLLERS)),
            Some(CpuPaths::V2 {
                dir: PathBuf::from("/sys/fs/cgroup")
            })
        );
        // cgroup2 without the cpu controller (hybrid unified), or unknown controllers.
        assert_eq!(
            CpuPaths::from_mounts(&m, "/x", Some(HYBRID_CONTROLLERS)),
            None
        );
        assert_eq!(CpuPaths::from_mounts(&m, "/x", None), None);
        // Nothing mounted.
        assert_eq!(
            CpuPaths::from_mounts(&CgroupMounts::default(), "/x", Some("cpu")),
            None
        );
    }

    #[test]
    fn mounts_escapes_garbage_and_traversal() {
        let m = parse_cgroup_mounts(
            "garbage\n\ncgroup2 /mnt/my\\040cgroups cgroup2 rw 0 0\ncgroup2 /second cgroup2 rw 0 0\n\
             cgroup /a\\ cgroup cpu 0 0\n",
        );
        assert_eq!(m.v2.as_deref(), Some(Path::new("/mnt/my cgroups")));
        assert_eq!(m.v1_cpu.as_deref(), Some(Path::new("/a\\")));
        let m = parse_cgroup_mounts(MOUNTS_HYBRID);
        assert_eq!(CpuPaths::from_mounts(&m, "/docker/../../etc", None), None);
    }

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "ctrace-throttle-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn sub(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
            let dir = self.0.join(name);
            fs::create_dir_all(&dir).unwrap();
            for (file, content) in files {
                fs::write(dir.join(file), content).unwrap();
            }
            dir
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const AT: Duration = Duration::from_secs(42);

    #[test]
    fn read_v1_full() {
        let t = TempDir::new();
        let cpu = t.sub(
            "cpu",
            &[
                ("cpu.cfs_quota_us", V1_QUOTA.as_bytes()),
                ("cpu.cfs_period_us", V1_PERIOD.as_bytes()),
                ("cpu.stat", V1_STAT_A.as_bytes()),
            ],
        );
        let acct = t.sub("cpuacct", &[("cpuacct.usage", V1_USAGE_A.as_bytes())]);
        let unified = t.sub(
            "unified",
            &[
                ("cpu.stat", HYBRID_STAT.as_bytes()),
                ("cpu.pressure", HYBRID_PRESSURE.as_bytes()),
            ],
        );
        let paths = CpuPaths::V1 {
            cpu_dir: cpu,
            cpuacct_dir: Some(acct),
            unified_dir: Some(unified.clone()),
        };
        let s = read_sample(&paths, AT).unwrap();
        assert_eq!(
            s,
            CpuSample {
                at: AT,
                quota: Some(Quota {
                    quota_us: 1000,
                    period_us: 100_000
                }),
                nr_periods: Some(1490),
                nr_throttled: Some(1489),
                throttled_ns: Some(146_125_733_840),
                usage_ns: Some(1_505_610_096),
                pressure_some_total_us: Some(139_855_613),
            }
        );
        // Without cpuacct, usage comes from the unified hierarchy's cpu.stat.
        let CpuPaths::V1 { cpu_dir, .. } = paths else {
            unreachable!()
        };
        let paths = CpuPaths::V1 {
            cpu_dir,
            cpuacct_dir: None,
            unified_dir: Some(unified),
        };
        assert_eq!(
            read_sample(&paths, AT).unwrap().usage_ns,
            Some(1_516_067_000)
        );
    }

    #[test]
    fn read_v1_missing_files_are_none() {
        let t = TempDir::new();
        let cpu = t.sub("cpu", &[("cpu.stat", V1_NOQUOTA_STAT.as_bytes())]);
        let paths = CpuPaths::V1 {
            cpu_dir: cpu,
            cpuacct_dir: Some(t.0.join("no-such-cpuacct")),
            unified_dir: Some(t.0.join("no-such-unified")),
        };
        let s = read_sample(&paths, AT).unwrap();
        assert_eq!(
            s,
            CpuSample {
                at: AT,
                quota: None,
                nr_periods: Some(0),
                nr_throttled: Some(0),
                throttled_ns: Some(0),
                usage_ns: None,
                pressure_some_total_us: None,
            }
        );
        // A quota without its period is malformed.
        let cpu = t.sub("cpu2", &[("cpu.cfs_quota_us", b"5000\n")]);
        let paths = CpuPaths::V1 {
            cpu_dir: cpu,
            cpuacct_dir: None,
            unified_dir: None,
        };
        assert!(matches!(
            read_sample(&paths, AT),
            Err(SampleError::Parse { .. })
        ));
        // An empty cgroup directory: everything unknown, nothing made up.
        let empty = t.sub("empty", &[]);
        let paths = CpuPaths::V1 {
            cpu_dir: empty,
            cpuacct_dir: None,
            unified_dir: None,
        };
        assert_eq!(
            read_sample(&paths, AT).unwrap(),
            CpuSample {
                at: AT,
                ..CpuSample::default()
            }
        );
    }

    #[test]
    fn read_gone_and_garbage() {
        let t = TempDir::new();
        let gone = CpuPaths::V2 {
            dir: t.0.join("gone"),
        };
        assert!(
            matches!(read_sample(&gone, AT), Err(SampleError::Gone(p)) if p == t.0.join("gone"))
        );
        let bad = t.sub(
            "bad",
            &[
                ("cpu.max", b"1000 100000\n"),
                ("cpu.stat", b"nr_periods banana\n"),
            ],
        );
        let err = read_sample(&CpuPaths::V2 { dir: bad.clone() }, AT).unwrap_err();
        assert!(matches!(&err, SampleError::Parse { path, .. } if *path == bad.join("cpu.stat")));
        assert!(err.to_string().contains("banana"), "{err}");
        let binary = t.sub("binary", &[("cpu.stat", b"\xff\xfe\x00garbage")]);
        assert!(matches!(
            read_sample(&CpuPaths::V2 { dir: binary }, AT),
            Err(SampleError::Parse { .. })
        ));
        // A directory where a file should be is an I/O error, not "missing".
        let weird = t.sub("weird", &[]);
        fs::create_dir(weird.join("cpu.stat")).unwrap();
        assert!(matches!(
            read_sample(&CpuPaths::V2 { dir: weird }, AT),
            Err(SampleError::Io { .. })
        ));
    }

    #[test]
    fn read_v2() {
        let t = TempDir::new();
        let dir = t.sub(
            "cg",
            &[
                ("cpu.max", V2_MAX.as_bytes()),
                ("cpu.stat", V2_STAT_B.as_bytes()),
                ("cpu.pressure", V2_PRESSURE.as_bytes()),
            ],
        );
        let s = read_sample(&CpuPaths::V2 { dir }, AT).unwrap();
        assert_eq!(
            s,
            CpuSample {
                at: AT,
                quota: Some(Quota {
                    quota_us: 1000,
                    period_us: 100_000
                }),
                nr_periods: Some(47),
                nr_throttled: Some(45),
                throttled_ns: Some(4_144_097_000),
                usage_ns: Some(46_746_000),
                pressure_some_total_us: Some(4_682_790),
            }
        );
        // cpu controller not enabled for this cgroup: usage only.
        let dir = t.sub("nocpu", &[("cpu.stat", HYBRID_STAT.as_bytes())]);
        let s = read_sample(&CpuPaths::V2 { dir }, AT).unwrap();
        assert_eq!(s.quota, None);
        assert_eq!(s.nr_periods, None);
        assert_eq!(s.usage_ns, Some(1_516_067_000));
        let dir = t.sub("unlimited", &[("cpu.max", V2_NOQUOTA_MAX.as_bytes())]);
        assert_eq!(read_sample(&CpuPaths::V2 { dir }, AT).unwrap().quota, None);
    }

    #[test]
    fn monotonic_clock_advances() {
        let a = monotonic_now();
        let b = monotonic_now();
        assert!(a > Duration::ZERO);
        assert!(b >= a);
    }
}
