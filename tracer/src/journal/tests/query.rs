//! Queries, upsert semantics, and record construction.

use std::collections::BTreeMap;

use super::*;
use crate::select::{Match, Selector};

fn journal_with_history(t: &TempDir) -> Journal {
    let mut j = open(&t.join("journal.db"));
    let old_web = "docker/1111aaaa";
    let new_web = "docker/2222bbbb";
    let db = "containerd/default/3333cccc";
    let mut entries: Vec<Entry> = vec![
        upsert(old_web, "web", NOW - 100 * SEC).into(),
        upsert(new_web, "web", NOW - 50 * SEC).into(),
        upsert(db, "db", NOW - 80 * SEC).into(),
    ];
    for (i, (key, name, kind)) in [
        (old_web, "web", "container_start"),
        (old_web, "web", "oom_kill"),
        (old_web, "web", "exit"),
        (new_web, "web", "container_start"),
        (db, "db", "kill"),
        (new_web, "web", "exec"),
    ]
    .into_iter()
    .enumerate()
    {
        entries.push(
            record(
                NOW - 100 * SEC + i as i64 * 10 * SEC,
                kind,
                Some(key),
                Some(name),
            )
            .into(),
        );
    }
    entries.push(record(NOW - 5 * SEC, "exec", None, None).into());
    j.write(&entries).unwrap();
    j
}

fn kinds(recs: &[StoredRecord]) -> Vec<&str> {
    recs.iter().map(|r| r.kind.as_str()).collect()
}

