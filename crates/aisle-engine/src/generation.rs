//! Model generations: everything trained from one read of the store (the recommender, the
//! purchase and churn predictions, the analytics summary), served whole until the next
//! generation replaces it, never edited in place.

use aisle_models::ann::MipsIndex;
use std::sync::Arc;
use std::time::Instant;

use aisle_analytics::behaviour::{FunnelUnit, cohorts, default_funnel_steps, funnel, rfm};
use aisle_analytics::bgnbd::{BgNbd, summarise};
use aisle_analytics::profiles::item_stats;
use aisle_analytics::propensity::{Prediction, Propensity};
use aisle_analytics::purchase::{Target, group_rows, item_departments, reorder_rows};
use aisle_core::{EventKind, Item};
use aisle_features::{CleaningConfig, EventLog};
use aisle_models::{
    Forgetting, Forgot, MODEL_NAMES, Model, ModelConfig, Recommender, TrainDataBuilder,
};
use aisle_store::ReadStore;
use rustc_hash::FxHashMap;

use crate::answers::{AnalyticsSummary, Cohort, FunnelStep, TopItem};
use crate::live::put_item;

const DAY_MS: i64 = 86_400_000;

/// Next-order predictions, computed when the models were trained.
#[derive(Clone, Default)]
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

/// Catalogue size from which an embedding model is served through an approximate index
/// (bench/results/ann.md gives the exact scan's and the index's latency by size).
pub const INDEX_MIN_ITEMS: usize = 100_000;

/// A trained generation of models, served until the next retrain replaces it.
pub struct Generation {
    /// Increases by one per retrain.
    pub version: u64,
    /// The recommender's name.
    pub model_name: String,
    /// The recommender.
    pub model: Model,
    /// An approximate top-N index over the recommender's item factors, for embedding
    /// models over catalogues of at least [`INDEX_MIN_ITEMS`] items; below that a full
    /// scan takes about a millisecond and stays exact.
    pub index: Option<MipsIndex>,
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
    pub analytics: AnalyticsSummary,
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

fn analytics(store: &dyn ReadStore, log: &EventLog) -> AnalyticsSummary {
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
    let mut segments = std::collections::BTreeMap::new();
    for r in rfm(purchases, end) {
        *segments.entry(r.segment.to_string()).or_default() += 1;
    }
    let top_items = item_stats(log)
        .into_iter()
        .take(10)
        .map(|s| {
            let item = store.item(aisle_core::ItemId(s.item)).ok().flatten();
            TopItem {
                id: item.as_ref().map(|i| i.external_id.clone()),
                title: item.map(|i| i.title),
                purchases: s.purchases,
                buyers: s.buyers,
                repeat_buyer_share: Some(s.repeat_buyer_share),
            }
        })
        .collect();
    AnalyticsSummary {
        funnel: funnel_steps
            .into_iter()
            .map(|f| FunnelStep {
                kind: f.kind,
                count: f.count,
                from_previous: f.from_previous,
                from_first: f.from_first,
            })
            .collect(),
        cohorts: cohort_table
            .into_iter()
            .take(12)
            .map(|c| Cohort {
                period: c.period,
                users: c.users,
                retention: c.retention,
            })
            .collect(),
        segments,
        top_items,
    }
}

/// Trains a new generation from everything in the store.
pub fn train(store: &dyn ReadStore, model_name: &str, version: u64) -> Result<Generation, String> {
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
    let data = builder(store, counts.items)?.build(&log);
    let config = ModelConfig::default_for(model_name).map_err(|e| e.to_string())?;
    let mut model = Model::build(&config);
    model.fit(&data).map_err(|e| e.to_string())?;
    let index = (model.n_items() >= INDEX_MIN_ITEMS)
        .then(|| MipsIndex::build(&model, data.matrix.n_users(), version))
        .flatten();
    let predictions = predictions(store, &raw);
    let analytics = analytics(store, &raw);
    Ok(Generation {
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
        index,
    })
}

/// The recommender's training-structure builder, with the catalogue's text.
fn builder(store: &dyn ReadStore, n_items: usize) -> Result<TrainDataBuilder, String> {
    let mut items: Vec<Option<Item>> = vec![None; n_items];
    store
        .scan_items(&mut |id, item| put_item(&mut items, id.index(), item))
        .map_err(|e| e.to_string())?;
    Ok(TrainDataBuilder::new().items(items))
}

fn cleaned(log: &EventLog) -> Result<EventLog, String> {
    let mut log = log.clone();
    log.clean(&CleaningConfig::default())
        .map_err(|e| e.to_string())?;
    Ok(log)
}

impl Generation {
    /// Number of items the recommender scores.
    pub fn n_items(&self) -> usize {
        self.model.n_items()
    }

