//! `Conv2d`: im2col, then the matrix core (`W[c_out, k·k·c_in] · col`), output already CNHW.

use super::{Ctx, Layer, MatrixCore, ParamView};
use crate::kernels::im2col::{ConvGeom, col2im, im2col};
use crate::quant::BitWidths;
use crate::rng::Rng;
use crate::tensor::Tensor;

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
        }
    }
}

pub struct Conv2d {
    name: String,
    pub cfg: Conv2dConfig,
    pub core: MatrixCore,
    geom: Option<ConvGeom>,
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
}

impl Layer for Conv2d {
    fn name(&self) -> &str {
        &self.name
    }

    /// # Shapes
    /// `[c_in, n, h, w]` → `[c_out, n, h_out, w_out]`.
    fn forward(&mut self, x: Tensor, ctx: &Ctx) -> Tensor {
        let g = self.geom(&x);
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
        let dcol = self.core.backward(dy.data, ctx);
        let shape = vec![g.c_in, g.n, g.h_in, g.w_in];
        if dcol.is_empty() {
            return Tensor::new(vec![0], Vec::new());
        }
        if g.k_h == 1 && g.stride == 1 && g.pad == 0 {
            return Tensor::new(shape, dcol);
        }
        let mut dx = vec![0.0; g.c_in * g.n * g.h_in * g.w_in];
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
