//! `RunConfig`: every setting of a training run, concrete and validated. It is what a run writes
//! as `config.toml` before its first step, and what `--config` and `--resume` read back, so a
//! run can always be repeated from its folder. Defaults are declared on the fields.

use crate::crossbar::{CrossbarConfig, Hardware};
use crate::error::{Error, Result};
use crate::quant::BitWidths;
use crate::quant::gradient::{GRounding, GScale};
use crate::quant::output::{CoRange, Comparator, Polarity};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Network architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Classic LeNet-5: conv 6 → conv 16 → FC 120 → FC 84 → FC 10 (spec §4 default).
    Lenet5,
    /// Caffe LeNet: conv 20 → conv 50 → FC 500 → FC 10.
    Lenet5Caffe,
    /// ResNet-20/32/44/56 for CIFAR-10 (option-A shortcuts).
    Resnet20,
    Resnet32,
    Resnet44,
    Resnet56,
}

impl ModelKind {
    pub const NAMES: &'static str = "lenet5, lenet5-caffe, resnet20, resnet32, resnet44, resnet56";

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "lenet5" => Ok(ModelKind::Lenet5),
            "lenet5-caffe" => Ok(ModelKind::Lenet5Caffe),
            "resnet20" => Ok(ModelKind::Resnet20),
            "resnet32" => Ok(ModelKind::Resnet32),
            "resnet44" => Ok(ModelKind::Resnet44),
            "resnet56" => Ok(ModelKind::Resnet56),
            _ => Err(Error::invalid(
                "model",
                format!("unknown model {s:?} (known: {})", Self::NAMES),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Lenet5 => "lenet5",
            ModelKind::Lenet5Caffe => "lenet5-caffe",
            ModelKind::Resnet20 => "resnet20",
            ModelKind::Resnet32 => "resnet32",
            ModelKind::Resnet44 => "resnet44",
            ModelKind::Resnet56 => "resnet56",
        }
    }

    /// ResNet depth, `None` for the LeNets.
    pub fn resnet_depth(self) -> Option<usize> {
        match self {
            ModelKind::Resnet20 => Some(20),
            ModelKind::Resnet32 => Some(32),
            ModelKind::Resnet44 => Some(44),
            ModelKind::Resnet56 => Some(56),
            _ => None,
        }
    }

    /// The dataset the model is built for.
    pub fn dataset(self) -> DatasetKind {
        if self.resnet_depth().is_some() {
            DatasetKind::Cifar10
        } else {
            DatasetKind::Mnist
        }
    }
}

/// Dataset a model trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Mnist,
    Cifar10,
}

impl DatasetKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "mnist" => Ok(DatasetKind::Mnist),
            "cifar10" => Ok(DatasetKind::Cifar10),
            _ => Err(Error::invalid(
                "dataset",
                format!("unknown dataset {s:?} (known: mnist, cifar10)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }
}

/// Learning-rate schedule over the whole run (applied per step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// lr unchanged.
    Constant,
    /// lr/10 at 50% and again at 75% of the epochs (He et al.).
    Step,
    /// Half-cosine from lr to 0 (default).
    Cosine,
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "constant" => Ok(Schedule::Constant),
            "step" => Ok(Schedule::Step),
            "cosine" => Ok(Schedule::Cosine),
            _ => Err(Error::invalid(
                "schedule",
                format!("unknown schedule {s:?} (known: constant, step, cosine)"),
            )),
        }
    }
}

/// The learning-rate warm-up (`RunConfig::warmup_epochs`): a number of epochs, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WarmupValue", into = "WarmupValue")]
pub enum Warmup {
    /// One epoch where G = 1 (at most half the run), none otherwise: 1-bit errors are ±m coin
    /// flips, and at the full rate the first steps can throw every unit to one side for good
    /// (docs/results.md).
    Auto,
    /// This many epochs (fractions allowed).
    Epochs(f32),
}

/// How `Warmup` is written: a number, or the word `auto`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WarmupValue {
    Epochs(f64),
    Word(String),
}

