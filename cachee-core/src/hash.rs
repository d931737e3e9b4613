//! The keyed hash that places keys in shards, buckets and tags.
//!
//! Keys are hashed as a sequence of 8-byte little-endian chunks (the last one
//! zero-padded) followed by the key length. The same definition is used for a key the
//! caller passes in and for a key read back out of the region word by word during
//! eviction, so neither path needs a contiguous copy of the key.
//!
//! The construction is the folded 64×64→128-bit multiply ("mum") used by several
//! fast non-cryptographic hashes: each chunk is xored into the state and folded
//! against an odd constant, and a final fold mixes in the length and the seed. The
//! seed is chosen per region at format time, so the placement of keys cannot be
//! predicted without reading the region header.

/// Odd multipliers (from the binary expansions of the golden ratio and of √3).
const M1: u64 = 0x9e37_79b9_7f4a_7c15;
const M2: u64 = 0xbb67_ae85_84ca_a73b;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Which hash function a region uses. Recorded in the region header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashKind {
    /// The seeded folded-multiply hash (the only kind for production use).
    Folded,
    /// A deliberately terrible hash that sends almost every key to the same shard,
    /// bucket and tag. Only for tests that stress probing and collision handling.
    #[cfg(any(test, feature = "testing"))]
    Colliding,
}

impl HashKind {
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            HashKind::Folded => 1,
            #[cfg(any(test, feature = "testing"))]
            HashKind::Colliding => 0xC0,
        }
    }

    pub(crate) fn from_raw(raw: u32) -> Option<HashKind> {
        match raw {
            1 => Some(HashKind::Folded),
            #[cfg(any(test, feature = "testing"))]
            0xC0 => Some(HashKind::Colliding),
            _ => None,
        }
    }
}

/// Incremental form of the key hash, fed one 8-byte chunk at a time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHasher {
    state: u64,
    seed: u64,
}

impl KeyHasher {
    #[inline(always)]
    pub(crate) fn new(seed: u64) -> Self {
        KeyHasher { state: seed, seed }
    }

    #[inline(always)]
    pub(crate) fn chunk(&mut self, c: u64) {
        self.state = fold(self.state ^ c, M1);
    }

    #[inline(always)]
    pub(crate) fn finish(self, len: usize) -> u64 {
        fold(self.state ^ (len as u64), M2 ^ self.seed)
    }
}

/// Hashes a whole key.
#[inline(always)]
pub(crate) fn hash_key(kind: HashKind, seed: u64, key: &[u8]) -> u64 {
    match kind {
        HashKind::Folded => {
            let mut h = KeyHasher::new(seed);
            let mut chunks = key.chunks_exact(8);
            for c in &mut chunks {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                h.chunk(u64::from_le_bytes(b));
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let mut b = [0u8; 8];
                b[..rest.len()].copy_from_slice(rest);
                h.chunk(u64::from_le_bytes(b));
            }
            h.finish(key.len())
        }
        #[cfg(any(test, feature = "testing"))]
        HashKind::Colliding => colliding(key.first().copied().unwrap_or(0)),
    }
}

/// The colliding hash: two distinct values, decided by the low bit of the first byte.
#[cfg(any(test, feature = "testing"))]
#[inline]
pub(crate) fn colliding(first_byte: u8) -> u64 {
    0x5a5a_5a5a_0000_0000 | (first_byte & 1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_form_matches_whole_key() {
        let key = b"an example key that spans several chunks!";
        let mut h = KeyHasher::new(7);
        for c in key.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            h.chunk(u64::from_le_bytes(b));
        }
        assert_eq!(h.finish(key.len()), hash_key(HashKind::Folded, 7, key));
    }

    #[test]
    fn length_and_seed_matter() {
        let a = hash_key(HashKind::Folded, 1, b"abc");
        assert_ne!(a, hash_key(HashKind::Folded, 1, b"abc\0"));
        assert_ne!(a, hash_key(HashKind::Folded, 2, b"abc"));
    }

    #[test]
    fn sequential_keys_spread_over_high_and_low_bits() {
        // Shard selection uses the top bits, bucket selection the low 32 bits.
        let mut top = [0u32; 16];
        let mut low = [0u32; 16];
        for i in 0u64..16_000 {
            let h = hash_key(HashKind::Folded, 0x1234, &i.to_le_bytes());
            top[(h >> 60) as usize] += 1;
            low[((h as u32 as u64 * 16) >> 32) as usize] += 1;
        }
        for n in top.iter().chain(low.iter()) {
            assert!((850..1150).contains(n), "skewed bucket count {n}");
        }
    }
}
