//! [`DockerInfo`]: what ctrace knows about one Docker container, from disk or from the API.
//!
//! One struct, two constructors: [`DockerInfo::from_disk`] (no daemon needed) and
//! [`DockerInfo::from_inspect`] (the API's inspect response). Both apply the same rules, so a
//! container looks the same whichever source named it:
//! - the name has no leading `/`; `image` is the reference as typed, `image_id` the
//!   `sha256:` id;
//! - Go's zero time (`0001-01-01T00:00:00Z`) and empty strings become `None`;
//! - `pid` is `None` unless running; `exit_code` is `None` unless the container has exited
//!   and is not running again;
//! - limits of 0 or -1 (Docker's "unlimited") become `None`.

use std::collections::BTreeMap;

use bollard::models::ContainerInspectResponse;
use serde::Serialize;

use super::{config_v2::DockerDiskInfo, error::DockerError};

/// Compose's project label.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
/// Compose's service label.
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";

/// The kernel's default CFS period (µs), which Docker uses when `CpuPeriod` is 0.
pub const DEFAULT_CPU_PERIOD_US: i64 = 100_000;

/// Where a [`DockerInfo`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerSource {
    /// `config.v2.json` + `hostconfig.json` (possibly stale).
    Disk,
    /// The API's inspect response.
    Api,
}

/// Docker's status word (`docker ps` STATUS column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerStatus {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Frozen by `docker pause`.
    Paused,
    /// Waiting for its restart policy to start it again.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited.
    Exited,
    /// Removal failed.
    Dead,
    /// A status this version of ctrace does not know (or none).
    Unknown,
}

impl DockerStatus {
    /// Lowercase word, as Docker prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            DockerStatus::Created => "created",
            DockerStatus::Running => "running",
            DockerStatus::Paused => "paused",
            DockerStatus::Restarting => "restarting",
            DockerStatus::Removing => "removing",
            DockerStatus::Exited => "exited",
            DockerStatus::Dead => "dead",
            DockerStatus::Unknown => "unknown",
        }
    }

    /// Parses Docker's status word; anything else is [`DockerStatus::Unknown`].
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => DockerStatus::Created,
            "running" => DockerStatus::Running,
            "paused" => DockerStatus::Paused,
            "restarting" => DockerStatus::Restarting,
            "removing" => DockerStatus::Removing,
            "exited" => DockerStatus::Exited,
            "dead" => DockerStatus::Dead,
            _ => DockerStatus::Unknown,
        }
    }
}

/// Run state of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerState {
    /// Docker's status word.
    pub status: DockerStatus,
    /// The init process is running (also true while paused or restarting).
    pub running: bool,
    /// Frozen by `docker pause`.
    pub paused: bool,
    /// Waiting for its restart policy.
    pub restarting: bool,
    /// Host pid of the init process, when running.
    pub pid: Option<u32>,
    /// Exit code of the last exit, when exited (or restarting after one).
    pub exit_code: Option<i64>,
    /// The last exit was an OOM kill.
    pub oom_killed: bool,
    /// Last start, RFC 3339.
    pub started_at: Option<String>,
    /// Last exit, RFC 3339.
    pub finished_at: Option<String>,
    /// Error from the last start attempt.
    pub error: Option<String>,
}

/// Resource limits from the host config.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DockerLimits {
    /// Memory limit in bytes (`--memory`).
    pub memory_bytes: Option<u64>,
    /// CPU limit in CPUs, from `NanoCpus` (`--cpus`) or `CpuQuota`/`CpuPeriod`.
    pub cpu_quota_cpus: Option<f64>,
    /// Maximum number of pids (`--pids-limit`).
    pub pids_limit: Option<u64>,
}

