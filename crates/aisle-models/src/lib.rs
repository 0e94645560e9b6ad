//! Recommenders behind one trait.
//!
//! Every model implements [`Recommender`]: it is fitted on a [`TrainData`] (built from the
//! store's event log, never from the store itself) and scores every item for a [`Query`]: a
//! known user, an anonymous session or an item sequence, given by its history. Top-N lists,
//! exclusion of already-bought items and category filters are shared ([`recommend`]), so every
//! model gets them alike.
//!
//! The trait lives here rather than in `aisle-core` because its training input is the
//! `aisle-features` structures, which core must not depend on.
//!
//! [`Model`] names every implementation, builds it from a [`ModelConfig`] and is what gets
//! saved: a versioned file holding the config and the fitted weights ([`Model::save`]).

pub mod ann;
mod data;
mod ease;
mod error;
pub mod explain;
mod forget;
mod hybrid;
mod knn;
mod mf;
mod mlp;
mod model;
mod popularity;
mod rp3beta;
mod sequential;
mod session;
mod sparse;
mod tfidf;
mod topk;

pub use data::{TrainData, TrainDataBuilder};
pub use ease::{Ease, EaseConfig};
pub use error::{Error, Result};
pub use forget::{Forgetting, Forgot};
pub use hybrid::{Hybrid, HybridComponent, HybridConfig};
pub use knn::{ItemKnn, ItemKnnConfig, Similarity, UserKnn, UserKnnConfig};
pub use mf::{Als, AlsConfig, Bpr, BprConfig, PureSvd, PureSvdConfig};
pub use mlp::{Mlp, MlpConfig, MlpData};
pub use model::{MODEL_NAMES, Model, ModelConfig};
pub use popularity::{Popularity, PopularityConfig};
pub use rp3beta::{Rp3Beta, Rp3BetaConfig};
pub use sequential::{
    CaserConfig, Gru4Rec, Gru4RecConfig, Gru4RecLoss, Mixer, Transformer, TransformerConfig,
};
pub use session::{SequentialRules, SequentialRulesConfig, SessionKnn, SessionKnnConfig};
pub use tfidf::{TfIdf, TfIdfConfig};
pub use topk::{Scored, top_k};

/// What a model is asked about.
#[derive(Clone, Copy, Debug, Default)]
pub struct Query<'a> {
    /// The user, when known to the model (a trained user id).
    pub user: Option<u32>,
    /// Items the user or session interacted with, oldest first.
    pub history: &'a [u32],
    /// The kind of each history event, where known (empty, or as long as `history`).
    pub kinds: &'a [aisle_core::EventKind],
    /// The time of each history event in ms, where known (empty, or as long as `history`).
    pub times_ms: &'a [i64],
}

/// What fitting produced, for logs and reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitReport {
    /// Training loss per epoch or iteration, where the model has one.
    pub loss_curve: Vec<f64>,
    /// Validation metric per epoch (NDCG@10 for the transformer), where the model has one.
    pub validation_curve: Vec<f64>,
    /// Training sequences per second, where the model trains on sequences.
    pub sequences_per_second: Option<f64>,
}

/// A recommender.
pub trait Recommender: Send + Sync {
    /// Fits the model. Refitting replaces what was learnt.
    fn fit(&mut self, data: &TrainData) -> Result<FitReport>;

    /// Writes a relevance score for every item into `scores` (`scores.len()` = number of
    /// items); higher is better, and only the order matters.
    fn score(&self, query: &Query<'_>, scores: &mut [f32]);

    /// Scores several queries at once into `scores` (`queries.len()` rows of
    /// [`Recommender::n_items`]). Models that gain from batching (the transformer)
    /// override this; the default scores one query at a time.
    fn score_batch(&self, queries: &[Query<'_>], scores: &mut [f32]) {
        let n = self.n_items();
        for (query, row) in queries.iter().zip(scores.chunks_mut(n.max(1))) {
            self.score(query, row);
        }
    }

    /// Items most similar to `item`, best first. Models without an item-to-item notion fall
    /// back to scoring the one-item history `[item]`.
    fn similar_items(&self, item: u32, k: usize) -> Vec<Scored> {
        let mut scores = vec![0.0; self.n_items()];
        self.score(
            &Query {
                history: &[item],
                ..Query::default()
            },
            &mut scores,
        );
        scores[item as usize] = f32::NEG_INFINITY;
        top_k(&scores, k, |_| true)
    }

    /// Number of items the model scores.
    fn n_items(&self) -> usize;

    /// The item factors, for models whose score is an inner product of a query vector
    /// ([`Recommender::query_factors`]) and an item row, plus a bias: what an approximate
    /// index ([`ann::MipsIndex`]) serves them from. `None` for every other model.
    fn item_factors(&self) -> Option<ann::InnerProduct<'_>> {
        None
    }

    /// The query's vector, for models with [`Recommender::item_factors`].
    fn query_factors(&self, _query: &Query<'_>) -> Option<Vec<f32>> {
        None
    }

    /// Forgets users in place, without a refit: what the counting models, EASE and ALS
    /// can do (see [`Forgot`] for how exactly). The default refuses: a model trained by
    /// gradient descent keeps what it learnt from a user in every weight, and only a refit
    /// without them removes it.
    fn forget(&mut self, _change: &Forgetting<'_>) -> Result<Forgot> {
        Err(Error::Forget {
            model: "this model",
            reason: "its weights are trained by gradient descent, so only a refit without the users removes them".into(),
        })
    }
}

/// Options of a top-N request.
#[derive(Clone, Copy, Default)]
pub struct RecOptions<'a> {
    /// Items never to return (already bought, already in the cart, ...).
    pub exclude: &'a [u32],
    /// Keep only items this filter accepts (a category, an attribute, ...).
    pub filter: Option<&'a (dyn Fn(u32) -> bool + Sync)>,
}

/// Top-`k` items for `query`, with exclusions and filters applied.
pub fn recommend(
    model: &dyn Recommender,
    query: &Query<'_>,
    k: usize,
    options: &RecOptions<'_>,
) -> Vec<Scored> {
    let mut scores = vec![0.0f32; model.n_items()];
    model.score(query, &mut scores);
    for &item in options.exclude {
        if let Some(s) = scores.get_mut(item as usize) {
            *s = f32::NEG_INFINITY;
        }
    }
    match options.filter {
        Some(filter) => top_k(&scores, k, filter),
        None => top_k(&scores, k, |_| true),
    }
}
