//! Docker Engine API client (bollard over the unix socket), bounded by a timeout.
//!
//! [`DockerClient::connect`] checks the socket, then asks the daemon for its version within
//! the timeout, so a missing, dead or hung daemon is reported at once as a [`DockerError`]
//! (whose [`DockerError::warning`] tells the user what ctrace falls back to). The API version
//! is negotiated down to the daemon's (`1.41` for dockerd 20.10). Note: bollard 0.21 joins
//! each endpoint onto its `/v1.53` base URL with an absolute path, so requests actually go
//! out unversioned (`GET /containers/<id>/json`) and the daemon answers in its own version;
//! should they be versioned, dockerd 20.10 would answer 400 "client version 1.53 is too new.
//! Maximum supported API version is 1.41", which `connect` also handles.
//!
//! Every request is bounded by the timeout (bollard's own timeout has whole-second
//! granularity and does not cover reading the body, so each call is also wrapped in
//! `tokio::time::timeout`). The event stream is long-lived: only its start is bounded; it
//! ends (after an error item) when the daemon goes away, and the caller re-subscribes with
//! [`DockerClient::events_since`].

use std::{
    collections::HashMap,
    future::Future,
    os::unix::fs::FileTypeExt as _,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bollard::{
    query_parameters::{EventsOptions, ListContainersOptions},
    ClientVersion, Docker, API_DEFAULT_VERSION,
};
use futures_util::{Stream, StreamExt as _};

use super::{error::DockerError, event::DockerEvent, model::DockerInfo};

/// Docker's default API socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Default bound on each API call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How many inspect requests [`DockerClient::list`] keeps in flight.
const LIST_CONCURRENCY: usize = 4;

/// A connected Docker API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerClient {
    docker: Docker,
    socket: PathBuf,
    timeout: Duration,
    api_version: String,
    server_version: Option<String>,
}

