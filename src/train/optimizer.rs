//! SGD with momentum in the paper's form, `ΔK = lr·(∂J/∂K + wd·K) + m·ΔK_last`, `K ← K − ΔK`.
//! The velocity `ΔK` is the optimizer's whole state, kept per parameter in model order, so a
//! checkpoint stores it and a resumed run continues exactly.
//!
//! Optionally each weight tensor's new term `lr·(∂J/∂K + wd·K)` is held to `max_step·‖K‖`.
//! Quantized weights are normalised by their largest value (spec §2), so a layer's output does
//! not see its weights' norm and weight decay shrinks it freely; the smaller the norm, the larger
//! every step is against the weights, until one batch's outlier gradient can throw a whole layer
//! around (an 8,8,8,8 run collapsed that way at weight decay 1e-3, docs/results.md). The bound
//! is relative to the norm, so it leaves ordinary steps alone and stops only those outliers.

use crate::nn::ParamView;

pub struct Sgd {
    pub momentum: f32,
    pub weight_decay: f32,
    /// Largest new step of a weight tensor as a fraction of its norm; 0 = no bound.
    pub max_step: f32,
    /// ΔK_last per parameter, in the order `Model::params` lists them.
    pub velocity: Vec<Vec<f32>>,
    /// Weight-tensor steps the bound has shortened since the last `take_limited`.
    limited: u64,
}

impl Sgd {
    pub fn new(momentum: f32, weight_decay: f32, max_step: f32) -> Self {
        Sgd {
            momentum,
            weight_decay,
            max_step,
            velocity: Vec::new(),
            limited: 0,
        }
    }

    /// How many weight-tensor steps `max_step` shortened since the last call.
    pub fn take_limited(&mut self) -> u64 {
        std::mem::take(&mut self.limited)
    }

    /// One update of every parameter with learning rate `lr`.
    pub fn step(&mut self, params: &mut [(String, ParamView<'_>)], lr: f32) {
        if self.velocity.len() != params.len() {
            self.velocity = params
                .iter()
                .map(|(_, p)| vec![0.0; p.value.len()])
                .collect();
        }
        let m = self.momentum;
        for ((_, p), v) in params.iter_mut().zip(&mut self.velocity) {
            let wd = if p.decay { self.weight_decay } else { 0.0 };
            let mut lr = lr;
            // weights only (the tensors that decay): biases and scales have no norm to keep to
            if self.max_step > 0.0 && p.decay {
                let (mut k2, mut d2) = (0f64, 0f64);
                for (&k, &g) in p.value.iter().zip(p.grad.iter()) {
                    k2 += (k as f64) * (k as f64);
                    d2 += ((g + wd * k) as f64).powi(2);
                }
                let (bound, step) = (self.max_step as f64 * k2.sqrt(), lr as f64 * d2.sqrt());
                if step > bound {
                    lr = (lr as f64 * bound / step) as f32;
                    self.limited += 1;
                }
            }
            for ((k, &g), dk) in p.value.iter_mut().zip(p.grad.iter()).zip(v.iter_mut()) {
                *dk = lr * (g + wd * *k) + m * *dk;
                *k -= *dk;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(name: &str, value: &'a mut Vec<f32>, grad: &'a mut Vec<f32>) -> ParamView<'a> {
        ParamView {
            name: name.into(),
            value,
            grad,
            decay: name == "weight",
        }
    }

    #[test]
    fn momentum_rule_by_hand() {
        // K = 1, g = 0.5, lr = 0.1, m = 0.9, wd = 0.
        // step 1: ΔK = 0.05, K = 0.95; step 2 (g = 0.5): ΔK = 0.05 + 0.045 = 0.095, K = 0.855.
        let mut sgd = Sgd::new(0.9, 0.0, 0.0);
        let mut value = vec![1.0f32];
        let mut grad = vec![0.5f32];
        for _ in 0..2 {
            let mut ps = vec![("w".to_string(), view("weight", &mut value, &mut grad))];
            sgd.step(&mut ps, 0.1);
        }
        assert!((value[0] - 0.855).abs() < 1e-6, "{}", value[0]);
        assert!((sgd.velocity[0][0] - 0.095).abs() < 1e-6);
    }

    #[test]
    fn weight_decay_only_where_asked() {
        let mut sgd = Sgd::new(0.0, 0.1, 0.0);
        let (mut w, mut gw) = (vec![2.0f32], vec![0.0f32]);
        let (mut b, mut gb) = (vec![2.0f32], vec![0.0f32]);
        let mut ps = vec![
            ("w".into(), view("weight", &mut w, &mut gw)),
            ("b".into(), view("bias", &mut b, &mut gb)),
        ];
        sgd.step(&mut ps, 1.0);
        assert!((w[0] - 1.8).abs() < 1e-6);
        assert_eq!(b[0], 2.0);
    }

    #[test]
    fn max_step_bounds_a_weight_step_by_its_norm() {
        // K = (3, 4), ‖K‖ = 5, g = (10, 0), lr = 1, max_step 0.1: the step 10 is held to 0.5
        // along g, so K = (2.5, 4). A bias with the same gradient takes its whole step.
        let mut sgd = Sgd::new(0.9, 0.0, 0.1);
        let (mut w, mut gw) = (vec![3.0f32, 4.0], vec![10.0f32, 0.0]);
        let (mut b, mut gb) = (vec![3.0f32, 4.0], vec![10.0f32, 0.0]);
        let mut ps = vec![
            ("w".into(), view("weight", &mut w, &mut gw)),
            ("b".into(), view("bias", &mut b, &mut gb)),
        ];
        sgd.step(&mut ps, 1.0);
        assert!((w[0] - 2.5).abs() < 1e-6 && w[1] == 4.0, "{w:?}");
        assert_eq!(b, vec![-7.0, 4.0]);
        assert_eq!(sgd.take_limited(), 1);
        assert_eq!(sgd.take_limited(), 0);
        // a step under the bound (0.1 < 0.1·‖(2.5, 4)‖ = 0.47) is the plain rule, momentum kept
        let (mut gw, mut gb) = (vec![0.1f32, 0.0], vec![0.0f32, 0.0]);
        let mut ps = vec![
            ("w".into(), view("weight", &mut w, &mut gw)),
            ("b".into(), view("bias", &mut b, &mut gb)),
        ];
        sgd.step(&mut ps, 1.0);
        // ΔK = 0.1 + 0.9·0.5 = 0.55
        assert!((w[0] - 1.95).abs() < 1e-6, "{w:?}");
        assert_eq!(sgd.take_limited(), 0);
    }

    #[test]
    fn max_step_counts_weight_decay_in_the_step() {
        // K = 1, g = 0, wd = 1, lr = 1: the decay step 1 is held to 0.25·1
        let mut sgd = Sgd::new(0.0, 1.0, 0.25);
        let (mut w, mut gw) = (vec![1.0f32], vec![0.0f32]);
        let mut ps = vec![("w".into(), view("weight", &mut w, &mut gw))];
        sgd.step(&mut ps, 1.0);
        assert!((w[0] - 0.75).abs() < 1e-6, "{w:?}");
    }
}
