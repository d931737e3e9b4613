//! Pieces shared by the harnesses: regions, hooks with a fake clock, invariant checks
//! and self-verifying ("stamped") values.

use std::sync::atomic::{AtomicU64, Ordering};

use cachee_core::{AtomicWord, Cache, Hooks, Problem, Region, WORD_BYTES, Word, new_word};

/// A zeroed region of `bytes` bytes (rounded down to whole words).
pub fn region(bytes: usize) -> Vec<AtomicWord> {
    (0..bytes / WORD_BYTES).map(|_| new_word()).collect()
}

/// A region holding a copy of `words`.
pub fn region_from(words: &[Word]) -> Vec<AtomicWord> {
    words.iter().map(|&w| AtomicWord::new(w)).collect()
}

/// A region holding `bytes` (zero-padded to whole words), in memory byte order.
pub fn region_from_bytes(bytes: &[u8]) -> Vec<AtomicWord> {
    bytes
        .chunks(WORD_BYTES)
        .map(|c| {
            let mut b = [0u8; WORD_BYTES];
            b[..c.len()].copy_from_slice(c);
            AtomicWord::new(Word::from_ne_bytes(b))
        })
        .collect()
}

/// A plain copy of every word of a region.
pub fn snapshot(words: &[AtomicWord]) -> Vec<Word> {
    words.iter().map(|w| w.load(Ordering::Relaxed)).collect()
}

/// Index of the first word that differs between two snapshots.
pub fn first_difference(a: &[Word], b: &[Word]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// Hooks for the harnesses: a settable fake clock (or none), an owner id, and a
/// bounded wait so that a lock held by a "live" owner turns into `Error::Busy`
/// instead of a hang.
#[derive(Debug)]
pub struct FuzzHooks<'a> {
    /// The clock, or `None` for a cache without one (TTLs then fail with `NoClock`).
    pub clock: Option<&'a AtomicU64>,
    /// The id this handle writes into lock words.
    pub id: u32,
    /// Give up waiting for a lock after this many spins.
    pub patience: u32,
}

impl<'a> FuzzHooks<'a> {
    /// Hooks with the given clock, owner id 1 and a patience of 2¹⁶ spins.
    pub fn new(clock: Option<&'a AtomicU64>) -> Self {
        FuzzHooks {
            clock,
            id: 1,
            patience: 1 << 16,
        }
    }
}

impl Hooks for FuzzHooks<'_> {
    fn now(&self) -> Option<u64> {
        self.clock.map(|c| c.load(Ordering::SeqCst))
    }
    fn owner_id(&self) -> u32 {
        self.id
    }
    fn relax(&self, spins: u32) -> bool {
        std::hint::spin_loop();
        spins < self.patience
    }
}

/// Every problem `check` reports (or the error it failed with).
pub fn problems<R: Region, H: Hooks>(c: &Cache<R, H>) -> Result<Vec<Problem>, cachee_core::Error> {
    let mut v = Vec::new();
    c.check(|p| v.push(p))?;
    Ok(v)
}

/// Panics unless `check` runs to completion and finds nothing. (Stricter than
/// `Cache::validate`, which treats a `check` that could not take a lock as a pass.)
#[track_caller]
pub fn assert_valid<R: Region, H: Hooks>(c: &Cache<R, H>, context: &dyn core::fmt::Debug) {
    match problems(c) {
        Ok(p) if p.is_empty() => {}
        Ok(p) => {
            let list: Vec<String> = p.iter().take(8).map(|p| p.to_string()).collect();
            panic!(
                "invariants broken after {context:?}: {} problem(s): {list:#?}",
                p.len()
            )
        }
        Err(e) => panic!("check failed after {context:?}: {e}"),
    }
}

/// The unsigned decimal integer `incr`/`decr` accept: 1 to 20 ASCII digits that fit in
/// a `u64` (leading zeros allowed).
pub fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(n)
}

pub use workload::{check_stamp, stamped};
