//! The crossbar path against the ideal one, the tiling, the transposed read, the cell writes,
//! the disturbance distributions and the counters.

mod common;

use common::{TRAIN, dac_tensor, random_tensor};
use rram::counters::OpCounts;
use rram::crossbar::array::{Input, ReadSpec, TiledMatrix};
use rram::crossbar::{AdcMode, CrossbarConfig, SignedInput};
use rram::device::disturbance::{Disturbance, Faults};
use rram::kernels::gemm::Trans;
use rram::kernels::reference;
use rram::nn::Layer;
use rram::nn::conv2d::Conv2dConfig;
use rram::nn::linear::Linear;
use rram::quant::output::{CoRange, Polarity};
use rram::quant::{BitWidths, Bits};
use rram::rng::Rng;
use rram::tensor::Tensor;

/// Arrays that compute exactly: no disturbance, Gmin = 0, one-phase backward at fp32.
fn exact(tile_rows: usize, tile_cols: usize) -> CrossbarConfig {
    let mut c = CrossbarConfig {
        tile_rows,
        tile_cols,
        disturb: Disturbance::None,
        signed_input: SignedInput::OnePhase,
        backward_adc_bits: Some(32),
        ..CrossbarConfig::default()
    };
    c.device.cond_min_us = 0.0;
    c
}

#[test]
fn crossbar_equals_ideal_bit_for_bit_without_noise_and_with_wide_adcs() {
    // Same seed -> same latent weights; one array per layer, CO at fp32.
    for w in [Bits::K(1), Bits::K(2), Bits::K(4), Bits::K(8)] {
        let bits = BitWidths {
            a: Bits::K(4),
            co: Bits::Fp32,
            w,
            g: Bits::K(4),
        };
        let mut ideal = Linear::new("fc", 0, 40, 12, bits, &mut Rng::new(3));
        let mut xbar = Linear::new("fc", 0, 40, 12, bits, &mut Rng::new(3));
        xbar.core.attach_crossbar(&exact(64, 64), 1);
        let mut rng = Rng::new(4);
        let x = dac_tensor(vec![40, 9], &mut rng, 15.0);
        let (yi, yx) = (ideal.forward(x.clone(), &TRAIN), xbar.forward(x, &TRAIN));
        assert_eq!(yi.data, yx.data, "{w:?} forward");
        let dy = random_tensor(yi.shape.clone(), &mut rng, -1.0, 1.0);
        let (di, dx) = (
            ideal.backward(dy.clone(), &TRAIN),
            xbar.backward(dy, &TRAIN),
        );
        assert_eq!(di.data, dx.data, "{w:?} backprop 1");
        assert_eq!(ideal.core.dw, xbar.core.dw, "{w:?} backprop 2");
    }
}

#[test]
fn crossbar_with_co_quantized_in_one_array_equals_ideal() {
    // With a CO-bit ADC the single array's ADC is the ideal CO quantizer.
    let bits = BitWidths::uniform(4);
    let mut ideal = Conv2dConfig::new(3, 5, 3)
        .with_pad(1)
        .init("c", 0, bits, &mut Rng::new(5));
    let mut xbar = Conv2dConfig::new(3, 5, 3)
        .with_pad(1)
        .init("c", 0, bits, &mut Rng::new(5));
    xbar.core.attach_crossbar(&exact(128, 128), 1);
    for core in [&mut ideal.core, &mut xbar.core] {
        core.co_rule = CoRange::MeanAbs(2.0);
    }
    let mut rng = Rng::new(6);
    let x = dac_tensor(vec![3, 2, 6, 6], &mut rng, 15.0);
    assert_eq!(
        ideal.forward(x.clone(), &TRAIN).data,
        xbar.forward(x, &TRAIN).data
    );
}

/// 1-bit weights of magnitude 1 and 1-bit inputs: every product and partial sum is an integer,
/// so float sums are exact in any order and tiling must not change a single bit.
fn integer_layer(tile: usize) -> (Linear, Tensor) {
    let bits = BitWidths {
        a: Bits::K(1),
        co: Bits::Fp32,
        w: Bits::K(1),
        g: Bits::Fp32,
    };
    let mut fc = Linear::new("fc", 0, 300, 140, bits, &mut Rng::new(7));
    let mut rng = Rng::new(8);
    fc.core
        .w
        .iter_mut()
        .for_each(|v| *v = if rng.uniform() < 0.5 { -1.0 } else { 1.0 });
    let mut cfg = exact(tile, tile);
    cfg.signed_input = SignedInput::TwoPhase;
    fc.core.attach_crossbar(&cfg, 1);
    let x = Tensor::new(
        vec![300, 5],
        (0..1500)
            .map(|_| (rng.uniform() < 0.5) as u8 as f32)
            .collect(),
    );
    (fc, x)
}

