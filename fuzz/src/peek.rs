//! An independent reader of the region format (`docs/format.md`), for placing damage
//! at exact places in reproductions and for describing a region when a harness fails.
//!
//! Nothing here uses `cachee-core` internals: offsets are computed from the header
//! fields and the tables of the format document.

use std::sync::atomic::Ordering;

use cachee_core::{AtomicWord, WORD_BYTES, Word};

/// Loads the `u32` field at byte offset `off` (a multiple of 4).
pub fn load_u32(w: &[AtomicWord], off: usize) -> u32 {
    let word = w[off / WORD_BYTES].load(Ordering::Relaxed);
    (word >> (8 * (off % WORD_BYTES))) as u32
}

/// Stores the `u32` field at byte offset `off`.
pub fn store_u32(w: &[AtomicWord], off: usize, v: u32) {
    let shift = 8 * (off % WORD_BYTES);
    let cell = &w[off / WORD_BYTES];
    let old = cell.load(Ordering::Relaxed);
    let mask = (u32::MAX as Word) << shift;
    cell.store((old & !mask) | ((v as Word) << shift), Ordering::Relaxed);
}

/// Loads the `u16` field at byte offset `off` (a multiple of 2).
pub fn load_u16(w: &[AtomicWord], off: usize) -> u16 {
    let word = w[off / WORD_BYTES].load(Ordering::Relaxed);
    (word >> (8 * (off % WORD_BYTES))) as u16
}

/// Stores the `u16` field at byte offset `off`.
pub fn store_u16(w: &[AtomicWord], off: usize, v: u16) {
    let shift = 8 * (off % WORD_BYTES);
    let cell = &w[off / WORD_BYTES];
    let old = cell.load(Ordering::Relaxed);
    let mask = (u16::MAX as Word) << shift;
    cell.store((old & !mask) | ((v as Word) << shift), Ordering::Relaxed);
}

/// Slot size of size class `c` (`docs/format.md`, "Size classes").
pub fn class_size(c: usize) -> usize {
    if c < 15 {
        (c + 2) * 8
    } else {
        let c = c - 15;
        let k = 7 + c / 16;
        let j = c % 16 + 1;
        (1 << k) + j * (1 << (k - 4))
    }
}

/// Size class of an entry of `n` bytes.
pub fn class_of(n: usize) -> usize {
    (0..).find(|&c| class_size(c) >= n.max(16)).unwrap_or(0)
}

/// Bytes an entry of this shape occupies before class rounding.
pub fn entry_bytes(key: usize, value: usize, checksums: bool, ttl: bool) -> usize {
    8 + if checksums { 8 } else { 0 }
        + if ttl { 8 } else { 0 }
        + if value >= 1 << 18 { 8 } else { 0 }
        + key.div_ceil(8) * 8
        + value
}

fn state_bytes(n: usize) -> usize {
    n.div_ceil(4).div_ceil(8) * 8
}

/// Slots of `slot` bytes in a page (`docs/format.md`, "Page layout").
pub fn slots_per_page(page: usize, slot: usize, refmap: usize) -> usize {
    let avail = page - refmap;
    let mut n = avail / slot;
    while n > 0 && state_bytes(n) + n * slot > avail {
        n -= 1;
    }
    n.min(65_535)
}

/// Offsets of one attached region, recomputed from its header.
#[derive(Debug, Clone, Copy)]
pub struct Peek {
    /// Shards.
    pub shards: usize,
    /// Page size.
    pub page_size: usize,
    /// Pages per shard.
    pub pages: usize,
    /// Size classes.
    pub nclasses: usize,
    /// Reference bitmap bytes per page.
    pub refmap: usize,
    /// Offset of shard 0.
    pub first_shard: usize,
    /// Bytes from one shard to the next.
    pub stride: usize,
    /// Offset of the page-class table within a shard.
    pub off_page_class: usize,
    /// Offset of the page-state table within a shard.
    pub off_page_state: usize,
    /// Offset of the arena within a shard.
    pub off_arena: usize,
}

/// Page-state fields (`u16` offsets within a page's 16-byte record).
pub mod pg {
    /// Allocated slots.
    pub const LIVE: usize = 0;
    /// Free-list head (slot + 1).
    pub const FREE: usize = 2;
    /// Unused mark.
    pub const UNUSED: usize = 4;
    /// Next page in the class ring.
    pub const NEXT: usize = 6;
    /// Previous page in the class ring.
    pub const PREV: usize = 8;
    /// Next page in the partial list.
    pub const NEXT_PARTIAL: usize = 10;
    /// Previous page in the partial list.
    pub const PREV_PARTIAL: usize = 12;
    /// Flags (bit 0: on the partial list).
    pub const FLAGS: usize = 14;
}

/// Class-record fields (`u32` offsets within a class's 48-byte record).
pub mod cl {
    /// Pages in the class.
    pub const PAGES: usize = 0;
    /// Ring head (page + 1).
    pub const RING: usize = 4;
    /// Partial-list head (page + 1).
    pub const PARTIAL: usize = 8;
    /// Live entries.
    pub const LIVE: usize = 12;
    /// Hot entries.
    pub const HOT: usize = 16;
}

