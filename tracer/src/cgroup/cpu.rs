//! The cpu controller's files: pure parsers for cgroup v1 and v2, a normalized
//! [`CpuSample`], and the thin readers ([`read_sample`], [`CpuPaths::for_cgroup`], and
//! [`read_cpu`] for the quota as a [`Reading`]).
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

use super::{
    mounts::join,
    parse::{number, parse_flat_keyed_keys, quoted, single_token, ParseError},
    psi::{parse_pressure, Pressure},
    reading::{garbled, limit, read},
    CgroupDir, Mounts, Reading,
};

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
    let period = number(token)?;
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
    number(single_token(text)?)
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
            number(p)?;
        }
        return Ok(None);
    }
    let quota_us = number(quota)?;
    let period_us = number(period.ok_or(ParseError::Invalid {
        value: quoted(text.trim()),
        why: "quota without period",
    })?)?;
    checked_quota(quota_us, period_us, text).map(Some)
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
    let [nr_periods, nr_throttled, throttled_time_ns, nr_bursts, burst_time_ns] =
        parse_flat_keyed_keys(
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
        parse_flat_keyed_keys(
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
        mounts: &Mounts,
        cgroup_path: &str,
        v2_controllers: Option<&str>,
    ) -> Option<CpuPaths> {
        if let Some(cpu_root) = mounts.v1.get("cpu") {
            let cpu_dir = join(cpu_root, cgroup_path)?;
            let cpuacct_dir = match mounts.v1.get("cpuacct") {
                Some(root) => Some(join(root, cgroup_path)?),
                None => None,
            };
            let unified_dir = match &mounts.v2 {
                Some(root) => Some(join(root, cgroup_path)?),
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
            dir: join(v2_root, cgroup_path)?,
        })
    }

    /// Paths for `cgroup_path` on this host: reads `/proc/self/mounts` and, when needed,
    /// the cgroup2 root's `cgroup.controllers`. `None` when no mounted hierarchy has the
    /// `cpu` controller or the path is malformed. Does not check that the cgroup exists.
    pub fn for_cgroup(cgroup_path: &str) -> Option<CpuPaths> {
        CpuHierarchy::current().paths(cgroup_path)
    }

    /// The directory whose absence means the cgroup is gone.
    pub fn main_dir(&self) -> &Path {
        match self {
            CpuPaths::V1 { cpu_dir, .. } => cpu_dir,
            CpuPaths::V2 { dir } => dir,
        }
    }
}

/// Where this host's `cpu` controller is: the mounts, and the cgroup2 root's controllers when
/// no v1 hierarchy has it. Read once for many containers: the mount table of a host with
/// hundreds of containers holds an overlay mount each, and reading it took a millisecond or
/// more per container with 500 of them.
#[derive(Debug, Clone, Default)]
pub struct CpuHierarchy {
    mounts: Mounts,
    v2_controllers: Option<String>,
}

impl CpuHierarchy {
    /// This host's, from `/proc/self/mounts` and `cgroup.controllers`.
    pub fn current() -> Self {
        Self::of(Mounts::current())
    }

    /// The hierarchy of `mounts` (reads the cgroup2 root's `cgroup.controllers` when v1 has
    /// no `cpu`).
    pub fn of(mounts: Mounts) -> Self {
        let v2_controllers = match (mounts.v1.get("cpu"), &mounts.v2) {
            (None, Some(v2)) => fs::read_to_string(v2.join("cgroup.controllers")).ok(),
            _ => None,
        };
        Self {
            mounts,
            v2_controllers,
        }
    }

    /// The paths of `cgroup_path` (see [`CpuPaths::for_cgroup`]).
    pub fn paths(&self, cgroup_path: &str) -> Option<CpuPaths> {
        CpuPaths::from_mounts(&self.mounts, cgroup_path, self.v2_controllers.as_deref())
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
            let quota = read_v1_quota(cpu_dir)?;
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

/// The v1 quota: `cpu.cfs_quota_us`, and `cpu.cfs_period_us` only when there is a quota.
fn read_v1_quota(cpu_dir: &Path) -> Result<Option<Quota>, SampleError> {
    let quota_path = cpu_dir.join("cpu.cfs_quota_us");
    let Some(quota_text) = read_optional(&quota_path)? else {
        return Ok(None);
    };
    // `-1`: no quota, and no need for the period.
    if parse_v1_cfs_quota_us(&quota_text).is_ok_and(|q| q.is_none()) {
        return Ok(None);
    }
    let period_text = read_optional(&cpu_dir.join("cpu.cfs_period_us"))?;
    parse_v1_quota(&quota_text, period_text.as_deref()).map_err(|source| SampleError::Parse {
        path: quota_path,
        source,
    })
}

/// Only the quota of the cgroup at `paths`: one file, the cheap check of a cgroup that had
/// none (a quota can be set at any time: `docker update --cpus`). A cgroup whose file is gone
/// is [`SampleError::Gone`].
pub fn read_quota(paths: &CpuPaths) -> Result<Option<Quota>, SampleError> {
    let (file, quota) = match paths {
        CpuPaths::V1 { cpu_dir, .. } => (cpu_dir.join("cpu.cfs_quota_us"), read_v1_quota(cpu_dir)?),
        CpuPaths::V2 { dir } => (
            dir.join("cpu.max"),
            read_parsed(&dir.join("cpu.max"), parse_v2_cpu_max)?.flatten(),
        ),
    };
    if quota.is_none() && !file.exists() {
        return Err(SampleError::Gone(paths.main_dir().to_owned()));
    }
    Ok(quota)
}

/// Only the CPU time the cgroup used, in ns: one file (`cpuacct.usage`, or `cpu.stat` on
/// cgroup v2 or without `cpuacct`), the cheap check that nothing ran in it. `None` when no
/// file has it.
pub fn read_usage(paths: &CpuPaths) -> Result<Option<u64>, SampleError> {
    let v2_usage = |dir: &Path| -> Result<Option<u64>, SampleError> {
        Ok(read_parsed(&dir.join("cpu.stat"), parse_v2_cpu_stat)?
            .and_then(|s| s.usage_usec)
            .map(|us| us.saturating_mul(1_000)))
    };
    match paths {
        CpuPaths::V1 {
            cpuacct_dir: Some(dir),
            ..
        } => read_parsed(&dir.join("cpuacct.usage"), parse_v1_cpuacct_usage),
        CpuPaths::V1 {
            unified_dir: Some(dir),
            ..
        } => v2_usage(dir),
        CpuPaths::V1 { .. } => Ok(None),
        CpuPaths::V2 { dir } => v2_usage(dir),
    }
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

/// The CPU quota (CFS bandwidth).
pub fn read_cpu(dir: &CgroupDir) -> Reading<Quota> {
    match dir {
        CgroupDir::V2(_) => limit(dir, "cpu", "cpu.max", parse_v2_cpu_max),
        CgroupDir::V1(_) => {
            let quota_us = match limit(dir, "cpu", "cpu.cfs_quota_us", parse_v1_cfs_quota_us) {
                Reading::Value(q) => q,
                Reading::Unlimited => return Reading::Unlimited,
                Reading::ControllerOff => return Reading::ControllerOff,
                Reading::Unknown(why) => return Reading::Unknown(why),
            };
            let file = "cpu.cfs_period_us";
            match read(dir, "cpu", file) {
                Ok(text) => match parse_v1_cfs_period_us(&text) {
                    Ok(period_us) => Reading::Value(Quota {
                        quota_us,
                        period_us,
                    }),
                    Err(e) => Reading::Unknown(garbled(dir, file, e)),
                },
                Err(a) => a.usage(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
