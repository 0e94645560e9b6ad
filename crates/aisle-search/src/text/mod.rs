//! The full-text index: tantivy, BM25 with field boosts, typo tolerance, prefix matching for
//! search-as-you-type and synonyms.
//!
//! The index holds only what text matching needs: the item id and a hash of its indexed
//! text, so [`TextIndex::content_hashes`] tells which items changed since it was built.
//! Filters and facets are applied by the engine over the catalogue it keeps in memory.

mod analysis;
pub mod sealed;
mod synonyms;

use std::path::Path;
use std::sync::Mutex;

use aisle_core::{Item, ItemId};
use rustc_hash::FxHashMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::fastfield::Column;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader,
    TantivyDocument, Term,
};

pub use analysis::{RAW, STEMMED, ShopTokenizer, analyze};
pub use synonyms::Synonyms;

use crate::Result;

const ITEM_ID: &str = "item_id";
const CONTENT_HASH: &str = "content_hash";
/// Memory the tantivy writer may buffer before it flushes a segment.
const WRITER_HEAP_BYTES: usize = 50_000_000;

/// How much each field counts in BM25; a boost of 0 leaves the field out of matching.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldBoosts {
    /// Product title. Default 3.
    pub title: f32,
    /// Brand. Default 2.
    pub brand: f32,
    /// Category path, every level. Default 1.
    pub category: f32,
    /// Description and attribute values. Default 0.5.
    pub description: f32,
    /// Score of a typo match (a constant, not BM25). Default 1.
    pub typo: f32,
    /// Score of a prefix match on the last word. Default 1.5.
    pub prefix: f32,
}

impl Default for FieldBoosts {
    fn default() -> Self {
        Self {
            title: 3.0,
            brand: 2.0,
            category: 1.0,
            description: 0.5,
            typo: 1.0,
            prefix: 1.5,
        }
    }
}

#[derive(Clone, Copy)]
struct Fields {
    item_id: Field,
    content_hash: Field,
    title: Field,
    title_raw: Field,
    brand: Field,
    category: Field,
    description: Field,
}

/// A tantivy index over the catalogue's text.
pub struct TextIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    stem: TextAnalyzer,
    raw: TextAnalyzer,
    synonyms: Synonyms,
    boosts: FieldBoosts,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |analyzer: &str, record: IndexRecordOption| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(record),
        )
    };
    let positions = IndexRecordOption::WithFreqsAndPositions;
    let fields = Fields {
        item_id: builder.add_u64_field(ITEM_ID, INDEXED | FAST),
        content_hash: builder.add_u64_field(CONTENT_HASH, FAST),
        title: builder.add_text_field("title", text(STEMMED, positions)),
        title_raw: builder.add_text_field("title_raw", text(RAW, IndexRecordOption::Basic)),
        brand: builder.add_text_field("brand", text(STEMMED, positions)),
        category: builder.add_text_field("category", text(STEMMED, positions)),
        description: builder.add_text_field("description", text(STEMMED, positions)),
    };
    (builder.build(), fields)
}

