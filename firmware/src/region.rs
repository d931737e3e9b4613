//! The static memory region handed to the cache.
//!
//! cachee keeps everything inside one preallocated region; on a
//! microcontroller that is a `static` in .bss (zeroed by cortex-m-rt before
//! `main`). cachee-core's region is a slice of its `AtomicWord`, which is an
//! `AtomicU32` on this target (no 64-bit atomics), so `REGION.words()` is a
//! `Region` as it stands: `Cache::format(REGION.words(), &config)`.

use cachee_core::{AtomicWord, WORD_BYTES, new_word};

/// Size of the region in bytes (RAM is 4 MiB; the stack gets what is left).
pub const REGION_BYTES: usize = 64 * 1024;
/// Alignment of the region (a cache line on bigger cores; harmless here).
pub const REGION_ALIGN: usize = 64;

pub const REGION_WORDS: usize = REGION_BYTES / WORD_BYTES;

#[repr(C, align(64))]
pub struct Region(pub [AtomicWord; REGION_WORDS]);

const _: () = assert!(core::mem::align_of::<Region>() == REGION_ALIGN);
const _: () = assert!(core::mem::size_of::<Region>() == REGION_BYTES);
// The word really is 32 bits here: the region format depends on it.
const _: () = assert!(WORD_BYTES == 4);

impl Region {
    /// The region as cachee-core wants it (`&[AtomicWord]` implements `Region`).
    pub fn words(&'static self) -> &'static [AtomicWord] {
        &self.0
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr().cast()
    }
}

/// The region. All zeros at boot.
pub static REGION: Region = Region([const { new_word() }; REGION_WORDS]);
