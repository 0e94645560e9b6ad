//! What clients ask: the parameters and bodies of every question, with their bounds. The
//! bounds are stated once, in the schema attributes, and checked by the engine against the
//! same constants.

use std::sync::LazyLock;

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{EngineError, Result};
use crate::input::{ID_MAX_CHARS, Id, check_id};

/// Most items a list may ask for.
pub const MAX_K: usize = 200;
/// Most characters in a search query.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Furthest a search may page.
pub const MAX_OFFSET: usize = 10_000;
/// Most items named in a session, cart or promotion.
pub const MAX_NAMED_ITEMS: usize = 1000;

/// The grammar of a search filter: expressions separated by `;`, each `category=A/B|C`,
/// `brand=X|Y`, `price<N` (also `<=`, `>`, `>=`) or `price=MIN..MAX` (either end optional).
/// Stated as a regular expression so the schema and the check are the same rule.
pub const FILTER_PATTERN: &str = concat!(
    "^(?:category=V(?:/V)*(?:\\|V(?:/V)*)*|brand=V(?:\\|V)*|price(?:<=|>=|<|>)N|price=N?\\.\\.N?)",
    "(?:;(?:category=V(?:/V)*(?:\\|V(?:/V)*)*|brand=V(?:\\|V)*|price(?:<=|>=|<|>)N|price=N?\\.\\.N?))*$"
);

/// [`FILTER_PATTERN`] with its placeholders expanded: `V` a value (no separators, not
/// starting or ending with a space or control character), `N` a price.
pub fn filter_pattern() -> &'static str {
    static EXPANDED: LazyLock<String> = LazyLock::new(|| {
        FILTER_PATTERN
            .replace(
                'V',
                "(?:[^;|<>=/\\x00-\\x20](?:[^;|<>=/\\x00-\\x1f]*[^;|<>=/\\x00-\\x20])?)",
            )
            .replace('N', "(?:[0-9]{1,9}(?:\\.[0-9]{1,4})?)")
    });
    &EXPANDED
}

fn default_k() -> usize {
    10
}
fn yes() -> bool {
    true
}
fn hundred() -> usize {
    100
}
fn twenty() -> usize {
    20
}

/// Checks an optional category name's length.
pub fn check_category(category: Option<&str>) -> Result<()> {
    if category.is_some_and(|c| c.chars().count() > ID_MAX_CHARS) {
        return Err(EngineError::bad_request(format!(
            "category is longer than {ID_MAX_CHARS} characters"
        )));
    }
    Ok(())
}

/// Checks a list length `k`.
pub fn check_k(k: usize) -> Result<usize> {
    if k == 0 || k > MAX_K {
        return Err(EngineError::bad_request(format!("k must be 1 to {MAX_K}")));
    }
    Ok(k)
}

fn check_named(what: &str, items: &[String]) -> Result<()> {
    if items.len() > MAX_NAMED_ITEMS {
        return Err(EngineError::bad_request(format!(
            "{} {what}; name at most {MAX_NAMED_ITEMS}",
            items.len()
        )));
    }
    for (i, item) in items.iter().enumerate() {
        check_id("item", item, &format!("{what} {i}"))?;
    }
    Ok(())
}

/// Top items for a user.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecommendParams {
    /// The user's id.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "u42"
    )]
    pub user: String,
    /// How many items.
    #[serde(default = "default_k")]
    #[param(minimum = 1, maximum = 200, default = 10)]
    pub k: usize,
    /// Leave out what the user bought.
    #[serde(default = "yes")]
    #[param(default = true)]
    pub exclude_bought: bool,
    /// Only items with this category (any level, case-insensitive).
    #[serde(default)]
    #[param(max_length = 256)]
    pub category: Option<String>,
    /// Add the reasons.
    #[serde(default = "yes")]
    #[param(default = true)]
    pub explain: bool,
}

/// How many items.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KParam {
    /// How many items.
    #[serde(default = "default_k")]
    #[param(minimum = 1, maximum = 200, default = 10)]
    pub k: usize,
}

/// An anonymous session: its id (its events so far), items, or both.
/// With neither (or a session without events yet), the answer is what a new visitor gets.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionIn {
    /// The session's id, as sent with its events.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "s1"
    )]
    pub session: Option<String>,
    /// Items viewed, oldest first.
    #[serde(default)]
    #[schema(max_items = 1000, value_type = Option<Vec<Id>>)]
    pub items: Option<Vec<String>>,
}

impl SessionIn {
    /// Checks the bounds the schema states.
    pub fn check(&self) -> Result<()> {
        if let Some(s) = &self.session {
            check_id("session", s, "the body")?;
        }
        if let Some(items) = &self.items {
            check_named("items", items)?;
        }
        Ok(())
    }
}

/// A cart.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartIn {
    /// The items in the cart.
    #[schema(min_items = 1, max_items = 1000, value_type = Vec<Id>)]
    pub items: Vec<String>,
}

