//! The real binary: bad input gives one line on stderr and exit code 2 (never a panic); a short
//! run learns; the same seed gives the same numbers; a run killed with SIGKILL and resumed ends
//! exactly where an uninterrupted one does; a diverging run is a result.

mod common;

use common::{rram, run_ok};
use rram::config::ErrorAdc;
use std::path::Path;
use std::time::{Duration, Instant};

fn fails_cleanly(args: &[&str], needle: &str) {
    let out = rram().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "{args:?}: one line expected: {err}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} should mention {needle:?}"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let o = out.to_str().unwrap();
    fails_cleanly(&["train", "--model", "vgg", "--out", o], "unknown model");
    fails_cleanly(&["train", "--no-such-flag"], "unexpected argument");
    // a missing argument is named on the one line
    fails_cleanly(&["disturb"], "not provided: --out <OUT>");
    fails_cleanly(&["train", "--epochs", "many"], "invalid value");
    fails_cleanly(&["train", "--threads", "0", "--out", o], "threads");
    fails_cleanly(&["train", "--bits", "4,4,4", "--out", o], "bits");
    fails_cleanly(
        &["train", "--bits", "0,4,4,4", "--out", o],
        "not a bit-width",
    );
    fails_cleanly(
        &["train", "--bits", "4,4,17,4", "--out", o],
        "not a bit-width",
    );
    fails_cleanly(&["train", "--lr", "0", "--out", o], "lr");
    fails_cleanly(&["train", "--max-step", "-0.1", "--out", o], "max_step");
    fails_cleanly(
        &["train", "--comparator", "mean", "--out", o],
        "unknown comparator",
    );
    fails_cleanly(
        &["train", "--g-scale", "channel", "--out", o],
        "unknown G scale",
    );
    fails_cleanly(
        &["train", "--adc-polarity", "signed", "--out", o],
        "unknown ADC polarity",
    );
    fails_cleanly(
        &["train", "--partial-polarity", "mixed", "--out", o],
        "partial_polarity: unknown ADC polarity",
    );
    fails_cleanly(
        &["train", "--signed-input", "three-phase", "--out", o],
        "unknown signed input",
    );
    fails_cleanly(&["train", "--lr", "-0.1", "--out", o], "lr");
    fails_cleanly(
        &["train", "--logit-columns", "0", "--out", o],
        "logit_columns",
    );
    fails_cleanly(&["energy", "--logit-columns", "65"], "logit_columns");
    fails_cleanly(
        &["train", "--warmup-epochs", "-1", "--out", o],
        "warmup_epochs",
    );
    fails_cleanly(
        &["train", "--warmup-epochs", "soon", "--out", o],
        "warmup_epochs",
    );
    fails_cleanly(
        &["train", "--epochs", "2", "--warmup-epochs", "2", "--out", o],
        "warmup_epochs",
    );
    fails_cleanly(
        &["train", "--label-smoothing", "1", "--out", o],
        "label_smoothing",
    );
    fails_cleanly(&["train", "--cutout", "8", "--out", o], "cutout");
    fails_cleanly(&["train", "--eval-every", "0", "--out", o], "eval_every");
    fails_cleanly(
        &["train", "--model", "resnet20", "--cutout", "33", "--out", o],
        "cutout",
    );
    fails_cleanly(&["train", "--test-flip", "--out", o], "test_flip");
    fails_cleanly(&["train", "--test-shifts", "2", "--out", o], "test_shifts");
    fails_cleanly(
        &[
            "train",
            "--model",
            "resnet20",
            "--test-shifts",
            "9",
            "--out",
            o,
        ],
        "test_shifts",
    );
    fails_cleanly(
        &["train", "--hardware", "ideal", "--ema", "1", "--out", o],
        "ema",
    );
    // the arrays (the default hardware) hold one set of weights
    fails_cleanly(&["train", "--ema", "0.99", "--out", o], "ema");
    fails_cleanly(
        &["train", "--dataset", "imagenet", "--out", o],
        "unknown dataset",
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_cleanly(
        &["train", "--data", empty.to_str().unwrap(), "--out", o],
        "not found",
    );
    // a run that fails before writing anything leaves no empty folder behind
    assert!(!out.exists(), "{} left behind", out.display());
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "epochs = \"many\"\n").unwrap();
    fails_cleanly(
        &["train", "--config", cfg.to_str().unwrap(), "--out", o],
        "bad.toml",
    );
    fails_cleanly(
        &["train", "--config", "/nonexistent.toml", "--out", o],
        "nonexistent",
    );
    // the I/O error's cause is said once, not repeated by the error chain
    let out = rram()
        .args(["train", "--config", "/nonexistent.toml", "--out", o])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    // a corrupt checkpoint stops a resume with its name, not a panic
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("config.toml"),
        "epochs = 2\ntrain_limit = 64\ntest_limit = 64\n",
    )
    .unwrap();
    std::fs::write(broken.join("checkpoint.safetensors"), "not a checkpoint").unwrap();
    fails_cleanly(
        &["train", "--resume", broken.to_str().unwrap()],
        "checkpoint.safetensors: not a readable safetensors file",
    );
    fails_cleanly(&["report", "/nonexistent-sweep"], "no such folder");
    // a folder that is no sweep is named as such, for `report` and `runs` alike
    fails_cleanly(
        &["report", tmp.path().to_str().unwrap()],
        "no index.jsonl here",
    );
    fails_cleanly(&["runs", "/nonexistent-sweep"], "no such folder");
    fails_cleanly(
        &["runs", tmp.path().to_str().unwrap()],
        "no index.jsonl here",
    );
    let empty_sweep = tmp.path().join("empty_sweep");
    std::fs::create_dir_all(&empty_sweep).unwrap();
    std::fs::write(empty_sweep.join("index.jsonl"), "").unwrap();
    fails_cleanly(
        &["report", empty_sweep.to_str().unwrap()],
        "no finished runs",
    );
    // `disturb` checks its widths and --runs before writing or training anything
    let d = tmp.path().join("disturb_out");
    let ds = d.to_str().unwrap();
    fails_cleanly(&["disturb", "--out", ds, "--widths", "0,-1"], "widths");
    fails_cleanly(
        &["disturb", "--out", ds, "--runs", "/nonexistent-run"],
        "nonexistent-run",
    );
    assert!(!d.exists(), "a refused disturb call left {ds} behind");
    fails_cleanly(&["bench", "--steps", "0"], "--steps");
    fails_cleanly(&["bench", "--repeats", "0"], "--repeats");
    fails_cleanly(
        &["train", "--resume", tmp.path().to_str().unwrap()],
        "config.toml",
    );
    fails_cleanly(
        &["train", "--disturb", "uniform:-0.1", "--out", o],
        "disturb",
    );
    fails_cleanly(
        &["train", "--disturb", "poisson:0.1", "--out", o],
        "disturb",
    );
    fails_cleanly(&["train", "--faults", "sa0:1.5", "--out", o], "faults");
    fails_cleanly(&["train", "--faults", "sa7:0.1", "--out", o], "faults");
    fails_cleanly(&["train", "--xbar", "0x128", "--out", o], "xbar");
    fails_cleanly(&["train", "--xbar", "big", "--out", o], "xbar");
    fails_cleanly(&["train", "--adc", "sometimes", "--out", o], "adc");
    fails_cleanly(&["train", "--hardware", "gpu", "--out", o], "hardware");
    fails_cleanly(&["train", "--read-noise", "2", "--out", o], "read_noise");
    // a truncated IDX file
    let data = tmp.path().join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("train-images-idx3-ubyte"),
        [0, 0, 8, 3, 0, 0, 0, 9],
    )
    .unwrap();
    std::fs::write(
        data.join("train-labels-idx1-ubyte"),
        [0, 0, 8, 1, 0, 0, 0, 1, 7],
    )
    .unwrap();
    fails_cleanly(
        &["train", "--data", data.to_str().unwrap(), "--out", o],
        "too short",
    );
}

