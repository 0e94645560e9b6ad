//! `aisle serve`: the HTTP API over one data directory.
//!
//! * Writes go through one writer thread ([`ingest`]) that groups concurrent events into one
//!   durable commit; a request is answered only after its commit, so an acknowledged event
//!   survives a crash.
//! * Every acknowledged event is added at once to the live log ([`state::Live`]), from which
//!   recommendations and search re-ranking read the shopper's history: no retraining needed
//!   for an event to count.
//! * Models are trained in generations ([`state::Served`]); a retrain builds a new
//!   generation in the background and swaps it in with one pointer store, so no request
//!   ever sees a half-built model.
//! * [`api::ROUTES`] lists every route once; the router, the key checks and /openapi.json
//!   all come from it.

pub mod api;
pub mod auth;
pub mod config;
mod handlers;
pub mod ingest;
pub mod metrics;
pub mod state;
mod web;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use aisle_core::{EventKind, Item, ItemId, RawEvent};
use aisle_features::{Interaction, NO_ITEM};
use aisle_models::{Query, RecOptions};
use aisle_search::{BehaviourProfile, SearchEngine, SearchRequest};
use aisle_store::Store;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::auth::{Keys, RateLimiter};
pub use crate::config::ServerConfig;
pub use crate::handlers::{EventRules, parse_events, parse_items};
use crate::ingest::{Change, Writer, WriterThread};
use crate::metrics::Metrics;
use crate::state::{FeedEntry, Live, Served};

