//! Softmax cross-entropy on logits `[classes, n]`: the mean loss over the batch, its gradient
//! dJ/d(logits) (already divided by n), and the number of correct predictions.

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

/// Correct predictions without computing the loss (evaluation).
pub fn count_correct(logits: &Tensor, labels: &[u8]) -> usize {
    (0..logits.dim(1))
        .filter(|&i| argmax(logits, i) == labels[i] as usize)
        .count()
}

pub fn softmax_cross_entropy(logits: &Tensor, labels: &[u8]) -> LossOutput {
    let (k, n) = (logits.dim(0), logits.dim(1));
    assert_eq!(labels.len(), n);
    let mut grad = vec![0.0; k * n];
    let mut loss = 0f64;
    let mut correct = 0;
    for i in 0..n {
        let max = (0..k)
            .map(|c| logits.data[c * n + i])
            .fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = (0..k)
            .map(|c| ((logits.data[c * n + i] - max) as f64).exp())
            .sum();
        let y = labels[i] as usize;
        loss += sum.ln() - (logits.data[y * n + i] - max) as f64;
        for c in 0..k {
            let p = ((logits.data[c * n + i] - max) as f64).exp() / sum;
            grad[c * n + i] = ((p - (c == y) as u8 as f64) / n as f64) as f32;
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
