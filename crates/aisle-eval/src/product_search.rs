//! Personalised product search, evaluated as Ai et al. (SIGIR 2017) propose for data without
//! query logs: a purchase becomes a search whose query is the text of the product's
//! category, and the purchased product is the relevant result.
//!
//! Here, on order data: each user's last order gives the test searches and the order before
//! it the searches the re-ranker learns from. In an order, the products bought from one
//! category (an Instacart aisle) make one search: the query is the category path's words
//! (aisle and department, each word once) and every product bought there is relevant. Only
//! behaviour before the order is visible: the shopper's history, item popularity and the
//! recommender are all built from events before it. The category text is not searchable in
//! this protocol (it is the query), so the documents are the products' titles, brands and
//! descriptions.

use std::collections::BTreeMap;

use aisle_core::{EventKind, Item, ItemId};
use aisle_features::{EventLog, Interaction};
use aisle_models::{Query, Recommender};
use aisle_search::{
    BehaviourProfile, RankingContext, SearchEngine, SearchMode, SearchRequest, TrainingQuery,
};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::metrics::{Ndcg, Recall};
use crate::{Error, Result};

/// One search of the protocol.
#[derive(Clone, Debug)]
pub struct SearchCase {
    /// Dense user id.
    pub user: u32,
    /// Query text (the category's words).
    pub query: String,
    /// Products bought from that category in the order.
    pub relevant: Vec<u32>,
    /// When the order started; only earlier behaviour is visible.
    pub at_ms: i64,
    /// The user's events before the order, oldest first.
    pub history: Vec<(ItemId, EventKind, i64)>,
}

/// Searches to learn from and to test on, and the event logs visible to each.
#[derive(Debug)]
pub struct SearchSplit {
    /// Searches from each user's second-to-last order (ranker training).
    pub train: Vec<SearchCase>,
    /// Searches from each user's last order.
    pub test: Vec<SearchCase>,
    /// Every event before each user's second-to-last order.
    pub before_train: EventLog,
    /// Every event before each user's last order.
    pub before_test: EventLog,
}

/// The query a purchase in `item`'s category becomes: the category path's words, deepest
/// level first, each word once ("fresh fruits produce").
pub fn category_query(item: &Item) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    for level in item.category.iter().rev() {
        for word in level.split_whitespace() {
            let word = word.to_lowercase();
            if !words.contains(&word) {
                words.push(word);
            }
        }
    }
    (!words.is_empty()).then(|| words.join(" "))
}

struct Order {
    start: i64,
    events: Vec<Interaction>,
}

fn orders_by_user(log: &EventLog) -> Result<Vec<Vec<Order>>> {
    let mut by_user: Vec<BTreeMap<u64, Vec<Interaction>>> = vec![BTreeMap::new(); log.n_users()];
    let mut sessionless = 0usize;
    for e in log.events() {
        if e.session == 0 {
            sessionless += 1;
            continue;
        }
        by_user[e.user as usize]
            .entry(e.session)
            .or_default()
            .push(*e);
    }
    if sessionless == log.len() {
        return Err(Error::Protocol(
            "product search needs orders: events with session (order) ids".into(),
        ));
    }
    Ok(by_user
        .into_iter()
        .map(|sessions| {
            let mut orders: Vec<Order> = sessions
                .into_values()
                .map(|events| Order {
                    start: events.iter().map(|e| e.timestamp_ms).min().unwrap_or(0),
                    events,
                })
                .collect();
            orders.sort_by_key(|o| o.start);
            orders
        })
        .collect())
}

fn cases_of(
    user: u32,
    order: &Order,
    history: &[Interaction],
    catalogue: &[Option<Item>],
) -> Vec<SearchCase> {
    let mut by_query: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for e in order
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Purchase)
    {
        let Some(item) = catalogue.get(e.item as usize).and_then(Option::as_ref) else {
            continue;
        };
        if let Some(query) = category_query(item) {
            let relevant = by_query.entry(query).or_default();
            if !relevant.contains(&e.item) {
                relevant.push(e.item);
            }
        }
    }
    let history: Vec<(ItemId, EventKind, i64)> = history
        .iter()
        .filter(|e| e.timestamp_ms < order.start)
        .filter_map(|e| e.item().map(|i| (i, e.kind, e.timestamp_ms)))
        .collect();
    by_query
        .into_iter()
        .map(|(query, relevant)| SearchCase {
            user,
            query,
            relevant,
            at_ms: order.start,
            history: history.clone(),
        })
        .collect()
}

/// Cuts the protocol's searches out of an order log. Users need an order before the one a
/// search comes from, so that there is behaviour to personalise with.
pub fn search_split(log: &EventLog, catalogue: &[Option<Item>]) -> Result<SearchSplit> {
    let orders = orders_by_user(log)?;
    let mut user_events: Vec<Vec<Interaction>> = vec![Vec::new(); log.n_users()];
    for e in log.events() {
        user_events[e.user as usize].push(*e);
    }
    let mut train = Vec::new();
    let mut test = Vec::new();
    let mut test_start = vec![i64::MAX; log.n_users()];
    let mut train_start = vec![i64::MAX; log.n_users()];
    for (user, orders) in orders.iter().enumerate() {
        let n = orders.len();
        if n >= 2 {
            test_start[user] = orders[n - 1].start;
            test.extend(cases_of(
                user as u32,
                &orders[n - 1],
                &user_events[user],
                catalogue,
            ));
        }
        if n >= 3 {
            train_start[user] = orders[n - 2].start;
            train.extend(cases_of(
                user as u32,
                &orders[n - 2],
                &user_events[user],
                catalogue,
            ));
        }
    }
    let before = |cut: &[i64]| {
        let events: Vec<Interaction> = log
            .events()
            .iter()
            .filter(|e| e.timestamp_ms < cut[e.user as usize])
            .copied()
            .collect();
        EventLog::from_events(events, log.n_users(), log.n_items())
    };
    Ok(SearchSplit {
        before_train: before(&train_start),
        before_test: before(&test_start),
        train,
        test,
    })
}

