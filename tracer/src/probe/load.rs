//! [`Probe::load`] in steps: what the kernel offers (tracefs formats, BTF offsets), the
//! object loaded with them, then each feature's hooks tried in order of preference. Every
//! hook tried is kept with how it fared ([`HookAttempt`]), for `ctrace doctor`.

use std::{collections::BTreeMap, path::Path};

use aya::{
    programs::{
        fentry::FEntryLinkId, fexit::FExitLinkId, kprobe::KProbeLinkId,
        tp_btf::BtfTracePointLinkId, BtfTracePoint, FEntry, FExit, KProbe, TracePoint,
    },
    Ebpf, EbpfLoader,
};
use tracer_common::{
    cap_allowed, kind, kind_bit, names, runq_source, Config, TaskOffsets, OFFSET_ABSENT,
};

use super::{
    btf, cap_arg_index, cap_hooks, offsets_from_btf, tp_offsets_and_gaps, tracefs, AttachedProgram,
    EbpfLog, Link, Options, Probe, ProbeError, CAP_BTF_PROGRAM, CAP_FEXIT_PROGRAM, CAP_FUNCTION,
    CAP_HOOKS_ENV, CAP_KPROBE_PROGRAM, CAP_KRETPROBE_PROGRAM, EXEC_BTF_PROGRAM, EXEC_TRACEPOINT,
    FORK_BTF_PROGRAM, FORK_TRACEPOINT, FORMATS_DIR_ENV, OBJECT, OOM_FENTRY_PROGRAM, OOM_FUNCTION,
    OOM_KPROBE_PROGRAM, OOM_VICTIM_BTF_PROGRAM, PROBES, RUNQ_PROGRAMS, RUNQ_SOURCE_ENV,
    SIGNAL_BTF_PROGRAM,
};
use crate::event::kind_name;

/// How one hook fared when ctrace loaded its programs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HookAttempt {
    /// `tracepoint`, `tp_btf`, `fentry`, `fexit` or `kprobe` (kretprobes too).
    pub hook: &'static str,
    /// What it hooks: `sched:sched_process_exec`, `sched_switch`, `cap_capable`, ...
    pub target: String,
    /// The program in ctrace's object.
    pub program: &'static str,
    #[serde(flatten)]
    pub status: HookStatus,
}

/// See [`HookAttempt`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HookStatus {
    Attached,
    /// The kernel refused to load or attach it (`errno` when the refusal carried one: 1 is
    /// EPERM, as sandboxes answer fentry).
    Refused {
        errno: Option<i32>,
        error: String,
    },
    /// The kernel has no such hook: the tracepoint or function is missing, or the kind of
    /// hook is not built in (ENOENT).
    Absent {
        why: String,
    },
    /// Not tried: another hook serves the feature, or what it needs is missing.
    NotTried {
        why: String,
    },
}

impl HookAttempt {
    fn new(hook: &'static str, target: impl Into<String>, program: &'static str) -> Self {
        Self {
            hook,
            target: target.into(),
            program,
            status: HookStatus::Attached,
        }
    }

    fn with(mut self, status: HookStatus) -> Self {
        self.status = status;
        self
    }

    fn failed(self, e: &ProbeError) -> Self {
        let error = brief(e);
        let status = match errno_of(e) {
            Some(libc::ENOENT) => HookStatus::Absent { why: error },
            errno => HookStatus::Refused { errno, error },
        };
        self.with(status)
    }

    fn not_tried(self, why: impl Into<String>) -> Self {
        self.with(HookStatus::NotTried { why: why.into() })
    }
}

/// The errno a load or attach failed with, from the innermost I/O error of its causes.
fn errno_of(e: &ProbeError) -> Option<i32> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut found = None;
    while let Some(c) = cause {
        if let Some(n) = c
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            found = Some(n);
        }
        cause = c.source();
    }
    found
}

/// A load or attach error with its causes, without the verifier log aya appends.
fn brief(e: &ProbeError) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s = format!("{s}: {c}");
        }
        source = cause.source();
    }
    match s.find(". Verifier output") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// What the running kernel offers, read before the object is loaded.
struct KernelFacts {
    kinds: u32,
    formats: BTreeMap<&'static str, tracefs::Format>,
    /// Capability checks need fexit or kprobes (no tracepoint, or not allowed).
    cap_fallback: bool,
    cap_hooks: Vec<&'static str>,
    kernel_btf: Result<btf::Btf, String>,
    /// The BTF-typed `cap_capable` program can read this kernel's tracepoint arguments, or why
    /// not.
    cap_btf: Result<(), String>,
    /// The same for `sched_process_fork_btf`: the prototype, and the child's pid and comm.
    fork_btf: Result<(), String>,
    /// The same for `sched_process_exec_btf`: the prototype, and `linux_binprm.filename`.
    exec_btf: Result<(), String>,
    task: TaskOffsets,
    config: Config,
    gaps: BTreeMap<String, Vec<String>>,
}

