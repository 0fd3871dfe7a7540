//! Reading the journal.

use rusqlite::{types::Value as SqlValue, Connection, OptionalExtension, Row};

use super::types::{ContainerRow, MemorySample, RecordFilter, StoredRecord};

/// Records matching `f`, oldest first (the newest `f.limit` ones when limited).
pub(crate) fn records(conn: &Connection, f: &RecordFilter) -> rusqlite::Result<Vec<StoredRecord>> {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    let mut push = |cond: &str, v: SqlValue, conds: &mut Vec<String>| {
        params.push(v);
        conds.push(cond.replace('?', &format!("?{}", params.len())));
    };
    if let Some(k) = &f.container_key {
        push("container_key = ?", k.clone().into(), &mut conds);
    }
    if let Some(n) = &f.container_name {
        push("container_name = ?", n.clone().into(), &mut conds);
    }
    if let Some(s) = f.since_ns {
        push("ts_ns >= ?", s.into(), &mut conds);
    }
    if let Some(u) = f.until_ns {
        push("ts_ns <= ?", u.into(), &mut conds);
    }
    if !f.types.is_empty() {
        let mut marks = Vec::new();
        for t in &f.types {
            params.push(t.clone().into());
            marks.push(format!("?{}", params.len()));
        }
        conds.push(format!("type IN ({})", marks.join(", ")));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = match f.limit {
        Some(limit) => format!(
            "SELECT * FROM (
                 SELECT id, ts_ns, type, container_key, json FROM records {filter}
                 ORDER BY ts_ns DESC, id DESC LIMIT {limit})
             ORDER BY ts_ns, id"
        ),
        None => format!(
            "SELECT id, ts_ns, type, container_key, json FROM records {filter} ORDER BY ts_ns, id"
        ),
    };
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
        Ok(StoredRecord {
            id: r.get(0)?,
            ts_ns: r.get(1)?,
            kind: r.get(2)?,
            container_key: r.get(3)?,
            json: r.get(4)?,
        })
    })?;
    rows.collect()
}

const CONTAINER_COLUMNS: &str = "key, id, name, runtime, image, namespace, labels, \
     first_seen_ns, last_seen_ns, gone_ns, exit_code, meta";

fn container_row(r: &Row<'_>) -> rusqlite::Result<ContainerRow> {
    let labels: Option<String> = r.get(6)?;
    let meta: Option<String> = r.get(11)?;
    Ok(ContainerRow {
        key: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        runtime: r.get(3)?,
        image: r.get(4)?,
        namespace: r.get(5)?,
        labels: labels
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or_default(),
        first_seen_ns: r.get(7)?,
        last_seen_ns: r.get(8)?,
        gone_ns: r.get(9)?,
        exit_code: r.get(10)?,
        meta: meta.and_then(|m| serde_json::from_str(&m).ok()),
    })
}

/// Every container, newest (by first sighting) first.
pub(crate) fn containers(conn: &Connection) -> rusqlite::Result<Vec<ContainerRow>> {
    let sql = format!(
        "SELECT {CONTAINER_COLUMNS} FROM containers
         ORDER BY first_seen_ns DESC, last_seen_ns DESC, key"
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], container_row)?;
    rows.collect()
}

/// One container by key.
pub(crate) fn container(conn: &Connection, key: &str) -> rusqlite::Result<Option<ContainerRow>> {
    conn.query_row(
        &format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE key = ?1"),
        [key],
        container_row,
    )
    .optional()
}

/// Memory samples of a container with `from_ns <= ts_ns <= to_ns`, oldest first.
pub(crate) fn memory_curve(
    conn: &Connection,
    container_key: &str,
    from_ns: i64,
    to_ns: i64,
) -> rusqlite::Result<Vec<MemorySample>> {
    let mut st = conn.prepare_cached(
        "SELECT container_key, ts_ns, usage_bytes, limit_bytes, rss_top FROM memory_samples
         WHERE container_key = ?1 AND ts_ns >= ?2 AND ts_ns <= ?3 ORDER BY ts_ns",
    )?;
    let rows = st.query_map((container_key, from_ns, to_ns), |r| {
        let usage: i64 = r.get(2)?;
        let limit: Option<i64> = r.get(3)?;
        let rss_top: Option<String> = r.get(4)?;
        Ok(MemorySample {
            container_key: r.get(0)?,
            ts_ns: r.get(1)?,
            usage_bytes: u64::try_from(usage).unwrap_or(0),
            limit_bytes: limit.map(|l| u64::try_from(l).unwrap_or(0)),
            rss_top: rss_top.and_then(|t| serde_json::from_str(&t).ok()),
        })
    })?;
    rows.collect()
}
