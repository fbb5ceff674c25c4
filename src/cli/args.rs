//! Flag structs, as close to the flags as possible. Every setting is an `Option` so that "not
//! given" differs from "given the default" when a `--config` file is overlaid.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rram",
    version,
    about = "Train low-bit-width CNNs on simulated RRAM crossbars"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a network (default: LeNet-5 on MNIST at A,CO,W,G = 4,4,4,4).
    Train(TrainArgs),
    /// Measure training throughput (images/s) and where the time goes, per layer.
    Bench(BenchArgs),
    /// Energy per image per training iteration (Table II): RRAM vs CPU vs GPU.
    Energy(EnergyArgs),
    /// Accuracy against RRAM energy for a set of finished runs, with the Pareto front.
    Tradeoff(TradeoffArgs),
    /// Run a grid of training runs (a TOML file or a built-in grid); restartable.
    Sweep(SweepArgs),
    /// List the finished runs of a sweep folder, optionally filtered.
    Runs(RunsArgs),
    /// Tables (Table I, Table II) and plots from the results of one or more sweep folders.
    Report(ReportArgs),
    /// Write-disturbance analysis: the realised write-error distribution on each model's
    /// arrays, and test accuracy as a function of the disturbance width.
    Disturb(DisturbArgs),
}

#[derive(Args, Debug)]
pub struct DisturbArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Widths to train at (p for uniform, σ for gaussian/lognormal), e.g. 0,0.025,0.05,0.1,0.2.
    /// Runs already finished in OUT are reused; interrupted ones resume.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub widths: Vec<f64>,
    /// Distribution of the swept disturbance: uniform (default), gaussian, lognormal.
    #[arg(long, default_value = "uniform")]
    pub kind: String,
    /// Finished run folders to include in the accuracy table (e.g. from rram train).
    #[arg(long, num_args = 1..)]
    pub runs: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub length: LengthArgs,
    /// Folder for the tables, plots and run folders.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

/// Settings shared by `train` and `bench`.
#[derive(Args, Debug, Default, Clone)]
pub struct RunArgs {
    /// Network: lenet5 (default), lenet5-caffe, resnet20, resnet32, resnet44, resnet56.
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset: mnist or cifar10 (default: the one the model is made for).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Bit-widths A,CO,W,G, each 1..16 or 32 (= fp32), e.g. 4,4,4,4.
    #[arg(long)]
    pub bits: Option<String>,
    /// ADC range rule: auto (default), max (s = max|co|) or mean:K (s = K·mean|co|).
    #[arg(long)]
    pub co_range: Option<String>,
    /// G rounding grid: dorefa (no zero level) or mid-tread (with a zero level).
    #[arg(long)]
    pub g_rounding: Option<String>,
    /// G scale: sample (one max|g| per sample, default) or vector (one per sample and output
    /// position: each crossbar input vector of the transposed read).
    #[arg(long)]
    pub g_scale: Option<String>,
    /// 1-bit ADC read: centered (default; compares each column against its mean plus the trained
    /// bias) or zero (sign of the output).
    #[arg(long)]
    pub comparator: Option<String>,
    /// Read hidden layers' multi-bit ADCs around each column's batch mean (batch-norm's centring
    /// before the conversion; for ResNets).
    #[arg(long)]
    pub centre_adc: bool,
    /// Weight gradient of a centred read (1-bit comparators; --centre-adc) through the batch mean
    /// it subtracts (true, default) or with the reference held constant (false, as before).
    #[arg(long, value_name = "BOOL")]
    pub centred_backward: Option<bool>,
    /// Forward ADCs of the layers that feed the activation's clip (LeNet-5's hidden layers):
    /// unipolar (default; 2^k levels over [0, s]), bipolar (spec §2: 2^k − 1 levels over
    /// [−s, s]) or skewed (the bipolar step, its spare code above s).
    #[arg(long)]
    pub adc_polarity: Option<String>,
    /// Images per step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Worker threads (results are bit-identical for the same count).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Dataset folder (else $RRAM_DATA, ./data, ../shared/data are searched).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Keep the first and last matrix layers at fp32.
    #[arg(long)]
    pub fp32_first_last: bool,
    /// Output columns per class in the last layer, averaged into its logit (default 1).
    #[arg(long)]
    pub logit_columns: Option<usize>,
    /// Where products run: rram (simulated arrays, default) or ideal (software quantization).
    #[arg(long)]
    pub hardware: Option<String>,
    /// Array size ROWSxCOLS (default 128x128).
    #[arg(long)]
    pub xbar: Option<String>,
    /// Write disturbance: none, uniform:P (default uniform:0.05), gaussian:SIGMA, lognormal:SIGMA.
    #[arg(long)]
    pub disturb: Option<String>,
    /// Stuck-at faults, e.g. sa0:0.01,sa1:0.01 (default none).
    #[arg(long)]
    pub faults: Option<String>,
    /// ADC placement: per-tile (default) or full-sum.
    #[arg(long)]
    pub adc: Option<String>,
    /// How an array's 2-bit ADC reads its partial sum of a column whose rows span several
    /// arrays, in unipolar layers: skewed (default; −s, 0, s, 2s), bipolar or unipolar (wider
    /// ADCs: bipolar).
    #[arg(long)]
    pub partial_polarity: Option<String>,
    /// Signed errors in the transposed read: auto (default: two-phase-analog where G = 1,
    /// two-phase otherwise), two-phase (each phase converted, subtracted digitally),
    /// two-phase-analog (subtracted before one conversion) or one-phase.
    #[arg(long)]
    pub signed_input: Option<String>,
    /// Relative read noise per analog product (default 0).
    #[arg(long)]
    pub read_noise: Option<f32>,
    /// Device-to-device spread of the cells' gain (default 0).
    #[arg(long)]
    pub d2d: Option<f32>,
}

