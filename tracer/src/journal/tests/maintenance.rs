//! Retention by age and size, and thinning of memory samples.

use std::time::Duration;

use super::*;
use crate::journal::maintenance::{DENSE_WINDOW_NS, OOM_KEEP_NS, THIN_BUCKET_NS};

const HOUR: i64 = 3600 * SEC;

#[test]
fn age_retention_deletes_old_rows_and_tombstones() {
    let t = TempDir::new("age");
    let path = t.join("journal.db");
    let mut j = Journal::open(
        &path,
        JournalOptions {
            retention: Duration::from_secs(24 * 3600),
            ..Default::default()
        },
    )
    .unwrap();
    let day = 24 * HOUR;
    let mut gone_old = upsert("docker/old", "old", NOW - 3 * day);
    gone_old.gone_ns = Some(NOW - 2 * day);
    let mut gone_recent = upsert("docker/recent", "recent", NOW - 3 * day);
    gone_recent.gone_ns = Some(NOW - HOUR);
    let entries: Vec<Entry> = vec![
        record(NOW - 2 * day, "oom_kill", Some("docker/old"), Some("old")).into(),
        record(NOW - day - 1, "exec", None, None).into(),
        record(NOW - day + 1, "exec", None, None).into(),
        sample("docker/recent", NOW - 2 * day, 1).into(),
        sample("docker/recent", NOW - HOUR, 1).into(),
        gone_old.into(),
        gone_recent.into(),
        // Seen long ago and never since, not known to be gone.
        upsert("docker/stale", "stale", NOW - 3 * day).into(),
        // Alive: metadata written long ago, but it keeps producing samples.
        upsert("docker/alive", "alive", NOW - 3 * day).into(),
        sample("docker/alive", NOW - 10 * SEC, 1).into(),
    ];
    j.write(&entries).unwrap();
    let rep = j.run_maintenance(NOW).unwrap();
    assert_eq!(rep.records_expired, 2, "{rep:?}");
    assert_eq!(rep.samples_expired, 1, "{rep:?}");
    assert_eq!(rep.containers_expired, 2, "{rep:?}");
    assert!(rep.complete);
    let recs = j.records(&RecordFilter::default()).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].ts_ns, NOW - day + 1);
    assert!(j.container("docker/old").unwrap().is_none());
    assert!(j.container("docker/stale").unwrap().is_none());
    assert!(j.container("docker/recent").unwrap().is_some());
    assert!(j.container("docker/alive").unwrap().is_some());
    assert_eq!(count(&path, "memory_samples"), 2);
    // Nothing more to do.
    let rep = j.run_maintenance(NOW).unwrap();
    assert_eq!(
        rep.records_expired + rep.samples_expired + rep.containers_expired,
        0
    );
}

#[test]
fn size_bound_deletes_oldest_first_down_to_90_percent() {
    let t = TempDir::new("size");
    let path = t.join("journal.db");
    let max = 1 << 20;
    let mut j = Journal::open(
        &path,
        JournalOptions {
            max_size_bytes: max,
            ..Default::default()
        },
    )
    .unwrap();
    let pad = "p".repeat(900);
    // ~4 MiB of records and samples, interleaved in time.
    for chunk in 0..40 {
        let entries: Vec<Entry> = (0..100)
            .flat_map(|i| {
                let ts = NOW - HOUR + (chunk * 100 + i) * SEC;
                let mut r = record(ts, "exec", Some("docker/abc"), Some("web"));
                r.json = format!("{{\"pad\":\"{pad}\"}}");
                [r.into(), sample("docker/abc", ts, 7).into()]
            })
            .collect();
        j.write(&entries).unwrap();
    }
    let before = j.used_bytes().unwrap();
    assert!(before > 3 * max, "{before}");
    let rep = j.run_maintenance(NOW).unwrap();
    let after = j.used_bytes().unwrap();
    assert!(after <= max * 9 / 10, "{after} > 90% of {max}: {rep:?}");
    assert!(after > max / 2, "deleted far too much: {after}");
    assert!(rep.records_evicted > 0 && rep.complete, "{rep:?}");
    assert_eq!(rep.used_bytes_after, after);
    // What is left is the newest part, without gaps.
    let recs = j.records(&RecordFilter::default()).unwrap();
    assert_eq!(recs.last().unwrap().ts_ns, NOW - HOUR + 3999 * SEC);
    let first = recs[0].ts_ns;
    assert_eq!(
        recs.len() as i64,
        (NOW - HOUR + 3999 * SEC - first) / SEC + 1
    );
    // Samples older than the oldest record are gone too (deleted in time order).
    let curve = j.memory_curve("docker/abc", 0, i64::MAX).unwrap();
    assert!(
        curve[0].ts_ns >= first - 2000 * SEC,
        "{} vs {first}",
        curve[0].ts_ns
    );
    // The file gave its free pages back.
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file <= max + (64 << 10), "file {file}");
    assert_eq!(integrity(&path), "ok");
}

