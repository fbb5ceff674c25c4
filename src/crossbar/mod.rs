//! The RRAM crossbar system: configuration (array size, ADC placement, the device and its
//! non-idealities) and `TiledMatrix`, one layer's matrix spread over arrays (`array.rs`).

pub mod array;

use crate::device::DeviceConfig;
use crate::device::disturbance::{Disturbance, Faults};
use crate::error::{Error, Result};
use crate::quant::Bits;
use crate::quant::output::Polarity;
use serde::{Deserialize, Serialize};

/// Where the matrix products run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hardware {
    /// On simulated RRAM arrays (tiles, DAC/ADC, cells, write disturbance).
    Rram,
    /// Software quantization only: no tiles, no noise.
    Ideal,
}

impl Hardware {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "rram" => Ok(Hardware::Rram),
            "ideal" => Ok(Hardware::Ideal),
            _ => Err(Error::invalid(
                "hardware",
                format!("unknown hardware {s:?} (known: rram, ideal)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Hardware::Rram => "rram",
            Hardware::Ideal => "ideal",
        }
    }
}

/// Where the column outputs are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdcMode {
    /// Each array's columns have their own CO-bit ADC; partial sums add digitally (default).
    PerTile,
    /// Partial currents add in analog and only the full sum is converted (the idealised view).
    FullSum,
}

impl AdcMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "per-tile" => Ok(AdcMode::PerTile),
            "full-sum" => Ok(AdcMode::FullSum),
            _ => Err(Error::invalid(
                "adc",
                format!("unknown ADC placement {s:?} (known: per-tile, full-sum)"),
            )),
        }
    }
}

/// How signed errors are driven into the arrays in backprop part 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignedInput {
    /// `TwoPhaseAnalog` where G = 1, `TwoPhase` otherwise (default). A 1-bit error drives
    /// every non-zero row at full scale, so the two phases' reads are large and nearly cancel:
    /// converted one by one at 2 bits, their difference is lost (docs/results.md, twenty-first
    /// session: classic LeNet-5 2,2,2,1 0.9454 → 0.9645).
    Auto,
    /// Positive part, then negative part, each converted, subtracted digitally.
    TwoPhase,
    /// One read with signed input voltages.
    OnePhase,
    /// Positive part, then negative part, subtracted in analog before one conversion (a row
    /// integrator that counts the second phase down): unipolar DACs as in `TwoPhase`, one ADC
    /// read per output as in `OnePhase`, whose numbers it gives.
    TwoPhaseAnalog,
}

impl SignedInput {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(SignedInput::Auto),
            "two-phase" => Ok(SignedInput::TwoPhase),
            "two-phase-analog" => Ok(SignedInput::TwoPhaseAnalog),
            "one-phase" => Ok(SignedInput::OnePhase),
            _ => Err(Error::invalid(
                "signed_input",
                format!(
                    "unknown signed input {s:?} (known: auto, two-phase, two-phase-analog, one-phase)"
                ),
            )),
        }
    }

    /// The read a layer whose errors have `g` bits uses (`Auto` resolved).
    pub fn resolve(self, g: Bits) -> Self {
        match self {
            SignedInput::Auto if g == Bits::K(1) => SignedInput::TwoPhaseAnalog,
            SignedInput::Auto => SignedInput::TwoPhase,
            other => other,
        }
    }

    /// Input phases of a layer with `g`-bit errors: DAC conversions and cell reads happen once
    /// per phase.
    pub fn phases(self, g: Bits) -> u64 {
        match self.resolve(g) {
            SignedInput::OnePhase => 1,
            _ => 2,
        }
    }

    /// ADC conversions per output and array, for `g`-bit errors.
    pub fn conversions(self, g: Bits) -> u64 {
        match self.resolve(g) {
            SignedInput::TwoPhase => 2,
            _ => 1,
        }
    }

    /// Whether each phase is converted and the two subtracted digitally, for `g`-bit errors.
    pub fn digital_two_phase(self, g: Bits) -> bool {
        self.resolve(g) == SignedInput::TwoPhase
    }
}

/// Everything about the arrays. Defaults are documented per field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossbarConfig {
    /// Array rows (inputs). Default 128.
    pub tile_rows: usize,
    /// Array columns (outputs). Default 128.
    pub tile_cols: usize,
    /// ADC placement. Default `per-tile`.
    pub adc: AdcMode,
    /// How each array's 2-bit ADC reads its partial sum of a column whose rows span several
    /// arrays, in layers whose ADCs read unipolar (`RunConfig::adc_polarity`): `skewed`
    /// (default; the bipolar step with the spare code above: −s, 0, s, 2s), `bipolar` (−s, 0,
    /// s) or `unipolar` (each partial sum clipped at 0: does not train, docs/results.md).
    /// Wider ADCs read those partial sums bipolar (`Polarity::for_partial_sums`). Per-tile ADCs
    /// only. A config without the key (one written before it existed) reads bipolar, as those
    /// runs did.
    #[serde(default)]
    pub partial_polarity: Polarity,
    /// Bits of the row ADCs that read the transposed product in backprop part 1; absent = the
    /// CO bits (the same ADC design on both sides of the array), 2 where CO is 1 bit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backward_adc_bits: Option<u32>,
    /// Signed inputs in backprop part 1. Default `auto` (`two-phase-analog` where G = 1,
    /// `two-phase` otherwise); resolved configs from before `auto` name their read.
    pub signed_input: SignedInput,
    /// Relative write error. Default `uniform:0.05` (the paper's ±5%).
    pub disturb: Disturbance,
    /// Stuck-at-Gmin/Gmax fractions. Default none.
    pub faults: Faults,
    /// Relative read noise σ per analog product (per cell, drawn per batch). Default 0.
    pub read_noise: f32,
    /// Device-to-device spread: each cell's fixed gain ~ N(1, σ²). Default 0.
    pub d2d: f32,
    /// The device.
    pub device: DeviceConfig,
}

