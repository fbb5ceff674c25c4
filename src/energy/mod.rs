//! Energy per image per training iteration (spec §5, the paper's Table II): operation counts
//! (measured in a run's `counters.json`, or computed from the geometry in `counts`) priced by a
//! preset (`preset`) in `model`; the host side (Others, CPU/GPU) in `host`.

pub mod counts;
pub mod host;
pub mod model;
pub mod preset;

use crate::config::RunConfig;
use crate::counters::CountersReport;
use crate::crossbar::Hardware;
use crate::error::Result;
use model::EnergyReport;
use preset::EnergyPreset;

/// Default fraction of cells rewritten per step for analytic counts.
pub const DEFAULT_WRITE_FRACTION: f64 = 0.01;

/// RRAM Conv+FC energy of a run's configuration: from its measured counters when it ran on the
/// arrays, else from the geometry (the same network and bits on the configured arrays).
/// Returns the report and `"measured"` or `"analytic"`.
pub fn for_run(
    cfg: &RunConfig,
    measured: Option<&CountersReport>,
    preset: &EnergyPreset,
) -> Result<(EnergyReport, &'static str)> {
    if let Some(c) = measured.filter(|c| c.hardware == Hardware::Rram.as_str() && c.images > 0) {
        return Ok((model::estimate(c, preset), "measured"));
    }
    let geoms = crate::models::geometry::of_variant(cfg.model.as_str(), cfg.variant())?;
    let counts = counts::analytic(
        &geoms,
        cfg.bits,
        Hardware::Rram,
        &cfg.crossbar,
        counts::CentredBackward::of(cfg),
        cfg.batch,
        DEFAULT_WRITE_FRACTION,
    );
    Ok((model::estimate(&counts, preset), "analytic"))
}
