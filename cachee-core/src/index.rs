//! The index: open addressing over one-cache-line buckets of fifteen slots.
//!
//! # Bucket layout (64 bytes)
//!
//! | bytes | meaning |
//! |---|---|
//! | 0..15 | tags of slots 0..15, one byte each; 0 = empty slot |
//! | 15 | overflow count: live entries whose probe path passes *through* this bucket |
//! | 16..61 | locations of slots 0..15, three bytes each; `0xFF_FFFF` = ghost |
//! | 61..64 | unused |
//!
//! Byte `k` of a bucket is bits `8·(k mod w)` of the bucket's word `k / w` (w = word
//! size in bytes), so the layout is the same on 32- and 64-bit targets.
//!
//! A key's home bucket comes from the low 32 bits of its hash, its tag (never 0) from
//! bits 32..40. A lookup compares all fifteen tags with two word loads (eight tags per
//! word) and reads a location only for a matching tag. A key lives in its home bucket
//! or one of the next `MAX_PROBE - 1` (fewer if the shard has fewer buckets); a
//! lookup moves on only while the current
//! bucket's overflow count is non-zero. Entries never move once indexed, so a lock-free
//! reader can miss a concurrent insert (a permitted miss) but cannot be led to a wrong
//! entry: every candidate is checked by key under the entry's seqlock. For the same
//! reason a reader combining a tag and a location from different moments is harmless.
//!
//! Ghost slots keep the tag of an entry recently evicted from probation. They cost
//! nothing (they occupy slots that would otherwise be empty), any insert may overwrite
//! them, and a key that finds its ghost on insert skips probation.
//!
//! Outside this module a slot is handled as one `u32`: `tag << 24 | location`.

use crate::layout::{BUCKET_BYTES, BUCKET_SLOTS, Layout};
use crate::region::{self, Region};
use crate::shard::ShardMem;
use crate::sync::{Ordering, WORD_BYTES, Word};

/// Position of one slot (0..15) in the index of a shard.
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

/// Location value marking a ghost slot.
pub(crate) const GHOST: u32 = 0x00ff_ffff;
const LOC_MASK: u32 = 0x00ff_ffff;
/// Byte of the bucket holding the overflow count.
const OVERFLOW_BYTE: usize = 15;
/// Byte of the bucket where slot 0's location starts.
const LOCS: usize = 16;

/// `Word` with every byte equal to `b`.
const fn rep(b: u8) -> Word {
    (Word::MAX / 0xff) * b as Word
}

