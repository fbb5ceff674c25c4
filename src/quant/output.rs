//! CO: the ADC quantizer on conv/FC outputs, symmetric with one range `s` per layer (spec §2):
//! `co_q = s·clip(round(co/s·L), −L, L)/L` with `L = 2^(k−1) − 1`. `s` comes from the batch in
//! training, by a `CoRange` rule: `max` (spec §2: `s = max|co|`) or `mean:K` (`s = K·mean|co|`,
//! values beyond clip); evaluation uses a running estimate of `s` (an exponential average of
//! the training batches' ranges), so a test image is read the same way whatever batch it is in.
//! k = 1 has no level besides zero in that formula, so a 1-bit ADC is a comparator, read in one
//! of two ways (`Comparator`). `centered` (default): each column is compared against its own
//! reference — the column's batch mean in training; in evaluation the mean the trainer re-estimates
//! from training images just before (`centre_rows`' `refresh`), else a running mean — shifted by
//! the layer's trained bias, and reads ±1 (the digital α carries the scale); its
//! straight-through window is `|co − ref| ≤ mean|co − ref|`. Like batch-norm before a sign, the
//! centring keeps every unit firing on part of each batch: with a fixed reference a unit pushed
//! below it never fires again and never again receives an error (docs/results.md, "dying
//! comparators"). `zero`: `co_q = sign(co)·mean|co|` (the same least-squares scale as 1-bit W),
//! the earlier read, kept for comparison.
//! Backward: straight-through (with `s` the batch maximum nothing lies outside the range).
//!
//! `Polarity`: the formula above is a *bipolar* read, 2^k − 1 levels over [−s, s]. A layer whose
//! output goes straight into the activation's clip at 0 (LeNet-5's hidden layers) can instead
//! read *unipolar*: 2^k levels over [0, s], a negative column output reading 0 — the same k-bit
//! converter, every code spent on the side the next layer keeps. At k = 2 that is 4 levels
//! (0, s/3, 2s/3, s) instead of 3 (−s, 0, s), of which the clip kept 2.
//! Where a column's rows span several arrays, each array reads only a partial sum, whose sign
//! is not yet the output's: clipping it at 0 makes the output a sum of clipped partial sums,
//! which does not train. Those reads are *skewed*: the bipolar read's range and step, with the
//! code it leaves spare spent above +s (−s, 0, s, 2s at k = 2), and a straight-through window
//! that closes only above the top level.

use super::Bits;
use crate::error::{Error, Result};
use crate::kernels::lane_sum;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the ADC range `s` is set from a training batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CoRange {
    /// `s = max|co|`: nothing clips, but one outlier coarsens every other value.
    Max,
    /// `s = K·mean|co|`: the range follows the bulk of the values; outliers clip.
    MeanAbs(f32),
    /// `s = K(k)·mean|co|` with K chosen by bit-width: the MSE-optimal uniform quantizer of a
    /// Gaussian (Max 1960) puts a 3-level (k = 2) ADC's range at 1.22σ ≈ 1.5·mean|co| and a
    /// 7-level (k = 3) one at ≈ 1.86σ ≈ 2.3·mean|co|; from k = 4 (2.4σ ≈ 3·mean|co|) on, K = 3.
    Auto,
}

impl CoRange {
    /// The multiple of mean|co| that `Auto` uses at `k` bits.
    pub fn auto_factor(k: u8) -> f32 {
        match k {
            2 => 1.5,
            3 => 2.3,
            _ => 3.0,
        }
    }
}

impl fmt::Display for CoRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoRange::Max => write!(f, "max"),
            CoRange::MeanAbs(k) => write!(f, "mean:{k}"),
            CoRange::Auto => write!(f, "auto"),
        }
    }
}

