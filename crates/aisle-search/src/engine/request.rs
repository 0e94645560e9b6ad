//! What a search is asked and what it answers: request, response, hits, facets, config.

use aisle_core::ItemId;
use serde::{Deserialize, Serialize};

use crate::Filter;

/// Which retrievers answer a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 over the text index only.
    Lexical,
    /// Nearest neighbours of the query's embedding only.
    Semantic,
    /// Both, merged by reciprocal-rank fusion.
    Hybrid,
}

/// A query to the engine.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchRequest {
    /// What the shopper typed.
    pub query: String,
    /// Constraints every result meets.
    pub filter: Filter,
    /// Results per page. Default 10.
    pub limit: usize,
    /// Results to skip. Default 0.
    pub offset: usize,
    /// The retrievers; `None` uses hybrid when an encoder is loaded, else lexical.
    pub mode: Option<SearchMode>,
    /// The shopper may still be typing the last word (prefix match). Default true.
    pub typing: bool,
    /// Re-rank for the shopper when a ranker is loaded. Default true.
    pub personalise: bool,
}

impl Default for SearchRequest {
    fn default() -> Self {
        Self {
            query: String::new(),
            filter: Filter::default(),
            limit: 10,
            offset: 0,
            mode: None,
            typing: true,
            personalise: true,
        }
    }
}

impl SearchRequest {
    /// A request for `query` with the defaults.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            ..Self::default()
        }
    }
}

/// Counts of results per value, largest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facets {
    /// Top-level categories.
    pub departments: Vec<(String, usize)>,
    /// Full category paths (levels joined by `/`).
    pub categories: Vec<(String, usize)>,
    /// Brands.
    pub brands: Vec<(String, usize)>,
    /// Price bands (`"2-5"`, `"100+"`); items without a price are not counted.
    pub prices: Vec<(String, usize)>,
}

/// One result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The item.
    pub item: ItemId,
    /// Its final score (ranker output, fused score, BM25 or cosine, by stage).
    pub score: f32,
    /// BM25 score, when it matched the text.
    pub lexical: Option<f32>,
    /// Cosine similarity of item and query embeddings, when an encoder is loaded.
    pub semantic: Option<f32>,
    /// Why it is here, in words.
    pub reasons: Vec<String>,
}

/// A retrieved candidate before ranking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The item.
    pub item: ItemId,
    /// BM25 score and 0-based rank among lexical matches.
    pub lexical: Option<(f32, usize)>,
    /// 0-based rank among semantic neighbours.
    pub semantic_rank: Option<usize>,
    /// Cosine similarity to the query (0 without an encoder).
    pub similarity: f32,
    /// Score of the fused list.
    pub fused: f32,
}

impl Candidate {
    pub(super) fn blank(item: ItemId) -> Self {
        Self {
            item,
            lexical: None,
            semantic_rank: None,
            similarity: 0.0,
            fused: 0.0,
        }
    }
}

/// The answer to a [`SearchRequest`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The page of results.
    pub hits: Vec<Hit>,
    /// How many items matched (lexical matches plus semantic neighbours, after filters).
    pub total: usize,
    /// Facet counts over all matches.
    pub facets: Facets,
    /// The retrievers used.
    pub mode: Option<SearchMode>,
    /// Whether the ranker re-ordered the results.
    pub personalised: bool,
    /// Anything the caller should know (for example, that search is lexical only).
    pub notes: Vec<String>,
}

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Semantic neighbours per query. Default 100.
    pub semantic_depth: usize,
    /// The k of reciprocal-rank fusion, 1/(k + rank). Default 60 (Cormack et al., 2009).
    pub rrf_k: f32,
    /// Embed the category path with the title. Default true.
    pub embed_category: bool,
    /// Items from the shopper's own history added as candidates (closest to the query by
    /// embedding) when re-ranking. Default 20.
    pub personal_candidates: usize,
    /// Query embeddings kept for repeated queries (0: none). Default 10,000. The encoder is
    /// uncased, so queries differing only in case or spacing share an entry.
    pub query_cache: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            semantic_depth: 100,
            rrf_k: 60.0,
            embed_category: true,
            personal_candidates: 20,
            query_cache: 10_000,
        }
    }
}