#[test]
fn a_fresh_run_never_overwrites_a_run_in_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let d = dir.to_str().unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    // a sweep's folder holds its log before the run starts: that is no run
    std::fs::write(dir.join("train.log"), "").unwrap();
    assert_eq!(rram::run::run_dir::RunDir::holds_run(&dir), None);
    for file in [
        "metrics.jsonl",
        "summary.json",
        "checkpoint.safetensors",
        "config.toml",
    ] {
        std::fs::write(dir.join(file), "result").unwrap();
        fails_cleanly(&["train", "--epochs", "1", "--out", d], "--resume");
        assert_eq!(std::fs::read_to_string(dir.join(file)).unwrap(), "result");
        std::fs::remove_file(dir.join(file)).unwrap();
    }
}

fn train(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "--quiet", "--out", dir.to_str().unwrap()];
    args.extend(extra);
    run_ok(&args)
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// metrics.jsonl without the timing fields, which differ run to run.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("eval_seconds");
            o.remove("images_per_second");
            v
        })
        .collect()
}

/// A run of 10 steps (640 images at batch 64) on 1 thread, never stopped as stalled.
fn tiny(epochs: &'static str) -> Vec<&'static str> {
    vec![
        "--train-limit",
        "640",
        "--test-limit",
        "100",
        "--epochs",
        epochs,
        "--threads",
        "1",
        "--stall-epochs",
        "0",
    ]
}

const SMALL: &[&str] = &[
    "--train-limit",
    "4000",
    "--test-limit",
    "1000",
    "--threads",
    "2",
];

#[test]
fn short_run_learns_and_writes_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut args = SMALL.to_vec();
    args.extend(["--epochs", "3", "--bits", "4,4,4,4"]);
    let out = train(&dir, &args);
    let s = summary(&dir);
    assert!(s["test_accuracy"].as_f64().unwrap() > 0.85, "{s}");
    assert_eq!(s["diverged"], false);
    assert_eq!(s["epochs"], 3);
    let m = metrics(&dir);
    assert_eq!(m.len(), 3);
    for key in ["epoch", "train_loss", "train_accuracy", "test_accuracy"] {
        assert!(m[0].get(key).is_some(), "{key}");
    }
    assert!(m[2]["train_loss"].as_f64() < m[0]["train_loss"].as_f64());
    assert!(dir.join("checkpoint.safetensors").is_file());
    // the resolved config reruns the same run
    let cfg = rram::config::RunConfig::load(&dir.join("config.toml")).unwrap();
    assert_eq!(cfg.train_limit, Some(4000));
    assert_eq!(cfg.bits.to_string(), "4,4,4,4");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one summary line: {stdout}"
    );
    let again = tmp.path().join("again");
    train(
        &again,
        &["--config", dir.join("config.toml").to_str().unwrap()],
    );
    assert_eq!(metrics(&again), metrics(&dir));
}

