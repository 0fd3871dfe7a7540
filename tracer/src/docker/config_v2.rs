//! Docker's on-disk container state: `<root>/<id>/config.v2.json` and `hostconfig.json`.
//!
//! dockerd rewrites both files on every state change (create, start, die, rename, ...), so
//! they name a container and describe its last known state with no daemon reachable. `root`
//! is `/var/lib/docker/containers` unless dockerd runs with another `--data-root`.
//!
//! Observed layout (dockerd 20.10.24, compact JSON, Go field names):
//! - `config.v2.json`: top-level `ID`, `Name` (`"/web"`), `Created` (RFC 3339, ns),
//!   `Image` (`sha256:<64 hex>`, the image id), `RestartCount` (restarts done by the restart
//!   policy; a manual `docker restart` does not count), `State` { `Running`, `Paused`,
//!   `Restarting`, `OOMKilled`, `RemovalInProgress`, `Dead`, `Pid` (0 when not running),
//!   `ExitCode`, `Error`, `StartedAt`, `FinishedAt` (Go's zero time `0001-01-01T00:00:00Z`
//!   when it never happened), `Health` }, `Config` { `Image` (the reference as the user
//!   typed it, e.g. `busybox:local`), `Labels` (`null` when none), `Cmd`, `Env`, ... }, plus
//!   `NetworkSettings`, `MountPoints`, paths, `Driver`, ... which are ignored. There is no
//!   `State.Status` string on disk (the API derives it).
//! - `hostconfig.json`: `Memory` (bytes, 0 = unlimited), `NanoCpus` (`--cpus` × 1e9),
//!   `CpuQuota`/`CpuPeriod` (µs, 0 = unset), `PidsLimit` (`null` when unset), `CapAdd`/
//!   `CapDrop` (`null` or `["CAP_SYS_PTRACE"]`, `["ALL"]`), `PidMode` (`""`, `"host"`,
//!   `"container:<id>"`), `Privileged`, `RestartPolicy` { `Name` (`no`, `always`,
//!   `unless-stopped`, `on-failure`), `MaximumRetryCount` }, `CgroupParent`, ...
//!
//! Parsing is tolerant: unknown fields are ignored, missing fields and Go's `null` read as
//! empty. A file that is not JSON, truncated, not an object, or has a known field of the
//! wrong type is a [`DockerDiskError`], never a panic. A `Running: true` on disk may be stale
//! after a daemon crash: check the pid before trusting it.

use std::{
    collections::BTreeMap,
    io::Read as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Deserializer, Serialize};

/// Docker's default container state directory.
pub const DEFAULT_CONTAINERS_ROOT: &str = "/var/lib/docker/containers";

/// Largest `config.v2.json` or `hostconfig.json` read (real ones are 1 to ~100 KiB).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Name of the container config file inside a container directory.
pub const CONFIG_V2_FILE: &str = "config.v2.json";

/// Name of the host config file inside a container directory.
pub const HOSTCONFIG_FILE: &str = "hostconfig.json";

/// A Docker container directory that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum DockerDiskError {
    /// Not valid JSON, truncated, or a known field of the wrong type.
    #[error("malformed {file}: {source}")]
    Json {
        /// The file (a path when read from disk, else its name).
        file: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The top level is not a JSON object.
    #[error("malformed {file}: top level is not a JSON object")]
    NotAnObject {
        /// The file.
        file: String,
    },
    /// `config.v2.json` has no `ID`.
    #[error("malformed {file}: empty container ID")]
    EmptyId {
        /// The file.
        file: String,
    },
    /// The `ID` inside `config.v2.json` is not the directory's name.
    #[error("{file} holds container {found}, not {expected}")]
    IdMismatch {
        /// The file.
        file: String,
        /// The id asked for (the directory name).
        expected: String,
        /// The id in the file.
        found: String,
    },
    /// The id asked for is not a full 64-hex-digit Docker container id.
    #[error("not a full Docker container id: {0:?}")]
    InvalidId(String),
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes: not a Docker config file")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
}

impl DockerDiskError {
    /// True when the container directory or file does not exist (the container is gone).
    pub fn is_not_found(&self) -> bool {
        matches!(self, DockerDiskError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound)
    }

