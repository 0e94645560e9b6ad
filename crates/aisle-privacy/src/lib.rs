//! aisle's privacy layer.
//!
//! - [`noise`]: exact discrete Laplace and discrete Gaussian samplers;
//! - [`bound`]: per-user contribution bounding and thresholded partition counts;
//! - [`account`]: what releases cost (pure ε, zCDP ρ) and the (ε, δ) conversion;
//! - [`ledger`]: the persisted budget with its window and the cache of answers;
//! - [`audit`]: the append-only, hash-chained audit log;
//! - [`pseudonym`]: keyed pseudonyms for external user ids.
//!
//! It depends only on `aisle-core`: the engine and the analytics use it, and it knows
//! nothing of stores or models.

pub mod account;
pub mod audit;
pub mod bound;
pub mod ledger;
pub mod noise;
pub mod pseudonym;

use std::path::PathBuf;

pub use account::{Cost, laplace_for, zcdp_delta, zcdp_epsilon};
pub use bound::{Bounds, Thresholded, thresholded_counts};
pub use ledger::{Budget, Entry, Ledger, Released};
pub use noise::Noise;

/// Opens `path` for appending, creating it and its directory when missing.
fn open_for_append(path: &std::path::Path) -> std::io::Result<fs_err::File> {
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The release would spend more than the window has left.
    #[error(
        "privacy budget exhausted: this answer needs epsilon {needed:.4} and {left:.4} is left of this {window_days}-day window; ask an admin for exact figures or wait for older releases to leave the window"
    )]
    OverBudget {
        /// ε the release needs.
        needed: f64,
        /// ε left.
        left: f64,
        /// The window.
        window_days: f64,
    },
    /// A setting guarantees nothing or cannot work.
    #[error("{0}")]
    Setting(String),
    /// A file is damaged.
    #[error("{path}: line {line}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Its line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Encoding or decoding an entry.
    #[error("encoding a ledger entry: {0}")]
    Json(#[from] serde_json::Error),
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
