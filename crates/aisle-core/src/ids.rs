//! Dense internal ids.

use serde::{Deserialize, Serialize};

/// Dense internal id of a user, assigned by the store in order of first appearance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId(pub u32);

/// Dense internal id of an item, assigned by the store in order of first appearance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemId(pub u32);

/// A session key: the 64-bit xxh3 hash of the session's external id.
///
/// Sessions are only ever grouping keys, so aisle does not keep a table of them; hashing
/// keeps ingest free of another lookup. Collisions need ~4 billion sessions to be likely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub u64);

impl UserId {
    /// The id as an array index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl ItemId {
    /// The id as an array index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
