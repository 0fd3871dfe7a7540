//! `ctrace postmortem NAME|ID`: the story of a container's end, told from the journal alone,
//! so it works when the container no longer exists in any runtime: who it was, when it was
//! seen, its starts and stops, each OOM kill (limit, the usage curve of the minute before,
//! victim and the other processes with their RSS, trigger, container limit or host-wide) and
//! each kill (who sent which signal).

use std::{
    collections::BTreeMap,
    io::IsTerminal as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Args;
use serde_json::{json, Value};

use super::history::{finish, open_journal, query_failed, Failure, Output};
use tracer::{
    chart,
    clock::{rfc3339_ns, utc_ms},
    container::short_id,
    journal::{
        self, ContainerRow, Journal, JournalError, MemorySample, ProcRss, RecordFilter,
        StoredRecord,
    },
    record::{ContainerStopRecord, Head, OomKillRecord, OomScope, Party, Record},
    select::{Match, Selector},
    sink::escape::terminal,
    units::{bytes, bytes_series_unit, seconds, short_number},
};

#[derive(Debug, Args)]
pub struct PostmortemArgs {
    /// The container: name, id, id prefix (3 characters or more), pod name, `NAMESPACE/NAME`
    /// or journal key (`docker/<id>`, `containerd/<namespace>/<id>`). An exact name or id
    /// wins over an id prefix; a prefix of several containers' ids is refused (exit 2).
    #[arg(value_name = "NAME|ID", value_parser = Selector::parse)]
    pub container: Selector,
    /// One JSON object (matches and stories).
    #[arg(long)]
    pub json: bool,
    /// When several containers match (a name reused over time): tell every story, not only
    /// the newest one.
    #[arg(long)]
    pub all: bool,
    /// The journal to read (never created or modified).
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    pub journal: PathBuf,
    /// Also write an SVG chart of the newest story: the memory curve with its limit and the
    /// CPU throttling of the container's last minutes, with starts, stops, kills and OOM
    /// kills marked.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

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
const STORY_TYPES: [&str; 4] = ["container_start", "container_stop", "oom_kill", "kill"];

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
fn containers_from_records(
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
            // container_start
            _ => {
                starts += 1;
                lifecycle.push(e);
            }
        }
    }
    let (oom_total, kill_total) = (ooms.len(), kills.len());
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
        unreadable,
    })
}

