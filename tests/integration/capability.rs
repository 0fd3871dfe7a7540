//! cap_capable: denials in a container, and in-kernel folding of a burst with exact counts.

use std::{ffi::CString, time::Duration};

use ctrace_tests::{cgroup_id_of, get, require, require_docker, DockerContainer, TempDir, Watch};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn denied_chown_in_a_cap_drop_all_container() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let w = Watch::start(&bin, &["--events", "capability,exec"]);
    let c = DockerContainer::run(
        "ctrace-it-capdrop",
        &["--cap-drop", "ALL"],
        &["chown", "1", "/tmp"],
    );
    assert_eq!(
        c.wait(Duration::from_secs(30)),
        1,
        "chown fails without CAP_CHOWN"
    );
    let chown = w.wait_for("exec of chown in the container", WAIT, |v| {
        v["type"] == "exec" && v["filename"] == "/bin/chown"
    });
    let cap = w.wait_for("denied CAP_CHOWN", WAIT, |v| {
        v["type"] == "capability" && v["capability"] == "CAP_CHOWN" && v["verdict"] == "denied"
    });
    assert_eq!(
        get(&cap, "process.pid"),
        get(&chown, "process.pid"),
        "{cap}"
    );
    assert_eq!(cap["cgroup_id"], chown["cgroup_id"]);
    assert_eq!(cap["cap"], 0);
    assert!(cap["ret"].as_i64().unwrap() < 0);
    assert!(cap["count"].as_u64().unwrap() >= 1);
    w.stop();
}

/// `capget`/`capset` structures (include/uapi/linux/capability.h, version 3).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_CHOWN: u32 = 0;

/// Fork a child that drops CAP_CHOWN from its effective set and calls chown `n` times on a
/// root-owned file: `n` denied checks from one process. Returns the child's pid once it exited.
fn chown_burst(path: &std::path::Path, n: u32) -> u32 {
    chown_child(path, n, true)
}

/// Fork a child that calls chown `n` times on a root-owned file: denied checks when `deny`
/// (it drops CAP_CHOWN first), else allowed ones (it gives the file to uid 1 and back).
/// Returns the child's pid once it exited.
fn chown_child(path: &std::path::Path, n: u32, deny: bool) -> u32 {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: the child only makes raw syscalls and _exits; no allocation, no locks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: raw syscalls on valid buffers; then _exit.
        unsafe {
            if deny {
                let mut hdr = CapHeader {
                    version: CAPABILITY_VERSION_3,
                    pid: 0,
                };
                let mut data = [CapData::default(); 2];
                if libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) != 0 {
                    libc::_exit(10);
                }
                data[0].effective &= !(1 << CAP_CHOWN);
                if libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) != 0 {
                    libc::_exit(11);
                }
            }
            for i in 0..n {
                let owner = if deny { 1 } else { (i % 2) ^ 1 };
                if (libc::chown(cpath.as_ptr(), owner, u32::MAX) == 0) == deny {
                    libc::_exit(12);
                }
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "chown child status {status:#x}"
    );
    pid as u32
}

#[test]
fn a_burst_of_10000_denials_yields_few_records_whose_counts_add_up() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("capburst");
    let file = dir.0.join("owned-by-root");
    std::fs::write(&file, b"x").unwrap();
    let w = Watch::start(
        &bin,
        &["--events", "capability", "--cap-window", "1", "--host"],
    );
    let started = std::time::Instant::now();
    let pid = chown_burst(&file, 10_000);
    let burst = started.elapsed();
    let own_cgroup = cgroup_id_of(std::process::id()).expect("own cgroup");
    // The tail of the burst is flushed from the kernel map once the window has passed.
    let total = || -> (u64, usize) {
        let recs: Vec<_> = w
            .records()
            .into_iter()
            .filter(|v| {
                v["type"] == "capability"
                    && get(v, "process.pid") == pid
                    && v["capability"] == "CAP_CHOWN"
                    && v["verdict"] == "denied"
            })
            .collect();
        (
            recs.iter().map(|v| v["count"].as_u64().unwrap()).sum(),
            recs.len(),
        )
    };
    let deadline = std::time::Instant::now() + WAIT;
    while total().0 < 10_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (sum, records) = total();
    let (all, stderr) = w.stop();
    assert_eq!(sum, 10_000, "counts add up to the checks made");
    // The folding is the kernel's: it submitted far fewer capability records than the 10,000
    // checks (a fold in userspace would need every one of them in the ring buffer).
    let stats = all.last().expect("records");
    assert_eq!(stats["type"], "stats", "{stderr}");
    let produced = get(stats, "kinds.capability.produced")
        .as_u64()
        .unwrap_or_else(|| panic!("no capability counters: {stats}"));
    assert!(
        produced < 1_000,
        "{produced} capability records submitted by the kernel for 10,000 checks"
    );
    // Per CPU the child ran on, the kernel emits at its first check there and then at most
    // once per 1 s window (`--cap-window`); after each of those, at most one flush of the
    // tail. The burst takes milliseconds here, but a loaded machine can stretch it: the bound
    // follows its length.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let windows = burst.as_secs() as usize;
    let bound = 2 * cpus * (1 + windows);
    assert!(
        (1..=bound).contains(&records),
        "{records} records for one burst of {burst:?} on {cpus} CPUs (bound {bound})"
    );
    for v in all
        .iter()
        .filter(|v| v["type"] == "capability" && get(v, "process.pid") == pid)
    {
        assert_eq!(v["cgroup_id"], own_cgroup);
    }
}

