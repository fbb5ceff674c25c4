//! `Conv2d`: im2col, then the matrix core (`W[c_out, k·k·c_in] · col`), output already CNHW.
//!
//! The column matrix is never formed whole (except by a 1×1 conv, whose input is its column
//! matrix): forward and backward run over blocks of a few samples (`engine::COL_BLOCK` values of
//! columns), each block on one thread with the blocks in parallel, so each block of `col` is
//! written and read while still in that core's cache, and backward recomputes its blocks from
//! the kept input instead of storing `col` (k·k times the input). On the arrays a block fills
//! its columns of every array's product, and the transposed read goes by blocks too
//! (`TiledMatrix::backward_blocks`). Forward and dJ/dx are bit-identical to the whole-matrix
//! products, and dW adds the same blocks' products in the same order on every path, whatever
//! the thread count.

use super::engine::sample_blocks;
use super::{Ctx, Layer, MatrixCore, ParamView};
use crate::kernels::gemm::{ColumnBlock, Threads, View, WeightGrad, matmul_into};
use crate::kernels::im2col::{ConvGeom, col2im, col2im_block, im2col, im2col_block};
use crate::kernels::{with_buffers, zeros};
use crate::quant::BitWidths;
use crate::rng::Rng;
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::ops::Range;

/// Hyper-parameters of a square convolution.
#[derive(Clone, Debug)]
pub struct Conv2dConfig {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub bias: bool,
}

impl Conv2dConfig {
    pub fn new(c_in: usize, c_out: usize, kernel: usize) -> Self {
        Conv2dConfig {
            c_in,
            c_out,
            kernel,
            stride: 1,
            pad: 0,
            bias: true,
        }
    }
    pub fn with_stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    pub fn with_pad(mut self, p: usize) -> Self {
        self.pad = p;
        self
    }
    pub fn with_bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    pub fn init(self, name: &str, index: u64, bits: BitWidths, rng: &mut Rng) -> Conv2d {
        let rows = self.c_in * self.kernel * self.kernel;
        Conv2d {
            name: name.to_string(),
            core: MatrixCore::new(index, rows, self.c_out, self.bias, bits, rng),
            cfg: self,
            geom: None,
            whole_matrix: false,
            input: Vec::new(),
        }
    }
}

pub struct Conv2d {
    name: String,
    pub cfg: Conv2dConfig,
    pub core: MatrixCore,
    geom: Option<ConvGeom>,
    /// Form the whole column matrix even where blocks would do (comparisons, tests).
    pub whole_matrix: bool,
    /// Blockwise passes only: the input of the last training forward (backward's im2col).
    input: Vec<f32>,
}

impl Conv2d {
    fn geom(&self, x: &Tensor) -> ConvGeom {
        assert_eq!(
            x.shape.len(),
            4,
            "{}: input must be [c, n, h, w]",
            self.name
        );
        assert_eq!(x.dim(0), self.cfg.c_in, "{}: input channels", self.name);
        ConvGeom {
            n: x.dim(1),
            c_in: self.cfg.c_in,
            h_in: x.dim(2),
            w_in: x.dim(3),
            k_h: self.cfg.kernel,
            k_w: self.cfg.kernel,
            stride: self.cfg.stride,
            pad: self.cfg.pad,
        }
    }

    /// Whether this pass runs block by block (see the module docs): every conv with a real
    /// im2col (not a 1×1 conv), on the arrays or not. LeNet-5's small convs too: measured
    /// 0-6% faster than whole (thirteenth session).
    fn blockwise(&self, g: &ConvGeom) -> bool {
        let one_by_one = g.k_h == 1 && g.stride == 1 && g.pad == 0;
        !(self.whole_matrix || one_by_one)
    }

    /// The blocks of samples of the column matrix.
    fn blocks(g: &ConvGeom) -> impl Iterator<Item = Range<usize>> {
        sample_blocks(g.rows(), g.positions(), g.n)
    }

