//! Model 2: optimistic (seqlock) reads against a concurrent writer of the same key.
//!
//! A reader must get the old value, the new value or a miss: never a copy that mixes
//! bytes of both (values are 16 bytes of one repeated byte, so any mixture shows).
//! Three shapes of update:
//!
//! - **in place**: the new value has the same size class, so the writer rewrites the
//!   entry under its version (odd, release fence, body, next even version);
//! - **relocation**: the new value (8 bytes) has another size class; the writer
//!   writes a new slot on the second, free page, points the key's index slot at it
//!   (same tag, new location bytes) and frees the old slot;
//! - **page move**: the same, but the shard has a single page, so the writer evicts
//!   every entry of the page (the key itself), moves the page to the new class under
//!   the shard's layout epoch and writes the new entry over the old one's bytes.
//!
//! Which deliberate bug each shape catches (the others are masked, not missed):
//!
//! | mutant | in place | relocation | page move |
//! |---|---|---|---|
//! | `SKIP_READ_VALIDATION` | caught | masked (1) | caught |
//! | `SKIP_ODD_VERSION` | caught | masked (2) | masked (2) |
//! | `RELAXED_PUBLISH` | caught | caught (3) | masked (4) |
//!
//! 1. The old slot is freed, not rewritten: a reader that skips validation still
//!    copies the old value (or finds the key word changed and misses).
//! 2. The new entry goes into a free slot, whose meta word is 0 until it is
//!    published: a reader takes it for a free slot, odd version or not.
//! 3. Relocation keeps the key's index tag and changes only its location bytes
//!    (relaxed), so a reader can reach the new slot without synchronising with the
//!    writer: the entry's own release store is all that publishes its body.
//! 4. A page move clears the key's index slot and sets it again with a release store
//!    of the tag, so a reader that finds the new entry has synchronised with its body
//!    through the index; one that found the old tag fails the epoch check.
#![cfg(cachee_loom)]

use cachee_core::mutants::{RELAXED_PUBLISH, SKIP_ODD_VERSION, SKIP_READ_VALIDATION};
use loom_tests::*;

const A: [u8; 16] = [0xAA; 16];
const B: [u8; 16] = [0xBB; 16];
/// A shorter value: another size class.
const C: [u8; 8] = [0xCC; 8];

/// Formats `bytes`, stores `key = A`, then runs a reader of `key` against a writer
/// storing `key = new`; the reader must see `A`, `new` or a miss.
fn reader_vs_writer(bytes: usize, new: &'static [u8]) {
    let c = format(bytes, &tiny(), LoomHooks::new(1, &[]));
    c.set(b"key", &A).unwrap();
    let reader = attach(&c, LoomHooks::new(2, &[]));
    let mut threads = Threads::new();
    threads.spawn(move || {
        let got = read(&reader, b"key");
        assert_one_of("read racing an update of the key", &got, &[&A, new]);
        observe(match got.as_deref() {
            None => "miss",
            Some(v) if v == A => "old value",
            Some(_) => "new value",
        });
    });
    threads.enter();
    c.set(b"key", new).unwrap();
    threads.join();
    assert_eq!(read(&c, b"key").as_deref(), Some(new), "the update landed");
    assert_valid(&c);
}

fn in_place() {
    reader_vs_writer(ONE_PAGE, &B);
}

fn relocation() {
    reader_vs_writer(TWO_PAGES, &C);
}

fn page_move() {
    reader_vs_writer(ONE_PAGE, &C);
}

#[test]
fn in_place_update() {
    check("seqlock/in_place", &["old value", "new value"], in_place);
}

#[test]
fn relocation_to_another_class() {
    check(
        "seqlock/relocation",
        &["old value", "new value"],
        relocation,
    );
}

#[test]
fn relocation_with_page_move() {
    check("seqlock/page_move", &["old value", "new value"], page_move);
}

#[test]
fn in_place_catches_skip_read_validation() {
    check_catches("seqlock/in_place", SKIP_READ_VALIDATION, in_place);
}

#[test]
fn in_place_catches_skip_odd_version() {
    check_catches("seqlock/in_place", SKIP_ODD_VERSION, in_place);
}

#[test]
fn in_place_catches_relaxed_publish() {
    check_catches("seqlock/in_place", RELAXED_PUBLISH, in_place);
}

#[test]
fn relocation_catches_relaxed_publish() {
    check_catches("seqlock/relocation", RELAXED_PUBLISH, relocation);
}

#[test]
fn page_move_catches_skip_read_validation() {
    check_catches("seqlock/page_move", SKIP_READ_VALIDATION, page_move);
}
