//! The cache handle: construction, the lock-free read path and the operations.

use core::fmt;
use core::ops::ControlFlow;

use crate::Error;
use crate::entry::{self, KeyArg, Read};
use crate::hash::hash_key;
use crate::index::Probe;
use crate::layout::{Config, Layout, class_of, entry_bytes};
use crate::policy::{Existing, Locked, init_shard_state};
use crate::region::Region;
use crate::shard::{Ctr, Loc, Shard, ShardMem, off, state};
use crate::stats::{Footprint, ShardStats};
use crate::sync::{Ordering, Word, mutant, mutants, spin_hint};

/// How many times a read retries after a torn copy before it answers "miss".
const READ_ATTEMPTS: u32 = 4;
/// A waiting writer asks whether the lock's owner is alive every this many spins.
#[cfg(not(cachee_loom))]
const LIVENESS_EVERY: u32 = 256;
/// Under loom, spins are explored one by one: ask early so that models stay small.
#[cfg(cachee_loom)]
const LIVENESS_EVERY: u32 = 4;

/// What the cache needs from its environment. Every method has a default suitable for
/// a single process without a clock.
///
/// `cachee-shm` implements this with a wall clock and process-liveness checks;
/// firmware implements `now` with its tick counter.
pub trait Hooks {
    /// The current time in the ticks that TTLs are given in, or `None` if there is no
    /// clock (then operations with a TTL fail with [`Error::NoClock`]).
    #[inline]
    fn now(&self) -> Option<u64> {
        None
    }

    /// The non-zero id this handle writes into a shard's lock word while it holds it.
    #[inline]
    fn owner_id(&self) -> u32 {
        1
    }

    /// Whether the owner `id` found in a lock word is still alive. Returning `false`
    /// lets this handle take the lock over and repair the shard.
    ///
    /// The default suits a cache used by one process: every live lock holder is a
    /// thread of this process and writes this handle's own id, so any other id (left
    /// by a process that used the region before, or by damage) belongs to nobody.
    #[inline]
    fn owner_alive(&self, id: u32) -> bool {
        id == self.owner_id()
    }

    /// Called while waiting for a shard lock, with the number of spins so far. Return
    /// `false` to give up (the operation then fails with [`Error::Busy`]).
    ///
    /// The default spins, and gives up after 2²⁸ spins (seconds): a lock held that
    /// long by a live owner means something is wrong, and no operation should hang.
    #[inline]
    fn relax(&self, spins: u32) -> bool {
        spin_hint();
        spins < 1 << 28
    }

    /// A number that differs between threads (and processes) running at the same
    /// time; it picks the statistics stripe the calling thread counts hits in, so that
    /// concurrent readers do not write the same cache line. The default derives it
    /// from the address of the caller's stack (thread stacks are megabytes apart, and
    /// randomised per process). Embedders with thread-local storage can do better.
    #[inline(always)]
    fn stripe_hint(&self) -> usize {
        let probe = 0u8;
        (&probe as *const u8).addr() >> 21
    }
}

/// Hooks for a single process with no clock (TTLs unavailable).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;
impl Hooks for NoHooks {}

/// Identifies one version of one entry, for [`Cache::cas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CasToken(u64);

impl CasToken {
    fn new(epoch: Word, loc_raw: u32, version: u32) -> Self {
        CasToken(((epoch as u8 as u64) << 56) | ((loc_raw as u64) << 32) | version as u64)
    }

    /// The token as an integer (for passing between processes).
    pub fn to_u64(self) -> u64 {
        self.0
    }

    /// A token from [`to_u64`](Self::to_u64).
    pub fn from_u64(v: u64) -> Self {
        CasToken(v)
    }
}

/// A successful read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Length of the value copied into the caller's buffer.
    pub len: usize,
    /// Token of this version of the entry, for [`Cache::cas`].
    pub token: CasToken,
    /// Absolute expiry time in clock ticks, if the entry has a TTL.
    pub expires_at: Option<u64>,
}

/// Result of [`Cache::cas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value was replaced.
    Stored,
    /// The entry changed since the token was taken; nothing was written.
    Mismatch,
    /// The key is not in the cache; nothing was written.
    NotFound,
}

/// A cache living entirely inside one region of memory.
///
/// All operations take `&self`: readers never lock, writers lock one shard. The
/// handle keeps its own copy of the region's layout, read once when it was created.
pub struct Cache<R: Region, H: Hooks = NoHooks> {
    pub(crate) region: R,
    pub(crate) hooks: H,
    pub(crate) l: Layout,
}

