//! The batching writer: batches, drops, shutdown, continuous maintenance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

#[test]
fn handle_is_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<JournalHandle>();
    fn send<T: Send + 'static>() {}
    send::<Journal>();
}

#[test]
fn commits_full_batches_and_keeps_the_rest_pending() {
    let t = TempDir::new("batch");
    let path = t.join("journal.db");
    let (h, join) = open(&path).spawn_writer_with(WriterOptions {
        batch_max: 100,
        batch_interval: Duration::from_secs(3600),
        ..writer_opts()
    });
    for i in 0..250 {
        assert!(h.try_send(record(NOW + i, "exec", None, None)));
    }
    assert!(wait_until(Duration::from_secs(5), || count(
        &path, "records"
    ) == 200));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count(&path, "records"),
        200,
        "a partial batch was committed early"
    );
    assert!(h.flush(Duration::from_secs(5)));
    assert_eq!(count(&path, "records"), 250);
    assert_eq!(h.status().written, 250);
    h.flush_and_close();
    join.join().unwrap();
}

#[test]
fn commits_a_partial_batch_after_the_interval() {
    let t = TempDir::new("interval");
    let path = t.join("journal.db");
    let (h, join) = open(&path).spawn_writer_with(WriterOptions {
        batch_interval: Duration::from_millis(200),
        ..writer_opts()
    });
    let sent = Instant::now();
    for i in 0..10 {
        h.try_send(record(NOW + i, "exec", None, None));
    }
    assert!(wait_until(Duration::from_secs(5), || count(
        &path, "records"
    ) == 10));
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(150),
        "committed after {took:?}"
    );
    assert!(took < Duration::from_secs(2), "committed after {took:?}");
    h.flush_and_close();
    join.join().unwrap();
}

/// A writer stuck behind a lock (as on a slow disk): senders never wait, the overflow is
/// dropped and counted, and everything queued is written once the disk is back.
#[test]
fn full_queue_drops_and_counts_without_blocking() {
    let t = TempDir::new("full");
    let path = t.join("journal.db");
    let (h, join) = open(&path).spawn_writer_with(WriterOptions {
        capacity: 100,
        batch_max: 1,
        ..writer_opts()
    });
    // Another connection holds the write lock: the writer waits in its busy timeout.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut accepted = 0u64;
    let mut slowest = Duration::ZERO;
    let all = Instant::now();
    for i in 0..1000 {
        let t0 = Instant::now();
        if h.try_send(record(NOW + i, "exec", None, None)) {
            accepted += 1;
        }
        slowest = slowest.max(t0.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "try_send blocked {slowest:?}"
    );
    // Well within the writer's 5 s wait for the lock.
    assert!(
        all.elapsed() < Duration::from_secs(2),
        "{:?}",
        all.elapsed()
    );
    // The queue (100) plus the one entry the writer is trying to commit.
    assert!((100..=101).contains(&accepted), "{accepted}");
    assert_eq!(h.dropped(), 1000 - accepted);
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    let st = h.flush_and_close();
    join.join().unwrap();
    assert_eq!(st.written, accepted, "{st:?}");
    assert_eq!(st.written + st.dropped, 1000);
    assert!(!st.disabled && st.failed_batches == 0, "{st:?}");
    assert_eq!(count(&path, "records") as u64, accepted);
}

#[test]
fn flush_and_close_drains_everything() {
    let t = TempDir::new("close");
    let path = t.join("journal.db");
    let (h, join) = open(&path).spawn_writer_with(WriterOptions {
        batch_interval: Duration::from_secs(3600),
        ..writer_opts()
    });
    let h2 = h.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..5000 {
            assert!(h2.try_send(sample("docker/abc", NOW + i, 1)));
        }
        h2
    });
    let h2 = producer.join().unwrap();
    let st = h.flush_and_close();
    assert_eq!(st.written, 5000, "{st:?}");
    assert_eq!(join.join().unwrap().written, 5000);
    assert_eq!(count(&path, "memory_samples"), 5000);
    // After close, sends are dropped and counted, from any clone.
    assert!(!h2.try_send(sample("docker/abc", NOW, 1)));
    assert_eq!(h.dropped(), 1);
    // Closing twice is harmless.
    assert_eq!(h2.flush_and_close().written, 5000);
}

