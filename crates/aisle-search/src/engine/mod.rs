//! The search pipeline: retrieve (lexical, semantic), fuse, filter, count facets,
//! re-rank for the shopper, explain.
//!
//! Split by concern: [`request`] types, index building (`catalogue`), retrieval
//! (`retrieve`), facet counting (`facets`) and personalised re-ranking (`rerank`). This file
//! holds the engine itself and the search that strings them together.

mod catalogue;
mod facets;
mod request;
mod rerank;
mod retrieve;

use std::sync::Arc;

use aisle_core::{EventKind, Item, ItemId};
use aisle_features::EventLog;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::rank::RankingContext;
use crate::{LearnedRanker, Ranker, Result, TextEncoder, TextIndex, VectorIndex};

use facets::{FacetKey, FacetNames};
pub use request::{
    Candidate, EngineConfig, Facets, Hit, SearchMode, SearchRequest, SearchResponse,
};
pub use retrieve::Retriever;

/// Catalogue, indexes and ranker: everything a search needs.
pub struct SearchEngine {
    text: TextIndex,
    items: Vec<Option<Item>>,
    encoder: Option<Arc<dyn TextEncoder>>,
    vectors: Option<VectorIndex>,
    ranker: Option<LearnedRanker>,
    popularity: Vec<f32>,
    recent_popularity: Vec<f32>,
    config: EngineConfig,
    /// Whether a response has already said that search is lexical only.
    told_lexical_only: std::sync::atomic::AtomicBool,
    /// Each item's facet values as indices into `facet_names`, so counting allocates nothing.
    facet_keys: Vec<FacetKey>,
    facet_names: FacetNames,
    query_vectors: std::sync::Mutex<FxHashMap<String, Vec<f32>>>,
}

impl SearchEngine {
    /// An engine over `text` with no catalogue loaded yet (see [`SearchEngine::sync_catalogue`]).
    pub fn new(text: TextIndex, config: EngineConfig) -> Self {
        Self {
            text,
            items: Vec::new(),
            encoder: None,
            vectors: None,
            ranker: None,
            popularity: Vec::new(),
            recent_popularity: Vec::new(),
            config,
            told_lexical_only: std::sync::atomic::AtomicBool::new(false),
            facet_keys: Vec::new(),
            facet_names: FacetNames::default(),
            query_vectors: std::sync::Mutex::new(FxHashMap::default()),
        }
    }

    /// Adds semantic retrieval: the encoder for queries and the item vectors made with it
    /// (an empty index is filled by the next [`SearchEngine::sync_catalogue`]).
    pub fn set_encoder(
        &mut self,
        encoder: Arc<dyn TextEncoder>,
        vectors: VectorIndex,
    ) -> Result<()> {
        let vectors = if vectors.is_empty() {
            VectorIndex::new(encoder.dimension())
        } else if vectors.dimension() != encoder.dimension() {
            return Err(crate::Error::Encoder {
                message: format!(
                    "saved item vectors are {} wide but the encoder makes {}; delete them to re-embed",
                    vectors.dimension(),
                    encoder.dimension()
                ),
            });
        } else {
            vectors
        };
        self.encoder = Some(encoder);
        self.vectors = Some(vectors);
        Ok(())
    }

    /// The item vectors, when an encoder is loaded.
    pub fn vectors(&self) -> Option<&VectorIndex> {
        self.vectors.as_ref()
    }

    /// Installs (or removes) the re-ranker.
    pub fn set_ranker(&mut self, ranker: Option<LearnedRanker>) {
        self.ranker = ranker;
    }

    /// The re-ranker, if one is installed.
    pub fn ranker(&self) -> Option<&LearnedRanker> {
        self.ranker.as_ref()
    }

    /// Item popularity features, indexed by item id: all-time and recent, both already on
    /// the scale the ranker was trained with (log of weighted counts).
    pub fn set_popularity(&mut self, all_time: Vec<f32>, recent: Vec<f32>) {
        self.popularity = all_time;
        self.recent_popularity = recent;
    }

