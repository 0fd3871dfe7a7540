//! Loading, configuring and attaching the eBPF programs; reading their counters.

mod batch;
pub mod btf;
pub mod floor;
mod load;
pub mod proginfo;
pub mod tracefs;

pub use load::{HookAttempt, HookStatus};

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    time::Duration,
};

use aya::{
    maps::{MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{
        fentry::FEntryLinkId, fexit::FExitLinkId, kprobe::KProbeLinkId,
        tp_btf::BtfTracePointLinkId, trace_point::TracePointLinkId, BtfTracePoint, FEntry, FExit,
        KProbe, TracePoint,
    },
    Ebpf,
};
use tracer_common::{
    cap_counter, counter, kind, kind_bit, names, CapKey, CapState, RunqHist, SigRun, TaskOffsets,
    TpOffsets, OFFSET_ABSENT,
};

use crate::event::kind_name;

/// The eBPF object built by `build.rs` (empty when built without bpf-linker).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
const _: () = assert!(
    matches!(names::OBJECT.as_bytes(), b"tracer"),
    "object name drifted"
);

/// The embedded eBPF object's build id for `ctrace --version`: the FNV-1a 64-bit hash of its
/// bytes in 12 hex digits, or `None` when built without eBPF programs.
pub fn object_build_id() -> Option<String> {
    build_id(OBJECT)
}

fn build_id(object: &[u8]) -> Option<String> {
    if object.is_empty() {
        return None;
    }
    let hash = object.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Some(format!("{hash:016x}")[..12].to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "this ctrace binary was built without its eBPF programs (bpf-linker was missing at build \
         time); build it with `cargo xtask build`"
    )]
    NoObject,
    #[error("ctrace must run as root to load eBPF programs (try: sudo ctrace ...)")]
    NotRoot,
    /// Root, but without a capability the programs need (`crate::privilege::WATCH`).
    #[error("{0}")]
    MissingCapabilities(String),
    #[error("{0}")]
    Tracefs(String),
    #[error("loading the eBPF object failed: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("eBPF program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("eBPF map {map}: {message}")]
    Map { map: &'static str, message: String },
    #[error("none of the requested events can be traced on this kernel")]
    NothingAttached,
    /// An environment variable for tests holds a value ctrace does not know.
    #[error("{0}")]
    Env(String),
}

/// One program and the tracepoint it attaches to.
struct ProbeSpec {
    program: &'static str,
    category: &'static str,
    tracepoint: &'static str,
    kind: u16,
}

const PROBES: &[ProbeSpec] = &[
    ProbeSpec {
        program: "sched_process_exec",
        category: "sched",
        tracepoint: "sched_process_exec",
        kind: kind::EXEC,
    },
    ProbeSpec {
        program: "sched_process_exit",
        category: "sched",
        tracepoint: "sched_process_exit",
        kind: kind::EXIT,
    },
    ProbeSpec {
        program: "sched_process_fork",
        category: "sched",
        tracepoint: "sched_process_fork",
        kind: kind::FORK,
    },
    ProbeSpec {
        program: "signal_generate",
        category: "signal",
        tracepoint: "signal_generate",
        kind: kind::SIGNAL,
    },
    ProbeSpec {
        program: "mark_victim",
        category: "oom",
        tracepoint: "mark_victim",
        kind: kind::OOM_VICTIM,
    },
    ProbeSpec {
        program: "cap_capable",
        category: "capability",
        tracepoint: "cap_capable",
        kind: kind::CAPABILITY,
    },
    ProbeSpec {
        program: "cgroup_mkdir",
        category: "cgroup",
        tracepoint: "cgroup_mkdir",
        kind: kind::CGROUP_MKDIR,
    },
    ProbeSpec {
        program: "cgroup_rmdir",
        category: "cgroup",
        tracepoint: "cgroup_rmdir",
        kind: kind::CGROUP_RMDIR,
    },
    ProbeSpec {
        program: "cgroup_attach_task",
        category: "cgroup",
        tracepoint: "cgroup_attach_task",
        kind: kind::CGROUP_ATTACH,
    },
];

/// Signals always reported: the ones that end or interrupt processes.
pub const DEFAULT_SIGNALS: &[u32] = &[
    1,  // SIGHUP
    2,  // SIGINT
    3,  // SIGQUIT
    6,  // SIGABRT
    9,  // SIGKILL
    11, // SIGSEGV
    15, // SIGTERM
];

/// What to trace and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bit `kind_bit(k)` per kind to trace.
    pub kinds: u32,
    /// Signals to report: [`signal_bit`] of each.
    pub signals: u64,
    /// Ring buffer size in bytes (a power of two multiple of the page size).
    pub ring_bytes: u32,
    pub cap_window: Duration,
    /// Ignored or already-pending signals identical to the last one their CPU saw are folded
    /// into one record for this long after it (zero: every signal is a record).
    pub signal_window: Duration,
    pub exit_all_threads: bool,
    /// Report allowed capability checks, not only denials.
    pub cap_allowed: bool,
    /// With `cap_allowed`, also those of host processes. When not, the kernel drops the
    /// allowed checks of cgroups [`Probe::mark_host_cgroup`] named (the others still come).
    pub cap_allowed_host: bool,
    /// Aggregate run-queue delay per cgroup in the kernel (sched_switch; the wakeups too where
    /// the kernel's own stamp cannot be read).
    pub runq: bool,
    /// Let the programs log their own diagnostics (aya-log), read by [`Probe::take_logger`].
    pub ebpf_log: bool,
    /// Use BTF-typed tracepoints where they help (signal targets, run-queue delay); without
    /// them ctrace works as on kernels where they cannot load.
    pub btf_tracepoints: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kinds: kind_bit(kind::EXEC) | kind_bit(kind::EXIT),
            signals: DEFAULT_SIGNALS.iter().fold(0, |m, &s| m | signal_bit(s)),
            ring_bytes: 4 << 20,
            cap_window: Duration::from_secs(5),
            signal_window: Duration::from_secs(1),
            exit_all_threads: false,
            cap_allowed: false,
            cap_allowed_host: true,
            runq: false,
            ebpf_log: false,
            btf_tracepoints: true,
        }
    }
}

