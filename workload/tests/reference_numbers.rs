//! Reference hit ratios on the ARC paper's OLTP trace (`traces/OLTP.lis.zst`).
//!
//! The percentages come from an exact simulator and are ground truth; the
//! table is repeated in `traces/README.md`. They hold under the conventions of
//! `workload::model`: every page access counts (first accesses are compulsory
//! misses), capacity is in entries, and every missed key is inserted.
//!
//! The exact hit counts are pinned as well; they were cross-checked against an
//! independent implementation.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Instant;

use workload::model::{HitStats, simulate_belady, simulate_infinite, simulate_lru};
use workload::trace::load_oltp;

/// Page accesses in the trace (all 914,145 requests are single-block).
const ACCESSES: u64 = 914_145;
/// Distinct pages in the trace.
const UNIQUE_PAGES: u64 = 186_880;

/// The trace, decompressed once and shared by the tests in this file.
fn oltp() -> &'static [u64] {
    static TRACE: OnceLock<Vec<u64>> = OnceLock::new();
    TRACE.get_or_init(|| {
        let start = Instant::now();
        let trace =
            load_oltp().unwrap_or_else(|e| panic!("cannot load the OLTP trace: {e} ({e:?})"));
        eprintln!("loaded the OLTP trace in {:?}", start.elapsed());
        trace
    })
}

/// Asserts a hit ratio against a percentage with two decimals, and the exact
/// hit count.
fn assert_reference(what: &str, stats: HitStats, percent: f64, hits: u64) {
    let rounded = (stats.ratio() * 10_000.0).round() / 100.0;
    assert!(
        (rounded - percent).abs() <= 0.01 + 1e-9,
        "{what}: got {stats}, reference {percent:.2}%"
    );
    assert_eq!(stats.accesses, ACCESSES, "{what}: accesses");
    assert_eq!(stats.hits, hits, "{what}: exact hits ({stats})");
}

#[test]
#[cfg_attr(miri, ignore = "replays the 914k-access OLTP trace")]
fn trace_shape() {
    let trace = oltp();
    assert_eq!(trace.len() as u64, ACCESSES);
    let unique: HashSet<u64> = trace.iter().copied().collect();
    assert_eq!(unique.len() as u64, UNIQUE_PAGES);
    // The trace starts with a sequential run of single-page requests.
    assert_eq!(trace[..5], [1, 2, 3, 4, 5]);
}

#[test]
#[cfg_attr(miri, ignore = "replays the 914k-access OLTP trace")]
fn infinite_cache_ceiling() {
    let trace = oltp();
    let stats = simulate_infinite(trace);
    assert_eq!(stats.misses(), UNIQUE_PAGES);
    assert_reference("infinite cache", stats, 79.56, ACCESSES - UNIQUE_PAGES);
}

#[test]
#[cfg_attr(miri, ignore = "replays the 914k-access OLTP trace")]
fn lru_reference_points() {
    let trace = oltp();
    let start = Instant::now();
    assert_reference("LRU, 256 entries", simulate_lru(trace, 256), 16.69, 152_599);
    assert_reference(
        "LRU, 2,000 entries",
        simulate_lru(trace, 2_000),
        42.47,
        388_235,
    );
    eprintln!("LRU at 256 and 2,000 entries in {:?}", start.elapsed());
}

#[test]
#[cfg_attr(miri, ignore = "replays the 914k-access OLTP trace")]
fn belady_reference_points() {
    let trace = oltp();
    let start = Instant::now();
    assert_reference(
        "Belady, 256 entries",
        simulate_belady(trace, 256),
        38.72,
        353_926,
    );
    assert_reference(
        "Belady, 2,000 entries",
        simulate_belady(trace, 2_000),
        60.40,
        552_149,
    );
    eprintln!("Belady at 256 and 2,000 entries in {:?}", start.elapsed());
}

#[test]
#[cfg_attr(miri, ignore = "replays the 914k-access OLTP trace")]
fn policies_are_ordered() {
    let trace = oltp();
    let ceiling = simulate_infinite(trace).hits;
    for capacity in [256, 2_000] {
        let lru = simulate_lru(trace, capacity).hits;
        let opt = simulate_belady(trace, capacity).hits;
        assert!(
            lru < opt && opt < ceiling,
            "capacity {capacity}: {lru} {opt} {ceiling}"
        );
    }
}
