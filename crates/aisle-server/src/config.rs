//! Server settings: a TOML file, then environment variables over it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::{ApiKey, Role};

/// Everything `aisle serve` can be told.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on. Env: `AISLE_LISTEN`.
    pub listen: String,
    /// The recommender served (a model name `aisle train` knows). Env: `AISLE_MODEL`.
    pub model: String,
    /// API keys and their roles. Env: `AISLE_API_KEYS` as `KEY:ROLE,KEY:ROLE`.
    pub keys: Vec<ApiKey>,
    /// Let requests without a key read (recommend, search, analytics). Env: `AISLE_PUBLIC_READS`.
    pub public_reads: bool,
    /// Largest request body in bytes. Env: `AISLE_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// Requests per second allowed per key (and per client address for keyless reads),
    /// with bursts of twice that. Env: `AISLE_RATE_LIMIT`.
    pub rate_limit_per_second: f64,
    /// Retrain in the background this often (seconds); 0 only on request. Env: `AISLE_RETRAIN_SECONDS`.
    pub retrain_every_seconds: u64,
    /// The demo storefront's key, published in its HTML. It gets the `demo` role, which
    /// may only call the storefront's routes and post storefront events. Env: `AISLE_DEMO_KEY`.
    pub demo_key: Option<String>,
    /// Log as JSON lines (else human-readable). Env: `AISLE_LOG_JSON`.
    pub log_json: bool,
    /// How far in the future (by the server's clock) an event's time may be, in seconds:
    /// later times are refused with a 400. Env: `AISLE_MAX_CLOCK_SKEW_SECONDS`.
    pub max_clock_skew_seconds: u64,
    /// Distinct search queries counted for the dashboard; past that, the least recently
    /// searched is dropped. Env: `AISLE_MAX_TRACKED_QUERIES`.
    pub max_tracked_queries: usize,
    /// Sessions kept in memory for session recommendations; past that, the least recently
    /// active is dropped (its events stay in the store). Env: `AISLE_MAX_LIVE_SESSIONS`.
    pub max_live_sessions: usize,
    /// Events remembered per live session (the latest). Env: `AISLE_MAX_SESSION_EVENTS`.
    pub max_session_events: usize,
    /// Write requests waiting for the writer; past that, writes answer 503 with
    /// `Retry-After`. Env: `AISLE_WRITE_QUEUE`.
    pub write_queue: usize,
    /// Callers (keys, addresses) the rate limiter tracks. Env: `AISLE_MAX_RATE_LIMITED_CALLERS`.
    pub max_rate_limited_callers: usize,
    /// A fixed "now" (ms since the epoch) instead of the system clock, for tests and replays
    /// of a recorded day: events are checked against it and trending is aged from it.
    /// Env: `AISLE_FIXED_CLOCK_MS`.
    pub fixed_clock_ms: Option<i64>,
    /// How recommendation lists are drawn from the ranker's candidates, each shown item with
    /// its probability: `epsilon-greedy:EPSILON`, `plackett-luce:TEMPERATURE:FLOOR` or
    /// `deterministic` (the ranking as is; nothing else can be evaluated from its log).
    /// Env: `AISLE_EXPLORATION`.
    pub exploration: String,
    /// The version logged with that policy (`aisle policy deploy` raises it). Env: `AISLE_POLICY_VERSION`.
    pub policy_version: u32,
    /// Surfaces served by a policy of their own instead of `exploration`:
    /// `SURFACE=SETTING,SURFACE=SETTING` (surfaces: recommend, session, cart, similar,
    /// cross-category). A rollout replaces only the shared policy. Env: `AISLE_EXPLORATION_BY_SURFACE`.
    pub exploration_by_surface: Option<String>,
    /// A candidate policy (same forms as `exploration`) to roll out over it: shadow, then a
    /// canary share of users, then all of them or a rollback, judged on the online reward.
    /// Env: `AISLE_CANARY`.
    pub canary: Option<String>,
    /// The candidate's version. Env: `AISLE_CANARY_VERSION`.
    pub canary_version: u32,
    /// The share of users the canary serves. Env: `AISLE_CANARY_SHARE`.
    pub canary_share: f64,
    /// Lists with a final reward each arm needs before the canary is judged.
    /// Env: `AISLE_CANARY_MIN_LISTS`.
    pub canary_min_lists: u64,
    /// Requests served in shadow mode before the canary starts. Env: `AISLE_CANARY_SHADOW_REQUESTS`.
    pub canary_shadow_requests: u64,
    /// How long a served list collects the clicks, carts and purchases that name it before
    /// its online reward counts. Env: `AISLE_REWARD_WINDOW_SECONDS`.
    pub reward_window_seconds: u64,
    /// ε one private analytics answer spends (per user; every caller but an admin gets
    /// private analytics). Env: `AISLE_PRIVACY_EPSILON`.
    pub privacy_epsilon: f64,
    /// ε that private answers may spend together per window. Env: `AISLE_PRIVACY_BUDGET`.
    pub privacy_budget: f64,
    /// The budget's window, in days. Env: `AISLE_PRIVACY_WINDOW_DAYS`.
    pub privacy_window_days: f64,
    /// Delete events older than this many days, checked hourly (and at start); none when
    /// unset. Env: `AISLE_RETENTION_DAYS`.
    pub retention_days: Option<f64>,
    /// After a forget, every model is retrained without the user within this many days (at
    /// most 30, GDPR's month); a failed retrain is retried until then, and past it the
    /// audit log says the forget is overdue. Env: `AISLE_FORGET_DEADLINE_DAYS`.
    pub forget_deadline_days: f64,
    /// Store users under HMAC-SHA256 pseudonyms of their ids keyed by this secret (at least
    /// 16 bytes); requests keep using the shop's ids. Env: `AISLE_PSEUDONYM_SECRET`.
    pub pseudonym_secret: Option<String>,
    /// NATS URL of the stream that keeps replicas over one database in step (needs
    /// `--database-url`); none for a single server. Env: `AISLE_STREAM_URL`.
    pub stream_url: Option<String>,
    /// The JetStream stream's name (created when missing). Env: `AISLE_STREAM_NAME`.
    pub stream_name: String,
    /// This replica's name, unique among the replicas; default the listen address and the
    /// process id. Env: `AISLE_REPLICA`.
    pub replica: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:7700".into(),
            model: "sknn".into(),
            keys: Vec::new(),
            public_reads: false,
            max_body_bytes: 1 << 20,
            rate_limit_per_second: 5_000.0,
            retrain_every_seconds: 0,
            demo_key: None,
            log_json: false,
            max_clock_skew_seconds: 300,
            max_tracked_queries: 10_000,
            max_live_sessions: 100_000,
            max_session_events: 200,
            write_queue: 1_024,
            max_rate_limited_callers: 100_000,
            fixed_clock_ms: None,
            exploration: "epsilon-greedy:0.05".into(),
            policy_version: 1,
            exploration_by_surface: None,
            canary: None,
            canary_version: 2,
            canary_share: 0.1,
            canary_min_lists: 2_000,
            canary_shadow_requests: 1_000,
            reward_window_seconds: 1_800,
            privacy_epsilon: 0.5,
            privacy_budget: 10.0,
            privacy_window_days: 30.0,
            retention_days: None,
            forget_deadline_days: 7.0,
            pseudonym_secret: None,
            stream_url: None,
            stream_name: "AISLE_EVENTS".into(),
            replica: None,
        }
    }
}