impl<R: Region, H: Hooks> fmt::Debug for Cache<R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("bytes", &self.l.p.total_bytes)
            .field("shards", &self.l.p.shards)
            .field("page_size", &self.l.p.page_size)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Set,
    Add,
    Replace,
    Cas(CasToken),
}

#[derive(Clone, Copy)]
enum Expiry {
    Never,
    At(u64),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Stored,
    Exists,
    NotFound,
    Mismatch,
}

enum Found {
    Hit(Hit),
    TooSmall(usize),
    Miss,
}

enum Step {
    Hit {
        loc: Loc,
        loc_raw: u32,
        version: u32,
        vlen: usize,
        expiry: Option<u64>,
    },
    TooSmall {
        vlen: usize,
        expiry: Option<u64>,
    },
    Torn,
}

impl<R: Region> Cache<R, NoHooks> {
    /// Formats `region` as an empty cache. Everything previously in it is lost.
    pub fn format(region: R, config: &Config) -> Result<Self, Error> {
        Self::format_with_hooks(region, config, NoHooks)
    }

    /// Attaches to a region formatted earlier (by this or another process), after
    /// validating its header.
    pub fn attach(region: R) -> Result<Self, Error> {
        Self::attach_with_hooks(region, NoHooks)
    }
}

impl<R: Region, H: Hooks> Cache<R, H> {
    /// [`format`](Cache::format) with hooks.
    pub fn format_with_hooks(region: R, config: &Config, hooks: H) -> Result<Self, Error> {
        let l = Layout::plan(config, region.bytes())?;
        Ok(Self::format_layout(region, l, hooks))
    }

    pub(crate) fn format_layout(region: R, l: Layout, hooks: H) -> Self {
        l.write_header(&region);
        for s in 0..l.p.shards as usize {
            let m = ShardMem::new(&region, &l, l.shard(s));
            crate::region::zero(&region, m.s.base, crate::layout::SHARD_HEADER_BYTES);
            crate::region::zero(
                &region,
                m.stripe_off(0),
                l.p.stripes as usize * crate::layout::STRIPE_BYTES,
            );
            m.clear_index();
            init_shard_state(&m);
        }
        l.publish_header(&region);
        Cache { region, hooks, l }
    }

    /// [`attach`](Cache::attach) with hooks.
    pub fn attach_with_hooks(region: R, hooks: H) -> Result<Self, Error> {
        let l = Layout::read_header(&region)?;
        Ok(Cache { region, hooks, l })
    }

    /// The region the cache lives in.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    /// Gives the region back.
    pub fn into_region(self) -> R {
        self.region
    }

    // --- helpers --------------------------------------------------------------------

