//! MNIST in the IDX format, raw or gzip-compressed (detected by content, not by name).
//! Files are found under the usual names `train-images-idx3-ubyte` (or `train-images.idx3-ubyte`)
//! with or without `.gz`. Every header field is checked against the file's length, and image and
//! label counts against each other.

use super::{Dataset, Splits, locate};
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Read a whole file, gunzipping it when it starts with the gzip magic bytes.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("bad gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parse an IDX3 image file: returns (count, rows, cols, pixels).
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    if bytes.len() < 16 {
        return Err(Error::format(
            path,
            format!(
                "{} bytes is too short for an IDX image header (16)",
                bytes.len()
            ),
        ));
    }
    let magic = be_u32(bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(Error::format(
            path,
            format!(
                "wrong magic 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} (IDX unsigned-byte images)"
            ),
        ));
    }
    let (n, rows, cols) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8) as usize,
        be_u32(bytes, 12) as usize,
    );
    if rows == 0 || cols == 0 {
        return Err(Error::format(
            path,
            format!("image size {rows}x{cols} is empty"),
        ));
    }
    let want = n.checked_mul(rows * cols).and_then(|v| v.checked_add(16));
    if want != Some(bytes.len()) {
        return Err(Error::format(
            path,
            format!(
                "header says {n} images of {rows}x{cols} ({} bytes) but the file has {} bytes",
                want.map_or("too many".into(), |w| w.to_string()),
                bytes.len()
            ),
        ));
    }
    Ok((n, rows, cols, bytes[16..].to_vec()))
}

/// Parse an IDX1 label file.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    if bytes.len() < 8 {
        return Err(Error::format(
            path,
            format!(
                "{} bytes is too short for an IDX label header (8)",
                bytes.len()
            ),
        ));
    }
    let magic = be_u32(bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(Error::format(
            path,
            format!(
                "wrong magic 0x{magic:08x}, expected 0x{LABELS_MAGIC:08x} (IDX unsigned-byte labels)"
            ),
        ));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(Error::format(
            path,
            format!(
                "header says {n} labels but the file has {} label bytes",
                bytes.len() - 8
            ),
        ));
    }
    let labels = bytes[8..].to_vec();
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l > 9) {
        return Err(Error::format(
            path,
            format!("label {i} is {l}, expected 0..9"),
        ));
    }
    Ok(labels)
}

/// The path of one MNIST file in `dir` (`stem` like "train-images", `kind` "idx3"), if present.
fn find_file(dir: &Path, stem: &str, kind: &str) -> Option<PathBuf> {
    let names = [
        format!("{stem}-{kind}-ubyte"),
        format!("{stem}.{kind}-ubyte"),
    ];
    names
        .iter()
        .flat_map(|n| [dir.join(format!("{n}.gz")), dir.join(n)])
        .find(|p| p.is_file())
}

fn has_mnist(dir: &Path) -> bool {
    find_file(dir, "train-images", "idx3").is_some()
}

/// Load one split (`train` or `t10k`) from `dir`.
pub fn load_split(dir: &Path, prefix: &str) -> Result<Dataset> {
    let missing = |what: &str| Error::format(dir, format!("no {prefix}-{what}-ubyte[.gz] file"));
    let ip = find_file(dir, &format!("{prefix}-images"), "idx3")
        .ok_or_else(|| missing("images-idx3"))?;
    let lp = find_file(dir, &format!("{prefix}-labels"), "idx1")
        .ok_or_else(|| missing("labels-idx1"))?;
    let (n, h, w, pixels) = parse_images(&read_maybe_gz(&ip)?, &ip)?;
    let labels = parse_labels(&read_maybe_gz(&lp)?, &lp)?;
    if labels.len() != n {
        return Err(Error::format(
            &lp,
            format!(
                "{} labels but {} has {n} images",
                labels.len(),
                ip.display()
            ),
        ));
    }
    Ok(Dataset {
        images: pixels.iter().map(|&p| p as f32 / 255.0).collect(),
        labels,
        c: 1,
        h,
        w,
    })
}

/// Find MNIST (see `super::candidate_dirs`) and load both splits.
pub fn load(explicit: Option<&Path>) -> Result<Splits> {
    let dir = locate(explicit, "mnist", has_mnist)?;
    Ok(Splits {
        train: load_split(&dir, "train")?,
        test: load_split(&dir, "t10k")?,
        dir,
    })
}
