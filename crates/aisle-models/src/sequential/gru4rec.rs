//! GRU4Rec (Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018), as its official
//! implementation trains it (Hidasi & Czapp, RecSys 2023): session-parallel mini-batches
//! with the hidden state carried over and detached at every step, one GRU layer whose input
//! embedding is the output item table (constrained embedding), scores against the targets
//! of the whole mini-batch plus popularity-sampled negatives shared by the mini-batch,
//! cross-entropy (with logQ correction) or BPR-max loss, and Adagrad with momentum that
//! updates only the item rows a step touched.
//!
//! The item table, its bias and every optimiser state live in plain vectors: a step reads
//! and writes only the rows it touches, as the official sparse optimiser does; candle
//! differentiates the step itself.

use std::time::Instant;

use candle_core::{D, DType, Device, Tensor, Var};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::sequential::layers::Dropout;
use crate::{Error, FitReport, Query, Recommender, Result, TrainData};

/// The training loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gru4RecLoss {
    /// Softmax cross-entropy over the mini-batch's targets and the sampled negatives.
    #[default]
    CrossEntropy,
    /// BPR-max: a softmax-weighted BPR over the negatives, with a score regulariser.
    BprMax,
}

/// Settings of GRU4Rec. The defaults are the official implementation's best settings for
/// the RSC15 (yoochoose) clicks with 100 hidden units (`rsc15_xe_shared_100_best`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gru4RecConfig {
    /// Hidden units of the GRU layer (also the width of the tied item table).
    pub hidden: usize,
    /// The loss.
    pub loss: Gru4RecLoss,
    /// Sessions trained in parallel.
    pub batch_size: usize,
    /// Dropout on the input item embedding.
    pub dropout_embed: f32,
    /// Dropout on the GRU's output (the carried hidden state is the dropped-out one).
    pub dropout_hidden: f32,
    /// Adagrad learning rate.
    pub learning_rate: f32,
    /// Heavy-ball momentum on the Adagrad steps (0 = plain Adagrad).
    pub momentum: f32,
    /// Negatives sampled per step and shared by the mini-batch (0 = in-batch only).
    pub n_sample: usize,
    /// Negatives are drawn in proportion to popularity^sample_alpha.
    pub sample_alpha: f32,
    /// BPR-max: weight of the regulariser on the negatives' scores.
    pub bpreg: f32,
    /// Cross-entropy: logQ correction weight (subtracts logq · log count of each column).
    pub logq: f32,
    /// BPR-max: ELU with this α on the scores before the loss (0 = linear).
    pub elu_param: f32,
    /// Passes over the training sessions.
    pub epochs: usize,
    /// Most recent events of a query that are read when scoring.
    pub max_len: usize,
    /// Print one progress line per epoch to stderr.
    pub verbose: bool,
    /// Random seed (initialisation, sampling, dropout).
    pub seed: u64,
}

impl Default for Gru4RecConfig {
    fn default() -> Self {
        Gru4RecConfig {
            hidden: 100,
            loss: Gru4RecLoss::CrossEntropy,
            batch_size: 32,
            dropout_embed: 0.0,
            dropout_hidden: 0.4,
            learning_rate: 0.2,
            momentum: 0.2,
            n_sample: 2048,
            sample_alpha: 0.5,
            bpreg: 0.0,
            logq: 1.0,
            elu_param: 0.0,
            epochs: 10,
            max_len: 50,
            verbose: false,
            seed: 42,
        }
    }
}

impl Gru4RecConfig {
    fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidConfig {
                model: "gru4rec",
                reason,
            })
        };
        if self.hidden == 0 || self.batch_size == 0 || self.epochs == 0 || self.max_len == 0 {
            return bad("hidden, batch_size, epochs and max_len must be positive".into());
        }
        for (name, p) in [
            ("dropout_embed", self.dropout_embed),
            ("dropout_hidden", self.dropout_hidden),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} {p} is not in [0, 1)"));
            }
        }
        if self.learning_rate.is_nan()
            || self.learning_rate <= 0.0
            || !(0.0..1.0).contains(&self.momentum)
        {
            return bad(format!(
                "learning_rate must be positive (got {}) and momentum in [0, 1) (got {})",
                self.learning_rate, self.momentum
            ));
        }
        Ok(())
    }
}

