//! `ctrace inspect`: one container as the lab looks at it from the host (`ps -axfo`, `lsns`,
//! `grep Cap /proc/PID/status`), for any runtime: identity, process tree under its shim,
//! namespaces and who shares them, capability sets against the runtime's default and the
//! host, resource limits, and recent incidents from the journal. `--diff A B` puts two
//! containers side by side.
//!
//! Nothing here needs eBPF. The data comes from runc state (via the resolver `ctrace ps`
//! uses), `/proc`, the cgroup file systems and the journal; the readers and parsers are in
//! [`tracer::inspect`]. What cannot be read is said so in its section, never guessed.
//!
//! Exit codes: 0 done; 1 no container matches, or the inspection of a running container is
//! incomplete (the init process exited meanwhile, a `/proc` entry or a cgroup file was
//! unreadable); 2 several containers match, or any other error.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context as _;
use clap::{ArgGroup, Args};
use serde::{Deserialize as _, Serialize};
use serde_json::{json, Value};

use tracer::{
    cgroupfs::Mounts,
    clock::{parse_rfc3339, rfc3339_ns, utc_seconds},
    container::{self, short_id, ContainerMeta, PodInfo, Runtime},
    docker,
    inspect::{
        self as data, CapSet, ContainerView, HostNs, HostNsSource, NsSet, NsShare, NsType,
        ProcCaps, ProcTree, Resources, SeccompMode, UserNames, OCI_DEFAULT_CAPS,
    },
    journal::{self, Journal, RecordFilter},
    record::Head,
    recorder,
    resolve::Container,
    select::{SelectError, Selector},
    sink::escape::terminal,
};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["container", "diff"])))]
pub struct InspectArgs {
    /// Container name, full id, id prefix (3+ characters), pod name, or `NAMESPACE/ID` and
    /// journal keys such as `containerd/default/ID` to tell containerd namespaces apart. An
    /// exact name or id wins over an id prefix; several matches are refused (exit 2).
    #[arg(value_name = "NAME|ID")]
    pub container: Option<String>,
    /// Compare two containers side by side: capability sets, namespaces, limits.
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "container")]
    pub diff: Option<Vec<String>>,
    /// One JSON object on one line.
    #[arg(long)]
    pub json: bool,
    /// Also scan this runc state root (`runc --root DIR`); repeatable.
    #[arg(long, value_name = "DIR")]
    pub runc_root: Vec<PathBuf>,
    /// Journal to read recent incidents from (a missing file just omits them).
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    pub journal: PathBuf,
    /// Do not read the journal.
    #[arg(long)]
    pub no_journal: bool,
    /// Docker API socket (names also come from Docker's store on disk).
    #[arg(long, value_name = "PATH", default_value = docker::DEFAULT_SOCKET)]
    pub docker_socket: PathBuf,
    /// Do not ask the Docker API or ctr.
    #[arg(long)]
    pub no_api: bool,
}

/// A failure with its own exit code (1: nothing matches or incomplete; 2: ambiguous).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    fn error(code: u8, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Exit {
            code,
            message: message.into(),
        })
    }
}

/// Run `ctrace inspect` and turn its outcome into the process's exit code, errors on one line
/// as `main` prints them.
pub fn main(args: &InspectArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctrace: error: {e:#}");
            ExitCode::from(e.downcast_ref::<Exit>().map_or(2, |x| x.code))
        }
    }
}

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let mut resolver =
        super::ps::enriched_resolver(&args.runc_root, &args.docker_socket, args.no_api)?;
    for w in std::mem::take(&mut resolver.warnings) {
        eprintln!("ctrace: warning: {}", terminal(&w));
    }
    let metas = state_metas(&args.runc_root);
    let targets: Vec<Target> = resolver
        .containers()
        .into_iter()
        .filter(|(_, _, gone)| !gone)
        .map(|(c, cgroup_id, _)| {
            let meta = metas
                .iter()
                .find(|m| m.id == c.id && m.namespace == c.namespace)
                .cloned();
            Target {
                container: c,
                cgroup_id,
                meta,
            }
        })
        .collect();
    let journal = (!args.no_journal).then(|| args.journal.clone());
    let env = Env::current(journal);
    match &args.diff {
        Some(pair) => {
            let [a, b] = pair.as_slice() else {
                anyhow::bail!("--diff takes two containers");
            };
            let ia = pick(&targets, a, &env)?;
            let ib = pick(&targets, b, &env)?;
            let ra = gather(&env, &targets[ia], &others(&targets, ia));
            let rb = gather(&env, &targets[ib], &others(&targets, ib));
            let (la, lb) = labels(&targets[ia].container, &targets[ib].container);
            let va = view(&ra, &la)?;
            let vb = view(&rb, &lb)?;
            let text = if args.json {
                format!(
                    "{}\n",
                    tracer::sink::json::line(&diff_json(&ra, &rb, &va, &vb))
                )
            } else {
                data::render_side_by_side(&va, &vb)
            };
            super::print_stdout(&text)?;
            incomplete(&ra)?;
            incomplete(&rb)
        }
        None => {
            let pattern = args.container.as_deref().unwrap_or_default();
            let i = pick(&targets, pattern, &env)?;
            let report = gather(&env, &targets[i], &others(&targets, i));
            let text = if args.json {
                let v = serde_json::to_value(&report).context("serialising the report")?;
                format!("{}\n", tracer::sink::json::line(&v))
            } else {
                render(&report)
            };
            super::print_stdout(&text)?;
            incomplete(&report)
        }
    }
}

/// Exit 1 after the output when something could not be read while the container ran.
fn incomplete(r: &Report) -> anyhow::Result<()> {
    if r.problems.is_empty() {
        return Ok(());
    }
    Err(Exit::error(
        1,
        format!(
            "inspection of {} is incomplete: {}",
            terminal(&r.identity.display),
            terminal(&r.problems.join("; "))
        ),
    ))
}

/// Column labels for `--diff`: display names, or `namespace/id` when both are the same.
fn labels(a: &Container, b: &Container) -> (String, String) {
    if a.display() != b.display() {
        return (a.display().to_owned(), b.display().to_owned());
    }
    let full = |c: &Container| match &c.namespace {
        Some(ns) => format!("{ns}/{}", short_id(&c.id)),
        None => format!("{}/{}", c.runtime, short_id(&c.id)),
    };
    (full(a), full(b))
}

/// The runc state of every container (bundle, state root, created, init start time), which
/// the resolver's [`Container`] does not carry.
fn state_metas(extra_roots: &[PathBuf]) -> Vec<ContainerMeta> {
    let mut roots = container::default_state_roots();
    for r in extra_roots {
        if !roots.contains(r) {
            roots.push(r.clone());
        }
    }
    container::scan_state_roots(&roots).containers
}

/// A container to inspect, with its runc state when found.
#[derive(Debug, Clone)]
pub struct Target {
    pub container: Arc<Container>,
    pub cgroup_id: Option<u64>,
    pub meta: Option<ContainerMeta>,
}

fn others(targets: &[Target], skip: usize) -> Vec<&Target> {
    targets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != skip)
        .map(|(_, t)| t)
        .collect()
}

