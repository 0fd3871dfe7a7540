//! Gathering the report of one container: from its runc state, `/proc` (under an injectable
//! root), the cgroup files and the journal. Never fails: what cannot be read is recorded in
//! the report, per section.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize as _;
use serde_json::Value;

use super::{
    caps::{read_status_at, ProcCaps},
    namespaces::{compare, read_host_ns_at, read_ns_at, HostNs, NsSet},
    proctree::{
        process_tree_at, process_tree_from_root_at, read_cgroup_pids, read_stat_at, ProcTree,
        UserNames,
    },
    report::{
        runtime_default, Capabilities, Change, Comparison, Identity, Incident, Incidents,
        Namespaces, Report, INCIDENT_LIMIT, INCIDENT_TYPES,
    },
    resources::{self, Resources},
};
use crate::{
    cgroup::Mounts,
    clock::{parse_rfc3339, rfc3339_ns},
    container::{short_id, ContainerMeta, Runtime},
    host::proc::is_vanished,
    journal::{Journal, RecordFilter},
    record::Head,
    recorder,
    resolve::Container,
};

/// A container to inspect, with its runc state when found.
#[derive(Debug, Clone)]
pub struct Target {
    pub container: Arc<Container>,
    pub cgroup_id: Option<u64>,
    pub meta: Option<ContainerMeta>,
}

/// Column labels for `--diff`: display names, or `namespace/id` when both are the same.
pub fn diff_labels(a: &Container, b: &Container) -> (String, String) {
    if a.display() != b.display() {
        return (a.display().to_owned(), b.display().to_owned());
    }
    let full = |c: &Container| match &c.namespace {
        Some(ns) => format!("{ns}/{}", short_id(&c.id)),
        None => format!("{}/{}", c.runtime, short_id(&c.id)),
    };
    (full(a), full(b))
}

/// What the host looks like, read once.
pub struct Env {
    pub proc_root: PathBuf,
    pub mounts: Mounts,
    pub users: UserNames,
    pub host_ns: Result<HostNs, String>,
    pub host_caps: Result<HostCaps, String>,
    /// Journal to read incidents from; `None`: `--no-journal`.
    pub journal: Option<PathBuf>,
}

/// The host's capabilities and where they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCaps {
    pub caps: ProcCaps,
    /// `pid 1`, or `ctrace itself (...)` when PID 1's status is unreadable.
    pub source: String,
}

impl Env {
    pub fn current(journal: Option<PathBuf>) -> Env {
        Env::at(
            crate::host::proc::root(),
            Mounts::current(),
            UserNames::load_host(),
            journal,
        )
    }

    /// An environment over another procfs (tests).
    pub fn at(proc_root: &Path, mounts: Mounts, users: UserNames, journal: Option<PathBuf>) -> Env {
        let host_ns = read_host_ns_at(proc_root).map_err(|e| e.to_string());
        let host_caps = match read_status_at(proc_root, 1).map(|s| s.caps) {
            Ok(Some(caps)) => Ok(HostCaps {
                caps,
                source: "pid 1".to_owned(),
            }),
            other => {
                let why = match other {
                    Err(e) => format!("/proc/1/status unreadable: {e}"),
                    _ => "/proc/1/status has no capability lines".to_owned(),
                };
                match read_status_at(proc_root, std::process::id()).map(|s| s.caps) {
                    Ok(Some(caps)) => Ok(HostCaps {
                        caps,
                        source: format!("ctrace itself, {why}"),
                    }),
                    _ => Err(why),
                }
            }
        };
        Env {
            proc_root: proc_root.to_owned(),
            mounts,
            users,
            host_ns,
            host_caps,
            journal,
        }
    }
}

/// The init pid, how it was found, and whether it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Init {
    pub(super) pid: Option<u32>,
    pub(super) source: String,
    pub(super) alive: bool,
    pub(super) start_time: Option<u64>,
}

