//! The application core of aisle: one place where an event arrives, the shop's state changes
//! and a model generation answers. The HTTP server and the CLI both drive an [`Engine`]; neither
//! has a pipeline of its own.
//!
//! - **Ingest** ([`Engine::ingest`] and the catalogue writes): checked against the rules the
//!   API contract states ([`input`]), deduplicated per request, made durable by the single
//!   writer ([`writer`]), which then updates the live state from what the commit stored. An
//!   `Idempotency-Key` is remembered in the same transaction as the events.
//! - **Live state** ([`live`]): the event log with its indexes, the catalogue, the stream and
//!   the query counts, bounded against client input.
//! - **Generations** ([`generation`]): trained in the background, swapped whole; a failure
//!   (a panic included) is counted and the next retrain runs as usual.
//! - **Answers** ([`answers`]): every question ([`requests`]) gets a typed answer.

pub mod answers;
pub mod error;
pub mod generation;
pub mod input;
pub mod live;
mod online;
pub mod privacy;
mod reads;
pub mod replication;
pub mod requests;
pub mod strategy;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aisle_core::{Event, EventKind, Item, ItemId};
use aisle_features::{Interaction, NO_ITEM};
use aisle_search::SearchEngine;
use aisle_store::Store;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;

pub use aisle_policy::impressions::RewardRule;
pub use aisle_policy::policy::ServingPolicy;
pub use aisle_policy::rollout::{RolloutConfig, Stage};
pub use error::{EngineError, ErrorKind, Result};
pub use generation::Generation;
pub use input::{EventRules, parse_events, parse_items};
pub use live::{Live, LiveLimits};
pub use online::{Canary, DecisionHook, PolicyReward, RolloutStatus};
pub use privacy::PrivacyConfig;
pub use strategy::{ServedList, Strategy};
pub use writer::{Change, IdempotencyKey, Outcome, WriterThread};

use crate::answers::{Accepted, Deleted, FeedEntry, Forgotten, Upserted};
use crate::input::UserIn;

/// Settings of an engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The recommender each generation trains.
    pub model: String,
    /// The data directory (for the offline leaderboard the dashboard shows), if any.
    pub data_dir: Option<PathBuf>,
    /// Caps on the live state's maps that client input can grow.
    pub limits: LiveLimits,
    /// How far ahead of the clock an event may be.
    pub max_clock_skew_seconds: u64,
    /// Writes that may wait for the writer.
    pub write_queue: usize,
    /// A fixed "now" instead of the system clock (tests, replays of a recorded day).
    pub fixed_clock_ms: Option<i64>,
    /// The serving policy of the recommendation lists.
    pub strategy: Strategy,
    /// Surfaces served by a policy of their own instead (surface name, policy).
    pub strategy_by_surface: Vec<(String, Strategy)>,
    /// A candidate policy being rolled out over `strategy`, if any.
    pub canary: Option<online::Canary>,
    /// What counts as a list's online reward, and for how long after it is served.
    pub reward: aisle_policy::impressions::RewardRule,
    /// The privacy budget and how private analytics spend it.
    pub privacy: PrivacyConfig,
    /// Store and look users up under keyed pseudonyms of their external ids.
    pub pseudonyms: Option<aisle_privacy::pseudonym::Pseudonymizer>,
    /// Run as one of several replicas over a shared store, kept in step by a stream.
    pub replication: Option<replication::Replication>,
    /// How long after a forget every model must have been retrained without the user
    /// (default 7 days): a failed retrain is retried until it succeeds, and one still
    /// failing past this is audited as overdue.
    pub forget_deadline_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            model: "itemknn".into(),
            data_dir: None,
            limits: LiveLimits::default(),
            max_clock_skew_seconds: 300,
            write_queue: 1024,
            fixed_clock_ms: None,
            strategy: Strategy::default(),
            strategy_by_surface: Vec::new(),
            canary: None,
            reward: aisle_policy::impressions::RewardRule::default(),
            privacy: PrivacyConfig::default(),
            pseudonyms: None,
            replication: None,
            forget_deadline_ms: 7 * 86_400_000,
        }
    }
}

