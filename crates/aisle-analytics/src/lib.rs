//! Behaviour analytics over the event log.
//!
//! * [`rules`]: frequent itemsets and association rules (support, confidence, lift) from
//!   baskets, for "frequently bought together".
//! * [`behaviour`]: ordered conversion funnels, cohort retention, RFM segments.
//! * [`purchase`]: purchase-prediction features without leakage (reorders, departments,
//!   promotions), and AUC.
//! * [`profiles`]: user portraits, item statistics, cross-category affinity.
//! * [`propensity`]: models of the next order trained on those features, explained per
//!   prediction with TreeSHAP, and promotion targeting.
//! * [`churn`]: RFM and behaviour features for a churn classifier.
//! * [`private`]: the funnel, cohorts, RFM segments and best sellers with differential
//!   privacy (bounded contributions, discrete Laplace noise, thresholded selection).
//! * [`bgnbd`]: the BG/NBD model of repeat buying (Fader, Hardie & Lee, 2005): expected
//!   future transactions and the probability that a customer is still active.

pub mod behaviour;
pub mod bgnbd;
pub mod churn;
mod error;
pub mod private;
pub mod profiles;
pub mod propensity;
pub mod purchase;
pub mod rules;

pub use error::{Error, Result};
