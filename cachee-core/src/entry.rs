//! Entries: how one key/value pair is laid out in a slot, written and read.
//!
//! # Layout
//!
//! ```text
//! offset 0   version: u32   even = stable, odd = being written; never reset, so a
//!                           reused slot is always told apart from its last occupant
//!        4   meta: u32      0 = free slot; else bits 0..18 value length (short values),
//!                           18..30 key length, 30 HAS_EXPIRY, 31 LONG_VALUE
//!        8   [checksum: u64]     if the region has FLAG_CHECKSUMS
//!            [expiry: u64]       if HAS_EXPIRY (absolute, in the clock's ticks)
//!            [value length: u64] if LONG_VALUE
//!            key, zero-padded to a multiple of 8 bytes
//!            value, zero-padded to a whole word
//! ```
//! On 64-bit words the version and meta share one word (version in the low half).
//!
//! # Protocol (seqlock, data-race-free)
//!
//! A writer (holding the shard lock) stores an odd version, issues a release fence,
//! writes the body with relaxed stores, and publishes the next even version with a
//! release store. A reader loads the version with acquire, copies with relaxed loads,
//! issues an acquire fence and reloads the version: the copy is valid only if both
//! loads saw the same even version. Every access is atomic, so torn copies are
//! detected and discarded rather than being undefined behaviour.

use crate::layout::{ENTRY_HEADER_BYTES, SHORT_VALUE_LIMIT, align8};
use crate::region::{self, Region};
use crate::sync::{Ordering, WORD_BYTES, Word, fence, mutant, mutants};

/// The metadata word of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta(pub u32);

impl Meta {
    const VLEN_MASK: u32 = (1 << 18) - 1;
    const KLEN_SHIFT: u32 = 18;
    const KLEN_MASK: u32 = 0xfff;
    pub const HAS_EXPIRY: u32 = 1 << 30;
    pub const LONG: u32 = 1 << 31;

    pub(crate) fn new(klen: usize, vlen: usize, expiry: bool) -> Meta {
        debug_assert!(klen >= 1 && klen <= Self::KLEN_MASK as usize);
        let long = vlen >= SHORT_VALUE_LIMIT;
        let mut m = ((klen as u32) << Self::KLEN_SHIFT) | if long { 0 } else { vlen as u32 };
        if expiry {
            m |= Self::HAS_EXPIRY;
        }
        if long {
            m |= Self::LONG;
        }
        Meta(m)
    }

    #[inline(always)]
    pub(crate) fn is_free(self) -> bool {
        self.0 == 0
    }

    #[inline(always)]
    pub(crate) fn klen(self) -> usize {
        ((self.0 >> Self::KLEN_SHIFT) & Self::KLEN_MASK) as usize
    }

    #[inline(always)]
    pub(crate) fn has_expiry(self) -> bool {
        self.0 & Self::HAS_EXPIRY != 0
    }

    #[inline(always)]
    fn is_long(self) -> bool {
        self.0 & Self::LONG != 0
    }
}

/// Where the parts of an entry are, decoded from its meta word (and, for long values,
/// its length word). Already checked to lie inside the slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub checksum_off: Option<usize>,
    pub expiry_off: Option<usize>,
    pub key_off: usize,
    pub klen: usize,
    pub value_off: usize,
    pub vlen: usize,
}

/// Decodes the shape of the entry at `e` in a slot of `slot` bytes; `None` if the
/// slot is free or the metadata does not fit in the slot (a torn read or damage).
#[inline(always)]
pub(crate) fn shape<R: Region + ?Sized>(
    r: &R,
    e: usize,
    slot: usize,
    meta: Meta,
    checksums: bool,
) -> Option<Shape> {
    let klen = meta.klen();
    if klen == 0 {
        return None;
    }
    let mut o = e + ENTRY_HEADER_BYTES;
    let checksum_off = if checksums {
        o += 8;
        Some(o - 8)
    } else {
        None
    };
    let expiry_off = if meta.has_expiry() {
        o += 8;
        Some(o - 8)
    } else {
        None
    };
    let vlen = if meta.is_long() {
        if o + 8 > e + slot {
            return None;
        }
        let v = region::load_u64(r, o, Ordering::Relaxed);
        o += 8;
        usize::try_from(v).ok()?
    } else {
        (meta.0 & Meta::VLEN_MASK) as usize
    };
    let key_off = o;
    let value_off = key_off + align8(klen);
    if vlen > slot || value_off + vlen > e + slot {
        return None;
    }
    Some(Shape {
        checksum_off,
        expiry_off,
        key_off,
        klen,
        value_off,
        vlen,
    })
}

