//! Training: the optimizer, the learning-rate schedule, checkpoints and the epoch loop.

pub mod checkpoint;
pub mod optimizer;
pub mod schedule;
pub mod trainer;
