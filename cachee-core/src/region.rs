//! Word-granular access to the memory a cache lives in.
//!
//! A cache never forms a reference to its memory as bytes: every access is an atomic
//! load, store or read-modify-write of one [`Word`](crate::Word). That makes the
//! optimistic (seqlock) readers data-race-free by construction, lets miri check the
//! real code, and lets loom substitute model-checked atomics through the same
//! [`Region`] trait.
//!
//! This module owns the trait, its implementations (borrowed bytes, owned atomic
//! words) and the small typed helpers the rest of the crate uses to read `u32` fields
//! and bytes out of words. It knows nothing about the cache format.

use crate::sync::{AtomicWord, Ordering, WORD_BYTES, Word};

/// Memory that a cache can live in: an array of atomic words.
///
/// # Safety
///
/// An implementor promises that for every `i < self.words()`,
/// [`word_unchecked(i)`](Region::word_unchecked) returns a reference to an atomic word
/// that (1) stays valid for as long as the borrow of `self`, (2) is distinct from the
/// word returned for any other index, and (3) is never accessed non-atomically while the
/// region is in use (other processes mapping the same memory must follow the same rule).
pub unsafe trait Region {
    /// Number of words in the region.
    fn words(&self) -> usize;

    /// The word at index `i`, without a bounds check.
    ///
    /// # Safety
    ///
    /// `i < self.words()`.
    unsafe fn word_unchecked(&self, i: usize) -> &AtomicWord;

    /// The word at index `i`, or `None` if `i` is out of bounds.
    #[inline]
    fn word(&self, i: usize) -> Option<&AtomicWord> {
        if i < self.words() {
            // SAFETY: `i < self.words()` was checked just above.
            Some(unsafe { self.word_unchecked(i) })
        } else {
            None
        }
    }

    /// Region size in bytes.
    #[inline]
    fn bytes(&self) -> usize {
        self.words() * WORD_BYTES
    }

    /// Hints that the `bytes` bytes starting at word `i` will be read soon. A hint
    /// only: it never faults and has no effect on correctness. Default: nothing.
    #[inline(always)]
    fn prefetch(&self, i: usize, bytes: usize) {
        let _ = (i, bytes);
    }
}

/// Issues cache-line prefetches for `bytes` bytes from `p`. Prefetching is not a memory
/// access: it cannot fault and is not part of the memory model.
#[inline(always)]
#[allow(unused_variables)]
fn prefetch_lines(p: *const AtomicWord, bytes: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(cachee_loom)))]
    {
        let p = p.cast::<i8>();
        let mut off = 0;
        while off < bytes {
            // SAFETY: `_mm_prefetch` only hints the cache; it never dereferences in the
            // language sense and cannot fault, whatever the address.
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    p.wrapping_add(off),
                )
            };
            off += 64;
        }
    }
}

// SAFETY: a slice of atomic words satisfies every clause: indices below `len` are in
// bounds, distinct indices are distinct elements, and the elements are atomics, which
// safe code can only access atomically.
unsafe impl Region for [AtomicWord] {
    #[inline]
    fn words(&self) -> usize {
        self.len()
    }

    #[inline]
    unsafe fn word_unchecked(&self, i: usize) -> &AtomicWord {
        debug_assert!(i < self.len());
        // SAFETY: the caller guarantees `i < self.len()`.
        unsafe { self.get_unchecked(i) }
    }

    #[inline(always)]
    fn prefetch(&self, i: usize, bytes: usize) {
        prefetch_lines(self.as_ptr().wrapping_add(i), bytes)
    }
}

// SAFETY: forwards to an implementation that upholds the contract; the reference keeps
// the underlying region borrowed for as long as it is used.
unsafe impl<R: Region + ?Sized> Region for &R {
    #[inline]
    fn words(&self) -> usize {
        (**self).words()
    }

    #[inline]
    unsafe fn word_unchecked(&self, i: usize) -> &AtomicWord {
        // SAFETY: same precondition as the forwarded call.
        unsafe { (**self).word_unchecked(i) }
    }

    #[inline(always)]
    fn prefetch(&self, i: usize, bytes: usize) {
        (**self).prefetch(i, bytes)
    }
}

