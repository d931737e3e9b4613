//! Proves that `cachee-core` links without `std`.
//!
//! This is a `#![no_std]` static library with its own `#[panic_handler]`. `std`
//! defines the same lang item, so if `cachee-core` or any of its dependencies
//! linked `std` in, the build would fail with E0152 ("found duplicate lang item
//! `panic_impl`"). The exported C functions really use the cache (format, set,
//! get, remove on a `static` region, and a `StaticCache`), so that none of it
//! can be discarded before the compiler has checked and code-generated it.
//!
//! Return codes of the C functions: `>= 0` success (a length, a count or a
//! flag), `-1` miss, `< -1` an [`Error`] (see [`code`]).

#![no_std]

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};

use cachee_core::{
    AtomicWord, Cache, Config, Error, NoHooks, StaticCache, new_word, words_for, zeroed_words,
};

// The region word follows the target's atomics: 64-bit where it has 64-bit
// atomics, 32-bit otherwise (thumbv7em-none-eabihf).
#[cfg(target_has_atomic = "64")]
const _: () = assert!(cachee_core::WORD_BYTES == 8);
#[cfg(not(target_has_atomic = "64"))]
const _: () = assert!(cachee_core::WORD_BYTES == 4);

/// Bytes of the byte-keyed cache's region.
const REGION_BYTES: usize = 32 * 1024;
const REGION_WORDS: usize = words_for(REGION_BYTES);

/// The byte-keyed cache's memory: plain atomic words in `.bss`.
static REGION: [AtomicWord; REGION_WORDS] = [const { new_word() }; REGION_WORDS];
/// 0 = not formatted, 1 = formatting, 2 = formatted.
static FORMATTED: AtomicU32 = AtomicU32::new(0);

/// A typed cache (u32 keys, u64 values) living entirely in a `static`.
static TYPED_REGION: [AtomicWord; words_for(16 * 1024)] = zeroed_words();
static TYPED: StaticCache<u32, u64> = StaticCache::new(&TYPED_REGION, Config::new(), NoHooks);

/// Longest value the byte-keyed cache accepts.
const MAX_VALUE: usize = 256;

fn config() -> Config {
    Config::new()
        .max_key_len(64)
        .max_value_len(MAX_VALUE)
        .expected_entry(16, 32)
}

/// The `i32` returned to C for an error (always `<= -2`).
fn code(e: Error) -> i32 {
    match e {
        Error::EmptyKey => -2,
        Error::KeyTooLong { .. } => -3,
        Error::ValueTooLarge { .. } => -4,
        Error::BufferTooSmall { .. } => -5,
        Error::InvalidTtl => -6,
        Error::NoClock => -7,
        Error::NotANumber => -8,
        Error::Busy => -9,
        Error::NoSpace => -10,
        Error::Misaligned { .. } => -11,
        Error::RegionTooSmall { .. } => -12,
        Error::InvalidConfig(_) => -13,
        Error::NotReady => -14,
        _ => -99,
    }
}

/// The cache over [`REGION`], formatting it on first use.
fn cache() -> Result<Cache<&'static [AtomicWord]>, Error> {
    loop {
        match FORMATTED.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => {
                return match Cache::format(&REGION[..], &config()) {
                    Ok(c) => {
                        FORMATTED.store(2, Ordering::Release);
                        Ok(c)
                    }
                    Err(e) => {
                        FORMATTED.store(0, Ordering::Release);
                        Err(e)
                    }
                };
            }
            // Formatted earlier: attach (validates the header, cheap).
            Err(2) => return Cache::attach(&REGION[..]),
            Err(_) => core::hint::spin_loop(),
        }
    }
}

/// Borrows `len` bytes at `ptr` (a null pointer is only allowed with `len == 0`).
///
/// # Safety
///
/// `ptr` must be valid for reads of `len` bytes for `'a` (or `len == 0`).
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `ptr` is valid for `len` bytes.
        unsafe { core::slice::from_raw_parts(ptr, len) }
    }
}

/// Formats the byte-keyed cache (if not done yet). Returns 0 or an error code.
#[unsafe(no_mangle)]
pub extern "C" fn cachee_nostd_init() -> i32 {
    match cache() {
        Ok(_) => 0,
        Err(e) => code(e),
    }
}