    /// The popularity features: all time and recent, per item.
    pub fn popularity(&self) -> (&[f32], &[f32]) {
        (&self.popularity, &self.recent_popularity)
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The text index.
    pub fn text_index(&self) -> &TextIndex {
        &self.text
    }

    /// The catalogue entry of an item.
    pub fn item(&self, id: ItemId) -> Option<&Item> {
        self.items.get(id.index()).and_then(Option::as_ref)
    }

    /// Sets how many query embeddings are cached (0 turns the cache off).
    pub fn set_query_cache(&mut self, capacity: usize) {
        self.config.query_cache = capacity;
        self.query_vectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Runs the pipeline for one request.
    pub fn search(
        &self,
        request: &SearchRequest,
        ctx: &RankingContext<'_>,
    ) -> Result<SearchResponse> {
        let retrieved = self.retrieve(request)?;
        let total = retrieved.order.len();
        let mut order = retrieved.order.clone();
        let mut scores: Vec<f32> = order.iter().map(|c| c.fused).collect();
        let mut personalised = false;
        if let (Some(ranker), true) = (&self.ranker, request.personalise) {
            let head = self.ranking_head(&retrieved, ranker.depth, request, ctx);
            let features = self.feature_rows(&head, ctx);
            let ranked = ranker.score(&features);
            let mut pairs: Vec<(Candidate, f32)> = head.into_iter().zip(ranked).collect();
            pairs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.item.cmp(&b.0.item)));
            let in_head: FxHashSet<ItemId> = pairs.iter().map(|p| p.0.item).collect();
            let tail: Vec<Candidate> = order
                .into_iter()
                .filter(|c| !in_head.contains(&c.item))
                .collect();
            // Ranker scores are shifted above every fused score of the tail.
            let tail_top = tail.first().map_or(0.0, |c| c.fused);
            let lowest = pairs.iter().map(|p| p.1).fold(f32::INFINITY, f32::min);
            let shift = (tail_top - lowest + 1.0).max(0.0);
            scores = pairs
                .iter()
                .map(|p| p.1 + shift)
                .chain(tail.iter().map(|c| c.fused))
                .collect();
            order = pairs.iter().map(|p| p.0).chain(tail).collect();
            personalised = ctx.profile.is_some_and(|p| !p.is_empty());
        }
        let mut page: Vec<(Candidate, f32)> = order
            .iter()
            .copied()
            .zip(scores)
            .skip(request.offset)
            .take(request.limit)
            .collect();
        let mut shown: Vec<Candidate> = page.iter().map(|p| p.0).collect();
        self.fill_similarity(&retrieved.query_vector, &mut shown);
        for (p, c) in page.iter_mut().zip(shown) {
            p.0 = c;
        }
        let hits = page
            .iter()
            .map(|(c, score)| (c, *score))
            .map(|(c, score)| Hit {
                item: c.item,
                score,
                lexical: c.lexical.map(|l| l.0),
                semantic: retrieved.query_vector.as_ref().map(|_| c.similarity),
                reasons: self.reasons(c, ctx),
            })
            .collect();
        Ok(SearchResponse {
            hits,
            total,
            facets: retrieved.facets,
            mode: Some(retrieved.mode),
            personalised,
            notes: retrieved.notes,
        })
    }
}

/// Item popularity as the ranker reads it ([`SearchEngine::set_popularity`]): log(1 +
/// purchases), over all of `log` and over its last 30 days.
pub fn popularity_features(log: &EventLog) -> (Vec<f32>, Vec<f32>) {
    const RECENT_MS: i64 = 30 * 86_400_000;
    let end = log
        .events()
        .iter()
        .map(|e| e.timestamp_ms)
        .max()
        .unwrap_or(0);
    let mut all = vec![0f32; log.n_items()];
    let mut recent = vec![0f32; log.n_items()];
    for e in log
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Purchase)
    {
        if let Some(i) = e.item() {
            all[i.index()] += 1.0;
            if e.timestamp_ms > end - RECENT_MS {
                recent[i.index()] += 1.0;
            }
        }
    }
    let log1p = |v: Vec<f32>| v.into_iter().map(|x| x.ln_1p()).collect();
    (log1p(all), log1p(recent))
}
