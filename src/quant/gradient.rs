//! G: the error quantizer (DoReFa, stochastic rounding, one scale per sample), spec §2:
//! `m = max|g|` over the sample, `g_n = clip(g/(2m) + 1/2 + σ/(2^k − 1), 0, 1)` with
//! `σ ~ U(−1/2, 1/2)`, `g_q = 2m·(quantize_k(g_n) − 1/2)`. Unbiased: E[g_q] = g.
//!
//! That grid has no zero for k ≥ 2 (its levels are odd multiples of m/(2^k − 1)), so every tiny
//! error becomes ±m/(2^k − 1) at random: unbiased, but with a variance that swamps the signal at
//! k = 2. `GRounding::MidTread` is the option that keeps a zero level: `L = 2^(k−1) − 1`,
//! `g_q = m·⌊g/m·L + u⌋/L` with `u ~ U[0, 1)` — also unbiased, with variance ≈ m|g|/L for small g.
//! At k = 1 the mid-tread option keeps exact zeros (errors masked by an activation's clip or by
//! max-pooling, known digitally) at zero — a zero error is simply not driven — and rounds every
//! other error to ±m as DoReFa does.
//!
//! The error is a `[rows, n·positions]` matrix (channel-major: row = output channel, column =
//! sample-major position). σ for row `r` comes from a stream keyed by (seed, layer, step, r), so
//! the result does not depend on the thread count.

use super::{Bits, quantize_k};
use crate::error::{Error, Result};
use crate::rng::{Rng, stream};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which stochastic grid G uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GRounding {
    /// DoReFa's grid (spec §2): 2^k levels, no zero.
    Dorefa,
    /// Symmetric grid with a zero level, 2^k − 1 levels (k ≥ 2).
    MidTread,
}

impl GRounding {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "dorefa" => Ok(GRounding::Dorefa),
            "mid-tread" => Ok(GRounding::MidTread),
            _ => Err(Error::invalid(
                "g_rounding",
                format!("unknown G rounding {s:?} (known: dorefa, mid-tread)"),
            )),
        }
    }
}

/// Where the rounding noise comes from: the run seed, the layer index and the training step.
#[derive(Clone, Copy, Debug)]
pub struct RoundingKey {
    pub seed: u64,
    pub layer: u64,
    pub step: u64,
}

impl RoundingKey {
    fn rng(&self, row: usize) -> Rng {
        Rng::keyed(
            self.seed,
            stream::G_ROUND,
            &[self.layer, self.step, row as u64],
        )
    }
}

