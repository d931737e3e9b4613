//! Checking every invariant of a region, and rebuilding a shard from its entries.
//!
//! [`Cache::check`] walks each shard under its lock and reports every broken
//! invariant it finds. [`Cache::repair`] rebuilds the shards that have problems;
//! the same rebuild runs automatically when a writer takes over the lock of an owner
//! that died. A rebuild keeps every entry that is intact (even version, plausible
//! metadata, valid checksum, unique key), drops the rest, and recomputes the index,
//! the free lists and all counts from what it kept. Readers are never blocked; during
//! a rebuild they may miss.
//!
//! Everything here treats the region as untrusted: every list walk is bounded, every
//! index is range-checked, nothing panics.

use crate::entry;
use crate::index::SlotPos;
use crate::layout::{BUCKET_SLOTS, MAX_PROBE};
use crate::policy::Locked;
use crate::region::Region;
use crate::shard::{Loc, PAGE_FREE, cl, off, pg, state};
use crate::sync::{Ordering, fence};
use crate::{Cache, Error, Hooks};

/// One broken invariant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// Shard the problem is in.
    pub shard: u32,
    /// Page, if the problem concerns one.
    pub page: Option<u32>,
    /// Slot (within the page) or index bucket, if the problem concerns one.
    pub slot: Option<u32>,
    /// What is wrong.
    pub what: &'static str,
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "shard {}", self.shard)?;
        if let Some(p) = self.page {
            write!(f, " page {p}")?;
        }
        if let Some(s) = self.slot {
            write!(f, " slot {s}")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// What [`Cache::repair`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// Shards that had problems and were rebuilt.
    pub shards_rebuilt: u32,
    /// Entries dropped because they were damaged, half-written or duplicated.
    pub entries_dropped: u64,
    /// Entries kept.
    pub entries_kept: u64,
}

impl<R: Region, H: Hooks> Cache<R, H> {
    /// Checks every invariant of every shard, calling `report` for each problem found.
    /// Returns the number of problems. Each shard is checked under its lock.
    pub fn check(&self, mut report: impl FnMut(Problem)) -> Result<u64, Error> {
        let mut n = 0;
        for s in 0..self.l.p.shards as usize {
            let g = self.lock(self.l.shard(s))?;
            g.check_shard(&mut |p| {
                n += 1;
                report(p);
            });
        }
        Ok(n)
    }

    /// Checks every invariant; returns the first problem found. Meant for tests and
    /// fuzzing, after each operation.
    pub fn validate(&self) -> Result<(), Problem> {
        let mut first = None;
        let _ = self.check(|p| {
            if first.is_none() {
                first = Some(p);
            }
        });
        match first {
            None => Ok(()),
            Some(p) => Err(p),
        }
    }

    /// Rebuilds every shard that fails [`check`](Self::check).
    pub fn repair(&self) -> Result<RepairReport, Error> {
        let mut rep = RepairReport::default();
        for s in 0..self.l.p.shards as usize {
            let g = self.lock(self.l.shard(s))?;
            let mut bad = false;
            g.check_shard(&mut |_| bad = true);
            if bad {
                let (kept, dropped) = g.rebuild();
                rep.shards_rebuilt += 1;
                rep.entries_kept += kept;
                rep.entries_dropped += dropped;
            }
        }
        Ok(rep)
    }
}

