//! A container's resource limits and usage from its cgroup files, v1 and v2.
//!
//! | value        | cgroup v1                                                | cgroup v2                 |
//! |--------------|----------------------------------------------------------|---------------------------|
//! | memory limit | `memory.limit_in_bytes` (2^62 or more: none)             | `memory.max` (`max`: none) |
//! | memory usage | `memory.usage_in_bytes`                                  | `memory.current`          |
//! | cpu quota    | `cpu.cfs_quota_us` (`-1`: none) and `cpu.cfs_period_us`  | `cpu.max` (`max ...`: none) |
//! | pids limit   | `pids.max` (`max`: none)                                 | `pids.max`                |
//! | pids count   | `pids.current`                                           | `pids.current`            |
//!
//! Each value is a [`Reading`]: what the file says, "no limit" because the file says so (or,
//! on v2, because the controller is not enabled for the cgroup, so no limit can be set), or
//! unknown with the reason. A missing, unreadable or garbled file is never shown as
//! "unlimited". The parsers are pure; the readers never panic.

use std::{
    collections::BTreeMap,
    fmt::Display,
    fs, io,
    path::{Path, PathBuf},
};

use serde::{ser::SerializeStruct as _, Serialize, Serializer};

use crate::{
    cgroupfs::{self, Mounts},
    throttle::{
        cgroup_cpu::{parse_v1_cfs_period_us, parse_v1_cfs_quota_us, parse_v2_cpu_max},
        ParseError, Quota,
    },
    units,
};

/// Longest piece of offending file content kept in a reason.
const MAX_QUOTED: usize = 40;

/// One value from a cgroup file.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading<T> {
    /// The file holds this value.
    Value(T),
    /// The file says there is no limit (`max`, `-1`, v1's page-rounded `i64::MAX`).
    Unlimited,
    /// cgroup v2: the controller is not enabled for the cgroup (not in its
    /// `cgroup.controllers`), so the file does not exist and the cgroup has no such limit.
    ControllerOff,
    /// Could not be read or understood: why.
    Unknown(String),
}

impl<T> Reading<T> {
    /// The value, if the file gave one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Reading::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Why the value is unknown; `None` when it is known (a value or no limit).
    pub fn unknown(&self) -> Option<&str> {
        match self {
            Reading::Unknown(why) => Some(why),
            _ => None,
        }
    }

    /// The same reading with the value, if any, converted by `f`.
    pub fn map<U>(&self, f: impl FnOnce(&T) -> U) -> Reading<U> {
        match self {
            Reading::Value(v) => Reading::Value(f(v)),
            Reading::Unlimited => Reading::Unlimited,
            Reading::ControllerOff => Reading::ControllerOff,
            Reading::Unknown(why) => Reading::Unknown(why.clone()),
        }
    }

    /// A limit for a comparison table: the value, `unlimited`, or `unknown (why)`.
    pub fn show_limit(&self, show: impl FnOnce(&T) -> String) -> String {
        match self {
            Reading::Value(v) => show(v),
            Reading::Unlimited | Reading::ControllerOff => "unlimited".to_owned(),
            Reading::Unknown(why) => format!("unknown ({why})"),
        }
    }
}

/// JSON: the value, or `null` (no limit or unknown; [`Resources`] says which).
impl<T: Serialize> Serialize for Reading<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reading::Value(v) => s.serialize_some(v),
            _ => s.serialize_none(),
        }
    }
}

/// Limits and usage of a container from its cgroup files.
///
/// JSON: `memory_limit_bytes`, `memory_usage_bytes`, `cpu_quota_cpus`, `cpu_quota_us`,
/// `cpu_period_us`, `pids_limit`, `pids_current`, each a number or `null`, and `unknown`, an
/// object from the name of each `null` field that could not be read to why (`{}` when all
/// were read). A `null` limit not in `unknown` means no limit: the file says so, or (v2) the
/// controller is not enabled for the cgroup. `memory_parent_limit`: `{bytes, depth}` of a lower
/// memory limit on a cgroup `depth` levels above, or `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub memory_limit_bytes: Reading<u64>,
    pub memory_usage_bytes: Reading<u64>,
    pub cpu_quota: Reading<Quota>,
    pub pids_limit: Reading<u64>,
    pub pids_current: Reading<u64>,
    /// A lower memory limit on a cgroup above the container's (a pod's, a `--cgroup-parent`'s):
    /// (bytes, levels up). The kernel enforces it as well, so the container can be OOM-killed
    /// there.
    pub memory_parent_limit: Option<(u64, u32)>,
}

