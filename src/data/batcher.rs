//! Seeded shuffling into batches. The order of epoch `e` is a permutation drawn from the stream
//! (seed, DATA, e), so a resumed run sees exactly the batches an uninterrupted one would.

use super::Dataset;
use super::augment::Crop;
use crate::rng::{Rng, stream};
use crate::tensor::Tensor;

/// The sample order of one epoch.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    Rng::keyed(seed, stream::DATA, &[epoch]).shuffle(&mut idx);
    idx
}

/// Gather samples `idx` into a channel-major `[c, b, h, w]` tensor and their labels.
pub fn gather(ds: &Dataset, idx: &[u32]) -> (Tensor, Vec<u8>) {
    let (c, hw) = (ds.c, ds.h * ds.w);
    let b = idx.len();
    let mut x = vec![0.0; c * b * hw];
    for (j, &i) in idx.iter().enumerate() {
        let img = &ds.images[i as usize * c * hw..][..c * hw];
        for ci in 0..c {
            x[(ci * b + j) * hw..][..hw].copy_from_slice(&img[ci * hw..][..hw]);
        }
    }
    let labels = idx.iter().map(|&i| ds.labels[i as usize]).collect();
    (Tensor::new(vec![c, b, ds.h, ds.w], x), labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_views_are_crops_of_the_padded_image() {
        use crate::data::augment::{CIFAR_MEAN, CIFAR_STD};
        let (c, h, w) = (3, 5, 4);
        let mut rng = Rng::new(3);
        let ds = Dataset {
            images: (0..2 * c * h * w).map(|_| rng.uniform()).collect(),
            labels: vec![1, 2],
            c,
            h,
            w,
        };
        let pipe = Pipeline {
            augment: true,
            normalize: Some((CIFAR_MEAN, CIFAR_STD)),
            cutout: 3,
            seed: 1,
        };
        let idx = [1, 0];
        let (plain, labels) = pipe.batch(&ds, &idx, 0, false);
        let view = |dy, dx, flip| {
            let crop = Crop {
                pad: 2,
                dy,
                dx,
                flip,
            };
            pipe.view(&ds, &idx, crop)
        };
        // the centred window is the image (no cutout at test time); mirrored, its mirror
        assert_eq!(view(2, 2, false), (plain.clone(), labels));
        assert_eq!(view(2, 2, true).0, mirrored(&plain));
        // two pixels down: the top rows are the padding's black, normalised; the rest moves
        let down = view(0, 2, false).0;
        for ch in 0..c {
            let black = (0.0 - CIFAR_MEAN[ch]) / CIFAR_STD[ch];
            for j in 0..idx.len() {
                let (d, p) = (
                    &down.data[(ch * 2 + j) * h * w..][..h * w],
                    &plain.data[(ch * 2 + j) * h * w..][..h * w],
                );
                assert!(d[..2 * w].iter().all(|&v| v == black));
                assert_eq!(&d[2 * w..], &p[..(h - 2) * w]);
            }
        }
    }

    #[test]
    fn order_is_a_seeded_permutation() {
        let a = epoch_order(100, 1, 0);
        assert_eq!(a, epoch_order(100, 1, 0));
        assert_ne!(a, epoch_order(100, 1, 1));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<u32>>());
    }

    #[test]
    fn mirrored_flips_every_row_and_twice_is_the_identity() {
        let x = Tensor::new(vec![2, 1, 2, 3], (0..12).map(|v| v as f32).collect());
        let m = mirrored(&x);
        assert_eq!(
            m.data,
            vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0, 11.0, 10.0, 9.0]
        );
        assert_eq!(mirrored(&m), x);
    }

    #[test]
    fn gather_is_channel_major() {
        let ds = Dataset {
            images: (0..2 * 2 * 4).map(|v| v as f32).collect(), // 2 images, 2 channels, 2x2
            labels: vec![3, 7],
            c: 2,
            h: 2,
            w: 2,
        };
        let (x, l) = gather(&ds, &[1, 0]);
        assert_eq!(x.shape, vec![2, 2, 2, 2]);
        // channel 0 of image 1, channel 0 of image 0, channel 1 of image 1, channel 1 of image 0
        assert_eq!(&x.data[..4], &[8.0, 9.0, 10.0, 11.0]);
        assert_eq!(&x.data[4..8], &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(&x.data[8..12], &[12.0, 13.0, 14.0, 15.0]);
        assert_eq!(l, vec![7, 3]);
    }
}