impl<R: Region, H: Hooks> Locked<'_, R, H> {
    fn problem(&self, page: Option<u32>, slot: Option<u32>, what: &'static str) -> Problem {
        Problem {
            shard: self.m.s.idx as u32,
            page,
            slot,
            what,
        }
    }

    /// Repairs the shard after its previous lock owner died mid-operation.
    pub(crate) fn repair(&self) {
        let _ = self.rebuild();
    }

    /// Walks the shard and reports every broken invariant.
    pub(crate) fn check_shard(&self, report: &mut dyn FnMut(Problem)) {
        let m = &self.m;
        let l = &self.c.l;
        let r = &self.c.region;
        let pages = l.p.pages;
        if m.epoch(Ordering::Relaxed) & 1 != 0 {
            report(self.problem(None, None, "layout epoch is odd with the lock free"));
        }

        // Free pages.
        let mut free_pages = 0u32;
        let mut cur = m.hdr(off::FREE_PAGE_HEAD);
        while let Some(p) = m.link(cur) {
            free_pages += 1;
            if free_pages > pages {
                report(self.problem(None, None, "free-page list has a cycle"));
                break;
            }
            if m.raw_page_class(p) != PAGE_FREE {
                report(self.problem(Some(p), None, "page on the free list belongs to a class"));
            }
            cur = m.pg(p, pg::NEXT);
        }
        if cur != 0 && m.link(cur).is_none() && free_pages <= pages {
            report(self.problem(None, None, "free-page list holds an out-of-range link"));
        }
        if free_pages != m.hdr(off::FREE_PAGES) {
            report(self.problem(None, None, "free-page count disagrees with the list"));
        }

        // Pages and their slots.
        let mut class_live = [0u32; crate::layout::MAX_CLASSES];
        let mut class_hot = [0u32; crate::layout::MAX_CLASSES];
        let mut class_pages = [0u32; crate::layout::MAX_CLASSES];
        let mut class_partial = [0u32; crate::layout::MAX_CLASSES];
        let mut shard_live = 0u32;
        let mut assigned_pages = 0u32;
        for page in 0..pages {
            let raw = m.raw_page_class(page);
            if raw == PAGE_FREE {
                continue;
            }
            let Some(class) = m.page_class(page, Ordering::Relaxed) else {
                report(self.problem(Some(page), None, "page class out of range"));
                continue;
            };
            assigned_pages += 1;
            class_pages[class] += 1;
            let g = l.geom[class];
            let unused = m.pg(page, pg::UNUSED);
            if unused > g.nslots {
                report(self.problem(Some(page), None, "page's unused mark is past its last slot"));
            }
            let mut live = 0u32;
            for idx in 0..g.nslots {
                let loc = Loc { page, idx };
                let st = m.state(loc);
                let e = m.slot_off(class, loc);
                let (v, meta) = entry::load_header(r, e, Ordering::Relaxed);
                match st {
                    state::FREE => {
                        if idx < unused && !meta.is_free() {
                            report(self.problem(Some(page), Some(idx), "free slot holds an entry"));
                        }
                    }
                    state::COLD | state::HOT => {
                        live += 1;
                        if st == state::HOT {
                            class_hot[class] += 1;
                        }
                        if idx >= unused {
                            report(self.problem(
                                Some(page),
                                Some(idx),
                                "live slot past the unused mark",
                            ));
                        }
                        if v & 1 != 0 {
                            report(self.problem(
                                Some(page),
                                Some(idx),
                                "live entry has an odd version",
                            ));
                        }
                        match entry::shape(r, e, g.slot as usize, meta, l.checksums()) {
                            None => report(self.problem(
                                Some(page),
                                Some(idx),
                                "live entry has impossible metadata",
                            )),
                            Some(s) => {
                                if !entry::checksum_ok(r, meta, &s) {
                                    report(self.problem(
                                        Some(page),
                                        Some(idx),
                                        "entry checksum mismatch",
                                    ));
                                }
                                if !self.indexed_once(loc, &s) {
                                    report(self.problem(
                                        Some(page),
                                        Some(idx),
                                        "live entry is not indexed exactly once",
                                    ));
                                }
                            }
                        }
                    }
                    _ => report(self.problem(Some(page), Some(idx), "invalid slot state")),
                }
            }
            class_live[class] += live;
            shard_live += live;
            // Free list of the page.
            let mut free = 0u32;
            let mut link = m.pg(page, pg::FREE);
            while link != 0 {
                free += 1;
                if link > unused.min(g.nslots) || free > g.nslots {
                    report(self.problem(Some(page), None, "page free list is broken"));
                    break;
                }
                let loc = Loc {
                    page,
                    idx: link - 1,
                };
                if m.state(loc) != state::FREE {
                    report(self.problem(
                        Some(page),
                        Some(link - 1),
                        "slot on the free list is live",
                    ));
                }
                link = crate::region::load_u32(r, m.slot_off(class, loc) + 8, Ordering::Relaxed);
            }
            let allocated = unused.min(g.nslots).saturating_sub(free);
            if allocated != live || m.pg(page, pg::LIVE) != live {
                report(self.problem(Some(page), None, "page live count disagrees with its slots"));
            }
            let has_room = free > 0 || unused < g.nslots;
            let in_partial = m.pg(page, pg::FLAGS) & pg::IN_PARTIAL != 0;
            if has_room != in_partial {
                report(self.problem(Some(page), None, "page partial-list membership is wrong"));
            }
            class_partial[class] += u32::from(in_partial);
        }
        if assigned_pages + free_pages != pages {
            report(self.problem(None, None, "pages are neither free nor assigned"));
        }
        if shard_live != m.hdr(off::LIVE) {
            report(self.problem(None, None, "shard live count disagrees with its slots"));
        }

        // Classes: counts, rings, partial lists, hands.
        for class in 0..l.nclasses as usize {
            if m.cls(class, cl::LIVE) != class_live[class]
                || m.cls(class, cl::HOT) != class_hot[class]
            {
                report(self.problem(None, None, "class live/hot counts disagree with its slots"));
            }
            if m.cls(class, cl::PAGES) != class_pages[class] {
                report(self.problem(None, None, "class page count disagrees with page classes"));
            }
            let mut seen = 0u32;
            if let Some(head) = m.link(m.cls(class, cl::RING)) {
                let mut p = head;
                loop {
                    seen += 1;
                    if seen > pages || m.page_class(p, Ordering::Relaxed) != Some(class) {
                        report(self.problem(Some(p), None, "class ring is broken"));
                        break;
                    }
                    let Some(next) = m.link(m.pg(p, pg::NEXT)) else {
                        report(self.problem(Some(p), None, "class ring link out of range"));
                        break;
                    };
                    if m.link(m.pg(next, pg::PREV)) != Some(p) {
                        report(self.problem(Some(p), None, "class ring back link is wrong"));
                        break;
                    }
                    p = next;
                    if p == head {
                        break;
                    }
                }
            }
            if seen != class_pages[class] && seen <= pages {
                report(self.problem(
                    None,
                    None,
                    "class ring does not hold exactly the class's pages",
                ));
            }
            // The partial list: every page on it flagged, of this class, back-linked
            // to its predecessor, the list ending in 0, and holding every flagged page.
            let mut partial = 0u32;
            let mut prev = 0u32;
            let mut link = m.cls(class, cl::PARTIAL);
            let mut intact = true;
            while link != 0 {
                let Some(p) = m.link(link) else {
                    report(self.problem(None, None, "partial list link out of range"));
                    intact = false;
                    break;
                };
                partial += 1;
                if partial > pages
                    || m.page_class(p, Ordering::Relaxed) != Some(class)
                    || m.pg(p, pg::FLAGS) & pg::IN_PARTIAL == 0
                    || m.pg(p, pg::PREV_PARTIAL) != prev
                {
                    report(self.problem(Some(p), None, "partial list is broken"));
                    intact = false;
                    break;
                }
                prev = p + 1;
                link = m.pg(p, pg::NEXT_PARTIAL);
            }
            if intact && partial != class_partial[class] {
                report(self.problem(
                    None,
                    None,
                    "partial list does not hold exactly the class's pages with room",
                ));
            }
            for f in [cl::COLD_PAGE, cl::HOT_PAGE] {
                let v = m.cls(class, f);
                if v != 0
                    && m.link(v).and_then(|p| m.page_class(p, Ordering::Relaxed)) != Some(class)
                {
                    report(self.problem(None, None, "clock hand points outside its class"));
                }
            }
        }

        self.check_index(report, shard_live);
        fence(Ordering::Acquire);
    }

    /// True if exactly the first index slot holding `loc` is found by probing for the
    /// key stored at `s`, and that slot lies within the probe window.
    fn indexed_once(&self, loc: Loc, s: &entry::Shape) -> bool {
        let l = &self.c.l;
        let h = entry::stored_key_hash(&self.c.region, s, l.hash, l.p.seed);
        let p = l.probe(h);
        let want = l.slot_value(p.tag, l.pack(loc));
        let mut hits = 0;
        self.m.walk(p.home, true, |_, v, _| {
            if v == want {
                hits += 1;
            }
            None::<()>
        });
        hits == 1
    }

    /// Checks that every live index slot points at a live entry of the right key and
    /// that every bucket's overflow count is exact.
    fn check_index(&self, report: &mut dyn FnMut(Problem), shard_live: u32) {
        let m = &self.m;
        let l = &self.c.l;
        let buckets = l.p.buckets;
        let window = l.probe_window() as usize;
        // Homes of the live slots of the buckets at walk positions b..b+RING, computed
        // once each. The ring is twice the probe window so that it also covers regions
        // with fewer buckets than the window.
        const RING: usize = 2 * MAX_PROBE as usize;
        let mut homes = [[u32::MAX; BUCKET_SLOTS]; RING];
        let fill = |b: u32, row: &mut [u32; BUCKET_SLOTS]| {
            for f in 0..BUCKET_SLOTS as u32 {
                row[f as usize] = self
                    .slot_home(SlotPos {
                        bucket: b,
                        field: f,
                    })
                    .unwrap_or(u32::MAX);
            }
        };
        for (i, row) in homes.iter_mut().enumerate() {
            fill((i as u32) % buckets, row);
        }
        let mut indexed = 0u32;
        // Rows are indexed by position in the walk (`b + ahead`, not wrapped), so the
        // window stays aligned when the walk wraps past the last bucket.
        for b in 0..buckets {
            let row = b as usize % RING;
            for f in 0..BUCKET_SLOTS as u32 {
                let v = m.slot(SlotPos {
                    bucket: b,
                    field: f,
                });
                if !l.slot_is_live(v) {
                    continue;
                }
                indexed += 1;
                if homes[row][f as usize] == u32::MAX {
                    report(self.problem(
                        None,
                        Some(b),
                        "index slot points at no live entry of its tag",
                    ));
                }
            }
            // Expected overflow of `b`: live slots in later buckets of the window whose
            // home is at or before `b` (cyclically, within the window).
            let mut expect = 0u32;
            for ahead in 1..window.min(buckets as usize) as u32 {
                let q = (b + ahead) % buckets;
                for home in homes[(b + ahead) as usize % RING] {
                    if home == u32::MAX {
                        continue;
                    }
                    let d_home = (q + buckets - home) % buckets;
                    if d_home >= ahead && d_home < l.probe_window() {
                        expect += 1;
                    }
                }
            }
            if m.overflow(b) != expect {
                report(self.problem(None, Some(b), "bucket overflow count is wrong"));
            }
            fill((b + RING as u32) % buckets, &mut homes[row]);
        }
        if indexed != shard_live {
            report(self.problem(
                None,
                None,
                "index holds a different number of entries than the arena",
            ));
        }
    }

    /// The home bucket of the entry a live index slot points at, if the slot points at
    /// a live, intact entry whose key hashes to the slot's tag.
    fn slot_home(&self, pos: SlotPos) -> Option<u32> {
        let l = &self.c.l;
        let r = &self.c.region;
        let v = self.m.slot(pos);
        if !l.slot_is_live(v) {
            return None;
        }
        let (loc, class, e) = self.resolve(v)?;
        if self.m.state(loc) == state::FREE {
            return None;
        }
        let (ver, meta) = entry::load_header(r, e, Ordering::Relaxed);
        let s = entry::shape(r, e, l.geom[class].slot as usize, meta, l.checksums())?;
        if ver & 1 != 0 {
            return None;
        }
        let p = l.probe(entry::stored_key_hash(r, &s, l.hash, l.p.seed));
        (p.tag == l.slot_tag(v)).then_some(p.home)
    }

    /// Rebuilds all of the shard's bookkeeping from its entries. Returns (kept, dropped).
    pub(crate) fn rebuild(&self) -> (u64, u64) {
        let m = &self.m;
        let l = &self.c.l;
        let r = &self.c.region;
        let e0 = m.epoch(Ordering::Relaxed);
        m.set_epoch(e0 | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        m.clear_index();

        // Reset every list and count, keeping each page's class if it is valid.
        for f in [
            off::LIVE,
            off::FREE_PAGE_HEAD,
            off::FREE_PAGES,
            off::EVICT_SINCE_DECAY,
            off::CAP_DONOR,
            off::CAP_COUNTDOWN,
        ] {
            m.set_hdr(f, 0);
        }
        for class in 0..l.nclasses as usize {
            for f in (0..crate::layout::CLASS_STATE_BYTES).step_by(4) {
                m.set_cls(class, f, 0);
            }
        }
        let (mut kept, mut dropped) = (0u64, 0u64);
        for page in (0..l.p.pages).rev() {
            m.reset_page_state(page);
            let Some(class) = m.page_class(page, Ordering::Relaxed) else {
                m.set_page_class(page, PAGE_FREE);
                m.free_page_push(page);
                continue;
            };
            let g = l.geom[class];
            m.set_page_class(page, class as u16);
            m.ring_insert(class, page);
            m.set_pg(page, pg::UNUSED, g.nslots);
            let mut live = 0;
            for idx in (0..g.nslots).rev() {
                let loc = Loc { page, idx };
                let e = m.slot_off(class, loc);
                let st = m.state(loc);
                let (v, meta) = entry::load_header(r, e, Ordering::Relaxed);
                let intact = (st == state::COLD || st == state::HOT)
                    && v & 1 == 0
                    && entry::shape(r, e, g.slot as usize, meta, l.checksums())
                        .is_some_and(|s| entry::checksum_ok(r, meta, &s));
                if intact {
                    live += 1;
                    continue;
                }
                if !meta.is_free() || v & 1 != 0 {
                    if st != state::FREE {
                        dropped += 1;
                    }
                    entry::free_entry(r, e);
                }
                m.set_state(loc, state::FREE);
                // Push on the page's free list (descending order leaves slot 0 first).
                crate::region::store_u32(r, e + 8, m.pg(page, pg::FREE), Ordering::Relaxed);
                m.set_pg(page, pg::FREE, idx + 1);
            }
            m.set_pg(page, pg::LIVE, live);
            if live < g.nslots {
                m.partial_push(class, page);
            }
        }

        // Re-index the surviving entries; drop duplicates and entries that do not fit.
        for page in 0..l.p.pages {
            let Some(class) = m.page_class(page, Ordering::Relaxed) else {
                continue;
            };
            let g = l.geom[class];
            for idx in 0..g.nslots {
                let loc = Loc { page, idx };
                let st = m.state(loc);
                if st == state::FREE {
                    continue;
                }
                let e = m.slot_off(class, loc);
                let (_, meta) = entry::load_header(r, e, Ordering::Relaxed);
                let Some(s) = entry::shape(r, e, g.slot as usize, meta, l.checksums()) else {
                    continue;
                };
                let p = l.probe(entry::stored_key_hash(r, &s, l.hash, l.p.seed));
                let dup = self.find_existing_shape(p, &s);
                let pos = if dup.is_none() {
                    self.index_reserve_no_evict(p)
                } else {
                    None
                };
                match pos {
                    Some((pos, dist)) => {
                        m.set_state(loc, state::FREE);
                        self.commit(class, loc, st);
                        m.set_slot(pos, l.slot_value(p.tag, l.pack(loc)));
                        m.add_overflow(p.home, dist, 1);
                        kept += 1;
                    }
                    None => {
                        if let Some(other) = dup {
                            // Two intact entries for one key: keep neither.
                            self.unlink_at(&other, p, crate::shard::Ctr::Evictions);
                            self.release(other.class, other.loc);
                            kept -= 1;
                            dropped += 1;
                        }
                        entry::free_entry(r, e);
                        m.set_state(loc, state::FREE);
                        m.set_pg(page, pg::LIVE, m.pg(page, pg::LIVE).saturating_sub(1));
                        crate::region::store_u32(r, e + 8, m.pg(page, pg::FREE), Ordering::Relaxed);
                        m.set_pg(page, pg::FREE, idx + 1);
                        m.partial_push(class, page);
                        dropped += 1;
                    }
                }
            }
        }
        m.set_epoch((e0 | 1).wrapping_add(1), Ordering::Release);
        (kept, dropped)
    }

    /// The indexed entry whose key equals the key stored at `s` (another slot).
    fn find_existing_shape(
        &self,
        p: crate::index::Probe,
        s: &entry::Shape,
    ) -> Option<crate::policy::Existing> {
        let mut key = [0u8; crate::layout::MAX_KEY_LEN];
        crate::region::read_bytes(&self.c.region, s.key_off, &mut key[..s.klen]);
        self.find_existing(p, &key[..s.klen])
    }

    /// A free index slot in the probe window, without evicting anything.
    fn index_reserve_no_evict(&self, p: crate::index::Probe) -> Option<(SlotPos, u32)> {
        let l = &self.c.l;
        self.m.walk(p.home, true, |pos, v, dist| {
            (v == 0 || l.slot_is_ghost(v)).then_some((pos, dist))
        })
    }
}
