//! Discovery: lists runc state roots and reads each container's `state.json` and bundle
//! `config.json`. The only file system access of this module; parsing is in the pure
//! modules next to it. Nothing here fails: what cannot be read becomes a warning.

use std::{
    fs,
    io::ErrorKind,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::{
    oci_config::{read_oci_config, OciConfigError},
    runc_state::{read_runc_state, StateError},
    runtime_from_state_root, ContainerMeta, Runtime,
};

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanResult {
    /// One entry per readable `state.json`, ordered by state root then id.
    pub containers: Vec<ContainerMeta>,
    /// containerd namespaces seen (the `<ns>` of `.../containerd/runc/<ns>` roots).
    pub containerd_namespaces: Vec<String>,
    /// Human-readable problems (unreadable directories, malformed files), one per item.
    pub warnings: Vec<String>,
}

/// The state roots that exist under `/run`: see [`state_roots_in`].
pub fn default_state_roots() -> Vec<PathBuf> {
    state_roots_in(Path::new("/run"))
}

/// The runc state roots that exist under `run_dir`: `<run_dir>/runc`, every
/// `<run_dir>/docker/runtime-runc/<x>` and every `<run_dir>/containerd/runc/<ns>`, sorted.
pub fn state_roots_in(run_dir: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let plain = run_dir.join("runc");
    if plain.is_dir() {
        roots.push(plain);
    }
    for parent in [
        run_dir.join("docker").join("runtime-runc"),
        run_dir.join("containerd").join("runc"),
    ] {
        let mut found: Vec<PathBuf> = fs::read_dir(&parent)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        roots.extend(found);
    }
    roots
}

/// Reads every `<root>/<id>/state.json` under `roots`, enriched with the bundle's
/// `config.json` (runc's `bundle` label, else containerd's task directory). Unreadable
/// roots, malformed or truncated files and id mismatches become warnings; a directory
/// without `state.json` (a container being created or deleted) is skipped quietly.
pub fn scan_state_roots(roots: &[PathBuf]) -> ScanResult {
    let mut out = ScanResult::default();
    for root in roots {
        let (runtime, namespace) = runtime_from_state_root(root);
        if runtime == Runtime::Containerd {
            if let Some(ns) = namespace {
                if !out.containerd_namespaces.contains(&ns) {
                    out.containerd_namespaces.push(ns);
                }
            }
        }
        let entries = match fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) => {
                out.warnings.push(format!(
                    "cannot list runc state root {}: {e}",
                    root.display()
                ));
                continue;
            }
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) if e.file_type().is_ok_and(|t| t.is_dir()) => dirs.push(e.path()),
                Ok(_) => {}
                Err(e) => out.warnings.push(format!(
                    "cannot list runc state root {}: {e}",
                    root.display()
                )),
            }
        }
        dirs.sort();
        for dir in dirs {
            if let Some(meta) = scan_one(root, &dir, &mut out.warnings) {
                out.containers.push(meta);
            }
        }
    }
    out
}

fn scan_one(root: &Path, dir: &Path, warnings: &mut Vec<String>) -> Option<ContainerMeta> {
    let state_path = dir.join("state.json");
    let state = match read_runc_state(&state_path) {
        Ok(s) => s,
        Err(StateError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            log::debug!("{}: no state.json, skipped", dir.display());
            return None;
        }
        Err(e @ (StateError::Io { .. } | StateError::TooLarge { .. })) => {
            warnings.push(format!("skipping container: {e}"));
            return None;
        }
        Err(e) => {
            warnings.push(format!("skipping {}: {e}", state_path.display()));
            return None;
        }
    };
    let dir_name = dir.file_name().map(|n| n.to_string_lossy());
    if dir_name.as_deref() != Some(state.id.as_str()) {
        warnings.push(format!(
            "skipping {}: its id {:?} does not match its directory",
            state_path.display(),
            state.id
        ));
        return None;
    }

    // Bundle location first without the config, then read the config from it.
    let mut meta = ContainerMeta::from_state(&state, root, None);
    if let Some(bundle) = meta.bundle.clone() {
        match read_oci_config(&bundle) {
            Ok(cfg) => meta = ContainerMeta::from_state(&state, root, Some(&cfg)),
            Err(OciConfigError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                log::debug!("{}: no config.json in bundle", bundle.display());
            }
            Err(e) => warnings.push(format!(
                "container {}: bundle config not used: {e}",
                state.id
            )),
        }
    }
    meta.cgroup_id = unified_cgroup_inode(&state.cgroup_paths);
    Some(meta)
}

