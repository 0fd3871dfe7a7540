//! Errors of the journal.

use std::path::PathBuf;

/// Why the journal could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file at the journal path is not a ctrace journal (not SQLite, another application's
    /// database, truncated or corrupted). The file has not been modified.
    #[error(
        "{path} is not a usable ctrace journal ({reason}); it was left untouched: \
         move it away or choose another journal path"
    )]
    NotAJournal {
        /// The journal path.
        path: PathBuf,
        /// What is wrong with the file.
        reason: String,
    },
    /// The journal was written by a newer ctrace with a schema this one does not know.
    #[error(
        "journal {path} has schema version {found}, newer than version {supported} supported by \
         this ctrace; upgrade ctrace or choose another journal path (the file was left untouched)"
    )]
    NewerSchema {
        /// The journal path.
        path: PathBuf,
        /// Schema version found in the file.
        found: u32,
        /// Newest schema version this build understands.
        supported: u32,
    },
    /// A read-only open found an older schema that needs a (writing) migration first.
    #[error(
        "journal {path} has schema version {found}, older than version {supported}; open it once \
         for writing (e.g. run `ctrace watch`) to migrate it"
    )]
    NeedsMigration {
        /// The journal path.
        path: PathBuf,
        /// Schema version found in the file.
        found: u32,
        /// Schema version this build needs.
        supported: u32,
    },
    /// Migrating an older schema failed; the transaction was rolled back.
    #[error("journal {path}: migration to schema version {to} failed: {source}")]
    Migration {
        /// The journal path.
        path: PathBuf,
        /// Version the failed step migrates to.
        to: u32,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The journal can only be read (read-only file system, file or open mode).
    #[error("journal {path} is read-only: {reason}")]
    ReadOnly {
        /// The journal path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("journal {path}: {what}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An SQLite operation failed.
    #[error("journal {path}: {what}: {source}")]
    Sqlite {
        /// The journal path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
}

impl JournalError {
    /// The journal's place cannot be written now (read-only, full or failing disk, no
    /// permission), as opposed to a file that is not a usable journal: a live watch goes on
    /// without it rather than stopping.
    pub fn is_storage_unavailable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            JournalError::ReadOnly { .. } | JournalError::Io { .. } => true,
            JournalError::Sqlite { source, .. } | JournalError::Migration { source, .. } => {
                matches!(
                    source.sqlite_error_code(),
                    Some(
                        C::DiskFull
                            | C::ReadOnly
                            | C::CannotOpen
                            | C::SystemIoFailure
                            | C::PermissionDenied
                    )
                )
            }
            _ => false,
        }
    }

    pub(crate) fn sqlite(
        path: &std::path::Path,
        what: &'static str,
        source: rusqlite::Error,
    ) -> Self {
        JournalError::Sqlite {
            path: path.to_owned(),
            what,
            source,
        }
    }

    pub(crate) fn io(path: &std::path::Path, what: &'static str, source: std::io::Error) -> Self {
        JournalError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    }

    pub(crate) fn not_a_journal(path: &std::path::Path, reason: impl Into<String>) -> Self {
        JournalError::NotAJournal {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}
