//! The deployment artifacts in `deploy/`: the systemd unit passes `systemd-analyze verify`, the
//! Kubernetes manifests pass `kubernetes-validate`, every flag they pass to ctrace is accepted
//! by the binary, `--output -` puts the agent's NDJSON on stdout (as the DaemonSet runs it), and
//! the Grafana dashboard parses and asks only for metrics docs/metrics.md documents.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use ctrace_tests::{ctrace_bin, ctrace_status, require, unavailable, Bounded as _, TempDir, Watch};
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn deploy(rel: &str) -> PathBuf {
    workspace().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `tool` on PATH, else `None` (and the test is skipped, or fails under
/// `CTRACE_REQUIRE_INTEGRATION=1`: `cargo xtask lab-up` installs it).
fn tool(name: &str) -> Option<()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status_bounded()
        .is_ok_and(|s| s.success());
    if !found {
        unavailable(&format!(
            "{name} is not installed (run `cargo xtask lab-up`)"
        ));
    }
    found.then_some(())
}

/// The unit's `ExecStart=`, continuation lines joined: the program and its arguments.
fn exec_start(unit: &str) -> (String, Vec<String>) {
    let mut joined = String::new();
    let mut inside = false;
    for line in unit.lines() {
        let line = line.trim();
        if !inside {
            match line.strip_prefix("ExecStart=") {
                Some(rest) => {
                    inside = true;
                    joined.push_str(rest);
                }
                None => continue,
            }
        } else {
            joined.push(' ');
            joined.push_str(line);
        }
        match joined.strip_suffix('\\') {
            Some(stripped) => joined = stripped.to_owned(),
            None => break,
        }
    }
    assert!(!joined.is_empty(), "the unit has no ExecStart=");
    // The unit quotes nothing: words are split on white space.
    assert!(
        !joined.contains(['"', '\'', '$', '%']),
        "ExecStart= uses quoting or substitutions this test does not parse: {joined}"
    );
    let mut words = joined.split_whitespace().map(str::to_owned);
    let program = words.next().expect("ExecStart= names a program");
    (program, words.collect())
}

/// A block sequence of scalars under `key:` in a YAML file (`key:` on its own line, then
/// `- item` lines indented deeper; comments skipped), e.g. a container's `args` or `command`.
/// Enough for the manifests here, which use only plain and double-quoted scalars there.
fn yaml_list(yaml: &str, key: &str) -> Vec<String> {
    let mut lines = yaml.lines();
    let key_line = format!("{key}:");
    let indent = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no `{key}:` block in the manifest"));
        if line.trim() == key_line {
            break line.len() - line.trim_start().len();
        }
    };
    let mut items = Vec::new();
    for line in lines {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let deeper = line.len() - line.trim_start().len() > indent;
        match t.strip_prefix("- ") {
            Some(item) if deeper || line.len() - line.trim_start().len() == indent => {
                let item = item.trim();
                items.push(
                    item.strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .unwrap_or(item)
                        .to_owned(),
                );
            }
            _ => break,
        }
    }
    assert!(!items.is_empty(), "`{key}:` is empty");
    items
}

/// A flow sequence `key: ["a", "b"]` on one line, e.g. a container's `command`.
fn yaml_flow_list(yaml: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}:");
    let line = yaml
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no `{key}:` in the manifest"));
    line.trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("`{key}:` is not a one-line list: {line}"))
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .collect()
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy("kubernetes"))
        .expect("deploy/kubernetes")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "manifests in deploy/kubernetes: {files:?}"
    );
    files
}

#[test]
fn systemd_unit_verifies() {
    if tool("systemd-analyze").is_none() {
        return;
    }
    let Some(bin) = ctrace_bin() else {
        unavailable("no ctrace binary: set CTRACE_BIN or run `cargo xtask test`");
        return;
    };
    let unit = read(&deploy("ctrace.service"));
    let (program, _) = exec_start(&unit);
    assert_eq!(program, "/usr/local/bin/ctrace");
    // verify needs ExecStart='s program to exist: a copy of the binary under test stands in
    // for /usr/local/bin/ctrace, in a copy of the unit (the unit keeps its name: verify
    // checks it as ctrace.service).
    let dir = TempDir::new("deploy-unit");
    let copy = dir.0.join("ctrace");
    std::fs::copy(&bin, &copy).expect("copy the ctrace binary");
    let path = dir.0.join("ctrace.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/ctrace", copy.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output_bounded()
        .expect("running systemd-analyze verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "systemd-analyze verify {}: {}\n{stdout}{stderr}",
        path.display(),
        out.status
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stdout}{stderr}"
    );
    // Unknown keys or values are only warnings (exit 0): the unit must have none.
    assert!(
        stdout.trim().is_empty() && stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stdout}{stderr}"
    );
}

