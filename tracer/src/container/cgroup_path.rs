//! Container attribution from cgroup paths (pure; no I/O).
//!
//! A cgroup path is the path of a cgroup inside its hierarchy, as shown in
//! `/proc/<pid>/cgroup` or carried by the `cgroup:*` tracepoints (`/docker/<id>`), not the
//! path of its directory under `/sys/fs/cgroup`.
//!
//! Forms recognised by [`parse_cgroup_path`] (cgroup v1 controller paths and v2 unified paths
//! look the same):
//!
//! | driver   | runtime                 | path                                                           |
//! |----------|-------------------------|----------------------------------------------------------------|
//! | cgroupfs | Docker                  | `/docker/<id>`                                                 |
//! | systemd  | Docker                  | `/system.slice/docker-<id>.scope`                              |
//! | cgroupfs | Kubernetes (any CRI)    | `/kubepods/burstable/pod<uid>/<id>`                            |
//! | systemd  | Kubernetes + containerd | `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope` |
//! | systemd  | CRI-O                   | `.../crio-<id>.scope` (cgroupfs: `.../crio-<id>`)              |
//! | systemd  | Podman                  | `.../libpod-<id>.scope` (cgroupfs: `/libpod_parent/libpod-<id>`) |
//! | systemd  | nerdctl                 | `/system.slice/nerdctl-<id>.scope`                             |
//! | mixed    | any                     | `/system.slice/containerd.service/<slice>:cri-containerd:<id>` |
//!
//! `<id>` must be exactly 64 lowercase hex digits: anything else is not taken for an id, so
//! garbage never comes out as one. Nested containers (Docker in Docker:
//! `/docker/<id1>/docker/<id2>`) resolve to the innermost container; sub-cgroups below a
//! container's cgroup (`.../docker-<id>.scope/init.scope`, podman's `.../container`) belong
//! to that container. Monitor cgroups (`crio-conmon-<id>.scope`, `libpod-conmon-<id>.scope`)
//! are not containers.
//!
//! containerd's own default, `/<namespace>/<container id>` with an arbitrary id such as
//! `redis1`, cannot be told apart from any other two-level cgroup by its look alone: it is
//! only accepted by [`parse_cgroup_path_with_known`], given the containerd namespaces that
//! exist on the host, and exact cgroup paths read from runc state win over every guess.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// Which runtime's naming convention a cgroup path follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeHint {
    /// `/docker/<id>`, `docker-<id>.scope`.
    Docker,
    /// containerd without CRI: `/<ns>/<id>` (known namespaces only), `nerdctl-<id>.scope`.
    Containerd,
    /// containerd's CRI plugin: `cri-containerd-<id>.scope`.
    CriContainerd,
    /// CRI-O: `crio-<id>.scope`, `crio-<id>`.
    CriO,
    /// Podman: `libpod-<id>.scope`, `libpod-<id>`.
    Podman,
    /// A bare 64-hex id under a parent that names no runtime (e.g. Kubernetes cgroupfs pods,
    /// `docker run --cgroup-parent`).
    Unknown,
}

/// A container found in a cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupMatch {
    /// The runtime whose naming the path follows.
    pub runtime_hint: RuntimeHint,
    /// Full container id: 64 lowercase hex digits, or a containerd id for `/<ns>/<id>`.
    pub id: String,
    /// containerd namespace, for `/<ns>/<id>` paths.
    pub namespace: Option<String>,
    /// Kubernetes pod UID (with dashes), when the container's parent cgroup is a pod's.
    pub pod_uid: Option<String>,
    /// Kubernetes `QoS` class of that pod: `guaranteed`, `burstable` or `besteffort`.
    pub qos: Option<String>,
}

/// True for exactly 64 lowercase hex digits (a Docker/CRI/OCI container id).
pub fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for a valid containerd identifier: alphanumeric runs joined by single `.`, `_` or
/// `-`, at most 76 characters (containerd's `identifiers.Validate`).
pub fn is_containerd_id(s: &str) -> bool {
    if s.is_empty() || s.len() > 76 {
        return false;
    }
    let mut prev_sep = true; // no separator at the start
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => prev_sep = false,
            b'.' | b'_' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep
}

/// The innermost container named by `path`, from its look alone.
///
/// Returns `None` for host cgroups, pod-level cgroups, monitor (conmon) cgroups and anything
/// whose id is not 64 lowercase hex digits.
pub fn parse_cgroup_path(path: &str) -> Option<CgroupMatch> {
    let comps = components(path);
    pure_matches(&comps).pop().map(|(_, m)| m)
}

