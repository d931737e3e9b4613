//! The caches being compared, behind one small trait.
//!
//! Every contender stores 8-byte keys and byte-string values and is configured to
//! hold the same number of entries. A `get` leaves the caller with its own copy of
//! the value: cachee copies into the caller's buffer; the heap caches clone their
//! stored value (what a caller of their `get` receives).

use std::sync::Arc;

use cachee_core::{ByteRegion, Cache, Config};

use crate::mem::Anon;

pub trait Contender: Sync {
    /// Reads `key`; returns whether it hit. `out` receives the value where the
    /// contender copies into a buffer.
    fn get(&self, key: u64, out: &mut [u8]) -> bool;
    fn set(&self, key: u64, value: &[u8]);
    fn len(&self) -> usize;
    /// Bytes of the fixed region, for contenders that have one.
    fn region_bytes(&self) -> Option<usize> {
        None
    }
}

pub struct Cachee {
    cache: Cache<ByteRegion<'static>>,
    _mem: Anon,
}

impl Cachee {
    pub fn new(entries: u64, value_size: usize, huge: bool, checksums: bool) -> Cachee {
        let cfg = Config::new()
            .max_key_len(8)
            .max_value_len(value_size.max(1024))
            .expected_entry(8, value_size)
            .checksums(checksums)
            .seed(0x0123_4567_89ab_cdef);
        let bytes = cfg.bytes_for(entries, 8, value_size).expect("sizing");
        let mem = Anon::new(bytes, huge).expect("mmap");
        // SAFETY: the mapping lives as long as `Cachee` (it is dropped after `cache`,
        // being declared after it) and is only ever accessed through the cache.
        let region = unsafe { ByteRegion::from_raw_parts(mem.ptr(), mem.len()) }.expect("aligned");
        let cache = Cache::format(region, &cfg).expect("format");
        Cachee { cache, _mem: mem }
    }
}

impl Contender for Cachee {
    #[inline]
    fn get(&self, key: u64, out: &mut [u8]) -> bool {
        matches!(self.cache.get(&key.to_le_bytes(), out), Ok(Some(_)))
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        let _ = self.cache.set(&key.to_le_bytes(), value);
    }
    fn len(&self) -> usize {
        self.cache.len()
    }
    fn region_bytes(&self) -> Option<usize> {
        Some(self.cache.region_bytes())
    }
}

/// quick_cache with boxed values: `get` clones (allocates and copies) the value.
pub struct QuickBox(quick_cache::sync::Cache<u64, Box<[u8]>>);

impl QuickBox {
    pub fn new(entries: u64) -> Self {
        QuickBox(quick_cache::sync::Cache::new(entries as usize))
    }
}

impl Contender for QuickBox {
    #[inline]
    fn get(&self, key: u64, _out: &mut [u8]) -> bool {
        let v = self.0.get(&key);
        let hit = v.is_some();
        drop(std::hint::black_box(v));
        hit
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        self.0.insert(key, value.into());
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// quick_cache with shared values: `get` clones an `Arc` (a reference-count update).
pub struct QuickArc(quick_cache::sync::Cache<u64, Arc<[u8]>>);

impl QuickArc {
    pub fn new(entries: u64) -> Self {
        QuickArc(quick_cache::sync::Cache::new(entries as usize))
    }
}

impl Contender for QuickArc {
    #[inline]
    fn get(&self, key: u64, _out: &mut [u8]) -> bool {
        let v = self.0.get(&key);
        let hit = v.is_some();
        drop(std::hint::black_box(v));
        hit
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        self.0.insert(key, value.into());
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Builds a contender by name.
pub fn build(name: &str, entries: u64, value_size: usize) -> Option<Box<dyn Contender>> {
    Some(match name {
        "cachee" => Box::new(Cachee::new(entries, value_size, true, false)),
        "cachee-4k" => Box::new(Cachee::new(entries, value_size, false, false)),
        "cachee-checksum" => Box::new(Cachee::new(entries, value_size, true, true)),
        "quick_cache" => Box::new(QuickBox::new(entries)),
        "quick_cache-arc" => Box::new(QuickArc::new(entries)),
        _ => return None,
    })
}

pub const ALL: &[&str] = &[
    "cachee",
    "cachee-4k",
    "cachee-checksum",
    "quick_cache",
    "quick_cache-arc",
];
