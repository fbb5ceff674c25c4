//! The four quantization points of spec §2, in the paper's order A, CO, W, G.
//!
//! `Bits` is a bit-width (1..=16) or `Fp32` (no quantization). `quantize_k` is the uniform
//! quantizer on [0, 1] that every point builds on; its backward pass is the identity (the
//! straight-through estimator), so each quantizer here also returns what its backward needs.
//! Rounding is `f32::round`: ties go away from zero (so 0.5·(2^k−1) rounds up).

pub mod activation;
pub mod gradient;
pub mod output;
pub mod weight;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One bit-width: `K(k)` with k in 1..=16, or `Fp32` (written "32": no quantization).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bits {
    K(u8),
    Fp32,
}

impl Bits {
    /// Levels above zero of the unsigned quantizer: `2^k − 1`; `None` for fp32.
    pub fn levels(self) -> Option<f32> {
        match self {
            Bits::K(k) => Some(((1u32 << k) - 1) as f32),
            Bits::Fp32 => None,
        }
    }

    /// The bit count as written on the command line (32 for fp32).
    pub fn as_u32(self) -> u32 {
        match self {
            Bits::K(k) => k as u32,
            Bits::Fp32 => 32,
        }
    }

    pub fn is_fp32(self) -> bool {
        self == Bits::Fp32
    }

    /// Accepts 1..=16 and 32.
    pub fn from_u32(v: u32) -> Result<Self> {
        match v {
            1..=16 => Ok(Bits::K(v as u8)),
            32 => Ok(Bits::Fp32),
            _ => Err(Error::invalid(
                "bits",
                format!("{v} is not a bit-width (use 1..16, or 32 for fp32)"),
            )),
        }
    }
}

impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u32())
    }
}

/// Bit-widths of the four quantization points, in the paper's order A, CO, W, G.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BitWidths {
    /// A: activations, the DAC input of the next layer.
    pub a: Bits,
    /// CO: conv/FC outputs, what the ADC reads.
    pub co: Bits,
    /// W: weights, the levels programmed into the cells.
    pub w: Bits,
    /// G: errors (dJ/dCO) driven back through the arrays.
    pub g: Bits,
}

impl BitWidths {
    pub const FP32: BitWidths = BitWidths {
        a: Bits::Fp32,
        co: Bits::Fp32,
        w: Bits::Fp32,
        g: Bits::Fp32,
    };

    pub fn uniform(k: u8) -> Self {
        let b = Bits::K(k);
        BitWidths {
            a: b,
            co: b,
            w: b,
            g: b,
        }
    }

    pub fn is_fp32(&self) -> bool {
        *self == Self::FP32
    }

    /// Run-name form: `a4-co4-w4-g4`.
    pub fn slug(&self) -> String {
        format!("a{}-co{}-w{}-g{}", self.a, self.co, self.w, self.g)
    }
}

impl fmt::Display for BitWidths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.a, self.co, self.w, self.g)
    }
}

impl FromStr for BitWidths {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(Error::invalid(
                "bits",
                format!("{s:?} must be four comma-separated bit-widths A,CO,W,G (e.g. 4,4,4,4)"),
            ));
        }
        let mut v = [Bits::Fp32; 4];
        for (slot, p) in v.iter_mut().zip(&parts) {
            let n: u32 = p.parse().map_err(|_| {
                Error::invalid("bits", format!("{p:?} in {s:?} is not a whole number"))
            })?;
            *slot = Bits::from_u32(n)?;
        }
        Ok(BitWidths {
            a: v[0],
            co: v[1],
            w: v[2],
            g: v[3],
        })
    }
}

impl TryFrom<String> for BitWidths {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<BitWidths> for String {
    fn from(b: BitWidths) -> String {
        b.to_string()
    }
}

/// `quantize_k(r) = round((2^k − 1)·r) / (2^k − 1)`, for `levels = 2^k − 1` and r in [0, 1].
#[inline]
pub fn quantize_k(r: f32, levels: f32) -> f32 {
    round(r * levels) / levels
}

/// Beyond 2^23 every f32 is an integer.
const INTEGRAL: f32 = 8_388_608.0;

/// Round-half-even of `a` ≥ 0 for `a` < 2^23 (adding 2^23 leaves no fraction bits).
#[inline(always)]
fn rne_abs(a: f32) -> f32 {
    (a + INTEGRAL) - INTEGRAL
}

/// `x.round()` (half away from zero), bit for bit, without the libm call that `f32::round`
/// becomes on baseline x86-64 (it was 12% of a 4-bit training step). Branch-free, so loops
/// over it vectorize: round-half-even of |x|, a tie that went down to even goes up, sign back.
#[inline(always)]
pub fn round(x: f32) -> f32 {
    let a = x.abs();
    let r = rne_abs(a);
    let r = if a - r == 0.5 { r + 1.0 } else { r };
    let r = if a < INTEGRAL { r } else { a }; // integral already, or NaN / inf
    r.copysign(x)
}

/// `clamp(round(x), -l, l)` for an integral `l` < 2^22, bit for bit: clamping first gives the
/// same value (rounding is monotone and `±l` are integers), and a clamped value needs no
/// `< 2^23` guard (NaN stays NaN). The ADCs' transfer function.
#[inline(always)]
pub fn round_clamped(x: f32, l: f32) -> f32 {
    let y = clamp(x, -l, l);
    let a = y.abs();
    let r = rne_abs(a);
    let r = if a - r == 0.5 { r + 1.0 } else { r };
    r.copysign(y)
}

/// `clamp(round(x), 0, l)` for an integral `l` < 2^22, bit for bit: `round_clamped` of a value
/// already in [0, l], so it needs neither the sign nor `|·|` (NaN stays NaN). The unipolar ADCs'
/// transfer function.
#[inline(always)]
pub fn round_clamped_unipolar(x: f32, l: f32) -> f32 {
    let y = clamp(x, 0.0, l);
    let r = rne_abs(y);
    if y - r == 0.5 { r + 1.0 } else { r }
}

/// `x.clamp(lo, hi)` for `lo ≤ hi`, bit for bit (NaN stays NaN, so a diverged value still
/// shows), without `f32::clamp`'s `lo ≤ hi` assertion: a possible panic inside a loop keeps it
/// from vectorizing (the ADC pass of the transposed read ran scalar: a quarter of a step).
#[inline(always)]
pub fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if x > hi { hi } else { x }
}

