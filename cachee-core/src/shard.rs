//! Shards: the lock word, counters, size-class and page bookkeeping.
//!
//! A shard is one contiguous block of the region holding everything for the keys that
//! hash to it: a header, per-class state, statistics stripes, the index, the page
//! tables and the arena pages. All of a shard's state except the reader line (the
//! layout epoch), the hit/miss stripes and the pages' reference bitmaps is owned
//! by whoever holds the shard lock; this module provides typed accessors for it and
//! the list operations on pages. It does not decide *what* to evict (see `policy`).
//!
//! # Shard header
//!
//! | bytes | field | written by |
//! |---|---|---|
//! | 0 | layout epoch (word; odd while page geometry changes) | lock holder |
//! | 64 | lock word (word; owner id, 0 = free) | CAS |
//! | 64 + w·(1..=7) | counters: inserts, updates, removes, evictions, expirations, rejected, recoveries | lock holder |
//! | 128 | `u32` live entries, free-page head, free-page count, decay epoch, evictions since decay | lock holder |

use crate::layout::{CLASS_STATE_BYTES, Layout, PAGE_STATE_BYTES};
use crate::region::{self, Region};
use crate::sync::{Ordering, WORD_BYTES, Word};

/// Byte offsets inside a shard header.
pub(crate) mod off {
    use crate::sync::WORD_BYTES;
    pub const EPOCH: usize = 0;
    pub const LOCK: usize = 64;
    pub const COUNTERS: usize = 64 + WORD_BYTES;
    pub const LIVE: usize = 128;
    pub const FREE_PAGE_HEAD: usize = 132;
    pub const FREE_PAGES: usize = 136;
    pub const DECAY_EPOCH: usize = 140;
    pub const EVICT_SINCE_DECAY: usize = 144;
    /// Class (+1) that gives up entries when the entry cap binds, and how many more
    /// such evictions before it is chosen again.
    pub const CAP_DONOR: usize = 148;
    pub const CAP_COUNTDOWN: usize = 152;
}

/// Counters kept in the shard header (updated under the lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctr {
    Inserts = 0,
    Updates = 1,
    Removes = 2,
    Evictions = 3,
    Expirations = 4,
    Rejected = 5,
    Recoveries = 6,
}

/// Byte offsets of the `u32` fields of a class state record.
pub(crate) mod cl {
    pub const PAGES: usize = 0;
    pub const RING: usize = 4;
    pub const PARTIAL: usize = 8;
    pub const LIVE: usize = 12;
    pub const HOT: usize = 16;
    pub const COLD_PAGE: usize = 20;
    pub const COLD_IDX: usize = 24;
    pub const HOT_PAGE: usize = 28;
    pub const HOT_IDX: usize = 32;
    pub const PRESSURE: usize = 36;
    pub const PRESSURE_EPOCH: usize = 40;
    pub const SINCE_CHECK: usize = 44;
}

/// Byte offsets of the `u16` fields of a page state record. Page links are stored
/// as `page + 1` and free-list heads as `slot + 1`, with 0 meaning "none" (so a shard
/// has at most 65,534 pages and a page at most 65,535 slots).
pub(crate) mod pg {
    pub const LIVE: usize = 0;
    pub const FREE: usize = 2;
    pub const UNUSED: usize = 4;
    pub const NEXT: usize = 6;
    pub const PREV: usize = 8;
    pub const NEXT_PARTIAL: usize = 10;
    pub const PREV_PARTIAL: usize = 12;
    pub const FLAGS: usize = 14;
    /// `FLAGS` bit: the page is on its class's partial list.
    pub const IN_PARTIAL: u32 = 1;
}

/// Page-class value of a page that belongs to no class.
pub(crate) const PAGE_FREE: u16 = u16::MAX;

/// Per-slot state, two bits each, four to a byte (owned by the lock holder; readers
/// never look at it).
pub(crate) mod state {
    /// The slot holds no entry.
    pub const FREE: u8 = 0;
    /// Probation: inserted recently and not yet proven; evicted quickly if unused.
    pub const COLD: u8 = 1;
    /// Main: survived probation (or came back from a ghost).
    pub const HOT: u8 = 2;
}

