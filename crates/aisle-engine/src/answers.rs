//! Every answer the engine gives, as a typed value: the front ends serialise these as they
//! are (the HTTP layer as JSON, the CLI as JSON or text), and the API contract is derived
//! from them.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

pub use crate::strategy::{PolicyStatus, ServedList};

/// The process answers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// Models are loaded and the store is open.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Always true once the server answers.
    pub ready: bool,
    /// The recommender serving.
    pub model: String,
    /// Its generation.
    pub model_version: u64,
    /// The approximate index its top-N requests search, when the catalogue is large enough
    /// to have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexStatus>,
}

/// The approximate nearest-neighbour index over the serving model's item factors.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IndexStatus {
    /// Items in its inverted lists (items with all-zero factors are kept aside).
    pub items_indexed: usize,
    /// Inverted lists.
    pub lists: usize,
    /// Lists a request scans: calibrated when the generation was built.
    pub probes: usize,
    /// Items of largest norm every request scores exactly besides the lists (calibrated with
    /// the probes).
    pub head_items: usize,
}

/// Events stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Accepted {
    /// Events in the request, all durable now (a retried event is stored once).
    pub accepted: usize,
    /// With replicas: send it back as the `Aisle-Token` header of a read, on any replica,
    /// and the read waits (up to 2 s) until that replica has applied this write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Items or users created or replaced.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Upserted {
    /// How many.
    pub upserted: usize,
}

/// An item removed from the catalogue.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// Its id.
    pub deleted: String,
}

/// A user forgotten.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Forgotten {
    /// Their id.
    pub forgotten: String,
    /// Their events removed.
    pub events_deleted: usize,
}

/// A catalogue item.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ItemSummary {
    /// Its id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Category path, top level first.
    pub category: Vec<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Price.
    pub price: Option<f64>,
}

/// An item of the user's history that explains a recommendation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Evidence {
    /// The history item's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Shoppers who chose both.
    pub shared_users: u32,
    /// Cosine similarity of the two items' shoppers.
    pub similarity: f32,
}

/// A recommended item.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Recommended {
    /// Its id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Category path.
    pub category: Vec<String>,
    /// Price.
    pub price: Option<f64>,
    /// The model's score (comparable within one list only).
    pub score: f32,
    /// The probability the serving policy gave this item at this position, given the
    /// positions above it (1 for a list served as ranked).
    pub propensity: f32,
    /// Whether the serving policy put it here in place of the model's choice, to learn
    /// how shoppers take it; `why` then says so and gives the model's rank.
    pub explored: bool,
    /// History items that explain it, strongest first.
    pub because: Vec<Evidence>,
    /// The reason in words.
    pub why: String,
}

/// Top items for a user.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserRecommendations {
    /// The user.
    pub user: String,
    /// The recommender.
    pub model: String,
    /// Its generation.
    pub model_version: u64,
    /// This list's impression and serving policy.
    pub served: ServedList,
    /// Best first.
    pub items: Vec<Recommended>,
}

/// Top items for an anonymous session.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SessionRecommendations {
    /// The session, if one was named.
    pub session: Option<String>,
    /// This list's impression and serving policy.
    pub served: ServedList,
    /// Best first.
    pub items: Vec<Recommended>,
}

/// Items that go with a cart.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CartRecommendations {
    /// The cart.
    pub cart: Vec<String>,
    /// This list's impression and serving policy.
    pub served: ServedList,
    /// Best first.
    pub items: Vec<Recommended>,
}

/// Top items from categories the user has not used.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CrossCategory {
    /// The user.
    pub user: String,
    /// Top-level categories of their history (left out).
    pub categories_used: Vec<String>,
    /// This list's impression and serving policy.
    pub served: ServedList,
    /// Best first.
    pub items: Vec<Recommended>,
}

