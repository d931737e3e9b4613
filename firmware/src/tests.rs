//! The firmware tests: cachee-core driven on the static [`REGION`] (64 KiB of
//! `AtomicU32` words in .bss) and in a `StaticCache`, on a Cortex-M4 with no
//! heap and no 64-bit atomics. `memory_layout` is the harness self-check (keep
//! it, first).
//!
//! A test is a `fn() -> Result<(), &'static str>` (use `ensure!`,
//! `ensure_eq!`, or `?` after [`OrFail::or_fail`]); list it in [`TESTS`],
//! which runs in order. Every test formats `REGION` afresh, so the order only
//! matters for `memory_layout`, which needs `REGION` still zeroed.
//!
//! Buffers live on the stack, so the caches are configured with small limits
//! ([`MAX_KEY`], [`MAX_VALUE`]).
//!
//! The last three tests are regressions for cachee-core bugs first seen on
//! this target (32-bit words, small regions); see the comments on each.

use core::fmt::Debug;
use core::ops::ControlFlow;

use cachee_core::{
    AtomicWord, Cache, CasOutcome, CasToken, Config, Error, Hooks, NoHooks, Region, StaticCache,
    TypedCache, WORD_BYTES, words_for,
};
use cortex_m_semihosting::hprintln;

use crate::clock::FakeClock;
use crate::harness::Test;
use crate::region::{REGION, REGION_BYTES};
use crate::selfcheck::memory_layout;
use crate::{ensure, ensure_eq, tests};

pub static TESTS: &[Test] = tests![
    memory_layout,
    word_is_32_bits,
    format_static_region,
    set_get_overwrite_remove,
    get_with_and_entry,
    add_and_replace,
    cas_tokens,
    incr_and_decr,
    error_cases,
    no_clock_without_hooks,
    ttl_with_fake_clock,
    eviction_keeps_len_bounded,
    eviction_index_limited,
    typed_cache_u32_to_12_bytes,
    static_cache_in_a_static,
    clear_empties_the_cache,
    for_each_counts_entries,
    attach_to_formatted_region,
    short_key_in_reused_slot,
    small_region_validates,
    reformat_forgets_old_entries,
];

// --- helpers -------------------------------------------------------------------

/// Longest key the byte caches accept.
const MAX_KEY: usize = 64;
/// Longest value the byte caches accept (get buffers are this big, on the stack).
const MAX_VALUE: usize = 256;

type ByteCache<H = NoHooks> = Cache<&'static [AtomicWord], H>;

fn config() -> Config {
    Config::new().max_key_len(MAX_KEY).max_value_len(MAX_VALUE)
}

/// Turns a cachee `Result` into a test `Result`, printing the error.
trait OrFail<T> {
    fn or_fail(self, why: &'static str) -> Result<T, &'static str>;
}

impl<T, E: Debug> OrFail<T> for Result<T, E> {
    fn or_fail(self, why: &'static str) -> Result<T, &'static str> {
        self.map_err(|e| {
            hprintln!("    {}: {:?}", why, e);
            why
        })
    }
}

/// Zeroes `REGION`, so that every test starts from the state the runtime
/// leaves at boot and no test depends on what an earlier one left behind.
/// (Formatting a region that still holds old entries is tested on purpose, in
/// `reformat_forgets_old_entries`.)
fn wipe() -> &'static [AtomicWord] {
    for w in REGION.words() {
        w.store(0, core::sync::atomic::Ordering::Relaxed);
    }
    REGION.words()
}

/// Wipes and formats `REGION`.
fn format(cfg: &Config) -> Result<ByteCache, &'static str> {
    Cache::format(wipe(), cfg).or_fail("format REGION")
}

/// Wipes and formats `REGION` with hooks.
fn format_with<H: Hooks>(cfg: &Config, hooks: H) -> Result<ByteCache<H>, &'static str> {
    Cache::format_with_hooks(wipe(), cfg, hooks).or_fail("format REGION with hooks")
}

/// Runs the cache's full invariant check, printing the first problem.
fn valid<R: Region, H: Hooks>(c: &Cache<R, H>) -> Result<(), &'static str> {
    c.validate().or_fail("validate() found a broken invariant")
}

/// An 8-byte key for item `i`.
fn key(i: u32) -> [u8; 8] {
    let mut k = *b"key:\0\0\0\0";
    k[4..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Fills `buf` with the value of item `i` (a pattern that depends on `i`).
fn fill(i: u32, buf: &mut [u8]) -> &[u8] {
    for (j, b) in buf.iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) as usize + j) as u8;
    }
    buf
}

/// Reads `key` and compares it with `want` (`None`: must be absent).
fn expect<H: Hooks>(c: &ByteCache<H>, k: &[u8], want: Option<&[u8]>) -> Result<(), &'static str> {
    let mut out = [0u8; MAX_VALUE];
    let got = c.get(k, &mut out).or_fail("get")?;
    match (got, want) {
        (None, None) => Ok(()),
        (Some(n), Some(w)) if &out[..n] == w => Ok(()),
        (got, want) => {
            hprintln!(
                "    key {:?}: got {:?}, want {:?}",
                k,
                got.map(|n| &out[..n]),
                want
            );
            Err("get returned the wrong value")
        }
    }
}

