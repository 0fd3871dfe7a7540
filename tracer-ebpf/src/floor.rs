//! The bench's floor: the least any probe that streams records does on ctrace's tracepoints.
//! One ring record per exec, exit, fork and signal, with the time, pid and tgid, comm and
//! cgroup id (and exec's file name, a signal's number), submitted without waking the reader,
//! which polls. No configuration, no counters, no filtering, no reserve for urgent records.
//! `ctrace bench-floor` loads it; `cargo xtask bench` runs it beside ctrace and reports each
//! of its programs' cost per run next to ctrace's.
//!
//! Below it, the `empty_*` programs (`ctrace bench-floor --empty`) do nothing at all: what any
//! program costs per run on a machine, its dispatch and the statistics' own clock reads.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_ktime_get_boot_ns, bpf_probe_read_kernel_str_bytes,
    },
    macros::{map, tracepoint},
    maps::RingBuf,
    programs::TracePointContext,
    EbpfContext as _,
};

/// 4 MiB, ctrace's default ring.
#[map]
static FLOOR: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

#[repr(C)]
struct Record {
    boot_ns: u64,
    cgroup_id: u64,
    pid_tgid: u64,
    comm: [u8; 16],
    kind: u32,
    arg: u32,
}

/// Exec's record and its file name.
#[repr(C)]
struct ExecRecord {
    r: Record,
    filename: [u8; 256],
}

/// The first field of `sched_process_exec` and of `signal_generate`, right after the 8 bytes
/// every tracepoint record starts with: exec's `__data_loc char[] filename`, the signal's
/// `int sig`. The same on every kernel ctrace supports (its tracefs format files).
const FIRST_FIELD: usize = 8;

/// The tracepoint record's first field, with a plain load: the verifier admits reads of a
/// classic tracepoint's context at constant offsets.
#[inline(always)]
fn first_field(ctx: &TracePointContext) -> u32 {
    // SAFETY: inside the record (every record has it), aligned, read only.
    unsafe { core::ptr::read_volatile(ctx.as_ptr().cast::<u8>().add(FIRST_FIELD).cast::<u32>()) }
}

#[inline(always)]
fn fill(r: &mut Record, kind: u32, arg: u32) {
    // SAFETY: helpers without preconditions.
    unsafe {
        r.boot_ns = bpf_ktime_get_boot_ns();
        r.cgroup_id = bpf_get_current_cgroup_id();
    }
    r.pid_tgid = bpf_get_current_pid_tgid();
    r.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    r.kind = kind;
    r.arg = arg;
}

#[inline(always)]
fn emit(kind: u32, arg: u32) {
    if let Some(mut e) = FLOOR.reserve::<Record>(0) {
        // SAFETY: reserved memory of the right size, written whole before the submit.
        unsafe { fill(&mut *e.as_mut_ptr(), kind, arg) };
        e.submit(u64::from(BPF_RB_NO_WAKEUP));
    }
}

#[tracepoint]
pub fn floor_exec(ctx: TracePointContext) -> u32 {
    if let Some(mut e) = FLOOR.reserve::<ExecRecord>(0) {
        // SAFETY: reserved memory of the right size; the file name's offset is the record's
        // own, and the helper bounds the copy.
        unsafe {
            let rec = &mut *e.as_mut_ptr();
            fill(&mut rec.r, 0, 0);
            let loc = first_field(&ctx);
            let src = (ctx.as_ptr() as u64 + u64::from(loc & 0xffff)) as *const u8;
            if bpf_probe_read_kernel_str_bytes(src, &mut rec.filename).is_err() {
                rec.filename[0] = 0;
            }
        }
        e.submit(u64::from(BPF_RB_NO_WAKEUP));
    }
    0
}

#[tracepoint]
pub fn floor_exit(_ctx: TracePointContext) -> u32 {
    emit(1, 0);
    0
}

#[tracepoint]
pub fn floor_fork(_ctx: TracePointContext) -> u32 {
    emit(2, 0);
    0
}

#[tracepoint]
pub fn floor_signal(ctx: TracePointContext) -> u32 {
    emit(3, first_field(&ctx));
    0
}

#[tracepoint]
pub fn empty_exec(_ctx: TracePointContext) -> u32 {
    0
}

#[tracepoint]
pub fn empty_exit(_ctx: TracePointContext) -> u32 {
    0
}

#[tracepoint]
pub fn empty_fork(_ctx: TracePointContext) -> u32 {
    0
}

#[tracepoint]
pub fn empty_signal(_ctx: TracePointContext) -> u32 {
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
