//! Opening: creation, refusals, migrations, read-only use, failing disks.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::journal::schema::{Migration, MIGRATIONS};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Opening `path` must fail with `NotAJournal` naming it, leaving its bytes and the directory
/// unchanged; returns the message.
fn assert_refused_untouched(path: &Path) -> String {
    let before = std::fs::read(path).unwrap();
    let dir = path.parent().unwrap();
    let files = listing(dir);
    let err = Journal::open(path, JournalOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, JournalError::NotAJournal { path: p, .. } if p == path),
        "{err:?}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(Journal::open_read_only(path).is_err());
    assert_eq!(std::fs::read(path).unwrap(), before, "file modified");
    assert_eq!(listing(dir), files, "files created next to it");
    msg
}

#[test]
fn creates_file_0600_and_missing_dir_0700() {
    let t = TempDir::new("create");
    let path = t.join("a/b/journal.db");
    let mut j = open(&path);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&t.join("a")), 0o700);
    assert_eq!(mode(&t.join("a/b")), 0o700);
    j.write(&[record(NOW, "exec", None, None).into()]).unwrap();
    for side in ["journal.db-wal", "journal.db-shm"] {
        assert_eq!(mode(&t.join("a/b").join(side)), 0o600, "{side}");
    }
    assert_eq!(j.schema_version().unwrap(), CURRENT_VERSION);
    let mode: String = j
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = j
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1, "NORMAL");
    drop(j);
    // Reopening keeps the data.
    let j = open(&path);
    assert_eq!(j.records(&RecordFilter::default()).unwrap().len(), 1);
}

#[test]
fn existing_directory_is_not_changed() {
    let t = TempDir::new("dirperm");
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let _j = open(&t.join("journal.db"));
    assert_eq!(mode(t.path()), 0o755);
}

#[test]
fn empty_file_becomes_a_journal() {
    let t = TempDir::new("empty");
    let path = t.join("journal.db");
    std::fs::write(&path, b"").unwrap();
    let j = open(&path);
    assert_eq!(j.schema_version().unwrap(), CURRENT_VERSION);
}

#[test]
fn refuses_text_file_without_touching_it() {
    let t = TempDir::new("text");
    let path = t.join("journal.db");
    std::fs::write(&path, "not a database\n".repeat(20)).unwrap();
    let msg = assert_refused_untouched(&path);
    assert!(msg.contains("not an SQLite database"), "{msg}");
    // Short files too.
    std::fs::write(&path, "hello\n").unwrap();
    let msg = assert_refused_untouched(&path);
    assert!(msg.contains("too short"), "{msg}");
}

#[test]
fn refuses_directory() {
    let t = TempDir::new("isdir");
    let err = Journal::open(t.path(), JournalOptions::default()).unwrap_err();
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
}

/// A closed journal with a few hundred KiB of records.
fn filled_journal(path: &Path) {
    let mut j = open(path);
    let entries: Vec<Entry> = (0..2000)
        .map(|i| record(NOW + i, "exec", Some("docker/abc"), Some("web")).into())
        .collect();
    j.write(&entries).unwrap();
    drop(j); // last connection: checkpoints and removes the -wal file
    assert!(!super::super::schema::wal_path(path).exists());
}