impl Default for CrossbarConfig {
    fn default() -> Self {
        CrossbarConfig {
            tile_rows: 128,
            tile_cols: 128,
            adc: AdcMode::PerTile,
            partial_polarity: Polarity::Skewed,
            backward_adc_bits: None,
            signed_input: SignedInput::Auto,
            disturb: Disturbance::Uniform(0.05),
            faults: Faults::default(),
            read_noise: 0.0,
            d2d: 0.0,
            device: DeviceConfig::default(),
        }
    }
}

impl CrossbarConfig {
    /// Bits of the row ADCs of the transposed read for a layer whose forward ADC has `co` bits:
    /// `backward_adc_bits`, else the CO bits, but at least 2 — a comparator passes only the sign
    /// of each error sum, and no 1,1,2,1 run learned through one (docs/results.md).
    pub fn backward_bits(&self, co: Bits) -> Bits {
        match self.backward_adc_bits.and_then(|b| Bits::from_u32(b).ok()) {
            Some(b) => b,
            None if co == Bits::K(1) => Bits::K(2),
            None => co,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.tile_rows == 0
            || self.tile_cols == 0
            || self.tile_rows > 1 << 16
            || self.tile_cols > 1 << 16
        {
            return Err(Error::invalid(
                "xbar",
                format!(
                    "{}x{} must be two sizes in 1..=65536",
                    self.tile_rows, self.tile_cols
                ),
            ));
        }
        if let Some(b) = self.backward_adc_bits {
            Bits::from_u32(b).map_err(|_| {
                Error::invalid(
                    "backward_adc_bits",
                    format!("{b} is not a bit-width (1..16 or 32)"),
                )
            })?;
        }
        for (key, v) in [("read_noise", self.read_noise), ("d2d", self.d2d)] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(Error::invalid(key, format!("{v} must be in [0, 1]")));
            }
        }
        self.device.validate()
    }

    /// Parse `--xbar RxC`.
    pub fn parse_size(s: &str) -> Result<(usize, usize)> {
        let bad = || Error::invalid("xbar", format!("{s:?} must be ROWSxCOLS, e.g. 128x128"));
        let (r, c) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let r: usize = r.trim().parse().map_err(|_| bad())?;
        let c: usize = c.trim().parse().map_err(|_| bad())?;
        if r == 0 || c == 0 || r > 1 << 16 || c > 1 << 16 {
            return Err(bad());
        }
        Ok((r, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_signed_input_reads_analog_only_where_g_is_one_bit() {
        let auto = SignedInput::parse("auto").unwrap();
        assert_eq!(auto, CrossbarConfig::default().signed_input);
        assert_eq!(auto.resolve(Bits::K(1)), SignedInput::TwoPhaseAnalog);
        for g in [Bits::K(2), Bits::K(4), Bits::Fp32] {
            assert_eq!(auto.resolve(g), SignedInput::TwoPhase);
        }
        // explicit reads stay what they say at any G
        for m in [
            SignedInput::TwoPhase,
            SignedInput::TwoPhaseAnalog,
            SignedInput::OnePhase,
        ] {
            assert_eq!(m.resolve(Bits::K(1)), m);
        }
        // (phases, conversions): the analog read drives two phases and converts once
        assert_eq!(
            (auto.phases(Bits::K(1)), auto.conversions(Bits::K(1))),
            (2, 1)
        );
        assert_eq!(
            (auto.phases(Bits::K(2)), auto.conversions(Bits::K(2))),
            (2, 2)
        );
        assert_eq!(
            (
                SignedInput::OnePhase.phases(Bits::K(2)),
                SignedInput::OnePhase.conversions(Bits::K(2))
            ),
            (1, 1)
        );
        let e = SignedInput::parse("three-phase").unwrap_err().to_string();
        assert!(e.contains("auto, two-phase"), "{e}");
    }

    #[test]
    fn backward_adc_bits_default_to_co_but_never_one() {
        let mut c = CrossbarConfig::default();
        assert_eq!(c.backward_bits(Bits::K(4)), Bits::K(4));
        assert_eq!(c.backward_bits(Bits::Fp32), Bits::Fp32);
        assert_eq!(c.backward_bits(Bits::K(1)), Bits::K(2));
        c.backward_adc_bits = Some(1);
        assert_eq!(c.backward_bits(Bits::K(1)), Bits::K(1));
        c.backward_adc_bits = Some(8);
        assert_eq!(c.backward_bits(Bits::K(2)), Bits::K(8));
    }
}
