//! Counters.

use core::ops::Add;

/// Counters of one shard (or, from [`Cache::stats`](crate::Cache::stats), of all).
///
/// Hits and misses are counted by lock-free readers in per-thread stripes; the other
/// counters by writers under the shard lock. All are exact when the cache is quiet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardStats {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing (or an expired entry).
    pub misses: u64,
    /// Entries written for keys that were absent.
    pub inserts: u64,
    /// Entries rewritten for keys that were present.
    pub updates: u64,
    /// Entries removed by `remove`.
    pub removes: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Expired entries collected.
    pub expirations: u64,
    /// Writes refused for lack of room.
    pub rejected: u64,
    /// Shard locks taken over from a dead owner (followed by a repair of the shard).
    pub recoveries: u64,
    /// Resident entries.
    pub entries: u64,
}

/// Counters are read from the region, which may be damaged: sums saturate.
impl Add for ShardStats {
    type Output = ShardStats;
    fn add(self, o: ShardStats) -> ShardStats {
        ShardStats {
            hits: self.hits.saturating_add(o.hits),
            misses: self.misses.saturating_add(o.misses),
            inserts: self.inserts.saturating_add(o.inserts),
            updates: self.updates.saturating_add(o.updates),
            removes: self.removes.saturating_add(o.removes),
            evictions: self.evictions.saturating_add(o.evictions),
            expirations: self.expirations.saturating_add(o.expirations),
            rejected: self.rejected.saturating_add(o.rejected),
            recoveries: self.recoveries.saturating_add(o.recoveries),
            entries: self.entries.saturating_add(o.entries),
        }
    }
}

impl ShardStats {
    /// `hits / (hits + misses)`, or 0 with no reads.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// Where the region's bytes go per resident entry, for entries of one shape, when
/// the region is full of them. See [`Cache::footprint`](crate::Cache::footprint).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Footprint {
    /// Entries of this shape the region holds.
    pub entries: u64,
    /// Key and value bytes.
    pub payload: f64,
    /// Entry header words (version, metadata, checksum if enabled).
    pub header: f64,
    /// Index bytes per entry.
    pub index: f64,
    /// State byte, reference bits, page and class bookkeeping, shard and region headers.
    pub bookkeeping: f64,
    /// Size-class rounding, key padding and the part of each page no slot fits in.
    pub rounding: f64,
    /// Region bytes per entry: the sum of all of the above.
    pub total: f64,
}

impl Footprint {
    /// Bytes per entry that hold no payload and are not rounding: header, index and
    /// bookkeeping. The crate promises at most 16 (24 with checksums).
    pub fn metadata(&self) -> f64 {
        self.header + self.index + self.bookkeeping
    }
}