fn start_time(proc_root: &Path, pid: u32) -> io::Result<Option<u64>> {
    match read_stat_at(proc_root, pid) {
        Ok(s) => Ok(s.start_time),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `pid` is still the process that started at `start` (clock ticks after boot).
pub(super) fn same_process(proc_root: &Path, pid: u32, start: Option<u64>) -> bool {
    match start_time(proc_root, pid) {
        Ok(now) => start.is_none() || now.is_none() || now == start,
        Err(_) => false,
    }
}

pub(super) fn find_init(env: &Env, t: &Target, cgroup: Option<&(PathBuf, Vec<u32>)>) -> Init {
    let c = &t.container;
    let state_pid = t.meta.as_ref().and_then(|m| m.init_pid).or(c.init_pid);
    let expected = t.meta.as_ref().and_then(|m| m.init_start);
    let state_file = t.meta.as_ref().map_or_else(
        || "runc state".to_owned(),
        |m| format!("{}", m.state_root.join(&m.id).join("state.json").display()),
    );
    if let Some(pid) = state_pid {
        match start_time(&env.proc_root, pid) {
            Ok(now) if expected.is_none() || now.is_none() || now == expected => {
                let check = match (expected, now) {
                    (Some(_), Some(_)) => format!(
                        "start time matches {}",
                        env.proc_root.join(pid.to_string()).join("stat").display()
                    ),
                    _ => "start time not checked".to_owned(),
                };
                return Init {
                    pid: Some(pid),
                    source: format!("init_process_pid in {state_file} ({check})"),
                    alive: true,
                    start_time: now,
                };
            }
            Ok(_) => {
                return Init {
                    pid: Some(pid),
                    source: format!(
                        "init_process_pid in {state_file}; pid {pid} is now another process \
                         (start time differs): the container's init has exited"
                    ),
                    alive: false,
                    start_time: None,
                }
            }
            Err(_) => {
                return Init {
                    pid: Some(pid),
                    source: format!(
                        "init_process_pid in {state_file}; process {pid} no longer exists"
                    ),
                    alive: false,
                    start_time: None,
                }
            }
        }
    }
    // No pid in the state: the first process of the cgroup (whose parent is outside it).
    if let Some((dir, pids)) = cgroup {
        let parents: Vec<(u32, u32)> = pids
            .iter()
            .filter_map(|&p| read_stat_at(&env.proc_root, p).ok().map(|s| (p, s.ppid)))
            .collect();
        if let Some(&(pid, _)) = parents.iter().find(|(_, pp)| !pids.contains(pp)) {
            return Init {
                pid: Some(pid),
                source: format!(
                    "no init pid in {state_file}: the process of {} whose parent is outside it",
                    dir.join("cgroup.procs").display()
                ),
                alive: true,
                start_time: start_time(&env.proc_root, pid).ok().flatten(),
            };
        }
    }
    Init {
        pid: None,
        source: format!("no init pid in {state_file} and no process in the container's cgroup"),
        alive: false,
        start_time: None,
    }
}

/// The container's cgroup directory with a readable `cgroup.procs`, and every pid in it and
/// below: the unified hierarchy first, then v1 controllers.
fn cgroup_pids(env: &Env, c: &Container) -> Option<(PathBuf, Vec<u32>)> {
    let mut dirs = Vec::new();
    if let Some(d) = c.cgroup_path.as_deref().and_then(|p| env.mounts.v2_dir(p)) {
        dirs.push(d);
    }
    for ctl in ["pids", "memory", "cpu", "name=systemd"] {
        if let Some(d) = c
            .cgroup_path_for(ctl)
            .and_then(|p| env.mounts.v1_dir(ctl, p))
        {
            dirs.push(d);
        }
    }
    dirs.into_iter()
        .find_map(|d| read_cgroup_pids(&d).ok().map(|pids| (d, pids)))
}

/// How another container is named in "shared with": its display name, or `namespace/name`
/// (`runtime/name`) when that name is not unique.
pub(super) fn other_label(o: &Container, me: &Container, others: &[&Target]) -> String {
    let name = o.display();
    let clashes = others
        .iter()
        .filter(|t| t.container.display() == name)
        .count()
        + usize::from(me.display() == name);
    if clashes <= 1 {
        return name.to_owned();
    }
    match &o.namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => format!("{}/{name}", o.runtime),
    }
}

/// `process 123 exited while being inspected` / `cannot read /proc/123/ns: permission denied`.
pub(super) fn proc_error(proc_root: &Path, pid: u32, what: &str, e: &io::Error) -> String {
    let path = proc_root.join(pid.to_string()).join(what);
    if is_vanished(e) {
        format!("process {pid} exited while being inspected")
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        format!("cannot read {}: permission denied", path.display())
    } else {
        format!("cannot read {}: {e}", path.display())
    }
}

/// What could not be read: section → why, and the problems of a running container.
#[derive(Default)]
struct Gaps {
    unavailable: BTreeMap<&'static str, String>,
    problems: Vec<String>,
}

impl Gaps {
    /// `section` could not be read while the container ran: unavailable, and a problem.
    fn problem(&mut self, section: &'static str, why: String) {
        self.problems.push(format!("{section}: {why}"));
        self.unavailable.insert(section, why);
    }
}

/// `not running (init pid 12 has exited)`.
fn not_running(init: &Init) -> String {
    format!(
        "not running{}",
        init.pid
            .map_or_else(String::new, |p| format!(" (init pid {p} has exited)"))
    )
}

/// Gather the report of `t`; `others` are the other containers (for shared namespaces).
/// Never fails: what cannot be read is recorded in the report.
pub fn gather(env: &Env, t: &Target, others: &[&Target]) -> Report {
    let c = &t.container;
    let cgroup = cgroup_pids(env, c);
    let init = find_init(env, t, cgroup.as_ref());
    let mut gaps = Gaps::default();
    let processes = gather_processes(env, &init, cgroup.as_ref(), &mut gaps);

    let (namespaces, capabilities) = match init.pid.filter(|_| init.alive) {
        None => {
            gaps.unavailable.insert("namespaces", not_running(&init));
            gaps.unavailable.insert("capabilities", not_running(&init));
            (None, None)
        }
        Some(pid) => (
            gather_namespaces(env, c, pid, others, &mut gaps),
            gather_capabilities(env, c.runtime, pid, &mut gaps),
        ),
    };

    let resources = read_resources(env, c);
    if init.alive {
        gaps.problems.extend(resources.problems());
    }
    let incidents = read_incidents(env.journal.as_deref(), &recorder::key(c));

    // The init that ran at the start and is gone now: everything read may be partial.
    if let Some(pid) = init.pid.filter(|_| init.alive) {
        if !same_process(&env.proc_root, pid, init.start_time) {
            let msg = format!("the init process {pid} exited while it was being inspected");
            if !gaps.problems.iter().any(|p| p.contains("exited while")) {
                gaps.problems.push(msg);
            }
        }
    }

    Report {
        identity: identity(t, &init),
        state: if init.alive { "running" } else { "stopped" },
        processes,
        namespaces,
        capabilities,
        resources,
        incidents,
        unavailable: gaps.unavailable,
        problems: gaps.problems,
    }
}

/// The processes: the cgroup's, else the init's descendants.
fn gather_processes(
    env: &Env,
    init: &Init,
    cgroup: Option<&(PathBuf, Vec<u32>)>,
    gaps: &mut Gaps,
) -> Option<ProcTree> {
    let processes = match (cgroup, init.pid.filter(|_| init.alive)) {
        (Some((_, pids)), _) if !pids.is_empty() => {
            Some(process_tree_at(&env.proc_root, pids, &env.users))
        }
        (_, Some(pid)) => Some(process_tree_from_root_at(&env.proc_root, pid, &env.users)),
        _ => None,
    }
    .filter(|tree| !tree.nodes.is_empty());
    if processes.is_none() {
        let why = if init.alive {
            "every process exited while being read".to_owned()
        } else {
            not_running(init)
        };
        gaps.unavailable.insert("processes", why);
    }
    processes
}

/// The namespaces of the running init `pid`, and which of them it shares with the host and
/// the other containers.
fn gather_namespaces(
    env: &Env,
    c: &Container,
    pid: u32,
    others: &[&Target],
    gaps: &mut Gaps,
) -> Option<Namespaces> {
    let ns = match read_ns_at(&env.proc_root, &pid.to_string()) {
        Ok(ns) => ns,
        Err(e) => {
            gaps.problem("namespaces", proc_error(&env.proc_root, pid, "ns", &e));
            return None;
        }
    };
    let other_sets: Vec<(String, NsSet)> = others
        .iter()
        .filter_map(|o| {
            let opid = o
                .meta
                .as_ref()
                .and_then(|m| m.init_pid)
                .or(o.container.init_pid)?;
            let start = o.meta.as_ref().and_then(|m| m.init_start);
            if !same_process(&env.proc_root, opid, start) {
                return None;
            }
            let set = read_ns_at(&env.proc_root, &opid.to_string()).ok()?;
            Some((other_label(&o.container, c, others), set))
        })
        .collect();
    let (host, host_source) = match &env.host_ns {
        Ok(h) => (h.ns, Some(h.source.clone())),
        Err(_) => (NsSet::default(), None),
    };
    Some(Namespaces {
        pid,
        host_source,
        inodes: ns,
        list: compare(&ns, &host, &other_sets),
    })
}

/// The capability state of the running init `pid`.
fn gather_capabilities(
    env: &Env,
    runtime: Runtime,
    pid: u32,
    gaps: &mut Gaps,
) -> Option<Capabilities> {
    match read_status_at(&env.proc_root, pid) {
        Ok(st) => match st.caps {
            Some(raw) => Some(caps_report(env, runtime, pid, st.uid_effective, raw)),
            None => {
                let why = format!("/proc/{pid}/status has no capability lines");
                gaps.problem("capabilities", why);
                None
            }
        },
        Err(e) => {
            let why = proc_error(&env.proc_root, pid, "status", &e);
            gaps.problem("capabilities", why);
            None
        }
    }
}

/// Who the container is, from the resolver and its runc state.
fn identity(t: &Target, init: &Init) -> Identity {
    let c = &t.container;
    let meta = t.meta.as_ref();
    Identity {
        runtime: c.runtime,
        id: c.id.clone(),
        name: c.name.clone(),
        display: c.display().to_owned(),
        image: c.image.clone(),
        namespace: c.namespace.clone(),
        labels: c.labels.clone(),
        pod: c.pod.clone(),
        bundle: meta
            .and_then(|m| m.bundle.as_ref())
            .map(|b| b.to_string_lossy().into_owned()),
        state_root: meta.map(|m| m.state_root.to_string_lossy().into_owned()),
        created: meta
            .and_then(|m| m.created.as_deref())
            .map(|s| parse_rfc3339(s).map_or_else(|| s.to_owned(), rfc3339_ns)),
        init_pid: init.pid,
        init_pid_source: init.source.clone(),
        cgroup: c.cgroup_path.clone(),
        cgroup_id: t.cgroup_id,
        journal_key: recorder::key(c),
    }
}

fn caps_report(
    env: &Env,
    runtime: Runtime,
    pid: u32,
    uid: Option<u32>,
    raw: ProcCaps,
) -> Capabilities {
    let (default, baseline) = runtime_default(runtime);
    let vs_host = env.host_caps.as_ref().ok().map(|h| Comparison {
        baseline: format!("the host ({})", h.source),
        effective: Change::of(raw.effective, h.caps.effective),
        bounding: Change::of(raw.bounding, h.caps.bounding),
    });
    Capabilities {
        pid,
        uid,
        effective: raw.effective.into(),
        permitted: raw.permitted.into(),
        bounding: raw.bounding.into(),
        inheritable: raw.inheritable.into(),
        ambient: raw.ambient.into(),
        no_new_privs: raw.no_new_privs,
        seccomp: raw.seccomp,
        seccomp_filters: raw.seccomp_filters,
        vs_default: Comparison {
            baseline,
            effective: Change::of(raw.effective, default),
            bounding: Change::of(raw.bounding, default),
        },
        vs_host,
        raw,
    }
}

/// Limits and usage from the container's cgroup: v1 controller paths where the runtime
/// recorded them, the unified path otherwise.
fn read_resources(env: &Env, c: &Container) -> Resources {
    resources::read_resources(&env.mounts, |controller| {
        if controller.is_empty() {
            c.cgroup_paths.get("").or(c.cgroup_path.as_ref()).cloned()
        } else {
            c.cgroup_path_for(controller).map(str::to_owned)
        }
    })
}

/// The newest incidents of the container with journal key `key`.
pub fn read_incidents(journal: Option<&Path>, key: &str) -> Incidents {
    let Some(path) = journal else {
        return Incidents {
            journal: None,
            status: "disabled",
            error: None,
            records: Vec::new(),
        };
    };
    let mut out = Incidents {
        journal: Some(path.to_string_lossy().into_owned()),
        status: "ok",
        error: None,
        records: Vec::new(),
    };
    if !path.exists() {
        out.status = "no_journal";
        return out;
    }
    let result = Journal::open_read_only(path).and_then(|j| {
        j.records(&RecordFilter {
            container_key: Some(key.to_owned()),
            types: INCIDENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            // Allowed capability checks are journaled too (for `ctrace caps`), but they are
            // not incidents: read enough to keep the newest incidents after leaving them out.
            limit: Some(INCIDENT_LIMIT * 50),
            ..RecordFilter::default()
        })
    });
    match result {
        Ok(records) => {
            let incidents: Vec<(_, Value)> = records
                .into_iter()
                .map(|r| {
                    let record: Value = serde_json::from_str(&r.json).unwrap_or(Value::Null);
                    (r, record)
                })
                .filter(|(_, v)| !(v["type"] == "capability" && v["verdict"] == "allowed"))
                .collect();
            let skip = incidents.len().saturating_sub(INCIDENT_LIMIT);
            out.records = incidents
                .into_iter()
                .skip(skip)
                .map(|(r, record)| Incident {
                    ts: rfc3339_ns(r.ts_ns),
                    explanation: Head::deserialize(&record).ok().and_then(|h| h.explanation),
                    kind: r.kind,
                    record,
                })
                .collect();
        }
        Err(e) => {
            out.status = "error";
            out.error = Some(e.to_string());
        }
    }
    out
}
