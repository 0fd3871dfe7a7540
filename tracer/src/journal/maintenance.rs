//! Retention: age and size bounds, and thinning of old memory samples.

use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};

/// Samples younger than this keep their full density.
pub const DENSE_WINDOW_NS: i64 = 10 * 60 * 1_000_000_000;
/// Older samples are thinned to one per bucket of this width (the highest usage in it).
pub const THIN_BUCKET_NS: i64 = 10 * 1_000_000_000;
/// Samples of a container this long before one of its `oom_kill`, `kill` or `container_stop`
/// records (what a post-mortem tells) are never thinned.
pub const OOM_KEEP_NS: i64 = 120 * 1_000_000_000;
/// Size enforcement deletes down to this fraction of the maximum size.
pub const SIZE_TARGET_FRACTION: f64 = 0.9;

/// Rows deleted per statement (each its own transaction).
const CHUNK: i64 = 2_000;
/// Width of one thinning transaction.
const THIN_STEP_NS: i64 = 10 * 60 * 1_000_000_000;

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Records deleted for age.
    pub records_expired: u64,
    /// Memory samples deleted for age.
    pub samples_expired: u64,
    /// Container rows (tombstones, long-unseen containers) deleted for age.
    pub containers_expired: u64,
    /// Memory samples deleted by thinning.
    pub samples_thinned: u64,
    /// Records deleted to respect the size bound.
    pub records_evicted: u64,
    /// Memory samples deleted to respect the size bound.
    pub samples_evicted: u64,
    /// Used bytes (pages in use × page size) before the pass.
    pub used_bytes_before: u64,
    /// Used bytes after the pass.
    pub used_bytes_after: u64,
    /// False when the pass stopped at its deadline with work left.
    pub complete: bool,
}

/// Size of the database: `(used, file)` bytes, `used` excluding free pages.
pub(crate) fn sizes(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let freelist: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let bytes = |pages: i64| u64::try_from(pages.max(0) * page_size).unwrap_or(0);
    Ok((bytes(page_count - freelist), bytes(page_count)))
}

fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// One maintenance pass at time `now_ns`. Stops early (with `complete: false`) once
/// `deadline` has passed; every step is its own small transaction, so stopping is safe.
pub(crate) fn run(
    conn: &Connection,
    retention_ns: i64,
    max_size_bytes: u64,
    now_ns: i64,
    deadline: Option<Instant>,
) -> rusqlite::Result<MaintenanceReport> {
    let mut rep = MaintenanceReport {
        used_bytes_before: sizes(conn)?.0,
        ..Default::default()
    };
    let cutoff = now_ns.saturating_sub(retention_ns);
    rep.complete = expire(conn, cutoff, &mut rep, deadline)?
        && thin(conn, now_ns, &mut rep, deadline)?
        && bound_size(conn, max_size_bytes, &mut rep, deadline)?;
    rep.used_bytes_after = sizes(conn)?.0;
    Ok(rep)
}

/// Deletes, in chunks, rows of `table` older than `cutoff`. Returns (deleted, finished).
fn delete_older(
    conn: &Connection,
    table: &str,
    cutoff: i64,
    deadline: Option<Instant>,
) -> rusqlite::Result<(u64, bool)> {
    let sql = format!(
        "DELETE FROM {table} WHERE id IN
           (SELECT id FROM {table} WHERE ts_ns < ?1 ORDER BY ts_ns LIMIT ?2)"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut total = 0u64;
    loop {
        let n = st.execute((cutoff, CHUNK))?;
        total += n as u64;
        if (n as i64) < CHUNK {
            return Ok((total, true));
        }
        if past(deadline) {
            return Ok((total, false));
        }
    }
}

/// Age bound. Containers are kept until `retention` after they were last seen or went away.
fn expire(
    conn: &Connection,
    cutoff: i64,
    rep: &mut MaintenanceReport,
    deadline: Option<Instant>,
) -> rusqlite::Result<bool> {
    let (n, done) = delete_older(conn, "records", cutoff, deadline)?;
    rep.records_expired += n;
    if !done {
        return Ok(false);
    }
    let (n, done) = delete_older(conn, "memory_samples", cutoff, deadline)?;
    rep.samples_expired += n;
    if !done {
        return Ok(false);
    }
    rep.containers_expired += conn.execute(
        "DELETE FROM containers WHERE coalesce(gone_ns, last_seen_ns) < ?1",
        [cutoff],
    )? as u64;
    Ok(true)
}

/// Where thinning has got to (samples before it are thinned), from `meta`.
fn thinned_until(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'thinned_until_ns'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()))
}

