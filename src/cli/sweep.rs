//! `rram sweep` (run a grid, restartable, in parallel processes, or emit a Slurm array script)
//! and `rram runs` (list the index). A run is finished when its folder has `summary.json`; the
//! index gets one line per finished run, appended once. Restarting a sweep indexes runs that
//! finished unindexed, resumes interrupted ones from their checkpoint, and starts the rest.

use super::args::{RunsArgs, SweepArgs};
use anyhow::{Context, Result, bail};
use rram::run::run_dir::{self, write_atomic};
use rram::run::store::{self, Entry, INDEX, VERSION};
use rram::run::sweep::{Point, TABLE1, expand, with_overrides};
use rram::train::trainer::Summary;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where a sweep in `out` keeps the run `name`.
pub(super) fn run_dir(out: &Path, name: &str) -> PathBuf {
    out.join("runs").join(name)
}

/// The runs indexed in the sweep folder `dir`; a missing folder or index is an error, so a
/// mistyped path is not read as a sweep with no finished runs.
pub(super) fn read_index(dir: &Path) -> Result<Vec<Entry>> {
    if !dir.is_dir() {
        bail!("{}: no such folder (give a sweep's --out)", dir.display());
    }
    if !dir.join(INDEX).is_file() {
        bail!("{}: no {INDEX} here (give a sweep's --out)", dir.display());
    }
    Ok(store::read(&dir.join(INDEX))?)
}

fn config_path(out: &Path, name: &str) -> PathBuf {
    out.join("configs").join(format!("{name}.toml"))
}

/// Add `p` to the index if it finished and is not there yet. Returns whether it is finished.
fn collect(out: &Path, p: &Point, indexed: &mut Vec<String>) -> Result<bool> {
    let dir = run_dir(out, &p.name);
    let Ok(text) = std::fs::read_to_string(dir.join(run_dir::SUMMARY)) else {
        return Ok(false);
    };
    if indexed.contains(&p.name) {
        return Ok(true);
    }
    let summary: Summary = serde_json::from_str(&text)
        .with_context(|| format!("{}: bad summary.json", dir.display()))?;
    let config = rram::config::RunConfig::load(&dir.join(run_dir::CONFIG))?;
    store::append(
        &out.join(INDEX),
        &Entry {
            name: p.name.clone(),
            dir: dir.display().to_string(),
            config,
            summary,
            version: VERSION.into(),
        },
    )?;
    indexed.push(p.name.clone());
    Ok(true)
}

fn spawn(out: &Path, p: &Point) -> Result<Child> {
    let dir = run_dir(out, &p.name);
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("train").arg("--quiet");
    if dir.join(run_dir::CONFIG).is_file() {
        cmd.arg("--resume").arg(&dir); // interrupted: continue from its checkpoint
    } else {
        cmd.arg("--config")
            .arg(config_path(out, &p.name))
            .arg("--out")
            .arg(&dir);
    }
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::create(dir.join("train.log"))?;
    cmd.stdout(Stdio::null()).stderr(log);
    Ok(cmd.spawn()?)
}

fn slurm_script(out: &Path, points: &[Point], spec: &Path) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "rram".into());
    let names: Vec<String> = points.iter().map(|p| format!("  \"{}\"", p.name)).collect();
    format!(
        r#"#!/usr/bin/env bash
# Slurm job array for the sweep in {out}: one array task per run, same folder layout as
# `rram sweep` (runs/<name>/, configs/<name>.toml, index.jsonl). Submit with: sbatch {script}
# A preempted task resumes from its checkpoint when resubmitted; finished runs are skipped.
#SBATCH --job-name=rram-sweep
#SBATCH --array=0-{last}
#SBATCH --cpus-per-task={threads}
#SBATCH --output={out}/slurm-%A_%a.log
set -euo pipefail
RRAM="${{RRAM:-{exe}}}"
OUT="{out}"
SPEC="{spec}"
NAMES=(
{names}
)
NAME="${{NAMES[$SLURM_ARRAY_TASK_ID]}}"
DIR="$OUT/runs/$NAME"
if [ ! -f "$DIR/summary.json" ]; then
  if [ -f "$DIR/config.toml" ]; then
    "$RRAM" train --quiet --resume "$DIR"
  else
    "$RRAM" train --quiet --config "$OUT/configs/$NAME.toml" --out "$DIR"
  fi
fi
"$RRAM" sweep "$SPEC" --out "$OUT" --collect "$NAME"
"#,
        out = out.display(),
        script = out.join("sweep.slurm").display(),
        last = points.len().saturating_sub(1),
        threads = points.first().map_or(1, |p| p.config.threads),
        exe = exe,
        spec = spec.display(),
        names = names.join("\n"),
    )
}

