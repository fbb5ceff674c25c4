//! `ClassVote`: each class's logit is the mean of `k` output columns of the last matrix layer
//! (`[classes·k, n]` → `[classes, n]`, columns `c·k .. c·k + k` for class `c`). A low-bit ADC
//! gives each column few levels — a 2-bit (ternary) read three, a comparator two — so with one
//! column per class the softmax sees each class at one of those few values; `k` columns, each
//! with its own weights, bias and ADC, give `k·(levels − 1) + 1`. The mean is digital ("others"):
//! `k` operations per logit. `k = 1` is the identity.

use super::{Ctx, Layer};
use crate::tensor::Tensor;

pub struct ClassVote {
    k: usize,
}

impl ClassVote {
    pub fn new(k: usize) -> Self {
        assert!(k >= 1, "a class needs at least one column");
        ClassVote { k }
    }
}

impl Layer for ClassVote {
    fn name(&self) -> &str {
        "vote"
    }

    fn forward(&mut self, x: Tensor, _ctx: &Ctx) -> Tensor {
        let (f, n) = (x.dim(0), x.dim(1));
        assert_eq!(f % self.k, 0, "vote input is not a multiple of k columns");
        if self.k == 1 {
            return x;
        }
        let classes = f / self.k;
        let inv = 1.0 / self.k as f32;
        let mut y = vec![0.0; classes * n];
        for (c, out) in y.chunks_mut(n).enumerate() {
            for col in x.data[c * self.k * n..(c + 1) * self.k * n].chunks(n) {
                out.iter_mut().zip(col).for_each(|(o, v)| *o += v);
            }
            out.iter_mut().for_each(|o| *o *= inv);
        }
        Tensor::new(vec![classes, n], y)
    }

    fn backward(&mut self, dy: Tensor, _ctx: &Ctx) -> Tensor {
        if self.k == 1 {
            return dy;
        }
        let (classes, n) = (dy.dim(0), dy.dim(1));
        let inv = 1.0 / self.k as f32;
        let mut dx = Vec::with_capacity(classes * self.k * n);
        for d in dy.data.chunks(n) {
            for _ in 0..self.k {
                dx.extend(d.iter().map(|v| v * inv));
            }
        }
        Tensor::new(vec![classes * self.k, n], dx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_hand_values_and_gradient() {
        // 2 classes × 3 columns, 2 samples: class 0 columns (1,2), (3,4), (5,-6); class 1 ±1s
        let x = Tensor::new(
            vec![6, 2],
            vec![
                1.0, 2.0, 3.0, 4.0, 5.0, -6.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0,
            ],
        );
        let mut v = ClassVote::new(3);
        let y = v.forward(x, &Ctx::eval(0));
        assert_eq!(y.shape, vec![2, 2]);
        assert_eq!(y.data, vec![3.0, 0.0, 1.0 / 3.0, -1.0 / 3.0]);
        let dx = v.backward(
            Tensor::new(vec![2, 2], vec![3.0, 6.0, -3.0, 0.0]),
            &Ctx::eval(0),
        );
        assert_eq!(dx.shape, vec![6, 2]);
        assert_eq!(
            dx.data,
            vec![
                1.0, 2.0, 1.0, 2.0, 1.0, 2.0, -1.0, 0.0, -1.0, 0.0, -1.0, 0.0
            ]
        );
        // k = 1 passes through
        let mut one = ClassVote::new(1);
        let t = Tensor::new(vec![2, 1], vec![0.5, -0.5]);
        assert_eq!(one.forward(t.clone(), &Ctx::eval(0)).data, t.data);
    }
}
