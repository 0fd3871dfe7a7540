//! The memory controller's files, v1 and v2: the limit, usage and peak, the OOM counters,
//! the breakdown of `memory.stat`, and the limit that bounds a cgroup from above. Parsers are
//! pure; "no data" (a missing or unreadable file) stays distinct from zero and from "no
//! limit".

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use super::{
    mounts::ancestors,
    parse::{number, parse_count, parse_flat_keyed, ParseError},
    psi::{read_pressure, Pressure},
    reading::{count, limit},
    CgroupDir, Mounts, Reading,
};

/// A cgroup's directory read for its memory controller.
pub type MemoryDir = CgroupDir;

impl Mounts {
    /// Where the memory controller of `cgroup_path` is: v1 when a v1 `memory` hierarchy is
    /// mounted (hybrid hosts bind it there), else v2.
    pub fn memory(&self, cgroup_path: &str) -> Option<MemoryDir> {
        CgroupDir::locate(self, "memory", Some(cgroup_path), Some(cgroup_path)).ok()
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

/// Memory figures of a cgroup at one moment. `None`: the file was missing or unreadable.
/// Read back from a record, a field an older ctrace did not write takes its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Memory pressure (v2 `memory.pressure`, PSI) when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Box<Pressure>>,
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

/// `memory.max` (v2) or `memory.limit_in_bytes` (v1) as a setting: [`Limit::Unlimited`] for
/// `max` or v1's huge sentinel; an error (no data) for anything else that is not a number.
pub fn parse_memory_limit(text: &str) -> Result<Limit, ParseError> {
    match text.trim() {
        "max" => Ok(Limit::Unlimited),
        t => number(t).map(Limit::from_bytes),
    }
}

impl MemoryDir {
    /// The limit as configured: `None` when the file is missing, unreadable or garbage (no
    /// data), unlike [`Limit::Unlimited`].
    pub fn read_limit(&self) -> Option<Limit> {
        let file = match self {
            Self::V1(d) => d.join("memory.limit_in_bytes"),
            Self::V2(d) => d.join("memory.max"),
        };
        parse_memory_limit(&std::fs::read_to_string(file).ok()?).ok()
    }

    /// The highest usage seen (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`, 5.19+): one
    /// file.
    pub fn read_peak(&self) -> Option<u64> {
        let file = match self {
            Self::V1(d) => d.join("memory.max_usage_in_bytes"),
            Self::V2(d) => d.join("memory.peak"),
        };
        parse_count(&std::fs::read_to_string(file).ok()?).ok()
    }

    /// The usage now (v1 `memory.usage_in_bytes`, v2 `memory.current`): one file, for
    /// periodic samples.
    pub fn read_usage(&self) -> Option<u64> {
        let file = match self {
            Self::V1(d) => d.join("memory.usage_in_bytes"),
            Self::V2(d) => d.join("memory.current"),
        };
        parse_count(&std::fs::read_to_string(file).ok()?).ok()
    }

    /// Read what exists now. Never fails: missing files are `None`.
    pub fn read(&self) -> MemoryStats {
        let read = |dir: &Path, f: &str| std::fs::read_to_string(dir.join(f)).ok();
        let limit_bytes = |t: &str| parse_memory_limit(t).ok().and_then(Limit::bytes);
        let count = |t: &str| parse_count(t).ok();
        match self {
            Self::V1(d) => {
                let oom = read(d, "memory.oom_control").map(|t| parse_flat_keyed(&t));
                let usage = read(d, "memory.usage_in_bytes").as_deref().and_then(count);
                let breakdown = read(d, "memory.stat").map(|t| {
                    MemoryBreakdown::from_v1(
                        &parse_flat_keyed(&t),
                        read(d, "memory.kmem.usage_in_bytes")
                            .as_deref()
                            .and_then(count),
                        read(d, "memory.memsw.usage_in_bytes")
                            .as_deref()
                            .and_then(count),
                        usage,
                    )
                    .into()
                });
                MemoryStats {
                    limit_bytes: read(d, "memory.limit_in_bytes")
                        .as_deref()
                        .and_then(limit_bytes),
                    usage_bytes: usage,
                    peak_bytes: read(d, "memory.max_usage_in_bytes")
                        .as_deref()
                        .and_then(count),
                    failcnt: read(d, "memory.failcnt").as_deref().and_then(count),
                    oom_events: None,
                    oom_kills: oom.as_ref().and_then(|m| m.get("oom_kill").copied()),
                    max_events: None,
                    stale: false,
                    source: MemorySource::Cgroupfs,
                    limit_depth: None,
                    breakdown,
                    pressure: None,
                }
            }
            Self::V2(d) => {
                let events = read(d, "memory.events").map(|t| parse_flat_keyed(&t));
                let breakdown = read(d, "memory.stat").map(|t| {
                    MemoryBreakdown::from_v2(
                        &parse_flat_keyed(&t),
                        read(d, "memory.swap.current").as_deref().and_then(count),
                    )
                    .into()
                });
                MemoryStats {
                    limit_bytes: read(d, "memory.max").as_deref().and_then(limit_bytes),
                    usage_bytes: read(d, "memory.current").as_deref().and_then(count),
                    peak_bytes: read(d, "memory.peak").as_deref().and_then(count),
                    failcnt: None,
                    oom_events: events.as_ref().and_then(|m| m.get("oom").copied()),
                    oom_kills: events.as_ref().and_then(|m| m.get("oom_kill").copied()),
                    max_events: events.as_ref().and_then(|m| m.get("max").copied()),
                    stale: false,
                    source: MemorySource::Cgroupfs,
                    limit_depth: None,
                    breakdown,
                    pressure: read_pressure(d, "memory.pressure"),
                }
            }
        }
    }
}

/// Memory limit and usage, as readings.
pub fn read_memory(dir: &CgroupDir) -> (Reading<u64>, Reading<u64>) {
    let (max, current) = match dir {
        CgroupDir::V1(_) => ("memory.limit_in_bytes", "memory.usage_in_bytes"),
        CgroupDir::V2(_) => ("memory.max", "memory.current"),
    };
    (
        limit(dir, "memory", max, |t| {
            parse_memory_limit(t).map(Limit::bytes)
        }),
        count(dir, "memory", current),
    )
}

#[cfg(test)]
mod tests;
