//! `rram report DIR`: from a sweep folder's index only (nothing is rerun), Table I in the paper's
//! layout (accuracy per setting without / with each disturbance, mean ± sd over seeds, diverged
//! runs called out), Table II-style energies, and SVG plots — test error against epoch (Fig. 3
//! style), accuracy against disturbance width, accuracy against energy with the Pareto front —
//! linked from `report.md`.

use super::args::ReportArgs;
use super::energy::pareto;
use super::sweep::read_index;
use anyhow::{Result, bail};
use rram::config::RunConfig;
use rram::counters::CountersReport;
use rram::energy::for_run;
use rram::energy::preset::EnergyPreset;
use rram::report::disturbance::width_of;
use rram::report::plots::{Series, line_plot};
use rram::run::run_dir::{self, write_atomic};
use rram::run::store::{Entry, INDEX};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the paper's Table I (LeNet-5/MNIST) gives for a setting.
#[derive(Clone, Copy)]
enum Paper {
    Acc(f64),
    /// "-": failed to train a convergent model.
    Fails,
    /// "*": not reported (fp32 with disturbance).
    NotReported,
}
use Paper::{Acc, Fails, NotReported};

/// The paper's Table I: (bits, without, with).
const PAPER_TABLE1: [(&str, Paper, Paper); 10] = [
    ("32,32,32,32", Acc(0.9914), NotReported),
    ("8,8,8,8", Acc(0.9828), Acc(0.9825)),
    ("6,6,6,6", Acc(0.9745), Acc(0.9733)),
    ("4,4,4,4", Acc(0.9767), Acc(0.9797)),
    ("3,3,2,4", Acc(0.9687), Acc(0.9736)),
    ("2,2,2,2", Acc(0.9670), Acc(0.9752)),
    ("2,2,1,4", Fails, Fails),
    ("2,2,2,1", Acc(0.9633), Acc(0.9647)),
    ("1,1,2,1", Acc(0.9416), Acc(0.9375)),
    ("1,1,1,1", Fails, Fails),
];

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

fn cell(group: &[&Entry]) -> String {
    let ok: Vec<f64> = group
        .iter()
        .filter(|e| !e.summary.failed())
        .map(|e| e.summary.test_accuracy)
        .collect();
    let count = |status: &str| {
        group
            .iter()
            .filter(|e| e.summary.status() == status)
            .count()
    };
    let failures: Vec<String> = ["diverged", "stalled"]
        .iter()
        .filter(|s| count(s) > 0)
        .map(|s| format!("{} {s}", count(s)))
        .collect();
    if ok.is_empty() {
        return format!("failed ({}/{})", failures.join(", "), group.len());
    }
    let (m, sd) = mean_sd(&ok);
    let extra = if failures.is_empty() {
        String::new()
    } else {
        format!("; {}", failures.join(", "))
    };
    format!("{m:.4} ± {sd:.4} (n={}{extra})", ok.len())
}

/// A run's folder: where the sweep that indexed it put it (`<sweep>/runs/<name>`), so the report
/// finds it from any working directory (the index holds the path as the sweep was given it);
/// else the indexed path itself.
fn run_folder(sweep: &Path, e: &Entry) -> PathBuf {
    let inside = super::sweep::run_dir(sweep, &e.name);
    if inside.is_dir() {
        inside
    } else {
        PathBuf::from(&e.dir)
    }
}

/// Mean test error per epoch over a group's runs (from their metrics.jsonl).
fn error_curve(group: &[&Entry]) -> Vec<(f64, f64)> {
    let mut by_epoch: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for e in group {
        let Ok(text) = std::fs::read_to_string(Path::new(&e.dir).join(run_dir::METRICS)) else {
            continue;
        };
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let (Some(ep), Some(acc)) = (v["epoch"].as_u64(), v["test_accuracy"].as_f64())
            {
                by_epoch.entry(ep).or_default().push(1.0 - acc);
            }
        }
    }
    by_epoch
        .into_iter()
        .map(|(ep, v)| (ep as f64, v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}

/// A Table I row: the settings its runs share, but for the seed and the disturbance (columns).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    model: String,
    hardware: String,
    bits: String,
    /// The other settings in which this sweep's runs differ (e.g. `g_scale=vector`), or "".
    variant: String,
    /// Those of them that this row sets away from the model's defaults (the plots' legend).
    changed: String,
}

/// Settings that never make a row of their own: those the row already names (the dataset follows
/// the model), the seed and disturbance (columns), where the data is, and how the work is split.
const NOT_VARIANTS: [&str; 9] = [
    "model",
    "dataset",
    "hardware",
    "bits",
    "seed",
    "crossbar.disturb",
    "data",
    "threads",
    "eval_batch",
];

