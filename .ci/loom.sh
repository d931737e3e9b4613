#!/usr/bin/env bash
# loom model checks of cachee-core's concurrency protocol: the real code, built with
# --cfg cachee_loom so that every atomic in cachee-core is a loom atomic. Each model
# also runs once with a deliberate bug switched on and must catch it. See
# loom-tests/src/lib.rs. Extra arguments go to the test harness (for example
# --include-ignored, or a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg cachee_loom"
# Its own target directory: the cfg changes every crate's build.
export CARGO_TARGET_DIR=target-loom
export LOOM_MAX_PREEMPTIONS=2
# The release profile (loom runs thousands of executions of each model), but built
# for this job: no LTO and parallel codegen (a third of the build time), and with
# cachee-core's debug assertions and overflow checks on, so they are checked in
# every explored execution too.
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
# Models print their own summaries; expected failures of mutant runs are silenced.
export RUST_BACKTRACE=0

t0=$SECONDS
cargo test -p loom-tests --release --tests --no-run
t1=$SECONDS
# --nocapture: print each model's execution count, time and outcomes.
cargo test -p loom-tests --release --tests --no-fail-fast -- --nocapture "$@"
t2=$SECONDS
printf '\nloom: build %ss, models %ss, total %ss\n' $((t1 - t0)) $((t2 - t1)) $((t2 - t0))