/// Hooks with a clock: the fake tick source, widened to the `u64` ticks cachee uses.
struct Ticks(&'static FakeClock);

impl Hooks for Ticks {
    fn now(&self) -> Option<u64> {
        Some(u64::from(self.0.now()))
    }
}

// --- tests ---------------------------------------------------------------------

/// cachee-core picked 32-bit words: the target has no 64-bit atomics.
fn word_is_32_bits() -> Result<(), &'static str> {
    ensure!(
        !cfg!(target_has_atomic = "64"),
        "unexpected 64-bit atomics: is this really thumbv7em?"
    );
    ensure_eq!(WORD_BYTES, 4, "AtomicWord is not 32 bits");
    ensure_eq!(core::mem::size_of::<AtomicWord>(), 4, "size_of AtomicWord");
    Ok(())
}

/// Formatting the static region: limits, size, capacity, an empty valid cache;
/// a region that is too small is refused.
fn format_static_region() -> Result<(), &'static str> {
    let c = format(&config())?;
    ensure_eq!(c.max_key_len(), MAX_KEY, "max_key_len");
    ensure_eq!(c.max_value_len(), MAX_VALUE, "max_value_len");
    ensure!(c.shards() >= 1, "no shards");
    ensure!(
        c.region_bytes() <= REGION_BYTES,
        "uses more than the region"
    );
    ensure!(
        c.region_bytes() >= REGION_BYTES / 2,
        "uses less than half the region"
    );
    ensure!(c.is_empty(), "fresh cache not empty");
    let f = c.footprint(8, 100);
    hprintln!(
        "    {} B used of {}, {} shard(s), capacity {} (8+16 B: {}, 8+100 B: {}, {} B/entry)",
        c.region_bytes(),
        REGION_BYTES,
        c.shards(),
        c.capacity(),
        c.capacity_for(8, 16),
        c.capacity_for(8, 100),
        f.total as u32
    );
    hprintln!(
        "    a Cache handle is {} B (on the stack wherever one is made)",
        core::mem::size_of::<ByteCache>()
    );
    ensure!(
        c.capacity_for(8, 16) >= c.capacity_for(8, 200),
        "capacity_for not monotone"
    );
    ensure!(
        c.capacity_for(8, 100) > 100,
        "fewer than 100 entries of 8+100 bytes fit"
    );
    ensure!(f.entries > 0, "footprint: no entries fit");
    ensure!(
        f.total as u32 >= 108,
        "footprint: less than the payload per entry"
    );
    // Entries of the configured `expected_entry` size (the default, 16 + 240
    // bytes) do fit, so `capacity()` must not say zero.
    ensure!(c.capacity_for(16, 240) > 0, "no 16+240-byte entry fits");
    ensure!(c.capacity() > 0, "capacity() is zero although entries fit");
    ensure_eq!(c.stats().entries, 0, "stats().entries");
    valid(&c)?;

    let tiny = Cache::format(&REGION.words()[..64], &config());
    ensure!(
        matches!(tiny, Err(Error::RegionTooSmall { .. })),
        "256-byte region accepted"
    );
    Ok(())
}

/// set/get, overwrite with values of other sizes (other size classes), remove,
/// contains, and the hit/miss/insert/update/remove counters.
fn set_get_overwrite_remove() -> Result<(), &'static str> {
    let c = format(&config())?;
    let mut big = [0u8; 200];
    let big = fill(7, &mut big);

    expect(&c, b"sensor:1", None)?;
    c.set(b"sensor:1", b"21.5C").or_fail("set")?;
    expect(&c, b"sensor:1", Some(b"21.5C"))?;
    ensure!(
        c.contains(b"sensor:1").or_fail("contains")?,
        "contains after set"
    );
    ensure_eq!(c.len(), 1, "len after set");

    c.set(b"sensor:1", big).or_fail("overwrite, larger")?;
    expect(&c, b"sensor:1", Some(big))?;
    c.set(b"sensor:1", b"x").or_fail("overwrite, smaller")?;
    expect(&c, b"sensor:1", Some(b"x"))?;
    c.set(b"sensor:1", b"").or_fail("overwrite, empty value")?;
    expect(&c, b"sensor:1", Some(b""))?;
    c.set(b"sensor:1", b"y").or_fail("overwrite, same size")?;
    expect(&c, b"sensor:1", Some(b"y"))?;
    ensure_eq!(c.len(), 1, "overwrites changed len");

    c.set(b"sensor:2", b"22.0C").or_fail("set second")?;
    ensure_eq!(c.len(), 2, "len with two keys");
    ensure!(
        c.remove(b"sensor:1").or_fail("remove")?,
        "remove of present key"
    );
    ensure!(
        !c.remove(b"sensor:1").or_fail("remove again")?,
        "second remove"
    );
    ensure!(
        !c.contains(b"sensor:1").or_fail("contains")?,
        "contains after remove"
    );
    expect(&c, b"sensor:1", None)?;
    expect(&c, b"sensor:2", Some(b"22.0C"))?;
    ensure_eq!(c.len(), 1, "len after remove");

    let s = c.stats();
    ensure_eq!(s.inserts, 2, "stats.inserts");
    ensure_eq!(s.updates, 4, "stats.updates");
    ensure_eq!(s.removes, 1, "stats.removes");
    ensure_eq!(s.entries, 1, "stats.entries");
    ensure!(s.hits >= 7 && s.misses >= 3, "hits/misses not counted");
    ensure_eq!(s.evictions + s.rejected, 0, "evictions/rejections");
    valid(&c)
}

