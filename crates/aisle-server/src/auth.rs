//! API keys, roles and rate limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;

/// What a key may do. Each role includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Recommend, search, predict, analytics.
    Read,
    /// Also send events.
    Ingest,
    /// Also change the catalogue and users, forget users, retrain.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "read" => Ok(Role::Read),
            "ingest" => Ok(Role::Ingest),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: roles are read, ingest and admin"
            )),
        }
    }
}

/// One configured key.
#[derive(Clone, Debug, Deserialize)]
pub struct ApiKey {
    /// The secret, sent as `Authorization: Bearer KEY` or `X-Api-Key: KEY`.
    pub key: String,
    /// What it may do.
    pub role: Role,
}

/// Looks keys up in constant time per key, so timing does not reveal a key's prefix.
pub struct Keys {
    keys: Vec<ApiKey>,
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Keys {
    /// The configured keys.
    pub fn new(keys: Vec<ApiKey>) -> Keys {
        Keys { keys }
    }

    /// The role of `presented`, if it is a known key.
    pub fn role(&self, presented: &str) -> Option<Role> {
        let mut found = None;
        for k in &self.keys {
            if same(k.key.as_bytes(), presented.as_bytes()) {
                found = Some(k.role);
            }
        }
        found
    }
}

/// Token buckets per caller: `rate` requests per second, bursts of `2 × rate`.
///
/// Written here rather than taken from a crate: the governor-based tower layers key by
/// address only, and aisle limits by API key first.
pub struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `rate` requests per second per caller.
    pub fn new(rate: f64) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `caller`; false when the caller is over the limit.
    pub fn allow(&self, caller: &str) -> bool {
        let now = Instant::now();
        let burst = 2.0 * self.rate;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > 100_000 {
            // Forget idle callers rather than grow without bound.
            buckets.retain(|_, (_, t)| now.duration_since(*t).as_secs() < 60);
        }
        let (tokens, last) = buckets.entry(caller.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_limits() {
        let keys = Keys::new(vec![
            ApiKey {
                key: "reader-key".into(),
                role: Role::Read,
            },
            ApiKey {
                key: "admin-key!".into(),
                role: Role::Admin,
            },
        ]);
        assert_eq!(keys.role("reader-key"), Some(Role::Read));
        assert_eq!(keys.role("reader-ke"), None);
        assert!(Role::Admin > Role::Ingest && Role::Ingest > Role::Read);
        let limiter = RateLimiter::new(5.0);
        let allowed = (0..30).filter(|_| limiter.allow("a")).count();
        assert!((10..=11).contains(&allowed), "burst of 10, got {allowed}");
        assert!(limiter.allow("b"), "callers have their own buckets");
    }
}
