//! Correlation of events into incidents, each with a one-sentence explanation.
//!
//! - **kill**: a terminating signal (`signal_generate`) and the exit of its target. The target
//!   and the sender are both attributed; when the target is a container's init, the container
//!   stopped because of it.
//! - **oom_kill**: `oom:mark_victim`, the SIGKILL the OOM killer sends just before it
//!   (mm/oom_kill.c `__oom_kill_process`), the victim's exit, and the memory figures of the
//!   victim's cgroup read when the record arrives: container-limit OOM vs host-wide OOM, and
//!   what the memory was made of (anon, page cache, shmem, kernel), naming what dominated.
//! - **container_start** / **container_stop**: the exec and the exit of a container's init,
//!   with the reason it stopped (exited, killed by a signal from X, OOM-killed).
//!
//! Pure apart from the [`MemoryReader`] it is given, so every rule is unit-tested.

mod restart_loop;

use std::{collections::HashMap, sync::Arc};

use crate::{
    cgroup::{MemoryBreakdown, MemoryStats, Mounts},
    event::{Body, Event, Exit, OomVictim, Signal, Task},
    names::signal_name,
    proctable::PidMap,
    resolve::{Attribution, Attrs, Container},
    units::bytes,
};
pub use restart_loop::{Cause, Death, RestartLoop, DEATHS_KEPT};

/// How long a signal or OOM victim waits for its target's exit before the incident is
/// reported without it.
pub const EXIT_WAIT_NS: u64 = 5_000_000_000;

/// Containers remembered as reported started (their init's exit forgets them).
const STARTED_MAX: usize = 16_384;

/// Signals whose default action ends the process: the ones worth a kill incident.
const TERMINATING: [i32; 8] = [1, 2, 3, 6, 9, 11, 14, 15];

/// `si_code` of signals the kernel sends itself (`SI_KERNEL`).
const SI_KERNEL: i32 = 0x80;

/// A task as incidents report it: who, and in which container.
#[derive(Debug, Clone, PartialEq)]
pub struct Party {
    pub pid: u32,
    pub comm: String,
    pub attribution: Attribution,
    pub cgroup_id: Option<u64>,
}

impl Party {
    fn of_task(t: &Task, a: &Attribution) -> Self {
        Self {
            pid: t.pid,
            comm: t.comm.clone(),
            attribution: a.clone(),
            cgroup_id: Some(t.cgroup_id),
        }
    }

    /// `nginx (pid 1 in web, docker)`, `bash (pid 812, host)`.
    pub fn describe(&self) -> String {
        match &self.attribution {
            Attribution::Host => format!("{} (pid {}, host)", self.comm, self.pid),
            Attribution::Container(c) => {
                format!(
                    "{} (pid {} in {}, {})",
                    self.comm,
                    self.pid,
                    c.display(),
                    c.runtime
                )
            }
            Attribution::Unknown => format!(
                "{} (pid {}, cgroup {})",
                self.comm,
                self.pid,
                self.cgroup_id.unwrap_or(0)
            ),
        }
    }

    pub fn container(&self) -> Option<&Arc<Container>> {
        self.attribution.container()
    }

    /// Whether this task is its container's init process.
    pub fn is_container_init(&self) -> bool {
        self.container()
            .is_some_and(|c| c.init_pid == Some(self.pid))
    }
}

/// How the exit of a target went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<u32>,
    pub signal: Option<u32>,
}

impl From<&Exit> for ExitInfo {
    fn from(e: &Exit) -> Self {
        Self {
            code: e.code(),
            signal: e.signal(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KillIncident {
    pub boot_ns: u64,
    pub signo: i32,
    /// Sent by the kernel (`SI_KERNEL`) rather than a process calling kill(2).
    pub from_kernel: bool,
    pub sender: Party,
    pub target: Party,
    /// `None`: the target had not exited when the incident was reported.
    pub exit: Option<ExitInfo>,
    /// The target was its container's init: the container stopped with it.
    pub container_stopped: bool,
}

/// Container-limit OOM (the cgroup hit its own limit), host-wide OOM (the machine ran out),
/// or unknown (nothing about the victim's cgroup could be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomScope {
    ContainerLimit,
    Host,
    Unknown,
    /// A userspace OOM killer (earlyoom, systemd-oomd, ...) sent the SIGKILL, on memory
    /// pressure: not the kernel's OOM killer.
    Userspace,
}

impl OomScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContainerLimit => "container_limit",
            Self::Host => "host",
            Self::Unknown => "unknown",
            Self::Userspace => "userspace",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OomIncident {
    pub boot_ns: u64,
    pub victim: Party,
    pub victim_tgid: u32,
    pub details: OomVictim,
    /// The task whose allocation made the kernel pick a victim.
    pub trigger: Party,
    /// Memory figures of the victim's cgroup when the record arrived.
    pub memory: Option<MemoryStats>,
    pub scope: OomScope,
    pub exit: Option<ExitInfo>,
    pub container_stopped: bool,
    /// Who held the memory: the tasks of the OOM domain by RSS, from the kernel's own report
    /// (`/dev/kmsg`); added by the session, `None` where nobody asked (an older capture).
    pub tasks: Option<OomTasks>,
    /// The other tasks killed with the victim because its cgroup asks for it
    /// (`memory.oom.group`), in the order the kernel marked them.
    pub group: Vec<GroupVictim>,
}

/// A task killed with an OOM victim, as one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupVictim {
    pub party: Party,
    /// Its RSS at the kill (anon, file and shmem), KiB.
    pub rss_kb: u64,
}

/// The victims of one `memory.oom.group` kill are marked in one call: this close together,
/// by the same triggering task.
pub const OOM_GROUP_WINDOW_NS: u64 = 10_000_000;

/// The tasks of an OOM domain when the OOM killer chose, the largest first.
#[derive(Debug, Clone, PartialEq)]
pub struct OomTasks {
    /// `kmsg` (the kernel's report), or `victim_only` when it could not be read (`note`
    /// says why): then only the victim's RSS, from the eBPF record, is known.
    pub source: &'static str,
    pub note: Option<String>,
    /// The tasks the kernel listed (the domain's whole size).
    pub listed: usize,
    /// The largest ones (at most [`crate::host::kmsg::TASKS_KEPT`]).
    pub top: Vec<TaskRss>,
}

/// One task of an OOM domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRss {
    pub pid: u32,
    pub comm: String,
    pub rss_bytes: u64,
}

/// The largest tasks an explanation names.
const TASKS_TOLD: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    Exited,
    Killed {
        signo: i32,
        by: Party,
    },
    OomKilled,
    /// Died of a signal ctrace did not see being sent.
    Signaled,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Incident {
    Kill(KillIncident),
    Oom(Box<OomIncident>),
    ContainerStart {
        boot_ns: u64,
        container: Arc<Container>,
        init: Party,
        filename: String,
    },
    ContainerStop {
        boot_ns: u64,
        container: Arc<Container>,
        exit: ExitInfo,
        reason: StopReason,
    },
    /// Found by [`crate::restarts::RestartWatch`] from the starts and stops.
    RestartLoop(Box<RestartLoop>),
}

impl Incident {
    pub fn boot_ns(&self) -> u64 {
        match self {
            Self::Kill(k) => k.boot_ns,
            Self::Oom(o) => o.boot_ns,
            Self::ContainerStart { boot_ns, .. } | Self::ContainerStop { boot_ns, .. } => *boot_ns,
            Self::RestartLoop(l) => l.boot_ns,
        }
    }

    /// The NDJSON `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Kill(_) => "kill",
            Self::Oom(_) => "oom_kill",
            Self::ContainerStart { .. } => "container_start",
            Self::ContainerStop { .. } => "container_stop",
            Self::RestartLoop(_) => "restart_loop",
        }
    }

    /// The container the incident is about (the target's, the victim's, the one started or
    /// stopped).
    pub fn container(&self) -> Option<&Arc<Container>> {
        match self {
            Self::Kill(k) => k.target.container(),
            Self::Oom(o) => o.victim.container(),
            Self::ContainerStart { container, .. } | Self::ContainerStop { container, .. } => {
                Some(container)
            }
            Self::RestartLoop(l) => Some(&l.container),
        }
    }

    /// Whether any party of the incident is in a container.
    pub fn touches_container(&self) -> bool {
        match self {
            Self::Kill(k) => k.target.container().is_some() || k.sender.container().is_some(),
            Self::Oom(o) => o.victim.container().is_some() || o.trigger.container().is_some(),
            _ => true,
        }
    }

    /// The one-sentence explanation.
    pub fn explain(&self) -> String {
        match self {
            Self::Kill(k) => k.explain(),
            Self::Oom(o) => o.explain(),
            Self::RestartLoop(l) => l.explain(),
            Self::ContainerStart {
                container,
                init,
                filename,
                ..
            } => format!(
                "container {} ({}) started: {} (pid {})",
                container.display(),
                container.runtime,
                filename,
                init.pid
            ),
            Self::ContainerStop {
                container,
                exit,
                reason,
                ..
            } => {
                let why = match reason {
                    StopReason::Exited => "its init exited".to_owned(),
                    StopReason::Killed { signo, by } => {
                        format!("{} from {}", signal_name((*signo).into()), by.describe())
                    }
                    StopReason::OomKilled => "its init was OOM-killed".to_owned(),
                    StopReason::Signaled => "its init died of a signal".to_owned(),
                };
                format!(
                    "container {} ({}) stopped with {}: {why}",
                    container.display(),
                    container.runtime,
                    exit_text(exit)
                )
            }
        }
    }
}

