//! A small, fast, deterministic pseudo-random number generator.
//!
//! Workloads must be reproducible: a benchmark or a test that fails has to fail
//! the same way on the next run and on another machine. This module therefore
//! provides a fixed, fully specified generator instead of relying on an
//! external crate whose output may change between versions.
//!
//! * [`SplitMix64`] (Steele, Lea & Flood, 2014) expands a single `u64` seed
//!   into well-mixed state words, and its output function [`mix64`] doubles
//!   as a cheap bijective hash.
//! * [`Rng`] is `xoshiro256**` (Blackman & Vigna, 2018): 256 bits of state,
//!   period 2<sup>256</sup> − 1, excellent statistical quality and a handful of
//!   instructions per output.
//!
//! None of this is cryptographically secure; it is meant for simulations only.
//!
//! ```
//! use workload::rng::Rng;
//!
//! let mut a = Rng::new(42);
//! let mut b = Rng::new(42);
//! assert_eq!(a.next_u64(), b.next_u64()); // same seed, same stream
//! let die = a.below(6) + 1;
//! assert!((1..=6).contains(&die));
//! let x = a.next_f64();
//! assert!((0.0..1.0).contains(&x));
//! ```

/// The SplitMix64 increment: 2<sup>64</sup> divided by the golden ratio, rounded
/// to an odd number.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// First multiplier of the SplitMix64 / MurmurHash3-style finaliser.
const MIX_MUL_1: u64 = 0xbf58_476d_1ce4_e5b9;
/// Second multiplier of the SplitMix64 / MurmurHash3-style finaliser.
const MIX_MUL_2: u64 = 0x94d0_49bb_1331_11eb;

/// The SplitMix64 output function: a bijection on `u64` with strong avalanche
/// (every input bit affects every output bit with probability close to ½).
///
/// Each step (`x ^= x >> k` and multiplication by an odd constant) is
/// invertible, so distinct inputs always give distinct outputs; see
/// [`unmix64`] for the inverse.
#[inline]
#[must_use]
pub const fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(MIX_MUL_1);
    x = (x ^ (x >> 27)).wrapping_mul(MIX_MUL_2);
    x ^ (x >> 31)
}

/// The inverse of [`mix64`]: `unmix64(mix64(x)) == x` for every `x`.
#[must_use]
pub const fn unmix64(mut x: u64) -> u64 {
    x = unxorshift_right(x, 31);
    x = unxorshift_right(x.wrapping_mul(inverse_mod_2_64(MIX_MUL_2)), 27);
    unxorshift_right(x.wrapping_mul(inverse_mod_2_64(MIX_MUL_1)), 30)
}

/// Inverts `y = x ^ (x >> shift)` for `0 < shift < 64`.
const fn unxorshift_right(y: u64, shift: u32) -> u64 {
    // Each iteration recovers `shift` more of the high bits of `x`.
    let mut x = y;
    let mut recovered = shift;
    while recovered < 64 {
        x = y ^ (x >> shift);
        recovered += shift;
    }
    y ^ (x >> shift)
}

/// Multiplicative inverse of an odd number modulo 2<sup>64</sup> (Newton's
/// iteration; each step doubles the number of correct low bits).
const fn inverse_mod_2_64(a: u64) -> u64 {
    // `a` is its own inverse modulo 8, i.e. correct to 3 bits.
    let mut inv = a;
    let mut i = 0;
    while i < 5 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(inv)));
        i += 1;
    }
    inv
}

/// The SplitMix64 generator, used to turn one seed into several state words.
///
/// Its output sequence for a given seed is fixed forever: the state advances
/// by a constant and is passed through [`mix64`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Creates a generator whose first output is `mix64(seed + GOLDEN_GAMMA)`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Returns the next output.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }
}

