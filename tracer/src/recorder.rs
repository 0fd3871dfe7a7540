//! Feeding the journal from a live watch: records of interest, container metadata (kept after
//! the container is gone) and memory samples of every live container. Everything goes
//! through the journal's bounded, non-blocking queue: a slow disk drops and counts, it never
//! stalls event reading.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::{
    cgroup::{Limit, MemoryDir, Mounts},
    journal::{
        container_key, ContainerUpsert, Journal, JournalError, JournalHandle, JournalOptions,
        MemorySample, ProcRss, Record, WriterStatus,
    },
    resolve::Container,
};

/// Record types stored by default: incidents and what explains them, not every exec.
pub const DEFAULT_TYPES: &[&str] = &[
    "kill",
    "oom_kill",
    "oom_victim",
    "container_start",
    "container_stop",
    "restart_loop",
    "container_update",
    "signal",
    "capability",
    "cpu_throttle",
    "lost",
    "stats",
];

/// Allowed capability checks are folded in memory per container, capability and program
/// (`comm`) and written as one `capability` record each this often (and when the journal is
/// closed): `ctrace caps` needs what a container used, not every check, and allowed checks are
/// many. Denied checks are stored as they come (the kernel already folds them per process).
pub const CAP_FOLD_INTERVAL: Duration = Duration::from_secs(10);
/// Folds kept at most between two writes; past it they are written at once.
const CAP_FOLD_MAX: usize = 4096;

/// Allowed capability checks not yet written: the last record of each (container key,
/// capability, program), with the checks folded into it and the times of the first and last.
struct CapFold {
    pending: HashMap<(String, String, String), Folded>,
    last_write: Instant,
}

struct Folded {
    last: Value,
    count: u64,
    first_ns: i64,
    last_ns: i64,
}

/// Containers younger than this are sampled more often than every second: a container that
/// dies of OOM often does so within its first second (the lab's `tail /dev/zero` under a
/// 100 MiB limit takes about 150 ms).
pub const YOUNG_AGE: Duration = Duration::from_secs(5);
/// A container's usage is written again after this long even when it did not move.
pub const SAMPLE_KEEPALIVE: Duration = Duration::from_secs(15);
/// Usage moves worth a sample: this share of the limit (or [`SAMPLE_MOVE_MIN`]).
const SAMPLE_MOVE_SHARE: u64 = 100;
/// Usage moves worth a sample at least: 256 KiB.
const SAMPLE_MOVE_MIN: u64 = 256 << 10;
/// Containers whose last sample is remembered; past it the memory is cleared.
const SAMPLED_MAX: usize = 16_384;

/// What was written last for a container: usage, when, and the limit read with it.
type LastSample = (u64, Instant, Option<u64>);

/// Whether a sample of `usage` is worth writing: `Some((with_processes, limit))`. A quiet
/// container costs a journal row every [`SAMPLE_KEEPALIVE`], not every second, and its
/// processes are read when memory is tight (half the limit) or with the keep-alive. The
/// limit is read (`read_limit`) only for a row: in between, the move is judged against the
/// limit of the last row, so an idle container costs one file a second.
fn sample_due(
    last: &mut HashMap<String, LastSample>,
    key: &str,
    usage: u64,
    read_limit: impl FnOnce() -> Option<u64>,
    now: Instant,
) -> Option<(bool, Option<u64>)> {
    let keepalive = match last.get(key) {
        None => true,
        Some(&(before, at, limit)) => {
            let step = limit.map_or(SAMPLE_MOVE_MIN, |l| {
                (l / SAMPLE_MOVE_SHARE).max(SAMPLE_MOVE_MIN)
            });
            let due = now.duration_since(at) >= SAMPLE_KEEPALIVE;
            if !due && usage.abs_diff(before) < step {
                return None;
            }
            due
        }
    };
    if last.len() >= SAMPLED_MAX && !last.contains_key(key) {
        last.clear();
    }
    let limit = read_limit();
    last.insert(key.to_owned(), (usage, now, limit));
    Some((keepalive || limit.is_some_and(|l| usage >= l / 2), limit))
}