/// Finds the containers `selector` names and tells the newest one's story (every one's with
/// `all`). Several containers by one name (reused over time) are fine; an id prefix of
/// several is ambiguous: exit code 2, listing them.
pub fn postmortem(
    journal: &Journal,
    path: &Path,
    selector: &Selector,
    all: bool,
) -> Result<Postmortem, Failure> {
    let q = |e: JournalError| query_failed(&e);
    let pattern = selector.as_str();
    let mut matches = matching(journal, path, selector)?;
    let told = if all { matches.len() } else { 1 };
    let stories = matches[..told]
        .iter()
        .map(|c| story(journal, c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(q)?;
    for (m, s) in matches.iter_mut().zip(&stories) {
        m.clone_from(&s.container);
    }
    Ok(Postmortem {
        query: pattern.to_owned(),
        journal: path.to_owned(),
        matches,
        stories,
        all,
    })
}

/// The containers of the journal `selector` names, newest first (never empty): by their
/// metadata, else by the records that name them. Several containers by one name (reused
/// over time) are fine; an id prefix of several is ambiguous: exit code 2, listing them.
/// Shared with `ctrace caps`.
pub fn matching(
    journal: &Journal,
    path: &Path,
    selector: &Selector,
) -> Result<Vec<ContainerRow>, Failure> {
    let q = |e: JournalError| query_failed(&e);
    let pattern = selector.as_str();
    let mut matches = match journal.containers_matching(selector).map_err(q)? {
        Some(b) if b.level == Match::Prefix && b.items.len() > 1 => {
            return Err(Failure::error(format!(
                "{}; name one by its name or key",
                terminal(&selector.ambiguous(&b.items).to_string())
            )));
        }
        Some(b) => b.items,
        None => Vec::new(),
    };
    if matches.is_empty() {
        matches = containers_from_records(journal, pattern).map_err(q)?;
    }
    if matches.is_empty() {
        return Err(Failure::not_found(format!(
            "no container named {:?} (or with that id) in journal {}",
            terminal(pattern),
            terminal(&path.display().to_string())
        )));
    }
    Ok(matches)
}

// ---------------------------------------------------------------------------------------
// Reading the records.

/// `tail (pid 42 in web, docker)`, `kill (pid 7, host)`, from a party of a record.
fn party(p: &Party) -> String {
    terminal(&p.describe())
}

fn display_name(c: &ContainerRow) -> String {
    terminal(c.name.as_deref().unwrap_or_else(|| short_id(&c.id)))
}

/// How a container stopped, from its `container_stop` record: `exit 137 (SIGKILL): its init
/// was OOM-killed`.
fn stop_reason(stop: &Record) -> String {
    match stop {
        Record::ContainerStop(stop) => terminal(&ContainerStopRecord::describe(stop)),
        _ => "exit unknown: it stopped".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Memory curves.

use tracer::chart::downsample;
/// `▁▂▄▆█`: one character per point, scaled from 0 to `top`.
pub use tracer::chart::sparkline;

/// The usage line of an OOM kill: a sparkline on a terminal, the figures otherwise.
fn curve_text(o: &Oom, tty: bool) -> String {
    let values: Vec<u64> = o.curve.iter().map(|s| s.usage_bytes).collect();
    let (Some(first), Some(last)) = (o.curve.first(), o.curve.last()) else {
        return "no memory samples in the minute before (ctrace was not sampling)".to_owned();
    };
    let span = seconds(o.ts_ns - first.ts_ns);
    let n = values.len();
    let samples = if n == 1 {
        "1 sample".to_owned()
    } else {
        format!("{n} samples")
    };
    let max = values.iter().copied().max().unwrap_or(0);
    if tty {
        let top = o.limit.filter(|&l| l >= max).unwrap_or(max);
        format!(
            "{} {} → {} over the last {span} ({samples})",
            sparkline(&downsample(&values, SPARK_POINTS), top),
            bytes(first.usage_bytes),
            bytes(last.usage_bytes),
        )
    } else {
        let (div, unit) = bytes_series_unit(max);
        let points: Vec<String> = downsample(&values, PLAIN_POINTS)
            .iter()
            .map(|&v| short_number(v as f64 / div))
            .collect();
        format!(
            "last {span} before the kill ({samples}, {unit}): {}",
            points.join(" ")
        )
    }
}

// ---------------------------------------------------------------------------------------
// Human output.

fn match_line(c: &ContainerRow) -> String {
    let end = match c.gone_ns {
        Some(g) => format!(
            "gone {}{}",
            utc_ms(g),
            c.exit_code
                .map(|e| format!(", exit code {e}"))
                .unwrap_or_default()
        ),
        None => format!("last seen {}", utc_ms(c.last_seen_ns)),
    };
    format!(
        "  {:<10} {:<12}  {}  first seen {}  {end}\n",
        terminal(&c.runtime),
        terminal(short_id(&c.id)),
        display_name(c),
        utc_ms(c.first_seen_ns)
    )
}

/// `  name        value`, indented by `indent` spaces; values line up at column 14.
fn push_field(out: &mut String, indent: usize, name: &str, value: &str) {
    let width = 13usize.saturating_sub(indent);
    out.push_str(&format!("{:indent$}{name:<width$} {value}\n", ""));
}

fn render_oom(out: &mut String, o: &Oom, tty: bool) {
    let r = &o.record;
    let memory = r.memory.as_ref();
    let depth = memory.and_then(|m| m.limit_depth).unwrap_or(0);
    let scope = match (r.scope, depth) {
        (OomScope::ContainerLimit, 0) => {
            "the container hit its own memory limit (not a host-wide OOM)".to_owned()
        }
        (OomScope::ContainerLimit, n) => format!(
            "the container hit a memory limit set {n} cgroup level{} above its own (not a host-wide OOM)",
            if n == 1 { "" } else { "s" }
        ),
        (OomScope::Host, _) => {
            "the host ran out of memory (a host-wide OOM, not the container's limit)".to_owned()
        }
        (OomScope::Unknown, _) => "scope unknown".to_owned(),
    };
    out.push_str(&format!("  OOM kill at {}: {scope}\n", utc_ms(o.ts_ns)));
    let mut limit = o.limit.map_or_else(|| "none known".to_owned(), bytes);
    let at_kill: Vec<String> = [
        ("usage", memory.and_then(|m| m.usage_bytes)),
        ("peak", memory.and_then(|m| m.peak_bytes)),
    ]
    .iter()
    .filter_map(|(name, v)| v.map(|v| format!("{name} {}", bytes(v))))
    .collect();
    if !at_kill.is_empty() {
        // The cgroup was gone before it was read: the figures are the last sample.
        let when = if memory.is_some_and(|m| m.stale) {
            "last sample before the kill"
        } else {
            "at the kill"
        };
        limit.push_str(&format!("; {when}: {}", at_kill.join(", ")));
    }
    push_field(out, 4, "limit", &limit);
    push_field(out, 4, "usage", &curve_text(o, tty));
    if tty {
        if let Some(first) = o.curve.first() {
            let samples: Vec<(i64, u64)> =
                o.curve.iter().map(|s| (s.ts_ns, s.usage_bytes)).collect();
            for l in chart::memory_chart(&samples, first.ts_ns, o.ts_ns, o.limit, "kill") {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    let v = &r.victim;
    let victim_pid = v.party.pid;
    let kb = |k: u64| bytes(k * 1024);
    let victim = format!(
        "{}, RSS {} (anon {}, file {}, shmem {})",
        party(&v.party),
        kb(v.rss_kb),
        kb(v.anon_rss_kb),
        kb(v.file_rss_kb),
        kb(v.shmem_rss_kb)
    );
    push_field(out, 4, "victim", &victim);
    let others = match &o.processes {
        None => "unknown: no process list was sampled before the kill".to_owned(),
        Some((ts, procs)) => {
            let list: Vec<String> = procs
                .iter()
                .filter(|p| p.pid != victim_pid)
                .map(|p| {
                    format!(
                        "{} (pid {}) {}",
                        terminal(&p.comm),
                        p.pid,
                        bytes(p.rss_bytes)
                    )
                })
                .collect();
            if list.is_empty() {
                format!("none besides the victim (sampled {})", utc_ms(*ts))
            } else {
                format!("{} (sampled {})", list.join(", "), utc_ms(*ts))
            }
        }
    };
    push_field(out, 4, "others", &others);
    let trigger = if r.trigger.pid == victim_pid {
        "its own allocation".to_owned()
    } else {
        party(&r.trigger)
    };
    push_field(out, 4, "trigger", &trigger);
    let comm = terminal(&v.party.comm);
    let mut outcome = match r.victim_exit.as_ref().and_then(|e| e.describe()) {
        Some(e) => format!("{comm} exited with {}", terminal(&e)),
        None => format!("{comm} had not exited when the incident was reported"),
    };
    if r.container_stopped {
        outcome.push_str("; the container stopped");
    }
    push_field(out, 4, "outcome", &outcome);
}

fn render_story(out: &mut String, s: &Story, tty: bool) {
    let c = &s.container;
    let state = match c.gone_ns {
        Some(g) => format!(
            "gone since {}, exit code {}",
            utc_ms(g),
            c.exit_code
                .map_or_else(|| "unknown".to_owned(), |e| e.to_string())
        ),
        None => format!(
            "not known to be gone (last seen {})",
            utc_ms(c.last_seen_ns)
        ),
    };
    out.push_str(&format!(
        "{}: {} container, {state} (times UTC)\n",
        display_name(c),
        terminal(&c.runtime)
    ));
    push_field(out, 2, "id", &terminal(&c.id));
    if let Some(i) = &c.image {
        push_field(out, 2, "image", &terminal(i));
    }
    if let Some(ns) = &c.namespace {
        push_field(out, 2, "namespace", &terminal(ns));
    }
    push_field(out, 2, "first seen", &utc_ms(c.first_seen_ns));
    push_field(out, 2, "last seen", &utc_ms(c.last_seen_ns));
    let end = match (&s.last_stop, c.gone_ns) {
        (Some(stop), _) => Some(format!(
            "{}  {}",
            utc_ms(stop.ts_ns),
            stop_reason(&stop.record)
        )),
        (None, Some(g)) => Some(format!("{}  gone; its exit was not seen", utc_ms(g))),
        (None, None) => None,
    };
    if let Some(end) = end {
        // A container that ran again after its last stop has not ended.
        let name = if c.gone_ns.is_some() {
            "end"
        } else {
            "last stop"
        };
        push_field(out, 2, name, &end);
    }
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let restarts = match s.starts.saturating_sub(1) {
        0 => "no restart".to_owned(),
        n => plural(n, "restart", "restarts"),
    };
    let mut lifecycle = format!(
        "{}, {}, {restarts}",
        plural(s.starts, "start", "starts"),
        plural(s.stops, "stop", "stops")
    );
    if s.lifecycle.len() < s.starts + s.stops {
        lifecycle.push_str(&format!("; the last {} follow", s.lifecycle.len()));
    }
    push_field(out, 2, "lifecycle", &lifecycle);
    for e in &s.lifecycle {
        out.push_str(&format!(
            "    {}  {}\n",
            utc_ms(e.ts_ns),
            terminal(e.record.explanation().unwrap_or("-"))
        ));
    }
    let mut ooms = s.oom_total.to_string();
    if s.ooms.len() < s.oom_total {
        ooms.push_str(&format!(" (the last {} follow)", s.ooms.len()));
    }
    push_field(out, 2, "OOM kills", &ooms);
    let mut kills = s.kill_total.to_string();
    if s.kills.len() < s.kill_total {
        kills.push_str(&format!(" (the last {} follow)", s.kills.len()));
    }
    push_field(out, 2, "kills", &kills);
    if s.unreadable > 0 {
        push_field(
            out,
            2,
            "unreadable",
            &format!("{} records (damaged, or not ctrace.v1)", s.unreadable),
        );
    }
    for e in &s.kills {
        out.push_str(&format!(
            "    {}  {}\n",
            utc_ms(e.ts_ns),
            terminal(e.record.explanation().unwrap_or("-"))
        ));
    }
    for o in &s.ooms {
        render_oom(out, o, tty);
    }
}

/// The report for people; `tty`: draw usage curves as sparklines.
pub fn render(pm: &Postmortem, tty: bool) -> String {
    let mut out = String::new();
    if pm.matches.len() > 1 {
        out.push_str(&format!(
            "{} containers match {:?} (newest first); {}:\n",
            pm.matches.len(),
            terminal(&pm.query),
            if pm.all {
                "the story of each follows"
            } else {
                "the newest one's story follows (--all for every one)"
            }
        ));
        for c in &pm.matches {
            out.push_str(&match_line(c));
        }
        out.push('\n');
    }
    for (i, s) in pm.stories.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_story(&mut out, s, tty);
    }
    out
}

// ---------------------------------------------------------------------------------------
// JSON output.

fn container_json(c: &ContainerRow) -> Value {
    json!({
        "key": c.key,
        "id": c.id,
        "name": c.name,
        "runtime": c.runtime,
        "image": c.image,
        "namespace": c.namespace,
        "labels": c.labels,
        "first_seen": rfc3339_ns(c.first_seen_ns),
        "last_seen": rfc3339_ns(c.last_seen_ns),
        "gone": c.gone_ns.map(rfc3339_ns),
        "exit_code": c.exit_code,
    })
}

fn entry_json(e: &Dated) -> Value {
    let r = serde_json::to_value(&e.record).unwrap_or(Value::Null);
    let mut v = json!({
        "ts": rfc3339_ns(e.ts_ns),
        "type": e.record.type_name(),
        "explanation": e.record.explanation(),
    });
    for f in [
        "init",
        "filename",
        "exit",
        "reason",
        "by",
        "signal",
        "origin",
        "sender",
        "target",
        "target_exit",
        "container_stopped",
    ] {
        if let Some(x) = r.get(f) {
            v[f] = x.clone();
        }
    }
    v
}

fn oom_json(o: &Oom) -> Value {
    let r = &o.record;
    let v = &r.victim;
    let memory = r.memory.as_ref();
    json!({
        "ts": rfc3339_ns(o.ts_ns),
        "scope": r.scope,
        "limit_bytes": o.limit,
        "usage_bytes": memory.and_then(|m| m.usage_bytes),
        "peak_bytes": memory.and_then(|m| m.peak_bytes),
        "limit_depth": memory.and_then(|m| m.limit_depth),
        "figures_stale": memory.is_some_and(|m| m.stale),
        "curve": o.curve.iter().map(|s| json!({
            "ts": rfc3339_ns(s.ts_ns),
            "usage_bytes": s.usage_bytes,
        })).collect::<Vec<_>>(),
        "victim": {
            "pid": v.party.pid,
            "comm": v.party.comm,
            "rss_bytes": v.rss_kb * 1024,
            "anon_rss_bytes": v.anon_rss_kb * 1024,
            "file_rss_bytes": v.file_rss_kb * 1024,
            "shmem_rss_bytes": v.shmem_rss_kb * 1024,
        },
        "others": o.processes.as_ref().map(|(_, procs)| procs.iter()
            .filter(|p| p.pid != v.party.pid)
            .map(|p| json!({"pid": p.pid, "comm": p.comm, "rss_bytes": p.rss_bytes}))
            .collect::<Vec<_>>()),
        "others_sampled": o.processes.as_ref().map(|(ts, _)| rfc3339_ns(*ts)),
        "trigger": r.trigger,
        "own_allocation": r.trigger.pid == v.party.pid,
        "victim_exit": r.victim_exit,
        "container_stopped": r.container_stopped,
        "explanation": r.explanation,
        "record": Record::OomKill(r.clone()),
    })
}

fn story_json(s: &Story) -> Value {
    json!({
        "container": container_json(&s.container),
        "end": s.last_stop.as_ref().map(entry_json),
        "starts": s.starts,
        "stops": s.stops,
        "restarts": s.starts.saturating_sub(1),
        "lifecycle": s.lifecycle.iter().map(entry_json).collect::<Vec<_>>(),
        "oom_kills_total": s.oom_total,
        "oom_kills": s.ooms.iter().map(oom_json).collect::<Vec<_>>(),
        "kills_total": s.kill_total,
        "kills": s.kills.iter().map(entry_json).collect::<Vec<_>>(),
        "unreadable_records": s.unreadable,
    })
}

/// The report as one JSON object.
pub fn to_json(pm: &Postmortem) -> Value {
    json!({
        "schema": "ctrace.postmortem.v1",
        "journal": pm.journal.display().to_string(),
        "query": pm.query,
        "matches": pm.matches.iter().map(container_json).collect::<Vec<_>>(),
        "stories": pm.stories.iter().map(story_json).collect::<Vec<_>>(),
    })
}

/// The SVG chart of the container's last [`SVG_WINDOW_NS`] (or less): memory and its limit,
/// CPU throttling, and the incidents of its story.
pub fn svg_chart(journal: &Journal, s: &Story) -> Result<String, JournalError> {
    let c = &s.container;
    let end_ns = c.gone_ns.unwrap_or(c.last_seen_ns).max(c.first_seen_ns);
    let from_ns = end_ns.saturating_sub(SVG_WINDOW_NS).max(c.first_seen_ns);
    // A little room after the end, so that the reading at a kill shows beside its mark.
    let to_ns = end_ns + (end_ns - from_ns) / 40;
    let curve = journal.memory_curve(&c.key, from_ns, end_ns)?;
    let memory: Vec<(i64, u64)> = curve.iter().map(|m| (m.ts_ns, m.usage_bytes)).collect();
    let limit = s
        .ooms
        .last()
        .and_then(|o| o.limit)
        .or_else(|| curve.iter().rev().find_map(|m| m.limit_bytes));
    let records = journal.records(&RecordFilter {
        container_key: Some(c.key.clone()),
        types: vec!["cpu_throttle".to_owned()],
        since_ns: Some(from_ns),
        until_ns: Some(to_ns),
        ..RecordFilter::default()
    })?;
    let mut throttle: Vec<(i64, f64)> = records
        .iter()
        .filter_map(|r| match parse(r)?.record {
            Record::CpuThrottle(t) if t.phase == "stop" => Some((r.ts_ns, 0.0)),
            Record::CpuThrottle(t) => Some((r.ts_ns, t.throttled_ratio)),
            _ => None,
        })
        .collect();
    // A gone container is throttled no more.
    if c.gone_ns.is_some() && !throttle.is_empty() {
        throttle.push((end_ns, 0.0));
    }
    let mut marks = Vec::new();
    for e in s.lifecycle.iter().chain(&s.kills) {
        let (label, color) = match &e.record {
            Record::ContainerStart(_) => ("start".to_owned(), "#417505"),
            Record::ContainerStop(stop) => (
                ContainerStopRecord::describe(stop)
                    .split(':')
                    .next()
                    .unwrap_or("stop")
                    .to_owned(),
                "#555555",
            ),
            Record::Kill(k) => (format!("{} from {}", k.signal, k.sender.comm), "#f5a623"),
            _ => continue,
        };
        marks.push(chart::Mark {
            ts_ns: e.ts_ns,
            label,
            color,
        });
    }
    for o in &s.ooms {
        marks.push(chart::Mark {
            ts_ns: o.ts_ns,
            label: format!("OOM kill of {}", o.record.victim.party.comm),
            color: "#d0021b",
        });
    }
    marks.retain(|m| (from_ns..=to_ns).contains(&m.ts_ns));
    marks.sort_by_key(|m| m.ts_ns);
    Ok(chart::svg(&chart::SvgChart {
        title: format!(
            "{} ({}): memory and CPU throttling, {} UTC",
            c.name.as_deref().unwrap_or_else(|| short_id(&c.id)),
            c.runtime,
            utc_ms(from_ns)
        ),
        from_ns,
        to_ns,
        memory: &memory,
        limit,
        throttle: &throttle,
        marks: &marks,
    }))
}

/// The SVG chart covers at most this long before the container's end (or last sighting).
pub const SVG_WINDOW_NS: i64 = 5 * 60 * SEC;

/// `ctrace postmortem`; `tty`: sparklines in the human output.
pub fn run(args: &PostmortemArgs, tty: bool) -> Result<Output, Failure> {
    let journal = open_journal(&args.journal)?;
    let pm = postmortem(&journal, &args.journal, &args.container, args.all)?;
    let mut notes = Vec::new();
    if let (Some(path), Some(story)) = (&args.svg, pm.stories.first()) {
        let svg = svg_chart(&journal, story).map_err(|e| query_failed(&e))?;
        std::fs::write(path, svg).map_err(|e| {
            Failure::error(format!(
                "cannot write {}: {e}",
                terminal(&path.display().to_string())
            ))
        })?;
        notes.push(format!(
            "chart written to {}",
            terminal(&path.display().to_string())
        ));
    }
    let text = if args.json {
        format!("{}\n", tracer::sink::json::line(&to_json(&pm)))
    } else {
        render(&pm, tty)
    };
    Ok(Output { text, notes })
}

/// Entry point of `ctrace postmortem`: prints and returns the exit code.
pub fn main(args: &PostmortemArgs) -> ExitCode {
    finish(run(args, std::io::stdout().is_terminal()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cli::history::tests::{cjson, journal_with, rec, upsert, Scratch, SEC, T0};
    use tracer::journal::{Entry as JEntry, JournalOptions};

    const MIB: u64 = 1 << 20;
    const W1: &str = "1111111111110000000000000000000000000000000000000000000000000001";
    const W2: &str = "2222222222220000000000000000000000000000000000000000000000000002";
    const W3: &str = "5f9cc76e3db05ee8276f704e67b9fd97f4e022d93d4e4fcfa7ea652d371ddf93";

    /// `tracer/tests/snapshots/<name>` against `actual`; `UPDATE_SNAPSHOTS=1` rewrites it.
    fn snapshot(name: &str, actual: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(name);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == actual,
            "{} differs (rerun with UPDATE_SNAPSHOTS=1 if intended):\n{actual}",
            path.display()
        );
    }

    fn key(id: &str) -> String {
        format!("docker/{id}")
    }

    fn args(path: &Path, container: &str) -> PostmortemArgs {
        PostmortemArgs {
            container: Selector::parse(container).unwrap(),
            json: false,
            all: false,
            journal: path.to_owned(),
            svg: None,
        }
    }

    fn proc_json(pid: u32, comm: &str, c: &Value) -> Value {
        json!({"pid": pid, "comm": comm, "cgroup_id": 4711, "container": c})
    }

    fn sample(id: &str, ts_ns: i64, usage: u64, top: Option<&[(u32, &str, u64)]>) -> JEntry {
        JEntry::MemorySample(MemorySample {
            container_key: key(id),
            ts_ns,
            usage_bytes: usage,
            limit_bytes: Some(100 * MIB),
            rss_top: top.map(|t| {
                t.iter()
                    .map(|&(pid, comm, rss_bytes)| ProcRss {
                        pid,
                        comm: comm.to_owned(),
                        rss_bytes,
                    })
                    .collect()
            }),
        })
    }

    /// `web` (docker): started 80 s before T0, usage rising by 10 MiB a second from T0 + 1 s,
    /// a child killed by SIGTERM at T0 + 5 s, OOM-killed at T0 + 9.5 s at its 100 MiB
    /// limit, stopped, and later removed.
    fn oom_fixture(id: &str, name: &str, base: i64) -> Vec<JEntry> {
        let c = cjson(id, name, "docker");
        let tail = proc_json(4242, "tail", &c);
        let sh = proc_json(4250, "sh", &c);
        let kill_at = base + 9 * SEC + SEC / 2;
        let mut e = vec![
            upsert(&key(id), name, base - 80 * SEC, None),
            rec(
                base - 80 * SEC,
                json!({"type": "container_start", "container": c, "init": tail,
                       "filename": "/bin/tail",
                       "explanation": format!("container {name} (docker) started: /bin/tail (pid 4242)")}),
            ),
            // Outside the minute before the kill.
            sample(
                id,
                base - 80 * SEC,
                5 * MIB,
                Some(&[(4242, "tail", 4 * MIB)]),
            ),
            rec(
                base + 5 * SEC,
                json!({"type": "kill", "container": c, "signal": "SIGTERM", "signo": 15,
                       "origin": "user", "sender": sh, "target": proc_json(4251, "sleep", &c),
                       "target_exit": {"exit_code": 143, "signal": "SIGTERM"},
                       "container_stopped": false,
                       "explanation": format!("sleep (pid 4251 in {name}, docker) killed by SIGTERM from sh (pid 4250 in {name}, docker); it exited with 143 (SIGTERM)")}),
            ),
        ];
        for i in 1..=9u64 {
            let usage = i * 10 * MIB;
            let mut top = vec![(4242, "tail", usage - 2 * MIB), (4250, "sh", MIB)];
            if i < 5 {
                top.push((4251, "sleep", 512 * 1024));
            }
            e.push(sample(id, base + i as i64 * SEC, usage, Some(&top)));
        }
        e.extend([
            rec(
                kill_at,
                json!({"type": "oom_kill", "container": c, "scope": "container_limit",
                       "victim": {"pid": 4242, "comm": "tail", "cgroup_id": 4711, "container": c,
                                  "rss_kb": 101_376, "anon_rss_kb": 100_352, "file_rss_kb": 1024,
                                  "shmem_rss_kb": 0, "total_vm_kb": 102_400, "oom_score_adj": 0},
                       "trigger": tail,
                       "memory": {"limit_bytes": 100 * MIB, "usage_bytes": 104_755_200u64,
                                  "peak_bytes": 100 * MIB, "failcnt": 12, "oom_events": null,
                                  "oom_kills": null, "max_events": null},
                       "victim_exit": {"exit_code": 137, "signal": "SIGKILL"},
                       "container_stopped": true,
                       "explanation": format!("tail (pid 4242 in {name}, docker) was OOM-killed: {name} hit its memory limit of 100 MiB (usage 99.9 MiB, peak 100 MiB); victim RSS 99 MiB; triggered by its own allocation; {name} stopped")}),
            ),
            // The reading at the kill ends the curve; later samples are not part of it.
            sample(id, kill_at, 100 * MIB, None),
            sample(id, base + 10 * SEC, MIB, Some(&[])),
            rec(
                base + 9 * SEC + 600_000_000,
                json!({"type": "container_stop", "container": c,
                       "exit": {"exit_code": 137, "signal": "SIGKILL"}, "reason": "oom_killed",
                       "by": null,
                       "explanation": format!("container {name} (docker) stopped with 137 (SIGKILL): its init was OOM-killed")}),
            ),
            upsert(&key(id), name, base + 9 * SEC + 600_000_000, Some((base + 9 * SEC + 600_000_000, 137))),
        ]);
        e
    }

    fn run_ok(a: &PostmortemArgs, tty: bool) -> String {
        let out = run(a, tty).unwrap_or_else(|f| panic!("{f:?}"));
        assert!(out.notes.is_empty());
        out.text
    }

    #[test]
    fn oom_story_with_a_rising_curve() {
        let t = Scratch::new("pm-oom");
        let p = t.join("j.db");
        journal_with(&p, oom_fixture(W3, "web", T0));
        assert_eq!(
            run_ok(&args(&p, "web"), false),
            "\
web: docker container, gone since 2026-11-29 18:40:09.600, exit code 137 (times UTC)
  id          5f9cc76e3db05ee8276f704e67b9fd97f4e022d93d4e4fcfa7ea652d371ddf93
  image       busybox:local
  first seen  2026-11-29 18:38:40.000
  last seen   2026-11-29 18:40:10.000
  end         2026-11-29 18:40:09.600  exit 137 (SIGKILL): its init was OOM-killed
  lifecycle   1 start, 1 stop, no restart
    2026-11-29 18:38:40.000  container web (docker) started: /bin/tail (pid 4242)
    2026-11-29 18:40:09.600  container web (docker) stopped with 137 (SIGKILL): its init was OOM-killed
  OOM kills   1
  kills       1
    2026-11-29 18:40:05.000  sleep (pid 4251 in web, docker) killed by SIGTERM from sh (pid 4250 in web, docker); it exited with 143 (SIGTERM)
  OOM kill at 2026-11-29 18:40:09.500: the container hit its own memory limit (not a host-wide OOM)
    limit     100 MiB; at the kill: usage 99.9 MiB, peak 100 MiB
    usage     last 8.5 s before the kill (10 samples, MiB): 10 20 30 40 50 60 70 80 90 100
    victim    tail (pid 4242 in web, docker), RSS 99 MiB (anon 98 MiB, file 1 MiB, shmem 0 B)
    others    sh (pid 4250) 1 MiB (sampled 2026-11-29 18:40:09.000)
    trigger   its own allocation
    outcome   tail exited with 137 (SIGKILL); the container stopped
"
        );
        // On a terminal: a sparkline scaled to the limit.
        let tty = run_ok(&args(&p, "web"), true);
        assert!(
            tty.contains(
                "    usage     ▂▂▃▄▅▅▆▇▇█ 10 MiB → 100 MiB over the last 8.5 s (10 samples)\n"
            ),
            "{tty}"
        );
        // The braille chart to the kill, with the limit line, fits 80 columns.
        let chart: Vec<&str> = tty
            .lines()
            .filter(|l| l.contains('┤') || l.contains('│'))
            .collect();
        assert_eq!(chart.len(), tracer::chart::CHART_ROWS, "{tty}");
        assert!(chart[0].ends_with(" limit"), "{tty}");
        for l in tty
            .lines()
            .filter(|l| l.contains('┤') || l.contains('│') || l.contains('└'))
        {
            assert!(l.chars().count() <= 80, "{l:?}");
        }
        snapshot("postmortem-oom-tty.txt", &tty);
        // --svg: the chart of the story, incidents marked.
        let svg_path = t.join("web.svg");
        let mut with_svg = args(&p, "web");
        with_svg.svg = Some(svg_path.clone());
        let out = run(&with_svg, false).unwrap_or_else(|f| panic!("{}", f.message));
        assert_eq!(
            out.notes,
            [format!("chart written to {}", svg_path.display())]
        );
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert!(svg.contains("OOM kill of tail"), "{svg}");
        assert!(svg.contains("limit 100 MiB"), "{svg}");
        snapshot("postmortem-oom.svg", &svg);
        // By id prefix and by key: the same story.
        assert_eq!(
            run_ok(&args(&p, "5f9cc7"), false),
            run_ok(&args(&p, "web"), false)
        );
        assert_eq!(
            run_ok(&args(&p, &key(W3)), false),
            run_ok(&args(&p, "web"), false)
        );
    }

    #[test]
    fn oom_story_as_json() {
        let t = Scratch::new("pm-json");
        let p = t.join("j.db");
        journal_with(&p, oom_fixture(W3, "web", T0));
        let mut a = args(&p, "web");
        a.json = true;
        let text = run_ok(&a, true);
        assert_eq!(text.lines().count(), 1, "one object on one line");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], "ctrace.postmortem.v1");
        assert_eq!(v["query"], "web");
        assert_eq!(v["matches"].as_array().unwrap().len(), 1);
        let s = &v["stories"][0];
        assert_eq!(s["container"]["id"], W3);
        assert_eq!(s["container"]["runtime"], "docker");
        assert_eq!(s["container"]["gone"], "2026-11-29T18:40:09.600000000Z");
        assert_eq!(s["container"]["exit_code"], 137);
        assert_eq!(s["end"]["reason"], "oom_killed");
        assert_eq!(
            (s["starts"].as_u64(), s["restarts"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(s["kills_total"], 1);
        assert_eq!(s["kills"][0]["signal"], "SIGTERM");
        assert_eq!(s["kills"][0]["sender"]["comm"], "sh");
        assert_eq!(s["oom_kills_total"], 1);
        let o = &s["oom_kills"][0];
        assert_eq!(o["ts"], "2026-11-29T18:40:09.500000000Z");
        assert_eq!(o["scope"], "container_limit");
        assert_eq!(o["limit_bytes"], 100 * MIB);
        assert_eq!(o["victim"]["comm"], "tail");
        assert_eq!(o["victim"]["rss_bytes"], 101_376u64 * 1024);
        assert_eq!(
            o["others"],
            json!([{"pid": 4250, "comm": "sh", "rss_bytes": MIB}])
        );
        assert_eq!(o["own_allocation"], true);
        assert_eq!(o["victim_exit"]["exit_code"], 137);
        let curve: Vec<u64> = o["curve"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["usage_bytes"].as_u64().unwrap())
            .collect();
        assert_eq!(curve, (1..=10).map(|i| i * 10 * MIB).collect::<Vec<_>>());
        assert_eq!(o["curve"][0]["ts"], "2026-11-29T18:40:01.000000000Z");
        assert_eq!(o["curve"][9]["ts"], o["ts"]);
        assert_eq!(o["record"]["type"], "oom_kill");
    }

    /// Three containers used the name `web`: an old one that exited, one killed from the
    /// host, and the current one, still running.
    fn reused_name(p: &Path) {
        let c1 = cjson(W1, "web", "docker");
        let c2 = cjson(W2, "web", "docker");
        let killer = json!({"pid": 300, "comm": "kill", "cgroup_id": 1, "container": null});
        let mut e = vec![
            upsert(&key(W1), "web", T0 - 7200 * SEC, None),
            rec(
                T0 - 7000 * SEC,
                json!({"type": "container_stop", "container": c1,
                       "exit": {"exit_code": 0, "signal": null}, "reason": "exited", "by": null,
                       "explanation": "container web (docker) stopped with 0: its init exited"}),
            ),
            upsert(&key(W1), "web", T0 - 7000 * SEC, Some((T0 - 7000 * SEC, 0))),
            upsert(&key(W2), "web", T0 - 3600 * SEC, None),
            rec(
                T0 - 3000 * SEC,
                json!({"type": "kill", "container": c2, "signal": "SIGKILL", "signo": 9,
                       "origin": "user", "sender": killer,
                       "target": proc_json(777, "nginx", &c2),
                       "target_exit": {"exit_code": 137, "signal": "SIGKILL"},
                       "container_stopped": true,
                       "explanation": "nginx (pid 777 in web, docker) killed by SIGKILL from kill (pid 300, host); web exited with 137 (SIGKILL)"}),
            ),
            rec(
                T0 - 3000 * SEC,
                json!({"type": "container_stop", "container": c2,
                       "exit": {"exit_code": 137, "signal": "SIGKILL"}, "reason": "killed",
                       "by": killer,
                       "explanation": "container web (docker) stopped with 137 (SIGKILL): SIGKILL from kill (pid 300, host)"}),
            ),
            upsert(
                &key(W2),
                "web",
                T0 - 3000 * SEC,
                Some((T0 - 3000 * SEC, 137)),
            ),
        ];
        e.extend(oom_fixture(W3, "web", T0));
        // The current `web` is W3 started again after its OOM kill (a restart), running.
        let c3 = cjson(W3, "web", "docker");
        e.extend([
            rec(
                T0 + 20 * SEC,
                json!({"type": "container_start", "container": c3,
                       "init": proc_json(5000, "tail", &c3), "filename": "/bin/tail",
                       "explanation": "container web (docker) started: /bin/tail (pid 5000)"}),
            ),
            upsert(&key(W3), "web", T0 + 30 * SEC, None),
        ]);
        journal_with(p, e);
    }

    #[test]
    fn a_reused_name_lists_every_container_and_tells_the_newest() {
        let t = Scratch::new("pm-ambiguous");
        let p = t.join("j.db");
        reused_name(&p);
        let text = run_ok(&args(&p, "web"), false);
        let head: Vec<&str> = text.lines().take(6).collect();
        assert_eq!(
            head,
            [
                "3 containers match \"web\" (newest first); the newest one's story follows (--all for every one):",
                "  docker     5f9cc76e3db0  web  first seen 2026-11-29 18:38:40.000  last seen 2026-11-29 18:40:30.000",
                "  docker     222222222222  web  first seen 2026-11-29 17:40:00.000  gone 2026-11-29 17:50:00.000, exit code 137",
                "  docker     111111111111  web  first seen 2026-11-29 16:40:00.000  gone 2026-11-29 16:43:20.000, exit code 0",
                "",
                "web: docker container, not known to be gone (last seen 2026-11-29 18:40:30.000) (times UTC)",
            ]
        );
        assert!(
            text.contains("  lifecycle   2 starts, 1 stop, 1 restart\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  last stop   2026-11-29 18:40:09.600  exit 137 (SIGKILL): its init was OOM-killed\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  OOM kill at 2026-11-29 18:40:09.500"),
            "{text}"
        );
        assert_eq!(text.matches(" container, ").count(), 1, "one story: {text}");

        let mut a = args(&p, "web");
        a.all = true;
        let text = run_ok(&a, false);
        assert!(text.starts_with(
            "3 containers match \"web\" (newest first); the story of each follows:\n"
        ));
        assert_eq!(
            text.matches(" container, ").count(),
            3,
            "three stories: {text}"
        );
        assert!(
            text.contains(
                "  end         2026-11-29 17:50:00.000  exit 137 (SIGKILL): its init was killed by SIGKILL from kill (pid 300, host)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  end         2026-11-29 16:43:20.000  exit 0: its init exited\n"),
            "{text}"
        );
        a.json = true;
        let v: Value = serde_json::from_str(&run_ok(&a, false)).unwrap();
        assert_eq!(v["matches"].as_array().unwrap().len(), 3);
        assert_eq!(v["stories"].as_array().unwrap().len(), 3);
        assert_eq!(v["stories"][1]["kills"][0]["sender"]["comm"], "kill");
        assert_eq!(v["stories"][2]["container"]["exit_code"], 0);
        // An id picks one container, without a list.
        let text = run_ok(&args(&p, "222222"), false);
        assert!(
            text.starts_with(
                "web: docker container, gone since 2026-11-29 17:50:00.000, exit code 137"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_ambiguous_id_prefix_is_exit_2_listing_the_candidates() {
        const W4: &str = "2222aaaa00000000000000000000000000000000000000000000000000000004";
        let t = Scratch::new("pm-prefix");
        let p = t.join("j.db");
        reused_name(&p);
        journal_with(&p, vec![upsert(&key(W4), "api", T0 - 60 * SEC, None)]);
        let f = run(&args(&p, "2222"), false).unwrap_err();
        assert_eq!(f.code, 2);
        assert_eq!(
            f.message,
            format!(
                "\"2222\" matches 2 containers: api (id 2222aaaa0000, docker, key docker/{W4}), \
                 web (id 222222222222, docker, key docker/{W2}); name one by its name or key"
            )
        );
        // A longer prefix, the name, or the key names one.
        assert!(run_ok(&args(&p, "2222a"), false).starts_with("api: docker container"));
        assert!(run_ok(&args(&p, "api"), false).starts_with("api: docker container"));
        assert!(run_ok(&args(&p, &key(W2)), false).starts_with("web: docker container"));
        // A name that is also an id prefix: the name wins.
        journal_with(&p, vec![upsert("runc/zzz", "2222", T0, None)]);
        assert!(run_ok(&args(&p, "2222"), false).starts_with("2222: runc container"));
    }

    /// A record that does not read as its type (damaged, or of an incompatible ctrace) is
    /// counted and said, not listed; its container still names the story.
    #[test]
    fn unreadable_records_are_counted_not_listed() {
        let t = Scratch::new("pm-unreadable");
        let p = t.join("j.db");
        let c = cjson(W1, "odd", "docker");
        journal_with(
            &p,
            vec![rec(
                T0,
                json!({"type": "kill", "container": c, "explanation": "no sender, no target"}),
            )],
        );
        let text = run_ok(&args(&p, "odd"), false);
        assert!(text.starts_with("odd: docker container, "), "{text}");
        assert!(
            text.contains("  kills       0\n  unreadable  1 records (damaged, or not ctrace.v1)\n"),
            "{text}"
        );
        assert!(!text.contains("no sender"), "{text}");
        let mut a = args(&p, "odd");
        a.json = true;
        let v: Value = serde_json::from_str(&run_ok(&a, false)).unwrap();
        assert_eq!(v["stories"][0]["unreadable_records"], 1);
        assert_eq!(v["stories"][0]["kills_total"], 0);
    }

    #[test]
    fn a_gone_container_known_only_from_its_records() {
        let t = Scratch::new("pm-records");
        let p = t.join("j.db");
        let c = cjson(W1, "ghost", "docker");
        journal_with(
            &p,
            vec![
                rec(
                    T0,
                    json!({"type": "container_start", "container": c,
                           "init": proc_json(9, "sh", &c), "filename": "/bin/sh",
                           "explanation": "container ghost (docker) started: /bin/sh (pid 9)"}),
                ),
                rec(
                    T0 + SEC,
                    json!({"type": "container_stop", "container": c,
                           "exit": {"exit_code": 3, "signal": null}, "reason": "exited", "by": null,
                           "explanation": "container ghost (docker) stopped with 3: its init exited"}),
                ),
            ],
        );
        let text = run_ok(&args(&p, "ghost"), false);
        assert!(
            text.starts_with(
                "ghost: docker container, gone since 2026-11-29 18:40:01.000, exit code 3 (times UTC)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  OOM kills   0\n  kills       0\n"),
            "{text}"
        );
    }

    /// Metadata written late (the start reported once the container was named, after its
    /// stop): its records still bound the container's life.
    #[test]
    fn records_older_than_the_metadata_set_first_seen() {
        let t = Scratch::new("pm-late");
        let p = t.join("j.db");
        let c = cjson(W1, "fast", "docker");
        journal_with(
            &p,
            vec![
                rec(
                    T0,
                    json!({"type": "container_start", "container": c,
                           "init": proc_json(9, "tail", &c), "filename": "/bin/tail",
                           "explanation": "container fast (docker) started: /bin/tail (pid 9)"}),
                ),
                upsert(&key(W1), "fast", T0 + SEC, Some((T0 + SEC, 137))),
            ],
        );
        let mut a = args(&p, "fast");
        let text = run_ok(&a, false);
        assert!(
            text.contains("  first seen  2026-11-29 18:40:00.000\n"),
            "{text}"
        );
        a.json = true;
        let v: Value = serde_json::from_str(&run_ok(&a, false)).unwrap();
        assert_eq!(
            v["matches"][0]["first_seen"],
            "2026-11-29T18:40:00.000000000Z"
        );
        assert_eq!(
            v["stories"][0]["container"]["first_seen"],
            "2026-11-29T18:40:00.000000000Z"
        );
        // Gone, without a stop record.
        assert!(
            text.contains("  end         2026-11-29 18:40:01.000  gone; its exit was not seen\n"),
            "{text}"
        );
    }

    #[test]
    fn an_oom_without_samples_or_processes_says_so() {
        let t = Scratch::new("pm-nosamples");
        let p = t.join("j.db");
        let entries: Vec<JEntry> = oom_fixture(W3, "web", T0)
            .into_iter()
            .filter(|e| !matches!(e, JEntry::MemorySample(_)))
            .collect();
        journal_with(&p, entries);
        let text = run_ok(&args(&p, "web"), false);
        assert!(
            text.contains(
                "    usage     no memory samples in the minute before (ctrace was not sampling)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("    others    unknown: no process list was sampled before the kill\n"),
            "{text}"
        );
        assert!(
            text.contains("    limit     100 MiB;"),
            "from the record: {text}"
        );
    }

    /// The OOM record of the fixture with its `memory` changed.
    fn oom_fixture_with(memory: impl Fn(&mut serde_json::Value)) -> Vec<JEntry> {
        oom_fixture(W3, "web", T0)
            .into_iter()
            .map(|e| match e {
                JEntry::Record(r) if r.kind == "oom_kill" => {
                    let mut v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
                    memory(&mut v["memory"]);
                    JEntry::Record(tracer::journal::Record::from_ndjson(r.ts_ns, &v))
                }
                other => other,
            })
            .collect()
    }

    /// A parent's limit (a pod's) is named as such; figures from an older sample are said to
    /// be one, not passed off as the figures at the kill.
    #[test]
    fn oom_of_a_parent_limit_and_stale_figures_say_so() {
        let t = Scratch::new("pm-depth");
        let p = t.join("j.db");
        journal_with(&p, oom_fixture_with(|m| m["limit_depth"] = 1.into()));
        let text = run_ok(&args(&p, "web"), false);
        assert!(
            text.contains(": the container hit a memory limit set 1 cgroup level above its own (not a host-wide OOM)\n"),
            "{text}"
        );
        let json = run(
            &PostmortemArgs {
                json: true,
                ..args(&p, "web")
            },
            false,
        )
        .unwrap()
        .text;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let o = &v["stories"][0]["oom_kills"][0];
        assert_eq!(
            (o["limit_depth"].as_u64(), o["figures_stale"].as_bool()),
            (Some(1), Some(false))
        );

        let t = Scratch::new("pm-stale");
        let p = t.join("j.db");
        journal_with(&p, oom_fixture_with(|m| m["stale"] = true.into()));
        let text = run_ok(&args(&p, "web"), false);
        assert!(
            text.contains("    limit     100 MiB; last sample before the kill: usage 99.9 MiB, peak 100 MiB\n"),
            "{text}"
        );
    }

    #[test]
    fn no_such_container_and_an_empty_journal_are_exit_1() {
        let t = Scratch::new("pm-empty");
        let p = t.join("j.db");
        drop(Journal::open(&p, JournalOptions::default()).unwrap());
        let f = run(&args(&p, "web"), false).unwrap_err();
        assert_eq!(f.code, 1);
        assert_eq!(
            f.message,
            format!(
                "no container named \"web\" (or with that id) in journal {}",
                p.display()
            )
        );
        journal_with(&p, oom_fixture(W3, "web", T0));
        assert_eq!(run(&args(&p, "db"), false).unwrap_err().code, 1);
        // Two characters are not an id prefix.
        assert_eq!(run(&args(&p, "5f"), false).unwrap_err().code, 1);
    }

    #[test]
    fn a_missing_journal_is_exit_1_naming_it_and_creates_nothing() {
        let t = Scratch::new("pm-missing");
        let p = t.join("var/lib/ctrace/journal.db");
        let f = run(&args(&p, "web"), false).unwrap_err();
        assert_eq!(f.code, 1);
        assert_eq!(
            f.message,
            format!(
                "no journal at {}: `ctrace watch` creates and keeps one (on by default; give it \
                 the same --journal PATH)",
                p.display()
            )
        );
        assert!(!t.join("var").exists());
    }

    #[test]
    fn files_that_are_not_journals_are_exit_2_and_untouched() {
        let t = Scratch::new("pm-notjournal");
        // Text.
        let text = t.join("text.db");
        let content = b"not a database\n".repeat(100);
        std::fs::write(&text, &content).unwrap();
        // Another application's SQLite database.
        let other = t.join("other.db");
        {
            let c = rusqlite::Connection::open(&other).unwrap();
            c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .unwrap();
        }
        let other_content = std::fs::read(&other).unwrap();
        for (path, bytes, reason) in [
            (&text, &content, "no SQLite header"),
            (&other, &other_content, "another application"),
        ] {
            let before = std::fs::metadata(path).unwrap().modified().unwrap();
            for json in [false, true] {
                let mut a = args(path, "web");
                a.json = json;
                let f = run(&a, false).unwrap_err();
                assert_eq!(f.code, 2, "{f:?}");
                assert!(
                    f.message.starts_with(&format!(
                        "{} is not a usable ctrace journal",
                        path.display()
                    )),
                    "{f:?}"
                );
                assert!(f.message.contains(reason), "{f:?}");
            }
            assert_eq!(&std::fs::read(path).unwrap(), bytes);
            assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), before);
        }
        let mut names: Vec<String> = std::fs::read_dir(&t.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["other.db", "text.db"], "no -wal or -shm appeared");
    }

    #[test]
    fn a_newer_journal_is_exit_2_and_untouched() {
        let t = Scratch::new("pm-newer");
        let p = t.join("j.db");
        journal_with(&p, oom_fixture(W3, "web", T0));
        {
            let c = rusqlite::Connection::open(&p).unwrap();
            c.execute(
                "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
            c.pragma_update(None, "journal_mode", "DELETE").unwrap();
        }
        let content = std::fs::read(&p).unwrap();
        let f = run(&args(&p, "web"), false).unwrap_err();
        assert_eq!(f.code, 2);
        assert!(f.message.contains("schema version 99, newer than"), "{f:?}");
        assert!(f.message.contains(&p.display().to_string()), "{f:?}");
        assert_eq!(std::fs::read(&p).unwrap(), content);
    }

    #[test]
    fn reading_does_not_modify_a_journal() {
        let t = Scratch::new("pm-readonly");
        let p = t.join("j.db");
        journal_with(&p, oom_fixture(W3, "web", T0));
        let ls = || {
            let mut names: Vec<String> = std::fs::read_dir(&t.0)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let files = ls();
        let content = std::fs::read(&p).unwrap();
        let mut a = args(&p, "web");
        run_ok(&a, false);
        a.json = true;
        run_ok(&a, false);
        assert_eq!(std::fs::read(&p).unwrap(), content);
        // `Journal::open_read_only` reads a WAL journal like any reader, which lets SQLite add
        // its (empty) `-wal` and `-shm` files next to it; nothing else may appear, and no
        // page of the journal changes.
        let added: Vec<String> = ls().into_iter().filter(|f| !files.contains(f)).collect();
        assert!(
            added.iter().all(|f| f == "j.db-wal" || f == "j.db-shm"),
            "{added:?}"
        );
        let wal = t.join("j.db-wal");
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    }

    #[test]
    fn hostile_strings_are_escaped() {
        let t = Scratch::new("pm-escape");
        let p = t.join("j.db");
        let mut e = oom_fixture(W3, "evil\u{1b}[2J\u{202e}name", T0);
        e.push(sample(
            W3,
            T0 + 9 * SEC + 1,
            90 * MIB,
            Some(&[(4250, "s\u{7}h\nx", MIB)]),
        ));
        journal_with(&p, e);
        let text = run_ok(&args(&p, &key(W3)), true);
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{text:?}"
        );
        assert!(
            text.starts_with("evil\\x1b[2J\\u{202e}name: docker container"),
            "{text}"
        );
        assert!(text.contains("s\\x07h\\nx (pid 4250) 1 MiB"), "{text}");
    }

    #[test]
    fn curves() {
        assert_eq!(downsample(&[1, 2, 3], 5), [1, 2, 3]);
        assert_eq!(downsample(&[1, 5, 2, 2, 9, 3, 4], 3), [5, 9, 4]);
        assert_eq!(downsample(&[], 3), Vec::<u64>::new());
        assert_eq!(downsample(&(0..100).collect::<Vec<_>>(), 16).len(), 16);
        assert_eq!(sparkline(&[0, 50, 100], 100), "▁▅█");
        assert_eq!(sparkline(&[0, 0], 0), "▁▁");
        assert_eq!(short_number(2.25), "2.2");
        assert_eq!(short_number(42.4), "42");
    }
}
