//! A damaged region never causes a panic, a hang or an out-of-bounds access: attach
//! refuses it or works, operations on it stay safe, `check` reports the damage and
//! `repair` restores every invariant.

mod common;

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use cachee_core::{AtomicWord, Cache, Config, WORD_BYTES, Word};
use workload::Rng;

/// Region bytes, entries written and operations per exercise pass (small under miri,
/// where every word access is interpreted).
const REGION: usize = if cfg!(miri) { 32 << 10 } else { 96 << 10 };
const ENTRIES: u32 = if cfg!(miri) { 60 } else { 400 };
const EXERCISE: u32 = if cfg!(miri) { 40 } else { 450 };

fn image() -> Vec<AtomicWord> {
    let w = common::region(REGION);
    let c = Cache::format(
        cachee_core::Words::from(&w[..]),
        &Config::new()
            .max_key_len(16)
            .max_value_len(200)
            .shards(2)
            .seed(4),
    )
    .unwrap();
    for i in 0..ENTRIES {
        c.set(
            &i.to_le_bytes(),
            &common::stamped(i as u64, 1, 16 + (i % 150) as usize),
        )
        .unwrap();
    }
    w
}

fn exercise(c: &Cache<cachee_core::Words<'_>>) {
    let mut buf = [0u8; 200];
    for i in 0..EXERCISE {
        let key = i.to_le_bytes();
        let _ = c.get(&key, &mut buf);
        let _ = c.contains(&key);
        match i % 5 {
            0 => drop(c.set(&key, &[i as u8; 40])),
            1 => drop(c.remove(&key)),
            2 => drop(c.incr(&key, 1, Some(0))),
            _ => {}
        }
    }
    let _ = c.for_each(&mut [0u8; 16], &mut [0u8; 200], |_, _| {
        ControlFlow::Continue(())
    });
    let _ = c.stats();
    let _ = c.len();
}

#[test]
fn bit_flips_anywhere_are_survived_and_repaired() {
    let rounds = common::pick(300, 3);
    let mut rng = Rng::new(77);
    let clean = image();
    for round in 0..rounds {
        let w: Vec<AtomicWord> = clean
            .iter()
            .map(|x| AtomicWord::new(x.load(Ordering::Relaxed)))
            .collect();
        let flips = 1 + rng.below(8) as usize;
        for _ in 0..flips {
            // Flip bits in the header now and then, mostly elsewhere.
            let i = if round % 10 == 0 {
                rng.below(32) as usize
            } else {
                rng.below(w.len() as u64) as usize
            };
            let bit: Word = 1 << rng.below(WORD_BYTES as u64 * 8);
            w[i].fetch_xor(bit, Ordering::Relaxed);
        }
        let Ok(c) = Cache::attach(cachee_core::Words::from(&w[..])) else {
            continue;
        };
        exercise(&c);
        let _ = c.check(|_| {});
        c.repair().unwrap();
        if let Err(p) = c.validate() {
            panic!("round {round}: still broken after repair: {p}");
        }
        exercise(&c);
        c.validate().unwrap();
    }
}

#[test]
fn arbitrary_bytes_are_refused_or_safe() {
    let mut rng = Rng::new(78);
    for _ in 0..common::pick(200, 3) {
        let w: Vec<AtomicWord> = (0..(8 << 10) / WORD_BYTES)
            .map(|_| AtomicWord::new(rng.next_u64() as Word))
            .collect();
        if let Ok(c) = Cache::attach(cachee_core::Words::from(&w[..])) {
            exercise(&c);
        }
    }
    // A valid header over garbage shards.
    let clean = image();
    let w: Vec<AtomicWord> = clean
        .iter()
        .enumerate()
        .map(|(i, x)| {
            AtomicWord::new(if i * WORD_BYTES < 256 {
                x.load(Ordering::Relaxed)
            } else {
                rng.next_u64() as Word
            })
        })
        .collect();
    let c = Cache::attach(cachee_core::Words::from(&w[..])).expect("the header is intact");
    // Every lock word is garbage, so the first writer to each shard takes it over
    // and rebuilds it; afterwards the cache is whole and usable.
    exercise(&c);
    c.repair().unwrap();
    c.validate().unwrap();
    c.set(b"fresh", b"value").unwrap();
    assert_eq!(common::get(&c, b"fresh").as_deref(), Some(&b"value"[..]));
}

#[test]
fn with_checksums_damaged_entries_read_as_misses_never_as_wrong_values() {
    let rounds = common::pick(100, 3);
    let mut rng = Rng::new(79);
    let cfg = Config::new()
        .max_key_len(16)
        .max_value_len(200)
        .shards(2)
        .seed(4)
        .checksums(true);
    let clean = common::region(REGION);
    let c = Cache::format(cachee_core::Words::from(&clean[..]), &cfg).unwrap();
    for i in 0..ENTRIES {
        c.set(
            &i.to_le_bytes(),
            &common::stamped(i as u64, 1, 16 + (i % 150) as usize),
        )
        .unwrap();
    }
    let (mut wrong, mut hits, mut misses) = (0, 0, 0);
    for _ in 0..rounds {
        let w: Vec<AtomicWord> = clean
            .iter()
            .map(|x| AtomicWord::new(x.load(Ordering::Relaxed)))
            .collect();
        // Damage only past the region header, so the region still attaches.
        for _ in 0..1 + rng.below(16) {
            let i = 32 + rng.below(w.len() as u64 - 32) as usize;
            w[i].fetch_xor(1 << rng.below(WORD_BYTES as u64 * 8), Ordering::Relaxed);
        }
        let d = Cache::attach(cachee_core::Words::from(&w[..])).unwrap();
        let mut buf = [0u8; 200];
        for i in 0..ENTRIES {
            match d.get(&i.to_le_bytes(), &mut buf) {
                Ok(Some(n)) => {
                    hits += 1;
                    if common::check_stamp(i as u64, &buf[..n]) != Some(1) {
                        wrong += 1;
                    }
                }
                Ok(None) => misses += 1,
                Err(_) => misses += 1,
            }
        }
    }
    println!("hits {hits}, misses {misses}, wrong {wrong}");
    assert_eq!(wrong, 0, "a damaged entry was returned as a value");
    assert!(hits > 0 && misses > 0);
}
