//! The results index: one JSON line per finished run (its name, folder, resolved config, final
//! metrics, energy estimate and the code version), appended with a single `write` on a file opened
//! in append mode and flushed to disk, so a crash leaves at worst a truncated last line — which
//! `read` skips. Nothing is ever rewritten in place.

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::train::trainer::Summary;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

pub const INDEX: &str = "index.jsonl";

/// The version of the code that produced a result.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_NAME"),
    " ",
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("RRAM_GIT_COMMIT"),
    ")"
);

/// One finished run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub name: String,
    pub dir: String,
    #[serde(deserialize_with = "config_with_defaults")]
    pub config: RunConfig,
    pub summary: Summary,
    pub version: String,
}

/// An index line written before a setting existed lacks its key: it takes its default, as in a
/// config file (`RunConfig::from_table`), instead of the whole line being unreadable.
fn config_with_defaults<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<RunConfig, D::Error> {
    let keys = toml::Table::deserialize(d)?;
    RunConfig::from_table(keys).map_err(serde::de::Error::custom)
}

/// Append `e` to the index at `path` as one line.
pub fn append(path: &Path, e: &Entry) -> Result<()> {
    let mut line = serde_json::to_string(e).expect("entry serializes");
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| Error::io(path, err))?;
    // A previous writer may have died mid-line: start ours on a fresh line.
    let len = f.metadata().map_err(|err| Error::io(path, err))?.len();
    if len > 0 {
        let text = std::fs::read(path).map_err(|err| Error::io(path, err))?;
        if text.last() != Some(&b'\n') {
            line.insert(0, '\n');
        }
    }
    f.write_all(line.as_bytes())
        .map_err(|err| Error::io(path, err))?;
    f.sync_all().map_err(|err| Error::io(path, err))
}

/// Every complete entry of the index (missing file = empty); lines that do not parse (a
/// truncated last line) are skipped. Later duplicates of a name are dropped.
pub fn read(path: &Path) -> Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out: Vec<Entry> = Vec::new();
    for line in text.lines() {
        if let Ok(e) = serde_json::from_str::<Entry>(line)
            && !out.iter().any(|o| o.name == e.name)
        {
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lines_from_before_a_setting_existed_load_with_its_default() {
        let mut config = RunConfig::defaults_for(crate::config::ModelKind::Resnet20);
        config.epochs = 8;
        let e = Entry {
            name: "old".into(),
            dir: "runs/old".into(),
            config,
            summary: Summary {
                model: "resnet20".into(),
                bits: "4,4,4,4".into(),
                test_accuracy: 0.435,
                best_test_accuracy: 0.435,
                diverged: false,
                stalled: false,
                epochs: 8,
                images_per_second: 62.0,
                train_seconds: 1302.0,
                energy_uj: None,
                energy_counts: None,
            },
            version: VERSION.into(),
        };
        let mut line: serde_json::Value = serde_json::to_value(&e).unwrap();
        for key in [
            "logit_columns",
            "warmup_epochs",
            "centre_adc",
            "adc_polarity",
            "g_scale",
            "label_smoothing",
            "cutout",
            "test_flip",
        ] {
            assert!(
                line["config"]
                    .as_object_mut()
                    .unwrap()
                    .remove(key)
                    .is_some()
            );
        }
        let crossbar = line["config"]["crossbar"].as_object_mut().unwrap();
        assert!(crossbar.remove("partial_polarity").is_some());
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(INDEX);
        std::fs::write(&path, format!("{line}\n")).unwrap();
        // a run from before `adc_polarity` (`crossbar.partial_polarity`) existed read bipolar
        // (today's defaults are unipolar and skewed)
        let mut e = e;
        e.config.adc_polarity = crate::quant::output::Polarity::Bipolar;
        e.config.crossbar.partial_polarity = crate::quant::output::Polarity::Bipolar;
        // and had no warm-up (today's default is `auto`)
        e.config.warmup_epochs = crate::config::Warmup::Epochs(0.0);
        assert_eq!(read(&path).unwrap(), vec![e]);
    }
}