#[test]
fn tiling_over_several_arrays_equals_the_untiled_product() {
    let (mut big, x) = integer_layer(512); // one array
    let (mut tiled, _) = integer_layer(64); // 5 × 3 arrays, ragged edges
    assert_eq!(tiled.core.xbar.as_ref().unwrap().arrays(), 15);
    let (a, b) = (big.forward(x.clone(), &TRAIN), tiled.forward(x, &TRAIN));
    assert_eq!(a.data, b.data);
    // and the transposed read with integer errors, in two phases
    let dy = Tensor::new(
        a.shape.clone(),
        (0..a.len()).map(|i| ((i * 7) % 5) as f32 - 2.0).collect(),
    );
    assert_eq!(
        big.backward(dy.clone(), &TRAIN).data,
        tiled.backward(dy, &TRAIN).data
    );
}

#[test]
fn transposed_read_equals_w_transpose_times_e() {
    let mut rng = Rng::new(9);
    for (signed, tile) in [
        (SignedInput::OnePhase, 16),
        (SignedInput::TwoPhase, 16),
        (SignedInput::TwoPhase, 100),
        (SignedInput::TwoPhaseAnalog, 16),
    ] {
        let mut t = TiledMatrix::new(
            0,
            37,
            21,
            &CrossbarConfig {
                signed_input: signed,
                ..exact(tile, tile)
            },
            1,
        );
        let w_q: Vec<f32> = (0..37 * 21)
            .map(|_| ((rng.uniform() * 15.0).round() * 2.0 - 15.0) / 15.0)
            .collect();
        t.program(&w_q, Bits::K(4), 1, 0);
        let e: Vec<f32> = (0..21 * 6).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let spec = ReadSpec {
            g_bits: Bits::Fp32,
            adc_bits: Bits::Fp32,
            rule: CoRange::Max,
            seed: 1,
            step: 0,
        };
        let dx = t.backward(
            &e,
            6,
            spec,
            &mut OpCounts::default(),
            vec![7.0; 3], // a reused buffer with stale contents
        );
        let mut want = vec![0.0; 37 * 6];
        reference::matmul(&mut want, &w_q, Trans::Yes, &e, Trans::No, 37, 6, 21, false);
        for (a, b) in dx.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{signed:?} {tile}: {a} vs {b}");
        }
    }
}

#[test]
fn analog_two_phase_reads_as_one_phase_at_two_phases_of_dac_and_cell_cost() {
    // 37 × 21 on 16 × 16 arrays (3 row blocks × 2 column blocks), 2-bit row ADCs, batch 6.
    let mut rng = Rng::new(4);
    let w_q: Vec<f32> = (0..37 * 21)
        .map(|_| ((rng.uniform() * 3.0).round() * 2.0 - 3.0) / 3.0)
        .collect();
    let e: Vec<f32> = (0..21 * 6).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let read = |signed| {
        let cfg = CrossbarConfig {
            signed_input: signed,
            ..exact(16, 16)
        };
        let mut t = TiledMatrix::new(0, 37, 21, &cfg, 1);
        t.program(&w_q, Bits::K(2), 1, 0);
        let mut c = OpCounts::default();
        let spec = ReadSpec {
            g_bits: Bits::K(2),
            adc_bits: Bits::K(2),
            rule: CoRange::Auto,
            seed: 1,
            step: 0,
        };
        let dx = t.backward(&e, 6, spec, &mut c, vec![]);
        (dx, c)
    };
    let (one, c1) = read(SignedInput::OnePhase);
    let (analog, ca) = read(SignedInput::TwoPhaseAnalog);
    let (digital, cd) = read(SignedInput::TwoPhase);
    assert_eq!(analog, one);
    assert_ne!(digital, one, "two conversions read otherwise than one");
    // by hand: DAC 21 columns × 3 row blocks × 6 vectors per phase; ADC 37 rows × 2 column
    // blocks × 6 per conversion; cells 2 × 37 × 21 × 6 per phase; digital adds (reads − 1) per row
    assert_eq!(c1.dac_conversions, 21 * 3 * 6);
    assert_eq!(ca.dac_conversions, 21 * 3 * 6 * 2);
    assert_eq!(cd.dac_conversions, ca.dac_conversions);
    assert_eq!(
        (c1.adc_conversions, ca.adc_conversions),
        (37 * 2 * 6, 37 * 2 * 6)
    );
    assert_eq!(cd.adc_conversions, 37 * 2 * 6 * 2);
    assert_eq!(
        (c1.cell_reads, ca.cell_reads),
        (2 * 37 * 21 * 6, 2 * 37 * 21 * 6 * 2)
    );
    assert_eq!((c1.digital_ops, ca.digital_ops), (37 * 6, 37 * 6));
    assert_eq!(cd.digital_ops, 37 * 6 * 3);
}