impl KillIncident {
    /// `nginx (pid 1000 in web, docker) killed by SIGKILL from ...; web exited with 137`.
    fn explain(&self) -> String {
        let k = self;
        let sig = signal_name(k.signo.into());
        let by = if k.from_kernel {
            format!("the kernel (while {} ran)", k.sender.describe())
        } else {
            k.sender.describe()
        };
        let mut s = format!("{} killed by {sig} from {by}", k.target.describe());
        match (&k.exit, k.target.container()) {
            (Some(e), Some(c)) if k.container_stopped => {
                s.push_str(&format!("; {} exited with {}", c.display(), exit_text(e)));
            }
            (Some(e), _) => s.push_str(&format!("; it exited with {}", exit_text(e))),
            (None, _) => s.push_str("; it had not exited yet"),
        }
        s
    }
}

impl OomIncident {
    /// `... was OOM-killed: web hit its memory limit of 64 MiB (usage ..., peak ...); ...`.
    fn explain(&self) -> String {
        let o = self;
        let (what, usage, made_of) = (o.what(), o.usage_text(), o.made_of());
        let rss = o.details.anon_rss_kb + o.details.file_rss_kb + o.details.shmem_rss_kb;
        let trigger = if o.trigger.pid == o.victim_tgid {
            "its own allocation".to_owned()
        } else {
            o.trigger.describe()
        };
        let mut s = if o.scope == OomScope::Userspace {
            // No kernel record: the victim's RSS is not known, and the killer is the trigger.
            format!(
                "{} was OOM-killed: {what}{usage}{made_of}",
                o.victim.describe()
            )
        } else {
            format!(
                "{} was OOM-killed: {what}{usage}{made_of}; victim RSS {}; triggered by {trigger}",
                o.victim.describe(),
                bytes(rss * 1024),
            )
        };
        s.push_str(&o.afterword());
        s
    }

    /// What happened: the limit hit (and where), the host, the userspace killer.
    fn what(&self) -> String {
        let o = self;
        let limit = o
            .memory
            .as_ref()
            .and_then(|m| m.limit_bytes)
            .map(|l| format!(" of {}", bytes(l)))
            .unwrap_or_default();
        // A limit found above the victim's own cgroup (a pod's) says where it is.
        let above = match o.memory.as_ref().and_then(|m| m.limit_depth) {
            Some(1) => "one cgroup level".to_owned(),
            Some(n) if n > 1 => format!("{n} cgroup levels"),
            _ => String::new(),
        };
        match (o.scope, o.victim.container()) {
            (OomScope::ContainerLimit, c) => {
                let who = c.map_or("its cgroup", |c| c.display());
                if above.is_empty() {
                    format!("{who} hit its memory limit{limit}")
                } else {
                    let own = if c.is_some() { "its own" } else { "it" };
                    format!("{who} hit a memory limit{limit} set {above} above {own}")
                }
            }
            (OomScope::Host, _) => "the host ran out of memory".into(),
            (OomScope::Userspace, c) => {
                let pressure = o
                    .memory
                    .as_ref()
                    .and_then(|m| m.pressure.as_ref())
                    .map(|p| {
                        format!(
                            " with {} memory pressure (some avg10 {:.1}%{})",
                            c.map_or("its cgroup's", |_| "the container's"),
                            p.some.avg10.unwrap_or(0.0),
                            p.full
                                .as_ref()
                                .and_then(|f| f.avg10)
                                .map(|f| format!(", full avg10 {f:.1}%"))
                                .unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "the userspace OOM killer {} sent SIGKILL{pressure}",
                    o.trigger.describe()
                )
            }
            (OomScope::Unknown, _) if o.memory.as_ref().is_some_and(|m| m.stale) => {
                "its cgroup was gone before its figures at the kill could be read".into()
            }
            (OomScope::Unknown, _) => "its cgroup's memory figures could not be read".into(),
        }
    }

    /// ` (usage 100 MiB, peak 100 MiB)`, or the last sample's.
    fn usage_text(&self) -> String {
        let o = self;
        o.memory
            .as_ref()
            .map(|m| {
                let mut parts = Vec::new();
                if let Some(u) = m.usage_bytes {
                    parts.push(format!("usage {}", bytes(u)));
                }
                if let Some(p) = m.peak_bytes {
                    parts.push(format!("peak {}", bytes(p)));
                }
                if parts.is_empty() {
                    String::new()
                } else if m.stale {
                    format!(" (last sample before the kill: {})", parts.join(", "))
                } else {
                    format!(" ({})", parts.join(", "))
                }
            })
            .unwrap_or_default()
    }

    /// `; anon 97 MiB of 100 MiB`: what dominated the usage.
    fn made_of(&self) -> String {
        let o = self;
        o.memory
            .as_ref()
            .and_then(|m| Some((m.breakdown.as_ref()?, m.usage_bytes?)))
            .and_then(|(b, usage)| {
                let (name, v) = dominant(b, usage)?;
                let what = match name {
                    "file" => " (page cache)",
                    "shmem" => " (tmpfs, /dev/shm)",
                    _ => "",
                };
                let when = if b.stale {
                    " in the last sample before the kill"
                } else {
                    ""
                };
                Some(format!(
                    "; {name} {} of {}{what}{when}",
                    bytes(v),
                    bytes(usage)
                ))
            })
            .unwrap_or_default()
    }

    /// The group killed with the victim, who else held memory, and what became of the
    /// container.
    fn afterword(&self) -> String {
        let o = self;
        let mut s = String::new();
        if !o.group.is_empty() {
            let named: Vec<String> = o
                .group
                .iter()
                .map(|g| format!("{} (pid {})", g.party.comm, g.party.pid))
                .collect();
            s.push_str(&format!(
                "; with it, as its cgroup's memory.oom.group asks, the OOM killer killed {} more: {}",
                o.group.len(),
                named.join(", ")
            ));
        }
        // Who else held memory: said when the kernel listed more than the victim.
        if let Some(t) = o.tasks.as_ref().filter(|t| t.top.len() > 1) {
            let named: Vec<String> = t
                .top
                .iter()
                .take(TASKS_TOLD)
                .map(|t| format!("{} (pid {}) {}", t.comm, t.pid, bytes(t.rss_bytes)))
                .collect();
            s.push_str(&format!(
                "; largest of its {} tasks: {}",
                t.listed,
                named.join(", ")
            ));
        }
        match (o.container_stopped, o.victim.container()) {
            (true, Some(c)) => s.push_str(&format!("; {} stopped", c.display())),
            // A child: the container goes on, and no runtime counts this as a restart.
            (false, Some(c)) if o.exit.is_some() => s.push_str(&format!(
                "; {} goes on (its init lives): not a restart",
                c.display()
            )),
            _ => {}
        }
        s
    }
}

fn exit_text(e: &ExitInfo) -> String {
    match (e.code, e.signal) {
        (Some(c), Some(s)) => format!("{c} ({})", signal_name(s.into())),
        (Some(c), None) => c.to_string(),
        _ => "an unknown status".into(),
    }
}

/// runc's own execs, which can land in the container's cgroup before its program starts when
/// the runtime attaches its bootstrap process early: its re-exec from a sealed copy of itself
/// (`/dev/fd/N`, still named `runc`) and its `/proc/self/exe init`.
fn is_runtime_exec(filename: &str, comm: &str) -> bool {
    filename.starts_with("/dev/fd/")
        || filename.starts_with("/proc/self/fd/")
        || filename == "/proc/self/exe"
        || comm == "runc"
        || comm.starts_with("runc:")
}

/// Reads a container's memory figures (injected so tests need no cgroup file system).
pub trait MemoryReader {
    fn read(&self, c: &Container) -> Option<MemoryStats>;
}

/// The live cgroup file systems, with the last figures read of each cgroup: a container
/// whose init the OOM killer chose may have its cgroup removed before the record is read.
pub struct CgroupMemory {
    mounts: Mounts,
    last: std::cell::RefCell<HashMap<String, MemoryStats>>,
    /// When each cgroup's figures were last refreshed.
    refreshed: std::cell::RefCell<HashMap<String, std::time::Instant>>,
}

/// A live container's fallback figures are read at most this often.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl CgroupMemory {
    pub fn new(mounts: Mounts) -> Self {
        Self {
            mounts,
            last: std::cell::RefCell::new(HashMap::new()),
            refreshed: std::cell::RefCell::new(HashMap::new()),
        }
    }

    /// The figures of the cgroup whose limit bounds the container (its own, or an
    /// ancestor's with a lower limit, as a pod's).
    fn read_live(&self, c: &Container) -> Option<(String, MemoryStats)> {
        let path = c.cgroup_path_for("memory")?;
        let bound = self.mounts.memory_bounding(path)?;
        let mut m = bound.dir.read();
        if bound.depth > 0 {
            m.limit_depth = Some(bound.depth);
            // OOM kills are counted where the victim was (v1 does not count them up the
            // tree): the container's own.
            m.oom_kills = self.mounts.memory(path).and_then(|d| d.read().oom_kills);
        }
        if m.pressure.is_none() {
            // Hybrid hosts: memory is a v1 controller, but PSI lives in the unified tree.
            m.pressure = c
                .cgroup_path_for("")
                .and_then(|u| self.mounts.v2_dir(u))
                .and_then(|d| crate::cgroup::read_pressure(&d, "memory.pressure"));
        }
        (m.usage_bytes.is_some() || m.limit_bytes.is_some()).then(|| (path.to_owned(), m))
    }

    /// Read and remember a live container's figures (called each sampling interval; read
    /// at most every [`REFRESH_EVERY`] per container, or at once when `at_once`: an OOM kill reads
    /// them afresh, and these are only the fallback for a cgroup gone before its record was
    /// read).
    pub fn refresh(&self, c: &Container, at_once: bool) {
        let Some(path) = c.cgroup_path_for("memory") else {
            return;
        };
        let now = std::time::Instant::now();
        {
            let mut at = self.refreshed.borrow_mut();
            if !at_once
                && at
                    .get(path)
                    .is_some_and(|t| now.duration_since(*t) < REFRESH_EVERY)
            {
                return;
            }
            if at.len() > 10_000 {
                at.clear();
            }
            at.insert(path.to_owned(), now);
        }
        if let Some((path, m)) = self.read_live(c) {
            let mut last = self.last.borrow_mut();
            if last.len() > 10_000 {
                last.clear();
            }
            last.insert(path, m);
        }
    }
}

impl MemoryReader for CgroupMemory {
    fn read(&self, c: &Container) -> Option<MemoryStats> {
        if let Some((path, m)) = self.read_live(c) {
            self.last.borrow_mut().insert(path, m.clone());
            return Some(m);
        }
        let path = c.cgroup_path_for("memory")?;
        let mut m = self.last.borrow().get(path).cloned()?;
        m.stale = true;
        if let Some(b) = &mut m.breakdown {
            b.stale = true;
        }
        Some(m)
    }
}

struct PendingKill {
    incident: KillIncident,
    deadline: u64,
}

struct PendingOom {
    incident: OomIncident,
    deadline: u64,
}

/// The correlator: feed it every attributed event, and call [`Correlator::tick`] regularly.
pub struct Correlator<M> {
    memory: M,
    kills: PidMap<u32, PendingKill>,
    ooms: PidMap<u32, PendingOom>,
    /// Victims already reported, so a repeated mark_victim is not a second incident.
    recent_oom_victims: PidMap<u32, u64>,
    /// The first exec seen in each container whose init the runtime's state has not named
    /// (see [`Correlator::init_unknown`]).
    first_exec: HashMap<String, u32>,
    /// Per container, the init its state named when it was seen to stop: until the runtime's
    /// state names another (a restart), that `init_pid` is a dead one and says nothing.
    stopped_init: HashMap<String, u32>,
    /// (container id, init pid) already reported as started: busybox and shells exec more
    /// than once in the same pid.
    /// Bounded: an init whose exit was lost would otherwise stay forever.
    started: crate::once::OnceSet<(String, u32)>,
    /// Programs whose SIGKILL is a userspace OOM kill, by comm.
    oom_killers: Vec<String>,
    /// Tasks killed as part of an OOM group, until their exit: their container stopped for an
    /// OOM kill.
    group_members: PidMap<u32, u64>,
}

/// Userspace OOM killers, by the comm of the process that sends their SIGKILL.
pub const OOM_KILLERS: [&str; 4] = ["earlyoom", "systemd-oomd", "oomd", "kubelet"];

impl<M: MemoryReader> Correlator<M> {
    pub fn new(memory: M) -> Self {
        Self {
            memory,
            kills: PidMap::default(),
            ooms: PidMap::default(),
            recent_oom_victims: PidMap::default(),
            first_exec: HashMap::new(),
            stopped_init: HashMap::new(),
            started: crate::once::OnceSet::new(STARTED_MAX),
            oom_killers: OOM_KILLERS.iter().map(|k| (*k).to_owned()).collect(),
            group_members: PidMap::default(),
        }
    }

