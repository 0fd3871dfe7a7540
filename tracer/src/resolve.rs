//! Attribution of events to containers, keyed by cgroup v2 id first.
//!
//! The kernel reports the cgroup v2 id of every task (the inode of its directory in the
//! unified hierarchy). The resolver maps ids to containers from what it can read with no
//! daemon at all (runc state roots, `/proc/<pid>/cgroup`, cgroup paths seen in
//! `cgroup_mkdir` records), and takes names and images from the runtimes when they answer.
//! It never guesses a name: an id it cannot place is shown as such, and a later
//! [`Update`] names it once the runtime's state says who it is.
//!
//! Containers that are gone stay as tombstones (bounded by age and count) so that late events
//! and post-mortems still name them.

use std::{
    collections::{BTreeMap, HashMap},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::container::{
    self, parse_cgroup_path_with_known, short_id, ContainerMeta, KnownContainers, PodInfo, Runtime,
};
use crate::event::{Body, CgroupOp, Event};
use crate::select::Selector;

/// What an event's cgroup resolved to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribution {
    /// A host process (the root cgroup, or a cgroup no container owns).
    Host,
    /// A container.
    Container(Arc<Container>),
    /// A cgroup id ctrace could not place (its directory was gone before ctrace saw it).
    Unknown,
}

impl Attribution {
    pub fn container(&self) -> Option<&Arc<Container>> {
        match self {
            Self::Container(c) => Some(c),
            Self::Host | Self::Unknown => None,
        }
    }
}

/// A container as events show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Container {
    pub id: String,
    /// The container's name; `None` while nothing authoritative named it yet.
    pub name: Option<String>,
    pub runtime: Runtime,
    pub image: Option<String>,
    /// containerd namespace.
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub pod: Option<PodInfo>,
    /// Host pid of the init process, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_pid: Option<u32>,
    /// The init's start time (clock ticks since boot, from runc's state), to tell it from a
    /// later process that reused its pid.
    #[serde(skip)]
    pub init_start: Option<u64>,
    /// Docker: restarts done by its restart policy, as last read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u64>,
    /// Docker Compose project and service, from its labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose: Option<Compose>,
    /// cgroup path in the unified hierarchy.
    #[serde(skip)]
    pub cgroup_path: Option<String>,
    /// cgroup paths per v1 controller (`memory`, `cpu`, ...; `""` is the unified one).
    #[serde(skip)]
    pub cgroup_paths: BTreeMap<String, String>,
    /// The container is gone (its cgroup was removed or its state disappeared).
    #[serde(skip)]
    pub gone: bool,
}

impl Container {
    /// A named container and nothing else known (tests, the library's and the CLI's, build
    /// theirs from it).
    pub fn named(id: &str, name: &str, runtime: Runtime) -> Self {
        Self {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            runtime,
            image: None,
            namespace: None,
            labels: BTreeMap::new(),
            pod: None,
            init_pid: None,
            init_start: None,
            restart_count: None,
            compose: None,
            cgroup_path: None,
            cgroup_paths: BTreeMap::new(),
            gone: false,
        }
    }

    /// Name to print: the name, else the short id.
    pub fn display(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| short_id(&self.id))
    }

    fn from_meta(meta: &ContainerMeta) -> Self {
        // containerd and plain runc name containers by their id; Docker's names live in its
        // own store and come from `Names`.
        let name = meta.name.clone().or_else(|| match meta.runtime {
            Runtime::Containerd | Runtime::Runc => Some(meta.id.clone()),
            _ => None,
        });
        Self {
            id: meta.id.clone(),
            name,
            runtime: meta.runtime,
            image: meta.image.clone(),
            namespace: meta.namespace.clone(),
            labels: meta.labels.clone(),
            pod: meta.pod.clone(),
            init_pid: meta.init_pid,
            init_start: meta.init_start,
            restart_count: None,
            compose: None,
            cgroup_path: meta.cgroup_path.clone(),
            cgroup_paths: meta.cgroup_paths.clone(),
            gone: false,
        }
    }

    /// The cgroup path of a v1 controller, else the unified path (the same on Docker's
    /// cgroupfs layout; runc without a cgroupsPath nests v1 paths differently).
    pub fn cgroup_path_for(&self, controller: &str) -> Option<&str> {
        self.cgroup_paths
            .get(controller)
            .or(self.cgroup_path.as_ref())
            .map(String::as_str)
    }
}

impl crate::select::Selectable for Container {
    fn candidate(&self) -> crate::select::Candidate<'_> {
        crate::select::Candidate {
            id: &self.id,
            name: self.name.as_deref(),
            runtime: self.runtime.as_str(),
            namespace: self.namespace.as_deref(),
            pod: self.pod.as_ref().map(|p| {
                (
                    std::borrow::Cow::Borrowed(p.name.as_str()),
                    std::borrow::Cow::Borrowed(p.namespace.as_str()),
                )
            }),
        }
    }
}

/// The containers an event involves: the current task's, and the other task's for signals
/// (target) and OOM kills (victim).
#[derive(Debug, Clone, PartialEq)]
pub struct Attrs {
    pub process: Attribution,
    pub other: Option<Attribution>,
}

impl Attrs {
    /// For records not tied to a task (loss records, synthetic ones in tests).
    pub const HOST: Self = Self {
        process: Attribution::Host,
        other: None,
    };

    /// Whether any task of the event is in a container.
    pub fn touches_container(&self) -> bool {
        self.process.container().is_some()
            || self.other.as_ref().is_some_and(|o| o.container().is_some())
    }
}

/// A Docker Compose service's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Compose {
    pub project: String,
    pub service: Option<String>,
}

/// Names from a runtime API or store, keyed by container id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    pub name: Option<String>,
    pub image: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub restart_count: Option<u64>,
    pub compose: Option<Compose>,
}

impl From<&crate::docker::DockerInfo> for Names {
    fn from(d: &crate::docker::DockerInfo) -> Self {
        Self {
            name: Some(d.name.clone()).filter(|n| !n.is_empty()),
            image: Some(d.image.clone()).filter(|i| !i.is_empty()),
            labels: d.labels.clone(),
            restart_count: Some(d.restart_count),
            compose: d.compose_project.clone().map(|project| Compose {
                project,
                service: d.compose_service.clone(),
            }),
        }
    }
}

/// A container became known or changed (named, renamed, stopped): the `container_update`
/// record.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub cgroup_id: Option<u64>,
    pub container: Arc<Container>,
    pub reason: &'static str,
    /// When it was learnt (boot clock).
    pub boot_ns: u64,
}

