//! Docker container events (`GET /events`), typed.
//!
//! Observed on dockerd 20.10 (`type=container`): `Action` is `create`, `start`, `kill`
//! (attribute `signal`, a number: `"15"`), `die` (attribute `exitCode`: `"137"`), `stop`,
//! `restart`, `oom`, `rename` (attributes `name` = the new name, `oldName` = the old one
//! *with* its leading `/`), `destroy`, plus `pause`, `unpause`, `exec_create: <cmd>`,
//! `health_status: healthy` and others. `Actor.Attributes` always holds `image` (the
//! reference as typed) and `name` (no leading `/`) and also every container label. `timeNano`
//! is Unix ns. Order for `docker kill`: kill, die; for `docker stop`/`restart`: kill (15),
//! kill (9, if needed), die, stop, [start, restart]; for `docker rm`: destroy; for an OOM
//! kill: oom, die (137). A signal sent from the host (`kill -9 <pid>`) or a normal exit gives
//! `die` alone (no `kill`): the kill event only records signals sent through Docker.

use std::{collections::BTreeMap, fmt};

use bollard::models::{EventMessage, EventMessageTypeEnum};
use serde::Serialize;

/// A container event's action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerAction {
    /// Container created.
    Create,
    /// Container started (also after a restart).
    Start,
    /// A signal was sent through Docker (`signal` attribute).
    Kill,
    /// The init process exited (`exitCode` attribute).
    Die,
    /// The cgroup hit its memory limit and the kernel OOM-killed a process.
    Oom,
    /// Stopped by `docker stop` (after `die`).
    Stop,
    /// Restarted by `docker restart` (after `start`).
    Restart,
    /// Renamed (`oldName` attribute).
    Rename,
    /// Removed.
    Destroy,
    /// Frozen.
    Pause,
    /// Thawed.
    Unpause,
    /// Anything else, verbatim (`exec_create: sh`, `health_status: healthy`, ...).
    Other(String),
}

impl DockerAction {
    /// Parses Docker's `Action` string.
    pub fn parse(action: &str) -> Self {
        match action {
            "create" => DockerAction::Create,
            "start" => DockerAction::Start,
            "kill" => DockerAction::Kill,
            "die" => DockerAction::Die,
            "oom" => DockerAction::Oom,
            "stop" => DockerAction::Stop,
            "restart" => DockerAction::Restart,
            "rename" => DockerAction::Rename,
            "destroy" => DockerAction::Destroy,
            "pause" => DockerAction::Pause,
            "unpause" => DockerAction::Unpause,
            other => DockerAction::Other(other.to_string()),
        }
    }

    /// Docker's `Action` string.
    pub fn as_str(&self) -> &str {
        match self {
            DockerAction::Create => "create",
            DockerAction::Start => "start",
            DockerAction::Kill => "kill",
            DockerAction::Die => "die",
            DockerAction::Oom => "oom",
            DockerAction::Stop => "stop",
            DockerAction::Restart => "restart",
            DockerAction::Rename => "rename",
            DockerAction::Destroy => "destroy",
            DockerAction::Pause => "pause",
            DockerAction::Unpause => "unpause",
            DockerAction::Other(s) => s,
        }
    }
}

impl fmt::Display for DockerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One container event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerEvent {
    /// What happened.
    pub action: DockerAction,
    /// Full container id.
    pub id: String,
    /// Container name (the new one for `rename`), without a leading `/`.
    pub name: Option<String>,
    /// Image reference as typed.
    pub image: Option<String>,
    /// All actor attributes, verbatim (labels included).
    pub attributes: BTreeMap<String, String>,
    /// Unix time in ns (`timeNano`, else `time` × 1e9, else 0).
    pub time_nano: i128,
}

