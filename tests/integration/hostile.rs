//! Strings from processes and containers are untrusted: a program named with terminal escape
//! sequences, a newline and invalid UTF-8, and a container label carrying the same, must reach
//! neither the terminal raw nor break NDJSON's one object per line.

use std::{
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ctrace_tests::{ctrace_status, get, require, require_docker, DockerContainer, TempDir, Watch};

const WAIT: Duration = Duration::from_secs(20);

/// OSC title + BEL, clear screen, a C1 CSI (U+009B), an invalid byte, a newline. The kernel
/// keeps the first 15 bytes as comm; the filename keeps all of it.
const HOSTILE: &[u8] = b"ct\x1b]0;x\x07\x1b[2J\xc2\x9b\xff\nz";

/// Bytes no terminal may receive from ctrace's escaped output: C0 controls but the line
/// feed ending each line, DEL, and the UTF-8 encoding of C1 controls.
fn raw_controls(out: &[u8]) -> Vec<(usize, u8)> {
    let mut bad: Vec<(usize, u8)> = out
        .iter()
        .enumerate()
        .filter(|&(_, &b)| (b < 0x20 && b != b'\n') || b == 0x7f)
        .map(|(i, &b)| (i, b))
        .collect();
    bad.extend(
        out.windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] == 0xc2 && (0x80..0xa0).contains(&w[1]))
            .map(|(i, w)| (i, w[1])),
    );
    bad
}

/// A watch child, killed if the test fails before stopping it.
struct RawWatch(Option<std::process::Child>);

impl Drop for RawWatch {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `ctrace watch --color never ARGS`, its stdout kept as bytes in `TAG.out`.
fn raw_watch(bin: &Path, dir: &TempDir, tag: &str, args: &[&str]) -> RawWatch {
    let out = std::fs::File::create(dir.0.join(format!("{tag}.out"))).unwrap();
    let err_path = dir.0.join(format!("{tag}.err"));
    let err = std::fs::File::create(&err_path).unwrap();
    let child = Command::new(bin)
        .args(["watch", "--no-journal", "--color", "never"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let child = RawWatch(Some(child));
    let start = Instant::now();
    while !std::fs::read_to_string(&err_path)
        .unwrap_or_default()
        .contains("ctrace: tracing")
    {
        assert!(start.elapsed() < WAIT, "console watch did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn stop(mut w: RawWatch) {
    let mut child = w.0.take().expect("running");
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "console watch exited with {status}");
}

#[test]
fn hostile_program_names_and_labels_reach_neither_terminal_nor_json_raw() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("hostile");
    let prog = dir.0.join(OsStr::from_bytes(HOSTILE));
    std::fs::copy("/bin/true", &prog).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let console = raw_watch(&bin, &dir, "console", &["--host", "--events", "exec"]);
    let ndjson = raw_watch(
        &bin,
        &dir,
        "ndjson",
        &["--json", "--host", "--events", "exec"],
    );
    let json = Watch::start(&bin, &["--host", "--events", "exec"]);

    let st = Command::new(&prog).status().unwrap();
    assert!(st.success());
    // A container whose label carries the same, and that runs a program named like it.
    let label = format!("org.ctrace.evil={}", String::from_utf8_lossy(HOSTILE));
    let c = DockerContainer::run(
        "ctrace-it-hostile",
        &["--label", &label],
        &[
            "sh",
            "-c",
            // A script (busybox picks its applet by name, so a copy would not run).
            "p=\"/tmp/$(printf 'cs\\033[2J\\007')\"; printf '#!/bin/sh\\nexec sleep 60\\n' > \"$p\"; chmod +x \"$p\"; exec \"$p\"",
        ],
    );

    // NDJSON: every line parsed as one object (the watch's reader panics otherwise), the
    // strings intact but for the invalid byte, which becomes U+FFFD.
    let exec = json.wait_for("exec of the hostile program", WAIT, |v| {
        v["type"] == "exec"
            && v["filename"]
                .as_str()
                .is_some_and(|f| f.contains("ct\u{1b}]0;x"))
    });
    let filename = exec["filename"].as_str().unwrap();
    assert!(
        filename.ends_with("ct\u{1b}]0;x\u{7}\u{1b}[2J\u{9b}\u{fffd}\nz"),
        "{filename:?}"
    );
    assert_eq!(
        get(&exec, "process.comm"),
        "ct\u{1b}]0;x\u{7}\u{1b}[2J\u{9b}\u{fffd}",
        "comm: the first 15 bytes"
    );
    let in_container = json.wait_for("exec in the labelled container", WAIT, |v| {
        v["type"] == "exec"
            && get(v, "container.name") == "ctrace-it-hostile"
            && v["filename"]
                .as_str()
                .is_some_and(|f| f.starts_with("/tmp/cs"))
    });
    assert_eq!(
        get(&in_container, "container.labels")["org.ctrace.evil"],
        String::from_utf8_lossy(HOSTILE).as_ref(),
        "{in_container}"
    );
    let (_, _) = json.stop();
    stop(console);
    stop(ndjson);

    // NDJSON as written: inert on a terminal too (C1 and bidi controls as \u escapes), and
    // one object per line.
    let raw = std::fs::read(dir.0.join("ndjson.out")).unwrap();
    assert_eq!(raw_controls(&raw), [], "{}", String::from_utf8_lossy(&raw));
    let raw = String::from_utf8(raw).expect("NDJSON is UTF-8");
    assert!(
        raw.contains("ct\\u001b]0;x\\u0007\\u001b[2J\\u009b\u{fffd}"),
        "{raw}"
    );
    for l in raw.lines() {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"));
    }

    // The terminal: escaped, one line per record.
    let out = std::fs::read(dir.0.join("console.out")).unwrap();
    assert_eq!(raw_controls(&out), [], "{}", String::from_utf8_lossy(&out));
    let text = String::from_utf8(out).expect("console output is UTF-8");
    let line = text
        .lines()
        .find(|l| l.contains("ct\\x1b]0;x\\x07\\x1b[2J\\u{9b}"))
        .unwrap_or_else(|| panic!("no escaped exec line in:\n{text}"));
    assert!(
        line.contains("\\nz"),
        "the newline stays inside the line: {line}"
    );
    assert!(
        text.lines().any(|l| l.contains("cs\\x1b[2J\\x07")),
        "the container's program, escaped: {text}"
    );

    // What lists and inspects containers shows the label escaped too.
    for args in [
        &["inspect", "ctrace-it-hostile"][..],
        &["ps"][..],
        &["inspect", "--json", "ctrace-it-hostile"][..],
    ] {
        let (code, stdout, stderr) = ctrace_status(&bin, args);
        assert_eq!(code, Some(0), "ctrace {args:?}: {stderr}");
        assert_eq!(
            raw_controls(stdout.as_bytes()),
            [],
            "ctrace {args:?}:\n{stdout}"
        );
        if args.contains(&"--json") {
            let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
            assert!(v.to_string().contains("org.ctrace.evil"), "{v}");
        }
    }
    drop(c);
}