/// An item gaining interest.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TrendingItem {
    /// Its id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Category path.
    pub category: Vec<String>,
    /// Time-decayed count of views, carts and purchases.
    pub score: f32,
    /// The probability of this item at this position (1: served as ranked).
    pub propensity: f32,
    /// The reason in words.
    pub why: String,
}

/// Items gaining interest now.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Trending {
    /// This list's impression and serving policy.
    pub served: ServedList,
    /// Most interest first.
    pub items: Vec<TrendingItem>,
}

/// An item with the items similar to it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ItemPage {
    /// The item.
    pub item: ItemSummary,
    /// The similar list's impression and serving policy.
    pub served: ServedList,
    /// Similar items, most similar first.
    pub similar: Vec<Recommended>,
}

/// One search result.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchHit {
    /// Its id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Category path.
    pub category: Vec<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Price.
    pub price: Option<f64>,
    /// Ranking score.
    pub score: f32,
    /// The probability of this hit at this position (1: served as ranked).
    pub propensity: f32,
    /// Why it ranks where it does.
    pub why: Vec<String>,
}

/// A facet value and how many matches have it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FacetCount {
    /// The value.
    pub value: String,
    /// Matches with it.
    pub count: usize,
}

/// Facet counts over every match.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct SearchFacets {
    /// Top-level categories.
    pub departments: Vec<FacetCount>,
    /// Full category paths (levels joined by `/`).
    pub categories: Vec<FacetCount>,
    /// Brands.
    pub brands: Vec<FacetCount>,
}

/// A page of search results.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// The query.
    pub query: String,
    /// Matches (before paging).
    pub total: usize,
    /// The retrievers used: lexical, semantic or hybrid.
    pub mode: Option<String>,
    /// Whether the results were re-ranked for the user.
    pub personalised: bool,
    /// Time spent searching.
    pub took_ms: f64,
    /// This page's impression and serving policy.
    pub served: ServedList,
    /// The page.
    pub hits: Vec<SearchHit>,
    /// Facet counts.
    pub facets: SearchFacets,
    /// Anything the caller should know.
    pub notes: Vec<String>,
}

/// A product the user's next order likely holds.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProductChance {
    /// The product (absent if it left the catalogue).
    pub item: Option<ItemSummary>,
    /// Probability that the next order holds it.
    pub probability: f32,
}

/// A department the user's next order likely holds.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DepartmentChance {
    /// The department.
    pub department: Option<String>,
    /// Probability that the next order holds it.
    pub probability: f32,
}

/// A feature and its share of the model's gain.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FeatureShare {
    /// Feature name.
    pub feature: String,
    /// Share of the total gain.
    pub share: f64,
}

/// The features that matter most to each purchase model.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PurchaseImportance {
    /// The product (reorder) model.
    pub products: Option<Vec<FeatureShare>>,
    /// The department model.
    pub departments: Option<Vec<FeatureShare>>,
}

/// What the user's next order will likely hold.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PurchasePrediction {
    /// The user.
    pub user: String,
    /// The generation of the models.
    pub model_version: u64,
    /// Products, most likely first.
    pub products: Vec<ProductChance>,
    /// Departments, most likely first.
    pub departments: Vec<DepartmentChance>,
    /// What drives the models.
    pub importance: PurchaseImportance,
    /// Why a part is missing.
    pub notes: Vec<String>,
}

/// The fitted BG/NBD parameters.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BgNbdParameters {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale of the purchase-rate distribution.
    pub alpha: f64,
    /// First shape of the dropout distribution.
    pub a: f64,
    /// Second shape of the dropout distribution.
    pub b: f64,
}

/// Whether a customer is still a customer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChurnPrediction {
    /// The user.
    pub user: String,
    /// Always `bgnbd`.
    pub model: String,
    /// Probability the customer is still active.
    pub p_alive: f64,
    /// Expected purchases in the next 4 weeks.
    pub expected_purchases_4_weeks: f64,
    /// The fitted model.
    pub parameters: BgNbdParameters,
}

