//! `Linear`: `y[out, n] = α·CO(W_q[out, in] · x[in, n]) + b` through the matrix core.

use super::{Ctx, Layer, MatrixCore, ParamView};
use crate::quant::BitWidths;
use crate::rng::Rng;
use crate::tensor::Tensor;

pub struct Linear {
    name: String,
    pub core: MatrixCore,
}

impl Linear {
    pub fn new(
        name: &str,
        index: u64,
        d_in: usize,
        d_out: usize,
        bits: BitWidths,
        rng: &mut Rng,
    ) -> Self {
        Linear {
            name: name.to_string(),
            core: MatrixCore::new(index, d_in, d_out, true, bits, rng),
        }
    }
}

impl Layer for Linear {
    fn name(&self) -> &str {
        &self.name
    }

    /// # Shapes
    /// `[in, n]` → `[out, n]`.
    fn forward(&mut self, x: Tensor, ctx: &Ctx) -> Tensor {
        assert_eq!(
            x.shape.len(),
            2,
            "{}: input must be [features, n]",
            self.name
        );
        assert_eq!(x.dim(0), self.core.rows, "{}: input features", self.name);
        let n = x.dim(1);
        let (y, pre) = self.core.forward(x.data, n, 1, ctx);
        let mut t = Tensor::new(vec![self.core.cols, n], y);
        t.pre_quant = pre;
        t
    }

    fn backward(&mut self, dy: Tensor, ctx: &Ctx) -> Tensor {
        let n = dy.dim(1);
        let dx = self.core.backward(dy.data, ctx);
        if dx.is_empty() {
            return Tensor::new(vec![0], dx);
        }
        Tensor::new(vec![self.core.rows, n], dx)
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
