//! Models of ordered behaviour: the transformer over event sequences.

mod transformer;

pub use transformer::{Transformer, TransformerConfig};
