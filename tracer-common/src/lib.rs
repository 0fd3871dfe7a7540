//! Types shared by the eBPF programs (`tracer-ebpf`) and the userspace agent (`tracer`).
//!
//! Every record in the ring buffer starts with an [`EventHeader`]. Kinds are numbered
//! explicitly and a number is never reused; `size` is the record's full size so that a reader
//! can reject short or mismatched records without trusting anything else in them.
//!
//! All structs are `#[repr(C)]` with explicit padding fields, so both sides agree on the layout
//! with no implicit padding (checked by the layout tests at the bottom of this file).
#![cfg_attr(not(test), no_std)]

/// Version of the record layout. Bumped on any incompatible change to a struct below.
pub const LAYOUT_VERSION: u8 = 1;

/// Names of the maps and globals of the eBPF object, shared so they cannot drift.
pub mod names {
    pub const EVENTS_MAP: &str = "EVENTS";
    pub const COUNTERS_MAP: &str = "COUNTERS";
    pub const CAP_DEDUP_MAP: &str = "CAP_DEDUP";
    pub const CAP_COUNTERS_MAP: &str = "CAP_COUNTERS";
    pub const CAP_HOST_MAP: &str = "CAP_HOST";
    pub const SIG_FOLD_MAP: &str = "SIG_FOLD";
    pub const RUNQ_MAP: &str = "RUNQ";
    pub const RUNQ_CURRENT_MAP: &str = "RUNQ_CURRENT";
    pub const OOM_VICTIMS_MAP: &str = "OOM_VICTIMS";
    pub const READER_MAP: &str = "READER";
    pub const CONFIG_GLOBAL: &str = "CONFIG";
    /// The eBPF object's file name in `OUT_DIR` (the `[[bin]]` of tracer-ebpf).
    pub const OBJECT: &str = "tracer";
}

/// Event kinds. Explicit numbers, never reused.
pub mod kind {
    pub const EXEC: u16 = 1;
    pub const EXIT: u16 = 2;
    pub const FORK: u16 = 3;
    pub const SIGNAL: u16 = 4;
    pub const OOM_VICTIM: u16 = 5;
    pub const CAPABILITY: u16 = 6;
    pub const CGROUP_MKDIR: u16 = 7;
    pub const CGROUP_RMDIR: u16 = 8;
    pub const CGROUP_ATTACH: u16 = 9;
    /// One past the highest kind: the size of per-kind counter arrays.
    pub const COUNT: usize = 10;
}

/// Indexes into the per-CPU `COUNTERS` array: `kind * counter::STRIDE + counter::*`.
pub mod counter {
    /// The tracepoint fired and the program decided to emit a record.
    pub const EMIT_ATTEMPT: u32 = 0;
    /// The ring buffer had no room: the record was lost. Records that are not urgent find
    /// the ring full when only the part kept for urgent ones is left (tracer-ebpf `emit.rs`).
    pub const LOST_RINGBUF_FULL: u32 = 1;
    /// A field could not be read from the kernel; the record went out with the field zeroed.
    pub const READ_ERROR: u32 = 2;
    /// The tracepoint fired but the event was filtered out in the kernel (e.g. de-duplicated).
    pub const FILTERED: u32 = 3;
    pub const STRIDE: u32 = 4;
    pub const LEN: u32 = super::kind::COUNT as u32 * STRIDE;
}

/// Indexes into the per-CPU `CAP_COUNTERS` array: the capability checks themselves (not
/// records), so that userspace can tell every check folded in the kernel from every check it
/// reported, and name the difference.
pub mod cap_counter {
    /// Checks that reached the fold (filtered ones excluded): each is counted in exactly one
    /// `CAP_DEDUP` slot, or in [`INSERT_FAILED`].
    pub const CHECKS: u32 = 0;
    /// Slot incarnations started on this CPU (a key's value going from 0 to 1 checks); also
    /// the source of [`super::CapState::generation`].
    pub const SLOTS: u32 = 1;
    /// Checks that found no slot and could not make one (the LRU map had no free element):
    /// counted here and nowhere else.
    pub const INSERT_FAILED: u32 = 2;
    /// Allowed checks of cgroups userspace placed on the host, dropped before the fold
    /// (`cap_allowed::NOT_HOST`); not in [`CHECKS`].
    pub const HOST_DROPPED: u32 = 3;
    pub const LEN: u32 = 4;
}

/// Values of [`Config::cap_allowed`].
pub mod cap_allowed {
    /// Allowed checks are not reported.
    pub const NONE: u32 = 0;
    /// Every allowed check is reported.
    pub const ALL: u32 = 1;
    /// Allowed checks are reported unless their cgroup is in the `CAP_HOST` map: cgroups
    /// userspace placed on the host, whose allowed checks nothing it runs wants (the journal
    /// keeps containers' only). Checks of cgroups it has not placed yet are reported.
    pub const NOT_HOST: u32 = 2;
}

