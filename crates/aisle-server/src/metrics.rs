//! Prometheus metrics, served at /metrics in the text format.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request: its route pattern (not the raw path, so ids do not explode the
/// series), method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route as declared, e.g. `/v1/items/{id}`.
    pub route: String,
    /// HTTP method, from a fixed set so a client cannot mint new series.
    pub method: Method,
    /// Response status code.
    pub status: u16,
}

/// The methods metrics tell apart; anything else is `Other`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms, missing_docs)]
pub enum Method {
    GET,
    HEAD,
    POST,
    PUT,
    DELETE,
    PATCH,
    OPTIONS,
    Other,
}

impl Method {
    /// The label of `method`.
    pub fn of(method: &axum::http::Method) -> Method {
        match method.as_str() {
            "GET" => Method::GET,
            "HEAD" => Method::HEAD,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "DELETE" => Method::DELETE,
            "PATCH" => Method::PATCH,
            "OPTIONS" => Method::OPTIONS,
            _ => Method::Other,
        }
    }
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// Request latency per route.
    pub requests: Family<RequestLabels, Histogram>,
    /// Events acknowledged.
    pub events_ingested: Counter<u64, AtomicU64>,
    /// The generation of the models being served.
    pub model_version: Gauge<i64>,
    /// Seconds the last retrain took, in milliseconds.
    pub last_train_ms: Gauge<i64>,
    /// Retrains that failed.
    pub retrain_failures: Counter<u64, AtomicU64>,
    /// Writes refused because the writer's queue was full.
    pub writes_refused: Counter<u64, AtomicU64>,
    /// Search-log events dropped because the writer's queue was full.
    pub search_log_dropped: Counter<u64, AtomicU64>,
}

impl Metrics {
    /// A fresh registry.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("aisle");
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 0.1 ms to about 3 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by route, method and status",
            requests.clone(),
        );
        let events_ingested = Counter::default();
        registry.register(
            "events_ingested",
            "Events acknowledged (durable) since start",
            events_ingested.clone(),
        );
        let model_version = Gauge::default();
        registry.register(
            "model_version",
            "Generation of the models being served",
            model_version.clone(),
        );
        let last_train_ms = Gauge::default();
        registry.register(
            "last_train_milliseconds",
            "Time the last (re)training took",
            last_train_ms.clone(),
        );
        let retrain_failures = Counter::default();
        registry.register(
            "retrain_failures",
            "Retrains that failed (the old models stay)",
            retrain_failures.clone(),
        );
        let writes_refused = Counter::default();
        registry.register(
            "writes_refused",
            "Write requests answered 503 because the write queue was full",
            writes_refused.clone(),
        );
        let search_log_dropped = Counter::default();
        registry.register(
            "search_log_dropped",
            "Search-log events not stored because the write queue was full",
            search_log_dropped.clone(),
        );
        Metrics {
            registry,
            writes_refused,
            search_log_dropped,
            requests,
            events_ingested,
            model_version,
            last_train_ms,
            retrain_failures,
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
