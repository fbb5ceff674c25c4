//! The RRAM device: conductance range, the levels a W-bit weight maps to on a differential pair,
//! and (in `disturbance`) where a write actually lands.
//!
//! Conductances are handled in units of the programmable range `Gmax − Gmin`: a cell's
//! normalized conductance is `u = G/(Gmax − Gmin)`, between `u_min = Gmin/(Gmax − Gmin)` and
//! `u_min + 1`. A signed weight sits on a pair, `w ∝ G+ − G−`: for W = k ≥ 2 bits the weight
//! `w_q = j/L` (`L = 2^k − 1`, j odd in −L..L) becomes `G+ = Gmin + max(j, 0)·ΔG/L`,
//! `G− = Gmin + max(−j, 0)·ΔG/L`, so each cell uses the levels {0, 1, 3, …, L} — 2^(k−1) + 1 of
//! them — and every `w_q` is representable exactly. For k = 1 (`±mean|w|`) the cells are either
//! Gmin or Gmax and `mean|w|` is a digital scale; at fp32 the targets are continuous
//! (`|w|/max|w|`) with `max|w|` as the digital scale.

pub mod disturbance;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Device parameters. Defaults: MNSIM-2.0's device (LRS 10 kΩ, HRS 1 MΩ, read 0.15 V;
/// `energy-parameters.md`, [S: thu-nics/MNSIM-2.0 SimConfig.ini]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Lowest programmable conductance (HRS), µS. Default 1 µS (1 MΩ). 0 = an ideal off state.
    pub cond_min_us: f32,
    /// Highest programmable conductance (LRS), µS. Default 100 µS (10 kΩ).
    pub cond_max_us: f32,
    /// Read voltage, V. Default 0.15 V.
    pub v_read: f32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            cond_min_us: 1.0,
            cond_max_us: 100.0,
            v_read: 0.15,
        }
    }
}

impl DeviceConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.cond_min_us.is_finite() && self.cond_min_us >= 0.0) {
            return Err(Error::invalid(
                "device.cond_min_us",
                format!("{} must be >= 0", self.cond_min_us),
            ));
        }
        if !(self.cond_max_us.is_finite() && self.cond_max_us > self.cond_min_us) {
            return Err(Error::invalid(
                "device.cond_max_us",
                format!(
                    "{} must be larger than cond_min_us ({})",
                    self.cond_max_us, self.cond_min_us
                ),
            ));
        }
        if !(self.v_read.is_finite() && self.v_read > 0.0) {
            return Err(Error::invalid(
                "device.v_read",
                format!("{} must be > 0", self.v_read),
            ));
        }
        Ok(())
    }

    /// `Gmin/(Gmax − Gmin)`: the normalized conductance of the lowest level.
    pub fn u_min(&self) -> f32 {
        self.cond_min_us / (self.cond_max_us - self.cond_min_us)
    }

    /// On/off ratio Gmax/Gmin (infinite when Gmin = 0).
    pub fn on_off(&self) -> f32 {
        self.cond_max_us / self.cond_min_us
    }
}
