//! Bolero fuzz harnesses for `cachee-core`.
//!
//! The harness bodies live here so that every test target shares one build of them;
//! `fuzz/tests/*.rs` only pick the input type and the time budget. Each harness runs
//! in three ways:
//!
//! - `cargo test -p fuzz` (and `cargo test --workspace`): a few seconds of random
//!   inputs per harness, plus a replay of every file under
//!   `fuzz/tests/__fuzz__/<harness>/{corpus,crashes}`;
//! - `cargo +nightly bolero test -p fuzz <harness> --engine libfuzzer -T 300s`: a
//!   coverage-guided session (from the workspace root, which has `[profile.fuzz]`);
//! - `BOLERO_RANDOM_ITERATIONS=n` / `BOLERO_RANDOM_TEST_TIME_MS=ms` /
//!   `BOLERO_RANDOM_SEED=s` override the in-code budget of the plain test run.
//!
//! | harness | module | what it asserts |
//! |---|---|---|
//! | `differential`, `differential_colliding` | [`differential`] | every answer agrees with a hashbrown model up to eviction; `check` finds nothing after every operation |
//! | `hostile_bytes`, `hostile_image` | [`hostile`] | attach refuses or works; nothing panics or hangs; `repair` restores every invariant |
//! | `concurrent_smoke` | [`concurrent`] | two threads never read a value that was not written for the key; invariants hold after |
//! | `format_config` | [`formatting`] | any configuration formats cleanly or is refused; a formatted region attaches and works |
//!
//! `fuzz/tests/regressions.rs` holds a minimal reproduction of every bug the harnesses
//! found. Environment knobs: `CACHEE_FUZZ_STRICT` ([`known_bugs`]),
//! `CACHEE_FUZZ_HANG_SECS` ([`watchdog`]), `CACHEE_FUZZ_TRACE` ([`trace`]),
//! `CACHEE_FUZZ_DISCOVER` ([`known_bugs`]). Notes on running them:
//! `docs/verification.md`.

pub mod common;
pub mod concurrent;
pub mod differential;
pub mod formatting;
pub mod hostile;
pub mod known_bugs;
pub mod peek;
pub mod trace;
pub mod watchdog;

use std::time::Duration;

/// Seconds each harness runs under plain `cargo test` unless the bolero environment
/// variables say otherwise.
pub const DEFAULT_TEST_SECS: u64 = 3;

/// The time budget for a plain `cargo test` run: `secs`, unless
/// `BOLERO_RANDOM_ITERATIONS` is set (then the iteration count alone bounds the run)
/// or `BOLERO_RANDOM_TEST_TIME_MS` is set (bolero then prefers it to this value).
/// Fuzzing engines ignore the budget.
pub fn test_time(secs: u64) -> Duration {
    if std::env::var_os("BOLERO_RANDOM_ITERATIONS").is_some() {
        // Bolero treats `Duration::MAX` as "no time limit".
        Duration::MAX
    } else {
        Duration::from_secs(secs)
    }
}