/// The loader's state between steps.
struct Loading {
    ebpf: Ebpf,
    /// The kernel's BTF as aya reads it, or why it could not be read.
    btf: Result<aya::Btf, String>,
    links: Vec<(&'static str, Link)>,
    hooks: Vec<HookAttempt>,
    warnings: Vec<String>,
    kinds: u32,
}

impl Probe {
    /// Check privileges, mount tracefs if needed, compute offsets, load and attach.
    pub fn load(opts: &Options) -> Result<Self, ProbeError> {
        Self::check_privileges()?;
        let mut warnings = Vec::new();
        let mut hooks = Vec::new();
        // The kernel's BTF as aya reads it, parsed once for the loader's relocations and for
        // every BTF-typed attach (a parse costs tens of milliseconds and megabytes of heap),
        // on another thread while the kernel's facts are read.
        let (facts, btf) = std::thread::scope(|s| {
            let btf = s.spawn(|| aya::Btf::from_sys_fs().map_err(|e| e.to_string()));
            let facts = KernelFacts::read(opts, &mut warnings, &mut hooks);
            let btf = btf
                .join()
                .unwrap_or_else(|_| Err("parsing the kernel's BTF panicked".to_owned()));
            (facts, btf)
        });
        let facts = facts?;
        // aya-log-ebpf logs everything unless told otherwise: off (0) without --ebpf-log.
        let log_level: u8 = if opts.ebpf_log { 0xff } else { 0 };
        let mut loader = EbpfLoader::new();
        loader
            .btf(btf.as_ref().ok())
            .override_global(names::CONFIG_GLOBAL, &facts.config, true)
            .override_global("AYA_LOG_LEVEL", &log_level, false)
            .map_max_entries(names::EVENTS_MAP, opts.ring_bytes);
        if let Some(n) = std::env::var(super::CAP_SLOTS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|&n| n > 0)
        {
            loader.map_max_entries(names::CAP_DEDUP_MAP, n);
        }
        let ebpf = loader.load(OBJECT).map_err(ProbeError::Load)?;
        let mut l = Loading {
            ebpf,
            btf,
            links: Vec::new(),
            hooks,
            warnings,
            kinds: facts.kinds,
        };
        // The OOM programs first: on a tracepoint, programs run in the order they were
        // attached, and the BTF-typed `mark_victim` program must have filled `OOM_VICTIMS`
        // before the classic one's ring record can wake the reader, which looks it up.
        let oom_victims_in_kernel = if l.oom_context(&facts) {
            l.hooks.push(
                HookAttempt::new("tp_btf", "mark_victim", OOM_VICTIM_BTF_PROGRAM)
                    .not_tried("the OOM killer's context serves it"),
            );
            true
        } else {
            l.oom_victim_btf(opts, &facts)
        };
        let signal_targets_in_kernel = l.tracepoints(opts, &facts)?;
        l.capability_fallback(&facts);
        let runq_active = l.runq(opts, facts.config.runq_source);
        l.finish(
            opts,
            &facts,
            signal_targets_in_kernel,
            oom_victims_in_kernel,
            runq_active,
        )
    }
}

impl KernelFacts {
    /// tracefs mounted, the tracepoints' formats, the kernel's BTF and the offsets from both.
    fn read(
        opts: &Options,
        warnings: &mut Vec<String>,
        hooks: &mut Vec<HookAttempt>,
    ) -> Result<Self, ProbeError> {
        let (events_dir, mounted) = tracefs::ensure_mounted().map_err(ProbeError::Tracefs)?;
        if mounted {
            warnings.push(format!(
                "tracefs was not mounted: mounted it at {}",
                tracefs::TRACEFS
            ));
        }
        // Tests point this at a copy of the events directory with some tracepoints removed,
        // to see ctrace on a kernel that lacks them (cap_capable before 6.13, for instance).
        let formats_dir =
            std::env::var_os(FORMATS_DIR_ENV).map_or(events_dir, std::path::PathBuf::from);
        let mut kinds = opts.kinds;
        let mut formats = BTreeMap::new();
        let cap_hooks = cap_hooks(std::env::var(CAP_HOOKS_ENV).ok().as_deref());
        // Capability checks without the tracepoint (before 6.13): fexit or kprobes on
        // cap_capable(), tried once the object is loaded.
        let mut cap_fallback = false;
        for spec in PROBES.iter().filter(|s| opts.kinds & kind_bit(s.kind) != 0) {
            let target = format!("{}:{}", spec.category, spec.tracepoint);
            let attempt = HookAttempt::new("tracepoint", target, spec.program);
            let format = if spec.kind == kind::CAPABILITY && !cap_hooks.contains(&"tracepoint") {
                hooks.push(attempt.not_tried(format!("not allowed by {CAP_HOOKS_ENV}")));
                None
            } else {
                let f = tracefs::read_format(&formats_dir, spec.category, spec.tracepoint);
                if f.is_none() {
                    hooks.push(attempt.with(HookStatus::Absent {
                        why: "the tracepoint does not exist on this kernel".into(),
                    }));
                }
                f
            };
            match format {
                Some(f) => {
                    formats.insert(spec.tracepoint, f);
                }
                None if spec.kind == kind::CAPABILITY => cap_fallback = true,
                None => {
                    kinds &= !kind_bit(spec.kind);
                    warnings.push(format!(
                        "tracepoint {}:{} does not exist on this kernel: {} events disabled",
                        spec.category,
                        spec.tracepoint,
                        kind_name(spec.kind)
                    ));
                }
            }
        }
        let (tp, gaps) = tp_offsets_and_gaps(&formats);
        for (tracepoint, fields) in &gaps {
            warnings.push(gap_warning(tracepoint, fields));
        }
        let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
        let kernel_btf = std::fs::read(vmlinux)
            .map_err(|e| format!("{}: {e}", vmlinux.display()))
            .and_then(|raw| {
                btf::Btf::parse(&raw).map_err(|e| format!("{}: {e}", vmlinux.display()))
            });
        let task = match kernel_btf.as_ref().map(offsets_from_btf) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!(
                    "kernel BTF unusable ({e}): parent pids and exit codes will be missing"
                ));
                TaskOffsets::ABSENT
            }
        };
        if kinds & kind_bit(kind::EXIT) != 0 && task.exit_code == OFFSET_ABSENT {
            warnings.push("task_struct.exit_code not found in BTF: exit codes unknown".into());
        }
        // Without the count, no reserve budget: every ordinary record looks at the ring.
        let (cpus, reserve_budget_max) = match aya::util::nr_cpus() {
            Ok(n) => {
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                (n, tracer_common::reserve_budget_max(opts.ring_bytes, n))
            }
            Err(_) => (1, 0),
        };
        let config = Config {
            event_mask: kinds,
            signal_mask_lo: opts.signals as u32,
            signal_mask_hi: (opts.signals >> 32) as u32,
            exit_all_threads: u32::from(opts.exit_all_threads),
            cap_allowed: match (opts.cap_allowed, opts.cap_allowed_host) {
                (false, _) => cap_allowed::NONE,
                (true, true) => cap_allowed::ALL,
                (true, false) => cap_allowed::NOT_HOST,
            },
            runq_source: if opts.runq {
                runq_source_for(&task, std::env::var(RUNQ_SOURCE_ENV).ok().as_deref())?
            } else {
                runq_source::OFF
            },
            // Our pid as the kernel sees it when ctrace shares the host's pid namespace (as
            // it must to read other containers' /proc); in a pid namespace of its own the
            // ids differ and nothing is filtered.
            self_tgid: std::process::id(),
            ring_bytes: opts.ring_bytes,
            cpus,
            _pad: 0,
            reserve_budget_max,
            cap_window_ns: opts.cap_window.as_nanos().min(u128::from(u64::MAX)) as u64,
            wakeup_bytes: u64::from(opts.ring_bytes / 4),
            signal_window_ns: opts.signal_window.as_nanos().min(u128::from(u64::MAX)) as u64,
            tp,
            task,
        };
        let cap_btf = btf_program_ready(&kernel_btf, cap_tracepoint_args, &[], "");
        let fork_btf = btf_program_ready(
            &kernel_btf,
            fork_tracepoint_args,
            &[task.pid, task.comm],
            "task_struct's pid or comm",
        );
        let exec_btf = btf_program_ready(
            &kernel_btf,
            exec_tracepoint_args,
            &[task.bprm_filename],
            "linux_binprm's filename",
        );
        Ok(Self {
            kinds,
            formats,
            cap_fallback,
            cap_hooks,
            kernel_btf,
            cap_btf,
            fork_btf,
            exec_btf,
            task,
            config,
            gaps,
        })
    }
}