/// The index of the one container `pattern` names ([`Selector::resolve`]), or an [`Exit`]
/// error: 1 when none matches, 2 when several do (listed) or the pattern is malformed.
fn pick(targets: &[Target], pattern: &str, env: &Env) -> anyhow::Result<usize> {
    let cs: Vec<&Container> = targets.iter().map(|t| t.container.as_ref()).collect();
    let err = match Selector::parse(pattern).and_then(|s| s.resolve(&cs)) {
        Ok(i) => return Ok(i),
        Err(e) => e,
    };
    match err {
        SelectError::NotFound { .. } => {
            let mut msg = format!(
                "no container matches \"{}\" (ctrace ps lists them; plain runc containers \
                 under another root need --runc-root)",
                terminal(pattern)
            );
            if let Some(seen) = env.journal_knows(pattern) {
                let _ = write!(msg, "; the journal knows it: {seen}");
            }
            Err(Exit::error(1, msg))
        }
        SelectError::Ambiguous { .. } => Err(Exit::error(
            2,
            format!(
                "{}; name one by its key (or NAMESPACE/ID for containerd)",
                terminal(&err.to_string())
            ),
        )),
        SelectError::Invalid(_) => Err(Exit::error(2, terminal(&err.to_string()))),
    }
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
            tracer::host::proc::root(),
            Mounts::current(),
            UserNames::load_host(),
            journal,
        )
    }

    /// An environment over another procfs (tests).
    pub fn at(proc_root: &Path, mounts: Mounts, users: UserNames, journal: Option<PathBuf>) -> Env {
        let host_ns = data::read_host_ns_at(proc_root).map_err(|e| e.to_string());
        let host_caps = match data::read_status_at(proc_root, 1).map(|s| s.caps) {
            Ok(Some(caps)) => Ok(HostCaps {
                caps,
                source: "pid 1".to_owned(),
            }),
            other => {
                let why = match other {
                    Err(e) => format!("/proc/1/status unreadable: {e}"),
                    _ => "/proc/1/status has no capability lines".to_owned(),
                };
                match data::read_status_at(proc_root, std::process::id()).map(|s| s.caps) {
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

    /// `name (gone at ...)` when the journal has a container by that name or id.
    fn journal_knows(&self, pattern: &str) -> Option<String> {
        let path = self.journal.as_ref().filter(|p| p.exists())?;
        let selector = Selector::parse(pattern).ok()?;
        let j = Journal::open_read_only(path).ok()?;
        let rows = j.containers_matching(&selector).ok()??.items;
        let row = rows.first()?;
        let when = row.gone_ns.map_or_else(
            || format!("last seen {}", utc_seconds(row.last_seen_ns)),
            |g| format!("gone at {}", utc_seconds(g)),
        );
        Some(format!(
            "{} {} ({when}; try ctrace postmortem)",
            terminal(&row.key),
            terminal(row.name.as_deref().unwrap_or("-"))
        ))
    }
}

/// Everything `inspect` shows about one container.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub identity: Identity,
    /// `running` (its init process is alive) or `stopped`.
    pub state: &'static str,
    /// `null` when unavailable (see `unavailable`).
    pub processes: Option<ProcTree>,
    pub namespaces: Option<Namespaces>,
    pub capabilities: Option<Capabilities>,
    /// Limits and usage; a value that could not be read is `null` and named, with the
    /// reason, in `resources.unknown` (and, while the container runs, in `problems`).
    pub resources: Resources,
    pub incidents: Incidents,
    /// Section → why it is missing.
    pub unavailable: BTreeMap<&'static str, String>,
    /// What went wrong while the container was running (exit code 1): unreadable `/proc`
    /// entries, cgroup files, the init exiting meanwhile. Empty when complete.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub runtime: Runtime,
    pub id: String,
    pub name: Option<String>,
    /// Name, else short id.
    #[serde(skip)]
    pub display: String,
    pub image: Option<String>,
    /// containerd namespace.
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub pod: Option<PodInfo>,
    pub bundle: Option<String>,
    /// The runc state root the container was found in.
    pub state_root: Option<String>,
    /// Creation time, RFC 3339 in UTC.
    pub created: Option<String>,
    pub init_pid: Option<u32>,
    /// How the init pid was found (and checked).
    pub init_pid_source: String,
    pub cgroup: Option<String>,
    pub cgroup_id: Option<u64>,
    /// Key of the container in the journal.
    pub journal_key: String,
}

/// Namespaces of the container's init.
#[derive(Debug, Clone, Serialize)]
pub struct Namespaces {
    pub pid: u32,
    /// Where the host's namespaces were read.
    pub host_source: Option<HostNsSource>,
    /// `{"mnt": 4026532250, ...}`, as `readlink /proc/<pid>/ns/*` shows them.
    pub inodes: NsSet,
    pub list: Vec<NsShare>,
}

/// One capability set, as in `/proc/<pid>/status` and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SetView {
    #[serde(serialize_with = "ser_hex")]
    pub hex: CapSet,
    pub names: CapSet,
}

fn ser_hex<S: serde::Serializer>(c: &CapSet, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&c.to_hex())
}

impl From<CapSet> for SetView {
    fn from(c: CapSet) -> Self {
        SetView { hex: c, names: c }
    }
}

/// How a set differs from a baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub added: CapSet,
    pub dropped: CapSet,
    /// `adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing`.
    pub summary: String,
}

impl Change {
    fn of(actual: CapSet, baseline: CapSet) -> Change {
        let (added, dropped) = actual.changes_from(baseline);
        Change {
            added,
            dropped,
            summary: data::describe_diff(actual, baseline),
        }
    }
}

/// The effective and bounding sets against a baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// What the baseline is, e.g. `Docker's default set (14 capabilities)`.
    pub baseline: String,
    pub effective: Change,
    pub bounding: Change,
}

/// Capability state of the container's init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub pid: u32,
    pub uid: Option<u32>,
    pub effective: SetView,
    pub permitted: SetView,
    pub bounding: SetView,
    pub inheritable: SetView,
    pub ambient: SetView,
    pub no_new_privs: Option<bool>,
    pub seccomp: Option<SeccompMode>,
    pub seccomp_filters: Option<u32>,
    pub vs_default: Comparison,
    pub vs_host: Option<Comparison>,
    #[serde(skip)]
    pub raw: ProcCaps,
}

/// Recent incidents of the container from the journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incidents {
    pub journal: Option<String>,
    /// `ok`, `no_journal` (no file), `disabled` (`--no-journal`) or `error`.
    pub status: &'static str,
    pub error: Option<String>,
    /// Oldest first, at most [`INCIDENT_LIMIT`].
    pub records: Vec<Incident>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// RFC 3339, UTC.
    pub ts: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub explanation: Option<String>,
    /// The stored NDJSON record.
    pub record: Value,
}

/// How many recent incidents are shown.
pub const INCIDENT_LIMIT: usize = 10;

/// Record types that count as incidents (not metadata updates, losses or stats).
const INCIDENT_TYPES: [&str; 8] = [
    "kill",
    "oom_kill",
    "oom_victim",
    "signal",
    "capability",
    "cpu_throttle",
    "container_start",
    "container_stop",
];

/// The capabilities `runc spec` writes into a new bundle's `config.json`: plain runc's
/// default.
pub const RUNC_SPEC_DEFAULT_CAPS: CapSet = CapSet((1 << 29) | (1 << 5) | (1 << 10));

/// The default capability set of a container's runtime and how to call it.
pub fn runtime_default(runtime: Runtime) -> (CapSet, String) {
    let (set, what) = match runtime {
        Runtime::Docker => (OCI_DEFAULT_CAPS, "Docker's default set"),
        Runtime::Containerd => (OCI_DEFAULT_CAPS, "containerd's default set"),
        Runtime::Runc => (RUNC_SPEC_DEFAULT_CAPS, "the `runc spec` default set"),
        Runtime::CriO | Runtime::Podman => (OCI_DEFAULT_CAPS, "the Docker/containerd default set"),
    };
    (set, format!("{what} ({} capabilities)", set.len()))
}

/// The init pid, how it was found, and whether it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Init {
    pid: Option<u32>,
    source: String,
    alive: bool,
    start_time: Option<u64>,
}

