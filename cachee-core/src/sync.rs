//! The one place that names the atomics.
//!
//! Every other module takes its atomics, fences and spin hints from here, so that
//! building with `--cfg cachee_loom` swaps the whole crate onto loom's model-checked
//! primitives. No other file may name `core::sync::atomic` or `loom` directly.

#[cfg(all(not(cachee_loom), target_has_atomic = "64"))]
pub(crate) use core::sync::atomic::AtomicU64;
#[cfg(not(cachee_loom))]
pub(crate) use core::sync::atomic::{AtomicU32, Ordering, fence};

#[cfg(cachee_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// The word every access to a cache region goes through.
///
/// 64-bit where the target has 64-bit atomics, 32-bit otherwise (for example
/// `thumbv7em-none-eabihf`). The region format is defined in terms of this word, and
/// the layout hash records its size, so a region is only ever attached by code that
/// uses the same word size.
#[cfg(target_has_atomic = "64")]
pub type AtomicWord = AtomicU64;
/// The word every access to a cache region goes through (32-bit targets).
#[cfg(not(target_has_atomic = "64"))]
pub type AtomicWord = AtomicU32;

/// The integer held by an [`AtomicWord`].
#[cfg(target_has_atomic = "64")]
pub type Word = u64;
/// The integer held by an [`AtomicWord`] (32-bit targets).
#[cfg(not(target_has_atomic = "64"))]
pub type Word = u32;

/// Bytes in one [`Word`].
pub const WORD_BYTES: usize = core::mem::size_of::<Word>();

/// A word as a `u64` (a no-op where words are 64-bit).
#[inline(always)]
#[allow(clippy::unnecessary_cast)]
pub(crate) const fn widen(w: Word) -> u64 {
    w as u64
}

/// Creates a zeroed atomic word (usable in `const` contexts outside loom).
#[cfg(not(cachee_loom))]
pub const fn new_word() -> AtomicWord {
    AtomicWord::new(0)
}

/// Creates a zeroed atomic word.
#[cfg(cachee_loom)]
pub fn new_word() -> AtomicWord {
    AtomicWord::new(0)
}

/// Hint for a spin-wait loop. Under loom it yields, so that spin loops do not make
/// the model's state space infinite.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(cachee_loom)]
    loom::thread::yield_now();
    #[cfg(not(cachee_loom))]
    core::hint::spin_loop();
}

/// Deliberate protocol bugs, switched on at run time by the loom crate's
/// "this model can fail" tests. They exist only in loom builds; in every other
/// build [`mutant`] is a constant `false` and the checks compile away.
#[cfg(cachee_loom)]
pub mod mutants {
    use core::sync::atomic::{AtomicU32, Ordering};

    /// The writer's closing version store uses `Relaxed` instead of `Release`.
    pub const RELAXED_PUBLISH: u32 = 1 << 0;
    /// The writer does not make the version odd before it changes an entry.
    pub const SKIP_ODD_VERSION: u32 = 1 << 1;
    /// Freeing a slot does not bump its version (slot reuse becomes invisible).
    pub const SKIP_FREE_BUMP: u32 = 1 << 2;
    /// The shard lock is taken with a plain load + store instead of a CAS.
    pub const RACY_LOCK: u32 = 1 << 3;
    /// The reader skips its closing version check.
    pub const SKIP_READ_VALIDATION: u32 = 1 << 4;
    /// Shard recovery skips the repair pass after taking over a dead owner's lock.
    pub const SKIP_REPAIR: u32 = 1 << 5;
    /// Eviction clears the index slot after, not before, it frees the entry.
    pub const LATE_INDEX_CLEAR: u32 = 1 << 6;

    static ACTIVE: AtomicU32 = AtomicU32::new(0);

    /// Switches the given mutants on (replacing any previous set).
    pub fn set(mask: u32) {
        ACTIVE.store(mask, Ordering::SeqCst);
    }

    pub(crate) fn active(m: u32) -> bool {
        ACTIVE.load(Ordering::Relaxed) & m != 0
    }
}

/// Whether a deliberate bug is switched on (always `false` outside loom builds).
#[inline(always)]
#[allow(unused_variables)]
pub(crate) fn mutant(m: u32) -> bool {
    #[cfg(cachee_loom)]
    return mutants::active(m);
    #[cfg(not(cachee_loom))]
    false
}

#[cfg(not(cachee_loom))]
#[allow(dead_code)]
pub(crate) mod mutants {
    pub const RELAXED_PUBLISH: u32 = 1 << 0;
    pub const SKIP_ODD_VERSION: u32 = 1 << 1;
    pub const SKIP_FREE_BUMP: u32 = 1 << 2;
    pub const RACY_LOCK: u32 = 1 << 3;
    pub const SKIP_READ_VALIDATION: u32 = 1 << 4;
    pub const SKIP_REPAIR: u32 = 1 << 5;
    pub const LATE_INDEX_CLEAR: u32 = 1 << 6;
}
