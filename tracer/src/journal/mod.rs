//! The embedded journal: an SQLite file (WAL mode) that keeps NDJSON records of interest,
//! container metadata (including tombstones of containers that are gone) and memory samples,
//! so `ctrace postmortem` and `ctrace history` can answer after the fact.
//!
//! - [`Journal::open`] creates or opens a journal for writing (refusing, without touching
//!   it, any file that is not a ctrace journal or comes from a newer ctrace; migrating older
//!   schemas); [`Journal::open_read_only`] opens one for queries.
//! - [`Journal::spawn_writer`] moves the journal into a writer thread; producers get a
//!   [`JournalHandle`] whose [`JournalHandle::try_send`] never blocks (a full queue drops and
//!   counts). The thread commits in batches and enforces retention ([`maintenance`]).
//! - Queries: [`Journal::records`], [`Journal::containers_matching`],
//!   [`Journal::memory_curve`].
//!
//! Schema (version [`CURRENT_VERSION`], see `schema.rs`): `meta(key, value)`,
//! `records(id, ts_ns, type, container_key, container_id, container_name, runtime, json)`,
//! `containers(key, id, name, runtime, image, namespace, labels, first_seen_ns,
//! last_seen_ns, gone_ns, exit_code, meta)`, `memory_samples(id, container_key, ts_ns,
//! usage_bytes, limit_bytes, rss_top)`. Times are unix nanoseconds.

mod clock;
mod error;
pub mod maintenance;
mod query;
mod schema;
mod store;
mod types;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::JournalError;
pub use maintenance::MaintenanceReport;
pub use schema::{APPLICATION_ID, CURRENT_VERSION};
pub use types::{
    container_key, ContainerRow, ContainerUpsert, Entry, MemorySample, ProcRss, Record,
    RecordFilter, StoredRecord,
};
pub use writer::{JournalHandle, WriterOptions, WriterStatus};

use schema::{Migration, Probe};

use crate::select::{Best, Selector};

/// Default journal location.
pub const DEFAULT_PATH: &str = "/var/lib/ctrace/journal.db";

/// Bounds of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// Records and samples older than this are deleted, and containers gone (or unseen) for
    /// longer (default 7 days).
    pub retention: Duration,
    /// Bytes of database pages in use (free pages excluded; the `-wal` file not counted)
    /// above which the oldest records and samples are deleted (default 512 MiB).
    pub max_size_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(7 * 24 * 3600),
            max_size_bytes: 512 * 1024 * 1024,
        }
    }
}

/// An open journal. Not `Sync`: one thread at a time (the writer thread, or a reader).
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    opts: JournalOptions,
    read_only: bool,
}

/// Grows the `-wal` file back down to this after checkpoints.
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

impl Journal {
    /// Opens the journal at `path` for writing, creating it (mode 0600, and its parent
    /// directory with mode 0700 when missing) if there is no file.
    ///
    /// Refuses, leaving the file untouched, a file that is not a ctrace journal or is
    /// damaged ([`JournalError::NotAJournal`]) and a journal of a newer schema
    /// ([`JournalError::NewerSchema`]); migrates an older schema in one transaction.
    pub fn open(path: &Path, opts: JournalOptions) -> Result<Journal, JournalError> {
        Self::open_with(path, opts, schema::MIGRATIONS)
    }