/// Every container named by `path`, outermost first (more than one for nested containers).
pub fn cgroup_path_matches(path: &str) -> Vec<CgroupMatch> {
    let comps = components(path);
    pure_matches(&comps).into_iter().map(|(_, m)| m).collect()
}

/// What is known about the containers on this host, for [`parse_cgroup_path_with_known`].
///
/// Built from runc state (`cgroup_paths`, `config.cgroups.path`) and from the list of
/// containerd namespaces (`/run/containerd/runc/<ns>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownContainers {
    /// Normalised cgroup path -> container; `None` when two containers claim the same path.
    by_path: BTreeMap<String, Option<KnownEntry>>,
    containerd_namespaces: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KnownEntry {
    id: String,
    runtime_hint: RuntimeHint,
    namespace: Option<String>,
}

impl KnownContainers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that container `id` owns the cgroup at `cgroup_path` (a path inside a
    /// hierarchy, such as `/default/redis1`). The root cgroup is ignored. A path claimed by
    /// two different containers is marked ambiguous and never resolved.
    pub fn insert(
        &mut self,
        cgroup_path: &str,
        id: &str,
        runtime_hint: RuntimeHint,
        namespace: Option<&str>,
    ) {
        let comps = components(cgroup_path);
        if comps.is_empty() || id.is_empty() {
            return;
        }
        let entry = KnownEntry {
            id: id.to_owned(),
            runtime_hint,
            namespace: namespace.map(str::to_owned),
        };
        let key = join(&comps);
        match self.by_path.get(&key) {
            None => {
                self.by_path.insert(key, Some(entry));
            }
            Some(Some(existing)) if *existing == entry => {}
            Some(_) => {
                self.by_path.insert(key, None);
            }
        }
    }

    /// Records a containerd namespace that exists on this host (enables `/<ns>/<id>`).
    pub fn add_containerd_namespace(&mut self, namespace: &str) {
        if !namespace.is_empty() {
            self.containerd_namespaces.insert(namespace.to_owned());
        }
    }

    /// Number of distinct cgroup paths recorded.
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// True when no cgroup path is recorded.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

/// Like [`parse_cgroup_path`], but also uses what is known about the host's containers.
///
/// Candidates, innermost wins: a recorded cgroup path equal to `path` or to one of its
/// ancestors (exact, from runc state); `/<ns>/<id>` when `<ns>` is a known containerd
/// namespace and `<id>` a valid containerd id; and the forms of [`parse_cgroup_path`]. At the
/// same depth the recorded path wins, then the containerd form. A path recorded for two
/// containers is never used.
pub fn parse_cgroup_path_with_known(path: &str, known: &KnownContainers) -> Option<CgroupMatch> {
    let comps = components(path);
    let mut best: Option<(usize, CgroupMatch)> = pure_matches(&comps).pop();
    let mut consider = |idx: usize, m: CgroupMatch| {
        if best.as_ref().is_none_or(|(b, _)| idx >= *b) {
            best = Some((idx, m));
        }
    };

    if comps.len() >= 2
        && known.containerd_namespaces.contains(comps[0])
        && is_containerd_id(comps[1])
    {
        consider(
            1,
            CgroupMatch {
                runtime_hint: RuntimeHint::Containerd,
                id: comps[1].to_owned(),
                namespace: Some(comps[0].to_owned()),
                pod_uid: None,
                qos: None,
            },
        );
    }

    // The longest recorded ancestor-or-self; an ambiguous one stops the search, since a
    // shorter one would be an outer container, not the one this path is in.
    for end in (1..=comps.len()).rev() {
        if let Some(entry) = known.by_path.get(&join(&comps[..end])) {
            if let Some(e) = entry {
                let idx = end - 1;
                let pod = pod_of_parent(&comps, idx);
                consider(
                    idx,
                    CgroupMatch {
                        runtime_hint: e.runtime_hint,
                        id: e.id.clone(),
                        namespace: e.namespace.clone(),
                        pod_uid: pod.as_ref().map(|p| p.uid.clone()),
                        qos: pod.map(|p| p.qos.to_owned()),
                    },
                );
            }
            break;
        }
    }
    best.map(|(_, m)| m)
}

/// `/proc/<pid>/cgroup`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcCgroup {
    /// The cgroup v2 (unified) path, from the `0::<path>` line.
    pub unified: Option<String>,
    /// True when the kernel marked the unified cgroup ` (deleted)` (removed while the task
    /// was still a zombie in it).
    pub unified_deleted: bool,
    /// cgroup v1 paths by controller (`memory`, `cpu`, `name=systemd`, ...); a co-mounted
    /// hierarchy (`2:cpu,cpuacct:/x`) is listed under each of its controllers.
    pub v1: BTreeMap<String, String>,
    /// Lines that were not `<hierarchy id>:<controllers>:<path>`.
    pub malformed_lines: usize,
}

