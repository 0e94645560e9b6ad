//! The search pipeline: retrieve (lexical, semantic), fuse, filter, count facets,
//! re-rank for the shopper, explain.

use std::sync::Arc;

use aisle_core::{Item, ItemId};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::rank::{self, N_FEATURES, RankingContext, Signals};
use crate::vector::dot;
use crate::{Filter, LearnedRanker, Ranker, Result, TextEncoder, TextIndex, VectorIndex};

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
    fn blank(item: ItemId) -> Self {
        Self {
            item,
            lexical: None,
            semantic_rank: None,
            similarity: 0.0,
            fused: 0.0,
        }
    }
}

/// Retrieval's output, before ranking.
struct Retrieved {
    order: Vec<Candidate>,
    mode: SearchMode,
    query_vector: Option<Vec<f32>>,
    facets: Facets,
    notes: Vec<String>,
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

const PRICE_BANDS: [f64; 7] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];

fn price_band(price: f64) -> String {
    let mut low = 0.0;
    for high in PRICE_BANDS {
        if price < high {
            return format!("{low}-{high}");
        }
        low = high;
    }
    format!("{low}+")
}

fn embedding_text(item: &Item, with_category: bool) -> String {
    let mut text = item.title.clone();
    if let Some(brand) = &item.brand {
        text.push_str(", ");
        text.push_str(brand);
    }
    if with_category && !item.category.is_empty() {
        text.push_str(" (");
        text.push_str(&item.category.join(" > "));
        text.push(')');
    }
    text
}

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

/// An item's facet values, interned.
#[derive(Clone, Copy, Debug, Default)]
struct FacetKey {
    department: Option<u32>,
    category: Option<u32>,
    brand: Option<u32>,
    price_band: Option<u32>,
}

#[derive(Debug, Default)]
struct FacetNames {
    departments: Interner,
    categories: Interner,
    brands: Interner,
    price_bands: Interner,
}

