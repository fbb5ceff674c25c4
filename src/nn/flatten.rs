//! `Flatten`: `[c, n, h, w]` → `[c·h·w, n]`, feature index `(c, h, w)` as in PyTorch's flatten.

use super::{Ctx, Layer};
use crate::tensor::Tensor;

pub struct Flatten {
    shape: Vec<usize>,
}

impl Flatten {
    pub fn new() -> Self {
        Flatten { shape: Vec::new() }
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for Flatten {
    fn name(&self) -> &str {
        "flatten"
    }

    fn forward(&mut self, x: Tensor, _ctx: &Ctx) -> Tensor {
        let (c, n, hw) = (x.dim(0), x.dim(1), x.dim(2) * x.dim(3));
        let mut y = vec![0.0; x.len()];
        for ci in 0..c {
            for ni in 0..n {
                let src = &x.data[(ci * n + ni) * hw..][..hw];
                for (j, &v) in src.iter().enumerate() {
                    y[(ci * hw + j) * n + ni] = v;
                }
            }
        }
        self.shape = x.shape;
        Tensor::new(vec![c * hw, n], y)
    }

    fn backward(&mut self, dy: Tensor, _ctx: &Ctx) -> Tensor {
        let (c, n) = (self.shape[0], self.shape[1]);
        let hw = self.shape[2] * self.shape[3];
        let mut dx = vec![0.0; dy.len()];
        for ci in 0..c {
            for ni in 0..n {
                let dst = &mut dx[(ci * n + ni) * hw..][..hw];
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = dy.data[(ci * hw + j) * n + ni];
                }
            }
        }
        Tensor::new(self.shape.clone(), dx)
    }
}
