//! A small multilayer perceptron for tabular classification (purchase and churn), the
//! reference design of the project: standard-scaled inputs, Dense(128, ReLU), Dropout(0.5),
//! Dense(64, ReLU), Dropout(0.5), Dense(1, sigmoid), Adam (learning rate 0.001), binary
//! cross-entropy, batches of 32, early stopping on validation loss with patience 10.
//!
//! Training runs on candle (autograd and Adam). The fitted weights are copied out into plain
//! vectors, so predicting one row costs no tensor set-up: that is what serving needs.

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Settings of [`Mlp::fit`]; the defaults are the reference design.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Width of each hidden layer.
    pub hidden: Vec<usize>,
    /// Dropout rate after each hidden layer.
    pub dropout: f32,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Rows per gradient step.
    pub batch_size: usize,
    /// Most passes over the training rows.
    pub max_epochs: usize,
    /// Stop after this many epochs without a lower validation loss; the best epoch is kept.
    pub patience: usize,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden: vec![128, 64],
            dropout: 0.5,
            learning_rate: 1e-3,
            batch_size: 32,
            max_epochs: 200,
            patience: 10,
            seed: 7,
        }
    }
}

/// Rows for [`Mlp::fit`]: row-major features and 0/1 labels.
#[derive(Clone, Copy, Debug)]
pub struct MlpData<'a> {
    /// `labels.len()` rows of `n_features` values.
    pub features: &'a [f32],
    /// Number of features per row.
    pub n_features: usize,
    /// 1 for the positive class, 0 otherwise.
    pub labels: &'a [f32],
}

/// One dense layer, row-major `inputs × outputs` weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Layer {
    inputs: usize,
    outputs: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// A fitted MLP.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mlp {
    mean: Vec<f32>,
    scale: Vec<f32>,
    layers: Vec<Layer>,
    /// Training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch.
    pub valid_loss: Vec<f64>,
    /// The epoch whose weights were kept (0-based).
    pub best_epoch: usize,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        model: "mlp",
        reason: reason.into(),
    }
}

fn check(data: &MlpData<'_>, what: &str) -> Result<()> {
    if data.n_features == 0 || data.features.len() != data.labels.len() * data.n_features {
        return Err(Error::Fit {
            model: "mlp",
            reason: format!(
                "{what}: {} values for {} rows of {} features",
                data.features.len(),
                data.labels.len(),
                data.n_features
            ),
        });
    }
    if let Some(i) = data.features.iter().position(|v| !v.is_finite()) {
        return Err(Error::Fit {
            model: "mlp",
            reason: format!(
                "{what}: row {} feature {} is not a finite number",
                i / data.n_features,
                i % data.n_features
            ),
        });
    }
    Ok(())
}

/// Mean log-loss of logits `z` against labels `y`, written the stable way:
/// softplus(z) − y·z.
fn log_loss(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    (softplus - (z * y)?)?.mean_all()
}

impl Mlp {
    /// Fits on `train`, stopping early on `valid`'s log-loss.
    pub fn fit(config: &MlpConfig, train: &MlpData<'_>, valid: &MlpData<'_>) -> Result<Mlp> {
        if config.hidden.is_empty() || config.hidden.contains(&0) {
            return Err(invalid("hidden layers must be given and non-empty"));
        }
        if !(0.0..1.0).contains(&config.dropout) {
            return Err(invalid(format!(
                "dropout {} is not in [0, 1)",
                config.dropout
            )));
        }
        if config.batch_size == 0 || config.max_epochs == 0 {
            return Err(invalid("batch size and epochs must be positive"));
        }
        check(train, "training rows")?;
        check(valid, "validation rows")?;
        if valid.n_features != train.n_features || valid.labels.is_empty() {
            return Err(Error::Fit {
                model: "mlp",
                reason: "validation rows must be given, with the training rows' features".into(),
            });
        }
        let n = train.n_features;
        let rows = train.labels.len();
        // Standard scaling from the training rows only.
        let mut mean = vec![0.0f64; n];
        let mut square = vec![0.0f64; n];
        for row in train.features.chunks_exact(n) {
            for (j, &v) in row.iter().enumerate() {
                mean[j] += f64::from(v);
                square[j] += f64::from(v) * f64::from(v);
            }
        }
        let mean: Vec<f32> = mean.iter().map(|m| (m / rows as f64) as f32).collect();
        let scale: Vec<f32> = square
            .iter()
            .zip(&mean)
            .map(|(s, &m)| {
                let var = s / rows as f64 - f64::from(m) * f64::from(m);
                if var > 1e-12 { var.sqrt() as f32 } else { 1.0 }
            })
            .collect();
        let scaled = |data: &MlpData<'_>| -> Vec<f32> {
            data.features
                .chunks_exact(n)
                .flat_map(|row| {
                    row.iter()
                        .enumerate()
                        .map(|(j, &v)| (v - mean[j]) / scale[j])
                })
                .collect()
        };
        let x_train = scaled(train);
        let device = Device::Cpu;
        let x_valid = Tensor::from_vec(scaled(valid), (valid.labels.len(), n), &device)?;
        let y_valid = Tensor::from_slice(valid.labels, (valid.labels.len(), 1), &device)?;