/// How often [`Recorder::sample_young`] is called.
pub const YOUNG_TICK: Duration = Duration::from_millis(20);
/// Sampling interval by age: every tick in the first second, every 100 ms until
/// [`YOUNG_AGE`].
const YOUNG_TIERS: [(Duration, Duration); 2] = [
    (Duration::from_secs(1), YOUNG_TICK),
    (YOUNG_AGE, Duration::from_millis(100)),
];

/// How long ago the container's init started (its `/proc` start time, in clock ticks since
/// boot, against `boot_now_ns`), when known.
fn init_age(c: &Container, boot_now_ns: u64) -> Option<Duration> {
    let ticks = c.init_start?;
    let started_ns = u128::from(ticks) * 1_000_000_000 / u128::from(procfs::ticks_per_second());
    let age = u128::from(boot_now_ns).checked_sub(started_ns)?;
    Some(Duration::from_nanos(u64::try_from(age).ok()?))
}

/// The young sampling interval for a container of this age, if it is still young.
fn young_interval(age: Duration) -> Option<Duration> {
    YOUNG_TIERS
        .iter()
        .find(|(below, _)| age < *below)
        .map(|&(_, every)| every)
}

/// The journal key of a container.
pub fn key(c: &Container) -> String {
    container_key(c.runtime.as_str(), c.namespace.as_deref(), &c.id)
}

/// The least size of [`Recorder`]'s settled containers at which they are swept.
const SETTLED_SWEEP_MIN: usize = 64;

pub struct Recorder {
    handle: JournalHandle,
    join: Option<JoinHandle<WriterStatus>>,
    types: BTreeSet<String>,
    mounts: Mounts,
    path: PathBuf,
    /// Containers already written, with what was written, to upsert only on change.
    written: HashMap<String, (Option<String>, Option<String>, bool)>,
    /// When each container was first seen and last sampled as a young one.
    first_seen: HashMap<String, (Instant, Option<Instant>)>,
    announced_disabled: bool,
    /// Until when some container is young enough for dense sampling (see
    /// [`Recorder::saw_new_container`]); nothing to do after it.
    young_until: Option<Instant>,
    caps: Mutex<CapFold>,
    /// The capability sets of each container's init, once read (kept in its metadata).
    held_caps: HashMap<String, Value>,
    /// Containers found with nothing more to write, by address. The resolver makes a new
    /// container on every change, so meeting the same one again (held here, its address
    /// cannot be reused) needs no key, no lookup by key and no compare: a second's pass over
    /// hundreds of idle containers stays cheap.
    settled: HashMap<usize, Arc<Container>>,
    /// `settled`'s size at which those no one else holds any more are dropped.
    settled_sweep_at: usize,
    /// Each container's last memory sample written: its usage and when.
    sampled: Mutex<HashMap<String, LastSample>>,
}