impl DockerLimits {
    /// Limits from Docker's raw host-config numbers (0 or negative = unlimited).
    ///
    /// `NanoCpus` wins over `CpuQuota` (Docker refuses to set both); a quota with period 0
    /// uses the kernel's default period of 100 ms.
    pub fn from_raw(
        memory: i64,
        nano_cpus: i64,
        cpu_quota: i64,
        cpu_period: i64,
        pids_limit: Option<i64>,
    ) -> Self {
        let cpu_quota_cpus = if nano_cpus > 0 {
            Some(nano_cpus as f64 / 1e9)
        } else if cpu_quota > 0 {
            let period = if cpu_period > 0 {
                cpu_period
            } else {
                DEFAULT_CPU_PERIOD_US
            };
            Some(cpu_quota as f64 / period as f64)
        } else {
            None
        };
        DockerLimits {
            memory_bytes: positive(memory),
            cpu_quota_cpus,
            pids_limit: pids_limit.and_then(positive),
        }
    }
}

/// Security- and lifecycle-relevant host settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DockerHostSettings {
    /// Capabilities added (`CAP_SYS_PTRACE`, `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// Pid namespace mode (`host`, `container:<id>`), `None` for a private one.
    pub pid_mode: Option<String>,
    /// Restart policy name (`no`, `always`, `unless-stopped`, `on-failure`).
    pub restart_policy: Option<String>,
    /// Retry limit of `on-failure` (0 = unlimited).
    pub restart_max_retries: u64,
    /// `--cgroup-parent`, when set.
    pub cgroup_parent: Option<String>,
}

/// What ctrace knows about one Docker container.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DockerInfo {
    /// Full container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image reference as the user typed it (`nginx:1.25`).
    pub image: String,
    /// Image id (`sha256:<hex>`).
    pub image_id: String,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time, RFC 3339.
    pub created: Option<String>,
    /// Restarts done by the restart policy.
    pub restart_count: u64,
    /// Run state.
    pub state: DockerState,
    /// `com.docker.compose.project` label.
    pub compose_project: Option<String>,
    /// `com.docker.compose.service` label.
    pub compose_service: Option<String>,
    /// Resource limits (all `None` when the host config was not available).
    pub limits: DockerLimits,
    /// Capabilities, privileges, pid mode, restart policy.
    pub host: DockerHostSettings,
    /// Where this came from.
    pub source: DockerSource,
}