/// Values of [`Config::runq_source`]: where the run-queue programs learn when a task started
/// waiting.
pub mod runq_source {
    /// Run-queue delay is not measured.
    pub const OFF: u32 = 0;
    /// `sched_wakeup`, `sched_wakeup_new` and a preempted `sched_switch` stamp the task in a
    /// map; `sched_switch` reads the stamp back when the task gets a CPU.
    pub const STAMPS: u32 = 1;
    /// `sched_switch` alone: the kernel stamps every task it queues
    /// (`task_struct.sched_info.last_queued`, by the run queue's clock, which `sched_switch`
    /// reads from the run queue), so no program runs on wakeups and no map holds tasks.
    pub const SCHED_INFO: u32 = 2;
}

/// Bits of [`Config::event_mask`]: which kinds are enabled.
pub const fn kind_bit(kind: u16) -> u32 {
    1 << kind
}

/// A tracepoint field offset that is not present on the running kernel.
pub const OFFSET_ABSENT: u16 = u16::MAX;

/// Offsets of tracepoint fields, read by userspace from tracefs `format` files so the object
/// does not hard-code one kernel's layout. `OFFSET_ABSENT` marks a field this kernel lacks.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TpOffsets {
    // sched:sched_process_exec
    pub exec_filename: u16,
    pub exec_pid: u16,
    pub exec_old_pid: u16,
    // sched:sched_process_exit
    pub exit_pid: u16,
    pub exit_group_dead: u16,
    // sched:sched_process_fork
    pub fork_parent_pid: u16,
    pub fork_child_pid: u16,
    pub fork_child_comm: u16,
    // signal:signal_generate
    pub sig_sig: u16,
    pub sig_errno: u16,
    pub sig_code: u16,
    pub sig_comm: u16,
    pub sig_pid: u16,
    pub sig_group: u16,
    pub sig_result: u16,
    // oom:mark_victim
    pub oom_pid: u16,
    pub oom_comm: u16,
    pub oom_total_vm: u16,
    pub oom_anon_rss: u16,
    pub oom_file_rss: u16,
    pub oom_shmem_rss: u16,
    pub oom_uid: u16,
    pub oom_pgtables: u16,
    pub oom_score_adj: u16,
    // capability:cap_capable
    pub cap_cap: u16,
    pub cap_ret: u16,
    // cgroup:cgroup_mkdir / cgroup_rmdir (same layout)
    pub cg_root: u16,
    pub cg_level: u16,
    pub cg_id: u16,
    pub cg_path: u16,
    // cgroup:cgroup_attach_task
    pub cga_root: u16,
    pub cga_level: u16,
    pub cga_id: u16,
    pub cga_pid: u16,
    pub cga_path: u16,
    /// `sched_process_fork`'s `child_comm` where it is a fixed `char[16]` (before 6.10 or so)
    /// rather than the `__data_loc` string at `fork_child_comm`; `OFFSET_ABSENT` otherwise.
    pub fork_child_comm_array: u16,
}

impl TpOffsets {
    pub const ABSENT: Self = Self {
        exec_filename: OFFSET_ABSENT,
        exec_pid: OFFSET_ABSENT,
        exec_old_pid: OFFSET_ABSENT,
        exit_pid: OFFSET_ABSENT,
        exit_group_dead: OFFSET_ABSENT,
        fork_parent_pid: OFFSET_ABSENT,
        fork_child_pid: OFFSET_ABSENT,
        fork_child_comm: OFFSET_ABSENT,
        sig_sig: OFFSET_ABSENT,
        sig_errno: OFFSET_ABSENT,
        sig_code: OFFSET_ABSENT,
        sig_comm: OFFSET_ABSENT,
        sig_pid: OFFSET_ABSENT,
        sig_group: OFFSET_ABSENT,
        sig_result: OFFSET_ABSENT,
        oom_pid: OFFSET_ABSENT,
        oom_comm: OFFSET_ABSENT,
        oom_total_vm: OFFSET_ABSENT,
        oom_anon_rss: OFFSET_ABSENT,
        oom_file_rss: OFFSET_ABSENT,
        oom_shmem_rss: OFFSET_ABSENT,
        oom_uid: OFFSET_ABSENT,
        oom_pgtables: OFFSET_ABSENT,
        oom_score_adj: OFFSET_ABSENT,
        cap_cap: OFFSET_ABSENT,
        cap_ret: OFFSET_ABSENT,
        cg_root: OFFSET_ABSENT,
        cg_level: OFFSET_ABSENT,
        cg_id: OFFSET_ABSENT,
        cg_path: OFFSET_ABSENT,
        cga_root: OFFSET_ABSENT,
        cga_level: OFFSET_ABSENT,
        cga_id: OFFSET_ABSENT,
        cga_pid: OFFSET_ABSENT,
        cga_path: OFFSET_ABSENT,
        fork_child_comm_array: OFFSET_ABSENT,
    };
}

