//! Networks as sequences of layers, and what every network can do: forward, backward, the
//! data-dependent initialisation of the digital scales, and access to parameters and buffers by
//! name (for the optimizer and checkpoints).

pub mod geometry;
pub mod lenet5;
pub mod resnet;

use crate::config::ModelKind;
use crate::counters::LayerReport;
use crate::crossbar::CrossbarConfig;
use crate::error::{Error, Result};
use crate::nn::vote::ClassVote;
use crate::nn::{Ctx, Layer, MatrixCore, ParamView};
use crate::quant::BitWidths;
use crate::quant::gradient::{GRounding, GScale};
use crate::quant::output::{CoRange, Comparator, Polarity};
use crate::rng::Rng;
use crate::tensor::Tensor;

pub struct Model {
    pub kind: ModelKind,
    pub layers: Vec<Box<dyn Layer>>,
    /// Input shape per sample: channels, height, width.
    pub input: [usize; 3],
    pub classes: usize,
    /// When `Some`, forward and backward add each layer's wall time (seconds) here, indexed like
    /// `layers`: `[forward, backward]`. Used by `rram bench`.
    pub profile: Option<Vec<[f64; 2]>>,
    /// Index of the first layer with parameters (found on the first backward): nothing before
    /// it needs an error.
    pub first_trainable: Option<usize>,
}

/// How a network departs from its plain form (`RunConfig` keys of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Keep the first and last matrix layers (and the image input) at full precision.
    pub fp32_first_last: bool,
    /// Output columns per class of the last matrix layer, averaged into the logit (`nn::vote`).
    pub logit_columns: usize,
}

impl Variant {
    /// The most output columns per class.
    pub const MAX_LOGIT_COLUMNS: usize = 64;

    pub fn validate(&self) -> Result<()> {
        if (1..=Self::MAX_LOGIT_COLUMNS).contains(&self.logit_columns) {
            Ok(())
        } else {
            Err(Error::invalid(
                "logit_columns",
                format!(
                    "{} must be in 1..={}",
                    self.logit_columns,
                    Self::MAX_LOGIT_COLUMNS
                ),
            ))
        }
    }
}

impl Default for Variant {
    fn default() -> Self {
        Variant {
            fp32_first_last: false,
            logit_columns: 1,
        }
    }
}

impl Model {
    /// Build `kind` at the given bit-widths, in `variant`'s form.
    pub fn build(kind: ModelKind, bits: BitWidths, variant: Variant, rng: &mut Rng) -> Self {
        let k = variant.logit_columns;
        let mut m = match kind {
            ModelKind::Lenet5 | ModelKind::Lenet5Caffe => lenet5::build(kind, bits, k, rng),
            _ => resnet::build(kind, kind.resnet_depth().expect("a resnet"), bits, k, rng),
        };
        if k > 1 {
            m.layers.push(Box::new(ClassVote::new(k)));
        }
        if variant.fp32_first_last {
            m.set_first_last_fp32();
        }
        m
    }

    /// Whether any matrix layer reads through centred comparators (1-bit ADCs), whose references
    /// are re-estimated before each evaluation (`train::trainer`).
    pub fn has_centred_comparators(&mut self) -> bool {
        self.all_matrices().iter().any(|(_, c)| c.centered())
    }

    /// Put every matrix layer on RRAM arrays.
    pub fn attach_crossbar(&mut self, cfg: &CrossbarConfig, seed: u64) {
        for (_, c) in self.all_matrices() {
            c.attach_crossbar(cfg, seed);
        }
    }

    /// Per-layer operation counts (`counters.json`).
    pub fn counters(&mut self) -> Vec<LayerReport> {
        // every matrix, also those inside residual blocks (`s1b1.conv1`, …)
        self.all_matrices()
            .into_iter()
            .map(|(layer, c)| {
                let (arrays, utilisation) = c
                    .xbar
                    .as_ref()
                    .map_or((0, 0.0), |x| (x.arrays(), x.utilisation()));
                LayerReport {
                    layer,
                    rows: c.rows,
                    cols: c.cols,
                    arrays,
                    utilisation,
                    counts: c.counters,
                }
            })
            .collect()
    }

    /// Restore counts saved by `counters` (a resumed run continues them).
    pub fn set_counters(&mut self, saved: &[LayerReport]) {
        for ((_, c), r) in self.all_matrices().into_iter().zip(saved) {
            c.counters = r.counts;
        }
    }

    /// Set the quantizer options of every matrix layer.
    pub fn set_quant_options(
        &mut self,
        co_rule: CoRange,
        g_rounding: GRounding,
        g_scale: GScale,
        comparator: Comparator,
        centre_adc: bool,
        polarity: Polarity,
    ) {
        // LeNet-5's hidden layers feed the activation's clip at 0 directly; a ResNet's convs
        // feed batch-norm, which needs both signs (`quant::output::Polarity`)
        let clip_follows = matches!(self.kind, ModelKind::Lenet5 | ModelKind::Lenet5Caffe);
        let mut all = self.all_matrices();
        let last = all.len().saturating_sub(1);
        for (i, (_, c)) in all.iter_mut().enumerate() {
            c.co_rule = co_rule;
            c.g_rounding = g_rounding;
            c.g_scale = g_scale;
            c.comparator = comparator;
            c.logits = i == last;
            // the logits keep the plain read: no batch-norm follows them
            c.set_centre_adc(centre_adc && i != last);
            c.polarity = if clip_follows && i != last {
                polarity
            } else {
                Polarity::Bipolar
            };
        }
    }

