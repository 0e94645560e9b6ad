//! Search errors: user errors (a bad filter, a bad synonym file, a missing encoder) apart
//! from internal ones (index I/O, tensors).

use std::path::PathBuf;

/// Result with the search crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in search.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filter expression could not be understood.
    #[error("bad filter {expression:?}: {message}")]
    InvalidFilter {
        /// The filter as given.
        expression: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// A synonym file has a bad line.
    #[error("{}:{line}: {message}", path.display())]
    Synonyms {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The sentence encoder could not be loaded or run.
    #[error("sentence encoder: {message}")]
    Encoder {
        /// What is wrong.
        message: String,
    },
    /// The re-ranker's settings or training data are unusable.
    #[error("re-ranker: {message}")]
    Ranker {
        /// What is wrong.
        message: String,
    },
    /// A saved search index is unreadable.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The full-text index failed.
    #[error("text index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] aisle_store::Error),
    /// Fitting the learned ranker's trees failed.
    #[error(transparent)]
    Trees(#[from] aisle_trees::Error),
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
