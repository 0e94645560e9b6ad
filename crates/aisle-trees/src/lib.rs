//! Gradient-boosted decision trees: binary log-loss (purchase and churn prediction),
//! LambdaMART (learning to rank, for search re-ranking) and TreeSHAP (per-feature
//! explanations of one prediction).
//!
//! A crate of its own because the trees are reused by three parts that need nothing else
//! of the models: search re-ranks with LambdaMART, analytics predicts purchases and churn,
//! and the benches compare them. Keeping them out of `aisle-models` means those parts no
//! longer build candle and the recommenders for trees alone. The trees work on plain
//! row-major `f32` features and know nothing of users, items or events, so this crate
//! depends on nothing internal.

mod error;
mod gbdt;

pub use error::{Error, Result};
pub use gbdt::{Gbdt, GbdtConfig, GbdtData, Node, Objective, Tree};