/// `Maximum supported API version is 1.41` (dockerd's 400 for a too-new client) → (1, 41).
pub fn parse_max_api_version(message: &str) -> Option<(usize, usize)> {
    const KEY: &str = "Maximum supported API version is ";
    let rest = &message[message.find(KEY)? + KEY.len()..];
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (major, minor) = version.trim_end_matches('.').split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// True for a container id or name that is safe to put in a request path.
fn is_valid_ref(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// bollard's own timeout is in whole seconds: round up, at least 1.
fn bollard_timeout_secs(timeout: Duration) -> u64 {
    (timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)).max(1)
}

fn client_version_pair(docker: &Docker) -> (usize, usize) {
    let v = docker.client_version();
    (v.major_version, v.minor_version)
}

impl DockerClient {
    /// Connects to the daemon at `socket` and negotiates the API version, all within
    /// `timeout`. Fails with [`DockerError::SocketAbsent`] at once when there is no socket.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Self, DockerError> {
        match std::fs::metadata(socket) {
            Ok(meta) if meta.file_type().is_socket() => {}
            Ok(_) => {
                return Err(DockerError::NotRunning {
                    socket: socket.to_path_buf(),
                    reason: "not a socket".into(),
                })
            }
            Err(e) => return Err(DockerError::from_io(socket, &e)),
        }
        let path = socket
            .to_str()
            .ok_or_else(|| DockerError::Other(format!("socket path {socket:?} is not UTF-8")))?;
        let secs = bollard_timeout_secs(timeout);
        let err = |e| DockerError::from_bollard(socket, "version", timeout, e);
        let negotiate = async {
            let docker = Docker::connect_with_unix(path, secs, API_DEFAULT_VERSION).map_err(err)?;
            let (docker, version) = match docker.version().await {
                Ok(v) => (docker, v),
                Err(e) => match err(e) {
                    DockerError::Api {
                        status: 400,
                        message,
                    } => {
                        let Some((major_version, minor_version)) = parse_max_api_version(&message)
                        else {
                            return Err(DockerError::Api {
                                status: 400,
                                message,
                            });
                        };
                        let v = ClientVersion {
                            major_version,
                            minor_version,
                        };
                        let docker = Docker::connect_with_unix(path, secs, &v).map_err(err)?;
                        let version = docker.version().await.map_err(err)?;
                        (docker, version)
                    }
                    other => return Err(other),
                },
            };
            // A daemon that accepted our version but reports a lower one: speak its version.
            let reported = version
                .api_version
                .as_deref()
                .and_then(|v| v.split_once('.'))
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
            let docker = match reported {
                Some((major_version, minor_version))
                    if (major_version, minor_version) < client_version_pair(&docker) =>
                {
                    let v = ClientVersion {
                        major_version,
                        minor_version,
                    };
                    Docker::connect_with_unix(path, secs, &v).map_err(err)?
                }
                _ => docker,
            };
            Ok::<_, DockerError>((docker, version))
        };
        let (docker, version) =
            tokio::time::timeout(timeout, negotiate)
                .await
                .map_err(|_| DockerError::Timeout {
                    socket: socket.to_path_buf(),
                    op: "version",
                    after: timeout,
                })??;
        let (major, minor) = client_version_pair(&docker);
        Ok(DockerClient {
            docker,
            socket: socket.to_path_buf(),
            timeout,
            api_version: format!("{major}.{minor}"),
            server_version: version.version,
        })
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The negotiated API version (`1.41` for dockerd 20.10).
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The daemon's version (`20.10.24+dfsg1`), when it said.
    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }

    async fn call<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, DockerError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(|e| DockerError::from_bollard(&self.socket, op, self.timeout, e)),
            Err(_) => Err(DockerError::Timeout {
                socket: self.socket.clone(),
                op,
                after: self.timeout,
            }),
        }
    }

    /// Checks that the daemon answers.
    pub async fn ping(&self) -> Result<(), DockerError> {
        self.call("ping", self.docker.ping()).await.map(drop)
    }

    /// Inspects one container by id, id prefix or name.
    pub async fn inspect(&self, id: &str) -> Result<DockerInfo, DockerError> {
        if !is_valid_ref(id) {
            return Err(DockerError::Other(format!(
                "not a container id or name: {id:?}"
            )));
        }
        let r = self
            .call("inspect", self.docker.inspect_container(id, None))
            .await?;
        DockerInfo::from_inspect(&r)
    }

    /// Lists containers (running ones, or all with `all`), each inspected; sorted by name.
    /// Containers removed between the list and their inspect are left out.
    pub async fn list(&self, all: bool) -> Result<Vec<DockerInfo>, DockerError> {
        let options = ListContainersOptions {
            all,
            ..Default::default()
        };
        let summaries = self
            .call("list", self.docker.list_containers(Some(options)))
            .await?;
        let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
        let results: Vec<Result<DockerInfo, DockerError>> = futures_util::stream::iter(ids)
            .map(|id| async move { self.inspect(&id).await })
            .buffer_unordered(LIST_CONCURRENCY)
            .collect()
            .await;
        let mut infos = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(info) => infos.push(info),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        infos.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(infos)
    }

    /// Container events from the moment the stream is first polled (the request is sent
    /// lazily). See [`Self::events_since`].
    pub fn events(
        &self,
    ) -> impl Stream<Item = Result<DockerEvent, DockerError>> + Send + Unpin + 'static {
        self.events_since(None)
    }

    /// Container events, replayed from `since` (when given) and then live. Only
    /// `type=container` events are requested; the stream yields an error and ends when the
    /// daemon goes away or does not start answering within the timeout.
    ///
    /// The request goes out when the stream is first polled: pass `Some(SystemTime::now())`
    /// taken before a `list` (or before starting a container) so nothing in between is
    /// missed.
    pub fn events_since(
        &self,
        since: Option<SystemTime>,
    ) -> impl Stream<Item = Result<DockerEvent, DockerError>> + Send + Unpin + 'static {
        let since = since.map(|t| {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
        });
        let options = EventsOptions {
            since,
            until: None,
            filters: Some(HashMap::from([(
                "type".to_string(),
                vec!["container".to_string()],
            )])),
        };
        let socket = self.socket.clone();
        let timeout = self.timeout;
        self.docker.events(Some(options)).filter_map(move |r| {
            let item = match r {
                Ok(msg) => DockerEvent::from_message(&msg).map(Ok),
                Err(e) => Some(Err(DockerError::from_bollard(
                    &socket, "events", timeout, e,
                ))),
            };
            futures_util::future::ready(item)
        })
    }
}

/// Connects, or logs the error's one-line warning and returns `None` (the degraded mode:
/// Docker containers are then named from disk only).
pub async fn connect_or_warn(socket: &Path, timeout: Duration) -> Option<DockerClient> {
    match DockerClient::connect(socket, timeout).await {
        Ok(client) => Some(client),
        Err(e) => {
            log::warn!("{}", e.warning());
            None
        }
    }
}