/// The `xoshiro256**` generator, seeded through [`SplitMix64`].
///
/// Deterministic: the same seed always yields the same sequence, on every
/// platform. Cloning an `Rng` forks an identical copy of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// Creates a generator from a 64-bit seed.
    ///
    /// Any seed is fine, including 0: the state words come from four
    /// consecutive [`SplitMix64`] outputs, which are distinct (SplitMix64 is a
    /// bijection of distinct counters), so the forbidden all-zero state cannot
    /// occur. Different seeds give statistically independent streams for all
    /// practical purposes.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut seeder = SplitMix64::new(seed);
        Self {
            state: [
                seeder.next_u64(),
                seeder.next_u64(),
                seeder.next_u64(),
                seeder.next_u64(),
            ],
        }
    }

    /// Creates a generator with an explicit internal state, for reproducing
    /// published test vectors. Returns `None` for the all-zero state, which is
    /// a fixed point of the generator.
    #[must_use]
    pub fn from_state(state: [u64; 4]) -> Option<Self> {
        (state != [0; 4]).then_some(Self { state })
    }

    /// Returns the next 64 uniformly distributed bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s1 << 17;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        let s2 = s2 ^ t;
        let s3 = s3.rotate_left(45);
        self.state = [s0, s1, s2, s3];
        result
    }

    /// Returns a uniformly distributed `f64` in `[0, 1)`.
    ///
    /// Uses the top 53 bits of [`next_u64`](Self::next_u64), so every
    /// returned value is a multiple of 2<sup>−53</sup> and `1.0` is never
    /// returned.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        /// 2<sup>−53</sup>, exactly representable.
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }

    /// Returns a uniformly distributed integer in `0..n`, without modulo bias.
    ///
    /// Uses Lemire's multiply-and-reject method ("Fast Random Integer
    /// Generation in an Interval", 2019): usually one multiplication, and a
    /// division only in the rare case that a rejection test is needed.
    ///
    /// # Panics
    ///
    /// Panics if `n == 0`, since the range `0..0` is empty.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0): the range 0..0 is empty");
        let mut product = u128::from(self.next_u64()) * u128::from(n);
        // The low half decides whether this product falls in the biased
        // region; it is the truncation of the 128-bit product on purpose.
        let mut low = product as u64;
        if low < n {
            // 2^64 mod n: the number of low values that must be rejected.
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                product = u128::from(self.next_u64()) * u128::from(n);
                low = product as u64;
            }
        }
        (product >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_reference_output() {
        // First output of the reference C implementation seeded with 0.
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn xoshiro256starstar_matches_reference_output() {
        // With state [1, 2, 3, 4] the first outputs of the reference
        // implementation are 11520, 0, 1509978240, 1215971899390074240.
        let mut rng = Rng::from_state([1, 2, 3, 4]).expect("non-zero state");
        let got: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(got, [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }

    #[test]
    fn all_zero_state_is_rejected() {
        assert!(Rng::from_state([0; 4]).is_none());
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..16).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..16).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::new(8);
            (0..16).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    #[cfg_attr(miri, ignore = "too slow under miri")]
    fn mix64_is_inverted_by_unmix64() {
        let mut rng = Rng::new(1);
        for x in [0, 1, u64::MAX, 1 << 63, 0x1234_5678_9abc_def0] {
            assert_eq!(unmix64(mix64(x)), x);
        }
        for _ in 0..10_000 {
            let x = rng.next_u64();
            assert_eq!(unmix64(mix64(x)), x);
            assert_eq!(mix64(unmix64(x)), x);
        }
    }

    #[test]
    fn modular_inverse_is_correct() {
        for a in [1u64, 3, MIX_MUL_1, MIX_MUL_2, u64::MAX] {
            assert_eq!(a.wrapping_mul(inverse_mod_2_64(a)), 1);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "too slow under miri")]
    fn next_f64_stays_in_unit_interval_and_has_mean_one_half() {
        let mut rng = Rng::new(3);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x), "{x} outside [0, 1)");
            sum += x;
        }
        let mean = sum / f64::from(n);
        // Standard error is 1/sqrt(12 n) ~ 0.0009; allow five of them.
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "too slow under miri")]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = Rng::new(11);
        let mut counts = [0u32; 10];
        let draws = 100_000;
        for _ in 0..draws {
            let v = rng.below(10);
            counts[usize::try_from(v).expect("v < 10")] += 1;
        }
        // Expected 10_000 per bucket, standard deviation ~95.
        for (bucket, &c) in counts.iter().enumerate() {
            assert!((9_500..=10_500).contains(&c), "bucket {bucket}: {c}");
        }
    }

    #[test]
    fn below_handles_extreme_bounds() {
        let mut rng = Rng::new(5);
        for _ in 0..1000 {
            assert_eq!(rng.below(1), 0);
            assert!(rng.below(u64::MAX) < u64::MAX);
            // A bound just above 2^63 rejects almost half of all draws.
            assert!(rng.below((1 << 63) + 1) <= 1 << 63);
        }
    }

    #[test]
    #[should_panic(expected = "range 0..0 is empty")]
    fn below_zero_panics() {
        Rng::new(0).below(0);
    }
}