fn start_time(proc_root: &Path, pid: u32) -> io::Result<Option<u64>> {
    match data::read_stat_at(proc_root, pid) {
        Ok(s) => Ok(s.start_time),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `pid` is still the process that started at `start` (clock ticks after boot).
fn same_process(proc_root: &Path, pid: u32, start: Option<u64>) -> bool {
    match start_time(proc_root, pid) {
        Ok(now) => start.is_none() || now.is_none() || now == start,
        Err(_) => false,
    }
}

fn find_init(env: &Env, t: &Target, cgroup: Option<&(PathBuf, Vec<u32>)>) -> Init {
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
            .filter_map(|&p| {
                data::read_stat_at(&env.proc_root, p)
                    .ok()
                    .map(|s| (p, s.ppid))
            })
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
        .find_map(|d| data::read_cgroup_pids(&d).ok().map(|pids| (d, pids)))
}

/// How another container is named in "shared with": its display name, or `namespace/name`
/// (`runtime/name`) when that name is not unique.
fn other_label(o: &Container, me: &Container, others: &[&Target]) -> String {
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
fn proc_error(proc_root: &Path, pid: u32, what: &str, e: &io::Error) -> String {
    let path = proc_root.join(pid.to_string()).join(what);
    if data::is_vanished(e) {
        format!("process {pid} exited while being inspected")
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        format!("cannot read {}: permission denied", path.display())
    } else {
        format!("cannot read {}: {e}", path.display())
    }
}

/// Gather the report of `t`; `others` are the other containers (for shared namespaces).
/// Never fails: what cannot be read is recorded in the report.
pub fn gather(env: &Env, t: &Target, others: &[&Target]) -> Report {
    let c = &t.container;
    let cgroup = cgroup_pids(env, c);
    let init = find_init(env, t, cgroup.as_ref());
    let mut unavailable: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut problems = Vec::new();
    let not_running = || {
        format!(
            "not running{}",
            init.pid
                .map_or_else(String::new, |p| format!(" (init pid {p} has exited)"))
        )
    };

    // Processes: the cgroup's, else the init's descendants.
    let processes = match (&cgroup, init.pid.filter(|_| init.alive)) {
        (Some((_, pids)), _) if !pids.is_empty() => {
            Some(data::process_tree_at(&env.proc_root, pids, &env.users))
        }
        (_, Some(pid)) => Some(data::process_tree_from_root_at(
            &env.proc_root,
            pid,
            &env.users,
        )),
        _ => None,
    }
    .filter(|tree| !tree.nodes.is_empty());
    if processes.is_none() {
        let why = if init.alive {
            "every process exited while being read".to_owned()
        } else {
            not_running()
        };
        unavailable.insert("processes", why);
    }

    let mut namespaces = None;
    let mut capabilities = None;
    match init.pid.filter(|_| init.alive) {
        None => {
            unavailable.insert("namespaces", not_running());
            unavailable.insert("capabilities", not_running());
        }
        Some(pid) => {
            match data::read_ns_at(&env.proc_root, &pid.to_string()) {
                Ok(ns) => {
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
                            let set = data::read_ns_at(&env.proc_root, &opid.to_string()).ok()?;
                            Some((other_label(&o.container, c, others), set))
                        })
                        .collect();
                    let (host, host_source) = match &env.host_ns {
                        Ok(h) => (h.ns, Some(h.source.clone())),
                        Err(_) => (NsSet::default(), None),
                    };
                    namespaces = Some(Namespaces {
                        pid,
                        host_source,
                        inodes: ns,
                        list: data::compare(&ns, &host, &other_sets),
                    });
                }
                Err(e) => {
                    let why = proc_error(&env.proc_root, pid, "ns", &e);
                    problems.push(format!("namespaces: {why}"));
                    unavailable.insert("namespaces", why);
                }
            }
            match data::read_status_at(&env.proc_root, pid) {
                Ok(st) => match st.caps {
                    Some(raw) => {
                        capabilities = Some(caps_report(env, c.runtime, pid, st.uid_effective, raw))
                    }
                    None => {
                        let why = format!("/proc/{pid}/status has no capability lines");
                        problems.push(format!("capabilities: {why}"));
                        unavailable.insert("capabilities", why);
                    }
                },
                Err(e) => {
                    let why = proc_error(&env.proc_root, pid, "status", &e);
                    problems.push(format!("capabilities: {why}"));
                    unavailable.insert("capabilities", why);
                }
            }
        }
    }

    let resources = read_resources(env, c);
    if init.alive {
        problems.extend(resources.problems());
    }
    let incidents = read_incidents(env.journal.as_deref(), &recorder::key(c));

    // The init that ran at the start and is gone now: everything read may be partial.
    if let Some(pid) = init.pid.filter(|_| init.alive) {
        if !same_process(&env.proc_root, pid, init.start_time) {
            let msg = format!("the init process {pid} exited while it was being inspected");
            if !problems.iter().any(|p| p.contains("exited while")) {
                problems.push(msg);
            }
        }
    }

    let meta = t.meta.as_ref();
    Report {
        identity: Identity {
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
        },
        state: if init.alive { "running" } else { "stopped" },
        processes,
        namespaces,
        capabilities,
        resources,
        incidents,
        unavailable,
        problems,
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
    data::read_resources(&env.mounts, |controller| {
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
            limit: Some(INCIDENT_LIMIT),
            ..RecordFilter::default()
        })
    });
    match result {
        Ok(records) => {
            out.records = records
                .into_iter()
                .map(|r| {
                    let record: Value = serde_json::from_str(&r.json).unwrap_or(Value::Null);
                    Incident {
                        ts: rfc3339_ns(r.ts_ns),
                        explanation: Head::deserialize(&record).ok().and_then(|h| h.explanation),
                        kind: r.kind,
                        record,
                    }
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

/// What `--diff` compares, from a report; an [`Exit`] error if the container does not run.
fn view(r: &Report, label: &str) -> anyhow::Result<ContainerView> {
    let (Some(caps), Some(ns)) = (&r.capabilities, &r.namespaces) else {
        let why = r
            .unavailable
            .get("capabilities")
            .or_else(|| r.unavailable.get("namespaces"))
            .cloned()
            .unwrap_or_default();
        return Err(Exit::error(
            1,
            format!(
                "cannot compare {}: {}",
                terminal(&r.identity.display),
                terminal(&why)
            ),
        ));
    };
    Ok(ContainerView {
        label: label.to_owned(),
        caps: caps.raw,
        namespaces: ns.list.clone(),
        memory_limit: r.resources.memory_limit_bytes.clone(),
        cpu_quota_cpus: r.resources.cpu_quota.map(|q| q.cpus()),
        pids_limit: r.resources.pids_limit.clone(),
    })
}

fn diff_json(ra: &Report, rb: &Report, va: &ContainerView, vb: &ContainerView) -> Value {
    let side = |r: &Report, v: &ContainerView| {
        json!({
            "label": v.label,
            "runtime": r.identity.runtime,
            "id": r.identity.id,
            "name": r.identity.name,
            "namespace": r.identity.namespace,
            "init_pid": r.identity.init_pid,
            "view": v,
            "unknown": r.resources.unknown_fields(),
            "problems": r.problems,
        })
    };
    let caps: Vec<Value> = va
        .caps
        .sets()
        .into_iter()
        .zip(vb.caps.sets())
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, a), (_, b))| {
            json!({
                "set": name,
                "only_a": a.difference(b),
                "only_b": b.difference(a),
            })
        })
        .collect();
    json!({
        "a": side(ra, va),
        "b": side(rb, vb),
        "differences": data::diff(va, vb),
        "capabilities": caps,
        "summary": data::cap_summary(va, vb),
    })
}

// ---------------------------------------------------------------------------------------
// Human rendering (pure).

/// Width of wrapped values.
const WIDTH: usize = 100;

/// `key  value` lines, keys padded to one width.
fn kv(out: &mut String, rows: &[(String, String)]) {
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in rows {
        let _ = writeln!(out, "{}", format!("  {k:<w$}  {v}").trim_end());
    }
}

/// A row whose value is a `", "`-separated list, wrapped onto continuation rows.
fn push_wrapped(rows: &mut Vec<(String, String)>, key: &str, value: &str) {
    for (i, line) in tracer::inspect::diff::wrap(value, WIDTH - 16)
        .into_iter()
        .enumerate()
    {
        rows.push((
            if i == 0 {
                key.to_owned()
            } else {
                String::new()
            },
            line,
        ));
    }
}

fn opt(s: Option<&str>) -> String {
    terminal(s.unwrap_or("-"))
}

fn set_line(set: SetView, same_as: Option<(&str, SetView)>) -> String {
    match same_as {
        Some((name, other)) if other == set => format!("same as {name}"),
        _ if set.names.is_empty() => "none".to_owned(),
        _ => format!("{}: {}", set.names.len(), set.names.list()),
    }
}

fn comparison_rows(
    rows: &mut Vec<(String, String)>,
    key: &str,
    c: &Comparison,
    show: impl Fn(&Change, CapSet) -> String,
    (eff, bnd): (CapSet, CapSet),
) {
    let (e, b) = (show(&c.effective, eff), show(&c.bounding, bnd));
    if e == b {
        push_wrapped(rows, key, &e);
    } else {
        push_wrapped(rows, key, &format!("effective: {e}"));
        push_wrapped(rows, "", &format!("bounding: {b}"));
    }
}

/// `adds nothing; drops 25 of the host's 41`: the host's sets are long, the names are in
/// `--json`.
fn host_change(ch: &Change, actual: CapSet) -> String {
    let adds = if ch.added.is_empty() {
        "adds nothing".to_owned()
    } else {
        format!("adds {}", ch.added.list())
    };
    let host = actual.union(ch.dropped).difference(ch.added).len();
    if ch.dropped.is_empty() {
        format!("{adds}; drops nothing")
    } else {
        format!("{adds}; drops {} of the host's {host}", ch.dropped.len())
    }
}

/// Up to five names, then how many more.
fn some_names(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let esc: Vec<String> = names.iter().take(SHOWN).map(|n| terminal(n)).collect();
    if names.len() > SHOWN {
        format!("{} and {} more", esc.join(", "), names.len() - SHOWN)
    } else {
        esc.join(", ")
    }
}

/// The human report. Pure; every string from a container or the kernel is escaped.
pub fn render(r: &Report) -> String {
    let id = &r.identity;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  ({} {}, {})",
        terminal(&id.display),
        id.runtime,
        terminal(short_id(&id.id)),
        r.state
    );

    out.push_str("\nidentity\n");
    let mut rows: Vec<(String, String)> = vec![
        ("runtime".into(), id.runtime.to_string()),
        ("id".into(), terminal(&id.id)),
        ("name".into(), opt(id.name.as_deref())),
        ("image".into(), opt(id.image.as_deref())),
    ];
    if let Some(ns) = &id.namespace {
        rows.push(("namespace".into(), terminal(ns)));
    }
    if let Some(p) = &id.pod {
        rows.push((
            "pod".into(),
            terminal(&format!(
                "{}/{}{}",
                p.namespace,
                p.name,
                p.container
                    .as_deref()
                    .map_or_else(String::new, |c| format!(" container {c}"))
            )),
        ));
    }
    rows.push((
        "created".into(),
        id.created.as_deref().map_or_else(
            || "-".to_owned(),
            |c| parse_rfc3339(c).map_or_else(|| terminal(c), utc_seconds),
        ),
    ));
    rows.push(("bundle".into(), opt(id.bundle.as_deref())));
    rows.push(("state root".into(), opt(id.state_root.as_deref())));
    rows.push((
        "init pid".into(),
        format!(
            "{}, from {}",
            id.init_pid
                .map_or_else(|| "-".to_owned(), |p| p.to_string()),
            terminal(&id.init_pid_source)
        ),
    ));
    rows.push((
        "cgroup".into(),
        format!(
            "{}{}",
            opt(id.cgroup.as_deref()),
            id.cgroup_id
                .map_or_else(String::new, |i| format!(" (cgroup v2 id {i})"))
        ),
    ));
    rows.push(("journal key".into(), terminal(&id.journal_key)));
    if id.labels.is_empty() {
        rows.push(("labels".into(), "none".into()));
    }
    for (i, (k, v)) in id.labels.iter().enumerate() {
        let key = if i == 0 { "labels" } else { "" };
        // One label per line: a label value may itself contain ", ".
        rows.push((key.into(), terminal(&format!("{k}={v}"))));
    }
    kv(&mut out, &rows);

    out.push_str("\nprocesses  (host pids; ns:N = pid inside the container)\n");
    match &r.processes {
        Some(tree) => {
            for line in data::render_tree(tree).lines() {
                let _ = writeln!(out, "  {line}");
            }
            if !tree.vanished.is_empty() {
                let pids: Vec<String> = tree.vanished.iter().map(u32::to_string).collect();
                let _ = writeln!(
                    out,
                    "  ({} exited while being read: {})",
                    if pids.len() == 1 {
                        "1 process"
                    } else {
                        "processes"
                    },
                    pids.join(", ")
                );
            }
        }
        None => section_unavailable(&mut out, r, "processes"),
    }

    match &r.namespaces {
        Some(ns) => {
            let host = match &ns.host_source {
                Some(HostNsSource::Pid1) => "host = pid 1's".to_owned(),
                Some(HostNsSource::CurrentProcess { reason }) => {
                    format!("host = ctrace's own, {}", terminal(reason))
                }
                None => "host namespaces unknown".to_owned(),
            };
            let _ = writeln!(out, "\nnamespaces  (of pid {}; {host})", ns.pid);
            let mut rows = Vec::new();
            for s in &ns.list {
                let mut shared = match (s.shared_with_host, s.shared_with.is_empty()) {
                    (true, true) => "host".to_owned(),
                    (false, true) => "own".to_owned(),
                    (true, false) => format!("host, shared with {}", some_names(&s.shared_with)),
                    (false, false) => format!("shared with {}", some_names(&s.shared_with)),
                };
                if s.is_unusual_host_share() {
                    let _ = write!(
                        shared,
                        "  (containers get their own by default: e.g. --{} host)",
                        match s.ns_type {
                            NsType::Net => "network",
                            t => t.as_str(),
                        }
                    );
                }
                rows.push((s.ns_type.to_string(), format!("{:<11} {shared}", s.inode)));
            }
            kv(&mut out, &rows);
        }
        None => {
            out.push_str("\nnamespaces\n");
            section_unavailable(&mut out, r, "namespaces");
        }
    }

    match &r.capabilities {
        Some(c) => {
            let _ = writeln!(
                out,
                "\ncapabilities  (of pid {}{})",
                c.pid,
                c.uid.map_or_else(String::new, |u| format!(", uid {u}"))
            );
            let mut rows = Vec::new();
            push_wrapped(&mut rows, "effective", &set_line(c.effective, None));
            let same = Some(("effective", c.effective));
            push_wrapped(&mut rows, "permitted", &set_line(c.permitted, same));
            push_wrapped(&mut rows, "bounding", &set_line(c.bounding, same));
            push_wrapped(&mut rows, "inheritable", &set_line(c.inheritable, None));
            push_wrapped(&mut rows, "ambient", &set_line(c.ambient, None));
            let sets = (c.effective.names, c.bounding.names);
            let summary = |ch: &Change, _: CapSet| ch.summary.clone();
            comparison_rows(&mut rows, "vs default", &c.vs_default, summary, sets);
            rows.push((
                String::new(),
                format!("(against {})", c.vs_default.baseline),
            ));
            if let Some(h) = &c.vs_host {
                comparison_rows(&mut rows, "vs host", h, host_change, sets);
                rows.push((
                    String::new(),
                    format!("(against {}; --json names them)", terminal(&h.baseline)),
                ));
            }
            rows.push((
                "no_new_privs".to_owned(),
                match c.no_new_privs {
                    Some(true) => "yes".to_owned(),
                    Some(false) => "no".to_owned(),
                    None => "unknown".to_owned(),
                },
            ));
            rows.push((
                "seccomp".to_owned(),
                match (c.seccomp, c.seccomp_filters) {
                    (None, _) => "unknown".to_owned(),
                    (Some(m), Some(n)) if n > 0 => {
                        format!("{m} ({n} filter{})", if n == 1 { "" } else { "s" })
                    }
                    (Some(m), _) => m.to_string(),
                },
            ));
            kv(&mut out, &rows);
        }
        None => {
            out.push_str("\ncapabilities\n");
            section_unavailable(&mut out, r, "capabilities");
        }
    }

    out.push_str("\nresources\n");
    let rows: Vec<(String, String)> = r
        .resources
        .rows()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), terminal(&v)))
        .collect();
    kv(&mut out, &rows);

    let inc = &r.incidents;
    match (inc.status, inc.journal.as_deref()) {
        ("disabled", _) | (_, None) => {
            out.push_str("\nrecent incidents\n  not read (--no-journal)\n");
        }
        ("no_journal", Some(j)) => {
            let _ = writeln!(out, "\nrecent incidents\n  no journal at {}", terminal(j));
        }
        ("error", Some(j)) => {
            let _ = writeln!(
                out,
                "\nrecent incidents  (journal {})\n  unreadable: {}",
                terminal(j),
                terminal(inc.error.as_deref().unwrap_or("unknown error"))
            );
        }
        (_, Some(j)) => {
            let _ = writeln!(out, "\nrecent incidents  (journal {}, UTC)", terminal(j));
            if inc.records.is_empty() {
                out.push_str("  none recorded\n");
            }
            for i in &inc.records {
                let when = parse_rfc3339(&i.ts).map_or_else(|| i.ts.clone(), utc_seconds);
                let _ = writeln!(
                    out,
                    "  {}  {:<15} {}",
                    when.trim_end_matches(" UTC"),
                    terminal(&i.kind),
                    terminal(i.explanation.as_deref().unwrap_or(""))
                );
            }
        }
    }
    if !r.problems.is_empty() {
        out.push_str("\nincomplete\n");
        for p in &r.problems {
            let _ = writeln!(out, "  {}", terminal(p));
        }
    }
    out
}

