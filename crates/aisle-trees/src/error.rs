//! Tree errors.

/// Errors of fitting trees; both are user errors (bad settings or data), never I/O.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
}

/// Result with the tree error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
