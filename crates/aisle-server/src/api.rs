//! The route table (one list drives the router, the key checks and /openapi.json), JSON
//! errors, request extractors with clear rejections, and the middleware for keys, rate
//! limits, metrics and logs.

use std::sync::Arc;
use std::time::Instant;

use aisle_engine::answers::{
    Accepted, Analytics, CartRecommendations, ChurnPrediction, CrossCategory, Dashboard, Deleted,
    Explanation, Forgotten, Health, ItemPage, PolicyEvaluation, PolicyStatus, Promotion,
    PurchasePrediction, Ready, RetrainStatus, SearchResults, SessionRecommendations, Shoppers,
    Trending, Upserted, UserRecommendations,
};
use aisle_engine::input::{EventIn, ItemIn, UserIn};
use aisle_engine::requests::{
    CartIn, EvaluateParams, ExplainParams, KParam, PromoIn, PromoParams, RecommendParams,
    SearchParams, SessionIn, TrendingParams, UserK, UserParam,
};
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
use utoipa::openapi::path::Parameter;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

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
}

impl From<aisle_engine::EngineError> for ApiError {
    /// The engine's refusals as status codes: a busy writer is a 503 with `Retry-After`.
    fn from(error: aisle_engine::EngineError) -> ApiError {
        use aisle_engine::ErrorKind;
        let (status, retry_after) = match error.kind {
            ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, None),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, None),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, None),
            ErrorKind::KeyReused => (StatusCode::UNPROCESSABLE_ENTITY, None),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
            ErrorKind::Busy => (StatusCode::SERVICE_UNAVAILABLE, Some(1)),
            ErrorKind::BudgetSpent => (StatusCode::TOO_MANY_REQUESTS, None),
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        ApiError {
            status,
            message: error.message,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(crate::openapi::ErrorBody {
                error: crate::openapi::ErrorDetail {
                    status: self.status.as_u16(),
                    message: self.message,
                },
            }),
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
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(&rejection)),
        };
        aisle_engine::input::objects_from_value(value, "what this route takes")
            .map(Body)
            .map_err(ApiError::from)
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

/// Schemas collected while the document is built: name and schema.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// What a route answers with.
#[derive(Clone, Copy)]
pub enum Reply {
    /// JSON of this schema.
    Json(fn(&mut Schemas) -> RefOr<Schema>),
    /// An HTML page.
    Html,
    /// Prometheus text.
    Metrics,
}

/// One route: how it is called, who may call it, what it takes and answers.
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
    /// Its query parameters, from the engine's request type.
    pub params: fn() -> Vec<Parameter>,
    /// Its JSON body's schema, from the engine's request type.
    pub body: Option<fn(&mut Schemas) -> RefOr<Schema>>,
    /// Its answer on success.
    pub reply: Reply,
    /// The success status (200, or 202 for work started in the background).
    pub ok: u16,
}

/// The parameters of a request type.
fn params_of<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query))
}

fn no_params() -> Vec<Parameter> {
    Vec::new()
}

/// Registers `T` (and what it refers to) and returns a reference to it.
pub fn schema_of<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    let name = T::name().to_string();
    schemas.push((name.clone(), T::schema()));
    T::schemas(schemas);
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
}

/// A list of at most `MAX_BATCH` of `T`.
fn list_of<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(schema_of::<T>(schemas))
        .max_items(Some(aisle_engine::input::MAX_BATCH))
        .into()
}

/// One event or a non-empty list (refined per request in [`crate::openapi`]).
fn events_body(schemas: &mut Schemas) -> RefOr<Schema> {
    let one = schema_of::<EventIn>(schemas);
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(one.clone())
        .item(
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(one)
                .min_items(Some(1))
                .max_items(Some(aisle_engine::input::MAX_BATCH)),
        )
        .into()
}

macro_rules! route {
    (@spec $front:expr, $m:literal, $p:literal, $r:expr, $s:literal, $params:expr, $body:expr, $reply:expr, $ok:literal) => {
        RouteSpec {
            method: $m,
            path: $p,
            role: $r,
            storefront: $front,
            summary: $s,
            params: $params,
            body: $body,
            reply: $reply,
            ok: $ok,
        }
    };
    (storefront $($rest:tt)*) => { route!(@spec true, $($rest)*) };
    ($m:literal, $($rest:tt)*) => { route!(@spec false, $m, $($rest)*) };
}

