//! Configuration, the derived region layout, and the region header.
//!
//! A region is described by a handful of *primary* parameters (shard count, page
//! size, pages and index buckets per shard, key/value maxima, flags, seed). Everything
//! else — offsets, size classes, location bit widths — is *derived* from them by
//! [`Layout::derive`]. Formatting chooses the primary parameters from a [`Config`] and
//! the region size and writes both primary and derived values into the header;
//! attaching reads the primary values, derives the layout again and refuses the region
//! unless the stored derived values agree. After attach the handle keeps its own copy
//! of the layout and never re-reads the header, so later damage to the header cannot
//! steer a process out of bounds.
//!
//! See `docs/format.md` for the byte-level description.

use crate::Error;
use crate::hash::HashKind;
use crate::region::{self, Region};
use crate::sync::{Ordering, WORD_BYTES};

/// Format version written by this build. Bumped on any incompatible format change.
pub const FORMAT_VERSION: u32 = 1;

/// `"CACHEE"` + format family, as two `u32` header fields.
pub(crate) const MAGIC: [u32; 2] = [
    u32::from_le_bytes(*b"CACH"),
    u32::from_le_bytes(*b"EE\x00\x01"),
];

/// Bytes reserved for the region header.
pub const HEADER_BYTES: usize = 256;
/// Cache-line size assumed by the layout (alignment of buckets and hot words).
pub(crate) const LINE: usize = 64;
/// Bytes per index bucket (one cache line).
pub(crate) const BUCKET_BYTES: usize = 64;
/// Entry slots per bucket.
pub(crate) const BUCKET_SLOTS: usize = 15;
/// Bytes of per-shard header (three lines: reader line, lock line, writer state).
pub(crate) const SHARD_HEADER_BYTES: usize = 3 * LINE;
/// Bytes of writer-owned state per size class.
pub(crate) const CLASS_STATE_BYTES: usize = 48;
/// Bytes of writer-owned state per page.
pub(crate) const PAGE_STATE_BYTES: usize = 16;
/// Most slots a page may have (page-state fields are 16 bits).
pub(crate) const MAX_SLOTS_PER_PAGE: usize = 65_535;
/// Most pages a shard may have (page links are 16 bits).
pub(crate) const MAX_PAGES_PER_SHARD: u32 = 65_534;
/// Bytes per statistics stripe.
pub(crate) const STRIPE_BYTES: usize = LINE;
/// Entry header bytes (version word + metadata word).
pub(crate) const ENTRY_HEADER_BYTES: usize = 8;
/// Smallest slot size (a header and one word of key).
pub(crate) const MIN_SLOT: usize = 16;
/// Largest page size supported.
pub const MAX_PAGE_SIZE: usize = 4 << 20;
/// Smallest page size supported.
pub const MIN_PAGE_SIZE: usize = 512;
/// Upper bound on the number of size classes (classes for slots up to 4 MiB).
pub(crate) const MAX_CLASSES: usize = 256;
/// Longest key the format can describe (12 bits of length).
pub const MAX_KEY_LEN: usize = 4095;
/// Values shorter than this keep their length in the entry header; longer ones store
/// it in an extra word.
pub(crate) const SHORT_VALUE_LIMIT: usize = 1 << 18;
/// How many buckets past its home a key may be placed.
pub(crate) const MAX_PROBE: u32 = 16;
/// Highest index load (live slots / all slots), in percent: a shard holds at most
/// this many entries for its index, whatever room its arena has.
pub(crate) const INDEX_LOAD_PERCENT: usize = 85;
/// Index load the index is *sized* for, with the arena full of expected-size entries.
/// Below the 85% cap so that a key rarely finds its 16-bucket probe window full (which
/// evicts from its home bucket): at 80% that happens to about 2 in 10⁶ inserts into a
/// 10,000-bucket shard, at 85% to 6 in 10⁵ (a simulation of the probe rule with
/// uniform hashes). Costs 0.3 bytes per entry.
pub(crate) const INDEX_SIZING_PERCENT: usize = 80;
/// Most shards a region may have.
pub const MAX_SHARDS: u32 = 1024;

/// Region flag: every entry carries a checksum of its key, value and metadata.
pub(crate) const FLAG_CHECKSUMS: u32 = 1 << 0;

/// A hash of every structure size and encoding choice this build's format depends on.
/// Two builds can share a region only if their layout hashes agree.
pub(crate) const LAYOUT_HASH: u32 = {
    let parts: [u64; 16] = [
        FORMAT_VERSION as u64,
        WORD_BYTES as u64,
        cfg!(target_endian = "little") as u64,
        HEADER_BYTES as u64,
        BUCKET_BYTES as u64,
        BUCKET_SLOTS as u64,
        SHARD_HEADER_BYTES as u64,
        CLASS_STATE_BYTES as u64,
        PAGE_STATE_BYTES as u64,
        STRIPE_BYTES as u64,
        ENTRY_HEADER_BYTES as u64,
        MIN_SLOT as u64,
        MAX_KEY_LEN as u64,
        SHORT_VALUE_LIMIT as u64,
        MAX_PROBE as u64,
        16, // size classes per doubling
    ];
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < parts.len() {
        let mut b = 0;
        while b < 8 {
            h ^= ((parts[i] >> (b * 8)) & 0xff) as u32;
            h = h.wrapping_mul(0x0100_0193);
            b += 1;
        }
        i += 1;
    }
    h
};

