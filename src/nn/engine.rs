//! `MatrixCore`: the `y = α·CO(W_q · x) + b` product shared by Conv2d and Linear, with the W, CO
//! and G quantization points of spec §2 around it. This is the seam where the crossbar arrays
//! plug in: the ideal engine here runs the software quantizers around one GEMM.
//!
//! Shapes: latent weights `w` are `[cols, rows]` (`cols` = output channels = crossbar columns,
//! `rows` = `k·k·c_in` or `in` = crossbar rows); the input is `[rows, n·positions]`, the output
//! `[cols, n·positions]`, where `positions` is the number of output pixels per sample (1 for FC).
//!
//! `α` is a digital per-layer scale applied after the ADC. DoReFa weights lie in [−1, 1] whatever
//! the latent scale, so without it the column sums of a wide layer would saturate the [0, 1] clip
//! of the next activation, and the logits could never grow past a bound fixed by the weight grid.
//! `α` is initialised from data (`Model::calibrate`) and then trained (no decay) through its
//! logarithm `log_alpha`, so a step changes it by a ratio and it can never turn negative.

use crate::counters::LayerCounters;
use crate::crossbar::CrossbarConfig;
use crate::crossbar::array::{Input, ReadSpec, Span, TiledMatrix, count_digital};
use crate::kernels::gemm::{Trans, View, WeightGrad, matmul};
use crate::kernels::{lane_dot, lane_sum, zeros};
use crate::nn::Ctx;
use crate::quant::gradient::{GQuantizer, GRounding, GScale, RoundingKey};
use crate::quant::output::Adc;
use crate::quant::output::{CoRange, Comparator, Polarity};
use crate::quant::{BitWidths, Bits, gradient, output, weight};
use crate::rng::Rng;
use rayon::prelude::*;
use std::borrow::Cow;
use std::ops::Range;

/// Values in one block of a column matrix (1 MB): small enough that a block stays in a core's
/// L2 cache between the im2col that writes it and the GEMM that reads it (`Conv2d`), while
/// each GEMM still gets a few hundred columns. Measured on ResNet-20 (fp32 step, 2 threads,
/// Intel machine): 2^18 302 ms, 2^17 343, 2^19 320, 2^20 333, 2^21 349.
pub const COL_BLOCK: usize = 1 << 18;

/// The blocks of samples (about `COL_BLOCK` values of a `[rows, n·positions]` input each, in
/// order) that `Conv2d`'s blockwise passes take and every weight gradient sums over.
pub fn sample_blocks(
    rows: usize,
    positions: usize,
    n: usize,
) -> impl Iterator<Item = Range<usize>> {
    let step = (COL_BLOCK / (rows * positions).max(1)).clamp(1, n.max(1));
    (0..n).step_by(step).map(move |s0| s0..(s0 + step).min(n))
}

