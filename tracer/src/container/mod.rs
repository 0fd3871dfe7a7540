//! Container discovery and attribution.
//!
//! - [`cgroup_path`]: which container a cgroup path (or `/proc/<pid>/cgroup`) belongs to.
//! - [`runc_state`]: runc's `state.json`.
//! - [`oci_config`]: the OCI bundle's `config.json`.
//! - [`scan`]: the only part that touches the file system: lists runc state roots and
//!   builds a [`ContainerMeta`] per container.
//!
//! Everything else here is pure. Names only ever come from runtime state (labels,
//! annotations), never from guessing at a cgroup path, so an unknown container stays
//! unnamed rather than wrongly named.

pub mod cgroup_path;
pub mod oci_config;
pub mod runc_state;
pub mod scan;

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

pub use self::{
    cgroup_path::{
        cgroup_path_matches, is_containerd_id, is_hex_id, parse_cgroup_path,
        parse_cgroup_path_with_known, parse_proc_cgroup, CgroupMatch, KnownContainers, ProcCgroup,
        RuntimeHint,
    },
    oci_config::{parse_oci_config, read_oci_config, OciConfig, OciConfigError},
    runc_state::{parse_runc_state, read_runc_state, RuncState, StateError},
    scan::{default_state_roots, scan_state_roots, state_roots_in, ScanResult},
};

/// The runtime that manages a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Docker (dockerd through containerd; runc root `/run/docker/runtime-runc/<ns>`).
    Docker,
    /// containerd (runc root `/run/containerd/runc/<ns>`).
    Containerd,
    /// runc used directly, or a runtime not recognised (runc root `/run/runc`).
    Runc,
    /// CRI-O (runc root `/run/runc`, cgroups `crio-<id>`).
    CriO,
    /// Podman (runc root `/run/runc`, cgroups `libpod-<id>`).
    Podman,
}

impl Runtime {
    /// Lowercase name, as in the event model: `docker`, `containerd`, `runc`, `crio`,
    /// `podman`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Runc => "runc",
            Runtime::CriO => "crio",
            Runtime::Podman => "podman",
        }
    }

    fn hint(self) -> RuntimeHint {
        match self {
            Runtime::Docker => RuntimeHint::Docker,
            Runtime::Containerd => RuntimeHint::Containerd,
            Runtime::Runc => RuntimeHint::Unknown,
            Runtime::CriO => RuntimeHint::CriO,
            Runtime::Podman => RuntimeHint::Podman,
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kubernetes pod of a container, from its labels or annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Container name in the pod (`None` for the pod sandbox, the "pause" container).
    pub container: Option<String>,
    /// Pod UID.
    pub uid: Option<String>,
}

/// What ctrace knows about one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerMeta {
    /// The managing runtime.
    pub runtime: Runtime,
    /// Full container id (64 hex digits for Docker/CRI; any containerd id otherwise).
    pub id: String,
    /// Human name, when the runtime state carries one (Kubernetes container name).
    pub name: Option<String>,
    /// Image reference, when the runtime state carries one.
    pub image: Option<String>,
    /// containerd namespace (`default`, `k8s.io`, ...).
    pub namespace: Option<String>,
    /// Labels and annotations (runc's `bundle` label excluded: see `bundle`).
    pub labels: BTreeMap<String, String>,
    /// Kubernetes pod, when the labels say so.
    pub pod: Option<PodInfo>,
    /// Host pid of the container's init process.
    pub init_pid: Option<u32>,
    /// Start time of the init process, clock ticks since boot (pid reuse check).
    pub init_start: Option<u64>,
    /// Creation time, RFC 3339.
    pub created: Option<String>,
    /// The container's cgroup inside the unified hierarchy (else a v1 one), e.g.
    /// `/docker/<id>`.
    pub cgroup_path: Option<String>,
    /// Cgroup paths inside their hierarchies, by controller, where one differs from
    /// `cgroup_path` (on hybrid hosts runc records the same path for each of a dozen
    /// controllers); `""`, the unified path, whenever runc recorded one. Look a controller
    /// up with `Container::cgroup_path_for`, which falls back to `cgroup_path`.
    pub cgroup_paths: BTreeMap<String, String>,
    /// cgroup v2 id (inode of the unified cgroup directory; what
    /// `bpf_get_current_cgroup_id()` returns), when it could be read.
    pub cgroup_id: Option<u64>,
    /// The runc state root the container was found in.
    pub state_root: PathBuf,
    /// The OCI bundle directory.
    pub bundle: Option<PathBuf>,
}

