//! Fixed-size plain-data keys and values, and a cache in a `static`.

mod common;

use cachee_core::{
    AtomicWord, Config, Error, NoHooks, StaticCache, TypedCache, words_for, zeroed_words,
};

#[test]
fn typed_cache_round_trips_plain_values() {
    let w = common::region(common::sized(128 << 10));
    let c: TypedCache<u64, [u32; 4], _> =
        TypedCache::format(cachee_core::Words::from(&w[..]), Config::new(), NoHooks).unwrap();
    assert!(c.is_empty());
    c.insert(&1, &[1, 2, 3, 4]).unwrap();
    assert_eq!(c.get(&1).unwrap(), Some([1, 2, 3, 4]));
    assert_eq!(c.get(&2).unwrap(), None);
    assert!(!c.add(&1, &[0; 4]).unwrap());
    assert!(c.add(&2, &[5; 4]).unwrap());
    assert!(c.contains(&2).unwrap());
    assert!(c.remove(&2).unwrap());
    assert_eq!(c.len(), 1);
    assert!(c.capacity() > 1000);
    for i in 0..common::scaled(10_000) as u64 {
        c.insert(&i, &[i as u32; 4]).unwrap();
    }
    assert!(c.len() <= c.capacity());
    assert!(c.stats().inserts > 0);
    c.clear().unwrap();
    assert!(c.is_empty());
    c.inner().validate().unwrap();
    // Attaching with other types is refused.
    let _ = c;
    assert!(matches!(
        TypedCache::<u32, [u32; 4], _>::attach(cachee_core::Words::from(&w[..]), NoHooks),
        Err(Error::InvalidConfig(_))
    ));
    assert!(
        TypedCache::<u64, [u32; 4], _>::attach(cachee_core::Words::from(&w[..]), NoHooks).is_ok()
    );
}

static REGION: [AtomicWord; words_for(32 * 1024)] = zeroed_words();
static CACHE: StaticCache<u32, [u8; 12]> = StaticCache::new(&REGION, Config::new(), NoHooks);
static TINY: [AtomicWord; words_for(256)] = zeroed_words();
static TOO_SMALL: StaticCache<u32, u32> = StaticCache::new(&TINY, Config::new(), NoHooks);

#[test]
fn static_cache_formats_once_on_first_use() {
    std::thread::scope(|s| {
        for t in 0..4u32 {
            s.spawn(move || {
                let c = CACHE.cache().unwrap();
                c.insert(&t, &[t as u8; 12]).unwrap();
            });
        }
    });
    let c = CACHE.cache().unwrap();
    for t in 0..4u32 {
        assert_eq!(
            c.get(&t).unwrap(),
            Some([t as u8; 12]),
            "formatted once: no thread's entry lost"
        );
    }
    assert!(TOO_SMALL.cache().is_err());
    assert!(TOO_SMALL.cache().is_err(), "the failure is remembered");
}
