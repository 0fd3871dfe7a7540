//! The journal under real incidents: `ctrace postmortem` tells an OOM kill in Docker,
//! containerd and plain runc after the container is gone; the journal survives `kill -9` of
//! ctrace in the middle of a burst; a file that is not a journal is refused and left alone.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use ctrace_tests::{
    ctrace, ctrace_status, get, require, require_containerd, require_docker, require_runc,
    Bounded as _, CtrContainer, DockerContainer, RuncContainer, TempDir, Watch,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;
/// A 2 % CPU quota: `tail /dev/zero` then takes seconds, not milliseconds, to reach its
/// memory limit, so the journal's one-second samples see the usage rise.
const SLOW_CPU_QUOTA_US: u64 = 2_000;
const CPU_PERIOD_US: u64 = 100_000;

fn journal_path(dir: &TempDir) -> PathBuf {
    dir.0.join("journal.db")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Wait for the OOM kill of `name` and its stop on a watch.
fn wait_oom(w: &Watch, name: &str) -> Value {
    let n = name.to_owned();
    let oom = w.wait_for(&format!("oom_kill in {name}"), WAIT, move |v| {
        v["type"] == "oom_kill" && get(v, "container.name") == n.as_str()
    });
    let n = name.to_owned();
    w.wait_for(&format!("container_stop of {name}"), WAIT, move |v| {
        v["type"] == "container_stop" && get(v, "container.name") == n.as_str()
    });
    oom
}

/// `ctrace postmortem NAME --journal PATH` (JSON and human), checked against the OOM kill
/// the watch reported: the kill, the limit, the victim `tail`, a rising usage curve that
/// ends at the limit.
fn assert_oom_postmortem(bin: &Path, journal: &Path, name: &str, runtime: &str, limit: u64) {
    let out = ctrace(
        bin,
        &["postmortem", name, "--journal", s(journal), "--json"],
    );
    assert_eq!(out.lines().count(), 1, "one JSON object: {out}");
    let v: Value = serde_json::from_str(&out).expect("postmortem JSON");
    assert_eq!(v["schema"], "ctrace.postmortem.v1");
    let st = &v["stories"][0];
    let c = &st["container"];
    assert_eq!(c["name"], name, "{c}");
    assert_eq!(c["runtime"], runtime, "{c}");
    assert!(c["gone"].is_string(), "the container is gone: {c}");
    assert_eq!(c["exit_code"], 137, "{c}");
    assert_eq!(st["end"]["reason"], "oom_killed", "{st}");
    assert_eq!(st["oom_kills_total"], 1, "{st}");
    let o = &st["oom_kills"][0];
    assert_eq!(o["scope"], "container_limit", "{o}");
    assert_eq!(o["limit_bytes"], limit, "{o}");
    assert_eq!(o["victim"]["comm"], "tail", "{o}");
    assert!(
        o["victim"]["rss_bytes"].as_u64().unwrap() > limit / 2,
        "{o}"
    );
    assert_eq!(o["victim_exit"]["exit_code"], 137, "{o}");
    assert_eq!(o["container_stopped"], true, "{o}");
    assert_eq!(o["own_allocation"], true, "{o}");
    let curve: Vec<u64> = o["curve"]
        .as_array()
        .expect("curve")
        .iter()
        .map(|p| p["usage_bytes"].as_u64().unwrap())
        .collect();
    assert!(curve.len() >= 3, "a curve of several samples: {curve:?}");
    let (first, last) = (curve[0], *curve.last().unwrap());
    assert!(
        last.saturating_mul(100) >= limit.saturating_mul(95),
        "the curve ends at the limit: {curve:?}"
    );
    assert!(
        first < last / 2,
        "the curve rises from well below the limit: {curve:?}"
    );
    // Real usage wobbles: the runtime's own setup is charged to the cgroup until its processes
    // exit, and the kernel reclaims a little as it goes. The curve rises to the kill: it ends at
    // its highest point, it rises more often than it falls, and no fall is bigger than 10 % of
    // the limit.
    let rises = curve.windows(2).filter(|w| w[1] > w[0]).count();
    let falls = curve.windows(2).filter(|w| w[1] < w[0]).count();
    let big_falls = curve
        .windows(2)
        .filter(|w| w[0].saturating_sub(w[1]) > limit / 10)
        .count();
    assert!(
        rises >= 2 && rises > falls && big_falls == 0 && *curve.iter().max().unwrap() == last,
        "usage rises to the kill: {curve:?}"
    );
    assert_eq!(
        o["curve"].as_array().unwrap().last().unwrap()["ts"],
        o["ts"]
    );

    let text = ctrace(bin, &["postmortem", name, "--journal", s(journal)]);
    let limit_text = format!("{} MiB", limit / MIB);
    for needle in [
        format!("{name}: {runtime} container, gone since "),
        ", exit code 137 (times UTC)".to_owned(),
        "exit 137 (SIGKILL): its init was OOM-killed".to_owned(),
        "  OOM kills   1\n".to_owned(),
        ": the container hit its own memory limit (not a host-wide OOM)\n".to_owned(),
        format!("    limit     {limit_text}; at the kill: "),
        "    usage     last ".to_owned(),
        "    victim    tail (pid ".to_owned(),
        ", RSS ".to_owned(),
        "    trigger   its own allocation\n".to_owned(),
        "    outcome   tail exited with 137 (SIGKILL); the container stopped\n".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in:\n{text}");
    }
    // The figures: the last one is the limit (in MiB, as the curve's unit).
    let usage = text
        .lines()
        .find(|l| l.starts_with("    usage     last "))
        .unwrap();
    assert!(usage.contains("MiB): "), "{usage}");
    assert!(
        usage.ends_with(&format!(" {}", limit / MIB)),
        "ends at the limit: {usage}"
    );
}

#[test]
fn docker_oom_postmortem_after_docker_rm() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("journal-docker-oom");
    let journal = journal_path(&dir);
    let name = "ctrace-it-journal-lowmem100";
    let w = Watch::start(&bin, &["--journal", s(&journal)]);
    let cpus = format!("{}", SLOW_CPU_QUOTA_US as f64 / CPU_PERIOD_US as f64);
    let c = DockerContainer::run(
        name,
        &["-m", "100m", "--cpus", &cpus],
        &["tail", "/dev/zero"],
    );
    let oom = wait_oom(&w, name);
    assert_eq!(get(&oom, "memory.limit_bytes"), 100 * MIB);
    c.remove(); // docker rm -f
    w.stop();
    assert_oom_postmortem(&bin, &journal, name, "docker", 100 * MIB);
    // By id too, and history has the same record as the watch printed.
    let by_id = ctrace(
        &bin,
        &[
            "postmortem",
            &c.id[..12],
            "--journal",
            s(&journal),
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&by_id).unwrap();
    assert_eq!(v["stories"][0]["container"]["id"], c.id.as_str());
    let hist = ctrace(
        &bin,
        &[
            "history",
            "--journal",
            s(&journal),
            "--json",
            "--type",
            "oom_kill",
            "--container",
            name,
        ],
    );
    let lines: Vec<Value> = hist
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [oom],
        "history --json prints the record as watch did"
    );
}

