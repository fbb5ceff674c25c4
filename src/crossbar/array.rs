//! `TiledMatrix`: one layer's `[cols, rows]` weight matrix spread over `tile_rows × tile_cols`
//! arrays of differential cell pairs, with the cells' state (targets, realised conductances,
//! faults) and the three ways the system touches them:
//! - `program`: write the cells whose target level changed (Update phase; each write lands off
//!   target per the disturbance model);
//! - `forward`: A-bit inputs on the rows of every array, each array's columns read by its own
//!   CO-bit ADC, partial sums added digitally (Forward phase);
//! - `backward`: G-bit errors on the columns of the same arrays, rows read by ADCs, signed
//!   inputs in two phases (Backprop part 1).
//!
//! Every analog product is computed with the effective weights `w_eff = (u+ − u−)·scale`
//! (normalized conductances, see `device`); with no disturbance, Gmin = 0 and ADCs at fp32,
//! `w_eff` equals the quantized weights exactly and a one-array product equals the ideal one.

use crate::counters::{LayerCounters, OpCounts};
use crate::crossbar::{AdcMode, CrossbarConfig};
use crate::device::disturbance::CellFault;
use crate::kernels::gemm::{Threads, Trans, View, matmul, matmul_into, matmul_view};
use crate::kernels::with_buffers;
use crate::quant::Bits;
use crate::quant::output::{self, Adc, CoRange, Polarity, RangeStat};
use crate::rng::{Rng, stream};
use rayon::prelude::*;
use std::borrow::Cow;
use std::ops::Range;

/// The block of a layer's matrix that one product covers: input rows `r0..r1` × output
/// columns `c0..c1` (one array, or the whole matrix when only the full sum is converted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub r0: usize,
    pub r1: usize,
    pub c0: usize,
    pub c1: usize,
}

impl Span {
    /// The whole `rows × cols` matrix.
    pub fn whole(rows: usize, cols: usize) -> Self {
        Span {
            r0: 0,
            r1: rows,
            c0: 0,
            c1: cols,
        }
    }
}

/// Where a forward's inputs come from: a whole `[rows, p]` matrix, or a caller that holds its
/// input in another form (a convolution forming its column matrix a few samples at a time).
/// `Products(f)`: `f(w, spans, parts)` sets each `parts[t]` (`(c1 − c0) × p`, sized already)
/// to `w[c0..c1, r0..r1] · x[r0..r1, :]` for `spans[t]` (`w` is `[cols, rows]`).
pub enum Input<'a> {
    Matrix(&'a [f32]),
    Products(&'a mut Products<'a>),
}

/// A caller's products (`Input::Products`).
pub type Products<'a> = dyn FnMut(&[f32], &[Span], &mut [Vec<f32>]) + 'a;

/// `Input::Products` for a matrix held whole: each span's product, threaded.
fn matrix_products(x: &[f32], p: usize, w: &[f32], spans: &[Span], parts: &mut [Vec<f32>]) {
    let rows = x.len() / p.max(1);
    for (s, part) in spans.iter().zip(parts) {
        matmul_view(
            part,
            View::block(w, rows, s.c0, s.r0),
            View::block(x, p, s.r0, 0),
            s.c1 - s.c0,
            p,
            s.r1 - s.r0,
            false,
        );
    }
}

/// How a transposed read (backprop part 1) runs: the errors' bits on the column DACs, the row
/// ADCs' bits and range rule, and the run seed and step that key the read noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadSpec {
    pub g_bits: Bits,
    pub adc_bits: Bits,
    pub rule: CoRange,
    pub seed: u64,
    pub step: u64,
}

