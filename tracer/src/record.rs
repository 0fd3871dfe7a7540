//! The NDJSON records (`schema: ctrace.v1`) as types: one per record type, with the parts
//! they share. [`crate::sink::json`] builds them and [`crate::sink::json::line`] writes them;
//! the journal stores those lines and `ctrace postmortem`, `history` and `inspect` read them
//! back as these types. `docs/events.md` describes them, `docs/events.schema.json` is their
//! JSON Schema; a unit test reads both back into [`Record`].
//!
//! Field names, `null` and absent fields are those of the wire: an `Option` is written as
//! `null` unless it is marked to be skipped when `None` (`exe`, `pid` of `cgroup_attach`, a
//! container's `init_pid`, `restart_count` and `compose`). Unknown fields are ignored when
//! reading (fields may be added within `ctrace.v1`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    cgroup::MemoryStats,
    container::{short_id, PodInfo, Runtime},
    explain,
    resolve::{self, Attribution},
};

/// The `schema` of every record.
pub const SCHEMA: &str = "ctrace.v1";

/// One NDJSON record, tagged by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Exec(ExecRecord),
    Exit(ExitRecord),
    Fork(ForkRecord),
    Signal(SignalRecord),
    OomVictim(OomVictimRecord),
    Capability(CapabilityRecord),
    CgroupMkdir(CgroupRecord),
    CgroupRmdir(CgroupRecord),
    CgroupAttach(CgroupRecord),
    Kill(KillRecord),
    OomKill(OomKillRecord),
    ContainerStart(ContainerStartRecord),
    ContainerStop(ContainerStopRecord),
    RestartLoop(RestartLoopRecord),
    ContainerUpdate(ContainerUpdateRecord),
    CpuThrottle(CpuThrottleRecord),
    Lost(LostRecord),
    Stats(StatsRecord),
}

impl Record {
    /// Every `type`, in the order of `docs/events.schema.json`.
    pub const TYPES: [&'static str; 18] = [
        "exec",
        "exit",
        "fork",
        "signal",
        "oom_victim",
        "capability",
        "cgroup_mkdir",
        "cgroup_rmdir",
        "cgroup_attach",
        "kill",
        "oom_kill",
        "container_start",
        "container_stop",
        "restart_loop",
        "container_update",
        "cpu_throttle",
        "lost",
        "stats",
    ];