/// The bit of signal `sig` (1..=64) in [`Options::signals`]: bit `sig`, and bit 0 for
/// SIGRTMAX (64), as 0 is no signal.
pub fn signal_bit(sig: u32) -> u64 {
    match sig {
        64 => 1,
        1..=63 => 1 << sig,
        _ => 0,
    }
}

/// OOM victims' process and cgroup as the kernel read them from the victim task.
pub struct OomVictims(aya::maps::HashMap<MapData, u32, tracer_common::OomVictimTask>);

impl crate::pipeline::VictimSource for OomVictims {
    fn victim(&self, tid: u32) -> Option<crate::pipeline::KernelVictim> {
        let v = self.0.get(&tid, 0).ok()?;
        Some(crate::pipeline::KernelVictim {
            tgid: v.tgid,
            cgroup_id: v.cgroup_id,
            boot_ns: v.boot_ns,
            memcg: crate::event::MemcgAtOom::from_kernel(v.memcg_depth, &v.memcg, page_size()),
            context: crate::event::OomContext::from_kernel(&v),
        })
    }
}

/// The kernel's page size, in which its memory counters (and `/proc/PID/statm`) count.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Per-kind counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounters {
    pub attempts: u64,
    pub lost_ringbuf_full: u64,
    pub read_errors: u64,
    pub filtered: u64,
}

/// The kernel's counts of capability checks (`CAP_COUNTERS`), summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapCounters {
    /// Checks folded into `CAP_DEDUP` slots (or counted in `insert_failed`).
    pub checks: u64,
    /// Slot incarnations started.
    pub slots: u64,
    /// Checks that found no slot and could not make one.
    pub insert_failed: u64,
    /// Allowed checks of cgroups marked host ([`Probe::mark_host_cgroup`]), dropped before
    /// the fold (not in `checks`).
    pub host_dropped: u64,
}

/// An attachment, to detach by program name.
enum Link {
    Classic(TracePointLinkId),
    Btf(BtfTracePointLinkId),
    FEntry(FEntryLinkId),
    FExit(FExitLinkId),
    KProbe(KProbeLinkId),
}

impl Link {
    /// The kind of hook, as `watch` and the `stats` record name it.
    fn hook(&self) -> &'static str {
        match self {
            Self::Classic(_) => "tracepoint",
            Self::Btf(_) => "tp_btf",
            Self::FEntry(_) => "fentry",
            Self::FExit(_) => "fexit",
            Self::KProbe(_) => "kprobe",
        }
    }
}

/// The kernel function whose checks are capability checks, where the tracepoint is missing.
pub const CAP_FUNCTION: &str = "cap_capable";
/// fexit on [`CAP_FUNCTION`]: arguments and verdict in one run.
const CAP_FEXIT_PROGRAM: &str = "cap_capable_fexit";
/// The BTF-typed program on the `cap_capable` tracepoint, preferred to the classic one.
const CAP_BTF_PROGRAM: &str = "cap_capable_btf";
/// kprobe and kretprobe on [`CAP_FUNCTION`], where fexit is refused.
const CAP_KPROBE_PROGRAM: &str = "cap_capable_kprobe";
const CAP_KRETPROBE_PROGRAM: &str = "cap_capable_kretprobe";

/// The OOM killer's function whose `struct oom_control` says which limit was hit.
pub const OOM_FUNCTION: &str = "oom_kill_process";
const OOM_FENTRY_PROGRAM: &str = "oom_kill_process_fentry";
const OOM_KPROBE_PROGRAM: &str = "oom_kill_process_kprobe";

/// Environment variable restricting the hooks tried for capability checks, in order (comma
/// separated among `tracepoint`, `fexit`, `kprobe`): for tests, to exercise each hook on a
/// kernel that offers several. Unset: all three, in that order.
pub const CAP_HOOKS_ENV: &str = "CTRACE_CAP_HOOKS";

/// Environment variable setting how many keys the capability de-duplication map (`CAP_DEDUP`)
/// holds instead of its 16,384: for tests, to make its LRU evict (and fail inserts) under a
/// small load, so that the counters of checks lost that way can be checked.
pub const CAP_SLOTS_ENV: &str = "CTRACE_CAP_SLOTS";

/// The hooks to try for capability checks, in order, from [`CAP_HOOKS_ENV`].
fn cap_hooks(env: Option<&str>) -> Vec<&'static str> {
    const ALL: [&str; 3] = ["tracepoint", "fexit", "kprobe"];
    match env {
        None => ALL.to_vec(),
        Some(v) => v
            .split(',')
            .filter_map(|w| ALL.iter().copied().find(|h| *h == w.trim()))
            .collect(),
    }
}

/// The feature each program serves, for the mechanisms `watch` reports.
fn feature_of(program: &str) -> Option<&'static str> {
    if program == "cap_capable" || program.starts_with("cap_capable_") {
        Some("capability")
    } else if program.starts_with("oom_kill_process_") {
        Some("oom_context")
    } else {
        None
    }
}

/// Feature → the hook serving it (`capability` → `tracepoint`, `fexit` or `kprobe`;
/// `oom_context` → `fentry` or `kprobe`), from the programs attached.
pub fn mechanisms(programs: &[AttachedProgram]) -> BTreeMap<&'static str, &'static str> {
    programs
        .iter()
        .filter_map(|p| Some((feature_of(p.name)?, p.hook)))
        .collect()
}

