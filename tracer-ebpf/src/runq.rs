//! Run-queue delay per cgroup: the time a task waits between becoming runnable (woken up, or
//! preempted while still runnable) and getting a CPU. This is what CFS throttling costs the
//! container's users. Aggregated in the kernel into per-cgroup histograms, never streamed.
//!
//! Two sources for when the wait began ([`runq_source`]). Where BTF has the members, the
//! kernel's own stamp: every task it queues gets `sched_info.last_queued` by its run queue's
//! clock, and `sched_switch` fires after that clock was updated for this switch and before the
//! kernel consumes the stamp (`sched_info_arrive()` in `context_switch()`), so the wait is the
//! clock minus the stamp, the same figure the kernel adds to the task's `run_delay`
//! (`/proc/PID/schedstat`). One program then, on switches only. Otherwise, programs on the
//! wakeups stamp tasks in a map.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{btf_tracepoint, map},
    maps::{LruHashMap, LruPerCpuHashMap, PerCpuArray},
    programs::BtfTracePointContext,
};
use tracer_common::{runq_source, RunqHist};

use crate::emit::{btf_load, btf_task_cgroup_id};

/// When each thread became runnable; 0 while it is not waiting. Entries are updated in place
/// and never deleted on the hot path: an insert and a delete per context switch (an LRU
/// element taken and given back, under the map's locks) cost more than the rest of the
/// program.
#[map]
static RUNQ_SINCE: LruHashMap<u32, u64> = LruHashMap::with_max_entries(32768, 0);

/// Histograms per cgroup v2 id, per CPU.
#[map]
static RUNQ: LruPerCpuHashMap<u64, RunqHist> = LruPerCpuHashMap::with_max_entries(8192, 0);

/// The cgroup v2 id of the task each CPU last switched to (its idle task's is the root's).
/// A thread that runs on alone is not switched in again while it runs: userspace reads this
/// at each tick, and a container found here ran, whatever its switch-in counts say.
#[map]
static RUNQ_CURRENT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The programs' `task` is a BTF-typed argument: its members are read with plain loads.
#[inline(always)]
fn task_tid(task: u64) -> Option<u32> {
    btf_load(task, conf!(task.pid))
}

#[inline(always)]
fn enqueue(task: u64) {
    let Some(tid) = task_tid(task) else { return };
    if tid == 0 {
        return; // the idle task
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    match RUNQ_SINCE.get_ptr_mut(&tid) {
        // SAFETY: an element of the map, written whole (an aligned u64 store); a racing
        // update of the same thread on another CPU leaves one of the two stamps, either true.
        Some(since) => unsafe { *since = now },
        None => {
            let _ = RUNQ_SINCE.insert(&tid, &now, 0);
        }
    }
}

/// The wait of `task`, switched in now, from the map's stamp.
#[inline(always)]
fn stamped_wait(task: u64) -> Option<u64> {
    let tid = task_tid(task)?;
    let slot = RUNQ_SINCE.get_ptr_mut(&tid)?;
    // SAFETY: an element of the map; read and cleared at once (see `RUNQ_SINCE`).
    let since = unsafe {
        let since = *slot;
        *slot = 0;
        since
    };
    if since == 0 {
        return None; // not waiting: switched in without a wakeup seen (or counted already)
    }
    // SAFETY: helper without preconditions.
    Some(unsafe { bpf_ktime_get_ns() }.saturating_sub(since))
}

/// The wait of `task`, switched in now, from the kernel's stamp and its run queue's clock.
/// `None` for a task the kernel did not stamp (the idle task, one switched in without having
/// been queued).
#[inline(always)]
fn queued_wait(task: u64) -> Option<u64> {
    let since: u64 = btf_load(task, conf!(task.task_last_queued))?;
    if since == 0 {
        return None;
    }
    let cfs_rq: u64 = btf_load(task, conf!(task.task_cfs_rq))?;
    let rq: u64 = btf_load(cfs_rq, conf!(task.cfs_rq_rq))?;
    let now: u64 = btf_load(rq, conf!(task.rq_clock))?;
    // A stamp from another CPU's clock (a task migrated while it waited) can be a little
    // ahead of this one's: a wait of 0, as it was short.
    Some(now.saturating_sub(since))
}

#[inline(always)]
fn dequeue(cgroup: Option<u64>, delay: Option<u64>) {
    let (Some(cgroup), Some(delay)) = (cgroup, delay) else {
        return;
    };
    let hist = match RUNQ.get_ptr_mut(&cgroup) {
        Some(h) => h,
        None => {
            let _ = RUNQ.insert(&cgroup, &RunqHist::ZERO, 0);
            match RUNQ.get_ptr_mut(&cgroup) {
                Some(h) => h,
                None => return,
            }
        }
    };
    let b = RunqHist::bucket(delay);
    // SAFETY: this CPU's value; a program run is not interrupted by another run on this CPU.
    unsafe {
        (*hist).count += 1;
        (*hist).sum_ns += delay;
        if let Some(slot) = (*hist).buckets.get_mut(b) {
            *slot += 1;
        }
    }
}

/// `sched_wakeup(struct task_struct *p)` (attached with [`runq_source::STAMPS`] only)
#[btf_tracepoint(function = "sched_wakeup")]
pub fn runq_wakeup(ctx: BtfTracePointContext) -> u32 {
    if conf!(runq_source) == runq_source::STAMPS {
        enqueue(ctx.arg(0));
    }
    0
}

/// `sched_wakeup_new(struct task_struct *p)` (attached with [`runq_source::STAMPS`] only)
#[btf_tracepoint(function = "sched_wakeup_new")]
pub fn runq_wakeup_new(ctx: BtfTracePointContext) -> u32 {
    if conf!(runq_source) == runq_source::STAMPS {
        enqueue(ctx.arg(0));
    }
    0
}

/// `sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
/// unsigned int prev_state)`: `next` leaves the run queue; `prev`, if it was preempted while
/// runnable (`prev_state == TASK_RUNNING`, 0), joins it again (the kernel stamps it itself
/// with [`runq_source::SCHED_INFO`]).
#[btf_tracepoint(function = "sched_switch")]
pub fn runq_switch(ctx: BtfTracePointContext) -> u32 {
    let next: u64 = ctx.arg(2);
    let cgroup = btf_task_cgroup_id(next);
    // Written only with an id: a default for `None` lets LLVM read the id's register on the
    // path where it was never set, which the verifier refuses (`!read_ok`).
    if let (Some(id), Some(current)) = (cgroup, RUNQ_CURRENT.get_ptr_mut(0)) {
        // SAFETY: this CPU's slot; a program run is not interrupted by another on this CPU.
        unsafe { *current = id };
    }
    match conf!(runq_source) {
        runq_source::SCHED_INFO => dequeue(cgroup, queued_wait(next)),
        runq_source::STAMPS => {
            let prev_state: u32 = ctx.arg(3);
            if prev_state == 0 {
                enqueue(ctx.arg(1));
            }
            dequeue(cgroup, stamped_wait(next));
        }
        _ => {}
    }
    0
}
