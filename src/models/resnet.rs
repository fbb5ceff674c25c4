//! ResNet for CIFAR-10 (He et al. 2016; spec §4): conv3×3 16 → BN → ReLU, three stages of n basic
//! blocks with 16, 32 and 64 channels (stride 2 at the start of stages 2 and 3, option-A
//! shortcuts), global average pooling, A, FC 64 → 10. Depth 6n + 2: ResNet-20/32/44/56.
//!
//! The image enters through the A quantizer (a DAC input, clipped to [0, 1]) when A is quantized;
//! at fp32 it enters unchanged, normalised per channel by the data pipeline.

use super::Model;
use crate::config::ModelKind;
use crate::nn::Layer;
use crate::nn::activation::Activation;
use crate::nn::batch_norm::BatchNorm2d;
use crate::nn::conv2d::Conv2dConfig;
use crate::nn::linear::Linear;
use crate::nn::pool::GlobalAvgPool;
use crate::nn::residual::BasicBlock;
use crate::quant::{BitWidths, Bits};
use crate::rng::Rng;

/// `logit_columns`: output columns per class of the FC (`Model::build` adds the vote).
pub fn build(
    kind: ModelKind,
    depth: usize,
    bits: BitWidths,
    logit_columns: usize,
    rng: &mut Rng,
) -> Model {
    let n = (depth - 2) / 6;
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    if !bits.a.is_fp32() {
        layers.push(Box::new(Activation::new("input", bits.a)));
    }
    let mut conv1 = Conv2dConfig::new(3, 16, 3)
        .with_pad(1)
        .with_bias(false)
        .init("conv1", 0, bits, rng);
    conv1.core.input_grad = false;
    layers.push(Box::new(conv1));
    layers.push(Box::new(BatchNorm2d::new("bn1", 16)));
    // digital ReLU: each block quantizes its conv input itself (see `residual`)
    layers.push(Box::new(Activation::new("act1", Bits::Fp32)));
    let mut c_in = 16;
    let mut index = 1;
    for (s, c) in [16, 32, 64].into_iter().enumerate() {
        for b in 0..n {
            let stride = if s > 0 && b == 0 { 2 } else { 1 };
            let name = format!("s{}b{}", s + 1, b + 1);
            layers.push(Box::new(BasicBlock::new(
                &name, index, c_in, c, stride, bits, rng,
            )));
            index += 2;
            c_in = c;
        }
    }
    layers.push(Box::new(GlobalAvgPool::new()));
    if !bits.a.is_fp32() {
        layers.push(Box::new(Activation::ranged("act_fc", bits.a))); // the FC's DAC inputs
    }
    layers.push(Box::new(Linear::new(
        "fc",
        index,
        64,
        10 * logit_columns,
        bits,
        rng,
    )));
    Model {
        kind,
        layers,
        input: [3, 32, 32],
        classes: 10,
        profile: None,
        first_trainable: None,
    }
}
