//! Numeric kernels under the layers: the GEMM wrapper, im2col/col2im with their shape
//! arithmetic, naive reference versions that the tests use as oracles, and the f64 lane sum
//! behind every mean over a layer's values (BN statistics, ADC ranges).

use rayon::prelude::*;

pub mod gemm;
pub mod im2col;
pub mod reference;

/// Lanes of `lane_sum`: independent accumulators, so the loop vectorizes instead of
/// waiting on one add chain (the order is fixed, so the result is too).
pub const LANES: usize = 8;

/// `Σ f(x)` over `xs` in f64, in `LANES` interleaved partial sums added in order.
pub fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0f64; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += f(c[i]);
        }
    }
    acc.iter().sum::<f64>() + rest.iter().map(|&v| f(v)).sum::<f64>()
}

/// `Σ a·b` (each product in f32) in f64, in `lane_sum`'s order.
pub fn lane_dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lane_dot: lengths differ");
    let mut acc = [0f64; LANES];
    let n = a.len() / LANES * LANES;
    for (ac, bc) in a[..n].chunks_exact(LANES).zip(b[..n].chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += (ac[i] * bc[i]) as f64;
        }
    }
    let rest: f64 = a[n..]
        .iter()
        .zip(&b[n..])
        .map(|(&x, &y)| (x * y) as f64)
        .sum();
    acc.iter().sum::<f64>() + rest
}

/// Values per task of the elementwise passes below.
const ELEMENTWISE_CHUNK: usize = 32 * 1024;

/// `dst += src`, element by element, in parallel (a residual sum: exact whatever the threads).
pub fn add_assign(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "add_assign: lengths differ");
    dst.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(src.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(a, &b)| *a += b));
}

/// A copy of `src`, made in parallel (written straight into the new vector, no zero-fill).
pub fn par_copy(src: &[f32]) -> Vec<f32> {
    src.par_iter().copied().collect()
}

/// `vec![0.0; n]` written by the pool's threads: a large layer output's zero-fill is otherwise
/// one thread's memset (the allocator hands back used memory, which calloc must clear).
pub fn zeros(n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    v.par_extend(rayon::iter::repeat_n(0.0f32, n));
    v
}

thread_local! {
    static BUFFERS: std::cell::RefCell<[Vec<f32>; 4]> = Default::default();
}

/// Runs `f` with this thread's four work buffers, kept from call to call (so no step allocates
/// and zero-fills them again): for code that runs blocks in parallel, one block per thread.
/// `f` must neither call `with_buffers` nor start parallel work: a thread that waits on
/// parallel work may pick up another block, which would find the buffers in use (a panic).
pub fn with_buffers<R>(f: impl FnOnce(&mut [Vec<f32>; 4]) -> R) -> R {
    BUFFERS.with(|b| f(&mut b.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_dot_sums_in_lane_sums_order() {
        // two rounds of 8 lanes and a remainder of 3, large and small values mixed
        let a: Vec<f32> = (0..19)
            .map(|i| {
                if i % 8 == 0 {
                    1e8
                } else {
                    1.0 + i as f32 * 1e-7
                }
            })
            .collect();
        let b: Vec<f32> = (0..19)
            .map(|i| if i % 2 == 0 { 3.0 } else { -0.5 })
            .collect();
        let ab: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
        assert_eq!(lane_dot(&a, &b), lane_sum(&ab, |v| v as f64));
        assert_eq!(lane_dot(&[2.0, 3.0], &[4.0, -1.0]), 5.0);
        assert_eq!(lane_dot(&[], &[]), 0.0);
    }
}