/// Index of the `cap` parameter of `cap_capable()` in this kernel's BTF. Since 5.1 the
/// prototype is `(const struct cred *cred, struct user_namespace *targ_ns, int cap, unsigned
/// int opts)` (`opts`: `CAP_OPT_*` flags; an `int audit` before), still so in 6.18; the index
/// is looked up by name so that a kernel that moved it is refused, not misread.
pub fn cap_arg_index(btf: &btf::Btf) -> Result<u16, String> {
    let params = btf
        .func_params(CAP_FUNCTION)
        .ok_or_else(|| format!("{CAP_FUNCTION} is not in the kernel's BTF"))?;
    let i = params
        .iter()
        .position(|(name, ty)| name == "cap" && ty == "int")
        .ok_or_else(|| {
            format!(
                "{CAP_FUNCTION}({}) has no `int cap` parameter",
                params
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    // The programs read it at a constant place (the verifier's rule for context reads).
    if i == CAP_ARG {
        Ok(CAP_ARG as u16)
    } else {
        Err(format!(
            "{CAP_FUNCTION}: `cap` is argument {i} on this kernel, not {CAP_ARG} as ctrace reads it"
        ))
    }
}

/// Where the programs on [`CAP_FUNCTION`] read `cap` (tracer-ebpf's `CAP_ARG`).
const CAP_ARG: usize = 2;

/// Programs of the run-queue delay histograms and their BTF tracepoints: the wakeups' stamp
/// tasks ([`runq_source::STAMPS`](tracer_common::runq_source::STAMPS)) and are attached only
/// where the kernel's own stamp cannot be read.
const RUNQ_PROGRAMS: [(&str, &str); 3] = [
    ("runq_switch", "sched_switch"),
    ("runq_wakeup", "sched_wakeup"),
    ("runq_wakeup_new", "sched_wakeup_new"),
];

/// Environment variable choosing where run-queue delay comes from: `sched_info` (the kernel's
/// stamp, read by `sched_switch` alone) or `stamps` (programs on the wakeups): for tests, to
/// exercise the fallback on a kernel that offers both. Unset: `sched_info` where BTF has its
/// members, else `stamps`.
pub const RUNQ_SOURCE_ENV: &str = "CTRACE_RUNQ_SOURCE";

/// Environment variable naming a directory laid out like tracefs's `events/` to read
/// tracepoint formats from instead (for tests: a tracepoint absent there counts as absent).
pub const FORMATS_DIR_ENV: &str = "CTRACE_TRACEFS_EVENTS";

/// The BTF-typed variant of a classic program, preferred when it loads.
const SIGNAL_BTF_PROGRAM: &str = "signal_generate_btf";
/// The same for forks and execs.
const FORK_BTF_PROGRAM: &str = "sched_process_fork_btf";
const EXEC_BTF_PROGRAM: &str = "sched_process_exec_btf";
const EXEC_TRACEPOINT: &str = "sched_process_exec";
const FORK_TRACEPOINT: &str = "sched_process_fork";
/// Beside the classic `mark_victim`: the victim task's process and cgroup into `OOM_VICTIMS`.
const OOM_VICTIM_BTF_PROGRAM: &str = "mark_victim_btf";

/// A program ctrace attached, as the kernel knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedProgram {
    /// The program's name in the object.
    pub name: &'static str,
    /// How it is attached: `tracepoint`, `tp_btf`, `fexit` or `kprobe` (kretprobes too).
    pub hook: &'static str,
    /// The kernel's id of the loaded program (`bpftool prog show id N`), when it could be read.
    pub id: Option<u32>,
    /// Its attachment was detached without error ([`Probe::detach`]).
    pub detached: bool,
    /// Runs the kernel skipped because a BPF program was already running on the CPU (its
    /// recursion guard), as of the last [`Probe::refresh_programs`]; `None` when the kernel
    /// does not report them or the program info could not be read.
    pub recursion_misses: Option<u64>,
}

/// Loaded and attached programs.
pub struct Probe {
    ebpf: Ebpf,
    links: Vec<(&'static str, Link)>,
    /// Every program attached at load, with its kernel id and whether it was detached.
    programs: Vec<AttachedProgram>,
    /// Kinds that are actually attached.
    pub active_kinds: u32,
    /// Run-queue delay histograms are being collected.
    pub runq_active: bool,
    /// Signal targets' process and cgroup are read in the kernel (BTF-typed program); when
    /// false they come from ctrace's process table.
    pub signal_targets_in_kernel: bool,
    /// OOM victims' process and cgroup are read in the kernel ([`Probe::take_oom_victims`]).
    pub oom_victims_in_kernel: bool,
    logger: Option<aya_log::EbpfLogger<EbpfLog>>,
    /// Things the user should know (a tracepoint missing on this kernel, ...).
    pub warnings: Vec<String>,
    /// Every hook tried at load, in order, with how it fared (`ctrace doctor`).
    pub hooks: Vec<HookAttempt>,
    /// Fields missing from tracepoints this kernel has, by tracepoint.
    pub field_gaps: BTreeMap<String, Vec<String>>,
    /// Exit codes are read from the task (`task_struct.exit_code` is in the kernel's BTF).
    pub exit_codes: bool,
    /// The kernel drops allowed capability checks of the cgroups marked host
    /// ([`Probe::mark_host_cgroup`]).
    pub cap_host_filter: bool,
}

impl Probe {
    /// Whether this binary can load its programs at all: it has them, and runs as root.
    pub fn check_privileges() -> Result<(), ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NoObject);
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(ProbeError::NotRoot);
        }
        if let Some(eff) = crate::privilege::effective() {
            let missing = crate::privilege::missing(&crate::privilege::WATCH, eff);
            if !missing.is_empty() {
                return Err(ProbeError::MissingCapabilities(crate::privilege::message(
                    &missing,
                )));
            }
        }
        Ok(())
    }

    /// The reader of the programs' own log records (with `Options::ebpf_log`), once.
    pub fn take_logger(&mut self) -> Option<aya_log::EbpfLogger<EbpfLog>> {
        self.logger.take()
    }

    /// Tells the programs whether the reader has stopped polling the ring (`true`: every
    /// record wakes it) or polls it again (`false`: records wait for the poll, but for urgent
    /// ones and a filling ring). `false` when this cannot be said (an object without the
    /// map, or the update refused): then the reader must go on polling.
    pub fn set_reader_asleep(&mut self, asleep: bool) -> bool {
        let Some(map) = self.ebpf.map_mut(names::READER_MAP) else {
            return false;
        };
        let mut slot = match aya::maps::Array::<_, u32>::try_from(map) {
            Ok(a) => a,
            Err(e) => {
                log::debug!("{}: {e}", names::READER_MAP);
                return false;
            }
        };
        slot.set(0, u32::from(asleep), 0)
            .map_err(|e| log::debug!("{}: {e}", names::READER_MAP))
            .is_ok()
    }

    /// Tells the programs that cgroup `id` is the host's (`host`), or no longer known to be
    /// (`!host`): while marked, its allowed capability checks are dropped in the kernel
    /// (with [`Options::cap_allowed_host`] off). The map is an LRU: a cgroup it evicts comes
    /// back with its next check. Errors are logged only: the cost of a missed mark is a
    /// record userspace drops anyway.
    pub fn mark_host_cgroup(&mut self, id: u64, host: bool) {
        if !self.cap_host_filter {
            return;
        }
        let Some(map) = self.ebpf.map_mut(names::CAP_HOST_MAP) else {
            return;
        };
        let mut set = match aya::maps::HashMap::<_, u64, u8>::try_from(map) {
            Ok(m) => m,
            Err(e) => {
                log::debug!("{}: {e}", names::CAP_HOST_MAP);
                return;
            }
        };
        let r = if host {
            set.insert(id, 1, 0)
        } else {
            set.remove(&id)
        };
        match r {
            // Removing a cgroup the LRU already evicted is not an error worth a line.
            Err(_) if !host => {}
            Err(e) => log::debug!("{}: {e}", names::CAP_HOST_MAP),
            Ok(()) => {}
        }
    }

    /// Take the ring buffer (once), with its size in bytes as the kernel reports it.
    pub fn take_ring(&mut self) -> Result<(RingBuf<MapData>, Option<u64>), ProbeError> {
        let map = self
            .ebpf
            .take_map(names::EVENTS_MAP)
            .ok_or(ProbeError::Map {
                map: "EVENTS",
                message: "missing or already taken".into(),
            })?;
        let size = match &map {
            aya::maps::Map::RingBuf(data) => data.info().ok().map(|i| u64::from(i.max_entries())),
            _ => None,
        };
        let ring = RingBuf::try_from(map).map_err(|e| ProbeError::Map {
            map: "EVENTS",
            message: e.to_string(),
        })?;
        Ok((ring, size))
    }

    /// The map of OOM victims' process and cgroup, when the kernel fills it.
    pub fn take_oom_victims(&mut self) -> Option<OomVictims> {
        if !self.oom_victims_in_kernel {
            return None;
        }
        let map = self.ebpf.take_map(names::OOM_VICTIMS_MAP)?;
        aya::maps::HashMap::try_from(map).ok().map(OomVictims)
    }

    /// Detach every program: no new records are produced after this returns.
    pub fn detach(&mut self) {
        for (name, link) in self.links.drain(..) {
            let Some(p) = self.ebpf.program_mut(name) else {
                continue;
            };
            let detached = match link {
                Link::Classic(link) => {
                    <&mut TracePoint>::try_from(p).is_ok_and(|tp| tp.detach(link).is_ok())
                }
                Link::Btf(link) => {
                    <&mut BtfTracePoint>::try_from(p).is_ok_and(|tp| tp.detach(link).is_ok())
                }
                Link::FEntry(link) => {
                    <&mut FEntry>::try_from(p).is_ok_and(|f| f.detach(link).is_ok())
                }
                Link::FExit(link) => {
                    <&mut FExit>::try_from(p).is_ok_and(|f| f.detach(link).is_ok())
                }
                Link::KProbe(link) => {
                    <&mut KProbe>::try_from(p).is_ok_and(|k| k.detach(link).is_ok())
                }
            };
            if let Some(prog) = self.programs.iter_mut().find(|p| p.name == name) {
                prog.detached = detached;
            }
        }
    }

    /// Read each program's recursion misses from the kernel (`bpf(BPF_OBJ_GET_INFO_BY_FD)`),
    /// into [`Probe::programs`]; returns their sum over the programs that report them. The
    /// programs stay loaded after [`Probe::detach`], so this works at the end too.
    pub fn refresh_programs(&mut self) -> u64 {
        let mut total = 0;
        for prog in &mut self.programs {
            let Some(fd) = self.ebpf.program(prog.name).and_then(|p| p.fd().ok()) else {
                continue;
            };
            use std::os::fd::AsFd as _;
            prog.recursion_misses = proginfo::read(fd.as_fd())
                .ok()
                // An answer about another program is no answer.
                .filter(|st| prog.id.is_none_or(|id| id == st.id))
                .and_then(|st| st.recursion_misses);
            total += prog.recursion_misses.unwrap_or(0);
        }
        total
    }

    /// The programs attached at load: names, kernel ids, and whether [`Probe::detach`]
    /// detached them. What the closing `stats` record reports.
    pub fn programs(&self) -> &[AttachedProgram] {
        &self.programs
    }

    /// Every entry of a per-CPU hash map, with its value on each CPU. Entries evicted while
    /// iterating are skipped; a map the object lacks reads as empty.
    fn per_cpu_entries<K: aya::Pod, V: aya::Pod>(
        &self,
        name: &'static str,
    ) -> Result<Vec<(K, Vec<V>)>, ProbeError> {
        let Some(map) = self.ebpf.map(name) else {
            return Ok(Vec::new());
        };
        if let (
            aya::maps::Map::PerCpuHashMap(data) | aya::maps::Map::PerCpuLruHashMap(data),
            Ok(cpus),
        ) = (map, aya::util::nr_cpus())
        {
            match batch::per_cpu_entries(std::os::fd::AsFd::as_fd(data.fd()), cpus) {
                Ok(entries) => return Ok(entries),
                // Kernels before 5.6: one key at a time, below.
                Err(e) => log::debug!("{name}: batch lookup refused ({e}); iterating"),
            }
        }
        let m = PerCpuHashMap::<_, K, V>::try_from(map).map_err(|e| ProbeError::Map {
            map: name,
            message: e.to_string(),
        })?;
        Ok(m.iter()
            .filter_map(Result::ok)
            .map(|(k, values)| (k, values.iter().copied().collect()))
            .collect())
    }

    /// Every (key, cpu, state) of the capability de-duplication map.
    pub fn cap_states(&self) -> Result<Vec<(CapKey, u32, CapState)>, ProbeError> {
        let mut out = Vec::new();
        for (key, values) in self.per_cpu_entries::<CapKey, CapState>(names::CAP_DEDUP_MAP)? {
            for (cpu, st) in values.iter().enumerate() {
                if st.total > 0 {
                    out.push((key, cpu as u32, *st));
                }
            }
        }
        Ok(out)
    }

    /// Each CPU's value of the one slot of per-CPU array `name`.
    fn per_cpu_slot<T: aya::Pod>(&self, name: &'static str) -> Result<Vec<T>, ProbeError> {
        let err = |e: &dyn std::fmt::Display| ProbeError::Map {
            map: name,
            message: e.to_string(),
        };
        let map = self.ebpf.map(name).ok_or_else(|| err(&"missing"))?;
        let arr = PerCpuArray::<_, T>::try_from(map).map_err(|e| err(&e))?;
        let values = arr.get(&0, 0).map_err(|e| err(&e))?;
        Ok(values.iter().copied().collect())
    }

    /// Each CPU's slot of the signal fold (`SIG_FOLD`), with runs only.
    pub fn signal_runs(&self) -> Result<Vec<(u32, SigRun)>, ProbeError> {
        Ok(self
            .per_cpu_slot::<SigRun>(names::SIG_FOLD_MAP)?
            .into_iter()
            .enumerate()
            .filter(|(_, st)| st.run != 0)
            .map(|(cpu, st)| (cpu as u32, st))
            .collect())
    }

    /// The cgroup v2 id of the task each CPU last switched to (`RUNQ_CURRENT`): what runs on
    /// each CPU now, as far as the run-queue program saw (0 where it has not run yet).
    pub fn runq_current(&self) -> Result<Vec<u64>, ProbeError> {
        let mut ids = self.per_cpu_slot::<u64>(names::RUNQ_CURRENT_MAP)?;
        ids.retain(|&id| id != 0);
        Ok(ids)
    }

    /// Cumulative run-queue delay histograms per cgroup v2 id, summed over CPUs.
    pub fn runq(&self) -> Result<HashMap<u64, RunqHist>, ProbeError> {
        let mut out = HashMap::new();
        for (cgroup, values) in self.per_cpu_entries::<u64, RunqHist>(names::RUNQ_MAP)? {
            let mut sum = RunqHist::ZERO;
            for h in &values {
                sum.count += h.count;
                sum.sum_ns += h.sum_ns;
                for (s, b) in sum.buckets.iter_mut().zip(h.buckets.iter()) {
                    *s += b;
                }
            }
            out.insert(cgroup, sum);
        }
        Ok(out)
    }

    /// The kernel's capability check counters, summed over CPUs; `None` for an object
    /// without them.
    pub fn cap_counters(&self) -> Result<Option<CapCounters>, ProbeError> {
        if self.ebpf.map(names::CAP_COUNTERS_MAP).is_none() {
            return Ok(None);
        }
        let sums = self.per_cpu_sums(names::CAP_COUNTERS_MAP)?;
        let sum = |i: u32| sums.get(i as usize).copied().unwrap_or(0);
        Ok(Some(CapCounters {
            checks: sum(cap_counter::CHECKS),
            slots: sum(cap_counter::SLOTS),
            insert_failed: sum(cap_counter::INSERT_FAILED),
            host_dropped: sum(cap_counter::HOST_DROPPED),
        }))
    }

    /// Kernel-side counters per kind, summed over CPUs.
    pub fn counters(&self) -> Result<[KindCounters; kind::COUNT], ProbeError> {
        let sums = self.per_cpu_sums(names::COUNTERS_MAP)?;
        let sum = |i: u32| sums.get(i as usize).copied().unwrap_or(0);
        let mut out = [KindCounters::default(); kind::COUNT];
        for (k, c) in out.iter_mut().enumerate() {
            let base = k as u32 * counter::STRIDE;
            *c = KindCounters {
                attempts: sum(base + counter::EMIT_ATTEMPT),
                lost_ringbuf_full: sum(base + counter::LOST_RINGBUF_FULL),
                read_errors: sum(base + counter::READ_ERROR),
                filtered: sum(base + counter::FILTERED),
            };
        }
        Ok(out)
    }

    /// Every slot of a per-CPU array of counters, summed over CPUs: one batch lookup, or one
    /// lookup per slot where the kernel refuses batches (before 5.6). Read several times a
    /// second (status, losses, throttle ticks): 40 slots one by one were most of an idle
    /// agent's system calls.
    fn per_cpu_sums(&self, name: &'static str) -> Result<Vec<u64>, ProbeError> {
        let err = |e: &dyn std::fmt::Display| ProbeError::Map {
            map: name,
            message: e.to_string(),
        };
        let map = self.ebpf.map(name).ok_or_else(|| err(&"missing"))?;
        if let (aya::maps::Map::PerCpuArray(data), Ok(cpus)) = (map, aya::util::nr_cpus()) {
            match batch::per_cpu_entries::<u32, u64>(std::os::fd::AsFd::as_fd(data.fd()), cpus) {
                Ok(entries) => {
                    let mut sums = vec![0; entries.len()];
                    for (slot, values) in entries {
                        if let Some(s) = sums.get_mut(slot as usize) {
                            *s = values.iter().sum();
                        }
                    }
                    return Ok(sums);
                }
                Err(e) => log::debug!("{name}: batch lookup refused ({e}); one slot at a time"),
            }
        }
        let arr = PerCpuArray::<_, u64>::try_from(map).map_err(|e| err(&e))?;
        (0..arr.len())
            .map(|i| Ok(arr.get(&i, 0).map_err(|e| err(&e))?.iter().sum()))
            .collect()
    }
}