impl DockerEvent {
    /// Builds an event from the raw fields of a container event. `None` when `id` is empty.
    pub fn from_parts(
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
        time: Option<i64>,
        time_nano: Option<i64>,
    ) -> Option<Self> {
        if id.is_empty() {
            return None;
        }
        let attr = |k: &str| {
            attributes
                .get(k)
                .filter(|v| !v.is_empty())
                .map(|v| v.strip_prefix('/').unwrap_or(v).to_string())
        };
        let time_nano = match (time_nano, time) {
            (Some(ns), _) if ns != 0 => i128::from(ns),
            (_, Some(s)) => i128::from(s) * 1_000_000_000,
            _ => 0,
        };
        Some(DockerEvent {
            action: DockerAction::parse(action),
            id: id.to_string(),
            name: attr("name"),
            image: attr("image"),
            time_nano,
            attributes,
        })
    }

    /// Builds an event from bollard's message. `None` for non-container events and events
    /// without an actor id.
    pub fn from_message(msg: &EventMessage) -> Option<Self> {
        if msg.typ != Some(EventMessageTypeEnum::CONTAINER) {
            return None;
        }
        let actor = msg.actor.as_ref()?;
        let attributes = actor
            .attributes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Self::from_parts(
            msg.action.as_deref().unwrap_or(""),
            actor.id.as_deref().unwrap_or(""),
            attributes,
            msg.time,
            msg.time_nano,
        )
    }

    /// Exit code of a `die` event (`exitCode` attribute).
    pub fn exit_code(&self) -> Option<i64> {
        self.attributes.get("exitCode")?.trim().parse().ok()
    }

    /// Signal number of a `kill` event (`signal` attribute).
    pub fn signal(&self) -> Option<i32> {
        self.attributes.get("signal")?.trim().parse().ok()
    }

