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
    Names { id: String, names: Names },
    Warning(String),
}

/// Follow Docker: list every container once, then inspect each one the event stream says was
/// created, started or renamed. Reconnects after the daemon goes away, with a backoff.
pub async fn docker(socket: PathBuf, timeout: Duration, tx: mpsc::Sender<Feed>) {
    let mut warned = false;
    let mut backoff = Duration::from_secs(1);
    loop {
        let client = match DockerClient::connect(&socket, timeout).await {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    warned = true;
                    if tx.send(Feed::Warning(e.warning())).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        let since = SystemTime::now();
        match client.list(true).await {
            Ok(list) => {
                for info in list {
                    let names = Names::from(&info);
                    if tx.send(Feed::Names { id: info.id, names }).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                if tx.send(Feed::Warning(e.warning())).await.is_err() {
                    return;
                }
            }
        }
        let mut events = client.events_since(Some(since));
        while let Some(ev) = events.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    if tx.send(Feed::Warning(e.warning())).await.is_err() {
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
        tokio::time::sleep(backoff).await;
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
        let first = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap();
        assert!(matches!(first, Some(Feed::Warning(w)) if w.contains("/nonexistent/docker.sock")));
        task.abort();
    }
}
