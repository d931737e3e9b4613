use cachee_core::{AtomicWord, Cache, Config, new_word};

fn words(bytes: usize) -> Vec<AtomicWord> {
    (0..bytes / cachee_core::WORD_BYTES)
        .map(|_| new_word())
        .collect()
}

#[test]
fn smoke() {
    let w = words(1 << 20);
    let c = Cache::format(
        &w[..],
        &Config::new().max_value_len(1000).expected_entry(4, 100),
    )
    .unwrap();
    c.validate().unwrap();
    c.set(b"a", b"hello").unwrap();
    c.validate().unwrap();
    let mut out = [0u8; 64];
    assert_eq!(c.get(b"a", &mut out).unwrap(), Some(5));
    assert_eq!(&out[..5], b"hello");
    for i in 0..20_000u32 {
        c.set(&i.to_le_bytes(), &[i as u8; 100]).unwrap();
    }
    c.validate().unwrap();
    let mut hits = 0;
    for i in 0..20_000u32 {
        if let Some(n) = c.get(&i.to_le_bytes(), &mut out[..]).ok().flatten() {
            assert_eq!(n, 100.min(64));
        }
        let mut big = [0u8; 128];
        if let Some(n) = c.get(&i.to_le_bytes(), &mut big).unwrap() {
            assert_eq!(n, 100);
            assert!(big[..100].iter().all(|&b| b == i as u8));
            hits += 1;
        }
    }
    eprintln!("hits {hits} len {} stats {:?}", c.len(), c.stats());
    assert!(hits > 5000);
}
