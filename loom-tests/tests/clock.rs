//! Model 4: reference bits and the clock hands.
//!
//! The shard holds two entries at most (`max_entries(2)`): `X` and `Z` are resident,
//! both on probation (cold, unreferenced). A reader hits `X` (which sets its
//! reference bit with a `fetch_or`) while a writer inserts `Y`, which runs the cold
//! hand: a referenced cold entry is promoted to the main set, an unreferenced one is
//! evicted (leaving a ghost in its index slot) and its slot is reused for `Y`.
//!
//! Whatever the interleaving: the value read is `X`'s or a miss; afterwards every
//! invariant holds (in particular no index slot points to a freed slot and no live
//! entry is unindexed), `Y` is resident, exactly one of `X` and `Z` was evicted, and
//! the survivor reads its own value. Both victims occur: `Z` when the hit's reference
//! bit was set before the hand reached `X`, `X` otherwise.
//!
//! `SKIP_READ_VALIDATION` is caught (a hit on `X` that overlaps the reuse of `X`'s
//! slot for `Y` copies part of `Y`'s value). `LATE_INDEX_CLEAR` (eviction frees the
//! entry before it clears the index slot) is **not** caught, here or by any other
//! model, and cannot be: both steps happen inside one call under the shard lock,
//! neither touches what the other reads (the index slot is found from the key, whose
//! words freeing leaves intact), and a lock-free reader that follows the index slot
//! in the window between them finds a slot with meta 0 and misses, exactly as it
//! would a moment later when the index slot is gone. The mutant is equivalent to the
//! real code.
#![cfg(cachee_loom)]

use cachee_core::mutants::SKIP_READ_VALIDATION;
use loom_tests::*;

const X: &[u8] = b"xkey";
const Z: &[u8] = b"zkey";
const Y: &[u8] = b"ykey";
const A: [u8; 16] = [0xAA; 16];
const D: [u8; 16] = [0xDD; 16];
const C: [u8; 16] = [0xCC; 16];

fn hit_vs_hand() {
    let c = format(ONE_PAGE, &tiny().max_entries(2), LoomHooks::new(1, &[]));
    c.set(X, &A).unwrap();
    c.set(Z, &D).unwrap();
    let reader = attach(&c, LoomHooks::new(2, &[]));
    let mut threads = Threads::new();
    threads.spawn(move || {
        let got = read(&reader, X);
        assert_one_of("hit on X while the hand runs", &got, &[&A]);
    });
    threads.enter();
    c.set(Y, &C).unwrap();
    threads.join();

    assert_valid(&c);
    assert_eq!(read(&c, Y).as_deref(), Some(&C[..]), "Y inserted");
    assert_eq!(c.len(), 2);
    assert_eq!(c.stats().evictions, 1);
    let (x, z) = (read(&c, X), read(&c, Z));
    match (x.as_deref(), z.as_deref()) {
        (Some(v), None) if v == A => observe("Z evicted (X's reference bit saved it)"),
        (None, Some(v)) if v == D => observe("X evicted"),
        _ => panic!("MODEL VIOLATION (clock): X reads {x:02x?}, Z reads {z:02x?}"),
    }
}

#[test]
fn hit_races_the_cold_hand() {
    check(
        "clock/hit_vs_hand",
        &["Z evicted (X's reference bit saved it)", "X evicted"],
        hit_vs_hand,
    );
}

#[test]
fn catches_skip_read_validation() {
    check_catches("clock/hit_vs_hand", SKIP_READ_VALIDATION, hit_vs_hand);
}
