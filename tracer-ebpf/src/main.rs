//! ctrace's kernel side: thin programs on classic tracepoints that copy raw facts into one ring
//! buffer. Userspace does all enrichment (container names, explanations).
//!
//! Tracepoint field offsets and kernel struct member offsets are not compiled in: userspace reads
//! them from tracefs `format` files and from the kernel's BTF and hands them over in `CONFIG`.
#![no_std]
#![no_main]

#[macro_use]
mod emit;
mod runq;

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_boot_ns},
    macros::{btf_tracepoint, fentry, fexit, kprobe, kretprobe, map, tracepoint},
    maps::{Array, LruHashMap, LruPerCpuHashMap, PerCpuArray, RingBuf},
    programs::{
        BtfTracePointContext, FEntryContext, FExitContext, ProbeContext, RetProbeContext,
        TracePointContext,
    },
    EbpfContext,
};
use emit::{count, enabled, fill_header, read_comm_at, read_data_loc_str};
use tracer_common::{
    cap_allowed, cap_counter, counter, exit_flags, kind, oom_context, signal_flags, CapKey,
    CapState, CapabilityEvent, CgroupEvent, Config, ExecEvent, ExitEvent, ForkEvent, MemcgCounter,
    OomVictimEvent, OomVictimTask, SigKey, SigRun, SignalEvent, MEMCG_HOST, MEMCG_UNREAD,
    OFFSET_ABSENT,
};

/// Settings and offsets; written by userspace before load (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
static CONFIG: Config = Config::DEFAULT;

/// All records. Size set by userspace at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// One slot, set by userspace while it does not poll the ring (nothing came for a while):
/// then every record wakes it, instead of waiting for a poll that is not coming.
#[map]
static READER: Array<u32> = Array::with_max_entries(1, 0);

/// Bytes each CPU may still reserve for ordinary records before it looks at how full the
/// ring is again (`emit::reserve_as`, `tracer_common::reserve_budget_max`).
#[map]
static RESERVE_BUDGET: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU counters, `kind * counter::STRIDE + counter::*`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::LEN, 0);

/// Capability-check de-duplication state, per CPU so that updates need no atomics.
#[map]
static CAP_DEDUP: LruPerCpuHashMap<CapKey, CapState> = LruPerCpuHashMap::with_max_entries(16384, 0);

/// Cgroups userspace placed on the host (`cap_allowed::NOT_HOST`): their allowed capability
/// checks are dropped before the fold. An LRU, so that a host with churning cgroups cannot fill
/// it; an evicted cgroup is marked again after its next reported check.
#[map]
static CAP_HOST: LruHashMap<u64, u8> = LruHashMap::with_max_entries(4096, 0);

/// Per-CPU counts of capability checks (`cap_counter::*`): what userspace balances its reported
/// counts against, so that checks in slots the LRU evicted before they were reported are
/// named, not silently missing.
#[map]
static CAP_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(cap_counter::LEN, 0);

/// The run of identical signals each CPU is counting (one slot, per CPU: no atomics).
#[map]
static SIG_FOLD: PerCpuArray<SigRun> = PerCpuArray::with_max_entries(1, 0);

#[tracepoint]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    if !enabled(kind::EXEC) {
        return 0;
    }
    let Some(mut entry) = emit::reserve::<ExecEvent, _>(&ctx, kind::EXEC) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at reserved ring-buffer memory of the right size; every field
    // userspace reads is written below.
    unsafe {
        fill_header(&raw mut (*ev).hdr, kind::EXEC, size_of::<ExecEvent>());
        (*ev).old_pid = emit::read_ctx_u32(&ctx, conf!(tp.exec_old_pid), kind::EXEC);
        (*ev).filename_len = read_data_loc_str(
            &ctx,
            conf!(tp.exec_filename),
            &mut (*ev).filename,
            kind::EXEC,
        );
    }
    entry.submit(false);
    0
}

