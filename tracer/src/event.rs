//! Decoded, typed events. [`decode`] is pure and never panics: every record from the ring
//! buffer is checked for length, kind, version and declared size before it is read, and for
//! field values no kernel can produce after (an impossible signal, signal result, capability,
//! capability verdict, cgroup hierarchy id or level: [`DecodeError::Impossible`]).

use std::mem::size_of;

use tracer_common::{
    exit_flags, flags, kind, signal_flags, CapabilityEvent, CgroupEvent, EventHeader, ExecEvent,
    ExitEvent, ForkEvent, OomVictimEvent, SignalEvent, LAYOUT_VERSION, SIGNAL_EVENT_UNFOLDED_SIZE,
};

/// The task that was current when the tracepoint fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Thread id.
    pub tid: u32,
    /// Process id (thread-group id).
    pub pid: u32,
    pub ppid: Option<u32>,
    pub uid: u32,
    pub cgroup_id: u64,
    pub comm: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub old_pid: u32,
    pub filename: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// wait(2) status, when it could be read.
    pub status: Option<u32>,
    /// The whole process (thread group) is gone; `None` where the kernel's tracepoint does
    /// not say (no `group_dead` field: 6.12 and older).
    pub group_dead: Option<bool>,
}

impl Exit {
    /// Exit code as a shell reports it: the status, or 128 + signal.
    pub fn code(&self) -> Option<u32> {
        self.status.map(|s| {
            let sig = s & 0x7f;
            if sig == 0 {
                (s >> 8) & 0xff
            } else {
                128 + sig
            }
        })
    }

    /// The signal that killed the process, if it died of one.
    pub fn signal(&self) -> Option<u32> {
        self.status.map(|s| s & 0x7f).filter(|&s| s != 0)
    }

    pub fn core_dumped(&self) -> bool {
        self.status.is_some_and(|s| s & 0x80 != 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    pub child_pid: u32,
    pub child_comm: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub sig: i32,
    /// Process and cgroup v2 id of the target, when the kernel could read them.
    pub target_tgid: Option<u32>,
    pub target_cgroup_id: Option<u64>,
    pub errno: i32,
    pub code: i32,
    pub target_pid: u32,
    pub target_comm: String,
    pub group: bool,
    pub result: i32,
    /// Repeats of this signal folded into the record (ignored or already pending ones).
    pub fold: Fold,
}

/// What a signal record stands for in the kernel's fold of repeated identical signals that
/// change nothing (tracer-common `SigRun`). All zero, but `count`, for a record not folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fold {
    /// The run on `cpu` this record reports (0: not folded).
    pub run: u32,
    pub cpu: u32,
    /// Signals of the run so far (cumulative).
    pub total: u64,
    /// The run `cpu` counted before, its final total and its last signal's time.
    pub prev_run: u32,
    pub prev_total: u64,
    pub prev_last_ns: u64,
    /// Signals this record stands for: 1 unless [`crate::pipeline::Pipeline`] says more.
    pub count: u64,
    /// Nanoseconds from the run's previous record to this one (0 for its first).
    pub span_ns: u64,
}

impl Fold {
    /// A record of one signal.
    pub const ONE: Self = Self {
        run: 0,
        cpu: 0,
        total: 0,
        prev_run: 0,
        prev_total: 0,
        prev_last_ns: 0,
        count: 1,
        span_ns: 0,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomVictim {
    pub victim_pid: u32,
    pub victim_comm: String,
    pub victim_uid: u32,
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub pgtables_kb: u64,
    pub oom_score_adj: i16,
    /// Process and cgroup v2 id of the victim. The tracepoint does not carry them; the OOM
    /// killer's SIGKILL to the victim, recorded just before (mm/oom_kill.c sends it before
    /// `mark_oom_victim`), does: [`crate::pipeline::Pipeline`] fills them in from it.
    pub victim_tgid: Option<u32>,
    pub victim_cgroup_id: Option<u64>,
    /// The memory limit that bounds the victim, as the kernel read it at the OOM (kernels
    /// whose `mark_victim` passes the task); filled in by the pipeline like the two above.
    pub victim_memcg: Option<MemcgAtOom>,
    /// The OOM killer's own context (`oom_kill_process()`, where a hook on it loads): which
    /// limit was hit, the victim's score; filled in by the pipeline like the above.
    pub oom_context: Option<OomContext>,
}

/// What `struct oom_control` said as the OOM killer picked its victim: the source of truth
/// for the OOM's scope where ctrace can read it (else the scope is inferred from figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OomContext {
    /// `None`: `oc->memcg` was NULL, the host ran out of memory. Else the memory cgroup whose
    /// limit was hit.
    pub memcg: Option<OomMemcg>,
    /// `oc->chosen_points`: the victim's badness (`oom_badness()`: pages, adjusted by
    /// `oom_score_adj`).
    pub points: Option<i64>,
    /// The victim's `oom_score_adj`.
    pub oom_score_adj: Option<i16>,
    pub trigger: Option<OomTrigger>,
    /// `oc->order`: the order of the allocation that failed.
    pub order: Option<i32>,
}

/// The memory cgroup whose limit an OOM hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OomMemcg {
    /// Its cgroup v2 id, when read.
    pub cgroup_id: Option<u64>,
    /// Levels above the victim's own memory cgroup (0: its own), when among its ancestors.
    pub depth: Option<u32>,
}

/// What made the kernel kill (`oc->constraint`, and `order` -1 for sysrq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OomTrigger {
    /// A memory cgroup's limit.
    Memcg,
    /// The whole system was out of memory.
    Global,
    /// The allocating task's cpuset had no memory left.
    Cpuset,
    /// The allocating task's memory policy (mbind) had no memory left.
    MemoryPolicy,
    /// Forced from sysrq (`order` -1).
    Sysrq,
}

impl OomTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memcg => "memcg",
            Self::Global => "global",
            Self::Cpuset => "cpuset",
            Self::MemoryPolicy => "memory_policy",
            Self::Sysrq => "sysrq",
        }
    }
}

