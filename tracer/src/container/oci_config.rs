//! The OCI runtime bundle's `config.json`, parsed (tolerantly, partly).
//!
//! containerd keeps it at `/run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/config.json`
//! (Docker's containers too, in namespace `moby`); runc records the bundle directory in its
//! state as the `bundle=<dir>` label. Kubernetes metadata lives in `annotations`:
//! containerd's CRI plugin writes `io.kubernetes.cri.*` keys (`container-name`,
//! `sandbox-name`, `sandbox-namespace`, `sandbox-uid`, `image-name`, `container-type`),
//! CRI-O writes `io.kubernetes.pod.name`, `io.kubernetes.pod.namespace`,
//! `io.kubernetes.container.name` (the keys Docker's kubelet shim put in labels).

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use super::runc_state::{is_json_object, null_default, read_bounded, ReadError, MAX_FILE_BYTES};

/// A malformed or unreadable OCI `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum OciConfigError {
    /// Not valid JSON, truncated, or a field of the wrong type.
    #[error("malformed OCI config.json: {0}")]
    Json(#[from] serde_json::Error),
    /// The top level is not a JSON object.
    #[error("malformed OCI config.json: top level is not a JSON object")]
    NotAnObject,
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes: not an OCI config")]
    TooLarge {
        /// The file.
        path: String,
    },
}

/// The parts of an OCI runtime spec (`config.json`) that ctrace uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciConfig {
    /// `ociVersion`.
    #[serde(default)]
    pub oci_version: Option<String>,
    /// The container's hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The container's init process.
    #[serde(default)]
    pub process: Option<OciProcess>,
    /// Root filesystem.
    #[serde(default)]
    pub root: Option<OciRoot>,
    /// Free-form annotations (Kubernetes metadata lives here).
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: BTreeMap<String, String>,
    /// Linux-specific settings.
    #[serde(default)]
    pub linux: Option<OciLinux>,
}

/// `process`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciProcess {
    /// argv.
    #[serde(default, deserialize_with = "null_default")]
    pub args: Vec<String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// uid/gid.
    #[serde(default)]
    pub user: Option<OciUser>,
    /// Capability sets.
    #[serde(default)]
    pub capabilities: Option<OciCapabilities>,
    /// `noNewPrivileges`.
    #[serde(default, deserialize_with = "null_default")]
    pub no_new_privileges: bool,
}

/// `process.user`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OciUser {
    /// uid in the container.
    #[serde(default)]
    pub uid: Option<u32>,
    /// gid in the container.
    #[serde(default)]
    pub gid: Option<u32>,
}

/// `process.capabilities`: names such as `CAP_KILL` per set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OciCapabilities {
    /// Bounding set.
    #[serde(default, deserialize_with = "null_default")]
    pub bounding: Vec<String>,
    /// Effective set.
    #[serde(default, deserialize_with = "null_default")]
    pub effective: Vec<String>,
    /// Inheritable set.
    #[serde(default, deserialize_with = "null_default")]
    pub inheritable: Vec<String>,
    /// Permitted set.
    #[serde(default, deserialize_with = "null_default")]
    pub permitted: Vec<String>,
    /// Ambient set.
    #[serde(default, deserialize_with = "null_default")]
    pub ambient: Vec<String>,
}

/// `root`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OciRoot {
    /// Path, absolute or relative to the bundle.
    #[serde(default)]
    pub path: Option<String>,
    /// Mounted read-only.
    #[serde(default, deserialize_with = "null_default")]
    pub readonly: bool,
}

/// `linux`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciLinux {
    /// `cgroupsPath`: `/docker/<id>`, `/<ns>/<id>`, or `slice:prefix:name` (systemd).
    #[serde(default)]
    pub cgroups_path: Option<String>,
    /// Namespaces to create (no path) or join (path).
    #[serde(default, deserialize_with = "null_default")]
    pub namespaces: Vec<OciNamespace>,
    /// Resource limits (partly).
    #[serde(default)]
    pub resources: Option<OciResources>,
}

/// One entry of `linux.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OciNamespace {
    /// `pid`, `network`, `mount`, `ipc`, `uts`, `user`, `cgroup`, `time`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Namespace to join, if any.
    #[serde(default)]
    pub path: Option<String>,
}

/// `linux.resources` (memory, cpu and pids limits only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OciResources {
    /// Memory limits.
    #[serde(default)]
    pub memory: Option<OciMemory>,
    /// CPU limits.
    #[serde(default)]
    pub cpu: Option<OciCpu>,
    /// Pids limit.
    #[serde(default)]
    pub pids: Option<OciPids>,
}

/// `linux.resources.memory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OciMemory {
    /// Limit in bytes (`-1`: unlimited).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `linux.resources.cpu`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OciCpu {
    /// CFS quota in µs per period (`-1`: unlimited).
    #[serde(default)]
    pub quota: Option<i64>,
    /// CFS period in µs.
    #[serde(default)]
    pub period: Option<u64>,
    /// Relative weight (cgroup v1 `cpu.shares`).
    #[serde(default)]
    pub shares: Option<u64>,
}

/// `linux.resources.pids`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OciPids {
    /// Maximum number of tasks.
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Parses an OCI bundle `config.json`. Unknown fields are ignored, every field may be
/// missing or `null`; only JSON errors and wrongly typed known fields are errors.
pub fn parse_oci_config(bytes: &[u8]) -> Result<OciConfig, OciConfigError> {
    if !is_json_object(bytes) {
        return Err(OciConfigError::NotAnObject);
    }
    Ok(serde_json::from_slice(bytes)?)
}

