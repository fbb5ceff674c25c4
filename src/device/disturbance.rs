//! Where a write lands. Every write of a cell lands at `G_target·(1 + ε)` with ε drawn afresh
//! per cell per write and held until the cell is written again (spec §3). Stuck-at faults pin a
//! cell at Gmin (sa0) or Gmax (sa1) for good; device-to-device spread gives every cell a fixed
//! gain; read noise perturbs each analog product.

use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Distribution of the relative write error ε.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Disturbance {
    /// Writes land exactly.
    None,
    /// ε ~ U[−p, p] (the paper's model, p = 5%).
    Uniform(f32),
    /// ε ~ N(0, σ²), cut at −1 (a conductance cannot go negative).
    Gaussian(f32),
    /// G = G_target·exp(σ·N(0, 1)), i.e. ε = exp(σ·z) − 1.
    LogNormal(f32),
}

impl Disturbance {
    /// One draw of ε.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f32 {
        match *self {
            Disturbance::None => 0.0,
            Disturbance::Uniform(p) => rng.uniform_in(-p, p),
            Disturbance::Gaussian(s) => (s * rng.normal()).max(-1.0),
            Disturbance::LogNormal(s) => (s * rng.normal()).exp() - 1.0,
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Disturbance::None)
    }
}

impl fmt::Display for Disturbance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disturbance::None => write!(f, "none"),
            Disturbance::Uniform(p) => write!(f, "uniform:{p}"),
            Disturbance::Gaussian(s) => write!(f, "gaussian:{s}"),
            Disturbance::LogNormal(s) => write!(f, "lognormal:{s}"),
        }
    }
}

/// A non-negative finite number, or an error naming `key`.
fn parse_width(key: &str, text: &str, v: &str, max: f32) -> Result<f32> {
    let x: f32 = v
        .parse()
        .map_err(|_| Error::invalid(key, format!("{text:?}: {v:?} is not a number")))?;
    if !(x.is_finite() && (0.0..=max).contains(&x)) {
        return Err(Error::invalid(
            key,
            format!("{text:?}: {v} must be in [0, {max}]"),
        ));
    }
    Ok(x)
}

impl FromStr for Disturbance {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        const KEY: &str = "disturb";
        let usage = || {
            Error::invalid(
                KEY,
                format!("{s:?} must be none, uniform:P, gaussian:SIGMA or lognormal:SIGMA"),
            )
        };
        if s == "none" {
            return Ok(Disturbance::None);
        }
        let (kind, v) = s.split_once(':').ok_or_else(usage)?;
        match kind {
            "uniform" => Ok(Disturbance::Uniform(parse_width(KEY, s, v, 1.0)?)),
            "gaussian" => Ok(Disturbance::Gaussian(parse_width(KEY, s, v, 10.0)?)),
            "lognormal" => Ok(Disturbance::LogNormal(parse_width(KEY, s, v, 10.0)?)),
            _ => Err(usage()),
        }
    }
}

impl TryFrom<String> for Disturbance {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Disturbance> for String {
    fn from(d: Disturbance) -> String {
        d.to_string()
    }
}

/// Fractions of cells stuck at Gmin (sa0) and at Gmax (sa1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Faults {
    pub sa0: f32,
    pub sa1: f32,
}

/// Whether a cell works or is stuck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellFault {
    Ok,
    StuckMin,
    StuckMax,
}

impl Faults {
    pub fn is_none(&self) -> bool {
        self.sa0 == 0.0 && self.sa1 == 0.0
    }

    /// Draw one cell's fault.
    pub fn draw(&self, rng: &mut Rng) -> CellFault {
        let u = rng.uniform();
        if u < self.sa0 {
            CellFault::StuckMin
        } else if u < self.sa0 + self.sa1 {
            CellFault::StuckMax
        } else {
            CellFault::Ok
        }
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            write!(f, "none")
        } else {
            write!(f, "sa0:{},sa1:{}", self.sa0, self.sa1)
        }
    }
}

impl FromStr for Faults {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        const KEY: &str = "faults";
        let mut f = Faults::default();
        if s == "none" {
            return Ok(f);
        }
        for part in s.split(',') {
            let (kind, v) = part.split_once(':').ok_or_else(|| {
                Error::invalid(
                    KEY,
                    format!("{s:?} must be none or a list like sa0:0.01,sa1:0.01"),
                )
            })?;
            let x = parse_width(KEY, s, v, 1.0)?;
            match kind.trim() {
                "sa0" => f.sa0 = x,
                "sa1" => f.sa1 = x,
                other => {
                    return Err(Error::invalid(
                        KEY,
                        format!("{s:?}: unknown fault {other:?} (known: sa0, sa1)"),
                    ));
                }
            }
        }
        if f.sa0 + f.sa1 > 1.0 {
            return Err(Error::invalid(
                KEY,
                format!("{s:?}: fractions add up to more than 1"),
            ));
        }
        Ok(f)
    }
}

impl TryFrom<String> for Faults {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Faults> for String {
    fn from(f: Faults) -> String {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        for s in ["none", "uniform:0.05", "gaussian:0.1", "lognormal:0.2"] {
            assert_eq!(s.parse::<Disturbance>().unwrap().to_string(), s);
        }
        for bad in [
            "uniform",
            "uniform:-0.1",
            "uniform:2",
            "gauss:0.1",
            "uniform:x",
            "lognormal:nan",
        ] {
            assert!(bad.parse::<Disturbance>().is_err(), "{bad}");
        }
        let f: Faults = "sa0:0.01,sa1:0.02".parse().unwrap();
        assert_eq!((f.sa0, f.sa1), (0.01, 0.02));
        assert_eq!(f.to_string(), "sa0:0.01,sa1:0.02");
        for bad in ["sa0", "sa2:0.1", "sa0:1.5", "sa0:-0.1", "sa0:0.6,sa1:0.6"] {
            assert!(bad.parse::<Faults>().is_err(), "{bad}");
        }
    }

    #[test]
    fn uniform_stays_in_its_interval() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let e = Disturbance::Uniform(0.05).sample(&mut rng);
            assert!((-0.05..0.05).contains(&e));
        }
    }
}
