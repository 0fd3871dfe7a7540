//! Strings from processes and containers are untrusted: a program named with terminal escape
//! sequences, a newline and invalid UTF-8, and a container label carrying the same, must reach
//! neither the terminal raw nor break NDJSON's one object per line. Nor may the invisible
//! characters that reorder, break or hide text (bidi controls, U+2028/U+2029, zero-width
//! characters), in a container's name or a program's comm.

use std::{
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ctrace_tests::{
    ctrace_status, eventually, get, require, require_docker, require_runc, Bounded as _,
    DockerContainer, RuncContainer, TempDir, Watch,
};
use serde_json::Value;

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

/// SIGINT, then a clean exit within [`WAIT`] (else the test fails, and the drop kills it).
fn stop(mut w: RawWatch) {
    let child = w.0.as_mut().expect("running");
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = eventually("the watch to exit after SIGINT", WAIT, || {
        child.try_wait().unwrap()
    });
    w.0 = None;
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

    let st = Command::new(&prog).status_bounded().unwrap();
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

/// The bidirectional controls (embeddings and overrides U+202A..U+202E, isolates
/// U+2066..U+2069), the line and paragraph separators (U+2028, U+2029) and a zero width space
/// (U+200B): invisible, yet they reorder, break or hide text on a terminal.
const INVISIBLE: [char; 12] = [
    '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{2028}', '\u{2029}', '\u{200b}',
];

/// Any character of the classes ctrace escapes for being invisible (a superset of
/// [`INVISIBLE`]), with its byte offset.
fn raw_invisible(out: &str) -> Vec<(usize, char)> {
    out.char_indices()
        .filter(|&(_, c)| {
            matches!(
                c as u32,
                0x202a..=0x202e
                    | 0x2066..=0x2069
                    | 0x200e
                    | 0x200f
                    | 0x061c
                    | 0x2028
                    | 0x2029
                    | 0x200b..=0x200d
                    | 0x2060..=0x2064
                    | 0x180e
                    | 0xfeff
            )
        })
        .collect()
}

/// `s` as the terminal escaper shows it, for strings of ASCII and [`INVISIBLE`]: `\u{202e}`.
fn shown(s: &str) -> String {
    s.chars()
        .map(|c| {
            if INVISIBLE.contains(&c) {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `s` as NDJSON writes it, for strings of ASCII and [`INVISIBLE`]: `\u202e`.
fn json_escaped(s: &str) -> String {
    s.chars()
        .map(|c| {
            if INVISIBLE.contains(&c) {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether some string anywhere in `v` (keys included) is `s`.
fn has_string(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|v| has_string(v, s)),
        Value::Object(o) => o.iter().any(|(k, v)| k == s || has_string(v, s)),
        _ => false,
    }
}

/// No raw control, bidi control, separator or zero-width character: `what` as it would reach a
/// terminal.
fn assert_inert(what: &str, out: &str) {
    assert_eq!(raw_controls(out.as_bytes()), [], "{what}:\n{out}");
    assert_eq!(raw_invisible(out), [], "{what}:\n{out}");
}

#[test]
fn bidi_controls_separators_and_zero_width_in_names_and_comms_are_shown_escaped() {
    let Some(bin) = require() else { return };
    if !require_runc() {
        return;
    }
    let all: String = INVISIBLE.iter().collect();
    // The container's name: Docker, containerd and runc all restrict their names and ids to
    // `[A-Za-z0-9_.-]`, but a Kubernetes container name is whatever the annotation says
    // (ctrace names a CRI container by it); a plain runc bundle can carry one.
    let name = format!("ctrace-it-{all}-inv");
    let pod = "ctrace-it-pod\u{202e}\u{2066}lave";
    // Comms: the kernel keeps 15 bytes, these characters are 3 bytes each, so four to a
    // program (`i1` + 12 bytes), and every one of them in some comm.
    let comms: Vec<String> = INVISIBLE
        .chunks(4)
        .enumerate()
        .map(|(i, cs)| format!("i{}{}", i + 1, cs.iter().collect::<String>()))
        .collect();
    assert!(comms.iter().all(|c| c.len() <= 15));
    let id = "ctrace-it-hostile-inv";
    // The container's init writes one script per comm, then becomes the first (a shell
    // running `sleep 300`, so `inspect` shows the name in its process tree).
    let c = RuncContainer::run_with_spec(
        None,
        id,
        &[
            "sh",
            "-c",
            r#"for n in "$@"; do printf '#!/bin/sh\nsleep "${1:-0}"\n' > "/tmp/$n"; chmod +x "/tmp/$n"; done; exec "/tmp/$1" 300"#,
            "sh",
            &comms[0],
            &comms[1],
            &comms[2],
        ],
        |spec| {
            spec["annotations"] = serde_json::json!({
                "io.kubernetes.pod.name": pod,
                "io.kubernetes.pod.namespace": "ctrace-it",
                "io.kubernetes.container.name": name,
                "org.ctrace.invisible": all,
            });
        },
    );
    let init = c.init_pid();
    eventually("the init to run the first script", WAIT, || {
        ctrace_tests::proc_bytes(init, "comm")
            .filter(|b| b.strip_suffix(b"\n") == Some(comms[0].as_bytes()))
    });

    let dir = TempDir::new("hostile-invisible");
    let console = raw_watch(&bin, &dir, "console", &["--events", "exec"]);
    let ndjson = raw_watch(&bin, &dir, "ndjson", &["--json", "--events", "exec"]);
    let json = Watch::start(&bin, &["--events", "exec"]);
    for comm in &comms {
        assert!(c.exec(&[&format!("/tmp/{comm}")]).success(), "{comm:?}");
    }

    // NDJSON, as read: the strings round-trip exactly.
    for comm in &comms {
        let exec = json.wait_for(&format!("exec of {comm:?}"), WAIT, |v| {
            v["type"] == "exec" && get(v, "process.comm") == comm.as_str()
        });
        assert_eq!(get(&exec, "container.name"), name.as_str(), "{exec}");
        assert_eq!(get(&exec, "container.id"), id, "{exec}");
        assert_eq!(
            get(&exec, "container.labels")["org.ctrace.invisible"],
            all.as_str(),
            "{exec}"
        );
        assert_eq!(exec["filename"], format!("/tmp/{comm}"), "{exec}");
    }
    let _ = json.stop();
    stop(console);
    stop(ndjson);

    // NDJSON, as written: every invisible character as a \u escape, lines that parse to the
    // original strings.
    let raw = String::from_utf8(std::fs::read(dir.0.join("ndjson.out")).unwrap())
        .expect("NDJSON is UTF-8");
    assert_inert("watch --json", &raw);
    assert!(raw.contains(&json_escaped(&name)), "{raw}");
    let mut seen = Vec::new();
    for l in raw.lines() {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"));
        if v["type"] == "exec" && get(&v, "container.id") == id {
            assert_eq!(get(&v, "container.name"), name.as_str(), "{l}");
            seen.push(get(&v, "process.comm").as_str().unwrap_or("?").to_owned());
        }
    }
    for comm in &comms {
        assert!(seen.contains(comm), "no exec of {comm:?} in:\n{raw}");
        assert!(
            raw.contains(&format!(r#""comm":"{}""#, json_escaped(comm))),
            "{raw}"
        );
    }

    // The terminal: the container's name and every comm, escaped.
    let text = String::from_utf8(std::fs::read(dir.0.join("console.out")).unwrap())
        .expect("console output is UTF-8");
    assert_inert("watch", &text);
    for comm in &comms {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("comm={}", shown(comm))))
            .unwrap_or_else(|| panic!("no escaped exec of {comm:?} in:\n{text}"));
        assert!(line.contains(&shown(&name)), "{line}");
        assert!(line.contains(&format!("/tmp/{}", shown(comm))), "{line}");
    }

    // `ps` and `inspect`, as text and as JSON; inspect finds the container by its name.
    let (code, stdout, stderr) = ctrace_status(&bin, &["ps"]);
    assert_eq!(code, Some(0), "ctrace ps: {stderr}");
    assert_inert("ps", &stdout);
    let row = stdout
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("{id} not in:\n{stdout}"));
    assert!(row.contains(&shown(&name)), "{row}");

    let (code, stdout, stderr) = ctrace_status(&bin, &["ps", "--json"]);
    assert_eq!(code, Some(0), "ctrace ps --json: {stderr}");
    assert_inert("ps --json", &stdout);
    let row: Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in:\n{stdout}"));
    assert_eq!(row["name"], name.as_str(), "{row}");
    assert_eq!(row["labels"]["org.ctrace.invisible"], all.as_str(), "{row}");

    let (code, stdout, stderr) = ctrace_status(&bin, &["inspect", &name]);
    assert_eq!(code, Some(0), "ctrace inspect: {stderr}");
    assert_inert("inspect", &stdout);
    assert_inert("inspect's stderr", &stderr);
    for part in [
        name.clone(),
        pod.to_owned(),
        format!("org.ctrace.invisible={all}"),
        format!("/tmp/{}", comms[0]),
    ] {
        assert!(
            stdout.contains(&shown(&part)),
            "{:?} not in:\n{stdout}",
            shown(&part)
        );
    }

    let (code, stdout, stderr) = ctrace_status(&bin, &["inspect", "--json", &name]);
    assert_eq!(code, Some(0), "ctrace inspect --json: {stderr}");
    assert_inert("inspect --json", &stdout);
    let v: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(v["identity"]["name"], name.as_str(), "{v}");
    assert!(has_string(&v, &comms[0]), "the init's comm: {v}");
    assert!(has_string(&v, pod), "{v}");

    // A pattern that names nothing is quoted back escaped too.
    let (code, _, stderr) = ctrace_status(&bin, &["inspect", &format!("{name}-none")]);
    assert_ne!(code, Some(0));
    assert_inert("inspect's error", &stderr);
    assert!(stderr.contains(&shown(&name)), "{stderr}");
    drop(c);
}
