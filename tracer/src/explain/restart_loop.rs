//! A restart loop, told: each death's cause, the time between them, the runtime's backoff.
//! [`crate::restarts::RestartWatch`] finds them.

use std::sync::Arc;

use super::{ExitInfo, Party};
use crate::{
    names::signal_name,
    resolve::Container,
    units::{bytes, seconds},
};

/// Deaths kept per loop (the newest).
pub const DEATHS_KEPT: usize = 10;

/// Why one run of the container ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// Its init was OOM-killed; the limit of that OOM kill when known.
    OomKilled { limit_bytes: Option<u64> },
    /// Its init was killed by a signal someone sent.
    Killed { signo: i32, by: Party },
    /// Its init exited (the code is in the death's exit).
    Exited,
    /// Its init died of a signal ctrace did not see being sent.
    Signaled,
}

impl Cause {
    /// `oom_killed`, `killed`, `exited`, `signaled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OomKilled { .. } => "oom_killed",
            Self::Killed { .. } => "killed",
            Self::Exited => "exited",
            Self::Signaled => "signaled",
        }
    }

    /// `OOM-killed at its 32 MiB limit`, `killed by SIGTERM from sh (pid ...)`, `exited`.
    fn describe(&self) -> String {
        match self {
            Self::OomKilled {
                limit_bytes: Some(l),
            } => format!("OOM-killed at its {} limit", bytes(*l)),
            Self::OomKilled { limit_bytes: None } => "OOM-killed".to_owned(),
            Self::Killed { signo, by } => {
                format!(
                    "killed by {} from {}",
                    signal_name((*signo).into()),
                    by.describe()
                )
            }
            Self::Exited => "exited".to_owned(),
            Self::Signaled => "died of a signal".to_owned(),
        }
    }
}

/// One death of the container.
#[derive(Debug, Clone, PartialEq)]
pub struct Death {
    pub boot_ns: u64,
    pub cause: Cause,
    pub exit: ExitInfo,
    /// From this death to the next start (the runtime's backoff), once it restarted.
    pub restarted_after_ns: Option<u64>,
}

/// A container that died [`crate::restarts::RestartWatch::threshold`] times or more, each death within the
/// window of the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartLoop {
    pub boot_ns: u64,
    /// The container as it is now (its last run).
    pub container: Arc<Container>,
    /// The deaths of the loop, oldest first (the last [`DEATHS_KEPT`]).
    pub deaths: Vec<Death>,
    /// Deaths of the loop, counting those no longer kept.
    pub count: usize,
    /// The first death of this loop (the same in every report of one loop).
    pub since_boot_ns: u64,
    pub window_ns: u64,
}

impl RestartLoop {
    /// `web is in a restart loop: 4 deaths in 3.2 s, each OOM-killed at its 32 MiB limit;
    /// restarted after 0.1 s, 0.2 s, 0.4 s (backoff doubling)`.
    pub fn explain(&self) -> String {
        let span = self.boot_ns.saturating_sub(self.since_boot_ns);
        let mut s = format!(
            "{} ({}) is in a restart loop: {} deaths in {}",
            self.container.display(),
            self.container.runtime,
            self.count,
            seconds(span as i64)
        );
        let causes: Vec<String> = self.deaths.iter().map(|d| d.cause.describe()).collect();
        match causes.first() {
            Some(first) if causes.iter().all(|c| c == first) => {
                s.push_str(&format!(", each {first}"));
            }
            _ => {
                let mut tally: Vec<(String, usize)> = Vec::new();
                for c in causes {
                    match tally.iter_mut().find(|(k, _)| *k == c) {
                        Some((_, n)) => *n += 1,
                        None => tally.push((c, 1)),
                    }
                }
                let parts: Vec<String> = tally.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
                s.push_str(&format!(": {}", parts.join(", ")));
            }
        }
        let backoffs: Vec<u64> = self
            .deaths
            .iter()
            .filter_map(|d| d.restarted_after_ns)
            .collect();
        if !backoffs.is_empty() {
            let list: Vec<String> = backoffs.iter().map(|&b| seconds(b as i64)).collect();
            s.push_str(&format!("; restarted after {}", list.join(", ")));
            // Each wait at least the one before, the last twice the first: a backoff.
            let growing = backoffs.windows(2).all(|w| w[1] >= w[0])
                && backoffs
                    .last()
                    .zip(backoffs.first())
                    .is_some_and(|(l, f)| *l >= 2 * f);
            if backoffs.len() >= 3 && growing {
                s.push_str(" (the runtime's backoff, growing)");
            }
        }
        if self
            .deaths
            .last()
            .is_some_and(|d| d.restarted_after_ns.is_none())
        {
            s.push_str("; not restarted yet");
        }
        s
    }
}
