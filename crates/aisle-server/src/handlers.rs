//! The endpoints.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use aisle_core::{EventKind, Item, RawEvent, User};
use aisle_models::explain::because_with;
use aisle_models::{Query, RecOptions, Recommender, Scored, recommend as top_n};
use aisle_search::{Filter, SearchMode, SearchRequest};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::api::{ApiError, Body, Caller, Params, RawBody};
use crate::auth::Role;
use crate::ingest::Change;

type Answer = Result<axum::Json<Value>, ApiError>;

/// Most events in one request.
const MAX_BATCH: usize = 10_000;
/// Most items a list may ask for.
const MAX_K: usize = 200;

fn ok(value: Value) -> Answer {
    Ok(axum::Json(value))
}

pub async fn health() -> Answer {
    ok(json!({"status": "ok"}))
}

pub async fn ready(State(app): State<Arc<App>>) -> Response {
    let served = app.served();
    (
        StatusCode::OK,
        axum::Json(
            json!({"ready": true, "model": served.model_name, "model_version": served.version}),
        ),
    )
        .into_response()
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

pub async fn openapi() -> Answer {
    ok(crate::api::openapi())
}

// ---------------------------------------------------------------- ingest

/// An event as clients send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    user: String,
    kind: String,
    #[serde(default)]
    item: Option<String>,
    /// Milliseconds since the epoch, or an RFC 3339 string; default: now.
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    quantity: Option<f32>,
    #[serde(default)]
    price: Option<f64>,
    #[serde(default)]
    value: Option<f32>,
}

/// One event or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A list of events.
    Many(Vec<EventIn>),
    /// A single event.
    One(Box<EventIn>),
}

const ID_LIMIT: usize = 256;

fn check_id(what: &str, id: &str, at: &str) -> Result<(), ApiError> {
    if id.trim().is_empty() {
        return Err(ApiError::bad_request(format!("{at}: {what} is empty")));
    }
    if id.len() > ID_LIMIT || id.starts_with('\0') {
        return Err(ApiError::bad_request(format!(
            "{at}: {what} must be at most {ID_LIMIT} bytes and not start with NUL"
        )));
    }
    Ok(())
}

/// What an event is checked against.
#[derive(Clone, Copy, Debug)]
pub struct EventRules<'a> {
    /// Kinds the store knows beyond the built-in ones.
    pub custom_kinds: &'a [String],
    /// The server's clock: the time of an event sent without one.
    pub now_ms: i64,
    /// The latest time an event may carry (now plus the allowed clock skew).
    pub latest_ms: i64,
    /// Only storefront kinds (the demo key).
    pub storefront_only: bool,
}