        // Glorot-uniform weights and zero biases, from our own seeded generator.
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut widths = vec![n];
        widths.extend(&config.hidden);
        widths.push(1);
        let mut vars: Vec<(Var, Var)> = Vec::new();
        for pair in widths.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
            let w: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| rng.random_range(-limit..limit))
                .collect();
            vars.push((
                Var::from_vec(w, (fan_in, fan_out), &device)?,
                Var::from_vec(vec![0.0f32; fan_out], fan_out, &device)?,
            ));
        }
        let mut optimizer = AdamW::new(
            vars.iter()
                .flat_map(|(w, b)| [w.clone(), b.clone()])
                .collect(),
            ParamsAdamW {
                lr: config.learning_rate,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        let forward = |x: &Tensor, masks: Option<&mut StdRng>| -> candle_core::Result<Tensor> {
            let mut rng = masks;
            let mut h = x.clone();
            for (k, (w, b)) in vars.iter().enumerate() {
                h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
                if k + 1 < vars.len() {
                    h = h.relu()?;
                    if let Some(rng) = rng.as_deref_mut() {
                        let keep = 1.0 - config.dropout;
                        let mask: Vec<f32> = (0..h.elem_count())
                            .map(|_| {
                                if rng.random::<f32>() < keep {
                                    1.0 / keep
                                } else {
                                    0.0
                                }
                            })
                            .collect();
                        h = h.mul(&Tensor::from_vec(mask, h.shape(), &device)?)?;
                    }
                }
            }
            Ok(h)
        };
        let snapshot = |vars: &[(Var, Var)]| -> candle_core::Result<Vec<Layer>> {
            vars.iter()
                .map(|(w, b)| {
                    let (inputs, outputs) = w.as_tensor().dims2()?;
                    Ok(Layer {
                        inputs,
                        outputs,
                        weights: w.as_tensor().flatten_all()?.to_vec1()?,
                        bias: b.as_tensor().to_vec1()?,
                    })
                })
                .collect()
        };

        let mut order: Vec<usize> = (0..rows).collect();
        let mut best = (f64::INFINITY, 0usize, snapshot(&vars)?);
        let (mut train_loss, mut valid_loss) = (Vec::new(), Vec::new());
        let mut batch_x = Vec::with_capacity(config.batch_size * n);
        let mut batch_y = Vec::with_capacity(config.batch_size);
        for epoch in 0..config.max_epochs {
            order.shuffle(&mut rng);
            let mut total = 0.0;
            for chunk in order.chunks(config.batch_size) {
                batch_x.clear();
                batch_y.clear();
                for &r in chunk {
                    batch_x.extend_from_slice(&x_train[r * n..(r + 1) * n]);
                    batch_y.push(train.labels[r]);
                }
                let x = Tensor::from_slice(&batch_x, (chunk.len(), n), &device)?;
                let y = Tensor::from_slice(&batch_y, (chunk.len(), 1), &device)?;
                let loss = log_loss(&forward(&x, Some(&mut rng))?, &y)?;
                optimizer.backward_step(&loss)?;
                total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            }
            train_loss.push(total / rows as f64);
            let v = f64::from(log_loss(&forward(&x_valid, None)?, &y_valid)?.to_scalar::<f32>()?);
            valid_loss.push(v);
            if v < best.0 {
                best = (v, epoch, snapshot(&vars)?);
            } else if epoch - best.1 >= config.patience {
                break;
            }
        }
        Ok(Mlp {
            mean,
            scale,
            layers: best.2,
            train_loss,
            valid_loss,
            best_epoch: best.1,
        })
    }

    /// Probability of the positive class for one row.
    pub fn predict_probability(&self, row: &[f32]) -> f32 {
        let mut h: Vec<f32> = row
            .iter()
            .zip(self.mean.iter().zip(&self.scale))
            .map(|(&v, (&m, &s))| (v - m) / s)
            .collect();
        for (k, layer) in self.layers.iter().enumerate() {
            let mut out = layer.bias.clone();
            for (i, &x) in h.iter().enumerate().take(layer.inputs) {
                if x != 0.0 {
                    let w = &layer.weights[i * layer.outputs..(i + 1) * layer.outputs];
                    for (o, &wij) in out.iter_mut().zip(w) {
                        *o += x * wij;
                    }
                }
            }
            if k + 1 < self.layers.len() {
                for o in &mut out {
                    *o = o.max(0.0);
                }
            }
            h = out;
        }
        1.0 / (1.0 + (-h[0]).exp())
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean log-loss of the fitted model's predictions on `data`.
    fn log_loss_of(model: &Mlp, data: &MlpData<'_>) -> f64 {
        data.features
            .chunks_exact(data.n_features)
            .zip(data.labels)
            .map(|(row, &y)| {
                let p = f64::from(model.predict_probability(row)).clamp(1e-7, 1.0 - 1e-7);
                -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / data.labels.len() as f64
    }

    #[test]
    fn learns_a_nonlinear_boundary_and_stops_early() {
        // Positive inside a ring: no linear model can separate it. A tenth of the labels are
        // flipped and the network has no dropout, so it overfits the 1000 training rows and
        // the validation loss turns up long before the epoch limit.
        let mut rng = StdRng::seed_from_u64(3);
        let mut make = |rows: usize| {
            let (mut x, mut noisy, mut clean) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rows {
                let (a, b): (f32, f32) = (rng.random_range(-2.0..2.0), rng.random_range(-2.0..2.0));
                x.extend([a * 10.0 + 100.0, b]);
                let r = (a * a + b * b).sqrt();
                let y = (0.7..1.5).contains(&r);
                let flip = rng.random::<f32>() < 0.1;
                noisy.push(f32::from(u8::from(y != flip)));
                clean.push(y);
            }
            (x, noisy, clean)
        };
        let (xt, yt, _) = make(1000);
        let (xv, yv, clean) = make(1000);
        let config = MlpConfig {
            max_epochs: 300,
            patience: 8,
            dropout: 0.0,
            ..MlpConfig::default()
        };
        let train = MlpData {
            features: &xt,
            n_features: 2,
            labels: &yt,
        };
        let valid = MlpData {
            features: &xv,
            n_features: 2,
            labels: &yv,
        };
        let model = Mlp::fit(&config, &train, &valid).expect("fit");
        let correct = xv
            .chunks_exact(2)
            .zip(&clean)
            .filter(|(row, y)| (model.predict_probability(row) > 0.5) == **y)
            .count();
        assert!(
            correct as f64 / clean.len() as f64 > 0.9,
            "accuracy {correct}/1000 against the true ring"
        );

        // Early stopping happened: training ended `patience` epochs after the best one,
        // well short of the limit.
        let epochs = model.valid_loss.len();
        assert_eq!(model.train_loss.len(), epochs);
        eprintln!(
            "{epochs} epochs run, best epoch {}, validation losses best {:.4} last {:.4}",
            model.best_epoch,
            model.valid_loss[model.best_epoch],
            model.valid_loss[epochs - 1]
        );
        assert!(epochs < config.max_epochs, "ran all {epochs} epochs");
        assert_eq!(
            epochs,
            model.best_epoch + config.patience + 1,
            "best epoch {} of {epochs}, patience {}",
            model.best_epoch,
            config.patience
        );
        // The kept epoch is the first with the lowest validation loss, and no epoch after it
        // improved on it.
        let best = model.valid_loss[model.best_epoch];
        assert!(
            model.valid_loss[..model.best_epoch]
                .iter()
                .all(|&v| v > best)
        );
        assert!(
            model.valid_loss[model.best_epoch + 1..]
                .iter()
                .all(|&v| v >= best)
        );
        // The weights kept are that epoch's, not the last epoch's: recomputing the
        // validation loss from the fitted model gives the best epoch's value, and the last
        // epoch's was clearly worse.
        let kept = log_loss_of(&model, &valid);
        let last = *model.valid_loss.last().expect("epochs");
        assert!(
            (kept - best).abs() < 1e-4,
            "kept weights' loss {kept}, best {best}"
        );
        assert!(
            last > best + 1e-3,
            "last {last}, best {best}: nothing to stop for"
        );
        assert!(model.train_loss[0] > model.train_loss[model.best_epoch]);
    }

    #[test]
    fn refuses_bad_rows() {
        let x = [1.0, f32::NAN];
        let y = [1.0];
        let d = MlpData {
            features: &x,
            n_features: 2,
            labels: &y,
        };
        let err = Mlp::fit(&MlpConfig::default(), &d, &d).expect_err("NaN");
        assert!(err.to_string().contains("feature 1"), "{err}");
    }
}
