//! Tests of the journal. Helpers here; one file per area.

mod crash;
mod maintenance;
mod open;
mod query;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

pub(super) const SEC: i64 = 1_000_000_000;
/// A fixed "now" for tests: 2026-11-29T00:00:00Z.
pub(super) const NOW: i64 = 1_796_083_200 * SEC;

/// A directory removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ctrace-journal-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }

    pub(super) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writer options whose clock stands at [`NOW`], the fixtures' time. The writer's retention and
/// thinning compare entries with its clock: on the wall clock, fixtures stamped at `NOW` would
/// age with the calendar, and a test would pass or fail by the day it runs on.
pub(super) fn writer_opts() -> WriterOptions {
    WriterOptions {
        clock: std::sync::Arc::new(ManualClock::new(NOW)),
        ..WriterOptions::default()
    }
}

pub(super) fn open(path: &Path) -> Journal {
    Journal::open(path, JournalOptions::default()).unwrap()
}

pub(super) fn record(ts_ns: i64, kind: &str, key: Option<&str>, name: Option<&str>) -> Record {
    let json = serde_json::json!({
        "schema": "ctrace.v1",
        "type": kind,
        "ts_ns": ts_ns,
        "container": key.map(|k| serde_json::json!({ "id": k, "name": name })),
    });
    Record {
        ts_ns,
        kind: kind.to_owned(),
        container_key: key.map(str::to_owned),
        container_id: key.map(|k| k.rsplit('/').next().unwrap_or(k).to_owned()),
        container_name: name.map(str::to_owned),
        runtime: key.map(|k| k.split('/').next().unwrap_or("").to_owned()),
        json: json.to_string(),
    }
}

pub(super) fn sample(key: &str, ts_ns: i64, usage: u64) -> MemorySample {
    MemorySample {
        container_key: key.to_owned(),
        ts_ns,
        usage_bytes: usage,
        limit_bytes: Some(100 << 20),
        rss_top: None,
    }
}

pub(super) fn upsert(key: &str, name: &str, seen_ns: i64) -> ContainerUpsert {
    ContainerUpsert {
        key: key.to_owned(),
        id: key.rsplit('/').next().unwrap().to_owned(),
        name: Some(name.to_owned()),
        runtime: key.split('/').next().unwrap().to_owned(),
        seen_ns,
        ..Default::default()
    }
}

/// Row count of a table, through a separate connection (sees committed data only).
pub(super) fn count(path: &Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

pub(super) fn integrity(path: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}
