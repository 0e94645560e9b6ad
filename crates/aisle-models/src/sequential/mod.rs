//! Models of ordered behaviour: the transformer over event sequences (with attention, a
//! frequency filter beside attention, or convolutions as its mixer) and the recurrent
//! GRU4Rec.

mod gru4rec;
pub(crate) mod layers;
mod transformer;

pub use gru4rec::{Gru4Rec, Gru4RecConfig, Gru4RecLoss};
pub use transformer::{CaserConfig, Mixer, Transformer, TransformerConfig};
