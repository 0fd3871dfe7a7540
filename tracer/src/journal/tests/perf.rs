//! Manual timing of maintenance, open and a query on a journal twice its default size
//! bound: `cargo test --release -p tracer --lib journal::tests::perf -- --ignored
//! --nocapture` (~30 s; needs ~1.1 GB in /var/tmp, removed afterwards).

use std::time::Instant;

use super::*;

#[test]
#[ignore]
fn large_journal_timings() {
    let dir = std::path::Path::new("/var/tmp/ctrace-journal-perf");
    let _ = std::fs::remove_dir_all(dir);
    let path = dir.join("journal.db");
    let mut j = Journal::open(
        &path,
        JournalOptions {
            max_size_bytes: u64::MAX,
            ..Default::default()
        },
    )
    .unwrap();
    let pad = "q".repeat(800);
    let t0 = Instant::now();
    for b in 0..150 {
        let entries: Vec<Entry> = (0..5000)
            .flat_map(|i| {
                let ts = NOW - 3 * 3600 * SEC + (b * 5000 + i) * 10_000_000;
                let key = format!("docker/{:064x}", i % 50);
                let mut r = record(ts, "exec", Some(&key), Some("web"));
                r.json = format!("{{\"pad\":\"{pad}\"}}");
                [r.into(), sample(&key, ts, 1).into()]
            })
            .collect();
        j.write(&entries).unwrap();
    }
    eprintln!(
        "write 1.5M entries: {:?}, used {} MiB",
        t0.elapsed(),
        j.used_bytes().unwrap() >> 20
    );
    let t0 = Instant::now();
    let rep = j.run_maintenance(NOW).unwrap();
    eprintln!("thinning: {:?} {rep:?}", t0.elapsed());
    drop(j);
    let mut j = open(&path);
    let t0 = Instant::now();
    let rep = j.run_maintenance(NOW).unwrap();
    eprintln!("size bound: {:?} {rep:?}", t0.elapsed());
    let t0 = Instant::now();
    let rep = j.run_maintenance(NOW + 30 * SEC).unwrap();
    eprintln!("next pass: {:?} {rep:?}", t0.elapsed());
    let t0 = Instant::now();
    let rep = j.run_maintenance(NOW + 60 * SEC).unwrap();
    eprintln!("next pass: {:?} {rep:?}", t0.elapsed());
    drop(j);
    eprintln!("file {} MiB", std::fs::metadata(&path).unwrap().len() >> 20);
    let t0 = Instant::now();
    let j = open(&path);
    eprintln!("open (quick_check): {:?}", t0.elapsed());
    let t0 = Instant::now();
    let n = j
        .records(&RecordFilter {
            container_key: Some(format!("docker/{:064x}", 7)),
            types: vec!["exec".into()],
            limit: Some(100),
            ..Default::default()
        })
        .unwrap()
        .len();
    eprintln!("query: {:?} ({n})", t0.elapsed());
    drop(j);
    let _ = std::fs::remove_dir_all(dir);
}
