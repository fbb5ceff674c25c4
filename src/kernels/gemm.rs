//! The one wrapper around the `gemm` crate. Matrices are row-major slices; `Trans::Yes` reads an
//! operand transposed without copying (by swapping its strides). Thread use follows the rayon
//! pool the caller runs in: `gemm` splits the output, never the reduction, so the result is the
//! same for a given thread count.

use gemm::Parallelism;

/// Whether an operand is read as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    No,
    Yes,
}

/// Below this many multiply-adds a product runs on one thread: splitting costs more than it saves.
const PARALLEL_MIN_MACS: usize = 48 * 1024;

/// `c[m×n] = (accumulate ? c : 0) + op(a)[m×k] · op(b)[k×n]`, all row-major.
/// `a` holds `m×k` (or `k×m` when `ta` is `Yes`), `b` holds `k×n` (or `n×k`).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert_eq!(c.len(), m * n, "gemm: c has {} values, want {m}×{n}", c.len());
    assert_eq!(a.len(), m * k, "gemm: a has {} values, want {m}×{k}", a.len());
    assert_eq!(b.len(), k * n, "gemm: b has {} values, want {k}×{n}", b.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    // (row stride, column stride) of each operand as read.
    let (a_rs, a_cs) = match ta {
        Trans::No => (k as isize, 1),
        Trans::Yes => (1, m as isize),
    };
    let (b_rs, b_cs) = match tb {
        Trans::No => (n as isize, 1),
        Trans::Yes => (1, k as isize),
    };
    let threads = rayon::current_num_threads();
    let par = if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above guarantee every index the strides reach lies inside its slice,
    // and `c` does not alias `a` or `b` (it is a unique borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::rng::Rng;

    #[test]
    fn matches_reference_on_awkward_sizes_and_transposes() {
        let mut rng = Rng::new(3);
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 3),
            (17, 7, 129),
            (127, 33, 5),
            (6, 500, 25),
            (0, 3, 4),
            (3, 4, 0),
        ] {
            for ta in [Trans::No, Trans::Yes] {
                for tb in [Trans::No, Trans::Yes] {
                    let a: Vec<f32> = (0..m * k).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                    let c0: Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                    for acc in [false, true] {
                        let mut c = c0.clone();
                        matmul(&mut c, &a, ta, &b, tb, m, n, k, acc);
                        let mut want = c0.clone();
                        reference::matmul(&mut want, &a, ta, &b, tb, m, n, k, acc);
                        for (x, y) in c.iter().zip(&want) {
                            assert!((x - y).abs() < 1e-4, "{m}x{n}x{k} {ta:?} {tb:?}: {x} vs {y}");
                        }
                    }
                }
            }
        }
    }
}