/// ctrace's own capability checks (every read of its maps asks for CAP_BPF or CAP_PERFMON)
/// are filtered in the kernel: reported, they would be ctrace watching itself, a record or more
/// a second forever.
#[test]
fn ctraces_own_checks_are_not_reported() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("capself");
    let file = dir.0.join("owned-by-root");
    std::fs::write(&file, b"x").unwrap();
    let w = Watch::start(&bin, &["--events", "capability:all", "--host"]);
    // Let ctrace read its maps a few times (once a second), then a marker: a denied check of
    // the test's own, which comes after them.
    std::thread::sleep(Duration::from_millis(2500));
    let pid = chown_burst(&file, 1);
    w.wait_for("the marker's denied check", WAIT, |v| {
        v["type"] == "capability" && get(v, "process.pid") == pid
    });
    let me = w.pid();
    let (records, _) = w.stop();
    let own: Vec<_> = records
        .iter()
        .filter(|v| v["type"] == "capability" && get(v, "process.pid") == me)
        .collect();
    assert!(own.is_empty(), "ctrace reported its own checks: {own:?}");
    let filtered = get(
        records.last().unwrap(),
        "kinds.capability.filtered_in_kernel",
    );
    assert!(filtered.as_u64().unwrap_or(0) > 0, "{filtered}");
}

/// Allowed checks are traced for the journal, which keeps containers' only: once a record
/// places a cgroup on the host, the kernel drops its allowed checks (counted apart) rather
/// than fold and report them. Denials still come.
#[test]
fn allowed_checks_of_a_host_cgroup_stop_in_the_kernel_once_it_is_placed() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("caphost");
    let file = dir.0.join("owned-by-root");
    std::fs::write(&file, b"x").unwrap();
    let journal = dir.0.join("journal.db");
    // Capability checks in the journal: allowed ones are traced, but not shown.
    let w = Watch::start(
        &bin,
        &[
            "--events",
            "capability",
            "--host",
            "--journal",
            journal.to_str().unwrap(),
        ],
    );
    // The first process's allowed checks are reported (the cgroup is not placed yet) and
    // place it. The denied check after them is a later record: once it is out, so is the
    // mark (ctrace tells the kernel before it writes the records that prompted it).
    chown_child(&file, 2, false);
    let marker = chown_burst(&file, 1);
    w.wait_for("the first marker's denied check", WAIT, |v| {
        v["type"] == "capability" && get(v, "process.pid") == marker
    });
    // Each of these would be new slots of the kernel's fold, and records.
    for _ in 0..10 {
        chown_child(&file, 20, false);
    }
    let marker = chown_burst(&file, 1);
    w.wait_for("the second marker's denied check", WAIT, |v| {
        v["type"] == "capability" && get(v, "process.pid") == marker && v["verdict"] == "denied"
    });
    let (records, stderr) = w.stop();
    let stats = records.last().expect("records");
    assert_eq!(stats["type"], "stats", "{stderr}");
    let dropped = get(stats, "capability_checks.host_dropped")
        .as_u64()
        .unwrap_or_else(|| panic!("no host_dropped: {stats}"));
    assert!(
        dropped >= 10 * 20,
        "the 200 allowed checks after the mark were dropped in the kernel: {dropped}"
    );
    let filtered = get(stats, "kinds.capability.filtered_in_kernel").as_u64();
    assert!(filtered >= Some(dropped), "{filtered:?} < {dropped}");
}
