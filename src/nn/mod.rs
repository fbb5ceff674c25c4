//! Layers. Each layer owns its forward and its backward (no autodiff): `forward` caches what the
//! backward needs, `backward` takes dJ/d(output) and returns dJ/d(input), filling the gradients
//! of its parameters. Matrix layers (`Conv2d`, `Linear`) hand their product to `engine::MatrixCore`,
//! where the A/CO/W/G quantization points live; the rest is digital work ("others").

pub mod activation;
pub mod batch_norm;
pub mod conv2d;
pub mod engine;
pub mod flatten;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod residual;
pub mod vote;

use crate::tensor::Tensor;
pub use engine::MatrixCore;

/// What a forward or backward pass needs to know about the step it is part of.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Training (batch statistics, caches for backward) or evaluation.
    pub train: bool,
    /// Global training step: keys the stochastic rounding of G.
    pub step: u64,
    /// The run seed.
    pub seed: u64,
    /// Data-dependent initialisation (`Model::calibrate`): an evaluation pass in which
    /// batch-norm normalises with the batch's own statistics, because its running ones have not
    /// been trained yet; nothing is updated.
    pub batch_stats: bool,
    /// An evaluation pass that sets every centred comparator's reference to this batch's mean
    /// (`Ctx::references`); nothing else is updated.
    pub refresh_references: bool,
}

impl Ctx {
    pub const fn train(step: u64, seed: u64) -> Self {
        Ctx {
            train: true,
            step,
            seed,
            batch_stats: false,
            refresh_references: false,
        }
    }

    pub const fn eval(seed: u64) -> Self {
        Ctx {
            train: false,
            step: 0,
            seed,
            batch_stats: false,
            refresh_references: false,
        }
    }

    /// Re-estimate the centred comparators' references (1-bit ADCs) from one batch of training
    /// images with the current weights, before an evaluation at training step `step`.
    pub const fn references(seed: u64, step: u64) -> Self {
        Ctx {
            refresh_references: true,
            step,
            ..Ctx::eval(seed)
        }
    }

    pub const fn calibration(seed: u64) -> Self {
        Ctx {
            batch_stats: true,
            ..Ctx::eval(seed)
        }
    }
}

/// A trainable parameter as the optimizer sees it.
pub struct ParamView<'a> {
    /// Name inside its layer (`weight`, `bias`, `gamma`, `beta`; `conv1.weight` in a block).
    pub name: String,
    pub value: &'a mut Vec<f32>,
    pub grad: &'a mut Vec<f32>,
    /// Whether weight decay applies (weights yes; biases and BN parameters no).
    pub decay: bool,
}

/// One layer of a network.
pub trait Layer: Send {
    /// Name in checkpoints and reports (`conv1`, `fc3`, `pool1`).
    fn name(&self) -> &str;
    /// # Shapes
    /// Channel-major, see `tensor`: `[c, n, h, w]` for feature maps, `[f, n]` for vectors.
    fn forward(&mut self, x: Tensor, ctx: &Ctx) -> Tensor;
    /// dJ/d(output) → dJ/d(input); parameter gradients are overwritten.
    fn backward(&mut self, dy: Tensor, ctx: &Ctx) -> Tensor;
    /// Trainable parameters, in a fixed order.
    fn params(&mut self) -> Vec<ParamView<'_>> {
        Vec::new()
    }
    /// Non-trainable state that a checkpoint must keep (BN running statistics, matrix scales).
    fn buffers(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        Vec::new()
    }
    /// Start (true) or stop timing the parts of a composite layer (a residual block) for
    /// `rram bench`; a plain layer has no parts.
    fn time_parts(&mut self, _on: bool) {}
    /// Seconds spent so far in each part kind (`conv`, `bn`, `act`, `shortcut`), forward and
    /// backward, since timing started.
    fn part_times(&self) -> Vec<(&'static str, [f64; 2])> {
        Vec::new()
    }
    /// The matrix core of a Conv2d / Linear layer.
    fn matrix(&mut self) -> Option<&mut MatrixCore> {
        None
    }
    /// Every matrix core inside the layer with its name (a residual block has several).
    fn matrices(&mut self) -> Vec<(String, &mut MatrixCore)> {
        let name = self.name().to_string();
        self.matrix().map(|m| vec![(name, m)]).unwrap_or_default()
    }
}
