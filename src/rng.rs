//! Seeded random streams. Every random decision in a run (data order, initial weights, the
//! stochastic rounding of G, later the write disturbance) draws from a stream derived from the
//! run seed and a stream name, so streams do not shift when another one is used more or less.
//! Streams keyed by position (`Rng::keyed`) give the same numbers whatever the thread count.

/// Stream names, so that no two uses of randomness share a stream by accident.
pub mod stream {
    pub const DATA: u64 = 0x0da7a;
    pub const INIT: u64 = 0x1417;
    pub const G_ROUND: u64 = 0x6_0d;
    pub const CALIB: u64 = 0xca11b;
    pub const DEVICE: u64 = 0xde51ce;
    pub const WRITE: u64 = 0x3217e;
    pub const READ: u64 = 0x5ead;
    pub const AUGMENT: u64 = 0xa06;
    pub const CUTOUT: u64 = 0xc07;
}

/// SplitMix64 finaliser: a good 64-bit mix, used to derive seeds from keys.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small, fast generator (xoshiro256++), seeded through SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut s = [0u64; 4];
        for v in &mut s {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *v = mix64(z);
        }
        Rng { s }
    }

    /// A generator for a named stream, further keyed by any number of integers
    /// (epoch, step, layer, row ...).
    pub fn keyed(seed: u64, stream: u64, keys: &[u64]) -> Self {
        let mut h = mix64(seed ^ mix64(stream));
        for &k in keys {
            h = mix64(h ^ k.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        }
        Rng::new(h)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3]))
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 24 bits of resolution (exact in f32).
    #[inline]
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [lo, hi).
    #[inline]
    pub fn uniform_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * n as f64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
        let u2 = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_stream_different_key_different_stream() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::keyed(1, stream::DATA, &[3]);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::keyed(1, stream::DATA, &[3]);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::keyed(1, stream::DATA, &[4]);
        assert_eq!(a, b);
        assert_ne!(a[0], r.next_u64());
    }

    #[test]
    fn uniform_mean_is_half() {
        let mut r = Rng::new(7);
        let n = 100_000;
        let m: f64 = (0..n).map(|_| r.uniform() as f64).sum::<f64>() / n as f64;
        assert!((m - 0.5).abs() < 0.01, "{m}");
    }
}
