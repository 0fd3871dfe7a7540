//! ctrace's own table of processes, kept from the kernel's records: the header of every
//! record (the current task, its process and cgroup), fork records (a child starts in its
//! parent's cgroup), exit records (the task is gone), and moves between cgroups.
//!
//! It answers "which process and cgroup is thread N in" for records whose kernel side could
//! not read the target task: the classic `signal_generate` tracepoint (kernels or setups where
//! the BTF-typed one cannot load) and `oom:mark_victim` when the OOM killer's SIGKILL record was
//! lost. Exited tasks are remembered a while, because a SIGKILL's target is often gone by the
//! time userspace reads the record. Tasks that started before ctrace are looked up in `/proc`
//! once, while they still exist.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::event::{Body, CgroupOp, Event};

/// A map keyed by task ids (or other small keys) on the per-record path: foldhash instead of
/// std's SipHash, which was a tenth of the pipeline's time (`perf` of `cargo bench --bench
/// pipeline`). Still seeded per map, and the kernel, not a container, picks the (host) ids.
pub type PidMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// How long an exited task stays known, in boot-time nanoseconds.
const EXITED_KEEP_NS: u64 = 10_000_000_000;

/// Bound on remembered tasks; past it, exited tasks are dropped first, then the least
/// recently seen half.
const MAX_TASKS: usize = 1 << 17;

/// Where a task's process and cgroup were learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// From ctrace's records (fork, exec, exit, the task's own records).
    Records,
    /// Read from `/proc` (a task older than ctrace, still alive).
    Proc,
}

/// What is known of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFacts {
    /// Its process (thread group). Unknown for a forked child that left no record of its own
    /// yet: `sched_process_fork` does not say whether the child is a thread or a process.
    pub tgid: Option<u32>,
    /// Its cgroup v2 id.
    pub cgroup_id: u64,
    pub source: Source,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tgid: Option<u32>,
    cgroup_id: u64,
    seen_ns: u64,
    exited_ns: Option<u64>,
}

/// `/proc` and the cgroup v2 mount, for tasks the records have not shown.
#[derive(Debug, Clone)]
pub struct ProcSource {
    pub proc_root: PathBuf,
    pub cgroup2_root: PathBuf,
}

impl ProcSource {
    /// This host's `/proc` and cgroup v2 mount.
    pub fn host() -> Self {
        Self {
            proc_root: PathBuf::from(crate::host::proc::ROOT),
            cgroup2_root: crate::resolve::cgroup2_mount(),
        }
    }

    fn read_task(&self, tid: u32) -> Option<(u32, u64)> {
        let tgid = crate::host::proc::tgid(&self.proc_root, tid)?;
        let (_, id) = crate::resolve::unified_cgroup_of(&self.proc_root, &self.cgroup2_root, tid)?;
        Some((tgid, id))
    }
}

/// Where the process and cgroup of a task the records have not shown are asked for: `/proc`
/// ([`ProcSource`]), or a capture's answers when replaying.
pub trait TaskLookup: std::fmt::Debug + Send {
    /// The thread group and cgroup v2 id of thread `tid`, if it exists.
    fn read(&mut self, tid: u32) -> Option<(u32, u64)>;
}

impl TaskLookup for ProcSource {
    fn read(&mut self, tid: u32) -> Option<(u32, u64)> {
        self.read_task(tid)
    }
}

/// Lookups served, for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub from_records: u64,
    pub from_proc: u64,
    pub unknown: u64,
}

/// The table. Owned by the event loop.
#[derive(Debug, Default)]
pub struct ProcTable {
    tasks: PidMap<u32, Entry>,
    proc: Option<Box<dyn TaskLookup>>,
    pub stats: Stats,
}

impl ProcTable {
    /// A table that asks `proc` (`/proc`, usually) for tasks its records have not shown.
    pub fn new(proc: Option<Box<dyn TaskLookup>>) -> Self {
        Self {
            proc,
            ..Self::default()
        }
    }

    /// Where tasks the records have not shown are looked up from now on.
    pub fn set_lookup(&mut self, proc: Option<Box<dyn TaskLookup>>) {
        self.proc = proc;
    }