impl CartIn {
    /// Checks the bounds the schema states.
    pub fn check(&self) -> Result<()> {
        if self.items.is_empty() {
            return Err(EngineError::bad_request("the cart is empty"));
        }
        check_named("items", &self.items)
    }
}

/// A user and a list length.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserK {
    /// The user's id.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "u42"
    )]
    pub user: String,
    /// How many.
    #[serde(default = "default_k")]
    #[param(minimum = 1, maximum = 200, default = 10)]
    pub k: usize,
}

/// A user.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserParam {
    /// The user's id.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "u42"
    )]
    pub user: String,
}

/// Trending items.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendingParams {
    /// How many.
    #[serde(default = "default_k")]
    #[param(minimum = 1, maximum = 200, default = 10)]
    pub k: usize,
    /// Only this category (any level, case-insensitive).
    #[serde(default)]
    #[param(max_length = 256)]
    pub category: Option<String>,
}

/// How search retrieves.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeIn {
    /// BM25 over the text.
    Lexical,
    /// Nearest neighbours of the query's embedding.
    Semantic,
    /// Both, fused.
    Hybrid,
}

/// A search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The query.
    #[serde(default)]
    #[param(max_length = 1000, example = "greek yogurt")]
    pub q: String,
    /// Personalise for this user.
    #[serde(default)]
    #[param(min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u0020]")]
    pub user: Option<String>,
    /// Filters separated by `;`: `category=A/B|C`, `brand=X|Y`, `price<N`, `price>=N`,
    /// `price=MIN..MAX`.
    #[serde(default)]
    #[param(max_length = 1000, example = "price<10")]
    pub filter: Option<String>,
    /// Results per page.
    #[serde(default = "default_k")]
    #[param(minimum = 1, maximum = 200, default = 10)]
    pub limit: usize,
    /// Results to skip.
    #[serde(default)]
    #[param(minimum = 0, maximum = 10000, default = 0)]
    pub offset: usize,
    /// How to retrieve; default: hybrid when an encoder is loaded, else lexical.
    #[serde(default)]
    #[param(inline)]
    pub mode: Option<ModeIn>,
}

impl SearchParams {
    /// Checks the bounds the schema states; returns the filter expressions.
    pub fn check(&self) -> Result<Vec<String>> {
        if self.limit == 0 || self.limit > MAX_K || self.offset > MAX_OFFSET {
            return Err(EngineError::bad_request(format!(
                "limit must be 1 to {MAX_K} and offset at most {MAX_OFFSET}"
            )));
        }
        if self.q.chars().count() > MAX_QUERY_CHARS {
            return Err(EngineError::bad_request(format!(
                "the query is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        if let Some(user) = &self.user {
            check_id("user", user, "the query")?;
        }
        let Some(filter) = &self.filter else {
            return Ok(Vec::new());
        };
        static GRAMMAR: LazyLock<Option<regex::Regex>> =
            LazyLock::new(|| regex::Regex::new(filter_pattern()).ok());
        let matches = GRAMMAR.as_ref().is_some_and(|g| g.is_match(filter));
        if filter.chars().count() > MAX_QUERY_CHARS || !matches {
            return Err(EngineError::bad_request(format!(
                "filter {filter:?}: write expressions separated by ';': category=A/B|C, brand=X|Y, price<N (or <=, >, >=), price=MIN..MAX"
            )));
        }
        Ok(filter.split(';').map(str::to_string).collect())
    }
}

/// Promote the items of a category.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteCategory {
    /// The category (any level, case-insensitive).
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "yogurt"
    )]
    pub category: String,
}

/// Promote these items.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteItems {
    /// The items' ids.
    #[schema(min_items = 1, max_items = 1000, value_type = Vec<Id>)]
    pub items: Vec<String>,
}

/// What a promotion promotes: a category or a list of items.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PromoIn {
    /// A category.
    Category(PromoteCategory),
    /// Items.
    Items(PromoteItems),
}

impl PromoIn {
    /// Checks the bounds the schema states.
    pub fn check(&self) -> Result<()> {
        match self {
            PromoIn::Category(c) => check_id("category", &c.category, "the body"),
            PromoIn::Items(i) => {
                if i.items.is_empty() {
                    return Err(EngineError::bad_request("items is an empty list"));
                }
                check_named("items", &i.items)
            }
        }
    }
}

/// How many users a promotion lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromoParams {
    /// Expected buyers are counted among the first `k` users.
    #[serde(default = "hundred")]
    #[param(minimum = 1, maximum = 1000000, default = 100)]
    pub k: usize,
    /// Users listed.
    #[serde(default = "twenty")]
    #[param(minimum = 1, maximum = 200, default = 20)]
    pub top: usize,
}

impl PromoParams {
    /// Checks the bounds the schema states.
    pub fn check(&self) -> Result<()> {
        if self.k == 0 || self.k > 1_000_000 || self.top == 0 || self.top > MAX_K {
            return Err(EngineError::bad_request(format!(
                "k must be 1 to 1000000 and top 1 to {MAX_K}"
            )));
        }
        Ok(())
    }
}