/// Bit `i` set iff byte `i` of `w` is zero (exact, unlike the borrow trick).
#[inline(always)]
fn zero_bytes(w: Word) -> u32 {
    // High bit of each byte set iff the byte is non-zero; adding 0x7f to the low seven
    // bits never carries out of the byte.
    let nonzero = ((w & rep(0x7f)).wrapping_add(rep(0x7f)) | w) & rep(0x80);
    let zero = (!nonzero & rep(0x80)) as u64 >> 7;
    // Multiplying gathers bit 8i of `zero` into bit 56 + i (no two partial products
    // meet below bit 64 in a way that carries into the top byte).
    (zero.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

impl Layout {
    #[inline(always)]
    pub(crate) fn shard_of(&self, h: u64) -> usize {
        (((h >> 32) * self.p.shards as u64) >> 32) as usize
    }

    #[inline(always)]
    pub(crate) fn probe(&self, h: u64) -> Probe {
        let home = (((h as u32) as u64 * self.p.buckets as u64) >> 32) as u32;
        let tag = (h >> 32) as u8;
        Probe {
            home,
            tag: if tag == 0 { 1 } else { tag as u32 },
        }
    }

    #[inline(always)]
    pub(crate) fn next_bucket(&self, b: u32) -> u32 {
        if b + 1 == self.p.buckets { 0 } else { b + 1 }
    }

    #[inline(always)]
    pub(crate) fn slot_is_live(&self, v: u32) -> bool {
        v != 0 && v & LOC_MASK != GHOST
    }

    #[inline(always)]
    pub(crate) fn slot_is_ghost(&self, v: u32) -> bool {
        v != 0 && v & LOC_MASK == GHOST
    }

    #[inline(always)]
    pub(crate) fn slot_value(&self, tag: u32, loc_raw: u32) -> u32 {
        (tag << 24) | (loc_raw & LOC_MASK)
    }

    #[inline(always)]
    pub(crate) fn slot_tag(&self, v: u32) -> u32 {
        v >> 24
    }

    #[inline(always)]
    pub(crate) fn slot_loc(&self, v: u32) -> u32 {
        v & LOC_MASK
    }

    #[inline(always)]
    pub(crate) fn loc_ghost(&self) -> u32 {
        GHOST
    }
}

impl<R: Region + ?Sized> ShardMem<'_, R> {
    #[inline(always)]
    pub(crate) fn bucket_off(&self, b: u32) -> usize {
        self.s.base + self.l.off_index + b as usize * BUCKET_BYTES
    }

    #[inline(always)]
    fn byte(&self, b: u32, k: usize) -> u32 {
        let o = self.bucket_off(b) + k;
        (region::load(self.r, o - o % WORD_BYTES, Ordering::Relaxed) >> (8 * (o % WORD_BYTES)))
            as u8 as u32
    }

    /// Writes one byte of a bucket (lock holder only).
    #[inline(always)]
    fn set_byte(&self, b: u32, k: usize, v: u8, o: Ordering) {
        let off = self.bucket_off(b) + k;
        let base = off - off % WORD_BYTES;
        let shift = 8 * (off % WORD_BYTES);
        let w = region::load(self.r, base, Ordering::Relaxed);
        let w = (w & !((0xff as Word) << shift)) | ((v as Word) << shift);
        region::store(self.r, base, w, o);
    }

    /// The slot at `pos` as `tag << 24 | location` (0 if empty).
    #[inline(always)]
    pub(crate) fn slot(&self, pos: SlotPos) -> u32 {
        let tag = self.byte(pos.bucket, pos.field as usize);
        if tag == 0 {
            return 0;
        }
        let k = LOCS + 3 * pos.field as usize;
        let loc = self.byte(pos.bucket, k)
            | (self.byte(pos.bucket, k + 1) << 8)
            | (self.byte(pos.bucket, k + 2) << 16);
        (tag << 24) | loc
    }

    /// Sets a slot (lock holder). The location is written before the tag, and the
    /// tag with release ordering, so a reader that sees the tag sees the location and
    /// the entry it points to.
    #[inline(always)]
    pub(crate) fn set_slot(&self, pos: SlotPos, v: u32) {
        if v != 0 {
            let k = LOCS + 3 * pos.field as usize;
            for i in 0..3 {
                self.set_byte(pos.bucket, k + i, (v >> (8 * i)) as u8, Ordering::Relaxed);
            }
        }
        self.set_byte(
            pos.bucket,
            pos.field as usize,
            (v >> 24) as u8,
            Ordering::Release,
        );
    }

    #[inline(always)]
    pub(crate) fn overflow(&self, b: u32) -> u32 {
        self.byte(b, OVERFLOW_BYTE)
    }

    /// Adds `delta` to the overflow count of the `dist` buckets starting at `home`.
    pub(crate) fn add_overflow(&self, home: u32, dist: u32, delta: i32) {
        let mut b = home;
        for _ in 0..dist {
            let v = self.overflow(b).wrapping_add_signed(delta) as u8;
            self.set_byte(b, OVERFLOW_BYTE, v, Ordering::Relaxed);
            b = self.l.next_bucket(b);
        }
    }

    /// Lock-free lookup: calls `visit(loc)` for every live slot whose tag matches, in
    /// probe order, until it returns `Some`.
    ///
    /// Tags are compared a word at a time: xoring the tag word with the tag repeated in
    /// every byte turns matching bytes into zeros, which one subtraction flags. The flag
    /// can have false positives (a borrow above a zero byte), never false negatives;
    /// each flagged slot is checked exactly before it is visited.
    #[inline(always)]
    pub(crate) fn find<T>(&self, p: Probe, mut visit: impl FnMut(u32) -> Option<T>) -> Option<T> {
        const TAG_WORDS: usize = 16 / WORD_BYTES;
        let pat = rep(1).wrapping_mul(p.tag as Word);
        let mut b = p.home;
        for _ in 0..self.l.probe_window() {
            let base = self.bucket_off(b) / WORD_BYTES;
            let mut tags = [0 as Word; TAG_WORDS];
            let mut flags = [0 as Word; TAG_WORDS];
            for k in 0..TAG_WORDS {
                tags[k] = region::load_idx(self.r, base + k, Ordering::Acquire);
                let x = tags[k] ^ pat;
                flags[k] = x.wrapping_sub(rep(1)) & !x & rep(0x80);
            }
            // Byte 15 is the overflow count, not a tag.
            let overflow = (tags[TAG_WORDS - 1] >> (8 * (WORD_BYTES - 1))) as u8;
            flags[TAG_WORDS - 1] &= !((0x80 as Word) << (8 * (WORD_BYTES - 1)));
            for k in 0..TAG_WORDS {
                let mut f = flags[k];
                while f != 0 {
                    let lane = (f.trailing_zeros() / 8) as usize;
                    f &= f - 1;
                    if (tags[k] >> (8 * lane)) as u8 as u32 != p.tag {
                        continue;
                    }
                    let field = k * WORD_BYTES + lane;
                    let loc = self.loc_at(base, field);
                    if loc != GHOST {
                        if let Some(t) = visit(loc) {
                            return Some(t);
                        }
                    }
                }
            }
            if overflow == 0 {
                return None;
            }
            b = self.l.next_bucket(b);
        }
        None
    }

    /// The three location bytes of slot `field` in the bucket starting at word `base`.
    #[inline(always)]
    fn loc_at(&self, base: usize, field: usize) -> u32 {
        let k = LOCS + 3 * field;
        let (i, sh) = (k / WORD_BYTES, 8 * (k % WORD_BYTES));
        let lo = region::load_idx(self.r, base + i, Ordering::Relaxed) >> sh;
        let have = WORD_BYTES * 8 - sh;
        let v = if have >= 24 {
            lo
        } else {
            lo | (region::load_idx(self.r, base + i + 1, Ordering::Relaxed) << have)
        };
        v as u32 & LOC_MASK
    }

    /// Masks (bit `i` = slot `i`) of the slots of bucket `b` whose tag equals `tag`,
    /// and of its empty slots. Exact: bytes are compared one by one after one load per
    /// word.
    #[inline]
    pub(crate) fn tag_masks(&self, b: u32, tag: u32) -> (u32, u32) {
        const TAG_WORDS: usize = 16 / WORD_BYTES;
        let base = self.bucket_off(b) / WORD_BYTES;
        let pat = rep(1).wrapping_mul(tag as Word);
        let (mut matching, mut empty) = (0u32, 0u32);
        for k in 0..TAG_WORDS {
            let w = region::load_idx(self.r, base + k, Ordering::Relaxed);
            let shift = (k * WORD_BYTES) as u32;
            matching |= zero_bytes(w ^ pat) << shift;
            empty |= zero_bytes(w) << shift;
        }
        let slots = (1u32 << BUCKET_SLOTS) - 1; // byte 15 is the overflow count
        (matching & slots, empty & slots)
    }

    /// Location of slot `field` of bucket `b`.
    #[inline]
    pub(crate) fn slot_loc(&self, b: u32, field: u32) -> u32 {
        self.loc_at(self.bucket_off(b) / WORD_BYTES, field as usize)
    }

    /// Visits the live slots whose tag is `p.tag`, in probe order, with their distance
    /// from home (lock holder). Honours overflow counts like a reader does.
    #[inline]
    pub(crate) fn each_tagged<T>(
        &self,
        p: Probe,
        mut visit: impl FnMut(SlotPos, u32, u32) -> Option<T>,
    ) -> Option<T> {
        let mut b = p.home;
        for dist in 0..self.l.probe_window() {
            let (mut m, _) = self.tag_masks(b, p.tag);
            while m != 0 {
                let field = m.trailing_zeros();
                m &= m - 1;
                let loc = self.slot_loc(b, field);
                if loc != GHOST {
                    if let Some(t) = visit(SlotPos { bucket: b, field }, loc, dist) {
                        return Some(t);
                    }
                }
            }
            if self.overflow(b) == 0 {
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
        for dist in 0..self.l.probe_window() {
            for field in 0..BUCKET_SLOTS as u32 {
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

    /// Finds the index slot that points at `loc_raw` for a key with probe `p` (looking
    /// at the whole probe window, whatever the overflow counts say).
    pub(crate) fn find_loc(&self, p: Probe, loc_raw: u32) -> Option<(SlotPos, u32)> {
        let mut b = p.home;
        for dist in 0..self.l.probe_window() {
            let (mut m, _) = self.tag_masks(b, p.tag);
            while m != 0 {
                let field = m.trailing_zeros();
                m &= m - 1;
                if self.slot_loc(b, field) == loc_raw & LOC_MASK {
                    return Some((SlotPos { bucket: b, field }, dist));
                }
            }
            b = self.l.next_bucket(b);
        }
        None
    }

    /// Chooses an index slot for a new key with probe `p`: the first empty slot in
    /// probe order, else the first ghost slot. Also reports whether the key's own ghost
    /// was seen (and clears it if it is not the slot chosen).
    pub(crate) fn free_slot_for(&self, p: Probe) -> Option<(SlotPos, u32, bool)> {
        let mut ghost_hit: Option<SlotPos> = None;
        let mut chosen = None;
        let mut b = p.home;
        for dist in 0..self.l.probe_window() {
            let (mut m, empty) = self.tag_masks(b, p.tag);
            while m != 0 && ghost_hit.is_none() {
                let field = m.trailing_zeros();
                m &= m - 1;
                if self.slot_loc(b, field) == GHOST {
                    ghost_hit = Some(SlotPos { bucket: b, field });
                }
            }
            if empty != 0 {
                chosen = Some((
                    SlotPos {
                        bucket: b,
                        field: empty.trailing_zeros(),
                    },
                    dist,
                ));
                break;
            }
            b = self.l.next_bucket(b);
        }
        if chosen.is_none() {
            // No empty slot in the window: reuse a ghost (the key's own first).
            chosen = match ghost_hit {
                Some(g) => {
                    let dist = (g.bucket + self.l.p.buckets - p.home) % self.l.p.buckets;
                    Some((g, dist))
                }
                None => self.walk(p.home, true, |pos, v, dist| {
                    self.l.slot_is_ghost(v).then_some((pos, dist))
                }),
            };
        }
        let (pos, dist) = chosen?;
        if let Some(g) = ghost_hit {
            if g != pos {
                self.set_slot(g, 0);
            }
        }
        Some((pos, dist, ghost_hit.is_some()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bytes_is_exact_for_every_pattern() {
        for pattern in 0u32..(1 << WORD_BYTES) {
            for filler in [0x01u8, 0x7f, 0x80, 0xff] {
                let mut bytes = [filler; WORD_BYTES];
                for (i, b) in bytes.iter_mut().enumerate() {
                    if pattern & (1 << i) != 0 {
                        *b = 0;
                    }
                }
                let w = bytes
                    .iter()
                    .rev()
                    .fold(0 as Word, |acc, &b| (acc << 8) | b as Word);
                assert_eq!(
                    zero_bytes(w),
                    pattern,
                    "pattern {pattern:#b} filler {filler:#x}"
                );
            }
        }
    }
}
