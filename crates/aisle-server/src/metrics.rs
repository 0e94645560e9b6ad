//! Prometheus metrics, served at /metrics in the text format.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::family::Family;
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

/// Every metric the server exports: request latencies kept here, and the engine's counters
/// (which share their atomics with the engine).
pub struct Metrics {
    registry: Registry,
    /// Request latency per route.
    pub requests: Family<RequestLabels, Histogram>,
}

impl Metrics {
    /// A registry over the engine's `counters` and the request histogram.
    pub fn new(counters: &aisle_engine::Counters) -> Metrics {
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
        registry.register(
            "events_ingested",
            "Events acknowledged (durable) since start",
            counters.events_ingested.clone(),
        );
        registry.register(
            "model_version",
            "Generation of the models being served",
            counters.model_version.clone(),
        );
        registry.register(
            "last_train_milliseconds",
            "Time the last (re)training took",
            counters.last_train_ms.clone(),
        );
        registry.register(
            "retrain_failures",
            "Retrains that failed (the old models stay)",
            counters.retrain_failures.clone(),
        );
        registry.register(
            "writes_refused",
            "Write requests answered 503 because the write queue was full",
            counters.writes_refused.clone(),
        );
        registry.register(
            "search_log_dropped",
            "Search-log events not stored because the write queue was full",
            counters.search_log_dropped.clone(),
        );
        registry.register(
            "impressions_served",
            "Lists served and logged as impressions",
            counters.impressions_served.clone(),
        );
        registry.register(
            "impressions_dropped",
            "Impressions not logged because the buffer waiting for the writer was full",
            counters.impressions_dropped.clone(),
        );
        registry.register(
            "events_replicated",
            "Events other replicas committed, added to the live state from the stream",
            counters.events_replicated.clone(),
        );
        Metrics { registry, requests }
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