/// A setting that cannot be used, with where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct ConfigError {
    /// The file or variable.
    pub source_name: String,
    /// What is wrong.
    pub reason: String,
}

fn bad(source_name: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        source_name: source_name.into(),
        reason: reason.into(),
    }
}

/// Parses `KEY:ROLE,KEY:ROLE`.
pub fn parse_keys(text: &str, source_name: &str) -> Result<Vec<ApiKey>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (key, role) = pair
                .rsplit_once(':')
                .ok_or_else(|| bad(source_name, format!("{pair:?}: expected KEY:ROLE")))?;
            let role: Role = role.parse().map_err(|e: String| bad(source_name, e))?;
            if key.len() < 8 {
                return Err(bad(
                    source_name,
                    format!("key for role {role:?} is shorter than 8 characters"),
                ));
            }
            Ok(ApiKey {
                key: key.into(),
                role,
            })
        })
        .collect()
}

/// Every `AISLE_*` variable the server reads, with the setting it sets (every setting of
/// the config file has one).
pub const ENV_VARS: &[(&str, &str)] = &[
    ("AISLE_LISTEN", "listen"),
    ("AISLE_MODEL", "model"),
    ("AISLE_API_KEYS", "keys"),
    ("AISLE_PUBLIC_READS", "public_reads"),
    ("AISLE_MAX_BODY_BYTES", "max_body_bytes"),
    ("AISLE_RATE_LIMIT", "rate_limit_per_second"),
    ("AISLE_RETRAIN_SECONDS", "retrain_every_seconds"),
    ("AISLE_DEMO_KEY", "demo_key"),
    ("AISLE_LOG_JSON", "log_json"),
    ("AISLE_MAX_CLOCK_SKEW_SECONDS", "max_clock_skew_seconds"),
    ("AISLE_MAX_TRACKED_QUERIES", "max_tracked_queries"),
    ("AISLE_MAX_LIVE_SESSIONS", "max_live_sessions"),
    ("AISLE_MAX_SESSION_EVENTS", "max_session_events"),
    ("AISLE_WRITE_QUEUE", "write_queue"),
    ("AISLE_MAX_RATE_LIMITED_CALLERS", "max_rate_limited_callers"),
    ("AISLE_FIXED_CLOCK_MS", "fixed_clock_ms"),
    ("AISLE_EXPLORATION", "exploration"),
    ("AISLE_POLICY_VERSION", "policy_version"),
    ("AISLE_EXPLORATION_BY_SURFACE", "exploration_by_surface"),
    ("AISLE_CANARY", "canary"),
    ("AISLE_CANARY_VERSION", "canary_version"),
    ("AISLE_CANARY_SHARE", "canary_share"),
    ("AISLE_CANARY_MIN_LISTS", "canary_min_lists"),
    ("AISLE_CANARY_SHADOW_REQUESTS", "canary_shadow_requests"),
    ("AISLE_REWARD_WINDOW_SECONDS", "reward_window_seconds"),
    ("AISLE_PRIVACY_EPSILON", "privacy_epsilon"),
    ("AISLE_PRIVACY_BUDGET", "privacy_budget"),
    ("AISLE_PRIVACY_WINDOW_DAYS", "privacy_window_days"),
    ("AISLE_RETENTION_DAYS", "retention_days"),
    ("AISLE_FORGET_DEADLINE_DAYS", "forget_deadline_days"),
    ("AISLE_PSEUDONYM_SECRET", "pseudonym_secret"),
    ("AISLE_STREAM_URL", "stream_url"),
    ("AISLE_STREAM_NAME", "stream_name"),
    ("AISLE_REPLICA", "replica"),
];