impl Recorder {
    /// Open (creating) the journal and start its writer. `types`: record types to store
    /// (`all` stores everything).
    pub fn open(path: &Path, opts: JournalOptions, types: &[String]) -> Result<Self, JournalError> {
        let journal = Journal::open(path, opts)?;
        let (handle, join) = journal.spawn_writer();
        Ok(Self {
            handle,
            join: Some(join),
            types: types.iter().cloned().collect(),
            mounts: Mounts::current(),
            path: path.to_owned(),
            written: HashMap::new(),
            first_seen: HashMap::new(),
            announced_disabled: false,
            young_until: None,
            caps: Mutex::new(CapFold {
                pending: HashMap::new(),
                last_write: Instant::now(),
            }),
            held_caps: HashMap::new(),
            settled: HashMap::new(),
            settled_sweep_at: SETTLED_SWEEP_MIN,
            sampled: Mutex::new(HashMap::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn wants(&self, ty: &str) -> bool {
        self.types.contains("all") || self.types.contains(ty)
    }

    /// Store one NDJSON record if its type is wanted.
    pub fn record(&self, unix_ns: i128, v: &Value) {
        let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
        if self.wants(ty) {
            let ts = i64::try_from(unix_ns).unwrap_or(i64::MAX);
            if ty == "capability" && v.get("verdict").and_then(Value::as_str) == Some("allowed") {
                self.fold_cap(ts, v);
                return;
            }
            self.handle.try_send(Record::from_ndjson(ts, v));
        }
    }

    /// Fold an allowed capability check into its container's, capability's and program's.
    fn fold_cap(&self, ts: i64, v: &Value) {
        let rec = Record::from_ndjson(ts, v);
        let Some(container) = rec.container_key else {
            return;
        };
        let text = |path: &[&str]| {
            path.iter()
                .try_fold(v, |v, k| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let key = (container, text(&["capability"]), text(&["process", "comm"]));
        let count = v.get("count").and_then(Value::as_u64).unwrap_or(1).max(1);
        let span = v
            .get("span_ns")
            .and_then(Value::as_u64)
            .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let mut fold = self.caps.lock().unwrap_or_else(PoisonError::into_inner);
        let f = fold.pending.entry(key).or_insert_with(|| Folded {
            last: Value::Null,
            count: 0,
            first_ns: ts.saturating_sub(span),
            last_ns: ts,
        });
        f.last = v.clone();
        f.count = f.count.saturating_add(count);
        f.first_ns = f.first_ns.min(ts.saturating_sub(span));
        f.last_ns = f.last_ns.max(ts);
        let due =
            fold.pending.len() >= CAP_FOLD_MAX || fold.last_write.elapsed() >= CAP_FOLD_INTERVAL;
        if due {
            self.write_caps(&mut fold);
        }
    }

    /// Write the folded allowed checks: one `capability` record per container, capability
    /// and program, with the checks folded since the last write.
    fn write_caps(&self, fold: &mut CapFold) {
        fold.last_write = Instant::now();
        for (_, f) in fold.pending.drain() {
            self.handle
                .try_send(Record::from_ndjson(f.last_ns, &folded_record(&f)));
        }
    }

    /// Write what is folded when [`CAP_FOLD_INTERVAL`] has passed (call every second).
    fn tick_caps(&self) {
        let mut fold = self.caps.lock().unwrap_or_else(PoisonError::into_inner);
        if !fold.pending.is_empty() && fold.last_write.elapsed() >= CAP_FOLD_INTERVAL {
            self.write_caps(&mut fold);
        }
    }

    /// Whether a record of this type would be stored (so callers build JSON only then).
    pub fn stores(&self, ty: &str) -> bool {
        self.wants(ty)
    }

    /// Write a container's metadata when it is new or changed; `exit_code` with `gone`.
    pub fn container(&mut self, c: &Arc<Container>, unix_ns: i128, exit_code: Option<i32>) {
        // The map holds what it keys, so an address in it is this very container.
        if exit_code.is_none() && self.settled.contains_key(&(Arc::as_ptr(c) as usize)) {
            return;
        }
        let k = key(c);
        // The init's capability sets, read once the runtime's setup is over; they change the
        // metadata, so they are written when first read.
        let new_caps = !c.gone
            && !self.held_caps.contains_key(&k)
            && c.init_pid.and_then(held_caps).is_some_and(|caps| {
                self.held_caps.insert(k.clone(), caps);
                true
            });
        let unchanged = self.written.get(&k).is_some_and(|(name, image, gone)| {
            *name == c.name && *image == c.image && *gone == c.gone
        });
        if exit_code.is_none() && !new_caps && unchanged {
            // Nothing more will come for this one: its capabilities are read (or it is gone).
            if c.gone || self.held_caps.contains_key(&k) {
                self.settle(c);
            }
            return;
        }
        if self.held_caps.len() > self.written.len() + 1024 {
            let written = &self.written;
            self.held_caps.retain(|k, _| written.contains_key(k));
        }
        self.written
            .insert(k.clone(), (c.name.clone(), c.image.clone(), c.gone));
        let mut meta = serde_json::to_value(c.as_ref()).ok();
        if let (Some(Value::Object(m)), Some(caps)) = (&mut meta, self.held_caps.get(&k)) {
            m.insert("capabilities".to_owned(), caps.clone());
        }
        let ts = i64::try_from(unix_ns).unwrap_or(i64::MAX);
        self.handle.try_send(ContainerUpsert {
            key: k,
            id: c.id.clone(),
            name: c.name.clone(),
            runtime: c.runtime.as_str().to_owned(),
            image: c.image.clone(),
            namespace: c.namespace.clone(),
            labels: Some(c.labels.clone()),
            seen_ns: ts,
            gone_ns: (c.gone || exit_code.is_some()).then_some(ts),
            exit_code,
            meta,
        });
    }

    fn settle(&mut self, c: &Arc<Container>) {
        if self.settled.len() >= self.settled_sweep_at {
            // Those the resolver replaced or forgot: only this map holds them now.
            self.settled.retain(|_, s| Arc::strong_count(s) > 1);
            self.settled_sweep_at = (self.settled.len() * 2).max(SETTLED_SWEEP_MIN);
        }
        self.settled.insert(Arc::as_ptr(c) as usize, Arc::clone(c));
    }

    /// A memory sample of a live container: usage, limit, and its five largest processes.
    pub fn sample(&self, c: &Container, unix_ns: i128) {
        let Some(dir) = c
            .cgroup_path_for("memory")
            .and_then(|p| self.mounts.memory(p))
        else {
            return;
        };
        let Some(usage) = dir.read_usage() else {
            return;
        };
        let read_limit = || dir.read_limit().and_then(Limit::bytes);
        let key = key(c);
        let now = Instant::now();
        let Some((with_processes, limit)) = (match self.sampled.lock() {
            Ok(mut s) => sample_due(&mut s, &key, usage, read_limit, now),
            Err(_) => Some((true, read_limit())),
        }) else {
            return;
        };
        let ts = i64::try_from(unix_ns).unwrap_or(i64::MAX);
        self.handle.try_send(MemorySample {
            container_key: key,
            ts_ns: ts,
            usage_bytes: usage,
            limit_bytes: limit,
            rss_top: with_processes.then(|| top_rss(&dir, 5)),
        });
    }

    /// A container became known: containers are young for [`YOUNG_AGE`] from now.
    pub fn saw_new_container(&mut self) {
        self.young_until = Some(Instant::now() + YOUNG_AGE);
    }

    /// Whether some container may still be young: [`Recorder::sample_young`] has work.
    pub fn has_young(&self) -> bool {
        self.young_until.is_some_and(|t| Instant::now() < t)
    }

    /// Sample the containers seen for less than [`YOUNG_AGE`] (call every [`YOUNG_TICK`]):
    /// a memory curve up to an OOM kill in a container's first second.
    pub fn sample_young<'a>(
        &mut self,
        containers: impl Iterator<Item = &'a Arc<Container>>,
        unix_ns: i128,
    ) {
        let now = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for c in containers {
            let k = key(c);
            // A container that was already running when ctrace started is not young: its age
            // counts from its init's start, not from when ctrace first saw it.
            let (first, last) = self.first_seen.entry(k.clone()).or_insert_with(|| {
                let age = init_age(c, crate::clock::BootClock::boot_now_ns());
                (
                    now.checked_sub(age.unwrap_or_default()).unwrap_or(now),
                    None,
                )
            });
            // A tick late by a few ms still counts, or a 20 ms tier would sample every 40 ms.
            let due = young_interval(now.duration_since(*first)).is_some_and(|every| {
                last.is_none_or(|l| now.duration_since(l) + YOUNG_TICK / 4 >= every)
            });
            if due {
                *last = Some(now);
                self.sample(c, unix_ns);
            }
            seen.insert(k);
        }
        if self.first_seen.len() > seen.len() + 1024 {
            self.first_seen.retain(|k, _| seen.contains(k));
        }
    }

    /// A sample from figures read elsewhere (the OOM incident's reading at the kill).
    pub fn sample_at(&self, c: &Container, unix_ns: i128, usage: u64, limit: Option<u64>) {
        self.handle.try_send(MemorySample {
            container_key: key(c),
            ts_ns: i64::try_from(unix_ns).unwrap_or(i64::MAX),
            usage_bytes: usage,
            limit_bytes: limit,
            rss_top: None,
        });
    }

    /// A one-line warning when the writer has given up (full or read-only disk), once.
    /// Called every second, it also writes the allowed capability checks folded for
    /// [`CAP_FOLD_INTERVAL`].
    pub fn health(&mut self) -> Option<String> {
        self.tick_caps();
        let st = self.handle.status();
        if st.disabled && !self.announced_disabled {
            self.announced_disabled = true;
            return Some(format!(
                "journaling to {} is off: {}; the live stream goes on",
                self.path.display(),
                st.last_error.unwrap_or_else(|| "the writer stopped".into())
            ));
        }
        None
    }

    pub fn status(&self) -> WriterStatus {
        self.handle.status()
    }

    /// Write what is queued and stop the writer.
    pub fn close(mut self) -> WriterStatus {
        {
            let mut fold = self.caps.lock().unwrap_or_else(PoisonError::into_inner);
            self.write_caps(&mut fold);
        }
        let st = self.handle.flush_and_close();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
        st
    }
}

/// The `capability` record written for folded allowed checks: the last one, with the
/// count and span of all of them.
fn folded_record(f: &Folded) -> Value {
    let mut v = f.last.clone();
    let span = u64::try_from(f.last_ns.saturating_sub(f.first_ns)).unwrap_or(0);
    let text = |path: &[&str]| {
        path.iter()
            .try_fold(&f.last, |v, k| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let explanation = format!(
        "{} (last pid {}, {}) was allowed {}{}; checks folded per container, capability and \
         program",
        text(&["process", "comm"]),
        f.last
            .pointer("/process/pid")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        text(&["container", "name"]),
        text(&["capability"]),
        crate::sink::json::repeat_note(f.count, span),
    );
    if let Value::Object(m) = &mut v {
        m.insert("count".to_owned(), json!(f.count));
        m.insert("span_ns".to_owned(), json!(span));
        m.insert("explanation".to_owned(), json!(explanation));
    }
    v
}

/// The capability sets of a container's init (`/proc/<pid>/status`) as kept in its journal
/// metadata; `None` while it cannot be read or is still the runtime's setup process (which
/// holds more than the container will).
fn held_caps(pid: u32) -> Option<Value> {
    let st = crate::inspect::read_status(pid).ok()?;
    if st
        .name
        .as_deref()
        .is_none_or(crate::advise::is_runtime_setup)
    {
        return None;
    }
    let caps = st.caps?;
    Some(json!({
        "pid": pid,
        "effective": caps.effective.to_hex(),
        "permitted": caps.permitted.to_hex(),
        "bounding": caps.bounding.to_hex(),
    }))
}

/// The largest processes of a memory cgroup by resident set size.
fn top_rss(dir: &MemoryDir, n: usize) -> Vec<ProcRss> {
    let d = match dir {
        MemoryDir::V1(d) | MemoryDir::V2(d) => d,
    };
    let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) else {
        return Vec::new();
    };
    let page = crate::probe::page_size();
    let mut all: Vec<ProcRss> = procs
        .lines()
        .take(512)
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .filter_map(|pid| {
            let (resident, comm) = crate::host::proc::rss_pages_and_comm(pid)?;
            Some(ProcRss {
                pid,
                comm,
                rss_bytes: resident * page,
            })
        })
        .collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.rss_bytes));
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(comm: &str, verdict: &str, count: u64) -> Value {
        json!({
            "type": "capability",
            "container": {"id": "abc123", "name": "web", "runtime": "docker"},
            "process": {"pid": 5, "tid": 5, "ppid": 1, "uid": 0, "comm": comm},
            "capability": "CAP_CHOWN",
            "cap": 0,
            "verdict": verdict,
            "count": count,
            "span_ns": 0,
            "explanation": "x",
        })
    }

    /// A recorder on a new journal in a scratch directory named after `test`: the directory
    /// (to remove at the end) and the journal's path with it.
    fn scratch(test: &str) -> (std::path::PathBuf, std::path::PathBuf, Recorder) {
        let dir = std::env::temp_dir().join(format!("ctrace-rec-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.db");
        let types: Vec<String> = DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect();
        let r = Recorder::open(&path, JournalOptions::default(), &types).unwrap();
        (dir, path, r)
    }

    /// Allowed checks are written folded per container, capability and program, with their
    /// counts summed; denied ones as they come. A container's init's capability sets go into
    /// its metadata.
    #[test]
    fn allowed_checks_are_folded_and_held_caps_kept() {
        let (dir, path, mut r) = scratch("folded");
        let s: i64 = 1_000_000_000;
        r.record(i128::from(10 * s), &check("chown", "allowed", 2));
        r.record(i128::from(11 * s), &check("chown", "allowed", 3));
        r.record(i128::from(12 * s), &check("cp", "allowed", 1));
        r.record(i128::from(13 * s), &check("chown", "denied", 4));
        // This test process stands for the container's init.
        let mut c = Container::named("abc123", "web", crate::container::Runtime::Docker);
        c.init_pid = Some(std::process::id());
        r.container(&Arc::new(c), i128::from(14 * s), None);
        r.close();
        let j = Journal::open_read_only(&path).unwrap();
        let recs = j
            .records(&crate::journal::RecordFilter {
                types: vec!["capability".to_owned()],
                ..Default::default()
            })
            .unwrap();
        let mut got: Vec<(String, String, u64, u64, i64)> = recs
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_str(&r.json).unwrap();
                (
                    v["process"]["comm"].as_str().unwrap().to_owned(),
                    v["verdict"].as_str().unwrap().to_owned(),
                    v["count"].as_u64().unwrap(),
                    v["span_ns"].as_u64().unwrap(),
                    r.ts_ns,
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (
                    "chown".into(),
                    "allowed".into(),
                    5,
                    s.unsigned_abs(),
                    11 * s
                ),
                ("chown".into(), "denied".into(), 4, 0, 13 * s),
                ("cp".into(), "allowed".into(), 1, 0, 12 * s),
            ]
        );
        let row = j
            .container("docker/abc123")
            .unwrap()
            .expect("container row");
        let caps = &row.meta.unwrap()["capabilities"];
        assert_eq!(caps["pid"], std::process::id());
        let own = crate::inspect::read_status(std::process::id())
            .unwrap()
            .caps
            .unwrap();
        assert_eq!(caps["effective"], own.effective.to_hex());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A container met again unchanged is settled and passed over; the resolver's new one
    /// (renamed) is written, and so is an exit whatever else.
    #[test]
    fn containers_are_written_when_new_changed_or_ended() {
        let (dir, path, mut r) = scratch("settle");
        let s: i128 = 1_000_000_000;
        let mut c = Container::named("abc123", "web", crate::container::Runtime::Docker);
        c.init_pid = Some(std::process::id());
        let first = Arc::new(c);
        r.container(&first, 10 * s, None);
        assert!(r.settled.is_empty(), "written, not settled yet");
        r.container(&first, 11 * s, None);
        assert!(r.settled.contains_key(&(Arc::as_ptr(&first) as usize)));
        r.container(&first, 12 * s, None);
        let mut renamed = (*first).clone();
        renamed.name = Some("web-2".to_owned());
        let second = Arc::new(renamed);
        r.container(&second, 13 * s, None);
        r.container(&second, 14 * s, Some(137));
        r.close();
        let j = Journal::open_read_only(&path).unwrap();
        let row = j
            .container("docker/abc123")
            .unwrap()
            .expect("container row");
        assert_eq!(row.name.as_deref(), Some("web-2"));
        assert_eq!(row.gone_ns, Some(i64::try_from(14 * s).unwrap()));
        assert_eq!(row.exit_code, Some(137));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn settled_containers_no_one_else_holds_are_swept() {
        let (dir, _, mut r) = scratch("sweep");
        let kept: Vec<_> = (0..SETTLED_SWEEP_MIN)
            .map(|i| {
                let mut c =
                    Container::named(&format!("c{i}"), "x", crate::container::Runtime::Runc);
                c.gone = true;
                Arc::new(c)
            })
            .collect();
        for c in &kept {
            r.container(c, 1, None);
            r.container(c, 2, None);
        }
        assert_eq!(r.settled.len(), SETTLED_SWEEP_MIN);
        // Half are replaced (the resolver let go of them): the next one settled sweeps them.
        let kept: Vec<_> = kept.into_iter().step_by(2).collect();
        let mut c = Container::named("late", "x", crate::container::Runtime::Runc);
        c.gone = true;
        let late = Arc::new(c);
        r.container(&late, 1, None);
        r.container(&late, 2, None);
        assert_eq!(r.settled.len(), kept.len() + 1);
        r.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quiet_containers_are_sampled_seldom_and_tight_ones_with_their_processes() {
        let t0 = Instant::now();
        let mut last = HashMap::new();
        let mib = 1 << 20;
        let limit = Some(100 * mib);
        let reads = std::cell::Cell::new(0);
        let mut due = |key: &str, usage: u64, limit: Option<u64>, at: Instant| {
            let read = || {
                reads.set(reads.get() + 1);
                limit
            };
            sample_due(&mut last, key, usage, read, at).map(|(processes, l)| {
                assert_eq!(l, limit, "a row carries the limit read with it");
                processes
            })
        };
        // The first sample is written, with its processes.
        assert_eq!(due("c", 10 * mib, limit, t0), Some(true));
        // Usage that did not move by 1 % of the limit: nothing until the keep-alive, and
        // the limit is not read for nothing.
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(due("c", 10 * mib + 1000, limit, at(1)), None);
        assert_eq!(due("c", 10 * mib, limit, at(14)), None);
        assert_eq!(reads.get(), 1);
        assert_eq!(due("c", 10 * mib, limit, at(15)), Some(true));
        // A move is written at once; its processes only when memory is tight.
        assert_eq!(due("c", 20 * mib, limit, at(16)), Some(false));
        assert_eq!(due("c", 60 * mib, limit, at(17)), Some(true));
        assert_eq!(reads.get(), 4);
        // Without a limit a move is 256 KiB.
        assert_eq!(due("u", mib, None, t0), Some(true));
        assert_eq!(due("u", mib + (200 << 10), None, at(1)), None);
        assert_eq!(due("u", mib + (300 << 10), None, at(2)), Some(false));
    }

    #[test]
    fn a_container_is_as_old_as_its_init() {
        let hz = procfs::ticks_per_second();
        let mut c = Container::named("abc", "web", crate::container::Runtime::Docker);
        let boot_now = 100 * 1_000_000_000;
        assert_eq!(init_age(&c, boot_now), None, "unknown start");
        c.init_start = Some(40 * hz);
        assert_eq!(init_age(&c, boot_now), Some(Duration::from_secs(60)));
        assert!(young_interval(Duration::from_secs(60)).is_none());
        // A start after "now" (clocks read apart) is not an age.
        c.init_start = Some(101 * hz);
        assert_eq!(init_age(&c, boot_now), None);
    }

    #[test]
    fn denser_the_younger() {
        let ms = Duration::from_millis;
        assert_eq!(young_interval(ms(0)), Some(ms(20)));
        assert_eq!(young_interval(ms(999)), Some(ms(20)));
        assert_eq!(young_interval(ms(1000)), Some(ms(100)));
        assert_eq!(young_interval(ms(4999)), Some(ms(100)));
        assert_eq!(young_interval(ms(5000)), None);
    }
}