#[test]
fn unchanged_cells_are_not_rewritten() {
    let cfg = CrossbarConfig::default(); // 5% disturbance
    let mut t = TiledMatrix::new(0, 10, 4, &cfg, 1);
    let mut w_q: Vec<f32> = (0..40)
        .map(|i| if i % 3 == 0 { 1.0 / 3.0 } else { -1.0 })
        .collect();
    // first programming: both cells of every pair are written
    assert_eq!(t.program(&w_q, Bits::K(2), 1, 0), 80);
    let before = (t.u_pos.clone(), t.u_neg.clone());
    assert_eq!(t.program(&w_q, Bits::K(2), 1, 1), 0);
    assert_eq!((t.u_pos.clone(), t.u_neg.clone()), before);
    // 1/3 -> 1: only the positive cell changes level; -1 -> 1/3: both cells change.
    w_q[0] = 1.0;
    w_q[1] = 1.0 / 3.0;
    assert_eq!(t.program(&w_q, Bits::K(2), 1, 2), 3);
    for i in 2..40 {
        assert_eq!(
            (t.u_pos[i], t.u_neg[i]),
            (before.0[i], before.1[i]),
            "cell {i} changed"
        );
    }
    assert_ne!(t.u_pos[0], before.0[0]);
    assert_eq!(t.u_neg[0], before.1[0]);
}

#[test]
fn stuck_cells_never_change() {
    let cfg = CrossbarConfig {
        faults: "sa0:0.2,sa1:0.2".parse::<Faults>().unwrap(),
        ..CrossbarConfig::default()
    };
    let mut t = TiledMatrix::new(0, 30, 20, &cfg, 1);
    let (u_min, u_max) = (cfg.device.u_min(), cfg.device.u_min() + 1.0);
    let mut rng = Rng::new(10);
    let initial = (t.u_pos.clone(), t.u_neg.clone());
    let stuck: Vec<bool> = initial.0.iter().map(|&u| u == u_max).collect();
    let mut seen_stuck_max = 0;
    for step in 0..5 {
        let w_q: Vec<f32> = (0..600)
            .map(|_| ((rng.uniform() * 3.0).round() * 2.0 - 3.0) / 3.0)
            .collect();
        t.program(&w_q, Bits::K(2), 1, step);
        for (u, _) in t.u_pos.iter().zip(&stuck).filter(|(_, s)| **s) {
            assert_eq!(*u, u_max);
            seen_stuck_max += 1;
        }
    }
    assert!(seen_stuck_max > 0);
    // roughly 20% stuck at each end among positive cells: those at u_max before any write
    let frac = stuck.iter().filter(|&&s| s).count() as f64 / 600.0;
    assert!((0.12..0.28).contains(&frac), "{frac}");
    let _ = u_min;
}

/// Kolmogorov–Smirnov statistic of `xs` against the CDF `f`.
fn ks(mut xs: Vec<f64>, f: impl Fn(f64) -> f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len() as f64;
    xs.iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = f(x);
            (c - i as f64 / n).abs().max(((i + 1) as f64 / n - c).abs())
        })
        .fold(0.0, f64::max)
}

fn erf(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26, |error| < 1.5e-7
    let t = 1.0 / (1.0 + 0.3275911 * x.abs());
    let y = 1.0
        - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
            + 0.254829592)
            * t
            * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

fn phi(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

#[test]
fn realised_write_errors_follow_the_requested_distribution() {
    let w_q: Vec<f32> = (0..200 * 100)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 / 3.0 })
        .collect();
    type Cdf = Box<dyn Fn(f64) -> f64>;
    let cases: [(Disturbance, Cdf); 3] = [
        (
            Disturbance::Uniform(0.05),
            Box::new(|e| ((e + 0.05) / 0.1).clamp(0.0, 1.0)),
        ),
        (Disturbance::Gaussian(0.03), Box::new(|e| phi(e / 0.03))),
        (
            Disturbance::LogNormal(0.1),
            Box::new(|e: f64| {
                if e <= -1.0 {
                    0.0
                } else {
                    phi((1.0 + e).ln() / 0.1)
                }
            }),
        ),
    ];
    for (d, cdf) in cases {
        let cfg = CrossbarConfig {
            disturb: d,
            ..CrossbarConfig::default()
        };
        let mut t = TiledMatrix::new(0, 200, 100, &cfg, 3);
        t.program(&w_q, Bits::K(2), 3, 0);
        let errs: Vec<f64> = t.write_errors().iter().map(|&v| v as f64).collect();
        assert_eq!(errs.len(), 40_000);
        let stat = ks(errs, cdf);
        // 99.9% critical value 1.95/sqrt(n) ≈ 0.0098; f32 rounding of the conductances adds ~1e-6.
        assert!(stat < 0.0098, "{d}: KS statistic {stat}");
    }
}

