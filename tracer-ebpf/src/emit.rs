//! Helpers shared by all programs: config access, headers, counters, ring-buffer reservation.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_RING_SIZE},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_buf, bpf_probe_read_kernel_str_bytes,
        generated::bpf_get_current_task_btf,
    },
    maps::ring_buf::RingBufEntry,
    programs::TracePointContext,
    EbpfContext,
};
use tracer_common::{
    counter, flags, kind, kind_bit, EventHeader, MemcgCounter, LAYOUT_VERSION, MEMCG_MAX_DEPTH,
    MEMCG_UNREAD, OFFSET_ABSENT, URGENT_RESERVE_SHIFT,
};

use crate::{CONFIG, COUNTERS, EVENTS, READER, RESERVE_BUDGET};

/// Read one field of `CONFIG` without copying the whole struct to the stack. The volatile read
/// keeps the compiler from folding the default value in: userspace rewrites it at load time.
macro_rules! conf {
    ($($field:ident).+) => {
        {
            #[allow(unused_unsafe)]
            // SAFETY: a plain read of a field of a global.
            let v = unsafe { core::ptr::read_volatile(&raw const $crate::CONFIG.$($field).+) };
            v
        }
    };
}

#[inline(always)]
pub fn enabled(k: u16) -> bool {
    // SAFETY: a plain read of a global.
    let mask = unsafe { core::ptr::read_volatile(&raw const CONFIG.event_mask) };
    mask & kind_bit(k) != 0
}

#[inline(always)]
pub fn count(k: u16, which: u32) {
    let idx = u32::from(k) * counter::STRIDE + which;
    if let Some(c) = COUNTERS.get_ptr_mut(idx) {
        // SAFETY: this CPU's slot; a program run is not preempted by another on the same CPU
        // for the same slot in a way that matters for a statistics counter.
        unsafe { *c += 1 };
    }
}

// The urgent reserve (`tracer_common::URGENT_RESERVE_SHIFT`): records of other kinds are
// refused at its edge. Every refusal is counted as `LOST_RINGBUF_FULL` of its kind, like a full
// ring: for that record the ring *is* full. (Urgent records can still be lost when urgent ones
// alone fill the reserve, e.g. a kill storm; those are counted the same way.)

/// Kinds that may use the reserve whatever the record says.
#[inline(always)]
fn urgent_kind(k: u16) -> bool {
    k == kind::SIGNAL || k == kind::OOM_VICTIM
}

/// A reserved record, with what the ring held before it when the reserve read that.
pub struct Reserved<T: 'static> {
    entry: RingBufEntry<T>,
    /// Bytes waiting in the ring before this record ([`UNREAD`]: the reserve did not look).
    waiting: u64,
}

const UNREAD: u64 = u64::MAX;
/// The record was paid from its CPU's budget: the ring was not looked at, and it was below
/// the wakeup mark when it last was.
const BUDGETED: u64 = u64::MAX - 1;

impl<T: 'static> Reserved<T> {
    #[inline(always)]
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.entry.as_mut_ptr()
    }

    /// Records go out without waking the reader (it polls on a short timer) unless the record
    /// is `urgent`, the reader stopped polling, or the ring is filling up: a wakeup per record
    /// costs several times more.
    #[inline(always)]
    pub fn submit(self, urgent: bool) {
        let wake = urgent
            || READER.get(0).is_some_and(|asleep| *asleep != 0)
            || match self.waiting {
                UNREAD => EVENTS.query(u64::from(BPF_RB_AVAIL_DATA)),
                BUDGETED => 0,
                w => w + record_bytes::<T>(),
            } >= conf!(wakeup_bytes);
        self.entry.submit(u64::from(if wake {
            BPF_RB_FORCE_WAKEUP
        } else {
            BPF_RB_NO_WAKEUP
        }));
    }
}

/// What a record takes in the ring: itself and an 8-byte header (BPF_RINGBUF_HDR_SZ), rounded
/// up to 8.
#[inline(always)]
fn record_bytes<T>() -> u64 {
    (size_of::<T>() as u64 + 8 + 7) & !7
}

/// Reserve a record, counting the attempt and, when the buffer is full, the loss. Records of
/// urgent kinds may use the whole ring, others all but the reserve.
#[inline(always)]
pub fn reserve<T: 'static, C: EbpfContext>(ctx: &C, k: u16) -> Option<Reserved<T>> {
    reserve_as(ctx, k, urgent_kind(k))
}

