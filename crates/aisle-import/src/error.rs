//! Import errors.

use std::fmt;
use std::path::PathBuf;

/// A bad source row: where it is and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (CSV, JSON Lines, text) or row number (Parquet).
    pub line: u64,
    /// The field (column) at fault, when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl RowError {
    /// A bad row of `file` at `line`, in `field` when one is at fault.
    pub(crate) fn at(
        file: &std::path::Path,
        line: u64,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> RowError {
        RowError {
            file: file.to_path_buf(),
            line,
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// Errors of an import. Any of them means nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad row in a strict import.
    #[error("{0} (strict import: nothing was imported)")]
    Row(RowError),
    /// The file has no header or no rows.
    #[error("{}: the file is empty", file.display())]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// A column the mapping names is not in the file.
    #[error("{}:1: required column `{column}` is missing (the file has: {available})", file.display())]
    MissingColumn {
        /// The file.
        file: PathBuf,
        /// The missing column.
        column: String,
        /// The columns the file does have.
        available: String,
    },
    /// The mapping or adapter options are wrong.
    #[error("invalid mapping: {0}")]
    Mapping(String),
    /// No rows could be imported at all.
    #[error("no row of {files} could be imported; first error: {first}")]
    NothingImported {
        /// The files read.
        files: String,
        /// The first bad row.
        first: RowError,
    },
    /// No input files were given.
    #[error("no input files given")]
    NoInput,
    /// A file could not be read (the message names it).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is not a readable Parquet file.
    #[error("{}: not a readable Parquet file: {source}", file.display())]
    Parquet {
        /// The file.
        file: PathBuf,
        /// What the Parquet reader said.
        source: parquet::errors::ParquetError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] aisle_store::Error),
}

/// Result with the import error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
