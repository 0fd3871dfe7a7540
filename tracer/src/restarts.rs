//! Restart loops: a container that dies and is brought back by its runtime again and again
//! (Docker's `--restart`, a kubelet restarting a pod's container) becomes one story.
//!
//! [`RestartWatch`] follows the `container_start` and `container_stop` incidents (and the OOM
//! kills that caused a stop). Deaths of one container each within [`RestartWatch::window_ns`]
//! of the one before make a loop; from its [`RestartWatch::threshold`]th death on, every
//! death gives a [`RestartLoop`]: each
//! death's cause, the time between deaths, and the backoff (from a death to the next start).
//! Each report is whole, so a reader needs only the last one of a loop (`since` names it).
//!
//! A container is followed by its identity across restarts: Docker keeps the container id; a
//! kubelet creates a new container for each restart, with the same pod and container name.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use crate::{
    explain::{Cause, Death, ExitInfo, Incident, RestartLoop, StopReason},
    resolve::Container,
};

pub use crate::explain::DEATHS_KEPT;
/// Containers followed at once; the one quiet longest is forgotten first.
pub const CONTAINERS_KEPT: usize = 4096;
/// An OOM kill this long before a stop is its cause.
const OOM_BEFORE_STOP_NS: u64 = 5_000_000_000;

#[derive(Debug, Default)]
struct History {
    deaths: VecDeque<Death>,
    /// Deaths of this loop, counting those no longer kept.
    count: usize,
    /// The first death of this loop.
    since_ns: u64,
    /// The last OOM kill of the container's init: when, and the limit.
    last_oom: Option<(u64, Option<u64>)>,
    last_seen_ns: u64,
}

/// Follows starts and stops and reports restart loops.
#[derive(Debug)]
pub struct RestartWatch {
    /// Deaths this close together make a loop.
    pub window_ns: u64,
    /// From this many deaths in the window on, each death is reported as a loop.
    pub threshold: usize,
    by_container: HashMap<String, History>,
}

impl Default for RestartWatch {
    fn default() -> Self {
        Self::new(10 * 60 * 1_000_000_000, 3)
    }
}

/// What follows one container across its restarts: the pod and container name under a
/// kubelet (a new container id each time), else the runtime and id.
fn identity(c: &Container) -> String {
    match &c.pod {
        Some(p) => format!(
            "pod/{}/{}/{}",
            p.namespace,
            p.uid.as_deref().unwrap_or(&p.name),
            p.container.as_deref().unwrap_or("")
        ),
        None => format!("{}/{}", c.runtime, c.id),
    }
}

impl RestartWatch {
    pub fn new(window_ns: u64, threshold: usize) -> Self {
        Self {
            window_ns,
            threshold: threshold.max(2),
            by_container: HashMap::new(),
        }
    }

    /// Containers followed now.
    pub fn len(&self) -> usize {
        self.by_container.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_container.is_empty()
    }

    fn history(&mut self, c: &Container, now: u64) -> &mut History {
        let key = identity(c);
        if !self.by_container.contains_key(&key) && self.by_container.len() >= CONTAINERS_KEPT {
            let quiet = self
                .by_container
                .iter()
                .min_by_key(|(_, h)| h.last_seen_ns)
                .map(|(k, _)| k.clone());
            if let Some(k) = quiet {
                self.by_container.remove(&k);
            }
        }
        let h = self.by_container.entry(key).or_default();
        h.last_seen_ns = now;
        h
    }

    /// Follow one incident; a loop when it is a death that makes or continues one.
    pub fn observe(&mut self, i: &Incident) -> Option<RestartLoop> {
        match i {
            // The init's OOM kill (the container stopped with it; a restarted container's
            // new init may not be known by its pid yet).
            Incident::Oom(o) if o.container_stopped || o.victim.is_container_init() => {
                let c = o.victim.container()?;
                let limit = o.memory.as_ref().and_then(|m| m.limit_bytes);
                self.history(c, o.boot_ns).last_oom = Some((o.boot_ns, limit));
                None
            }
            Incident::ContainerStart {
                boot_ns, container, ..
            } => {
                let h = self.history(container, *boot_ns);
                if let Some(d) = h.deaths.back_mut() {
                    if d.restarted_after_ns.is_none() && *boot_ns >= d.boot_ns {
                        d.restarted_after_ns = Some(boot_ns - d.boot_ns);
                    }
                }
                None
            }
            Incident::ContainerStop {
                boot_ns,
                container,
                exit,
                reason,
            } => self.death(container, *boot_ns, *exit, reason),
            _ => None,
        }
    }

