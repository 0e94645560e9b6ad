//! The transformer's settings and their validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the network mixes information across the positions of a sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mixer {
    /// Causal self-attention (SASRec).
    #[default]
    Attention,
    /// Self-attention beside a causal low-pass filter whose high frequencies get a learnt
    /// gain (BSARec, Shin et al., AAAI 2024).
    Filter,
    /// Horizontal and vertical convolutions over the latest items (Caser, Tang & Wang,
    /// WSDM 2018).
    Convolution,
}

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
    /// How each block mixes positions: `attention` (SASRec), `filter` (BSARec: attention
    /// beside a frequency filter), or `convolution` (Caser: one convolutional layer over
    /// the latest `window` items in place of the blocks).
    pub mixer: Mixer,
    /// `filter`: low frequencies the filter keeps, counting the constant one (BSARec's
    /// c // 2 + 1); the rest of the spectrum is scaled by a learnt gain per channel.
    pub filter_frequencies: usize,
    /// `filter`: weight of the filter's output beside attention's (BSARec's α).
    pub filter_alpha: f32,
    /// `convolution`: items the convolutions read (Caser's L).
    pub window: usize,
    /// `convolution`: horizontal filters of each height 1..=window (Caser's n_h).
    pub horizontal_filters: usize,
    /// `convolution`: vertical filters (Caser's n_v).
    pub vertical_filters: usize,
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
            mixer: Mixer::Attention,
            filter_frequencies: 3,
            filter_alpha: 0.7,
            window: 5,
            horizontal_filters: 16,
            vertical_filters: 4,
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
        if self.mixer == Mixer::Filter
            && (self.filter_frequencies == 0 || !(0.0..=1.0).contains(&self.filter_alpha))
        {
            return bad(format!(
                "the filter mixer needs filter_frequencies >= 1 (got {}) and filter_alpha in [0, 1] (got {})",
                self.filter_frequencies, self.filter_alpha
            ));
        }
        if self.mixer == Mixer::Convolution
            && (self.window == 0 || self.horizontal_filters + self.vertical_filters == 0)
        {
            return bad("the convolution mixer needs a window and at least one filter".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        Ok(())
    }
}

/// Settings of Caser, the convolutional sequence model: the network's convolution mixer,
/// trained like the transformer (full softmax over the catalogue, early stopping on
/// validation NDCG@10). Caser's per-user embedding is left out so that it scores any
/// history, anonymous sessions included; items are scored against the tied item table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaserConfig {
    /// Width of item embeddings.
    pub dim: usize,
    /// Items the convolutions read (L).
    pub window: usize,
    /// Horizontal filters of each height 1..=window (n_h).
    pub horizontal_filters: usize,
    /// Vertical filters (n_v).
    pub vertical_filters: usize,
    /// Dropout rate on embeddings and the convolutions' output.
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
    /// Validation sequences scored after each epoch (0 = train every epoch, no early stop).
    pub validation_sequences: usize,
    /// Use item features in the input.
    pub item_features: bool,
    /// Stop training after this many seconds (0 = no limit).
    pub time_budget_seconds: f64,
    /// Train again on every training event for the epochs validation chose.
    pub refit: bool,
    /// Print one progress line per epoch to stderr.
    pub verbose: bool,
    /// Random seed.
    pub seed: u64,
}

impl Default for CaserConfig {
    fn default() -> Self {
        let t = TransformerConfig::default();
        CaserConfig {
            dim: 64,
            window: 5,
            horizontal_filters: 16,
            vertical_filters: 4,
            dropout: 0.3,
            epochs: t.epochs,
            patience: 5,
            batch_size: t.batch_size,
            learning_rate: t.learning_rate,
            weight_decay: 0.0,
            validation_sequences: t.validation_sequences,
            item_features: true,
            time_budget_seconds: 0.0,
            refit: true,
            verbose: false,
            seed: t.seed,
        }
    }
}

impl CaserConfig {
    /// The network settings that make the convolutional model.
    pub fn network(&self) -> TransformerConfig {
        TransformerConfig {
            dim: self.dim,
            heads: 1,
            layers: 1,
            mixer: Mixer::Convolution,
            window: self.window,
            horizontal_filters: self.horizontal_filters,
            vertical_filters: self.vertical_filters,
            dropout: self.dropout,
            epochs: self.epochs,
            patience: self.patience,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            validation_sequences: self.validation_sequences,
            item_features: self.item_features,
            time_budget_seconds: self.time_budget_seconds,
            refit: self.refit,
            verbose: self.verbose,
            seed: self.seed,
            ..TransformerConfig::default()
        }
    }
}
