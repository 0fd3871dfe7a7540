//! runc's `state.json` (`<root>/<id>/state.json`), parsed.
//!
//! runc 1.1 writes one per container under its `--root`: `/run/runc/<id>` (plain runc,
//! CRI-O, Podman), `/run/docker/runtime-runc/moby/<id>` (Docker 20.10),
//! `/run/containerd/runc/<ns>/<id>` (containerd). Only the fields ctrace needs are read;
//! unknown fields are ignored and Go's `null` for an empty slice or map reads as empty.
//!
//! Observed layout (runc 1.1.5): top-level `id`, `init_process_pid`, `init_process_start`
//! (clock ticks since boot, field 22 of `/proc/<pid>/stat`), `created` (RFC 3339, ns),
//! `config`, `rootless`, `cgroup_paths` (controller -> absolute directory; the unified
//! hierarchy under the key `""`), `namespace_paths` (`NEWPID` -> `/proc/<pid>/ns/pid`, ...),
//! `external_descriptors`, `intel_rdt_path`. In `config`: `labels` (`"key=value"` strings:
//! the OCI annotations plus `bundle=<bundle dir>`), `hostname`, `rootfs`, `namespaces`,
//! `capabilities` (`Bounding`, `Effective`, ... in upper camel case) and `cgroups` with
//! `path` (the OCI `linux.cgroupsPath`, omitted when empty), or `name` (the id) when no
//! path was given, `parent`/`scope_prefix` for systemd, and `Systemd`.

use std::{collections::BTreeMap, io::Read as _, path::Path};

use serde::{Deserialize, Deserializer, Serialize};

/// Largest state.json or config.json read from disk (real ones are a few KiB to ~100 KiB).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A malformed or unreadable runc `state.json`.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not valid JSON, truncated, or a field of the wrong type.
    #[error("malformed runc state.json: {0}")]
    Json(#[from] serde_json::Error),
    /// The top level is not a JSON object.
    #[error("malformed runc state.json: top level is not a JSON object")]
    NotAnObject,
    /// The `id` field is empty.
    #[error("malformed runc state.json: empty container id")]
    EmptyId,
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes: not a runc state file")]
    TooLarge {
        /// The file.
        path: String,
    },
}

/// The parts of runc's `state.json` that ctrace uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RuncState {
    /// Container id (the directory name under the state root).
    pub id: String,
    /// Host pid of the container's init process.
    #[serde(default)]
    pub init_process_pid: Option<u32>,
    /// Start time of that process in clock ticks since boot; compare with field 22 of
    /// `/proc/<pid>/stat` to rule out pid reuse (see `inspect::read_stat_at`).
    #[serde(default)]
    pub init_process_start: Option<u64>,
    /// Creation time, RFC 3339 with nanoseconds.
    #[serde(default)]
    pub created: Option<String>,
    /// The libcontainer configuration.
    #[serde(default, deserialize_with = "null_default")]
    pub config: RuncConfig,
    /// Rootless container.
    #[serde(default, deserialize_with = "null_default")]
    pub rootless: bool,
    /// Controller -> absolute cgroup directory; `""` is the unified (v2) hierarchy.
    #[serde(default, deserialize_with = "null_default")]
    pub cgroup_paths: BTreeMap<String, String>,
    /// Namespace type (`NEWPID`, `NEWNET`, ...) -> `/proc/<pid>/ns/<type>` path.
    #[serde(default, deserialize_with = "null_default")]
    pub namespace_paths: BTreeMap<String, String>,
}

/// `config` in runc's `state.json` (libcontainer's `configs.Config`, partly).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RuncConfig {
    /// `"key=value"` strings: the OCI annotations plus `bundle=<dir>`.
    #[serde(default, deserialize_with = "null_default")]
    pub labels: Vec<String>,
    /// The container's hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Root filesystem directory on the host.
    #[serde(default)]
    pub rootfs: Option<String>,
    /// cgroup placement.
    #[serde(default)]
    pub cgroups: Option<RuncCgroups>,
    /// Namespaces the container was asked to create or join.
    #[serde(default, deserialize_with = "null_default")]
    pub namespaces: Vec<RuncNamespace>,
}

/// `config.cgroups` in runc's `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RuncCgroups {
    /// Cgroup name (set to the container id when no path was given).
    #[serde(default)]
    pub name: Option<String>,
    /// Parent, for the systemd driver (`system.slice`).
    #[serde(default)]
    pub parent: Option<String>,
    /// The OCI `linux.cgroupsPath`: `/docker/<id>`, or `slice:prefix:name` for systemd.
    #[serde(default)]
    pub path: Option<String>,
    /// Scope prefix, for the systemd driver (`docker`, `cri-containerd`).
    #[serde(default)]
    pub scope_prefix: Option<String>,
    /// Managed through systemd.
    #[serde(default, rename = "Systemd", deserialize_with = "null_default")]
    pub systemd: bool,
}