/// A region borrowed from a slice of atomic words (a `static` array, a `Vec`).
///
/// It is what `&[AtomicWord]` is, but stored as a pointer and a length, so that passing
/// the region around never re-borrows the whole slice: each access borrows exactly one
/// word. (Under miri, re-borrowing a large slice on every call makes each access cost
/// as much as the whole region.)
#[derive(Clone, Copy, Debug)]
pub struct Words<'a> {
    base: core::ptr::NonNull<AtomicWord>,
    len: usize,
    _borrow: core::marker::PhantomData<&'a [AtomicWord]>,
}

// SAFETY: the words are atomics, which may be shared and sent between threads.
unsafe impl Send for Words<'_> {}
// SAFETY: as above.
unsafe impl Sync for Words<'_> {}

impl<'a> From<&'a [AtomicWord]> for Words<'a> {
    fn from(words: &'a [AtomicWord]) -> Self {
        let base = core::ptr::NonNull::from(words).cast::<AtomicWord>();
        Words {
            base,
            len: words.len(),
            _borrow: core::marker::PhantomData,
        }
    }
}

// SAFETY: `base`/`len` come from a `&'a [AtomicWord]` that stays borrowed for 'a, so
// every index below `len` names a distinct atomic word valid for 'a, and atomics are
// only ever accessed atomically.
unsafe impl Region for Words<'_> {
    #[inline]
    fn words(&self) -> usize {
        self.len
    }

    #[inline]
    unsafe fn word_unchecked(&self, i: usize) -> &AtomicWord {
        debug_assert!(i < self.len);
        // SAFETY: `i < self.len` (caller), and the pointer came from a slice borrowed
        // for the lifetime of `self`.
        unsafe { &*self.base.as_ptr().add(i) }
    }

    #[inline(always)]
    fn prefetch(&self, i: usize, bytes: usize) {
        prefetch_lines(self.base.as_ptr().wrapping_add(i), bytes)
    }
}

#[cfg(any(cachee_loom, feature = "alloc"))]
extern crate alloc;

// SAFETY: as for slices: the vector's elements are distinct atomic words that live as
// long as the vector.
#[cfg(any(cachee_loom, feature = "alloc"))]
unsafe impl Region for alloc::vec::Vec<AtomicWord> {
    #[inline]
    fn words(&self) -> usize {
        self.len()
    }

    #[inline]
    unsafe fn word_unchecked(&self, i: usize) -> &AtomicWord {
        debug_assert!(i < self.len());
        // SAFETY: the caller guarantees `i < self.len()`.
        unsafe { self.get_unchecked(i) }
    }
}

/// A region borrowed from a byte buffer (a `static` array, a heap buffer, a mapped file).
///
/// The buffer must be aligned to [`WORD_BYTES`](crate::WORD_BYTES); a trailing
/// partial word is ignored. While the region lives, the bytes are only ever accessed
/// through atomic words.
#[cfg(not(cachee_loom))]
#[derive(Debug)]
pub struct ByteRegion<'a> {
    base: core::ptr::NonNull<AtomicWord>,
    words: usize,
    _borrow: core::marker::PhantomData<&'a mut [u8]>,
}

// SAFETY: the region is only accessed through atomic words, which may be shared and
// sent between threads freely.
#[cfg(not(cachee_loom))]
unsafe impl Send for ByteRegion<'_> {}
// SAFETY: as above: every access is atomic.
#[cfg(not(cachee_loom))]
unsafe impl Sync for ByteRegion<'_> {}

#[cfg(not(cachee_loom))]
impl<'a> ByteRegion<'a> {
    /// Borrows `bytes` as a region. Fails if the buffer is not aligned to a word.
    pub fn new(bytes: &'a mut [u8]) -> Result<Self, crate::Error> {
        let len = bytes.len();
        // SAFETY: `bytes` is an exclusive borrow for 'a, so the pointer is valid for
        // reads and writes of `len` bytes for 'a and nothing else accesses them while
        // the returned region holds the borrow.
        unsafe { Self::from_raw_parts(bytes.as_mut_ptr(), len) }
    }

