//! Evaluation errors.

/// Errors of evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model failed to fit.
    #[error(transparent)]
    Model(#[from] aisle_models::Error),
    /// The data cannot be split by this protocol.
    #[error("cannot split the data: {0}")]
    Split(String),
    /// The product-search protocol cannot run on this data.
    #[error("product search protocol: {0}")]
    Protocol(String),
}

/// Result with the evaluation error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