/// Gate weights of the GRU, row-major: input `[hidden, 3·hidden]`, recurrent
/// `[hidden, 3·hidden]` and their biases, the three blocks being reset, update, candidate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Cell {
    input: Vec<f32>,
    input_bias: Vec<f32>,
    recurrent: Vec<f32>,
    recurrent_bias: Vec<f32>,
}

/// The fitted GRU4Rec.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Gru4Rec {
    config: Gru4RecConfig,
    /// Item table `[n_items, hidden]`: the input embedding and the output weights.
    items: Vec<f32>,
    /// Output bias of each item.
    bias: Vec<f32>,
    cell: Cell,
}

/// The cell's weights as candle tensors (trainable during a step, plain when scoring).
struct CellTensors {
    input: Tensor,
    input_bias: Tensor,
    recurrent: Tensor,
    recurrent_bias: Tensor,
}

/// One GRU step: r = σ(x·Wr + h·Ur), z = σ(x·Wz + h·Uz), n = tanh(x·Wn + r ⊙ (h·Un)),
/// h' = (1 − z) ⊙ n + z ⊙ h (biases included in each product, as PyTorch's GRUCell).
fn gru_step(
    cell: &CellTensors,
    x: &Tensor,
    h: &Tensor,
    hidden: usize,
) -> candle_core::Result<Tensor> {
    let gx = x.matmul(&cell.input)?.broadcast_add(&cell.input_bias)?;
    let gh = h
        .matmul(&cell.recurrent)?
        .broadcast_add(&cell.recurrent_bias)?;
    let gate = |k: usize| -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            gx.narrow(1, k * hidden, hidden)?,
            gh.narrow(1, k * hidden, hidden)?,
        ))
    };
    let (xr, hr) = gate(0)?;
    let (xz, hz) = gate(1)?;
    let (xn, hn) = gate(2)?;
    let r = candle_nn::ops::sigmoid(&(xr + hr)?)?;
    let z = candle_nn::ops::sigmoid(&(xz + hz)?)?;
    let n = (xn + (r * hn)?)?.tanh()?;
    &n + (z * (h - &n)?)?
}

/// The loss of one step, summed over the `b` rows of `scores` (`[b, columns]`), whose
/// target is the diagonal: each row's own target column.
fn minibatch_loss(
    c: &Gru4RecConfig,
    scores: &Tensor,
    columns: &[u32],
    b: usize,
    log_counts: &[f32],
) -> candle_core::Result<Tensor> {
    let dev = scores.device();
    let m = columns.len();
    let mut eye = vec![0f32; b * m];
    for i in 0..b {
        eye[i * m + i] = 1.0;
    }
    let eye = Tensor::from_vec(eye, (b, m), dev)?;
    match c.loss {
        Gru4RecLoss::CrossEntropy => {
            let scores = if c.logq > 0.0 {
                // logQ: the target columns appear with their popularity, the sampled
                // ones with popularity^alpha.
                let shift: Vec<f32> = columns
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| {
                        let lc = log_counts[i as usize];
                        c.logq * if k < b { lc } else { lc * c.sample_alpha }
                    })
                    .collect();
                scores.broadcast_sub(&Tensor::from_vec(shift, m, dev)?)?
            } else {
                scores.clone()
            };
            let log_p = candle_nn::ops::log_softmax(&scores, D::Minus1)?;
            (log_p * &eye)?.sum_all()?.neg()
        }
        Gru4RecLoss::BprMax => {
            let scores = if c.elu_param > 0.0 {
                scores.elu(f64::from(c.elu_param))?
            } else {
                scores.clone()
            };
            let target = (&scores * &eye)?.sum_keepdim(1)?;
            // Softmax over the negatives only: the target column is pushed out.
            let weights = candle_nn::ops::softmax(&(&scores - (&eye * 1e9)?)?, D::Minus1)?;
            let diff = candle_nn::ops::sigmoid(&target.broadcast_sub(&scores)?)?;
            let bpr = ((&weights * diff)?.sum(1)? + 1e-24)?.log()?.neg()?;
            let reg = ((&weights * scores.sqr()?)?.sum(1)? * f64::from(c.bpreg))?;
            (bpr + reg)?.sum_all()
        }
    }
}