    fn forward_blockwise(&mut self, x: Tensor, g: ConvGeom, ctx: &Ctx) -> Tensor {
        let (rows, cols, pp) = (g.rows(), self.cfg.c_out, g.positions());
        let blocks: Vec<Range<usize>> = Self::blocks(&g).collect();
        let block_cols: Vec<Range<usize>> =
            blocks.iter().map(|b| b.start * pp..b.end * pp).collect();
        let ld = g.n * pp;
        let (y, pre) = self.core.forward_with(g.n, pp, ctx, |w, spans, parts| {
            // Blocks run in parallel, each on one thread: im2col, then each span's product
            // straight into the block's columns of its part.
            let mut outs: Vec<Vec<ColumnBlock>> = blocks.iter().map(|_| Vec::new()).collect();
            for part in parts.iter_mut() {
                for (o, cb) in outs
                    .iter_mut()
                    .zip(ColumnBlock::split(part, ld, &block_cols))
                {
                    o.push(cb);
                }
            }
            blocks.par_iter().zip(outs).for_each(|(b, mut out)| {
                with_buffers(|[col, ..]| {
                    let pc = b.len() * pp;
                    col.resize(rows * pc, 0.0);
                    im2col_block(&x.data, &g, b.clone(), col);
                    for (sp, out) in spans.iter().zip(&mut out) {
                        let wv = View::block(w, rows, sp.c0, sp.r0);
                        out.product(wv, View::block(col, pc, sp.r0, 0), sp.r1 - sp.r0);
                    }
                })
            });
        });
        self.geom = Some(g);
        self.input = if ctx.train { x.data } else { Vec::new() };
        let mut t = Tensor::new(vec![cols, g.n, g.h_out(), g.w_out()], y);
        t.pre_quant = pre;
        t
    }

    fn backward_blockwise(&mut self, dy: Tensor, g: ConvGeom, ctx: &Ctx) -> Tensor {
        let (rows, cols, p, pp) = (g.rows(), self.cfg.c_out, g.cols(), g.positions());
        let input = std::mem::take(&mut self.input);
        assert_eq!(
            input.len(),
            g.c_in * g.n * g.h_in * g.w_in,
            "conv backward input"
        );
        let blocks: Vec<Range<usize>> = Self::blocks(&g).collect();
        let need_dx = self.core.input_grad;
        let mut dx = zeros(if need_dx { input.len() } else { 0 });
        let hw = g.h_in * g.w_in;
        // Each block on one thread: recompute its im2col, form its dW product and, given `W_q`
        // (ideal engine), its part of dJ/dx: `W_qᵀ·g` col2im'd into its samples. The dW
        // products are added in block order.
        // `gw` forms dW and `gq` dJ/dx (`MatrixCore::backward_fused`; the same error elsewhere)
        let block_pass = |gw: &[f32], gq: &[f32], dw: &mut [f32], dxs, w_q: Option<&[f32]>| {
            let products: Vec<Vec<f32>> = blocks
                .par_iter()
                .zip(dxs)
                .map(|(b, mut dxb): (&Range<usize>, Vec<&mut [f32]>)| {
                    with_buffers(|[col, buf, ..]| {
                        let (j0, pc) = (b.start * pp, b.len() * pp);
                        col.resize(rows * pc, 0.0);
                        im2col_block(&input, &g, b.clone(), col);
                        let mut product = Vec::new();
                        let (xb, gb) = (View::block(col, pc, 0, 0), View::block(gq, p, 0, j0));
                        let gwb = View::block(gw, p, 0, j0);
                        WeightGrad::block_product(xb, gwb, rows, cols, pc, &mut product);
                        if let Some(w_q) = w_q {
                            buf.resize(rows * pc, 0.0);
                            let wt = View::block(w_q, rows, 0, 0).t();
                            matmul_into(buf, pc, wt, gb, rows, pc, cols, false, Threads::One);
                            col2im_block(buf, &g, b.len(), &mut dxb);
                        }
                        product
                    })
                })
                .collect();
            let mut acc = WeightGrad::new(rows, cols);
            for product in &products {
                acc.add_product(product);
            }
            acc.finish(dw);
        };
        let no_dx = || blocks.iter().map(|_| Vec::new()).collect();
        if self.core.xbar.is_some() {
            // the arrays' transposed read, block by block, col2im'd into each block's samples
            let dxs = split_blocks(&mut dx, g.c_in, &blocks, hw);
            let to_dx = |b: &Range<usize>, read: &[f32], mut dxb: Vec<&mut [f32]>| {
                col2im_block(read, &g, b.len(), &mut dxb);
            };
            let weight_grad = |gq: &[f32], dw: &mut [f32]| block_pass(gq, gq, dw, no_dx(), None);
            self.core
                .backward_blocks(dy.data, ctx, weight_grad, &blocks, dxs, to_dx);
        } else if self.core.read_errors {
            // dJ/dx through the error ADC, whose range needs the whole read: col2im'd whole
            let weight_grad = |gq: &[f32], dw: &mut [f32]| block_pass(gq, gq, dw, no_dx(), None);
            let dcol = self.core.backward_with(dy.data, ctx, weight_grad);
            if need_dx {
                col2im(&dcol, &g, &mut dx);
                self.core.recycle(dcol);
            }
        } else {
            let dxs = split_blocks(&mut dx, g.c_in, &blocks, hw);
            let fused = |gw: &[f32], gq: &[f32], w_q: &[f32], dw: &mut [f32]| {
                block_pass(gw, gq, dw, dxs, need_dx.then_some(w_q))
            };
            self.core.backward_fused(dy.data, ctx, fused);
        }
        if !need_dx {
            return Tensor::new(vec![0], Vec::new());
        }
        Tensor::new(vec![g.c_in, g.n, g.h_in, g.w_in], dx)
    }
}

