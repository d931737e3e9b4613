//! Model 3: a slot freed or reused while a reader still holds its location (the ABA
//! case of the seqlock).
//!
//! - **Eviction and reuse**: the shard holds one entry at most (`max_entries(1)`),
//!   so storing `Y` evicts `X` and writes `Y` into the very slot `X` occupied, while
//!   a reader reads `X`: it must get `X`'s value or miss, never `Y`'s bytes (nor a
//!   mixture).
//! - **Removal under iteration**: `X` is removed while a reader iterates with
//!   `for_each`, which copies whatever key a live slot holds. Removing frees the slot
//!   (new even version, meta 0) and then pushes it on the page's free list, whose
//!   link is stored in the slot's first body word, i.e. over the first word of `X`'s
//!   key. The iteration must report `(X, A)` or nothing, never a key that was never
//!   stored.
//! - **Removal under a keyed read**: the same removal, while a reader `get`s a key
//!   `K` that was never stored but equals `X` with its first four bytes replaced by
//!   the free-list link (0), and shares `X`'s index tag (the `Colliding` test hash
//!   gives every key the same tag; with the real hash this takes a 1-in-255 tag
//!   collision). The reader must miss.
//!
//! `SKIP_FREE_BUMP` (freeing does not bump the version) is masked in the eviction
//! model: the reused slot is rewritten under `begin_write`, which makes the version
//! odd and then even again, so a reader of `X` fails validation whether or not the
//! free bumped it. The bump only matters for body words written *without* a
//! following `begin_write` — the free-list link — which is what the removal model
//! exercises; that model found the missing release fence in `free_entry` (fixed).
#![cfg(cachee_loom)]

use cachee_core::HashKind;
use cachee_core::mutants::{SKIP_FREE_BUMP, SKIP_READ_VALIDATION};
use loom_tests::*;

const X: &[u8] = b"xkey";
const Y: &[u8] = b"ykey";
const A: [u8; 16] = [0xAA; 16];
const C: [u8; 16] = [0xCC; 16];

fn evict_and_reuse() {
    let c = format(ONE_PAGE, &tiny().max_entries(1), LoomHooks::new(1, &[]));
    c.set(X, &A).unwrap();
    let reader = attach(&c, LoomHooks::new(2, &[]));
    let mut threads = Threads::new();
    threads.spawn(move || {
        let got = read(&reader, X);
        assert_one_of("read of X while Y takes its slot", &got, &[&A]);
        observe(if got.is_some() {
            "reader got X"
        } else {
            "reader missed"
        });
    });
    threads.enter();
    c.set(Y, &C).unwrap();
    threads.join();

    assert_valid(&c);
    assert_eq!(read(&c, X), None, "X was evicted");
    assert_eq!(read(&c, Y).as_deref(), Some(&C[..]));
    assert_eq!(c.len(), 1);
    assert_eq!(c.stats().evictions, 1);
    assert_eq!(
        entries(&c),
        vec![(Y.to_vec(), C.to_vec())],
        "Y is the only entry"
    );
}

fn remove_under_iteration() {
    let c = format(ONE_PAGE, &tiny(), LoomHooks::new(1, &[]));
    c.set(X, &A).unwrap();
    let reader = attach(&c, LoomHooks::new(2, &[]));
    let mut threads = Threads::new();
    threads.spawn(move || {
        let seen = entries(&reader);
        for (k, v) in &seen {
            if !(k == X && v == &A) {
                panic!("MODEL VIOLATION (for_each racing a removal): saw {k:02x?} = {v:02x?}");
            }
        }
        observe(if seen.is_empty() {
            "iteration saw nothing"
        } else {
            "iteration saw X"
        });
    });
    threads.enter();
    assert!(c.remove(X).unwrap());
    threads.join();

    assert_valid(&c);
    assert_eq!(read(&c, X), None);
    assert!(entries(&c).is_empty());
}

/// `X` for the keyed-read model: its first four bytes are not zero...
const X8: &[u8] = b"\x00\x01\x00\x00abcd";
/// ...and `K` is `X` after the free-list link (0) overwrote them. Never stored.
const K8: &[u8] = b"\x00\x00\x00\x00abcd";

fn remove_under_keyed_read() {
    let cfg = tiny().hash_kind(HashKind::Colliding);
    let c = format(ONE_PAGE, &cfg, LoomHooks::new(1, &[]));
    c.set(X8, &A).unwrap();
    let reader = attach(&c, LoomHooks::new(2, &[]));
    let mut threads = Threads::new();
    threads.spawn(move || {
        let got = read(&reader, K8);
        if let Some(v) = &got {
            panic!("MODEL VIOLATION (get of a key never stored): {K8:02x?} reads {v:02x?}");
        }
    });
    threads.enter();
    assert!(c.remove(X8).unwrap());
    threads.join();
    assert_valid(&c);
    observe("reader missed");
}

#[test]
fn insert_evicts_and_reuses_the_slot_being_read() {
    check(
        "reuse/evict",
        &["reader got X", "reader missed"],
        evict_and_reuse,
    );
}

/// Found a bug (now fixed): `free_entry` published the freed slot's new version
/// with a release *store*, and `release` then stored the free-list link into the
/// slot's first body word with a relaxed store and no release fence in between. A
/// reader that copies that word and then validates (acquire fence, version reload)
/// had not synchronised with anything, so it could still see the old version and
/// report the link bytes as the key (loom: `for_each` yielded `[00, 00, 00, 00]` =
/// `X`'s value). The `fence(Release)` after the header store in `free_entry` (as
/// `begin_write` has) fixed it: this model passes (777 executions) and its
/// `SKIP_FREE_BUMP` twin is caught.
#[test]
fn removal_under_iteration() {
    check(
        "reuse/remove_iter",
        &["iteration saw X", "iteration saw nothing"],
        remove_under_iteration,
    );
}

/// Found the same bug as `removal_under_iteration` (fixed): the reader compared the
/// key word after the link store, found it equal to `K`, copied `X`'s value and
/// validated against the old version.
#[test]
fn removal_under_keyed_read() {
    check(
        "reuse/remove_get",
        &["reader missed"],
        remove_under_keyed_read,
    );
}

#[test]
fn evict_catches_skip_read_validation() {
    check_catches("reuse/evict", SKIP_READ_VALIDATION, evict_and_reuse);
}

#[test]
fn removal_under_iteration_catches_skip_free_bump() {
    check_catches("reuse/remove_iter", SKIP_FREE_BUMP, remove_under_iteration);
}
