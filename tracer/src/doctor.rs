//! `ctrace doctor`: what this host lets ctrace see, and how. The eBPF side is what
//! [`Probe::load`] found when it loaded everything `watch --events all` can use (its hooks,
//! each attached, refused or absent, and its warnings); the rest is read from the host: the
//! kernel, cgroup mounts, runtimes' state roots and sockets, the journal's place.

use std::{
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Serialize;
use tracer_common::{kind, kind_bit};

use crate::probe::{self, HookAttempt, HookStatus, Options, Probe};

/// Everything `ctrace doctor` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub kernel: Kernel,
    /// Every hook tried, in order.
    pub hooks: Vec<HookAttempt>,
    pub features: Vec<Feature>,
    /// What loading the programs warned about.
    pub warnings: Vec<String>,
    /// Why nothing could be loaded at all (not root, no eBPF object, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
    /// Every core feature is on.
    pub ok: bool,
}

/// The kernel and the file systems ctrace relies on.
#[derive(Debug, Clone, Serialize)]
pub struct Kernel {
    pub release: String,
    /// `/sys/kernel/btf/vmlinux`, when present.
    pub btf: Option<PathBuf>,
    /// `v1`, `hybrid`, `v2` or `none`.
    pub cgroup_mode: &'static str,
    pub cgroup2_mount: Option<PathBuf>,
    /// Where the tracing events are read from.
    pub tracefs: Option<PathBuf>,
    /// ctrace mounted tracefs itself (it was not mounted).
    pub tracefs_mounted_by_ctrace: bool,
}

/// One thing ctrace reports, and what serves it.
#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    /// `exec_exit`, `kills`, `oom`, `oom_kernel_figures`, `capability`, `runq_delay`,
    /// `throttling`, `docker`, `containerd`, `runc`, `journal`.
    pub feature: &'static str,
    /// ctrace is not doing its job without it: `doctor` exits non-zero when it is off.
    pub core: bool,
    pub on: bool,
    /// The kind of hook serving it (`tracepoint`, `tp_btf`, `fentry`, `fexit`, `kprobe`), for
    /// features served by the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<&'static str>,
    /// What serves it, or why it is off.
    pub mechanism: String,
    /// Facts a user may need (limits of the mechanism, paths).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Feature {
    fn on(feature: &'static str, core: bool, hook: Option<&'static str>, how: String) -> Self {
        Self {
            feature,
            core,
            on: true,
            hook,
            mechanism: how,
            notes: Vec::new(),
        }
    }

    fn off(feature: &'static str, core: bool, why: String) -> Self {
        Self {
            feature,
            core,
            on: false,
            hook: None,
            mechanism: why,
            notes: Vec::new(),
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// Where things are, overridable for tests.
#[derive(Debug, Clone)]
pub struct Paths {
    pub journal: PathBuf,
    pub docker_socket: PathBuf,
    pub containerd_socket: PathBuf,
    pub run_dir: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            journal: PathBuf::from(crate::journal::DEFAULT_PATH),
            docker_socket: PathBuf::from(crate::docker::DEFAULT_SOCKET),
            containerd_socket: PathBuf::from("/run/containerd/containerd.sock"),
            run_dir: PathBuf::from("/run"),
        }
    }
}

/// Load every program `watch --events all` could use, note how each hook fared, unload, and
/// look at the rest of the host.
pub fn examine(paths: &Paths) -> Report {
    let tracefs_before = tracefs_events();
    let opts = Options {
        kinds: probe::parse_kinds("all").map_or(u32::MAX, |k| k.mask),
        cap_allowed: true,
        runq: true,
        ring_bytes: probe::ring_bytes(64 << 10),
        ..Options::default()
    };
    let (probe, load_error) = match Probe::load(&opts) {
        Ok(mut p) => {
            p.detach();
            (Some(p), None)
        }
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let kernel = kernel(tracefs_before.is_none());
    let mut features = match &probe {
        Some(p) => kernel_features(p),
        None => {
            let why = load_error.clone().unwrap_or_default();
            [
                "exec_exit",
                "kills",
                "oom",
                "oom_kernel_figures",
                "capability",
                "runq_delay",
            ]
            .into_iter()
            .map(|f| Feature::off(f, is_core(f), format!("no eBPF programs: {why}")))
            .collect()
        }
    };
    features.push(throttling(&crate::cgroup::Mounts::current()));
    features.extend(runtimes(paths));
    features.push(journal(&paths.journal));
    let ok = features.iter().all(|f| f.on || !f.core);
    Report {
        kernel,
        hooks: probe.as_ref().map(|p| p.hooks.clone()).unwrap_or_default(),
        features,
        warnings: probe.map(|p| p.warnings).unwrap_or_default(),
        load_error,
        ok,
    }
}

/// The features without which ctrace does not explain what it exists to explain.
fn is_core(feature: &str) -> bool {
    matches!(
        feature,
        "exec_exit" | "kills" | "oom" | "capability" | "throttling"
    )
}

fn tracefs_events() -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(|r| Path::new(r).join("events"))
        .find(|p| p.is_dir())
}