impl Resources {
    /// (what, JSON fields, why unknown) of every value, in display order.
    fn reasons(&self) -> [(&'static str, &'static [&'static str], Option<&str>); 5] {
        [
            (
                "memory limit",
                &["memory_limit_bytes"],
                self.memory_limit_bytes.unknown(),
            ),
            (
                "memory usage",
                &["memory_usage_bytes"],
                self.memory_usage_bytes.unknown(),
            ),
            (
                "cpu quota",
                &["cpu_quota_cpus", "cpu_quota_us", "cpu_period_us"],
                self.cpu_quota.unknown(),
            ),
            ("pids limit", &["pids_limit"], self.pids_limit.unknown()),
            ("pids count", &["pids_current"], self.pids_current.unknown()),
        ]
    }

    /// JSON field → why it is `null` because it could not be read.
    pub fn unknown_fields(&self) -> BTreeMap<&'static str, String> {
        self.reasons()
            .into_iter()
            .filter_map(|(_, fields, why)| Some((fields, why?)))
            .flat_map(|(fields, why)| fields.iter().map(move |f| (*f, why.to_owned())))
            .collect()
    }

    /// One line per reason why values are unknown, for the report's list of problems:
    /// `resources: memory limit and memory usage unknown: cgroup directory ... does not exist`.
    pub fn problems(&self) -> Vec<String> {
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for (what, _, why) in self.reasons() {
            let Some(why) = why else { continue };
            match groups.iter_mut().find(|(w, _)| *w == why) {
                Some((_, whats)) => whats.push(what),
                None => groups.push((why, vec![what])),
            }
        }
        groups
            .into_iter()
            .map(|(why, whats)| format!("resources: {} unknown: {why}", join_and(&whats)))
            .collect()
    }

    /// `memory`, `cpu` and `pids` rows of the human report (not escaped for the terminal).
    pub fn rows(&self) -> [(&'static str, String); 3] {
        let mut memory = pair(
            "memory",
            &self.memory_limit_bytes.map(|&b| units::bytes(b)),
            &self
                .memory_usage_bytes
                .map(|&b| format!("usage {}", units::bytes(b))),
            "usage",
        );
        if let Some((bytes, depth)) = self.memory_parent_limit {
            let up = if depth == 1 {
                "its parent cgroup".to_owned()
            } else {
                format!("a cgroup {depth} levels up")
            };
            memory.push_str(&format!("; {up} limits it to {}", units::bytes(bytes)));
        }
        let cpu = match &self.cpu_quota {
            Reading::Value(q) => format!(
                "quota {} ({} µs every {} µs)",
                units::cpus_with_noun(q.cpus()),
                q.quota_us,
                q.period_us
            ),
            Reading::Unlimited => "no quota".to_owned(),
            Reading::ControllerOff => {
                "no quota (the cpu controller is not enabled for the cgroup)".to_owned()
            }
            Reading::Unknown(why) => format!("quota unknown ({why})"),
        };
        let pids = pair(
            "pids",
            &self.pids_limit.map(u64::to_string),
            &self.pids_current.map(|n| format!("{n} now")),
            "count",
        );
        [("memory", memory), ("cpu", cpu), ("pids", pids)]
    }
}

/// `limit X, <current>`, or `limit and <name> unknown (why)` when both are unknown for the
/// same reason. `current` is shown as is when known.
fn pair(
    controller: &str,
    limit: &Reading<String>,
    current: &Reading<String>,
    name: &str,
) -> String {
    if let (Some(a), Some(b)) = (limit.unknown(), current.unknown()) {
        if a == b {
            return format!("limit and {name} unknown ({a})");
        }
    }
    let limit = match limit {
        Reading::Value(v) => format!("limit {v}"),
        Reading::Unlimited => "limit unlimited".to_owned(),
        Reading::ControllerOff => {
            format!("limit unlimited (the {controller} controller is not enabled for the cgroup)")
        }
        Reading::Unknown(why) => format!("limit unknown ({why})"),
    };
    let current = match current {
        Reading::Value(v) => v.clone(),
        Reading::Unknown(why) => format!("{name} unknown ({why})"),
        Reading::Unlimited | Reading::ControllerOff => format!("{name} unknown"),
    };
    format!("{limit}, {current}")
}

impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Resources", 8)?;
        st.serialize_field("memory_limit_bytes", &self.memory_limit_bytes)?;
        st.serialize_field("memory_usage_bytes", &self.memory_usage_bytes)?;
        st.serialize_field("cpu_quota_cpus", &self.cpu_quota.map(Quota::cpus))?;
        st.serialize_field("cpu_quota_us", &self.cpu_quota.map(|q| q.quota_us))?;
        st.serialize_field("cpu_period_us", &self.cpu_quota.map(|q| q.period_us))?;
        st.serialize_field("pids_limit", &self.pids_limit)?;
        st.serialize_field("pids_current", &self.pids_current)?;
        st.serialize_field(
            "memory_parent_limit",
            &self
                .memory_parent_limit
                .map(|(bytes, depth)| serde_json::json!({ "bytes": bytes, "depth": depth })),
        )?;
        st.serialize_field("unknown", &self.unknown_fields())?;
        st.end()
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The directory of one controller of a cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupDir {
    V1(PathBuf),
    V2(PathBuf),
}

impl CgroupDir {
    /// Where `controller` of a cgroup is: its v1 hierarchy when one is mounted (hybrid hosts
    /// bind it there), else the unified one. `v1_path` and `v2_path` are the cgroup's paths
    /// inside the hierarchies (`/docker/<id>`). `Err`: why there is none.
    pub fn locate(
        mounts: &Mounts,
        controller: &str,
        v1_path: Option<&str>,
        v2_path: Option<&str>,
    ) -> Result<CgroupDir, String> {
        let join = |root: &Path, path: Option<&str>| {
            let p = path.ok_or_else(|| "the container's cgroup path is unknown".to_owned())?;
            cgroupfs::join(root, p).ok_or_else(|| format!("cgroup path {p:?} leaves the hierarchy"))
        };
        if let Some(root) = mounts.v1.get(controller) {
            return join(root, v1_path).map(CgroupDir::V1);
        }
        match &mounts.v2 {
            Some(root) => join(root, v2_path).map(CgroupDir::V2),
            None => Err(format!(
                "no cgroup hierarchy with the {controller} controller is mounted"
            )),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            CgroupDir::V1(d) | CgroupDir::V2(d) => d,
        }
    }
}

/// Why a file gave no text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Absent {
    /// v2: the controller is not enabled for the cgroup.
    ControllerOff(String),
    Unreadable(String),
}

impl Absent {
    /// For a limit: no controller means no limit.
    fn limit<T>(self) -> Reading<T> {
        match self {
            Absent::ControllerOff(_) => Reading::ControllerOff,
            Absent::Unreadable(why) => Reading::Unknown(why),
        }
    }