/// [`reserve`] with the urgency decided by the caller (an exit by a signal is urgent, other
/// exits are not).
#[inline(always)]
pub fn reserve_as<T: 'static, C: EbpfContext>(
    ctx: &C,
    k: u16,
    urgent: bool,
) -> Option<Reserved<T>> {
    count(k, counter::EMIT_ATTEMPT);
    let mut waiting = UNREAD;
    if !urgent {
        let need = record_bytes::<T>();
        let budget = RESERVE_BUDGET.get_ptr_mut(0);
        // SAFETY: this CPU's slot; programs on one CPU do not interleave within a run.
        match budget.map(|b| unsafe { &mut *b }) {
            Some(b) if *b >= need => {
                *b -= need;
                waiting = BUDGETED;
            }
            b => {
                // Read without a lock: the kernel's own reservation is the exact check, this
                // one only keeps the reserve free. The ring's size is a setting (asked only
                // when it is not).
                let size = match conf!(ring_bytes) {
                    0 => EVENTS.query(u64::from(BPF_RB_RING_SIZE)),
                    n => u64::from(n),
                };
                waiting = EVENTS.query(u64::from(BPF_RB_AVAIL_DATA));
                if waiting + need > size - (size >> URGENT_RESERVE_SHIFT) {
                    lost(ctx, k);
                    return None;
                }
                // Below the wakeup mark, the next records of this CPU need not look: its
                // share of the room left below the mark, at most the budget's cap.
                if let Some(b) = b {
                    let mark = conf!(wakeup_bytes);
                    *b = if waiting + need < mark {
                        let share = (mark - waiting - need) / u64::from(conf!(cpus).max(1));
                        share.min(conf!(reserve_budget_max))
                    } else {
                        0
                    };
                }
            }
        }
    }
    match EVENTS.reserve::<T>(0) {
        Some(entry) => Some(Reserved { entry, waiting }),
        None => {
            lost(ctx, k);
            None
        }
    }
}

#[inline(always)]
fn lost<C: EbpfContext>(ctx: &C, k: u16) {
    count(k, counter::LOST_RINGBUF_FULL);
    // Diagnostics for ctrace's developers (`--ebpf-log`); off unless userspace raises
    // AYA_LOG_LEVEL, and only on this already-failing path.
    aya_log_ebpf::warn!(ctx, "ring buffer full: a record of kind {} was lost", k);
}

/// Fill the common header from the current task.
///
/// # Safety
/// `hdr` must point at writable memory for an `EventHeader`.
#[inline(always)]
pub unsafe fn fill_header(hdr: *mut EventHeader, k: u16, size: usize) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let mut fl = 0u8;
    let ppid = match read_ppid() {
        Some(p) => {
            fl |= flags::PPID_VALID;
            p
        }
        None => 0,
    };
    // SAFETY: caller guarantees `hdr` is valid for writes.
    unsafe {
        (*hdr).kind = k;
        (*hdr).version = LAYOUT_VERSION;
        (*hdr).flags = fl;
        (*hdr).size = size as u32;
        (*hdr).boot_ns = bpf_ktime_get_boot_ns();
        (*hdr).pid = pid_tgid as u32;
        (*hdr).tgid = (pid_tgid >> 32) as u32;
        (*hdr).ppid = ppid;
        (*hdr).uid = bpf_get_current_uid_gid() as u32;
        (*hdr).cgroup_id = bpf_get_current_cgroup_id();
        (*hdr).comm = bpf_get_current_comm().unwrap_or([0; 16]);
    }
}

/// [`btf_load`] of the current task's member at `off`. The offset is checked before the task
/// is asked for: without the kernel's BTF `bpf_get_current_task_btf()` cannot be verified, and
/// offsets are then all absent, so the call is never reached.
#[inline(always)]
pub fn current_load<T: Copy>(off: u16) -> Option<T> {
    if off == OFFSET_ABSENT {
        return None;
    }
    // SAFETY: helper without preconditions.
    btf_load(unsafe { bpf_get_current_task_btf() } as u64, off)
}

/// `current->real_parent->tgid`, with offsets from BTF.
#[inline(always)]
fn read_ppid() -> Option<u32> {
    let tgid = conf!(task.tgid);
    if tgid == OFFSET_ABSENT {
        return None;
    }
    let parent: u64 = current_load(conf!(task.real_parent))?;
    btf_load(parent, tgid)
}

/// Read a `T` at `base + off` in kernel memory; `None` (and a counted read error) when the
/// offset is unknown or the read fails.
#[inline(always)]
pub fn read_kernel<T>(base: u64, off: u16, k: u16) -> Option<T> {
    if off == OFFSET_ABSENT || base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel tolerates any address; offsets come from this kernel's BTF.
    match unsafe { bpf_probe_read_kernel((base + u64::from(off)) as *const T) } {
        Ok(v) => Some(v),
        Err(_) => {
            count(k, counter::READ_ERROR);
            None
        }
    }
}