fn section_unavailable(out: &mut String, r: &Report, section: &str) {
    let why = r
        .unavailable
        .get(section)
        .map_or("unavailable", String::as_str);
    let _ = writeln!(out, "  {}", terminal(why));
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use tracer::journal::{Entry, JournalOptions, Record};

    /// A scratch directory laid out like /proc.
    struct Fake(PathBuf);

    impl Fake {
        fn new(tag: &str) -> Fake {
            let d = std::env::temp_dir()
                .join(format!("ctrace-cli-inspect-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Fake(d)
        }

        fn stat(&self, pid: u32, ppid: u32, start: u64, comm: &str) {
            let d = self.0.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("stat"),
                format!(
                    "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0"
                ),
            )
            .unwrap();
            std::fs::write(d.join("cmdline"), format!("{comm}\0")).unwrap();
        }

        fn status(&self, pid: u32, ppid: u32, caps: &str, nnp: u8, seccomp: u8) {
            let text = format!(
                "Name:\tx\nState:\tS (sleeping)\nPPid:\t{ppid}\nUid:\t0\t0\t0\t0\n\
                 NSpid:\t{pid}\t1\nThreads:\t1\nCapInh:\t0000000000000000\nCapPrm:\t{caps}\n\
                 CapEff:\t{caps}\nCapBnd:\t{caps}\nCapAmb:\t0000000000000000\n\
                 NoNewPrivs:\t{nnp}\nSeccomp:\t{seccomp}\nSeccomp_filters:\t{}\n",
                u8::from(seccomp == 2)
            );
            std::fs::write(self.0.join(pid.to_string()).join("status"), text).unwrap();
        }

        /// A cgroup directory `<root>/cgroup/<rel>` with these files.
        fn cgroup(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
            let d = self.0.join("cgroup").join(rel);
            std::fs::create_dir_all(&d).unwrap();
            for (name, text) in files {
                std::fs::write(d.join(name), text).unwrap();
            }
            d
        }

        /// The v2 cgroup of container `id` (at `/ctr/<short id>`, see [`container`]): no
        /// limits, 1 MiB and 2 tasks in use.
        fn cgroup_unlimited(&self, id: &str) -> PathBuf {
            self.cgroup(
                &format!("v2/ctr/{}", short_id(id)),
                &[
                    ("cgroup.controllers", "cpuset cpu io memory pids\n"),
                    ("memory.max", "max\n"),
                    ("memory.current", "1048576\n"),
                    ("cpu.max", "max 100000\n"),
                    ("pids.max", "max\n"),
                    ("pids.current", "2\n"),
                ],
            )
        }

        fn ns(&self, pid: &str, inodes: &[(&str, u64)]) {
            let d = self.0.join(pid).join("ns");
            std::fs::create_dir_all(&d).unwrap();
            for (t, i) in inodes {
                symlink(format!("{t}:[{i}]"), d.join(t)).unwrap();
            }
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const HOST_NS: [(&str, u64); 4] = [
        ("mnt", 4026531841),
        ("pid", 4026531836),
        ("net", 4026531840),
        ("user", 4026531837),
    ];

    /// The host (pid 1, full capabilities), a shim (100) and two containers: `priv` (init
    /// 101, child 102, `--cap-add SYS_ADMIN,NET_ADMIN`) and `other` (init 201) in priv's net
    /// namespace and the host's pid namespace.
    fn lab(tag: &str) -> Fake {
        let f = Fake::new(tag);
        f.stat(1, 0, 1, "init");
        f.status(1, 0, "000001ffffffffff", 0, 0);
        f.ns("1", &HOST_NS);
        f.stat(100, 1, 500, "containerd-shim");
        f.stat(101, 100, 600, "sh");
        f.status(101, 100, "00000000a82435fb", 0, 2);
        f.ns(
            "101",
            &[
                ("mnt", 4026532250),
                ("pid", 4026532253),
                ("net", 4026532254),
                ("user", 4026531837),
            ],
        );
        f.stat(102, 101, 700, "sleep");
        f.stat(201, 100, 800, "sleep");
        f.status(201, 100, "00000000a80425fb", 1, 0);
        f.ns(
            "201",
            &[
                ("mnt", 4026532300),
                ("pid", 4026531836),
                ("net", 4026532254),
                ("user", 4026531837),
            ],
        );
        f.cgroup_unlimited(ID);
        f.cgroup_unlimited(&"b".repeat(64));
        f
    }

    fn container(runtime: Runtime, id: &str, name: &str, init: Option<u32>) -> Arc<Container> {
        Arc::new(Container {
            image: Some("busybox:local".to_owned()),
            namespace: (runtime == Runtime::Containerd).then(|| "default".to_owned()),
            labels: BTreeMap::from([("team".to_owned(), "lab".to_owned())]),
            init_pid: init,
            cgroup_path: Some(format!("/ctr/{}", short_id(id))),
            ..Container::named(id, name, runtime)
        })
    }

    fn target(c: Arc<Container>, init_start: Option<u64>) -> Target {
        let meta = ContainerMeta {
            runtime: c.runtime,
            id: c.id.clone(),
            name: None,
            image: None,
            namespace: c.namespace.clone(),
            labels: BTreeMap::new(),
            pod: None,
            init_pid: c.init_pid,
            init_start,
            created: Some("2026-11-29T19:49:00.5+01:00".to_owned()),
            cgroup_path: None,
            cgroup_paths: BTreeMap::new(),
            cgroup_id: None,
            state_root: PathBuf::from("/run/docker/runtime-runc/moby"),
            bundle: Some(PathBuf::from("/bundles/x")),
        };
        Target {
            container: c,
            cgroup_id: Some(5440),
            meta: Some(meta),
        }
    }

    /// `f` as /proc, with a pure cgroup v2 host's hierarchy at `<f>/cgroup/v2`.
    fn fake_env(f: &Fake) -> Env {
        env_with(
            f,
            Mounts {
                v2: Some(f.0.join("cgroup/v2")),
                v1: BTreeMap::new(),
            },
        )
    }

    fn env_with(f: &Fake, mounts: Mounts) -> Env {
        Env::at(&f.0, mounts, UserNames::parse("root:x:0:0::/:/x\n"), None)
    }

    const ID: &str = "1ed420fa5c1511425c7bf853c958814ba3a162f6f81dafaa9907f607a2eb2975";

    #[test]
    fn running_container_report_and_render() {
        let f = lab("running");
        let env = fake_env(&f);
        let t = target(container(Runtime::Docker, ID, "priv", Some(101)), Some(600));
        let o = target(
            container(Runtime::Docker, "b".repeat(64).as_str(), "other", Some(201)),
            Some(800),
        );
        let r = gather(&env, &t, &[&o]);
        assert_eq!(r.state, "running");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(r.unavailable.is_empty(), "{:?}", r.unavailable);
        assert_eq!(
            r.identity.created.as_deref(),
            Some("2026-11-29T18:49:00.500000000Z")
        );
        assert!(
            r.identity
                .init_pid_source
                .contains("state.json (start time matches"),
            "{}",
            r.identity.init_pid_source
        );
        let caps = r.capabilities.as_ref().unwrap();
        assert_eq!(
            caps.vs_default.effective.summary,
            "adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing"
        );
        assert_eq!(
            caps.vs_host.as_ref().unwrap().effective.added,
            CapSet::EMPTY
        );
        let ns = r.namespaces.as_ref().unwrap();
        let net = ns.list.iter().find(|s| s.ns_type == NsType::Net).unwrap();
        assert_eq!(net.shared_with, ["other"]);
        assert!(!net.shared_with_host);
        let user = ns.list.iter().find(|s| s.ns_type == NsType::User).unwrap();
        assert!(user.shared_with_host);
        let tree = r.processes.as_ref().unwrap();
        let pids: Vec<u32> = tree.nodes.iter().map(|n| n.pid).collect();
        assert_eq!(pids, [101, 102]);
        assert_eq!(tree.ancestors[0].pid, 100);

        let text = render(&r);
        for want in [
            "priv  (docker 1ed420fa5c15, running)\n",
            "  created      2026-11-29 18:49:00 UTC\n",
            "  bundle       /bundles/x\n",
            "  state root   /run/docker/runtime-runc/moby\n",
            "  cgroup       /ctr/1ed420fa5c15 (cgroup v2 id 5440)\n",
            "  labels       team=lab\n",
            "  100 ? S containerd-shim [outside]\n  └─ 101 ns:1 root S sh\n     └─ 102 ? S sleep\n",
            "  net   4026532254  shared with other\n",
            "  user  4026531837  host, shared with other\n",
            "  vs default    adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing\n",
            "                (against Docker's default set (14 capabilities))\n",
            "  vs host       adds nothing; drops 25 of the host's 41\n",
            "  no_new_privs  no\n",
            "  seccomp       filter (1 filter)\n",
            "  memory  limit unlimited, usage 1 MiB\n",
            "  cpu     no quota\n",
            "  pids    limit unlimited, 2 now\n",
            "recent incidents\n  not read (--no-journal)\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        // Effective list wrapped within the width.
        assert!(text
            .lines()
            .all(|l| l.chars().count() <= WIDTH || l.contains("init pid")));

        // The other container: --pid host is named as unusual.
        let r2 = gather(&env, &o, &[&t]);
        let text = render(&r2);
        assert!(
            text.contains("  pid   4026531836  host  (containers get their own by default: e.g. --pid host)\n"),
            "{text}"
        );
        assert!(
            text.contains("  no_new_privs  yes\n  seccomp       disabled\n"),
            "{text}"
        );

        // --diff of the two.
        let (la, lb) = labels(&t.container, &o.container);
        let (va, vb) = (view(&r, &la).unwrap(), view(&r2, &lb).unwrap());
        let side = data::render_side_by_side(&va, &vb);
        assert!(
            side.contains("adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing"),
            "{side}"
        );
        assert!(side.contains("pid namespace"), "{side}");
        let j = diff_json(&r, &r2, &va, &vb);
        assert_eq!(j["capabilities"][0]["set"], "effective");
        assert_eq!(
            j["capabilities"][0]["only_a"],
            json!(["CAP_NET_ADMIN", "CAP_SYS_ADMIN"])
        );

        // JSON: hex and names of every set, namespace inodes as a map.
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["capabilities"]["effective"]["hex"], "00000000a82435fb");
        assert_eq!(v["capabilities"]["ambient"]["names"], json!([]));
        assert_eq!(v["namespaces"]["inodes"]["net"], 4026532254u64);
        assert_eq!(v["state"], "running");
        assert_eq!(v["identity"]["journal_key"], format!("docker/{ID}"));
    }

    /// Lines of the `resources` section.
    fn resources_section(text: &str) -> String {
        let start = text.find("\nresources\n").expect("resources section") + 11;
        let end = text[start..]
            .find("\n\n")
            .map_or(text.len(), |e| start + e + 1);
        text[start..end].to_owned()
    }

    #[test]
    fn resources_v2_limits_and_unreadable_files() {
        let f = lab("res-v2");
        let env = fake_env(&f);
        let d = f.cgroup(
            &format!("v2/ctr/{}", short_id(ID)),
            &[
                ("memory.max", "67108864\n"),
                ("memory.current", "2097152\n"),
                ("cpu.max", "50000 100000\n"),
                ("pids.max", "50\n"),
                ("pids.current", "3\n"),
            ],
        );
        let t = target(container(Runtime::Docker, ID, "lim", Some(101)), Some(600));
        let r = gather(&env, &t, &[]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(incomplete(&r).is_ok());
        assert_eq!(
            resources_section(&render(&r)),
            "  memory  limit 64 MiB, usage 2 MiB\n\
             \x20 cpu     quota 0.5 CPU (50000 µs every 100000 µs)\n\
             \x20 pids    limit 50, 3 now\n"
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["resources"],
            json!({
                "memory_limit_bytes": 64 << 20,
                "memory_usage_bytes": 2 << 20,
                "cpu_quota_cpus": 0.5,
                "cpu_quota_us": 50000,
                "cpu_period_us": 100000,
                "pids_limit": 50,
                "pids_current": 3,
                "memory_parent_limit": null,
                "unknown": {},
            })
        );

        // Garbage, a file that cannot be read (a directory in its place), a missing file.
        std::fs::write(d.join("memory.max"), "lots\n").unwrap();
        std::fs::remove_file(d.join("pids.max")).unwrap();
        std::fs::create_dir(d.join("pids.max")).unwrap();
        std::fs::remove_file(d.join("cpu.max")).unwrap();
        let r = gather(&env, &t, &[]);
        let p = |file: &str| d.join(file).display().to_string();
        let garbage = format!("{}: not a number: \"lots\"", p("memory.max"));
        let missing = format!("{} does not exist", p("cpu.max"));
        let section = resources_section(&render(&r));
        let lines: Vec<&str> = section.lines().collect();
        assert_eq!(
            lines[0],
            format!("  memory  limit unknown ({garbage}), usage 2 MiB")
        );
        assert_eq!(lines[1], format!("  cpu     quota unknown ({missing})"));
        assert!(
            lines[2].starts_with(&format!(
                "  pids    limit unknown (cannot read {}: ",
                p("pids.max")
            )),
            "{section}"
        );
        assert!(lines[2].ends_with("), 3 now"), "{section}");
        assert!(!section.contains("unlimited") && !section.contains("no quota"));
        // In the report's problems, so in the "incomplete" section and the exit code.
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        assert_eq!(
            r.problems[0],
            format!("resources: memory limit unknown: {garbage}")
        );
        assert_eq!(
            r.problems[1],
            format!("resources: cpu quota unknown: {missing}")
        );
        assert!(r.problems[2].starts_with("resources: pids limit unknown: cannot read "));
        let text = render(&r);
        assert!(
            text.contains(&format!(
                "\nincomplete\n  resources: memory limit unknown: {garbage}\n"
            )),
            "{text}"
        );
        let e = incomplete(&r).unwrap_err();
        let exit = e.downcast_ref::<Exit>().unwrap();
        assert_eq!(exit.code, 1);
        assert!(exit.message.contains(&garbage), "{}", exit.message);
        // JSON: null, with the reason under `unknown` and in `problems`.
        let v = serde_json::to_value(&r).unwrap();
        let res = &v["resources"];
        for f in [
            "memory_limit_bytes",
            "cpu_quota_cpus",
            "cpu_quota_us",
            "cpu_period_us",
            "pids_limit",
        ] {
            assert!(res[f].is_null(), "{f}: {res}");
            assert!(res["unknown"][f].is_string(), "{f}: {res}");
        }
        assert_eq!(res["unknown"]["memory_limit_bytes"], garbage);
        assert_eq!(res["unknown"]["cpu_period_us"], missing);
        assert_eq!(res["memory_usage_bytes"], 2 << 20);
        assert_eq!(res["pids_current"], 3);
        assert_eq!(res["unknown"].as_object().unwrap().len(), 5);
        assert_eq!(
            v["problems"][0],
            format!("resources: memory limit unknown: {garbage}")
        );

        // --diff: an unknown limit is a difference, shown with its reason.
        let o = target(
            container(Runtime::Docker, "b".repeat(64).as_str(), "other", Some(201)),
            Some(800),
        );
        let r2 = gather(&env, &o, &[&t]);
        let (va, vb) = (view(&r, "lim").unwrap(), view(&r2, "other").unwrap());
        let rows = data::diff(&va, &vb);
        let mem = rows.iter().find(|x| x.field == "memory limit").unwrap();
        assert_eq!(mem.a, format!("unknown ({garbage})"));
        assert_eq!(mem.b, "unlimited");
        let j = diff_json(&r, &r2, &va, &vb);
        assert!(j["a"]["view"]["memory_limit"].is_null());
        assert_eq!(j["a"]["unknown"]["memory_limit_bytes"], garbage);
        assert_eq!(j["a"]["problems"].as_array().unwrap().len(), 3);
        assert_eq!(j["b"]["unknown"], json!({}));
    }

    #[test]
    fn resources_v1_limits_and_unlimited() {
        let f = lab("res-v1");
        let root = f.0.join("cgroup");
        let env = env_with(
            &f,
            Mounts {
                v2: Some(root.join("unified")),
                v1: [
                    ("memory", "memory"),
                    ("cpu", "cpu,cpuacct"),
                    ("cpuacct", "cpu,cpuacct"),
                    ("pids", "pids"),
                ]
                .into_iter()
                .map(|(c, d)| (c.to_owned(), root.join(d)))
                .collect(),
            },
        );
        let rel = format!("ctr/{}", short_id(ID));
        let mem = f.cgroup(
            &format!("memory/{rel}"),
            &[
                ("memory.limit_in_bytes", "134217728\n"),
                ("memory.usage_in_bytes", "1536\n"),
            ],
        );
        let cpu = f.cgroup(
            &format!("cpu,cpuacct/{rel}"),
            &[
                ("cpu.cfs_quota_us", "150000\n"),
                ("cpu.cfs_period_us", "100000\n"),
            ],
        );
        let pids = f.cgroup(
            &format!("pids/{rel}"),
            &[("pids.max", "100\n"), ("pids.current", "4\n")],
        );
        let t = target(container(Runtime::Docker, ID, "v1", Some(101)), Some(600));
        let r = gather(&env, &t, &[]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(
            resources_section(&render(&r)),
            "  memory  limit 128 MiB, usage 1.5 KiB\n\
             \x20 cpu     quota 1.5 CPUs (150000 µs every 100000 µs)\n\
             \x20 pids    limit 100, 4 now\n"
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["resources"]["memory_limit_bytes"], 128 << 20);
        assert_eq!(v["resources"]["cpu_quota_cpus"], 1.5);
        assert_eq!(v["resources"]["cpu_quota_us"], 150000);
        assert_eq!(v["resources"]["cpu_period_us"], 100000);
        assert_eq!(v["resources"]["pids_limit"], 100);

        // No limits, as v1 writes them: the page-rounded i64::MAX, -1, max.
        std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(cpu.join("cpu.cfs_quota_us"), "-1\n").unwrap();
        std::fs::write(pids.join("pids.max"), "max\n").unwrap();
        let r = gather(&env, &t, &[]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(
            resources_section(&render(&r)),
            "  memory  limit unlimited, usage 1.5 KiB\n\
             \x20 cpu     no quota\n\
             \x20 pids    limit unlimited, 4 now\n"
        );
        let v = serde_json::to_value(&r).unwrap();
        let res = &v["resources"];
        for f in [
            "memory_limit_bytes",
            "cpu_quota_cpus",
            "cpu_quota_us",
            "cpu_period_us",
            "pids_limit",
        ] {
            assert!(res[f].is_null(), "{f}: {res}");
        }
        assert_eq!(res["unknown"], json!({}));

        // Missing files: unknown, not unlimited.
        std::fs::remove_file(mem.join("memory.limit_in_bytes")).unwrap();
        std::fs::remove_file(mem.join("memory.usage_in_bytes")).unwrap();
        std::fs::write(cpu.join("cpu.cfs_quota_us"), "20000\n").unwrap();
        std::fs::remove_file(cpu.join("cpu.cfs_period_us")).unwrap();
        std::fs::remove_dir_all(&pids).unwrap();
        let r = gather(&env, &t, &[]);
        let gone = |d: &Path, file: &str| format!("{} does not exist", d.join(file).display());
        let no_dir = format!("cgroup directory {} does not exist", pids.display());
        assert_eq!(
            resources_section(&render(&r)),
            format!(
                "  memory  limit unknown ({}), usage unknown ({})\n\
                 \x20 cpu     quota unknown ({})\n\
                 \x20 pids    limit and count unknown ({no_dir})\n",
                gone(&mem, "memory.limit_in_bytes"),
                gone(&mem, "memory.usage_in_bytes"),
                gone(&cpu, "cpu.cfs_period_us"),
            )
        );
        assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
        assert_eq!(
            r.problems[3],
            format!("resources: pids limit and pids count unknown: {no_dir}")
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["resources"]["unknown"]["pids_current"], no_dir);
        assert_eq!(
            v["resources"]["unknown"]["memory_usage_bytes"],
            gone(&mem, "memory.usage_in_bytes")
        );
        assert_eq!(
            incomplete(&r)
                .unwrap_err()
                .downcast_ref::<Exit>()
                .unwrap()
                .code,
            1
        );
    }

    #[test]
    fn resources_of_a_stopped_container_are_not_problems() {
        let f = lab("res-stopped");
        let env = fake_env(&f);
        let t = target(
            container(Runtime::Containerd, "c1", "c1", Some(4242)),
            Some(1),
        );
        let r = gather(&env, &t, &[]);
        assert_eq!(r.state, "stopped");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let why = format!(
            "cgroup directory {} does not exist",
            f.0.join("cgroup/v2/ctr/c1").display()
        );
        assert_eq!(
            resources_section(&render(&r)),
            format!(
                "  memory  limit and usage unknown ({why})\n\
                 \x20 cpu     quota unknown ({why})\n\
                 \x20 pids    limit and count unknown ({why})\n"
            )
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["resources"]["unknown"]["memory_limit_bytes"], why);
        assert!(v["resources"]["memory_limit_bytes"].is_null());
        // No cgroup path at all.
        let mut c = (*container(Runtime::Runc, "c3", "c3", None)).clone();
        c.cgroup_path = None;
        let r = gather(&env, &target(Arc::new(c), None), &[]);
        assert!(resources_section(&render(&r)).starts_with(
            "  memory  limit and usage unknown (the container's cgroup path is unknown)\n"
        ));
    }

    #[test]
    fn stopped_and_reused_pids_are_not_running() {
        let f = lab("stopped");
        let env = fake_env(&f);
        // Init pid 4242 is gone.
        let t = target(
            container(Runtime::Containerd, "c1", "c1", Some(4242)),
            Some(1),
        );
        let r = gather(&env, &t, &[]);
        assert_eq!(r.state, "stopped");
        assert!(r.problems.is_empty());
        assert_eq!(
            r.unavailable["capabilities"],
            "not running (init pid 4242 has exited)"
        );
        assert!(r
            .identity
            .init_pid_source
            .ends_with("process 4242 no longer exists"));
        let text = render(&r);
        assert!(
            text.contains("\ncapabilities\n  not running (init pid 4242 has exited)\n"),
            "{text}"
        );
        assert!(incomplete(&r).is_ok());
        assert!(view(&r, "c1").is_err());
        // Pid 201 exists but started later than the container's init: pid reuse.
        let t = target(container(Runtime::Runc, "c2", "c2", Some(201)), Some(5));
        let r = gather(&env, &t, &[]);
        assert_eq!(r.state, "stopped");
        assert!(r.identity.init_pid_source.contains("start time differs"));
        assert!(r.capabilities.is_none() && r.processes.is_none());
        // No init pid at all and no cgroup.
        let t = target(container(Runtime::Runc, "c3", "c3", None), None);
        let r = gather(&env, &t, &[]);
        assert_eq!(r.state, "stopped");
        assert!(r.identity.init_pid.is_none());
    }

    #[test]
    fn init_exiting_mid_inspect_is_reported_not_a_panic() {
        let f = lab("midway");
        // 301 has a stat (so it runs when found) but status and ns are gone, as when the
        // process exits between two reads.
        f.stat(301, 100, 900, "sleep");
        let env = fake_env(&f);
        let t = target(
            container(Runtime::Docker, ID, "dying", Some(301)),
            Some(900),
        );
        let r = gather(&env, &t, &[]);
        assert_eq!(r.state, "running");
        assert_eq!(
            r.problems,
            [
                "namespaces: process 301 exited while being inspected",
                "capabilities: process 301 exited while being inspected"
            ]
        );
        let e = incomplete(&r).unwrap_err();
        let exit = e.downcast_ref::<Exit>().unwrap();
        assert_eq!(exit.code, 1);
        assert!(exit
            .message
            .starts_with("inspection of dying is incomplete: "));
        let text = render(&r);
        assert!(text.contains("\nincomplete\n"), "{text}");
        // Gone between the first look and the end: also reported.
        let f2 = lab("midway2");
        f2.stat(302, 100, 900, "sleep");
        let env2 = fake_env(&f2);
        std::fs::remove_dir_all(f2.0.join("302")).unwrap();
        let init = Init {
            pid: Some(302),
            source: String::new(),
            alive: true,
            start_time: Some(900),
        };
        assert!(!same_process(&env2.proc_root, 302, init.start_time));
    }

    #[test]
    fn proc_errors_read_clearly() {
        let root = Path::new("/proc");
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            proc_error(root, 7, "ns", &eacces),
            "cannot read /proc/7/ns: permission denied"
        );
        let esrch = io::Error::from_raw_os_error(libc::ESRCH);
        assert_eq!(
            proc_error(root, 7, "status", &esrch),
            "process 7 exited while being inspected"
        );
        let other = io::Error::from_raw_os_error(libc::EIO);
        assert!(proc_error(root, 7, "status", &other).starts_with("cannot read /proc/7/status: "));
    }

    #[test]
    fn clashing_names_are_qualified() {
        let me = container(Runtime::Docker, ID, "me", Some(1));
        let a = container(Runtime::Containerd, "web", "web", Some(2));
        let mut b = (*container(Runtime::Containerd, "web", "web", Some(3))).clone();
        b.namespace = Some("other".to_owned());
        let d = container(Runtime::Runc, "db", "db", Some(4));
        let ts: Vec<Target> = [a, Arc::new(b), d]
            .into_iter()
            .map(|c| target(c, None))
            .collect();
        let others: Vec<&Target> = ts.iter().collect();
        assert_eq!(other_label(&ts[0].container, &me, &others), "default/web");
        assert_eq!(other_label(&ts[1].container, &me, &others), "other/web");
        assert_eq!(other_label(&ts[2].container, &me, &others), "db");
        let same = container(Runtime::Runc, "db2", "db", Some(5));
        assert_eq!(other_label(&ts[2].container, &same, &others), "runc/db");
    }

    #[test]
    fn selection_rules() {
        let a = container(Runtime::Docker, ID, "web", Some(1));
        let b = container(Runtime::Containerd, "web", "web", Some(2));
        let mut c = (*container(Runtime::Containerd, "web", "web", Some(3))).clone();
        c.namespace = Some("other".to_owned());
        let d = container(Runtime::Runc, "1ed4-runc", "db", Some(4));
        let all: Vec<&Container> = vec![&a, &b, &c, &d];
        let select = |all: &[&Container], p: &str| match Selector::parse(p) {
            Ok(s) => s.best_indices(all).map(|(_, hits)| hits),
            Err(_) => None,
        };
        let one = |all: &[&Container], p: &str| Selector::parse(p).unwrap().resolve(all);
        assert_eq!(select(&all, "nope"), None);
        assert_eq!(select(&all, ""), None);
        // Three containers named "web" (ids of b and c are "web" too): the ids win.
        assert_eq!(select(&all, "web"), Some(vec![1, 2]));
        assert!(matches!(
            one(&all, "web"),
            Err(SelectError::Ambiguous { candidates, .. }) if candidates.len() == 2
        ));
        assert_eq!(one(&all, "other/web"), Ok(2));
        assert_eq!(one(&all, "containerd/default/web"), Ok(1));
        assert_eq!(one(&all, &format!("docker/{ID}")), Ok(0));
        assert_eq!(one(&all, "docker/web"), Ok(0));
        assert_eq!(one(&all, ID), Ok(0));
        assert_eq!(one(&all, "db"), Ok(3));
        // Prefixes: 3 characters or more; several hits are ambiguous.
        assert_eq!(one(&all, "1ed420"), Ok(0));
        assert_eq!(select(&all, "1ed"), Some(vec![0, 3]));
        assert_eq!(select(&all, "1e"), None);
        // An exact name wins over an id prefix.
        let e = container(Runtime::Runc, "dbx", "x", Some(5));
        assert_eq!(one(&[&d, &e], "db"), Ok(0));
    }

    /// Dates as runtimes write them are parsed by `clock` (tested there); what inspect adds is
    /// refusing what is not one, and its own way of showing a time.
    #[test]
    fn rfc3339() {
        for bad in [
            "",
            "2026-11-29",
            "2026-13-01T00:00:00Z",
            "2026-11-29T18:38:13",
            "2026-11-29T18:38:13.Z",
            "2026-11-29T25:00:00Z",
            "2026-11-29T18:38:13+0100",
            "2026-11-29T18:38:13Zjunk",
            "２026-11-29T18:38:13Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(utc_seconds(0), "1970-01-01 00:00:00 UTC");
    }

    #[test]
    fn defaults_and_formatting() {
        let (runc, what) = runtime_default(Runtime::Runc);
        assert_eq!(
            runc.names(),
            ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
        );
        assert_eq!(what, "the `runc spec` default set (3 capabilities)");
        assert_eq!(runtime_default(Runtime::Docker).0, OCI_DEFAULT_CAPS);
        let ch = Change::of(CapSet(0b0110), CapSet(0b1011));
        assert_eq!(
            host_change(&ch, CapSet(0b0110)),
            "adds CAP_DAC_READ_SEARCH; drops 2 of the host's 3"
        );
        let none = Change::of(CapSet(1), CapSet(1));
        assert_eq!(host_change(&none, CapSet(1)), "adds nothing; drops nothing");
        let names: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
        assert_eq!(some_names(&names), "c0, c1, c2, c3, c4 and 2 more");
        assert_eq!(some_names(&names[..2]), "c0, c1");
    }

    #[test]
    fn untrusted_strings_are_escaped() {
        let f = lab("escape");
        let env = fake_env(&f);
        let mut c = (*container(Runtime::Runc, "evil", "evil\u{1b}[2J", Some(101))).clone();
        c.labels.insert("k\u{1b}".to_owned(), "v\n".to_owned());
        c.image = Some("img\u{7}".to_owned());
        let r = gather(&env, &target(Arc::new(c), Some(600)), &[]);
        let text = render(&r);
        assert!(
            !text.chars().any(|ch| ch.is_control() && ch != '\n'),
            "{text}"
        );
        assert!(text.contains("evil\\x1b[2J"));
        assert!(text.contains("k\\x1b=v\\n"));
    }

    #[test]
    fn incidents_from_a_journal() {
        let dir = Fake::new("journal");
        let path = dir.0.join("j.db");
        assert_eq!(read_incidents(Some(&path), "docker/x").status, "no_journal");
        assert_eq!(read_incidents(None, "docker/x").status, "disabled");
        let mut j = Journal::open(&path, JournalOptions::default()).unwrap();
        let rec = |ts: i64, ty: &str, id: &str| {
            Entry::Record(Record::from_ndjson(
                ts,
                &json!({
                    "type": ty,
                    "container": {"id": id, "runtime": "docker", "name": "n", "resolved": true},
                    "explanation": format!("{ty} of {id}"),
                }),
            ))
        };
        let mut entries = vec![
            rec(1_000_000_000, "oom_kill", "x"),
            rec(2_000_000_000, "container_update", "x"),
            rec(3_000_000_000, "kill", "y"),
        ];
        for i in 0..12 {
            entries.push(rec(10_000_000_000 + i, "signal", "x"));
        }
        j.write(&entries).unwrap();
        drop(j);
        let inc = read_incidents(Some(&path), "docker/x");
        assert_eq!(inc.status, "ok");
        assert_eq!(inc.records.len(), INCIDENT_LIMIT);
        assert!(inc.records.iter().all(|r| r.kind == "signal"));
        assert_eq!(inc.records[0].explanation.as_deref(), Some("signal of x"));
        assert!(inc.records[0].ts.starts_with("1970-01-01T00:00:10."));
        let y = read_incidents(Some(&path), "docker/y");
        assert_eq!(y.records.len(), 1);
        assert_eq!(y.records[0].kind, "kill");
        // Rendered in UTC.
        let f = lab("journal-render");
        let env = fake_env(&f);
        let mut r = gather(
            &env,
            &target(container(Runtime::Docker, ID, "x", Some(101)), Some(600)),
            &[],
        );
        r.incidents = y;
        let text = render(&r);
        assert!(
            text.contains("  1970-01-01 00:00:03  kill            kill of y\n"),
            "{text}"
        );
        // A file that is not a journal: an error in the section, not a failure.
        let bad = dir.0.join("bad.db");
        std::fs::write(&bad, "not sqlite").unwrap();
        let e = read_incidents(Some(&bad), "docker/x");
        assert_eq!(e.status, "error");
        assert!(e.error.is_some());
    }
}
