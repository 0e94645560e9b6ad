//! BG/NBD (Fader, Hardie & Lee, 2005, "Counting your customers the easy way"): while
//! active, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each
//! purchase they drop out with probability p ~ Beta(a, b). Fitted by maximum likelihood on
//! each customer's repeat count `x`, time of last repeat `t_x` and age `T` (in weeks).

use aisle_core::EventKind;
use aisle_features::EventLog;
use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Result};

const DAY_MS: i64 = 86_400_000;
const WEEK_DAYS: f64 = 7.0;

/// One customer's calibration-period summary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Customer {
    /// Dense user id.
    pub user: u32,
    /// Repeat transactions (purchase days after the first) up to the calibration end.
    pub x: f64,
    /// Weeks from the first purchase to the last repeat (0 when none).
    pub t_x: f64,
    /// Weeks from the first purchase to the calibration end day (as in Fader, Hardie & Lee's
    /// data: a first purchase on 1997-01-01 with calibration ending 1997-09-30 has T = 38.86).
    pub t: f64,
    /// Purchase days in the holdout period after the calibration end.
    pub holdout: f64,
}

/// Summarises purchases: days with a purchase are transactions (same-day purchases count
/// once, as in Fader, Hardie & Lee); customers are those whose first purchase is on or
/// before `calibration_end_day` (the last day of calibration, in days since the epoch).
/// Holdout transactions are counted up to `holdout_end_day` inclusive.
pub fn summarise(log: &EventLog, calibration_end_day: i64, holdout_end_day: i64) -> Vec<Customer> {
    let mut days: Vec<Vec<i64>> = vec![Vec::new(); log.n_users()];
    for e in log
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Purchase)
    {
        days[e.user as usize].push(e.timestamp_ms.div_euclid(DAY_MS));
    }
    let mut customers = Vec::new();
    for (user, mut d) in days.into_iter().enumerate() {
        d.sort_unstable();
        d.dedup();
        let Some(&first) = d.first() else { continue };
        if first > calibration_end_day {
            continue;
        }
        let calibration: Vec<i64> = d
            .iter()
            .copied()
            .filter(|&x| x <= calibration_end_day)
            .collect();
        let last = *calibration.last().unwrap_or(&first);
        customers.push(Customer {
            user: user as u32,
            x: (calibration.len() - 1) as f64,
            t_x: (last - first) as f64 / WEEK_DAYS,
            t: (calibration_end_day - first) as f64 / WEEK_DAYS,
            holdout: d
                .iter()
                .filter(|&&x| x > calibration_end_day && x <= holdout_end_day)
                .count() as f64,
        });
    }
    customers
}

/// The fitted parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BgNbd {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Scale of the purchase-rate gamma.
    pub alpha: f64,
    /// Beta parameters of the drop-out probability.
    pub a: f64,
    /// See `a`.
    pub b: f64,
    /// Log-likelihood at the optimum.
    pub log_likelihood: f64,
}

fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// log(e^u + e^v), stable.
fn log_add(u: f64, v: f64) -> f64 {
    let m = u.max(v);
    m + ((u - m).exp() + (v - m).exp()).ln()
}

/// The likelihood's data: customers with the same `(x, t_x, T)` once, with their count (they
/// contribute the same term; a shop's users share them often, those without a repeat
/// purchase by their age most of all), and the distinct repeat counts `x`, whose
/// log-gamma terms are computed once per evaluation rather than once per customer.
struct Summaries {
    /// `(index into xs, t_x, T, customers)`.
    rows: Vec<(u32, f64, f64, f64)>,
    xs: Vec<f64>,
}

