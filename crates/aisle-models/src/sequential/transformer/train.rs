//! The training loop: examples and validation cases, epochs with early stopping on
//! validation NDCG@10, one optimiser step, gradient clipping.

use std::time::Instant;

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::input::{Batch, Encoded, purchase_follows};
use super::net::{FeatureTable, Net};
use crate::sequential::layers::{Dropout, NamedValues, clip_gradients};
use crate::{Error, FitReport, Result, TrainData};

use super::persist::write_checkpoint;
use super::*;

/// One training phase: early-stopped on validation, or a fixed number of epochs.
pub(super) struct Phase<'a> {
    label: &'static str,
    epochs: usize,
    validation: &'a [&'a ValidationCase],
    budget_seconds: f64,
}

/// One training sequence, encoded, with its next-item targets and purchase labels.
pub(super) struct Example {
    input: Encoded,
    targets: Vec<u32>,
    purchase: Vec<Option<bool>>,
}

/// A held-out last item, with the sequence before it.
pub(super) struct ValidationCase {
    input: Encoded,
    target: u32,
    history: Vec<u32>,
}

impl Transformer {
    /// Encodes the training sequences; the last item of each sequence of three or more
    /// items is held out for validation.
    pub(super) fn examples(
        &self,
        data: &TrainData,
        hold_out: bool,
    ) -> (Vec<Example>, Vec<ValidationCase>) {
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
    pub(super) fn validate(&self, net: &Net, cases: &[&ValidationCase]) -> Result<f64> {
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

    pub(super) fn train(&mut self, data: &TrainData) -> Result<FitReport> {
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
    pub(super) fn run(
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
    pub(super) fn step(
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
