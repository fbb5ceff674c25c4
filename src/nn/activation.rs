//! `Activation`: the A quantization point as a layer (clip to [0, 1] and quantize to A bits; a
//! ReLU at fp32). Placed before every matrix layer's input, including the image itself.

use super::{Ctx, Layer};
use crate::quant::{Bits, activation};
use crate::tensor::Tensor;

pub struct Activation {
    name: String,
    pub bits: Bits,
    mask: Vec<u8>,
}

impl Activation {
    pub fn new(name: &str, bits: Bits) -> Self {
        Activation {
            name: name.to_string(),
            bits,
            mask: Vec::new(),
        }
    }
}

impl Layer for Activation {
    fn name(&self) -> &str {
        &self.name
    }

    /// # Shapes
    /// Any; unchanged.
    fn forward(&mut self, mut x: Tensor, _ctx: &Ctx) -> Tensor {
        let pre = x.pre_quant.take();
        activation::forward(&mut x.data, pre.as_deref(), self.bits, &mut self.mask);
        x
    }

    fn backward(&mut self, mut dy: Tensor, _ctx: &Ctx) -> Tensor {
        activation::backward(&mut dy.data, &self.mask);
        dy
    }
}
