//! Naive loops: the test oracle for every fast kernel. Never on the hot path.

use super::gemm::Trans;
use super::im2col::ConvGeom;

/// Triple-loop product with the same contract as `gemm::matmul`, accumulated in f64.
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
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for p in 0..k {
                let av = match ta {
                    Trans::No => a[i * k + p],
                    Trans::Yes => a[p * m + i],
                };
                let bv = match tb {
                    Trans::No => b[p * n + j],
                    Trans::Yes => b[j * k + p],
                };
                s += av as f64 * bv as f64;
            }
            let prev = if accumulate { c[i * n + j] as f64 } else { 0.0 };
            c[i * n + j] = (prev + s) as f32;
        }
    }
}

/// Every (column-matrix index, input index) pair of a conv, in the order (c_in, kh, kw, n, oh,
/// ow); the input index is `None` where the tap reads padding.
fn taps(g: &ConvGeom, mut f: impl FnMut(usize, Option<usize>)) {
    let (ho, wo) = (g.h_out(), g.w_out());
    for ci in 0..g.c_in {
        for kh in 0..g.k_h {
            for kw in 0..g.k_w {
                let r = (ci * g.k_h + kh) * g.k_w + kw;
                for n in 0..g.n {
                    for oh in 0..ho {
                        for ow in 0..wo {
                            let ih = (oh * g.stride + kh) as isize - g.pad as isize;
                            let iw = (ow * g.stride + kw) as isize - g.pad as isize;
                            let inside =
                                ih >= 0 && iw >= 0 && ih < g.h_in as isize && iw < g.w_in as isize;
                            let xi = inside.then(|| {
                                ((ci * g.n + n) * g.h_in + ih as usize) * g.w_in + iw as usize
                            });
                            f(r * g.cols() + (n * ho + oh) * wo + ow, xi);
                        }
                    }
                }
            }
        }
    }
}

/// Element-by-element im2col.
pub fn im2col(x: &[f32], g: &ConvGeom) -> Vec<f32> {
    let mut col = vec![0.0; g.rows() * g.cols()];
    taps(g, |c, xi| col[c] = xi.map_or(0.0, |i| x[i]));
    col
}

/// Element-by-element col2im: every column entry added to the input pixel it was read from, in
/// the order (kh, kw) — the order the fast kernel keeps per element.
pub fn col2im(col: &[f32], g: &ConvGeom) -> Vec<f32> {
    let mut dx = vec![0.0; g.c_in * g.n * g.h_in * g.w_in];
    taps(g, |c, xi| {
        if let Some(i) = xi {
            dx[i] += col[c];
        }
    });
    dx
}