/// The running kernel's release (`uname -r`), from uname(2) rather than /proc.
fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated C strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return format!("unknown ({})", std::io::Error::last_os_error());
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn kernel(tracefs_was_missing: bool) -> Kernel {
    let release = kernel_release();
    let btf = Path::new("/sys/kernel/btf/vmlinux");
    let mounts = crate::cgroup::Mounts::current();
    let events = tracefs_events();
    Kernel {
        release,
        btf: btf.exists().then(|| btf.to_owned()),
        cgroup_mode: cgroup_mode(&mounts),
        cgroup2_mount: mounts.v2.clone(),
        tracefs_mounted_by_ctrace: tracefs_was_missing && events.is_some(),
        tracefs: events.and_then(|e| e.parent().map(Path::to_owned)),
    }
}

/// `v2` (one unified hierarchy), `hybrid` (v1 controllers and a v2 hierarchy), `v1` or
/// `none`.
pub fn cgroup_mode(m: &crate::cgroup::Mounts) -> &'static str {
    match (m.v2.is_some(), m.v1.is_empty()) {
        (true, true) => "v2",
        (true, false) => "hybrid",
        (false, false) => "v1",
        (false, true) => "none",
    }
}

/// The hooks of `feature`'s programs that did not attach, as `hook target: status`.
fn failures(p: &Probe, program_prefix: &str) -> String {
    let parts: Vec<String> = p
        .hooks
        .iter()
        .filter(|h| h.program.starts_with(program_prefix))
        .filter(|h| h.status != HookStatus::Attached)
        .map(|h| format!("{} {}: {}", h.hook, h.target, status_text(&h.status)))
        .collect();
    if parts.is_empty() {
        "not tried".to_owned()
    } else {
        parts.join("; ")
    }
}

/// `attached`, `refused (EPERM): ...`, `absent: ...`, `not tried: ...`.
pub fn status_text(s: &HookStatus) -> String {
    match s {
        HookStatus::Attached => "attached".to_owned(),
        HookStatus::Refused { errno, error } => match errno {
            Some(n) => format!("refused ({}): {error}", errno_name(*n)),
            None => format!("refused: {error}"),
        },
        HookStatus::Absent { why } => format!("absent: {why}"),
        HookStatus::NotTried { why } => format!("not tried: {why}"),
    }
}

/// The symbolic name of the errnos BPF loads and attaches answer with.
pub fn errno_name(n: i32) -> String {
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::E2BIG => "E2BIG",
        libc::EBUSY => "EBUSY",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        524 => "ENOTSUPP",
        _ => return format!("errno {n}"),
    };
    name.to_owned()
}

/// The features served by the eBPF programs, from what [`Probe::load`] attached.
fn kernel_features(p: &Probe) -> Vec<Feature> {
    let active = |k: u16| p.active_kinds & kind_bit(k) != 0;
    let attached = |program: &str| {
        p.hooks
            .iter()
            .any(|h| h.program == program && h.status == HookStatus::Attached)
    };
    let mechanisms = probe::mechanisms(p.programs());
    let mut out = Vec::new();
    let exec = if active(kind::EXEC) && active(kind::EXIT) {
        let mut f = Feature::on(
            "exec_exit",
            true,
            Some("tracepoint"),
            if attached("sched_process_exec_btf") {
                "tp_btf sched_process_exec, tracepoint sched:sched_process_exit".into()
            } else {
                "tracepoint sched:sched_process_exec, sched:sched_process_exit".into()
            },
        );
        if !p.exit_codes {
            f = f.note("task_struct.exit_code is not in the kernel's BTF: exit codes unknown");
        }
        if p.field_gaps
            .get("sched_process_exit")
            .is_some_and(|g| g.iter().any(|f| f == "group_dead"))
        {
            f = f.note(
                "the exit tracepoint has no group_dead on this kernel: exit records leave it out",
            );
        }
        f
    } else {
        Feature::off("exec_exit", true, failures(p, "sched_process_e"))
    };
    out.push(exec);
    out.push(if !active(kind::SIGNAL) {
        Feature::off("kills", true, failures(p, "signal_generate"))
    } else if p.signal_targets_in_kernel {
        Feature::on(
            "kills",
            true,
            Some("tp_btf"),
            "tp_btf signal_generate (targets read from the task)".into(),
        )
    } else {
        Feature::on(
            "kills",
            true,
            Some("tracepoint"),
            "tracepoint signal:signal_generate (targets placed from ctrace's process table)".into(),
        )
    });
    out.push(if active(kind::OOM_VICTIM) {
        Feature::on(
            "oom",
            true,
            Some("tracepoint"),
            "tracepoint oom:mark_victim".into(),
        )
    } else {
        Feature::off("oom", true, failures(p, "mark_victim"))
    });
    out.push(oom_figures(
        p,
        mechanisms.get("oom_context").copied(),
        &attached,
    ));
    out.push(match mechanisms.get("capability") {
        Some(hook) if active(kind::CAPABILITY) => Feature::on(
            "capability",
            true,
            Some(hook),
            format!("{hook} {}", cap_target(hook)),
        ),
        _ => Feature::off("capability", true, failures(p, "cap_capable")),
    });
    out.push(if p.runq_active {
        let stamps = p.programs().iter().any(|a| a.name == "runq_wakeup");
        Feature::on(
            "runq_delay",
            false,
            Some("tp_btf"),
            if stamps {
                "tp_btf sched_wakeup, sched_wakeup_new, sched_switch".into()
            } else {
                "tp_btf sched_switch (the kernel's sched_info stamps)".into()
            },
        )
    } else {
        Feature::off("runq_delay", false, failures(p, "runq_"))
    });
    out
}