/// Every route the server answers.
pub const ROUTES: &[RouteSpec] = &[
    route!(
        "GET",
        "/health",
        None,
        "Liveness: the process answers",
        no_params,
        None,
        Reply::Json(schema_of::<Health>),
        200
    ),
    route!(
        "GET",
        "/ready",
        None,
        "Readiness: models are loaded and the store is open",
        no_params,
        None,
        Reply::Json(schema_of::<Ready>),
        200
    ),
    route!(
        "GET",
        "/metrics",
        None,
        "Prometheus metrics (text format)",
        no_params,
        None,
        Reply::Metrics,
        200
    ),
    route!(
        "GET",
        "/openapi.json",
        None,
        "This document (OpenAPI 3.1)",
        no_params,
        None,
        Reply::Json(any_object),
        200
    ),
    route!(
        "GET",
        "/",
        None,
        "The dashboard (HTML)",
        no_params,
        None,
        Reply::Html,
        200
    ),
    route!(
        "GET",
        "/shop",
        None,
        "The demo storefront (HTML)",
        no_params,
        None,
        Reply::Html,
        200
    ),
    route!(storefront "POST", "/v1/events", Some(Role::Ingest),
        "Ingest one event or a list; answered once durable. With an Idempotency-Key header, a repeat of the same request gets the same answer and writes nothing (also after a restart); the same key with another body is a 422",
        no_params, Some(events_body), Reply::Json(schema_of::<Accepted>), 200),
    route!(
        "PUT",
        "/v1/items",
        Some(Role::Admin),
        "Create or replace items",
        no_params,
        Some(list_of::<ItemIn>),
        Reply::Json(schema_of::<Upserted>),
        200
    ),
    route!(
        "DELETE",
        "/v1/items/{id}",
        Some(Role::Admin),
        "Remove an item from the catalogue (its past events stay)",
        no_params,
        None,
        Reply::Json(schema_of::<Deleted>),
        200
    ),
    route!(storefront "GET", "/v1/items/{id}", Some(Role::Read),
        "An item with the items similar to it",
        params_of::<KParam>, None, Reply::Json(schema_of::<ItemPage>), 200),
    route!(
        "PUT",
        "/v1/users",
        Some(Role::Admin),
        "Create or replace users",
        no_params,
        Some(list_of::<UserIn>),
        Reply::Json(schema_of::<Upserted>),
        200
    ),
    route!(
        "DELETE",
        "/v1/users/{id}",
        Some(Role::Admin),
        "Forget a user: their record and every event of theirs",
        no_params,
        None,
        Reply::Json(schema_of::<Forgotten>),
        200
    ),
    route!(storefront "GET", "/v1/recommend", Some(Role::Read),
        "Top items for a user, from their history as of now",
        params_of::<RecommendParams>, None, Reply::Json(schema_of::<UserRecommendations>), 200),
    route!(storefront "POST", "/v1/recommend/session", Some(Role::Read),
        "Top items for an anonymous session, by its id, its items or both",
        params_of::<KParam>, Some(schema_of::<SessionIn>),
        Reply::Json(schema_of::<SessionRecommendations>), 200),
    route!(storefront "POST", "/v1/recommend/cart", Some(Role::Read),
        "Items that go with a cart (complements)",
        params_of::<KParam>, Some(schema_of::<CartIn>),
        Reply::Json(schema_of::<CartRecommendations>), 200),
    route!(
        "GET",
        "/v1/recommend/cross-category",
        Some(Role::Read),
        "Top items for a user from categories they have not used",
        params_of::<UserK>,
        None,
        Reply::Json(schema_of::<CrossCategory>),
        200
    ),
    route!(storefront "GET", "/v1/trending", Some(Role::Read),
        "Items gaining interest now (time-decayed event counts)",
        params_of::<TrendingParams>, None, Reply::Json(schema_of::<Trending>), 200),
    route!(storefront "GET", "/v1/search", Some(Role::Read),
        "Search the catalogue, personalised for the user",
        params_of::<SearchParams>, None, Reply::Json(schema_of::<SearchResults>), 200),
    route!(
        "GET",
        "/v1/predict/purchase",
        Some(Role::Read),
        "What the user's next order will likely hold: products and departments",
        params_of::<UserK>,
        None,
        Reply::Json(schema_of::<PurchasePrediction>),
        200
    ),
    route!(
        "GET",
        "/v1/predict/churn",
        Some(Role::Read),
        "P(alive) and expected purchases in 4 weeks (BG/NBD)",
        params_of::<UserParam>,
        None,
        Reply::Json(schema_of::<ChurnPrediction>),
        200
    ),
    route!(
        "POST",
        "/v1/promo",
        Some(Role::Read),
        "Users a promotion (a category or a list of items) should reach, most likely buyers first",
        params_of::<PromoParams>,
        Some(schema_of::<PromoIn>),
        Reply::Json(schema_of::<Promotion>),
        200
    ),
    route!(
        "GET",
        "/v1/explain",
        Some(Role::Read),
        "Why an item is recommended to a user",
        params_of::<ExplainParams>,
        None,
        Reply::Json(schema_of::<Explanation>),
        200
    ),
    route!(
        "GET",
        "/v1/analytics",
        Some(Role::Read),
        "Funnel, cohorts, RFM segments, best sellers (as of the last training)",
        no_params,
        None,
        Reply::Json(schema_of::<Analytics>),
        200
    ),
    route!(
        "GET",
        "/v1/dashboard",
        Some(Role::Read),
        "Live stream, counts, models, leaderboard and search analytics",
        no_params,
        None,
        Reply::Json(schema_of::<Dashboard>),
        200
    ),
    route!(
        "GET",
        "/v1/policy",
        Some(Role::Read),
        "The serving policy (id, version, setting) and the impressions it has logged",
        no_params,
        None,
        Reply::Json(schema_of::<PolicyStatus>),
        200
    ),
    route!(
        "GET",
        "/v1/policy/evaluate",
        Some(Role::Admin),
        "Judge a candidate serving policy on the logged impressions: IPS and SNIPS with 95% intervals, the weights' diagnostics and the deployment gate's verdict (reads the whole store; one at a time)",
        params_of::<EvaluateParams>,
        None,
        Reply::Json(schema_of::<PolicyEvaluation>),
        200
    ),
    route!(storefront "GET", "/v1/shop/shoppers", Some(Role::Read),
        "A few shoppers with history, for the storefront's shopper picker",
        no_params, None, Reply::Json(schema_of::<Shoppers>), 200),
    route!(
        "POST",
        "/v1/admin/retrain",
        Some(Role::Admin),
        "Retrain in the background; the new models replace the old ones when ready",
        no_params,
        None,
        Reply::Json(schema_of::<RetrainStatus>),
        202
    ),
];

