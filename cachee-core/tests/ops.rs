//! Every operation, its results and its errors.

mod common;

use cachee_core::{ByteRegion, Cache, CasOutcome, Config, Error};
use common::{TestHooks, cache_with, get, region};

fn small() -> Config {
    Config::new().max_key_len(64).max_value_len(1024).seed(42)
}

#[test]
fn set_get_overwrite_remove() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small()).unwrap();
    assert!(c.is_empty());
    assert_eq!(get(&c, b"k"), None);
    c.set(b"k", b"one").unwrap();
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"one"[..]));
    // Same size class: rewritten in place.
    c.set(b"k", b"two").unwrap();
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"two"[..]));
    // Different size class: moved to another slot.
    let big = vec![7u8; 900];
    c.set(b"k", &big).unwrap();
    assert_eq!(get(&c, b"k"), Some(big));
    c.set(b"k", b"").unwrap();
    assert_eq!(get(&c, b"k"), Some(vec![]));
    assert_eq!(c.len(), 1);
    assert!(c.remove(b"k").unwrap());
    assert!(!c.remove(b"k").unwrap());
    assert_eq!(get(&c, b"k"), None);
    assert!(c.is_empty());
    let s = c.stats();
    assert_eq!((s.inserts, s.updates, s.removes), (1, 3, 1));
    c.validate().unwrap();
}

#[test]
fn keys_are_exact_bytes() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small()).unwrap();
    let keys: [&[u8]; 6] = [b"a", b"a\0", b"\0a", b"ab", b"abcdefgh", b"abcdefgh\0"];
    for (i, k) in keys.iter().enumerate() {
        c.set(k, &[i as u8; 3]).unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(get(&c, k), Some(vec![i as u8; 3]), "key {k:?}");
    }
    assert_eq!(c.len(), keys.len());
    c.validate().unwrap();
}

#[test]
fn contains_and_stats_count_hits_and_misses() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small()).unwrap();
    c.set(b"x", b"1").unwrap();
    assert!(c.contains(b"x").unwrap());
    assert!(!c.contains(b"y").unwrap());
    assert_eq!(get(&c, b"x").as_deref(), Some(&b"1"[..]));
    let s = c.stats();
    assert_eq!((s.hits, s.misses), (2, 1));
    assert_eq!(s.entries, 1);
    let per_shard: u64 = (0..c.shards())
        .map(|i| c.shard_stats(i).unwrap().hits)
        .sum();
    assert_eq!(per_shard, 2);
    assert!(c.shard_stats(c.shards()).is_none());
}

#[test]
fn add_and_replace() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small()).unwrap();
    assert!(!c.replace(b"k", b"r", None).unwrap());
    assert_eq!(get(&c, b"k"), None);
    assert!(c.add(b"k", b"first", None).unwrap());
    assert!(!c.add(b"k", b"second", None).unwrap());
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"first"[..]));
    assert!(c.replace(b"k", b"third", None).unwrap());
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"third"[..]));
}

#[test]
fn compare_and_swap_by_version() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small()).unwrap();
    let mut buf = [0u8; 64];
    assert!(c.get_entry(b"k", &mut buf).unwrap().is_none());
    c.set(b"k", b"v1").unwrap();
    let t1 = c.get_entry(b"k", &mut buf).unwrap().unwrap().token;
    // Reading again gives the same token; the version has not changed.
    assert_eq!(c.get_entry(b"k", &mut buf).unwrap().unwrap().token, t1);
    assert_eq!(c.cas(b"k", t1, b"v2", None).unwrap(), CasOutcome::Stored);
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"v2"[..]));
    // The old token is stale now, even for a value of the same size.
    assert_eq!(c.cas(b"k", t1, b"v3", None).unwrap(), CasOutcome::Mismatch);
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"v2"[..]));
    let t2 = c.get_entry(b"k", &mut buf).unwrap().unwrap().token;
    // A token survives its round trip through an integer.
    let t2 = cachee_core::CasToken::from_u64(t2.to_u64());
    assert_eq!(
        c.cas(b"k", t2, &[9; 500], None).unwrap(),
        CasOutcome::Stored
    );
    assert_eq!(
        c.cas(b"missing", t2, b"x", None).unwrap(),
        CasOutcome::NotFound
    );
    // Remove and re-add: the old token does not match the new entry.
    let t3 = c.get_entry(b"k", &mut [0u8; 1024]).unwrap().unwrap().token;
    c.remove(b"k").unwrap();
    c.set(b"k", &[9; 500]).unwrap();
    assert_eq!(c.cas(b"k", t3, b"x", None).unwrap(), CasOutcome::Mismatch);
}

#[test]
fn incr_and_decr_on_decimal_text() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small()).unwrap();
    assert_eq!(c.incr(b"n", 1, None).unwrap(), None);
    assert_eq!(get(&c, b"n"), None);
    assert_eq!(c.incr(b"n", 5, Some(10)).unwrap(), Some(10));
    assert_eq!(c.incr(b"n", 5, Some(10)).unwrap(), Some(15));
    assert_eq!(get(&c, b"n").as_deref(), Some(&b"15"[..]));
    assert_eq!(
        c.decr(b"n", 20, None).unwrap(),
        Some(0),
        "decr stops at zero"
    );
    c.set(b"n", b"18446744073709551615").unwrap();
    assert_eq!(
        c.incr(b"n", 2, None).unwrap(),
        Some(1),
        "incr wraps like memcached"
    );
    c.set(b"t", b"12a").unwrap();
    assert_eq!(c.incr(b"t", 1, None), Err(Error::NotANumber));
    assert_eq!(
        get(&c, b"t").as_deref(),
        Some(&b"12a"[..]),
        "failed incr keeps the value"
    );
    c.set(b"e", b"").unwrap();
    assert_eq!(c.decr(b"e", 1, None), Err(Error::NotANumber));
    c.set(b"long", b"123456789012345678901").unwrap();
    assert_eq!(c.incr(b"long", 1, None), Err(Error::NotANumber));
    c.validate().unwrap();
}

