//! The strategy layer: what aisle showed, with which probability, and what came of it.
//!
//! - [`log`]: logged bandit feedback (one row per shown item: context, action, position,
//!   reward, the serving policy's propensity), read from and written to the Open Bandit
//!   Dataset's layout.
//! - [`impressions`]: aisle's own logged lists, their rewards (events that carry the
//!   impression id or follow within a window) and their off-policy terms.
//! - [`policy`]: serving policies over a recommender's candidates (deterministic ranking,
//!   epsilon-greedy, Plackett-Luce sampling) with the exact probability of each shown item,
//!   and [`linear`] contextual bandits (LinUCB, linear Thompson sampling).
//! - [`ope`]: off-policy estimators (DM, IPS, SNIPS, DR, SNDR, Switch-DR, DR-os; slate IPS,
//!   independent IPS, pseudo-inverse) with bootstrap intervals and weight diagnostics, over
//!   the reward model of [`reward`].
//! - [`simulator`]: a position-bias click model fitted on logs with inverse-propensity
//!   weights, checked against a log of another policy.
//! - [`rl`]: tabular Q-learning in a cart simulator fitted on real carts, and [`deep`]:
//!   DQN and SlateQ (candle networks) in the same simulator, one suggestion or a slate.
//! - [`rollout`]: the deployment gate, shadow, canary, rollout and rollback.
//! - [`experiment`]: sticky A/B splits and team-draft interleaving.

pub mod deep;
pub mod experiment;
pub mod impressions;
pub mod linear;
pub mod log;
pub mod ope;
pub mod policy;
pub mod reward;
pub mod rl;
pub mod rollout;
pub mod simulator;
pub mod stats;

/// What can go wrong reading logs or fitting on them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A log file is malformed; the message names the line and the field.
    #[error("{path}, line {line}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// The line (1 is the header).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The inputs do not fit together (shapes, empty logs, a zero propensity).
    #[error("{0}")]
    Invalid(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
