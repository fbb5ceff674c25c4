//! CIFAR-10 readers: the official binary format on synthetic files (good and bad), extracted and
//! inside the release's .tar.gz, the class-folder image tree on disk and inside a .tar.gz, and
//! the dataset search.

use rram::data::cifar10::{self, CLASSES};
use std::path::Path;

fn record(label: u8, fill: u8) -> Vec<u8> {
    let mut r = vec![label];
    // R plane = fill, G plane = fill + 1, B plane = fill + 2
    for ch in 0..3u8 {
        r.extend(std::iter::repeat_n(fill.wrapping_add(ch), 1024));
    }
    r
}

fn write_binary(dir: &Path, per_batch: usize) {
    for i in 1..=5 {
        let bytes: Vec<u8> = (0..per_batch)
            .flat_map(|j| record(((i + j) % 10) as u8, (10 * j) as u8))
            .collect();
        std::fs::write(dir.join(format!("data_batch_{i}.bin")), bytes).unwrap();
    }
    std::fs::write(
        dir.join("test_batch.bin"),
        [record(3, 7), record(9, 8)].concat(),
    )
    .unwrap();
}

#[test]
fn binary_batches_are_parsed() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_binary(&bin, 3);
    let s = cifar10::load(Some(tmp.path())).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (15, 2));
    assert_eq!((s.train.c, s.train.h, s.train.w), (3, 32, 32));
    assert_eq!(s.test.labels, vec![3, 9]);
    // test image 0: R = 7, G = 8, B = 9 (planar, row-major)
    let img = &s.test.images[..3072];
    assert_eq!(img[0], 7.0 / 255.0);
    assert_eq!(img[1024], 8.0 / 255.0);
    assert_eq!(img[3071], 9.0 / 255.0);
}

#[test]
fn bad_binary_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write_binary(tmp.path(), 2);
    // truncated record
    let p = tmp.path().join("data_batch_3.bin");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 5]).unwrap();
    let e = cifar10::load(Some(tmp.path())).err().unwrap().to_string();
    assert!(
        e.contains("data_batch_3.bin") && e.contains("3073-byte"),
        "{e}"
    );
    // bad label
    let mut b2 = b.clone();
    b2[0] = 42;
    std::fs::write(&p, &b2).unwrap();
    let e = cifar10::load(Some(tmp.path())).err().unwrap().to_string();
    assert!(e.contains("label 42"), "{e}");
    // missing test batch
    std::fs::write(&p, &b).unwrap();
    std::fs::remove_file(tmp.path().join("test_batch.bin")).unwrap();
    assert!(cifar10::load(Some(tmp.path())).is_err());
}

/// The release's own archive, `cifar-10-binary.tar.gz`, built from the batches in `bin`, in
/// the order `names` gives (an archive's order need not be the batches').
fn write_binary_tar_gz(dir: &Path, bin: &Path, names: &[&str]) {
    let f = std::fs::File::create(dir.join("cifar-10-binary.tar.gz")).unwrap();
    let mut ar = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    for n in names {
        ar.append_path_with_name(bin.join(n), format!("cifar-10-batches-bin/{n}"))
            .unwrap();
    }
    ar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn the_binary_release_archive_reads_as_its_extracted_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_binary(&bin, 3);
    let extracted = cifar10::load(Some(tmp.path())).unwrap();
    let tgz = tmp.path().join("tgz");
    std::fs::create_dir_all(&tgz).unwrap();
    let mut names = vec![
        "test_batch.bin",
        "data_batch_5.bin",
        "data_batch_4.bin",
        "data_batch_3.bin",
        "data_batch_2.bin",
        "data_batch_1.bin",
    ];
    write_binary_tar_gz(&tgz, &bin, &names);
    let archived = cifar10::load(Some(&tgz)).unwrap();
    assert_eq!(archived.train.labels, extracted.train.labels);
    assert_eq!(archived.train.images, extracted.train.images);
    assert_eq!(archived.test.labels, extracted.test.labels);
    assert_eq!(archived.test.images, extracted.test.images);
    // an archive without its test batch is named as such
    names.remove(0);
    write_binary_tar_gz(&tgz, &bin, &names);
    let e = cifar10::load(Some(&tgz)).err().unwrap().to_string();
    assert!(e.contains("no test_batch.bin"), "{e}");
    // a bad record inside the archive names its batch
    let p = bin.join("data_batch_2.bin");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 1]).unwrap();
    names.insert(0, "test_batch.bin");
    write_binary_tar_gz(&tgz, &bin, &names);
    let e = cifar10::load(Some(&tgz)).err().unwrap().to_string();
    assert!(
        e.contains("data_batch_2.bin") && e.contains("3073-byte"),
        "{e}"
    );
}

fn png(color: [u8; 3], side: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(side, side, image::Rgb(color));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn write_tree(root: &Path) {
    for split in ["train", "test"] {
        for (l, c) in CLASSES.iter().enumerate().take(3) {
            let d = root.join(split).join(c);
            std::fs::create_dir_all(&d).unwrap();
            for k in 0..2 {
                std::fs::write(
                    d.join(format!("000{k}.png")),
                    png([l as u8 * 50, k as u8, 200], 32),
                )
                .unwrap();
            }
        }
    }
}

#[test]
fn image_tree_and_its_tar_gz_read_the_same_interleaved_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    write_tree(&tree);
    let a = cifar10::load(Some(&tree)).unwrap();
    assert_eq!((a.train.len(), a.test.len()), (6, 6));
    // classes interleave: 0000 of classes 0,1,2 then 0001 of each
    assert_eq!(a.train.labels, vec![0, 1, 2, 0, 1, 2]);
    let img1 = &a.train.images[3072..2 * 3072]; // class 1, file 0000: R = 50, G = 0, B = 200
    assert_eq!(
        (img1[0], img1[1024], img1[2048]),
        (50.0 / 255.0, 0.0, 200.0 / 255.0)
    );
    // the same tree as a .tar.gz
    let tgz_dir = tmp.path().join("tgz");
    std::fs::create_dir_all(&tgz_dir).unwrap();
    let f = std::fs::File::create(tgz_dir.join("cifar10-mine.tar.gz")).unwrap();
    let mut ar = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    ar.append_dir_all(".", &tree).unwrap();
    ar.into_inner().unwrap().finish().unwrap();
    let b = cifar10::load(Some(&tgz_dir)).unwrap();
    assert_eq!(a.train.labels, b.train.labels);
    assert_eq!(a.train.images, b.train.images);
    assert_eq!(a.test.images, b.test.images);
}

#[test]
fn bad_images_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path());
    std::fs::write(tmp.path().join("train/bird/0009.png"), png([1, 2, 3], 16)).unwrap();
    let e = cifar10::load(Some(tmp.path())).err().unwrap().to_string();
    assert!(e.contains("16x16") && e.contains("0009.png"), "{e}");
    std::fs::write(tmp.path().join("train/bird/0009.png"), b"not a png").unwrap();
    let e = cifar10::load(Some(tmp.path())).err().unwrap().to_string();
    assert!(e.contains("cannot decode"), "{e}");
}