/// Reference bits, two per slot, in the bitmap at the start of each page: `REF1` on
/// the first hit since the eviction hand last passed, `REF2` on a later one. Readers
/// only ever *set* bits, and only when a bit is missing, so a hit on a marked entry
/// writes nothing. The bitmap sits at the same place whatever the page's size class,
/// so a reader holding a stale location can at worst mark the wrong slot referenced.
pub(crate) mod refs {
    pub const REF1: u8 = 1;
    pub const REF2: u8 = 2;
    pub const BOTH: u8 = 3;
}

/// A slot address inside a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub page: u32,
    pub idx: u32,
}

/// A shard and its byte offset in the region.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shard {
    pub idx: usize,
    pub base: usize,
}

impl Layout {
    #[inline(always)]
    pub(crate) fn pack(&self, loc: Loc) -> u32 {
        (loc.page << self.slot_bits) | loc.idx
    }

    #[inline(always)]
    pub(crate) fn unpack(&self, raw: u32) -> Loc {
        Loc {
            page: raw >> self.slot_bits,
            idx: raw & ((1 << self.slot_bits) - 1),
        }
    }

    #[inline(always)]
    pub(crate) fn shard(&self, idx: usize) -> Shard {
        Shard {
            idx,
            base: self.shard_base(idx),
        }
    }
}

/// Typed access to one shard's words. Cheap to build; holds no lock by itself.
pub(crate) struct ShardMem<'c, R: Region + ?Sized> {
    pub r: &'c R,
    pub l: &'c Layout,
    pub s: Shard,
}

impl<R: Region + ?Sized> Clone for ShardMem<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R: Region + ?Sized> Copy for ShardMem<'_, R> {}

impl<'c, R: Region + ?Sized> ShardMem<'c, R> {
    #[inline(always)]
    pub(crate) fn new(r: &'c R, l: &'c Layout, s: Shard) -> Self {
        ShardMem { r, l, s }
    }

    // --- reader line ----------------------------------------------------------------

    #[inline(always)]
    pub(crate) fn epoch(&self, o: Ordering) -> Word {
        region::load(self.r, self.s.base + off::EPOCH, o)
    }

    #[inline(always)]
    pub(crate) fn set_epoch(&self, v: Word, o: Ordering) {
        region::store(self.r, self.s.base + off::EPOCH, v, o)
    }

    // --- lock -----------------------------------------------------------------------