/// A feature's contribution to one prediction.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Contribution {
    /// Feature name.
    pub feature: String,
    /// The row's value of it.
    pub value: f32,
    /// Its TreeSHAP contribution to the log-odds.
    pub log_odds: f64,
}

/// A user a promotion should reach.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PromoTarget {
    /// The user.
    pub user: String,
    /// Probability they buy from the promotion.
    pub probability: f32,
    /// The largest contributions to it.
    pub because: Vec<Contribution>,
}

/// Users a promotion should reach.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Promotion {
    /// Users scored.
    pub users_scored: usize,
    /// The `k` of the next field.
    pub k: usize,
    /// Expected buyers among the first `k` users.
    pub expected_buyers_in_top_k: f64,
    /// Most likely buyers first.
    pub targets: Vec<PromoTarget>,
}

/// Why an item is recommended to a user.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Explanation {
    /// The recommender.
    pub model: String,
    /// Where the item ranks for the user (1 = top), if the model scores it.
    pub rank_for_user: Option<usize>,
    /// Items in the user's history.
    pub history_items: usize,
    /// The item with its reasons.
    pub item: Option<Recommended>,
}

/// One step of the funnel.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FunnelStep {
    /// Event kind.
    pub kind: String,
    /// Sessions that reached it.
    pub count: usize,
    /// Share of the previous step.
    pub from_previous: f64,
    /// Share of the first step.
    pub from_first: f64,
}

/// Retention of one cohort.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Cohort {
    /// Period index since the first period.
    pub period: i64,
    /// Users whose first purchase fell in it.
    pub users: usize,
    /// Share active `p` periods later.
    pub retention: Vec<f64>,
}

/// A best-selling item.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TopItem {
    /// Its id.
    pub id: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Purchases.
    pub purchases: usize,
    /// Distinct buyers.
    pub buyers: usize,
    /// Share of buyers who bought it again (exact answers only).
    pub repeat_buyer_share: Option<f64>,
}

/// The analytics summary computed with each generation.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct AnalyticsSummary {
    /// View → click → cart → purchase, by session.
    pub funnel: Vec<FunnelStep>,
    /// Weekly cohorts (first 12).
    pub cohorts: Vec<Cohort>,
    /// Customers per RFM segment.
    pub segments: BTreeMap<String, usize>,
    /// Best sellers.
    pub top_items: Vec<TopItem>,
}

/// Analytics as of the last training.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Analytics {
    /// The generation they were computed with.
    pub as_of_model_version: u64,
    /// The summary.
    pub analytics: AnalyticsSummary,
    /// How the figures were protected; absent for exact figures (admin keys).
    pub privacy: Option<PrivacyStatement>,
}

/// How a private answer was protected, and what is left of the budget.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PrivacyStatement {
    /// ε of this answer (pure differential privacy, per user).
    pub epsilon: f64,
    /// δ of this answer (from the best sellers' thresholded selection).
    pub delta: f64,
    /// Whether it is the stored answer of an earlier identical question (free).
    pub cached: bool,
    /// ε spent in the current window, this answer included.
    pub spent_epsilon: f64,
    /// The window's budget.
    pub budget_epsilon: f64,
    /// The window, in days.
    pub window_days: f64,
    /// Each part's noise.
    pub parts: Vec<PrivacyPart>,
}

/// The noise of one part of a private answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PrivacyPart {
    /// Which part.
    pub part: String,
    /// ε it spent.
    pub epsilon: f64,
    /// `discrete_laplace` (scale b: P(x) ∝ exp(-|x|/b)) or `discrete_gaussian` (scale σ).
    pub mechanism: String,
    /// The noise scale.
    pub scale: f64,
    /// How far one user moves its counts (L1), after bounding.
    pub sensitivity: f64,
    /// How each user's contribution was bounded.
    pub bounding: String,
}

/// One line of the live event stream.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FeedEntry {
    /// The user.
    pub user: String,
    /// Event kind.
    pub kind: String,
    /// The item, if any.
    pub item: Option<String>,
    /// Its title, if known.
    pub title: Option<String>,
    /// Event time.
    pub timestamp_ms: i64,
}

