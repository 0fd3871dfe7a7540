//! The config file: `ctrace agent --check-config` says whether a file (and the flags) would
//! run, and SIGHUP makes a running agent read its filter from the file again.

use std::{path::Path, time::Duration};

use ctrace_tests::{
    ctrace_bin, ctrace_status, eventually, get, require, require_runc, unavailable, RuncContainer,
    TempDir, Watch,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `--check-config` needs neither root nor eBPF: a good file is exit 0 with one line on
/// stdout; a bad one is exit 2 with the key and its line on stderr.
#[test]
fn check_config_validates_the_file_and_the_flags() {
    let Some(bin) = ctrace_bin() else {
        unavailable("no ctrace binary: set CTRACE_BIN or run `cargo xtask test`");
        return;
    };
    let dir = TempDir::new("config-check");
    let file = dir.0.join("ctrace.toml");
    let config = s(&file);
    std::fs::write(
        &file,
        "# the agent of a test\n\
         output = \"/var/log/ctrace/events.ndjson\"\n\
         rotate_size = \"100MiB\"\n\
         retention = \"3d\"\n\
         container = [\"web\", \"db\"]\n\
         metrics_addr = 9464\n",
    )
    .unwrap();
    let (code, out, err) = ctrace_status(
        &bin,
        &[
            "agent",
            "--config",
            config,
            "--check-config",
            "--retention",
            "1d",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(err, "");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with(&format!(
            "ctrace agent: configuration OK: {config} (5 keys; overridden by flags: retention); "
        )),
        "{out}"
    );
    for part in [
        "output /var/log/ctrace/events.ndjson",
        "showing container web,db",
        "metrics 127.0.0.1:9464",
    ] {
        assert!(out.contains(part), "{part}: {out}");
    }

    let bad = |text: &str, extra: &[&str]| {
        std::fs::write(&file, text).unwrap();
        let mut args = vec!["agent", "--config", config, "--check-config"];
        args.extend_from_slice(extra);
        let (code, out, err) = ctrace_status(&bin, &args);
        assert_eq!(code, Some(2), "{text}: {out}{err}");
        assert_eq!(out, "", "{text}");
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    assert_eq!(
        bad("host = true\n\nhots = true\n", &[]),
        format!("ctrace: error: config file {config}, line 3: unknown key `hots`\n")
    );
    assert_eq!(
        bad("host = true\nretention = 7\nhost_x = 1\n", &[]).trim_end(),
        format!("ctrace: error: config file {config}, line 3: unknown key `host_x`")
    );
    assert_eq!(
        bad("output = \"/tmp/x\"\nhost = \"yes\"\n", &[]),
        format!(
            "ctrace: error: config file {config}, line 2: `host` must be true or false, not \
             a string \"yes\"\n"
        )
    );
    let err = bad("retention = \"7 fortnights\"\n", &[]);
    assert!(
        err.starts_with(&format!(
            "ctrace: error: config file {config}, line 1: `retention`: invalid value '7 \
             fortnights'"
        )),
        "{err}"
    );
    // A flag wins over the file even when the file would be wrong for the flag's option:
    // the file is still checked.
    bad("rotate_keep = \"five\"\n", &["--rotate-keep", "3"]);
    // The file is fine, the options together are not.
    let err = bad("no_journal = true\n", &[]);
    assert!(err.contains("--no-journal needs --output FILE"), "{err}");

    let missing = dir.0.join("missing.toml");
    let (code, _, err) = ctrace_status(&bin, &["agent", "--config", s(&missing), "--check-config"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "ctrace: error: config file {}: cannot read it: ",
            s(&missing)
        )),
        "{err}"
    );
}

/// The execs of container `id` in an agent's NDJSON file.
fn execs_in(output: &Path, id: &str) -> usize {
    let text = std::fs::read_to_string(output).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("one JSON object per line"))
        .filter(|r| r["type"] == "exec" && get(r, "container.id") == id)
        .count()
}

/// Exec in `c` until its exec shows in `output`.
fn exec_until_written(c: &RuncContainer, output: &Path, what: &str) -> usize {
    eventually(what, WAIT, || {
        assert!(c.exec(&["true"]).success(), "runc exec in {}", c.id);
        let n = execs_in(output, &c.id);
        (n > 0).then_some(n)
    })
}

/// An agent configured by a file (its NDJSON output, its container filter) writes what the
/// file selects; after the file is rewritten and the agent gets SIGHUP, it writes what the new
/// file selects; a broken file on SIGHUP is a warning and changes nothing.
#[test]
fn sighup_reloads_the_container_filter_from_the_file() {
    let Some(bin) = require() else { return };
    if !require_runc() {
        return;
    }
    let a = RuncContainer::run(None, "ctrace-it-config-a", &["sleep", "300"]);
    let b = RuncContainer::run(None, "ctrace-it-config-b", &["sleep", "300"]);
    let dir = TempDir::new("config-reload");
    let output = dir.0.join("events.ndjson");
    let file = dir.0.join("ctrace.toml");
    let write = |container: &str| {
        std::fs::write(
            &file,
            format!(
                "events = \"exec\"\nno_journal = true\noutput = \"{}\"\ncontainer = \"{container}\"\n",
                s(&output)
            ),
        )
        .unwrap();
    };
    write(&a.id);
    let w = Watch::start_agent(&bin, &["--config", s(&file)]);

    // Only A: an exec in B first, then in A until A's shows; B's is not there.
    assert!(b.exec(&["true"]).success());
    exec_until_written(&a, &output, "an exec in A written under `container = A`");
    assert_eq!(execs_in(&output, &b.id), 0, "B is filtered out");

    // Now only B.
    write(&b.id);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(w.pid() as i32, libc::SIGHUP) };
    let line = format!("ctrace: reloaded {}: showing container {}", s(&file), b.id);
    eventually("the agent to reload its filter", WAIT, || {
        w.stderr().contains(&line).then_some(())
    });
    let before = execs_in(&output, &a.id);
    assert!(a.exec(&["true"]).success());
    exec_until_written(&b, &output, "an exec in B written under `container = B`");
    assert_eq!(
        execs_in(&output, &a.id),
        before,
        "A is filtered out after SIGHUP"
    );

    // A broken file: a warning naming the line, and the filter stays B's.
    std::fs::write(&file, "container = 5\n").unwrap();
    unsafe { libc::kill(w.pid() as i32, libc::SIGHUP) };
    let warning = format!(
        "ctrace: warning: not reloaded, the filter stays as it was: config file {}, line 1: \
         `container` must be",
        s(&file)
    );
    eventually("a warning on the broken file", WAIT, || {
        w.stderr().contains(&warning).then_some(())
    });
    let before_b = execs_in(&output, &b.id);
    assert!(a.exec(&["true"]).success());
    eventually("another exec in B written", WAIT, || {
        assert!(b.exec(&["true"]).success());
        (execs_in(&output, &b.id) > before_b).then_some(())
    });
    assert_eq!(execs_in(&output, &a.id), before);

    let (stdout, stderr) = w.stop_with(libc::SIGTERM);
    assert!(
        stdout.is_empty(),
        "the agent keeps stdout quiet: {stdout:?}"
    );
    assert!(!stderr.contains("ctrace: error"), "{stderr}");
    drop((a, b));
}
