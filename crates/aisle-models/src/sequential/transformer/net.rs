//! The network: embeddings, then pre-norm causal blocks (attention, or attention beside a
//! frequency filter) or one convolutional layer (Caser), and the purchase head.

use candle_core::{D, DType, Device, Result, Tensor, Var};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::config::Mixer;
use super::input::{Batch, N_GAPS, N_KINDS};
use crate::sequential::layers::{Dropout, Init, Linear, NamedValues, Norm, apply_dropout};

/// Shape of the network.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    pub n_items: usize,
    pub n_features: usize,
    pub dim: usize,
    pub ffn_dim: usize,
    pub layers: usize,
    pub heads: usize,
    pub max_len: usize,
    pub mixer: Mixer,
    pub filter_frequencies: usize,
    pub filter_alpha: f32,
    pub window: usize,
    pub horizontal_filters: usize,
    pub vertical_filters: usize,
}

#[derive(Clone, Debug)]
struct Block {
    norm1: Norm,
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    norm2: Norm,
    ffn_in: Linear,
    ffn_out: Linear,
    /// `filter` mixer: square root of the gain on the frequencies above the cut (BSARec's
    /// √β, squared so that the gain stays non-negative).
    filter_gain: Option<Var>,
}

/// Caser's convolutional layer over the latest `window` items.
#[derive(Clone, Debug)]
struct Convolution {
    /// One per height h = 1..=window: `[h·dim, horizontal_filters]`.
    horizontal: Vec<Linear>,
    /// `[window, vertical_filters]`: each vertical filter is a weighted sum of the rows.
    vertical: Var,
    /// Concatenated filter outputs to the hidden width.
    project: Linear,
}

/// The causal low-pass filter as lag weights: output_t = Σ_j kernel[j] · x_(t−j).
///
/// BSARec filters a sequence left-padded to `max_len` with the real FFT, keeping the lowest
/// `frequencies` bins. That operator is the real matrix M[a][b] = (1/L) Σ_f w_f cos(2πf(a−b)/L)
/// (w_f = 1 for the constant and the Nyquist bin, 2 otherwise). Reading only its last row,
/// once for every prefix, makes it causal, so every position can be trained at once like
/// attention with a causal mask; no FFT library is needed for a 50-point transform.
pub(super) fn low_pass_kernel(max_len: usize, frequencies: usize) -> Vec<f32> {
    let l = max_len as f64;
    let kept = frequencies.min(max_len / 2 + 1);
    (0..max_len)
        .map(|lag| {
            let sum: f64 = (0..kept)
                .map(|f| {
                    let weight = if f == 0 || (max_len.is_multiple_of(2) && f == max_len / 2) {
                        1.0
                    } else {
                        2.0
                    };
                    weight * (std::f64::consts::TAU * f as f64 * lag as f64 / l).cos()
                })
                .sum();
            (sum / l) as f32
        })
        .collect()
}

/// All weights of the transformer.
#[derive(Clone, Debug)]
pub(super) struct Net {
    pub shape: Shape,
    /// Item embeddings, row 0 is padding; shared with the output layer.
    pub items: Var,
    features: Var,
    kinds: Var,
    gaps: Var,
    positions: Var,
    blocks: Vec<Block>,
    convolution: Option<Convolution>,
    norm: Norm,
    purchase: Linear,
    device: Device,
}