/// One entry of `config.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RuncNamespace {
    /// `NEWPID`, `NEWNET`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Path of a namespace to join; empty to create one.
    #[serde(default)]
    pub path: Option<String>,
}

/// Parses runc's `state.json`. Unknown fields are ignored; everything but `id` may be
/// missing or `null`.
pub fn parse_runc_state(bytes: &[u8]) -> Result<RuncState, StateError> {
    if !is_json_object(bytes) {
        return Err(StateError::NotAnObject);
    }
    let state: RuncState = serde_json::from_slice(bytes)?;
    if state.id.is_empty() {
        return Err(StateError::EmptyId);
    }
    Ok(state)
}

/// Reads and parses a `state.json` file (at most [`MAX_FILE_BYTES`]).
pub fn read_runc_state(path: &Path) -> Result<RuncState, StateError> {
    let bytes = read_bounded(path).map_err(|e| match e {
        ReadError::Io(source) => StateError::Io {
            path: path.display().to_string(),
            source,
        },
        ReadError::TooLarge => StateError::TooLarge {
            path: path.display().to_string(),
        },
    })?;
    parse_runc_state(&bytes)
}

impl RuncState {
    /// `config.labels` as a map (`key=value`; a label without `=` maps to `""`; a repeated
    /// key keeps its last value).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (l.clone(), String::new()),
            })
            .collect()
    }

    /// The bundle directory (runc's `bundle=<dir>` label).
    pub fn bundle(&self) -> Option<String> {
        self.labels().remove("bundle").filter(|b| !b.is_empty())
    }

    /// Cgroup paths inside their hierarchies (`/docker/<id>`), by controller (`""` for the
    /// unified hierarchy), derived from `cgroup_paths`. A directory not under
    /// `/sys/fs/cgroup` is left out.
    pub fn hierarchy_cgroup_paths(&self) -> BTreeMap<String, String> {
        let hybrid = self.cgroup_paths.keys().any(|k| !k.is_empty());
        self.cgroup_paths
            .iter()
            .filter_map(|(ctrl, dir)| {
                hierarchy_path(ctrl, dir, hybrid).map(|p| (ctrl.clone(), p.to_owned()))
            })
            .collect()
    }

    /// The unified (v2) cgroup path inside its hierarchy, if runc recorded one.
    pub fn unified_cgroup_path(&self) -> Option<String> {
        self.hierarchy_cgroup_paths().remove("")
    }
}

/// Strips the mount point from an absolute cgroup directory as runc records it:
/// `/sys/fs/cgroup/unified/<p>` (hybrid) or `/sys/fs/cgroup/<p>` (pure v2) for the unified
/// hierarchy, `/sys/fs/cgroup/<mount dir>/<p>` for a v1 controller (the mount dir may be a
/// co-mount like `cpu,cpuacct`). Returns `/<p>` (or `/` for the root).
fn hierarchy_path<'a>(controller: &str, dir: &'a str, hybrid: bool) -> Option<&'a str> {
    let rest = dir.strip_prefix("/sys/fs/cgroup")?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let rel = if controller.is_empty() && !hybrid {
        rest
    } else if controller.is_empty() {
        strip_dir(rest, "/unified")?
    } else {
        // Skip the one mount directory component.
        let after = rest.strip_prefix('/')?;
        match after.find('/') {
            Some(i) => &after[i..],
            None => "",
        }
    };
    Some(if rel.is_empty() { "/" } else { rel })
}

fn strip_dir<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(dir)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// True when the first non-blank byte opens a JSON object (serde would also accept an
/// array for a struct, positionally).
pub(crate) fn is_json_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Serde helper: a missing field or a JSON `null` reads as `T::default()`.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub(crate) enum ReadError {
    Io(std::io::Error),
    TooLarge,
}

