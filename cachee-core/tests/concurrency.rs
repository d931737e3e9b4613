//! Many threads on one cache: readers never see a wrong or torn value, and every
//! invariant holds afterwards.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cachee_core::{Cache, Config};
use common::{check_stamp, region, stamped};
use workload::Rng;

fn hammer(
    region_bytes: usize,
    keys: u64,
    max_len: usize,
    writers: usize,
    readers: usize,
    ops: usize,
) {
    let w = region(region_bytes);
    let cfg = Config::new()
        .max_key_len(8)
        .max_value_len(max_len)
        .expected_entry(8, max_len / 2)
        .seed(5);
    let c = Cache::format(cachee_core::Words::from(&w[..]), &cfg).unwrap();
    let stop = AtomicBool::new(false);
    let good_reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|t| {
                let c = &c;
                s.spawn(move || {
                    let mut rng = Rng::new(t as u64 + 1);
                    for i in 0..ops as u64 {
                        let k = rng.below(keys);
                        let key = k.to_le_bytes();
                        match rng.below(10) {
                            0 => {
                                c.remove(&key).unwrap();
                            }
                            1 => {
                                // Sizes that change the entry's class, forcing moves
                                // between slots and pages between classes.
                                let len = 16 + rng.below((max_len - 16) as u64) as usize;
                                c.set(&key, &stamped(k, i, len)).unwrap();
                            }
                            _ => {
                                let len = 16 + (k as usize * 7) % (max_len / 4);
                                c.set(&key, &stamped(k, i, len)).unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        for t in 0..readers {
            let (c, stop, good) = (&c, &stop, &good_reads);
            s.spawn(move || {
                let mut rng = Rng::new(100 + t as u64);
                let mut buf = vec![0u8; max_len];
                // Under miri (one interpreted thread at a time) readers stop after a
                // few hundred reads instead of spinning for the writers' whole run.
                let mut budget = common::pick(u64::MAX, 300);
                while !stop.load(Ordering::Relaxed) && budget > 0 {
                    budget -= 1;
                    let k = rng.below(keys);
                    if let Some(n) = c.get(&k.to_le_bytes(), &mut buf).unwrap() {
                        assert!(
                            check_stamp(k, &buf[..n]).is_some(),
                            "key {k}: wrong or torn value of {n} bytes"
                        );
                        good.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for h in handles {
            h.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    c.validate().unwrap();
    assert!(
        good_reads.load(Ordering::Relaxed) > 0,
        "readers must have seen some hits"
    );
    // Every value still in the cache is intact.
    let mut buf = vec![0u8; max_len];
    for k in 0..keys {
        if let Some(n) = c.get(&k.to_le_bytes(), &mut buf).unwrap() {
            assert!(check_stamp(k, &buf[..n]).is_some());
        }
    }
}

#[test]
fn readers_and_writers_under_eviction_pressure() {
    hammer(
        common::sized(256 << 10),
        common::pick(2_000, 200),
        600,
        2,
        2,
        common::pick(40_000, 150),
    );
}

#[test]
fn many_writers_on_few_keys() {
    hammer(
        common::sized(1 << 20),
        16,
        200,
        3,
        1,
        common::pick(30_000, 100),
    );
}

#[test]
fn counters_are_atomic_across_threads() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(
        cachee_core::Words::from(&w[..]),
        &Config::new().max_key_len(8).max_value_len(32),
    )
    .unwrap();
    let per = common::pick(5_000, 50);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..per {
                    c.incr(b"n", 1, Some(1)).unwrap();
                }
            });
        }
    });
    let mut buf = [0u8; 32];
    let n = c.get(b"n", &mut buf).unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        (4 * per).to_string()
    );
}