/// Turns a client event into a store event, or says what is wrong with it.
pub fn validate_event(e: EventIn, at: &str, rules: &EventRules<'_>) -> Result<RawEvent, ApiError> {
    let EventRules {
        custom_kinds,
        now_ms,
        latest_ms,
        storefront_only,
    } = *rules;
    check_id("user", &e.user, at)?;
    let builtin = EventKind::parse_builtin(&e.kind);
    if builtin.is_none() && !custom_kinds.contains(&e.kind) {
        return Err(ApiError::bad_request(format!(
            "{at}: unknown kind {:?}; kinds are search, view, click, add_to_cart, remove_from_cart, purchase, rating{}",
            e.kind,
            if custom_kinds.is_empty() {
                String::new()
            } else {
                format!(", {}", custom_kinds.join(", "))
            }
        )));
    }
    // The storefront sends every built-in kind but ratings, never a custom one.
    if storefront_only && builtin.is_none_or(|k| k == EventKind::Rating) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "{at}: the demo key may send only search, view, click, add_to_cart, remove_from_cart and purchase events, not {:?}",
                e.kind
            ),
            retry_after: None,
        });
    }
    if let Some(item) = &e.item {
        check_id("item", item, at)?;
    }
    let needs_item = matches!(
        builtin,
        Some(
            EventKind::View
                | EventKind::Click
                | EventKind::AddToCart
                | EventKind::RemoveFromCart
                | EventKind::Purchase
                | EventKind::Rating
        )
    );
    if needs_item && e.item.is_none() {
        return Err(ApiError::bad_request(format!(
            "{at}: a {} event needs an item",
            e.kind
        )));
    }
    let timestamp_ms = match &e.timestamp {
        None | Some(Value::Null) => now_ms,
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|t| (0..=4_102_444_800_000).contains(t))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{at}: timestamp {n} is not milliseconds between 1970 and 2100"
                ))
            })?,
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|err| {
                ApiError::bad_request(format!("{at}: timestamp {s:?} is not RFC 3339 ({err})"))
            })?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{at}: timestamp must be a number of milliseconds or an RFC 3339 string, not {other}"
            )));
        }
    };
    if timestamp_ms > latest_ms {
        let ahead_s = (timestamp_ms - now_ms) / 1000;
        return Err(ApiError::bad_request(format!(
            "{at}: timestamp is {ahead_s} s ahead of the server's clock; events may be at most {} s in the future (max_clock_skew_seconds)",
            (latest_ms - now_ms) / 1000
        )));
    }
    for (name, v) in [("quantity", e.quantity), ("value", e.value)] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(ApiError::bad_request(format!(
                "{at}: {name} is not a finite number"
            )));
        }
    }
    if e.price.is_some_and(|p| !p.is_finite() || p < 0.0) {
        return Err(ApiError::bad_request(format!(
            "{at}: price must be a finite number ≥ 0"
        )));
    }
    if let Some(s) = &e.session {
        check_id("session", s, at)?;
    }
    let mut raw = RawEvent::new(e.user, e.item, e.kind, timestamp_ms);
    raw.session = e.session;
    raw.payload.query = e.query;
    raw.payload.quantity = e.quantity;
    raw.payload.price = e.price;
    raw.payload.value = e.value;
    Ok(raw)
}

/// Parses an ingest body; public so the fuzz test can drive it.
pub fn parse_events(body: &[u8], rules: &EventRules<'_>) -> Result<Vec<RawEvent>, ApiError> {
    let parsed: OneOrMany = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body is not an event or a list of events: {e}"))
    })?;
    let list = match parsed {
        OneOrMany::One(e) => vec![*e],
        OneOrMany::Many(list) => list,
    };
    if list.is_empty() {
        return Err(ApiError::bad_request("the list of events is empty"));
    }
    if list.len() > MAX_BATCH {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "{} events in one request; send at most {MAX_BATCH}",
                list.len()
            ),
            retry_after: None,
        });
    }
    list.into_iter()
        .enumerate()
        .map(|(i, e)| validate_event(e, &format!("event {i}"), rules))
        .collect()
}

pub async fn ingest(
    State(app): State<Arc<App>>,
    caller: Option<axum::Extension<Caller>>,
    RawBody(body): RawBody,
) -> Answer {
    let custom = app.custom_kinds();
    let now = crate::now_ms();
    let skew_ms =
        i64::try_from(app.config.max_clock_skew_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let rules = EventRules {
        custom_kinds: &custom,
        now_ms: now,
        latest_ms: now.saturating_add(skew_ms),
        storefront_only: caller.is_some_and(|c| c.0.0 == Some(Role::Demo)),
    };
    let events = parse_events(&body, &rules)?;
    let n = events.len();
    app.writer
        .apply(Change::Events(events.clone()))
        .await
        .map_err(|e| ApiError::from_write("storing the events", e))?;
    app.metrics.events_ingested.inc_by(n as u64);
    app.absorb(&events);
    ok(json!({"accepted": n}))
}

// ---------------------------------------------------------------- catalogue and users

/// An item as clients send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category: Option<Value>,
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    price: Option<f64>,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
}

