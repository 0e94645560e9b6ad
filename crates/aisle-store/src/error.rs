//! Store errors.

use std::path::PathBuf;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller named an event kind that is neither built in nor registered.
    #[error(transparent)]
    UnknownKind(#[from] aisle_core::ParseKindError),
    /// An event the caller gave cannot be stored.
    #[error("invalid event: {reason}")]
    InvalidEvent {
        /// Why.
        reason: String,
    },
    /// Another process has the data directory open.
    #[error(
        "the data directory {path} is in use by another aisle process; stop it or use another --data-dir"
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The data directory was written by an incompatible version of aisle.
    #[error(
        "the store at {path} has format version {found}, this aisle reads version {expected}: import the data again into a new data directory"
    )]
    FormatVersion {
        /// The store file.
        path: PathBuf,
        /// Version found on disk.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// A stored record does not decode: the file is damaged.
    #[error("corrupt record in {table}: {reason}")]
    Corrupt {
        /// Table holding the record.
        table: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// File-system error (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Encryption at rest: a missing, wrong or badly kept key.
    #[error("encryption: {0}")]
    Encryption(String),
    /// PostgreSQL refused a statement or could not be reached (the `postgres` store).
    #[error("PostgreSQL: {reason}")]
    Database {
        /// What was being done, and the server's or the connection's message.
        reason: String,
        /// The database could not be reached (retry later) rather than refusing.
        unavailable: bool,
    },
    /// Error of the embedded database engine.
    #[error("embedded store: {0}")]
    Backend(#[from] redb::Error),
}

impl Error {
    /// True when the store's database could not be reached: nothing was stored, and the same
    /// request can be retried once it is back.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Database {
                unavailable: true,
                ..
            }
        )
    }

    /// True for mistakes of the caller (bad input), false for internal failures.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::UnknownKind(_) | Error::InvalidEvent { .. } | Error::Locked { .. }
        )
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Backend(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Result with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
