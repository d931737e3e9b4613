//! Reference cache models for hit-ratio comparisons.
//!
//! These are deliberately simple, exact implementations against which a real
//! cache's hit ratio can be judged on the same key sequence:
//!
//! * [`Lru`] / [`simulate_lru`]: exact least-recently-used replacement, the
//!   classic baseline.
//! * [`simulate_belady`]: Belady's offline optimum (MIN), an upper bound for
//!   any demand-fetch policy of the same capacity.
//! * [`simulate_infinite`]: a cache that never evicts; only compulsory
//!   (first-access) misses remain, the ceiling for every policy.
//!
//! # Conventions
//!
//! All models count in the same way, so their results are comparable:
//!
//! * every element of the key sequence is one access, and a first access to a
//!   key is a (compulsory) miss that counts in the denominator — there is no
//!   warm-up period;
//! * capacity is measured in entries (keys), and every missed key is inserted
//!   (no admission filter or bypass), evicting one resident key if the cache is
//!   full;
//! * a capacity of 0 caches nothing, so every access misses.
//!
//! These are the conventions under which the reference numbers of the OLTP
//! trace in `traces/README.md` were computed.

mod belady;
mod lru;

use std::fmt;

use hashbrown::HashSet;

pub use belady::simulate_belady;
pub use lru::{Lru, simulate_lru};

/// Hit counts of a replayed key sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HitStats {
    /// Accesses that found their key resident.
    pub hits: u64,
    /// All accesses, hits and misses.
    pub accesses: u64,
}

impl HitStats {
    /// Accesses that did not find their key resident.
    #[must_use]
    pub fn misses(&self) -> u64 {
        self.accesses - self.hits
    }

    /// The fraction of accesses that hit, in `[0, 1]`; 0 if there were no
    /// accesses.
    #[must_use]
    pub fn ratio(&self) -> f64 {
        if self.accesses == 0 {
            0.0
        } else {
            self.hits as f64 / self.accesses as f64
        }
    }

    /// Records one access.
    pub fn record(&mut self, hit: bool) {
        self.accesses += 1;
        self.hits += u64::from(hit);
    }
}

impl fmt::Display for HitStats {
    /// Formats as `16.69% (152598/914145)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.2}% ({}/{})",
            self.ratio() * 100.0,
            self.hits,
            self.accesses
        )
    }
}

/// Replays `keys` against a cache of unlimited capacity: every access but the
/// first to each key hits. This is the ceiling for any policy.
#[must_use]
pub fn simulate_infinite(keys: &[u64]) -> HitStats {
    let mut seen = HashSet::new();
    let mut stats = HitStats::default();
    for &key in keys {
        stats.record(!seen.insert(key));
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_stats_ratio_and_display() {
        let stats = HitStats {
            hits: 1,
            accesses: 3,
        };
        assert_eq!(stats.misses(), 2);
        assert!((stats.ratio() - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(stats.to_string(), "33.33% (1/3)");
        assert_eq!(HitStats::default().ratio(), 0.0);
    }

    #[test]
    fn infinite_cache_misses_only_first_accesses() {
        let stats = simulate_infinite(&[1, 2, 1, 3, 2, 1]);
        assert_eq!(
            stats,
            HitStats {
                hits: 3,
                accesses: 6
            }
        );
        assert_eq!(simulate_infinite(&[]), HitStats::default());
    }
}