/// `get_with` (a fixed stack buffer) and `get_entry` (token and expiry).
fn get_with_and_entry() -> Result<(), &'static str> {
    let c = format(&config())?;
    c.set(b"k", b"hello").or_fail("set")?;
    let n = c.get_with::<16, _>(b"k", |v| v.len()).or_fail("get_with")?;
    ensure_eq!(n, Some(5), "get_with length");
    let first = c.get_with::<16, _>(b"k", |v| v[0]).or_fail("get_with")?;
    ensure_eq!(first, Some(b'h'), "get_with content");
    ensure_eq!(
        c.get_with::<4, _>(b"k", |v| v.len()),
        Err(Error::BufferTooSmall { needed: 5 }),
        "get_with into a 4-byte buffer"
    );
    ensure_eq!(
        c.get_with::<16, _>(b"absent", |v| v.len()),
        Ok(None),
        "get_with miss"
    );
    let mut out = [0u8; 16];
    let hit = c.get_entry(b"k", &mut out).or_fail("get_entry")?;
    let hit = hit.ok_or("get_entry missed")?;
    ensure_eq!(hit.len, 5, "Hit.len");
    ensure_eq!(hit.expires_at, None, "Hit.expires_at without TTL");
    ensure_eq!(&out[..5], b"hello", "get_entry content");
    Ok(())
}

/// add stores only absent keys, replace only present ones.
fn add_and_replace() -> Result<(), &'static str> {
    let c = format(&config())?;
    ensure!(
        !c.replace(b"k", b"v0", None).or_fail("replace")?,
        "replace of absent key"
    );
    expect(&c, b"k", None)?;
    ensure!(
        c.add(b"k", b"v1", None).or_fail("add")?,
        "add of absent key"
    );
    expect(&c, b"k", Some(b"v1"))?;
    ensure!(
        !c.add(b"k", b"v2", None).or_fail("add")?,
        "add of present key"
    );
    expect(&c, b"k", Some(b"v1"))?;
    ensure!(
        c.replace(b"k", b"v3-longer", None).or_fail("replace")?,
        "replace of present key"
    );
    expect(&c, b"k", Some(b"v3-longer"))?;
    ensure!(c.remove(b"k").or_fail("remove")?, "remove");
    ensure!(c.add(b"k", b"v4", None).or_fail("add")?, "add after remove");
    expect(&c, b"k", Some(b"v4"))?;
    ensure_eq!(c.len(), 1, "len");
    valid(&c)
}

/// cas succeeds with the token of the current version only.
fn cas_tokens() -> Result<(), &'static str> {
    let c = format(&config())?;
    let mut out = [0u8; MAX_VALUE];
    c.set(b"cfg", b"v1").or_fail("set")?;
    let t1 = c
        .get_entry(b"cfg", &mut out)
        .or_fail("get_entry")?
        .ok_or("miss")?
        .token;
    ensure_eq!(CasToken::from_u64(t1.to_u64()), t1, "token u64 round trip");

    ensure_eq!(
        c.cas(b"cfg", t1, b"v2", None).or_fail("cas")?,
        CasOutcome::Stored,
        "cas with current token"
    );
    expect(&c, b"cfg", Some(b"v2"))?;
    ensure_eq!(
        c.cas(b"cfg", t1, b"v3", None).or_fail("cas")?,
        CasOutcome::Mismatch,
        "cas with stale token"
    );
    expect(&c, b"cfg", Some(b"v2"))?;

    // A plain set in between invalidates the token too (also across size classes).
    let t2 = c
        .get_entry(b"cfg", &mut out)
        .or_fail("get_entry")?
        .ok_or("miss")?
        .token;
    ensure!(t2 != t1, "token did not change with the value");
    c.set(b"cfg", &[9u8; 100]).or_fail("set")?;
    ensure_eq!(
        c.cas(b"cfg", t2, b"v4", None).or_fail("cas")?,
        CasOutcome::Mismatch,
        "cas after an intervening set"
    );
    let t3 = c
        .get_entry(b"cfg", &mut out)
        .or_fail("get_entry")?
        .ok_or("miss")?
        .token;
    ensure_eq!(
        c.cas(b"cfg", t3, b"v5", None).or_fail("cas")?,
        CasOutcome::Stored,
        "cas into another size class"
    );
    expect(&c, b"cfg", Some(b"v5"))?;

    ensure!(c.remove(b"cfg").or_fail("remove")?, "remove");
    ensure_eq!(
        c.cas(b"cfg", t3, b"v6", None).or_fail("cas")?,
        CasOutcome::NotFound,
        "cas of a removed key"
    );
    expect(&c, b"cfg", None)?;
    valid(&c)
}