    #[inline(always)]
    fn check_key(&self, key: &[u8]) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if key.len() > self.l.p.max_key as usize {
            return Err(Error::KeyTooLong {
                len: key.len(),
                max: self.l.p.max_key as usize,
            });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        if value.len() > self.l.p.max_value as usize {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: self.l.p.max_value as usize,
            });
        }
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn locate(&self, key: &[u8]) -> (ShardMem<'_, R>, Probe) {
        let l = &self.l;
        let h = hash_key(l.hash, l.p.seed, key);
        (
            ShardMem::new(&self.region, l, l.shard(l.shard_of(h))),
            l.probe(h),
        )
    }

    /// Which statistics stripe this thread counts in (see [`Hooks::stripe_hint`]).
    #[inline(always)]
    fn stripe(&self) -> usize {
        let n = self.l.p.stripes;
        if n == 1 {
            return 0;
        }
        // Fibonacci hashing: consecutive hints land far apart.
        let h = (self.hooks.stripe_hint() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> (64 - n.trailing_zeros())) as usize
    }

    fn expiry_for(&self, ttl: Option<u64>) -> Result<Expiry, Error> {
        match ttl {
            None => Ok(Expiry::Never),
            Some(0) => Err(Error::InvalidTtl),
            Some(t) => {
                let now = self.hooks.now().ok_or(Error::NoClock)?;
                now.checked_add(t).map(Expiry::At).ok_or(Error::InvalidTtl)
            }
        }
    }

    #[inline]
    fn is_expired(&self, expiry: Option<u64>) -> bool {
        match (expiry, self.hooks.now()) {
            (Some(x), Some(now)) => x <= now,
            _ => false,
        }
    }

    /// Takes the write lock of shard `s`, recovering it if its owner died.
    pub(crate) fn lock(&self, s: Shard) -> Result<Locked<'_, R, H>, Error> {
        let m = ShardMem::new(&self.region, &self.l, s);
        let w = m.lock_word();
        let me = self.hooks.owner_id().max(1) as Word;
        if mutant(mutants::RACY_LOCK) {
            while w.load(Ordering::Acquire) != 0 {
                spin_hint();
            }
            w.store(me, Ordering::Relaxed);
            return Ok(Locked { c: self, m });
        }
        let mut spins = 0u32;
        loop {
            match w.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Ok(Locked { c: self, m }),
                Err(0) => continue,
                Err(owner) => {
                    spins = spins.wrapping_add(1);
                    // Ask whether the owner is alive every LIVENESS_EVERY spins, and
                    // always once before giving up: hooks that stop waiting early
                    // must still get a dead owner's lock recovered.
                    let asked = spins % LIVENESS_EVERY == 0;
                    if asked {
                        if let Some(g) = self.take_over(w, owner, me, m) {
                            return Ok(g);
                        }
                    }
                    if !self.hooks.relax(spins) {
                        if !asked {
                            if let Some(g) = self.take_over(w, owner, me, m) {
                                return Ok(g);
                            }
                        }
                        return Err(Error::Busy);
                    }
                }
            }
        }
    }

    /// Takes the lock over from `owner` if it is another owner and the hooks say it
    /// is dead, then repairs the shard and counts a recovery.
    fn take_over<'a>(
        &'a self,
        w: &crate::AtomicWord,
        owner: Word,
        me: Word,
        m: ShardMem<'a, R>,
    ) -> Option<Locked<'a, R, H>> {
        if owner == me
            || self.hooks.owner_alive(owner as u32)
            || w.compare_exchange(owner, me, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        let g = Locked { c: self, m };
        if !mutant(mutants::SKIP_REPAIR) {
            g.repair();
        }
        g.m.bump(Ctr::Recoveries, 1);
        Some(g)
    }

    // --- reading --------------------------------------------------------------------

    #[inline(always)]
    fn read_path(
        &self,
        key: &[u8],
        mut out: Option<&mut [u8]>,
        count: bool,
    ) -> Result<Found, Error> {
        self.check_key(key)?;
        let (m, p) = self.locate(key);
        for _ in 0..READ_ATTEMPTS {
            let e1 = m.epoch(Ordering::Acquire);
            if e1 & 1 != 0 {
                spin_hint();
                continue;
            }
            let step = m.find(p, |loc_raw| {
                self.read_candidate(&m, loc_raw, key, out.as_deref_mut())
            });
            match step {
                None => break,
                Some(Step::Torn) => {
                    spin_hint();
                    continue;
                }
                Some(s) => {
                    // The entry read ended with an acquire fence; a changed epoch means
                    // the page's geometry may have changed under the read.
                    if m.epoch(Ordering::Relaxed) != e1 {
                        continue;
                    }
                    match s {
                        Step::Hit {
                            loc,
                            loc_raw,
                            version,
                            vlen,
                            expiry,
                        } => {
                            if self.is_expired(expiry) {
                                break;
                            }
                            m.touch(loc);
                            if count {
                                m.count_hit(self.stripe(), true);
                            }
                            let token = CasToken::new(e1, loc_raw, version);
                            return Ok(Found::Hit(Hit {
                                len: vlen,
                                token,
                                expires_at: expiry,
                            }));
                        }
                        // An expired entry is a miss whatever the buffer's size.
                        Step::TooSmall { expiry, .. } if self.is_expired(expiry) => break,
                        Step::TooSmall { vlen, .. } => return Ok(Found::TooSmall(vlen)),
                        Step::Torn => unreachable!("handled above"),
                    }
                }
            }
        }
        if count {
            m.count_hit(self.stripe(), false);
        }
        Ok(Found::Miss)
    }

    /// Reads the slot a matching index tag points at. Kept out of line so that the
    /// common miss path (no tag match) stays small.
    #[inline(never)]
    fn read_candidate(
        &self,
        m: &ShardMem<'_, R>,
        loc_raw: u32,
        key: &[u8],
        out: Option<&mut [u8]>,
    ) -> Option<Step> {
        let l = &self.l;
        let loc = l.unpack(loc_raw);
        let class = m.page_class(loc.page, Ordering::Relaxed)?;
        let g = l.geom[class];
        if loc.idx >= g.nslots {
            return None;
        }
        let e = m.slot_off(class, loc);
        // A hit will look at the page's reference bitmap: fetch it alongside the entry.
        self.region
            .prefetch(m.ref_word(loc) / crate::sync::WORD_BYTES, 8);
        let slot = g.slot as usize;
        let read = match out {
            Some(buf) if !l.checksums() => {
                match entry::read_plain::<_, false>(&self.region, e, slot, key, buf) {
                    Some(read) => read,
                    None => {
                        entry::read(&self.region, e, slot, KeyArg::Match(key), false, Some(buf))
                    }
                }
            }
            out => entry::read(
                &self.region,
                e,
                slot,
                KeyArg::Match(key),
                l.checksums(),
                out,
            ),
        };
        match read {
            Read::Hit {
                version,
                vlen,
                expiry,
                ..
            } => Some(Step::Hit {
                loc,
                loc_raw,
                version,
                vlen,
                expiry,
            }),
            Read::TooSmall { vlen, expiry, .. } => Some(Step::TooSmall { vlen, expiry }),
            Read::Torn => Some(Step::Torn),
            Read::Other | Read::Corrupt => None,
        }
    }

    /// Copies the value of `key` into `out` and returns its length, or `None` on a
    /// miss. If `out` is too small, fails with [`Error::BufferTooSmall`] (copying
    /// nothing) so the caller can retry with a larger buffer.
    ///
    /// This is the hot path: one hash, one bucket, one entry, and only plain loads and
    /// stores. Anything unusual (a torn read, an entry with a TTL, checksums, a small
    /// buffer, a shard whose layout is changing) falls back to the general read path.
    #[inline]
    pub fn get(&self, key: &[u8], out: &mut [u8]) -> Result<Option<usize>, Error> {
        let l = &self.l;
        if key.is_empty() || key.len() > l.p.max_key as usize {
            return self.get_general(key, out);
        }
        let checksums = l.checksums();
        let (m, p) = self.locate(key);
        let e1 = m.epoch(Ordering::Acquire);
        if e1 & 1 != 0 {
            return self.get_general(key, out);
        }
        let found = m.find(p, |loc_raw| {
            let loc = l.unpack(loc_raw);
            let class = m.page_class(loc.page, Ordering::Relaxed)?;
            let g = l.geom[class];
            if loc.idx >= g.nslots {
                return None;
            }
            let e = m.slot_off(class, loc);
            // A hit will look at the page's reference bitmap: fetch it alongside.
            self.region
                .prefetch(m.ref_word(loc) / crate::sync::WORD_BYTES, 8);
            let read = if checksums {
                entry::read_plain::<_, true>(&self.region, e, g.slot as usize, key, out)
            } else {
                entry::read_plain::<_, false>(&self.region, e, g.slot as usize, key, out)
            };
            match read {
                // A damaged entry is a miss, like one for another key.
                Some(Read::Other | Read::Corrupt) => None,
                Some(Read::Hit { vlen, .. }) => Some(Some((loc, vlen))),
                _ => Some(None),
            }
        });
        match found {
            None => {
                m.count_hit(self.stripe(), false);
                Ok(None)
            }
            Some(Some((loc, vlen))) if m.epoch(Ordering::Relaxed) == e1 => {
                m.touch(loc);
                m.count_hit(self.stripe(), true);
                Ok(Some(vlen))
            }
            Some(_) => self.get_general(key, out),
        }
    }

    #[inline(never)]
    fn get_general(&self, key: &[u8], out: &mut [u8]) -> Result<Option<usize>, Error> {
        Ok(self.get_entry(key, out)?.map(|h| h.len))
    }

    /// Like [`get`](Self::get), also returning the entry's CAS token and expiry.
    #[inline]
    pub fn get_entry(&self, key: &[u8], out: &mut [u8]) -> Result<Option<Hit>, Error> {
        match self.read_path(key, Some(out), true)? {
            Found::Hit(h) => Ok(Some(h)),
            Found::TooSmall(needed) => Err(Error::BufferTooSmall { needed }),
            Found::Miss => Ok(None),
        }
    }

    /// Runs `f` on a validated copy of the value of `key`, made in an `N`-byte buffer
    /// on the stack. Fails with [`Error::BufferTooSmall`] if the value is longer.
    #[inline]
    pub fn get_with<const N: usize, T>(
        &self,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, Error> {
        let mut buf = [0u8; N];
        match self.get(key, &mut buf)? {
            Some(n) => Ok(Some(f(&buf[..n]))),
            None => Ok(None),
        }
    }

    /// Whether `key` has a live (unexpired) entry. Counts as a hit or miss.
    #[inline]
    pub fn contains(&self, key: &[u8]) -> Result<bool, Error> {
        Ok(matches!(self.read_path(key, None, true)?, Found::Hit(_)))
    }

    /// Copies the value of `key` into a new `Vec`.
    #[cfg(feature = "alloc")]
    pub fn get_vec(&self, key: &[u8]) -> Result<Option<alloc::vec::Vec<u8>>, Error> {
        let mut buf = alloc::vec![0u8; 256];
        loop {
            match self.get(key, &mut buf) {
                Ok(Some(n)) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Ok(None) => return Ok(None),
                Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
                Err(e) => return Err(e),
            }
        }
    }

    // --- writing --------------------------------------------------------------------

    fn write(
        &self,
        key: &[u8],
        value: &[u8],
        expiry: Expiry,
        mode: Mode,
    ) -> Result<Outcome, Error> {
        self.check_key(key)?;
        self.check_value(value)?;
        let (m, p) = self.locate(key);
        let g = self.lock(m.s)?;
        let ex = self.live_existing(&g, p, key);
        match (mode, &ex) {
            (Mode::Add, Some(_)) => return Ok(Outcome::Exists),
            (Mode::Replace | Mode::Cas(_), None) => return Ok(Outcome::NotFound),
            (Mode::Cas(t), Some(x)) => {
                let epoch = g.m.epoch(Ordering::Relaxed);
                if CasToken::new(epoch, self.l.pack(x.loc), x.version) != t {
                    return Ok(Outcome::Mismatch);
                }
            }
            _ => {}
        }
        let at = match expiry {
            Expiry::Never => None,
            Expiry::At(x) => Some(x),
        };
        self.store_locked(&g, p, key, value, at, ex)?;
        Ok(Outcome::Stored)
    }

    /// The existing entry for `key`, unless it has expired (then it is removed).
    fn live_existing(&self, g: &Locked<'_, R, H>, p: Probe, key: &[u8]) -> Option<Existing> {
        let ex = g.find_existing(p, key)?;
        if g.expired(&ex) {
            g.unlink_at(&ex, p, Ctr::Expirations);
            g.release(ex.class, ex.loc);
            return None;
        }
        Some(ex)
    }

    /// Stores `value` for `key` with the lock held. `ex` is the key's current entry.
    fn store_locked(
        &self,
        g: &Locked<'_, R, H>,
        p: Probe,
        key: &[u8],
        value: &[u8],
        expiry: Option<u64>,
        ex: Option<Existing>,
    ) -> Result<(), Error> {
        let r = &self.region;
        let checksums = self.l.checksums();
        let class = class_of(entry_bytes(
            key.len(),
            value.len(),
            checksums,
            expiry.is_some(),
        ));
        if let Some(x) = ex {
            if x.class == class {
                // Same size class: rewrite in place under the entry's seqlock.
                let odd = entry::begin_write(r, x.e);
                let meta = entry::write_body(r, x.e, key, value, expiry, checksums);
                entry::end_write(r, x.e, odd, meta);
                g.m.touch(x.loc);
                g.m.bump(Ctr::Updates, 1);
                return Ok(());
            }
        }
        let loc = match g.alloc(class) {
            Ok(loc) => loc,
            Err(e) => {
                g.m.bump(Ctr::Rejected, 1);
                return Err(e);
            }
        };
        let e = g.m.slot_off(class, loc);
        let odd = entry::begin_write(r, e);
        let meta = entry::write_body(r, e, key, value, expiry, checksums);
        entry::end_write(r, e, odd, meta);
        // Allocation may have evicted entries, this key's among them: look again.
        match g.find_existing(p, key) {
            Some(old) => {
                let st = if g.m.state(old.loc) == state::HOT {
                    state::HOT
                } else {
                    state::COLD
                };
                g.commit(class, loc, st);
                g.m.set_slot(old.pos, self.l.slot_value(p.tag, self.l.pack(loc)));
                entry::free_entry(r, old.e);
                g.forget(old.class, old.loc);
                g.release(old.class, old.loc);
                g.m.touch(loc);
                g.m.bump(Ctr::Updates, 1);
            }
            None => match g.index_reserve(p) {
                Some((pos, dist, ghost_hit)) => {
                    g.commit(class, loc, if ghost_hit { state::HOT } else { state::COLD });
                    g.m.set_slot(pos, self.l.slot_value(p.tag, self.l.pack(loc)));
                    g.m.add_overflow(p.home, dist, 1);
                    g.m.bump(Ctr::Inserts, 1);
                }
                None => {
                    entry::free_entry(r, e);
                    g.release(class, loc);
                    g.m.bump(Ctr::Rejected, 1);
                    return Err(Error::NoSpace);
                }
            },
        }
        Ok(())
    }

    /// Stores `value` under `key`, replacing any previous value (and its TTL).
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.write(key, value, Expiry::Never, Mode::Set).map(drop)
    }

    /// Stores `value` under `key`, expiring `ttl` clock ticks from now.
    pub fn set_ttl(&self, key: &[u8], value: &[u8], ttl: u64) -> Result<(), Error> {
        let x = self.expiry_for(Some(ttl))?;
        self.write(key, value, x, Mode::Set).map(drop)
    }

    /// Stores `value` only if `key` is absent. Returns `false` (changing nothing) if
    /// it was present.
    pub fn add(&self, key: &[u8], value: &[u8], ttl: Option<u64>) -> Result<bool, Error> {
        let x = self.expiry_for(ttl)?;
        Ok(self.write(key, value, x, Mode::Add)? == Outcome::Stored)
    }

    /// Stores `value` only if `key` is present. Returns `false` if it was absent.
    pub fn replace(&self, key: &[u8], value: &[u8], ttl: Option<u64>) -> Result<bool, Error> {
        let x = self.expiry_for(ttl)?;
        Ok(self.write(key, value, x, Mode::Replace)? == Outcome::Stored)
    }

    /// Stores `value` only if the entry is still the version `token` was taken from.
    pub fn cas(
        &self,
        key: &[u8],
        token: CasToken,
        value: &[u8],
        ttl: Option<u64>,
    ) -> Result<CasOutcome, Error> {
        let x = self.expiry_for(ttl)?;
        Ok(match self.write(key, value, x, Mode::Cas(token))? {
            Outcome::Stored => CasOutcome::Stored,
            Outcome::Mismatch => CasOutcome::Mismatch,
            _ => CasOutcome::NotFound,
        })
    }

    /// Removes `key`. Returns whether a live entry was removed.
    pub fn remove(&self, key: &[u8]) -> Result<bool, Error> {
        self.check_key(key)?;
        let (m, p) = self.locate(key);
        let g = self.lock(m.s)?;
        let Some(ex) = g.find_existing(p, key) else {
            return Ok(false);
        };
        let expired = g.expired(&ex);
        g.unlink_at(
            &ex,
            p,
            if expired {
                Ctr::Expirations
            } else {
                Ctr::Removes
            },
        );
        g.release(ex.class, ex.loc);
        Ok(!expired)
    }

    /// Adds `delta` to the unsigned decimal integer stored under `key` (wrapping at
    /// 2⁶⁴, as memcached does) and returns the new value. A missing key is created
    /// with `init` if given (and `init` is returned), else `None` is returned. The
    /// entry keeps its TTL.
    pub fn incr(&self, key: &[u8], delta: u64, init: Option<u64>) -> Result<Option<u64>, Error> {
        self.arith(key, init, |v| v.wrapping_add(delta))
    }

    /// Subtracts `delta`, stopping at zero (as memcached does). See [`incr`](Self::incr).
    pub fn decr(&self, key: &[u8], delta: u64, init: Option<u64>) -> Result<Option<u64>, Error> {
        self.arith(key, init, |v| v.saturating_sub(delta))
    }

    fn arith(
        &self,
        key: &[u8],
        init: Option<u64>,
        op: impl FnOnce(u64) -> u64,
    ) -> Result<Option<u64>, Error> {
        self.check_key(key)?;
        let (m, p) = self.locate(key);
        let g = self.lock(m.s)?;
        let ex = self.live_existing(&g, p, key);
        let (new, expiry) = match ex {
            None => match init {
                None => return Ok(None),
                Some(v) => (v, None),
            },
            Some(x) => {
                if x.shape.vlen == 0 || x.shape.vlen > 20 {
                    return Err(Error::NotANumber);
                }
                let mut digits = [0u8; 20];
                crate::region::read_bytes(
                    &self.region,
                    x.shape.value_off,
                    &mut digits[..x.shape.vlen],
                );
                let cur = parse_decimal(&digits[..x.shape.vlen]).ok_or(Error::NotANumber)?;
                let expiry = x
                    .shape
                    .expiry_off
                    .map(|o| crate::region::load_u64(&self.region, o, Ordering::Relaxed));
                (op(cur), expiry)
            }
        };
        let mut buf = [0u8; 20];
        let text = format_decimal(new, &mut buf);
        self.check_value(text)?;
        self.store_locked(&g, p, key, text, expiry, ex)?;
        Ok(Some(new))
    }

    /// Removes every entry. Shards are emptied one at a time, each under its lock;
    /// readers never block.
    pub fn clear(&self) -> Result<(), Error> {
        for s in 0..self.l.p.shards as usize {
            let g = self.lock(self.l.shard(s))?;
            g.reset();
        }
        Ok(())
    }

    // --- sizes and statistics -------------------------------------------------------

    /// Number of resident entries (including expired ones not yet collected). Exact
    /// when no writer is active, approximate otherwise.
    pub fn len(&self) -> usize {
        (0..self.l.p.shards as usize)
            .map(|s| ShardMem::new(&self.region, &self.l, self.l.shard(s)).hdr(off::LIVE) as usize)
            .sum()
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries of this key and value length fit (ignoring index limits and
    /// the entry-count cap).
    pub fn capacity_for(&self, key_len: usize, value_len: usize) -> usize {
        let class = class_of(entry_bytes(
            key_len.max(1),
            value_len,
            self.l.checksums(),
            false,
        ));
        if class >= self.l.nclasses as usize {
            return 0;
        }
        self.l.geom[class].nslots as usize * self.l.p.pages as usize * self.l.p.shards as usize
    }

    /// Entries the cache can hold when they have the size the region was formatted
    /// for ([`Config::expected_entry`]): the smaller of what the arena and the index
    /// hold, and the entry cap.
    pub fn capacity(&self) -> usize {
        self.l.holds_class(self.l.p.expected_class as usize) as usize
    }

    /// Where the region's bytes go per entry when it is full of entries with keys of
    /// `key_len` and values of `value_len` bytes (no TTL).
    pub fn footprint(&self, key_len: usize, value_len: usize) -> Footprint {
        let l = &self.l;
        let checksums = l.checksums();
        let entries = l.holds(key_len, value_len);
        let n = entries.max(1) as f64;
        let shards = l.p.shards as f64;
        let class = class_of(entry_bytes(key_len.max(1), value_len, checksums, false));
        let header = (crate::layout::ENTRY_HEADER_BYTES + if checksums { 8 } else { 0 }) as f64;
        let index = (l.p.buckets as usize * crate::layout::BUCKET_BYTES) as f64 * shards / n;
        let pages = l.p.pages as f64 * shards;
        let per_page_meta = match l.geom.get(class) {
            Some(g) if class < l.nclasses as usize && g.nslots > 0 => g.data_off as f64,
            _ => 0.0,
        };
        // Per-page bitmap and state bytes, page tables, then every byte outside pages
        // and index (region and shard headers, class tables, statistics, alignment).
        let page_meta = pages * (per_page_meta + crate::layout::PAGE_STATE_BYTES as f64 + 2.0);
        let outside = l.used_bytes() as f64
            - pages * l.p.page_size as f64
            - (l.p.buckets as usize * crate::layout::BUCKET_BYTES) as f64 * shards
            - pages * (crate::layout::PAGE_STATE_BYTES as f64 + 2.0);
        let bookkeeping = (page_meta + outside) / n;
        let total = l.used_bytes() as f64 / n;
        let payload = (key_len + value_len) as f64;
        let rounding = total - payload - header - index - bookkeeping;
        Footprint {
            entries,
            payload,
            header,
            index,
            bookkeeping,
            rounding,
            total,
        }
    }

    /// Total bytes of the region the cache uses.
    pub fn region_bytes(&self) -> usize {
        self.l.used_bytes()
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.l.p.shards as usize
    }

    /// Longest key accepted.
    pub fn max_key_len(&self) -> usize {
        self.l.p.max_key as usize
    }

    /// Longest value accepted.
    pub fn max_value_len(&self) -> usize {
        self.l.p.max_value as usize
    }

    /// Counters of one shard.
    pub fn shard_stats(&self, shard: usize) -> Option<ShardStats> {
        if shard >= self.l.p.shards as usize {
            return None;
        }
        let m = ShardMem::new(&self.region, &self.l, self.l.shard(shard));
        let (mut hits, mut misses) = (0u64, 0u64);
        for s in 0..self.l.p.stripes as usize {
            let o = m.stripe_off(s);
            hits = hits.saturating_add(crate::sync::widen(crate::region::load(
                &self.region,
                o,
                Ordering::Relaxed,
            )));
            misses = misses.saturating_add(crate::sync::widen(crate::region::load(
                &self.region,
                o + 8,
                Ordering::Relaxed,
            )));
        }
        Some(ShardStats {
            hits,
            misses,
            inserts: crate::sync::widen(m.counter(Ctr::Inserts)),
            updates: crate::sync::widen(m.counter(Ctr::Updates)),
            removes: crate::sync::widen(m.counter(Ctr::Removes)),
            evictions: crate::sync::widen(m.counter(Ctr::Evictions)),
            expirations: crate::sync::widen(m.counter(Ctr::Expirations)),
            rejected: crate::sync::widen(m.counter(Ctr::Rejected)),
            recoveries: crate::sync::widen(m.counter(Ctr::Recoveries)),
            entries: m.hdr(off::LIVE) as u64,
        })
    }

    /// Counters summed over all shards.
    pub fn stats(&self) -> ShardStats {
        (0..self.l.p.shards as usize)
            .filter_map(|s| self.shard_stats(s))
            .fold(ShardStats::default(), |a, b| a + b)
    }

    // --- iteration ------------------------------------------------------------------

    /// Calls `f(key, value)` for every live entry, shard by shard, holding no lock.
    ///
    /// The buffers must hold the longest key and value the region accepts. Each entry
    /// passed to `f` is a validated copy; entries written or removed while the walk is
    /// under way may be seen or missed, and an entry moved to another size class
    /// during the walk may be seen twice. `f` may stop the walk with
    /// `ControlFlow::Break`.
    pub fn for_each(
        &self,
        key_buf: &mut [u8],
        value_buf: &mut [u8],
        mut f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        if key_buf.len() < self.l.p.max_key as usize {
            return Err(Error::BufferTooSmall {
                needed: self.l.p.max_key as usize,
            });
        }
        if value_buf.len() < self.l.p.max_value as usize {
            return Err(Error::BufferTooSmall {
                needed: self.l.p.max_value as usize,
            });
        }
        let l = &self.l;
        let checksums = l.checksums();
        for s in 0..l.p.shards as usize {
            let m = ShardMem::new(&self.region, l, l.shard(s));
            for page in 0..l.p.pages {
                let mut idx = 0;
                'slots: while let Some(class) = m.page_class(page, Ordering::Relaxed) {
                    let g = l.geom[class];
                    if idx >= g.nslots {
                        break;
                    }
                    let loc = Loc { page, idx };
                    // Slots never allocated since the page was (re)formatted may hold
                    // anything; only live slots are read.
                    if m.state(loc) == state::FREE {
                        idx += 1;
                        continue;
                    }
                    for _ in 0..READ_ATTEMPTS {
                        let e1 = m.epoch(Ordering::Acquire);
                        if e1 & 1 != 0 {
                            spin_hint();
                            continue;
                        }
                        if m.page_class(page, Ordering::Relaxed) != Some(class) {
                            continue 'slots;
                        }
                        let e = m.slot_off(class, loc);
                        let read = entry::read(
                            &self.region,
                            e,
                            g.slot as usize,
                            KeyArg::Copy(key_buf),
                            checksums,
                            Some(value_buf),
                        );
                        match read {
                            Read::Torn => continue,
                            Read::Hit {
                                klen, vlen, expiry, ..
                            } => {
                                if m.epoch(Ordering::Relaxed) != e1 {
                                    continue;
                                }
                                if !self.is_expired(expiry)
                                    && f(&key_buf[..klen], &value_buf[..vlen]).is_break()
                                {
                                    return Ok(());
                                }
                                break;
                            }
                            _ => break,
                        }
                    }
                    idx += 1;
                }
            }
        }
        Ok(())
    }
}

fn parse_decimal(b: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

fn format_decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}