/// Prints the eBPF programs' log records on stderr, whatever `CTRACE_LOG` says: they are only
/// produced when asked for with `--ebpf-log`.
pub struct EbpfLog;

impl log::Log for EbpfLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        eprintln!(
            "ctrace: ebpf {}: {}",
            record.level().as_str().to_ascii_lowercase(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Kernel struct offsets the programs need, from BTF.
pub fn task_offsets(vmlinux: &Path) -> Result<TaskOffsets, String> {
    let raw = std::fs::read(vmlinux).map_err(|e| format!("{}: {e}", vmlinux.display()))?;
    let btf = btf::Btf::parse(&raw).map_err(|e| format!("{}: {e}", vmlinux.display()))?;
    Ok(offsets_from_btf(&btf))
}

/// [`task_offsets`] from parsed BTF.
pub fn offsets_from_btf(btf: &btf::Btf) -> TaskOffsets {
    let member = |s: &str, m: &str| {
        btf.member_offset(s, m)
            .and_then(|o| u16::try_from(o).ok())
            .unwrap_or(OFFSET_ABSENT)
    };
    let off = |m: &str| member("task_struct", m);
    // A member of a member that is a struct itself (not a pointer).
    let nested = |(s, m): (&str, &str), (inner, im): (&str, &str)| {
        btf.member_offset(s, m)
            .zip(btf.member_offset(inner, im))
            .and_then(|(a, b)| u16::try_from(a + b).ok())
            .unwrap_or(OFFSET_ABSENT)
    };
    // `css_set.subsys[memory_cgrp_id]`: an array of pointers indexed by controller id.
    let css_set_memcg = btf
        .enum_value("memory_cgrp_id")
        .and_then(|id| u32::try_from(id).ok())
        .zip(btf.member_offset("css_set", "subsys"))
        .and_then(|(id, base)| u16::try_from(base + 8 * id).ok())
        .unwrap_or(OFFSET_ABSENT);
    // The css pointer points at `mem_cgroup.css`; the counter is `memory`, further on.
    let memcg_memory = btf
        .member_offset("mem_cgroup", "memory")
        .zip(btf.member_offset("mem_cgroup", "css"))
        .and_then(|(m, c)| m.checked_sub(c))
        .and_then(|o| u16::try_from(o).ok())
        .unwrap_or(OFFSET_ABSENT);
    let pc = |m: &str| member("page_counter", m);
    TaskOffsets {
        real_parent: off("real_parent"),
        tgid: off("tgid"),
        exit_code: off("exit_code"),
        pid: off("pid"),
        comm: off("comm"),
        cgroups: off("cgroups"),
        css_set_dfl_cgrp: member("css_set", "dfl_cgrp"),
        cgroup_kn: member("cgroup", "kn"),
        kernfs_node_id: member("kernfs_node", "id"),
        siginfo_errno: member("kernel_siginfo", "si_errno"),
        siginfo_code: member("kernel_siginfo", "si_code"),
        css_set_memcg,
        memcg_memory,
        pc_usage: pc("usage"),
        pc_failcnt: pc("failcnt"),
        pc_watermark: pc("watermark"),
        // `max` on current kernels; older ones (4.x) named the limit `limit`.
        pc_max: match pc("max") {
            OFFSET_ABSENT => pc("limit"),
            o => o,
        },
        pc_parent: pc("parent"),
        oc_memcg: member("oom_control", "memcg"),
        oc_chosen: member("oom_control", "chosen"),
        oc_chosen_points: member("oom_control", "chosen_points"),
        oc_order: member("oom_control", "order"),
        oc_constraint: if oom_constraints_known(btf) {
            member("oom_control", "constraint")
        } else {
            OFFSET_ABSENT
        },
        css_cgroup: member("cgroup_subsys_state", "cgroup"),
        task_signal: off("signal"),
        signal_oom_score_adj: member("signal_struct", "oom_score_adj"),
        task_last_queued: nested(("task_struct", "sched_info"), ("sched_info", "last_queued")),
        task_cfs_rq: nested(("task_struct", "se"), ("sched_entity", "cfs_rq")),
        cfs_rq_rq: member("cfs_rq", "rq"),
        rq_clock: member("rq", "clock"),
        bprm_filename: member("linux_binprm", "filename"),
        _pad: 0,
    }
}

/// `enum oom_constraint` has the values ctrace decodes (`tracer_common::oom_context`):
/// otherwise `oom_control.constraint` is not read at all.
fn oom_constraints_known(btf: &btf::Btf) -> bool {
    use tracer_common::oom_context as c;
    [
        ("CONSTRAINT_NONE", c::CONSTRAINT_NONE),
        ("CONSTRAINT_CPUSET", c::CONSTRAINT_CPUSET),
        ("CONSTRAINT_MEMORY_POLICY", c::CONSTRAINT_MEMORY_POLICY),
        ("CONSTRAINT_MEMCG", c::CONSTRAINT_MEMCG),
    ]
    .iter()
    .all(|&(name, v)| btf.enum_value(name) == Some(i64::from(v)))
}

/// Tracepoint field offsets from the parsed `format` files (absent where missing).
pub fn tp_offsets(formats: &BTreeMap<&str, tracefs::Format>) -> TpOffsets {
    tp_offsets_and_gaps(formats).0
}

/// [`tp_offsets`], and the fields missing (or of an unexpected size) from tracepoints that
/// exist: on older kernels `oom:mark_victim` has only `pid`, for instance. Those fields read as
/// 0 or empty; the caller says so.
pub fn tp_offsets_and_gaps(
    formats: &BTreeMap<&str, tracefs::Format>,
) -> (TpOffsets, BTreeMap<String, Vec<String>>) {
    let gaps = std::cell::RefCell::new(BTreeMap::<String, Vec<String>>::new());
    let quiet = |tp: &str, field: &str, sizes: &[u16]| {
        formats
            .get(tp)
            .and_then(|f| f.offset(field, sizes))
            .unwrap_or(OFFSET_ABSENT)
    };
    let miss = |tp: &str, field: &str| {
        gaps.borrow_mut()
            .entry(tp.to_owned())
            .or_default()
            .push(field.to_owned());
    };
    let get = |tp: &str, field: &str, sizes: &[u16]| {
        let o = quiet(tp, field, sizes);
        if o == OFFSET_ABSENT && formats.contains_key(tp) {
            miss(tp, field);
        }
        o
    };
    const I: &[u16] = &[4];
    const L: &[u16] = &[8];
    const LOC: &[u16] = &[4];
    let exec = "sched_process_exec";
    let exit = "sched_process_exit";
    let fork = "sched_process_fork";
    let sig = "signal_generate";
    let oom = "mark_victim";
    let cap = "cap_capable";
    let mkdir = "cgroup_mkdir";
    let rmdir = "cgroup_rmdir";
    let attach = "cgroup_attach_task";
    // mkdir and rmdir share a layout; take whichever was read.
    let cg = |field: &str, sizes: &[u16]| {
        let o = quiet(mkdir, field, sizes);
        let o = if o == OFFSET_ABSENT {
            quiet(rmdir, field, sizes)
        } else {
            o
        };
        if o == OFFSET_ABSENT {
            for tp in [mkdir, rmdir]
                .into_iter()
                .filter(|t| formats.contains_key(t))
            {
                miss(tp, field);
            }
        }
        o
    };
    let offsets = TpOffsets {
        exec_filename: get(exec, "filename", LOC),
        exec_pid: get(exec, "pid", I),
        exec_old_pid: get(exec, "old_pid", I),
        exit_pid: get(exit, "pid", I),
        exit_group_dead: get(exit, "group_dead", &[1]),
        fork_parent_pid: get(fork, "parent_pid", I),
        fork_child_pid: get(fork, "child_pid", I),
        // A `__data_loc` string on recent kernels, a fixed `char[16]` on older ones.
        fork_child_comm: quiet(fork, "child_comm", LOC),
        sig_sig: get(sig, "sig", I),
        sig_errno: get(sig, "errno", I),
        sig_code: get(sig, "code", I),
        sig_comm: get(sig, "comm", &[16]),
        sig_pid: get(sig, "pid", I),
        sig_group: get(sig, "group", I),
        sig_result: get(sig, "result", I),
        oom_pid: get(oom, "pid", I),
        oom_comm: get(oom, "comm", LOC),
        oom_total_vm: get(oom, "total_vm", L),
        oom_anon_rss: get(oom, "anon_rss", L),
        oom_file_rss: get(oom, "file_rss", L),
        oom_shmem_rss: get(oom, "shmem_rss", L),
        oom_uid: get(oom, "uid", I),
        oom_pgtables: get(oom, "pgtables", L),
        oom_score_adj: get(oom, "oom_score_adj", &[2]),
        cap_cap: get(cap, "cap", I),
        cap_ret: get(cap, "ret", I),
        cg_root: cg("root", I),
        cg_level: cg("level", I),
        cg_id: cg("id", L),
        cg_path: cg("path", LOC),
        cga_root: get(attach, "dst_root", I),
        cga_level: get(attach, "dst_level", I),
        cga_id: get(attach, "dst_id", L),
        cga_pid: get(attach, "pid", I),
        cga_path: get(attach, "dst_path", LOC),
        fork_child_comm_array: quiet(fork, "child_comm", &[16]),
    };
    if offsets.fork_child_comm == OFFSET_ABSENT && offsets.fork_child_comm_array == OFFSET_ABSENT {
        get(fork, "child_comm", LOC);
    }
    (offsets, gaps.into_inner())
}

/// Parsed `--events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    pub mask: u32,
    /// `capability:all`: allowed checks too, not only denials.
    pub cap_allowed: bool,
}

/// Parse `--events`: comma-separated kind names; `cgroup` means mkdir+rmdir+attach,
/// `capability` denied checks and `capability:all` every check, `all` everything (allowed
/// capability checks included).
pub fn parse_kinds(spec: &str) -> Result<KindSpec, String> {
    let mut mask = 0;
    let mut cap_allowed = false;
    for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word == "all" || word == "capability:all" {
            cap_allowed = true;
        }
        mask |= match word {
            "all" => PROBES.iter().fold(0, |m, p| m | kind_bit(p.kind)),
            "capability:all" => kind_bit(kind::CAPABILITY),
            "cgroup" => {
                kind_bit(kind::CGROUP_MKDIR) | kind_bit(kind::CGROUP_RMDIR) | kind_bit(kind::CGROUP_ATTACH)
            }
            w => PROBES
                .iter()
                .find(|p| kind_name(p.kind) == w)
                .map(|p| kind_bit(p.kind))
                .ok_or_else(|| {
                    format!(
                        "unknown event kind {w:?} (known: exec, exit, fork, signal, oom, capability, \
                         capability:all, cgroup, cgroup_mkdir, cgroup_rmdir, cgroup_attach, all)"
                    )
                })?,
        };
    }
    if mask == 0 {
        return Err("no event kinds given".into());
    }
    Ok(KindSpec { mask, cap_allowed })
}

