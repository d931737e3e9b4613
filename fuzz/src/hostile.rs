//! Hostile-region harnesses: arbitrary bytes, and damaged copies of valid images.
//!
//! Whatever the region holds, `Cache::attach` refuses it or returns a handle; every
//! operation on the handle returns (no panic, no hang — a hang shows up as a fuzzer
//! timeout); after `repair()` the region passes `check` with no problem, keeps passing
//! it through further operations, behaves like a cache (a value just set reads back),
//! and a second `repair()` rebuilds nothing. For images with entry checksums that
//! took exactly one bit or byte of damage, every value read is one that was written
//! for that key at some point (checksums turn damage into misses, never wrong values).

use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bolero::TypeGenerator;
use cachee_core::{
    AtomicWord, Cache, CasOutcome, Config, Error, HEADER_BYTES, HashKind, WORD_BYTES, Word,
};
use hashbrown::{HashMap, HashSet};

use crate::common::{self, FuzzHooks};

/// Raw-bytes input.
#[derive(Debug, Clone, TypeGenerator)]
pub struct BytesInput {
    /// 0: the bytes are the region. 1: the same, with a correct magic, version,
    /// layout hash, ready mark and header checksum written over the first 24 bytes
    /// (so the fuzzer controls the layout parameters). 2: a valid image with the
    /// bytes written over its shards, starting `at` words past the header.
    pub mode: u8,
    /// Template selector and offset for mode 2.
    pub at: u16,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One piece of damage to an image.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum Mutation {
    /// Flip one bit of one word.
    FlipBit {
        /// Word index (modulo the region).
        word: u32,
        /// Bit (modulo the word size).
        bit: u8,
    },
    /// Overwrite one byte.
    SetByte {
        /// Byte offset (modulo the region).
        off: u32,
        /// New value.
        val: u8,
    },
    /// Overwrite one word.
    SetWord {
        /// Word index (modulo the region).
        word: u32,
        /// New value.
        val: u64,
    },
    /// Overwrite one `u32` header field.
    Header {
        /// Field (modulo 64).
        field: u8,
        /// New value.
        val: u32,
    },
    /// Overwrite a `u32` at a byte offset rounded down to 4 (small values matter:
    /// counts, links and lengths).
    SetU32 {
        /// Byte offset (modulo the region).
        off: u32,
        /// New value.
        val: u32,
    },
    /// Copy a run of words elsewhere (duplicates entries, index buckets, lists).
    Copy {
        /// Source word (modulo the region).
        from: u32,
        /// Destination word (modulo the region).
        to: u32,
        /// Words (modulo 64, plus one).
        len: u8,
    },
}

/// Damaged-image input.
#[derive(Debug, Clone, TypeGenerator)]
pub struct ImageInput {
    /// Which template image.
    pub template: u8,
    /// The damage, applied in order.
    pub muts: Vec<Mutation>,
    /// Recompute the header checksum after the damage, so that damaged layout
    /// parameters reach the layout checks instead of the checksum check.
    pub fix_checksum: bool,
    /// Ticks past the image's clock at attach time (expires some entries).
    pub later: u16,
}

/// A formatted, filled region and every value ever written for each key.
#[derive(Debug)]
pub struct Template {
    /// The configuration.
    pub config: Config,
    /// The region's words.
    pub words: Vec<Word>,
    /// Key → values written for it.
    pub history: HashMap<Vec<u8>, HashSet<Vec<u8>>>,
    /// The keys the image was built with.
    pub keys: Vec<Vec<u8>>,
    /// Whether entries carry checksums.
    pub checksums: bool,
}

/// The clock value the templates were built at.
pub const TEMPLATE_NOW: u64 = 10_000;

fn build_template(bytes: usize, config: Config, seed: u64) -> Template {
    let words = common::region(bytes);
    let clock = AtomicU64::new(TEMPLATE_NOW - 500);
    let c = Cache::format_with_hooks(&words[..], &config, FuzzHooks::new(Some(&clock)))
        .expect("template formats");
    let max_v = c.max_value_len();
    let max_k = c.max_key_len();
    let mut history: HashMap<Vec<u8>, HashSet<Vec<u8>>> = HashMap::new();
    let mut keys = Vec::new();
    let mut x = seed;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    let mut record = |k: &[u8], v: &[u8]| {
        history.entry(k.to_vec()).or_default().insert(v.to_vec());
    };
    for i in 0..300u64 {
        let mut k = format!("key{}", i % 90).into_bytes();
        k.truncate(max_k);
        if i < 90 {
            keys.push(k.clone());
        }
        // Sizes drift upwards so that pages change class.
        let len = ((next() as usize % 64) + (i as usize * max_v) / 400).min(max_v);
        let v = if len >= 16 {
            common::stamped(i % 90, i, len)
        } else {
            vec![i as u8; len]
        };
        match i % 11 {
            3 => {
                if c.set_ttl(&k, &v, 1 + next() % 1000).is_ok() {
                    record(&k, &v);
                }
            }
            7 => {
                let _ = c.remove(&k);
            }
            9 => {
                let mut kc = format!("cnt{}", i % 5).into_bytes();
                kc.truncate(max_k);
                if let Ok(Some(n)) = c.incr(&kc, next() % 100, Some(i)) {
                    record(&kc, n.to_string().as_bytes());
                    keys.push(kc);
                }
            }
            _ => {
                if c.set(&k, &v).is_ok() {
                    record(&k, &v);
                }
            }
        }
        if i % 37 == 0 {
            clock.fetch_add(7, Ordering::SeqCst);
            let mut buf = vec![0u8; max_v];
            let _ = c.get(&k, &mut buf);
        }
    }
    common::assert_valid(&c, &"template");
    keys.sort();
    keys.dedup();
    Template {
        checksums: false,
        config,
        words: common::snapshot(&words),
        history,
        keys,
    }
}

/// The template images (built once per process).
pub fn templates() -> &'static [Template] {
    static T: OnceLock<Vec<Template>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = vec![
            build_template(
                16 << 10,
                Config::new()
                    .shards(1)
                    .page_size(512)
                    .max_key_len(16)
                    .max_value_len(200)
                    .seed(11),
                1,
            ),
            build_template(
                32 << 10,
                Config::new()
                    .shards(2)
                    .page_size(1024)
                    .max_key_len(16)
                    .max_value_len(300)
                    .checksums(true)
                    .seed(12),
                2,
            ),
            build_template(
                16 << 10,
                Config::new()
                    .shards(1)
                    .page_size(1024)
                    .max_key_len(16)
                    .max_value_len(400)
                    .expected_entry(16, 400)
                    .hash_kind(HashKind::Colliding),
                3,
            ),
            build_template(
                8 << 10,
                Config::new()
                    .shards(1)
                    .page_size(512)
                    .max_key_len(8)
                    .max_value_len(100)
                    .max_entries(20)
                    .checksums(true)
                    .seed(14),
                4,
            ),
        ];
        v[1].checksums = true;
        v[3].checksums = true;
        v
    })
}