// ---------------------------------------------------------------------------------------
// Size classes: 8-byte steps up to 128 bytes, then 16 classes per doubling (at most
// 6.25% rounding).
// ---------------------------------------------------------------------------------------

/// Size class of an entry of `n` bytes (`n >= 1`).
#[inline]
pub(crate) const fn class_of(n: usize) -> usize {
    if n <= 128 {
        let n = if n < MIN_SLOT { MIN_SLOT } else { n };
        n.div_ceil(8) - 2
    } else {
        let k = (usize::BITS - 1 - (n - 1).leading_zeros()) as usize; // floor(log2(n - 1))
        let step = 1usize << (k - 4);
        let j = (n - (1 << k)).div_ceil(step); // 1..=16
        15 + (k - 7) * 16 + (j - 1)
    }
}

/// Slot size of class `c`.
#[inline]
pub(crate) const fn class_size(c: usize) -> usize {
    if c < 15 {
        (c + 2) * 8
    } else {
        let c = c - 15;
        let k = 7 + c / 16;
        let j = c % 16 + 1;
        (1 << k) + j * (1 << (k - 4))
    }
}

/// Bytes of the reference bitmap at the start of every page: two bits for each slot
/// of a page of `slots` slots, as a power of two from 8 bytes to 1/64 of the page.
/// The bitmap has the same size and place in every page of a region, whatever the
/// page's size class, so a reader holding a stale location can only ever set a
/// reference bit. It is sized for the entries the region expects; pages of smaller
/// entries share bit pairs between slots whose indices are congruent modulo the
/// bitmap's capacity (a coarser clock, never a wrong result).
#[inline]
pub(crate) const fn refmap_bytes_for(page: usize, slots: usize) -> usize {
    let want = (2 * slots).div_ceil(8).next_power_of_two();
    let max = page / 64;
    if want < 8 {
        8
    } else if want > max {
        max
    } else {
        want
    }
}

/// Slots of `slot` bytes that fit in a page of `page` bytes, after a reference
/// bitmap of `refmap` bytes and the state bytes (one per slot, rounded up to 8).
#[inline]
pub(crate) const fn slots_per_page(page: usize, slot: usize, refmap: usize) -> usize {
    let avail = page - refmap;
    let mut n = avail / slot;
    while n > 0 && state_bytes(n) + n * slot > avail {
        n -= 1;
    }
    n
}

/// Bytes of slot states for `n` slots: two bits each, rounded up to 8 bytes.
#[inline]
pub(crate) const fn state_bytes(n: usize) -> usize {
    align8(n.div_ceil(4))
}

#[inline]
pub(crate) const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

