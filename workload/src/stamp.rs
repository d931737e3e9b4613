//! Self-checking values for concurrency and fuzz tests: a value that encodes its key
//! and a generation, so that a reader can tell an intact value from a wrong or torn
//! one.

/// A `len`-byte value for `key` and `generation`: the key and the generation in the
/// first 16 bytes (when it is that long), then bytes derived from both.
pub fn stamped(key: u64, generation: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    let mut x = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ generation;
    while v.len() < len {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    if len >= 16 {
        v[..8].copy_from_slice(&key.to_le_bytes());
        v[8..16].copy_from_slice(&generation.to_le_bytes());
    }
    v
}

/// The generation of an intact stamped value for `key`, if `v` is one.
pub fn check_stamp(key: u64, v: &[u8]) -> Option<u64> {
    if v.len() < 16 || v[..8] != key.to_le_bytes() {
        return None;
    }
    let generation = u64::from_le_bytes(v[8..16].try_into().ok()?);
    (stamped(key, generation, v.len()) == v).then_some(generation)
}
