//! CIFAR-10 in the formats users have: the official binary release (`data_batch_{1..5}.bin`,
//! `test_batch.bin`, optionally inside `cifar-10-batches-bin/`; records of one label byte and
//! 1024 R, 1024 G, 1024 B bytes, row-major), a class-folder image tree (`train/<class>/*.jpg|png`,
//! `test/<class>/…`), or either of them inside a `.tar.gz` (read as a stream, nothing extracted:
//! the release's `cifar-10-binary.tar.gz` as downloaded, or a tree's archive).
//! Images decode with the `image` crate; every image must be 32×32.

use super::{Dataset, Splits, locate};
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Class names in label order.
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
const SIDE: usize = 32;
const RECORD: usize = 1 + 3 * SIDE * SIDE;

fn empty() -> Dataset {
    Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        c: 3,
        h: SIDE,
        w: SIDE,
    }
}

/// Parse binary-format records and append them to `ds`.
pub fn parse_binary(bytes: &[u8], path: &Path, ds: &mut Dataset) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::format(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records",
                bytes.len()
            ),
        ));
    }
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(Error::format(
                path,
                format!("record {i} has label {}, expected 0..9", rec[0]),
            ));
        }
        ds.labels.push(rec[0]);
        ds.images.extend(rec[1..].iter().map(|&b| b as f32 / 255.0));
    }
    Ok(())
}

/// Decode one image file's bytes into channel-planar floats (must be 32×32).
fn decode(bytes: &[u8], name: &str, path: &Path) -> Result<Vec<f32>> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| Error::format(path, format!("{name}: cannot decode image: {e}")))?
        .to_rgb8();
    if img.width() as usize != SIDE || img.height() as usize != SIDE {
        return Err(Error::format(
            path,
            format!(
                "{name}: {}x{} image, expected 32x32",
                img.width(),
                img.height()
            ),
        ));
    }
    let mut out = vec![0.0; 3 * SIDE * SIDE];
    for (i, px) in img.pixels().enumerate() {
        for ch in 0..3 {
            out[ch * SIDE * SIDE + i] = px[ch] as f32 / 255.0;
        }
    }
    Ok(out)
}

/// (split, label) of a tree path like `train/cat/0001.jpg` (any leading folders allowed).
fn classify(rel: &str) -> Option<(&'static str, u8)> {
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() < 3 {
        return None;
    }
    let n = parts.len();
    let file = parts[n - 1].to_ascii_lowercase();
    if !(file.ends_with(".jpg") || file.ends_with(".jpeg") || file.ends_with(".png")) {
        return None;
    }
    let label = CLASSES.iter().position(|c| *c == parts[n - 2])? as u8;
    match parts[n - 3] {
        "train" => Some(("train", label)),
        "test" => Some(("test", label)),
        _ => None,
    }
}

/// Samples in a deterministic order that interleaves the classes: by file name, then label
/// (`0000.jpg` of every class, then `0001.jpg` …), so the first N images (`--train-limit`) hold
/// every class, as in the official binary batches.
fn finish(mut items: Vec<(String, u8, Vec<f32>)>) -> Dataset {
    items.sort_by(|a, b| file_name(&a.0).cmp(file_name(&b.0)).then(a.1.cmp(&b.1)));
    let mut ds = empty();
    // sized once: growing by doubling would hold two copies of the images at a reallocation
    ds.images.reserve_exact(items.len() * 3 * SIDE * SIDE);
    ds.labels.reserve_exact(items.len());
    for (_, l, img) in items {
        ds.labels.push(l);
        ds.images.extend(img);
    }
    ds
}

/// The last part of an archive path (`a/b/c.png` → `c.png`).
fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The official binary release's file names: five training batches, then the test batch.
const BATCHES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    TEST_BATCH,
];
const TEST_BATCH: &str = "test_batch.bin";

/// Parse the six batches in release order, wherever they come from: `read(i, name)` gives
/// batch `i`'s bytes and the path its errors name.
fn parse_batches<B: AsRef<[u8]>>(
    mut read: impl FnMut(usize, &str) -> Result<(B, PathBuf)>,
) -> Result<(Dataset, Dataset)> {
    let (mut train, mut test) = (empty(), empty());
    for (i, name) in BATCHES.into_iter().enumerate() {
        let (bytes, p) = read(i, name)?;
        let ds = if name == TEST_BATCH {
            &mut test
        } else {
            &mut train
        };
        parse_binary(bytes.as_ref(), &p, ds)?;
    }
    Ok((train, test))
}