/// A config as `dotted.key → value`, nested tables flattened.
fn flat(cfg: &RunConfig) -> BTreeMap<String, String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                toml::Value::String(s) => {
                    out.insert(key, s.clone());
                }
                v => {
                    out.insert(key, v.to_string());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(t) = toml::Table::try_from(cfg) {
        walk("", &t, &mut out);
    }
    out
}

/// Every run's row, and whether any row names other settings: the (model, hardware, bits) plus
/// the settings (besides `NOT_VARIANTS`) whose values differ between the runs.
fn rows_of(entries: &[Entry]) -> (Vec<Row>, bool) {
    let flats: Vec<_> = entries.iter().map(|e| flat(&e.config)).collect();
    let mut keys: Vec<&String> = flats.iter().flat_map(|f| f.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.retain(|k| {
        !NOT_VARIANTS.contains(&k.as_str()) && flats.iter().any(|f| f.get(*k) != flats[0].get(*k))
    });
    let rows = entries
        .iter()
        .zip(&flats)
        .map(|(e, f)| {
            let defaults = flat(&RunConfig::defaults_for(e.config.model));
            let pairs = |only_changed: bool| {
                keys.iter()
                    .filter(|k| !only_changed || f.get(**k) != defaults.get(**k))
                    .map(|k| format!("{k}={}", f.get(*k).map_or("–", String::as_str)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Row {
                model: e.config.model.as_str().to_string(),
                hardware: e.config.hardware.as_str().to_string(),
                bits: e.config.bits.to_string(),
                variant: pairs(false),
                changed: pairs(true),
            }
        })
        .collect();
    (rows, !keys.is_empty())
}

pub fn run(a: ReportArgs) -> Result<()> {
    // the runs of every folder, each entry pointing at its run's folder
    let mut entries = Vec::new();
    for dir in &a.dirs {
        let found = read_index(dir)?;
        if found.is_empty() {
            bail!("{}: no finished runs in {INDEX}", dir.display());
        }
        for mut e in found {
            e.dir = run_folder(dir, &e).display().to_string();
            entries.push(e);
        }
    }
    let out = &a.dirs[0];
    let preset = EnergyPreset::load(&a.preset)?;
    // rows: (model, hardware, bits, other differing settings) in order of first appearance;
    // columns: disturbance
    let (entry_rows, variants) = rows_of(&entries);
    let mut rows: Vec<Row> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    for (e, r) in entries.iter().zip(&entry_rows) {
        if !rows.contains(r) {
            rows.push(r.clone());
        }
        let d = e.config.crossbar.disturb.to_string();
        if !cols.contains(&d) {
            cols.push(d);
        }
    }
    cols.sort_by(|x, y| (x != "none").cmp(&(y != "none")).then(x.cmp(y)));
    let group = |r: &Row, d: &str| -> Vec<&Entry> {
        entries
            .iter()
            .zip(&entry_rows)
            .filter(|(e, er)| *er == r && e.config.crossbar.disturb.to_string() == d)
            .map(|(e, _)| e)
            .collect()
    };
    // the legend names only the settings a row changes from the defaults
    let label = |r: &Row| {
        format!("{} {} {}", r.hardware, r.bits, r.changed)
            .trim_end()
            .to_string()
    };
    let mut md = format!(
        "# Report: {}\n\n{} finished runs (index `{INDEX}`).\n\n## Table I: test accuracy\n\nMean ± sample sd over seeds of the final test accuracy; runs that diverged (loss NaN) or stalled (below twice chance after `stall_epochs`) are counted apart.\n\n",
        a.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        entries.len()
    );
    let (vh, vs) = if variants {
        (" settings |", "---|")
    } else {
        ("", "")
    };
    write!(md, "| model | hardware | A,CO,W,G |{vh}")?;
    for c in &cols {
        write!(md, " disturb {c} |")?;
    }
    writeln!(md, " paper without | paper with |")?;
    writeln!(md, "|---|---|---|{vs}{}---|---|", "---|".repeat(cols.len()))?;
    for r in &rows {
        write!(md, "| {} | {} | {} |", r.model, r.hardware, r.bits)?;
        if variants {
            write!(md, " {} |", r.variant)?;
        }
        for c in &cols {
            let g = group(r, c);
            write!(
                md,
                " {} |",
                if g.is_empty() { "–".into() } else { cell(&g) }
            )?;
        }
        let paper = PAPER_TABLE1
            .iter()
            .find(|p| p.0 == r.bits && r.model == "lenet5");
        let show = |v: Paper| match v {
            Acc(a) => format!("{a:.4}"),
            Fails => "fails".to_string(),
            NotReported => "–".to_string(),
        };
        match paper {
            Some(p) => writeln!(md, " {} | {} |", show(p.1), show(p.2))?,
            None => writeln!(md, " | |")?,
        }
    }

    // energy per setting (Table II's RRAM Conv+FC column for each row)
    writeln!(
        md,
        "\n## RRAM Conv+FC energy per image per iteration (preset {})\n",
        preset.name
    )?;
    writeln!(
        md,
        "| model | A,CO,W,G |{vh} Conv+FC µJ | counts |\n|---|---|{vs}---|---|"
    )?;
    let mut energy_of: BTreeMap<Row, f64> = BTreeMap::new();
    for r in &rows {
        let Some(e) = cols.iter().flat_map(|c| group(r, c)).next() else {
            continue;
        };
        let cfg: &RunConfig = &e.config;
        let counters: Option<CountersReport> =
            std::fs::read_to_string(Path::new(&e.dir).join(run_dir::COUNTERS))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
        let (rep, src) = for_run(cfg, counters.as_ref(), &preset)?;
        energy_of.insert(r.clone(), rep.conv_fc_uj);
        write!(md, "| {} | {} |", r.model, r.bits)?;
        if variants {
            write!(md, " {} |", r.variant)?;
        }
        writeln!(md, " {:.2} | {src} (run {}) |", rep.conv_fc_uj, e.name)?;
    }

    // plots
    writeln!(md, "\n## Figures\n")?;
    for c in &cols {
        let series: Vec<Series> = rows
            .iter()
            .filter_map(|r| {
                let g = group(r, c);
                (!g.is_empty()).then(|| Series {
                    name: label(r),
                    points: error_curve(&g),
                })
            })
            .collect();
        let file = format!("error_curves_{}.svg", c.replace([':', '.'], "_"));
        line_plot(
            &out.join(&file),
            &format!("Test error per epoch (disturb {c})"),
            "epoch",
            "test error",
            &series,
        )?;
        writeln!(md, "![test error, disturb {c}]({file})\n")?;
    }
    let widths: Vec<f64> = {
        let mut w: Vec<f64> = entries.iter().map(|e| width_of(&e.config)).collect();
        w.sort_by(f64::total_cmp);
        w.dedup();
        w
    };
    if widths.len() > 1 {
        let series: Vec<Series> = rows
            .iter()
            .map(|r| {
                let mut pts: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
                for (e, _) in entries.iter().zip(&entry_rows).filter(|(_, er)| *er == r) {
                    pts.entry((width_of(&e.config) * 1e6) as u64)
                        .or_default()
                        .push(e.summary.test_accuracy);
                }
                Series {
                    name: label(r),
                    points: pts
                        .into_iter()
                        .map(|(w, v)| (w as f64 / 1e6, v.iter().sum::<f64>() / v.len() as f64))
                        .collect(),
                }
            })
            .collect();
        line_plot(
            &out.join("accuracy_vs_disturbance.svg"),
            "Test accuracy against disturbance width",
            "width",
            "test accuracy",
            &series,
        )?;
        writeln!(
            md,
            "![accuracy against disturbance](accuracy_vs_disturbance.svg)\n"
        )?;
    }
    let mut pts = Vec::new();
    for r in &rows {
        for c in &cols {
            let g = group(r, c);
            let ok: Vec<f64> = g
                .iter()
                .filter(|e| !e.summary.failed())
                .map(|e| e.summary.test_accuracy)
                .collect();
            if let (Some(&en), false) = (energy_of.get(r), ok.is_empty()) {
                pts.push((en, mean_sd(&ok).0));
            }
        }
    }
    let front = pareto(&pts);
    let mut fr: Vec<(f64, f64)> = pts
        .iter()
        .zip(&front)
        .filter(|(_, f)| **f)
        .map(|(p, _)| *p)
        .collect();
    fr.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut all = pts.clone();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    line_plot(
        &out.join("tradeoff.svg"),
        "Accuracy against RRAM energy",
        "Conv+FC energy per image per iteration (uJ)",
        "mean test accuracy",
        &[
            Series {
                name: "settings".into(),
                points: all,
            },
            Series {
                name: "Pareto front".into(),
                points: fr,
            },
        ],
    )?;
    writeln!(md, "![accuracy against energy](tradeoff.svg)")?;
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}