#[test]
fn same_seed_same_numbers_other_seed_other_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = SMALL.to_vec();
    args.extend(["--epochs", "2", "--bits", "2,2,2,2"]);
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    train(&a, &args);
    train(&b, &args);
    let mut other = args.clone();
    other.extend(["--seed", "2"]);
    train(&c, &other);
    assert_eq!(metrics(&a), metrics(&b));
    assert_ne!(metrics(&a), metrics(&c));
}

#[test]
fn killed_and_resumed_equals_uninterrupted() {
    killed_and_resumed(&["--bits", "4,4,4,4"]);
}

#[test]
fn killed_and_resumed_with_centred_comparators_equals_uninterrupted() {
    // 1-bit ADCs: the checkpoint carries the comparator references (ideal engine and arrays)
    killed_and_resumed(&["--bits", "1,1,2,1", "--stall-epochs", "0"]);
    killed_and_resumed(&[
        "--bits",
        "1,1,2,1",
        "--stall-epochs",
        "0",
        "--hardware",
        "ideal",
        "--ideal-error-adc",
    ]);
}

#[test]
fn killed_and_resumed_with_centred_adcs_and_warmup_equals_uninterrupted() {
    // centred 2-bit ADCs keep their references in the checkpoint; warm-up follows the step
    killed_and_resumed(&[
        "--bits",
        "2,2,2,2",
        "--centre-adc",
        "--warmup-epochs",
        "1.5",
        "--stall-epochs",
        "0",
    ]);
}