#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    if !enabled(kind::EXIT) {
        return 0;
    }
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    let is_leader = pid_tgid as u32 == (pid_tgid >> 32) as u32;
    let mut flags = 0;
    let group_dead_off = conf!(tp.exit_group_dead);
    if group_dead_off != OFFSET_ABSENT {
        // SAFETY: offset read from this kernel's tracefs format file.
        let group_dead: u8 = unsafe { ctx.read_at(group_dead_off as usize) }.unwrap_or(0);
        if group_dead != 0 {
            flags |= exit_flags::GROUP_DEAD;
        }
    } else {
        // Older kernels' tracepoint has no such field (6.1 and 6.12 do not): userspace is
        // told it is unknown rather than false.
        flags |= exit_flags::GROUP_DEAD_UNKNOWN;
    }
    if !is_leader && flags & exit_flags::GROUP_DEAD == 0 && conf!(exit_all_threads) == 0 {
        return 0;
    }
    // do_exit() stores the wait status in task->exit_code before this tracepoint fires:
    // https://elixir.bootlin.com/linux/v6.12/source/kernel/exit.c#L916
    let mut exit_code = 0u32;
    let off = conf!(task.exit_code);
    if off != OFFSET_ABSENT {
        match emit::current_load::<u32>(off) {
            Some(c) => {
                exit_code = c;
                flags |= exit_flags::CODE_VALID;
            }
            None => count(kind::EXIT, counter::READ_ERROR),
        }
    }
    // A death by a signal (low 7 bits of the wait status) ends kill and OOM incidents: urgent.
    let urgent = flags & exit_flags::CODE_VALID != 0 && exit_code & 0x7f != 0;
    let Some(mut entry) = emit::reserve_as::<ExitEvent, _>(&ctx, kind::EXIT, urgent) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, kind::EXIT, size_of::<ExitEvent>());
        (*ev).exit_code = exit_code;
        (*ev).flags = flags;
    }
    entry.submit(false);
    0
}

#[tracepoint]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    if !enabled(kind::FORK) {
        return 0;
    }
    let Some(mut entry) = emit::reserve::<ForkEvent, _>(&ctx, kind::FORK) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, kind::FORK, size_of::<ForkEvent>());
        (*ev).child_pid = emit::read_ctx_u32(&ctx, conf!(tp.fork_child_pid), kind::FORK);
        (*ev)._pad = 0;
        (*ev).child_comm = [0; 16];
        // A `__string` (data_loc) since the comm fields became variable-length; a fixed
        // `char[16]` on older kernels. Userspace sets the offset of the one this kernel has.
        let array = conf!(tp.fork_child_comm_array);
        if array != OFFSET_ABSENT {
            read_comm_at(&ctx, array, &mut (*ev).child_comm, kind::FORK);
        } else {
            read_data_loc_str(
                &ctx,
                conf!(tp.fork_child_comm),
                &mut (*ev).child_comm,
                kind::FORK,
            );
        }
    }
    entry.submit(false);
    0
}

/// Indexes of `old_pid` and `bprm` in the `sched_process_exec(p, old_pid, bprm)` tracepoint's
/// arguments. Userspace checks the prototype in the kernel's BTF before attaching.
const EXEC_TP_OLD_PID_ARG: usize = 1;
const EXEC_TP_BPRM_ARG: usize = 2;

/// BTF-typed `sched_process_exec`: the same record as [`sched_process_exec`], the file name read
/// from `bprm->filename`. Preferred where it loads: the classic tracepoint first copies the
/// file name into its record, which the program then copies again.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec_btf(ctx: BtfTracePointContext) -> u32 {
    if !enabled(kind::EXEC) {
        return 0;
    }
    let old_pid: i32 = ctx.arg(EXEC_TP_OLD_PID_ARG);
    let bprm: u64 = ctx.arg(EXEC_TP_BPRM_ARG);
    let Some(mut entry) = emit::reserve::<ExecEvent, _>(&ctx, kind::EXEC) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size; every field userspace reads is
    // written below.
    unsafe {
        fill_header(&raw mut (*ev).hdr, kind::EXEC, size_of::<ExecEvent>());
        (*ev).old_pid = old_pid as u32;
        (*ev).filename_len = match emit::btf_load::<u64>(bprm, conf!(task.bprm_filename)) {
            Some(name) => emit::read_kernel_str(name, &mut (*ev).filename, kind::EXEC),
            None => {
                count(kind::EXEC, counter::READ_ERROR);
                (*ev).filename[0] = 0;
                0
            }
        };
    }
    entry.submit(false);
    0
}

/// Index of the child in the `sched_process_fork(parent, child)` tracepoint's arguments.
/// Userspace checks the prototype in the kernel's BTF before attaching.
const FORK_TP_CHILD_ARG: usize = 1;

/// BTF-typed `sched_process_fork`: the same record as [`sched_process_fork`], the child's pid
/// and comm read from the child task with plain loads. Preferred where it loads: the classic
/// tracepoint first copies both comms into its record, which the program then reads back with
/// two helper calls.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork_btf(ctx: BtfTracePointContext) -> u32 {
    if !enabled(kind::FORK) {
        return 0;
    }
    let child: u64 = ctx.arg(FORK_TP_CHILD_ARG);
    let Some(mut entry) = emit::reserve::<ForkEvent, _>(&ctx, kind::FORK) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, kind::FORK, size_of::<ForkEvent>());
        (*ev).child_pid = emit::btf_load::<u32>(child, conf!(task.pid)).unwrap_or(0);
        (*ev)._pad = 0;
        (*ev).child_comm = emit::btf_load::<[u8; 16]>(child, conf!(task.comm)).unwrap_or([0; 16]);
    }
    entry.submit(false);
    0
}