/// incr/decr on decimal text values: init, wrap at 2^64, stop at zero, NotANumber.
fn incr_and_decr() -> Result<(), &'static str> {
    let c = format(&config())?;
    ensure_eq!(
        c.incr(b"n", 1, None),
        Ok(None),
        "incr of absent key without init"
    );
    expect(&c, b"n", None)?;
    ensure_eq!(c.incr(b"n", 1, Some(10)), Ok(Some(10)), "incr with init");
    expect(&c, b"n", Some(b"10"))?;
    ensure_eq!(c.incr(b"n", 5, None), Ok(Some(15)), "incr");
    ensure_eq!(
        c.incr(b"n", 990, None),
        Ok(Some(1005)),
        "incr to four digits"
    );
    expect(&c, b"n", Some(b"1005"))?;
    ensure_eq!(c.decr(b"n", 6, None), Ok(Some(999)), "decr to three digits");
    expect(&c, b"n", Some(b"999"))?;
    ensure_eq!(c.decr(b"n", 5000, None), Ok(Some(0)), "decr stops at zero");
    expect(&c, b"n", Some(b"0"))?;
    ensure_eq!(c.decr(b"d", 1, Some(3)), Ok(Some(3)), "decr with init");

    c.set(b"big", b"18446744073709551615")
        .or_fail("set u64::MAX")?;
    ensure_eq!(c.incr(b"big", 2, None), Ok(Some(1)), "incr wraps at 2^64");
    expect(&c, b"big", Some(b"1"))?;
    c.set(b"text", b"12a").or_fail("set")?;
    ensure_eq!(
        c.incr(b"text", 1, None),
        Err(Error::NotANumber),
        "incr of text"
    );
    c.set(b"empty", b"").or_fail("set")?;
    ensure_eq!(
        c.incr(b"empty", 1, None),
        Err(Error::NotANumber),
        "incr of empty"
    );
    c.set(b"huge", b"99999999999999999999").or_fail("set")?;
    ensure_eq!(
        c.incr(b"huge", 1, None),
        Err(Error::NotANumber),
        "incr past u64"
    );
    expect(&c, b"text", Some(b"12a"))?;
    valid(&c)
}

/// Argument errors, and that a failed write leaves the old value.
fn error_cases() -> Result<(), &'static str> {
    let c = format(&config().max_key_len(16))?;
    let mut out = [0u8; MAX_VALUE];
    let long_key = [b'k'; 17];
    let big = [0u8; MAX_VALUE + 1];

    ensure_eq!(c.set(b"", b"v"), Err(Error::EmptyKey), "set with empty key");
    ensure_eq!(
        c.get(b"", &mut out),
        Err(Error::EmptyKey),
        "get with empty key"
    );
    ensure_eq!(c.remove(b""), Err(Error::EmptyKey), "remove with empty key");
    ensure_eq!(
        c.set(&long_key, b"v"),
        Err(Error::KeyTooLong { len: 17, max: 16 }),
        "set with key too long"
    );
    ensure_eq!(
        c.get(&long_key, &mut out),
        Err(Error::KeyTooLong { len: 17, max: 16 }),
        "get with key too long"
    );
    c.set(&long_key[..16], b"max-length key")
        .or_fail("set with a 16-byte key")?;
    expect(&c, &long_key[..16], Some(b"max-length key"))?;

    c.set(b"k", b"old").or_fail("set")?;
    ensure_eq!(
        c.set(b"k", &big),
        Err(Error::ValueTooLarge {
            len: MAX_VALUE + 1,
            max: MAX_VALUE
        }),
        "set with value too large"
    );
    expect(&c, b"k", Some(b"old"))?;
    c.set(b"k", &big[..MAX_VALUE])
        .or_fail("set a value of the maximum size")?;
    expect(&c, b"k", Some(&big[..MAX_VALUE]))?;

    c.set(b"k", b"twelve bytes").or_fail("set")?;
    let mut small = [0u8; 4];
    ensure_eq!(
        c.get(b"k", &mut small),
        Err(Error::BufferTooSmall { needed: 12 }),
        "get into a small buffer"
    );
    ensure_eq!(small, [0u8; 4], "a failed get copied something");
    ensure_eq!(
        c.get_entry(b"k", &mut small),
        Err(Error::BufferTooSmall { needed: 12 }),
        "get_entry into a small buffer"
    );
    ensure_eq!(
        c.get(b"k", &mut small[..0]),
        Err(Error::BufferTooSmall { needed: 12 }),
        "get into an empty buffer"
    );
    ensure_eq!(
        c.get(b"absent", &mut small[..0]),
        Ok(None),
        "miss into an empty buffer"
    );
    expect(&c, b"k", Some(b"twelve bytes"))?;
    valid(&c)
}

/// Without clock hooks, every TTL operation fails with NoClock and changes nothing.
fn no_clock_without_hooks() -> Result<(), &'static str> {
    let c = format(&config())?;
    ensure_eq!(c.set_ttl(b"k", b"v", 10), Err(Error::NoClock), "set_ttl");
    ensure_eq!(
        c.add(b"k", b"v", Some(10)),
        Err(Error::NoClock),
        "add with ttl"
    );
    expect(&c, b"k", None)?;
    c.set(b"k", b"v").or_fail("set")?;
    ensure_eq!(
        c.replace(b"k", b"w", Some(10)),
        Err(Error::NoClock),
        "replace with ttl"
    );
    let mut out = [0u8; 8];
    let t = c
        .get_entry(b"k", &mut out)
        .or_fail("get_entry")?
        .ok_or("miss")?
        .token;
    ensure_eq!(
        c.cas(b"k", t, b"w", Some(10)),
        Err(Error::NoClock),
        "cas with ttl"
    );
    expect(&c, b"k", Some(b"v"))?;

    let t = TypedCache::<u32, u32, _>::format(wipe(), Config::new(), NoHooks)
        .or_fail("typed format")?;
    ensure_eq!(
        t.insert_ttl(&1, &2, 5),
        Err(Error::NoClock),
        "typed insert_ttl"
    );
    ensure_eq!(t.get(&1), Ok(None), "typed get after failed insert_ttl");
    Ok(())
}

