//! A hang detector for plain `cargo test` runs.
//!
//! Fuzzing engines have their own timeout (`cargo bolero test -t`), but the random
//! engine behind plain `cargo test` has none: an input that makes `cachee-core` loop
//! forever would hang CI. Each harness run registers its input here; a watchdog
//! thread aborts the process (printing the input) if one run takes longer than
//! `CACHEE_FUZZ_HANG_SECS` (default 20 s).

use std::collections::HashMap;
use std::fmt::Debug;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

struct Running {
    started: Instant,
    input: String,
    harness: &'static str,
}

static RUNNING: Mutex<Option<HashMap<u64, Running>>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(0);

fn limit() -> Duration {
    let secs = std::env::var("CACHEE_FUZZ_HANG_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

fn start_thread() {
    static START: Once = Once::new();
    START.call_once(|| {
        let limit = limit();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let guard = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(map) = guard.as_ref() {
                    for r in map.values() {
                        if r.started.elapsed() > limit {
                            // Straight to the stream: `eprintln!` from this thread would
                            // be captured by the test harness and lost with the abort.
                            let _ = writeln!(
                                std::io::stderr().lock(),
                                "\n=== HANG: one run of {} took more than {limit:?}; input:\n{}\n",
                                r.harness,
                                r.input
                            );
                            std::process::abort();
                        }
                    }
                }
            }
        });
    });
}

/// Runs `f` on `input`, aborting the process if it does not return in time.
/// Under a fuzzing engine (`cfg(fuzzing)`) this is a plain call: the engine's
/// timeout applies and it saves the input.
pub fn guard<T: Debug>(harness: &'static str, input: &T, f: impl FnOnce()) {
    if cfg!(fuzzing) {
        return f();
    }
    start_thread();
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    {
        let mut g = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(HashMap::new).insert(
            id,
            Running {
                started: Instant::now(),
                input: format!("{input:?}"),
                harness,
            },
        );
    }
    struct Done(u64);
    impl Drop for Done {
        fn drop(&mut self) {
            let mut g = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = g.as_mut() {
                m.remove(&self.0);
            }
        }
    }
    let _done = Done(id);
    f()
}
