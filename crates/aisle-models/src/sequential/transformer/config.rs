//! The transformer's settings and their validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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
    pub(super) fn validate(&self) -> Result<()> {
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
