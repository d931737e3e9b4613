//! Zipf-distributed key popularity.
//!
//! [`Zipf`] draws ranks from a Zipf (zeta-like, truncated) distribution over
//! `n` items: rank `r` (0-based, rank 0 most popular) is drawn with probability
//!
//! ```text
//! P(r) = (r + 1)^-s / H(n, s),    H(n, s) = Σ_{k=1..n} k^-s
//! ```
//!
//! where `s >= 0` is the exponent. `s = 0` is the uniform distribution; cache
//! studies commonly use `s` between 0.6 and 1.2, with 0.99 a classic choice.
//!
//! Sampling uses *rejection-inversion* (W. Hörmann and G. Derflinger,
//! "Rejection-inversion to generate variates from monotone discrete
//! distributions", ACM TOMACS 6(3), 1996). It needs no table and no harmonic
//! sum, so setup and every sample are O(1) even for `n` around 10⁹, and the
//! expected number of uniform draws per sample is close to 1.
//!
//! Ranks are small, adjacent integers, which is unrealistic as cache keys
//! (neighbouring hot keys share hash-table cache lines, sort together, …).
//! [`scramble`] maps ranks to keys through a seeded bijection of `u64`, so hot
//! keys are spread over the whole key space without ever colliding.
//!
//! ```
//! use workload::rng::Rng;
//! use workload::zipf::{scramble, Zipf};
//!
//! let zipf = Zipf::new(1_000_000, 0.99)?;
//! let mut rng = Rng::new(1);
//! let keys: Vec<u64> = (0..1000).map(|_| scramble(zipf.sample(&mut rng), 7)).collect();
//! assert_eq!(keys.len(), 1000);
//! # Ok::<(), workload::zipf::ZipfError>(())
//! ```

use std::error::Error;
use std::fmt;

use crate::rng::{Rng, mix64, unmix64};

/// Why a [`Zipf`] distribution could not be built.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ZipfError {
    /// The distribution needs at least one key.
    NoKeys,
    /// The exponent must be a finite number `>= 0`.
    InvalidExponent(f64),
}

impl fmt::Display for ZipfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoKeys => f.write_str("a Zipf distribution needs at least one key"),
            Self::InvalidExponent(s) => {
                write!(f, "Zipf exponent must be finite and >= 0, got {s}")
            }
        }
    }
}

impl Error for ZipfError {}

/// A Zipf distribution over ranks `0..n_keys`, sampled in O(1).
///
/// See the [module documentation](self) for the definition and algorithm.
#[derive(Debug, Clone, PartialEq)]
pub struct Zipf {
    n_keys: u64,
    exponent: f64,
    /// `n_keys` as a float, the upper clamp for candidate ranks.
    n_f64: f64,
    /// `H(1.5) - 1`: the lower end of the inversion interval.
    h_integral_x1: f64,
    /// `H(n + 0.5)`: the upper end of the inversion interval.
    h_integral_n: f64,
    /// Squeeze constant: candidates with `k - x <= squeeze` are accepted
    /// without evaluating `H`.
    squeeze: f64,
}

impl Zipf {
    /// Builds the distribution over `n_keys` ranks with the given exponent.
    ///
    /// Works for any `n_keys >= 1`; above 2<sup>53</sup> the ranks are
    /// limited by `f64` resolution (ranks are still in range, but not every
    /// one of them can be produced).
    ///
    /// # Errors
    ///
    /// [`ZipfError::NoKeys`] if `n_keys == 0`;
    /// [`ZipfError::InvalidExponent`] if `exponent` is negative, infinite or
    /// NaN.
    pub fn new(n_keys: u64, exponent: f64) -> Result<Self, ZipfError> {
        if n_keys == 0 {
            return Err(ZipfError::NoKeys);
        }
        if !exponent.is_finite() || exponent < 0.0 {
            return Err(ZipfError::InvalidExponent(exponent));
        }
        // Precision loss above 2^53 is documented above.
        let n_f64 = n_keys as f64;
        let h_integral_x1 = h_integral(1.5, exponent) - 1.0;
        let h_integral_n = h_integral(n_f64 + 0.5, exponent);
        let squeeze =
            2.0 - h_integral_inverse(h_integral(2.5, exponent) - h(2.0, exponent), exponent);
        Ok(Self {
            n_keys,
            exponent,
            n_f64,
            h_integral_x1,
            h_integral_n,
            squeeze,
        })
    }

