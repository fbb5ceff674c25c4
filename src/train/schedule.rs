//! Learning rate at a given step of a run.

use crate::config::Schedule;

/// The learning rate for `step` (0-based) of a run of `total` steps, `per_epoch` steps each.
pub fn lr_at(schedule: Schedule, base: f32, step: u64, total: u64, per_epoch: u64) -> f32 {
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
        assert_eq!(lr_at(Schedule::Constant, 0.1, 50, 100, 10), 0.1);
        assert!((lr_at(Schedule::Cosine, 0.1, 0, 100, 10) - 0.1).abs() < 1e-7);
        assert!((lr_at(Schedule::Cosine, 0.1, 50, 100, 10) - 0.05).abs() < 1e-7);
        // 10 epochs of 10 steps: epochs 0-4 at lr, 5-7 (epoch < 7.5) at lr/10, 8-9 at lr/100.
        assert_eq!(lr_at(Schedule::Step, 0.1, 49, 100, 10), 0.1);
        assert!((lr_at(Schedule::Step, 0.1, 50, 100, 10) - 0.01).abs() < 1e-8);
        assert!((lr_at(Schedule::Step, 0.1, 79, 100, 10) - 0.01).abs() < 1e-8);
        assert!((lr_at(Schedule::Step, 0.1, 80, 100, 10) - 0.001).abs() < 1e-9);
    }
}
