//! Softmax cross-entropy on logits `[classes, n]`: the mean loss over the batch, its gradient
//! dJ/d(logits) (already divided by n), and the number of correct predictions; optionally
//! against label-smoothed targets. Evaluation can average the class probabilities of several
//! views of each image (`mean_probabilities`, `probability_loss`).

use crate::tensor::Tensor;

pub struct LossOutput {
    pub loss: f32,
    pub grad: Tensor,
    pub correct: usize,
}

/// Index of the largest logit of sample `i` (first one on ties).
fn argmax(logits: &Tensor, i: usize) -> usize {
    let (k, n) = (logits.dim(0), logits.dim(1));
    let mut best = 0;
    for c in 1..k {
        if logits.data[c * n + i] > logits.data[best * n + i] {
            best = c;
        }
    }
    best
}

/// Sample `i`'s largest logit and Σ_c exp(z_c − max): its softmax without overflow.
fn max_and_exp_sum(logits: &Tensor, i: usize) -> (f32, f64) {
    let (k, n) = (logits.dim(0), logits.dim(1));
    let max = (0..k)
        .map(|c| logits.data[c * n + i])
        .fold(f32::NEG_INFINITY, f32::max);
    let sum = (0..k)
        .map(|c| ((logits.data[c * n + i] - max) as f64).exp())
        .sum();
    (max, sum)
}

/// Correct predictions without computing the loss (evaluation).
pub fn count_correct(logits: &Tensor, labels: &[u8]) -> usize {
    (0..logits.dim(1))
        .filter(|&i| argmax(logits, i) == labels[i] as usize)
        .count()
}

pub fn softmax_cross_entropy(logits: &Tensor, labels: &[u8]) -> LossOutput {
    smoothed_cross_entropy(logits, labels, 0.0)
}

/// Cross-entropy against the target `(1 − ε)·onehot(y) + ε/K` (label smoothing, Szegedy et al.
/// 2016): the loss stops rewarding ever larger logit gaps, which keeps a small network that
/// fits its training set from growing over-confident. ε = 0 is the plain loss.
pub fn smoothed_cross_entropy(logits: &Tensor, labels: &[u8], eps: f32) -> LossOutput {
    let (k, n) = (logits.dim(0), logits.dim(1));
    assert_eq!(labels.len(), n);
    let (eps, off) = (eps as f64, eps as f64 / k as f64);
    let mut grad = vec![0.0; k * n];
    let mut loss = 0f64;
    let mut correct = 0;
    for i in 0..n {
        let (max, sum) = max_and_exp_sum(logits, i);
        let y = labels[i] as usize;
        let target = |c: usize| off + if c == y { 1.0 - eps } else { 0.0 };
        // −Σ t_c·ln p_c with Σ t_c = 1 is ln Σ exp − Σ t_c·(z_c − max); the plain loss keeps
        // its one term
        let zy = (logits.data[y * n + i] - max) as f64;
        loss += sum.ln() - zy;
        if eps > 0.0 {
            let all: f64 = (0..k).map(|c| (logits.data[c * n + i] - max) as f64).sum();
            loss += eps * zy - off * all;
        }
        for c in 0..k {
            let p = ((logits.data[c * n + i] - max) as f64).exp() / sum;
            grad[c * n + i] = ((p - target(c)) / n as f64) as f32;
        }
        if argmax(logits, i) == y {
            correct += 1;
        }
    }
    LossOutput {
        loss: (loss / n as f64) as f32,
        grad: Tensor::new(vec![k, n], grad),
        correct,
    }
}

/// Softmax of each sample's logits (`[classes, n]` → the same shape).
pub fn softmax(logits: &Tensor) -> Tensor {
    let (k, n) = (logits.dim(0), logits.dim(1));
    let mut p = vec![0.0; k * n];
    for i in 0..n {
        let (max, sum) = max_and_exp_sum(logits, i);
        for c in 0..k {
            p[c * n + i] = (((logits.data[c * n + i] - max) as f64).exp() / sum) as f32;
        }
    }
    Tensor::new(vec![k, n], p)
}

/// The element-wise mean of several views' class probabilities (test-time augmentation).
pub fn mean_probabilities(views: &[Tensor]) -> Tensor {
    let mut mean = views[0].clone();
    for v in &views[1..] {
        mean.data.iter_mut().zip(&v.data).for_each(|(m, x)| *m += x);
    }
    let scale = 1.0 / views.len() as f32;
    mean.data.iter_mut().for_each(|m| *m *= scale);
    mean
}

/// Mean negative log-probability of the labels and the number of correct predictions, from
/// class probabilities `[classes, n]`.
pub fn probability_loss(probs: &Tensor, labels: &[u8]) -> (f32, usize) {
    let n = probs.dim(1);
    let loss: f64 = (0..n)
        .map(|i| -(probs.data[labels[i] as usize * n + i].max(f32::MIN_POSITIVE) as f64).ln())
        .sum();
    (
        (loss / n.max(1) as f64) as f32,
        count_correct(probs, labels),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothed_loss_by_hand() {
        // two classes, logits (0, 0): p = (1/2, 1/2); ε = 0.2 → targets (0.9, 0.1) for y = 0
        let z = Tensor::new(vec![2, 1], vec![0.0, 0.0]);
        let out = smoothed_cross_entropy(&z, &[0], 0.2);
        assert!((out.loss - 2f32.ln()).abs() < 1e-6);
        assert!((out.grad.data[0] - (0.5 - 0.9)).abs() < 1e-6);
        assert!((out.grad.data[1] - (0.5 - 0.1)).abs() < 1e-6);
        // logits (ln 3, 0): p = (3/4, 1/4); loss = −0.9·ln 0.75 − 0.1·ln 0.25
        let z = Tensor::new(vec![2, 1], vec![3f32.ln(), 0.0]);
        let want = -0.9 * 0.75f64.ln() - 0.1 * 0.25f64.ln();
        assert!((smoothed_cross_entropy(&z, &[0], 0.2).loss as f64 - want).abs() < 1e-6);
        // ε = 0 is the plain loss, bit for bit
        let plain = softmax_cross_entropy(&z, &[1]);
        let zero = smoothed_cross_entropy(&z, &[1], 0.0);
        assert_eq!((plain.loss, plain.grad.data), (zero.loss, zero.grad.data));
    }

    #[test]
    fn averaged_views_by_hand() {
        // sample 0: view one says class 0 (p 3/4), view two class 1 (p 0.9 after softmax of ln 9)
        let a = softmax(&Tensor::new(vec![2, 1], vec![3f32.ln(), 0.0]));
        let b = softmax(&Tensor::new(vec![2, 1], vec![0.0, 9f32.ln()]));
        assert!((a.data[0] - 0.75).abs() < 1e-6 && (b.data[1] - 0.9).abs() < 1e-6);
        let m = mean_probabilities(&[a, b]);
        assert!((m.data[0] - 0.425).abs() < 1e-6 && (m.data[1] - 0.575).abs() < 1e-6);
        let (loss, correct) = probability_loss(&m, &[1]);
        assert!((loss - -(0.575f32.ln())).abs() < 1e-6);
        assert_eq!(correct, 1);
        assert_eq!(probability_loss(&m, &[0]).1, 0);
    }
}
