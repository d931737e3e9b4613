#!/usr/bin/env bash
# miri over cachee-core's tests (strict provenance), with the machine's nightly.
# Heavy tests scale themselves down under cfg(miri); none is skipped except the
# trace replays (a million accesses each), which run in the ordinary test job.
set -euo pipefail
cd "$(dirname "$0")/.."

warn() {
  printf '\n**********************************************************************\n'
  printf '* WARNING: %s\n' "$1"
  printf '* miri did NOT run; the rest of CI continues.\n'
  printf '**********************************************************************\n\n'
}

if ! rustup +nightly component add miri rust-src; then
  warn "could not install the miri and rust-src components for the nightly toolchain"
  exit 0
fi
if ! cargo +nightly miri setup; then
  warn "cargo +nightly miri setup failed"
  exit 0
fi
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-strict-provenance}"
cargo +nightly miri test -p cachee-core "$@"
