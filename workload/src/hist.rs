//! Per-operation timing: a cycle counter and a log-linear latency histogram.
//!
//! [`ticks`] reads the time-stamp counter on x86-64 (fenced so that it orders with the
//! operation being timed) and a monotonic clock elsewhere; [`ticks_per_ns`] converts.
//! [`Histogram`] keeps 32 sub-buckets per power of two (≤ 3.1% error), merges, and
//! serialises to a compact text form so that worker processes can ship theirs to a
//! parent.

use std::time::{Duration, Instant};

#[cfg(not(target_arch = "x86_64"))]
use std::sync::OnceLock;

/// Reads the time-stamp counter, ordered after preceding loads (x86-64), or a
/// monotonic clock in nanoseconds elsewhere.
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: `lfence` and `rdtsc` have no preconditions on x86-64 (SSE2 is part of
    // the x86-64 baseline).
    unsafe {
        core::arch::x86_64::_mm_lfence();
        let t = core::arch::x86_64::_rdtsc();
        core::arch::x86_64::_mm_lfence();
        t
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Ticks per nanosecond, measured against the monotonic clock.
pub fn ticks_per_ns() -> f64 {
    let t0 = ticks();
    let i0 = Instant::now();
    while i0.elapsed() < Duration::from_millis(200) {}
    let t1 = ticks();
    (t1 - t0) as f64 / i0.elapsed().as_nanos() as f64
}

/// Median cost of an empty timed region, in ticks.
pub fn timer_overhead() -> u64 {
    let mut h = Histogram::new();
    for _ in 0..100_000 {
        let a = ticks();
        let b = ticks();
        h.record(b - a);
    }
    h.quantile(0.5)
}

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;

/// Log-linear histogram: 32 sub-buckets per power of two (≤ 3.1% relative error).
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    max: u64,
    n: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; SUB * 64],
            max: 0,
            n: 0,
        }
    }

    #[inline(always)]
    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let k = 63 - v.leading_zeros(); // >= SUB_BITS
        let shift = k - SUB_BITS;
        ((shift as usize + 1) << SUB_BITS) + ((v >> shift) as usize & (SUB - 1))
    }

    fn lower(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let shift = (i >> SUB_BITS) as u32 - 1;
        ((SUB + (i & (SUB - 1))) as u64) << shift
    }

    /// Records one value.
    #[inline(always)]
    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.max = self.max.max(v);
        self.n += 1;
    }

    /// Adds every value of `o`.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.max = self.max.max(o.max);
        self.n += o.n;
    }

    /// Largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// `(value, cumulative fraction)` points, one per non-empty bucket (for CDF plots).
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let mut out = Vec::new();
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            if *c > 0 {
                seen += c;
                out.push((Self::lower(i), seen as f64 / self.n as f64));
            }
        }
        out
    }

    /// Serialises as `max;index:count,index:count,…` (non-empty buckets only).
    pub fn encode(&self) -> String {
        let mut s = format!("{};", self.max);
        for (i, c) in self.counts.iter().enumerate() {
            if *c > 0 {
                s.push_str(&format!("{i}:{c},"));
            }
        }
        s
    }

    /// Parses [`encode`](Self::encode)'s output.
    pub fn decode(text: &str) -> Option<Histogram> {
        let (max, rest) = text.split_once(';')?;
        let mut h = Histogram::new();
        h.max = max.parse().ok()?;
        for pair in rest.split(',').filter(|p| !p.is_empty()) {
            let (i, c) = pair.split_once(':')?;
            let (i, c): (usize, u64) = (i.parse().ok()?, c.parse().ok()?);
            *h.counts.get_mut(i)? += c;
            h.n += c;
        }
        Some(h)
    }

    /// Value at quantile `q` (lower bound of its bucket).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let target = ((self.n as f64 * q).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::lower(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_bucket_precision() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            let got = h.quantile(q) as f64;
            let want = 100_000.0 * q;
            assert!((got - want).abs() / want < 0.04, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 100_000);
        assert_eq!(Histogram::lower(Histogram::index(12345)), 12288);
        let back = Histogram::decode(&h.encode()).unwrap();
        assert_eq!(
            (back.count(), back.max(), back.quantile(0.99)),
            (h.count(), h.max(), h.quantile(0.99))
        );
        assert!(Histogram::decode("nonsense").is_none());
        assert!(
            Histogram::decode("5;99999:1,").is_none(),
            "bucket index out of range"
        );
    }
}