/// The lab's own command, with no CPU quota to slow it down: `tail /dev/zero` reaches its
/// 100 MiB limit about 150 ms after the start, and the post-mortem still shows the usage rising
/// to the limit (young containers are sampled every 20 ms in their first second).
#[test]
fn the_labs_lowmem100_shows_a_rising_curve_to_the_limit() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("journal-lab100");
    let journal = journal_path(&dir);
    let name = "ctrace-it-journal-lab100";
    let w = Watch::start(&bin, &["--journal", s(&journal)]);
    let c = DockerContainer::run(name, &["-m", "100m"], &["tail", "/dev/zero"]);
    wait_oom(&w, name);
    c.remove();
    w.stop();
    let out = ctrace(
        &bin,
        &["postmortem", name, "--journal", s(&journal), "--json"],
    );
    let v: Value = serde_json::from_str(&out).expect("postmortem JSON");
    let o = &v["stories"][0]["oom_kills"][0];
    assert_eq!(o["limit_bytes"], 100 * MIB, "{o}");
    let curve: Vec<u64> = o["curve"]
        .as_array()
        .expect("curve")
        .iter()
        .map(|p| p["usage_bytes"].as_u64().unwrap())
        .collect();
    eprintln!("lowmem100 usage curve (bytes): {curve:?}");
    assert!(curve.len() >= 3, "a curve, not a point or two: {curve:?}");
    let last = *curve.last().unwrap();
    assert!(
        last.saturating_mul(100) >= (100 * MIB).saturating_mul(95),
        "the curve ends at the limit: {curve:?}"
    );
    assert!(curve[0] < last / 2, "the usage rises: {curve:?}");
}