/// Whether `sig` is among the signals userspace asked for.
#[inline(always)]
fn signal_wanted(sig: u32) -> bool {
    // Bit `sig` of the 64-bit mask; SIGRTMAX (64) has bit 0, as 0 is no signal.
    let (mask, bit) = if sig == 64 {
        (conf!(signal_mask_lo), 0)
    } else if sig < 32 {
        (conf!(signal_mask_lo), sig)
    } else if sig < 64 {
        (conf!(signal_mask_hi), sig - 32)
    } else {
        return false;
    };
    mask & (1 << bit) != 0
}

/// Classic `signal:signal_generate`: used when the BTF-typed program cannot be (no usable
/// kernel BTF). Knows the target's pid and comm only.
#[tracepoint]
pub fn signal_generate(ctx: TracePointContext) -> u32 {
    if !enabled(kind::SIGNAL) {
        return 0;
    }
    let sig = emit::read_ctx_u32(&ctx, conf!(tp.sig_sig), kind::SIGNAL);
    if !signal_wanted(sig) {
        count(kind::SIGNAL, counter::FILTERED);
        return 0;
    }
    let Some(mut entry) = emit::reserve::<SignalEvent, _>(&ctx, kind::SIGNAL) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, kind::SIGNAL, size_of::<SignalEvent>());
        (*ev).sig = sig as i32;
        (*ev).errno = emit::read_ctx_u32(&ctx, conf!(tp.sig_errno), kind::SIGNAL) as i32;
        (*ev).code = emit::read_ctx_u32(&ctx, conf!(tp.sig_code), kind::SIGNAL) as i32;
        (*ev).target_pid = emit::read_ctx_u32(&ctx, conf!(tp.sig_pid), kind::SIGNAL);
        (*ev).group = emit::read_ctx_u32(&ctx, conf!(tp.sig_group), kind::SIGNAL) as i32;
        (*ev).result = emit::read_ctx_u32(&ctx, conf!(tp.sig_result), kind::SIGNAL) as i32;
        read_comm_at(
            &ctx,
            conf!(tp.sig_comm),
            &mut (*ev).target_comm,
            kind::SIGNAL,
        );
        (*ev).target_tgid = 0;
        (*ev).flags = 0;
        (*ev).target_cgroup_id = 0;
        write_fold(ev, &Fold::default());
    }
    // A SIGKILL is what ends containers: get it to userspace without waiting for the timer.
    entry.submit(sig == 9);
    0
}

/// `SEND_SIG_NOINFO` and `SEND_SIG_PRIV` are not pointers but markers
/// (include/linux/sched/signal.h); the classic tracepoint maps them to these codes.
const SEND_SIG_NOINFO: u64 = 0;
const SEND_SIG_PRIV: u64 = 1;
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;

/// BTF-typed `signal_generate(int sig, struct kernel_siginfo *info, struct task_struct *task,
/// int group, int result)`: the target task itself is at hand, so its process and cgroup are
/// recorded at the moment of the signal, before a SIGKILL makes them unreadable.
#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate_btf(ctx: BtfTracePointContext) -> u32 {
    if !enabled(kind::SIGNAL) {
        return 0;
    }
    let sig: i32 = ctx.arg(0);
    if !signal_wanted(sig as u32) {
        count(kind::SIGNAL, counter::FILTERED);
        return 0;
    }
    let info: u64 = ctx.arg(1);
    let task: u64 = ctx.arg(2);
    let group: i32 = ctx.arg(3);
    let result: i32 = ctx.arg(4);
    let (code, errno) = match info {
        SEND_SIG_NOINFO => (SI_USER, 0),
        SEND_SIG_PRIV => (SI_KERNEL, 0),
        // The verifier takes `info` for a number (it may be one of those markers): probe
        // reads. `task` is a BTF-typed pointer: plain loads (`emit::btf_load`).
        p => (
            emit::read_kernel::<i32>(p, conf!(task.siginfo_code), kind::SIGNAL).unwrap_or(0),
            emit::read_kernel::<i32>(p, conf!(task.siginfo_errno), kind::SIGNAL).unwrap_or(0),
        ),
    };
    let k = kind::SIGNAL;
    let target_pid = emit::btf_load::<u32>(task, conf!(task.pid)).unwrap_or(0);
    let key = SigKey {
        sender_pid: aya_ebpf::helpers::bpf_get_current_pid_tgid() as u32,
        target_pid,
        sig,
        code,
        errno,
        group,
        result,
        _pad: 0,
    };
    let Some(fold) = sig_fold(&key) else {
        count(k, counter::FILTERED);
        return 0;
    };
    let Some(mut entry) = emit::reserve::<SignalEvent, _>(&ctx, k) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, k, size_of::<SignalEvent>());
        (*ev).sig = sig;
        (*ev).errno = errno;
        (*ev).code = code;
        (*ev).group = group;
        (*ev).result = result;
        (*ev).target_pid = target_pid;
        (*ev).target_tgid = emit::btf_load::<u32>(task, conf!(task.tgid)).unwrap_or(0);
        (*ev).target_comm =
            emit::read_kernel::<[u8; 16]>(task, conf!(task.comm), k).unwrap_or([0; 16]);
        match emit::btf_task_cgroup_id(task) {
            Some(id) => {
                (*ev).target_cgroup_id = id;
                (*ev).flags = signal_flags::TARGET_TASK;
            }
            None => {
                count(k, counter::READ_ERROR);
                (*ev).target_cgroup_id = 0;
                (*ev).flags = 0;
            }
        }
        write_fold(ev, &fold);
    }
    entry.submit(sig == 9);
    0
}