/// How a split becomes batches: CIFAR training images are padded, cropped and flipped
/// (`augment`), and lose a `cutout`-sized square when that is > 0; images are normalised per
/// channel when the network's input is not quantized.
#[derive(Clone, Copy, Debug)]
pub struct Pipeline {
    pub augment: bool,
    pub normalize: Option<([f32; 3], [f32; 3])>,
    pub cutout: usize,
    pub seed: u64,
}

impl Pipeline {
    /// Batches as stored (MNIST).
    pub fn plain(seed: u64) -> Self {
        Pipeline {
            augment: false,
            normalize: None,
            cutout: 0,
            seed,
        }
    }

    /// Samples `idx` of `ds` as a `[c, b, h, w]` batch; `train` turns augmentation on.
    pub fn batch(&self, ds: &Dataset, idx: &[u32], epoch: u64, train: bool) -> (Tensor, Vec<u8>) {
        let augment = self.augment && train;
        if !augment && self.normalize.is_none() {
            return gather(ds, idx);
        }
        let crop = |i: u32| augment.then(|| super::augment::draw(self.seed, epoch, i as u64, 4));
        self.assemble(ds, idx, crop, augment.then_some(epoch))
    }

    /// Samples `idx` of `ds` each seen through the same fixed `crop` (a test-time view: shifted
    /// by padding and cropping as in training, mirrored or not), normalised, no cutout.
    pub fn view(&self, ds: &Dataset, idx: &[u32], crop: Crop) -> (Tensor, Vec<u8>) {
        self.assemble(ds, idx, |_| Some(crop), None)
    }

    /// The batch of `idx`: each image cropped by `crop(i)` (if any), normalised, and given its
    /// cutout of `cutout_epoch`'s draw (if any).
    fn assemble(
        &self,
        ds: &Dataset,
        idx: &[u32],
        crop: impl Fn(u32) -> Option<Crop>,
        cutout_epoch: Option<u64>,
    ) -> (Tensor, Vec<u8>) {
        let (c, h, w) = (ds.c, ds.h, ds.w);
        let hw = h * w;
        let b = idx.len();
        let mut x = vec![0.0; c * b * hw];
        for (j, &i) in idx.iter().enumerate() {
            let src = &ds.images[i as usize * c * hw..][..c * hw];
            let mut img = match crop(i) {
                Some(crop) => super::augment::pad_crop_flip(src, c, h, w, crop),
                None => src.to_vec(),
            };
            if let Some((mean, std)) = &self.normalize {
                super::augment::normalize(&mut img, &mean[..c], &std[..c]);
            }
            if let Some(epoch) = cutout_epoch.filter(|_| self.cutout > 0) {
                let centre = super::augment::draw_cutout(self.seed, epoch, i as u64, h, w);
                super::augment::cutout(&mut img, c, h, w, self.cutout, centre);
            }
            for ch in 0..c {
                x[(ch * b + j) * hw..][..hw].copy_from_slice(&img[ch * hw..][..hw]);
            }
        }
        let labels = idx.iter().map(|&i| ds.labels[i as usize]).collect();
        (Tensor::new(vec![c, b, h, w], x), labels)
    }
}

/// A `[c, b, h, w]` batch mirrored left to right (the flipped view of test-time augmentation).
pub fn mirrored(x: &Tensor) -> Tensor {
    let w = x.dim(3);
    let mut out = x.clone();
    for (o, row) in out.data.chunks_mut(w).zip(x.data.chunks(w)) {
        o.iter_mut()
            .zip(row.iter().rev())
            .for_each(|(o, v)| *o = *v);
    }
    out
}
