//! The cgroup file systems as mounted: where each v1 controller and the v2 hierarchy live, and
//! readers for the memory controller's files (v1 and v2). Parsers are pure; "no data" (a
//! missing or unreadable file) stays distinct from zero.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    os::unix::ffi::OsStringExt as _,
    path::{Component, Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Mount points of the cgroup hierarchies (from `/proc/self/mounts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    /// cgroup2: `/sys/fs/cgroup` on pure v2 hosts, `/sys/fs/cgroup/unified` on hybrid ones.
    pub v2: Option<PathBuf>,
    /// v1 controller name (`memory`, `cpu`, `cpuacct`, `pids`, `name=systemd`, ...) → mount.
    pub v1: BTreeMap<String, PathBuf>,
}

impl Mounts {
    /// This host's mounts.
    pub fn current() -> Self {
        Self::parse(&crate::host::proc::self_mounts().unwrap_or_default())
    }

    /// Parse `/proc/self/mounts` content; the first mount of each hierarchy wins, malformed
    /// lines are skipped.
    pub fn parse(mounts: &str) -> Self {
        let mut m = Self::default();
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, mount_point, fs_type, options, ..] = fields[..] else {
                continue;
            };
            match fs_type {
                "cgroup2" => {
                    m.v2.get_or_insert_with(|| unescape(mount_point));
                }
                "cgroup" => {
                    for opt in options.split(',') {
                        if is_controller(opt) {
                            m.v1.entry(opt.to_owned())
                                .or_insert_with(|| unescape(mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        m
    }

    /// Directory of `cgroup_path` in the v1 hierarchy of `controller`.
    pub fn v1_dir(&self, controller: &str, cgroup_path: &str) -> Option<PathBuf> {
        join(self.v1.get(controller)?, cgroup_path)
    }

    /// Directory of `cgroup_path` in the v2 hierarchy.
    pub fn v2_dir(&self, cgroup_path: &str) -> Option<PathBuf> {
        join(self.v2.as_ref()?, cgroup_path)
    }

    /// Where the memory controller of `cgroup_path` is: v1 when a v1 `memory` hierarchy is
    /// mounted (hybrid hosts bind it there), else v2.
    pub fn memory(&self, cgroup_path: &str) -> Option<MemoryDir> {
        if let Some(d) = self.v1_dir("memory", cgroup_path) {
            return Some(MemoryDir::V1(d));
        }
        self.v2_dir(cgroup_path).map(MemoryDir::V2)
    }

    /// The memory directory whose limit bounds `cgroup_path`: the lowest limit from the cgroup
    /// itself up through its ancestors (the nearest on ties; the cgroup itself when none has
    /// a limit), how many levels up it is, and that limit. The kernel enforces every limit on
    /// the way, so a pod's or a parent slice's can be the one a container hits.
    pub fn memory_bounding(&self, cgroup_path: &str) -> Option<Bounding> {
        let own = self.memory(cgroup_path)?;
        let mut best: Option<Bounding> = None;
        for (depth, path) in ancestors(cgroup_path).enumerate().take(MEMORY_MAX_DEPTH) {
            let Some(dir) = self.memory(path) else {
                continue;
            };
            if let Some(Limit::Bytes(b)) = dir.read_limit() {
                if best.as_ref().is_none_or(|lowest| Some(b) < lowest.limit) {
                    best = Some(Bounding {
                        dir,
                        depth: depth as u32,
                        limit: Some(b),
                    });
                }
            }
        }
        Some(best.unwrap_or(Bounding {
            dir: own,
            depth: 0,
            limit: None,
        }))
    }
}

/// What [`Mounts::memory_bounding`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounding {
    pub dir: MemoryDir,
    /// Levels above the cgroup (0: its own directory).
    pub depth: u32,
    /// The limit in bytes; `None` when no directory up the tree has one.
    pub limit: Option<u64>,
}

/// How many cgroup levels [`Mounts::memory_bounding`] looks at (the kernel side walks as many).
const MEMORY_MAX_DEPTH: usize = tracer_common::MEMCG_MAX_DEPTH as usize;

/// `cgroup_path`, then each of its ancestors below the hierarchy's root: `/a/b`, `/a`.
pub fn ancestors(cgroup_path: &str) -> impl Iterator<Item = &str> {
    let trimmed = cgroup_path.trim_end_matches('/');
    std::iter::successors((!trimmed.is_empty()).then_some(trimmed), |p| {
        let parent = &p[..p.rfind('/')?];
        (!parent.is_empty()).then_some(parent)
    })
}

/// Mount options that name a controller (not `rw`, `relatime`, ...).
fn is_controller(opt: &str) -> bool {
    const NOT: [&str; 8] = [
        "rw",
        "ro",
        "nosuid",
        "nodev",
        "noexec",
        "relatime",
        "noatime",
        "nsdelegate",
    ];
    !opt.is_empty()
        && !NOT.contains(&opt)
        && !opt.starts_with("release_agent")
        && !opt.starts_with("clone_children")
        && !opt.starts_with("seclabel")
        && !opt.starts_with("memory_")
        && opt != "xattr"
        && opt != "cpuset_v2_mode"
        && opt != "noprefix"
}

/// Undo `/proc/mounts` octal escapes (`\040` for a space).
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        match (b[i], octal) {
            (b'\\', Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// `root` joined with a cgroup path, refusing `..` so a path from a container's state can
/// never leave the hierarchy.
pub fn join(root: &Path, cgroup_path: &str) -> Option<PathBuf> {
    let mut dir = root.to_path_buf();
    for c in Path::new(cgroup_path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => dir.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(dir)
}

/// A cgroup's memory controller directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryDir {
    V1(PathBuf),
    V2(PathBuf),
}

/// Memory figures of a cgroup at one moment. `None`: the file was missing or unreadable.
/// Read back from a record, a field an older ctrace did not write takes its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Limit in bytes; `None` also for "no limit" (`max`, or v1's huge sentinel).
    pub limit_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    /// Highest usage seen (v1 `max_usage_in_bytes`, v2 `memory.peak`).
    pub peak_bytes: Option<u64>,
    /// v1 `memory.failcnt`: times usage hit the limit.
    pub failcnt: Option<u64>,
    /// OOM events: v2 `memory.events` `oom` (v1 has no such counter).
    pub oom_events: Option<u64>,
    /// OOM kills of the cgroup's processes since it was created: v1 `oom_control`
    /// `oom_kill` (Linux 4.13+), v2 `memory.events` `oom_kill` (counts its descendants too).
    pub oom_kills: Option<u64>,
    /// v2 `memory.events` `max`: times usage was about to exceed the limit.
    pub max_events: Option<u64>,
    /// These are the last figures read before the cgroup was gone, not a reading at the
    /// moment they are reported for.
    pub stale: bool,
    /// Who read the figures.
    pub source: MemorySource,
    /// With [`MemorySource::Kernel`]: how many cgroup levels above the victim's own memory
    /// cgroup the limit (and the usage and peak beside it) belongs to; 0 is its own.
    pub limit_depth: Option<u32>,
    /// What the memory was made of (`memory.stat`); `None`: it could not be read. Boxed: the
    /// records carrying these figures stay small.
    pub breakdown: Option<Box<MemoryBreakdown>>,
}

/// What a cgroup's memory was made of, from `memory.stat` (and v1 `memory.kmem.*`,
/// `memory.memsw.*`, v2 `memory.swap.current`). `None`: not known (a missing file or key),
/// never 0 for want of data.
///
/// `file` is the page cache as the kernel counts it, which includes `shmem` (tmpfs,
/// `/dev/shm`, shared anonymous mappings) on v1 and v2 alike; `file_active` and
/// `file_inactive` do not (shmem pages are on the anon LRU lists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryBreakdown {
    /// v2 `anon`, v1 `total_rss` (or `rss`).
    pub anon: Option<u64>,
    /// v2 `file`, v1 `total_cache` (or `cache`): includes `shmem`.
    pub file: Option<u64>,
    pub file_active: Option<u64>,
    pub file_inactive: Option<u64>,
    /// v2 `shmem`, v1 `total_shmem` (or `shmem`).
    pub shmem: Option<u64>,
    /// v2 `kernel` (or `kernel_stack` + `slab` + `pagetables` before Linux 5.18), v1
    /// `memory.kmem.usage_in_bytes`.
    pub kernel: Option<u64>,
    /// v2 `sock`; v1 has none (its TCP counter is kept apart from the memory one).
    pub sock: Option<u64>,
    /// v2 `memory.swap.current`, v1 `memory.memsw.usage_in_bytes` minus
    /// `memory.usage_in_bytes` (with swap accounting).
    pub swap: Option<u64>,
    /// Read before the moment it is reported for (the last sample before the kill), as
    /// [`MemoryStats::stale`].
    pub stale: bool,
    /// `anon` includes the victim's anon RSS at the kill, from the kernel's record: the
    /// files were read after the kill had freed it.
    pub victim_anon_added: bool,
}

impl MemoryBreakdown {
    /// From v2 `memory.stat` and `memory.swap.current`.
    pub fn from_v2(stat: &BTreeMap<String, u64>, swap_current: Option<u64>) -> Self {
        let get = |k: &str| stat.get(k).copied();
        let kernel = get("kernel").or_else(|| {
            let parts = [get("kernel_stack"), get("slab"), get("pagetables")];
            parts
                .iter()
                .any(Option::is_some)
                .then(|| parts.iter().flatten().sum())
        });
        Self {
            anon: get("anon"),
            file: get("file"),
            file_active: get("active_file"),
            file_inactive: get("inactive_file"),
            shmem: get("shmem"),
            kernel,
            sock: get("sock"),
            swap: swap_current,
            stale: false,
            victim_anon_added: false,
        }
    }

    /// From v1 `memory.stat` (its hierarchical `total_*` keys, else the cgroup's own),
    /// `memory.kmem.usage_in_bytes`, and `memory.memsw.usage_in_bytes` with
    /// `memory.usage_in_bytes`.
    pub fn from_v1(
        stat: &BTreeMap<String, u64>,
        kmem_usage: Option<u64>,
        memsw_usage: Option<u64>,
        usage: Option<u64>,
    ) -> Self {
        let get = |k: &str| {
            stat.get(&format!("total_{k}"))
                .or_else(|| stat.get(k))
                .copied()
        };
        Self {
            anon: get("rss"),
            file: get("cache"),
            file_active: get("active_file"),
            file_inactive: get("inactive_file"),
            shmem: get("shmem"),
            kernel: kmem_usage,
            sock: None,
            swap: memsw_usage.zip(usage).map(|(sw, u)| sw.saturating_sub(u)),
            stale: false,
            victim_anon_added: false,
        }
    }

    /// The page cache without `shmem`, which `file` includes.
    pub fn file_without_shmem(&self) -> Option<u64> {
        self.file.map(|f| f.saturating_sub(self.shmem.unwrap_or(0)))
    }
}

/// Where memory figures come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemorySource {
    /// The cgroup's files, read by ctrace.
    #[default]
    Cgroupfs,
    /// The kernel, from the memory cgroup's counter at the OOM (usage, limit, peak).
    Kernel,
}

/// v1 reports "no limit" as the largest page-aligned `i64` (9223372036854771712 with 4 KiB
/// pages), the kernel's `PAGE_COUNTER_MAX` pages; anything from 2^62 up is that.
const V1_UNLIMITED_FLOOR: u64 = 1 << 62;

/// A memory limit as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit: v2 `max`, or v1's huge sentinel.
    Unlimited,
    Bytes(u64),
}

impl Limit {
    /// A limit in bytes as the kernel gives it: from v1's "no limit" sentinel up, none.
    pub fn from_bytes(v: u64) -> Self {
        if v >= V1_UNLIMITED_FLOOR {
            Self::Unlimited
        } else {
            Self::Bytes(v)
        }
    }

    pub fn bytes(self) -> Option<u64> {
        match self {
            Self::Unlimited => None,
            Self::Bytes(b) => Some(b),
        }
    }
}

/// `memory.limit_in_bytes` (v1) or `memory.max` (v2) as a setting: `None` for garbage (no
/// data), distinct from [`Limit::Unlimited`].
pub fn parse_limit_setting(text: &str) -> Option<Limit> {
    let t = text.trim();
    if t == "max" {
        return Some(Limit::Unlimited);
    }
    t.parse::<u64>().ok().map(Limit::from_bytes)
}

/// `memory.limit_in_bytes` (v1) or `memory.max` (v2): `None` for no limit or garbage.
pub fn parse_limit(text: &str) -> Option<u64> {
    parse_limit_setting(text).and_then(Limit::bytes)
}

pub fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `key value` lines (`memory.events`, `memory.oom_control`, `memory.stat`).
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (k, v) = (f.next()?, f.next()?);
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

impl MemoryDir {
    /// The limit as configured: `None` when the file is missing, unreadable or garbage (no
    /// data), unlike [`Limit::Unlimited`].
    pub fn read_limit(&self) -> Option<Limit> {
        let file = match self {
            Self::V1(d) => d.join("memory.limit_in_bytes"),
            Self::V2(d) => d.join("memory.max"),
        };
        parse_limit_setting(&std::fs::read_to_string(file).ok()?)
    }

    /// Read what exists now. Never fails: missing files are `None`.
    pub fn read(&self) -> MemoryStats {
        let read = |dir: &Path, f: &str| std::fs::read_to_string(dir.join(f)).ok();
        match self {
            Self::V1(d) => {
                let oom = read(d, "memory.oom_control").map(|t| parse_flat_keyed(&t));
                let usage = read(d, "memory.usage_in_bytes")
                    .as_deref()
                    .and_then(parse_u64);
                let breakdown = read(d, "memory.stat").map(|t| {
                    MemoryBreakdown::from_v1(
                        &parse_flat_keyed(&t),
                        read(d, "memory.kmem.usage_in_bytes")
                            .as_deref()
                            .and_then(parse_u64),
                        read(d, "memory.memsw.usage_in_bytes")
                            .as_deref()
                            .and_then(parse_u64),
                        usage,
                    )
                    .into()
                });
                MemoryStats {
                    limit_bytes: read(d, "memory.limit_in_bytes")
                        .as_deref()
                        .and_then(parse_limit),
                    usage_bytes: usage,
                    peak_bytes: read(d, "memory.max_usage_in_bytes")
                        .as_deref()
                        .and_then(parse_u64),
                    failcnt: read(d, "memory.failcnt").as_deref().and_then(parse_u64),
                    oom_events: None,
                    oom_kills: oom.as_ref().and_then(|m| m.get("oom_kill").copied()),
                    max_events: None,
                    stale: false,
                    source: MemorySource::Cgroupfs,
                    limit_depth: None,
                    breakdown,
                }
            }
            Self::V2(d) => {
                let events = read(d, "memory.events").map(|t| parse_flat_keyed(&t));
                let breakdown = read(d, "memory.stat").map(|t| {
                    MemoryBreakdown::from_v2(
                        &parse_flat_keyed(&t),
                        read(d, "memory.swap.current")
                            .as_deref()
                            .and_then(parse_u64),
                    )
                    .into()
                });
                MemoryStats {
                    limit_bytes: read(d, "memory.max").as_deref().and_then(parse_limit),
                    usage_bytes: read(d, "memory.current").as_deref().and_then(parse_u64),
                    peak_bytes: read(d, "memory.peak").as_deref().and_then(parse_u64),
                    failcnt: None,
                    oom_events: events.as_ref().and_then(|m| m.get("oom").copied()),
                    oom_kills: events.as_ref().and_then(|m| m.get("oom_kill").copied()),
                    max_events: events.as_ref().and_then(|m| m.get("max").copied()),
                    stale: false,
                    source: MemorySource::Cgroupfs,
                    limit_depth: None,
                    breakdown,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    #[test]
    fn hybrid_and_pure_v2_mounts() {
        let m = Mounts::parse(HYBRID);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(m.v1["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(m.v1["name=systemd"], Path::new("/sys/fs/cgroup/systemd"));
        assert!(!m.v1.contains_key("rw") && !m.v1.contains_key("relatime"));
        assert_eq!(
            m.memory("/docker/abc"),
            Some(MemoryDir::V1(PathBuf::from(
                "/sys/fs/cgroup/memory/docker/abc"
            )))
        );
        let combined = Mounts::parse("cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0");
        assert_eq!(combined.v1["cpu"], combined.v1["cpuacct"]);
        let v2 =
            Mounts::parse("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate,memory_recursiveprot 0 0");
        assert_eq!(
            v2.memory("/system.slice/docker-x.scope"),
            Some(MemoryDir::V2(PathBuf::from(
                "/sys/fs/cgroup/system.slice/docker-x.scope"
            )))
        );
        assert_eq!(Mounts::parse("garbage\n\n"), Mounts::default());
        assert_eq!(unescape("/a\\040b\\777"), PathBuf::from("/a b\\777"));
        assert_eq!(unescape("a\\134b\\011"), PathBuf::from("a\\b\t"));
    }

    #[test]
    fn joins_refuse_escapes() {
        let root = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(join(root, "/docker/x"), Some(root.join("docker/x")));
        assert_eq!(join(root, "/"), Some(root.to_path_buf()));
        assert_eq!(join(root, "/docker/../../etc"), None);
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("104857600\n"), Some(100 << 20));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None, "v1 unlimited");
        assert_eq!(parse_limit("garbage"), None);
        let ev = parse_flat_keyed("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\nbad\nx y\n");
        assert_eq!((ev["max"], ev["oom"], ev["oom_kill"]), (12, 1, 1));
        assert!(!ev.contains_key("x"));
    }

    #[test]
    fn limit_settings_keep_no_limit_apart_from_no_data() {
        assert_eq!(
            parse_limit_setting("67108864\n"),
            Some(Limit::Bytes(64 << 20))
        );
        assert_eq!(parse_limit_setting("max\n"), Some(Limit::Unlimited));
        assert_eq!(
            parse_limit_setting("9223372036854771712\n"),
            Some(Limit::Unlimited),
            "v1 unlimited"
        );
        assert_eq!(parse_limit_setting(""), None);
        assert_eq!(parse_limit_setting("-1"), None);
        assert_eq!(Limit::Bytes(5).bytes(), Some(5));
        assert_eq!(Limit::Unlimited.bytes(), None);

        let d = std::env::temp_dir().join(format!("ctrace-limit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let (v1, v2) = (MemoryDir::V1(d.clone()), MemoryDir::V2(d.clone()));
        assert_eq!((v1.read_limit(), v2.read_limit()), (None, None), "no files");
        std::fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(d.join("memory.max"), "67108864\n").unwrap();
        assert_eq!(v1.read_limit(), Some(Limit::Unlimited));
        assert_eq!(v2.read_limit(), Some(Limit::Bytes(64 << 20)));
        std::fs::write(d.join("memory.max"), "max\n").unwrap();
        assert_eq!(v2.read_limit(), Some(Limit::Unlimited));
        assert_eq!(MemoryDir::V2(d.join("gone")).read_limit(), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn ancestors_stop_below_the_root() {
        let all = |p| ancestors(p).collect::<Vec<_>>();
        assert_eq!(
            all("/kubepods/pod1/abc"),
            ["/kubepods/pod1/abc", "/kubepods/pod1", "/kubepods"]
        );
        assert_eq!(all("/docker/abc/"), ["/docker/abc", "/docker"]);
        assert_eq!(all("relative/x"), ["relative/x", "relative"]);
        assert!(all("/").is_empty());
        assert!(all("").is_empty());
    }

    /// A limit above the container (a pod's) bounds it when lower than its own; the nearest
    /// wins a tie; with no limit anywhere, the container's own directory.
    fn bound(dir: MemoryDir, depth: u32, limit: Option<u64>) -> Bounding {
        Bounding { dir, depth, limit }
    }

    #[test]
    fn the_lowest_limit_up_the_tree_bounds_a_cgroup() {
        let root = std::env::temp_dir().join(format!("ctrace-bound-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let leaf = root.join("memory/pod/ctr");
        std::fs::create_dir_all(&leaf).unwrap();
        let limit = |dir: &Path, v: &str| {
            std::fs::write(dir.join("memory.limit_in_bytes"), v).unwrap();
        };
        let mounts = Mounts {
            v2: None,
            v1: [("memory".to_owned(), root.join("memory"))].into(),
        };
        let pod = root.join("memory/pod");
        limit(&leaf, "9223372036854771712\n");
        limit(&pod, "9223372036854771712\n");
        assert_eq!(
            mounts.memory_bounding("/pod/ctr"),
            Some(bound(MemoryDir::V1(leaf.clone()), 0, None)),
            "no limit anywhere: its own"
        );
        limit(&leaf, "104857600\n");
        limit(&pod, "50331648\n");
        assert_eq!(
            mounts.memory_bounding("/pod/ctr"),
            Some(bound(MemoryDir::V1(pod.clone()), 1, Some(48 << 20)))
        );
        limit(&leaf, "50331648\n");
        assert_eq!(
            mounts.memory_bounding("/pod/ctr"),
            Some(bound(MemoryDir::V1(leaf.clone()), 0, Some(48 << 20))),
            "a tie: the nearest"
        );
        // An unreadable ancestor is no limit; an escape is refused.
        std::fs::remove_file(pod.join("memory.limit_in_bytes")).unwrap();
        limit(&leaf, "104857600\n");
        assert_eq!(
            mounts.memory_bounding("/pod/ctr"),
            Some(bound(MemoryDir::V1(leaf.clone()), 0, Some(100 << 20)))
        );
        assert_eq!(mounts.memory_bounding("/pod/../../etc"), None);
        // Pure v2, systemd driver: a pod slice's `memory.max` above the container's scope.
        let v2root = root.join("unified");
        let slice = v2root.join("kubepods.slice/kubepods-pod1.slice");
        let scope = slice.join("cri-containerd-abc.scope");
        std::fs::create_dir_all(&scope).unwrap();
        std::fs::write(v2root.join("kubepods.slice/memory.max"), "max\n").unwrap();
        std::fs::write(slice.join("memory.max"), "67108864\n").unwrap();
        std::fs::write(scope.join("memory.max"), "max\n").unwrap();
        let v2 = Mounts {
            v2: Some(v2root.clone()),
            v1: BTreeMap::new(),
        };
        let path = "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope";
        assert_eq!(
            v2.memory_bounding(path),
            Some(bound(MemoryDir::V2(slice.clone()), 1, Some(64 << 20)))
        );
        std::fs::write(scope.join("memory.max"), "33554432\n").unwrap();
        assert_eq!(
            v2.memory_bounding(path),
            Some(bound(MemoryDir::V2(scope.clone()), 0, Some(32 << 20)))
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn reads_v1_and_v2_directories() {
        let d = std::env::temp_dir().join(format!("ctrace-mem-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("memory.limit_in_bytes"), "104857600\n").unwrap();
        std::fs::write(d.join("memory.usage_in_bytes"), "104800000\n").unwrap();
        std::fs::write(d.join("memory.max_usage_in_bytes"), "104857600\n").unwrap();
        std::fs::write(d.join("memory.failcnt"), "345\n").unwrap();
        std::fs::write(
            d.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        let v1 = MemoryDir::V1(d.clone()).read();
        assert_eq!(v1.limit_bytes, Some(100 << 20));
        assert_eq!(
            (v1.failcnt, v1.oom_kills, v1.oom_events),
            (Some(345), Some(1), None)
        );
        let v2 = MemoryDir::V2(d.clone()).read();
        assert_eq!(
            v2,
            MemoryStats::default(),
            "v2 files absent: no data, not zero"
        );
        std::fs::write(d.join("memory.max"), "max\n").unwrap();
        std::fs::write(d.join("memory.current"), "4096\n").unwrap();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        let v2 = MemoryDir::V2(d.clone()).read();
        assert_eq!(
            (v2.limit_bytes, v2.usage_bytes, v2.oom_kills, v2.max_events),
            (None, Some(4096), Some(1), Some(3))
        );
        assert_eq!(v2.breakdown, None, "no memory.stat: no breakdown");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A v2 `memory.stat` of a `-m 64m` container whose /dev/shm was filled (Linux 6.x).
    const V2_STAT: &str = "\
anon 1261568
file 65810432
kernel 1335296
kernel_stack 49152
pagetables 110592
sec_pagetables 0
percpu 0
sock 4096
vmalloc 0
shmem 65011712
zswap 0
file_mapped 0
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
inactive_anon 65863680
active_anon 409600
inactive_file 602112
active_file 196608
unevictable 0
slab_reclaimable 688128
slab_unreclaimable 442368
slab 1130496
pgfault 17271
";

    #[test]
    fn breakdown_from_a_v2_memory_stat() {
        let b = MemoryBreakdown::from_v2(&parse_flat_keyed(V2_STAT), Some(0));
        assert_eq!(
            b,
            MemoryBreakdown {
                anon: Some(1261568),
                file: Some(65810432),
                file_active: Some(196608),
                file_inactive: Some(602112),
                shmem: Some(65011712),
                kernel: Some(1335296),
                sock: Some(4096),
                swap: Some(0),
                stale: false,
                victim_anon_added: false,
            }
        );
        // `file` includes shmem: the page cache alone is the rest.
        assert_eq!(b.file_without_shmem(), Some(65810432 - 65011712));
        // Before Linux 5.18 there is no `kernel`: its parts add up; without swap
        // accounting there is no memory.swap.current.
        let old = "anon 4096\nfile 0\nkernel_stack 16384\nslab 8192\npagetables 4096\n";
        let b = MemoryBreakdown::from_v2(&parse_flat_keyed(old), None);
        assert_eq!((b.kernel, b.swap, b.sock), (Some(28672), None, None));
        assert_eq!((b.anon, b.file, b.shmem), (Some(4096), Some(0), None));
        let none = MemoryBreakdown::from_v2(&parse_flat_keyed(""), None);
        assert_eq!(none, MemoryBreakdown::default(), "unknown, never 0");
        assert_eq!(none.file_without_shmem(), None);
    }

    /// A v1 `memory.stat` of a `-m 32m` container whose `tail /dev/zero` holds its memory.
    const V1_STAT: &str = "\
cache 540672
rss 32854016
rss_huge 0
shmem 0
mapped_file 0
dirty 0
writeback 0
swap 0
inactive_anon 32841728
active_anon 12288
inactive_file 405504
active_file 135168
unevictable 0
hierarchical_memory_limit 33554432
hierarchical_memsw_limit 67108864
total_cache 540672
total_rss 32854016
total_rss_huge 0
total_shmem 0
total_mapped_file 0
total_swap 0
total_inactive_anon 32841728
total_active_anon 12288
total_inactive_file 405504
total_active_file 135168
";

    #[test]
    fn breakdown_from_a_v1_memory_stat() {
        let b = MemoryBreakdown::from_v1(
            &parse_flat_keyed(V1_STAT),
            Some(155648),
            Some(33554432 + 1048576),
            Some(33554432),
        );
        assert_eq!(
            b,
            MemoryBreakdown {
                anon: Some(32854016),
                file: Some(540672),
                file_active: Some(135168),
                file_inactive: Some(405504),
                shmem: Some(0),
                kernel: Some(155648),
                sock: None,
                swap: Some(1048576),
                stale: false,
                victim_anon_added: false,
            }
        );
        // The hierarchical totals win over the cgroup's own figures; without them, the own.
        let own = "rss 100\ncache 300\nshmem 200\ntotal_rss 1000\n";
        let b = MemoryBreakdown::from_v1(&parse_flat_keyed(own), None, None, Some(4096));
        assert_eq!(
            (b.anon, b.file, b.shmem),
            (Some(1000), Some(300), Some(200))
        );
        assert_eq!(b.file_without_shmem(), Some(100));
        assert_eq!(
            (b.kernel, b.swap),
            (None, None),
            "no kmem, no memsw: unknown"
        );
    }

    #[test]
    fn reads_the_breakdown_with_the_other_figures() {
        let d = std::env::temp_dir().join(format!("ctrace-stat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("memory.stat"), V1_STAT).unwrap();
        std::fs::write(d.join("memory.usage_in_bytes"), "33554432\n").unwrap();
        std::fs::write(d.join("memory.memsw.usage_in_bytes"), "33554432\n").unwrap();
        std::fs::write(d.join("memory.kmem.usage_in_bytes"), "155648\n").unwrap();
        let b = MemoryDir::V1(d.clone()).read().breakdown.unwrap();
        assert_eq!(
            (b.anon, b.kernel, b.swap),
            (Some(32854016), Some(155648), Some(0))
        );
        std::fs::write(d.join("memory.stat"), V2_STAT).unwrap();
        std::fs::write(d.join("memory.swap.current"), "8192\n").unwrap();
        let b = MemoryDir::V2(d.clone()).read().breakdown.unwrap();
        assert_eq!((b.shmem, b.swap), (Some(65011712), Some(8192)));
        let _ = std::fs::remove_dir_all(&d);
    }
}