/// What a signal record says of the fold (all 0: not folded).
#[derive(Default)]
struct Fold {
    run: u32,
    cpu: u32,
    total: u64,
    prev_run: u32,
    prev_total: u64,
    prev_last_ns: u64,
}

/// Writes what a signal record says of the fold.
///
/// # Safety
/// `ev` must point at writable memory for a `SignalEvent`.
#[inline(always)]
unsafe fn write_fold(ev: *mut SignalEvent, f: &Fold) {
    // SAFETY: caller guarantees `ev` is valid for writes.
    unsafe {
        (*ev).run = f.run;
        (*ev).cpu = f.cpu;
        (*ev).total = f.total;
        (*ev).prev_run = f.prev_run;
        (*ev)._pad = 0;
        (*ev).prev_total = f.prev_total;
        (*ev).prev_last_ns = f.prev_last_ns;
    }
}

/// The fold of a signal with `key` (see [`SigRun`]): `None` when it is counted in its CPU's
/// run and needs no record, else what its record says of the fold.
#[inline(always)]
fn sig_fold(key: &SigKey) -> Option<Fold> {
    let window = conf!(signal_window_ns);
    // Only signals that change nothing are folded (ignored, or already pending); a SIGKILL
    // never is: every record that may be a kill stays one.
    if window == 0 || !(key.result == 1 || key.result == 2) || key.sig == 9 {
        return Some(Fold::default());
    }
    let Some(st) = SIG_FOLD.get_ptr_mut(0) else {
        return Some(Fold::default());
    };
    // SAFETY: helpers without preconditions.
    let (now, cpu) = unsafe { (bpf_ktime_get_boot_ns(), bpf_get_smp_processor_id()) };
    // SAFETY: this CPU's slot; programs are not preempted mid-run, and the same program does
    // not nest on a CPU. Userspace reads the slot meanwhile: `run` is 0 while a new run is
    // written, so it never takes the old total for the new run's.
    unsafe {
        let run = (*st).run;
        if run != 0 && (*st).key == *key {
            (*st).total += 1;
            (*st).last_ns = now;
            if now.wrapping_sub((*st).last_emit_ns) < window {
                return None;
            }
            (*st).last_emit_ns = now;
            return Some(Fold {
                run,
                cpu,
                total: (*st).total,
                ..Fold::default()
            });
        }
        let fold = Fold {
            run: if run == u32::MAX { 1 } else { run + 1 },
            cpu,
            total: 1,
            prev_run: run,
            prev_total: (*st).total,
            prev_last_ns: (*st).last_ns,
        };
        core::ptr::write_volatile(&raw mut (*st).run, 0);
        (*st).key = *key;
        (*st).total = 1;
        (*st).last_ns = now;
        (*st).last_emit_ns = now;
        core::ptr::write_volatile(&raw mut (*st).run, fold.run);
        Some(fold)
    }
}

/// OOM victims' process and cgroup by thread id, written by `mark_victim_btf`.
#[map]
static OOM_VICTIMS: LruHashMap<u32, OomVictimTask> = LruHashMap::with_max_entries(1024, 0);