/// TTLs with a fake tick source: entries expire exactly at `now + ttl`.
fn ttl_with_fake_clock() -> Result<(), &'static str> {
    static CLOCK: FakeClock = FakeClock::new(1_000);
    let c = format_with(&config(), Ticks(&CLOCK))?;
    let mut out = [0u8; MAX_VALUE];

    ensure_eq!(c.set_ttl(b"k", b"v", 0), Err(Error::InvalidTtl), "zero TTL");
    ensure_eq!(
        c.set_ttl(b"k", b"v", u64::MAX),
        Err(Error::InvalidTtl),
        "overflowing TTL"
    );

    let t0 = u64::from(CLOCK.now());
    c.set_ttl(b"session", b"token", 10).or_fail("set_ttl")?;
    c.set(b"forever", b"value").or_fail("set")?;
    ensure!(
        c.add(b"short", b"s", Some(3)).or_fail("add with ttl")?,
        "add with ttl"
    );
    let hit = c
        .get_entry(b"session", &mut out)
        .or_fail("get_entry")?
        .ok_or("miss")?;
    ensure_eq!(hit.expires_at, Some(t0 + 10), "expires_at");

    CLOCK.advance(3);
    expect(&c, b"short", None)?;
    ensure!(
        !c.contains(b"short").or_fail("contains")?,
        "short-TTL entry still there"
    );
    ensure!(
        c.add(b"short", b"again", None).or_fail("add")?,
        "add over an expired entry"
    );
    expect(&c, b"short", Some(b"again"))?;

    CLOCK.advance(6); // t0 + 9: one tick before expiry
    expect(&c, b"session", Some(b"token"))?;
    // incr keeps the entry's TTL.
    c.set_ttl(b"ctr", b"5", 2).or_fail("set_ttl ctr")?;
    ensure_eq!(c.incr(b"ctr", 1, None), Ok(Some(6)), "incr of a TTL entry");

    CLOCK.advance(1); // t0 + 10: expired
    expect(&c, b"session", None)?;
    ensure!(
        !c.contains(b"session").or_fail("contains")?,
        "expired entry contained"
    );
    ensure!(
        !c.remove(b"session").or_fail("remove")?,
        "remove of an expired entry"
    );
    expect(&c, b"forever", Some(b"value"))?;
    expect(&c, b"ctr", Some(b"6"))?;
    CLOCK.advance(1);
    expect(&c, b"ctr", None)?;
    ensure_eq!(c.incr(b"ctr", 1, None), Ok(None), "incr of an expired key");

    // A plain set drops the TTL.
    c.set_ttl(b"k", b"v", 5).or_fail("set_ttl")?;
    c.set(b"k", b"w").or_fail("set")?;
    CLOCK.advance(100);
    expect(&c, b"k", Some(b"w"))?;

    // for_each skips expired entries.
    c.set_ttl(b"gone-soon", b"x", 1).or_fail("set_ttl")?;
    CLOCK.advance(1);
    let (mut kb, mut vb) = ([0u8; MAX_KEY], [0u8; MAX_VALUE]);
    let mut seen = 0;
    c.for_each(&mut kb, &mut vb, |k, _| {
        if k == b"gone-soon" {
            seen += 1;
        }
        ControlFlow::Continue(())
    })
    .or_fail("for_each")?;
    ensure_eq!(seen, 0, "for_each saw an expired entry");

    let s = c.stats();
    ensure!(s.expirations >= 3, "expirations not counted");
    hprintln!("    {:?}", s);
    valid(&c)
}

