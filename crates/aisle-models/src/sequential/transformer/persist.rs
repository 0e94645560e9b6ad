//! What a model file holds: config, shape and weights; checkpoints as safetensors.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::net::{FeatureTable, Net};
use crate::Result;

use super::*;

/// What a model file holds.
#[derive(Serialize, Deserialize)]
pub(super) struct Saved {
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

pub(super) fn write_checkpoint(
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