#[test]
fn kubernetes_manifests_validate() {
    // Run as a module of python3, not by its script: pip may put the script in a directory
    // that is not on PATH (pyenv, --user), while python3 always finds its modules.
    let found = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status_bounded()
        .is_ok_and(|s| s.success());
    if !found {
        unavailable("the kubernetes_validate module is not installed (run `cargo xtask lab-up`)");
        return;
    }
    // Strict (unknown fields are errors), against the oldest Kubernetes the DaemonSet's
    // fields need (securityContext.appArmorProfile: 1.30) and the newest the tool carries.
    for version in [Some("1.30.0"), None] {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "kubernetes_validate", "--strict"]);
        if let Some(v) = version {
            cmd.args(["--kubernetes-version", v]);
        }
        let out = cmd
            .args(manifests())
            .output_bounded()
            .expect("running kubernetes-validate");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "kubernetes-validate {version:?}: {}\n{stdout}{stderr}",
            out.status
        );
        assert!(
            out.status.success(),
            "kubernetes-validate failed:\n{stdout}{stderr}"
        );
        assert!(
            !stdout.contains("ERROR") && !stderr.contains("ERROR"),
            "kubernetes-validate:\n{stdout}{stderr}"
        );
    }
}

/// The DaemonSet's container: its command and args.
fn daemonset_argv() -> (Vec<String>, Vec<String>) {
    let ds = read(&deploy("kubernetes/daemonset.yaml"));
    (yaml_flow_list(&ds, "command"), yaml_list(&ds, "args"))
}

/// `ctrace ARGS` as the unit or the manifest runs it parses: with `--check-config` when the
/// binary has it, else by swapping `--status-interval` for `0s`, which the agent refuses only
/// after clap has accepted every argument (and loads nothing).
fn assert_accepted(bin: &Path, what: &str, args: &[String]) {
    assert_eq!(args.first().map(String::as_str), Some("agent"), "{what}");
    let (_, help, _) = ctrace_status(bin, &["agent", "--help"]);
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let expect = if help.contains("--check-config") {
        argv.push("--check-config");
        None
    } else {
        let mut kept = Vec::new();
        let mut words = argv.into_iter();
        while let Some(w) = words.next() {
            if w == "--status-interval" {
                words.next();
            } else if !w.starts_with("--status-interval=") {
                kept.push(w);
            }
        }
        argv = kept;
        argv.extend(["--status-interval", "0s"]);
        Some("--status-interval must be at least 1s")
    };
    let (code, stdout, stderr) = ctrace_status(bin, &argv);
    match expect {
        None => assert_eq!(
            code,
            Some(0),
            "{what}: ctrace {argv:?} refused:\n{stdout}{stderr}"
        ),
        Some(msg) => assert!(
            stderr.contains(msg),
            "{what}: ctrace {argv:?} did not get past argument parsing (expected {msg:?}):\n\
             {stdout}{stderr}"
        ),
    }
    eprintln!("{what}: ctrace {argv:?}: accepted");
}

