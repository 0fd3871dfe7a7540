//! Golden captures: `tracer/tests/captures/*.capture` were recorded in the lab by
//! `ctrace record` (the integration test `replay::a_replayed_capture_prints_what_the_live_session_printed`
//! with `CTRACE_UPDATE_CAPTURES=1`: OOM kill, kills under Docker, containerd and runc, CPU
//! throttling, capability denials). Replaying one must print, byte for byte, the NDJSON the
//! live session printed (`.ndjson`) and the console lines kept beside it (`.txt`). These run
//! without root, a kernel or a container runtime.

use std::{path::Path, process::Command};

fn replay(capture: &Path, args: &[&str]) -> String {
    let (stdout, stderr) = replay_with_warnings(capture, args);
    assert!(
        !stderr.contains("did not match") && !stderr.contains("cut short"),
        "{stderr}"
    );
    stdout
}

/// A replay's output and its warnings (stderr).
fn replay_with_warnings(capture: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("replay")
        .arg(capture)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running ctrace replay");
    assert!(
        out.status.success(),
        "ctrace replay {}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first line that differs, for a readable failure.
fn assert_same(what: &str, got: &str, want: &str) {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{what}: line {} differs", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{what}: as many lines"
    );
    assert_eq!(got, want, "{what}");
}

/// The lab's golden capture: its path and its text, for tests that make captures from it.
fn lab_capture() -> (std::path::PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/captures/lab.capture");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

/// One line of a capture or of NDJSON output, parsed.
fn frame(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn captures() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/captures");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "capture"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no captures in {}", dir.display());
    v
}

#[test]
fn replayed_ndjson_is_what_the_live_session_printed() {
    for c in captures() {
        let want = std::fs::read_to_string(c.with_extension("ndjson")).unwrap();
        let got = replay(&c, &["--json", "--host"]);
        assert_same(&c.display().to_string(), &got, &want);
        // And it holds the incidents the capture was made for.
        for ty in [
            "\"type\":\"oom_kill\"",
            "\"type\":\"kill\"",
            "\"type\":\"cpu_throttle\"",
        ] {
            assert!(got.contains(ty), "{}: no {ty}", c.display());
        }
    }
}

#[test]
fn replayed_console_lines_are_the_golden_ones() {
    for c in captures() {
        let want = std::fs::read_to_string(c.with_extension("txt")).unwrap();
        let got = replay(&c, &["--color", "never", "--host"]);
        assert_same(&c.display().to_string(), &got, &want);
    }
}

#[test]
fn a_replay_can_show_one_container_only() {
    for c in captures() {
        let got = replay(&c, &["--json", "--container", "ctrace-it-replay-runc"]);
        let lines: Vec<serde_json::Value> = got
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.iter().any(|v| v["type"] == "kill"), "{got}");
        // Every record touches it: as the process's container, or as a signal's target.
        for v in &lines {
            let names = [&v["container"]["name"], &v["target"]["container"]["name"]];
            assert!(
                v["type"] == "stats" || names.iter().any(|n| *n == "ctrace-it-replay-runc"),
                "{v}"
            );
        }
    }
}