/// Parses an item list; public so the fuzz test can drive it.
pub fn parse_items(body: &[u8]) -> Result<Vec<Item>, ApiError> {
    let list: Vec<ItemIn> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not a list of items: {e}")))?;
    if list.len() > MAX_BATCH {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "{} items in one request; send at most {MAX_BATCH}",
                list.len()
            ),
            retry_after: None,
        });
    }
    list.into_iter()
        .enumerate()
        .map(|(i, it)| {
            let at = format!("item {i}");
            check_id("id", &it.id, &at)?;
            let category = match it.category {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(path)) => path
                    .split('>')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
                Some(Value::Array(parts)) => parts
                    .into_iter()
                    .map(|p| match p {
                        Value::String(s) => Ok(s),
                        other => Err(ApiError::bad_request(format!(
                            "{at}: category entries must be strings, not {other}"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "{at}: category must be a list of names or \"a > b\", not {other}"
                    )));
                }
            };
            if it.price.is_some_and(|p| !p.is_finite() || p < 0.0) {
                return Err(ApiError::bad_request(format!(
                    "{at}: price must be a finite number ≥ 0"
                )));
            }
            Ok(Item {
                external_id: it.id,
                title: it.title,
                description: it.description,
                category,
                brand: it.brand,
                price: it.price,
                attributes: it.attributes,
            })
        })
        .collect()
}

pub async fn upsert_items(State(app): State<Arc<App>>, RawBody(body): RawBody) -> Answer {
    let items = parse_items(&body)?;
    let n = items.len();
    app.writer
        .apply(Change::Items(items.clone()))
        .await
        .map_err(|e| ApiError::from_write("storing the items", e))?;
    app.absorb_items(items)
        .map_err(|e| ApiError::internal("indexing the items", e))?;
    ok(json!({"upserted": n}))
}

pub async fn delete_item(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let report = app
        .writer
        .apply(Change::DeleteItem(id.clone()))
        .await
        .map_err(|e| ApiError::from_write("deleting the item", e))?;
    if report.items_deleted == 0 {
        return Err(ApiError::not_found(format!(
            "no item {id:?} in the catalogue"
        )));
    }
    app.forget_item(&id)
        .map_err(|e| ApiError::internal("removing the item from search", e))?;
    ok(json!({"deleted": id}))
}

/// A user as clients send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    id: String,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
}

pub async fn upsert_users(State(app): State<Arc<App>>, Body(list): Body<Vec<UserIn>>) -> Answer {
    if list.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "{} users in one request; send at most {MAX_BATCH}",
            list.len()
        )));
    }
    let mut users = Vec::new();
    for (i, u) in list.into_iter().enumerate() {
        check_id("id", &u.id, &format!("user {i}"))?;
        users.push(User {
            external_id: u.id,
            attributes: u.attributes,
        });
    }
    let n = users.len();
    app.writer
        .apply(Change::Users(users))
        .await
        .map_err(|e| ApiError::from_write("storing the users", e))?;
    ok(json!({"upserted": n}))
}

pub async fn forget_user(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let dense = app.user_id(&id);
    let report = app
        .writer
        .apply(Change::ForgetUser(id.clone()))
        .await
        .map_err(|e| ApiError::from_write("forgetting the user", e))?;
    if report.users_forgotten == 0 {
        return Err(ApiError::not_found(format!("no user {id:?}")));
    }
    if let Some(user) = dense {
        app.forget_user_live(user);
    }
    ok(json!({"forgotten": id, "events_deleted": report.events_deleted}))
}

// ---------------------------------------------------------------- recommendations

fn default_k() -> usize {
    10
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct RecommendParams {
    user: String,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "yes")]
    exclude_bought: bool,
    #[serde(default)]
    category: Option<String>,
    #[serde(default = "yes")]
    explain: bool,
}

fn check_k(k: usize) -> Result<usize, ApiError> {
    if k == 0 || k > MAX_K {
        return Err(ApiError::bad_request(format!("k must be 1 to {MAX_K}")));
    }
    Ok(k)
}

