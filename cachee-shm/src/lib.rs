//! One cache shared by many processes on one host, through a memory-mapped segment.
//!
//! A segment is a file — by default under `/dev/shm` — holding a small header and a
//! [`cachee_core`] region. Unrelated processes open it by name and use the same cache
//! at memory speed: readers take no lock and never block; writers lock one shard.
//!
//! ```no_run
//! use std::time::Duration;
//! use cachee_shm::{Options, Segment};
//!
//! // Every worker runs this; exactly one creates the segment.
//! let seg = Segment::open_or_create("my-app-cache", &Options::new().size(256 << 20))?;
//! seg.set(b"user:42", b"{\"name\":\"Ada\"}")?;
//! seg.set_ttl(b"session:9", b"token", Duration::from_secs(30))?;
//! assert_eq!(seg.get(b"user:42")?.as_deref(), Some(&b"{\"name\":\"Ada\"}"[..]));
//! assert_eq!(seg.incr(b"hits", 1, Some(0))?, Some(0));
//! println!("{:?}", seg.stats());
//! # Ok::<(), cachee_shm::ShmError>(())
//! ```
//!
//! # Crashes
//!
//! Each attached process takes a slot in the segment's owner table (pid plus process
//! start time, so a reused pid is not mistaken for the old process). Shard locks hold
//! the slot's id. A writer that finds a lock held by a process that has died takes it
//! over, rebuilds that one shard from its intact entries, counts a recovery and goes
//! on. A lock held by a live but stopped process is never taken; writers give up on it
//! after the lock timeout with [`cachee_core::Error::Busy`]. Readers never wait.
//!
//! # Time
//!
//! TTLs use the wall clock (`CLOCK_REALTIME`, milliseconds since the Unix epoch): it is
//! the one clock every process, and a segment file that outlives a reboot, agrees on.
//!
//! # Permissions
//!
//! Segments are created with mode 0600 (configurable, never group- or
//! world-writable), are never opened through a symbolic link, and are refused if they
//! belong to another user or are writable by others.

/// The README's examples, compiled (and, where they need no shared memory, run) as
/// doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

mod error;
mod header;
mod hooks;
mod process;
mod segment;

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::time::Duration;

pub use cachee_core::{
    CasOutcome, CasToken, Error as CacheError, Problem, RepairReport, ShardStats,
};
pub use error::ShmError;
pub use header::HEADER_BYTES;
pub use hooks::{ShmHooks, now_millis};
pub use segment::{Options, Segment, destroy, resolve};

fn ttl_ms(ttl: Duration) -> Result<u64, ShmError> {
    let ms = ttl.as_millis();
    if ms == 0 || ms > u64::MAX as u128 {
        return Err(CacheError::InvalidTtl.into());
    }
    Ok(ms as u64)
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Segment {
    /// The value of `key`, copied into a new vector.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ShmError> {
        let mut buf = vec![0u8; self.cache().max_value_len()];
        let n = self.cache().get(key, &mut buf)?;
        Ok(n.map(|n| {
            buf.truncate(n);
            buf
        }))
    }

    /// Copies the value of `key` into `out`; see [`cachee_core::Cache::get`].
    pub fn get_into(&self, key: &[u8], out: &mut [u8]) -> Result<Option<usize>, ShmError> {
        Ok(self.cache().get(key, out)?)
    }

    /// Runs `f` on a validated copy of the value of `key`, made in a per-thread buffer
    /// (no allocation after the first call on a thread).
    pub fn get_with<T>(
        &self,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, ShmError> {
        SCRATCH.with(|s| {
            let mut buf = s.borrow_mut();
            let need = self.cache().max_value_len();
            if buf.len() < need {
                buf.resize(need, 0);
            }
            Ok(self.cache().get(key, &mut buf)?.map(|n| f(&buf[..n])))
        })
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &[u8]) -> Result<bool, ShmError> {
        Ok(self.cache().contains(key)?)
    }

    /// Stores `value` under `key`.
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<(), ShmError> {
        Ok(self.cache().set(key, value)?)
    }

    /// Stores `value` under `key`, expiring after `ttl`.
    pub fn set_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<(), ShmError> {
        Ok(self.cache().set_ttl(key, value, ttl_ms(ttl)?)?)
    }

    /// Stores `value` only if `key` is absent; returns whether it did.
    pub fn add(&self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<bool, ShmError> {
        Ok(self.cache().add(key, value, ttl.map(ttl_ms).transpose()?)?)
    }

    /// Stores `value` only if `key` is present; returns whether it did.
    pub fn replace(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, ShmError> {
        Ok(self
            .cache()
            .replace(key, value, ttl.map(ttl_ms).transpose()?)?)
    }

    /// The value of `key` and its CAS token.
    pub fn gets(&self, key: &[u8]) -> Result<Option<(Vec<u8>, CasToken)>, ShmError> {
        let mut buf = vec![0u8; self.cache().max_value_len()];
        Ok(self.cache().get_entry(key, &mut buf)?.map(|hit| {
            buf.truncate(hit.len);
            (buf, hit.token)
        }))
    }

    /// Stores `value` only if the entry is still the version `token` came from.
    pub fn cas(
        &self,
        key: &[u8],
        token: CasToken,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<CasOutcome, ShmError> {
        Ok(self
            .cache()
            .cas(key, token, value, ttl.map(ttl_ms).transpose()?)?)
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&self, key: &[u8]) -> Result<bool, ShmError> {
        Ok(self.cache().remove(key)?)
    }

    /// Adds `delta` to a decimal counter; see [`cachee_core::Cache::incr`].
    pub fn incr(&self, key: &[u8], delta: u64, init: Option<u64>) -> Result<Option<u64>, ShmError> {
        Ok(self.cache().incr(key, delta, init)?)
    }

    /// Subtracts `delta` from a decimal counter, stopping at zero.
    pub fn decr(&self, key: &[u8], delta: u64, init: Option<u64>) -> Result<Option<u64>, ShmError> {
        Ok(self.cache().decr(key, delta, init)?)
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), ShmError> {
        Ok(self.cache().clear()?)
    }

    /// Number of resident entries.
    pub fn len(&self) -> usize {
        self.cache().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.cache().is_empty()
    }

    /// Counters over all shards.
    pub fn stats(&self) -> ShardStats {
        self.cache().stats()
    }

    /// Calls `f` for every live entry (no global lock; see
    /// [`cachee_core::Cache::for_each`]).
    pub fn for_each(&self, f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>) -> Result<(), ShmError> {
        let mut k = vec![0u8; self.cache().max_key_len()];
        let mut v = vec![0u8; self.cache().max_value_len()];
        Ok(self.cache().for_each(&mut k, &mut v, f)?)
    }

    /// Checks every invariant, reporting each problem; returns how many there were.
    pub fn check(&self, report: impl FnMut(Problem)) -> Result<u64, ShmError> {
        Ok(self.cache().check(report)?)
    }

    /// Rebuilds the shards that fail [`check`](Self::check).
    pub fn repair(&self) -> Result<RepairReport, ShmError> {
        Ok(self.cache().repair()?)
    }
}
