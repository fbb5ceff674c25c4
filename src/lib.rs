//! rram: train low-bit-width CNNs on simulated RRAM crossbars.
//!
//! Data flow of one training step:
//! 1. `data::batcher` gathers a seeded batch into a channel-major `[c, n, h, w]` tensor.
//! 2. `nn` layers run forward: every matrix layer (`Conv2d`, `Linear`) takes A-bit inputs (the
//!    `Activation` layer before it) and computes `α·CO(W_q · x) + b` in `nn::engine::MatrixCore`,
//!    where W (weights) and CO (the ADC) are quantized.
//! 3. `nn::loss` returns the loss and dJ/d(logits).
//! 4. Layers run backward: each matrix layer quantizes its error to G bits (stochastic, per
//!    sample), propagates it through the transposed weights (backprop 1) and forms dW from the
//!    quantized inputs and errors (backprop 2).
//! 5. `train::optimizer` updates the fp32 latent weights (momentum SGD); the next forward
//!    re-quantizes them to W bits.
//! 6. `train::trainer` evaluates, checkpoints (`train::checkpoint`) and writes the run folder
//!    (`run::run_dir`).

pub mod config;
pub mod counters;
pub mod crossbar;
pub mod data;
pub mod device;
pub mod energy;
pub mod error;
pub mod kernels;
pub mod models;
pub mod nn;
pub mod quant;
pub mod report;
pub mod rng;
pub mod run;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