impl TryFrom<WarmupValue> for Warmup {
    type Error = String;
    fn try_from(v: WarmupValue) -> std::result::Result<Self, String> {
        match v {
            WarmupValue::Epochs(e) => Ok(Warmup::Epochs(e as f32)),
            WarmupValue::Word(w) => Warmup::parse(&w).map_err(|e| e.to_string()),
        }
    }
}

impl From<Warmup> for WarmupValue {
    fn from(w: Warmup) -> Self {
        match w {
            Warmup::Auto => WarmupValue::Word("auto".into()),
            Warmup::Epochs(e) => WarmupValue::Epochs(e as f64),
        }
    }
}

impl Warmup {
    /// `auto` or a number of epochs.
    pub fn parse(s: &str) -> Result<Self> {
        if s == "auto" {
            return Ok(Warmup::Auto);
        }
        s.parse().map(Warmup::Epochs).map_err(|_| {
            Error::invalid(
                "warmup_epochs",
                format!("{s:?} must be a number of epochs or auto"),
            )
        })
    }
}

/// Whether the ideal engine reads each layer's propagated error through an ADC
/// (`RunConfig::ideal_error_adc`): written `true`, `false` or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SwitchValue", into = "SwitchValue")]
pub enum ErrorAdc {
    /// Where G = 1: without the read, 1-bit errors grow layer by layer and training stalls
    /// (docs/results.md); G ≥ 2 trains better without it.
    Auto,
    On,
    Off,
}

/// How `ErrorAdc` is written: a bool, or the word `auto`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SwitchValue {
    Bool(bool),
    Word(String),
}

impl TryFrom<SwitchValue> for ErrorAdc {
    type Error = String;
    fn try_from(v: SwitchValue) -> std::result::Result<Self, String> {
        match v {
            SwitchValue::Bool(b) => Ok(if b { ErrorAdc::On } else { ErrorAdc::Off }),
            SwitchValue::Word(w) => ErrorAdc::parse(&w).map_err(|e| e.to_string()),
        }
    }
}

impl From<ErrorAdc> for SwitchValue {
    fn from(e: ErrorAdc) -> Self {
        match e {
            ErrorAdc::Auto => SwitchValue::Word("auto".into()),
            ErrorAdc::On => SwitchValue::Bool(true),
            ErrorAdc::Off => SwitchValue::Bool(false),
        }
    }
}

impl ErrorAdc {
    /// `auto`, `on`/`true` or `off`/`false`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(ErrorAdc::Auto),
            "on" | "true" => Ok(ErrorAdc::On),
            "off" | "false" => Ok(ErrorAdc::Off),
            _ => Err(Error::invalid(
                "ideal_error_adc",
                format!("{s:?} must be auto, on or off"),
            )),
        }
    }
}

/// The warm-up of configs and index lines written before `auto` existed: none.
fn no_warmup() -> Warmup {
    Warmup::Epochs(0.0)
}

