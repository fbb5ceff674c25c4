//! Operation counters per layer and phase: what the energy model multiplies by energies per
//! operation. Counts are plain integers added by the layer that does the work (integer sums do
//! not depend on the thread count), and they only count training steps (evaluation is not part
//! of "energy per image per iteration").

use serde::{Deserialize, Serialize};

/// The four phases of one training iteration (spec §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Inference on the arrays: DAC inputs on rows, ADC outputs on columns.
    Forward,
    /// Error propagation: G-bit errors on the columns, transposed read, ADCs on rows.
    Backprop1,
    /// Weight gradient from quantized A and G (digital).
    Backprop2,
    /// Momentum update, re-quantization to W bits, cell writes.
    Update,
}

/// Counts of one layer in one phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// DAC conversions, each of `dac_bits` bits.
    pub dac_conversions: u64,
    pub dac_bits: u32,
    /// ADC conversions, each of `adc_bits` bits (32 = an ideal, unquantized read).
    pub adc_conversions: u64,
    pub adc_bits: u32,
    /// Cell reads: one per cell (each cell of a differential pair) per analog product.
    pub cell_reads: u64,
    /// Cell write pulses.
    pub cell_writes: u64,
    /// Multiply-accumulates done digitally.
    pub digital_macs: u64,
    /// Other digital operations (partial-sum adds, scaling, quantization, optimizer arithmetic).
    pub digital_ops: u64,
}

impl OpCounts {
    pub fn add(&mut self, o: &OpCounts) {
        self.dac_conversions += o.dac_conversions;
        self.adc_conversions += o.adc_conversions;
        self.cell_reads += o.cell_reads;
        self.cell_writes += o.cell_writes;
        self.digital_macs += o.digital_macs;
        self.digital_ops += o.digital_ops;
        if o.dac_bits != 0 {
            self.dac_bits = o.dac_bits;
        }
        if o.adc_bits != 0 {
            self.adc_bits = o.adc_bits;
        }
    }
}

/// Counts of one layer, per phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCounters {
    pub forward: OpCounts,
    pub backprop1: OpCounts,
    pub backprop2: OpCounts,
    pub update: OpCounts,
}

impl LayerCounters {
    pub fn phase_mut(&mut self, p: Phase) -> &mut OpCounts {
        match p {
            Phase::Forward => &mut self.forward,
            Phase::Backprop1 => &mut self.backprop1,
            Phase::Backprop2 => &mut self.backprop2,
            Phase::Update => &mut self.update,
        }
    }

    pub fn phases(&self) -> [(Phase, &OpCounts); 4] {
        [
            (Phase::Forward, &self.forward),
            (Phase::Backprop1, &self.backprop1),
            (Phase::Backprop2, &self.backprop2),
            (Phase::Update, &self.update),
        ]
    }

    /// Sum over phases.
    pub fn total(&self) -> OpCounts {
        let mut t = OpCounts::default();
        for (_, c) in self.phases() {
            t.add(c);
        }
        t.dac_bits = 0;
        t.adc_bits = 0;
        t
    }
}

/// One layer's entry in `counters.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayerReport {
    pub layer: String,
    /// Crossbar matrix: rows (inputs) × cols (outputs).
    pub rows: usize,
    pub cols: usize,
    /// Arrays the matrix occupies (0 in ideal mode) and the fraction of their cells in use.
    pub arrays: usize,
    pub utilisation: f64,
    pub counts: LayerCounters,
}

/// `counters.json`: totals over the training steps run so far, and the images they covered.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CountersReport {
    pub hardware: String,
    pub images: u64,
    pub steps: u64,
    pub layers: Vec<LayerReport>,
}