    /// Learn every task alive now from `/proc` (through `src`), as of boot time `now_ns`: for
    /// when the kernel side cannot read signal targets, whose tasks (a SIGKILL's especially)
    /// are often gone from `/proc` by the time their record is read. Returns what was learnt:
    /// (thread, thread group, cgroup v2 id).
    pub fn seed(&mut self, src: &ProcSource, now_ns: u64) -> Vec<(u32, u32, u64)> {
        let mut learnt = Vec::new();
        for pid in crate::host::proc::pids(&src.proc_root) {
            for tid in crate::host::proc::tids(&src.proc_root, pid) {
                if self.tasks.len() >= MAX_TASKS {
                    return learnt;
                }
                if let Some((tgid, cgroup_id)) = src.read_task(tid) {
                    self.set(tid, Some(tgid), cgroup_id, now_ns);
                    learnt.push((tid, tgid, cgroup_id));
                }
            }
        }
        learnt
    }

    /// Learn tasks from an earlier [`ProcTable::seed`]'s result (a capture's).
    pub fn seed_from(&mut self, tasks: &[(u32, u32, u64)], now_ns: u64) {
        for &(tid, tgid, cgroup_id) in tasks {
            if self.tasks.len() >= MAX_TASKS {
                return;
            }
            self.set(tid, Some(tgid), cgroup_id, now_ns);
        }
    }

    /// Tasks remembered (live and recently exited).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Learn from one record.
    pub fn observe(&mut self, ev: &Event) {
        let now = ev.boot_ns;
        let t = &ev.task;
        self.set(t.tid, Some(t.pid), t.cgroup_id, now);
        match &ev.body {
            Body::Fork(f) => {
                // A new task starts in its parent's cgroup (clone3 with CLONE_INTO_CGROUP
                // excepted: its own first record corrects that).
                self.tasks.insert(
                    f.child_pid,
                    Entry {
                        tgid: None,
                        cgroup_id: t.cgroup_id,
                        seen_ns: now,
                        exited_ns: None,
                    },
                );
            }
            Body::Exec(e) if e.old_pid != t.tid => {
                // A non-leader thread exec'd: it took the leader's pid, its own id is gone.
                self.exited(e.old_pid, now);
            }
            Body::Exit(x) => {
                self.exited(t.tid, now);
                if x.group_dead == Some(true) {
                    self.exited(t.pid, now);
                }
            }
            // The cgroup v2 hierarchy (root 0 in these records) is the one whose ids the
            // kernel reports.
            Body::Cgroup(c) if c.op == CgroupOp::Attach && c.root == 0 => {
                if let Some(pid) = c.pid {
                    let e = self.tasks.entry(pid).or_insert(Entry {
                        tgid: None,
                        cgroup_id: c.id,
                        seen_ns: now,
                        exited_ns: None,
                    });
                    e.cgroup_id = c.id;
                    e.seen_ns = now;
                }
            }
            _ => {}
        }
        if self.tasks.len() > MAX_TASKS {
            self.shrink(now);
        }
    }

    fn set(&mut self, tid: u32, tgid: Option<u32>, cgroup_id: u64, now: u64) {
        if tid == 0 {
            return;
        }
        let e = self.tasks.entry(tid).or_insert(Entry {
            tgid,
            cgroup_id,
            seen_ns: now,
            exited_ns: None,
        });
        // A record from a task that was marked exited means its id was reused.
        if e.exited_ns.is_some_and(|x| now > x) {
            e.exited_ns = None;
        }
        if tgid.is_some() {
            e.tgid = tgid;
        }
        e.cgroup_id = cgroup_id;
        e.seen_ns = now;
    }

    fn exited(&mut self, tid: u32, now: u64) {
        if let Some(e) = self.tasks.get_mut(&tid) {
            e.exited_ns.get_or_insert(now);
        }
    }

    fn shrink(&mut self, now: u64) {
        self.tasks.retain(|_, e| {
            e.exited_ns
                .is_none_or(|x| now.saturating_sub(x) < EXITED_KEEP_NS)
        });
        if self.tasks.len() > MAX_TASKS / 2 {
            let mut seen: Vec<u64> = self.tasks.values().map(|e| e.seen_ns).collect();
            let cut = seen.len() / 2;
            let (_, median, _) = seen.select_nth_unstable(cut);
            let median = *median;
            self.tasks.retain(|_, e| e.seen_ns > median);
        }
    }