/// Thins samples older than the dense window to one per [`THIN_BUCKET_NS`] and container
/// (the highest usage of the bucket), except in the [`OOM_KEEP_NS`] before an `oom_kill`,
/// `kill` or `container_stop` record of the same container. Proceeds in ten-minute transactions from a watermark.
fn thin(
    conn: &Connection,
    now_ns: i64,
    rep: &mut MaintenanceReport,
    deadline: Option<Instant>,
) -> rusqlite::Result<bool> {
    let end = (now_ns.saturating_sub(DENSE_WINDOW_NS)).div_euclid(THIN_BUCKET_NS) * THIN_BUCKET_NS;
    let mut from = thinned_until(conn)?.unwrap_or(i64::MIN);
    // The incident look-up goes through (type, ts_ns): few such records per window,
    // where (container_key, ts_ns) would visit every record of the container.
    let mut delete = conn.prepare_cached(
        "DELETE FROM memory_samples AS s
         WHERE s.ts_ns >= ?1 AND s.ts_ns < ?2
           AND s.id NOT IN (
               SELECT id FROM (
                   SELECT id, max(usage_bytes) FROM memory_samples
                   WHERE ts_ns >= ?1 AND ts_ns < ?2
                   GROUP BY container_key, ts_ns / ?3))
           AND NOT EXISTS (
               SELECT 1 FROM records AS r INDEXED BY records_type_ts
               WHERE r.type IN ('oom_kill', 'kill', 'container_stop')
                 AND r.ts_ns >= s.ts_ns AND r.ts_ns <= s.ts_ns + ?4
                 AND r.container_key = s.container_key)",
    )?;
    loop {
        // Skip empty stretches: start at the oldest unthinned sample's bucket.
        let next: Option<i64> = conn.query_row(
            "SELECT min(ts_ns) FROM memory_samples WHERE ts_ns >= ?1",
            [from],
            |r| r.get(0),
        )?;
        let start = match next {
            Some(ts) if ts < end => ts.div_euclid(THIN_BUCKET_NS) * THIN_BUCKET_NS,
            _ => {
                set_thinned_until(conn, end.max(from))?;
                return Ok(true);
            }
        };
        let stop = start.saturating_add(THIN_STEP_NS).min(end);
        let tx = conn.unchecked_transaction()?;
        rep.samples_thinned += delete.execute((start, stop, THIN_BUCKET_NS, OOM_KEEP_NS))? as u64;
        set_thinned_until(&tx, stop)?;
        tx.commit()?;
        from = stop;
        if past(deadline) {
            return Ok(false);
        }
    }
}

fn set_thinned_until(conn: &Connection, ts: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('thinned_until_ns', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [ts.to_string()],
    )?;
    Ok(())
}

/// Size bound: above `max` used bytes, deletes the oldest records and samples (a slice of
/// time at a time, sized by the excess) down to [`SIZE_TARGET_FRACTION`] of it; then gives
/// free pages back to the file system while the file is larger than `max`.
fn bound_size(
    conn: &Connection,
    max: u64,
    rep: &mut MaintenanceReport,
    deadline: Option<Instant>,
) -> rusqlite::Result<bool> {
    let target = (max as f64 * SIZE_TARGET_FRACTION) as u64;
    let (mut used, _) = sizes(conn)?;
    if used > max {
        while used > target {
            let (lo, hi): (Option<i64>, Option<i64>) = conn.query_row(
                "SELECT min(lo), max(hi) FROM (
                     SELECT min(ts_ns) AS lo, max(ts_ns) AS hi FROM records
                     UNION ALL
                     SELECT min(ts_ns), max(ts_ns) FROM memory_samples)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let (Some(lo), Some(hi)) = (lo, hi) else {
                break; // nothing left to delete
            };
            // Data is roughly spread over time: drop the oldest slice of the span that
            // matches the excess; re-measure and repeat (index pages free up less than
            // proportionally).
            let excess = (used - target) as f64 / used as f64;
            let span = (hi - lo) as f64;
            let cutoff = lo.saturating_add(((span * excess) as i64).max(1));
            let (n, done) = delete_older(conn, "records", cutoff, deadline)?;
            rep.records_evicted += n;
            if !done {
                return Ok(false);
            }
            let (n, done) = delete_older(conn, "memory_samples", cutoff, deadline)?;
            rep.samples_evicted += n;
            if !done {
                return Ok(false);
            }
            used = sizes(conn)?.0;
            if past(deadline) && used > target {
                return Ok(false);
            }
        }
    }
    let (_, file) = sizes(conn)?;
    if file > max {
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = (file - max).div_ceil(page_size.max(1) as u64);
        // A no-op unless the journal was created with auto_vacuum = INCREMENTAL.
        // Frees one page per result row: step through all of them.
        let mut st = conn.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
    }
    Ok(true)
}
