//! Differential harness: arbitrary operation sequences against a hashbrown model.
//!
//! The cache may evict at any time, so the model is a map of what the cache *may*
//! hold: key → (last value written, expiry, generation). The rules checked after each
//! operation are:
//!
//! - a hit returns exactly the model's value for the key (and its expiry), and the
//!   model's entry is not expired; a key the model says is removed, expired or never
//!   set never hits;
//! - an answer that proves the key absent (a miss, `replace` → false, `cas` →
//!   `NotFound`, `remove` → false, an incomplete `for_each`) removes it from the model
//!   — so an evicted key can never come back;
//! - an answer that proves the key present (`add` → false, `cas` → `Mismatch`,
//!   `NotANumber`, `BufferTooSmall`) requires the model to hold it, unexpired;
//! - `cas` stores only with a token of the key's current version, and always stores
//!   with a token taken by the immediately preceding read;
//! - `incr`/`decr` return the model's number changed by delta, or the initial value
//!   if the key was evicted;
//! - invalid arguments fail with exactly the documented error and leave every word of
//!   the region unchanged;
//! - after every operation `check` finds nothing, `len()` is at most the number of
//!   keys the model holds (expired ones included) and at most the entry cap, and
//!   `stats().entries == len()`.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

use bolero::TypeGenerator;
use cachee_core::{AtomicWord, Cache, CasOutcome, CasToken, Config, Error, HashKind, Hit};
use hashbrown::{HashMap, HashSet};

use crate::common::{self, FuzzHooks, parse_decimal};

/// One fuzz input: a configuration, whether the cache has a clock, and the operations.
#[derive(Debug, Clone, TypeGenerator)]
pub struct Input {
    /// Selects one of the [`setups`] of the family.
    pub setup: u8,
    /// Whether the hooks provide a clock (without one, TTLs fail with `NoClock`).
    pub clock: bool,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// A key from a small alphabet: `id` (modulo the setup's key count) and a length
/// selector (below 128: the id's own length; else an index into a table of lengths
/// from 1 to the maximum).
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub struct K {
    /// Key identity.
    pub id: u8,
    /// Length selector.
    pub len: u8,
}

/// A value.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum V {
    /// Pattern bytes of length `n % (max + 1)`.
    Len(u16),
    /// Pattern bytes of a boundary length (0, 1, word and size-class edges, max).
    Edge(u8),
    /// A decimal number.
    Decimal(u64),
    /// A decimal number with leading zeros.
    Padded(u8, u32),
    /// A special string (empty, `u64::MAX`, overflowing, 21 digits, non-digits).
    Special(u8),
}

/// A time-to-live.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum Ttl {
    /// Zero: `InvalidTtl`.
    Zero,
    /// 1 to 65,536 ticks.
    Ticks(u16),
    /// Up to 2³² ticks.
    Long(u32),
    /// Expires at exactly `u64::MAX`.
    NearMax,
    /// `u64::MAX` ticks: the expiry overflows (`InvalidTtl`).
    Max,
}

/// Where a `cas` token comes from.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum Tok {
    /// From a `get_entry` of the key just before.
    Fresh,
    /// One of the tokens remembered from earlier `get_entry` calls (any key).
    Remembered(u8),
    /// An arbitrary integer (the key is read first, to know its real token).
    Garbage(u64),
    /// The key's real token with some bits flipped.
    Flipped(u64),
}

/// `incr`/`decr` amount.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum Delta {
    /// 0 to 255.
    Small(u8),
    /// Anything.
    Any(u64),
    /// `u64::MAX`.
    Max,
}

/// Caller buffer for `get`.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum Buf {
    /// Holds the largest value.
    Full,
    /// Exactly the model's value length.
    Exact,
    /// `n % (max + 1)` bytes (often too small).
    Short(u16),
}

/// Operations that take a key.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum KeyOp {
    /// `get`
    Get,
    /// `get_entry`
    GetEntry,
    /// `contains`
    Contains,
    /// `set`
    Set,
    /// `set_ttl`
    SetTtl,
    /// `add`
    Add,
    /// `replace`
    Replace,
    /// `cas`
    Cas,
    /// `remove`
    Remove,
    /// `incr`
    Incr,
    /// `decr`
    Decr,
}

/// Operations that take a value.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum ValOp {
    /// `set`
    Set,
    /// `set_ttl`
    SetTtl,
    /// `add`
    Add,
    /// `replace`
    Replace,
    /// `cas`
    Cas,
}

