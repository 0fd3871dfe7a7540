//! Docker metadata for container attribution.
//!
//! Two sources, one model ([`DockerInfo`]):
//! - [`config_v2`]: dockerd's on-disk state (`/var/lib/docker/containers/<id>/config.v2.json`
//!   and `hostconfig.json`), read with no daemon reachable; pure parsers plus
//!   [`read_container_dir`].
//! - [`client`]: the Engine API over the unix socket (bollard): inspect, list, and the
//!   container event stream ([`DockerEvent`]), every call bounded by a timeout.
//!
//! Degraded mode: when the API fails, [`DockerError::warning`] gives the one line to show, and
//! names still come from disk. Nothing here guesses a name from a cgroup path.

pub mod client;
pub mod config_v2;
pub mod error;
pub mod event;
pub mod model;

pub use self::{
    client::{
        connect_or_warn, next_event_matching, parse_max_api_version, DockerClient, DEFAULT_SOCKET,
        DEFAULT_TIMEOUT,
    },
    config_v2::{
        is_full_container_id, list_container_ids, parse_config_v2, parse_hostconfig,
        read_container_dir, ConfigV2, DiskContainerConfig, DiskHostConfig, DiskRestartPolicy,
        DiskState, DockerDiskError, DockerDiskInfo, DEFAULT_CONTAINERS_ROOT,
    },
    error::DockerError,
    event::{DockerAction, DockerEvent},
    model::{
        DockerHostSettings, DockerInfo, DockerLimits, DockerSource, DockerState, DockerStatus,
        COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL,
    },
};