    /// For usage: no controller means not counted there.
    fn usage<T>(self) -> Reading<T> {
        match self {
            Absent::ControllerOff(why) | Absent::Unreadable(why) => Reading::Unknown(why),
        }
    }
}

/// Why `path` could not be read, in words.
pub fn read_error(path: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        io::ErrorKind::PermissionDenied => {
            format!("cannot read {}: permission denied", path.display())
        }
        io::ErrorKind::InvalidData => format!("{} is not text", path.display()),
        _ => format!("cannot read {}: {e}", path.display()),
    }
}

/// The text of `file` of `controller` in `dir`.
fn read(dir: &CgroupDir, controller: &str, file: &str) -> Result<String, Absent> {
    let d = dir.path();
    let path = d.join(file);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !d.is_dir() {
                return Err(Absent::Unreadable(format!(
                    "cgroup directory {} does not exist",
                    d.display()
                )));
            }
            if let CgroupDir::V2(_) = dir {
                if let Ok(list) = fs::read_to_string(d.join("cgroup.controllers")) {
                    if !list.split_whitespace().any(|c| c == controller) {
                        return Err(Absent::ControllerOff(format!(
                            "{} does not exist: the {controller} controller is not enabled \
                             for the cgroup",
                            path.display()
                        )));
                    }
                }
            }
            Err(Absent::Unreadable(read_error(&path, &e)))
        }
        Err(e) => Err(Absent::Unreadable(read_error(&path, &e))),
    }
}