/// One operation.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum Op {
    /// `get` into a buffer of some size.
    Get {
        /// Key.
        key: K,
        /// Buffer size.
        buf: Buf,
    },
    /// `get_with::<64>`.
    GetWith {
        /// Key.
        key: K,
    },
    /// `get_entry`; the token is remembered for later `cas`.
    GetEntry {
        /// Key.
        key: K,
    },
    /// `contains`.
    Contains {
        /// Key.
        key: K,
    },
    /// `set`.
    Set {
        /// Key.
        key: K,
        /// Value.
        val: V,
    },
    /// `set_ttl`.
    SetTtl {
        /// Key.
        key: K,
        /// Value.
        val: V,
        /// TTL.
        ttl: Ttl,
    },
    /// `add`.
    Add {
        /// Key.
        key: K,
        /// Value.
        val: V,
        /// TTL.
        ttl: Option<Ttl>,
    },
    /// `replace`.
    Replace {
        /// Key.
        key: K,
        /// Value.
        val: V,
        /// TTL.
        ttl: Option<Ttl>,
    },
    /// `cas`.
    Cas {
        /// Key.
        key: K,
        /// Value.
        val: V,
        /// TTL.
        ttl: Option<Ttl>,
        /// Token source.
        token: Tok,
    },
    /// `remove`.
    Remove {
        /// Key.
        key: K,
    },
    /// `incr`.
    Incr {
        /// Key.
        key: K,
        /// Amount.
        delta: Delta,
        /// Initial value for a missing key.
        init: Option<u64>,
    },
    /// `decr`.
    Decr {
        /// Key.
        key: K,
        /// Amount.
        delta: Delta,
        /// Initial value for a missing key.
        init: Option<u64>,
    },
    /// `clear`.
    Clear,
    /// `for_each`, possibly stopped early, possibly with too-small buffers first.
    ForEach {
        /// Stop after this many entries.
        stop_after: Option<u8>,
        /// First call with a too-small key (false) or value (true) buffer.
        small: Option<bool>,
    },
    /// Advance the clock.
    Advance {
        /// Ticks.
        ticks: u16,
    },
    /// `set` of up to 64 consecutive keys: fills the cache, forcing eviction.
    Fill {
        /// First key.
        first: K,
        /// How many keys (modulo 64, plus one).
        count: u8,
        /// Value template.
        val: V,
    },
    /// An operation with an empty or too-long key.
    BadKey {
        /// Which operation.
        op: KeyOp,
        /// Empty (else too long).
        empty: bool,
        /// Bytes beyond the maximum.
        extra: u16,
    },
    /// An operation with a too-long value.
    BadValue {
        /// Which operation.
        op: ValOp,
        /// Key.
        key: K,
        /// Bytes beyond the maximum.
        extra: u16,
    },
    /// `repair` of a healthy cache: must rebuild nothing.
    Repair,
    /// Drop the handle and attach a new one to the same region.
    Reattach,
}

/// Which configurations a harness draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Every setup (folded and colliding hashes).
    All,
    /// Only setups with the colliding hash.
    Colliding,
}

/// A region size, a configuration and a key alphabet.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Region bytes.
    pub bytes: usize,
    /// Configuration.
    pub config: Config,
    /// Distinct key ids.
    pub nkeys: u8,
    /// The configured `max_entries`, if any.
    pub max_entries: Option<u64>,
}

/// Small regions with small pages, so that eviction, page moves between size
/// classes and (with the colliding hash) full probe windows happen constantly.
pub fn setups(family: Family) -> Vec<Setup> {
    let s = |bytes: usize, config: Config, nkeys: u8, max_entries: Option<u64>| Setup {
        bytes,
        config,
        nkeys,
        max_entries,
    };
    let folded = vec![
        s(
            16 << 10,
            Config::new()
                .shards(1)
                .page_size(512)
                .max_key_len(16)
                .max_value_len(200)
                .seed(1),
            12,
            None,
        ),
        s(
            32 << 10,
            Config::new()
                .shards(2)
                .page_size(1024)
                .max_key_len(24)
                .max_value_len(600)
                .checksums(true)
                .seed(2),
            16,
            None,
        ),
        s(
            32 << 10,
            Config::new()
                .shards(2)
                .page_size(2048)
                .max_key_len(40)
                .max_value_len(1500)
                .expected_entry(8, 16)
                .seed(3),
            24,
            None,
        ),
        // Values shorter than 20 bytes: `incr` can overflow the maximum.
        s(
            24 << 10,
            Config::new()
                .shards(1)
                .page_size(512)
                .max_key_len(8)
                .max_value_len(12)
                .expected_entry(4, 4)
                .seed(4),
            16,
            None,
        ),
        // The entry cap binds before the bytes do.
        s(
            32 << 10,
            Config::new()
                .shards(2)
                .page_size(1024)
                .max_key_len(16)
                .max_value_len(300)
                .max_entries(24)
                .seed(5),
            16,
            Some(24),
        ),
    ];
    let colliding = vec![
        s(
            16 << 10,
            Config::new()
                .shards(1)
                .page_size(512)
                .max_key_len(16)
                .max_value_len(200)
                .hash_kind(HashKind::Colliding),
            12,
            None,
        ),
        // Index sized for large entries: one bucket, so the probe window is full
        // after fifteen small entries and inserts evict from the home bucket.
        s(
            16 << 10,
            Config::new()
                .shards(1)
                .page_size(1024)
                .max_key_len(16)
                .max_value_len(400)
                .expected_entry(16, 400)
                .hash_kind(HashKind::Colliding),
            16,
            None,
        ),
        s(
            32 << 10,
            Config::new()
                .shards(2)
                .page_size(1024)
                .max_key_len(32)
                .max_value_len(400)
                .checksums(true)
                .expected_entry(8, 8)
                .hash_kind(HashKind::Colliding),
            24,
            None,
        ),
        s(
            32 << 10,
            Config::new()
                .shards(1)
                .page_size(4096)
                .max_key_len(16)
                .max_value_len(64)
                .max_entries(40)
                .hash_kind(HashKind::Colliding),
            16,
            Some(40),
        ),
    ];
    match family {
        Family::All => folded.into_iter().chain(colliding).collect(),
        Family::Colliding => colliding,
    }
}

