//! The cgroup files, v1 and v2, read one way: where the hierarchies are mounted
//! ([`mounts`]), the memory, cpu and pids controllers' files ([`memory`], [`cpu`],
//! [`pids`]) and pressure stall information ([`psi`]).
//!
//! | value        | cgroup v1                                                | cgroup v2                  |
//! |--------------|----------------------------------------------------------|----------------------------|
//! | memory limit | `memory.limit_in_bytes` (2^62 or more: none)             | `memory.max` (`max`: none) |
//! | memory usage | `memory.usage_in_bytes`                                  | `memory.current`           |
//! | cpu quota    | `cpu.cfs_quota_us` (`-1`: none) and `cpu.cfs_period_us`  | `cpu.max` (`max ...`: none) |
//! | cpu usage    | `cpuacct.usage` (ns)                                     | `cpu.stat` `usage_usec`    |
//! | pids limit   | `pids.max` (`max`: none)                                 | `pids.max`                 |
//! | pids count   | `pids.current`                                           | `pids.current`             |
//! | pressure     | `cpu.pressure` in the unified hierarchy (hybrid hosts)   | `cpu.pressure`             |
//!
//! One result model ([`Reading`]): a value, none (no limit), or unknown with the reason. The
//! parsers are pure ([`parse`] holds the one error type and the one flat keyed parser); the
//! readers are thin and never panic. The memory figures kept with incidents
//! ([`MemoryStats`]) and the CPU samples of the throttle detector ([`CpuSample`]) are
//! `Option`s built from the same parsers: "no data" never turns into 0.

pub mod cpu;
pub mod memory;
pub mod mounts;
pub mod parse;
pub mod pids;
pub mod psi;
pub mod reading;

pub use self::{
    cpu::{
        monotonic_now, read_cpu, read_quota, read_sample, read_usage, CpuHierarchy, CpuPaths,
        CpuSample, Quota, SampleError,
    },
    memory::{
        parse_memory_limit, read_memory, Bounding, Limit, MemoryBreakdown, MemoryDir, MemorySource,
        MemoryStats,
    },
    mounts::{ancestors, join, Mounts},
    parse::{parse_count, parse_flat_keyed, ParseError},
    pids::{parse_pids_max, read_pids},
    psi::{parse_pressure, read_pressure, Pressure, PressureLine},
    reading::{read_error, CgroupDir, Reading},
};