#[test]
fn counters_match_hand_counts_for_a_small_fc_and_conv() {
    // FC 300 -> 140 on 128×128 arrays: 3 row blocks × 2 column blocks = 6 arrays. Batch 5.
    let (mut fc, x) = integer_layer(128);
    fc.core.bits = BitWidths::uniform(4);
    fc.core.backward_adc_bits = Bits::K(4);
    // two-phase backward (integer_layer sets it)
    let y = fc.forward(x, &TRAIN);
    fc.backward(Tensor::new(y.shape.clone(), vec![0.5; y.len()]), &TRAIN);
    let c = fc.core.counters;
    let p = 5u64;
    // forward: every row value is converted once per column block; every column once per row block
    assert_eq!(c.forward.dac_conversions, 300 * 2 * p);
    assert_eq!(c.forward.adc_conversions, 140 * 3 * p);
    assert_eq!(c.forward.cell_reads, 2 * 300 * 140 * p);
    assert_eq!((c.forward.dac_bits, c.forward.adc_bits), (4, 4));
    // partial sums: (3 - 1) adds per output, plus α and bias (2 per output)
    assert_eq!(c.forward.digital_ops, 2 * 140 * p + 2 * 140 * p);
    // backprop 1, two phases: columns driven once per row block and phase, rows read per column block and phase
    assert_eq!(c.backprop1.dac_conversions, 140 * 3 * p * 2);
    assert_eq!(c.backprop1.adc_conversions, 300 * 2 * p * 2);
    assert_eq!(c.backprop1.cell_reads, 2 * 300 * 140 * p * 2);
    // backprop 2 is digital
    assert_eq!(c.backprop2.digital_macs, 300 * 140 * p);
    assert_eq!(c.backprop2.cell_reads, 0);
    // update: all 2 × 300 × 140 cells written once at first programming
    assert_eq!(c.update.cell_writes, 2 * 300 * 140);

    // Conv 2 -> 3 channels, 3×3, pad 1, on 8×8 inputs, batch 2, one 128×128 array:
    // rows = 18, cols = 3, positions per sample 64, p = 128.
    let bits = BitWidths::uniform(4);
    let mut conv = Conv2dConfig::new(2, 3, 3)
        .with_pad(1)
        .init("c", 0, bits, &mut Rng::new(1));
    conv.core.attach_crossbar(&CrossbarConfig::default(), 1);
    let mut rng = Rng::new(2);
    let x = random_tensor(vec![2, 2, 8, 8], &mut rng, 0.0, 1.0);
    let y = conv.forward(x, &TRAIN);
    conv.backward(Tensor::new(y.shape.clone(), vec![0.1; y.len()]), &TRAIN);
    let c = conv.core.counters;
    assert_eq!(c.forward.dac_conversions, 18 * 128);
    assert_eq!(c.forward.adc_conversions, 3 * 128);
    assert_eq!(c.forward.cell_reads, 2 * 18 * 3 * 128);
    assert_eq!(c.backprop1.dac_conversions, 3 * 128 * 2);
    assert_eq!(c.backprop1.adc_conversions, 18 * 128 * 2);
    assert_eq!(c.backprop2.digital_macs, 18 * 3 * 128);
    assert_eq!(c.update.cell_writes, 2 * 18 * 3);
}

#[test]
fn full_sum_adc_converts_each_column_once() {
    let (mut fc, x) = integer_layer(128);
    fc.core.bits = BitWidths::uniform(4);
    let cfg = CrossbarConfig {
        adc: AdcMode::FullSum,
        ..exact(128, 128)
    };
    fc.core.attach_crossbar(&cfg, 1);
    fc.forward(x, &TRAIN);
    assert_eq!(fc.core.counters.forward.adc_conversions, 140 * 5);
}

/// A 1-bit-ADC layer (a centred comparator) on its ideal engine and on one exact array.
fn comparator_pair(tile_rows: usize) -> (Linear, Linear, Tensor) {
    centred_pair(tile_rows, 1)
}

/// A layer with a centred `co`-bit ADC on its ideal engine and on one exact array.
fn centred_pair(tile_rows: usize, co: u8) -> (Linear, Linear, Tensor) {
    let bits = BitWidths {
        a: Bits::K(4),
        co: Bits::K(co),
        w: Bits::K(4),
        g: Bits::Fp32,
    };
    let mut ideal = Linear::new("fc", 0, 40, 6, bits, &mut Rng::new(11));
    let mut xbar = Linear::new("fc", 0, 40, 6, bits, &mut Rng::new(11));
    for l in [&mut ideal, &mut xbar] {
        l.core.bias = (0..6).map(|c| 0.1 * c as f32 - 0.2).collect();
        l.core.co_rule = CoRange::Auto;
        l.core.set_centre_adc(true);
    }
    xbar.core.attach_crossbar(&exact(tile_rows, 64), 1);
    let mut rng = Rng::new(12);
    let x = dac_tensor(vec![40, 16], &mut rng, 15.0);
    (ideal, xbar, x)
}

