//! Format harness: arbitrary configurations and region sizes.
//!
//! `Cache::format` either refuses (`InvalidConfig`, `RegionTooSmall`) or produces a
//! cache that passes `check`, fits in the region, attaches again with the same
//! parameters, stores and returns an entry of the largest key and value it accepts,
//! and keeps passing `check` after a burst of writes. `Config::bytes_for` either
//! refuses or names a size in which the configuration formats and (with one shard)
//! really holds that many entries without evicting any.

use bolero::TypeGenerator;
use cachee_core::{Cache, Config, Error, HashKind, WORD_BYTES};

use crate::common::{self, FuzzHooks};

/// One configuration and region size.
#[derive(Debug, Clone, TypeGenerator)]
pub struct Input {
    /// Region bytes (modulo 256 KiB).
    pub bytes: u32,
    /// Shard count, if set.
    pub shards: Option<u16>,
    /// Page size as a power of two, if set.
    pub page_log: Option<u8>,
    /// Longest key (modulo 300, or modulo 5000 for the top sixteenth of values).
    pub max_key: u16,
    /// Longest value (modulo 4096, or modulo 2²⁰ + 64 when the top bit is set).
    pub max_value: u32,
    /// Expected key and value lengths.
    pub expected: (u16, u16),
    /// Entry cap, if set (modulo 10,000).
    pub max_entries: Option<u16>,
    /// Hash seed.
    pub seed: u64,
    /// Entry checksums.
    pub checksums: bool,
    /// Statistics stripes, if set.
    pub stripes: Option<u8>,
    /// Colliding hash.
    pub colliding: bool,
    /// Also check `bytes_for` for this many entries (modulo 1,500), if set.
    pub bytes_for: Option<u16>,
}

impl Input {
    fn config(&self) -> Config {
        let mut c = Config::new()
            .max_key_len(cfg_max_key(self))
            .max_value_len(cfg_max_value(self))
            .expected_entry(self.expected.0 as usize, self.expected.1 as usize)
            .seed(self.seed)
            .checksums(self.checksums);
        if let Some(s) = self.shards {
            c = c.shards(s as u32 % 1100);
        }
        if let Some(p) = self.page_log {
            c = c.page_size(1usize << (p % 24));
        }
        if let Some(n) = self.max_entries {
            c = c.max_entries(n as u64 % 10_000);
        }
        if let Some(s) = self.stripes {
            c = c.stat_stripes(s as u32 % 80);
        }
        if self.colliding {
            c = c.hash_kind(HashKind::Colliding);
        }
        c
    }
}