/// Adagrad with heavy-ball momentum: acc += g², m = μ·m − lr·g/√(acc + ε), p += m.
#[derive(Clone, Debug)]
struct AdagradM {
    accumulator: Vec<f32>,
    momentum: Vec<f32>,
}

impl AdagradM {
    fn new(n: usize) -> AdagradM {
        AdagradM {
            accumulator: vec![0.0; n],
            momentum: vec![0.0; n],
        }
    }

    /// Updates `params[range]` with `grad` (same length as the range).
    fn update(&mut self, params: &mut [f32], offset: usize, grad: &[f32], lr: f32, mu: f32) {
        for (k, &g) in grad.iter().enumerate() {
            let i = offset + k;
            self.accumulator[i] += g * g;
            let step = lr * g / (self.accumulator[i] + 1e-6).sqrt();
            if mu > 0.0 {
                self.momentum[i] = mu * self.momentum[i] - step;
                params[i] += self.momentum[i];
            } else {
                params[i] -= step;
            }
        }
    }
}

/// Draws items in proportion to popularity^alpha by inverse CDF.
struct NegativeSampler {
    cdf: Vec<f64>,
}

impl NegativeSampler {
    fn new(counts: &[f64], alpha: f32) -> NegativeSampler {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = counts
            .iter()
            .map(|&c| {
                total += c.powf(f64::from(alpha));
                total
            })
            .collect();
        for v in &mut cdf {
            *v /= total.max(f64::MIN_POSITIVE);
        }
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        NegativeSampler { cdf }
    }

    fn draw(&self, rng: &mut StdRng) -> u32 {
        let u: f64 = rng.random();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1) as u32
    }
}