#[derive(Debug, Default)]
struct Interner {
    names: Vec<String>,
    ids: FxHashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, name: String) -> u32 {
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn counted(&self, counts: &[usize]) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = counts
            .iter()
            .enumerate()
            .filter(|c| *c.1 > 0)
            .map(|(i, &n)| (self.names[i].clone(), n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
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

    /// The text an item is embedded with: title, brand and (by default) category path.
    pub fn embedding_text(&self, item: &Item) -> String {
        embedding_text(item, self.config.embed_category)
    }

    /// Makes the indexes match `catalogue` (indexed by item id; `None` = no such item):
    /// new and changed items are (re)indexed and embedded, missing ones removed. Returns
    /// how many items were (re)indexed and how many removed.
    pub fn sync_catalogue(
        &mut self,
        catalogue: Vec<Option<Item>>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<(usize, usize)> {
        let indexed = self.text.content_hashes()?;
        let mut changed = Vec::new();
        for (i, item) in catalogue.iter().enumerate() {
            if let Some(item) = item
                && indexed.get(&ItemId(i as u32)) != Some(&crate::content_hash(item))
            {
                changed.push(ItemId(i as u32));
            }
        }
        let removed: Vec<ItemId> = indexed
            .keys()
            .filter(|id| catalogue.get(id.index()).is_none_or(Option::is_none))
            .copied()
            .collect();
        self.items = catalogue;
        let updates: Vec<(ItemId, Item)> = changed
            .iter()
            .filter_map(|&id| self.item(id).map(|item| (id, item.clone())))
            .collect();
        self.apply(updates, &removed, progress)?;
        Ok((changed.len(), removed.len()))
    }

    /// Adds or replaces items; the next search sees them.
    pub fn upsert_items(&mut self, items: Vec<(ItemId, Item)>) -> Result<()> {
        for (id, item) in &items {
            if self.items.len() <= id.index() {
                self.items.resize(id.index() + 1, None);
            }
            self.items[id.index()] = Some(item.clone());
        }
        self.apply(items, &[], &|_| {})
    }

    /// Removes items; the next search no longer returns them.
    pub fn delete_items(&mut self, ids: &[ItemId]) -> Result<()> {
        for id in ids {
            if let Some(slot) = self.items.get_mut(id.index()) {
                *slot = None;
            }
        }
        self.apply(Vec::new(), ids, &|_| {})
    }

    fn apply(
        &mut self,
        updates: Vec<(ItemId, Item)>,
        removed: &[ItemId],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        for (id, item) in &updates {
            self.text.upsert(*id, item)?;
        }
        for &id in removed {
            self.text.delete(id);
        }
        self.text.commit()?;
        self.refresh_facet_keys();
        self.embed_stale(progress)
    }

    fn refresh_facet_keys(&mut self) {
        let names = &mut self.facet_names;
        self.facet_keys = self
            .items
            .iter()
            .map(|item| {
                let Some(item) = item else {
                    return FacetKey::default();
                };
                FacetKey {
                    department: item
                        .category
                        .first()
                        .map(|d| names.departments.id(d.clone())),
                    category: (!item.category.is_empty())
                        .then(|| names.categories.id(item.category.join("/"))),
                    brand: item.brand.as_ref().map(|b| names.brands.id(b.clone())),
                    price_band: item.price.map(|p| names.price_bands.id(price_band(p))),
                }
            })
            .collect();
    }

    /// Embeds every catalogue item whose vector is missing or was made from other text,
    /// and drops vectors of items no longer in the catalogue.
    fn embed_stale(&mut self, progress: &(dyn Fn(usize) + Sync)) -> Result<()> {
        let (Some(encoder), Some(vectors)) = (&self.encoder, self.vectors.as_mut()) else {
            return Ok(());
        };
        let with_category = self.config.embed_category;
        let mut stale: Vec<(ItemId, String, u64)> = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let Some(item) = item else { continue };
            let id = ItemId(i as u32);
            let text = embedding_text(item, with_category);
            let tag = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
            if vectors.tag(id) != Some(tag) {
                stale.push((id, text, tag));
            }
        }
        let gone: Vec<ItemId> = vectors
            .ids()
            .filter(|id| self.items.get(id.index()).is_none_or(Option::is_none))
            .collect();
        for id in gone {
            vectors.delete(id);
        }
        let fresh = vectors.is_empty();
        for chunk in stale.chunks(1024) {
            let refs: Vec<&str> = chunk.iter().map(|s| s.1.as_str()).collect();
            let embedded = encoder.encode(&refs)?;
            for ((id, _, tag), v) in chunk.iter().zip(embedded) {
                vectors.upsert(*id, &v, *tag);
            }
            progress(chunk.len());
        }
        if fresh && !vectors.is_empty() {
            vectors.rebuild_lists(42);
        }
        Ok(())
    }

    /// Retrieves, filters and fuses: every match, best first, with facet counts.
    fn retrieve(&self, request: &SearchRequest) -> Result<Retrieved> {
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
    fn fill_similarity(&self, query_vector: &Option<Vec<f32>>, candidates: &mut [Candidate]) {
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
    fn embed_query(&self, query: &str) -> Result<Option<Vec<f32>>> {
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

    /// Sets how many query embeddings are cached (0 turns the cache off).
    pub fn set_query_cache(&mut self, capacity: usize) {
        self.config.query_cache = capacity;
        self.query_vectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// What the ranker sees: the fused list's first `depth`, plus up to
    /// `personal_candidates` of the shopper's own items that the query reaches, those that
    /// matched further down first, then those closest to the query by embedding.
    fn ranking_head(
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

    fn feature_rows(&self, candidates: &[Candidate], ctx: &RankingContext<'_>) -> Vec<f32> {
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

    fn facets(&self, ids: impl Iterator<Item = ItemId>) -> Facets {
        let n = &self.facet_names;
        let mut departments = vec![0usize; n.departments.names.len()];
        let mut categories = vec![0usize; n.categories.names.len()];
        let mut brands = vec![0usize; n.brands.names.len()];
        let mut prices = vec![0usize; n.price_bands.names.len()];
        for id in ids {
            let Some(key) = self.facet_keys.get(id.index()) else {
                continue;
            };
            for (value, counts) in [
                (key.department, &mut departments),
                (key.category, &mut categories),
                (key.brand, &mut brands),
                (key.price_band, &mut prices),
            ] {
                if let Some(v) = value {
                    counts[v as usize] += 1;
                }
            }
        }
        Facets {
            departments: n.departments.counted(&departments),
            categories: n.categories.counted(&categories),
            brands: n.brands.counted(&brands),
            prices: n.price_bands.counted(&prices),
        }
    }

    fn reasons(&self, c: &Candidate, ctx: &RankingContext<'_>) -> Vec<String> {
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
