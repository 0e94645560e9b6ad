//! Approximate nearest neighbours over unit vectors: an inverted-file (IVF) index.
//!
//! Semantic search indexes its text embeddings here; the embedding recommenders (ALS,
//! BPR, PureSVD) index their item factors here through a maximum-inner-product transform
//! (`aisle_models::ann`).
//!
//! Our own rather than an HNSW crate: IVF with 8-bit codes in the probed lists and exact
//! rescoring of the best reaches high recall at a fraction of a millisecond up to a million
//! items (bench/results/ann.md), builds in seconds, is deterministic for a seed, and
//! handles updates and deletes by editing one list (HNSW crates mark deletions and
//! degrade). Recall against exact search is tested and reported by the search and ann
//! benchmarks.

use aisle_core::ItemId;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Below this many vectors every query scans them all.
const EXACT_BELOW: usize = 4096;
/// k-means rounds when building the lists.
const KMEANS_ROUNDS: usize = 8;
/// Vectors sampled to train the centroids.
const KMEANS_SAMPLE: usize = 20_000;

/// Unit vectors by item, searchable by inner product (cosine).
///
/// Each inverted list also holds its vectors as 8-bit codes, contiguous in list order (the
/// scalar quantisation of faiss's IVF-SQ8): a probed list is read front to back at a quarter
/// of the bytes, instead of gathering full-precision rows from all over the catalogue. The
/// best candidates by code are then scored again exactly, so the scores returned are exact;
/// recall against the exact scan is what the probes are calibrated on. The codes are never
/// stored: they are made again from the vectors when an index is read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Persisted")]
pub struct VectorIndex {
    dim: usize,
    /// Row-major, one row per slot.
    vectors: Vec<f32>,
    items: Vec<ItemId>,
    /// A hash of the text each vector was made from, to tell stale vectors.
    tags: Vec<u64>,
    alive: Vec<bool>,
    slot_of: FxHashMap<ItemId, u32>,
    /// Row-major centroids; empty means exact search.
    centroids: Vec<f32>,
    lists: Vec<Vec<u32>>,
    /// Lists scanned per query; 0 means the default for the number of lists.
    #[serde(skip)]
    probes: usize,
    /// Per list, its vectors' codes in list order, `dim` bytes each.
    #[serde(skip)]
    codes: Vec<Vec<u8>>,
    #[serde(skip)]
    quantiser: Quantiser,
}

/// What [`VectorIndex`] writes: everything but what is made again on reading (the same
/// fields in the same order, so that files written before the codes existed still read).
#[derive(Deserialize)]
struct Persisted {
    dim: usize,
    vectors: Vec<f32>,
    items: Vec<ItemId>,
    tags: Vec<u64>,
    alive: Vec<bool>,
    slot_of: FxHashMap<ItemId, u32>,
    centroids: Vec<f32>,
    lists: Vec<Vec<u32>>,
}

impl From<Persisted> for VectorIndex {
    fn from(p: Persisted) -> Self {
        let mut index = VectorIndex {
            dim: p.dim,
            vectors: p.vectors,
            items: p.items,
            tags: p.tags,
            alive: p.alive,
            slot_of: p.slot_of,
            centroids: p.centroids,
            lists: p.lists,
            ..VectorIndex::default()
        };
        index.encode_lists();
        index
    }
}

/// Uniform 8-bit scalar quantisation, one range per dimension: `x ≈ lo + code · step`.
#[derive(Debug, Clone, Default)]
struct Quantiser {
    lo: Vec<f32>,
    step: Vec<f32>,
}

impl Quantiser {
    /// Ranges covering every one of `rows` (row-major, `dim` wide).
    fn fit<'a>(dim: usize, rows: impl Iterator<Item = &'a [f32]>) -> Self {
        let (mut lo, mut hi) = (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
        for row in rows {
            for d in 0..dim {
                lo[d] = lo[d].min(row[d]);
                hi[d] = hi[d].max(row[d]);
            }
        }
        let step = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| if h > l { (h - l) / 255.0 } else { 0.0 })
            .collect();
        lo.iter_mut()
            .filter(|l| !l.is_finite())
            .for_each(|l| *l = 0.0);
        Self { lo, step }
    }

    /// Appends the codes of `v`, clamped into the ranges (a vector upserted after the fit
    /// may fall outside them).
    fn encode_into(&self, v: &[f32], out: &mut Vec<u8>) {
        out.extend(
            v.iter()
                .zip(&self.lo)
                .zip(&self.step)
                .map(|((x, lo), step)| {
                    if *step > 0.0 {
                        ((x - lo) / step).round().clamp(0.0, 255.0) as u8
                    } else {
                        0
                    }
                }),
        );
    }

    /// The query's weights per code and its constant part: `q · x ≈ offset + w · code`.
    fn query(&self, q: &[f32]) -> (Vec<f32>, f32) {
        let weights = q.iter().zip(&self.step).map(|(x, s)| x * s).collect();
        let offset = q.iter().zip(&self.lo).map(|(x, l)| x * l).sum();
        (weights, offset)
    }
}

