//! Model errors.

use std::path::PathBuf;

/// Errors of fitting, saving and loading models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown model name.
    #[error("unknown model {name:?}; models are: {known}")]
    UnknownModel {
        /// The name given.
        name: String,
        /// The names there are.
        known: String,
    },
    /// A hyper-parameter is out of range.
    #[error("invalid {model} config: {reason}")]
    InvalidConfig {
        /// Model name.
        model: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The training data cannot fit this model.
    #[error("cannot fit {model}: {reason}")]
    Fit {
        /// Model name.
        model: &'static str,
        /// Why.
        reason: String,
    },
    /// The model cannot forget users in place (a refit without them can).
    #[error("{model} cannot forget users in place: {reason}")]
    Forget {
        /// Model name.
        model: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A model file is not one this version reads.
    #[error("{}: {reason}", path.display())]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor computation failed (a bug or an exhausted device, never a user mistake).
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// File-system error (names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result with the model error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