#[test]
fn centred_comparator_on_one_array_equals_ideal_and_reads_plus_minus_one() {
    let (mut ideal, mut xbar, x) = comparator_pair(64);
    let alpha = ideal.core.alpha();
    let (yi, yx) = (ideal.forward(x.clone(), &TRAIN), xbar.forward(x, &TRAIN));
    assert_eq!(yi.data, yx.data);
    // every output is α·(±1) + 0.5, and each column fires on part of the batch
    for c in 0..6 {
        let row = &yi.data[c * 16..(c + 1) * 16];
        assert!(row.iter().all(|&v| v == 0.5 + alpha || v == 0.5 - alpha));
        assert!(row.contains(&(0.5 + alpha)) && row.contains(&(0.5 - alpha)));
    }
    let mut rng = Rng::new(13);
    let dy = random_tensor(yi.shape.clone(), &mut rng, -1.0, 1.0);
    let (di, dx) = (
        ideal.backward(dy.clone(), &TRAIN),
        xbar.backward(dy.clone(), &TRAIN),
    );
    assert_eq!(di.data, dx.data);
    assert_eq!(ideal.core.dw, xbar.core.dw);
    assert_eq!(ideal.core.dbias, xbar.core.dbias);
    // α stays fixed; the bias is the threshold before the ADC, so its gradient is the error
    // that passes the comparator's straight-through window, times α
    assert_eq!(ideal.core.dlog_alpha, vec![0.0]);
    let pre = yi
        .pre_quant
        .as_ref()
        .expect("pre-ADC values kept in training");
    for c in 0..6 {
        let mut want = 0f32;
        for i in 0..16 {
            let centred = (pre[c * 16 + i] - 0.5) / alpha; // pre = α·(co − ref + b) + 0.5
            let window = ideal.core.co_range[0];
            if centred.abs() <= window {
                want += alpha * dy.data[c * 16 + i];
            }
        }
        assert!((ideal.core.dbias[c] - want).abs() < 1e-5, "{c}");
    }
}

#[test]
fn centred_two_bit_adc_reads_three_levels_around_each_column_mean() {
    let (mut ideal, mut xbar, x) = centred_pair(64, 2);
    let alpha = ideal.core.alpha();
    let (yi, yx) = (
        ideal.forward(x.clone(), &TRAIN),
        xbar.forward(x.clone(), &TRAIN),
    );
    assert_eq!(yi.data, yx.data);
    // by hand: co = W_q·x, minus each column's batch mean, plus the bias (the threshold); range
    // s = 1.5·mean|·| (`auto` at 2 bits); reads round(v/s) clipped to ±1, times s and α, + 0.5
    let w = ideal.core.w_q().to_vec();
    let mut v = vec![0f32; 6 * 16];
    for c in 0..6 {
        for i in 0..16 {
            v[c * 16 + i] = (0..40).map(|r| w[c * 40 + r] * x.data[r * 16 + i]).sum();
        }
        let mean = v[c * 16..(c + 1) * 16].iter().sum::<f32>() / 16.0;
        for i in 0..16 {
            v[c * 16 + i] += ideal.core.bias[c] - mean;
        }
    }
    let s = 1.5 * v.iter().map(|a| a.abs()).sum::<f32>() / v.len() as f32;
    assert!((ideal.core.co_range[0] - s).abs() < 1e-4 * s);
    for (k, (&got, &pre)) in yi.data.iter().zip(&v).enumerate() {
        let level = (pre / s).round().clamp(-1.0, 1.0);
        let want = 0.5 + alpha * level * s;
        assert!((got - want).abs() < 1e-4, "{k}: {got} vs {want}");
    }
    // a column's offset is the reference's, not the ADC's: every column uses all three levels
    for c in 0..6 {
        let row = &yi.data[c * 16..(c + 1) * 16];
        let n_mid = row.iter().filter(|&&a| (a - 0.5).abs() < 1e-6).count();
        assert!(n_mid > 0 && n_mid < 16, "column {c}: {row:?}");
    }
    // the backward is the plain ADC's straight-through one, equal on both engines; α fixed
    let mut rng = Rng::new(15);
    let dy = random_tensor(yi.shape.clone(), &mut rng, -1.0, 1.0);
    let (di, dx) = (
        ideal.backward(dy.clone(), &TRAIN),
        xbar.backward(dy, &TRAIN),
    );
    assert_eq!(di.data, dx.data);
    assert_eq!(ideal.core.dw, xbar.core.dw);
    assert_eq!(ideal.core.dlog_alpha, vec![0.0]);
}

#[test]
fn centred_comparators_over_several_arrays_add_their_reads() {
    // 40 rows on arrays of 16 rows: three comparators per column, each ±1
    let (_, mut xbar, x) = comparator_pair(16);
    let alpha = xbar.core.alpha();
    let y = xbar.forward(x, &TRAIN);
    let levels: Vec<f32> = [-3.0f32, -1.0, 1.0, 3.0]
        .iter()
        .map(|k| 0.5 + alpha * k)
        .collect();
    assert!(
        y.data.iter().all(|v| levels.contains(v)),
        "{:?}",
        &y.data[..8]
    );
    assert_eq!(xbar.core.xbar.as_ref().unwrap().fwd_centre.len(), 3 * 6);
}