/// BTF-typed `mark_victim(struct task_struct *task, uid_t uid)` (kernels whose tracepoint passes
/// the task; userspace attaches it only there): the victim's process and cgroup, read from the
/// task while it exists, for the classic record of the same moment.
#[btf_tracepoint(function = "mark_victim")]
pub fn mark_victim_btf(ctx: BtfTracePointContext) -> u32 {
    if !enabled(kind::OOM_VICTIM) {
        return 0;
    }
    let task: u64 = ctx.arg(0);
    let k = kind::OOM_VICTIM;
    // read_kernel counts its own failures.
    let Some(pid) = emit::read_kernel::<u32>(task, conf!(task.pid), k) else {
        return 0;
    };
    let Some(tgid) = emit::read_kernel::<u32>(task, conf!(task.tgid), k) else {
        return 0;
    };
    let Some(cgroup_id) = emit::task_cgroup_id(task) else {
        count(k, counter::READ_ERROR);
        return 0;
    };
    // The figures of the limit that was hit, as they are at the OOM: by the time userspace
    // reads the cgroup's files the victim's memory is freed, or the cgroup is gone.
    let (memcg_depth, memcg) =
        emit::task_memcg(task, k).unwrap_or((MEMCG_UNREAD, MemcgCounter::default()));
    let v = OomVictimTask {
        tgid,
        memcg_depth,
        cgroup_id,
        // SAFETY: a helper without arguments or preconditions.
        boot_ns: unsafe { bpf_ktime_get_boot_ns() },
        memcg,
        context_flags: 0,
        order: 0,
        constraint: 0,
        oom_score_adj: 0,
        chosen_points: 0,
        memcg_cgroup_id: 0,
    };
    if OOM_VICTIMS.insert(&pid, &v, 0).is_err() {
        count(k, counter::READ_ERROR);
    }
    0
}

#[tracepoint]
pub fn mark_victim(ctx: TracePointContext) -> u32 {
    if !enabled(kind::OOM_VICTIM) {
        return 0;
    }
    let Some(mut entry) = emit::reserve::<OomVictimEvent, _>(&ctx, kind::OOM_VICTIM) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    let k = kind::OOM_VICTIM;
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, k, size_of::<OomVictimEvent>());
        (*ev).victim_pid = emit::read_ctx_u32(&ctx, conf!(tp.oom_pid), k);
        (*ev).victim_uid = emit::read_ctx_u32(&ctx, conf!(tp.oom_uid), k);
        (*ev).total_vm_kb = emit::read_ctx_u64(&ctx, conf!(tp.oom_total_vm), k);
        (*ev).anon_rss_kb = emit::read_ctx_u64(&ctx, conf!(tp.oom_anon_rss), k);
        (*ev).file_rss_kb = emit::read_ctx_u64(&ctx, conf!(tp.oom_file_rss), k);
        (*ev).shmem_rss_kb = emit::read_ctx_u64(&ctx, conf!(tp.oom_shmem_rss), k);
        (*ev).pgtables_kb = emit::read_ctx_u64(&ctx, conf!(tp.oom_pgtables), k);
        (*ev).oom_score_adj = emit::read_ctx_u32(&ctx, conf!(tp.oom_score_adj), k) as u16 as i16;
        (*ev)._pad = [0; 6];
        (*ev).victim_comm = [0; 16];
        read_data_loc_str(&ctx, conf!(tp.oom_comm), &mut (*ev).victim_comm, k);
    }
    entry.submit(true);
    0
}

