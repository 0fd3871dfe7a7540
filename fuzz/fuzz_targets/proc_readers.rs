//! /proc/<pid>/stat and /proc/<pid>/status as ctrace reads them (a process picks its own comm,
//! which both files carry).
#![no_main]

use procfs::FromRead as _;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tracer::inspect::proctree::StatLine::from_read(data);
    let _ = tracer::inspect::caps::ProcStatus::from_read(data);
});