    fn with_file(self, path: &Path) -> Self {
        let file = path.display().to_string();
        match self {
            DockerDiskError::Json { source, .. } => DockerDiskError::Json { file, source },
            DockerDiskError::NotAnObject { .. } => DockerDiskError::NotAnObject { file },
            DockerDiskError::EmptyId { .. } => DockerDiskError::EmptyId { file },
            other => other,
        }
    }
}

/// Go's `null` (and a missing field, with `#[serde(default)]`) as the type's default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The parts of `config.v2.json` that ctrace uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ConfigV2 {
    /// Full container id (64 hex digits).
    #[serde(rename = "ID", default, deserialize_with = "null_default")]
    pub id: String,
    /// Container name without Docker's leading `/`.
    #[serde(rename = "Name", default, deserialize_with = "null_default")]
    pub name: String,
    /// Image id (`sha256:<hex>`).
    #[serde(rename = "Image", default, deserialize_with = "null_default")]
    pub image_id: String,
    /// Creation time, RFC 3339 with nanoseconds.
    #[serde(rename = "Created", default, deserialize_with = "null_default")]
    pub created: String,
    /// Restarts done by the restart policy.
    #[serde(rename = "RestartCount", default, deserialize_with = "null_default")]
    pub restart_count: i64,
    /// `Config`: image reference and labels.
    #[serde(rename = "Config", default, deserialize_with = "null_default")]
    pub config: DiskContainerConfig,
    /// `State`: last known run state.
    #[serde(rename = "State", default, deserialize_with = "null_default")]
    pub state: DiskState,
}

/// `Config` in `config.v2.json` (the container's create-time configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DiskContainerConfig {
    /// Image reference as the user typed it (`nginx:1.25`, `busybox:local`).
    #[serde(rename = "Image", default, deserialize_with = "null_default")]
    pub image: String,
    /// Container labels (image labels merged with `--label`s).
    #[serde(rename = "Labels", default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
}

/// `State` in `config.v2.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DiskState {
    /// The container's init is running (also true while restarting).
    #[serde(rename = "Running", default, deserialize_with = "null_default")]
    pub running: bool,
    /// Frozen by `docker pause`.
    #[serde(rename = "Paused", default, deserialize_with = "null_default")]
    pub paused: bool,
    /// Waiting to be restarted by its restart policy.
    #[serde(rename = "Restarting", default, deserialize_with = "null_default")]
    pub restarting: bool,
    /// The last exit was an OOM kill.
    #[serde(rename = "OOMKilled", default, deserialize_with = "null_default")]
    pub oom_killed: bool,
    /// Being removed.
    #[serde(
        rename = "RemovalInProgress",
        default,
        deserialize_with = "null_default"
    )]
    pub removal_in_progress: bool,
    /// Removal failed; the container is unusable.
    #[serde(rename = "Dead", default, deserialize_with = "null_default")]
    pub dead: bool,
    /// Host pid of the init process (0 when not running).
    #[serde(rename = "Pid", default, deserialize_with = "null_default")]
    pub pid: i64,
    /// Exit code of the last exit (0 before the first).
    #[serde(rename = "ExitCode", default, deserialize_with = "null_default")]
    pub exit_code: i64,
    /// Error from the last start attempt.
    #[serde(rename = "Error", default, deserialize_with = "null_default")]
    pub error: String,
    /// Last start, RFC 3339 (Go's zero time when never started).
    #[serde(rename = "StartedAt", default, deserialize_with = "null_default")]
    pub started_at: String,
    /// Last exit, RFC 3339 (Go's zero time when never exited).
    #[serde(rename = "FinishedAt", default, deserialize_with = "null_default")]
    pub finished_at: String,
}

