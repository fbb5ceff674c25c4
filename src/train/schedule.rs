//! Learning rate at a given step of a run.

use crate::config::Schedule;

/// The learning rate for `step` (0-based) of a run of `total` steps, `per_epoch` steps each,
/// with a linear warm-up over its first `warmup` steps (0 = none) that scales the schedule.
pub fn lr_at(
    schedule: Schedule,
    base: f32,
    step: u64,
    total: u64,
    per_epoch: u64,
    warmup: u64,
) -> f32 {
    let rate = scheduled(schedule, base, step, total, per_epoch);
    if step < warmup {
        (rate as f64 * (step + 1) as f64 / warmup as f64) as f32
    } else {
        rate
    }
}

/// Warm-up steps of `epochs` (fractions allowed) at `per_epoch` steps each.
pub fn warmup_steps(epochs: f32, per_epoch: u64) -> u64 {
    (epochs as f64 * per_epoch as f64).round() as u64
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

    #[test]
    fn schedules_by_hand() {
        assert_eq!(lr_at(Schedule::Constant, 0.1, 50, 100, 10, 0), 0.1);
        assert!((lr_at(Schedule::Cosine, 0.1, 0, 100, 10, 0) - 0.1).abs() < 1e-7);
        assert!((lr_at(Schedule::Cosine, 0.1, 50, 100, 10, 0) - 0.05).abs() < 1e-7);
        // 10 epochs of 10 steps: epochs 0-4 at lr, 5-7 (epoch < 7.5) at lr/10, 8-9 at lr/100.
        assert_eq!(lr_at(Schedule::Step, 0.1, 49, 100, 10, 0), 0.1);
        assert!((lr_at(Schedule::Step, 0.1, 50, 100, 10, 0) - 0.01).abs() < 1e-8);
        assert!((lr_at(Schedule::Step, 0.1, 79, 100, 10, 0) - 0.01).abs() < 1e-8);
        assert!((lr_at(Schedule::Step, 0.1, 80, 100, 10, 0) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn warmup_ramps_then_follows_the_schedule() {
        // 4 warm-up steps on a constant 0.1: 0.025, 0.05, 0.075, then 0.1 from step 3 on.
        let c = |step| lr_at(Schedule::Constant, 0.1, step, 100, 10, 4);
        assert!((c(0) - 0.025).abs() < 1e-8);
        assert!((c(1) - 0.05).abs() < 1e-8);
        assert!((c(2) - 0.075).abs() < 1e-8);
        assert_eq!(c(3), 0.1);
        assert_eq!(c(50), 0.1);
        // It scales the cosine rate of its step: step 1 of 100 at half the ramp.
        let cos1 = 0.1 * 0.5 * (1.0 + (std::f64::consts::PI * 0.01).cos());
        let w = lr_at(Schedule::Cosine, 0.1, 1, 100, 10, 4) as f64;
        assert!((w - cos1 * 0.5).abs() < 1e-8);
        // Past the warm-up, the schedule is the one without it.
        for step in [4, 37, 99] {
            assert_eq!(
                lr_at(Schedule::Cosine, 0.1, step, 100, 10, 4),
                lr_at(Schedule::Cosine, 0.1, step, 100, 10, 0)
            );
        }
        assert_eq!(warmup_steps(0.5, 938), 469);
        assert_eq!(warmup_steps(0.0, 938), 0);
        assert_eq!(warmup_steps(2.0, 391), 782);
    }
}