    #[inline(always)]
    pub(crate) fn lock_word(&self) -> &'c crate::sync::AtomicWord {
        region::word(self.r, self.s.base + off::LOCK)
    }

    // --- counters -------------------------------------------------------------------

    #[inline(always)]
    fn ctr_off(&self, c: Ctr) -> usize {
        self.s.base + off::COUNTERS + c as usize * WORD_BYTES
    }

    #[inline(always)]
    pub(crate) fn counter(&self, c: Ctr) -> Word {
        region::load(self.r, self.ctr_off(c), Ordering::Relaxed)
    }

    /// Adds to a counter (lock holder only: a plain load + store).
    #[inline(always)]
    pub(crate) fn bump(&self, c: Ctr, n: Word) {
        let o = self.ctr_off(c);
        let v = region::load(self.r, o, Ordering::Relaxed);
        region::store(self.r, o, v.wrapping_add(n), Ordering::Relaxed);
    }

    #[inline(always)]
    pub(crate) fn hdr(&self, field: usize) -> u32 {
        region::load_u32(self.r, self.s.base + field, Ordering::Relaxed)
    }

    #[inline(always)]
    pub(crate) fn set_hdr(&self, field: usize, v: u32) {
        region::store_u32(self.r, self.s.base + field, v, Ordering::Relaxed)
    }

    // --- statistics stripes (readers write these) ----------------------------------

    #[inline(always)]
    pub(crate) fn stripe_off(&self, stripe: usize) -> usize {
        self.s.base + self.l.off_stats + stripe * crate::layout::STRIPE_BYTES
    }

    /// Counts a hit or miss in `stripe`.
    ///
    /// A plain load and store, not a read-modify-write: on x86 a locked instruction
    /// would stall every read behind the previous one's misses. Stripes are chosen per
    /// thread, so increments are lost only in the rare case of two threads sharing a
    /// stripe at the same moment.
    #[inline(always)]
    pub(crate) fn count_hit(&self, stripe: usize, hit: bool) {
        let o = self.stripe_off(stripe) + if hit { 0 } else { 8 };
        let w = region::word(self.r, o);
        w.store(w.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    // --- size classes ---------------------------------------------------------------

    #[inline(always)]
    fn class_off(&self, class: usize) -> usize {
        debug_assert!(class < self.l.nclasses as usize);
        self.s.base + self.l.off_classes + class * CLASS_STATE_BYTES
    }

    #[inline(always)]
    pub(crate) fn cls(&self, class: usize, field: usize) -> u32 {
        region::load_u32(self.r, self.class_off(class) + field, Ordering::Relaxed)
    }

    #[inline(always)]
    pub(crate) fn set_cls(&self, class: usize, field: usize, v: u32) {
        region::store_u32(self.r, self.class_off(class) + field, v, Ordering::Relaxed)
    }

    #[inline(always)]
    pub(crate) fn add_cls(&self, class: usize, field: usize, delta: i32) {
        let v = self.cls(class, field);
        self.set_cls(class, field, v.wrapping_add_signed(delta));
    }

    // --- pages ----------------------------------------------------------------------

    /// The class of `page`, read by lock-free readers; `None` if the page is free or
    /// the stored value is out of range.
    #[inline(always)]
    pub(crate) fn page_class(&self, page: u32, o: Ordering) -> Option<usize> {
        if page >= self.l.p.pages {
            return None;
        }
        let c = region::load_u16(
            self.r,
            self.s.base + self.l.off_page_class + page as usize * 2,
            o,
        );
        if (c as u32) < self.l.nclasses {
            Some(c as usize)
        } else {
            None
        }
    }

    #[inline(always)]
    pub(crate) fn raw_page_class(&self, page: u32) -> u16 {
        region::load_u16(
            self.r,
            self.s.base + self.l.off_page_class + page as usize * 2,
            Ordering::Relaxed,
        )
    }

    #[inline(always)]
    pub(crate) fn set_page_class(&self, page: u32, class: u16) {
        region::store_u16(
            self.r,
            self.s.base + self.l.off_page_class + page as usize * 2,
            class,
            Ordering::Relaxed,
        )
    }

    #[inline(always)]
    fn page_state_off(&self, page: u32) -> usize {
        debug_assert!(page < self.l.p.pages);
        self.s.base + self.l.off_page_state + page as usize * PAGE_STATE_BYTES
    }

    #[inline(always)]
    pub(crate) fn pg(&self, page: u32, field: usize) -> u32 {
        region::load_u16(self.r, self.page_state_off(page) + field, Ordering::Relaxed) as u32
    }

    #[inline(always)]
    pub(crate) fn set_pg(&self, page: u32, field: usize, v: u32) {
        debug_assert!(v <= u16::MAX as u32, "page field overflow: {v}");
        region::store_u16(
            self.r,
            self.page_state_off(page) + field,
            v as u16,
            Ordering::Relaxed,
        )
    }

    /// A page link field decoded: `Some(page)` if it names a page of this shard.
    #[inline(always)]
    pub(crate) fn link(&self, raw: u32) -> Option<u32> {
        if raw == 0 || raw > self.l.p.pages {
            None
        } else {
            Some(raw - 1)
        }
    }

    #[inline(always)]
    pub(crate) fn page_base(&self, page: u32) -> usize {
        self.l.page_base(self.s.base, page)
    }

    /// Byte offset of the slot at `loc` in a page of class `class`.
    #[inline(always)]
    pub(crate) fn slot_off(&self, class: usize, loc: Loc) -> usize {
        let g = self.l.geom[class];
        self.page_base(loc.page) + g.data_off as usize + loc.idx as usize * g.slot as usize
    }

    // --- slot states: 2 bits per slot (lock holder only) -----------------------------

    /// Slot states per word.
    pub(crate) const STATES_PER_WORD: u32 = (WORD_BYTES * 4) as u32;

    #[inline(always)]
    fn state_pos(&self, loc: Loc) -> (usize, u32) {
        let per = Self::STATES_PER_WORD;
        let word =
            self.page_base(loc.page) + self.l.refmap_bytes + (loc.idx / per) as usize * WORD_BYTES;
        (word, 2 * (loc.idx % per))
    }

    #[inline(always)]
    pub(crate) fn state(&self, loc: Loc) -> u8 {
        let (o, sh) = self.state_pos(loc);
        ((region::load(self.r, o, Ordering::Relaxed) >> sh) & 3) as u8
    }

    #[inline(always)]
    pub(crate) fn set_state(&self, loc: Loc, v: u8) {
        let (o, sh) = self.state_pos(loc);
        let w = region::load(self.r, o, Ordering::Relaxed);
        let mask: Word = 3 << sh;
        region::store(
            self.r,
            o,
            (w & !mask) | (((v & 3) as Word) << sh),
            Ordering::Relaxed,
        );
    }

    /// The state word holding slot `idx` of `page` and the index of its first slot.
    #[inline(always)]
    pub(crate) fn state_word(&self, page: u32, idx: u32) -> (Word, u32) {
        let first = idx - idx % Self::STATES_PER_WORD;
        let (o, _) = self.state_pos(Loc { page, idx });
        (region::load(self.r, o, Ordering::Relaxed), first)
    }

    /// Zeroes the states of a page for `nslots` slots.
    pub(crate) fn clear_states(&self, page: u32, nslots: u32) {
        let o = self.page_base(page) + self.l.refmap_bytes;
        region::zero(self.r, o, crate::layout::state_bytes(nslots as usize));
    }

    // --- reference bits (readers set, lock holder clears) ---------------------------

    #[inline(always)]
    fn ref_pos(&self, loc: Loc) -> (usize, u32) {
        // The bitmap size is a power of two, so this is a mask, not a division.
        let cap = self.l.refmap_bytes * 4;
        let bit = 2 * (loc.idx as usize & (cap - 1));
        let byte = self.page_base(loc.page) + bit / 8;
        let o = byte - byte % WORD_BYTES;
        (o, ((byte % WORD_BYTES) * 8 + bit % 8) as u32)
    }

    /// Byte offset of the word holding `loc`'s reference bits.
    #[inline(always)]
    pub(crate) fn ref_word(&self, loc: Loc) -> usize {
        self.ref_pos(loc).0
    }

    #[inline(always)]
    pub(crate) fn refs(&self, loc: Loc) -> u8 {
        let (o, sh) = self.ref_pos(loc);
        ((region::load(self.r, o, Ordering::Relaxed) >> sh) as u8) & refs::BOTH
    }

    /// Records a hit (readers). Writes only if a reference bit is missing.
    #[inline(always)]
    pub(crate) fn touch(&self, loc: Loc) {
        let (o, sh) = self.ref_pos(loc);
        let w = region::word(self.r, o);
        let cur = ((w.load(Ordering::Relaxed) >> sh) as u8) & refs::BOTH;
        if cur == refs::BOTH {
            return;
        }
        let bit = if cur & refs::REF1 == 0 {
            refs::REF1
        } else {
            refs::REF2
        };
        w.fetch_or((bit as Word) << sh, Ordering::Relaxed);
    }

    /// Takes one reference away (the clock hand's second chance).
    #[inline]
    pub(crate) fn decay_refs(&self, loc: Loc) {
        let (o, sh) = self.ref_pos(loc);
        let w = region::word(self.r, o);
        let cur = ((w.load(Ordering::Relaxed) >> sh) as u8) & refs::BOTH;
        let clear = if cur & refs::REF2 != 0 {
            refs::REF2
        } else {
            refs::REF1
        };
        w.fetch_and(!((clear as Word) << sh), Ordering::Relaxed);
    }

    /// Clears both reference bits.
    #[inline]
    pub(crate) fn clear_refs(&self, loc: Loc) {
        let (o, sh) = self.ref_pos(loc);
        region::word(self.r, o).fetch_and(!((refs::BOTH as Word) << sh), Ordering::Relaxed);
    }

    // --- page lists -----------------------------------------------------------------

    /// Inserts `page` into the ring of `class` just before its head (the ring's tail).
    pub(crate) fn ring_insert(&self, class: usize, page: u32) {
        match self.link(self.cls(class, cl::RING)) {
            None => {
                self.set_pg(page, pg::NEXT, page + 1);
                self.set_pg(page, pg::PREV, page + 1);
                self.set_cls(class, cl::RING, page + 1);
            }
            Some(head) => {
                let tail = self.link(self.pg(head, pg::PREV)).unwrap_or(head);
                self.set_pg(page, pg::NEXT, head + 1);
                self.set_pg(page, pg::PREV, tail + 1);
                self.set_pg(tail, pg::NEXT, page + 1);
                self.set_pg(head, pg::PREV, page + 1);
            }
        }
        self.add_cls(class, cl::PAGES, 1);
    }

    /// Removes `page` from the ring of `class`, moving hands and the head off it.
    pub(crate) fn ring_remove(&self, class: usize, page: u32) {
        let next = self.link(self.pg(page, pg::NEXT)).unwrap_or(page);
        let prev = self.link(self.pg(page, pg::PREV)).unwrap_or(page);
        let only = next == page;
        if !only {
            self.set_pg(prev, pg::NEXT, next + 1);
            self.set_pg(next, pg::PREV, prev + 1);
        }
        let repl = if only { 0 } else { next + 1 };
        if self.cls(class, cl::RING) == page + 1 {
            self.set_cls(class, cl::RING, repl);
        }
        for (pf, xf) in [(cl::COLD_PAGE, cl::COLD_IDX), (cl::HOT_PAGE, cl::HOT_IDX)] {
            if self.cls(class, pf) == page + 1 {
                self.set_cls(class, pf, repl);
                self.set_cls(class, xf, 0);
            }
        }
        self.set_pg(page, pg::NEXT, 0);
        self.set_pg(page, pg::PREV, 0);
        self.add_cls(class, cl::PAGES, -1);
    }

    pub(crate) fn partial_push(&self, class: usize, page: u32) {
        if self.pg(page, pg::FLAGS) & pg::IN_PARTIAL != 0 {
            return;
        }
        // A head out of range (damage) is dropped rather than linked to.
        let head = self.cls(class, cl::PARTIAL);
        let head = if self.link(head).is_some() { head } else { 0 };
        self.set_pg(page, pg::NEXT_PARTIAL, head);
        self.set_pg(page, pg::PREV_PARTIAL, 0);
        if let Some(h) = self.link(head) {
            self.set_pg(h, pg::PREV_PARTIAL, page + 1);
        }
        self.set_cls(class, cl::PARTIAL, page + 1);
        self.set_pg(page, pg::FLAGS, self.pg(page, pg::FLAGS) | pg::IN_PARTIAL);
    }

    pub(crate) fn partial_remove(&self, class: usize, page: u32) {
        if self.pg(page, pg::FLAGS) & pg::IN_PARTIAL == 0 {
            return;
        }
        let next = self.pg(page, pg::NEXT_PARTIAL);
        let prev = self.pg(page, pg::PREV_PARTIAL);
        match self.link(prev) {
            Some(p) => self.set_pg(p, pg::NEXT_PARTIAL, next),
            None => self.set_cls(class, cl::PARTIAL, next),
        }
        if let Some(n) = self.link(next) {
            self.set_pg(n, pg::PREV_PARTIAL, prev);
        }
        self.set_pg(page, pg::NEXT_PARTIAL, 0);
        self.set_pg(page, pg::PREV_PARTIAL, 0);
        self.set_pg(page, pg::FLAGS, self.pg(page, pg::FLAGS) & !pg::IN_PARTIAL);
    }

    /// Pushes a page onto the shard's free-page list. The page must already be out of
    /// every class list and its page class set to [`PAGE_FREE`].
    pub(crate) fn free_page_push(&self, page: u32) {
        self.set_pg(page, pg::NEXT, self.hdr(off::FREE_PAGE_HEAD));
        self.set_hdr(off::FREE_PAGE_HEAD, page + 1);
        self.set_hdr(off::FREE_PAGES, self.hdr(off::FREE_PAGES) + 1);
    }

    pub(crate) fn free_page_pop(&self) -> Option<u32> {
        let page = self.link(self.hdr(off::FREE_PAGE_HEAD))?;
        self.set_hdr(off::FREE_PAGE_HEAD, self.pg(page, pg::NEXT));
        self.set_hdr(off::FREE_PAGES, self.hdr(off::FREE_PAGES).saturating_sub(1));
        self.set_pg(page, pg::NEXT, 0);
        Some(page)
    }

    /// Resets a page's state record to "empty, in no list".
    pub(crate) fn reset_page_state(&self, page: u32) {
        for f in (0..PAGE_STATE_BYTES).step_by(2) {
            self.set_pg(page, f, 0);
        }
    }
}