    /// The `type` of this record.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Exec(_) => "exec",
            Self::Exit(_) => "exit",
            Self::Fork(_) => "fork",
            Self::Signal(_) => "signal",
            Self::OomVictim(_) => "oom_victim",
            Self::Capability(_) => "capability",
            Self::CgroupMkdir(_) => "cgroup_mkdir",
            Self::CgroupRmdir(_) => "cgroup_rmdir",
            Self::CgroupAttach(_) => "cgroup_attach",
            Self::Kill(_) => "kill",
            Self::OomKill(_) => "oom_kill",
            Self::ContainerStart(_) => "container_start",
            Self::ContainerStop(_) => "container_stop",
            Self::RestartLoop(_) => "restart_loop",
            Self::ContainerUpdate(_) => "container_update",
            Self::CpuThrottle(_) => "cpu_throttle",
            Self::Lost(_) => "lost",
            Self::Stats(_) => "stats",
        }
    }

    /// The fields every record has.
    pub fn envelope(&self) -> &Envelope {
        match self {
            Self::Exec(r) => &r.event.envelope,
            Self::Exit(r) => &r.event.envelope,
            Self::Fork(r) => &r.event.envelope,
            Self::Signal(r) => &r.event.envelope,
            Self::OomVictim(r) => &r.event.envelope,
            Self::Capability(r) => &r.event.envelope,
            Self::CgroupMkdir(r) | Self::CgroupRmdir(r) | Self::CgroupAttach(r) => {
                &r.event.envelope
            }
            Self::Kill(r) => &r.envelope,
            Self::OomKill(r) => &r.envelope,
            Self::ContainerStart(r) => &r.envelope,
            Self::ContainerStop(r) => &r.envelope,
            Self::RestartLoop(r) => &r.envelope,
            Self::ContainerUpdate(r) => &r.envelope,
            Self::CpuThrottle(r) => &r.envelope,
            Self::Lost(r) => &r.envelope,
            Self::Stats(r) => &r.envelope,
        }
    }

    /// The sentence for people; `stats` has none.
    pub fn explanation(&self) -> Option<&str> {
        let e = match self {
            Self::Exec(r) => &r.event.explanation,
            Self::Exit(r) => &r.event.explanation,
            Self::Fork(r) => &r.event.explanation,
            Self::Signal(r) => &r.event.explanation,
            Self::OomVictim(r) => &r.event.explanation,
            Self::Capability(r) => &r.event.explanation,
            Self::CgroupMkdir(r) | Self::CgroupRmdir(r) | Self::CgroupAttach(r) => {
                &r.event.explanation
            }
            Self::Kill(r) => &r.explanation,
            Self::OomKill(r) => &r.explanation,
            Self::ContainerStart(r) => &r.explanation,
            Self::ContainerStop(r) => &r.explanation,
            Self::RestartLoop(r) => &r.explanation,
            Self::ContainerUpdate(r) => &r.explanation,
            Self::CpuThrottle(r) => &r.explanation,
            Self::Lost(r) => &r.explanation,
            Self::Stats(_) => return None,
        };
        Some(e)
    }

    /// The record's `container`: `None` for the records that have no such field (`lost`,
    /// `stats`), `Some(None)` for a host process.
    pub fn container(&self) -> Option<Option<&ContainerInfo>> {
        let c = match self {
            Self::Exec(r) => &r.event.container,
            Self::Exit(r) => &r.event.container,
            Self::Fork(r) => &r.event.container,
            Self::Signal(r) => &r.event.container,
            Self::OomVictim(r) => &r.event.container,
            Self::Capability(r) => &r.event.container,
            Self::CgroupMkdir(r) | Self::CgroupRmdir(r) | Self::CgroupAttach(r) => {
                &r.event.container
            }
            Self::Kill(r) => &r.container,
            Self::OomKill(r) => &r.container,
            Self::ContainerStart(r) => &r.container,
            Self::ContainerStop(r) => &r.container,
            Self::RestartLoop(r) => &r.container,
            Self::ContainerUpdate(r) => &r.container,
            Self::CpuThrottle(r) => &r.container,
            Self::Lost(_) | Self::Stats(_) => return None,
        };
        Some(c.as_ref())
    }
}

/// What listings need of any record: its type, its container and its explanation. It reads
/// records [`Record`] does not (a type of a newer ctrace, one missing a field), so a list of
/// stored records shows them all.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Head {
    #[serde(rename = "type")]
    pub kind: String,
    /// `None`: the record has no `container` (`lost`, `stats`); `Some(None)`: a host process.
    #[serde(default, deserialize_with = "present")]
    pub container: Option<Option<ContainerInfo>>,
    #[serde(default)]
    pub explanation: Option<String>,
}

/// A field that is there, `null` or not: `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// `web (docker)`, `host`, `unknown cgroup`, or `None` for a record about no container or
/// process. Not escaped for a terminal.
pub fn container_label(container: Option<Option<&ContainerInfo>>) -> Option<String> {
    Some(match container? {
        None => "host".to_owned(),
        Some(c) => match (c.display(), c.runtime()) {
            (Some(n), Some(rt)) => format!("{n} ({rt})"),
            (Some(n), None) => n.to_owned(),
            (None, _) => "unknown cgroup".to_owned(),
        },
    })
}

// ---------------------------------------------------------------------------------------
// Shared parts.

/// `schema`, `ts` and `host`: every record has them (`type` is [`Record`]'s tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`SCHEMA`].
    pub schema: String,
    /// RFC 3339 UTC with nanoseconds.
    pub ts: String,
    pub host: String,
}