/// The OOM killer's own context, read as it picks up its victim: `oom_kill_process(struct
/// oom_control *oc, const char *message)` (mm/oom_kill.c) runs before `mark_victim`, with
/// `oc->memcg` the memory cgroup whose limit was hit (NULL: the host ran out) and `oc->chosen`
/// the victim. Fills `OOM_VICTIMS` as `mark_victim_btf` would, with the limit that was hit
/// rather than the lowest one above the victim.
fn read_oom_context(oc: u64) {
    let k = kind::OOM_VICTIM;
    if !enabled(k) {
        return;
    }
    let Some(task) = emit::read_kernel::<u64>(oc, conf!(task.oc_chosen), k) else {
        return;
    };
    let Some(memcg_ptr) = emit::read_kernel::<u64>(oc, conf!(task.oc_memcg), k) else {
        return;
    };
    let (Some(pid), Some(tgid)) = (
        emit::read_kernel::<u32>(task, conf!(task.pid), k),
        emit::read_kernel::<u32>(task, conf!(task.tgid), k),
    ) else {
        return;
    };
    let Some(cgroup_id) = emit::task_cgroup_id(task) else {
        count(k, counter::READ_ERROR);
        return;
    };
    let (memcg_depth, memcg) = if memcg_ptr == 0 {
        (MEMCG_HOST, MemcgCounter::default())
    } else {
        emit::memcg_at(task, memcg_ptr, k).unwrap_or((MEMCG_UNREAD, MemcgCounter::default()))
    };
    let mut flags = oom_context::READ;
    // The cgroup whose limit was hit, by the id userspace knows cgroups by: the memcg's
    // `css.cgroup->kn->id` (`css` is `struct mem_cgroup`'s first member).
    let memcg_cgroup_id = if memcg_ptr == 0 {
        0
    } else {
        emit::read_kernel::<u64>(memcg_ptr, conf!(task.css_cgroup), k)
            .and_then(|cgrp| emit::read_kernel::<u64>(cgrp, conf!(task.cgroup_kn), k))
            .and_then(|kn| emit::read_kernel::<u64>(kn, conf!(task.kernfs_node_id), k))
            .inspect(|_| flags |= oom_context::MEMCG_ID)
            .unwrap_or(0)
    };
    let chosen_points = emit::read_kernel::<i64>(oc, conf!(task.oc_chosen_points), k)
        .inspect(|_| flags |= oom_context::POINTS)
        .unwrap_or(0);
    let oom_score_adj = emit::read_kernel::<u64>(task, conf!(task.task_signal), k)
        .and_then(|sig| emit::read_kernel::<i16>(sig, conf!(task.signal_oom_score_adj), k))
        .inspect(|_| flags |= oom_context::SCORE_ADJ)
        .map_or(0, i32::from);
    let (order, constraint) = match (
        emit::read_kernel::<i32>(oc, conf!(task.oc_order), k),
        emit::read_kernel::<u32>(oc, conf!(task.oc_constraint), k),
    ) {
        (Some(o), Some(c)) => {
            flags |= oom_context::TRIGGER;
            (o, c)
        }
        _ => (0, 0),
    };
    let v = OomVictimTask {
        tgid,
        memcg_depth,
        cgroup_id,
        // SAFETY: a helper without arguments or preconditions.
        boot_ns: unsafe { bpf_ktime_get_boot_ns() },
        memcg,
        context_flags: flags,
        order,
        constraint,
        oom_score_adj,
        chosen_points,
        memcg_cgroup_id,
    };
    if OOM_VICTIMS.insert(&pid, &v, 0).is_err() {
        count(k, counter::READ_ERROR);
    }
}

#[fentry(function = "oom_kill_process")]
pub fn oom_kill_process_fentry(ctx: FEntryContext) -> u32 {
    read_oom_context(ctx.arg(0));
    0
}

/// The same where fentry is refused.
#[kprobe]
pub fn oom_kill_process_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(oc) = ctx.arg::<u64>(0) {
        read_oom_context(oc);
    }
    0
}

/// Classic `capability:cap_capable` (6.13+): the check and its verdict in one record.
#[tracepoint]
pub fn cap_capable(ctx: TracePointContext) -> u32 {
    let k = kind::CAPABILITY;
    if !enabled(k) {
        return 0;
    }
    let (cap_off, ret_off) = (conf!(tp.cap_cap), conf!(tp.cap_ret));
    // Side by side (as in every format so far): one read of both instead of two (little
    // endian: `cap` is the low half).
    let (cap, ret) = if cap_off != OFFSET_ABSENT && ret_off == cap_off + 4 {
        let both = emit::read_ctx_u64(&ctx, cap_off, k);
        (both as u32, (both >> 32) as u32 as i32)
    } else {
        (
            emit::read_ctx_u32(&ctx, cap_off, k),
            emit::read_ctx_u32(&ctx, ret_off, k) as i32,
        )
    };
    cap_fold(&ctx, cap, ret);
    0
}

/// Where `cap` and `ret` are among the `cap_capable` tracepoint's arguments: `TP_PROTO(const
/// struct cred *cred, struct user_namespace *target_ns, const struct user_namespace
/// *capable_ns, int cap, int ret)` (6.13+). Userspace checks the prototype in the kernel's BTF
/// before it attaches [`cap_capable_btf`].
const CAP_TP_CAP_ARG: usize = 3;
const CAP_TP_RET_ARG: usize = 4;

/// BTF-typed `cap_capable` tracepoint: the same check as [`cap_capable`], its arguments read as
/// arguments. Preferred where it loads: the classic program's record is first copied out by the
/// tracepoint, then read back with a helper call, on every check (eight per fork+exec).
#[btf_tracepoint(function = "cap_capable")]
pub fn cap_capable_btf(ctx: BtfTracePointContext) -> u32 {
    let k = kind::CAPABILITY;
    if !enabled(k) {
        return 0;
    }
    let cap: u64 = ctx.arg(CAP_TP_CAP_ARG);
    let ret: u64 = ctx.arg(CAP_TP_RET_ARG);
    cap_fold(&ctx, cap as u32, ret as u32 as i32);
    0
}

/// Index of the `cap` argument of `cap_capable()`. Userspace checks it against the running
/// kernel's BTF prototype before attaching (`probe::cap_arg_index`): the verifier admits
/// context reads at constant offsets only, so it cannot be a setting.
const CAP_ARG: usize = 2;