/// What the store holds.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Counts {
    /// Users.
    pub users: usize,
    /// Items.
    pub items: usize,
    /// Events.
    pub events: usize,
    /// Events stored since the engine started.
    pub ingested_since_start: u64,
}

/// The generation serving.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    /// The recommender.
    pub name: String,
    /// Its generation.
    pub version: u64,
    /// When it was trained.
    pub trained_at_ms: i64,
    /// Seconds training took.
    pub train_seconds: f64,
    /// Events it saw.
    pub trained_events: usize,
}

/// A logged query.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueryCount {
    /// The query, normalised.
    pub query: String,
    /// Times searched (for a private answer: distinct searchers, with noise).
    pub searches: u64,
    /// Times it found nothing (exact answers only).
    pub zero_results: Option<u64>,
}

/// Search analytics.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchStats {
    /// Most searched first.
    pub top_queries: Vec<QueryCount>,
    /// Queries that found nothing.
    pub zero_result_queries: Vec<String>,
}

/// Sizes of the maps client input can grow (each has a cap).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Memory {
    /// Events in the live state (with a replica's, those the stream brought).
    pub live_events: usize,
    /// Sessions indexed.
    pub live_sessions: usize,
    /// Distinct queries counted.
    pub tracked_queries: usize,
    /// Callers the rate limiter tracks (filled in by the HTTP layer).
    pub rate_limited_callers: usize,
}

/// Everything the dashboard shows.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// Sizes.
    pub counts: Counts,
    /// The latest events, newest first.
    pub feed: Vec<FeedEntry>,
    /// The generation serving.
    pub model: ModelInfo,
    /// Analytics as of it.
    pub analytics: AnalyticsSummary,
    /// The last offline evaluation (`aisle eval`), as it wrote it.
    #[schema(value_type = Option<Object>)]
    pub leaderboard: Option<serde_json::Value>,
    /// Search analytics.
    pub search: SearchStats,
    /// Why a prediction is missing.
    pub notes: Vec<String>,
    /// Sizes of the capped maps.
    pub memory: Memory,
    /// A few shoppers with history.
    pub sample_users: Vec<String>,
    /// The serving policy and the impressions it logged.
    pub policy: PolicyStatus,
    /// How the analytics were protected; absent for exact figures (admin keys).
    pub privacy: Option<PrivacyStatement>,
    /// What this caller is not shown, and why (everything is shown to admin keys).
    pub withheld: Option<String>,
}

/// A few shoppers with history, for the storefront's picker.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Shoppers {
    /// Their ids.
    pub users: Vec<String>,
}

/// A retrain was started, or one is running.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RetrainStatus {
    /// What happens now.
    pub status: String,
}

/// One off-policy estimate.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EstimateOut {
    /// `ips` or `snips`.
    pub estimator: String,
    /// Its value: the candidate's expected reward per shown slot.
    pub value: f64,
    /// Lower end of the 95% bootstrap interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// What the logged impressions say of a candidate serving policy.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PolicyEvaluation {
    /// The candidate's id.
    pub candidate: String,
    /// Lists judged on.
    pub lists: usize,
    /// Their shown slots.
    pub slots: usize,
    /// The logging policies' own reward per shown slot.
    pub logged_value: f64,
    /// IPS and SNIPS with 95% intervals.
    pub estimates: Vec<EstimateOut>,
    /// How many slots the weighted log is worth.
    pub effective_sample_size: f64,
    /// The largest importance weight.
    pub max_weight: f64,
    /// A warning to read before trusting the estimates, if any.
    pub warning: Option<String>,
    /// Whether the deployment gate lets it serve (SNIPS's lower bound above the logged value).
    pub gate_passes: bool,
    /// The gate's reason, in words.
    pub gate: String,
    /// When it was computed (ms since the epoch).
    pub at_ms: i64,
}