/// Any JSON object (the document itself).
fn any_object(_: &mut Schemas) -> RefOr<Schema> {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .into()
}

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
        ("POST", "/v1/promo") => post(h::promo),
        ("GET", "/v1/explain") => get(h::explain),
        ("GET", "/v1/analytics") => get(h::analytics),
        ("GET", "/v1/dashboard") => get(h::dashboard),
        ("GET", "/v1/policy") => get(h::policy),
        ("GET", "/v1/policy/evaluate") => get(h::evaluate_policy),
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
/// How long a read that carries an `Aisle-Token` waits for this replica to apply that write.
const TOKEN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A read with an `Aisle-Token` (from an ingest answer, possibly of another replica) waits
/// until this replica has applied that write, at most [`TOKEN_WAIT`]; false when it gave up
/// (the answer then carries `Aisle-Stale: true`).
async fn read_your_writes(
    app: &App,
    method: &axum::http::Method,
    headers: &axum::http::HeaderMap,
) -> Result<bool, ApiError> {
    let Some(token) = headers.get("aisle-token") else {
        return Ok(true);
    };
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return Ok(true);
    }
    let token = token
        .to_str()
        .map_err(|_| {
            ApiError::from(aisle_engine::EngineError::bad_request(
                "the Aisle-Token header is not text",
            ))
        })?
        .to_string();
    let deadline = Instant::now() + TOKEN_WAIT;
    loop {
        if app.engine.token_applied(&token).map_err(ApiError::from)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

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
        Ok(role) => match read_your_writes(&app, &method, req.headers()).await {
            Err(e) => e.into_response(),
            Ok(fresh) => {
                req.extensions_mut().insert(Caller(role));
                let mut response = next.run(req).await;
                if !fresh {
                    response
                        .headers_mut()
                        .insert("aisle-stale", axum::http::HeaderValue::from_static("true"));
                }
                response
            }
        },
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
    // Every call of an admin route, answered or refused, goes to the audit log before the
    // answer leaves. The append fsyncs, so it runs on the blocking pool, not on the async
    // workers that every other request needs.
    if spec.is_some_and(|s| s.role == Some(Role::Admin)) {
        let engine = app.engine.clone();
        let detail =
            serde_json::json!({ "method": method.as_str(), "route": route, "status": status });
        let appended =
            tokio::task::spawn_blocking(move || engine.audit("admin", "admin_call", detail)).await;
        if let Err(e) = appended {
            tracing::error!(error = %e, "the audit log could not be written");
        }
    }
    if status >= 500 {
        tracing::warn!(%method, %route, status, ms = seconds * 1e3, "request");
    } else {
        tracing::debug!(%method, %route, status, ms = seconds * 1e3, "request");
    }
    response
}
