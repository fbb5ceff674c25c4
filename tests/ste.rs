//! Quantized matrix layers: the backward follows the straight-through rules of spec §2.
//! With G at fp32, dx must equal W_qᵀ·(α·dy) and dW must equal (α·dy)·xᵀ ⊙ d(w_q)/dw, where
//! d(w_q)/dw = (1 − tanh²w)/max|tanh w| (k ≥ 2) or 1 (k = 1) — checked against the naive oracle.

mod common;

use common::{TRAIN, random_tensor};
use rram::kernels::gemm::Trans;
use rram::kernels::reference;
use rram::nn::Layer;
use rram::nn::linear::Linear;
use rram::quant::output::{CoRange, Polarity};
use rram::quant::{BitWidths, Bits};
use rram::rng::Rng;
use rram::tensor::Tensor;

/// `op(a)·op(b)` (`[m, n]`, inner size `k`) by the naive reference product.
fn product(
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    (m, n, k): (usize, usize, usize),
) -> Vec<f32> {
    let mut out = vec![0.0; m * n];
    reference::matmul(&mut out, a, ta, b, tb, m, n, k, false);
    out
}

fn check(w_bits: Bits) {
    let mut rng = Rng::new(4);
    let bits = BitWidths {
        a: Bits::K(4),
        co: Bits::K(4),
        w: w_bits,
        g: Bits::Fp32,
    };
    let (d_in, d_out, n) = (9, 5, 3);
    let mut fc = Linear::new("fc", 0, d_in, d_out, bits, &mut rng);
    fc.core.set_alpha(0.6);
    let x = random_tensor(vec![d_in, n], &mut rng, 0.0, 1.0);
    let y = fc.forward(x.clone(), &TRAIN);
    // forward output lies on α·(CO grid) + b (b = 0 here): 15 levels of max|co|/7.
    let dy = random_tensor(y.shape.clone(), &mut rng, -1.0, 1.0);
    let dx = fc.backward(dy.clone(), &TRAIN);
    let w = fc.core.w.clone();
    let w_q = fc.core.w_q().to_vec();
    let g: Vec<f32> = dy.data.iter().map(|v| v * 0.6).collect();

    let want_dx = product(&w_q, Trans::Yes, &g, Trans::No, (d_in, n, d_out));
    for (a, b) in dx.data.iter().zip(&want_dx) {
        assert!((a - b).abs() < 1e-5, "dx {a} vs {b}");
    }
    let want_dwq = product(&g, Trans::No, &x.data, Trans::Yes, (d_out, d_in, n));
    let max = w.iter().fold(0f32, |m, v| m.max(v.tanh().abs()));
    for (i, (a, b)) in fc.core.dw.iter().zip(&want_dwq).enumerate() {
        let d = if w_bits == Bits::K(1) {
            1.0
        } else {
            (1.0 - w[i].tanh().powi(2)) / max
        };
        assert!((a - b * d).abs() < 1e-5, "dw[{i}] {a} vs {}", b * d);
    }
}

#[test]
fn straight_through_rules_for_w4() {
    check(Bits::K(4));
}

#[test]
fn straight_through_rules_for_w2() {
    check(Bits::K(2));
}

#[test]
fn straight_through_rules_for_w1() {
    check(Bits::K(1));
}

#[test]
fn quantized_forward_is_the_quantized_product() {
    // y = α·CO(W_q·x): recompute with the reference product and the CO rule by hand.
    let mut rng = Rng::new(11);
    let bits = BitWidths::uniform(3);
    let mut fc = Linear::new("fc", 0, 6, 4, bits, &mut rng);
    fc.core.set_alpha(2.0);
    let x = random_tensor(vec![6, 5], &mut rng, 0.0, 1.0);
    let y = fc.forward(x.clone(), &TRAIN);
    let co = product(fc.core.w_q(), Trans::No, &x.data, Trans::No, (4, 5, 6));
    let s = co.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (a, c) in y.data.iter().zip(&co) {
        let want = 2.0 * s * (c / s * 3.0).round() / 3.0;
        assert!((a - want).abs() < 1e-5, "{a} vs {want}");
    }
    // W_q for k = 3 lies on {−1, −5/7, …, 1}
    for v in fc.core.w_q() {
        let idx = (v + 1.0) / 2.0 * 7.0;
        assert!((idx - idx.round()).abs() < 1e-5);
    }
    let _ = Tensor::zeros(vec![1]);
}

#[test]
fn unipolar_read_is_four_levels_from_zero_and_passes_only_inside_them() {
    // CO = 2 bits unipolar, range s = 1·mean|co| (`mean:1`): y = α·s·round(clip(co/s, 0, 1)·3)/3,
    // and with G at fp32 dx = W_qᵀ·(α·dy ⊙ [0 ≤ co ≤ s])
    let mut rng = Rng::new(12);
    let bits = BitWidths {
        a: Bits::K(4),
        co: Bits::K(2),
        w: Bits::K(4),
        g: Bits::Fp32,
    };
    let (d_in, d_out, n) = (9, 6, 7);
    let mut fc = Linear::new("fc", 0, d_in, d_out, bits, &mut rng);
    fc.core.polarity = Polarity::Unipolar;
    fc.core.co_rule = CoRange::MeanAbs(1.0);
    fc.core.set_alpha(0.5);
    let x = random_tensor(vec![d_in, n], &mut rng, 0.0, 1.0);
    let y = fc.forward(x.clone(), &TRAIN);
    let co = product(
        fc.core.w_q(),
        Trans::No,
        &x.data,
        Trans::No,
        (d_out, n, d_in),
    );
    let s = co.iter().map(|v| v.abs()).sum::<f32>() / co.len() as f32;
    let mut levels = std::collections::BTreeSet::new();
    for (a, c) in y.data.iter().zip(&co) {
        let level = (c / s).clamp(0.0, 1.0) * 3.0;
        let want = 0.5 * s * level.round() / 3.0;
        assert!((a - want).abs() < 1e-5, "{a} vs {want} (co {c})");
        levels.insert(level.round() as u8);
    }
    assert!(co.iter().any(|&c| c < 0.0) && co.iter().any(|&c| c > s));
    assert!(
        levels.len() >= 3,
        "the read uses the levels above zero: {levels:?}"
    );
    let dy = random_tensor(y.shape.clone(), &mut rng, -1.0, 1.0);
    let dx = fc.backward(dy.clone(), &TRAIN);
    let g: Vec<f32> = dy
        .data
        .iter()
        .zip(&co)
        .map(|(d, &c)| if (0.0..=s).contains(&c) { 0.5 * d } else { 0.0 })
        .collect();
    let want_dx = product(fc.core.w_q(), Trans::Yes, &g, Trans::No, (d_in, n, d_out));
    for (a, b) in dx.data.iter().zip(&want_dx) {
        assert!((a - b).abs() < 1e-5, "dx {a} vs {b}");
    }
}