pub struct TiledMatrix {
    pub rows: usize,
    pub cols: usize,
    cfg: CrossbarConfig,
    index: u64,
    u_min: f32,
    /// Normalized target of each cell (fraction of Gmax − Gmin above Gmin); NaN = never written.
    pub target_pos: Vec<f32>,
    pub target_neg: Vec<f32>,
    /// Realised normalized conductance of each cell.
    pub u_pos: Vec<f32>,
    pub u_neg: Vec<f32>,
    fault_pos: Vec<CellFault>,
    fault_neg: Vec<CellFault>,
    gain_pos: Vec<f32>,
    gain_neg: Vec<f32>,
    /// Digital scale of the current weights (1 for k ≥ 2, mean|w| for k = 1, max|w| for fp32).
    scale: f32,
    w_eff: Vec<f32>,
    /// Whether `w_eff` matches the cells (false after the cell state was handed out, e.g. to a
    /// checkpoint load; `program` then recomputes every weight, not only the written ones).
    pub w_eff_valid: bool,
    /// Running ADC range per array in the forward direction (evaluation), row-block-major.
    pub fwd_range: Vec<f32>,
    /// Running reference per array row block and column of a centred read (1-bit ADCs read as
    /// centred comparators, `quant::output::Comparator`, and any ADC with `centre_adc`),
    /// row-block-major; NaN = none yet.
    pub fwd_centre: Vec<f32>,
    /// Work buffers reused from step to step (fresh ones of this size cost a page fault per
    /// 4 KiB): the backward read's two error phases and their products.
    scratch: [Vec<f32>; 4],
    /// The forward's per-array products, reused likewise.
    parts: Vec<Vec<f32>>,
}

impl TiledMatrix {
    /// Fresh arrays (every cell at Gmin, never written). Faults and device-to-device gains are
    /// drawn here, from the run seed, once.
    pub fn new(index: u64, rows: usize, cols: usize, cfg: &CrossbarConfig, seed: u64) -> Self {
        let n = rows * cols;
        let u_min = cfg.device.u_min();
        let (mut fault_pos, mut fault_neg, mut gain_pos, mut gain_neg) =
            (vec![], vec![], vec![], vec![]);
        if !cfg.faults.is_none() || cfg.d2d > 0.0 {
            let mut rng = Rng::keyed(seed, stream::DEVICE, &[index]);
            for _ in 0..n {
                if !cfg.faults.is_none() {
                    fault_pos.push(cfg.faults.draw(&mut rng));
                    fault_neg.push(cfg.faults.draw(&mut rng));
                }
                if cfg.d2d > 0.0 {
                    gain_pos.push((1.0 + cfg.d2d * rng.normal()).max(0.0));
                    gain_neg.push((1.0 + cfg.d2d * rng.normal()).max(0.0));
                }
            }
        }
        let stuck = |f: &[CellFault], i: usize| match f.get(i) {
            Some(CellFault::StuckMax) => u_min + 1.0,
            _ => u_min,
        };
        let u_pos: Vec<f32> = (0..n).map(|i| stuck(&fault_pos, i)).collect();
        let u_neg: Vec<f32> = (0..n).map(|i| stuck(&fault_neg, i)).collect();
        let (rb, cb) = (rows.div_ceil(cfg.tile_rows), cols.div_ceil(cfg.tile_cols));
        TiledMatrix {
            rows,
            cols,
            cfg: cfg.clone(),
            index,
            u_min,
            target_pos: vec![f32::NAN; n],
            target_neg: vec![f32::NAN; n],
            w_eff: u_pos.iter().zip(&u_neg).map(|(p, q)| p - q).collect(),
            u_pos,
            u_neg,
            fault_pos,
            fault_neg,
            gain_pos,
            gain_neg,
            scale: 1.0,
            w_eff_valid: false,
            fwd_range: vec![0.0; rb * cb],
            fwd_centre: vec![f32::NAN; rb * cols],
            scratch: Default::default(),
            parts: Vec::new(),
        }
    }

    /// (row blocks, column blocks) of the tile grid.
    pub fn grid(&self) -> (usize, usize) {
        (
            self.rows.div_ceil(self.cfg.tile_rows),
            self.cols.div_ceil(self.cfg.tile_cols),
        )
    }

    /// Number of arrays.
    pub fn arrays(&self) -> usize {
        let (r, c) = self.grid();
        r * c
    }

    /// Fraction of the arrays' cells that hold a weight.
    pub fn utilisation(&self) -> f64 {
        (self.rows * self.cols) as f64
            / (self.arrays() * self.cfg.tile_rows * self.cfg.tile_cols) as f64
    }

    fn block(&self, i: usize, size: usize, total: usize) -> (usize, usize) {
        (i * size, ((i + 1) * size).min(total))
    }

    /// The products a forward reads, in the order `forward` indexes them: one per array,
    /// row-block-major (`t = rb·ncb + cb`), or the whole matrix when only the full sum is
    /// converted.
    pub fn spans(&self) -> Vec<Span> {
        if self.cfg.adc == AdcMode::FullSum {
            return vec![Span::whole(self.rows, self.cols)];
        }
        let (nrb, ncb) = self.grid();
        let mut spans = Vec::with_capacity(nrb * ncb);
        for rb in 0..nrb {
            let (r0, r1) = self.block(rb, self.cfg.tile_rows, self.rows);
            for cb in 0..ncb {
                let (c0, c1) = self.block(cb, self.cfg.tile_cols, self.cols);
                spans.push(Span { r0, r1, c0, c1 });
            }
        }
        spans
    }