#[inline]
const fn align_up(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

/// Number of bits needed to represent values `0..=max`.
#[inline]
const fn bits_for(max: usize) -> u32 {
    usize::BITS - max.leading_zeros()
}

/// Bytes an entry occupies before class rounding.
#[inline]
pub(crate) const fn entry_bytes(
    key_len: usize,
    value_len: usize,
    checksums: bool,
    ttl: bool,
) -> usize {
    ENTRY_HEADER_BYTES
        + if checksums { 8 } else { 0 }
        + if ttl { 8 } else { 0 }
        + if value_len >= SHORT_VALUE_LIMIT { 8 } else { 0 }
        + align8(key_len)
        + value_len
}

/// Number of size classes a region with these maxima has.
const fn nclasses_for(max_key: u32, max_value: u32, flags: u32) -> u32 {
    let checksums = flags & FLAG_CHECKSUMS != 0;
    class_of(entry_bytes(
        max_key as usize,
        max_value as usize,
        checksums,
        true,
    )) as u32
        + 1
}

// ---------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------

/// How to format a region. Every field has a default; [`Cache::format`](crate::Cache::format)
/// derives the rest from the region size.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) shards: Option<u32>,
    pub(crate) max_key_len: usize,
    pub(crate) max_value_len: usize,
    pub(crate) page_size: Option<usize>,
    pub(crate) expected_entry: (usize, usize),
    pub(crate) max_entries: Option<u64>,
    pub(crate) seed: u64,
    pub(crate) checksums: bool,
    pub(crate) stat_stripes: Option<u32>,
    pub(crate) hash: HashKind,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// The defaults: keys up to 250 bytes, values up to 16 KiB, index sized for
    /// entries of a 16-byte key and 240-byte value, no entry checksums, seed 0.
    pub const fn new() -> Self {
        Config {
            shards: None,
            max_key_len: 250,
            max_value_len: 16 << 10,
            page_size: None,
            expected_entry: (16, 240),
            max_entries: None,
            seed: 0,
            checksums: false,
            stat_stripes: None,
            hash: HashKind::Folded,
        }
    }

    /// Number of shards (a power of two, at most [`MAX_SHARDS`]). Each shard has its
    /// own write lock, index and arena. Default: about one per 4 MiB, at most 256.
    pub const fn shards(mut self, n: u32) -> Self {
        self.shards = Some(n);
        self
    }

    /// Longest key accepted (1..=4095 bytes).
    pub const fn max_key_len(mut self, n: usize) -> Self {
        self.max_key_len = n;
        self
    }

    /// Longest value accepted.
    pub const fn max_value_len(mut self, n: usize) -> Self {
        self.max_value_len = n;
        self
    }

    /// Arena page size (a power of two from 512 bytes to 4 MiB). Pages move between
    /// size classes as the workload changes; a larger page allows larger entries but
    /// makes each move evict more entries. Default: 32 KiB, or larger if the maximum
    /// entry needs it, or smaller for small regions.
    pub const fn page_size(mut self, n: usize) -> Self {
        self.page_size = Some(n);
        self
    }

    /// Typical key and value length. Only used to size the index: a workload of much
    /// smaller entries is then limited by index slots rather than by bytes.
    pub const fn expected_entry(mut self, key_len: usize, value_len: usize) -> Self {
        self.expected_entry = (key_len, value_len);
        self
    }

    /// Caps the number of resident entries (spread evenly over the shards), in
    /// addition to the byte budget.
    pub const fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Seed of the key hash. Choose it randomly (processes attaching later read it
    /// from the region).
    pub const fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Store a 32-bit checksum with every entry and verify it on every read, so that a
    /// region damaged by a stray writer yields misses instead of wrong values.
    /// Costs 8 bytes per entry and a few nanoseconds per read.
    pub const fn checksums(mut self, on: bool) -> Self {
        self.checksums = on;
        self
    }

    /// Number of hit/miss counter stripes per shard (a power of two). More stripes
    /// keep concurrent readers from writing the same cache line. Default: 1 for small
    /// regions, up to 8 for large ones.
    pub const fn stat_stripes(mut self, n: u32) -> Self {
        self.stat_stripes = Some(n);
        self
    }

    /// The key hash (only tests have a choice).
    pub const fn hash_kind(mut self, kind: HashKind) -> Self {
        self.hash = kind;
        self
    }

    /// Smallest region size (in bytes, a multiple of 4 KiB) with which this
    /// configuration holds at least `entries` entries of `key_len`-byte keys and
    /// `value_len`-byte values, counting both arena slots and index slots.
    ///
    /// Use it together with [`expected_entry`](Self::expected_entry) set to the same
    /// lengths, so that the index is sized for such entries.
    ///
    /// "Holds" means room in the arena and in the index. Placement in the index is by
    /// hash: a key whose 16-bucket probe window is full evicts an entry of its home
    /// bucket even when the region has room elsewhere. With the index sized for 80%
    /// load that is rare (about 2 in 10⁶ inserts; see `docs/design.md`), but not
    /// impossible, so do not rely on every one of `n` entries staying resident.
    pub fn bytes_for(
        &self,
        entries: u64,
        key_len: usize,
        value_len: usize,
    ) -> Result<usize, Error> {
        // Keys spread over shards by hash, so the fullest shard gets more than its
        // share: ask each shard for its share plus four standard deviations.
        let fits = |total: usize| -> Result<bool, Error> {
            match Layout::plan(self, total) {
                Ok(l) => {
                    let shards = l.p.shards as u64;
                    let share = entries.div_ceil(shards);
                    // (The entry cap is exact per shard; no slack beyond it.)
                    let need = (share + 4 * share.isqrt() + 8).min(l.p.max_live as u64);
                    Ok(l.holds(key_len, value_len) / shards >= need)
                }
                Err(Error::RegionTooSmall { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        };
        let per = entry_bytes(key_len.max(1), value_len, self.checksums, false) as u64 + 64;
        let mut hi = (entries.max(1) * per * 2).max(64 << 10);
        while !fits(usize::try_from(hi).map_err(|_| Error::InvalidConfig("too many entries"))?)? {
            hi = hi
                .checked_mul(2)
                .ok_or(Error::InvalidConfig("too many entries"))?;
        }
        let mut lo = 0u64;
        while hi - lo > 4096 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid as usize)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi.div_ceil(4096) as usize * 4096)
    }
}

// ---------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------

/// Slot geometry of one size class within a page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClassGeom {
    /// Slot size in bytes.
    pub slot: u32,
    /// Slots per page.
    pub nslots: u32,
    /// Offset of slot 0 from the page start (after the bitmap and state bytes).
    pub data_off: u32,
}

/// The primary parameters stored in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    pub total_bytes: u64,
    pub shards: u32,
    pub page_size: u32,
    pub pages: u32,
    pub buckets: u32,
    pub max_key: u32,
    pub max_value: u32,
    pub flags: u32,
    pub stripes: u32,
    pub max_live: u32,
    pub seed: u64,
    pub hash: u32,
    pub refmap: u32,
    /// Size class of the entries the region was sized for.
    pub expected_class: u32,
}

