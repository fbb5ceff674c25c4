//! `rram bench`: training throughput of one network, measured in the same process on the same
//! batches: fp32 and the requested bit-widths with software quantization (`ideal`), and the
//! requested bit-widths on the arrays (`rram`, with the configured disturbance); plus the time
//! per layer kind.
//! Each setting: 10 warm-up steps, then `repeats` × `steps` timed steps; the median repeat is
//! reported as images/s.

use super::args::BenchArgs;
use super::resolve::{apply_model_recipe, apply_run_args};
use anyhow::Result;
use rram::config::RunConfig;
use rram::crossbar::Hardware;
use rram::data::{Dataset, batcher};
use rram::nn::Ctx;
use rram::nn::loss::softmax_cross_entropy;
use rram::quant::BitWidths;
use rram::train::optimizer::Sgd;
use rram::train::trainer::{init_model, load_data};
use std::collections::BTreeMap;
use std::time::Instant;

pub struct Outcome {
    pub bits: BitWidths,
    pub hardware: Hardware,
    pub images_per_second: f64,
    pub step_ms: f64,
    /// Seconds per step by layer kind (conv, fc, act, pool, ...) and phase, plus "loss+sgd".
    pub breakdown: BTreeMap<String, f64>,
}

fn layer_kind(name: &str) -> String {
    name.trim_end_matches(|c: char| c.is_ascii_digit())
        .to_string()
}

pub fn bench_one(cfg: &RunConfig, train: &Dataset, steps: usize, repeats: usize) -> Outcome {
    let mut model = init_model(cfg, train);
    let mut opt = Sgd::new(cfg.momentum, cfg.weight_decay, cfg.max_step);
    let order = batcher::epoch_order(train.len(), cfg.seed, 0);
    let batches: Vec<_> = order
        .chunks_exact(cfg.batch)
        .take(64)
        .map(|c| batcher::gather(train, c))
        .collect();
    let mut step = 0u64;
    let mut run_steps = |model: &mut rram::models::Model, n: usize, other: &mut f64| {
        for _ in 0..n {
            let (x, labels) = &batches[step as usize % batches.len()];
            let ctx = Ctx::train(step, cfg.seed);
            let logits = model.forward(x.clone(), &ctx);
            let t = Instant::now();
            let out = softmax_cross_entropy(&logits, labels);
            *other += t.elapsed().as_secs_f64();
            model.backward(out.grad, &ctx);
            let t = Instant::now();
            opt.step(&mut model.params(), 0.01);
            *other += t.elapsed().as_secs_f64();
            step += 1;
        }
    };
    let mut other = 0.0;
    run_steps(&mut model, 10, &mut other);
    let mut rates = Vec::new();
    model.profile = Some(vec![[0.0; 2]; model.layers.len()]);
    model.layers.iter_mut().for_each(|l| l.time_parts(true));
    other = 0.0;
    for _ in 0..repeats {
        let t = Instant::now();
        run_steps(&mut model, steps, &mut other);
        rates.push((steps * cfg.batch) as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let total_steps = (steps * repeats) as f64;
    let mut breakdown = BTreeMap::new();
    let profile = model.profile.take().unwrap();
    for (l, [f, b]) in model.layers.iter().zip(profile) {
        let parts = l.part_times();
        if parts.is_empty() {
            let k = layer_kind(l.name());
            *breakdown.entry(format!("{k} forward")).or_insert(0.0) += f / total_steps;
            *breakdown.entry(format!("{k} backward")).or_insert(0.0) += b / total_steps;
            continue;
        }
        // A residual block: its parts by kind, and what is left of its time as "block other".
        let (mut pf, mut pb) = (0.0, 0.0);
        for (k, [kf, kb]) in parts {
            *breakdown.entry(format!("{k} forward")).or_insert(0.0) += kf / total_steps;
            *breakdown.entry(format!("{k} backward")).or_insert(0.0) += kb / total_steps;
            pf += kf;
            pb += kb;
        }
        *breakdown.entry("block other forward".into()).or_insert(0.0) +=
            (f - pf).max(0.0) / total_steps;
        *breakdown
            .entry("block other backward".into())
            .or_insert(0.0) += (b - pb).max(0.0) / total_steps;
    }
    breakdown.insert("loss+sgd".into(), other / total_steps);
    Outcome {
        bits: cfg.bits,
        hardware: cfg.hardware,
        images_per_second: median,
        step_ms: cfg.batch as f64 / median * 1e3,
        breakdown,
    }
}

pub fn run(a: BenchArgs) -> Result<()> {
    let mut cfg = RunConfig::default();
    apply_model_recipe(&mut cfg, a.run.model.as_deref()); // ResNet: batch 128, as `train` uses
    apply_run_args(&mut cfg, &a.run)?;
    cfg.validate()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()?;
    let (train, _, _) = load_data(&RunConfig {
        train_limit: Some(64 * cfg.batch),
        ..cfg.clone()
    })?;
    if train.len() < cfg.batch {
        anyhow::bail!(
            "invalid batch: {} is larger than the {} training images",
            cfg.batch,
            train.len()
        );
    }
    let mut settings = vec![(BitWidths::FP32, Hardware::Ideal)];
    if !cfg.bits.is_fp32() {
        settings.push((cfg.bits, Hardware::Ideal));
    }
    settings.push((cfg.bits, Hardware::Rram));
    let outcomes: Vec<Outcome> = settings
        .iter()
        .map(|&(bits, hardware)| {
            let c = RunConfig {
                bits,
                hardware,
                ..cfg.clone()
            };
            pool.install(|| bench_one(&c, &train, a.steps, a.repeats))
        })
        .collect();
    if a.json {
        let v: Vec<_> = outcomes
            .iter()
            .map(|o| serde_json::json!({
                "model": cfg.model.as_str(), "bits": o.bits.to_string(), "hardware": o.hardware.as_str(), "batch": cfg.batch,
                "threads": cfg.threads, "images_per_second": o.images_per_second,
                "step_ms": o.step_ms, "breakdown_ms": o.breakdown.iter().map(|(k, v)| (k.clone(), v * 1e3)).collect::<BTreeMap<_, _>>(),
            }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{} training, batch {}, {} threads, median of {} × {} steps",
        cfg.model.as_str(),
        cfg.batch,
        cfg.threads,
        a.repeats,
        a.steps
    );
    for o in &outcomes {
        println!(
            "{:<6} bits {:<12} {:>8.0} images/s  {:>7.2} ms/step",
            o.hardware.as_str(),
            o.bits.to_string(),
            o.images_per_second,
            o.step_ms
        );
        let total: f64 = o.breakdown.values().sum();
        for (k, v) in &o.breakdown {
            println!(
                "    {k:<16} {:>7.3} ms  {:>5.1}%",
                v * 1e3,
                v / total * 100.0
            );
        }
    }
    let last = outcomes.last().expect("at least one setting");
    let ideal = &outcomes[outcomes.len() - 2];
    println!(
        "ratio rram / ideal at {}: {:.2}; ideal {} / ideal fp32: {:.2}",
        last.bits,
        last.images_per_second / ideal.images_per_second,
        ideal.bits,
        ideal.images_per_second / outcomes[0].images_per_second
    );
    Ok(())
}