impl Update {
    /// The reasons an update can have, for reading them back (a capture's).
    pub const REASONS: [&'static str; 3] = ["resolved", "changed", "named"];
}

/// How a cgroup id maps.
#[derive(Debug, Clone)]
enum Slot {
    Host,
    Container(String),
    /// A container cgroup whose state was not readable yet: id from the path only.
    Pending {
        key: String,
        since: Instant,
    },
    /// A cgroup created while ctrace ran whose path names no container: host, unless the
    /// runtime's state claims it soon (plain runc names cgroups anything, e.g. `/<id>`).
    Unmatched {
        since: Instant,
        path: String,
    },
}

/// Least time between two rescans prompted by a state directory named after a new cgroup
/// (every event of a busy cgroup would otherwise rescan).
const NAMED_RESCAN_INTERVAL: Duration = Duration::from_millis(20);

/// How long a new cgroup that names no container is checked against runtime state again.
const UNMATCHED_GRACE: Duration = Duration::from_secs(30);

/// How long a removed host cgroup still resolves (records read after its `cgroup_rmdir`),
/// and how many removed ones are kept for that at most: then the slot and its path go.
const REMOVED_GRACE: Duration = Duration::from_secs(5);
const REMOVED_MAX: usize = 1024;

/// How long names for a container the resolver does not know (yet) are kept: the Docker feed
/// may name a container before its cgroup or state shows up.
const NAMES_GRACE: Duration = Duration::from_secs(60);

/// Settings of the resolver.
#[derive(Debug, Clone)]
pub struct Config {
    /// Mount point of the cgroup v2 hierarchy.
    pub cgroup2_root: PathBuf,
    /// `/proc`.
    pub proc_root: PathBuf,
    /// runc state roots to scan besides the default ones (`--runc-root`).
    pub extra_state_roots: Vec<PathBuf>,
    /// Directory whose `runc`, `docker/runtime-runc/*`, `containerd/runc/*` are scanned.
    pub run_dir: PathBuf,
    pub tombstone_ttl: Duration,
    pub tombstone_max: usize,
    /// Least time between two rescans of the state roots.
    pub rescan_interval: Duration,
    /// Docker's container store (`config.v2.json` per container): names with no daemon.
    pub docker_root: Option<PathBuf>,
    /// Bound on cgroup ids remembered. Past it, host cgroups' entries are dropped (and
    /// counted, [`Counts::slots_evicted`]): a dropped one is placed again from
    /// `/proc/<pid>/cgroup` or the tree when it shows up again.
    pub slots_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self::with_cgroup2_root(cgroup2_mount())
    }
}

impl Config {
    /// The defaults with this cgroup v2 mount point (`default()` reads the mount table).
    pub fn with_cgroup2_root(cgroup2_root: PathBuf) -> Self {
        Self {
            cgroup2_root,
            proc_root: PathBuf::from(crate::host::proc::ROOT),
            extra_state_roots: Vec::new(),
            run_dir: PathBuf::from("/run"),
            tombstone_ttl: Duration::from_secs(3600),
            tombstone_max: 10_000,
            rescan_interval: Duration::from_millis(200),
            docker_root: Some(PathBuf::from(crate::docker::DEFAULT_CONTAINERS_ROOT)),
            slots_max: 65_536,
        }
    }
}

/// How much the resolver holds: for the closing `stats` record, and to test its bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// cgroup ids mapped (containers', host ones, ones not placed yet).
    pub slots: usize,
    /// Host cgroup entries dropped because [`Config::slots_max`] was reached.
    pub slots_evicted: u64,
    /// Names from runtimes' APIs and stores, per container id.
    pub names: usize,
    /// Containers known and live.
    pub live: usize,
    /// Gone containers kept for late events.
    pub tombstones: usize,
    /// Warnings forgotten at the bound of those remembered as given
    /// ([`crate::once::WARNINGS_MAX`]); one may be given again if its cause comes back.
    pub warnings_forgotten: u64,
}

/// Mount point of the cgroup v2 hierarchy: `/sys/fs/cgroup/unified` on hybrid hosts,
/// `/sys/fs/cgroup` on pure v2 ones.
pub fn cgroup2_mount() -> PathBuf {
    crate::cgroup::Mounts::current()
        .v2
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
}

struct Tracked {
    container: Arc<Container>,
    cgroup_id: Option<u64>,
    gone_at: Option<Instant>,
}

/// The resolver. Not thread-safe: owned by the event loop.
pub struct Resolver {
    cfg: Config,
    by_cgroup: HashMap<u64, Slot>,
    tracked: HashMap<String, Tracked>,
    known: KnownContainers,
    /// Names per container id, with when they were set (see [`NAMES_GRACE`]).
    names: HashMap<String, (Names, Instant)>,
    /// Host cgroups removed, oldest first: their slots go after [`REMOVED_GRACE`].
    removed: std::collections::VecDeque<(Instant, u64)>,
    slots_evicted: u64,
    last_scan: Option<Instant>,
    last_walk: Option<Instant>,
    updates: Vec<Update>,
    /// Containers seen for the first time, for background enrichment.
    new: Vec<Arc<Container>>,
    /// Problems worth one warning each (unreadable state roots, ...), drained by the caller.
    pub warnings: Vec<String>,
    /// Warnings already given: bounded, the oldest forgotten (and counted) past the bound.
    reported: crate::once::OnceSet<String>,
}

/// Key of a container across runtimes: containerd ids are unique per namespace only.
fn key_of(runtime: Runtime, namespace: Option<&str>, id: &str) -> String {
    match (runtime, namespace) {
        (Runtime::Containerd, Some(ns)) => format!("containerd/{ns}/{id}"),
        _ => id.to_owned(),
    }
}