fn quoted(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_QUOTED).collect();
    if s.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

fn number(t: &str) -> Result<u64, ParseError> {
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    t.parse().map_err(|_| ParseError::NotANumber(quoted(t)))
}

/// `memory.max` (v2) or `memory.limit_in_bytes` (v1): `None` for no limit (`max`, or v1's
/// huge sentinel).
pub fn parse_memory_limit(text: &str) -> Result<Option<u64>, ParseError> {
    match text.trim() {
        "max" => Ok(None),
        t => number(t).map(|v| crate::cgroupfs::Limit::from_bytes(v).bytes()),
    }
}

/// `pids.max`: `None` for `max`.
pub fn parse_pids_max(text: &str) -> Result<Option<u64>, ParseError> {
    match text.trim() {
        "max" => Ok(None),
        t => number(t).map(Some),
    }
}

/// A file holding one count (`memory.current`, `pids.current`, ...).
pub fn parse_count(text: &str) -> Result<u64, ParseError> {
    number(text.trim())
}

fn garbled(dir: &CgroupDir, file: &str, e: impl Display) -> String {
    format!("{}: {e}", dir.path().join(file).display())
}

/// A limit file: parsed by `parse`, `None` = no limit.
fn limit<T>(
    dir: &CgroupDir,
    controller: &str,
    file: &str,
    parse: impl FnOnce(&str) -> Result<Option<T>, ParseError>,
) -> Reading<T> {
    match read(dir, controller, file) {
        Ok(text) => match parse(&text) {
            Ok(Some(v)) => Reading::Value(v),
            Ok(None) => Reading::Unlimited,
            Err(e) => Reading::Unknown(garbled(dir, file, e)),
        },
        Err(a) => a.limit(),
    }
}

fn count(dir: &CgroupDir, controller: &str, file: &str) -> Reading<u64> {
    match read(dir, controller, file) {
        Ok(text) => match parse_count(&text) {
            Ok(v) => Reading::Value(v),
            Err(e) => Reading::Unknown(garbled(dir, file, e)),
        },
        Err(a) => a.usage(),
    }
}

