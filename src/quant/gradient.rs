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

/// Over which errors one scale `m = max|g|` is taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GScale {
    /// One scale per sample, over all its channels and positions (spec §2, DoReFa).
    #[default]
    Sample,
    /// One scale per crossbar input vector: a sample's errors at one output position, over the
    /// layer's output channels (the columns one transposed read drives). Equal to `Sample` for
    /// FC layers. Still one digital multiply per vector, which factors out of the read exactly;
    /// a conv layer's few large errors no longer set the step for all its positions.
    Vector,
}

impl GScale {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "sample" => Ok(GScale::Sample),
            "vector" => Ok(GScale::Vector),
            _ => Err(Error::invalid(
                "g_scale",
                format!("unknown G scale {s:?} (known: sample, vector)"),
            )),
        }
    }
}

/// The G quantizer's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GQuantizer {
    pub bits: Bits,
    pub rounding: GRounding,
    pub scale: GScale,
}

/// `m` of every column of `g` (`rows × n·positions`): the max |g| of its sample or its vector.
fn scales(g: &[f32], p: usize, positions: usize, scale: GScale) -> Vec<f32> {
    // Column blocks in parallel; max is exact, so the result does not depend on the threads.
    let mut m = vec![0f32; p];
    m.par_chunks_mut(1024).enumerate().for_each(|(b, ms)| {
        let (c0, c1) = (b * 1024, b * 1024 + ms.len());
        for row in g.chunks(p) {
            for (a, v) in ms.iter_mut().zip(&row[c0..c1]) {
                *a = a.max(v.abs());
            }
        }
    });
    if scale == GScale::Sample {
        for sample in m.chunks_mut(positions) {
            let max = sample.iter().fold(0f32, |a, &b| a.max(b));
            sample.fill(max);
        }
    }
    m
}

/// Uniform draws made ahead of the arithmetic that uses them (a stack buffer).
const DRAW_CHUNK: usize = 2048;

