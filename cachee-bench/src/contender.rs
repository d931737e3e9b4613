//! The caches being compared, behind one small interface.
//!
//! Every contender stores 8-byte keys and byte-string values and is configured to hold
//! the same number of entries (or, with `--equal-memory`, the same number of bytes).
//! A `get` leaves the caller with its own copy of the value: cachee copies into the
//! caller's buffer; the heap caches clone what they store (what a caller of their `get`
//! receives); the servers send it over a socket.
//!
//! Each benchmark thread gets its own [`Worker`] (network clients hold a connection per
//! thread).

use std::sync::{Arc, Mutex};

use cachee_core::{ByteRegion, Cache, Config};

use crate::mem::Anon;
use crate::net;

/// One thread's handle on a contender.
pub trait Worker {
    /// Reads `key`; returns whether it hit. `out` receives the value where the
    /// contender copies into a buffer.
    fn get(&mut self, key: u64, out: &mut [u8]) -> bool;
    fn set(&mut self, key: u64, value: &[u8]);
    /// Runs a batch of operations (top bit of an op = set); returns the number of
    /// hits. Pipelining clients override it.
    fn batch(&mut self, ops: &[u64], value: &[u8], out: &mut [u8]) -> u64 {
        let mut hits = 0;
        for &op in ops {
            if op & crate::ops::SET == 0 {
                hits += self.get(op, out) as u64;
            } else {
                self.set(op & !crate::ops::SET, value);
            }
        }
        hits
    }
}

pub trait Contender: Sync {
    fn worker(&self) -> Box<dyn Worker + '_>;
    /// The worker that prefills the cache (servers: a pipelining connection, so that
    /// filling millions of keys does not take minutes of round trips).
    fn prefill_worker(&self) -> Box<dyn Worker + '_> {
        self.worker()
    }
    fn len(&self) -> usize;
    /// Bytes of the fixed region, for contenders that have one.
    fn region_bytes(&self) -> Option<usize> {
        None
    }
    /// Whether the contender pipelines batches (its per-operation latency is then not
    /// measured).
    fn pipelined(&self) -> bool {
        false
    }
}

/// In-process contenders whose operations take `&self`: one trivial worker per thread.
struct Shared<'a, C: ?Sized>(&'a C);

pub trait SharedOps: Sync {
    fn get(&self, key: u64, out: &mut [u8]) -> bool;
    fn set(&self, key: u64, value: &[u8]);
}

impl<C: SharedOps + ?Sized> Worker for Shared<'_, C> {
    #[inline]
    fn get(&mut self, key: u64, out: &mut [u8]) -> bool {
        self.0.get(key, out)
    }
    #[inline]
    fn set(&mut self, key: u64, value: &[u8]) {
        self.0.set(key, value)
    }
}

macro_rules! shared_contender {
    ($t:ty, $len:expr $(, region = $region:expr)?) => {
        impl Contender for $t {
            fn worker(&self) -> Box<dyn Worker + '_> {
                Box::new(Shared(self))
            }
            fn len(&self) -> usize {
                ($len)(self)
            }
            $(fn region_bytes(&self) -> Option<usize> {
                ($region)(self)
            })?
        }
    };
}

// --- cachee ----------------------------------------------------------------------------

pub struct Cachee {
    cache: Cache<ByteRegion<'static>>,
    _mem: Anon,
}

impl Cachee {
    pub fn new(size: Size, value_size: usize, huge: bool, checksums: bool) -> Cachee {
        let cfg = Config::new()
            .max_key_len(8)
            .max_value_len(value_size.max(1024))
            .expected_entry(8, value_size)
            .checksums(checksums)
            .seed(0x0123_4567_89ab_cdef);
        // At an entry count, the region is sized for it and the count is also a cap, so
        // that cachee holds no more entries than the others.
        let (cfg, bytes) = match size {
            Size::Entries(n) => {
                let bytes = cfg.bytes_for(n, 8, value_size).expect("sizing");
                (cfg.max_entries(n), bytes)
            }
            Size::Bytes(b) => (cfg, b as usize),
        };
        let mem = Anon::new(bytes, huge).expect("mmap");
        // SAFETY: the mapping lives as long as `Cachee` (it is dropped after `cache`,
        // being declared after it) and is only ever accessed through the cache.
        let region = unsafe { ByteRegion::from_raw_parts(mem.ptr(), mem.len()) }.expect("aligned");
        let cache = Cache::format(region, &cfg).expect("format");
        Cachee { cache, _mem: mem }
    }
}

impl SharedOps for Cachee {
    #[inline]
    fn get(&self, key: u64, out: &mut [u8]) -> bool {
        matches!(self.cache.get(&key.to_le_bytes(), out), Ok(Some(_)))
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        let _ = self.cache.set(&key.to_le_bytes(), value);
    }
}
shared_contender!(
    Cachee,
    |c: &Cachee| c.cache.len(),
    region = |c: &Cachee| Some(c.cache.region_bytes())
);