    /// Previous name of a `rename` event, without the leading `/`.
    pub fn old_name(&self) -> Option<&str> {
        let v = self.attributes.get("oldName")?;
        Some(v.strip_prefix('/').unwrap_or(v)).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = include_str!("../../tests/fixtures/docker/events-20.10.ndjson");
    const EV_ID: &str = "d0f222ccabf0dcbc9e600c2d411cd622f28bc7ca79b369522bc78939d4f07832";
    const OOM_ID: &str = "c832cc3a0aa44d4b5984fbb416c3b3de6f8287840fe540cf32266e5aad5c9101";

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fixture_events() -> Vec<DockerEvent> {
        EVENTS
            .lines()
            .map(|l| {
                let msg: EventMessage = serde_json::from_str(l).unwrap();
                DockerEvent::from_message(&msg).unwrap()
            })
            .collect()
    }

    #[test]
    fn die_kill_rename_from_parts() {
        let die = DockerEvent::from_parts(
            "die",
            "abc",
            attrs(&[
                ("exitCode", "137"),
                ("name", "web"),
                ("image", "nginx:1"),
                ("a", "b"),
            ]),
            Some(1_795_978_633),
            Some(1_795_978_633_786_073_275),
        )
        .unwrap();
        assert_eq!(die.action, DockerAction::Die);
        assert_eq!(die.exit_code(), Some(137));
        assert_eq!(die.signal(), None);
        assert_eq!(die.name.as_deref(), Some("web"));
        assert_eq!(die.image.as_deref(), Some("nginx:1"));
        assert_eq!(die.attributes.get("a").map(String::as_str), Some("b"));
        assert_eq!(die.time_nano, 1_795_978_633_786_073_275);

        let kill = DockerEvent::from_parts("kill", "abc", attrs(&[("signal", "9")]), Some(5), None)
            .unwrap();
        assert_eq!(kill.signal(), Some(9));
        assert_eq!(kill.name, None);
        assert_eq!(kill.time_nano, 5_000_000_000);

        let rename = DockerEvent::from_parts(
            "rename",
            "abc",
            attrs(&[("name", "new"), ("oldName", "/old")]),
            None,
            None,
        )
        .unwrap();
        assert_eq!(rename.name.as_deref(), Some("new"));
        assert_eq!(rename.old_name(), Some("old"));
        assert_eq!(rename.time_nano, 0);
    }

    #[test]
    fn odd_attributes_and_actions() {
        assert!(DockerEvent::from_parts("start", "", BTreeMap::new(), None, None).is_none());
        let e = DockerEvent::from_parts(
            "exec_create: sh -c true",
            "abc",
            attrs(&[("exitCode", "x"), ("signal", ""), ("name", "")]),
            None,
            Some(7),
        )
        .unwrap();
        assert_eq!(
            e.action,
            DockerAction::Other("exec_create: sh -c true".into())
        );
        assert_eq!(e.action.to_string(), "exec_create: sh -c true");
        assert_eq!(e.exit_code(), None);
        assert_eq!(e.signal(), None);
        assert_eq!(e.name, None);
        for a in [
            "create", "start", "kill", "die", "oom", "stop", "restart", "rename", "destroy",
            "pause", "unpause",
        ] {
            let parsed = DockerAction::parse(a);
            assert!(!matches!(parsed, DockerAction::Other(_)), "{a}");
            assert_eq!(parsed.as_str(), a);
        }
    }

    #[test]
    fn non_container_messages_are_skipped() {
        let msg: EventMessage = serde_json::from_str(
            r#"{"Type":"network","Action":"connect","Actor":{"ID":"n1","Attributes":{}}}"#,
        )
        .unwrap();
        assert_eq!(DockerEvent::from_message(&msg), None);
        let msg: EventMessage =
            serde_json::from_str(r#"{"Type":"container","Action":"start"}"#).unwrap();
        assert_eq!(DockerEvent::from_message(&msg), None);
    }

    #[test]
    fn real_event_sequence() {
        let evs = fixture_events();
        let seq: Vec<(String, Option<&str>)> = evs
            .iter()
            .map(|e| (e.action.to_string(), e.name.as_deref()))
            .collect();
        let expect: Vec<(String, Option<&str>)> = [
            ("create", "ctrace-dk-ev"),
            ("start", "ctrace-dk-ev"),
            ("kill", "ctrace-dk-ev"),
            ("rename", "ctrace-dk-ev2"),
            ("kill", "ctrace-dk-ev2"),
            ("kill", "ctrace-dk-ev2"),
            ("die", "ctrace-dk-ev2"),
            ("stop", "ctrace-dk-ev2"),
            ("start", "ctrace-dk-ev2"),
            ("restart", "ctrace-dk-ev2"),
            ("kill", "ctrace-dk-ev2"),
            ("kill", "ctrace-dk-ev2"),
            ("die", "ctrace-dk-ev2"),
            ("stop", "ctrace-dk-ev2"),
            ("start", "ctrace-dk-ev2"),
            ("kill", "ctrace-dk-ev2"),
            ("die", "ctrace-dk-ev2"),
            ("destroy", "ctrace-dk-ev2"),
            ("create", "ctrace-dk-oom"),
            ("start", "ctrace-dk-oom"),
            ("oom", "ctrace-dk-oom"),
            ("die", "ctrace-dk-oom"),
            ("destroy", "ctrace-dk-oom"),
        ]
        .iter()
        .map(|(a, n)| (a.to_string(), Some(*n)))
        .collect();
        assert_eq!(seq, expect);

        assert!(evs[..18].iter().all(|e| e.id == EV_ID));
        assert!(evs[18..].iter().all(|e| e.id == OOM_ID));
        assert!(evs
            .iter()
            .all(|e| e.image.as_deref() == Some("busybox:local")));
        assert!(evs.windows(2).all(|w| w[0].time_nano <= w[1].time_nano));
        assert_eq!(evs[0].time_nano, 1_795_978_630_427_079_229);

        let signals: Vec<i32> = evs.iter().filter_map(DockerEvent::signal).collect();
        assert_eq!(signals, [15, 15, 9, 15, 9, 9]);
        let exits: Vec<i64> = evs.iter().filter_map(DockerEvent::exit_code).collect();
        assert_eq!(exits, [137, 137, 137, 137]);
        assert_eq!(evs[3].old_name(), Some("ctrace-dk-ev"));
        assert_eq!(
            evs[0]
                .attributes
                .get("com.docker.compose.project")
                .map(String::as_str),
            Some("demo")
        );
    }
}
