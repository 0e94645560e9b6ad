//! Layers shared by the neural sequence models: linear and norm layers, seeded dropout and
//! initialisation, gradient clipping.
//!
//! Parameters are plain candle `Var`s initialised from our own seeded generator, because
//! candle's CPU random numbers cannot be seeded and a fixed seed must give the same model.

use candle_core::{D, Device, Result, Tensor, Var};
use rand::Rng;
use rand::rngs::StdRng;

/// Named parameter values: name, dimensions, row-major data.
pub(crate) type NamedValues = Vec<(String, Vec<usize>, Vec<f32>)>;

#[derive(Clone, Debug)]
pub(crate) struct Linear {
    pub weight: Var,
    pub bias: Var,
}

impl Linear {
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(self.weight.as_tensor())?
            .broadcast_add(self.bias.as_tensor())
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Norm {
    pub gain: Var,
    pub bias: Var,
}

impl Norm {
    /// Layer normalisation over the last dimension, from differentiable primitives.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(var + 1e-6)?.sqrt()?)?
            .broadcast_mul(self.gain.as_tensor())?
            .broadcast_add(self.bias.as_tensor())
    }
}

/// Inverted dropout with our own seeded generator.
pub(crate) struct Dropout {
    pub rng: StdRng,
    pub rate: f32,
}

impl Dropout {
    pub(crate) fn apply(&mut self, x: &Tensor) -> Result<Tensor> {
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

pub(crate) fn apply_dropout(dropout: &mut Option<Dropout>, x: &Tensor) -> Result<Tensor> {
    match dropout {
        Some(d) => d.apply(x),
        None => Ok(x.clone()),
    }
}

pub(crate) struct Init<'a> {
    pub rng: StdRng,
    pub device: &'a Device,
}

impl Init<'_> {
    pub(crate) fn normal(&mut self, rows: usize, cols: usize, std: f32) -> Result<Var> {
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

    pub(crate) fn constant(&mut self, n: usize, value: f32) -> Result<Var> {
        Var::from_vec(vec![value; n], n, self.device)
    }

    pub(crate) fn linear(&mut self, inputs: usize, outputs: usize) -> Result<Linear> {
        // Xavier-normal, as SASRec initialises its layers.
        let std = (2.0 / (inputs + outputs) as f32).sqrt();
        Ok(Linear {
            weight: self.normal(inputs, outputs, std)?,
            bias: self.constant(outputs, 0.0)?,
        })
    }

    pub(crate) fn norm(&mut self, dim: usize) -> Result<Norm> {
        Ok(Norm {
            gain: self.constant(dim, 1.0)?,
            bias: self.constant(dim, 0.0)?,
        })
    }
}

/// Scales every gradient so that their global norm is at most `max_norm`.
pub(crate) fn clip_gradients(
    vars: &[Var],
    grads: &mut candle_core::backprop::GradStore,
    max_norm: f64,
) -> crate::Result<()> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / norm;
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(())
}
