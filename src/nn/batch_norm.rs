//! `BatchNorm2d` (digital): per-channel normalisation over `n·h·w` with batch statistics in
//! training and running statistics (momentum 0.1, unbiased variance) in evaluation. Works on
//! `[c, n, h, w]` and on `[c, n]`: each channel is one contiguous block in the CNHW layout.

use super::{Ctx, Layer, ParamView};
use crate::kernels::{LANES, lane_sum};
use crate::tensor::Tensor;
use rayon::prelude::*;

pub struct BatchNorm2d {
    name: String,
    pub eps: f32,
    pub momentum: f32,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub dgamma: Vec<f32>,
    pub dbeta: Vec<f32>,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
    x_hat: Vec<f32>,
    inv_std: Vec<f32>,
}

impl BatchNorm2d {
    pub fn new(name: &str, c: usize) -> Self {
        BatchNorm2d {
            name: name.to_string(),
            eps: 1e-5,
            momentum: 0.1,
            gamma: vec![1.0; c],
            beta: vec![0.0; c],
            dgamma: vec![0.0; c],
            dbeta: vec![0.0; c],
            running_mean: vec![0.0; c],
            running_var: vec![1.0; c],
            x_hat: Vec::new(),
            inv_std: vec![0.0; c],
        }
    }
}

/// Mean and (biased) variance of one channel's values, summed in f64.
fn channel_stats(xs: &[f32]) -> (f32, f32) {
    let m = xs.len() as f64;
    let mean = (lane_sum(xs, |v| v as f64) / m) as f32;
    let var = (lane_sum(xs, |v| ((v - mean) as f64).powi(2)) / m) as f32;
    (mean, var)
}

impl Layer for BatchNorm2d {
    fn name(&self) -> &str {
        &self.name
    }

    /// # Shapes
    /// `[c, ...]`; unchanged.
    fn forward(&mut self, mut x: Tensor, ctx: &Ctx) -> Tensor {
        let c = x.dim(0);
        let m = x.len() / c;
        if !ctx.train {
            x.data.par_chunks_mut(m).enumerate().for_each(|(ch, xs)| {
                let (mu, var) = if ctx.batch_stats {
                    channel_stats(xs)
                } else {
                    (self.running_mean[ch], self.running_var[ch])
                };
                let inv = 1.0 / (var + self.eps).sqrt();
                let (g, b) = (self.gamma[ch], self.beta[ch]);
                xs.iter_mut().for_each(|v| *v = g * (*v - mu) * inv + b);
            });
            return x;
        }
        self.x_hat.resize(x.len(), 0.0);
        let stats: Vec<(f32, f32)> = x
            .data
            .par_chunks_mut(m)
            .zip(self.x_hat.par_chunks_mut(m))
            .enumerate()
            .map(|(ch, (xs, xh))| {
                let (mean, var) = channel_stats(xs);
                let inv = 1.0 / (var + self.eps).sqrt();
                let (g, b) = (self.gamma[ch], self.beta[ch]);
                for (v, h) in xs.iter_mut().zip(xh) {
                    *h = (*v - mean) * inv;
                    *v = g * *h + b;
                }
                (mean, var)
            })
            .collect();
        let unbias = if m > 1 {
            m as f32 / (m - 1) as f32
        } else {
            1.0
        };
        // The value before an upstream CO quantizer (what the next activation's straight-through
        // mask is judged at) goes through the same affine map as the data, or the mask would be
        // judged at the un-normalised conv output.
        if let Some(pre) = x.pre_quant.as_mut() {
            pre.par_chunks_mut(m).enumerate().for_each(|(ch, ps)| {
                let (mean, var) = stats[ch];
                let inv = 1.0 / (var + self.eps).sqrt();
                let (g, b) = (self.gamma[ch], self.beta[ch]);
                ps.iter_mut().for_each(|v| *v = g * (*v - mean) * inv + b);
            });
        }
        for (ch, &(mean, var)) in stats.iter().enumerate() {
            self.inv_std[ch] = 1.0 / (var + self.eps).sqrt();
            self.running_mean[ch] += self.momentum * (mean - self.running_mean[ch]);
            self.running_var[ch] += self.momentum * (var * unbias - self.running_var[ch]);
        }
        x
    }

    /// dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)).
    fn backward(&mut self, mut dy: Tensor, _ctx: &Ctx) -> Tensor {
        let c = dy.dim(0);
        let m = dy.len() / c;
        let sums: Vec<(f32, f32)> = dy
            .data
            .par_chunks_mut(m)
            .zip(self.x_hat.par_chunks(m))
            .enumerate()
            .map(|(ch, (ds, xh))| {
                let (mut sd, mut sdx) = ([0f64; LANES], [0f64; LANES]);
                let n_full = ds.len() / LANES * LANES;
                for (dc, hc) in ds[..n_full]
                    .chunks_exact(LANES)
                    .zip(xh[..n_full].chunks_exact(LANES))
                {
                    for i in 0..LANES {
                        sd[i] += dc[i] as f64;
                        sdx[i] += (dc[i] * hc[i]) as f64;
                    }
                }
                let (mut sd, mut sdx) = (sd.iter().sum::<f64>(), sdx.iter().sum::<f64>());
                for (&d, &h) in ds[n_full..].iter().zip(&xh[n_full..]) {
                    sd += d as f64;
                    sdx += (d * h) as f64;
                }
                let (md, mdx) = ((sd / m as f64) as f32, (sdx / m as f64) as f32);
                let k = self.gamma[ch] * self.inv_std[ch];
                for (d, &h) in ds.iter_mut().zip(xh) {
                    *d = k * (*d - md - h * mdx);
                }
                (sd as f32, sdx as f32)
            })
            .collect();
        for (ch, (sd, sdx)) in sums.into_iter().enumerate() {
            self.dbeta[ch] = sd;
            self.dgamma[ch] = sdx;
        }
        dy
    }

    fn params(&mut self) -> Vec<ParamView<'_>> {
        vec![
            ParamView {
                name: "gamma".into(),
                value: &mut self.gamma,
                grad: &mut self.dgamma,
                decay: false,
            },
            ParamView {
                name: "beta".into(),
                value: &mut self.beta,
                grad: &mut self.dbeta,
                decay: false,
            },
        ]
    }

    fn buffers(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        vec![
            ("running_mean".into(), &mut self.running_mean),
            ("running_var".into(), &mut self.running_var),
        ]
    }
}