/// v1 controllers consulted, in this order, when the unified path names no container.
const V1_PREFERENCE: [&str; 5] = ["memory", "cpu", "pids", "cpuset", "name=systemd"];

impl ProcCgroup {
    /// The container this process is in, from its look alone: unified path first, then
    /// v1 controllers (memory, cpu, pids, cpuset, name=systemd, then the others).
    pub fn container(&self) -> Option<CgroupMatch> {
        self.paths_by_preference().find_map(parse_cgroup_path)
    }

    /// Like [`ProcCgroup::container`], with [`parse_cgroup_path_with_known`].
    pub fn container_with_known(&self, known: &KnownContainers) -> Option<CgroupMatch> {
        self.paths_by_preference()
            .find_map(|p| parse_cgroup_path_with_known(p, known))
    }

    fn paths_by_preference(&self) -> impl Iterator<Item = &str> {
        let preferred = V1_PREFERENCE.iter().filter_map(|c| self.v1.get(*c));
        let others = self
            .v1
            .iter()
            .filter(|(c, _)| !V1_PREFERENCE.contains(&c.as_str()))
            .map(|(_, p)| p);
        self.unified
            .iter()
            .chain(preferred)
            .chain(others)
            .map(String::as_str)
    }
}

/// Parses the content of `/proc/<pid>/cgroup` (`<hierarchy id>:<controllers>:<path>` per
/// line). Garbage lines are counted in [`ProcCgroup::malformed_lines`] and skipped; the first
/// line for a hierarchy or controller wins.
pub fn parse_proc_cgroup(content: &str) -> ProcCgroup {
    let mut out = ProcCgroup::default();
    for line in content.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            out.malformed_lines += 1;
            continue;
        };
        let Ok(hier) = hier.parse::<u32>() else {
            out.malformed_lines += 1;
            continue;
        };
        // The kernel appends " (deleted)" to a removed unified cgroup; newer kernels print
        // just " (deleted)" when the task has no cgroup left in that hierarchy.
        let (path, deleted) = match path.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (path, false),
        };
        if hier == 0 && controllers.is_empty() {
            if out.unified.is_none() && !out.unified_deleted {
                out.unified_deleted = deleted;
                if path.starts_with('/') {
                    out.unified = Some(path.to_owned());
                } else if !deleted {
                    out.malformed_lines += 1;
                }
            }
            continue;
        }
        if controllers.is_empty() || !path.starts_with('/') {
            if !deleted {
                out.malformed_lines += 1;
            }
            continue;
        }
        for c in controllers.split(',').filter(|c| !c.is_empty()) {
            out.v1
                .entry(c.to_owned())
                .or_insert_with(|| path.to_owned());
        }
    }
    out
}

fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn join(comps: &[&str]) -> String {
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(c);
    }
    s
}

/// Systemd scope (or cgroupfs directory) prefixes that name a runtime, longest first.
const SCOPE_PREFIXES: [(&str, RuntimeHint); 5] = [
    ("cri-containerd-", RuntimeHint::CriContainerd),
    ("nerdctl-", RuntimeHint::Containerd),
    ("docker-", RuntimeHint::Docker),
    ("libpod-", RuntimeHint::Podman),
    ("crio-", RuntimeHint::CriO),
];

fn hint_for_prefix(prefix: &str) -> RuntimeHint {
    SCOPE_PREFIXES
        .iter()
        .find(|(p, _)| p.strip_suffix('-') == Some(prefix))
        .map_or(RuntimeHint::Unknown, |(_, h)| *h)
}

/// Every component of `comps` that names a container, with its index, outermost first.
fn pure_matches(comps: &[&str]) -> Vec<(usize, CgroupMatch)> {
    let mut out = Vec::new();
    for (idx, comp) in comps.iter().enumerate() {
        let parent = idx.checked_sub(1).map(|p| comps[p]);
        let Some((hint, id, own_pod)) = classify(comp, parent) else {
            continue;
        };
        let pod = own_pod.or_else(|| pod_of_parent(comps, idx));
        out.push((
            idx,
            CgroupMatch {
                runtime_hint: hint,
                id: id.to_owned(),
                namespace: None,
                pod_uid: pod.as_ref().map(|p| p.uid.clone()),
                qos: pod.map(|p| p.qos.to_owned()),
            },
        ));
    }
    out
}

