//! Learning rate at a given step of a run.

use crate::config::{RunConfig, Schedule};

/// The learning rate of a run: `schedule` from `base` over `total` steps of `per_epoch` each,
/// scaled by a linear warm-up over the first `warmup` steps (0 = none).
#[derive(Clone, Copy, Debug)]
pub struct LrSchedule {
    pub schedule: Schedule,
    pub base: f32,
    pub total: u64,
    pub per_epoch: u64,
    pub warmup: u64,
}

impl LrSchedule {
    /// A run's schedule at `per_epoch` steps per epoch (the warm-up's fraction of an epoch
    /// rounded to whole steps).
    pub fn of(cfg: &RunConfig, per_epoch: u64) -> Self {
        LrSchedule {
            schedule: cfg.schedule,
            base: cfg.lr,
            total: per_epoch * cfg.epochs as u64,
            per_epoch,
            warmup: (cfg.warmup() as f64 * per_epoch as f64).round() as u64,
        }
    }

    /// The rate of `step` (0-based).
    pub fn at(&self, step: u64) -> f32 {
        let rate = scheduled(self.schedule, self.base, step, self.total, self.per_epoch);
        if step < self.warmup {
            (rate as f64 * (step + 1) as f64 / self.warmup as f64) as f32
        } else {
            rate
        }
    }
}

fn scheduled(schedule: Schedule, base: f32, step: u64, total: u64, per_epoch: u64) -> f32 {
    match schedule {
        Schedule::Constant => base,
        Schedule::Cosine => {
            let t = step as f64 / total.max(1) as f64;
            (base as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
        }
        Schedule::Step => {
            let epochs = total.div_ceil(per_epoch.max(1)) as f64;
            let epoch = (step / per_epoch.max(1)) as f64;
            if epoch < 0.5 * epochs {
                base
            } else if epoch < 0.75 * epochs {
                base * 0.1
            } else {
                base * 0.01
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 steps of 10 per epoch from 0.1, with `warmup` warm-up steps.
    fn lr(schedule: Schedule, warmup: u64) -> LrSchedule {
        LrSchedule {
            schedule,
            base: 0.1,
            total: 100,
            per_epoch: 10,
            warmup,
        }
    }

    #[test]
    fn schedules_by_hand() {
        assert_eq!(lr(Schedule::Constant, 0).at(50), 0.1);
        assert!((lr(Schedule::Cosine, 0).at(0) - 0.1).abs() < 1e-7);
        assert!((lr(Schedule::Cosine, 0).at(50) - 0.05).abs() < 1e-7);
        // 10 epochs of 10 steps: epochs 0-4 at lr, 5-7 (epoch < 7.5) at lr/10, 8-9 at lr/100.
        assert_eq!(lr(Schedule::Step, 0).at(49), 0.1);
        assert!((lr(Schedule::Step, 0).at(50) - 0.01).abs() < 1e-8);
        assert!((lr(Schedule::Step, 0).at(79) - 0.01).abs() < 1e-8);
        assert!((lr(Schedule::Step, 0).at(80) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn warmup_ramps_then_follows_the_schedule() {
        // 4 warm-up steps on a constant 0.1: 0.025, 0.05, 0.075, then 0.1 from step 3 on.
        let c = |step| lr(Schedule::Constant, 4).at(step);
        assert!((c(0) - 0.025).abs() < 1e-8);
        assert!((c(1) - 0.05).abs() < 1e-8);
        assert!((c(2) - 0.075).abs() < 1e-8);
        assert_eq!(c(3), 0.1);
        assert_eq!(c(50), 0.1);
        // It scales the cosine rate of its step: step 1 of 100 at half the ramp.
        let cos1 = 0.1 * 0.5 * (1.0 + (std::f64::consts::PI * 0.01).cos());
        let w = lr(Schedule::Cosine, 4).at(1) as f64;
        assert!((w - cos1 * 0.5).abs() < 1e-8);
        // Past the warm-up, the schedule is the one without it.
        for step in [4, 37, 99] {
            assert_eq!(
                lr(Schedule::Cosine, 4).at(step),
                lr(Schedule::Cosine, 0).at(step)
            );
        }
        // a run's warm-up in whole steps
        let cfg = |e| RunConfig {
            warmup_epochs: crate::config::Warmup::Epochs(e),
            ..RunConfig::default()
        };
        assert_eq!(LrSchedule::of(&cfg(0.5), 938).warmup, 469);
        assert_eq!(LrSchedule::of(&cfg(0.0), 938).warmup, 0);
        assert_eq!(LrSchedule::of(&cfg(2.0), 391).warmup, 782);
        assert_eq!(LrSchedule::of(&cfg(2.0), 391).total, 391 * 20);
    }
}