/// Counters and gauges the engine keeps; the HTTP layer exports them (they share their
/// atomics, so a clone is the same metric).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Events acknowledged.
    pub events_ingested: Counter<u64, AtomicU64>,
    /// The generation of the models being served.
    pub model_version: Gauge<i64>,
    /// How long the last retrain took, in milliseconds.
    pub last_train_ms: Gauge<i64>,
    /// Retrains that failed.
    pub retrain_failures: Counter<u64, AtomicU64>,
    /// Writes refused because the writer's queue was full.
    pub writes_refused: Counter<u64, AtomicU64>,
    /// Search-log events dropped because the writer's queue was full.
    pub search_log_dropped: Counter<u64, AtomicU64>,
    /// Lists served and logged as impressions.
    pub impressions_served: Counter<u64, AtomicU64>,
    /// Impressions dropped because the buffer waiting for the writer was full.
    pub impressions_dropped: Counter<u64, AtomicU64>,
    /// Events other replicas committed, added to the live state from the stream.
    pub events_replicated: Counter<u64, AtomicU64>,
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// What the writer thread and the readers share.
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub live: RwLock<Live>,
    pub search: RwLock<Option<SearchEngine>>,
    pub counters: Counters,
    pub impressions: strategy::PendingImpressions,
    pub online: online::Online,
    /// A policy evaluation is running (they read the whole store: one at a time).
    pub evaluating: AtomicBool,
    /// The latest evaluation's answer, for the dashboard.
    pub last_evaluation: std::sync::Mutex<Option<answers::PolicyEvaluation>>,
    /// The privacy ledger and the audit log.
    pub privacy: privacy::Privacy,
    /// The publisher and the subscription, when the engine is one of several replicas.
    pub replicator: std::sync::OnceLock<replication::Replicator>,
    /// Commits that stored events, numbered for read-your-writes tokens.
    pub commits: AtomicU64,
    /// The latest commit number of each other replica whose events are all applied here.
    pub applied_from: std::sync::Mutex<rustc_hash::FxHashMap<String, u64>>,
    /// Users dropped from the live state whom the serving recommender has not forgotten
    /// yet (drained by `Engine::forget_reaches_models`).
    pub forgotten_pending: std::sync::Mutex<Vec<u32>>,
}

impl Shared {
    /// Adds events a commit stored to the live state.
    fn absorb(&self, added: &[Event]) {
        if added.is_empty() {
            return;
        }
        let mut live = write(&self.live);
        for e in added {
            live.push(Interaction::of(e));
            live.ingested += 1;
        }
        // Only the latest few reach the stream: names are looked up for those alone.
        let start = added.len().saturating_sub(live::FEED);
        for e in &added[start..] {
            let item = e
                .item
                .and_then(|i| live.items.get(i.index()).cloned().flatten());
            let entry = FeedEntry {
                user: self.user_name(e.user.0),
                kind: self
                    .store
                    .kind_name(e.kind)
                    .unwrap_or_else(|_| e.kind.to_string()),
                item: item.as_ref().map(|i| i.external_id.clone()).or_else(|| {
                    e.item
                        .and_then(|i| self.store.item(i).ok().flatten())
                        .map(|i| i.external_id)
                }),
                title: item.map(|i| i.title),
                timestamp_ms: e.timestamp_ms,
            };
            live.announce(entry);
        }
    }

    fn absorb_items(&self, items: &[Item]) {
        let mut with_ids = Vec::new();
        {
            let mut live = write(&self.live);
            for item in items {
                let Ok(Some(id)) = self.store.item_id(&item.external_id) else {
                    continue;
                };
                live::put_item(&mut live.items, id.index(), item.clone());
                with_ids.push((id, item.clone()));
            }
        }
        if let Some(engine) = write(&self.search).as_mut()
            && let Err(e) = engine.upsert_items(with_ids)
        {
            tracing::error!(error = %e, "indexing the items failed; search shows the old records");
        }
    }

