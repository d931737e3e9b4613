//! A tiny test runner for a `no_std`, `no_main` target, reporting through
//! semihosting (host stdout and the host process's exit status).

use core::cell::Cell;
use core::fmt::Write as _;
use core::panic::PanicInfo;

use cortex_m::interrupt::{self, Mutex};
use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::{
    debug::{self, EXIT_FAILURE, EXIT_SUCCESS},
    hio, hprintln,
};

/// A test: `Ok(())` passes, `Err(reason)` fails. A panic also fails (and ends
/// the run, since panics abort on this target).
pub type TestFn = fn() -> Result<(), &'static str>;

/// A named test, as listed by [`tests!`](crate::tests!).
#[derive(Debug, Clone, Copy)]
pub struct Test {
    pub name: &'static str,
    pub run: TestFn,
}

/// `tests![a, b, c]` builds a `&'static [Test]` naming each test after its
/// function.
#[macro_export]
macro_rules! tests {
    ($($f:ident),* $(,)?) => {
        &[$($crate::harness::Test { name: stringify!($f), run: $f }),*]
    };
}

/// `ensure!(cond, "why")` returns `Err("why")` from a test when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $msg:expr $(,)?) => {
        if !$cond {
            return Err($msg);
        }
    };
}

/// `ensure_eq!(a, b, "why")`: like `ensure!` but also prints both values (via
/// semihosting) when they differ.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $msg:expr $(,)?) => {
        match (&$left, &$right) {
            (l, r) => {
                if *l != *r {
                    ::cortex_m_semihosting::hprintln!(
                        "    {} != {}: left = {:?}, right = {:?}",
                        stringify!($left),
                        stringify!($right),
                        l,
                        r
                    );
                    return Err($msg);
                }
            }
        }
    };
}

// --- Memory map (must match memory.x) ---------------------------------------

pub const FLASH_START: usize = 0x0000_0000;
pub const FLASH_END: usize = 0x0040_0000;
pub const RAM_START: usize = 0x2000_0000;
pub const RAM_END: usize = 0x2040_0000;

// Symbols defined by cortex-m-rt's link.x. Only their addresses are used.
unsafe extern "C" {
    static _stack_start: u8;
    static _stack_end: u8;
    static __sdata: u8;
    static __edata: u8;
    static __sbss: u8;
    static __ebss: u8;
}

/// Addresses of the linker-placed sections, read from cortex-m-rt's symbols.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Initial stack pointer (top of the stack, highest address).
    pub stack_start: usize,
    /// Lowest address the stack may grow down to (end of .bss/.uninit).
    pub stack_end: usize,
    pub data: (usize, usize),
    pub bss: (usize, usize),
}

pub fn layout() -> Layout {
    // Taking the address of an extern static reads nothing.
    Layout {
        stack_start: &raw const _stack_start as usize,
        stack_end: &raw const _stack_end as usize,
        data: (&raw const __sdata as usize, &raw const __edata as usize),
        bss: (&raw const __sbss as usize, &raw const __ebss as usize),
    }
}

// --- Runner ------------------------------------------------------------------

/// Name of the running test, for the panic and fault handlers.
static CURRENT: Mutex<Cell<Option<&'static str>>> = Mutex::new(Cell::new(None));

/// Runs every test, prints one line each and exits QEMU with
/// `EXIT_SUCCESS` iff all passed.
pub fn run(tests: &[Test]) -> ! {
    hprintln!(
        "running {} tests on {} (QEMU mps2-an386)",
        tests.len(),
        env!("CARGO_PKG_NAME")
    );
    let mut passed = 0usize;
    let mut failed = 0usize;
    for test in tests {
        interrupt::free(|cs| CURRENT.borrow(cs).set(Some(test.name)));
        match (test.run)() {
            Ok(()) => {
                hprintln!("test {} ... ok", test.name);
                passed += 1;
            }
            Err(why) => {
                hprintln!("test {} ... FAILED: {}", test.name, why);
                failed += 1;
            }
        }
        interrupt::free(|cs| CURRENT.borrow(cs).set(None));
    }
    hprintln!();
    // `N passed, N failed` alone on a line: the plain summary CI looks for.
    hprintln!("firmware: {} passed, {} failed", passed, failed);
    exit(failed == 0)
}

/// Ends the QEMU process: exit code 0 if `success`, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success { EXIT_SUCCESS } else { EXIT_FAILURE });
    // Only reached if no semihosting host is attached (e.g. a debugger that
    // resumed us): park the core.
    loop {
        cortex_m::asm::bkpt();
    }
}

fn current_test() -> &'static str {
    interrupt::free(|cs| CURRENT.borrow(cs).get()).unwrap_or("<outside any test>")
}

/// Best-effort report that never panics (used from panic/fault handlers,
/// where `hprintln!`, which panics on I/O errors, must not be used).
fn report(args: core::fmt::Arguments<'_>) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_fmt(args);
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    report(format_args!(
        "test {} ... PANICKED: {}\n",
        current_test(),
        info
    ));
    report(format_args!("\nfirmware: aborted by panic\n"));
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    report(format_args!(
        "test {} ... HARD FAULT: {:?}\n\nfirmware: aborted by HardFault\n",
        current_test(),
        frame
    ));
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    report(format_args!(
        "test {} ... UNEXPECTED EXCEPTION/IRQ {}\n\nfirmware: aborted\n",
        current_test(),
        irqn
    ));
    exit(false)
}
