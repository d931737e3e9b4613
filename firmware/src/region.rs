//! The static memory region that will be handed to the cache.
//!
//! cachee keeps everything inside one preallocated region; on a
//! microcontroller that is a `static` in .bss (zeroed by cortex-m-rt before
//! `main`). Adjust the type once cachee-core's API settles, e.g. to a
//! `[u8; N]` wrapper taken once with `&raw mut` or `cortex_m::singleton!`.

use core::sync::atomic::AtomicU32;

/// Size of the region in bytes (RAM is 4 MiB; the stack gets what is left).
pub const REGION_BYTES: usize = 64 * 1024;
/// Alignment of the region (a cache line on bigger cores; harmless here).
pub const REGION_ALIGN: usize = 64;

pub const REGION_WORDS: usize = REGION_BYTES / 4;

#[repr(C, align(64))]
pub struct Region(pub [AtomicU32; REGION_WORDS]);

const _: () = assert!(core::mem::align_of::<Region>() == REGION_ALIGN);
const _: () = assert!(core::mem::size_of::<Region>() == REGION_BYTES);

impl Region {
    pub fn words(&self) -> &[AtomicU32] {
        &self.0
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr().cast()
    }
}

/// The region. All zeros at boot.
pub static REGION: Region = Region([const { AtomicU32::new(0) }; REGION_WORDS]);