/// Key lengths used for a maximum of `max`: short, around a word, and the maximum.
fn key_lengths(max: usize) -> Vec<usize> {
    let mut v: Vec<usize> = [1, 2, 3, 7, 8, 9, 16, 17, max.saturating_sub(1), max]
        .into_iter()
        .filter(|&n| (1..=max).contains(&n))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Value lengths at boundaries (words, small size classes, 128, the maximum).
fn value_edges(max: usize) -> Vec<usize> {
    let mut v: Vec<usize> = [
        0,
        1,
        2,
        7,
        8,
        9,
        15,
        16,
        17,
        20,
        21,
        24,
        31,
        32,
        33,
        63,
        64,
        65,
        100,
        104,
        112,
        119,
        120,
        121,
        127,
        128,
        129,
        255,
        256,
        257,
        max / 2,
        max.saturating_sub(8),
        max.saturating_sub(1),
        max,
    ]
    .into_iter()
    .filter(|&n| n <= max)
    .collect();
    v.sort_unstable();
    v.dedup();
    v
}

const SPECIALS: [&[u8]; 9] = [
    b"",
    b"0",
    b"18446744073709551615",
    b"18446744073709551616",
    b"000000000000000000001",
    b"12a",
    b"-1",
    b" 1",
    b"99999999999999999999",
];

/// What the model knows about a key.
#[derive(Debug, Clone)]
struct MEntry {
    val: Vec<u8>,
    exp: Option<u64>,
    /// Changes with every write of the key (tokens remember it).
    generation: u64,
}

/// A token from `get_entry`, with the key and the generation it was taken at.
#[derive(Debug, Clone)]
struct Remembered {
    key: Vec<u8>,
    generation: u64,
    token: CasToken,
}

type FuzzCache<'a> = Cache<&'a [AtomicWord], FuzzHooks<'a>>;

struct Runner<'a> {
    cache: FuzzCache<'a>,
    words: &'a [AtomicWord],
    clock: Option<&'a AtomicU64>,
    setup: Setup,
    lengths: Vec<usize>,
    edges: Vec<usize>,
    max_key: usize,
    max_value: usize,
    model: HashMap<Vec<u8>, MEntry>,
    generation: u64,
    tokens: Vec<Remembered>,
    salt: u32,
    step: usize,
}

/// Runs one input against a fresh cache of the chosen setup.
pub fn run(input: &Input, family: Family) {
    let all = setups(family);
    let setup = all[input.setup as usize % all.len()].clone();
    let words = common::region(setup.bytes);
    let clock = AtomicU64::new(1_000);
    let clock = input.clock.then_some(&clock);
    let cache = Cache::format_with_hooks(&words[..], &setup.config, FuzzHooks::new(clock))
        .unwrap_or_else(|e| panic!("setup {setup:?} does not format: {e}"));
    let max_key = cache.max_key_len();
    let max_value = cache.max_value_len();
    let mut r = Runner {
        cache,
        words: &words[..],
        clock,
        lengths: key_lengths(max_key),
        edges: value_edges(max_value),
        setup,
        max_key,
        max_value,
        model: HashMap::new(),
        generation: 0,
        tokens: Vec::new(),
        salt: 0,
        step: 0,
    };
    r.after(&"format");
    for (i, op) in input.ops.iter().enumerate() {
        r.step = i;
        r.apply(op);
        r.after(op);
    }
    if std::env::var_os("CACHEE_FUZZ_TRACE").is_some() {
        let s = r.cache.stats();
        eprintln!(
            "setup {} clock {} ops {} model {} len {} hits {} misses {} inserts {} updates {} removes {} evictions {} expirations {} rejected {}",
            input.setup as usize % all.len(),
            input.clock,
            input.ops.len(),
            r.model.len(),
            r.cache.len(),
            s.hits,
            s.misses,
            s.inserts,
            s.updates,
            s.removes,
            s.evictions,
            s.expirations,
            s.rejected
        );
    }
}

impl<'a> Runner<'a> {
    fn now(&self) -> Option<u64> {
        self.clock.map(|c| c.load(Ordering::SeqCst))
    }

