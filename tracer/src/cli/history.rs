//! `ctrace history`: past records from the journal, filtered by container, time and type.
//! `--json` prints the stored NDJSON lines exactly as `ctrace watch --json` printed them.
//!
//! Also the pieces `ctrace postmortem` shares: opening a journal read-only with the right exit
//! code for each failure and container labels of stored records.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Args;

use tracer::{
    clock::{now_unix_ns, parse_time, utc_ms, TimeSpec},
    journal::{self, Journal, JournalError, RecordFilter, StoredRecord},
    record::{self, Head, KindStats, Record},
    select::Selector,
    sink::escape::terminal,
};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only records of this container: name, id, id prefix (3 characters or more), pod name,
    /// `NAMESPACE/NAME` or journal key (`docker/<id>`). A name reused over time selects every
    /// container that had it; an exact name or id wins over an id prefix.
    #[arg(long, value_name = "NAME|ID", value_parser = Selector::parse)]
    pub container: Option<Selector>,
    /// Only records since this time: a duration ago (30m, 1h, 7d) or an RFC 3339 time
    /// (2026-11-29T18:40:00Z; no offset means UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<TimeSpec>,
    /// Only records until this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<TimeSpec>,
    /// Only these record types, comma-separated: oom_kill, kill, container_start,
    /// container_stop, container_update, oom_victim, signal, capability, lost, stats...
    #[arg(long = "type", value_name = "TYPES", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Print the stored NDJSON records (the schema of `ctrace watch --json`), one per line.
    #[arg(long)]
    pub json: bool,
    /// At most this many records: the newest ones (still printed oldest first); 0 for all.
    /// A note on stderr says when older records were left out.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT)]
    pub limit: usize,
    /// The journal to read (never created or modified).
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    pub journal: PathBuf,
}

/// Records `history` prints unless told otherwise: a busy host's week would flood a terminal.
pub const DEFAULT_LIMIT: usize = 1000;

/// Why a journal command failed, and the exit code that says so: 1 when the journal or the
/// container is not there, 2 when the journal cannot be used or the arguments are wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Nothing to report on (no journal, no such container): exit code 1.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// The journal is unusable or the request is wrong: exit code 2.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    fn journal(path: &Path, e: &JournalError) -> Self {
        match e {
            JournalError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Self::not_found(format!(
                    "no journal at {}: `ctrace watch` creates and keeps one (on by default; \
                     give it the same --journal PATH)",
                    terminal(&path.display().to_string())
                ))
            }
            e => Self::error(terminal(&e.to_string())),
        }
    }
}

/// What a journal command prints: `text` on stdout, `notes` on stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub text: String,
    pub notes: Vec<String>,
}

