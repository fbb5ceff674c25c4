//! A: the activation quantizer, `a_q = quantize_k(clip(x, 0, 1))` (spec §2): the DAC input of the
//! next layer. Its backward passes the error where 0 ≤ x ≤ 1 (clip's derivative; quantize_k is
//! straight-through). At fp32 the activation is a plain ReLU (no upper clip): the fp32 rows of
//! Table I are an ordinary full-precision network.

use super::{Bits, quantize_k};
use rayon::prelude::*;

const CHUNK: usize = 16 * 1024;

/// Forward in place: `x` becomes `a_q`. `mask` records where the backward passes (1) or not (0),
/// judged at `pre` when given (the value before an upstream quantizer), else at `x`.
pub fn forward(x: &mut [f32], pre: Option<&[f32]>, bits: Bits, mask: &mut Vec<u8>) {
    forward_ranged(x, pre, bits, 1.0, mask);
}

/// `forward` with the DAC's full scale at `r` instead of 1 (k-bit only; fp32 stays a ReLU):
/// `a_q = r·quantize_k(clip(x/r, 0, 1))`, the error passing where 0 ≤ x/r ≤ 1. At `r` = 1 the
/// scalings are exact, so this is `forward` value for value.
pub fn forward_ranged(x: &mut [f32], pre: Option<&[f32]>, bits: Bits, r: f32, mask: &mut Vec<u8>) {
    let inv = 1.0 / r;
    mask.resize(x.len(), 0);
    if let Some(p) = pre {
        assert_eq!(p.len(), x.len());
    }
    let levels = bits.levels();
    x.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(ci, (xs, ms))| {
            let ps = pre.map(|p| &p[ci * CHUNK..ci * CHUNK + xs.len()]);
            // one loop per case, so that none branches per element (they vectorize)
            let relu = |v: &mut f32| *v = v.max(0.0);
            let clip_q =
                |v: &mut f32, l: f32| *v = quantize_k(super::clamp(*v * inv, 0.0, 1.0), l) * r;
            let inside = |j: f32| (0.0..=1.0).contains(&(j * inv)) as u8;
            match (levels, ps) {
                (None, None) => xs.iter_mut().zip(ms).for_each(|(v, m)| {
                    *m = (*v > 0.0) as u8;
                    relu(v);
                }),
                (None, Some(ps)) => xs.iter_mut().zip(ms).zip(ps).for_each(|((v, m), &j)| {
                    *m = (j > 0.0) as u8;
                    relu(v);
                }),
                (Some(l), None) => xs.iter_mut().zip(ms).for_each(|(v, m)| {
                    *m = inside(*v);
                    clip_q(v, l);
                }),
                (Some(l), Some(ps)) => xs.iter_mut().zip(ms).zip(ps).for_each(|((v, m), &j)| {
                    *m = inside(j);
                    clip_q(v, l);
                }),
            }
        });
}

/// Backward in place: zero the error where the forward clipped.
pub fn backward(dy: &mut [f32], mask: &[u8]) {
    assert_eq!(dy.len(), mask.len());
    dy.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks(CHUNK))
        .for_each(|(ds, ms)| {
            for (d, &m) in ds.iter_mut().zip(ms) {
                // a select, not a conditional store: the loop vectorizes
                *d = if m == 0 { 0.0 } else { *d };
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_hand_values() {
        // k = 2: clip then round(3x)/3. 0.5 -> 1.5 tie -> 2/3; 1.7 -> 1; -0.3 -> 0.
        let mut x = vec![-0.3, 0.1, 0.5, 0.9, 1.7];
        let mut m = Vec::new();
        forward(&mut x, None, Bits::K(2), &mut m);
        assert_eq!(x, vec![0.0, 0.0, 2.0 / 3.0, 1.0, 1.0]);
        assert_eq!(m, vec![0, 1, 1, 1, 0]);
        let mut d = vec![1.0; 5];
        backward(&mut d, &m);
        assert_eq!(d, vec![0.0, 1.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn activation_mask_follows_the_pre_quantization_value() {
        // quantized input 1.2 (would block) but its pre-quantization value 0.7 passes.
        let mut x = vec![1.2, -0.4];
        let mut m = Vec::new();
        forward(&mut x, Some(&[0.7, 0.1]), Bits::K(2), &mut m);
        assert_eq!(x, vec![1.0, 0.0]);
        assert_eq!(m, vec![1, 1]);
    }

    #[test]
    fn activation_1bit_and_fp32() {
        let mut x = vec![0.49, 0.5, 2.0];
        let mut m = Vec::new();
        forward(&mut x, None, Bits::K(1), &mut m);
        assert_eq!(x, vec![0.0, 1.0, 1.0]);
        let mut x = vec![-1.0, 0.25, 3.0];
        forward(&mut x, None, Bits::Fp32, &mut m);
        assert_eq!(x, vec![0.0, 0.25, 3.0]);
        assert_eq!(m, vec![0, 1, 1]);
    }
}