    fn death(
        &mut self,
        container: &Arc<Container>,
        now: u64,
        exit: ExitInfo,
        reason: &StopReason,
    ) -> Option<RestartLoop> {
        let (window_ns, threshold) = (self.window_ns, self.threshold);
        let h = self.history(container, now);
        let cause = match reason {
            StopReason::OomKilled => Cause::OomKilled {
                limit_bytes: h
                    .last_oom
                    .filter(|(t, _)| now.saturating_sub(*t) <= OOM_BEFORE_STOP_NS)
                    .and_then(|(_, l)| l),
            },
            StopReason::Killed { signo, by } => Cause::Killed {
                signo: *signo,
                by: by.clone(),
            },
            StopReason::Exited => Cause::Exited,
            StopReason::Signaled => Cause::Signaled,
        };
        // A death longer than the window after the previous one starts a new story.
        if h.deaths
            .back()
            .is_some_and(|d| now.saturating_sub(d.boot_ns) > window_ns)
        {
            h.deaths.clear();
            h.count = 0;
            h.since_ns = now;
        }
        if h.deaths.is_empty() {
            h.since_ns = now;
        }
        h.deaths.push_back(Death {
            boot_ns: now,
            cause,
            exit,
            restarted_after_ns: None,
        });
        h.count += 1;
        if h.deaths.len() > DEATHS_KEPT {
            h.deaths.pop_front();
        }
        if h.count < threshold {
            return None;
        }
        Some(RestartLoop {
            boot_ns: now,
            container: container.clone(),
            deaths: h.deaths.iter().cloned().collect(),
            count: h.count,
            since_boot_ns: h.since_ns,
            window_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        container::{PodInfo, Runtime},
        explain::Party,
        resolve::Attribution,
    };

    const S: u64 = 1_000_000_000;

    fn web(id: &str) -> Arc<Container> {
        Arc::new(Container::named(id, "web", Runtime::Docker))
    }

    fn stop(c: &Arc<Container>, at: u64, reason: StopReason) -> Incident {
        Incident::ContainerStop {
            boot_ns: at,
            container: c.clone(),
            exit: ExitInfo {
                code: Some(137),
                signal: Some(9),
            },
            reason,
        }
    }

    fn start(c: &Arc<Container>, at: u64) -> Incident {
        Incident::ContainerStart {
            boot_ns: at,
            container: c.clone(),
            init: Party {
                pid: 100,
                comm: "tail".into(),
                attribution: Attribution::Container(c.clone()),
                cgroup_id: Some(5),
            },
            filename: "/bin/tail".into(),
        }
    }

    /// Stops at `stops` seconds, each followed by a start `backoff` later; the loops reported.
    fn run(
        w: &mut RestartWatch,
        c: &Arc<Container>,
        stops: &[u64],
        backoff: u64,
    ) -> Vec<RestartLoop> {
        let mut out = Vec::new();
        for &t in stops {
            out.extend(w.observe(&stop(c, t * S, StopReason::OomKilled)));
            out.extend(w.observe(&start(c, t * S + backoff)));
        }
        out
    }

    #[test]
    fn the_third_death_in_the_window_is_a_loop_and_each_one_after() {
        let mut w = RestartWatch::default();
        let c = web("a1");
        let loops = run(&mut w, &c, &[10, 11, 13, 17], S / 10);
        assert_eq!(loops.len(), 2, "{loops:?}");
        assert_eq!(loops[0].count, 3);
        assert_eq!(loops[1].count, 4);
        // One loop: the same first death in every report.
        assert_eq!(loops[0].since_boot_ns, 10 * S);
        assert_eq!(loops[1].since_boot_ns, 10 * S);
        // The report comes at the death: the backoffs before it are known, its own is not.
        let l = &loops[1];
        assert_eq!(l.deaths.len(), 4);
        assert_eq!(l.deaths[0].restarted_after_ns, Some(S / 10));
        assert_eq!(l.deaths[3].restarted_after_ns, None);
        assert_eq!(
            l.explain(),
            "web (docker) is in a restart loop: 4 deaths in 7 s, each OOM-killed; restarted \
             after 0.1 s, 0.1 s, 0.1 s; not restarted yet"
        );
    }

    #[test]
    fn deaths_further_apart_than_the_window_are_no_loop() {
        let mut w = RestartWatch::new(60 * S, 3);
        let c = web("a1");
        assert!(run(&mut w, &c, &[0, 100, 200, 300], S).is_empty());
        // A quiet spell ends a loop: the next one counts from 1 again.
        let loops = run(&mut w, &c, &[301, 302], S);
        assert_eq!(loops.len(), 1);
        assert_eq!(loops[0].count, 3);
        assert_eq!(loops[0].since_boot_ns, 300 * S);
    }

    #[test]
    fn causes_are_named_with_the_sender() {
        let mut w = RestartWatch::default();
        let c = web("a1");
        let host = Party {
            pid: 812,
            comm: "bash".into(),
            attribution: Attribution::Host,
            cgroup_id: Some(1),
        };
        w.observe(&stop(&c, S, StopReason::Exited));
        w.observe(&stop(
            &c,
            2 * S,
            StopReason::Killed {
                signo: 15,
                by: host,
            },
        ));
        let l = w
            .observe(&stop(&c, 3 * S, StopReason::Signaled))
            .expect("a loop");
        assert_eq!(
            l.explain(),
            "web (docker) is in a restart loop: 3 deaths in 2 s: exited ×1, killed by SIGTERM \
             from bash (pid 812, host) ×1, died of a signal ×1; not restarted yet"
        );
    }

    #[test]
    fn a_growing_backoff_is_called_so() {
        let mut w = RestartWatch::default();
        let c = web("a1");
        let mut loops = Vec::new();
        let mut t = 0;
        for backoff in [S / 10, S / 5, 2 * S / 5, 4 * S / 5] {
            loops.extend(w.observe(&stop(&c, t, StopReason::Exited)));
            loops.extend(w.observe(&start(&c, t + backoff)));
            t += backoff + S;
        }
        loops.extend(w.observe(&stop(&c, t, StopReason::Exited)));
        let l = loops.last().expect("a loop");
        assert!(
            l.explain()
                .ends_with("restarted after 0.1 s, 0.2 s, 0.4 s, 0.8 s (the runtime's backoff, growing); not restarted yet"),
            "{}",
            l.explain()
        );
    }

    #[test]
    fn a_kubelet_restart_is_a_new_container_of_the_same_pod() {
        let mut w = RestartWatch::default();
        let pod = |id: &str| {
            let mut c = Container::named(id, "app", Runtime::Containerd);
            c.pod = Some(PodInfo {
                name: "web-0".into(),
                namespace: "shop".into(),
                container: Some("app".into()),
                uid: Some("u-1".into()),
            });
            Arc::new(c)
        };
        let mut loops = Vec::new();
        for (i, id) in ["c1", "c2", "c3"].into_iter().enumerate() {
            loops.extend(w.observe(&stop(&pod(id), i as u64 * S, StopReason::Exited)));
        }
        assert_eq!(loops.len(), 1);
        assert_eq!(loops[0].container.id, "c3");
        assert_eq!(w.len(), 1);
        // Another container in the same pod is another story.
        assert!(w
            .observe(&stop(&web("other"), 0, StopReason::Exited))
            .is_none());
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn containers_followed_are_bounded() {
        let mut w = RestartWatch::default();
        for i in 0..CONTAINERS_KEPT + 10 {
            w.observe(&stop(&web(&format!("c{i}")), i as u64, StopReason::Exited));
        }
        assert_eq!(w.len(), CONTAINERS_KEPT);
    }
}