/// `ctrace agent`, as a service manager runs it: nothing on stdout, NDJSON in its --output
/// file, the journal for postmortem, a status line in its log, a clean exit on SIGTERM.
#[test]
fn the_agent_records_an_oom_kill_for_postmortem_and_exits_on_sigterm() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("journal-agent");
    let journal = journal_path(&dir);
    let output = dir.0.join("events.ndjson");
    let name = "ctrace-it-journal-agent";
    let w = Watch::start_agent(
        &bin,
        &[
            "--journal",
            s(&journal),
            "--output",
            s(&output),
            "--status-interval",
            "1s",
        ],
    );
    let cpus = format!("{}", SLOW_CPU_QUOTA_US as f64 / CPU_PERIOD_US as f64);
    let c = DockerContainer::run(
        name,
        &["-m", "64m", "--cpus", &cpus],
        &["tail", "/dev/zero"],
    );
    let lines = ctrace_tests::eventually("oom_kill and container_stop in --output", WAIT, || {
        let text = std::fs::read_to_string(&output).ok()?;
        let v: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        let has = |ty: &str| {
            v.iter()
                .any(|r| r["type"] == ty && get(r, "container.name") == name)
        };
        (has("oom_kill") && has("container_stop")).then_some(v)
    });
    assert!(lines.iter().all(|v| v["schema"] == "ctrace.v1"));
    c.remove();
    // At least one status line (every second) after the OOM: the marker is a status line
    // printed after the OOM's records were seen in --output, so after the agent handled them.
    let status_lines = |stderr: &str| {
        stderr
            .lines()
            .filter(|l| l.starts_with("ctrace agent: ") && l.contains(" live containers, "))
            .count()
    };
    let seen = status_lines(&w.stderr());
    ctrace_tests::eventually("a status line after the OOM", WAIT, || {
        (status_lines(&w.stderr()) > seen).then_some(())
    });
    let (stdout_records, stderr) = w.stop_with(libc::SIGTERM);
    assert!(
        stdout_records.is_empty(),
        "stdout stays quiet: {stdout_records:?}"
    );
    let status = stderr
        .lines()
        .rfind(|l| l.starts_with("ctrace agent: ") && l.contains(" live containers, "))
        .unwrap_or_else(|| panic!("no status line in:\n{stderr}"));
    // Losses depend on what the other tests do meanwhile; that they are counted is tested
    // elsewhere.
    assert!(
        status.contains(" records, ") && status.contains(" lost; "),
        "{status}"
    );
    assert!(
        status.contains("; journal ") && status.contains(" written, 0 not written"),
        "{status}"
    );
    assert_oom_postmortem(&bin, &journal, name, "docker", 64 * MIB);
}

