//! `rram energy` (Table II: RRAM vs CPU vs GPU, per image per training iteration) and
//! `rram tradeoff` (accuracy against RRAM energy for finished runs, with the Pareto front).

use super::args::{EnergyArgs, TradeoffArgs};
use super::bench::bench_one;
use anyhow::{Context, Result, bail};
use rram::config::{ModelKind, RunConfig};
use rram::counters::CountersReport;
use rram::crossbar::{AdcMode, CrossbarConfig, Hardware, SignedInput};
use rram::energy::host::{self, HostFigures};
use rram::energy::model::{EnergyReport, estimate};
use rram::energy::preset::EnergyPreset;
use rram::energy::{counts, for_run};
use rram::models::{Variant, geometry};
use rram::quant::BitWidths;
use rram::report::plots::{Series, line_plot};
use rram::run::run_dir::{self, write_atomic};
use rram::train::trainer::{Summary, load_data};
use std::fmt::Write as _;
use std::path::Path;

fn read_counters(p: &Path) -> Result<CountersReport> {
    let file = if p.is_dir() {
        p.join(run_dir::COUNTERS)
    } else {
        p.to_path_buf()
    };
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a counters.json", file.display()))
}

/// Seconds per image on this machine's CPU for Conv+FC and for the rest (fp32, ideal engine).
fn time_host(model: ModelKind, threads: Option<usize>) -> Result<(f64, f64)> {
    let mut cfg = RunConfig {
        model,
        bits: BitWidths::FP32,
        hardware: Hardware::Ideal,
        ..RunConfig::default()
    };
    if let Some(t) = threads {
        cfg.threads = t;
    }
    let (train, _, _) = load_data(&RunConfig {
        train_limit: Some(64 * cfg.batch),
        ..cfg.clone()
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()?;
    let o = pool.install(|| bench_one(&cfg, &train, 30, 3));
    let conv_fc: f64 = o
        .breakdown
        .iter()
        .filter(|(k, _)| k.starts_with("conv") || k.starts_with("fc"))
        .map(|(_, v)| v)
        .sum();
    let others: f64 = o
        .breakdown
        .iter()
        .filter(|(k, _)| !(k.starts_with("conv") || k.starts_with("fc")))
        .map(|(_, v)| v)
        .sum();
    Ok((conv_fc / cfg.batch as f64, others / cfg.batch as f64))
}

fn fmt_table(rows: &[HostFigures], rram_all: f64) -> String {
    let mut s = String::from(
        "| platform | Conv+FC (µJ) | Others (µJ) | All (µJ) | Conv+FC share | All / RRAM All | source |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {:.1}% | {:.1}× | {} |",
            r.platform,
            r.conv_fc_uj,
            r.others_uj,
            r.all_uj(),
            100.0 * r.conv_fc_uj / r.all_uj().max(1e-12),
            r.all_uj() / rram_all,
            r.source
        );
    }
    s
}

fn breakdown(e: &EnergyReport) -> String {
    let mut s = String::from(
        "| layer / phase | DAC | ADC | cell read | cell write | digital MAC | digital other | buffer | total |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let row = |s: &mut String, name: &str, c: &rram::energy::model::Components| {
        let _ = writeln!(
            s,
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            c.dac,
            c.adc,
            c.cell_read,
            c.cell_write,
            c.digital_mac,
            c.digital_other,
            c.buffer,
            c.total()
        );
    };
    for l in &e.layers {
        let mut c = rram::energy::model::Components::default();
        for p in &l.phases {
            c.add(&p.components);
        }
        row(&mut s, &l.layer, &c);
    }
    for p in &e.by_phase {
        row(
            &mut s,
            &format!("all, {:?}", p.phase).to_lowercase(),
            &p.components,
        );
    }
    row(&mut s, "**Conv+FC**", &e.components);
    s
}

pub fn run(a: EnergyArgs) -> Result<()> {
    let preset = EnergyPreset::load(&a.preset)?;
    let bits: BitWidths = a.bits.parse()?;
    let mut xbar = CrossbarConfig::default();
    (xbar.tile_rows, xbar.tile_cols) = CrossbarConfig::parse_size(&a.xbar)?;
    xbar.adc = AdcMode::parse(&a.adc)?;
    xbar.signed_input = SignedInput::parse(&a.signed_input)?;
    if a.batch == 0 {
        bail!("invalid batch: must be at least 1");
    }
    if !(a.write_fraction.is_finite() && (0.0..=1.0).contains(&a.write_fraction)) {
        bail!(
            "invalid write-fraction: {} must be in [0, 1]",
            a.write_fraction
        );
    }
    let variant = Variant {
        fp32_first_last: a.fp32_first_last,
        logit_columns: a.logit_columns,
    };
    let geoms = geometry::of_variant(&a.model, variant)?;
    let (counts, source) = match &a.counters {
        Some(p) => (read_counters(p)?, format!("measured ({})", p.display())),
        None => (
            counts::analytic(
                &geoms,
                bits,
                Hardware::Rram,
                &xbar,
                // `rram train`'s default reads: centred comparators, plain multi-bit ADCs
                counts::CentredBackward::of(&RunConfig::default()),
                a.batch,
                a.write_fraction,
            ),
            format!("analytic, {} cells rewritten per step", a.write_fraction),
        ),
    };
    let e = estimate(&counts, &preset);
    let mut rows: Vec<HostFigures> = Vec::new();
    let paper = host::paper_platform(&a.model);
    if let Some(p) = &paper {
        rows.extend(p.iter().cloned());
    }
    let others = paper.as_ref().map_or(0.0, |p| p[1].others_uj);
    rows.push(HostFigures {
        platform: format!("RRAM (preset {}; Others = paper GPU)", preset.name),
        conv_fc_uj: e.conv_fc_uj,
        others_uj: others,
        source: source.clone(),
    });
    if let Some(w) = a.host_watts {
        if !(w.is_finite() && w > 0.0) {
            bail!("invalid host-watts: {w} must be > 0");
        }
        let model =
            ModelKind::parse(&a.model).context("host timing needs a model rram can train")?;
        let (cf, ot) = time_host(model, a.threads)?;
        let label = if host::rapl_available() {
            "this machine's CPU (RAPL present, modelled anyway)"
        } else {
            "this machine's CPU (no RAPL: modelled)"
        };
        let h = host::modelled(label, w, cf, ot);
        rows.push(HostFigures {
            platform: format!("RRAM (preset {}; Others = this machine's CPU)", preset.name),
            conv_fc_uj: e.conv_fc_uj,
            others_uj: h.others_uj,
            source: format!("{source}; Others {}", h.source),
        });
        rows.push(h);
    }
    let rram_all = e.conv_fc_uj + others;
    if a.json {
        let v = serde_json::json!({
            "model": a.model, "bits": bits.to_string(), "xbar": a.xbar, "batch": a.batch,
            "signed_input": a.signed_input,
            "counts": source, "energy": e, "table": rows,
            "macs_per_image": geoms.iter().map(|g| g.macs()).sum::<u64>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "Energy per image per training iteration, {} at A,CO,W,G = {bits}, {} arrays, {} backward read, batch {}, preset {} ({source})\n",
        a.model, a.xbar, a.signed_input, a.batch, preset.name
    );
    println!("{}", fmt_table(&rows, rram_all));
    println!("RRAM Conv+FC by layer, phase and component (µJ per image per iteration):\n");
    println!("{}", breakdown(&e));
    Ok(())
}

/// Indices of the points not dominated by another (higher accuracy and lower energy).
pub fn pareto(points: &[(f64, f64)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(e, acc)| {
            !points
                .iter()
                .any(|&(e2, a2)| (e2 <= e && a2 >= acc) && (e2 < e || a2 > acc))
        })
        .collect()
}

pub fn tradeoff(a: TradeoffArgs) -> Result<()> {
    let preset = EnergyPreset::load(&a.preset)?;
    let mut rows = Vec::new();
    for dir in &a.runs {
        let cfg = RunConfig::load(&dir.join(run_dir::CONFIG))?;
        let s: Summary = serde_json::from_str(
            &std::fs::read_to_string(dir.join(run_dir::SUMMARY))
                .with_context(|| format!("{}: no summary.json", dir.display()))?,
        )?;
        let measured = read_counters(dir).ok();
        let (e, src) = for_run(&cfg, measured.as_ref(), &preset)?;
        rows.push((dir.display().to_string(), cfg, s, e.conv_fc_uj, src));
    }
    let pts: Vec<(f64, f64)> = rows.iter().map(|r| (r.3, r.2.test_accuracy)).collect();
    let front = pareto(&pts);
    let mut md = format!(
        "# Accuracy against RRAM energy (preset {})\n\n| run | hardware | bits | disturb | test accuracy | status | Conv+FC µJ/image/iter | counts | Pareto |\n|---|---|---|---|---|---|---|---|---|\n",
        preset.name
    );
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&i, &j| pts[i].0.total_cmp(&pts[j].0));
    for &i in &order {
        let (d, cfg, s, e, src) = &rows[i];
        writeln!(
            md,
            "| {d} | {} | {} | {} | {:.4} | {} | {:.3} | {src} | {} |",
            cfg.hardware.as_str(),
            cfg.bits,
            cfg.disturb_label(),
            s.test_accuracy,
            s.status(),
            e,
            if front[i] { "yes" } else { "" }
        )?;
    }
    std::fs::create_dir_all(&a.out)?;
    let mut all: Vec<(f64, f64)> = order.iter().map(|&i| pts[i]).collect();
    all.dedup();
    let fr: Vec<(f64, f64)> = order
        .iter()
        .filter(|&&i| front[i])
        .map(|&i| pts[i])
        .collect();
    line_plot(
        &a.out.join("tradeoff.svg"),
        "Accuracy against RRAM energy",
        "Conv+FC energy per image per iteration (uJ)",
        "test accuracy",
        &[
            Series {
                name: "runs".into(),
                points: all,
            },
            Series {
                name: "Pareto front".into(),
                points: fr,
            },
        ],
    )?;
    writeln!(md, "\n![tradeoff](tradeoff.svg)")?;
    write_atomic(&a.out.join("tradeoff.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}