#[test]
fn records_filtered_in_time_order() {
    let t = TempDir::new("q-records");
    let j = journal_with_history(&t);
    let all = j.records(&RecordFilter::default()).unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    let by_key = j
        .records(&RecordFilter {
            container_key: Some("docker/1111aaaa".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(kinds(&by_key), ["container_start", "oom_kill", "exit"]);
    // By name: every container that was called "web".
    let by_name = j
        .records(&RecordFilter {
            container_name: Some("web".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_name.len(), 5);
    let typed = j
        .records(&RecordFilter {
            types: vec!["oom_kill".into(), "kill".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(kinds(&typed), ["oom_kill", "kill"]);
    let window = j
        .records(&RecordFilter {
            since_ns: Some(NOW - 90 * SEC),
            until_ns: Some(NOW - 60 * SEC),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        kinds(&window),
        ["oom_kill", "exit", "container_start", "kill"]
    );
    // Limit: the newest n, still oldest first.
    let last2 = j
        .records(&RecordFilter {
            container_name: Some("web".into()),
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(kinds(&last2), ["container_start", "exec"]);
    let combined = j
        .records(&RecordFilter {
            container_name: Some("web".into()),
            types: vec!["exit".into(), "exec".into()],
            since_ns: Some(NOW - 75 * SEC),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(kinds(&combined), ["exec"]);
    let v: serde_json::Value = serde_json::from_str(&combined[0].json).unwrap();
    assert_eq!(v["type"], "exec");
    assert_eq!(
        combined[0].container_key.as_deref(),
        Some("docker/2222bbbb")
    );
}

fn matching(j: &Journal, s: &str) -> Vec<String> {
    let sel = Selector::parse(s).unwrap();
    j.containers_matching(&sel)
        .unwrap()
        .map(|b| b.items.into_iter().map(|c| c.key).collect())
        .unwrap_or_default()
}

#[test]
fn containers_matching_newest_first() {
    let t = TempDir::new("q-containers");
    let mut j = journal_with_history(&t);
    // The containerd row as the recorder writes it, with its namespace.
    j.write(&[ContainerUpsert {
        namespace: Some("default".into()),
        ..upsert("containerd/default/3333cccc", "db", NOW - 80 * SEC)
    }
    .into()])
        .unwrap();
    assert_eq!(matching(&j, "web"), ["docker/2222bbbb", "docker/1111aaaa"]);
    assert_eq!(matching(&j, "111"), ["docker/1111aaaa"]);
    assert_eq!(
        j.containers_matching(&Selector::parse("3333cccc").unwrap())
            .unwrap()
            .unwrap()
            .items[0]
            .name
            .as_deref(),
        Some("db")
    );
    assert!(matching(&j, "11").is_empty(), "2-char prefix");
    assert!(matching(&j, "we").is_empty(), "no name prefix");
    assert!(matching(&j, "1%").is_empty());
    assert_eq!(
        matching(&j, "containerd/default/3333cccc"),
        ["containerd/default/3333cccc"]
    );
    assert_eq!(matching(&j, "default/333"), ["containerd/default/3333cccc"]);
    assert_eq!(matching(&j, "docker/1111aaaa"), ["docker/1111aaaa"]);
    assert!(
        matching(&j, "docker/22").is_empty(),
        "2-char prefix under a runtime"
    );
    assert!(matching(&j, "runc/1111aaaa").is_empty(), "another runtime");
    // An ambiguous prefix: both, at the prefix level (postmortem refuses it).
    j.write(&[upsert("docker/1112cccc", "api", NOW).into()])
        .unwrap();
    let b = j
        .containers_matching(&Selector::parse("111").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(b.level, Match::Prefix);
    assert_eq!(b.items.len(), 2);
    // A name that is also an id prefix of another container: the name wins (Docker's rule).
    j.write(&[upsert("docker/abcdef", "111", NOW).into()])
        .unwrap();
    assert_eq!(matching(&j, "111"), ["docker/abcdef"]);
}

#[test]
fn container_upserts_merge_and_tombstones() {
    let t = TempDir::new("q-upsert");
    let mut j = open(&t.join("journal.db"));
    let key = "docker/feed";
    let mut first = upsert(key, "web", NOW);
    first.image = Some("nginx:1".into());
    first.labels = Some(BTreeMap::from([("app".to_owned(), "web".to_owned())]));
    first.meta = Some(serde_json::json!({ "pod": null, "cgroup": "/docker/feed" }));
    j.write(&[first.into()]).unwrap();
    // Later, less information: nothing is erased; an earlier sighting moves first_seen.
    let mut partial = upsert(key, "web", NOW - 5 * SEC);
    partial.name = None;
    j.write(&[partial.into()]).unwrap();
    let c = j.container(key).unwrap().unwrap();
    assert_eq!(c.name.as_deref(), Some("web"));
    assert_eq!(c.image.as_deref(), Some("nginx:1"));
    assert_eq!(c.labels["app"], "web");
    assert_eq!(c.meta.as_ref().unwrap()["cgroup"], "/docker/feed");
    assert_eq!((c.first_seen_ns, c.last_seen_ns), (NOW - 5 * SEC, NOW));
    // Samples and records keep last_seen current.
    j.write(&[
        sample(key, NOW + 3 * SEC, 10).into(),
        record(NOW + 2 * SEC, "exec", Some(key), Some("web")).into(),
    ])
    .unwrap();
    assert_eq!(
        j.container(key).unwrap().unwrap().last_seen_ns,
        NOW + 3 * SEC
    );
    // Gone with exit code 137: a tombstone.
    let mut gone = upsert(key, "web", NOW + 10 * SEC);
    gone.gone_ns = Some(NOW + 10 * SEC);
    gone.exit_code = Some(137);
    j.write(&[gone.into()]).unwrap();
    let c = j.container(key).unwrap().unwrap();
    assert_eq!((c.gone_ns, c.exit_code), (Some(NOW + 10 * SEC), Some(137)));
    // A late, older observation does not resurrect it...
    j.write(&[upsert(key, "web", NOW + 9 * SEC).into()])
        .unwrap();
    assert_eq!(
        j.container(key).unwrap().unwrap().gone_ns,
        Some(NOW + 10 * SEC)
    );
    // ...a newer one (docker start) does.
    j.write(&[upsert(key, "web", NOW + 20 * SEC).into()])
        .unwrap();
    let c = j.container(key).unwrap().unwrap();
    assert_eq!((c.gone_ns, c.exit_code), (None, None));
    assert_eq!(c.last_seen_ns, NOW + 20 * SEC);
}

#[test]
fn memory_curve_in_range_with_top_processes() {
    let t = TempDir::new("q-curve");
    let mut j = open(&t.join("journal.db"));
    let key = "docker/abc";
    let mut entries: Vec<Entry> = (0..10)
        .map(|i| sample(key, NOW + i * SEC, (i as u64 + 1) << 20).into())
        .collect();
    entries.push(sample("docker/other", NOW + 5 * SEC, 1).into());
    let mut top = sample(key, NOW + 10 * SEC, 100 << 20);
    top.limit_bytes = None;
    top.rss_top = Some(vec![
        ProcRss {
            pid: 42,
            comm: "tail".into(),
            rss_bytes: 90 << 20,
        },
        ProcRss {
            pid: 1,
            comm: "sh".into(),
            rss_bytes: 1 << 20,
        },
    ]);
    entries.push(top.clone().into());
    // A duplicate sample (same container and time) replaces the earlier one.
    entries.push(sample(key, NOW, 5).into());
    j.write(&entries).unwrap();
    let curve = j.memory_curve(key, NOW + 2 * SEC, NOW + 10 * SEC).unwrap();
    assert_eq!(curve.len(), 9);
    assert_eq!(curve[0].ts_ns, NOW + 2 * SEC);
    assert!(curve.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns));
    assert_eq!(curve.last().unwrap(), &top);
    assert_eq!(curve[0].limit_bytes, Some(100 << 20));
    assert_eq!(j.memory_curve(key, NOW, NOW).unwrap()[0].usage_bytes, 5);
    assert!(j
        .memory_curve("docker/none", 0, i64::MAX)
        .unwrap()
        .is_empty());
}

#[test]
fn record_from_ndjson() {
    let v = serde_json::json!({
        "schema": "ctrace.v1",
        "type": "oom_kill",
        "container": { "id": "c1", "name": "redis", "runtime": "containerd",
                       "namespace": "k8s.io", "resolved": true },
    });
    let r = Record::from_ndjson(NOW, &v);
    assert_eq!(r.kind, "oom_kill");
    assert_eq!(r.container_key.as_deref(), Some("containerd/k8s.io/c1"));
    assert_eq!(r.container_name.as_deref(), Some("redis"));
    assert_eq!(r.runtime.as_deref(), Some("containerd"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.json).unwrap(),
        v
    );
    let host = Record::from_ndjson(
        NOW,
        &serde_json::json!({ "type": "exec", "container": null }),
    );
    assert_eq!((host.container_key, host.container_id), (None, None));
    let unresolved = Record::from_ndjson(
        NOW,
        &serde_json::json!({ "type": "exec", "container": { "id": null, "resolved": false } }),
    );
    assert_eq!(unresolved.container_key, None);
    assert_eq!(container_key("docker", None, "abc"), "docker/abc");
    assert_eq!(
        container_key("containerd", Some("default"), "x"),
        "containerd/default/x"
    );
}