/// A record's `container` object. A field holding one is an `Option<ContainerInfo>`: `null`
/// for a host process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// `null` for a cgroup ctrace could not place.
    pub id: Option<String>,
    /// `false`: a cgroup ctrace could not place (no details then).
    pub resolved: bool,
    /// What is known of a resolved container.
    #[serde(flatten)]
    pub details: Option<ContainerDetails>,
}

/// The metadata of a resolved container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerDetails {
    /// `null` until a runtime names it.
    pub name: Option<String>,
    pub runtime: Runtime,
    pub image: Option<String>,
    /// containerd namespace.
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub pod: Option<PodInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_pid: Option<u32>,
    /// Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u64>,
    /// Docker Compose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<Compose>,
}

/// A Docker Compose service's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compose {
    pub project: String,
    pub service: Option<String>,
}

impl ContainerInfo {
    /// The `container` of an attribution: `None` (`null`) for the host.
    pub fn of(a: &Attribution) -> Option<Self> {
        match a {
            Attribution::Host => None,
            Attribution::Container(c) => Some(Self::from(c.as_ref())),
            Attribution::Unknown => Some(Self {
                id: None,
                resolved: false,
                details: None,
            }),
        }
    }

    /// The name, else the short id; `None` for an unplaced cgroup.
    pub fn display(&self) -> Option<&str> {
        self.details
            .as_ref()
            .and_then(|d| d.name.as_deref())
            .or_else(|| self.id.as_deref().map(short_id))
    }

    pub fn runtime(&self) -> Option<Runtime> {
        self.details.as_ref().map(|d| d.runtime)
    }
}

impl From<&resolve::Container> for ContainerInfo {
    fn from(c: &resolve::Container) -> Self {
        Self {
            id: Some(c.id.clone()),
            resolved: true,
            details: Some(ContainerDetails {
                name: c.name.clone(),
                runtime: c.runtime,
                image: c.image.clone(),
                namespace: c.namespace.clone(),
                labels: c.labels.clone(),
                pod: c.pod.clone(),
                init_pid: c.init_pid,
                restart_count: c.restart_count,
                compose: c.compose.as_ref().map(|p| Compose {
                    project: p.project.clone(),
                    service: p.service.clone(),
                }),
            }),
        }
    }
}

/// Fields of every kernel event: the task that was current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBase {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub process: Process,
    /// Its cgroup v2 id.
    pub cgroup_id: u64,
    pub container: Option<ContainerInfo>,
    pub explanation: String,
}

/// `process`: the task that was current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub tid: u32,
    pub ppid: Option<u32>,
    pub uid: u32,
    pub comm: String,
    /// `exec` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
}

/// A process an incident is about: `sender`, `target`, `init`, `by`, `trigger`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub pid: u32,
    pub comm: String,
    pub cgroup_id: Option<u64>,
    pub container: Option<ContainerInfo>,
}

impl From<&explain::Party> for Party {
    fn from(p: &explain::Party) -> Self {
        Self {
            pid: p.pid,
            comm: p.comm.clone(),
            cgroup_id: p.cgroup_id,
            container: ContainerInfo::of(&p.attribution),
        }
    }
}

impl Party {
    /// `nginx (pid 1 in web, docker)`, `bash (pid 812, host)`, `x (pid 3, unknown cgroup)`,
    /// as [`explain::Party::describe`] says it. Not escaped for a terminal.
    pub fn describe(&self) -> String {
        let (comm, pid) = (&self.comm, self.pid);
        match &self.container {
            None => format!("{comm} (pid {pid}, host)"),
            Some(c) => match (c.display(), c.runtime()) {
                (Some(n), Some(rt)) => format!("{comm} (pid {pid} in {n}, {rt})"),
                _ => format!("{comm} (pid {pid}, unknown cgroup)"),
            },
        }
    }
}

/// How a process ended: `target_exit`, `victim_exit`, `exit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// As a shell shows it (128+N when killed by signal N).
    pub exit_code: Option<u32>,
    pub signal: Option<String>,
}