/// `fexit` on `int cap_capable(const struct cred *cred, struct user_namespace *targ_ns, int cap,
/// unsigned int opts)` (security/commoncap.c), for kernels without the tracepoint: the
/// arguments and the verdict (0 or -EPERM) are both at hand when it returns.
#[fexit(function = "cap_capable")]
pub fn cap_capable_fexit(ctx: FExitContext) -> u32 {
    let k = kind::CAPABILITY;
    if !enabled(k) {
        return 0;
    }
    let cap: i32 = ctx.arg(CAP_ARG);
    let Ok(ret) = ctx.ret::<i32>() else {
        count(k, counter::READ_ERROR);
        return 0;
    };
    cap_fold(&ctx, cap as u32, ret);
    0
}

/// `cap` of the `cap_capable()` call in flight, per thread, from the kprobe to the kretprobe
/// (which sees only the return value). `cap_capable()` does not nest within a thread.
#[map]
static CAP_IN_FLIGHT: LruHashMap<u64, u32> = LruHashMap::with_max_entries(4096, 0);

/// kprobe on `cap_capable()` where fexit is refused: remembers the capability asked for.
#[kprobe]
pub fn cap_capable_kprobe(ctx: ProbeContext) -> u32 {
    let k = kind::CAPABILITY;
    if !enabled(k) {
        return 0;
    }
    let Some(cap) = ctx.arg::<i32>(CAP_ARG) else {
        count(k, counter::READ_ERROR);
        return 0;
    };
    let id = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    if CAP_IN_FLIGHT.insert(&id, &(cap as u32), 0).is_err() {
        count(k, counter::READ_ERROR);
    }
    0
}

/// kretprobe on `cap_capable()`: the verdict, folded with the capability the kprobe saw.
#[kretprobe]
pub fn cap_capable_kretprobe(ctx: RetProbeContext) -> u32 {
    let k = kind::CAPABILITY;
    let id = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    // SAFETY: the value is copied out before the entry is removed.
    let Some(cap) = (unsafe { CAP_IN_FLIGHT.get(&id) }).copied() else {
        return 0;
    };
    let _ = CAP_IN_FLIGHT.remove(&id);
    if !enabled(k) {
        return 0;
    }
    let ret: i32 = ctx.ret();
    cap_fold(&ctx, cap, ret);
    0
}

/// One capability check, whichever hook saw it: filtered (allowed checks unless asked for,
/// ctrace's own), folded per (cgroup, process, capability, verdict) in `CAP_DEDUP`, and
/// emitted at most once per window with the running count.
#[inline(always)]
fn cap_fold<C: EbpfContext>(ctx: &C, cap: u32, ret: i32) {
    let k = kind::CAPABILITY;
    let allowed = conf!(cap_allowed);
    if ret == 0 && allowed == cap_allowed::NONE {
        count(k, counter::FILTERED);
        return;
    }
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    // ctrace's own checks (its map reads ask for CAP_BPF and CAP_PERFMON): not reported.
    let self_tgid = conf!(self_tgid);
    if self_tgid != 0 && (pid_tgid >> 32) as u32 == self_tgid {
        count(k, counter::FILTERED);
        return;
    }
    // SAFETY: helper without preconditions.
    let cgroup_id = unsafe { aya_ebpf::helpers::bpf_get_current_cgroup_id() };
    // Allowed checks of the host's processes, when nothing wants them: one lookup here
    // instead of a slot of the fold (an insert per new process) and a record per capability.
    // SAFETY: the value is not kept.
    if ret == 0 && allowed == cap_allowed::NOT_HOST && unsafe { CAP_HOST.get(&cgroup_id) }.is_some()
    {
        count(k, counter::FILTERED);
        cap_count(cap_counter::HOST_DROPPED);
        return;
    }
    let key = CapKey {
        cgroup_id,
        tgid: (pid_tgid >> 32) as u32,
        cap,
        ret,
        _pad: 0,
    };
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    cap_count(cap_counter::CHECKS);
    let mut slot = CAP_DEDUP.get_ptr_mut(&key);
    if slot.is_none() {
        // A zeroed slot, then the same path as a found one. BPF_NOEXIST: when another CPU
        // inserted the key meanwhile, the insert fails and the lookup below finds its element
        // (with this CPU's value still zero), so the check is counted there, not lost.
        let _ = CAP_DEDUP.insert(&key, &CapState::default(), u64::from(BPF_NOEXIST));
        slot = CAP_DEDUP.get_ptr_mut(&key);
    }
    let Some(state) = slot else {
        // No free element (the LRU map could not evict one in time): counted, never silent.
        cap_count(cap_counter::INSERT_FAILED);
        return;
    };
    let total;
    let generation;
    // SAFETY: per-CPU value of this CPU; programs are not preempted mid-run, so no other
    // writer touches it concurrently.
    unsafe {
        let fresh = (*state).total == 0;
        if fresh {
            // A new incarnation on this CPU: a new key, or one the LRU evicted and this check
            // brought back. Its generation tells userspace it starts again at 1.
            (*state).generation = cap_next_generation();
        }
        (*state).total += 1;
        if !fresh && now.wrapping_sub((*state).last_emit_ns) < conf!(cap_window_ns) {
            count(k, counter::FILTERED);
            return;
        }
        (*state).last_emit_ns = now;
        total = (*state).total;
        generation = (*state).generation;
        // Per-CPU values start zeroed and the task may have exec'd since: keep who is asking
        // current.
        (*state).comm = aya_ebpf::helpers::bpf_get_current_comm().unwrap_or([0; 16]);
        (*state).pid = pid_tgid as u32;
        (*state).uid = aya_ebpf::helpers::bpf_get_current_uid_gid() as u32;
    }
    let Some(mut entry) = emit::reserve::<CapabilityEvent, _>(ctx, k) else {
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, k, size_of::<CapabilityEvent>());
        (*ev).cap = cap;
        (*ev).ret = ret;
        (*ev).cpu = bpf_get_smp_processor_id();
        (*ev).generation = generation;
        (*ev).total = total;
    }
    entry.submit(false);
}

