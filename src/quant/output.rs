//! CO: the ADC quantizer on conv/FC outputs, symmetric with one range `s` per layer (spec §2):
//! `co_q = s·clip(round(co/s·L), −L, L)/L` with `L = 2^(k−1) − 1` and `s = max|co|` over the batch
//! (*default*) in training; evaluation uses a running estimate of `s` (an exponential average of
//! the training batches' ranges), so a test image is read the same way whatever batch it is in.
//! k = 1 has no level besides zero in that formula, so a 1-bit ADC is read as a
//! comparator: `co_q = sign(co)·mean|co|` (the same least-squares scale as 1-bit W).
//! Backward: straight-through (with `s` the batch maximum nothing lies outside the range).

use super::Bits;
use rayon::prelude::*;

const CHUNK: usize = 16 * 1024;

/// The symmetric level count `L = 2^(k−1) − 1` for k ≥ 2.
pub fn symmetric_levels(bits: Bits) -> Option<f32> {
    match bits {
        Bits::K(k) if k >= 2 => Some(((1u32 << (k - 1)) - 1) as f32),
        _ => None,
    }
}

/// Quantize `co` in place with a given range `s` — the ADC transfer function (for k = 1, `s` is
/// the comparator's output magnitude).
pub fn quantize_with_range(co: &mut [f32], bits: Bits, s: f32) {
    if bits == Bits::K(1) {
        co.par_chunks_mut(CHUNK).for_each(|xs| {
            for v in xs {
                *v = if *v >= 0.0 { s } else { -s };
            }
        });
        return;
    }
    let Some(levels) = symmetric_levels(bits) else {
        return;
    };
    if s <= 0.0 {
        co.fill(0.0);
        return;
    }
    let (to, from) = (levels / s, s / levels);
    co.par_chunks_mut(CHUNK).for_each(|xs| {
        for v in xs {
            *v = (*v * to).round().clamp(-levels, levels) * from;
        }
    });
}

/// Quantize one layer's outputs in place; the range comes from this batch. Returns `s`.
pub fn quantize(co: &mut [f32], bits: Bits) -> f32 {
    match bits {
        Bits::Fp32 => 0.0,
        Bits::K(1) => {
            let n = co.len().max(1);
            let mean = (co.par_iter().map(|v| v.abs() as f64).sum::<f64>() / n as f64) as f32;
            quantize_with_range(co, bits, mean);
            mean
        }
        Bits::K(_) => {
            let s = co
                .par_chunks(CHUNK)
                .map(|xs| xs.iter().fold(0f32, |m, v| m.max(v.abs())))
                .reduce(|| 0.0, f32::max);
            quantize_with_range(co, bits, s);
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_3bit_hand_values() {
        // k = 3: L = 3, s = max|co| = 3 -> step 1. 1.5 is a tie -> 2; -0.4 -> 0 (prints -0).
        let mut co = vec![3.0, -3.0, 1.5, -0.4, 0.6];
        let s = quantize(&mut co, Bits::K(3));
        assert_eq!(s, 3.0);
        assert_eq!(co, vec![3.0, -3.0, 2.0, -0.0, 1.0]);
    }

    #[test]
    fn output_2bit_is_ternary() {
        // k = 2: L = 1: values become -s, 0 or s.
        let mut co = vec![2.0, 0.9, 1.1, -1.2];
        quantize(&mut co, Bits::K(2));
        assert_eq!(co, vec![2.0, 0.0, 2.0, -2.0]);
    }

    #[test]
    fn output_1bit_is_sign_times_mean() {
        let mut co = vec![2.0, -1.0, 0.0, -1.0];
        quantize(&mut co, Bits::K(1));
        assert_eq!(co, vec![1.0, -1.0, 1.0, -1.0]);
    }

    #[test]
    fn output_with_a_fixed_range_clips() {
        // k = 3, s = 1.5: step 0.5; 4.0 clips to 1.5; -0.3 -> -0.5 (0.6 -> 1 level).
        let mut co = vec![4.0, -0.3, 0.2];
        quantize_with_range(&mut co, Bits::K(3), 1.5);
        assert_eq!(co, vec![1.5, -0.5, 0.0]);
        let mut co = vec![4.0, -0.3];
        quantize_with_range(&mut co, Bits::K(1), 0.7);
        assert_eq!(co, vec![0.7, -0.7]);
    }

    #[test]
    fn output_fp32_and_all_zero() {
        let mut co = vec![0.123, -4.0];
        quantize(&mut co, Bits::Fp32);
        assert_eq!(co, vec![0.123, -4.0]);
        let mut z = vec![0.0; 3];
        quantize(&mut z, Bits::K(4));
        assert_eq!(z, vec![0.0; 3]);
    }
}
