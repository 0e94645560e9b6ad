//! Offline evaluation, done honestly.
//!
//! * Protocols ([`Protocol`]): leave-last-one-out per user, a global temporal split, and
//!   session next-item prediction. Each also cuts a validation split from its *training*
//!   part, so that tuning never sees the test data.
//! * Full ranking over the whole catalogue: every item is a candidate except those a case
//!   excludes (for leave-one-out, the items already in the user's history).
//! * Metrics ([`metrics`]): HitRate, Recall, Precision, NDCG, MRR and MAP at several K, plus
//!   catalogue coverage, novelty, popularity bias and intra-list diversity.
//! * [`product_search`]: personalised product search after Ai et al. (SIGIR 2017).
//! * [`run_leaderboard`] fits each model, optionally tunes it within a budget on the
//!   validation split, refits on the whole training part and scores the test cases.
//! * [`chart`]: the SVG charts of every report (bars, training curves), used by the CLI and
//!   the benches too.

pub mod chart;
mod error;
pub mod metrics;
pub mod product_search;
mod report;
mod runner;
mod split;
mod tuning;

pub use chart::{bar_chart_svg, training_curve_svg};
pub use error::{Error, Result};
pub use report::{html_report, leaderboard_table};
pub use runner::{
    EvalSettings, LeaderboardRow, ModelResult, evaluate, rank_all, run_leaderboard, score_ranked,
};
pub use split::{Protocol, Split, TestCase};
pub use tuning::candidates;