/// Adds one to this CPU's capability counter `which`.
#[inline(always)]
fn cap_count(which: u32) {
    if let Some(c) = CAP_COUNTERS.get_ptr_mut(which) {
        // SAFETY: this CPU's element; not preempted mid-run.
        unsafe { *c += 1 };
    }
}

/// The next slot generation of this CPU (never 0, which marks records of older versions,
/// until it wraps after 2^32 slots).
#[inline(always)]
fn cap_next_generation() -> u32 {
    match CAP_COUNTERS.get_ptr_mut(cap_counter::SLOTS) {
        // SAFETY: this CPU's element; not preempted mid-run.
        Some(c) => unsafe {
            *c += 1;
            *c as u32
        },
        None => 0,
    }
}

/// mkdir and rmdir share one layout (the `cgroup` event class).
fn cgroup_dir(ctx: &TracePointContext, k: u16) {
    if !enabled(k) {
        return;
    }
    let Some(mut entry) = emit::reserve::<CgroupEvent, _>(ctx, k) else {
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, k, size_of::<CgroupEvent>());
        (*ev).root = emit::read_ctx_u32(ctx, conf!(tp.cg_root), k) as i32;
        (*ev).level = emit::read_ctx_u32(ctx, conf!(tp.cg_level), k) as i32;
        (*ev).id = emit::read_ctx_u64(ctx, conf!(tp.cg_id), k);
        (*ev).pid = 0;
        (*ev).path_len = read_data_loc_str(ctx, conf!(tp.cg_path), &mut (*ev).path, k);
    }
    entry.submit(false);
}

#[tracepoint]
pub fn cgroup_mkdir(ctx: TracePointContext) -> u32 {
    cgroup_dir(&ctx, kind::CGROUP_MKDIR);
    0
}

#[tracepoint]
pub fn cgroup_rmdir(ctx: TracePointContext) -> u32 {
    cgroup_dir(&ctx, kind::CGROUP_RMDIR);
    0
}

#[tracepoint]
pub fn cgroup_attach_task(ctx: TracePointContext) -> u32 {
    let k = kind::CGROUP_ATTACH;
    if !enabled(k) {
        return 0;
    }
    // Only moves into the unified (v2) hierarchy: that is where bpf cgroup ids live, and the
    // v1 hierarchies would multiply every attach by the number of controllers.
    let root = emit::read_ctx_u32(&ctx, conf!(tp.cga_root), k) as i32;
    if root != 0 {
        count(k, counter::FILTERED);
        return 0;
    }
    let Some(mut entry) = emit::reserve::<CgroupEvent, _>(&ctx, k) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring-buffer memory of the right size, fully written.
    unsafe {
        fill_header(&raw mut (*ev).hdr, k, size_of::<CgroupEvent>());
        (*ev).root = root;
        (*ev).level = emit::read_ctx_u32(&ctx, conf!(tp.cga_level), k) as i32;
        (*ev).id = emit::read_ctx_u64(&ctx, conf!(tp.cga_id), k);
        (*ev).pid = emit::read_ctx_u32(&ctx, conf!(tp.cga_pid), k);
        (*ev).path_len = read_data_loc_str(&ctx, conf!(tp.cga_path), &mut (*ev).path, k);
    }
    entry.submit(false);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
