//! Model 1: the shard writer lock.
//!
//! - **Contention**: two writers (two handles, owner ids 1 and 2) store different
//!   keys of the same shard at the same time: both entries land, no write is lost and
//!   every invariant holds.
//! - **Takeover race**: the lock is held by owner 9, whom the hooks report dead, and
//!   who died in the middle of writing an entry. Two writers race to take the lock
//!   over: exactly one of them recovers the shard (one recovery), both writes land,
//!   the half-written entry is gone and every invariant holds.
//!
//! A waiting writer asks whether the lock's owner is alive only every
//! `LIVENESS_EVERY` failed attempts (`cachee-core/src/cache.rs`): 256 in real builds,
//! 4 under loom, so that the racing compare-and-swaps before a takeover stay few
//! enough for two preemptions (at 256 the race took about 67,000 executions).
#![cfg(cachee_loom)]

use cachee_core::mutants::{RACY_LOCK, SKIP_REPAIR};
use loom_tests::*;

const V1: [u8; 16] = [0x11; 16];
const V2: [u8; 16] = [0x22; 16];
const OLD: [u8; 16] = [0xAA; 16];
const HALF: [u8; 16] = [0xDD; 16];

/// Dead owners, as the hooks of every handle report them.
const DEAD: &[u32] = &[9];

fn two_writers(dead_owner: bool) {
    let c = format(ONE_PAGE, &tiny(), LoomHooks::new(1, DEAD));
    // A resident entry, so the page is assigned and the writers only take slots.
    c.set(b"old", &OLD).unwrap();
    if dead_owner {
        c.testing_die_mid_set(b"half", &HALF, 9).unwrap();
        assert_eq!(c.testing_lock_owner(0), 9);
    }
    let other = attach(&c, LoomHooks::new(2, DEAD));
    let mut threads = Threads::new();
    let o = other.clone();
    threads.spawn(move || {
        o.set(b"one", &V1).unwrap();
    });
    threads.enter();
    c.set(b"two", &V2).unwrap();
    threads.join();

    assert_valid(&c);
    assert_eq!(c.testing_lock_owner(0), 0, "lock released");
    for (k, v) in [(&b"one"[..], &V1), (b"two", &V2), (b"old", &OLD)] {
        let got = read(&c, k);
        if got.as_deref() != Some(&v[..]) {
            panic!("MODEL VIOLATION (lost write): {k:?} reads {got:02x?}");
        }
    }
    assert_eq!(c.len(), 3);
    let recoveries = c.stats().recoveries;
    if dead_owner {
        assert_eq!(
            read(&c, b"half"),
            None,
            "the half-written entry was dropped"
        );
        if recoveries != 1 {
            panic!("MODEL VIOLATION (recoveries): {recoveries} recoveries, expected 1");
        }
        // The recovering writer waited LIVENESS_EVERY - 1 times and took the lock over
        // on its next attempt; the other one then waited for it (any number of times
        // but that).
        let spins = |h: &LoomHooks| h.waits.load(std::sync::atomic::Ordering::Relaxed);
        const W: u32 = LIVENESS_EVERY - 1;
        observe(match (spins(c.hooks()), spins(other.hooks())) {
            (W, W) => "both waited LIVENESS_EVERY - 1 times",
            (W, _) => "writer 1 recovered",
            (_, W) => "writer 2 recovered",
            _ => "unexpected wait counts",
        });
        let dead = |h: &LoomHooks| h.deaths_reported.load(std::sync::atomic::Ordering::Relaxed);
        if dead(c.hooks()) > 0 && dead(other.hooks()) > 0 {
            // Both saw the owner dead; one takeover CAS lost, yet one recovery.
            observe("both writers saw the owner dead");
        }
    } else {
        assert_eq!(recoveries, 0);
        observe(if c.hooks().waited() || other.hooks().waited() {
            "one writer waited for the other"
        } else {
            "no wait"
        });
    }
}

fn contended() {
    two_writers(false);
}

fn takeover() {
    two_writers(true);
}

#[test]
fn two_writers_same_shard() {
    check(
        "lock/two_writers",
        &["one writer waited for the other", "no wait"],
        contended,
    );
}

#[test]
fn takeover_race_of_two_writers() {
    check_bounded(
        "lock/takeover_race",
        None,
        &[
            "writer 1 recovered",
            "writer 2 recovered",
            "both writers saw the owner dead",
        ],
        takeover,
    );
}

#[test]
fn two_writers_catches_racy_lock() {
    check_catches("lock/two_writers", RACY_LOCK, contended);
}

#[test]
fn takeover_race_catches_skip_repair() {
    check_catches_bounded("lock/takeover_race", None, SKIP_REPAIR, takeover);
}
