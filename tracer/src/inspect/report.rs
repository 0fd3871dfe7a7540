//! The report of `ctrace inspect` on one container: its identity, processes, namespaces,
//! capabilities against its runtime's default and the host, resources and recent incidents.
//! [`gather`](super::gather()) fills it in, [`render`](super::render()) shows it; `--json`
//! is its serialisation.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::{
    caps::{describe_diff, CapSet, ProcCaps, SeccompMode, OCI_DEFAULT_CAPS},
    diff::{cap_summary, diff, ContainerView},
    namespaces::{HostNsSource, NsSet, NsShare},
    proctree::ProcTree,
    resources::Resources,
};
use crate::{
    container::{PodInfo, Runtime},
    sink::escape::terminal,
};

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
    pub fn of(actual: CapSet, baseline: CapSet) -> Change {
        let (added, dropped) = actual.changes_from(baseline);
        Change {
            added,
            dropped,
            summary: describe_diff(actual, baseline),
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
pub(crate) const INCIDENT_TYPES: [&str; 8] = [
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

impl Report {
    /// Why the inspection of a running container is incomplete (something could not be
    /// read), for after the output; `None` when it is complete.
    pub fn incomplete(&self) -> Option<String> {
        if self.problems.is_empty() {
            return None;
        }
        Some(format!(
            "inspection of {} is incomplete: {}",
            terminal(&self.identity.display),
            terminal(&self.problems.join("; "))
        ))
    }

    /// What `--diff` compares, labelled `label`; `Err`: why it cannot be compared (the
    /// container does not run).
    pub fn view(&self, label: &str) -> Result<ContainerView, String> {
        let (Some(caps), Some(ns)) = (&self.capabilities, &self.namespaces) else {
            let why = self
                .unavailable
                .get("capabilities")
                .or_else(|| self.unavailable.get("namespaces"))
                .cloned()
                .unwrap_or_default();
            return Err(format!(
                "cannot compare {}: {}",
                terminal(&self.identity.display),
                terminal(&why)
            ));
        };
        Ok(ContainerView {
            label: label.to_owned(),
            caps: caps.raw,
            namespaces: ns.list.clone(),
            memory_limit: self.resources.memory_limit_bytes.clone(),
            cpu_quota_cpus: self.resources.cpu_quota.map(|q| q.cpus()),
            pids_limit: self.resources.pids_limit.clone(),
        })
    }
}

/// `--diff --json`: both sides, the differences and the capability sets that differ.
pub fn diff_json(ra: &Report, rb: &Report, va: &ContainerView, vb: &ContainerView) -> Value {
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
        "differences": diff(va, vb),
        "capabilities": caps,
        "summary": cap_summary(va, vb),
    })
}
