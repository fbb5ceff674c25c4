//! Sweep grids: a TOML file whose top-level keys are the settings every run shares (named like a
//! run's `config.toml`, plus the flag-style shortcuts `disturb`, `faults`, `xbar`, `adc`,
//! `read_noise`, `d2d` for the `[crossbar]` table) and whose `[axes]` table holds lists that are
//! crossed. Each point becomes a resolved `RunConfig` with a stable, readable name.

use crate::config::RunConfig;
use crate::crossbar::CrossbarConfig;
use crate::error::{Error, Result};
use crate::quant::BitWidths;

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Folder name: the axis values, e.g. `bits-a4-co4-w4-g4__disturb-uniform-0.05__seed-1`.
    pub name: String,
    pub config: RunConfig,
}

/// The paper's Table I grid on LeNet-5: ten (A,CO,W,G) settings, without and with the ±5% write
/// disturbance, three seeds.
pub const TABLE1: &str = r#"model = "lenet5"
dataset = "mnist"
hardware = "rram"
epochs = 20
[axes]
bits = ["32,32,32,32", "8,8,8,8", "6,6,6,6", "4,4,4,4", "3,3,2,4", "2,2,2,2", "2,2,1,4", "2,2,2,1", "1,1,2,1", "1,1,1,1"]
disturb = ["none", "uniform:0.05"]
seed = [1, 2, 3]
"#;

const CROSSBAR_KEYS: [&str; 10] = [
    "disturb",
    "faults",
    "adc",
    "partial_polarity",
    "read_noise",
    "d2d",
    "signed_input",
    "backward_adc_bits",
    "tile_rows",
    "tile_cols",
];

fn crossbar(t: &mut toml::Table) -> Result<&mut toml::Table> {
    t.entry("crossbar")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| Error::invalid("crossbar", "must be a table ([crossbar])"))
}

/// Put `key = value` where it belongs in a config table (shortcuts go into `[crossbar]`).
fn place(t: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    if key == "xbar" {
        let s = value
            .as_str()
            .ok_or_else(|| Error::invalid("xbar", "must be a string like \"128x128\""))?;
        let (r, c) = CrossbarConfig::parse_size(s)?;
        let x = crossbar(t)?;
        x.insert("tile_rows".into(), toml::Value::Integer(r as i64));
        x.insert("tile_cols".into(), toml::Value::Integer(c as i64));
    } else if CROSSBAR_KEYS.contains(&key) {
        crossbar(t)?.insert(key.into(), value);
    } else {
        t.insert(key.into(), value);
    }
    Ok(())
}

/// A file-name-safe rendering of an axis value.
fn slug(key: &str, v: &toml::Value) -> String {
    let raw = match v {
        toml::Value::String(s) if key == "bits" => s
            .parse::<BitWidths>()
            .map(|b| b.slug())
            .unwrap_or_else(|_| s.clone()),
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{key}-{clean}")
}

/// Override shared settings of a sweep file: each `KEY=VALUE` (a TOML value; a bare word is
/// read as a string) replaces or adds the top-level key. An axis cannot be overridden.
pub fn with_overrides(text: &str, sets: &[String]) -> Result<String> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    let mut t: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::invalid("sweep", e.message().to_string()))?;
    for set in sets {
        let (key, raw) = set
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Error::invalid("set", format!("{set:?} is not KEY=VALUE")))?;
        let is_axis = t
            .get("axes")
            .and_then(|a| a.as_table())
            .is_some_and(|a| a.contains_key(key));
        if key == "axes" || is_axis {
            return Err(Error::invalid(
                "set",
                format!("{key} is an axis of this sweep; edit the file instead"),
            ));
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut v| v.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        t.insert(key.to_string(), value);
    }
    Ok(toml::to_string(&t).expect("table serializes"))
}

/// Expand a sweep file into its runs (axes crossed in key order, values in list order).
pub fn expand(text: &str) -> Result<Vec<Point>> {
    let mut t: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::invalid("sweep", e.message().to_string()))?;
    let axes = match t.remove("axes") {
        Some(toml::Value::Table(a)) => a,
        Some(_) => return Err(Error::invalid("axes", "must be a table of lists")),
        None => toml::Table::new(),
    };
    let mut shared = toml::Table::new();
    for (k, v) in t {
        place(&mut shared, &k, v)?;
    }
    let mut points: Vec<(Vec<String>, toml::Table)> = vec![(Vec::new(), shared)];
    for (key, values) in axes {
        let list = values
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| Error::invalid("axes", format!("{key} must be a non-empty list")))?;
        let mut next = Vec::new();
        for (names, table) in &points {
            for v in list {
                let mut t = table.clone();
                place(&mut t, &key, v.clone())?;
                let mut n = names.clone();
                n.push(slug(&key, v));
                next.push((n, t));
            }
        }
        points = next;
    }
    points
        .into_iter()
        .map(|(names, t)| {
            let name = if names.is_empty() {
                "run".to_string()
            } else {
                names.join("__")
            };
            let config = RunConfig::from_toml(&toml::to_string(&t).expect("table serializes"))
                .map_err(|e| Error::invalid("sweep", format!("point {name}: {e}")))?;
            Ok(Point { name, config })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_shared_keys_and_refuse_axes() {
        let sets = ["epochs=2", "co_range=mean:2", "g_scale=vector"].map(String::from);
        let text = with_overrides(TABLE1, &sets).unwrap();
        let p = expand(&text).unwrap();
        assert_eq!(p.len(), 60);
        assert!(p.iter().all(|p| p.config.epochs == 2));
        assert_eq!(p[0].config.co_range.to_string(), "mean:2");
        assert_eq!(p[0].config.g_scale, crate::quant::gradient::GScale::Vector);
        assert_eq!(p[0].name, "bits-a32-co32-w32-g32__disturb-none__seed-1");
        let err = with_overrides(TABLE1, &["seed=4".into()]).unwrap_err();
        assert!(err.to_string().contains("axis"), "{err}");
        assert!(with_overrides(TABLE1, &["epochs".into()]).is_err());
        assert!(expand(&with_overrides(TABLE1, &["epochs=-1".into()]).unwrap()).is_err());
    }

    #[test]
    fn table1_has_sixty_distinct_runs() {
        let p = expand(TABLE1).unwrap();
        assert_eq!(p.len(), 60);
        let mut names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 60);
        let first = &p[0];
        assert_eq!(first.name, "bits-a32-co32-w32-g32__disturb-none__seed-1");
        assert!(first.config.crossbar.disturb.is_none());
        assert_eq!(p[1].config.seed, 2);
        assert_eq!(p[3].config.crossbar.disturb.to_string(), "uniform:0.05");
    }

    #[test]
    fn shortcuts_land_in_the_crossbar_table_and_bad_points_are_named() {
        let p = expand("epochs = 2\nxbar = \"64x32\"\n[axes]\nfaults = [\"none\", \"sa0:0.1\"]\n")
            .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].config.crossbar.tile_rows,
                p[0].config.crossbar.tile_cols
            ),
            (64, 32)
        );
        assert_eq!(p[1].config.crossbar.faults.sa0, 0.1);
        let e = expand("[axes]\nlr = [0.1, -1.0]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lr--1.0") || e.contains("lr"), "{e}");
        assert!(expand("[axes]\nseed = []\n").is_err());
        assert!(expand("bogus_key = 3\n").is_err());
        assert!(expand("crossbar = 3\n[axes]\ndisturb = [\"none\"]\n").is_err());
    }
}
