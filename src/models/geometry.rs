//! The matrix layers of each network as the crossbar sees them — rows (k·k·c_in or in), columns
//! (c_out or out), output positions per image, and whether the layer propagates an error to its
//! input — without building or training the network. The energy estimator counts from this;
//! `tests/energy.rs` checks it against the built models' measured counters.

use super::Variant;
use crate::error::{Error, Result};

/// One matrix layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixGeom {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// Output positions per image (h_out·w_out; 1 for FC).
    pub positions: usize,
    /// Whether backprop part 1 runs for this layer (false for the first layer).
    pub input_grad: bool,
    /// Whether the layer runs at fp32 whatever the run's bits (`--fp32-first-last`).
    pub fp32: bool,
}

impl MatrixGeom {
    /// Forward multiply-accumulates per image.
    pub fn macs(&self) -> u64 {
        (self.rows * self.cols * self.positions) as u64
    }
}

fn conv(name: &str, c_in: usize, c_out: usize, k: usize, side_out: usize) -> MatrixGeom {
    MatrixGeom {
        name: name.into(),
        rows: c_in * k * k,
        cols: c_out,
        positions: side_out * side_out,
        input_grad: true,
        fp32: false,
    }
}

fn fc(name: &str, d_in: usize, d_out: usize) -> MatrixGeom {
    MatrixGeom {
        name: name.into(),
        rows: d_in,
        cols: d_out,
        positions: 1,
        input_grad: true,
        fp32: false,
    }
}

/// Known networks: `lenet5`, `lenet5-caffe`, `resnet20`, `resnet32`, `resnet44`, `resnet56`.
pub const NAMES: &str = "lenet5, lenet5-caffe, resnet20, resnet32, resnet44, resnet56";

/// The matrix layers of network `name`.
pub fn matrices(name: &str) -> Result<Vec<MatrixGeom>> {
    let mut v = match name {
        // 28×28 input, conv1 pads by 2 (= the 32×32 of the original).
        "lenet5" => vec![
            conv("conv1", 1, 6, 5, 28),
            conv("conv2", 6, 16, 5, 10),
            fc("fc1", 400, 120),
            fc("fc2", 120, 84),
            fc("fc3", 84, 10),
        ],
        "lenet5-caffe" => vec![
            conv("conv1", 1, 20, 5, 24),
            conv("conv2", 20, 50, 5, 8),
            fc("fc1", 800, 500),
            fc("fc2", 500, 10),
        ],
        _ => match name
            .strip_prefix("resnet")
            .and_then(|d| d.parse::<usize>().ok())
        {
            Some(depth) if depth >= 8 && (depth - 2) % 6 == 0 => resnet(depth),
            _ => {
                return Err(Error::invalid(
                    "model",
                    format!("unknown model {name:?} (known: {NAMES})"),
                ));
            }
        },
    };
    v[0].input_grad = false;
    Ok(v)
}

/// The matrix layers of network `name` in `variant`'s form (`models::Variant`): the last layer
/// with `logit_columns` outputs per class, the first and last at fp32 if asked.
pub fn of_variant(name: &str, variant: Variant) -> Result<Vec<MatrixGeom>> {
    variant.validate()?;
    let mut v = matrices(name)?;
    let n = v.len();
    v[n - 1].cols *= variant.logit_columns;
    if variant.fp32_first_last {
        v[0].fp32 = true;
        v[n - 1].fp32 = true;
    }
    Ok(v)
}

/// ResNet for CIFAR (He et al. 2016): 3×3 conv 16, then 3 stages of n basic blocks with 16, 32,
/// 64 channels (the first conv of stages 2 and 3 has stride 2), option-A shortcuts (no weights),
/// global average pooling, FC 64 → 10. Depth = 6n + 2.
fn resnet(depth: usize) -> Vec<MatrixGeom> {
    let n = (depth - 2) / 6;
    let mut v = vec![conv("conv1", 3, 16, 3, 32)];
    let mut c_in = 16;
    for (s, (c, side)) in [(16, 32), (32, 16), (64, 8)].into_iter().enumerate() {
        for b in 0..n {
            v.push(conv(&format!("s{}b{}c1", s + 1, b + 1), c_in, c, 3, side));
            v.push(conv(&format!("s{}b{}c2", s + 1, b + 1), c, c, 3, side));
            c_in = c;
        }
    }
    v.push(fc("fc", 64, 10));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_macs_by_hand() {
        // LeNet-5: 117,600 + 240,000 + 48,000 + 10,080 + 840.
        let l: u64 = matrices("lenet5")
            .unwrap()
            .iter()
            .map(MatrixGeom::macs)
            .sum();
        assert_eq!(l, 416_520);
        // Caffe LeNet: 288,000 + 1,600,000 + 400,000 + 5,000.
        let c: u64 = matrices("lenet5-caffe")
            .unwrap()
            .iter()
            .map(MatrixGeom::macs)
            .sum();
        assert_eq!(c, 2_293_000);
        // ResNet-20 option A: 442,368 + 16 × 2,359,296 + 2 × 1,179,648 + 640.
        let r = matrices("resnet20").unwrap();
        assert_eq!(r.len(), 20);
        assert_eq!(r.iter().map(MatrixGeom::macs).sum::<u64>(), 40_551_040);
        assert_eq!(matrices("resnet56").unwrap().len(), 56);
        assert!(matrices("resnet21").is_err());
        assert!(matrices("vgg").is_err());
    }
}
