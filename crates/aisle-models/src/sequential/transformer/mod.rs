//! A causal transformer over behaviour sequences (SASRec-style), trained with full
//! softmax cross-entropy over the catalogue (Klenitskiy & Vasilev, RecSys 2023), with a
//! second head for purchase intent.
//!
//! Input per position: item embedding, mean of the item's feature embeddings (category
//! levels, brand, attributes), event-kind embedding, time-gap bucket embedding and a
//! learned position counted back from the latest event, so the latest event always has
//! the same position whatever the sequence length. Pre-norm blocks, tied input and output
//! item embeddings. Training holds out each sequence's last item for validation and stops
//! early on validation NDCG@10, keeping the best epoch's weights.
//!
//! Candle runs it on the CPU; the `cuda` feature runs it on an NVIDIA GPU.

mod input;
mod loss;
mod net;
mod quant;

use std::path::PathBuf;
use std::time::Instant;

use aisle_core::EventKind;
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::{Error, FitReport, Query, Recommender, Result, TrainData};
use input::{Batch, Encoded, purchase_follows};
use net::{Dropout, FeatureTable, NamedValues, Net, Shape};
use quant::QuantizedTable;

/// Settings of the transformer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformerConfig {
    /// Width of embeddings and hidden states.
    pub dim: usize,
    /// Width of the feed-forward layer of each block.
    pub ffn_dim: usize,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Attention heads (must divide `dim`).
    pub heads: usize,
    /// Longest history the model reads (older events are dropped).
    pub max_len: usize,
    /// Dropout rate on embeddings, attention output and feed-forward layers.
    pub dropout: f32,
    /// Most epochs to train.
    pub epochs: usize,
    /// Stop after this many epochs without a better validation NDCG@10.
    pub patience: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Peak learning rate of AdamW.
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Steps of linear learning-rate warm-up.
    pub warmup_steps: usize,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub clip_norm: f64,
    /// 0: softmax over the whole catalogue; otherwise sampled softmax with this many shared
    /// uniform negatives per batch (for catalogues too large for the full softmax).
    pub negatives: usize,
    /// Use item features (category levels, brand, attributes) in the input.
    pub item_features: bool,
    /// Most features per item that are read.
    pub features_per_item: usize,
    /// Weight of the purchase-intent loss beside the next-item loss.
    pub purchase_weight: f32,
    /// Validation sequences scored after each epoch (a fixed random subset).
    pub validation_sequences: usize,
    /// Stop training after this many seconds (0 = no limit); the best epoch is kept.
    pub time_budget_seconds: f64,
    /// After early stopping, train again from scratch on every training event (the
    /// validation items included) for the number of epochs validation chose.
    pub refit: bool,
    /// Write the best weights here as safetensors whenever validation improves (before any
    /// refit: the refitted model is in the model file).
    pub checkpoint: Option<PathBuf>,
    /// Score with the int8-quantised item table.
    pub int8: bool,
    /// Print one progress line per epoch to stderr.
    pub verbose: bool,
    /// Random seed (initialisation, batch order, dropout, negatives).
    pub seed: u64,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            dim: 64,
            ffn_dim: 256,
            layers: 2,
            heads: 2,
            max_len: 50,
            dropout: 0.3,
            epochs: 200,
            patience: 8,
            batch_size: 128,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            warmup_steps: 100,
            clip_norm: 5.0,
            negatives: 0,
            item_features: true,
            features_per_item: 8,
            purchase_weight: 0.2,
            validation_sequences: 5000,
            time_budget_seconds: 0.0,
            refit: true,
            checkpoint: None,
            int8: false,
            verbose: true,
            seed: 42,
        }
    }
}

impl TransformerConfig {
    fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidConfig {
                model: "transformer",
                reason,
            })
        };
        if self.dim == 0 || self.heads == 0 || !self.dim.is_multiple_of(self.heads) {
            return bad(format!(
                "heads ({}) must divide dim ({})",
                self.heads, self.dim
            ));
        }
        if self.max_len == 0 || self.batch_size == 0 || self.layers == 0 {
            return bad("max_len, batch_size and layers must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        Ok(())
    }
}

/// One training phase: early-stopped on validation, or a fixed number of epochs.
struct Phase<'a> {
    label: &'static str,
    epochs: usize,
    validation: &'a [&'a ValidationCase],
    budget_seconds: f64,
}

/// One training sequence, encoded, with its next-item targets and purchase labels.
struct Example {
    input: Encoded,
    targets: Vec<u32>,
    purchase: Vec<Option<bool>>,
}

/// A held-out last item, with the sequence before it.
struct ValidationCase {
    input: Encoded,
    target: u32,
    history: Vec<u32>,
}

