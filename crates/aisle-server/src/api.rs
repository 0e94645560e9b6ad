//! The route table (one list drives the router, the key checks and /openapi.json), JSON
//! errors, request extractors with clear rejections, and the middleware for keys, rate
//! limits, metrics and logs.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State,
};
use axum::http::{HeaderMap, StatusCode, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::App;
use crate::auth::Role;
use crate::handlers as h;

/// An error answered as JSON: `{"error": {"status": 400, "message": "..."}}`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub message: String,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 500 whose details are logged, not sent.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "{context}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("{context} failed; the server log has the details"),
            retry_after: None,
        }
    }

    /// A 503 with `message`.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl ApiError {
    /// The answer to a write the writer did not apply: 503 with `Retry-After` when its queue
    /// is full or it is stopping, else a 500 whose details are logged.
    pub fn from_write(context: &str, error: crate::ingest::WriteError) -> ApiError {
        use crate::ingest::WriteError;
        match error {
            WriteError::Busy | WriteError::Stopped => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!("{context}: {error}"),
                retry_after: Some(1),
            },
            WriteError::Failed(detail) => ApiError::internal(context, detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({"error": {"status": self.status.as_u16(), "message": self.message}})),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// A JSON body whose rejections (malformed, wrong shape, too large) are JSON errors.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the server accepts (max_body_bytes)".to_string()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "send the body as JSON with Content-Type: application/json".to_string()
        }
        _ => rejection.body_text(),
    };
    ApiError {
        status,
        message,
        retry_after: None,
    }
}

/// The raw body, for handlers that parse it themselves; a body over the limit is a JSON 413.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) => {
                let status = rejection.status();
                Err(ApiError {
                    status,
                    message: if status == StatusCode::PAYLOAD_TOO_LARGE {
                        "the request body is larger than the server accepts (max_body_bytes)".into()
                    } else {
                        rejection.body_text()
                    },
                    retry_after: None,
                })
            }
        }
    }
}

/// Query parameters whose rejections are JSON errors.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

/// One route: how it is called, who may call it, what it does.
pub struct RouteSpec {
    /// GET, POST, PUT or DELETE.
    pub method: &'static str,
    /// Path, with `{name}` parameters.
    pub path: &'static str,
    /// The least role that may call it; `None` for public routes.
    pub role: Option<Role>,
    /// Whether the demo storefront's key (role `demo`) may call it too.
    pub storefront: bool,
    /// What it does.
    pub summary: &'static str,
    /// Query parameters, `name: description`.
    pub params: &'static [&'static str],
    /// Whether it takes a JSON body.
    pub body: Option<&'static str>,
}

macro_rules! route {
    ($m:literal, $p:literal, $r:expr, $s:literal, [$($q:literal),*], $b:expr) => {
        RouteSpec { method: $m, path: $p, role: $r, storefront: false, summary: $s, params: &[$($q),*], body: $b }
    };
    (storefront $m:literal, $p:literal, $r:expr, $s:literal, [$($q:literal),*], $b:expr) => {
        RouteSpec { method: $m, path: $p, role: $r, storefront: true, summary: $s, params: &[$($q),*], body: $b }
    };
}

