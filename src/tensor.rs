//! `Tensor`: a shape and a flat `Vec<f32>`, row-major over the shape.
//!
//! Layout convention (the only place it is written down): activations are **channel-major**.
//! A feature map is `[c, n, h, w]` (CNHW), so a convolution is one `W · col` product whose result
//! is already CNHW; a flat feature vector is `[f, n]`. Weights of a matrix layer are `[c_out, r]`
//! with `r = k_h·k_w·c_in` (conv) or `in` (linear) — on a crossbar, `r` are rows, `c_out` columns.

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    /// The same values before the CO quantizer of the layer that produced them (training only).
    /// The straight-through estimator treats that quantizer as the identity, so the next
    /// activation takes its clip derivative here rather than at the quantized value, which at
    /// 2-bit CO sits on one of three levels and would block almost every error.
    pub pre_quant: Option<Vec<f32>>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "tensor shape {shape:?} does not match {} values",
            data.len()
        );
        Tensor {
            shape,
            data,
            pre_quant: None,
        }
    }

    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Tensor {
            shape,
            data: vec![0.0; n],
            pre_quant: None,
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension `i` of the shape.
    pub fn dim(&self, i: usize) -> usize {
        self.shape[i]
    }

    /// Same data, new shape (same number of elements).
    pub fn reshape(mut self, shape: Vec<usize>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), self.data.len());
        self.shape = shape;
        self
    }
}
