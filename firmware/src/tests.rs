//! The firmware tests. `memory_layout` is the harness self-check (keep it,
//! first); the others are PLACEHOLDERS checking the target itself: replace
//! them with tests that drive cachee-core on `REGION`.
//!
//! A test is a `fn() -> Result<(), &'static str>` (use `ensure!` and
//! `ensure_eq!`, or `?`); list it in [`TESTS`], which runs in order.

use core::sync::atomic::Ordering;

use crate::clock::FakeClock;
use crate::harness::Test;
use crate::region::REGION;
use crate::selfcheck::memory_layout;
use crate::{ensure, ensure_eq, tests};

pub static TESTS: &[Test] = tests![
    memory_layout,
    atomic_u32_compare_exchange,
    fake_clock_advances,
];

/// 32-bit atomics (LDREX/STREX on ARMv7E-M) behave; 64-bit ones do not exist.
fn atomic_u32_compare_exchange() -> Result<(), &'static str> {
    ensure!(cfg!(target_has_atomic = "32"), "no 32-bit atomics");
    ensure!(
        !cfg!(target_has_atomic = "64"),
        "unexpected 64-bit atomics: is this really thumbv7em?"
    );

    let w = &REGION.words()[1];
    ensure_eq!(
        w.compare_exchange(0, 7, Ordering::AcqRel, Ordering::Acquire),
        Ok(0),
        "cas 0->7"
    );
    ensure_eq!(
        w.compare_exchange(0, 9, Ordering::AcqRel, Ordering::Acquire),
        Err(7),
        "stale cas"
    );
    let mut cur = w.load(Ordering::Relaxed);
    loop {
        match w.compare_exchange_weak(cur, cur * 3, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break,
            Err(actual) => cur = actual,
        }
    }
    ensure_eq!(w.load(Ordering::Acquire), 21, "weak cas loop");
    ensure_eq!(w.fetch_add(u32::MAX, Ordering::AcqRel), 21, "fetch_add");
    ensure_eq!(w.swap(0, Ordering::AcqRel), 20, "fetch_add did not wrap");
    ensure_eq!(w.load(Ordering::Relaxed), 0, "swap");
    Ok(())
}

/// The fake tick source starts where told, advances only on request and wraps.
fn fake_clock_advances() -> Result<(), &'static str> {
    let clock = FakeClock::new(0);
    ensure_eq!(clock.now(), 0, "start");
    ensure_eq!(clock.now(), 0, "advanced by itself");
    ensure_eq!(clock.advance(5), 5, "advance");
    for _ in 0..1000 {
        clock.advance(1);
    }
    ensure_eq!(clock.now(), 1005, "advance x1000");

    let near_end = FakeClock::new(u32::MAX - 1);
    ensure_eq!(near_end.advance(3), 1, "wraparound");
    Ok(())
}