/// Every route the server answers.
pub const ROUTES: &[RouteSpec] = &[
    route!(
        "GET",
        "/health",
        None,
        "Liveness: the process answers",
        [],
        None
    ),
    route!(
        "GET",
        "/ready",
        None,
        "Readiness: models are loaded and the store is open",
        [],
        None
    ),
    route!(
        "GET",
        "/metrics",
        None,
        "Prometheus metrics (text format)",
        [],
        None
    ),
    route!("GET", "/openapi.json", None, "This document", [], None),
    route!("GET", "/", None, "The dashboard (HTML)", [], None),
    route!("GET", "/shop", None, "The demo storefront (HTML)", [], None),
    route!(
        storefront "POST",
        "/v1/events",
        Some(Role::Ingest),
        "Ingest one event or an array of events; answered once durable",
        [],
        Some(
            "Event or [Event]: {user, kind, item?, timestamp? (ms or RFC 3339), session?, query?, quantity?, price?, value?}"
        )
    ),
    route!(
        "PUT",
        "/v1/items",
        Some(Role::Admin),
        "Create or replace items",
        [],
        Some(
            "[Item]: {id, title?, description?, category? (list or \"a > b\"), brand?, price?, attributes?}"
        )
    ),
    route!(
        "DELETE",
        "/v1/items/{id}",
        Some(Role::Admin),
        "Remove an item from the catalogue (its past events stay)",
        [],
        None
    ),
    route!(
        storefront "GET",
        "/v1/items/{id}",
        Some(Role::Read),
        "An item with the items similar to it",
        ["k: similar items (default 8)"],
        None
    ),
    route!(
        "PUT",
        "/v1/users",
        Some(Role::Admin),
        "Create or replace users",
        [],
        Some("[User]: {id, attributes?}")
    ),
    route!(
        "DELETE",
        "/v1/users/{id}",
        Some(Role::Admin),
        "Forget a user: their record and every event of theirs",
        [],
        None
    ),
    route!(
        storefront "GET",
        "/v1/recommend",
        Some(Role::Read),
        "Top items for a user, from their history as of now",
        [
            "user: external user id",
            "k: how many (default 10)",
            "exclude_bought: leave out what they bought (default true)",
            "category: only items with this category",
            "explain: add the reasons (default true)"
        ],
        None
    ),
    route!(
        storefront "POST",
        "/v1/recommend/session",
        Some(Role::Read),
        "Top items for an anonymous session, by its id or its items",
        ["k: how many (default 10)"],
        Some("{session?: id, items?: [item id]}")
    ),
    route!(
        storefront "POST",
        "/v1/recommend/cart",
        Some(Role::Read),
        "Items that go with a cart (complements)",
        ["k: how many (default 10)"],
        Some("{items: [item id]}")
    ),
    route!(
        "GET",
        "/v1/recommend/cross-category",
        Some(Role::Read),
        "Top items for a user from categories they have not used",
        ["user: external user id", "k: how many (default 10)"],
        None
    ),
    route!(
        storefront "GET",
        "/v1/trending",
        Some(Role::Read),
        "Items gaining interest now (time-decayed event counts)",
        ["k: how many (default 10)", "category: only this category"],
        None
    ),
    route!(
        storefront "GET",
        "/v1/search",
        Some(Role::Read),
        "Search the catalogue, personalised for the user",
        [
            "q: the query",
            "user: external user id",
            "filter: filters separated by ';' (category=A/B, brand=X|Y, price<N)",
            "limit: results (default 10)",
            "offset: skip (default 0)",
            "mode: lexical, semantic or hybrid"
        ],
        None
    ),
    route!(
        "GET",
        "/v1/predict/purchase",
        Some(Role::Read),
        "What the user's next order will likely hold: products and departments",
        ["user: external user id", "k: how many (default 10)"],
        None
    ),
    route!(
        "GET",
        "/v1/predict/churn",
        Some(Role::Read),
        "P(alive) and expected purchases in 4 weeks (BG/NBD)",
        ["user: external user id"],
        None
    ),
    route!(
        "GET",
        "/v1/promo",
        Some(Role::Read),
        "Users a promotion should reach, most likely buyers first",
        [
            "category: promote this category",
            "items: promote these item ids (comma-separated)",
            "k: expected buyers among the first k (default 100)",
            "top: users listed (default 20)"
        ],
        None
    ),
    route!(
        "GET",
        "/v1/explain",
        Some(Role::Read),
        "Why an item is recommended to a user",
        ["user: external user id", "item: external item id"],
        None
    ),
    route!(
        "GET",
        "/v1/analytics",
        Some(Role::Read),
        "Funnel, cohorts, RFM segments, best sellers (as of the last training)",
        [],
        None
    ),
    route!(
        "GET",
        "/v1/dashboard",
        Some(Role::Read),
        "Live stream, counts, models, leaderboard and search analytics",
        [],
        None
    ),
    route!(
        storefront "GET",
        "/v1/shop/shoppers",
        Some(Role::Read),
        "A few shoppers with history, for the storefront's shopper picker",
        [],
        None
    ),
    route!(
        "POST",
        "/v1/admin/retrain",
        Some(Role::Admin),
        "Retrain in the background; the new models replace the old ones when ready",
        [],
        None
    ),
];