/// `x.floor()`, bit for bit, without the libm call (see [`round`]).
#[inline(always)]
pub fn floor(x: f32) -> f32 {
    let a = x.abs();
    let r = if a < INTEGRAL { rne_abs(a) } else { a }.copysign(x);
    if r > x { r - 1.0 } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unipolar_round_is_clamp_of_round_bit_for_bit() {
        let mut xs = hard_values();
        xs.extend([
            6.5, 6.49999, 7.5, -7.5, 8.0, 126.5, -127.5, -1e-9, 2.5000002,
        ]);
        for l in [1.0, 3.0, 15.0, 127.0] {
            for &x in xs.iter().filter(|x| !x.is_nan()) {
                // +0 for every value that reads zero, as adding it into an accumulator would give
                let want = clamp(round(x), 0.0, l) + 0.0;
                let got = round_clamped_unipolar(x, l) + 0.0;
                assert_eq!(got.to_bits(), want.to_bits(), "{x} {l}");
            }
            assert!(round_clamped_unipolar(f32::NAN, l).is_nan());
        }
    }

    #[test]
    fn round_clamped_is_clamp_of_round_bit_for_bit() {
        let mut xs = hard_values();
        xs.extend([6.5, 6.49999, 7.5, -7.5, 8.0, 126.5, -127.5]);
        for l in [1.0, 3.0, 7.0, 127.0] {
            for &x in xs.iter().filter(|x| !x.is_nan()) {
                let want = clamp(round(x), -l, l);
                assert_eq!(round_clamped(x, l).to_bits(), want.to_bits(), "{x} {l}");
            }
            assert!(round_clamped(f32::NAN, l).is_nan());
        }
    }

    /// Ties, values near 2^23, extremes, and many random values and bit patterns.
    fn hard_values() -> Vec<f32> {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999997,
            -0.49999997,
            0.50000006,
            1.4999999,
            8_388_607.5,
            -8_388_607.5,
            8_388_608.0,
            16_777_217.0,
            3e9,
            -3e9,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-40,
            -1e-40,
        ];
        let mut r = crate::rng::Rng::new(7);
        for _ in 0..200_000 {
            xs.push((r.uniform() - 0.5) * 64.0);
            xs.push(f32::from_bits(r.next_u64() as u32)); // any bit pattern
        }
        xs
    }

    #[test]
    fn fast_round_and_floor_equal_std_bit_for_bit() {
        let xs = hard_values();
        for &x in xs.iter().filter(|x| !x.is_nan()) {
            assert_eq!(round(x).to_bits(), x.round().to_bits(), "round({x:e})");
            assert_eq!(floor(x).to_bits(), x.floor().to_bits(), "floor({x:e})");
        }
        assert!(round(f32::NAN).is_nan() && floor(f32::NAN).is_nan());
        for &x in xs.iter().filter(|x| !x.is_nan()) {
            for (lo, hi) in [(-1.0, 1.0), (0.0, 1.0), (-0.0, 0.0), (2.5, 2.5)] {
                assert_eq!(clamp(x, lo, hi).to_bits(), x.clamp(lo, hi).to_bits());
            }
        }
        assert!(clamp(f32::NAN, -1.0, 1.0).is_nan());
    }

    #[test]
    fn quantize_k_hand_values() {
        // k = 2: levels 0, 1/3, 2/3, 1.
        assert_eq!(quantize_k(0.0, 3.0), 0.0);
        assert_eq!(quantize_k(0.2, 3.0), 1.0 / 3.0); // 0.6 -> 1
        assert_eq!(quantize_k(0.5, 3.0), 2.0 / 3.0); // tie 1.5 -> 2 (away from zero)
        assert_eq!(quantize_k(1.0, 3.0), 1.0);
        // k = 1: 0 or 1, tie at 0.5 goes up.
        assert_eq!(quantize_k(0.49, 1.0), 0.0);
        assert_eq!(quantize_k(0.5, 1.0), 1.0);
        // k = 4: 0.3 * 15 = 4.5 -> 5.
        assert_eq!(quantize_k(0.3, 15.0), 5.0 / 15.0);
    }

    #[test]
    fn bit_widths_parse_and_print() {
        let b: BitWidths = "1,1,2,32".parse().unwrap();
        assert_eq!(b.a, Bits::K(1));
        assert_eq!(b.g, Bits::Fp32);
        assert_eq!(b.to_string(), "1,1,2,32");
        assert_eq!(b.slug(), "a1-co1-w2-g32");
        for bad in ["4,4,4", "0,4,4,4", "17,4,4,4", "4,4,x,4", "33,4,4,4", ""] {
            assert!(bad.parse::<BitWidths>().is_err(), "{bad}");
        }
    }
}
