//! A SysTick-free, fake tick source: time advances only when a test says so,
//! which makes expiry/TTL behaviour deterministic under emulation.

use core::sync::atomic::{AtomicU32, Ordering};

/// Monotonic tick counter (wrapping `u32`: this target has no 64-bit atomics).
#[derive(Debug)]
pub struct FakeClock {
    ticks: AtomicU32,
}

impl FakeClock {
    pub const fn new(start: u32) -> Self {
        Self {
            ticks: AtomicU32::new(start),
        }
    }

    /// Current tick.
    pub fn now(&self) -> u32 {
        self.ticks.load(Ordering::Acquire)
    }

    /// Advances by `by` ticks (wrapping) and returns the new tick.
    pub fn advance(&self, by: u32) -> u32 {
        self.ticks.fetch_add(by, Ordering::AcqRel).wrapping_add(by)
    }
}