    fn forget_item(&self, external: &str) {
        if let Ok(Some(id)) = self.store.item_id(external) {
            self.forget_item_id(id);
        }
    }

    fn forget_item_id(&self, id: ItemId) {
        if let Some(slot) = write(&self.live).items.get_mut(id.index()) {
            *slot = None;
        }
        if let Some(engine) = write(&self.search).as_mut()
            && let Err(e) = engine.delete_items(&[ItemId(id.0)])
        {
            tracing::error!(error = %e, "removing the item from search failed");
        }
    }

    /// Replaces the live state with one loaded from the store (after retention deleted
    /// events: positions into the old event list would no longer fit).
    fn reload_live(&self) {
        let limits = read(&self.live).limits();
        match Live::load(self.store.as_ref(), limits) {
            Ok(fresh) => *write(&self.live) = fresh,
            Err(e) => {
                tracing::error!(error = %e, "reloading the live state after retention failed")
            }
        }
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
        drop(live);
        self.forgotten_pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(user);
    }

    fn user_name(&self, user: u32) -> String {
        self.store
            .user(aisle_core::UserId(user))
            .ok()
            .flatten()
            .map_or_else(|| format!("#{user}"), |u| u.external_id)
    }
}

/// A write on its way to the store: await [`Pending::answer`] (async callers) or call
/// [`Pending::wait`] (the CLI) for its answer once it is durable.
pub struct Pending<T> {
    outcome: oneshot::Receiver<Result<Outcome>>,
    answer: Box<dyn FnOnce(Outcome) -> Result<T> + Send>,
}

impl<T> Pending<T> {
    fn new(
        outcome: oneshot::Receiver<Result<Outcome>>,
        answer: impl FnOnce(Outcome) -> Result<T> + Send + 'static,
    ) -> Pending<T> {
        Pending {
            outcome,
            answer: Box::new(answer),
        }
    }

    fn stopped() -> EngineError {
        EngineError::internal("writing", "the writer stopped before committing")
    }

    /// The answer, once the write is durable.
    pub async fn answer(self) -> Result<T> {
        let outcome = self.outcome.await.map_err(|_| Self::stopped())??;
        (self.answer)(outcome)
    }

    /// The answer, blocking until the write is durable (not from an async task).
    pub fn wait(self) -> Result<T> {
        let outcome = self
            .outcome
            .blocking_recv()
            .map_err(|_| Self::stopped())??;
        (self.answer)(outcome)
    }
}

