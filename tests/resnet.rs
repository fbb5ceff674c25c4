//! Quantized ResNet: what it took for it to train at all. Each test failed before its fix
//! (docs/results.md, "Why quantized ResNet-20 did not train, and the three fixes").

mod common;

use common::{TRAIN, random_tensor};
use rram::config::ModelKind;
use rram::models::{Model, Variant};
use rram::nn::activation::Activation;
use rram::nn::batch_norm::BatchNorm2d;
use rram::nn::{Ctx, Layer};
use rram::quant::{BitWidths, Bits};
use rram::rng::Rng;

fn std(v: &[f32]) -> f64 {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    (v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n).sqrt()
}

/// Before any training, BN's running statistics are those of a unit input; DoReFa weights on
/// [−1, 1] grow each conv's output ~10×, so an evaluation pass through 19 convs reached the FC at
/// ~1e14 and calibration gave it α ≈ 1e−15: the logits never moved. Calibration now normalises
/// with the batch's own statistics.
#[test]
fn calibration_reaches_the_target_scale_with_quantized_weights() {
    let mut rng = Rng::new(3);
    let bits: BitWidths = "8,8,8,8".parse().unwrap();
    let mut m = Model::build(ModelKind::Resnet20, bits, Variant::default(), &mut rng);
    let x = random_tensor(vec![3, 4, 32, 32], &mut rng, 0.0, 1.0);
    m.calibrate(x.clone(), 0.5, 1);
    let logits = m.forward(x, &Ctx::calibration(1));
    let s = std(&logits.data);
    assert!((s - 0.5).abs() < 0.01, "logit std {s}");
}

/// counters.json must hold every matrix, the convs inside residual blocks too (it held only
/// conv1 and fc, so ResNet energies from a run's counters missed 18 of 20 layers).
#[test]
fn counters_list_every_matrix_of_a_resnet() {
    let mut rng = Rng::new(1);
    let mut m = Model::build(
        ModelKind::Resnet20,
        BitWidths::FP32,
        Variant::default(),
        &mut rng,
    );
    let names: Vec<String> = m.counters().into_iter().map(|r| r.layer).collect();
    assert_eq!(names.len(), 20);
    assert_eq!(names[0], "conv1");
    assert_eq!(names[1], "s1b1.conv1");
    assert_eq!(names[19], "fc");
}

/// The value before the CO quantizer is where the next activation judges its straight-through
/// mask; BN must map it as it maps the data (it passed it on un-normalised).
#[test]
fn batch_norm_maps_the_pre_quantization_values_like_the_data() {
    let mut rng = Rng::new(5);
    let mut bn = BatchNorm2d::new("bn", 3);
    let mut x = random_tensor(vec![3, 2, 4, 4], &mut rng, -3.0, 7.0);
    x.pre_quant = Some(x.data.clone());
    let y = bn.forward(x, &TRAIN);
    assert_eq!(y.pre_quant.as_deref(), Some(&y.data[..]));
}

/// A ranged DAC input: r = auto_factor(2)·mean|x| = 1.5 · 1.5 = 2.25, then
/// a_q = r·quantize_2(clip(x/r, 0, 1)): x/r = 0, .222, .444, .889, 1.78 → 0, 1/3, 1/3, 1, 1.
#[test]
fn ranged_activation_hand_values() {
    let mut a = Activation::ranged("a", Bits::K(2));
    let x = rram::tensor::Tensor::new(vec![5, 1], vec![0.0, 0.5, 1.0, 2.0, 4.0]);
    let y = a.forward(x.clone(), &TRAIN);
    let r = 2.25f32;
    let want = [0.0, r / 3.0, r / 3.0, r, r];
    for (g, w) in y.data.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{:?}", y.data);
    }
    let d = a.backward(rram::tensor::Tensor::new(vec![5, 1], vec![1.0; 5]), &TRAIN);
    assert_eq!(d.data, vec![1.0, 1.0, 1.0, 1.0, 0.0]);
    // evaluation keeps the running range: another batch is mapped with r = 2.25
    let y = a.forward(
        rram::tensor::Tensor::new(vec![2, 1], vec![1.125, 9.0]),
        &Ctx::eval(1),
    );
    assert_eq!(y.data, vec![r / 3.0 * 2.0, r]);
    assert_eq!(a.buffers()[0].1[0], r);
}

/// `--test-flip` averages the class probabilities of each test image and of its mirror image,
/// so it cannot matter which of the two the test set holds (the plain evaluation does tell
/// them apart), and on mirror-symmetric images it is the plain evaluation.
#[test]
fn flip_evaluation_cannot_tell_a_test_set_from_its_mirror() {
    use rram::config::RunConfig;
    use rram::crossbar::Hardware;
    use rram::data::Dataset;
    use rram::train::trainer::{evaluate, init_model, pipeline, test_views};
    let (c, h, w, n) = (3, 32, 32, 6);
    let mut rng = Rng::new(11);
    let images = random_tensor(vec![n * c * h * w], &mut rng, 0.0, 1.0).data;
    let set = |images: Vec<f32>| Dataset {
        images,
        labels: (0..n as u8).collect(),
        c,
        h,
        w,
    };
    // every row reversed (the mirror), or its left half copied onto its right (symmetric)
    let mirror: Vec<f32> = images
        .chunks(w)
        .flat_map(|r| r.iter().rev().copied())
        .collect();
    let symmetric: Vec<f32> = images
        .chunks(w)
        .flat_map(|r| {
            let left = &r[..w / 2];
            left.iter()
                .chain(left.iter().rev())
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    let (ds, mirrored, sym) = (set(images), set(mirror), set(symmetric));
    let cfg = RunConfig {
        hardware: Hardware::Ideal,
        bits: BitWidths::FP32,
        threads: 1,
        ..RunConfig::defaults_for(ModelKind::Resnet20)
    };
    let mut model = init_model(&cfg, &ds);
    let pipe = pipeline(&cfg);
    let ctx = Ctx::eval(1);
    let mut eval =
        |d: &Dataset, flip| evaluate(&mut model, d, &pipe, 4, &test_views(flip, 0), &ctx);
    assert_eq!(eval(&ds, true), eval(&mirrored, true));
    assert_ne!(eval(&ds, false).0, eval(&mirrored, false).0);
    let (plain, flipped) = (eval(&sym, false), eval(&sym, true));
    assert_eq!(plain.1, flipped.1);
    assert!((plain.0 - flipped.0).abs() < 1e-5, "{plain:?} {flipped:?}");
}