/// All settings of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Network. Default `lenet5`.
    pub model: ModelKind,
    /// Dataset. Default `mnist`.
    pub dataset: DatasetKind,
    /// Bit-widths A,CO,W,G (1..16, 32 = fp32). Default `4,4,4,4`, the paper's headline setting.
    pub bits: BitWidths,
    /// How the CO (ADC) range is set from a batch: `max` (spec §2), `mean:K` (K·mean|co|) or
    /// `auto` (K by bit-width: 1.5 at 2 bits, 2.3 at 3, 3 from 4 on). Default `auto`: with
    /// `max`, a 2-bit ADC reads almost every output as zero (see docs/results.md).
    pub co_range: CoRange,
    /// Grid of the stochastic G quantizer: `dorefa` (spec §2) or `mid-tread` (with a zero
    /// level). Default `mid-tread` (see docs/results.md for the measured difference).
    pub g_rounding: GRounding,
    /// Over which errors G takes its scale `m = max|g|`: `sample` (spec §2) or `vector` (each
    /// crossbar input vector: a sample's errors at one output position, over the channels).
    /// Default `sample`.
    #[serde(default)]
    pub g_scale: GScale,
    /// How a 1-bit ADC reads: `centered` (a comparator against the column's mean plus the
    /// trained bias, reading ±1) or `zero` (`sign(co)·mean|co|`). Default `centered`: with
    /// `zero` no CO = 1 row trains (docs/results.md).
    #[serde(default)]
    pub comparator: Comparator,
    /// Read every hidden layer's multi-bit ADC (CO ≥ 2 bits) around each column's batch mean,
    /// as the centred comparator reads a 1-bit one: the mean subtraction of the batch-norm that
    /// follows each ResNet conv, moved before the conversion, so a 3-level ADC spends its levels
    /// on the spread of each channel rather than on its offset. For networks with batch-norm;
    /// LeNet-5 has none and loses its ReLU sparsity (docs/results.md). Default false.
    #[serde(default)]
    pub centre_adc: bool,
    /// Backward of a centred read (the 1-bit comparator, or any ADC with `centre_adc`) through
    /// the batch mean it is centred on, as batch-norm's backward does: each column's mean error
    /// ḡ leaves the weight gradient (digital; `nn::engine::MatrixCore::weight_errors`). Held
    /// constant instead, the reference leaves a common part in the weight gradient that the
    /// read cannot see, which drives a layer's weights to one sign: the
    /// all-1-bit 1,1,2,1 trains only with it (docs/results.md). Default true; a run's resolved
    /// config from before the key existed holds the reference, as that run did.
    #[serde(default)]
    pub centred_backward: bool,
    /// The forward ADCs of the layers whose output goes straight into the activation's clip at
    /// 0 — LeNet-5's hidden layers; ResNet convs feed batch-norm and the logits are signed, so
    /// those always read bipolar: `bipolar` (spec §2's symmetric quantizer, 2^k − 1 levels over
    /// [−s, s]) or `unipolar` (2^k levels over [0, s], negatives read 0: the codes the clip
    /// would waste go to the side it keeps). Default `unipolar`: at 2 bits it is the difference
    /// between 0.95 and 0.98 (docs/results.md). A config without the key (one written before it
    /// existed) reads bipolar, as those runs did.
    #[serde(default)]
    pub adc_polarity: Polarity,
    /// Passes over the training set. Default 20.
    pub epochs: usize,
    /// A run whose training accuracy and best test accuracy are both still below twice chance
    /// after this many epochs has failed to converge: it stops there and is reported as
    /// `stalled` (a result, like `diverged`). 0 = never stop. Default 3.
    pub stall_epochs: usize,
    /// Ideal engine: read each layer's propagated error through one ADC with the CO range rule
    /// and the bits of the arrays' backward row ADCs (`crossbar.backward_adc_bits`, by default
    /// the CO bits), as those ADCs do (without tiles or phases). The arrays bound the
    /// error this way; without it G = 1 errors grow layer by layer and training stalls
    /// (docs/results.md). Default `auto`: on where G = 1 (`RunConfig::reads_errors`); a config
    /// written before `auto` existed says `true` or `false`, as its run had it.
    pub ideal_error_adc: ErrorAdc,
    /// Images per step. Default 64 (spec §4).
    pub batch: usize,
    /// Peak learning rate. Default 0.05.
    pub lr: f32,
    /// Momentum m of `ΔK = lr·∂J/∂K + m·ΔK_last`. Default 0.9.
    pub momentum: f32,
    /// L2 weight decay on weights (not biases, not BN). Default 1e-3 (classic LeNet-5; the
    /// Caffe LeNet-5 keeps 5e-4, ResNets 1e-4: `RunConfig::defaults_for`).
    pub weight_decay: f32,
    /// Largest new step of a layer's weights in one iteration, as a fraction of their norm
    /// (`‖lr·(∂J/∂K + wd·K)‖ ≤ max_step·‖K‖`; `train::optimizer`). Quantized weights are
    /// normalised by their largest value, so weight decay shrinks their norm freely and
    /// makes every step larger against them; the bound stops the rare outlier step that
    /// would then throw a layer around. 0 = no bound. Default 0.02 (classic LeNet-5; 0 for the
    /// others and in a config without the key).
    #[serde(default)]
    pub max_step: f32,
    /// Learning-rate schedule. Default `cosine`.
    pub schedule: Schedule,
    /// Linear warm-up over this many epochs (fractions allowed): the schedule's rate is scaled
    /// by (step + 1) / warm-up steps until then, so the first steps of a low-bit run cannot
    /// throw every unit to one side before the data has shaped them. Default `auto` (one epoch
    /// where G = 1, none otherwise: `RunConfig::warmup`); a config without the key (one
    /// written before warm-up existed) has none.
    #[serde(default = "no_warmup")]
    pub warmup_epochs: Warmup,
    /// Label smoothing ε of the training loss: targets `(1 − ε)·onehot + ε/K` (Szegedy et al.
    /// 2016). The test loss stays the plain cross-entropy. Default 0.
    #[serde(default)]
    pub label_smoothing: f32,
    /// Side in pixels of a square zeroed at a random place in every augmented training image
    /// (cutout, DeVries & Taylor 2017; CIFAR only). Default 0 (none).
    #[serde(default)]
    pub cutout: usize,
    /// Evaluate each test image and its mirror image and average the two class probabilities
    /// (test-time augmentation with the training flip; CIFAR only). Default false.
    #[serde(default)]
    pub test_flip: bool,
    /// Also evaluate each test image moved this many pixels up, down, left and right (black
    /// border, as training's padding; each mirrored too with `test_flip`) and average all the
    /// views' probabilities (CIFAR only). Default 0 (none).
    #[serde(default)]
    pub test_shifts: usize,
    /// Decay of an exponential moving average of the weights and batch-norm statistics,
    /// updated after every step (`avg = d·avg + (1 − d)·w`); evaluation then tests the average
    /// (`test_accuracy`), and the weights themselves too (`raw_test_accuracy`). Ideal hardware
    /// only (arrays hold one set of weights). Default 0 (none).
    #[serde(default)]
    pub ema: f32,
    /// Evaluate on the test set after every N-th epoch and after the last (and the stall
    /// check's): a long run spends less of its time on evaluation; the other epochs' metrics
    /// lines carry no test values. Default 1 (every epoch).
    #[serde(default = "every_epoch")]
    pub eval_every: usize,
    /// Run seed: data order, initial weights, G rounding. Default 1.
    pub seed: u64,
    /// Use only the first N training images (quick runs, tests). Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images. Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Dataset folder; when absent it is searched for (see `data::locate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// Worker threads. Results are bit-identical for the same thread count. Default: all cores.
    pub threads: usize,
    /// Images per evaluation batch (evaluation only; does not change results). Default 1000.
    pub eval_batch: usize,
    /// Keep the first and last matrix layers at fp32 (a hybrid system). Default false (all-RRAM).
    pub fp32_first_last: bool,
    /// Output columns per class of the last matrix layer; each logit is the mean of its class's
    /// columns (`nn::vote`): K ternary (2-bit) reads give 2K + 1 logit levels where one gives 3.
    /// Default 1 (the plain network).
    pub logit_columns: usize,
    /// Standard deviation that each matrix layer's output is scaled to at initialisation
    /// (data-dependent init of the digital scale α, see `nn::engine`). Default 0.5.
    pub init_output_std: f32,
    /// Where the matrix products run: `rram` (simulated arrays, default) or `ideal` (software
    /// quantization only).
    pub hardware: Hardware,
    /// The arrays and devices (used with `hardware = "rram"`).
    pub crossbar: CrossbarConfig,
}