/// Offsets of kernel struct members, computed by userspace from the kernel's BTF
/// (aya-ebpf has no CO-RE relocations). `OFFSET_ABSENT` disables what needs the member.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskOffsets {
    /// `task_struct.real_parent`
    pub real_parent: u16,
    /// `task_struct.tgid`
    pub tgid: u16,
    /// `task_struct.exit_code`
    pub exit_code: u16,
    /// `task_struct.pid`
    pub pid: u16,
    /// `task_struct.comm`
    pub comm: u16,
    /// `task_struct.cgroups` (`struct css_set *`)
    pub cgroups: u16,
    /// `css_set.dfl_cgrp` (`struct cgroup *`, the cgroup v2 one)
    pub css_set_dfl_cgrp: u16,
    /// `cgroup.kn` (`struct kernfs_node *`)
    pub cgroup_kn: u16,
    /// `kernfs_node.id` (u64; what `bpf_get_current_cgroup_id()` returns)
    pub kernfs_node_id: u16,
    /// `kernel_siginfo.si_errno`
    pub siginfo_errno: u16,
    /// `kernel_siginfo.si_code`
    pub siginfo_code: u16,
    /// `css_set.subsys[memory_cgrp_id]` (`struct cgroup_subsys_state *` of the memory
    /// controller, v1 or v2)
    pub css_set_memcg: u16,
    /// `mem_cgroup.memory` relative to `mem_cgroup.css` (the `struct page_counter` of memory)
    pub memcg_memory: u16,
    /// `page_counter.usage` (pages)
    pub pc_usage: u16,
    /// `page_counter.failcnt`
    pub pc_failcnt: u16,
    /// `page_counter.watermark` (pages: the peak)
    pub pc_watermark: u16,
    /// `page_counter.max` (pages: the limit)
    pub pc_max: u16,
    /// `page_counter.parent` (`struct page_counter *`)
    pub pc_parent: u16,
    /// `oom_control.memcg` (`struct mem_cgroup *`: the memory cgroup whose limit was hit, NULL
    /// for a host-wide OOM)
    pub oc_memcg: u16,
    /// `oom_control.chosen` (`struct task_struct *`: the victim)
    pub oc_chosen: u16,
    /// `oom_control.chosen_points` (long: the victim's badness, `oom_badness()`)
    pub oc_chosen_points: u16,
    /// `oom_control.order` (int: the allocation's order; -1 for a sysrq-forced OOM)
    pub oc_order: u16,
    /// `oom_control.constraint` (`enum oom_constraint`: none, cpuset, memory policy, memcg)
    pub oc_constraint: u16,
    /// `cgroup_subsys_state.cgroup` (`struct cgroup *`), to name a memory cgroup by its id
    pub css_cgroup: u16,
    /// `task_struct.signal` (`struct signal_struct *`)
    pub task_signal: u16,
    /// `signal_struct.oom_score_adj` (short)
    pub signal_oom_score_adj: u16,
    /// `task_struct.sched_info.last_queued` (u64): when the task joined its run queue, by its
    /// run queue's clock; 0 while it is not waiting (`CONFIG_SCHED_INFO`)
    pub task_last_queued: u16,
    /// `task_struct.se.cfs_rq` (`struct cfs_rq *`: the queue its scheduling entity is on)
    pub task_cfs_rq: u16,
    /// `cfs_rq.rq` (`struct rq *`: the CPU's run queue; `CONFIG_FAIR_GROUP_SCHED`)
    pub cfs_rq_rq: u16,
    /// `rq.clock` (u64: the run queue's clock, which `sched_info` stamps with)
    pub rq_clock: u16,
    /// `linux_binprm.filename` (`const char *`: the file an exec runs, as the exec
    /// tracepoint copies it)
    pub bprm_filename: u16,
    pub _pad: u16,
}

