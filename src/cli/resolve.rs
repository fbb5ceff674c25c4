//! Flags → `RunConfig`: start from a config file or the defaults, apply the flags that were
//! given, validate. The library only ever sees the resolved config.

use super::args::{LengthArgs, RunArgs, TrainArgs};
use anyhow::Result;
use rram::config::{DatasetKind, ModelKind, RunConfig, Schedule};
use rram::crossbar::{AdcMode, CrossbarConfig, Hardware, SignedInput};

/// Apply the shared run flags to `cfg`.
pub fn apply_run_args(cfg: &mut RunConfig, a: &RunArgs) -> Result<()> {
    if let Some(m) = &a.model {
        cfg.model = ModelKind::parse(m)?;
        cfg.dataset = cfg.model.dataset();
    }
    if let Some(d) = &a.dataset {
        cfg.dataset = DatasetKind::parse(d)?;
    }
    if let Some(b) = &a.bits {
        cfg.bits = b.parse()?;
    }
    if let Some(r) = &a.co_range {
        cfg.co_range = r.parse()?;
    }
    if let Some(r) = &a.g_rounding {
        cfg.g_rounding = rram::quant::gradient::GRounding::parse(r)?;
    }
    if let Some(g) = &a.g_scale {
        cfg.g_scale = rram::quant::gradient::GScale::parse(g)?;
    }
    if let Some(c) = &a.comparator {
        cfg.comparator = rram::quant::output::Comparator::parse(c)?;
    }
    if a.centre_adc {
        cfg.centre_adc = true;
    }
    if let Some(on) = a.centred_backward {
        cfg.centred_backward = on;
    }
    if let Some(p) = &a.adc_polarity {
        cfg.adc_polarity = rram::quant::output::Polarity::parse(p)?;
    }
    if let Some(b) = a.batch {
        cfg.batch = b;
    }
    if let Some(t) = a.threads {
        cfg.threads = t;
    }
    if let Some(d) = &a.data {
        cfg.data = Some(d.clone());
    }
    if a.fp32_first_last {
        cfg.fp32_first_last = true;
    }
    if let Some(k) = a.logit_columns {
        cfg.logit_columns = k;
    }
    if let Some(h) = &a.hardware {
        cfg.hardware = Hardware::parse(h)?;
    }
    let x = &mut cfg.crossbar;
    if let Some(s) = &a.xbar {
        (x.tile_rows, x.tile_cols) = CrossbarConfig::parse_size(s)?;
    }
    if let Some(d) = &a.disturb {
        x.disturb = d.parse()?;
    }
    if let Some(f) = &a.faults {
        x.faults = f.parse()?;
    }
    if let Some(m) = &a.adc {
        x.adc = AdcMode::parse(m)?;
    }
    if let Some(p) = &a.partial_polarity {
        x.partial_polarity = rram::quant::output::Polarity::parse_for("partial_polarity", p)?;
    }
    if let Some(m) = &a.signed_input {
        x.signed_input = SignedInput::parse(m)?;
    }
    if let Some(v) = a.read_noise {
        x.read_noise = v;
    }
    if let Some(v) = a.d2d {
        x.d2d = v;
    }
    Ok(())
}

/// Apply the run-length flags to `cfg`.
pub fn apply_length_args(cfg: &mut RunConfig, a: &LengthArgs) {
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if let Some(v) = a.train_limit {
        cfg.train_limit = Some(v);
    }
    if let Some(v) = a.test_limit {
        cfg.test_limit = Some(v);
    }
}

/// The recipe of the model `--model` names (`RunConfig::defaults_for`: the Caffe LeNet-5's
/// weight decay and step bound, ResNet's spec §4 recipe) replaces the classic LeNet-5's
/// defaults; flags applied afterwards still win.
pub fn apply_model_recipe(cfg: &mut RunConfig, model: Option<&str>) {
    let kind = model.and_then(|m| ModelKind::parse(m).ok());
    if let Some(kind) = kind {
        let recipe = RunConfig::defaults_for(kind);
        cfg.lr = recipe.lr;
        cfg.batch = recipe.batch;
        cfg.weight_decay = recipe.weight_decay;
        cfg.max_step = recipe.max_step;
        cfg.schedule = recipe.schedule;
    }
}

/// The config of `rram train` (not `--resume`, which reads the run's own config).
pub fn train_config(a: &TrainArgs) -> Result<RunConfig> {
    let mut cfg = match &a.config {
        Some(p) => RunConfig::load(p)?,
        None => RunConfig::default(),
    };
    if a.config.is_none() {
        apply_model_recipe(&mut cfg, a.run.model.as_deref());
    }
    apply_run_args(&mut cfg, &a.run)?;
    apply_length_args(&mut cfg, &a.length);
    if let Some(v) = a.lr {
        cfg.lr = v;
    }
    if let Some(v) = a.momentum {
        cfg.momentum = v;
    }
    if let Some(v) = a.weight_decay {
        cfg.weight_decay = v;
    }
    if let Some(v) = a.max_step {
        cfg.max_step = v;
    }
    if let Some(v) = &a.schedule {
        cfg.schedule = Schedule::parse(v)?;
    }
    if let Some(v) = &a.warmup_epochs {
        cfg.warmup_epochs = rram::config::Warmup::parse(v)?;
    }
    if let Some(v) = a.stall_epochs {
        cfg.stall_epochs = v;
    }
    if let Some(v) = a.label_smoothing {
        cfg.label_smoothing = v;
    }
    if let Some(v) = a.eval_every {
        cfg.eval_every = v;
    }
    if let Some(v) = a.cutout {
        cfg.cutout = v;
    }
    if a.test_flip {
        cfg.test_flip = true;
    }
    if let Some(v) = a.test_shifts {
        cfg.test_shifts = v;
    }
    if let Some(v) = a.ema {
        cfg.ema = v;
    }
    if let Some(w) = &a.ideal_error_adc {
        cfg.ideal_error_adc = rram::config::ErrorAdc::parse(w)?;
    }
    cfg.validate()?;
    Ok(cfg)
}