/// A session stopped while an OOM kill waited for its victim's exit: the incident is told at
/// the close, and the kernel's report it asks for is written after the `close` frame, where
/// the replay asks for it. Made from the golden capture, cut after the victim's record.
#[test]
fn an_incident_told_at_the_close_replays_in_step() {
    let (golden, text) = lab_capture();
    let lines: Vec<&str> = text.lines().collect();
    let at = |f: &str| {
        lines
            .iter()
            .position(|l| frame(l)["f"] == f)
            .unwrap_or_else(|| panic!("no {f} frame in {}", golden.display()))
    };
    let (victim, kmsg) = (at("victim"), at("kmsg"));
    // The victim's record, its answers (the kernel's victim map, attribution, memory
    // figures): up to the record after them, the victim's exit.
    let memory = victim + 2;
    assert_eq!(frame(lines[memory])["f"], "memory");
    let boot_ns = frame(lines[victim])["answer"]["boot_ns"].as_u64().unwrap() + 1;
    let mut header = frame(lines[0]);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, header: &serde_json::Value, close: bool| {
        let mut out = vec![header.to_string()];
        out.extend(lines[1..=memory].iter().map(|l| (*l).to_owned()));
        if close {
            out.push(format!(r#"{{"f":"close","boot_ns":{boot_ns}}}"#));
        }
        out.push(lines[kmsg].to_owned());
        out.push(r#"{"f":"end","stats":null}"#.to_owned());
        let path = dir.path().join(name);
        std::fs::write(&path, out.join("\n") + "\n").unwrap();
        path
    };

    header["version"] = 2.into();
    let v2 = write("v2.capture", &header, true);
    let got = replay(&v2, &["--json", "--host"]);
    let oom: Vec<serde_json::Value> = got
        .lines()
        .map(frame)
        .filter(|v| v["type"] == "oom_kill")
        .collect();
    assert_eq!(oom.len(), 1, "{got}");
    // The kernel's report was the answer: the tasks of the OOM domain are in the incident.
    assert!(oom[0]["tasks"].is_object(), "{}", oom[0]);

    // Version 1 had no `close`: the same session's report comes before the end, where its
    // replay did not ask for it; the replay says so.
    header["version"] = 1.into();
    let v1 = write("v1.capture", &header, false);
    let (_, stderr) = replay_with_warnings(&v1, &["--json", "--host"]);
    assert!(
        stderr.contains("2 answers of the capture did not match"),
        "{stderr}"
    );
}

/// A report's flush handles several records in one step, and the container updates the first
/// one's attribution brought (a rescan that found a container changed) were written live
/// between their answers. The replay applies them there, in step. Made from the golden
/// capture, with an update put after the first answer of its last report's flush.
#[test]
fn an_update_between_the_answers_of_one_flush_replays_in_step() {
    let (golden, text) = lab_capture();
    let lines: Vec<&str> = text.lines().collect();
    let kind = |i: usize| frame(lines[i])["f"].as_str().unwrap_or("").to_owned();
    // The last report whose flush answered two records or more.
    let answers = |report: usize| {
        (report + 1..lines.len())
            .take_while(|&i| !["raw", "record", "report", "end"].contains(&kind(i).as_str()))
            .filter(|&i| kind(i) == "attrs")
            .collect::<Vec<_>>()
    };
    let report = (0..lines.len())
        .rev()
        .find(|&i| kind(i) == "report" && answers(i).len() >= 2)
        .unwrap_or_else(|| panic!("no report flushing two records in {}", golden.display()));
    let first = answers(report)[0];
    let mut update = frame(lines[(0..lines.len()).find(|&i| kind(i) == "update").unwrap()]);
    update["reason"] = "changed".into();
    update["boot_ns"] = frame(lines[report])["boot_ns"].clone();
    let mut out: Vec<String> = lines[..=first].iter().map(|l| (*l).to_owned()).collect();
    out.push(update.to_string());
    out.extend(lines[first + 1..].iter().map(|l| (*l).to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("update.capture");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();

    // In step: no answer out of place (`replay` fails on the warning).
    let got = replay(&path, &["--json", "--host"]);
    let got: Vec<&str> = got.lines().collect();
    let at = got
        .iter()
        .position(|l| {
            let v = frame(l);
            v["type"] == "container_update" && v["reason"] == "changed"
        })
        .unwrap_or_else(|| panic!("the update was not replayed:\n{}", got.join("\n")));
    // Between the flush's first record and its second, as live.
    for near in [at - 1, at + 1] {
        let ty = frame(got[near])["type"].clone();
        assert!(ty == "capability" || ty == "signal", "{}", got[near]);
    }
    // The rest is the golden output.
    let mut rest = got.clone();
    rest.remove(at);
    let want = std::fs::read_to_string(golden.with_extension("ndjson")).unwrap();
    assert_same(
        "the replay around the update",
        &(rest.join("\n") + "\n"),
        &want,
    );
}
