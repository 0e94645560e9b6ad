//! Session-based models: session-kNN and sequential rules.

mod rules;
mod sknn;

pub use rules::{SequentialRules, SequentialRulesConfig};
pub use sknn::{SessionKnn, SessionKnnConfig};