/// How long and on what a run trains (shared by `train` and `disturb`).
#[derive(Args, Debug, Default, Clone)]
pub struct LengthArgs {
    /// Passes over the training set.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Run seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use only the first N training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    pub test_limit: Option<usize>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    /// Peak learning rate.
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f32>,
    /// Momentum.
    #[arg(long, allow_hyphen_values = true)]
    pub momentum: Option<f32>,
    /// Weight decay (L2, weights only; default 1e-3, the Caffe LeNet-5 5e-4, ResNets 1e-4).
    #[arg(long, allow_hyphen_values = true)]
    pub weight_decay: Option<f32>,
    /// Largest step of a layer's weights in one iteration, as a fraction of their norm (0 = no
    /// bound; default 0.02 for the classic LeNet-5, 0 for the other models).
    #[arg(long, value_name = "FRACTION", allow_hyphen_values = true)]
    pub max_step: Option<f32>,
    /// Learning-rate schedule: cosine (default), step, constant.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Linear learning-rate warm-up over this many epochs, fractions allowed, or auto (the
    /// default: one epoch where G = 1, none otherwise).
    #[arg(long, allow_hyphen_values = true)]
    pub warmup_epochs: Option<String>,
    /// Label smoothing ε of the training loss, in [0, 1) (default 0).
    #[arg(long, allow_hyphen_values = true)]
    pub label_smoothing: Option<f32>,
    /// Cutout: zero a random N×N square of every augmented training image (cifar10; default 0).
    #[arg(long)]
    pub cutout: Option<usize>,
    /// Evaluate each test image and its mirror image and average their probabilities (cifar10).
    #[arg(long)]
    pub test_flip: bool,
    /// Also evaluate each test image moved S pixels up, down, left and right, and average all views (cifar10; default 0).
    #[arg(long, value_name = "S")]
    pub test_shifts: Option<usize>,
    /// Keep an exponential moving average of the weights with this decay per step, and test it (ideal hardware; default 0: none).
    #[arg(long, value_name = "DECAY", allow_hyphen_values = true)]
    pub ema: Option<f32>,
    /// Evaluate on the test set every N epochs and after the last (default 1: every epoch).
    #[arg(long, value_name = "N")]
    pub eval_every: Option<usize>,
    /// Ideal engine: read propagated errors through a CO-bit ADC, as the arrays do: on (the
    /// flag alone), off, or auto (default: where G = 1).
    #[arg(long, value_name = "WHEN", num_args = 0..=1, default_missing_value = "on")]
    pub ideal_error_adc: Option<String>,
    /// Stop a run still below twice chance accuracy after this many epochs, as `stalled` (0 = never; default 3).
    #[arg(long)]
    pub stall_epochs: Option<usize>,
    /// Read settings from a TOML file (e.g. a run's config.toml); flags given here override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run folder (default runs/<timestamp>); one that already holds a run is refused (--resume it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint, with the settings of DIR/config.toml.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "model", "dataset", "bits", "batch", "data", "epochs", "lr", "momentum",
        "weight_decay", "max_step", "schedule", "warmup_epochs", "seed", "train_limit", "test_limit", "config", "out",
        "fp32_first_last", "hardware", "xbar", "disturb", "faults", "adc", "partial_polarity", "signed_input",
        "read_noise", "d2d", "co_range", "g_rounding", "g_scale", "comparator", "centre_adc", "centred_backward", "adc_polarity", "stall_epochs",
        "ideal_error_adc", "logit_columns", "label_smoothing", "cutout", "test_flip",
        "eval_every", "test_shifts", "ema",
    ])]
    pub resume: Option<PathBuf>,
    /// No progress bars (epoch lines and the summary still print).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Timed steps per setting (after warm-up).
    #[arg(long, default_value_t = 60, value_parser = at_least_one())]
    pub steps: usize,
    /// Repeats per setting; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = at_least_one())]
    pub repeats: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EnergyArgs {
    /// Network: lenet5, lenet5-caffe, resnet20, resnet32, resnet44, resnet56.
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Bit-widths A,CO,W,G.
    #[arg(long, default_value = "4,4,4,4")]
    pub bits: String,
    /// Array size ROWSxCOLS.
    #[arg(long, default_value = "128x128")]
    pub xbar: String,
    /// ADC placement: per-tile or full-sum.
    #[arg(long, default_value = "per-tile")]
    pub adc: String,
    /// Signed errors in the transposed read: auto (two-phase-analog where G = 1, two-phase
    /// otherwise), two-phase, two-phase-analog or one-phase.
    #[arg(long, default_value = "auto")]
    pub signed_input: String,
    /// Output columns per class of the last layer.
    #[arg(long, default_value_t = 1)]
    pub logit_columns: usize,
    /// The first and last matrix layers at fp32 (their arrays with 32-bit converters).
    #[arg(long)]
    pub fp32_first_last: bool,
    /// Images per step (cell writes and per-step work are amortised over it).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Energy preset: a shipped name (paper, isaac-nvsim) or a TOML file.
    #[arg(long, default_value = "paper")]
    pub preset: String,
    /// Use the measured counts of a run (its folder or its counters.json) instead of the
    /// analytic ones.
    #[arg(long)]
    pub counters: Option<std::path::PathBuf>,
    /// Analytic counts: fraction of cells rewritten per step.
    #[arg(long, default_value_t = rram::energy::DEFAULT_WRITE_FRACTION)]
    pub write_fraction: f64,
    /// Also time this machine's CPU on the model (LeNet only) and model its energy as this
    /// many watts × the measured time (no RAPL counters are exposed here).
    #[arg(long)]
    pub host_watts: Option<f64>,
    /// Worker threads for the host timing.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TradeoffArgs {
    /// Finished run folders.
    #[arg(long, num_args = 1.., required = true)]
    pub runs: Vec<std::path::PathBuf>,
    /// Energy preset (shipped name or TOML file).
    #[arg(long, default_value = "paper")]
    pub preset: String,
    /// Folder for tradeoff.md and tradeoff.svg.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Sweep file: shared settings as top-level keys, crossed lists under [axes].
    pub file: Option<std::path::PathBuf>,
    /// A built-in grid instead of a file: table1 (the paper's Table I, 3 seeds).
    #[arg(long, conflicts_with = "file")]
    pub grid: Option<String>,
    /// Sweep folder: runs/<name>/, configs/<name>.toml, index.jsonl.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Runs trained at the same time, each in its own process.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Override a shared setting of the file or grid, e.g. --set epochs=10 (repeatable; TOML
    /// values, bare words are strings). Give the same --set when restarting the sweep.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Threads per run when the sweep file does not set them (default: cores / jobs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write a job script instead of running: slurm (one array task per run).
    #[arg(long)]
    pub emit: Option<String>,
    /// Only add run NAME to the index if it has finished (what each Slurm task calls last).
    #[arg(long, value_name = "NAME")]
    pub collect: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Sweep folder (holding index.jsonl).
    pub dir: std::path::PathBuf,
    /// Keep runs whose setting KEY equals VALUE (e.g. bits=4,4,4,4, disturb=none, seed=1,
    /// hardware=rram); repeatable.
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Sweep folders (each holding index.jsonl): one report over the runs of all of them,
    /// written into the first.
    #[arg(required = true, num_args = 1..)]
    pub dirs: Vec<std::path::PathBuf>,
    /// Energy preset for Table II and the trade-off.
    #[arg(long, default_value = "paper")]
    pub preset: String,
}

/// A count that must be at least 1 (clap rejects 0 with a one-line error).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}
