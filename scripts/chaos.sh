#!/usr/bin/env bash
# The long forms of the reliability tests in cachee-shm/tests: the SIGKILL chaos run
# (verified workers killed at random every 2-100 ms and restarted) and the hostile
# writer (random byte flips in the mapped segment while processes run), each for
# SECONDS (default 60). Both print their figures; either fails on a wrong value, a
# hang, a crash, or a segment that `cachee verify` does not pass afterwards.
#
# Usage: scripts/chaos.sh [SECONDS]
set -euo pipefail
secs=${1:-60}
cd "$(dirname "$0")/.."
run() {
  # The test profile is optimised (opt-level 2, see Cargo.toml).
  cargo test -p cachee-shm --test "$1" -- --exact "$2" --nocapture
}
CHAOS_SECS=$secs run chaos sigkill_chaos_never_yields_a_wrong_value_nor_a_hang
HOSTILE_SECS=$secs run hostile random_byte_flips_never_crash_hang_or_lie