/// Memory limit and usage.
pub fn read_memory(dir: &CgroupDir) -> (Reading<u64>, Reading<u64>) {
    let (max, current) = match dir {
        CgroupDir::V1(_) => ("memory.limit_in_bytes", "memory.usage_in_bytes"),
        CgroupDir::V2(_) => ("memory.max", "memory.current"),
    };
    (
        limit(dir, "memory", max, parse_memory_limit),
        count(dir, "memory", current),
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

/// Pids limit and count.
pub fn read_pids(dir: &CgroupDir) -> (Reading<u64>, Reading<u64>) {
    (
        limit(dir, "pids", "pids.max", parse_pids_max),
        count(dir, "pids", "pids.current"),
    )
}

/// Everything [`Resources`] holds for a cgroup. `path_for(controller)` is the cgroup's path
/// in the v1 hierarchy of `controller`, `path_for("")` its path in the unified one.
pub fn read_resources(mounts: &Mounts, path_for: impl Fn(&str) -> Option<String>) -> Resources {
    let unified = path_for("");
    let locate =
        |ctl: &str| CgroupDir::locate(mounts, ctl, path_for(ctl).as_deref(), unified.as_deref());
    let both = |why: String| (Reading::Unknown(why.clone()), Reading::Unknown(why));
    let (memory_limit_bytes, memory_usage_bytes) =
        locate("memory").map_or_else(both, |d| read_memory(&d));
    let cpu_quota = locate("cpu").map_or_else(Reading::Unknown, |d| read_cpu(&d));
    let (pids_limit, pids_current) = locate("pids").map_or_else(both, |d| read_pids(&d));
    let memory_parent_limit = path_for("memory")
        .or(unified)
        .and_then(|p| mounts.memory_bounding(&p))
        .filter(|b| b.depth > 0)
        .and_then(|b| Some((b.limit?, b.depth)));
    Resources {
        memory_limit_bytes,
        memory_usage_bytes,
        cpu_quota,
        pids_limit,
        pids_current,
        memory_parent_limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory standing for the cgroup mounts.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let d = std::env::temp_dir().join(format!(
                "ctrace-inspect-resources-{tag}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }

        /// `<root>/<rel>` with these files.
        fn dir(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
            let d = self.0.join(rel);
            fs::create_dir_all(&d).unwrap();
            for (name, text) in files {
                fs::write(d.join(name), text).unwrap();
            }
            d
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const CG: &str = "/docker/abc";

    fn v2_mounts(s: &Scratch) -> Mounts {
        Mounts {
            v2: Some(s.0.join("v2")),
            v1: BTreeMap::new(),
        }
    }

    fn v1_mounts(s: &Scratch) -> Mounts {
        Mounts {
            v2: Some(s.0.join("unified")),
            v1: ["memory", "cpu", "cpuacct", "pids"]
                .into_iter()
                .map(|c| {
                    (
                        c.to_owned(),
                        s.0.join(if c == "cpuacct" { "cpu" } else { c }),
                    )
                })
                .collect(),
        }
    }

    fn read_at(m: &Mounts) -> Resources {
        read_resources(m, |_| Some(CG.to_owned()))
    }

    fn quota(quota_us: u64, period_us: u64) -> Reading<Quota> {
        Reading::Value(Quota {
            quota_us,
            period_us,
        })
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_memory_limit("67108864\n"), Ok(Some(64 << 20)));
        assert_eq!(parse_memory_limit("max\n"), Ok(None));
        assert_eq!(parse_memory_limit("9223372036854771712\n"), Ok(None));
        // 64 KiB pages round differently.
        assert_eq!(parse_memory_limit("9223372036854710272"), Ok(None));
        assert_eq!(parse_memory_limit(""), Err(ParseError::Empty));
        assert_eq!(
            parse_memory_limit("lots\n"),
            Err(ParseError::NotANumber("lots".to_owned()))
        );
        assert!(parse_memory_limit("-1").is_err());
        assert!(parse_memory_limit("1 2").is_err());
        assert_eq!(parse_pids_max("max\n"), Ok(None));
        assert_eq!(parse_pids_max("50\n"), Ok(Some(50)));
        assert!(parse_pids_max("maximum").is_err());
        assert_eq!(parse_count("3\n"), Ok(3));
        assert!(parse_count("\n").is_err());
        let long = "x".repeat(100);
        let ParseError::NotANumber(q) = parse_count(&long).unwrap_err() else {
            panic!()
        };
        assert_eq!(q.chars().count(), MAX_QUOTED + 1);
    }

    #[test]
    fn v2_limits_set() {
        let s = Scratch::new("v2-set");
        s.dir(
            "v2/docker/abc",
            &[
                ("cgroup.controllers", "cpuset cpu io memory pids\n"),
                ("memory.max", "67108864\n"),
                ("memory.current", "1048576\n"),
                ("cpu.max", "50000 100000\n"),
                ("pids.max", "50\n"),
                ("pids.current", "3\n"),
            ],
        );
        let r = read_at(&v2_mounts(&s));
        assert_eq!(
            r,
            Resources {
                memory_limit_bytes: Reading::Value(64 << 20),
                memory_usage_bytes: Reading::Value(1 << 20),
                cpu_quota: quota(50_000, 100_000),
                pids_limit: Reading::Value(50),
                pids_current: Reading::Value(3),
                memory_parent_limit: None,
            }
        );
        assert!(r.problems().is_empty() && r.unknown_fields().is_empty());
        assert_eq!(
            r.rows(),
            [
                ("memory", "limit 64 MiB, usage 1 MiB".to_owned()),
                ("cpu", "quota 0.5 CPU (50000 µs every 100000 µs)".to_owned()),
                ("pids", "limit 50, 3 now".to_owned()),
            ]
        );
    }

    #[test]
    fn v1_limits_set() {
        let s = Scratch::new("v1-set");
        s.dir(
            "memory/docker/abc",
            &[
                ("memory.limit_in_bytes", "67108864\n"),
                ("memory.usage_in_bytes", "2097152\n"),
            ],
        );
        s.dir(
            "cpu/docker/abc",
            &[
                ("cpu.cfs_quota_us", "150000\n"),
                ("cpu.cfs_period_us", "100000\n"),
            ],
        );
        s.dir(
            "pids/docker/abc",
            &[("pids.max", "100\n"), ("pids.current", "7\n")],
        );
        let r = read_at(&v1_mounts(&s));
        assert_eq!(r.memory_limit_bytes, Reading::Value(64 << 20));
        assert_eq!(r.memory_usage_bytes, Reading::Value(2 << 20));
        assert_eq!(r.cpu_quota, quota(150_000, 100_000));
        assert_eq!(r.pids_limit, Reading::Value(100));
        assert_eq!(r.pids_current, Reading::Value(7));
        assert!(r.problems().is_empty());
        assert_eq!(r.rows()[1].1, "quota 1.5 CPUs (150000 µs every 100000 µs)");
        assert_eq!(r.memory_parent_limit, None);
        // A lower limit above it (a pod's) is said, in text and JSON.
        s.dir("memory/docker", &[("memory.limit_in_bytes", "33554432\n")]);
        let r = read_at(&v1_mounts(&s));
        assert_eq!(r.memory_limit_bytes, Reading::Value(64 << 20));
        assert_eq!(r.memory_parent_limit, Some((32 << 20, 1)));
        assert_eq!(
            r.rows()[0].1,
            "limit 64 MiB, usage 2 MiB; its parent cgroup limits it to 32 MiB"
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap()["memory_parent_limit"],
            serde_json::json!({ "bytes": 32 << 20, "depth": 1 })
        );
        // A higher one does not bound it.
        s.dir("memory/docker", &[("memory.limit_in_bytes", "134217728\n")]);
        assert_eq!(read_at(&v1_mounts(&s)).memory_parent_limit, None);
        // Controller-specific paths win over the unified one.
        let r = read_resources(&v1_mounts(&s), |c| {
            Some(if c == "pids" { CG } else { "/elsewhere" }.to_owned())
        });
        assert_eq!(r.pids_limit, Reading::Value(100));
        assert!(r.memory_limit_bytes.unknown().is_some());
    }

    #[test]
    fn unlimited_values() {
        let s = Scratch::new("unlimited");
        s.dir(
            "v2/docker/abc",
            &[
                ("cgroup.controllers", "cpu memory pids\n"),
                ("memory.max", "max\n"),
                ("memory.current", "0\n"),
                ("cpu.max", "max 100000\n"),
                ("pids.max", "max\n"),
                ("pids.current", "1\n"),
            ],
        );
        let r = read_at(&v2_mounts(&s));
        assert_eq!(r.memory_limit_bytes, Reading::Unlimited);
        assert_eq!(r.cpu_quota, Reading::Unlimited);
        assert_eq!(r.pids_limit, Reading::Unlimited);
        assert!(r.problems().is_empty());
        assert_eq!(
            r.rows(),
            [
                ("memory", "limit unlimited, usage 0 B".to_owned()),
                ("cpu", "no quota".to_owned()),
                ("pids", "limit unlimited, 1 now".to_owned()),
            ]
        );
        let v = serde_json::to_value(&r).unwrap();
        for f in [
            "memory_limit_bytes",
            "cpu_quota_cpus",
            "cpu_period_us",
            "pids_limit",
        ] {
            assert!(v[f].is_null(), "{f}: {v}");
        }
        assert_eq!(v["unknown"], serde_json::json!({}));

        let s = Scratch::new("unlimited-v1");
        s.dir(
            "memory/docker/abc",
            &[
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.usage_in_bytes", "4096\n"),
            ],
        );
        // -1: no quota, and the period is not needed.
        s.dir("cpu/docker/abc", &[("cpu.cfs_quota_us", "-1\n")]);
        s.dir(
            "pids/docker/abc",
            &[("pids.max", "max\n"), ("pids.current", "2\n")],
        );
        let r = read_at(&v1_mounts(&s));
        assert_eq!(r.memory_limit_bytes, Reading::Unlimited);
        assert_eq!(r.cpu_quota, Reading::Unlimited);
        assert_eq!(r.pids_limit, Reading::Unlimited);
        assert!(r.problems().is_empty(), "{:?}", r.problems());
    }

    #[test]
    fn missing_files_and_directories() {
        let s = Scratch::new("missing");
        // v2: the controllers are enabled but the files are gone.
        let d = s.dir(
            "v2/docker/abc",
            &[
                ("cgroup.controllers", "cpu memory pids\n"),
                ("pids.current", "1\n"),
            ],
        );
        let r = read_at(&v2_mounts(&s));
        let gone = |f: &str| format!("{} does not exist", d.join(f).display());
        assert_eq!(r.memory_limit_bytes, Reading::Unknown(gone("memory.max")));
        assert_eq!(
            r.memory_usage_bytes,
            Reading::Unknown(gone("memory.current"))
        );
        assert_eq!(r.cpu_quota, Reading::Unknown(gone("cpu.max")));
        assert_eq!(r.pids_limit, Reading::Unknown(gone("pids.max")));
        assert_eq!(r.pids_current, Reading::Value(1));
        assert_eq!(
            r.problems(),
            [
                format!("resources: memory limit unknown: {}", gone("memory.max")),
                format!(
                    "resources: memory usage unknown: {}",
                    gone("memory.current")
                ),
                format!("resources: cpu quota unknown: {}", gone("cpu.max")),
                format!("resources: pids limit unknown: {}", gone("pids.max")),
            ]
        );
        let u = r.unknown_fields();
        assert_eq!(u["cpu_quota_us"], gone("cpu.max"));
        assert_eq!(u["cpu_period_us"], gone("cpu.max"));
        assert_eq!(u["cpu_quota_cpus"], gone("cpu.max"));
        assert!(!u.contains_key("pids_current"));
        assert_eq!(
            r.rows()[0].1,
            format!(
                "limit unknown ({}), usage unknown ({})",
                gone("memory.max"),
                gone("memory.current")
            )
        );
        assert_eq!(
            r.rows()[2].1,
            format!("limit unknown ({}), 1 now", gone("pids.max"))
        );

        // v2: controllers not enabled for the cgroup: no limit, usage not counted there.
        fs::write(d.join("cgroup.controllers"), "pids\n").unwrap();
        let r = read_at(&v2_mounts(&s));
        assert_eq!(r.cpu_quota, Reading::ControllerOff);
        assert_eq!(r.memory_limit_bytes, Reading::ControllerOff);
        assert_eq!(
            r.memory_usage_bytes.unknown(),
            Some(
                format!(
                    "{} does not exist: the memory controller is not enabled for the cgroup",
                    d.join("memory.current").display()
                )
                .as_str()
            )
        );
        assert_eq!(
            r.rows()[1].1,
            "no quota (the cpu controller is not enabled for the cgroup)"
        );
        assert!(r.rows()[0]
            .1
            .starts_with("limit unlimited (the memory controller is not enabled for the cgroup), usage unknown ("));
        assert_eq!(r.problems().len(), 2, "{:?}", r.problems());

        // No cgroup directory at all: one reason per controller.
        let r = read_resources(&v2_mounts(&s), |_| Some("/docker/gone".to_owned()));
        let why = format!(
            "cgroup directory {} does not exist",
            s.0.join("v2/docker/gone").display()
        );
        assert_eq!(
            r.problems(),
            [format!(
                "resources: memory limit, memory usage, cpu quota, pids limit and pids count \
                 unknown: {why}"
            )]
        );
        assert_eq!(
            r.rows(),
            [
                ("memory", format!("limit and usage unknown ({why})")),
                ("cpu", format!("quota unknown ({why})")),
                ("pids", format!("limit and count unknown ({why})")),
            ]
        );

        // v1: a quota without its period.
        s.dir("cpu/docker/abc", &[("cpu.cfs_quota_us", "50000\n")]);
        let r = read_at(&v1_mounts(&s));
        assert_eq!(
            r.cpu_quota.unknown(),
            Some(
                format!(
                    "{} does not exist",
                    s.0.join("cpu/docker/abc/cpu.cfs_period_us").display()
                )
                .as_str()
            )
        );
        // v1 directories do not exist for memory and pids.
        assert_eq!(
            r.memory_limit_bytes.unknown(),
            Some(
                format!(
                    "cgroup directory {} does not exist",
                    s.0.join("memory/docker/abc").display()
                )
                .as_str()
            )
        );
    }

    #[test]
    fn unreadable_and_garbled_files() {
        let s = Scratch::new("garbage");
        let d = s.dir(
            "v2/docker/abc",
            &[
                ("cgroup.controllers", "cpu memory pids\n"),
                ("memory.max", "lots\n"),
                ("cpu.max", "50000\n"),
                ("pids.max", "\n"),
            ],
        );
        fs::write(d.join("pids.current"), b"\xff\xfe").unwrap();
        // A directory where the file should be: reading it fails (even as root).
        fs::create_dir_all(d.join("memory.current")).unwrap();
        let r = read_at(&v2_mounts(&s));
        let p = |f: &str| d.join(f).display().to_string();
        assert_eq!(
            r.memory_limit_bytes.unknown(),
            Some(format!("{}: not a number: \"lots\"", p("memory.max")).as_str())
        );
        let usage = r.memory_usage_bytes.unknown().unwrap();
        assert!(
            usage.starts_with(&format!("cannot read {}: ", p("memory.current"))),
            "{usage}"
        );
        assert_eq!(
            r.cpu_quota.unknown(),
            Some(
                format!(
                    "{}: invalid value \"50000\": quota without period",
                    p("cpu.max")
                )
                .as_str()
            )
        );
        assert_eq!(
            r.pids_limit.unknown(),
            Some(format!("{}: empty file", p("pids.max")).as_str())
        );
        assert_eq!(
            r.pids_current.unknown(),
            Some(format!("{} is not text", p("pids.current")).as_str())
        );
        assert_eq!(r.problems().len(), 5);
        let v = serde_json::to_value(&r).unwrap();
        assert!(v["memory_limit_bytes"].is_null());
        assert_eq!(
            v["unknown"]["memory_limit_bytes"],
            format!("{}: not a number: \"lots\"", p("memory.max"))
        );
        assert_eq!(v["unknown"].as_object().unwrap().len(), 7);

        // v1: garbage in the quota, a zero period.
        s.dir("cpu/docker/abc", &[("cpu.cfs_quota_us", "0x10\n")]);
        let r = read_at(&v1_mounts(&s));
        assert!(r
            .cpu_quota
            .unknown()
            .unwrap()
            .ends_with("not a number: \"0x10\""));
        s.dir(
            "cpu/docker/abc",
            &[("cpu.cfs_quota_us", "1000\n"), ("cpu.cfs_period_us", "0\n")],
        );
        let r = read_at(&v1_mounts(&s));
        assert!(
            r.cpu_quota.unknown().unwrap().ends_with("period is 0"),
            "{:?}",
            r.cpu_quota
        );
    }

    #[test]
    fn read_errors_in_words() {
        let p = Path::new("/sys/fs/cgroup/x/memory.max");
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(
            read_error(p, &e(libc::EACCES)),
            "cannot read /sys/fs/cgroup/x/memory.max: permission denied"
        );
        assert_eq!(
            read_error(p, &e(libc::ENOENT)),
            "/sys/fs/cgroup/x/memory.max does not exist"
        );
        assert!(
            read_error(p, &e(libc::EIO)).starts_with("cannot read /sys/fs/cgroup/x/memory.max: ")
        );
    }

    #[test]
    fn locating_directories() {
        let none = Mounts::default();
        assert_eq!(
            CgroupDir::locate(&none, "memory", Some(CG), Some(CG)),
            Err("no cgroup hierarchy with the memory controller is mounted".to_owned())
        );
        let s = Scratch::new("locate");
        let m = v1_mounts(&s);
        assert_eq!(
            CgroupDir::locate(&m, "memory", None, Some(CG)),
            Err("the container's cgroup path is unknown".to_owned())
        );
        assert_eq!(
            CgroupDir::locate(&m, "memory", Some("/a/../../etc"), None),
            Err("cgroup path \"/a/../../etc\" leaves the hierarchy".to_owned())
        );
        assert_eq!(
            CgroupDir::locate(&m, "memory", Some(CG), None),
            Ok(CgroupDir::V1(s.0.join("memory/docker/abc")))
        );
        // A controller with no v1 hierarchy: the unified one.
        assert_eq!(
            CgroupDir::locate(&m, "io", None, Some(CG)),
            Ok(CgroupDir::V2(s.0.join("unified/docker/abc")))
        );
        // No path at all: every value unknown, for that reason.
        let r = read_resources(&none, |_| None);
        assert_eq!(r.problems().len(), 3, "{:?}", r.problems());
    }
}