impl ContainerMeta {
    /// Builds the metadata of one container from its runc state, the state root it was
    /// found in, and its bundle's `config.json` when read. Pure.
    pub fn from_state(state: &RuncState, state_root: &Path, bundle: Option<&OciConfig>) -> Self {
        let (mut runtime, namespace) = runtime_from_state_root(state_root);
        let mut labels = state.labels();
        let bundle_dir = labels
            .remove("bundle")
            .filter(|b| !b.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                namespace
                    .as_deref()
                    .and_then(|ns| containerd_bundle_dir(state_root, ns, &state.id))
            });
        if let Some(cfg) = bundle {
            for (k, v) in &cfg.annotations {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut cgroup_paths = state.hierarchy_cgroup_paths();
        let cgroup_path = cgroup_paths
            .get("")
            .or_else(|| {
                ["memory", "cpu", "pids", "name=systemd"]
                    .iter()
                    .find_map(|c| cgroup_paths.get(*c))
            })
            .cloned()
            .or_else(|| {
                let cg = state.config.cgroups.as_ref()?;
                cg.path
                    .clone()
                    .filter(|p| p.starts_with('/') && p.len() > 1)
            });
        // Kept per container for as long as the agent runs: a v1 controller's path only where
        // it is not the one path already kept.
        cgroup_paths.retain(|ctrl, p| ctrl.is_empty() || cgroup_path.as_ref() != Some(p));
        if runtime == Runtime::Runc {
            let hint = cgroup_path
                .as_deref()
                .and_then(parse_cgroup_path)
                .filter(|m| m.id == state.id)
                .map(|m| m.runtime_hint);
            runtime = match hint {
                Some(RuntimeHint::CriO) => Runtime::CriO,
                Some(RuntimeHint::Podman) => Runtime::Podman,
                _ => Runtime::Runc,
            };
        }
        let pod = pod_from_labels(&labels);
        ContainerMeta {
            runtime,
            id: state.id.clone(),
            name: pod.as_ref().and_then(|p| p.container.clone()),
            image: image_from_labels(&labels),
            namespace,
            labels,
            pod,
            init_pid: state.init_process_pid.filter(|p| *p != 0),
            init_start: state.init_process_start,
            created: state.created.clone().filter(|c| !c.is_empty()),
            cgroup_path,
            cgroup_paths,
            cgroup_id: None,
            state_root: state_root.to_owned(),
            bundle: bundle_dir,
        }
    }

    /// The name to show: the container's name, else its short id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| short_id(&self.id))
    }

    /// The [`RuntimeHint`] matching this container's runtime and cgroup naming.
    pub fn runtime_hint(&self) -> RuntimeHint {
        self.cgroup_path
            .as_deref()
            .and_then(parse_cgroup_path)
            .filter(|m| m.id == self.id)
            .map_or(self.runtime.hint(), |m| m.runtime_hint)
    }
}

/// The runtime (and containerd namespace) that owns a runc state root, from its path:
/// `.../docker/runtime-runc/<x>` is Docker, `.../containerd/runc/<ns>` is containerd
/// (namespace `moby` is Docker's), anything else plain runc. Works for `/run`,
/// `/var/run` and rootless `/run/user/<uid>` prefixes. Pure.
pub fn runtime_from_state_root(root: &Path) -> (Runtime, Option<String>) {
    let comps: Vec<&str> = root
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    match comps.as_slice() {
        [.., "docker", "runtime-runc", _] | [.., "containerd", "runc", "moby"] => {
            (Runtime::Docker, None)
        }
        [.., "containerd", "runc", ns] => (Runtime::Containerd, Some((*ns).to_owned())),
        _ => (Runtime::Runc, None),
    }
}

/// containerd's task (bundle) directory for a container found under the runc root
/// `<prefix>/containerd/runc/<ns>`: `<prefix>/containerd/io.containerd.runtime.v2.task/<ns>/<id>`.
/// `None` for other roots or ids that are not path-safe. Pure.
pub fn containerd_bundle_dir(state_root: &Path, namespace: &str, id: &str) -> Option<PathBuf> {
    if !is_containerd_id(id) || !is_containerd_id(namespace) {
        return None;
    }
    let runc_dir = state_root.parent()?;
    let containerd_dir = runc_dir.parent()?;
    (state_root.file_name()? == namespace
        && runc_dir.file_name()? == "runc"
        && containerd_dir.file_name()? == "containerd")
        .then(|| {
            containerd_dir
                .join("io.containerd.runtime.v2.task")
                .join(namespace)
                .join(id)
        })
}