#[test]
fn deployed_flags_are_accepted() {
    let Some(bin) = ctrace_bin() else {
        unavailable("no ctrace binary: set CTRACE_BIN or run `cargo xtask test`");
        return;
    };
    let (program, unit_args) = exec_start(&read(&deploy("ctrace.service")));
    assert_eq!(program, "/usr/local/bin/ctrace");
    assert_accepted(&bin, "deploy/ctrace.service", &unit_args);
    assert!(unit_args
        .windows(2)
        .any(|w| w == ["--metrics-addr", "127.0.0.1:9464"]));

    let (command, args) = daemonset_argv();
    assert_eq!(command, ["/usr/local/bin/ctrace"]);
    assert_accepted(&bin, "deploy/kubernetes/daemonset.yaml", &args);
    assert!(args.windows(2).any(|w| w == ["--output", "-"]));
    assert!(args
        .windows(2)
        .any(|w| w == ["--metrics-addr", "0.0.0.0:9464"]));

    // And the checks themselves see a bad flag.
    let (code, _, stderr) = ctrace_status(&bin, &["agent", "--no-such-flag"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

/// `--output -`: the agent's NDJSON on stdout (where a container's log collector reads it),
/// its status lines on stderr only. `/dev/stdout` is a symbolic link, which `--output` refuses.
#[test]
fn agent_output_dash_is_stdout() {
    let Some(bin) = require() else { return };
    let (code, _, stderr) = ctrace_status(
        &bin,
        &[
            "agent",
            "--no-journal",
            "--output",
            "/dev/stdout",
            "--duration",
            "1",
        ],
    );
    assert_ne!(code, Some(0));
    assert!(stderr.contains("symbolic link"), "{stderr}");

    let dir = TempDir::new("deploy-stdout");
    let marker = ctrace_tests::unique_binary(&dir, "/bin/true", "ctrace-dash-out");
    let w = Watch::start_agent(
        &bin,
        &[
            "--no-journal",
            "--output",
            "-",
            "--host",
            "--events",
            "exec",
            "--status-interval",
            "1s",
        ],
    );
    assert!(w.stderr().contains("NDJSON stdout"), "{}", w.stderr());
    let name = marker.to_str().unwrap().to_owned();
    let seen = {
        let mut found = None;
        for _ in 0..50 {
            ctrace_tests::run(&mut Command::new(&marker));
            if let Some(v) = w
                .records()
                .into_iter()
                .find(|v| v["type"] == "exec" && v["filename"] == name.as_str())
            {
                found = Some(v);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        found
    };
    let (records, stderr) = w.stop_with(libc::SIGTERM);
    let exec = seen.unwrap_or_else(|| {
        panic!(
            "no exec record of {name} on stdout; {} records; stderr:\n{stderr}",
            records.len()
        )
    });
    assert_eq!(exec["schema"], "ctrace.v1");
    assert!(
        records.iter().all(|r| r["schema"] == "ctrace.v1"),
        "stdout carries only NDJSON records"
    );
    assert!(stderr.contains("ctrace agent:"), "{stderr}");
}

/// Metric names docs/metrics.md documents, its `_limit_bytes`-style shorthands expanded.
fn documented_metrics() -> BTreeSet<String> {
    let doc = read(&workspace().join("docs/metrics.md"));
    let mut names = BTreeSet::new();
    for line in doc.lines() {
        let mut last_full: Option<String> = None;
        for (i, code) in line.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let name: String = code
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.starts_with("ctrace_") {
                names.insert(name.clone());
                last_full = Some(name);
            } else if let (Some(full), true) = (&last_full, name.starts_with('_')) {
                // `ctrace_container_memory_usage_bytes`, `_limit_bytes`: the shorthand
                // replaces as many trailing words of the full name as it has.
                let words: Vec<&str> = full.split('_').collect();
                let k = name.matches('_').count();
                names.insert(format!("{}{name}", words[..words.len() - k].join("_")));
            }
        }
    }
    names
}

fn strings_under<'a>(v: &'a Value, keys: &[&str], out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::String(s) if keys.contains(&k.as_str()) => out.push(s),
                    _ => strings_under(v, keys, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| strings_under(v, keys, out)),
        _ => {}
    }
}

#[test]
fn grafana_dashboard_uses_documented_metrics() {
    let path = deploy("grafana/ctrace-dashboard.json");
    let dash: Value = serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert!(dash["title"].is_string() && dash["panels"].is_array());
    let documented = documented_metrics();
    assert!(
        documented.contains("ctrace_container_memory_limit_bytes")
            && documented.contains("ctrace_container_oom_kills_total"),
        "{documented:?}"
    );
    let mut exprs = Vec::new();
    strings_under(&dash, &["expr", "query", "definition"], &mut exprs);
    assert!(exprs.len() > 10, "PromQL in the dashboard: {exprs:?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let mut rest = *expr;
        while let Some(at) = rest.find("ctrace_") {
            // A name, not the end of another word.
            let before = rest[..at].chars().next_back();
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| documented.contains(*b))
                .map_or(name.clone(), str::to_owned);
            assert!(
                documented.contains(&base),
                "{}: {name} is not in docs/metrics.md (in {expr:?})",
                path.display()
            );
            used.insert(base);
        }
    }
    for needed in [
        "ctrace_container_oom_kills_total",
        "ctrace_container_kills_total",
        "ctrace_container_cpu_throttled_periods_total",
        "ctrace_container_cpu_periods_total",
        "ctrace_container_runqueue_delay_seconds",
        "ctrace_container_memory_usage_bytes",
        "ctrace_container_memory_limit_bytes",
        "ctrace_records_lost_total",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard has no panel of {needed}"
        );
    }
    assert!(
        exprs.iter().any(|e| e.contains("histogram_quantile(0.99")
            && e.contains("ctrace_container_runqueue_delay_seconds_bucket")),
        "run-queue delay p99"
    );
}
