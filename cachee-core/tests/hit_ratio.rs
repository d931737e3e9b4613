//! Hit ratio of the eviction policy against LRU (a reference model) and the Belady
//! optimum, on the OLTP trace from the ARC paper and on Zipf-distributed keys.
//!
//! Trace: Nimrod Megiddo and Dharmendra S. Modha, "ARC: A Self-Tuning, Low Overhead
//! Replacement Cache", USENIX FAST '03, San Francisco, CA, pp. 115-130, 2003.
//!
//! Each cache holds exactly `capacity` entries (one shard, `max_entries`), and every
//! access that misses inserts the key, as in the reference simulators.

mod common;

use cachee_core::{Cache, Config};
use workload::{HitStats, Rng, Zipf, simulate_belady, simulate_lru};

/// Replays `keys` through a cachee cache holding `capacity` entries.
fn simulate_cachee(keys: &[u64], capacity: usize) -> HitStats {
    let cfg = Config::new()
        .shards(1)
        .max_key_len(8)
        .max_value_len(8)
        .expected_entry(8, 8)
        .max_entries(capacity as u64)
        .seed(1);
    let bytes = cfg.bytes_for(capacity as u64, 8, 8).expect("sizing") + (64 << 10);
    let w = common::region(bytes);
    let c = Cache::format(cachee_core::Words::from(&w[..]), &cfg).expect("format");
    let mut out = [0u8; 8];
    let mut stats = HitStats::default();
    for &k in keys {
        let key = k.to_le_bytes();
        let hit = c.get(&key, &mut out).expect("get").is_some();
        stats.record(hit);
        if !hit {
            c.set(&key, &key).expect("set");
        }
    }
    assert!(c.len() <= capacity, "cache holds more than its capacity");
    c.validate().expect("invariants hold after the replay");
    stats
}

fn zipf_keys(n: usize, universe: u64, s: f64) -> Vec<u64> {
    let z = Zipf::new(universe, s).unwrap();
    let mut rng = Rng::new(99);
    (0..n)
        .map(|_| workload::scramble(z.sample(&mut rng), 5))
        .collect()
}

struct Row {
    capacity: usize,
    lru: f64,
    ours: f64,
    belady: f64,
}

fn table(name: &str, keys: &[u64], capacities: &[usize]) -> Vec<Row> {
    let rows: Vec<Row> = capacities
        .iter()
        .map(|&capacity| Row {
            capacity,
            lru: simulate_lru(keys, capacity).ratio(),
            ours: simulate_cachee(keys, capacity).ratio(),
            belady: simulate_belady(keys, capacity).ratio(),
        })
        .collect();
    println!(
        "\n{name} ({} accesses)\n| entries | LRU | cachee | Belady |\n|---:|---:|---:|---:|",
        keys.len()
    );
    for r in &rows {
        println!(
            "| {} | {:.2}% | {:.2}% | {:.2}% |",
            r.capacity,
            r.lru * 100.0,
            r.ours * 100.0,
            r.belady * 100.0
        );
    }
    rows
}

#[test]
#[cfg_attr(miri, ignore = "replays a million accesses; far too slow under miri")]
fn oltp_trace_beats_lru() {
    let keys = workload::load_oltp().expect("load the OLTP trace");
    let rows = table("OLTP trace", &keys, &[256, 2_000, 20_000]);
    for r in &rows {
        assert!(
            r.ours > r.lru,
            "{} entries: cachee {:.4} vs LRU {:.4}",
            r.capacity,
            r.ours,
            r.lru
        );
        assert!(
            r.ours <= r.belady,
            "{} entries: beyond the optimum",
            r.capacity
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "replays a million accesses; far too slow under miri")]
fn zipf_beats_lru() {
    let keys = zipf_keys(1_000_000, 1_000_000, 0.99);
    let rows = table("Zipf 0.99 over 1M keys", &keys, &[1_000, 10_000, 100_000]);
    for r in &rows {
        assert!(
            r.ours > r.lru,
            "{} entries: cachee {:.4} vs LRU {:.4}",
            r.capacity,
            r.ours,
            r.lru
        );
        assert!(
            r.ours <= r.belady,
            "{} entries: beyond the optimum",
            r.capacity
        );
    }
}

#[test]
fn one_hit_wonders_do_not_flush_a_hot_set() {
    // A small hot set, then a long scan of keys seen once: quick demotion must keep
    // the hot set (plain LRU or CLOCK would lose it).
    // (Smaller under miri, where every access is interpreted.)
    let (capacity, hot, scan, rounds) = common::pick((200, 100, 400, 50), (40, 20, 40, 16));
    let mut keys = Vec::new();
    for round in 0..rounds as u64 {
        for h in 0..hot {
            keys.push(h);
        }
        for s in 0..scan {
            keys.push(1_000_000 + round * 1000 + s);
        }
    }
    let lru = simulate_lru(&keys, capacity).ratio();
    let ours = simulate_cachee(&keys, capacity).ratio();
    println!(
        "scan resistance: LRU {:.2}%, cachee {:.2}%",
        lru * 100.0,
        ours * 100.0
    );
    assert!(ours > lru + 0.1, "cachee {ours:.3} vs LRU {lru:.3}");
}