/// Read a `T` at `base + off` of a BTF-typed kernel pointer (a BTF tracepoint's argument, what
/// `bpf_get_current_task_btf()` returns, or a pointer read this way) with a plain load, not a
/// helper call. The verifier checks the access against the kernel's BTF: `off` is a constant
/// to it, as `CONFIG` is a read-only, frozen map, and it comes from that same BTF. The JIT
/// guards the load as a probe read would (a fault reads 0). `None` where the offset is
/// unknown (the branch is then never verified, nor run) or `base` is null.
#[inline(always)]
pub fn btf_load<T: Copy>(base: u64, off: u16) -> Option<T> {
    if off == OFFSET_ABSENT || base == 0 {
        return None;
    }
    // SAFETY: see above: a load the verifier admits only at a member of `base`'s type.
    Some(unsafe { core::ptr::read_volatile((base + u64::from(off)) as *const T) })
}

/// [`task_cgroup_id`] of a BTF-typed task pointer, with plain loads.
#[inline(always)]
pub fn btf_task_cgroup_id(task: u64) -> Option<u64> {
    let css_set: u64 = btf_load(task, conf!(task.cgroups))?;
    let cgroup: u64 = btf_load(css_set, conf!(task.css_set_dfl_cgrp))?;
    let kn: u64 = btf_load(cgroup, conf!(task.cgroup_kn))?;
    btf_load(kn, conf!(task.kernfs_node_id))
}

/// `task->cgroups->dfl_cgrp->kn->id`: the cgroup v2 id, as `bpf_get_current_cgroup_id()`
/// computes it for the current task (kernel/bpf/helpers.c).
#[inline(always)]
pub fn task_cgroup_id(task: u64) -> Option<u64> {
    let read_ptr = |base: u64, off: u16| -> Option<u64> {
        if off == OFFSET_ABSENT || base == 0 {
            return None;
        }
        // SAFETY: as in `read_kernel`.
        unsafe { bpf_probe_read_kernel((base + u64::from(off)) as *const u64) }.ok()
    };
    let css_set = read_ptr(task, conf!(task.cgroups))?;
    let cgroup = read_ptr(css_set, conf!(task.css_set_dfl_cgrp))?;
    let kn = read_ptr(cgroup, conf!(task.cgroup_kn))?;
    read_ptr(kn, conf!(task.kernfs_node_id))
}

/// The memory counter with the lowest limit from the task's memory cgroup up to the root
/// (nearest on ties), and how many levels up it is: the limit that bounds the task. `None`
/// where the offsets are unknown or a read fails (counted as a read error of kind `k`).
#[inline(always)]
pub fn task_memcg(task: u64, k: u16) -> Option<(u32, MemcgCounter)> {
    if !conf!(task).memcg_complete() {
        return None;
    }
    let css_set: u64 = read_kernel(task, conf!(task.cgroups), k)?;
    let css: u64 = read_kernel(css_set, conf!(task.css_set_memcg), k)?;
    if css == 0 {
        return None; // memory controller disabled
    }
    let mut counter = css + u64::from(conf!(task.memcg_memory));
    let mut best = counter;
    let mut best_max = u64::MAX;
    let mut best_depth = 0;
    let mut depth = 0;
    while depth < MEMCG_MAX_DEPTH {
        let max: u64 = read_kernel(counter, conf!(task.pc_max), k)?;
        if max < best_max {
            best = counter;
            best_max = max;
            best_depth = depth;
        }
        let parent: u64 = read_kernel(counter, conf!(task.pc_parent), k)?;
        if parent == 0 {
            break;
        }
        counter = parent;
        depth += 1;
    }
    Some((
        best_depth,
        MemcgCounter {
            usage_pages: read_kernel(best, conf!(task.pc_usage), k)?,
            max_pages: best_max,
            watermark_pages: read_kernel(best, conf!(task.pc_watermark), k)?,
            failcnt: read_kernel(best, conf!(task.pc_failcnt), k)?,
        },
    ))
}

