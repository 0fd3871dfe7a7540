//! Why the Docker API could not answer, and what ctrace does instead.
//!
//! Every failure maps to one [`DockerError`] variant; [`DockerError::warning`] is the one
//! line shown to the user, always saying what ctrace falls back to (the on-disk state under
//! `/var/lib/docker`), so a missing or slow daemon degrades naming instead of stopping it.

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

/// What the fallback is called in warnings.
const FALLBACK: &str = "Docker containers are named from /var/lib/docker only";

/// A failed Docker API call.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No socket file at the path: dockerd is not installed or not running.
    #[error("no Docker socket at {}", socket.display())]
    SocketAbsent {
        /// The socket path.
        socket: PathBuf,
    },
    /// The socket exists but nothing answers on it (refused, reset, closed, not a socket).
    #[error("Docker API unreachable at {} ({reason})", socket.display())]
    NotRunning {
        /// The socket path.
        socket: PathBuf,
        /// What the connection attempt reported (`connection refused`, ...).
        reason: String,
    },
    /// The socket is there but this process may not connect to it.
    #[error("permission denied on Docker socket {}", socket.display())]
    PermissionDenied {
        /// The socket path.
        socket: PathBuf,
    },
    /// The daemon did not answer within the client's timeout.
    #[error("Docker API at {} did not answer {op} within {after:?}", socket.display())]
    Timeout {
        /// The socket path.
        socket: PathBuf,
        /// The request (`version`, `inspect`, `list`, `events`).
        op: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The daemon answered with an HTTP error (404: no such container).
    #[error("Docker API error {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// The daemon's answer could not be decoded.
    #[error("cannot decode Docker API response: {0}")]
    Decode(String),
    /// Any other client-side failure (bad socket path, request building).
    #[error("Docker client error: {0}")]
    Other(String),
}

impl DockerError {
    /// One line for the user: what failed and what ctrace does instead.
    pub fn warning(&self) -> String {
        match self {
            DockerError::SocketAbsent { socket } => format!(
                "Docker API unavailable (no socket at {}): {FALLBACK}",
                socket.display()
            ),
            DockerError::NotRunning { socket, reason } => format!(
                "Docker API unreachable at {} ({reason}): {FALLBACK}",
                socket.display()
            ),
            DockerError::PermissionDenied { socket } => format!(
                "Docker API not accessible at {} (permission denied; run as root or in the \
                 docker group): {FALLBACK}",
                socket.display()
            ),
            DockerError::Timeout { socket, op, after } => format!(
                "Docker API at {} did not answer {op} within {} ms: {FALLBACK} until it does",
                socket.display(),
                after.as_millis()
            ),
            DockerError::Api { status, message } => format!(
                "Docker API refused the request ({status}: {message}): {FALLBACK} for this \
                 container"
            ),
            DockerError::Decode(message) => {
                format!("Docker API answered with data ctrace cannot read ({message}): {FALLBACK}")
            }
            DockerError::Other(message) => format!("Docker client error ({message}): {FALLBACK}"),
        }
    }

    /// True when the daemon is not usable at all right now (as opposed to one request
    /// failing): callers should fall back to the on-disk state and retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DockerError::SocketAbsent { .. }
                | DockerError::NotRunning { .. }
                | DockerError::PermissionDenied { .. }
                | DockerError::Timeout { .. }
        )
    }

    /// True for the daemon's 404 (no such container: removed in the meantime).
    pub fn is_not_found(&self) -> bool {
        matches!(self, DockerError::Api { status: 404, .. })
    }

    /// The error for a failed connection or request on `socket`.
    pub(crate) fn from_bollard(
        socket: &Path,
        op: &'static str,
        timeout: Duration,
        err: bollard::errors::Error,
    ) -> Self {
        use bollard::errors::Error as B;
        match err {
            B::SocketNotFoundError(_) => DockerError::SocketAbsent {
                socket: socket.to_path_buf(),
            },
            B::DockerResponseServerError {
                status_code,
                message,
            } => DockerError::Api {
                status: status_code,
                message,
            },
            B::JsonDataError { message, .. } => DockerError::Decode(message),
            B::JsonSerdeError { err } => DockerError::Decode(err.to_string()),
            B::RequestTimeoutError => DockerError::Timeout {
                socket: socket.to_path_buf(),
                op,
                after: timeout,
            },
            B::HyperLegacyError { .. } | B::IOError { .. } | B::HyperResponseError { .. } => {
                Self::from_transport(socket, &err)
            }
            other => DockerError::Other(other.to_string()),
        }
    }

    /// A transport failure, classified by the first `io::Error` in its source chain.
    fn from_transport(socket: &Path, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(io_err) = e.downcast_ref::<io::Error>() {
                return Self::from_io(socket, io_err);
            }
            cur = e.source();
        }
        // hyper's "connection closed before message completed" and the like.
        let reason = innermost_message(err);
        DockerError::NotRunning {
            socket: socket.to_path_buf(),
            reason,
        }
    }

    /// An I/O failure talking to `socket`.
    pub(crate) fn from_io(socket: &Path, err: &io::Error) -> Self {
        let socket = socket.to_path_buf();
        match err.kind() {
            io::ErrorKind::NotFound => DockerError::SocketAbsent { socket },
            io::ErrorKind::PermissionDenied => DockerError::PermissionDenied { socket },
            io::ErrorKind::ConnectionRefused => DockerError::NotRunning {
                socket,
                reason: "connection refused".into(),
            },
            io::ErrorKind::ConnectionReset => DockerError::NotRunning {
                socket,
                reason: "connection reset".into(),
            },
            _ => DockerError::NotRunning {
                socket,
                reason: err.to_string(),
            },
        }
    }
}

fn innermost_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