/// Stores `value` under `key`. Returns 0 or an error code.
///
/// # Safety
///
/// `key`/`value` must be valid for reads of `key_len`/`value_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cachee_nostd_set(
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    let (k, v) = unsafe { (bytes(key, key_len), bytes(value, value_len)) };
    match cache().and_then(|c| c.set(k, v)) {
        Ok(()) => 0,
        Err(e) => code(e),
    }
}

/// Copies the value of `key` into `out`. Returns its length, `-1` on a miss, or an
/// error code (`-5` if `out_len` is too small).
///
/// # Safety
///
/// `key` must be valid for reads of `key_len` bytes, `out` for writes of `out_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cachee_nostd_get(
    key: *const u8,
    key_len: usize,
    out: *mut u8,
    out_len: usize,
) -> i64 {
    // SAFETY: forwarded from this function's contract.
    let k = unsafe { bytes(key, key_len) };
    let buf: &mut [u8] = if out_len == 0 {
        &mut []
    } else {
        // SAFETY: the caller guarantees `out` is valid for writes of `out_len` bytes.
        unsafe { core::slice::from_raw_parts_mut(out, out_len) }
    };
    match cache().and_then(|c| c.get(k, buf)) {
        Ok(Some(n)) => n as i64,
        Ok(None) => -1,
        Err(e) => i64::from(code(e)),
    }
}

/// Removes `key`. Returns 1 if it was present, 0 if not, or an error code.
///
/// # Safety
///
/// `key` must be valid for reads of `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cachee_nostd_remove(key: *const u8, key_len: usize) -> i32 {
    // SAFETY: forwarded from this function's contract.
    let k = unsafe { bytes(key, key_len) };
    match cache().and_then(|c| c.remove(k)) {
        Ok(removed) => i32::from(removed),
        Err(e) => code(e),
    }
}

/// Number of entries in the byte-keyed cache (0 if it cannot be formatted).
#[unsafe(no_mangle)]
pub extern "C" fn cachee_nostd_len() -> usize {
    cache().map_or(0, |c| c.len())
}

/// Stores `value` under `key` in the typed static cache. Returns 0 or an error code.
#[unsafe(no_mangle)]
pub extern "C" fn cachee_nostd_typed_insert(key: u32, value: u64) -> i32 {
    match TYPED.cache().and_then(|c| c.insert(&key, &value)) {
        Ok(()) => 0,
        Err(e) => code(e),
    }
}

/// The value of `key` in the typed static cache, or `default` if absent or on error.
#[unsafe(no_mangle)]
pub extern "C" fn cachee_nostd_typed_get(key: u32, default: u64) -> u64 {
    match TYPED.cache().and_then(|c| c.get(&key)) {
        Ok(Some(v)) => v,
        _ => default,
    }
}

/// A self-contained round trip through every exported path: format, set, get,
/// overwrite, remove, incr and the typed cache. Returns 0 if everything behaved,
/// otherwise the (positive) number of the first step that did not.
#[unsafe(no_mangle)]
pub extern "C" fn cachee_nostd_selftest() -> i32 {
    let Ok(c) = cache() else { return 1 };
    let mut out = [0u8; MAX_VALUE];
    if c.set(b"nostd:key", b"no std here").is_err() {
        return 2;
    }
    match c.get(b"nostd:key", &mut out) {
        Ok(Some(11)) if &out[..11] == b"no std here" => {}
        _ => return 3,
    }
    if c.set(b"nostd:key", &[7u8; 200]).is_err() {
        return 4;
    }
    match c.get(b"nostd:key", &mut out) {
        Ok(Some(200)) if out[..200].iter().all(|&b| b == 7) => {}
        _ => return 5,
    }
    if c.remove(b"nostd:key") != Ok(true) || c.contains(b"nostd:key") != Ok(false) {
        return 6;
    }
    if c.incr(b"nostd:ctr", 2, Some(40)) != Ok(Some(40))
        || c.incr(b"nostd:ctr", 2, None) != Ok(Some(42))
    {
        return 7;
    }
    if cachee_nostd_typed_insert(7, 0xDEAD_BEEF) != 0
        || cachee_nostd_typed_get(7, 0) != 0xDEAD_BEEF
        || cachee_nostd_typed_get(8, 1) != 1
    {
        return 8;
    }
    0
}

/// No unwinding, no printing: park the core (or thread) forever.
#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