/// Why an item is recommended to a user.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainParams {
    /// The user's id.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "u42"
    )]
    pub user: String,
    /// The item's id.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "p7"
    )]
    pub item: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(filter: &str) -> SearchParams {
        SearchParams {
            q: String::new(),
            user: None,
            filter: Some(filter.to_string()),
            limit: 10,
            offset: 0,
            mode: None,
        }
    }

    #[test]
    fn the_filter_grammar_accepts_what_the_filter_parser_does() {
        for ok in [
            "price<10",
            "price>=2.5",
            "price=1..2",
            "price=..5",
            "category=dairy eggs/yogurt|snacks",
            "brand=Acme|Zed;price<3",
            "category=乳制品",
        ] {
            let parts = search(ok).check().unwrap_or_else(|e| panic!("{ok}: {e}"));
            aisle_search::Filter::parse_all(&parts).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "price<cheap",
            "colour=red",
            "category=",
            "category= x",
            "brand=a;",
            "price=5",
            "nonsense",
        ] {
            assert!(search(bad).check().is_err(), "{bad}");
        }
    }
}

/// Most bootstrap resamples an evaluation may ask for.
pub const MAX_BOOTSTRAP: usize = 2_000;

fn default_bootstrap() -> usize {
    200
}

/// A kind of serving policy.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// The ranking as is.
    Deterministic,
    /// The ranking's choice per slot, else (with probability `epsilon`) a uniform pick.
    EpsilonGreedy,
    /// Softmax sampling at `temperature`, mixed with a uniform `floor`.
    PlackettLuce,
}

/// A surface whose lists are logged.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SurfaceIn {
    /// Recommendations for a user.
    Recommend,
    /// Recommendations for a session.
    Session,
    /// Complements of a cart.
    Cart,
    /// Items similar to an item.
    Similar,
    /// A user's recommendations from other categories.
    CrossCategory,
    /// Trending items.
    Trending,
    /// Search results.
    Search,
}

impl SurfaceIn {
    /// The name impressions log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Recommend => "recommend",
            Self::Session => "session",
            Self::Cart => "cart",
            Self::Similar => "similar",
            Self::CrossCategory => "cross-category",
            Self::Trending => "trending",
            Self::Search => "search",
        }
    }
}

fn default_epsilon() -> f64 {
    0.05
}

fn default_temperature() -> f64 {
    0.1
}

/// A candidate serving policy to judge on the logged impressions. Every combination the
/// schema allows is a valid policy (the parameters a kind does not take are ignored).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvaluateParams {
    /// The candidate's kind.
    #[param(inline)]
    pub policy: PolicyKind,
    /// Epsilon-greedy's exploration probability.
    #[serde(default = "default_epsilon")]
    #[param(exclusive_minimum = 0.0, maximum = 1.0, default = 0.05)]
    pub epsilon: f64,
    /// Plackett-Luce's temperature.
    #[serde(default = "default_temperature")]
    #[param(exclusive_minimum = 0.0, maximum = 1000000.0, default = 0.1)]
    pub temperature: f64,
    /// Plackett-Luce's uniform floor.
    #[serde(default = "default_epsilon")]
    #[param(minimum = 0.0, maximum = 1.0, default = 0.05)]
    pub floor: f64,
    /// Only the lists of this surface.
    #[serde(default)]
    #[param(inline)]
    pub surface: Option<SurfaceIn>,
    /// Bootstrap resamples of the intervals.
    #[serde(default = "default_bootstrap")]
    #[param(minimum = 10, maximum = 2000, default = 200)]
    pub bootstrap: usize,
}

impl EvaluateParams {
    /// The candidate these parameters describe, checked against the schema's bounds.
    pub fn candidate(&self) -> Result<aisle_policy::policy::ServingPolicy> {
        use aisle_policy::policy::ServingPolicy;
        // Every bound the schema states, whichever kind uses the parameter.
        let bounds = [
            (
                "epsilon",
                self.epsilon > 0.0 && self.epsilon <= 1.0,
                "in (0, 1]",
            ),
            (
                "temperature",
                self.temperature > 0.0 && self.temperature <= 1e6,
                "in (0, 1000000]",
            ),
            ("floor", (0.0..=1.0).contains(&self.floor), "in [0, 1]"),
        ];
        for (name, ok, range) in bounds {
            if !ok {
                return Err(EngineError::bad_request(format!("{name} must be {range}")));
            }
        }
        let policy = match self.policy {
            PolicyKind::Deterministic => ServingPolicy::Deterministic,
            PolicyKind::EpsilonGreedy => ServingPolicy::EpsilonGreedy {
                epsilon: self.epsilon,
            },
            PolicyKind::PlackettLuce => ServingPolicy::PlackettLuce {
                temperature: self.temperature,
                floor: self.floor,
            },
        };
        if !(10..=MAX_BOOTSTRAP).contains(&self.bootstrap) {
            return Err(EngineError::bad_request(format!(
                "bootstrap must be between 10 and {MAX_BOOTSTRAP}"
            )));
        }
        Ok(policy)
    }
}