/// The first 12 characters of a 64-hex id (as `docker ps` shows it); any other id whole.
pub fn short_id(id: &str) -> &str {
    if is_hex_id(id) {
        &id[..12]
    } else {
        id
    }
}

/// Label keys, in order of preference, for each piece of Kubernetes metadata: the
/// `io.kubernetes.*` keys (Docker's kubelet shim labels, CRI-O annotations), then
/// containerd's CRI annotations.
const POD_NAME_KEYS: [&str; 2] = ["io.kubernetes.pod.name", "io.kubernetes.cri.sandbox-name"];
const POD_NAMESPACE_KEYS: [&str; 2] = [
    "io.kubernetes.pod.namespace",
    "io.kubernetes.cri.sandbox-namespace",
];
const POD_CONTAINER_KEYS: [&str; 2] = [
    "io.kubernetes.container.name",
    "io.kubernetes.cri.container-name",
];
const POD_UID_KEYS: [&str; 2] = ["io.kubernetes.pod.uid", "io.kubernetes.cri.sandbox-uid"];
/// containerd CRI, then CRI-O.
const IMAGE_KEYS: [&str; 2] = [
    "io.kubernetes.cri.image-name",
    "io.kubernetes.cri-o.ImageName",
];

fn first_label(labels: &BTreeMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| labels.get(*k))
        .find(|v| !v.is_empty())
        .cloned()
}

/// The Kubernetes pod named by labels/annotations (needs at least pod name and
/// namespace). The CRI sandbox (`io.kubernetes.cri.container-type=sandbox`) and Docker's
/// `POD` infra container get `container: None`.
pub fn pod_from_labels(labels: &BTreeMap<String, String>) -> Option<PodInfo> {
    let name = first_label(labels, &POD_NAME_KEYS)?;
    let namespace = first_label(labels, &POD_NAMESPACE_KEYS)?;
    let is_sandbox = labels
        .get("io.kubernetes.cri.container-type")
        .is_some_and(|t| t == "sandbox");
    let container = first_label(labels, &POD_CONTAINER_KEYS).filter(|c| !is_sandbox && c != "POD");
    Some(PodInfo {
        name,
        namespace,
        container,
        uid: first_label(labels, &POD_UID_KEYS),
    })
}

/// The image reference named by labels/annotations, if any.
pub fn image_from_labels(labels: &BTreeMap<String, String>) -> Option<String> {
    first_label(labels, &IMAGE_KEYS)
}

