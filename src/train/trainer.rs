//! The epoch loop: seeded batches → forward → softmax cross-entropy → backward → SGD, test
//! accuracy after every epoch, a checkpoint and the metrics after every epoch, the summary at the
//! end. A loss that becomes NaN or infinite ends the run as `diverged` — a result, not an error;
//! a run still below twice chance after `stall_epochs` epochs ends as `stalled` (the paper's
//! "failing to train a convergent model"), so a sweep does not spend hours on it.

use crate::config::{DatasetKind, RunConfig};
use crate::counters::CountersReport;
use crate::crossbar::Hardware;
use crate::data::augment::{CIFAR_MEAN, CIFAR_STD, Crop};
use crate::data::batcher::Pipeline;
use crate::data::{Dataset, batcher, cifar10, mnist};
use crate::energy::preset::EnergyPreset;
use crate::error::{Error, Result};
use crate::models::Model;
use crate::nn::Ctx;
use crate::nn::loss::{
    mean_probabilities, probability_loss, smoothed_cross_entropy, softmax, softmax_cross_entropy,
};
use crate::rng::{Rng, stream};
use crate::run::run_dir::{self, RunDir, write_atomic};
use crate::train::checkpoint::{self, Progress};
use crate::train::ema::Ema;
use crate::train::optimizer::Sgd;
use crate::train::schedule::LrSchedule;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Final result of a run (`summary.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub model: String,
    pub bits: String,
    /// Test accuracy after the last epoch (or at divergence).
    pub test_accuracy: f64,
    pub best_test_accuracy: f64,
    /// True when the loss became NaN or infinite.
    pub diverged: bool,
    /// True when the run stopped at `stall_epochs` still below twice chance accuracy.
    #[serde(default)]
    pub stalled: bool,
    /// Epochs completed.
    pub epochs: usize,
    /// Training throughput, images per second (excluding evaluation).
    pub images_per_second: f64,
    /// Training time in seconds (excluding evaluation).
    pub train_seconds: f64,
    /// RRAM Conv+FC energy per image per training iteration, µJ (preset `paper`): from this
    /// run's counters on the arrays, or from the geometry for an ideal run.
    #[serde(default)]
    pub energy_uj: Option<f64>,
    /// `measured` or `analytic` (see `energy::for_run`).
    #[serde(default)]
    pub energy_counts: Option<String>,
}

impl Summary {
    /// `done`, `diverged` or `stalled`.
    pub fn status(&self) -> &'static str {
        match (self.diverged, self.stalled) {
            (true, _) => "diverged",
            (_, true) => "stalled",
            _ => "done",
        }
    }

    /// Whether the run failed to converge (diverged or stalled): its accuracy is not a result
    /// of training and is kept out of means.
    pub fn failed(&self) -> bool {
        self.diverged || self.stalled
    }
}

/// Receives progress events (the CLI draws progress bars from them; tests ignore them).
pub trait Monitor: Send {
    /// Data loaded and model built; training starts at `epoch` (0-based; > 0 when resumed).
    fn start(&mut self, _cfg: &RunConfig, _data: &std::path::Path, _epoch: usize) {}
    fn epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    fn step(&mut self, _loss: f32, _accuracy: f64) {}
    fn epoch_end(&mut self, _metrics: &serde_json::Value) {}
}

/// A monitor that ignores everything.
pub struct Silent;
impl Monitor for Silent {}

/// Load the dataset a config names.
pub fn load_data(cfg: &RunConfig) -> Result<(Dataset, Dataset, std::path::PathBuf)> {
    let splits = match cfg.dataset {
        DatasetKind::Mnist => mnist::load(cfg.data.as_deref())?,
        DatasetKind::Cifar10 => cifar10::load(cfg.data.as_deref())?,
    };
    let (mut train, mut test, dir) = (splits.train, splits.test, splits.dir);
    if let Some(n) = cfg.train_limit {
        train.truncate(n);
    }
    if let Some(n) = cfg.test_limit {
        test.truncate(n);
    }
    Ok((train, test, dir))
}

/// The batch pipeline of a config: CIFAR-10 is augmented in training, and normalised when the
/// input is not quantized (a quantized input is a DAC value in [0, 1]).
pub fn pipeline(cfg: &RunConfig) -> Pipeline {
    let cifar = cfg.dataset == DatasetKind::Cifar10;
    Pipeline {
        augment: cifar,
        normalize: (cifar && cfg.bits.a.is_fp32()).then_some((CIFAR_MEAN, CIFAR_STD)),
        cutout: cfg.cutout,
        seed: cfg.seed,
    }
}

/// Build the model of a config with its seeded initial weights and calibrated scales.
pub fn init_model(cfg: &RunConfig, train: &Dataset) -> Model {
    let mut rng = Rng::keyed(cfg.seed, stream::INIT, &[]);
    let mut model = Model::build(cfg.model, cfg.bits, cfg.variant(), &mut rng);
    model.set_quant_options(
        cfg.co_range,
        cfg.g_rounding,
        cfg.g_scale,
        cfg.comparator,
        cfg.centre_adc,
        cfg.adc_polarity,
    );
    for (_, c) in model.all_matrices() {
        c.centred_backward = cfg.centred_backward;
    }
    if cfg.hardware == Hardware::Rram {
        model.attach_crossbar(&cfg.crossbar, cfg.seed);
    } else if cfg.reads_errors() {
        model.all_matrices().into_iter().for_each(|(_, c)| {
            c.read_errors = true;
            c.backward_adc_bits = cfg.crossbar.backward_bits(c.bits.co);
        });
    }
    let mut idx: Vec<u32> = (0..train.len() as u32).collect();
    Rng::keyed(cfg.seed, stream::CALIB, &[]).shuffle(&mut idx);
    idx.truncate(cfg.batch.max(256).min(train.len()));
    let (x, _) = pipeline(cfg).batch(train, &idx, 0, false);
    model.calibrate(x, cfg.init_output_std, cfg.seed);
    model
}

/// Set the centred comparators' references from the first `eval_batch` training images (not
/// augmented) under the current weights: one evaluation-mode pass in which only they change.
pub fn refresh_references(
    model: &mut Model,
    train: &Dataset,
    pipe: &Pipeline,
    cfg: &RunConfig,
    step: u64,
) {
    let idx: Vec<u32> = (0..train.len().min(cfg.eval_batch) as u32).collect();
    let (x, _) = pipe.batch(train, &idx, 0, false);
    model.forward(x, &Ctx::references(cfg.seed, step));
}

/// Test loss and accuracy. `ctx` is an evaluation context holding the training step the model
/// has reached (arrays that must be reprogrammed with the latest weights key their write noise by
/// it). With `flip`, each image and its mirror image are read and their class probabilities
/// averaged.
pub fn evaluate(
    model: &mut Model,
    ds: &Dataset,
    pipe: &Pipeline,
    batch: usize,
    views: &[TestView],
    ctx: &Ctx,
) -> (f64, f64) {
    let (mut correct, mut loss) = (0usize, 0f64);
    let idx: Vec<u32> = (0..ds.len() as u32).collect();
    for chunk in idx.chunks(batch) {
        let (x, labels) = pipe.batch(ds, chunk, 0, false);
        let (l, c) = if views.len() > 1 {
            let probs: Vec<_> = views
                .iter()
                .map(|v| {
                    let input = match v {
                        TestView::Plain => x.clone(),
                        TestView::Mirror => batcher::mirrored(&x),
                        TestView::Crop(crop) => pipe.view(ds, chunk, *crop).0,
                    };
                    softmax(&model.forward(input, ctx))
                })
                .collect();
            probability_loss(&mean_probabilities(&probs), &labels)
        } else {
            let out = softmax_cross_entropy(&model.forward(x, ctx), &labels);
            (out.loss, out.correct)
        };
        loss += l as f64 * chunk.len() as f64;
        correct += c;
    }
    let n = ds.len().max(1) as f64;
    (loss / n, correct as f64 / n)
}

/// One way `evaluate` shows a test image; their class probabilities are averaged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TestView {
    /// The image as stored.
    Plain,
    /// Its mirror image.
    Mirror,
    /// Moved by padding (black, as training pads) and cropping, mirrored or not.
    Crop(Crop),
}

/// The test-time views of a run: the image; its mirror with `flip`; with `shifts` > 0 the image
/// moved that many pixels up, down, left and right (each mirrored too with `flip`).
pub fn test_views(flip: bool, shifts: usize) -> Vec<TestView> {
    let mut views = vec![TestView::Plain];
    if flip {
        views.push(TestView::Mirror);
    }
    let s = shifts;
    let moves = [(0, s), (2 * s, s), (s, 0), (s, 2 * s)];
    for (dy, dx) in moves.into_iter().filter(|_| s > 0) {
        for flip in [false, true].into_iter().take(1 + flip as usize) {
            views.push(TestView::Crop(Crop {
                pad: s,
                dy,
                dx,
                flip,
            }));
        }
    }
    views
}

/// Train per `cfg` in `dir`. With `resume`, continue from the folder's checkpoint if it has one.
pub fn train(
    cfg: &RunConfig,
    dir: &RunDir,
    resume: bool,
    monitor: &mut dyn Monitor,
) -> Result<Summary> {
    cfg.validate()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()
        .map_err(|e| Error::invalid("threads", e.to_string()))?;
    pool.install(|| train_in_pool(cfg, dir, resume, monitor))
}

fn train_in_pool(
    cfg: &RunConfig,
    dir: &RunDir,
    resume: bool,
    monitor: &mut dyn Monitor,
) -> Result<Summary> {
    let (train, test, data_dir) = load_data(cfg)?;
    write_atomic(&dir.path(run_dir::CONFIG), cfg.to_toml().as_bytes())?;
    let mut model = init_model(cfg, &train);
    let mut opt = Sgd::new(cfg.momentum, cfg.weight_decay, cfg.max_step);
    let mut ema = (cfg.ema > 0.0).then(|| Ema::new(cfg.ema, &mut model));
    let ckpt = dir.path(run_dir::CHECKPOINT);
    let mut progress = if resume && ckpt.is_file() {
        checkpoint::load(&ckpt, &mut model, &mut opt, ema.as_mut())?
    } else {
        Progress::default()
    };
    model.set_counters(&progress.counters);

    monitor.start(cfg, &data_dir, progress.epochs_done);
    let pipe = pipeline(cfg);
    let per_epoch = train.len().div_ceil(cfg.batch) as u64;
    let lr_schedule = LrSchedule::of(cfg, per_epoch);
    let mut diverged = false;
    let mut stalled = false;
    // Twice chance: a run this far below it after `stall_epochs` has not started to learn.
    let classes = train
        .labels
        .iter()
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(1);
    let stall_below = 2.0 / classes as f64;
    let mut best = progress
        .metrics
        .iter()
        .filter_map(|m| m["test_accuracy"].as_f64())
        .fold(0.0, f64::max);
    let mut last_acc = progress
        .metrics
        .last()
        .and_then(|m| m["test_accuracy"].as_f64())
        .unwrap_or(0.0);

    // A run interrupted right after its stall check resumes into the same verdict.
    let start = if stalls(cfg, &progress, best, stall_below) {
        stalled = true;
        cfg.epochs
    } else {
        progress.epochs_done
    };
    for epoch in start..cfg.epochs {
        let order = batcher::epoch_order(train.len(), cfg.seed, epoch as u64);
        monitor.epoch_start(epoch + 1, per_epoch as usize);
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        for chunk in order.chunks(cfg.batch) {
            let ctx = Ctx::train(progress.step, cfg.seed);
            let (x, labels) = pipe.batch(&train, chunk, epoch as u64, true);
            let logits = model.forward(x, &ctx);
            let out = smoothed_cross_entropy(&logits, &labels, cfg.label_smoothing);
            if !out.loss.is_finite() {
                diverged = true;
                break;
            }
            model.backward(out.grad, &ctx);
            let lr = lr_schedule.at(progress.step);
            opt.step(&mut model.params(), lr);
            if let Some(e) = ema.as_mut() {
                e.update(&mut model);
            }
            progress.step += 1;
            loss_sum += out.loss as f64 * chunk.len() as f64;
            correct += out.correct;
            seen += chunk.len();
            monitor.step(out.loss, correct as f64 / seen as f64);
        }
        let secs = t0.elapsed().as_secs_f64();
        progress.train_seconds += secs;
        progress.images += seen as u64;
        if model.has_centred_comparators() {
            refresh_references(&mut model, &train, &pipe, cfg, progress.step);
        }
        // evaluate every `eval_every` epochs, after the last, where the stall check looks, and
        // on a diverged run (its last accuracy)
        let done = epoch + 1;
        let eval_now = diverged
            || done == cfg.epochs
            || done % cfg.eval_every == 0
            || done == cfg.stall_epochs;
        let t_eval = Instant::now();
        let eval_ctx = Ctx {
            step: progress.step,
            ..Ctx::eval(cfg.seed)
        };
        let views = test_views(cfg.test_flip, cfg.test_shifts);
        let test_model =
            |m: &mut Model| evaluate(m, &test, &pipe, cfg.eval_batch, &views, &eval_ctx);
        // with a weight average: the average is what the run delivers, the weights a second line
        let raw = (eval_now && ema.is_some()).then(|| test_model(&mut model));
        let tested = eval_now.then(|| match ema.as_mut() {
            Some(e) => e.with_average(&mut model, test_model),
            None => test_model(&mut model),
        });
        let eval_secs = t_eval.elapsed().as_secs_f64();
        if let Some((_, acc)) = tested {
            last_acc = acc;
        }
        if diverged {
            break;
        }
        best = best.max(last_acc);
        let mut m = serde_json::json!({
            "epoch": done,
            "train_loss": loss_sum / seen.max(1) as f64,
            "train_accuracy": correct as f64 / seen.max(1) as f64,
            "lr": lr_schedule.at(progress.step.saturating_sub(1)),
            "seconds": secs,
            "eval_seconds": eval_secs,
            "images_per_second": seen as f64 / secs.max(1e-9),
        });
        if cfg.max_step > 0.0 {
            // how often the bound held a layer's step this epoch (0 in an ordinary epoch)
            m["limited_steps"] = opt.take_limited().into();
        }
        if let Some((loss, acc)) = tested {
            m["test_loss"] = loss.into();
            m["test_accuracy"] = acc.into();
        }
        if let Some((loss, acc)) = raw {
            m["raw_test_loss"] = loss.into();
            m["raw_test_accuracy"] = acc.into();
        }
        monitor.epoch_end(&m);
        progress.metrics.push(m);
        progress.epochs_done = done;
        progress.counters = model.counters();
        write_metrics(dir, &progress)?;
        write_counters(dir, cfg, &progress)?;
        checkpoint::save(&ckpt, &mut model, &opt, &progress, ema.as_ref())?;
        if stalls(cfg, &progress, best, stall_below) {
            stalled = true;
            break;
        }
    }

    let report = counters_report(cfg, &progress);
    let preset = EnergyPreset::load("paper")?;
    let (energy, counts_source) = crate::energy::for_run(cfg, Some(&report), &preset)?;
    let summary = Summary {
        model: cfg.model.as_str().to_string(),
        bits: cfg.bits.to_string(),
        test_accuracy: last_acc,
        best_test_accuracy: best,
        diverged,
        stalled,
        epochs: progress.epochs_done,
        images_per_second: progress.images as f64 / progress.train_seconds.max(1e-9),
        train_seconds: progress.train_seconds,
        energy_uj: Some(energy.conv_fc_uj),
        energy_counts: Some(counts_source.to_string()),
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
    write_atomic(&dir.path(run_dir::SUMMARY), json.as_bytes())?;
    Ok(summary)
}

/// Whether the run has just finished epoch `stall_epochs` still below `below` in both training
/// and best test accuracy (and has epochs left to skip).
fn stalls(cfg: &RunConfig, progress: &Progress, best: f64, below: f64) -> bool {
    let train_acc = progress
        .metrics
        .last()
        .and_then(|m| m["train_accuracy"].as_f64());
    progress.epochs_done > 0
        && progress.epochs_done == cfg.stall_epochs
        && progress.epochs_done < cfg.epochs
        && train_acc.is_some_and(|a| a < below)
        && best < below
}

fn counters_report(cfg: &RunConfig, progress: &Progress) -> CountersReport {
    CountersReport {
        hardware: cfg.hardware.as_str().to_string(),
        images: progress.images,
        steps: progress.step,
        layers: progress.counters.clone(),
    }
}

fn write_counters(dir: &RunDir, cfg: &RunConfig, progress: &Progress) -> Result<()> {
    let report = counters_report(cfg, progress);
    let json = serde_json::to_string_pretty(&report).expect("counters serialize");
    write_atomic(&dir.path(run_dir::COUNTERS), json.as_bytes())
}

fn write_metrics(dir: &RunDir, progress: &Progress) -> Result<()> {
    let mut text = String::new();
    for m in &progress.metrics {
        text.push_str(&m.to_string());
        text.push('\n');
    }
    write_atomic(&dir.path(run_dir::METRICS), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_views_in_order() {
        assert_eq!(test_views(false, 0), vec![TestView::Plain]);
        assert_eq!(test_views(true, 0), vec![TestView::Plain, TestView::Mirror]);
        let v = test_views(true, 2);
        assert_eq!(v.len(), 10);
        assert_eq!(&v[..2], &[TestView::Plain, TestView::Mirror]);
        let crop = |dy, dx, flip| {
            TestView::Crop(Crop {
                pad: 2,
                dy,
                dx,
                flip,
            })
        };
        assert_eq!(v[2], crop(0, 2, false));
        assert_eq!(v[3], crop(0, 2, true));
        assert_eq!(v[9], crop(2, 4, true));
        let plain_shifts = test_views(false, 1);
        assert_eq!(plain_shifts.len(), 5);
        assert!(
            plain_shifts[1..]
                .iter()
                .all(|v| matches!(v, TestView::Crop(c) if !c.flip))
        );
    }
}