/// A name used by two containers one after the other: postmortem lists both, newest first,
/// and tells the newest one's story (`--all`: both).
#[test]
fn a_reused_name_lists_every_container_and_tells_the_newest() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("journal-reused");
    let journal = journal_path(&dir);
    let name = "ctrace-it-journal-reused";
    let w = Watch::start(&bin, &["--journal", s(&journal)]);
    let mut ids = Vec::new();
    for code in [3, 4] {
        let c = DockerContainer::run(name, &[], &["sh", "-c", &format!("exit {code}")]);
        assert_eq!(c.wait(WAIT), code);
        let n = name.to_owned();
        let want = code;
        w.wait_for(&format!("container_stop with {code}"), WAIT, move |v| {
            v["type"] == "container_stop"
                && get(v, "container.name") == n.as_str()
                && get(v, "exit.exit_code") == want
        });
        ids.push(c.id.clone());
        c.remove();
    }
    w.stop();
    let v: Value = serde_json::from_str(&ctrace(
        &bin,
        &["postmortem", name, "--journal", s(&journal), "--json"],
    ))
    .unwrap();
    let matches: Vec<&str> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        matches,
        [ids[1].as_str(), ids[0].as_str()],
        "newest first: {v}"
    );
    let stories = v["stories"].as_array().unwrap();
    assert_eq!(stories.len(), 1, "{v}");
    assert_eq!(stories[0]["container"]["id"], ids[1].as_str());
    assert_eq!(stories[0]["container"]["exit_code"], 4, "{v}");
    let text = ctrace(&bin, &["postmortem", name, "--journal", s(&journal)]);
    assert!(
        text.contains("2 containers match") && text.contains("--all for every one"),
        "{text}"
    );
    let all: Value = serde_json::from_str(&ctrace(
        &bin,
        &[
            "postmortem",
            name,
            "--all",
            "--journal",
            s(&journal),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(all["stories"].as_array().unwrap().len(), 2, "{all}");
}

/// A tmpfs mounted at `dir/<name>` with `opts`, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &TempDir, name: &str, opts: &str) -> Self {
        let m = dir.0.join(name);
        std::fs::create_dir_all(&m).unwrap();
        ctrace_tests::run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
                .arg(&m),
        );
        Mount(m)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status_bounded();
    }
}

/// A journal on a full or a read-only file system: watch says journaling is off and why, and
/// the live stream goes on.
#[test]
fn a_full_or_read_only_journal_disk_leaves_the_live_stream_on() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("journal-nospace");
    let full = Mount::tmpfs(&dir, "full", "size=64k");
    // Fill it: a file of zeros until ENOSPC.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k", "count=64"])
        .arg(format!("of={}", full.0.join("filler").display()))
        .stderr(std::process::Stdio::null())
        .status_bounded();
    let ro = Mount::tmpfs(&dir, "ro", "ro,size=64k");
    for (mnt, comm) in [(&full, "ctjfull"), (&ro, "ctjro")] {
        let journal = mnt.0.join("journal.db");
        let w = Watch::start(
            &bin,
            &["--journal", s(&journal), "--events", "exec", "--host"],
        );
        let prog = ctrace_tests::unique_binary(&dir, "/bin/true", comm);
        assert!(Command::new(&prog).status_bounded().unwrap().success());
        w.wait_for(&format!("exec of {comm}"), WAIT, |v| {
            v["type"] == "exec" && get(v, "process.comm") == comm
        });
        let (_, stderr) = w.stop();
        assert!(
            stderr.contains("ctrace: warning: journaling is off: ")
                && stderr.contains("the live stream goes on"),
            "{comm}: {stderr}"
        );
    }
}