impl TaskOffsets {
    pub const ABSENT: Self = Self {
        real_parent: OFFSET_ABSENT,
        tgid: OFFSET_ABSENT,
        exit_code: OFFSET_ABSENT,
        pid: OFFSET_ABSENT,
        comm: OFFSET_ABSENT,
        cgroups: OFFSET_ABSENT,
        css_set_dfl_cgrp: OFFSET_ABSENT,
        cgroup_kn: OFFSET_ABSENT,
        kernfs_node_id: OFFSET_ABSENT,
        siginfo_errno: OFFSET_ABSENT,
        siginfo_code: OFFSET_ABSENT,
        css_set_memcg: OFFSET_ABSENT,
        memcg_memory: OFFSET_ABSENT,
        pc_usage: OFFSET_ABSENT,
        pc_failcnt: OFFSET_ABSENT,
        pc_watermark: OFFSET_ABSENT,
        pc_max: OFFSET_ABSENT,
        pc_parent: OFFSET_ABSENT,
        oc_memcg: OFFSET_ABSENT,
        oc_chosen: OFFSET_ABSENT,
        oc_chosen_points: OFFSET_ABSENT,
        oc_order: OFFSET_ABSENT,
        oc_constraint: OFFSET_ABSENT,
        css_cgroup: OFFSET_ABSENT,
        task_signal: OFFSET_ABSENT,
        signal_oom_score_adj: OFFSET_ABSENT,
        task_last_queued: OFFSET_ABSENT,
        task_cfs_rq: OFFSET_ABSENT,
        cfs_rq_rq: OFFSET_ABSENT,
        rq_clock: OFFSET_ABSENT,
        bprm_filename: OFFSET_ABSENT,
        _pad: 0,
    };

    /// Everything the BTF-typed `signal_generate` program reads from the target task.
    pub const fn signal_target_complete(&self) -> bool {
        self.pid != OFFSET_ABSENT
            && self.tgid != OFFSET_ABSENT
            && self.comm != OFFSET_ABSENT
            && self.cgroups != OFFSET_ABSENT
            && self.css_set_dfl_cgrp != OFFSET_ABSENT
            && self.cgroup_kn != OFFSET_ABSENT
            && self.kernfs_node_id != OFFSET_ABSENT
            && self.siginfo_errno != OFFSET_ABSENT
            && self.siginfo_code != OFFSET_ABSENT
    }

    /// Everything `runq_switch` needs to read a task's wait from the kernel's own stamp
    /// ([`runq_source::SCHED_INFO`]).
    pub const fn sched_info_complete(&self) -> bool {
        self.pid != OFFSET_ABSENT
            && self.task_last_queued != OFFSET_ABSENT
            && self.task_cfs_rq != OFFSET_ABSENT
            && self.cfs_rq_rq != OFFSET_ABSENT
            && self.rq_clock != OFFSET_ABSENT
    }

    /// Everything `mark_victim_btf` needs to read the victim's memory cgroup counters.
    pub const fn memcg_complete(&self) -> bool {
        self.cgroups != OFFSET_ABSENT
            && self.css_set_memcg != OFFSET_ABSENT
            && self.memcg_memory != OFFSET_ABSENT
            && self.pc_usage != OFFSET_ABSENT
            && self.pc_failcnt != OFFSET_ABSENT
            && self.pc_watermark != OFFSET_ABSENT
            && self.pc_max != OFFSET_ABSENT
            && self.pc_parent != OFFSET_ABSENT
    }
}

/// The last `1 / 2^URGENT_RESERVE_SHIFT` of the ring (512 KiB of the default 4 MiB, thousands
/// of records) is kept for urgent records: signals and OOM victims (what incidents are made
/// of), and the exits of processes a signal killed. A container that forks and execs as fast as
/// it can fills the ring with exec, exit and fork records when the reader falls behind; those
/// are then refused at the reserve's edge, so a kill or an OOM elsewhere still finds room.
pub const URGENT_RESERVE_SHIFT: u32 = 3;

/// [`Config::reserve_budget_max`] for a ring of `ring_bytes` shared by `cpus` CPUs: half the
/// urgent reserve, split among them. Ordinary records look at how full the ring is only when
/// their CPU's budget is spent (a budget is granted only while the ring is less full than the
/// wakeup mark, and never more than its share of the room left below that mark), so stale
/// budgets together can reach at most half of the reserve into it: urgent records always keep
/// the other half.
pub const fn reserve_budget_max(ring_bytes: u32, cpus: u32) -> u64 {
    let cpus = if cpus == 0 { 1 } else { cpus };
    ((ring_bytes as u64) >> URGENT_RESERVE_SHIFT) / 2 / cpus as u64
}