/// Everything a handle needs to find its way around a region; derived from [`Params`].
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub p: Params,
    pub hash: HashKind,
    pub page_shift: u32,
    pub refmap_bytes: usize,
    pub nclasses: u32,
    pub slot_bits: u32,
    pub loc_bits: u32,
    /// Most live entries per shard: the configured cap, or what the index holds at
    /// its planned load, whichever is smaller.
    pub live_cap: u32,

    pub first_shard: usize,
    pub shard_stride: usize,
    pub off_classes: usize,
    pub off_stats: usize,
    pub off_index: usize,
    pub off_page_class: usize,
    pub off_page_state: usize,
    pub off_arena: usize,
    pub geom: [ClassGeom; MAX_CLASSES],
}

impl Layout {
    /// Derives the layout from primary parameters, checking each for sanity. Used both
    /// when formatting and on attach (where the parameters are untrusted).
    pub(crate) fn derive(p: Params) -> Result<Layout, Error> {
        let hash = HashKind::from_raw(p.hash).ok_or(Error::CorruptHeader("unknown hash kind"))?;
        let shards = p.shards;
        if shards == 0 || !shards.is_power_of_two() || shards > MAX_SHARDS {
            return Err(Error::InvalidConfig(
                "shards must be a power of two from 1 to 1024",
            ));
        }
        let page = p.page_size as usize;
        if !page.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page) {
            return Err(Error::InvalidConfig(
                "page size must be a power of two from 512 B to 4 MiB",
            ));
        }
        if p.max_key == 0 || p.max_key as usize > MAX_KEY_LEN {
            return Err(Error::InvalidConfig("max key length must be 1..=4095"));
        }
        if p.flags & !FLAG_CHECKSUMS != 0 {
            return Err(Error::CorruptHeader("unknown flags"));
        }
        if p.stripes == 0 || !p.stripes.is_power_of_two() || p.stripes > 64 {
            return Err(Error::InvalidConfig(
                "stat stripes must be a power of two from 1 to 64",
            ));
        }
        let checksums = p.flags & FLAG_CHECKSUMS != 0;
        let max_entry = entry_bytes(p.max_key as usize, p.max_value as usize, checksums, true);
        let top_class = class_of(max_entry);
        let refmap = p.refmap as usize;
        if p.expected_class >= nclasses_for(p.max_key, p.max_value, p.flags) {
            return Err(Error::InvalidConfig("expected entry class out of range"));
        }
        if !refmap.is_power_of_two() || refmap < 8 || refmap > page / 64 {
            return Err(Error::InvalidConfig("reference bitmap size out of range"));
        }
        if top_class >= MAX_CLASSES || class_size(top_class) + 8 + refmap > page {
            return Err(Error::InvalidConfig(
                "the largest entry (max key + max value + headers) does not fit in one page",
            ));
        }
        let nclasses = top_class as u32 + 1;
        let mut geom = [ClassGeom::default(); MAX_CLASSES];
        for (c, g) in geom.iter_mut().enumerate().take(nclasses as usize) {
            let slot = class_size(c);
            let nslots = slots_per_page(page, slot, refmap).min(MAX_SLOTS_PER_PAGE);
            *g = ClassGeom {
                slot: slot as u32,
                nslots: nslots as u32,
                data_off: (refmap + state_bytes(nslots)) as u32,
            };
        }
        let max_slots = geom[0].nslots as usize;
        let slot_bits = bits_for(max_slots.saturating_sub(1)).max(1);
        // Page numbers 0..pages; the all-ones page number marks a ghost slot.
        if p.pages < 1 {
            return Err(Error::InvalidConfig("a shard needs at least one page"));
        }
        if p.pages > MAX_PAGES_PER_SHARD {
            return Err(Error::InvalidConfig(
                "more than 65,534 pages per shard; use more shards or larger pages",
            ));
        }
        let page_bits = bits_for(p.pages as usize + 1);
        let loc_bits = slot_bits + page_bits;
        if loc_bits > 24 {
            return Err(Error::InvalidConfig(
                "too many slots per shard for 24-bit index locations; use more shards",
            ));
        }
        if p.buckets == 0 || p.buckets > (1 << 28) {
            return Err(Error::InvalidConfig("index bucket count out of range"));
        }

