//! Training input shared by every model.

use std::collections::HashMap;

use aisle_core::Item;
use aisle_features::{
    EventLog, Interaction, InteractionMatrix, KindWeights, Sequences, SessionConfig, Sessions,
};

/// Everything a model may learn from, derived once from an event log.
pub struct TrainData {
    /// Users × items, weighted by event kind.
    pub matrix: InteractionMatrix,
    /// Items × users (the transpose of `matrix`).
    pub item_users: InteractionMatrix,
    /// Each user's item events, oldest first.
    pub sequences: Sequences,
    /// Item sequences of sessions, oldest event first. Where the data has no real sessions
    /// (on average fewer than 1.5 item events each, as in review data whose events are days
    /// apart), each user's whole sequence stands in for a session, so that session models
    /// still see co-occurrence.
    pub sessions: Vec<Vec<u32>>,
    /// Time of each session's last event.
    pub session_end_ms: Vec<i64>,
    /// The user of each session (what forgetting a user removes from the session models).
    pub session_users: Vec<u32>,
    /// Item events (the log without events that have no item), time-ordered.
    pub item_events: Vec<Interaction>,
    /// Top-level category of each item (`u32::MAX` for none).
    pub item_category: Vec<u32>,
    /// Text of each item (title, description, category path, brand, attributes).
    pub item_text: Vec<String>,
    /// Categorical features of each item, as ids below `n_item_features`: every level of
    /// the category path, the brand, and each whitespace-separated attribute value.
    pub item_features: Vec<Vec<u32>>,
    /// Number of distinct item features.
    pub n_item_features: usize,
    /// Time of the last training event.
    pub end_ms: i64,
}

impl TrainData {
    /// Number of users (the id range).
    pub fn n_users(&self) -> usize {
        self.matrix.n_users()
    }

    /// Number of items (the id range).
    pub fn n_items(&self) -> usize {
        self.matrix.n_items()
    }
}

/// Builds [`TrainData`]: kind weights, session cuts and item metadata.
#[derive(Clone, Debug, Default)]
pub struct TrainDataBuilder {
    weights: KindWeights,
    sessions: SessionConfig,
    items: Vec<Option<Item>>,
}

impl TrainDataBuilder {
    /// Defaults: [`KindWeights::default`], 30-minute sessions, no item metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Per-kind weights of the interaction matrix.
    pub fn weights(mut self, weights: KindWeights) -> Self {
        self.weights = weights;
        self
    }

    /// How sessions are cut where the data has no session ids.
    pub fn sessions(mut self, sessions: SessionConfig) -> Self {
        self.sessions = sessions;
        self
    }

    /// Item records by item id (for text and category models).
    pub fn items(mut self, items: Vec<Option<Item>>) -> Self {
        self.items = items;
        self
    }

    /// Builds the training structures from `log`.
    pub fn build(&self, log: &EventLog) -> TrainData {
        let matrix = InteractionMatrix::build(log, &self.weights);
        let mut cells = Vec::with_capacity(matrix.nnz());
        for u in 0..matrix.n_users() as u32 {
            let (items, values) = matrix.row(u);
            for (&i, &v) in items.iter().zip(values) {
                cells.push((i, u, v));
            }
        }
        let item_users =
            InteractionMatrix::from_triplets(matrix.n_items(), matrix.n_users(), cells);
        let sequences = Sequences::build(log, |kind| self.weights.weight(kind) != 0.0);
        let cut = Sessions::build(log, &self.sessions);
        let events = log.events();
        let mut sessions = Vec::with_capacity(cut.len());
        let mut session_end_ms = Vec::with_capacity(cut.len());
        let mut session_users = Vec::with_capacity(cut.len());
        for s in 0..cut.len() {
            let idx = cut.events(s);
            let items: Vec<u32> = idx
                .iter()
                .map(|&i| events[i as usize])
                .filter(|e| e.item().is_some() && self.weights.weight(e.kind) != 0.0)
                .map(|e| e.item)
                .collect();
            if items.is_empty() {
                continue;
            }
            session_end_ms.push(
                idx.iter()
                    .map(|&i| events[i as usize].timestamp_ms)
                    .max()
                    .unwrap_or(0),
            );
            sessions.push(items);
            session_users.push(cut.user(s));
        }
        let mean_length =
            sessions.iter().map(Vec::len).sum::<usize>() as f64 / sessions.len().max(1) as f64;
        if mean_length < 1.5 {
            sessions.clear();
            session_end_ms.clear();
            session_users.clear();
            for u in 0..sequences.n_users() as u32 {
                if !sequences.items(u).is_empty() {
                    sessions.push(sequences.items(u).to_vec());
                    session_end_ms.push(sequences.timestamps(u).last().copied().unwrap_or(0));
                    session_users.push(u);
                }
            }
        }
        let n_items = log.n_items();
        let mut categories: HashMap<String, u32> = HashMap::new();
        let mut item_category = vec![u32::MAX; n_items];
        let mut item_text = vec![String::new(); n_items];
        let mut features: HashMap<String, u32> = HashMap::new();
        let mut item_features = vec![Vec::new(); n_items];
        for (id, item) in self.items.iter().enumerate().take(n_items) {
            let Some(item) = item else { continue };
            if let Some(top) = item.category.first() {
                let next = categories.len() as u32;
                item_category[id] = *categories.entry(top.clone()).or_insert(next);
            }
            let mut text = format!(
                "{} {} {}",
                item.title,
                item.description,
                item.category.join(" ")
            );
            if let Some(brand) = &item.brand {
                text.push(' ');
                text.push_str(brand);
            }
            for value in item.attributes.values() {
                text.push(' ');
                text.push_str(value);
            }
            item_text[id] = text;
            item_features[id] = item_feature_names(item)
                .into_iter()
                .map(|name| {
                    let next = features.len() as u32;
                    *features.entry(name).or_insert(next)
                })
                .collect();
        }
        TrainData {
            matrix,
            item_users,
            sequences,
            sessions,
            session_end_ms,
            session_users,
            item_events: events
                .iter()
                .filter(|e| e.item().is_some())
                .copied()
                .collect(),
            item_category,
            item_text,
            item_features,
            n_item_features: features.len(),
            end_ms: events.last().map_or(0, |e| e.timestamp_ms),
        }
    }
}

/// The categorical features of an item, named so that equal names mean the same feature.
fn item_feature_names(item: &Item) -> Vec<String> {
    let mut names = Vec::new();
    for level in 1..=item.category.len() {
        names.push(format!("category:{}", item.category[..level].join(">")));
    }
    if let Some(brand) = &item.brand {
        names.push(format!("brand:{brand}"));
    }
    for (key, value) in &item.attributes {
        for token in value.split_whitespace() {
            names.push(format!("{key}:{token}"));
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}
