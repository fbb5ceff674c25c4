//! Finite-difference checks of every layer's backward at fp32 (quantized layers are checked
//! for their straight-through rule in `ste.rs`). One case struct per layer kind; a new case is
//! a new literal.

mod common;

use common::{gradcheck, gradcheck_with_kinks, random_tensor};
use rram::nn::activation::Activation;
use rram::nn::batch_norm::BatchNorm2d;
use rram::nn::conv2d::Conv2dConfig;
use rram::nn::flatten::Flatten;
use rram::nn::linear::Linear;
use rram::nn::loss::{smoothed_cross_entropy, softmax_cross_entropy};
use rram::nn::pool::{GlobalAvgPool, MaxPool2d};
use rram::quant::{BitWidths, Bits};
use rram::rng::Rng;
use rram::tensor::Tensor;

struct ConvCase {
    n: usize,
    c_in: usize,
    c_out: usize,
    hw: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
}

#[test]
fn conv2d_gradients() {
    let cases = [
        ConvCase {
            n: 2,
            c_in: 1,
            c_out: 3,
            hw: 8,
            kernel: 5,
            stride: 1,
            pad: 2,
        },
        ConvCase {
            n: 3,
            c_in: 2,
            c_out: 4,
            hw: 7,
            kernel: 3,
            stride: 1,
            pad: 0,
        },
        ConvCase {
            n: 2,
            c_in: 3,
            c_out: 2,
            hw: 9,
            kernel: 3,
            stride: 2,
            pad: 1,
        },
        ConvCase {
            n: 2,
            c_in: 4,
            c_out: 3,
            hw: 5,
            kernel: 1,
            stride: 1,
            pad: 0,
        },
        ConvCase {
            n: 1,
            c_in: 2,
            c_out: 2,
            hw: 6,
            kernel: 1,
            stride: 2,
            pad: 0,
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let mut rng = Rng::new(i as u64);
        let mut conv = Conv2dConfig::new(c.c_in, c.c_out, c.kernel)
            .with_stride(c.stride)
            .with_pad(c.pad)
            .init("conv", 0, BitWidths::FP32, &mut rng);
        // non-trivial bias and scale
        conv.core
            .bias
            .iter_mut()
            .for_each(|b| *b = rng.uniform_in(-0.5, 0.5));
        conv.core.set_alpha(0.7);
        let x = random_tensor(vec![c.c_in, c.n, c.hw, c.hw], &mut rng, -1.0, 1.0);
        gradcheck(&mut conv, &x, 1e-2, 2e-3, 60);
    }
}

#[test]
fn linear_gradients() {
    let mut rng = Rng::new(5);
    let mut fc = Linear::new("fc", 0, 13, 7, BitWidths::FP32, &mut rng);
    fc.core.set_alpha(1.3);
    let x = random_tensor(vec![13, 4], &mut rng, -1.0, 1.0);
    gradcheck(&mut fc, &x, 1e-2, 2e-3, 100);
}

#[test]
fn maxpool_gradients() {
    // Distinct values keep the argmax stable under the ±eps probes.
    let mut rng = Rng::new(6);
    let mut v: Vec<f32> = (0..2 * 3 * 6 * 6).map(|i| i as f32 * 0.05).collect();
    rng.shuffle(&mut v);
    let x = Tensor::new(vec![2, 3, 6, 6], v);
    gradcheck(&mut MaxPool2d::new("pool", 2), &x, 1e-3, 1e-3, 200);
}

#[test]
fn batch_norm_gradients() {
    let mut rng = Rng::new(7);
    let mut bn = BatchNorm2d::new("bn", 3);
    bn.gamma = vec![0.5, 1.5, -0.7];
    bn.beta = vec![0.1, -0.2, 0.3];
    let x = random_tensor(vec![3, 4, 3, 3], &mut rng, -2.0, 2.0);
    gradcheck(&mut bn, &x, 1e-2, 3e-3, 100);
    // the [features, n] form used after a flatten
    let x = random_tensor(vec![3, 8], &mut rng, -2.0, 2.0);
    gradcheck(&mut BatchNorm2d::new("bn1d", 3), &x, 1e-2, 3e-3, 100);
}

#[test]
fn relu_flatten_avgpool_gradients() {
    let mut rng = Rng::new(8);
    // keep values away from the ReLU kink
    let x = Tensor::new(
        vec![2, 3, 4, 4],
        (0..96)
            .map(|_| {
                let v = rng.uniform_in(0.1, 1.0);
                if rng.uniform() < 0.5 { -v } else { v }
            })
            .collect(),
    );
    gradcheck(&mut Activation::new("relu", Bits::Fp32), &x, 1e-3, 1e-3, 96);
    gradcheck(&mut Flatten::new(), &x, 1e-2, 1e-3, 96);
    gradcheck(&mut GlobalAvgPool::new(), &x, 1e-2, 1e-3, 96);
}

#[test]
fn softmax_cross_entropy_gradient() {
    // dJ/dz = (softmax(z) − target)/n, plain and label-smoothed; central differences of the
    // mean loss.
    let mut rng = Rng::new(9);
    let z = random_tensor(vec![5, 3], &mut rng, -2.0, 2.0);
    let labels = [0u8, 4, 2];
    for smoothing in [0.0, 0.1, 0.3] {
        let loss = |z: &Tensor| smoothed_cross_entropy(z, &labels, smoothing).loss as f64;
        let out = smoothed_cross_entropy(&z, &labels, smoothing);
        for i in 0..z.len() {
            let eps = 1e-3;
            let mut zp = z.clone();
            zp.data[i] += eps;
            let lp = loss(&zp);
            zp.data[i] -= 2.0 * eps;
            let lm = loss(&zp);
            let num = (lp - lm) / (2.0 * eps as f64);
            assert!(
                (num - out.grad.data[i] as f64).abs() < 2e-3,
                "ε {smoothing}, {i}: {num} vs {}",
                out.grad.data[i]
            );
        }
    }
    // hand value: equal logits over 5 classes -> loss ln 5, smoothed or not
    let flat = Tensor::new(vec![5, 1], vec![0.3; 5]);
    assert!((softmax_cross_entropy(&flat, &[2]).loss - 5f32.ln()).abs() < 1e-6);
    assert!((smoothed_cross_entropy(&flat, &[2], 0.2).loss - 5f32.ln()).abs() < 1e-6);
}

#[test]
fn whole_lenet5_gradient_at_fp32() {
    // The model's backward chains every layer: check a few weights of each matrix layer, in the
    // plain network and with 3 output columns per class averaged into each logit.
    for logit_columns in [1, 3] {
        whole_lenet5_gradient(logit_columns);
    }
}

fn whole_lenet5_gradient(logit_columns: usize) {
    use rram::config::ModelKind;
    use rram::models::{Model, Variant};
    use rram::nn::Ctx;
    let mut rng = Rng::new(10);
    let variant = Variant {
        logit_columns,
        ..Variant::default()
    };
    let mut m = Model::build(ModelKind::Lenet5, BitWidths::FP32, variant, &mut rng);
    let x = random_tensor(vec![1, 3, 28, 28], &mut Rng::new(11), 0.0, 1.0);
    let labels = [1u8, 7, 3];
    let ctx = Ctx::train(0, 1);
    let loss =
        |m: &mut Model| softmax_cross_entropy(&m.forward(x.clone(), &ctx), &labels).loss as f64;
    let out = softmax_cross_entropy(&m.forward(x.clone(), &ctx), &labels);
    m.backward(out.grad, &ctx);
    let grads: Vec<Vec<f32>> = m.params().iter().map(|(_, p)| p.grad.clone()).collect();
    for (pi, g) in grads.iter().enumerate() {
        let scale = g.iter().fold(1e-4f32, |a, v| a.max(v.abs())) as f64;
        for i in (0..g.len()).step_by((g.len() / 5).max(1)) {
            let eps = 2e-3;
            let orig = m.params()[pi].1.value[i];
            m.params()[pi].1.value[i] = orig + eps;
            let lp = loss(&mut m);
            m.params()[pi].1.value[i] = orig - eps;
            let lm = loss(&mut m);
            m.params()[pi].1.value[i] = orig;
            let num = (lp - lm) / (2.0 * eps as f64);
            assert!(
                (num - g[i] as f64).abs() / scale < 2e-2,
                "param {pi}[{i}]: {num} vs {}",
                g[i]
            );
        }
    }
}

#[test]
fn class_vote_gradient() {
    use rram::nn::vote::ClassVote;
    let mut rng = Rng::new(13);
    let x = random_tensor(vec![12, 5], &mut rng, -1.0, 1.0);
    gradcheck(&mut ClassVote::new(4), &x, 1e-2, 1e-3, 60);
}

#[test]
fn resnet_basic_block_gradients() {
    // identity shortcut and the option-A shortcut (stride 2, 4 -> 8 channels, zero-padded)
    use rram::nn::Layer;
    use rram::nn::residual::BasicBlock;
    for (c_in, c_out, stride) in [(4, 4, 1), (4, 8, 2)] {
        let mut rng = Rng::new(12);
        let mut block = BasicBlock::new("b", 0, c_in, c_out, stride, BitWidths::FP32, &mut rng);
        // Shift both BNs' outputs to ~N(4, 1) so no ReLU sits near its kink (a central difference
        // across a kink halves the slope); everything else — convs, BN statistics, the shortcut,
        // the sum — is exercised as in training.
        for p in block.params() {
            if p.name.ends_with("beta") {
                p.value.iter_mut().for_each(|v| *v = 4.0);
            }
        }
        let x = random_tensor(vec![c_in, 3, 6, 6], &mut rng, -1.0, 1.0);
        gradcheck_with_kinks(&mut block, &x, 1e-2, 2e-2, 60, 0.0);
    }
}
