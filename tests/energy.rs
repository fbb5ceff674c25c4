//! The energy estimator: analytic counts equal a real run's counters, energy grows with the
//! converters' bits, the `paper` preset reproduces the paper's LeNet-5 figure, bad presets fail.

mod common;

use common::{rram, run_ok};
use rram::config::RunConfig;
use rram::counters::CountersReport;
use rram::crossbar::{CrossbarConfig, Hardware, SignedInput};
use rram::energy::counts::{CentredBackward, analytic};
use rram::energy::model::estimate;
use rram::energy::preset::EnergyPreset;
use rram::models::Variant;
use rram::models::geometry::{matrices, of_variant};
use rram::quant::BitWidths;

#[test]
fn analytic_counts_equal_the_counters_of_a_real_run() {
    // 640 images = 10 full steps of 64; every count but the data-dependent writes must be
    // exactly 10 × the analytic count of one step. Digital and analog two-phase reads, the
    // latter with 3 output columns per class (fc3: 84 × 30) and fp32 first and last layers, and
    // the default (`auto`) where G = 1, which reads analog.
    counts_of_a_real_run(SignedInput::TwoPhase, Variant::default(), "4,4,4,4");
    counts_of_a_real_run(
        SignedInput::TwoPhaseAnalog,
        Variant {
            fp32_first_last: true,
            logit_columns: 3,
        },
        "4,4,4,4",
    );
    counts_of_a_real_run(SignedInput::Auto, Variant::default(), "4,4,4,1");
    // 1-bit ADCs: centred comparators, whose backward goes through their batch mean
    counts_of_a_real_run(SignedInput::Auto, Variant::default(), "1,1,2,1");
}

#[test]
fn auto_signed_input_counts_an_analog_read_where_g_is_one_bit() {
    let geoms = of_variant("lenet5", Variant::default()).unwrap();
    let count = |signed, g| {
        let xbar = CrossbarConfig {
            signed_input: signed,
            ..CrossbarConfig::default()
        };
        let bits = format!("2,2,2,{g}").parse::<BitWidths>().unwrap();
        let c = analytic(
            &geoms,
            bits,
            Hardware::Rram,
            &xbar,
            CentredBackward::default(),
            64,
            0.0,
        );
        serde_json::to_string(&c).unwrap()
    };
    assert_eq!(CrossbarConfig::default().signed_input, SignedInput::Auto);
    assert_eq!(
        count(SignedInput::Auto, 1),
        count(SignedInput::TwoPhaseAnalog, 1)
    );
    assert_eq!(count(SignedInput::Auto, 2), count(SignedInput::TwoPhase, 2));
    assert_ne!(count(SignedInput::Auto, 1), count(SignedInput::TwoPhase, 1));
}