/// Whether a BTF-typed program can run on this kernel: its BTF was read, the tracepoint's
/// prototype passes `args`, and every member offset the program reads is known (else the
/// error says the BTF `lacks` them).
fn btf_program_ready(
    kernel_btf: &Result<btf::Btf, String>,
    args: fn(&btf::Btf) -> Result<(), String>,
    offsets: &[u16],
    lacks: &str,
) -> Result<(), String> {
    args(kernel_btf.as_ref().map_err(Clone::clone)?)?;
    if offsets.contains(&OFFSET_ABSENT) {
        return Err(format!("the kernel's BTF lacks {lacks}"));
    }
    Ok(())
}

/// Whether the `cap_capable` tracepoint's arguments are where `cap_capable_btf` reads them:
/// `(cred, target_ns, capable_ns, int cap, int ret)`, as in 6.13 to 6.18.
fn cap_tracepoint_args(btf: &btf::Btf) -> Result<(), String> {
    tracepoint_args_are(
        btf,
        CAP_FUNCTION,
        &["", "", "", "int", "int"],
        "cred, target_ns, capable_ns, int cap, int ret",
    )
}

/// Whether the `sched_process_fork` tracepoint's arguments are where `sched_process_fork_btf`
/// reads them: `(parent, child)`, two tasks, as in 6.1 to 6.18.
fn fork_tracepoint_args(btf: &btf::Btf) -> Result<(), String> {
    tracepoint_args_are(btf, FORK_TRACEPOINT, &["", ""], "parent, child")
}

/// Whether the `sched_process_exec` tracepoint's arguments are where `sched_process_exec_btf`
/// reads them: `(p, pid_t old_pid, bprm)`, as in 6.1 to 6.18.
fn exec_tracepoint_args(btf: &btf::Btf) -> Result<(), String> {
    tracepoint_args_are(
        btf,
        EXEC_TRACEPOINT,
        &["", "int", ""],
        "p, int old_pid, bprm",
    )
}