#[test]
fn killed_and_resumed_with_a_weight_average_equals_uninterrupted() {
    // the checkpoint carries the average; both it and the weights are tested
    let m = killed_and_resumed(&[
        "--bits",
        "32,32,32,32",
        "--hardware",
        "ideal",
        "--ema",
        "0.99",
    ]);
    for e in &m {
        let (avg, raw) = (&e["test_accuracy"], &e["raw_test_accuracy"]);
        assert!(avg.as_f64().is_some() && raw.as_f64().is_some(), "{e}");
    }
    assert!(
        m.iter()
            .any(|e| e["test_accuracy"] != e["raw_test_accuracy"])
    );
}

#[test]
fn eval_every_skips_test_passes_without_changing_the_training() {
    // 3 epochs, evaluated after epochs 2 and 3 (the last) only; every training number equals
    // that of the run evaluated after each epoch.
    let tmp = tempfile::tempdir().unwrap();
    let args = tiny("3");
    let (every, sparse) = (tmp.path().join("every"), tmp.path().join("sparse"));
    train(&every, &args);
    let mut more = args.to_vec();
    more.extend(["--eval-every", "2"]);
    train(&sparse, &more);
    let (a, b) = (metrics(&every), metrics(&sparse));
    assert!(b[0].get("test_accuracy").is_none(), "{}", b[0]);
    for e in 1..3 {
        assert_eq!(a[e], b[e], "epoch {}", e + 1);
    }
    for key in ["train_loss", "train_accuracy", "lr"] {
        assert_eq!(a[0][key], b[0][key], "{key}");
    }
    let cfg = rram::config::RunConfig::load(&sparse.join("config.toml")).unwrap();
    assert_eq!(cfg.eval_every, 2);
    assert_eq!(summary(&sparse)["test_accuracy"], a[2]["test_accuracy"]);
}

#[test]
fn the_step_bound_counts_the_steps_it_holds() {
    // 640 images at batch 64: 10 steps, each updating LeNet-5's 5 weight tensors. A bound of
    // 1e-7 of the weights' norm holds every one of the 50 tensor steps; 0 turns it off (no
    // count in the metrics); the default bound (0.02) is reported.
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let dir = tmp.path().join(name);
        let mut args = tiny("1");
        args.extend(extra);
        train(&dir, &args);
        metrics(&dir).remove(0)
    };
    assert_eq!(run("tight", &["--max-step", "1e-7"])["limited_steps"], 50);
    assert!(
        run("off", &["--max-step", "0"])
            .get("limited_steps")
            .is_none()
    );
    let default = run("default", &[]);
    assert!(default["limited_steps"].as_u64().unwrap() < 50, "{default}");
}

#[test]
fn warmup_scales_the_rate_of_the_first_steps() {
    // 640 images at batch 64: 10 steps per epoch, 1.5 warm-up epochs = 15 steps. The metrics'
    // lr is that of each epoch's last step: 0.03·10/15 after epoch 1, 0.03 after epoch 2.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    train(
        &dir,
        &[
            "--train-limit",
            "640",
            "--test-limit",
            "100",
            "--epochs",
            "2",
            "--schedule",
            "constant",
            "--lr",
            "0.03",
            "--warmup-epochs",
            "1.5",
            "--threads",
            "1",
            "--stall-epochs",
            "0",
        ],
    );
    let m = metrics(&dir);
    assert!(
        (m[0]["lr"].as_f64().unwrap() - 0.02).abs() < 1e-7,
        "{}",
        m[0]
    );
    assert!(
        (m[1]["lr"].as_f64().unwrap() - 0.03).abs() < 1e-7,
        "{}",
        m[1]
    );
    let cfg = rram::config::RunConfig::load(&dir.join("config.toml")).unwrap();
    assert_eq!(cfg.warmup_epochs, rram::config::Warmup::Epochs(1.5));
}

