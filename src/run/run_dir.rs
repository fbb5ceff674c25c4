//! The layout of one run folder, and atomic writes:
//! `config.toml` (resolved settings, written before the first step), `metrics.jsonl` (one line
//! per epoch), `summary.json` (final result), `checkpoint.safetensors` (weights, optimizer state
//! and progress, after every epoch), `counters.json` (operation counts per layer and phase).

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.jsonl";
pub const SUMMARY: &str = "summary.json";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const COUNTERS: &str = "counters.json";

/// What a fresh run writes, so what it would overwrite in a folder that already holds a run.
const RUN_FILES: [&str; 4] = [CONFIG, METRICS, SUMMARY, CHECKPOINT];

/// Paths inside one run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// Use `root`, creating it if needed.
    pub fn create(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        Ok(RunDir {
            root: root.to_path_buf(),
        })
    }

    /// The first of a run's files that `root` already holds, if any: a fresh run there would
    /// replace a result the user has.
    pub fn holds_run(root: &Path) -> Option<&'static str> {
        RUN_FILES.into_iter().find(|f| root.join(f).exists())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk,
/// then renamed over the target. Readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    // temporary files are created 0600; results should read like any file the user writes
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perm = std::fs::Permissions::from_mode(0o644);
        tmp.as_file()
            .set_permissions(perm)
            .map_err(|e| Error::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