/// Does one path component name a container? Returns its runtime, id and, for the
/// `<slice>:<prefix>:<id>` form, the pod named by the slice.
fn classify<'a>(
    comp: &'a str,
    parent: Option<&str>,
) -> Option<(RuntimeHint, &'a str, Option<PodRef>)> {
    if is_hex_id(comp) {
        let hint = if parent == Some("docker") {
            RuntimeHint::Docker
        } else {
            RuntimeHint::Unknown
        };
        return Some((hint, comp, None));
    }
    // runc's systemd notation used literally by the cgroupfs driver:
    // `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`.
    let mut colon = comp.splitn(3, ':');
    if let (Some(slice), Some(prefix), Some(name)) = (colon.next(), colon.next(), colon.next()) {
        if is_hex_id(name) {
            return Some((hint_for_prefix(prefix), name, systemd_pod_slice(slice)));
        }
        return None;
    }
    let base = comp.strip_suffix(".scope").unwrap_or(comp);
    SCOPE_PREFIXES.iter().find_map(|(prefix, hint)| {
        base.strip_prefix(prefix)
            .filter(|id| is_hex_id(id))
            .map(|id| (*hint, id, None))
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PodRef {
    uid: String,
    qos: &'static str,
}

/// The pod whose cgroup is the direct parent of `comps[idx]`, if any. Containers in a pod
/// are direct children of the pod's cgroup; deeper ones (a nested runtime inside a pod's
/// container) are not that pod's containers.
fn pod_of_parent(comps: &[&str], idx: usize) -> Option<PodRef> {
    let parent_idx = idx.checked_sub(1)?;
    let parent = comps[parent_idx];
    if let Some(pod) = systemd_pod_slice(parent) {
        return Some(pod);
    }
    // cgroupfs: `.../kubepods/[burstable|besteffort/]pod<uid>`.
    let uid = parent.strip_prefix("pod").filter(|u| is_pod_uid(u))?;
    let up = parent_idx.checked_sub(1).map(|i| comps[i])?;
    let qos = match up {
        "burstable" | "besteffort" => {
            let kubepods = parent_idx.checked_sub(2).map(|i| comps[i])?;
            if !is_kubepods(kubepods) {
                return None;
            }
            if up == "burstable" {
                "burstable"
            } else {
                "besteffort"
            }
        }
        _ if is_kubepods(up) => "guaranteed",
        _ => return None,
    };
    Some(PodRef {
        uid: uid.to_owned(),
        qos,
    })
}

/// `kubepods` or a prefixed variant such as kind's `kubelet/kubepods`.
fn is_kubepods(comp: &str) -> bool {
    comp == "kubepods" || comp.ends_with("-kubepods")
}

/// A systemd pod slice: `[<prefix>-]kubepods-[burstable-|besteffort-]pod<uid_with_underscores>.slice`.
fn systemd_pod_slice(comp: &str) -> Option<PodRef> {
    let name = comp.strip_suffix(".slice")?;
    let at = name.find("kubepods-")?;
    if at != 0 && !name[..at].ends_with('-') {
        return None;
    }
    let rest = &name[at + "kubepods-".len()..];
    let (qos, rest) = if let Some(r) = rest.strip_prefix("burstable-") {
        ("burstable", r)
    } else if let Some(r) = rest.strip_prefix("besteffort-") {
        ("besteffort", r)
    } else {
        ("guaranteed", rest)
    };
    let uid = rest.strip_prefix("pod")?.replace('_', "-");
    is_pod_uid(&uid).then_some(PodRef { uid, qos })
}

/// A Kubernetes pod UID: a lowercase UUID (8-4-4-4-12) or, for static pods, 32 lowercase
/// hex digits.
fn is_pod_uid(s: &str) -> bool {
    let hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    match s.len() {
        32 => s.bytes().all(hex),
        36 => s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => hex(b),
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ID: &str = "26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56";
    const ID2: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "0b8f7a2c-3e5d-4c1a-9f6b-2d7e8a9c0b1d";
    const UID_: &str = "0b8f7a2c_3e5d_4c1a_9f6b_2d7e8a9c0b1d";

    fn m(hint: RuntimeHint, id: &str) -> CgroupMatch {
        CgroupMatch {
            runtime_hint: hint,
            id: id.to_owned(),
            namespace: None,
            pod_uid: None,
            qos: None,
        }
    }

    fn in_pod(mut c: CgroupMatch, qos: &str) -> CgroupMatch {
        c.pod_uid = Some(UID.to_owned());
        c.qos = Some(qos.to_owned());
        c
    }

    #[test]
    fn docker_cgroupfs() {
        assert_eq!(
            parse_cgroup_path(&format!("/docker/{ID}")),
            Some(m(RuntimeHint::Docker, ID))
        );
    }

    #[test]
    fn docker_cgroupfs_trailing_slash_and_double_slashes() {
        assert_eq!(
            parse_cgroup_path(&format!("//docker//{ID}/")),
            Some(m(RuntimeHint::Docker, ID))
        );
    }

    #[test]
    fn docker_systemd_scope() {
        assert_eq!(
            parse_cgroup_path(&format!("/system.slice/docker-{ID}.scope")),
            Some(m(RuntimeHint::Docker, ID))
        );
    }

    #[test]
    fn docker_systemd_scope_rootless_under_user_slices() {
        let p = format!("/user.slice/user-1000.slice/user@1000.service/docker-{ID}.scope");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Docker, ID)));
    }

    #[test]
    fn docker_systemd_scope_with_init_scope_sub_cgroup() {
        let p = format!("/system.slice/docker-{ID}.scope/init.scope");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Docker, ID)));
    }

    #[test]
    fn docker_cgroupfs_with_sub_cgroups() {
        let p = format!("/docker/{ID}/system.slice/cron.service");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Docker, ID)));
    }

    #[test]
    fn docker_cgroup_parent_gives_unknown_hint() {
        let p = format!("/custom-parent/{ID}");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Unknown, ID)));
    }

    #[test]
    fn docker_in_docker_gives_innermost() {
        let p = format!("/docker/{ID}/docker/{ID2}");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Docker, ID2)));
        assert_eq!(
            cgroup_path_matches(&p),
            vec![m(RuntimeHint::Docker, ID), m(RuntimeHint::Docker, ID2)]
        );
    }

    #[test]
    fn docker_in_docker_systemd_outer() {
        let p = format!("/system.slice/docker-{ID}.scope/docker/{ID2}");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Docker, ID2)));
    }

    #[test]
    fn kubepods_cgroupfs_burstable() {
        let p = format!("/kubepods/burstable/pod{UID}/{ID}");
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::Unknown, ID), "burstable"))
        );
    }

    #[test]
    fn kubepods_cgroupfs_besteffort() {
        let p = format!("/kubepods/besteffort/pod{UID}/{ID}");
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::Unknown, ID), "besteffort"))
        );
    }

    #[test]
    fn kubepods_cgroupfs_guaranteed_has_no_qos_level() {
        let p = format!("/kubepods/pod{UID}/{ID}");
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::Unknown, ID), "guaranteed"))
        );
    }

    #[test]
    fn kubepods_cgroupfs_kind_node_prefix() {
        let p = format!("/kubelet/kubepods/burstable/pod{UID}/{ID}");
        // `kubelet/kubepods` (kind) keeps the plain `kubepods` component.
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::Unknown, ID), "burstable"))
        );
    }

    #[test]
    fn kubepods_cgroupfs_crio() {
        let p = format!("/kubepods/besteffort/pod{UID}/crio-{ID}");
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::CriO, ID), "besteffort"))
        );
    }

    #[test]
    fn kubepods_pod_level_cgroup_is_not_a_container() {
        assert_eq!(
            parse_cgroup_path(&format!("/kubepods/burstable/pod{UID}")),
            None
        );
        assert_eq!(
            parse_cgroup_path(&format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"
            )),
            None
        );
    }

    #[test]
    fn pod_dir_outside_kubepods_is_not_a_pod() {
        let p = format!("/somewhere/pod{UID}/{ID}");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Unknown, ID)));
    }

    #[test]
    fn kubepods_systemd_cri_containerd_burstable() {
        let p = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::CriContainerd, ID), "burstable"))
        );
    }

    #[test]
    fn kubepods_systemd_guaranteed() {
        let p = format!("/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope");
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::CriContainerd, ID), "guaranteed"))
        );
    }

    #[test]
    fn kubepods_systemd_crio_besteffort() {
        let p = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{ID}.scope"
        );
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::CriO, ID), "besteffort"))
        );
    }

    #[test]
    fn kubepods_systemd_docker() {
        let p = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/docker-{ID}.scope"
        );
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::Docker, ID), "besteffort"))
        );
    }

    #[test]
    fn kubepods_systemd_kind_node_prefix() {
        let p = format!(
            "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::CriContainerd, ID), "burstable"))
        );
    }

    #[test]
    fn kubepods_static_pod_uid_is_32_hex() {
        let uid = "6a3b1c9e0f2d4e5a8b7c6d5e4f3a2b1c";
        let p = format!("/kubepods/burstable/pod{uid}/{ID}");
        let got = parse_cgroup_path(&p).unwrap();
        assert_eq!(got.pod_uid.as_deref(), Some(uid));
    }

    #[test]
    fn systemd_notation_used_literally_by_cgroupfs_driver() {
        let p = format!(
            "/system.slice/containerd.service/kubepods-burstable-pod{UID_}.slice:cri-containerd:{ID}"
        );
        assert_eq!(
            parse_cgroup_path(&p),
            Some(in_pod(m(RuntimeHint::CriContainerd, ID), "burstable"))
        );
        let p = format!("/system.slice:docker:{ID}");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Docker, ID)));
    }

    #[test]
    fn nested_runtime_in_pod_container_is_not_that_pods_container() {
        let p = format!("/kubepods/burstable/pod{UID}/{ID}/docker/{ID2}");
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Docker, ID2)));
    }

    #[test]
    fn crio_systemd_scope_and_conmon_is_not_a_container() {
        assert_eq!(
            parse_cgroup_path(&format!("/machine.slice/crio-{ID}.scope")),
            Some(m(RuntimeHint::CriO, ID))
        );
        assert_eq!(
            parse_cgroup_path(&format!("/machine.slice/crio-conmon-{ID}.scope")),
            None
        );
    }

    #[test]
    fn podman_systemd_scope_with_container_sub_cgroup() {
        let p = format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        );
        assert_eq!(parse_cgroup_path(&p), Some(m(RuntimeHint::Podman, ID)));
        assert_eq!(
            parse_cgroup_path(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
    }

    #[test]
    fn podman_cgroupfs() {
        assert_eq!(
            parse_cgroup_path(&format!("/libpod_parent/libpod-{ID}")),
            Some(m(RuntimeHint::Podman, ID))
        );
    }

    #[test]
    fn nerdctl_systemd_scope() {
        assert_eq!(
            parse_cgroup_path(&format!("/system.slice/nerdctl-{ID}.scope")),
            Some(m(RuntimeHint::Containerd, ID))
        );
    }

    #[test]
    fn containerd_default_path_with_name_is_not_guessed() {
        assert_eq!(parse_cgroup_path("/default/redis1"), None);
    }

    #[test]
    fn host_cgroups_are_not_containers() {
        for p in [
            "",
            "/",
            "/init.scope",
            "/system.slice/docker.service",
            "/system.slice/containerd.service",
            "/user.slice/user-0.slice/session-1.scope",
            "/process_api/faa7dbd2c98bf3bb58b1804863d202b1",
            "/docker",
            "/kubepods",
        ] {
            assert_eq!(parse_cgroup_path(p), None, "{p:?}");
        }
    }

    #[test]
    fn ids_that_are_not_64_lowercase_hex_are_rejected() {
        let upper = ID.to_uppercase();
        let short = &ID[..63];
        let long = format!("{ID}0");
        let nonhex = format!("{}g", &ID[..63]);
        for p in [
            format!("/docker/{upper}"),
            format!("/docker/{short}"),
            format!("/docker/{long}"),
            format!("/docker/{nonhex}"),
            format!("/system.slice/docker-{short}.scope"),
            format!("/system.slice/docker-{ID}.scope.bak"),
            format!("/system.slice/docker-{ID} .scope"),
            format!("/system.slice/docker-{ID}\n"),
        ] {
            assert_eq!(parse_cgroup_path(&p), None, "{p:?}");
        }
    }

    #[test]
    fn odd_characters_do_not_panic_or_yield_ids() {
        for p in [
            "/docker/\u{0}\u{1}\u{7f}",
            "/dö€ker/💥/docker-💥.scope",
            "::::",
            "/a:b:c",
            "/kubepods-pod\u{fe0f}.slice/x",
            "/kubepods.slice/kubepods-€pod.slice",
            "/kubepods.slice/€kubepods-pod.slice",
            "pod",
            "/kubepods/burstable/pod/",
        ] {
            assert_eq!(parse_cgroup_path(p), None, "{p:?}");
        }
    }

    #[test]
    fn containerd_id_validation() {
        assert!(is_containerd_id("redis1"));
        assert!(is_containerd_id("my-app.v2_x"));
        assert!(is_containerd_id(ID));
        assert!(!is_containerd_id(""));
        assert!(!is_containerd_id("-a"));
        assert!(!is_containerd_id("a-"));
        assert!(!is_containerd_id("a--b"));
        assert!(!is_containerd_id("a b"));
        assert!(!is_containerd_id(&"a".repeat(77)));
    }

    fn known() -> KnownContainers {
        let mut k = KnownContainers::new();
        k.add_containerd_namespace("default");
        k.insert(
            "/default/redis1",
            "redis1",
            RuntimeHint::Containerd,
            Some("default"),
        );
        k.insert(&format!("/docker/{ID}"), ID, RuntimeHint::Docker, None);
        k.insert("/plain-runc", "plain-runc", RuntimeHint::Unknown, None);
        k
    }

    #[test]
    fn known_exact_path_resolves_arbitrary_containerd_id() {
        let got = parse_cgroup_path_with_known("/default/redis1", &known()).unwrap();
        assert_eq!(got.id, "redis1");
        assert_eq!(got.namespace.as_deref(), Some("default"));
        assert_eq!(got.runtime_hint, RuntimeHint::Containerd);
    }

    #[test]
    fn known_path_covers_sub_cgroups() {
        let got = parse_cgroup_path_with_known("/plain-runc/sub/leaf", &known()).unwrap();
        assert_eq!(got.id, "plain-runc");
    }

    #[test]
    fn known_namespace_form_for_unrecorded_container() {
        let got = parse_cgroup_path_with_known("/default/web-2", &known()).unwrap();
        assert_eq!(got.id, "web-2");
        assert_eq!(got.namespace.as_deref(), Some("default"));
    }

    #[test]
    fn unknown_namespace_is_not_taken_for_containerd() {
        assert_eq!(
            parse_cgroup_path_with_known("/other/redis1", &known()),
            None
        );
        assert_eq!(parse_cgroup_path_with_known("/default", &known()), None);
        assert_eq!(
            parse_cgroup_path_with_known("/default/not valid!", &known()),
            None
        );
    }

    #[test]
    fn known_outer_container_loses_to_deeper_nested_id() {
        let p = format!("/docker/{ID}/docker/{ID2}");
        let got = parse_cgroup_path_with_known(&p, &known()).unwrap();
        assert_eq!(got, m(RuntimeHint::Docker, ID2));
    }

    #[test]
    fn known_path_wins_at_same_depth() {
        let mut k = KnownContainers::new();
        k.add_containerd_namespace("k8s.io");
        k.insert(
            &format!("/k8s.io/{ID}"),
            ID,
            RuntimeHint::CriContainerd,
            Some("k8s.io"),
        );
        let got = parse_cgroup_path_with_known(&format!("/k8s.io/{ID}"), &k).unwrap();
        assert_eq!(got.runtime_hint, RuntimeHint::CriContainerd);
        assert_eq!(got.namespace.as_deref(), Some("k8s.io"));
    }

    #[test]
    fn ambiguous_known_path_is_never_used() {
        let mut k = known();
        k.insert("/plain-runc", "someone-else", RuntimeHint::Unknown, None);
        assert_eq!(parse_cgroup_path_with_known("/plain-runc", &k), None);
        // Re-inserting the same owner is not a conflict.
        let mut k = known();
        k.insert("/plain-runc", "plain-runc", RuntimeHint::Unknown, None);
        assert!(parse_cgroup_path_with_known("/plain-runc", &k).is_some());
    }

    #[test]
    fn root_cgroup_is_never_recorded() {
        let mut k = KnownContainers::new();
        k.insert("/", "x", RuntimeHint::Unknown, None);
        k.insert("", "x", RuntimeHint::Unknown, None);
        assert!(k.is_empty());
        assert_eq!(parse_cgroup_path_with_known("/anything", &k), None);
    }

    #[test]
    fn known_falls_back_to_pure_forms() {
        let p = format!("/system.slice/docker-{ID2}.scope");
        assert_eq!(
            parse_cgroup_path_with_known(&p, &known()),
            Some(m(RuntimeHint::Docker, ID2))
        );
    }

    #[test]
    fn known_path_in_pod_gets_pod_uid() {
        let mut k = KnownContainers::new();
        let p = format!("/kubepods/burstable/pod{UID}/{ID}");
        k.insert(&p, ID, RuntimeHint::CriContainerd, Some("k8s.io"));
        let got = parse_cgroup_path_with_known(&p, &k).unwrap();
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(got.runtime_hint, RuntimeHint::CriContainerd);
    }

    const PROC_CGROUP_HYBRID_DOCKER: &str = "\
12:hugetlb:/docker/26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56
9:name=systemd:/docker/26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56
4:memory:/docker/26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56
2:cpu,cpuacct:/docker/26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56
0::/docker/26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56
";

    #[test]
    fn proc_cgroup_hybrid_docker() {
        let pc = parse_proc_cgroup(PROC_CGROUP_HYBRID_DOCKER);
        assert_eq!(pc.unified.as_deref(), Some(&*format!("/docker/{ID}")));
        assert_eq!(pc.v1.get("cpu"), pc.v1.get("cpuacct"));
        assert_eq!(pc.v1.len(), 5);
        assert!(pc.v1.contains_key("name=systemd"));
        assert_eq!(pc.malformed_lines, 0);
        assert_eq!(pc.container(), Some(m(RuntimeHint::Docker, ID)));
    }

    #[test]
    fn proc_cgroup_this_host_shape() {
        // As seen on this machine kind: hybrid, one 32-hex memory parent from the sandbox.
        let pc = parse_proc_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/faa7dbd2c98bf3bb58b1804863d202b1\n1:cpu:/\n0::/\n",
        );
        assert_eq!(pc.unified.as_deref(), Some("/"));
        assert_eq!(pc.container(), None);
    }

    #[test]
    fn proc_cgroup_pure_v2_systemd() {
        let pc = parse_proc_cgroup(&format!("0::/system.slice/docker-{ID}.scope\n"));
        assert!(pc.v1.is_empty());
        assert_eq!(pc.container(), Some(m(RuntimeHint::Docker, ID)));
    }

    #[test]
    fn proc_cgroup_falls_back_to_v1_when_unified_is_root() {
        let pc = parse_proc_cgroup(&format!("4:memory:/docker/{ID}\n1:cpu:/\n0::/\n"));
        assert_eq!(pc.container(), Some(m(RuntimeHint::Docker, ID)));
    }

    #[test]
    fn proc_cgroup_v1_only() {
        let pc = parse_proc_cgroup(&format!(
            "3:pids:/kubepods/besteffort/pod{UID}/{ID}\n1:name=systemd:/kubepods/besteffort/pod{UID}/{ID}\n"
        ));
        assert_eq!(pc.unified, None);
        assert_eq!(
            pc.container(),
            Some(in_pod(m(RuntimeHint::Unknown, ID), "besteffort"))
        );
    }

    #[test]
    fn proc_cgroup_deleted_unified_cgroup() {
        let pc = parse_proc_cgroup(&format!("0::/docker/{ID} (deleted)\n"));
        assert!(pc.unified_deleted);
        assert_eq!(pc.unified.as_deref(), Some(&*format!("/docker/{ID}")));
        let pc = parse_proc_cgroup("1:memory: (deleted)\n0:: (deleted)\n");
        assert!(pc.unified_deleted);
        assert_eq!(pc.unified, None);
        assert_eq!(pc.malformed_lines, 0);
    }

    #[test]
    fn proc_cgroup_tolerates_garbage_lines() {
        let content = format!(
            "garbage\n\nx:memory:/a\n7:pids\n5::/no-controllers\n6:cpu:relative\r\n\u{0}\u{1}:::\n4:memory:/docker/{ID}\r\n0::/\n"
        );
        let pc = parse_proc_cgroup(&content);
        assert_eq!(pc.malformed_lines, 6);
        assert_eq!(
            pc.v1.get("memory").map(String::as_str),
            Some(&*format!("/docker/{ID}"))
        );
        assert_eq!(pc.container(), Some(m(RuntimeHint::Docker, ID)));
    }

    #[test]
    fn proc_cgroup_path_may_contain_colons() {
        let pc = parse_proc_cgroup(&format!(
            "0::/system.slice/containerd.service/kubepods-pod{UID_}.slice:cri-containerd:{ID}\n"
        ));
        assert_eq!(
            pc.container(),
            Some(in_pod(m(RuntimeHint::CriContainerd, ID), "guaranteed"))
        );
    }

    #[test]
    fn proc_cgroup_with_known() {
        let pc = parse_proc_cgroup("1:name=systemd:/default/redis1\n0::/default/redis1\n");
        assert_eq!(pc.container(), None);
        assert_eq!(
            pc.container_with_known(&known()).map(|c| c.id),
            Some("redis1".to_owned())
        );
    }

    proptest! {
        #[test]
        fn parse_cgroup_path_never_panics(s in "\\PC*") {
            if let Some(c) = parse_cgroup_path(&s) {
                prop_assert!(is_hex_id(&c.id));
            }
            let _ = cgroup_path_matches(&s);
            let _ = parse_cgroup_path_with_known(&s, &known());
        }

        #[test]
        fn parse_cgroup_path_never_panics_on_path_like_input(
            parts in proptest::collection::vec(
                "(docker|kubepods|pod|burstable|[a-z0-9_.:-]{0,12}|docker-[0-9a-f]{60,66}\\.scope|[0-9a-f]{64}|kubepods-pod[0-9a-f_]{30,40}\\.slice)",
                0..8,
            )
        ) {
            let p = format!("/{}", parts.join("/"));
            if let Some(c) = parse_cgroup_path(&p) {
                prop_assert!(is_hex_id(&c.id));
            }
            let _ = parse_cgroup_path_with_known(&p, &known());
        }

        #[test]
        fn parse_proc_cgroup_never_panics(s in "\\PC*(\n\\PC*){0,6}") {
            let pc = parse_proc_cgroup(&s);
            let _ = pc.container();
            let _ = pc.container_with_known(&known());
        }
    }
}