/// Checks a run killed after its first epoch and resumed against one never stopped; returns
/// the latter's metrics.
fn killed_and_resumed(extra: &[&str]) -> Vec<serde_json::Value> {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--train-limit",
        "12000",
        "--test-limit",
        "500",
        "--threads",
        "2",
    ];
    args.extend(["--epochs", "4"]);
    args.extend(extra);
    let whole = tmp.path().join("whole");
    train(&whole, &args);

    let cut = tmp.path().join("cut");
    let mut full_args = vec!["train", "--quiet", "--out", cut.to_str().unwrap()];
    full_args.extend(&args);
    let mut child = rram()
        .args(&full_args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // SIGKILL as soon as the first epoch's checkpoint is on disk.
    let t0 = Instant::now();
    while !cut.join("checkpoint.safetensors").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !cut.join("summary.json").exists(),
        "the run finished before it was killed"
    );
    run_ok(&["train", "--quiet", "--resume", cut.to_str().unwrap()]);
    assert_eq!(metrics(&cut), metrics(&whole));
    let (s1, s2) = (summary(&cut), summary(&whole));
    assert_eq!(s1["test_accuracy"], s2["test_accuracy"]);
    assert_eq!(s1["best_test_accuracy"], s2["best_test_accuracy"]);
    assert_eq!(s1["epochs"], 4);
    metrics(&whole)
}

#[test]
fn divergence_is_a_reported_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nan");
    let mut args = SMALL.to_vec();
    args.extend([
        "--epochs",
        "2",
        "--bits",
        "32,32,32,32",
        "--lr",
        "1e6",
        "--momentum",
        "0.99",
        // the default step bound holds each weight step to 2% of the weights' norm, which
        // keeps even this rate finite; without it the loss reaches NaN
        "--max-step",
        "0",
    ]);
    let out = train(&dir, &args);
    let s = summary(&dir);
    assert_eq!(s["diverged"], true, "{s}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("DIVERGED"));
}

#[test]
fn a_run_that_never_learns_stops_as_stalled_unless_told_not_to() {
    // lr ~ 0: the network stays at chance, below twice chance (0.2) after one epoch.
    let tmp = tempfile::tempdir().unwrap();
    let mut args = SMALL.to_vec();
    args.extend(["--epochs", "3", "--bits", "32,32,32,32", "--lr", "1e-9"]);
    let dir = tmp.path().join("stuck");
    let mut stuck = args.clone();
    stuck.extend(["--stall-epochs", "1"]);
    let out = train(&dir, &stuck);
    let s = summary(&dir);
    assert_eq!(s["stalled"], true, "{s}");
    assert_eq!(s["diverged"], false, "{s}");
    assert_eq!(s["epochs"], 1, "{s}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("STALLED"));
    // resuming a stalled run does not train it further
    run_ok(&["train", "--quiet", "--resume", dir.to_str().unwrap()]);
    assert_eq!(summary(&dir)["epochs"], 1);
    // 0 = never stop
    let full = tmp.path().join("full");
    let mut never = args.clone();
    never.extend(["--stall-epochs", "0"]);
    train(&full, &never);
    let s = summary(&full);
    assert_eq!(
        (s["stalled"].clone(), s["epochs"].clone()),
        (false.into(), 3.into())
    );
}

#[test]
fn ideal_error_adc_reads_errors_only_when_co_is_quantized() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, bits: &str, flag: bool| {
        let dir = tmp.path().join(name);
        let mut args = SMALL.to_vec();
        args.extend(["--epochs", "1", "--hardware", "ideal", "--bits", bits]);
        if flag {
            args.push("--ideal-error-adc");
        }
        train(&dir, &args);
        let cfg = rram::config::RunConfig::load(&dir.join("config.toml")).unwrap();
        let want = if flag { ErrorAdc::On } else { ErrorAdc::Auto };
        assert_eq!(cfg.ideal_error_adc, want);
        metrics(&dir)
    };
    // fp32 CO: the read is the identity, the run is the same to the last digit
    assert_eq!(
        run("f0", "32,32,32,32", false),
        run("f1", "32,32,32,32", true)
    );
    // a 2-bit CO: the propagated errors are read at 3 levels, and the run differs
    assert_ne!(run("q0", "4,2,4,4", false), run("q1", "4,2,4,4", true));
    // by default (`auto`) the read is on where G = 1
    assert_eq!(run("g0", "4,2,4,1", false), run("g1", "4,2,4,1", true));
}