impl FromStr for CoRange {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "co_range",
                format!("{s:?} must be \"max\" or \"mean:K\" with K > 0"),
            )
        };
        match s.split_once(':') {
            None if s == "max" => Ok(CoRange::Max),
            None if s == "auto" => Ok(CoRange::Auto),
            Some(("mean", k)) => {
                let k: f32 = k.parse().map_err(|_| bad())?;
                if k.is_finite() && k > 0.0 {
                    Ok(CoRange::MeanAbs(k))
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for CoRange {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<CoRange> for String {
    fn from(r: CoRange) -> String {
        r.to_string()
    }
}

fn mean_abs(co: &[f32]) -> f32 {
    let n = co.len().max(1);
    (co.par_chunks(CHUNK)
        .map(|xs| lane_sum(xs, |v| v.abs() as f64))
        .sum::<f64>()
        / n as f64) as f32
}

const CHUNK: usize = 16 * 1024;

/// Which side of zero a forward ADC's codes cover (k ≥ 2; a comparator and fp32 are unaffected).
/// `Default` is spec §2's bipolar read: what configs written before a polarity key existed ran
/// with (`serde(default)` on those keys), not the run default, which is unipolar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Polarity {
    /// `[−s, s]` with `2^k − 1` levels (spec §2's symmetric quantizer).
    #[default]
    Bipolar,
    /// `[0, s]` with `2^k` levels; a negative output reads 0, and its straight-through window
    /// is `0 ≤ co ≤ s`. `s` follows the range rule of a bipolar (k+1)-bit ADC, whose positive
    /// half has these very steps.
    Unipolar,
    /// The bipolar read's range rule and step `s/L` (`L = 2^(k−1) − 1`), with all `2^k` codes:
    /// `−L·s/L … (L+1)·s/L` (−s, 0, s, 2s at k = 2). Its straight-through window closes only
    /// above the top level: values below −s clip but still pass their gradient, as a partial
    /// sum whose sign the other arrays may change should. For partial sums (a column whose
    /// rows span several arrays) under unipolar layers (`CrossbarConfig::partial_polarity`).
    Skewed,
}

impl Polarity {
    pub fn parse(s: &str) -> Result<Self> {
        Self::parse_for("adc_polarity", s)
    }

    /// `parse` for the setting `key` (its name in the error).
    pub fn parse_for(key: &str, s: &str) -> Result<Self> {
        match s {
            "bipolar" => Ok(Polarity::Bipolar),
            "unipolar" => Ok(Polarity::Unipolar),
            "skewed" => Ok(Polarity::Skewed),
            _ => Err(Error::invalid(
                key,
                format!("unknown ADC polarity {s:?} (known: bipolar, unipolar, skewed)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Polarity::Bipolar => "bipolar",
            Polarity::Unipolar => "unipolar",
            Polarity::Skewed => "skewed",
        }
    }

    /// The polarity a `bits`-bit ADC reads one partial sum of a column with (its rows spanning
    /// several arrays), for layers of this polarity: in place of unipolar, whose reads clip each
    /// partial sum at 0, `partial` (`CrossbarConfig::partial_polarity`) at 2 bits — where the
    /// bipolar read leaves a quarter of the codes unused — and bipolar from 3 bits on (one code
    /// in 2^k; skewed 8-bit partial reads trained worse on one seed of three, docs/results.md);
    /// the other polarities as they are.
    pub fn for_partial_sums(self, partial: Polarity, bits: Bits) -> Self {
        match self {
            Polarity::Unipolar if bits == Bits::K(2) => partial,
            Polarity::Unipolar => Polarity::Bipolar,
            p => p,
        }
    }

    /// The polarity a `bits`-bit ADC reads with: unipolar only where there are levels to place.
    fn effective(self, bits: Bits) -> Self {
        if windowed(bits) {
            self
        } else {
            Polarity::Bipolar
        }
    }

    /// The ADC of this polarity for `bits` and range `s`.
    pub fn adc(self, bits: Bits, s: f32) -> Adc {
        match (self.effective(bits), bits) {
            (Polarity::Unipolar, Bits::K(k)) if s > 0.0 => {
                let levels = ((1u32 << k) - 1) as f32;
                Adc::Unipolar {
                    to: levels / s,
                    from: s / levels,
                    levels,
                }
            }
            (Polarity::Skewed, Bits::K(k)) if s > 0.0 => {
                let l = ((1u32 << (k - 1)) - 1) as f32;
                Adc::Skewed {
                    to: l / s,
                    from: s / l,
                    codes: ((1u32 << k) - 1) as f32,
                }
            }
            _ => Adc::new(bits, s),
        }
    }

    /// This batch's range `s` for a `bits`-bit ADC of this polarity under `rule`.
    pub fn batch_range(self, co: &[f32], bits: Bits, rule: CoRange) -> f32 {
        match (self.effective(bits), bits) {
            (Polarity::Unipolar, Bits::K(k)) => batch_range(co, Bits::K(k + 1), rule),
            _ => batch_range(co, bits, rule),
        }
    }

    /// The straight-through window `[lo, hi]` of a range `s`.
    pub fn window(self, bits: Bits, s: f32) -> (f32, f32) {
        match (self.effective(bits), symmetric_levels(bits)) {
            (Polarity::Unipolar, _) => (0.0, s),
            (Polarity::Skewed, Some(l)) => (f32::NEG_INFINITY, s + s / l),
            _ => (-s, s),
        }
    }
}

/// The reference a 1-bit ADC (comparator) compares each column against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Comparator {
    /// The column's mean (the batch's in training, a re-estimated one in evaluation) plus the
    /// trained bias; reads ±1.
    #[default]
    Centered,
    /// Zero; reads `±mean|co|`, the bias added digitally after the read.
    Zero,
}

impl Comparator {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "centered" => Ok(Comparator::Centered),
            "zero" => Ok(Comparator::Zero),
            _ => Err(Error::invalid(
                "comparator",
                format!("unknown comparator {s:?} (known: centered, zero)"),
            )),
        }
    }
}

/// Centre each row of `part` (`[rows, p]`, one row per column output) on its comparator
/// reference and add `threshold[c]·share` (the trained bias, split over the `1/share` arrays a
/// column spans; an empty slice = no bias). The reference is the row's batch mean in training,
/// folded into `running` like a running range (NaN = no batch seen yet), and `running` in
/// evaluation (the batch mean while it is NaN). With `refresh` (an evaluation pass over training
/// images) the batch mean replaces `running`: the average of past batches lags behind weights
/// that move every step, and a comparator flips on a small shift of its reference.
pub fn centre_rows(
    part: &mut [f32],
    p: usize,
    running: &mut [f32],
    threshold: &[f32],
    share: f32,
    train: bool,
    refresh: bool,
) {
    assert_eq!(part.len(), running.len() * p, "one running centre per row");
    part.par_chunks_mut(p.max(1))
        .zip(running.par_iter_mut())
        .enumerate()
        .for_each(|(c, (row, run))| {
            let mu = if train || refresh || run.is_nan() {
                (lane_sum(row, |v| v as f64) / p.max(1) as f64) as f32
            } else {
                *run
            };
            if train {
                *run = if run.is_nan() {
                    mu
                } else {
                    *run + RANGE_MOMENTUM * (mu - *run)
                };
            } else if refresh {
                *run = mu;
            }
            let shift = threshold.get(c).map_or(0.0, |b| b * share) - mu;
            row.iter_mut().for_each(|v| *v += shift);
        });
}

/// The straight-through window `lo ≤ v ≤ hi` as a 0/1 mask, or `None` when every value is
/// inside.
pub fn window_mask(co: &[f32], (lo, hi): (f32, f32)) -> Option<Vec<u8>> {
    if !outside_window(co, (lo, hi)) {
        return None;
    }
    let mut m = vec![0u8; co.len()];
    m.par_chunks_mut(CHUNK)
        .zip(co.par_chunks(CHUNK))
        .for_each(|(ms, xs)| {
            for (mm, v) in ms.iter_mut().zip(xs) {
                *mm = (lo <= *v && *v <= hi) as u8;
            }
        });
    Some(m)
}

/// Whether any value lies outside the straight-through window `lo ≤ v ≤ hi`.
pub fn outside_window(co: &[f32], (lo, hi): (f32, f32)) -> bool {
    !co.par_chunks(CHUNK)
        .all(|xs| xs.iter().all(|&v| lo <= v && v <= hi))
}

/// `mask[i] &= (lo ≤ co[i] ≤ hi)`: one array's straight-through window narrowing the mask of
/// the outputs it adds into (a `window_mask` ANDed in place, without forming it).
pub fn narrow_to_window(mask: &mut [u8], co: &[f32], (lo, hi): (f32, f32)) {
    assert_eq!(mask.len(), co.len());
    mask.par_chunks_mut(CHUNK)
        .zip(co.par_chunks(CHUNK))
        .for_each(|(ms, xs)| {
            for (m, v) in ms.iter_mut().zip(xs) {
                *m &= (lo <= *v && *v <= hi) as u8;
            }
        });
}

/// Whether a `bits`-bit ADC read has a straight-through window (k ≥ 2; a centred 1-bit
/// comparator has its own, `window_mask`).
pub fn windowed(bits: Bits) -> bool {
    matches!(bits, Bits::K(k) if k >= 2)
}

/// The symmetric level count `L = 2^(k−1) − 1` for k ≥ 2.
pub fn symmetric_levels(bits: Bits) -> Option<f32> {
    match bits {
        Bits::K(k) if k >= 2 => Some(((1u32 << (k - 1)) - 1) as f32),
        _ => None,
    }
}

/// The ADC transfer function for one bit-width and range, applied value by value.
#[derive(Clone, Copy, Debug)]
pub enum Adc {
    /// fp32: no conversion.
    Ideal,
    /// k = 1: a comparator, `±s`.
    Sign(f32),
    /// k ≥ 2: `L` levels each side in steps of `s/L` (`to = L/s`, `from = s/L`).
    Uniform { to: f32, from: f32, levels: f32 },
    /// A zero range: everything reads 0.
    Zero,
    /// k ≥ 2 unipolar (`Polarity::Unipolar`): `L = 2^k − 1` steps of `s/L` over [0, s].
    Unipolar { to: f32, from: f32, levels: f32 },
    /// k ≥ 2 skewed (`Polarity::Skewed`): steps of `from` (`to` = 1/step), the `codes + 1`
    /// levels `−1 … codes − 1` steps (`codes = 2^k − 1`).
    Skewed { to: f32, from: f32, codes: f32 },
}

impl Adc {
    pub fn new(bits: Bits, s: f32) -> Self {
        match bits {
            Bits::Fp32 => Adc::Ideal,
            Bits::K(1) => Adc::Sign(s),
            Bits::K(_) if s <= 0.0 => Adc::Zero,
            Bits::K(_) => {
                let levels = symmetric_levels(bits).expect("k >= 2");
                Adc::Uniform {
                    to: levels / s,
                    from: s / levels,
                    levels,
                }
            }
        }
    }

    /// `sign · ADC(v)` as an ADC of its own, for `sign` = ±1 (negating the output steps is
    /// exact); `None` where that is not a conversion (fp32, a zero range).
    pub fn signed(self, sign: f32) -> Option<Adc> {
        match self {
            Adc::Uniform { to, from, levels } => Some(Adc::Uniform {
                to,
                from: sign * from,
                levels,
            }),
            Adc::Unipolar { to, from, levels } => Some(Adc::Unipolar {
                to,
                from: sign * from,
                levels,
            }),
            Adc::Skewed { to, from, codes } => Some(Adc::Skewed {
                to,
                from: sign * from,
                codes,
            }),
            Adc::Sign(s) => Some(Adc::Sign(sign * s)),
            Adc::Ideal | Adc::Zero => None,
        }
    }

    /// The ADC's reading of `v` (one value; loops use [`with_adc!`], which this calls).
    #[inline]
    pub fn read(&self, v: f32) -> f32 {
        crate::with_adc!(*self, read => read(v))
    }
}

/// Run `$body` with `$read` bound to `adc`'s transfer function as a closure specialised to its
/// variant: a loop over `$read` then has no per-element branch on the variant and vectorizes.
/// Each closure computes exactly what [`Adc::read`] does.
#[macro_export]
macro_rules! with_adc {
    ($adc:expr, $read:ident => $body:expr) => {
        match $adc {
            $crate::quant::output::Adc::Ideal => {
                let $read = |v: f32| v;
                $body
            }
            $crate::quant::output::Adc::Sign(s) => {
                let $read = move |v: f32| if v >= 0.0 { s } else { -s };
                $body
            }
            $crate::quant::output::Adc::Uniform { to, from, levels } => {
                let $read = move |v: f32| $crate::quant::round_clamped(v * to, levels) * from;
                $body
            }
            $crate::quant::output::Adc::Zero => {
                let $read = |_: f32| 0.0f32;
                $body
            }
            $crate::quant::output::Adc::Unipolar { to, from, levels } => {
                let $read =
                    move |v: f32| $crate::quant::round_clamped_unipolar(v * to, levels) * from;
                $body
            }
            $crate::quant::output::Adc::Skewed { to, from, codes } => {
                // codes 0..=codes, one step below zero: the unipolar transfer shifted down
                let $read = move |v: f32| {
                    ($crate::quant::round_clamped_unipolar(v * to + 1.0, codes) - 1.0) * from
                };
                $body
            }
        }
    };
}

/// Quantize `co` in place with a given range `s` — the ADC transfer function (for k = 1, `s` is
/// the comparator's output magnitude).
pub fn quantize_with_range(co: &mut [f32], bits: Bits, s: f32) {
    convert(co, Adc::new(bits, s));
}

/// Read every value of `co` through `adc`, in place.
pub fn convert(co: &mut [f32], adc: Adc) {
    if let Adc::Ideal = adc {
        return;
    }
    with_adc!(adc, read => co.par_chunks_mut(CHUNK).for_each(|xs| {
        for v in xs {
            *v = read(*v);
        }
    }));
}

/// `dst = ADC_{s_pos}(pos) − ADC_{s_neg}(neg)`: the two phases of a signed transposed read
/// subtracted in one pass — bit for bit what `accumulate_read` of each phase into zeros gives.
pub fn read_difference(
    dst: &mut [f32],
    pos: &[f32],
    neg: &[f32],
    bits: Bits,
    s_pos: f32,
    s_neg: f32,
) {
    assert_eq!(dst.len(), pos.len());
    assert_eq!(dst.len(), neg.len());
    with_adc!(Adc::new(bits, s_pos), read_pos => with_adc!(Adc::new(bits, s_neg), read_neg => {
        dst.par_chunks_mut(CHUNK)
            .zip(pos.par_chunks(CHUNK))
            .zip(neg.par_chunks(CHUNK))
            .for_each(|((ds, ps), ns)| {
                for ((d, &a), &b) in ds.iter_mut().zip(ps).zip(ns) {
                    // the value of `0 += 1·a'; += −1·b'` (keep the `0.0 +`: 0 + −0 is +0)
                    *d = (0.0 + read_pos(a)) - read_neg(b);
                }
            })
    }));
}

/// `dst += sign · adc(part)`: an array's converted partial sums added into the digital
/// accumulator in one pass (the same arithmetic as quantizing `part` first).
pub fn accumulate_read(dst: &mut [f32], part: &[f32], adc: Adc, sign: f32) {
    assert_eq!(dst.len(), part.len());
    dst.par_chunks_mut(CHUNK)
        .zip(part.par_chunks(CHUNK))
        .for_each(|(ds, ps)| convert_into(ds, ps, adc, sign, |d, r| *d += r));
}

/// `accumulate_read` with `sign` 1 that also adds the unconverted `part` into `raw` (the sums
/// before the ADCs), in the same pass.
pub fn accumulate_read_and_raw(dst: &mut [f32], raw: &mut [f32], part: &[f32], adc: Adc) {
    assert_eq!(dst.len(), part.len());
    assert_eq!(raw.len(), part.len());
    with_adc!(adc, read => {
        dst.par_chunks_mut(CHUNK)
            .zip(raw.par_chunks_mut(CHUNK))
            .zip(part.par_chunks(CHUNK))
            .for_each(|((ds, rs), ps)| {
                for ((d, r), &v) in ds.iter_mut().zip(rs).zip(ps) {
                    *d += read(v);
                    *r += v;
                }
            })
    });
}

/// `accumulate_read` on the calling thread.
pub fn accumulate_read_block(dst: &mut [f32], part: &[f32], bits: Bits, s: f32, sign: f32) {
    convert_into(dst, part, Adc::new(bits, s), sign, |d, r| *d += r);
}

/// `accumulate_read_block` into zeros, without reading `dst` (whatever it held is overwritten):
/// `dst = 0 + sign · ADC(part)`, the first read into an accumulator that needs no zeroing.
pub fn first_read_block(dst: &mut [f32], part: &[f32], bits: Bits, s: f32, sign: f32) {
    // keep the `0.0 +`: it makes a −0 reading +0, as adding into zeros does
    convert_into(dst, part, Adc::new(bits, s), sign, |d, r| *d = 0.0 + r);
}

/// `put(d, sign · adc(v))` for each value `v` of `part` and `d` of `dst`, with the sign folded
/// into the ADC's output step where it can be (`Adc::signed`), so the loop is one conversion.
#[inline(always)]
fn convert_into(dst: &mut [f32], part: &[f32], adc: Adc, sign: f32, put: impl Fn(&mut f32, f32)) {
    assert_eq!(dst.len(), part.len());
    match adc.signed(sign) {
        Some(signed) => with_adc!(signed, read => {
            for (d, &v) in dst.iter_mut().zip(part) {
                put(d, read(v));
            }
        }),
        None => with_adc!(adc, read => {
            for (d, &v) in dst.iter_mut().zip(part) {
                put(d, sign * read(v));
            }
        }),
    }
}

/// Quantize one layer's outputs in place; the range comes from this batch. Returns `s`.
pub fn quantize(co: &mut [f32], bits: Bits, rule: CoRange) -> f32 {
    let s = batch_range(co, bits, rule);
    quantize_with_range(co, bits, s);
    s
}

/// Weight of the newest batch in a running range (as in BN's running statistics).
pub const RANGE_MOMENTUM: f32 = 0.1;

/// The range of this pass for a converter whose running range is `running`: in training the
/// batch's own (`batch()`), folded into `running`; in evaluation the running one, or the batch's
/// while no training batch has been seen (`running` = 0).
pub fn running_range(running: &mut f32, train: bool, batch: impl FnOnce() -> f32) -> f32 {
    let r = *running;
    let s = if train || r == 0.0 { batch() } else { r };
    if train {
        *running = if r == 0.0 {
            s
        } else {
            r + RANGE_MOMENTUM * (s - r)
        };
    }
    s
}

/// The range `s` that `rule` gives for this batch (0 for fp32).
pub fn batch_range(co: &[f32], bits: Bits, rule: CoRange) -> f32 {
    let max = || {
        co.par_chunks(CHUNK)
            .map(|xs| xs.iter().fold(0f32, |m, v| m.max(v.abs())))
            .reduce(|| 0.0, f32::max)
    };
    range_rule(bits, rule, || mean_abs(co), max)
}

/// What `rule` makes of a batch's mean |value| and max |value| (each computed only if needed).
fn range_rule(
    bits: Bits,
    rule: CoRange,
    mean: impl FnOnce() -> f32,
    max: impl FnOnce() -> f32,
) -> f32 {
    match (bits, rule) {
        (Bits::Fp32, _) => 0.0,
        (Bits::K(1), _) => mean(),
        (Bits::K(_), CoRange::Max) => max(),
        (Bits::K(_), CoRange::MeanAbs(k)) => k * mean(),
        (Bits::K(k), CoRange::Auto) => CoRange::auto_factor(k) * mean(),
    }
}

/// `batch_range`'s statistics of a batch gathered block by block (a product formed a few
/// samples at a time): `add` each block's values, then `range`. The max is exact; the mean sums
/// each block in f64 and adds the blocks in order, so it can differ from `batch_range`'s in the
/// last bit of the f32 result.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RangeStat {
    sum_abs: f64,
    max_abs: f32,
    count: usize,
}

impl RangeStat {
    /// The statistics of one block (on the calling thread): only those `rule` at `bits`
    /// uses (the other stays 0; each costs a pass over the block).
    pub fn of(xs: &[f32], bits: Bits, rule: CoRange) -> Self {
        let (mut sum_abs, mut max_abs) = (0.0, 0.0);
        range_rule(
            bits,
            rule,
            || {
                sum_abs = lane_sum(xs, |v| v.abs() as f64);
                0.0
            },
            || {
                max_abs = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
                0.0
            },
        );
        RangeStat {
            sum_abs,
            max_abs,
            count: xs.len(),
        }
    }

    /// Adds the next block's statistics.
    pub fn add(&mut self, o: &RangeStat) {
        self.sum_abs += o.sum_abs;
        self.max_abs = self.max_abs.max(o.max_abs);
        self.count += o.count;
    }

    /// The range `s` that `rule` gives for all the blocks added.
    pub fn range(&self, bits: Bits, rule: CoRange) -> f32 {
        let mean = || (self.sum_abs / self.count.max(1) as f64) as f32;
        range_rule(bits, rule, mean, || self.max_abs)
    }
}

/// Whether the straight-through backward passes at each value: inside the window of the range
/// `s` (k ≥ 2; `Polarity::window`); everywhere for k = 1 (as for 1-bit W) and fp32. `None`
/// when everything passes.
pub fn pass_mask(co: &[f32], bits: Bits, polarity: Polarity, s: f32) -> Option<Vec<u8>> {
    if windowed(bits) {
        window_mask(co, polarity.window(bits, s))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_stats_by_blocks_give_the_batch_range() {
        // multiples of 1/8 in −6.25..6.25: every sum is exact in f64, so the blocks' mean is
        // batch_range's to the bit as well as the max
        let xs: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.125)
            .collect();
        let settings = [
            (Bits::K(4), CoRange::Auto),
            (Bits::K(4), CoRange::Max),
            (Bits::K(3), CoRange::MeanAbs(2.5)),
            (Bits::K(1), CoRange::Auto),
            (Bits::Fp32, CoRange::Auto),
        ];
        for (bits, rule) in settings {
            let mut total = RangeStat::default();
            for b in xs.chunks(300) {
                total.add(&RangeStat::of(b, bits, rule));
            }
            assert_eq!(
                total.range(bits, rule),
                batch_range(&xs, bits, rule),
                "{bits:?} {rule:?}"
            );
        }
        // only what the rule uses is gathered
        let max = RangeStat::of(&xs, Bits::K(4), CoRange::Max);
        assert_eq!((max.sum_abs, max.max_abs, max.count), (0.0, 6.25, 1000));
        let mean = RangeStat::of(&xs, Bits::K(4), CoRange::Auto);
        assert_eq!((mean.max_abs, mean.count), (0.0, 1000));
        assert!(mean.sum_abs > 0.0);
    }

    #[test]
    fn narrowing_to_a_window_ands_the_window_mask() {
        let co = [0.5, 2.0, 0.1, -1.0, -1.5];
        let mut mask = vec![1, 1, 0, 1, 1];
        assert!(outside_window(&co, (-1.0, 1.0)));
        narrow_to_window(&mut mask, &co, (-1.0, 1.0));
        assert_eq!(mask, vec![1, 0, 0, 1, 0]);
        let want: Vec<u8> = [1u8, 1, 0, 1, 1]
            .iter()
            .zip(window_mask(&co, (-1.0, 1.0)).unwrap())
            .map(|(a, b)| a & b)
            .collect();
        assert_eq!(mask, want);
        // nothing outside: says so, and narrowing changes nothing
        let mut mask = vec![0, 1, 1, 1, 1];
        assert!(!outside_window(&co, (-2.0, 2.0)));
        narrow_to_window(&mut mask, &co, (-2.0, 2.0));
        assert_eq!(mask, vec![0, 1, 1, 1, 1]);
        // a unipolar window [0, s]: negatives are outside
        assert!(outside_window(&co, (0.0, 2.0)));
        assert_eq!(window_mask(&co, (0.0, 2.0)).unwrap(), vec![1, 1, 1, 0, 0]);
    }

    #[test]
    fn read_and_raw_in_one_pass_equal_two() {
        let part = [0.9, -0.01, 0.3, -0.4, 2.0, -3.0, 0.0, 1.7];
        let (d0, r0) = ([0.5; 8], [-0.25; 8]);
        for polarity in [Polarity::Bipolar, Polarity::Unipolar, Polarity::Skewed] {
            let adc = polarity.adc(Bits::K(3), 1.5);
            let (mut d1, mut r1) = (d0, r0);
            accumulate_read(&mut d1, &part, adc, 1.0);
            r1.iter_mut().zip(&part).for_each(|(r, v)| *r += v);
            let (mut d2, mut r2) = (d0, r0);
            accumulate_read_and_raw(&mut d2, &mut r2, &part, adc);
            assert_eq!((d1, r1), (d2, r2));
        }
    }

    #[test]
    fn signed_reads_equal_sign_times_the_read() {
        // the sign folded into the ADC's output step gives `sign · read(v)` bit for bit
        let part = [
            0.9, -0.01, 0.01, -0.4, 2.0, -3.0, 0.0, -0.0, 0.2143, -1.0e-8,
        ];
        let d0 = [0.5, -0.5, 0.0, 1.0, -2.0, 0.25, 0.0, 3.0, -1.5, 0.125];
        let bits_of = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        let want = |adc: Adc, sign: f32| -> Vec<u32> {
            let sum: Vec<f32> = d0
                .iter()
                .zip(&part)
                .map(|(d, &v)| d + sign * adc.read(v))
                .collect();
            bits_of(&sum)
        };
        for bits in [Bits::K(1), Bits::K(2), Bits::K(4), Bits::K(8), Bits::Fp32] {
            for s in [0.0, 0.7, 1.0] {
                for sign in [1.0f32, -1.0] {
                    let mut got = d0;
                    accumulate_read_block(&mut got, &part, bits, s, sign);
                    let expected = want(Adc::new(bits, s), sign);
                    assert_eq!(bits_of(&got), expected, "{bits:?} s {s} sign {sign}");
                    // the same through `accumulate_read`, for every polarity
                    for polarity in [Polarity::Bipolar, Polarity::Unipolar, Polarity::Skewed] {
                        let adc = polarity.adc(bits, s);
                        let mut got = d0;
                        accumulate_read(&mut got, &part, adc, sign);
                        let expected = want(adc, sign);
                        assert_eq!(bits_of(&got), expected, "{polarity:?} {bits:?} s {s}");
                    }
                }
            }
        }
    }

    /// `adc` reads each `(v, want)` as `want`, and NaN as NaN (a diverged value still shows).
    fn assert_reads(adc: Adc, cases: &[(f32, f32)]) {
        for &(v, want) in cases {
            assert_eq!(adc.read(v), want, "read({v})");
        }
        assert!(adc.read(f32::NAN).is_nan());
    }

    #[test]
    fn unipolar_adc_hand_values() {
        // k = 2, s = 3: four levels 0, 1, 2, 3; negatives read 0; ties round up; beyond s clips
        let adc = Polarity::Unipolar.adc(Bits::K(2), 3.0);
        let cases = [
            (-5.0, 0.0),
            (-0.2, 0.0),
            (0.0, 0.0),
            (0.49, 0.0),
            (0.5, 1.0),
            (1.2, 1.0),
            (1.5, 2.0),
            (2.6, 3.0),
            (7.0, 3.0),
        ];
        assert_reads(adc, &cases);
        // the bipolar read of the same width and range has three levels
        let bi = Polarity::Bipolar.adc(Bits::K(2), 3.0);
        assert_eq!(
            [bi.read(-2.0), bi.read(1.0), bi.read(2.0)],
            [-3.0, 0.0, 3.0]
        );
        // k = 4: 15 steps of s/15 over [0, s]
        let adc4 = Polarity::Unipolar.adc(Bits::K(4), 1.5);
        assert_eq!(adc4.read(0.75), 0.8);
        assert_eq!(adc4.read(-0.75), 0.0);
        // a comparator, fp32 and a zero range read as the bipolar ADC does
        for (bits, s) in [(Bits::K(1), 0.5), (Bits::Fp32, 0.0), (Bits::K(3), 0.0)] {
            let (u, b) = (Polarity::Unipolar.adc(bits, s), Adc::new(bits, s));
            for v in [-1.0, -0.1, 0.3, 2.0] {
                assert_eq!(u.read(v), b.read(v), "{bits:?}");
            }
        }
    }

    #[test]
    fn skewed_adc_hand_values() {
        // k = 2, s = 2: the bipolar step 2 and its spare code above, −2, 0, 2, 4; ties round up
        let adc = Polarity::Skewed.adc(Bits::K(2), 2.0);
        let cases = [
            (-5.0, -2.0),
            (-1.1, -2.0),
            (-1.0, 0.0),
            (-0.9, 0.0),
            (0.0, 0.0),
            (1.0, 2.0),
            (2.9, 2.0),
            (3.0, 4.0),
            (100.0, 4.0),
        ];
        assert_reads(adc, &cases);
        // k = 3, s = 3: step 1, codes −1 … 6; within [−s, s] away from ties the bipolar read's
        let adc3 = Polarity::Skewed.adc(Bits::K(3), 3.0);
        assert_eq!(
            [adc3.read(-4.0), adc3.read(5.6), adc3.read(9.0)],
            [-1.0, 6.0, 6.0]
        );
        let bi = Polarity::Bipolar.adc(Bits::K(3), 3.0);
        for v in [-0.9, -0.2, 0.3, 1.2, 2.4, 2.9] {
            assert_eq!(adc3.read(v), bi.read(v), "{v}");
        }
        // range rule and window: the bipolar rule; the window closes only above the top level
        let co: Vec<f32> = (0..100).map(|i| (i as f32 - 40.0) * 0.1).collect();
        for (k, rule) in [(2, CoRange::Auto), (4, CoRange::Max)] {
            assert_eq!(
                Polarity::Skewed.batch_range(&co, Bits::K(k), rule),
                batch_range(&co, Bits::K(k), rule)
            );
        }
        assert_eq!(
            Polarity::Skewed.window(Bits::K(2), 2.0),
            (f32::NEG_INFINITY, 4.0)
        );
        assert_eq!(
            Polarity::Skewed.window(Bits::K(3), 3.0),
            (f32::NEG_INFINITY, 4.0)
        );
        // a comparator and fp32 read as the bipolar ADC does
        for bits in [Bits::K(1), Bits::Fp32] {
            assert_eq!(Polarity::Skewed.window(bits, 2.0), (-2.0, 2.0));
            let (k, b) = (Polarity::Skewed.adc(bits, 0.5), Adc::new(bits, 0.5));
            for v in [-1.0, -0.1, 0.3, 2.0] {
                assert_eq!(k.read(v), b.read(v), "{bits:?}");
            }
        }
        // partial sums: unipolar layers read them as configured, the others as they read
        use Polarity::{Bipolar, Skewed, Unipolar};
        let two = Bits::K(2);
        assert_eq!(Unipolar.for_partial_sums(Skewed, two), Skewed);
        assert_eq!(Unipolar.for_partial_sums(Bipolar, two), Bipolar);
        assert_eq!(Bipolar.for_partial_sums(Skewed, two), Bipolar);
        assert_eq!(Skewed.for_partial_sums(Bipolar, two), Skewed);
        // wider ADCs read unipolar layers' partial sums bipolar
        for bits in [Bits::K(3), Bits::K(4), Bits::K(8)] {
            assert_eq!(Unipolar.for_partial_sums(Skewed, bits), Bipolar);
        }
        assert_eq!(Polarity::parse("skewed").unwrap(), Skewed);
        let e = Polarity::parse_for("partial_polarity", "up").unwrap_err();
        assert!(e.to_string().contains("partial_polarity"), "{e}");
    }

    #[test]
    fn unipolar_range_and_window() {
        let co: Vec<f32> = (0..100).map(|i| (i as f32 - 40.0) * 0.1).collect();
        // a unipolar k-bit ADC takes the range rule of a bipolar (k+1)-bit one
        for (k, rule) in [(2, CoRange::Auto), (3, CoRange::Auto), (4, CoRange::Max)] {
            assert_eq!(
                Polarity::Unipolar.batch_range(&co, Bits::K(k), rule),
                batch_range(&co, Bits::K(k + 1), rule)
            );
        }
        assert_eq!(
            Polarity::Unipolar.batch_range(&co, Bits::K(2), CoRange::Auto),
            2.3 * batch_range(&co, Bits::K(2), CoRange::MeanAbs(1.0))
        );
        for bits in [Bits::K(1), Bits::Fp32] {
            assert_eq!(
                Polarity::Unipolar.batch_range(&co, bits, CoRange::Auto),
                batch_range(&co, bits, CoRange::Auto)
            );
            assert_eq!(Polarity::Unipolar.window(bits, 2.0), (-2.0, 2.0));
        }
        assert_eq!(Polarity::Unipolar.window(Bits::K(2), 2.0), (0.0, 2.0));
        assert_eq!(Polarity::Bipolar.window(Bits::K(2), 2.0), (-2.0, 2.0));
        // the positive half of a bipolar (k+1)-bit read is the unipolar k-bit read
        let (u, b) = (
            Polarity::Unipolar.adc(Bits::K(3), 1.4),
            Polarity::Bipolar.adc(Bits::K(4), 1.4),
        );
        for &v in &co {
            assert_eq!(u.read(v), b.read(v).max(0.0), "{v}");
        }
        assert_eq!(Polarity::parse("unipolar").unwrap(), Polarity::Unipolar);
        assert!(Polarity::parse("signed").is_err());
    }

    #[test]
    fn first_read_is_a_read_into_zeros() {
        // readings of −0 (small negatives) become +0 as in `0 += ·`; old contents are ignored
        let part = [0.9, -0.01, 0.01, -0.4, 2.0, -3.0, 0.0, -0.0];
        for sign in [1.0, -1.0] {
            let mut want = vec![0.0; part.len()];
            accumulate_read_block(&mut want, &part, Bits::K(3), 1.0, sign);
            let mut got = vec![f32::NAN; part.len()];
            first_read_block(&mut got, &part, Bits::K(3), 1.0, sign);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "sign {sign}");
        }
    }

    #[test]
    fn centre_rows_hand_values() {
        // two columns of three outputs; no batch seen yet; bias split over two row blocks
        let mut part = vec![1.0, 2.0, 3.0, -1.0, -1.0, 2.0];
        let mut run = vec![f32::NAN; 2];
        centre_rows(&mut part, 3, &mut run, &[0.5, -1.0], 0.5, true, false);
        assert_eq!(part, vec![-0.75, 0.25, 1.25, -1.5, -1.5, 1.5]);
        assert_eq!(run, vec![2.0, 0.0]);
        // the next training batch: its own mean, folded into the running one with momentum 0.1
        let mut part = vec![4.0, 4.0, 4.0, 1.0, 1.0, 1.0];
        centre_rows(&mut part, 3, &mut run, &[], 1.0, true, false);
        assert_eq!(part, vec![0.0; 6]);
        assert_eq!(run, vec![2.0 + 0.1 * 2.0, 0.1]);
        // evaluation: the running reference, not the batch's, and it stays put
        let mut part = vec![4.0, 4.0, 4.0, 1.0, 1.0, 1.0];
        centre_rows(&mut part, 3, &mut run, &[], 1.0, false, false);
        assert_eq!(part[0], 4.0 - 2.2);
        assert_eq!(part[3], 1.0 - 0.1);
        assert_eq!(run, vec![2.2, 0.1]);
        // evaluation before any training batch falls back on the batch mean
        let mut part = vec![1.0, 3.0];
        let mut fresh = vec![f32::NAN];
        centre_rows(&mut part, 2, &mut fresh, &[], 1.0, false, false);
        assert_eq!(part, vec![-1.0, 1.0]);
        assert!(fresh[0].is_nan());
        // a refresh pass: the batch's mean replaces the running reference outright
        let mut part = vec![5.0, 7.0];
        centre_rows(&mut part, 2, &mut fresh, &[], 1.0, false, true);
        assert_eq!(part, vec![-1.0, 1.0]);
        assert_eq!(fresh, vec![6.0]);
    }

    #[test]
    fn window_mask_and_comparator_names() {
        assert_eq!(window_mask(&[0.5, -1.0], (-1.0, 1.0)), None);
        assert_eq!(
            window_mask(&[0.5, -1.5, 2.0], (-1.0, 1.0)),
            Some(vec![1, 0, 0])
        );
        assert_eq!(Comparator::parse("centered").unwrap(), Comparator::Centered);
        assert_eq!(Comparator::parse("zero").unwrap(), Comparator::Zero);
        let e = Comparator::parse("mean").unwrap_err().to_string();
        assert!(e.contains("comparator"), "{e}");
    }

    #[test]
    fn output_3bit_hand_values() {
        // k = 3: L = 3, s = max|co| = 3 -> step 1. 1.5 is a tie -> 2; -0.4 -> 0 (prints -0).
        let mut co = vec![3.0, -3.0, 1.5, -0.4, 0.6];
        let s = quantize(&mut co, Bits::K(3), CoRange::Max);
        assert_eq!(s, 3.0);
        assert_eq!(co, vec![3.0, -3.0, 2.0, -0.0, 1.0]);
    }

    #[test]
    fn output_2bit_is_ternary() {
        // k = 2: L = 1: values become -s, 0 or s.
        let mut co = vec![2.0, 0.9, 1.1, -1.2];
        quantize(&mut co, Bits::K(2), CoRange::Max);
        assert_eq!(co, vec![2.0, 0.0, 2.0, -2.0]);
    }

    #[test]
    fn output_1bit_is_sign_times_mean() {
        let mut co = vec![2.0, -1.0, 0.0, -1.0];
        quantize(&mut co, Bits::K(1), CoRange::Max);
        assert_eq!(co, vec![1.0, -1.0, 1.0, -1.0]);
    }

    #[test]
    fn output_mean_range_clips_outliers() {
        // mean|co| = (8 + 1 + 1 + 2)/4 = 3; K = 1 -> s = 3, k = 3 -> step 1: 8 clips to 3.
        let mut co = vec![8.0, -1.0, 1.0, 2.0];
        let s = quantize(&mut co, Bits::K(3), CoRange::MeanAbs(1.0));
        assert_eq!(s, 3.0);
        assert_eq!(co, vec![3.0, -1.0, 1.0, 2.0]);
        assert_eq!(
            "mean:2.5".parse::<CoRange>().unwrap(),
            CoRange::MeanAbs(2.5)
        );
        assert_eq!("max".parse::<CoRange>().unwrap(), CoRange::Max);
        assert_eq!("auto".parse::<CoRange>().unwrap(), CoRange::Auto);
        // auto is mean:1.5 at 2 bits, mean:2.3 at 3, mean:3 from 4 bits on — to the last bit
        let co: Vec<f32> = (0..50).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
        for (k, m) in [(2u8, 1.5f32), (3, 2.3), (4, 3.0), (8, 3.0)] {
            let (mut a, mut b) = (co.clone(), co.clone());
            assert_eq!(
                quantize(&mut a, Bits::K(k), CoRange::Auto),
                quantize(&mut b, Bits::K(k), CoRange::MeanAbs(m))
            );
            assert_eq!(a, b);
        }
        for bad in ["mean", "mean:0", "mean:-1", "min", "mean:x"] {
            assert!(bad.parse::<CoRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn output_with_a_fixed_range_clips() {
        // k = 3, s = 1.5: step 0.5; 4.0 clips to 1.5; -0.3 -> -0.5 (0.6 -> 1 level).
        let mut co = vec![4.0, -0.3, 0.2];
        quantize_with_range(&mut co, Bits::K(3), 1.5);
        assert_eq!(co, vec![1.5, -0.5, 0.0]);
        let mut co = vec![4.0, -0.3];
        quantize_with_range(&mut co, Bits::K(1), 0.7);
        assert_eq!(co, vec![0.7, -0.7]);
    }

    #[test]
    fn output_fp32_and_all_zero() {
        let mut co = vec![0.123, -4.0];
        quantize(&mut co, Bits::Fp32, CoRange::Max);
        assert_eq!(co, vec![0.123, -4.0]);
        let mut z = vec![0.0; 3];
        quantize(&mut z, Bits::K(4), CoRange::Max);
        assert_eq!(z, vec![0.0; 3]);
    }
}
