//! LeNet-5 on 28×28 MNIST, two variants (spec §4):
//! - classic: conv5×5 6 (pad 2) → pool2 → conv5×5 16 → pool2 → FC 400→120 → FC 120→84 → FC 84→10;
//! - Caffe: conv5×5 20 → pool2 → conv5×5 50 → pool2 → FC 800→500 → FC 500→10.
//!
//! Every matrix layer's input passes the A quantizer (clip to [0, 1], A bits), the image included:
//! on an all-RRAM system each one is a DAC input. The order is conv → A → pool, which equals
//! pool → A because max-pooling commutes with a monotone quantizer.

use super::Model;
use crate::config::ModelKind;
use crate::nn::Layer;
use crate::nn::activation::Activation;
use crate::nn::conv2d::Conv2dConfig;
use crate::nn::flatten::Flatten;
use crate::nn::linear::Linear;
use crate::nn::pool::MaxPool2d;
use crate::quant::BitWidths;
use crate::rng::Rng;

/// `logit_columns`: output columns per class of the last layer (`Model::build` adds the vote).
pub fn build(kind: ModelKind, bits: BitWidths, logit_columns: usize, rng: &mut Rng) -> Model {
    let (c1, c2, pad1, fc) = match kind {
        ModelKind::Lenet5 => (6, 16, 2, vec![120, 84]),
        _ => (20, 50, 0, vec![500]),
    };
    let side = (28 + 2 * pad1 - 4) / 2; // after conv1 and pool1
    let side = (side - 4) / 2; // after conv2 and pool2
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(Activation::new("input", bits.a))];
    let mut conv1 = Conv2dConfig::new(1, c1, 5)
        .with_pad(pad1)
        .init("conv1", 0, bits, rng);
    conv1.core.input_grad = false;
    layers.push(Box::new(conv1));
    layers.push(Box::new(Activation::new("act1", bits.a)));
    layers.push(Box::new(MaxPool2d::new("pool1", 2)));
    layers.push(Box::new(
        Conv2dConfig::new(c1, c2, 5).init("conv2", 1, bits, rng),
    ));
    layers.push(Box::new(Activation::new("act2", bits.a)));
    layers.push(Box::new(MaxPool2d::new("pool2", 2)));
    layers.push(Box::new(Flatten::new()));
    let mut d_in = c2 * side * side;
    for (i, &d_out) in fc.iter().enumerate() {
        let name = format!("fc{}", i + 1);
        layers.push(Box::new(Linear::new(
            &name,
            2 + i as u64,
            d_in,
            d_out,
            bits,
            rng,
        )));
        layers.push(Box::new(Activation::new(&format!("act{}", i + 3), bits.a)));
        d_in = d_out;
    }
    let last = format!("fc{}", fc.len() + 1);
    layers.push(Box::new(Linear::new(
        &last,
        2 + fc.len() as u64,
        d_in,
        10 * logit_columns,
        bits,
        rng,
    )));
    Model {
        kind,
        layers,
        input: [1, 28, 28],
        classes: 10,
        profile: None,
        first_trainable: None,
    }
}
