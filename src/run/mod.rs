//! Run folders: where a run's files live and how they are written (atomically, so an
//! interrupted run never leaves a half-written file).

pub mod run_dir;
pub mod store;
pub mod sweep;
