//! Pooling (digital): `MaxPool2d` (k×k window, stride k) and `GlobalAvgPool` (`[c, n, h, w]` →
//! `[c, n]`, used by ResNet).

use super::{Ctx, Layer};
use crate::tensor::Tensor;
use rayon::prelude::*;

pub struct MaxPool2d {
    name: String,
    pub k: usize,
    /// Index of the maximum inside its input plane, per output value.
    argmax: Vec<u32>,
    in_shape: Vec<usize>,
}

impl MaxPool2d {
    pub fn new(name: &str, k: usize) -> Self {
        MaxPool2d {
            name: name.to_string(),
            k,
            argmax: Vec::new(),
            in_shape: Vec::new(),
        }
    }
}

impl Layer for MaxPool2d {
    fn name(&self) -> &str {
        &self.name
    }

    /// # Shapes
    /// `[c, n, h, w]` → `[c, n, h/k, w/k]` (floor).
    fn forward(&mut self, x: Tensor, _ctx: &Ctx) -> Tensor {
        let (c, n, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        let k = self.k;
        let (ho, wo) = (h / k, w / k);
        let mut y = vec![0.0; c * n * ho * wo];
        self.argmax.resize(y.len(), 0);
        y.par_chunks_mut(ho * wo)
            .zip(self.argmax.par_chunks_mut(ho * wo))
            .enumerate()
            .for_each(|(plane, (yp, ap))| {
                let xp = &x.data[plane * h * w..][..h * w];
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut best = f32::NEG_INFINITY;
                        let mut at = 0usize;
                        for i in 0..k {
                            for j in 0..k {
                                let idx = (oh * k + i) * w + ow * k + j;
                                // `>` keeps the first maximum: ties go to the top-left cell.
                                if xp[idx] > best {
                                    best = xp[idx];
                                    at = idx;
                                }
                            }
                        }
                        yp[oh * wo + ow] = best;
                        ap[oh * wo + ow] = at as u32;
                    }
                }
            });
        self.in_shape = x.shape;
        Tensor::new(vec![c, n, ho, wo], y)
    }

    fn backward(&mut self, dy: Tensor, _ctx: &Ctx) -> Tensor {
        let (h, w) = (self.in_shape[2], self.in_shape[3]);
        let plane_out = dy.dim(2) * dy.dim(3);
        let mut dx = vec![0.0; self.in_shape.iter().product()];
        dx.par_chunks_mut(h * w)
            .enumerate()
            .for_each(|(plane, dxp)| {
                let d = &dy.data[plane * plane_out..][..plane_out];
                let a = &self.argmax[plane * plane_out..][..plane_out];
                for (&v, &i) in d.iter().zip(a) {
                    dxp[i as usize] += v;
                }
            });
        Tensor::new(self.in_shape.clone(), dx)
    }
}

/// Mean over each `h×w` plane.
pub struct GlobalAvgPool {
    in_shape: Vec<usize>,
}

impl GlobalAvgPool {
    pub fn new() -> Self {
        GlobalAvgPool {
            in_shape: Vec::new(),
        }
    }
}

impl Default for GlobalAvgPool {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for GlobalAvgPool {
    fn name(&self) -> &str {
        "avgpool"
    }

    /// # Shapes
    /// `[c, n, h, w]` → `[c, n]`.
    fn forward(&mut self, x: Tensor, _ctx: &Ctx) -> Tensor {
        let (c, n, hw) = (x.dim(0), x.dim(1), x.dim(2) * x.dim(3));
        let y = x
            .data
            .chunks(hw)
            .map(|p| p.iter().sum::<f32>() / hw as f32)
            .collect();
        self.in_shape = x.shape;
        Tensor::new(vec![c, n], y)
    }

    fn backward(&mut self, dy: Tensor, _ctx: &Ctx) -> Tensor {
        let hw = self.in_shape[2] * self.in_shape[3];
        let mut dx = Vec::with_capacity(dy.len() * hw);
        for &d in &dy.data {
            dx.extend(std::iter::repeat_n(d / hw as f32, hw));
        }
        Tensor::new(self.in_shape.clone(), dx)
    }
}