#[test]
fn refuses_truncated_sqlite_file_without_touching_it() {
    let t = TempDir::new("trunc");
    let path = t.join("journal.db");
    filled_journal(&path);
    let full = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(full.len() > 8 * page);
    // Cut at a page boundary: the header's page count no longer fits.
    std::fs::write(&path, &full[..full.len() / 2 / page * page]).unwrap();
    let msg = assert_refused_untouched(&path);
    assert!(msg.contains("truncated"), "{msg}");
    // Cut anywhere.
    std::fs::write(&path, &full[..full.len() / 3 + 17]).unwrap();
    let msg = assert_refused_untouched(&path);
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn refuses_corrupted_pages_without_touching_it() {
    let t = TempDir::new("corrupt");
    let path = t.join("journal.db");
    filled_journal(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // Scribble over pages 3..5 (b-tree pages of the tables and indexes).
    for b in &mut bytes[2 * 4096..5 * 4096] {
        *b = 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let msg = assert_refused_untouched(&path);
    assert!(
        msg.contains("corrupt") || msg.contains("malformed"),
        "{msg}"
    );
}

#[test]
fn refuses_other_sqlite_database_without_touching_it() {
    let t = TempDir::new("foreign");
    let path = t.join("journal.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('x');")
            .unwrap();
    }
    let msg = assert_refused_untouched(&path);
    assert!(msg.contains("another application"), "{msg}");
    assert!(msg.contains("users"), "{msg}");
}

#[test]
fn refuses_newer_schema_without_touching_it() {
    let t = TempDir::new("newer");
    let path = t.join("journal.db");
    filled_journal(&path);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [(CURRENT_VERSION + 1).to_string()],
        )
        .unwrap();
        c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(&path, JournalOptions::default()).unwrap_err();
    match &err {
        JournalError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!((*found, *supported), (CURRENT_VERSION + 1, CURRENT_VERSION));
        }
        e => panic!("{e:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("schema version {}", CURRENT_VERSION + 1)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("version {CURRENT_VERSION} supported")),
        "{msg}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    let err = Journal::open_read_only(&path).unwrap_err();
    assert!(matches!(err, JournalError::NewerSchema { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Version 1 as a ctrace of schema version 1 writes it, by hand.
const HAND_V1: &str = "
PRAGMA application_id = 1668575850;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE records (id INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, type TEXT NOT NULL,
    container_key TEXT, container_id TEXT, container_name TEXT, runtime TEXT,
    json TEXT NOT NULL);
CREATE INDEX records_ts ON records (ts_ns);
CREATE INDEX records_type_ts ON records (type, ts_ns);
CREATE INDEX records_container_ts ON records (container_key, ts_ns);
CREATE INDEX records_name_ts ON records (container_name, ts_ns);
CREATE TABLE containers (key TEXT PRIMARY KEY, id TEXT NOT NULL, name TEXT,
    runtime TEXT NOT NULL, image TEXT, namespace TEXT, labels TEXT,
    first_seen_ns INTEGER NOT NULL, last_seen_ns INTEGER NOT NULL, gone_ns INTEGER,
    exit_code INTEGER, meta TEXT);
CREATE INDEX containers_name ON containers (name, first_seen_ns);
CREATE INDEX containers_id ON containers (id);
CREATE TABLE memory_samples (id INTEGER PRIMARY KEY, container_key TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, usage_bytes INTEGER NOT NULL, limit_bytes INTEGER, rss_top TEXT);
CREATE UNIQUE INDEX memory_samples_container_ts ON memory_samples (container_key, ts_ns);
CREATE INDEX memory_samples_ts ON memory_samples (ts_ns);
INSERT INTO meta VALUES ('schema_version', '1'), ('application', 'ctrace journal');
INSERT INTO records (ts_ns, type, container_key, container_name, json)
    VALUES (1000, 'oom_kill', 'docker/abc', 'web', '{\"type\":\"oom_kill\"}');
";

fn hand_v1(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(HAND_V1).unwrap();
}

#[test]
fn hand_made_v1_opens_as_current() {
    assert_eq!(APPLICATION_ID, 1_668_575_850);
    let t = TempDir::new("v1");
    let path = t.join("journal.db");
    hand_v1(&path);
    let mut j = open(&path);
    assert_eq!(j.schema_version().unwrap(), CURRENT_VERSION);
    j.write(&[sample("docker/abc", 2000, 5).into()]).unwrap();
    let recs = j.records(&RecordFilter::default()).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].kind, "oom_kill");
}

fn v2_add_column(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE records ADD COLUMN severity INTEGER;
         UPDATE records SET severity = 3 WHERE type = 'oom_kill';
         CREATE INDEX records_severity ON records (severity);",
    )
}

fn v2_broken(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE records ADD COLUMN severity INTEGER;
         CREATE INDEX nope ON no_such_table (x);",
    )
}

#[test]
fn migrates_v1_to_a_newer_version_in_a_transaction() {
    let t = TempDir::new("migrate");
    let path = t.join("journal.db");
    hand_v1(&path);
    let with_v2 = [
        Migration {
            to: 1,
            apply: MIGRATIONS[0].apply,
        },
        Migration {
            to: 2,
            apply: v2_add_column,
        },
    ];
    let j = Journal::open_with(&path, JournalOptions::default(), &with_v2).unwrap();
    assert_eq!(j.schema_version().unwrap(), 2);
    let sev: i64 = j
        .conn
        .query_row("SELECT severity FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sev, 3);
    drop(j);
    // This build (version 1) now refuses it.
    let err = Journal::open(&path, JournalOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::NewerSchema {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn failed_migration_rolls_back() {
    let t = TempDir::new("migrate-fail");
    let path = t.join("journal.db");
    hand_v1(&path);
    let broken = [
        Migration {
            to: 1,
            apply: MIGRATIONS[0].apply,
        },
        Migration {
            to: 2,
            apply: v2_broken,
        },
    ];
    let err = Journal::open_with(&path, JournalOptions::default(), &broken).unwrap_err();
    assert!(
        matches!(err, JournalError::Migration { to: 2, .. }),
        "{err:?}"
    );
    let j = open(&path);
    assert_eq!(j.schema_version().unwrap(), 1);
    let cols: i64 = j
        .conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('records') WHERE name = 'severity'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cols, 0, "partial migration left behind");
}

#[test]
fn fresh_journal_goes_through_all_migrations() {
    let t = TempDir::new("fresh-v2");
    let path = t.join("journal.db");
    let with_v2 = [
        Migration {
            to: 1,
            apply: MIGRATIONS[0].apply,
        },
        Migration {
            to: 2,
            apply: v2_add_column,
        },
    ];
    let j = Journal::open_with(&path, JournalOptions::default(), &with_v2).unwrap();
    assert_eq!(j.schema_version().unwrap(), 2);
}

#[test]
fn read_only_open_reads_but_never_writes() {
    let t = TempDir::new("ro");
    let path = t.join("journal.db");
    let mut w = open(&path);
    w.write(&[record(NOW, "oom_kill", Some("docker/abc"), Some("web")).into()])
        .unwrap();
    let mut r = Journal::open_read_only(&path).unwrap();
    assert_eq!(r.records(&RecordFilter::default()).unwrap().len(), 1);
    let err = r
        .write(&[record(NOW, "exec", None, None).into()])
        .unwrap_err();
    assert!(matches!(err, JournalError::ReadOnly { .. }), "{err:?}");
    assert!(r.run_maintenance(NOW).is_err());
    // A writer on a read-only journal is disabled from the start and only counts.
    let (h, join) = r.spawn_writer_with(writer_opts());
    assert!(!h.try_send(record(NOW, "exec", None, None)));
    let st = h.status();
    assert!(st.disabled);
    assert!(st.last_error.unwrap().contains("read-only"));
    assert_eq!(st.dropped, 1);
    h.flush_and_close();
    join.join().unwrap();
    // Concurrent reads while the writer keeps writing (WAL).
    w.write(&[record(NOW + 1, "exec", None, None).into()])
        .unwrap();
    let r = Journal::open_read_only(&path).unwrap();
    assert_eq!(r.records(&RecordFilter::default()).unwrap().len(), 2);
    // Missing file: an error naming it, and nothing created.
    let missing = t.join("missing.db");
    let err = Journal::open_read_only(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.db"), "{err}");
    assert!(!missing.exists());
}

/// A failing connection (`query_only`): every batch fails, the writer disables itself,
/// senders never block and everything is counted.
#[test]
fn failing_writes_disable_the_writer() {
    let t = TempDir::new("failing");
    let j = open(&t.join("journal.db"));
    j.conn.pragma_update(None, "query_only", true).unwrap();
    let (h, join) = j.spawn_writer_with(WriterOptions {
        batch_max: 10,
        ..writer_opts()
    });
    let mut sent = 0u64;
    let mut tried = 0u64;
    while !h.status().disabled && tried < 1000 {
        for _ in 0..10 {
            tried += 1;
            assert!(h.try_send(record(NOW + tried as i64, "exec", None, None)));
            sent += 1;
        }
        assert!(h.flush(Duration::from_secs(5)));
    }
    let st = h.status();
    assert!(st.disabled, "{st:?}");
    assert_eq!(st.failed_batches, 3);
    assert_eq!((st.written, st.dropped), (0, sent));
    let err = st.last_error.unwrap();
    assert!(
        err.contains("disabled") && err.contains("readonly"),
        "{err}"
    );
    // Once disabled, sends are refused and counted.
    assert!(!h.try_send(record(NOW, "exec", None, None)));
    assert_eq!(h.dropped(), sent + 1);
    let fin = h.flush_and_close();
    assert_eq!(join.join().unwrap(), fin);
}

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` when mounting is not possible (not root, no mount binary, ...).
    fn mount(t: &TempDir, size: &str) -> Option<Tmpfs> {
        let dir = t.join("mnt");
        std::fs::create_dir_all(&dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }

    fn remount_ro(&self) -> bool {
        std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A full disk (a tiny tmpfs): the writer disables itself and says why, senders never
/// block, and the journal file stays readable.
#[test]
fn full_disk_disables_writer_without_blocking() {
    let t = TempDir::new("enospc");
    let Some(fs) = Tmpfs::mount(&t, "256k") else {
        crate::test_support::skip("cannot mount a tmpfs (needs root)");
        return;
    };
    let path = fs.0.join("journal.db");
    let j = open(&path);
    let (h, join) = j.spawn_writer_with(WriterOptions {
        batch_max: 50,
        batch_interval: Duration::from_millis(20),
        ..writer_opts()
    });
    let big = "x".repeat(2000);
    let mut slowest = Duration::ZERO;
    let start = Instant::now();
    let mut i = 0;
    while !h.status().disabled && start.elapsed() < Duration::from_secs(30) {
        let mut r = record(NOW + i, "exec", None, None);
        r.json = format!("{{\"pad\":\"{big}\",\"i\":{i}}}");
        let t0 = Instant::now();
        h.try_send(r);
        slowest = slowest.max(t0.elapsed());
        i += 1;
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let st = h.status();
    assert!(st.disabled, "{st:?}");
    assert!(st.failed_batches >= 3, "{st:?}");
    assert!(st.written > 0, "{st:?}");
    let err = st.last_error.clone().unwrap();
    assert!(err.contains("full"), "{err}");
    assert!(
        slowest < Duration::from_millis(500),
        "try_send blocked {slowest:?}"
    );
    // Still counting after it gave up.
    assert!(!h.try_send(record(NOW, "exec", None, None)));
    let fin = h.flush_and_close();
    assert_eq!(fin.dropped, st.dropped + 1);
    join.join().unwrap();
    assert_eq!(integrity(&path), "ok");
    // Every committed entry is there; entries of batches that failed at COMMIT may be too
    // (SQLite can fail a commit on a full disk after its WAL frames are written), and no
    // others.
    let r = Journal::open_read_only(&path).unwrap();
    let rows = r.records(&RecordFilter::default()).unwrap().len() as u64;
    assert!(
        (fin.written..=fin.written + fin.unconfirmed).contains(&rows),
        "{rows} rows, {fin:?}"
    );
    assert!(fin.unconfirmed <= fin.dropped, "{fin:?}");
}

/// A read-only file system: creating fails, opening for writing is refused, reading works.
#[test]
fn read_only_file_system() {
    let t = TempDir::new("rofs");
    let Some(fs) = Tmpfs::mount(&t, "1m") else {
        crate::test_support::skip("cannot mount a tmpfs (needs root)");
        return;
    };
    let path = fs.0.join("journal.db");
    let mut j = open(&path);
    j.write(&[record(NOW, "oom_kill", Some("docker/abc"), Some("web")).into()])
        .unwrap();
    drop(j);
    assert!(fs.remount_ro());
    let err = Journal::open(&path, JournalOptions::default()).unwrap_err();
    assert!(matches!(err, JournalError::ReadOnly { .. }), "{err:?}");
    assert!(err.to_string().contains("journal.db"), "{err}");
    let err = Journal::open(&fs.0.join("new.db"), JournalOptions::default()).unwrap_err();
    assert!(matches!(err, JournalError::Io { .. }), "{err:?}");
    let r = Journal::open_read_only(&path);
    match r {
        Ok(r) => assert_eq!(r.records(&RecordFilter::default()).unwrap().len(), 1),
        Err(e) => panic!("read-only open on a read-only file system: {e}"),
    }
}