impl ScanResult {
    /// Every recorded cgroup path and containerd namespace, for
    /// [`parse_cgroup_path_with_known`].
    pub fn known(&self) -> KnownContainers {
        let mut known = KnownContainers::new();
        for ns in &self.containerd_namespaces {
            known.add_containerd_namespace(ns);
        }
        for c in &self.containers {
            let hint = c.runtime_hint();
            let ns = c.namespace.as_deref();
            for p in c.cgroup_paths.values().chain(c.cgroup_path.iter()) {
                known.insert(p, &c.id, hint, ns);
            }
        }
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56";

    #[test]
    fn runtime_from_state_root_forms() {
        let cases: [(&str, Runtime, Option<&str>); 9] = [
            ("/run/docker/runtime-runc/moby", Runtime::Docker, None),
            ("/var/run/docker/runtime-runc/moby", Runtime::Docker, None),
            (
                "/run/user/1000/docker/runtime-runc/moby/",
                Runtime::Docker,
                None,
            ),
            (
                "/run/containerd/runc/default",
                Runtime::Containerd,
                Some("default"),
            ),
            (
                "/run/containerd/runc/k8s.io",
                Runtime::Containerd,
                Some("k8s.io"),
            ),
            ("/run/containerd/runc/moby", Runtime::Docker, None),
            ("/run/runc", Runtime::Runc, None),
            ("/tmp/ctrace-runc-fixture", Runtime::Runc, None),
            ("/run/containerd/runc", Runtime::Runc, None),
        ];
        for (root, rt, ns) in cases {
            assert_eq!(
                runtime_from_state_root(Path::new(root)),
                (rt, ns.map(str::to_owned)),
                "{root}"
            );
        }
    }

    #[test]
    fn containerd_bundle_dir_from_root() {
        assert_eq!(
            containerd_bundle_dir(
                Path::new("/run/containerd/runc/default"),
                "default",
                "redis1"
            ),
            Some(PathBuf::from(
                "/run/containerd/io.containerd.runtime.v2.task/default/redis1"
            ))
        );
        assert_eq!(
            containerd_bundle_dir(Path::new("/run/containerd/runc/default"), "default", "../x"),
            None
        );
        assert_eq!(
            containerd_bundle_dir(Path::new("/run/runc"), "default", "x"),
            None
        );
    }

    #[test]
    fn short_id_forms() {
        assert_eq!(short_id(ID), "26d900491972");
        assert_eq!(short_id("redis1"), "redis1");
        assert_eq!(short_id(&ID.to_uppercase()), ID.to_uppercase());
        assert_eq!(short_id("é"), "é");
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn pod_from_docker_shim_labels() {
        let l = labels(&[
            ("io.kubernetes.pod.name", "web-1"),
            ("io.kubernetes.pod.namespace", "prod"),
            ("io.kubernetes.container.name", "nginx"),
            ("io.kubernetes.pod.uid", "u-1"),
        ]);
        assert_eq!(
            pod_from_labels(&l),
            Some(PodInfo {
                name: "web-1".into(),
                namespace: "prod".into(),
                container: Some("nginx".into()),
                uid: Some("u-1".into()),
            })
        );
        let mut infra = l.clone();
        infra.insert("io.kubernetes.container.name".into(), "POD".into());
        assert_eq!(pod_from_labels(&infra).unwrap().container, None);
    }

    #[test]
    fn pod_from_cri_annotations_and_sandbox() {
        let l = labels(&[
            ("io.kubernetes.cri.sandbox-name", "web-1"),
            ("io.kubernetes.cri.sandbox-namespace", "prod"),
            ("io.kubernetes.cri.container-name", "nginx"),
            ("io.kubernetes.cri.container-type", "container"),
        ]);
        let p = pod_from_labels(&l).unwrap();
        assert_eq!((p.name.as_str(), p.namespace.as_str()), ("web-1", "prod"));
        assert_eq!(p.container.as_deref(), Some("nginx"));
        let sandbox = labels(&[
            ("io.kubernetes.cri.sandbox-name", "web-1"),
            ("io.kubernetes.cri.sandbox-namespace", "prod"),
            ("io.kubernetes.cri.container-type", "sandbox"),
        ]);
        assert_eq!(pod_from_labels(&sandbox).unwrap().container, None);
    }

    #[test]
    fn no_pod_without_name_and_namespace() {
        assert_eq!(pod_from_labels(&labels(&[])), None);
        assert_eq!(
            pod_from_labels(&labels(&[("io.kubernetes.pod.name", "x")])),
            None
        );
        assert_eq!(
            pod_from_labels(&labels(&[
                ("io.kubernetes.pod.name", ""),
                ("io.kubernetes.pod.namespace", "ns")
            ])),
            None
        );
    }

    #[test]
    fn meta_from_real_docker_like_state() {
        let state = parse_runc_state(include_bytes!(
            "../../tests/fixtures/container/runc-1.1-state-docker-cgroupfs.json"
        ))
        .unwrap();
        let meta =
            ContainerMeta::from_state(&state, Path::new("/run/docker/runtime-runc/moby"), None);
        assert_eq!(meta.runtime, Runtime::Docker);
        assert_eq!(meta.id, ID);
        assert_eq!(meta.name, None);
        assert_eq!(meta.display_name(), "26d900491972");
        assert_eq!(meta.namespace, None);
        assert!(
            meta.labels.is_empty(),
            "bundle label moved out: {:?}",
            meta.labels
        );
        assert_eq!(meta.bundle, Some(PathBuf::from("/tmp/ctrace-bb-bundle")));
        assert_eq!(meta.init_pid, Some(6071));
        assert_eq!(meta.cgroup_path.as_deref(), Some(&*format!("/docker/{ID}")));
        assert_eq!(meta.runtime_hint(), RuntimeHint::Docker);
        // Ten controllers in the state, one path: only the unified entry is kept.
        assert_eq!(
            meta.cgroup_paths,
            BTreeMap::from([(String::new(), format!("/docker/{ID}"))])
        );
    }

    #[test]
    fn meta_keeps_only_controller_paths_that_differ() {
        let state = parse_runc_state(
            br#"{"id":"x","cgroup_paths":{"":"/sys/fs/cgroup/unified/a/x",
                "cpu":"/sys/fs/cgroup/cpu/a/x","memory":"/sys/fs/cgroup/memory/b/x"}}"#,
        )
        .unwrap();
        let meta = ContainerMeta::from_state(&state, Path::new("/run/runc"), None);
        assert_eq!(meta.cgroup_path.as_deref(), Some("/a/x"));
        let kept: Vec<_> = meta
            .cgroup_paths
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(kept, [("", "/a/x"), ("memory", "/b/x")]);

        // No unified entry (a v1-only host): the path kept is the memory controller's.
        let state = parse_runc_state(
            br#"{"id":"x","cgroup_paths":{"cpu":"/sys/fs/cgroup/cpu/a/x",
                "memory":"/sys/fs/cgroup/memory/a/x","pids":"/sys/fs/cgroup/pids/c/x"}}"#,
        )
        .unwrap();
        let meta = ContainerMeta::from_state(&state, Path::new("/run/runc"), None);
        assert_eq!(meta.cgroup_path.as_deref(), Some("/a/x"));
        assert_eq!(
            meta.cgroup_paths,
            BTreeMap::from([("pids".to_owned(), "/c/x".to_owned())])
        );
    }

    #[test]
    fn meta_from_containerd_state_with_cri_bundle() {
        let state = parse_runc_state(
            br#"{"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                 "init_process_pid":4242,"created":"2024-01-02T03:04:05.000000006Z",
                 "cgroup_paths":{"":"/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b8f7a2c_3e5d_4c1a_9f6b_2d7e8a9c0b1d.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope"}}"#,
        )
        .unwrap();
        let cfg = parse_oci_config(include_bytes!(
            "../../tests/fixtures/container/cri-containerd-config.json"
        ))
        .unwrap();
        let meta =
            ContainerMeta::from_state(&state, Path::new("/run/containerd/runc/k8s.io"), Some(&cfg));
        assert_eq!(meta.runtime, Runtime::Containerd);
        assert_eq!(meta.namespace.as_deref(), Some("k8s.io"));
        assert_eq!(meta.name.as_deref(), Some("nginx"));
        assert_eq!(meta.display_name(), "nginx");
        assert_eq!(meta.image.as_deref(), Some("docker.io/library/nginx:1.25"));
        let pod = meta.pod.as_ref().unwrap();
        assert_eq!(
            (pod.name.as_str(), pod.namespace.as_str()),
            ("web-7d9c5b8f6-abcde", "web")
        );
        assert_eq!(
            pod.uid.as_deref(),
            Some("0b8f7a2c-3e5d-4c1a-9f6b-2d7e8a9c0b1d")
        );
        assert_eq!(
            meta.bundle,
            Some(PathBuf::from(
                "/run/containerd/io.containerd.runtime.v2.task/k8s.io/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            ))
        );
        assert_eq!(meta.runtime_hint(), RuntimeHint::CriContainerd);
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json["runtime"], "containerd");
        assert_eq!(json["pod"]["container"], "nginx");
    }

    #[test]
    fn meta_runc_root_refined_by_cgroup_naming() {
        let state = parse_runc_state(
            format!(r#"{{"id":"{ID}","cgroup_paths":{{"":"/sys/fs/cgroup/machine.slice/libpod-{ID}.scope"}}}}"#)
                .as_bytes(),
        )
        .unwrap();
        let meta = ContainerMeta::from_state(&state, Path::new("/run/runc"), None);
        assert_eq!(meta.runtime, Runtime::Podman);
        // A cgroup naming another id does not change the runtime.
        let state = parse_runc_state(
            format!(r#"{{"id":"other","cgroup_paths":{{"":"/sys/fs/cgroup/crio-{ID}.scope"}}}}"#)
                .as_bytes(),
        )
        .unwrap();
        let meta = ContainerMeta::from_state(&state, Path::new("/run/runc"), None);
        assert_eq!(meta.runtime, Runtime::Runc);
    }

    #[test]
    fn meta_cgroup_path_falls_back_to_config_path() {
        let state =
            parse_runc_state(br#"{"id":"redis1","config":{"cgroups":{"path":"/default/redis1"}}}"#)
                .unwrap();
        let meta =
            ContainerMeta::from_state(&state, Path::new("/run/containerd/runc/default"), None);
        assert_eq!(meta.cgroup_path.as_deref(), Some("/default/redis1"));
        assert_eq!(meta.init_pid, None);
    }

    #[test]
    fn runtime_serializes_lowercase() {
        assert_eq!(serde_json::to_string(&Runtime::CriO).unwrap(), "\"crio\"");
        assert_eq!(Runtime::Docker.to_string(), "docker");
    }
}
