//! `ctrace bench-floor`, the bench's reference probes: they load and attach on this kernel, the
//! recording one reads a record per event, the empty one none.

use std::process::Command;

use ctrace_tests::{require, unique_binary, Bounded as _, TempDir, Watch};

/// `ctrace floor: N records read`, its last line.
fn records_read(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("ctrace floor: ")?
                .strip_suffix(" records read")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of records read; stderr:\n{stderr}"))
}

#[test]
fn the_floor_reads_a_record_per_exec_and_the_empty_probe_none() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("floor");
    let sh = unique_binary(&dir, "/bin/sh", "ctsh_floor");
    let execs = 20;
    for (args, at_least) in [(&[][..], true), (&["--empty"][..], false)] {
        let floor = Watch::start_bench_floor(&bin, args);
        for _ in 0..execs {
            let status = Command::new(&sh)
                .args(["-c", "exit 0"])
                .status_bounded()
                .expect("the shell");
            assert!(status.success());
        }
        let (records, stderr) = floor.stop();
        assert!(records.is_empty(), "it printed on stdout: {records:?}");
        let read = records_read(&stderr);
        if at_least {
            // An exec, an exit and a fork each (other tests' processes add more).
            assert!(
                read >= 3 * execs,
                "{read} records for {execs} execs; {stderr}"
            );
        } else {
            assert_eq!(read, 0, "{stderr}");
        }
    }
}