pub struct MatrixCore {
    /// Ideal engine only: read the propagated error `dx` through one ADC of
    /// `backward_adc_bits` with the CO range rule, as a single array read in one phase would
    /// (`RunConfig::ideal_error_adc`).
    pub read_errors: bool,
    /// Index of the layer in its model: keys its random streams.
    pub index: u64,
    pub rows: usize,
    pub cols: usize,
    /// Latent fp32 weights `[cols, rows]`, in digital memory.
    pub w: Vec<f32>,
    pub dw: Vec<f32>,
    /// Per-output bias (digital); empty when the layer has none.
    pub bias: Vec<f32>,
    pub dbias: Vec<f32>,
    /// How a 1-bit ADC reads (`quant::output`): with `Centered`, each column's running
    /// comparator reference is kept in `co_centre` and the bias is the comparator's threshold.
    pub comparator: Comparator,
    /// Read a multi-bit ADC around the column's reference too (`RunConfig::centre_adc`); set
    /// through `set_centre_adc`, which also gives the layer its references.
    centre_adc: bool,
    pub co_centre: Vec<f32>,
    /// Backward of a centred read through the batch mean it subtracts
    /// (`RunConfig::centred_backward`): each column's mean error is taken out of the weight
    /// gradient (`weight_errors`). Off, the reference is held constant.
    pub centred_backward: bool,
    /// The forward ADC's polarity (`quant::output::Polarity`), set by the model where its output
    /// goes straight into the activation's clip (`Model::set_quant_options`); read through
    /// `co_polarity`.
    pub polarity: Polarity,
    /// The model's last matrix layer, whose outputs are the logits: its α, the softmax's
    /// temperature, is learned even behind a centred comparator (`Model::set_quant_options`).
    pub logits: bool,
    /// log α, one element (see module docs).
    pub log_alpha: Vec<f32>,
    pub dlog_alpha: Vec<f32>,
    /// Running estimate of the CO range `s` (one element; 0 until the first training batch),
    /// used in evaluation. See `quant::output`.
    pub co_range: Vec<f32>,
    pub bits: BitWidths,
    /// How the CO (ADC) range is set from a training batch.
    pub co_rule: CoRange,
    /// Which stochastic grid the G quantizer uses.
    pub g_rounding: GRounding,
    /// Over which errors the G quantizer takes its scale.
    pub g_scale: GScale,
    /// Whether backward computes dJ/dx (false for the first layer).
    pub input_grad: bool,
    /// The arrays this matrix runs on (`--hardware rram`); `None` = ideal software products.
    pub xbar: Option<Box<TiledMatrix>>,
    /// Bits of the row ADCs in backprop part 1 (crossbar only).
    pub backward_adc_bits: Bits,
    /// Operation counts of the training steps so far.
    pub counters: LayerCounters,
    w_q: Vec<f32>,
    w_d: Vec<f32>,
    x: Vec<f32>,
    /// CO(W_q·x) of the last training forward: the gradient of α.
    co_q: Vec<f32>,
    /// A buffer handed back by the layer (`recycle`) for the next dJ/dx.
    scratch: Vec<f32>,
    /// Where the CO straight-through estimator passes (values inside the ADC range); `None`
    /// when all do.
    co_pass: Option<Vec<u8>>,
    n: usize,
    positions: usize,
}