// ---------------------------------------------------------------------------------------
// Header words
// ---------------------------------------------------------------------------------------

#[inline(always)]
pub(crate) fn load_header<R: Region + ?Sized>(r: &R, e: usize, o: Ordering) -> (u32, Meta) {
    if WORD_BYTES == 8 {
        let w = region::load(r, e, o) as u64;
        (w as u32, Meta((w >> 32) as u32))
    } else {
        let v = region::load(r, e, o) as u32;
        let m = region::load(r, e + 4, Ordering::Relaxed) as u32;
        (v, Meta(m))
    }
}

#[inline(always)]
pub(crate) fn load_version<R: Region + ?Sized>(r: &R, e: usize, o: Ordering) -> u32 {
    region::load(r, e, o) as u32
}

#[inline(always)]
fn store_header<R: Region + ?Sized>(r: &R, e: usize, version: u32, meta: Meta, o: Ordering) {
    if WORD_BYTES == 8 {
        region::store(r, e, (version as u64 | ((meta.0 as u64) << 32)) as Word, o);
    } else {
        region::store(r, e + 4, meta.0 as Word, Ordering::Relaxed);
        region::store(r, e, version as Word, o);
    }
}

/// Makes the entry's version odd before its body changes. Returns the odd version.
#[inline]
pub(crate) fn begin_write<R: Region + ?Sized>(r: &R, e: usize) -> u32 {
    let (v, m) = load_header(r, e, Ordering::Relaxed);
    let odd = v | 1;
    if !mutant(mutants::SKIP_ODD_VERSION) {
        store_header(r, e, odd, m, Ordering::Relaxed);
        fence(Ordering::Release);
    }
    odd
}

/// Publishes the entry: the next even version and its new meta word.
#[inline]
pub(crate) fn end_write<R: Region + ?Sized>(r: &R, e: usize, odd: u32, meta: Meta) {
    let o = if mutant(mutants::RELAXED_PUBLISH) {
        Ordering::Relaxed
    } else {
        Ordering::Release
    };
    store_header(r, e, odd.wrapping_add(1), meta, o);
}

/// Marks the slot free: a new even version and meta 0, so that any reader still
/// holding this location fails validation.
#[inline]
pub(crate) fn free_entry<R: Region + ?Sized>(r: &R, e: usize) {
    let (v, _) = load_header(r, e, Ordering::Relaxed);
    let next = if mutant(mutants::SKIP_FREE_BUMP) {
        v
    } else {
        (v | 1).wrapping_add(1)
    };
    store_header(r, e, next, Meta(0), Ordering::Release);
    // The caller goes on to write the free-list link into the first body word with a
    // relaxed store. A reader that loaded the header before this free and then reads
    // that word must see the new version when it validates: this fence orders the
    // version store before every later store, as in `begin_write` (found by the loom
    // model `reuse/remove_get`; invisible on x86, real on ARM and POWER).
    fence(Ordering::Release);
}

// ---------------------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------------------

/// Something that consumes the words of an entry as they are copied.
pub(crate) trait Acc {
    fn add(&mut self, w: Word);
}

/// Checksums switched off: compiles to nothing.
pub(crate) struct NoSum;
impl Acc for NoSum {
    #[inline(always)]
    fn add(&mut self, _w: Word) {}
}

