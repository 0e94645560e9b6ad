//! `aisle serve`: the HTTP layer over an [`aisle_engine::Engine`].
//!
//! This crate holds routes, extractors, keys and roles, limits, metrics and the web pages;
//! the application (ingest, live state, model generations, every answer) is the engine's.
//!
//! * [`api::ROUTES`] lists every route once, with its request and answer types: the router,
//!   the key checks and `/openapi.json` ([`openapi`]) all come from it.
//! * Handlers ([`handlers`]) turn a request into an engine call and its typed answer into
//!   JSON; an [`aisle_engine::EngineError`] becomes a status code in [`api::ApiError`].

pub mod api;
pub mod auth;
pub mod config;
mod handlers;
pub mod metrics;
pub mod openapi;
mod web;

use std::path::PathBuf;
use std::sync::Arc;

use aisle_engine::{Engine, EngineError, WriterThread};
use aisle_search::SearchEngine;
use aisle_store::Store;

pub use aisle_engine::now_ms;
pub use config::ServerConfig;

use crate::auth::{Keys, RateLimiter};
use crate::metrics::Metrics;

/// Everything a request can reach.
pub struct App {
    /// Settings.
    pub config: ServerConfig,
    /// The application.
    pub engine: Arc<Engine>,
    keys: Keys,
    limiter: RateLimiter,
    /// Prometheus metrics.
    pub metrics: Metrics,
}

impl App {
    /// Starts the engine over `store` (loads the live state, trains the first generation,
    /// starts the writer) and wraps it in the HTTP layer's keys, limits and metrics.
    pub fn start(
        config: ServerConfig,
        data_dir: PathBuf,
        store: Arc<dyn Store>,
        search: Option<SearchEngine>,
    ) -> Result<(Arc<App>, WriterThread), EngineError> {
        let (engine, thread) = Engine::start(config.engine_config(Some(data_dir)), store, search)?;
        Ok((App::over(config, engine), thread))
    }

    /// The HTTP layer over a started engine.
    pub fn over(config: ServerConfig, engine: Arc<Engine>) -> Arc<App> {
        Arc::new(App {
            keys: Keys::new(config.keys_with_demo()),
            limiter: RateLimiter::with_capacity(
                config.rate_limit_per_second,
                config.max_rate_limited_callers,
            ),
            metrics: Metrics::new(engine.counters()),
            config,
            engine,
        })
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let every = app.config.retrain_every_seconds;
    if every > 0 {
        let engine = app.engine.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
            tick.tick().await;
            loop {
                tick.tick().await;
                if engine.claim_retrain() {
                    let engine = engine.clone();
                    let _ = tokio::task::spawn_blocking(move || engine.retrain_now()).await;
                }
            }
        });
    }
    if let Some(days) = app.config.retention_days {
        let engine = app.engine.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                match engine.apply_retention(days) {
                    Ok(pending) => match pending.answer().await {
                        Ok(n) if n > 0 => tracing::info!(deleted = n, days, "retention"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "retention failed"),
                    },
                    Err(e) => tracing::error!(error = %e, "retention failed"),
                }
            }
        });
    }
    let router = api::router(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves `app` on an already bound `listener` from a thread of its own, with `threads`
/// runtime workers, until the process ends (for tests and the load benchmark). Returns the
/// base URL.
pub fn serve_in_background(
    app: Arc<App>,
    listener: std::net::TcpListener,
    threads: usize,
) -> std::io::Result<String> {
    let base = format!("http://{}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    if let Err(e) = serve(app, listener, std::future::pending()).await {
                        tracing::error!(error = %e, "the server stopped");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot listen"),
            }
        });
    });
    Ok(base)
}