/// Map a ring size request to what the kernel accepts: a power of two, at least one page.
pub fn ring_bytes(requested: u64) -> u32 {
    let r = requested.clamp(page_size(), 1 << 30).next_power_of_two();
    u32::try_from(r).unwrap_or(1 << 30)
}

/// Poll interval of the reader when no wakeup arrives (records are submitted without wakeups).
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_ids() {
        assert_eq!(build_id(b""), None);
        // FNV-1a 64 of "a" is af63dc4c8601ec8c.
        assert_eq!(build_id(b"a").as_deref(), Some("af63dc4c8601"));
    }

    #[test]
    fn kinds() {
        let k = parse_kinds("exec,exit").unwrap();
        assert_eq!(k.mask, kind_bit(kind::EXEC) | kind_bit(kind::EXIT));
        assert!(!k.cap_allowed);
        assert_eq!(
            parse_kinds(" oom ").unwrap().mask,
            kind_bit(kind::OOM_VICTIM)
        );
        assert_eq!(parse_kinds("cgroup").unwrap().mask.count_ones(), 3);
        let all = parse_kinds("all").unwrap();
        assert_eq!((all.mask.count_ones(), all.cap_allowed), (9, true));
        let cap = parse_kinds("capability:all").unwrap();
        assert_eq!(
            (cap.mask, cap.cap_allowed),
            (kind_bit(kind::CAPABILITY), true)
        );
        assert!(!parse_kinds("capability").unwrap().cap_allowed);
        assert!(parse_kinds("exec,bogus").unwrap_err().contains("bogus"));
        assert!(parse_kinds(",").is_err());
    }

    #[test]
    fn signal_bits_cover_1_to_64() {
        let all: u64 = (1..=64).map(signal_bit).fold(0, |m, b| {
            assert_eq!(m & b, 0, "one bit each");
            m | b
        });
        assert_eq!(all, u64::MAX);
        assert_eq!((signal_bit(0), signal_bit(65)), (0, 0));
    }

    #[test]
    fn capability_hooks_in_order() {
        assert_eq!(cap_hooks(None), ["tracepoint", "fexit", "kprobe"]);
        assert_eq!(cap_hooks(Some("kprobe")), ["kprobe"]);
        assert_eq!(cap_hooks(Some(" fexit ,bogus,kprobe")), ["fexit", "kprobe"]);
        assert!(cap_hooks(Some("")).is_empty());
    }

    #[test]
    fn mechanisms_from_programs() {
        let p = |name, hook| AttachedProgram {
            name,
            hook,
            id: None,
            detached: false,
            recursion_misses: None,
        };
        let m = mechanisms(&[
            p("sched_process_exec", "tracepoint"),
            p(CAP_KPROBE_PROGRAM, "kprobe"),
            p(CAP_KRETPROBE_PROGRAM, "kprobe"),
        ]);
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [("capability", "kprobe")]
        );
        let m = mechanisms(&[p("cap_capable", "tracepoint")]);
        assert_eq!(m.get("capability"), Some(&"tracepoint"));
        let m = mechanisms(&[p(CAP_BTF_PROGRAM, "tp_btf")]);
        assert_eq!(m.get("capability"), Some(&"tp_btf"));
        assert!(mechanisms(&[p("signal_generate_btf", "tp_btf")]).is_empty());
        let m = mechanisms(&[
            p(OOM_FENTRY_PROGRAM, "fentry"),
            p("mark_victim", "tracepoint"),
        ]);
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [("oom_context", "fentry")]
        );
    }

    #[test]
    fn cap_argument_from_this_kernels_btf() {
        let Ok(raw) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            crate::test_support::skip("no /sys/kernel/btf/vmlinux on this machine");
            return;
        };
        let btf = btf::Btf::parse(&raw).expect("kernel BTF parses");
        // Whatever the kernel, `cap` is found by name, and it is where the programs look.
        let i = cap_arg_index(&btf).expect("cap_capable(.., int cap, ..) in BTF");
        let params = btf.func_params(CAP_FUNCTION).unwrap();
        assert_eq!(params[usize::from(i)], ("cap".to_owned(), "int".to_owned()));
    }

    #[test]
    fn ring_sizes() {
        assert_eq!(ring_bytes(1), 4096);
        assert_eq!(ring_bytes(5000), 8192);
        assert_eq!(ring_bytes(u64::MAX), 1 << 30);
    }

    #[test]
    fn offsets_from_formats() {
        let mut f = BTreeMap::new();
        f.insert(
            "sched_process_exec",
            tracefs::parse_format(
                "\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\
                 \tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;",
            ),
        );
        // 6.1's mark_victim: only the pid.
        f.insert(
            "mark_victim",
            tracefs::parse_format("\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;"),
        );
        // 6.1's sched_process_fork: comms as fixed arrays, not strings.
        f.insert(
            "sched_process_fork",
            tracefs::parse_format(
                "\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
                 \tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
                 \tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:0;\n\
                 \tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;",
            ),
        );
        let (o, gaps) = tp_offsets_and_gaps(&f);
        assert_eq!(
            (o.fork_child_comm, o.fork_child_comm_array, o.fork_child_pid),
            (OFFSET_ABSENT, 28, 44)
        );
        assert_eq!(o.exec_filename, 8);
        assert_eq!(o.exec_pid, 12);
        assert_eq!(o.exec_old_pid, OFFSET_ABSENT);
        assert_eq!(o.sig_sig, OFFSET_ABSENT);
        assert_eq!(o.oom_pid, 8);
        // Gaps only for tracepoints that exist; none for signal_generate, not read at all.
        assert_eq!(
            gaps.keys().collect::<Vec<_>>(),
            ["mark_victim", "sched_process_exec"]
        );
        assert_eq!(gaps["sched_process_exec"], ["old_pid"]);
        assert_eq!(
            gaps["mark_victim"],
            [
                "comm",
                "total_vm",
                "anon_rss",
                "file_rss",
                "shmem_rss",
                "uid",
                "pgtables",
                "oom_score_adj"
            ]
        );
    }
}
