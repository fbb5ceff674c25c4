//! CIFAR augmentation and normalisation, seeded: 4-pixel zero padding + a random 32×32 crop +
//! a horizontal flip with probability 1/2, and optionally a cutout square, drawn per (seed,
//! epoch, sample), so a resumed run sees the same images. Normalisation is per channel,
//! `(x − mean)/std`.

use crate::rng::{Rng, stream};

/// CIFAR-10 training-set channel means and standard deviations (the usual published values).
pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// One sample's augmentation: zero padding, the crop's offsets in the padded image
/// (0..=2·pad each), and whether to flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    pub pad: usize,
    pub dy: usize,
    pub dx: usize,
    pub flip: bool,
}

/// The augmentation of one sample, drawn from (seed, epoch, sample).
pub fn draw(seed: u64, epoch: u64, sample: u64, pad: usize) -> Crop {
    let mut r = Rng::keyed(seed, stream::AUGMENT, &[epoch, sample]);
    Crop {
        pad,
        dy: r.below(2 * pad + 1),
        dx: r.below(2 * pad + 1),
        flip: r.uniform() < 0.5,
    }
}

/// Pad `img` (`[c, h, w]`) by `crop.pad` zeros, take the `h×w` window at (dy, dx) of the padded
/// image, and flip it horizontally if asked.
pub fn pad_crop_flip(img: &[f32], c: usize, h: usize, w: usize, crop: Crop) -> Vec<f32> {
    let Crop { pad, dy, dx, flip } = crop;
    let mut out = vec![0.0; c * h * w];
    for ch in 0..c {
        for y in 0..h {
            let sy = (y + dy) as isize - pad as isize;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            for x in 0..w {
                let sx = (x + dx) as isize - pad as isize;
                if sx < 0 || sx >= w as isize {
                    continue;
                }
                let ox = if flip { w - 1 - x } else { x };
                out[(ch * h + y) * w + ox] = img[(ch * h + sy as usize) * w + sx as usize];
            }
        }
    }
    out
}

/// The centre (row, column) of a sample's cutout square, uniform over the image, drawn from
/// (seed, epoch, sample) on a stream of its own: the crops and flips stay those of a run
/// without cutout.
pub fn draw_cutout(seed: u64, epoch: u64, sample: u64, h: usize, w: usize) -> (usize, usize) {
    let mut r = Rng::keyed(seed, stream::CUTOUT, &[epoch, sample]);
    (r.below(h), r.below(w))
}

/// Cutout (DeVries & Taylor 2017): zero the `size×size` square centred at `centre` in every
/// channel of `[c, h, w]`, clipped to the image (a centre near the edge hides less, as in the
/// paper). Applied after normalisation, zero is the mean colour.
pub fn cutout(img: &mut [f32], c: usize, h: usize, w: usize, size: usize, centre: (usize, usize)) {
    let span =
        |mid: usize, len: usize| mid.saturating_sub(size / 2)..(mid + size - size / 2).min(len);
    let (rows, cols) = (span(centre.0, h), span(centre.1, w));
    for ch in 0..c {
        for y in rows.clone() {
            img[(ch * h + y) * w..][cols.clone()].fill(0.0);
        }
    }
}

/// Normalise `[c, h, w]` in place.
pub fn normalize(img: &mut [f32], mean: &[f32], std: &[f32]) {
    let plane = img.len() / mean.len();
    for (ch, p) in img.chunks_mut(plane).enumerate() {
        p.iter_mut().for_each(|v| *v = (*v - mean[ch]) / std[ch]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> Vec<f32> {
        (0..2 * 4 * 5).map(|v| v as f32 + 1.0).collect() // c = 2, h = 4, w = 5
    }

    #[test]
    fn centre_crop_without_flip_is_the_identity() {
        assert_eq!(
            pad_crop_flip(
                &img(),
                2,
                4,
                5,
                Crop {
                    pad: 4,
                    dy: 4,
                    dx: 4,
                    flip: false
                }
            ),
            img()
        );
    }

    #[test]
    fn flip_is_a_flip_and_twice_is_the_identity() {
        let f = pad_crop_flip(
            &img(),
            2,
            4,
            5,
            Crop {
                pad: 4,
                dy: 4,
                dx: 4,
                flip: true,
            },
        );
        for ch in 0..2 {
            for y in 0..4 {
                for x in 0..5 {
                    assert_eq!(f[(ch * 4 + y) * 5 + x], img()[(ch * 4 + y) * 5 + 4 - x]);
                }
            }
        }
        assert_eq!(
            pad_crop_flip(
                &f,
                2,
                4,
                5,
                Crop {
                    pad: 4,
                    dy: 4,
                    dx: 4,
                    flip: true
                }
            ),
            img()
        );
    }

    #[test]
    fn cutout_zeroes_the_square_clipped_to_the_image() {
        // 1 channel, 4×5 of ones; a 2×2 square at (1, 2) covers rows 0-1, columns 1-2
        let mut a = vec![1.0; 20];
        cutout(&mut a, 1, 4, 5, 2, (1, 2));
        let zeros: Vec<usize> = (0..20).filter(|&i| a[i] == 0.0).collect();
        assert_eq!(zeros, vec![1, 2, 6, 7]);
        // a 3×3 square at the corner (0, 0) keeps only its inside part: rows 0-1, columns 0-1,
        // in both channels
        let mut b = vec![1.0; 40];
        cutout(&mut b, 2, 4, 5, 3, (0, 0));
        let zeros: Vec<usize> = (0..40).filter(|&i| b[i] == 0.0).collect();
        assert_eq!(zeros, vec![0, 1, 5, 6, 20, 21, 25, 26]);
        // size 0 changes nothing; the centres are seeded and inside the image
        let mut c = vec![1.0; 20];
        cutout(&mut c, 1, 4, 5, 0, (2, 2));
        assert!(c.iter().all(|&v| v == 1.0));
        for (seed, epoch, i) in [(1, 0, 0), (2, 5, 9), (3, 1, 7)] {
            let (y, x) = draw_cutout(seed, epoch, i, 32, 32);
            assert!(y < 32 && x < 32);
            assert_eq!(draw_cutout(seed, epoch, i, 32, 32), (y, x));
        }
    }

    #[test]
    fn crop_stays_inside_the_padded_image_and_shifts_content() {
        // offset (0, 0): the image moves down-right by 4; the top-left 4 rows/cols are padding
        let s = pad_crop_flip(
            &img(),
            2,
            4,
            5,
            Crop {
                pad: 4,
                dy: 0,
                dx: 0,
                flip: false,
            },
        );
        assert!(
            s.iter().all(|&v| v == 0.0),
            "a 4-pixel shift of a 4x5 image leaves only padding"
        );
        let s = pad_crop_flip(
            &img(),
            2,
            4,
            5,
            Crop {
                pad: 1,
                dy: 0,
                dx: 0,
                flip: false,
            },
        );
        assert_eq!(s[0], 0.0);
        assert_eq!(s[5 + 1], img()[0]);
        for (seed, epoch, i) in [(1, 0, 0), (2, 5, 9), (3, 1, 7)] {
            let c = draw(seed, epoch, i, 4);
            assert!(c.dy <= 8 && c.dx <= 8);
            assert_eq!(draw(seed, epoch, i, 4), c);
        }
    }
}
