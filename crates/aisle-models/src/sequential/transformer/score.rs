//! Inference: encoding a query, hidden states, scoring the catalogue (float or int8 table),
//! purchase probability, and the `Recommender` impl.

use aisle_core::EventKind;
use candle_core::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::input::{Batch, Encoded};
use super::net::Net;
use crate::{FitReport, Query, Recommender, Result, TrainData};

use super::*;

impl Transformer {
    pub(super) fn encode(&self, query: &Query<'_>) -> Encoded {
        let n = self.n_items() as u32;
        if query.history.iter().all(|&i| i < n) {
            return Encoded::new(
                query.history,
                query.kinds,
                query.times_ms,
                self.config.max_len,
            );
        }
        // Items the model never saw (added after training) are skipped.
        let keep: Vec<usize> = (0..query.history.len())
            .filter(|&p| query.history[p] < n)
            .collect();
        let pick = |len: usize| keep.iter().filter(move |&&p| p < len);
        let items: Vec<u32> = keep.iter().map(|&p| query.history[p]).collect();
        let kinds: Vec<EventKind> = pick(query.kinds.len()).map(|&p| query.kinds[p]).collect();
        let times: Vec<i64> = pick(query.times_ms.len())
            .map(|&p| query.times_ms[p])
            .collect();
        Encoded::new(&items, &kinds, &times, self.config.max_len)
    }

    /// Hidden state after every position of one sequence, `[len][dim]` (for tests of the
    /// causal mask and for inspection).
    pub fn hidden_states(&self, query: &Query<'_>) -> Result<Vec<Vec<f32>>> {
        let Some(net) = &self.net else {
            return Ok(Vec::new());
        };
        let encoded = self.encode(query);
        let batch = Batch::new(&[&encoded]);
        let h = net.forward(&batch, self.features.as_ref(), &mut None)?;
        Ok(h.to_vec2::<f32>()?)
    }

    /// Final hidden state of each sequence, `[rows, dim]` row-major.
    pub(super) fn last_hidden(&self, net: &Net, sequences: &[&Encoded]) -> Result<Vec<f32>> {
        let batch = Batch::new(sequences);
        let h = net.forward(&batch, self.features.as_ref(), &mut None)?;
        let last = Tensor::from_vec(batch.last_positions(), batch.rows, net.device())?;
        Ok(h.index_select(&last, 0)?.flatten_all()?.to_vec1()?)
    }

    /// Scores `hidden` (`[rows, dim]`) against every item into `scores` (`[rows, n]`).
    pub(super) fn score_hidden(&self, hidden: &[f32], scores: &mut [f32]) {
        let dim = self.config.dim;
        let n = self.table.len() / dim;
        let rows = hidden.len() / dim;
        match &self.quantized {
            Some(q) => {
                for (h, out) in hidden.chunks(dim).zip(scores.chunks_mut(n)) {
                    q.score(h, out);
                }
            }
            None => {
                let h = MatRef::from_row_major_slice(hidden, rows, dim);
                let e = MatRef::from_row_major_slice(&self.table, n, dim);
                let out = MatMut::from_row_major_slice_mut(&mut scores[..rows * n], rows, n);
                matmul(out, Accum::Replace, h, e.transpose(), 1.0, Par::rayon(0));
            }
        }
    }

    /// Probability that a purchase follows in this session, from the purchase head.
    /// `None` when the model is unfitted or its training data had no purchases to learn.
    pub fn purchase_probability(&self, query: &Query<'_>) -> Option<f32> {
        let net = self.net.as_ref()?;
        if !self.purchase_trained || query.history.is_empty() {
            return None;
        }
        let encoded = self.encode(query);
        let h = self.last_hidden(net, &[&encoded]).ok()?;
        let z = net
            .purchase_logits(&Tensor::from_vec(h, (1, self.config.dim), net.device()).ok()?)
            .ok()?
            .to_vec1::<f32>()
            .ok()?[0];
        Some(1.0 / (1.0 + (-z).exp()))
    }
}

impl Recommender for Transformer {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        self.config.validate()?;
        self.train(data)
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        self.score_batch(std::slice::from_ref(query), scores);
    }

    fn score_batch(&self, queries: &[Query<'_>], scores: &mut [f32]) {
        let n = self.n_items();
        let Some(net) = &self.net else {
            scores.fill(0.0);
            return;
        };
        // Empty histories get zero scores; the rest are scored in one forward pass.
        let mut rows = Vec::new();
        let mut encoded = Vec::new();
        for (r, q) in queries.iter().enumerate() {
            if q.history.is_empty() {
                scores[r * n..(r + 1) * n].fill(0.0);
            } else {
                rows.push(r);
                encoded.push(self.encode(q));
            }
        }
        if rows.is_empty() {
            return;
        }
        let refs: Vec<&Encoded> = encoded.iter().collect();
        let hidden = self
            .last_hidden(net, &refs)
            .expect("the forward pass of a fitted model on valid ids");
        let mut out = vec![0f32; rows.len() * n];
        self.score_hidden(&hidden, &mut out);
        for (k, &r) in rows.iter().enumerate() {
            scores[r * n..(r + 1) * n].copy_from_slice(&out[k * n..(k + 1) * n]);
        }
    }

    fn n_items(&self) -> usize {
        self.table.len() / self.config.dim.max(1)
    }
}