/// cachee-shm: the same cache in a shared memory segment (4 KiB pages, checksums).
pub struct CacheeShm {
    seg: cachee_shm::Segment,
}

impl CacheeShm {
    pub fn options(size: Size, value_size: usize) -> (cachee_shm::Options, u64) {
        let opts = cachee_shm::Options::new()
            .max_key(8)
            .max_value(value_size.max(1024))
            .expected_entry(8, value_size);
        match size {
            Size::Entries(n) => {
                let bytes = opts.size_for(n, 8, value_size).expect("sizing");
                (opts.max_entries(n).size(bytes), bytes)
            }
            Size::Bytes(b) => (opts.size(b), b),
        }
    }

    /// Creates a segment named `name`.
    pub fn create(name: &str, size: Size, value_size: usize) -> CacheeShm {
        let (opts, _) = Self::options(size, value_size);
        let seg = cachee_shm::Segment::create(name, &opts).expect("create segment");
        CacheeShm { seg }
    }

    /// Attaches to the segment named `name`.
    pub fn open(name: &str) -> CacheeShm {
        let seg =
            cachee_shm::Segment::open(name, &cachee_shm::Options::new()).expect("open segment");
        CacheeShm { seg }
    }

    /// A segment private to this process: created, then its name removed at once (the
    /// mapping lives as long as the process).
    pub fn private(size: Size, value_size: usize) -> CacheeShm {
        let name = format!("cachee-bench-{}", std::process::id());
        let c = Self::create(&name, size, value_size);
        let _ = cachee_shm::destroy(&name);
        c
    }
}

impl SharedOps for CacheeShm {
    #[inline]
    fn get(&self, key: u64, out: &mut [u8]) -> bool {
        matches!(self.seg.get_into(&key.to_le_bytes(), out), Ok(Some(_)))
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        let _ = self.seg.set(&key.to_le_bytes(), value);
    }
}
shared_contender!(
    CacheeShm,
    |c: &CacheeShm| c.seg.len(),
    region = |c: &CacheeShm| Some(c.seg.file_len())
);

// --- heap caches -----------------------------------------------------------------------

/// quick_cache with boxed values: `get` clones (allocates and copies) the value.
pub struct QuickBox(quick_cache::sync::Cache<u64, Box<[u8]>>);
impl SharedOps for QuickBox {
    #[inline]
    fn get(&self, key: u64, _out: &mut [u8]) -> bool {
        std::hint::black_box(self.0.get(&key)).is_some()
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        self.0.insert(key, value.into());
    }
}
shared_contender!(QuickBox, |c: &QuickBox| c.0.len());

/// quick_cache with shared values: `get` clones an `Arc` (a reference-count update).
pub struct QuickArc(quick_cache::sync::Cache<u64, Arc<[u8]>>);
impl SharedOps for QuickArc {
    #[inline]
    fn get(&self, key: u64, _out: &mut [u8]) -> bool {
        std::hint::black_box(self.0.get(&key)).is_some()
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        self.0.insert(key, value.into());
    }
}
shared_contender!(QuickArc, |c: &QuickArc| c.0.len());

/// moka (sync): TinyLFU admission, `get` clones the boxed value.
pub struct Moka(moka::sync::Cache<u64, Box<[u8]>>);
impl SharedOps for Moka {
    #[inline]
    fn get(&self, key: u64, _out: &mut [u8]) -> bool {
        std::hint::black_box(self.0.get(&key)).is_some()
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        self.0.insert(key, value.into());
    }
}
shared_contender!(Moka, |c: &Moka| {
    c.0.run_pending_tasks();
    c.0.entry_count() as usize
});

/// mini-moka (sync).
pub struct MiniMoka(mini_moka::sync::Cache<u64, Box<[u8]>>);
impl SharedOps for MiniMoka {
    #[inline]
    fn get(&self, key: u64, _out: &mut [u8]) -> bool {
        std::hint::black_box(self.0.get(&key)).is_some()
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        self.0.insert(key, value.into());
    }
}
shared_contender!(MiniMoka, |c: &MiniMoka| {
    use mini_moka::sync::ConcurrentCacheExt;
    c.0.sync();
    c.0.entry_count() as usize
});