/// Runtime settings of the eBPF programs, set by userspace at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Bit `kind_bit(k)` set: records of kind `k` are emitted.
    pub event_mask: u32,
    /// Signals (bit `1 << signo`, 1..=63) whose `signal_generate` is emitted.
    pub signal_mask_lo: u32,
    pub signal_mask_hi: u32,
    /// Emit an exit record for every thread, not only the thread-group leader.
    pub exit_all_threads: u32,
    /// Which allowed capability checks are reported (denials always are): one of
    /// [`cap_allowed`]'s values.
    pub cap_allowed: u32,
    /// How run-queue delay is aggregated per cgroup, if at all: one of [`runq_source`]'s
    /// values.
    pub runq_source: u32,
    /// ctrace's own process (thread group id, as the kernel's init pid namespace sees it; 0:
    /// none). Its capability checks (reading its maps asks for CAP_BPF, CAP_PERFMON) are
    /// filtered: reporting them would make ctrace watch itself being watched.
    pub self_tgid: u32,
    /// The ring buffer's size in bytes as created (0: the programs ask the ring), so that a
    /// record need not ask it each time.
    pub ring_bytes: u32,
    /// CPUs the per-CPU maps have a slot for (the reserve budget is shared among them).
    pub cpus: u32,
    pub _pad: u32,
    /// The most ring bytes a CPU may reserve for ordinary records between two looks at how
    /// full the ring is (0: look at every record). See [`reserve_budget_max`].
    pub reserve_budget_max: u64,
    /// Capability checks with the same (cgroup, tgid, cap, verdict) within this window are
    /// folded into one record with a count.
    pub cap_window_ns: u64,
    /// Wake the reader when this many bytes are waiting in the ring buffer (records are
    /// otherwise submitted without a wakeup and the reader polls on a timer).
    pub wakeup_bytes: u64,
    /// Ignored or already-pending signals identical to the run their CPU counts are folded
    /// into it for this long after its last record (0: every signal is a record).
    pub signal_window_ns: u64,
    pub tp: TpOffsets,
    pub task: TaskOffsets,
}

impl Config {
    pub const DEFAULT: Self = Self {
        event_mask: 0,
        signal_mask_lo: 0,
        signal_mask_hi: 0,
        exit_all_threads: 0,
        cap_allowed: 0,
        runq_source: runq_source::OFF,
        self_tgid: 0,
        ring_bytes: 0,
        cpus: 1,
        _pad: 0,
        reserve_budget_max: 0,
        cap_window_ns: 5_000_000_000,
        wakeup_bytes: 64 * 1024,
        signal_window_ns: 1_000_000_000,
        tp: TpOffsets::ABSENT,
        task: TaskOffsets::ABSENT,
    };

    pub const fn signal_enabled(&self, sig: u32) -> bool {
        if sig < 32 {
            self.signal_mask_lo & (1 << sig) != 0
        } else if sig < 64 {
            self.signal_mask_hi & (1 << (sig - 32)) != 0
        } else {
            false
        }
    }
}

pub const COMM_LEN: usize = 16;
pub const PATH_LEN: usize = 256;

/// Header flags.
pub mod flags {
    /// `ppid` was read from the kernel.
    pub const PPID_VALID: u8 = 1 << 0;
}

/// Common header of every record. `pid`/`tgid`/`comm`/`cgroup_id` describe the task that was
/// current when the tracepoint fired.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    pub kind: u16,
    pub version: u8,
    pub flags: u8,
    /// Full size of the record in bytes, header included.
    pub size: u32,
    /// `bpf_ktime_get_boot_ns()`: nanoseconds since boot, suspend included.
    pub boot_ns: u64,
    /// Thread id of the current task.
    pub pid: u32,
    /// Process id (thread-group id) of the current task.
    pub tgid: u32,
    /// Thread-group id of the current task's parent (`real_parent`); see `flags::PPID_VALID`.
    pub ppid: u32,
    pub uid: u32,
    /// cgroup v2 id (inode number of the unified-hierarchy directory) of the current task.
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
}

/// `sched:sched_process_exec`. Header: the task after exec.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    pub hdr: EventHeader,
    pub old_pid: u32,
    /// Bytes of `filename` used, without the terminating NUL.
    pub filename_len: u32,
    pub filename: [u8; PATH_LEN],
}

pub mod exit_flags {
    /// The whole thread group is gone with this exit.
    pub const GROUP_DEAD: u32 = 1 << 0;
    /// `exit_code` was read from the task.
    pub const CODE_VALID: u32 = 1 << 1;
    /// The tracepoint has no `group_dead` field on this kernel (6.12 and older): whether the
    /// group is gone is not known, and [`GROUP_DEAD`] says nothing. Set rather than a "known"
    /// bit so that records captured before it existed still read as known.
    pub const GROUP_DEAD_UNKNOWN: u32 = 1 << 2;
}

/// `sched:sched_process_exit`. Header: the exiting task.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitEvent {
    pub hdr: EventHeader,
    /// `task_struct.exit_code`: a wait(2) status (`signal | core << 7 | status << 8`).
    pub exit_code: u32,
    pub flags: u32,
}

/// `sched:sched_process_fork`. Header: the parent.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkEvent {
    pub hdr: EventHeader,
    pub child_pid: u32,
    pub _pad: u32,
    pub child_comm: [u8; COMM_LEN],
}

