//! Personalised re-ranking: ranking features per candidate, the learned or default ranker,
//! and the reasons shown with each hit.

use aisle_core::{Item, ItemId};
use rustc_hash::{FxHashMap, FxHashSet};

use super::retrieve::Retrieved;
use super::*;
use crate::Result;
use crate::rank::{self, N_FEATURES, RankingContext, Signals};
use aisle_ann::dot;

impl SearchEngine {
    /// What the ranker sees: the fused list's first `depth`, plus up to
    /// `personal_candidates` of the shopper's own items that the query reaches, those that
    /// matched further down first, then those closest to the query by embedding.
    pub(super) fn ranking_head(
        &self,
        retrieved: &Retrieved,
        depth: usize,
        request: &SearchRequest,
        ctx: &RankingContext<'_>,
    ) -> Vec<Candidate> {
        let depth = depth.min(retrieved.order.len());
        let mut head: Vec<Candidate> = retrieved.order[..depth].to_vec();
        let Some(profile) = ctx.profile else {
            return head;
        };
        let present: FxHashSet<ItemId> = head.iter().map(|c| c.item).collect();
        let mut own: Vec<Candidate> = retrieved.order[depth..]
            .iter()
            .filter(|c| profile.item(c.item).is_some())
            .copied()
            .collect();
        let matched: FxHashSet<ItemId> = own.iter().map(|c| c.item).collect();
        if let (Some(qv), Some(vectors)) = (&retrieved.query_vector, &self.vectors) {
            let mut near: Vec<Candidate> = profile
                .items()
                .filter(|id| !present.contains(id) && !matched.contains(id))
                .filter(|id| {
                    self.item(*id)
                        .is_some_and(|item| request.filter.accepts(item))
                })
                .filter_map(|id| {
                    vectors.get(id).map(|v| Candidate {
                        similarity: dot(qv, v),
                        ..Candidate::blank(id)
                    })
                })
                .collect();
            near.sort_by(|a, b| {
                b.similarity
                    .total_cmp(&a.similarity)
                    .then(a.item.cmp(&b.item))
            });
            own.extend(near);
        }
        own.truncate(self.config.personal_candidates);
        head.extend(own);
        self.fill_similarity(&retrieved.query_vector, &mut head);
        head
    }

    /// The candidates and their feature rows for `request`, as the ranker would see them
    /// with `depth` (for training the ranker from logged or simulated searches).
    pub fn candidates_with_features(
        &self,
        request: &SearchRequest,
        ctx: &RankingContext<'_>,
        depth: usize,
    ) -> Result<(Vec<ItemId>, Vec<f32>)> {
        let retrieved = self.retrieve(request)?;
        let head = self.ranking_head(&retrieved, depth, request, ctx);
        let features = self.feature_rows(&head, ctx);
        Ok((head.iter().map(|c| c.item).collect(), features))
    }

    pub(super) fn feature_rows(
        &self,
        candidates: &[Candidate],
        ctx: &RankingContext<'_>,
    ) -> Vec<f32> {
        let recommender_rank: FxHashMap<ItemId, f32> = match ctx.recommender_scores {
            Some(scores) => {
                let mut by_score: Vec<(ItemId, f32)> = candidates
                    .iter()
                    .map(|c| {
                        (
                            c.item,
                            scores
                                .get(c.item.index())
                                .copied()
                                .unwrap_or(f32::NEG_INFINITY),
                        )
                    })
                    .collect();
                by_score.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let n = by_score.len().max(1) as f32;
                by_score
                    .iter()
                    .enumerate()
                    .map(|(r, (id, _))| (*id, 1.0 - r as f32 / n))
                    .collect()
            }
            None => FxHashMap::default(),
        };
        let mut rows = Vec::with_capacity(candidates.len() * N_FEATURES);
        let empty = Item::default();
        for c in candidates {
            let signals = Signals {
                lexical: c.lexical,
                semantic_rank: c.semantic_rank,
                similarity: c.similarity,
                fused: c.fused,
                popularity: self.popularity.get(c.item.index()).copied().unwrap_or(0.0),
                recent_popularity: self
                    .recent_popularity
                    .get(c.item.index())
                    .copied()
                    .unwrap_or(0.0),
                recommender_rank: recommender_rank.get(&c.item).copied().unwrap_or(0.0),
            };
            rank::features(
                c.item,
                self.item(c.item).unwrap_or(&empty),
                &signals,
                ctx,
                &mut rows,
            );
        }
        rows
    }

    pub(super) fn reasons(&self, c: &Candidate, ctx: &RankingContext<'_>) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some((score, rank)) = c.lexical {
            reasons.push(format!(
                "matches the query text (BM25 {score:.2}, text rank {})",
                rank + 1
            ));
        }
        if c.semantic_rank.is_some() || (c.lexical.is_none() && c.similarity > 0.0) {
            reasons.push(format!(
                "close in meaning to the query (cosine {:.2})",
                c.similarity
            ));
        }
        if let Some(profile) = ctx.profile {
            if let Some((count, _)) = profile.item(c.item) {
                reasons.push(format!("you chose it before (weight {count:.1})"));
            }
            if let Some(item) = self.item(c.item) {
                let share = profile.category_share(&item.category);
                if share >= 0.05 {
                    reasons.push(format!(
                        "{:.0}% of your activity is in {}",
                        share * 100.0,
                        item.category.join(" > ")
                    ));
                }
            }
        }
        reasons
    }
}
