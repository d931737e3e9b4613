//! Minimal reproductions of `cachee-core` bugs found by the fuzz harnesses, kept as
//! regression tests.
//!
//! A test is `#[ignore = "BUG: ..."]` while its bug is open (run those with
//! `cargo test -p fuzz --test regressions -- --ignored`); when the bug is fixed, the
//! `ignore` goes, and so does its entry in `fuzz/src/known_bugs.rs` (which makes the
//! harnesses tolerate it meanwhile). The first eight bugs below were found by
//! `hostile_image`, `hostile_bytes`, `differential` and `format_config` and fixed in
//! commit b6c023e; the last two are open.
//!
//! Damage is placed with `fuzz::peek`, which computes offsets from the header as
//! `docs/format.md` describes them.

use std::sync::mpsc;
use std::time::Duration;

use cachee_core::{AtomicWord, Cache, Config};
use fuzz::common;
use fuzz::peek::{self, Peek, cl, pg};

/// Runs `f` on another thread; `None` if it has not returned after `secs` seconds
/// (the thread is left spinning; the test process ends it).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

fn small_config() -> Config {
    Config::new()
        .shards(1)
        .page_size(512)
        .max_key_len(16)
        .max_value_len(200)
        .seed(9)
}

/// A leaked region, so that a cache can move to another thread.
fn leaked_region(bytes: usize) -> &'static [AtomicWord] {
    Box::leak(common::region(bytes).into_boxed_slice())
}

/// The size class of `set(key of klen bytes, value of vlen bytes)` without TTL.
fn class(klen: usize, vlen: usize) -> usize {
    peek::class_of(peek::entry_bytes(klen, vlen, false, false))
}

fn key(i: usize) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// `evict_in_class` computes `cold * 100` and `live * COLD_PERCENT` in `u32` from the
/// class record's live count; a damaged count (≥ 2³²/100) overflows, which panics in
/// any build with overflow checks (the test and fuzz profiles) instead of being
/// treated as damage.
#[test]
fn evict_overflow_on_damaged_counts() {
    let w = common::region(16 << 10);
    let c = Cache::format(&w[..], &small_config()).unwrap();
    let mut i = 0;
    while c.stats().evictions == 0 && i < 10_000 {
        c.set(&key(i), &[7u8; 20]).unwrap();
        i += 1;
    }
    let p = Peek::new(&w).unwrap();
    let cls = class(key(0).len(), 20);
    peek::store_u32(&w, p.class_field(0, cls, cl::LIVE), 0x7000_0000);
    peek::store_u32(&w, p.class_field(0, cls, cl::HOT), 0);
    // Damage must be survived: an error or a success, then repair.
    let _ = c.set(b"one more", &[8u8; 20]);
    c.repair().unwrap();
    c.validate().unwrap();
}

/// `ShardMem::partial_push` copies the class's partial-list head (a `u32` field) into
/// the page's `u16` next link without checking it is a page link; with a damaged head
/// the `debug_assert!` in `set_pg` fires ("page field overflow"). (Release builds
/// truncate the value instead.)
#[test]
fn partial_push_unchecked_head() {
    let w = common::region(16 << 10);
    let c = Cache::format(&w[..], &small_config()).unwrap();
    let p = Peek::new(&w).unwrap();
    let cls = class(4, 20);
    let n = p.nslots(cls);
    // Fill page 0 exactly: it leaves the partial list.
    for i in 0..n {
        c.set(&key(i), &[1u8; 20]).unwrap();
    }
    assert_eq!(p.page_class(&w, 0, 0), Some(cls));
    assert_eq!(load_pg(&w, &p, 0, pg::FLAGS) & 1, 0, "page 0 is full");
    peek::store_u32(&w, p.class_field(0, cls, cl::PARTIAL), 70_000);
    // Freeing a slot of the full page pushes it onto the (damaged) partial list.
    let _ = c.remove(&key(0));
    c.repair().unwrap();
    c.validate().unwrap();
}

fn load_pg(w: &[AtomicWord], p: &Peek, page: usize, f: usize) -> u16 {
    peek::load_u16(w, p.page_field(0, page, f))
}

/// `Locked::pop_free` loops until the class's partial-list head changes, relying on
/// `partial_remove` to unlink a full head page. `partial_remove` does nothing for a
/// page whose on-list flag is clear, so one flipped flag bit on the head page makes
/// the first allocation after that page fills up spin forever with the shard lock
/// held (and every later writer of the shard then waits for it).
#[test]
fn pop_free_hangs_on_damaged_partial_flag() {
    let w = leaked_region(16 << 10);
    let c = Cache::format(w, &small_config()).unwrap();
    let p = Peek::new(w).unwrap();
    let cls = class(4, 20);
    let n = p.nslots(cls);
    c.set(&key(0), &[1u8; 20]).unwrap();
    let flags = p.page_field(0, 0, pg::FLAGS);
    assert_eq!(
        peek::load_u16(w, flags) & 1,
        1,
        "page 0 heads the partial list"
    );
    peek::store_u16(w, flags, 0); // one bit of damage
    let done = within(5, move || {
        for i in 1..=n + 1 {
            let _ = c.set(&key(i), &[1u8; 20]);
        }
        c.repair().unwrap();
        c.validate().unwrap();
    });
    assert!(
        done.is_some(),
        "a write hung (pop_free spins on the damaged list)"
    );
}

