//! The CPU and GPU side of Table II. "Others" (BN, activations, pooling, loss, optimizer
//! bookkeeping…) runs on a host in every system. Two sources:
//! - the paper's measured platform (Intel i7-6900K CPU, NVIDIA Titan X Pascal GPU; Table II of
//!   Cai et al., ASP-DAC 2018), so its 23.0× and 4.4× are reproduced by construction;
//! - this machine, from timing: no RAPL or NVML counters are exposed here (checked at run time),
//!   so energy is *modelled* as an assumed power × measured time, and labelled so.

use serde::Serialize;

/// Conv+FC and Others energy of one platform, µJ per image per iteration.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HostFigures {
    pub platform: String,
    pub conv_fc_uj: f64,
    pub others_uj: f64,
    /// `measured` (energy counters), `modelled` (power × time) or `paper` (published figures).
    pub source: String,
}

impl HostFigures {
    pub fn all_uj(&self) -> f64 {
        self.conv_fc_uj + self.others_uj
    }
}

/// The paper's Table II rows for `model` (CPU, GPU), if it reports that model.
pub fn paper_platform(model: &str) -> Option<[HostFigures; 2]> {
    let (cpu, gpu) = match model {
        "lenet5" => ((7997.6, 1015.6), (11824.9, 491.3)),
        "resnet20" => ((262523.4, 74414.1), (133066.9, 34465.2)),
        _ => return None,
    };
    let mk = |name: &str, (c, o): (f64, f64)| HostFigures {
        platform: name.to_string(),
        conv_fc_uj: c,
        others_uj: o,
        source: "paper".into(),
    };
    Some([
        mk("CPU i7-6900K (paper)", cpu),
        mk("GPU Titan X Pascal (paper)", gpu),
    ])
}

/// Whether the OS exposes RAPL energy counters (Linux powercap).
pub fn rapl_available() -> bool {
    std::path::Path::new("/sys/class/powercap/intel-rapl:0/energy_uj").exists()
}

/// Modelled host energy from measured seconds per image: `watts × seconds`.
pub fn modelled(platform: &str, watts: f64, conv_fc_s: f64, others_s: f64) -> HostFigures {
    HostFigures {
        platform: platform.to_string(),
        conv_fc_uj: watts * conv_fc_s * 1e6,
        others_uj: watts * others_s * 1e6,
        source: format!("modelled: {watts} W × measured time"),
    }
}
