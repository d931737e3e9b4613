//! Model 5: recovery after a writer died in the middle of an update.
//!
//! `key = OLD` is stored; then owner 9 dies while overwriting it with `NEW`:
//! `testing_die_mid_set` leaves a second, half-written entry for `key` in a new slot
//! (version odd, already indexed, counted live) and the shard lock held by 9, whom
//! the hooks report dead. Then, concurrently:
//!
//! - a reader reads `key`: it must get the complete old value or miss, never bytes
//!   of the half-written entry (and it must not hang on the dead owner's lock);
//! - a writer stores another key of the same shard: it takes the lock over, rebuilds
//!   the shard (dropping the half-written entry, keeping the intact one) and writes.
//!
//! Afterwards every invariant holds, there was exactly one recovery, `key` reads the
//! old value and the writer's key its value.
#![cfg(cachee_loom)]

use cachee_core::mutants::SKIP_REPAIR;
use loom_tests::*;

const OLD: [u8; 16] = [0xAA; 16];
/// The value the dead writer was storing.
const NEW: [u8; 16] = [0xDD; 16];
const OTHER: [u8; 16] = [0xEE; 16];

/// Dead owners, as the hooks of every handle report them.
const DEAD: &[u32] = &[9];

fn reader_and_recovering_writer() {
    let c = format(ONE_PAGE, &tiny(), LoomHooks::new(1, DEAD));
    c.set(b"key", &OLD).unwrap();
    c.testing_die_mid_set(b"key", &NEW, 9).unwrap();
    assert_eq!(c.testing_lock_owner(0), 9);
    let reader = attach(&c, LoomHooks::new(2, DEAD));
    let mut threads = Threads::new();
    threads.spawn(move || {
        let got = read(&reader, b"key");
        assert_one_of("read of a key whose writer died", &got, &[&OLD]);
        observe(if got.is_some() {
            "reader got the old value"
        } else {
            "reader missed"
        });
    });
    threads.enter();
    c.set(b"other", &OTHER).unwrap();
    threads.join();

    assert_valid(&c);
    assert_eq!(c.testing_lock_owner(0), 0, "lock released");
    let recoveries = c.stats().recoveries;
    assert_eq!(recoveries, 1, "exactly one recovery");
    assert_eq!(
        read(&c, b"key").as_deref(),
        Some(&OLD[..]),
        "the intact old entry survives the repair"
    );
    assert_eq!(read(&c, b"other").as_deref(), Some(&OTHER[..]));
    assert_eq!(c.len(), 2);
}

#[test]
fn reader_during_takeover_and_repair() {
    check(
        "recovery/reader_and_writer",
        &["reader got the old value", "reader missed"],
        reader_and_recovering_writer,
    );
}

#[test]
fn catches_skip_repair() {
    check_catches(
        "recovery/reader_and_writer",
        SKIP_REPAIR,
        reader_and_recovering_writer,
    );
}
