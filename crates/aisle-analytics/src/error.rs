//! Analytics errors.

/// Result with the analytics error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// The data cannot support the analysis.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// A model fit did not converge to a usable optimum.
    #[error("the fit failed: {0}")]
    FitFailed(String),
}