    fn set_first_last_fp32(&mut self) {
        let mut all = self.all_matrices();
        let n = all.len();
        for i in [0, n.saturating_sub(1)] {
            if let Some((_, c)) = all.get_mut(i) {
                c.bits = BitWidths::FP32;
            }
        }
    }

    /// Every matrix core of the network, in order, with its name.
    pub fn all_matrices(&mut self) -> Vec<(String, &mut MatrixCore)> {
        self.layers.iter_mut().flat_map(|l| l.matrices()).collect()
    }

    /// # Shapes
    /// `[c, n, h, w]` → logits `[classes, n]`.
    pub fn forward(&mut self, mut x: Tensor, ctx: &Ctx) -> Tensor {
        for (i, l) in self.layers.iter_mut().enumerate() {
            let t = self.profile.as_ref().map(|_| std::time::Instant::now());
            x = l.forward(x, ctx);
            if let (Some(p), Some(t)) = (self.profile.as_mut(), t) {
                p[i][0] += t.elapsed().as_secs_f64();
            }
        }
        x
    }

    /// Backward from dJ/d(logits); stops after the first layer that has parameters (nothing
    /// before it needs an error).
    pub fn backward(&mut self, mut dy: Tensor, ctx: &Ctx) {
        let layers = &mut self.layers;
        let first = *self.first_trainable.get_or_insert_with(|| {
            layers
                .iter_mut()
                .position(|l| !l.params().is_empty())
                .unwrap_or(0)
        });
        for (i, l) in self.layers.iter_mut().enumerate().skip(first).rev() {
            let t = self.profile.as_ref().map(|_| std::time::Instant::now());
            dy = l.backward(dy, ctx);
            if let (Some(p), Some(t)) = (self.profile.as_mut(), t) {
                p[i][1] += t.elapsed().as_secs_f64();
            }
        }
    }

    /// Data-dependent initialisation: walk the layers in order on a batch and set each matrix
    /// layer's α so that its output has standard deviation `target`.
    pub fn calibrate(&mut self, mut x: Tensor, target: f32, seed: u64) {
        let ctx = Ctx::calibration(seed);
        for l in &mut self.layers {
            if let Some(core) = l.matrix() {
                core.set_alpha(1.0);
            }
            let mut y = l.forward(x, &ctx);
            if let Some(core) = l.matrix() {
                let n = y.len().max(1) as f64;
                let mean = y.data.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = y
                    .data
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let std = var.sqrt() as f32;
                if std > 0.0 && std.is_finite() {
                    let alpha = target / std;
                    // bias is zero at initialisation, so y scales with α (about the offset 0.5
                    // that a centred comparator's reads sit on)
                    let offset = if core.centered() { 0.5 } else { 0.0 };
                    core.set_alpha(alpha);
                    y.data
                        .iter_mut()
                        .for_each(|v| *v = (*v - offset) * alpha + offset);
                }
            }
            x = y;
        }
    }

    /// Every trainable parameter with its checkpoint name `<layer>.<param>`.
    pub fn params(&mut self) -> Vec<(String, ParamView<'_>)> {
        let mut out = Vec::new();
        for l in &mut self.layers {
            let lname = l.name().to_string();
            for p in l.params() {
                out.push((format!("{lname}.{}", p.name), p));
            }
        }
        out
    }

    /// Every buffer (non-trained state) with its checkpoint name.
    pub fn buffers(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        let mut out = Vec::new();
        for l in &mut self.layers {
            let lname = l.name().to_string();
            for (b, v) in l.buffers() {
                out.push((format!("{lname}.{b}"), v));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polarities(kind: ModelKind, polarity: Polarity) -> Vec<Polarity> {
        let mut m = Model::build(
            kind,
            BitWidths::uniform(2),
            Variant::default(),
            &mut Rng::new(1),
        );
        m.set_quant_options(
            CoRange::Auto,
            GRounding::MidTread,
            GScale::Sample,
            Comparator::Centered,
            false,
            polarity,
        );
        m.all_matrices()
            .into_iter()
            .map(|(_, c)| c.co_polarity())
            .collect()
    }

    #[test]
    fn only_layers_that_feed_the_clip_read_unipolar() {
        use Polarity::{Bipolar, Unipolar};
        // LeNet-5: every hidden layer, not the logits
        assert_eq!(
            polarities(ModelKind::Lenet5, Unipolar),
            [Unipolar, Unipolar, Unipolar, Unipolar, Bipolar]
        );
        assert_eq!(
            polarities(ModelKind::Lenet5Caffe, Unipolar),
            [Unipolar, Unipolar, Unipolar, Bipolar]
        );
        assert!(
            polarities(ModelKind::Lenet5, Bipolar)
                .iter()
                .all(|&p| p == Bipolar)
        );
        // a ResNet's convs feed batch-norm
        let r = polarities(ModelKind::Resnet20, Unipolar);
        assert_eq!(r.len(), 20);
        assert!(r.iter().all(|&p| p == Bipolar));
    }
}