/// Print an outcome and turn it into the process's exit code.
pub fn finish(result: Result<Output, Failure>) -> ExitCode {
    match result {
        Ok(out) => {
            for n in &out.notes {
                eprintln!("ctrace: {n}");
            }
            match super::print_stdout(&out.text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ctrace: error: writing output: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Err(f) => {
            if f.code == 1 {
                eprintln!("ctrace: {}", f.message);
            } else {
                eprintln!("ctrace: error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Opens a journal for queries only: never creates, migrates or modifies the file.
pub fn open_journal(path: &Path) -> Result<Journal, Failure> {
    Journal::open_read_only(path).map_err(|e| Failure::journal(path, &e))
}

/// A query failure on an open journal (damaged pages, I/O errors): exit code 2.
pub fn query_failed(e: &JournalError) -> Failure {
    Failure::error(terminal(&e.to_string()))
}

/// `web (docker)`, `host`, `unknown cgroup`, or `-` for records about no process (and
/// records that cannot be read).
pub fn container_label(head: Option<&Head>) -> String {
    head.and_then(|h| record::container_label(h.container.as_ref().map(Option::as_ref)))
        .map_or_else(|| "-".to_owned(), |l| terminal(&l))
}

/// The explanation of a stored record; `stats` records get a summary of the run.
pub fn explanation(json: &str, head: Option<&Head>) -> String {
    if let Some(e) = head.and_then(|h| h.explanation.as_deref()) {
        return terminal(e);
    }
    if let Ok(Record::Stats(st)) = serde_json::from_str(json) {
        let sum = |f: fn(&KindStats) -> u64| -> u64 { st.kinds.values().map(f).sum() };
        return format!(
            "end of a watch: {} records produced by the kernel, {} delivered, {} lost",
            sum(|k| k.produced),
            sum(|k| k.delivered),
            sum(|k| k.lost_ringbuf_full)
        );
    }
    "-".to_owned()
}

/// The human table: time (UTC), type, container, explanation; everything escaped.
pub fn render(records: &[StoredRecord]) -> String {
    let rows: Vec<[String; 4]> = records
        .iter()
        .map(|r| {
            let head: Option<Head> = serde_json::from_str(&r.json).ok();
            [
                utc_ms(r.ts_ns),
                terminal(&r.kind),
                container_label(head.as_ref()),
                explanation(&r.json, head.as_ref()),
            ]
        })
        .collect();
    let width = |i: usize, cap: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
            .min(cap)
    };
    let (tw, cw) = (width(1, 16), width(2, 40));
    let mut out = String::new();
    for [ts, ty, c, e] in &rows {
        out.push_str(&format!("{ts}  {ty:<tw$}  {c:<cw$}  {e}\n"));
    }
    out
}

/// Records matching the arguments, oldest first. `container`: every journal key the
/// selector names ([`Journal::containers_matching`]), plus records that carried the name;
/// `None` if it names nothing at all.
pub fn query(
    journal: &Journal,
    container: Option<&Selector>,
    base: &RecordFilter,
) -> Result<Option<Vec<StoredRecord>>, JournalError> {
    let Some(selector) = container else {
        return journal.records(base).map(Some);
    };
    let pattern = selector.as_str();
    let keys: Vec<String> = journal
        .containers_matching(selector)?
        .map(|b| b.items.into_iter().map(|c| c.key).collect())
        .unwrap_or_default();
    let mut filters: Vec<RecordFilter> = keys
        .iter()
        .map(|k| RecordFilter {
            container_key: Some(k.clone()),
            ..base.clone()
        })
        .collect();
    filters.push(RecordFilter {
        container_name: Some(pattern.to_owned()),
        ..base.clone()
    });
    let mut merged: BTreeMap<(i64, i64), StoredRecord> = BTreeMap::new();
    for f in &filters {
        for r in journal.records(f)? {
            merged.insert((r.ts_ns, r.id), r);
        }
    }
    if keys.is_empty() && merged.is_empty() {
        return Ok(None);
    }
    let mut all: Vec<StoredRecord> = merged.into_values().collect();
    if let Some(limit) = base.limit {
        let drop = all.len().saturating_sub(limit);
        all.drain(..drop);
    }
    Ok(Some(all))
}

/// `ctrace history`, as of `now_ns`.
pub fn run(args: &HistoryArgs, now_ns: i64) -> Result<Output, Failure> {
    let since = args.since.map(|t| t.resolve(now_ns));
    let until = args.until.map(|t| t.resolve(now_ns));
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(Failure::error(format!(
                "--since ({}) is after --until ({})",
                utc_ms(s),
                utc_ms(u)
            )));
        }
    }
    let types: Vec<String> = args
        .types
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let journal = open_journal(&args.journal)?;
    // One more than asked: whether older records were left out.
    let limit = (args.limit > 0).then_some(args.limit);
    let base = RecordFilter {
        types,
        since_ns: since,
        until_ns: until,
        limit: limit.map(|l| l.saturating_add(1)),
        ..RecordFilter::default()
    };
    let mut records = query(&journal, args.container.as_ref(), &base)
        .map_err(|e| query_failed(&e))?
        .ok_or_else(|| {
            Failure::not_found(format!(
                "no container named {:?} (or with that id) in journal {}",
                terminal(args.container.as_ref().map_or("", Selector::as_str)),
                terminal(&args.journal.display().to_string())
            ))
        })?;
    let mut out = Output::default();
    if let Some(l) = limit.filter(|&l| records.len() > l) {
        records.drain(..records.len() - l);
        out.notes.push(format!(
            "showing the newest {l} matching records; older ones were left out (--limit N, or \
             --limit 0 for all)"
        ));
    }
    if args.json {
        for r in &records {
            out.text.push_str(&r.json);
            out.text.push('\n');
        }
    } else {
        out.text = render(&records);
    }
    if records.is_empty() {
        out.notes.push(format!(
            "no records match in journal {}",
            terminal(&args.journal.display().to_string())
        ));
    }
    Ok(out)
}

/// Entry point of `ctrace history`: prints and returns the exit code.
pub fn main(args: &HistoryArgs) -> ExitCode {
    finish(run(args, now_unix_ns()))
}

#[cfg(test)]
pub(crate) mod tests;