/// `check` never looks at the partial list's previous-page links, so a damaged one
/// survives `check` and `repair`. `partial_remove` of the head page then updates the
/// named page instead of the list head, clears the page's flag, and `pop_free` spins
/// forever (as above) once the page is full: a region that `check` calls healthy
/// hangs its next writer.
#[test]
fn pop_free_hangs_after_clean_check_on_damaged_prev_link() {
    let w = leaked_region(16 << 10);
    let c = Cache::format(w, &small_config()).unwrap();
    let p = Peek::new(w).unwrap();
    let cls = class(4, 20);
    let n = p.nslots(cls);
    c.set(&key(0), &[1u8; 20]).unwrap();
    // Page 0 heads the partial list; point its previous link at page 5 (free).
    peek::store_u16(w, p.page_field(0, 0, pg::PREV_PARTIAL), 6);
    let problems = common::problems(&c).unwrap();
    let rep = c.repair().unwrap();
    let done = within(5, move || {
        for i in 1..=n + 1 {
            let _ = c.set(&key(i), &[1u8; 20]);
        }
        common::problems(&c).unwrap().len()
    });
    assert!(
        done.is_some(),
        "check found {} problem(s), repair rebuilt {} shard(s), then a write hung",
        problems.len(),
        rep.shards_rebuilt
    );
}

/// `check` walks each class's partial list from its head but never checks that every
/// page flagged as on the list is reachable from it. Zeroing one `u32` (a class's
/// partial-list head) while its only page has room therefore leaves a region that
/// `check` calls healthy and `repair` leaves alone, but in which that size class can
/// never allocate again: `pop_free` finds no page, `release` never re-pushes the page
/// (its flag is already set), and with no live entry to evict every write of that
/// size fails with `NoSpace`, for ever (until `clear`).
#[test]
fn unreachable_partial_page_blocks_class_forever() {
    let w = common::region(16 << 10);
    let c = Cache::format(&w[..], &small_config()).unwrap();
    let p = Peek::new(&w).unwrap();
    let cls = class(4, 20);
    // Fill every page with large entries, so that no page is free.
    let free_pages = p.shard(0) + 136;
    let mut i = 100;
    while peek::load_u32(&w, free_pages) > 0 && i < 10_000 {
        c.set(&key(i), &[2u8; 190]).unwrap();
        i += 1;
    }
    assert_eq!(peek::load_u32(&w, free_pages), 0);
    c.set(&key(0), &[1u8; 20]).unwrap();
    assert!(c.remove(&key(0)).unwrap());
    // The class keeps its page (with room, flagged as on the partial list).
    peek::store_u32(&w, p.class_field(0, cls, cl::PARTIAL), 0);
    let problems = common::problems(&c).unwrap();
    let rep = c.repair().unwrap();
    // However many times it is tried.
    let failures = (1..=200)
        .filter(|&i| c.set(&key(i), &[1u8; 20]).is_err())
        .count();
    assert_eq!(
        failures,
        0,
        "check found {} problem(s), repair rebuilt {} shard(s), then {failures} of 200 sets failed",
        problems.len(),
        rep.shards_rebuilt
    );
}

/// "Every hand step is bounded … no insert does unbounded work" (`docs/design.md`)
/// does not hold on a damaged region: `evict_any` walks with a budget of `u32::MAX`
/// slots and `hand_find` bounds its walk by the class record's page count, which is
/// trusted. With the slot states of a class damaged (so the cold hand finds nothing
/// and gives up to `evict_any`) and its page count damaged to a large number, one
/// write walks the class's pages for billions of slots with the shard lock held.
#[test]
fn evict_any_unbounded_on_damaged_page_count() {
    let w = leaked_region(16 << 10);
    let c = Cache::format(w, &small_config().max_entries(4)).unwrap();
    let p = Peek::new(w).unwrap();
    let cls = class(4, 190); // two slots per 512-byte page
    for i in 0..4 {
        c.set(&key(i), &[1u8; 190]).unwrap();
    }
    assert_eq!(p.page_class(w, 0, 0), Some(cls));
    assert_eq!(p.nslots(cls), 2);
    // Damage: the slot states of the class's two pages (after the reference bitmap)
    // read "free", and the class claims 0xF000_0000 pages.
    for page in 0..2 {
        let base = p.shard(0) + p.off_arena + page * p.page_size;
        peek::store_u32(w, base + p.refmap, 0);
    }
    peek::store_u32(w, p.class_field(0, cls, cl::PAGES), 0xF000_0000);
    let started = std::time::Instant::now();
    let secs = std::env::var("CACHEE_BUG_WAIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let done = within(secs, move || {
        let _ = c.set(&key(4), &[1u8; 190]);
    });
    assert!(
        done.is_some(),
        "one set did not finish in {:?} (evict_any walking the damaged class)",
        started.elapsed()
    );
}