/// The parts of `hostconfig.json` that ctrace uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DiskHostConfig {
    /// Memory limit in bytes (0 = unlimited).
    #[serde(rename = "Memory", default, deserialize_with = "null_default")]
    pub memory: i64,
    /// CPU limit in units of 1e-9 CPUs (`--cpus`; 0 = unset).
    #[serde(rename = "NanoCpus", default, deserialize_with = "null_default")]
    pub nano_cpus: i64,
    /// CFS quota in µs per period (`--cpu-quota`; 0 or -1 = unset).
    #[serde(rename = "CpuQuota", default, deserialize_with = "null_default")]
    pub cpu_quota: i64,
    /// CFS period in µs (`--cpu-period`; 0 = the kernel default, 100000).
    #[serde(rename = "CpuPeriod", default, deserialize_with = "null_default")]
    pub cpu_period: i64,
    /// Maximum number of pids (`None`, 0 or -1 = unlimited).
    #[serde(rename = "PidsLimit", default)]
    pub pids_limit: Option<i64>,
    /// Capabilities added (`CAP_SYS_PTRACE`, or `ALL`).
    #[serde(rename = "CapAdd", default, deserialize_with = "null_default")]
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    #[serde(rename = "CapDrop", default, deserialize_with = "null_default")]
    pub cap_drop: Vec<String>,
    /// Pid namespace mode: `""` (private), `"host"`, `"container:<id>"`.
    #[serde(rename = "PidMode", default, deserialize_with = "null_default")]
    pub pid_mode: String,
    /// `--privileged`.
    #[serde(rename = "Privileged", default, deserialize_with = "null_default")]
    pub privileged: bool,
    /// Restart policy.
    #[serde(rename = "RestartPolicy", default, deserialize_with = "null_default")]
    pub restart_policy: DiskRestartPolicy,
    /// `--cgroup-parent` (empty for the default `/docker` or `system.slice`).
    #[serde(rename = "CgroupParent", default, deserialize_with = "null_default")]
    pub cgroup_parent: String,
}

/// `RestartPolicy` in `hostconfig.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DiskRestartPolicy {
    /// `no`, `always`, `unless-stopped`, `on-failure` (or empty).
    #[serde(rename = "Name", default, deserialize_with = "null_default")]
    pub name: String,
    /// Retry limit for `on-failure` (0 = unlimited).
    #[serde(
        rename = "MaximumRetryCount",
        default,
        deserialize_with = "null_default"
    )]
    pub maximum_retry_count: i64,
}

/// Both files of one container directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DockerDiskInfo {
    /// `config.v2.json`.
    pub config: ConfigV2,
    /// `hostconfig.json`, `None` when the file is absent.
    pub host_config: Option<DiskHostConfig>,
}

fn ensure_object(bytes: &[u8], file: &str) -> Result<(), DockerDiskError> {
    let first = bytes
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        Some(b'{') => Ok(()),
        // Empty input: let serde_json report "EOF while parsing".
        None => serde_json::from_slice::<serde_json::Value>(bytes)
            .map(|_| ())
            .map_err(|source| DockerDiskError::Json {
                file: file.to_string(),
                source,
            }),
        Some(_) => Err(DockerDiskError::NotAnObject {
            file: file.to_string(),
        }),
    }
}

/// Parses the bytes of a `config.v2.json`. The name loses its leading `/`.
pub fn parse_config_v2(bytes: &[u8]) -> Result<ConfigV2, DockerDiskError> {
    ensure_object(bytes, CONFIG_V2_FILE)?;
    let mut cfg: ConfigV2 =
        serde_json::from_slice(bytes).map_err(|source| DockerDiskError::Json {
            file: CONFIG_V2_FILE.to_string(),
            source,
        })?;
    if cfg.id.is_empty() {
        return Err(DockerDiskError::EmptyId {
            file: CONFIG_V2_FILE.to_string(),
        });
    }
    if let Some(stripped) = cfg.name.strip_prefix('/') {
        cfg.name = stripped.to_string();
    }
    Ok(cfg)
}

/// Parses the bytes of a `hostconfig.json`.
pub fn parse_hostconfig(bytes: &[u8]) -> Result<DiskHostConfig, DockerDiskError> {
    ensure_object(bytes, HOSTCONFIG_FILE)?;
    serde_json::from_slice(bytes).map_err(|source| DockerDiskError::Json {
        file: HOSTCONFIG_FILE.to_string(),
        source,
    })
}

