//! Shared test helpers: a finite-difference gradient check for any `Layer`, random tensors, and
//! a command for the real binary in a scratch folder.
#![allow(dead_code)]

use rram::nn::{Ctx, Layer};
use rram::rng::Rng;
use rram::tensor::Tensor;

pub fn random_tensor(shape: Vec<usize>, rng: &mut Rng, lo: f32, hi: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.uniform_in(lo, hi)).collect())
}

/// A DAC input: values on the `steps + 1` levels `i/steps` of [0, 1] (an A-bit activation for
/// `steps = 2^A − 1`), drawn uniformly.
pub fn dac_tensor(shape: Vec<usize>, rng: &mut Rng, steps: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(
        shape,
        (0..n)
            .map(|_| (rng.uniform() * steps).round() / steps)
            .collect(),
    )
}

pub const TRAIN: Ctx = Ctx::train(0, 1);

/// J(x) = Σ r ⊙ layer(x) for a fixed random r, computed in f64.
fn objective(layer: &mut dyn Layer, x: &Tensor, r: &[f32]) -> f64 {
    let y = layer.forward(x.clone(), &TRAIN);
    y.data
        .iter()
        .zip(r)
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum()
}

/// Compare a layer's analytic gradients (input and every parameter) with central finite
/// differences of J(x) = Σ r ⊙ y. `eps` is the step; `tol` the allowed error relative to the
/// largest gradient magnitude. Checks at most `probes` coordinates of each tensor.
pub fn gradcheck(layer: &mut dyn Layer, x: &Tensor, eps: f32, tol: f64, probes: usize) {
    gradcheck_with_kinks(layer, x, eps, tol, probes, 0.0);
}

/// As `gradcheck`, for compositions with ReLUs inside (a residual block): a probe whose ±eps step
/// crosses a ReLU kink sees the average of two slopes, so up to `kink_fraction` of the probes of
/// each tensor may disagree; the rest must match.
pub fn gradcheck_with_kinks(
    layer: &mut dyn Layer,
    x: &Tensor,
    eps: f32,
    tol: f64,
    probes: usize,
    kink_fraction: f64,
) {
    let mut rng = Rng::new(99);
    let y = layer.forward(x.clone(), &TRAIN);
    let r: Vec<f32> = (0..y.len()).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let dx = layer.backward(Tensor::new(y.shape.clone(), r.clone()), &TRAIN);
    let grads: Vec<Vec<f32>> = layer.params().iter().map(|p| p.grad.clone()).collect();

    let check = |name: &str, analytic: &[f32], numeric: &dyn Fn(usize) -> f64| {
        // floor: a gradient that is zero in theory (a scale before BN) reads as f32 noise
        let scale = analytic.iter().fold(1e-2f64, |m, v| m.max(v.abs() as f64));
        let step = (analytic.len() / probes).max(1);
        let (mut bad, mut total, mut first) = (0usize, 0usize, String::new());
        for i in (0..analytic.len()).step_by(step) {
            let num = numeric(i);
            let err = (num - analytic[i] as f64).abs() / scale;
            total += 1;
            // 1e-3 absolute: the f32 rounding of J divided by 2·eps
            if err >= tol && (num - analytic[i] as f64).abs() >= 1e-3 {
                bad += 1;
                if first.is_empty() {
                    first = format!(
                        "{name}[{i}]: analytic {} vs numeric {num} (rel err {err:.2e})",
                        analytic[i]
                    );
                }
            }
        }
        assert!(
            bad as f64 <= kink_fraction * total as f64,
            "{bad} of {total} probes disagree; first: {first}"
        );
    };

    if !dx.is_empty() {
        let lc = std::cell::RefCell::new(&mut *layer);
        check("input", &dx.data, &|i| {
            let mut l = lc.borrow_mut();
            let mut xp = x.clone();
            xp.data[i] += eps;
            let jp = objective(&mut **l, &xp, &r);
            xp.data[i] -= 2.0 * eps;
            let jm = objective(&mut **l, &xp, &r);
            (jp - jm) / (2.0 * eps as f64)
        });
    }
    for (pi, g) in grads.iter().enumerate() {
        let lc = std::cell::RefCell::new(&mut *layer);
        check(&format!("param{pi}"), g, &|i| {
            let mut l = lc.borrow_mut();
            let orig = l.params()[pi].value[i];
            l.params()[pi].value[i] = orig + eps;
            let jp = objective(&mut **l, x, &r);
            l.params()[pi].value[i] = orig - eps;
            let jm = objective(&mut **l, x, &r);
            l.params()[pi].value[i] = orig;
            (jp - jm) / (2.0 * eps as f64)
        });
    }
}

/// The real binary.
pub fn rram() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_rram"))
}

/// Run the binary with `args`; fail the test, showing its stderr, unless it exits 0.
pub fn run_ok(args: &[&str]) -> std::process::Output {
    let out = rram().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rram {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
