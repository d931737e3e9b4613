//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use cachee_core::{AtomicWord, Cache, Config, Hooks, WORD_BYTES, Word};

/// A zeroed region of `bytes` bytes, as owned atomic words.
///
/// Built from a zeroed `Vec<Word>` (one bulk allocation) rather than word by word:
/// under miri, constructing half a million atomics one at a time takes minutes.
pub fn region(bytes: usize) -> Vec<AtomicWord> {
    const _: () = assert!(
        std::mem::size_of::<AtomicWord>() == std::mem::size_of::<Word>()
            && std::mem::align_of::<AtomicWord>() == std::mem::align_of::<Word>()
    );
    let mut words = std::mem::ManuallyDrop::new(vec![0 as Word; bytes / WORD_BYTES]);
    // SAFETY: `AtomicWord` has the same size, alignment and bit validity as `Word`
    // (asserted above), so the allocation, length and capacity of a `Vec<Word>` are
    // those of a `Vec<AtomicWord>` holding the same (zero) values; the original vector
    // is never used or dropped again.
    unsafe {
        Vec::from_raw_parts(
            words.as_mut_ptr().cast::<AtomicWord>(),
            words.len(),
            words.capacity(),
        )
    }
}

/// Region size for a test: `bytes`, capped at 64 KiB under miri (formatting and
/// copying a region is interpreted word by word there). Tests that need a given
/// capacity size their data from the cache they get, not from this number.
pub fn sized(bytes: usize) -> usize {
    if cfg!(miri) {
        bytes.min(64 << 10)
    } else {
        bytes
    }
}

/// `normal`, or `under_miri` when interpreted by miri.
pub fn pick<T>(normal: T, under_miri: T) -> T {
    if cfg!(miri) { under_miri } else { normal }
}

/// Scales a count down under miri, where every operation is thousands of times slower.
pub fn scaled(n: usize) -> usize {
    if cfg!(miri) { (n / 50).max(8) } else { n }
}

/// Hooks with a settable clock, an owner id, a set of dead owners and a bounded wait.
#[derive(Debug)]
pub struct TestHooks {
    pub now: AtomicU64,
    pub id: u32,
    pub dead: Mutex<HashSet<u32>>,
    /// Give up waiting for a lock after this many spins (0 = never).
    pub patience: u32,
    pub liveness_checks: AtomicU32,
}

impl TestHooks {
    pub fn new(id: u32) -> Self {
        TestHooks {
            now: AtomicU64::new(1_000),
            id,
            dead: Mutex::new(HashSet::new()),
            patience: 0,
            liveness_checks: AtomicU32::new(0),
        }
    }

    pub fn advance(&self, ticks: u64) {
        self.now.fetch_add(ticks, Ordering::SeqCst);
    }

    pub fn kill(&self, owner: u32) {
        self.dead.lock().unwrap().insert(owner);
    }
}

impl Hooks for TestHooks {
    fn now(&self) -> Option<u64> {
        Some(self.now.load(Ordering::SeqCst))
    }
    fn owner_id(&self) -> u32 {
        self.id
    }
    fn owner_alive(&self, id: u32) -> bool {
        self.liveness_checks.fetch_add(1, Ordering::Relaxed);
        !self.dead.lock().unwrap().contains(&id)
    }
    fn relax(&self, spins: u32) -> bool {
        std::hint::spin_loop();
        self.patience == 0 || spins < self.patience
    }
}

/// A formatted cache over `words` with test hooks.
pub fn cache_with<'a>(
    words: &'a [AtomicWord],
    cfg: &Config,
    hooks: TestHooks,
) -> Cache<cachee_core::Words<'a>, TestHooks> {
    Cache::format_with_hooks(cachee_core::Words::from(words), cfg, hooks).expect("format")
}

/// Reads a value into a fresh vector (test convenience).
pub fn get<R: cachee_core::Region, H: Hooks>(c: &Cache<R, H>, key: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; c.max_value_len().max(1)];
    c.get(key, &mut buf)
        .expect("get")
        .map(|n| buf[..n].to_vec())
}

#[allow(unused_imports)] // not every test file uses them
pub use workload::{check_stamp, stamped};
