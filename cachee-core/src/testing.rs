//! Fault injection for tests (feature `testing`): simulate a writer that died holding a
//! shard lock, possibly in the middle of writing an entry.

use crate::layout::{class_of, entry_bytes};
use crate::region::Region;
use crate::shard::state;
use crate::sync::{Ordering, Word};
use crate::{Cache, Error, Hooks, entry};

impl<R: Region, H: Hooks> Cache<R, H> {
    /// The shard `key` lives in.
    pub fn testing_shard_of(&self, key: &[u8]) -> usize {
        self.locate(key).0.s.idx
    }

    /// Writes `owner` into the lock word of `shard`, as if that owner held the lock.
    pub fn testing_hold_lock(&self, shard: usize, owner: u32) {
        let m = crate::shard::ShardMem::new(&self.region, &self.l, self.l.shard(shard));
        m.lock_word().store(owner as Word, Ordering::Release);
    }

    /// The owner id currently in the lock word of `shard` (0 = free).
    pub fn testing_lock_owner(&self, shard: usize) -> u32 {
        let m = crate::shard::ShardMem::new(&self.region, &self.l, self.l.shard(shard));
        m.lock_word().load(Ordering::Acquire) as u32
    }

    /// Simulates a writer that dies in the middle of storing `key`: a new slot holds
    /// the entry with its version left odd (write in progress), the index already
    /// points at it, and the shard's lock is left held by `owner`.
    pub fn testing_die_mid_set(&self, key: &[u8], value: &[u8], owner: u32) -> Result<(), Error> {
        let (m, p) = self.locate(key);
        let g = self.lock(m.s)?;
        let class = class_of(entry_bytes(
            key.len(),
            value.len(),
            self.l.checksums(),
            false,
        ));
        let loc = g.alloc(class)?;
        let e = g.m.slot_off(class, loc);
        let _odd = entry::begin_write(&self.region, e);
        let _ = entry::write_body(&self.region, e, key, value, None, self.l.checksums());
        // No end_write: the version stays odd.
        if let Some((pos, dist, _)) = g.index_reserve(p) {
            g.commit(class, loc, state::COLD);
            g.m.set_slot(pos, self.l.slot_value(p.tag, self.l.pack(loc)));
            g.m.add_overflow(p.home, dist, 1);
        }
        g.m.lock_word().store(owner as Word, Ordering::Release);
        core::mem::forget(g);
        Ok(())
    }
}