impl OomContext {
    /// From the kernel's reading (`OomVictimTask`); `None` when it did not come from the OOM
    /// killer's context.
    pub fn from_kernel(v: &tracer_common::OomVictimTask) -> Option<Self> {
        use tracer_common::oom_context as c;
        let has = |f: u32| v.context_flags & f != 0;
        if !has(c::READ) {
            return None;
        }
        let memcg = (v.memcg_depth != tracer_common::MEMCG_HOST).then(|| OomMemcg {
            cgroup_id: has(c::MEMCG_ID).then_some(v.memcg_cgroup_id),
            depth: (v.memcg_depth < tracer_common::MEMCG_MAX_DEPTH).then_some(v.memcg_depth),
        });
        let trigger = match (has(c::TRIGGER), v.order, v.constraint) {
            (false, ..) => None,
            (true, -1, _) => Some(OomTrigger::Sysrq),
            (true, _, c::CONSTRAINT_MEMCG) => Some(OomTrigger::Memcg),
            (true, _, c::CONSTRAINT_NONE) => Some(OomTrigger::Global),
            (true, _, c::CONSTRAINT_CPUSET) => Some(OomTrigger::Cpuset),
            (true, _, c::CONSTRAINT_MEMORY_POLICY) => Some(OomTrigger::MemoryPolicy),
            (true, ..) => None,
        };
        Some(Self {
            memcg,
            points: has(c::POINTS).then_some(v.chosen_points),
            oom_score_adj: has(c::SCORE_ADJ)
                .then(|| i16::try_from(v.oom_score_adj).ok())
                .flatten(),
            trigger,
            order: has(c::TRIGGER).then_some(v.order),
        })
    }
}

/// A memory cgroup's counter as the kernel read it at the OOM: the one with the lowest limit
/// on the way from the victim's memory cgroup to the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemcgAtOom {
    /// Levels above the victim's own memory cgroup (0: its own).
    pub depth: u32,
    pub usage_bytes: u64,
    /// `None`: no limit anywhere up the tree.
    pub limit_bytes: Option<u64>,
    /// The counter's high-water mark (v1 `max_usage_in_bytes`, v2 `memory.peak`).
    pub peak_bytes: u64,
    /// Times the limit was hit (kept by the kernel for v1 only on recent kernels).
    pub failcnt: u64,
}