/// Quantize the error `g` (`rows × n·positions`) in place.
pub fn quantize(
    g: &mut [f32],
    rows: usize,
    n: usize,
    positions: usize,
    bits: Bits,
    rounding: GRounding,
    key: RoundingKey,
) {
    let Some(levels) = bits.levels() else {
        return;
    };
    let mid_tread = rounding == GRounding::MidTread && bits != Bits::K(1);
    let skip_zeros = rounding == GRounding::MidTread && bits == Bits::K(1);
    let p = n * positions;
    assert_eq!(g.len(), rows * p);
    if p == 0 {
        return;
    }
    // Per-sample max |g| over all rows and positions.
    let max = g
        .par_chunks(p)
        .map(|row| {
            let mut m = vec![0f32; n];
            for (s, chunk) in row.chunks(positions).enumerate() {
                m[s] = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
            }
            m
        })
        .reduce(
            || vec![0f32; n],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = x.max(y);
                }
                a
            },
        );
    if mid_tread {
        let half = ((levels + 1.0) / 2.0 - 1.0).max(1.0); // 2^(k-1) - 1
        g.par_chunks_mut(p).enumerate().for_each(|(r, row)| {
            let mut rng = key.rng(r);
            for (s, chunk) in row.chunks_mut(positions).enumerate() {
                let m = max[s];
                if m == 0.0 {
                    chunk.fill(0.0);
                    continue;
                }
                let (to, from) = (half / m, m / half);
                for v in chunk {
                    let u = rng.uniform();
                    *v = super::clamp(super::floor(*v * to + u), -half, half) * from;
                }
            }
        });
        return;
    }
    g.par_chunks_mut(p).enumerate().for_each(|(r, row)| {
        let mut rng = key.rng(r);
        for (s, chunk) in row.chunks_mut(positions).enumerate() {
            let m = max[s];
            if m == 0.0 {
                chunk.fill(0.0);
                continue;
            }
            let inv = 1.0 / (2.0 * m);
            for v in chunk {
                let sigma = rng.uniform() - 0.5;
                if skip_zeros && *v == 0.0 {
                    continue;
                }
                let g_n = super::clamp(*v * inv + 0.5 + sigma / levels, 0.0, 1.0);
                *v = 2.0 * m * (quantize_k(g_n, levels) - 0.5);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: RoundingKey = RoundingKey {
        seed: 1,
        layer: 0,
        step: 0,
    };

    #[test]
    fn gradient_levels_are_on_the_per_sample_grid() {
        // 2 rows, 2 samples, 3 positions. Sample 0 max = 4, sample 1 max = 0.5.
        let mut g = vec![
            4.0, -1.0, 0.3, 0.5, 0.1, -0.2, -2.0, 2.5, 0.0, 0.0, -0.5, 0.25,
        ];
        quantize(&mut g, 2, 2, 3, Bits::K(2), GRounding::Dorefa, KEY);
        // k = 2: g_q in 2m·({0,1/3,2/3,1} − 1/2) = m·{−1, −1/3, 1/3, 1}.
        for (i, v) in g.iter().enumerate() {
            let m = if (i % 6) < 3 { 4.0 } else { 0.5 };
            let idx = (v / m + 1.0) / 2.0 * 3.0;
            assert!(
                (idx - idx.round()).abs() < 1e-5,
                "{v} not on the grid of m={m}"
            );
        }
        // The extreme values stay exactly: g = m -> g_n >= 1 - 1/6 -> rounds to 1.
        assert_eq!(g[0], 4.0);
        assert_eq!(g[3], 0.5);
    }

    #[test]
    fn gradient_is_unbiased_in_expectation() {
        // Average many independent roundings (different steps) of the same vector.
        let base = [1.0f32, 0.37, -0.81, 0.05, -0.5, 0.0, 0.66, -1.0];
        for (bits, mode) in [
            (Bits::K(1), GRounding::Dorefa),
            (Bits::K(2), GRounding::Dorefa),
            (Bits::K(4), GRounding::Dorefa),
            (Bits::K(2), GRounding::MidTread),
            (Bits::K(3), GRounding::MidTread),
        ] {
            let trials = 20_000;
            let mut sum = [0f64; 8];
            for t in 0..trials {
                let mut g = base.to_vec();
                quantize(&mut g, 1, 1, 8, bits, mode, RoundingKey { step: t, ..KEY });
                for (s, v) in sum.iter_mut().zip(&g) {
                    *s += *v as f64;
                }
            }
            for (s, b) in sum.iter().zip(&base) {
                let mean = s / trials as f64;
                assert!(
                    (mean - *b as f64).abs() < 0.03,
                    "{bits:?} {mode:?}: mean {mean} vs {b}"
                );
            }
        }
    }

    #[test]
    fn gradient_same_key_same_result_and_zero_stays_zero() {
        let mut a = vec![0.3, -0.2, 0.1, 0.05];
        let mut b = a.clone();
        quantize(&mut a, 2, 1, 2, Bits::K(3), GRounding::Dorefa, KEY);
        quantize(&mut b, 2, 1, 2, Bits::K(3), GRounding::Dorefa, KEY);
        assert_eq!(a, b);
        let mut z = vec![0.0; 4];
        quantize(&mut z, 1, 2, 2, Bits::K(2), GRounding::MidTread, KEY);
        assert_eq!(z, vec![0.0; 4]);
    }

    #[test]
    fn mid_tread_2bit_is_ternary_with_zero() {
        // k = 2: L = 1, levels {−m, 0, m}; an exact zero stays zero (floor(0 + u) = 0).
        let mut g = vec![0.8, 0.0, -0.8, 0.3];
        quantize(&mut g, 1, 1, 4, Bits::K(2), GRounding::MidTread, KEY);
        for v in &g {
            assert!([-0.8f32, 0.0, 0.8].contains(v), "{v}");
        }
        assert_eq!(g[0], 0.8);
        assert_eq!(g[1], 0.0);
        assert_eq!(g[2], -0.8);
    }

    #[test]
    fn mid_tread_1bit_keeps_zeros_and_rounds_the_rest_to_plus_minus_m() {
        let mut g = vec![0.5, 0.0, -0.1, 0.2];
        quantize(&mut g, 1, 1, 4, Bits::K(1), GRounding::MidTread, KEY);
        assert_eq!(g[0], 0.5);
        assert_eq!(g[1], 0.0);
        assert!(g[2].abs() == 0.5 && g[3].abs() == 0.5, "{g:?}");
    }

    #[test]
    fn gradient_fp32_is_identity() {
        let mut g = vec![0.123, -9.0];
        quantize(&mut g, 1, 1, 2, Bits::Fp32, GRounding::Dorefa, KEY);
        assert_eq!(g, vec![0.123, -9.0]);
    }
}