fn handler_for(spec: &RouteSpec) -> MethodRouter<Arc<App>> {
    match (spec.method, spec.path) {
        ("GET", "/health") => get(h::health),
        ("GET", "/ready") => get(h::ready),
        ("GET", "/metrics") => get(h::metrics),
        ("GET", "/openapi.json") => get(h::openapi),
        ("GET", "/") => get(crate::web::dashboard),
        ("GET", "/shop") => get(crate::web::shop),
        ("POST", "/v1/events") => post(h::ingest),
        ("PUT", "/v1/items") => put(h::upsert_items),
        ("DELETE", "/v1/items/{id}") => delete(h::delete_item),
        ("GET", "/v1/items/{id}") => get(h::item),
        ("PUT", "/v1/users") => put(h::upsert_users),
        ("DELETE", "/v1/users/{id}") => delete(h::forget_user),
        ("GET", "/v1/recommend") => get(h::recommend),
        ("POST", "/v1/recommend/session") => post(h::recommend_session),
        ("POST", "/v1/recommend/cart") => post(h::recommend_cart),
        ("GET", "/v1/recommend/cross-category") => get(h::cross_category),
        ("GET", "/v1/trending") => get(h::trending),
        ("GET", "/v1/search") => get(h::search),
        ("GET", "/v1/predict/purchase") => get(h::predict_purchase),
        ("GET", "/v1/predict/churn") => get(h::predict_churn),
        ("GET", "/v1/promo") => get(h::promo),
        ("GET", "/v1/explain") => get(h::explain),
        ("GET", "/v1/analytics") => get(h::analytics),
        ("GET", "/v1/dashboard") => get(h::dashboard),
        ("GET", "/v1/shop/shoppers") => get(h::shoppers),
        ("POST", "/v1/admin/retrain") => post(h::retrain),
        (method, path) => unreachable!("route {method} {path} is listed but has no handler"),
    }
}

/// The router over every route of [`ROUTES`].
pub fn router(app: Arc<App>) -> Router {
    let mut router: Router<Arc<App>> = Router::new();
    // Paths with several methods are registered once, their method routers merged.
    let mut seen = std::collections::HashSet::new();
    for path in ROUTES.iter().map(|r| r.path) {
        if !seen.insert(path) {
            continue;
        }
        let mut methods: Option<MethodRouter<Arc<App>>> = None;
        for spec in ROUTES.iter().filter(|r| r.path == path) {
            let next = handler_for(spec);
            methods = Some(match methods {
                None => next,
                Some(m) => m.merge(next),
            });
        }
        if let Some(m) = methods {
            router = router.route(path, m);
        }
    }
    let limit = app.config.max_body_bytes;
    router
        .fallback(|| async { ApiError::not_found("no such route; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "this route does not take that method; see /openapi.json".into(),
                retry_after: None,
            }
        })
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The role a request was admitted with, for handlers that narrow what a role may do
/// (the demo key may only post storefront kinds of event).
#[derive(Clone, Copy, Debug)]
pub struct Caller(pub Option<Role>);

/// The spec that governs `method` on the route `path`: the exact one, or for HEAD the GET
/// route's (the router answers HEAD with the GET handler, so it must be guarded as GET).
pub fn spec_for(method: &str, path: &str) -> Option<&'static RouteSpec> {
    let exact = ROUTES.iter().find(|r| r.path == path && r.method == method);
    exact.or_else(|| {
        (method == "HEAD")
            .then(|| ROUTES.iter().find(|r| r.path == path && r.method == "GET"))
            .flatten()
    })
}

/// Whether `path` is a declared route (under any method).
fn declared(path: &str) -> bool {
    ROUTES.iter().any(|r| r.path == path)
}

/// Who may call `spec`, given the presented key: `Ok(role)` or the refusal.
fn admit(
    app: &App,
    spec: &RouteSpec,
    method: &str,
    key: Option<&str>,
) -> Result<Option<Role>, ApiError> {
    let role = key.and_then(|k| app.keys.role(k));
    let Some(needed) = spec.role else {
        return Ok(role);
    };
    let refuse = |status: StatusCode, message: String| ApiError {
        status,
        message,
        retry_after: None,
    };
    let route = spec.path;
    match (key, role) {
        (Some(_), None) => Err(refuse(StatusCode::UNAUTHORIZED, "unknown API key".into())),
        (_, Some(r)) if r.may_call(needed, spec.storefront) => Ok(Some(r)),
        (_, Some(r)) => Err(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "this key has the {} role; {method} {route} needs {}",
                r.name(),
                needed.name()
            ),
        )),
        // Public reads open the routes of the read role (none of them changes the shop's
        // data), never an ingest or admin route.
        (None, _) if needed == Role::Read && app.config.public_reads => Ok(None),
        (None, _) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            format!(
                "{method} {route} needs an API key with the {} role: send Authorization: Bearer KEY",
                needed.name()
            ),
        )),
    }
}

