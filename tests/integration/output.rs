//! `--output` files: an existing file is made 0600; a hard-linked file, a FIFO or a device
//! (unless `--output-special`) and a FIFO with no reader are refused before anything is
//! attached, each with a message naming the path.

use std::{
    os::unix::fs::{FileTypeExt as _, PermissionsExt as _},
    process::Command,
    time::{Duration, Instant},
};

use ctrace_tests::{require, Bounded as _, TempDir, Watch};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn output_to_a_hard_link_is_refused_and_the_target_left_alone() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("out-hardlink");
    let target = dir.0.join("precious");
    std::fs::write(&target, b"precious\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.0.join("events.ndjson");
    std::fs::hard_link(&target, &link).unwrap();
    let out = Command::new(&bin)
        .args(["watch", "--no-journal", "--json", "--output"])
        .arg(&link)
        .output_bounded()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write --output")
            && err.contains("hard link")
            && err.contains(link.to_str().unwrap()),
        "{err}"
    );
    assert!(!err.contains("ctrace: tracing"), "nothing attached: {err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious\n");
    assert_eq!(mode(&target), 0o644, "its mode is not changed either");
}

#[test]
fn an_existing_0644_output_file_is_made_0600_and_appended_to() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("out-existing");
    let path = dir.0.join("events.ndjson");
    std::fs::write(&path, b"{\"earlier\":true}\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let w = Watch::start(
        &bin,
        &[
            "--host",
            "--events",
            "exec",
            "--output",
            path.to_str().unwrap(),
        ],
    );
    // 0600 from the open on, not only at exit.
    assert_eq!(mode(&path), 0o600, "stderr:\n{}", w.stderr());
    let (_, stderr) = w.stop();
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{\"earlier\":true}\n"), "appended: {text}");
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap()).expect("JSON lines");
    assert_eq!(last["type"], "stats", "{stderr}");
}

/// A FIFO at `dir/events.fifo`.
fn mkfifo(dir: &TempDir) -> std::path::PathBuf {
    let fifo = dir.0.join("events.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    fifo
}

#[test]
fn a_fifo_or_a_device_is_refused_without_output_special() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("out-special");
    let fifo = mkfifo(&dir);
    for (path, what) in [
        (fifo.as_path(), "a FIFO"),
        (std::path::Path::new("/dev/null"), "a character device"),
    ] {
        let out = Command::new(&bin)
            .args(["watch", "--no-journal", "--json", "--output"])
            .arg(path)
            .output_bounded()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(what), "{err}");
        assert!(err.contains("--output-special"), "names the flag: {err}");
    }
    assert!(
        std::fs::symlink_metadata(&fifo).is_ok_and(|m| m.file_type().is_fifo()),
        "the FIFO is left as it was"
    );
}

#[test]
fn a_fifo_without_a_reader_fails_fast() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("out-fifo");
    let fifo = mkfifo(&dir);
    let start = Instant::now();
    let out = Command::new(&bin)
        .args([
            "watch",
            "--no-journal",
            "--json",
            "--output-special",
            "--output",
        ])
        .arg(&fifo)
        .output_bounded()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no reader on FIFO"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "did not hang: {:?}",
        start.elapsed()
    );
}
