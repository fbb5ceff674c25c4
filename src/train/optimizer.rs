//! SGD with momentum in the paper's form, `ΔK = lr·(∂J/∂K + wd·K) + m·ΔK_last`, `K ← K − ΔK`.
//! The velocity `ΔK` is the optimizer's whole state, kept per parameter in model order, so a
//! checkpoint stores it and a resumed run continues exactly.

use crate::nn::ParamView;

pub struct Sgd {
    pub momentum: f32,
    pub weight_decay: f32,
    /// ΔK_last per parameter, in the order `Model::params` lists them.
    pub velocity: Vec<Vec<f32>>,
}

impl Sgd {
    pub fn new(momentum: f32, weight_decay: f32) -> Self {
        Sgd {
            momentum,
            weight_decay,
            velocity: Vec::new(),
        }
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

    #[test]
    fn momentum_rule_by_hand() {
        // K = 1, g = 0.5, lr = 0.1, m = 0.9, wd = 0.
        // step 1: ΔK = 0.05, K = 0.95; step 2 (g = 0.5): ΔK = 0.05 + 0.045 = 0.095, K = 0.855.
        let mut sgd = Sgd::new(0.9, 0.0);
        let mut value = vec![1.0f32];
        let mut grad = vec![0.5f32];
        for _ in 0..2 {
            let mut ps = vec![(
                "w".to_string(),
                ParamView {
                    name: "weight".into(),
                    value: &mut value,
                    grad: &mut grad,
                    decay: true,
                },
            )];
            sgd.step(&mut ps, 0.1);
        }
        assert!((value[0] - 0.855).abs() < 1e-6, "{}", value[0]);
        assert!((sgd.velocity[0][0] - 0.095).abs() < 1e-6);
    }

    #[test]
    fn weight_decay_only_where_asked() {
        let mut sgd = Sgd::new(0.0, 0.1);
        let (mut w, mut gw) = (vec![2.0f32], vec![0.0f32]);
        let (mut b, mut gb) = (vec![2.0f32], vec![0.0f32]);
        let mut ps = vec![
            (
                "w".into(),
                ParamView {
                    name: "weight".into(),
                    value: &mut w,
                    grad: &mut gw,
                    decay: true,
                },
            ),
            (
                "b".into(),
                ParamView {
                    name: "bias".into(),
                    value: &mut b,
                    grad: &mut gb,
                    decay: false,
                },
            ),
        ];
        sgd.step(&mut ps, 1.0);
        assert!((w[0] - 1.8).abs() < 1e-6);
        assert_eq!(b[0], 2.0);
    }
}