/// Waits up to `within` for the first event of `stream` that `pred` accepts, skipping the
/// others. `Ok(None)` on timeout or when the stream ends. For tests and tools.
pub async fn next_event_matching<S, P>(
    stream: &mut S,
    within: Duration,
    mut pred: P,
) -> Result<Option<DockerEvent>, DockerError>
where
    S: Stream<Item = Result<DockerEvent, DockerError>> + Unpin,
    P: FnMut(&DockerEvent) -> bool,
{
    let wait = async {
        while let Some(item) = stream.next().await {
            let event = item?;
            if pred(&event) {
                return Ok(Some(event));
            }
        }
        Ok(None)
    };
    tokio::time::timeout(within, wait).await.unwrap_or(Ok(None))
}

#[cfg(test)]
mod tests {
    use std::{
        os::unix::net::UnixListener,
        time::{Duration, Instant},
    };

    use super::{super::event::DockerAction, *};

    fn scratch_socket(tag: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("ctrace-docker-{}-{}.sock", std::process::id(), tag));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn max_api_version_from_daemon_message() {
        assert_eq!(
            parse_max_api_version(
                "client version 1.53 is too new. Maximum supported API version is 1.41"
            ),
            Some((1, 41))
        );
        assert_eq!(
            parse_max_api_version("Maximum supported API version is 1.43."),
            Some((1, 43))
        );
        assert_eq!(parse_max_api_version("page not found"), None);
        assert_eq!(
            parse_max_api_version("Maximum supported API version is x"),
            None
        );
    }

    #[test]
    fn refs_that_cannot_escape_the_path() {
        assert!(is_valid_ref("536cd104218e"));
        assert!(is_valid_ref("my_web.1-a"));
        for bad in ["", "../info", "a/b", "a?b", "a b", "a%2f"] {
            assert!(!is_valid_ref(bad), "{bad}");
        }
    }

    #[test]
    fn bollard_timeout_rounds_up() {
        assert_eq!(bollard_timeout_secs(Duration::from_millis(300)), 1);
        assert_eq!(bollard_timeout_secs(Duration::from_secs(2)), 2);
        assert_eq!(bollard_timeout_secs(Duration::from_millis(2001)), 3);
        assert_eq!(bollard_timeout_secs(Duration::ZERO), 1);
    }

    #[tokio::test]
    async fn absent_socket_fails_at_once() {
        let path = scratch_socket("absent");
        let t = Instant::now();
        let err = DockerClient::connect(&path, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_millis(500));
        assert!(matches!(err, DockerError::SocketAbsent { .. }), "{err}");
        assert!(err.is_unavailable());
        assert!(err.warning().contains("/var/lib/docker"));
    }

