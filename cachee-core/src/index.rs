//! The index: open addressing over buckets of fifteen 32-bit slots.
//!
//! # Bucket layout (64 bytes, one cache line)
//!
//! | field | meaning |
//! |---|---|
//! | 0 | overflow count: live entries whose probe path passes *through* this bucket |
//! | 1..=15 | slots: `tag << loc_bits | loc`, 0 = empty; `loc == all ones` = ghost |
//!
//! A key's home bucket comes from the low 32 bits of its hash, its tag (never 0) from
//! the bits above them. A key lives in its home bucket or in one of the next
//! `MAX_PROBE - 1` buckets; a lookup moves on to the next bucket only while the
//! current bucket's overflow count is non-zero. Entries never move once indexed, so a
//! lock-free reader scanning a bucket can miss a concurrent insert (a permitted miss)
//! but cannot be led to a wrong entry: every candidate is checked by key under the
//! entry's seqlock.
//!
//! Ghost slots remember the tag of an entry recently evicted from probation. They cost
//! nothing (they occupy slots that would otherwise be empty), any insert may overwrite
//! them, and a key that finds its ghost on insert skips probation.

use crate::layout::{BUCKET_BYTES, BUCKET_SLOTS, Layout, MAX_PROBE};
use crate::region::{self, Region};
use crate::shard::ShardMem;
use crate::sync::{Ordering, WORD_BYTES};

/// Position of one slot (field 1..=15) in the index of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotPos {
    pub bucket: u32,
    pub field: u32,
}

/// Where a key's hash sends it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    pub home: u32,
    pub tag: u32,
}

impl Layout {
    #[inline(always)]
    pub(crate) fn shard_of(&self, h: u64) -> usize {
        (((h >> 32) * self.p.shards as u64) >> 32) as usize
    }

    #[inline(always)]
    pub(crate) fn probe(&self, h: u64) -> Probe {
        let home = (((h as u32) as u64 * self.p.buckets as u64) >> 32) as u32;
        let mask = (1u32 << self.tag_bits()) - 1;
        let tag = ((h >> 32) as u32) & mask;
        Probe {
            home,
            tag: if tag == 0 { 1 } else { tag },
        }
    }

    #[inline(always)]
    pub(crate) fn next_bucket(&self, b: u32) -> u32 {
        if b + 1 == self.p.buckets { 0 } else { b + 1 }
    }
}

impl<R: Region + ?Sized> ShardMem<'_, R> {
    #[inline(always)]
    pub(crate) fn bucket_off(&self, b: u32) -> usize {
        self.s.base + self.l.off_index + b as usize * BUCKET_BYTES
    }

    #[inline(always)]
    pub(crate) fn slot_field_off(&self, pos: SlotPos) -> usize {
        self.bucket_off(pos.bucket) + pos.field as usize * 4
    }

    #[inline(always)]
    pub(crate) fn slot(&self, pos: SlotPos) -> u32 {
        region::load_u32(self.r, self.slot_field_off(pos), Ordering::Relaxed)
    }

    /// Publishes a slot value (release: the entry it points to was written before).
    #[inline(always)]
    pub(crate) fn set_slot(&self, pos: SlotPos, v: u32) {
        region::store_u32(self.r, self.slot_field_off(pos), v, Ordering::Release)
    }

    #[inline(always)]
    pub(crate) fn overflow(&self, b: u32) -> u32 {
        region::load_u32(self.r, self.bucket_off(b), Ordering::Relaxed)
    }

    /// Adds `delta` to the overflow count of the `dist` buckets starting at `home`.
    pub(crate) fn add_overflow(&self, home: u32, dist: u32, delta: i32) {
        let mut b = home;
        for _ in 0..dist {
            let o = self.bucket_off(b);
            let v = region::load_u32(self.r, o, Ordering::Relaxed);
            region::store_u32(self.r, o, v.wrapping_add_signed(delta), Ordering::Relaxed);
            b = self.l.next_bucket(b);
        }
    }

    /// Lock-free lookup: calls `visit(loc)` for every live slot whose tag matches, in
    /// probe order, until it returns `Some`.
    #[inline(always)]
    pub(crate) fn find<T>(&self, p: Probe, mut visit: impl FnMut(u32) -> Option<T>) -> Option<T> {
        let loc_bits = self.l.loc_bits;
        let ghost = self.l.loc_ghost();
        let mut b = p.home;
        for _ in 0..MAX_PROBE {
            let base = self.bucket_off(b);
            let mut overflow = 0;
            let mut k = 0;
            while k < BUCKET_BYTES {
                let w = region::load(self.r, base + k, Ordering::Acquire);
                let mut half = 0;
                while half < WORD_BYTES / 4 {
                    let v = (w >> (32 * half)) as u32;
                    if k == 0 && half == 0 {
                        overflow = v;
                    } else if v >> loc_bits == p.tag && v & ghost != ghost {
                        if let Some(t) = visit(v & ghost) {
                            return Some(t);
                        }
                    }
                    half += 1;
                }
                k += WORD_BYTES;
            }
            if overflow == 0 {
                return None;
            }
            b = self.l.next_bucket(b);
        }
        None
    }

    /// Visits every slot position in probe order from `home` (lock holder), with its
    /// distance from home, until `visit` returns `Some`. Stops after the first bucket
    /// whose overflow count is zero unless `all` is set.
    pub(crate) fn walk<T>(
        &self,
        home: u32,
        all: bool,
        mut visit: impl FnMut(SlotPos, u32, u32) -> Option<T>,
    ) -> Option<T> {
        let mut b = home;
        for dist in 0..MAX_PROBE {
            for field in 1..=BUCKET_SLOTS as u32 {
                let pos = SlotPos { bucket: b, field };
                if let Some(t) = visit(pos, self.slot(pos), dist) {
                    return Some(t);
                }
            }
            if !all && self.overflow(b) == 0 {
                return None;
            }
            b = self.l.next_bucket(b);
        }
        None
    }

    /// Finds the index slot that points at `loc_raw` for a key with probe `p`.
    pub(crate) fn find_loc(&self, p: Probe, loc_raw: u32) -> Option<(SlotPos, u32)> {
        let want = (p.tag << self.l.loc_bits) | loc_raw;
        self.walk(p.home, true, |pos, v, dist| {
            (v == want).then_some((pos, dist))
        })
    }

    /// Zeroes the whole index of the shard.
    pub(crate) fn clear_index(&self) {
        region::zero(
            self.r,
            self.bucket_off(0),
            self.l.p.buckets as usize * BUCKET_BYTES,
        );
    }
}

/// Helpers on raw slot values.
impl Layout {
    #[inline(always)]
    pub(crate) fn slot_is_live(&self, v: u32) -> bool {
        v != 0 && v & self.loc_ghost() != self.loc_ghost()
    }

    #[inline(always)]
    pub(crate) fn slot_is_ghost(&self, v: u32) -> bool {
        v != 0 && v & self.loc_ghost() == self.loc_ghost()
    }

    #[inline(always)]
    pub(crate) fn slot_value(&self, tag: u32, loc_raw: u32) -> u32 {
        (tag << self.loc_bits) | loc_raw
    }
}