/// The application: the store, the live state, the generation serving, and the writer.
pub struct Engine {
    config: EngineConfig,
    shared: Arc<Shared>,
    writer: writer::Writer,
    generation: RwLock<Arc<Generation>>,
    retraining: AtomicBool,
    fail_next_retrain: AtomicBool,
    /// A retrain is due because of a forget and has not started yet.
    forget_retrain_due: AtomicBool,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Engine {
    /// Loads the live state, trains the first generation and starts the writer.
    pub fn start(
        config: EngineConfig,
        store: Arc<dyn Store>,
        search: Option<SearchEngine>,
    ) -> Result<(Arc<Engine>, WriterThread)> {
        // The stream's position is read before the store, so nothing committed in between
        // is missed (what both hold is recognised when it arrives).
        let replicate_after = match &config.replication {
            Some(r) => {
                if !store.enable_outbox() {
                    return Err(EngineError::bad_request(
                        "replication needs a store shared by the replicas (a database URL), not the embedded store",
                    ));
                }
                Some(
                    r.stream.last_seq().map_err(|e| {
                        EngineError::internal("reading the event stream's position", e)
                    })?,
                )
            }
            None => None,
        };
        // One snapshot for both: other processes may be writing to a shared store, and a
        // count read before the events it counts must not fall behind them.
        let (live, first) = {
            let snapshot = store
                .snapshot()
                .map_err(|e| EngineError::internal("reading the store", e))?;
            let live = Live::load(snapshot.as_ref(), config.limits)
                .map_err(|e| EngineError::internal("loading the live state", e))?;
            let first = generation::train(snapshot.as_ref(), &config.model, 1)
                .map_err(EngineError::bad_request)?;
            (live, first)
        };
        let mut search = search;
        if let Some(search) = search.as_mut() {
            refresh_popularity(search, &first);
        }
        let privacy = privacy::Privacy::open(
            config.privacy.clone(),
            config.data_dir.as_deref(),
            config.fixed_clock_ms.unwrap_or_else(now_ms),
        )?;
        let counters = Counters::default();
        counters.model_version.set(1);
        counters
            .last_train_ms
            .set((first.train_seconds * 1000.0) as i64);
        let shared = Arc::new(Shared {
            store,
            live: RwLock::new(live),
            search: RwLock::new(search),
            counters,
            impressions: strategy::PendingImpressions::default(),
            online: online::Online::new(
                config.strategy.clone(),
                config.strategy_by_surface.clone(),
                config.canary.clone(),
                config.reward.clone(),
                config.fixed_clock_ms,
            ),
            evaluating: AtomicBool::new(false),
            last_evaluation: std::sync::Mutex::new(None),
            privacy,
            replicator: std::sync::OnceLock::new(),
            commits: AtomicU64::new(0),
            applied_from: std::sync::Mutex::new(rustc_hash::FxHashMap::default()),
            forgotten_pending: std::sync::Mutex::new(Vec::new()),
        });
        let (writer, thread) = writer::start(shared.clone(), config.write_queue);
        let engine = Engine {
            config,
            shared,
            writer,
            generation: RwLock::new(Arc::new(first)),
            retraining: AtomicBool::new(false),
            fail_next_retrain: AtomicBool::new(false),
            forget_retrain_due: AtomicBool::new(false),
        };
        let engine = Arc::new(engine);
        if let (Some(r), Some(after)) = (&engine.config.replication, replicate_after) {
            let replicator = replication::start(r, &engine, after)?;
            let _ = engine.shared.replicator.set(replicator);
        }
        Ok((engine, thread))
    }

    /// Whether this replica has applied the write a token names (see [`Accepted::token`]).
    /// A token of this replica is always applied: its writes are in the live state when
    /// answered. A bad token is a bad request.
    pub fn token_applied(&self, token: &str) -> Result<bool> {
        let bad = || {
            EngineError::bad_request(format!(
                "the Aisle-Token {token:?} is not one an ingest answered (REPLICA:NUMBER)"
            ))
        };
        let (replica, number) = token.rsplit_once(':').ok_or_else(bad)?;
        let number: u64 = number.parse().map_err(|_| bad())?;
        if self
            .config
            .replication
            .as_ref()
            .is_none_or(|r| r.replica == replica)
        {
            return Ok(true);
        }
        let applied = self
            .shared
            .applied_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(applied.get(replica).is_some_and(|&n| n >= number))
    }

    /// Events of a user in the live state (for tests of what a replica has applied).
    #[doc(hidden)]
    pub fn live_events_of(&self, external: &str) -> usize {
        let Ok(Some(user)) = self.shared.store.user_id(external) else {
            return 0;
        };
        read(&self.shared.live)
            .by_user
            .get(user.index())
            .map_or(0, Vec::len)
    }

    /// Drops from the live state every user the store says was forgotten (by another
    /// replica) and retrains without them; how many were still here.
    pub(crate) fn sync_forgets(self: &Arc<Self>) -> usize {
        let forgotten = match self.shared.store.forgotten_users() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "listing the forgotten users failed");
                return 0;
            }
        };
        let present: Vec<u32> = {
            let live = read(&self.shared.live);
            forgotten
                .iter()
                .map(|u| u.0)
                .filter(|&u| live.by_user.get(u as usize).is_some_and(|p| !p.is_empty()))
                .collect()
        };
        for &user in &present {
            self.shared.forget_user_live(user);
        }
        if !present.is_empty() {
            self.forget_reaches_models(self.generation().version);
        }
        present.len()
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The counters, for export.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The generation being served.
    pub fn generation(&self) -> Arc<Generation> {
        read(&self.generation).clone()
    }

    /// The store (read access for front ends that show what it holds).
    pub fn store(&self) -> &dyn aisle_store::ReadStore {
        self.shared.store.as_ref()
    }

    /// Search's popularity features (all time, recent), when search is set up (for tests).
    #[doc(hidden)]
    pub fn search_popularity(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        read(&self.shared.search).as_ref().map(|s| {
            let (all, recent) = s.popularity();
            (all.to_vec(), recent.to_vec())
        })
    }

    /// Makes the next retrain fail with a panic, as a bug would (for tests of the recovery).
    #[doc(hidden)]
    pub fn inject_retrain_failure(&self) {
        self.fail_next_retrain.store(true, Ordering::SeqCst);
    }

    /// Puts `next` into service. Search's popularity features come from the log `next` was
    /// trained on, so they move with the models: a retrain brings them up to date, and a
    /// forget takes the user's purchases out of them as it takes them out of the models.
    fn serve_generation(&self, next: generation::Generation) {
        if let Some(search) = write(&self.shared.search).as_mut() {
            refresh_popularity(search, &next);
        }
        *write(&self.generation) = Arc::new(next);
    }

    /// Claims the right to retrain: false when a retrain is already running. The claim is
    /// released by [`Engine::retrain_now`], however it ends.
    pub fn claim_retrain(&self) -> bool {
        !self.retraining.swap(true, Ordering::SeqCst)
    }

    /// Trains a new generation and swaps it in; the old one keeps serving until then. A
    /// failure, a panic included, is logged and counted, and the next retrain runs as usual.
    /// Answers whether the new generation serves.
    pub fn retrain_now(&self) -> bool {
        /// Clears the "retraining" flag however this function ends.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        self.retraining.store(true, Ordering::SeqCst);
        let done = Done(&self.retraining);
        let version = self.generation().version + 1;
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if self.fail_next_retrain.swap(false, Ordering::SeqCst) {
                panic!("a failure injected on purpose");
            }
            // One snapshot: ingest goes on while training reads, and every read must see
            // the same commit (ids sized by one read, filled by another, would not fit).
            let snapshot = self
                .shared
                .store
                .snapshot()
                .map_err(|e| format!("opening a snapshot of the store: {e}"))?;
            generation::train(snapshot.as_ref(), &self.config.model, version)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(format!("training panicked: {what}"))
        });
        let counters = &self.shared.counters;
        // The new generation serves and the flag is clear before the counters move: a
        // client that watches them to see a retrain end, and then asks for the next one,
        // must find it claimable (it was once refused as "already running", and waited for
        // a retrain that never came).
        match attempt {
            Ok(next) => {
                let seconds = next.train_seconds;
                self.serve_generation(next);
                drop(done);
                counters.last_train_ms.set((seconds * 1000.0) as i64);
                counters.model_version.set(version as i64);
                tracing::info!(version, seconds, "new models serving");
                true
            }
            Err(e) => {
                drop(done);
                counters.retrain_failures.inc();
                tracing::error!(error = %e, "retraining failed; the previous models stay");
                false
            }
        }
    }

    /// Kinds the store knows beyond the built-in ones.
    pub fn custom_kinds(&self) -> Vec<String> {
        self.shared.store.custom_kinds().unwrap_or_default()
    }

    /// The engine's "now": the system clock, or the fixed clock the settings name.
    pub fn clock_ms(&self) -> i64 {
        self.config.fixed_clock_ms.unwrap_or_else(now_ms)
    }

    /// The latest time an event may carry now (the clock plus the allowed skew).
    pub fn latest_event_ms(&self) -> i64 {
        let skew_ms = i64::try_from(self.config.max_clock_skew_seconds.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        self.clock_ms().saturating_add(skew_ms)
    }

    fn send<T>(
        &self,
        change: Change,
        answer: impl FnOnce(Outcome) -> Result<T> + Send + 'static,
    ) -> Result<Pending<T>> {
        match self.writer.send(change) {
            Ok(outcome) => Ok(Pending::new(outcome, answer)),
            Err(e) => {
                self.shared.counters.writes_refused.inc();
                Err(e)
            }
        }
    }

    /// Stores one event or a list (a JSON body as the API takes it). With an idempotency
    /// `key`, a request repeated with the same key and body gets the first answer and writes
    /// nothing, even after a restart; the same key with another body is refused.
    pub fn ingest(
        &self,
        body: &[u8],
        storefront_only: bool,
        key: Option<&str>,
    ) -> Result<Pending<Accepted>> {
        let key = match key {
            Some(k) => {
                input::check_idempotency_key(k)?;
                Some(IdempotencyKey {
                    key: k.to_string(),
                    fingerprint: xxhash_rust::xxh3::xxh3_64(body),
                })
            }
            None => None,
        };
        let custom = self.custom_kinds();
        let now = self.clock_ms();
        let rules = EventRules {
            custom_kinds: &custom,
            now_ms: now,
            latest_ms: self.latest_event_ms(),
            storefront_only,
        };
        let mut events = parse_events(body, &rules)?;
        if let Some(p) = &self.config.pseudonyms {
            for e in &mut events {
                e.user = p.pseudonym(&e.user);
            }
        }
        let n = events.len();
        let shared = Arc::clone(&self.shared);
        let me = self.config.replication.as_ref().map(|r| r.replica.clone());
        self.send(Change::Events { events, key }, move |outcome| {
            // Read after this write's commit: at least its number (a later one only makes a
            // reader wait a little longer).
            let token = me.map(|me| format!("{me}:{}", shared.commits.load(Ordering::SeqCst)));
            Ok(match outcome {
                Outcome::Replayed(answer) => answer,
                Outcome::Written(_) => Accepted { accepted: n, token },
            })
        })
    }

    /// Creates or replaces items (a JSON list as the API takes it).
    pub fn upsert_items(&self, body: &[u8]) -> Result<Pending<Upserted>> {
        let items = parse_items(body)?;
        let n = items.len();
        self.send(Change::Items(items), move |_| Ok(Upserted { upserted: n }))
    }

    /// Creates or replaces users.
    pub fn upsert_users(&self, list: Vec<UserIn>) -> Result<Pending<Upserted>> {
        let mut users = input::check_users(list)?;
        if let Some(p) = &self.config.pseudonyms {
            for u in &mut users {
                u.external_id = p.pseudonym(&u.external_id);
            }
        }
        let n = users.len();
        self.send(Change::Users(users), move |_| Ok(Upserted { upserted: n }))
    }

    /// Removes an item from the catalogue (its past events stay).
    pub fn delete_item(&self, id: &str) -> Result<Pending<Deleted>> {
        let id = id.to_string();
        self.send(
            Change::DeleteItem(id.clone()),
            move |outcome| match outcome {
                Outcome::Written(report) if report.items_deleted > 0 => Ok(Deleted { deleted: id }),
                _ => Err(EngineError::not_found(format!(
                    "no item {id:?} in the catalogue"
                ))),
            },
        )
    }

    /// Forgets a user: their record and every event of theirs, in the store and the live
    /// state.
    /// The audit log records the forget by a fingerprint of the id (SHA-256, not the id
    /// itself) with the model generation serving then.
    pub fn forget_user(&self, id: &str) -> Result<Pending<Forgotten>> {
        let given = id.to_string();
        let id = self.stored_user_name(id);
        let shared = self.shared.clone();
        let (now, model_version) = (self.clock_ms(), self.generation().version);
        self.send(
            Change::ForgetUser(id.clone()),
            move |outcome| match outcome {
                Outcome::Written(report) if report.users_forgotten > 0 => {
                    shared.privacy.audit(
                        now,
                        "admin",
                        "forget",
                        serde_json::json!({
                            "user_fingerprint": aisle_privacy::audit::fingerprint(&id),
                            "events_deleted": report.events_deleted,
                            "model_version": model_version,
                        }),
                    );
                    Ok(Forgotten {
                        forgotten: given,
                        events_deleted: report.events_deleted,
                    })
                }
                _ => Err(EngineError::not_found(format!("no user {given:?}"))),
            },
        )
    }

    /// The name a user is stored under: their pseudonym when pseudonyms are on.
    pub fn stored_user_name(&self, external: &str) -> String {
        match &self.config.pseudonyms {
            Some(p) => p.pseudonym(external),
            None => external.to_string(),
        }
    }

    /// After a forget: first the serving recommender forgets the users in place where it
    /// can (`Generation::forget_users`: the counting models exactly, EASE and ALS by their
    /// updates), a new generation that serves at once; then a retrain, in the background,
    /// so that no model keeps them (every model is refit from the store, which no longer
    /// holds them: the purchase and churn trees and the gradient-trained recommenders).
    /// Both are recorded in the audit log with the model versions before and after.
    /// A retrain that fails is audited (`forget_retrain_failed`) and retried, waiting 1 s,
    /// then twice as long each time up to 10 minutes, until it succeeds; `forget_applied`
    /// is written only then, and a forget still not applied past
    /// [`EngineConfig::forget_deadline_ms`] is audited once as `forget_overdue`.
    /// Forgets that arrive while a retrain runs wait for it and share the next one, since
    /// the running one may have read the store before they were committed. Until then the
    /// forgotten users have no id, history or live state, so they get no personalised
    /// answer.
    pub fn forget_reaches_models(self: &Arc<Self>, forgot_at_version: u64) {
        if self.forget_retrain_due.swap(true, Ordering::SeqCst) {
            return; // A waiting retrain will cover this forget too.
        }
        let engine = self.clone();
        let deadline_ms = self
            .clock_ms()
            .saturating_add(self.config.forget_deadline_ms);
        std::thread::spawn(move || {
            let mut wait = std::time::Duration::from_secs(1);
            let mut overdue = false;
            for attempt in 1u32.. {
                while !engine.claim_retrain() {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                engine.forget_retrain_due.store(false, Ordering::SeqCst);
                engine.forget_in_place();
                if engine.retrain_now() {
                    let version = engine.generation().version;
                    engine.audit(
                        "system",
                        "forget_applied",
                        serde_json::json!({
                            "model_version_before": forgot_at_version,
                            "model_version_after": version,
                            "attempts": attempt,
                        }),
                    );
                    return;
                }
                // The models that could not forget in place still hold the user: try
                // again, sooner than the deadline, and say so once it has passed.
                let late = engine.clock_ms() > deadline_ms;
                engine.audit(
                    "system",
                    "forget_retrain_failed",
                    serde_json::json!({
                        "attempt": attempt,
                        "deadline_ms": deadline_ms,
                        "retry_in_seconds": wait.as_secs(),
                    }),
                );
                if late && !overdue {
                    overdue = true;
                    engine.audit(
                        "system",
                        "forget_overdue",
                        serde_json::json!({ "deadline_ms": deadline_ms, "attempts": attempt }),
                    );
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_secs(600));
            }
        });
    }

    /// The in-place half of [`Engine::forget_reaches_models`], run while holding the retrain
    /// claim (no retrain can swap a generation in meanwhile).
    fn forget_in_place(&self) {
        let users = std::mem::take(
            &mut *self
                .shared
                .forgotten_pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if users.is_empty() {
            return;
        }
        let serving = self.generation();
        let version = serving.version + 1;
        let next = serving.forget_users(&users, self.shared.store.as_ref(), version);
        match next {
            Ok(Some((next, how))) => {
                let seconds = next.train_seconds;
                self.serve_generation(next);
                self.shared.counters.model_version.set(version as i64);
                tracing::info!(version, seconds, users = users.len(), "forgotten in place");
                self.audit(
                    "system",
                    "forget_in_place",
                    serde_json::json!({
                        "users": users.len(),
                        "model": serving.model_name,
                        "how": format!("{how:?}"),
                        "seconds": seconds,
                        "model_version_before": serving.version,
                        "model_version_after": version,
                    }),
                );
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "forgetting in place failed; the retrain covers it")
            }
        }
    }

    /// Retention: deletes every event older than `days` days (by the engine's clock) from
    /// the store and the live state, audits it, and retrains in the background when any
    /// went, so that no model keeps them. Answers how many were deleted.
    pub fn apply_retention(self: &Arc<Self>, days: f64) -> Result<Pending<usize>> {
        if !(days.is_finite() && days > 0.0) {
            return Err(EngineError::bad_request(
                "retention_days must be a positive number",
            ));
        }
        let before = self.clock_ms() - (days * 86_400_000.0) as i64;
        let engine = self.clone();
        let version = self.generation().version;
        self.send(Change::DeleteEventsBefore(before), move |outcome| match outcome {
            Outcome::Written(report) => {
                engine.audit(
                    "system",
                    "retention",
                    serde_json::json!({ "before_ms": before, "events_deleted": report.events_deleted }),
                );
                if report.events_deleted > 0 {
                    engine.forget_reaches_models(version);
                }
                Ok(report.events_deleted)
            }
            Outcome::Replayed(_) => Ok(0),
        })
    }

    /// What the live state holds and the bytes it takes, by part.
    pub fn live_memory(&self) -> live::LiveMemory {
        read(&self.shared.live).memory()
    }

    /// Reloads the live state from the store and compares it with the one kept up to date
    /// by the writer: events per user and per item, as `(user counts, item counts)` of each.
    /// For tests and the consistency check after a crash.
    #[doc(hidden)]
    pub fn live_and_stored_counts(&self) -> Result<(LiveCounts, LiveCounts)> {
        let reloaded = Live::load(self.shared.store.as_ref(), self.config.limits)
            .map_err(|e| EngineError::internal("reloading the live state", e))?;
        let live = read(&self.shared.live);
        Ok((LiveCounts::of(&live), LiveCounts::of(&reloaded)))
    }
}

/// Gives `search` the item popularity of the log `generation` was trained on.
fn refresh_popularity(search: &mut SearchEngine, generation: &generation::Generation) {
    if let Some(log) = &generation.predictions.log {
        let (all_time, recent) = aisle_search::popularity_features(log);
        search.set_popularity(all_time, recent);
    }
}

/// Events per user and per item in a live state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveCounts {
    /// Events per dense user id (trailing zeros trimmed).
    pub per_user: Vec<usize>,
    /// Events per dense item id (trailing zeros trimmed).
    pub per_item: Vec<usize>,
}

impl LiveCounts {
    fn of(live: &Live) -> LiveCounts {
        let mut per_user: Vec<usize> = live.by_user.iter().map(Vec::len).collect();
        let mut per_item = Vec::new();
        for e in &live.events {
            if e.item != NO_ITEM && e.user != u32::MAX {
                let i = e.item as usize;
                if per_item.len() <= i {
                    per_item.resize(i + 1, 0);
                }
                per_item[i] += 1;
            }
        }
        while per_user.last() == Some(&0) {
            per_user.pop();
        }
        while per_item.last() == Some(&0) {
            per_item.pop();
        }
        LiveCounts { per_user, per_item }
    }
}
