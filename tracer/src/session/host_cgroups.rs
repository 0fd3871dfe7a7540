//! The cgroups whose allowed capability checks the kernel may drop: those placed on the host,
//! when nothing wants host processes' allowed checks (the journal keeps containers' only, and
//! the output shows none). Each allowed check costs the kernel a slot of its fold and a record
//! per new process and capability; a fork/exec storm on the host makes eight per exec.
//!
//! A cgroup is marked once a record of an allowed check comes from it attributed to the host,
//! and unmarked as soon as anything from it is attributed to a container (a runtime claimed
//! it late), or it is removed. Cgroups not yet placed are never marked: a new container's
//! first checks come whatever the resolver knows of it then.

use crate::event::{Body, CgroupOp, Event};
use crate::proctable::PidMap;
use crate::resolve::{Attribution, Attrs};

/// At most this many cgroups are remembered as marked (the kernel's map holds 4096, as an
/// LRU). Past it the memory is cleared: a cgroup then marked in the kernel but forgotten here
/// is only unmarked when the kernel evicts it, which matters only if a runtime claims a host
/// cgroup later.
const MAX_MARKED: usize = 8192;

/// Marks to send to the kernel, and the cgroups marked so far.
#[derive(Debug, Default)]
pub struct HostCgroups {
    /// Whether the kernel filters (`probe::Options::cap_allowed_host` off, and capability
    /// checks traced): otherwise nothing is marked.
    on: bool,
    marked: PidMap<u64, ()>,
    /// `(cgroup id, host)` changes not yet told to the kernel, in order.
    pending: Vec<(u64, bool)>,
}

impl HostCgroups {
    pub fn new(on: bool) -> Self {
        Self {
            on,
            ..Self::default()
        }
    }

    /// Learn from one attributed record.
    pub fn observe(&mut self, ev: &Event, attrs: &Attrs) {
        if !self.on {
            return;
        }
        let id = ev.task.cgroup_id;
        match (&ev.body, &attrs.process) {
            (Body::Capability(c), Attribution::Host)
                if c.allowed() && !self.marked.contains_key(&id) =>
            {
                if self.marked.len() >= MAX_MARKED {
                    self.marked.clear();
                }
                self.marked.insert(id, ());
                self.pending.push((id, true));
            }
            (_, Attribution::Container(_)) => self.unmark(id),
            _ => {}
        }
        match &ev.body {
            Body::Cgroup(c) if c.op == CgroupOp::Rmdir => self.unmark(c.id),
            _ => {}
        }
    }

    /// A container claimed cgroup `id` (a `container_update` naming it): it is not the host's.
    pub fn unmark(&mut self, id: u64) {
        if self.marked.remove(&id).is_some() {
            self.pending.push((id, false));
        }
    }

    /// The changes to tell the kernel since the last call.
    pub fn take(&mut self) -> Vec<(u64, bool)> {
        std::mem::take(&mut self.pending)
    }

    /// Whether changes wait (cheap: called every turn of the loop).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::container::Runtime;
    use crate::event::{Capability, Cgroup, Task};
    use crate::resolve::Container;

    fn ev(cgroup_id: u64, body: Body) -> Event {
        Event {
            kind: 0,
            boot_ns: 0,
            task: Task {
                tid: 1,
                pid: 1,
                ppid: None,
                uid: 0,
                cgroup_id,
                comm: "sh".into(),
            },
            body,
        }
    }

    fn cap(ret: i32) -> Body {
        Body::Capability(Capability {
            cap: 21,
            ret,
            cpu: 0,
            generation: 1,
            total: 1,
            count: 1,
            span_ns: 0,
        })
    }

    fn at(process: Attribution) -> Attrs {
        Attrs {
            process,
            other: None,
        }
    }

    fn container() -> Attribution {
        Attribution::Container(Arc::new(Container::named("c1", "web", Runtime::Docker)))
    }

    #[test]
    fn allowed_checks_of_the_host_mark_their_cgroup_once() {
        let mut h = HostCgroups::new(true);
        h.observe(&ev(7, cap(0)), &at(Attribution::Host));
        h.observe(&ev(7, cap(0)), &at(Attribution::Host));
        assert_eq!(h.take(), vec![(7, true)]);
        assert!(!h.has_pending());
    }

    #[test]
    fn denials_unknown_cgroups_and_containers_never_mark() {
        let mut h = HostCgroups::new(true);
        h.observe(&ev(7, cap(-1)), &at(Attribution::Host));
        h.observe(&ev(8, cap(0)), &at(Attribution::Unknown));
        h.observe(&ev(9, cap(0)), &at(container()));
        assert!(h.take().is_empty());
    }

    #[test]
    fn a_cgroup_claimed_by_a_container_or_removed_is_unmarked() {
        let mut h = HostCgroups::new(true);
        h.observe(&ev(7, cap(0)), &at(Attribution::Host));
        h.observe(&ev(8, cap(0)), &at(Attribution::Host));
        h.observe(&ev(7, cap(0)), &at(container()));
        let rmdir = Body::Cgroup(Cgroup {
            op: CgroupOp::Rmdir,
            root: 0,
            level: 1,
            id: 8,
            pid: None,
            path: "/x".into(),
        });
        h.observe(&ev(1, rmdir), &at(Attribution::Host));
        h.unmark(8); // already unmarked: nothing more
        assert_eq!(h.take(), vec![(7, true), (8, true), (7, false), (8, false)]);
    }

    #[test]
    fn off_it_marks_nothing() {
        let mut h = HostCgroups::new(false);
        h.observe(&ev(7, cap(0)), &at(Attribution::Host));
        assert!(!h.has_pending());
    }

    #[test]
    fn memory_is_bounded() {
        let mut h = HostCgroups::new(true);
        for id in 0..(MAX_MARKED as u64 + 10) {
            h.observe(&ev(id + 2, cap(0)), &at(Attribution::Host));
        }
        assert!(h.marked.len() <= MAX_MARKED);
        assert_eq!(h.take().len(), MAX_MARKED + 10);
    }
}