/// Bad agent options fail before anything is attached.
#[test]
fn the_agent_refuses_to_record_nothing() {
    let Some(bin) = require() else { return };
    let (code, out, err) = ctrace_status(&bin, &["agent", "--no-journal"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("--no-journal needs --output FILE"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn ctr_oom_postmortem_after_the_container_is_deleted() {
    let Some(bin) = require() else { return };
    if !require_containerd() {
        return;
    }
    let dir = TempDir::new("journal-ctr-oom");
    let journal = journal_path(&dir);
    let id = "ctrace-it-journal-ctroom";
    let w = Watch::start(&bin, &["--journal", s(&journal)]);
    let c = CtrContainer::run(
        "default",
        id,
        &[
            "--memory-limit",
            "67108864",
            "--cpu-quota",
            &SLOW_CPU_QUOTA_US.to_string(),
            "--cpu-period",
            &CPU_PERIOD_US.to_string(),
        ],
        &["tail", "/dev/zero"],
    );
    let oom = wait_oom(&w, id);
    assert_eq!(get(&oom, "container.runtime"), "containerd");
    drop(c); // task kill, task delete, container delete
    w.stop();
    assert_oom_postmortem(&bin, &journal, id, "containerd", 64 * MIB);
    let v: Value = serde_json::from_str(&ctrace(
        &bin,
        &["postmortem", id, "--journal", s(&journal), "--json"],
    ))
    .unwrap();
    assert_eq!(v["stories"][0]["container"]["namespace"], "default");
    assert_eq!(
        v["stories"][0]["container"]["key"],
        format!("containerd/default/{id}")
    );
}

#[test]
fn runc_oom_postmortem_after_runc_delete() {
    let Some(bin) = require() else { return };
    if !require_runc() {
        return;
    }
    let dir = TempDir::new("journal-runc-oom");
    let journal = journal_path(&dir);
    let id = "ctrace-it-journal-runcoom";
    let w = Watch::start(&bin, &["--journal", s(&journal)]);
    let c = RuncContainer::run_with_spec(None, id, &["tail", "/dev/zero"], |spec| {
        spec["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
        spec["linux"]["resources"]["cpu"] =
            json!({ "quota": SLOW_CPU_QUOTA_US, "period": CPU_PERIOD_US });
    });
    let oom = wait_oom(&w, id);
    assert_eq!(get(&oom, "container.runtime"), "runc");
    drop(c); // runc delete -f
    w.stop();
    assert_oom_postmortem(&bin, &journal, id, "runc", 64 * MIB);
}

/// Files and their contents in a directory, to check that nothing was touched.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let p = e.path();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
                std::fs::metadata(&p).unwrap().modified().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn assert_refused(bin: &Path, path: &Path, why: &str) {
    let dir = path.parent().unwrap();
    let before = snapshot(dir);
    let p = s(path);
    for args in [
        vec!["watch", "--journal", p, "--duration", "5"],
        vec!["postmortem", "x", "--journal", p],
        vec!["postmortem", "x", "--journal", p, "--json"],
        vec!["history", "--journal", p],
    ] {
        let (code, out, err) = ctrace_status(bin, &args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.starts_with("ctrace: error: "), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{p} is not a usable ctrace journal")),
            "{args:?} names the file: {err}"
        );
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(err.contains("left untouched"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert_eq!(snapshot(dir), before, "{args:?} changed {}", dir.display());
    }
}

#[test]
fn a_file_that_is_not_a_journal_is_refused_and_left_untouched() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("journal-notajournal");
    let text = dir.0.join("text").join("journal.db");
    std::fs::create_dir_all(text.parent().unwrap()).unwrap();
    std::fs::write(
        &text,
        b"PK\x03\x04 not a database, some other file\n".repeat(200),
    )
    .unwrap();
    assert_refused(&bin, &text, "no SQLite header");

    // A real journal, then truncated in the middle of a page.
    let cut = dir.0.join("cut").join("journal.db");
    let w = Watch::start(&bin, &["--journal", s(&cut)]);
    w.stop();
    let len = std::fs::metadata(&cut).unwrap().len();
    assert!(len > 8192, "a journal of several pages: {len} bytes");
    let f = std::fs::OpenOptions::new().write(true).open(&cut).unwrap();
    f.set_len(len - 1000).unwrap();
    drop(f);
    assert_refused(&bin, &cut, "truncated");
}

#[test]
fn a_missing_journal_is_exit_1_for_queries_and_nothing_is_created() {
    let Some(bin) = require() else { return };
    let dir = TempDir::new("journal-missing");
    let path = dir.0.join("nowhere").join("journal.db");
    for args in [
        vec!["postmortem", "web", "--journal", s(&path)],
        vec!["history", "--journal", s(&path), "--json"],
    ] {
        let (code, out, err) = ctrace_status(&bin, &args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(
            err.contains(&format!("no journal at {}", path.display())),
            "{err}"
        );
        assert!(err.contains("ctrace watch"), "{err}");
    }
    assert!(!dir.0.join("nowhere").exists(), "nothing was created");
}