    /// The comms whose SIGKILL is a userspace OOM kill (default [`OOM_KILLERS`]).
    pub fn set_oom_killers(&mut self, comms: Vec<String>) {
        self.oom_killers = comms;
    }

    /// The memory reader (to keep its figures fresh).
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// Incidents this event completes.
    pub fn observe(&mut self, ev: &Event, attrs: &Attrs) -> Vec<Incident> {
        let mut out = Vec::new();
        match &ev.body {
            Body::Signal(s) => self.signal(ev, s, attrs),
            Body::OomVictim(o) => self.oom(ev, o, attrs),
            Body::Exec(e) => {
                let init = Party::of_task(&ev.task, &attrs.process);
                if let Some(c) = init.container() {
                    if init.is_container_init() {
                        if self.started.insert((c.id.clone(), init.pid)) {
                            out.push(Incident::ContainerStart {
                                boot_ns: ev.boot_ns,
                                container: Arc::clone(c),
                                init: init.clone(),
                                filename: e.filename.clone(),
                            });
                        }
                    } else if self.init_unknown(c)
                        && !self.first_exec.contains_key(&c.id)
                        && !is_runtime_exec(&e.filename, &ev.task.comm)
                    {
                        // The runtime's state did not name the init yet (a container that
                        // just appeared, or was restarted since its init exited): the first
                        // exec in it is its init's, as runc's init process execs the
                        // container's program before anything else can run there.
                        self.first_exec.insert(c.id.clone(), init.pid);
                        if self.started.insert((c.id.clone(), init.pid)) {
                            out.push(Incident::ContainerStart {
                                boot_ns: ev.boot_ns,
                                container: Arc::clone(c),
                                init: init.clone(),
                                filename: e.filename.clone(),
                            });
                        }
                    }
                }
            }
            Body::Exit(e) if e.group_dead == Some(true) || ev.task.tid == ev.task.pid => {
                self.exit(ev, e, attrs, &mut out);
            }
            _ => {}
        }
        out
    }

    fn signal(&mut self, ev: &Event, s: &Signal, attrs: &Attrs) {
        if !TERMINATING.contains(&s.sig) || s.result != 0 {
            return;
        }
        let target_pid = s.target_tgid.unwrap_or(s.target_pid);
        // A process signalling itself (abort(), a shell's own exit) is not a kill.
        if target_pid == ev.task.pid && s.code != SI_KERNEL {
            return;
        }
        let target = Party {
            pid: target_pid,
            comm: s.target_comm.clone(),
            attribution: attrs.other.clone().unwrap_or(Attribution::Unknown),
            cgroup_id: s.target_cgroup_id,
        };
        if s.sig == 9 && s.code != SI_KERNEL && self.oom_killers.contains(&ev.task.comm) {
            self.userspace_oom(ev, s, target, attrs);
            return;
        }
        self.kills.insert(
            target_pid,
            PendingKill {
                incident: KillIncident {
                    boot_ns: ev.boot_ns,
                    signo: s.sig,
                    from_kernel: s.code == SI_KERNEL,
                    sender: Party::of_task(&ev.task, &attrs.process),
                    container_stopped: false,
                    target,
                    exit: None,
                },
                deadline: ev.boot_ns + EXIT_WAIT_NS,
            },
        );
    }

    /// A userspace OOM killer's SIGKILL: an OOM kill of `target`, with the figures and the
    /// memory pressure of its cgroup now (the kernel gives no victim record for it).
    fn userspace_oom(&mut self, ev: &Event, s: &Signal, target: Party, attrs: &Attrs) {
        let memory = target.container().and_then(|c| self.memory.read(c));
        let details = OomVictim {
            victim_pid: target.pid,
            victim_comm: target.comm.clone(),
            victim_uid: 0,
            total_vm_kb: 0,
            anon_rss_kb: 0,
            file_rss_kb: 0,
            shmem_rss_kb: 0,
            pgtables_kb: 0,
            oom_score_adj: 0,
            victim_tgid: Some(target.pid),
            victim_cgroup_id: s.target_cgroup_id,
            victim_memcg: None,
            oom_context: None,
        };
        self.ooms.insert(
            target.pid,
            PendingOom {
                incident: OomIncident {
                    boot_ns: ev.boot_ns,
                    victim_tgid: target.pid,
                    victim: target,
                    details,
                    trigger: Party::of_task(&ev.task, &attrs.process),
                    memory,
                    scope: OomScope::Userspace,
                    exit: None,
                    container_stopped: false,
                    tasks: None,
                    group: Vec::new(),
                },
                deadline: ev.boot_ns + EXIT_WAIT_NS,
            },
        );
    }

