//! Content-based: TF-IDF over item text, the user profile being the sum of the vectors of the
//! items they interacted with.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::sparse::history_weights;
use crate::{FitReport, Query, Recommender, Result, TrainData};

/// TF-IDF settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TfIdfConfig {
    /// Ignore terms in more than this share of items (default 0.5).
    pub max_document_frequency: f32,
}

impl Default for TfIdfConfig {
    fn default() -> Self {
        Self {
            max_document_frequency: 0.5,
        }
    }
}

/// Item vectors `tf · idf` with sublinear tf `1 + ln(count)` and smoothed idf
/// `ln((1 + N) / (1 + df)) + 1`, L2-normalised; scores are dot products with the profile.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TfIdf {
    config: TfIdfConfig,
    /// Per item: (term, weight), sorted by term.
    item_terms: Vec<Vec<(u32, f32)>>,
    /// Per term: (item, weight).
    postings: Vec<Vec<(u32, f32)>>,
}

impl TfIdf {
    /// An unfitted model.
    pub fn new(config: TfIdfConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

/// Lower-cased alphanumeric tokens.
pub(crate) fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

impl Recommender for TfIdf {
    /// Nothing to do: the model reads item text only, never a user's events.
    fn forget(&mut self, _change: &crate::Forgetting<'_>) -> Result<crate::Forgot> {
        Ok(crate::Forgot::Exactly)
    }

    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        let n = data.n_items();
        let mut vocabulary: HashMap<String, u32> = HashMap::new();
        let mut counts: Vec<Vec<(u32, f32)>> = Vec::with_capacity(n);
        let mut df: Vec<u32> = Vec::new();
        for text in &data.item_text {
            let mut tf: HashMap<u32, f32> = HashMap::new();
            for token in tokens(text) {
                let next = vocabulary.len() as u32;
                let id = *vocabulary.entry(token).or_insert(next);
                *tf.entry(id).or_insert(0.0) += 1.0;
            }
            df.resize(vocabulary.len(), 0);
            for &t in tf.keys() {
                df[t as usize] += 1;
            }
            counts.push(tf.into_iter().collect());
        }
        counts.resize(n, Vec::new());
        let max_df = (self.config.max_document_frequency * n as f32).max(1.0);
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| {
                if d as f32 > max_df {
                    0.0
                } else {
                    ((1.0 + n as f32) / (1.0 + d as f32)).ln() + 1.0
                }
            })
            .collect();
        let mut postings = vec![Vec::new(); vocabulary.len()];
        let mut item_terms = Vec::with_capacity(n);
        for (item, tf) in counts.into_iter().enumerate() {
            let mut v: Vec<(u32, f32)> = tf
                .into_iter()
                .map(|(t, c)| (t, (1.0 + c.ln()) * idf[t as usize]))
                .filter(|&(_, w)| w > 0.0)
                .collect();
            let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|(_, w)| *w /= norm);
            }
            v.sort_unstable_by_key(|&(t, _)| t);
            for &(t, w) in &v {
                postings[t as usize].push((item as u32, w));
            }
            item_terms.push(v);
        }
        self.item_terms = item_terms;
        self.postings = postings;
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        let mut profile: HashMap<u32, f32> = HashMap::new();
        for (i, w) in history_weights(query.history) {
            if let Some(terms) = self.item_terms.get(i as usize) {
                for &(t, v) in terms {
                    *profile.entry(t).or_insert(0.0) += w * v;
                }
            }
        }
        for (t, p) in profile {
            for &(item, v) in &self.postings[t as usize] {
                scores[item as usize] += p * v;
            }
        }
    }

    fn n_items(&self) -> usize {
        self.item_terms.len()
    }
}