    #[tokio::test]
    async fn stale_socket_is_connection_refused() {
        let path = scratch_socket("stale");
        drop(UnixListener::bind(&path).unwrap()); // the file stays, nobody listens
        let err = DockerClient::connect(&path, Duration::from_secs(5))
            .await
            .unwrap_err();
        let _ = std::fs::remove_file(&path);
        match &err {
            DockerError::NotRunning { reason, .. } => assert_eq!(reason, "connection refused"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.warning(),
            format!(
                "Docker API unreachable at {} (connection refused): Docker containers are \
                 named from /var/lib/docker only",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn regular_file_is_not_a_socket() {
        let path = scratch_socket("file");
        std::fs::write(&path, b"").unwrap();
        let err = DockerClient::connect(&path, Duration::from_secs(1))
            .await
            .unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(
            matches!(err, DockerError::NotRunning { ref reason, .. } if reason == "not a socket")
        );
    }

    #[tokio::test]
    async fn silent_daemon_times_out_within_the_bound() {
        let path = scratch_socket("silent");
        // Accepts connections (the kernel backlog does) but never answers.
        let listener = UnixListener::bind(&path).unwrap();
        let t = Instant::now();
        let err = DockerClient::connect(&path, Duration::from_millis(300))
            .await
            .unwrap_err();
        let elapsed = t.elapsed();
        drop(listener);
        let _ = std::fs::remove_file(&path);
        assert!(
            matches!(err, DockerError::Timeout { op: "version", .. }),
            "{err}"
        );
        assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(900));
        assert!(err.warning().contains("within 300 ms"), "{}", err.warning());
    }

    /// A fake dockerd on a unix socket: answers `/version` like dockerd 20.10 (after
    /// `versions_refused` answers of 400 "too new", as 20.10 gives a versioned request from a
    /// newer client), answers the given paths with the given bodies, and holds every other
    /// request open without answering (a hung daemon).
    async fn fake_daemon(
        tag: &str,
        versions_refused: usize,
        routes: Vec<(&'static str, u16, &'static str)>,
    ) -> PathBuf {
        use std::sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        };
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let path = scratch_socket(tag);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let refused = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let routes = routes.clone();
                let refused = refused.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end + 4);
                        let target = head.split(' ').nth(1).unwrap_or("").to_string();
                        let too_new = target.starts_with("/v1.53/")
                            || (target.starts_with("/version")
                                && refused.fetch_add(1, Ordering::Relaxed) < versions_refused);
                        let (status, body) = if too_new {
                            (
                                400,
                                r#"{"message":"client version 1.53 is too new. Maximum supported API version is 1.41"}"#,
                            )
                        } else if target.starts_with("/version") {
                            (200, r#"{"Version":"20.10.99-fake","ApiVersion":"1.41"}"#)
                        } else if let Some((_, st, b)) =
                            routes.iter().find(|(p, _, _)| target.starts_with(p))
                        {
                            (*st, *b)
                        } else {
                            std::future::pending::<()>().await;
                            unreachable!()
                        };
                        let resp = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        path
    }

    #[tokio::test]
    async fn negotiates_down_and_bounds_every_call() {
        let path = fake_daemon(
            "fake",
            1,
            vec![
                ("/containers/bad/json", 200, "{not json"),
                (
                    "/containers/gone/json",
                    404,
                    r#"{"message":"No such container: gone"}"#,
                ),
            ],
        )
        .await;
        let timeout = Duration::from_millis(300);
        let c = DockerClient::connect(&path, timeout).await.unwrap();
        assert_eq!(c.api_version(), "1.41");
        assert_eq!(c.server_version(), Some("20.10.99-fake"));

        // A hung inspect comes back at the bound.
        let t = Instant::now();
        let err = c.inspect("abc").await.unwrap_err();
        assert!(
            matches!(err, DockerError::Timeout { op: "inspect", .. }),
            "{err}"
        );
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );

        let err = c.inspect("bad").await.unwrap_err();
        assert!(matches!(err, DockerError::Decode(_)), "{err}");
        let err = c.inspect("gone").await.unwrap_err();
        assert!(err.is_not_found(), "{err}");

        // A hung event stream fails at bollard's (whole-second) bound and ends.
        let t = Instant::now();
        let mut events = c.events();
        let first = events.next().await.unwrap();
        assert!(
            matches!(first, Err(DockerError::Timeout { op: "events", .. })),
            "{first:?}"
        );
        assert!(
            t.elapsed() < Duration::from_millis(1800),
            "{:?}",
            t.elapsed()
        );
        assert!(events.next().await.is_none());
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn event_stream_from_a_daemon_that_then_goes_away() {
        let line = include_str!("../../tests/fixtures/docker/events-20.10.ndjson")
            .lines()
            .next()
            .unwrap();
        // Leak: the route table needs 'static strings.
        let body: &'static str = Box::leak(format!("{line}\n").into_boxed_str());
        let path = fake_daemon("events", 0, vec![("/events", 200, body)]).await;
        let c = DockerClient::connect(&path, Duration::from_millis(500))
            .await
            .unwrap();
        let mut events = c.events();
        let first = next_event_matching(&mut events, Duration::from_secs(2), |_| true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.action, DockerAction::Create);
        assert_eq!(first.name.as_deref(), Some("ctrace-dk-ev"));
        // The body ended: the stream ends.
        assert!(events.next().await.is_none());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn warnings_name_the_fallback() {
        let s = PathBuf::from(DEFAULT_SOCKET);
        let all = [
            DockerError::SocketAbsent { socket: s.clone() },
            DockerError::NotRunning {
                socket: s.clone(),
                reason: "connection refused".into(),
            },
            DockerError::PermissionDenied { socket: s.clone() },
            DockerError::Timeout {
                socket: s.clone(),
                op: "inspect",
                after: Duration::from_secs(2),
            },
            DockerError::Api {
                status: 404,
                message: "No such container: x".into(),
            },
            DockerError::Decode("missing field".into()),
            DockerError::Other("bad".into()),
        ];
        for e in &all {
            assert!(
                e.warning().contains("named from /var/lib/docker only"),
                "{e}"
            );
        }
        assert!(all[4].is_not_found() && !all[4].is_unavailable());
        assert_eq!(
            all.iter().filter(|e| e.is_unavailable()).count(),
            4,
            "socket absent, not running, permission, timeout"
        );
        assert_eq!(
            DockerError::from_io(
                &s,
                &std::io::Error::from(std::io::ErrorKind::PermissionDenied)
            )
            .to_string(),
            "permission denied on Docker socket /var/run/docker.sock"
        );
    }
}