    fn oom(&mut self, ev: &Event, o: &OomVictim, attrs: &Attrs) {
        let tgid = o.victim_tgid.unwrap_or(o.victim_pid);
        if let Some(&t) = self.recent_oom_victims.get(&tgid) {
            if ev.boot_ns.saturating_sub(t) < EXIT_WAIT_NS * 2 {
                return;
            }
        }
        self.recent_oom_victims.insert(tgid, ev.boot_ns);
        // The OOM killer's own SIGKILL belongs to this incident, not to a kill incident.
        if self
            .kills
            .get(&tgid)
            .is_some_and(|k| k.incident.from_kernel)
        {
            self.kills.remove(&tgid);
        }
        let victim = Party {
            pid: tgid,
            comm: o.victim_comm.clone(),
            attribution: attrs.other.clone().unwrap_or(Attribution::Unknown),
            cgroup_id: o.victim_cgroup_id,
        };
        // memory.oom.group: right after the task it chose, the OOM killer kills every task of
        // the group, in the same call (same trigger, within microseconds): one incident.
        if let Some(p) = self.ooms.values_mut().find(|p| {
            p.incident.scope != OomScope::Userspace
                && p.incident.trigger.pid == ev.task.pid
                && ev.boot_ns.saturating_sub(p.incident.boot_ns) <= OOM_GROUP_WINDOW_NS
        }) {
            p.incident.group.push(GroupVictim {
                rss_kb: o.anon_rss_kb + o.file_rss_kb + o.shmem_rss_kb,
                party: victim,
            });
            self.group_members.insert(tgid, ev.boot_ns);
            return;
        }
        let files = victim.container().and_then(|c| self.memory.read(c));
        let read_usage = files
            .as_ref()
            .filter(|m| !m.stale)
            .and_then(|m| m.usage_bytes);
        let mut memory = with_kernel_figures(files, o.victim_memcg.as_ref());
        if let (Some(m), Some(read), Some(k)) =
            (memory.as_mut(), read_usage, o.victim_memcg.as_ref())
        {
            add_freed_victim_anon(m, read, k.usage_bytes, o.anon_rss_kb * 1024);
        }
        let rss = (o.anon_rss_kb + o.file_rss_kb + o.shmem_rss_kb) * 1024;
        // The OOM killer's word where ctrace could read it (`oc->memcg`: NULL for the host, else
        // the cgroup whose limit was hit, the victim's own or one above); else inferred.
        let scope = match o.oom_context {
            Some(c) if c.memcg.is_none() => OomScope::Host,
            Some(_) => OomScope::ContainerLimit,
            None => oom_scope(memory.as_ref(), rss),
        };
        self.ooms.insert(
            tgid,
            PendingOom {
                incident: OomIncident {
                    boot_ns: ev.boot_ns,
                    victim,
                    victim_tgid: tgid,
                    details: o.clone(),
                    trigger: Party::of_task(&ev.task, &attrs.process),
                    memory,
                    scope,
                    exit: None,
                    container_stopped: false,
                    tasks: None,
                    group: Vec::new(),
                },
                deadline: ev.boot_ns + EXIT_WAIT_NS,
            },
        );
    }

    fn exit(&mut self, ev: &Event, e: &Exit, attrs: &Attrs, out: &mut Vec<Incident>) {
        let pid = ev.task.pid;
        let exited = Party::of_task(&ev.task, &attrs.process);
        let is_init = exited.is_container_init()
            || exited
                .container()
                .is_some_and(|c| self.init_unknown(c) && self.first_exec.get(&c.id) == Some(&pid));
        let info = ExitInfo::from(e);
        let mut reason = match info.signal {
            Some(_) => StopReason::Signaled,
            None => StopReason::Exited,
        };
        if let Some(mut p) = self.ooms.remove(&pid) {
            p.incident.exit = Some(info);
            p.incident.container_stopped = is_init;
            // The exit names the victim's container for sure when the signal did not.
            if p.incident.victim.container().is_none() {
                p.incident.victim.attribution = attrs.process.clone();
            }
            reason = StopReason::OomKilled;
            out.push(Incident::Oom(Box::new(p.incident)));
        } else if self.group_members.remove(&pid).is_some() {
            reason = StopReason::OomKilled;
        } else if let Some(mut p) = self.kills.remove(&pid) {
            p.incident.exit = Some(info);
            p.incident.container_stopped = is_init;
            if p.incident.target.container().is_none() {
                p.incident.target.attribution = attrs.process.clone();
            }
            if info.signal.is_some() || p.incident.signo == 15 || p.incident.signo == 2 {
                reason = StopReason::Killed {
                    signo: p.incident.signo,
                    by: p.incident.sender.clone(),
                };
            }
            out.push(Incident::Kill(p.incident));
        }
        if let (true, Some(c)) = (is_init, exited.container()) {
            self.started.remove(&(c.id.clone(), pid));
            self.first_exec.remove(&c.id);
            // The init the state names is dead, whichever process this was (the state may
            // still name the one before).
            if let Some(named) = c.init_pid {
                self.stopped_init.insert(c.id.clone(), named);
            }
            out.push(Incident::ContainerStop {
                boot_ns: ev.boot_ns,
                container: Arc::clone(c),
                exit: info,
                reason,
            });
        }
    }

    /// Incidents whose target did not exit in time.
    pub fn tick(&mut self, now_boot_ns: u64) -> Vec<Incident> {
        let mut out = Vec::new();
        // Oldest deadline first, whatever the maps' order: the same records give the same
        // lines in the same order (a replay's as the live run's).
        let mut due: Vec<(u64, u32)> = self
            .ooms
            .iter()
            .filter(|(_, p)| p.deadline <= now_boot_ns)
            .map(|(k, p)| (p.deadline, *k))
            .collect();
        due.sort_unstable();
        let due = due.into_iter().map(|(_, k)| k);
        for k in due {
            if let Some(p) = self.ooms.remove(&k) {
                out.push(Incident::Oom(Box::new(p.incident)));
            }
        }
        let mut due: Vec<(u64, u32)> = self
            .kills
            .iter()
            .filter(|(_, p)| p.deadline <= now_boot_ns)
            .map(|(k, p)| (p.deadline, *k))
            .collect();
        due.sort_unstable();
        let due = due.into_iter().map(|(_, k)| k);
        for k in due {
            if let Some(p) = self.kills.remove(&k) {
                out.push(Incident::Kill(p.incident));
            }
        }
        self.recent_oom_victims
            .retain(|_, t| now_boot_ns.saturating_sub(*t) < EXIT_WAIT_NS * 4);
        self.group_members
            .retain(|_, t| now_boot_ns.saturating_sub(*t) < EXIT_WAIT_NS * 4);
        if self.first_exec.len() > 10_000 {
            self.first_exec.clear();
        }
        if self.stopped_init.len() > 10_000 {
            self.stopped_init.clear();
        }
        out
    }

    /// Whether `c`'s state names no living init: none yet, or the one seen to exit (a
    /// restarted container whose new state has not been read; under load Docker's answer can
    /// come after the new init's first records).
    fn init_unknown(&self, c: &Container) -> bool {
        match c.init_pid {
            None => true,
            Some(p) => self.stopped_init.get(&c.id) == Some(&p),
        }
    }