fn counts_of_a_real_run(signed: SignedInput, variant: Variant, bits: &str) {
    let name = match signed {
        SignedInput::Auto => "auto",
        SignedInput::TwoPhase => "two-phase",
        SignedInput::TwoPhaseAnalog => "two-phase-analog",
        SignedInput::OnePhase => "one-phase",
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    let k = variant.logit_columns.to_string();
    let mut args = vec![
        "train",
        "--signed-input",
        name,
        "--logit-columns",
        &k,
        "--quiet",
        "--epochs",
        "1",
        "--train-limit",
        "640",
        "--test-limit",
        "100",
        "--threads",
        "2",
        "--bits",
        bits,
        "--out",
        dir.to_str().unwrap(),
    ];
    if variant.fp32_first_last {
        args.push("--fp32-first-last");
    }
    run_ok(&args);
    let measured: CountersReport =
        serde_json::from_str(&std::fs::read_to_string(dir.join("counters.json")).unwrap()).unwrap();
    assert_eq!((measured.images, measured.steps), (640, 10));
    let geoms = of_variant("lenet5", variant).unwrap();
    assert_eq!(geoms[4].cols, 10 * variant.logit_columns);
    assert_eq!(
        (geoms[0].fp32, geoms[4].fp32),
        (variant.fp32_first_last, variant.fp32_first_last)
    );
    let one = analytic(
        &geoms,
        bits.parse::<BitWidths>().unwrap(),
        Hardware::Rram,
        &CrossbarConfig {
            signed_input: signed,
            ..CrossbarConfig::default()
        },
        CentredBackward::of(&RunConfig::default()),
        64,
        0.0,
    );
    for (m, a) in measured.layers.iter().zip(&one.layers) {
        assert_eq!(
            (m.layer.as_str(), m.rows, m.cols, m.arrays),
            (a.layer.as_str(), a.rows, a.cols, a.arrays)
        );
        for ((phase, mc), (_, ac)) in m.counts.phases().iter().zip(a.counts.phases()) {
            let mut want = *ac;
            for v in [
                &mut want.dac_conversions,
                &mut want.adc_conversions,
                &mut want.cell_reads,
                &mut want.digital_macs,
                &mut want.digital_ops,
            ] {
                *v *= 10;
            }
            want.cell_writes = mc.cell_writes;
            assert_eq!(**mc, want, "{} {phase:?}", m.layer);
        }
        assert!(
            m.counts.update.cell_writes >= (2 * m.rows * m.cols) as u64,
            "initial programming"
        );
    }
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(s["energy_uj"].as_f64().unwrap() > 0.0);
    assert_eq!(s["energy_counts"], "measured");
}

#[test]
fn conversion_counts_of_a_small_layer_by_hand() {
    // resnet20's fc: 64 × 10 on one 128×128 array, batch 8: forward 64·8 DAC, 10·8 ADC;
    // backprop 1 in two phases: 10·8·2 DAC, 64·8·2 ADC.
    let g = matrices("resnet20").unwrap();
    let c = analytic(
        &g[g.len() - 1..],
        BitWidths::uniform(4),
        Hardware::Rram,
        &CrossbarConfig::default(),
        CentredBackward::default(),
        8,
        0.0,
    );
    let f = c.layers[0].counts;
    assert_eq!(
        (f.forward.dac_conversions, f.forward.adc_conversions),
        (512, 80)
    );
    assert_eq!(
        (f.backprop1.dac_conversions, f.backprop1.adc_conversions),
        (160, 1024)
    );
    assert_eq!(f.backprop2.digital_macs, 64 * 10 * 8);
}

fn lenet_energy(bits: BitWidths, preset: &EnergyPreset) -> f64 {
    let c = analytic(
        &matrices("lenet5").unwrap(),
        bits,
        Hardware::Rram,
        &CrossbarConfig::default(),
        CentredBackward::default(),
        64,
        0.01,
    );
    estimate(&c, preset).conv_fc_uj
}

#[test]
fn energy_grows_with_converter_bits() {
    for name in ["paper", "isaac-nvsim"] {
        let p = EnergyPreset::load(name).unwrap();
        let e: Vec<f64> = (1..=10)
            .map(|k| lenet_energy(BitWidths::uniform(k), &p))
            .collect();
        assert!(e.windows(2).all(|w| w[1] >= w[0]), "{name}: {e:?}");
        assert!(e[7] > e[3], "{name}: 8 bits must cost more than 4");
        // ADC bits alone
        let lo = BitWidths {
            co: rram::quant::Bits::K(4),
            ..BitWidths::uniform(4)
        };
        let hi = BitWidths {
            co: rram::quant::Bits::K(8),
            ..BitWidths::uniform(4)
        };
        assert!(lenet_energy(hi, &p) > lenet_energy(lo, &p));
    }
}

#[test]
fn paper_preset_reproduces_lenet5_and_predicts_resnet20() {
    let p = EnergyPreset::load("paper").unwrap();
    let lenet = lenet_energy(BitWidths::uniform(4), &p);
    assert!((lenet / 44.96 - 1.0).abs() < 0.02, "{lenet}");
    let c = analytic(
        &matrices("resnet20").unwrap(),
        BitWidths::uniform(4),
        Hardware::Rram,
        &CrossbarConfig::default(),
        CentredBackward::default(),
        64,
        0.01,
    );
    let resnet = estimate(&c, &p).conv_fc_uj;
    // a prediction, not a fit: within ±30% of the paper's 3653.7 µJ
    assert!((resnet / 3653.7 - 1.0).abs() < 0.3, "{resnet}");
}

#[test]
fn bad_presets_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let good = include_str!("../presets/isaac-nvsim.toml");
    let cases = [
        (good.replace("cell_read_pj = 0.1\n", ""), "cell_read_pj"),
        (
            good.replace("cell_write_pj = 0.6", "cell_write_pj = -0.6"),
            "cell_write_pj",
        ),
        (
            good.replace(
                "pj = [0.79, 0.99, 1.20, 1.42, 1.67, 1.97, 2.38]",
                "pj = [0.79, -1.0, 1.20, 1.42, 1.67, 1.97, 2.38]",
            ),
            "adc.pj",
        ),
        (
            good.replace("model = \"table\"", "model = \"magic\""),
            "model",
        ),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let f = tmp.path().join(format!("p{i}.toml"));
        std::fs::write(&f, text).unwrap();
        let out = rram()
            .args(["energy", "--preset", f.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(key), "{err} should name {key}");
    }
    let out = rram()
        .args(["energy", "--preset", "nope"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown preset"));
    let out = rram().args(["energy", "--model", "vgg"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model"));
}
