//! A cache that lives entirely inside one fixed, preallocated region of memory.
//!
//! `cachee-core` is `#![no_std]` and never allocates. You hand it a region — a
//! `static` array on a microcontroller, a heap buffer in a test, a memory-mapped file
//! shared by many processes (see `cachee-shm`) — and it formats the region as a cache
//! of byte keys and values, or attaches to a region formatted earlier. Every
//! operation takes `&self` and is safe to call from many threads at once.
//!
//! ```
//! use cachee_core::{ByteRegion, Cache, Config};
//!
//! let mut memory = vec![0u64; 64 * 1024 / 8];
//! let bytes: &mut [u8] = bytemuck_free_cast(&mut memory);
//! # fn bytemuck_free_cast(w: &mut [u64]) -> &mut [u8] {
//! #     let len = w.len() * 8;
//! #     unsafe { std::slice::from_raw_parts_mut(w.as_mut_ptr().cast(), len) }
//! # }
//! let cache = Cache::format(ByteRegion::new(bytes)?, &Config::new().max_value_len(1024))?;
//!
//! cache.set(b"user:42", b"Ada")?;
//! let mut out = [0u8; 1024];
//! assert_eq!(cache.get(b"user:42", &mut out)?, Some(3));
//! assert_eq!(&out[..3], b"Ada");
//! assert!(!cache.add(b"user:42", b"Bob", None)?); // present: add changes nothing
//! assert_eq!(cache.incr(b"hits", 1, Some(0))?, Some(0));
//! assert_eq!(cache.incr(b"hits", 5, None)?, Some(5));
//! # Ok::<(), cachee_core::Error>(())
//! ```
//!
//! # Design
//!
//! The region holds a header and a number of **shards**. Each shard has its own write
//! lock, an **index** (open addressing over cache-line buckets of fifteen 32-bit
//! slots, each a hash tag and a slot location), and an **arena** of fixed-size pages.
//! Pages are assigned on demand to **size classes** (8-byte steps to 128 bytes, then
//! sixteen classes per doubling); an entry occupies one slot of its class: an 8-byte
//! header (seqlock version and metadata), optional checksum/expiry words, the key
//! padded to 8 bytes, then the value. Pages move between classes when the workload's
//! sizes shift, so memory never calcifies. Offsets, never pointers, are stored, so a
//! region means the same thing at any address. See `docs/design.md` and
//! `docs/format.md` in the repository.
//!
//! **Eviction** is S3-FIFO mapped onto two CLOCK hands per class: new entries are on
//! probation and are evicted quickly unless hit; hit entries move to the main set,
//! where a clock with two reference bits gives second chances; keys evicted from
//! probation leave a ghost tag in a free index slot and skip probation when they
//! return. A hit writes a reference bit only if it is not already set.
//!
//! **Concurrency**: readers take no lock. They copy an entry out and validate its
//! version (a data-race-free seqlock: every access to the region is an atomic word
//! access), retrying a few times and then answering "miss" rather than waiting.
//! Writers take their shard's lock; the lock word holds an owner id, and a writer that
//! finds the lock held by an owner its [`Hooks`] report dead takes it over and
//! rebuilds the shard from its entries.
//!
//! # Memory
//!
//! All memory is fixed when the region is formatted. Per entry, beyond the key and
//! value, the cache uses
//!
//! ```text
//!   8      entry header (version + metadata)
//! + 1      state byte
//! + 0.25   reference bits
//! + 5.33   index: 4-byte slot, 15 per 64-byte bucket, sized for 80% load
//! + ≈0.5   page and class bookkeeping (32 B per page)
//! ≈ 15 B   (+8 with checksums, +8 for an entry with a TTL)
//! ```
//!
//! plus rounding: the key to a multiple of 8 bytes and the entry to its size class
//! (at most 6.25% above 128 bytes). For 8-byte keys and 256-byte values that is about
//! 279 bytes per resident entry; the `overhead` test measures it.
//!
//! # Features
//!
//! - `alloc`: `Cache::get_vec`, and regions backed by a `Vec` of atomic words.
//! - `testing`: a deliberately colliding hash, for tests that stress probing.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(any(feature = "alloc", cachee_loom))]
extern crate alloc;
#[cfg(any(test, cachee_loom))]
extern crate std;

mod cache;
mod check;
mod entry;
mod error;
mod hash;
mod index;
mod layout;
mod policy;
mod region;
mod shard;
mod stats;
mod sync;
#[cfg(feature = "testing")]
mod testing;
mod typed;

pub use cache::{Cache, CasOutcome, CasToken, Hit, Hooks, NoHooks};
pub use check::{Problem, RepairReport};
pub use error::Error;
pub use hash::HashKind;
pub use layout::{
    Config, FORMAT_VERSION, HEADER_BYTES, MAX_KEY_LEN, MAX_PAGE_SIZE, MAX_SHARDS, MIN_PAGE_SIZE,
};
#[cfg(not(cachee_loom))]
pub use region::ByteRegion;
pub use region::{Region, Words};
pub use stats::{Footprint, ShardStats};
#[cfg(cachee_loom)]
pub use sync::mutants;
pub use sync::{AtomicWord, WORD_BYTES, Word, new_word};
#[cfg(not(cachee_loom))]
pub use typed::zeroed_words;
pub use typed::{Plain, StaticCache, TypedCache, words_for};