impl ExitStatus {
    /// `137 (SIGKILL)`, `0`; `None` without a code.
    pub fn describe(&self) -> Option<String> {
        let code = self.exit_code?;
        Some(match &self.signal {
            Some(s) => format!("{code} ({s})"),
            None => code.to_string(),
        })
    }
}

/// `origin` of a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// kill(2) and friends.
    User,
    Kernel,
}

// ---------------------------------------------------------------------------------------
// Kernel events.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRecord {
    #[serde(flatten)]
    pub event: EventBase,
    pub filename: String,
    pub old_pid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    #[serde(flatten)]
    pub event: EventBase,
    pub exit_code: Option<u32>,
    pub signal: Option<String>,
    pub core_dumped: bool,
    /// The wait(2) status.
    pub status_raw: Option<u32>,
    /// Left out where the kernel does not say (its `sched_process_exit` tracepoint has no
    /// `group_dead` field: 6.12 and older).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_dead: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkRecord {
    #[serde(flatten)]
    pub event: EventBase,
    pub child: Child,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub pid: u32,
    pub comm: String,
}

/// `process` is the sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRecord {
    #[serde(flatten)]
    pub event: EventBase,
    pub signal: String,
    pub signo: i32,
    /// si_code.
    pub code: i32,
    pub origin: Origin,
    pub target: SignalTarget,
    pub group: bool,
    /// `delivered`, `ignored`, `already_pending`, `overflow_fail`, `lose_info`, `unknown`.
    pub result: String,
    pub errno: i32,
    /// Identical signals this record stands for, when more than one: repeats that changed
    /// nothing (ignored, already pending), folded in the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// With `count`: nanoseconds from the run's previous record to the last of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalTarget {
    pub pid: u32,
    pub tgid: Option<u32>,
    pub comm: String,
    pub cgroup_id: Option<u64>,
    pub container: Option<ContainerInfo>,
}

/// The raw `oom:mark_victim`; `process` is the task whose allocation triggered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OomVictimRecord {
    #[serde(flatten)]
    pub event: EventBase,
    pub victim: OomVictimTask,
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub pgtables_kb: u64,
    pub oom_score_adj: i16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OomVictimTask {
    pub pid: u32,
    pub tgid: Option<u32>,
    pub comm: String,
    pub uid: u32,
    pub cgroup_id: Option<u64>,
    pub container: Option<ContainerInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityRecord {
    #[serde(flatten)]
    pub event: EventBase,
    /// `CAP_CHOWN`.
    pub capability: String,
    pub cap: u32,
    /// `allowed` or `denied`.
    pub verdict: String,
    pub ret: i32,
    /// Identical checks folded into this record.
    pub count: u64,
    /// Absent in records of a ctrace that did not fold checks over time yet.
    #[serde(default)]
    pub span_ns: u64,
}

/// `cgroup_mkdir`, `cgroup_rmdir`, `cgroup_attach`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgroupRecord {
    #[serde(flatten)]
    pub event: EventBase,
    pub cgroup: CgroupInfo,
    /// `cgroup_attach` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgroupInfo {
    pub id: u64,
    pub path: String,
    pub level: i32,
    /// 0: the cgroup v2 (unified) hierarchy.
    pub hierarchy: i32,
    /// The container owning that cgroup.
    pub container: Option<ContainerInfo>,
}

// ---------------------------------------------------------------------------------------
// Incidents.

/// A terminating signal and what became of its target; `container` is the target's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub container: Option<ContainerInfo>,
    pub signal: String,
    pub signo: i32,
    pub origin: Origin,
    pub sender: Party,
    pub target: Party,
    /// `None`: it had not exited when the incident was reported.
    pub target_exit: Option<ExitStatus>,
    /// The target was its container's init.
    pub container_stopped: bool,
    pub explanation: String,
}

