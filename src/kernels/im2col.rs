//! im2col / col2im for channel-major (`[c, n, h, w]`) feature maps, and `ConvGeom`, the one place
//! that derives output sizes. The column matrix is `[c_in·k_h·k_w, n·h_out·w_out]`, row index
//! `(ci, kh, kw)`, column index `(n, oh, ow)`: a conv is then `W[c_out, r] · col[r, p]`.

use rayon::prelude::*;
use std::ops::Range;

/// Shape arithmetic of a 2-D convolution (square stride and padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeom {
    pub fn h_out(&self) -> usize {
        (self.h_in + 2 * self.pad - self.k_h) / self.stride + 1
    }
    pub fn w_out(&self) -> usize {
        (self.w_in + 2 * self.pad - self.k_w) / self.stride + 1
    }
    /// Rows of the column matrix: `c_in·k_h·k_w` (crossbar rows of the layer).
    pub fn rows(&self) -> usize {
        self.c_in * self.k_h * self.k_w
    }
    /// Output positions per sample.
    pub fn positions(&self) -> usize {
        self.h_out() * self.w_out()
    }
    /// Columns of the column matrix: `n·h_out·w_out`.
    pub fn cols(&self) -> usize {
        self.n * self.positions()
    }
}

/// Fill `col` (`rows × cols`) from `x` (`[c_in, n, h_in, w_in]`); padding reads as zero.
pub fn im2col(x: &[f32], g: &ConvGeom, col: &mut [f32]) {
    im2col_samples(x, g, 0..g.n, col);
}

/// The columns of samples `samples` only: `col` is `rows × (samples.len()·h_out·w_out)`, what
/// `im2col` puts in those columns. Rows run in parallel.
pub fn im2col_samples(x: &[f32], g: &ConvGeom, samples: Range<usize>, col: &mut [f32]) {
    let p = check_block(x, g, &samples, col);
    if p == 0 {
        return;
    }
    col.par_chunks_mut(p)
        .enumerate()
        .for_each(|(r, row)| im2col_row(x, g, &samples, r, row));
}

/// `im2col_samples` on the calling thread alone: for callers that run blocks in parallel.
pub fn im2col_block(x: &[f32], g: &ConvGeom, samples: Range<usize>, col: &mut [f32]) {
    let p = check_block(x, g, &samples, col);
    if p == 0 {
        return;
    }
    for (r, row) in col.chunks_mut(p).enumerate() {
        im2col_row(x, g, &samples, r, row);
    }
}

/// Checks a block's sizes; returns its column count.
fn check_block(x: &[f32], g: &ConvGeom, samples: &Range<usize>, col: &[f32]) -> usize {
    let p = samples.len() * g.positions();
    assert!(samples.end <= g.n);
    assert_eq!(x.len(), g.c_in * g.n * g.h_in * g.w_in);
    assert_eq!(col.len(), g.rows() * p);
    p
}

/// Stride 1 with as many output columns as input columns (a 'same' width): output position
/// `i = oh·w + ow` reads input `i + d`, `d = (kh−pad)·w + (kw−pad)`. So one tap's plane is one
/// contiguous run `lo..hi` (output indices whose source lies in the plane), apart from the
/// columns `ow ∉ ow_lo..ow_hi` whose window hangs over the side padding; rows outside `i0..i1`
/// (as indices: `oh ∉ oh_lo..oh_hi`) are all padding.
#[derive(Clone, Copy, Debug)]
struct Shift {
    /// The input index output index `lo` reads (0 for an empty run).
    src_lo: usize,
    i0: usize,
    i1: usize,
    lo: usize,
    hi: usize,
    ow_lo: usize,
    ow_hi: usize,
}

