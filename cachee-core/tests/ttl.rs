//! Per-entry time-to-live with an injected clock, and lazy expiry.

mod common;

use cachee_core::Config;
use common::{TestHooks, cache_with, get, region};

fn cfg() -> Config {
    Config::new().max_key_len(32).max_value_len(256)
}

#[test]
fn entries_expire_when_the_clock_passes_their_deadline() {
    let w = region(common::sized(256 << 10));
    let c = cache_with(&w, &cfg(), TestHooks::new(1));
    c.set_ttl(b"short", b"s", 10).unwrap();
    c.set_ttl(b"long", b"l", 100).unwrap();
    c.set(b"forever", b"f").unwrap();
    let hit = c.get_entry(b"short", &mut [0u8; 8]).unwrap().unwrap();
    assert_eq!(hit.expires_at, Some(1_010));
    c.hooks().advance(9);
    assert!(c.contains(b"short").unwrap());
    c.hooks().advance(1);
    assert_eq!(get(&c, b"short"), None, "expired exactly at its deadline");
    assert!(!c.contains(b"short").unwrap());
    assert!(c.contains(b"long").unwrap());
    c.hooks().advance(1_000_000);
    assert_eq!(get(&c, b"long"), None);
    assert_eq!(get(&c, b"forever").as_deref(), Some(&b"f"[..]));
    c.validate().unwrap();
}

#[test]
fn expiry_is_lazy_and_counted_when_collected() {
    let w = region(common::sized(256 << 10));
    let c = cache_with(&w, &cfg(), TestHooks::new(1));
    c.set_ttl(b"a", b"1", 5).unwrap();
    c.set_ttl(b"b", b"2", 5).unwrap();
    c.hooks().advance(5);
    // Still resident until a writer comes across them.
    assert_eq!(c.len(), 2);
    assert_eq!(c.stats().expirations, 0);
    // An expired key is absent for add, which collects it.
    assert!(c.add(b"a", b"new", None).unwrap());
    assert_eq!(get(&c, b"a").as_deref(), Some(&b"new"[..]));
    // Removing an expired key reports "absent" and counts an expiration.
    assert!(!c.remove(b"b").unwrap());
    let s = c.stats();
    assert_eq!(s.expirations, 2);
    assert_eq!(c.len(), 1);
    c.validate().unwrap();
}

#[test]
fn writes_set_or_clear_the_ttl() {
    let w = region(common::sized(256 << 10));
    let c = cache_with(&w, &cfg(), TestHooks::new(1));
    c.set_ttl(b"k", b"v", 10).unwrap();
    c.set(b"k", b"v").unwrap(); // a plain set clears the TTL
    c.hooks().advance(50);
    assert_eq!(get(&c, b"k").as_deref(), Some(&b"v"[..]));
    assert!(c.replace(b"k", b"w", Some(10)).unwrap());
    c.hooks().advance(10);
    assert_eq!(get(&c, b"k"), None);
    assert!(
        !c.replace(b"k", b"x", Some(10)).unwrap(),
        "expired keys are absent for replace"
    );
    assert!(c.add(b"k", b"y", Some(10)).unwrap());
    c.hooks().advance(10);
    assert!(
        c.add(b"k", b"z", None).unwrap(),
        "expired keys are absent for add"
    );
}

#[test]
fn incr_keeps_the_ttl_and_cas_sees_expiry() {
    let w = region(common::sized(256 << 10));
    let c = cache_with(&w, &cfg(), TestHooks::new(1));
    c.set_ttl(b"n", b"1", 10).unwrap();
    assert_eq!(c.incr(b"n", 1, None).unwrap(), Some(2));
    let hit = c.get_entry(b"n", &mut [0u8; 8]).unwrap().unwrap();
    assert_eq!(hit.expires_at, Some(1_010), "incr keeps the deadline");
    let token = hit.token;
    c.hooks().advance(10);
    assert_eq!(
        c.incr(b"n", 1, None).unwrap(),
        None,
        "expired counter is absent"
    );
    assert_eq!(
        c.cas(b"n", token, b"9", None).unwrap(),
        cachee_core::CasOutcome::NotFound
    );
    assert_eq!(c.incr(b"n", 1, Some(100)).unwrap(), Some(100));
}

#[test]
fn iteration_skips_expired_entries() {
    let w = region(common::sized(256 << 10));
    let c = cache_with(&w, &cfg(), TestHooks::new(1));
    c.set_ttl(b"gone", b"1", 1).unwrap();
    c.set(b"stays", b"2").unwrap();
    c.hooks().advance(1);
    let mut seen = Vec::new();
    let (mut kb, mut vb) = ([0u8; 32], [0u8; 256]);
    c.for_each(&mut kb, &mut vb, |k, _| {
        seen.push(k.to_vec());
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen, vec![b"stays".to_vec()]);
}