pub async fn recommend(State(app): State<Arc<App>>, Params(p): Params<RecommendParams>) -> Answer {
    let k = check_k(p.k)?;
    let user = app
        .user_id(&p.user)
        .ok_or_else(|| ApiError::not_found(format!("unknown user {:?}", p.user)))?;
    let list = app.recommend_for_user(
        user,
        k,
        p.exclude_bought,
        p.category.as_deref(),
        None,
        p.explain,
    );
    ok(
        json!({"user": p.user, "model": app.served().model_name, "model_version": app.served().version, "items": list}),
    )
}

#[derive(Debug, Deserialize)]
pub struct KParam {
    #[serde(default = "default_k")]
    k: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionIn {
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    items: Vec<String>,
}

pub async fn recommend_session(
    State(app): State<Arc<App>>,
    Params(kp): Params<KParam>,
    Body(body): Body<SessionIn>,
) -> Answer {
    let k = check_k(kp.k)?;
    let mut history: Vec<u32> = Vec::new();
    if let Some(s) = &body.session {
        history.extend(app.session_items(s));
    }
    for external in &body.items {
        history.push(
            app.item_id(external)
                .ok_or_else(|| ApiError::not_found(format!("unknown item {external:?}")))?,
        );
    }
    if history.is_empty() {
        return Err(ApiError::bad_request(
            "give a session with events, or items: nothing to recommend from",
        ));
    }
    let list = app.recommend_from_items(&history, k, "you viewed");
    ok(json!({"session": body.session, "items": list}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartIn {
    items: Vec<String>,
}

pub async fn recommend_cart(
    State(app): State<Arc<App>>,
    Params(kp): Params<KParam>,
    Body(body): Body<CartIn>,
) -> Answer {
    let k = check_k(kp.k)?;
    if body.items.is_empty() {
        return Err(ApiError::bad_request("the cart is empty"));
    }
    let mut cart = Vec::new();
    for external in &body.items {
        cart.push(
            app.item_id(external)
                .ok_or_else(|| ApiError::not_found(format!("unknown item {external:?}")))?,
        );
    }
    let list = app.recommend_from_items(&cart, k, "goes with");
    ok(json!({"cart": body.items, "items": list}))
}

#[derive(Debug, Deserialize)]
pub struct UserK {
    user: String,
    #[serde(default = "default_k")]
    k: usize,
}

pub async fn cross_category(State(app): State<Arc<App>>, Params(p): Params<UserK>) -> Answer {
    let k = check_k(p.k)?;
    let user = app
        .user_id(&p.user)
        .ok_or_else(|| ApiError::not_found(format!("unknown user {:?}", p.user)))?;
    let used = app.categories_of(user);
    let list = app.recommend_for_user(user, k, true, None, Some(&used), true);
    ok(json!({"user": p.user, "categories_used": used, "items": list}))
}

#[derive(Debug, Deserialize)]
pub struct TrendingParams {
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    category: Option<String>,
}

pub async fn trending(State(app): State<Arc<App>>, Params(p): Params<TrendingParams>) -> Answer {
    let k = check_k(p.k)?;
    ok(json!({"items": app.trending(k, p.category.as_deref())}))
}

pub async fn item(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Params(kp): Params<KParam>,
) -> Answer {
    let k = check_k(kp.k.min(MAX_K))?;
    let dense = app
        .item_id(&id)
        .ok_or_else(|| ApiError::not_found(format!("unknown item {id:?}")))?;
    let item = app
        .item_json(dense)
        .ok_or_else(|| ApiError::not_found(format!("item {id:?} is not in the catalogue")))?;
    let similar = app.similar(dense, k);
    ok(json!({"item": item, "similar": similar}))
}

// ---------------------------------------------------------------- search

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default = "default_k")]
    limit: usize,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    mode: Option<String>,
}

pub async fn search(State(app): State<Arc<App>>, Params(p): Params<SearchParams>) -> Answer {
    if p.limit == 0 || p.limit > MAX_K || p.offset > 10_000 {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_K} and offset at most 10000"
        )));
    }
    if p.q.len() > 1000 {
        return Err(ApiError::bad_request("the query is longer than 1000 bytes"));
    }
    let filters: Vec<String> = p
        .filter
        .as_deref()
        .map(|f| {
            f.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let filter = Filter::parse_all(&filters).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mode = match p.mode.as_deref() {
        None => None,
        Some("lexical") => Some(SearchMode::Lexical),
        Some("semantic") => Some(SearchMode::Semantic),
        Some("hybrid") => Some(SearchMode::Hybrid),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mode {other:?}: choose lexical, semantic or hybrid"
            )));
        }
    };
    let user = match &p.user {
        Some(u) => Some(
            app.user_id(u)
                .ok_or_else(|| ApiError::not_found(format!("unknown user {u:?}")))?,
        ),
        None => None,
    };
    let request = SearchRequest {
        query: p.q.clone(),
        filter,
        limit: p.limit,
        offset: p.offset,
        mode,
        typing: true,
        personalise: true,
    };
    let app2 = app.clone();
    let result = tokio::task::spawn_blocking(move || app2.search(&request, user))
        .await
        .map_err(|e| ApiError::internal("search", e))??;
    ok(result)
}

