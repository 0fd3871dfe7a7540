//! What goes into the journal and what comes out of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The journal key of a container: `containerd/<namespace>/<id>` for containerd (ids are
/// unique per namespace only), `<runtime>/<id>` otherwise (e.g. `docker/<id>`).
pub fn container_key(runtime: &str, namespace: Option<&str>, id: &str) -> String {
    crate::select::key(runtime, namespace, id)
}

/// One NDJSON record to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Time of the record, unix nanoseconds.
    pub ts_ns: i64,
    /// The record's `type` (`oom_kill`, `kill`, `exit`, ...).
    pub kind: String,
    /// Journal key of the container (see [`container_key`]); `None` for host processes.
    pub container_key: Option<String>,
    /// Container id.
    pub container_id: Option<String>,
    /// Container name at the time of the record.
    pub container_name: Option<String>,
    /// Container runtime (`docker`, `containerd`, ...).
    pub runtime: Option<String>,
    /// The full NDJSON object, as text.
    pub json: String,
}

impl Record {
    /// A record from an NDJSON object of the event model: `type` and the `container` object
    /// (`id`, `name`, `runtime`, `namespace`) are taken from it.
    pub fn from_ndjson(ts_ns: i64, value: &Value) -> Self {
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let c = value.get("container").filter(|c| c.is_object());
        let field = |name: &str| {
            c.and_then(|c| c.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let container_id = field("id");
        let runtime = field("runtime");
        let namespace = field("namespace");
        let container_key = container_id.as_deref().map(|id| {
            container_key(
                runtime.as_deref().unwrap_or("unknown"),
                namespace.as_deref(),
                id,
            )
        });
        Record {
            ts_ns,
            kind,
            container_key,
            container_id,
            container_name: field("name"),
            runtime,
            json: crate::sink::json::line(value),
        }
    }
}

/// Container metadata to insert or update (keyed by [`ContainerUpsert::key`]).
///
/// Upsert rules: `first_seen_ns` keeps the minimum and `last_seen_ns` the maximum of all
/// `seen_ns`; `None` fields keep the stored value; `Some(gone_ns)` marks the container gone
/// (a tombstone); an upsert without `gone_ns` seen after the stored `gone_ns` means the
/// container runs again, which clears `gone_ns` and `exit_code`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerUpsert {
    /// Journal key (see [`container_key`]).
    pub key: String,
    /// Container id.
    pub id: String,
    /// Name, when known.
    pub name: Option<String>,
    /// Runtime (`docker`, `containerd`, `runc`, ...).
    pub runtime: String,
    /// Image reference.
    pub image: Option<String>,
    /// containerd namespace.
    pub namespace: Option<String>,
    /// Labels (replace the stored ones when `Some`).
    pub labels: Option<BTreeMap<String, String>>,
    /// When this information was observed, unix ns.
    pub seen_ns: i64,
    /// When the container went away, unix ns.
    pub gone_ns: Option<i64>,
    /// Exit code of the container's init process.
    pub exit_code: Option<i32>,
    /// Any further metadata (pod, cgroup, ...), as a JSON value.
    pub meta: Option<Value>,
}

/// RSS of one process of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRss {
    /// Process id (host pid namespace).
    pub pid: u32,
    /// Command name.
    pub comm: String,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// One memory sample of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySample {
    /// Journal key of the container.
    pub container_key: String,
    /// Time of the sample, unix ns.
    pub ts_ns: i64,
    /// Memory usage of the container's cgroup, bytes.
    pub usage_bytes: u64,
    /// Memory limit, bytes (`None`: unlimited or unknown).
    pub limit_bytes: Option<u64>,
    /// Top processes by RSS, when collected.
    pub rss_top: Option<Vec<ProcRss>>,
}

/// One item for the journal writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An NDJSON record.
    Record(Record),
    /// Container metadata.
    ContainerUpsert(ContainerUpsert),
    /// A memory sample.
    MemorySample(MemorySample),
}

impl From<Record> for Entry {
    fn from(r: Record) -> Self {
        Entry::Record(r)
    }
}

impl From<ContainerUpsert> for Entry {
    fn from(c: ContainerUpsert) -> Self {
        Entry::ContainerUpsert(c)
    }
}

impl From<MemorySample> for Entry {
    fn from(s: MemorySample) -> Self {
        Entry::MemorySample(s)
    }
}

/// Which records to read (all conditions must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Only records of this container key.
    pub container_key: Option<String>,
    /// Only records whose container name was exactly this.
    pub container_name: Option<String>,
    /// Only these record types (empty: all).
    pub types: Vec<String>,
    /// Only records at or after this time, unix ns.
    pub since_ns: Option<i64>,
    /// Only records at or before this time, unix ns.
    pub until_ns: Option<i64>,
    /// At most this many: the newest ones (still returned oldest first).
    pub limit: Option<usize>,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRecord {
    /// Row id (insertion order).
    pub id: i64,
    /// Time, unix ns.
    pub ts_ns: i64,
    /// The record's `type`.
    pub kind: String,
    /// Journal key of the container, if any.
    pub container_key: Option<String>,
    /// The NDJSON object as stored.
    pub json: String,
}

/// Container metadata read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerRow {
    /// Journal key.
    pub key: String,
    /// Container id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Runtime.
    pub runtime: String,
    /// Image reference.
    pub image: Option<String>,
    /// containerd namespace.
    pub namespace: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// First time seen, unix ns.
    pub first_seen_ns: i64,
    /// Last time seen (metadata, records or samples), unix ns.
    pub last_seen_ns: i64,
    /// When it went away, unix ns (`None`: not known to be gone).
    pub gone_ns: Option<i64>,
    /// Exit code of its init process, when known.
    pub exit_code: Option<i32>,
    /// Further metadata.
    pub meta: Option<Value>,
}

impl crate::select::Selectable for ContainerRow {
    fn candidate(&self) -> crate::select::Candidate<'_> {
        crate::select::Candidate {
            id: &self.id,
            name: self.name.as_deref(),
            runtime: &self.runtime,
            namespace: self.namespace.as_deref(),
            pod: crate::container::pod_from_labels(&self.labels).map(|p| {
                (
                    std::borrow::Cow::Owned(p.name),
                    std::borrow::Cow::Owned(p.namespace),
                )
            }),
        }
    }
}