/// Whether the BTF prototype of `tracepoint` has the argument types `expected` (an integer's
/// type name, empty for a pointer), named `described` in the error.
fn tracepoint_args_are(
    btf: &btf::Btf,
    tracepoint: &str,
    expected: &[&str],
    described: &str,
) -> Result<(), String> {
    let args = btf
        .tracepoint_args(tracepoint)
        .ok_or_else(|| format!("no btf_trace_{tracepoint} in the kernel's BTF"))?;
    if args == expected {
        Ok(())
    } else {
        Err(format!(
            "the {tracepoint} tracepoint's arguments are ({}), not ({described})",
            args.iter()
                .map(|a| if a.is_empty() { "pointer" } else { a.as_str() })
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Where run-queue delay comes from on a kernel with these offsets, as [`RUNQ_SOURCE_ENV`]
/// (`sched_info`, `stamps`, unset: the first that can be read) allows.
fn runq_source_for(task: &TaskOffsets, env: Option<&str>) -> Result<u32, ProbeError> {
    let stamps = if task.pid == OFFSET_ABSENT {
        runq_source::OFF
    } else {
        runq_source::STAMPS
    };
    match env.map(str::trim) {
        None | Some("") if task.sched_info_complete() => Ok(runq_source::SCHED_INFO),
        None | Some("") | Some("stamps") => Ok(stamps),
        Some("sched_info") if task.sched_info_complete() => Ok(runq_source::SCHED_INFO),
        // Asked for by a test: not silently something else.
        Some("sched_info") => Ok(runq_source::OFF),
        Some(other) => Err(ProbeError::Env(format!(
            "{RUNQ_SOURCE_ENV}={other:?}: expected `sched_info` or `stamps`"
        ))),
    }
}

/// The warning for fields a tracepoint of this kernel lacks: what their records do instead.
fn gap_warning(tracepoint: &str, fields: &[String]) -> String {
    if tracepoint == "sched_process_exit" && fields == ["group_dead"] {
        return "tracepoint sched_process_exit on this kernel lacks group_dead: exit records \
                leave it out"
            .to_owned();
    }
    format!(
        "tracepoint {tracepoint} on this kernel lacks {}: reported as 0 or empty",
        fields.join(", ")
    )
}

impl Loading {
    /// The classic tracepoints of the kinds asked for (the BTF-typed signal program instead of
    /// the classic one where it loads). Returns whether signal targets are read in the kernel.
    fn tracepoints(&mut self, opts: &Options, facts: &KernelFacts) -> Result<bool, ProbeError> {
        let mut signal_targets_in_kernel = false;
        let kinds = self.kinds;
        for spec in PROBES.iter().filter(|s| kinds & kind_bit(s.kind) != 0) {
            if spec.kind == kind::CAPABILITY && facts.cap_fallback {
                continue;
            }
            let checked_btf = match spec.kind {
                kind::CAPABILITY => Some((&facts.cap_btf, CAP_BTF_PROGRAM, "capability checks")),
                kind::FORK => Some((&facts.fork_btf, FORK_BTF_PROGRAM, "forks")),
                kind::EXEC => Some((&facts.exec_btf, EXEC_BTF_PROGRAM, "execs")),
                _ => None,
            };
            if let Some((checked, program, what)) = checked_btf.filter(|_| opts.btf_tracepoints) {
                if self.checked_btf_instead_of_classic(checked, program, spec.tracepoint, what) {
                    self.hooks.push(
                        HookAttempt::new(
                            "tracepoint",
                            format!("{}:{}", spec.category, spec.tracepoint),
                            spec.program,
                        )
                        .not_tried("the BTF-typed program on the same tracepoint serves it"),
                    );
                    continue;
                }
            }
            if spec.kind == kind::SIGNAL
                && opts.btf_tracepoints
                && facts.task.signal_target_complete()
                && self.btf_instead_of_classic(
                    SIGNAL_BTF_PROGRAM,
                    spec.tracepoint,
                    "signal targets are placed from ctrace's process table",
                )
            {
                signal_targets_in_kernel = true;
                continue;
            }
            let program = spec.program;
            let attempt = HookAttempt::new(
                "tracepoint",
                format!("{}:{}", spec.category, spec.tracepoint),
                program,
            );
            match attach_classic(&mut self.ebpf, program, spec.category, spec.tracepoint) {
                Ok(link) => {
                    self.links.push((program, Link::Classic(link)));
                    self.hooks.push(attempt);
                }
                Err(e) => {
                    self.hooks.push(attempt.failed(&e));
                    return Err(e);
                }
            }
        }
        Ok(signal_targets_in_kernel)
    }

    /// [`Self::btf_instead_of_classic`] for a program whose prototype was `checked` in the
    /// kernel's BTF first: not tried, with why, when it does not match. The classic program
    /// serves `what` otherwise.
    fn checked_btf_instead_of_classic(
        &mut self,
        checked: &Result<(), String>,
        program: &'static str,
        tracepoint: &'static str,
        what: &str,
    ) -> bool {
        match checked {
            Err(why) => {
                self.hooks
                    .push(HookAttempt::new("tp_btf", tracepoint, program).not_tried(why.clone()));
                false
            }
            Ok(()) => self.btf_instead_of_classic(
                program,
                tracepoint,
                &format!("the classic tracepoint serves {what}"),
            ),
        }
    }

    /// The BTF-typed `program` on `tracepoint`, where it loads, instead of (or beside) the
    /// classic one: true when attached. Otherwise the attempt is kept with its error and a
    /// warning says what ctrace does `instead`.
    fn btf_instead_of_classic(
        &mut self,
        program: &'static str,
        tracepoint: &'static str,
        instead: &str,
    ) -> bool {
        let attempt = HookAttempt::new("tp_btf", tracepoint, program);
        match attach_btf(&mut self.ebpf, &self.btf, program, tracepoint) {
            Ok(link) => {
                self.links.push((program, Link::Btf(link)));
                self.hooks.push(attempt);
                true
            }
            Err(e) => {
                self.hooks.push(attempt.failed(&e));
                self.warnings.push(format!(
                    "BTF-typed {tracepoint} unavailable ({e}): {instead}"
                ));
                false
            }
        }
    }

    /// Capability checks where the tracepoint is missing: fexit on `cap_capable()`, else a
    /// kprobe/kretprobe pair, as the hooks allowed permit; off with a warning saying why.
    fn capability_fallback(&mut self, facts: &KernelFacts) {
        let asked = self.kinds & kind_bit(kind::CAPABILITY) != 0;
        if !facts.cap_fallback || !asked {
            if asked {
                for (hook, program) in
                    [("fexit", CAP_FEXIT_PROGRAM), ("kprobe", CAP_KPROBE_PROGRAM)]
                {
                    self.hooks.push(
                        HookAttempt::new(hook, CAP_FUNCTION, program)
                            .not_tried("the capability:cap_capable tracepoint serves it"),
                    );
                }
            }
            return;
        }
        let cap_arg = facts
            .kernel_btf
            .as_ref()
            .map_err(Clone::clone)
            .and_then(cap_arg_index);
        match attach_cap_fallback(
            &mut self.ebpf,
            &self.btf,
            &facts.cap_hooks,
            &cap_arg,
            &mut self.hooks,
        ) {
            Ok(mut l) => self.links.append(&mut l),
            Err(why) => {
                self.kinds &= !kind_bit(kind::CAPABILITY);
                self.warnings
                    .push(format!("capability events disabled: {why}"));
            }
        }
    }

    /// The OOM killer's context: the memory cgroup whose limit was hit (or none: host-wide)
    /// and its figures, as it chooses the victim. Where it loads it is the source of truth
    /// and `mark_victim_btf`, which infers the limit from the victim's ancestors, is not used.
    fn oom_context(&mut self, facts: &KernelFacts) -> bool {
        if self.kinds & kind_bit(kind::OOM_VICTIM) == 0 {
            return false;
        }
        let task = &facts.task;
        let fentry = HookAttempt::new("fentry", OOM_FUNCTION, OOM_FENTRY_PROGRAM);
        let kprobe = HookAttempt::new("kprobe", OOM_FUNCTION, OOM_KPROBE_PROGRAM);
        if !(task.signal_target_complete()
            && task.memcg_complete()
            && task.oc_memcg != OFFSET_ABSENT
            && task.oc_chosen != OFFSET_ABSENT)
        {
            let why = "the kernel's BTF lacks a task, memory cgroup or oom_control member read";
            self.hooks.push(fentry.not_tried(why));
            self.hooks.push(kprobe.not_tried(why));
            return false;
        }
        let traceable = facts
            .kernel_btf
            .as_ref()
            .is_ok_and(|b| b.func_params(OOM_FUNCTION).is_some());
        let first = if traceable {
            attach_fentry(&mut self.ebpf, &self.btf, OOM_FENTRY_PROGRAM, OOM_FUNCTION)
                .map(|l| (OOM_FENTRY_PROGRAM, Link::FEntry(l)))
                .map_err(|e| {
                    let why = brief(&e);
                    self.hooks.push(fentry.clone().failed(&e));
                    why
                })
        } else {
            let why = format!("{OOM_FUNCTION} is not in the kernel's BTF");
            self.hooks
                .push(fentry.clone().with(HookStatus::Absent { why: why.clone() }));
            Err(why)
        };
        let hooked = match first {
            Ok(link) => {
                self.hooks.push(fentry);
                self.hooks
                    .push(kprobe.not_tried("fentry on oom_kill_process serves it"));
                Ok(link)
            }
            Err(e1) => match attach_kprobe(&mut self.ebpf, OOM_KPROBE_PROGRAM, OOM_FUNCTION) {
                Ok(l) => {
                    self.hooks.push(kprobe);
                    Ok((OOM_KPROBE_PROGRAM, Link::KProbe(l)))
                }
                Err(e2) => {
                    let why = format!("fentry: {e1}; kprobe: {}", brief(&e2));
                    self.hooks.push(kprobe.failed(&e2));
                    Err(why)
                }
            },
        };
        match hooked {
            Ok(link) => {
                self.links.push(link);
                true
            }
            Err(e) => {
                log::info!(
                    "OOM context from {OOM_FUNCTION} unavailable ({e}): the limit that was hit \
                     is inferred"
                );
                false
            }
        }
    }

    /// The OOM victim's process and cgroup, read from the task, where the tracepoint passes
    /// it: the change that did so also gave the classic record its `uid` field (6.8+).
    fn oom_victim_btf(&mut self, opts: &Options, facts: &KernelFacts) -> bool {
        if self.kinds & kind_bit(kind::OOM_VICTIM) == 0 {
            return false;
        }
        let attempt = HookAttempt::new("tp_btf", "mark_victim", OOM_VICTIM_BTF_PROGRAM);
        let passes_task = facts
            .formats
            .get("mark_victim")
            .is_some_and(|f| f.offset("uid", &[4]).is_some());
        let why_not = if !opts.btf_tracepoints {
            Some("BTF-typed tracepoints are off")
        } else if !facts.task.signal_target_complete() {
            Some("the kernel's BTF lacks a task member read")
        } else if !passes_task {
            Some("this kernel's mark_victim does not pass the task (before 6.8)")
        } else {
            None
        };
        if let Some(why) = why_not {
            self.hooks.push(attempt.not_tried(why));
            return false;
        }
        self.btf_instead_of_classic(
            OOM_VICTIM_BTF_PROGRAM,
            "mark_victim",
            "OOM victims are placed from the OOM killer's SIGKILL and ctrace's process table",
        )
    }

    /// Run-queue delay histograms: `sched_switch` alone where it reads the kernel's stamp,
    /// else with both wakeups; all or none.
    fn runq(&mut self, opts: &Options, source: u32) -> bool {
        if !opts.runq {
            return false;
        }
        if source == runq_source::OFF {
            self.warnings.push(
                "run-queue delay needs task_struct members this kernel's BTF lacks: not \
                 measured (throttling is reported from cgroup counters only)"
                    .to_owned(),
            );
            return false;
        }
        if !opts.btf_tracepoints {
            self.warnings.push(
                "run-queue delay needs BTF-typed tracepoints: not measured (throttling is \
                 reported from cgroup counters only)"
                    .to_owned(),
            );
            return false;
        }
        for (program, tracepoint) in RUNQ_PROGRAMS {
            let attempt = HookAttempt::new("tp_btf", tracepoint, program);
            if source == runq_source::SCHED_INFO && program != "runq_switch" {
                self.hooks.push(attempt.not_tried(
                    "sched_switch reads the kernel's own stamp (sched_info.last_queued)",
                ));
                continue;
            }
            match attach_btf(&mut self.ebpf, &self.btf, program, tracepoint) {
                Ok(link) => {
                    self.links.push((program, Link::Btf(link)));
                    self.hooks.push(attempt);
                }
                Err(e) => {
                    self.hooks.push(attempt.failed(&e));
                    self.warnings.push(format!(
                        "run-queue delay unavailable ({e}): throttling is reported from \
                         cgroup counters only"
                    ));
                    return false;
                }
            }
        }
        true
    }

    /// The loaded probe, with its log reader and the kernel ids of its programs.
    fn finish(
        mut self,
        opts: &Options,
        facts: &KernelFacts,
        signal_targets_in_kernel: bool,
        oom_victims_in_kernel: bool,
        runq_active: bool,
    ) -> Result<Probe, ProbeError> {
        if self.links.is_empty() {
            return Err(ProbeError::NothingAttached);
        }
        let logger = if opts.ebpf_log {
            match aya_log::EbpfLogger::init_with_logger(&mut self.ebpf, EbpfLog) {
                Ok(l) => Some(l),
                Err(e) => {
                    self.warnings
                        .push(format!("eBPF program logs unavailable: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let programs = self
            .links
            .iter()
            .map(|(name, link)| AttachedProgram {
                name,
                hook: link.hook(),
                id: self
                    .ebpf
                    .program(name)
                    .and_then(|p| p.info().ok())
                    .map(|info| info.id()),
                detached: false,
                recursion_misses: None,
            })
            .collect();
        Ok(Probe {
            ebpf: self.ebpf,
            links: self.links,
            programs,
            active_kinds: self.kinds,
            runq_active,
            signal_targets_in_kernel,
            oom_victims_in_kernel,
            warnings: self.warnings,
            hooks: self.hooks,
            field_gaps: facts.gaps.clone(),
            exit_codes: facts.task.exit_code != OFFSET_ABSENT,
            cap_host_filter: facts.config.cap_allowed == cap_allowed::NOT_HOST
                && self.kinds & kind_bit(kind::CAPABILITY) != 0,
            logger,
        })
    }
}

/// Capability checks where the tracepoint is missing: fexit on `cap_capable()`, else a
/// kprobe/kretprobe pair, as `hooks` allows. The error says why each was not used.
fn attach_cap_fallback(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    allowed: &[&'static str],
    cap_arg: &Result<u16, String>,
    hooks: &mut Vec<HookAttempt>,
) -> Result<Vec<(&'static str, Link)>, String> {
    let mut why = vec![if allowed.contains(&"tracepoint") {
        "tracepoint capability:cap_capable does not exist on this kernel".to_owned()
    } else {
        format!("tracepoint not tried ({CAP_HOOKS_ENV})")
    }];
    for hook in ["fexit", "kprobe"] {
        let program = if hook == "fexit" {
            CAP_FEXIT_PROGRAM
        } else {
            CAP_KPROBE_PROGRAM
        };
        let attempt = HookAttempt::new(hook, CAP_FUNCTION, program);
        if !allowed.contains(&hook) {
            hooks.push(attempt.not_tried(format!("not allowed by {CAP_HOOKS_ENV}")));
            continue;
        }
        if let Err(e) = cap_arg {
            hooks.push(attempt.not_tried(e.clone()));
            why.push(format!("{hook}: {e}"));
            continue;
        }
        let result = if hook == "fexit" {
            attach_fexit(ebpf, btf, CAP_FEXIT_PROGRAM, CAP_FUNCTION)
                .map(|l| vec![(CAP_FEXIT_PROGRAM, Link::FExit(l))])
        } else {
            attach_kprobe_pair(ebpf)
        };
        match result {
            Ok(links) => {
                hooks.push(attempt);
                return Ok(links);
            }
            Err(e) => {
                why.push(format!("{hook} on {CAP_FUNCTION} refused: {}", brief(&e)));
                hooks.push(attempt.failed(&e));
            }
        }
    }
    Err(why.join("; "))
}

/// kprobe and kretprobe on `cap_capable()`: both, or neither left behind.
fn attach_kprobe_pair(ebpf: &mut Ebpf) -> Result<Vec<(&'static str, Link)>, ProbeError> {
    let entry = attach_kprobe(ebpf, CAP_KPROBE_PROGRAM, CAP_FUNCTION)?;
    match attach_kprobe(ebpf, CAP_KRETPROBE_PROGRAM, CAP_FUNCTION) {
        Ok(ret) => Ok(vec![
            (CAP_KPROBE_PROGRAM, Link::KProbe(entry)),
            (CAP_KRETPROBE_PROGRAM, Link::KProbe(ret)),
        ]),
        Err(e) => {
            if let Some(p) = ebpf.program_mut(CAP_KPROBE_PROGRAM) {
                let _ = <&mut KProbe>::try_from(p).map(|k| {
                    let _ = k.detach(entry);
                    k.unload()
                });
            }
            Err(e)
        }
    }
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(program)
        .ok_or_else(|| ProbeError::Map {
            map: "programs",
            message: format!("program {program} missing from the object"),
        })?
        .try_into()
        .map_err(|source| ProbeError::Program { program, source })
}

fn attach_classic(
    ebpf: &mut Ebpf,
    program: &'static str,
    category: &str,
    tracepoint: &str,
) -> Result<aya::programs::trace_point::TracePointLinkId, ProbeError> {
    let prog: &mut TracePoint = program_mut(ebpf, program)?;
    prog.load()
        .map_err(|source| ProbeError::Program { program, source })?;
    prog.attach(category, tracepoint)
        .map_err(|source| ProbeError::Program { program, source })
}

fn kernel_btf(btf: &Result<aya::Btf, String>) -> Result<&aya::Btf, ProbeError> {
    btf.as_ref().map_err(|e| ProbeError::Map {
        map: "kernel BTF",
        message: e.clone(),
    })
}

fn attach_fentry(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    program: &'static str,
    function: &str,
) -> Result<FEntryLinkId, ProbeError> {
    let btf = kernel_btf(btf)?;
    let prog: &mut FEntry = program_mut(ebpf, program)?;
    prog.load(function, btf)
        .map_err(|source| ProbeError::Program { program, source })?;
    // A program loaded but not attached is unloaded: nothing is left in the kernel unused.
    prog.attach().map_err(|source| {
        let _ = prog.unload();
        ProbeError::Program { program, source }
    })
}

fn attach_fexit(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    program: &'static str,
    function: &str,
) -> Result<FExitLinkId, ProbeError> {
    let btf = kernel_btf(btf)?;
    let prog: &mut FExit = program_mut(ebpf, program)?;
    prog.load(function, btf)
        .map_err(|source| ProbeError::Program { program, source })?;
    // A program loaded but not attached is unloaded: nothing is left in the kernel unused.
    prog.attach().map_err(|source| {
        let _ = prog.unload();
        ProbeError::Program { program, source }
    })
}

fn attach_kprobe(
    ebpf: &mut Ebpf,
    program: &'static str,
    function: &str,
) -> Result<KProbeLinkId, ProbeError> {
    let prog: &mut KProbe = program_mut(ebpf, program)?;
    prog.load()
        .map_err(|source| ProbeError::Program { program, source })?;
    prog.attach(function, 0).map_err(|source| {
        let _ = prog.unload();
        ProbeError::Program { program, source }
    })
}

fn attach_btf(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    program: &'static str,
    tracepoint: &str,
) -> Result<BtfTracePointLinkId, ProbeError> {
    let btf = kernel_btf(btf)?;
    let prog: &mut BtfTracePoint = program_mut(ebpf, program)?;
    prog.load(tracepoint, btf)
        .map_err(|source| ProbeError::Program { program, source })?;
    prog.attach()
        .map_err(|source| ProbeError::Program { program, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_and_status_of_a_refusal() {
        let refused = ProbeError::Program {
            program: "p",
            source: aya::programs::ProgramError::SyscallError(aya::sys::SyscallError {
                call: "bpf_prog_load",
                io_error: std::io::Error::from_raw_os_error(libc::EPERM),
            }),
        };
        assert_eq!(errno_of(&refused), Some(libc::EPERM));
        let a = HookAttempt::new("fentry", OOM_FUNCTION, OOM_FENTRY_PROGRAM).failed(&refused);
        assert!(
            matches!(&a.status, HookStatus::Refused { errno: Some(1), error } if error.contains("bpf_prog_load")),
            "{a:?}"
        );
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            (v["status"].as_str(), v["errno"].as_i64()),
            (Some("refused"), Some(1))
        );
        let absent = ProbeError::Program {
            program: "p",
            source: aya::programs::ProgramError::SyscallError(aya::sys::SyscallError {
                call: "perf_event_open",
                io_error: std::io::Error::from_raw_os_error(libc::ENOENT),
            }),
        };
        let a = HookAttempt::new("kprobe", OOM_FUNCTION, OOM_KPROBE_PROGRAM).failed(&absent);
        assert!(matches!(a.status, HookStatus::Absent { .. }), "{a:?}");
        assert_eq!(errno_of(&ProbeError::NothingAttached), None);
    }

    #[test]
    fn gap_warnings_say_what_records_do() {
        assert_eq!(
            gap_warning("sched_process_exit", &["group_dead".to_owned()]),
            "tracepoint sched_process_exit on this kernel lacks group_dead: exit records leave \
             it out"
        );
        assert!(gap_warning("mark_victim", &["uid".to_owned()]).ends_with("reported as 0 or empty"));
    }

    #[test]
    fn the_btf_typed_capability_program_needs_the_arguments_it_reads() {
        let parse = |cap_type| btf::Btf::parse(&btf::tests::cap_tracepoint_btf(cap_type)).unwrap();
        assert_eq!(cap_tracepoint_args(&parse("int")), Ok(()));
        let err = cap_tracepoint_args(&parse("unsigned int")).unwrap_err();
        assert!(
            err.contains("(pointer, pointer, pointer, unsigned int, int)"),
            "{err}"
        );
        let none = btf::Btf::parse(&btf::tests::Builder::new().build()).unwrap();
        assert!(cap_tracepoint_args(&none)
            .unwrap_err()
            .contains("no btf_trace_cap_capable"));
    }

    /// A kernel BTF with only `btf_trace_<tracepoint>`, its arguments (after the `void *`
    /// every such prototype starts with) by type id: 1 `int`, 3 `struct task_struct *`,
    /// 5 `pid_t`.
    fn tracepoint_btf(tracepoint: &str, args: &[u32]) -> btf::Btf {
        let mut b = btf::tests::Builder::new();
        b.int("int", 4); // 1
        b.strukt("task_struct", 8, &[]); // 2
        b.ptr(2); // 3
        b.ptr(0); // 4: void *
        b.typedef("pid_t", 1); // 5
        let mut params = vec![4];
        params.extend_from_slice(args);
        let proto = b.proto(0, &params); // 6
        b.ptr(proto); // 7
        b.typedef(&format!("btf_trace_{tracepoint}"), proto + 1);
        btf::Btf::parse(&b.build()).unwrap()
    }

    #[test]
    fn the_btf_typed_fork_program_needs_two_tasks() {
        let fork = |args: &[u32]| tracepoint_btf("sched_process_fork", args);
        assert_eq!(fork_tracepoint_args(&fork(&[3, 3])), Ok(()));
        let err = fork_tracepoint_args(&fork(&[3, 3, 1])).unwrap_err();
        assert!(
            err.contains("are (pointer, pointer, int), not (parent, child)"),
            "{err}"
        );
        let none = btf::Btf::parse(&btf::tests::Builder::new().build()).unwrap();
        assert!(fork_tracepoint_args(&none)
            .unwrap_err()
            .contains("no btf_trace_sched_process_fork"));
    }

    #[test]
    fn the_btf_typed_exec_program_needs_old_pid_and_bprm() {
        let exec = |args: &[u32]| tracepoint_btf("sched_process_exec", args);
        assert_eq!(exec_tracepoint_args(&exec(&[3, 5, 3])), Ok(()));
        let err = exec_tracepoint_args(&exec(&[3, 3])).unwrap_err();
        assert!(
            err.contains("are (pointer, pointer), not (p, int old_pid, bprm)"),
            "{err}"
        );
    }

    #[test]
    fn a_btf_typed_program_needs_the_members_it_reads() {
        let btf = Ok(tracepoint_btf("sched_process_fork", &[3, 3]));
        assert_eq!(
            btf_program_ready(&btf, fork_tracepoint_args, &[8, 16], "x"),
            Ok(())
        );
        assert_eq!(
            btf_program_ready(
                &btf,
                fork_tracepoint_args,
                &[8, OFFSET_ABSENT],
                "pid or comm"
            ),
            Err("the kernel's BTF lacks pid or comm".to_owned())
        );
        assert_eq!(
            btf_program_ready(&Err("no BTF".to_owned()), fork_tracepoint_args, &[], ""),
            Err("no BTF".to_owned())
        );
    }

    #[test]
    fn runq_source_prefers_the_kernels_stamp_and_falls_back() {
        let full = TaskOffsets {
            pid: 1,
            task_last_queued: 2,
            task_cfs_rq: 3,
            cfs_rq_rq: 4,
            rq_clock: 5,
            ..TaskOffsets::ABSENT
        };
        let no_rq = TaskOffsets {
            cfs_rq_rq: OFFSET_ABSENT,
            ..full
        };
        let nothing = TaskOffsets::ABSENT;
        let source = |t: &TaskOffsets, env| runq_source_for(t, env).unwrap();
        assert_eq!(source(&full, None), runq_source::SCHED_INFO);
        assert_eq!(source(&full, Some("")), runq_source::SCHED_INFO);
        assert_eq!(source(&full, Some("stamps")), runq_source::STAMPS);
        assert_eq!(source(&no_rq, None), runq_source::STAMPS);
        assert_eq!(source(&nothing, None), runq_source::OFF);
        assert_eq!(source(&nothing, Some("stamps")), runq_source::OFF);
        assert_eq!(source(&full, Some(" sched_info ")), runq_source::SCHED_INFO);
        // Asked for where it cannot be: off (with the loader's warning), never the other one.
        assert_eq!(source(&no_rq, Some("sched_info")), runq_source::OFF);
        let err = runq_source_for(&full, Some("wakeups"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CTRACE_RUNQ_SOURCE=\"wakeups\"") && err.contains("`stamps`"),
            "{err}"
        );
    }
}