/// `signal:signal_generate`. Header: the sender (current task).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalEvent {
    pub hdr: EventHeader,
    pub sig: i32,
    pub errno: i32,
    /// `si_code`: <= 0 from userspace (SI_USER = 0, SI_TKILL = -6, ...), > 0 from the kernel.
    pub code: i32,
    pub target_pid: u32,
    pub group: i32,
    /// `enum trace_signal_result`: 0 delivered, 1 ignored, 2 already pending, 3 overflow
    /// fail, 4 lose info.
    pub result: i32,
    pub target_comm: [u8; COMM_LEN],
    /// Process of the target thread; valid with `signal_flags::TARGET_TASK`.
    pub target_tgid: u32,
    pub flags: u32,
    /// cgroup v2 id of the target; valid with `signal_flags::TARGET_TASK`.
    pub target_cgroup_id: u64,
    /// The fold of repeated identical signals that change nothing (ignored, or already
    /// pending; see [`SigRun`]): the run this record reports on `cpu`, 0 when not folded.
    pub run: u32,
    pub cpu: u32,
    /// Signals of `run` so far, this one included (cumulative, as [`CapabilityEvent::total`]).
    pub total: u64,
    /// The run `cpu` counted before this one started (0: none), its final total and when
    /// its last signal was sent: the tail no record reported yet.
    pub prev_run: u32,
    pub _pad: u32,
    pub prev_total: u64,
    pub prev_last_ns: u64,
}

/// Size of [`SignalEvent`] in layouts before the fold: still decoded, as a signal of its own.
pub const SIGNAL_EVENT_UNFOLDED_SIZE: usize = 112;

/// What makes signals identical for the fold.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct SigKey {
    /// Sender thread.
    pub sender_pid: u32,
    /// Target thread.
    pub target_pid: u32,
    pub sig: i32,
    pub code: i32,
    pub errno: i32,
    pub group: i32,
    pub result: i32,
    pub _pad: u32,
}

/// The one slot per CPU of the signal fold (`SIG_FOLD`): the run of identical signals that
/// CPU is counting. A signal that is ignored or already pending, with the key of the run,
/// within [`Config::signal_window_ns`] of its last record, is counted here instead of being
/// a record; any other signal to fold starts a new run, and its record carries the end of the
/// old one. Userspace reads the slot each second for the tail of a run that nothing ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SigRun {
    pub key: SigKey,
    /// The run's number on this CPU (from 1, increasing); 0 while a new run is written.
    pub run: u32,
    pub _pad: u32,
    /// Signals of this run so far.
    pub total: u64,
    /// When the run's last record was emitted.
    pub last_emit_ns: u64,
    /// When its last signal was sent.
    pub last_ns: u64,
}

pub mod signal_flags {
    /// `target_tgid` and `target_cgroup_id` were read from the target task (BTF-typed
    /// program); the classic tracepoint only knows the target's pid and comm.
    pub const TARGET_TASK: u32 = 1 << 0;
}

/// `oom:mark_victim`. Header: the task that was current when the OOM killer chose the victim
/// (the one whose allocation triggered it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomVictimEvent {
    pub hdr: EventHeader,
    pub victim_pid: u32,
    pub victim_uid: u32,
    /// Sizes in KiB, as the tracepoint reports them.
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub pgtables_kb: u64,
    pub oom_score_adj: i16,
    pub _pad: [u8; 6],
    pub victim_comm: [u8; COMM_LEN],
}

/// `capability:cap_capable`, de-duplicated per CPU by (cgroup id, tgid, cap, verdict).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityEvent {
    pub hdr: EventHeader,
    pub cap: u32,
    /// 0: allowed; negative errno (-EPERM) denied.
    pub ret: i32,
    /// CPU whose de-duplication slot counted these checks.
    pub cpu: u32,
    /// [`CapState::generation`] of the slot that counted these checks (0 in records of
    /// versions before it existed, where this was padding).
    pub generation: u32,
    /// Checks with this key seen so far on `cpu`, this one included (cumulative, so userspace
    /// can turn records and map reads into exact counts without writing to the map).
    pub total: u64,
}

/// Key of the capability de-duplication map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CapKey {
    pub cgroup_id: u64,
    pub tgid: u32,
    pub cap: u32,
    pub ret: i32,
    pub _pad: u32,
}

/// Value of the capability de-duplication map (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CapState {
    /// When the last record for this key was emitted from this CPU.
    pub last_emit_ns: u64,
    /// Checks seen on this CPU, cumulative.
    pub total: u64,
    pub comm: [u8; COMM_LEN],
    pub pid: u32,
    pub uid: u32,
    /// Which incarnation of the slot on this CPU (from [`cap_counter::SLOTS`], increasing per
    /// CPU): the LRU map may evict a key and start it again at 1, and a record read after a
    /// newer map read must not be taken for that.
    pub generation: u32,
    pub _pad: u32,
}