        let stats_bytes = p.stripes as usize * STRIPE_BYTES;
        let off_classes = SHARD_HEADER_BYTES;
        let off_stats = align_up(off_classes + nclasses as usize * CLASS_STATE_BYTES, LINE);
        let off_index = off_stats + stats_bytes;
        let index_bytes = (p.buckets as usize)
            .checked_mul(BUCKET_BYTES)
            .ok_or(Error::InvalidConfig("index too large"))?;
        let off_page_class = off_index + index_bytes;
        let off_page_state = align_up(off_page_class + p.pages as usize * 2, LINE);
        let arena_align = page.min(4096);
        let off_arena = align_up(
            off_page_state + p.pages as usize * PAGE_STATE_BYTES,
            arena_align,
        );
        let shard_bytes = (p.pages as usize)
            .checked_mul(page)
            .and_then(|a| a.checked_add(off_arena))
            .ok_or(Error::InvalidConfig("shard too large"))?;
        let big = p.total_bytes >= (1 << 20);
        let shard_align = if big { 4096 } else { LINE };
        let shard_stride = align_up(shard_bytes, shard_align);
        let first_shard = align_up(HEADER_BYTES, shard_align);
        let needed = (shard_stride as u64)
            .checked_mul(shards as u64)
            .and_then(|n| n.checked_add(first_shard as u64))
            .ok_or(Error::InvalidConfig("region too large"))?;
        if needed > p.total_bytes {
            return Err(Error::RegionTooSmall {
                needed: needed.min(usize::MAX as u64) as usize,
                available: p.total_bytes.min(usize::MAX as u64) as usize,
            });
        }
        Ok(Layout {
            p,
            hash,
            page_shift: page.trailing_zeros(),
            refmap_bytes: refmap,
            nclasses,
            slot_bits,
            loc_bits,
            live_cap: p.max_live.min(
                (p.buckets as u64 * BUCKET_SLOTS as u64 * INDEX_LOAD_PERCENT as u64 / 100)
                    .min(u32::MAX as u64) as u32,
            ),

            first_shard,
            shard_stride,
            off_classes,
            off_stats,
            off_index,
            off_page_class,
            off_page_state,
            off_arena,
            geom,
        })
    }

    /// Chooses primary parameters for a region of `total` bytes.
    pub(crate) fn plan(cfg: &Config, total: usize) -> Result<Layout, Error> {
        if cfg.max_key_len == 0 || cfg.max_key_len > MAX_KEY_LEN {
            return Err(Error::InvalidConfig("max key length must be 1..=4095"));
        }
        let checksums = cfg.checksums;
        let max_entry = entry_bytes(cfg.max_key_len, cfg.max_value_len, checksums, true);
        if max_entry + 8 > MAX_PAGE_SIZE || class_of(max_entry) >= MAX_CLASSES {
            return Err(Error::InvalidConfig(
                "max key + max value exceed the 4 MiB page limit",
            ));
        }
        let mut min_page = (class_size(class_of(max_entry)) + 16)
            .next_power_of_two()
            .max(MIN_PAGE_SIZE);
        while class_size(class_of(max_entry)) + 16 + min_page / 64 > min_page {
            min_page *= 2;
        }
        // Bytes left for shards once the header (and, for large regions, the
        // alignment of the first shard to 4 KiB) is taken off.
        let avail = total.saturating_sub(if total >= (1 << 20) {
            4096
        } else {
            HEADER_BYTES
        });
        let stripes = match cfg.stat_stripes {
            Some(s) => s,
            None if total >= 64 << 20 => 16,
            None if total >= 4 << 20 => 4,
            None => 1,
        };
        let shards = match cfg.shards {
            Some(s) => s,
            None => {
                // About one shard per 4 MiB, each with room for at least 64 of the
                // smallest pages the maximum entry allows; at most 256.
                let by_size = (avail / (4 << 20)).max(1);
                let by_pages = (avail / (64 * min_page)).max(1);
                let s = by_size.min(by_pages).min(256);
                1u32 << (usize::BITS - 1 - s.leading_zeros())
            }
        };
        if shards == 0 || !shards.is_power_of_two() || shards > MAX_SHARDS {
            return Err(Error::InvalidConfig(
                "shards must be a power of two from 1 to 1024",
            ));
        }
        let per_shard_bytes = avail / shards as usize;
        let page = match cfg.page_size {
            Some(p) => {
                if !p.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&p) {
                    return Err(Error::InvalidConfig(
                        "page size must be a power of two from 512 B to 4 MiB",
                    ));
                }
                if p < min_page {
                    return Err(Error::InvalidConfig(
                        "page size too small for the largest entry (max key + max value)",
                    ));
                }
                p
            }
            None => {
                // 32 KiB pages, unless the largest entry needs more, or a shard would
                // have fewer than 64 pages (every size class in use needs pages of
                // its own, and fewer, larger pages make class changes coarser).
                let mut p = min_page.max(32 << 10);
                while p > min_page && per_shard_bytes / p < 64 {
                    p /= 2;
                }
                p
            }
        };
        let (ek, ev) = cfg.expected_entry;
        let expected_class = class_of(entry_bytes(ek.max(1), ev, checksums, false));
        let expected_class = expected_class.min(class_of(max_entry));
        let refmap = refmap_bytes_for(page, slots_per_page(page, class_size(expected_class), 8));
        let per_page_expected = slots_per_page(page, class_size(expected_class), refmap).max(1);
        let max_live = match cfg.max_entries {
            None => u32::MAX,
            Some(n) => {
                let per = n.div_ceil(shards as u64);
                if per == 0 || n == 0 {
                    return Err(Error::InvalidConfig("max_entries must be at least 1"));
                }
                per.min(u32::MAX as u64 - 1) as u32
            }
        };

        let params_for = |pages: u32, buckets: u32| Params {
            total_bytes: total as u64,
            shards,
            page_size: page as u32,
            pages,
            buckets,
            max_key: cfg.max_key_len as u32,
            max_value: cfg.max_value_len as u32,
            flags: if checksums { FLAG_CHECKSUMS } else { 0 },
            stripes,
            max_live,
            seed: cfg.seed,
            hash: cfg.hash.to_raw(),
            refmap: refmap as u32,
            expected_class: expected_class as u32,
        };
        let buckets_for = |pages: u32| -> u32 {
            let mut entries = pages as usize * per_page_expected;
            if max_live != u32::MAX {
                entries = entries.min(max_live as usize);
            }
            let slots = (entries * 100).div_ceil(INDEX_SIZING_PERCENT);
            slots.div_ceil(BUCKET_SLOTS).max(1) as u32
        };
        // Estimate the page count from the per-shard budget, then step down until the
        // exact layout fits.
        let per_shard = avail / shards as usize;
        let index_per_page =
            (per_page_expected * 100).div_ceil(INDEX_SIZING_PERCENT) * BUCKET_BYTES / BUCKET_SLOTS
                + BUCKET_BYTES;
        let fixed = SHARD_HEADER_BYTES
            + (class_of(max_entry) + 1) * CLASS_STATE_BYTES
            + stripes as usize * STRIPE_BYTES;
        let mut pages =
            per_shard.saturating_sub(fixed) / (page + PAGE_STATE_BYTES + 2 + index_per_page);
        pages = pages.min(MAX_PAGES_PER_SHARD as usize);
        if pages == 0 {
            pages = 1;
        }
        loop {
            let p = params_for(pages as u32, buckets_for(pages as u32));
            match Layout::derive(p) {
                Ok(l) => return Ok(l),
                Err(Error::RegionTooSmall { needed, .. }) => {
                    if pages == 1 {
                        return Err(Error::RegionTooSmall {
                            needed,
                            available: total,
                        });
                    }
                    // Step down proportionally to the overshoot, at least one page.
                    let over = needed.saturating_sub(total);
                    let per = (page * shards as usize).max(1);
                    pages = pages.saturating_sub(over.div_ceil(per).max(1)).max(1);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Entries of this shape the layout holds: the smaller of arena slots, index slots
    /// at full load and the entry cap.
    pub(crate) fn holds(&self, key_len: usize, value_len: usize) -> u64 {
        let class = class_of(entry_bytes(
            key_len.max(1),
            value_len,
            self.checksums(),
            false,
        ));
        self.holds_class(class)
    }

    /// Entries of size class `class` the layout holds (see [`holds`](Self::holds)).
    pub(crate) fn holds_class(&self, class: usize) -> u64 {
        if class >= self.nclasses as usize {
            return 0;
        }
        let shards = self.p.shards as u64;
        let arena = self.geom[class].nslots as u64 * self.p.pages as u64 * shards;
        arena.min(self.live_cap as u64 * shards)
    }

    /// Buckets a key may be placed in, counting its home: `MAX_PROBE`, or all the
    /// buckets of a shard that has fewer (so no walk visits a bucket twice).
    #[inline(always)]
    pub(crate) fn probe_window(&self) -> u32 {
        MAX_PROBE.min(self.p.buckets)
    }

    #[inline(always)]
    pub(crate) fn checksums(&self) -> bool {
        self.p.flags & FLAG_CHECKSUMS != 0
    }

    #[inline(always)]
    pub(crate) fn shard_base(&self, shard: usize) -> usize {
        self.first_shard + shard * self.shard_stride
    }

    #[inline(always)]
    pub(crate) fn page_base(&self, shard_base: usize, page: u32) -> usize {
        shard_base + self.off_arena + ((page as usize) << self.page_shift)
    }

    /// Bytes of region the layout uses.
    pub(crate) fn used_bytes(&self) -> usize {
        self.first_shard + self.shard_stride * self.p.shards as usize
    }
}

// ---------------------------------------------------------------------------------------
// Header: sixty-four u32 fields.
// ---------------------------------------------------------------------------------------

/// Field indices (each a `u32` at byte offset `4 * index`).
pub(crate) mod field {
    pub const MAGIC0: usize = 0;
    pub const MAGIC1: usize = 1;
    pub const VERSION: usize = 2;
    pub const LAYOUT_HASH: usize = 3;
    pub const INIT_STATE: usize = 4;
    pub const CHECKSUM: usize = 5;
    pub const TOTAL_LO: usize = 6;
    pub const TOTAL_HI: usize = 7;
    pub const SHARDS: usize = 8;
    pub const PAGE_SIZE: usize = 9;
    pub const PAGES: usize = 10;
    pub const BUCKETS: usize = 11;
    pub const MAX_KEY: usize = 12;
    pub const MAX_VALUE: usize = 13;
    pub const FLAGS: usize = 14;
    pub const STRIPES: usize = 15;
    pub const MAX_LIVE: usize = 16;
    pub const SEED_LO: usize = 17;
    pub const SEED_HI: usize = 18;
    pub const HASH: usize = 19;
    // Derived values, stored so that attach can cross-check them.
    pub const NCLASSES: usize = 20;
    pub const FIRST_SHARD: usize = 21;
    pub const STRIDE_LO: usize = 22;
    pub const STRIDE_HI: usize = 23;
    pub const OFF_INDEX: usize = 24;
    pub const OFF_ARENA: usize = 25;
    pub const LOC_BITS: usize = 26;
    pub const REFMAP: usize = 27;
    pub const EXPECTED_CLASS: usize = 28;
    /// First field covered by the header checksum.
    pub const CHECKED_FROM: usize = 6;
    /// One past the last field covered by the header checksum.
    pub const CHECKED_TO: usize = 64;
}

/// Values of the header's init-state field.
pub(crate) mod init {
    /// Formatting has not finished (or never started).
    pub const FORMATTING: u32 = 0x464D_5430; // "0TMF"
    /// The region is ready for use.
    pub const READY: u32 = 0x5245_4459; // "YDER"
}

fn header_checksum(f: &[u32; 64]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for v in &f[field::CHECKED_FROM..field::CHECKED_TO] {
        for b in v.to_le_bytes() {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

impl Layout {
    fn header_fields(&self, init_state: u32) -> [u32; 64] {
        let p = &self.p;
        let mut f = [0u32; 64];
        f[field::MAGIC0] = MAGIC[0];
        f[field::MAGIC1] = MAGIC[1];
        f[field::VERSION] = FORMAT_VERSION;
        f[field::LAYOUT_HASH] = LAYOUT_HASH;
        f[field::INIT_STATE] = init_state;
        f[field::TOTAL_LO] = p.total_bytes as u32;
        f[field::TOTAL_HI] = (p.total_bytes >> 32) as u32;
        f[field::SHARDS] = p.shards;
        f[field::PAGE_SIZE] = p.page_size;
        f[field::PAGES] = p.pages;
        f[field::BUCKETS] = p.buckets;
        f[field::MAX_KEY] = p.max_key;
        f[field::MAX_VALUE] = p.max_value;
        f[field::FLAGS] = p.flags;
        f[field::STRIPES] = p.stripes;
        f[field::MAX_LIVE] = p.max_live;
        f[field::SEED_LO] = p.seed as u32;
        f[field::SEED_HI] = (p.seed >> 32) as u32;
        f[field::HASH] = p.hash;
        f[field::REFMAP] = p.refmap;
        f[field::EXPECTED_CLASS] = p.expected_class;
        f[field::NCLASSES] = self.nclasses;
        f[field::FIRST_SHARD] = self.first_shard as u32;
        f[field::STRIDE_LO] = self.shard_stride as u32;
        f[field::STRIDE_HI] = ((self.shard_stride as u64) >> 32) as u32;
        f[field::OFF_INDEX] = self.off_index as u32;
        f[field::OFF_ARENA] = self.off_arena as u32;
        f[field::LOC_BITS] = self.loc_bits;
        f[field::CHECKSUM] = header_checksum(&f);
        f
    }

    /// Writes the header with the init state `FORMATTING`.
    pub(crate) fn write_header<R: Region + ?Sized>(&self, r: &R) {
        let f = self.header_fields(init::FORMATTING);
        for (i, v) in f.iter().enumerate() {
            region::store_u32(r, i * 4, *v, Ordering::Relaxed);
        }
    }

    /// Publishes the header: everything written before becomes visible to any thread
    /// that observes `READY` with an acquire load.
    pub(crate) fn publish_header<R: Region + ?Sized>(&self, r: &R) {
        region::store_u32(r, field::INIT_STATE * 4, init::READY, Ordering::Release);
    }

    /// Reads and validates the header of a region, and derives the layout from it.
    pub(crate) fn read_header<R: Region + ?Sized>(r: &R) -> Result<Layout, Error> {
        let available = r.bytes();
        if available < HEADER_BYTES {
            return Err(Error::RegionTooSmall {
                needed: HEADER_BYTES,
                available,
            });
        }
        let mut f = [0u32; 64];
        for (i, v) in f.iter_mut().enumerate() {
            *v = region::load_u32(r, i * 4, Ordering::Acquire);
        }
        if f[field::MAGIC0] != MAGIC[0] || f[field::MAGIC1] != MAGIC[1] {
            return Err(Error::BadMagic);
        }
        if f[field::VERSION] != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: f[field::VERSION],
                supported: FORMAT_VERSION,
            });
        }
        if f[field::LAYOUT_HASH] != LAYOUT_HASH {
            return Err(Error::LayoutMismatch {
                found: f[field::LAYOUT_HASH],
                expected: LAYOUT_HASH,
            });
        }
        if f[field::INIT_STATE] != init::READY {
            return Err(Error::NotReady);
        }
        if f[field::CHECKSUM] != header_checksum(&f) {
            return Err(Error::CorruptHeader("header checksum mismatch"));
        }
        let total = f[field::TOTAL_LO] as u64 | ((f[field::TOTAL_HI] as u64) << 32);
        if total > available as u64 {
            return Err(Error::RegionTooSmall {
                needed: total.min(usize::MAX as u64) as usize,
                available,
            });
        }
        let p = Params {
            total_bytes: total,
            shards: f[field::SHARDS],
            page_size: f[field::PAGE_SIZE],
            pages: f[field::PAGES],
            buckets: f[field::BUCKETS],
            max_key: f[field::MAX_KEY],
            max_value: f[field::MAX_VALUE],
            flags: f[field::FLAGS],
            stripes: f[field::STRIPES],
            max_live: f[field::MAX_LIVE],
            seed: f[field::SEED_LO] as u64 | ((f[field::SEED_HI] as u64) << 32),
            hash: f[field::HASH],
            refmap: f[field::REFMAP],
            expected_class: f[field::EXPECTED_CLASS],
        };
        if p.max_live == 0 {
            return Err(Error::CorruptHeader("max_live is zero"));
        }
        let l = match Layout::derive(p) {
            Ok(l) => l,
            Err(Error::InvalidConfig(what)) => return Err(Error::CorruptHeader(what)),
            Err(Error::RegionTooSmall { .. }) => {
                return Err(Error::CorruptHeader(
                    "layout does not fit in the recorded size",
                ));
            }
            Err(e) => return Err(e),
        };
        let expect = l.header_fields(init::READY);
        for i in field::NCLASSES..=field::LOC_BITS {
            if f[i] != expect[i] {
                return Err(Error::CorruptHeader(
                    "derived layout fields disagree with parameters",
                ));
            }
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_and_bound_waste() {
        let mut prev = 0;
        for c in 0..MAX_CLASSES {
            let s = class_size(c);
            assert!(s > prev, "class sizes increase");
            assert_eq!(s % 8, 0);
            assert_eq!(class_of(s), c, "class_of(class_size({c}))");
            assert_eq!(
                class_of(prev + 1),
                c,
                "the smallest size that maps to class {c}"
            );
            // At most 6.25% rounding above 128 bytes.
            if prev >= 128 {
                assert!(
                    (s - (prev + 1)) * 16 <= prev + 1,
                    "class {c} wastes too much"
                );
            }
            prev = s;
        }
        assert!(class_size(MAX_CLASSES - 1) >= MAX_PAGE_SIZE - 8);
        assert_eq!(class_of(1), 0);
        assert_eq!(class_size(class_of(272)), 272);
    }

    #[test]
    fn slots_per_page_fills_pages() {
        assert_eq!(refmap_bytes_for(32 << 10, 120), 32);
        assert_eq!(refmap_bytes_for(32 << 10, 1300), 512);
        assert_eq!(refmap_bytes_for(512, 20), 8);
        assert_eq!(slots_per_page(32 << 10, 272, 32), 120);
        for slot in [16, 24, 272, 1000, 3000] {
            let n = slots_per_page(4096, slot, 64);
            let avail = 4096 - 64;
            assert!(state_bytes(n) + n * slot <= avail);
            assert!(state_bytes(n + 1) + (n + 1) * slot > avail);
        }
    }

    #[test]
    fn plan_fits_and_rederives() {
        for total in [16 << 10, 100_000, 1 << 20, 64 << 20] {
            let l = Layout::plan(&Config::new().max_value_len(1000), total).unwrap();
            assert!(l.used_bytes() <= total, "{total}");
            let again = Layout::derive(l.p).unwrap();
            assert_eq!(again.off_arena, l.off_arena);
        }
    }

    #[test]
    fn plan_rejects_impossible_configs() {
        assert!(matches!(
            Layout::plan(&Config::new(), 1024),
            Err(Error::RegionTooSmall { .. })
        ));
        assert!(matches!(
            Layout::plan(&Config::new().max_key_len(0), 1 << 20),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            Layout::plan(&Config::new().shards(3), 1 << 20),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            Layout::plan(&Config::new().max_value_len(8 << 20), 64 << 20),
            Err(Error::InvalidConfig(_))
        ));
    }
}