/// A Fletcher-style sum over words (two running sums), finished with a multiply fold.
/// Any single flipped bit changes the first sum; swapped words change the second.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sum {
    a: u64,
    b: u64,
}

impl Acc for Sum {
    #[inline(always)]
    fn add(&mut self, w: Word) {
        self.a = self.a.wrapping_add(crate::sync::widen(w));
        self.b = self.b.wrapping_add(self.a);
    }
}

impl Sum {
    pub(crate) fn finish(self) -> u32 {
        let p =
            ((self.a ^ 0x243f_6a88_85a3_08d3) as u128) * ((self.b ^ 0x1319_8a2e_0370_7344) as u128);
        ((p as u64) ^ ((p >> 64) as u64)) as u32
    }
}

/// Packs up to one word of bytes (zero-padded) without a library call.
#[inline(always)]
fn pack_tail(bytes: &[u8]) -> Word {
    let mut w = [0u8; WORD_BYTES];
    for (d, s) in w.iter_mut().zip(bytes) {
        *d = *s;
    }
    Word::from_ne_bytes(w)
}

/// Unpacks the first `out.len()` (< one word) bytes of `w` without a library call.
#[inline(always)]
fn unpack_tail(w: Word, out: &mut [u8]) {
    for (d, s) in out.iter_mut().zip(w.to_ne_bytes()) {
        *d = s;
    }
}

#[inline(always)]
fn write_bytes_acc<R: Region + ?Sized, A: Acc>(r: &R, off: usize, data: &[u8], acc: &mut A) {
    let mut i = off / WORD_BYTES;
    // Four words per round (the loop overhead otherwise costs as much as the copy).
    let mut quads = data.chunks_exact(4 * WORD_BYTES);
    for q in &mut quads {
        for c in q.chunks_exact(WORD_BYTES) {
            let w = Word::from_ne_bytes(c.try_into().unwrap_or([0; WORD_BYTES]));
            acc.add(w);
            region::store_idx(r, i, w, Ordering::Relaxed);
            i += 1;
        }
    }
    let mut chunks = quads.remainder().chunks_exact(WORD_BYTES);
    for c in &mut chunks {
        let w = Word::from_ne_bytes(c.try_into().unwrap_or([0; WORD_BYTES]));
        acc.add(w);
        region::store_idx(r, i, w, Ordering::Relaxed);
        i += 1;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let w = pack_tail(rest);
        acc.add(w);
        region::store_idx(r, i, w, Ordering::Relaxed);
    }
}

/// Copies `out.len()` bytes from `off`, feeding every word read (including the
/// zero padding of the last one) to `acc`.
#[inline(always)]
pub(crate) fn read_bytes_acc<R: Region + ?Sized, A: Acc>(
    r: &R,
    off: usize,
    out: &mut [u8],
    acc: &mut A,
) {
    let mut i = off / WORD_BYTES;
    // Four words per round, as in `write_bytes_acc`.
    let mut quads = out.chunks_exact_mut(4 * WORD_BYTES);
    for q in &mut quads {
        for c in q.chunks_exact_mut(WORD_BYTES) {
            let w = region::load_idx(r, i, Ordering::Relaxed);
            acc.add(w);
            c.copy_from_slice(&w.to_ne_bytes());
            i += 1;
        }
    }
    let mut chunks = quads.into_remainder().chunks_exact_mut(WORD_BYTES);
    for c in &mut chunks {
        let w = region::load_idx(r, i, Ordering::Relaxed);
        acc.add(w);
        c.copy_from_slice(&w.to_ne_bytes());
        i += 1;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let w = region::load_idx(r, i, Ordering::Relaxed);
        acc.add(w);
        unpack_tail(w, rest);
    }
}

/// Feeds `len` bytes' worth of words at `off` to `acc` without copying them.
#[inline]
fn sum_bytes<R: Region + ?Sized, A: Acc>(r: &R, off: usize, len: usize, acc: &mut A) {
    let base = off / WORD_BYTES;
    for i in base..base + len.div_ceil(WORD_BYTES) {
        acc.add(region::load_idx(r, i, Ordering::Relaxed));
    }
}