fn cap_target(hook: &str) -> &'static str {
    match hook {
        "tracepoint" => "capability:cap_capable",
        "tp_btf" => "cap_capable (the tracepoint)",
        _ => probe::CAP_FUNCTION,
    }
}

/// OOM kills with the kernel's own figures (usage, limit, peak at the OOM, the victim's
/// cgroup), rather than the cgroup files read after the kill.
fn oom_figures(
    p: &Probe,
    oom_context: Option<&'static str>,
    attached: &dyn Fn(&str) -> bool,
) -> Feature {
    let name = "oom_kernel_figures";
    if let Some(hook) = oom_context {
        Feature::on(
            name,
            false,
            Some(hook),
            format!(
                "{hook} {}: the OOM killer's context (the memory cgroup whose limit was hit)",
                probe::OOM_FUNCTION
            ),
        )
    } else if attached("mark_victim_btf") {
        Feature::on(
            name,
            false,
            Some("tp_btf"),
            "tp_btf mark_victim: the victim's lowest limit up its cgroups (which limit was hit \
             is inferred)"
                .into(),
        )
        .note(format!(
            "OOM context unavailable: {}",
            failures(p, "oom_kill_process")
        ))
    } else {
        Feature::off(
            name,
            false,
            format!(
                "figures from the cgroup files after the kill (memory.source cgroup_files): {}; {}",
                failures(p, "oom_kill_process"),
                failures(p, "mark_victim_btf")
            ),
        )
    }
}

/// CPU throttling is read from the cgroups' `cpu.stat` counters.
fn throttling(m: &crate::cgroup::Mounts) -> Feature {
    if let Some(dir) = m.v1.get("cpu") {
        return Feature::on(
            "throttling",
            true,
            None,
            format!(
                "cgroup v1 cpu.stat (nr_throttled, throttled_time) under {}",
                dir.display()
            ),
        );
    }
    let Some(v2) = &m.v2 else {
        return Feature::off("throttling", true, "no cgroup hierarchy is mounted".into());
    };
    let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
    if controllers.split_whitespace().any(|c| c == "cpu") {
        Feature::on(
            "throttling",
            true,
            None,
            format!(
                "cgroup v2 cpu.stat (nr_throttled, throttled_usec) under {}",
                v2.display()
            ),
        )
    } else {
        Feature::off(
            "throttling",
            true,
            format!(
                "the cpu controller is neither a v1 hierarchy nor enabled in {}",
                v2.join("cgroup.controllers").display()
            ),
        )
    }
}

/// Whether a process listens on the Unix socket `path`.
fn socket_state(path: &Path) -> String {
    if !path.exists() {
        return format!("{}: absent", path.display());
    }
    match UnixStream::connect(path) {
        Ok(s) => {
            let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
            format!("{}: listening", path.display())
        }
        Err(e) => format!("{}: not answering ({e})", path.display()),
    }
}

