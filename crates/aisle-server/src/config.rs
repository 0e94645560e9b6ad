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
    /// An ingest key the demo storefront may use for its own events (shown to browsers:
    /// give it the ingest role only). Env: `AISLE_DEMO_KEY`.
    pub demo_key: Option<String>,
    /// Log as JSON lines (else human-readable). Env: `AISLE_LOG_JSON`.
    pub log_json: bool,
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
                toml::from_str(&text).map_err(|e| bad(path.display().to_string(), e.to_string()))?
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
        if let Some(v) = env("AISLE_PUBLIC_READS") {
            config.public_reads = parsed("AISLE_PUBLIC_READS", &v)?;
        }
        if let Some(v) = env("AISLE_MAX_BODY_BYTES") {
            config.max_body_bytes = parsed("AISLE_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = env("AISLE_RATE_LIMIT") {
            config.rate_limit_per_second = parsed("AISLE_RATE_LIMIT", &v)?;
        }
        if let Some(v) = env("AISLE_RETRAIN_SECONDS") {
            config.retrain_every_seconds = parsed("AISLE_RETRAIN_SECONDS", &v)?;
        }
        if let Some(v) = env("AISLE_DEMO_KEY") {
            config.demo_key = Some(v);
        }
        if let Some(v) = env("AISLE_LOG_JSON") {
            config.log_json = parsed("AISLE_LOG_JSON", &v)?;
        }
        if config.rate_limit_per_second.is_nan() || config.rate_limit_per_second <= 0.0 {
            return Err(bad("rate_limit_per_second", "must be positive"));
        }
        if config.max_body_bytes < 1024 {
            return Err(bad("max_body_bytes", "must be at least 1024"));
        }
        Ok(config)
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
        let err = parse_keys("short:read", "AISLE_API_KEYS").expect_err("short");
        assert!(err.to_string().contains("shorter than 8"), "{err}");
        let err = parse_keys("longenough:writer", "AISLE_API_KEYS").expect_err("role");
        assert!(err.to_string().contains("writer"), "{err}");
    }
}
