//! Neighbourhood models: item-kNN and user-kNN.

mod item;
mod user;

pub use item::{ItemKnn, ItemKnnConfig};
use serde::{Deserialize, Serialize};
pub use user::{UserKnn, UserKnnConfig};

/// Similarity measure of a kNN model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Similarity {
    /// Cosine of the interaction vectors, with shrinkage.
    #[default]
    Cosine,
    /// Pearson correlation over co-rated items (user-kNN only).
    Pearson,
}
