//! Candidate generation: lexical and semantic retrieval, fused, filtered, with facets.

use aisle_core::ItemId;
use rustc_hash::{FxHashMap, FxHashSet};

use super::*;
use crate::{Result, TextIndex};
use aisle_ann::dot;

/// Finds candidates for a query, best first.
pub trait Retriever: Send + Sync {
    /// Up to `limit` items with their retrieval scores, best first.
    fn retrieve(&self, query: &str, limit: usize) -> Result<Vec<(ItemId, f32)>>;
}

impl Retriever for TextIndex {
    fn retrieve(&self, query: &str, limit: usize) -> Result<Vec<(ItemId, f32)>> {
        let mut found = self.matches(query, false)?;
        found.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        found.truncate(limit);
        Ok(found)
    }
}

/// Retrieval's output, before ranking.
pub(super) struct Retrieved {
    pub(super) order: Vec<Candidate>,
    pub(super) mode: SearchMode,
    pub(super) query_vector: Option<Vec<f32>>,
    pub(super) facets: Facets,
    pub(super) notes: Vec<String>,
}

impl SearchEngine {
    /// Retrieves, filters and fuses: every match, best first, with facet counts.
    pub(super) fn retrieve(&self, request: &SearchRequest) -> Result<Retrieved> {
        let mut notes = Vec::new();
        let query = request.query.trim();
        let can_embed =
            self.encoder.is_some() && self.vectors.as_ref().is_some_and(|v| !v.is_empty());
        let mut mode = request.mode.unwrap_or(if can_embed {
            SearchMode::Hybrid
        } else {
            SearchMode::Lexical
        });
        let explicit = request.mode.is_some_and(|m| m != SearchMode::Lexical);
        if !can_embed
            && (explicit
                || !self
                    .told_lexical_only
                    .swap(true, std::sync::atomic::Ordering::Relaxed))
        {
            notes.push(
                "semantic search is off (no sentence encoder loaded; see scripts/fetch-encoder.sh and AISLE_ENCODER): results are lexical only"
                    .to_string(),
            );
        }
        if !can_embed || query.is_empty() {
            mode = SearchMode::Lexical;
        }
        let unfiltered = request.filter.is_empty();
        let accepts = |id: ItemId| {
            self.item(id)
                .is_some_and(|item| unfiltered || request.filter.accepts(item))
        };
        let mut pool: Vec<Candidate> = Vec::new();
        if mode != SearchMode::Semantic {
            let mut lexical: Vec<(ItemId, f32)> = self.text.matches(query, request.typing)?;
            lexical.retain(|&(id, _)| accepts(id));
            lexical.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            pool = lexical
                .into_iter()
                .enumerate()
                .map(|(rank, (id, score))| Candidate {
                    lexical: Some((score, rank)),
                    ..Candidate::blank(id)
                })
                .collect();
        }
        // Lexical mode embeds the query only for the re-ranker's similarity feature.
        let rerank = request.personalise && self.ranker.is_some();
        let query_vector =
            if mode != SearchMode::Lexical || (can_embed && rerank && !query.is_empty()) {
                self.embed_query(query)?
            } else {
                None
            };
        if let (Some(qv), Some(vectors), true) =
            (&query_vector, &self.vectors, mode != SearchMode::Lexical)
        {
            let depth = self.config.semantic_depth;
            let wanted = if request.filter.is_empty() {
                depth
            } else {
                depth * 20
            };
            let neighbours = vectors.search(qv, wanted);
            let mut position: FxHashMap<ItemId, usize> = FxHashMap::default();
            let neighbours: Vec<(ItemId, f32)> = neighbours
                .into_iter()
                .filter(|&(id, _)| accepts(id))
                .take(depth)
                .collect();
            let wanted: FxHashSet<ItemId> = neighbours.iter().map(|n| n.0).collect();
            for (i, c) in pool.iter().enumerate() {
                if wanted.contains(&c.item) {
                    position.insert(c.item, i);
                }
            }
            for (rank, (id, similarity)) in neighbours.into_iter().enumerate() {
                let at = *position.entry(id).or_insert_with(|| {
                    pool.push(Candidate::blank(id));
                    pool.len() - 1
                });
                pool[at].semantic_rank = Some(rank);
                pool[at].similarity = similarity;
            }
        }
        let k = self.config.rrf_k;
        // Similarities of lexical-only matches are computed later, for those that reach the
        // ranker or the page (there can be tens of thousands of matches).
        for c in &mut pool {
            c.fused = match mode {
                SearchMode::Lexical => c.lexical.map_or(0.0, |l| l.0),
                SearchMode::Semantic => c.similarity,
                SearchMode::Hybrid => {
                    c.lexical.map_or(0.0, |l| 1.0 / (k + 1.0 + l.1 as f32))
                        + c.semantic_rank.map_or(0.0, |r| 1.0 / (k + 1.0 + r as f32))
                }
            };
        }
        let facets = self.facets(pool.iter().map(|c| c.item));
        let mut order = pool;
        order.sort_unstable_by(|a, b| b.fused.total_cmp(&a.fused).then(a.item.cmp(&b.item)));
        Ok(Retrieved {
            order,
            mode,
            query_vector,
            facets,
            notes,
        })
    }

    /// Fills in the query similarity of candidates that only matched lexically.
    pub(super) fn fill_similarity(
        &self,
        query_vector: &Option<Vec<f32>>,
        candidates: &mut [Candidate],
    ) {
        let (Some(qv), Some(vectors)) = (query_vector, &self.vectors) else {
            return;
        };
        for c in candidates.iter_mut().filter(|c| c.semantic_rank.is_none()) {
            if let Some(v) = vectors.get(c.item) {
                c.similarity = dot(qv, v);
            }
        }
    }

    /// The query's embedding, from the cache when the same query was seen recently.
    pub(super) fn embed_query(&self, query: &str) -> Result<Option<Vec<f32>>> {
        let Some(encoder) = &self.encoder else {
            return Ok(None);
        };
        let capacity = self.config.query_cache;
        let key = query
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let cache = || self.query_vectors.lock().unwrap_or_else(|e| e.into_inner());
        if capacity > 0
            && let Some(v) = cache().get(&key)
        {
            return Ok(Some(v.clone()));
        }
        let vector = encoder.encode(&[query])?.pop();
        if let (Some(v), true) = (&vector, capacity > 0) {
            let mut cache = cache();
            // Emptied when full: simple, and popular queries come straight back.
            if cache.len() >= capacity {
                cache.clear();
            }
            cache.insert(key, v.clone());
        }
        Ok(vector)
    }
}
