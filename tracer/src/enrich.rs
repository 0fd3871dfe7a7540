//! Background enrichment from runtime APIs: names, images and labels that the state on disk
//! does not carry, fed to the resolver through a channel so that a slow or absent daemon
//! never holds up the event stream.

use std::{
    path::PathBuf,
    time::{Duration, SystemTime},
};

use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use crate::{
    docker::{DockerAction, DockerClient},
    resolve::Names,
};

/// Names for a container id, or a warning to show once.
#[derive(Debug)]
pub enum Feed {
    Names {
        id: String,
        names: Names,
    },
    Warning(String),
    /// A request to a runtime that failed (counted every time; warnings are said once in a
    /// while).
    Failure,
}

/// Says a warning unless the same one was said within [`Warnings::QUIET`]: a daemon that keeps
/// failing the same way is reported once, not at every reconnection. An outage (from the first
/// failure to the next session that lists containers) is reported once, however its reason
/// changes on the way (a dead daemon first breaks the event stream, then refuses connections),
/// and its end is said when its start was.
#[derive(Debug, Default)]
struct Warnings {
    last: Option<(String, std::time::Instant)>,
    /// In an outage: whether its warning was said.
    outage: Option<bool>,
}

impl Warnings {
    const QUIET: Duration = Duration::from_secs(300);

    /// A failure: whether to say `msg`.
    fn failure(&mut self, msg: &str, now: std::time::Instant) -> bool {
        if self.outage.is_some() {
            return false;
        }
        let say = self.due(msg, now);
        self.outage = Some(say);
        say
    }

    /// A session that works: whether to say the outage is over (its start was said).
    fn recovered(&mut self) -> bool {
        self.outage.take() == Some(true)
    }

    fn due(&mut self, msg: &str, now: std::time::Instant) -> bool {
        match &self.last {
            Some((m, at)) if m == msg && now.duration_since(*at) < Self::QUIET => false,
            _ => {
                self.last = Some((msg.to_owned(), now));
                true
            }
        }
    }
}

/// A session this long counts as healthy: the next reconnection starts from the shortest wait.
const HEALTHY_SESSION: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Follow Docker: list every container once, then inspect each one the event stream says was
/// created, started or renamed. Reconnects after the daemon goes away, with a backoff that
/// grows while sessions keep failing fast (a daemon that answers `/version` but fails
/// `/events`), and says each distinct failure once per five minutes.
pub async fn docker(socket: PathBuf, timeout: Duration, tx: mpsc::Sender<Feed>) {
    let mut warnings = Warnings::default();
    let mut backoff = Duration::from_secs(1);
    loop {
        let client = match DockerClient::connect(&socket, timeout).await {
            Ok(c) => c,
            Err(e) => {
                let w = e.warning();
                if tx.send(Feed::Failure).await.is_err() {
                    return;
                }
                if warnings.failure(&w, std::time::Instant::now())
                    && tx.send(Feed::Warning(w)).await.is_err()
                {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let session = std::time::Instant::now();
        let since = SystemTime::now();
        match client.list(true).await {
            Ok(list) => {
                if warnings.recovered() {
                    let w = format!(
                        "Docker API at {} answers again: names and images from it again",
                        socket.display()
                    );
                    if tx.send(Feed::Warning(w)).await.is_err() {
                        return;
                    }
                }
                for info in list {
                    let names = Names::from(&info);
                    if tx.send(Feed::Names { id: info.id, names }).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let w = e.warning();
                if tx.send(Feed::Failure).await.is_err() {
                    return;
                }
                if warnings.failure(&w, std::time::Instant::now())
                    && tx.send(Feed::Warning(w)).await.is_err()
                {
                    return;
                }
            }
        }
        let mut events = client.events_since(Some(since));
        while let Some(ev) = events.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    let w = e.warning();
                    if tx.send(Feed::Failure).await.is_err() {
                        return;
                    }
                    if warnings.failure(&w, std::time::Instant::now())
                        && tx.send(Feed::Warning(w)).await.is_err()
                    {
                        return;
                    }
                    break;
                }
            };
            if !matches!(
                ev.action,
                DockerAction::Create
                    | DockerAction::Start
                    | DockerAction::Rename
                    | DockerAction::Restart
            ) {
                continue;
            }
            let names = match client.inspect(&ev.id).await {
                Ok(info) => Names::from(&info),
                // Gone already: the event itself carries name and image.
                Err(_) => Names {
                    name: ev.name.clone(),
                    image: ev.image.clone(),
                    ..Names::default()
                },
            };
            if tx.send(Feed::Names { id: ev.id, names }).await.is_err() {
                return;
            }
        }
        backoff = next_backoff(backoff, session.elapsed());
        tokio::time::sleep(backoff).await;
    }
}

/// The wait before reconnecting after a session that lasted `lasted`: back to a second after
/// a healthy one, doubled (up to [`MAX_BACKOFF`]) after one that failed fast.
fn next_backoff(current: Duration, lasted: Duration) -> Duration {
    if lasted >= HEALTHY_SESSION {
        Duration::from_secs(1)
    } else {
        (current * 2).min(MAX_BACKOFF)
    }
}

/// The image of a containerd container, from `ctr containers info` (containerd keeps it in
/// its metadata database, not in the bundle). `None` when ctr is missing, slow or fails.
pub async fn containerd_image(namespace: &str, id: &str, timeout: Duration) -> Option<String> {
    let run = tokio::process::Command::new("ctr")
        .args(["--namespace", namespace, "containers", "info", id])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, run).await.ok()?.ok()?;
    if !out.status.success() {
        return None;
    }
    containerd_image_from_info(&out.stdout)
}

