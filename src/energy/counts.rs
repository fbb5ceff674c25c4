//! Operation counts computed from a network's geometry, by the same rules `crossbar::array` and
//! `nn::engine` count with (ARCHITECTURE.md, "Counting rules"), for one training step of a full
//! batch. Cell writes depend on how training moves the weights, so the analytic count assumes a
//! fraction of cells rewritten per step (`write_fraction`); measured counters replace it.

use crate::config::RunConfig;
use crate::counters::{CountersReport, LayerCounters, LayerReport};
use crate::crossbar::{AdcMode, CrossbarConfig, Hardware};
use crate::models::geometry::MatrixGeom;
use crate::quant::output::Comparator;
use crate::quant::{BitWidths, Bits};

/// Which layers' backward goes through the batch mean of a centred read
/// (`RunConfig::centred_backward`, `nn::engine::MatrixCore::weight_errors`): those with a 1-bit
/// comparator, and with `multi_bit` those with a centred multi-bit ADC (`centre_adc`; not the
/// logits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CentredBackward {
    pub comparators: bool,
    pub multi_bit: bool,
}

impl CentredBackward {
    /// The layers a run's config centres in backward.
    pub fn of(cfg: &RunConfig) -> Self {
        CentredBackward {
            comparators: cfg.centred_backward && cfg.comparator == Comparator::Centered,
            multi_bit: cfg.centred_backward && cfg.centre_adc,
        }
    }
}

/// Counts of one training step of `batch` images.
pub fn analytic(
    geoms: &[MatrixGeom],
    bits: BitWidths,
    hardware: Hardware,
    xbar: &CrossbarConfig,
    centred: CentredBackward,
    batch: usize,
    write_fraction: f64,
) -> CountersReport {
    let last = geoms.len().saturating_sub(1);
    let layers = geoms
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let bits = if g.fp32 { BitWidths::FP32 } else { bits };
            let backward_adc = xbar.backward_bits(bits.co);
            let (rows, cols) = (g.rows as u64, g.cols as u64);
            let p = (g.positions * batch) as u64;
            let mut c = LayerCounters::default();
            c.forward.digital_ops += 2 * cols * p;
            c.update.digital_ops += 8 * rows * cols;
            c.backprop2.digital_macs += rows * cols * p;
            c.backprop2.digital_ops += rows * cols;
            c.backprop1.digital_ops += cols * p;
            let centred_read = match bits.co {
                Bits::K(1) => centred.comparators,
                Bits::K(_) => centred.multi_bit && i != last,
                Bits::Fp32 => false,
            };
            if centred_read {
                // ḡ per column, taken out of the weight gradient's errors (part 2)
                c.backprop2.digital_ops += cols * (p + 1);
            }
            let (mut arrays, mut utilisation) = (0, 0.0);
            match hardware {
                Hardware::Ideal => {
                    c.forward.digital_macs += rows * cols * p;
                    if g.input_grad {
                        c.backprop1.digital_macs += rows * cols * p;
                    }
                }
                Hardware::Rram => {
                    let nrb = g.rows.div_ceil(xbar.tile_rows) as u64;
                    let ncb = g.cols.div_ceil(xbar.tile_cols) as u64;
                    arrays = (nrb * ncb) as usize;
                    utilisation = (g.rows * g.cols) as f64
                        / (arrays * xbar.tile_rows * xbar.tile_cols) as f64;
                    let f = &mut c.forward;
                    f.dac_bits = bits.a.as_u32();
                    f.adc_bits = bits.co.as_u32();
                    f.dac_conversions += rows * ncb * p;
                    f.adc_conversions += match xbar.adc {
                        AdcMode::PerTile => cols * nrb * p,
                        AdcMode::FullSum => cols * p,
                    };
                    f.cell_reads += 2 * rows * cols * p;
                    if xbar.adc == AdcMode::PerTile {
                        f.digital_ops += (nrb - 1) * cols * p;
                    }
                    if g.input_grad {
                        let phases = xbar.signed_input.phases(bits.g);
                        let reads = xbar.signed_input.conversions(bits.g);
                        let b = &mut c.backprop1;
                        b.dac_bits = bits.g.as_u32();
                        b.adc_bits = backward_adc.as_u32();
                        b.dac_conversions += cols * nrb * p * phases;
                        b.adc_conversions += rows * ncb * p * reads;
                        b.cell_reads += 2 * rows * cols * p * phases;
                        b.digital_ops += rows * p * (reads * ncb - 1);
                    }
                    c.update.cell_writes +=
                        (write_fraction * (2 * rows * cols) as f64).round() as u64;
                }
            }
            LayerReport {
                layer: g.name.clone(),
                rows: g.rows,
                cols: g.cols,
                arrays,
                utilisation,
                counts: c,
            }
        })
        .collect();
    CountersReport {
        hardware: hardware.as_str().to_string(),
        images: batch as u64,
        steps: 1,
        layers,
    }
}