/// Each runtime's state roots (what attributes containers with no daemon reachable) and its
/// API socket (names, labels).
fn runtimes(paths: &Paths) -> Vec<Feature> {
    let roots = crate::container::state_roots_in(&paths.run_dir);
    let under = |sub: &[&str]| -> Vec<String> {
        let base = sub.iter().fold(paths.run_dir.clone(), |p, s| p.join(s));
        roots
            .iter()
            .filter(|r| r.starts_with(&base))
            .map(|r| r.display().to_string())
            .collect()
    };
    let runtime = |name: &'static str, roots: Vec<String>, socket: Option<&Path>| {
        let listening = socket.map(socket_state);
        let found = !roots.is_empty()
            || listening
                .as_deref()
                .is_some_and(|s| s.ends_with("listening"));
        let mut how = if roots.is_empty() {
            "no state root".to_owned()
        } else {
            format!("state roots {}", roots.join(", "))
        };
        if let Some(s) = listening {
            how = format!("{how}; socket {s}");
        }
        if found {
            Feature::on(name, false, None, how)
        } else {
            Feature::off(name, false, format!("not found: {how}"))
        }
    };
    vec![
        runtime(
            "docker",
            under(&["docker", "runtime-runc"]),
            Some(&paths.docker_socket),
        ),
        runtime(
            "containerd",
            under(&["containerd", "runc"]),
            Some(&paths.containerd_socket),
        ),
        runtime("runc", under(&["runc"]), None),
    ]
}

/// Where the journal is (or would be created).
fn journal(path: &Path) -> Feature {
    let name = "journal";
    match std::fs::metadata(path) {
        Ok(m) => Feature::on(
            name,
            false,
            None,
            format!("{} ({} bytes)", path.display(), m.len()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = path
                .ancestors()
                .skip(1)
                .find(|a| a.is_dir())
                .unwrap_or(Path::new("/"));
            let writable = {
                let c = std::ffi::CString::new(parent.as_os_str().as_encoded_bytes())
                    .unwrap_or_default();
                // SAFETY: a NUL-terminated path; access(2) has no other precondition.
                unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
            };
            if writable {
                Feature::on(
                    name,
                    false,
                    None,
                    format!("{} (created at the first watch)", path.display()),
                )
            } else {
                Feature::off(
                    name,
                    false,
                    format!("{}: {} is not writable", path.display(), parent.display()),
                )
            }
        }
        Err(e) => Feature::off(name, false, format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_modes() {
        let m = crate::cgroup::Mounts::parse("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n");
        assert_eq!(cgroup_mode(&m), "v2");
        let m = crate::cgroup::Mounts::parse(
            "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
             cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n",
        );
        assert_eq!(cgroup_mode(&m), "hybrid");
        let t = throttling(&m);
        assert!(
            t.on && t.mechanism.starts_with("cgroup v1 cpu.stat"),
            "{t:?}"
        );
        let m = crate::cgroup::Mounts::parse("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n");
        assert_eq!(cgroup_mode(&m), "v1");
        let t = throttling(&m);
        assert!(!t.on && t.core, "{t:?}");
        assert_eq!(cgroup_mode(&crate::cgroup::Mounts::default()), "none");
    }

    #[test]
    fn hook_statuses_in_words() {
        let refused = HookStatus::Refused {
            errno: Some(libc::EPERM),
            error: "bpf_prog_load failed".into(),
        };
        assert_eq!(
            status_text(&refused),
            "refused (EPERM): bpf_prog_load failed"
        );
        assert_eq!(errno_name(4242), "errno 4242");
        assert_eq!(status_text(&HookStatus::Attached), "attached");
    }

    #[test]
    fn runtimes_from_state_roots_and_sockets() {
        let dir = std::env::temp_dir().join(format!("ctrace-doctor-{}", std::process::id()));
        let run = dir.join("run");
        std::fs::create_dir_all(run.join("containerd/runc/k8s.io")).unwrap();
        let paths = Paths {
            journal: dir.join("no/such/journal.db"),
            docker_socket: dir.join("docker.sock"),
            containerd_socket: dir.join("containerd.sock"),
            run_dir: run.clone(),
        };
        let r = runtimes(&paths);
        let by = |n: &str| r.iter().find(|f| f.feature == n).unwrap().clone();
        assert!(!by("docker").on, "{:?}", by("docker"));
        assert!(by("containerd").on);
        assert!(by("containerd")
            .mechanism
            .contains("containerd/runc/k8s.io"));
        assert!(by("containerd")
            .mechanism
            .contains("containerd.sock: absent"));
        assert!(!by("runc").on);
        let j = journal(&paths.journal);
        assert!(
            j.on && j.mechanism.contains("created at the first watch"),
            "{j:?}"
        );
        std::fs::write(dir.join("j.db"), b"x").unwrap();
        assert!(journal(&dir.join("j.db")).mechanism.ends_with("(1 bytes)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