/// Splits a `[channels, n·unit]` array into each sample block's parts: for block `b`, the
/// `channels` slices of `b.len()·unit` values that hold its samples (disjoint, so blocks can
/// write them in parallel). An empty array gives each block no parts.
fn split_blocks<'a>(
    data: &'a mut [f32],
    channels: usize,
    blocks: &[Range<usize>],
    unit: usize,
) -> Vec<Vec<&'a mut [f32]>> {
    let mut parts: Vec<Vec<&mut [f32]>> = blocks
        .iter()
        .map(|_| Vec::with_capacity(channels))
        .collect();
    if channels == 0 || data.is_empty() {
        return parts; // nothing to split: an empty part list per block
    }
    let len = data.len() / channels;
    for mut rest in data.chunks_mut(len) {
        for (b, part) in blocks.iter().zip(&mut parts) {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(b.len() * unit);
            part.push(head);
            rest = tail;
        }
    }
    parts
}

impl Layer for Conv2d {
    fn name(&self) -> &str {
        &self.name
    }

    /// # Shapes
    /// `[c_in, n, h, w]` → `[c_out, n, h_out, w_out]`.
    fn forward(&mut self, x: Tensor, ctx: &Ctx) -> Tensor {
        let g = self.geom(&x);
        if self.blockwise(&g) {
            return self.forward_blockwise(x, g, ctx);
        }
        let col = if g.k_h == 1 && g.stride == 1 && g.pad == 0 {
            x.data // a 1×1 conv reads its input as the column matrix directly
        } else {
            // Reuse last step's column matrix (im2col overwrites every value): a fresh
            // allocation of this size is zero pages the kernel must fault in at every step.
            let mut col = self.core.take_input_buffer();
            col.resize(g.rows() * g.cols(), 0.0);
            im2col(&x.data, &g, &mut col);
            col
        };
        let (y, pre) = self.core.forward(col, g.n, g.positions(), ctx);
        self.geom = Some(g);
        let mut t = Tensor::new(vec![self.cfg.c_out, g.n, g.h_out(), g.w_out()], y);
        t.pre_quant = pre;
        t
    }

