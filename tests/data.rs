//! MNIST IDX reading: raw and gzipped files, and every kind of malformed file gives a clear error.

use flate2::Compression;
use flate2::write::GzEncoder;
use rram::data::mnist;
use std::io::Write;
use std::path::Path;

fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        v.extend(d.to_be_bytes());
    }
    v.extend(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend((labels.len() as u32).to_be_bytes());
    v.extend(labels);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write_split(dir: &Path, prefix: &str, images: &[u8], labels: &[u8], gzip: bool) {
    let ext = if gzip { ".gz" } else { "" };
    let f = |b: &[u8]| if gzip { gz(b) } else { b.to_vec() };
    std::fs::write(
        dir.join(format!("{prefix}-images-idx3-ubyte{ext}")),
        f(images),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")),
        f(labels),
    )
    .unwrap();
}

#[test]
fn reads_raw_and_gzipped_idx() {
    for gzip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 2).map(|i| (i * 20) as u8).collect();
        write_split(
            dir.path(),
            "train",
            &idx_images(2, 3, 2, &pixels),
            &idx_labels(&[4, 9]),
            gzip,
        );
        write_split(
            dir.path(),
            "t10k",
            &idx_images(1, 3, 2, &pixels[..6]),
            &idx_labels(&[0]),
            gzip,
        );
        let s = mnist::load(Some(dir.path())).unwrap();
        assert_eq!(s.train.len(), 2);
        assert_eq!((s.train.h, s.train.w, s.train.c), (3, 2, 1));
        assert_eq!(s.train.labels, vec![4, 9]);
        assert_eq!(s.train.images[1], 20.0 / 255.0);
        assert_eq!(s.train.images[11], 220.0 / 255.0);
        assert_eq!(s.test.len(), 1);
    }
}

fn load_err(images: Vec<u8>, labels: Vec<u8>) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), "train", &images, &labels, false);
    write_split(
        dir.path(),
        "t10k",
        &idx_images(1, 1, 1, &[0]),
        &idx_labels(&[0]),
        false,
    );
    let e = mnist::load(Some(dir.path()))
        .err()
        .expect("must fail")
        .to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn wrong_magic_is_an_error() {
    let mut img = idx_images(1, 2, 2, &[0; 4]);
    img[3] = 9;
    assert!(load_err(img, idx_labels(&[1])).contains("wrong magic"));
    let mut lab = idx_labels(&[1]);
    lab[3] = 3;
    assert!(load_err(idx_images(1, 2, 2, &[0; 4]), lab).contains("wrong magic"));
}

#[test]
fn truncated_files_are_errors() {
    let img = idx_images(3, 2, 2, &[0; 12]);
    assert!(
        load_err(img[..img.len() - 1].to_vec(), idx_labels(&[1, 2, 3]))
            .contains("header says 3 images")
    );
    assert!(load_err(img[..10].to_vec(), idx_labels(&[1, 2, 3])).contains("too short"));
    let lab = idx_labels(&[1, 2, 3]);
    assert!(load_err(img.clone(), lab[..lab.len() - 1].to_vec()).contains("header says 3 labels"));
}

#[test]
fn count_mismatch_and_bad_labels_are_errors() {
    let img = idx_images(3, 2, 2, &[0; 12]);
    assert!(load_err(img.clone(), idx_labels(&[1, 2])).contains("2 labels but"));
    assert!(load_err(img, idx_labels(&[1, 2, 10])).contains("expected 0..9"));
    assert!(load_err(idx_images(1, 0, 2, &[]), idx_labels(&[1])).contains("empty"));
}

#[test]
fn bad_gzip_and_missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        [0x1f, 0x8b, 1, 2, 3],
    )
    .unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[1])).unwrap();
    let e = mnist::load(Some(dir.path())).err().unwrap().to_string();
    assert!(e.contains("gzip"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = mnist::load(Some(empty.path())).err().unwrap().to_string();
    assert!(e.contains("not found"), "{e}");
}

#[test]
fn real_mnist_is_found_without_a_path() {
    // ../shared/data/mnist beside the checkout (as in CI); skipped where it is absent.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    if !shared.is_dir() {
        eprintln!("skipped: {} not present", shared.display());
        return;
    }
    let s = mnist::load(None).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000));
    assert_eq!((s.train.h, s.train.w), (28, 28));
    // well-known first labels of the training set
    assert_eq!(&s.train.labels[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&s.test.labels[..3], &[7, 2, 1]);
}