/// The OOM victim's process and cgroup, read from the victim task by the BTF-typed
/// `mark_victim` program (kernels whose tracepoint passes the task) at the moment the OOM killer
/// chose it. Value of the `OOM_VICTIMS` map keyed by the victim's thread id; the classic
/// `mark_victim` record of the same moment carries only that id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomVictimTask {
    pub tgid: u32,
    /// How many levels above the victim's memory cgroup `memcg` was read (0: its own), or
    /// [`MEMCG_UNREAD`] when the memory counters could not be read, [`MEMCG_HOST`] when the
    /// OOM was host-wide (read from the OOM killer's own context).
    pub memcg_depth: u32,
    pub cgroup_id: u64,
    pub boot_ns: u64,
    /// The memory counter with the lowest limit on the way from the victim's memory cgroup to
    /// the root (the nearest one on ties), read at the OOM; with [`oom_context::READ`], the
    /// counter of the memory cgroup whose limit was hit.
    pub memcg: MemcgCounter,
    /// [`oom_context`] flags: what of the OOM killer's own context was read.
    pub context_flags: u32,
    /// `oom_control.order`: the order of the allocation that failed (-1: sysrq).
    pub order: i32,
    /// `oom_control.constraint` ([`oom_context::CONSTRAINT_MEMCG`], ...).
    pub constraint: u32,
    /// The victim's `signal->oom_score_adj` (-1000..=1000).
    pub oom_score_adj: i32,
    /// `oom_control.chosen_points`: the victim's badness as the OOM killer scored it.
    pub chosen_points: i64,
    /// cgroup v2 id (kernfs id) of `oom_control.memcg`: the cgroup whose limit was hit; 0 for
    /// a host-wide OOM or when it could not be read.
    pub memcg_cgroup_id: u64,
}

/// [`OomVictimTask::context_flags`]: what `oom_kill_process()`'s `struct oom_control` gave.
pub mod oom_context {
    /// Read from the OOM killer's context (else from the victim task at `mark_victim`).
    pub const READ: u32 = 1 << 0;
    /// `chosen_points` was read.
    pub const POINTS: u32 = 1 << 1;
    /// `oom_score_adj` was read.
    pub const SCORE_ADJ: u32 = 1 << 2;
    /// `order` and `constraint` were read.
    pub const TRIGGER: u32 = 1 << 3;
    /// `memcg_cgroup_id` was read.
    pub const MEMCG_ID: u32 = 1 << 4;

    /// `enum oom_constraint` (include/linux/oom.h), stable since 4.19.
    pub const CONSTRAINT_NONE: u32 = 0;
    pub const CONSTRAINT_CPUSET: u32 = 1;
    pub const CONSTRAINT_MEMORY_POLICY: u32 = 2;
    pub const CONSTRAINT_MEMCG: u32 = 3;
}

/// [`OomVictimTask::memcg_depth`] when the counters are not there.
pub const MEMCG_UNREAD: u32 = u32::MAX;

/// `OomVictimTask::memcg_depth` of a host-wide OOM (`oom_control.memcg` NULL): no memory
/// cgroup's limit was hit, `memcg` is not read.
pub const MEMCG_HOST: u32 = u32::MAX - 1;

/// How many memory cgroup levels `mark_victim_btf` walks up from the victim.
pub const MEMCG_MAX_DEPTH: u32 = 8;

/// A memory cgroup's `struct page_counter`, in pages (`failcnt` in times).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemcgCounter {
    pub usage_pages: u64,
    pub max_pages: u64,
    pub watermark_pages: u64,
    pub failcnt: u64,
}

/// Buckets of the run-queue delay histogram: bucket `i` counts delays of `[2^i, 2^(i+1))`
/// microseconds (bucket 0 also counts delays under 1 µs; the last one everything above).
pub const RUNQ_BUCKETS: usize = 32;

/// Run-queue delay (wakeup or preemption to running) of the tasks of one cgroup, on one CPU,
/// cumulative since load. Value of the per-CPU `RUNQ` map keyed by cgroup v2 id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunqHist {
    pub count: u64,
    pub sum_ns: u64,
    pub buckets: [u64; RUNQ_BUCKETS],
}

impl RunqHist {
    pub const ZERO: Self = Self {
        count: 0,
        sum_ns: 0,
        buckets: [0; RUNQ_BUCKETS],
    };

    /// Bucket of a delay: floor(log2(microseconds)), clamped.
    #[inline(always)]
    pub const fn bucket(delay_ns: u64) -> usize {
        let mut us = delay_ns / 1000;
        let mut b = 0;
        while us > 1 && b < RUNQ_BUCKETS - 1 {
            us >>= 1;
            b += 1;
        }
        b
    }
}

/// `cgroup:cgroup_mkdir`, `cgroup_rmdir` and `cgroup_attach_task`. Header: current task.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupEvent {
    pub hdr: EventHeader,
    /// Hierarchy id (`root`); the unified (v2) hierarchy is 0.
    pub root: i32,
    pub level: i32,
    pub id: u64,
    /// For attach: the task moved.
    pub pid: u32,
    pub path_len: u32,
    pub path: [u8; PATH_LEN],
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are `repr(C)` structs of integers with explicit padding fields,
    // so every bit pattern is valid and there is no uninitialised padding.
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for CapKey {}
    unsafe impl aya::Pod for CapState {}
    unsafe impl aya::Pod for SigRun {}
    unsafe impl aya::Pod for RunqHist {}
    unsafe impl aya::Pod for OomVictimTask {}
}