/// Formats, attaches and exercises one configuration.
pub fn run(input: &Input) {
    let cfg = input.config();
    let bytes = input.bytes as usize % (256 << 10);
    let words = common::region(bytes);
    let c = match Cache::format_with_hooks(&words[..], &cfg, FuzzHooks::new(None)) {
        Err(Error::InvalidConfig(_) | Error::RegionTooSmall { .. }) => {
            crate::trace::count("format.refused");
            crate::trace::count("format.run");
            return check_bytes_for(input, &cfg);
        }
        Err(e) => panic!("format failed with an unexpected error: {e:?} ({cfg:?})"),
        Ok(c) => c,
    };
    crate::trace::count("format.formatted");
    crate::trace::count("format.run");
    common::assert_valid(&c, &"format");
    if c.region_bytes() > words.len() * WORD_BYTES {
        panic!(
            "layout uses {} bytes of a {}-byte region",
            c.region_bytes(),
            words.len() * WORD_BYTES
        );
    }
    let (max_k, max_v) = (c.max_key_len(), c.max_value_len());
    if max_k != cfg_max_key(input) || max_v != cfg_max_value(input) {
        panic!("maxima changed: {max_k}/{max_v} for {cfg:?}");
    }
    match Cache::attach(&words[..]) {
        Ok(a) => {
            if a.max_key_len() != max_k
                || a.max_value_len() != max_v
                || a.shards() != c.shards()
                || a.capacity() != c.capacity()
                || a.region_bytes() != c.region_bytes()
            {
                panic!("attach sees different parameters");
            }
        }
        Err(e) => panic!("attach to a freshly formatted region failed: {e}"),
    }
    let _ = c.footprint(max_k, max_v);
    let _ = c.footprint(1, 0);
    let _ = c.capacity_for(max_k, max_v);
    // The largest entry fits (a page holds it, by construction).
    let key = vec![b'K'; max_k];
    let value: Vec<u8> = (0..max_v).map(|i| i as u8).collect();
    match c.set(&key, &value) {
        Ok(()) => {}
        Err(Error::NoSpace) if input.max_entries.is_some_and(|n| n % 10_000 == 0) => {}
        Err(e) => panic!("set of the largest entry failed: {e}"),
    }
    match c.get_vec(&key) {
        Ok(Some(v)) if v == value => {}
        other => panic!(
            "largest entry reads back as {:?}",
            other.map(|o| o.map(|v| v.len()))
        ),
    }
    common::assert_valid(&c, &"largest entry");
    // A burst of small writes of growing size.
    let small = max_v.min(64);
    for i in 0..200usize {
        let k = format!("{i}").into_bytes();
        if k.len() > max_k {
            break;
        }
        if let Err(e) = c.set(&k, &value[..(i % (small + 1))]) {
            panic!("set {i} failed: {e}");
        }
    }
    common::assert_valid(&c, &"burst");
    check_bytes_for(input, &cfg);
}

fn cfg_max_key(input: &Input) -> usize {
    if input.max_key >= 0xF000 {
        input.max_key as usize % 5000
    } else {
        input.max_key as usize % 300
    }
}

fn cfg_max_value(input: &Input) -> usize {
    if input.max_value >> 31 != 0 {
        input.max_value as usize % ((1 << 20) + 64)
    } else {
        input.max_value as usize % 4096
    }
}

/// `bytes_for` names a region size that formats and (one shard) holds the entries.
fn check_bytes_for(input: &Input, cfg: &Config) {
    let Some(n) = input.bytes_for else {
        return;
    };
    let entries = n as u64 % 1500;
    let (k, v) = (
        (input.expected.0 as usize % 64).max(1),
        input.expected.1 as usize % 300,
    );
    if k > cfg_max_key(input) || v > cfg_max_value(input) {
        return;
    }
    let cfg = cfg.clone().expected_entry(k, v);
    let size = match cfg.bytes_for(entries, k, v) {
        Ok(s) => s,
        Err(Error::InvalidConfig(_)) => return,
        Err(e) => panic!("bytes_for failed with an unexpected error: {e}"),
    };
    if size > 8 << 20 {
        return; // too big to try here
    }
    crate::trace::count("format.bytes_for_checked");
    let words = common::region(size);
    let c = match Cache::format(&words[..], &cfg) {
        Ok(c) => c,
        Err(e) => panic!("bytes_for({entries}, {k}, {v}) = {size}, which does not format: {e}"),
    };
    if c.shards() != 1 || input.colliding {
        return;
    }
    for i in 0..entries {
        let mut key = format!("{i:0k$}").into_bytes();
        key.truncate(k);
        if key.len() < k || i >= 10u64.pow(k.min(19) as u32) {
            return; // not enough distinct keys of this length
        }
        if let Err(e) = c.set(&key, &vec![7u8; v]) {
            panic!("bytes_for region: set {i} failed: {e}");
        }
    }
    // The entry cap, if lower, bounds what any size holds.
    let expect = match input.max_entries {
        Some(cap) => entries.min(cap as u64 % 10_000),
        None => entries,
    };
    let s = c.stats();
    if s.evictions != entries - expect || c.len() as u64 != expect {
        panic!(
            "bytes_for({entries}, {k}, {v}) = {size} bytes, but storing {entries} entries evicted {} (len {})",
            s.evictions,
            c.len()
        );
    }
}
