//! What the server knows: the live event log (updated by every acknowledged event), the
//! catalogue, and the trained models (replaced whole by a retrain, never edited in place).

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use aisle_analytics::behaviour::{FunnelUnit, cohorts, default_funnel_steps, funnel, rfm};
use aisle_analytics::bgnbd::{BgNbd, summarise};
use aisle_analytics::profiles::item_stats;
use aisle_analytics::propensity::{Prediction, Propensity};
use aisle_analytics::purchase::{Target, group_rows, item_departments, reorder_rows};
use aisle_core::{EventKind, Item};
use aisle_features::{CleaningConfig, EventLog, Interaction, KindWeights, NO_ITEM};
use aisle_models::{MODEL_NAMES, Model, ModelConfig, Recommender, TrainDataBuilder};
use aisle_store::ReadStore;
use lru::LruCache;
use rustc_hash::FxHashMap;
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;

/// One line of the dashboard's live event stream.
#[derive(Clone, Debug, Serialize)]
pub struct FeedEntry {
    /// External user id.
    pub user: String,
    /// Event kind.
    pub kind: String,
    /// External item id, if any.
    pub item: Option<String>,
    /// Item title, if known.
    pub title: Option<String>,
    /// Event time.
    pub timestamp_ms: i64,
}

/// Counts of one logged query.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QueryStats {
    /// Times searched.
    pub searches: u64,
    /// Times it found nothing.
    pub zero_results: u64,
}

/// Bounds on the live view's maps that client input can grow.
#[derive(Clone, Copy, Debug)]
pub struct LiveLimits {
    /// Distinct queries counted.
    pub queries: NonZeroUsize,
    /// Sessions indexed.
    pub sessions: NonZeroUsize,
    /// Latest events kept per session.
    pub session_events: usize,
}

impl LiveLimits {
    /// The limits `config` sets.
    pub fn of(config: &crate::ServerConfig) -> LiveLimits {
        LiveLimits {
            queries: NonZeroUsize::new(config.max_tracked_queries).unwrap_or(NonZeroUsize::MIN),
            sessions: NonZeroUsize::new(config.max_live_sessions).unwrap_or(NonZeroUsize::MIN),
            session_events: config.max_session_events.max(1),
        }
    }
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits::of(&crate::ServerConfig::default())
    }
}

/// The event log as of the last acknowledged event, with indexes by user and session.
///
/// The maps keyed by what clients send (session ids, query text) are least-recently-used
/// caches with a fixed capacity, so a flood of distinct sessions or queries costs a bounded
/// amount of memory: the oldest entries go (their events stay in the store and the log).
pub struct Live {
    /// Every event, in arrival order.
    pub events: Vec<Interaction>,
    /// Event positions per dense user id.
    pub by_user: Vec<Vec<u32>>,
    /// Latest event positions per session key, most recently active sessions kept.
    pub by_session: LruCache<u64, VecDeque<u32>>,
    /// Users of each dense item id, sorted, without repeats (the evidence of explanations).
    pub item_users: Vec<Vec<u32>>,
    /// The catalogue by dense item id (`None`: known only from events).
    pub items: Vec<Option<Item>>,
    /// The latest events, newest last.
    pub feed: VecDeque<FeedEntry>,
    /// Events acknowledged since the server started.
    pub ingested: u64,
    /// Searches by normalised query, most recently searched kept.
    pub queries: LruCache<String, QueryStats>,
    /// Time of the latest event.
    pub latest_ms: i64,
    limits: LiveLimits,
}

const FEED: usize = 50;

impl Live {
    /// An empty view with these limits.
    pub fn new(limits: LiveLimits) -> Live {
        Live {
            events: Vec::new(),
            by_user: Vec::new(),
            by_session: LruCache::new(limits.sessions),
            item_users: Vec::new(),
            items: Vec::new(),
            feed: VecDeque::new(),
            ingested: 0,
            queries: LruCache::new(limits.queries),
            latest_ms: 0,
            limits,
        }
    }