/// `scope` of an OOM kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OomScope {
    ContainerLimit,
    Host,
    Unknown,
    Userspace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OomKillRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub container: Option<ContainerInfo>,
    pub scope: OomScope,
    pub victim: OomKillVictim,
    pub trigger: Party,
    /// The victim's memory cgroup's figures.
    pub memory: Option<Box<MemoryStats>>,
    pub victim_exit: Option<ExitStatus>,
    pub container_stopped: bool,
    pub explanation: String,
    /// The OOM killer's own context, where ctrace read it (a hook on `oom_kill_process()`
    /// loaded): then `scope` is the kernel's word; without it `scope` is inferred from the
    /// figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_context: Option<Box<OomContextRecord>>,
    /// Who held the memory: the OOM domain's tasks by RSS, from the kernel's own report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Box<OomTasksRecord>>,
    /// The other tasks killed with the victim as one group (`memory.oom.group`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<GroupVictimRecord>,
}

/// One more victim of a `memory.oom.group` kill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupVictimRecord {
    #[serde(flatten)]
    pub party: Party,
    /// Its RSS at the kill, KiB.
    pub rss_kb: u64,
}

/// `tasks` of an `oom_kill` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomTasksRecord {
    /// `kmsg`: the kernel's OOM report; `victim_only`: it could not be read (`note` says
    /// why), and only the victim's RSS is known.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Tasks the kernel listed in the OOM domain.
    pub listed: u64,
    /// The largest, largest first.
    pub top: Vec<OomTaskRecord>,
}

/// One task of an OOM domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomTaskRecord {
    pub pid: u32,
    pub comm: String,
    pub rss_bytes: u64,
}

/// `oom_context` of an `oom_kill` record: what `struct oom_control` said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomContextRecord {
    /// Where it was read: `oom_kill_process`.
    pub source: String,
    /// cgroup v2 id of the memory cgroup whose limit was hit; `null` for a host-wide OOM (or
    /// when the id could not be read).
    pub memcg_cgroup_id: Option<u64>,
    /// Levels of that cgroup above the victim's own memory cgroup (0: its own); `null` for a
    /// host-wide OOM.
    pub limit_depth: Option<u32>,
    /// `oc->chosen_points`: the victim's badness score.
    pub points: Option<i64>,
    /// The victim's `oom_score_adj` as the OOM killer read it.
    pub oom_score_adj: Option<i16>,
    /// `memcg`, `global`, `cpuset`, `memory_policy` or `sysrq`.
    pub trigger: Option<String>,
    /// The order of the allocation that failed.
    pub order: Option<i32>,
}

/// The victim of an OOM kill, with its sizes in KiB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OomKillVictim {
    #[serde(flatten)]
    pub party: Party,
    /// anon + file + shmem.
    pub rss_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub total_vm_kb: u64,
    pub oom_score_adj: i16,
}

/// The exec of a container's init.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStartRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub container: Option<ContainerInfo>,
    pub init: Party,
    pub filename: String,
    pub explanation: String,
}

/// `reason` of a container's stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Exited,
    Killed,
    OomKilled,
    Signaled,
}

/// A container dying and restarted again and again (`explain::RestartLoop`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartLoopRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The container as it is now (its last run).
    pub container: Option<ContainerInfo>,
    /// Deaths of the loop so far, counting those no longer listed.
    pub count: u64,
    /// The loop's first death: the same in every report of one loop.
    pub since: String,
    /// A death further than this from the one before starts a new loop.
    pub window_s: f64,
    /// The last deaths, oldest first.
    pub deaths: Vec<LoopDeath>,
    pub explanation: String,
}

/// One death of a restart loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopDeath {
    pub ts: String,
    /// `oom_killed`, `killed`, `exited` or `signaled`.
    pub cause: String,
    pub exit: ExitStatus,
    /// For `oom_killed`: the limit of that OOM kill, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    /// For `killed`: the signal and who sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Party>,
    /// Seconds from this death to the next start (the runtime's backoff); `null` until it
    /// restarted.
    pub restarted_after_s: Option<f64>,
}