/// Reads a whole regular file of at most [`MAX_FILE_BYTES`]. Opened non-blocking so that a
/// FIFO planted in a bundle directory cannot hang the caller; anything but a regular file
/// is refused.
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt as _;

    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(ReadError::Io)?;
    if !file.metadata().map_err(ReadError::Io)?.is_file() {
        return Err(ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// runc 1.1.5 on this machine kind: `runc run -d` of a busybox bundle with
    /// `linux.cgroupsPath = "/docker/<id>"` (Docker's cgroupfs layout); trimmed (mounts,
    /// devices) but otherwise as written.
    const REAL_DOCKER_LIKE: &str =
        include_str!("../../tests/fixtures/container/runc-1.1-state-docker-cgroupfs.json");
    /// Same, without a cgroupsPath and with one OCI annotation.
    const REAL_NO_CGROUPS_PATH: &str =
        include_str!("../../tests/fixtures/container/runc-1.1-state-no-cgroups-path.json");
    /// Written by Docker 20.10 (containerd 1.6, runc 1.1.5) on this machine kind for
    /// `docker run --network none busybox:local`; trimmed (mounts, devices, paths).
    const REAL_DOCKER: &str =
        include_str!("../../tests/fixtures/container/docker-20.10-runc-1.1-state.json");
    const ID: &str = "26d9004919729ed8e777d878596a1f7428028464e4ba9a8402d811e29b33ee56";

    #[test]
    fn real_docker_state() {
        let id = "69d35fd4c9a4f3e41f85c6292a2447159728188083f507eb1430fee3d65d7eff";
        let s = parse_runc_state(REAL_DOCKER.as_bytes()).unwrap();
        assert_eq!(s.id, id);
        assert_eq!(s.init_process_pid, Some(31253));
        assert_eq!(
            s.bundle(),
            Some(format!(
                "/run/containerd/io.containerd.runtime.v2.task/moby/{id}"
            ))
        );
        assert_eq!(s.labels().len(), 1, "Docker adds no labels but the bundle");
        let cg = s.config.cgroups.as_ref().unwrap();
        assert_eq!(cg.path.as_deref(), Some(&*format!("/docker/{id}")));
        assert_eq!(s.config.hostname.as_deref(), Some(&id[..12]));
        let want = format!("/docker/{id}");
        let rel = s.hierarchy_cgroup_paths();
        assert_eq!(rel.len(), 10);
        assert!(rel.values().all(|p| *p == want), "{rel:?}");
        let kinds: Vec<_> = s
            .config
            .namespaces
            .iter()
            .map(|n| n.kind.as_str())
            .collect();
        assert_eq!(kinds, ["NEWNS", "NEWNET", "NEWUTS", "NEWPID", "NEWIPC"]);
    }

    #[test]
    fn real_state_docker_cgroupfs_layout() {
        let s = parse_runc_state(REAL_DOCKER_LIKE.as_bytes()).unwrap();
        assert_eq!(s.id, ID);
        assert_eq!(s.init_process_pid, Some(6071));
        assert_eq!(s.init_process_start, Some(34361));
        assert_eq!(s.created.as_deref(), Some("2026-11-29T18:38:13.262143086Z"));
        assert!(!s.rootless);
        assert_eq!(s.bundle().as_deref(), Some("/tmp/ctrace-bb-bundle"));
        let cg = s.config.cgroups.as_ref().unwrap();
        assert_eq!(cg.path.as_deref(), Some(&*format!("/docker/{ID}")));
        assert_eq!(cg.name, None);
        assert!(!cg.systemd);
        assert_eq!(s.config.hostname.as_deref(), Some("26d900491972"));
        assert_eq!(s.cgroup_paths.len(), 10);
        assert_eq!(
            s.namespace_paths.get("NEWPID").map(String::as_str),
            Some("/proc/6071/ns/pid")
        );
        assert_eq!(s.config.namespaces.len(), 4);
        assert_eq!(s.config.namespaces[0].kind, "NEWPID");
        let rel = s.hierarchy_cgroup_paths();
        let want = format!("/docker/{ID}");
        assert_eq!(rel.len(), 10);
        assert!(rel.values().all(|p| *p == want), "{rel:?}");
        assert_eq!(s.unified_cgroup_path(), Some(want));
    }

    #[test]
    fn real_state_without_cgroups_path() {
        let s = parse_runc_state(REAL_NO_CGROUPS_PATH.as_bytes()).unwrap();
        assert_eq!(s.id, "ctrace-fixture-1");
        let cg = s.config.cgroups.as_ref().unwrap();
        assert_eq!(cg.name.as_deref(), Some("ctrace-fixture-1"));
        assert_eq!(cg.path.as_deref(), Some(""));
        let labels = s.labels();
        assert_eq!(
            labels.get("org.example.fixture").map(String::as_str),
            Some("yes")
        );
        assert_eq!(s.bundle().as_deref(), Some("/tmp/ctrace-bb-bundle"));
        let rel = s.hierarchy_cgroup_paths();
        assert_eq!(rel.get("").map(String::as_str), Some("/ctrace-fixture-1"));
        // runc created it relative to its own cgroup, which differed for memory.
        assert_eq!(
            rel.get("memory").map(String::as_str),
            Some("/process_api/faa7dbd2c98bf3bb58b1804863d202b1/ctrace-fixture-1")
        );
        assert_eq!(
            rel.get("name=systemd").map(String::as_str),
            Some("/ctrace-fixture-1")
        );
    }

    #[test]
    fn minimal_state_only_id() {
        let s = parse_runc_state(br#"{"id":"x"}"#).unwrap();
        assert_eq!(s.id, "x");
        assert_eq!(s.init_process_pid, None);
        assert!(s.labels().is_empty());
        assert_eq!(s.bundle(), None);
    }

    #[test]
    fn nulls_read_as_empty() {
        let s = parse_runc_state(
            br#"{"id":"x","init_process_pid":null,"config":{"labels":null,"cgroups":null,"namespaces":null},
                "cgroup_paths":null,"namespace_paths":null,"rootless":null}"#,
        )
        .unwrap();
        assert!(s.config.labels.is_empty());
        assert!(s.cgroup_paths.is_empty());
        let s = parse_runc_state(br#"{"id":"x","config":null}"#).unwrap();
        assert_eq!(s.config, RuncConfig::default());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let s = parse_runc_state(br#"{"id":"x","future":{"a":[1,2]},"config":{"new":1}}"#);
        assert_eq!(s.unwrap().id, "x");
    }

    #[test]
    fn pure_v2_and_systemd_cgroup_paths() {
        let s = parse_runc_state(
            br#"{"id":"x","cgroup_paths":{"":"/sys/fs/cgroup/system.slice/docker-x.scope"}}"#,
        )
        .unwrap();
        assert_eq!(
            s.unified_cgroup_path().as_deref(),
            Some("/system.slice/docker-x.scope")
        );
    }

    #[test]
    fn comounted_v1_controller_and_foreign_mounts() {
        let s = parse_runc_state(
            br#"{"id":"x","cgroup_paths":{"cpu":"/sys/fs/cgroup/cpu,cpuacct/docker/x",
                "memory":"/elsewhere/memory/docker/x","pids":"/sys/fs/cgroup/pids",
                "":"/sys/fs/cgroupfoo/x"}}"#,
        )
        .unwrap();
        let rel = s.hierarchy_cgroup_paths();
        assert_eq!(rel.get("cpu").map(String::as_str), Some("/docker/x"));
        assert_eq!(rel.get("pids").map(String::as_str), Some("/"));
        assert!(!rel.contains_key("memory"));
        assert!(!rel.contains_key(""));
    }

    #[test]
    fn label_without_equals_and_repeated_key() {
        let s = parse_runc_state(br#"{"id":"x","config":{"labels":["a","b=1","b=2","c=x=y"]}}"#)
            .unwrap();
        let l = s.labels();
        assert_eq!(l["a"], "");
        assert_eq!(l["b"], "2");
        assert_eq!(l["c"], "x=y");
    }

    #[test]
    fn missing_or_empty_id_is_an_error() {
        let e = parse_runc_state(br#"{"init_process_pid":1}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `id`"), "{e}");
        let e = parse_runc_state(br#"{"id":""}"#).unwrap_err();
        assert!(matches!(e, StateError::EmptyId));
    }

    #[test]
    fn truncated_state_is_a_clear_error() {
        let cut = &REAL_DOCKER_LIKE.as_bytes()[..REAL_DOCKER_LIKE.len() / 2];
        let e = parse_runc_state(cut).unwrap_err();
        assert!(matches!(e, StateError::Json(_)));
        let msg = e.to_string();
        assert!(msg.starts_with("malformed runc state.json: "), "{msg}");
        assert!(msg.contains("EOF"), "{msg}");
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for bad in [
            &b""[..],
            b"null",
            b"[]",
            br#"["x"]"#,
            b"{",
            b"\xff\xfe",
            br#"{"id":5}"#,
            br#"{"id":"x","init_process_pid":-1}"#,
            br#"{"id":"x","cgroup_paths":[]}"#,
        ] {
            assert!(
                parse_runc_state(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn read_missing_file_names_the_path() {
        let e = read_runc_state(Path::new("/nonexistent/ctrace/state.json")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/nonexistent/ctrace/state.json"), "{msg}");
    }

    proptest! {
        #[test]
        fn parse_runc_state_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_runc_state(&bytes);
        }

        #[test]
        fn parse_runc_state_never_panics_on_cut_real_state(cut in 0usize..4000) {
            let b = REAL_DOCKER_LIKE.as_bytes();
            let _ = parse_runc_state(&b[..cut.min(b.len())]);
        }

        #[test]
        fn parse_runc_state_never_panics_on_jsonish_text(s in r#"\{("[a-z_]{1,12}":(null|-?[0-9]{1,3}|"[^"\\]{0,8}"|\[\]|\{\}),?){0,6}\}"#) {
            if let Ok(st) = parse_runc_state(s.as_bytes()) {
                let _ = st.hierarchy_cgroup_paths();
                let _ = st.labels();
            }
        }
    }
}