    fn open_with(
        path: &Path,
        opts: JournalOptions,
        migrations: &[Migration],
    ) -> Result<Journal, JournalError> {
        let supported = migrations.last().map_or(0, |m| m.to);
        let fresh = match std::fs::metadata(path) {
            Ok(_) => match schema::probe(path)? {
                Probe::Empty => true,
                Probe::Journal { version, conn } => {
                    if version > supported {
                        return Err(JournalError::NewerSchema {
                            path: path.to_owned(),
                            found: version,
                            supported,
                        });
                    }
                    schema::quick_check(&conn)
                        .map_err(|reason| JournalError::not_a_journal(path, reason))?;
                    if schema::fs_read_only(path) {
                        return Err(JournalError::ReadOnly {
                            path: path.to_owned(),
                            reason: "its file system is mounted read-only".to_owned(),
                        });
                    }
                    false
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create_file(path) {
                Ok(()) => true,
                // Created meanwhile by someone else: look at it like any existing file.
                Err(JournalError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    return Self::open_with(path, opts, migrations);
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(JournalError::io(path, "cannot stat", e)),
        };
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| JournalError::sqlite(path, "cannot open", e))?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
            return Err(JournalError::ReadOnly {
                path: path.to_owned(),
                reason: "the file or its file system is not writable".to_owned(),
            });
        }
        let sq = |what| move |e| JournalError::sqlite(path, what, e);
        conn.busy_timeout(schema::BUSY_TIMEOUT)
            .map_err(sq("cannot configure"))?;
        if fresh {
            // Lets maintenance give pages back when the file outgrows its bound; only
            // possible before the first table exists.
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(sq("cannot configure"))?;
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sq("cannot switch to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::ReadOnly {
                path: path.to_owned(),
                reason: format!("cannot use WAL mode (journal mode stays {mode})"),
            });
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sq("cannot configure"))?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(sq("cannot configure"))?;
        schema::migrate(&mut conn, path, migrations)?;
        Ok(Journal {
            conn,
            path: path.to_owned(),
            opts,
            read_only: false,
        })
    }

    /// Opens an existing journal for queries only. Refuses non-journals, newer schemas, and
    /// older schemas that need a migration (which only a writing open performs).
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        match schema::probe(path)? {
            Probe::Empty => Err(JournalError::not_a_journal(
                path,
                "an empty database, not yet a journal",
            )),
            Probe::Journal { version, conn } => {
                if version > CURRENT_VERSION {
                    return Err(JournalError::NewerSchema {
                        path: path.to_owned(),
                        found: version,
                        supported: CURRENT_VERSION,
                    });
                }
                if version < CURRENT_VERSION {
                    return Err(JournalError::NeedsMigration {
                        path: path.to_owned(),
                        found: version,
                        supported: CURRENT_VERSION,
                    });
                }
                // The probe may have read the file as immutable (no locks): fine on a
                // read-only file system, but a writer may come along otherwise.
                let conn = if schema::fs_read_only(path) {
                    conn
                } else {
                    drop(conn);
                    schema::connect_read_only(path, false)
                        .map_err(|e| JournalError::sqlite(path, "cannot open", e))?
                };
                Ok(Journal {
                    conn,
                    path: path.to_owned(),
                    opts: JournalOptions::default(),
                    read_only: true,
                })
            }
        }
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bounds in force.
    pub fn options(&self) -> JournalOptions {
        self.opts
    }

    /// The schema version of the open journal.
    pub fn schema_version(&self) -> Result<u32, JournalError> {
        schema::read_version(&self.conn)
            .map_err(|e| self.err("cannot read the schema version", e))?
            .ok_or_else(|| JournalError::not_a_journal(&self.path, "no schema version"))
    }

    /// Bytes of pages in use (free pages excluded).
    pub fn used_bytes(&self) -> Result<u64, JournalError> {
        maintenance::sizes(&self.conn)
            .map(|(used, _)| used)
            .map_err(|e| self.err("cannot read its size", e))
    }

    fn err(&self, what: &'static str, e: rusqlite::Error) -> JournalError {
        JournalError::sqlite(&self.path, what, e)
    }

    pub(crate) fn read_only_reason(&self) -> Option<String> {
        self.read_only
            .then(|| format!("journal {} was opened read-only", self.path.display()))
    }

    fn check_writable(&self) -> Result<(), JournalError> {
        match self.read_only_reason() {
            Some(reason) => Err(JournalError::ReadOnly {
                path: self.path.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Writes `entries` synchronously in one transaction (the writer thread's batch
    /// commit); returns how many were written.
    pub fn write(&mut self, entries: &[Entry]) -> Result<usize, JournalError> {
        self.write_batch(entries).map_err(|(e, _)| e)
    }

    /// [`Journal::write`], also saying whether a failure came at COMMIT, when the batch may
    /// still have reached the file.
    pub(crate) fn write_batch(&mut self, entries: &[Entry]) -> Result<usize, (JournalError, bool)> {
        self.check_writable().map_err(|e| (e, false))?;
        store::write_batch(&mut self.conn, entries)
            .map_err(|e| (self.err("cannot write", e.error), e.at_commit))
    }

    /// Runs retention, thinning and the size bound once, to completion, as of `now_ns`.
    pub fn run_maintenance(&mut self, now_ns: i64) -> Result<MaintenanceReport, JournalError> {
        self.maintain(now_ns, None)
    }

    pub(crate) fn maintain(
        &mut self,
        now_ns: i64,
        deadline: Option<Instant>,
    ) -> Result<MaintenanceReport, JournalError> {
        self.check_writable()?;
        let retention_ns = i64::try_from(self.opts.retention.as_nanos()).unwrap_or(i64::MAX);
        maintenance::run(
            &self.conn,
            retention_ns,
            self.opts.max_size_bytes,
            now_ns,
            deadline,
        )
        .map_err(|e| self.err("maintenance failed", e))
    }

    /// Moves the journal into a batching writer thread with default [`WriterOptions`].
    pub fn spawn_writer(self) -> (JournalHandle, std::thread::JoinHandle<WriterStatus>) {
        self.spawn_writer_with(WriterOptions::default())
    }

    /// Moves the journal into a batching writer thread. The thread ends after
    /// [`JournalHandle::flush_and_close`] (or when every handle is dropped) and returns its
    /// final status.
    pub fn spawn_writer_with(
        self,
        opts: WriterOptions,
    ) -> (JournalHandle, std::thread::JoinHandle<WriterStatus>) {
        writer::spawn(self, opts)
    }

    /// Records matching `filter`, oldest first.
    pub fn records(&self, filter: &RecordFilter) -> Result<Vec<StoredRecord>, JournalError> {
        query::records(&self.conn, filter).map_err(|e| self.err("cannot read records", e))
    }

    /// The containers `selector` names by [`Selector::best`] (a full id or journal key, else
    /// an exact name, else a pod name, else an id prefix), newest first; `None` when nothing
    /// matches. A name can match several containers that used it over time.
    pub fn containers_matching(
        &self,
        selector: &Selector,
    ) -> Result<Option<Best<ContainerRow>>, JournalError> {
        let all =
            query::containers(&self.conn).map_err(|e| self.err("cannot read containers", e))?;
        Ok(selector.best(all))
    }

    /// The container with this journal key.
    pub fn container(&self, key: &str) -> Result<Option<ContainerRow>, JournalError> {
        query::container(&self.conn, key).map_err(|e| self.err("cannot read containers", e))
    }

    /// Memory samples of a container between `from_ns` and `to_ns` (inclusive), oldest
    /// first.
    pub fn memory_curve(
        &self,
        container_key: &str,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<MemorySample>, JournalError> {
        query::memory_curve(&self.conn, container_key, from_ns, to_ns)
            .map_err(|e| self.err("cannot read memory samples", e))
    }
}

/// Creates an empty journal file with mode 0600, and its missing parent directories with
/// mode 0700.
fn create_file(path: &Path) -> Result<(), JournalError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| JournalError::io(dir, "cannot create the directory", e))?;
        }
    }
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| JournalError::io(path, "cannot create", e))?;
    // Whatever the umask: the owner must be able to write.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| JournalError::io(path, "cannot set the mode of", e))
}
