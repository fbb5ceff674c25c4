//! `rram train`: resolve the config, pick the run folder, draw progress, print the summary.

use super::args::TrainArgs;
use super::resolve::train_config;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rram::config::RunConfig;
use rram::run::run_dir::{self, RunDir};
use rram::train::trainer::{self, Monitor};
use std::path::PathBuf;

/// Progress bars per epoch plus one line per finished epoch.
struct Bars {
    bar: Option<ProgressBar>,
    quiet: bool,
    epochs: usize,
    steps: u64,
    out: PathBuf,
}

impl Monitor for Bars {
    fn start(&mut self, cfg: &RunConfig, data: &std::path::Path, epoch: usize) {
        let from = if epoch > 0 {
            format!(", resuming after epoch {epoch}")
        } else {
            String::new()
        };
        let hw = match cfg.hardware {
            rram::crossbar::Hardware::Rram => format!(
                "{}x{} RRAM arrays, write disturbance {}",
                cfg.crossbar.tile_rows, cfg.crossbar.tile_cols, cfg.crossbar.disturb
            ),
            rram::crossbar::Hardware::Ideal => "ideal (software) quantization".into(),
        };
        eprintln!(
            "rram train: {} on {} ({}) at A,CO,W,G = {} on {hw}, {} epochs, batch {}, lr {}, seed {}, {} threads -> {}{from}",
            cfg.model.as_str(),
            cfg.dataset.as_str(),
            data.display(),
            cfg.bits,
            cfg.epochs,
            cfg.batch,
            cfg.lr,
            cfg.seed,
            cfg.threads,
            self.out.display()
        );
    }

    fn epoch_start(&mut self, epoch: usize, steps: usize) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", self.epochs));
        self.bar = Some(bar);
        self.steps = 0;
    }

    fn step(&mut self, loss: f32, accuracy: f64) {
        self.steps += 1;
        if let Some(b) = &self.bar {
            b.inc(1);
            if self.steps.is_multiple_of(20) {
                b.set_message(format!("loss {loss:.4} acc {:.2}%", accuracy * 100.0));
            }
        }
    }

    fn epoch_end(&mut self, m: &serde_json::Value) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let test = m["test_accuracy"]
            .as_f64()
            .map_or("   -  ".to_string(), |a| format!("{:.2}%", a * 100.0));
        eprintln!(
            "epoch {:>3}/{}  loss {:.4}  train {:.2}%  test {test}  {:.1} s  {:.0} img/s",
            m["epoch"],
            self.epochs,
            m["train_loss"].as_f64().unwrap_or(f64::NAN),
            m["train_accuracy"].as_f64().unwrap_or(f64::NAN) * 100.0,
            m["seconds"].as_f64().unwrap_or(f64::NAN),
            m["images_per_second"].as_f64().unwrap_or(f64::NAN),
        );
    }
}

fn default_out() -> PathBuf {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    PathBuf::from("runs").join(stamp.replace('T', "-"))
}

pub fn run(a: TrainArgs) -> Result<()> {
    let (cfg, out, resume) = match &a.resume {
        Some(dir) => {
            let path = dir.join(run_dir::CONFIG);
            if !path.is_file() {
                anyhow::bail!("--resume {}: no {} there", dir.display(), run_dir::CONFIG);
            }
            let mut cfg = RunConfig::load(&path)?;
            if let Some(t) = a.run.threads {
                cfg.threads = t;
            }
            (cfg, dir.clone(), true)
        }
        None => {
            let cfg = train_config(&a)?;
            let out = a.out.clone().unwrap_or_else(default_out);
            if let Some(file) = RunDir::holds_run(&out) {
                anyhow::bail!(
                    "--out {}: already holds a run ({file}); continue it with --resume {0} or choose another --out",
                    out.display()
                );
            }
            (cfg, out, false)
        }
    };
    let created = !out.exists();
    let dir = RunDir::create(&out)?;
    let mut bars = Bars {
        bar: None,
        quiet: a.quiet,
        epochs: cfg.epochs,
        steps: 0,
        out: out.clone(),
    };
    let trained = trainer::train(&cfg, &dir, resume, &mut bars);
    if trained.is_err() && created {
        // a run that failed before writing anything (e.g. no data) leaves no empty folder;
        // remove_dir keeps a folder that holds anything
        let _ = std::fs::remove_dir(&out);
    }
    let s = trained.with_context(|| format!("training in {}", out.display()))?;
    let status = match s.status() {
        "done" => "done".to_string(),
        other => other.to_uppercase(),
    };
    println!(
        "{status}: {} {} bits {}: test accuracy {:.2}% (best {:.2}%) after {} epochs, {:.0} images/s, results in {}",
        s.model,
        cfg.dataset.as_str(),
        s.bits,
        s.test_accuracy * 100.0,
        s.best_test_accuracy * 100.0,
        s.epochs,
        s.images_per_second,
        out.display()
    );
    Ok(())
}