/// Compares the stored key at `off` with `key`, feeding the words read to `acc`.
#[inline(always)]
fn key_equal_acc<R: Region + ?Sized, A: Acc>(r: &R, off: usize, key: &[u8], acc: &mut A) -> bool {
    let mut chunks = key.chunks_exact(WORD_BYTES);
    let mut i = off / WORD_BYTES;
    for c in &mut chunks {
        let stored = region::load_idx(r, i, Ordering::Relaxed);
        acc.add(stored);
        if stored != Word::from_ne_bytes(c.try_into().unwrap_or([0; WORD_BYTES])) {
            return false;
        }
        i += 1;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let stored = region::load_idx(r, i, Ordering::Relaxed);
        acc.add(stored);
        if stored != pack_tail(rest) {
            return false;
        }
    }
    true
}

/// Feeds the header-adjacent words covered by the checksum: meta, expiry, long length.
#[inline(always)]
fn sum_prefix<R: Region + ?Sized, A: Acc>(r: &R, meta: Meta, s: &Shape, acc: &mut A) {
    acc.add(meta.0 as Word);
    if let Some(x) = s.expiry_off {
        acc.add(region::load_u64(r, x, Ordering::Relaxed) as Word);
    }
    if meta.is_long() {
        acc.add(s.vlen as Word);
    }
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// Writes a whole entry body into the slot at `e` (whose version the caller has made
/// odd) and returns the meta word to publish with [`end_write`].
pub(crate) fn write_body<R: Region + ?Sized>(
    r: &R,
    e: usize,
    key: &[u8],
    value: &[u8],
    expiry: Option<u64>,
    checksums: bool,
) -> Meta {
    let meta = Meta::new(key.len(), value.len(), expiry.is_some());
    let mut o = e + ENTRY_HEADER_BYTES;
    let checksum_off = if checksums {
        o += 8;
        Some(o - 8)
    } else {
        None
    };
    if let Some(x) = expiry {
        region::store_u64(r, o, x, Ordering::Relaxed);
        o += 8;
    }
    if meta.is_long() {
        region::store_u64(r, o, value.len() as u64, Ordering::Relaxed);
        o += 8;
    }
    let value_off = o + align8(key.len());
    // On 32-bit words the key's 8-byte padding can take a whole word the key bytes do
    // not reach: zero it, so the stored key reads back exactly as it hashes.
    let mut pad = o + key.len().div_ceil(WORD_BYTES) * WORD_BYTES;
    while pad < value_off {
        region::store(r, pad, 0, Ordering::Relaxed);
        pad += WORD_BYTES;
    }
    match checksum_off {
        None => {
            write_bytes_acc(r, o, key, &mut NoSum);
            write_bytes_acc(r, value_off, value, &mut NoSum);
        }
        Some(c) => {
            let mut sum = Sum::default();
            sum.add(meta.0 as Word);
            if let Some(x) = expiry {
                sum.add(x as Word);
            }
            if meta.is_long() {
                sum.add(value.len() as Word);
            }
            write_bytes_acc(r, o, key, &mut sum);
            write_bytes_acc(r, value_off, value, &mut sum);
            region::store_u64(r, c, sum.finish() as u64, Ordering::Relaxed);
        }
    }
    meta
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// What an optimistic read of one slot found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// A validated copy of the entry.
    Hit {
        version: u32,
        klen: usize,
        vlen: usize,
        expiry: Option<u64>,
    },
    /// A caller's buffer is too small for the (validated) entry's key or value.
    TooSmall {
        klen: usize,
        vlen: usize,
        expiry: Option<u64>,
    },
    /// The slot holds another key (or is free).
    Other,
    /// The entry changed while it was read (or a writer is in progress): retry.
    Torn,
    /// The entry is stable but does not check out (checksum mismatch or impossible
    /// metadata): treat as a miss.
    Corrupt,
}

/// How a read treats the stored key.
pub(crate) enum KeyArg<'a> {
    /// Only an entry with this key counts.
    Match(&'a [u8]),
    /// Any entry counts; its key is copied here (if it fits: else `TooSmall`).
    Copy(&'a mut [u8]),
}

/// Reads the entry at `e` (in a slot of `slot` bytes), copying the value into `out`
/// when given and large enough.
#[inline(always)]
pub(crate) fn read<R: Region + ?Sized>(
    r: &R,
    e: usize,
    slot: usize,
    key: KeyArg<'_>,
    checksums: bool,
    out: Option<&mut [u8]>,
) -> Read {
    if checksums {
        read_with(r, e, slot, key, true, out, &mut Sum::default())
    } else {
        read_with(r, e, slot, key, false, out, &mut NoSum)
    }
}

/// The common case of a keyed read, straight-line: no expiry word, a short value, a
/// buffer that fits; with `CHECKSUMS`, the checksum is verified while copying.
/// Returns `None` when the entry is not of that shape (the caller then takes the
/// general path).
#[inline(always)]
pub(crate) fn read_plain<R: Region + ?Sized, const CHECKSUMS: bool>(
    r: &R,
    e: usize,
    slot: usize,
    key: &[u8],
    out: &mut [u8],
) -> Option<Read> {
    let (v1, meta) = load_header(r, e, Ordering::Acquire);
    if meta.0 & (Meta::HAS_EXPIRY | Meta::LONG) != 0 || v1 & 1 != 0 {
        return None;
    }
    if meta.klen() != key.len() {
        return Some(Read::Other);
    }
    let vlen = (meta.0 & Meta::VLEN_MASK) as usize;
    let key_off = e + ENTRY_HEADER_BYTES + if CHECKSUMS { 8 } else { 0 };
    let value_off = key_off + align8(key.len());
    if value_off + vlen > e + slot || vlen > out.len() {
        return None;
    }
    if CHECKSUMS {
        let mut sum = Sum::default();
        sum.add(meta.0 as Word);
        if !key_equal_acc(r, key_off, key, &mut sum) {
            return Some(Read::Other);
        }
        read_bytes_acc(r, value_off, &mut out[..vlen], &mut sum);
        let stored = region::load_u64(r, e + ENTRY_HEADER_BYTES, Ordering::Relaxed);
        if !validate(r, e, v1) {
            return Some(Read::Torn);
        }
        if stored != sum.finish() as u64 {
            return Some(Read::Corrupt);
        }
    } else {
        if !key_equal_acc(r, key_off, key, &mut NoSum) {
            return Some(Read::Other);
        }
        read_bytes_acc(r, value_off, &mut out[..vlen], &mut NoSum);
        if !validate(r, e, v1) {
            return Some(Read::Torn);
        }
    }
    Some(Read::Hit {
        version: v1,
        klen: key.len(),
        vlen,
        expiry: None,
    })
}

#[inline(always)]
fn read_with<R: Region + ?Sized, A: Acc + AccFinish>(
    r: &R,
    e: usize,
    slot: usize,
    key: KeyArg<'_>,
    checksums: bool,
    out: Option<&mut [u8]>,
    acc: &mut A,
) -> Read {
    let (v1, meta) = load_header(r, e, Ordering::Acquire);
    if v1 & 1 != 0 {
        return Read::Torn;
    }
    if meta.is_free() {
        return Read::Other;
    }
    if let KeyArg::Match(k) = &key {
        if meta.klen() != k.len() {
            return Read::Other;
        }
    }
    let Some(s) = shape(r, e, slot, meta, checksums) else {
        return if validate(r, e, v1) {
            Read::Corrupt
        } else {
            Read::Torn
        };
    };
    sum_prefix(r, meta, &s, acc);
    let mut key_fits = true;
    match key {
        KeyArg::Match(k) => {
            if !key_equal_acc(r, s.key_off, k, acc) {
                return Read::Other;
            }
        }
        KeyArg::Copy(buf) => {
            if buf.len() >= s.klen {
                read_bytes_acc(r, s.key_off, &mut buf[..s.klen], acc);
            } else {
                key_fits = false;
                sum_bytes(r, s.key_off, s.klen, acc);
            }
        }
    }
    let expiry = s
        .expiry_off
        .map(|x| region::load_u64(r, x, Ordering::Relaxed));
    let stored_sum = s
        .checksum_off
        .map(|c| region::load_u64(r, c, Ordering::Relaxed));
    let fits = match out {
        Some(buf) if buf.len() >= s.vlen => {
            read_bytes_acc(r, s.value_off, &mut buf[..s.vlen], acc);
            true
        }
        Some(_) => {
            if checksums {
                sum_bytes(r, s.value_off, s.vlen, acc);
            }
            false
        }
        None => {
            if checksums {
                sum_bytes(r, s.value_off, s.vlen, acc);
            }
            true
        }
    };
    if !validate(r, e, v1) {
        return Read::Torn;
    }
    if let Some(stored) = stored_sum {
        if stored != acc.finish() as u64 {
            return Read::Corrupt;
        }
    }
    if fits && key_fits {
        Read::Hit {
            version: v1,
            klen: s.klen,
            vlen: s.vlen,
            expiry,
        }
    } else {
        Read::TooSmall {
            klen: s.klen,
            vlen: s.vlen,
            expiry,
        }
    }
}

/// The closing half of a seqlock read: true if the entry did not change since its
/// version `v1` was loaded.
#[inline(always)]
pub(crate) fn validate<R: Region + ?Sized>(r: &R, e: usize, v1: u32) -> bool {
    if mutant(mutants::SKIP_READ_VALIDATION) {
        return true;
    }
    fence(Ordering::Acquire);
    load_version(r, e, Ordering::Relaxed) == v1
}

/// Finishing a checksum accumulator (the no-op one finishes to 0 and is never compared).
pub(crate) trait AccFinish {
    fn finish(&self) -> u32;
}
impl AccFinish for NoSum {
    #[inline(always)]
    fn finish(&self) -> u32 {
        0
    }
}
impl AccFinish for Sum {
    #[inline(always)]
    fn finish(&self) -> u32 {
        Sum::finish(*self)
    }
}

/// Recomputes the checksum of a stable entry (lock holder, or `check`).
pub(crate) fn checksum_ok<R: Region + ?Sized>(r: &R, meta: Meta, s: &Shape) -> bool {
    let Some(c) = s.checksum_off else { return true };
    let mut sum = Sum::default();
    sum_prefix(r, meta, s, &mut sum);
    sum_bytes(r, s.key_off, s.klen, &mut sum);
    sum_bytes(r, s.value_off, s.vlen, &mut sum);
    region::load_u64(r, c, Ordering::Relaxed) == sum.finish() as u64
}

/// Hashes the key stored at `s` (lock holder), reading it eight bytes at a time.
pub(crate) fn stored_key_hash<R: Region + ?Sized>(
    r: &R,
    s: &Shape,
    kind: crate::hash::HashKind,
    seed: u64,
) -> u64 {
    match kind {
        crate::hash::HashKind::Folded => {
            let mut h = crate::hash::KeyHasher::new(seed);
            let mut o = s.key_off;
            let end = s.key_off + align8(s.klen);
            while o < end {
                let mut b = [0u8; 8];
                region::read_bytes(r, o, &mut b);
                h.chunk(u64::from_le_bytes(b));
                o += 8;
            }
            h.finish(s.klen)
        }
        #[cfg(any(test, feature = "testing"))]
        crate::hash::HashKind::Colliding => {
            let mut b = [0u8; 8];
            region::read_bytes(r, s.key_off, &mut b);
            crate::hash::colliding(b[0])
        }
    }
}

/// Compares the stored key at `s` with `key` (lock holder).
pub(crate) fn key_is<R: Region + ?Sized>(r: &R, s: &Shape, key: &[u8]) -> bool {
    s.klen == key.len() && key_equal_acc(r, s.key_off, key, &mut NoSum)
}