    /// The effective weights as the arrays hold them (`[cols, rows]`).
    pub fn weights(&self) -> &[f32] {
        &self.w_eff
    }

    /// Relative error `u/u_target − 1` of every working, written cell (device-to-device gain
    /// included): the realised write disturbance.
    pub fn write_errors(&self) -> Vec<f32> {
        let mut out = Vec::new();
        for (t, u, f, g) in [
            (
                &self.target_pos,
                &self.u_pos,
                &self.fault_pos,
                &self.gain_pos,
            ),
            (
                &self.target_neg,
                &self.u_neg,
                &self.fault_neg,
                &self.gain_neg,
            ),
        ] {
            for i in 0..t.len() {
                if t[i].is_nan() || f.get(i).is_some_and(|f| *f != CellFault::Ok) {
                    continue;
                }
                let _ = g;
                out.push(u[i] / (self.u_min + t[i]) - 1.0);
            }
        }
        out
    }

    /// Program the quantized weights `w_q` (W bits): write exactly the cells whose target
    /// changed. Returns the number of write pulses (stuck cells take the pulse and ignore it).
    pub fn program(&mut self, w_q: &[f32], w_bits: Bits, seed: u64, step: u64) -> u64 {
        assert_eq!(w_q.len(), self.rows * self.cols);
        let max_abs = w_q.iter().fold(0f32, |m, v| m.max(v.abs()));
        let (scale, levels) = match w_bits {
            Bits::Fp32 => (if max_abs > 0.0 { max_abs } else { 1.0 }, None),
            Bits::K(1) => (max_abs, Some(1.0f32)),
            Bits::K(_) => (1.0, w_bits.levels()),
        };
        let refresh_all = !self.w_eff_valid || scale != self.scale;
        self.scale = scale;
        self.w_eff_valid = true;
        let target = |v: f32| -> (f32, f32) {
            match levels {
                Some(l) => {
                    let j = if scale > 0.0 {
                        crate::quant::round(v / scale * l)
                    } else {
                        1.0
                    };
                    (j.max(0.0) / l, (-j).max(0.0) / l)
                }
                None => (v.max(0.0) / scale, (-v).max(0.0) / scale),
            }
        };
        let rows = self.rows;
        let (u_min, disturb, index) = (self.u_min, self.cfg.disturb, self.index);
        let (fp, fnn, gp, gn) = (
            &self.fault_pos,
            &self.fault_neg,
            &self.gain_pos,
            &self.gain_neg,
        );
        self.target_pos
            .par_chunks_mut(rows)
            .zip(self.target_neg.par_chunks_mut(rows))
            .zip(self.u_pos.par_chunks_mut(rows))
            .zip(self.u_neg.par_chunks_mut(rows))
            .zip(self.w_eff.par_chunks_mut(rows))
            .zip(w_q.par_chunks(rows))
            .enumerate()
            .map(|(col, (((((tp, tn), up), un), we), wq))| {
                let mut rng = Rng::keyed(seed, stream::WRITE, &[index, step, col as u64]);
                let mut writes = 0u64;
                for r in 0..rows {
                    let i = col * rows + r;
                    let (np, nn) = target(wq[r]);
                    let before = writes;
                    for (t_old, u, t_new, f, g) in [
                        (&mut tp[r], &mut up[r], np, fp, gp),
                        (&mut tn[r], &mut un[r], nn, fnn, gn),
                    ] {
                        if *t_old == t_new {
                            continue;
                        }
                        *t_old = t_new;
                        writes += 1;
                        if f.get(i).is_none_or(|f| *f == CellFault::Ok) {
                            let gain = g.get(i).copied().unwrap_or(1.0);
                            *u = (u_min + t_new) * gain * (1.0 + disturb.sample(&mut rng));
                        }
                    }
                    if refresh_all || writes != before {
                        we[r] = (up[r] - un[r]) * scale;
                    }
                }
                writes
            })
            .sum()
    }