/// The known name closest to `unknown`, if one is close enough to be a likely typo.
pub fn nearest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::normalized_damerau_levenshtein(unknown, k), k))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn file_error(path: &Path, error: &toml::de::Error) -> ConfigError {
    let mut reason = error.to_string();
    // serde names an unknown key as "unknown field `name`": add the likely intended one.
    if let Some(rest) = reason.split("unknown field `").nth(1)
        && let Some(name) = rest.split('`').next()
        && let Some(hint) = nearest(name, ENV_VARS.iter().map(|v| v.1))
    {
        reason.push_str(&format!("\n(did you mean `{hint}`?)"));
    }
    bad(path.display().to_string(), reason)
}

impl ServerConfig {
    /// Reads `file` (if given), then applies `AISLE_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad(path.display().to_string(), e.to_string()))?;
                toml::from_str(&text).map_err(|e| file_error(path, &e))?
            }
            None => ServerConfig::default(),
        };
        fn parsed<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
            value
                .parse()
                .map_err(|_| bad(name, format!("{value:?} is not a valid value")))
        }
        if let Some(v) = env("AISLE_LISTEN") {
            config.listen = v;
        }
        if let Some(v) = env("AISLE_MODEL") {
            config.model = v;
        }
        if let Some(v) = env("AISLE_API_KEYS") {
            config.keys = parse_keys(&v, "AISLE_API_KEYS")?;
        }
        if let Some(v) = env("AISLE_DEMO_KEY") {
            config.demo_key = Some(v);
        }
        if let Some(v) = env("AISLE_EXPLORATION") {
            config.exploration = v;
        }
        if let Some(v) = env("AISLE_EXPLORATION_BY_SURFACE") {
            config.exploration_by_surface = Some(v);
        }
        if let Some(v) = env("AISLE_CANARY") {
            config.canary = Some(v);
        }
        if let Some(v) = env("AISLE_PSEUDONYM_SECRET") {
            config.pseudonym_secret = Some(v);
        }
        if let Some(v) = env("AISLE_STREAM_URL") {
            config.stream_url = Some(v);
        }
        if let Some(v) = env("AISLE_STREAM_NAME") {
            config.stream_name = v;
        }
        if let Some(v) = env("AISLE_REPLICA") {
            config.replica = Some(v);
        }
        if let Some(v) = env("AISLE_RETENTION_DAYS") {
            config.retention_days = Some(parsed("AISLE_RETENTION_DAYS", &v)?);
        }
        if let Some(v) = env("AISLE_FIXED_CLOCK_MS") {
            config.fixed_clock_ms = Some(parsed("AISLE_FIXED_CLOCK_MS", &v)?);
        }
        // The settings parsed from their text (the rest are strings or lists, above).
        macro_rules! parse_env {
            ($($field:ident: $name:literal),* $(,)?) => {
                $(if let Some(v) = env($name) {
                    config.$field = parsed($name, &v)?;
                })*
            };
        }
        parse_env! {
            public_reads: "AISLE_PUBLIC_READS",
            max_body_bytes: "AISLE_MAX_BODY_BYTES",
            rate_limit_per_second: "AISLE_RATE_LIMIT",
            retrain_every_seconds: "AISLE_RETRAIN_SECONDS",
            log_json: "AISLE_LOG_JSON",
            max_clock_skew_seconds: "AISLE_MAX_CLOCK_SKEW_SECONDS",
            max_tracked_queries: "AISLE_MAX_TRACKED_QUERIES",
            max_live_sessions: "AISLE_MAX_LIVE_SESSIONS",
            max_session_events: "AISLE_MAX_SESSION_EVENTS",
            write_queue: "AISLE_WRITE_QUEUE",
            max_rate_limited_callers: "AISLE_MAX_RATE_LIMITED_CALLERS",
            policy_version: "AISLE_POLICY_VERSION",
            canary_version: "AISLE_CANARY_VERSION",
            canary_share: "AISLE_CANARY_SHARE",
            canary_min_lists: "AISLE_CANARY_MIN_LISTS",
            canary_shadow_requests: "AISLE_CANARY_SHADOW_REQUESTS",
            reward_window_seconds: "AISLE_REWARD_WINDOW_SECONDS",
            privacy_epsilon: "AISLE_PRIVACY_EPSILON",
            privacy_budget: "AISLE_PRIVACY_BUDGET",
            privacy_window_days: "AISLE_PRIVACY_WINDOW_DAYS",
            forget_deadline_days: "AISLE_FORGET_DEADLINE_DAYS",
        }
        for (name, value) in [
            ("max_tracked_queries", config.max_tracked_queries),
            ("max_live_sessions", config.max_live_sessions),
            ("max_session_events", config.max_session_events),
            ("write_queue", config.write_queue),
            ("max_rate_limited_callers", config.max_rate_limited_callers),
        ] {
            if value == 0 {
                return Err(bad(name, "must be at least 1"));
            }
        }
        if let Some(k) = &config.demo_key
            && k.len() < 8
        {
            return Err(bad("demo_key", "is shorter than 8 characters"));
        }
        if config.rate_limit_per_second.is_nan() || config.rate_limit_per_second <= 0.0 {
            return Err(bad("rate_limit_per_second", "must be positive"));
        }
        if config.max_body_bytes < 1024 {
            return Err(bad("max_body_bytes", "must be at least 1024"));
        }
        aisle_engine::Strategy::parse(&config.exploration, config.policy_version)
            .map_err(|e| bad("exploration", e))?;
        if let Some(days) = config.retention_days
            && !(days.is_finite() && days > 0.0)
        {
            return Err(bad("retention_days", "must be a positive number of days"));
        }
        if !(config.forget_deadline_days > 0.0 && config.forget_deadline_days <= 30.0) {
            return Err(bad(
                "forget_deadline_days",
                "must be more than 0 and at most 30 days",
            ));
        }
        if config.stream_name.is_empty()
            || !config
                .stream_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(
                "stream_name",
                "must be letters, digits, '_' or '-' (a JetStream stream name)",
            ));
        }
        if let Some(secret) = &config.pseudonym_secret {
            aisle_privacy::pseudonym::Pseudonymizer::new(secret.as_bytes())
                .map_err(|e| bad("pseudonym_secret", e.to_string()))?;
        }
        let privacy = config.privacy_config();
        privacy
            .budget
            .check()
            .map_err(|e| bad("privacy_budget", e.to_string()))?;
        privacy
            .analytics
            .check()
            .map_err(|e| bad("privacy_epsilon", e.to_string()))?;
        if config.privacy_epsilon > config.privacy_budget {
            return Err(bad(
                "privacy_epsilon",
                "is larger than privacy_budget: no private answer could ever be given",
            ));
        }
        config
            .surface_strategies()
            .map_err(|e| bad("exploration_by_surface", e))?;
        if let Some(canary) = &config.canary {
            aisle_engine::Strategy::parse(canary, config.canary_version)
                .map_err(|e| bad("canary", e))?;
        }
        if !(config.canary_share > 0.0 && config.canary_share < 1.0) {
            return Err(bad("canary_share", "must be between 0 and 1 (exclusive)"));
        }
        if config.canary_min_lists == 0 {
            return Err(bad("canary_min_lists", "must be at least 1"));
        }
        Ok(config)
    }
}

