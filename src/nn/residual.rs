//! `BasicBlock` (He et al. 2016, CIFAR variant): A → conv3×3 → BN → A → conv3×3 → BN, plus the
//! option-A shortcut (identity; when the shape changes, take every other pixel and zero-pad the
//! new channels, half on each side — no weights), then a ReLU after the sum. BN, the addition and
//! the ReLU are digital ("others"); both convs are matrix layers (on the arrays under
//! `--hardware rram`).
//!
//! A is the DAC at a conv's input, so it sits on the conv branch only: the residual stream stays
//! digital and unclipped (`Activation::ranged` maps it onto the DAC's range). Clipping it to
//! [0, 1] after every sum (A there instead) drops the error on the shortcut too wherever a sum
//! leaves [0, 1], block after block: with A alone at 8 bits, 512 images × 8 epochs ended at train
//! loss 2.256 that way against 2.048 with A at the conv inputs (fp32 1.862; docs/results.md).

use super::activation::Activation;
use super::batch_norm::BatchNorm2d;
use super::conv2d::{Conv2d, Conv2dConfig};
use super::{Ctx, Layer, MatrixCore, ParamView};
use crate::kernels::{add_assign, par_copy};
use crate::quant::{BitWidths, Bits};
use crate::rng::Rng;
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::borrow::Cow;

pub struct BasicBlock {
    name: String,
    conv1: Conv2d,
    bn1: BatchNorm2d,
    /// A at conv1's input (`None` at fp32 A: the input is already a ReLU output).
    act_in: Option<Activation>,
    act1: Activation,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    act_out: Activation,
    c_in: usize,
    c_out: usize,
    stride: usize,
    in_shape: Vec<usize>,
    /// Per part kind: seconds forward and backward (only while `time_parts(true)`).
    timing: Option<Vec<(&'static str, [f64; 2])>>,
}

/// Run `f`, adding its wall time to `kind`'s entry (phase 0 forward, 1 backward) when timing.
fn timed<T>(
    timing: &mut Option<Vec<(&'static str, [f64; 2])>>,
    kind: &'static str,
    phase: usize,
    f: impl FnOnce() -> T,
) -> T {
    let Some(t) = timing.as_mut() else {
        return f();
    };
    let start = std::time::Instant::now();
    let out = f();
    let secs = start.elapsed().as_secs_f64();
    match t.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, v)) => v[phase] += secs,
        None => {
            let mut v = [0.0; 2];
            v[phase] = secs;
            t.push((kind, v));
        }
    }
    out
}

impl BasicBlock {
    /// `index` keys the two convs' random streams (`index`, `index + 1`).
    pub fn new(
        name: &str,
        index: u64,
        c_in: usize,
        c_out: usize,
        stride: usize,
        bits: BitWidths,
        rng: &mut Rng,
    ) -> Self {
        let mut conv = |c_in, s, i| {
            Conv2dConfig::new(c_in, c_out, 3)
                .with_stride(s)
                .with_pad(1)
                .with_bias(false)
                .init("conv", i, bits, rng)
        };
        let conv1 = conv(c_in, stride, index);
        let conv2 = conv(c_out, 1, index + 1);
        BasicBlock {
            name: name.to_string(),
            conv1,
            bn1: BatchNorm2d::new("bn1", c_out),
            act_in: (!bits.a.is_fp32()).then(|| Activation::ranged("act_in", bits.a)),
            act1: Activation::new("act1", bits.a),
            conv2,
            bn2: BatchNorm2d::new("bn2", c_out),
            act_out: Activation::new("act", Bits::Fp32),
            c_in,
            c_out,
            stride,
            in_shape: Vec::new(),
            timing: None,
        }
    }

    /// Channel offset of the input inside the zero-padded shortcut.
    fn pad(&self) -> usize {
        (self.c_out - self.c_in) / 2
    }

    fn shortcut<'a>(&self, x: &'a Tensor, h_out: usize, w_out: usize) -> Cow<'a, [f32]> {
        let (n, h, w) = (x.dim(1), x.dim(2), x.dim(3));
        if self.stride == 1 && self.c_in == self.c_out {
            return Cow::Borrowed(&x.data);
        }
        let mut out = vec![0.0; self.c_out * n * h_out * w_out];
        let plane_out = n * h_out * w_out;
        let pad = self.pad();
        out.par_chunks_mut(plane_out)
            .skip(pad)
            .take(self.c_in)
            .enumerate()
            .for_each(|(c, outc)| {
                for s in 0..n {
                    let src = &x.data[(c * n + s) * h * w..][..h * w];
                    let dst = &mut outc[s * h_out * w_out..][..h_out * w_out];
                    for y in 0..h_out {
                        for xx in 0..w_out {
                            dst[y * w_out + xx] = src[(y * self.stride) * w + xx * self.stride];
                        }
                    }
                }
            });
        Cow::Owned(out)
    }

    fn shortcut_backward(&self, d: &[f32], n: usize, h_out: usize, w_out: usize) -> Vec<f32> {
        if self.stride == 1 && self.c_in == self.c_out {
            return par_copy(d);
        }
        let (h, w) = (self.in_shape[2], self.in_shape[3]);
        let mut dx = vec![0.0; self.c_in * n * h * w];
        let pad = self.pad();
        dx.par_chunks_mut(n * h * w)
            .enumerate()
            .for_each(|(c, dxc)| {
                for s in 0..n {
                    let src = &d[((c + pad) * n + s) * h_out * w_out..][..h_out * w_out];
                    let dst = &mut dxc[s * h * w..][..h * w];
                    for y in 0..h_out {
                        for xx in 0..w_out {
                            dst[(y * self.stride) * w + xx * self.stride] += src[y * w_out + xx];
                        }
                    }
                }
            });
        dx
    }
}