/// The fitted transformer.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "Saved", into = "Saved")]
pub struct Transformer {
    config: TransformerConfig,
    net: Option<Net>,
    features: Option<FeatureTable>,
    /// Float item table without the padding row, for scoring.
    table: Vec<f32>,
    quantized: Option<QuantizedTable>,
    purchase_trained: bool,
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transformer")
            .field("config", &self.config)
            .field("fitted", &self.net.is_some())
            .finish()
    }
}

/// What a model file holds.
#[derive(Serialize, Deserialize)]
struct Saved {
    config: TransformerConfig,
    shape: Option<(usize, usize)>,
    features: Option<(usize, Vec<u32>, Vec<f32>)>,
    params: Vec<(String, Vec<usize>, Vec<f32>)>,
    purchase_trained: bool,
}

impl From<Transformer> for Saved {
    fn from(m: Transformer) -> Saved {
        Saved {
            shape: m
                .net
                .as_ref()
                .map(|n| (n.shape.n_items, n.shape.n_features)),
            features: m.features.as_ref().map(|f| {
                let (ids, weights) = f.parts();
                (f.per_item, ids.to_vec(), weights.to_vec())
            }),
            params: m
                .net
                .as_ref()
                .and_then(|n| n.values().ok())
                .unwrap_or_default(),
            purchase_trained: m.purchase_trained,
            config: m.config,
        }
    }
}

impl TryFrom<Saved> for Transformer {
    type Error = String;

    fn try_from(s: Saved) -> std::result::Result<Transformer, String> {
        let mut model = Transformer::new(s.config);
        model.purchase_trained = s.purchase_trained;
        model.features = s
            .features
            .map(|(per, ids, weights)| FeatureTable::from_parts(per, ids, weights));
        if let Some((n_items, n_features)) = s.shape {
            let shape = model.shape(n_items, n_features);
            let net = Net::from_values(shape, &s.params, &device()).map_err(|e| e.to_string())?;
            model.install(net).map_err(|e| e.to_string())?;
        }
        Ok(model)
    }
}

fn device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::cuda_if_available(0) {
        return d;
    }
    Device::Cpu
}