/// The counter of memory cgroup `memcg` (a `struct mem_cgroup *`, whose `css` is its first
/// member), and how many levels above the task's own memory cgroup it is (`MEMCG_UNREAD` when
/// it is not among the task's first `MEMCG_MAX_DEPTH` ancestors).
#[inline(always)]
pub fn memcg_at(task: u64, memcg: u64, k: u16) -> Option<(u32, MemcgCounter)> {
    if !conf!(task).memcg_complete() {
        return None;
    }
    let target = memcg + u64::from(conf!(task.memcg_memory));
    let css_set: u64 = read_kernel(task, conf!(task.cgroups), k)?;
    let css: u64 = read_kernel(css_set, conf!(task.css_set_memcg), k)?;
    let mut depth = MEMCG_UNREAD;
    if css != 0 {
        let mut counter = css + u64::from(conf!(task.memcg_memory));
        let mut d = 0;
        while d < MEMCG_MAX_DEPTH {
            if counter == target {
                depth = d;
                break;
            }
            counter = read_kernel(counter, conf!(task.pc_parent), k)?;
            if counter == 0 {
                break;
            }
            d += 1;
        }
    }
    Some((
        depth,
        MemcgCounter {
            usage_pages: read_kernel(target, conf!(task.pc_usage), k)?,
            max_pages: read_kernel(target, conf!(task.pc_max), k)?,
            watermark_pages: read_kernel(target, conf!(task.pc_watermark), k)?,
            failcnt: read_kernel(target, conf!(task.pc_failcnt), k)?,
        },
    ))
}

#[inline(always)]
pub fn read_ctx_u32(ctx: &TracePointContext, off: u16, k: u16) -> u32 {
    if off == OFFSET_ABSENT {
        return 0;
    }
    // SAFETY: offset read from this kernel's tracefs format file.
    match unsafe { ctx.read_at::<u32>(usize::from(off)) } {
        Ok(v) => v,
        Err(e) => {
            count(k, counter::READ_ERROR);
            aya_log_ebpf::debug!(
                ctx,
                "kind {}: reading field at offset {} failed: {}",
                k,
                off,
                e
            );
            0
        }
    }
}

#[inline(always)]
pub fn read_ctx_u64(ctx: &TracePointContext, off: u16, k: u16) -> u64 {
    if off == OFFSET_ABSENT {
        return 0;
    }
    // SAFETY: offset read from this kernel's tracefs format file.
    match unsafe { ctx.read_at::<u64>(usize::from(off)) } {
        Ok(v) => v,
        Err(e) => {
            count(k, counter::READ_ERROR);
            aya_log_ebpf::debug!(
                ctx,
                "kind {}: reading field at offset {} failed: {}",
                k,
                off,
                e
            );
            0
        }
    }
}

/// Copy a fixed-size `char[16]` field (a comm) into `dst`.
#[inline(always)]
pub fn read_comm_at(ctx: &TracePointContext, off: u16, dst: &mut [u8; 16], k: u16) {
    if off == OFFSET_ABSENT {
        *dst = [0; 16];
        return;
    }
    let src = (ctx.as_ptr_u64() + u64::from(off)) as *const u8;
    // SAFETY: probe-read of the tracepoint record at an offset from its format file.
    if unsafe { bpf_probe_read_kernel_buf(src, dst) }.is_err() {
        count(k, counter::READ_ERROR);
        *dst = [0; 16];
    }
}

/// Copy a `__data_loc char[]` field (u32: length << 16 | offset from the record start) into
/// `dst`, NUL-terminated. Returns the string length without the NUL.
#[inline(always)]
pub fn read_data_loc_str(ctx: &TracePointContext, off: u16, dst: &mut [u8], k: u16) -> u32 {
    if off == OFFSET_ABSENT {
        if let Some(b) = dst.first_mut() {
            *b = 0;
        }
        return 0;
    }
    let loc = read_ctx_u32(ctx, off, k);
    let str_off = u64::from(loc & 0xffff);
    read_kernel_str(ctx.as_ptr_u64() + str_off, dst, k)
}

/// Copy the NUL-terminated kernel string at `src` into `dst`, NUL-terminated. Returns its
/// length without the NUL; 0 (and a counted read error of kind `k`) when it cannot be read.
#[inline(always)]
pub fn read_kernel_str(src: u64, dst: &mut [u8], k: u16) -> u32 {
    // SAFETY: the helper tolerates any address and bounds the copy by `dst`.
    match unsafe { bpf_probe_read_kernel_str_bytes(src as *const u8, dst) } {
        Ok(s) => s.len() as u32,
        Err(_) => {
            count(k, counter::READ_ERROR);
            if let Some(b) = dst.first_mut() {
                *b = 0;
            }
            0
        }
    }
}

trait CtxPtr {
    fn as_ptr_u64(&self) -> u64;
}

impl CtxPtr for TracePointContext {
    #[inline(always)]
    fn as_ptr_u64(&self) -> u64 {
        use aya_ebpf::EbpfContext as _;
        self.as_ptr() as u64
    }
}
