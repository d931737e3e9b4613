//! The core's [`Hooks`] for a segment shared by processes: a wall clock every process
//! agrees on, lock owners identified through the segment's owner table, and bounded
//! waiting.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cachee_core::Hooks;

use crate::header::Header;

/// Hooks of one process's handle on a segment.
#[derive(Debug)]
pub struct ShmHooks {
    header: Header,
    slots: u64,
    /// This process, packed pid and start time.
    me: u64,
    id: u32,
    lock_timeout: Duration,
}

impl ShmHooks {
    pub(crate) fn new(
        header: Header,
        slots: u64,
        me: u64,
        id: u32,
        lock_timeout: Duration,
    ) -> Self {
        ShmHooks {
            header,
            slots,
            me,
            id,
            lock_timeout,
        }
    }

    pub(crate) fn release(&self) {
        self.header.release_owner(self.id, self.me);
    }
}

/// Milliseconds since the Unix epoch: the TTL clock. Wall time, because it is the one
/// clock all processes — and a segment file that outlives a reboot — agree on. A step
/// of the system clock shortens or lengthens TTLs by the same amount.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How often (in spins) `cachee-core` asks `owner_alive` while waiting for a shard
/// lock (its `LIVENESS_EVERY`).
const LIVENESS_SPINS: u32 = 256;

thread_local! {
    static WAIT_START: Cell<Option<Instant>> = const { Cell::new(None) };
    static THREAD_NO: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    };
}

impl Hooks for ShmHooks {
    fn now(&self) -> Option<u64> {
        Some(now_millis())
    }

    fn owner_id(&self) -> u32 {
        self.id
    }

    fn owner_alive(&self, id: u32) -> bool {
        self.header.owner_alive(id, self.me, self.slots)
    }

    /// Spins briefly, then yields the CPU; gives up after the handle's lock timeout —
    /// but never before the core has asked (twice) whether the lock's owner is alive.
    ///
    /// The core asks every [`LIVENESS_SPINS`] spins. On a saturated CPU each yield can
    /// cost a whole time slice, so a timeout alone could expire before the first
    /// question, and a dead owner's lock would be given up on (`Busy`) instead of
    /// recovered. Yielding only every 16th spin keeps the time to that question short
    /// (tens of milliseconds rather than seconds when every core is busy).
    fn relax(&self, spins: u32) -> bool {
        if spins <= 1 {
            WAIT_START.with(|w| w.set(Some(Instant::now())));
        }
        if spins < 64 || spins % 16 != 0 {
            std::hint::spin_loop();
            return true;
        }
        std::thread::yield_now();
        if spins <= 2 * LIVENESS_SPINS {
            return true;
        }
        let started = WAIT_START.with(|w| w.get()).unwrap_or_else(Instant::now);
        started.elapsed() < self.lock_timeout
    }

    /// Distinct for every thread of every process: the owner slot and a per-process
    /// thread number.
    fn stripe_hint(&self) -> usize {
        THREAD_NO.with(|t| *t) * 4099 + self.id as usize
    }
}
