//! Schema, migrations, and the checks that decide whether a file is a journal.
//!
//! Everything here that looks at an existing file does so without modifying it: the raw
//! header is read with a plain `read`, and SQLite is used through a read-only connection.
//! Only once a file is known to be a ctrace journal is it opened for writing.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction};

use super::error::JournalError;

/// `PRAGMA application_id` of a ctrace journal ("ctrj").
pub const APPLICATION_ID: i32 = 0x6374_726a;

/// Schema version written by this build.
pub const CURRENT_VERSION: u32 = 1;

/// How long a connection waits for another one's lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One schema step: applied inside the migration transaction to a database at version
/// `to - 1` (version 0: no tables yet).
pub(crate) struct Migration {
    pub to: u32,
    pub apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// All schema steps, in order. To add version 2: append `Migration { to: 2, apply: v2 }`
/// (ALTER/CREATE statements only; data moves in SQL) and bump [`CURRENT_VERSION`].
pub(crate) const MIGRATIONS: &[Migration] = &[Migration { to: 1, apply: v1 }];

/// Version 1: records, containers (with tombstones), memory samples.
fn v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.execute_batch(V1_SQL)
}

const V1_SQL: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE records (
    id             INTEGER PRIMARY KEY,
    ts_ns          INTEGER NOT NULL,
    type           TEXT NOT NULL,
    container_key  TEXT,
    container_id   TEXT,
    container_name TEXT,
    runtime        TEXT,
    json           TEXT NOT NULL
);
CREATE INDEX records_ts ON records (ts_ns);
CREATE INDEX records_type_ts ON records (type, ts_ns);
CREATE INDEX records_container_ts ON records (container_key, ts_ns);
CREATE INDEX records_name_ts ON records (container_name, ts_ns);

CREATE TABLE containers (
    key           TEXT PRIMARY KEY,
    id            TEXT NOT NULL,
    name          TEXT,
    runtime       TEXT NOT NULL,
    image         TEXT,
    namespace     TEXT,
    labels        TEXT,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns  INTEGER NOT NULL,
    gone_ns       INTEGER,
    exit_code     INTEGER,
    meta          TEXT
);
CREATE INDEX containers_name ON containers (name, first_seen_ns);
CREATE INDEX containers_id ON containers (id);

CREATE TABLE memory_samples (
    id            INTEGER PRIMARY KEY,
    container_key TEXT NOT NULL,
    ts_ns         INTEGER NOT NULL,
    usage_bytes   INTEGER NOT NULL,
    limit_bytes   INTEGER,
    rss_top       TEXT
);
CREATE UNIQUE INDEX memory_samples_container_ts ON memory_samples (container_key, ts_ns);
CREATE INDEX memory_samples_ts ON memory_samples (ts_ns);
";

/// What an existing file turned out to be.
pub(crate) enum Probe {
    /// An SQLite database without any table (e.g. an empty file): becomes a new journal.
    Empty,
    /// A ctrace journal at this schema version, with the read-only connection used to look.
    Journal { version: u32, conn: Connection },
}

/// True for SQLite errors that mean "this is not (or no longer) a database".
pub(crate) fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// Checks the raw 100-byte SQLite header of a non-empty file, without SQLite. `wal_pending`:
/// a non-empty `-wal` file exists, so the main file may legitimately lag its header.
pub(crate) fn check_header(header: &[u8], file_len: u64, wal_pending: bool) -> Result<(), String> {
    if header.len() < 100 {
        return Err(format!(
            "too short to be an SQLite database ({file_len} bytes)"
        ));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err("not an SQLite database: no SQLite header".to_owned());
    }
    let raw_page = u32::from(u16::from_be_bytes([header[16], header[17]]));
    let page_size = if raw_page == 1 { 65_536 } else { raw_page };
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("corrupted SQLite header: page size {raw_page}"));
    }
    if header[21..24] != [64, 32, 32] {
        return Err("corrupted SQLite header: bad payload fractions".to_owned());
    }
    if wal_pending {
        return Ok(());
    }
    let page_size = u64::from(page_size);
    if !file_len.is_multiple_of(page_size) {
        return Err(format!(
            "truncated or damaged: its size ({file_len} bytes) is not a multiple of its page \
             size ({page_size})"
        ));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (change_counter, pages, valid_for) = (be32(24), u64::from(be32(28)), be32(92));
    if change_counter == valid_for && pages > 0 && pages * page_size > file_len {
        return Err(format!(
            "truncated: its header says {pages} pages ({} bytes) but the file has {file_len} bytes",
            pages * page_size
        ));
    }
    Ok(())
}

/// Reads the first 100 bytes of `path` (fewer if the file is shorter).
fn read_header(path: &Path) -> Result<Vec<u8>, JournalError> {
    let mut f = File::open(path).map_err(|e| JournalError::io(path, "cannot read", e))?;
    let mut header = Vec::with_capacity(100);
    f.by_ref()
        .take(100)
        .read_to_end(&mut header)
        .map_err(|e| JournalError::io(path, "cannot read", e))?;
    Ok(header)
}

