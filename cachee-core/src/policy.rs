//! Allocation and eviction: where a new entry goes and what leaves to make room.
//!
//! # Policy
//!
//! Each size class runs two clock hands over its pages' state bytes, in the manner of
//! S3-FIFO mapped onto CLOCK:
//!
//! - New entries start **cold** (probation). The *cold hand* visits only cold slots:
//!   a cold entry referenced since insertion is promoted to **hot**; an unreferenced one
//!   is evicted at once and leaves a *ghost* (its tag) in the index. Because the cold
//!   hand skips hot slots, a one-hit wonder is evicted after about one probation-sized
//!   sweep rather than after a full rotation of the cache (quick demotion).
//! - The *hot hand* visits hot slots: a referenced entry loses one reference (second
//!   chance, up to two); an unreferenced one is evicted.
//! - The cold hand runs while cold entries are at least a tenth of the class; otherwise
//!   the hot hand does.
//! - A key whose ghost is found when it is inserted again goes straight to hot.
//!
//! Hands scan one state word (eight slots on 64-bit targets) per load, and every
//! eviction examines a bounded number of slots, so no insert does unbounded work.
//!
//! # Pages and size classes
//!
//! Entries are stored in slots of their size class; pages are assigned to classes on
//! demand from a free-page list. When a class needs room, it normally evicts among its
//! own entries; but once per page-worth of evictions it compares its *eviction
//! pressure* (recent evicted bytes per page, decaying as the shard turns over) with
//! that of every other class, and takes a page from the least pressed class when that
//! class is at least twice less pressed. The page is drained (its entries evicted) and
//! re-formatted for the new class under the shard's layout epoch. This is what keeps
//! a shift in value sizes from leaving memory stranded in the old classes
//! (calcification).

use crate::entry;
use crate::index::{Probe, SlotPos};
use crate::layout::align8;
use crate::region::Region;
use crate::shard::{Ctr, Loc, PAGE_FREE, cl, off, pg, state};
use crate::sync::{Ordering, WORD_BYTES, Word, fence, mutant, mutants};
use crate::{Cache, Error, Hooks};

/// Share of a class's entries the probation set aims for, in percent (S3-FIFO's
/// small queue).
const COLD_PERCENT: u32 = 10;

/// Most slots one eviction examines before it takes whatever the hand points at.
const EVICT_BUDGET: u32 = 1024;
/// Most slots one pass of a hand examines in search of a state.
const HAND_BUDGET: u32 = 4096;

/// `Word` with every two-bit field equal to `v`.
const fn rep2(v: u8) -> Word {
    (Word::MAX / 3) * (v & 3) as Word
}

/// Which slots a hand looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    State(u8),
    Live,
}

/// Mask with the low bit of each two-bit state field set where the state matches
/// `want`.
#[inline(always)]
fn match_states(w: Word, want: Want) -> Word {
    let x = match want {
        Want::State(s) => w ^ rep2(s),
        Want::Live => w,
    };
    // Low bit of each field: set iff either bit of the field is set.
    let nonzero = (x | (x >> 1)) & rep2(1);
    match want {
        Want::State(_) => !nonzero & rep2(1),
        Want::Live => nonzero,
    }
}

/// The two hands of a class, as (page field, slot field) offsets in its state record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hand {
    page: usize,
    idx: usize,
}
pub(crate) const COLD_HAND: Hand = Hand {
    page: cl::COLD_PAGE,
    idx: cl::COLD_IDX,
};
pub(crate) const HOT_HAND: Hand = Hand {
    page: cl::HOT_PAGE,
    idx: cl::HOT_IDX,
};

/// A shard whose lock this handle holds. Dropping it releases the lock.
pub(crate) struct Locked<'c, R: Region, H: Hooks> {
    pub c: &'c Cache<R, H>,
    pub m: crate::shard::ShardMem<'c, R>,
}

