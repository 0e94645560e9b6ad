//! What aisle showed: one record per served list, with the probability of each shown item,
//! so that any other policy can later be evaluated on what users did with it.

use serde::{Deserialize, Serialize};

use crate::{ItemId, SessionId, UserId};

/// One served list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Impression {
    /// Its id (answered to the client as 16 hex digits; events that carry it are its rewards).
    pub id: u64,
    /// When it was served, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Which list: `recommend`, `session`, `cart`, `similar`, `cross-category`, `trending`, `search`.
    pub surface: String,
    /// The serving policy's id.
    pub policy: String,
    /// Its version.
    pub policy_version: u32,
    /// The user it was shown to, when known.
    pub user: Option<UserId>,
    /// The session, when named.
    pub session: Option<SessionId>,
    /// The candidates the policy chose among, in the ranker's order.
    pub candidates: Vec<ItemId>,
    /// The ranker's score of each candidate (what another score-based policy would draw from).
    pub scores: Vec<f32>,
    /// The items shown, first position first.
    pub shown: Vec<ShownItem>,
}

/// One shown item.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShownItem {
    /// The item.
    pub item: ItemId,
    /// The probability the policy put it at this position, given the positions above it.
    pub propensity: f32,
}

/// Formats an impression id as clients see it.
pub fn impression_label(id: u64) -> String {
    format!("{id:016x}")
}

/// Parses an impression id as clients send it (16 hex digits).
pub fn parse_impression_label(text: &str) -> Option<u64> {
    (text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
}