/// Kills and stops keep the curve before them dense too: a post-mortem tells them.
#[test]
fn thinning_keeps_the_curve_before_a_kill_and_a_stop() {
    let t = TempDir::new("thin-kill");
    let path = t.join("journal.db");
    let mut j = open(&path);
    let start = NOW - HOUR;
    let at = NOW - 30 * 60 * SEC + 500_000_000;
    let mut entries: Vec<Entry> = Vec::new();
    for s in 0..3600 {
        let ts = start + s * SEC;
        for key in ["docker/killed", "docker/stopped", "docker/exited"] {
            entries.push(sample(key, ts, 1).into());
        }
    }
    entries.push(record(at, "kill", Some("docker/killed"), Some("k")).into());
    entries.push(record(at, "container_stop", Some("docker/stopped"), Some("s")).into());
    entries.push(record(at, "exit", Some("docker/exited"), Some("e")).into());
    j.write(&entries).unwrap();
    assert!(j.run_maintenance(NOW).unwrap().complete);
    let dense_before = |key: &str| j.memory_curve(key, at - OOM_KEEP_NS, at).unwrap().len();
    assert_eq!(dense_before("docker/killed"), 120);
    assert_eq!(dense_before("docker/stopped"), 120);
    assert!(
        dense_before("docker/exited") <= 13,
        "an exit protects nothing"
    );
}

#[test]
fn thinning_keeps_recent_density_and_the_curve_before_an_oom_kill() {
    let t = TempDir::new("thin");
    let path = t.join("journal.db");
    let mut j = open(&path);
    let start = NOW - HOUR;
    let oom_at = NOW - 30 * 60 * SEC + 500_000_000; // 30 min ago, mid-second
    let mut entries: Vec<Entry> = Vec::new();
    for s in 0..3600 {
        let ts = start + s * SEC;
        // Usage rises within each 10 s bucket, so the kept sample is the bucket's last.
        let usage = (s % 10) as u64 * 100 + 1;
        entries.push(sample("docker/victim", ts, usage).into());
        entries.push(sample("docker/other", ts, usage).into());
    }
    entries.push(record(oom_at, "oom_kill", Some("docker/victim"), Some("v")).into());
    // Same kind of record for a different container: protects nothing of "other".
    entries.push(record(oom_at, "exit", Some("docker/other"), Some("o")).into());
    j.write(&entries).unwrap();

    let rep = j.run_maintenance(NOW).unwrap();
    assert!(rep.complete);
    let dense_from = NOW - DENSE_WINDOW_NS;
    let thinned_older = |key: &str| {
        let curve = j.memory_curve(key, 0, i64::MAX).unwrap();
        let (old, recent): (Vec<_>, Vec<_>) = curve.into_iter().partition(|s| s.ts_ns < dense_from);
        (old, recent)
    };
    // "other": one per 10 s before the dense window, every second within it.
    let (old, recent) = thinned_older("docker/other");
    assert_eq!(recent.len(), 600);
    assert_eq!(old.len(), 3000 / 10);
    for w in old.windows(2) {
        assert_eq!(w[1].ts_ns - w[0].ts_ns, THIN_BUCKET_NS);
    }
    assert!(
        old.iter().all(|s| s.usage_bytes == 901),
        "kept the bucket's peak"
    );
    // "victim": the same, except every second in the 120 s up to the kill.
    let (old, recent) = thinned_older("docker/victim");
    assert_eq!(recent.len(), 600);
    let window: Vec<_> = old
        .iter()
        .filter(|s| s.ts_ns >= oom_at - OOM_KEEP_NS && s.ts_ns <= oom_at)
        .collect();
    assert_eq!(window.len(), 120);
    for w in window.windows(2) {
        assert_eq!(w[1].ts_ns - w[0].ts_ns, SEC);
    }
    let outside = old.len() - window.len();
    // 300 buckets, of which the ~12 overlapping the window keep full density instead.
    assert!((286..=289).contains(&outside), "{outside}");
    assert_eq!(
        rep.samples_thinned as usize,
        2 * 3000 - (300 + old.len()),
        "{rep:?}"
    );
    // Idempotent.
    let rep = j.run_maintenance(NOW).unwrap();
    assert_eq!(rep.samples_thinned, 0);
    // Later, the next minute leaves the dense window and is thinned in turn.
    let rep = j.run_maintenance(NOW + 60 * SEC).unwrap();
    assert_eq!(rep.samples_thinned, 2 * 54, "{rep:?}");
}