impl MemcgAtOom {
    /// From the kernel's page counts; `None` when the kernel could not read them.
    pub fn from_kernel(
        depth: u32,
        c: &tracer_common::MemcgCounter,
        page_size: u64,
    ) -> Option<Self> {
        if depth == tracer_common::MEMCG_UNREAD || depth >= tracer_common::MEMCG_MAX_DEPTH {
            return None;
        }
        let bytes = |pages: u64| pages.saturating_mul(page_size);
        Some(Self {
            depth,
            usage_bytes: bytes(c.usage_pages),
            // `PAGE_COUNTER_MAX` pages is the v1 files' "no limit": the same cut-off.
            limit_bytes: crate::cgroup::Limit::from_bytes(bytes(c.max_pages)).bytes(),
            peak_bytes: bytes(c.watermark_pages),
            failcnt: c.failcnt,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub cap: u32,
    /// 0 allowed, negative errno denied.
    pub ret: i32,
    pub cpu: u32,
    /// Incarnation of the kernel's slot on `cpu` that counted `total` (0: not known).
    pub generation: u32,
    /// Cumulative checks for (cgroup, pid, cap, verdict) on `cpu`.
    pub total: u64,
    /// Checks this record stands for. [`decode`] cannot know it (it needs the previous
    /// record of the same key) and leaves 0; [`crate::pipeline::Pipeline`] fills it in.
    pub count: u64,
    /// Nanoseconds from the previous record of the same key and CPU to this one: the time the
    /// `count` checks were made in (0 for a key's first record). Filled in like `count`.
    pub span_ns: u64,
}

impl Capability {
    pub fn allowed(&self) -> bool {
        self.ret == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupOp {
    Mkdir,
    Rmdir,
    Attach,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    pub op: CgroupOp,
    pub root: i32,
    pub level: i32,
    pub id: u64,
    pub pid: Option<u32>,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Exec(Exec),
    Exit(Exit),
    Fork(Fork),
    Signal(Signal),
    /// Boxed: the largest body by far, and the rarest; unboxed it made every `Event` 280 bytes
    /// instead of 144, copied as records move through the pipeline.
    OomVictim(Box<OomVictim>),
    Capability(Capability),
    Cgroup(Cgroup),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: u16,
    /// Nanoseconds since boot (CLOCK_BOOTTIME).
    pub boot_ns: u64,
    pub task: Task,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than the {need} bytes its kind needs")]
    Short { len: usize, need: usize },
    #[error("unknown event kind {0}")]
    UnknownKind(u16),
    #[error("record layout version {0} (this ctrace reads {LAYOUT_VERSION})")]
    Version(u8),
    #[error("kind {kind} declares {declared} bytes, expected {expected}")]
    SizeMismatch {
        kind: u16,
        declared: u32,
        expected: usize,
    },
    /// A field holds a value the kernel cannot produce: the record is corrupt (or from a
    /// mismatched eBPF object) and nothing in it can be trusted.
    #[error("{} record (kind {kind}) has impossible {field} {value}", kind_name(*.kind))]
    Impossible {
        kind: u16,
        field: &'static str,
        /// The field's value, widened (signed fields keep their sign).
        value: i64,
    },
}

/// Event kind names as used on the command line and in NDJSON.
pub fn kind_name(k: u16) -> &'static str {
    match k {
        kind::EXEC => "exec",
        kind::EXIT => "exit",
        kind::FORK => "fork",
        kind::SIGNAL => "signal",
        kind::OOM_VICTIM => "oom",
        kind::CAPABILITY => "capability",
        kind::CGROUP_MKDIR => "cgroup_mkdir",
        kind::CGROUP_RMDIR => "cgroup_rmdir",
        kind::CGROUP_ATTACH => "cgroup_attach",
        _ => "unknown",
    }
}

/// Read a `T` from the start of `buf` after checking the length.
fn read<T: Copy>(buf: &[u8]) -> Result<T, DecodeError> {
    if buf.len() < size_of::<T>() {
        return Err(DecodeError::Short {
            len: buf.len(),
            need: size_of::<T>(),
        });
    }
    // SAFETY: length checked above; `T` is one of the `repr(C)` integer-only records of
    // tracer-common, valid for any bit pattern; `read_unaligned` has no alignment needs.
    Ok(unsafe { std::ptr::read_unaligned(buf.as_ptr().cast::<T>()) })
}

/// Bytes up to the first NUL, as UTF-8 (lossy: kernel strings are untrusted).
pub fn c_str(bytes: &[u8]) -> String {
    // `CStr` looks for the NUL a word at a time.
    let s = std::ffi::CStr::from_bytes_until_nul(bytes).map_or(bytes, |c| c.to_bytes());
    // Valid UTF-8 (nearly always) is checked faster than it is taken apart.
    match std::str::from_utf8(s) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(s).into_owned(),
    }
}

fn bounded_str(bytes: &[u8], len: u32) -> String {
    let len = (len as usize).min(bytes.len());
    c_str(&bytes[..len])
}

/// Highest signal number (`SIGRTMAX` on x86_64; `_NSIG` is 64).
const SIG_MAX: i32 = 64;
/// Highest `enum trace_signal_result` (`TRACE_SIGNAL_LOSE_INFO`).
const SIGNAL_RESULT_MAX: i32 = 4;
/// Highest capability number a record may carry. The kernel's last is 40
/// (`CAP_CHECKPOINT_RESTORE`) today; newer ones may add more, but capability sets are 64-bit.
const CAP_MAX: u32 = 63;
/// `MAX_ERRNO`: negative values down to `-MAX_ERRNO` are errnos.
const MAX_ERRNO: i32 = 4095;

/// Reject field values that no kernel can produce. Only what is impossible is rejected, never
/// what is merely unusual: a field the kernel side could not read goes out zeroed (and counted
/// as a read error), so zero stays valid wherever the kernel's own value can be zero (a signal
/// number never is: the kernel side only emits signals userspace asked for, never 0); fields
/// whose validity flag is clear are not looked at; pids of 0 (the idle task), any exit status
/// and any OOM size are accepted.
fn check_fields(k: u16, body: &Body) -> Result<(), DecodeError> {
    let check = |ok: bool, field: &'static str, value: i64| {
        if ok {
            Ok(())
        } else {
            Err(DecodeError::Impossible {
                kind: k,
                field,
                value,
            })
        }
    };
    match body {
        Body::Signal(s) => {
            check((1..=SIG_MAX).contains(&s.sig), "sig", s.sig.into())?;
            check(
                (0..=SIGNAL_RESULT_MAX).contains(&s.result),
                "result",
                s.result.into(),
            )
        }
        Body::Capability(c) => {
            check(c.cap <= CAP_MAX, "cap", c.cap.into())?;
            check((-MAX_ERRNO..=0).contains(&c.ret), "ret", c.ret.into())
        }
        Body::Cgroup(c) => {
            check(c.root >= 0, "root", c.root.into())?;
            check(c.level >= 0, "level", c.level.into())
        }
        Body::Exec(_) | Body::Exit(_) | Body::Fork(_) | Body::OomVictim(_) => Ok(()),
    }
}

/// Decode one ring-buffer record.
pub fn decode(buf: &[u8]) -> Result<Event, DecodeError> {
    let hdr: EventHeader = read(buf)?;
    if hdr.version != LAYOUT_VERSION {
        return Err(DecodeError::Version(hdr.version));
    }
    let expected = match hdr.kind {
        kind::EXEC => size_of::<ExecEvent>(),
        kind::EXIT => size_of::<ExitEvent>(),
        kind::FORK => size_of::<ForkEvent>(),
        // Records of layouts before the fold are shorter, and still signals.
        kind::SIGNAL if hdr.size as usize == SIGNAL_EVENT_UNFOLDED_SIZE => {
            SIGNAL_EVENT_UNFOLDED_SIZE
        }
        kind::SIGNAL => size_of::<SignalEvent>(),
        kind::OOM_VICTIM => size_of::<OomVictimEvent>(),
        kind::CAPABILITY => size_of::<CapabilityEvent>(),
        kind::CGROUP_MKDIR | kind::CGROUP_RMDIR | kind::CGROUP_ATTACH => size_of::<CgroupEvent>(),
        k => return Err(DecodeError::UnknownKind(k)),
    };
    if hdr.size as usize != expected {
        return Err(DecodeError::SizeMismatch {
            kind: hdr.kind,
            declared: hdr.size,
            expected,
        });
    }
    if buf.len() < expected {
        return Err(DecodeError::Short {
            len: buf.len(),
            need: expected,
        });
    }
    let body = decode_body(hdr.kind, &buf[..expected])?;
    check_fields(hdr.kind, &body)?;
    Ok(Event {
        kind: hdr.kind,
        boot_ns: hdr.boot_ns,
        task: Task {
            tid: hdr.pid,
            pid: hdr.tgid,
            ppid: (hdr.flags & flags::PPID_VALID != 0).then_some(hdr.ppid),
            uid: hdr.uid,
            cgroup_id: hdr.cgroup_id,
            comm: c_str(&hdr.comm),
        },
        body,
    })
}

/// The body of a record of kind `kind_id` whose header and size were checked.
fn decode_body(kind_id: u16, buf: &[u8]) -> Result<Body, DecodeError> {
    Ok(match kind_id {
        kind::EXEC => {
            let e: ExecEvent = read(buf)?;
            Body::Exec(Exec {
                old_pid: e.old_pid,
                filename: bounded_str(&e.filename, e.filename_len),
            })
        }
        kind::EXIT => {
            let e: ExitEvent = read(buf)?;
            Body::Exit(Exit {
                status: (e.flags & exit_flags::CODE_VALID != 0).then_some(e.exit_code),
                group_dead: (e.flags & exit_flags::GROUP_DEAD_UNKNOWN == 0)
                    .then_some(e.flags & exit_flags::GROUP_DEAD != 0),
            })
        }
        kind::FORK => {
            let e: ForkEvent = read(buf)?;
            Body::Fork(Fork {
                child_pid: e.child_pid,
                child_comm: c_str(&e.child_comm),
            })
        }
        kind::SIGNAL => {
            // Zero-extended: the fold fields of a shorter (older) record read as not folded.
            let mut full = [0u8; size_of::<SignalEvent>()];
            let n = buf.len().min(full.len());
            full[..n].copy_from_slice(&buf[..n]);
            let e: SignalEvent = read(&full)?;
            let task = e.flags & signal_flags::TARGET_TASK != 0;
            Body::Signal(Signal {
                sig: e.sig,
                target_tgid: task.then_some(e.target_tgid),
                target_cgroup_id: task.then_some(e.target_cgroup_id),
                errno: e.errno,
                code: e.code,
                target_pid: e.target_pid,
                target_comm: c_str(&e.target_comm),
                group: e.group != 0,
                result: e.result,
                fold: Fold {
                    run: e.run,
                    cpu: e.cpu,
                    total: e.total,
                    prev_run: e.prev_run,
                    prev_total: e.prev_total,
                    prev_last_ns: e.prev_last_ns,
                    count: if e.run == 0 { 1 } else { e.total },
                    span_ns: 0,
                },
            })
        }
        kind::OOM_VICTIM => {
            let e: OomVictimEvent = read(buf)?;
            Body::OomVictim(Box::new(OomVictim {
                victim_pid: e.victim_pid,
                victim_comm: c_str(&e.victim_comm),
                victim_uid: e.victim_uid,
                total_vm_kb: e.total_vm_kb,
                anon_rss_kb: e.anon_rss_kb,
                file_rss_kb: e.file_rss_kb,
                shmem_rss_kb: e.shmem_rss_kb,
                pgtables_kb: e.pgtables_kb,
                oom_score_adj: e.oom_score_adj,
                victim_tgid: None,
                victim_cgroup_id: None,
                victim_memcg: None,
                oom_context: None,
            }))
        }
        kind::CAPABILITY => {
            let e: CapabilityEvent = read(buf)?;
            Body::Capability(Capability {
                cap: e.cap,
                ret: e.ret,
                cpu: e.cpu,
                generation: e.generation,
                total: e.total,
                count: 0,
                span_ns: 0,
            })
        }
        k => {
            let e: CgroupEvent = read(buf)?;
            Body::Cgroup(Cgroup {
                op: match k {
                    kind::CGROUP_MKDIR => CgroupOp::Mkdir,
                    kind::CGROUP_RMDIR => CgroupOp::Rmdir,
                    _ => CgroupOp::Attach,
                },
                root: e.root,
                level: e.level,
                id: e.id,
                pid: (k == kind::CGROUP_ATTACH).then_some(e.pid),
                path: bounded_str(&e.path, e.path_len),
            })
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    proptest::proptest! {
        /// The bytes before the first NUL (all without one), invalid UTF-8 replaced.
        #[test]
        fn c_str_is_the_text_before_the_first_nul(
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            ascii in "[ -~]{0,20}",
        ) {
            for b in [b, ascii.into_bytes()] {
                let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                proptest::prop_assert_eq!(c_str(&b), String::from_utf8_lossy(&b[..end]));
            }
        }
    }

    #[test]
    fn kernel_memcg_pages_become_bytes_and_no_limit_is_none() {
        let c = tracer_common::MemcgCounter {
            usage_pages: 25_600,
            max_pages: 25_600,
            watermark_pages: 25_601,
            failcnt: 3,
        };
        assert_eq!(
            MemcgAtOom::from_kernel(0, &c, 4096),
            Some(MemcgAtOom {
                depth: 0,
                usage_bytes: 100 << 20,
                limit_bytes: Some(100 << 20),
                peak_bytes: (100 << 20) + 4096,
                failcnt: 3,
            })
        );
        // PAGE_COUNTER_MAX: LONG_MAX / PAGE_SIZE pages.
        let unlimited = tracer_common::MemcgCounter {
            max_pages: i64::MAX as u64 / 4096,
            ..c
        };
        let m = MemcgAtOom::from_kernel(2, &unlimited, 4096).unwrap();
        assert_eq!((m.depth, m.limit_bytes), (2, None));
        let huge = tracer_common::MemcgCounter {
            max_pages: u64::MAX,
            ..c
        };
        assert_eq!(
            MemcgAtOom::from_kernel(0, &huge, 65_536)
                .unwrap()
                .limit_bytes,
            None
        );
        // Not read, or a depth the kernel side never writes.
        assert_eq!(
            MemcgAtOom::from_kernel(tracer_common::MEMCG_UNREAD, &c, 4096),
            None
        );
        assert_eq!(
            MemcgAtOom::from_kernel(tracer_common::MEMCG_MAX_DEPTH, &c, 4096),
            None
        );
    }

    pub fn as_bytes<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: the tracer-common records have no implicit padding, so every byte is
        // initialised.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    pub fn header(k: u16, size: usize) -> EventHeader {
        let mut comm = [0u8; 16];
        comm[..5].copy_from_slice(b"sleep");
        EventHeader {
            kind: k,
            version: LAYOUT_VERSION,
            flags: flags::PPID_VALID,
            size: size as u32,
            boot_ns: 1_000_000_123,
            pid: 101,
            tgid: 100,
            ppid: 1,
            uid: 0,
            cgroup_id: 4242,
            comm,
        }
    }

    pub fn exec_record(filename: &str) -> Vec<u8> {
        let mut f = [0u8; 256];
        f[..filename.len()].copy_from_slice(filename.as_bytes());
        as_bytes(&ExecEvent {
            hdr: header(kind::EXEC, size_of::<ExecEvent>()),
            old_pid: 100,
            filename_len: filename.len() as u32,
            filename: f,
        })
    }

    fn fixed<const N: usize>(s: &str) -> [u8; N] {
        let mut b = [0u8; N];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    }

    pub fn exit_event(exit_code: u32, flags: u32) -> ExitEvent {
        ExitEvent {
            hdr: header(kind::EXIT, size_of::<ExitEvent>()),
            exit_code,
            flags,
        }
    }

    pub fn fork_event(child_pid: u32) -> ForkEvent {
        ForkEvent {
            hdr: header(kind::FORK, size_of::<ForkEvent>()),
            child_pid,
            _pad: 0,
            child_comm: fixed("worker"),
        }
    }

    /// A BTF-typed `signal_generate` record (target task read).
    pub fn signal_event(sig: i32, result: i32) -> SignalEvent {
        SignalEvent {
            hdr: header(kind::SIGNAL, size_of::<SignalEvent>()),
            sig,
            errno: 0,
            code: 0x80,
            target_pid: 777,
            group: 1,
            result,
            target_comm: fixed("tail"),
            target_tgid: 770,
            flags: signal_flags::TARGET_TASK,
            target_cgroup_id: 4711,
            run: 0,
            cpu: 0,
            total: 0,
            prev_run: 0,
            _pad: 0,
            prev_total: 0,
            prev_last_ns: 0,
        }
    }

    pub fn oom_event() -> OomVictimEvent {
        OomVictimEvent {
            hdr: header(kind::OOM_VICTIM, size_of::<OomVictimEvent>()),
            victim_pid: 777,
            victim_uid: 1000,
            total_vm_kb: 1,
            anon_rss_kb: 2,
            file_rss_kb: 3,
            shmem_rss_kb: 4,
            pgtables_kb: 5,
            oom_score_adj: -999,
            _pad: [0; 6],
            victim_comm: fixed("tail"),
        }
    }

    pub fn cap_event(cap: u32, ret: i32) -> CapabilityEvent {
        CapabilityEvent {
            hdr: header(kind::CAPABILITY, size_of::<CapabilityEvent>()),
            cap,
            ret,
            cpu: 3,
            generation: 0,
            total: 17,
        }
    }

    pub fn cgroup_event(k: u16, root: i32, level: i32) -> CgroupEvent {
        let path = "/system.slice/docker-abc.scope";
        CgroupEvent {
            hdr: header(k, size_of::<CgroupEvent>()),
            root,
            level,
            id: 9001,
            pid: 555,
            path_len: path.len() as u32,
            path: fixed(path),
        }
    }

    const CGROUP_KINDS: [u16; 3] = [kind::CGROUP_MKDIR, kind::CGROUP_RMDIR, kind::CGROUP_ATTACH];

    /// A valid record of every kind, and the body it must decode to.
    fn every_kind() -> Vec<(u16, Vec<u8>, Body)> {
        let mut v = vec![
            (
                kind::EXEC,
                exec_record("/bin/sleep"),
                Body::Exec(Exec {
                    old_pid: 100,
                    filename: "/bin/sleep".into(),
                }),
            ),
            (
                kind::EXIT,
                as_bytes(&exit_event(
                    2 << 8,
                    exit_flags::CODE_VALID | exit_flags::GROUP_DEAD,
                )),
                Body::Exit(Exit {
                    status: Some(2 << 8),
                    group_dead: Some(true),
                }),
            ),
            (
                kind::FORK,
                as_bytes(&fork_event(4321)),
                Body::Fork(Fork {
                    child_pid: 4321,
                    child_comm: "worker".into(),
                }),
            ),
            (
                kind::SIGNAL,
                as_bytes(&signal_event(9, 0)),
                Body::Signal(Signal {
                    sig: 9,
                    target_tgid: Some(770),
                    target_cgroup_id: Some(4711),
                    errno: 0,
                    code: 0x80,
                    target_pid: 777,
                    target_comm: "tail".into(),
                    group: true,
                    result: 0,
                    fold: Fold::ONE,
                }),
            ),
            (
                kind::OOM_VICTIM,
                as_bytes(&oom_event()),
                Body::OomVictim(Box::new(OomVictim {
                    victim_pid: 777,
                    victim_comm: "tail".into(),
                    victim_uid: 1000,
                    total_vm_kb: 1,
                    anon_rss_kb: 2,
                    file_rss_kb: 3,
                    shmem_rss_kb: 4,
                    pgtables_kb: 5,
                    oom_score_adj: -999,
                    victim_tgid: None,
                    victim_cgroup_id: None,
                    victim_memcg: None,
                    oom_context: None,
                })),
            ),
            (
                kind::CAPABILITY,
                as_bytes(&cap_event(21, -1)),
                Body::Capability(Capability {
                    cap: 21,
                    ret: -1,
                    cpu: 3,
                    generation: 0,
                    total: 17,
                    count: 0,
                    span_ns: 0,
                }),
            ),
        ];
        for (k, op) in
            CGROUP_KINDS
                .into_iter()
                .zip([CgroupOp::Mkdir, CgroupOp::Rmdir, CgroupOp::Attach])
        {
            v.push((
                k,
                as_bytes(&cgroup_event(k, 0, 2)),
                Body::Cgroup(Cgroup {
                    op,
                    root: 0,
                    level: 2,
                    id: 9001,
                    pid: (op == CgroupOp::Attach).then_some(555),
                    path: "/system.slice/docker-abc.scope".into(),
                }),
            ));
        }
        v
    }

    fn impossible(kind: u16, field: &'static str, value: i64) -> Result<Event, DecodeError> {
        Err(DecodeError::Impossible { kind, field, value })
    }

    #[test]
    fn decodes_every_kind() {
        let kinds: Vec<u16> = every_kind().iter().map(|(k, ..)| *k).collect();
        assert_eq!(
            kinds,
            (1..kind::COUNT as u16).collect::<Vec<_>>(),
            "one per kind"
        );
        for (k, rec, body) in every_kind() {
            let ev = decode(&rec).unwrap_or_else(|e| panic!("{}: {e}", kind_name(k)));
            assert_eq!(ev.kind, k);
            assert_eq!(ev.boot_ns, 1_000_000_123);
            assert_eq!(
                ev.task,
                Task {
                    tid: 101,
                    pid: 100,
                    ppid: Some(1),
                    uid: 0,
                    cgroup_id: 4242,
                    comm: "sleep".into(),
                },
                "{}",
                kind_name(k)
            );
            assert_eq!(ev.body, body, "{}", kind_name(k));
        }
    }

    #[test]
    fn every_truncation_of_every_kind_is_short() {
        let hdr = size_of::<EventHeader>();
        for (k, rec, _) in every_kind() {
            for len in 0..rec.len() {
                let need = if len < hdr { hdr } else { rec.len() };
                assert_eq!(
                    decode(&rec[..len]),
                    Err(DecodeError::Short { len, need }),
                    "{} cut to {len}",
                    kind_name(k)
                );
            }
        }
    }

    /// Signal records of layouts before the fold (112 bytes) still decode, as one signal;
    /// a fold's fields are read from full records.
    #[test]
    fn signal_records_before_the_fold_decode_as_one_signal() {
        let mut ev = signal_event(15, 1);
        ev.hdr.size = SIGNAL_EVENT_UNFOLDED_SIZE as u32;
        ev.run = 9;
        let old = &as_bytes(&ev)[..SIGNAL_EVENT_UNFOLDED_SIZE];
        let Body::Signal(s) = decode(old).unwrap().body else {
            panic!("not a signal")
        };
        assert_eq!((s.sig, s.target_pid, s.fold), (15, 777, Fold::ONE));
        ev.hdr.size = size_of::<SignalEvent>() as u32;
        (
            ev.cpu,
            ev.total,
            ev.prev_run,
            ev.prev_total,
            ev.prev_last_ns,
        ) = (1, 5, 8, 70, 3);
        let Body::Signal(s) = decode(&as_bytes(&ev)).unwrap().body else {
            panic!("not a signal")
        };
        let want = Fold {
            run: 9,
            cpu: 1,
            total: 5,
            prev_run: 8,
            prev_total: 70,
            prev_last_ns: 3,
            count: 5,
            span_ns: 0,
        };
        assert_eq!(s.fold, want);
    }

    /// The header's kind alone says which layout follows: relabelled records are caught by
    /// their size, except between kinds of one size (fork and capability; the cgroup kinds),
    /// where the field checks are the only line left.
    #[test]
    fn relabelled_records() {
        let size = |k: u16| every_kind().into_iter().find(|r| r.0 == k).unwrap().1.len();
        for (from, rec, _) in every_kind() {
            for to in 1..kind::COUNT as u16 {
                let mut buf = rec.clone();
                buf[..2].copy_from_slice(&to.to_ne_bytes());
                let got = decode(&buf);
                if size(to) != rec.len() {
                    assert_eq!(
                        got,
                        Err(DecodeError::SizeMismatch {
                            kind: to,
                            declared: rec.len() as u32,
                            expected: size(to),
                        })
                    );
                } else if let Ok(ev) = got {
                    assert_eq!(ev.kind, to, "{} as {}", kind_name(from), kind_name(to));
                }
            }
        }
        // A fork record read as a capability check: its child pid is no capability.
        let mut buf = as_bytes(&fork_event(4321));
        buf[..2].copy_from_slice(&kind::CAPABILITY.to_ne_bytes());
        assert_eq!(decode(&buf), impossible(kind::CAPABILITY, "cap", 4321));
    }

    #[test]
    fn rejects_impossible_values() {
        let sig = |sig| decode(&as_bytes(&signal_event(sig, 0)));
        for v in [0, -1, 65, 128, i32::MIN, i32::MAX] {
            assert_eq!(sig(v), impossible(kind::SIGNAL, "sig", v.into()));
        }
        let result = |result| decode(&as_bytes(&signal_event(9, result)));
        for v in [-1, 5, i32::MIN, i32::MAX] {
            assert_eq!(result(v), impossible(kind::SIGNAL, "result", v.into()));
        }
        // A classic-tracepoint record (no target task) is checked just the same.
        let classic = SignalEvent {
            flags: 0,
            ..signal_event(0, 0)
        };
        assert_eq!(
            decode(&as_bytes(&classic)),
            impossible(kind::SIGNAL, "sig", 0)
        );
        let cap = |cap, ret| decode(&as_bytes(&cap_event(cap, ret)));
        for v in [64, 1000, u32::MAX] {
            assert_eq!(cap(v, 0), impossible(kind::CAPABILITY, "cap", v.into()));
        }
        for v in [1, 13, -4096, i32::MIN, i32::MAX] {
            assert_eq!(cap(0, v), impossible(kind::CAPABILITY, "ret", v.into()));
        }
        for k in CGROUP_KINDS {
            let cg = |root, level| decode(&as_bytes(&cgroup_event(k, root, level)));
            for v in [-1, i32::MIN] {
                assert_eq!(cg(v, 0), impossible(k, "root", v.into()));
                assert_eq!(cg(0, v), impossible(k, "level", v.into()));
            }
        }
    }

    #[test]
    fn accepts_boundary_values() {
        for sig in [1, 9, 15, 31, 32, 34, 63, 64] {
            assert!(
                decode(&as_bytes(&signal_event(sig, 0))).is_ok(),
                "sig {sig}"
            );
        }
        for result in 0..=4 {
            assert!(
                decode(&as_bytes(&signal_event(9, result))).is_ok(),
                "result {result}"
            );
        }
        for cap in [0, 21, 40, 41, 63] {
            for ret in [0, -1, -13, -4095] {
                assert!(
                    decode(&as_bytes(&cap_event(cap, ret))).is_ok(),
                    "cap {cap} ret {ret}"
                );
            }
        }
        for k in CGROUP_KINDS {
            for (root, level) in [(0, 0), (1, 1), (i32::MAX, i32::MAX)] {
                assert!(
                    decode(&as_bytes(&cgroup_event(k, root, level))).is_ok(),
                    "{} root {root} level {level}",
                    kind_name(k)
                );
            }
        }
    }

    /// What is odd but possible, or not claimed valid by its flag, is never rejected.
    #[test]
    fn accepts_odd_but_possible_values() {
        // The idle task: tid and tgid 0; an unread parent, whatever the ppid field holds.
        let mut idle = fork_event(2);
        idle.hdr.pid = 0;
        idle.hdr.tgid = 0;
        idle.hdr.flags = 0;
        idle.hdr.ppid = u32::MAX;
        let ev = decode(&as_bytes(&idle)).unwrap();
        assert_eq!((ev.task.tid, ev.task.pid, ev.task.ppid), (0, 0, None));
        // Any exit status, read or not.
        for fl in [0, exit_flags::CODE_VALID] {
            let Body::Exit(e) = decode(&as_bytes(&exit_event(u32::MAX, fl))).unwrap().body else {
                panic!("not an exit")
            };
            assert_eq!(e.status, (fl != 0).then_some(u32::MAX));
        }
        // Target fields without TARGET_TASK are not looked at.
        let classic = SignalEvent {
            flags: 0,
            target_tgid: u32::MAX,
            target_cgroup_id: u64::MAX,
            target_pid: 0,
            errno: i32::MIN,
            code: i32::MIN,
            group: -1,
            ..signal_event(64, 4)
        };
        let Body::Signal(s) = decode(&as_bytes(&classic)).unwrap().body else {
            panic!("not a signal")
        };
        assert_eq!((s.target_tgid, s.target_cgroup_id), (None, None));
        // Any OOM sizes and score.
        let oom = OomVictimEvent {
            victim_pid: 0,
            total_vm_kb: u64::MAX,
            anon_rss_kb: u64::MAX,
            file_rss_kb: 0,
            shmem_rss_kb: u64::MAX,
            pgtables_kb: u64::MAX,
            oom_score_adj: i16::MIN,
            ..oom_event()
        };
        assert!(decode(&as_bytes(&oom)).is_ok());
        // Any cpu and total of a capability record.
        let cap = CapabilityEvent {
            cpu: u32::MAX,
            total: 0,
            ..cap_event(63, -1)
        };
        assert!(decode(&as_bytes(&cap)).is_ok());
    }

    #[test]
    fn impossible_values_say_what_and_where() {
        assert_eq!(
            decode(&as_bytes(&signal_event(0, 0)))
                .unwrap_err()
                .to_string(),
            "signal record (kind 4) has impossible sig 0"
        );
        assert_eq!(
            decode(&as_bytes(&cap_event(0, 1))).unwrap_err().to_string(),
            "capability record (kind 6) has impossible ret 1"
        );
    }

    /// Impossible records are counted and skipped, never fatal: the next one decodes.
    #[test]
    fn pipeline_counts_and_skips_impossible_records() {
        let mut p = crate::pipeline::Pipeline::new();
        assert!(p.ingest(&as_bytes(&cap_event(64, 0))).is_none());
        assert!(p.ingest(&as_bytes(&signal_event(9, 5))).is_none());
        assert_eq!(p.decode_errors, 2);
        assert!(p.ingest(&as_bytes(&cap_event(63, 0))).is_some());
        assert_eq!(p.decode_errors, 2);
        // Counted under the kind their header names.
        assert_eq!(p.decode_errors_by_kind[usize::from(kind::CAPABILITY)], 1);
        assert_eq!(p.decode_errors_by_kind[usize::from(kind::SIGNAL)], 1);
    }

    #[test]
    fn decodes_exec() {
        let ev = decode(&exec_record("/bin/sleep")).unwrap();
        assert_eq!(ev.task.pid, 100);
        assert_eq!(ev.task.tid, 101);
        assert_eq!(ev.task.ppid, Some(1));
        assert_eq!(ev.task.comm, "sleep");
        assert_eq!(ev.task.cgroup_id, 4242);
        assert_eq!(
            ev.body,
            Body::Exec(Exec {
                old_pid: 100,
                filename: "/bin/sleep".into()
            })
        );
    }

    #[test]
    fn oom_context_from_the_kernels_reading() {
        use tracer_common::{oom_context as c, MemcgCounter, OomVictimTask, MEMCG_HOST};
        let task = OomVictimTask {
            tgid: 7,
            memcg_depth: 1,
            cgroup_id: 70,
            boot_ns: 1,
            memcg: MemcgCounter::default(),
            context_flags: 0,
            order: 0,
            constraint: c::CONSTRAINT_MEMCG,
            oom_score_adj: -300,
            chosen_points: 1234,
            memcg_cgroup_id: 69,
        };
        // Read at mark_victim, not from the OOM killer's context: none.
        assert_eq!(OomContext::from_kernel(&task), None);
        let all = c::READ | c::POINTS | c::SCORE_ADJ | c::TRIGGER | c::MEMCG_ID;
        let ctx = OomContext::from_kernel(&OomVictimTask {
            context_flags: all,
            ..task
        })
        .unwrap();
        assert_eq!(
            ctx,
            OomContext {
                memcg: Some(OomMemcg {
                    cgroup_id: Some(69),
                    depth: Some(1)
                }),
                points: Some(1234),
                oom_score_adj: Some(-300),
                trigger: Some(OomTrigger::Memcg),
                order: Some(0),
            }
        );
        // Host-wide, forced from sysrq; what was not read is unknown, not 0.
        let ctx = OomContext::from_kernel(&OomVictimTask {
            context_flags: c::READ | c::TRIGGER,
            memcg_depth: MEMCG_HOST,
            order: -1,
            constraint: c::CONSTRAINT_NONE,
            ..task
        })
        .unwrap();
        assert_eq!(ctx.memcg, None);
        assert_eq!(ctx.trigger, Some(OomTrigger::Sysrq));
        assert_eq!((ctx.points, ctx.oom_score_adj), (None, None));
        let global = OomContext::from_kernel(&OomVictimTask {
            context_flags: c::READ | c::TRIGGER,
            constraint: c::CONSTRAINT_NONE,
            ..task
        })
        .unwrap();
        assert_eq!(global.trigger, Some(OomTrigger::Global));
        assert_eq!(global.memcg.unwrap().cgroup_id, None);
    }

    #[test]
    fn decodes_exit_status() {
        let rec = |code, fl| {
            as_bytes(&ExitEvent {
                hdr: header(kind::EXIT, size_of::<ExitEvent>()),
                exit_code: code,
                flags: fl,
            })
        };
        let valid = exit_flags::CODE_VALID | exit_flags::GROUP_DEAD;
        let Body::Exit(e) = decode(&rec(3 << 8, valid)).unwrap().body else {
            panic!("not an exit")
        };
        assert_eq!(
            (e.code(), e.signal(), e.group_dead),
            (Some(3), None, Some(true))
        );
        let Body::Exit(e) = decode(&rec(9, valid)).unwrap().body else {
            panic!("not an exit")
        };
        assert_eq!((e.code(), e.signal()), (Some(137), Some(9)));
        let Body::Exit(e) = decode(&rec(0x86, valid)).unwrap().body else {
            panic!("not an exit")
        };
        assert_eq!(
            (e.code(), e.signal(), e.core_dumped()),
            (Some(134), Some(6), true)
        );
        let Body::Exit(e) = decode(&rec(9, 0)).unwrap().body else {
            panic!("not an exit")
        };
        assert_eq!(
            (e.status, e.code(), e.group_dead),
            (None, None, Some(false))
        );
        // A kernel whose tracepoint lacks the field: unknown, not false.
        let Body::Exit(e) = decode(&rec(
            9,
            exit_flags::CODE_VALID | exit_flags::GROUP_DEAD_UNKNOWN,
        ))
        .unwrap()
        .body
        else {
            panic!("not an exit")
        };
        assert_eq!((e.code(), e.group_dead), (Some(137), None));
    }

    #[test]
    fn rejects_short_unknown_and_mismatched() {
        let good = exec_record("/x");
        assert!(matches!(
            decode(&[]),
            Err(DecodeError::Short { len: 0, .. })
        ));
        assert!(matches!(
            decode(&good[..40]),
            Err(DecodeError::Short { .. })
        ));
        assert!(matches!(
            decode(&good[..good.len() - 1]),
            Err(DecodeError::Short { .. })
        ));
        let mut unknown = good.clone();
        unknown[0] = 200;
        assert_eq!(decode(&unknown), Err(DecodeError::UnknownKind(200)));
        let mut wrong_size = good.clone();
        wrong_size[4] = 1;
        assert!(matches!(
            decode(&wrong_size),
            Err(DecodeError::SizeMismatch { .. })
        ));
        let mut version = good.clone();
        version[2] = 99;
        assert_eq!(decode(&version), Err(DecodeError::Version(99)));
    }

    #[test]
    fn lossy_strings_and_bounded_lengths() {
        let mut rec = exec_record("/bin/\u{1b}[31mred");
        // filename_len larger than the buffer must not read past it.
        let off = size_of::<EventHeader>() + 4;
        rec[off..off + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        // invalid UTF-8 in comm
        rec[40] = 0xff;
        let ev = decode(&rec).unwrap();
        assert!(ev.task.comm.starts_with('\u{fffd}'));
        let Body::Exec(e) = ev.body else { panic!() };
        assert_eq!(e.filename, "/bin/\u{1b}[31mred");
    }

    proptest::proptest! {
        /// Field checks accept exactly the values the kernel can produce.
        #[test]
        fn signal_accepted_iff_possible(
            sig in proptest::prop_oneof![-2i32..70, proptest::num::i32::ANY],
            result in proptest::prop_oneof![-2i32..8, proptest::num::i32::ANY],
        ) {
            let ok = decode(&as_bytes(&signal_event(sig, result))).is_ok();
            proptest::prop_assert_eq!(ok, (1..=64).contains(&sig) && (0..=4).contains(&result));
        }

        #[test]
        fn capability_accepted_iff_possible(
            cap in proptest::prop_oneof![0u32..70, proptest::num::u32::ANY],
            ret in proptest::prop_oneof![-4100i32..4, proptest::num::i32::ANY],
        ) {
            let ok = decode(&as_bytes(&cap_event(cap, ret))).is_ok();
            proptest::prop_assert_eq!(ok, cap <= 63 && (-4095..=0).contains(&ret));
        }

        #[test]
        fn cgroup_accepted_iff_possible(
            k in 7u16..=9,
            root in proptest::prop_oneof![-2i32..3, proptest::num::i32::ANY],
            level in proptest::prop_oneof![-2i32..3, proptest::num::i32::ANY],
        ) {
            let ok = decode(&as_bytes(&cgroup_event(k, root, level))).is_ok();
            proptest::prop_assert_eq!(ok, root >= 0 && level >= 0);
        }

        /// Fuzz: arbitrary bytes, and valid headers of every kind followed by arbitrary bodies
        /// of arbitrary length, decode or fail cleanly.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_with_valid_header_never_panics(
            k in 0u16..12,
            size in 0u32..700,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..700),
        ) {
            let mut buf = as_bytes(&header(k, size as usize));
            buf.extend_from_slice(&body);
            if let Ok(ev) = decode(&buf) {
                proptest::prop_assert_eq!(ev.kind, k);
                proptest::prop_assert!(buf.len() >= size as usize);
            }
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let seeds = [exec_record("/bin/true"), exec_record("")];
        let mut state = 0x9e37_79b9u32;
        for i in 0..20_000 {
            let mut buf = seeds[i % 2].clone();
            for _ in 0..(i % 7) {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let pos = state as usize % buf.len();
                buf[pos] = (state >> 24) as u8;
            }
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            if i % 5 == 0 {
                buf.truncate(state as usize % (buf.len() + 1));
            }
            // Any kind number with a matching size must decode or fail cleanly.
            if i % 11 == 0 && buf.len() >= 2 {
                buf[0] = (i % 12) as u8;
            }
            let _ = decode(&buf);
        }
    }
}