#[test]
fn dropping_every_handle_stops_the_writer_after_committing() {
    let t = TempDir::new("drop");
    let path = t.join("journal.db");
    let (h, join) = open(&path).spawn_writer_with(WriterOptions {
        batch_interval: Duration::from_secs(3600),
        ..writer_opts()
    });
    for i in 0..10 {
        h.try_send(record(NOW + i, "exec", None, None));
    }
    drop(h);
    let st = join.join().unwrap();
    assert_eq!(st.written, 10);
    assert!(!st.disabled, "{st:?}");
    assert_eq!(count(&path, "records"), 10);
}

/// A journal at `path` keeping entries `retention`, and its writer on `clock`, committing
/// every 20 ms.
fn writer_with_retention(
    path: &Path,
    retention: Duration,
    clock: &Arc<ManualClock>,
) -> (JournalHandle, std::thread::JoinHandle<WriterStatus>) {
    let j = Journal::open(
        path,
        JournalOptions {
            retention,
            ..Default::default()
        },
    )
    .unwrap();
    j.spawn_writer_with(WriterOptions {
        batch_interval: Duration::from_millis(20),
        clock: clock.clone(),
        ..writer_opts()
    })
}

/// Retention runs in the writer, driven by the injected clock, at most every 30 s.
#[test]
fn writer_enforces_retention_on_its_clock() {
    let t = TempDir::new("wmaint");
    let path = t.join("journal.db");
    let clock = Arc::new(ManualClock::new(NOW));
    let (h, join) = writer_with_retention(&path, Duration::from_secs(3600), &clock);
    // The first pass runs right away (at NOW); let it happen with nothing to do.
    h.try_send(record(NOW, "exec", None, None));
    assert!(h.flush(Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(100));
    // Expired on arrival (older than NOW - 1 h), but no pass is due for 30 s.
    for i in 0..10 {
        h.try_send(record(NOW - 2 * 3600 * SEC + i, "exec", None, None));
    }
    assert!(h.flush(Duration::from_secs(5)));
    clock.advance(20 * SEC);
    std::thread::sleep(Duration::from_millis(1500)); // > one idle tick
    assert_eq!(count(&path, "records"), 11, "maintenance ran before 30 s");
    clock.advance(11 * SEC);
    assert!(wait_until(Duration::from_secs(5), || count(
        &path, "records"
    ) == 1));
    h.flush_and_close();
    join.join().unwrap();
}

/// The writer's maintenance ages entries by its own clock, never by the day the suite runs.
/// With the clock a year after the fixtures, retention and thinning give exactly what they
/// promise for entries a year old. On the wall clock (a few days after `NOW` when this was
/// written) the record two days older than `NOW` would still be kept, and this would fail.
#[test]
fn maintenance_a_year_after_the_fixtures_follows_the_writers_clock() {
    const DAY: i64 = 24 * 3600 * SEC;
    let t = TempDir::new("year");
    let path = t.join("journal.db");
    let clock = Arc::new(ManualClock::new(NOW + 365 * DAY));
    let (h, join) = writer_with_retention(&path, Duration::from_secs(366 * 24 * 3600), &clock);
    // 367 days old on the writer's clock: past retention.
    assert!(h.try_send(record(NOW - 2 * DAY, "exec", None, None)));
    // 365 days old: kept.
    assert!(h.try_send(record(NOW, "oom_kill", Some("docker/a"), Some("a"))));
    // 100 s of samples, one a second, a year old: thinned to one per 10 s bucket. (The 120 s
    // before the OOM kill keep full density, so they lie after it.)
    for s in 0..100 {
        // Usage rises within each bucket, so the kept sample is the bucket's last.
        let usage = (s % 10) as u64 + 1;
        assert!(h.try_send(sample("docker/a", NOW + 1000 * SEC + s * SEC, usage)));
    }
    assert!(h.flush(Duration::from_secs(5)));
    // Whether the first pass came before or after these entries, the next is due 30 s later
    // by the writer's clock.
    clock.advance(31 * SEC);
    let settled = wait_until(Duration::from_secs(10), || {
        count(&path, "records") == 1 && count(&path, "memory_samples") == 10
    });
    assert!(
        settled,
        "records {}, samples {}",
        count(&path, "records"),
        count(&path, "memory_samples")
    );
    h.flush_and_close();
    join.join().unwrap();
    let r = Journal::open_read_only(&path).unwrap();
    let recs = r.records(&RecordFilter::default()).unwrap();
    assert_eq!(recs[0].ts_ns, NOW);
    let curve = r.memory_curve("docker/a", 0, i64::MAX).unwrap();
    assert!(
        curve.iter().all(|s| s.usage_bytes == 10),
        "kept each bucket's peak"
    );
    for w in curve.windows(2) {
        assert_eq!(w[1].ts_ns - w[0].ts_ns, 10 * SEC);
    }
}