/// Everything a request can reach.
pub struct App {
    /// Settings.
    pub config: ServerConfig,
    /// The data directory (for the leaderboard and other files).
    pub data_dir: PathBuf,
    store: Arc<dyn Store>,
    writer: Writer,
    live: RwLock<Live>,
    served: RwLock<Arc<Served>>,
    search: RwLock<Option<SearchEngine>>,
    keys: Keys,
    limiter: RateLimiter,
    /// Prometheus metrics.
    pub metrics: Metrics,
    retraining: AtomicBool,
    fail_next_retrain: AtomicBool,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl App {
    /// Loads the live log, trains the first generation and starts the writer.
    pub fn start(
        config: ServerConfig,
        data_dir: PathBuf,
        store: Arc<dyn Store>,
        search: Option<SearchEngine>,
    ) -> Result<(Arc<App>, WriterThread), String> {
        let live = Live::load(store.as_ref(), state::LiveLimits::of(&config))
            .map_err(|e| e.to_string())?;
        let served = state::train(store.as_ref(), &config.model, 1)?;
        let (writer, thread) = ingest::start(store.clone(), config.write_queue);
        let metrics = Metrics::new();
        metrics.model_version.set(1);
        metrics
            .last_train_ms
            .set((served.train_seconds * 1000.0) as i64);
        let app = App {
            keys: Keys::new(config.keys_with_demo()),
            limiter: RateLimiter::with_capacity(
                config.rate_limit_per_second,
                config.max_rate_limited_callers,
            ),
            config,
            data_dir,
            store,
            writer,
            live: RwLock::new(live),
            served: RwLock::new(Arc::new(served)),
            search: RwLock::new(search),
            metrics,
            retraining: AtomicBool::new(false),
            fail_next_retrain: AtomicBool::new(false),
        };
        Ok((Arc::new(app), thread))
    }

    /// Makes the next retrain fail with a panic, as a bug would (for tests of the recovery).
    #[doc(hidden)]
    pub fn inject_retrain_failure(&self) {
        self.fail_next_retrain.store(true, Ordering::SeqCst);
    }

    /// The generation being served.
    pub fn served(&self) -> Arc<Served> {
        read(&self.served).clone()
    }

    /// Trains a new generation and swaps it in; the old one keeps serving until then. A
    /// failure, a panic included, is logged and counted, and the next retrain runs as usual.
    pub fn retrain_now(&self) {
        /// Clears the "retraining" flag however this function ends.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _done = Done(&self.retraining);
        let version = self.served().version + 1;
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if self.fail_next_retrain.swap(false, Ordering::SeqCst) {
                panic!("a failure injected on purpose");
            }
            state::train(self.store.as_ref(), &self.config.model, version)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(format!("training panicked: {what}"))
        });
        match attempt {
            Ok(next) => {
                self.metrics
                    .last_train_ms
                    .set((next.train_seconds * 1000.0) as i64);
                self.metrics.model_version.set(version as i64);
                tracing::info!(version, seconds = next.train_seconds, "new models serving");
                *write(&self.served) = Arc::new(next);
            }
            Err(e) => {
                self.metrics.retrain_failures.inc();
                tracing::error!(error = %e, "retraining failed; the previous models stay");
            }
        }
    }

    fn custom_kinds(&self) -> Vec<String> {
        self.store.custom_kinds().unwrap_or_default()
    }

    fn user_id(&self, external: &str) -> Option<u32> {
        self.store.user_id(external).ok().flatten().map(|u| u.0)
    }

    fn item_id(&self, external: &str) -> Option<u32> {
        self.store.item_id(external).ok().flatten().map(|i| i.0)
    }

    fn user_name(&self, user: u32) -> String {
        self.store
            .user(aisle_core::UserId(user))
            .ok()
            .flatten()
            .map_or_else(|| format!("#{user}"), |u| u.external_id)
    }

    /// Adds acknowledged events to the live log.
    fn absorb(&self, events: &[RawEvent]) {
        let custom = self.custom_kinds();
        let mut live = write(&self.live);
        for raw in events {
            let Some(user) = self.user_id(&raw.user) else {
                continue;
            };
            let item = raw.item.as_deref().and_then(|i| self.item_id(i));
            let kind = EventKind::parse_builtin(&raw.kind).unwrap_or_else(|| {
                EventKind::Custom(custom.iter().position(|k| *k == raw.kind).unwrap_or(0) as u16)
            });
            live.push(Interaction {
                user,
                item: item.unwrap_or(NO_ITEM),
                kind,
                timestamp_ms: raw.timestamp_ms,
                session: raw
                    .session
                    .as_deref()
                    .map_or(0, |s| aisle_store::session_id(s).0),
                value: raw.payload.value.or(raw.payload.quantity).unwrap_or(0.0),
            });
            let title = item.and_then(|i| {
                live.items
                    .get(i as usize)
                    .cloned()
                    .flatten()
                    .map(|x| x.title)
            });
            live.announce(FeedEntry {
                user: raw.user.clone(),
                kind: raw.kind.clone(),
                item: raw.item.clone(),
                title,
                timestamp_ms: raw.timestamp_ms,
            });
            live.ingested += 1;
        }
    }

    fn absorb_items(&self, items: Vec<Item>) -> Result<(), String> {
        let mut with_ids = Vec::new();
        {
            let mut live = write(&self.live);
            for item in items {
                let Some(id) = self.item_id(&item.external_id) else {
                    continue;
                };
                if live.items.len() <= id as usize {
                    live.items.resize(id as usize + 1, None);
                }
                live.items[id as usize] = Some(item.clone());
                with_ids.push((ItemId(id), item));
            }
        }
        if let Some(engine) = write(&self.search).as_mut() {
            engine.upsert_items(with_ids).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn forget_item(&self, external: &str) -> Result<(), String> {
        let Some(id) = self.item_id(external) else {
            return Ok(());
        };
        if let Some(slot) = write(&self.live).items.get_mut(id as usize) {
            *slot = None;
        }
        if let Some(engine) = write(&self.search).as_mut() {
            engine
                .delete_items(&[ItemId(id)])
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn forget_user_live(&self, user: u32) {
        let mut live = write(&self.live);
        let positions = live
            .by_user
            .get_mut(user as usize)
            .map(std::mem::take)
            .unwrap_or_default();
        // The events stay in the vector (positions elsewhere point into it) but lose their
        // user and item, so nothing can be learnt from them any more.
        for p in positions {
            let e = &mut live.events[p as usize];
            e.item = NO_ITEM;
            e.kind = EventKind::Search;
            e.user = u32::MAX;
        }
        live.drop_user_evidence(user);
        live.feed.clear();
    }

    fn session_items(&self, external: &str) -> Vec<u32> {
        let key = aisle_store::session_id(external).0;
        let live = read(&self.live);
        let positions = live.session_positions(key);
        live.history_of(&positions).0
    }

    fn categories_of(&self, user: u32) -> Vec<String> {
        let live = read(&self.live);
        let mut seen = std::collections::BTreeSet::new();
        if let Some(positions) = live.by_user.get(user as usize) {
            for &p in positions {
                let e = &live.events[p as usize];
                if let Some(Some(item)) = live.items.get(e.item as usize)
                    && let Some(c) = item.category.first()
                {
                    seen.insert(c.clone());
                }
            }
        }
        seen.into_iter().collect()
    }

    fn item_json(&self, id: u32) -> Option<Value> {
        let live = read(&self.live);
        let item = live.items.get(id as usize)?.as_ref()?;
        Some(json!({
            "id": item.external_id, "title": item.title, "category": item.category,
            "brand": item.brand, "price": item.price,
        }))
    }

    fn items_in_category(&self, category: &str) -> Vec<u32> {
        let live = read(&self.live);
        live.items
            .iter()
            .enumerate()
            .filter(|(_, i)| {
                i.as_ref()
                    .is_some_and(|i| i.category.iter().any(|c| c.eq_ignore_ascii_case(category)))
            })
            .map(|(id, _)| id as u32)
            .collect()
    }

    fn listing(
        &self,
        scored: &[aisle_models::Scored],
        history: &[u32],
        explain: bool,
        verb: &str,
    ) -> Vec<Value> {
        let live = read(&self.live);
        let items: Vec<u32> = scored.iter().map(|s| s.item).collect();
        let reasons = if explain && !history.is_empty() {
            // The 50 most recent distinct items are the evidence: recent taste explains best,
            // and it bounds the work per request.
            let mut recent: Vec<u32> = Vec::new();
            for &h in history.iter().rev() {
                if !recent.contains(&h) {
                    recent.push(h);
                    if recent.len() == 50 {
                        break;
                    }
                }
            }
            handlers::reasons(&live, &recent, &items)
        } else {
            vec![Vec::new(); items.len()]
        };
        let title = |id: u32| {
            live.items
                .get(id as usize)
                .and_then(Option::as_ref)
                .map(|i| (i.external_id.clone(), i.title.clone()))
        };
        scored
            .iter()
            .zip(reasons)
            .filter_map(|(s, why)| {
                let item = live.items.get(s.item as usize)?.as_ref()?;
                let because: Vec<Value> = why
                    .iter()
                    .filter_map(|b| {
                        let (id, t) = title(b.item)?;
                        Some(json!({"id": id, "title": t, "shared_users": b.shared_users, "similarity": b.similarity}))
                    })
                    .collect();
                let text = match because.first() {
                    Some(b) => format!(
                        "{verb} {} ({} shoppers chose both)",
                        b["title"].as_str().unwrap_or_default(),
                        b["shared_users"]
                    ),
                    None => "popular with shoppers".to_string(),
                };
                Some(json!({
                    "id": item.external_id, "title": item.title, "category": item.category,
                    "price": item.price, "score": s.score, "because": because, "why": text,
                }))
            })
            .collect()
    }

    fn recommend_for_user(
        &self,
        user: u32,
        k: usize,
        exclude_bought: bool,
        category: Option<&str>,
        avoid_categories: Option<&[String]>,
        explain: bool,
    ) -> Vec<Value> {
        let served = self.served();
        let (history, kinds, times, exclude, allowed) = {
            let live = read(&self.live);
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
                                category.is_none_or(|c| {
                                    i.category.iter().any(|x| x.eq_ignore_ascii_case(c))
                                }) && avoid_categories.is_none_or(|avoid| {
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
        let known_user = ((user as usize) < served.trained_users).then_some(user);
        let scored = handlers::scored(
            &served.model,
            &Query {
                user: known_user,
                history: &history,
                kinds: &kinds,
                times_ms: &times,
            },
            k,
            &RecOptions {
                exclude: &exclude,
                filter: allowed
                    .is_some()
                    .then_some(&filter as &(dyn Fn(u32) -> bool + Sync)),
            },
        );
        self.listing(&scored, &history, explain, "because you chose")
    }

    fn recommend_from_items(&self, history: &[u32], k: usize, verb: &str) -> Vec<Value> {
        let served = self.served();
        let scored = handlers::scored(
            &served.model,
            &Query {
                history,
                ..Query::default()
            },
            k,
            &RecOptions {
                exclude: history,
                filter: None,
            },
        );
        self.listing(&scored, history, true, verb)
    }

    fn similar(&self, item: u32, k: usize) -> Vec<Value> {
        let served = self.served();
        if item as usize >= served.n_items() {
            return Vec::new();
        }
        let scored = aisle_models::Recommender::similar_items(&served.model, item, k);
        self.listing(&scored, &[item], true, "shoppers who chose")
    }

    fn trending(&self, k: usize, category: Option<&str>) -> Vec<Value> {
        let live = read(&self.live);
        let list = live.trending(crate::now_ms(), 86_400_000, 14 * 86_400_000);
        list.into_iter()
            .filter_map(|(id, score)| {
                let item = live.items.get(id as usize)?.as_ref()?;
                if let Some(c) = category
                    && !item.category.iter().any(|x| x.eq_ignore_ascii_case(c))
                {
                    return None;
                }
                Some(json!({"id": item.external_id, "title": item.title, "category": item.category, "score": score,
                            "why": "many recent views, carts and purchases"}))
            })
            .take(k)
            .collect()
    }

    fn search(&self, request: &SearchRequest, user: Option<u32>) -> Result<Value, ApiError> {
        let engine_guard = read(&self.search);
        let Some(engine) = engine_guard.as_ref() else {
            return Err(ApiError::unavailable(
                "search is not set up on this server: run aisle index on the data directory",
            ));
        };
        let served = self.served();
        let (events, items): (Vec<(ItemId, EventKind, i64)>, Vec<u32>) = {
            let live = read(&self.live);
            let positions = user
                .and_then(|u| live.by_user.get(u as usize).cloned())
                .unwrap_or_default();
            let events: Vec<(ItemId, EventKind, i64)> = positions
                .iter()
                .map(|&p| live.events[p as usize])
                .filter(|e| e.item != NO_ITEM)
                .map(|e| (ItemId(e.item), e.kind, e.timestamp_ms))
                .collect();
            let items = live.history_of(&positions).0;
            (events, items)
        };
        let profile = BehaviourProfile::from_events(events.iter().copied(), |id| engine.item(id));
        let scores = (user.is_some() && engine.ranker().is_some()).then(|| {
            let n = served.n_items() as u32;
            let h: Vec<u32> = items.into_iter().filter(|&i| i < n).collect();
            let mut s = vec![0f32; served.n_items()];
            aisle_models::Recommender::score(
                &served.model,
                &aisle_models::Query {
                    user: user.filter(|&u| (u as usize) < served.trained_users),
                    history: &h,
                    ..Default::default()
                },
                &mut s,
            );
            s
        });
        let now = crate::now_ms();
        let ctx = aisle_search::RankingContext {
            profile: user.map(|_| &profile),
            recommender_scores: scores.as_deref(),
            now_ms: now,
        };
        let started = std::time::Instant::now();
        let response = engine
            .search(request, &ctx)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        let hits: Vec<Value> = response
            .hits
            .iter()
            .filter_map(|h| {
                let item = engine.item(h.item)?;
                Some(json!({
                    "id": item.external_id, "title": item.title, "category": item.category,
                    "brand": item.brand, "price": item.price, "score": h.score, "why": h.reasons,
                }))
            })
            .collect();
        let shown: Vec<String> = hits
            .iter()
            .filter_map(|h| h["id"].as_str().map(str::to_string))
            .collect();
        write(&self.live).count_query(&request.query, response.total == 0);
        if !request.query.trim().is_empty() {
            let who = user.map_or_else(|| "anonymous".to_string(), |u| self.user_name(u));
            let mut event = RawEvent::new(who, None, "search", now);
            event.payload.query = Some(request.query.clone());
            event.payload.results = shown;
            if !self.writer.submit(Change::Events(vec![event])) {
                self.metrics.search_log_dropped.inc();
            }
        }
        Ok(json!({
            "query": request.query,
            "total": response.total,
            "mode": response.mode,
            "personalised": response.personalised,
            "took_ms": took_ms,
            "hits": hits,
            "facets": response.facets,
            "notes": response.notes,
        }))
    }

    fn explain(&self, user: u32, item: u32) -> Value {
        let served = self.served();
        let (history, kinds, times) = {
            let live = read(&self.live);
            let positions = live.by_user.get(user as usize).cloned().unwrap_or_default();
            live.history_of(&positions)
        };
        let mut rank = None;
        if (item as usize) < served.n_items() {
            let all = handlers::scored(
                &served.model,
                &Query {
                    user: ((user as usize) < served.trained_users).then_some(user),
                    history: &history,
                    kinds: &kinds,
                    times_ms: &times,
                },
                served.n_items(),
                &RecOptions::default(),
            );
            rank = all.iter().position(|s| s.item == item).map(|r| r + 1);
        }
        let listing = self.listing(
            &[aisle_models::Scored { item, score: 0.0 }],
            &history,
            true,
            "because you chose",
        );
        json!({
            "model": served.model_name,
            "rank_for_user": rank,
            "history_items": history.len(),
            "item": listing.first(),
        })
    }

    /// A few shoppers with history, for the storefront's shopper picker.
    fn sample_users(&self) -> Vec<String> {
        self.sample_users_in(&read(&self.live))
    }

    fn sample_users_in(&self, live: &Live) -> Vec<String> {
        live.by_user
            .iter()
            .enumerate()
            .filter(|(_, events)| events.len() >= 10)
            .take(8)
            .map(|(u, _)| self.user_name(u as u32))
            .collect()
    }

    fn dashboard(&self) -> Value {
        let served = self.served();
        let live = read(&self.live);
        let counts = self.store.counts().unwrap_or_default();
        let mut queries: Vec<(&String, &state::QueryStats)> = live.queries.iter().collect();
        queries.sort_by(|a, b| b.1.searches.cmp(&a.1.searches).then(a.0.cmp(b.0)));
        let zero: Vec<&String> = queries
            .iter()
            .filter(|q| q.1.zero_results > 0)
            .map(|q| q.0)
            .take(10)
            .collect();
        let leaderboard =
            std::fs::read_to_string(self.data_dir.join("eval").join("leaderboard.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        json!({
            "counts": {"users": counts.users, "items": counts.items, "events": counts.events,
                       "ingested_since_start": live.ingested},
            "feed": live.feed.iter().rev().collect::<Vec<_>>(),
            "model": {"name": served.model_name, "version": served.version,
                      "trained_at_ms": served.trained_at_ms, "train_seconds": served.train_seconds,
                      "trained_events": served.trained_events},
            "analytics": served.analytics,
            "leaderboard": leaderboard,
            "search": {
                "top_queries": queries.iter().take(10).map(|(q, s)| json!({"query": q, "searches": s.searches, "zero_results": s.zero_results})).collect::<Vec<_>>(),
                "zero_result_queries": zero,
            },
            "notes": served.predictions.notes,
            "memory": {"live_sessions": live.by_session.len(), "tracked_queries": live.queries.len(),
                       "rate_limited_callers": self.limiter.tracked()},
            "sample_users": self.sample_users_in(&live),
        })
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let every = app.config.retrain_every_seconds;
    if every > 0 {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
            tick.tick().await;
            loop {
                tick.tick().await;
                if !app.retraining.swap(true, Ordering::SeqCst) {
                    let app = app.clone();
                    let _ = tokio::task::spawn_blocking(move || app.retrain_now()).await;
                }
            }
        });
    }
    let router = api::router(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves `app` on an already bound `listener` from a thread of its own, with `threads`
/// runtime workers, until the process ends (for tests and the load benchmark). Returns the
/// base URL.
pub fn serve_in_background(
    app: Arc<App>,
    listener: std::net::TcpListener,
    threads: usize,
) -> std::io::Result<String> {
    let base = format!("http://{}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    if let Err(e) = serve(app, listener, std::future::pending()).await {
                        tracing::error!(error = %e, "the server stopped");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot listen"),
            }
        });
    });
    Ok(base)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
