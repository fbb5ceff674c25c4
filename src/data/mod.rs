//! Datasets: readers for every accepted on-disk format, the search for a dataset folder, and the
//! seeded batcher. A `Dataset` holds images as f32 in [0, 1], sample-major (`[n, c, h, w]`); the
//! batcher turns a batch into the channel-major `[c, n, h, w]` tensor the layers take.

pub mod augment;
pub mod batcher;
pub mod cifar10;
pub mod mnist;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Images and labels in memory.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `[n, c, h, w]`, values in [0, 1].
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Keep the first `n` samples (no-op when `n` is larger).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.images.truncate(n * self.image_len());
        }
    }
}

/// Training and test split.
pub struct Splits {
    pub train: Dataset,
    pub test: Dataset,
    /// Folder the data was read from.
    pub dir: PathBuf,
}

/// Folders searched for dataset `name` when no `--data` is given, in order: `$RRAM_DATA`,
/// `./data`, `../shared/data`, and the same two beside the source tree the binary was built from.
pub fn candidate_dirs(explicit: Option<&Path>, name: &str) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        roots.push(p.to_path_buf());
    } else {
        if let Some(v) = std::env::var_os("RRAM_DATA") {
            roots.push(PathBuf::from(v));
        }
        roots.push(PathBuf::from("data"));
        roots.push(PathBuf::from("../shared/data"));
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        roots.push(manifest.join("data"));
        roots.push(manifest.join("../shared/data"));
    }
    let mut out = Vec::new();
    for r in roots {
        out.push(r.join(name));
        out.push(r);
    }
    out
}

/// The first candidate folder for which `has` is true.
pub fn locate(explicit: Option<&Path>, name: &str, has: impl Fn(&Path) -> bool) -> Result<PathBuf> {
    let cands = candidate_dirs(explicit, name);
    for c in &cands {
        if has(c) {
            return Ok(c.clone());
        }
    }
    Err(Error::DataNotFound {
        dataset: name.to_string(),
        searched: cands
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}