    fn key(&self, k: K) -> Vec<u8> {
        let id = k.id % self.setup.nkeys;
        // Half the selectors give the id its own fixed length, so that the same few
        // keys come back often; the other half give any length.
        let n = self.lengths.len();
        let len = if k.len < 128 {
            self.lengths[id as usize % n]
        } else {
            self.lengths[k.len as usize % n]
        };
        (0..len)
            .map(|i| {
                if i == 0 {
                    id
                } else {
                    id.wrapping_mul(37).wrapping_add(i as u8)
                }
            })
            .collect()
    }

    fn value(&mut self, v: V) -> Vec<u8> {
        self.salt = self.salt.wrapping_add(1);
        let salt = self.salt;
        let pattern = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|i| (salt as usize).wrapping_mul(131).wrapping_add(i * 13) as u8)
                .collect()
        };
        let out = match v {
            V::Len(n) => pattern(n as usize % (self.max_value + 1)),
            V::Edge(i) => pattern(self.edges[i as usize % self.edges.len()]),
            V::Decimal(n) => n.to_string().into_bytes(),
            V::Padded(z, n) => {
                let mut s = "0".repeat(z as usize % 24);
                s.push_str(&n.to_string());
                s.into_bytes()
            }
            V::Special(i) => SPECIALS[i as usize % SPECIALS.len()].to_vec(),
        };
        let mut out = out;
        out.truncate(self.max_value);
        out
    }

    fn ttl(&self, t: Ttl) -> u64 {
        match t {
            Ttl::Zero => 0,
            Ttl::Ticks(n) => n as u64 + 1,
            Ttl::Long(n) => n as u64 + 1,
            Ttl::NearMax => u64::MAX - self.now().unwrap_or(0),
            Ttl::Max => u64::MAX,
        }
    }

    /// What `expiry_for` does with `ttl`: the absolute expiry, or the error.
    fn expect_expiry(&self, ttl: Option<u64>) -> Result<Option<u64>, Error> {
        match ttl {
            None => Ok(None),
            Some(0) => Err(Error::InvalidTtl),
            Some(t) => {
                let now = self.now().ok_or(Error::NoClock)?;
                now.checked_add(t).map(Some).ok_or(Error::InvalidTtl)
            }
        }
    }

    fn expired(&self, e: &MEntry) -> bool {
        matches!((e.exp, self.now()), (Some(x), Some(now)) if x <= now)
    }

    /// The model's unexpired entry for `key`.
    fn live(&self, key: &[u8]) -> Option<MEntry> {
        self.model.get(key).filter(|e| !self.expired(e)).cloned()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "step {}: {what}\nsetup: {:?}\nclock: {:?}",
            self.step,
            self.setup,
            self.now()
        )
    }

    fn store(&mut self, key: &[u8], val: Vec<u8>, exp: Option<u64>) {
        self.generation += 1;
        self.model.insert(
            key.to_vec(),
            MEntry {
                val,
                exp,
                generation: self.generation,
            },
        );
    }

    /// A write path showed that `key` is not resident (any expired entry of it was
    /// removed by the operation).
    fn absent(&mut self, key: &[u8]) {
        self.model.remove(key);
    }

    /// A read missed `key`: if the model's entry is live, it was evicted; an expired
    /// entry may still be resident (reads do not remove it), so it stays.
    fn missed(&mut self, key: &[u8]) {
        if self.live(key).is_some() {
            self.model.remove(key);
        }
    }

    /// The cache returned `got` (and, if known, `exp`) for `key`.
    fn hit(&self, key: &[u8], got: &[u8], exp: Option<Option<u64>>) {
        match self.live(key) {
            None => self.fail(&format!(
                "hit for {key:?} (value {got:?}), which the model says is {}",
                match self.model.get(key) {
                    Some(e) => format!("expired (at {:?})", e.exp),
                    None => "absent".to_string(),
                }
            )),
            Some(e) => {
                if e.val != got {
                    self.fail(&format!(
                        "wrong value for {key:?}: got {got:?}, model has {:?}",
                        e.val
                    ));
                }
                if let Some(x) = exp {
                    if x != e.exp {
                        self.fail(&format!(
                            "wrong expiry for {key:?}: got {x:?}, model has {:?}",
                            e.exp
                        ));
                    }
                }
            }
        }
    }

    /// The cache showed that `key` is resident.
    fn present(&self, key: &[u8], what: &str) {
        if self.live(key).is_none() {
            self.fail(&format!(
                "{what} for {key:?}, which the model says is {}",
                if self.model.contains_key(key) {
                    "expired"
                } else {
                    "absent"
                }
            ));
        }
    }

    /// Runs `f`, which must fail with `want` and change nothing in the region.
    fn expect_error<T: core::fmt::Debug>(
        &self,
        want: &[Error],
        what: &str,
        f: impl FnOnce(&FuzzCache<'a>) -> Result<T, Error>,
    ) {
        let before = common::snapshot(self.words);
        let got = f(&self.cache);
        match got {
            Err(e) if want.contains(&e) => {}
            other => self.fail(&format!("{what}: expected one of {want:?}, got {other:?}")),
        }
        let after = common::snapshot(self.words);
        if let Some(i) = common::first_difference(&before, &after) {
            self.fail(&format!(
                "{what}: failed as expected but changed region word {i}"
            ));
        }
    }

    fn get_entry_checked(&mut self, key: &[u8]) -> Option<Hit> {
        let mut buf = vec![0u8; self.max_value];
        match self.cache.get_entry(key, &mut buf) {
            Ok(Some(h)) => {
                self.hit(key, &buf[..h.len], Some(h.expires_at));
                if let Some(e) = self.live(key) {
                    self.tokens.push(Remembered {
                        key: key.to_vec(),
                        generation: e.generation,
                        token: h.token,
                    });
                    if self.tokens.len() > 64 {
                        self.tokens.remove(0);
                    }
                }
                Some(h)
            }
            Ok(None) => {
                self.missed(key);
                None
            }
            Err(e) => self.fail(&format!("get_entry({key:?}) failed: {e}")),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Get { key, buf } => self.op_get(key, buf),
            Op::GetWith { key } => {
                let k = self.key(key);
                match self.cache.get_with::<64, Vec<u8>>(&k, |v| v.to_vec()) {
                    Ok(Some(v)) => self.hit(&k, &v, None),
                    Ok(None) => self.missed(&k),
                    Err(Error::BufferTooSmall { needed }) => {
                        self.present(&k, "get_with: BufferTooSmall");
                        let len = self.live(&k).map(|e| e.val.len());
                        if needed <= 64 || len != Some(needed) {
                            self.fail(&format!(
                                "get_with::<64>: BufferTooSmall {{ needed: {needed} }} for a value of {len:?} bytes"
                            ));
                        }
                    }
                    Err(e) => self.fail(&format!("get_with failed: {e}")),
                }
            }
            Op::GetEntry { key } => {
                let k = self.key(key);
                self.get_entry_checked(&k);
            }
            Op::Contains { key } => {
                let k = self.key(key);
                match self.cache.contains(&k) {
                    Ok(true) => self.present(&k, "contains: true"),
                    Ok(false) => self.missed(&k),
                    Err(e) => self.fail(&format!("contains failed: {e}")),
                }
            }
            Op::Set { key, val } => {
                let k = self.key(key);
                let v = self.value(val);
                self.op_set(&k, v);
            }
            Op::SetTtl { key, val, ttl } => {
                let k = self.key(key);
                let v = self.value(val);
                let t = self.ttl(ttl);
                match self.expect_expiry(Some(t)) {
                    Err(e) => self.expect_error(&[e], "set_ttl", |c| c.set_ttl(&k, &v, t)),
                    Ok(exp) => match self.cache.set_ttl(&k, &v, t) {
                        Ok(()) => self.store(&k, v, exp),
                        Err(e) => self.fail(&format!("set_ttl failed: {e}")),
                    },
                }
            }
            Op::Add { key, val, ttl } => {
                let k = self.key(key);
                let v = self.value(val);
                let t = ttl.map(|t| self.ttl(t));
                match self.expect_expiry(t) {
                    Err(e) => self.expect_error(&[e], "add", |c| c.add(&k, &v, t)),
                    Ok(exp) => match self.cache.add(&k, &v, t) {
                        Ok(true) => self.store(&k, v, exp),
                        Ok(false) => self.present(&k, "add: false"),
                        Err(e) => self.fail(&format!("add failed: {e}")),
                    },
                }
            }
            Op::Replace { key, val, ttl } => {
                let k = self.key(key);
                let v = self.value(val);
                let t = ttl.map(|t| self.ttl(t));
                match self.expect_expiry(t) {
                    Err(e) => self.expect_error(&[e], "replace", |c| c.replace(&k, &v, t)),
                    Ok(exp) => match self.cache.replace(&k, &v, t) {
                        Ok(true) => {
                            self.present(&k, "replace: true");
                            self.store(&k, v, exp);
                        }
                        Ok(false) => self.absent(&k),
                        Err(e) => self.fail(&format!("replace failed: {e}")),
                    },
                }
            }
            Op::Cas {
                key,
                val,
                ttl,
                token,
            } => self.op_cas(key, val, ttl, token),
            Op::Remove { key } => {
                let k = self.key(key);
                match self.cache.remove(&k) {
                    Ok(true) => {
                        self.present(&k, "remove: true");
                        self.absent(&k);
                    }
                    Ok(false) => self.absent(&k),
                    Err(e) => self.fail(&format!("remove failed: {e}")),
                }
            }
            Op::Incr { key, delta, init } => self.op_arith(key, delta, init, true),
            Op::Decr { key, delta, init } => self.op_arith(key, delta, init, false),
            Op::Clear => {
                if let Err(e) = self.cache.clear() {
                    self.fail(&format!("clear failed: {e}"));
                }
                self.model.clear();
                if !self.cache.is_empty() {
                    self.fail("len() is not 0 after clear");
                }
            }
            Op::ForEach { stop_after, small } => self.op_for_each(stop_after, small),
            Op::Advance { ticks } => {
                if let Some(c) = self.clock {
                    c.fetch_add(ticks as u64, Ordering::SeqCst);
                }
            }
            Op::Fill { first, count, val } => {
                for i in 0..(count % 64) as usize + 1 {
                    let key = K {
                        id: first.id.wrapping_add(i as u8),
                        len: first
                            .len
                            .wrapping_add((i / self.setup.nkeys as usize) as u8),
                    };
                    let k = self.key(key);
                    let v = self.value(val);
                    self.op_set(&k, v);
                    self.after(&("fill", i, &k));
                }
            }
            Op::BadKey { op, empty, extra } => self.op_bad_key(op, empty, extra),
            Op::BadValue { op, key, extra } => self.op_bad_value(op, key, extra),
            Op::Repair => match self.cache.repair() {
                Ok(rep) if rep.shards_rebuilt == 0 && rep.entries_dropped == 0 => {}
                other => self.fail(&format!("repair of a healthy cache did {other:?}")),
            },
            Op::Reattach => {
                let len = self.cache.len();
                match Cache::attach_with_hooks(self.words, FuzzHooks::new(self.clock)) {
                    Ok(c) => {
                        if c.len() != len
                            || c.max_key_len() != self.max_key
                            || c.max_value_len() != self.max_value
                        {
                            self.fail("attach sees a different cache");
                        }
                        self.cache = c;
                    }
                    Err(e) => self.fail(&format!("attach to a live region failed: {e}")),
                }
            }
        }
    }

    fn op_get(&mut self, key: K, buf: Buf) {
        let k = self.key(key);
        let live = self.live(&k);
        let size = match buf {
            Buf::Full => self.max_value,
            Buf::Exact => live.as_ref().map_or(self.max_value, |e| e.val.len()),
            Buf::Short(n) => n as usize % (self.max_value + 1),
        };
        let mut out = vec![0xA5u8; size];
        match self.cache.get(&k, &mut out) {
            Ok(Some(n)) => {
                if n > size {
                    self.fail("get returned more bytes than the buffer holds");
                }
                self.hit(&k, &out[..n], None);
            }
            Ok(None) => self.missed(&k),
            Err(Error::BufferTooSmall { needed }) => {
                if out.iter().any(|&b| b != 0xA5) {
                    self.fail("get failed with BufferTooSmall but wrote into the buffer");
                }
                match self.model.get(&k) {
                    Some(e) if self.expired(e) => self.fail(&format!(
                        "get({k:?}) into {size} bytes failed with BufferTooSmall {{ needed: {needed} }} for an EXPIRED entry (expiry {:?}); it should be a miss",
                        e.exp
                    )),
                    Some(e) if e.val.len() == needed && needed > size => {}
                    other => self.fail(&format!(
                        "get into {size} bytes: BufferTooSmall {{ needed: {needed} }}, model has {other:?}"
                    )),
                }
            }
            Err(e) => self.fail(&format!("get failed: {e}")),
        }
    }

    fn op_set(&mut self, k: &[u8], v: Vec<u8>) {
        match self.cache.set(k, &v) {
            Ok(()) => self.store(k, v, None),
            Err(e) => self.fail(&format!("set({k:?}, {} bytes) failed: {e}", v.len())),
        }
    }

    fn op_cas(&mut self, key: K, val: V, ttl: Option<Ttl>, tok: Tok) {
        let k = self.key(key);
        let v = self.value(val);
        // (token, fresh: may store, immediate: must store if the key is there)
        let (token, fresh, immediate, seen) = match tok {
            Tok::Fresh => match self.get_entry_checked(&k) {
                Some(h) => (h.token, true, true, true),
                None => (CasToken::from_u64(0), false, false, false),
            },
            Tok::Remembered(i) if !self.tokens.is_empty() => {
                let r = &self.tokens[i as usize % self.tokens.len()];
                let fresh =
                    r.key == k && self.live(&k).is_some_and(|e| e.generation == r.generation);
                (r.token, fresh, false, false)
            }
            // Nothing remembered yet: the number itself is the token. It may be the
            // key's real token (a fresh cache's first entry has a small one), so it
            // counts as fresh exactly when it equals it, as for `Garbage`.
            Tok::Remembered(i) => {
                let peek = self.get_entry_checked(&k);
                let fresh = peek.is_some_and(|h| h.token.to_u64() == i as u64);
                (CasToken::from_u64(i as u64), fresh, false, peek.is_some())
            }
            Tok::Garbage(g) => {
                let peek = self.get_entry_checked(&k);
                let fresh = peek.is_some_and(|h| h.token.to_u64() == g);
                (CasToken::from_u64(g), fresh, false, peek.is_some())
            }
            Tok::Flipped(mask) => {
                let mask = mask.max(1);
                match self.get_entry_checked(&k) {
                    Some(h) => (
                        CasToken::from_u64(h.token.to_u64() ^ mask),
                        false,
                        false,
                        true,
                    ),
                    None => (CasToken::from_u64(mask), false, false, false),
                }
            }
        };
        let t = ttl.map(|t| self.ttl(t));
        let exp = match self.expect_expiry(t) {
            Err(e) => {
                self.expect_error(&[e], "cas", |c| c.cas(&k, token, &v, t));
                return;
            }
            Ok(exp) => exp,
        };
        match self.cache.cas(&k, token, &v, t) {
            Ok(CasOutcome::Stored) => {
                self.present(&k, "cas: Stored");
                if !fresh {
                    self.fail(&format!(
                        "cas stored with a stale or foreign token {token:?} ({tok:?})"
                    ));
                }
                self.store(&k, v, exp);
            }
            Ok(CasOutcome::Mismatch) => {
                self.present(&k, "cas: Mismatch");
                if immediate {
                    self.fail("cas with the token of the read just before: Mismatch");
                }
            }
            Ok(CasOutcome::NotFound) => {
                if seen {
                    self.fail("cas: NotFound right after a read hit the key");
                }
                self.absent(&k);
            }
            Err(e) => self.fail(&format!("cas failed: {e}")),
        }
    }

    fn op_arith(&mut self, key: K, delta: Delta, init: Option<u64>, up: bool) {
        let k = self.key(key);
        let d = match delta {
            Delta::Small(n) => n as u64,
            Delta::Any(n) => n,
            Delta::Max => u64::MAX,
        };
        let f = |x: u64| {
            if up {
                x.wrapping_add(d)
            } else {
                x.saturating_sub(d)
            }
        };
        let live = self.live(&k);
        let from_existing = live.as_ref().and_then(|e| parse_decimal(&e.val)).map(f);
        let r = if up {
            self.cache.incr(&k, d, init)
        } else {
            self.cache.decr(&k, d, init)
        };
        let name = if up { "incr" } else { "decr" };
        match r {
            Ok(None) => {
                if init.is_some() {
                    self.fail(&format!("{name} with init returned None"));
                }
                self.absent(&k);
            }
            Ok(Some(n)) => {
                let by_existing = from_existing == Some(n);
                let by_init = init == Some(n);
                let text = n.to_string().into_bytes();
                let exp = match (by_existing, by_init) {
                    (false, false) => self.fail(&format!(
                        "{name}({k:?}, {d}, {init:?}) returned {n}; model value {:?} gives {from_existing:?}",
                        live.as_ref().map(|e| String::from_utf8_lossy(&e.val).into_owned())
                    )),
                    (true, false) => live.as_ref().and_then(|e| e.exp),
                    (false, true) => None,
                    (true, true) => {
                        // Same number either way; read the entry to learn its expiry.
                        let mut buf = vec![0u8; self.max_value];
                        match self.cache.get_entry(&k, &mut buf) {
                            Ok(Some(h)) if buf[..h.len] == text[..] => {
                                let old = live.as_ref().and_then(|e| e.exp);
                                if h.expires_at != old && h.expires_at.is_some() {
                                    self.fail("incr result has an expiry it never had");
                                }
                                h.expires_at
                            }
                            other => self.fail(&format!(
                                "{name} returned {n} but an immediate read gives {other:?}"
                            )),
                        }
                    }
                };
                self.store(&k, text, exp);
            }
            Err(Error::NotANumber) => {
                self.present(&k, &format!("{name}: NotANumber"));
                if from_existing.is_some() {
                    self.fail(&format!("{name}: NotANumber for a decimal value"));
                }
            }
            Err(Error::ValueTooLarge { len, max }) => {
                let digits = |n: Option<u64>| n.map(|n| n.to_string().len());
                if max != self.max_value
                    || len <= max
                    || (digits(from_existing) != Some(len) && digits(init) != Some(len))
                {
                    self.fail(&format!(
                        "{name}: ValueTooLarge {{ len: {len}, max: {max} }} unexplained"
                    ));
                }
            }
            Err(e) => self.fail(&format!("{name} failed: {e}")),
        }
    }

    fn op_for_each(&mut self, stop_after: Option<u8>, small: Option<bool>) {
        if let Some(small_value) = small {
            let (kl, vl, needed) = if small_value {
                (self.max_key, self.max_value - 1, self.max_value)
            } else {
                (self.max_key - 1, self.max_value, self.max_key)
            };
            // A zero maximum value length cannot have a too-small buffer.
            if !(small_value && self.max_value == 0) {
                let r = self
                    .cache
                    .for_each(&mut vec![0; kl], &mut vec![0; vl], |_, _| {
                        ControlFlow::Continue(())
                    });
                if r != Err(Error::BufferTooSmall { needed }) {
                    self.fail(&format!("for_each with small buffers: {r:?}"));
                }
            }
        }
        let limit = stop_after.map(|n| n as usize + 1);
        let mut seen: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let r = self.cache.for_each(
            &mut vec![0; self.max_key],
            &mut vec![0; self.max_value],
            |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                if limit.is_some_and(|l| seen.len() >= l) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        if let Err(e) = r {
            self.fail(&format!("for_each failed: {e}"));
        }
        if limit.is_some_and(|l| seen.len() > l) {
            self.fail("for_each went on after Break");
        }
        let mut keys = HashSet::new();
        for (k, v) in &seen {
            if !keys.insert(k.clone()) {
                self.fail(&format!("for_each visited {k:?} twice"));
            }
            self.hit(k, v, None);
        }
        if seen.len() > self.cache.len() {
            self.fail("for_each visited more entries than len()");
        }
        if limit.is_none_or(|l| seen.len() < l) {
            // The walk was complete: every key it did not visit is not resident.
            let gone: Vec<Vec<u8>> = self
                .model
                .keys()
                .filter(|k| !keys.contains(*k))
                .cloned()
                .collect();
            for k in gone {
                if self.live(&k).is_some() {
                    self.absent(&k);
                }
            }
        }
    }

    fn op_bad_key(&mut self, op: KeyOp, empty: bool, extra: u16) {
        let k: Vec<u8> = if empty {
            Vec::new()
        } else {
            vec![b'k'; self.max_key + 1 + extra as usize % 5000]
        };
        let key_err = if empty {
            Error::EmptyKey
        } else {
            Error::KeyTooLong {
                len: k.len(),
                max: self.max_key,
            }
        };
        let v = b"v".to_vec();
        let mut out = vec![0u8; self.max_value];
        let what = format!("{op:?} with a bad key of {} bytes", k.len());
        match op {
            KeyOp::Get => self.expect_error(&[key_err], &what, |c| c.get(&k, &mut out)),
            KeyOp::GetEntry => self.expect_error(&[key_err], &what, |c| c.get_entry(&k, &mut out)),
            KeyOp::Contains => self.expect_error(&[key_err], &what, |c| c.contains(&k)),
            KeyOp::Set => self.expect_error(&[key_err], &what, |c| c.set(&k, &v)),
            KeyOp::SetTtl => {
                // The TTL is checked first: without a clock that is the error.
                let want = if self.clock.is_some() {
                    key_err
                } else {
                    Error::NoClock
                };
                self.expect_error(&[want], &what, |c| c.set_ttl(&k, &v, 5))
            }
            KeyOp::Add => self.expect_error(&[key_err], &what, |c| c.add(&k, &v, None)),
            KeyOp::Replace => self.expect_error(&[key_err], &what, |c| c.replace(&k, &v, None)),
            KeyOp::Cas => self.expect_error(&[key_err], &what, |c| {
                c.cas(&k, CasToken::from_u64(0), &v, None)
            }),
            KeyOp::Remove => self.expect_error(&[key_err], &what, |c| c.remove(&k)),
            KeyOp::Incr => self.expect_error(&[key_err], &what, |c| c.incr(&k, 1, Some(1))),
            KeyOp::Decr => self.expect_error(&[key_err], &what, |c| c.decr(&k, 1, Some(1))),
        }
    }

    fn op_bad_value(&mut self, op: ValOp, key: K, extra: u16) {
        let k = self.key(key);
        let v = vec![b'v'; self.max_value + 1 + extra as usize % 5000];
        let err = Error::ValueTooLarge {
            len: v.len(),
            max: self.max_value,
        };
        let what = format!("{op:?} with a value of {} bytes", v.len());
        match op {
            ValOp::Set => self.expect_error(&[err], &what, |c| c.set(&k, &v)),
            ValOp::SetTtl => {
                let want = if self.clock.is_some() {
                    err
                } else {
                    Error::NoClock
                };
                self.expect_error(&[want], &what, |c| c.set_ttl(&k, &v, 5))
            }
            ValOp::Add => self.expect_error(&[err], &what, |c| c.add(&k, &v, None)),
            ValOp::Replace => self.expect_error(&[err], &what, |c| c.replace(&k, &v, None)),
            ValOp::Cas => self.expect_error(&[err], &what, |c| {
                c.cas(&k, CasToken::from_u64(0), &v, None)
            }),
        }
    }

    /// Checks run after every operation.
    fn after(&self, op: &dyn core::fmt::Debug) {
        common::assert_valid(&self.cache, &(self.step, op));
        let len = self.cache.len();
        if len > self.model.len() {
            self.fail(&format!(
                "len() = {len} but the model holds only {} keys (after {op:?})",
                self.model.len()
            ));
        }
        if len > self.cache.capacity_for(1, 0) {
            self.fail("len() exceeds the number of slots");
        }
        if let Some(cap) = self.setup.max_entries {
            let shards = self.cache.shards() as u64;
            let bound = cap.div_ceil(shards) * shards;
            if len as u64 > bound {
                self.fail(&format!("len() = {len} exceeds max_entries {cap}"));
            }
        }
        let stats = self.cache.stats();
        if stats.entries != len as u64 {
            self.fail("stats().entries disagrees with len()");
        }
    }
}
