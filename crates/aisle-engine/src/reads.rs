//! Every question the engine answers, from the live state and the generation serving.

use aisle_core::{EventKind, ItemId, RawEvent};
use aisle_features::NO_ITEM;
use aisle_models::explain::because_with;
use aisle_models::{Query, RecOptions, Recommender, Scored, recommend as top_n};
use aisle_search::{BehaviourProfile, Filter, RankingContext, SearchMode, SearchRequest};

use crate::answers::{
    Analytics, BgNbdParameters, CartRecommendations, ChurnPrediction, Contribution, Counts,
    CrossCategory, Dashboard, DepartmentChance, Evidence, Explanation, FacetCount, FeatureShare,
    IndexStatus, ItemPage, ItemSummary, Memory, ModelInfo, ProductChance, PromoTarget, Promotion,
    PurchaseImportance, PurchasePrediction, QueryCount, Ready, Recommended, SearchFacets,
    SearchHit, SearchResults, SearchStats, SessionRecommendations, Shoppers, Trending,
    TrendingItem, UserRecommendations,
};
use crate::error::{EngineError, Result};
use crate::live::Live;
use crate::requests::{
    CartIn, ExplainParams, KParam, ModeIn, PromoIn, PromoParams, RecommendParams, SearchParams,
    SessionIn, TrendingParams, UserK, UserParam, check_category, check_k,
};
use crate::strategy::{Audience, ServedList, Shown, pool_size};
use crate::writer::Change;
use crate::{Engine, Generation, read, write};

const DAY_MS: i64 = 86_400_000;

/// Top `k` for `query` from the served model; history items newer than the model are left
/// out of the query.
fn scored(
    generation: &Generation,
    query: &Query<'_>,
    k: usize,
    options: &RecOptions<'_>,
) -> Vec<Scored> {
    let model = &generation.model;
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
    let query = Query {
        user,
        history: &h,
        kinds: &kk,
        times_ms: &tt,
    };
    // The index answers short lists; a long one (a rank among all items) needs every score.
    generation
        .index
        .as_ref()
        .filter(|_| k + options.exclude.len() <= INDEX_MAX_CANDIDATES)
        .and_then(|index| index.recommend(model, &query, k, options))
        .unwrap_or_else(|| top_n(model, &query, k, options))
}

/// The longest candidate list (wanted plus excluded items) asked of the approximate index.
const INDEX_MAX_CANDIDATES: usize = 2_000;

/// What a list for a user is to hold.
#[derive(Clone, Copy)]
struct Wanted<'a> {
    k: usize,
    exclude_bought: bool,
    /// Only items with this category.
    category: Option<&'a str>,
    /// No items whose top-level category is one of these.
    avoid_categories: Option<&'a [String]>,
    explain: bool,
}

fn summary(item: &aisle_core::Item) -> ItemSummary {
    ItemSummary {
        id: item.external_id.clone(),
        title: item.title.clone(),
        category: item.category.clone(),
        brand: item.brand.clone(),
        price: item.price,
    }
}

fn has_category(item: &aisle_core::Item, category: &str) -> bool {
    item.category
        .iter()
        .any(|c| c.eq_ignore_ascii_case(category))
}

/// Users of the history items an explanation may look at, all together (see `listing`):
/// bounds a request's explanation work at about ten probes per user.
const EXPLAIN_USERS: usize = 20_000;

