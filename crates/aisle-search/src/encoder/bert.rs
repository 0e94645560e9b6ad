//! The BERT encoder of all-MiniLM-L6-v2 (6 layers, 384 wide, 12 heads) on candle.
//!
//! Written against candle's tensors rather than `candle-transformers`, which compiles every
//! model family it ships; this is the one forward pass sentence embeddings need.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{LayerNorm, Linear, Module};
use serde::Deserialize;

use crate::{Error, Result};

/// The parts of a Hugging Face `config.json` the forward pass reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub hidden_act: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

struct Layer {
    /// Query, key and value projections fused into one matrix.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

pub(crate) struct Bert {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    pub max_positions: usize,
    device: Device,
}

impl Bert {
    pub fn load(weights: &Path, config: BertConfig) -> Result<Self> {
        if config
            .hidden_act
            .as_deref()
            .is_some_and(|act| act != "gelu")
        {
            return Err(Error::Encoder {
                message: format!(
                    "unsupported hidden_act {:?} (only BERT's \"gelu\" is implemented)",
                    config.hidden_act
                ),
            });
        }
        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load(weights, &device)?;
        let get = |name: &str| -> Result<Tensor> {
            let tensor = tensors
                .get(name)
                .or_else(|| tensors.get(&format!("bert.{name}")))
                .ok_or_else(|| Error::Encoder {
                    message: format!("{}: no tensor named {name}", weights.display()),
                })?;
            Ok(tensor.to_dtype(DType::F32)?)
        };
        let eps = config.layer_norm_eps;
        let norm = |prefix: &str| -> Result<LayerNorm> {
            Ok(LayerNorm::new(
                get(&format!("{prefix}.weight"))?,
                get(&format!("{prefix}.bias"))?,
                eps,
            ))
        };
        let linear = |prefix: &str| -> Result<Linear> {
            Ok(Linear::new(
                get(&format!("{prefix}.weight"))?,
                Some(get(&format!("{prefix}.bias"))?),
            ))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let part = |name: &str, kind: &str| get(&format!("{p}.attention.self.{name}.{kind}"));
            let qkv = Linear::new(
                Tensor::cat(
                    &[
                        part("query", "weight")?,
                        part("key", "weight")?,
                        part("value", "weight")?,
                    ],
                    0,
                )?,
                Some(Tensor::cat(
                    &[
                        part("query", "bias")?,
                        part("key", "bias")?,
                        part("value", "bias")?,
                    ],
                    0,
                )?),
            );
            layers.push(Layer {
                qkv,
                attention_out: linear(&format!("{p}.attention.output.dense"))?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"))?,
                output: linear(&format!("{p}.output.dense"))?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Self {
            word: get("embeddings.word_embeddings.weight")?,
            position: get("embeddings.position_embeddings.weight")?,
            token_type: get("embeddings.token_type_embeddings.weight")?.narrow(0, 0, 1)?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            heads: config.num_attention_heads,
            hidden: config.hidden_size,
            max_positions: config.max_position_embeddings,
            device,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Mean-pooled, L2-normalised embeddings of a batch of token-id sequences.
    pub fn embed(&self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let len = batch.iter().map(Vec::len).max().unwrap_or(0);
        if rows == 0 || len == 0 {
            return Ok(vec![Vec::new(); rows]);
        }
        let mut ids = vec![0u32; rows * len];
        let mut mask = vec![0f32; rows * len];
        for (r, seq) in batch.iter().enumerate() {
            ids[r * len..r * len + seq.len()].copy_from_slice(seq);
            mask[r * len..r * len + seq.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, rows * len, &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, len), &self.device)?;
        let x = self
            .word
            .index_select(&ids, 0)?
            .reshape((rows, len, self.hidden))?
            .broadcast_add(&self.position.narrow(0, 0, len)?)?
            .broadcast_add(&self.token_type)?;
        // Rows flattened to (batch × length, hidden): the linear layers then multiply by the
        // weights' transpose in place, where a 3-D input would copy each weight per call.
        let mut x = self
            .embedding_norm
            .forward(&x)?
            .reshape((rows * len, self.hidden))?;
        // Padding gets a large negative score so softmax gives it no weight.
        let bias = ((mask.clone() - 1.0)? * 1e9)?.reshape((rows, 1, 1, len))?;
        let head_dim = self.hidden / self.heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?;
            let split = |i: usize| -> Result<Tensor> {
                Ok(qkv
                    .narrow(1, i * self.hidden, self.hidden)?
                    .reshape((rows, len, self.heads, head_dim))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let (q, k, v) = (split(0)?, split(1)?, split(2)?);
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let attention = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = attention
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((rows * len, self.hidden))?;
            let attended = layer.attention_out.forward(&context)?;
            x = layer.attention_norm.forward(&(attended + &x)?)?;
            let inner = layer.intermediate.forward(&x)?.gelu_erf()?;
            let out = layer.output.forward(&inner)?;
            x = layer.output_norm.forward(&(out + &x)?)?;
        }
        let x = x.reshape((rows, len, self.hidden))?;
        let summed = x.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?;
        let counts = mask.sum_keepdim(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}