impl Net {
    /// A freshly initialised network.
    pub fn new(shape: Shape, seed: u64, device: &Device) -> Result<Net> {
        let mut init = Init {
            rng: StdRng::seed_from_u64(seed),
            device,
        };
        let d = shape.dim;
        let std = 1.0 / (d as f32).sqrt();
        let items = init.normal(shape.n_items + 1, d, std)?;
        let features = init.normal(shape.n_features + 1, d, std)?;
        let kinds = init.normal(N_KINDS, d, std)?;
        let gaps = init.normal(N_GAPS, d, std)?;
        // Zero, so that a position no training sequence reached (a history longer than
        // any seen in training) adds nothing rather than noise.
        let positions = init.normal(shape.max_len, d, 0.0)?;
        let mut blocks = Vec::with_capacity(shape.layers);
        let convolution = if shape.mixer == Mixer::Convolution {
            let horizontal = (1..=shape.window)
                .map(|h| init.linear(h * d, shape.horizontal_filters))
                .collect::<Result<Vec<_>>>()?;
            let vertical = init.normal(
                shape.window,
                shape.vertical_filters,
                (1.0 / shape.window as f32).sqrt(),
            )?;
            let width = d * shape.vertical_filters + shape.window * shape.horizontal_filters;
            Some(Convolution {
                horizontal,
                vertical,
                project: init.linear(width, d)?,
            })
        } else {
            None
        };
        let n_blocks = if convolution.is_some() {
            0
        } else {
            shape.layers
        };
        for _ in 0..n_blocks {
            blocks.push(Block {
                norm1: init.norm(d)?,
                query: init.linear(d, d)?,
                key: init.linear(d, d)?,
                value: init.linear(d, d)?,
                out: init.linear(d, d)?,
                norm2: init.norm(d)?,
                ffn_in: init.linear(d, shape.ffn_dim)?,
                ffn_out: init.linear(shape.ffn_dim, d)?,
                filter_gain: if shape.mixer == Mixer::Filter {
                    Some(init.normal(1, d, 1.0)?)
                } else {
                    None
                },
            });
        }
        Ok(Net {
            shape,
            items,
            features,
            kinds,
            gaps,
            positions,
            blocks,
            convolution,
            norm: init.norm(d)?,
            purchase: init.linear(d, 1)?,
            device: device.clone(),
        })
    }

    /// Every parameter with a stable name, in a fixed order.
    pub fn params(&self) -> Vec<(String, &Var)> {
        let mut out: Vec<(String, &Var)> = vec![
            ("items".into(), &self.items),
            ("features".into(), &self.features),
            ("kinds".into(), &self.kinds),
            ("gaps".into(), &self.gaps),
            ("positions".into(), &self.positions),
        ];
        for (i, b) in self.blocks.iter().enumerate() {
            let named: [(&str, &Var); 16] = [
                ("norm1.gain", &b.norm1.gain),
                ("norm1.bias", &b.norm1.bias),
                ("query.weight", &b.query.weight),
                ("query.bias", &b.query.bias),
                ("key.weight", &b.key.weight),
                ("key.bias", &b.key.bias),
                ("value.weight", &b.value.weight),
                ("value.bias", &b.value.bias),
                ("out.weight", &b.out.weight),
                ("out.bias", &b.out.bias),
                ("norm2.gain", &b.norm2.gain),
                ("norm2.bias", &b.norm2.bias),
                ("ffn_in.weight", &b.ffn_in.weight),
                ("ffn_in.bias", &b.ffn_in.bias),
                ("ffn_out.weight", &b.ffn_out.weight),
                ("ffn_out.bias", &b.ffn_out.bias),
            ];
            out.extend(named.into_iter().map(|(n, v)| (format!("block{i}.{n}"), v)));
            if let Some(gain) = &b.filter_gain {
                out.push((format!("block{i}.filter_gain"), gain));
            }
        }
        if let Some(c) = &self.convolution {
            for (h, layer) in c.horizontal.iter().enumerate() {
                out.push((format!("conv.horizontal{}.weight", h + 1), &layer.weight));
                out.push((format!("conv.horizontal{}.bias", h + 1), &layer.bias));
            }
            out.push(("conv.vertical".into(), &c.vertical));
            out.push(("conv.project.weight".into(), &c.project.weight));
            out.push(("conv.project.bias".into(), &c.project.bias));
        }
        out.push(("norm.gain".into(), &self.norm.gain));
        out.push(("norm.bias".into(), &self.norm.bias));
        out.push(("purchase.weight".into(), &self.purchase.weight));
        out.push(("purchase.bias".into(), &self.purchase.bias));
        out
    }