    /// Everything still pending, reported as is (at shutdown).
    pub fn flush(&mut self) -> Vec<Incident> {
        self.tick(u64::MAX)
    }
}

/// The cgroup files' figures, with usage, limit and peak replaced by what the kernel read at
/// the OOM where it did: by the time the files are read the victim's memory is freed, or the
/// cgroup is gone and only an older sample is left. The files' own counters (OOM kills,
/// events) are kept when they were read now, dropped when they are an older sample.
pub fn with_kernel_figures(
    files: Option<MemoryStats>,
    kernel: Option<&crate::event::MemcgAtOom>,
) -> Option<MemoryStats> {
    let Some(k) = kernel else {
        return files;
    };
    let mut m = files.unwrap_or_default();
    if m.stale {
        // The breakdown stays, marked as the older sample it is: the kernel gave no other.
        let breakdown = m.breakdown.take();
        m = MemoryStats {
            breakdown,
            ..MemoryStats::default()
        };
    }
    m.limit_bytes = k.limit_bytes;
    m.usage_bytes = Some(k.usage_bytes);
    m.peak_bytes = Some(k.peak_bytes);
    // v1's `memory.failcnt` is this counter's; v2 has no such file (and recent kernels stop
    // counting it there).
    if m.failcnt.is_some() {
        m.failcnt = Some(k.failcnt);
    }
    m.source = crate::cgroup::MemorySource::Kernel;
    m.limit_depth = Some(k.depth);
    Some(m)
}

/// The cgroup's files are read after the kill, when the victim's anonymous memory is usually
/// freed already (its page cache and shmem stay charged to the cgroup). When the usage read
/// lacks at least half of the victim's anon RSS compared with the kernel's usage at the OOM,
/// that RSS (from the kernel's record of the victim) is added back to `anon`, and the
/// breakdown says so (`victim_anon_added`).
pub fn add_freed_victim_anon(
    m: &mut MemoryStats,
    read_usage: u64,
    usage_at_oom: u64,
    victim_anon: u64,
) {
    let Some(b) = m.breakdown.as_mut() else {
        return;
    };
    // The usage file and `memory.stat` are read one after the other, maybe while the victim's
    // memory is being freed: the lower of the two readings is the one that saw it go.
    let stat_total = [b.anon, b.file, b.kernel]
        .into_iter()
        .flatten()
        .sum::<u64>();
    let seen = if stat_total > 0 {
        read_usage.min(stat_total)
    } else {
        read_usage
    };
    if b.stale || victim_anon == 0 || seen.saturating_add(victim_anon / 2) > usage_at_oom {
        return;
    }
    if let Some(anon) = b.anon {
        b.anon = Some(anon.saturating_add(victim_anon).min(usage_at_oom));
        b.victim_anon_added = true;
    }
}

/// What dominated the cgroup's memory: the largest of anon, page cache (without shmem),
/// shmem and kernel memory, when it is more than half of `usage`.
pub fn dominant(b: &MemoryBreakdown, usage: u64) -> Option<(&'static str, u64)> {
    let parts = [
        ("anon", b.anon),
        ("file", b.file_without_shmem()),
        ("shmem", b.shmem),
        ("kernel", b.kernel),
    ];
    parts
        .into_iter()
        .filter_map(|(n, v)| Some((n, v?)))
        .max_by_key(|&(_, v)| v)
        .filter(|&(_, v)| usage > 0 && v.saturating_mul(2) > usage)
}

/// A container-limit OOM leaves the cgroup at (or within 5 % of) its limit, its peak reaching
/// it, or its victim alone holding 90 % of it (the figures may be from the last sample before
/// the kill when the cgroup was gone by the time the record was read). With no limit, or far
/// below it, the whole host was short of memory. With nothing read at all: unknown, never a
/// guess.
pub fn oom_scope(m: Option<&MemoryStats>, victim_rss_bytes: u64) -> OomScope {
    let Some(m) = m else {
        return OomScope::Unknown;
    };
    let Some(limit) = m.limit_bytes else {
        // `max` (no limit) reads as None too, but then usage was read.
        return if m.usage_bytes.is_some() {
            OomScope::Host
        } else {
            OomScope::Unknown
        };
    };
    let near = |v: u64| v.saturating_mul(100) >= limit.saturating_mul(95);
    if m.peak_bytes.is_some_and(near)
        || m.usage_bytes.is_some_and(near)
        || (!m.stale && m.failcnt.is_some_and(|f| f > 0))
        || victim_rss_bytes.saturating_mul(100) >= limit.saturating_mul(90)
    {
        OomScope::ContainerLimit
    } else if m.stale {
        // A sample from before the kill, far from the limit: it cannot tell.
        OomScope::Unknown
    } else {
        OomScope::Host
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::{container::Runtime, event::Exec};

    fn container(name: &str, init: u32) -> Arc<Container> {
        Arc::new(Container {
            init_pid: Some(init),
            cgroup_path: Some(format!("/docker/{name}")),
            ..Container::named(&format!("{name}-id"), name, Runtime::Docker)
        })
    }

    fn task(pid: u32, comm: &str, cg: u64) -> Task {
        Task {
            tid: pid,
            pid,
            ppid: Some(1),
            uid: 0,
            cgroup_id: cg,
            comm: comm.into(),
        }
    }

    fn ev(t: Task, boot_ns: u64, body: Body) -> Event {
        Event {
            kind: 0,
            boot_ns,
            task: t,
            body,
        }
    }

    fn signal(target: u32, comm: &str, sig: i32, code: i32) -> Body {
        Body::Signal(Signal {
            sig,
            target_tgid: Some(target),
            target_cgroup_id: Some(500),
            errno: 0,
            code,
            target_pid: target,
            target_comm: comm.into(),
            group: true,
            result: 0,
            fold: crate::event::Fold::ONE,
        })
    }

    fn exec(old_pid: u32, filename: &str) -> Body {
        Body::Exec(Exec {
            old_pid,
            filename: filename.into(),
        })
    }

    fn exit(status: u32) -> Body {
        Body::Exit(Exit {
            status: Some(status),
            group_dead: Some(true),
        })
    }

    struct FixedMemory(Option<MemoryStats>);
    impl MemoryReader for FixedMemory {
        fn read(&self, _: &Container) -> Option<MemoryStats> {
            self.0.clone()
        }
    }

    fn in_c(c: &Arc<Container>) -> Attribution {
        Attribution::Container(Arc::clone(c))
    }

    #[test]
    fn kill_of_a_container_init_from_the_host() {
        let web = container("web", 1000);
        let mut cor = Correlator::new(FixedMemory(None));
        let sent = cor.observe(
            &ev(task(812, "bash", 1), 10, signal(1000, "nginx", 9, 0)),
            &Attrs {
                process: Attribution::Host,
                other: Some(in_c(&web)),
            },
        );
        assert!(sent.is_empty(), "waits for the exit");
        let out = cor.observe(
            &ev(task(1000, "nginx", 500), 20, exit(9)),
            &Attrs {
                process: in_c(&web),
                other: None,
            },
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].explain(),
            "nginx (pid 1000 in web, docker) killed by SIGKILL from bash (pid 812, host); web exited with 137 (SIGKILL)"
        );
        let Incident::ContainerStop {
            reason: StopReason::Killed { signo: 9, by },
            exit,
            ..
        } = &out[1]
        else {
            panic!("{out:?}")
        };
        assert_eq!((by.pid, exit.code), (812, Some(137)));
        assert_eq!(
            out[1].explain(),
            "container web (docker) stopped with 137 (SIGKILL): SIGKILL from bash (pid 812, host)"
        );
    }

    #[test]
    fn kill_without_exit_is_reported_after_the_wait() {
        let mut cor = Correlator::new(FixedMemory(None));
        let api = container("api", 7);
        cor.observe(
            &ev(task(900, "sh", 600), 0, signal(77, "python", 15, 0)),
            &Attrs {
                process: in_c(&api),
                other: Some(in_c(&api)),
            },
        );
        assert!(cor.tick(EXIT_WAIT_NS - 1).is_empty());
        let out = cor.tick(EXIT_WAIT_NS);
        assert_eq!(
            out[0].explain(),
            "python (pid 77 in api, docker) killed by SIGTERM from sh (pid 900 in api, docker); it had not exited yet"
        );
    }

    #[test]
    fn ignored_non_terminating_and_self_signals_are_not_kills() {
        let mut cor = Correlator::new(FixedMemory(None));
        let a = Attrs {
            process: Attribution::Host,
            other: Some(Attribution::Host),
        };
        cor.observe(&ev(task(1, "a", 1), 0, signal(5, "b", 10, 0)), &a); // SIGUSR1
        cor.observe(&ev(task(5, "b", 1), 0, signal(5, "b", 6, -6)), &a); // abort()
        let mut ignored = signal(6, "c", 15, 0);
        if let Body::Signal(s) = &mut ignored {
            s.result = 1;
        }
        cor.observe(&ev(task(1, "a", 1), 0, ignored), &a);
        assert!(cor.flush().is_empty());
    }

    fn oom_body(victim: u32) -> Body {
        Body::OomVictim(Box::new(OomVictim {
            victim_pid: victim,
            victim_comm: "tail".into(),
            victim_uid: 0,
            total_vm_kb: 110_000,
            anon_rss_kb: 100_000,
            file_rss_kb: 400,
            shmem_rss_kb: 0,
            pgtables_kb: 200,
            oom_score_adj: 0,
            victim_tgid: Some(victim),
            victim_cgroup_id: Some(500),
            victim_memcg: None,
            oom_context: None,
        }))
    }

    /// memory.oom.group: the OOM killer kills the chosen task, then every other task of the
    /// group in the same call. One incident lists them all; the init's death is an OOM stop.
    #[test]
    fn an_oom_group_kill_is_one_incident_listing_every_victim() {
        let c = container("grouped", 4240);
        let mut cor = Correlator::new(FixedMemory(None));
        let attrs = Attrs {
            process: in_c(&c),
            other: Some(in_c(&c)),
        };
        let trigger = || task(4242, "tail", 500);
        let mut init_body = oom_body(4240);
        if let Body::OomVictim(v) = &mut init_body {
            v.victim_comm = "sh".into();
            v.anon_rss_kb = 300;
            v.file_rss_kb = 100;
        }
        for (at, victim) in [(1_000, 4242), (2_000, 4240)] {
            cor.observe(
                &ev(trigger(), at, signal(victim, "x", 9, SI_KERNEL)),
                &attrs,
            );
        }
        assert!(cor
            .observe(&ev(trigger(), 1_500, oom_body(4242)), &attrs)
            .is_empty());
        assert!(cor
            .observe(&ev(trigger(), 2_500, init_body), &attrs)
            .is_empty());
        // A later OOM by the same task is another one.
        let later = 2_500 + OOM_GROUP_WINDOW_NS + 1;
        assert!(cor
            .observe(&ev(trigger(), later, oom_body(4250)), &attrs)
            .is_empty());
        let own = Attrs {
            process: in_c(&c),
            other: None,
        };
        let out = cor.observe(&ev(task(4242, "tail", 500), 3_000, exit(9)), &own);
        assert_eq!(out.len(), 1, "one incident for the group: {out:?}");
        let Incident::Oom(o) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(o.group.len(), 1);
        assert_eq!((o.group[0].party.pid, o.group[0].rss_kb), (4240, 400));
        assert!(
            out[0].explain().contains(
                "; with it, as its cgroup's memory.oom.group asks, the OOM killer killed 1 more: sh (pid 4240)"
            ),
            "{}",
            out[0].explain()
        );
        // The init's exit: the container stopped for the OOM kill, and no kill incident.
        let out = cor.observe(&ev(task(4240, "sh", 500), 4_000, exit(9)), &own);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            matches!(
                &out[0],
                Incident::ContainerStop {
                    reason: StopReason::OomKilled,
                    ..
                }
            ),
            "{out:?}"
        );
        let rest = cor.flush();
        assert_eq!(rest.len(), 1, "the later OOM is its own incident: {rest:?}");
    }