impl<R: Region, H: Hooks> Drop for Locked<'_, R, H> {
    fn drop(&mut self) {
        self.m.lock_word().store(0, Ordering::Release);
    }
}

/// An indexed entry found by the lock holder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Existing {
    pub pos: SlotPos,
    pub dist: u32,
    pub loc: Loc,
    pub class: usize,
    pub e: usize,
    pub version: u32,
    pub shape: entry::Shape,
}

impl<R: Region, H: Hooks> Locked<'_, R, H> {
    // --- finding --------------------------------------------------------------------

    /// Resolves a live index slot value to its class, slot offset and decoded entry.
    pub(crate) fn resolve(&self, v: u32) -> Option<(Loc, usize, usize)> {
        let l = &self.c.l;
        let loc = l.unpack(l.slot_loc(v));
        let class = self.m.page_class(loc.page, Ordering::Relaxed)?;
        if loc.idx >= l.geom[class].nslots {
            return None;
        }
        Some((loc, class, self.m.slot_off(class, loc)))
    }

    /// Finds the live entry for `key`.
    pub(crate) fn find_existing(&self, p: Probe, key: &[u8]) -> Option<Existing> {
        let l = &self.c.l;
        let r = &self.c.region;
        self.m.each_tagged(p, |pos, loc_raw, dist| {
            let (loc, class, e) = self.resolve(l.slot_value(p.tag, loc_raw))?;
            let (version, meta) = entry::load_header(r, e, Ordering::Relaxed);
            let shape = entry::shape(r, e, l.geom[class].slot as usize, meta, l.checksums())?;
            if version & 1 != 0 || !entry::key_is(r, &shape, key) {
                return None;
            }
            Some(Existing {
                pos,
                dist,
                loc,
                class,
                e,
                version,
                shape,
            })
        })
    }

    /// Whether an existing entry has expired.
    pub(crate) fn expired(&self, ex: &Existing) -> bool {
        match ex.shape.expiry_off {
            None => false,
            Some(x) => match self.c.hooks.now() {
                Some(now) => crate::region::load_u64(&self.c.region, x, Ordering::Relaxed) <= now,
                None => false,
            },
        }
    }

    // --- index insertion ------------------------------------------------------------

    /// Finds an index slot for a new key (see `ShardMem::free_slot_for`), evicting a
    /// live entry of the home bucket if the whole probe window is full. Also reports
    /// whether the key's own ghost was seen.
    pub(crate) fn index_reserve(&self, p: Probe) -> Option<(SlotPos, u32, bool)> {
        if let Some(found) = self.m.free_slot_for(p) {
            return Some(found);
        }
        // The probe window is full of live entries: evict the coldest one of the home
        // bucket to make room (the index, not the arena, is the limit here).
        let mut best: Option<(SlotPos, Loc, usize, u8)> = None;
        for field in 0..crate::layout::BUCKET_SLOTS as u32 {
            let pos = SlotPos {
                bucket: p.home,
                field,
            };
            let v = self.m.slot(pos);
            let Some((loc, class, _)) = self.resolve(v) else {
                continue;
            };
            let st = self.m.state(loc);
            let rank = match (st, self.m.refs(loc)) {
                (state::COLD, 0) => 0,
                (state::COLD, _) => 1,
                (_, 0) => 2,
                _ => 3,
            };
            if best.is_none_or(|b| rank < b.3) {
                best = Some((pos, loc, class, rank));
            }
        }
        let (pos, loc, class, _) = best?;
        self.unlink(class, loc, false, Ctr::Evictions);
        self.release(class, loc);
        // `unlink` cleared the slot; it is ours now.
        Some((pos, 0, false))
    }

    // --- committing and removing ----------------------------------------------------

    /// Counts a newly written entry as live in state `st`.
    pub(crate) fn commit(&self, class: usize, loc: Loc, st: u8) {
        self.m.set_state(loc, st);
        self.m.clear_refs(loc);
        self.m.add_cls(class, cl::LIVE, 1);
        if st == state::HOT {
            self.m.add_cls(class, cl::HOT, 1);
        }
        self.m
            .set_hdr(off::LIVE, self.m.hdr(off::LIVE).wrapping_add(1));
    }

    /// Removes the live entry at `loc` from the index (leaving a ghost if asked) and
    /// frees its contents. The slot stays allocated: pass it to [`release`](Self::release)
    /// or reuse it.
    pub(crate) fn unlink(&self, class: usize, loc: Loc, ghost: bool, reason: Ctr) {
        let l = &self.c.l;
        let r = &self.c.region;
        let e = self.m.slot_off(class, loc);
        let (_, meta) = entry::load_header(r, e, Ordering::Relaxed);
        let late = mutant(mutants::LATE_INDEX_CLEAR);
        if late {
            entry::free_entry(r, e);
        }
        if let Some(s) = entry::shape(r, e, l.geom[class].slot as usize, meta, l.checksums()) {
            let h = entry::stored_key_hash(r, &s, l.hash, l.p.seed);
            let p = l.probe(h);
            if let Some((pos, dist)) = self.m.find_loc(p, l.pack(loc)) {
                self.m.set_slot(
                    pos,
                    if ghost {
                        l.slot_value(p.tag, l.loc_ghost())
                    } else {
                        0
                    },
                );
                self.m.add_overflow(p.home, dist, -1);
            }
        }
        if !late {
            entry::free_entry(r, e);
        }
        self.forget(class, loc);
        self.m.bump(reason, 1);
    }

    /// Like [`unlink`](Self::unlink) for an entry whose index position is known.
    pub(crate) fn unlink_at(&self, ex: &Existing, p: Probe, reason: Ctr) {
        self.m.set_slot(ex.pos, 0);
        self.m.add_overflow(p.home, ex.dist, -1);
        entry::free_entry(&self.c.region, ex.e);
        self.forget(ex.class, ex.loc);
        self.m.bump(reason, 1);
    }

    /// Drops a slot from the live counts and marks it free.
    pub(crate) fn forget(&self, class: usize, loc: Loc) {
        let st = self.m.state(loc);
        if st == state::FREE {
            return;
        }
        self.m.set_state(loc, state::FREE);
        self.m.add_cls(class, cl::LIVE, -1);
        if st == state::HOT {
            self.m.add_cls(class, cl::HOT, -1);
        }
        self.m
            .set_hdr(off::LIVE, self.m.hdr(off::LIVE).wrapping_sub(1));
    }

    /// Returns an allocated (unlinked) slot to its page's free list.
    pub(crate) fn release(&self, class: usize, loc: Loc) {
        let e = self.m.slot_off(class, loc);
        let head = self.m.pg(loc.page, pg::FREE);
        // The link lives in the first body word; the slot's meta is already 0, so
        // readers see a free slot whatever this word holds.
        crate::region::store_u32(&self.c.region, e + 8, head, Ordering::Relaxed);
        self.m.set_pg(loc.page, pg::FREE, loc.idx + 1);
        self.m.set_pg(
            loc.page,
            pg::LIVE,
            self.m.pg(loc.page, pg::LIVE).saturating_sub(1),
        );
        self.m.partial_push(class, loc.page);
    }

    // --- allocation -----------------------------------------------------------------

    /// Takes a free slot of `class` from a partially filled page.
    fn pop_free(&self, class: usize) -> Option<Loc> {
        let n = self.c.l.geom[class].nslots;
        // Each round removes the head page or returns, so a sound list takes at most one
        // round per page; more means a damaged list (a cycle), which is dropped (the
        // pages on it are found again by the next repair).
        for _ in 0..=self.c.l.p.pages {
            let page = self.m.link(self.m.cls(class, cl::PARTIAL))?;
            if self.m.pg(page, pg::FLAGS) & pg::IN_PARTIAL == 0
                || self.m.page_class(page, Ordering::Relaxed) != Some(class)
            {
                // Damaged: the head is not a partial page of this class.
                self.m.set_cls(class, cl::PARTIAL, 0);
                return None;
            }
            let free = self.m.pg(page, pg::FREE);
            let unused = self.m.pg(page, pg::UNUSED);
            let idx = if free != 0 && free <= n {
                let loc = Loc {
                    page,
                    idx: free - 1,
                };
                let e = self.m.slot_off(class, loc);
                let next = crate::region::load_u32(&self.c.region, e + 8, Ordering::Relaxed);
                self.m
                    .set_pg(page, pg::FREE, if next <= n { next } else { 0 });
                Some(free - 1)
            } else if unused < n {
                self.m.set_pg(page, pg::UNUSED, unused + 1);
                self.m.set_pg(page, pg::FREE, 0);
                Some(unused)
            } else {
                None
            };
            let empty_after = self.m.pg(page, pg::FREE) == 0 && self.m.pg(page, pg::UNUSED) >= n;
            if empty_after || idx.is_none() {
                self.m.partial_remove(class, page);
            }
            if let Some(idx) = idx {
                self.m.set_pg(
                    page,
                    pg::LIVE,
                    (self.m.pg(page, pg::LIVE) + 1).min(u32::from(u16::MAX)),
                );
                return Some(Loc { page, idx });
            }
        }
        self.m.set_cls(class, cl::PARTIAL, 0);
        None
    }

    /// Gives `page` (free, in no list) to `class`.
    fn assign_page(&self, page: u32, class: usize) {
        self.m.reset_page_state(page);
        self.m.clear_states(page, self.c.l.geom[class].nslots);
        self.m.set_page_class(page, class as u16);
        self.m.ring_insert(class, page);
        self.m.partial_push(class, page);
    }

    /// Finds a slot for an entry of `class`, evicting if the shard is full.
    pub(crate) fn alloc(&self, class: usize) -> Result<Loc, Error> {
        let m = &self.m;
        if m.hdr(off::LIVE) >= self.c.l.live_cap {
            // The entry cap (the configured maximum, or what the index holds at its
            // planned load) binds before bytes do: evict through the policy of the
            // class that can best spare an entry.
            let victim = self.cap_victim(class).ok_or(Error::NoSpace)?;
            let loc = self.evict_in_class(victim).ok_or(Error::NoSpace)?;
            if victim == class {
                return Ok(loc);
            }
            self.release(victim, loc);
        }
        if let Some(loc) = self.pop_free(class) {
            return Ok(loc);
        }
        if let Some(page) = m.free_page_pop() {
            self.assign_page(page, class);
            return self.pop_free(class).ok_or(Error::NoSpace);
        }
        let pages = m.cls(class, cl::PAGES);
        if pages == 0 || self.time_to_rebalance(class) {
            if let Some(donor) = self.pick_donor(class, pages == 0) {
                let page = self.drain_donor_page(donor);
                self.assign_page(page, class);
                return self.pop_free(class).ok_or(Error::NoSpace);
            }
        }
        if m.cls(class, cl::LIVE) == 0 {
            return Err(Error::NoSpace);
        }
        self.evict_in_class(class).ok_or(Error::NoSpace)
    }

    // --- eviction -------------------------------------------------------------------

    /// Moves `hand` forward from its position to the next slot of `class` matching
    /// `want`, examining at most `budget` slots. Leaves the hand on the slot found (or
    /// where the search stopped).
    fn hand_find(&self, class: usize, hand: Hand, want: Want, budget: &mut u32) -> Option<Loc> {
        let m = &self.m;
        let n = self.c.l.geom[class].nslots;
        let head = m.link(m.cls(class, cl::RING))?;
        let mut page = m.link(m.cls(class, hand.page)).unwrap_or(head);
        if m.page_class(page, Ordering::Relaxed) != Some(class) {
            page = head;
        }
        let mut idx = m.cls(class, hand.idx).min(n);
        // The class's page count comes from the region: bounded by the shard's.
        let pages = m.cls(class, cl::PAGES).clamp(1, self.c.l.p.pages);
        // Each page is visited at most twice per call (once from `idx`, once from 0).
        for _ in 0..=pages {
            let per = crate::shard::ShardMem::<R>::STATES_PER_WORD;
            while idx < n {
                let (w, first) = m.state_word(page, idx);
                let mut hits = match_states(w, want);
                // Ignore slots before `idx` and past the end of the page.
                hits &= Word::MAX << ((idx - first) * 2);
                let remaining = n - first;
                if remaining < per {
                    hits &= !(Word::MAX << (remaining * 2));
                }
                let scanned = (per - (idx - first)).min(n - idx);
                if hits != 0 {
                    let found = first + hits.trailing_zeros() / 2;
                    *budget = budget.saturating_sub(found - idx + 1);
                    m.set_cls(class, hand.page, page + 1);
                    m.set_cls(class, hand.idx, found);
                    return Some(Loc { page, idx: found });
                }
                *budget = budget.saturating_sub(scanned);
                idx = first + per;
                if *budget == 0 {
                    m.set_cls(class, hand.page, page + 1);
                    m.set_cls(class, hand.idx, idx.min(n));
                    return None;
                }
            }
            page = m.link(m.pg(page, pg::NEXT)).unwrap_or(head);
            idx = 0;
        }
        m.set_cls(class, hand.page, page + 1);
        m.set_cls(class, hand.idx, 0);
        None
    }

    fn advance(&self, class: usize, hand: Hand, loc: Loc) {
        self.m.set_cls(class, hand.page, loc.page + 1);
        self.m.set_cls(class, hand.idx, loc.idx + 1);
    }

    /// Evicts one entry of `class` and returns its slot, still allocated.
    pub(crate) fn evict_in_class(&self, class: usize) -> Option<Loc> {
        let m = &self.m;
        let mut budget = EVICT_BUDGET;
        loop {
            let live = m.cls(class, cl::LIVE);
            if live == 0 {
                return None;
            }
            let hot = m.cls(class, cl::HOT).min(live);
            let cold = live - hot;
            // In u64: the counts come from the region and may be damaged.
            let use_cold = cold > 0
                && (u64::from(cold) * 100 >= u64::from(live) * u64::from(COLD_PERCENT) || hot == 0);
            let (hand, want) = if use_cold {
                (COLD_HAND, Want::State(state::COLD))
            } else {
                (HOT_HAND, Want::State(state::HOT))
            };
            let mut hand_budget = HAND_BUDGET.min(budget.max(1));
            let found = self.hand_find(class, hand, want, &mut hand_budget);
            let spent = HAND_BUDGET.min(budget.max(1)) - hand_budget;
            budget = budget.saturating_sub(spent.max(1));
            let Some(loc) = found else {
                if budget == 0 {
                    return self.evict_any(class);
                }
                // The counts said a slot of this state exists but the hand found none
                // in a full pass: the counts are off. Take any live slot.
                return self.evict_any(class);
            };
            self.advance(class, hand, loc);
            let r = m.refs(loc);
            if r != 0 && budget > 0 {
                if use_cold {
                    // Referenced during probation: promote to the main set.
                    m.set_state(loc, state::HOT);
                    m.clear_refs(loc);
                    m.add_cls(class, cl::HOT, 1);
                } else {
                    m.decay_refs(loc);
                }
                continue;
            }
            self.note_eviction(class);
            self.unlink(class, loc, use_cold, Ctr::Evictions);
            return Some(loc);
        }
    }

    /// Evicts whatever live slot comes next after the hot hand.
    fn evict_any(&self, class: usize) -> Option<Loc> {
        let mut budget = u32::MAX;
        let loc = self.hand_find(class, HOT_HAND, Want::Live, &mut budget)?;
        self.advance(class, HOT_HAND, loc);
        self.note_eviction(class);
        self.unlink(class, loc, false, Ctr::Evictions);
        Some(loc)
    }

    // --- rebalancing pages between classes ------------------------------------------

    /// Pressure of `class` after decay to the current shard epoch.
    fn pressure(&self, class: usize) -> u32 {
        let m = &self.m;
        let now = m.hdr(off::DECAY_EPOCH);
        let then = m.cls(class, cl::PRESSURE_EPOCH);
        let age = now.wrapping_sub(then).min(31);
        m.cls(class, cl::PRESSURE) >> age
    }

    fn note_eviction(&self, class: usize) {
        let m = &self.m;
        let p = self.pressure(class).saturating_add(1);
        m.set_cls(class, cl::PRESSURE, p);
        m.set_cls(class, cl::PRESSURE_EPOCH, m.hdr(off::DECAY_EPOCH));
        // Halve every class's pressure each time half the shard has turned over.
        // Saturating: the counter is read from the region and may be damaged.
        let since = m.hdr(off::EVICT_SINCE_DECAY).saturating_add(1);
        if since >= (m.hdr(off::LIVE) / 2).max(64) {
            m.set_hdr(off::EVICT_SINCE_DECAY, 0);
            m.set_hdr(off::DECAY_EPOCH, m.hdr(off::DECAY_EPOCH).wrapping_add(1));
        } else {
            m.set_hdr(off::EVICT_SINCE_DECAY, since);
        }
    }

    /// The class to evict from when the entry cap binds and `class` needs a slot:
    /// `class` itself, unless another class's recent evictions per entry are less
    /// than half of `class`'s (it holds entries nobody is asking room for). The
    /// candidate is re-chosen every 64 such evictions (a scan of all classes).
    fn cap_victim(&self, class: usize) -> Option<usize> {
        let m = &self.m;
        let per_entry = |c: usize| -> u64 {
            (self.pressure(c) as u64 * 1024) / (m.cls(c, cl::LIVE).max(1) as u64)
        };
        let countdown = m.hdr(off::CAP_COUNTDOWN);
        let mut donor = m.hdr(off::CAP_DONOR).checked_sub(1).map(|d| d as usize);
        if countdown == 0
            || donor.is_none_or(|d| d >= self.c.l.nclasses as usize || m.cls(d, cl::LIVE) == 0)
        {
            donor = (0..self.c.l.nclasses as usize)
                .filter(|&c| m.cls(c, cl::LIVE) > 0)
                .min_by_key(|&c| per_entry(c));
            m.set_hdr(off::CAP_DONOR, donor.map_or(0, |d| d as u32 + 1));
            m.set_hdr(off::CAP_COUNTDOWN, 64);
        } else {
            m.set_hdr(off::CAP_COUNTDOWN, countdown - 1);
        }
        let own = m.cls(class, cl::LIVE) > 0;
        match donor {
            Some(d) if d != class && (!own || per_entry(class) > 2 * per_entry(d) + 1) => Some(d),
            _ if own => Some(class),
            other => other,
        }
    }

    /// True once per page-worth of evictions in `class`.
    fn time_to_rebalance(&self, class: usize) -> bool {
        // Saturating: the counter is read from the region and may be damaged.
        let since = self.m.cls(class, cl::SINCE_CHECK).saturating_add(1);
        if since >= self.c.l.geom[class].nslots.max(8) {
            self.m.set_cls(class, cl::SINCE_CHECK, 0);
            true
        } else {
            self.m.set_cls(class, cl::SINCE_CHECK, since);
            false
        }
    }

    /// Evicted bytes per page, recently.
    fn rate(&self, class: usize) -> u64 {
        let pages = self.m.cls(class, cl::PAGES).max(1) as u64;
        self.pressure(class) as u64 * self.c.l.geom[class].slot as u64 / pages
    }

    /// The class to take a page from, if any should give one to `class`.
    fn pick_donor(&self, class: usize, forced: bool) -> Option<usize> {
        let m = &self.m;
        let mut best: Option<(usize, u64)> = None;
        for d in 0..self.c.l.nclasses as usize {
            if d == class || m.cls(d, cl::PAGES) == 0 {
                continue;
            }
            let rate = self.rate(d);
            if best.is_none_or(|b| rate < b.1) {
                best = Some((d, rate));
            }
        }
        let (d, donor_rate) = best?;
        if forced || self.rate(class) > 2 * donor_rate + 1 {
            Some(d)
        } else {
            None
        }
    }

    /// Evicts every entry of the donor's oldest page and detaches the page from the
    /// donor. Returns the page, free and in no list.
    fn drain_donor_page(&self, donor: usize) -> u32 {
        let m = &self.m;
        let head = m.link(m.cls(donor, cl::RING)).unwrap_or(0);
        let n = self.c.l.geom[donor].nslots;
        for idx in 0..n {
            let loc = Loc { page: head, idx };
            if m.state(loc) != state::FREE {
                self.unlink(donor, loc, false, Ctr::Evictions);
            }
        }
        m.partial_remove(donor, head);
        m.ring_remove(donor, head);
        // Readers that computed a slot address with the old geometry must fail their
        // final epoch check: make the epoch odd, fence, change the class, make it even.
        let e = m.epoch(Ordering::Relaxed);
        m.set_epoch(e | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        m.set_page_class(head, PAGE_FREE);
        m.set_epoch((e | 1).wrapping_add(1), Ordering::Release);
        head
    }

    // --- whole-shard operations -----------------------------------------------------

    /// Empties the shard: every entry is freed (readers holding one fail validation),
    /// the index is cleared and every page returns to the free list.
    pub(crate) fn reset(&self) {
        let m = &self.m;
        let l = &self.c.l;
        let e = m.epoch(Ordering::Relaxed);
        m.set_epoch(e | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        m.clear_index();
        for page in 0..l.p.pages {
            if let Some(class) = m.page_class(page, Ordering::Relaxed) {
                for idx in 0..l.geom[class].nslots {
                    let e = m.slot_off(class, Loc { page, idx });
                    let (_, meta) = entry::load_header(&self.c.region, e, Ordering::Relaxed);
                    if !meta.is_free() {
                        entry::free_entry(&self.c.region, e);
                    }
                }
            }
        }
        init_shard_state(m);
        m.set_epoch((e | 1).wrapping_add(1), Ordering::Release);
    }
}

/// Writes the empty state of a shard's bookkeeping (not its epoch, lock or counters).
pub(crate) fn init_shard_state<R: Region + ?Sized>(m: &crate::shard::ShardMem<'_, R>) {
    let l = m.l;
    for f in [
        off::LIVE,
        off::FREE_PAGE_HEAD,
        off::FREE_PAGES,
        off::DECAY_EPOCH,
        off::EVICT_SINCE_DECAY,
        off::CAP_DONOR,
        off::CAP_COUNTDOWN,
    ] {
        m.set_hdr(f, 0);
    }
    crate::region::zero(
        m.r,
        m.s.base + l.off_classes,
        align8(l.nclasses as usize * crate::layout::CLASS_STATE_BYTES).div_ceil(WORD_BYTES)
            * WORD_BYTES,
    );
    for page in (0..l.p.pages).rev() {
        m.reset_page_state(page);
        m.set_page_class(page, PAGE_FREE);
        m.free_page_push(page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_matching_is_exact() {
        let per = WORD_BYTES * 4;
        let mut w: Word = 0;
        for i in 0..per {
            w |= ((i % 4) as Word) << (2 * i);
        }
        for s in 0..4u8 {
            let m = match_states(w, Want::State(s));
            for i in 0..per {
                assert_eq!(
                    m >> (2 * i) & 3,
                    ((i % 4) as u8 == s) as Word,
                    "state {s} slot {i}"
                );
            }
        }
        let live = match_states(w, Want::Live);
        for i in 0..per {
            assert_eq!(live >> (2 * i) & 3, (i % 4 != 0) as Word, "slot {i}");
        }
    }
}