// ---------------------------------------------------------------- predictions

#[derive(Debug, Deserialize)]
pub struct UserParam {
    user: String,
    #[serde(default = "default_k")]
    k: usize,
}

pub async fn predict_purchase(State(app): State<Arc<App>>, Params(p): Params<UserParam>) -> Answer {
    let k = check_k(p.k)?;
    let user = app
        .user_id(&p.user)
        .ok_or_else(|| ApiError::not_found(format!("unknown user {:?}", p.user)))?;
    let served = app.served();
    let preds = &served.predictions;
    let products: Vec<Value> = preds
        .products
        .get(&user)
        .map(|list| {
            list.iter()
                .take(k)
                .map(|p| json!({"item": app.item_json(p.subject), "probability": p.probability}))
                .collect()
        })
        .unwrap_or_default();
    let departments: Vec<Value> = preds
        .departments
        .get(&user)
        .map(|list| {
            list.iter()
                .take(k)
                .map(|p| json!({"department": preds.department_names.get(p.subject as usize), "probability": p.probability}))
                .collect()
        })
        .unwrap_or_default();
    let importance = |m: &Option<aisle_analytics::propensity::Propensity>| {
        m.as_ref()
            .map(|m| m.importance().into_iter().take(5).collect::<Vec<_>>())
    };
    ok(json!({
        "user": p.user,
        "model_version": served.version,
        "products": products,
        "departments": departments,
        "importance": {"products": importance(&preds.reorder), "departments": importance(&preds.groups)},
        "notes": if products.is_empty() { vec!["this user has fewer than two orders (as of the last training): too little history".to_string()] } else { preds.notes.clone() },
    }))
}

