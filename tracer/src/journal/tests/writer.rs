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
        ..Default::default()
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
        ..Default::default()
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
        ..Default::default()
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
        ..Default::default()
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
        ..Default::default()
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

/// Retention runs in the writer, driven by the injected clock, at most every 30 s.
#[test]
fn writer_enforces_retention_on_its_clock() {
    let t = TempDir::new("wmaint");
    let path = t.join("journal.db");
    let clock = Arc::new(ManualClock::new(NOW));
    let retention = Duration::from_secs(3600);
    let j = Journal::open(
        &path,
        JournalOptions {
            retention,
            ..Default::default()
        },
    )
    .unwrap();
    let (h, join) = j.spawn_writer_with(WriterOptions {
        batch_interval: Duration::from_millis(20),
        clock: clock.clone(),
        ..Default::default()
    });
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