/// Far more entries than fit (arena-limited: the index is sized for these
/// entries): len stays bounded, every write is accounted for as resident or
/// evicted, recent keys are still there, everything read back is intact.
fn eviction_keeps_len_bounded() -> Result<(), &'static str> {
    const N: u32 = 3_000;
    const VLEN: usize = 100;
    let c = format(&config().expected_entry(8, VLEN))?;
    let cap = c.capacity_for(8, VLEN);
    ensure!(cap > 0 && (cap as u32) < N / 4, "test needs N >> capacity");
    let mut v = [0u8; VLEN];
    // A key that is read often must survive (S3-FIFO promotes it to the main set).
    // It has the others' size: a hot entry alone in its size class is evicted
    // with its page when the page is handed to the majority class, however
    // often it is read (a property of page rebalancing, not tested here).
    let hot = [0x5a; VLEN];
    c.set(b"hot", &hot).or_fail("set hot")?;
    let mut max_len = 0;
    for i in 0..N {
        c.set(&key(i), fill(i, &mut v)).or_fail("set during fill")?;
        max_len = max_len.max(c.len());
        if i % 16 == 0 {
            expect(&c, b"hot", Some(&hot))?;
        }
    }
    let s = c.stats();
    hprintln!(
        "    {} writes, capacity_for(8,{}) = {}, len = {} (max {}), {:?}",
        N + 1,
        VLEN,
        cap,
        c.len(),
        max_len,
        s
    );
    ensure!(max_len <= cap, "len() exceeded capacity_for()");
    ensure!(
        c.len() * (8 + VLEN) <= REGION_BYTES,
        "more payload than region bytes"
    );
    ensure!(c.len() >= cap / 2, "less than half the capacity in use");
    ensure_eq!(s.entries, c.len() as u64, "stats.entries != len");
    ensure_eq!(s.rejected, 0, "writes rejected");
    ensure_eq!(s.inserts, u64::from(N) + 1, "stats.inserts");
    ensure_eq!(
        s.inserts - s.evictions,
        c.len() as u64,
        "inserts - evictions != len"
    );
    // The most recent writes are all there (probation is FIFO).
    for i in N - 16..N {
        expect(&c, &key(i), Some(fill(i, &mut v)))?;
    }
    expect(&c, b"hot", Some(&hot))?;
    // Whatever survived is intact.
    let mut resident = 0u32;
    for i in 0..N {
        let mut out = [0u8; MAX_VALUE];
        if let Some(n) = c.get(&key(i), &mut out).or_fail("get")? {
            ensure!(&out[..n] == fill(i, &mut v), "a surviving entry is corrupt");
            resident += 1;
        }
    }
    ensure_eq!(resident as usize + 1, c.len(), "resident keys != len");
    valid(&c)
}

/// Far more entries than the index was sized for (tiny entries, default
/// expected entry size): evictions free index slots, len stays bounded, the
/// checker is happy.
fn eviction_index_limited() -> Result<(), &'static str> {
    const N: u32 = 4_000;
    let c = format(&config())?;
    for i in 0..N {
        c.set(&key(i), &i.to_le_bytes())
            .or_fail("set during fill")?;
    }
    let s = c.stats();
    hprintln!(
        "    {} writes: len = {}, capacity() = {}, {:?}",
        N,
        c.len(),
        c.capacity(),
        s
    );
    ensure!(s.evictions > 0, "no evictions");
    ensure!(c.len() < N as usize / 2, "len not bounded");
    ensure_eq!(
        s.inserts - s.evictions,
        c.len() as u64,
        "inserts - evictions != len"
    );
    ensure_eq!(s.rejected, 0, "writes rejected");
    let mut resident = 0;
    let mut out = [0u8; 8];
    for i in 0..N {
        if let Some(n) = c.get(&key(i), &mut out).or_fail("get")? {
            ensure_eq!(
                &out[..n],
                &i.to_le_bytes()[..],
                "a surviving entry is corrupt"
            );
            resident += 1;
        }
    }
    ensure_eq!(resident, c.len(), "resident keys != len");
    expect(&c, &key(N - 1), Some(&(N - 1).to_le_bytes()))?;
    valid(&c)
}

/// `TypedCache<u32, [u8; 12]>` over the static region.
fn typed_cache_u32_to_12_bytes() -> Result<(), &'static str> {
    type T = TypedCache<u32, [u8; 12], &'static [AtomicWord]>;
    let c = T::format(wipe(), Config::new(), NoHooks).or_fail("typed format")?;
    ensure_eq!(c.inner().max_key_len(), 4, "typed max key");
    ensure_eq!(c.inner().max_value_len(), 12, "typed max value");
    let cap = c.capacity();
    hprintln!("    capacity {} entries of u32 -> [u8; 12]", cap);
    ensure!(cap > 1_000, "implausibly small typed capacity");

    ensure_eq!(c.get(&1), Ok(None), "get before insert");
    c.insert(&1, b"hello world!").or_fail("insert")?;
    ensure_eq!(c.get(&1), Ok(Some(*b"hello world!")), "get after insert");
    ensure!(!c.add(&1, &[0; 12]).or_fail("add")?, "add of present key");
    ensure!(c.add(&2, &[2; 12]).or_fail("add")?, "add of absent key");
    ensure!(c.contains(&2).or_fail("contains")?, "contains");
    ensure!(c.remove(&2).or_fail("remove")?, "remove");
    ensure_eq!(c.get(&2), Ok(None), "get after remove");

    // Fill to capacity: with the index sized for exactly these entries, nothing
    // is evicted before capacity.
    let n = cap as u32;
    for i in 0..n {
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&i.to_le_bytes());
        v[4..8].copy_from_slice(&(!i).to_le_bytes());
        c.insert(&i, &v).or_fail("insert during fill")?;
    }
    ensure_eq!(c.len(), cap, "len after filling to capacity");
    ensure_eq!(c.stats().evictions, 0, "evictions before capacity");
    for i in 0..n {
        let v = c
            .get(&i)
            .or_fail("get")?
            .ok_or("entry missing after fill")?;
        ensure_eq!(v[..4], i.to_le_bytes(), "typed value corrupt");
        ensure_eq!(v[4..8], (!i).to_le_bytes(), "typed value corrupt");
    }
    valid(c.inner())?;

    // Attaching with other types is refused.
    ensure!(
        matches!(
            TypedCache::<u32, [u8; 16], _>::attach(REGION.words(), NoHooks),
            Err(Error::InvalidConfig(_))
        ),
        "attach with other value type accepted"
    );
    let again = TypedCache::<u32, [u8; 12], _>::attach(REGION.words(), NoHooks)
        .or_fail("attach with the same types")?;
    ensure_eq!(
        again.get(&1),
        Ok(Some(c.get(&1).or_fail("get")?.ok_or("miss")?)),
        "attach view"
    );
    c.clear().or_fail("clear")?;
    ensure!(c.is_empty(), "clear");
    Ok(())
}

