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

//!
//! By concern: [`TransformerConfig`] in `config`, the network in `net` (with its `input`
//! encoding, `loss` and int8 `quant` table), the training loop in `train`, inference and
//! scoring in `score`, the model file in `persist`. This file holds the model type.

mod config;
mod input;
mod loss;
mod net;
mod persist;
mod quant;
mod score;
mod train;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::Result;
use net::{FeatureTable, Net, Shape};
use quant::QuantizedTable;

pub use config::{CaserConfig, Mixer, TransformerConfig};
use persist::Saved;

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

pub(super) fn device() -> Device {
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
            mixer: c.mixer,
            filter_frequencies: c.filter_frequencies,
            filter_alpha: c.filter_alpha,
            window: c.window,
            horizontal_filters: c.horizontal_filters,
            vertical_filters: c.vertical_filters,
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
}
