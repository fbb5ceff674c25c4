//! The one wrapper around the `gemm` crate. Matrices are row-major slices; `Trans::Yes` reads an
//! operand transposed without copying (by swapping its strides). A product uses the rayon pool
//! the caller runs in, or only the calling thread (`Threads::One`, for callers that run blocks
//! in parallel themselves): `gemm` splits the output, never the reduction, so the result is the
//! same for any thread count.

use gemm::Parallelism;
use std::ops::Range;

/// Whether an operand is read as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    No,
    Yes,
}

/// Below this many multiply-adds a product runs on one thread: splitting costs more than it saves.
const PARALLEL_MIN_MACS: usize = 48 * 1024;

/// A read-only matrix view: element (i, j) is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows × cols` block starting at (r0, c0) of a matrix with `ld` columns.
    pub fn block(data: &'a [f32], ld: usize, r0: usize, c0: usize) -> Self {
        View {
            data: &data[r0 * ld + c0..],
            rs: ld,
            cs: 1,
        }
    }

    /// The same view transposed.
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// `c[m×n] (row-major, contiguous) = (accumulate ? c : 0) + a[m×k] · b[k×n]` for strided views.
#[allow(clippy::too_many_arguments)]
pub fn matmul_view(
    c: &mut [f32],
    a: View<'_>,
    b: View<'_>,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert_eq!(
        c.len(),
        m * n,
        "gemm: c has {} values, want {m}×{n}",
        c.len()
    );
    matmul_into(c, n, a, b, m, n, k, accumulate, Threads::Pool);
}

/// Which threads a product may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// The rayon pool the caller runs in (large products only).
    Pool,
    /// The calling thread alone: for callers that run blocks in parallel themselves. The
    /// values are the same either way (gemm never splits the reduction).
    One,
}

/// `matmul_view` into an `m×n` block of a row-major matrix with `ldc` columns that starts at
/// `c[0]` (a column block of a wider output: row `i` is `c[i·ldc..i·ldc + n]`).
#[allow(clippy::too_many_arguments)]
pub fn matmul_into(
    c: &mut [f32],
    ldc: usize,
    a: View<'_>,
    b: View<'_>,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
    threads: Threads,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n, "gemm: ldc {ldc} < n {n}");
    assert!((m - 1) * ldc + n <= c.len(), "gemm: block c out of bounds");
    if k == 0 {
        if !accumulate {
            c.chunks_mut(ldc).take(m).for_each(|r| r[..n].fill(0.0));
        }
        return;
    }
    // SAFETY: the assert above bounds `c`'s block, which is a unique borrow.
    unsafe { gemm_raw(c.as_mut_ptr(), ldc, a, b, (m, n, k), accumulate, threads) }
}