/// `Config::bytes_for(n, k, v)` promises "the smallest region size with which this
/// configuration holds at least `n` entries … counting both arena slots and index
/// slots", and `capacity()` of such a region reports more than `n`. But with one shard
/// and sequential keys, storing `n` entries into it evicts some: near 80% index load a
/// key's 16-bucket probe window is sometimes full, and the insert evicts from the
/// home bucket (design: index sized for 85% load). Either `bytes_for` should leave
/// room for probe clustering or its documentation should not promise `n` resident
/// entries.
#[test]
fn bytes_for_region_evicts_before_n_entries() {
    let cfg = Config::new()
        .max_key_len(100)
        .max_value_len(1000)
        .seed(1_242_805_944_256_981_512)
        .max_entries(1242)
        .expected_entry(30, 242);
    let n = 1178;
    let size = cfg.bytes_for(n, 30, 242).unwrap();
    let w = common::region(size);
    let c = Cache::format(&w[..], &cfg).unwrap();
    assert_eq!(c.shards(), 1);
    assert!(c.capacity() as u64 >= n);
    for i in 0..n {
        c.set(format!("{i:030}").as_bytes(), &[7u8; 242]).unwrap();
    }
    let s = c.stats();
    assert_eq!(
        (s.evictions, c.len() as u64),
        (0, n),
        "{size}-byte region from bytes_for({n}), capacity() = {}",
        c.capacity()
    );
}

/// Hooks with a settable clock.
#[derive(Debug)]
struct Clock(std::sync::atomic::AtomicU64);
impl cachee_core::Hooks for Clock {
    fn now(&self) -> Option<u64> {
        Some(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// An expired entry is a miss (`get` returns `None`, `contains` false), except when
/// the caller's buffer is too small for its value: then `get`, `get_entry` and
/// `get_with` fail with `BufferTooSmall` (the read path returns `TooSmall` before it
/// looks at the expiry). A caller that grows its buffer and retries then gets `None`,
/// so no wrong value is returned, but the error reveals a dead entry and costs a
/// retry; `get_vec` with a value over 256 bytes always takes that detour.
#[test]
fn expired_entry_reports_buffer_too_small() {
    let w = common::region(16 << 10);
    let c = Cache::format_with_hooks(
        &w[..],
        &small_config(),
        Clock(std::sync::atomic::AtomicU64::new(100)),
    )
    .unwrap();
    c.set_ttl(b"k", &[1u8; 50], 10).unwrap();
    c.hooks().0.store(200, std::sync::atomic::Ordering::SeqCst);
    assert!(!c.contains(b"k").unwrap(), "expired");
    assert_eq!(c.get(b"k", &mut [0u8; 64]).unwrap(), None);
    assert_eq!(c.get(b"k", &mut [0u8; 8]), Ok(None), "small buffer");
    assert_eq!(c.get_with::<8, usize>(b"k", |v| v.len()), Ok(None));
}

/// `note_eviction` adds one to the shard's "evictions since decay" counter, a `u32`
/// read from the region, with `+`: a damaged counter at `u32::MAX` panics with
/// "attempt to add with overflow" in builds with overflow checks (test and fuzz
/// profiles; release wraps). Found by libFuzzer (`hostile_bytes`, 0xFF bytes over a
/// shard header).
#[test]
fn note_eviction_overflow_on_damaged_counter() {
    let w = common::region(16 << 10);
    let c = Cache::format(&w[..], &small_config()).unwrap();
    let mut i = 0;
    while c.stats().evictions == 0 && i < 10_000 {
        c.set(&key(i), &[7u8; 20]).unwrap();
        i += 1;
    }
    let p = Peek::new(&w).unwrap();
    // Writer state: evictions since decay at +144 (docs/format.md).
    peek::store_u32(&w, p.shard(0) + 144, u32::MAX);
    for j in 0..50 {
        let _ = c.set(&key(i + j), &[8u8; 20]);
    }
    c.repair().unwrap();
    c.validate().unwrap();
}

/// `time_to_rebalance` adds one to the class's "evictions since the last rebalancing
/// check" (a `u32` from the region) with `+`: the same overflow panic with a damaged
/// value. Found by reading the code after the previous one.
#[test]
fn time_to_rebalance_overflow_on_damaged_counter() {
    let w = common::region(16 << 10);
    let c = Cache::format(&w[..], &small_config()).unwrap();
    // Fill every page with large entries, so that allocations of their class go
    // through the rebalancing check.
    let free_pages = Peek::new(&w).unwrap().shard(0) + 136;
    let mut i = 0;
    while peek::load_u32(&w, free_pages) > 0 && i < 10_000 {
        c.set(&key(i), &[2u8; 190]).unwrap();
        i += 1;
    }
    assert_eq!(peek::load_u32(&w, free_pages), 0);
    let p = Peek::new(&w).unwrap();
    let cls = class(4, 190);
    // Class record: evictions since the last rebalancing check at +44.
    peek::store_u32(&w, p.class_field(0, cls, 44), u32::MAX);
    for j in 0..50 {
        let _ = c.set(&key(i + j), &[8u8; 190]);
    }
    c.repair().unwrap();
    c.validate().unwrap();
}