impl ServerConfig {
    /// The surfaces with a policy of their own, parsed from `exploration_by_surface`.
    pub fn surface_strategies(&self) -> Result<Vec<(String, aisle_engine::Strategy)>, String> {
        let Some(text) = &self.exploration_by_surface else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, aisle_engine::Strategy)> = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (surface, setting) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?}: expected SURFACE=SETTING"))?;
            let surface = surface.trim();
            if !aisle_engine::strategy::EXPLORING_SURFACES.contains(&surface) {
                return Err(format!(
                    "{surface:?} is not a surface a policy draws; use one of {}",
                    aisle_engine::strategy::EXPLORING_SURFACES.join(", ")
                ));
            }
            if out.iter().any(|(s, _)| s == surface) {
                return Err(format!("{surface:?} is named twice"));
            }
            out.push((
                surface.to_string(),
                aisle_engine::Strategy::parse(setting.trim(), self.policy_version)?,
            ));
        }
        Ok(out)
    }

    /// The engine's part of the settings.
    pub fn engine_config(
        &self,
        data_dir: Option<std::path::PathBuf>,
    ) -> aisle_engine::EngineConfig {
        aisle_engine::EngineConfig {
            model: self.model.clone(),
            data_dir,
            limits: aisle_engine::LiveLimits::new(
                self.max_tracked_queries,
                self.max_live_sessions,
                self.max_session_events,
            ),
            max_clock_skew_seconds: self.max_clock_skew_seconds,
            write_queue: self.write_queue,
            fixed_clock_ms: self.fixed_clock_ms,
            strategy: aisle_engine::Strategy::parse(&self.exploration, self.policy_version)
                .unwrap_or_default(),
            strategy_by_surface: self.surface_strategies().unwrap_or_default(),
            canary: self.canary.as_ref().and_then(|setting| {
                Some(aisle_engine::Canary {
                    candidate: aisle_engine::Strategy::parse(setting, self.canary_version).ok()?,
                    config: aisle_engine::RolloutConfig {
                        shadow_requests: self.canary_shadow_requests,
                        canary_share: self.canary_share,
                        min_impressions: self.canary_min_lists,
                        alpha: 0.05,
                    },
                    on_decision: None,
                })
            }),
            reward: aisle_engine::RewardRule {
                window_ms: i64::try_from(self.reward_window_seconds.saturating_mul(1000))
                    .unwrap_or(i64::MAX),
                ..aisle_engine::RewardRule::default()
            },
            privacy: self.privacy_config(),
            pseudonyms: self
                .pseudonym_secret
                .as_ref()
                .and_then(|s| aisle_privacy::pseudonym::Pseudonymizer::new(s.as_bytes()).ok()),
            // The stream is a connection: the front end that opens it sets this.
            replication: None,
            forget_deadline_ms: (self.forget_deadline_days * 86_400_000.0) as i64,
        }
    }

    /// The privacy part of the engine's settings.
    pub fn privacy_config(&self) -> aisle_engine::PrivacyConfig {
        aisle_engine::PrivacyConfig {
            budget: aisle_engine::privacy::Budget {
                epsilon: self.privacy_budget,
                window_days: self.privacy_window_days,
                ..aisle_engine::privacy::Budget::default()
            },
            analytics: aisle_engine::privacy::PrivateSettings {
                epsilon: self.privacy_epsilon,
                ..Default::default()
            },
        }
    }

    /// The configured keys, with the demo key (if any) under the `demo` role. A demo key
    /// also listed under `keys` keeps only the demo role: it is published in HTML.
    pub fn keys_with_demo(&self) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = self
            .keys
            .iter()
            .filter(|k| Some(&k.key) != self.demo_key.as_ref())
            .cloned()
            .collect();
        if let Some(demo) = &self.demo_key {
            keys.push(ApiKey {
                key: demo.clone(),
                role: Role::Demo,
            });
        }
        keys
    }
}