/// `lru::LruCache` behind mutexes, one (`shards = 1`) or several, chosen by key hash.
pub struct LruMutex(Vec<Mutex<lru::LruCache<u64, Box<[u8]>>>>);
impl LruMutex {
    fn new(entries: u64, shards: usize) -> Self {
        let per = ((entries as usize).div_ceil(shards)).max(1);
        LruMutex(
            (0..shards)
                .map(|_| {
                    Mutex::new(lru::LruCache::new(
                        std::num::NonZeroUsize::new(per).expect("non-zero"),
                    ))
                })
                .collect(),
        )
    }
    #[inline]
    fn shard(&self, key: u64) -> &Mutex<lru::LruCache<u64, Box<[u8]>>> {
        let h = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        &self.0[(h as usize) % self.0.len()]
    }
}
impl SharedOps for LruMutex {
    #[inline]
    fn get(&self, key: u64, _out: &mut [u8]) -> bool {
        let mut g = self.shard(key).lock().expect("lock");
        std::hint::black_box(g.get(&key).cloned()).is_some()
    }
    #[inline]
    fn set(&self, key: u64, value: &[u8]) {
        self.shard(key).lock().expect("lock").put(key, value.into());
    }
}
shared_contender!(LruMutex, |c: &LruMutex| c
    .0
    .iter()
    .map(|m| m.lock().expect("lock").len())
    .sum());

// --- servers ---------------------------------------------------------------------------

/// A redis or memcached server on a unix socket; each thread connects on its own.
pub struct Server {
    pub kind: net::Kind,
    pub socket: String,
    pub pipeline: usize,
}

impl Contender for Server {
    fn worker(&self) -> Box<dyn Worker + '_> {
        Box::new(
            net::Client::connect(self.kind, &self.socket, self.pipeline)
                .expect("connect to the server"),
        )
    }
    fn prefill_worker(&self) -> Box<dyn Worker + '_> {
        Box::new(net::Client::connect(self.kind, &self.socket, 256).expect("connect to the server"))
    }
    fn len(&self) -> usize {
        net::Client::connect(self.kind, &self.socket, 1)
            .and_then(|mut c| c.entries())
            .unwrap_or(0)
    }
    fn pipelined(&self) -> bool {
        self.pipeline > 1
    }
}

// --- construction ----------------------------------------------------------------------

/// How big each contender is.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    /// Holds this many entries.
    Entries(u64),
    /// Uses this many bytes (cachee: the region; heap caches: a weight budget in bytes,
    /// weighing each entry as key + value + their per-entry overhead measured here).
    Bytes(u64),
}

/// Heap caches' resident bytes per entry beyond key and value, for `run --memory`
/// (so that each gets the entry count its real overhead affords): measured by `run`
/// at 1M entries of 8-byte keys and 256-byte values (`B/entry` − 264). `hit-ratio
/// --equal-memory` measures it afresh at each size instead.
fn heap_overhead(name: &str) -> u64 {
    match name {
        "quick_cache" => 64,
        "quick_cache-arc" => 80,
        "moka" => 322,
        "mini-moka" => 277,
        _ => 76, // lru, lru-sharded
    }
}

/// Builds a contender by name.
pub fn build(
    name: &str,
    size: Size,
    value_size: usize,
    sockets: &str,
) -> Option<Box<dyn Contender>> {
    let entries = |name: &str| match size {
        Size::Entries(n) => n,
        Size::Bytes(b) => b / (8 + value_size as u64 + heap_overhead(name)),
    };
    Some(match name {
        "cachee" => Box::new(Cachee::new(size, value_size, true, false)),
        "cachee-4k" => Box::new(Cachee::new(size, value_size, false, false)),
        "cachee-checksum" => Box::new(Cachee::new(size, value_size, true, true)),
        "cachee-shm" => Box::new(CacheeShm::private(size, value_size)),
        "quick_cache" => Box::new(QuickBox(quick_cache::sync::Cache::new(
            entries(name) as usize
        ))),
        "quick_cache-arc" => Box::new(QuickArc(quick_cache::sync::Cache::new(
            entries(name) as usize
        ))),
        "moka" => Box::new(Moka(
            moka::sync::Cache::builder()
                .max_capacity(entries(name))
                .build(),
        )),
        "mini-moka" => Box::new(MiniMoka(
            mini_moka::sync::Cache::builder()
                .max_capacity(entries(name))
                .build(),
        )),
        "lru" => Box::new(LruMutex::new(entries(name), 1)),
        "lru-sharded" => Box::new(LruMutex::new(entries(name), 64)),
        "redis" | "redis-pipe16" | "memcached" | "memcached-pipe16" => {
            let kind = if name.starts_with("redis") {
                net::Kind::Redis
            } else {
                net::Kind::Memcached
            };
            let file = crate::servers::socket_name(kind);
            Box::new(Server {
                kind,
                socket: format!("{sockets}/{file}"),
                pipeline: if name.ends_with("pipe16") { 16 } else { 1 },
            })
        }
        _ => return None,
    })
}

pub const ALL: &[&str] = &[
    "cachee",
    "cachee-4k",
    "cachee-checksum",
    "cachee-shm",
    "cachee-shm-procs",
    "quick_cache",
    "quick_cache-arc",
    "moka",
    "mini-moka",
    "lru",
    "lru-sharded",
    "redis",
    "redis-pipe16",
    "memcached",
    "memcached-pipe16",
];