fn distinct_summaries(customers: &[Customer]) -> Summaries {
    let mut keys: Vec<(u64, u64, u64)> = customers
        .iter()
        .map(|c| (c.x.to_bits(), c.t_x.to_bits(), c.t.to_bits()))
        .collect();
    // Non-negative floats order as their bits do.
    keys.sort_unstable();
    let mut out = Summaries {
        rows: Vec::new(),
        xs: Vec::new(),
    };
    let mut last = None;
    for key in keys {
        let (x, t_x, t) = (
            f64::from_bits(key.0),
            f64::from_bits(key.1),
            f64::from_bits(key.2),
        );
        if out.xs.last() != Some(&x) {
            out.xs.push(x);
        }
        if last == Some(key) {
            if let Some(row) = out.rows.last_mut() {
                row.3 += 1.0;
            }
        } else {
            out.rows.push(((out.xs.len() - 1) as u32, t_x, t, 1.0));
        }
        last = Some(key);
    }
    out
}

/// Rows per parallel task: chunks of a fixed size, summed in order, so the sum is the same
/// for any thread count.
const LIKELIHOOD_CHUNK: usize = 4096;

fn log_likelihood(p: [f64; 4], data: &Summaries) -> f64 {
    let [r, alpha, a, b] = p;
    let shared = ln_gamma(a + b) - ln_gamma(b) + r * alpha.ln() - ln_gamma(r);
    // Per distinct x: the log-gamma part of A1, and ln(b + x − 1) of A4.
    let by_x: Vec<(f64, f64)> = data
        .xs
        .iter()
        .map(|&x| {
            (
                ln_gamma(r + x) + shared + ln_gamma(b + x) - ln_gamma(a + b + x),
                if x > 0.0 { (b + x - 1.0).ln() } else { 0.0 },
            )
        })
        .collect();
    let ln_a = a.ln();
    let term = |&(xi, t_x, t, weight): &(u32, f64, f64, f64)| {
        let x = data.xs[xi as usize];
        let (a1, ln_b_x) = by_x[xi as usize];
        let a3 = -(r + x) * (alpha + t).ln();
        weight
            * if x > 0.0 {
                let a4 = ln_a - ln_b_x - (r + x) * (alpha + t_x).ln();
                a1 + log_add(a3, a4)
            } else {
                a1 + a3
            }
    };
    let partial: Vec<f64> = data
        .rows
        .par_chunks(LIKELIHOOD_CHUNK)
        .map(|chunk| chunk.iter().map(term).sum::<f64>())
        .collect();
    partial.iter().sum()
}

/// Nelder–Mead on `f` (minimised) from `start`; our own, as the problem is four smooth
/// dimensions and an optimisation crate would be far heavier than these forty lines.
fn nelder_mead(f: impl Fn(&[f64; 4]) -> f64, start: [f64; 4], iterations: usize) -> [f64; 4] {
    let mut simplex: Vec<([f64; 4], f64)> = (0..5)
        .map(|i| {
            let mut p = start;
            if i > 0 {
                p[i - 1] += 0.5;
            }
            (p, f(&p))
        })
        .collect();
    let blend = |x: &[f64; 4], y: &[f64; 4], t: f64| -> [f64; 4] {
        std::array::from_fn(|k| x[k] + t * (y[k] - x[k]))
    };
    for _ in 0..iterations {
        simplex.sort_by(|u, v| u.1.total_cmp(&v.1));
        // Converged when the values agree to 1e-12 of their size and the points to 1e-9
        // (log-parameters). An absolute 1e-12 on a log-likelihood of a million customers
        // is below its rounding: the search would run every iteration.
        let values_agree =
            (simplex[4].1 - simplex[0].1).abs() <= 1e-12 * simplex[0].1.abs().max(1.0);
        let points_agree = simplex[1..].iter().all(|s| {
            s.0.iter()
                .zip(&simplex[0].0)
                .all(|(u, v)| (u - v).abs() <= 1e-9)
        });
        if values_agree && points_agree {
            break;
        }
        let centroid: [f64; 4] =
            std::array::from_fn(|k| simplex[..4].iter().map(|s| s.0[k]).sum::<f64>() / 4.0);
        let worst = simplex[4];
        let reflected = blend(&centroid, &worst.0, -1.0);
        let fr = f(&reflected);
        if fr < simplex[0].1 {
            let expanded = blend(&centroid, &worst.0, -2.0);
            let fe = f(&expanded);
            simplex[4] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[3].1 {
            simplex[4] = (reflected, fr);
        } else {
            let contracted = blend(&centroid, &worst.0, 0.5);
            let fc = f(&contracted);
            if fc < worst.1 {
                simplex[4] = (contracted, fc);
            } else {
                let best = simplex[0].0;
                for s in simplex.iter_mut().skip(1) {
                    s.0 = blend(&best, &s.0, 0.5);
                    s.1 = f(&s.0);
                }
            }
        }
    }
    simplex.sort_by(|u, v| u.1.total_cmp(&v.1));
    simplex[0].0
}

/// Gauss's hypergeometric function ₂F₁(a, b; c; z) for |z| < 1, by its series.
fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for j in 0..100_000 {
        let j = j as f64;
        term *= (a + j) * (b + j) / ((c + j) * (j + 1.0)) * z;
        sum += term;
        if term.abs() < 1e-15 * sum.abs() {
            break;
        }
    }
    sum
}