/// The `gemm` call behind `matmul_into` and `ColumnBlock`: `c` points at an `m×n` block with
/// row stride `ldc` (checked here: `a` and `b` cover their `m×k` and `k×n`).
///
/// # Safety
/// Every `c[i·ldc + j]` (`i < m`, `j < n`) must be valid to write, and nothing else may read or
/// write those values during the call.
unsafe fn gemm_raw(
    c: *mut f32,
    ldc: usize,
    a: View<'_>,
    b: View<'_>,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    threads: Threads,
) {
    let last = |v: &View<'_>, r: usize, cc: usize| (r - 1) * v.rs + (cc - 1) * v.cs;
    assert!(last(&a, m, k) < a.data.len(), "gemm: view a out of bounds");
    assert!(last(&b, k, n) < b.data.len(), "gemm: view b out of bounds");
    let pool = rayon::current_num_threads();
    let par = if threads == Threads::Pool && pool > 1 && m * n * k >= PARALLEL_MIN_MACS {
        Parallelism::Rayon(pool)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts bound every index the strides reach in `a` and `b`; the caller
    // vouches for `c`'s block.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            ldc as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// One block of columns `j0..j0 + n` of every row of a row-major `[m, ld]` matrix, for blocks
/// that run in parallel and each write their own columns in place (a blockwise conv filling
/// its output, `ColumnBlock::split`). Sound as `split_at_mut` is: `split` takes the matrix's
/// one `&mut` and hands out blocks whose columns it has checked are disjoint.
pub struct ColumnBlock<'a> {
    ptr: *mut f32,
    m: usize,
    ld: usize,
    j0: usize,
    n: usize,
    _borrow: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: a block writes only its own columns, which no other block covers (checked by
// `split`), and the borrow it came from lasts as long as it does.
unsafe impl Send for ColumnBlock<'_> {}

impl<'a> ColumnBlock<'a> {
    /// Splits `data` (`[m, ld]`, `m = data.len() / ld`) into the column blocks `cols` (disjoint,
    /// in bounds; panics otherwise).
    pub fn split(data: &'a mut [f32], ld: usize, cols: &[Range<usize>]) -> Vec<Self> {
        assert!(
            ld > 0 && data.len().is_multiple_of(ld),
            "column blocks: {} values, ld {ld}",
            data.len()
        );
        let mut sorted: Vec<&Range<usize>> = cols.iter().collect();
        sorted.sort_by_key(|r| r.start);
        for w in sorted.windows(2) {
            assert!(w[0].end <= w[1].start, "column blocks overlap");
        }
        assert!(
            sorted.iter().all(|r| r.start <= r.end && r.end <= ld),
            "column block out of bounds"
        );
        let (ptr, m) = (data.as_mut_ptr(), data.len() / ld);
        cols.iter()
            .map(|r| ColumnBlock {
                ptr,
                m,
                ld,
                j0: r.start,
                n: r.len(),
                _borrow: std::marker::PhantomData,
            })
            .collect()
    }

    /// `block = a · b` (`a`: `m×k`, `b`: `k×n`), on the calling thread: the values
    /// `matmul_into` gives.
    pub fn product(&mut self, a: View<'_>, b: View<'_>, k: usize) {
        let (m, n) = (self.m, self.n);
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            for i in 0..m {
                // SAFETY: row i's columns j0..j0+n lie in the borrowed matrix and are this
                // block's alone.
                unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.ld + self.j0), n) }
                    .fill(0.0);
            }
            return;
        }
        // SAFETY: as above, for every row; `split` checked the bounds and the disjointness.
        unsafe {
            let c = self.ptr.add(self.j0);
            gemm_raw(c, self.ld, a, b, (m, n, k), false, Threads::One);
        }
    }
}

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
    assert_eq!(
        a.len(),
        m * k,
        "gemm: a has {} values, want {m}×{k}",
        a.len()
    );
    assert_eq!(
        b.len(),
        k * n,
        "gemm: b has {} values, want {k}×{n}",
        b.len()
    );
    // a transposed operand is the same data read with its strides swapped
    let a = match ta {
        Trans::No => View {
            data: a,
            rs: k,
            cs: 1,
        },
        Trans::Yes => View {
            data: a,
            rs: 1,
            cs: m,
        },
    };
    let b = match tb {
        Trans::No => View {
            data: b,
            rs: n,
            cs: 1,
        },
        Trans::Yes => View {
            data: b,
            rs: 1,
            cs: k,
        },
    };
    matmul_view(c, a, b, m, n, k, accumulate);
}