#[test]
fn rram_without_noise_and_with_wide_adcs_trains_exactly_like_ideal() {
    // One array per layer, Gmin = 0, no disturbance, one-phase backward read at fp32: every
    // number of the run must equal the ideal engine's.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("exact.toml");
    std::fs::write(
        &cfg,
        "bits = \"4,4,4,4\"\n[crossbar]\ndisturb = \"none\"\nsigned_input = \"one-phase\"\n\
         backward_adc_bits = 32\ntile_rows = 512\ntile_cols = 512\n[crossbar.device]\ncond_min_us = 0.0\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let (a, b) = (tmp.path().join("rram"), tmp.path().join("ideal"));
    let mut args = SMALL.to_vec();
    args.extend(["--epochs", "2", "--config", c]);
    train(&a, &[args.as_slice(), &["--hardware", "rram"]].concat());
    train(&b, &[args.as_slice(), &["--hardware", "ideal"]].concat());
    assert_eq!(metrics(&a), metrics(&b));
    // the rram run counted array work, the ideal one only digital MACs
    let counters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("counters.json")).unwrap()).unwrap();
    assert!(
        counters["layers"][0]["counts"]["forward"]["adc_conversions"]
            .as_u64()
            .unwrap()
            > 0
    );
    // and the default arrays (5% disturbance, per-array ADCs) give different numbers
    let d = tmp.path().join("noisy");
    let mut args = SMALL.to_vec();
    args.extend(["--epochs", "2"]);
    train(&d, &args);
    assert_ne!(metrics(&d), metrics(&b));
}

#[test]
fn disturb_reports_the_realised_distribution_and_accuracy_by_width() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let o = out.to_str().unwrap();
    let args = [
        "disturb",
        "--model",
        "lenet5",
        "--widths",
        "0,0.2",
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--test-limit",
        "200",
        "--threads",
        "2",
        "--out",
        o,
    ];
    let r = rram().args(args).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let md = std::fs::read_to_string(out.join("disturbance.md")).unwrap();
    assert!(md.contains("| lenet5 | cond |"), "{md}");
    assert!(
        md.contains("| none | 0 |") && md.contains("| uniform:0.2 | 0.2 |"),
        "{md}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("disturbance.json")).unwrap())
            .unwrap();
    // uniform ±5% (the default): sd = 0.05/sqrt(3)
    let sd = j["lenet5_cond"]["sd"].as_f64().unwrap();
    assert!((sd - 0.05 / 3f64.sqrt()).abs() < 5e-4, "{sd}");
    for f in ["write_error_lenet5.svg", "accuracy_vs_disturbance.svg"] {
        assert!(
            std::fs::read_to_string(out.join(f))
                .unwrap()
                .starts_with("<svg"),
            "{f}"
        );
        // and its PNG rendering: a PNG signature, 1440 wide (IHDR width) and at least 960 high
        // (the plot; a line plot's legend below it adds to that)
        let png = std::fs::read(out.join(f).with_extension("png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{f}");
        assert_eq!(&png[16..20], &[0, 0, 5, 160], "{f}");
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert!(height >= 960, "{f}: {height}");
    }
    // finished runs are reused: a second call trains nothing and gives the same table
    let r2 = rram().args(args).output().unwrap();
    assert!(!String::from_utf8_lossy(&r2.stderr).contains("training"));
    assert_eq!(
        std::fs::read_to_string(out.join("disturbance.md")).unwrap(),
        md
    );
    fails_cleanly(&["disturb", "--widths", "-1", "--out", o], "widths");
    fails_cleanly(&["disturb", "--kind", "cauchy", "--out", o], "kind");
}
