//! Open `cachee-core` bugs the harnesses have found, and how they are tolerated.
//!
//! While a bug is open it gets a minimal reproduction in `fuzz/tests/regressions.rs`,
//! marked `#[ignore = "BUG: ..."]`, and (if it panics) an entry in [`KNOWN_PANICS`]:
//! the harnesses then recognise its symptom and treat the input as uninteresting, so
//! that `cargo test` stays green and fuzzing can look for *other* bugs. Set
//! `CACHEE_FUZZ_STRICT=1` to tolerate nothing (to check a fix, or to collect crashing
//! inputs); when a bug is fixed, delete its entry here and un-ignore its test.
//! A hang cannot be tolerated this way; the watchdog (`crate::watchdog`) or the
//! fuzzer's timeout reports it.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};

/// A panic from `cachee-core` that is known and tolerated.
#[derive(Debug)]
pub struct KnownPanic {
    /// Short name (its reproduction in `fuzz/tests/regressions.rs` has this name).
    pub name: &'static str,
    /// Source file of the panic (suffix match, so line shifts do not matter).
    pub file: &'static str,
    /// Text the panic message contains.
    pub message: &'static str,
}

/// The panics tolerated unless `CACHEE_FUZZ_STRICT` is set (open bugs; see
/// `fuzz/tests/regressions.rs`).
pub const KNOWN_PANICS: &[KnownPanic] = &[];

/// How many runs ended in a tolerated panic (reported by the harness trace).
pub static TOLERATED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static LAST: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
    static ACTIVE: RefCell<bool> = const { RefCell::new(false) };
}

/// Whether known bugs are reported instead of tolerated.
pub fn strict() -> bool {
    std::env::var_os("CACHEE_FUZZ_STRICT").is_some_and(|v| v != "0")
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info
                .location()
                .map(|l| l.file().to_string())
                .unwrap_or_default();
            let site = info.location().map(|l| l.to_string()).unwrap_or_default();
            let msg = match info.payload().downcast_ref::<&str>() {
                Some(s) => s.to_string(),
                None => info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default(),
            };
            let quiet = ACTIVE.with(|a| *a.borrow()) && is_known(&file, &msg);
            if quiet && discover() {
                report_discovered(&site, &msg);
            }
            LAST.with(|l| *l.borrow_mut() = Some((file, msg)));
            if !quiet {
                prev(info);
            }
        }));
    });
}

/// Runs `f`; a panic that matches a known bug is swallowed (unless strict), any
/// other panic continues.
pub fn tolerate(f: impl FnOnce()) {
    if strict() {
        return f();
    }
    install_hook();
    LAST.with(|l| *l.borrow_mut() = None);
    ACTIVE.with(|a| *a.borrow_mut() = true);
    let r = catch_unwind(AssertUnwindSafe(f));
    ACTIVE.with(|a| *a.borrow_mut() = false);
    if let Err(payload) = r {
        let last = LAST.with(|l| l.borrow_mut().take());
        if last.is_some_and(|(file, msg)| is_known(&file, &msg)) {
            TOLERATED.fetch_add(1, Ordering::Relaxed);
            crate::trace::count("tolerated_known_panic");
            return;
        }
        resume_unwind(payload);
    }
}

fn is_known(file: &str, msg: &str) -> bool {
    KNOWN_PANICS
        .iter()
        .any(|k| file.ends_with(k.file) && msg.contains(k.message))
        || (discover() && file.contains("cachee-core/src/"))
}

/// `CACHEE_FUZZ_DISCOVER=1`: tolerate every panic raised inside `cachee-core` and
/// print each distinct site once (to list all open panics in one run).
fn discover() -> bool {
    static D: OnceLock<bool> = OnceLock::new();
    *D.get_or_init(|| std::env::var_os("CACHEE_FUZZ_DISCOVER").is_some())
}

fn report_discovered(site: &str, msg: &str) {
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.iter().any(|s| s == site) {
        seen.push(site.to_string());
        eprintln!("DISCOVERED panic at {site}: {msg}");
    }
}