impl Resolver {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            by_cgroup: HashMap::new(),
            tracked: HashMap::new(),
            known: KnownContainers::new(),
            names: HashMap::new(),
            removed: std::collections::VecDeque::new(),
            slots_evicted: 0,
            last_scan: None,
            last_walk: None,
            updates: Vec::new(),
            new: Vec::new(),
            warnings: Vec::new(),
            reported: crate::once::OnceSet::new(crate::once::WARNINGS_MAX),
        }
    }

    /// A resolver that has read the state roots and the cgroup tree.
    pub fn start(cfg: Config) -> Self {
        let mut r = Self::new(cfg);
        r.rescan();
        r.walk();
        r
    }

    /// Read every state root now (at start, and when an unknown container cgroup shows up).
    pub fn rescan(&mut self) {
        self.last_scan = Some(Instant::now());
        let mut roots = container::state_roots_in(&self.cfg.run_dir);
        for r in &self.cfg.extra_state_roots {
            if !roots.contains(r) {
                roots.push(r.clone());
            }
        }
        let scan = container::scan_state_roots(&roots);
        for w in &scan.warnings {
            if self.reported.insert(w.clone()) {
                self.warnings.push(w.clone());
            }
        }
        self.known = scan.known();
        let mut seen = std::collections::HashSet::new();
        for meta in &scan.containers {
            let key = key_of(meta.runtime, meta.namespace.as_deref(), &meta.id);
            seen.insert(key.clone());
            let cgroup_id = meta.cgroup_id.or_else(|| self.cgroup_id_of_meta(meta));
            self.upsert(key, meta, cgroup_id);
        }
        // State gone: the container was deleted. Keep it as a tombstone. A container known
        // only from its new cgroup (state not written yet) is not gone: its cgroup's removal
        // will say when it is.
        let pending: std::collections::HashSet<&String> = self
            .by_cgroup
            .values()
            .filter_map(|s| match s {
                Slot::Pending { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        let now = Instant::now();
        for (key, t) in &mut self.tracked {
            if !seen.contains(key)
                && t.gone_at.is_none()
                && !key.starts_with("pending/")
                && !pending.contains(key)
            {
                t.gone_at = Some(now);
                let mut c = (*t.container).clone();
                c.gone = true;
                t.container = Arc::new(c);
            }
        }
        self.expire(now);
    }

    fn cgroup_id_of_meta(&self, meta: &ContainerMeta) -> Option<u64> {
        let unified = meta.cgroup_paths.get("").cloned().or_else(|| {
            // Hybrid hosts: runc puts the container in the unified hierarchy at the same path
            // as in the v1 ones; else ask the init process.
            crate::host::proc::unified_cgroup(&self.cfg.proc_root, meta.init_pid?)
        });
        let from_path = |p: &str| inode(&self.cfg.cgroup2_root.join(p.trim_start_matches('/')));
        unified
            .as_deref()
            .and_then(from_path)
            .or_else(|| meta.cgroup_path.as_deref().and_then(from_path))
    }

    /// Names of a Docker container from its on-disk store, once per id.
    fn docker_disk_names(&mut self, id: &str) {
        if self.names.contains_key(id) {
            return;
        }
        let Some(root) = &self.cfg.docker_root else {
            return;
        };
        match crate::docker::read_container_dir(root, id) {
            Ok(disk) => {
                let info = crate::docker::DockerInfo::from_disk(&disk);
                self.names
                    .insert(id.to_owned(), (Names::from(&info), Instant::now()));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                let w = format!("Docker store for {}: {e}", short_id(id));
                if self.reported.insert(w.clone()) {
                    self.warnings.push(w);
                }
            }
        }
    }

    fn upsert(&mut self, key: String, meta: &ContainerMeta, cgroup_id: Option<u64>) {
        if meta.runtime == Runtime::Docker {
            self.docker_disk_names(&meta.id);
        }
        let mut c = Container::from_meta(meta);
        if let Some((n, _)) = self.names.get(&meta.id) {
            apply_names(&mut c, n);
        }
        let changed = match self.tracked.get(&key) {
            Some(t) => *t.container != c || t.cgroup_id != cgroup_id,
            None => true,
        };
        let mut was_pending = false;
        if let Some(id) = cgroup_id {
            // A cgroup first seen as pending (or not placed at all yet) now has its container:
            // say so, once.
            was_pending = matches!(
                self.by_cgroup.get(&id),
                Some(Slot::Pending { .. } | Slot::Unmatched { .. })
            );
            self.by_cgroup.insert(id, Slot::Container(key.clone()));
            if was_pending {
                self.updates.push(Update {
                    cgroup_id: Some(id),
                    container: Arc::new(c.clone()),
                    reason: "resolved",
                    boot_ns: crate::clock::BootClock::boot_now_ns(),
                });
            }
        }
        if changed {
            let c = Arc::new(c);
            if !self.tracked.contains_key(&key) {
                self.new.push(Arc::clone(&c));
            }
            if self.tracked.contains_key(&key) && !was_pending {
                self.updates.push(Update {
                    cgroup_id,
                    container: Arc::clone(&c),
                    reason: "changed",
                    boot_ns: crate::clock::BootClock::boot_now_ns(),
                });
            }
            self.tracked.insert(
                key,
                Tracked {
                    container: c,
                    cgroup_id,
                    gone_at: None,
                },
            );
        }
    }

    /// Names, images and labels from a runtime's API or store (Docker), by container id.
    pub fn set_names(&mut self, id: &str, names: Names) {
        self.names
            .insert(id.to_owned(), (names.clone(), Instant::now()));
        let keys: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.container.id == id)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(t) = self.tracked.get_mut(&key) else {
                continue;
            };
            let mut c = (*t.container).clone();
            apply_names(&mut c, &names);
            if c != *t.container {
                t.container = Arc::new(c);
                self.updates.push(Update {
                    cgroup_id: t.cgroup_id,
                    container: Arc::clone(&t.container),
                    reason: "named",
                    boot_ns: crate::clock::BootClock::boot_now_ns(),
                });
            }
        }
    }

    /// A cgroup appeared (`cgroup_mkdir` in the unified hierarchy): remember its path, so the
    /// id resolves even after the directory is gone.
    pub fn cgroup_created(&mut self, id: u64, path: &str) {
        if self.by_cgroup.contains_key(&id) {
            return;
        }
        self.classify(id, path, true);
    }

    /// A cgroup was removed: its container (if any) is gone; a host cgroup's entry goes after
    /// [`REMOVED_GRACE`] (records read late still resolve).
    pub fn cgroup_removed(&mut self, id: u64) {
        let now = Instant::now();
        let key = match self.by_cgroup.get(&id) {
            Some(Slot::Container(k)) | Some(Slot::Pending { key: k, .. }) => k.clone(),
            Some(Slot::Host | Slot::Unmatched { .. }) => {
                self.removed.push_back((now, id));
                self.forget_removed(now);
                return;
            }
            None => return,
        };
        if let Some(t) = self.tracked.get_mut(&key) {
            if t.cgroup_id == Some(id) && t.gone_at.is_none() {
                t.gone_at = Some(now);
                let mut c = (*t.container).clone();
                c.gone = true;
                t.container = Arc::new(c);
            }
        }
    }

    /// The container of a cgroup id; `pid` helps when the id was never seen (its
    /// `/proc/<pid>/cgroup` names the path).
    pub fn resolve(&mut self, cgroup_id: u64, pid: Option<u32>) -> Attribution {
        if cgroup_id <= 1 {
            return Attribution::Host;
        }
        if !self.by_cgroup.contains_key(&cgroup_id) {
            if let Some(path) = pid.and_then(|p| self.path_of_pid(p, cgroup_id)) {
                self.classify(cgroup_id, &path, true);
            }
        }
        match self.by_cgroup.get(&cgroup_id) {
            Some(Slot::Container(key)) => self.tracked.get(key).map_or(Attribution::Host, |t| {
                Attribution::Container(Arc::clone(&t.container))
            }),
            Some(Slot::Pending { key, since }) => {
                let since = *since;
                let key = key.clone();
                if self.rescan_due(since) {
                    self.rescan();
                }
                self.tracked.get(&key).map_or(Attribution::Host, |t| {
                    Attribution::Container(Arc::clone(&t.container))
                })
            }
            Some(Slot::Unmatched { since, path }) => {
                let since = *since;
                // runc names the cgroup after the container by default (`/<id>`): when a state
                // directory of that name exists, rescan now rather than at the next interval.
                let named = path
                    .rsplit('/')
                    .next()
                    .filter(|last| container::is_containerd_id(last))
                    .is_some_and(|last| self.state_dir_exists(last));
                if since.elapsed() >= UNMATCHED_GRACE {
                    self.by_cgroup.insert(cgroup_id, Slot::Host);
                } else if (named
                    && self
                        .last_scan
                        .is_none_or(|t| t.elapsed() >= NAMED_RESCAN_INTERVAL))
                    || self
                        .last_scan
                        .is_none_or(|t| t.elapsed() >= self.cfg.rescan_interval)
                {
                    // A rescan that finds the container's state points the id at it.
                    self.rescan();
                    if matches!(self.by_cgroup.get(&cgroup_id), Some(Slot::Container(_))) {
                        return self.resolve(cgroup_id, None);
                    }
                }
                // Not placed yet (a runtime may still claim it): unknown, not host; a
                // container_update follows if it is claimed, after the grace it is host.
                if matches!(self.by_cgroup.get(&cgroup_id), Some(Slot::Host)) {
                    Attribution::Host
                } else {
                    Attribution::Unknown
                }
            }
            Some(Slot::Host) => Attribution::Host,
            None => {
                // Created between two looks and already gone, or its mkdir record was lost:
                // look at the tree once more (rate-limited), else say we do not know.
                if self
                    .last_walk
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    self.walk();
                    if self.by_cgroup.contains_key(&cgroup_id) {
                        return self.resolve(cgroup_id, None);
                    }
                }
                Attribution::Unknown
            }
        }
    }

    /// Record every cgroup of the unified hierarchy that exists now.
    pub fn walk(&mut self) {
        self.last_walk = Some(Instant::now());
        let root = self.cfg.cgroup2_root.clone();
        let mut stack = vec![(root.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(ft) = e.file_type() else { continue };
                if !ft.is_dir() || depth >= 32 {
                    continue;
                }
                let p = e.path();
                if let (Some(id), Ok(rel)) = (inode(&p), p.strip_prefix(&root)) {
                    if !self.by_cgroup.contains_key(&id) {
                        let rel = format!("/{}", rel.to_string_lossy());
                        self.classify(id, &rel, false);
                    }
                }
                stack.push((p, depth + 1));
            }
        }
    }

    fn rescan_due(&self, since: Instant) -> bool {
        let interval = self.cfg.rescan_interval;
        since.elapsed() < Duration::from_secs(60)
            && self.last_scan.is_none_or(|t| t.elapsed() >= interval)
    }

    /// Whether some state root has a container directory named `id`.
    fn state_dir_exists(&self, id: &str) -> bool {
        container::state_roots_in(&self.cfg.run_dir)
            .iter()
            .chain(self.cfg.extra_state_roots.iter())
            .any(|root| root.join(id).join("state.json").is_file())
    }

    /// `/proc/<pid>/cgroup`'s unified path, if it is the cgroup with this id.
    fn path_of_pid(&self, pid: u32, cgroup_id: u64) -> Option<String> {
        unified_cgroup_of(&self.cfg.proc_root, &self.cfg.cgroup2_root, pid)
            .and_then(|(path, id)| (id == cgroup_id).then_some(path))
    }

    /// Drop the slots of host cgroups removed more than [`REMOVED_GRACE`] ago, or past
    /// [`REMOVED_MAX`] of them. A slot a runtime claimed since (a container's) stays.
    fn forget_removed(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.removed.front() {
            if self.removed.len() <= REMOVED_MAX && now.duration_since(at) < REMOVED_GRACE {
                break;
            }
            self.removed.pop_front();
            if matches!(
                self.by_cgroup.get(&id),
                Some(Slot::Host | Slot::Unmatched { .. })
            ) {
                self.by_cgroup.remove(&id);
            }
        }
    }

    /// Past [`Config::slots_max`] entries, drop host cgroups' down to nine tenths of it
    /// (containers' entries live as long as their containers and tombstones).
    fn shed(&mut self) {
        let max = self.cfg.slots_max.max(1);
        if self.by_cgroup.len() <= max {
            return;
        }
        let excess = self.by_cgroup.len() - max * 9 / 10;
        let victims: Vec<u64> = self
            .by_cgroup
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Host | Slot::Unmatched { .. }))
            .map(|(id, _)| *id)
            .take(excess)
            .collect();
        for id in victims {
            self.by_cgroup.remove(&id);
            self.slots_evicted += 1;
        }
    }

    /// What the resolver holds now.
    pub fn counts(&self) -> Counts {
        let tombstones = self
            .tracked
            .values()
            .filter(|t| t.gone_at.is_some())
            .count();
        Counts {
            slots: self.by_cgroup.len(),
            slots_evicted: self.slots_evicted,
            names: self.names.len(),
            live: self.tracked.len() - tombstones,
            tombstones,
            warnings_forgotten: self.reported.forgotten(),
        }
    }

    /// Place a cgroup by its path. `live`: it appeared while ctrace runs, so runtime state
    /// naming it may not be written yet.
    fn classify(&mut self, id: u64, path: &str, live: bool) {
        let Some(m) = parse_cgroup_path_with_known(path, &self.known) else {
            let slot = if live {
                Slot::Unmatched {
                    since: Instant::now(),
                    path: path.to_owned(),
                }
            } else {
                Slot::Host
            };
            self.by_cgroup.insert(id, slot);
            self.shed();
            return;
        };
        let runtime = match m.runtime_hint {
            container::RuntimeHint::Containerd => Runtime::Containerd,
            container::RuntimeHint::CriO => Runtime::CriO,
            container::RuntimeHint::Podman => Runtime::Podman,
            container::RuntimeHint::Docker => Runtime::Docker,
            _ => Runtime::Runc,
        };
        let key = key_of(runtime, m.namespace.as_deref(), &m.id);
        if let Some(t) = self.tracked.get_mut(&key) {
            match t.cgroup_id {
                // A new cgroup for a container known by another: its runtime restarted it
                // (Docker's restart policy keeps the id). A new run: its init is not known
                // until the state is read again (the first exec in it is the init's), and it
                // is no longer gone.
                Some(old) if old != id && live => {
                    let mut c = (*t.container).clone();
                    c.init_pid = None;
                    c.init_start = None;
                    c.gone = false;
                    let c = Arc::new(c);
                    t.container = Arc::clone(&c);
                    t.cgroup_id = Some(id);
                    t.gone_at = None;
                    self.updates.push(Update {
                        cgroup_id: Some(id),
                        container: c,
                        reason: "changed",
                        boot_ns: crate::clock::BootClock::boot_now_ns(),
                    });
                }
                Some(_) => {}
                None => t.cgroup_id = Some(id),
            }
            self.by_cgroup.insert(id, Slot::Container(key));
            return;
        }
        if runtime == Runtime::Docker {
            self.docker_disk_names(&m.id);
        }
        // A container cgroup whose state is not known yet: show the id (never a guessed
        // name) until a rescan finds it.
        let c = Container {
            id: m.id.clone(),
            // containerd names a container by its id (`ctr run IMAGE ID`), and the id comes
            // from a path under a namespace known to exist: that is its name already.
            name: (runtime == Runtime::Containerd && m.namespace.is_some()).then(|| m.id.clone()),
            runtime,
            image: None,
            namespace: m.namespace.clone(),
            labels: BTreeMap::new(),
            pod: None,
            init_pid: None,
            init_start: None,
            restart_count: None,
            compose: None,
            cgroup_path: Some(path.to_owned()),
            cgroup_paths: BTreeMap::new(),
            gone: false,
        };
        let mut c = c;
        if let Some((n, _)) = self.names.get(&m.id) {
            apply_names(&mut c, n);
        }
        // New to ctrace like one found in runtime state: its memory figures, enrichment and
        // dense young sampling start now, not when its state is written.
        let c = Arc::new(c);
        self.new.push(Arc::clone(&c));
        self.tracked.insert(
            key.clone(),
            Tracked {
                container: c,
                cgroup_id: Some(id),
                gone_at: None,
            },
        );
        self.by_cgroup.insert(
            id,
            Slot::Pending {
                key,
                since: Instant::now(),
            },
        );
        if self
            .last_scan
            .is_none_or(|t| t.elapsed() >= self.cfg.rescan_interval)
        {
            self.rescan();
        }
    }

    /// Attribute an event, learning from it first (cgroup records carry id and path).
    pub fn attribute(&mut self, ev: &Event) -> Attrs {
        if let Body::Cgroup(c) = &ev.body {
            if c.root == 0 && c.op != CgroupOp::Rmdir {
                self.cgroup_created(c.id, &c.path);
            }
        }
        let process = self.resolve(ev.task.cgroup_id, Some(ev.task.pid));
        let other = match &ev.body {
            Body::Signal(s) => s
                .target_cgroup_id
                .map(|id| self.resolve(id, s.target_tgid.or(Some(s.target_pid)))),
            Body::OomVictim(o) => o
                .victim_cgroup_id
                .map(|id| self.resolve(id, o.victim_tgid.or(Some(o.victim_pid)))),
            Body::Cgroup(c) if c.root == 0 => {
                let a = self.resolve(c.id, c.pid);
                if c.op == CgroupOp::Rmdir {
                    self.cgroup_removed(c.id);
                }
                Some(a)
            }
            _ => None,
        };
        Attrs { process, other }
    }

    /// Containers first seen since the last call.
    pub fn take_new(&mut self) -> Vec<Arc<Container>> {
        std::mem::take(&mut self.new)
    }

    /// Updates since the last call (containers named, resolved or changed).
    pub fn take_updates(&mut self) -> Vec<Update> {
        std::mem::take(&mut self.updates)
    }

    /// The cgroup id a container is tracked under, for a cgroup already placed in it (its own
    /// or one below it); nothing is read or rescanned.
    pub fn container_cgroup_of(&self, cgroup_id: u64) -> Option<u64> {
        match self.by_cgroup.get(&cgroup_id) {
            Some(Slot::Container(key)) => self.tracked.get(key)?.cgroup_id,
            _ => None,
        }
    }

    /// Every container known, live ones first, then tombstones.
    pub fn containers(&self) -> Vec<(Arc<Container>, Option<u64>, bool)> {
        let mut v: Vec<_> = self
            .tracked
            .values()
            .map(|t| (Arc::clone(&t.container), t.cgroup_id, t.gone_at.is_some()))
            .collect();
        v.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.display().cmp(b.0.display())));
        v
    }

    /// The live containers with the cgroup id each is tracked under, in the order of those ids
    /// (without one, last, by id): what each tick walks, without [`Resolver::containers`]'
    /// sort by name.
    pub fn live(&self) -> Vec<(Arc<Container>, Option<u64>)> {
        let mut v: Vec<_> = self
            .tracked
            .values()
            .filter(|t| t.gone_at.is_none())
            .map(|t| (Arc::clone(&t.container), t.cgroup_id))
            .collect();
        v.sort_unstable_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.id.cmp(&b.0.id),
        });
        v
    }

    /// The containers `selector` names, by [`Selector::best`]: the strongest matches (a full
    /// id, else an exact name, else a pod name, else an id prefix).
    pub fn find(&self, selector: &Selector) -> Vec<Arc<Container>> {
        let all: Vec<Arc<Container>> = self
            .tracked
            .values()
            .map(|t| Arc::clone(&t.container))
            .collect();
        selector.best(all).map(|b| b.items).unwrap_or_default()
    }

    fn expire(&mut self, now: Instant) {
        let ttl = self.cfg.tombstone_ttl;
        self.tracked
            .retain(|_, t| t.gone_at.is_none_or(|g| now.duration_since(g) < ttl));
        let gone = self
            .tracked
            .values()
            .filter(|t| t.gone_at.is_some())
            .count();
        if gone > self.cfg.tombstone_max {
            let mut by_age: Vec<(Instant, String)> = self
                .tracked
                .iter()
                .filter_map(|(k, t)| t.gone_at.map(|g| (g, k.clone())))
                .collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(gone - self.cfg.tombstone_max) {
                self.tracked.remove(&k);
            }
        }
        let live: std::collections::HashSet<&String> = self.tracked.keys().collect();
        self.by_cgroup.retain(|_, s| match s {
            Slot::Container(k) | Slot::Pending { key: k, .. } => live.contains(k),
            Slot::Host | Slot::Unmatched { .. } => true,
        });
        // Names of containers no longer known (tombstones included: a late event still names
        // them) go, but not before the grace: the Docker feed may name one before it shows up.
        let ids: std::collections::HashSet<&str> = self
            .tracked
            .values()
            .map(|t| t.container.id.as_str())
            .collect();
        self.names.retain(|id, (_, at)| {
            ids.contains(id.as_str()) || now.duration_since(*at) < NAMES_GRACE
        });
        self.forget_removed(now);
    }
}