    /// Hidden state of every position, `[rows × width, dim]`. Position t sees only
    /// positions ≤ t (causal mask); with right padding that also hides the padding.
    /// `feature_table` holds each token's feature ids and weights (see `FeatureTable`).
    pub fn forward(
        &self,
        batch: &Batch,
        features: Option<&FeatureTable>,
        dropout: &mut Option<Dropout>,
    ) -> Result<Tensor> {
        let (b, t, d) = (batch.rows, batch.width, self.shape.dim);
        let n = b * t;
        let dev = &self.device;
        let ids = |v: &[u32]| Tensor::from_vec(v.to_vec(), v.len(), dev);
        let mut x = self
            .items
            .as_tensor()
            .index_select(&ids(&batch.tokens)?, 0)?;
        if let Some(table) = features {
            let (idx, weights) = table.gather(&batch.tokens);
            let per = table.per_item;
            let feats = self
                .features
                .as_tensor()
                .index_select(&ids(&idx)?, 0)?
                .reshape((n, per, d))?;
            let weights = Tensor::from_vec(weights, (n, per, 1), dev)?;
            x = (x + feats.broadcast_mul(&weights)?.sum(1)?)?;
        }
        x = (x + self
            .kinds
            .as_tensor()
            .index_select(&ids(&batch.kinds)?, 0)?)?;
        x = (x + self.gaps.as_tensor().index_select(&ids(&batch.gaps)?, 0)?)?;
        let positions: Vec<u32> = batch
            .positions
            .iter()
            .map(|&p| p.min(self.shape.max_len as u32 - 1))
            .collect();
        x = (x + self
            .positions
            .as_tensor()
            .index_select(&ids(&positions)?, 0)?)?;
        x = apply_dropout(dropout, &x)?;
        if let Some(conv) = &self.convolution {
            let z = self.convolve(conv, &x, batch, dropout)?;
            return self.norm.forward(&z);
        }

        let heads = self.shape.heads;
        let head_dim = d / heads;
        let mask: Vec<f32> = (0..t * t)
            .map(|k| if k % t > k / t { -1e9 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), dev)?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        // The filter mixer's causal Toeplitz matrix over this batch's width.
        let low_pass = if self.shape.mixer == Mixer::Filter {
            let kernel = low_pass_kernel(self.shape.max_len, self.shape.filter_frequencies);
            let m: Vec<f32> = (0..t * t)
                .map(|k| {
                    let (row, col) = (k / t, k % t);
                    if col <= row {
                        kernel.get(row - col).copied().unwrap_or(0.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            Some(Tensor::from_vec(m, (t, t), dev)?)
        } else {
            None
        };
        let split = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        for block in &self.blocks {
            let a = block.norm1.forward(&x)?;
            let q = split(block.query.forward(&a)?)?;
            let k = split(block.key.forward(&a)?)?;
            let v = split(block.value.forward(&a)?)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&mask)?;
            let attention = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let mixed = attention
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((n, d))?;
            let mut mixed = block.out.forward(&mixed)?;
            if let (Some(gain), Some(low_pass)) = (&block.filter_gain, &low_pass) {
                // BSARec: low frequencies as they are, the rest scaled by β = gain², mixed
                // with attention as α · filter + (1 − α) · attention.
                let a3 = a.reshape((b, t, d))?;
                let low = low_pass.broadcast_matmul(&a3)?.reshape((n, d))?;
                let high = (&a - &low)?;
                let filtered = (low + high.broadcast_mul(&gain.as_tensor().sqr()?)?)?;
                let alpha = f64::from(self.shape.filter_alpha);
                mixed = ((filtered * alpha)? + (mixed * (1.0 - alpha))?)?;
            }
            x = (x + apply_dropout(dropout, &mixed)?)?;
            let f = block.ffn_in.forward(&block.norm2.forward(&x)?)?.relu()?;
            let f = block.ffn_out.forward(&apply_dropout(dropout, &f)?)?;
            x = (x + apply_dropout(dropout, &f)?)?;
        }
        self.norm.forward(&x)
    }

    /// Caser's layer: for every position, the latest `window` embeddings up to it (zeros
    /// before the sequence starts) through horizontal filters of each height, max-pooled
    /// over time, and vertical filters; concatenated and projected to the hidden width.
    fn convolve(
        &self,
        conv: &Convolution,
        x: &Tensor,
        batch: &Batch,
        dropout: &mut Option<Dropout>,
    ) -> Result<Tensor> {
        let (b, t, d) = (batch.rows, batch.width, self.shape.dim);
        let (n, l) = (b * t, self.shape.window);
        let dev = &self.device;
        // Row 0 of `padded` is zeros; row 1 + k is position k of the flattened batch.
        let padded = Tensor::cat(&[&Tensor::zeros((1, d), DType::F32, dev)?, x], 0)?;
        let mut rows = Vec::with_capacity(n * l);
        for r in 0..b {
            for p in 0..t {
                for j in 0..l {
                    let back = l - 1 - j;
                    rows.push(if p >= back && p < batch.lens[r] {
                        (r * t + p - back + 1) as u32
                    } else {
                        0
                    });
                }
            }
        }
        let window = padded
            .index_select(&Tensor::from_vec(rows, n * l, dev)?, 0)?
            .reshape((n, l, d))?;
        let mut parts = Vec::with_capacity(l + 1);
        if self.shape.vertical_filters > 0 {
            let vertical = window
                .transpose(1, 2)?
                .contiguous()?
                .broadcast_matmul(conv.vertical.as_tensor())?
                .reshape((n, d * self.shape.vertical_filters))?;
            parts.push(vertical);
        }
        if self.shape.horizontal_filters > 0 {
            for (k, layer) in conv.horizontal.iter().enumerate() {
                let h = k + 1;
                let steps = l - h + 1;
                let shifted: Vec<Tensor> = (0..h)
                    .map(|s| window.narrow(1, s, steps))
                    .collect::<Result<_>>()?;
                let stacked = Tensor::cat(&shifted, 2)?.reshape((n * steps, h * d))?;
                let pooled = layer
                    .forward(&stacked)?
                    .relu()?
                    .reshape((n, steps, self.shape.horizontal_filters))?
                    .max(1)?;
                parts.push(pooled);
            }
        }
        let features = apply_dropout(dropout, &Tensor::cat(&parts, 1)?)?;
        conv.project.forward(&features)?.relu()
    }

    /// Purchase logits of hidden states `[n, dim]` → `[n]`.
    pub fn purchase_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.purchase.forward(hidden)?.squeeze(1)
    }

    /// The item embedding table without the padding row, `[n_items, dim]`, row-major.
    pub fn item_table(&self) -> Result<Vec<f32>> {
        self.items
            .as_tensor()
            .narrow(0, 1, self.shape.n_items)?
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1()
    }

    /// Rebuilds a network from named parameter values (as written by `params`).
    pub fn from_values(
        shape: Shape,
        values: &[(String, Vec<usize>, Vec<f32>)],
        device: &Device,
    ) -> Result<Net> {
        let net = Net::new(shape, 0, device)?;
        let params = net.params();
        if params.len() != values.len() {
            candle_core::bail!(
                "expected {} parameters, found {}",
                params.len(),
                values.len()
            );
        }
        for ((name, var), (stored, dims, data)) in params.iter().zip(values) {
            if name != stored || var.dims() != dims.as_slice() {
                candle_core::bail!(
                    "parameter {stored} {dims:?} does not fit {name} {:?}",
                    var.dims()
                );
            }
            var.set(&Tensor::from_vec(data.clone(), dims.as_slice(), device)?)?;
        }
        Ok(net)
    }

    /// Named parameter values, for saving and for in-memory checkpoints.
    pub fn values(&self) -> Result<NamedValues> {
        self.params()
            .into_iter()
            .map(|(name, var)| {
                Ok((
                    name,
                    var.dims().to_vec(),
                    var.as_tensor().flatten_all()?.to_vec1::<f32>()?,
                ))
            })
            .collect()
    }

    /// Overwrites every parameter with `values` (restoring a checkpoint).
    pub fn restore(&self, values: &[(String, Vec<usize>, Vec<f32>)]) -> Result<()> {
        for ((_, var), (_, dims, data)) in self.params().iter().zip(values) {
            var.set(&Tensor::from_vec(
                data.clone(),
                dims.as_slice(),
                &self.device,
            )?)?;
        }
        Ok(())
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// Each item's categorical features, padded to a fixed count, with mean-pooling weights.
#[derive(Clone, Debug, Default)]
pub(super) struct FeatureTable {
    pub per_item: usize,
    /// `(n_items + 1) × per_item` feature ids + 1 (0 is "none"); row 0 is the padding token.
    ids: Vec<u32>,
    weights: Vec<f32>,
}

impl FeatureTable {
    pub fn new(item_features: &[Vec<u32>], per_item: usize) -> FeatureTable {
        let n = item_features.len() + 1;
        let mut ids = vec![0u32; n * per_item];
        let mut weights = vec![0f32; n * per_item];
        for (item, features) in item_features.iter().enumerate() {
            let kept = &features[..features.len().min(per_item)];
            for (slot, &f) in kept.iter().enumerate() {
                ids[(item + 1) * per_item + slot] = f + 1;
                weights[(item + 1) * per_item + slot] = 1.0 / kept.len() as f32;
            }
        }
        FeatureTable {
            per_item,
            ids,
            weights,
        }
    }

    pub fn from_parts(per_item: usize, ids: Vec<u32>, weights: Vec<f32>) -> FeatureTable {
        FeatureTable {
            per_item,
            ids,
            weights,
        }
    }

    pub fn parts(&self) -> (&[u32], &[f32]) {
        (&self.ids, &self.weights)
    }

    fn gather(&self, tokens: &[u32]) -> (Vec<u32>, Vec<f32>) {
        let p = self.per_item;
        let mut ids = Vec::with_capacity(tokens.len() * p);
        let mut weights = Vec::with_capacity(tokens.len() * p);
        for &tok in tokens {
            let row = tok as usize * p;
            ids.extend_from_slice(&self.ids[row..row + p]);
            weights.extend_from_slice(&self.weights[row..row + p]);
        }
        (ids, weights)
    }
}

#[cfg(test)]
mod tests {
    use super::low_pass_kernel;

    /// The kernel is the last row of "real FFT, keep the lowest bins, inverse FFT" on a
    /// sequence of `len` points: compared with a naive DFT of random sequences.
    #[test]
    fn kernel_is_the_last_output_of_the_fft_low_pass() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (len, kept) in [(50, 3), (50, 26), (7, 2), (8, 5)] {
            let x: Vec<f64> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let tau = std::f64::consts::TAU;
            // Spectrum X_f for every f, then keep |f| < kept on both sides of the circle.
            let mut last = 0.0;
            for f in 0..len {
                let mirrored = f.min(len - f);
                if mirrored >= kept {
                    continue;
                }
                let (mut re, mut im) = (0.0, 0.0);
                for (n, v) in x.iter().enumerate() {
                    let angle = -tau * (f * n) as f64 / len as f64;
                    re += v * angle.cos();
                    im += v * angle.sin();
                }
                let angle = tau * (f * (len - 1)) as f64 / len as f64;
                last += (re * angle.cos() - im * angle.sin()) / len as f64;
            }
            let kernel = low_pass_kernel(len, kept);
            let causal: f64 = (0..len)
                .map(|lag| f64::from(kernel[lag]) * x[len - 1 - lag])
                .sum();
            assert!(
                (last - causal).abs() < 1e-5,
                "len {len}, kept {kept}: FFT {last} vs kernel {causal}"
            );
        }
    }
}
