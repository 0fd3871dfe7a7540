//! The story of a container's end, told from the journal alone, so it works when the
//! container no longer exists in any runtime: who it was, when it was seen, its starts and
//! stops, each OOM kill (limit, the usage curve of the minute before, victim and the other
//! processes with their RSS, trigger, container limit or host-wide) and each kill (who sent
//! which signal). `ctrace postmortem` finds the containers and prints [`render`] or
//! [`to_json`]; [`svg_chart`] draws the last minutes.

mod json;
mod render;
mod svg;

use std::{collections::BTreeMap, path::PathBuf};

use crate::{
    journal::{
        ContainerRow, Journal, JournalError, MemorySample, ProcRss, RecordFilter, StoredRecord,
    },
    record::{Head, OomKillRecord, Record},
};

pub use json::to_json;
pub use render::render;
pub use svg::{svg_chart, SVG_WINDOW_NS};

const SEC: i64 = 1_000_000_000;
/// The usage curve covers this long before an OOM kill.
pub const CURVE_WINDOW_NS: i64 = 60 * SEC;
/// Starts and stops kept per story (the last ones).
pub const LIFECYCLE_KEPT: usize = 10;
/// OOM kills kept per story (the last ones).
pub const OOMS_KEPT: usize = 5;
/// Kills kept per story (the last ones).
pub const KILLS_KEPT: usize = 10;
/// Points of the usage curve in plain text.
const PLAIN_POINTS: usize = 16;
/// Characters of the sparkline.
const SPARK_POINTS: usize = 60;

/// Record types a story is made of.
const STORY_TYPES: [&str; 5] = [
    "container_start",
    "container_stop",
    "oom_kill",
    "kill",
    "restart_loop",
];
/// Restart loops kept per story (the last ones).
pub const LOOPS_KEPT: usize = 5;

/// A stored record, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Dated {
    pub ts_ns: i64,
    pub record: Record,
}

/// One OOM kill of the container, with the memory samples around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Oom {
    pub ts_ns: i64,
    pub record: OomKillRecord,
    /// Samples of the [`CURVE_WINDOW_NS`] before the kill (the one at the kill included).
    pub curve: Vec<MemorySample>,
    /// The limit: the record's, else the samples'.
    pub limit: Option<u64>,
    /// The last process list sampled before the kill: (time, processes).
    pub processes: Option<(i64, Vec<ProcRss>)>,
}

/// What the journal knows of one container's life and end.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    pub container: ContainerRow,
    /// The last starts and stops, oldest first.
    pub lifecycle: Vec<Dated>,
    pub starts: usize,
    pub stops: usize,
    pub last_stop: Option<Dated>,
    /// The last OOM kills, oldest first.
    pub ooms: Vec<Oom>,
    pub oom_total: usize,
    /// The last kills, oldest first.
    pub kills: Vec<Dated>,
    pub kill_total: usize,
    /// The restart loops, oldest first: the last report of each (it holds the whole loop).
    pub loops: Vec<Dated>,
    pub loop_total: usize,
    /// Records of the story that could not be read (in none of the counts above).
    pub unreadable: usize,
}

/// Everything `ctrace postmortem` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Postmortem {
    pub query: String,
    pub journal: PathBuf,
    /// Every container the query matched, newest first.
    pub matches: Vec<ContainerRow>,
    /// The stories told: the newest match's, or every match's with `--all`.
    pub stories: Vec<Story>,
    pub all: bool,
}

fn last<T>(mut v: Vec<T>, n: usize) -> Vec<T> {
    let drop = v.len().saturating_sub(n);
    v.drain(..drop);
    v
}

/// `None`: not a record of this schema (damaged, or written by an incompatible ctrace).
fn parse(r: &StoredRecord) -> Option<Dated> {
    Some(Dated {
        ts_ns: r.ts_ns,
        record: serde_json::from_str(&r.json).ok()?,
    })
}