/// Where a data directory keeps the server's own files.
pub fn server_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_by_surface_are_parsed_and_checked() {
        let load = |v: &'static str| {
            ServerConfig::load(None, move |name| {
                (name == "AISLE_EXPLORATION_BY_SURFACE").then(|| v.to_string())
            })
        };
        let config = load("cart=deterministic, similar=plackett-luce:0.2:0.1").expect("valid");
        let parsed = config.surface_strategies().expect("parsed");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0, "cart");
        assert_eq!(parsed[1].1.policy.setting(), "plackett-luce:0.2:0.1");
        assert_eq!(config.engine_config(None).strategy_by_surface.len(), 2);
        for (bad, says) in [
            ("checkout=deterministic", "not a surface"),
            ("cart", "SURFACE=SETTING"),
            ("cart=deterministic,cart=deterministic", "twice"),
            ("cart=epsilon-greedy:2", "epsilon"),
        ] {
            let e = load(bad).expect_err(bad).to_string();
            assert!(
                e.contains("exploration_by_surface") && e.contains(says),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aisle.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nmodel = \"itemknn\"\n[[keys]]\nkey = \"admin-secret\"\nrole = \"admin\"\n",
        )
        .expect("write");
        let config = ServerConfig::load(Some(&path), |name| {
            (name == "AISLE_LISTEN").then(|| "127.0.0.1:9100".to_string())
        })
        .expect("load");
        assert_eq!(config.listen, "127.0.0.1:9100");
        assert_eq!(config.model, "itemknn");
        assert_eq!(config.keys[0].role, Role::Admin);

        std::fs::write(&path, "lisen = 1\n").expect("write");
        let err = ServerConfig::load(Some(&path), |_| None).expect_err("typo");
        assert!(err.to_string().contains("lisen"), "{err}");
        assert!(err.to_string().contains("did you mean `listen`"), "{err}");
        assert_eq!(
            nearest("AISLE_LISTN", ENV_VARS.iter().map(|v| v.0)),
            Some("AISLE_LISTEN")
        );
        assert_eq!(
            nearest("AISLE_COMPLETELY_OTHER", ENV_VARS.iter().map(|v| v.0)),
            None
        );
        let err = parse_keys("short:read", "AISLE_API_KEYS").expect_err("short");
        assert!(err.to_string().contains("shorter than 8"), "{err}");
        let err = parse_keys("longenough:writer", "AISLE_API_KEYS").expect_err("role");
        assert!(err.to_string().contains("writer"), "{err}");
    }
}
