//! Training structures built from the store.
//!
//! [`EventLog::load`] reads every event once into a compact, time-ordered array; from it come
//! the cleaned log ([`EventLog::clean`]), sessions ([`Sessions`]), the user × item matrix in
//! CSR form with per-kind weights ([`InteractionMatrix`]) and each user's time-ordered
//! sequence ([`Sequences`]). [`DatasetStats`] describes a dataset for `aisle stats`.
//!
//! Models read these structures, never the store: training is independent of where the
//! events live.

mod clean;
mod csr;
mod error;
mod log;
mod sequences;
mod sessions;
mod stats;

pub use clean::{CleaningConfig, CleaningReport};
pub use csr::{InteractionMatrix, KindWeights};
pub use error::{Error, Result};
pub use log::{EventLog, Interaction, NO_ITEM};
pub use sequences::Sequences;
pub use sessions::{SessionConfig, Sessions};
pub use stats::{DatasetStats, DistributionStats, KindCount, LongTailStats, TimeSpan};