/// The exit of a container's init.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStopRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub container: Option<ContainerInfo>,
    pub exit: Option<ExitStatus>,
    pub reason: StopReason,
    /// The sender, for `killed`.
    pub by: Option<Party>,
    pub explanation: String,
}

impl ContainerStopRecord {
    /// `exit 137 (SIGKILL): its init was OOM-killed`. Not escaped for a terminal.
    pub fn describe(&self) -> String {
        let exit = self
            .exit
            .as_ref()
            .and_then(ExitStatus::describe)
            .unwrap_or_else(|| "unknown".to_owned());
        let why = match self.reason {
            StopReason::OomKilled => "its init was OOM-killed".to_owned(),
            StopReason::Killed => format!(
                "its init was killed by {} from {}",
                self.exit
                    .as_ref()
                    .and_then(|e| e.signal.as_deref())
                    .unwrap_or("a signal"),
                self.by
                    .as_ref()
                    .map_or_else(|| "? (pid ?, host)".to_owned(), Party::describe)
            ),
            StopReason::Signaled => "its init died of a signal".to_owned(),
            StopReason::Exited => "its init exited".to_owned(),
        };
        format!("exit {exit}: {why}")
    }
}

/// A container became known (`resolved`), was named (`named`) or changed (`changed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerUpdateRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub cgroup_id: Option<u64>,
    pub container: Option<ContainerInfo>,
    pub reason: String,
    pub explanation: String,
}

// ---------------------------------------------------------------------------------------
// Other records.

/// A container's CPU quota holding it back (not a kernel event: no `process`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuThrottleRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub container: Option<ContainerInfo>,
    /// `start`, `ongoing`, `stop`.
    pub phase: String,
    pub throttled_ratio: f64,
    pub throttled_ns: u64,
    pub interval_ns: u64,
    pub quota: CpuQuota,
    pub usage_cpus: Option<f64>,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    /// Absent before PSI was read; `null` without PSI.
    #[serde(default)]
    pub pressure_some_us: Option<u64>,
    pub runqueue: Option<Runqueue>,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuQuota {
    pub cpus: f64,
    pub quota_us: u64,
    pub period_us: u64,
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runqueue {
    pub p50_ns: u64,
    pub p99_ns: u64,
}

/// A gap: `count` records of `kind` lost at `where`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub kind: String,
    pub count: u64,
    /// `kernel_ringbuf_full`, `userspace_decode`.
    #[serde(rename = "where")]
    pub site: String,
    pub total: u64,
    pub explanation: String,
}

/// The last record of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsRecord {
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Per kind of kernel record.
    pub kinds: BTreeMap<String, KindStats>,
    /// The total, records of no known kind included.
    #[serde(default)]
    pub decode_errors: u64,
    /// Absent in records of a ctrace that did not list them yet.
    #[serde(default)]
    pub programs: Vec<ProgramStats>,
    /// Feature → the hook that served it on this kernel: `capability` → `tracepoint` (6.13+),
    /// `fexit` or `kprobe` (on `cap_capable()`). Absent in records of older versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mechanisms: BTreeMap<String, String>,
    /// What ctrace's own state held at the end (absent in records of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateStats>,
    /// Capability checks, counted in the kernel and reported (absent when none were seen,
    /// and in records of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_checks: Option<CapabilityCheckStats>,
    /// Signals folded in the kernel (absent when none were, and in records of older
    /// versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_folds: Option<SignalFoldStats>,
}

/// Repeated identical signals that changed nothing (ignored, already pending), folded in the
/// kernel into records with a `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalFoldStats {
    /// Signals that the records' counts stand for beyond one per record (the kernel counts
    /// them as `filtered_in_kernel`).
    pub repeats_reported: u64,
    /// Signals of runs whose every record was lost (the ring was full): known only as this
    /// number, from the total the next run's first record carried.
    pub unattributed: u64,
}