    /// Loads everything the store holds.
    pub fn load(store: &dyn ReadStore, limits: LiveLimits) -> aisle_store::Result<Live> {
        let counts = store.counts()?;
        let mut live = Live {
            items: vec![None; counts.items],
            ..Live::new(limits)
        };
        store.scan_items(&mut |id, item| put_item(&mut live.items, id.index(), item))?;
        let log = EventLog::load(store).map_err(|e| aisle_store::Error::Corrupt {
            table: "events",
            reason: e.to_string(),
        })?;
        live.by_user = vec![Vec::new(); counts.users];
        for e in log.events() {
            live.push(*e);
        }
        Ok(live)
    }

    /// Adds one event (its ids already assigned by the store).
    pub fn push(&mut self, e: Interaction) {
        let at = self.events.len() as u32;
        let user = e.user as usize;
        if self.by_user.len() <= user {
            self.by_user.resize(user + 1, Vec::new());
        }
        self.by_user[user].push(at);
        if e.session != 0 {
            let cap = self.limits.session_events;
            let positions = self.by_session.get_or_insert_mut(e.session, VecDeque::new);
            if positions.len() == cap {
                positions.pop_front();
            }
            positions.push_back(at);
        }
        if e.item != NO_ITEM {
            let item = e.item as usize;
            if self.items.len() <= item {
                self.items.resize(item + 1, None);
            }
            if self.item_users.len() <= item {
                self.item_users.resize(item + 1, Vec::new());
            }
            let users = &mut self.item_users[item];
            if let Err(slot) = users.binary_search(&e.user) {
                users.insert(slot, e.user);
            }
        }
        self.latest_ms = self.latest_ms.max(e.timestamp_ms);
        self.events.push(e);
    }

    /// Counts one search for the dashboard's query statistics.
    pub fn count_query(&mut self, query: &str, found_nothing: bool) {
        let key = query.trim().to_lowercase();
        if key.is_empty() {
            return;
        }
        let stats = self.queries.get_or_insert_mut(key, QueryStats::default);
        stats.searches += 1;
        stats.zero_results += u64::from(found_nothing);
    }