/// Checks the key and the rate limit, then times and logs the request. A request is served
/// only when the route table has a spec for its route and method: a declared route called
/// with another method is a 405 here, before any handler runs.
async fn guard(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let spec = spec_for(method.as_str(), &route);
    let caller_addr = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let key = presented_key(req.headers()).map(str::to_string);
    let decision: Result<Option<Role>, ApiError> = match spec {
        Some(spec) => admit(&app, spec, method.as_str(), key.as_deref()),
        None if declared(&route) => {
            let allowed: Vec<&str> = ROUTES
                .iter()
                .filter(|r| r.path == route)
                .flat_map(|r| {
                    if r.method == "GET" {
                        vec!["GET", "HEAD"]
                    } else {
                        vec![r.method]
                    }
                })
                .collect();
            Err(ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: format!(
                    "{route} does not take {method}; it takes {}",
                    allowed.join(", ")
                ),
                retry_after: None,
            })
        }
        // Not a route at all: the router's fallback answers 404.
        None => Ok(None),
    };
    // The demo key is shared by every browser: limit it per address, not as one caller.
    let caller = match (&decision, &key) {
        (Ok(Some(Role::Demo)), _) | (_, None) => format!("addr:{caller_addr}"),
        (_, Some(k)) => format!("key:{k}"),
    };
    // A body announced as too large is refused before a byte of it is read.
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let decision = decision.and_then(|role| match announced {
        Some(n) if n > app.config.max_body_bytes => Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the request body ({n} bytes) is larger than the server accepts (max_body_bytes = {})",
                app.config.max_body_bytes
            ),
            retry_after: None,
        }),
        _ => Ok(role),
    });
    let response = match decision {
        Err(e) => e.into_response(),
        Ok(_) if spec.is_some_and(|s| s.role.is_some()) && !app.limiter.allow(&caller) => {
            ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "rate limit exceeded; slow down".into(),
                retry_after: Some(1),
            }
            .into_response()
        }
        Ok(role) => {
            req.extensions_mut().insert(Caller(role));
            next.run(req).await
        }
    };
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    // The route label is a declared pattern or "unmatched", never the raw path, so clients
    // cannot mint series.
    app.metrics
        .requests
        .get_or_create(&crate::metrics::RequestLabels {
            route: route.clone(),
            method: crate::metrics::Method::of(&method),
            status,
        })
        .observe(seconds);
    if status >= 500 {
        tracing::warn!(%method, %route, status, ms = seconds * 1e3, "request");
    } else {
        tracing::debug!(%method, %route, status, ms = seconds * 1e3, "request");
    }
    response
}

/// The OpenAPI 3 document of [`ROUTES`].
pub fn openapi() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for spec in ROUTES {
        let entry = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        let mut parameters: Vec<serde_json::Value> = spec
            .params
            .iter()
            .map(|p| {
                let (name, description) = p.split_once(": ").unwrap_or((p, ""));
                json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
            })
            .collect();
        let mut rest = spec.path;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            parameters.push(json!({"name": &rest[open + 1..close], "in": "path", "required": true, "schema": {"type": "string"}}));
            rest = &rest[close..];
        }
        let mut operation = json!({
            "summary": spec.summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK (JSON unless the route serves HTML or metrics)"},
                "4XX": {"description": "A JSON error: {\"error\": {\"status\", \"message\"}}"},
            },
        });
        if let Some(body) = spec.body {
            operation["requestBody"] = json!({
                "required": true,
                "description": body,
                "content": {"application/json": {"schema": {"type": "object"}}},
            });
        }
        if let Some(role) = spec.role {
            operation["security"] = json!([{"apiKey": []}]);
            operation["x-aisle-role"] = json!(role.name());
            if spec.storefront {
                operation["x-aisle-storefront"] = json!(true);
            }
        }
        entry[spec.method.to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "aisle", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Search, recommendations and behaviour analytics for an online shop."},
        "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}
