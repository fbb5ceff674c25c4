//! `rram disturb`: (1) program each model's freshly initialised weights onto arrays with the
//! configured disturbance and report the realised write-error distribution (moments, histogram);
//! (2) train at each requested disturbance width (reusing finished runs) and tabulate and plot
//! test accuracy against the width. Writes `disturbance.md`, `disturbance.json` and SVG plots.

use super::args::DisturbArgs;
use super::resolve::{apply_length_args, apply_run_args};
use anyhow::{Context, Result, bail};
use rram::config::{ModelKind, RunConfig};
use rram::device::disturbance::Disturbance;
use rram::report::disturbance::{Moments, WidthPoint, bin, realised, width_of};
use rram::report::plots::{Series, histogram, line_plot};
use rram::run::run_dir::{self, RunDir, write_atomic};
use rram::train::trainer::{self, Monitor, Summary};
use std::fmt::Write as _;
use std::path::Path;

struct EpochLines(String);
impl Monitor for EpochLines {
    fn epoch_end(&mut self, m: &serde_json::Value) {
        eprintln!(
            "  {} epoch {}: test {:.2}%",
            self.0,
            m["epoch"],
            m["test_accuracy"].as_f64().unwrap_or(0.0) * 100.0
        );
    }
}

fn disturbance(kind: &str, w: f64) -> Result<Disturbance> {
    if w == 0.0 {
        return Ok(Disturbance::None);
    }
    Ok(format!("{kind}:{w}").parse()?)
}

fn read_point(dir: &Path) -> Result<WidthPoint> {
    let cfg = RunConfig::load(&dir.join(run_dir::CONFIG))?;
    let text = std::fs::read_to_string(dir.join(run_dir::SUMMARY))
        .with_context(|| format!("{}: no finished run (summary.json)", dir.display()))?;
    let s: Summary = serde_json::from_str(&text)
        .with_context(|| format!("{}: bad summary.json", dir.display()))?;
    Ok(WidthPoint {
        run: dir.display().to_string(),
        disturb: cfg.crossbar.disturb.to_string(),
        width: width_of(&cfg),
        test_accuracy: s.test_accuracy,
        best_test_accuracy: s.best_test_accuracy,
        diverged: s.failed(),
    })
}

pub fn run(a: DisturbArgs) -> Result<()> {
    let mut base = RunConfig::default();
    apply_run_args(&mut base, &a.run)?;
    apply_length_args(&mut base, &a.length);
    base.validate()?;
    if !["uniform", "gaussian", "lognormal"].contains(&a.kind.as_str()) {
        bail!(
            "invalid kind: {:?} (known: uniform, gaussian, lognormal)",
            a.kind
        );
    }
    // Everything the user typed is checked before anything is written or trained: a bad width
    // or an unreadable `--runs` folder must not surface after hours of training.
    let mut width_cfgs = Vec::with_capacity(a.widths.len());
    for &w in &a.widths {
        if !(w.is_finite() && w >= 0.0) {
            bail!("invalid widths: {w} must be >= 0");
        }
        let mut cfg = base.clone();
        cfg.crossbar.disturb = disturbance(&a.kind, w)?;
        cfg.validate()?;
        width_cfgs.push((w, cfg));
    }
    let mut points: Vec<WidthPoint> = a
        .runs
        .iter()
        .map(|d| read_point(d))
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut md = String::new();
    let mut json = serde_json::Map::new();

    // (1) realised distribution per model
    let models = match &a.run.model {
        Some(_) => vec![base.model],
        None => vec![ModelKind::Lenet5, ModelKind::Lenet5Caffe],
    };
    let d = base.crossbar.disturb;
    writeln!(md, "# Write disturbance\n")?;
    writeln!(
        md,
        "## Realised write error ({d}, W = {} bits, seed {})\n\nEach model's initial weights \
         programmed once onto {}x{} arrays. `cond` is the relative conductance error G/G_target − 1 \
         of every written cell; `weight` is w_eff − w_q in units of the largest |w_q| of its layer.\n",
        base.bits.w, base.seed, base.crossbar.tile_rows, base.crossbar.tile_cols
    )?;
    writeln!(
        md,
        "| model | quantity | cells | mean | sd | skewness | excess kurtosis | min | max |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|")?;
    let mut figures = String::new();
    for m in &models {
        let r = realised(*m, base.bits, &base.crossbar, base.seed);
        for (what, xs) in [("cond", &r.cond_error), ("weight", &r.weight_error)] {
            let mo = Moments::of(xs);
            writeln!(
                md,
                "| {} | {what} | {} | {:.5} | {:.5} | {:.3} | {:.3} | {:.5} | {:.5} |",
                m.as_str(),
                mo.n,
                mo.mean,
                mo.sd,
                mo.skewness,
                mo.excess_kurtosis,
                mo.min,
                mo.max
            )?;
            json.insert(format!("{}_{what}", m.as_str()), serde_json::to_value(&mo)?);
        }
        let lim = r.cond_error.iter().fold(1e-6f32, |a, v| a.max(v.abs())) as f64 * 1.05;
        let counts = bin(&r.cond_error, -lim, lim, 41);
        let svg = a.out.join(format!("write_error_{}.svg", m.as_str()));
        histogram(
            &svg,
            &format!("{} realised write error ({d})", m.as_str()),
            "G/G_target - 1",
            -lim,
            2.0 * lim / 41.0,
            &counts,
        )?;
        writeln!(
            figures,
            "![{} write error]({})",
            m.as_str(),
            svg.file_name().unwrap().to_string_lossy()
        )?;
    }
    writeln!(md, "\n{figures}")?;

    // (2) accuracy against the width
    for (w, cfg) in &width_cfgs {
        let dir = a.out.join(format!("{}-{w}", a.kind));
        if !dir.join(run_dir::SUMMARY).is_file() {
            eprintln!(
                "training {} (disturb {})",
                dir.display(),
                cfg.crossbar.disturb
            );
            let rd = RunDir::create(&dir)?;
            let resume = dir.join(run_dir::CHECKPOINT).is_file();
            trainer::train(
                cfg,
                &rd,
                resume,
                &mut EpochLines(cfg.crossbar.disturb.to_string()),
            )?;
        }
        points.push(read_point(&dir)?);
    }
    if !points.is_empty() {
        points.sort_by(|x, y| x.width.total_cmp(&y.width));
        writeln!(md, "## Test accuracy against the disturbance width\n")?;
        writeln!(
            md,
            "| disturbance | width | test accuracy | best | failed | run |"
        )?;
        writeln!(md, "|---|---|---|---|---|---|")?;
        for p in &points {
            writeln!(
                md,
                "| {} | {} | {:.4} | {:.4} | {} | {} |",
                p.disturb, p.width, p.test_accuracy, p.best_test_accuracy, p.diverged, p.run
            )?;
        }
        let svg = a.out.join("accuracy_vs_disturbance.svg");
        line_plot(
            &svg,
            "Test accuracy against write disturbance",
            "disturbance width",
            "test accuracy",
            &[Series {
                name: format!("{} {}", base.model.as_str(), base.bits),
                points: points.iter().map(|p| (p.width, p.test_accuracy)).collect(),
            }],
        )?;
        writeln!(
            md,
            "\n![accuracy against disturbance](accuracy_vs_disturbance.svg)"
        )?;
        json.insert("accuracy".into(), serde_json::to_value(&points)?);
    }
    write_atomic(&a.out.join("disturbance.md"), md.as_bytes())?;
    write_atomic(
        &a.out.join("disturbance.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!("{md}");
    Ok(())
}