    #[test]
    fn container_limit_oom_of_init_collapses_the_kernels_sigkill() {
        let c = container("lowmem100", 4242);
        let mem = MemoryStats {
            limit_bytes: Some(100 << 20),
            usage_bytes: Some(100 << 20),
            peak_bytes: Some(100 << 20),
            failcnt: Some(900),
            ..MemoryStats::default()
        };
        let mut cor = Correlator::new(FixedMemory(Some(mem)));
        let attrs = Attrs {
            process: in_c(&c),
            other: Some(in_c(&c)),
        };
        cor.observe(
            &ev(
                task(4242, "tail", 500),
                1,
                signal(4242, "tail", 9, SI_KERNEL),
            ),
            &attrs,
        );
        cor.observe(&ev(task(4242, "tail", 500), 2, oom_body(4242)), &attrs);
        cor.observe(&ev(task(4242, "tail", 500), 3, oom_body(4242)), &attrs); // duplicate
        let out = cor.observe(
            &ev(task(4242, "tail", 500), 4, exit(9)),
            &Attrs {
                process: in_c(&c),
                other: None,
            },
        );
        assert_eq!(out.len(), 2, "{out:?}");
        let Incident::Oom(o) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(o.scope, OomScope::ContainerLimit);
        assert_eq!(
            out[0].explain(),
            "tail (pid 4242 in lowmem100, docker) was OOM-killed: lowmem100 hit its memory limit of 100 MiB (usage 100 MiB, peak 100 MiB); victim RSS 98 MiB; triggered by its own allocation; lowmem100 stopped"
        );
        assert!(matches!(
            &out[1],
            Incident::ContainerStop {
                reason: StopReason::OomKilled,
                ..
            }
        ));
        assert!(
            cor.flush().is_empty(),
            "no kill incident for the OOM killer's SIGKILL"
        );
    }

    fn kernel_memcg(depth: u32) -> crate::event::MemcgAtOom {
        crate::event::MemcgAtOom {
            depth,
            usage_bytes: 100 << 20,
            limit_bytes: Some(100 << 20),
            peak_bytes: 100 << 20,
            failcnt: 42,
        }
    }

    #[test]
    fn kernel_figures_replace_the_files_usage_limit_and_peak() {
        use crate::cgroup::MemorySource;
        let k = kernel_memcg(0);
        // No kernel figures: the files as read.
        let files = MemoryStats {
            limit_bytes: Some(100 << 20),
            usage_bytes: Some(1 << 20),
            failcnt: Some(5),
            oom_kills: Some(1),
            ..MemoryStats::default()
        };
        assert_eq!(
            with_kernel_figures(Some(files.clone()), None),
            Some(files.clone())
        );
        assert_eq!(with_kernel_figures(None, None), None);
        // Read now (v1: failcnt is the same counter): the files' counters stay.
        let m = with_kernel_figures(Some(files.clone()), Some(&k)).unwrap();
        assert_eq!(m.usage_bytes, Some(100 << 20));
        assert_eq!(m.peak_bytes, Some(100 << 20));
        assert_eq!(m.limit_bytes, Some(100 << 20));
        assert_eq!(m.failcnt, Some(42));
        assert_eq!(m.oom_kills, Some(1));
        assert_eq!(
            (m.source, m.limit_depth, m.stale),
            (MemorySource::Kernel, Some(0), false)
        );
        // v2 files: no failcnt to fill.
        let v2 = MemoryStats {
            failcnt: None,
            ..files.clone()
        };
        assert_eq!(
            with_kernel_figures(Some(v2), Some(&k)).unwrap().failcnt,
            None
        );
        // An older sample: none of its counters describe the kill.
        let stale = MemoryStats {
            stale: true,
            ..files
        };
        let m = with_kernel_figures(Some(stale), Some(&k)).unwrap();
        assert_eq!((m.oom_kills, m.failcnt, m.stale), (None, None, false));
        assert_eq!(m.usage_bytes, Some(100 << 20));
        // Nothing read from files at all (a host process, or no cgroup path).
        let m = with_kernel_figures(None, Some(&k)).unwrap();
        assert_eq!(
            (m.limit_bytes, m.source),
            (Some(100 << 20), MemorySource::Kernel)
        );
    }