/// Capability checks (not records) at the end of a run: `checked = reported + insert_failed +
/// unreported - over_reported`, and `over_reported` is 0 unless ctrace has a bug.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilityCheckStats {
    /// Checks the kernel folded (its `CAP_COUNTERS`), allowed ones only with `--cap-allowed`.
    pub checked: u64,
    /// The sum of `count` over the `capability` records.
    pub reported: u64,
    /// Checks that found no de-duplication slot and could not make one.
    pub insert_failed: u64,
    /// Checks counted in a slot that no record reported: slots the kernel's LRU evicted with
    /// an unreported tail, or whose late records came after ctrace forgot the slot.
    pub unreported: u64,
    /// Reported beyond what the kernel counted.
    pub over_reported: u64,
    /// De-duplication slot incarnations (key and CPU) started.
    pub slots: u64,
    /// Records not counted because their slot had been forgotten to bound ctrace's memory.
    pub forgotten_records: u64,
    /// Allowed checks of host cgroups the kernel dropped before the fold, when only the
    /// journal wanted allowed checks (it keeps containers' only); not in `checked`.
    pub host_dropped: u64,
}

impl CapabilityCheckStats {
    /// The books from the kernel's counters and what the pipeline reported.
    pub fn new(kernel: &crate::probe::CapCounters, reported: u64, forgotten_records: u64) -> Self {
        let accounted = reported + kernel.insert_failed;
        Self {
            checked: kernel.checks,
            reported,
            insert_failed: kernel.insert_failed,
            unreported: kernel.checks.saturating_sub(accounted),
            over_reported: accounted.saturating_sub(kernel.checks),
            slots: kernel.slots,
            forgotten_records,
            host_dropped: kernel.host_dropped,
        }
    }
}

/// Entries of ctrace's state at the end of a run (`session::StateCounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateStats {
    pub resolver_slots: u64,
    pub resolver_slots_evicted: u64,
    pub names: u64,
    pub containers: u64,
    pub tombstones: u64,
    pub processes: u64,
    /// Absent in records of older versions.
    #[serde(default)]
    pub warnings_forgotten: u64,
}

/// Per kind: `produced = delivered + lost_ringbuf_full + decode_errors` after a clean stop.
/// A counter an older ctrace did not write reads as 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KindStats {
    pub produced: u64,
    pub delivered: u64,
    pub lost_ringbuf_full: u64,
    pub decode_errors: u64,
    pub read_errors: u64,
    pub filtered_in_kernel: u64,
}

/// An eBPF program ctrace attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramStats {
    pub name: String,
    /// How it was attached: `tracepoint`, `tp_btf`, `fexit` or `kprobe` (absent in records of
    /// older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// The kernel's program id.
    pub id: Option<u32>,
    pub detached: bool,
    /// Runs the kernel's recursion guard skipped; `null` when not reported.
    #[serde(default)]
    pub recursion_misses: Option<u64>,
}

