//! Training: the optimizer, the learning-rate schedule, weight averaging, checkpoints and the
//! epoch loop.

pub mod checkpoint;
pub mod ema;
pub mod optimizer;
pub mod schedule;
pub mod trainer;