impl Peek {
    /// Reads the header of an attached region (returns `None` if it looks unusable).
    pub fn new(w: &[AtomicWord]) -> Option<Peek> {
        if w.len() * WORD_BYTES < 256 {
            return None;
        }
        let f = |i: usize| load_u32(w, i * 4) as usize;
        let stripes = f(15);
        let buckets = f(11);
        let pages = f(10);
        let nclasses = f(20);
        let off_stats = (192 + nclasses * 48).div_ceil(64) * 64;
        let off_index = off_stats + stripes * 64;
        let off_page_class = off_index + buckets * 64;
        let off_page_state = (off_page_class + pages * 2).div_ceil(64) * 64;
        Some(Peek {
            shards: f(8),
            page_size: f(9),
            pages,
            nclasses,
            refmap: f(27),
            first_shard: f(21),
            stride: f(22) | (f(23) << 32),
            off_page_class,
            off_page_state,
            off_arena: f(25),
        })
    }

    /// Byte offset of shard `s`.
    pub fn shard(&self, s: usize) -> usize {
        self.first_shard + s * self.stride
    }

    /// Byte offset of field `f` of class `c`'s record in shard `s`.
    pub fn class_field(&self, s: usize, c: usize, f: usize) -> usize {
        self.shard(s) + 192 + c * 48 + f
    }

    /// Byte offset of field `f` of page `p`'s state in shard `s`.
    pub fn page_field(&self, s: usize, p: usize, f: usize) -> usize {
        self.shard(s) + self.off_page_state + p * 16 + f
    }

    /// Class of page `p` in shard `s` (`None` = free or out of range).
    pub fn page_class(&self, w: &[AtomicWord], s: usize, p: usize) -> Option<usize> {
        let c = load_u16(w, self.shard(s) + self.off_page_class + 2 * p) as usize;
        (c < self.nclasses).then_some(c)
    }

    /// Slots per page of class `c`.
    pub fn nslots(&self, c: usize) -> usize {
        slots_per_page(self.page_size, class_size(c), self.refmap)
    }
}

impl Peek {
    /// A description of every non-empty partial list (for debugging harness findings).
    pub fn describe_partials(&self, w: &[AtomicWord]) -> String {
        let link = |raw: usize| (raw != 0 && raw <= self.pages).then(|| raw - 1);
        let mut out = String::new();
        for s in 0..self.shards {
            for c in 0..self.nclasses {
                let head = load_u32(w, self.class_field(s, c, cl::PARTIAL)) as usize;
                if head == 0 {
                    continue;
                }
                out.push_str(&format!("s{s} c{c} n={} head={head}:", self.nslots(c)));
                let mut cur = head;
                let mut steps = 0;
                while let Some(p) = link(cur) {
                    let f = |x: usize| load_u16(w, self.page_field(s, p, x));
                    out.push_str(&format!(
                        " [p{p} cls={:?} free={} unused={} flags={} prev={} next={}]",
                        self.page_class(w, s, p),
                        f(pg::FREE),
                        f(pg::UNUSED),
                        f(pg::FLAGS),
                        f(pg::PREV_PARTIAL),
                        f(pg::NEXT_PARTIAL)
                    ));
                    cur = f(pg::NEXT_PARTIAL) as usize;
                    steps += 1;
                    if steps > self.pages + 1 {
                        out.push_str(" (cycle)");
                        break;
                    }
                }
                out.push('\n');
            }
        }
        out
    }
}

impl Peek {
    /// Class records with any page or entry (for debugging harness findings).
    pub fn describe_classes(&self, w: &[AtomicWord]) -> String {
        let mut out = String::new();
        for s in 0..self.shards {
            let h = |o: usize| load_u32(w, self.shard(s) + 128 + o);
            out.push_str(&format!(
                "s{s}: live {} free-page head {} free pages {}\n",
                h(0),
                h(4),
                h(8)
            ));
            for c in 0..self.nclasses {
                let f = |x: usize| load_u32(w, self.class_field(s, c, x));
                if f(cl::PAGES) == 0 && f(cl::LIVE) == 0 {
                    continue;
                }
                out.push_str(&format!(
                    "  c{c}: pages {} ring {} partial {} live {} hot {} slots/page {}\n",
                    f(cl::PAGES),
                    f(cl::RING),
                    f(cl::PARTIAL),
                    f(cl::LIVE),
                    f(cl::HOT),
                    self.nslots(c)
                ));
            }
        }
        out
    }
}

impl Peek {
    /// The index buckets of shard `s`: per slot, (tag, location), `None` if empty.
    pub fn describe_index(&self, w: &[AtomicWord], s: usize) -> String {
        let buckets = load_u32(w, 11 * 4) as usize;
        let stripes = load_u32(w, 15 * 4) as usize;
        let off_stats = (192 + self.nclasses * 48).div_ceil(64) * 64;
        let base = self.shard(s) + off_stats + stripes * 64;
        let byte = |o: usize| {
            let word = w[o / WORD_BYTES].load(Ordering::Relaxed);
            (word >> (8 * (o % WORD_BYTES))) as u8
        };
        let mut out = String::new();
        for b in 0..buckets {
            let o = base + 64 * b;
            out.push_str(&format!("bucket {b} overflow {}:", byte(o + 15)));
            for f in 0..15 {
                let tag = byte(o + f);
                let loc = byte(o + 16 + 3 * f) as u32
                    | (byte(o + 17 + 3 * f) as u32) << 8
                    | (byte(o + 18 + 3 * f) as u32) << 16;
                if tag == 0 {
                    out.push_str(" -");
                } else if loc == 0xFF_FFFF {
                    out.push_str(&format!(" {tag:02x}:ghost"));
                } else {
                    out.push_str(&format!(" {tag:02x}:{loc:x}"));
                }
            }
            out.push('\n');
        }
        out
    }
}
