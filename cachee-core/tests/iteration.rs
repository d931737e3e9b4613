//! Iteration over live entries without a global lock.

mod common;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use cachee_core::{Cache, Config, Error};
use common::region;

#[test]
fn for_each_visits_every_entry_once() {
    let w = region(common::sized(1 << 20));
    let cfg = Config::new()
        .max_key_len(16)
        .max_value_len(300)
        .expected_entry(4, 150)
        .shards(4);
    let c = Cache::format(cachee_core::Words::from(&w[..]), &cfg).unwrap();
    let mut want = BTreeMap::new();
    for i in 0..common::scaled(1000) as u32 {
        let v = vec![i as u8; (i % 300) as usize];
        c.set(&i.to_le_bytes(), &v).unwrap();
        want.insert(i.to_le_bytes().to_vec(), v);
    }
    let mut got = BTreeMap::new();
    let (mut kb, mut vb) = (vec![0u8; 16], vec![0u8; 300]);
    c.for_each(&mut kb, &mut vb, |k, v| {
        assert!(got.insert(k.to_vec(), v.to_vec()).is_none(), "seen twice");
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(
        c.stats().evictions,
        0,
        "the test needs every entry resident"
    );
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(missing.is_empty(), "not visited: {missing:?}");
    assert!(got == want, "a visited value differs from the one stored");
}

#[test]
fn for_each_can_stop_early_and_needs_big_enough_buffers() {
    let w = region(common::sized(256 << 10));
    let c = Cache::format(
        cachee_core::Words::from(&w[..]),
        &Config::new().max_key_len(16).max_value_len(64),
    )
    .unwrap();
    for i in 0..10u8 {
        c.set(&[i], &[i]).unwrap();
    }
    let mut n = 0;
    c.for_each(&mut [0u8; 16], &mut [0u8; 64], |_, _| {
        n += 1;
        if n == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        c.for_each(&mut [0u8; 8], &mut [0u8; 64], |_, _| ControlFlow::Continue(
            ()
        )),
        Err(Error::BufferTooSmall { needed: 16 })
    );
}

#[test]
fn iteration_runs_alongside_writers() {
    let w = region(common::sized(512 << 10));
    let c = Cache::format(
        cachee_core::Words::from(&w[..]),
        &Config::new().max_key_len(16).max_value_len(200),
    )
    .unwrap();
    let rounds = common::scaled(2000) as u64;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..rounds {
                let k = (i % 300).to_le_bytes();
                c.set(&k, &common::stamped(i % 300, i, 16 + (i % 150) as usize))
                    .unwrap();
                if i % 7 == 0 {
                    c.remove(&((i * 13) % 300).to_le_bytes()).unwrap();
                }
            }
        });
        for _ in 0..common::scaled(20).max(2) {
            let (mut kb, mut vb) = (vec![0u8; 16], vec![0u8; 200]);
            c.for_each(&mut kb, &mut vb, |k, v| {
                let key = u64::from_le_bytes(k.try_into().expect("8-byte keys"));
                assert!(
                    common::check_stamp(key, v).is_some(),
                    "iteration saw a torn or wrong value"
                );
                ControlFlow::Continue(())
            })
            .unwrap();
        }
    });
    c.validate().unwrap();
}