impl BgNbd {
    /// Maximum-likelihood fit (Nelder–Mead over the log-parameters).
    pub fn fit(customers: &[Customer]) -> Result<Self> {
        if customers.len() < 10 {
            return Err(Error::NotEnoughData(format!(
                "{} customers; BG/NBD needs at least 10",
                customers.len()
            )));
        }
        let summaries = distinct_summaries(customers);
        let objective = |theta: &[f64; 4]| {
            let p = theta.map(f64::exp);
            let ll = log_likelihood(p, &summaries);
            if ll.is_finite() { -ll } else { f64::INFINITY }
        };
        let mut theta = nelder_mead(objective, [0.0; 4], 4000);
        // Restarting from the optimum guards against a collapsed simplex.
        theta = nelder_mead(objective, theta, 4000);
        let p = theta.map(f64::exp);
        let ll = log_likelihood(p, &summaries);
        if !ll.is_finite() {
            return Err(Error::FitFailed("the log-likelihood is not finite".into()));
        }
        Ok(Self {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
            log_likelihood: ll,
        })
    }

    /// The log-likelihood of `customers` under these parameters.
    pub fn log_likelihood_of(&self, customers: &[Customer]) -> f64 {
        log_likelihood(
            [self.r, self.alpha, self.a, self.b],
            &distinct_summaries(customers),
        )
    }

    /// Probability that the customer is still active at the end of calibration.
    pub fn p_alive(&self, c: &Customer) -> f64 {
        if c.x == 0.0 {
            return 1.0;
        }
        let odds = self.a / (self.b + c.x - 1.0)
            * ((self.alpha + c.t) / (self.alpha + c.t_x)).powf(self.r + c.x);
        1.0 / (1.0 + odds)
    }

    /// Expected transactions in the next `weeks`, given the customer's history (FHL eq. 10).
    pub fn expected_transactions(&self, c: &Customer, weeks: f64) -> f64 {
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let z = weeks / (alpha + c.t + weeks);
        let head = (a + b + c.x - 1.0) / (a - 1.0)
            * (1.0
                - ((alpha + c.t) / (alpha + c.t + weeks)).powf(r + c.x)
                    * hyp2f1(r + c.x, b + c.x, a + b + c.x - 1.0, z));
        let tail = if c.x > 0.0 {
            a / (b + c.x - 1.0) * ((alpha + c.t) / (alpha + c.t_x)).powf(r + c.x)
        } else {
            0.0
        };
        head / (1.0 + tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypergeometric_series_matches_closed_forms() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z.
        let z: f64 = 0.6;
        assert!((hyp2f1(1.0, 1.0, 2.0, z) - (-(1.0 - z).ln() / z)).abs() < 1e-12);
    }
}
