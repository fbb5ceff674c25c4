//! `Activation`: the A quantization point as a layer (clip to [0, 1] and quantize to A bits; a
//! ReLU at fp32). Placed before every matrix layer's input, including the image itself.
//!
//! A *ranged* activation feeds a DAC from a signal that is not bounded by 1 (ResNet's digital
//! residual stream): it maps the DAC's full scale to a range `r` set from the data by the CO
//! range rule (`auto`), `a_q = r·quantize_k(clip(x/r, 0, 1))`, with `r` kept as a running
//! estimate for evaluation as the ADC range is. A digital scale before and after the DAC; without
//! it the stream, which grows past 1 block by block, would reach the convs clipped to a constant.

use super::{Ctx, Layer};
use crate::quant::output::{CoRange, batch_range, running_range};
use crate::quant::{Bits, activation};
use crate::tensor::Tensor;

pub struct Activation {
    name: String,
    pub bits: Bits,
    mask: Vec<u8>,
    /// Ranged activations only: the running range `r` (one element; 0 until the first training
    /// batch). Empty for the plain [0, 1] clip.
    range: Vec<f32>,
}

impl Activation {
    pub fn new(name: &str, bits: Bits) -> Self {
        Activation {
            name: name.to_string(),
            bits,
            mask: Vec::new(),
            range: Vec::new(),
        }
    }

    /// A DAC input with a data-set range (see the module docs).
    pub fn ranged(name: &str, bits: Bits) -> Self {
        Activation {
            range: vec![0.0],
            ..Activation::new(name, bits)
        }
    }

    /// The range `r` for this pass (1 for a plain activation).
    fn pass_range(&mut self, x: &[f32], ctx: &Ctx) -> f32 {
        let bits = self.bits;
        let Some(running) = self.range.first_mut() else {
            return 1.0;
        };
        running_range(running, ctx.train, || {
            let r = batch_range(x, bits, CoRange::Auto);
            if r > 0.0 && r.is_finite() { r } else { 1.0 }
        })
    }
}

impl Layer for Activation {
    fn name(&self) -> &str {
        &self.name
    }

    /// # Shapes
    /// Any; unchanged.
    fn forward(&mut self, mut x: Tensor, ctx: &Ctx) -> Tensor {
        let pre = x.pre_quant.take();
        let r = if self.bits.is_fp32() {
            1.0
        } else {
            self.pass_range(&x.data, ctx)
        };
        activation::forward_ranged(&mut x.data, pre.as_deref(), self.bits, r, &mut self.mask);
        x
    }

    fn backward(&mut self, mut dy: Tensor, _ctx: &Ctx) -> Tensor {
        activation::backward(&mut dy.data, &self.mask);
        dy
    }

    fn buffers(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        if self.range.is_empty() {
            return Vec::new();
        }
        vec![("range".to_string(), &mut self.range)]
    }
}
