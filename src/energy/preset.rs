//! Energy presets: per-event energies with their sources, as TOML. Shipped presets live in
//! `presets/*.toml` (compiled in); `--preset FILE.toml` reads a user's own. Every key must be
//! present and non-negative; the error names the key.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Energy of one conversion as a function of its bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConverterModel {
    /// `table`: piecewise-linear through (bits, pj) points, linear beyond the ends (floored at
    /// the smallest tabulated energy / 10); `walden`: `fom_pj · 2^bits`.
    pub model: String,
    #[serde(default)]
    pub bits: Vec<f64>,
    #[serde(default)]
    pub pj: Vec<f64>,
    #[serde(default)]
    pub fom_pj: f64,
}

impl ConverterModel {
    /// Energy of one `bits`-bit conversion, pJ.
    pub fn energy_pj(&self, bits: u32) -> f64 {
        let b = bits as f64;
        match self.model.as_str() {
            "walden" => self.fom_pj * 2f64.powf(b),
            _ => {
                let (xs, ys) = (&self.bits, &self.pj);
                let floor = ys.iter().cloned().fold(f64::INFINITY, f64::min) / 10.0;
                let n = xs.len();
                if n == 1 {
                    return ys[0];
                }
                let i = xs
                    .iter()
                    .position(|&x| x >= b)
                    .unwrap_or(n - 1)
                    .clamp(1, n - 1);
                let (x0, x1, y0, y1) = (xs[i - 1], xs[i], ys[i - 1], ys[i]);
                (y0 + (y1 - y0) * (b - x0) / (x1 - x0)).max(floor)
            }
        }
    }

    fn validate(&self, key: &str) -> Result<()> {
        let bad = |what: String| Err(Error::invalid(key, what));
        match self.model.as_str() {
            "walden" => {
                if !(self.fom_pj.is_finite() && self.fom_pj > 0.0) {
                    return bad(format!("{key}.fom_pj must be > 0 for the walden model"));
                }
            }
            "table" => {
                if self.bits.is_empty() || self.bits.len() != self.pj.len() {
                    return bad(format!(
                        "{key}.bits and {key}.pj must be non-empty and of equal length"
                    ));
                }
                if self.pj.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                    return bad(format!("{key}.pj must be non-negative numbers"));
                }
                if self.bits.windows(2).any(|w| w[1] <= w[0]) {
                    return bad(format!("{key}.bits must increase"));
                }
            }
            m => return bad(format!("{key}.model {m:?} must be \"table\" or \"walden\"")),
        }
        Ok(())
    }
}

/// Per-event energies for the RRAM system (pJ), with the sources they come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyPreset {
    pub name: String,
    pub description: String,
    /// Where each number comes from.
    pub sources: Vec<String>,
    /// Factor applied to every Conv+FC term (1 for a bottom-up preset; the calibration of `paper`).
    pub scale: f64,
    /// One cell read (one cell of a pair, one analog product).
    pub cell_read_pj: f64,
    /// One write pulse on one cell.
    pub cell_write_pj: f64,
    /// One digital multiply-accumulate (backprop part 2, and all products in ideal mode).
    pub digital_mac_pj: f64,
    /// One other digital operation (partial-sum add, scaling, quantization, optimizer arithmetic).
    pub digital_op_pj: f64,
    /// Moving one value through the buffers (each DAC input and each ADC output).
    pub buffer_pj: f64,
    pub adc: ConverterModel,
    pub dac: ConverterModel,
}

/// Presets shipped with rram.
pub const SHIPPED: [(&str, &str); 2] = [
    (
        "isaac-nvsim",
        include_str!("../../presets/isaac-nvsim.toml"),
    ),
    ("paper", include_str!("../../presets/paper.toml")),
];

impl EnergyPreset {
    /// A shipped preset by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Self> {
        if let Some((_, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text).map_err(|e| {
                Error::invalid("preset", format!("shipped preset {name_or_path}: {e}"))
            });
        }
        let path = Path::new(name_or_path);
        if !(name_or_path.ends_with(".toml") || path.is_file()) {
            let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
            return Err(Error::invalid(
                "preset",
                format!(
                    "unknown preset {name_or_path:?} (shipped: {}; or give a .toml file)",
                    names.join(", ")
                ),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text).map_err(|e| Error::format(path, e.to_string()))
    }

    /// Parse and validate preset TOML.
    pub fn parse(text: &str) -> Result<Self> {
        let p: EnergyPreset = toml::from_str(text)
            .map_err(|e: toml::de::Error| Error::invalid("preset", e.message().to_string()))?;
        p.validate()?;
        Ok(p)
    }

    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("scale", self.scale),
            ("cell_read_pj", self.cell_read_pj),
            ("cell_write_pj", self.cell_write_pj),
            ("digital_mac_pj", self.digital_mac_pj),
            ("digital_op_pj", self.digital_op_pj),
            ("buffer_pj", self.buffer_pj),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    key,
                    format!("{v} must be a non-negative number"),
                ));
            }
        }
        self.adc.validate("adc")?;
        self.dac.validate("dac")
    }
}
