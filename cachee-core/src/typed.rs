//! Fixed-size plain-data keys and values, and a cache that lives in a `static`.
//!
//! Embedded users rarely have variable-length keys: a `TypedCache<u32, [u8; 16]>`
//! stores the bytes of the key and value directly, with no encoding step and no
//! allocation, and a [`StaticCache`] puts the whole cache (region included) in a
//! `static`, formatted on first use.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::{MaybeUninit, size_of};

use crate::region::Region;
use crate::stats::ShardStats;
use crate::sync::{AtomicU32, AtomicWord, Ordering, spin_hint};
use crate::{Cache, Config, Error, Hooks, NoHooks};

/// Types whose values are nothing but their bytes.
///
/// # Safety
///
/// Implementors must have no padding bytes, no interior mutability and no invalid
/// bit patterns: every sequence of `size_of::<Self>()` bytes must be a valid value.
pub unsafe trait Plain: Copy + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: primitive integers have no padding and every bit pattern is valid.
        unsafe impl Plain for $t {}
    )* };
}
plain!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);
// SAFETY: an array of `Plain` elements has no padding between elements and every
// element's bytes are valid, so every byte pattern of the array is valid.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

fn bytes_of<T: Plain>(v: &T) -> &[u8] {
    // SAFETY: `T: Plain` has no padding, so all `size_of::<T>()` bytes behind `v` are
    // initialised; the slice borrows `v` and cannot outlive it.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A cache of fixed-size plain-data keys and values.
pub struct TypedCache<K: Plain, V: Plain, R: Region, H: Hooks = NoHooks> {
    inner: Cache<R, H>,
    _types: PhantomData<fn(K, V) -> V>,
}

impl<K: Plain, V: Plain, R: Region, H: Hooks> core::fmt::Debug for TypedCache<K, V, R, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TypedCache")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<K: Plain, V: Plain, R: Region, H: Hooks> TypedCache<K, V, R, H> {
    /// The configuration a typed cache is formatted with: key and value maxima equal to
    /// the types' sizes, index sized for exactly such entries.
    pub const fn config() -> Config {
        Config::new()
            .max_key_len(size_of::<K>())
            .max_value_len(size_of::<V>())
            .expected_entry(size_of::<K>(), size_of::<V>())
    }

    /// Formats `region` for `K`/`V` entries; `config`'s key/value limits are replaced
    /// by the types' sizes.
    pub fn format(region: R, config: Config, hooks: H) -> Result<Self, Error> {
        if size_of::<K>() == 0 {
            return Err(Error::EmptyKey);
        }
        let config = config
            .max_key_len(size_of::<K>())
            .max_value_len(size_of::<V>())
            .expected_entry(size_of::<K>(), size_of::<V>());
        Ok(TypedCache {
            inner: Cache::format_with_hooks(region, &config, hooks)?,
            _types: PhantomData,
        })
    }

    /// Attaches to a region formatted for the same types.
    pub fn attach(region: R, hooks: H) -> Result<Self, Error> {
        let inner = Cache::attach_with_hooks(region, hooks)?;
        if inner.max_key_len() != size_of::<K>() || inner.max_value_len() != size_of::<V>() {
            return Err(Error::InvalidConfig(
                "region was formatted for other key/value sizes",
            ));
        }
        Ok(TypedCache {
            inner,
            _types: PhantomData,
        })
    }

    /// The byte-level cache underneath.
    pub fn inner(&self) -> &Cache<R, H> {
        &self.inner
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        let mut v = MaybeUninit::<V>::zeroed();
        // SAFETY: the buffer is `size_of::<V>()` initialised (zeroed) bytes owned by `v`
        // and borrowed only for this call.
        let buf =
            unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), size_of::<V>()) };
        match self.inner.get(bytes_of(key), buf)? {
            // SAFETY: all bytes of `v` are initialised (zeroed, then overwritten by the
            // copy), and `V: Plain` makes every byte pattern a valid `V`.
            Some(n) if n == size_of::<V>() => Ok(Some(unsafe { v.assume_init() })),
            _ => Ok(None),
        }
    }

    /// Stores `value` under `key`.
    pub fn insert(&self, key: &K, value: &V) -> Result<(), Error> {
        self.inner.set(bytes_of(key), bytes_of(value))
    }

    /// Stores `value` under `key`, expiring `ttl` ticks from now.
    pub fn insert_ttl(&self, key: &K, value: &V, ttl: u64) -> Result<(), Error> {
        self.inner.set_ttl(bytes_of(key), bytes_of(value), ttl)
    }

    /// Stores `value` only if `key` is absent; returns whether it was stored.
    pub fn add(&self, key: &K, value: &V) -> Result<bool, Error> {
        self.inner.add(bytes_of(key), bytes_of(value), None)
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&self, key: &K) -> Result<bool, Error> {
        self.inner.remove(bytes_of(key))
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &K) -> Result<bool, Error> {
        self.inner.contains(bytes_of(key))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// How many `K`/`V` entries fit.
    pub fn capacity(&self) -> usize {
        self.inner.capacity_for(size_of::<K>(), size_of::<V>())
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), Error> {
        self.inner.clear()
    }

    /// Counters summed over all shards.
    pub fn stats(&self) -> ShardStats {
        self.inner.stats()
    }
}