/// Sums `dW = Σ_b g_b · x_bᵀ` (`[cols, rows]`) over blocks of columns, the weight gradient of a
/// matrix layer. Each block's product is formed on its own (`block_product`, which callers may
/// run in parallel) and the products are added in block order, so the sum is the same whichever
/// thread formed which block and however many threads there are. It is accumulated as its
/// transpose, `x_b · g_bᵀ` (`[rows, cols]`): gemm then repacks the narrow `g_b` (`cols × pc`)
/// where the direct form repacks `x_b` (`rows × pc`), 9× more values for a 3×3 conv — that
/// packing was a quarter of a ResNet-20 training step.
pub struct WeightGrad {
    dwt: Vec<f32>,
    scratch: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl WeightGrad {
    pub fn new(rows: usize, cols: usize) -> Self {
        WeightGrad {
            dwt: vec![0.0; rows * cols],
            scratch: Vec::new(),
            rows,
            cols,
        }
    }

    /// One block's `x · gᵀ` (`[rows, cols]`) into `out`, on the calling thread: `x` is
    /// `rows × pc`, `g` is `cols × pc`.
    pub fn block_product(
        x: View<'_>,
        g: View<'_>,
        rows: usize,
        cols: usize,
        pc: usize,
        out: &mut Vec<f32>,
    ) {
        out.resize(rows * cols, 0.0);
        matmul_into(out, cols, x, g.t(), rows, cols, pc, false, Threads::One);
    }

    /// Adds the next block's product (from `block_product`).
    pub fn add_product(&mut self, product: &[f32]) {
        assert_eq!(product.len(), self.dwt.len(), "weight gradient block size");
        self.dwt.iter_mut().zip(product).for_each(|(d, &p)| *d += p);
    }

    /// Adds `g · xᵀ` for the next block: `x` is `rows × pc`, `g` is `cols × pc`.
    pub fn add(&mut self, x: View<'_>, g: View<'_>, pc: usize) {
        let mut p = std::mem::take(&mut self.scratch);
        p.resize(self.rows * self.cols, 0.0);
        // threaded here (one block at a time); the values equal `block_product`'s
        matmul_view(&mut p, x, g.t(), self.rows, self.cols, pc, false);
        self.add_product(&p);
        self.scratch = p;
    }

    /// Writes the sum into `dw` (`[cols, rows]`, overwritten; zeros when no block was added).
    pub fn finish(self, dw: &mut [f32]) {
        assert_eq!(dw.len(), self.rows * self.cols, "weight gradient size");
        for (c, out) in dw.chunks_mut(self.rows).enumerate() {
            for (r, v) in out.iter_mut().enumerate() {
                *v = self.dwt[r * self.cols + c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::rng::Rng;
    use rayon::prelude::*;

    #[test]
    fn strided_blocks_match_reference() {
        // A 7×9 matrix; multiply its block rows 2..6, cols 3..8 (transposed too) by a 5×4 / 4×5.
        let mut rng = Rng::new(8);
        let big: Vec<f32> = (0..63).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let x: Vec<f32> = (0..20).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let blk: Vec<f32> = (2..6)
            .flat_map(|r| (3..8).map(move |c| (r, c)))
            .map(|(r, c)| big[r * 9 + c])
            .collect();
        let mut c = vec![0.0; 16];
        matmul_view(
            &mut c,
            View::block(&big, 9, 2, 3),
            View::block(&x, 4, 0, 0),
            4,
            4,
            5,
            false,
        );
        let mut want = vec![0.0; 16];
        reference::matmul(&mut want, &blk, Trans::No, &x, Trans::No, 4, 4, 5, false);
        for (a, b) in c.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5);
        }
        let mut c = vec![0.0; 20];
        matmul_view(
            &mut c,
            View::block(&big, 9, 2, 3).t(),
            View::block(&x, 4, 0, 0),
            5,
            4,
            4,
            false,
        );
        let mut want = vec![0.0; 20];
        reference::matmul(
            &mut want,
            &blk,
            Trans::Yes,
            &x[..16],
            Trans::No,
            5,
            4,
            4,
            false,
        );
        for (a, b) in c.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn product_into_a_column_block_leaves_the_rest_alone() {
        // c is 5×11; write the 5×4 block at columns 6..10 with a[5×3]·b[3×4], with and
        // without accumulation: it equals the contiguous product, the other columns keep
        // their values.
        let mut rng = Rng::new(9);
        let a: Vec<f32> = (0..15).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let b: Vec<f32> = (0..12).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let c0: Vec<f32> = (0..55).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        for acc in [false, true] {
            let mut c = c0.clone();
            let av = View::block(&a, 3, 0, 0);
            let bv = View::block(&b, 4, 0, 0);
            matmul_into(&mut c[6..], 11, av, bv, 5, 4, 3, acc, Threads::Pool);
            let mut block: Vec<f32> = (0..5)
                .flat_map(|i| c0[i * 11 + 6..i * 11 + 10].to_vec())
                .collect();
            matmul(&mut block, &a, Trans::No, &b, Trans::No, 5, 4, 3, acc);
            for i in 0..5 {
                for j in 0..11 {
                    let want = if (6..10).contains(&j) {
                        block[i * 4 + j - 6]
                    } else {
                        c0[i * 11 + j]
                    };
                    assert_eq!(c[i * 11 + j], want, "({i}, {j}) acc {acc}");
                }
            }
        }
    }

    #[test]
    fn column_blocks_fill_their_columns_in_parallel() {
        // c is 6×23: blocks of columns 0..5, 5..12, 12..12 (empty) and 15..23 written in
        // parallel by a[6×4]·b (a block of a 4×23 b), k = 0 too; each equals the product
        // into a contiguous block, columns 12..15 keep their values.
        let mut rng = Rng::new(10);
        let a: Vec<f32> = (0..24).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let b: Vec<f32> = (0..92).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let c0: Vec<f32> = (0..138).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let cols = [0..5, 5..12, 12..12, 15..23];
        for k in [4, 0] {
            let mut c = c0.clone();
            let blocks = ColumnBlock::split(&mut c, 23, &cols);
            blocks.into_par_iter().zip(&cols).for_each(|(mut blk, r)| {
                blk.product(View::block(&a, 4, 0, 0), View::block(&b, 23, 0, r.start), k);
            });
            for r in &cols {
                let n = r.len();
                let mut want = vec![0.0; 6 * n];
                let bv = View::block(&b, 23, 0, r.start);
                matmul_into(
                    &mut want,
                    n,
                    View::block(&a, 4, 0, 0),
                    bv,
                    6,
                    n,
                    k,
                    false,
                    Threads::One,
                );
                for i in 0..6 {
                    assert_eq!(
                        &c[i * 23 + r.start..i * 23 + r.end],
                        &want[i * n..(i + 1) * n]
                    );
                }
            }
            for i in 0..6 {
                assert_eq!(&c[i * 23 + 12..i * 23 + 15], &c0[i * 23 + 12..i * 23 + 15]);
            }
        }
    }

    #[test]
    #[should_panic(expected = "column blocks overlap")]
    fn column_blocks_must_not_overlap() {
        let mut c = vec![0.0; 20];
        let _ = ColumnBlock::split(&mut c, 10, &[0..4, 6..8, 3..5]);
    }

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
                            assert!(
                                (x - y).abs() < 1e-4,
                                "{m}x{n}x{k} {ta:?} {tb:?}: {x} vs {y}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn weight_gradient_sums_blocks_like_the_direct_product() {
        // dW [3×5] = Σ over two column blocks (4 and 2 columns) of g·xᵀ, x [5×6], g [3×6].
        let mut rng = Rng::new(11);
        let x: Vec<f32> = (0..30).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let g: Vec<f32> = (0..18).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let mut acc = WeightGrad::new(5, 3);
        for (j0, pc) in [(0, 4), (4, 2)] {
            acc.add(View::block(&x, 6, 0, j0), View::block(&g, 6, 0, j0), pc);
        }
        let mut dw = vec![f32::NAN; 15];
        acc.finish(&mut dw);
        let mut want = vec![0.0; 15];
        reference::matmul(&mut want, &g, Trans::No, &x, Trans::Yes, 3, 5, 6, false);
        for (a, b) in dw.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let mut none = vec![f32::NAN; 15];
        WeightGrad::new(5, 3).finish(&mut none);
        assert!(none.iter().all(|&v| v == 0.0));
    }
}