    /// Builds a region from a raw pointer and a length in bytes (for memory mappings).
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and writes of `len` bytes for `'a`, and for all of
    /// `'a` those bytes must only be accessed atomically, in word-sized units, by every
    /// thread and process that can reach them.
    pub unsafe fn from_raw_parts(ptr: *mut u8, len: usize) -> Result<Self, crate::Error> {
        if ptr.align_offset(WORD_BYTES) != 0 {
            return Err(crate::Error::Misaligned {
                required: WORD_BYTES,
            });
        }
        let Some(base) = core::ptr::NonNull::new(ptr.cast::<AtomicWord>()) else {
            return Err(crate::Error::Misaligned {
                required: WORD_BYTES,
            });
        };
        Ok(ByteRegion {
            base,
            words: len / WORD_BYTES,
            _borrow: core::marker::PhantomData,
        })
    }
}

// SAFETY: `base` is word-aligned (checked in `from_raw_parts`) and valid for `words`
// words for 'a (the constructor's contract); `AtomicWord::from_ptr` then yields a
// distinct word per index, and the constructor's contract rules out non-atomic access.
#[cfg(not(cachee_loom))]
unsafe impl Region for ByteRegion<'_> {
    #[inline]
    fn words(&self) -> usize {
        self.words
    }

    #[inline]
    unsafe fn word_unchecked(&self, i: usize) -> &AtomicWord {
        debug_assert!(i < self.words);
        // SAFETY: (1) `i < self.words` (caller), so the pointer stays inside the
        // allocation the constructor vouched for; (2) it is word-aligned because `base`
        // is and the step is one word; (3) all accesses to this memory are atomic for
        // the lifetime of the borrow, as `from_ptr` requires.
        unsafe { AtomicWord::from_ptr(self.base.as_ptr().add(i).cast::<Word>()) }
    }

    #[inline(always)]
    fn prefetch(&self, i: usize, bytes: usize) {
        prefetch_lines(self.base.as_ptr().wrapping_add(i), bytes)
    }
}

// ---------------------------------------------------------------------------------------
// Typed helpers. Offsets are in bytes from the start of the region; callers derive them
// from a validated layout, so they are in bounds by construction (checked in debug).
// ---------------------------------------------------------------------------------------

#[inline(always)]
pub(crate) fn word<R: Region + ?Sized>(r: &R, byte_off: usize) -> &AtomicWord {
    debug_assert_eq!(byte_off % WORD_BYTES, 0, "unaligned word offset {byte_off}");
    debug_assert!(
        byte_off / WORD_BYTES < r.words(),
        "word offset {byte_off} out of bounds"
    );
    // SAFETY: every offset passed here comes from the validated layout (region-derived
    // indices are range-checked against it first), and the layout was checked to fit in
    // `r.words()` when the cache was formatted or attached.
    unsafe { r.word_unchecked(byte_off / WORD_BYTES) }
}

/// Loads word number `i` (an index, not a byte offset).
#[inline(always)]
pub(crate) fn load_idx<R: Region + ?Sized>(r: &R, i: usize, o: Ordering) -> Word {
    debug_assert!(i < r.words(), "word {i} out of bounds");
    // SAFETY: as for `word`: indices come from the validated layout.
    unsafe { r.word_unchecked(i) }.load(o)
}

/// Stores word number `i`.
#[inline(always)]
pub(crate) fn store_idx<R: Region + ?Sized>(r: &R, i: usize, v: Word, o: Ordering) {
    debug_assert!(i < r.words(), "word {i} out of bounds");
    // SAFETY: as for `word`: indices come from the validated layout.
    unsafe { r.word_unchecked(i) }.store(v, o)
}

#[inline(always)]
pub(crate) fn load<R: Region + ?Sized>(r: &R, off: usize, o: Ordering) -> Word {
    word(r, off).load(o)
}

#[inline(always)]
pub(crate) fn store<R: Region + ?Sized>(r: &R, off: usize, v: Word, o: Ordering) {
    word(r, off).store(v, o)
}

/// Bit position of the `u32` field at byte offset `off` inside its word.
#[inline(always)]
const fn u32_shift(off: usize) -> u32 {
    ((off % WORD_BYTES) * 8) as u32
}