const UNINIT: u32 = 0;
const BUSY: u32 = 1;
const READY: u32 = 2;
const FAILED: u32 = 3;

/// The cache a [`StaticCache`] hands out.
pub type StaticTyped<K, V, H> = TypedCache<K, V, crate::Words<'static>, H>;

/// A typed cache in a `static`, over a region that is itself a `static` (zero-filled,
/// so it lives in `.bss` and costs no flash). Formatted on first use.
///
/// ```
/// use cachee_core::{AtomicWord, Config, NoHooks, StaticCache, words_for, zeroed_words};
///
/// static REGION: [AtomicWord; words_for(16 * 1024)] = zeroed_words();
/// static CACHE: StaticCache<u32, [u8; 16]> = StaticCache::new(&REGION, Config::new(), NoHooks);
///
/// let c = CACHE.cache().unwrap();
/// c.insert(&7, &[1; 16]).unwrap();
/// assert_eq!(c.get(&7).unwrap(), Some([1; 16]));
/// ```
pub struct StaticCache<K: Plain, V: Plain, H: Hooks + 'static = NoHooks> {
    region: &'static [AtomicWord],
    state: AtomicU32,
    config: Config,
    hooks: UnsafeCell<Option<H>>,
    cache: UnsafeCell<MaybeUninit<StaticTyped<K, V, H>>>,
}

// SAFETY: `hooks` is only taken by the single thread that wins the UNINIT→BUSY
// transition; `cache` is written once by that thread before READY is published with
// release ordering and only read after READY is observed with acquire, after which it
// is shared immutably. `H: Sync + Send` covers sharing the hooks.
unsafe impl<K: Plain, V: Plain, H: Hooks + Send + Sync> Sync for StaticCache<K, V, H> {}

impl<K: Plain, V: Plain, H: Hooks + 'static> core::fmt::Debug for StaticCache<K, V, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticCache")
            .field("bytes", &(self.region.len() * crate::WORD_BYTES))
            .finish_non_exhaustive()
    }
}

/// Words needed for a region of `bytes` bytes.
pub const fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(crate::WORD_BYTES)
}

/// A zero-filled array of atomic words, for a `static` region.
#[cfg(not(cachee_loom))]
pub const fn zeroed_words<const N: usize>() -> [AtomicWord; N] {
    [const { crate::sync::new_word() }; N]
}

#[cfg(not(cachee_loom))]
impl<K: Plain, V: Plain, H: Hooks + 'static> StaticCache<K, V, H> {
    /// An unformatted cache over `region`; `config`'s key/value limits are taken from
    /// `K` and `V`. The region must not be used by anything else.
    pub const fn new(region: &'static [AtomicWord], config: Config, hooks: H) -> Self {
        StaticCache {
            region,
            state: AtomicU32::new(UNINIT),
            config,
            hooks: UnsafeCell::new(Some(hooks)),
            cache: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl<K: Plain, V: Plain, H: Hooks + Send + Sync + 'static> StaticCache<K, V, H> {
    /// The cache, formatting it on first call. Concurrent first calls wait for the one
    /// that formats. Fails (now and on every later call) if the configuration does not
    /// fit in the region.
    pub fn cache(&'static self) -> Result<&'static StaticTyped<K, V, H>, Error> {
        loop {
            match self
                .state
                .compare_exchange(UNINIT, BUSY, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: this thread won UNINIT→BUSY, so it is the only one that
                    // ever touches `hooks`.
                    let hooks = unsafe { (*self.hooks.get()).take() };
                    let result = match hooks {
                        Some(h) => TypedCache::format(
                            crate::Words::from(self.region),
                            self.config.clone(),
                            h,
                        ),
                        None => Err(Error::NotReady),
                    };
                    return match result {
                        Ok(c) => {
                            // SAFETY: only the winning thread writes `cache`, before it
                            // publishes READY; nobody reads it before observing READY.
                            unsafe { (*self.cache.get()).write(c) };
                            self.state.store(READY, Ordering::Release);
                            self.cache()
                        }
                        Err(e) => {
                            self.state.store(FAILED, Ordering::Release);
                            Err(e)
                        }
                    };
                }
                Err(READY) => {
                    // SAFETY: READY was observed with acquire, so the write of `cache`
                    // that preceded its release store is visible, and it is never
                    // written again.
                    return Ok(unsafe { (*self.cache.get()).assume_init_ref() });
                }
                Err(FAILED) => {
                    return Err(Error::InvalidConfig(
                        "the static cache's configuration does not fit its region",
                    ));
                }
                Err(_) => spin_hint(),
            }
        }
    }
}
