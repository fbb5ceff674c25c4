//! W: the weight quantizer (DoReFa, one scale per layer), spec §2.
//!
//! k ≥ 2: `w_n = tanh(w) / (2·max|tanh(w)|) + 1/2`, `w_q = 2·quantize_k(w_n) − 1`, so `w_q` lies on
//! the 2^k levels `{−1, …, 1}` in steps of `2/(2^k − 1)`. k = 1: `w_q = sign(w)·mean|w|`
//! (sign(0) = +1). Fp32: `w_q = w`. Backward (straight-through, max and mean held constant):
//! `dJ/dw = dJ/dw_q · d`, where `d = (1 − tanh²(w)) / max|tanh(w)|` for k ≥ 2 and 1 otherwise.

use super::Bits;
use rayon::prelude::*;

const CHUNK: usize = 8 * 1024;

/// Quantize `w` into `w_q` and write the straight-through derivative factor into `d`.
pub fn quantize(w: &[f32], bits: Bits, w_q: &mut [f32], d: &mut [f32]) {
    assert_eq!(w.len(), w_q.len());
    assert_eq!(w.len(), d.len());
    match bits {
        Bits::Fp32 => {
            w_q.copy_from_slice(w);
            d.fill(1.0);
        }
        Bits::K(1) => {
            let mean = if w.is_empty() {
                0.0
            } else {
                (w.iter().map(|v| v.abs() as f64).sum::<f64>() / w.len() as f64) as f32
            };
            for (q, &v) in w_q.iter_mut().zip(w) {
                *q = if v >= 0.0 { mean } else { -mean };
            }
            d.fill(1.0);
        }
        Bits::K(_) => {
            let levels = bits.levels().unwrap();
            // tanh is monotone: max|tanh(w)| = tanh(max|w|), one tanh instead of one per weight.
            let max = w
                .par_chunks(CHUNK)
                .map(|c| c.iter().fold(0f32, |m, v| m.max(v.abs())))
                .reduce(|| 0.0, f32::max)
                .tanh();
            // All-zero weights: every w_n is 1/2; any positive max gives the same w_q.
            let max = if max > 0.0 { max } else { 1.0 };
            w_q.par_chunks_mut(CHUNK)
                .zip(d.par_chunks_mut(CHUNK))
                .zip(w.par_chunks(CHUNK))
                .for_each(|((qs, ds), ws)| {
                    for ((q, dd), &v) in qs.iter_mut().zip(ds.iter_mut()).zip(ws) {
                        let t = v.tanh();
                        let w_n = t / (2.0 * max) + 0.5;
                        // 2·quantize_k(w_n) − 1 written as (2i − L)/L: the same value, computed from
                        // the level index i so that it equals the differential pair's j/L bit for bit.
                        let i = super::round(w_n * levels);
                        *q = (2.0 * i - levels) / levels;
                        *dd = (1.0 - t * t) / max;
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(w: &[f32], bits: Bits) -> (Vec<f32>, Vec<f32>) {
        let mut w_q = vec![0.0; w.len()];
        let mut d = vec![0.0; w.len()];
        quantize(w, bits, &mut w_q, &mut d);
        (w_q, d)
    }

    #[test]
    fn weight_2bit_hand_values() {
        // max|tanh| = tanh(1); w = 1 -> w_n = 1 -> w_q = 1; w = -1 -> w_n = 0 -> -1.
        // w = 0.2: tanh(0.2)/(2 tanh 1) + 0.5 = 0.1974/1.5232 + 0.5 = 0.6296; *3 = 1.889 -> 2
        //   -> w_q = 2*(2/3) - 1 = 1/3.
        // w = 0: w_n = 0.5, 1.5 is a tie -> 2 -> w_q = 1/3.
        let (w_q, d) = q(&[1.0, -1.0, 0.2, 0.0], Bits::K(2));
        let third = 1.0f32 / 3.0;
        assert_eq!(w_q, vec![1.0, -1.0, third, third]);
        let t1 = 1f32.tanh();
        assert!((d[3] - 1.0 / t1).abs() < 1e-6);
        assert!((d[0] - (1.0 - t1 * t1) / t1).abs() < 1e-6);
    }

    #[test]
    fn weight_1bit_is_sign_times_mean() {
        let (w_q, d) = q(&[0.5, -0.25, 0.0, -1.0], Bits::K(1));
        let mean = (0.5 + 0.25 + 0.0 + 1.0) / 4.0;
        assert_eq!(w_q, vec![mean, -mean, mean, -mean]);
        assert_eq!(d, vec![1.0; 4]);
    }

    #[test]
    fn weight_fp32_is_identity() {
        let w = [0.3, -7.0, 1e-9];
        let (w_q, d) = q(&w, Bits::Fp32);
        assert_eq!(w_q, w.to_vec());
        assert_eq!(d, vec![1.0; 3]);
    }

    #[test]
    fn weight_levels_lie_on_grid_and_span_minus_one_to_one() {
        let w: Vec<f32> = (0..200).map(|i| (i as f32 - 100.0) * 0.013).collect();
        for k in 2..=8u8 {
            let (w_q, _) = q(&w, Bits::K(k));
            let levels = ((1u32 << k) - 1) as f32;
            for &v in &w_q {
                let idx = (v + 1.0) / 2.0 * levels;
                assert!((idx - idx.round()).abs() < 1e-4, "k={k}: {v} not on grid");
                assert!((-1.0..=1.0).contains(&v));
            }
            // the largest |w| (here the most negative) lands on the end of the grid
            assert_eq!(w_q.iter().fold(0f32, |m, v| m.max(v.abs())), 1.0);
            assert_eq!(w_q[0], -1.0);
        }
    }

    #[test]
    fn all_zero_weights_do_not_produce_nan() {
        let (w_q, d) = q(&[0.0; 5], Bits::K(4));
        assert!(w_q.iter().chain(&d).all(|v| v.is_finite()));
    }
}