/// Loads the `u32` field at byte offset `off` (a multiple of 4).
///
/// On 64-bit words the field at `off % 8 == 4` is the upper half of its word. This
/// "field within word" convention, not byte order, defines the format.
#[inline(always)]
pub(crate) fn load_u32<R: Region + ?Sized>(r: &R, off: usize, o: Ordering) -> u32 {
    debug_assert_eq!(off % 4, 0);
    let w = load(r, off - off % WORD_BYTES, o);
    (w >> u32_shift(off)) as u32
}

/// Stores the `u32` field at byte offset `off`.
///
/// On 64-bit words this is a load-merge-store of the containing word, so it may only
/// be used on words whose other half no other thread writes concurrently (fields owned
/// by the shard lock holder).
#[inline(always)]
pub(crate) fn store_u32<R: Region + ?Sized>(r: &R, off: usize, v: u32, o: Ordering) {
    debug_assert_eq!(off % 4, 0);
    let base = off - off % WORD_BYTES;
    if WORD_BYTES == 4 {
        store(r, base, v as Word, o);
    } else {
        let shift = u32_shift(off);
        let mask: Word = (u32::MAX as Word) << shift;
        let old = load(r, base, Ordering::Relaxed);
        store(r, base, (old & !mask) | ((v as Word) << shift), o);
    }
}

/// Loads the `u16` field at byte offset `off` (a multiple of 2).
#[inline(always)]
pub(crate) fn load_u16<R: Region + ?Sized>(r: &R, off: usize, o: Ordering) -> u16 {
    debug_assert_eq!(off % 2, 0);
    let w = load(r, off - off % WORD_BYTES, o);
    (w >> ((off % WORD_BYTES) * 8)) as u16
}

/// Stores the `u16` field at byte offset `off` (lock-holder fields only, see [`store_u32`]).
#[inline(always)]
pub(crate) fn store_u16<R: Region + ?Sized>(r: &R, off: usize, v: u16, o: Ordering) {
    debug_assert_eq!(off % 2, 0);
    let base = off - off % WORD_BYTES;
    let shift = (off % WORD_BYTES) * 8;
    let mask: Word = (u16::MAX as Word) << shift;
    let old = load(r, base, Ordering::Relaxed);
    store(r, base, (old & !mask) | ((v as Word) << shift), o);
}

/// Loads a `u64` made of whole words at `off` (a multiple of 8).
#[inline(always)]
pub(crate) fn load_u64<R: Region + ?Sized>(r: &R, off: usize, o: Ordering) -> u64 {
    debug_assert_eq!(off % 8, 0);
    if WORD_BYTES == 8 {
        load(r, off, o) as u64
    } else {
        let lo = load(r, off, o) as u64;
        let hi = load(r, off + 4, o) as u64;
        lo | (hi << 32)
    }
}

/// Stores a `u64` made of whole words at `off` (a multiple of 8).
#[inline(always)]
pub(crate) fn store_u64<R: Region + ?Sized>(r: &R, off: usize, v: u64, o: Ordering) {
    debug_assert_eq!(off % 8, 0);
    if WORD_BYTES == 8 {
        store(r, off, v as Word, o);
    } else {
        store(r, off, v as u32 as Word, o);
        store(r, off + 4, (v >> 32) as u32 as Word, o);
    }
}

/// Copies `out.len()` bytes starting at word-aligned byte offset `off` into `out`.
pub(crate) fn read_bytes<R: Region + ?Sized>(r: &R, off: usize, out: &mut [u8]) {
    debug_assert_eq!(off % WORD_BYTES, 0);
    for (i, c) in (off / WORD_BYTES..).zip(out.chunks_mut(WORD_BYTES)) {
        let w = load_idx(r, i, Ordering::Relaxed).to_ne_bytes();
        c.copy_from_slice(&w[..c.len()]);
    }
}

/// Zeroes `len` bytes (a multiple of the word size) at `off`.
pub(crate) fn zero<R: Region + ?Sized>(r: &R, off: usize, len: usize) {
    debug_assert_eq!(len % WORD_BYTES, 0);
    let mut o = off;
    while o < off + len {
        store(r, o, 0, Ordering::Relaxed);
        o += WORD_BYTES;
    }
}