fn uniform(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

impl Gru4Rec {
    /// An unfitted GRU4Rec.
    pub fn new(config: Gru4RecConfig) -> Gru4Rec {
        Gru4Rec {
            config,
            ..Gru4Rec::default()
        }
    }

    /// The settings.
    pub fn config(&self) -> &Gru4RecConfig {
        &self.config
    }

    fn cell_tensors(&self, device: &Device) -> candle_core::Result<CellTensors> {
        let h = self.config.hidden;
        Ok(CellTensors {
            input: Tensor::from_slice(&self.cell.input, (h, 3 * h), device)?,
            input_bias: Tensor::from_slice(&self.cell.input_bias, 3 * h, device)?,
            recurrent: Tensor::from_slice(&self.cell.recurrent, (h, 3 * h), device)?,
            recurrent_bias: Tensor::from_slice(&self.cell.recurrent_bias, 3 * h, device)?,
        })
    }

    fn rows(&self, ids: &[u32]) -> Vec<f32> {
        let h = self.config.hidden;
        let mut out = Vec::with_capacity(ids.len() * h);
        for &i in ids {
            out.extend_from_slice(&self.items[i as usize * h..(i as usize + 1) * h]);
        }
        out
    }

    fn train(&mut self, data: &TrainData) -> Result<FitReport> {
        let c = self.config.clone();
        let n_items = data.n_items();
        let h = c.hidden;
        let dev = Device::Cpu;
        // Sessions of two or more events, in time order (by their last event: the data
        // keeps no start time, and both orders interleave sessions the same way).
        let mut sessions: Vec<(i64, &[u32])> = data
            .sessions
            .iter()
            .zip(&data.session_end_ms)
            .filter(|(s, _)| s.len() >= 2)
            .map(|(s, &end)| (end, s.as_slice()))
            .collect();
        if sessions.is_empty() {
            return Err(Error::Fit {
                model: "gru4rec",
                reason: "no session has two or more item events".into(),
            });
        }
        sessions.sort_by_key(|&(end, _)| end);
        let mut counts = vec![0f64; n_items];
        for (_, s) in &sessions {
            for &i in *s {
                counts[i as usize] += 1.0;
            }
        }
        let log_counts: Vec<f32> = counts.iter().map(|&c| (c.max(1.0) as f32).ln()).collect();
        let sampler = NegativeSampler::new(&counts, c.sample_alpha);

        let mut rng = StdRng::seed_from_u64(c.seed);
        let table_scale = (6.0 / (n_items + h) as f32).sqrt();
        let gate_scale = (6.0 / (2 * h) as f32).sqrt();
        self.items = uniform(&mut rng, n_items * h, table_scale);
        self.bias = vec![0.0; n_items];
        self.cell = Cell {
            input: uniform(&mut rng, h * 3 * h, gate_scale),
            input_bias: vec![0.0; 3 * h],
            recurrent: uniform(&mut rng, h * 3 * h, gate_scale),
            recurrent_bias: vec![0.0; 3 * h],
        };
        let mut opt_items = AdagradM::new(self.items.len());
        let mut opt_bias = AdagradM::new(n_items);
        let mut opt_cell = [
            AdagradM::new(h * 3 * h),
            AdagradM::new(3 * h),
            AdagradM::new(h * 3 * h),
            AdagradM::new(3 * h),
        ];
        let mut dropout_embed = Dropout {
            rng: StdRng::seed_from_u64(c.seed ^ 0xE3B),
            rate: c.dropout_embed,
        };
        let mut dropout_hidden = Dropout {
            rng: StdRng::seed_from_u64(c.seed ^ 0x41D),
            rate: c.dropout_hidden,
        };
        let mut report = FitReport::default();
        let started = Instant::now();
        let mut trained_events = 0usize;
        // Per-row gradient sums of the item table and bias for one step.
        let mut row_grad: rustc_hash::FxHashMap<u32, (Vec<f32>, f32)> = Default::default();
        for epoch in 0..c.epochs {
            let epoch_start = Instant::now();
            let events_before = trained_events;
            // Each slot: (session index, position of the current input event).
            let mut slots: Vec<(usize, usize)> = (0..c.batch_size.min(sessions.len()))
                .map(|s| (s, 0))
                .collect();
            let mut next_session = slots.len();
            let mut hidden_state = vec![0f32; slots.len() * h];
            let (mut loss_sum, mut steps) = (0.0f64, 0usize);
            while !slots.is_empty() {
                let b = slots.len();
                let inputs: Vec<u32> = slots.iter().map(|&(s, p)| sessions[s].1[p]).collect();
                let targets: Vec<u32> = slots.iter().map(|&(s, p)| sessions[s].1[p + 1]).collect();
                let mut columns = targets.clone();
                columns.extend((0..c.n_sample).map(|_| sampler.draw(&mut rng)));
                let m = columns.len();

                let x_var = Var::from_vec(self.rows(&inputs), (b, h), &dev)?;
                let out_var = Var::from_vec(self.rows(&columns), (m, h), &dev)?;
                let bias_rows: Vec<f32> = columns.iter().map(|&i| self.bias[i as usize]).collect();
                let bias_var = Var::from_vec(bias_rows, m, &dev)?;
                let cell_vars = [
                    Var::from_slice(&self.cell.input, (h, 3 * h), &dev)?,
                    Var::from_slice(&self.cell.input_bias, 3 * h, &dev)?,
                    Var::from_slice(&self.cell.recurrent, (h, 3 * h), &dev)?,
                    Var::from_slice(&self.cell.recurrent_bias, 3 * h, &dev)?,
                ];
                let [input, input_bias, recurrent, recurrent_bias] =
                    cell_vars.each_ref().map(|v| v.as_tensor().clone());
                let cell = CellTensors {
                    input,
                    input_bias,
                    recurrent,
                    recurrent_bias,
                };
                let x = dropout_embed.apply(x_var.as_tensor())?;
                let h_prev = Tensor::from_slice(&hidden_state, (b, h), &dev)?;
                let h_new = dropout_hidden.apply(&gru_step(&cell, &x, &h_prev, h)?)?;
                let scores = h_new
                    .matmul(&out_var.as_tensor().t()?)?
                    .broadcast_add(bias_var.as_tensor())?;
                let loss = minibatch_loss(&c, &scores, &columns, b, &log_counts)?;
                let loss = (loss / c.batch_size as f64)?;
                loss_sum += f64::from(loss.to_scalar::<f32>()?);
                steps += 1;
                trained_events += b;
                let grads = loss.backward()?;
                hidden_state = h_new.flatten_all()?.to_vec1()?;

                // Sparse rows: the tied table gets the gradients of its input and output use.
                row_grad.clear();
                let mut add_rows = |ids: &[u32], g: Option<&Tensor>| -> Result<()> {
                    if let Some(g) = g {
                        let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
                        for (k, &i) in ids.iter().enumerate() {
                            let entry = row_grad.entry(i).or_insert_with(|| (vec![0.0; h], 0.0));
                            for (a, v) in entry.0.iter_mut().zip(&g[k * h..(k + 1) * h]) {
                                *a += v;
                            }
                        }
                    }
                    Ok(())
                };
                add_rows(&inputs, grads.get(x_var.as_tensor()))?;
                add_rows(&columns, grads.get(out_var.as_tensor()))?;
                if let Some(g) = grads.get(bias_var.as_tensor()) {
                    let g: Vec<f32> = g.to_vec1()?;
                    for (k, &i) in columns.iter().enumerate() {
                        row_grad.entry(i).or_insert_with(|| (vec![0.0; h], 0.0)).1 += g[k];
                    }
                }
                for (&i, (g, gb)) in &row_grad {
                    let row = i as usize;
                    opt_items.update(&mut self.items, row * h, g, c.learning_rate, c.momentum);
                    opt_bias.update(&mut self.bias, row, &[*gb], c.learning_rate, c.momentum);
                }
                let params = [
                    &mut self.cell.input,
                    &mut self.cell.input_bias,
                    &mut self.cell.recurrent,
                    &mut self.cell.recurrent_bias,
                ];
                for ((var, p), opt) in cell_vars.iter().zip(params).zip(opt_cell.iter_mut()) {
                    if let Some(g) = grads.get(var.as_tensor()) {
                        let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
                        opt.update(p, 0, &g, c.learning_rate, c.momentum);
                    }
                }

                // Advance every slot; a finished session gives its slot (and a zero hidden
                // state) to the next one; with none left the slot closes.
                let mut kept = Vec::with_capacity(b);
                let mut kept_hidden = Vec::with_capacity(b * h);
                for (k, (s, p)) in slots.iter().copied().enumerate() {
                    if p + 2 < sessions[s].1.len() {
                        kept.push((s, p + 1));
                        kept_hidden.extend_from_slice(&hidden_state[k * h..(k + 1) * h]);
                    } else if next_session < sessions.len() {
                        kept.push((next_session, 0));
                        next_session += 1;
                        kept_hidden.extend(std::iter::repeat_n(0.0, h));
                    }
                }
                slots = kept;
                hidden_state = kept_hidden;
            }
            let epoch_loss = loss_sum / steps.max(1) as f64;
            report.loss_curve.push(epoch_loss);
            if c.verbose {
                eprintln!(
                    "gru4rec epoch {:>3}/{}: loss {epoch_loss:.4}, {:.0} events/s",
                    epoch + 1,
                    c.epochs,
                    (trained_events - events_before) as f64
                        / epoch_start.elapsed().as_secs_f64().max(1e-9),
                );
            }
        }
        report.sequences_per_second =
            Some(trained_events as f64 / started.elapsed().as_secs_f64().max(1e-9));
        Ok(report)
    }

    /// Final hidden state of each history (the latest `max_len` known items), `[rows, hidden]`.
    fn final_hidden(&self, histories: &[Vec<u32>]) -> candle_core::Result<Vec<f32>> {
        let h = self.config.hidden;
        let dev = Device::Cpu;
        let cell = self.cell_tensors(&dev)?;
        let rows = histories.len();
        let width = histories.iter().map(Vec::len).max().unwrap_or(0);
        let mut state = Tensor::zeros((rows, h), DType::F32, &dev)?;
        // Histories are right-aligned; a row whose history has not started keeps h = 0.
        for t in 0..width {
            let mut ids = Vec::with_capacity(rows);
            let mut active = Vec::with_capacity(rows);
            for hist in histories {
                let start = width - hist.len();
                if t >= start {
                    ids.push(hist[t - start]);
                    active.push(1f32);
                } else {
                    ids.push(0);
                    active.push(0f32);
                }
            }
            let x = Tensor::from_vec(self.rows(&ids), (rows, h), &dev)?;
            let next = gru_step(&cell, &x, &state, h)?;
            let mask = Tensor::from_vec(active, (rows, 1), &dev)?;
            state = (next.broadcast_mul(&mask)? + state.broadcast_mul(&(1.0 - mask)?)?)?;
        }
        state.flatten_all()?.to_vec1()
    }
}

impl Recommender for Gru4Rec {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        self.config.validate()?;
        // A step multiplies matrices of a few hundred rows: spreading each over threads
        // costs more in waking them than it saves, so training runs on one thread.
        match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
            Ok(pool) => pool.install(|| self.train(data)),
            Err(_) => self.train(data),
        }
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        self.score_batch(std::slice::from_ref(query), scores);
    }

    fn score_batch(&self, queries: &[Query<'_>], scores: &mut [f32]) {
        let n = self.n_items();
        let h = self.config.hidden;
        let histories: Vec<Vec<u32>> = queries
            .iter()
            .map(|q| {
                let known: Vec<u32> = q
                    .history
                    .iter()
                    .copied()
                    .filter(|&i| (i as usize) < n)
                    .collect();
                known[known.len().saturating_sub(self.config.max_len)..].to_vec()
            })
            .collect();
        if n == 0 {
            return;
        }
        let hidden = self
            .final_hidden(&histories)
            .expect("a GRU step over known items");
        let rows = queries.len();
        let hm = MatRef::from_row_major_slice(&hidden, rows, h);
        let e = MatRef::from_row_major_slice(&self.items, n, h);
        let out = MatMut::from_row_major_slice_mut(&mut scores[..rows * n], rows, n);
        matmul(out, Accum::Replace, hm, e.transpose(), 1.0, Par::rayon(0));
        for (row, hist) in scores.chunks_mut(n).zip(&histories) {
            if hist.is_empty() {
                row.fill(0.0);
            } else {
                for (s, b) in row.iter_mut().zip(&self.bias) {
                    *s += b;
                }
            }
        }
    }

    fn n_items(&self) -> usize {
        self.bias.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss_of(config: &Gru4RecConfig, scores: &[[f32; 3]; 2], columns: &[u32]) -> f64 {
        let flat: Vec<f32> = scores.iter().flatten().copied().collect();
        let t = Tensor::from_vec(flat, (2, 3), &Device::Cpu).expect("tensor");
        let log_counts = [1.0f32.ln(), 4.0f32.ln(), 2.0f32.ln()];
        let loss = minibatch_loss(config, &t, columns, 2, &log_counts).expect("loss");
        f64::from(loss.to_scalar::<f32>().expect("scalar"))
    }

    /// Two rows whose targets are columns 0 and 1 (items 0 and 1), then one sampled
    /// negative (item 2); every term worked out by hand.
    #[test]
    fn losses_match_their_formulas_by_hand() {
        let scores = [[2.0f32, 0.5, -1.0], [0.0, 1.0, 3.0]];
        let columns = [0u32, 1, 2];
        let sm = |row: [f64; 3], target: usize| {
            let z: f64 = row.iter().map(|v| v.exp()).sum();
            -(row[target].exp() / z).ln()
        };
        let plain = Gru4RecConfig {
            logq: 0.0,
            ..Gru4RecConfig::default()
        };
        let expected = sm([2.0, 0.5, -1.0], 0) + sm([0.0, 1.0, 3.0], 1);
        assert!((loss_of(&plain, &scores, &columns) - expected).abs() < 1e-5);

        // logQ: columns 0, 1 are targets (counts 1 and 4), column 2 a sample (count 2,
        // alpha 0.5): subtract ln 1, ln 4 and 0.5 · ln 2.
        let logq = Gru4RecConfig {
            logq: 1.0,
            sample_alpha: 0.5,
            ..Gru4RecConfig::default()
        };
        let (a, b, c) = (0.0, 4f64.ln(), 0.5 * 2f64.ln());
        let expected = sm([2.0 - a, 0.5 - b, -1.0 - c], 0) + sm([0.0 - a, 1.0 - b, 3.0 - c], 1);
        assert!((loss_of(&logq, &scores, &columns) - expected).abs() < 1e-5);

        // BPR-max with ELU(α = 0.5) and bpreg 2: weights are the softmax over the
        // negatives (the two other columns) of the activated scores.
        let bprmax = Gru4RecConfig {
            loss: Gru4RecLoss::BprMax,
            elu_param: 0.5,
            bpreg: 2.0,
            ..Gru4RecConfig::default()
        };
        let elu = |x: f64| if x > 0.0 { x } else { 0.5 * (x.exp() - 1.0) };
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let row_loss = |row: [f64; 3], target: usize| {
            let o: Vec<f64> = row.iter().map(|&x| elu(x)).collect();
            let negatives: Vec<usize> = (0..3).filter(|&j| j != target).collect();
            let z: f64 = negatives.iter().map(|&j| o[j].exp()).sum();
            let (mut bpr, mut reg) = (0.0, 0.0);
            for &j in &negatives {
                let w = o[j].exp() / z;
                bpr += w * sigmoid(o[target] - o[j]);
                reg += w * o[j] * o[j];
            }
            -bpr.ln() + 2.0 * reg
        };
        let expected = row_loss([2.0, 0.5, -1.0], 0) + row_loss([0.0, 1.0, 3.0], 1);
        let got = loss_of(&bprmax, &scores, &columns);
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
    }

    #[test]
    fn negatives_follow_popularity_to_the_power_alpha() {
        let sampler = NegativeSampler::new(&[1.0, 0.0, 9.0], 0.5);
        let mut rng = StdRng::seed_from_u64(3);
        let mut seen = [0usize; 3];
        for _ in 0..40_000 {
            seen[sampler.draw(&mut rng) as usize] += 1;
        }
        assert_eq!(seen[1], 0, "an item never seen is never drawn");
        // 1^0.5 : 9^0.5 = 1 : 3.
        let ratio = seen[2] as f64 / seen[0] as f64;
        assert!((ratio - 3.0).abs() < 0.15, "ratio {ratio}");
    }
}