/// Containers a pattern names in the records when no container row does (metadata that
/// never made it to the journal): by name at the time of the record, or by journal key.
pub fn containers_from_records(
    journal: &Journal,
    pattern: &str,
) -> Result<Vec<ContainerRow>, JournalError> {
    let mut rows: BTreeMap<String, ContainerRow> = BTreeMap::new();
    for filter in [
        RecordFilter {
            container_name: Some(pattern.to_owned()),
            ..RecordFilter::default()
        },
        RecordFilter {
            container_key: Some(pattern.to_owned()),
            ..RecordFilter::default()
        },
    ] {
        for r in journal.records(&filter)? {
            let Some(key) = r.container_key.clone() else {
                continue;
            };
            // Any record with a container names it, whatever else it holds.
            let head: Option<Head> = serde_json::from_str(&r.json).ok();
            let c = head
                .as_ref()
                .and_then(|h| h.container.as_ref())
                .and_then(Option::as_ref);
            let d = c.and_then(|c| c.details.as_ref());
            let row = rows.entry(key.clone()).or_insert_with(|| ContainerRow {
                id: c
                    .and_then(|c| c.id.clone())
                    .unwrap_or_else(|| key.rsplit('/').next().unwrap_or("").to_owned()),
                key,
                name: d.and_then(|d| d.name.clone()),
                runtime: d.map_or_else(|| "unknown".to_owned(), |d| d.runtime.to_string()),
                image: d.and_then(|d| d.image.clone()),
                namespace: d.and_then(|d| d.namespace.clone()),
                labels: d.map(|d| d.labels.clone()).unwrap_or_default(),
                first_seen_ns: r.ts_ns,
                last_seen_ns: r.ts_ns,
                gone_ns: None,
                exit_code: None,
                meta: None,
            });
            row.first_seen_ns = row.first_seen_ns.min(r.ts_ns);
            row.last_seen_ns = row.last_seen_ns.max(r.ts_ns);
            if r.kind == "container_stop" {
                row.gone_ns = Some(r.ts_ns);
                row.exit_code = match parse(&r).map(|e| e.record) {
                    Some(Record::ContainerStop(stop)) => stop
                        .exit
                        .and_then(|x| x.exit_code)
                        .and_then(|c| i32::try_from(c).ok()),
                    _ => None,
                };
            } else if r.kind == "container_start" && row.gone_ns.is_some_and(|g| g < r.ts_ns) {
                row.gone_ns = None;
                row.exit_code = None;
            }
        }
    }
    let mut rows: Vec<ContainerRow> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        (b.first_seen_ns, b.last_seen_ns, &a.key).cmp(&(a.first_seen_ns, a.last_seen_ns, &b.key))
    });
    Ok(rows)
}

/// The story of one container.
pub fn story(journal: &Journal, c: &ContainerRow) -> Result<Story, JournalError> {
    let records = journal.records(&RecordFilter {
        container_key: Some(c.key.clone()),
        types: STORY_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        ..RecordFilter::default()
    })?;
    let (mut lifecycle, mut ooms, mut kills) = (Vec::new(), Vec::new(), Vec::new());
    let mut loops: Vec<Dated> = Vec::new();
    let (mut starts, mut stops) = (0, 0);
    let mut last_stop = None;
    let mut unreadable = 0;
    for r in &records {
        let Some(e) = parse(r).filter(|e| e.record.type_name() == r.kind) else {
            unreadable += 1;
            continue;
        };
        match e.record {
            Record::ContainerStop(_) => {
                stops += 1;
                last_stop = Some(e.clone());
                lifecycle.push(e);
            }
            Record::OomKill(o) => ooms.push((e.ts_ns, o)),
            Record::Kill(_) => kills.push(e),
            // Every report of a loop holds the loop so far: keep the last of each.
            Record::RestartLoop(ref l) => {
                let same =
                    |d: &Dated| matches!(&d.record, Record::RestartLoop(p) if p.since == l.since);
                match loops.iter_mut().find(|d| same(d)) {
                    Some(d) => *d = e,
                    None => loops.push(e),
                }
            }
            // container_start
            _ => {
                starts += 1;
                lifecycle.push(e);
            }
        }
    }
    let (oom_total, kill_total, loop_total) = (ooms.len(), kills.len(), loops.len());
    let mut told = Vec::new();
    for (ts_ns, record) in last(ooms, OOMS_KEPT) {
        let curve = journal.memory_curve(&c.key, ts_ns.saturating_sub(CURVE_WINDOW_NS), ts_ns)?;
        let limit = record
            .memory
            .as_ref()
            .and_then(|m| m.limit_bytes)
            .or_else(|| curve.iter().rev().find_map(|s| s.limit_bytes));
        let processes = curve.iter().rev().find_map(|s| {
            s.rss_top
                .as_ref()
                .filter(|t| !t.is_empty())
                .map(|t| (s.ts_ns, t.clone()))
        });
        told.push(Oom {
            ts_ns,
            record,
            curve,
            limit,
            processes,
        });
    }
    // A container's metadata can be written after its first records (its start reported
    // once it was named): the records bound its life too.
    let mut container = c.clone();
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        container.first_seen_ns = container.first_seen_ns.min(first.ts_ns);
        container.last_seen_ns = container.last_seen_ns.max(last.ts_ns);
    }
    Ok(Story {
        container,
        lifecycle: last(lifecycle, LIFECYCLE_KEPT),
        starts,
        stops,
        last_stop,
        ooms: told,
        oom_total,
        kills: last(kills, KILLS_KEPT),
        kill_total,
        loops: last(loops, LOOPS_KEPT),
        loop_total,
        unreadable,
    })
}