#[test]
fn centred_comparator_learns_alpha_only_on_the_logits() {
    let (mut hidden, mut logits, x) = comparator_pair(64);
    logits.core.xbar = None;
    logits.core.logits = true;
    let mut rng = Rng::new(14);
    for l in [&mut hidden, &mut logits] {
        let y = l.forward(x.clone(), &TRAIN);
        let dy = random_tensor(y.shape.clone(), &mut rng, -1.0, 1.0);
        l.backward(dy, &TRAIN);
    }
    assert_eq!(hidden.core.dlog_alpha, vec![0.0]);
    assert_ne!(logits.core.dlog_alpha, vec![0.0]);
}

#[test]
fn a_conv_on_the_arrays_block_by_block_equals_the_whole_matrix() {
    // 20 samples of 16×16×16 (rows 144 over 2-3 row blocks, 24 columns over 1-2 column blocks)
    // with disturbance and 4-bit ADCs, in all three signed-input modes: the blockwise passes
    // (a few samples per block, blocks in parallel) read the same values as one whole column
    // matrix. The ADC ranges of the transposed read come from block sums there, so equality
    // of dJ/dx holds unless a range lands on an f32 rounding boundary (it does not here).
    let bits = BitWidths::uniform(4);
    for (tile, signed) in [
        ((64, 16), SignedInput::TwoPhase),
        ((128, 128), SignedInput::TwoPhase),
        ((64, 16), SignedInput::OnePhase),
        ((100, 128), SignedInput::TwoPhaseAnalog),
    ] {
        let cfg = CrossbarConfig {
            tile_rows: tile.0,
            tile_cols: tile.1,
            signed_input: signed,
            ..CrossbarConfig::default()
        };
        let make = |whole: bool| {
            let mut c =
                Conv2dConfig::new(16, 24, 3)
                    .with_pad(1)
                    .init("c", 0, bits, &mut Rng::new(1));
            c.core.attach_crossbar(&cfg, 7);
            c.whole_matrix = whole;
            c
        };
        let (mut a, mut b) = (make(false), make(true));
        let mut rng = Rng::new(2);
        let x = random_tensor(vec![16, 20, 16, 16], &mut rng, 0.0, 1.0);
        for step in 0..2 {
            let ctx = rram::nn::Ctx::train(step, 3);
            let (ya, yb) = (a.forward(x.clone(), &ctx), b.forward(x.clone(), &ctx));
            assert_eq!(ya.data, yb.data, "{tile:?} {signed:?} forward");
            let dy = random_tensor(ya.shape.clone(), &mut rng, -1.0, 1.0);
            let (da, db) = (a.backward(dy.clone(), &ctx), b.backward(dy, &ctx));
            assert_eq!(da.data, db.data, "{tile:?} {signed:?} dJ/dx");
            assert_eq!(a.core.dw, b.core.dw, "{tile:?} {signed:?} dW");
            assert_eq!(
                a.core.counters, b.core.counters,
                "{tile:?} {signed:?} counters"
            );
        }
    }
}

#[test]
fn unipolar_adcs_equal_ideal_where_one_conversion_reads_a_column() {
    // One array, or one ADC per whole column (`--adc full-sum`): the ideal engine's unipolar
    // read bit for bit.
    let bits = BitWidths::uniform(2);
    let layer = |cfg: Option<CrossbarConfig>, polarity: Polarity| {
        let mut fc = Linear::new("fc", 0, 40, 12, bits, &mut Rng::new(3));
        fc.core.polarity = polarity;
        fc.core.co_rule = CoRange::MeanAbs(1.0);
        if let Some(cfg) = cfg {
            fc.core.attach_crossbar(&cfg, 1);
        }
        fc
    };
    let mut rng = Rng::new(4);
    let x = dac_tensor(vec![40, 9], &mut rng, 3.0);
    let run = |mut fc: Linear| fc.forward(x.clone(), &TRAIN).data;
    let ideal = run(layer(None, Polarity::Unipolar));
    assert_eq!(run(layer(Some(exact(64, 64)), Polarity::Unipolar)), ideal);
    let mut full_sum = exact(16, 64);
    full_sum.adc = AdcMode::FullSum;
    assert_eq!(run(layer(Some(full_sum), Polarity::Unipolar)), ideal);
    // four levels from zero (α = 1, no bias yet), where the bipolar read has −s, 0 and s
    let mut levels: Vec<f32> = ideal.clone();
    levels.sort_by(f32::total_cmp);
    levels.dedup();
    assert!(levels.len() == 4 && levels[0] == 0.0, "{levels:?}");
    assert_ne!(run(layer(None, Polarity::Bipolar)), ideal);
    // 40 rows on 16-row arrays: three row blocks whose partial reads add up; read bipolar
    // (`partial_polarity = "bipolar"`), the numbers of a bipolar layer
    let spanning = |partial: Polarity| CrossbarConfig {
        partial_polarity: partial,
        ..exact(16, 64)
    };
    assert_eq!(
        run(layer(Some(spanning(Polarity::Bipolar)), Polarity::Unipolar)),
        run(layer(Some(exact(16, 64)), Polarity::Bipolar))
    );
    // the default reads them skewed: not the bipolar numbers
    assert_ne!(
        run(layer(Some(exact(16, 64)), Polarity::Unipolar)),
        run(layer(Some(exact(16, 64)), Polarity::Bipolar))
    );
}