    /// The weights one analog product sees: `w_eff`, perturbed per cell when read noise is on.
    fn read_weights(&self, seed: u64, step: u64, phase: u64) -> Cow<'_, [f32]> {
        let sigma = self.cfg.read_noise;
        if sigma == 0.0 {
            return Cow::Borrowed(&self.w_eff);
        }
        let rows = self.rows;
        let mut w = vec![0.0; self.w_eff.len()];
        w.par_chunks_mut(rows).enumerate().for_each(|(col, wc)| {
            let mut rng = Rng::keyed(seed, stream::READ, &[self.index, step, phase, col as u64]);
            for (r, v) in wc.iter_mut().enumerate() {
                let i = col * rows + r;
                let p = self.u_pos[i] * (1.0 + sigma * rng.normal());
                let n = self.u_neg[i] * (1.0 + sigma * rng.normal());
                *v = (p - n) * self.scale;
            }
        });
        Cow::Owned(w)
    }

    /// Forward: the input is `[rows, p]` (A-bit values), returns `[cols, p]` after the ADCs,
    /// the straight-through mask (0 where any array's ADC clipped that output) and, in training
    /// with a quantizing ADC, the output before the ADCs. Counts into `c` when `train`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        x: Input<'_>,
        p: usize,
        a_bits: Bits,
        co_bits: Bits,
        rule: CoRange,
        polarity: Polarity,
        centre: Option<&[f32]>,
        train: bool,
        refresh: bool,
        seed: u64,
        step: u64,
        c: &mut OpCounts,
    ) -> (Vec<f32>, Option<Vec<u8>>, Option<Vec<f32>>) {
        let (rows, cols) = (self.rows, self.cols);
        let keep_raw = train && !co_bits.is_fp32();
        let mut raw = if keep_raw {
            vec![0.0; cols * p]
        } else {
            Vec::new()
        };
        let (nrb, ncb) = self.grid();
        // A column whose rows span several arrays adds its arrays' partial reads digitally; a
        // partial sum's sign is not the output's, so those reads are not clipped at 0
        // (`Polarity::for_partial_sums`).
        let polarity = if nrb == 1 || self.cfg.adc == AdcMode::FullSum {
            polarity
        } else {
            polarity.for_partial_sums(self.cfg.partial_polarity, co_bits)
        };
        let mut ranges = std::mem::take(&mut self.fwd_range);
        let mut centres = std::mem::take(&mut self.fwd_centre);
        // every array's product first (reused buffers), then each array's ADC in order
        let spans = self.spans();
        let mut parts = std::mem::take(&mut self.parts);
        let w = self.read_weights(seed, step, 0);
        parts.resize_with(spans.len(), Vec::new);
        for (part, sp) in parts.iter_mut().zip(&spans) {
            part.resize((sp.c1 - sp.c0) * p, 0.0);
        }
        match x {
            Input::Matrix(x) => matrix_products(x, p, &w, &spans, &mut parts),
            Input::Products(f) => f(&w, &spans, &mut parts),
        }
        let mut y = vec![0.0; cols * p];
        let mut pass: Option<Vec<u8>> = None;
        // A centred ADC (a 1-bit comparator, or any ADC with `centre_adc`) reads each column of
        // each array around its own running reference; the bias threshold is split evenly over
        // the column's row blocks. Only a comparator reads ±1 with its own window.
        let comparator = centre.is_some() && co_bits == Bits::K(1);
        let share = 1.0 / nrb as f32;
        // The ADC range of array `t` for this batch (training: from the batch, also updating the
        // running range and the straight-through mask; evaluation: the running range), and the
        // full scale its reading uses (±1 for a centred comparator).
        let mut range = |part: &mut [f32],
                         t: usize,
                         (rb, c0, c1): (usize, usize, usize),
                         pass: &mut Option<Vec<u8>>|
         -> f32 {
            if co_bits.is_fp32() {
                return 0.0;
            }
            if let Some(bias) = centre {
                let b = if bias.is_empty() { bias } else { &bias[c0..c1] };
                let run = &mut centres[rb * cols + c0..rb * cols + c1];
                output::centre_rows(part, p, run, b, share, train, refresh);
            }
            let s = output::running_range(&mut ranges[t], train, || {
                polarity.batch_range(part, co_bits, rule)
            });
            // the window (a comparator's, or `output::pass_mask`'s), ANDed into the mask of
            // every array's outputs, made when a first value falls outside
            // (a comparator's is `|v| ≤ s`: `window` is bipolar for a 1-bit ADC)
            let windowed = comparator || output::windowed(co_bits);
            let window = polarity.window(co_bits, s);
            if train && windowed && output::outside_window(part, window) {
                let all = pass.get_or_insert_with(|| vec![1u8; cols * p]);
                output::narrow_to_window(&mut all[c0 * p..c1 * p], part, window);
            }
            if comparator { 1.0 } else { s }
        };
        if spans.len() == 1 {
            // one conversion of the whole sum (one array, or `--adc full-sum`): the very product
            // the ideal engine computes
            std::mem::swap(&mut y, &mut parts[0]);
            let s = range(&mut y, 0, (0, 0, cols), &mut pass);
            if keep_raw {
                raw.copy_from_slice(&y);
            }
            output::convert(&mut y, polarity.adc(co_bits, s));
        } else {
            for cb in 0..ncb {
                let (c0, c1) = self.block(cb, self.cfg.tile_cols, cols);
                let yb = &mut y[c0 * p..c1 * p];
                for rb in 0..nrb {
                    let t = rb * ncb + cb;
                    let part = &mut parts[t];
                    let adc = polarity.adc(co_bits, range(part, t, (rb, c0, c1), &mut pass));
                    if keep_raw {
                        let rawb = &mut raw[c0 * p..c1 * p];
                        output::accumulate_read_and_raw(yb, rawb, part, adc);
                    } else {
                        output::accumulate_read(yb, part, adc, 1.0);
                    }
                }
            }
        }
        drop(w);
        self.parts = parts;
        self.fwd_range = ranges;
        self.fwd_centre = centres;
        if train {
            let pn = p as u64;
            c.dac_bits = a_bits.as_u32();
            c.adc_bits = co_bits.as_u32();
            c.dac_conversions += (rows * ncb) as u64 * pn;
            c.adc_conversions += match self.cfg.adc {
                AdcMode::PerTile => (cols * nrb) as u64 * pn,
                AdcMode::FullSum => cols as u64 * pn,
            };
            c.cell_reads += 2 * (rows * cols) as u64 * pn;
            if self.cfg.adc == AdcMode::PerTile {
                c.digital_ops += ((nrb - 1) * cols) as u64 * pn;
            }
        }
        (y, pass, keep_raw.then_some(raw))
    }

    /// Backprop part 1: `g` is `[cols, p]` (G-bit errors), returns `Wᵀ·g` as `[rows, p]`, each
    /// array's rows read by `adc_bits` ADCs. `dx` is a buffer to reuse (any contents).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &mut self,
        g: &[f32],
        p: usize,
        spec: ReadSpec,
        c: &mut OpCounts,
        mut dx: Vec<f32>,
    ) -> Vec<f32> {
        let (adc_bits, rule) = (spec.adc_bits, spec.rule);
        let (rows, cols) = (self.rows, self.cols);
        let (nrb, ncb) = self.grid();
        let mut bufs = std::mem::take(&mut self.scratch);
        let w = self.read_weights(spec.seed, spec.step, 1);
        let two_phase = self.cfg.signed_input.digital_two_phase(spec.g_bits);
        let [g_pos, g_neg, prod_pos, prod_neg] = &mut bufs;
        if two_phase {
            g_pos.clear();
            g_pos.extend(g.iter().map(|v| v.max(0.0)));
            g_neg.clear();
            g_neg.extend(g.iter().map(|v| (-v).max(0.0)));
        }
        let split: Vec<(&[f32], f32)> = if two_phase {
            vec![(g_pos, 1.0), (g_neg, -1.0)]
        } else {
            vec![(g, 1.0)]
        };
        let range = |part: &[f32]| output::batch_range(part, adc_bits, rule);
        // With one array column every row block is written whole (by the product or by
        // `read_difference`), so a recycled buffer needs no zeroing; several columns accumulate.
        let overwrites = ncb == 1 && (two_phase || nrb == 1);
        if dx.len() != rows * p || !overwrites {
            dx.clear();
            dx.resize(rows * p, 0.0);
        }
        for rb in 0..nrb {
            let (r0, r1) = self.block(rb, self.cfg.tile_rows, rows);
            let dxb = &mut dx[r0 * p..r1 * p];
            if nrb == 1 && ncb == 1 && !two_phase {
                matmul(dxb, &w, Trans::Yes, g, Trans::No, rows, p, cols, false);
                output::quantize_with_range(dxb, adc_bits, range(dxb));
                continue;
            }
            let product = |out: &mut Vec<f32>, gs: &[f32], c0: usize, c1: usize| {
                out.resize((r1 - r0) * p, 0.0);
                matmul_view(
                    out,
                    View::block(&w, rows, c0, r0).t(),
                    View::block(gs, p, c0, 0),
                    r1 - r0,
                    p,
                    c1 - c0,
                    false,
                );
            };
            if two_phase && ncb == 1 {
                // One array column: both phases' reads, then dx = ADC(P+) − ADC(P−) in one pass.
                product(prod_pos, split[0].0, 0, cols);
                product(prod_neg, split[1].0, 0, cols);
                let (s_pos, s_neg) = (range(prod_pos), range(prod_neg));
                output::read_difference(dxb, prod_pos, prod_neg, adc_bits, s_pos, s_neg);
                continue;
            }
            for (gs, sign) in &split {
                for cb in 0..ncb {
                    let (c0, c1) = self.block(cb, self.cfg.tile_cols, cols);
                    product(prod_pos, gs, c0, c1);
                    let adc = Adc::new(adc_bits, range(prod_pos));
                    output::accumulate_read(dxb, prod_pos, adc, *sign);
                }
            }
        }
        drop(w);
        self.scratch = bufs;
        self.count_backward(c, p, spec);
        dx
    }

    /// Counts one transposed read of `p` error vectors.
    fn count_backward(&self, c: &mut OpCounts, p: usize, spec: ReadSpec) {
        let (rows, cols) = (self.rows, self.cols);
        let (nrb, ncb) = self.grid();
        // An analog two-phase read computes what one phase does, at two phases' DAC and cell
        // cost; a digital one converts each phase.
        let phases = self.cfg.signed_input.phases(spec.g_bits);
        let reads = self.cfg.signed_input.conversions(spec.g_bits);
        let pn = p as u64;
        c.dac_bits = spec.g_bits.as_u32();
        c.adc_bits = spec.adc_bits.as_u32();
        c.dac_conversions += (cols * nrb) as u64 * pn * phases;
        c.adc_conversions += (rows * ncb) as u64 * pn * reads;
        c.cell_reads += 2 * (rows * cols) as u64 * pn * phases;
        c.digital_ops += (rows as u64 * pn) * (reads * ncb as u64 - 1);
    }

    /// `backward` for a caller that takes `Wᵀ·g` a block of samples at a time (a convolution's
    /// col2im): the same reads and conversions, with each array's ADC range from statistics
    /// gathered over all blocks first (`output::RangeStat`), then each block's products formed
    /// again and converted. Blocks (`blocks`, in samples of `positions` columns) run in
    /// parallel, each on one thread; `take(b, read, t)` gets block `b`'s `[rows, b.len() ·
    /// positions]` read and its `per_block` item. Counts as `backward` does.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_blocks<T: Send>(
        &mut self,
        g: &[f32],
        (p, positions): (usize, usize),
        (blocks, per_block): (&[Range<usize>], Vec<T>),
        spec: ReadSpec,
        c: &mut OpCounts,
        take: impl Fn(&Range<usize>, &[f32], T) + Sync,
    ) {
        let (adc_bits, rule) = (spec.adc_bits, spec.rule);
        let (rows, cols) = (self.rows, self.cols);
        let (nrb, ncb) = self.grid();
        let w = self.read_weights(spec.seed, spec.step, 1);
        let two_phase = self.cfg.signed_input.digital_two_phase(spec.g_bits);
        let signs: &[f32] = if two_phase { &[1.0, -1.0] } else { &[1.0] };
        let np = signs.len();
        let row_blocks: Vec<(usize, usize)> = (0..nrb)
            .map(|rb| self.block(rb, self.cfg.tile_rows, rows))
            .collect();
        let col_blocks: Vec<(usize, usize)> = (0..ncb)
            .map(|cb| self.block(cb, self.cfg.tile_cols, cols))
            .collect();
        // A block's errors as one phase drives them (`[cols, pc]`): the positive or negative
        // part in two phases, the signed values in one.
        let phase = |out: &mut Vec<f32>, j0: usize, pc: usize, sign: f32| {
            out.clear();
            for row in g.chunks(p) {
                let r = &row[j0..j0 + pc];
                match (two_phase, sign > 0.0) {
                    (false, _) => out.extend_from_slice(r),
                    (true, true) => out.extend(r.iter().map(|v| v.max(0.0))),
                    (true, false) => out.extend(r.iter().map(|v| (-v).max(0.0))),
                }
            }
        };
        // The transposed read of array (r0..r1, c0..c1) driven by `gs` (`[cols, pc]`), into
        // the front of `out` (grown, never shrunk: row blocks of other sizes take turns in
        // it); returns its length.
        let product = |out: &mut Vec<f32>,
                       gs: &[f32],
                       pc: usize,
                       (r0, r1): (usize, usize),
                       (c0, c1): (usize, usize)| {
            let len = (r1 - r0) * pc;
            if out.len() < len {
                out.resize(len, 0.0);
            }
            let wt = View::block(&w, rows, c0, r0).t();
            let gv = View::block(gs, pc, c0, 0);
            matmul_into(out, pc, wt, gv, r1 - r0, pc, c1 - c0, false, Threads::One);
            len
        };
        let stat_index = |rb: usize, ph: usize, cb: usize| (rb * np + ph) * ncb + cb;
        // Pass 1: every array's read statistics, block by block, added in block order — not for
        // fp32 converters, which need no range (their reads are formed once, in pass 2).
        let pass_1 = || {
            let stats: Vec<Vec<RangeStat>> = blocks
                .par_iter()
                .map(|b| {
                    with_buffers(|[gs, prod, ..]| {
                        let (j0, pc) = (b.start * positions, b.len() * positions);
                        let mut st = vec![RangeStat::default(); nrb * np * ncb];
                        for (ph, &sign) in signs.iter().enumerate() {
                            phase(gs, j0, pc, sign);
                            for (rb, &rr) in row_blocks.iter().enumerate() {
                                for (cb, &cc) in col_blocks.iter().enumerate() {
                                    let len = product(prod, gs, pc, rr, cc);
                                    let read = &prod[..len];
                                    st[stat_index(rb, ph, cb)] =
                                        RangeStat::of(read, adc_bits, rule);
                                }
                            }
                        }
                        st
                    })
                })
                .collect();
            let mut total = vec![RangeStat::default(); nrb * np * ncb];
            for st in &stats {
                total.iter_mut().zip(st).for_each(|(t, s)| t.add(s));
            }
            total
                .iter()
                .map(|t| t.range(adc_bits, rule))
                .collect::<Vec<f32>>()
        };
        let ranges: Vec<f32> = if adc_bits.is_fp32() {
            vec![0.0; nrb * np * ncb]
        } else {
            pass_1()
        };
        // Pass 2: the reads again, each converted with its range and added into the block's
        // rows, phase by phase (`0 + ADC(P+) − ADC(P−)`: the values `read_difference` gives).
        blocks.par_iter().zip(per_block).for_each(|(b, item)| {
            with_buffers(|[g_pos, g_neg, prod, dx]| {
                let (j0, pc) = (b.start * positions, b.len() * positions);
                phase(g_pos, j0, pc, 1.0);
                if two_phase {
                    phase(g_neg, j0, pc, -1.0);
                }
                // every row block's first read overwrites it: no zeroing
                dx.resize(rows * pc, 0.0);
                for (rb, &(r0, r1)) in row_blocks.iter().enumerate() {
                    let dxb = &mut dx[r0 * pc..r1 * pc];
                    for (ph, &sign) in signs.iter().enumerate() {
                        let gs = if ph == 0 { &*g_pos } else { &*g_neg };
                        for (cb, &cc) in col_blocks.iter().enumerate() {
                            let len = product(prod, gs, pc, (r0, r1), cc);
                            let read = &prod[..len];
                            let s = ranges[stat_index(rb, ph, cb)];
                            if ph == 0 && cb == 0 {
                                output::first_read_block(dxb, read, adc_bits, s, sign);
                            } else {
                                output::accumulate_read_block(dxb, read, adc_bits, s, sign);
                            }
                        }
                    }
                }
                take(b, dx, item);
            })
        });
        drop(w);
        self.count_backward(c, p, spec);
    }
}

/// Counters of a layer whose products run digitally (ideal mode): every product is MACs.
pub fn count_digital(c: &mut LayerCounters, rows: usize, cols: usize, p: usize, input_grad: bool) {
    let macs = (rows * cols * p) as u64;
    c.forward.digital_macs += macs;
    if input_grad {
        c.backprop1.digital_macs += macs;
    }
}