    /// The number of ranks; samples are in `0..n_keys()`.
    #[must_use]
    pub fn n_keys(&self) -> u64 {
        self.n_keys
    }

    /// The exponent `s`.
    #[must_use]
    pub fn exponent(&self) -> f64 {
        self.exponent
    }

    /// Draws one rank in `0..n_keys`; rank 0 is the most popular.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        if self.exponent == 0.0 {
            // Uniform: exact and cheaper than the general path (which would
            // also be correct, accepting every candidate).
            return rng.below(self.n_keys);
        }
        loop {
            // Uniform over (H(1.5) - 1, H(n + 0.5)]. The area to the left of
            // H(1.5) has been widened by h(1) = 1 so that rank 1 gets its full
            // probability mass.
            let u = self.h_integral_n + rng.next_f64() * (self.h_integral_x1 - self.h_integral_n);
            let x = h_integral_inverse(u, self.exponent);
            // Round to the nearest rank and keep it inside [1, n]; `x` may
            // stray just outside by rounding. The float-to-int cast saturates.
            let k = (x + 0.5).clamp(1.0, self.n_f64) as u64;
            let k = k.clamp(1, self.n_keys);
            let k_f64 = k as f64;
            // Accept if `u` falls under the histogram bar of rank `k`, i.e.
            // in [H(k + 0.5) - h(k), H(k + 0.5)]. The squeeze avoids the
            // transcendental functions for most candidates.
            if k_f64 - x <= self.squeeze
                || u >= h_integral(k_f64 + 0.5, self.exponent) - h(k_f64, self.exponent)
            {
                return k - 1;
            }
        }
    }
}

/// The unnormalised density `h(x) = x^-s`.
fn h(x: f64, s: f64) -> f64 {
    (-s * x.ln()).exp()
}

/// An antiderivative of [`h`], `H(x) = (x^(1-s) - 1) / (1 - s)`, which tends
/// to `ln x` as `s -> 1`. Written so that it stays accurate for `s` near 1.
fn h_integral(x: f64, s: f64) -> f64 {
    let log_x = x.ln();
    expm1_over_x((1.0 - s) * log_x) * log_x
}

/// The inverse of [`h_integral`]: `H⁻¹(y) = (1 + (1 - s) y)^(1 / (1 - s))`.
fn h_integral_inverse(y: f64, s: f64) -> f64 {
    // For s > 1, `t` approaches -1 only as x -> infinity; never for x <= n + 0.5.
    let t = ((1.0 - s) * y).max(-1.0);
    (log1p_over_x(t) * y).exp()
}

/// `(e^x - 1) / x`, continuous at 0 (value 1).
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        // Taylor series; the next term is below f64 resolution.
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + x * 0.25))
    }
}

/// `ln(1 + x) / x`, continuous at 0 (value 1).
fn log1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - x * 0.25))
    }
}

/// Maps a rank to a key so that popular keys are spread over the `u64` space.
///
/// For a fixed `seed` this is a **bijection** of `u64`: distinct ranks always
/// give distinct keys, so scrambling never merges two ranks into one key and
/// the popularity distribution over keys is exactly the one over ranks. Keys
/// of neighbouring ranks differ in about half of their bits. Different seeds
/// give unrelated permutations, which lets a benchmark shift which keys are
/// hot (e.g. to model a popularity change) without changing the distribution.
///
/// The mapping is `mix64(rank + mix64(seed))`, where [`mix64`] is the
/// SplitMix64 finaliser; [`unscramble`] inverts it. It is fixed: keys for a
/// given `(rank, seed)` will not change between versions of this crate.
#[inline]
#[must_use]
pub const fn scramble(rank: u64, seed: u64) -> u64 {
    mix64(rank.wrapping_add(mix64(seed)))
}