    /// The latest event positions of a session (without marking it as used).
    pub fn session_positions(&self, session: u64) -> Vec<u32> {
        self.by_session
            .peek(&session)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Records an event for the live stream.
    pub fn announce(&mut self, entry: FeedEntry) {
        if self.feed.len() == FEED {
            self.feed.pop_front();
        }
        self.feed.push_back(entry);
    }

    /// Items, kinds and times of the events at `positions` that say something about taste.
    pub fn history_of(&self, positions: &[u32]) -> (Vec<u32>, Vec<EventKind>, Vec<i64>) {
        let weights = KindWeights::default();
        let mut items = Vec::new();
        let mut kinds = Vec::new();
        let mut times = Vec::new();
        for &p in positions {
            let e = &self.events[p as usize];
            if e.item != NO_ITEM && weights.weight(e.kind) != 0.0 {
                items.push(e.item);
                kinds.push(e.kind);
                times.push(e.timestamp_ms);
            }
        }
        (items, kinds, times)
    }

    /// Users who interacted with `item`, sorted.
    pub fn users_of(&self, item: u32) -> &[u32] {
        self.item_users
            .get(item as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Takes a forgotten user out of the explanation evidence.
    pub fn drop_user_evidence(&mut self, user: u32) {
        for users in &mut self.item_users {
            if let Ok(slot) = users.binary_search(&user) {
                users.remove(slot);
            }
        }
    }

    /// Items bought by a user.
    pub fn bought(&self, user: u32) -> Vec<u32> {
        self.by_user
            .get(user as usize)
            .map(|positions| {
                positions
                    .iter()
                    .map(|&p| &self.events[p as usize])
                    .filter(|e| e.kind == EventKind::Purchase && e.item != NO_ITEM)
                    .map(|e| e.item)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Items by recent interest: each event counts `0.5^(age / half_life)`, age measured
    /// from the server's clock `now_ms`. Events later than `now_ms` are not counted (an
    /// event from the future cannot take over the list). A log with nothing within the
    /// horizon of now (a historical data set) is aged from its newest event instead.
    pub fn trending(&self, now_ms: i64, half_life_ms: i64, horizon_ms: i64) -> Vec<(u32, f32)> {
        let weights = KindWeights::default();
        // The newest event not in the future: `latest_ms` unless a future one moved it.
        let newest_past = if self.events.is_empty() {
            None
        } else if self.latest_ms <= now_ms {
            Some(self.latest_ms)
        } else {
            self.events
                .iter()
                .map(|e| e.timestamp_ms)
                .filter(|&t| t <= now_ms)
                .max()
        };
        let reference = match newest_past {
            Some(t) if now_ms - t > horizon_ms => t,
            _ => now_ms,
        };
        let mut scores: FxHashMap<u32, f32> = FxHashMap::default();
        for e in self.events.iter().rev() {
            let age = reference - e.timestamp_ms;
            if !(0..=horizon_ms).contains(&age) {
                continue;
            }
            if e.item != NO_ITEM {
                let w = weights.weight(e.kind).max(0.0);
                *scores.entry(e.item).or_default() +=
                    w * 0.5f32.powf(age as f32 / half_life_ms as f32);
            }
        }
        let mut list: Vec<(u32, f32)> = scores.into_iter().collect();
        list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        list
    }
}

/// Sets `items[at]`, growing the list when `at` is past its end.
fn put_item(items: &mut Vec<Option<Item>>, at: usize, item: Item) {
    if items.len() <= at {
        items.resize(at + 1, None);
    }
    items[at] = Some(item);
}

/// Next-order predictions, computed when the models were trained.
#[derive(Default)]
pub struct Predictions {
    /// Products each user's next order is likely to hold, best first.
    pub products: FxHashMap<u32, Vec<Prediction>>,
    /// Departments likewise.
    pub departments: FxHashMap<u32, Vec<Prediction>>,
    /// Department names by group id.
    pub department_names: Vec<String>,
    /// The reorder model (for explanations).
    pub reorder: Option<Propensity>,
    /// The department model (scores promotions too).
    pub groups: Option<Propensity>,
    /// The log the models saw (promotions are scored on it).
    pub log: Option<Arc<EventLog>>,
    /// BG/NBD, with each customer's P(alive) and expected purchases in the next 4 weeks.
    pub bgnbd: Option<BgNbd>,
    /// Per user: (P(alive), expected purchases in 4 weeks).
    pub churn: FxHashMap<u32, (f64, f64)>,
    /// Why a part is missing (too little data, ...).
    pub notes: Vec<String>,
}

/// A trained generation of models, served until the next retrain replaces it.
pub struct Served {
    /// Increases by one per retrain.
    pub version: u64,
    /// The recommender's name.
    pub model_name: String,
    /// The recommender.
    pub model: Model,
    /// Users the recommender was trained on (higher ids are new).
    pub trained_users: usize,
    /// Events it saw.
    pub trained_events: usize,
    /// When training finished.
    pub trained_at_ms: i64,
    /// Seconds the whole generation took to train.
    pub train_seconds: f64,
    /// Purchase and churn predictions.
    pub predictions: Predictions,
    /// Analytics summary for the dashboard.
    pub analytics: serde_json::Value,
}

fn by_user(list: Vec<Prediction>, keep: usize) -> FxHashMap<u32, Vec<Prediction>> {
    let mut map: FxHashMap<u32, Vec<Prediction>> = FxHashMap::default();
    for p in list {
        map.entry(p.user).or_default().push(p);
    }
    for v in map.values_mut() {
        v.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        v.truncate(keep);
    }
    map
}

fn predictions(store: &dyn ReadStore, log: &EventLog) -> Predictions {
    let mut out = Predictions::default();
    match Propensity::fit_reorder(log) {
        Ok(model) => {
            out.products = by_user(model.predict(&reorder_rows(log, Target::Next), 0), 50);
            out.reorder = Some(model);
        }
        Err(e) => out.notes.push(format!("purchase (products): {e}")),
    }
    match item_departments(store) {
        Ok((groups, names)) => match Propensity::fit_group(log, &groups, names.len()) {
            Ok(model) => {
                out.departments = by_user(
                    model.predict(&group_rows(log, &groups, names.len(), Target::Next), 0),
                    names.len(),
                );
                out.groups = Some(model);
                out.department_names = names;
            }
            Err(e) => out.notes.push(format!("purchase (departments): {e}")),
        },
        Err(e) => out.notes.push(format!("departments: {e}")),
    }
    // The calibration ends on the last day with events, by the server's clock: an event
    // stamped in the future must not move everyone's recency.
    let now = crate::now_ms();
    let last_day = log
        .events()
        .iter()
        .map(|e| e.timestamp_ms)
        .filter(|&t| t <= now)
        .max()
        .unwrap_or(0)
        .div_euclid(DAY_MS);
    let customers = summarise(log, last_day, last_day);
    match BgNbd::fit(&customers) {
        Ok(fit) => {
            for c in &customers {
                out.churn
                    .insert(c.user, (fit.p_alive(c), fit.expected_transactions(c, 4.0)));
            }
            out.bgnbd = Some(fit);
        }
        Err(e) => out.notes.push(format!("churn (BG/NBD): {e}")),
    }
    out
}

fn analytics(store: &dyn ReadStore, log: &EventLog) -> serde_json::Value {
    let present: std::collections::HashSet<EventKind> =
        log.events().iter().map(|e| e.kind).collect();
    let steps = default_funnel_steps(log);
    let funnel_steps = funnel(
        log,
        &steps,
        FunnelUnit::Session,
        i64::MIN,
        i64::MAX,
        &|_| true,
    )
    .unwrap_or_default();
    let cohort_kind = present
        .contains(&EventKind::Purchase)
        .then_some(EventKind::Purchase);
    let cohort_table = cohorts(log, cohort_kind, 7).unwrap_or_default();
    let end = log.events().last().map_or(0, |e| e.timestamp_ms);
    let purchases = log
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Purchase)
        .map(|e| (e.user, e.timestamp_ms, 1.0));
    let mut segments: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in rfm(purchases, end) {
        *segments.entry(r.segment).or_default() += 1;
    }
    let top: Vec<serde_json::Value> = item_stats(log)
        .into_iter()
        .take(10)
        .map(|s| {
            let item = store.item(aisle_core::ItemId(s.item)).ok().flatten();
            serde_json::json!({
                "id": item.as_ref().map(|i| i.external_id.clone()),
                "title": item.map(|i| i.title),
                "purchases": s.purchases,
                "buyers": s.buyers,
                "repeat_buyer_share": s.repeat_buyer_share,
            })
        })
        .collect();
    serde_json::json!({
        "funnel": funnel_steps,
        "cohorts": cohort_table.iter().take(12).collect::<Vec<_>>(),
        "segments": segments,
        "top_items": top,
    })
}

/// Trains a new generation from everything in the store.
pub fn train(store: &dyn ReadStore, model_name: &str, version: u64) -> Result<Served, String> {
    if !MODEL_NAMES.contains(&model_name) {
        return Err(format!(
            "unknown model {model_name:?}; models are: {}",
            MODEL_NAMES.join(", ")
        ));
    }
    let started = Instant::now();
    let counts = store.counts().map_err(|e| e.to_string())?;
    let mut log = EventLog::load(store).map_err(|e| e.to_string())?;
    let raw = log.clone();
    log.clean(&CleaningConfig::default())
        .map_err(|e| e.to_string())?;
    // Items created after `counts` was read (ingest goes on during a retrain) come with ids
    // past its count: the list grows to hold them rather than index out of bounds.
    let mut items: Vec<Option<Item>> = vec![None; counts.items];
    store
        .scan_items(&mut |id, item| put_item(&mut items, id.index(), item))
        .map_err(|e| e.to_string())?;
    let data = TrainDataBuilder::new().items(items).build(&log);
    let config = ModelConfig::default_for(model_name).map_err(|e| e.to_string())?;
    let mut model = Model::build(&config);
    model.fit(&data).map_err(|e| e.to_string())?;
    let predictions = predictions(store, &raw);
    let analytics = analytics(store, &raw);
    Ok(Served {
        version,
        model_name: model_name.to_string(),
        trained_users: counts.users,
        trained_events: log.len(),
        trained_at_ms: crate::now_ms(),
        train_seconds: started.elapsed().as_secs_f64(),
        predictions: Predictions {
            log: Some(Arc::new(raw)),
            ..predictions
        },
        analytics,
        model,
    })
}

impl Served {
    /// Number of items the recommender scores.
    pub fn n_items(&self) -> usize {
        self.model.n_items()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(item: u32, session: u64, timestamp_ms: i64) -> Interaction {
        Interaction {
            user: 0,
            item,
            kind: EventKind::View,
            timestamp_ms,
            session,
            value: 0.0,
        }
    }

    #[test]
    fn an_event_from_the_future_does_not_take_over_trending() {
        let now = 1_800_000_000_000;
        let mut live = Live::new(LiveLimits::default());
        for (i, item) in [1, 1, 2, 3].into_iter().enumerate() {
            live.push(event(item, 0, now - 3_600_000 * (i as i64 + 1)));
        }
        let before = live.trending(now, DAY_MS, 14 * DAY_MS);
        live.push(event(9, 0, 4_070_908_800_000));
        let after = live.trending(now, DAY_MS, 14 * DAY_MS);
        assert_eq!(before, after);
        assert_eq!(after[0].0, 1);
        // A historical log (nothing within the horizon of now) is aged from its newest event.
        let old = live.trending(now + 100 * DAY_MS, DAY_MS, 14 * DAY_MS);
        assert_eq!(old.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    /// A store whose item count is read before some items were created (a retrain racing
    /// catalogue writes): the count is short of the ids the scan then finds.
    struct StaleCounts(aisle_store::MemStore);

    impl ReadStore for StaleCounts {
        fn counts(&self) -> aisle_store::Result<aisle_store::StoreCounts> {
            let mut c = self.0.counts()?;
            c.items -= 5;
            Ok(c)
        }
        fn user_id(&self, external: &str) -> aisle_store::Result<Option<aisle_core::UserId>> {
            self.0.user_id(external)
        }
        fn item_id(&self, external: &str) -> aisle_store::Result<Option<aisle_core::ItemId>> {
            self.0.item_id(external)
        }
        fn user(&self, id: aisle_core::UserId) -> aisle_store::Result<Option<aisle_core::User>> {
            self.0.user(id)
        }
        fn item(&self, id: aisle_core::ItemId) -> aisle_store::Result<Option<Item>> {
            self.0.item(id)
        }
        fn scan_items(
            &self,
            visit: &mut dyn FnMut(aisle_core::ItemId, Item),
        ) -> aisle_store::Result<()> {
            self.0.scan_items(visit)
        }
        fn scan_users(
            &self,
            visit: &mut dyn FnMut(aisle_core::UserId, aisle_core::User),
        ) -> aisle_store::Result<()> {
            self.0.scan_users(visit)
        }
        fn scan_events(&self, visit: &mut dyn FnMut(aisle_core::Event)) -> aisle_store::Result<()> {
            self.0.scan_events(visit)
        }
        fn custom_kinds(&self) -> aisle_store::Result<Vec<String>> {
            self.0.custom_kinds()
        }
    }

    #[test]
    fn items_created_during_a_retrain_do_not_break_it() {
        let store = StaleCounts(
            aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample()).expect("sample"),
        );
        let served = train(&store, "pop", 2).expect("the retrain succeeds");
        assert_eq!(served.version, 2);
        let live = Live::load(&store, LiveLimits::default()).expect("the live view loads");
        assert_eq!(
            live.items.iter().flatten().count(),
            store.0.counts().expect("c").items
        );
    }

    #[test]
    fn sessions_and_queries_stay_within_their_caps() {
        let limits = LiveLimits {
            queries: NonZeroUsize::new(10).expect("10"),
            sessions: NonZeroUsize::new(5).expect("5"),
            session_events: 2,
        };
        let mut live = Live::new(limits);
        for s in 1..=1_000u64 {
            live.push(event(1, s, 0));
            live.count_query(&format!("query {s}"), false);
        }
        assert_eq!(live.by_session.len(), 5);
        assert_eq!(live.queries.len(), 10);
        assert_eq!(live.session_positions(1_000), vec![999]);
        assert!(
            live.session_positions(1).is_empty(),
            "the oldest session went first"
        );
        for item in [4, 5, 6] {
            live.push(event(item, 7, 0));
        }
        let kept: Vec<u32> = live
            .session_positions(7)
            .iter()
            .map(|&p| live.events[p as usize].item)
            .collect();
        assert_eq!(kept, vec![5, 6], "the latest events of a long session");
    }
}
