//! A writer that dies holding a shard lock: readers do not hang, the next writer takes
//! the lock over once the owner is reported dead, repairs that shard only, and counts
//! a recovery. A lock whose owner is alive is never taken over.

mod common;

use std::time::{Duration, Instant};

use cachee_core::{Cache, Config, Error};
use common::{TestHooks, get, region};

fn cfg() -> Config {
    Config::new()
        .max_key_len(16)
        .max_value_len(256)
        .shards(4)
        .seed(9)
}

/// Entries written before a failure (fewer under miri, whose regions are 64 KiB).
const ENTRIES: u32 = if cfg!(miri) { 40 } else { 300 };

#[test]
fn a_writer_dying_mid_write_is_recovered() {
    let w = region(common::sized(1 << 20));
    let c = Cache::format_with_hooks(cachee_core::Words::from(&w[..]), &cfg(), TestHooks::new(1))
        .unwrap();
    for i in 0..ENTRIES {
        c.set(&i.to_le_bytes(), &[i as u8; 50]).unwrap();
    }
    let victim = b"half-written";
    let shard = c.testing_shard_of(victim);
    c.testing_die_mid_set(victim, &[7u8; 100], 99).unwrap();
    assert_eq!(c.testing_lock_owner(shard), 99);

    // Readers neither hang nor see the half-written entry.
    let t = Instant::now();
    assert_eq!(get(&c, victim), None);
    assert!(t.elapsed() < Duration::from_secs(1));
    // Other keys of the locked shard are still readable.
    let neighbours: Vec<u32> = (0..ENTRIES)
        .filter(|i| c.testing_shard_of(&i.to_le_bytes()) == shard)
        .collect();
    assert!(!neighbours.is_empty());
    for &i in &neighbours {
        assert_eq!(get(&c, &i.to_le_bytes()), Some(vec![i as u8; 50]));
    }

    // The owner is reported dead: the next writer to that shard recovers it.
    c.hooks().kill(99);
    let key_in_shard = (1000u32..)
        .find(|i| c.testing_shard_of(&i.to_le_bytes()) == shard)
        .unwrap();
    c.set(&key_in_shard.to_le_bytes(), b"after").unwrap();
    assert_eq!(
        c.testing_lock_owner(shard),
        0,
        "lock released after the write"
    );
    assert_eq!(c.shard_stats(shard).unwrap().recoveries, 1);
    assert_eq!(c.stats().recoveries, 1, "only that shard was recovered");
    c.validate().unwrap();
    assert_eq!(get(&c, victim), None, "the half-written entry was dropped");
    for &i in &neighbours {
        assert_eq!(
            get(&c, &i.to_le_bytes()),
            Some(vec![i as u8; 50]),
            "intact entries survive repair"
        );
    }
    assert_eq!(
        get(&c, &key_in_shard.to_le_bytes()).as_deref(),
        Some(&b"after"[..])
    );
}

#[test]
fn impatient_hooks_still_recover_a_dead_owner() {
    // Hooks that give up long before the periodic liveness question (every 256
    // spins) must still get a dead owner's lock recovered: the lock asks once
    // before answering Busy.
    let w = region(common::sized(1 << 20));
    let mut hooks = TestHooks::new(1);
    hooks.patience = 3;
    let c = Cache::format_with_hooks(cachee_core::Words::from(&w[..]), &cfg(), hooks).unwrap();
    c.set(b"k", b"old").unwrap();
    let shard = c.testing_shard_of(b"k");
    c.testing_hold_lock(shard, 77);
    c.hooks().kill(77);
    c.set(b"k", b"new").unwrap();
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"new"[..]));
    assert_eq!(c.stats().recoveries, 1);
    assert_eq!(c.testing_lock_owner(shard), 0, "released after the write");
    c.validate().unwrap();
}

#[test]
fn a_live_owner_is_waited_for_not_overtaken() {
    let w = region(common::sized(1 << 20));
    let mut hooks = TestHooks::new(1);
    hooks.patience = 10_000;
    let c = Cache::format_with_hooks(cachee_core::Words::from(&w[..]), &cfg(), hooks).unwrap();
    c.set(b"k", b"old").unwrap();
    let shard = c.testing_shard_of(b"k");
    c.testing_hold_lock(shard, 42); // alive (never killed), e.g. a stopped process
    let t = Instant::now();
    assert_eq!(c.set(b"k", b"new"), Err(Error::Busy));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "gave up in bounded time"
    );
    assert!(
        c.hooks()
            .liveness_checks
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert_eq!(
        c.testing_lock_owner(shard),
        42,
        "a live owner's lock is not taken"
    );
    assert_eq!(
        get(&c, b"k").as_deref(),
        Some(&b"old"[..]),
        "reads go on; nothing lost"
    );
    assert_eq!(c.stats().recoveries, 0);
    // Once the owner lets go, writes proceed.
    c.testing_hold_lock(shard, 0);
    c.set(b"k", b"new").unwrap();
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"new"[..]));
}

#[test]
fn a_dead_owner_without_a_partial_write_loses_nothing() {
    let w = region(common::sized(1 << 20));
    let c = Cache::format_with_hooks(cachee_core::Words::from(&w[..]), &cfg(), TestHooks::new(1))
        .unwrap();
    for i in 0..ENTRIES {
        c.set(&i.to_le_bytes(), &i.to_le_bytes()).unwrap();
    }
    let before = c.len();
    for s in 0..c.shards() {
        c.testing_hold_lock(s, 50 + s as u32);
        c.hooks().kill(50 + s as u32);
    }
    c.clear().unwrap_or(()); // takes every lock over (and empties the cache)
    assert_eq!(c.stats().recoveries, c.shards() as u64);
    c.validate().unwrap();
    // Recovery itself kept the entries; it was `clear` that removed them.
    let w2 = region(common::sized(1 << 20));
    let c2 = Cache::format_with_hooks(cachee_core::Words::from(&w2[..]), &cfg(), TestHooks::new(1))
        .unwrap();
    for i in 0..ENTRIES {
        c2.set(&i.to_le_bytes(), &i.to_le_bytes()).unwrap();
    }
    let shard = c2.testing_shard_of(&0u32.to_le_bytes());
    c2.testing_hold_lock(shard, 77);
    c2.hooks().kill(77);
    c2.set(b"trigger", b"x").unwrap_or(());
    let trigger_shard = c2.testing_shard_of(b"trigger");
    if trigger_shard == shard {
        assert_eq!(c2.stats().recoveries, 1);
    } else {
        // Write to the locked shard explicitly.
        c2.remove(&0u32.to_le_bytes()).unwrap();
        c2.set(&0u32.to_le_bytes(), &0u32.to_le_bytes()).unwrap();
        assert_eq!(c2.stats().recoveries, 1);
    }
    for i in 0..ENTRIES {
        assert_eq!(get(&c2, &i.to_le_bytes()), Some(i.to_le_bytes().to_vec()));
    }
    assert_eq!(before, ENTRIES as usize);
    c2.validate().unwrap();
}
