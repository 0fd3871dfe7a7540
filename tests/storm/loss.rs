//! Loss accounting: a stalled reader and a tiny ring buffer lose records, and the books
//! balance exactly: produced = delivered + lost, per kind, with every loss reported.

use std::{process::Command, time::Duration};

use ctrace_tests::{require, Bounded as _, Watch};

#[test]
fn stalled_reader_with_tiny_ring_counts_every_lost_record() {
    let Some(bin) = require() else { return };
    let _storm = ctrace_tests::storm();
    let w = Watch::start(
        &bin,
        &["--events", "exec,exit", "--ring-size", "4096", "--host"],
    );
    // Stall the reader, flood, resume.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(w.pid() as i32, libc::SIGSTOP) };
    let out = Command::new("/bin/sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 2000 ]; do /bin/true; i=$((i+1)); done",
        ])
        .status_bounded()
        .expect("flood");
    assert!(out.success());
    // SAFETY: as above.
    unsafe { libc::kill(w.pid() as i32, libc::SIGCONT) };
    // The overrun never stalls the reader: what happens after it is read live, before the
    // watch is stopped (and its final drain could hide a stall).
    let dir = ctrace_tests::TempDir::new("overrun");
    let after = ctrace_tests::unique_binary(&dir, "/bin/true", "ctafteroverrun");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = false;
    while !seen && std::time::Instant::now() < deadline {
        assert!(Command::new(&after)
            .status_bounded()
            .expect("run")
            .success());
        std::thread::sleep(Duration::from_millis(200));
        seen = w.records().iter().any(|v| {
            v["type"] == "exec" && ctrace_tests::get(v, "process.comm") == "ctafteroverrun"
        });
    }
    assert!(
        seen,
        "no exec read live after the overrun; stderr:\n{}",
        w.stderr()
    );
    let (records, _) = w.stop();
    let stats = records.last().expect("records");
    let books = ctrace_tests::assert_books_balance(&records, &["exec", "exit"]);
    for (kind, (produced, _, lost)) in ["exec", "exit"].iter().zip(books) {
        assert!(produced >= 2001, "{kind}: {produced} produced");
        assert!(lost > 0, "{kind}: a 4 KiB ring cannot hold 2000 records");
    }
    assert_eq!(stats["decode_errors"], 0);
}

/// `--ebpf-log`: the programs' own diagnostics (aya-log) say when they lose records; without
/// the flag they say nothing.
#[test]
fn ebpf_log_reports_lost_records_only_when_asked() {
    let Some(bin) = require() else { return };
    let _storm = ctrace_tests::storm();
    for (flag, expect_logs) in [(Some("--ebpf-log"), true), (None, false)] {
        let mut args = vec!["--events", "exec", "--ring-size", "4096", "--host"];
        args.extend(flag);
        let w = Watch::start(&bin, &args);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(w.pid() as i32, libc::SIGSTOP) };
        let st = Command::new("/bin/sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done",
            ])
            .status_bounded()
            .unwrap();
        assert!(st.success());
        // SAFETY: as above.
        unsafe { libc::kill(w.pid() as i32, libc::SIGCONT) };
        const LOG_LINE: &str = "ctrace: ebpf warn: ring buffer full: a record of kind 1 was lost";
        if expect_logs {
            ctrace_tests::eventually("the programs' log lines", Duration::from_secs(30), || {
                w.stderr().contains(LOG_LINE).then_some(())
            });
        } else {
            // The marker: an exec after the resume, read live. Log lines of the overrun would
            // have been read before it; none may come.
            let dir = ctrace_tests::TempDir::new("nolog");
            let marker = ctrace_tests::unique_binary(&dir, "/bin/true", "ctnologmark");
            ctrace_tests::eventually("the marker's exec", Duration::from_secs(30), || {
                assert!(Command::new(&marker).status_bounded().unwrap().success());
                w.records()
                    .iter()
                    .any(|v| {
                        v["type"] == "exec" && ctrace_tests::get(v, "process.comm") == "ctnologmark"
                    })
                    .then_some(())
            });
        }
        let (records, stderr) = w.stop();
        let lost = records.last().unwrap()["kinds"]["exec"]["lost_ringbuf_full"]
            .as_u64()
            .unwrap();
        assert!(lost > 0);
        let logged = stderr.lines().filter(|l| l.starts_with(LOG_LINE)).count() as u64;
        if expect_logs {
            // The log has its own 128 KiB ring: it may lose some of its own lines, never invent.
            assert!(logged > 0 && logged <= lost, "{logged} logged, {lost} lost");
        } else {
            assert_eq!(logged, 0, "{stderr}");
        }
    }
}