impl Layer for BasicBlock {
    fn name(&self) -> &str {
        &self.name
    }

    fn time_parts(&mut self, on: bool) {
        self.timing = on.then(Vec::new);
    }

    fn part_times(&self) -> Vec<(&'static str, [f64; 2])> {
        self.timing.clone().unwrap_or_default()
    }

    /// # Shapes
    /// `[c_in, n, h, w]` → `[c_out, n, h/stride, w/stride]`.
    fn forward(&mut self, x: Tensor, ctx: &Ctx) -> Tensor {
        self.in_shape = x.shape.clone();
        let mut timing = self.timing.take();
        let tm = &mut timing;
        // the input stays for the shortcut; the conv branch works on a copy
        let mut y = Tensor {
            shape: x.shape.clone(),
            data: par_copy(&x.data),
            pre_quant: x.pre_quant.as_deref().map(par_copy),
        };
        if let Some(a) = self.act_in.as_mut() {
            y = timed(tm, "act", 0, || a.forward(y, ctx));
        }
        y = timed(tm, "conv", 0, || self.conv1.forward(y, ctx));
        y = timed(tm, "bn", 0, || self.bn1.forward(y, ctx));
        y = timed(tm, "act", 0, || self.act1.forward(y, ctx));
        y = timed(tm, "conv", 0, || self.conv2.forward(y, ctx));
        let mut y = timed(tm, "bn", 0, || self.bn2.forward(y, ctx));
        timed(tm, "shortcut", 0, || {
            let short = self.shortcut(&x, y.dim(2), y.dim(3));
            add_assign(&mut y.data, &short);
            if let Some(p) = y.pre_quant.as_mut() {
                add_assign(p, &short);
            }
        });
        let out = timed(tm, "act", 0, || self.act_out.forward(y, ctx));
        self.timing = timing;
        out
    }

    fn backward(&mut self, dy: Tensor, ctx: &Ctx) -> Tensor {
        let mut timing = self.timing.take();
        let tm = &mut timing;
        let d_sum = timed(tm, "act", 1, || self.act_out.backward(dy, ctx));
        let (n, h_out, w_out) = (d_sum.dim(1), d_sum.dim(2), d_sum.dim(3));
        let d_short = timed(tm, "shortcut", 1, || {
            self.shortcut_backward(&d_sum.data, n, h_out, w_out)
        });
        let mut d = timed(tm, "bn", 1, || self.bn2.backward(d_sum, ctx));
        d = timed(tm, "conv", 1, || self.conv2.backward(d, ctx));
        d = timed(tm, "act", 1, || self.act1.backward(d, ctx));
        d = timed(tm, "bn", 1, || self.bn1.backward(d, ctx));
        let mut dx = timed(tm, "conv", 1, || self.conv1.backward(d, ctx));
        if let Some(a) = self.act_in.as_mut() {
            dx = timed(tm, "act", 1, || a.backward(dx, ctx));
        }
        timed(tm, "shortcut", 1, || add_assign(&mut dx.data, &d_short));
        self.timing = timing;
        dx
    }

    fn params(&mut self) -> Vec<ParamView<'_>> {
        let mut v = Vec::new();
        for (prefix, ps) in [
            ("conv1", self.conv1.params()),
            ("bn1", self.bn1.params()),
            ("conv2", self.conv2.params()),
            ("bn2", self.bn2.params()),
        ] {
            for mut p in ps {
                p.name = format!("{prefix}.{}", p.name);
                v.push(p);
            }
        }
        v
    }

    fn buffers(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        let mut v = Vec::new();
        let act_in = self
            .act_in
            .as_mut()
            .map(|a| a.buffers())
            .unwrap_or_default();
        for (prefix, bs) in [
            ("act_in", act_in),
            ("conv1", self.conv1.buffers()),
            ("bn1", self.bn1.buffers()),
            ("conv2", self.conv2.buffers()),
            ("bn2", self.bn2.buffers()),
        ] {
            for (n, b) in bs {
                v.push((format!("{prefix}.{n}"), b));
            }
        }
        v
    }

    fn matrices(&mut self) -> Vec<(String, &mut MatrixCore)> {
        vec![
            (format!("{}.conv1", self.name), &mut self.conv1.core),
            (format!("{}.conv2", self.name), &mut self.conv2.core),
        ]
    }
}