/// The inverse of [`scramble`]: `unscramble(scramble(rank, seed), seed) == rank`.
#[must_use]
pub const fn unscramble(key: u64, seed: u64) -> u64 {
    unmix64(key).wrapping_sub(mix64(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact pmf over all ranks, by summing the harmonic number directly.
    fn pmf(n: u64, s: f64) -> Vec<f64> {
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        weights.into_iter().map(|w| w / total).collect()
    }

    fn histogram(zipf: &Zipf, samples: usize, seed: u64) -> Vec<u64> {
        let mut rng = Rng::new(seed);
        let len = usize::try_from(zipf.n_keys()).expect("small n in tests");
        let mut counts = vec![0u64; len];
        for _ in 0..samples {
            let rank = zipf.sample(&mut rng);
            let slot = usize::try_from(rank).expect("rank fits usize");
            assert!(slot < len, "rank {rank} out of range");
            counts[slot] += 1;
        }
        counts
    }

    /// Checks the top ranks individually (within 5 standard errors) and the
    /// whole histogram with a chi-square test (within 5 standard deviations
    /// of its mean). The seeds are fixed, so this cannot flake.
    fn assert_matches_pmf(n: u64, s: f64, samples: usize) {
        let zipf = Zipf::new(n, s).expect("valid parameters");
        let counts = histogram(&zipf, samples, 0x5eed ^ n);
        let expected = pmf(n, s);
        let total = samples as f64;
        for (rank, (&c, &p)) in counts.iter().zip(&expected).take(10).enumerate() {
            let freq = c as f64 / total;
            let sigma = (p * (1.0 - p) / total).sqrt();
            assert!(
                (freq - p).abs() <= 5.0 * sigma,
                "n={n} s={s} rank {rank}: frequency {freq:.6}, pmf {p:.6}, sigma {sigma:.2e}"
            );
        }
        let chi2: f64 = counts
            .iter()
            .zip(&expected)
            .map(|(&c, &p)| {
                let e = p * total;
                (c as f64 - e).powi(2) / e
            })
            .sum();
        let dof = (n - 1) as f64;
        let limit = dof + 5.0 * (2.0 * dof).sqrt();
        assert!(
            chi2 <= limit,
            "n={n} s={s}: chi-square {chi2:.1} above {limit:.1}"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "draws a million samples")]
    fn matches_pmf_for_exponent_0_99() {
        assert_matches_pmf(1000, 0.99, 1_000_000);
    }

    #[test]
    #[cfg_attr(miri, ignore = "draws a million samples")]
    fn matches_pmf_for_exponent_1() {
        assert_matches_pmf(1000, 1.0, 1_000_000);
    }

    #[test]
    #[cfg_attr(miri, ignore = "draws a million samples")]
    fn matches_pmf_for_other_exponents() {
        assert_matches_pmf(1000, 0.5, 1_000_000);
        assert_matches_pmf(100, 1.5, 1_000_000);
        // Close to, but not exactly, 1 exercises the series branches.
        assert_matches_pmf(100, 1.0 + 1e-10, 200_000);
    }

    #[test]
    #[cfg_attr(miri, ignore = "draws a million samples")]
    fn exponent_zero_is_uniform() {
        let zipf = Zipf::new(1000, 0.0).expect("valid parameters");
        let counts = histogram(&zipf, 1_000_000, 9);
        // Expected 1000 per rank, sigma ~31.6.
        for (rank, &c) in counts.iter().enumerate() {
            assert!((840..=1160).contains(&c), "rank {rank}: {c}");
        }
        assert_matches_pmf(1000, 0.0, 1_000_000);
    }

    #[test]
    #[cfg_attr(miri, ignore = "draws a million samples")]
    fn handles_a_billion_keys() {
        let n = 1_000_000_000;
        let zipf = Zipf::new(n, 1.0).expect("valid parameters");
        let mut rng = Rng::new(17);
        let samples = 1_000_000;
        let mut top = [0u64; 3];
        let mut beyond_million = 0u64;
        for _ in 0..samples {
            let r = zipf.sample(&mut rng);
            assert!(r < n);
            if let Some(slot) = top.get_mut(usize::try_from(r).unwrap_or(usize::MAX)) {
                *slot += 1;
            }
            beyond_million += u64::from(r >= 1_000_000);
        }
        // H(n, 1) = ln n + γ + 1/(2n) - ... to far better than needed here.
        let harmonic = (n as f64).ln() + 0.577_215_664_901_532_9;
        let total = f64::from(samples);
        for (rank, &c) in top.iter().enumerate() {
            let p = 1.0 / ((rank + 1) as f64 * harmonic);
            let sigma = (p * (1.0 - p) / total).sqrt();
            let freq = c as f64 / total;
            assert!(
                (freq - p).abs() <= 5.0 * sigma,
                "rank {rank}: {freq} vs {p}"
            );
        }
        // P(rank >= 10^6) = (H(10^9) - H(10^6)) / H(10^9) ~ ln(1000) / 21.3.
        let p_tail = (1000f64).ln() / harmonic;
        let freq_tail = beyond_million as f64 / total;
        assert!(
            (freq_tail - p_tail).abs() < 0.005,
            "tail {freq_tail} vs {p_tail}"
        );
    }

    #[test]
    fn single_key_always_gives_rank_zero() {
        let mut rng = Rng::new(0);
        for s in [0.0, 0.5, 0.99, 1.0, 3.0] {
            let zipf = Zipf::new(1, s).expect("valid parameters");
            for _ in 0..100 {
                assert_eq!(zipf.sample(&mut rng), 0);
            }
        }
    }

    #[test]
    fn rejects_invalid_parameters() {
        assert_eq!(Zipf::new(0, 1.0), Err(ZipfError::NoKeys));
        assert!(matches!(
            Zipf::new(10, -0.1),
            Err(ZipfError::InvalidExponent(_))
        ));
        assert!(matches!(
            Zipf::new(10, f64::NAN),
            Err(ZipfError::InvalidExponent(_))
        ));
        assert!(matches!(
            Zipf::new(10, f64::INFINITY),
            Err(ZipfError::InvalidExponent(_))
        ));
        let message = Zipf::new(10, -2.0)
            .expect_err("negative exponent")
            .to_string();
        assert!(message.contains("-2"), "{message}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "too slow under miri")]
    fn huge_key_counts_stay_in_range() {
        let mut rng = Rng::new(4);
        for s in [0.0, 0.5, 0.99, 1.0, 1.2] {
            let zipf = Zipf::new(u64::MAX, s).expect("valid parameters");
            for _ in 0..1000 {
                // Any u64 is in range; the point is that nothing panics or
                // loops forever at the edge of f64 precision.
                let _ = zipf.sample(&mut rng);
            }
        }
    }

    #[test]
    fn helpers_are_continuous_at_zero() {
        for x in [1e-9, -1e-9, 1e-7, -1e-7] {
            assert!((expm1_over_x(x) - x.exp_m1() / x).abs() < 1e-12);
            assert!((log1p_over_x(x) - x.ln_1p() / x).abs() < 1e-12);
        }
        assert_eq!(expm1_over_x(0.0), 1.0);
        assert_eq!(log1p_over_x(0.0), 1.0);
    }

    #[test]
    fn h_integral_inverse_inverts_h_integral() {
        for s in [0.0, 0.5, 0.99, 1.0, 1.01, 2.0] {
            // For s > 1, H flattens towards 1/(s - 1) and inverting it far
            // out loses precision; that region carries negligible mass.
            let largest = if s > 1.5 { 1e6 } else { 1e9 };
            for x in [1.0, 1.5, 2.5, 10.0, 1e6, largest] {
                let y = h_integral(x, s);
                let back = h_integral_inverse(y, s);
                assert!((back - x).abs() <= 1e-9 * x, "s={s} x={x}: got {back}");
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "too slow under miri")]
    fn scramble_is_a_seeded_bijection() {
        let mut rng = Rng::new(2);
        for seed in [0, 1, 42, u64::MAX] {
            for rank in (0..1000).chain((0..1000).map(|_| rng.next_u64())) {
                assert_eq!(unscramble(scramble(rank, seed), seed), rank);
            }
        }
        // Neighbouring ranks land far apart, and seeds change the mapping.
        let keys: Vec<u64> = (0..64).map(|r| scramble(r, 0)).collect();
        for pair in keys.windows(2) {
            let differing_bits = (pair[0] ^ pair[1]).count_ones();
            assert!((12..=52).contains(&differing_bits), "{pair:x?}");
        }
        assert_ne!(scramble(0, 0), scramble(0, 1));
        // The mapping is part of the crate's stable behaviour.
        assert_eq!(scramble(0, 0), mix64(mix64(0)));
    }
}
