//! An exponential moving average of a model's state (Polyak averaging, as timm's `ModelEma`):
//! after every step `avg = d·avg + (1 − d)·value` for every parameter and every buffer (BN's
//! running statistics with them, so the averaged weights meet statistics of their own time).
//! Evaluation swaps the average into the model and back; checkpoints carry it as `ema.<name>`.

use crate::models::Model;

pub struct Ema {
    decay: f32,
    /// The averages, in `Model::params` then `Model::buffers` order, with their names.
    state: Vec<(String, Vec<f32>)>,
}

/// Runs `f` on every averaged tensor of `model` with its name, in a fixed order: the
/// parameters, then the buffers.
fn for_each_tensor(model: &mut Model, mut f: impl FnMut(usize, String, &mut Vec<f32>)) {
    let mut i = 0;
    for (name, p) in model.params() {
        f(i, name, p.value);
        i += 1;
    }
    for (name, b) in model.buffers() {
        f(i, name, b);
        i += 1;
    }
}

impl Ema {
    /// An average that starts at the model's present state.
    pub fn new(decay: f32, model: &mut Model) -> Self {
        let mut state = Vec::new();
        for_each_tensor(model, |_, name, v| state.push((name, v.clone())));
        Ema { decay, state }
    }

    /// Folds the model's state after a step into the average.
    pub fn update(&mut self, model: &mut Model) {
        let (d, state) = (self.decay, &mut self.state);
        for_each_tensor(model, |i, _, v| {
            state[i]
                .1
                .iter_mut()
                .zip(v.iter())
                .for_each(|(a, &x)| *a = d * *a + (1.0 - d) * x)
        });
    }

    /// Runs `f` on the model holding the average instead of its own state (restored after).
    pub fn with_average<R>(&mut self, model: &mut Model, f: impl FnOnce(&mut Model) -> R) -> R {
        let swap = |state: &mut Vec<(String, Vec<f32>)>, model: &mut Model| {
            for_each_tensor(model, |i, _, v| std::mem::swap(&mut state[i].1, v));
        };
        swap(&mut self.state, model);
        let out = f(model);
        swap(&mut self.state, model);
        out
    }

    /// The averages with their checkpoint names (`ema.<name>`).
    pub fn named(&self) -> impl Iterator<Item = (String, &Vec<f32>)> {
        self.state.iter().map(|(n, v)| (format!("ema.{n}"), v))
    }

    /// The averages to fill from a checkpoint, with their checkpoint names.
    pub fn named_mut(&mut self) -> impl Iterator<Item = (String, &mut Vec<f32>)> {
        self.state.iter_mut().map(|(n, v)| (format!("ema.{n}"), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelKind, RunConfig};
    use crate::crossbar::Hardware;
    use crate::data::Dataset;
    use crate::quant::BitWidths;

    fn small_model() -> Model {
        let cfg = RunConfig {
            hardware: Hardware::Ideal,
            bits: BitWidths::FP32,
            threads: 1,
            ..RunConfig::defaults_for(ModelKind::Lenet5)
        };
        let ds = Dataset {
            images: vec![0.5; 4 * 28 * 28],
            labels: vec![0, 1, 2, 3],
            c: 1,
            h: 28,
            w: 28,
        };
        crate::train::trainer::init_model(&cfg, &ds)
    }

    #[test]
    fn average_follows_the_rule_and_swaps_back() {
        let mut model = small_model();
        let snapshot = |m: &mut Model| {
            let mut out: Vec<Vec<f32>> = Vec::new();
            for_each_tensor(m, |_, _, v| out.push(v.clone()));
            out
        };
        let start = snapshot(&mut model);
        let mut ema = Ema::new(0.75, &mut model);
        // two "steps": every value moves by +1, then by +2
        for delta in [1.0f32, 2.0] {
            for_each_tensor(&mut model, |_, _, v| v.iter_mut().for_each(|x| *x += delta));
            ema.update(&mut model);
        }
        let now = snapshot(&mut model);
        let seen = ema.with_average(&mut model, snapshot);
        for ((s, a), n) in start.iter().zip(&seen).zip(&now) {
            for ((&s, &a), &n) in s.iter().zip(a).zip(n) {
                // avg1 = .75·s + .25·(s+1); avg2 = .75·avg1 + .25·((s+1)+2)
                let avg1 = 0.75 * s + 0.25 * (s + 1.0);
                assert_eq!(n, (s + 1.0) + 2.0);
                assert_eq!(a, 0.75 * avg1 + 0.25 * n);
            }
        }
        // the model holds its own state again
        assert_eq!(snapshot(&mut model), now);
        assert!(ema.named().all(|(n, _)| n.starts_with("ema.")));
        assert_eq!(ema.named().count(), now.len());
    }
}