fn positive(v: i64) -> Option<u64> {
    u64::try_from(v).ok().filter(|&v| v > 0)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// An RFC 3339 time, or `None` for empty and Go's zero time.
fn real_time(s: &str) -> Option<String> {
    (!s.is_empty() && !s.starts_with("0001-01-01T")).then(|| s.to_string())
}

fn strip_slash(name: &str) -> String {
    name.strip_prefix('/').unwrap_or(name).to_string()
}

fn pid_if_running(running: bool, pid: i64) -> Option<u32> {
    if running {
        u32::try_from(pid).ok().filter(|&p| p > 0)
    } else {
        None
    }
}

fn last_exit_code(
    running: bool,
    restarting: bool,
    exit_code: i64,
    finished_at: &Option<String>,
) -> Option<i64> {
    ((!running || restarting) && finished_at.is_some()).then_some(exit_code)
}

/// Docker's own rule for the status word (the disk has flags only).
fn status_from_flags(
    running: bool,
    paused: bool,
    restarting: bool,
    removing: bool,
    dead: bool,
    started_at: &Option<String>,
) -> DockerStatus {
    if running {
        if paused {
            DockerStatus::Paused
        } else if restarting {
            DockerStatus::Restarting
        } else {
            DockerStatus::Running
        }
    } else if removing {
        DockerStatus::Removing
    } else if dead {
        DockerStatus::Dead
    } else if started_at.is_none() {
        DockerStatus::Created
    } else {
        DockerStatus::Exited
    }
}

impl DockerInfo {
    fn finish(mut self) -> Self {
        self.compose_project = self.labels.get(COMPOSE_PROJECT_LABEL).cloned();
        self.compose_service = self.labels.get(COMPOSE_SERVICE_LABEL).cloned();
        self
    }

    /// From `config.v2.json` and `hostconfig.json` (see [`super::read_container_dir`]).
    pub fn from_disk(disk: &DockerDiskInfo) -> Self {
        let c = &disk.config;
        let s = &c.state;
        let started_at = real_time(&s.started_at);
        let finished_at = real_time(&s.finished_at);
        let state = DockerState {
            status: status_from_flags(
                s.running,
                s.paused,
                s.restarting,
                s.removal_in_progress,
                s.dead,
                &started_at,
            ),
            running: s.running,
            paused: s.paused,
            restarting: s.restarting,
            pid: pid_if_running(s.running, s.pid),
            exit_code: last_exit_code(s.running, s.restarting, s.exit_code, &finished_at),
            oom_killed: s.oom_killed,
            started_at,
            finished_at,
            error: non_empty(&s.error),
        };
        let (limits, host) = match &disk.host_config {
            Some(h) => (
                DockerLimits::from_raw(
                    h.memory,
                    h.nano_cpus,
                    h.cpu_quota,
                    h.cpu_period,
                    h.pids_limit,
                ),
                DockerHostSettings {
                    cap_add: h.cap_add.clone(),
                    cap_drop: h.cap_drop.clone(),
                    privileged: h.privileged,
                    pid_mode: non_empty(&h.pid_mode),
                    restart_policy: non_empty(&h.restart_policy.name),
                    restart_max_retries: positive(h.restart_policy.maximum_retry_count)
                        .unwrap_or(0),
                    cgroup_parent: non_empty(&h.cgroup_parent),
                },
            ),
            None => (DockerLimits::default(), DockerHostSettings::default()),
        };
        DockerInfo {
            id: c.id.clone(),
            name: strip_slash(&c.name),
            image: c.config.image.clone(),
            image_id: c.image_id.clone(),
            labels: c.config.labels.clone(),
            created: real_time(&c.created),
            restart_count: positive(c.restart_count).unwrap_or(0),
            state,
            compose_project: None,
            compose_service: None,
            limits,
            host,
            source: DockerSource::Disk,
        }
        .finish()
    }

    /// From the API's inspect response. Fails only when the response has no `Id`.
    pub fn from_inspect(r: &ContainerInspectResponse) -> Result<Self, DockerError> {
        let id =
            r.id.clone()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| DockerError::Decode("inspect response has no Id".into()))?;
        let s = r.state.clone().unwrap_or_default();
        let running = s.running.unwrap_or(false);
        let paused = s.paused.unwrap_or(false);
        let restarting = s.restarting.unwrap_or(false);
        let started_at = s.started_at.as_deref().and_then(real_time);
        let finished_at = s.finished_at.as_deref().and_then(real_time);
        let status = match s.status.map(|st| st.to_string()) {
            Some(word) if !word.is_empty() => DockerStatus::parse(&word),
            _ => status_from_flags(
                running,
                paused,
                restarting,
                false,
                s.dead.unwrap_or(false),
                &started_at,
            ),
        };
        let state = DockerState {
            status,
            running,
            paused,
            restarting,
            pid: pid_if_running(running, s.pid.unwrap_or(0)),
            exit_code: last_exit_code(running, restarting, s.exit_code.unwrap_or(0), &finished_at),
            oom_killed: s.oom_killed.unwrap_or(false),
            started_at,
            finished_at,
            error: s.error.as_deref().and_then(non_empty),
        };
        let config = r.config.as_ref();
        let labels: BTreeMap<String, String> = config
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let (limits, host) = match &r.host_config {
            Some(h) => {
                let policy = h.restart_policy.as_ref();
                (
                    DockerLimits::from_raw(
                        h.memory.unwrap_or(0),
                        h.nano_cpus.unwrap_or(0),
                        h.cpu_quota.unwrap_or(0),
                        h.cpu_period.unwrap_or(0),
                        h.pids_limit,
                    ),
                    DockerHostSettings {
                        cap_add: h.cap_add.clone().unwrap_or_default(),
                        cap_drop: h.cap_drop.clone().unwrap_or_default(),
                        privileged: h.privileged.unwrap_or(false),
                        pid_mode: h.pid_mode.as_deref().and_then(non_empty),
                        restart_policy: policy
                            .and_then(|p| p.name.as_ref())
                            .and_then(|n| non_empty(n.as_ref())),
                        restart_max_retries: policy
                            .and_then(|p| p.maximum_retry_count)
                            .and_then(positive)
                            .unwrap_or(0),
                        cgroup_parent: h.cgroup_parent.as_deref().and_then(non_empty),
                    },
                )
            }
            None => (DockerLimits::default(), DockerHostSettings::default()),
        };
        Ok(DockerInfo {
            id,
            name: strip_slash(r.name.as_deref().unwrap_or("")),
            image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            image_id: r.image.clone().unwrap_or_default(),
            labels,
            created: r
                .created
                .as_ref()
                .map(|c| c.to_string())
                .and_then(|c| real_time(&c)),
            restart_count: r.restart_count.and_then(positive).unwrap_or(0),
            state,
            compose_project: None,
            compose_service: None,
            limits,
            host,
            source: DockerSource::Api,
        }
        .finish())
    }

    /// The first 12 hex digits of the id, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{super::config_v2::read_container_dir, *};

    const RUN_ID: &str = "536cd104218ed65df39ec60a93ef7c85c87ed3c670bb958a7f14b8f68c101c33";
    const OOM_ID: &str = "c832cc3a0aa44d4b5984fbb416c3b3de6f8287840fe540cf32266e5aad5c9101";
    const RESTARTED_ID: &str = "e89d60fab0b118b88fa2b8ace05ed9628d9023222d2dcbd33d0ffdbdce9e502e";

    const INSPECT_RUNNING: &str =
        include_str!("../../tests/fixtures/docker/inspect-20.10-running.json");
    const INSPECT_RESTARTED: &str =
        include_str!("../../tests/fixtures/docker/inspect-20.10-restarted.json");

    fn disk(id: &str) -> DockerInfo {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker/containers");
        DockerInfo::from_disk(&read_container_dir(&root, id).unwrap())
    }

    fn api(json: &str) -> DockerInfo {
        let r: ContainerInspectResponse = serde_json::from_str(json).unwrap();
        DockerInfo::from_inspect(&r).unwrap()
    }

    #[test]
    fn limits_from_nano_cpus_quota_and_unlimited() {
        let l = DockerLimits::from_raw(64 << 20, 1_500_000_000, 0, 0, Some(100));
        assert_eq!(l.memory_bytes, Some(64 << 20));
        assert_eq!(l.cpu_quota_cpus, Some(1.5));
        assert_eq!(l.pids_limit, Some(100));

        let l = DockerLimits::from_raw(0, 0, 25_000, 100_000, None);
        assert_eq!(l.cpu_quota_cpus, Some(0.25));
        assert_eq!(l.memory_bytes, None);
        assert_eq!(l.pids_limit, None);

        // Quota without a period: the kernel default 100 ms.
        let l = DockerLimits::from_raw(0, 0, 50_000, 0, Some(0));
        assert_eq!(l.cpu_quota_cpus, Some(0.5));
        assert_eq!(l.pids_limit, None);

        // NanoCpus wins; -1 means unlimited everywhere.
        let l = DockerLimits::from_raw(-1, 10_000_000, 200_000, 100_000, Some(-1));
        assert_eq!(l.cpu_quota_cpus, Some(0.01));
        assert_eq!(
            l,
            DockerLimits {
                cpu_quota_cpus: Some(0.01),
                ..Default::default()
            }
        );

        assert_eq!(
            DockerLimits::from_raw(0, 0, -1, 100_000, None),
            DockerLimits::default()
        );
    }

    #[test]
    fn running_from_disk() {
        let d = disk(RUN_ID);
        assert_eq!(d.id, RUN_ID);
        assert_eq!(d.short_id(), "536cd104218e");
        assert_eq!(d.name, "ctrace-dk-run");
        assert_eq!(d.image, "busybox:local");
        assert_eq!(d.compose_project.as_deref(), Some("shop"));
        assert_eq!(d.compose_service.as_deref(), Some("api"));
        assert_eq!(d.state.status, DockerStatus::Running);
        assert_eq!(d.state.pid, Some(32009));
        assert_eq!(d.state.exit_code, None);
        assert_eq!(d.state.finished_at, None);
        assert_eq!(d.created.as_deref(), Some("2026-11-29T18:58:20.035827223Z"));
        assert_eq!(d.limits.memory_bytes, Some(64 << 20));
        assert_eq!(d.limits.cpu_quota_cpus, Some(1.5));
        assert_eq!(d.limits.pids_limit, Some(100));
        assert_eq!(d.host.cap_add, ["CAP_SYS_PTRACE"]);
        assert_eq!(d.host.restart_policy.as_deref(), Some("unless-stopped"));
        assert_eq!(d.host.pid_mode, None);
        assert_eq!(d.source, DockerSource::Disk);
    }

    #[test]
    fn oom_killed_from_disk() {
        let d = disk(OOM_ID);
        assert_eq!(d.state.status, DockerStatus::Exited);
        assert!(d.state.oom_killed);
        assert_eq!(d.state.exit_code, Some(137));
        assert_eq!(d.state.pid, None);
        assert_eq!(d.compose_project, None);
        assert_eq!(d.limits.memory_bytes, Some(100 << 20));
        assert_eq!(d.limits.cpu_quota_cpus, None);
    }

    #[test]
    fn disk_and_api_agree() {
        // Same containers, read from disk and from `docker inspect` at the same moment.
        let (d, a) = (disk(RUN_ID), api(INSPECT_RUNNING));
        assert_eq!(a.source, DockerSource::Api);
        assert_eq!(
            DockerInfo {
                source: DockerSource::Api,
                ..d
            },
            a
        );

        let (d, a) = (disk(RESTARTED_ID), api(INSPECT_RESTARTED));
        assert_eq!(
            DockerInfo {
                source: DockerSource::Api,
                ..d
            },
            a
        );
        assert_eq!(a.restart_count, 3);
        assert_eq!(a.state.status, DockerStatus::Exited);
        assert_eq!(a.state.exit_code, Some(3));
        assert_eq!(a.limits.cpu_quota_cpus, Some(0.25));
        assert_eq!(a.host.pid_mode.as_deref(), Some("host"));
        assert_eq!(a.host.cap_drop, ["ALL"]);
        assert_eq!(a.host.restart_policy.as_deref(), Some("on-failure"));
        assert_eq!(a.host.restart_max_retries, 3);
    }

    #[test]
    fn status_rules() {
        let t = Some("2026-01-01T00:00:00Z".to_string());
        assert_eq!(
            status_from_flags(true, true, false, false, false, &t),
            DockerStatus::Paused
        );
        assert_eq!(
            status_from_flags(true, false, true, false, false, &t),
            DockerStatus::Restarting
        );
        assert_eq!(
            status_from_flags(false, false, false, true, false, &t),
            DockerStatus::Removing
        );
        assert_eq!(
            status_from_flags(false, false, false, false, true, &t),
            DockerStatus::Dead
        );
        assert_eq!(
            status_from_flags(false, false, false, false, false, &None),
            DockerStatus::Created
        );
        assert_eq!(DockerStatus::parse("exited"), DockerStatus::Exited);
        assert_eq!(DockerStatus::parse("stopping"), DockerStatus::Unknown);
        // A restarting container reports the exit that triggered the restart.
        assert_eq!(last_exit_code(true, true, 3, &t), Some(3));
        assert_eq!(last_exit_code(true, false, 0, &t), None);
        assert_eq!(last_exit_code(false, false, 0, &None), None);
    }

    #[test]
    fn minimal_inspect_response() {
        let r: ContainerInspectResponse =
            serde_json::from_str(r#"{"Id":"abc","Name":"/x","State":{"Status":"created"}}"#)
                .unwrap();
        let a = DockerInfo::from_inspect(&r).unwrap();
        assert_eq!(a.name, "x");
        assert_eq!(a.state.status, DockerStatus::Created);
        assert_eq!(a.limits, DockerLimits::default());
        assert_eq!(a.short_id(), "abc");

        let r: ContainerInspectResponse = serde_json::from_str(r#"{"Name":"/x"}"#).unwrap();
        assert!(matches!(
            DockerInfo::from_inspect(&r),
            Err(DockerError::Decode(_))
        ));
    }
}