    /// The files of the cgroup whose limit bounds the container, its own OOM kills, and the
    /// last of them once the cgroup is gone.
    #[test]
    fn cgroup_memory_reads_the_bounding_limit_and_keeps_the_last() {
        let root = std::env::temp_dir().join(format!("ctrace-cgmem-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let parent = root.join("docker");
        let own = parent.join("podded");
        std::fs::create_dir_all(&own).unwrap();
        let write = |dir: &std::path::Path, f: &str, v: &str| {
            std::fs::write(dir.join(f), v).unwrap();
        };
        write(&parent, "memory.limit_in_bytes", "50331648\n");
        write(&parent, "memory.usage_in_bytes", "50331648\n");
        write(&parent, "memory.oom_control", "oom_kill 0\n");
        write(
            &parent,
            "memory.stat",
            "total_rss 50000000\ntotal_shmem 0\n",
        );
        write(&own, "memory.limit_in_bytes", "104857600\n");
        write(&own, "memory.usage_in_bytes", "50000000\n");
        write(&own, "memory.oom_control", "oom_kill 1\n");
        let mem = CgroupMemory::new(Mounts {
            v2: None,
            v1: [("memory".to_owned(), root.clone())].into(),
        });
        let c = container("podded", 1);
        let m = mem.read(&c).unwrap();
        assert_eq!(
            (
                m.limit_bytes,
                m.usage_bytes,
                m.limit_depth,
                m.oom_kills,
                m.stale
            ),
            (Some(48 << 20), Some(48 << 20), Some(1), Some(1), false)
        );
        // The breakdown is the bounding cgroup's, as its usage.
        let b = m.breakdown.unwrap();
        assert_eq!((b.anon, b.shmem, b.stale), (Some(50000000), Some(0), false));
        std::fs::remove_dir_all(&root).unwrap();
        let last = mem.read(&c).unwrap();
        assert!(last.stale);
        assert!(
            last.breakdown.unwrap().stale,
            "the last sample's breakdown is stale too"
        );
        assert_eq!(
            (last.limit_bytes, last.limit_depth),
            (Some(48 << 20), Some(1))
        );
    }

    fn oom_with(files: Option<MemoryStats>, kernel: Option<crate::event::MemcgAtOom>) -> String {
        // small: the figures decide the scope, not the victim
        oom_incident(files, kernel, 1_000).explain()
    }

    fn oom_incident(
        files: Option<MemoryStats>,
        kernel: Option<crate::event::MemcgAtOom>,
        anon_rss_kb: u64,
    ) -> Incident {
        let c = container("lowmem100", 4242);
        let mut cor = Correlator::new(FixedMemory(files));
        let attrs = Attrs {
            process: in_c(&c),
            other: Some(in_c(&c)),
        };
        let mut body = oom_body(4242);
        if let Body::OomVictim(o) = &mut body {
            o.victim_memcg = kernel;
            o.anon_rss_kb = anon_rss_kb;
        }
        cor.observe(&ev(task(4242, "tail", 500), 2, body), &attrs);
        let mut out = cor.flush();
        assert_eq!(out.len(), 1, "{out:?}");
        out.remove(0)
    }

    /// The OOM killer's context decides the scope where it was read, whatever the figures
    /// suggest; without it the figures do.
    #[test]
    fn the_oom_killers_context_is_the_source_of_the_scope() {
        use crate::event::{OomContext, OomMemcg, OomTrigger};
        let scope_with = |files: MemoryStats, ctx: Option<OomContext>| {
            let c = container("lowmem100", 4242);
            let mut cor = Correlator::new(FixedMemory(Some(files)));
            let attrs = Attrs {
                process: in_c(&c),
                other: Some(in_c(&c)),
            };
            let mut body = oom_body(4242);
            if let Body::OomVictim(o) = &mut body {
                o.oom_context = ctx;
                // Small: the figures, not the victim's size, decide an inferred scope.
                o.anon_rss_kb = 1_000;
            }
            cor.observe(&ev(task(4242, "tail", 500), 2, body), &attrs);
            let out = cor.flush();
            let [Incident::Oom(o)] = &out[..] else {
                panic!("{out:?}")
            };
            o.scope
        };
        // Far below the limit: inferred as the host's shortage...
        let far = MemoryStats {
            limit_bytes: Some(100 << 20),
            usage_bytes: Some(10 << 20),
            peak_bytes: Some(20 << 20),
            ..MemoryStats::default()
        };
        assert_eq!(scope_with(far.clone(), None), OomScope::Host);
        // ...but the kernel said the cgroup's limit was hit (its usage fell since).
        let memcg = OomContext {
            memcg: Some(OomMemcg {
                cgroup_id: Some(4242),
                depth: Some(0),
            }),
            points: Some(25_000),
            oom_score_adj: Some(0),
            trigger: Some(OomTrigger::Memcg),
            order: Some(0),
        };
        assert_eq!(scope_with(far, Some(memcg)), OomScope::ContainerLimit);
        // At the limit: inferred as the container's, but the kernel said the host ran out.
        let full = MemoryStats {
            limit_bytes: Some(100 << 20),
            usage_bytes: Some(100 << 20),
            ..MemoryStats::default()
        };
        assert_eq!(scope_with(full.clone(), None), OomScope::ContainerLimit);
        let host = OomContext {
            memcg: None,
            trigger: Some(OomTrigger::Global),
            ..memcg
        };
        assert_eq!(scope_with(full, Some(host)), OomScope::Host);
    }

    fn breakdown(anon: u64, file: u64, shmem: u64, kernel: u64) -> MemoryBreakdown {
        MemoryBreakdown {
            anon: Some(anon),
            file: Some(file),
            shmem: Some(shmem),
            kernel: Some(kernel),
            ..MemoryBreakdown::default()
        }
    }

    fn files_with(usage: u64, b: MemoryBreakdown) -> MemoryStats {
        MemoryStats {
            limit_bytes: Some(100 << 20),
            usage_bytes: Some(usage),
            peak_bytes: Some(100 << 20),
            breakdown: Some(b.into()),
            ..MemoryStats::default()
        }
    }

    fn breakdown_of(i: &Incident) -> MemoryBreakdown {
        let Incident::Oom(o) = i else { panic!("{i:?}") };
        *o.memory.as_ref().unwrap().breakdown.clone().unwrap()
    }

    #[test]
    fn the_explanation_names_what_the_memory_was_made_of() {
        // tmpfs filled the cgroup: shmem, counted in `file` too, is named once.
        let shm = files_with(100 << 20, breakdown(1 << 20, 98 << 20, 97 << 20, 1 << 20));
        assert_eq!(
            oom_with(Some(shm.clone()), None),
            "tail (pid 4242 in lowmem100, docker) was OOM-killed: lowmem100 hit its memory limit of 100 MiB (usage 100 MiB, peak 100 MiB); shmem 97 MiB of 100 MiB (tmpfs, /dev/shm); victim RSS 1.4 MiB; triggered by its own allocation"
        );
        // Page cache without the shmem it includes.
        let cache = files_with(100 << 20, breakdown(1 << 20, 90 << 20, 10 << 20, 1 << 20));
        assert!(
            oom_with(Some(cache), None).contains("; file 80 MiB of 100 MiB (page cache);"),
            "file minus shmem"
        );
        let kernel = files_with(100 << 20, breakdown(1 << 20, 1 << 20, 0, 60 << 20));
        assert!(oom_with(Some(kernel), None).contains("; kernel 60 MiB of 100 MiB;"));
        // Nothing above half of the usage: nothing named.
        let mixed = files_with(100 << 20, breakdown(40 << 20, 40 << 20, 0, 20 << 20));
        assert_eq!(
            oom_with(Some(mixed), None),
            "tail (pid 4242 in lowmem100, docker) was OOM-killed: lowmem100 hit its memory limit of 100 MiB (usage 100 MiB, peak 100 MiB); victim RSS 1.4 MiB; triggered by its own allocation"
        );
        // Unknown components are not zeros, and do not make anything dominate.
        let unknown = files_with(
            100 << 20,
            MemoryBreakdown {
                file: Some(60 << 20),
                ..MemoryBreakdown::default()
            },
        );
        assert!(oom_with(Some(unknown), None).contains("; file 60 MiB of 100 MiB (page cache);"));
        let none = files_with(100 << 20, MemoryBreakdown::default());
        assert!(!oom_with(Some(none), None).contains("MiB of 100 MiB"));
        // With the kernel's figures, of its usage at the OOM; the files' breakdown stays.
        let k = oom_incident(Some(shm), Some(kernel_memcg(0)), 1_000);
        assert!(
            k.explain()
                .contains("; shmem 97 MiB of 100 MiB (tmpfs, /dev/shm);"),
            "{}",
            k.explain()
        );
        assert!(!breakdown_of(&k).stale);
    }

    #[test]
    fn a_breakdown_read_after_the_kill_gets_the_victims_freed_anon_back() {
        // The files were read once the victim's 90 MiB were freed: the kernel's usage at the
        // OOM was 100 MiB, the files say 10.
        let after = files_with(10 << 20, breakdown(2 << 20, 6 << 20, 0, 2 << 20));
        let i = oom_incident(Some(after.clone()), Some(kernel_memcg(0)), 90 << 10);
        let b = breakdown_of(&i);
        assert_eq!((b.anon, b.victim_anon_added), (Some(92 << 20), true));
        assert_eq!((b.file, b.kernel), (Some(6 << 20), Some(2 << 20)));
        assert!(
            i.explain().contains(
                "(usage 100 MiB, peak 100 MiB); anon 92 MiB of 100 MiB; victim RSS 90.4 MiB;"
            ),
            "{}",
            i.explain()
        );
        // Read before it was freed: as read.
        let before = files_with(100 << 20, breakdown(92 << 20, 6 << 20, 0, 2 << 20));
        let b = breakdown_of(&oom_incident(Some(before), Some(kernel_memcg(0)), 90 << 10));
        assert_eq!((b.anon, b.victim_anon_added), (Some(92 << 20), false));
        // Without the kernel's usage at the OOM nothing tells when the files were read.
        let b = breakdown_of(&oom_incident(Some(after), None, 90 << 10));
        assert_eq!((b.anon, b.victim_anon_added), (Some(2 << 20), false));
        // Read while it was being freed: the usage file (read first) still 60 MiB, memory.stat
        // (read next) already down to 2 MiB of anon: the victim's anon is added back.
        let during = files_with(60 << 20, breakdown(2 << 20, 6 << 20, 0, 2 << 20));
        let b = breakdown_of(&oom_incident(Some(during), Some(kernel_memcg(0)), 90 << 10));
        assert_eq!((b.anon, b.victim_anon_added), (Some(92 << 20), true));
    }

    #[test]
    fn a_breakdown_from_the_last_sample_is_stale() {
        let mut last = files_with(100 << 20, breakdown(95 << 20, 3 << 20, 0, 2 << 20));
        last.stale = true;
        last.breakdown.as_mut().unwrap().stale = true;
        let i = oom_incident(Some(last.clone()), Some(kernel_memcg(0)), 90 << 10);
        let b = breakdown_of(&i);
        // Kept (the kernel gives none), still stale, and never topped up.
        assert_eq!(
            (b.anon, b.stale, b.victim_anon_added),
            (Some(95 << 20), true, false)
        );
        assert!(
            i.explain().contains(
                "(usage 100 MiB, peak 100 MiB); anon 95 MiB of 100 MiB in the last sample before the kill;"
            ),
            "{}",
            i.explain()
        );
        let i = oom_incident(Some(last), None, 90 << 10);
        assert!(i
            .explain()
            .contains("; anon 95 MiB of 100 MiB in the last sample before the kill;"));
    }

    /// The cgroup was gone before its files were read (a loaded machine): the last sample is
    /// from before the allocation. With the kernel's figures at the OOM the story is whole;
    /// without them it says the figures are an older sample and does not guess the scope.
    #[test]
    fn oom_figures_at_the_kill_come_from_the_kernel_when_the_files_are_late() {
        let stale = MemoryStats {
            limit_bytes: Some(100 << 20),
            usage_bytes: Some(2 << 20),
            peak_bytes: Some(3 << 20),
            stale: true,
            ..MemoryStats::default()
        };
        assert_eq!(
            oom_with(Some(stale.clone()), Some(kernel_memcg(0))),
            "tail (pid 4242 in lowmem100, docker) was OOM-killed: lowmem100 hit its memory limit of 100 MiB (usage 100 MiB, peak 100 MiB); victim RSS 1.4 MiB; triggered by its own allocation"
        );
        assert_eq!(
            oom_with(Some(stale), None),
            "tail (pid 4242 in lowmem100, docker) was OOM-killed: its cgroup was gone before its figures at the kill could be read (last sample before the kill: usage 2 MiB, peak 3 MiB); victim RSS 1.4 MiB; triggered by its own allocation"
        );
        // The limit that was hit sits above the victim's own cgroup (a pod's, or a nested
        // container's parent).
        assert_eq!(
            oom_with(None, Some(kernel_memcg(1))),
            "tail (pid 4242 in lowmem100, docker) was OOM-killed: lowmem100 hit a memory limit of 100 MiB set one cgroup level above its own (usage 100 MiB, peak 100 MiB); victim RSS 1.4 MiB; triggered by its own allocation"
        );
    }

    #[test]
    fn oom_of_a_child_keeps_the_container_running() {
        let c = container("app", 10);
        let mut cor = Correlator::new(FixedMemory(Some(MemoryStats {
            limit_bytes: Some(64 << 20),
            peak_bytes: Some(64 << 20),
            ..MemoryStats::default()
        })));
        let attrs = Attrs {
            process: in_c(&c),
            other: Some(in_c(&c)),
        };
        cor.observe(&ev(task(11, "sh", 500), 2, oom_body(12)), &attrs);
        let out = cor.observe(
            &ev(task(12, "tail", 500), 4, exit(9)),
            &Attrs {
                process: in_c(&c),
                other: None,
            },
        );
        assert_eq!(out.len(), 1, "no container_stop: {out:?}");
        let Incident::Oom(o) = &out[0] else { panic!() };
        assert!(!o.container_stopped);
        assert!(o.explain_trigger_is_other());
    }

    impl OomIncident {
        fn explain_trigger_is_other(&self) -> bool {
            Incident::Oom(Box::new(self.clone()))
                .explain()
                .contains("triggered by sh (pid 11 in app, docker)")
        }
    }

    #[test]
    fn oom_scope_rules() {
        let m = |limit, usage, peak| MemoryStats {
            limit_bytes: limit,
            usage_bytes: usage,
            peak_bytes: peak,
            ..MemoryStats::default()
        };
        assert_eq!(oom_scope(None, 0), OomScope::Unknown);
        assert_eq!(oom_scope(Some(&m(None, None, None)), 0), OomScope::Unknown);
        assert_eq!(oom_scope(Some(&m(None, Some(5), None)), 0), OomScope::Host);
        // Only the limit survived (stale sample), but the victim alone held the limit.
        let mut stale = m(Some(100), Some(3), None);
        stale.stale = true;
        assert_eq!(oom_scope(Some(&stale), 95), OomScope::ContainerLimit);
        assert_eq!(
            oom_scope(Some(&stale), 10),
            OomScope::Unknown,
            "never a guess"
        );
        assert_eq!(
            oom_scope(Some(&m(Some(100), Some(96), None)), 0),
            OomScope::ContainerLimit
        );
        assert_eq!(
            oom_scope(Some(&m(Some(100), Some(10), Some(99))), 0),
            OomScope::ContainerLimit
        );
        assert_eq!(
            oom_scope(Some(&m(Some(100), Some(10), Some(20))), 0),
            OomScope::Host
        );
    }

    #[test]
    fn container_start_is_the_inits_exec() {
        let c = container("web", 1000);
        let mut cor = Correlator::new(FixedMemory(None));
        let sh = exec(1000, "/bin/sh");
        let out = cor.observe(
            &ev(task(1000, "sh", 500), 1, sh.clone()),
            &Attrs {
                process: in_c(&c),
                other: None,
            },
        );
        assert_eq!(
            out[0].explain(),
            "container web (docker) started: /bin/sh (pid 1000)"
        );
        let out = cor.observe(
            &ev(task(1001, "sh", 500), 1, sh),
            &Attrs {
                process: in_c(&c),
                other: None,
            },
        );
        assert!(out.is_empty(), "not the init");
    }

    #[test]
    fn a_new_containers_first_exec_is_its_start_even_before_its_state_is_read() {
        let mut pending = (*container("web", 0)).clone();
        pending.init_pid = None;
        let pending = Arc::new(pending);
        let mut cor = Correlator::new(FixedMemory(None));
        let a = Attrs {
            process: in_c(&pending),
            other: None,
        };
        // runc's bootstrap execs in the container's cgroup are not its start.
        assert!(cor
            .observe(&ev(task(990, "runc", 500), 0, exec(1000, "/dev/fd/6")), &a)
            .is_empty());
        assert!(cor
            .observe(
                &ev(task(991, "exe", 500), 0, exec(1000, "/proc/self/exe")),
                &a
            )
            .is_empty());
        assert!(
            cor.observe(&ev(task(990, "runc", 500), 0, exit(0)), &a)
                .is_empty(),
            "not a stop"
        );
        let out = cor.observe(&ev(task(1000, "sh", 500), 1, exec(1000, "/bin/sh")), &a);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].explain(),
            "container web (docker) started: /bin/sh (pid 1000)"
        );
        // Exec again in the same pid (busybox applets), or another process: no second start.
        assert!(cor
            .observe(
                &ev(task(1000, "sh", 500), 2, exec(1000, "/proc/self/exe")),
                &a
            )
            .is_empty());
        assert!(cor
            .observe(&ev(task(1001, "true", 500), 3, exec(1000, "/bin/true")), &a)
            .is_empty());
        // Its exit is the container's stop, though the state never named the init.
        let out = cor.observe(&ev(task(1000, "sh", 500), 4, exit(5 << 8)), &a);
        assert_eq!(
            out[0].explain(),
            "container web (docker) stopped with 5: its init exited"
        );
        let out = cor.observe(&ev(task(1001, "true", 500), 5, exit(0)), &a);
        assert!(out.is_empty(), "not the init");
    }