pub fn run(a: SweepArgs) -> Result<()> {
    let text = match (&a.file, a.grid.as_deref()) {
        (Some(f), None) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, Some("table1")) => TABLE1.to_string(),
        (None, Some(g)) => bail!("invalid grid: unknown grid {g:?} (known: table1)"),
        _ => bail!("give a sweep file or --grid table1"),
    };
    let text = with_overrides(&text, &a.set)?;
    if a.jobs == 0 {
        bail!("invalid jobs: must be at least 1");
    }
    let sets_threads = text.lines().any(|l| l.trim_start().starts_with("threads"));
    let mut points = expand(&text)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for p in &mut points {
        if !sets_threads {
            p.config.threads = a.threads.unwrap_or((cores / a.jobs).max(1));
        }
    }
    std::fs::create_dir_all(a.out.join("configs"))?;
    let spec = a.out.join("sweep.toml");
    write_atomic(&spec, text.as_bytes())?;
    for p in &points {
        write_atomic(&config_path(&a.out, &p.name), p.config.to_toml().as_bytes())?;
    }
    let mut indexed: Vec<String> = store::read(&a.out.join(INDEX))?
        .into_iter()
        .map(|e| e.name)
        .collect();
    if let Some(name) = &a.collect {
        let p = points
            .iter()
            .find(|p| &p.name == name)
            .with_context(|| format!("no run named {name:?} in this sweep"))?;
        if !collect(&a.out, p, &mut indexed)? {
            bail!("run {name} has not finished (no summary.json)");
        }
        return Ok(());
    }
    if let Some(kind) = &a.emit {
        if kind != "slurm" {
            bail!("invalid emit: {kind:?} (known: slurm)");
        }
        let path = a.out.join("sweep.slurm");
        write_atomic(&path, slurm_script(&a.out, &points, &spec).as_bytes())?;
        println!(
            "wrote {} ({} array tasks); submit with: sbatch {}",
            path.display(),
            points.len(),
            path.display()
        );
        return Ok(());
    }
    let mut queue: VecDeque<&Point> = VecDeque::new();
    for p in &points {
        if !collect(&a.out, p, &mut indexed)? {
            queue.push_back(p);
        }
    }
    let done_before = points.len() - queue.len();
    eprintln!(
        "sweep: {} runs, {done_before} finished, {} to run, {} at a time",
        points.len(),
        queue.len(),
        a.jobs
    );
    let mut running: Vec<(&Point, Child)> = Vec::new();
    let mut failed = Vec::new();
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < a.jobs
            && let Some(p) = queue.pop_front()
        {
            eprintln!("start  {}", p.name);
            running.push((p, spawn(&a.out, p)?));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (p, mut child) in running {
            match child.try_wait()? {
                None => still.push((p, child)),
                Some(status) => {
                    if status.success() && collect(&a.out, p, &mut indexed)? {
                        eprintln!("done   {}", p.name);
                    } else {
                        eprintln!(
                            "FAILED {} (see {})",
                            p.name,
                            run_dir(&a.out, &p.name).join("train.log").display()
                        );
                        failed.push(p.name.clone());
                    }
                }
            }
        }
        running = still;
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} runs failed: {}",
            failed.len(),
            points.len(),
            failed.join(", ")
        );
    }
    println!(
        "sweep finished: {} runs in {}",
        points.len(),
        a.out.display()
    );
    Ok(())
}

/// The value of setting `key` of an entry as text (`disturb`, `xbar`… as in a sweep file).
fn setting(e: &Entry, key: &str) -> Option<String> {
    let v = serde_json::to_value(&e.config).ok()?;
    let x = &v["crossbar"];
    let found = match key {
        "xbar" => {
            return Some(format!(
                "{}x{}",
                e.config.crossbar.tile_rows, e.config.crossbar.tile_cols
            ));
        }
        "name" => return Some(e.name.clone()),
        k if v.get(k).is_some() => &v[k],
        k => x.get(k)?,
    };
    Some(match found {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

pub fn runs(a: RunsArgs) -> Result<()> {
    let mut filters = Vec::new();
    for f in &a.filters {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("invalid where: {f:?} must be KEY=VALUE"))?;
        filters.push((k.trim().to_string(), v.trim().to_string()));
    }
    let entries = read_index(&a.dir)?;
    let keep: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            filters
                .iter()
                .all(|(k, v)| setting(e, k).as_deref() == Some(v.as_str()))
        })
        .collect();
    if a.json {
        for e in keep {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(());
    }
    println!(
        "| run | hardware | bits | disturb | seed | test accuracy | best | status | epochs | energy µJ |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for e in &keep {
        println!(
            "| {} | {} | {} | {} | {} | {:.4} | {:.4} | {} | {} | {} |",
            e.name,
            e.config.hardware.as_str(),
            e.config.bits,
            e.config.disturb_label(),
            e.config.seed,
            e.summary.test_accuracy,
            e.summary.best_test_accuracy,
            e.summary.status(),
            e.summary.epochs,
            e.summary
                .energy_uj
                .map_or("-".into(), |v| format!("{v:.2}"))
        );
    }
    eprintln!("{} of {} runs", keep.len(), entries.len());
    Ok(())
}
