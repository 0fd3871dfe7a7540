//! The journal through a storm: it survives `kill -9` of ctrace in the middle of a burst of
//! kill incidents, and a restarted watch goes on writing it.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use ctrace_tests::{
    ctrace, ctrace_status, get, require, require_docker, DockerContainer, TempDir, Watch,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn journal_path(dir: &TempDir) -> PathBuf {
    dir.0.join("journal.db")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Kill incidents of `name` a watch printed.
fn kills_of(records: &[Value], name: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|v| v["type"] == "kill" && get(v, "container.name") == name)
        .cloned()
        .collect()
}

/// (ts, target pid) of kill records: what identifies one.
fn ids(records: &[Value]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = records
        .iter()
        .map(|r| {
            (
                r["ts"].as_str().unwrap().to_owned(),
                get(r, "target.pid").as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn history_kills(bin: &Path, journal: &Path, name: &str) -> Vec<Value> {
    try_history_kills(bin, journal, name)
        .unwrap_or_else(|err| panic!("ctrace history failed: {err}"))
}

/// `ctrace history` of `name`'s kills, or its error (the container is not in the journal yet,
/// say: its metadata is committed in a batch of its own).
fn try_history_kills(bin: &Path, journal: &Path, name: &str) -> Result<Vec<Value>, String> {
    let (code, out, err) = ctrace_status(
        bin,
        &[
            "history",
            "--json",
            "--journal",
            s(journal),
            "--type",
            "kill",
            "--container",
            name,
            "--limit",
            "0",
        ],
    );
    if code != Some(0) {
        return Err(err);
    }
    Ok(out
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect())
}

#[test]
fn the_journal_survives_kill_9_of_ctrace_during_a_burst() {
    let Some(bin) = require() else { return };
    let _storm = ctrace_tests::storm();
    if !require_docker() {
        return;
    }
    let dir = TempDir::new("journal-kill9");
    let journal = journal_path(&dir);
    let name = "ctrace-it-journal-burst";
    let w = Watch::start(&bin, &["--journal", s(&journal)]);
    // A burst that never stops: children started and SIGKILLed as fast as the shell can.
    let c = DockerContainer::run(
        name,
        &[],
        &["sh", "-c", "while true; do sleep 60 & kill -9 $!; done"],
    );
    w.wait_for("a first kill in the burst", WAIT, |v| {
        v["type"] == "kill" && get(v, "container.name") == name
    });
    let before = ctrace_tests::eventually("a burst of 5 kills", WAIT, || {
        let k = kills_of(&w.records(), name);
        (k.len() >= 5).then_some(k)
    });
    // Wait until the journal holds every kill printed so far (read by another process, as
    // `ctrace history` reads a running agent's journal), however long the machine takes to
    // commit them; the burst goes on meanwhile, so the crash comes mid-burst.
    let before_ids = ids(&before);
    ctrace_tests::eventually("the printed kills committed to the journal", WAIT, || {
        let kept = ids(&try_history_kills(&bin, &journal, name).ok()?);
        before_ids
            .iter()
            .all(|k| kept.binary_search(k).is_ok())
            .then_some(())
    });
    // SAFETY: kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(w.pid() as i32, libc::SIGKILL) }, 0);
    ctrace_tests::eventually("ctrace to die of SIGKILL", WAIT, || {
        // A killed child stays a zombie until reaped: its state, not its existence, tells.
        let stat = ctrace_tests::process(w.pid())?.stat().ok()?;
        (stat.state == 'Z').then_some(())
    });
    let w_records = w.records();
    drop(w);

    // The journal opens read-only, with every incident committed before the crash.
    let kept = history_kills(&bin, &journal, name);
    eprintln!(
        "kill -9 of ctrace after it printed {} kills; {} were committed to the journal",
        kills_of(&w_records, name).len(),
        kept.len()
    );
    let kept_ids = ids(&kept);
    let missing: Vec<_> = ids(&before)
        .into_iter()
        .filter(|k| kept_ids.binary_search(k).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} kills lost: {missing:?}",
        missing.len(),
        before.len()
    );

    // A new watch opens the same journal and appends to it.
    let w2 = Watch::start(&bin, &["--journal", s(&journal)]);
    w2.wait_for("a kill seen by the new watch", WAIT, |v| {
        v["type"] == "kill" && get(v, "container.name") == name
    });
    c.remove();
    let (records, stderr) = w2.stop();
    assert!(!stderr.contains("journal"), "no journal trouble: {stderr}");
    let after_restart = kills_of(&records, name);
    let all = ids(&history_kills(&bin, &journal, name));
    for k in ids(&before).into_iter().chain(ids(&after_restart)) {
        assert!(
            all.binary_search(&k).is_ok(),
            "{k:?} missing after the restart"
        );
    }
    // The story tells the kills too.
    let v: Value = serde_json::from_str(&ctrace(
        &bin,
        &["postmortem", name, "--journal", s(&journal), "--json"],
    ))
    .unwrap();
    assert_eq!(v["stories"][0]["kills_total"], all.len());
    assert_eq!(v["stories"][0]["kills"][0]["signal"], "SIGKILL");
}