    /// The next generation, with `users` forgotten by the recommender without a refit
    /// (`Recommender::forget`): the counting models end exactly where a refit on this
    /// generation's log without the users would, EASE to within rounding, ALS with the
    /// items they touched re-solved. Their predictions and events go too; the purchase and
    /// churn trees keep what they learnt until the retrain that follows. `Ok(None)` when
    /// the recommender cannot forget in place (gradient-trained: the retrain covers it).
    pub fn forget_users(
        &self,
        users: &[u32],
        store: &dyn ReadStore,
        version: u64,
    ) -> Result<Option<(Generation, Forgot)>, String> {
        let started = Instant::now();
        let Some(raw) = &self.predictions.log else {
            return Ok(None);
        };
        let mut users = users.to_vec();
        users.sort_unstable();
        users.dedup();
        let raw_after = raw.without_users(&users);
        let (before_log, after_log) = (cleaned(raw)?, cleaned(&raw_after)?);
        // One read of the catalogue for both.
        let builder = builder(store, raw.n_items())?;
        let (before, after) = (builder.build(&before_log), builder.build(&after_log));
        let change = Forgetting::new(&mut users, &before, &after).map_err(|e| e.to_string())?;
        let mut model = self.model.clone();
        let how = match model.forget(&change) {
            Ok(how) => how,
            Err(aisle_models::Error::Forget { .. }) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let index = self
            .index
            .is_some()
            .then(|| MipsIndex::build(&model, after.n_users(), version))
            .flatten();
        let mut predictions = self.predictions.clone();
        for u in change.users() {
            predictions.products.remove(u);
            predictions.departments.remove(u);
            predictions.churn.remove(u);
        }
        predictions.log = Some(Arc::new(raw_after));
        Ok(Some((
            Generation {
                version,
                model_name: self.model_name.clone(),
                model,
                index,
                trained_users: self.trained_users,
                trained_events: after_log.len(),
                trained_at_ms: self.trained_at_ms,
                train_seconds: started.elapsed().as_secs_f64(),
                predictions,
                analytics: self.analytics.clone(),
            },
            how,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{Live, LiveLimits};
    use aisle_store::Store;

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
        fn remembered(&self, key: &str) -> aisle_store::Result<Option<aisle_store::Remembered>> {
            self.0.remembered(key)
        }
        fn scan_impressions(
            &self,
            visit: &mut dyn FnMut(aisle_core::Impression),
        ) -> aisle_store::Result<()> {
            self.0.scan_impressions(visit)
        }
        fn impression(&self, id: u64) -> aisle_store::Result<Option<aisle_core::Impression>> {
            self.0.impression(id)
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

    /// The scores of every user below `n_users` for `model`, from their training rows.
    fn every_score(model: &Model, log: &EventLog) -> Vec<Vec<f32>> {
        let data = TrainDataBuilder::new().build(log);
        (0..data.n_users() as u32)
            .map(|u| {
                let history = data.matrix.row(u).0;
                let mut s = vec![0.0; model.n_items()];
                model.score(
                    &aisle_models::Query {
                        user: Some(u),
                        history,
                        ..Default::default()
                    },
                    &mut s,
                );
                s
            })
            .collect()
    }

    #[test]
    fn a_generation_forgets_users_exactly_as_a_retrain_without_them() {
        // The engine's default, a session model, and one that must refuse (EASE's downdates
        // are checked against a refit in aisle-models' tests: its dense inverse over this
        // catalogue takes minutes in the test profile).
        for model in ["itemknn", "sknn", "bpr"] {
            let store = aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample())
                .expect("sample");
            let served = train(&store, model, 1).expect("trains");
            // Five shoppers, each with events: their ids, then their records gone.
            let mut users = Vec::new();
            store
                .scan_users(&mut |id, user| {
                    if id.0 % 97 == 5 {
                        users.push((id.0, user.external_id));
                    }
                })
                .expect("users");
            users.truncate(5);
            let mut writer = store.writer().expect("writer");
            for (_, name) in &users {
                assert!(writer.forget_user(name).expect("forget"));
            }
            writer.commit().expect("commit");
            let ids: Vec<u32> = users.iter().map(|(id, _)| *id).collect();
            let Some((next, how)) = served.forget_users(&ids, &store, 2).expect("forgets") else {
                assert_eq!(model, "bpr", "{model} should forget in place");
                continue;
            };
            assert_ne!(
                model, "bpr",
                "a gradient-trained model cannot forget in place"
            );
            assert_eq!(next.version, 2);
            let log = next.predictions.log.clone().expect("the log");
            assert!(log.events().iter().all(|e| !ids.contains(&e.user)));
            let refit = train(&store, model, 3).expect("refits");
            let (ours, theirs) = (
                every_score(&next.model, &log),
                every_score(&refit.model, &EventLog::load(&store).expect("log")),
            );
            assert_eq!(ours.len(), theirs.len());
            for (u, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                if how == Forgot::Exactly {
                    assert!(a == b, "{model}: user {u}'s scores differ from a retrain's");
                } else {
                    let gap = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f32::max);
                    assert!(
                        gap < 1e-4,
                        "{model}: user {u}'s scores are {gap} from a retrain's"
                    );
                }
            }
        }
    }
}