    #[test]
    fn a_restarted_containers_new_init_starts_it_before_its_state_is_read_again() {
        // The state still names the init that died (pid 50): Docker restarted the container
        // and ctrace has not read its new state yet.
        let c = container("web", 50);
        let mut cor = Correlator::new(FixedMemory(None));
        let a = Attrs {
            process: in_c(&c),
            other: None,
        };
        // Before any init exit, another process's exec is not a start.
        assert!(cor
            .observe(&ev(task(60, "true", 500), 0, exec(60, "/bin/true")), &a)
            .is_empty());
        let out = cor.observe(&ev(task(50, "tail", 500), 1, exit(137)), &a);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(matches!(out[0], Incident::ContainerStop { .. }));
        // The runtime's own execs are not the new init's.
        assert!(cor
            .observe(
                &ev(task(70, "runc", 500), 2, exec(70, "/proc/self/exe")),
                &a
            )
            .is_empty());
        let out = cor.observe(&ev(task(71, "tail", 500), 3, exec(71, "/bin/tail")), &a);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            out[0].explain(),
            "container web (docker) started: /bin/tail (pid 71)"
        );
        // One start, and the new init's exit is the next stop.
        assert!(cor
            .observe(&ev(task(72, "true", 500), 4, exec(72, "/bin/true")), &a)
            .is_empty());
        let out = cor.observe(&ev(task(71, "tail", 500), 5, exit(137)), &a);
        assert!(
            matches!(out.as_slice(), [Incident::ContainerStop { .. }]),
            "{out:?}"
        );
        // Once the state names the new init, it is the init as before.
        let fresh = container("web", 80);
        let a = Attrs {
            process: in_c(&fresh),
            other: None,
        };
        let out = cor.observe(&ev(task(80, "tail", 500), 6, exec(80, "/bin/tail")), &a);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(cor
            .observe(&ev(task(81, "true", 500), 7, exec(81, "/bin/true")), &a)
            .is_empty());
    }

    #[test]
    fn plain_exit_of_init_stops_the_container() {
        let c = container("job", 50);
        let mut cor = Correlator::new(FixedMemory(None));
        let out = cor.observe(
            &ev(task(50, "sh", 500), 1, exit(3 << 8)),
            &Attrs {
                process: in_c(&c),
                other: None,
            },
        );
        assert_eq!(
            out[0].explain(),
            "container job (docker) stopped with 3: its init exited"
        );
    }

    #[test]
    fn byte_formatting() {
        assert_eq!(bytes(100 << 20), "100 MiB");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
