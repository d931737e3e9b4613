//! The segment header: the first 64 KiB of a segment file, before the cache region.
//!
//! | offset | word | meaning |
//! |---:|---|---|
//! | 0 | magic | `"CACHEESH"` |
//! | 8 | version | segment format version (1) |
//! | 16 | state | 0 while being created, `READY` once the cache region is formatted |
//! | 24 | creator | pid and start time of the creating process (packed) |
//! | 32 | created | creation time, Unix milliseconds |
//! | 40 | region offset | where the cache region starts (65 536) |
//! | 48 | region length | bytes of the cache region |
//! | 56 | file length | bytes of the whole file |
//! | 64 | owner slots | number of entries in the owner table |
//! | 72 | checksum | FNV-1a over words 0, 1 and 3–9 (everything but `state`) |
//! | 4096 + 16·i | owner slot *i* | packed pid and start time (0 = free), then a 64-bit generation |
//!
//! Lock words inside the cache hold owner ids `generation << 16 | (slot + 1)`: a slot
//! reused by another process gets a new generation, so a lock left by its previous
//! holder never looks alive again.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::process;

/// Bytes before the cache region.
pub const HEADER_BYTES: usize = 64 << 10;
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"CACHEESH");
pub(crate) const VERSION: u64 = 1;
pub(crate) const READY: u64 = 0x5245_4144_5921_2121;
const OWNERS_AT: usize = 4096;
pub(crate) const OWNER_SLOTS: u64 = ((HEADER_BYTES - OWNERS_AT) / 16) as u64;

/// Word indices.
pub(crate) mod w {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 1;
    pub const STATE: usize = 2;
    pub const CREATOR: usize = 3;
    pub const CREATED: usize = 4;
    pub const REGION_OFF: usize = 5;
    pub const REGION_LEN: usize = 6;
    pub const FILE_LEN: usize = 7;
    pub const SLOTS: usize = 8;
    pub const CHECKSUM: usize = 9;
    /// Number of fixed fields.
    pub const FIELDS: usize = 10;
}

/// The header checksum over a [`Header::snapshot`]: FNV-1a over every field but the
/// state word and the checksum itself.
pub(crate) fn checksum_of(f: &[u64; w::FIELDS]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in [
        w::MAGIC,
        w::VERSION,
        w::CREATOR,
        w::CREATED,
        w::REGION_OFF,
        w::REGION_LEN,
        w::FILE_LEN,
        w::SLOTS,
    ] {
        for b in f[i].to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Typed access to a mapped header. Every access is atomic: other processes map the
/// same memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    base: *mut u64,
}

// SAFETY: the header is only ever accessed through atomic 64-bit operations.
unsafe impl Send for Header {}
// SAFETY: as above.
unsafe impl Sync for Header {}

impl Header {
    /// # Safety
    ///
    /// `base` must point to at least `HEADER_BYTES` of 8-byte-aligned memory that stays
    /// mapped while the returned value (or any copy) is used, and that is only ever
    /// accessed atomically.
    pub(crate) unsafe fn new(base: *mut u8) -> Header {
        Header { base: base.cast() }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i * 8 < HEADER_BYTES);
        // SAFETY: `i * 8 < HEADER_BYTES` (callers use fixed indices below the header
        // size, and owner indices checked against OWNER_SLOTS), the base is aligned and
        // mapped for the header's lifetime, and all access is atomic (contract of `new`).
        unsafe { AtomicU64::from_ptr(self.base.add(i)) }
    }

    pub(crate) fn load(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::Acquire)
    }

    pub(crate) fn store(&self, i: usize, v: u64) {
        self.word(i).store(v, Ordering::Release)
    }

    /// The fixed fields (words 0–9), each loaded once: what a process checks and
    /// copies at attach, so that a concurrent change cannot slip in between checking a
    /// field and using it.
    pub(crate) fn snapshot(&self) -> [u64; w::FIELDS] {
        std::array::from_fn(|i| self.load(i))
    }

    /// The checksum the header should hold, over its current contents.
    pub(crate) fn checksum(&self) -> u64 {
        checksum_of(&self.snapshot())
    }

    fn owner_word(&self, slot: u64) -> &AtomicU64 {
        assert!(slot < OWNER_SLOTS, "owner slot out of range");
        self.word((OWNERS_AT / 8) + 2 * slot as usize)
    }

    fn owner_gen(&self, slot: u64) -> &AtomicU64 {
        assert!(slot < OWNER_SLOTS, "owner slot out of range");
        self.word((OWNERS_AT / 8) + 2 * slot as usize + 1)
    }

    /// Takes an owner slot for the process `me` (packed pid and start time): a free
    /// one, else one whose process has died. Returns the owner id.
    pub(crate) fn claim_owner(&self, me: u64, slots: u64) -> Option<u32> {
        for pass in 0..2 {
            for slot in 0..slots.min(OWNER_SLOTS) {
                let cur = self.owner_word(slot).load(Ordering::Acquire);
                let free = cur == 0 || (pass == 1 && cur != me && !process::alive(cur));
                if free
                    && self
                        .owner_word(slot)
                        .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    let generation = self
                        .owner_gen(slot)
                        .fetch_add(1, Ordering::AcqRel)
                        .wrapping_add(1);
                    return Some(owner_id(slot, generation));
                }
            }
        }
        None
    }

    /// Gives an owner slot back (on a clean detach).
    pub(crate) fn release_owner(&self, id: u32, me: u64) {
        if let Some(slot) = slot_of(id) {
            let _ =
                self.owner_word(slot)
                    .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Whether owner `id` is a live process: its slot still has the id's generation and
    /// holds a process that still runs.
    pub(crate) fn owner_alive(&self, id: u32, me: u64, slots: u64) -> bool {
        let Some(slot) = slot_of(id).filter(|&s| s < slots.min(OWNER_SLOTS)) else {
            return false;
        };
        if self.owner_gen(slot).load(Ordering::Acquire) & 0xffff != (id >> 16) as u64 {
            return false;
        }
        let who = self.owner_word(slot).load(Ordering::Acquire);
        who != 0 && (who == me || process::alive(who))
    }
}

fn owner_id(slot: u64, generation: u64) -> u32 {
    (((generation & 0xffff) as u32) << 16) | (slot as u32 + 1)
}

fn slot_of(id: u32) -> Option<u64> {
    (id & 0xffff).checked_sub(1).map(u64::from)
}