#[test]
fn partial_sums_of_spanning_columns_read_skewed_and_add_up() {
    // 40 rows × 6 columns on 16-row arrays (row blocks of 16, 16, 8), ±1 weights and 0/1
    // inputs: every partial sum is an integer, so the arrays' products are exact and the
    // output is the hand sum of each block's read, each with its own range (mean|partial|).
    let (rows, cols, p) = (40, 6, 9);
    let cfg = exact(16, 64);
    assert_eq!(cfg.partial_polarity, Polarity::Skewed, "the default");
    let mut rng = Rng::new(21);
    let w_q: Vec<f32> = (0..rows * cols)
        .map(|_| if rng.uniform() < 0.5 { -1.0 } else { 1.0 })
        .collect();
    let x: Vec<f32> = (0..rows * p)
        .map(|_| (rng.uniform() < 0.6) as u8 as f32)
        .collect();
    let rule = CoRange::MeanAbs(1.0);
    let two = Bits::K(2);
    for (partial, top) in [(Polarity::Skewed, 2.0), (Polarity::Bipolar, 1.0)] {
        let mut t = TiledMatrix::new(
            0,
            rows,
            cols,
            &CrossbarConfig {
                partial_polarity: partial,
                ..cfg.clone()
            },
            1,
        );
        t.program(&w_q, Bits::K(1), 1, 0);
        assert!(t.weights().iter().all(|w| w.abs() == 1.0), "exact ±1 cells");
        let (y, pass, _) = t.forward(
            Input::Matrix(&x),
            p,
            Bits::K(1),
            two,
            rule,
            Polarity::Unipolar,
            None,
            true,
            false,
            1,
            0,
            &mut OpCounts::default(),
        );
        let (mut want, mut want_pass) = (vec![0.0f32; cols * p], vec![1u8; cols * p]);
        let (mut below, mut above) = (0, 0);
        for (r0, r1) in [(0, 16), (16, 32), (32, 40)] {
            let part: Vec<f32> = (0..cols * p)
                .map(|i| {
                    (r0..r1)
                        .map(|r| w_q[i / p * rows + r] * x[r * p + i % p])
                        .sum()
                })
                .collect();
            let s = rram::quant::output::batch_range(&part, two, rule);
            for (i, &v) in part.iter().enumerate() {
                // skewed: −s, 0, s, 2s; bipolar: −s, 0, s (no value near a tie here)
                let u = v / s;
                assert!((u - u.floor() - 0.5).abs() > 1e-3, "tie at {v}");
                want[i] += u.round().clamp(-1.0, top) * s;
                // the straight-through window: skewed closes only above 2s
                let lo = if partial == Polarity::Skewed {
                    f32::NEG_INFINITY
                } else {
                    -s
                };
                want_pass[i] &= (lo <= v && v <= top * s) as u8;
                below += (u < -1.5) as usize;
                above += (u > top + 0.5) as usize;
            }
        }
        assert!(below > 0 && above > 0, "{partial:?}: reads clip both ways");
        assert_eq!(y, want, "{partial:?}");
        assert_eq!(
            pass.unwrap_or_else(|| vec![1; cols * p]),
            want_pass,
            "{partial:?}"
        );
    }
}

