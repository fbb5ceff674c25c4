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
    pub config: RunConfig,
    pub summary: Summary,
    pub version: String,
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
