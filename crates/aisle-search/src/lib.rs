//! Product search: full text (English and Chinese), semantic retrieval and re-ranking
//! personalised by behaviour.
//!
//! A query goes through three stages, each behind a trait so it can be swapped:
//! [`Retriever`]s find candidates (the tantivy [`TextIndex`], the [`VectorIndex`] over
//! MiniLM embeddings), reciprocal-rank fusion merges them, and a [`Ranker`] re-orders the
//! head of the list for the shopper (the LambdaMART [`LearnedRanker`]). Filters and facet
//! counts are computed over the catalogue the [`SearchEngine`] keeps in memory, so they are
//! exact for every stage.

mod catalogue;
mod encoder;
mod engine;
mod error;
mod filter;
mod rank;
mod saved;
mod text;

pub use aisle_ann::VectorIndex;
pub use catalogue::load_catalogue;
pub use encoder::{ENCODER_ENV, SentenceEncoder, TextEncoder, WordPiece};
pub use engine::{
    Candidate, EngineConfig, Facets, Hit, Retriever, SearchEngine, SearchMode, SearchRequest,
    SearchResponse, popularity_features,
};
pub use error::{Error, Result};
pub use filter::{Filter, PriceRange};
pub use rank::{
    BehaviourProfile, FEATURE_NAMES, LearnedRanker, Ranker, RankerConfig, RankingContext,
    TrainingQuery,
};
pub use saved::{load_vectors, save_vectors};
pub use text::{FieldBoosts, Synonyms, TextIndex, content_hash};
