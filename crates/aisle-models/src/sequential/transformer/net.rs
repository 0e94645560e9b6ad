//! The network: embeddings, pre-norm causal transformer blocks, the purchase head.
//!
//! Parameters are plain candle `Var`s initialised from our own seeded generator, because
//! candle's CPU random numbers cannot be seeded and a fixed seed must give the same model.

use candle_core::{D, DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::input::{Batch, N_GAPS, N_KINDS};

/// Named parameter values: name, dimensions, row-major data.
pub(super) type NamedValues = Vec<(String, Vec<usize>, Vec<f32>)>;

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
}

#[derive(Clone, Debug)]
struct Linear {
    weight: Var,
    bias: Var,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(self.weight.as_tensor())?
            .broadcast_add(self.bias.as_tensor())
    }
}

#[derive(Clone, Debug)]
struct Norm {
    gain: Var,
    bias: Var,
}

impl Norm {
    /// Layer normalisation over the last dimension, from differentiable primitives.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(var + 1e-6)?.sqrt()?)?
            .broadcast_mul(self.gain.as_tensor())?
            .broadcast_add(self.bias.as_tensor())
    }
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
}

/// Inverted dropout with our own seeded generator.
pub(super) struct Dropout {
    pub rng: StdRng,
    pub rate: f32,
}

impl Dropout {
    fn apply(&mut self, x: &Tensor) -> Result<Tensor> {
        if self.rate <= 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 - self.rate;
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if self.rng.random::<f32>() < keep {
                    1.0 / keep
                } else {
                    0.0
                }
            })
            .collect();
        x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)
    }
}

fn apply_dropout(dropout: &mut Option<Dropout>, x: &Tensor) -> Result<Tensor> {
    match dropout {
        Some(d) => d.apply(x),
        None => Ok(x.clone()),
    }
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
    norm: Norm,
    purchase: Linear,
    device: Device,
}

struct Init<'a> {
    rng: StdRng,
    device: &'a Device,
}

impl Init<'_> {
    fn normal(&mut self, rows: usize, cols: usize, std: f32) -> Result<Var> {
        let data: Vec<f32> = (0..rows * cols)
            .map(|_| {
                // Box–Muller: rand's distributions crate is not worth a dependency here.
                let u1: f32 = self.rng.random::<f32>().max(1e-12);
                let u2: f32 = self.rng.random();
                std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect();
        Var::from_vec(data, (rows, cols), self.device)
    }

    fn constant(&mut self, n: usize, value: f32) -> Result<Var> {
        Var::from_vec(vec![value; n], n, self.device)
    }

    fn linear(&mut self, inputs: usize, outputs: usize) -> Result<Linear> {
        // Xavier-normal, as SASRec initialises its layers.
        let std = (2.0 / (inputs + outputs) as f32).sqrt();
        Ok(Linear {
            weight: self.normal(inputs, outputs, std)?,
            bias: self.constant(outputs, 0.0)?,
        })
    }

    fn norm(&mut self, dim: usize) -> Result<Norm> {
        Ok(Norm {
            gain: self.constant(dim, 1.0)?,
            bias: self.constant(dim, 0.0)?,
        })
    }
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
        for _ in 0..shape.layers {
            blocks.push(Block {
                norm1: init.norm(d)?,
                query: init.linear(d, d)?,
                key: init.linear(d, d)?,
                value: init.linear(d, d)?,
                out: init.linear(d, d)?,
                norm2: init.norm(d)?,
                ffn_in: init.linear(d, shape.ffn_dim)?,
                ffn_out: init.linear(shape.ffn_dim, d)?,
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

        let heads = self.shape.heads;
        let head_dim = d / heads;
        let mask: Vec<f32> = (0..t * t)
            .map(|k| if k % t > k / t { -1e9 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), dev)?;
        let scale = 1.0 / (head_dim as f64).sqrt();
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
            x = (x + apply_dropout(dropout, &block.out.forward(&mixed)?)?)?;
            let f = block.ffn_in.forward(&block.norm2.forward(&x)?)?.relu()?;
            let f = block.ffn_out.forward(&apply_dropout(dropout, &f)?)?;
            x = (x + apply_dropout(dropout, &f)?)?;
        }
        self.norm.forward(&x)
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
