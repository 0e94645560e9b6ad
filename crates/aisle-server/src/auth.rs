//! API keys, roles and rate limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;

/// What a key may do. Read, ingest and admin each include the ones below them; `demo` is
/// outside that ladder and grants only the routes the demo storefront needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The demo storefront's key, published in its HTML: storefront reads (recommend,
    /// session, cart, item, search, trending, shoppers) and storefront events (view, click,
    /// cart, purchase, search) only. Never analytics, predictions, promotions or explanations.
    Demo,
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
            "demo" => Ok(Role::Demo),
            "read" => Ok(Role::Read),
            "ingest" => Ok(Role::Ingest),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: roles are demo, read, ingest and admin"
            )),
        }
    }
}

impl Role {
    /// Whether a key with this role may call a route that needs `needed`, where
    /// `storefront` says the demo storefront may call it too.
    pub fn may_call(self, needed: Role, storefront: bool) -> bool {
        match self {
            Role::Demo => storefront || needed == Role::Demo,
            role => role >= needed,
        }
    }

    /// The role's name as configured.
    pub fn name(self) -> &'static str {
        match self {
            Role::Demo => "demo",
            Role::Read => "read",
            Role::Ingest => "ingest",
            Role::Admin => "admin",
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
    max_callers: usize,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `rate` requests per second per caller.
    pub fn new(rate: f64) -> RateLimiter {
        RateLimiter::with_capacity(rate, 100_000)
    }

    /// A limiter that tracks at most `max_callers` callers: past that, idle callers are
    /// forgotten first and, if every caller is recent (a flood of addresses), all of them,
    /// so a forgotten caller starts again with a full bucket rather than memory growing.
    pub fn with_capacity(rate: f64, max_callers: usize) -> RateLimiter {
        RateLimiter {
            rate,
            max_callers: max_callers.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Callers tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Takes one token for `caller`; false when the caller is over the limit.
    pub fn allow(&self, caller: &str) -> bool {
        let now = Instant::now();
        let burst = 2.0 * self.rate;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= self.max_callers && !buckets.contains_key(caller) {
            // Forget idle callers rather than grow without bound.
            buckets.retain(|_, (_, t)| now.duration_since(*t).as_secs() < 60);
            if buckets.len() >= self.max_callers {
                buckets.clear();
            }
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
        let small = RateLimiter::with_capacity(5.0, 100);
        for i in 0..10_000 {
            small.allow(&format!("caller-{i}"));
        }
        assert!(small.tracked() <= 100, "tracked {}", small.tracked());
        assert!(Role::Demo.may_call(Role::Read, true));
        assert!(!Role::Demo.may_call(Role::Read, false));
        assert!(!Role::Demo.may_call(Role::Ingest, false));
        assert!(Role::Read.may_call(Role::Read, false) && !Role::Read.may_call(Role::Ingest, true));
    }
}