/// A hash of the text an item is indexed with: equal hashes mean nothing to re-index.
pub fn content_hash(item: &Item) -> u64 {
    let mut text = String::new();
    for part in [&item.title, &item.description] {
        text.push_str(part);
        text.push('\u{1f}');
    }
    text.push_str(&item.category.join("\u{1e}"));
    text.push('\u{1f}');
    text.push_str(item.brand.as_deref().unwrap_or(""));
    for (key, value) in &item.attributes {
        text.push('\u{1f}');
        text.push_str(key);
        text.push('=');
        text.push_str(value);
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

impl TextIndex {
    /// An index held in memory (tests, evaluation).
    pub fn in_memory() -> Result<Self> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields)
    }

    /// Opens the index in `dir`, creating it when the folder is empty.
    pub fn open_or_create(dir: &Path) -> Result<Self> {
        Self::open_or_create_sealed(dir, None)
    }

    /// As [`TextIndex::open_or_create`], with every file of the index encrypted under `key`
    /// when given ([`sealed::SealedDirectory`]).
    pub fn open_or_create_sealed(dir: &Path, key: Option<&[u8; 32]>) -> Result<Self> {
        fs_err::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let index = match key {
            Some(key) => Index::open_or_create(sealed::SealedDirectory::open(dir, key)?, schema)?,
            None => {
                let directory = tantivy::directory::MmapDirectory::open(dir)
                    .map_err(tantivy::TantivyError::from)?;
                Index::open_or_create(directory, schema)?
            }
        };
        Self::with_index(index, fields)
    }

    fn with_index(index: Index, fields: Fields) -> Result<Self> {
        let analyzers = ShopTokenizer::analyzers();
        for (name, analyzer) in analyzers.clone() {
            index.tokenizers().register(name, analyzer);
        }
        let [(_, stem), (_, raw)] = analyzers;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
        Ok(Self {
            reader,
            writer: Mutex::new(writer),
            fields,
            stem,
            raw,
            synonyms: Synonyms::default(),
            boosts: FieldBoosts::default(),
        })
    }

    /// Replaces the synonym table used by later searches.
    pub fn set_synonyms(&mut self, synonyms: Synonyms) {
        self.synonyms = synonyms;
    }

    /// Replaces the field boosts used by later searches.
    pub fn set_boosts(&mut self, boosts: FieldBoosts) {
        self.boosts = boosts;
    }

    /// The field boosts in use.
    pub fn boosts(&self) -> FieldBoosts {
        self.boosts
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        // A poisoned lock only means another thread panicked mid-call; tantivy's writer
        // keeps its own consistency, and uncommitted work is simply rolled back.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces an item (visible after [`TextIndex::commit`]).
    pub fn upsert(&self, id: ItemId, item: &Item) -> Result<()> {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.item_id, u64::from(id.0));
        doc.add_u64(f.content_hash, content_hash(item));
        doc.add_text(f.title, &item.title);
        doc.add_text(f.title_raw, &item.title);
        if let Some(brand) = &item.brand {
            doc.add_text(f.brand, brand);
            doc.add_text(f.title_raw, brand);
        }
        for level in &item.category {
            doc.add_text(f.category, level);
        }
        doc.add_text(f.description, &item.description);
        for value in item.attributes.values() {
            doc.add_text(f.description, value);
        }
        let writer = self.writer();
        writer.delete_term(Term::from_field_u64(f.item_id, u64::from(id.0)));
        writer.add_document(doc)?;
        Ok(())
    }

    /// Removes an item (gone after [`TextIndex::commit`]).
    pub fn delete(&self, id: ItemId) {
        self.writer()
            .delete_term(Term::from_field_u64(self.fields.item_id, u64::from(id.0)));
    }

    /// Makes every change so far durable and visible to searches.
    pub fn commit(&self) -> Result<()> {
        self.writer().commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Each indexed item's content hash.
    pub fn content_hashes(&self) -> Result<FxHashMap<ItemId, u64>> {
        let searcher = self.reader.searcher();
        let mut out = FxHashMap::default();
        for segment in searcher.segment_readers() {
            let ids = segment.fast_fields().u64(ITEM_ID)?;
            let hashes = segment.fast_fields().u64(CONTENT_HASH)?;
            for doc in 0..segment.max_doc() {
                if segment.is_deleted(doc) {
                    continue;
                }
                if let (Some(id), Some(hash)) = (ids.first(doc), hashes.first(doc)) {
                    out.insert(ItemId(id as u32), hash);
                }
            }
        }
        Ok(out)
    }

    /// Number of items indexed.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every item matching `text`, with its score, in no particular order. An empty query
    /// matches everything with score 1 (browsing by filters). `typing` says the user may
    /// still be typing the last word, so it also matches as a prefix.
    pub fn matches(&self, text: &str, typing: bool) -> Result<Vec<(ItemId, f32)>> {
        let query = self.build_query(text, typing);
        let searcher = self.reader.searcher();
        Ok(searcher.search(query.as_ref(), &AllMatches)?)
    }

    /// The query `text` becomes, in tantivy's debug form (for `--explain`).
    pub fn describe_query(&self, text: &str, typing: bool) -> String {
        format!("{:?}", self.build_query(text, typing))
    }

    fn build_query(&self, text: &str, typing: bool) -> Box<dyn Query> {
        let mut raw = self.raw.clone();
        let mut stem = self.stem.clone();
        let raw_terms = analyze(&mut raw, text);
        let stem_terms = analyze(&mut stem, text);
        if raw_terms.is_empty() {
            return Box::new(AllQuery);
        }
        let f = self.fields;
        let b = self.boosts;
        let bm25_fields = [
            (f.title, b.title),
            (f.brand, b.brand),
            (f.category, b.category),
            (f.description, b.description),
        ];
        let mut groups: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let last = raw_terms.len() - 1;
        for (i, (raw_term, stem_term)) in raw_terms.iter().zip(&stem_terms).enumerate() {
            let mut group: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for &(field, boost) in &bm25_fields {
                if boost > 0.0 {
                    group.push((Occur::Should, term_query(field, stem_term, boost)));
                }
            }
            let chars = raw_term.chars().count();
            let latin = !raw_term.chars().any(crate::encoder::is_cjk);
            if latin && chars >= 4 && b.typo > 0.0 {
                let distance = if chars >= 8 { 2 } else { 1 };
                let fuzzy = FuzzyTermQuery::new(
                    Term::from_field_text(f.title_raw, raw_term),
                    distance,
                    true,
                );
                group.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(fuzzy), b.typo)),
                ));
            }
            if typing && i == last && latin && chars >= 2 && b.prefix > 0.0 {
                let prefix = FuzzyTermQuery::new_prefix(
                    Term::from_field_text(f.title_raw, raw_term),
                    0,
                    true,
                );
                group.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(prefix), b.prefix)),
                ));
            }
            groups.push((Occur::Should, Box::new(BooleanQuery::new(group))));
        }
        for phrase in self.synonyms.expansions(&raw_terms) {
            let terms = analyze(&mut stem, phrase);
            let query: Box<dyn Query> = match terms.as_slice() {
                [] => continue,
                [one] => term_query(f.title, one, b.title * synonyms::WEIGHT),
                many => Box::new(BoostQuery::new(
                    Box::new(PhraseQuery::new(
                        many.iter()
                            .map(|t| Term::from_field_text(f.title, t))
                            .collect(),
                    )),
                    b.title * synonyms::WEIGHT,
                )),
            };
            groups.push((Occur::Should, query));
        }
        Box::new(BooleanQuery::new(groups))
    }
}

fn term_query(field: Field, text: &str, boost: f32) -> Box<dyn Query> {
    let query = TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    );
    Box::new(BoostQuery::new(Box::new(query), boost))
}

/// Collects every matching item and its score.
struct AllMatches;

struct AllMatchesInSegment {
    ids: Column<u64>,
    found: Vec<(ItemId, f32)>,
}

impl Collector for AllMatches {
    type Fruit = Vec<(ItemId, f32)>;
    type Child = AllMatchesInSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<AllMatchesInSegment> {
        Ok(AllMatchesInSegment {
            ids: segment.fast_fields().u64(ITEM_ID)?,
            found: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(ItemId, f32)>>) -> tantivy::Result<Vec<(ItemId, f32)>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for AllMatchesInSegment {
    type Fruit = Vec<(ItemId, f32)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(id) = self.ids.first(doc) {
            self.found.push((ItemId(id as u32), score));
        }
    }

    fn harvest(self) -> Vec<(ItemId, f32)> {
        self.found
    }
}