pub async fn predict_churn(State(app): State<Arc<App>>, Params(p): Params<UserParam>) -> Answer {
    let user = app
        .user_id(&p.user)
        .ok_or_else(|| ApiError::not_found(format!("unknown user {:?}", p.user)))?;
    let served = app.served();
    let preds = &served.predictions;
    let Some(fit) = &preds.bgnbd else {
        return Err(ApiError::unavailable(format!(
            "no churn model: {}",
            preds.notes.join("; ")
        )));
    };
    let (p_alive, expected) = preds.churn.get(&user).copied().ok_or_else(|| {
        ApiError::not_found(format!(
            "user {:?} had no purchase when the model was trained",
            p.user
        ))
    })?;
    ok(json!({
        "user": p.user,
        "model": "bgnbd",
        "p_alive": p_alive,
        "expected_purchases_4_weeks": expected,
        "parameters": {"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b},
    }))
}

#[derive(Debug, Deserialize)]
pub struct PromoParams {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    items: Option<String>,
    #[serde(default = "hundred")]
    k: usize,
    #[serde(default = "twenty")]
    top: usize,
}
fn hundred() -> usize {
    100
}
fn twenty() -> usize {
    20
}

pub async fn promo(State(app): State<Arc<App>>, Params(p): Params<PromoParams>) -> Answer {
    let promoted: Vec<u32> = match (&p.category, &p.items) {
        (Some(c), None) => app.items_in_category(c),
        (None, Some(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                app.item_id(s)
                    .ok_or_else(|| ApiError::not_found(format!("unknown item {s:?}")))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::bad_request(
                "give either category or items (comma-separated ids)",
            ));
        }
    };
    if promoted.is_empty() {
        return Err(ApiError::not_found("no item matches the promotion"));
    }
    let served = app.served();
    let (Some(model), Some(log)) = (&served.predictions.groups, &served.predictions.log) else {
        return Err(ApiError::unavailable(format!(
            "no purchase model: {}",
            served.predictions.notes.join("; ")
        )));
    };
    let (model, log) = (model.clone(), log.clone());
    let ranked = tokio::task::spawn_blocking(move || model.promotion_targets(&log, &promoted, 3))
        .await
        .map_err(|e| ApiError::internal("promotion targeting", e))?
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let expected = aisle_analytics::propensity::expected_buyers(&ranked, p.k);
    ok(json!({
        "users_scored": ranked.len(),
        "k": p.k,
        "expected_buyers_in_top_k": expected,
        "targets": ranked.iter().take(p.top.min(MAX_K)).map(|t| json!({
            "user": app.user_name(t.user),
            "probability": t.probability,
            "because": t.because,
        })).collect::<Vec<_>>(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct ExplainParams {
    user: String,
    item: String,
}

pub async fn explain(State(app): State<Arc<App>>, Params(p): Params<ExplainParams>) -> Answer {
    let user = app
        .user_id(&p.user)
        .ok_or_else(|| ApiError::not_found(format!("unknown user {:?}", p.user)))?;
    let item = app
        .item_id(&p.item)
        .ok_or_else(|| ApiError::not_found(format!("unknown item {:?}", p.item)))?;
    ok(app.explain(user, item))
}

pub async fn analytics(State(app): State<Arc<App>>) -> Answer {
    let served = app.served();
    ok(json!({"as_of_model_version": served.version, "analytics": served.analytics}))
}

pub async fn dashboard(State(app): State<Arc<App>>) -> Answer {
    ok(app.dashboard())
}

pub async fn shoppers(State(app): State<Arc<App>>) -> Answer {
    ok(json!({"users": app.sample_users()}))
}

pub async fn retrain(State(app): State<Arc<App>>) -> Response {
    if app.retraining.swap(true, Ordering::SeqCst) {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({"status": "a retrain is already running"})),
        )
            .into_response();
    }
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || app2.retrain_now());
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "retraining; GET /ready shows the model version"})),
    )
        .into_response()
}

// ---------------------------------------------------------------- shared with App

/// Top `k` for `query` from the served model; history items newer than the model are left
/// out of the query.
pub(crate) fn scored(
    model: &dyn Recommender,
    query: &Query<'_>,
    k: usize,
    options: &RecOptions<'_>,
) -> Vec<Scored> {
    let (user, history, kinds, times) = (query.user, query.history, query.kinds, query.times_ms);
    let n = model.n_items() as u32;
    // The model knows only the items it was trained on; newer ones cannot be scored yet.
    let keep: Vec<usize> = (0..history.len()).filter(|&i| history[i] < n).collect();
    let h: Vec<u32> = keep.iter().map(|&i| history[i]).collect();
    let kk: Vec<EventKind> = if kinds.len() == history.len() {
        keep.iter().map(|&i| kinds[i]).collect()
    } else {
        Vec::new()
    };
    let tt: Vec<i64> = if times.len() == history.len() {
        keep.iter().map(|&i| times[i]).collect()
    } else {
        Vec::new()
    };
    top_n(
        model,
        &Query {
            user,
            history: &h,
            kinds: &kk,
            times_ms: &tt,
        },
        k,
        options,
    )
}

/// Reasons for each recommended item, from the live log's item index.
pub(crate) fn reasons(
    live: &crate::state::Live,
    history: &[u32],
    items: &[u32],
) -> Vec<Vec<aisle_models::explain::Because>> {
    because_with(|item| live.users_of(item), history, items, 3)
}
