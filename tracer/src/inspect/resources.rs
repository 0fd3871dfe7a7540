//! A container's resource limits and usage from its cgroup files, v1 and v2, read through
//! [`crate::cgroup`]: each value a [`Reading`], the report's rows and its list of problems.

use std::collections::BTreeMap;

use serde::{ser::SerializeStruct as _, Serialize, Serializer};

use crate::{
    cgroup::{read_cpu, read_memory, read_pids, CgroupDir, Mounts, Quota, Reading},
    units,
};

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
    use std::{fs, path::PathBuf};

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