fn every_epoch() -> usize {
    1
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            model: ModelKind::Lenet5,
            dataset: DatasetKind::Mnist,
            bits: BitWidths::uniform(4),
            co_range: CoRange::Auto,
            g_rounding: GRounding::MidTread,
            g_scale: GScale::Sample,
            comparator: Comparator::Centered,
            centre_adc: false,
            centred_backward: true,
            adc_polarity: Polarity::Unipolar,
            epochs: 20,
            stall_epochs: 3,
            ideal_error_adc: ErrorAdc::Auto,
            batch: 64,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 1e-3,
            max_step: 0.02,
            schedule: Schedule::Cosine,
            warmup_epochs: Warmup::Auto,
            label_smoothing: 0.0,
            cutout: 0,
            test_flip: false,
            test_shifts: 0,
            ema: 0.0,
            eval_every: 1,
            seed: 1,
            train_limit: None,
            test_limit: None,
            data: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            eval_batch: 1000,
            fp32_first_last: false,
            logit_columns: 1,
            init_output_std: 0.5,
            hardware: Hardware::Rram,
            crossbar: CrossbarConfig::default(),
        }
    }
}

impl RunConfig {
    /// Check every value; the first bad one is named in the error.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, what: String| Err(Error::invalid(key, what));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("{} must be a number > 0", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", format!("{} must be in [0, 1)", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                format!("{} must be >= 0", self.weight_decay),
            );
        }
        if !(self.max_step.is_finite() && self.max_step >= 0.0) {
            return bad(
                "max_step",
                format!("{} must be >= 0 (0 = no bound)", self.max_step),
            );
        }
        if self.model.dataset() != self.dataset {
            return bad(
                "dataset",
                format!(
                    "{} trains on {}, not {}",
                    self.model.as_str(),
                    self.model.dataset().as_str(),
                    self.dataset.as_str()
                ),
            );
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        let w = self.warmup();
        if !(w.is_finite() && w >= 0.0 && w < self.epochs as f32) {
            return bad(
                "warmup_epochs",
                format!(
                    "{w} must be >= 0 and less than the run's {} epochs",
                    self.epochs
                ),
            );
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(
                "label_smoothing",
                format!("{} must be in [0, 1)", self.label_smoothing),
            );
        }
        let cifar = self.dataset == DatasetKind::Cifar10;
        if self.cutout > 32 || (self.cutout > 0 && !cifar) {
            return bad(
                "cutout",
                format!(
                    "{} must be 0 (none) or, for cifar10's augmented images, at most 32",
                    self.cutout
                ),
            );
        }
        if self.test_flip && !cifar {
            return bad(
                "test_flip",
                "only for cifar10, whose training images are flipped (digits are not)".into(),
            );
        }
        if self.test_shifts > 0 && !cifar || self.test_shifts > 8 {
            return bad(
                "test_shifts",
                format!(
                    "{} must be 0 (none) or, for cifar10, at most 8 pixels",
                    self.test_shifts
                ),
            );
        }
        if !(0.0..1.0).contains(&self.ema) {
            return bad("ema", format!("{} must be in [0, 1) (0: none)", self.ema));
        }
        if self.ema > 0.0 && self.hardware != Hardware::Ideal {
            return bad(
                "ema",
                "needs --hardware ideal: the arrays hold one set of weights".into(),
            );
        }
        if self.batch == 0 {
            return bad("batch", "must be at least 1".into());
        }
        if self.eval_batch == 0 {
            return bad("eval_batch", "must be at least 1".into());
        }
        if self.eval_every == 0 {
            return bad("eval_every", "must be at least 1 (every epoch)".into());
        }
        if self.threads == 0 || self.threads > 1024 {
            return bad("threads", format!("{} must be in 1..=1024", self.threads));
        }
        if self.train_limit == Some(0) {
            return bad("train_limit", "must be at least 1".into());
        }
        if self.test_limit == Some(0) {
            return bad("test_limit", "must be at least 1".into());
        }
        self.variant().validate()?;
        if !(self.init_output_std.is_finite() && self.init_output_std > 0.0) {
            return bad("init_output_std", "must be > 0".into());
        }
        self.crossbar.validate()
    }

    /// The network's departures from its plain form.
    pub fn variant(&self) -> crate::models::Variant {
        crate::models::Variant {
            fp32_first_last: self.fp32_first_last,
            logit_columns: self.logit_columns,
        }
    }

    /// Read a config file (a run's `config.toml` or a user's own); missing keys take defaults.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Invalid { key, what } => Error::format(path, format!("{key}: {what}")),
            other => other,
        })
    }

    /// Whether the ideal engine reads propagated errors through an ADC (`ideal_error_adc`,
    /// `auto` resolved by the G bits).
    pub fn reads_errors(&self) -> bool {
        match self.ideal_error_adc {
            ErrorAdc::On => true,
            ErrorAdc::Off => false,
            ErrorAdc::Auto => self.bits.g == crate::quant::Bits::K(1),
        }
    }

    /// The warm-up in epochs (`warmup_epochs`, `auto` resolved by the G bits).
    pub fn warmup(&self) -> f32 {
        match self.warmup_epochs {
            Warmup::Epochs(e) => e,
            Warmup::Auto if self.bits.g == crate::quant::Bits::K(1) => {
                (self.epochs as f32 / 2.0).min(1.0)
            }
            Warmup::Auto => 0.0,
        }
    }

    /// The defaults for `model`: the classic LeNet-5's; the Caffe LeNet-5's (weight decay 5e-4,
    /// no step bound: the recipe its results were measured with); or for a ResNet its recipe
    /// (spec §4: lr 0.1, batch 128, weight decay 1e-4, step decay, no step bound) and CIFAR-10.
    pub fn defaults_for(model: ModelKind) -> Self {
        let mut c = RunConfig {
            model,
            dataset: model.dataset(),
            ..RunConfig::default()
        };
        if model != ModelKind::Lenet5 {
            c.weight_decay = 5e-4;
            c.max_step = 0.0;
        }
        if model.resnet_depth().is_some() {
            c.lr = 0.1;
            c.batch = 128;
            c.weight_decay = 1e-4;
            c.schedule = Schedule::Step;
        }
        c
    }

    /// Parse TOML text; missing keys take the defaults of the model it names
    /// (`defaults_for`), so a file or sweep that says `model = "resnet20"` gets ResNet's recipe.
    pub fn from_toml(text: &str) -> Result<Self> {
        let partial: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::invalid("config", one_line(&e.to_string())))?;
        Self::from_table(partial)
    }

    /// A config from the keys it sets; missing keys take the model's defaults (so settings
    /// written before a key existed still load, as the run had it).
    pub fn from_table(mut partial: toml::Table) -> Result<Self> {
        // A run's resolved config (rram writes every key, `eval_batch` among them) from before
        // `adc_polarity` existed ran bipolar; a hand-written one takes today's default.
        // Likewise its arrays read partial sums bipolar before `crossbar.partial_polarity`.
        if partial.contains_key("eval_batch") {
            let bipolar = toml::Value::String(Polarity::Bipolar.as_str().to_string());
            if !partial.contains_key("adc_polarity") {
                partial.insert("adc_polarity".into(), bipolar.clone());
            }
            if let Some(toml::Value::Table(x)) = partial.get_mut("crossbar") {
                x.entry("partial_polarity").or_insert(bipolar);
            }
            // and had no warm-up before `warmup_epochs` existed
            partial
                .entry("warmup_epochs")
                .or_insert(toml::Value::Float(0.0));
            // and took every step whole before `max_step` existed
            partial.entry("max_step").or_insert(toml::Value::Float(0.0));
            // and held its comparators' references constant in backward
            partial
                .entry("centred_backward")
                .or_insert(toml::Value::Boolean(false));
        }
        let model = match partial.get("model").and_then(|v| v.as_str()) {
            Some(m) => ModelKind::parse(m)?,
            None => RunConfig::default().model,
        };
        let mut base = toml::Table::try_from(RunConfig::defaults_for(model))
            .map_err(|e| Error::invalid("config", e.to_string()))?;
        merge(&mut base, partial);
        let cfg: RunConfig = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| Error::invalid("config", one_line(&e.to_string())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The write disturbance the run actually had ("–" in ideal mode, which has no cells).
    pub fn disturb_label(&self) -> String {
        match self.hardware {
            Hardware::Rram => self.crossbar.disturb.to_string(),
            Hardware::Ideal => "–".into(),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("RunConfig always serializes")
    }
}

/// Overlay `over` on `base`, table by table, so a file may give only some keys of a section.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// TOML errors span several lines (with a source excerpt); keep the message on one.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_naming_a_resnet_gets_its_recipe_unless_it_says_otherwise() {
        let c = RunConfig::from_toml("model = \"resnet20\"\n").unwrap();
        assert_eq!(
            (c.lr, c.batch, c.weight_decay, c.schedule, c.dataset),
            (0.1, 128, 1e-4, Schedule::Step, DatasetKind::Cifar10)
        );
        let c = RunConfig::from_toml("model = \"resnet20\"\nbatch = 64\nlr = 0.05\n").unwrap();
        assert_eq!((c.lr, c.batch, c.weight_decay), (0.05, 64, 1e-4));
        let c = RunConfig::from_toml("epochs = 2\n").unwrap();
        assert_eq!((c.lr, c.batch), (0.05, 64));
    }

    #[test]
    fn each_lenet_has_its_recipe_and_old_configs_take_every_step_whole() {
        let classic = RunConfig::default();
        assert_eq!((classic.weight_decay, classic.max_step), (1e-3, 0.02));
        let caffe = RunConfig::from_toml("model = \"lenet5-caffe\"\n").unwrap();
        assert_eq!((caffe.weight_decay, caffe.max_step), (5e-4, 0.0));
        let resnet = RunConfig::from_toml("model = \"resnet20\"\n").unwrap();
        assert_eq!((resnet.weight_decay, resnet.max_step), (1e-4, 0.0));
        let c = RunConfig::from_toml("max_step = 0.05\n").unwrap();
        assert_eq!(c.max_step, 0.05);
        // a resolved config from before the key took every step whole; a hand-written one
        // takes the model's default
        let text = classic.to_toml();
        assert!(text.contains("max_step = "), "{text}");
        let c = RunConfig::from_toml(&without_key(&text, "max_step")).unwrap();
        assert_eq!(c.max_step, 0.0);
        assert_eq!(RunConfig::from_toml("epochs = 2\n").unwrap().max_step, 0.02);
        // likewise its comparators held their references constant in backward
        assert!(classic.centred_backward);
        let c = RunConfig::from_toml(&without_key(&text, "centred_backward")).unwrap();
        assert!(!c.centred_backward);
        assert!(
            RunConfig::from_toml("epochs = 2\n")
                .unwrap()
                .centred_backward
        );
        for bad in ["max_step = -0.1\n", "max_step = nan\n"] {
            let e = RunConfig::from_toml(bad).unwrap_err().to_string();
            assert!(e.contains("max_step"), "{e}");
        }
    }

    /// A config's text without the lines that set `key` (a file written before it existed).
    fn without_key(text: &str, key: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with(key))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn ideal_error_adc_is_auto_by_default_on_where_g_is_one_bit() {
        let mut c = RunConfig::default();
        assert_eq!(c.ideal_error_adc, ErrorAdc::Auto);
        assert!(!c.reads_errors(), "4,4,4,4");
        c.bits = "1,1,2,1".parse().unwrap();
        assert!(c.reads_errors());
        c.ideal_error_adc = ErrorAdc::Off;
        assert!(!c.reads_errors());
        // written as a bool (as before `auto`) or the word, read back the same
        let text = RunConfig::default().to_toml();
        assert!(text.contains("ideal_error_adc = \"auto\""), "{text}");
        for (line, want) in [
            ("ideal_error_adc = false\n", ErrorAdc::Off),
            ("ideal_error_adc = true\n", ErrorAdc::On),
            ("ideal_error_adc = \"auto\"\n", ErrorAdc::Auto),
        ] {
            let c = RunConfig::from_toml(line).unwrap();
            assert_eq!(c.ideal_error_adc, want, "{line}");
            assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c);
        }
        let e = RunConfig::from_toml("ideal_error_adc = \"sometimes\"\n").unwrap_err();
        assert!(e.to_string().contains("ideal_error_adc"), "{e}");
    }

    #[test]
    fn warmup_is_auto_by_default_one_epoch_where_g_is_one_bit() {
        let mut c = RunConfig::default();
        assert_eq!(c.warmup_epochs, Warmup::Auto);
        assert_eq!(c.warmup(), 0.0, "4,4,4,4");
        c.bits = "2,2,2,1".parse().unwrap();
        assert_eq!(c.warmup(), 1.0);
        c.epochs = 1;
        assert_eq!(c.warmup(), 0.5, "at most half the run");
        c.validate().unwrap();
        c.warmup_epochs = Warmup::Epochs(0.0);
        assert_eq!(c.warmup(), 0.0, "a number is taken as it is");
        // written as the word or a number, read back the same
        let text = RunConfig::default().to_toml();
        assert!(text.contains("warmup_epochs = \"auto\""), "{text}");
        assert_eq!(RunConfig::from_toml(&text).unwrap(), RunConfig::default());
        for (v, want) in [("1", 1.0), ("0.5", 0.5), ("0.0", 0.0)] {
            let c = RunConfig::from_toml(&format!("warmup_epochs = {v}\n")).unwrap();
            assert_eq!(c.warmup_epochs, Warmup::Epochs(want), "{v}");
        }
        let e = RunConfig::from_toml("warmup_epochs = \"soon\"\n").unwrap_err();
        assert!(e.to_string().contains("warmup_epochs"), "{e}");
        // a resolved config from before the key had no warm-up; a hand-written one is auto
        let old = without_key(&text, "warmup_epochs");
        let old = old.replace("bits = \"4,4,4,4\"", "bits = \"2,2,2,1\"");
        let c = RunConfig::from_toml(&old).unwrap();
        assert_eq!((c.bits.g, c.warmup()), (crate::quant::Bits::K(1), 0.0));
        let c = RunConfig::from_toml("bits = \"2,2,2,1\"\n").unwrap();
        assert_eq!((c.warmup_epochs, c.warmup()), (Warmup::Auto, 1.0));
    }

    #[test]
    fn resolved_configs_from_before_the_adc_polarity_key_read_bipolar() {
        let cfg = RunConfig::default();
        assert_eq!(cfg.adc_polarity, Polarity::Unipolar);
        let text = cfg.to_toml();
        assert!(text.contains("adc_polarity = \"unipolar\""));
        let old = without_key(&text, "adc_polarity");
        let c = RunConfig::from_toml(&old).unwrap();
        assert_eq!(c.adc_polarity, Polarity::Bipolar);
        assert_eq!(
            RunConfig {
                adc_polarity: Polarity::Unipolar,
                ..c
            },
            cfg
        );
        // the same for the arrays' partial-sum reads (skewed today, bipolar before the key)
        assert_eq!(cfg.crossbar.partial_polarity, Polarity::Skewed);
        let old = without_key(&text, "partial_polarity");
        let c = RunConfig::from_toml(&old).unwrap();
        assert_eq!(c.crossbar.partial_polarity, Polarity::Bipolar);
        assert_eq!(c.adc_polarity, Polarity::Unipolar);
        // a hand-written file takes the default; a file that names it, its own
        let c = RunConfig::from_toml("bits = \"2,2,2,2\"\n").unwrap();
        assert_eq!(c.adc_polarity, Polarity::Unipolar);
        assert_eq!(c.crossbar.partial_polarity, Polarity::Skewed);
        let c = RunConfig::from_toml("[crossbar]\npartial_polarity = \"bipolar\"\n").unwrap();
        assert_eq!(c.crossbar.partial_polarity, Polarity::Bipolar);
        let c = RunConfig::from_toml("adc_polarity = \"bipolar\"\n").unwrap();
        assert_eq!(c.adc_polarity, Polarity::Bipolar);
        assert!(RunConfig::from_toml("adc_polarity = \"both\"\n").is_err());
    }

    #[test]
    fn toml_round_trip_and_partial_files() {
        let cfg = RunConfig {
            train_limit: Some(100),
            bits: "2,2,1,4".parse().unwrap(),
            ..RunConfig::default()
        };
        assert_eq!(RunConfig::from_toml(&cfg.to_toml()).unwrap(), cfg);
        let partial =
            RunConfig::from_toml("epochs = 3\nbits = \"8,8,8,8\"\n[crossbar]\ntile_rows = 64\n")
                .unwrap();
        assert_eq!(partial.epochs, 3);
        assert_eq!(partial.crossbar.tile_rows, 64);
        assert_eq!(partial.crossbar.tile_cols, 128);
        assert_eq!(partial.lr, RunConfig::default().lr);
    }

    #[test]
    fn bad_configs_are_errors() {
        for bad in [
            "lr = -1.0",
            "bits = \"4,4,4\"",
            "model = \"vgg\"",
            "unknown_key = 1",
            "epochs = [",
            "[crossbar]\ndisturb = \"uniform:-1\"",
            "[crossbar]\nfaults = \"sa0:2\"",
            "[crossbar]\ntile_rows = 0",
            "label_smoothing = 1.0",
            "label_smoothing = -0.1",
            "cutout = 8",
            "model = \"resnet20\"\ncutout = 33",
            "test_flip = true",
        ] {
            assert!(RunConfig::from_toml(bad).is_err(), "{bad}");
        }
    }
}
