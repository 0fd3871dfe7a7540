//! cgroup paths (from the kernel's cgroup tracepoints and /proc/<pid>/cgroup): a container can
//! create cgroups with any name under its own delegated tree.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = tracer::container::cgroup_path::parse_cgroup_path(s);
        let _ = tracer::container::cgroup_path::parse_proc_cgroup(s);
    }
});