/// A whole cache (region included) in a `static`, formatted on first use.
fn static_cache_in_a_static() -> Result<(), &'static str> {
    static CACHE_REGION: [AtomicWord; words_for(8 * 1024)] = cachee_core::zeroed_words();
    static CACHE: StaticCache<u32, [u8; 12]> =
        StaticCache::new(&CACHE_REGION, Config::new(), NoHooks);
    static TINY: [AtomicWord; words_for(64)] = cachee_core::zeroed_words();
    static TOO_SMALL: StaticCache<u32, [u8; 12]> = StaticCache::new(&TINY, Config::new(), NoHooks);

    let c = CACHE.cache().or_fail("first cache()")?;
    let c2 = CACHE.cache().or_fail("second cache()")?;
    ensure!(core::ptr::eq(c, c2), "cache() formatted twice");
    ensure_eq!(c.inner().region_bytes() <= 8 * 1024, true, "region bytes");
    c.insert(&42, b"static cache").or_fail("insert")?;
    ensure_eq!(
        c2.get(&42),
        Ok(Some(*b"static cache")),
        "get via second handle"
    );
    let cap = c.capacity() as u32;
    let f = c.inner().footprint(4, 12);
    hprintln!(
        "    8 KiB StaticCache<u32, [u8; 12]>: {} B used, capacity {}, footprint {} B/entry (index {}, bookkeeping {}, rounding {})",
        c.inner().region_bytes(),
        cap,
        f.total as u32,
        f.index as u32,
        f.bookkeeping as u32,
        f.rounding as u32
    );
    ensure!(cap >= 50, "implausibly small capacity");
    for i in 0..cap * 3 {
        c.insert(&i, &[i as u8; 12]).or_fail("insert during fill")?;
    }
    ensure!(c.len() <= cap as usize, "len above capacity");
    ensure!(c.stats().evictions > 0, "no evictions");
    ensure_eq!(
        c.get(&(cap * 3 - 1)),
        Ok(Some([(cap * 3 - 1) as u8; 12])),
        "last insert"
    );
    valid(c.inner())?;

    ensure!(TOO_SMALL.cache().is_err(), "64-byte static cache formatted");
    ensure!(TOO_SMALL.cache().is_err(), "failure not sticky");
    Ok(())
}

/// clear() removes everything and leaves a usable cache.
fn clear_empties_the_cache() -> Result<(), &'static str> {
    let c = format(&config())?;
    let mut v = [0u8; 40];
    for i in 0..100 {
        c.set(&key(i), fill(i, &mut v)).or_fail("set")?;
    }
    ensure_eq!(c.len(), 100, "len before clear");
    c.clear().or_fail("clear")?;
    ensure_eq!(c.len(), 0, "len after clear");
    ensure!(c.is_empty(), "is_empty after clear");
    for i in 0..100 {
        ensure!(
            !c.contains(&key(i)).or_fail("contains")?,
            "key survived clear"
        );
    }
    valid(&c)?;
    c.set(b"after", b"clear").or_fail("set after clear")?;
    expect(&c, b"after", Some(b"clear"))?;
    ensure_eq!(c.len(), 1, "len after clear + set");
    valid(&c)
}