/// The path of SQLite's `-wal` file of `path`.
pub(crate) fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}

/// Decides, without modifying anything, what the existing file at `path` is.
pub(crate) fn probe(path: &Path) -> Result<Probe, JournalError> {
    let md = std::fs::metadata(path).map_err(|e| JournalError::io(path, "cannot stat", e))?;
    if !md.is_file() {
        return Err(JournalError::not_a_journal(path, "not a regular file"));
    }
    if md.len() > 0 {
        let wal_pending = std::fs::metadata(wal_path(path)).is_ok_and(|m| m.len() > 0);
        check_header(&read_header(path)?, md.len(), wal_pending)
            .map_err(|reason| JournalError::not_a_journal(path, reason))?;
    }
    // Without a `-wal` file nobody has the journal open and the main file is the whole
    // truth: read it as immutable, which creates no `-wal`/`-shm` files next to it. With
    // one, read through the WAL like any reader. On a read-only file system the `-shm`
    // cannot be created, so immutable is the only way in.
    let immutable = !wal_path(path).exists() || fs_read_only(path);
    let conn = connect_read_only(path, immutable).map_err(|e| open_error(path, e))?;
    let damaged = |e: rusqlite::Error| {
        if is_not_a_database(&e) {
            JournalError::not_a_journal(path, format!("not a readable SQLite database: {e}"))
        } else {
            JournalError::sqlite(path, "cannot read", e)
        }
    };
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(damaged)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(damaged)?;
    if app_id == 0 && tables.is_empty() {
        return Ok(Probe::Empty);
    }
    if app_id != APPLICATION_ID {
        return Err(JournalError::not_a_journal(
            path,
            format!(
                "an SQLite database of another application: application_id {app_id:#010x}, \
                 tables {}",
                if tables.is_empty() {
                    "none".to_owned()
                } else {
                    tables.join(", ")
                }
            ),
        ));
    }
    match read_version(&conn).map_err(damaged)? {
        Some(version) => Ok(Probe::Journal { version, conn }),
        None => Err(JournalError::not_a_journal(
            path,
            "damaged ctrace journal: no schema version",
        )),
    }
}

/// A read-only connection; `immutable`: no locks, no `-wal`/`-shm` (only for a file that
/// nobody writes).
pub(crate) fn connect_read_only(path: &Path, immutable: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if immutable {
        Connection::open_with_flags(
            format!("file:{}?immutable=1", uri_escape(path)),
            flags | OpenFlags::SQLITE_OPEN_URI,
        )?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Percent-encodes a path for an SQLite `file:` URI.
fn uri_escape(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// True if the file system holding `path` is mounted read-only.
pub(crate) fn fs_read_only(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs is plain old data; `c` is a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers for the duration of the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_flag & libc::ST_RDONLY != 0
}

/// Maps an error of opening a connection.
fn open_error(path: &Path, e: rusqlite::Error) -> JournalError {
    if is_not_a_database(&e) {
        JournalError::not_a_journal(path, format!("not a readable SQLite database: {e}"))
    } else {
        JournalError::sqlite(path, "cannot open", e)
    }
}

/// `PRAGMA quick_check` on a journal: `Err(reason)` when the file is damaged.
pub(crate) fn quick_check(conn: &Connection) -> Result<(), String> {
    let rows: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
        Ok(rows) => Err(format!("corrupted: {}", rows.join("; ").replace('\n', " "))),
        Err(e) => Err(format!("corrupted: {e}")),
    }
}

/// The schema version in `meta`, `None` if there is no `meta` table or no version in it.
pub(crate) fn read_version(conn: &Connection) -> rusqlite::Result<Option<u32>> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| v.trim().parse().ok()))
}

/// Brings the database to the last version of `migrations` in one transaction; returns the
/// version found before. Refuses a newer database.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<u32, JournalError> {
    let target = migrations.last().map_or(0, |m| m.to);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| JournalError::sqlite(path, "cannot start the migration", e))?;
    let found = read_version(&tx)
        .map_err(|e| JournalError::sqlite(path, "cannot read the schema version", e))?
        .unwrap_or(0);
    if found > target {
        return Err(JournalError::NewerSchema {
            path: path.to_owned(),
            found,
            supported: target,
        });
    }
    if found == target {
        return Ok(found);
    }
    for m in migrations.iter().filter(|m| m.to > found) {
        (m.apply)(&tx).map_err(|source| JournalError::Migration {
            path: path.to_owned(),
            to: m.to,
            source,
        })?;
    }
    let set = |key: &str, value: String| {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
    };
    set("schema_version", target.to_string())
        .and_then(|_| {
            if found == 0 {
                set("application", "ctrace journal".to_owned())?;
            }
            Ok(0)
        })
        .map_err(|source| JournalError::Migration {
            path: path.to_owned(),
            to: target,
            source,
        })?;
    tx.commit().map_err(|source| JournalError::Migration {
        path: path.to_owned(),
        to: target,
        source,
    })?;
    Ok(found)
}