impl MatrixCore {
    /// He-uniform initial weights (bound `sqrt(6/rows)`), zero bias, `α = 1`.
    pub fn new(
        index: u64,
        rows: usize,
        cols: usize,
        bias: bool,
        bits: BitWidths,
        rng: &mut Rng,
    ) -> Self {
        let bound = (6.0 / rows as f32).sqrt();
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| rng.uniform_in(-bound, bound))
            .collect();
        let nb = if bias { cols } else { 0 };
        MatrixCore {
            index,
            centred_backward: false,
            rows,
            cols,
            dw: vec![0.0; w.len()],
            w,
            bias: vec![0.0; nb],
            dbias: vec![0.0; nb],
            log_alpha: vec![0.0],
            dlog_alpha: vec![0.0],
            co_range: vec![0.0],
            comparator: Comparator::Centered,
            centre_adc: false,
            polarity: Polarity::Bipolar,
            logits: false,
            co_centre: if bits.co == Bits::K(1) {
                vec![f32::NAN; cols]
            } else {
                Vec::new()
            },
            bits,
            co_rule: CoRange::Max,
            g_rounding: GRounding::Dorefa,
            g_scale: GScale::Sample,
            input_grad: true,
            xbar: None,
            backward_adc_bits: bits.co,
            read_errors: false,
            counters: LayerCounters::default(),
            w_q: Vec::new(),
            w_d: Vec::new(),
            x: Vec::new(),
            co_q: Vec::new(),
            co_pass: None,
            scratch: Vec::new(),
            n: 0,
            positions: 0,
        }
    }

    /// Put this matrix on arrays configured by `cfg`.
    pub fn attach_crossbar(&mut self, cfg: &CrossbarConfig, seed: u64) {
        self.xbar = Some(Box::new(TiledMatrix::new(
            self.index, self.rows, self.cols, cfg, seed,
        )));
        self.backward_adc_bits = cfg.backward_bits(self.bits.co);
    }

    /// The input matrix kept from the last training step, to be refilled by the next one
    /// (empty after an evaluation pass).
    pub fn take_input_buffer(&mut self) -> Vec<f32> {
        std::mem::take(&mut self.x)
    }

    /// Give back a dJ/dx buffer once it has been consumed, for the next backward.
    pub fn recycle(&mut self, buf: Vec<f32>) {
        self.scratch = buf;
    }

    /// Whether the ADC reads around a per-column reference that includes the bias: a centred
    /// comparator (1-bit CO, `Comparator::Centered`), which reads ±1, or a centred multi-bit
    /// ADC (`centre_adc`), which keeps its range. α then stays at its calibrated value — it only
    /// maps the reads onto the next DAC's range (learned, it let a comparator's two levels
    /// leave [0, 1], where the activation's clip blocks every error) — except on the logits,
    /// where it is the softmax's temperature: fixed at 0.5, the loss could not fall below 1.46.
    pub fn centered(&self) -> bool {
        match self.bits.co {
            Bits::K(1) => self.comparator == Comparator::Centered,
            Bits::K(_) => self.centre_adc,
            _ => false,
        }
    }

    /// Read a multi-bit ADC around each column's reference (`RunConfig::centre_adc`).
    pub fn set_centre_adc(&mut self, on: bool) {
        self.centre_adc = on;
        if self.centered() && self.co_centre.is_empty() {
            self.co_centre = vec![f32::NAN; self.cols];
        }
    }

    /// The polarity the forward ADCs read with: `polarity`, except that a centred read stays
    /// bipolar (the model leaves the logits and batch-norm inputs bipolar).
    pub fn co_polarity(&self) -> Polarity {
        if self.centered() {
            Polarity::Bipolar
        } else {
            self.polarity
        }
    }

    /// The digital output scale α.
    pub fn alpha(&self) -> f32 {
        self.log_alpha[0].exp()
    }

    pub fn set_alpha(&mut self, alpha: f32) {
        self.log_alpha[0] = alpha.ln();
    }

    /// The latent weights quantized to W bits (what `program` writes), computed afresh.
    pub fn quantized_weights(&mut self) -> Vec<f32> {
        self.refresh_w_q();
        self.w_q.clone()
    }

    /// The weights as the cells hold them (valid after a forward pass).
    pub fn w_q(&self) -> &[f32] {
        &self.w_q
    }

    /// Quantize the latent weights to W bits (done at each forward: weights change every step).
    fn refresh_w_q(&mut self) {
        self.w_q.resize(self.w.len(), 0.0);
        self.w_d.resize(self.w.len(), 0.0);
        weight::quantize(&self.w, self.bits.w, &mut self.w_q, &mut self.w_d);
    }

    /// `x` is `[rows, n·positions]`; returns `[cols, n·positions]`, and in training with CO
    /// quantized also the output before the CO quantizer (see `Tensor::pre_quant`).
    pub fn forward(
        &mut self,
        x: Vec<f32>,
        n: usize,
        positions: usize,
        ctx: &Ctx,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        assert_eq!(
            x.len(),
            self.rows * n * positions,
            "matrix input has the wrong size"
        );
        let out = self.forward_from(Input::Matrix(&x), n, positions, ctx);
        if ctx.train {
            self.x = x;
        }
        out
    }

    /// `forward` with the products supplied by the caller, for an input it keeps in another
    /// form (a convolution that forms its column matrix a few samples at a time, `Conv2d`):
    /// `products(w, spans, parts)` as `crossbar::array::Input::Products` says — on the arrays
    /// one span per array with the weights the arrays read, in the ideal engine one span, the
    /// whole `W_q`. The backward of such a pass is `backward_with`, `backward_blocks` (the
    /// arrays' transposed read by blocks) or `backward_fused` (ideal engine, no error ADC).
    pub fn forward_with(
        &mut self,
        n: usize,
        positions: usize,
        ctx: &Ctx,
        mut products: impl FnMut(&[f32], &[Span], &mut [Vec<f32>]),
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let out = self.forward_from(Input::Products(&mut products), n, positions, ctx);
        self.x = Vec::new();
        out
    }

    /// The forward from an input matrix or from a caller's products.
    fn forward_from(
        &mut self,
        input: Input<'_>,
        n: usize,
        positions: usize,
        ctx: &Ctx,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let p = n * positions;
        self.refresh_w_q();
        let (rows, cols) = (self.rows, self.cols);
        let centred = self.centered();
        // a centred 1-bit ADC reads ±1 with its own straight-through window
        let comparator = centred && self.bits.co == Bits::K(1);
        let polarity = self.co_polarity();
        if ctx.train {
            // momentum rule and W re-quantization: ~8 digital operations per weight
            self.counters.update.digital_ops += 8 * (rows * cols) as u64;
            self.counters.forward.digital_ops += 2 * (cols * p) as u64; // α and bias
        }
        let mut y;
        // `raw`: the outputs before the ADC; `adc`: the conversion still to apply to `y`.
        let (raw, adc) = if let Some(xb) = self.xbar.as_mut() {
            self.counters.update.cell_writes +=
                xb.program(&self.w_q, self.bits.w, ctx.seed, ctx.step);
            let mut scratch = Default::default();
            let counts = if ctx.train {
                &mut self.counters.forward
            } else {
                &mut scratch
            };
            let centre = centred.then_some(self.bias.as_slice());
            let (out, pass, raw) = xb.forward(
                input,
                p,
                self.bits.a,
                self.bits.co,
                self.co_rule,
                polarity,
                centre,
                ctx.train,
                ctx.refresh_references,
                ctx.seed,
                ctx.step,
                counts,
            );
            y = out;
            if ctx.train {
                self.co_pass = pass;
            }
            (raw, Adc::Ideal)
        } else {
            y = zeros(cols * p);
            match input {
                Input::Matrix(x) => matmul(
                    &mut y,
                    &self.w_q,
                    Trans::No,
                    x,
                    Trans::No,
                    cols,
                    p,
                    rows,
                    false,
                ),
                Input::Products(f) => {
                    let whole = [Span::whole(rows, cols)];
                    f(&self.w_q, &whole, std::slice::from_mut(&mut y));
                }
            }
            if centred {
                output::centre_rows(
                    &mut y,
                    p,
                    &mut self.co_centre,
                    &self.bias,
                    1.0,
                    ctx.train,
                    ctx.refresh_references,
                );
            }
            let s = output::running_range(&mut self.co_range[0], ctx.train, || {
                polarity.batch_range(&y, self.bits.co, self.co_rule)
            });
            if ctx.train {
                count_digital(&mut self.counters, rows, cols, p, self.input_grad);
                self.co_pass = if comparator {
                    output::window_mask(&y, (-s, s))
                } else {
                    output::pass_mask(&y, self.bits.co, polarity, s)
                };
            }
            (
                None,
                polarity.adc(self.bits.co, if comparator { 1.0 } else { s }),
            )
        };
        // One pass per output row: the ADC (ideal engine), then y = α·co_q + b; in training also
        // keep co_q (for α's gradient) and α·raw + b (the activation's straight-through mask).
        // A centred comparator's bias is its threshold, so its ±1 reads are centred on the
        // middle of the next DAC's [0, 1] instead.
        let alpha = self.alpha();
        let keep_pre = ctx.train && !self.bits.co.is_fp32();
        // the arrays' `raw` (kept exactly when `pre` is) becomes `pre` in place
        let raw_in_pre = raw.is_some();
        let mut pre = match raw {
            Some(raw) => raw,
            None if keep_pre => zeros(cols * p),
            None => Vec::new(),
        };
        if ctx.train {
            self.co_q.resize(cols * p, 0.0);
        }
        // `read` is the ADC specialised to its variant, so the per-row loop has no branch on it.
        let bias = &self.bias;
        crate::with_adc!(adc, read => {
            // loops without a per-value branch, so each vectorizes
            let row = |c: usize, ys: &mut [f32], cq: Option<&mut [f32]>, pr: Option<&mut [f32]>| {
                let b = if centred {
                    0.5
                } else {
                    bias.get(c).copied().unwrap_or(0.0)
                };
                match pr {
                    Some(pr) if raw_in_pre => pr.iter_mut().for_each(|r| *r = alpha * *r + b),
                    Some(pr) => pr.iter_mut().zip(&*ys).for_each(|(r, &v)| *r = alpha * v + b),
                    None => {}
                }
                match cq {
                    Some(cq) => ys.iter_mut().zip(cq).for_each(|(v, cq)| {
                        let q = read(*v);
                        *cq = q;
                        *v = alpha * q + b;
                    }),
                    None => ys.iter_mut().for_each(|v| *v = alpha * read(*v) + b),
                }
            };
            let ys = y.par_chunks_mut(p).enumerate();
            match (ctx.train, keep_pre) {
                (true, true) => ys
                    .zip(self.co_q.par_chunks_mut(p))
                    .zip(pre.par_chunks_mut(p))
                    .for_each(|(((c, ys), cq), pr)| row(c, ys, Some(cq), Some(pr))),
                (true, false) => ys
                    .zip(self.co_q.par_chunks_mut(p))
                    .for_each(|((c, ys), cq)| row(c, ys, Some(cq), None)),
                (false, _) => ys.for_each(|(c, ys)| row(c, ys, None, None)),
            }
        });
        let pre = keep_pre.then_some(pre);
        if ctx.train {
            self.n = n;
            self.positions = positions;
        }
        (y, pre)
    }

    /// `dy` is `[cols, n·positions]`; fills `dw`, `dbias`; returns dJ/dx `[rows, n·positions]`
    /// (empty when `input_grad` is false).
    pub fn backward(&mut self, dy: Vec<f32>, ctx: &Ctx) -> Vec<f32> {
        let x = std::mem::take(&mut self.x);
        let (rows, cols, positions, n) = (self.rows, self.cols, self.positions, self.n);
        let dx = self.backward_with(dy, ctx, |g, dw| {
            // Backprop part 2: dW_q = g_q · xᵀ (digital). Summed over the same sample blocks as
            // `Conv2d`'s blockwise passes, so both give the same dW to the last bit.
            let p = n * positions;
            let mut acc = WeightGrad::new(rows, cols);
            for b in sample_blocks(rows, positions, n) {
                let (j0, pc) = (b.start * positions, b.len() * positions);
                acc.add(View::block(&x, p, 0, j0), View::block(g, p, 0, j0), pc);
            }
            acc.finish(dw);
        });
        self.x = x;
        dx
    }

    /// `backward` of a `forward_with` pass: `weight_grad(g, dw)` gets the quantized error `g`
    /// (`[cols, n·positions]`) and fills `dw` with `g · xᵀ` from the input the caller keeps
    /// (backprop part 2, digital); the weight gradient then passes straight through to the
    /// latent weights and dJ/dx comes from `W_qᵀ·g` (backprop part 1: on the arrays, or ideal).
    pub fn backward_with(
        &mut self,
        dy: Vec<f32>,
        ctx: &Ctx,
        weight_grad: impl FnOnce(&[f32], &mut [f32]),
    ) -> Vec<f32> {
        let g = self.quantized_errors(dy, ctx);
        weight_grad(&self.weight_errors(&g), &mut self.dw);
        self.finish_weight_gradient();
        self.propagate(g, ctx)
    }

    /// `backward_with` on the arrays for a caller that takes dJ/dx a block of samples at a
    /// time (a convolution's col2im): the transposed read runs as
    /// `TiledMatrix::backward_blocks(…, blocks, per_block, take)`; nothing is read when the
    /// layer needs no dJ/dx.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_blocks<T: Send>(
        &mut self,
        dy: Vec<f32>,
        ctx: &Ctx,
        weight_grad: impl FnOnce(&[f32], &mut [f32]),
        blocks: &[Range<usize>],
        per_block: Vec<T>,
        take: impl Fn(&Range<usize>, &[f32], T) + Sync,
    ) {
        let g = self.quantized_errors(dy, ctx);
        weight_grad(&self.weight_errors(&g), &mut self.dw);
        self.finish_weight_gradient();
        if !self.input_grad {
            return;
        }
        let spec = self.read_spec(ctx);
        let xb = self.xbar.as_mut().expect("backward_blocks is the arrays'");
        xb.backward_blocks(
            &g,
            (self.n * self.positions, self.positions),
            (blocks, per_block),
            spec,
            &mut self.counters.backprop1,
            take,
        );
    }

    /// `backward_with` where the caller also forms its own `dJ/dx` from `W_qᵀ · g` (ideal
    /// engine, no error ADC): `products(g_w, g, w_q, dw)` fills `dw` from `g_w` as there (the
    /// error less its column means after a centred read, else `g`) and dJ/dx from `g`; the
    /// caller keeps the input, so it owns the output too.
    pub fn backward_fused(
        &mut self,
        dy: Vec<f32>,
        ctx: &Ctx,
        products: impl FnOnce(&[f32], &[f32], &[f32], &mut [f32]),
    ) {
        assert!(
            self.xbar.is_none() && !self.read_errors,
            "backward_fused is the ideal engine's without an error ADC"
        );
        let g = self.quantized_errors(dy, ctx);
        let g_w = self.weight_errors(&g);
        products(&g_w, &g, &self.w_q, &mut self.dw);
        self.finish_weight_gradient();
    }

    /// The first half of every backward: bias and α gradients, the CO straight-through mask,
    /// then the G quantizer. Returns `g_q` (`[cols, n·positions]`).
    fn quantized_errors(&mut self, mut dy: Vec<f32>, ctx: &Ctx) -> Vec<f32> {
        let p = self.n * self.positions;
        assert_eq!(dy.len(), self.cols * p, "matrix error has the wrong size");
        // Per output row: α gradient Σ dy ⊙ co_q (in f64 lanes), bias gradient Σ dy (both
        // digital, from the unquantized error), then dJ/dCO = α·dy where the ADC did not clip.
        // A centred comparator's bias sits before the ADC: its gradient is Σ dJ/dCO; its α is
        // fixed. Without a bias the second pass has no running sum and vectorizes.
        let alpha = self.alpha();
        let centred = self.centered();
        let has_bias = !self.dbias.is_empty();
        let (co_q, pass) = (&self.co_q, self.co_pass.as_deref());
        let sums: Vec<(f32, f64)> = dy
            .par_chunks_mut(p)
            .enumerate()
            .map(|(c, row)| {
                let sa = lane_dot(row, &co_q[c * p..(c + 1) * p]);
                let m = pass.map(|m| &m[c * p..(c + 1) * p]);
                let mut sb = 0f32;
                // `keep(x, k)`: x where the mask passes, +0 where not, without a branch (half the
                // values of a unipolar read lie outside its window, in no pattern a branch
                // predictor could follow)
                let keep =
                    |x: f32, k: u8| f32::from_bits(x.to_bits() & 0u32.wrapping_sub(k as u32));
                if has_bias {
                    match m {
                        Some(m) => {
                            for (d, &k) in row.iter_mut().zip(m) {
                                let before = *d;
                                *d = keep(alpha * before, k);
                                sb += if centred { *d } else { before };
                            }
                        }
                        None => {
                            for d in row.iter_mut() {
                                let before = *d;
                                *d = alpha * before;
                                sb += if centred { *d } else { before };
                            }
                        }
                    }
                } else if let Some(m) = m {
                    for (d, &k) in row.iter_mut().zip(m) {
                        *d = keep(alpha * *d, k);
                    }
                } else {
                    row.iter_mut().for_each(|d| *d *= alpha);
                }
                (sb, sa)
            })
            .collect();
        for (c, (sb, _)) in sums.iter().enumerate() {
            if let Some(db) = self.dbias.get_mut(c) {
                *db = *sb;
            }
        }
        let dalpha: f64 = sums.iter().map(|(_, a)| a).sum();
        self.dlog_alpha[0] = if centred && !self.logits {
            0.0
        } else {
            (dalpha * alpha as f64) as f32
        };
        let key = RoundingKey {
            seed: ctx.seed,
            layer: self.index,
            step: ctx.step,
        };
        gradient::quantize(
            &mut dy,
            self.cols,
            self.n,
            self.positions,
            GQuantizer {
                bits: self.bits.g,
                rounding: self.g_rounding,
                scale: self.g_scale,
            },
            key,
        );
        dy
    }

    /// The errors the weight gradient takes: `g − ḡ` (ḡ: each column's mean quantized error
    /// over the batch) where the forward read was centred on the column's batch mean and
    /// `centred_backward` is on; else `g` itself. `co − mean(co)` has the derivative `g − ḡ`:
    /// holding the reference constant instead leaves in dW a common part the centred read
    /// cannot see, which drives a column's weights to one sign (docs/results.md). dJ/dx keeps
    /// the read of `g` itself: its exact form differs by `W_qᵀ·ḡ`, one constant per input row
    /// over the batch, and taking that off after the row ADCs stalled 1,1,2,1 (measured).
    fn weight_errors<'a>(&mut self, g: &'a [f32]) -> Cow<'a, [f32]> {
        if !(self.centred_backward && self.centered()) {
            return Cow::Borrowed(g);
        }
        let p = self.n * self.positions;
        // digital: one sum per error, one divide per column
        self.counters.backprop2.digital_ops += (self.cols * (p + 1)) as u64;
        let mut c = g.to_vec();
        c.par_chunks_mut(p.max(1)).for_each(|row| {
            let mean = (lane_sum(row, |v| v as f64) / p.max(1) as f64) as f32;
            row.iter_mut().for_each(|v| *v -= mean);
        });
        Cow::Owned(c)
    }

    /// Counters of backprop part 2 and the straight-through factor of the W quantizer.
    fn finish_weight_gradient(&mut self) {
        let p = self.n * self.positions;
        let (rows, cols) = (self.rows, self.cols);
        self.counters.backprop2.digital_macs += (rows * cols * p) as u64;
        self.counters.backprop2.digital_ops += (rows * cols) as u64;
        self.counters.backprop1.digital_ops += (cols * p) as u64; // G quantization
        if !self.bits.w.is_fp32() {
            self.dw
                .par_chunks_mut(8192)
                .zip(self.w_d.par_chunks(8192))
                .for_each(|(ds, fs)| {
                    ds.iter_mut().zip(fs).for_each(|(d, f)| *d *= f);
                });
        }
    }

    /// Backprop part 1: dx = W_qᵀ · g_q (on the arrays, or one GEMM).
    /// How this layer's transposed read runs at this step.
    fn read_spec(&self, ctx: &Ctx) -> ReadSpec {
        ReadSpec {
            g_bits: self.bits.g,
            adc_bits: self.backward_adc_bits,
            rule: self.co_rule,
            seed: ctx.seed,
            step: ctx.step,
        }
    }

    fn propagate(&mut self, dy: Vec<f32>, ctx: &Ctx) -> Vec<f32> {
        let p = self.n * self.positions;
        let (rows, cols) = (self.rows, self.cols);
        if !self.input_grad {
            return Vec::new();
        }
        let spec = self.read_spec(ctx);
        if let Some(xb) = self.xbar.as_mut() {
            return xb.backward(
                &dy,
                p,
                spec,
                &mut self.counters.backprop1,
                std::mem::take(&mut self.scratch),
            );
        }
        let mut dx = std::mem::take(&mut self.scratch);
        dx.resize(rows * p, 0.0); // overwritten by the product
        matmul(
            &mut dx,
            &self.w_q,
            Trans::Yes,
            &dy,
            Trans::No,
            rows,
            p,
            cols,
            false,
        );
        if self.read_errors {
            let s = output::batch_range(&dx, self.backward_adc_bits, self.co_rule);
            output::quantize_with_range(&mut dx, self.backward_adc_bits, s);
            self.counters.backprop1.digital_ops += (rows * p) as u64;
        }
        dx
    }

    /// State a checkpoint keeps besides the parameters: the running CO range and, on arrays,
    /// every cell's target and realised conductance and the arrays' running ADC ranges.
    pub fn buffers(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        let centred = self.centered();
        let mut v = vec![("co_range".to_string(), &mut self.co_range)];
        if centred && self.xbar.is_none() {
            v.push(("co_centre".to_string(), &mut self.co_centre));
        }
        if let Some(x) = self.xbar.as_mut() {
            x.w_eff_valid = false; // the caller may overwrite the cells (checkpoint load)
            v.push(("xbar.target_pos".into(), &mut x.target_pos));
            v.push(("xbar.target_neg".into(), &mut x.target_neg));
            v.push(("xbar.cond_pos".into(), &mut x.u_pos));
            v.push(("xbar.cond_neg".into(), &mut x.u_neg));
            v.push(("xbar.adc_range".into(), &mut x.fwd_range));
            if centred {
                v.push(("xbar.adc_centre".into(), &mut x.fwd_centre));
            }
        }
        v
    }

    /// Parameters for the optimizer: weight (decayed), bias, scale.
    pub fn params(&mut self) -> Vec<crate::nn::ParamView<'_>> {
        let mut v = vec![crate::nn::ParamView {
            name: "weight".into(),
            value: &mut self.w,
            grad: &mut self.dw,
            decay: true,
        }];
        if !self.bias.is_empty() {
            v.push(crate::nn::ParamView {
                name: "bias".into(),
                value: &mut self.bias,
                grad: &mut self.dbias,
                decay: false,
            });
        }
        v.push(crate::nn::ParamView {
            name: "log_scale".into(),
            value: &mut self.log_alpha,
            grad: &mut self.dlog_alpha,
            decay: false,
        });
        v
    }
}