/// True for a full Docker container id: 64 lowercase hex digits.
pub fn is_full_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, DockerDiskError> {
    let io = |source| DockerDiskError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(DockerDiskError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Reads `<root>/<id>/config.v2.json` and, when present, `hostconfig.json`.
///
/// `root` is normally [`DEFAULT_CONTAINERS_ROOT`]; `id` must be a full container id (it
/// names a directory, so anything else is refused rather than joined into a path).
pub fn read_container_dir(root: &Path, id: &str) -> Result<DockerDiskInfo, DockerDiskError> {
    if !is_full_container_id(id) {
        return Err(DockerDiskError::InvalidId(id.to_string()));
    }
    let dir = root.join(id);
    let config_path = dir.join(CONFIG_V2_FILE);
    let config =
        parse_config_v2(&read_bounded(&config_path)?).map_err(|e| e.with_file(&config_path))?;
    if config.id != id {
        return Err(DockerDiskError::IdMismatch {
            file: config_path.display().to_string(),
            expected: id.to_string(),
            found: config.id,
        });
    }
    let host_path = dir.join(HOSTCONFIG_FILE);
    let host_config = match read_bounded(&host_path) {
        Ok(bytes) => Some(parse_hostconfig(&bytes).map_err(|e| e.with_file(&host_path))?),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    Ok(DockerDiskInfo {
        config,
        host_config,
    })
}

/// Ids of the container directories under `root` (entries named by a full id), sorted.
pub fn list_container_ids(root: &Path) -> Result<Vec<String>, DockerDiskError> {
    let io = |source| DockerDiskError::Io {
        path: root.to_path_buf(),
        source,
    };
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io)? {
        let entry = entry.map_err(io)?;
        if let Some(name) = entry.file_name().to_str() {
            if is_full_container_id(name) && entry.path().is_dir() {
                ids.push(name.to_string());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN_ID: &str = "536cd104218ed65df39ec60a93ef7c85c87ed3c670bb958a7f14b8f68c101c33";
    const OOM_ID: &str = "c832cc3a0aa44d4b5984fbb416c3b3de6f8287840fe540cf32266e5aad5c9101";
    const KILLED_ID: &str = "d0f222ccabf0dcbc9e600c2d411cd622f28bc7ca79b369522bc78939d4f07832";
    const RESTARTED_ID: &str = "e89d60fab0b118b88fa2b8ace05ed9628d9023222d2dcbd33d0ffdbdce9e502e";

    const RUN_CONFIG: &str = include_str!(
        "../../tests/fixtures/docker/containers/536cd104218ed65df39ec60a93ef7c85c87ed3c670bb958a7f14b8f68c101c33/config.v2.json"
    );
    const RUN_HOSTCONFIG: &str = include_str!(
        "../../tests/fixtures/docker/containers/536cd104218ed65df39ec60a93ef7c85c87ed3c670bb958a7f14b8f68c101c33/hostconfig.json"
    );

    fn fixtures_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker/containers")
    }

    fn malformed(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/docker/malformed")
            .join(name);
        std::fs::read(path).unwrap()
    }

    /// A fresh scratch directory under the system temp dir.
    fn scratch(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ctrace-docker-test-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn running_container_config() {
        let cfg = parse_config_v2(RUN_CONFIG.as_bytes()).unwrap();
        assert_eq!(cfg.id, RUN_ID);
        assert_eq!(cfg.name, "ctrace-dk-run");
        assert_eq!(cfg.config.image, "busybox:local");
        assert_eq!(
            cfg.image_id,
            "sha256:6bb663a861641c9ab43164a3d2deff347eff4f75b7e608e3ddd5af9f9acc6c4e"
        );
        assert_eq!(cfg.created, "2026-11-29T18:58:20.035827223Z");
        assert_eq!(cfg.restart_count, 0);
        assert_eq!(
            cfg.config.labels.get("com.docker.compose.project").unwrap(),
            "shop"
        );
        assert_eq!(cfg.config.labels.len(), 3);
        let s = &cfg.state;
        assert!(s.running && !s.paused && !s.restarting && !s.oom_killed && !s.dead);
        assert_eq!(s.pid, 32009);
        assert_eq!(s.exit_code, 0);
        assert_eq!(s.started_at, "2026-11-29T18:58:20.606188831Z");
        assert_eq!(s.finished_at, "0001-01-01T00:00:00Z");
    }

    #[test]
    fn running_container_hostconfig() {
        let h = parse_hostconfig(RUN_HOSTCONFIG.as_bytes()).unwrap();
        assert_eq!(h.memory, 64 << 20);
        assert_eq!(h.nano_cpus, 1_500_000_000);
        assert_eq!((h.cpu_quota, h.cpu_period), (0, 0));
        assert_eq!(h.pids_limit, Some(100));
        assert_eq!(h.cap_add, ["CAP_SYS_PTRACE"]);
        assert_eq!(h.cap_drop, ["CAP_NET_RAW"]);
        assert_eq!(h.pid_mode, "");
        assert!(!h.privileged);
        assert_eq!(h.restart_policy.name, "unless-stopped");
        assert_eq!(h.restart_policy.maximum_retry_count, 0);
    }

    #[test]
    fn read_dirs_from_fixture_root() {
        let root = fixtures_root();
        assert_eq!(
            list_container_ids(&root).unwrap(),
            [RUN_ID, OOM_ID, KILLED_ID, RESTARTED_ID]
        );

        let oom = read_container_dir(&root, OOM_ID).unwrap();
        assert_eq!(oom.config.name, "ctrace-dk-oom");
        assert!(oom.config.state.oom_killed);
        assert!(!oom.config.state.running);
        assert_eq!(oom.config.state.pid, 0);
        assert_eq!(oom.config.state.exit_code, 137);
        assert!(oom.config.config.labels.contains_key("org.ctrace.lab"));
        let h = oom.host_config.unwrap();
        assert_eq!(h.memory, 100 << 20);
        assert_eq!(h.pids_limit, None);
        assert!(h.cap_add.is_empty() && h.cap_drop.is_empty());

        let killed = read_container_dir(&root, KILLED_ID).unwrap();
        assert_eq!(killed.config.name, "ctrace-dk-ev2");
        assert_eq!(killed.config.state.exit_code, 137);
        assert!(!killed.config.state.oom_killed);
        assert_eq!(
            killed.config.state.finished_at,
            "2026-11-29T18:57:15.450534439Z"
        );

        let rs = read_container_dir(&root, RESTARTED_ID).unwrap();
        assert_eq!(rs.config.restart_count, 3);
        assert_eq!(rs.config.state.exit_code, 3);
        let h = rs.host_config.unwrap();
        assert_eq!((h.cpu_quota, h.cpu_period), (25_000, 100_000));
        assert_eq!(h.pid_mode, "host");
        assert_eq!(h.cap_drop, ["ALL"]);
        assert_eq!(h.restart_policy.name, "on-failure");
        assert_eq!(h.restart_policy.maximum_retry_count, 3);
    }

    #[test]
    fn missing_container_is_not_found() {
        let id = "f".repeat(64);
        let err = read_container_dir(&fixtures_root(), &id).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn invalid_ids_are_refused_not_joined() {
        for id in [
            "",
            "..",
            "../etc",
            "536cd104218e",
            &"A".repeat(64),
            &"0".repeat(65),
        ] {
            assert!(matches!(
                read_container_dir(&fixtures_root(), id),
                Err(DockerDiskError::InvalidId(_))
            ));
        }
    }

    #[test]
    fn missing_hostconfig_is_none_and_mismatched_id_is_an_error() {
        let root = scratch("nohost");
        std::fs::create_dir(root.join(RUN_ID)).unwrap();
        std::fs::write(root.join(RUN_ID).join(CONFIG_V2_FILE), RUN_CONFIG).unwrap();
        let info = read_container_dir(&root, RUN_ID).unwrap();
        assert_eq!(info.config.name, "ctrace-dk-run");
        assert!(info.host_config.is_none());

        std::fs::create_dir(root.join(OOM_ID)).unwrap();
        std::fs::write(root.join(OOM_ID).join(CONFIG_V2_FILE), RUN_CONFIG).unwrap();
        assert!(matches!(
            read_container_dir(&root, OOM_ID),
            Err(DockerDiskError::IdMismatch { .. })
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn malformed_hostconfig_on_disk_names_the_path() {
        let root = scratch("badhost");
        let dir = root.join(RUN_ID);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(CONFIG_V2_FILE), RUN_CONFIG).unwrap();
        std::fs::write(
            dir.join(HOSTCONFIG_FILE),
            malformed("hostconfig-truncated.json"),
        )
        .unwrap();
        let err = read_container_dir(&root, RUN_ID).unwrap_err();
        assert!(matches!(err, DockerDiskError::Json { .. }), "{err}");
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn nulls_and_missing_fields_read_as_empty() {
        let cfg = parse_config_v2(
            br#"{"ID":"abc","Name":null,"Config":{"Labels":null,"Image":null},"State":null,
                "RestartCount":null,"Extra":{"x":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(cfg.id, "abc");
        assert_eq!(cfg.name, "");
        assert!(cfg.config.labels.is_empty());
        assert_eq!(cfg.state, DiskState::default());

        let h =
            parse_hostconfig(br#"{"CapAdd":null,"PidsLimit":null,"RestartPolicy":null}"#).unwrap();
        assert_eq!(h, DiskHostConfig::default());
    }

    #[test]
    fn name_loses_only_one_leading_slash() {
        let cfg = parse_config_v2(br#"{"ID":"abc","Name":"//odd"}"#).unwrap();
        assert_eq!(cfg.name, "/odd");
    }

    #[test]
    fn malformed_files_are_errors() {
        for (file, parse) in [
            ("config.v2-truncated.json", true),
            ("config.v2-empty.json", true),
            ("config.v2-state-string.json", true),
            ("hostconfig-truncated.json", false),
            ("hostconfig-memory-string.json", false),
        ] {
            let bytes = malformed(file);
            let err = if parse {
                parse_config_v2(&bytes).unwrap_err()
            } else {
                parse_hostconfig(&bytes).map(|_| ()).unwrap_err()
            };
            assert!(matches!(err, DockerDiskError::Json { .. }), "{file}: {err}");
        }
        assert!(matches!(
            parse_config_v2(&malformed("config.v2-array.json")),
            Err(DockerDiskError::NotAnObject { .. })
        ));
        assert!(matches!(
            parse_config_v2(br#"{"Name":"/x"}"#),
            Err(DockerDiskError::EmptyId { .. })
        ));
        assert!(matches!(
            parse_hostconfig(b" 42"),
            Err(DockerDiskError::NotAnObject { .. })
        ));
    }

    #[test]
    fn full_id_check() {
        assert!(is_full_container_id(RUN_ID));
        assert!(!is_full_container_id(&RUN_ID[..12]));
        assert!(!is_full_container_id(&RUN_ID.to_uppercase()));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse_config_v2(&bytes);
                let _ = parse_hostconfig(&bytes);
            }

            #[test]
            fn truncated_real_files_never_panic(cut in 0usize..2048) {
                let c = RUN_CONFIG.as_bytes();
                let h = RUN_HOSTCONFIG.as_bytes();
                let _ = parse_config_v2(&c[..cut.min(c.len())]);
                let _ = parse_hostconfig(&h[..cut.min(h.len())]);
            }

            #[test]
            fn mutated_real_files_never_panic(pos in 0usize..2048, byte in any::<u8>()) {
                let mut c = RUN_CONFIG.as_bytes().to_vec();
                let i = pos % c.len();
                c[i] = byte;
                let _ = parse_config_v2(&c);
                let mut h = RUN_HOSTCONFIG.as_bytes().to_vec();
                let j = pos % h.len();
                h[j] = byte;
                let _ = parse_hostconfig(&h);
            }

            #[test]
            fn json_values_never_panic(v in json_value()) {
                let bytes = serde_json::to_vec(&v).unwrap();
                let _ = parse_config_v2(&bytes);
                let _ = parse_hostconfig(&bytes);
            }
        }

        /// Arbitrary JSON using the field names these files have, so nested paths are hit.
        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            let key = prop_oneof![
                Just("ID"),
                Just("Name"),
                Just("Config"),
                Just("State"),
                Just("Labels"),
                Just("Image"),
                Just("Pid"),
                Just("Running"),
                Just("Memory"),
                Just("PidsLimit"),
                Just("CapAdd"),
                Just("RestartPolicy"),
                Just("x"),
            ]
            .prop_map(str::to_string);
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(serde_json::Value::from),
                ".{0,8}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 32, 6, move |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4)
                        .prop_map(serde_json::Value::from),
                    proptest::collection::btree_map(key.clone(), inner, 0..6)
                        .prop_map(|m| { serde_json::Value::Object(m.into_iter().collect()) }),
                ]
            })
        }
    }
}