// --- header fields ------------------------------------------------------------------

fn field(words: &[AtomicWord], i: usize) -> u32 {
    let off = i * 4;
    let w = words[off / WORD_BYTES].load(Ordering::Relaxed);
    (w >> (8 * (off % WORD_BYTES))) as u32
}

fn set_field(words: &[AtomicWord], i: usize, v: u32) {
    let off = i * 4;
    let shift = 8 * (off % WORD_BYTES);
    let w = &words[off / WORD_BYTES];
    let old = w.load(Ordering::Relaxed);
    let mask = (u32::MAX as Word) << shift;
    w.store((old & !mask) | ((v as Word) << shift), Ordering::Relaxed);
}

/// Rewrites the header checksum (FNV-1a over fields 6–63, `docs/format.md`).
fn fix_header_checksum(words: &[AtomicWord]) {
    if words.len() * WORD_BYTES < HEADER_BYTES {
        return;
    }
    let mut h: u32 = 0x811c_9dc5;
    for i in 6..64 {
        for b in field(words, i).to_le_bytes() {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    set_field(words, 5, h);
}

// --- the harnesses ------------------------------------------------------------------

/// Raw bytes (see [`BytesInput`]).
pub fn run_bytes(input: &BytesInput) {
    let ts = templates();
    let words = match input.mode % 3 {
        0 => common::region_from_bytes(&input.bytes),
        1 => {
            let mut b = input.bytes.clone();
            if b.len() < HEADER_BYTES {
                b.resize(HEADER_BYTES, 0);
            }
            let w = common::region_from_bytes(&b);
            let t = common::region_from(&ts[0].words[..HEADER_BYTES / WORD_BYTES]);
            for i in 0..5 {
                set_field(&w, i, field(&t, i));
            }
            fix_header_checksum(&w);
            w
        }
        _ => {
            let t = &ts[input.at as usize % ts.len()];
            let w = common::region_from(&t.words);
            let src = common::region_from_bytes(&input.bytes);
            let start = HEADER_BYTES / WORD_BYTES + (input.at as usize / ts.len()) % w.len();
            for (i, s) in src.iter().enumerate() {
                if let Some(d) = w.get(start + i) {
                    d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
            w
        }
    };
    crate::known_bugs::tolerate(|| exercise_region(&words, None, 0));
}

/// A damaged template image (see [`ImageInput`]).
pub fn run_image(input: &ImageInput) {
    let ts = templates();
    let t = &ts[input.template as usize % ts.len()];
    let words = common::region_from(&t.words);
    let n = words.len();
    for m in &input.muts {
        match *m {
            Mutation::FlipBit { word, bit } => {
                words[word as usize % n]
                    .fetch_xor(1 << (bit as usize % (WORD_BYTES * 8)), Ordering::Relaxed);
            }
            Mutation::SetByte { off, val } => {
                let off = off as usize % (n * WORD_BYTES);
                let w = &words[off / WORD_BYTES];
                let shift = 8 * (off % WORD_BYTES);
                let old = w.load(Ordering::Relaxed);
                w.store(
                    (old & !((0xff as Word) << shift)) | ((val as Word) << shift),
                    Ordering::Relaxed,
                );
            }
            Mutation::SetWord { word, val } => {
                words[word as usize % n].store(val as Word, Ordering::Relaxed);
            }
            Mutation::Header { field, val } => set_field(&words, field as usize % 64, val),
            Mutation::SetU32 { off, val } => {
                set_field(&words, (off as usize % (n * WORD_BYTES)) / 4, val)
            }
            Mutation::Copy { from, to, len } => {
                let (from, to) = (from as usize % n, to as usize % n);
                for i in 0..(len as usize % 64) + 1 {
                    if let (Some(s), Some(d)) = (words.get(from + i), words.get(to + i)) {
                        d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                }
            }
        }
    }
    if input.fix_checksum {
        fix_header_checksum(&words);
    }
    // One bit or byte of damage (and an untouched header checksum, so the layout
    // and its checksum flag are the template's): values must stay right.
    let single = input.muts.len() == 1
        && matches!(
            input.muts[0],
            Mutation::FlipBit { .. } | Mutation::SetByte { .. }
        )
        && !input.fix_checksum;
    let oracle = (t.checksums && single).then_some(t);
    crate::known_bugs::tolerate(|| exercise_region(&words, oracle, input.later as u64));
}

/// Values that may legitimately be read: the template's history plus this run's
/// writes.
struct Oracle<'t> {
    t: &'t Template,
    written: HashMap<Vec<u8>, HashSet<Vec<u8>>>,
}

impl Oracle<'_> {
    fn note(&mut self, k: &[u8], v: &[u8]) {
        self.written
            .entry(k.to_vec())
            .or_default()
            .insert(v.to_vec());
    }
    fn check(&self, k: &[u8], v: &[u8], what: &str) {
        let ok = |h: &HashMap<Vec<u8>, HashSet<Vec<u8>>>| h.get(k).is_some_and(|s| s.contains(v));
        if !ok(&self.t.history) && !ok(&self.written) {
            panic!(
                "{what}: read {v:?} for key {k:?}, a value never written for it (checksummed image, one mutation)"
            );
        }
    }
}

type HCache<'a> = Cache<&'a [AtomicWord], FuzzHooks<'a>>;

/// Attaches to `words` and runs the fixed sequence.
fn exercise_region(words: &[AtomicWord], oracle: Option<&Template>, later: u64) {
    use crate::trace::count;
    count("hostile.run");
    match exercise(words, oracle, later) {
        Outcome::Refused => count("hostile.refused"),
        Outcome::SelfLocked => count("hostile.self_locked"),
        Outcome::Checked { rebuilt } => {
            count("hostile.repaired_and_checked");
            if rebuilt {
                count("hostile.repair_rebuilt_something");
            }
        }
    }
}

/// How a run ended.
enum Outcome {
    Refused,
    SelfLocked,
    Checked { rebuilt: bool },
}

fn exercise(words: &[AtomicWord], oracle: Option<&Template>, later: u64) -> Outcome {
    let clock = AtomicU64::new(TEMPLATE_NOW + later);
    let mut hooks = FuzzHooks::new(Some(&clock));
    hooks.id = 0x5EED;
    hooks.patience = 4096;
    let Ok(c) = Cache::attach_with_hooks(words, hooks) else {
        return Outcome::Refused;
    };
    let mut oracle = oracle.map(|t| Oracle {
        t,
        written: HashMap::new(),
    });
    // A lock word that already holds this handle's id looks held by a live owner: the
    // shard answers Busy and cannot be repaired by this handle (documented behaviour).
    let self_locked = (0..c.shards()).any(|s| c.testing_lock_owner(s) == 0x5EED);

    let max_k = c.max_key_len();
    let max_v = c.max_value_len();
    let keys = probe_keys(oracle.as_ref().map(|o| o.t), max_k);

    // 1. Everything, on the damaged region.
    churn(&c, &keys, &mut oracle, &clock, 0);
    let _ = c.check(|_| {});
    let _ = c.stats();
    let _ = c.len();
    let _ = c.capacity();
    let _ = c.footprint(8, 32);
    for s in 0..=c.shards() {
        let _ = c.shard_stats(s);
    }

    // 2. Repair, then every invariant holds.
    let rep = c.repair();
    if self_locked {
        // Nothing more can be asserted about a shard this handle cannot lock.
        churn(&c, &keys, &mut oracle, &clock, 1);
        return Outcome::SelfLocked;
    }
    let rebuilt = match rep {
        Ok(r) => r.shards_rebuilt > 0,
        Err(e) => panic!("repair failed: {e}"),
    };
    common::assert_valid(&c, &"repair");

    // 3. It works as a cache and stays valid.
    let mut buf = vec![0u8; max_v];
    let fresh: Vec<Vec<u8>> = (0..6u8)
        .map(|i| {
            let mut k = vec![b'~', i, b'f', b'r', b'e', b's', b'h'];
            k.truncate(max_k.max(1));
            if max_k < 2 {
                k = vec![0xF0 | i];
            }
            k
        })
        .collect();
    for (i, k) in fresh.iter().enumerate() {
        let v: Vec<u8> = (0..(i * 7).min(max_v)).map(|j| (i + j) as u8).collect();
        let set = c.set(k, &v);
        if let Err(e) = set {
            panic!(
                "set({k:?}, {} bytes) after repair failed: {e}; len {} stats {:?}\n{}",
                v.len(),
                c.len(),
                c.stats(),
                crate::peek::Peek::new(c.region())
                    .map(|p| p.describe_classes(c.region()))
                    .unwrap_or_default()
            );
        }
        if let Some(o) = oracle.as_mut() {
            o.note(k, &v);
        }
        match c.get(k, &mut buf) {
            Ok(Some(n)) if buf[..n] == v[..] => {}
            other => panic!("after repair, set({k:?}, {v:?}) then get gave {other:?}"),
        }
        common::assert_valid(&c, &("set after repair", k));
    }
    // Entries can be evicted by any later write (a page move drains a whole page),
    // so each check below follows its write immediately.
    let k0 = &fresh[0];
    let v0 = [1u8; 1];
    let v0 = &v0[..max_v.min(1)];
    let set = c.set(k0, v0);
    match (set, c.remove(k0), c.get(k0, &mut buf)) {
        (Ok(()), Ok(true), Ok(None)) => {}
        other => panic!("set, remove, get of {k0:?} after repair gave {other:?}"),
    }
    if let Some(o) = oracle.as_mut() {
        o.note(k0, v0);
    }
    if max_v >= 2 {
        let first = c.incr(k0, 1, Some(5));
        let second = c.incr(k0, 1, None);
        match (first, second) {
            (Ok(Some(5)), Ok(Some(6))) => {}
            other => panic!("incr after repair gave {other:?}"),
        }
        if let Some(o) = oracle.as_mut() {
            o.note(k0, b"5");
            o.note(k0, b"6");
        }
    }
    common::assert_valid(&c, &"incr after repair");
    churn(&c, &keys, &mut oracle, &clock, 2);
    common::assert_valid(&c, &"operations after repair");
    match c.repair() {
        Ok(r) if r.shards_rebuilt == 0 => {}
        other => panic!("second repair did {other:?}"),
    }
    if let Err(e) = c.clear() {
        panic!("clear after repair failed: {e}");
    }
    if !c.is_empty() {
        panic!("len() after clear is {}", c.len());
    }
    common::assert_valid(&c, &"clear after repair");
    Outcome::Checked { rebuilt }
}

/// The keys the sequence uses: the template's (if known) and a few more, cut to the
/// region's maximum key length.
fn probe_keys(t: Option<&Template>, max_k: usize) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = match t {
        Some(t) => t.keys.clone(),
        None => templates()[0].keys.iter().take(24).cloned().collect(),
    };
    keys.extend((0..6).map(|i| format!("cnt{i}").into_bytes()));
    keys.push(vec![0xAB; 300]);
    for k in &mut keys {
        k.truncate(max_k.max(1));
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Every operation on every key (results unchecked, except against the oracle).
fn churn(
    c: &HCache<'_>,
    keys: &[Vec<u8>],
    oracle: &mut Option<Oracle<'_>>,
    clock: &AtomicU64,
    round: usize,
) {
    let max_v = c.max_value_len();
    let max_k = c.max_key_len();
    // Values for writes: a big buffer only if the region's maximum is sane.
    let cap = max_v.min(1 << 16);
    let mut buf = vec![0u8; cap];
    let seen = |oracle: &Option<Oracle<'_>>, k: &[u8], v: &[u8], what: &str| {
        if let Some(o) = oracle {
            o.check(k, v, what);
        }
    };
    for (i, k) in keys.iter().enumerate() {
        if let Ok(Some(n)) = c.get(k, &mut buf) {
            seen(oracle, k, &buf[..n], "get");
        }
        let token = match c.get_entry(k, &mut buf) {
            Ok(Some(h)) => {
                seen(oracle, k, &buf[..h.len], "get_entry");
                Some(h.token)
            }
            _ => None,
        };
        let _ = c.contains(k);
        let _ = c.get_with::<32, usize>(k, |v| v.len());
        let len = (i * 13 + round * 5) % (cap + 1);
        let v = common::stamped(i as u64, round as u64, len.max(16).min(cap));
        let mut wrote = |v: &[u8]| {
            if let Some(o) = oracle.as_mut() {
                o.note(k, v);
            }
        };
        match (i + round) % 9 {
            0 => {
                if c.set(k, &v).is_ok() {
                    wrote(&v);
                }
            }
            1 => {
                if c.set_ttl(k, &v, 1 + (i as u64 % 3)).is_ok() {
                    wrote(&v);
                }
            }
            2 => {
                if let Ok(true) = c.add(k, &v, None) {
                    wrote(&v);
                }
            }
            3 => {
                if let Ok(true) = c.replace(k, &v, Some(50)) {
                    wrote(&v);
                }
            }
            4 => {
                if let Some(t) = token {
                    if let Ok(CasOutcome::Stored) = c.cas(k, t, &v, None) {
                        wrote(&v);
                    }
                }
            }
            5 => {
                let _ = c.remove(k);
            }
            6 => {
                if let Ok(Some(n)) = c.incr(k, i as u64, Some(7)) {
                    wrote(n.to_string().as_bytes());
                }
            }
            7 => {
                if let Ok(Some(n)) = c.decr(k, 3, None) {
                    wrote(n.to_string().as_bytes());
                }
            }
            _ => {
                let _ = c.get_vec(k);
            }
        }
        if i % 8 == 0 {
            clock.fetch_add(1, Ordering::SeqCst);
        }
    }
    // A walk with adequate buffers (when the maximum is sane), and with small ones.
    if max_v <= 1 << 22 && max_k <= 1 << 12 {
        let mut kb = vec![0u8; max_k];
        let mut vb = vec![0u8; max_v];
        let mut n = 0usize;
        let _ = c.for_each(&mut kb, &mut vb, |k, v| {
            seen(oracle, k, v, "for_each");
            n += 1;
            if n > 1 << 20 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    }
    let r = c.for_each(&mut [0u8; 0], &mut [0u8; 0], |_, _| {
        ControlFlow::Continue(())
    });
    if !matches!(r, Err(Error::BufferTooSmall { .. })) {
        panic!("for_each with empty buffers gave {r:?}");
    }
}