#[test]
fn get_variants_and_small_buffers() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small()).unwrap();
    c.set(b"k", b"hello world").unwrap();
    let mut tiny = [0xeeu8; 4];
    assert_eq!(
        c.get(b"k", &mut tiny),
        Err(Error::BufferTooSmall { needed: 11 })
    );
    assert_eq!(tiny, [0xee; 4], "nothing copied into a too-small buffer");
    assert_eq!(c.get_with::<16, _>(b"k", |v| v.len()).unwrap(), Some(11));
    assert_eq!(
        c.get_with::<8, _>(b"k", |v| v.len()),
        Err(Error::BufferTooSmall { needed: 11 })
    );
    assert_eq!(c.get_with::<8, _>(b"missing", |v| v.len()).unwrap(), None);
    assert_eq!(
        c.get_vec(b"k").unwrap().as_deref(),
        Some(&b"hello world"[..])
    );
    let hit = c.get_entry(b"k", &mut [0u8; 32]).unwrap().unwrap();
    assert_eq!(hit.len, 11);
    assert_eq!(hit.expires_at, None);
}

#[test]
fn bad_input_is_rejected_and_loses_nothing() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small()).unwrap();
    c.set(b"k", b"keep").unwrap();
    assert_eq!(c.set(b"", b"v"), Err(Error::EmptyKey));
    assert_eq!(c.get(b"", &mut [0; 4]), Err(Error::EmptyKey));
    assert_eq!(c.remove(b""), Err(Error::EmptyKey));
    let long_key = [b'k'; 65];
    assert_eq!(
        c.set(&long_key, b"v"),
        Err(Error::KeyTooLong { len: 65, max: 64 })
    );
    assert_eq!(
        c.contains(&long_key),
        Err(Error::KeyTooLong { len: 65, max: 64 })
    );
    let huge = vec![0u8; 1025];
    assert_eq!(
        c.set(b"k", &huge),
        Err(Error::ValueTooLarge {
            len: 1025,
            max: 1024
        })
    );
    assert_eq!(
        c.add(b"k2", &huge, None),
        Err(Error::ValueTooLarge {
            len: 1025,
            max: 1024
        })
    );
    assert_eq!(
        get(&c, b"k").as_deref(),
        Some(&b"keep"[..]),
        "failed writes keep the old value"
    );
    assert_eq!(get(&c, b"k2"), None);
    // TTLs need a clock, and must be positive.
    assert_eq!(c.set_ttl(b"k", b"v", 10), Err(Error::NoClock));
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"keep"[..]));
    let w2 = region(common::sized(256 << 10));
    let t = cache_with(&w2, &small(), TestHooks::new(1));
    assert_eq!(t.set_ttl(b"k", b"v", 0), Err(Error::InvalidTtl));
    assert_eq!(t.set_ttl(b"k", b"v", u64::MAX), Err(Error::InvalidTtl));
    assert_eq!(get(&t, b"k"), None);
    // Every error displays a message.
    for e in [
        Error::EmptyKey,
        Error::NoClock,
        Error::Busy,
        Error::BadMagic,
        Error::NotReady,
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn clear_empties_every_shard_and_keeps_working() {
    let w = region(common::sized(2 << 20));
    let c = Cache::format(cachee_core::Words::from(&w[..]), &small().shards(4)).unwrap();
    for i in 0..common::scaled(2000) as u32 {
        c.set(&i.to_le_bytes(), &i.to_le_bytes()).unwrap();
    }
    assert!(!c.is_empty());
    c.clear().unwrap();
    assert_eq!(c.len(), 0);
    assert_eq!(get(&c, &7u32.to_le_bytes()), None);
    c.validate().unwrap();
    c.set(b"after", b"clear").unwrap();
    assert_eq!(get(&c, b"after").as_deref(), Some(&b"clear"[..]));
    c.validate().unwrap();
}

#[test]
fn values_of_every_size_round_trip() {
    let w = region(common::sized(1 << 20));
    let c = Cache::format(
        cachee_core::Words::from(&w[..]),
        &Config::new().max_key_len(32).max_value_len(3000),
    )
    .unwrap();
    let sizes: Vec<usize> = if cfg!(miri) {
        vec![0, 1, 7, 8, 9, 255, 3000]
    } else {
        (0..=3000).step_by(13).collect()
    };
    for &n in &sizes {
        let v = common::stamped(n as u64, 1, n);
        c.set(format!("k{n}").as_bytes(), &v).unwrap();
        assert_eq!(get(&c, format!("k{n}").as_bytes()), Some(v), "size {n}");
    }
    c.validate().unwrap();
}

#[test]
fn byte_region_over_a_heap_buffer() {
    let mut words = vec![0u64; (128 << 10) / 8];
    let len = words.len() * 8;
    // SAFETY: `words` outlives the slice, which is the only access to it from here on.
    let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
    let c = Cache::format(ByteRegion::new(bytes).unwrap(), &small()).unwrap();
    c.set(b"k", b"v").unwrap();
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"v"[..]));
    let mut raw = vec![0u8; 4096 + 3];
    let off = raw.as_ptr().align_offset(8) + 1;
    assert_eq!(
        ByteRegion::new(&mut raw[off..]).unwrap_err(),
        Error::Misaligned {
            required: cachee_core::WORD_BYTES
        }
    );
}