/// Item popularity as the ranker reads it (defined beside the ranker, which the engine's
/// serving refreshes it for).
pub use aisle_search::popularity_features;

/// The ranking context of one case: its shopper's profile and recommender scores.
pub struct CaseContext {
    /// Profile from the case's history.
    pub profile: BehaviourProfile,
    /// Recommender scores for every item, if a recommender is given.
    pub scores: Option<Vec<f32>>,
}

impl CaseContext {
    /// Builds the context of `case`.
    pub fn new(
        case: &SearchCase,
        engine: &SearchEngine,
        recommender: Option<&dyn Recommender>,
    ) -> Self {
        let profile =
            BehaviourProfile::from_events(case.history.iter().copied(), |id| engine.item(id));
        let scores = recommender.map(|model| {
            let history: Vec<u32> = case.history.iter().map(|h| h.0.0).collect();
            let mut scores = vec![0f32; model.n_items()];
            model.score(
                &Query {
                    user: Some(case.user),
                    history: &history,
                    ..Query::default()
                },
                &mut scores,
            );
            scores
        });
        Self { profile, scores }
    }

    /// Borrowed as the engine takes it.
    pub fn ranking(&self, at_ms: i64) -> RankingContext<'_> {
        RankingContext {
            profile: Some(&self.profile),
            recommender_scores: self.scores.as_deref(),
            now_ms: at_ms,
        }
    }
}

/// Mean metrics of one search variant.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SearchScores {
    /// Variant name.
    pub name: String,
    /// NDCG@10.
    pub ndcg_10: f64,
    /// Recall@10.
    pub recall_10: f64,
    /// Searches scored.
    pub queries: usize,
}

/// Scores ranked lists (best first) against the cases' relevant items.
pub fn score_lists(name: &str, cases: &[SearchCase], lists: &[Vec<u32>]) -> SearchScores {
    let n = cases.len().max(1) as f64;
    let (ndcg, recall) = cases
        .iter()
        .zip(lists)
        .fold((0.0, 0.0), |(n_, r_), (case, list)| {
            (
                n_ + Ndcg::of(10, list, &case.relevant),
                r_ + Recall::of(10, list, &case.relevant),
            )
        });
    SearchScores {
        name: name.to_string(),
        ndcg_10: ndcg / n,
        recall_10: recall / n,
        queries: cases.len(),
    }
}

/// The engine's top 10 for every case, with `mode` and with or without re-ranking.
pub fn run_cases(
    engine: &SearchEngine,
    cases: &[SearchCase],
    contexts: &[CaseContext],
    mode: SearchMode,
    personalise: bool,
) -> Result<Vec<Vec<u32>>> {
    cases
        .par_iter()
        .zip(contexts)
        .map(|(case, ctx)| {
            let request = SearchRequest {
                query: case.query.clone(),
                mode: Some(mode),
                typing: false,
                personalise,
                ..SearchRequest::default()
            };
            let response = engine
                .search(&request, &ctx.ranking(case.at_ms))
                .map_err(|e| Error::Protocol(e.to_string()))?;
            Ok(response.hits.iter().map(|h| h.item.0).collect())
        })
        .collect()
}

/// Training queries for the re-ranker: each case's candidates (the un-reranked head and the
/// shopper's own nearby items) labelled 1 when bought. Cases with no bought item among the
/// candidates teach nothing and are left out. Returned with the case's user, for splitting.
pub fn ranker_queries(
    engine: &SearchEngine,
    cases: &[SearchCase],
    contexts: &[CaseContext],
    mode: SearchMode,
    depth: usize,
) -> Result<Vec<(u32, TrainingQuery)>> {
    let out: Vec<Option<(u32, TrainingQuery)>> = cases
        .par_iter()
        .zip(contexts)
        .map(|(case, ctx)| {
            let request = SearchRequest {
                query: case.query.clone(),
                mode: Some(mode),
                typing: false,
                ..SearchRequest::default()
            };
            let (items, features) = engine
                .candidates_with_features(&request, &ctx.ranking(case.at_ms), depth)
                .map_err(|e| Error::Protocol(e.to_string()))?;
            let labels: Vec<f32> = items
                .iter()
                .map(|i| f32::from(u8::from(case.relevant.contains(&i.0))))
                .collect();
            Ok(labels
                .iter()
                .any(|&l| l > 0.0)
                .then_some((case.user, TrainingQuery { features, labels })))
        })
        .collect::<Result<_>>()?;
    Ok(out.into_iter().flatten().collect())
}

/// Splits training queries by user: about `share` of users go to validation.
pub fn split_by_user(
    queries: Vec<(u32, TrainingQuery)>,
    share: f64,
) -> (Vec<TrainingQuery>, Vec<TrainingQuery>) {
    let mut users: FxHashMap<u32, bool> = FxHashMap::default();
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (user, q) in queries {
        let held = *users.entry(user).or_insert_with(|| {
            // A fixed hash of the user id: the same users are held out on every run.
            (xxhash(user) % 1000) as f64 / 1000.0 < share
        });
        if held { valid.push(q) } else { train.push(q) }
    }
    (train, valid)
}

fn xxhash(user: u32) -> u64 {
    // SplitMix64's finaliser, enough to spread consecutive ids.
    let mut z = u64::from(user).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
