//! Writing entries: one transaction per batch.

use std::collections::HashMap;

use rusqlite::{Connection, TransactionBehavior};

use super::types::{ContainerUpsert, Entry, MemorySample, Record};

/// Saturating u64 → i64 for SQLite integers.
pub(crate) fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const INSERT_RECORD: &str = "INSERT INTO records
    (ts_ns, type, container_key, container_id, container_name, runtime, json)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const INSERT_SAMPLE: &str = "INSERT OR REPLACE INTO memory_samples
    (container_key, ts_ns, usage_bytes, limit_bytes, rss_top)
    VALUES (?1, ?2, ?3, ?4, ?5)";

/// Upsert rules: see [`ContainerUpsert`]. In `SET`, bare column names are the stored values.
const UPSERT_CONTAINER: &str = "INSERT INTO containers
    (key, id, name, runtime, image, namespace, labels, first_seen_ns, last_seen_ns, gone_ns,
     exit_code, meta)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11)
    ON CONFLICT (key) DO UPDATE SET
        id = excluded.id,
        name = coalesce(excluded.name, name),
        runtime = excluded.runtime,
        image = coalesce(excluded.image, image),
        namespace = coalesce(excluded.namespace, namespace),
        labels = coalesce(excluded.labels, labels),
        first_seen_ns = min(first_seen_ns, excluded.first_seen_ns),
        last_seen_ns = max(last_seen_ns, excluded.last_seen_ns),
        gone_ns = CASE
            WHEN excluded.gone_ns IS NOT NULL THEN excluded.gone_ns
            WHEN gone_ns IS NOT NULL AND excluded.last_seen_ns > gone_ns THEN NULL
            ELSE gone_ns END,
        exit_code = CASE
            WHEN excluded.gone_ns IS NULL AND gone_ns IS NOT NULL
                 AND excluded.last_seen_ns > gone_ns THEN NULL
            ELSE coalesce(excluded.exit_code, exit_code) END,
        meta = coalesce(excluded.meta, meta)";

const BUMP_LAST_SEEN: &str =
    "UPDATE containers SET last_seen_ns = ?2 WHERE key = ?1 AND last_seen_ns < ?2";

/// Writes `entries` in one transaction; returns how many were written.
/// Why a batch was not written, and whether it failed at COMMIT: then SQLite may have put the
/// commit frame into the WAL before failing (e.g. the shared-memory index could not grow on a
/// full disk), so the batch can still show up when the journal is next opened.
#[derive(Debug)]
pub(crate) struct BatchError {
    pub(crate) error: rusqlite::Error,
    pub(crate) at_commit: bool,
}

impl From<rusqlite::Error> for BatchError {
    fn from(error: rusqlite::Error) -> Self {
        BatchError {
            error,
            at_commit: false,
        }
    }
}

pub(crate) fn write_batch(conn: &mut Connection, entries: &[Entry]) -> Result<usize, BatchError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Latest activity per container, to keep `containers.last_seen_ns` current.
    let mut seen: HashMap<&str, i64> = HashMap::new();
    for entry in entries {
        match entry {
            Entry::Record(r) => {
                insert_record(&tx, r)?;
                if let Some(k) = &r.container_key {
                    let ts = seen.entry(k).or_insert(r.ts_ns);
                    *ts = (*ts).max(r.ts_ns);
                }
            }
            Entry::ContainerUpsert(c) => upsert_container(&tx, c)?,
            Entry::MemorySample(s) => {
                insert_sample(&tx, s)?;
                let ts = seen.entry(&s.container_key).or_insert(s.ts_ns);
                *ts = (*ts).max(s.ts_ns);
            }
        }
    }
    {
        let mut bump = tx.prepare_cached(BUMP_LAST_SEEN)?;
        for (key, ts) in seen {
            bump.execute((key, ts))?;
        }
    }
    tx.commit().map_err(|error| BatchError {
        error,
        at_commit: true,
    })?;
    Ok(entries.len())
}

fn insert_record(conn: &Connection, r: &Record) -> rusqlite::Result<()> {
    conn.prepare_cached(INSERT_RECORD)?.execute((
        r.ts_ns,
        &r.kind,
        &r.container_key,
        &r.container_id,
        &r.container_name,
        &r.runtime,
        &r.json,
    ))?;
    Ok(())
}

fn insert_sample(conn: &Connection, s: &MemorySample) -> rusqlite::Result<()> {
    let rss_top = s
        .rss_top
        .as_ref()
        .map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".to_owned()));
    conn.prepare_cached(INSERT_SAMPLE)?.execute((
        &s.container_key,
        s.ts_ns,
        sql_int(s.usage_bytes),
        s.limit_bytes.map(sql_int),
        rss_top,
    ))?;
    Ok(())
}

fn upsert_container(conn: &Connection, c: &ContainerUpsert) -> rusqlite::Result<()> {
    let labels = c
        .labels
        .as_ref()
        .map(|l| serde_json::to_string(l).unwrap_or_else(|_| "{}".to_owned()));
    let meta = c.meta.as_ref().map(|m| m.to_string());
    conn.prepare_cached(UPSERT_CONTAINER)?.execute((
        &c.key,
        &c.id,
        &c.name,
        &c.runtime,
        &c.image,
        &c.namespace,
        labels,
        c.seen_ns,
        c.gone_ns,
        c.exit_code,
        meta,
    ))?;
    Ok(())
}
