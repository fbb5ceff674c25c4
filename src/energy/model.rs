//! The estimator: counters × per-event energies → energy per image per training iteration
//! (spec §5), per layer, per phase and per component. A pure function of its inputs.

use super::preset::EnergyPreset;
use crate::counters::{CountersReport, OpCounts, Phase};
use serde::Serialize;

/// Energy by component, µJ per image per iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Components {
    pub dac: f64,
    pub adc: f64,
    pub cell_read: f64,
    pub cell_write: f64,
    pub digital_mac: f64,
    pub digital_other: f64,
    pub buffer: f64,
}

impl Components {
    pub fn total(&self) -> f64 {
        self.dac
            + self.adc
            + self.cell_read
            + self.cell_write
            + self.digital_mac
            + self.digital_other
            + self.buffer
    }

    pub fn add(&mut self, o: &Components) {
        self.dac += o.dac;
        self.adc += o.adc;
        self.cell_read += o.cell_read;
        self.cell_write += o.cell_write;
        self.digital_mac += o.digital_mac;
        self.digital_other += o.digital_other;
        self.buffer += o.buffer;
    }

    /// `c` counted over `images` images, priced by `p`.
    fn of(c: &OpCounts, images: f64, p: &EnergyPreset) -> Components {
        let k = p.scale * 1e-6 / images; // pJ -> µJ per image
        Components {
            dac: c.dac_conversions as f64 * p.dac.energy_pj(c.dac_bits) * k,
            adc: c.adc_conversions as f64 * p.adc.energy_pj(c.adc_bits) * k,
            cell_read: c.cell_reads as f64 * p.cell_read_pj * k,
            cell_write: c.cell_writes as f64 * p.cell_write_pj * k,
            digital_mac: c.digital_macs as f64 * p.digital_mac_pj * k,
            digital_other: c.digital_ops as f64 * p.digital_op_pj * k,
            buffer: (c.dac_conversions + c.adc_conversions) as f64 * p.buffer_pj * k,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseEnergy {
    pub phase: Phase,
    pub components: Components,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerEnergy {
    pub layer: String,
    pub phases: Vec<PhaseEnergy>,
    pub total_uj: f64,
}

/// Conv+FC energy of the RRAM system, µJ per image per training iteration.
#[derive(Clone, Debug, Serialize)]
pub struct EnergyReport {
    pub preset: String,
    pub hardware: String,
    pub layers: Vec<LayerEnergy>,
    pub by_phase: Vec<PhaseEnergy>,
    pub components: Components,
    pub conv_fc_uj: f64,
}

pub fn estimate(counts: &CountersReport, preset: &EnergyPreset) -> EnergyReport {
    let images = counts.images.max(1) as f64;
    let phases = [
        Phase::Forward,
        Phase::Backprop1,
        Phase::Backprop2,
        Phase::Update,
    ];
    let mut by_phase: Vec<PhaseEnergy> = phases
        .iter()
        .map(|&phase| PhaseEnergy {
            phase,
            components: Components::default(),
        })
        .collect();
    let mut all = Components::default();
    let layers = counts
        .layers
        .iter()
        .map(|l| {
            let per: Vec<PhaseEnergy> = l
                .counts
                .phases()
                .iter()
                .map(|(phase, c)| PhaseEnergy {
                    phase: *phase,
                    components: Components::of(c, images, preset),
                })
                .collect();
            for (acc, p) in by_phase.iter_mut().zip(&per) {
                acc.components.add(&p.components);
                all.add(&p.components);
            }
            let total_uj = per.iter().map(|p| p.components.total()).sum();
            LayerEnergy {
                layer: l.layer.clone(),
                phases: per,
                total_uj,
            }
        })
        .collect();
    EnergyReport {
        preset: preset.name.clone(),
        hardware: counts.hardware.clone(),
        layers,
        by_phase,
        conv_fc_uj: all.total(),
        components: all,
    }
}
