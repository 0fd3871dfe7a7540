//! What the kernel counts about a loaded program that aya 0.14's `ProgramInfo` does not
//! expose: `recursion_misses`, the runs the kernel skipped because a BPF program was already
//! running on that CPU (its recursion guard). A skipped run emits nothing and counts nothing
//! in ctrace's own counters, so it is read here, with `bpf(BPF_OBJ_GET_INFO_BY_FD)` on the
//! program's fd, and reported as a loss.

use std::{io, os::fd::AsRawFd as _, os::fd::BorrowedFd};

/// `BPF_OBJ_GET_INFO_BY_FD` (include/uapi/linux/bpf.h, `enum bpf_cmd`).
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// `struct bpf_prog_info` of include/uapi/linux/bpf.h as of Linux 5.16 and later (the
/// `__aligned_u64` pointers as `u64`). Only `id` and `recursion_misses` are read; every field
/// is declared so that `repr(C)` puts them where the kernel does (tested).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(dead_code)] // a kernel layout: written by the kernel, mostly unread
struct BpfProgInfo {
    type_: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
    ifindex: u32,
    gpl_compatible: u32,
    netns_dev: u64,
    netns_ino: u64,
    nr_jited_ksyms: u32,
    nr_jited_func_lens: u32,
    jited_ksyms: u64,
    jited_func_lens: u64,
    btf_id: u32,
    func_info_rec_size: u32,
    func_info: u64,
    nr_func_info: u32,
    nr_line_info: u32,
    line_info: u64,
    jited_line_info: u64,
    nr_jited_line_info: u32,
    line_info_rec_size: u32,
    jited_line_info_rec_size: u32,
    nr_prog_tags: u32,
    prog_tags: u64,
    run_time_ns: u64,
    run_cnt: u64,
    /// Since Linux 5.12.
    recursion_misses: u64,
    verified_insns: u32,
    attach_btf_obj_id: u32,
    attach_btf_id: u32,
    /// The kernel's `__u32 :32`. Declared so that `Default` zeroes it: left as padding it
    /// holds whatever the stack did, and the kernel refuses non-zero bytes it does not know
    /// (`E2BIG`).
    pad: u32,
}

/// `union bpf_attr`'s `info` member (the command's argument).
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// What [`read`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgStats {
    /// The program's kernel id (to check the answer is about the program asked for).
    pub id: u32,
    /// Runs skipped by the recursion guard; `None` when the kernel does not report them
    /// (older than 5.12: its `info_len` stops short of the field).
    pub recursion_misses: Option<u64>,
}

/// Interpret the kernel's answer: `info` as filled, `info_len` as the kernel set it (how much
/// of the struct it knows).
fn parse(info: &BpfProgInfo, info_len: u32) -> ProgStats {
    let end = std::mem::offset_of!(BpfProgInfo, recursion_misses) + 8;
    ProgStats {
        id: info.id,
        recursion_misses: (info_len as usize >= end).then_some(info.recursion_misses),
    }
}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` on a program's fd.
pub fn read(fd: BorrowedFd<'_>) -> io::Result<ProgStats> {
    let mut info = BpfProgInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: u32::try_from(fd.as_raw_fd()).map_err(|_| io::ErrorKind::InvalidInput)?,
        info_len: std::mem::size_of::<BpfProgInfo>() as u32,
        info: std::ptr::addr_of_mut!(info) as u64,
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix for this command, of the size passed;
    // `info` points to a zeroed buffer of `info_len` bytes that outlives the call; the kernel
    // writes at most `info_len` bytes there and updates `attr.info_len`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            std::ptr::addr_of_mut!(attr),
            std::mem::size_of::<InfoAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(parse(&info, attr.info_len))
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn layout_matches_the_kernels() {
        // Offsets from include/uapi/linux/bpf.h (pahole on a 6.x vmlinux agrees).
        assert_eq!(offset_of!(BpfProgInfo, id), 4);
        assert_eq!(offset_of!(BpfProgInfo, name), 64);
        assert_eq!(offset_of!(BpfProgInfo, btf_id), 128);
        assert_eq!(offset_of!(BpfProgInfo, run_time_ns), 192);
        assert_eq!(offset_of!(BpfProgInfo, run_cnt), 200);
        assert_eq!(offset_of!(BpfProgInfo, recursion_misses), 208);
        assert_eq!(offset_of!(BpfProgInfo, attach_btf_id), 224);
        assert_eq!(size_of::<BpfProgInfo>(), 232);
        assert_eq!(size_of::<InfoAttr>(), 16);
    }

    #[test]
    fn misses_only_when_the_kernel_reports_them() {
        let info = BpfProgInfo {
            id: 412,
            recursion_misses: 7,
            ..BpfProgInfo::default()
        };
        assert_eq!(
            parse(&info, 232),
            ProgStats {
                id: 412,
                recursion_misses: Some(7)
            }
        );
        assert_eq!(parse(&info, 216).recursion_misses, Some(7));
        // A 5.10 kernel's struct ends before the field.
        assert_eq!(parse(&info, 208).recursion_misses, None);
    }

    /// Load `r0 = 0; exit` as a socket filter (root only): a real program to ask about.
    fn load_trivial_program() -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd as _;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        // BPF_MOV64_IMM(R0, 0); BPF_EXIT_INSN()
        let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
        let license = b"GPL\0";
        #[repr(C)]
        struct LoadAttr {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
        }
        let attr = LoadAttr {
            prog_type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
            insn_cnt: 2,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
        };
        // SAFETY: a valid BPF_PROG_LOAD (5) attr prefix pointing at live buffers.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                5,
                std::ptr::addr_of!(attr),
                size_of::<LoadAttr>(),
            )
        };
        // SAFETY: a new fd the kernel just returned, owned by no one else.
        (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
    }

    #[test]
    fn reads_a_real_programs_info() {
        use std::os::fd::AsFd as _;
        let Some(fd) = load_trivial_program() else {
            return; // not root, or no bpf(2) here
        };
        let st = read(fd.as_fd()).expect("BPF_OBJ_GET_INFO_BY_FD");
        assert!(st.id > 0, "{st:?}");
        // Linux 5.12+ reports the field; this program never ran, so it never recursed.
        assert_eq!(st.recursion_misses, Some(0), "{st:?}");
    }

    #[test]
    fn a_bad_fd_is_an_error_not_a_zero() {
        // SAFETY: no process has this many fds open; borrow_raw only wraps the number.
        let fd = unsafe { BorrowedFd::borrow_raw(i32::MAX) };
        assert!(read(fd).is_err());
    }
}
