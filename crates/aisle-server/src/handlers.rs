//! The endpoints: each turns a request into one engine call and its typed answer into JSON.

use std::sync::Arc;

use aisle_engine::answers::{
    Accepted, Analytics, CartRecommendations, ChurnPrediction, CrossCategory, Dashboard, Deleted,
    Explanation, Forgotten, Health, ItemPage, PolicyEvaluation, PolicyStatus, Promotion,
    PurchasePrediction, Ready, RetrainStatus, SearchResults, SessionRecommendations, Shoppers,
    Trending, Upserted, UserRecommendations,
};
use aisle_engine::input::UserIn;
use aisle_engine::requests::{
    CartIn, EvaluateParams, ExplainParams, KParam, PromoIn, PromoParams, RecommendParams,
    SearchParams, SessionIn, TrendingParams, UserK, UserParam,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::App;
use crate::api::{ApiError, Body, Caller, Params, RawBody};
use crate::auth::Role;

type Answer<T> = Result<Json<T>, ApiError>;

/// Runs a blocking engine call (search, promotions: CPU work) off the async workers.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    work: impl FnOnce(&aisle_engine::Engine) -> aisle_engine::Result<T> + Send + 'static,
) -> Answer<T> {
    let engine = app.engine.clone();
    tokio::task::spawn_blocking(move || work(&engine))
        .await
        .map_err(|e| ApiError::internal("the request", e))?
        .map(Json)
        .map_err(ApiError::from)
}

pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

pub async fn ready(State(app): State<Arc<App>>) -> Json<Ready> {
    Json(app.engine.ready())
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

pub async fn openapi(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&app.engine))
}

/// The request's `Idempotency-Key`, if it sent one readable as text.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.to_string())).map_err(|_| {
            ApiError::bad_request("the Idempotency-Key header must be visible ASCII text")
        }),
    }
}

pub async fn ingest(
    State(app): State<Arc<App>>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Answer<Accepted> {
    let storefront_only = caller.is_some_and(|c| c.0.0 == Some(Role::Demo));
    let key = idempotency_key(&headers)?;
    let pending = app.engine.ingest(&body, storefront_only, key.as_deref())?;
    Ok(Json(pending.answer().await?))
}

pub async fn upsert_items(State(app): State<Arc<App>>, RawBody(body): RawBody) -> Answer<Upserted> {
    Ok(Json(app.engine.upsert_items(&body)?.answer().await?))
}

pub async fn delete_item(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer<Deleted> {
    Ok(Json(app.engine.delete_item(&id)?.answer().await?))
}

pub async fn upsert_users(
    State(app): State<Arc<App>>,
    Body(list): Body<Vec<UserIn>>,
) -> Answer<Upserted> {
    Ok(Json(app.engine.upsert_users(list)?.answer().await?))
}

/// Forgets the user in the store and the live state at once, then retrains in the
/// background so that no model keeps them.
pub async fn forget_user(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer<Forgotten> {
    let version = app.engine.generation().version;
    let answer = app.engine.forget_user(&id)?.answer().await?;
    app.engine.forget_reaches_models(version);
    Ok(Json(answer))
}

pub async fn recommend(
    State(app): State<Arc<App>>,
    Params(p): Params<RecommendParams>,
) -> Answer<UserRecommendations> {
    Ok(Json(app.engine.recommend(&p)?))
}

pub async fn recommend_session(
    State(app): State<Arc<App>>,
    Params(k): Params<KParam>,
    Body(body): Body<SessionIn>,
) -> Answer<SessionRecommendations> {
    Ok(Json(app.engine.recommend_session(&k, &body)?))
}

pub async fn recommend_cart(
    State(app): State<Arc<App>>,
    Params(k): Params<KParam>,
    Body(body): Body<CartIn>,
) -> Answer<CartRecommendations> {
    Ok(Json(app.engine.recommend_cart(&k, &body)?))
}

pub async fn cross_category(
    State(app): State<Arc<App>>,
    Params(p): Params<UserK>,
) -> Answer<CrossCategory> {
    Ok(Json(app.engine.cross_category(&p)?))
}

pub async fn trending(
    State(app): State<Arc<App>>,
    Params(p): Params<TrendingParams>,
) -> Answer<Trending> {
    Ok(Json(app.engine.trending(&p)?))
}

pub async fn item(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Params(k): Params<KParam>,
) -> Answer<ItemPage> {
    Ok(Json(app.engine.item_page(&id, &k)?))
}

pub async fn search(
    State(app): State<Arc<App>>,
    Params(p): Params<SearchParams>,
) -> Answer<SearchResults> {
    blocking(&app, move |engine| engine.search(&p)).await
}

pub async fn predict_purchase(
    State(app): State<Arc<App>>,
    Params(p): Params<UserK>,
) -> Answer<PurchasePrediction> {
    Ok(Json(app.engine.predict_purchase(&p)?))
}

pub async fn predict_churn(
    State(app): State<Arc<App>>,
    Params(p): Params<UserParam>,
) -> Answer<ChurnPrediction> {
    Ok(Json(app.engine.predict_churn(&p)?))
}

pub async fn promo(
    State(app): State<Arc<App>>,
    Params(p): Params<PromoParams>,
    Body(body): Body<PromoIn>,
) -> Answer<Promotion> {
    blocking(&app, move |engine| engine.promote(&body, &p)).await
}

pub async fn explain(
    State(app): State<Arc<App>>,
    Params(p): Params<ExplainParams>,
) -> Answer<Explanation> {
    Ok(Json(app.engine.explain(&p)?))
}

/// Whether the caller gets exact figures (an admin key), and its name in the audit log.
fn exact_and_actor(caller: Option<axum::Extension<Caller>>) -> (bool, &'static str) {
    let role = caller.and_then(|c| c.0.0);
    (role == Some(Role::Admin), role.map_or("public", Role::name))
}

/// Exact figures for admin keys; every other caller gets them with differential privacy.
pub async fn analytics(
    State(app): State<Arc<App>>,
    caller: Option<axum::Extension<Caller>>,
) -> Answer<Analytics> {
    let (exact, actor) = exact_and_actor(caller);
    Ok(Json(app.engine.analytics(exact, actor)?))
}

pub async fn dashboard(
    State(app): State<Arc<App>>,
    caller: Option<axum::Extension<Caller>>,
) -> Json<Dashboard> {
    let (exact, actor) = exact_and_actor(caller);
    let mut answer = app.engine.dashboard(exact, actor);
    answer.memory.rate_limited_callers = app.limiter.tracked();
    Json(answer)
}

pub async fn policy(State(app): State<Arc<App>>) -> Json<PolicyStatus> {
    Json(app.engine.policy_status())
}

pub async fn evaluate_policy(
    State(app): State<Arc<App>>,
    Params(p): Params<EvaluateParams>,
) -> Answer<PolicyEvaluation> {
    blocking(&app, move |engine| engine.evaluate_policy(&p)).await
}

pub async fn shoppers(State(app): State<Arc<App>>) -> Json<Shoppers> {
    Json(app.engine.shoppers())
}

pub async fn retrain(State(app): State<Arc<App>>) -> (StatusCode, Json<RetrainStatus>) {
    let status = if app.engine.claim_retrain() {
        let engine = app.engine.clone();
        tokio::task::spawn_blocking(move || engine.retrain_now());
        "retraining; GET /ready shows the model version"
    } else {
        "a retrain is already running"
    };
    (
        StatusCode::ACCEPTED,
        Json(RetrainStatus {
            status: status.into(),
        }),
    )
}
