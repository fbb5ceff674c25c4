//! The write-disturbance analysis: the realised distribution of the write error on a model's
//! arrays (what the cells actually hold after programming, per spec §3), and accuracy as a
//! function of the disturbance width from a set of finished runs.

use crate::config::{ModelKind, RunConfig};
use crate::crossbar::CrossbarConfig;
use crate::models::{Model, Variant};
use crate::quant::BitWidths;
use crate::rng::{Rng, stream};
use serde::Serialize;

/// Summary statistics of a sample.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Moments {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub skewness: f64,
    /// Excess kurtosis (0 for a Gaussian, −1.2 for a uniform).
    pub excess_kurtosis: f64,
    pub min: f64,
    pub max: f64,
}

impl Moments {
    pub fn of(xs: &[f32]) -> Moments {
        let n = xs.len().max(1) as f64;
        let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / n;
        let m = |k: i32| xs.iter().map(|&v| (v as f64 - mean).powi(k)).sum::<f64>() / n;
        let (m2, m3, m4) = (m(2), m(3), m(4));
        let sd = m2.sqrt();
        let (skewness, excess_kurtosis) = if m2 > 0.0 {
            (m3 / m2.powf(1.5), m4 / (m2 * m2) - 3.0)
        } else {
            (0.0, 0.0)
        };
        Moments {
            n: xs.len(),
            mean,
            sd,
            skewness,
            excess_kurtosis,
            min: xs.iter().fold(f64::INFINITY, |a, &v| a.min(v as f64)),
            max: xs.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v as f64)),
        }
    }
}

/// What programming a freshly initialised model onto its arrays realises.
pub struct Realised {
    /// Relative conductance error `G/G_target − 1` of every written, working cell.
    pub cond_error: Vec<f32>,
    /// Weight error `w_eff − w_q` of every weight, in units of the layer's weight scale (the
    /// levels span [−1, 1] for W ≥ 2 bits).
    pub weight_error: Vec<f32>,
}

/// Build `model` at `bits`, program every matrix layer once onto arrays configured by `xbar`,
/// and collect the realised errors.
pub fn realised(model: ModelKind, bits: BitWidths, xbar: &CrossbarConfig, seed: u64) -> Realised {
    let mut rng = Rng::keyed(seed, stream::INIT, &[]);
    let mut m = Model::build(model, bits, Variant::default(), &mut rng);
    m.attach_crossbar(xbar, seed);
    let (mut cond_error, mut weight_error) = (Vec::new(), Vec::new());
    for (_, core) in m.all_matrices() {
        {
            let w_q = core.quantized_weights();
            let xb = core.xbar.as_mut().expect("attached");
            xb.program(&w_q, bits.w, seed, 0);
            cond_error.extend(xb.write_errors());
            let scale = w_q
                .iter()
                .fold(0f32, |a, v| a.max(v.abs()))
                .max(f32::MIN_POSITIVE);
            weight_error.extend(xb.weights().iter().zip(&w_q).map(|(e, q)| (e - q) / scale));
        }
    }
    Realised {
        cond_error,
        weight_error,
    }
}

/// Counts of `xs` in `bins` equal bins over [lo, hi) (values outside are clamped to the ends).
pub fn bin(xs: &[f32], lo: f64, hi: f64, bins: usize) -> Vec<u64> {
    let mut c = vec![0u64; bins];
    let w = (hi - lo) / bins as f64;
    for &v in xs {
        let i = (((v as f64 - lo) / w).floor().max(0.0) as usize).min(bins - 1);
        c[i] += 1;
    }
    c
}

/// One finished run as the accuracy-vs-disturbance table sees it.
#[derive(Clone, Debug, Serialize)]
pub struct WidthPoint {
    pub run: String,
    pub disturb: String,
    /// The width parameter (p for uniform, σ otherwise; 0 for none).
    pub width: f64,
    pub test_accuracy: f64,
    pub best_test_accuracy: f64,
    pub diverged: bool,
}

/// The width parameter of a run's disturbance.
pub fn width_of(cfg: &RunConfig) -> f64 {
    use crate::device::disturbance::Disturbance::*;
    let w: f32 = match cfg.crossbar.disturb {
        None => 0.0,
        Uniform(p) => p,
        Gaussian(s) | LogNormal(s) => s,
    };
    // through the shortest decimal form, so 0.2f32 reads as 0.2, not 0.20000000298
    w.to_string().parse().unwrap_or(w as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_a_uniform_sample() {
        let xs: Vec<f32> = (0..10_001).map(|i| i as f32 / 10_000.0 - 0.5).collect();
        let m = Moments::of(&xs);
        assert!(m.mean.abs() < 1e-6);
        assert!((m.sd - (1.0f64 / 12.0).sqrt()).abs() < 1e-3);
        assert!(m.skewness.abs() < 1e-6);
        assert!((m.excess_kurtosis + 1.2).abs() < 1e-3);
    }

    #[test]
    fn binning_counts_every_value_once() {
        let c = bin(&[-1.0, 0.0, 0.1, 0.99, 5.0], 0.0, 1.0, 4);
        assert_eq!(c, vec![3, 0, 0, 2]);
    }
}