/// Reads and parses `<bundle>/config.json` (at most [`MAX_FILE_BYTES`]).
pub fn read_oci_config(bundle: &Path) -> Result<OciConfig, OciConfigError> {
    let path = bundle.join("config.json");
    let bytes = read_bounded(&path).map_err(|e| match e {
        ReadError::Io(source) => OciConfigError::Io {
            path: path.display().to_string(),
            source,
        },
        ReadError::TooLarge => OciConfigError::TooLarge {
            path: path.display().to_string(),
        },
    })?;
    parse_oci_config(&bytes)
}

impl OciConfig {
    /// The capability sets of the init process, if given.
    pub fn capabilities(&self) -> Option<&OciCapabilities> {
        self.process.as_ref()?.capabilities.as_ref()
    }

    /// `linux.cgroupsPath`, if given and not empty.
    pub fn cgroups_path(&self) -> Option<&str> {
        self.linux
            .as_ref()?
            .cgroups_path
            .as_deref()
            .filter(|p| !p.is_empty())
    }

    /// The init process's argv (empty when not given).
    pub fn args(&self) -> &[String] {
        self.process.as_ref().map_or(&[], |p| &p.args)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `runc spec` (runc 1.1.5) as edited for the fixture container: terminal off, busybox
    /// args, network namespace removed, hostname and one annotation added; trimmed mounts.
    const RUNC_SPEC: &str =
        include_str!("../../tests/fixtures/container/runc-spec-1.0.2-config.json");
    /// Synthetic: the shape containerd's CRI plugin writes for a Kubernetes container.
    const CRI_CONTAINERD: &str =
        include_str!("../../tests/fixtures/container/cri-containerd-config.json");

    #[test]
    fn runc_spec_config() {
        let c = parse_oci_config(RUNC_SPEC.as_bytes()).unwrap();
        assert_eq!(c.oci_version.as_deref(), Some("1.0.2-dev"));
        assert_eq!(c.hostname.as_deref(), Some("ctrace-fixture"));
        assert_eq!(c.args(), ["/busybox", "sleep", "30"]);
        let caps = c.capabilities().unwrap();
        assert_eq!(
            caps.bounding,
            ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        );
        assert!(caps.inheritable.is_empty());
        assert_eq!(c.annotations["org.example.fixture"], "yes");
        let linux = c.linux.as_ref().unwrap();
        let kinds: Vec<_> = linux.namespaces.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["pid", "ipc", "uts", "mount"]);
        assert_eq!(c.cgroups_path(), None);
        assert_eq!(c.root.as_ref().unwrap().path.as_deref(), Some("rootfs"));
        assert!(c.process.as_ref().unwrap().no_new_privileges);
    }

    #[test]
    fn cri_containerd_config() {
        let c = parse_oci_config(CRI_CONTAINERD.as_bytes()).unwrap();
        assert_eq!(c.annotations["io.kubernetes.cri.container-name"], "nginx");
        assert_eq!(c.annotations["io.kubernetes.cri.sandbox-namespace"], "web");
        assert_eq!(
            c.cgroups_path(),
            Some(
                "kubepods-burstable-pod0b8f7a2c_3e5d_4c1a_9f6b_2d7e8a9c0b1d.slice:cri-containerd:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            )
        );
        let res = c.linux.as_ref().unwrap().resources.as_ref().unwrap();
        assert_eq!(res.memory.as_ref().unwrap().limit, Some(134_217_728));
        assert_eq!(res.cpu.as_ref().unwrap().quota, Some(50_000));
        assert_eq!(res.cpu.as_ref().unwrap().period, Some(100_000));
        let netns = &c.linux.as_ref().unwrap().namespaces[1];
        assert_eq!(netns.kind, "network");
        assert_eq!(netns.path.as_deref(), Some("/var/run/netns/cni-1234"));
    }

    #[test]
    fn empty_object_and_nulls() {
        assert_eq!(parse_oci_config(b"{}").unwrap(), OciConfig::default());
        let c = parse_oci_config(
            br#"{"annotations":null,"process":{"args":null,"capabilities":{"bounding":null}},"linux":{"namespaces":null,"cgroupsPath":""}}"#,
        )
        .unwrap();
        assert!(c.annotations.is_empty());
        assert!(c.args().is_empty());
        assert!(c.capabilities().unwrap().bounding.is_empty());
        assert_eq!(c.cgroups_path(), None);
    }

    #[test]
    fn malformed_and_truncated_are_errors() {
        let cut = &RUNC_SPEC.as_bytes()[..RUNC_SPEC.len() / 3];
        let e = parse_oci_config(cut).unwrap_err();
        assert!(
            e.to_string().starts_with("malformed OCI config.json: "),
            "{e}"
        );
        for bad in [
            &b""[..],
            b"[]",
            b"  [null]",
            br#"{"annotations":{"a":1}}"#,
            br#"{"process":{"args":"sh"}}"#,
        ] {
            assert!(parse_oci_config(bad).is_err());
        }
    }

    #[test]
    fn read_missing_bundle_names_the_path() {
        let e = read_oci_config(Path::new("/nonexistent/ctrace-bundle")).unwrap_err();
        assert!(
            e.to_string()
                .contains("/nonexistent/ctrace-bundle/config.json"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn parse_oci_config_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_oci_config(&bytes);
        }

        #[test]
        fn parse_oci_config_never_panics_on_cut_real_config(cut in 0usize..3000) {
            let b = RUNC_SPEC.as_bytes();
            if let Ok(c) = parse_oci_config(&b[..cut.min(b.len())]) {
                let _ = (c.args(), c.cgroups_path(), c.capabilities());
            }
        }
    }
}