/// The examples of a document laid out as `docs/events.md`: each ```json block under a
/// "### `type`" heading that names a record type, as (type, JSON text), in order. The tests
/// that hold the documentation to the types and to the JSON Schema read it through here.
pub fn examples_in(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut heading: Option<String> = None;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("### `") {
            heading = h.split('`').next().map(str::to_owned);
        } else if line.starts_with('#') {
            heading = None;
        } else if line == "```json" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            if let Some(t) = heading
                .take()
                .filter(|t| Record::TYPES.contains(&t.as_str()))
            {
                out.push((t, block.join("\n")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The examples of docs/events.md, parsed.
    fn documented_examples() -> Vec<(String, Value)> {
        examples_in(include_str!("../../docs/events.md"))
            .into_iter()
            .map(|(t, text)| {
                let v: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("example of {t} is not JSON: {e}"));
                (t, v)
            })
            .collect()
    }

    #[test]
    fn every_documented_example_reads_back_into_its_type_and_writes_the_same_json() {
        let examples = documented_examples();
        for (t, v) in &examples {
            let r: Record = serde_json::from_value(v.clone())
                .unwrap_or_else(|e| panic!("example of {t} does not read as a Record: {e}"));
            assert_eq!(r.type_name(), t, "the type of its heading");
            assert_eq!(r.envelope().schema, SCHEMA);
            let back = serde_json::to_value(&r).unwrap();
            assert_eq!(&back, v, "example of {t} written back");
            // And from the text, as the journal's readers take it.
            let line = crate::sink::json::line(v);
            assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
        }
        let mut seen: Vec<&str> = examples.iter().map(|(t, _)| t.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        let mut all = Record::TYPES.to_vec();
        all.sort_unstable();
        assert_eq!(seen, all, "an example of every type");
    }

    #[test]
    fn the_schema_lists_the_types_of_the_enum() {
        let schema: Value = serde_json::from_str(include_str!("../../docs/events.schema.json"))
            .expect("the schema is JSON");
        let types: Vec<&str> = schema["properties"]["type"]["enum"]
            .as_array()
            .expect("a list of types")
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(types, Record::TYPES);
        // Each name is the serde tag of the variant that says it is of that type.
        for t in Record::TYPES {
            let mut v = serde_json::json!({"type": t});
            let err = serde_json::from_value::<Record>(v.take()).unwrap_err();
            assert!(
                !err.to_string().contains("unknown variant"),
                "{t} is not a variant: {err}"
            );
        }
        let err = serde_json::from_value::<Record>(serde_json::json!({"type": "nope"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant"), "{err}");
    }

    #[test]
    fn capability_check_books_balance_and_name_the_difference() {
        let kernel = crate::probe::CapCounters {
            checks: 100,
            slots: 3,
            insert_failed: 2,
            host_dropped: 40,
        };
        let c = CapabilityCheckStats::new(&kernel, 90, 1);
        assert_eq!((c.unreported, c.over_reported), (8, 0));
        // Dropped before the fold: apart from the books of what was folded.
        assert_eq!(c.host_dropped, 40);
        assert_eq!(c.checked, c.reported + c.insert_failed + c.unreported);
        let c = CapabilityCheckStats::new(&kernel, 99, 0);
        assert_eq!((c.unreported, c.over_reported), (0, 1), "never hidden");
    }

    #[test]
    fn heads_read_any_record() {
        let label = |h: &Head| container_label(h.container.as_ref().map(Option::as_ref));
        let h: Head = serde_json::from_str(r#"{"type":"io_stall","container":null}"#).unwrap();
        assert_eq!(h.kind, "io_stall");
        assert_eq!(label(&h).as_deref(), Some("host"));
        let h: Head = serde_json::from_str(r#"{"type":"lost","explanation":"x"}"#).unwrap();
        assert_eq!((label(&h), h.explanation.as_deref()), (None, Some("x")));
        let h: Head = serde_json::from_str(
            r#"{"type":"kill","container":{"id":"abc","resolved":true,"runtime":"crio",
                "name":null,"image":null,"namespace":null,"pod":null}}"#,
        )
        .unwrap();
        assert_eq!(label(&h).as_deref(), Some("abc (crio)"));
        let h: Head =
            serde_json::from_str(r#"{"type":"kill","container":{"id":null,"resolved":false}}"#)
                .unwrap();
        assert_eq!(label(&h).as_deref(), Some("unknown cgroup"));
    }

    #[test]
    fn an_unplaced_cgroup_and_a_host_process() {
        let v = serde_json::json!({"id": null, "resolved": false});
        let c: ContainerInfo = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c.details, None);
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
        assert_eq!(ContainerInfo::of(&Attribution::Host), None);
        assert_eq!(
            serde_json::to_value(ContainerInfo::of(&Attribution::Unknown)).unwrap(),
            v
        );
        let p = Party {
            pid: 3,
            comm: "x".into(),
            cgroup_id: None,
            container: Some(c),
        };
        assert_eq!(p.describe(), "x (pid 3, unknown cgroup)");
    }
}