/// `Image` of `ctr containers info` JSON output.
pub fn containerd_image_from_info(json: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    v.get("Image")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_failure_is_said_once_per_quiet_period() {
        let mut w = Warnings::default();
        let t0 = std::time::Instant::now();
        assert!(w.due("events failed", t0));
        assert!(!w.due("events failed", t0 + Duration::from_secs(1)));
        assert!(
            w.due("daemon gone", t0 + Duration::from_secs(2)),
            "a new failure"
        );
        assert!(
            w.due("events failed", t0 + Duration::from_secs(3)),
            "changed back"
        );
        assert!(!w.due("events failed", t0 + Duration::from_secs(4)));
        assert!(w.due(
            "events failed",
            t0 + Duration::from_secs(4) + Warnings::QUIET
        ));
    }

    #[test]
    fn an_outage_is_said_once_and_its_end_once() {
        let mut w = Warnings::default();
        let t0 = std::time::Instant::now();
        assert!(w.failure("event stream broken", t0));
        assert!(
            !w.failure("connection refused", t0 + Duration::from_secs(1)),
            "the same outage, another reason"
        );
        assert!(w.recovered());
        assert!(!w.recovered(), "once");
        assert!(
            w.failure("connection refused", t0 + Duration::from_secs(2)),
            "a new outage"
        );
        assert!(w.recovered());
        // A daemon that fails the same way again and again within the quiet period: neither
        // the failure nor its end is said again.
        assert!(!w.failure("connection refused", t0 + Duration::from_secs(3)));
        assert!(!w.recovered());
    }

    #[test]
    fn backoff_grows_while_sessions_fail_fast() {
        let s = Duration::from_secs;
        let mut b = s(1);
        for want in [2, 4, 8, 16, 30, 30] {
            b = next_backoff(b, Duration::from_millis(5));
            assert_eq!(b, s(want));
        }
        assert_eq!(next_backoff(b, HEALTHY_SESSION), s(1));
    }

    #[test]
    fn ctr_info_image() {
        let info =
            br#"{"ID":"r1","Labels":{},"Image":"docker.io/library/busybox:local","Spec":{}}"#;
        assert_eq!(
            containerd_image_from_info(info).as_deref(),
            Some("docker.io/library/busybox:local")
        );
        assert_eq!(containerd_image_from_info(br#"{"Image":""}"#), None);
        assert_eq!(containerd_image_from_info(b"not json"), None);
    }

    #[tokio::test]
    async fn absent_docker_socket_warns_once_and_keeps_quiet() {
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(docker(
            PathBuf::from("/nonexistent/docker.sock"),
            Duration::from_millis(100),
            tx,
        ));
        let wait = Duration::from_secs(5);
        // Every failed attempt is counted; the warning is said with the first only.
        assert!(matches!(
            tokio::time::timeout(wait, rx.recv()).await.unwrap(),
            Some(Feed::Failure)
        ));
        let warning = tokio::time::timeout(wait, rx.recv()).await.unwrap();
        assert!(
            matches!(&warning, Some(Feed::Warning(w)) if w.contains("/nonexistent/docker.sock")),
            "{warning:?}"
        );
        // The next two attempts (after 1 s and 2 s of backoff): counted, not said again.
        for _ in 0..2 {
            let f = tokio::time::timeout(wait, rx.recv()).await.unwrap();
            assert!(matches!(f, Some(Feed::Failure)), "{f:?}");
        }
        task.abort();
    }
}