impl Shift {
    fn new(g: &ConvGeom, kh: usize, kw: usize) -> Option<Self> {
        let (ho, w) = (g.h_out(), g.w_in);
        if g.stride != 1 || g.w_out() != w || ho == 0 || w == 0 {
            return None;
        }
        let clamp = |v: isize, lo: usize, hi: usize| v.clamp(lo as isize, hi as isize) as usize;
        let (dh, dw) = (kh as isize - g.pad as isize, kw as isize - g.pad as isize);
        let oh_lo = clamp(-dh, 0, ho);
        let oh_hi = clamp(g.h_in as isize - dh, oh_lo, ho);
        let ow_lo = clamp(-dw, 0, w);
        let ow_hi = clamp(w as isize - dw, ow_lo, w);
        let d = dh * w as isize + dw;
        let (i0, i1) = (oh_lo * w, oh_hi * w);
        let lo = clamp(-d, i0, i1);
        let hi = clamp((g.h_in * w) as isize - d, lo, i1);
        Some(Shift {
            src_lo: if hi > lo {
                (lo as isize + d) as usize
            } else {
                0
            },
            i0,
            i1,
            lo,
            hi,
            ow_lo,
            ow_hi,
        })
    }
}

/// Row `r` = (ci, kh, kw) of the column matrix of `samples`.
fn im2col_row(x: &[f32], g: &ConvGeom, samples: &Range<usize>, r: usize, row: &mut [f32]) {
    let (ho, wo) = (g.h_out(), g.w_out());
    let ci = r / (g.k_h * g.k_w);
    let kh = (r / g.k_w) % g.k_h;
    let kw = r % g.k_w;
    if let Some(s) = Shift::new(g, kh, kw) {
        let hw = g.h_in * g.w_in;
        for (j, n) in samples.clone().enumerate() {
            let plane = &x[(ci * g.n + n) * hw..][..hw];
            let out = &mut row[j * ho * wo..][..ho * wo];
            out[..s.lo].fill(0.0);
            out[s.hi..].fill(0.0);
            out[s.lo..s.hi].copy_from_slice(&plane[s.src_lo..][..s.hi - s.lo]);
            if s.ow_lo > 0 || s.ow_hi < wo {
                // the window's columns over the padding (copied from the neighbouring row)
                for orow in out[s.i0..s.i1].chunks_exact_mut(wo) {
                    orow[..s.ow_lo].fill(0.0);
                    orow[s.ow_hi..].fill(0.0);
                }
            }
        }
        return;
    }
    for (j, n) in samples.clone().enumerate() {
        let plane = &x[(ci * g.n + n) * g.h_in * g.w_in..][..g.h_in * g.w_in];
        let out = &mut row[j * ho * wo..][..ho * wo];
        for oh in 0..ho {
            let ih = (oh * g.stride + kh) as isize - g.pad as isize;
            let orow = &mut out[oh * wo..][..wo];
            if ih < 0 || ih >= g.h_in as isize {
                orow.fill(0.0);
                continue;
            }
            let src = &plane[ih as usize * g.w_in..][..g.w_in];
            if g.stride == 1 {
                // Contiguous run: valid ow are those with 0 <= ow + kw - pad < w_in.
                let lo = g.pad.saturating_sub(kw).min(wo);
                let hi = (g.w_in + g.pad).saturating_sub(kw).min(wo).max(lo);
                orow[..lo].fill(0.0);
                orow[hi..].fill(0.0);
                if hi > lo {
                    let start = lo + kw - g.pad;
                    orow[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                }
            } else {
                for (ow, o) in orow.iter_mut().enumerate() {
                    let iw = (ow * g.stride + kw) as isize - g.pad as isize;
                    *o = if iw < 0 || iw >= g.w_in as isize {
                        0.0
                    } else {
                        src[iw as usize]
                    };
                }
            }
        }
    }
}

/// Accumulate `col` back into `dx` (`[c_in, n, h_in, w_in]`, overwritten): the adjoint of im2col.
pub fn col2im(col: &[f32], g: &ConvGeom, dx: &mut [f32]) {
    col2im_samples(col, g, 0..g.n, dx);
}

/// `col2im` for the columns of samples `samples` (`col` as `im2col_samples` fills it): those
/// samples' pixels of `dx` are overwritten, the others left alone.
pub fn col2im_samples(col: &[f32], g: &ConvGeom, samples: Range<usize>, dx: &mut [f32]) {
    let hw = g.h_in * g.w_in;
    let plane_len = g.n * hw;
    assert!(samples.end <= g.n);
    assert_eq!(dx.len(), g.c_in * plane_len);
    assert_eq!(col.len(), g.rows() * samples.len() * g.positions());
    // Each input channel owns its k_h·k_w rows of `col`, so channels run in parallel race-free.
    dx.par_chunks_mut(plane_len)
        .enumerate()
        .for_each(|(ci, dxc)| {
            let dxc = &mut dxc[samples.start * hw..samples.end * hw];
            col2im_channel(col, g, samples.len(), ci, dxc);
        });
}

/// `col2im_samples` on the calling thread alone, into `planes[ci]`: channel `ci`'s pixels of
/// the block's `nb` samples (`nb·h_in·w_in` values each, overwritten).
pub fn col2im_block(col: &[f32], g: &ConvGeom, nb: usize, planes: &mut [&mut [f32]]) {
    assert_eq!(planes.len(), g.c_in);
    assert_eq!(col.len(), g.rows() * nb * g.positions());
    for (ci, dxc) in planes.iter_mut().enumerate() {
        assert_eq!(dxc.len(), nb * g.h_in * g.w_in);
        col2im_channel(col, g, nb, ci, dxc);
    }
}

/// Channel `ci` of col2im for a block of `nb` samples: `dxc` holds their `nb` planes.
fn col2im_channel(col: &[f32], g: &ConvGeom, nb: usize, ci: usize, dxc: &mut [f32]) {
    let (ho, wo) = (g.h_out(), g.w_out());
    let hw = g.h_in * g.w_in;
    let p = nb * ho * wo;
    dxc.fill(0.0);
    if Shift::new(g, 0, 0).is_some() {
        // One contiguous run per tap and sample (see `Shift`); the columns over the side
        // padding add 0.0 instead (exact: a sum that starts at +0 is never −0), so each pixel
        // still sums its taps in (kh, kw) order.
        // per kw: which output positions' windows lie inside the columns (column ow_lo..ow_hi)
        let keeps: Vec<Vec<bool>> = (0..g.k_w)
            .map(|kw| {
                let s = Shift::new(g, 0, kw).expect("stride-1 same-width geometry");
                let mut keep = vec![false; ho * wo];
                for row in keep.chunks_exact_mut(wo) {
                    row[s.ow_lo..s.ow_hi].fill(true);
                }
                keep
            })
            .collect();
        for kh in 0..g.k_h {
            for (kw, keep) in keeps.iter().enumerate() {
                let s = Shift::new(g, kh, kw).expect("stride-1 same-width geometry");
                let r = (ci * g.k_h + kh) * g.k_w + kw;
                let row = &col[r * p..][..p];
                let sides = s.ow_lo > 0 || s.ow_hi < wo;
                let (len, keep) = (s.hi - s.lo, &keep[s.lo..s.hi]);
                for n in 0..nb {
                    let dst = &mut dxc[n * hw + s.src_lo..][..len];
                    let src = &row[n * ho * wo + s.lo..][..len];
                    if sides {
                        for ((d, &v), &k) in dst.iter_mut().zip(src).zip(keep) {
                            *d += if k { v } else { 0.0 };
                        }
                    } else {
                        dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                    }
                }
            }
        }
        return;
    }
    for kh in 0..g.k_h {
        for kw in 0..g.k_w {
            let r = (ci * g.k_h + kh) * g.k_w + kw;
            let row = &col[r * p..][..p];
            for n in 0..nb {
                let plane = &mut dxc[n * hw..][..hw];
                let src = &row[n * ho * wo..][..ho * wo];
                for oh in 0..ho {
                    let ih = (oh * g.stride + kh) as isize - g.pad as isize;
                    if ih < 0 || ih >= g.h_in as isize {
                        continue;
                    }
                    let dst = &mut plane[ih as usize * g.w_in..][..g.w_in];
                    let s = &src[oh * wo..][..wo];
                    if g.stride == 1 {
                        // The valid ow form one run (as in im2col): a slice add that
                        // vectorizes, each element summed in the same order as before.
                        let lo = g.pad.saturating_sub(kw).min(wo);
                        let hi = (g.w_in + g.pad).saturating_sub(kw).min(wo).max(lo);
                        if hi == lo {
                            continue;
                        }
                        let start = lo + kw - g.pad;
                        dst[start..start + (hi - lo)]
                            .iter_mut()
                            .zip(&s[lo..hi])
                            .for_each(|(d, &v)| *d += v);
                        continue;
                    }
                    for (ow, &v) in s.iter().enumerate() {
                        let iw = (ow * g.stride + kw) as isize - g.pad as isize;
                        if iw >= 0 && iw < g.w_in as isize {
                            dst[iw as usize] += v;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::rng::Rng;

    fn geoms() -> Vec<ConvGeom> {
        let mk = |n, c_in, h_in, w_in, k, stride, pad| ConvGeom {
            n,
            c_in,
            h_in,
            w_in,
            k_h: k,
            k_w: k,
            stride,
            pad,
        };
        vec![
            mk(2, 1, 28, 28, 5, 1, 2),
            mk(3, 6, 14, 14, 5, 1, 0),
            mk(2, 3, 8, 8, 3, 1, 1),
            mk(2, 4, 9, 7, 3, 2, 1),
            mk(1, 2, 5, 5, 1, 2, 0),
            // a kernel wider than the padded input reaches: some kw have no valid column
            mk(1, 2, 1, 1, 5, 1, 2),
            // same width, fewer output rows than input rows (k_h > 2·pad + 1): the shifted runs
            ConvGeom {
                k_h: 5,
                ..mk(3, 2, 6, 5, 3, 1, 1)
            },
            mk(2, 3, 4, 2, 3, 1, 1),
        ]
    }

    #[test]
    fn im2col_matches_reference() {
        let mut rng = Rng::new(1);
        for g in geoms() {
            let x: Vec<f32> = (0..g.c_in * g.n * g.h_in * g.w_in)
                .map(|_| rng.uniform())
                .collect();
            let mut col = vec![f32::NAN; g.rows() * g.cols()];
            im2col(&x, &g, &mut col);
            assert_eq!(col, reference::im2col(&x, &g), "{g:?}");
        }
    }

    #[test]
    fn sample_ranges_are_blocks_of_the_whole() {
        let mut rng = Rng::new(4);
        for g in geoms().into_iter().filter(|g| g.n > 1) {
            let x: Vec<f32> = (0..g.c_in * g.n * g.h_in * g.w_in)
                .map(|_| rng.uniform())
                .collect();
            let mut col = vec![0.0; g.rows() * g.cols()];
            im2col(&x, &g, &mut col);
            let c: Vec<f32> = (0..col.len()).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let mut dx_whole = vec![0.0; x.len()];
            col2im(&c, &g, &mut dx_whole);
            let pp = g.positions();
            let mut dx = vec![f32::NAN; x.len()];
            for s in [0..1, 1..g.n] {
                let cols = s.len() * pp;
                let mut part = vec![f32::NAN; g.rows() * cols];
                im2col_samples(&x, &g, s.clone(), &mut part);
                let mut c_part = vec![0.0; part.len()];
                for r in 0..g.rows() {
                    let want = &col[r * g.cols() + s.start * pp..][..cols];
                    assert_eq!(&part[r * cols..][..cols], want, "{g:?} {s:?}");
                    c_part[r * cols..][..cols]
                        .copy_from_slice(&c[r * g.cols() + s.start * pp..][..cols]);
                }
                col2im_samples(&c_part, &g, s, &mut dx);
            }
            assert_eq!(dx, dx_whole, "{g:?}");
        }
    }

    #[test]
    fn col2im_matches_reference_exactly() {
        let mut rng = Rng::new(3);
        for g in geoms() {
            let c: Vec<f32> = (0..g.rows() * g.cols())
                .map(|_| rng.uniform_in(-1.0, 1.0))
                .collect();
            let mut dx = vec![f32::NAN; g.c_in * g.n * g.h_in * g.w_in];
            col2im(&c, &g, &mut dx);
            assert_eq!(dx, reference::col2im(&c, &g), "{g:?}");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), c> == <x, col2im(c)> for all x, c.
        let mut rng = Rng::new(2);
        for g in geoms() {
            let x: Vec<f32> = (0..g.c_in * g.n * g.h_in * g.w_in)
                .map(|_| rng.uniform_in(-1.0, 1.0))
                .collect();
            let c: Vec<f32> = (0..g.rows() * g.cols())
                .map(|_| rng.uniform_in(-1.0, 1.0))
                .collect();
            let mut col = vec![0.0; c.len()];
            im2col(&x, &g, &mut col);
            let mut dx = vec![f32::NAN; x.len()];
            col2im(&c, &g, &mut dx);
            let lhs: f64 = col.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| (a * b) as f64).sum();
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()),
                "{g:?}: {lhs} vs {rhs}"
            );
        }
    }
}