impl Engine {
    pub(crate) fn live(&self) -> std::sync::RwLockReadGuard<'_, Live> {
        read(&self.shared.live)
    }

    fn user_id(&self, external: &str) -> Result<u32> {
        self.shared
            .store
            .user_id(&self.stored_user_name(external))
            .ok()
            .flatten()
            .map(|u| u.0)
            .ok_or_else(|| EngineError::not_found(format!("unknown user {external:?}")))
    }

    fn item_id(&self, external: &str) -> Result<u32> {
        self.shared
            .store
            .item_id(external)
            .ok()
            .flatten()
            .map(|i| i.0)
            .ok_or_else(|| EngineError::not_found(format!("unknown item {external:?}")))
    }

    /// Readiness: the generation serving.
    pub fn ready(&self) -> Ready {
        let generation = self.generation();
        Ready {
            ready: true,
            model: generation.model_name.clone(),
            model_version: generation.version,
            index: generation.index.as_ref().map(|index| IndexStatus {
                items_indexed: index.n_indexed(),
                lists: index.n_lists(),
                probes: index.default_probes(),
                head_items: index.head_len(),
            }),
        }
    }

    fn listing(
        &self,
        shown: &[Shown],
        history: &[u32],
        explain: bool,
        verb: &str,
    ) -> Vec<Recommended> {
        let live = self.live();
        let items: Vec<u32> = shown.iter().map(|s| s.scored.item).collect();
        let reasons = if explain && !history.is_empty() {
            // The most recent distinct items are the evidence: recent taste explains best.
            // Up to 50 of them, and only while their users number EXPLAIN_USERS in all (the
            // first is always taken): each listed item costs one probe per such user, and
            // popular items of a large shop have tens of thousands.
            let mut recent: Vec<u32> = Vec::new();
            let mut users = 0usize;
            for &h in history.iter().rev() {
                if !recent.contains(&h) {
                    users += live.users_of(h).len();
                    if !recent.is_empty() && users > EXPLAIN_USERS {
                        break;
                    }
                    recent.push(h);
                    if recent.len() == 50 {
                        break;
                    }
                }
            }
            because_with(
                |item| live.users_of(item),
                |item| live.user_bits(item),
                &recent,
                &items,
                3,
            )
        } else {
            vec![Vec::new(); items.len()]
        };
        let known = |id: u32| live.items.get(id as usize).and_then(Option::as_ref);
        shown
            .iter()
            .zip(reasons)
            .filter_map(|(s, why)| {
                let item = known(s.scored.item)?;
                let because: Vec<Evidence> = why
                    .iter()
                    .filter_map(|b| {
                        let evidence = known(b.item)?;
                        Some(Evidence {
                            id: evidence.external_id.clone(),
                            title: evidence.title.clone(),
                            shared_users: b.shared_users,
                            similarity: b.similarity,
                        })
                    })
                    .collect();
                let why = match because.first() {
                    Some(b) => format!(
                        "{verb} {} ({} shoppers chose both)",
                        b.title, b.shared_users
                    ),
                    None => "popular with shoppers".to_string(),
                };
                let why = if s.explored {
                    format!(
                        "shown to explore (the model ranked it {}); {why}",
                        s.model_rank + 1
                    )
                } else {
                    why
                };
                Some(Recommended {
                    id: item.external_id.clone(),
                    title: item.title.clone(),
                    category: item.category.clone(),
                    price: item.price,
                    score: s.scored.score,
                    propensity: s.propensity,
                    explored: s.explored,
                    because,
                    why,
                })
            })
            .collect()
    }

    fn for_user(
        &self,
        surface: &str,
        generation: &Generation,
        user: u32,
        want: &Wanted<'_>,
    ) -> (Vec<Recommended>, ServedList) {
        let Wanted {
            k,
            exclude_bought,
            category,
            avoid_categories,
            explain,
        } = *want;
        let (history, kinds, times, exclude, allowed) = {
            let live = self.live();
            let positions = live.by_user.get(user as usize).cloned().unwrap_or_default();
            let (h, kk, t) = live.history_of(&positions);
            let exclude = if exclude_bought {
                live.bought(user)
            } else {
                Vec::new()
            };
            let allowed: Option<Vec<bool>> = (category.is_some() || avoid_categories.is_some())
                .then(|| {
                    live.items
                        .iter()
                        .map(|i| {
                            i.as_ref().is_some_and(|i| {
                                category.is_none_or(|c| has_category(i, c))
                                    && avoid_categories.is_none_or(|avoid| {
                                        i.category.first().is_none_or(|d| !avoid.contains(d))
                                    })
                            })
                        })
                        .collect()
                });
            (h, kk, t, exclude, allowed)
        };
        let filter = |i: u32| {
            allowed
                .as_ref()
                .is_none_or(|a| a.get(i as usize).copied().unwrap_or(false))
        };
        let known_user = ((user as usize) < generation.trained_users).then_some(user);
        let list = scored(
            generation,
            &Query {
                user: known_user,
                history: &history,
                kinds: &kinds,
                times_ms: &times,
            },
            pool_size(k),
            &RecOptions {
                exclude: &exclude,
                filter: allowed
                    .is_some()
                    .then_some(&filter as &(dyn Fn(u32) -> bool + Sync)),
            },
        );
        let audience = Audience {
            user: Some(user),
            session: None,
        };
        let (shown, served) = self.serve(surface, audience, list, k, true);
        (
            self.listing(&shown, &history, explain, "because you chose"),
            served,
        )
    }

    fn recommend_from_items(
        &self,
        surface: &str,
        audience: Audience,
        history: &[u32],
        k: usize,
        verb: &str,
    ) -> (Vec<Recommended>, ServedList) {
        let generation = self.generation();
        let list = scored(
            &generation,
            &Query {
                history,
                ..Query::default()
            },
            pool_size(k),
            &RecOptions {
                exclude: history,
                filter: None,
            },
        );
        let (shown, served) = self.serve(surface, audience, list, k, true);
        (self.listing(&shown, history, true, verb), served)
    }

    fn items_named(&self, names: &[String]) -> Result<Vec<u32>> {
        names.iter().map(|n| self.item_id(n)).collect()
    }

    /// Top items for a user, from their history as of now.
    pub fn recommend(&self, p: &RecommendParams) -> Result<UserRecommendations> {
        let k = check_k(p.k)?;
        check_category(p.category.as_deref())?;
        let user = self.user_id(&p.user)?;
        // One generation for the whole answer: the version it names is the one that ranked.
        let generation = self.generation();
        let want = Wanted {
            k,
            exclude_bought: p.exclude_bought,
            category: p.category.as_deref(),
            avoid_categories: None,
            explain: p.explain,
        };
        let (items, served) = self.for_user("recommend", &generation, user, &want);
        Ok(UserRecommendations {
            user: p.user.clone(),
            model: generation.model_name.clone(),
            model_version: generation.version,
            served,
            items,
        })
    }

    /// Top items for an anonymous session, by its id, its items or both; with neither (or a
    /// session without events yet) the model's answer for a new visitor.
    pub fn recommend_session(
        &self,
        k: &KParam,
        body: &SessionIn,
    ) -> Result<SessionRecommendations> {
        let k = check_k(k.k)?;
        body.check()?;
        let mut history: Vec<u32> = Vec::new();
        let mut audience = Audience::default();
        if let Some(s) = &body.session {
            let key = aisle_store::session_id(s).0;
            audience.session = Some(aisle_core::SessionId(key));
            let live = self.live();
            let positions = live.session_positions(key);
            history.extend(live.history_of(&positions).0);
        }
        history.extend(self.items_named(body.items.as_deref().unwrap_or_default())?);
        let (items, served) =
            self.recommend_from_items("session", audience, &history, k, "you viewed");
        Ok(SessionRecommendations {
            session: body.session.clone(),
            served,
            items,
        })
    }

    /// Items that go with a cart.
    pub fn recommend_cart(&self, k: &KParam, body: &CartIn) -> Result<CartRecommendations> {
        let k = check_k(k.k)?;
        body.check()?;
        let cart = self.items_named(&body.items)?;
        let (items, served) =
            self.recommend_from_items("cart", Audience::default(), &cart, k, "goes with");
        Ok(CartRecommendations {
            cart: body.items.clone(),
            served,
            items,
        })
    }

    /// Top items for a user from categories they have not used.
    pub fn cross_category(&self, p: &UserK) -> Result<CrossCategory> {
        let k = check_k(p.k)?;
        let user = self.user_id(&p.user)?;
        let used: Vec<String> = {
            let live = self.live();
            let mut seen = std::collections::BTreeSet::new();
            for &pos in live
                .by_user
                .get(user as usize)
                .map_or(&[][..], Vec::as_slice)
            {
                let e = &live.events[pos as usize];
                if let Some(Some(item)) = live.items.get(e.item as usize)
                    && let Some(c) = item.category.first()
                {
                    seen.insert(c.clone());
                }
            }
            seen.into_iter().collect()
        };
        let want = Wanted {
            k,
            exclude_bought: true,
            category: None,
            avoid_categories: Some(&used),
            explain: true,
        };
        let (items, served) = self.for_user("cross-category", &self.generation(), user, &want);
        Ok(CrossCategory {
            user: p.user.clone(),
            categories_used: used,
            served,
            items,
        })
    }

    /// Items gaining interest now (time-decayed counts of views, carts and purchases).
    pub fn trending(&self, p: &TrendingParams) -> Result<Trending> {
        let k = check_k(p.k)?;
        check_category(p.category.as_deref())?;
        let ranked: Vec<Scored> = {
            let live = self.live();
            live.trending(self.clock_ms(), DAY_MS, 14 * DAY_MS)
                .into_iter()
                .filter(|&(id, _)| {
                    live.items
                        .get(id as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|item| {
                            p.category.as_ref().is_none_or(|c| has_category(item, c))
                        })
                })
                .take(k)
                .map(|(item, score)| Scored { item, score })
                .collect()
        };
        let (shown, served) = self.serve("trending", Audience::default(), ranked, k, false);
        let live = self.live();
        let items = shown
            .into_iter()
            .filter_map(|s| {
                let item = live.items.get(s.scored.item as usize)?.as_ref()?;
                Some(TrendingItem {
                    id: item.external_id.clone(),
                    title: item.title.clone(),
                    category: item.category.clone(),
                    score: s.scored.score,
                    propensity: s.propensity,
                    why: "many recent views, carts and purchases".into(),
                })
            })
            .collect();
        Ok(Trending { served, items })
    }

    /// An item with the items similar to it.
    pub fn item_page(&self, id: &str, k: &KParam) -> Result<ItemPage> {
        let k = check_k(k.k)?;
        let dense = self.item_id(id)?;
        let item = self
            .live()
            .items
            .get(dense as usize)
            .and_then(Option::as_ref)
            .map(summary)
            .ok_or_else(|| {
                EngineError::not_found(format!("item {id:?} is not in the catalogue"))
            })?;
        let generation = self.generation();
        let list = if (dense as usize) < generation.n_items() {
            Recommender::similar_items(&generation.model, dense, pool_size(k))
        } else {
            Vec::new()
        };
        let (shown, served) = self.serve("similar", Audience::default(), list, k, true);
        let similar = self.listing(&shown, &[dense], true, "shoppers who chose");
        Ok(ItemPage {
            item,
            served,
            similar,
        })
    }

    /// Searches the catalogue, personalised for the user; the search is logged as an event.
    pub fn search(&self, p: &SearchParams) -> Result<SearchResults> {
        let filters = p.check()?;
        let filter =
            Filter::parse_all(&filters).map_err(|e| EngineError::bad_request(e.to_string()))?;
        let user = p.user.as_deref().map(|u| self.user_id(u)).transpose()?;
        let request = SearchRequest {
            query: p.q.clone(),
            filter,
            limit: p.limit,
            offset: p.offset,
            mode: p.mode.map(|m| match m {
                ModeIn::Lexical => SearchMode::Lexical,
                ModeIn::Semantic => SearchMode::Semantic,
                ModeIn::Hybrid => SearchMode::Hybrid,
            }),
            typing: true,
            personalise: true,
        };
        let engine_guard = read(&self.shared.search);
        let Some(engine) = engine_guard.as_ref() else {
            return Err(EngineError::unavailable(
                "search is not set up on this server: run aisle index on the data directory",
            ));
        };
        let generation = self.generation();
        let (events, items): (Vec<(ItemId, EventKind, i64)>, Vec<u32>) = {
            let live = self.live();
            let positions = user
                .and_then(|u| live.by_user.get(u as usize).cloned())
                .unwrap_or_default();
            let events = positions
                .iter()
                .map(|&p| live.events[p as usize])
                .filter(|e| e.item != NO_ITEM)
                .map(|e| (ItemId(e.item), e.kind, e.timestamp_ms))
                .collect();
            (events, live.history_of(&positions).0)
        };
        let profile = BehaviourProfile::from_events(events.iter().copied(), |id| engine.item(id));
        let scores = (user.is_some() && engine.ranker().is_some()).then(|| {
            let n = generation.n_items() as u32;
            let h: Vec<u32> = items.into_iter().filter(|&i| i < n).collect();
            let mut s = vec![0f32; generation.n_items()];
            Recommender::score(
                &generation.model,
                &Query {
                    user: user.filter(|&u| (u as usize) < generation.trained_users),
                    history: &h,
                    ..Default::default()
                },
                &mut s,
            );
            s
        });
        let now = self.clock_ms();
        let ctx = RankingContext {
            profile: user.map(|_| &profile),
            recommender_scores: scores.as_deref(),
            now_ms: now,
        };
        let started = std::time::Instant::now();
        let response = engine
            .search(&request, &ctx)
            .map_err(|e| EngineError::bad_request(e.to_string()))?;
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        let page: Vec<Scored> = response
            .hits
            .iter()
            .map(|h| Scored {
                item: h.item.0,
                score: h.score,
            })
            .collect();
        let audience = Audience {
            user,
            session: None,
        };
        let (shown, served) = self.serve("search", audience, page, response.hits.len(), false);
        let hits: Vec<SearchHit> = shown
            .iter()
            .filter_map(|s| {
                let h = response.hits.iter().find(|h| h.item.0 == s.scored.item)?;
                let item = engine.item(h.item)?;
                Some(SearchHit {
                    id: item.external_id.clone(),
                    title: item.title.clone(),
                    category: item.category.clone(),
                    brand: item.brand.clone(),
                    price: item.price,
                    score: h.score,
                    propensity: s.propensity,
                    why: h.reasons.clone(),
                })
            })
            .collect();
        let counts = |list: &[(String, usize)]| -> Vec<FacetCount> {
            list.iter()
                .map(|(value, count)| FacetCount {
                    value: value.clone(),
                    count: *count,
                })
                .collect()
        };
        let facets = SearchFacets {
            departments: counts(&response.facets.departments),
            categories: counts(&response.facets.categories),
            brands: counts(&response.facets.brands),
        };
        write(&self.shared.live).count_query(&request.query, response.total == 0);
        if !request.query.trim().is_empty() {
            let who = user.map_or_else(|| "anonymous".to_string(), |u| self.shared.user_name(u));
            let mut event = RawEvent::new(who, None, "search", now);
            event.payload.query = Some(request.query.clone());
            event.payload.results = hits.iter().map(|h| h.id.clone()).collect();
            let logged = self.writer.submit(Change::Events {
                events: vec![event],
                key: None,
            });
            if !logged {
                self.shared.counters.search_log_dropped.inc();
            }
        }
        Ok(SearchResults {
            query: request.query,
            total: response.total,
            mode: response.mode.map(|m| {
                match m {
                    SearchMode::Lexical => "lexical",
                    SearchMode::Semantic => "semantic",
                    SearchMode::Hybrid => "hybrid",
                }
                .to_string()
            }),
            personalised: response.personalised,
            took_ms,
            served,
            hits,
            facets,
            notes: response.notes,
        })
    }

    /// What the user's next order will likely hold.
    pub fn predict_purchase(&self, p: &UserK) -> Result<PurchasePrediction> {
        let k = check_k(p.k)?;
        let user = self.user_id(&p.user)?;
        let generation = self.generation();
        let preds = &generation.predictions;
        let live = self.live();
        let products: Vec<ProductChance> = preds
            .products
            .get(&user)
            .map(|list| {
                list.iter()
                    .take(k)
                    .map(|c| ProductChance {
                        item: live
                            .items
                            .get(c.subject as usize)
                            .and_then(Option::as_ref)
                            .map(summary),
                        probability: c.probability,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let departments: Vec<DepartmentChance> = preds
            .departments
            .get(&user)
            .map(|list| {
                list.iter()
                    .take(k)
                    .map(|c| DepartmentChance {
                        department: preds.department_names.get(c.subject as usize).cloned(),
                        probability: c.probability,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let importance = |m: &Option<aisle_analytics::propensity::Propensity>| {
            m.as_ref().map(|m| {
                m.importance()
                    .into_iter()
                    .take(5)
                    .map(|(feature, share)| FeatureShare {
                        feature: feature.to_string(),
                        share,
                    })
                    .collect()
            })
        };
        let notes = if products.is_empty() {
            vec![
                "this user has fewer than two orders (as of the last training): too little history"
                    .to_string(),
            ]
        } else {
            preds.notes.clone()
        };
        Ok(PurchasePrediction {
            user: p.user.clone(),
            model_version: generation.version,
            products,
            departments,
            importance: PurchaseImportance {
                products: importance(&preds.reorder),
                departments: importance(&preds.groups),
            },
            notes,
        })
    }

    /// P(alive) and expected purchases in 4 weeks (BG/NBD).
    pub fn predict_churn(&self, p: &UserParam) -> Result<ChurnPrediction> {
        let user = self.user_id(&p.user)?;
        let generation = self.generation();
        let preds = &generation.predictions;
        let Some(fit) = &preds.bgnbd else {
            return Err(EngineError::unavailable(format!(
                "no churn model: {}",
                preds.notes.join("; ")
            )));
        };
        let (p_alive, expected) = preds.churn.get(&user).copied().ok_or_else(|| {
            EngineError::not_found(format!(
                "user {:?} had no purchase when the model was trained",
                p.user
            ))
        })?;
        Ok(ChurnPrediction {
            user: p.user.clone(),
            model: "bgnbd".into(),
            p_alive,
            expected_purchases_4_weeks: expected,
            parameters: BgNbdParameters {
                r: fit.r,
                alpha: fit.alpha,
                a: fit.a,
                b: fit.b,
            },
        })
    }

    /// Users a promotion should reach, most likely buyers first.
    pub fn promote(&self, body: &PromoIn, p: &PromoParams) -> Result<Promotion> {
        body.check()?;
        p.check()?;
        let promoted: Vec<u32> = match body {
            PromoIn::Category(c) => {
                let live = self.live();
                live.items
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.as_ref().is_some_and(|i| has_category(i, &c.category)))
                    .map(|(id, _)| id as u32)
                    .collect()
            }
            PromoIn::Items(i) => self.items_named(&i.items)?,
        };
        if promoted.is_empty() {
            return Err(EngineError::not_found("no item matches the promotion"));
        }
        let generation = self.generation();
        let (Some(model), Some(log)) =
            (&generation.predictions.groups, &generation.predictions.log)
        else {
            return Err(EngineError::unavailable(format!(
                "no purchase model: {}",
                generation.predictions.notes.join("; ")
            )));
        };
        let ranked = model
            .promotion_targets(log, &promoted, 3)
            .map_err(|e| EngineError::bad_request(e.to_string()))?;
        let expected = aisle_analytics::propensity::expected_buyers(&ranked, p.k);
        Ok(Promotion {
            users_scored: ranked.len(),
            k: p.k,
            expected_buyers_in_top_k: expected,
            targets: ranked
                .iter()
                .take(p.top)
                .map(|t| PromoTarget {
                    user: self.shared.user_name(t.user),
                    probability: t.probability,
                    because: t
                        .because
                        .iter()
                        .map(|c| Contribution {
                            feature: c.feature.to_string(),
                            value: c.value,
                            log_odds: c.log_odds,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// Why an item is recommended to a user.
    pub fn explain(&self, p: &ExplainParams) -> Result<Explanation> {
        let user = self.user_id(&p.user)?;
        let item = self.item_id(&p.item)?;
        let generation = self.generation();
        let (history, kinds, times) = {
            let live = self.live();
            let positions = live.by_user.get(user as usize).cloned().unwrap_or_default();
            live.history_of(&positions)
        };
        let mut rank = None;
        if (item as usize) < generation.n_items() {
            let all = scored(
                &generation,
                &Query {
                    user: ((user as usize) < generation.trained_users).then_some(user),
                    history: &history,
                    kinds: &kinds,
                    times_ms: &times,
                },
                generation.n_items(),
                &RecOptions::default(),
            );
            rank = all.iter().position(|s| s.item == item).map(|r| r + 1);
        }
        let listing = self.listing(
            &[Shown {
                scored: Scored { item, score: 0.0 },
                propensity: 1.0,
                model_rank: rank.map_or(0, |r| r - 1),
                explored: false,
            }],
            &history,
            true,
            "because you chose",
        );
        Ok(Explanation {
            model: generation.model_name.clone(),
            rank_for_user: rank,
            history_items: history.len(),
            item: listing.into_iter().next(),
        })
    }

    /// Funnel, cohorts, RFM segments and best sellers, as of the last training: exact for
    /// an admin (`exact`), otherwise with differential privacy through the budget ledger
    /// (`actor` names the caller's role in the audit log).
    pub fn analytics(&self, exact: bool, actor: &str) -> Result<Analytics> {
        let generation = self.generation();
        if exact {
            return Ok(Analytics {
                as_of_model_version: generation.version,
                analytics: generation.analytics.clone(),
                privacy: None,
            });
        }
        self.shared.privacy.analytics(
            &generation,
            self.shared.store.as_ref(),
            self.clock_ms(),
            actor,
        )
    }

    /// Records an action in the audit log (no-op without a data directory).
    pub fn audit(&self, actor: &str, action: &str, detail: serde_json::Value) {
        self.shared
            .privacy
            .audit(self.clock_ms(), actor, action, detail);
    }

    fn sample_users_in(&self, live: &Live) -> Vec<String> {
        live.by_user
            .iter()
            .enumerate()
            .filter(|(_, events)| events.len() >= 10)
            .take(8)
            .map(|(u, _)| self.shared.user_name(u as u32))
            .collect()
    }

    /// A few shoppers with history, for the storefront's shopper picker.
    pub fn shoppers(&self) -> Shoppers {
        Shoppers {
            users: self.sample_users_in(&self.live()),
        }
    }

    /// Live stream, counts, models, leaderboard and search analytics.
    ///
    /// For every caller but an admin (`exact` false) the analytics are the private ones (a
    /// spent budget leaves them empty, with the reason in `notes`), and the live stream,
    /// the search terms and the sample shoppers are withheld: they are individual events,
    /// free text and ids, which no noise can make safe to show.
    pub fn dashboard(&self, exact: bool, actor: &str) -> Dashboard {
        let mut dashboard = self.exact_dashboard();
        if exact {
            return dashboard;
        }
        match self.analytics(false, actor) {
            Ok(private) => {
                dashboard.analytics = private.analytics;
                dashboard.privacy = private.privacy;
            }
            Err(e) => {
                dashboard.analytics = crate::answers::AnalyticsSummary::default();
                dashboard.notes.push(e.message);
            }
        }
        dashboard.feed.clear();
        dashboard.search.top_queries = match self.shared.privacy.top_searches(
            &self.generation(),
            self.shared.store.as_ref(),
            self.clock_ms(),
            actor,
        ) {
            Ok(top) => top,
            Err(e) => {
                dashboard.notes.push(e.message);
                Vec::new()
            }
        };
        dashboard.search.zero_result_queries.clear();
        dashboard.sample_users.clear();
        dashboard.withheld = Some(
            "the live event stream, zero-result queries and shopper ids are shown to admin keys only; analytics and top searches are differentially private (top searches count distinct searchers, and a query few people searched is never shown)".into(),
        );
        dashboard
    }

    fn exact_dashboard(&self) -> Dashboard {
        let generation = self.generation();
        let live = self.live();
        let counts = self.shared.store.counts().unwrap_or_default();
        let mut queries: Vec<(&String, &crate::live::QueryStats)> = live.queries.iter().collect();
        queries.sort_by(|a, b| b.1.searches.cmp(&a.1.searches).then(a.0.cmp(b.0)));
        let leaderboard = self.config.data_dir.as_ref().and_then(|dir| {
            let text = std::fs::read_to_string(dir.join("eval").join("leaderboard.json")).ok()?;
            serde_json::from_str(&text).ok()
        });
        Dashboard {
            policy: self.policy_status(),
            counts: Counts {
                users: counts.users,
                items: counts.items,
                events: counts.events,
                ingested_since_start: live.ingested,
            },
            feed: live.feed.iter().rev().cloned().collect(),
            model: ModelInfo {
                name: generation.model_name.clone(),
                version: generation.version,
                trained_at_ms: generation.trained_at_ms,
                train_seconds: generation.train_seconds,
                trained_events: generation.trained_events,
            },
            analytics: generation.analytics.clone(),
            leaderboard,
            search: SearchStats {
                top_queries: queries
                    .iter()
                    .take(10)
                    .map(|(q, s)| QueryCount {
                        query: (*q).clone(),
                        searches: s.searches,
                        zero_results: Some(s.zero_results),
                    })
                    .collect(),
                zero_result_queries: queries
                    .iter()
                    .filter(|q| q.1.zero_results > 0)
                    .map(|q| q.0.clone())
                    .take(10)
                    .collect(),
            },
            notes: generation.predictions.notes.clone(),
            memory: Memory {
                live_events: live.events.len(),
                live_sessions: live.by_session.len(),
                tracked_queries: live.queries.len(),
                rate_limited_callers: 0,
            },
            sample_users: self.sample_users_in(&live),
            privacy: None,
            withheld: None,
        }
    }
}