    fn backward(&mut self, dy: Tensor, ctx: &Ctx) -> Tensor {
        let g = self.geom.expect("conv backward before forward");
        if self.blockwise(&g) {
            return self.backward_blockwise(dy, g, ctx);
        }
        let dcol = self.core.backward(dy.data, ctx);
        let shape = vec![g.c_in, g.n, g.h_in, g.w_in];
        if dcol.is_empty() {
            return Tensor::new(vec![0], Vec::new());
        }
        if g.k_h == 1 && g.stride == 1 && g.pad == 0 {
            return Tensor::new(shape, dcol);
        }
        let mut dx = zeros(g.c_in * g.n * g.h_in * g.w_in);
        col2im(&dcol, &g, &mut dx);
        self.core.recycle(dcol);
        Tensor::new(shape, dx)
    }

    fn params(&mut self) -> Vec<ParamView<'_>> {
        self.core.params()
    }

    fn buffers(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        self.core.buffers()
    }

    fn matrix(&mut self) -> Option<&mut MatrixCore> {
        Some(&mut self.core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockwise_passes_equal_the_whole_matrix() {
        // 40 samples of 32×32×32 take several blocks of columns (1 per block at stride 1, 3 at
        // stride 2): the same sums in the same order as the whole matrix, bit for bit; also
        // with the error ADC (dJ/dx read whole, dW block by block).
        for (bits, stride, read_errors) in [
            (BitWidths::FP32, 1, false),
            (BitWidths::uniform(4), 2, false),
            (BitWidths::uniform(4), 1, true),
        ] {
            let make = || {
                let mut c = Conv2dConfig::new(32, 8, 3)
                    .with_pad(1)
                    .with_stride(stride)
                    .init("c", 1, bits, &mut Rng::new(5));
                c.core.read_errors = read_errors;
                c
            };
            let (mut a, mut b) = (make(), make());
            b.whole_matrix = true;
            let mut rng = Rng::new(6);
            let n = 40;
            let x = Tensor::new(
                vec![32, n, 32, 32],
                (0..32 * n * 1024).map(|_| rng.uniform()).collect(),
            );
            let ctx = Ctx::train(0, 1);
            let (ya, yb) = (a.forward(x.clone(), &ctx), b.forward(x, &ctx));
            let g = a.geom.unwrap();
            assert!(a.blockwise(&g) && !b.blockwise(&g) && Conv2d::blocks(&g).count() > 1);
            assert_eq!(ya.data, yb.data, "{bits:?} forward");
            let dy = Tensor::new(
                ya.shape.clone(),
                (0..ya.len()).map(|_| rng.uniform_in(-1.0, 1.0)).collect(),
            );
            let (da, db) = (a.backward(dy.clone(), &ctx), b.backward(dy, &ctx));
            assert_eq!(da.data, db.data, "{bits:?} dJ/dx");
            for (u, v) in a.core.dw.iter().zip(&b.core.dw) {
                assert!(
                    (u - v).abs() <= 1e-4 * (1.0 + v.abs()),
                    "{bits:?} dW {u} vs {v}"
                );
            }
        }
    }

    #[test]
    fn blockwise_passes_do_not_depend_on_the_thread_count() {
        // Blocks run in parallel, each on one thread, and dW adds them in block order: one
        // thread and three give the same bits.
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut c = Conv2dConfig::new(16, 8, 3).with_pad(1).init(
                    "c",
                    1,
                    BitWidths::FP32,
                    &mut Rng::new(5),
                );
                let mut rng = Rng::new(6);
                let n = 24;
                let x = Tensor::new(
                    vec![16, n, 32, 32],
                    (0..16 * n * 1024).map(|_| rng.uniform()).collect(),
                );
                let ctx = Ctx::train(0, 1);
                let y = c.forward(x, &ctx);
                assert!(Conv2d::blocks(&c.geom.unwrap()).count() > 3);
                let dy = Tensor::new(
                    y.shape.clone(),
                    (0..y.len()).map(|_| rng.uniform_in(-1.0, 1.0)).collect(),
                );
                let dx = c.backward(dy, &ctx);
                (y.data, dx.data, c.core.dw.clone())
            })
        };
        assert_eq!(run(1), run(3));
    }
}