fn apply_names(c: &mut Container, n: &Names) {
    if n.name.is_some() {
        c.name.clone_from(&n.name);
    }
    if n.image.is_some() {
        c.image.clone_from(&n.image);
    }
    for (k, v) in &n.labels {
        c.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if n.restart_count.is_some() {
        c.restart_count = n.restart_count;
    }
    if n.compose.is_some() {
        c.compose.clone_from(&n.compose);
    }
    if c.pod.is_none() {
        c.pod = container::pod_from_labels(&c.labels);
    }
}

/// The unified-hierarchy cgroup of task `pid` (a thread id works too): its path from
/// `<proc_root>/<pid>/cgroup` and its id, the inode of that directory under `cgroup2_root`.
pub fn unified_cgroup_of(proc_root: &Path, cgroup2_root: &Path, pid: u32) -> Option<(String, u64)> {
    let path = crate::host::proc::unified_cgroup(proc_root, pid)?;
    let id = inode(&cgroup2_root.join(path.trim_start_matches('/')))?;
    Some((path, id))
}

fn inode(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const ID: &str = "26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56";
    const ID2: &str = "9f0a3b51c0a2e5f7e4b8a6c1d3e5f708192a3b4c5d6e7f8091a2b3c4d5e6f708";

    struct Lab {
        dir: PathBuf,
    }

    impl Lab {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("ctrace-resolve-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("cg")).unwrap();
            fs::create_dir_all(dir.join("run")).unwrap();
            Self { dir }
        }
        fn cfg(&self) -> Config {
            Config {
                cgroup2_root: self.dir.join("cg"),
                proc_root: self.dir.join("proc"),
                run_dir: self.dir.join("run"),
                rescan_interval: Duration::ZERO,
                docker_root: Some(self.dir.join("docker")),
                ..Config::default()
            }
        }
        /// Create a cgroup directory; returns its id (inode).
        fn cgroup(&self, path: &str) -> u64 {
            let p = self.dir.join("cg").join(path.trim_start_matches('/'));
            fs::create_dir_all(&p).unwrap();
            inode(&p).unwrap()
        }
        fn state(&self, root: &str, id: &str, cgroup: &str, labels: &[&str]) {
            let d = self.dir.join("run").join(root).join(id);
            fs::create_dir_all(&d).unwrap();
            let state = serde_json::json!({
                "id": id,
                "init_process_pid": 0,
                "created": "2026-11-29T18:38:13.262143086Z",
                "config": { "labels": labels },
                "cgroup_paths": { "": format!("/sys/fs/cgroup/unified{cgroup}"), "memory": format!("/sys/fs/cgroup/memory{cgroup}") },
            });
            fs::write(d.join("state.json"), state.to_string()).unwrap();
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn container(a: Attribution) -> Arc<Container> {
        match a {
            Attribution::Container(c) => c,
            other => panic!("expected a container, got {other:?}"),
        }
    }

    #[test]
    fn docker_container_by_cgroup_id_then_named_by_the_api() {
        let lab = Lab::new("docker");
        let cg = lab.cgroup(&format!("/docker/{ID}"));
        lab.state(
            "docker/runtime-runc/moby",
            ID,
            &format!("/docker/{ID}"),
            &[],
        );
        let mut r = Resolver::start(lab.cfg());
        let c = container(r.resolve(cg, None));
        assert_eq!(
            (c.id.as_str(), c.runtime, c.name.as_deref()),
            (ID, Runtime::Docker, None)
        );
        assert_eq!(
            c.display(),
            &ID[..12],
            "no name known: the short id, never a guess"
        );
        r.set_names(
            ID,
            Names {
                name: Some("web".into()),
                image: Some("nginx:1".into()),
                ..Names::default()
            },
        );
        let c = container(r.resolve(cg, None));
        assert_eq!((c.display(), c.image.as_deref()), ("web", Some("nginx:1")));
        let updates = r.take_updates();
        assert_eq!(updates.len(), 1);
        assert_eq!(
            (updates[0].reason, updates[0].cgroup_id),
            ("named", Some(cg))
        );
    }

    #[test]
    fn docker_names_from_its_store_with_no_daemon() {
        const RUN: &str = "536cd104218ed65df39ec60a93ef7c85c87ed3c670bb958a7f14b8f68c101c33";
        let lab = Lab::new("dockerstore");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/docker/containers")
            .join(RUN);
        let store = lab.dir.join("docker").join(RUN);
        fs::create_dir_all(&store).unwrap();
        for f in ["config.v2.json", "hostconfig.json"] {
            fs::copy(fixture.join(f), store.join(f)).unwrap();
        }
        let cg = lab.cgroup(&format!("/docker/{RUN}"));
        lab.state(
            "docker/runtime-runc/moby",
            RUN,
            &format!("/docker/{RUN}"),
            &[],
        );
        let mut r = Resolver::start(lab.cfg());
        let c = container(r.resolve(cg, None));
        assert_eq!(
            (c.display(), c.image.as_deref()),
            ("ctrace-dk-run", Some("busybox:local"))
        );
        // Restart count and Compose project from the store too, and in events' JSON.
        assert_eq!(c.restart_count, Some(0));
        assert_eq!(
            c.compose,
            Some(Compose {
                project: "shop".into(),
                service: Some("api".into())
            })
        );
        let v = serde_json::to_value(c.as_ref()).unwrap();
        assert_eq!(v["restart_count"], 0);
        assert_eq!(v["compose"]["project"], "shop");
    }

    #[test]
    fn containerd_namespaces_and_plain_runc_roots() {
        let lab = Lab::new("ctr");
        let a = lab.cgroup("/default/redis1");
        let b = lab.cgroup("/other/redis1");
        let c = lab.cgroup("/mycg/box");
        lab.state("containerd/runc/default", "redis1", "/default/redis1", &[]);
        lab.state("containerd/runc/other", "redis1", "/other/redis1", &[]);
        lab.state("runc", "box", "/mycg/box", &[]);
        let mut r = Resolver::start(lab.cfg());
        let ca = container(r.resolve(a, None));
        let cb = container(r.resolve(b, None));
        assert_eq!(
            (ca.runtime, ca.namespace.as_deref(), ca.display()),
            (Runtime::Containerd, Some("default"), "redis1")
        );
        assert_eq!(
            cb.namespace.as_deref(),
            Some("other"),
            "same id, other namespace"
        );
        let cc = container(r.resolve(c, None));
        assert_eq!((cc.runtime, cc.display()), (Runtime::Runc, "box"));
    }

    #[test]
    fn custom_runc_root_is_scanned() {
        let lab = Lab::new("root");
        let cg = lab.cgroup("/custom/x1");
        let root = lab.dir.join("elsewhere");
        let d = root.join("x1");
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("state.json"),
            serde_json::json!({"id": "x1", "cgroup_paths": {"": "/sys/fs/cgroup/custom/x1"}, "config": {}}).to_string(),
        )
        .unwrap();
        let mut cfg = lab.cfg();
        cfg.extra_state_roots.push(root);
        let mut r = Resolver::start(cfg);
        assert_eq!(container(r.resolve(cg, None)).display(), "x1");
    }

    #[test]
    fn host_cgroups_and_the_root() {
        let lab = Lab::new("host");
        let svc = lab.cgroup("/system.slice/ssh.service");
        let mut r = Resolver::start(lab.cfg());
        assert_eq!(r.resolve(1, None), Attribution::Host);
        assert_eq!(r.resolve(svc, None), Attribution::Host);
        assert_eq!(
            r.resolve(123_456_789, None),
            Attribution::Unknown,
            "never seen, gone"
        );
    }

    #[test]
    fn container_seen_before_its_state_is_shown_by_id_then_resolved() {
        let lab = Lab::new("pending");
        let mut r = Resolver::start(lab.cfg());
        let cg = lab.cgroup(&format!("/docker/{ID2}"));
        r.cgroup_created(cg, &format!("/docker/{ID2}"));
        let c = container(r.resolve(cg, None));
        assert_eq!((c.id.as_str(), c.name.as_deref()), (ID2, None));
        // New, at once: not only when its state is found.
        assert!(r.take_new().iter().any(|c| c.id == ID2));
        // A rescan before its state is written does not take it for gone (it is alive: its
        // cgroup was just made, and young containers are sampled, gone ones are not).
        r.rescan();
        let live = r.containers();
        assert!(
            live.iter()
                .any(|(c, id, gone)| c.id == ID2 && *id == Some(cg) && !gone),
            "{live:?}"
        );
        lab.state(
            "docker/runtime-runc/moby",
            ID2,
            &format!("/docker/{ID2}"),
            &[],
        );
        r.set_names(
            ID2,
            Names {
                name: Some("late".into()),
                ..Names::default()
            },
        );
        let c = container(r.resolve(cg, None));
        assert_eq!(c.display(), "late");
        assert!(r.take_updates().iter().any(|u| u.cgroup_id == Some(cg)));
    }

    #[test]
    fn a_restart_is_a_new_run_of_the_same_container() {
        let lab = Lab::new("restart");
        let path = format!("/docker/{ID2}");
        let mut r = Resolver::start(lab.cfg());
        let first = lab.cgroup(&path);
        r.cgroup_created(first, &path);
        let c = container(r.resolve(first, None));
        assert!(!c.gone);
        r.cgroup_removed(first);
        assert!(container(r.resolve(first, None)).gone);
        r.take_updates();
        // Docker's restart policy: the same id, a new cgroup (a new id) at the same path.
        let second = first + 1;
        r.cgroup_created(second, &path);
        let c = container(r.resolve(second, None));
        assert_eq!(c.id, ID2);
        assert!(!c.gone, "alive again");
        assert_eq!(c.init_pid, None, "its new init is not known yet");
        let live = r.containers();
        assert!(
            live.iter()
                .any(|(c, id, gone)| c.id == ID2 && *id == Some(second) && !gone),
            "{live:?}"
        );
        assert!(r.take_updates().iter().any(|u| u.cgroup_id == Some(second)));
        // The first run's cgroup, removed late, does not end the second run.
        r.cgroup_removed(first);
        assert!(!container(r.resolve(second, None)).gone);
    }

    #[test]
    fn plain_runc_cgroup_created_before_its_state_is_found_later() {
        let lab = Lab::new("runclate");
        let mut r = Resolver::start(lab.cfg());
        let cg = lab.cgroup("/box7");
        r.cgroup_created(cg, "/box7");
        assert_eq!(
            r.resolve(cg, None),
            Attribution::Unknown,
            "nothing claims it yet: not placed, not host"
        );
        lab.state("runc", "box7", "/box7", &[]);
        let c = container(r.resolve(cg, None));
        assert_eq!((c.display(), c.runtime), ("box7", Runtime::Runc));
        // The events shown unplaced are followed by the container it turned out to be.
        let updates = r.take_updates();
        assert!(
            updates
                .iter()
                .any(|u| u.cgroup_id == Some(cg) && u.reason == "resolved"),
            "{updates:?}"
        );
    }

    #[test]
    fn removed_containers_stay_as_tombstones() {
        let lab = Lab::new("gone");
        let cg = lab.cgroup(&format!("/docker/{ID}"));
        lab.state(
            "docker/runtime-runc/moby",
            ID,
            &format!("/docker/{ID}"),
            &[],
        );
        let mut r = Resolver::start(lab.cfg());
        r.set_names(
            ID,
            Names {
                name: Some("web".into()),
                ..Names::default()
            },
        );
        r.cgroup_removed(cg);
        fs::remove_dir_all(lab.dir.join("run/docker/runtime-runc/moby").join(ID)).unwrap();
        fs::remove_dir_all(lab.dir.join("cg/docker").join(ID)).unwrap();
        r.rescan();
        let c = container(r.resolve(cg, None));
        assert_eq!(c.display(), "web", "a late event still names it");
        assert!(c.gone);
        assert!(r
            .containers()
            .iter()
            .any(|(c, _, gone)| c.id == ID && *gone));
        assert!(r.live().iter().all(|(c, _)| c.id != ID), "{:?}", r.live());
    }

    #[test]
    fn live_containers_come_in_the_order_of_their_cgroup_ids() {
        let lab = Lab::new("live");
        let mut ids = Vec::new();
        for id in [ID, ID2] {
            let path = format!("/docker/{id}");
            ids.push((lab.cgroup(&path), id));
            lab.state("docker/runtime-runc/moby", id, &path, &[]);
        }
        ids.sort_unstable();
        let mut r = Resolver::start(lab.cfg());
        let live: Vec<_> = r
            .live()
            .iter()
            .map(|(c, cg)| (cg.unwrap(), c.id.clone()))
            .collect();
        let want: Vec<_> = ids.iter().map(|(cg, id)| (*cg, (*id).to_owned())).collect();
        assert_eq!(live, want);
        // The one whose cgroup is removed is live no more; the other still is.
        let (gone_cg, _) = ids[0];
        r.cgroup_removed(gone_cg);
        let live: Vec<_> = r.live().iter().map(|(c, _)| c.id.clone()).collect();
        assert_eq!(live, vec![ids[1].1.to_owned()]);
        assert_eq!(r.counts().live, 1);
    }

    fn cgroup_event(op: CgroupOp, id: u64, path: &str) -> Event {
        use tracer_common::kind;
        Event {
            kind: match op {
                CgroupOp::Mkdir => kind::CGROUP_MKDIR,
                _ => kind::CGROUP_RMDIR,
            },
            boot_ns: 1,
            task: crate::event::Task {
                tid: 1,
                pid: 1,
                ppid: None,
                uid: 0,
                cgroup_id: 1,
                comm: "systemd".into(),
            },
            body: Body::Cgroup(crate::event::Cgroup {
                op,
                root: 0,
                level: 2,
                id,
                pid: None,
                path: path.to_owned(),
            }),
        }
    }

    #[test]
    fn removed_host_cgroups_are_forgotten_and_their_count_bounded() {
        let lab = Lab::new("hostchurn");
        let mut r = Resolver::start(lab.cfg());
        let base = r.counts().slots;
        // Ids that were never directories: what matters is the records, as the kernel sends
        // them, for cgroups made and removed faster than anyone looks.
        for i in 0..5_000u64 {
            let id = 1_000_000 + i;
            let path = format!("/user.slice/churn-{i}.scope");
            let a = r.attribute(&cgroup_event(CgroupOp::Mkdir, id, &path));
            assert_eq!(a.other, Some(Attribution::Unknown), "not placed yet");
            r.attribute(&cgroup_event(CgroupOp::Rmdir, id, &path));
        }
        let c = r.counts();
        assert!(
            c.slots <= base + REMOVED_MAX,
            "5,000 removed host cgroups leave at most {REMOVED_MAX} slots: {c:?}"
        );
        assert_eq!(c.slots_evicted, 0, "removal, not the cap, bounded them");
        // The newest removed one still resolves for late records; an old one is forgotten.
        assert!(r.by_cgroup.contains_key(&(1_000_000 + 4_999)));
        assert!(!r.by_cgroup.contains_key(&1_000_000));
        // After the grace, all go.
        r.forget_removed(Instant::now() + REMOVED_GRACE);
        assert_eq!(r.counts().slots, base);
    }

    #[test]
    fn host_cgroups_never_removed_are_capped_and_counted() {
        let lab = Lab::new("hostcap");
        let mut cfg = lab.cfg();
        cfg.slots_max = 100;
        let mut r = Resolver::start(cfg);
        for i in 0..1_000u64 {
            r.cgroup_created(2_000_000 + i, &format!("/system.slice/s{i}.service"));
            assert!(r.counts().slots <= 100);
        }
        let c = r.counts();
        assert!(c.slots_evicted >= 900, "{c:?}");
        assert_eq!(c.slots as u64 + c.slots_evicted, 1_000);
        // A container's entry is never shed: it lives as long as the container.
        let cg = lab.cgroup(&format!("/docker/{ID}"));
        lab.state(
            "docker/runtime-runc/moby",
            ID,
            &format!("/docker/{ID}"),
            &[],
        );
        r.rescan();
        for i in 0..500u64 {
            r.cgroup_created(3_000_000 + i, &format!("/system.slice/t{i}.service"));
        }
        assert_eq!(container(r.resolve(cg, None)).id, ID);
    }

    #[test]
    fn names_of_containers_no_longer_known_are_pruned() {
        let lab = Lab::new("names");
        let mut r = Resolver::start(lab.cfg());
        for i in 0..50 {
            let id = format!("c{i}");
            lab.state("runc", &id, &format!("/n/{id}"), &[]);
            lab.cgroup(&format!("/n/{id}"));
        }
        r.rescan();
        for i in 0..50 {
            r.set_names(
                &format!("c{i}"),
                Names {
                    image: Some("busybox".into()),
                    ..Names::default()
                },
            );
        }
        // Named before it shows up: kept for the grace.
        r.set_names("not-yet", Names::default());
        assert_eq!(r.counts().names, 51);
        fs::remove_dir_all(lab.dir.join("run/runc")).unwrap();
        r.rescan();
        assert_eq!(r.counts().tombstones, 50);
        assert_eq!(r.counts().names, 51, "tombstones keep their names");
        // Tombstones expire: their names go with them; the early one stays within its grace.
        r.expire(Instant::now() + r.cfg.tombstone_ttl + Duration::from_secs(1));
        let c = r.counts();
        assert_eq!((c.tombstones, c.live), (0, 0));
        assert_eq!(c.names, 0, "past the grace too: {c:?}");
        r.set_names("not-yet", Names::default());
        r.expire(Instant::now());
        assert_eq!(r.counts().names, 1);
    }

    #[test]
    fn tombstones_are_bounded() {
        let lab = Lab::new("bound");
        let mut cfg = lab.cfg();
        cfg.tombstone_max = 2;
        let mut r = Resolver::new(cfg);
        for i in 0..5 {
            let id = format!("c{i}");
            lab.state("runc", &id, &format!("/b/{id}"), &[]);
            lab.cgroup(&format!("/b/{id}"));
        }
        r.rescan();
        fs::remove_dir_all(lab.dir.join("run/runc")).unwrap();
        r.rescan();
        assert_eq!(
            r.containers().iter().filter(|(_, _, gone)| *gone).count(),
            2
        );
    }
}
