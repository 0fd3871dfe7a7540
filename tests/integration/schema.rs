//! Every record type ctrace emits, produced for real and validated against
//! `docs/events.schema.json`.

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use ctrace_tests::{get, require, require_docker, Bounded as _, DockerContainer, Watch};
use serde_json::Value;

/// Every record type: the library's own list.
const ALL_TYPES: [&str; 18] = tracer::record::Record::TYPES;

#[test]
fn every_record_type_validates_against_the_schema() {
    let Some(bin) = require() else { return };
    if !require_docker() {
        return;
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/events.schema.json"
        ))
        .expect("docs/events.schema.json"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");

    let w = Watch::start(&bin, &["--events", "all", "--host", "--cap-window", "0.5"]);
    // A reader that stalls with a tiny buffer: gap records.
    let lossy = Watch::start(&bin, &["--events", "exec", "--host", "--ring-size", "4096"]);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(lossy.pid() as i32, libc::SIGSTOP) };
    let st = Command::new("/bin/sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done",
        ])
        .status_bounded()
        .unwrap();
    assert!(st.success());
    // SAFETY: as above.
    unsafe { libc::kill(lossy.pid() as i32, libc::SIGCONT) };

    // Container lifecycle, an OOM kill, a denied capability and a kill from the host.
    let oom = DockerContainer::run(
        "ctrace-it-schema-oom",
        &["-m", "32m"],
        &["tail", "/dev/zero"],
    );
    let cap = DockerContainer::run(
        "ctrace-it-schema-cap",
        &["--cap-drop", "ALL"],
        &["chown", "1", "/tmp"],
    );
    // Three deaths in a row: a restart loop.
    let looping = DockerContainer::run(
        "ctrace-it-schema-loop",
        &["--restart", "on-failure:2", "-m", "32m"],
        &["tail", "/dev/zero"],
    );
    let victim = DockerContainer::run("ctrace-it-schema-kill", &[], &["sleep", "300"]);
    let slow = DockerContainer::run(
        "ctrace-it-schema-slow",
        &["--cpus", "0.01"],
        &["sh", "-c", "while :; do :; done"],
    );
    // Repeated ignored SIGTERMs: a signal record with a count (the run's tail, at exit).
    let mut deaf =
        ctrace_tests::spawn_ignoring(Path::new("/bin/sleep"), &["300"], libc::SIGTERM, "sleep");
    for _ in 0..50 {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(deaf.id() as i32, libc::SIGTERM) }, 0);
    }
    deaf.kill().expect("kill sleep");
    deaf.wait().expect("wait sleep");
    let pid = victim.init_pid();
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status_bounded()
        .unwrap()
        .success());
    oom.wait(Duration::from_secs(30));
    cap.wait(Duration::from_secs(30));
    victim.wait(Duration::from_secs(30));
    w.wait_for("oom_kill", Duration::from_secs(30), |v| {
        v["type"] == "oom_kill"
    });
    w.wait_for("kill", Duration::from_secs(30), |v| {
        v["type"] == "kill" && get(v, "container.name") == "ctrace-it-schema-kill"
    });
    w.wait_for("cpu_throttle", Duration::from_secs(30), |v| {
        v["type"] == "cpu_throttle"
    });
    w.wait_for("restart_loop", Duration::from_secs(60), |v| {
        v["type"] == "restart_loop"
    });
    looping.wait(Duration::from_secs(30));
    let ids: Vec<String> = [&oom, &cap, &victim, &slow, &looping]
        .iter()
        .map(|c| c.id.clone())
        .collect();
    drop((oom, cap, victim, slow, looping));
    // Markers instead of a pause: a cgroup can be removed only once every process in it has
    // exited, so once the watch printed each container's cgroup_rmdir it has handled their
    // exits, with the kills and stops they complete, and all of it is validated below.
    for id in &ids {
        w.wait_for(
            &format!("cgroup_rmdir of container {id}"),
            Duration::from_secs(30),
            |v| {
                v["type"] == "cgroup_rmdir"
                    && get(v, "cgroup.path")
                        .as_str()
                        .is_some_and(|p| p.contains(id.as_str()))
            },
        );
    }
    let (mut records, _) = w.stop();
    let (lossy_records, _) = lossy.stop();
    records.extend(lossy_records);

    let mut by_type: BTreeMap<String, Value> = BTreeMap::new();
    for r in &records {
        let errors: Vec<String> = validator
            .iter_errors(r)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "record does not match the schema: {errors:?}\n{r}"
        );
        by_type
            .entry(r["type"].as_str().unwrap().to_owned())
            .or_insert_with(|| r.clone());
    }
    assert!(
        records
            .iter()
            .any(|v| v["type"] == "signal" && v["count"].as_u64() > Some(1)),
        "no folded signal record"
    );
    for t in ALL_TYPES {
        assert!(
            by_type.contains_key(t),
            "no {t} record was produced; saw {:?}",
            by_type.keys()
        );
    }
    // `CTRACE_WRITE_EXAMPLES=FILE`: one pretty example per type, for docs/events.md.
    if let Ok(path) = std::env::var("CTRACE_WRITE_EXAMPLES") {
        let mut text = String::new();
        for (t, v) in &by_type {
            text.push_str(&format!(
                "### `{t}`\n\n```json\n{}\n```\n\n",
                serde_json::to_string_pretty(v).unwrap()
            ));
        }
        std::fs::write(path, text).unwrap();
    }
}

#[test]
fn the_schema_rejects_what_it_should() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/events.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let lost = serde_json::json!({
        "schema": "ctrace.v1", "ts": "2026-11-29T18:40:01.123456789Z", "type": "lost", "host": "h",
        "kind": "exec", "count": 3, "where": "kernel_ringbuf_full", "total": 3, "explanation": "x"
    });
    assert!(validator.is_valid(&lost));
    for (field, bad) in [
        ("schema", Value::from("ctrace.v0")),
        ("type", "nope".into()),
        ("count", 0.into()),
        ("ts", "yesterday".into()),
    ] {
        let mut v = lost.clone();
        v[field] = bad;
        assert!(!validator.is_valid(&v), "{field} should be rejected");
    }
}

/// Every example of docs/events.md (a ```json block under a "### `type`" heading) is valid
/// against the schema and has the type of its heading; every record type has one.
#[test]
fn the_documented_examples_validate_against_the_schema() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}events.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let doc = std::fs::read_to_string(format!("{root}events.md")).unwrap();
    let mut seen = Vec::new();
    for (t, text) in tracer::record::examples_in(&doc) {
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("example of {t} is not JSON: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "example of {t}: {errors:?}");
        assert_eq!(v["type"], t.as_str());
        seen.push(t);
    }
    for t in ALL_TYPES {
        assert!(
            seen.iter().any(|s| s == t),
            "docs/events.md has no example of {t}"
        );
    }
}