impl Transformer {
    /// An unfitted transformer.
    pub fn new(config: TransformerConfig) -> Self {
        Transformer {
            config,
            net: None,
            features: None,
            table: Vec::new(),
            quantized: None,
            purchase_trained: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    fn shape(&self, n_items: usize, n_features: usize) -> Shape {
        let c = &self.config;
        Shape {
            n_items,
            n_features,
            dim: c.dim,
            ffn_dim: c.ffn_dim,
            layers: c.layers,
            heads: c.heads,
            max_len: c.max_len,
        }
    }

    /// Makes a trained network the one that scores.
    fn install(&mut self, net: Net) -> Result<()> {
        self.table = net.item_table()?;
        self.quantized = self
            .config
            .int8
            .then(|| QuantizedTable::new(&self.table, self.config.dim));
        self.net = Some(net);
        Ok(())
    }

    /// Switches scoring to the int8 item table (or back to float).
    pub fn set_int8(&mut self, on: bool) {
        self.config.int8 = on;
        self.quantized = on.then(|| QuantizedTable::new(&self.table, self.config.dim));
    }

    /// Bytes of the item table that scoring reads: float, or int8 when quantised.
    pub fn item_table_bytes(&self) -> usize {
        match &self.quantized {
            Some(q) => q.bytes(),
            None => 4 * self.table.len(),
        }
    }

    /// Number of weights.
    pub fn n_parameters(&self) -> usize {
        self.net
            .as_ref()
            .map_or(0, |n| n.params().iter().map(|(_, v)| v.elem_count()).sum())
    }

    fn encode(&self, query: &Query<'_>) -> Encoded {
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
    fn last_hidden(&self, net: &Net, sequences: &[&Encoded]) -> Result<Vec<f32>> {
        let batch = Batch::new(sequences);
        let h = net.forward(&batch, self.features.as_ref(), &mut None)?;
        let last = Tensor::from_vec(batch.last_positions(), batch.rows, net.device())?;
        Ok(h.index_select(&last, 0)?.flatten_all()?.to_vec1()?)
    }

    /// Scores `hidden` (`[rows, dim]`) against every item into `scores` (`[rows, n]`).
    fn score_hidden(&self, hidden: &[f32], scores: &mut [f32]) {
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

    /// Encodes the training sequences; the last item of each sequence of three or more
    /// items is held out for validation.
    fn examples(&self, data: &TrainData, hold_out: bool) -> (Vec<Example>, Vec<ValidationCase>) {
        let seqs = &data.sequences;
        let max_len = self.config.max_len;
        let mut train = Vec::new();
        let mut validation = Vec::new();
        for u in 0..seqs.n_users() as u32 {
            let items = seqs.items(u);
            let kinds = seqs.kinds(u);
            let times = seqs.timestamps(u);
            if items.len() < 2 {
                continue;
            }
            let end = if hold_out && items.len() >= 3 {
                let n = items.len() - 1;
                validation.push(ValidationCase {
                    input: Encoded::new(&items[..n], &kinds[..n], &times[..n], max_len),
                    target: items[n],
                    history: items[..n].to_vec(),
                });
                n
            } else {
                items.len()
            };
            // Inputs are events [start, end-1), each predicting the next item.
            let start = (end - 1).saturating_sub(max_len);
            // Labels look at the whole sequence: the event held out for next-item
            // validation still tells whether the session went on to a purchase.
            let labels = purchase_follows(kinds, times);
            train.push(Example {
                input: Encoded::new(
                    &items[..end - 1],
                    &kinds[..end - 1],
                    &times[..end - 1],
                    max_len,
                ),
                targets: items[start + 1..end].to_vec(),
                purchase: labels[start..end - 1].to_vec(),
            });
        }
        (train, validation)
    }

    /// NDCG@10 of the validation sequences (history items excluded from the ranking).
    fn validate(&self, net: &Net, cases: &[&ValidationCase]) -> Result<f64> {
        let n = net.shape.n_items;
        let mut total = 0.0;
        let mut scores = Vec::new();
        for chunk in cases.chunks(256) {
            let seqs: Vec<&Encoded> = chunk.iter().map(|c| &c.input).collect();
            let h = self.last_hidden(net, &seqs)?;
            scores.resize(chunk.len() * n, 0.0);
            self.score_hidden(&h, &mut scores);
            for (row, case) in scores.chunks(n).zip(chunk.iter().copied()) {
                let (target, history) = (case.target, &case.history);
                let t = row[target as usize];
                let mut above = 0usize;
                for (i, &s) in row.iter().enumerate() {
                    if s > t && i as u32 != target && !history.contains(&(i as u32)) {
                        above += 1;
                        if above >= 10 {
                            break;
                        }
                    }
                }
                if above < 10 {
                    total += 1.0 / ((above + 2) as f64).log2();
                }
            }
        }
        Ok(total / cases.len().max(1) as f64)
    }

    fn train(&mut self, data: &TrainData) -> Result<FitReport> {
        let c = self.config.clone();
        let dev = device();
        let n_items = data.n_items();
        let features = (c.item_features && data.n_item_features > 0)
            .then(|| FeatureTable::new(&data.item_features, c.features_per_item));
        let shape = self.shape(n_items, data.n_item_features);
        self.features = features;
        let (examples, validation) = self.examples(data, true);
        if examples.is_empty() {
            return Err(Error::Fit {
                model: "transformer",
                reason: "no user has two or more item events".into(),
            });
        }
        let has_purchase_labels = {
            let mut seen = [false; 2];
            for e in &examples {
                for l in e.purchase.iter().flatten() {
                    seen[usize::from(*l)] = true;
                }
            }
            seen[0] && seen[1]
        };
        self.purchase_trained = has_purchase_labels && c.purchase_weight > 0.0;
        let mut rng = StdRng::seed_from_u64(c.seed ^ 0x5EED);
        let mut val_idx: Vec<usize> = (0..validation.len()).collect();
        val_idx.shuffle(&mut rng);
        val_idx.truncate(c.validation_sequences);
        val_idx.sort_unstable();
        let val_cases: Vec<&ValidationCase> = val_idx.iter().map(|&i| &validation[i]).collect();

        let started = Instant::now();
        let mut report = FitReport::default();
        let net = Net::new(shape, c.seed, &dev)?;
        let phase = Phase {
            label: "epoch",
            epochs: c.epochs,
            validation: &val_cases,
            budget_seconds: c.time_budget_seconds,
        };
        let (best_epoch, values, mut trained) =
            self.run(&net, &examples, &phase, &mut report, &mut rng)?;
        let net = if c.refit && !val_cases.is_empty() {
            // Like the harness does for every model after tuning: train again on all the
            // training events, the held-out items included, for the epochs validation chose.
            let (all, _) = self.examples(data, false);
            let refit = Net::new(shape, c.seed, &dev)?;
            let phase = Phase {
                label: "refit epoch",
                epochs: best_epoch + 1,
                validation: &[],
                budget_seconds: 0.0,
            };
            let mut refit_report = FitReport::default();
            let (_, values, more) = self.run(&refit, &all, &phase, &mut refit_report, &mut rng)?;
            trained += more;
            refit.restore(&values)?;
            refit
        } else {
            net.restore(&values)?;
            net
        };
        report.sequences_per_second =
            Some(trained as f64 / started.elapsed().as_secs_f64().max(1e-9));
        self.install(net)?;
        Ok(report)
    }

    /// Trains `net` for up to `phase.epochs` epochs. With validation cases it stops early
    /// and returns the best epoch's weights; without, it returns the last epoch's.
    /// Returns (the kept weights' epoch, the weights, sequences trained).
    fn run(
        &mut self,
        net: &Net,
        examples: &[Example],
        phase: &Phase<'_>,
        report: &mut FitReport,
        rng: &mut StdRng,
    ) -> Result<(usize, NamedValues, usize)> {
        let c = self.config.clone();
        // Batches of similar length waste little on padding; their order is shuffled.
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.sort_by_key(|&i| (examples[i].input.len(), i));
        let batches: Vec<Vec<usize>> = order.chunks(c.batch_size).map(<[usize]>::to_vec).collect();
        let vars: Vec<Var> = net.params().into_iter().map(|(_, v)| v.clone()).collect();
        let mut optimizer = AdamW::new(
            vars.clone(),
            ParamsAdamW {
                lr: c.learning_rate,
                weight_decay: c.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        let mut dropout = Some(Dropout {
            rng: StdRng::seed_from_u64(c.seed ^ 0xD409),
            rate: c.dropout,
        });
        // (best value, the epoch it was first reached, the kept weights, the epoch they are from)
        let mut best: Option<(f64, usize, NamedValues, usize)> = None;
        let mut step = 0usize;
        let started = Instant::now();
        let mut trained_sequences = 0usize;
        let mut batch_order: Vec<usize> = (0..batches.len()).collect();
        for epoch in 0..phase.epochs {
            let epoch_start = Instant::now();
            batch_order.shuffle(rng);
            let mut loss_sum = 0.0;
            for &b in &batch_order {
                let members: Vec<&Example> = batches[b].iter().map(|&i| &examples[i]).collect();
                let mut inputs: Vec<Encoded> = members.iter().map(|e| e.input.clone()).collect();
                // Context dropout: some sequences lose kinds and gaps, so that queries that
                // carry only items (an API call with item ids) are not out of distribution.
                for input in &mut inputs {
                    if rng.random::<f32>() < 0.1 {
                        input.kinds.iter_mut().for_each(|k| *k = 0);
                        input.gaps.iter_mut().for_each(|g| *g = 0);
                    }
                }
                let refs: Vec<&Encoded> = inputs.iter().collect();
                let batch = Batch::new(&refs);
                let mut positions = Vec::new();
                let mut targets = Vec::new();
                let mut buy_positions = Vec::new();
                let mut buy_labels = Vec::new();
                for (r, e) in members.iter().enumerate() {
                    for (t, &target) in e.targets.iter().enumerate() {
                        let flat = (r * batch.width + t) as u32;
                        positions.push(flat);
                        targets.push(target);
                        if let Some(label) = e.purchase[t] {
                            buy_positions.push(flat);
                            buy_labels.push(f32::from(u8::from(label)));
                        }
                    }
                }
                let (mut grads, loss_value) = self.step(
                    net,
                    &batch,
                    &positions,
                    &targets,
                    (&buy_positions, &buy_labels),
                    &mut dropout,
                    rng,
                )?;
                if c.clip_norm > 0.0 {
                    clip_gradients(&vars, &mut grads, c.clip_norm)?;
                }
                step += 1;
                let warm = (step as f64 / c.warmup_steps.max(1) as f64).min(1.0);
                optimizer.set_learning_rate(c.learning_rate * warm);
                optimizer.step(&grads)?;
                loss_sum += loss_value * members.len() as f64;
                trained_sequences += members.len();
            }
            let epoch_loss = loss_sum / examples.len() as f64;
            report.loss_curve.push(epoch_loss);
            let train_seconds = epoch_start.elapsed().as_secs_f64();
            let throughput = examples.len() as f64 / train_seconds.max(1e-9);
            if phase.validation.is_empty() {
                if c.verbose {
                    eprintln!(
                        "transformer {} {:>3}/{}: loss {epoch_loss:.4}, {throughput:.0} sequences/s",
                        phase.label,
                        epoch + 1,
                        phase.epochs
                    );
                }
                if epoch + 1 == phase.epochs {
                    best = Some((-epoch_loss, epoch, net.values()?, epoch));
                }
                continue;
            }
            self.table = net.item_table()?;
            self.quantized = None;
            let ndcg = self.validate(net, phase.validation)?;
            report.validation_curve.push(ndcg);
            // A tie keeps the later (longer-trained) weights but does not reset patience.
            let best_so_far = best.as_ref().map_or(f64::NEG_INFINITY, |b| b.0);
            if ndcg >= best_so_far {
                let values = net.values()?;
                if let Some(path) = &c.checkpoint {
                    write_checkpoint(path, &values)?;
                }
                let best_epoch = match &best {
                    Some((b, e, _, _)) if ndcg <= *b => *e,
                    _ => epoch,
                };
                best = Some((ndcg, best_epoch, values, epoch));
            }
            let (best_ndcg, best_epoch, _, _) = best.as_ref().expect("set above");
            if c.verbose {
                eprintln!(
                    "transformer {} {:>3}/{}: loss {epoch_loss:.4}, validation NDCG@10 {ndcg:.4} (best {best_ndcg:.4} at {}), {throughput:.0} sequences/s",
                    phase.label,
                    epoch + 1,
                    phase.epochs,
                    best_epoch + 1,
                );
            }
            if epoch - best_epoch >= c.patience {
                break;
            }
            if phase.budget_seconds > 0.0 && started.elapsed().as_secs_f64() >= phase.budget_seconds
            {
                break;
            }
        }
        let (_, _, values, kept_epoch) = best.expect("at least one epoch");
        Ok((kept_epoch, values, trained_sequences))
    }

    /// One batch: forward, fused next-item loss, purchase loss, backward.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        net: &Net,
        batch: &Batch,
        positions: &[u32],
        targets: &[u32],
        (buy_positions, buy_labels): (&[u32], &[f32]),
        dropout: &mut Option<Dropout>,
        rng: &mut StdRng,
    ) -> Result<(candle_core::backprop::GradStore, f64)> {
        let dev = net.device();
        let dim = self.config.dim;
        let hidden = net.forward(batch, self.features.as_ref(), dropout)?;
        let idx = Tensor::from_vec(positions.to_vec(), positions.len(), dev)?;
        let h = hidden.index_select(&idx, 0)?;
        let table_t = net.items.as_tensor().narrow(0, 1, net.shape.n_items)?;
        let h_data: Vec<f32> = h.flatten_all()?.to_vec1()?;
        let table: Vec<f32> = table_t.flatten_all()?.to_vec1()?;
        let lg = loss::next_item_loss(&h_data, &table, dim, targets, self.config.negatives, rng);
        let d_hidden = Tensor::from_vec(lg.d_hidden, (positions.len(), dim), dev)?;
        let d_items = Tensor::from_vec(lg.d_items, (net.shape.n_items, dim), dev)?;
        let mut surrogate = ((h * d_hidden)?.sum_all()? + (table_t * d_items)?.sum_all()?)?;
        let mut loss_value = lg.loss;
        if self.purchase_trained && !buy_positions.is_empty() {
            let idx = Tensor::from_vec(buy_positions.to_vec(), buy_positions.len(), dev)?;
            let z = net.purchase_logits(&hidden.index_select(&idx, 0)?)?;
            let y = Tensor::from_vec(buy_labels.to_vec(), buy_labels.len(), dev)?;
            // Binary cross-entropy with logits: max(z, 0) − z·y + log(1 + e^−|z|).
            let bce = ((z.relu()? - (&z * &y)?)? + ((z.abs()?.neg()?.exp()? + 1.0)?.log()?))?
                .mean_all()?;
            loss_value +=
                f64::from(self.config.purchase_weight) * f64::from(bce.to_scalar::<f32>()?);
            surrogate = (surrogate + (bce * f64::from(self.config.purchase_weight))?)?;
        }
        Ok((surrogate.backward()?, loss_value))
    }
}

/// Scales every gradient so that their global norm is at most `max_norm`.
fn clip_gradients(
    vars: &[Var],
    grads: &mut candle_core::backprop::GradStore,
    max_norm: f64,
) -> Result<()> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / norm;
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(())
}

fn write_checkpoint(
    path: &std::path::Path,
    values: &[(String, Vec<usize>, Vec<f32>)],
) -> Result<()> {
    let tensors: std::collections::HashMap<String, Tensor> = values
        .iter()
        .map(|(name, dims, data)| {
            Ok((
                name.clone(),
                Tensor::from_vec(data.clone(), dims.as_slice(), &Device::Cpu)?,
            ))
        })
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(&tensors, None).map_err(candle_core::Error::from)?;
    aisle_core::fs::write_atomic(path, &bytes)?;
    Ok(())
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
