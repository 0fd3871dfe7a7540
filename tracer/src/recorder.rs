//! Feeding the journal from a live watch: records of interest, container metadata (kept after
//! the container is gone) and memory samples of every live container. Everything goes
//! through the journal's bounded, non-blocking queue: a slow disk drops and counts, it never
//! stalls event reading.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    cgroupfs::{MemoryDir, Mounts},
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
    "container_update",
    "signal",
    "capability",
    "cpu_throttle",
    "lost",
    "stats",
];

/// Containers younger than this are sampled more often than every second: a container that
/// dies of OOM often does so within its first second (the lab's `tail /dev/zero` under a
/// 100 MiB limit takes about 150 ms).
pub const YOUNG_AGE: Duration = Duration::from_secs(5);
/// How often [`Recorder::sample_young`] is called.
pub const YOUNG_TICK: Duration = Duration::from_millis(20);
/// Sampling interval by age: every tick in the first second, every 100 ms until
/// [`YOUNG_AGE`].
const YOUNG_TIERS: [(Duration, Duration); 2] = [
    (Duration::from_secs(1), YOUNG_TICK),
    (YOUNG_AGE, Duration::from_millis(100)),
];

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
            self.handle.try_send(Record::from_ndjson(ts, v));
        }
    }

    /// Whether a record of this type would be stored (so callers build JSON only then).
    pub fn stores(&self, ty: &str) -> bool {
        self.wants(ty)
    }

    /// Write a container's metadata when it is new or changed; `exit_code` with `gone`.
    pub fn container(&mut self, c: &Arc<Container>, unix_ns: i128, exit_code: Option<i32>) {
        let k = key(c);
        let now = (c.name.clone(), c.image.clone(), c.gone);
        if exit_code.is_none() && self.written.get(&k) == Some(&now) {
            return;
        }
        self.written.insert(k.clone(), now);
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
            meta: serde_json::to_value(c.as_ref()).ok(),
        });
    }

    /// A memory sample of a live container: usage, limit, and its five largest processes.
    pub fn sample(&self, c: &Container, unix_ns: i128) {
        let Some(dir) = c
            .cgroup_path_for("memory")
            .and_then(|p| self.mounts.memory(p))
        else {
            return;
        };
        let stats = dir.read();
        let Some(usage) = stats.usage_bytes else {
            return;
        };
        let ts = i64::try_from(unix_ns).unwrap_or(i64::MAX);
        self.handle.try_send(MemorySample {
            container_key: key(c),
            ts_ns: ts,
            usage_bytes: usage,
            limit_bytes: stats.limit_bytes,
            rss_top: Some(top_rss(&dir, 5)),
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
            let (first, last) = self.first_seen.entry(k.clone()).or_insert((now, None));
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
    pub fn health(&mut self) -> Option<String> {
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
        let st = self.handle.flush_and_close();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
        st
    }
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