/// Quantize the error `g` (`rows × n·positions`) in place.
pub fn quantize(
    g: &mut [f32],
    rows: usize,
    n: usize,
    positions: usize,
    q: GQuantizer,
    key: RoundingKey,
) {
    let Some(levels) = q.bits.levels() else {
        return;
    };
    let mid_tread = q.rounding == GRounding::MidTread && q.bits != Bits::K(1);
    let skip_zeros = q.rounding == GRounding::MidTread && q.bits == Bits::K(1);
    let p = n * positions;
    assert_eq!(g.len(), rows * p);
    if p == 0 {
        return;
    }
    // Per column: the factor into grid units and the one back (0 where the column is all zero).
    let half = ((levels + 1.0) / 2.0 - 1.0).max(1.0); // mid-tread: 2^(k-1) - 1
    let steps: Vec<(f32, f32)> = scales(g, p, positions, q.scale)
        .into_iter()
        .map(|m| match (m == 0.0, mid_tread) {
            (true, _) => (0.0, 0.0),
            (false, true) => (half / m, m / half),
            (false, false) => (1.0 / (2.0 * m), 2.0 * m),
        })
        .collect();
    // A column whose scale is 0 is all zeros and draws no noise (the sample's or vector's
    // stream position does not move), so `Sample` draws exactly as before `GScale` existed.
    // Without an all-zero column every value draws once, in order: the draws of a chunk come
    // first, then a branch-free pass over it that vectorizes (the same values as the loop below;
    // its formulas are written out per mode: one closure choosing the mode per value ran the
    // ideal 4,4,4,4 ResNet-20 step 1-9% slower in alternated benches).
    let dense = steps.iter().all(|&(_, from)| from != 0.0);
    g.par_chunks_mut(p).enumerate().for_each(|(r, row)| {
        let mut rng = key.rng(r);
        if dense {
            let mut u = [0f32; DRAW_CHUNK];
            for (vs, st) in row.chunks_mut(DRAW_CHUNK).zip(steps.chunks(DRAW_CHUNK)) {
                let u = &mut u[..vs.len()];
                u.iter_mut().for_each(|x| *x = rng.uniform());
                let values = vs.iter_mut().zip(st).zip(u.iter());
                if mid_tread {
                    for ((v, &(to, from)), &u) in values {
                        *v = super::clamp(super::floor(*v * to + u), -half, half) * from;
                    }
                } else {
                    for ((v, &(to, from)), &u) in values {
                        let sigma = u - 0.5;
                        let g_n = super::clamp(*v * to + 0.5 + sigma / levels, 0.0, 1.0);
                        let q = from * (quantize_k(g_n, levels) - 0.5);
                        *v = if skip_zeros && *v == 0.0 { *v } else { q };
                    }
                }
            }
            return;
        }
        for (v, &(to, from)) in row.iter_mut().zip(&steps) {
            if from == 0.0 {
                *v = 0.0;
                continue;
            }
            if mid_tread {
                let u = rng.uniform();
                *v = super::clamp(super::floor(*v * to + u), -half, half) * from;
            } else {
                let sigma = rng.uniform() - 0.5;
                if skip_zeros && *v == 0.0 {
                    continue;
                }
                let g_n = super::clamp(*v * to + 0.5 + sigma / levels, 0.0, 1.0);
                *v = from * (quantize_k(g_n, levels) - 0.5);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_sample(bits: Bits, rounding: GRounding) -> GQuantizer {
        GQuantizer {
            bits,
            rounding,
            scale: GScale::Sample,
        }
    }

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
        quantize(
            &mut g,
            2,
            2,
            3,
            per_sample(Bits::K(2), GRounding::Dorefa),
            KEY,
        );
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
            for scale in [GScale::Sample, GScale::Vector] {
                let trials = 20_000;
                let mut sum = [0f64; 8];
                for t in 0..trials {
                    let mut g = base.to_vec();
                    // 2 rows × 4 positions: per vector, each column has its own scale.
                    let q = GQuantizer {
                        bits,
                        rounding: mode,
                        scale,
                    };
                    quantize(&mut g, 2, 1, 4, q, RoundingKey { step: t, ..KEY });
                    for (s, v) in sum.iter_mut().zip(&g) {
                        *s += *v as f64;
                    }
                }
                for (s, b) in sum.iter().zip(&base) {
                    let mean = s / trials as f64;
                    assert!(
                        (mean - *b as f64).abs() < 0.03,
                        "{bits:?} {mode:?} {scale:?}: mean {mean} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn draws_ahead_equal_the_draw_per_value_loop() {
        // The same rows with an all-zero sample appended take the per-value loop (a zero
        // column), and the appended sample comes last, so the others see the same draws.
        let (rows, positions) = (3, 1500); // 2 samples: more than one draw chunk per row
        let mut rng = crate::rng::Rng::new(9);
        let g: Vec<f32> = (0..rows * 2 * positions)
            .map(|i| {
                if i % 7 == 0 {
                    0.0
                } else {
                    rng.uniform_in(-2.0, 2.0)
                }
            })
            .collect();
        for (bits, rounding) in [
            (Bits::K(1), GRounding::Dorefa),
            (Bits::K(4), GRounding::Dorefa),
            (Bits::K(1), GRounding::MidTread),
            (Bits::K(3), GRounding::MidTread),
        ] {
            for scale in [GScale::Sample, GScale::Vector] {
                let q = GQuantizer {
                    bits,
                    rounding,
                    scale,
                };
                let mut dense = g.clone();
                quantize(&mut dense, rows, 2, positions, q, KEY);
                let mut padded: Vec<f32> = g
                    .chunks(2 * positions)
                    .flat_map(|row| row.iter().copied().chain(vec![0.0; positions]))
                    .collect();
                quantize(&mut padded, rows, 3, positions, q, KEY);
                let kept: Vec<f32> = padded
                    .chunks(3 * positions)
                    .flat_map(|row| row[..2 * positions].to_vec())
                    .collect();
                let same = dense
                    .iter()
                    .zip(&kept)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{bits:?} {rounding:?} {scale:?}");
            }
        }
    }

    #[test]
    fn gradient_same_key_same_result_and_zero_stays_zero() {
        let mut a = vec![0.3, -0.2, 0.1, 0.05];
        let mut b = a.clone();
        quantize(
            &mut a,
            2,
            1,
            2,
            per_sample(Bits::K(3), GRounding::Dorefa),
            KEY,
        );
        quantize(
            &mut b,
            2,
            1,
            2,
            per_sample(Bits::K(3), GRounding::Dorefa),
            KEY,
        );
        assert_eq!(a, b);
        let mut z = vec![0.0; 4];
        quantize(
            &mut z,
            1,
            2,
            2,
            per_sample(Bits::K(2), GRounding::MidTread),
            KEY,
        );
        assert_eq!(z, vec![0.0; 4]);
    }

    #[test]
    fn mid_tread_2bit_is_ternary_with_zero() {
        // k = 2: L = 1, levels {−m, 0, m}; an exact zero stays zero (floor(0 + u) = 0).
        let mut g = vec![0.8, 0.0, -0.8, 0.3];
        quantize(
            &mut g,
            1,
            1,
            4,
            per_sample(Bits::K(2), GRounding::MidTread),
            KEY,
        );
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
        quantize(
            &mut g,
            1,
            1,
            4,
            per_sample(Bits::K(1), GRounding::MidTread),
            KEY,
        );
        assert_eq!(g[0], 0.5);
        assert_eq!(g[1], 0.0);
        assert!(g[2].abs() == 0.5 && g[3].abs() == 0.5, "{g:?}");
    }

    #[test]
    fn gradient_fp32_is_identity() {
        let mut g = vec![0.123, -9.0];
        quantize(
            &mut g,
            1,
            1,
            2,
            per_sample(Bits::Fp32, GRounding::Dorefa),
            KEY,
        );
        assert_eq!(g, vec![0.123, -9.0]);
    }

    #[test]
    fn vector_scale_is_per_column_max() {
        // 2 rows (channels) × 3 positions of one sample. Per-vector m: 0.8, 0.2, 0.1.
        let g0 = vec![0.8, 0.0, -0.1, 0.4, 0.2, 0.1];
        let q = GQuantizer {
            bits: Bits::K(2),
            rounding: GRounding::MidTread,
            scale: GScale::Vector,
        };
        let mut g = g0.clone();
        quantize(&mut g, 2, 1, 3, q, KEY);
        // Each column's largest |g| is exact, a zero stays zero, the rest is 0 or ±m of its column.
        assert_eq!(g[0], 0.8);
        assert_eq!(g[1], 0.0);
        assert_eq!((g[2], g[5]), (-0.1, 0.1));
        assert_eq!(g[4], 0.2);
        assert!([0.0, 0.8].contains(&g[3]), "{}", g[3]);
        // One scale per sample (m = 0.8) rounds the small columns to 0 or ±0.8 instead.
        let mut s = g0.clone();
        quantize(
            &mut s,
            2,
            1,
            3,
            per_sample(Bits::K(2), GRounding::MidTread),
            KEY,
        );
        for v in [s[2], s[5]] {
            assert!([-0.8, 0.0, 0.8].contains(&v), "{v}");
        }
    }

    #[test]
    fn vector_scale_equals_sample_scale_with_one_position() {
        // FC layers: one position per sample, so both rules give the same scales and draws.
        let g0: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) / 7.0).collect();
        for bits in [Bits::K(1), Bits::K(2), Bits::K(4)] {
            for rounding in [GRounding::Dorefa, GRounding::MidTread] {
                let (mut a, mut b) = (g0.clone(), g0.clone());
                quantize(&mut a, 3, 8, 1, per_sample(bits, rounding), KEY);
                let q = GQuantizer {
                    bits,
                    rounding,
                    scale: GScale::Vector,
                };
                quantize(&mut b, 3, 8, 1, q, KEY);
                assert_eq!(a, b, "{bits:?} {rounding:?}");
            }
        }
    }

    #[test]
    fn g_scale_parses() {
        assert_eq!(GScale::parse("vector").unwrap(), GScale::Vector);
        assert_eq!(GScale::parse("sample").unwrap(), GScale::Sample);
        assert!(GScale::parse("channel").is_err());
    }
}