    /// Process and cgroup of thread `tid` as of boot time `now_ns`: from the records, else
    /// from `/proc` (remembered from then on).
    pub fn lookup(&mut self, tid: u32, now_ns: u64) -> Option<TaskFacts> {
        if let Some(e) = self.tasks.get(&tid) {
            if e.exited_ns
                .is_none_or(|x| now_ns.saturating_sub(x) < EXITED_KEEP_NS)
            {
                self.stats.from_records += 1;
                return Some(TaskFacts {
                    tgid: e.tgid,
                    cgroup_id: e.cgroup_id,
                    source: Source::Records,
                });
            }
        }
        match self.proc.as_mut().and_then(|p| p.read(tid)) {
            Some((tgid, cgroup_id)) => {
                self.stats.from_proc += 1;
                self.set(tid, Some(tgid), cgroup_id, now_ns);
                Some(TaskFacts {
                    tgid: Some(tgid),
                    cgroup_id,
                    source: Source::Proc,
                })
            }
            None => {
                self.stats.unknown += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::event::{Cgroup, Exec, Exit, Fork, Task};

    fn ev(tid: u32, pid: u32, cgroup_id: u64, boot_ns: u64, body: Body) -> Event {
        Event {
            kind: 0,
            boot_ns,
            task: Task {
                tid,
                pid,
                ppid: None,
                uid: 0,
                cgroup_id,
                comm: "t".into(),
            },
            body,
        }
    }

    fn fork(child: u32) -> Body {
        Body::Fork(Fork {
            child_pid: child,
            child_comm: "c".into(),
        })
    }

    fn exit(group_dead: bool) -> Body {
        Body::Exit(Exit {
            status: Some(9),
            group_dead: Some(group_dead),
        })
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn child_starts_in_the_parents_cgroup_and_keeps_its_own_after() {
        let mut t = ProcTable::new(None);
        t.observe(&ev(100, 100, 7, S, fork(200)));
        let f = t.lookup(200, S).unwrap();
        assert_eq!((f.tgid, f.cgroup_id, f.source), (None, 7, Source::Records));
        // Its own exec record tells its process and (new) cgroup.
        t.observe(&ev(
            200,
            200,
            9,
            2 * S,
            Body::Exec(Exec {
                old_pid: 200,
                filename: "/bin/sleep".into(),
            }),
        ));
        let f = t.lookup(200, 2 * S).unwrap();
        assert_eq!((f.tgid, f.cgroup_id), (Some(200), 9));
        // The parent is known from its own record's header.
        assert_eq!(t.lookup(100, 2 * S).unwrap().cgroup_id, 7);
    }

    #[test]
    fn exited_tasks_are_remembered_for_a_while_then_forgotten() {
        let mut t = ProcTable::new(None);
        t.observe(&ev(
            300,
            300,
            5,
            S,
            Body::Exec(Exec {
                old_pid: 300,
                filename: "x".into(),
            }),
        ));
        t.observe(&ev(300, 300, 5, 2 * S, exit(true)));
        // A SIGKILL record read after the exit still finds it.
        assert_eq!(t.lookup(300, 3 * S).unwrap().cgroup_id, 5);
        assert_eq!(t.lookup(300, 2 * S + EXITED_KEEP_NS), None);
        assert_eq!(t.stats.unknown, 1);
    }

    #[test]
    fn reused_ids_take_the_new_tasks_facts() {
        let mut t = ProcTable::new(None);
        t.observe(&ev(400, 400, 5, S, exit(true)));
        t.observe(&ev(1, 1, 1, 2 * S, fork(400)));
        let f = t.lookup(400, 20 * S).unwrap();
        assert_eq!((f.tgid, f.cgroup_id), (None, 1));
    }

    #[test]
    fn threads_and_cgroup_moves() {
        let mut t = ProcTable::new(None);
        // A thread's record names its process.
        t.observe(&ev(
            501,
            500,
            5,
            S,
            Body::Exec(Exec {
                old_pid: 501,
                filename: "x".into(),
            }),
        ));
        assert_eq!(t.lookup(501, S).unwrap().tgid, Some(500));
        // Moved to another cgroup of the v2 hierarchy; v1 moves do not change its id.
        let attach = |root, id| {
            Body::Cgroup(Cgroup {
                op: CgroupOp::Attach,
                root,
                level: 1,
                id,
                pid: Some(501),
                path: "/x".into(),
            })
        };
        t.observe(&ev(1, 1, 1, 2 * S, attach(0, 77)));
        t.observe(&ev(1, 1, 1, 2 * S, attach(3, 12)));
        assert_eq!(t.lookup(501, 2 * S).unwrap().cgroup_id, 77);
        // A thread's exit does not end its process; the group's does.
        t.observe(&ev(501, 500, 77, 3 * S, exit(false)));
        t.observe(&ev(
            500,
            500,
            77,
            3 * S,
            Body::Exec(Exec {
                old_pid: 500,
                filename: "x".into(),
            }),
        ));
        t.observe(&ev(500, 500, 77, 4 * S, exit(true)));
        assert!(t.lookup(500, 4 * S + EXITED_KEEP_NS).is_none());
    }

    #[test]
    fn tasks_older_than_ctrace_come_from_proc_once() {
        let dir = std::env::temp_dir().join(format!("ctrace-proctable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let proc_root = dir.join("proc");
        let cg = dir.join("cgroup2");
        std::fs::create_dir_all(proc_root.join("42")).unwrap();
        std::fs::create_dir_all(cg.join("docker/abc")).unwrap();
        std::fs::write(
            proc_root.join("42/status"),
            "Name:\tsleep\nTgid:\t41\nPid:\t42\n",
        )
        .unwrap();
        std::fs::write(
            proc_root.join("42/cgroup"),
            "12:memory:/docker/abc\n0::/docker/abc\n",
        )
        .unwrap();
        let ino = std::fs::metadata(cg.join("docker/abc")).unwrap().ino();
        let mut t = ProcTable::new(Some(Box::new(ProcSource {
            proc_root: proc_root.clone(),
            cgroup2_root: cg,
        })));
        let f = t.lookup(42, S).unwrap();
        assert_eq!(
            (f.tgid, f.cgroup_id, f.source),
            (Some(41), ino, Source::Proc)
        );
        // Gone from /proc now: still known.
        std::fs::remove_dir_all(proc_root.join("42")).unwrap();
        assert_eq!(t.lookup(42, 2 * S).unwrap().source, Source::Records);
        // Garbage and missing entries are unknown, never a panic.
        std::fs::create_dir_all(proc_root.join("43")).unwrap();
        std::fs::write(proc_root.join("43/status"), "Tgid:\tnope\n").unwrap();
        assert_eq!(t.lookup(43, S), None);
        assert_eq!(t.lookup(44, S), None);
        assert_eq!(
            t.stats,
            Stats {
                from_records: 1,
                from_proc: 1,
                unknown: 2
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bounded() {
        let mut t = ProcTable::new(None);
        for i in 0..(MAX_TASKS as u32 + 10) {
            t.observe(&ev(1, 1, 1, u64::from(i) + 1, fork(i + 2)));
        }
        assert!(t.len() <= MAX_TASKS, "{}", t.len());
        // The most recent are kept.
        assert!(t.lookup(MAX_TASKS as u32 + 11, u64::MAX / 2).is_some());
    }

    #[test]
    fn seeding_learns_this_hosts_live_tasks() {
        let mut t = ProcTable::new(None);
        let learnt = t.seed(&ProcSource::host(), S);
        let n = learnt.len();
        assert!(n > 0 && n == t.len(), "{n} {}", t.len());
        // What a capture keeps of it teaches another table the same.
        let mut again = ProcTable::new(None);
        again.seed_from(&learnt, S);
        assert_eq!(again.len(), n);
        assert_eq!(
            again.lookup(std::process::id(), S),
            t.lookup(std::process::id(), S)
        );
        let me = std::process::id();
        let f = t.lookup(me, S).unwrap();
        assert_eq!((f.tgid, f.source), (Some(me), Source::Records));
        // A thread of this process is known with its process.
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let th = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        t.seed(&ProcSource::host(), S);
        done_tx.send(()).unwrap();
        th.join().unwrap();
        assert_ne!(tid, me);
        assert_eq!(t.lookup(tid, S).unwrap().tgid, Some(me));
    }
}