/// Inode of the unified cgroup directory (the cgroup v2 id on 64-bit kernels), if the
/// recorded directory is under `/sys/fs/cgroup` and exists.
fn unified_cgroup_inode(paths: &std::collections::BTreeMap<String, String>) -> Option<u64> {
    let dir = paths.get("")?;
    if !dir.starts_with("/sys/fs/cgroup/") {
        return None;
    }
    fs::metadata(dir)
        .ok()
        .filter(fs::Metadata::is_dir)
        .map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::container::RuntimeHint;

    const REAL_DOCKER_LIKE: &str =
        include_str!("../../tests/fixtures/container/runc-1.1-state-docker-cgroupfs.json");
    const CRI_CONFIG: &str =
        include_str!("../../tests/fixtures/container/cri-containerd-config.json");
    const DOCKER_ID: &str = "26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56";
    const CRI_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A temporary directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "ctrace-container-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// `<run>/docker/runtime-runc/moby/<id>` (real, bundle label rewritten into the tree),
    /// `<run>/containerd/runc/k8s.io/<id>` with a CRI bundle at containerd's task dir,
    /// `<run>/containerd/runc/default/redis1`, `<run>/runc/` with malformed, truncated,
    /// mismatched and missing state files.
    fn fixture_tree(run: &Path) {
        let bundle = run.join("bundles/docker");
        let docker_state =
            REAL_DOCKER_LIKE.replace("/tmp/ctrace-bb-bundle", bundle.to_str().unwrap());
        write(
            &run.join(format!("docker/runtime-runc/moby/{DOCKER_ID}/state.json")),
            &docker_state,
        );
        write(
            &bundle.join("config.json"),
            r#"{"hostname":"26d900491972"}"#,
        );

        let cri_state = format!(
            r#"{{"id":"{CRI_ID}","init_process_pid":4242,
                "cgroup_paths":{{"":"/sys/fs/cgroup/kubepods/burstable/pod0b8f7a2c-3e5d-4c1a-9f6b-2d7e8a9c0b1d/{CRI_ID}"}}}}"#
        );
        write(
            &run.join(format!("containerd/runc/k8s.io/{CRI_ID}/state.json")),
            &cri_state,
        );
        write(
            &run.join(format!(
                "containerd/io.containerd.runtime.v2.task/k8s.io/{CRI_ID}/config.json"
            )),
            CRI_CONFIG,
        );

        write(
            &run.join("containerd/runc/default/redis1/state.json"),
            r#"{"id":"redis1","init_process_pid":77,"config":{"cgroups":{"path":"/default/redis1"}},
                "cgroup_paths":{"":"/sys/fs/cgroup/unified/default/redis1","memory":"/sys/fs/cgroup/memory/default/redis1"}}"#,
        );
        // Bundle exists but its config is malformed: a warning, the container is kept.
        write(
            &run.join("containerd/io.containerd.runtime.v2.task/default/redis1/config.json"),
            "{ not json",
        );

        write(&run.join("runc/malformed/state.json"), "{\"id\": ");
        write(
            &run.join("runc/truncated/state.json"),
            &REAL_DOCKER_LIKE[..REAL_DOCKER_LIKE.len() / 2],
        );
        write(
            &run.join("runc/mismatch/state.json"),
            r#"{"id":"someone-else"}"#,
        );
        fs::create_dir_all(run.join("runc/being-created")).unwrap();
        write(&run.join("runc/stray-file"), "not a container");
        write(&run.join("runc/plain/state.json"), r#"{"id":"plain"}"#);
        // A directory where the state file should be: unreadable as a file.
        fs::create_dir_all(run.join("runc/weird/state.json")).unwrap();
    }

    #[test]
    fn state_roots_in_expands_runtime_dirs() {
        let tmp = TempDir::new("roots");
        fixture_tree(&tmp.0);
        let roots = state_roots_in(&tmp.0);
        let rel: Vec<_> = roots
            .iter()
            .map(|r| r.strip_prefix(&tmp.0).unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            rel,
            [
                "runc",
                "docker/runtime-runc/moby",
                "containerd/runc/default",
                "containerd/runc/k8s.io"
            ]
        );
        assert!(state_roots_in(&tmp.0.join("nonexistent")).is_empty());
    }

    #[test]
    fn scan_fixture_tree() {
        let tmp = TempDir::new("scan");
        fixture_tree(&tmp.0);
        let mut roots = state_roots_in(&tmp.0);
        roots.push(tmp.0.join("missing-root"));
        let res = scan_state_roots(&roots);

        let ids: Vec<_> = res.containers.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["plain", DOCKER_ID, "redis1", CRI_ID]);
        assert_eq!(res.containerd_namespaces, ["default", "k8s.io"]);

        let docker = &res.containers[1];
        assert_eq!(docker.runtime, Runtime::Docker);
        assert_eq!(docker.bundle, Some(tmp.0.join("bundles/docker")));
        assert_eq!(
            docker.cgroup_path.as_deref(),
            Some(&*format!("/docker/{DOCKER_ID}"))
        );

        let redis = &res.containers[2];
        assert_eq!(redis.runtime, Runtime::Containerd);
        assert_eq!(redis.namespace.as_deref(), Some("default"));
        assert_eq!(redis.cgroup_path.as_deref(), Some("/default/redis1"));
        assert_eq!(redis.init_pid, Some(77));

        let cri = &res.containers[3];
        assert_eq!(cri.name.as_deref(), Some("nginx"));
        assert_eq!(cri.pod.as_ref().unwrap().namespace, "web");
        assert_eq!(cri.image.as_deref(), Some("docker.io/library/nginx:1.25"));

        let w = res.warnings.join("\n");
        assert_eq!(res.warnings.len(), 6, "{w}");
        for needle in [
            "runc/malformed/state.json: malformed runc state.json: EOF",
            "runc/truncated/state.json: malformed runc state.json: EOF",
            "runc/mismatch/state.json: its id \"someone-else\" does not match",
            "runc/weird/state.json",
            "container redis1: bundle config not used: malformed OCI config.json",
            "cannot list runc state root",
        ] {
            assert!(w.contains(needle), "missing {needle:?} in:\n{w}");
        }
    }

    #[test]
    fn scan_result_known_resolves_paths() {
        let tmp = TempDir::new("known");
        fixture_tree(&tmp.0);
        let res = scan_state_roots(&state_roots_in(&tmp.0));
        let known = res.known();

        let got =
            crate::container::parse_cgroup_path_with_known("/default/redis1", &known).unwrap();
        assert_eq!(
            (got.id.as_str(), got.namespace.as_deref()),
            ("redis1", Some("default"))
        );
        assert_eq!(got.runtime_hint, RuntimeHint::Containerd);

        let p = format!("/kubepods/burstable/pod0b8f7a2c-3e5d-4c1a-9f6b-2d7e8a9c0b1d/{CRI_ID}");
        let got = crate::container::parse_cgroup_path_with_known(&p, &known).unwrap();
        assert_eq!(got.id, CRI_ID);
        assert_eq!(got.namespace.as_deref(), Some("k8s.io"));
        assert_eq!(got.qos.as_deref(), Some("burstable"));

        // containerd namespace without any container state is still known.
        let got = crate::container::parse_cgroup_path_with_known("/default/gone", &known).unwrap();
        assert_eq!(got.id, "gone");
    }

    #[test]
    fn scan_of_nothing_is_empty() {
        let res = scan_state_roots(&[]);
        assert!(res.containers.is_empty() && res.warnings.is_empty());
    }

    #[test]
    fn unified_cgroup_inode_of_real_root_cgroup() {
        // The root of whichever cgroup hierarchy is mounted here has an inode; a path
        // outside /sys/fs/cgroup is never looked at.
        let mut m = std::collections::BTreeMap::new();
        m.insert(String::new(), "/tmp".to_owned());
        assert_eq!(unified_cgroup_inode(&m), None);
        m.insert(
            String::new(),
            "/sys/fs/cgroup/nonexistent-ctrace".to_owned(),
        );
        assert_eq!(unified_cgroup_inode(&m), None);
    }
}
