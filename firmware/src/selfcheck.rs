//! Harness self-check (keep this one): the linker, the runtime and the stack
//! are set up the way memory.x and cortex-m-rt promise. Must run first: it
//! checks that `REGION` is still all zeros, as the runtime left it.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::harness::{self, FLASH_END, FLASH_START, RAM_END, RAM_START};
use crate::region::{REGION, REGION_ALIGN, REGION_BYTES};
use crate::{ensure, ensure_eq};

/// Initialised .data (copied from flash by cortex-m-rt before `main`).
static DATA_CANARY: AtomicU32 = AtomicU32::new(0xC0FF_EE42);

/// The linker put code in flash, .data/.bss/REGION in RAM and the stack at the
/// top of RAM, and the runtime initialised .data and zeroed .bss.
pub fn memory_layout() -> Result<(), &'static str> {
    let l = harness::layout();
    let sp = cortex_m::register::msp::read() as usize;
    let code = memory_layout as fn() -> _ as usize;
    let region = REGION.as_ptr() as usize;

    ensure!(
        (FLASH_START..FLASH_END).contains(&code),
        "code not in FLASH"
    );
    ensure_eq!(
        l.stack_start,
        RAM_END,
        "stack does not start at the end of RAM"
    );
    ensure!(l.stack_start % 8 == 0, "initial SP not 8-byte aligned");
    ensure!(
        l.stack_end < sp && sp <= l.stack_start,
        "SP outside [_stack_end, _stack_start]"
    );
    ensure!(
        l.stack_start - sp < 16 * 1024,
        "main's stack frame is implausibly deep"
    );
    ensure!(
        RAM_START <= l.data.0 && l.data.1 <= l.bss.0 && l.bss.1 <= l.stack_end,
        ".data/.bss not in RAM below the stack"
    );
    ensure!(
        (l.bss.0..l.bss.1).contains(&region) && region + REGION_BYTES <= l.bss.1,
        "REGION not in .bss"
    );
    ensure_eq!(region % REGION_ALIGN, 0, "REGION misaligned");
    ensure!(
        l.stack_start - l.stack_end >= 64 * 1024,
        "less than 64 KiB of stack"
    );
    let canary = &raw const DATA_CANARY as usize;
    ensure!(
        (l.data.0..l.data.1).contains(&canary),
        "DATA_CANARY not in .data"
    );
    // Read the initial value and write (so it cannot be folded into .rodata).
    ensure_eq!(
        DATA_CANARY.compare_exchange(0xC0FF_EE42, 1, Ordering::AcqRel, Ordering::Acquire),
        Ok(0xC0FF_EE42),
        ".data not initialised"
    );
    ensure!(
        REGION
            .words()
            .iter()
            .all(|w| w.load(Ordering::Relaxed) == 0),
        "REGION (.bss) not zeroed"
    );
    ensure_eq!(stack_probe(), STACK_PROBE_SUM, "deep stack frame corrupted");
    Ok(())
}

const STACK_PROBE_BYTES: usize = 32 * 1024;
const STACK_PROBE_SUM: u32 = (STACK_PROBE_BYTES as u32 / 256) * (255 * 256 / 2);

/// Writes and reads back a 32 KiB stack frame: faults if the stack is not in
/// real RAM.
#[inline(never)]
fn stack_probe() -> u32 {
    let mut buf = [0u8; STACK_PROBE_BYTES];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = i as u8;
    }
    let buf = core::hint::black_box(&buf);
    buf.iter().map(|&b| u32::from(b)).sum()
}
