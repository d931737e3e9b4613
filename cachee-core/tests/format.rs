//! Formatting, attaching and the validation of region headers.

mod common;

use cachee_core::{Cache, Config, Error, FORMAT_VERSION, WORD_BYTES, Word};
use common::{get, region};
use std::sync::atomic::Ordering;

/// Region sizes: smaller under miri, where every word access is interpreted (the
/// foreign-region test alone copies its region a dozen times).
const LARGE: usize = if cfg!(miri) { 128 << 10 } else { 512 << 10 };
const SMALL: usize = if cfg!(miri) { 64 << 10 } else { 256 << 10 };

fn cfg() -> Config {
    Config::new().max_key_len(32).max_value_len(512).seed(7)
}

/// Copies a region word by word.
fn copy(w: &[cachee_core::AtomicWord]) -> Vec<cachee_core::AtomicWord> {
    w.iter()
        .map(|x| cachee_core::AtomicWord::new(x.load(Ordering::Relaxed)))
        .collect()
}

/// Overwrites header field `field` (a `u32` at byte `4 * field`).
fn poke(w: &[cachee_core::AtomicWord], field: usize, value: u32) {
    let byte = field * 4;
    let word = &w[byte / WORD_BYTES];
    let shift = (byte % WORD_BYTES) * 8;
    let old = word.load(Ordering::Relaxed);
    let mask: Word = (u32::MAX as Word) << shift;
    word.store(
        (old & !mask) | ((value as Word) << shift),
        Ordering::Relaxed,
    );
}

#[test]
fn attach_sees_what_another_handle_wrote() {
    let w = region(LARGE);
    let a = Cache::format(cachee_core::Words::from(&w[..]), &cfg()).unwrap();
    a.set(b"shared", b"value").unwrap();
    let b = Cache::attach(cachee_core::Words::from(&w[..])).unwrap();
    assert_eq!(get(&b, b"shared").as_deref(), Some(&b"value"[..]));
    b.set(b"back", b"again").unwrap();
    assert_eq!(get(&a, b"back").as_deref(), Some(&b"again"[..]));
    assert_eq!(b.shards(), a.shards());
    assert_eq!(b.max_value_len(), 512);
}

#[test]
fn the_format_is_position_independent() {
    let w = region(LARGE);
    let c = Cache::format(cachee_core::Words::from(&w[..]), &cfg()).unwrap();
    for i in 0..common::scaled(500) as u32 {
        c.set(&i.to_le_bytes(), &[i as u8; 40]).unwrap();
    }
    let _ = c;
    // A byte-for-byte copy at another address is the same cache.
    let moved = copy(&w);
    let c = Cache::attach(cachee_core::Words::from(&moved[..])).unwrap();
    c.validate().unwrap();
    for i in 0..common::scaled(500) as u32 {
        if let Some(v) = get(&c, &i.to_le_bytes()) {
            assert_eq!(v, vec![i as u8; 40]);
        }
    }
    assert!(!c.is_empty());
}

#[test]
fn foreign_and_damaged_regions_are_refused_with_the_reason() {
    let w = region(SMALL);
    Cache::format(cachee_core::Words::from(&w[..]), &cfg()).unwrap();

    let zeroed = region(SMALL);
    assert_eq!(
        Cache::attach(cachee_core::Words::from(&zeroed[..])).unwrap_err(),
        Error::BadMagic
    );

    let v = copy(&w);
    poke(&v, 2, FORMAT_VERSION + 1);
    assert_eq!(
        Cache::attach(cachee_core::Words::from(&v[..])).unwrap_err(),
        Error::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );

    let v = copy(&w);
    poke(&v, 3, 0x1234_5678);
    assert!(matches!(
        Cache::attach(cachee_core::Words::from(&v[..])).unwrap_err(),
        Error::LayoutMismatch {
            found: 0x1234_5678,
            ..
        }
    ));

    let v = copy(&w);
    poke(&v, 4, 0);
    assert_eq!(
        Cache::attach(cachee_core::Words::from(&v[..])).unwrap_err(),
        Error::NotReady
    );

    // Any change to a checksummed field is caught.
    for field in [6usize, 8, 9, 10, 11, 12, 13, 14, 17, 19, 20, 25, 40, 63] {
        let v = copy(&w);
        let byte = field * 4;
        let old =
            (v[byte / WORD_BYTES].load(Ordering::Relaxed) >> ((byte % WORD_BYTES) * 8)) as u32;
        poke(&v, field, old ^ 0x10);
        let err = Cache::attach(cachee_core::Words::from(&v[..])).unwrap_err();
        assert!(
            matches!(err, Error::CorruptHeader(_)),
            "field {field}: {err:?}"
        );
        assert!(err.to_string().starts_with("corrupt region header"));
    }

    // A truncated region.
    let half = &w[..w.len() / 2];
    assert!(matches!(
        Cache::attach(cachee_core::Words::from(half)).unwrap_err(),
        Error::RegionTooSmall { .. }
    ));
    assert!(matches!(
        Cache::attach(cachee_core::Words::from(&w[..3])).unwrap_err(),
        Error::RegionTooSmall { .. }
    ));
}

#[test]
fn impossible_configurations_are_refused() {
    let w = region(64 << 10);
    assert!(matches!(
        Cache::format(cachee_core::Words::from(&w[..4]), &cfg()).unwrap_err(),
        Error::RegionTooSmall { .. }
    ));
    let too_big_value = Config::new().max_value_len(8 << 20);
    assert!(matches!(
        Cache::format(cachee_core::Words::from(&w[..]), &too_big_value).unwrap_err(),
        Error::InvalidConfig(_)
    ));
    assert!(matches!(
        Cache::format(cachee_core::Words::from(&w[..]), &cfg().shards(3)).unwrap_err(),
        Error::InvalidConfig(_)
    ));
    assert!(matches!(
        Cache::format(cachee_core::Words::from(&w[..]), &cfg().page_size(1000)).unwrap_err(),
        Error::InvalidConfig(_)
    ));
    assert!(matches!(
        Cache::format(cachee_core::Words::from(&w[..]), &cfg().max_key_len(5000)).unwrap_err(),
        Error::InvalidConfig(_)
    ));
    assert!(matches!(
        Cache::format(cachee_core::Words::from(&w[..]), &cfg().max_entries(0)).unwrap_err(),
        Error::InvalidConfig(_)
    ));
    assert!(matches!(
        Cache::format(cachee_core::Words::from(&w[..]), &cfg().stat_stripes(3)).unwrap_err(),
        Error::InvalidConfig(_)
    ));
}

#[test]
fn sizing_helper_gives_a_region_that_holds_the_entries() {
    let cfg = Config::new()
        .max_key_len(8)
        .max_value_len(100)
        .expected_entry(8, 100);
    let n = common::scaled(20_000) as u64;
    let bytes = cfg.bytes_for(n, 8, 100).unwrap();
    let w = region(bytes);
    let c = Cache::format(cachee_core::Words::from(&w[..]), &cfg).unwrap();
    for i in 0..n {
        c.set(&i.to_le_bytes(), &[1; 100]).unwrap();
    }
    assert_eq!(c.len() as u64, n, "every entry fits");
    assert_eq!(c.stats().evictions, 0);
    assert!(c.footprint(8, 100).entries >= n);
}
