//! No calcification: after a cache has been filled with small values, a workload of
//! large values must reach (within 10%) the hit ratio it gets on a fresh cache, without
//! a restart. Pages move from the small-value size classes to the large ones.

mod common;

use cachee_core::{Cache, Config};
use workload::{Rng, Zipf};

/// Region size (smaller under miri, where every word access is interpreted).
const REGION: usize = if cfg!(miri) { 64 << 10 } else { 4 << 20 };

fn config() -> Config {
    Config::new()
        .max_key_len(16)
        .max_value_len(2048)
        .expected_entry(8, 256)
        .seed(11)
}

/// Runs `ops` get-or-set operations over Zipf-popular keys with `value_len`-byte values;
/// returns the hit ratio over the last half.
fn run(
    c: &Cache<cachee_core::Words<'_>>,
    ops: usize,
    keys: u64,
    key_base: u64,
    value_len: usize,
    seed: u64,
) -> f64 {
    let z = Zipf::new(keys, 0.9).unwrap();
    let mut rng = Rng::new(seed);
    let value = vec![0x42u8; value_len];
    let mut buf = vec![0u8; 2048];
    let (mut hits, mut reads) = (0u64, 0u64);
    for i in 0..ops {
        let key = (key_base + z.sample(&mut rng)).to_le_bytes();
        let hit = c.get(&key, &mut buf).unwrap().is_some();
        if i >= ops / 2 {
            reads += 1;
            hits += hit as u64;
        }
        if !hit {
            c.set(&key, &value).unwrap();
        }
    }
    hits as f64 / reads as f64
}

#[test]
fn a_shift_to_large_values_recovers_the_fresh_hit_ratio() {
    let (small_ops, large_ops) = common::pick((400_000, 200_000), (500, 250));

    let aged = common::region(REGION);
    let c = Cache::format(cachee_core::Words::from(&aged[..]), &config()).unwrap();
    // Phase 1: many small entries fill every page.
    run(&c, small_ops, common::pick(200_000, 4_000), 0, 24, 1);
    let small_entries = c.len();
    let small_evictions = c.stats().evictions;
    // Phase 2: the workload moves to large values.
    let large_keys = common::pick(30_000, 100);
    let shifted = run(&c, large_ops, large_keys, 1 << 40, 1000, 2);
    c.validate().unwrap();

    let fresh_words = common::region(REGION);
    let fresh = Cache::format(cachee_core::Words::from(&fresh_words[..]), &config()).unwrap();
    let baseline = run(&fresh, large_ops, large_keys, 1 << 40, 1000, 2);

    println!(
        "small phase left {small_entries} entries; large-value hit ratio: fresh {:.2}%, after the shift {:.2}% ({} resident)",
        baseline * 100.0,
        shifted * 100.0,
        c.len()
    );
    assert!(small_evictions > 0, "the small phase should fill the cache");
    assert!(
        baseline > 0.3,
        "the baseline workload must be cacheable ({baseline:.3})"
    );
    // Within 10% natively. Under miri the phases are a few hundred operations (the
    // ratio is measured over 125 reads), too few for that precision: there the
    // bound is 20%, which still fails for a calcified cache (a handful of hits).
    let tolerance = common::pick(0.9, 0.8);
    assert!(
        shifted >= baseline * tolerance,
        "calcified: {shifted:.3} vs fresh {baseline:.3}"
    );
}