#[test]
fn centred_backward_takes_each_columns_mean_error_out_of_both_gradients() {
    // A centred comparator with fp32 weights and errors: g = α·dy inside the comparator's
    // window, so each column's Σ_t g is its bias gradient and ḡ = dJ/db / 16. By hand:
    // dW = g·xᵀ − ḡ·(Σ_t x_t)ᵀ, while dJ/dx stays Wᵀ·g; the same on one exact array.
    let bits = BitWidths {
        a: Bits::K(4),
        co: Bits::K(1),
        w: Bits::Fp32,
        g: Bits::Fp32,
    };
    let make = |centred: bool, arrays: bool| {
        let mut l = Linear::new("fc", 0, 40, 6, bits, &mut Rng::new(11));
        l.core.bias = (0..6).map(|c| 0.1 * c as f32 - 0.2).collect();
        l.core.centred_backward = centred;
        if arrays {
            l.core.attach_crossbar(&exact(64, 64), 1);
        }
        l
    };
    let (mut held, mut ideal, mut xbar) = (make(false, false), make(true, false), make(true, true));
    let mut rng = Rng::new(12);
    let x = dac_tensor(vec![40, 16], &mut rng, 15.0);
    let dy = random_tensor(vec![6, 16], &mut rng, -1.0, 1.0);
    for l in [&mut held, &mut ideal, &mut xbar] {
        l.forward(x.clone(), &TRAIN);
    }
    let dh = held.backward(dy.clone(), &TRAIN);
    let di = ideal.backward(dy.clone(), &TRAIN);
    let dxb = xbar.backward(dy, &TRAIN);
    // (the cells hold fp32 weights as conductances: equal to rounding)
    for (a, b) in di.data.iter().zip(&dxb.data) {
        assert!((a - b).abs() < 1e-5, "arrays dJ/dx: {a} vs {b}");
    }
    assert_eq!(ideal.core.dw, xbar.core.dw, "arrays dW");
    assert_eq!(
        held.core.dbias, ideal.core.dbias,
        "the bias sees the whole error either way"
    );
    let gbar: Vec<f32> = ideal.core.dbias.iter().map(|b| b / 16.0).collect();
    assert!(
        gbar.iter().any(|g| g.abs() > 1e-2),
        "a test with no mean error tests nothing"
    );
    for (c, gb) in gbar.iter().enumerate() {
        for r in 0..40 {
            let xs: f32 = x.data[r * 16..(r + 1) * 16].iter().sum();
            let want = held.core.dw[c * 40 + r] - gb * xs;
            let got = ideal.core.dw[c * 40 + r];
            assert!((got - want).abs() < 1e-4, "dW[{c},{r}]: {got} vs {want}");
        }
    }
    assert_eq!(di.data, dh.data, "dJ/dx");
    // the digital work: one sum per error and a divide per column (part 2), nothing else
    let (h, i) = (&held.core.counters, &ideal.core.counters);
    assert_eq!(i.backprop2.digital_ops - h.backprop2.digital_ops, 6 * 17);
    assert_eq!((i.forward, i.backprop1), (h.forward, h.backprop1));
}

#[test]
fn centred_backward_agrees_on_every_path_of_a_conv() {
    // A centred comparator conv: the ideal engine by sample blocks (its fused products take
    // the centred error for dW, the plain one for dJ/dx) and as one matrix, and one exact array
    // by blocks and whole, give the same gradients and counts.
    let bits = BitWidths {
        a: Bits::K(4),
        co: Bits::K(1),
        w: Bits::K(4),
        g: Bits::Fp32,
    };
    let mut rng = Rng::new(6);
    let x = dac_tensor(vec![3, 4, 6, 6], &mut rng, 15.0);
    let dy = random_tensor(vec![5, 4, 6, 6], &mut rng, -1.0, 1.0);
    let run = |arrays: bool, whole: bool, centred: bool| {
        let mut c = Conv2dConfig::new(3, 5, 3)
            .with_pad(1)
            .init("c", 0, bits, &mut Rng::new(5));
        c.core.centred_backward = centred;
        if arrays {
            c.core.attach_crossbar(&exact(128, 128), 1);
        }
        c.whole_matrix = whole;
        let y = c.forward(x.clone(), &TRAIN);
        let dx = c.backward(dy.clone(), &TRAIN);
        (y.data, dx.data, c.core.dw.clone(), c.core.counters)
    };
    let close = |a: &[f32], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len());
        for (k, (u, v)) in a.iter().zip(b).enumerate() {
            assert!((u - v).abs() < 1e-4, "{what} [{k}]: {u} vs {v}");
        }
    };
    let base = run(false, false, true);
    for (arrays, whole) in [(false, false), (false, true), (true, false), (true, true)] {
        let (other, held) = (run(arrays, whole, true), run(arrays, whole, false));
        let what = format!("arrays {arrays}, whole {whole}");
        assert_eq!(base.0, other.0, "{what} forward");
        close(&base.1, &other.1, &format!("{what} dJ/dx"));
        close(&base.2, &other.2, &format!("{what} dW"));
        // the held reference's dJ/dx but not its dW, for the digital work counted in
        // `weight_errors` (5 columns, 4·36 positions)
        assert_eq!((&other.0, &other.1), (&held.0, &held.1), "{what}");
        assert!(
            other
                .2
                .iter()
                .zip(&held.2)
                .any(|(a, b)| (a - b).abs() > 1e-3)
        );
        let (c, h) = (&other.3, &held.3);
        assert_eq!(
            c.backprop2.digital_ops - h.backprop2.digital_ops,
            5 * 145,
            "{what}"
        );
        assert_eq!((c.forward, c.backprop1), (h.forward, h.backprop1), "{what}");
    }
}