/// for_each visits every live entry once, with its value, and can stop early.
fn for_each_counts_entries() -> Result<(), &'static str> {
    const N: u32 = 150;
    // Index sized for small entries: all N fit without eviction.
    let c = format(&config().expected_entry(8, 32))?;
    let mut v = [0u8; 64];
    for i in 0..N {
        // Mixed sizes: entries in several size classes.
        let len = 1 + (i as usize * 7) % 64;
        c.set(&key(i), fill(i, &mut v[..len])).or_fail("set")?;
    }
    for i in (0..N).step_by(3) {
        ensure!(c.remove(&key(i)).or_fail("remove")?, "remove");
    }
    let want = (N - N.div_ceil(3)) as usize;
    ensure_eq!(c.len(), want, "len");

    let (mut kb, mut vb) = ([0u8; MAX_KEY], [0u8; MAX_VALUE]);
    let mut seen = [0u8; N as usize];
    let mut count = 0usize;
    let mut bad = 0usize;
    c.for_each(&mut kb, &mut vb, |k, val| {
        count += 1;
        match k
            .strip_prefix(b"key:")
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        {
            Some(b) if u32::from_be_bytes(b) < N => {
                let i = u32::from_be_bytes(b);
                seen[i as usize] += 1;
                let mut exp = [0u8; 64];
                let len = 1 + (i as usize * 7) % 64;
                if val != fill(i, &mut exp[..len]) || i % 3 == 0 {
                    bad += 1;
                }
            }
            _ => bad += 1,
        }
        ControlFlow::Continue(())
    })
    .or_fail("for_each")?;
    ensure_eq!(count, want, "for_each count");
    ensure_eq!(bad, 0, "for_each saw wrong keys or values");
    ensure!(
        seen.iter()
            .enumerate()
            .all(|(i, &n)| n == u8::from(i % 3 != 0)),
        "for_each missed or repeated a key"
    );

    let mut stopped = 0;
    c.for_each(&mut kb, &mut vb, |_, _| {
        stopped += 1;
        if stopped == 10 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .or_fail("for_each with break")?;
    ensure_eq!(stopped, 10, "ControlFlow::Break did not stop the walk");

    let mut short = [0u8; 8];
    ensure_eq!(
        c.for_each(&mut short, &mut vb, |_, _| ControlFlow::Continue(())),
        Err(Error::BufferTooSmall { needed: MAX_KEY }),
        "for_each with a small key buffer"
    );
    Ok(())
}

/// A second handle attached to the formatted region sees the same entries (as a
/// handle would after a warm reset that kept RAM); garbage is refused.
fn attach_to_formatted_region() -> Result<(), &'static str> {
    {
        let c = format(&config())?;
        c.set(b"persist", b"across handles").or_fail("set")?;
    }
    let c = Cache::attach(REGION.words()).or_fail("attach")?;
    ensure_eq!(c.max_value_len(), MAX_VALUE, "attached max_value_len");
    expect(&c, b"persist", Some(b"across handles"))?;
    c.set(b"more", b"x").or_fail("set via attached handle")?;
    ensure_eq!(c.len(), 2, "len via attached handle");
    valid(&c)?;

    // Wipe the header: attach must refuse the region.
    for w in &REGION.words()[..16] {
        w.store(0, core::sync::atomic::Ordering::Relaxed);
    }
    ensure!(
        Cache::attach(REGION.words()).is_err(),
        "attached a wiped region"
    );
    Ok(())
}

// --- regressions -----------------------------------------------------------------

/// A key of 1..=4 bytes (mod 8) stored in a slot that held a longer key. With
/// 32-bit words the key's 8-byte field is written one word at a time, so the
/// second word of the field must not be left holding the old key's bytes: the
/// checker and shard repair rehash stored keys, and eviction finds an entry's
/// index slot by rehashing its stored key.
fn short_key_in_reused_slot() -> Result<(), &'static str> {
    let c = format(&config())?;
    // Same size class (24-byte slots): 8 + 8 + 1 and 8 + 8 + 2 bytes.
    c.set(b"abcdefgh", b"v").or_fail("set long key")?;
    ensure!(c.remove(b"abcdefgh").or_fail("remove")?, "remove");
    c.set(b"k", b"vv").or_fail("set short key")?;
    expect(&c, b"k", Some(b"vv"))?;
    valid(&c)?;
    // Repair must keep a healthy entry reachable.
    let rep = c.repair().or_fail("repair")?;
    ensure_eq!(rep.shards_rebuilt, 0, "repair rebuilt a healthy shard");
    expect(&c, b"k", Some(b"vv"))?;
    valid(&c)
}

/// A region so small that its index has fewer buckets than the probe window
/// (8): the checker must not count a wrapped probe path twice.
fn small_region_validates() -> Result<(), &'static str> {
    let c = Cache::format(&wipe()[..words_for(8 * 1024)], &config()).or_fail("format 8 KiB")?;
    hprintln!(
        "    8 KiB, max value {}: {:?}, capacity_for(8, 16) = {}",
        MAX_VALUE,
        c,
        c.capacity_for(8, 16)
    );
    for i in 0..8 {
        c.set(&key(i), b"value").or_fail("set")?;
        valid(&c)?;
    }
    for i in 0..8 {
        expect(&c, &key(i), Some(b"value"))?;
    }
    Ok(())
}

/// `format` loses everything previously in the region: iteration over the new
/// cache must not turn up entries of the old one (formatting retained RAM after
/// a reset, or re-formatting with another configuration).
fn reformat_forgets_old_entries() -> Result<(), &'static str> {
    {
        let old = format(&config())?;
        for i in 0..300 {
            old.set(&key(1_000 + i), &[1; 12])
                .or_fail("set before re-format")?;
        }
    }
    // Re-format with the same configuration (same layout), without clearing.
    let c = Cache::format(REGION.words(), &config()).or_fail("re-format")?;
    ensure!(c.is_empty(), "re-formatted cache not empty");
    for i in 0..3 {
        c.set(&key(i), &[2; 12]).or_fail("set")?;
    }
    let (mut kb, mut vb) = ([0u8; MAX_KEY], [0u8; MAX_VALUE]);
    let (mut count, mut stale) = (0, 0);
    c.for_each(&mut kb, &mut vb, |k, _| {
        count += 1;
        if k.len() != 8 || k[4..] >= 1_000u32.to_be_bytes()[..] {
            stale += 1;
        }
        ControlFlow::Continue(())
    })
    .or_fail("for_each")?;
    if stale > 0 {
        hprintln!(
            "    for_each: {} entries, {} of them from before the format (len() = {})",
            count,
            stale,
            c.len()
        );
    }
    ensure_eq!(stale, 0, "for_each returned entries from before format()");
    ensure_eq!(count, 3, "for_each count");
    valid(&c)
}