/// Read a `.tar.gz` holding either a class-folder tree or the official binary batches (the
/// release's own `cifar-10-binary.tar.gz`, read without extracting it).
pub fn load_tar_gz(path: &Path) -> Result<(Dataset, Dataset)> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut ar = tar::Archive::new(GzDecoder::new(std::io::BufReader::new(f)));
    let (mut train, mut test) = (Vec::new(), Vec::new());
    // the batches' bytes, kept until all are read: the archive's order need not be theirs
    let mut batches: [Option<Vec<u8>>; 6] = Default::default();
    let entries = ar
        .entries()
        .map_err(|e| Error::format(path, format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::format(path, format!("corrupt archive: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| Error::format(path, e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let batch = BATCHES.iter().position(|b| *b == file_name(&name));
        let image = classify(&name);
        if batch.is_none() && image.is_none() {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| Error::format(path, format!("{name}: {e}")))?;
        if let Some(i) = batch {
            batches[i] = Some(bytes);
        } else if let Some((split, label)) = image {
            let img = decode(&bytes, &name, path)?;
            if split == "train" {
                &mut train
            } else {
                &mut test
            }
            .push((name, label, img));
        }
    }
    if batches.iter().all(Option::is_none) {
        return Ok((finish(train), finish(test)));
    }
    if !(train.is_empty() && test.is_empty()) {
        return Err(Error::format(
            path,
            "holds both binary batches and class-folder images; give one format",
        ));
    }
    parse_batches(|i, name| {
        let bytes = batches[i]
            .take()
            .ok_or_else(|| Error::format(path, format!("holds binary batches but no {name}")))?;
        Ok((bytes, path.join(name)))
    })
}

/// Read a class-folder tree from disk (`dir/train/<class>/…`, `dir/test/<class>/…`).
pub fn load_tree(dir: &Path) -> Result<(Dataset, Dataset)> {
    let mut out = [Vec::new(), Vec::new()];
    for (k, split) in ["train", "test"].iter().enumerate() {
        for (label, class) in CLASSES.iter().enumerate() {
            let d = dir.join(split).join(class);
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd {
                let p = e.map_err(|e| Error::io(&d, e))?.path();
                let rel = format!(
                    "{split}/{class}/{}",
                    p.file_name().unwrap_or_default().to_string_lossy()
                );
                if classify(&rel).is_none() {
                    continue;
                }
                let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
                out[k].push((rel.clone(), label as u8, decode(&bytes, &rel, &p)?));
            }
        }
    }
    let [train, test] = out;
    Ok((finish(train), finish(test)))
}

/// Read the official binary batches from `dir`.
pub fn load_binary(dir: &Path) -> Result<(Dataset, Dataset)> {
    parse_batches(|_, name| {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        Ok((bytes, p))
    })
}

/// Which format a folder holds, if any.
fn source(dir: &Path) -> Option<PathBuf> {
    let bin = dir.join("cifar-10-batches-bin");
    for d in [bin, dir.to_path_buf()] {
        if d.join("data_batch_1.bin").is_file() {
            return Some(d);
        }
    }
    if dir.join("train").join(CLASSES[0]).is_dir() {
        return Some(dir.to_path_buf());
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy().ends_with(".tar.gz")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("cifar"))
        })
}

/// Find CIFAR-10 (see `super::candidate_dirs`) and load both splits.
pub fn load(explicit: Option<&Path>) -> Result<Splits> {
    let dir = locate(explicit, "cifar10", |d| source(d).is_some())?;
    let src = source(&dir).expect("located");
    let (train, test) = if src.is_file() {
        load_tar_gz(&src)?
    } else if src.join("data_batch_1.bin").is_file() {
        load_binary(&src)?
    } else {
        load_tree(&src)?
    };
    if train.is_empty() || test.is_empty() {
        return Err(Error::format(
            &src,
            format!(
                "found {} training and {} test images",
                train.len(),
                test.len()
            ),
        ));
    }
    Ok(Splits {
        train,
        test,
        dir: src,
    })
}