/// `w · codes` in eight lanes (the codes widened to f32), compiled for AVX2 and AVX-512.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn dot_codes(codes: &[u8], w: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut tail = 0f32;
    let (c_chunks, w_chunks) = (codes.chunks_exact(8), w.chunks_exact(8));
    for (c, x) in c_chunks.remainder().iter().zip(w_chunks.remainder()) {
        tail += f32::from(*c) * x;
    }
    for (c, x) in c_chunks.zip(w_chunks) {
        for l in 0..8 {
            acc[l] += f32::from(c[l]) * x[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Candidates rescored exactly after the scan by code, for a top `k`: enough that the
/// quantisation's error (a small fraction of the gap between neighbouring scores) does not
/// push an exact top-`k` item out.
fn rescored(k: usize) -> usize {
    (4 * k).max(k + 32)
}

/// Inner product in eight lanes, compiled for AVX2 and AVX-512 where the CPU has them.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut tail = 0f32;
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        tail += x * y;
    }
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn top_k(mut scored: Vec<(ItemId, f32)>, k: usize) -> Vec<(ItemId, f32)> {
    let by_score = |a: &(ItemId, f32), b: &(ItemId, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if scored.len() > k {
        scored.select_nth_unstable_by(k, by_score);
        scored.truncate(k);
    }
    scored.sort_unstable_by(by_score);
    scored
}

impl VectorIndex {
    /// An empty index of vectors `dim` wide.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    /// Indexes `vectors` (unit length, all of width `dim`) and builds the inverted lists.
    pub fn build(dim: usize, entries: Vec<(ItemId, Vec<f32>)>, seed: u64) -> Self {
        let mut index = Self::new(dim);
        for (id, v) in entries {
            index.put(id, &v, 0);
        }
        index.rebuild_lists(seed);
        index
    }

    /// Vector width.
    pub fn dimension(&self) -> usize {
        self.dim
    }

    /// Number of live vectors.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// The items that have a vector.
    pub fn ids(&self) -> impl Iterator<Item = ItemId> + '_ {
        self.slot_of.keys().copied()
    }

    /// The stored vector of an item.
    pub fn get(&self, id: ItemId) -> Option<&[f32]> {
        self.slot_of.get(&id).map(|&s| self.row(s as usize))
    }

    fn row(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dim..(slot + 1) * self.dim]
    }

    /// The tag an item's vector was stored with (see [`VectorIndex::upsert`]).
    pub fn tag(&self, id: ItemId) -> Option<u64> {
        self.slot_of.get(&id).map(|&s| self.tags[s as usize])
    }

    fn put(&mut self, id: ItemId, v: &[f32], tag: u64) -> u32 {
        if let Some(&slot) = self.slot_of.get(&id) {
            let s = slot as usize;
            self.vectors[s * self.dim..(s + 1) * self.dim].copy_from_slice(v);
            self.tags[s] = tag;
            return slot;
        }
        let slot = self.items.len() as u32;
        self.items.push(id);
        self.tags.push(tag);
        self.alive.push(true);
        self.vectors.extend_from_slice(v);
        self.slot_of.insert(id, slot);
        slot
    }

    /// Adds or replaces one item's vector, with a caller's `tag` (a hash of its source
    /// text); the inverted lists keep their centroids.
    pub fn upsert(&mut self, id: ItemId, v: &[f32], tag: u64) {
        assert_eq!(v.len(), self.dim, "vector width");
        self.remove_from_lists(id);
        let slot = self.put(id, v, tag);
        if !self.centroids.is_empty() {
            let list = self.nearest_centroid(v);
            self.lists[list].push(slot);
            self.quantiser.encode_into(v, &mut self.codes[list]);
        }
    }

    /// Removes an item's vector.
    pub fn delete(&mut self, id: ItemId) {
        self.remove_from_lists(id);
        if let Some(slot) = self.slot_of.remove(&id) {
            self.alive[slot as usize] = false;
        }
    }

    fn remove_from_lists(&mut self, id: ItemId) {
        let Some(&slot) = self.slot_of.get(&id) else {
            return;
        };
        let dim = self.dim;
        for (list, codes) in self.lists.iter_mut().zip(&mut self.codes) {
            if let Some(pos) = list.iter().position(|&s| s == slot) {
                // The last entry takes its place, in the slots and in the codes alike.
                list.swap_remove(pos);
                let last = codes.len() - dim;
                codes.copy_within(last.., pos * dim);
                codes.truncate(last);
                return;
            }
        }
    }

    /// Fits the quantiser on the live vectors and writes every list's codes.
    fn encode_lists(&mut self) {
        self.codes.clear();
        if self.lists.is_empty() {
            return;
        }
        let live = (0..self.items.len()).filter(|&s| self.alive[s]);
        self.quantiser = Quantiser::fit(self.dim, live.map(|s| self.row(s)));
        let codes = self
            .lists
            .par_iter()
            .map(|list| {
                let mut codes = Vec::with_capacity(list.len() * self.dim);
                for &s in list {
                    self.quantiser.encode_into(self.row(s as usize), &mut codes);
                }
                codes
            })
            .collect();
        self.codes = codes;
    }

    fn nearest_centroid(&self, v: &[f32]) -> usize {
        self.centroids
            .chunks_exact(self.dim)
            .map(|c| dot(c, v))
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(i, _)| i)
    }

    /// Re-trains the centroids (spherical k-means on a sample) and re-fills the lists.
    pub fn rebuild_lists(&mut self, seed: u64) {
        let live: Vec<u32> = (0..self.items.len() as u32)
            .filter(|&s| self.alive[s as usize])
            .collect();
        self.centroids.clear();
        self.lists.clear();
        self.codes.clear();
        if live.len() < EXACT_BELOW {
            return;
        }
        let n_lists = (live.len() as f64).sqrt().round() as usize;
        // A fixed-stride sample from a seeded offset: deterministic and spread out.
        let stride = (live.len() / KMEANS_SAMPLE.min(live.len())).max(1);
        let offset = (seed as usize) % stride;
        let sample: Vec<u32> = live.iter().skip(offset).step_by(stride).copied().collect();
        let pick = (sample.len() / n_lists).max(1);
        let mut centroids: Vec<f32> = (0..n_lists)
            .flat_map(|c| {
                self.row(sample[(c * pick) % sample.len()] as usize)
                    .to_vec()
            })
            .collect();
        for _ in 0..KMEANS_ROUNDS {
            let assignment: Vec<usize> = sample
                .par_iter()
                .map(|&s| {
                    let v = self.row(s as usize);
                    centroids
                        .chunks_exact(self.dim)
                        .map(|c| dot(c, v))
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .map_or(0, |(i, _)| i)
                })
                .collect();
            let mut sums = vec![0f32; n_lists * self.dim];
            let mut counts = vec![0usize; n_lists];
            for (&s, &c) in sample.iter().zip(&assignment) {
                counts[c] += 1;
                for (acc, x) in sums[c * self.dim..(c + 1) * self.dim]
                    .iter_mut()
                    .zip(self.row(s as usize))
                {
                    *acc += x;
                }
            }
            for c in 0..n_lists {
                let sum = &mut sums[c * self.dim..(c + 1) * self.dim];
                let norm = dot(sum, sum).sqrt();
                if counts[c] > 0 && norm > 0.0 {
                    sum.iter_mut().for_each(|x| *x /= norm);
                    centroids[c * self.dim..(c + 1) * self.dim].copy_from_slice(sum);
                }
            }
        }
        self.centroids = centroids;
        let assignment: Vec<usize> = live
            .par_iter()
            .map(|&s| self.nearest_centroid(self.row(s as usize)))
            .collect();
        self.lists = vec![Vec::new(); n_lists];
        for (&s, &c) in live.iter().zip(&assignment) {
            self.lists[c].push(s);
        }
        self.encode_lists();
        self.probes = 0;
    }

    /// Number of inverted lists (0 below the size where every query scans all vectors).
    pub fn n_lists(&self) -> usize {
        self.lists.len()
    }

    /// Lists a query scans unless told otherwise: one in 14, at least 16. On the Instacart
    /// catalogue that is 16 of 223 lists, recall@100 0.99 against exact search (full item
    /// texts) at a quarter of its time; see bench/results/search.md.
    pub fn default_probes(&self) -> usize {
        (self.lists.len() / 14).max(16)
    }

    /// Sets how many lists a query scans (more: higher recall, slower); 0 restores the
    /// default, and more than there are lists scans them all (exact).
    pub fn set_probes(&mut self, probes: usize) {
        self.probes = probes;
    }

    /// The `k` nearest items to `query` by inner product, best first, with exact scores.
    /// Scanning every list is the exact search.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(ItemId, f32)> {
        let probes = if self.probes == 0 {
            self.default_probes()
        } else {
            self.probes
        };
        if self.centroids.is_empty() || probes >= self.lists.len() {
            return self.search_exact(query, k);
        }
        let mut lists: Vec<(usize, f32)> = self
            .centroids
            .chunks_exact(self.dim)
            .map(|c| dot(c, query))
            .enumerate()
            .collect();
        lists.select_nth_unstable_by(probes.max(1) - 1, |a, b| b.1.total_cmp(&a.1));
        let probed = &lists[..probes.max(1)];
        // Scan the probed lists by code, front to back.
        let (weights, offset) = self.quantiser.query(query);
        let total = probed.iter().map(|&(l, _)| self.lists[l].len()).sum();
        let mut approx: Vec<(f32, u32)> = Vec::with_capacity(total);
        for &(list, _) in probed {
            let codes = self.codes[list].chunks_exact(self.dim);
            for (&slot, code) in self.lists[list].iter().zip(codes) {
                approx.push((offset + dot_codes(code, &weights), slot));
            }
        }
        // Rescore the best by code exactly.
        let keep = rescored(k);
        if approx.len() > keep {
            approx.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0));
            approx.truncate(keep);
        }
        let scored = approx
            .iter()
            .map(|&(_, s)| (self.items[s as usize], dot(self.row(s as usize), query)))
            .collect();
        top_k(scored, k)
    }

    /// The exact `k` nearest items (scans every vector).
    pub fn search_exact(&self, query: &[f32], k: usize) -> Vec<(ItemId, f32)> {
        let scored = (0..self.items.len())
            .filter(|&s| self.alive[s])
            .map(|s| (self.items[s], dot(self.row(s), query)))
            .collect();
        top_k(scored, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        // A small deterministic generator (SplitMix64) so the test needs no RNG crate.
        let mut state = seed;
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) as f64 / u64::MAX as f64) as f32 - 0.5
            })
            .collect();
        let norm = dot(&v, &v).sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }

    #[test]
    fn ivf_finds_most_exact_neighbours_and_follows_updates() {
        let dim = 16;
        // Clustered data, as embeddings are: 50 centres with small noise around each.
        let centres: Vec<Vec<f32>> = (0..50).map(|c| unit(1000 + c, dim)).collect();
        let entries: Vec<(ItemId, Vec<f32>)> = (0..6000u32)
            .map(|i| {
                let noise = unit(u64::from(i) + 7, dim);
                let mut v: Vec<f32> = centres[i as usize % 50]
                    .iter()
                    .zip(&noise)
                    .map(|(c, n)| c + 0.3 * n)
                    .collect();
                let norm = dot(&v, &v).sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                (ItemId(i), v)
            })
            .collect();
        let mut index = VectorIndex::build(dim, entries, 1);
        assert!(
            !index.centroids.is_empty(),
            "6000 vectors use inverted lists"
        );
        let mut found = 0;
        for q in 0..50 {
            let query = unit(50_000 + q, dim);
            let exact: Vec<ItemId> = index.search_exact(&query, 10).iter().map(|h| h.0).collect();
            let approx = index.search(&query, 10);
            found += approx.iter().filter(|h| exact.contains(&h.0)).count();
        }
        assert!(found >= 450, "recall@10 {} / 500", found);

        // The codes follow the lists through upserts and deletes, and survive a round trip
        // through the file format (which does not hold them).
        let aligned = |index: &VectorIndex| {
            index.lists.len() == index.codes.len()
                && index
                    .lists
                    .iter()
                    .zip(&index.codes)
                    .all(|(l, c)| c.len() == l.len() * dim)
        };
        assert!(aligned(&index));
        let bytes = postcard::to_allocvec(&index).expect("encode");
        let read: VectorIndex = postcard::from_bytes(&bytes).expect("decode");
        assert!(aligned(&read) && read.codes == index.codes);
        let query = unit(77, dim);
        assert_eq!(read.search(&query, 10), index.search(&query, 10));
        // Scores are exact, and scanning every list is the exact search.
        let exact = index.search_exact(&query, 10);
        for (id, score) in index.search(&query, 10) {
            assert_eq!(score, dot(index.get(id).unwrap(), &query));
        }
        index.set_probes(index.n_lists());
        assert_eq!(index.search(&query, 10), exact);
        index.set_probes(0);

        index.upsert(ItemId(9999), &query, 1);
        assert!(aligned(&index));
        assert_eq!(index.search(&query, 1)[0].0, ItemId(9999));
        index.upsert(ItemId(3), &unit(78, dim), 1);
        index.delete(ItemId(9999));
        assert!(aligned(&index));
        assert!(index.search(&query, 10).iter().all(|h| h.0 != ItemId(9999)));
        assert!(
            index
                .search_exact(&query, 10)
                .iter()
                .all(|h| h.0 != ItemId(9999))
        );
    }
}
