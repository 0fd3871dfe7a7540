//! Crash safety: a writer process killed with SIGKILL in the middle of writing loses at
//! most the batch in flight; the journal reopens, passes `integrity_check`, and keeps every
//! batch committed before the kill.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

const CHILD_ENV: &str = "CTRACE_JOURNAL_CRASH_CHILD";
const ROUND_ENV: &str = "CTRACE_JOURNAL_CRASH_ROUND";
/// Timestamps of round `r` start at `NOW + r * ROUND_SPAN`.
const ROUND_SPAN: i64 = 1_000_000_000_000;

/// Not a test on its own: in a child process started by `sigkill_mid_write_keeps_commits`
/// (with `CTRACE_JOURNAL_CRASH_CHILD` set), writes until killed, printing
/// `COMMITTED <n>` whenever records `0..n` are known to be committed.
#[test]
fn crash_child_writer_loop() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let round: i64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let j = open(Path::new(&path));
    let (h, _join) = j.spawn_writer_with(WriterOptions {
        batch_max: 200,
        batch_interval: Duration::from_millis(5),
        ..writer_opts()
    });
    let pad = "z".repeat(400);
    let mut n: i64 = 0;
    loop {
        for _ in 0..1000 {
            let mut r = record(
                NOW + round * ROUND_SPAN + n,
                "oom_kill",
                Some("docker/crash"),
                Some("crash"),
            );
            r.json = format!("{{\"seq\":{n},\"pad\":\"{pad}\"}}");
            assert!(h.try_send(r));
            h.try_send(sample(
                "docker/crash",
                NOW + round * ROUND_SPAN + n,
                n as u64,
            ));
            n += 1;
        }
        assert!(h.flush(Duration::from_secs(30)));
        let st = h.status();
        assert_eq!(st.dropped, 0, "{st:?}");
        println!("COMMITTED {n}");
    }
}

/// Runs the child writer for round `round` and SIGKILLs it after `flushes` confirmed commits
/// (while it keeps writing); returns how many records it confirmed.
fn run_and_kill(path: &Path, round: i64, flushes: usize) -> i64 {
    let name = module_path!()
        .split_once("::")
        .map(|(_, rest)| format!("{rest}::crash_child_writer_loop"))
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut committed = 0;
    let mut seen = 0;
    let start = Instant::now();
    for line in out.lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("COMMITTED ") {
            committed = n.trim().parse().unwrap();
            seen += 1;
            if seen >= flushes {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(120), "child too slow");
    }
    assert!(seen >= flushes, "child ended early");
    // Let it get into its next batches, then kill it without warning.
    std::thread::sleep(Duration::from_millis(3 + 7 * round as u64));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    committed
}

#[test]
fn sigkill_mid_write_keeps_commits() {
    let t = TempDir::new("crash");
    let path = t.join("journal.db");
    let mut confirmed = Vec::new();
    for round in 0..3 {
        confirmed.push(run_and_kill(&path, round, 5 + 2 * round as usize));
        // A killed writer leaves its -wal file behind: recovery happens on open.
        assert_eq!(integrity(&path), "ok", "round {round}");
        let j = open(&path);
        assert_eq!(j.schema_version().unwrap(), CURRENT_VERSION);
        for (r, &n) in confirmed.iter().enumerate() {
            let from = NOW + r as i64 * ROUND_SPAN;
            let recs = j
                .records(&RecordFilter {
                    since_ns: Some(from),
                    until_ns: Some(from + n - 1),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(recs.len() as i64, n, "round {r}: committed records lost");
            let curve = j.memory_curve("docker/crash", from, from + n - 1).unwrap();
            assert_eq!(curve.len() as i64, n, "round {r}: committed samples lost");
        }
        let total = j.records(&RecordFilter::default()).unwrap().len() as i64;
        assert!(total >= confirmed.iter().sum::<i64>());
        eprintln!("round {round}: confirmed {confirmed:?}, total {total}");
    }
}