#[cfg(test)]
mod tests {
    use core::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn header_layout() {
        assert_eq!(size_of::<EventHeader>(), 56);
        assert_eq!(offset_of!(EventHeader, size), 4);
        assert_eq!(offset_of!(EventHeader, boot_ns), 8);
        assert_eq!(offset_of!(EventHeader, pid), 16);
        assert_eq!(offset_of!(EventHeader, cgroup_id), 32);
        assert_eq!(offset_of!(EventHeader, comm), 40);
    }

    #[test]
    fn event_layouts_have_no_implicit_padding() {
        assert_eq!(size_of::<ExecEvent>(), 56 + 8 + PATH_LEN);
        assert_eq!(size_of::<ExitEvent>(), 64);
        assert_eq!(size_of::<ForkEvent>(), 56 + 8 + 16);
        assert_eq!(size_of::<SignalEvent>(), 56 + 24 + 16 + 16 + 40);
        assert_eq!(offset_of!(SignalEvent, run), SIGNAL_EVENT_UNFOLDED_SIZE);
        assert_eq!(offset_of!(SignalEvent, target_cgroup_id), 104);
        assert_eq!(offset_of!(SignalEvent, target_comm), 80);
        assert_eq!(size_of::<OomVictimEvent>(), 56 + 8 + 40 + 8 + 16);
        assert_eq!(offset_of!(OomVictimEvent, oom_score_adj), 104);
        assert_eq!(size_of::<CapabilityEvent>(), 56 + 24);
        assert_eq!(size_of::<CgroupEvent>(), 56 + 24 + PATH_LEN);
        assert_eq!(size_of::<CapKey>(), 24);
        assert_eq!(size_of::<CapState>(), 48);
        assert_eq!(offset_of!(CapState, generation), 40);
        assert_eq!(offset_of!(CapabilityEvent, generation), 68);
        assert_eq!(size_of::<OomVictimTask>(), 24 + 32 + 16 + 8 + 8);
        assert_eq!(core::mem::offset_of!(OomVictimTask, chosen_points), 72);
        assert_eq!(core::mem::offset_of!(OomVictimTask, memcg), 24);
        assert_eq!(core::mem::offset_of!(OomVictimTask, cgroup_id), 8);
        assert_eq!(size_of::<TpOffsets>(), 36 * 2);
        assert_eq!(size_of::<TaskOffsets>(), 32 * 2);
        assert_eq!(size_of::<Config>(), 72 + 72 + 64);
        assert_eq!(size_of::<SigKey>(), 32);
        assert_eq!(size_of::<SigRun>(), 32 + 8 + 24);
        assert_eq!(offset_of!(SigRun, total), 40);
    }

    #[test]
    fn reserve_budgets_together_take_at_most_half_the_urgent_reserve() {
        let ring = 4 << 20;
        let reserve = u64::from(ring) >> URGENT_RESERVE_SHIFT;
        assert_eq!(reserve, 512 << 10);
        for cpus in [1, 2, 3, 64, 4096] {
            let each = reserve_budget_max(ring, cpus);
            assert!(each * u64::from(cpus) <= reserve / 2, "{cpus} CPUs: {each}");
            assert!(each > 0, "{cpus} CPUs");
        }
        // A CPU count the loader could not read gives no budget larger than one CPU's.
        assert_eq!(reserve_budget_max(ring, 0), reserve / 2);
        // The smallest ring still splits (into nothing: every record looks).
        assert_eq!(reserve_budget_max(4096, 4096), 0);
    }

    #[test]
    fn runq_buckets() {
        assert_eq!(RunqHist::bucket(0), 0);
        assert_eq!(RunqHist::bucket(1_999), 0);
        assert_eq!(RunqHist::bucket(2_000), 1);
        assert_eq!(RunqHist::bucket(1_000_000), 9); // 1 ms = 1000 µs: 2^9 = 512
        assert_eq!(RunqHist::bucket(u64::MAX), RUNQ_BUCKETS - 1);
        assert_eq!(size_of::<RunqHist>(), 16 + 8 * RUNQ_BUCKETS);
    }

    #[test]
    fn signal_mask() {
        let mut c = Config::DEFAULT;
        c.signal_mask_lo = 1 << 9;
        c.signal_mask_hi = 1 << (34 - 32);
        assert!(c.signal_enabled(9));
        assert!(c.signal_enabled(34));
        assert!(!c.signal_enabled(15));
        assert!(!c.signal_enabled(64));
        assert!(!c.signal_enabled(u32::MAX));
    }
}
