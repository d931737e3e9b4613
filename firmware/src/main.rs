//! Firmware test program for cachee on a Cortex-M4 (QEMU `mps2-an386`).
//!
//! Boots with cortex-m-rt, runs every test in [`tests::TESTS`] and reports
//! through ARM semihosting: one `test NAME ... ok` line per test, a closing
//! `firmware: N passed, N failed` line, then a semihosting exit whose status
//! becomes QEMU's exit code (0 iff every test passed). A panic or a fault
//! anywhere also ends QEMU with a failure status.
//!
//! There is no heap (no `#[global_allocator]`, no `alloc`): everything the
//! library under test gets is the static [`region::REGION`] and the stack.
//!
//! The tests of cachee-core are in `tests.rs`.
#![no_std]
#![no_main]

mod clock;
mod harness;
mod region;
mod selfcheck;
mod tests;

use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    harness::run(tests::TESTS)
}
