//! What the HTTP tests share: a server on the bundled sample on a loopback port, the keys it
//! knows, and a client that reports status and JSON body for any method.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aisle_import::{Adapter, ImportOptions, Source};
use aisle_search::{EngineConfig, SearchEngine, TextIndex, load_catalogue};
use aisle_server::auth::{ApiKey, Role};
use aisle_server::{App, ServerConfig};
use serde_json::Value;

pub const ADMIN: &str = "admin-key-123";
pub const INGEST: &str = "ingest-key-123";
pub const READ: &str = "read-key-1234";
pub const DEMO: &str = "demo-key-1234";

pub struct Server {
    pub base: String,
    pub app: Arc<App>,
    _dir: tempfile::TempDir,
}

pub fn start(config: ServerConfig, with_search: bool) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn aisle_store::Store> =
        Arc::from(aisle_store::open(&dir.path().to_string_lossy()).expect("store"));
    aisle_import::import(
        store.as_ref(),
        &Source::Adapter(Adapter::Instacart),
        &[aisle_testkit::bundled_sample()],
        &ImportOptions::default(),
    )
    .expect("import the sample");
    let engine = with_search.then(|| {
        let text = TextIndex::open_or_create(&dir.path().join("search")).expect("index");
        let mut engine = SearchEngine::new(text, EngineConfig::default());
        engine
            .sync_catalogue(load_catalogue(store.as_ref()).expect("catalogue"), &|_| {})
            .expect("sync");
        engine
    });
    let (app, _writer) =
        App::start(config, dir.path().to_path_buf(), store, engine).expect("start the app");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = aisle_server::serve_in_background(app.clone(), listener, 2).expect("serve");
    Server {
        base,
        app,
        _dir: dir,
    }
}

pub fn config() -> ServerConfig {
    ServerConfig {
        keys: vec![
            ApiKey {
                key: ADMIN.into(),
                role: Role::Admin,
            },
            ApiKey {
                key: INGEST.into(),
                role: Role::Ingest,
            },
            ApiKey {
                key: READ.into(),
                role: Role::Read,
            },
        ],
        demo_key: Some(DEMO.into()),
        ..ServerConfig::default()
    }
}

/// One server for the tests that share it (each uses its own users).
pub fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| start(config(), true))
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// (status, JSON body) of a request.
pub fn call(method: &str, url: &str, key: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let agent = agent();
    let auth = key.map(|k| format!("Bearer {k}"));
    let response = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = agent.delete(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        ("POST" | "PUT", b) => {
            let mut r = if method == "PUT" {
                agent.put(url)
            } else {
                agent.post(url)
            };
            r = r.header("Content-Type", "application/json");
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send(b.unwrap_or("{}"))
        }
        (other, b) => {
            let mut r = ureq::http::Request::builder()
                .method(other)
                .uri(url)
                .header("Content-Type", "application/json");
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            agent.run(r.body(b.unwrap_or("").to_string()).expect("a request"))
        }
    };
    let mut response = response.expect("request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}
