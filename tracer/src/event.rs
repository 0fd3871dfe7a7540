//! Decoded, typed events. [`decode`] is pure and never panics: every record from the ring
//! buffer is checked for length, kind, version and declared size before it is read.

use std::mem::size_of;

use tracer_common::{
    exit_flags, flags, kind, signal_flags, CapabilityEvent, CgroupEvent, EventHeader, ExecEvent,
    ExitEvent, ForkEvent, OomVictimEvent, SignalEvent, LAYOUT_VERSION,
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
    /// The whole process (thread group) is gone.
    pub group_dead: bool,
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub cap: u32,
    /// 0 allowed, negative errno denied.
    pub ret: i32,
    pub cpu: u32,
    /// Cumulative checks for (cgroup, pid, cap, verdict) on `cpu`.
    pub total: u64,
    /// Checks this record stands for. [`decode`] cannot know it (it needs the previous
    /// record of the same key) and leaves 0; [`crate::pipeline::Pipeline`] fills it in.
    pub count: u64,
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
    OomVictim(OomVictim),
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
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn bounded_str(bytes: &[u8], len: u32) -> String {
    let len = (len as usize).min(bytes.len());
    c_str(&bytes[..len])
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
    let body = match hdr.kind {
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
                group_dead: e.flags & exit_flags::GROUP_DEAD != 0,
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
            let e: SignalEvent = read(buf)?;
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
            })
        }
        kind::OOM_VICTIM => {
            let e: OomVictimEvent = read(buf)?;
            Body::OomVictim(OomVictim {
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
            })
        }
        kind::CAPABILITY => {
            let e: CapabilityEvent = read(buf)?;
            Body::Capability(Capability {
                cap: e.cap,
                ret: e.ret,
                cpu: e.cpu,
                total: e.total,
                count: 0,
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
    };
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
        assert_eq!((e.code(), e.signal(), e.group_dead), (Some(3), None, true));
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
        assert_eq!((e.status, e.code(), e.group_dead), (None, None, false));
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
